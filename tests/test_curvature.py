"""Hand-derived curvature: H v (R-operator), G v (Gauss-Newton), per-example gradient norms.

References, all by JAX's autodiff in float64: ``jax.jvp(jax.grad(loss))`` and
``jax.hessian`` of the library's own batch loss (:func:`jbpnn.network.loss_kernel`, sample
weights included), and for Gauss-Newton ``J^T H_L J v`` built from ``jax.jvp``, ``jax.vjp``
and the loss's autodiff Hessian at the outputs (mse) or at the output net inputs (the log
losses). Per-example norms against :func:`jbpnn.per_example_grads`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import jbpnn
from jbpnn import ACTIVATIONS, Layer, curvature, init_params
from jbpnn.jacobian import flatten_params, unflatten_params
from jbpnn.losses import LOSSES
from jbpnn.network import loss_kernel

TOL = dict(rtol=1e-10, atol=1e-12)
OUTPUT_LOSSES = {
    act: [loss for loss, out in jbpnn.VALID_PAIRS if out == act] for act in ACTIVATIONS
}


def _problem(seed, sizes, acts, loss, n=6):
    rng = np.random.default_rng(seed)
    params = init_params(jax.random.key(seed), sizes, acts, loss, "glorot", jnp.float64)
    params = jax.tree.map(lambda a: a + 0.3 * jnp.asarray(rng.normal(size=a.shape)), params)
    params = params.replace_layers([Layer(l.w, l.b + 0.2) for l in params.layers])
    X = jnp.asarray(rng.normal(size=(n, sizes[0])))
    if loss == "cross_entropy":
        Y = jax.nn.one_hot(rng.integers(0, sizes[-1], size=n), sizes[-1], dtype=jnp.float64)
    else:
        Y = jnp.asarray(rng.uniform(size=(n, sizes[-1])))
    v = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    sw = jnp.asarray(rng.uniform(0.2, 2.0, size=n))
    return params, X, Y, v, sw


def _autodiff_hvp(params, X, Y, v, sw):
    return jax.jvp(jax.grad(lambda p: loss_kernel(p, X, Y, sw)), (params,), (v,))[1]


def _autodiff_gnvp(params, X, Y, v, sw):
    """J^T H_L J v by autodiff: J of the outputs (mse) or of the output net inputs (log losses)."""
    table = ACTIVATIONS
    out_act = table[params.activations[-1]]
    at_outputs = params.loss == "mse"

    def z(p):  # the outputs, or the net inputs of the output layer
        o = X
        for i, (layer, name) in enumerate(zip(p.layers, p.activations)):
            net = o @ layer.w + layer.b
            o = table[name].fn(net) if (i < len(p.layers) - 1 or at_outputs) else net
        return o

    def batch_loss(z):
        O = z if at_outputs else jax.vmap(out_act.fn)(z)
        return sw @ jax.vmap(LOSSES[params.loss].error)(O, Y) / jnp.sum(sw)

    z0, Jv = jax.jvp(z, (params,), (v,))
    HJv = jax.jvp(jax.grad(batch_loss), (z0,), (Jv,))[1]
    return jax.vjp(z, params)[1](HJv)[0]


@jax.jit
def _references(params, X, Y, v, sw):
    return _autodiff_hvp(params, X, Y, v, sw), _autodiff_gnvp(params, X, Y, v, sw)


@jax.jit
def _hand(params, X, Y, v, sw):  # the kernels of jbpnn.hvp and jbpnn.gnvp, in one compile
    return curvature.hvp_kernel(params, X, Y, v, sw), curvature.gnvp_kernel(params, X, Y, v, sw)


def _cases():
    for act in sorted(ACTIVATIONS):
        for depth in (1, 2, 3, 4):
            losses = OUTPUT_LOSSES[act]
            yield act, depth, losses[depth % len(losses)]


@pytest.mark.parametrize("act,depth,loss", list(_cases()))
def test_hvp_and_gnvp_equal_autodiff(x64, act, depth, loss):
    hidden = "tanh" if ACTIVATIONS[act].output_only else act
    acts = (hidden,) * (depth - 1) + (act,)
    sizes = (3, 5, 4, 4, 3)[: depth + 1]
    params, X, Y, v, sw = _problem(depth + len(act), sizes, acts, loss)
    hv, gv = _hand(params, X, Y, v, sw)
    hv_ref, gv_ref = _references(params, X, Y, v, sw)
    tree_allclose(hv, hv_ref, **TOL, err_msg=f"H v {acts} {loss}")
    tree_allclose(gv, gv_ref, **TOL, err_msg=f"G v {acts} {loss}")
    assert float(jnp.max(jnp.abs(flatten_params(hv) - flatten_params(gv)))) > 1e-6 or depth == 1


@pytest.mark.parametrize("product", ["hvp", "gnvp"])
def test_public_products_check_and_weight_like_the_loss(x64, product):
    params, X, Y, v, sw = _problem(3, (3, 4, 2), ("tanh", "sigmoid"), "binary_cross_entropy")
    ref = {"hvp": _autodiff_hvp, "gnvp": _autodiff_gnvp}[product]
    ours = getattr(jbpnn, product)
    tree_allclose(ours(params, X, Y, v, sw), ref(params, X, Y, v, sw), **TOL)
    # without sample weights: the plain batch mean
    tree_allclose(ours(params, X, Y, v), ref(params, X, Y, v, jnp.ones(X.shape[0])), **TOL)


def _matrix(product, params, X, Y, sw):
    """The whole matrix, one product per unit vector, in flatten_params' order."""
    P = flatten_params(params).size

    def column(e):
        return flatten_params(product(params, X, Y, unflatten_params(params, e), sw))

    return jax.vmap(column)(jnp.eye(P))


@pytest.mark.parametrize(
    "loss,out_act",
    [("mse", "tanh"), ("cross_entropy", "softmax")],
)
def test_hand_hessian_is_jax_hessian_and_gauss_newton_is_psd(x64, loss, out_act):
    params, X, Y, _, sw = _problem(7, (2, 3, 3), ("sigmoid", out_act), loss, n=4)
    H = _matrix(curvature.hvp_kernel, params, X, Y, sw)
    theta = flatten_params(params)
    H_ref = jax.hessian(lambda t: loss_kernel(unflatten_params(params, t), X, Y, sw))(theta)
    np.testing.assert_allclose(H, H_ref, **TOL)
    G = _matrix(curvature.gnvp_kernel, params, X, Y, sw)
    np.testing.assert_allclose(G, G.T, rtol=1e-12, atol=1e-14)
    assert np.min(np.linalg.eigvalsh(G)) > -1e-12  # positive semi-definite
    assert np.max(np.abs(G - H)) > 1e-4  # the hidden layer's curvature is what GN leaves out
    # one layer: the network is linear in its weights up to the loss's own curvature, G = H
    one, X1, Y1, v1, sw1 = _problem(8, (3, 3), (out_act,), loss)
    if loss != "mse" or out_act == "identity":
        tree_allclose(
            curvature.gnvp(one, X1, Y1, v1, sw1), curvature.hvp(one, X1, Y1, v1, sw1), **TOL
        )


@pytest.mark.parametrize("loss,out_act", jbpnn.VALID_PAIRS)
def test_per_example_grad_norms_equal_the_norms_of_per_example_grads(x64, loss, out_act):
    params, X, Y, _, _ = _problem(9, (4, 5, 3), ("relu", out_act), loss, n=7)
    norms = curvature.per_example_grad_norms(params, X, Y)
    grads = jbpnn.per_example_grads(params, X, Y)
    ref = jnp.sqrt(
        sum(jnp.sum(leaf.reshape(7, -1) ** 2, axis=1) for leaf in jax.tree.leaves(grads))
    )
    np.testing.assert_allclose(norms, ref, rtol=1e-12)
    assert norms.shape == (7,) and float(jnp.min(norms)) > 1e-6


def test_article_mode_norms_follow_its_backward_and_products_refuse_it(x64):
    params = init_params(0, (3, 4, 2), "sigmoid", dtype=jnp.float64, article_mode=True)
    rng = np.random.default_rng(1)
    X, Y = jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.uniform(size=(5, 2)))
    grads = jbpnn.per_example_grads(params, X, Y)
    ref = jnp.sqrt(
        sum(jnp.sum(leaf.reshape(5, -1) ** 2, axis=1) for leaf in jax.tree.leaves(grads))
    )
    np.testing.assert_allclose(jbpnn.per_example_grad_norms(params, X, Y), ref, rtol=1e-12)
    with pytest.raises(ValueError, match="article_mode networks have no curvature"):
        jbpnn.hvp(params, X, Y, params)


def test_bad_directions_and_inputs_raise():
    params = init_params(0, (3, 4, 2))
    X, Y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    short = params.replace_layers(params.layers[:1])
    with pytest.raises(ValueError, match="v must be an MLP with the structure of params"):
        jbpnn.gnvp(params, X, Y, short)
    nan = params.replace_layers(
        [Layer(params.layers[0].w * jnp.nan, params.layers[0].b), params.layers[1]]
    )
    with pytest.raises(ValueError, match="hvp: v's layer 0 w contains .* NaN or inf"):
        jbpnn.hvp(params, X, Y, nan)
    # traced (inside jit, or vmap over v) it is skipped, as traced data is: it raised a
    # TracerBoolConversionError
    jax.jit(jbpnn.hvp)(params, X, Y, params)
    jax.vmap(
        lambda w: jbpnn.gnvp(
            params, X, Y, params.replace_layers([Layer(w, params.layers[0].b), params.layers[1]])
        )
    )(jnp.stack([params.layers[0].w] * 2))
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        jbpnn.hvp(params, X[:, :2], Y, params)


@pytest.mark.parametrize("name", ["hvp", "gnvp", "per_example_grad_norms"])
def test_stacked_params_are_refused_with_a_call_that_works(name):
    """The message named jbpnn.hvp_kernel, which does not exist: the kernels live in
    jbpnn.curvature. The call it gives runs."""
    import re

    import jbpnn.curvature
    import jbpnn.many

    spec = jbpnn.InitSpec((3, 4, 2), "tanh", "mse", "glorot")
    P = jbpnn.many.init_many(spec, [0, 1])
    X, Y = np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32)
    args = (P, X, Y, P) if name != "per_example_grad_norms" else (P, X, Y)
    with pytest.raises(ValueError, match="takes ONE network") as info:
        getattr(jbpnn, name)(*args)
    call = re.search(r"jax\.vmap\(.*\)\)", str(info.value)).group(0)
    out = eval(call)(*args)  # noqa: S307 - the message's own code
    assert jax.tree.leaves(out)[0].shape[0] == 2


def test_the_kernels_refuse_article_mode_and_empty_batches():
    """hvp_kernel on an article-mode tanh network returned numbers (the checked hvp
    refused it); 0 rows raised a bare ZeroDivisionError from 1.0 / n."""
    from jbpnn.network import loss_and_gradient_kernel

    article = init_params(0, (3, 4, 2), "tanh", "mse", article_mode=True)
    X, Y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    with pytest.raises(ValueError, match="article_mode networks have no curvature"):
        jax.jit(curvature.hvp_kernel)(article, X, Y, article)
    params = init_params(0, (3, 4, 2), "tanh", "mse")
    for kernel in (loss_and_gradient_kernel, lambda p, x, y: curvature.hvp_kernel(p, x, y, p)):
        with pytest.raises(ValueError, match="at least one row, got 0 rows"):
            jax.jit(kernel)(params, X[:0], Y[:0])


def _small():
    p = init_params(0, (3, 4, 2), ("tanh", "identity"), "mse")
    X = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
    Y = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2)), jnp.float32)
    return p, X, Y


def test_complex_directions_are_refused():
    """A complex v, dparams or dX was cast to the params' real dtype: hvp along 1j v gave
    0 and jvp's tangent 0, with at most a NumPy ComplexWarning."""
    p, X, Y = _small()
    iv = jax.tree.map(lambda a: 1j * np.ones(a.shape), p)
    for call in (
        lambda: jbpnn.hvp(p, X, Y, iv),
        lambda: jbpnn.gnvp(p, X, Y, iv),
        lambda: jbpnn.jvp(p, X, iv),
    ):
        with pytest.raises(ValueError, match=r"layer 0 w has complex values \(complex"):
            call()
    zero = jax.tree.map(np.zeros_like, p)
    with pytest.raises(ValueError, match=r"dX has complex values"):
        jbpnn.jvp(p, X, zero, 1j * np.ones(X.shape))


def test_the_loss_derivatives_need_targets():
    """Y=None reached the maths: raw TypeErrors from deep inside, or (gnvp with mse) a
    number."""
    p, X, Y = _small()
    v = jax.tree.map(jnp.ones_like, p)
    for name, call in {
        "hvp": lambda: jbpnn.hvp(p, X, None, v),
        "gnvp": lambda: jbpnn.gnvp(p, X, None, v),
        "per_example_grad_norms": lambda: jbpnn.per_example_grad_norms(p, X, None),
        "normal_equations": lambda: jbpnn.normal_equations(p, X, None),
    }.items():
        with pytest.raises(ValueError, match=f"^{name} needs the targets Y"):
            call()


def test_jvp_checks_its_inputs_as_the_user_gave_them():
    p, X, Y = _small()
    zero = jax.tree.map(np.zeros_like, p)
    with pytest.raises(ValueError, match=r"dX must have the shape of X, \(3,\), got \(1, 3\)"):
        jbpnn.jvp(p, X[0], zero, np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"dX must have the shape of X, \(3,\), got \(\)"):
        jbpnn.jvp(p, X[0], zero, 0.0)
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        jbpnn.jvp(p, ["a", "b", "c"], zero)
    with pytest.raises(ValueError, match="X must be an array of numbers with the same length"):
        jbpnn.apply(p, [[1.0, 2.0, 3.0], [1.0, 2.0]])
    nan = jax.tree.map(lambda a: np.full(a.shape, np.nan, np.float32), p)
    with pytest.raises(ValueError, match="jvp: dparams' layer 0 w contains"):
        jbpnn.jvp(p, X, nan)
    out, tangent = jbpnn.jvp(p, X[0], zero, np.ones(3))  # one example, dX given: still works
    assert out.shape == tangent.shape == (2,)


def test_several_directions_under_vmap_are_each_right_in_float32():
    """jax.vmap of hvp / gnvp over directions (the params shared) on 1797 rows gave every
    direction but the first 30-160% off in float32 on jaxlib 0.10's CPU backend: its YNN
    reduction fusion miscomputed the softmax's <O, r> when O was shared and r batched
    (float64, fewer rows, or another compile option were right). The inner products are
    products with a column of ones now; each direction equals its own product."""
    p = init_params(0, (64, 64, 10), ("tanh", "softmax"), "cross_entropy", init="glorot")
    X = jax.random.normal(jax.random.key(1), (1797, 64))
    Y = jax.nn.one_hot(jnp.arange(1797) % 10, 10)
    v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(2), a.shape), p)
    vs = jax.tree.map(lambda t: jnp.stack([t, -t]), v)
    for product, kernel in ((jbpnn.hvp, curvature.hvp_kernel), (jbpnn.gnvp, curvature.gnvp_kernel)):
        one = product(p, X, Y, v)
        for many in (
            jax.vmap(product, (None, None, None, 0))(p, X, Y, vs),
            jax.jit(jax.vmap(kernel, (None, None, None, 0)))(p, X, Y, vs),
        ):
            for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(one)):
                scale = float(jnp.max(jnp.abs(b)))
                assert float(jnp.max(jnp.abs(a[0] - b))) <= 1e-5 * scale
                assert float(jnp.max(jnp.abs(a[1] + b))) <= 1e-5 * scale  # H(-v) = -Hv


def test_per_example_grad_norms_of_a_float16_network_sum_in_float32():
    """|O_prev|^2 of 64 pixel values overflowed float16: inf, and 0 * inf = NaN where a
    saturated unit's Err is 0; the rows of per_example_grads were finite (largest 0.15)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 255, size=(4, 64))
    Y = np.eye(2)[rng.integers(0, 2, 4)]
    p = init_params(0, (64, 4, 2), "sigmoid", "mse", init="glorot", dtype=jnp.float16)
    norms = jbpnn.per_example_grad_norms(p, X, Y)
    assert norms.dtype == jnp.float16 and bool(jnp.all(jnp.isfinite(norms)))
    rows = jbpnn.per_example_grads(p, X, Y)
    expected = np.sqrt(
        sum(np.sum(np.asarray(a, np.float64).reshape(4, -1) ** 2, 1) for a in jax.tree.leaves(rows))
    )
    np.testing.assert_allclose(np.asarray(norms, np.float64), expected, rtol=2e-3)


def test_a_direction_of_the_wrong_layers_is_named():
    p = init_params(0, (3, 4, 2))
    X, Y = np.ones((5, 3)), np.full((5, 2), 0.5)
    zero = jax.tree.map(jnp.zeros_like, p)
    with pytest.raises(ValueError, match=r"v must be an MLP .* got an MLP of 1 layers"):
        jbpnn.hvp(p, X, Y, zero.replace_layers(zero.layers[:1]))
    tuples = zero.replace_layers([(layer.w, layer.b) for layer in zero.layers])
    with pytest.raises(ValueError, match=r"dparams: layer 0 must be a Layer\(w, b\)"):
        jbpnn.jvp(p, X, tuples)

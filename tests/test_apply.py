"""jbpnn.apply: JAX differentiates through it with the HAND-DERIVED backward (custom_vjp).

The reference is autodiff of the plain forward pass, ``jax.vmap(forward)``, in float64:
for any function of the outputs the two must agree, except in article mode, where the
custom rule must give the article's gradient instead (proof that our rule is what runs).
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import jbpnn
from jbpnn import ACTIVATIONS, Layer, apply, backward, batch_gradient, forward, init_params
from jbpnn.losses import LOSSES

TOL = dict(rtol=1e-10, atol=1e-12)


def plain_apply(params, X):
    """The reference: the forward pass, vmapped, differentiated by JAX's own autodiff."""
    return jax.vmap(lambda x: forward(params, x)[0])(X)


def _network(seed, sizes, acts, loss="mse", article_mode=False):
    rng = np.random.default_rng(seed)
    params = init_params(
        jax.random.key(seed), sizes, acts, loss, "glorot", jnp.float64, article_mode
    )
    # weights away from glorot's start, and biases non-zero (positive: ReLU units alive)
    params = jax.tree.map(lambda a: a + 0.2 * jnp.asarray(rng.normal(size=a.shape)), params)
    return params.replace_layers([Layer(l.w, l.b + 0.3) for l in params.layers]), rng


# Functions of the outputs O (B, n_out) a user might differentiate; T are fixed targets.
OUTPUT_LOSSES = {
    "squared": lambda O, T: 0.5 * jnp.sum((O - T) ** 2),
    "log": lambda O, T: -jnp.sum(T * jnp.log(jnp.abs(O) + 1.0)),
    "weighted_sin": lambda O, T: jnp.sum(jnp.sin(3.0 * O) * (T - 0.5)) + 0.1 * jnp.sum(O**2),
}


def _acts(act, depth):
    hidden = "tanh" if ACTIVATIONS[act].output_only else act
    return (hidden,) * (depth - 1) + (act,)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_grad_through_apply_equals_autodiff_of_forward(x64, act, depth):
    rng = np.random.default_rng(depth)
    sizes = tuple(int(n) for n in rng.integers(2, 6, size=depth + 1))
    params, rng = _network(10 * depth + len(act), sizes, _acts(act, depth))
    X = jnp.asarray(rng.normal(size=(6, params.n_in)))
    T = jnp.asarray(rng.uniform(size=(6, params.n_out)))
    for name, f in OUTPUT_LOSSES.items():
        ours = jax.grad(lambda p, X: f(apply(p, X), T), argnums=(0, 1))(params, X)
        ref = jax.grad(lambda p, X: f(plain_apply(p, X), T), argnums=(0, 1))(params, X)
        tree_allclose(ours, ref, **TOL, err_msg=f"{act} depth {depth} {name}")
        assert float(jnp.max(jnp.abs(ours[1]))) > 1e-6  # the input cotangent is not vacuous


@pytest.mark.parametrize("loss_name,out_act", jbpnn.VALID_PAIRS)
def test_grad_of_the_params_own_loss_is_the_hand_batch_gradient(x64, loss_name, out_act):
    params, rng = _network(3, (4, 5, 3), ("tanh", out_act), loss_name)
    X = jnp.asarray(rng.normal(size=(7, 4)))
    if loss_name == "cross_entropy":
        Y = jax.nn.one_hot(rng.integers(0, 3, size=7), 3, dtype=jnp.float64)
    else:
        Y = jnp.asarray(rng.uniform(size=(7, 3)))
    error = jax.vmap(LOSSES[loss_name].error)
    g = jax.grad(lambda p: jnp.mean(error(apply(p, X), Y)))(params)
    tree_allclose(g, batch_gradient(params, X, Y), **TOL)


def test_article_mode_gives_the_articles_gradient_not_autodiffs(x64):
    # tanh forward, no biases; "backprop" O - O^2 (the article code's bug 1)
    params, rng = _network(5, (4, 3, 2), "sigmoid", article_mode=True)
    X = jnp.asarray(rng.normal(size=(6, 4)))
    T = jnp.asarray(rng.uniform(size=(6, 2)))

    def mse(O):
        return jnp.mean(jax.vmap(LOSSES["mse"].error)(O, T))

    ours = jax.grad(lambda p: mse(apply(p, X)))(params)
    article = jax.tree.map(lambda g: jnp.mean(g, axis=0), jbpnn.per_example_grads(params, X, T))
    tree_allclose(ours, article, **TOL)
    tree_allclose(ours, batch_gradient(params, X, T), **TOL)
    # one example: the same as backward's
    _, cache = forward(params, X[0])
    one = jax.grad(lambda p: LOSSES["mse"].error(p(X[0]), T[0]))(params)
    tree_allclose(one, backward(params, cache, T[0]), **TOL)
    # ... and it is NOT the derivative of the article-mode forward
    auto = jax.grad(lambda p: mse(plain_apply(p, X)))(params)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(auto)):
        assert np.max(np.abs(np.asarray(a) - np.asarray(b))) > 1e-3
    np.testing.assert_array_equal(auto.layers[0].b, 0)  # autodiff: biases never used
    assert float(jnp.max(jnp.abs(ours.layers[0].b))) > 1e-3  # the article "updates" them
    # the outputs themselves are the article-mode forward's
    np.testing.assert_allclose(apply(params, X), plain_apply(params, X), rtol=1e-14)


def test_the_custom_rule_is_in_the_jaxpr():
    params = init_params(0, (3, 4, 2))
    X = jnp.ones((5, 3))

    def f(p, X):
        return jnp.sum(apply(p, X) ** 2)

    forward_jaxpr = str(jax.make_jaxpr(f)(params, X))
    assert "custom_jvp_call" in forward_jaxpr and "_apply_jvp" in forward_jaxpr
    grad_jaxpr = str(jax.make_jaxpr(jax.grad(f, argnums=(0, 1)))(params, X))
    # reverse mode: the hand-derived backward, one primitive, NOT JAX's transpose of the JVP
    assert "fn=hand_vjp" in grad_jaxpr and "fn=hand_jvp" not in grad_jaxpr
    # the reference has neither, so these checks can fail
    plain = str(jax.make_jaxpr(jax.grad(lambda p: jnp.sum(plain_apply(p, X) ** 2)))(params))
    assert "custom_jvp_call" not in plain and "hand_linear" not in plain


def test_vjp_gives_param_and_input_cotangents(x64):
    params, rng = _network(7, (3, 4, 4, 2), ("relu", "sigmoid", "identity"))
    X = jnp.asarray(rng.normal(size=(5, 3)))
    G = jnp.asarray(rng.normal(size=(5, 2)))
    out, pullback = jax.vjp(apply, params, X)
    out_ref, pullback_ref = jax.vjp(plain_apply, params, X)
    np.testing.assert_allclose(out, out_ref, rtol=1e-14)
    dp, dX = pullback(G)
    tree_allclose((dp, dX), pullback_ref(G), **TOL)
    assert isinstance(dp, jbpnn.MLP) and dp.activations == params.activations
    assert dX.shape == X.shape


def test_jit_of_grad(x64):
    params, rng = _network(8, (4, 3, 2), "tanh")
    X = jnp.asarray(rng.normal(size=(6, 4)))

    def f(p, X):
        return jnp.sum(jnp.cos(apply(p, X)))

    tree_allclose(jax.jit(jax.grad(f, argnums=(0, 1)))(params, X), jax.grad(f, (0, 1))(params, X))
    ref = jax.grad(lambda p, X: jnp.sum(jnp.cos(plain_apply(p, X))), (0, 1))(params, X)
    tree_allclose(jax.jit(jax.grad(f, argnums=(0, 1)))(params, X), ref, **TOL)


def test_vmap_over_stacked_networks(x64):
    nets = [_network(s, (3, 4, 2), "tanh")[0] for s in range(3)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *nets)
    X = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)))

    def f(p, X):
        return jnp.sum(apply(p, X) ** 3)

    outs = jax.vmap(apply, in_axes=(0, None))(stacked, X)
    grads = jax.jit(jax.vmap(jax.grad(f), in_axes=(0, None)))(stacked, X)
    for i, p in enumerate(nets):
        np.testing.assert_allclose(outs[i], apply(p, X), rtol=1e-14)
        ref = jax.grad(lambda p: jnp.sum(plain_apply(p, X) ** 3))(p)
        tree_allclose(jax.tree.map(lambda a: a[i], grads), ref, **TOL)
    with pytest.raises(ValueError, match=r"ONE network.*jax.vmap\(jbpnn.apply, in_axes=\(0, None"):
        apply(stacked, X)


def test_lax_scan_of_sgd_steps_equals_the_hand_gradient_loop(x64):
    params, rng = _network(9, (4, 5, 2), "sigmoid")
    X = jnp.asarray(rng.normal(size=(8, 4)))
    Y = jnp.asarray(rng.uniform(size=(8, 2)))
    lr = 0.5

    def loss(p):
        return jnp.mean(jax.vmap(LOSSES["mse"].error)(apply(p, X), Y))

    def step(p, _):
        value, g = jax.value_and_grad(loss)(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g), value

    final, losses = jax.lax.scan(step, params, None, length=4)
    p = params
    for k in range(4):  # the library's own hand gradient, in a Python loop
        np.testing.assert_allclose(losses[k], jbpnn.loss(p, X, Y), rtol=1e-12)
        p = jax.tree.map(lambda a, b: a - lr * b, p, batch_gradient(p, X, Y))
    tree_allclose(final, p, rtol=1e-11, atol=1e-13)
    assert losses[-1] < losses[0]


def test_inside_a_larger_model(x64):
    """A jbpnn network between two user layers: cotangents flow through it both ways."""
    params, rng = _network(11, (3, 4, 2), ("relu", "tanh"))
    A = jnp.asarray(rng.normal(size=(5, 3)))
    C = jnp.asarray(rng.normal(size=(2, 1)))
    X = jnp.asarray(rng.normal(size=(7, 5)))

    def model(net, theta, inner):
        A, C = theta
        return jnp.sum(jnp.tanh(inner(net, jnp.sin(X @ A)) @ C) ** 2) + 0.01 * jnp.sum(A**2)

    ours = jax.grad(model, argnums=(0, 1))(params, (A, C), apply)
    ref = jax.grad(model, argnums=(0, 1))(params, (A, C), plain_apply)
    tree_allclose(ours, ref, **TOL)


def test_mlp_call_one_example_and_a_batch(x64):
    params, rng = _network(12, (4, 3, 2), "sigmoid")
    X = jnp.asarray(rng.normal(size=(5, 4)))
    y = params(X[0])
    assert y.shape == (2,)
    np.testing.assert_allclose(y, forward(params, X[0])[0], rtol=1e-14)
    np.testing.assert_allclose(params(X), jbpnn.predict(params, X), rtol=1e-14)
    np.testing.assert_allclose(params(np.asarray(X[0]).tolist()), y, rtol=1e-14)  # host lists
    # one example: the gradient of E is backward's, and vmap of the call is the batch call
    t = jnp.array([0.2, 0.9])
    _, cache = forward(params, X[0])
    g = jax.grad(lambda p: LOSSES["mse"].error(p(X[0]), t))(params)
    tree_allclose(g, backward(params, cache, t), **TOL)
    np.testing.assert_allclose(jax.vmap(params)(X), params(X), rtol=1e-14)
    dx = jax.grad(lambda x: jnp.sum(params(x)))(X[0])
    dx_ref = jax.grad(lambda x: jnp.sum(forward(params, x)[0]))(X[0])
    np.testing.assert_allclose(dx, dx_ref, **TOL)


def test_integer_inputs_are_cast_to_the_params_dtype():
    params = init_params(0, (3, 2, 2))
    X = jnp.array([[1, 0, 2], [0, 1, 1]], dtype=jnp.int32)
    out = apply(params, X)
    assert out.dtype == params.dtype
    np.testing.assert_allclose(out, apply(params, X.astype(jnp.float32)), rtol=1e-6)
    np.testing.assert_allclose(apply(params, np.array([1, 0, 2])), out[0], rtol=1e-6)
    _, pullback = jax.vjp(apply, params, X)
    dp, dX = pullback(jnp.ones_like(out))
    assert dX.dtype == jax.dtypes.float0 and dX.shape == X.shape  # no cotangent for integers
    g = jax.grad(lambda p: jnp.sum(apply(p, X)))(params)  # params still differentiate
    g_ref = jax.grad(lambda p: jnp.sum(plain_apply(p, X.astype(jnp.float32))))(params)
    tree_allclose(g, g_ref, rtol=1e-5, atol=1e-7)
    # float64 inputs into float32 params: cast too, and the cotangent has the input's dtype
    with jax.enable_x64(True):
        X64 = jnp.asarray(X, jnp.float64)
        assert apply(params, X64).dtype == jnp.float32
        dX64 = jax.grad(lambda X: jnp.sum(apply(params, X)))(X64)
        assert dX64.dtype == jnp.float64


def test_bad_inputs_raise_before_tracing():
    params = init_params(0, (9, 2, 1))
    with pytest.raises(ValueError, match="Your data length is 8, but our input needs 9"):
        apply(params, np.ones((4, 8)))
    with pytest.raises(ValueError, match="Your data length is 8, but our input needs 9"):
        jax.jit(lambda x: params(x))(jnp.ones(8))
    with pytest.raises(ValueError, match=r"X must have shape \(9,\) for one example or"):
        apply(params, np.ones((2, 3, 9)))
    X = np.ones((3, 9))
    X[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN or inf .* index \(1, 4\)"):
        apply(params, X)
    assert np.isnan(apply(params, X, check_finite=False)[1, 0])


def _readme_section(title):
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_section_runs_as_written():
    section = _readme_section("Using jbpnn in your own JAX code")
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the section has no python block"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})


def test_apply_checks_a_numpy_input_inside_jit():
    """A NumPy X closed over inside jit became a tracer when apply put it on the device,
    so its NaN passed (documented: a concrete X is checked); eager calls raised."""
    params = init_params(0, (3, 4, 2), "tanh", "mse")
    X = np.ones((5, 3), np.float32)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN or inf"):
        jax.jit(lambda q: jbpnn.apply(q, X))(params)
    with pytest.raises(ValueError, match="X contains 1 NaN or inf"):
        jax.jit(jax.grad(lambda q: jnp.sum(jbpnn.apply(q, X))))(params)


def test_apply_names_values_too_large_for_the_params_dtype_and_text():
    """1e39 in float64 data for float32 params was reported as "NaN or inf ... Clean the
    data"; text gave NumPy's isfinite TypeError."""
    params = init_params(0, (3, 2), "tanh", "mse")
    with pytest.raises(ValueError, match="X has values too large for float32"):
        jbpnn.apply(params, np.full((2, 3), 1e39))
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        jbpnn.apply(params, [["a", "b", "c"]])
    with pytest.raises(ValueError, match="X contains 1 NaN or inf"):
        jbpnn.apply(params, np.array([[1, 2, np.nan]], dtype=object))


@pytest.mark.parametrize("units", [("tanh", "sigmoid"), ("tanh", "swish")])
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_layers_of_several_dtypes_under_strict_promotion(x64, dtypes, units):
    """A network whose layers have different dtypes (MLP.from_layers keeps them): apply
    multiplied the previous layer's outputs into the next layer's weights as they were, a
    TypePromotionError under jax_numpy_dtype_promotion="strict". Each layer now casts its
    input to its own dtype; the hand rules (grad, jvp) agree with autodiff of that forward
    pass and give each cotangent its layer's dtype."""
    params, rng = _network(13, (3, 4, 2), units)  # swish's derivative: from its net input
    params = params.replace_layers(
        [Layer(l.w.astype(dt), l.b.astype(dt)) for l, dt in zip(params.layers, dtypes)]
    )
    X = jnp.asarray(rng.normal(size=(5, 3)), params.dtype)

    def plain(p, X):  # autodiff's reference: each layer's input cast to its dtype
        o = X
        for layer, name in zip(p.layers, p.activations):
            o = jbpnn.ACTIVATIONS[name].fn(o.astype(layer.w.dtype) @ layer.w + layer.b)
        return o

    def f(p, apply_fn):
        return jnp.sum(jnp.sin(apply_fn(p, X)))

    with jax.numpy_dtype_promotion("strict"):
        out = apply(params, X)
        g = jax.grad(f)(params, apply)
        _, t = jax.jvp(lambda p: apply(p, X), (params,), (params,))
        _, cache = forward(params, X[0])
        one = backward(params, cache, jnp.array([0.2, 0.9], params.layers[-1].w.dtype))
        loss, kernel_g = jbpnn.network.loss_and_gradient_kernel(params, X, out)
    ref_g = jax.grad(f)(params, plain)
    _, ref_t = jax.jvp(lambda p: plain(p, X), (params,), (params,))
    assert out.dtype == t.dtype == params.layers[-1].w.dtype
    for grads in (g, one, kernel_g):
        assert [a.dtype for a in jax.tree.leaves(grads)] == [
            a.dtype for a in jax.tree.leaves(params)
        ]
    tree_allclose(g, ref_g, rtol=2e-6, atol=1e-7)  # a float32 layer: float32's digits
    np.testing.assert_allclose(t, ref_t, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(out, plain(params, X), rtol=1e-6)

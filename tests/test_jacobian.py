"""The hand-derived Jacobian and normal equations against autodiff and the hand gradient.

References: ``jax.jacrev`` of the forward pass over ``ravel_pytree``'s flat parameters
(an independent parameter order, too), the dense ``J.T @ J``, and the hand gradient of
:mod:`jbpnn.network`, with which ``J^T e = N g`` and ``e^T e = 2 N loss`` for mse.
"""

from __future__ import annotations

import ast
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose
from jax.flatten_util import ravel_pytree

import jbpnn.jacobian as jacobian_module
from jbpnn import ACTIVATIONS, MLP, loss_and_gradient, per_example_grads
from jbpnn.jacobian import (
    NormalEquations,
    example_jacobian,
    flatten_params,
    jacobian,
    jacobian_kernel,
    n_params,
    normal_equations,
    normal_equations_kernel,
    unflatten_params,
)
from jbpnn.network import predict_kernel

HIDDEN = tuple(name for name, act in ACTIVATIONS.items() if not act.output_only)
OUTPUTS = tuple(ACTIVATIONS)  # every activation may be an output unit (softmax only there)
TIGHT = dict(rtol=1e-10, atol=1e-13)


def _cases():
    # every output unit, with 1 and 3 outputs, at depths 1 to 4 (the hidden unit cycling);
    # every hidden unit at depth 2 under two outputs (the whole product adds no rule that
    # these do not exercise, and tripled the suite's share when three units were added)
    seen = set()
    for i, out_act in enumerate(OUTPUTS):
        for n_out in (2, 3) if out_act == "softmax" else (1, 3):  # one softmax unit: refused
            for depth in (1, 2, 3, 4):
                hidden = "-" if depth == 1 else HIDDEN[(i + n_out + depth) % len(HIDDEN)]
                seen.add((out_act, n_out, depth, hidden))
                yield out_act, n_out, depth, hidden
    for out_act in ("identity", "sigmoid"):
        for hidden in HIDDEN:
            if (out_act, 3, 2, hidden) not in seen:
                yield out_act, 3, 2, hidden


def _network(seed, sizes, acts, loss="mse", dtype=jnp.float64, article_mode=False):
    """Glorot-scaled normal weights, biases of std 0.3: well-scaled relu/identity layers.

    Built in NumPy (``MLP.from_layers``): nothing to compile for each architecture."""
    rng = np.random.default_rng(seed)
    layers = [
        (rng.normal(size=(n_in, n_out)) * np.sqrt(2 / (n_in + n_out)), 0.3 * rng.normal(size=n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    return MLP.from_layers(layers, acts, loss, dtype, article_mode), rng


def _random_network(seed, depth, n_out, hidden, out_act, loss="mse", article_mode=False):
    rng = np.random.default_rng(seed)
    sizes = tuple(int(n) for n in rng.integers(2, 6, size=depth)) + (n_out,)
    acts = (hidden,) * (depth - 1) + (out_act,)
    return _network(seed, sizes, acts, loss, article_mode=article_mode)


def _data(rng, params, n):
    X = jnp.asarray(rng.normal(size=(n, params.n_in)))
    Y = jnp.asarray(rng.uniform(size=(n, params.n_out)))
    return X, Y


def _autodiff_jacobian(params, X):
    """``jax.jacrev`` of the batch's outputs over ``ravel_pytree``'s flat parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.jacrev(lambda theta: predict_kernel(unravel(theta), X).reshape(-1))(flat)


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


# ---------------------------------------------------------------- the Jacobian
# Both Jacobians in one compiled program: one compilation for each architecture.
_hand_and_autodiff = jax.jit(
    lambda params, X: (jacobian_kernel(params, X), _autodiff_jacobian(params, X))
)


@pytest.mark.parametrize("out_act,n_out,depth,hidden", list(_cases()))
def test_jacobian_equals_jacrev(x64, out_act, n_out, depth, hidden):
    params, rng = _random_network(depth * 11 + n_out, depth, n_out, hidden, out_act)
    X, _ = _data(rng, params, 4)
    J, J_auto = _hand_and_autodiff(params, X)
    assert J.shape == (4 * n_out, n_params(params)) and J.dtype == jnp.float64
    np.testing.assert_allclose(J, J_auto, **TIGHT)


@pytest.mark.parametrize(
    "loss,out_act", [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")]
)
def test_jacobian_of_the_outputs_for_any_loss(x64, loss, out_act):
    params, rng = _network(5, (4, 5, 3), ("tanh", out_act), loss)
    X, _ = _data(rng, params, 6)
    np.testing.assert_allclose(jacobian(params, X), _autodiff_jacobian(params, X), **TIGHT)


def test_rows_are_examples_times_outputs_and_match_one_example(x64):
    params, rng = _network(1, (3, 4, 2), ("sigmoid", "identity"))
    X, Y = _data(rng, params, 5)
    J = jacobian(params, X)
    for n in range(5):
        one = example_jacobian(params, X[n])
        for k in range(2):
            np.testing.assert_allclose(J[n * 2 + k], one[k], rtol=1e-14, atol=1e-15)
    # the residuals' Jacobian is the same matrix
    np.testing.assert_array_equal(jacobian(params, X, Y), J)


def test_jit_and_vmap_over_stacked_networks(x64):
    params, rng = _network(2, (3, 4, 2), "tanh")
    X, _ = _data(rng, params, 5)
    np.testing.assert_allclose(jax.jit(jacobian_kernel)(params, X), jacobian(params, X), **TIGHT)
    other, _ = _network(3, (3, 4, 2), "tanh")
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
    both = jax.vmap(jacobian_kernel, in_axes=(0, None))(stacked, X)
    np.testing.assert_allclose(both[0], jacobian(params, X), **TIGHT)
    np.testing.assert_allclose(both[1], jacobian(other, X), **TIGHT)


def test_float32_stays_float32():
    params, rng = _network(4, (3, 4, 2), "sigmoid", dtype=jnp.float32)
    X, Y = _data(rng, params, 5)
    assert jacobian(params, X).dtype == jnp.float32
    ne = normal_equations(params, X, Y)
    assert {a.dtype for a in ne} == {jnp.dtype(jnp.float32)}


def test_layers_of_mixed_dtypes(x64):
    """A float32 layer under a float64 one: the sums take the wider dtype."""
    rng = np.random.default_rng(16)
    layers = [
        (np.float32(rng.normal(size=(3, 4))), np.float32(rng.normal(size=4))),
        (rng.normal(size=(4, 2)), rng.normal(size=2)),
    ]
    params = MLP.from_layers(layers, "tanh")
    X, Y = _data(rng, params, 5)
    J = np.asarray(jacobian(params, X), np.float64)
    ne = normal_equations(params, X, Y, block=2)
    assert ne.jtj.dtype == jnp.float64
    np.testing.assert_allclose(ne.jtj, J.T @ J, rtol=1e-6)


# ---------------------------------------------------------------- article mode
def test_article_mode_one_layer_by_hand(x64):
    """The article's "sigmoid" is tanh forward, O - O^2 backward, and its biases are skipped in
    the forward pass yet differentiated: dO_k/dw_ik = (O_k - O_k^2) x_i, dO_k/db_k = O_k - O_k^2.
    """
    params, rng = _network(6, (3, 2), "sigmoid", article_mode=True)
    X, _ = _data(rng, params, 4)
    w = np.asarray(params.layers[0].w)
    J = np.asarray(jacobian(params, X)).reshape(4, 2, 3 * 2 + 2)
    for n, x in enumerate(np.asarray(X)):
        o = np.tanh(x @ w)  # no bias in the article's forward pass
        for k in range(2):
            dw = np.zeros((3, 2))
            dw[:, k] = (o[k] - o[k] ** 2) * x
            db = np.zeros(2)
            db[k] = o[k] - o[k] ** 2
            np.testing.assert_allclose(J[n, k], np.concatenate([dw.ravel(), db]), **TIGHT)


def test_article_mode_gives_the_articles_gradient_not_autodiffs(x64):
    """J^T e is the article-mode hand gradient (times N); jacrev of its forward pass is not."""
    params, rng = _network(7, (4, 3, 2), "sigmoid", article_mode=True)
    X, Y = _data(rng, params, 6)
    J = jacobian(params, X, Y)
    e = np.asarray(predict_kernel(params, X) - Y)
    per = per_example_grads(params, X, Y)  # dE_n/dtheta, the article's rule
    for n in range(6):
        g_n = _flat(jax.tree.map(lambda a, n=n: a[n], per))
        np.testing.assert_allclose(J[2 * n : 2 * n + 2].T @ e[n], g_n, **TIGHT)
    loss, g = loss_and_gradient(params, X, Y)
    ne = normal_equations(params, X, Y, block=4)
    np.testing.assert_allclose(ne.jte, 6 * _flat(g), **TIGHT)
    np.testing.assert_allclose(ne.sse, 12 * loss, rtol=1e-12)
    np.testing.assert_allclose(ne.jtj, J.T @ J, **TIGHT)
    assert np.max(np.abs(J - _autodiff_jacobian(params, X))) > 1e-2


# ---------------------------------------------------------------- normal equations
@pytest.mark.parametrize("n_out", [3, 1])  # 1: J's rows formed, one product per block
@pytest.mark.parametrize("block", [1, 2, 3, 4, 7, 10, 11, 100, None])
def test_blocks_equal_the_dense_products(x64, block, n_out):
    params, rng = _network(8, (3, 5, 4, n_out), ("tanh", "relu", "sigmoid"))
    X, Y = _data(rng, params, 10)
    J = np.asarray(jacobian(params, X))
    e = np.asarray(predict_kernel(params, X) - Y).ravel()
    ne = normal_equations(params, X, Y, block=block)
    assert isinstance(ne, NormalEquations)
    np.testing.assert_allclose(ne.jtj, J.T @ J, **TIGHT)
    np.testing.assert_allclose(ne.jte, J.T @ e, **TIGHT)
    np.testing.assert_allclose(ne.sse, e @ e, rtol=1e-13)
    np.testing.assert_array_equal(ne.jtj, ne.jtj.T)


@pytest.mark.parametrize("out_act", OUTPUTS)
@pytest.mark.parametrize("depth", [1, 3])
def test_jte_is_n_times_the_hand_gradient(x64, out_act, depth):
    params, rng = _random_network(depth + 20, depth, 3, "tanh", out_act)
    X, Y = _data(rng, params, 9)
    loss, g = loss_and_gradient(params, X, Y)  # batch means
    ne = normal_equations(params, X, Y, block=4)
    np.testing.assert_allclose(ne.jte, 9 * _flat(g), **TIGHT)  # J^T e = N g
    np.testing.assert_allclose(ne.sse, 2 * 9 * loss, rtol=1e-12)  # e^T e = 2 N loss


@pytest.mark.parametrize("n_out", [2, 1])
def test_sample_weights_weigh_each_row_by_their_square_root(x64, n_out):
    params, rng = _network(9, (3, 4, n_out), ("sigmoid", "identity"))
    X, Y = _data(rng, params, 7)
    sw = jnp.asarray([0.0, 1.0, 2.5, 0.5, 3.0, 0.0, 1.5])
    r = np.repeat(np.sqrt(np.asarray(sw)), n_out)  # sqrt(w_n) for each of example n's rows
    Jw = r[:, None] * np.asarray(jacobian(params, X))
    ew = r * np.asarray(predict_kernel(params, X) - Y).ravel()
    for block in (2, 3, None):
        ne = normal_equations(params, X, Y, sw, block=block)
        np.testing.assert_allclose(ne.jtj, Jw.T @ Jw, **TIGHT)
        np.testing.assert_allclose(ne.jte, Jw.T @ ew, **TIGHT)
        np.testing.assert_allclose(ne.sse, ew @ ew, rtol=1e-13)
    loss, g = loss_and_gradient(params, X, Y, sw)  # weighted means
    W = float(jnp.sum(sw))
    np.testing.assert_allclose(ne.jte, W * _flat(g), **TIGHT)  # J^T e = W g
    np.testing.assert_allclose(ne.sse, 2 * W * loss, rtol=1e-12)  # e^T e = 2 W loss


def test_kernel_in_jit_and_vmap(x64):
    params, rng = _network(10, (3, 4, 2), "tanh")
    X, Y = _data(rng, params, 5)
    kernel = jax.jit(normal_equations_kernel, static_argnames="block")
    tree_allclose(kernel(params, X, Y, block=2), normal_equations(params, X, Y), **TIGHT)
    other, _ = _network(11, (3, 4, 2), "tanh")
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
    both = jax.vmap(lambda p: normal_equations_kernel(p, X, Y, block=3))(stacked)
    tree_allclose(jax.tree.map(lambda a: a[1], both), normal_equations(other, X, Y), **TIGHT)


# ---------------------------------------------------------------- parameter order
def test_flatten_order_is_w_row_major_then_b_layer_by_layer():
    params = MLP.from_layers(
        [([[1.0, 2.0], [3.0, 4.0]], [5.0, 6.0]), ([[7.0], [8.0]], [9.0])], "sigmoid"
    )
    np.testing.assert_array_equal(flatten_params(params), np.arange(1.0, 10.0))
    assert n_params(params) == 9


def test_flatten_unflatten_round_trip(x64):
    params, _ = _network(12, (4, 3, 5, 2), ("relu", "tanh", "softmax"), article_mode=True)
    flat = flatten_params(params)
    np.testing.assert_array_equal(flat, ravel_pytree(params)[0])
    assert flat.shape == (n_params(params),) == (4 * 3 + 3 + 3 * 5 + 5 + 5 * 2 + 2,)
    back = unflatten_params(params, flat)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    assert (back.activations, back.loss, back.article_mode) == (
        params.activations,
        params.loss,
        True,
    )
    tree_allclose(back, params, rtol=0)
    v = jnp.arange(flat.size, dtype=jnp.float64)
    np.testing.assert_array_equal(flatten_params(unflatten_params(params, v)), v)
    np.testing.assert_array_equal(jax.jit(unflatten_params)(params, v).layers[1].b, v[30:35])


def test_unflatten_casts_to_the_templates_dtype():
    params, _ = _network(13, (2, 3, 1), "tanh", dtype=jnp.float32)
    back = unflatten_params(params, np.arange(13, dtype=np.float64))
    assert {leaf.dtype for leaf in jax.tree.leaves(back)} == {jnp.dtype(jnp.float32)}


# ---------------------------------------------------------------- errors
def _stacked(params):
    return jax.tree.map(lambda a: jnp.stack([a, a]), params)


@pytest.fixture
def small():
    params, rng = _network(14, (3, 4, 2), "sigmoid", dtype=jnp.float32)
    X, Y = _data(rng, params, 5)
    return params, X, Y


def test_error_wrong_feature_count(small):
    params, X, Y = small
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        jacobian(params, X[:, :2])
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        normal_equations(params, X[:, :2], Y)


def test_error_wrong_target_width(small):
    params, X, Y = small
    with pytest.raises(ValueError, match="Your target length is 1, but our output needs 2"):
        normal_equations(params, X, Y[:, :1])
    with pytest.raises(ValueError, match="Your target length is 1, but our output needs 2"):
        jacobian(params, X, Y[:, :1])


@pytest.mark.parametrize(
    "call",
    [
        lambda p, X, Y: jacobian(p, X),
        lambda p, X, Y: normal_equations(p, X, Y),
        lambda p, X, Y: flatten_params(p),
        lambda p, X, Y: unflatten_params(p, jnp.zeros(2 * 22)),
    ],
    ids=["jacobian", "normal_equations", "flatten_params", "unflatten_params"],
)
def test_error_stacked_params(small, call):
    params, X, Y = small
    with pytest.raises(ValueError, match="takes ONE network .* got a stack of 2 networks"):
        call(_stacked(params), X, Y)


def test_error_nan_input(small):
    params, X, Y = small
    X, X_ok = X.at[1, 2].set(jnp.nan), X
    with pytest.raises(
        ValueError, match=r"X contains 1 NaN or inf value\(s\); the first is at index \(1, 2\)"
    ):
        jacobian(params, X)
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        normal_equations(params, X, Y)
    with pytest.raises(ValueError, match="Y contains 1 NaN or inf"):
        normal_equations(params, X_ok, Y.at[4, 0].set(jnp.inf))


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_error_loss_without_residuals(loss):
    params, rng = _network(15, (3, 4, 2), "sigmoid", loss, dtype=jnp.float32)
    X, Y = _data(rng, params, 5)
    jacobian(params, X)  # the outputs' Jacobian is fine for any loss
    message = re.escape(
        "needs a loss that is a sum of squared residuals e = O - T (mse), but the network's "
        f"loss is '{loss}'"
    )
    with pytest.raises(ValueError, match=message):
        jacobian(params, X, Y)
    with pytest.raises(ValueError, match=message):
        normal_equations(params, X, Y)
    with pytest.raises(ValueError, match=message):  # the kernel refuses too, when traced
        jax.jit(normal_equations_kernel)(params, X, Y)


@pytest.mark.parametrize("block", [0, -3, 2.5, True, "4"])
def test_error_bad_block(small, block):
    params, X, Y = small
    with pytest.raises(ValueError, match=f"block must be an integer >= 1 or None .*got {block!r}"):
        normal_equations(params, X, Y, block=block)


def test_error_unflatten_wrong_shape(small):
    params, _, _ = small
    P = n_params(params)
    for shape in [(P - 1,), (P + 1,), (1, P)]:
        message = (
            f"the vector must have shape ({P},) for a network of sizes (3, 4, 2), got shape {shape}"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            unflatten_params(params, jnp.zeros(shape))


def test_error_params_not_an_mlp(small):
    params, X, Y = small
    layers = list(params.layers)
    with pytest.raises(TypeError, match="params must be an MLP .* got list"):
        jacobian(layers, X)
    with pytest.raises(TypeError, match="params must be an MLP .* got list"):
        normal_equations(layers, X, Y)
    with pytest.raises(TypeError, match="params must be an MLP .* got list"):
        flatten_params(layers)


def test_error_bad_sample_weights(small):
    params, X, Y = small
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        normal_equations(params, X, Y, -jnp.ones(5))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(5,\)"):
        normal_equations(params, X, Y, jnp.ones(4))


# ---------------------------------------------------------------- no autodiff in the library
def test_the_module_never_uses_autodiff():
    """No jax.grad/jacrev/jacfwd (nor vjp, jvp, custom rules, gradcheck) in jbpnn/jacobian.py:
    every attribute it reads and every name it imports, from the parsed source (docstrings,
    which name them, do not count)."""
    tree = ast.parse(pathlib.Path(jacobian_module.__file__).read_text())
    forbidden = {
        "grad", "value_and_grad", "jacrev", "jacfwd", "jacobian", "hessian", "vjp", "jvp",
        "linearize", "linear_transpose", "custom_vjp", "custom_jvp", "gradcheck",
        "flatten_util", "ravel_pytree",
    }  # fmt: skip
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
            used.update((node.module or "").split("."))
        elif isinstance(node, ast.Import):
            used.update(part for alias in node.names for part in alias.name.split("."))
    assert used, "parsed nothing"
    assert "vmap" in used and "scan" in used  # the walk sees the module's jax calls
    assert not (used & forbidden), sorted(used & forbidden)


def test_jbpnn_jacobian_and_jbpnn_lbfgs_are_callable_as_the_api_names_them():
    """jbpnn.jacobian(params, X) and jbpnn.lbfgs(history=10) (issue 18's names) were
    modules: 'module' object is not callable."""
    import jbpnn
    from jbpnn.jacobian import jacobian, jacobian_kernel
    from jbpnn.lbfgs import two_loop
    from jbpnn.optimizers import lbfgs

    p = jbpnn.init_params(0, (2, 3, 1), ("tanh", "identity"))
    X = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(jbpnn.jacobian(p, X), jacobian(p, X))
    assert jbpnn.jacobian.jacobian_kernel is jacobian_kernel  # still the module
    assert jbpnn.lbfgs(history=5) == lbfgs(history=5) and jbpnn.lbfgs.two_loop is two_loop
    import jbpnn.gradcheck  # not imported by jbpnn itself (it holds the autodiff)

    Y = np.zeros((4, 1), np.float32)
    assert jbpnn.gradcheck(p, X, Y).passed and jbpnn.gradcheck.random_batch  # the same for it

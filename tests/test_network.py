"""forward/backward against autodiff, batched forms against per-example loops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose
from hypothesis import example, given, settings
from hypothesis import strategies as st

import jbpnn
from jbpnn import (
    VALID_PAIRS,
    backward,
    batch_gradient,
    example_loss,
    forward,
    init_params,
    loss,
    loss_and_gradient,
    per_example_grads,
    predict,
)
from jbpnn.network import deltas, loss_and_gradient_kernel

HIDDEN = ("sigmoid", "tanh", "relu", "identity")


def _cases():
    """Every (loss, output) pair at depths 1 to 4, the hidden unit cycling through HIDDEN;
    and every hidden unit at depths 2 and 3 under each loss's first output. So every
    activation meets every loss and every depth without the whole product (the new units
    have their own grid in tests/test_units.py; the hypothesis test below draws random
    architectures)."""
    seen = set()
    for i, (loss_name, out_act) in enumerate(VALID_PAIRS):
        for depth in (1, 2, 3, 4):
            hidden = "-" if depth == 1 else HIDDEN[(i + depth) % len(HIDDEN)]
            seen.add((loss_name, out_act, depth, hidden))
            yield loss_name, out_act, depth, hidden
    for loss_name, out_act in (("mse", "sigmoid"), ("cross_entropy", "softmax")):
        for depth in (2, 3):
            for hidden in HIDDEN:
                if (loss_name, out_act, depth, hidden) not in seen:
                    yield loss_name, out_act, depth, hidden
    for hidden in HIDDEN:
        if ("binary_cross_entropy", "sigmoid", 2, hidden) not in seen:
            yield "binary_cross_entropy", "sigmoid", 2, hidden


CASES = list(_cases())


def _network(seed, loss_name, out_act, depth, hidden, dtype):
    rng = np.random.default_rng(seed)
    sizes = tuple(int(n) for n in rng.integers(2, 7, size=depth + 1))
    acts = (hidden,) * (depth - 1) + (out_act,)
    # glorot keeps relu/identity networks well scaled; biases made non-zero below.
    params = init_params(jax.random.key(seed), sizes, acts, loss_name, "glorot", dtype)
    params = jax.tree.map(lambda a: a + 0.1 * jnp.asarray(rng.normal(size=a.shape), dtype), params)
    return params, rng


def _data(rng, params, n, loss_name, dtype):
    X = jnp.asarray(rng.normal(size=(n, params.n_in)), dtype)
    if loss_name == "cross_entropy":
        Y = jax.nn.one_hot(rng.integers(0, params.n_out, size=n), params.n_out, dtype=dtype)
    else:
        Y = jnp.asarray(rng.uniform(size=(n, params.n_out)), dtype)
    return X, Y


def _autodiff_batch_loss(params, X, Y):
    return jnp.mean(jax.vmap(example_loss, in_axes=(None, 0, 0))(params, X, Y))


@jax.jit
def _hand_and_autodiff(params, X, Y):
    """Every hand gradient beside its autodiff twin, in ONE compiled program per case."""
    _, cache = forward(params, X[0])
    one = backward(params, cache, Y[0]), jax.grad(example_loss)(params, X[0], Y[0])
    batch = loss_and_gradient(params, X, Y), jax.value_and_grad(_autodiff_batch_loss)(params, X, Y)
    per_auto = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, X, Y)
    return one, batch, (per_example_grads(params, X, Y), per_auto)


@pytest.mark.parametrize("loss_name,out_act,depth,hidden", CASES)
def test_backward_equals_autodiff_float64(x64, loss_name, out_act, depth, hidden):
    params, rng = _network(depth * 7 + len(hidden), loss_name, out_act, depth, hidden, jnp.float64)
    X, Y = _data(rng, params, 5, loss_name, jnp.float64)
    tol = dict(rtol=1e-10, atol=1e-13)
    one, ((l_hand, g_hand), (l_auto, g_auto)), per = _hand_and_autodiff(params, X, Y)
    tree_allclose(*one, **tol)  # one example
    np.testing.assert_allclose(l_hand, l_auto, rtol=1e-12)  # the batch's loss ...
    tree_allclose(g_hand, g_auto, **tol)  # ... and mean gradient
    tree_allclose(*per, **tol)  # per-example gradients


@pytest.mark.parametrize(
    "loss_name,out_act,hidden",
    [(loss, out, HIDDEN[i % len(HIDDEN)]) for i, (loss, out) in enumerate(VALID_PAIRS)],
)
def test_backward_equals_autodiff_float32(loss_name, out_act, hidden):
    params, rng = _network(3, loss_name, out_act, 3, hidden, jnp.float32)
    X, Y = _data(rng, params, 8, loss_name, jnp.float32)
    g_hand = batch_gradient(params, X, Y)
    g_auto = jax.grad(_autodiff_batch_loss)(params, X, Y)
    assert jax.tree.leaves(g_hand)[0].dtype == jnp.float32
    tree_allclose(g_hand, g_auto, rtol=1e-4, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    hidden=st.sampled_from(HIDDEN),
    pair=st.sampled_from(VALID_PAIRS),
    seed=st.integers(0, 2**16),
)
# found by hypothesis: a dead relu layer makes the output's net exactly 0 for two examples,
# where autodiff of the binary cross-entropy's net form was 0.5 off (fixed in losses.py)
@example(sizes=[1, 1, 1], hidden="relu", pair=("binary_cross_entropy", "sigmoid"), seed=0)
def test_property_random_architectures(sizes, hidden, pair, seed):
    loss_name, out_act = pair
    if out_act == "softmax":  # over one unit it is refused (1 for every input)
        sizes = [*sizes[:-1], max(sizes[-1], 2)]
    acts = (hidden,) * (len(sizes) - 2) + (out_act,)
    with jax.enable_x64(True):
        params = init_params(jax.random.key(seed), sizes, acts, loss_name, "glorot", jnp.float64)
        rng = np.random.default_rng(seed)
        X, Y = _data(rng, params, 3, loss_name, jnp.float64)
        tree_allclose(
            batch_gradient(params, X, Y),
            jax.grad(_autodiff_batch_loss)(params, X, Y),
            rtol=1e-9,
            atol=1e-12,
        )


def test_gradient_structure_matches_params():
    params = init_params(jax.random.key(0), (4, 3, 2))
    X = jnp.ones((5, 4))
    Y = jnp.zeros((5, 2))
    g = batch_gradient(params, X, Y)
    assert jax.tree.structure(g) == jax.tree.structure(params)
    assert g.activations == params.activations and g.loss == params.loss
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(params)):
        assert a.shape == b.shape and a.dtype == b.dtype
    stepped = jax.tree.map(lambda p, g: p - 0.1 * g, params, g)
    assert isinstance(stepped, jbpnn.MLP)


def test_jit_and_vmap_equal_python_loop(x64):
    params = init_params(jax.random.key(1), (5, 4, 3), "tanh", "cross_entropy", dtype=jnp.float64)
    rng = np.random.default_rng(1)
    X, Y = _data(rng, params, 6, "cross_entropy", jnp.float64)
    outs, grads, losses = [], [], []
    for x, y in zip(X, Y):  # plain Python loop, no jit, no vmap
        out, cache = forward(params, x)
        outs.append(out)
        grads.append(backward(params, cache, y))
        losses.append(example_loss(params, x, y))
    np.testing.assert_allclose(predict(params, X), np.stack(outs), rtol=1e-12)
    np.testing.assert_allclose(loss(params, X, Y), np.mean(losses), rtol=1e-12)
    mean_grad = jax.tree.map(lambda *g: sum(g) / len(g), *grads)
    tree_allclose(batch_gradient(params, X, Y), mean_grad, rtol=1e-12, atol=1e-15)
    per = per_example_grads(params, X, Y)
    for i, g in enumerate(grads):
        tree_allclose(jax.tree.map(lambda a: a[i], per), g, rtol=1e-12, atol=1e-15)
    # the one-example functions jit as they are
    out_jit, _ = jax.jit(forward)(params, X[0])
    np.testing.assert_allclose(out_jit, outs[0], rtol=1e-12)


def test_sample_weight_is_a_weighted_mean(x64):
    params = init_params(jax.random.key(2), (3, 4, 2), dtype=jnp.float64)
    rng = np.random.default_rng(2)
    X, Y = _data(rng, params, 6, "mse", jnp.float64)
    w = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    l_w, g_w = loss_and_gradient(params, X, Y, w)
    l_sub, g_sub = loss_and_gradient(params, X[:4], Y[:4])
    np.testing.assert_allclose(l_w, l_sub, rtol=1e-12)
    tree_allclose(g_w, g_sub, rtol=1e-12, atol=1e-15)


def test_batch_gradient_never_builds_per_example_weight_gradients():
    B, n_in, n_hidden, n_out = 7, 5, 6, 3
    params = init_params(jax.random.key(0), (n_in, n_hidden, n_out))
    X, Y = jnp.ones((B, n_in)), jnp.ones((B, n_out))
    jaxpr = jax.make_jaxpr(loss_and_gradient_kernel)(params, X, Y)
    forbidden = {(B, n_in, n_hidden), (B, n_hidden, n_out)}

    def subjaxprs(eqn_params):  # jaxprs nested in pjit/scan/while equations
        for value in eqn_params.values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(item, "eqns"):
                    yield item
                elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                    yield item.jaxpr

    def shapes(jx):
        for eqn in jx.eqns:
            for v in eqn.outvars:
                yield tuple(getattr(v.aval, "shape", ()))
            for sub in subjaxprs(eqn.params):
                yield from shapes(sub)

    found = set(shapes(jaxpr.jaxpr)) & forbidden
    assert not found, f"per-example weight gradients materialised: {found}"
    # and the per-example function does build them (so the check above can fail)
    jaxpr_per = jax.make_jaxpr(jbpnn.network._per_example_grads_kernel)(params, X, Y)
    assert set(shapes(jaxpr_per.jaxpr)) & forbidden


def test_pytree_transformations():
    params = init_params(jax.random.key(0), (3, 2, 1))
    leaves = jax.tree.leaves(params)
    assert len(leaves) == 4  # w, b per layer; names are metadata, not leaves
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    moved = jax.device_put(params, jax.devices()[0])
    assert moved.activations == params.activations
    doubled = jax.tree.map(lambda a: 2 * a, params)
    np.testing.assert_allclose(doubled.layers[0].w, 2 * params.layers[0].w)

    traces = []

    @jax.jit
    def f(p, x):
        traces.append(p.activations)  # a static tuple of str, not a tracer
        return forward(p, x)[0]

    f(params, jnp.ones(3))
    f(doubled, jnp.ones(3))
    assert traces == [("sigmoid", "sigmoid")]  # one trace: names are static
    batched = jax.vmap(lambda p: p.layers[0].w.sum())(
        jax.tree.map(lambda a: jnp.stack([a, a]), params)
    )
    assert batched.shape == (2,)


@pytest.mark.parametrize("dtype", [jnp.float32])
def test_sigmoid_is_stable(dtype):
    import warnings

    z = jnp.array([-1e4, -1e3, -100.0, -30.0, 0.0, 30.0, 100.0, 1e3, 1e4], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = jbpnn.ACTIVATIONS["sigmoid"].fn(z)
        params = jbpnn.MLP.from_layers([([[1e4]], [0.0])], dtype=dtype)
        out = predict(params, jnp.array([[-1.0], [1.0]], dtype))
    assert np.all(np.isfinite(o)) and np.all(np.isfinite(out))
    np.testing.assert_allclose(np.asarray(o)[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0])


def test_api_refuses_empty_batches_tuples_and_huge_seeds_by_name():
    from jbpnn.training import accuracy, evaluate

    p = init_params(0, (3, 2))
    X0, Y0 = np.zeros((0, 3)), np.zeros((0, 2))
    for fn in (jbpnn.loss, jbpnn.batch_gradient, jbpnn.loss_and_gradient, evaluate, accuracy):
        with pytest.raises(ValueError, match="X has 0 examples; this needs at least 1"):
            fn(p, X0, Y0)
    assert jbpnn.predict(p, X0).shape == (0, 2)  # predicting nothing is fine
    with pytest.raises(TypeError, match="params must be an MLP .* got tuple"):
        jbpnn.predict(tuple(p.layers), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="seed must lie in 0 .. 2\\*\\*32 - 1"):
        init_params(2**64, (3, 2))


def test_deltas_refuse_a_cache_of_other_params_by_its_widths():
    """A cache from another network, or a cut one, met a broadcasting error deep in JAX
    ("mul got incompatible shapes for broadcasting: (8,), (6,)")."""
    p = init_params(jax.random.key(0), (4, 5, 2), ("tanh", "softmax"), "cross_entropy")
    other = init_params(jax.random.key(0), (4, 6, 2), ("tanh", "softmax"), "cross_entropy")
    x, y = jnp.ones(4), jnp.array([1.0, 0.0])
    _, cache = forward(p, x)
    with pytest.raises(ValueError, match=r"widths \[4, 5, 2\], this network's are \[4, 6, 2\]"):
        deltas(other, cache, y)
    with pytest.raises(ValueError, match="3 arrays for this 2-layer network, got 2"):
        backward(p, cache[:2], y)


def test_an_output_of_exactly_one_half_is_class_0_as_the_estimators_predict():
    """jbpnn.accuracy counted O = 0.5 as class 1 (O >= 0.5) where BPNNClassifier.predict
    (scikit-learn's LabelBinarizer: O > 0.5) says class 0, so the estimator's early
    stopping scored its validation rows unlike its own predict and score."""
    from jbpnn import accuracy
    from jbpnn.params import MLP

    p = MLP.from_layers([(np.zeros((2, 1)), np.zeros(1))], "sigmoid", "binary_cross_entropy")
    X = np.ones((4, 2))
    assert accuracy(p, X, np.zeros((4, 1))) == 1.0 and accuracy(p, X, np.ones((4, 1))) == 0.0


# ---------------------------------------------------------------- dtypes and kernel shapes
def _mixed_network(dtypes, acts=("tanh", "sigmoid"), sizes=(4, 5, 3)):
    """A network whose layers have the given dtypes (MLP.from_layers keeps each its own)."""
    rng = np.random.default_rng(7)
    layers = [
        (
            jnp.asarray(rng.normal(size=(n_in, n_out)) * 0.5, dt),
            jnp.asarray(rng.normal(size=n_out) * 0.1, dt),
        )
        for n_in, n_out, dt in zip(sizes[:-1], sizes[1:], dtypes)
    ]
    return jbpnn.MLP.from_layers(layers, acts, "mse"), rng


def _plain_mixed_loss(params, X, Y, sample_weight):
    """The reference, autodiff of a plain forward pass in which each layer casts its input
    to its own dtype: sum_n s_n 1/2 |T_n - O_n|^2 / sum_n s_n."""
    o = X
    for layer, name in zip(params.layers, params.activations):
        o = jbpnn.ACTIVATIONS[name].fn(o.astype(layer.w.dtype) @ layer.w + layer.b)
    errors = 0.5 * jnp.sum((Y.astype(o.dtype) - o) ** 2, axis=1)
    s = sample_weight.astype(o.dtype)
    return jnp.sum(s * errors) / jnp.sum(s)


@pytest.mark.parametrize("order", ["float32 then float64", "float64 then float32"])
def test_a_network_of_layers_of_several_dtypes_gets_each_layers_gradient_in_its_dtype(x64, order):
    """loss_and_gradient(_kernel) returned every gradient in the widest dtype (jax.grad
    through apply: each layer's), so a lax.scan of SGD steps over the kernel failed
    ("carry input and carry output must have equal types")."""
    dtypes = (
        (jnp.float32, jnp.float64) if order.startswith("float32") else (jnp.float64, jnp.float32)
    )
    params, rng = _mixed_network(dtypes)
    X = jnp.asarray(rng.normal(size=(6, 4)), params.dtype)
    Y = jnp.asarray(rng.uniform(size=(6, 3)), params.dtype)
    s = jnp.asarray(rng.uniform(0.5, 2.0, size=6), params.dtype)
    value, grads = jax.jit(loss_and_gradient_kernel)(params, X, Y, s)
    ref_value, ref = jax.value_and_grad(_plain_mixed_loss)(params, X, Y, s)
    for leaf, g, r in zip(jax.tree.leaves(params), jax.tree.leaves(grads), jax.tree.leaves(ref)):
        assert g.dtype == leaf.dtype == r.dtype, (g.dtype, leaf.dtype, r.dtype)
    tree_allclose(grads, ref, rtol=2e-6, atol=1e-7)  # a float32 layer: float32's digits
    np.testing.assert_allclose(value, ref_value, rtol=2e-6)
    checked = loss_and_gradient(params, X, Y, s)[1]  # the checked path agrees
    assert [a.dtype for a in jax.tree.leaves(checked)] == [a.dtype for a in jax.tree.leaves(params)]
    tree_allclose(checked, grads, rtol=1e-12)
    _, cache = forward(params, X[0])  # one example: backward too
    assert [a.dtype for a in jax.tree.leaves(backward(params, cache, Y[0]))] == [
        a.dtype for a in jax.tree.leaves(params)
    ]

    def step(p, _):
        value, g = loss_and_gradient_kernel(p, X, Y, s)
        return jax.tree.map(lambda w, g: w - 0.1 * g, p, g), value

    final, losses = jax.lax.scan(step, params, None, length=3)
    assert [a.dtype for a in jax.tree.leaves(final)] == [a.dtype for a in jax.tree.leaves(params)]
    assert losses[-1] < losses[0]


def test_one_dtype_networks_compile_no_casts():
    """The per-layer casts are no-ops when the dtypes agree: a float32 network's kernel on
    float32 data has no convert_element_type (a bfloat16 layer in it has some)."""
    params = init_params(0, (4, 5, 3), ("tanh", "sigmoid"), "mse")
    X, Y, s = jnp.ones((6, 4)), jnp.zeros((6, 3)), jnp.ones(6)
    for f, args in ((loss_and_gradient_kernel, (X, Y, s)), (jbpnn.network.loss_kernel, (X, Y, s))):
        assert "convert_element_type" not in str(jax.make_jaxpr(f)(params, *args))
    mixed, _ = _mixed_network((jnp.bfloat16, jnp.float32))
    assert "convert_element_type" in str(jax.make_jaxpr(loss_and_gradient_kernel)(mixed, X, Y, s))


def test_kernels_cast_the_data_to_the_params_dtype(x64):
    """The unchecked kernels and forward/backward computed in the data's dtype (float64
    data, float32 params: float64 gradients), where the checked functions and apply cast
    to the params' (a jitted p - lr * g then changed the params' dtype and compiled again)."""
    from jbpnn.network import loss_kernel, predict_kernel

    params, rng = _network(3, "mse", "sigmoid", 2, "tanh", jnp.float32)
    X, Y = _data(rng, params, 6, "mse", jnp.float64)
    s = jnp.asarray(rng.uniform(0.5, 2.0, size=6))  # float64 too
    value, grads = jax.jit(loss_and_gradient_kernel)(params, X, Y, s)
    ref_value, ref = loss_and_gradient(params, X, Y, s)  # checked: casts to float32 first
    assert value.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    tree_allclose(grads, ref, rtol=1e-5, atol=1e-7)
    assert loss_kernel(params, X, Y, s).dtype == jnp.float32
    out = predict_kernel(params, X)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, predict(params, X), rtol=1e-6)
    y, cache = forward(params, X[0])
    assert y.dtype == jnp.float32 and all(c.dtype == jnp.float32 for c in cache)
    np.testing.assert_allclose(y, jbpnn.apply(params, X[0]), rtol=1e-6)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(backward(params, cache, Y[0])))
    assert example_loss(params, X[0], Y[0]).dtype == jnp.float32

    @jax.jit
    def step(p, X, Y):
        _, g = loss_and_gradient_kernel(p, X, Y)
        return jax.tree.map(lambda w, g: w - 0.1 * g, p, g)

    p = params
    for _ in range(3):
        p = step(p, X, Y)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(p))
    assert step._cache_size() == 1  # the params kept their dtype: one compilation


def test_kernels_name_a_wrong_shape_of_each_argument():
    """Shape mistakes in the unchecked kernels met vmap's view ("expected one example of
    shape (5,) ... got shape (); use the batched functions"), "vmap got inconsistent
    sizes", or a dot_general TypeError; now the argument, its shape and the one expected."""
    from jbpnn.network import loss_kernel, predict_kernel

    p = init_params(0, (5, 8, 3), "tanh", "mse")
    X, Y, s = jnp.ones((6, 5)), jnp.ones((6, 3)), jnp.ones(6)
    cases = [
        ((X[0], Y[0]), r"X must have shape \(batch, 5\), got shape \(5,\); for one example"),
        ((jnp.ones((6, 4)), Y), r"X must have shape \(batch, 5\), got shape \(6, 4\)"),
        ((X, jnp.ones(6)), r"Y must have shape \(6, 3\), .* got shape \(6,\)"),
        ((X, jnp.ones((5, 3))), r"Y must have shape \(6, 3\), .* got shape \(5, 3\)"),
        ((X, jnp.ones((6, 2))), r"Y must have shape \(6, 3\), .* got shape \(6, 2\)"),
        ((X, Y, jnp.ones(5)), r"sample_weight must have shape \(6,\), .* got shape \(5,\)"),
        ((X, Y, jnp.ones((6, 1))), r"sample_weight must have shape \(6,\), .* got shape \(6, 1\)"),
    ]
    for kernel in (loss_and_gradient_kernel, loss_kernel):
        for args, message in cases:
            for f in (kernel, jax.jit(kernel)):  # eager, and while tracing
                with pytest.raises(ValueError, match=f"{kernel.__name__}: {message}"):
                    f(p, *args)
    for bad, message in (
        (X[0], r"\(batch, 5\), got shape \(5,\)"),
        (jnp.ones((6, 4)), r"\(batch, 5\), got shape \(6, 4\)"),
    ):
        with pytest.raises(ValueError, match=f"predict_kernel: X must have shape {message}"):
            jax.jit(predict_kernel)(p, bad)
    # under vmap over stacked networks (train_many's layout) the shapes are each network's
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), p)
    value, _ = jax.vmap(loss_and_gradient_kernel, in_axes=(0, None, None, None))(stacked, X, Y, s)
    assert value.shape == (2,)

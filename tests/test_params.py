"""Params construction, init schemes and every bad-input error message."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn import (
    MLP,
    VALID_PAIRS,
    batch_gradient,
    forward,
    init_params,
    loss,
    per_example_grads,
    predict,
)
from jbpnn.losses import describe_valid_pairs


def test_sizes_shapes_and_names():
    p = init_params(jax.random.key(0), (64, 128, 64, 10), "relu", "cross_entropy")
    assert p.sizes == (64, 128, 64, 10)
    assert [l.w.shape for l in p.layers] == [(64, 128), (128, 64), (64, 10)]
    assert [l.b.shape for l in p.layers] == [(128,), (64,), (10,)]
    # one name with a cross-entropy loss: hidden layers get it, the output the matching one
    assert p.activations == ("relu", "relu", "softmax")
    assert init_params(
        jax.random.key(0), (3, 2, 1), "tanh", "binary_cross_entropy"
    ).activations == (
        "tanh",
        "sigmoid",
    )
    assert init_params(jax.random.key(0), (3, 2, 1), "tanh").activations == ("tanh", "tanh")


def test_article_init_range_and_determinism():
    p = init_params(jax.random.key(0), (50, 40, 3))
    for leaf in jax.tree.leaves(p):
        assert leaf.dtype == jnp.float32
        assert float(jnp.max(jnp.abs(leaf))) <= 0.2
    assert float(jnp.max(jnp.abs(p.layers[0].w))) > 0.19  # really spans the range
    q = init_params(0, (50, 40, 3))  # an int seed means jax.random.key(seed)
    r = init_params(jax.random.key(1), (50, 40, 3))
    for a, b, c in zip(jax.tree.leaves(p), jax.tree.leaves(q), jax.tree.leaves(r)):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_glorot_and_he():
    n_in, n_out = 200, 300
    g = init_params(jax.random.key(0), (n_in, n_out), init="glorot")
    limit = np.sqrt(6 / (n_in + n_out))
    assert float(jnp.max(jnp.abs(g.layers[0].w))) <= limit
    assert float(jnp.max(jnp.abs(g.layers[0].w))) > 0.95 * limit
    np.testing.assert_array_equal(g.layers[0].b, 0)
    h = init_params(jax.random.key(0), (n_in, n_out), "relu", init="he")
    np.testing.assert_allclose(float(jnp.std(h.layers[0].w)), np.sqrt(2 / n_in), rtol=0.05)


def test_dtype_float64(x64):
    p = init_params(jax.random.key(0), (3, 2), dtype=jnp.float64)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(p))


def test_from_layers_exact_values():
    p = MLP.from_layers([([[1.0, 2.0]], [0.5, -0.5]), ([[3.0], [4.0]], [0.0])], "identity")
    np.testing.assert_array_equal(p.layers[1].w, [[3.0], [4.0]])
    out, cache = forward(p, jnp.array([1.0]))
    # net = 1*[1, 2] + [0.5, -0.5] = [1.5, 1.5]; out = 1.5*3 + 1.5*4 = 10.5
    np.testing.assert_allclose(cache[1], [1.5, 1.5])
    np.testing.assert_allclose(out, [10.5])
    assert len(cache) == 3 and cache[0].shape == (1,)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(activations="swish"), r"unknown activation 'swish'; expected one of \['identity'"),
        (dict(loss="hinge"), r"unknown loss 'hinge'; expected one of \['binary_cross_entropy'"),
        (dict(init="xavier"), r"unknown init 'xavier'; expected one of \['article', 'glorot'"),
        (dict(activations=("tanh",)), r"got 1 activation names for 2 layers"),
        (dict(activations=("softmax", "softmax")), r"'softmax' may only be used on the output"),
        (
            dict(activations=("tanh", "sigmoid"), loss="cross_entropy"),
            r"loss 'cross_entropy' cannot be used with output activation 'sigmoid'",
        ),
        (
            dict(activations=("tanh", "softmax"), loss="binary_cross_entropy"),
            r"binary_cross_entropy with sigmoid",
        ),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        init_params(jax.random.key(0), (3, 4, 2), **kwargs)


def test_invalid_pair_message_lists_every_valid_pair():
    with pytest.raises(ValueError) as info:
        init_params(jax.random.key(0), (3, 2), ("relu",), "cross_entropy")
    for loss_name, act in VALID_PAIRS:
        assert loss_name in str(info.value) and act in str(info.value)
    assert describe_valid_pairs() in str(info.value)


@pytest.mark.parametrize("sizes", [(3,), (3, 0, 1), (3, 2.5), ()])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes must be at least two positive integers"):
        init_params(jax.random.key(0), sizes)


def test_from_layers_shape_errors():
    with pytest.raises(ValueError, match=r"layer 0: b must have shape \(2,\)"):
        MLP.from_layers([(np.ones((3, 2)), np.ones(3))])
    with pytest.raises(ValueError, match="layer 1: w has 4 inputs but layer 0 has 2 outputs"):
        MLP.from_layers([(np.ones((3, 2)), np.ones(2)), (np.ones((4, 1)), np.ones(1))])
    with pytest.raises(ValueError, match="at least one layer"):
        MLP.from_layers([])


@pytest.fixture
def net():
    return init_params(jax.random.key(0), (9, 2, 1))


def test_wrong_feature_count_uses_the_articles_message(net):
    with pytest.raises(ValueError, match="Your data length is 8, but our input needs 9"):
        predict(net, np.ones((4, 8)))
    with pytest.raises(ValueError, match="Your data length is 8, but our input needs 9"):
        forward(net, np.ones(8))
    with pytest.raises(ValueError, match="Your data length is 10, but our input needs 9"):
        loss(net, np.ones((4, 10)), np.ones((4, 1)))


def test_wrong_target_width(net):
    with pytest.raises(ValueError, match="Your target length is 2, but our output needs 1"):
        batch_gradient(net, np.ones((4, 9)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="Y must have shape \\(batch, 1\\).*one-hot"):
        loss(net, np.ones((4, 9)), np.ones(4))
    with pytest.raises(ValueError, match="X has 4 examples but Y has 3"):
        per_example_grads(net, np.ones((4, 9)), np.ones((3, 1)))


def test_wrong_rank(net):
    with pytest.raises(ValueError, match=r"X must have shape \(batch, 9\), got shape \(9,\)"):
        predict(net, np.ones(9))
    with pytest.raises(ValueError, match=r"one example of shape \(9,\).*got shape \(2, 9\)"):
        forward(net, np.ones((2, 9)))


def test_non_finite_data_is_located(net):
    X = np.ones((5, 9))
    X[3, 4] = np.nan
    X[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"X contains 2 NaN or inf .* index \(3, 4\)"):
        predict(net, X)
    Y = np.ones((5, 1))
    Y[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"Y contains 1 NaN or inf .* index \(2, 0\)"):
        loss(net, np.ones((5, 9)), Y)
    # the check can be switched off for hot loops
    out = predict(net, X, check_finite=False)
    assert np.isnan(out[3, 0])


def test_errors_are_raised_before_tracing(net):
    """Inside a user's jit the shape checks still fire at trace time, as ValueError."""
    with pytest.raises(ValueError, match="Your data length is 8"):
        jax.jit(predict)(net, jnp.ones((2, 8)))


def test_host_data_lists_and_jax_arrays_are_accepted_and_checked(net):
    rows = [[0.0] * 9, [1.0] * 9]
    np.testing.assert_allclose(predict(net, rows), predict(net, jnp.asarray(rows)))
    rows[1][3] = float("nan")
    with pytest.raises(ValueError, match=r"X contains 1 NaN or inf .* index \(1, 3\)"):
        predict(net, rows)
    with pytest.raises(ValueError, match=r"X contains 1 NaN or inf .* index \(1, 3\)"):
        predict(net, jnp.asarray(rows))

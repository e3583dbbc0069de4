"""Params construction, init schemes and every bad-input error message."""

from __future__ import annotations

import json

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
        (dict(activations="mish"), r"unknown activation 'mish'; expected one of \['gelu'"),
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


# ------------------------------------------------------------------ pytree ergonomics
def test_key_paths_read_like_attributes():
    p = init_params(jax.random.key(0), (3, 4, 2))
    flat, treedef = jax.tree_util.tree_flatten_with_path(p)
    assert [jax.tree_util.keystr(k) for k, _ in flat] == [
        ".layers[0].w",
        ".layers[0].b",
        ".layers[1].w",
        ".layers[1].b",
    ]
    for (_, leaf), expected in zip(flat, jax.tree.leaves(p)):
        assert leaf is expected
    assert jax.tree_util.keystr(flat[2][0], simple=True, separator="/") == "layers/1/w"
    # the same structure with or without keys: unflatten gives the params back
    rebuilt = treedef.unflatten([leaf for _, leaf in flat])
    assert rebuilt.activations == p.activations and rebuilt.loss == p.loss
    np.testing.assert_array_equal(rebuilt.layers[1].w, p.layers[1].w)
    assert jax.tree.structure(p) == treedef
    # tree_map_with_path sees the same names (a per-leaf weight decay, for example)
    decayed = jax.tree_util.tree_map_with_path(
        lambda k, a: a * 0.5 if jax.tree_util.keystr(k).endswith(".w") else a, p
    )
    np.testing.assert_allclose(decayed.layers[0].w, 0.5 * p.layers[0].w)
    np.testing.assert_array_equal(decayed.layers[0].b, p.layers[0].b)


def test_tree_map_device_put_with_a_sharding_jit_and_vmap():
    p = init_params(jax.random.key(0), (3, 4, 2), "tanh")
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    moved = jax.device_put(p, sharding)
    assert isinstance(moved, MLP) and moved.activations == p.activations
    assert all(leaf.sharding == sharding for leaf in jax.tree.leaves(moved))
    doubled = jax.tree.map(lambda a: 2 * a, moved)
    np.testing.assert_allclose(doubled.layers[1].b, 2 * p.layers[1].b)
    X = jnp.ones((5, 3))
    np.testing.assert_allclose(jax.jit(predict)(moved, X), predict(p, X), rtol=1e-6)
    stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), p)
    outs = jax.vmap(lambda q: predict(q, X))(stacked)
    np.testing.assert_allclose(outs[1], predict(doubled, X), rtol=1e-6)


def _json_round_trip(arch):
    return json.loads(json.dumps(arch))


def test_architecture_round_trip_without_a_template(x64):
    layers = [
        (np.arange(6.0).reshape(3, 2), np.array([0.5, -0.5])),
        (np.ones((2, 1), np.float32), np.zeros(1, np.float32)),
    ]
    p = MLP.from_layers(layers, ("tanh", "sigmoid"), "mse", article_mode=True)
    arch = p.architecture()
    assert arch == {
        "sizes": [3, 2, 1],
        "activations": ["tanh", "sigmoid"],
        "loss": "mse",
        "article_mode": True,
        "dtypes": [["float64", "float64"], ["float32", "float32"]],
        "networks": None,
    }
    q = MLP.from_architecture(_json_round_trip(arch), jax.tree.leaves(p))
    assert jax.tree.structure(q) == jax.tree.structure(p)
    assert q.architecture() == arch
    for a, b in zip(jax.tree.leaves(q), jax.tree.leaves(p)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # host arrays (e.g. from np.load) are cast to the recorded dtypes
    r = MLP.from_architecture(arch, [np.asarray(a, np.float64) for a in jax.tree.leaves(p)])
    assert [a.dtype.name for a in jax.tree.leaves(r)] == ["float64"] * 2 + ["float32"] * 2


def test_architecture_of_stacked_networks_and_inside_jit():
    from jbpnn.many import InitSpec, init_many

    stacked = init_many(InitSpec(sizes=(4, 3, 2), activations="relu"), [0, 1, 2])
    arch = stacked.architecture()
    assert arch["sizes"] == [4, 3, 2] and arch["networks"] == 3
    q = MLP.from_architecture(_json_round_trip(arch), jax.tree.leaves(stacked))
    for a, b in zip(jax.tree.leaves(q), jax.tree.leaves(stacked)):
        np.testing.assert_array_equal(a, b)
    # inside jit the leaves are tracers: shapes are checked, values are not read
    one = init_params(0, (4, 3, 2))
    arch1 = one.architecture()
    rebuilt = jax.jit(lambda leaves: MLP.from_architecture(arch1, leaves))(jax.tree.leaves(one))
    np.testing.assert_array_equal(rebuilt.layers[1].w, one.layers[1].w)


def test_from_architecture_errors():
    p = init_params(0, (3, 4, 2))
    arch, leaves = p.architecture(), jax.tree.leaves(p)
    with pytest.raises(ValueError, match=r"describe 2 layer\(s\), so 4 arrays .* got 3"):
        MLP.from_architecture(arch, leaves[:3])
    bad = list(leaves)
    bad[2] = np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=r"\.layers\[1\]\.w must have shape \(4, 2\) .* \(5, 2\)"):
        MLP.from_architecture(arch, bad)
    with pytest.raises(ValueError, match=r"missing keys \['loss'\]"):
        MLP.from_architecture({k: v for k, v in arch.items() if k != "loss"}, leaves)
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        MLP.from_architecture({**arch, "colour": "red"}, leaves)
    with pytest.raises(TypeError, match=r"architecture\['dtypes'\]\[0\]\[1\] must be a floating"):
        MLP.from_architecture({**arch, "dtypes": [["float32", "int32"], ["float32"] * 2]}, leaves)
    with pytest.raises(ValueError, match=r"architecture\['sizes'\] must be >= 2 positive"):
        MLP.from_architecture({**arch, "sizes": [3]}, leaves)
    with pytest.raises(ValueError, match="loss 'cross_entropy' cannot be used with output"):
        MLP.from_architecture({**arch, "loss": "cross_entropy"}, leaves)
    nan = list(leaves)
    nan[3] = np.array([0.0, np.inf], np.float32)
    with pytest.raises(ValueError, match=r"layer 1: b holds 1 NaN or inf .* index \(1,\)"):
        MLP.from_architecture(arch, nan)


# ------------------------------------------------------------------ refused arrays and dtypes
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_from_layers_refuses_non_finite_params(value):
    w1 = np.ones((2, 3))
    w1[1, 2] = value
    layers = [(np.ones((4, 2)), np.zeros(2)), (w1, np.zeros(3))]
    with pytest.raises(ValueError, match=r"layer 1: w holds 1 NaN or inf value\(s\).*\(1, 2\)"):
        MLP.from_layers(layers)
    b0 = np.zeros(2)
    b0[1] = value
    with pytest.raises(ValueError, match=r"layer 0: b holds 1 NaN or inf value\(s\).*\(1,\)"):
        MLP.from_layers([(np.ones((4, 2)), b0)])
    # an explicit opt-out, for code that checks (and words the error) itself
    p = MLP.from_layers(layers, check_finite=False)
    assert not np.isfinite(np.asarray(p.layers[1].w)).all()


@pytest.mark.parametrize("dtype", [jnp.int32, np.int64, "int8", bool, jnp.complex64])
def test_non_float_dtypes_are_refused(dtype):
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype .* got "):
        init_params(0, (3, 2), dtype=dtype)
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype .* got "):
        MLP.from_layers([(np.ones((3, 2)), np.zeros(2))], dtype=dtype)


def test_tuple_dtypes_and_keys_are_refused():
    with pytest.raises(TypeError, match=r"dtype must be one floating dtype .* got a tuple"):
        init_params(0, (3, 2), dtype=(jnp.float32, jnp.float32))
    with pytest.raises(TypeError, match=r"dtype must be one floating dtype .* got a list"):
        MLP.from_layers([(np.ones((3, 2)), np.zeros(2))], dtype=[jnp.float32])
    with pytest.raises(TypeError, match=r"key must be an int seed or a jax.random.key, got tuple"):
        init_params((0, 1), (3, 2))
    with pytest.raises(TypeError, match=r"key must be an int seed or a jax.random.key, got bool"):
        init_params(True, (3, 2))
    # integer arrays with no dtype still become floats, as before
    p = MLP.from_layers([([[1, 2]], [0, 0])], "identity")
    assert jnp.issubdtype(p.dtype, jnp.floating)


def test_one_bare_pair_is_refused_with_a_hint():
    w, b = np.ones((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match=r"one bare \(w, b\) pair.*\[\(w, b\)\]"):
        MLP.from_layers((w, b))
    assert MLP.from_layers([(w, b)]).sizes == (3, 2)


# ---------------------------------------------------------------- the draws, bucketed
# one layer; two, with a draw longer than the shortest (6400 > 4096); four (3 -> 4 keys)
_SIZES = [(3, 1), (64, 100, 10), (5, 7, 9, 11, 2)]


def _reference(key, sizes, init, dtype):
    """The per-architecture program init_params compiled before the bucketed draws: its
    float32 draws, rounded to ``dtype`` by NumPy (nearest even) as every path does."""
    from jbpnn.params import _init_layers

    k = jax.random.key(key) if isinstance(key, int) else key
    layers = _init_layers(k, sizes, init)  # float32
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return [type(layers[0])(*(np.asarray(a).astype(dtype) for a in layer)) for layer in layers]


@pytest.mark.parametrize("init", ["glorot", "article", "he"])
def test_bucketed_draws_equal_the_per_architecture_program_bit_for_bit(init):
    for sizes in _SIZES:
        for key in (0, 2**31 + 5, jax.random.key(7)):  # 2**31 + 5 overflowed int32 before
            got = init_params(key, sizes, "tanh", "mse", init).layers
            for layer, ref in zip(got, _reference(key, sizes, init, jnp.float32)):
                assert layer.w.shape == ref.w.shape and layer.w.dtype == ref.w.dtype
                np.testing.assert_array_equal(np.asarray(layer.w), np.asarray(ref.w))
                np.testing.assert_array_equal(np.asarray(layer.b), np.asarray(ref.b))


def test_bucketed_draws_in_float64_and_under_tracing(x64):
    for init in ("glorot", "article", "he"):
        got = init_params(3, (5, 7, 9, 2), "tanh", "mse", init, dtype=jnp.float64)
        for layer, ref in zip(got.layers, _reference(3, (5, 7, 9, 2), init, jnp.float64)):
            assert layer.w.dtype == jnp.float64
            np.testing.assert_array_equal(np.asarray(layer.w), np.asarray(ref.w))
    # a traced key cannot be read on the host: the per-architecture program draws it
    stacked = jax.jit(jax.vmap(lambda k: init_params(k, (4, 3, 2), "tanh").layers[0].w))(
        jax.random.split(jax.random.key(1), 3)
    )
    one = init_params(jax.random.split(jax.random.key(1), 3)[2], (4, 3, 2), "tanh")
    np.testing.assert_array_equal(np.asarray(stacked[2]), np.asarray(one.layers[0].w))


def test_draws_in_16_bit_dtypes_equal_the_per_architecture_program():
    """The bounds in 16-bit dtypes round through float32 on both paths (glorot's for
    n_in + n_out = 66985 rounded straight to float16 one step above; every value moved),
    and "he" keeps the dtype asked for (its float64 scale made the per-architecture
    program's float32). float64 without jax_enable_x64 (float32 on both paths once) is
    refused by both now: init_params and init_many alike."""
    from jbpnn.many import InitSpec, init_many

    cases = [("float16", (1, 66984), "glorot"), ("bfloat16", (1, 157108), "glorot")]
    cases += [(d, (5, 7, 3), i) for d in ("float16", "bfloat16") for i in ("glorot", "he")]
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="dtype float64 needs 64-bit JAX"):
            init_params(0, (5, 7, 3), "tanh", "mse", "glorot", dtype="float64")
        with pytest.raises(ValueError, match="dtype float64 needs 64-bit JAX"):
            init_many(InitSpec((5, 7, 3), "tanh", "mse", "glorot", "float64"), [0, 1])
    for dtype, sizes, init in cases:
        got = init_params(0, sizes, "tanh", "mse", init, dtype=dtype).layers
        many = init_many(InitSpec(sizes, "tanh", "mse", init, dtype), [0, 1]).layers
        for i, ref in enumerate(_reference(0, sizes, init, dtype)):
            assert got[i].w.dtype == ref.w.dtype == jax.dtypes.canonicalize_dtype(dtype)
            for w in (got[i].w, many[i].w[0]):
                np.testing.assert_array_equal(np.asarray(w), np.asarray(ref.w), err_msg=dtype)


def test_a_wide_layer_among_many_narrow_ones_is_not_drawn_padded():
    """The bucketed layout pads every layer to the widest (and the layer count to a power
    of two): 1024-1024 then 16 layers of 1 would draw and hold 34M numbers for 1M weights
    (a 2048-wide one: 5 GB where the network is 17 MB). Such a network takes the
    per-architecture program: the same values."""
    from jbpnn import params as params_module

    sizes = (1025, 1024) + (1,) * 16
    assert not params_module._bucket_fits(sizes)
    assert params_module._bucket_fits((64, 64, 10)) and params_module._bucket_fits((784, 512, 10))
    params_module._scaled_draws.clear_cache()
    got = init_params(0, sizes, "tanh", "mse", "glorot").layers
    assert params_module._scaled_draws._cache_size() == 0  # no bucketed draw
    for layer, ref in zip(got, _reference(0, sizes, "glorot", jnp.float32)):
        np.testing.assert_array_equal(np.asarray(layer.w), np.asarray(ref.w))


@pytest.mark.parametrize("init", ["glorot", "article", "he"])
def test_mapped_draws_equal_init_params_bit_for_bit(monkeypatch, init):
    """init_many's draw for many networks on a CPU: a compiled loop over the seeds, in
    chunks (here of 2: the last one padded), equal to init_params seed by seed."""
    from jbpnn import params as params_module

    monkeypatch.setattr(params_module, "MAPPED_CHUNK", 2)
    seeds = [3, 0, 2**31 + 5, 11, 7]
    for sizes in [(5, 7, 3), (1, 10, 1), (64, 64, 10), (3, 9, 4, 2, 5)]:
        layers = params_module.mapped_layers(seeds, sizes, init, jnp.float32)
        assert layers is not None
        for n, seed in enumerate(seeds):
            for layer, ref in zip(layers, init_params(seed, sizes, "tanh", "mse", init).layers):
                assert layer.w.shape == (5, *ref.w.shape) and layer.w.dtype == ref.w.dtype
                np.testing.assert_array_equal(np.asarray(layer.w)[n], np.asarray(ref.w))
                np.testing.assert_array_equal(np.asarray(layer.b)[n], np.asarray(ref.b))


def test_architectures_of_one_bucket_share_one_compiled_draw():
    """A uniform init draws its random bits on the host (jbpnn._threefry) and compiles
    only the scaling, one program per bucket; "he" (a normal draw) compiles the bucketed
    threefry program, one per bucket too."""
    from jbpnn import params as params_module

    for init, program in (
        ("glorot", params_module._scaled_draws),
        ("he", params_module._bucketed_draws),
    ):
        params_module._bucketed_draws.clear_cache()
        program.clear_cache()
        for sizes in [(6, 5, 3), (7, 9, 4), (60, 60, 2), (2, 2, 2)]:  # 2 layers, <= 4096 w
            init_params(0, sizes, "sigmoid", "mse", init)
        assert program._cache_size() == 1
        init_params(0, (100, 50, 3), "sigmoid", "mse", init)  # 5000 weights: the next length
        assert program._cache_size() == 2
        if init == "glorot":  # no threefry program at all
            assert params_module._bucketed_draws._cache_size() == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_host_threefry_draws_equal_jaxs_bit_for_bit(x64, dtype):
    """jbpnn._threefry's bits (JAX's threefry-2x32, split and uniform, in NumPy) scaled
    by _scaled_draws equal the bucketed JAX program for every init and bucket shape, for
    integer seeds at the edges of uint32 and for typed keys (split ones included)."""
    from jbpnn import params as params_module
    from jbpnn._threefry import host_unit_draws

    keys = [0, 1, 2**31 - 1, 2**31 + 5, 2**32 - 1, jax.random.key(9)]
    keys.append(jax.random.split(jax.random.key(4), 3)[2])
    for sizes in [(3, 1), (64, 100, 10), (5, 7, 9, 11, 2), (784, 128, 10)]:
        for init in ("glorot", "article", "he"):
            plan = params_module._bucket_plan(sizes, init, jnp.dtype(dtype))
            _, count, width, b_width, lo, hi = plan
            for key in keys:
                seed = isinstance(key, int)
                k = np.uint32(key) if seed else key
                ref = params_module._bucketed_draws(k, lo, hi, count, width, b_width, init, seed)
                got = params_module._draws(k, lo, hi, count, width, b_width, init, seed)
                for a, b in zip(jax.device_get(got), jax.device_get(ref)):
                    assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape
                    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
            data = np.array([0, 5], np.uint32)
            unit = host_unit_draws(data, count, width, b_width, init, dtype)
            assert (unit is None) == (init == "he")  # a normal draw stays with JAX
    assert host_unit_draws(np.array([0, 5], np.uint32), 2, 8, 0, "glorot", "float16") is None


def test_integer_seeds_under_another_default_prng_draw_as_that_prng():
    """jax.random.key(seed) is a threefry key only under JAX's default implementation: with
    jax_default_prng_impl="rbg" an integer seed drew threefry's bucketed values (since the
    host's threefry bits, and rbg ones laid out by the bucket before), not the
    per-architecture program's; now it goes through that program. (A subprocess: the
    setting is process-wide.)"""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import jax, numpy as np
jax.config.update("jax_default_prng_impl", "rbg")
import jbpnn
from jbpnn import params as P
for init in ("glorot", "article"):
    got = jbpnn.init_params(3, (5, 7, 2), "tanh", "mse", init).layers
    ref = P._init_layers_from_seed(np.uint32(3), (5, 7, 2), init)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(np.asarray(a.w), np.asarray(b.w))
        np.testing.assert_array_equal(np.asarray(a.b), np.asarray(b.b))
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],  # this checkout's jbpnn
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.parametrize("init", ["glorot", "article", "he"])
def test_every_dtype_starts_from_the_same_weights(x64, init):
    """Each dtype drew its own weights from the same key: float32 and float64 runs with
    the same seed started from unrelated networks."""
    from jbpnn.many import InitSpec, init_many

    sizes = (5, 7, 3)
    ref = init_params(3, sizes, "tanh", "mse", init)  # float32
    for dtype in ("float16", "bfloat16", "float64"):
        got = init_params(3, sizes, "tanh", "mse", init, dtype=dtype)
        many = init_many(InitSpec(sizes, "tanh", "mse", init, dtype), [3]).layers
        traced = jax.jit(lambda k: init_params(k, sizes, "tanh", "mse", init, dtype=dtype))(
            jax.random.key(3)
        )
        for i, layer in enumerate(ref.layers):
            want = [np.asarray(a).astype(jax.dtypes.canonicalize_dtype(dtype)) for a in layer]
            assert got.layers[i].w.dtype == want[0].dtype
            for w, b in (got.layers[i], (many[i].w[0], many[i].b[0]), traced.layers[i]):
                np.testing.assert_array_equal(np.asarray(w), want[0], err_msg=dtype)
                np.testing.assert_array_equal(np.asarray(b), want[1], err_msg=dtype)

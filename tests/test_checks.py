"""The one validation module: numbers, integers, thresholds, keys, finite arrays."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn.checks import as_key, check_finite, check_int, check_number, check_threshold, is_concrete


def test_check_int():
    assert (
        check_int("epochs", np.int64(3), 1) == 3
        and check_int("n", None, 1, allow_none=True) is None
    )
    for bad in (0, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
            check_int("epochs", bad, 1)


def test_check_number_passes_traced_values_and_refuses_bad_plain_ones():
    check_number("lr", 0.5, low=0.0)
    check_number("lr", np.array(0.5), low=0.0)
    jax.jit(lambda lr: check_number("lr", lr, low=0.0) or lr)(-1.0)  # traced: unknown here
    for bad, match in (
        (-1, "at least 0"),
        (float("nan"), "finite"),
        ("x", "a number"),
        (True, "a number"),
        (1.0, "below 1.0"),
    ):
        with pytest.raises(ValueError, match=match):
            check_number("m", bad, low=0.0, high=1.0)
    with pytest.raises(ValueError, match="integer"):
        check_number("every", 2.5, low=1, integer=True)


def test_check_threshold():
    assert check_threshold("tol", None) is None and check_threshold("tol", 1) == 1.0
    for bad in (-0.1, float("inf"), "0.1", False):
        with pytest.raises(ValueError, match="tol must be"):
            check_threshold("tol", bad)


def test_as_key_one_key_kind():
    k = as_key(5)
    assert jnp.issubdtype(k.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(jax.random.key(5)))
    # a legacy PRNGKey is wrapped: the same bits, so the same shuffles
    legacy = as_key(jax.random.PRNGKey(5))
    np.testing.assert_array_equal(jax.random.key_data(legacy), jax.random.key_data(k))
    assert as_key(k) is k
    np.testing.assert_array_equal(
        jax.random.key_data(as_key(None)), jax.random.key_data(jax.random.key(0))
    )
    for bad in (-1, 2**64, 2**70):
        with pytest.raises(ValueError, match="seed must lie in 0 .. 2\\*\\*32 - 1"):
            as_key(bad)
    for bad in ("abc", 1.5, True):
        with pytest.raises(TypeError, match="key must be an int seed or a jax.random.key"):
            as_key(bad)
    with pytest.raises(ValueError, match="ONE jax.random key"):
        as_key(jax.random.split(k, 3))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        as_key(np.zeros(3, np.uint32))


def test_a_seed_becomes_a_key_without_compiling_or_copying_first(monkeypatch):
    compiled, copies = [], []
    put = jax.device_put
    monkeypatch.setattr(jax, "device_put", lambda *a, **k: copies.append(a) or put(*a, **k))

    def listen(event: str, duration: float, **kw) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kw.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        keys = [as_key(seed) for seed in (271828, 2**32 - 1)]  # seeds no other test uses
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiled == [] and copies == []  # a device_put first cost 4x the time (96 us)
    for seed, k in zip((271828, 2**32 - 1), keys):
        np.testing.assert_array_equal(jax.random.key_data(k), [0, seed])


def test_check_finite_names_the_argument_and_index():
    check_finite("X", np.ones((2, 2)))
    a = np.ones((2, 3))
    a[1, 2] = np.inf
    with pytest.raises(
        ValueError,
        match="X_val contains 1 NaN or inf value\\(s\\); the first is at index \\(1, 2\\)",
    ):
        check_finite("X_val", a)
    with pytest.raises(ValueError, match="X contains"):
        check_finite("X", jnp.asarray(a))
    # inside the user's jit the values are unknown: no check, no error
    jax.jit(lambda x: check_finite("X", x) or x)(jnp.asarray(a))
    assert is_concrete(jnp.ones(2)) and is_concrete(np.ones(2))
    assert jax.jit(lambda x: jnp.asarray(is_concrete(x)))(jnp.ones(2)) == False  # noqa: E712


def test_check_data_names_the_argument_and_refuses_strings_and_ragged_rows():
    from jbpnn.checks import check_data

    kw = dict(n_in=3, n_out=2, dtype=jnp.float32)
    X, Y, w = check_data(np.zeros((4, 3)), np.zeros((4, 2)), np.ones(4), **kw)
    assert X.dtype == jnp.float32 and Y.shape == (4, 2) and w.shape == (4,)
    bad = np.zeros((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="X_val contains 1 NaN"):
        check_data(bad, np.zeros((4, 2)), **kw, names=("X_val", "Y_val"))
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        check_data(np.zeros((4, 2)), **kw)
    with pytest.raises(ValueError, match="Y_val has shape|Your target length is 3"):
        check_data(np.zeros((4, 3)), np.zeros((4, 3)), **kw, names=("X_val", "Y_val"))
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        check_data([[1, 2, 3], [1, 2]], **kw)
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        check_data([["a", "b", "c"]], **kw)
    with pytest.raises(ValueError, match="sample_weight must have shape \\(4,\\)"):
        check_data(np.zeros((4, 3)), np.zeros((4, 2)), np.ones(3), **kw)


def test_values_that_overflow_the_dtype_are_reported_as_such():
    from jbpnn.checks import check_data

    with pytest.raises(ValueError, match="X has values too large for float32 .* 1e\\+300"):
        check_data(np.array([[1e300, 0.0, 1.0]]), n_in=3, n_out=2, dtype=jnp.float32)
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        check_data(np.array([[np.nan, 0.0, 1.0]]), n_in=3, n_out=2, dtype=jnp.float32)


def test_16_bit_overflow_and_underflow_are_named_for_jax_arrays_and_weights():
    """A JAX array that overflows float16 read "contains NaN or inf: clean the data"; weights
    of 1e-30 read "values from 0 to 0, sum 0" and 1e30 "from inf to inf": the user's were
    finite and positive."""
    import jax.numpy as jnp

    import jbpnn
    import jbpnn.gradcheck

    p16 = jbpnn.init_params(0, (4, 3, 1), "tanh", dtype="float16")
    with pytest.raises(
        ValueError, match=r"X has values too large for float16 \(largest \|value\| 1e\+05"
    ):
        jbpnn.predict(p16, jnp.full((2, 4), 1e5, jnp.float32))
    X, Y = np.ones((16, 4)), np.zeros((16, 1))
    for sw, to in ((1e-30, "0, every one"), (1e30, "inf")):
        held = re.escape(f"from {sw:g} to {sw:g}, outside what the network's dtype float16 holds")
        with pytest.raises(ValueError, match=f"sample_weight has values {held}.* round to {to}"):
            jbpnn.loss(p16, X, Y, sample_weight=np.full(16, sw))
    pb = jbpnn.init_params(0, (4, 3, 1), "tanh", dtype="bfloat16")  # its NumPy kind is "V"
    with pytest.raises(ValueError, match="dtype bfloat16 holds .* round to inf"):
        jbpnn.loss(pb, X, Y, sample_weight=np.full(16, 1e39))
    # a few weights that round to 0 weigh as little as they did: accepted
    assert np.isfinite(jbpnn.loss(p16, X, Y, sample_weight=np.r_[np.full(8, 1e-9), np.ones(8)]))
    with pytest.raises(
        ValueError, match=r"got float16: .*gradcheck\(params, X, Y, dtype='float32'\)"
    ):
        jbpnn.gradcheck(p16, X, Y)
    assert jbpnn.gradcheck(p16, X, Y, dtype="float32").passed

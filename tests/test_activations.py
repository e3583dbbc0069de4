"""The activation table: forward formulas, and backprop(O, g) == J(net)^T g by autodiff.

Every test runs in float64 (the ``x64`` fixture of conftest.py, per test) so the
hand-written derivatives can be held to the autodiff ones at rtol 1e-12.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn.activations import (
    ACTIVATIONS,
    ARTICLE_MODE_ACTIVATIONS,
    activation_table,
    get_activation,
)

pytestmark = pytest.mark.usefixtures("x64")

NAMES = ["sigmoid", "tanh", "relu", "identity", "softmax", "swish", "gelu", "softplus"]
SEEDS = [0, 1, 2, 3]
RTOL = 1e-12
# Derivatives written from O lose absolute precision ~eps where f' is tiny (saturation):
# e.g. sigmoid'(30) ~ 1e-13 computed as O (1 - O) with 1 - O known to ~1e-16.
ATOL = 1e-15


def _f64(x) -> jax.Array:
    a = jnp.asarray(x, dtype=jnp.float64)
    assert a.dtype == jnp.float64, "x64 is not in force"
    return a


def _random_net(seed: int, n: int = 7, scale: float = 3.0) -> np.ndarray:
    """Random nets, kept at least 0.1 away from 0 (relu's kink)."""
    rng = np.random.default_rng(seed)
    net = rng.normal(0.0, scale, size=n)
    return net + np.copysign(0.1, net)


def _cotangent(seed: int, n: int = 7) -> np.ndarray:
    return np.random.default_rng(1000 + seed).normal(0.0, 2.0, size=n)


def _vjp(fn, net, g):
    _, pullback = jax.vjp(fn, net)
    return pullback(g)[0]


def _z(act, net):
    """What the unit's derivatives are written from: its output, or its net input."""
    return net if act.uses == "net" else act.fn(net)


def _assert_backprop_matches_vjp(name: str, net: np.ndarray, g: np.ndarray) -> None:
    act = ACTIVATIONS[name]
    net, g = _f64(net), _f64(g)
    o = act.fn(net)
    assert o.dtype == jnp.float64
    got = act.backprop(_z(act, net), g)
    want = _vjp(act.fn, net, g)
    assert got.shape == want.shape == net.shape
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)


# --- table shape ------------------------------------------------------------------------


def test_table_has_exactly_the_documented_activations():
    assert set(ACTIVATIONS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_output_only_is_true_only_for_softmax(name):
    assert ACTIVATIONS[name].output_only is (name == "softmax")


# --- backprop == autodiff vjp -----------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_backprop_equals_vjp_random(name, seed):
    _assert_backprop_matches_vjp(name, _random_net(seed), _cotangent(seed))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_backprop_equals_vjp_small_nets(name, seed):
    # Near the origin, where f' is far from its saturated values (relu still >= 0.1 away).
    _assert_backprop_matches_vjp(name, _random_net(seed, scale=0.5), _cotangent(seed))


@pytest.mark.parametrize(
    "net",
    [
        [-30.0, 30.0, -25.0, 25.0, 0.5],
        [30.0, 30.0, -30.0, 1.0, -1.0],
        [-1000.0, 1000.0, 12.0, -12.0, 3.0],
    ],
    ids=["pm30", "two_at_30", "pm1000"],
)
@pytest.mark.parametrize("name", NAMES)
def test_backprop_equals_vjp_saturated(name, net):
    g = np.array([1.5, -2.0, 0.7, 3.0, -0.4])
    _assert_backprop_matches_vjp(name, np.asarray(net), g)
    # And the result is finite: no 0 * inf or inf - inf at saturation.
    act = ACTIVATIONS[name]
    assert np.all(np.isfinite(np.asarray(act.backprop(_z(act, _f64(net)), _f64(g)))))


@pytest.mark.parametrize("name", NAMES)
def test_backprop_is_linear_in_g_and_not_identity(name):
    # Guards against a backprop that ignores O: for a non-identity activation, J^T g != g.
    act = ACTIVATIONS[name]
    net, g = _f64(_random_net(5)), _f64(_cotangent(5))
    got = np.asarray(act.backprop(_z(act, net), g))
    if name == "identity":
        np.testing.assert_array_equal(got, np.asarray(g))
    else:
        assert not np.allclose(got, np.asarray(g))
    np.testing.assert_allclose(
        np.asarray(act.backprop(_z(act, net), 3.0 * g)), 3.0 * got, rtol=RTOL, atol=ATOL
    )


# relu's derivative at exactly net == 0 is a convention (the subgradient is [0, 1]);
# the library picks 0: backprop(O, g) passes g only where O > 0, so O == 0 blocks it.
def test_relu_backprop_at_zero_output_is_zero():
    relu = ACTIVATIONS["relu"]
    o = relu.fn(_f64([0.0, -0.0, -2.0, 0.0, 3.0]))
    g = _f64([1.0, -2.0, 5.0, 7.0, 4.0])
    np.testing.assert_array_equal(np.asarray(relu.backprop(o, g)), [0.0, 0.0, 0.0, 0.0, 4.0])
    np.testing.assert_array_equal(
        np.asarray(relu.backprop(_f64(np.zeros(3)), _f64([1.0, 2.0, 3.0]))), np.zeros(3)
    )


# --- forward formulas against independent numpy ones ------------------------------------


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


NUMPY_FORMS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "identity": lambda x: x,
    "softmax": _np_softmax,
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0))),
    "softplus": lambda x: np.log1p(np.exp(x)),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_fn_matches_numpy_formula(name, seed):
    net = _random_net(seed, scale=5.0)
    got = ACTIVATIONS[name].fn(_f64(net))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), NUMPY_FORMS[name](net), rtol=RTOL, atol=0.0)


def test_sigmoid_saturates_without_overflow():
    net = np.array([-30.0, 30.0, -700.0, 700.0])
    got = np.asarray(ACTIVATIONS["sigmoid"].fn(_f64(net)))
    np.testing.assert_allclose(got, 1.0 / (1.0 + np.exp(-net)), rtol=RTOL, atol=0.0)
    big = np.asarray(ACTIVATIONS["sigmoid"].fn(_f64([-1000.0, 1000.0])))
    np.testing.assert_array_equal(big, [0.0, 1.0])


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_sums_to_one_and_is_positive(seed):
    o = np.asarray(ACTIVATIONS["softmax"].fn(_f64(_random_net(seed, scale=5.0))))
    assert np.all(o > 0)
    np.testing.assert_allclose(np.sum(o), 1.0, rtol=RTOL)


@pytest.mark.parametrize("shift", [-7.25, 3.0, 100.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_invariant_to_adding_a_constant(seed, shift):
    softmax = ACTIVATIONS["softmax"].fn
    net = _random_net(seed)
    # Adding `shift` rounds net by ~|shift| eps: a relative change ~1e-14 at |shift| = 100.
    np.testing.assert_allclose(
        np.asarray(softmax(_f64(net + shift))), np.asarray(softmax(_f64(net))), rtol=RTOL
    )


def test_softmax_no_overflow_at_1000():
    softmax = ACTIVATIONS["softmax"].fn
    o = np.asarray(softmax(_f64([1000.0, 999.0, 0.0, -1000.0])))
    assert np.all(np.isfinite(o))
    e = np.exp([0.0, -1.0, -1000.0, -2000.0])
    np.testing.assert_allclose(o, e / e.sum(), rtol=RTOL, atol=0.0)
    np.testing.assert_allclose(np.asarray(softmax(_f64([1000.0, 1000.0]))), [0.5, 0.5], rtol=RTOL)


# --- article mode: a reproduced bug, deliberately not a derivative ----------------------


def test_article_mode_table_selection():
    assert activation_table(article_mode=True) is ARTICLE_MODE_ACTIVATIONS
    assert activation_table(article_mode=False) is ACTIVATIONS
    assert activation_table() is ACTIVATIONS
    assert set(ARTICLE_MODE_ACTIVATIONS) == set(ACTIVATIONS)
    for name in NAMES:
        if name != "sigmoid":
            assert ARTICLE_MODE_ACTIVATIONS[name] is ACTIVATIONS[name]


@pytest.mark.parametrize("seed", SEEDS)
def test_article_mode_sigmoid_is_tanh_forward(seed):
    net = _random_net(seed)
    got = ARTICLE_MODE_ACTIVATIONS["sigmoid"].fn(_f64(net))
    np.testing.assert_allclose(np.asarray(got), np.tanh(net), rtol=RTOL, atol=0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_article_mode_sigmoid_backprop_is_o_minus_o_squared(seed):
    act = ARTICLE_MODE_ACTIVATIONS["sigmoid"]
    net, g = _f64(_random_net(seed)), _f64(_cotangent(seed))
    o = act.fn(net)
    want = (np.asarray(o) - np.asarray(o) ** 2) * np.asarray(g)
    np.testing.assert_allclose(np.asarray(act.backprop(o, g)), want, rtol=RTOL, atol=0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_article_mode_sigmoid_backprop_is_not_the_tanh_derivative(seed):
    # The article's bug 1 is reproduced: O - O^2 differs from tanh' = 1 - O^2 by 1 - O,
    # which is never 0 for finite net, so every component of J^T g is wrong.
    act = ARTICLE_MODE_ACTIVATIONS["sigmoid"]
    net, g = _f64(_random_net(seed, scale=1.0)), _f64(_cotangent(seed))
    got = np.asarray(act.backprop(act.fn(net), g))
    true = np.asarray(_vjp(jnp.tanh, net, g))
    diff = np.abs(got - true)
    assert np.all(diff > 1e-3 * np.abs(np.asarray(g))), (got, true)
    np.testing.assert_allclose(
        true - got, (1.0 - np.tanh(np.asarray(net))) * np.asarray(g), rtol=1e-10, atol=ATOL
    )


# --- lookup -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_get_activation_known(name):
    assert get_activation(name) is ACTIVATIONS[name]


@pytest.mark.parametrize("bad", ["sigmod", "Sigmoid", "", "mish", None, ["relu"]])
def test_get_activation_unknown_raises_listing_valid_names(bad):
    with pytest.raises(ValueError) as info:
        get_activation(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in NAMES:
        assert repr(name) in message


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gelu_second_derivative_is_finite_in_the_tails(x64, dtype):
    """p(net) (2 - net^2) was 0 * inf = NaN once net^2 overflowed (1e155 in float64,
    1e20 in float32); the value there is 0."""
    from jbpnn.activations import ACTIVATIONS

    second = ACTIVATIONS["gelu"].second
    big = 1e20 if dtype == jnp.float32 else 1e155
    net = jnp.asarray([-big, -45.0, -3.0, 0.0, 1.5, 45.0, big], dtype)
    one = jnp.ones_like(net)
    got = np.asarray(second(net, one, one), np.float64)  # f''(net) r g
    x = np.asarray(net, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi) * (2 - x**2)
    want = np.where(np.abs(x) > 40, 0.0, want)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)

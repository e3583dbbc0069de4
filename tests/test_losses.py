"""The loss table: errors against numpy formulas, and delta == -dE/dnet by autodiff.

Sign convention under test (losses.py): a delta is minus the derivative of the
example's error with respect to the output units' net inputs, Err = -dE/dnet.
Every test runs in float64 (the ``x64`` fixture of conftest.py, per test).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn.activations import ACTIVATIONS, bind
from jbpnn.losses import (
    LOSSES,
    VALID_PAIRS,
    check_pair,
    describe_valid_pairs,
    get_loss,
)

pytestmark = pytest.mark.usefixtures("x64")

ACT_NAMES = ["sigmoid", "tanh", "relu", "identity", "softmax", "swish", "gelu", "softplus"]
EXPECTED_PAIRS = [
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("mse", "relu"),
    ("mse", "identity"),
    ("mse", "softmax"),
    ("mse", "swish"),
    ("mse", "gelu"),
    ("mse", "softplus"),
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "sigmoid"),
]
INVALID_PAIRS = [
    (loss, act) for loss in LOSSES for act in ACT_NAMES if (loss, act) not in EXPECTED_PAIRS
]
SEEDS = [0, 1, 2]
N_OUT = 6
RTOL = 1e-12
ATOL = 1e-14  # for components of the delta that nearly cancel (T_k ~ O_k)


def _f64(x) -> jax.Array:
    a = jnp.asarray(x, dtype=jnp.float64)
    assert a.dtype == jnp.float64, "x64 is not in force"
    return a


def _random_net(seed: int, n: int = N_OUT) -> np.ndarray:
    """Random nets, kept at least 0.1 away from 0 (relu's kink)."""
    net = np.random.default_rng(seed).normal(0.0, 2.0, size=n)
    return net + np.copysign(0.1, net)


def _targets(loss: str, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(500 + seed)
    if loss == "cross_entropy":
        if kind == "onehot":
            return np.eye(N_OUT)[rng.integers(N_OUT)]
        p = rng.random(N_OUT)
        return p / p.sum()
    if loss == "binary_cross_entropy":
        t = rng.random(N_OUT)
        if kind == "hard":
            t = np.round(t)  # exactly 0 or 1
        return t
    return rng.normal(0.0, 2.0, size=N_OUT)  # mse: any reals


TARGET_KINDS = {
    "mse": ["reals"],
    "cross_entropy": ["onehot", "probs"],
    "binary_cross_entropy": ["soft", "hard"],
}
PAIR_CASES = [
    pytest.param(loss, act, kind, id=f"{loss}-{act}-{kind}")
    for loss, act in VALID_PAIRS
    for kind in TARGET_KINDS[loss]
]


def _neg_grad(loss: str, act: str, net, t):
    error, fn = LOSSES[loss].error, ACTIVATIONS[act].fn
    return -jax.grad(lambda n: error(fn(n), t))(net)


# --- the table --------------------------------------------------------------------------


def test_valid_pairs_are_exactly_the_expected_ones():
    assert list(VALID_PAIRS) == EXPECTED_PAIRS
    assert len(set(VALID_PAIRS)) == len(VALID_PAIRS)


def test_table_has_exactly_the_documented_losses():
    assert set(LOSSES) == {"mse", "cross_entropy", "binary_cross_entropy"}


# --- delta == -dE/dnet ------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("loss", "act", "kind"), PAIR_CASES)
def test_delta_is_minus_grad_of_error(loss, act, kind, seed):
    entry, activation = LOSSES[loss], ACTIVATIONS[act]
    net, t = _f64(_random_net(seed)), _f64(_targets(loss, kind, seed))
    o = activation.fn(net)
    got = entry.delta(o, t, bind(activation, net))  # swish, gelu, softplus: f' from net
    want = _neg_grad(loss, act, net, t)
    assert got.dtype == want.dtype == jnp.float64
    assert got.shape == want.shape == (N_OUT,)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)
    # The sign convention: a step along +delta lowers the error (delta = -grad, not +grad).
    error = entry.error
    step = 1e-4 * got
    assert float(error(activation.fn(net + step), t)) < float(error(o, t))


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_delta_with_unnormalised_targets(seed):
    softmax = ACTIVATIONS["softmax"]
    rng = np.random.default_rng(900 + seed)
    t_np = rng.random(N_OUT) * 2.0  # sum(t) is about 6, not 1
    assert abs(t_np.sum() - 1.0) > 0.5
    net, t = _f64(_random_net(seed)), _f64(t_np)
    o = softmax.fn(net)
    got = np.asarray(LOSSES["cross_entropy"].delta(o, t, softmax))
    np.testing.assert_allclose(got, t_np - np.asarray(o) * t_np.sum(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        got, np.asarray(_neg_grad("cross_entropy", "softmax", net, t)), rtol=RTOL, atol=ATOL
    )
    # ... and it is not the one-hot shortcut T - O.
    assert not np.allclose(got, t_np - np.asarray(o))


# --- errors against numpy ---------------------------------------------------------------


def _np_error(loss: str, o: np.ndarray, t: np.ndarray) -> float:
    if loss == "mse":
        return 0.5 * np.sum((t - o) ** 2)
    if loss == "cross_entropy":
        return -np.sum(t * np.log(o))
    return -np.sum(t * np.log(o) + (1.0 - t) * np.log(1.0 - o))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("loss", "act", "kind"), PAIR_CASES)
def test_error_matches_numpy_formula(loss, act, kind, seed):
    net, t = _random_net(seed), _targets(loss, kind, seed)
    o = np.asarray(ACTIVATIONS[act].fn(_f64(net)))
    got = LOSSES[loss].error(_f64(o), _f64(t))
    assert got.shape == ()
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(float(got), _np_error(loss, o, t), rtol=RTOL, atol=0.0)


def test_mse_error_known_value():
    got = LOSSES["mse"].error(_f64([1.0, 2.0, -1.0]), _f64([0.0, 4.0, -1.0]))
    assert float(got) == 2.5  # 0.5 * (1 + 4 + 0)


def test_cross_entropy_error_known_value():
    got = LOSSES["cross_entropy"].error(_f64([0.25, 0.5, 0.25]), _f64([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(float(got), np.log(2.0), rtol=RTOL)


def test_binary_cross_entropy_error_known_value():
    got = LOSSES["binary_cross_entropy"].error(_f64([0.5, 0.9]), _f64([1.0, 0.0]))
    np.testing.assert_allclose(float(got), np.log(2.0) - np.log(0.1), rtol=RTOL)


# --- the log clip -----------------------------------------------------------------------


def test_cross_entropy_error_finite_when_softmax_output_underflows():
    softmax = ACTIVATIONS["softmax"]
    net = _f64([0.0, -800.0, 1.0])  # exp(-800) underflows: O_1 is exactly 0
    o = softmax.fn(net)
    assert float(o[1]) == 0.0
    t = _f64([0.0, 1.0, 0.0])
    e = float(LOSSES["cross_entropy"].error(o, t))
    assert np.isfinite(e)
    assert e > 700.0  # -log(tiny) ~ 708: still a huge penalty, not hidden
    # Target weight on a zero output only adds; zero weight there costs nothing.
    e0 = float(LOSSES["cross_entropy"].error(o, _f64([0.0, 0.0, 1.0])))
    np.testing.assert_allclose(e0, -np.log(float(o[2])), rtol=RTOL)
    assert np.all(np.isfinite(np.asarray(LOSSES["cross_entropy"].delta(o, t, softmax))))


@pytest.mark.parametrize(
    ("net", "t"),
    [([-800.0, 0.5], [1.0, 0.3]), ([40.0, 0.5], [0.0, 0.3]), ([-800.0, 40.0], [0.5, 0.5])],
    ids=["o_is_0_t_is_1", "o_is_1_t_is_0", "both_soft"],
)
def test_binary_cross_entropy_error_finite_when_output_saturates(net, t):
    sigmoid = ACTIVATIONS["sigmoid"]
    o = sigmoid.fn(_f64(net))
    assert float(o[0]) in (0.0, 1.0)
    e = float(LOSSES["binary_cross_entropy"].error(o, _f64(t)))
    assert np.isfinite(e)
    assert e > 300.0  # the saturated wrong unit dominates
    delta = LOSSES["binary_cross_entropy"].delta(o, _f64(t), sigmoid)
    assert np.all(np.isfinite(np.asarray(delta)))


def test_error_zero_output_with_zero_target_is_exactly_zero():
    # xlogy(0, 0) == 0: a zero output with zero target contributes nothing.
    e = LOSSES["cross_entropy"].error(_f64([0.0, 1.0]), _f64([0.0, 1.0]))
    assert float(e) == 0.0
    e = LOSSES["binary_cross_entropy"].error(_f64([0.0, 1.0]), _f64([0.0, 1.0]))
    assert float(e) == 0.0


# --- pairs and lookup -------------------------------------------------------------------


@pytest.mark.parametrize(("loss", "act"), EXPECTED_PAIRS)
def test_check_pair_accepts_valid(loss, act):
    assert check_pair(loss, act) is None


@pytest.mark.parametrize(("loss", "act"), INVALID_PAIRS)
def test_check_pair_rejects_invalid_naming_valid_pairs(loss, act):
    with pytest.raises(ValueError) as info:
        check_pair(loss, act)
    message = str(info.value)
    assert repr(loss) in message and repr(act) in message
    assert describe_valid_pairs() in message
    assert "cross_entropy with softmax" in message
    assert "binary_cross_entropy with sigmoid" in message
    assert "mse with sigmoid, tanh, relu, identity, softmax" in message


def test_invalid_pairs_cover_the_documented_mismatches():
    assert ("cross_entropy", "sigmoid") in INVALID_PAIRS
    assert ("binary_cross_entropy", "softmax") in INVALID_PAIRS
    assert len(INVALID_PAIRS) == 3 * len(ACT_NAMES) - len(EXPECTED_PAIRS)


def test_check_pair_unknown_loss_raises():
    with pytest.raises(ValueError, match="unknown loss 'nll'"):
        check_pair("nll", "softmax")


@pytest.mark.parametrize("name", ["mse", "cross_entropy", "binary_cross_entropy"])
def test_get_loss_known(name):
    assert get_loss(name) is LOSSES[name]


@pytest.mark.parametrize("bad", ["MSE", "crossentropy", "", None, ["mse"]])
def test_get_loss_unknown_raises_listing_valid_names(bad):
    with pytest.raises(ValueError) as info:
        get_loss(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in LOSSES:
        assert repr(name) in message


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_log_losses_are_exact_where_an_output_rounds_to_0_or_1(dtype):
    """The clamped log of an output that rounds to 1 (or 0) reported 87.3 in float32 and
    9.7 in float16 whatever the net input (binary cross-entropy at net 30: 87.3, not 30;
    cross-entropy at a logit gap of 12 in float16: 9.7, not 12): every loss path (loss,
    loss_and_gradient, example_loss, the ensemble kernel) takes them from the net input."""
    import jbpnn
    from jbpnn.ensemble import ensemble_loss_and_gradient
    from jbpnn.many import stack_params
    from jbpnn.network import example_loss, loss_and_gradient_kernel, loss_kernel

    tol = 1e-6 if dtype == jnp.float32 else 2e-3
    nets = [6.0, 11.0] if dtype == jnp.float16 else [17.0, 30.0, 80.0]
    for net in nets:
        for target in (0.0, 1.0):
            p = jbpnn.MLP.from_layers(
                [(np.array([[net]]), np.array([0.0]))], "sigmoid", "binary_cross_entropy"
            )
            p = jax.tree.map(lambda a: a.astype(dtype), p)
            X, Y = jnp.ones((1, 1), dtype), jnp.full((1, 1), target, dtype)
            exact = float(np.logaddexp(0.0, net) - target * net)  # softplus(net) - T net
            for got in (
                loss_kernel(p, X, Y),
                loss_and_gradient_kernel(p, X, Y)[0],
                example_loss(p, X[0], Y[0]),
                jax.vmap(ensemble_loss_and_gradient, in_axes=(0, None, None, None))(
                    stack_params([p, p]), X, Y, None
                )[0][1],
            ):
                assert float(got) == pytest.approx(exact, rel=tol, abs=tol), (net, target)
    gap = 12.0 if dtype == jnp.float16 else 100.0  # softmax: the target's output rounds to 0
    p = jbpnn.MLP.from_layers([(np.array([[gap, 0.0]]), np.zeros(2))], "softmax", "cross_entropy")
    p = jax.tree.map(lambda a: a.astype(dtype), p)
    X, Y = jnp.ones((1, 1), dtype), jnp.array([[0.0, 1.0]], dtype)
    assert float(loss_kernel(p, X, Y)) == pytest.approx(gap, rel=tol)


@pytest.mark.parametrize("name, unit", [("binary_cross_entropy", "sigmoid"),
                                        ("cross_entropy", "softmax")])  # fmt: skip
def test_autodiff_of_the_net_input_forms_is_the_delta_at_net_zero(x64, name, unit):
    # binary cross-entropy from net as max(net, 0) + log1p(e^-|net|) - T net: JAX's
    # derivatives of max and |.| at 0 gave -T, not s(0) - T = 0.5 - T (a relu network whose
    # hidden units are all 0 for an example has net exactly 0 at the output, with 0 biases)
    from jbpnn.losses import LOSSES

    loss, act = LOSSES[name], ACTIVATIONS[unit]
    for net in (jnp.zeros(3), jnp.array([0.0, 2.0, -1.0]), jnp.array([-40.0, 0.0, 40.0])):
        t = jnp.array([0.2, 0.3, 0.5])
        grad = jax.grad(lambda n: loss.error_net(n, t))(net)
        delta = loss.delta(act.fn(net), t, act)  # -dE/dnet
        np.testing.assert_allclose(np.asarray(grad), -np.asarray(delta), rtol=1e-12, atol=1e-15)

"""gradcheck: the hand-derived gradient against jax.grad and finite differences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jbpnn
from jbpnn import activations, network
from jbpnn.cli.gradcheck import main
from jbpnn.gradcheck import (
    DEFAULT_TOLERANCES,
    REFERENCES,
    GradcheckReport,
    GradFn,
    compare_per_example,
    gradcheck,
    random_batch,
)
from jbpnn.losses import VALID_PAIRS
from jbpnn.network import loss_and_gradient_kernel, loss_kernel, per_example_grads
from jbpnn.params import MLP, Layer

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("sigmoid", "tanh", "relu", "identity")


def _problem(seed, sizes, activations, loss, dtype=jnp.float64, batch=6, init="he", **kw):
    """Random params and a batch that suits the loss, drawn with numpy (no JAX compiles)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if init == "he":
            w = rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)
        else:  # the article's U[-0.2, 0.2]
            w = rng.uniform(-0.2, 0.2, (n_in, n_out))
        layers.append((w, rng.uniform(-0.2, 0.2, n_out)))
    params = MLP.from_layers(layers, activations, loss, dtype=dtype, **kw)
    X = rng.normal(size=(batch, sizes[0]))
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, (batch, sizes[-1])).astype(float)
    else:
        Y = rng.uniform(size=(batch, sizes[-1]))
    return params, X, Y


def _with_grads(change):
    """A GradFn (train's signature): the hand-derived loss, and ``change`` of its gradient."""

    def grad_fn(p, X, Y, sample_weight):
        loss, grads = loss_and_gradient_kernel(p, X, Y, sample_weight)
        return loss, change(grads)

    return grad_fn


def _hidden_cycle(depth, start):
    """depth - 1 hidden activations, cycling through all four from ``start``."""
    return [HIDDEN[(start + i) % len(HIDDEN)] for i in range(depth - 1)]


# ---------------------------------------------------------------- passes on correct networks
# Every valid (loss, output) pair at depth 1 and 4 (hidden activations cycling), plus depths
# 2 and 3 with the hidden activations the cycles missed for the two cross entropies, so that
# every activation meets every loss. (The experiment's full run checks the whole
# activation x loss x depth product.)
CONFIGS = [(loss, out, tuple(_hidden_cycle(4, i))) for i, (loss, out) in enumerate(VALID_PAIRS)]
CONFIGS += [
    ("mse", "tanh", ()),
    ("cross_entropy", "softmax", ("identity",)),
    ("cross_entropy", "softmax", ("sigmoid",)),
    ("binary_cross_entropy", "sigmoid", ("tanh", "identity")),
]


@pytest.mark.parametrize("loss,output,hidden", CONFIGS)
def test_passes_every_pair_and_depth_float64(x64, loss, output, hidden):
    depth = len(hidden) + 1
    sizes = [5] + [6] * (depth - 1) + [3]
    params, X, Y = _problem(depth, sizes, [*hidden, output], loss)
    report = gradcheck(params, X, Y)
    assert report.passed, str(report)
    assert report.dtype == "float64"
    assert report.compared.startswith("hand-derived")
    assert report.loss_check.passed and report.loss_check.rel_err < 1e-10
    assert len(report.checks) == 2 * depth
    assert report.max_rel_err < 1e-10  # far inside rtol 1e-8: the tolerance is not what passes it
    assert report.failed == []


def test_the_configs_cover_every_activation_loss_and_depth():
    seen = {(act, loss) for loss, out, hidden in CONFIGS for act in (*hidden, out)}
    losses = ("mse", "cross_entropy", "binary_cross_entropy")
    assert {(act, loss) for act in HIDDEN for loss in losses} <= seen
    assert {len(h) + 1 for _, _, h in CONFIGS} == {1, 2, 3, 4}


def test_passes_every_hidden_activation_in_float32():
    acts = [*HIDDEN, "softmax"]
    params, X, Y = _problem(
        0, (8, 16, 16, 16, 16, 4), acts, "cross_entropy", dtype=jnp.float32, batch=32
    )
    report = gradcheck(params, X, Y)
    assert report.passed, str(report)
    assert report.dtype == "float32"
    # the base tolerance plus the rounding allowance of a float32 sum over 32 rows
    assert (report.rtol_base, report.atol) == DEFAULT_TOLERANCES[("autodiff", "float32")]
    assert report.rtol == pytest.approx(1e-3 + 16 * 2.0**-24 * np.sqrt(31))
    assert report.max_rel_err < 1e-4  # measured ~1e-6; rtol is 1e-3


def test_float32_params_checked_in_float64_on_request():
    params, X, Y = _problem(1, (4, 5, 2), "tanh", "mse", dtype=jnp.float32)
    report = gradcheck(params, X, Y, dtype=jnp.float64)
    assert report.passed and report.dtype == "float64"
    assert report.max_rel_err < 1e-10


# ---------------------------------------------------------------- fails where it should
def test_article_mode_fails_on_the_wrong_layers(x64):
    # layer 0: the article's tanh-valued "sigmoid" with derivative O - O^2 (wrong);
    # layer 1: a correct tanh; layer 2: identity. Biases never reach the forward pass,
    # so their true gradient is 0 but backward reports -Err: every b fails.
    params, X, Y = _problem(
        3, (4, 5, 6, 2), ["sigmoid", "tanh", "identity"], "mse", init="article", article_mode=True
    )
    for reference in ("autodiff", "finite_difference"):
        report = gradcheck(params, X, Y, reference=reference)
        assert not report.passed
        assert report.failed == [(0, "w"), (0, "b"), (1, "b"), (2, "b")], str(report)
        text = str(report)
        assert "FAILED 4 of 6: layer 0 w, layer 0 b, layer 1 b, layer 2 b" in text
        assert "article mode" in text
        b_checks = [c for c in report.checks if c.param == "b"]
        assert all(c.max_ref < 1e-9 for c in b_checks)  # biases have no effect (0, or FD noise)
        if reference == "autodiff":  # |hand - 0| / |hand|
            assert all(c.max_rel_err == pytest.approx(1.0) for c in b_checks)


def test_article_mode_sigmoid_fails_everywhere_while_correct_tanh_passes():
    bad, X, Y = _problem(
        4, (6, 5, 3), "sigmoid", "mse", dtype=jnp.float32, init="article", article_mode=True
    )
    report = gradcheck(bad, X, Y)
    assert report.failed == [(0, "w"), (0, "b"), (1, "w"), (1, "b")]
    good, X, Y = _problem(4, (6, 5, 3), "tanh", "mse", dtype=jnp.float32, init="article")
    assert gradcheck(good, X, Y).passed


def test_corrupted_grad_fn_names_the_corrupted_layer(x64):
    params, X, Y = _problem(5, (4, 6, 5, 3), "tanh", "mse")

    @_with_grads
    def corrupted(g):
        layers = list(g.layers)
        layers[1] = Layer(layers[1].w.at[2, 3].add(1e-3), layers[1].b)  # one entry of w_1
        return g.replace_layers(layers)

    report = gradcheck(params, X, Y, grad_fn=corrupted)
    assert report.failed == [(1, "w")], str(report)
    assert report.checks[2].max_abs_err == pytest.approx(1e-3, rel=1e-6)
    assert "grad_fn" in report.compared
    # the same corruption is caught by finite differences
    assert gradcheck(params, X, Y, grad_fn=corrupted, reference="finite_difference").failed == [
        (1, "w")
    ]


def test_user_grad_fn_as_list_of_pairs_passes(x64):
    params, X, Y = _problem(6, (3, 4, 2), "sigmoid", "mse")

    mine = _with_grads(lambda g: [(layer.w, layer.b) for layer in g.layers])

    assert gradcheck(params, X, Y, grad_fn=mine).passed


def test_grad_fn_with_wrong_shapes_is_a_value_error(x64):
    params, X, Y = _problem(6, (3, 4, 2), "sigmoid", "mse")
    with pytest.raises(ValueError, match="structure of params"):
        gradcheck(params, X, Y, grad_fn=_with_grads(lambda g: [(lay.w.T, lay.b) for lay in g]))


def test_wrong_sign_is_caught(x64):
    # A descent direction instead of a gradient: max rel err 2 everywhere.
    params, X, Y = _problem(7, (3, 4, 2), "tanh", "mse")
    report = gradcheck(params, X, Y, grad_fn=_with_grads(lambda g: jax.tree.map(jnp.negative, g)))
    assert len(report.failed) == 4
    assert report.loss_check.passed  # the loss is right, the gradient is not
    assert report.max_rel_err == pytest.approx(2.0)


# ---------------------------------------------------------------- train's grad_fn, as is
@pytest.mark.parametrize("reference", REFERENCES)
def test_trainings_grad_fns_pass_as_is(x64, reference):
    # the GradFn train(grad_fn=) takes: (params, X, Y, sample_weight) -> (mean loss, grads)
    assert GradFn is network.GradFn
    params, X, Y = _problem(14, (4, 5, 3), ["relu", "softmax"], "cross_entropy")
    for grad_fn in (jax.value_and_grad(loss_kernel), loss_and_gradient_kernel):
        report = gradcheck(params, X, Y, grad_fn=grad_fn, reference=reference)
        assert report.passed, str(report)
        assert "grad_fn" in report.compared
        if reference == "autodiff":
            assert report.loss_check.passed and report.loss_check.rel_err < 1e-10
            assert "PASSED: all 4 checks and the loss within tolerance" in str(report)
        else:  # finite differences check the gradient only
            assert report.loss_check is None


def test_a_wrong_loss_fails(x64):
    params, X, Y = _problem(15, (4, 5, 3), "tanh", "mse")

    def wrong_loss(p, X, Y, sample_weight):  # the right gradient, the loss summed not averaged
        loss, grads = loss_and_gradient_kernel(p, X, Y, sample_weight)
        return loss * X.shape[0], grads

    report = gradcheck(params, X, Y, grad_fn=wrong_loss)
    assert not report.passed
    assert report.failed == []  # every gradient leaf is right
    lc = report.loss_check
    assert not lc.passed and lc.hand == pytest.approx(6 * lc.ref)
    assert lc.rel_err == pytest.approx(5 / 6)
    text = str(report)
    assert "FAIL" in text.splitlines()[-2] and text.splitlines()[-1].startswith("FAILED: the loss")
    d = report.to_dict()
    assert d["passed"] is False and d["loss_check"]["passed"] is False
    assert json.loads(json.dumps(d)) == d

    def nudged(p, X, Y, sample_weight):  # off by 1e-6: fails in float64 (rtol 1e-8)...
        loss, grads = loss_and_gradient_kernel(p, X, Y, sample_weight)
        return loss * (1 + 1e-6), grads

    assert not gradcheck(params, X, Y, grad_fn=nudged).passed
    assert gradcheck(params, X, Y, grad_fn=nudged, rtol=1e-5).passed  # ...within rtol 1e-5

    def both(p, X, Y, sample_weight):  # a wrong loss and a wrong gradient: both named
        return 2.0, _with_grads(lambda g: jax.tree.map(jnp.negative, g))(p, X, Y, sample_weight)[1]

    line = str(gradcheck(params, X, Y, grad_fn=both)).splitlines()[-1]
    assert line.startswith("FAILED 4 of 4") and line.endswith("the loss differs too")


def test_the_old_three_argument_form_is_a_clear_error(x64):
    params, X, Y = _problem(16, (3, 4, 2), "sigmoid", "mse")

    def old(p, X, Y):  # gradcheck's former (params, X, Y) -> grads
        raise AssertionError("called: the signature must be refused before anything runs")

    want = (
        r"grad_fn must be \(params, X, Y, sample_weight\) -> \(loss, grads\), as "
        r"train\(grad_fn=\) takes.*got a function of 3 positional parameters \(p, X, Y\)"
    )
    for reference in REFERENCES:
        with pytest.raises(ValueError, match=want):
            gradcheck(params, X, Y, grad_fn=old, reference=reference)
    with pytest.raises(ValueError, match=want):
        gradcheck(params, X, Y, grad_fn=jax.jit(old))
    with pytest.raises(ValueError, match="not a function"):
        gradcheck(params, X, Y, grad_fn="autodiff")
    # four parameters but the old output (grads only, or a loss that is not a scalar)
    with pytest.raises(ValueError, match=r"must return a pair \(loss, grads\); got MLP"):
        gradcheck(params, X, Y, grad_fn=lambda p, X, Y, w: loss_and_gradient_kernel(p, X, Y, w)[1])
    with pytest.raises(ValueError, match="loss must be a scalar"):
        gradcheck(params, X, Y, grad_fn=lambda p, X, Y, w: (jnp.ones(2), p))


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("seed", [0, 1])
def test_finite_differences_agree_with_autodiff(x64, seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    loss, output = VALID_PAIRS[int(rng.integers(len(VALID_PAIRS)))]
    acts = [HIDDEN[int(rng.integers(len(HIDDEN)))] for _ in range(depth - 1)] + [output]
    sizes = [int(rng.integers(2, 7)) for _ in range(depth)] + [int(rng.integers(2, 5))]
    params, X, Y = _problem(seed, sizes, acts, loss, batch=int(rng.integers(1, 9)))
    fd = gradcheck(params, X, Y, reference="finite_difference")
    ad = gradcheck(params, X, Y, reference="autodiff")
    assert fd.passed and ad.passed, f"{fd}\n{ad}"
    # both references measure the same hand gradient: their errors are consistent
    assert fd.max_abs_err < 1e-7 and ad.max_abs_err < 1e-12
    assert fd.eps == 1e-6 and fd.dtype == "float64"


def test_finite_differences_cast_float32_and_sample_large_leaves():
    params, X, Y = _problem(9, (20, 10, 2), "tanh", "mse", dtype=jnp.float32)
    report = gradcheck(params, X, Y, reference="finite_difference", max_coords=50)
    assert report.passed and report.dtype == "float64"
    assert any("cast from float32 to float64" in n for n in report.notes)
    assert params.dtype == jnp.float32  # the caller's params are untouched
    w0 = report.checks[0]
    assert (w0.n_checked, w0.n_total) == (50, 200)
    assert "50/200" in str(report)
    assert any("50 of 200 coordinates sampled" in n for n in report.notes)


# ---------------------------------------------------------------- per example
def test_per_example_grads_match_vmap_grad(x64):
    params, X, Y = _problem(10, (5, 7, 4), "relu", "cross_entropy", batch=9)
    report = compare_per_example(params, X, Y)
    assert report.passed, str(report)
    assert report.reference == "autodiff_per_example"
    assert [c.n_checked for c in report.checks] == [9 * 35, 9 * 7, 9 * 28, 9 * 4]


def test_per_example_fails_in_article_mode():
    params, X, Y = _problem(
        11, (3, 4, 2), "sigmoid", "mse", dtype=jnp.float32, init="article", article_mode=True
    )
    assert compare_per_example(params, X, Y).failed == [(0, "w"), (0, "b"), (1, "w"), (1, "b")]


def test_per_example_fn_is_its_own_signature(x64):
    # compare_per_example takes per_example_fn (params, X, Y) -> per-example grads, not a GradFn
    params, X, Y = _problem(17, (3, 4, 2), "tanh", "mse", batch=5)
    report = compare_per_example(params, X, Y, per_example_fn=per_example_grads)
    assert report.passed and "per_example_fn" in report.compared

    def corrupted(p, X, Y):
        g = per_example_grads(p, X, Y)
        return g.replace_layers([g.layers[0], Layer(g.layers[1].w, g.layers[1].b + 1e-3)])

    assert compare_per_example(params, X, Y, per_example_fn=corrupted).failed == [(1, "b")]
    with pytest.raises(TypeError):
        compare_per_example(params, X, Y, grad_fn=per_example_grads)


# ---------------------------------------------------------------- report and bad input
def test_report_table_and_dict(x64):
    params, X, Y = _problem(12, (3, 4, 2), "tanh", "mse")
    report = gradcheck(params, X, Y, rtol=1e-6, atol=1e-9)
    text = str(report)
    lines = text.splitlines()
    assert "dtype float64" in lines[1] and "rtol 1e-06, atol 1e-09" in lines[2]
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    rows = lines[header + 1 : header + 5]
    assert [r.split()[:2] for r in rows] == [["0", "w"], ["0", "b"], ["1", "w"], ["1", "b"]]
    assert len({len(r) for r in rows}) == 1  # aligned columns (same width)
    assert lines[-1].startswith("PASSED")
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["passed"] is True and d["failed"] == [] and len(d["checks"]) == 4
    assert isinstance(report, GradcheckReport)


def test_bad_input_is_a_value_error():
    params, X, Y = _problem(13, (3, 4, 2), "tanh", "mse", dtype=jnp.float32)
    with pytest.raises(ValueError, match="unknown reference"):
        gradcheck(params, X, Y, reference="numeric")
    with pytest.raises(ValueError, match="Your data length is 4, but our input needs 3"):
        gradcheck(params, np.zeros((2, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="rtol must be finite and > 0"):
        gradcheck(params, X, Y, rtol=0)
    with pytest.raises(ValueError, match="atol finite"):  # inf: every comparison passed
        gradcheck(params, X, Y, atol=np.inf)
    with pytest.raises(ValueError, match="float64 only"):
        gradcheck(params, X, Y, reference="finite_difference", dtype=jnp.float32)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        gradcheck(params, X, Y, reference="finite_difference", eps=0.0)
    with pytest.raises(ValueError, match="must be a jbpnn MLP"):
        gradcheck([(np.zeros((3, 2)), np.zeros(2))], X, Y)


def test_errors_computed_on_known_values():
    # one layer, hand-made gradients: check the error arithmetic itself
    params = MLP.from_layers(
        [(np.zeros((1, 2)), np.zeros(2))], "identity", "mse", dtype=jnp.float32
    )
    X, Y = np.ones((1, 1)), np.array([[1.0, 2.0]])  # grad of 1/2|T - O|^2 at O = 0: -T
    # loss E = 1/2 (1^2 + 2^2) = 2.5
    exact = lambda p, X, Y, w: (2.5, [(np.array([[-1.0, -2.0]]), np.array([-1.0, -2.0]))])  # noqa: E731
    report = gradcheck(params, X, Y, grad_fn=exact)
    assert report.max_abs_err == 0.0 and report.loss_check.abs_err == 0.0
    off = lambda p, X, Y, w: (2.5, [(np.array([[-1.1, -2.0]]), np.array([-1.0, -2.0]))])  # noqa: E731
    report = gradcheck(params, X, Y, grad_fn=off, rtol=0.05, atol=1e-6)
    w = report.checks[0]
    assert w.max_abs_err == pytest.approx(0.1, rel=1e-5)
    # relative to the leaf's largest |ref| (2): its floor is rtol * 2 = 0.1
    assert w.max_rel_err == pytest.approx(0.1 / 2, rel=1e-5)
    assert w.floor == pytest.approx(0.05 * 2, rel=1e-6)
    assert report.failed == [(0, "w")]  # 0.1 (float32 1.1: 0.10000002) > the floor 0.1
    assert gradcheck(params, X, Y, grad_fn=off, rtol=0.06, atol=1e-6).passed
    report = gradcheck(params, X, Y, grad_fn=off, rtol=0.04, atol=1e-6)
    assert report.failed == [(0, "w")] and report.checks[0].max_rel_err == pytest.approx(0.05)
    assert gradcheck(params, X, Y, grad_fn=off, rtol=0.1, atol=1e-6).passed


# ---------------------------------------------------------------- large batches
def test_default_tolerance_scales_with_the_rows_summed():
    # rtol = base + 16 u sqrt(r - 1), r the rows one call sums (at most rows_per_sum)
    from jbpnn.gradcheck import default_tolerances, rows_per_sum

    u32, u64 = 2.0**-24, 2.0**-53
    assert rows_per_sum("float32") == 2**16 and rows_per_sum(jnp.float64) == 2**45
    # no absolute atol against autodiff: each leaf's floor follows the leaf (_floors)
    assert default_tolerances("autodiff", "float32", 1) == (1e-3, 0.0)  # nothing summed
    for n in (2, 32, 10**4, 2**16):
        rtol, atol = default_tolerances("autodiff", "float32", n)
        assert rtol == pytest.approx(1e-3 + 16 * u32 * np.sqrt(n - 1), rel=1e-12)
        assert atol == 0.0
    # larger batches are summed in chunks of 2^16 rows: the tolerance stops growing there,
    # far below the errors of a wrong derivative (order 1)
    cap = default_tolerances("autodiff", "float32", 2**16)[0]
    assert default_tolerances("autodiff", "float32", 10**8)[0] == cap < 1.25e-3
    # float64 stays as tight as its base, even at 2^31 - 1 rows
    big = 2**31 - 1
    assert default_tolerances("autodiff", "float64", big) == (
        pytest.approx(1e-8 + 16 * u64 * np.sqrt(big - 1), rel=1e-12),
        0.0,
    )
    assert default_tolerances("autodiff", "float64", big)[0] < 1.01e-8
    assert default_tolerances("finite_difference", "float64", big)[0] < 1.0001e-5
    with pytest.raises(ValueError, match="no default tolerance"):
        default_tolerances("finite_difference", "float32", 10)


def _large_problem(batch, acts=("tanh", "tanh"), **kw):
    """A 2-8-1 float32 network and ``batch`` rows whose targets are all 0.9: the output
    errors share a sign, so round-to-nearest errors of a long float32 sum add up."""
    rng = np.random.default_rng(0)
    layers = [
        (rng.uniform(-0.2, 0.2, (2, 8)), rng.uniform(-0.2, 0.2, 8)),
        (rng.uniform(0.1, 0.3, (8, 1)), rng.uniform(-0.2, 0.2, 1)),
    ]
    params = MLP.from_layers(layers, list(acts), "mse", dtype=jnp.float32, **kw)
    X = rng.standard_normal((batch, 2), dtype=np.float32)
    return params, X, np.full((batch, 1), 0.9, np.float32)


LARGE_BATCH = 2_000_000  # 30 chunks of 2^16 rows and one of 33920


def test_a_correct_gradient_passes_at_a_large_float32_batch():
    # One float32 call summing 2e6 rows put the (correct) hand bias gradient 1.4e-2 off a
    # float64 sum (one accumulator's partial sums outgrow the terms; 48% at 1e8 rows), and
    # the check said FAILED at rtol 1e-3. Now no call sums more than 2^16 rows.
    params, X, Y = _large_problem(LARGE_BATCH)
    report = gradcheck(params, X, Y)
    assert report.passed, str(report)
    assert report.max_rel_err < 1e-4 and report.loss_check.rel_err < 1e-5
    assert report.rows_per_call == 2**16 and report.rtol_base == 1e-3
    assert report.rtol == pytest.approx(1e-3 + 16 * 2.0**-24 * np.sqrt(2**16 - 1))
    text = str(report)
    assert "rtol 1.244e-03 = 0.001 + 16 u sqrt(65536 - 1) (float32 u = 5.96e-08" in text
    assert "2000000 rows in 31 chunks of at most 65536 rows" in text
    assert "2000000 rows in the 31 chunks called" in text
    # weights: each chunk's weighted mean, weighted by the chunk's weight sum; the chunks
    # take rows spread over the batch, so the zero run meets the other weights in each
    w = np.ones(LARGE_BATCH, np.float32)
    w[:70_000], w[X[:, 0] > 0.5] = 0.0, 3.0  # weights that depend on the rows' data
    weighted = gradcheck(params, X, Y, sample_weight=w)
    assert weighted.passed and weighted.max_rel_err < 1e-4, str(weighted)
    assert "2000000 rows in the 31 chunks called" in str(weighted)

    def ignores_weights(p, X, Y, sample_weight):
        return loss_and_gradient_kernel(p, X, Y, None)

    assert not gradcheck(params, X, Y, grad_fn=ignores_weights, sample_weight=w).passed


def test_wrong_derivatives_fail_at_a_large_float32_batch():
    saved = [(t, dict(t)) for t in (activations.ACTIVATIONS, activations.ARTICLE_MODE_ACTIVATIONS)]
    try:  # registered unchecked: tanh' written 1 - O (not 1 - O^2), and 1% too large
        jbpnn.register_activation("tanh_wrong", jnp.tanh, lambda o: 1 - o, check=False)
        jbpnn.register_activation("tanh_1pc", jnp.tanh, lambda o: 1.01 * (1 - o**2), check=False)
        for name in ("tanh_wrong", "tanh_1pc"):
            report = gradcheck(*_large_problem(LARGE_BATCH, (name, "tanh")))
            assert report.failed == [(0, "w"), (0, "b")], str(report)
            assert report.rows_per_call == 2**16 and report.loss_check.passed
            assert report.max_rel_err > 5 * report.rtol
    finally:
        for table, copy in saved:
            table.clear()
            table.update(copy)
    # article mode: the tanh-valued "sigmoid" with derivative O - O^2, biases unused
    params, X, Y = _large_problem(LARGE_BATCH, ("sigmoid", "sigmoid"), article_mode=True)
    assert gradcheck(params, X, Y).failed == [(0, "w"), (0, "b"), (1, "w"), (1, "b")]


# ---------------------------------------------------------------- command line
def test_cli_exit_codes(capsys):
    assert main(["--sizes", "6,5,3", "--activation", "tanh", "--batch", "4"]) == 0
    assert "PASSED" in capsys.readouterr().out
    # the same shapes and batch, so the random draws are compiled once
    assert (
        main(["--sizes", "6,5,3", "--activation", "sigmoid", "--article-mode", "--batch", "4"]) == 1
    )
    out = capsys.readouterr().out
    assert "FAILED 4 of 4" in out and "article mode" in out


def test_cli_finite_difference_x64_per_example_json(capsys):
    argv = [
        "--sizes",
        "6,5,3",
        "--batch",
        "4",
        "--activation",
        "relu",
        "--loss",
        "cross_entropy",
        "--x64",
        "--reference",
        "finite_difference",
        "--per-example",
        "--json",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["reference"] for r in reports] == ["finite_difference", "autodiff_per_example"]
    assert reports[0]["activations"] == ["relu", "softmax"]


def test_cli_bad_settings(capsys):
    assert main(["--sizes", "4,3", "--activation", "softmax,tanh,relu"]) == 2
    assert "error:" in capsys.readouterr().err
    # a usage error is one line too, exit 2 (python -m jbpnn.gradcheck is jbpnn gradcheck)
    assert main(["--sizes", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sizes" in err and "usage:" not in err


# ---------------------------------------------------------------- the experiment
def test_experiment_quick_mode_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable,
        str(ROOT / "experiments" / "autodiff_comparison.py"),
        "--quick",
        "--repeats",
        "1",
        "--out-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "autodiff_comparison.json").read_text())
    assert {"correctness", "speed", "precision", "article_mode"} <= set(results)
    assert all(row["passed"] for row in results["correctness"])
    assert results["article_mode"]["passed"] is False
    assert "wrote" in proc.stdout


@pytest.mark.parametrize("reference", ["autodiff", "finite_difference"])
def test_gradcheck_with_sample_weights_catches_a_grad_fn_that_ignores_them(reference):
    # grad_fn was only ever called with all-ones weights: one that ignores them passed,
    # and train (weight-0 padding rows, the user's sample_weight) trained on it
    p = jbpnn.init_params(0, (5, 4, 3), "tanh", "mse")
    X, Y = random_batch(jax.random.key(0), p, 8)
    w = np.array([1, 0, 2, 0.5, 1, 3, 0, 1.0])

    def ignores_weights(p_, X_, Y_, w_):
        return loss_and_gradient_kernel(p_, X_, Y_, None)

    assert gradcheck(p, X, Y, grad_fn=ignores_weights, reference=reference).passed
    assert not gradcheck(
        p, X, Y, grad_fn=ignores_weights, sample_weight=w, reference=reference
    ).passed
    assert gradcheck(p, X, Y, sample_weight=w, reference=reference).passed  # the hand kernel


# ---------------------------------------------------------------- red-team regressions
def _scaled_layer(layer, factor):
    """A GradFn: the hand-derived gradient with layer ``layer``'s w and b times ``factor``."""

    def change(g):
        layers = list(g.layers)
        layers[layer] = Layer(factor * layers[layer].w, factor * layers[layer].b)
        return g.replace_layers(layers)

    return _with_grads(change)


def test_a_wrong_gradient_of_a_small_leaf_fails_in_float32():
    # 8-8-8-8-8-1 sigmoid (article init): layer 0's true gradient is at most 5.1e-7, below
    # the former fixed atol 1e-6, so an all-zero layer 0 passed, layer 1 26% off passed,
    # and layer 2's w 3% off read "ok" (printed 7.4e-4: relative to the floor). Each
    # leaf's floor now follows its own scale.
    params = jbpnn.init_params(0, (8, 8, 8, 8, 8, 1), "sigmoid")
    X, Y = random_batch(jax.random.key(1), params, 32)
    good = gradcheck(params, X, Y)
    assert good.passed and good.max_rel_err < 1e-5, str(good)
    assert good.checks[0].max_ref < 1e-6  # the small leaf
    assert gradcheck(params, X, Y, grad_fn=_scaled_layer(0, 0.0)).failed == [(0, "w"), (0, "b")]
    assert gradcheck(params, X, Y, grad_fn=_scaled_layer(1, 0.74)).failed == [(1, "w"), (1, "b")]
    off = gradcheck(params, X, Y, grad_fn=_scaled_layer(2, 0.97))
    assert off.failed == [(2, "w"), (2, "b")]
    # the printed relative error is the one the verdict is based on: 3%
    assert off.checks[4].max_rel_err == pytest.approx(0.03, rel=1e-3)
    assert "the relative error the verdict is based on" in str(off)


def test_a_float32_network_at_a_minimum_is_not_a_false_fail():
    # the output layer's gradient cancels to ~1e-8 over examples whose terms are ~1e-1:
    # its rounding is of the terms' size (the floor's rounding S term), not of the result's
    rng = np.random.default_rng(0)
    params = jbpnn.init_params(0, (6, 16, 3), ("tanh", "identity"), init="he")
    X = rng.normal(size=(256, 6)).astype(np.float32)
    out, cache = jax.vmap(network.forward, in_axes=(None, 0))(params, X)
    F = np.c_[np.asarray(cache[-2], np.float64), np.ones(256)]
    e = rng.normal(size=(256, 3))
    e -= F @ np.linalg.lstsq(F, e, rcond=None)[0]  # residuals orthogonal to the features
    report = gradcheck(params, X, np.asarray(out, np.float64) + e)
    assert report.passed, str(report)
    assert report.checks[2].max_ref < 1e-6 < report.checks[2].floor


def test_zero_weight_rows_of_a_large_batch_are_checked():
    # train's padding: ones, then trailing zero weights (and zero rows). Contiguous chunks
    # put the zeros in a chunk of their own, skipped, so a grad_fn that ignores its
    # weights passed, and the note said every row was checked.
    params = jbpnn.init_params(0, (3, 4, 2), "tanh", init="he")
    n = 2 * 2**16
    X, Y = random_batch(jax.random.key(0), params, n)
    X, Y = X.at[2**16 :].set(0.0), Y.at[2**16 :].set(0.0)
    w = jnp.concatenate([jnp.ones(2**16), jnp.zeros(2**16)])

    def ignores_weights(p, X, Y, sample_weight):
        return loss_and_gradient_kernel(p, X, Y)

    report = gradcheck(params, X, Y, grad_fn=ignores_weights, sample_weight=w)
    assert not report.passed and len(report.failed) == 4, str(report)
    assert gradcheck(params, X, Y, sample_weight=w).passed  # the hand kernel uses them
    assert f"{n} rows in 2 chunks of at most 65536 rows (rows_per_sum), {n} rows in the 2" in (
        str(report)
    )


def test_finite_differences_fail_a_non_finite_entry_that_was_not_sampled(x64):
    # the hand gradient was cut to the sampled coordinates before any finiteness check: a
    # NaN elsewhere passed
    from jbpnn.gradcheck import _pick_coordinates

    params, X, Y = _problem(9, (20, 10, 2), "tanh", "mse")
    picked = _pick_coordinates(params, 50, 0, [])[0]  # what gradcheck samples (seed 0)
    missed = int(np.setdiff1d(np.arange(200), picked)[0])

    @_with_grads
    def nan_there(g):
        w0 = g.layers[0].w.ravel().at[missed].set(jnp.nan).reshape(g.layers[0].w.shape)
        return g.replace_layers([Layer(w0, g.layers[0].b), g.layers[1]])

    report = gradcheck(
        params, X, Y, reference="finite_difference", max_coords=50, grad_fn=nan_there
    )
    assert report.failed == [(0, "w")], str(report)
    assert "1 of 200 entries of the hand gradient are NaN or inf" in str(report)
    # the report says which entries were compared
    assert report.checks[0].sampled == tuple(int(k) for k in picked)
    assert report.checks[1].sampled is None  # all 10
    assert "report.checks[0].sampled" in str(report)


def test_a_saturated_correct_bce_gradient_passes_in_float32():
    # a confidently wrong example (output net ~ 19, target 0): jax.grad of the clipped log
    # reads 0 there, so the correct hand gradient (T - O) was reported FAILED; the
    # reference now differentiates the loss's error_net (softplus(net) - T net)
    p = jbpnn.init_params(0, (4, 8, 1), "tanh", loss="binary_cross_entropy", init="he")
    X, Y = random_batch(jax.random.key(1), p, 32)
    p = p.replace_layers([p.layers[0], p.layers[1]._replace(b=p.layers[1].b + 18.0)])
    Y = Y.at[0].set(0.0)
    report = gradcheck(p, X, Y)
    assert report.passed, str(report)
    assert "error_net" in str(report)
    assert compare_per_example(p, X, Y).passed


def test_given_tolerances_are_printed_so_they_read_back(x64):
    params, X, Y = _problem(12, (3, 4, 2), "tanh", "mse")
    text = str(gradcheck(params, X, Y, rtol=1.5e-3, atol=2.5e-7))
    assert "rtol 0.0015, atol 2.5e-07" in text  # .0e printed 2e-03 and 2e-07
    text = str(gradcheck(params, X, Y, reference="finite_difference", eps=1.5e-6, rtol=1.5e-5))
    assert "rtol 1.5e-05, atol 1e-07, finite-difference step 1.5e-06" in text

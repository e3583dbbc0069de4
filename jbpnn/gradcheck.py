"""Check a hand-derived gradient against ``jax.grad`` or central finite differences.

This is the only library module that calls ``jax.grad``: nothing on the training
path imports it. It answers one question with evidence: is the backward pass
right? :func:`gradcheck` compares the hand-derived batch gradient
(:func:`jbpnn.network.loss_and_gradient_kernel`, or any
:data:`~jbpnn.network.GradFn` ``grad_fn(params, X, Y, sample_weight) -> (loss,
grads)``, the signature ``train(grad_fn=)`` takes, so the function you train with
is checked as is) with a reference computed without it:

    reference="autodiff"            jax.grad of  L(theta) = 1/B sum_n E(forward(theta, x_n), t_n)
    reference="finite_difference"   dL/dtheta_i ~ (L(theta + h e_i) - L(theta - h e_i)) / 2h

The reference loss :func:`reference_loss` is written from :func:`jbpnn.network.forward`
and the loss table's ``error`` only, never from the deltas, so the two sides are
independent derivations of the same quantity (``dE/dtheta``, the sign
convention of :mod:`jbpnn.losses`: gradients, not descent directions). With the
autodiff reference the loss ``grad_fn`` returns is checked too, against
:func:`reference_loss`, with the same tolerances (``report.loss_check``).

Error measure, for each entry of each layer's ``w`` and ``b``::

    abs error  = |hand - ref|
    rel error  = |hand - ref| / max(|hand|, |ref|, atol / rtol)
    pass       <=>  rel error <= rtol  <=>  |hand - ref| <= max(atol, rtol * max(|hand|, |ref|))

so ``rtol`` judges entries larger than ``atol / rtol`` and ``atol`` the tiny ones
(for which a relative error means nothing). A leaf passes when all its entries
do. ``atol`` is absolute: if a whole gradient is smaller than ``atol`` the check
is vacuous, which is why the report prints ``max|ref|`` next to the errors.

Default tolerances (:func:`default_tolerances`): a base (:data:`DEFAULT_TOLERANCES`),
at least 13x the worst disagreement measured on 91 random networks at batch 32 (and
~1000x below the errors of a wrong derivative, which are of order 1), plus an
allowance for the rounding of the sums over the batch rows::

    rtol = base + 16 u sqrt(r - 1),   r = min(B, rows_per_sum(dtype)): rows summed per call

    autodiff, float32            base 1e-3,  atol 1e-6   (u = 2^-24, r <= 2^16: rtol <= 1.24e-3)
    autodiff, float64            base 1e-8,  atol 1e-12  (u = 2^-53: + at most 8e-11)
    finite differences, float64  base 1e-5,  atol 1e-7,  step h = 1e-6

Every gradient entry (and the loss) is a mean over the B rows, summed by each side in
its own order (the hand kernel in a matrix product, jax.grad in a reduction). A float
sum of r terms is off by at most ``(r - 1) u sum|x_i|`` (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., section 4.2), a bound that says nothing
once ``r u`` nears 1 (float32: 10^7 rows) and that is reached there: the partial sums
of one accumulator grow until the terms fall below half their last digit and stop
counting. The hand bias gradient of the command line's default network (a correct
one) measured 0.6% off a float64 sum at 10^7 float32 rows and 48% at 10^8 on XLA:CPU
(the false FAILED of ``jbpnn gradcheck --batch 100000000``), as far off as a wrong
derivative: no tolerance tells those apart. So no call sums more than
``rows_per_sum(dtype)`` rows (float32: 2^16, where ``r u = 2^-8``; float64: 2^45,
never reached): a larger batch is checked in chunks of that many rows, ``grad_fn`` and
jax.grad called on each, their losses and gradients weighted by the chunks' weight
sums and added in float64 (a note says so). That checks the derivation, not the
rounding of one float32 sum of B terms (which the chunks leave out). Within a call,
rounding errors that are independent with mean zero give ``lambda sqrt(r - 1) u
sum|x_i|`` (Higham and Mary, SIAM J. Sci. Comput. 41, 2019), exceeded with
probability at most about ``2 r exp(-lambda^2 / 2)``; ``lambda = 8`` for each of the two
sides makes ``16 u sqrt(r - 1)``, relative to ``sum|x_i|``: the entries whose terms do not
cancel. At 2^16 float32 rows a correct gradient measured at most 1.7e-5 (targets
constant, where round-to-nearest errors add up), 14x inside that allowance alone. An
``rtol`` you give is used as is (no allowance). The report prints the tolerance used.

Finite differences always run in float64: ``jax.enable_x64`` is switched on
inside the call (never globally), and params and data are cast to float64; the
hand gradient is then computed in float64 too, and the report says so. Every
coordinate costs two forward passes of the batch and a copy of the parameter
vector; the directions are vmapped in chunks (``lax.map``), one compilation per
network. That takes about a second for networks of a few thousand parameters
and small batches (e.g. 64-64-64-10, batch 64); leaves with more than
``max_coords`` entries (default 4096) are checked on a random sample of that
many coordinates, named in the report.

Limits of the references. Both differentiate the *implemented* loss, whose logs
are clipped where an output rounds to 0 or 1; there the loss is flat, so for a
saturated, wrong sigmoid or softmax output with a cross-entropy loss
(e.g. net > 16.6 in float32) jax.grad and finite differences read 0 while the
hand-derived ``T - O`` is the exact gradient: a mismatch there is the reference
failing. Finite differences are also wrong for ReLU units whose net input lies
within ``h`` of 0 (the kink).

Command line (:mod:`jbpnn.cli.gradcheck`): ``jbpnn gradcheck --sizes 64,32,10
--activation tanh`` (also ``python -m jbpnn.gradcheck``) prints the report and exits
1 when a check fails.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from jbpnn._callable import make_callable
from jbpnn.activations import Activation, bind
from jbpnn.checks import INT32_MAX, check_int
from jbpnn.losses import LOSSES, Loss
from jbpnn.memory import check_array_memory
from jbpnn.network import (
    GradFn,
    check_batch,
    forward,
    loss_and_gradient_kernel,
    per_example_grads,
)
from jbpnn.params import MLP, network_count

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_MAX_COORDS",
    "DEFAULT_TOLERANCES",
    "REFERENCES",
    "SUM_ROUNDING_FACTOR",
    "GradFn",
    "GradcheckReport",
    "LeafCheck",
    "LossCheck",
    "UNIT_RTOL",
    "PerExampleFn",
    "check_activation",
    "check_loss",
    "compare_per_example",
    "default_tolerances",
    "gradcheck",
    "random_batch",
    "reference_loss",
    "rows_per_sum",
]

Array = jax.Array
# GradFn (re-exported from jbpnn.network): grad_fn(params, X, Y, sample_weight) -> (loss,
# grads), what train(grad_fn=) and gradcheck(grad_fn=) take. PerExampleFn, what
# compare_per_example(per_example_fn=) takes: (params, X, Y) -> grads whose leaves have a
# leading batch axis (one gradient per example, unweighted).
PerExampleFn = Callable[[MLP, Array, Array], Any]

REFERENCES = ("autodiff", "finite_difference")

# (reference, dtype) -> (base rtol, atol). The worst max relative errors measured over the
# 91 activation x loss x depth networks of experiments/autodiff_comparison.py (batch 32, he
# init) were 7.7e-5 (f32 vs autodiff), 3.4e-13 (f64 vs autodiff) and 7.9e-7 (f64 vs finite
# differences, h = 1e-6): margins of at least 13x; a wrong derivative gives errors near 1.
# default_tolerances adds the rounding allowance of the batch sums to the rtol.
DEFAULT_TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("autodiff", "float32"): (1e-3, 1e-6),
    ("autodiff", "float64"): (1e-8, 1e-12),
    ("finite_difference", "float64"): (1e-5, 1e-7),
}
DEFAULT_EPS = 1e-6  # finite-difference step h, in float64
DEFAULT_MAX_COORDS = 4096  # finite differences: coordinates checked per leaf at most
# rtol allowance 16 u sqrt(r - 1) of a sum of r rows: lambda = 8 in the probabilistic bound
# lambda sqrt(r - 1) u of Higham and Mary (2019), for each of the two sides compared
SUM_ROUNDING_FACTOR = 16.0


def rows_per_sum(dtype: Any) -> int:
    """The most batch rows one call of ``grad_fn`` or jax.grad sums in :func:`gradcheck`:
    ``2^-8 / u`` (``u`` the unit roundoff), 2^16 in float32, 2^45 in float64 (more than
    any batch); a larger batch is checked in chunks of this many rows.

    At ``r u = 2^-8`` the worst-case bound ``(r - 1) u`` of a float sum of ``r`` terms is
    0.4% of ``sum|x_i|``, and the error of one float32 accumulator (XLA:CPU's matrix-vector
    product, the hand bias gradient) measured 1.7e-5 with constant targets (5.4e-3 at
    2^20 rows, 79% at 10^8).
    """
    return int(2.0**-8 / _unit_roundoff(dtype))


def _unit_roundoff(dtype: Any) -> float:
    """``u``, half the distance from 1 to the next float (2^-24 in float32, 2^-53 in float64)."""
    return float(np.finfo(dtype).eps) / 2


def default_tolerances(reference: str, dtype: Any, batch_size: int) -> tuple[float, float]:
    """The default ``(rtol, atol)`` of :func:`gradcheck` for ``batch_size`` rows.

    ``rtol = base + 16 u sqrt(r - 1)`` with the base of :data:`DEFAULT_TOLERANCES`, ``u``
    the unit roundoff of ``dtype`` and ``r = min(batch_size, rows_per_sum(dtype))`` the
    rows one call sums (see the module docstring): the ``r - 1`` additions of a float sum
    of ``r`` terms, with independent rounding errors, are off by about ``lambda sqrt(r - 1)
    u sum|x_i|`` (Higham and Mary 2019), ``lambda = 8`` for each of the two sides
    compared. float32: 1e-3 + 16 u sqrt(r - 1), at most 1.24e-3 (``r = 2^16``); float64:
    1e-8 plus at most 8e-11 (``r < 2^31``). One row (per-example gradients): the base.
    ``atol`` is the base's.

    Args:
        reference: ``"autodiff"`` or ``"finite_difference"``.
        dtype: ``float32`` or ``float64`` (finite differences: float64 only).
        batch_size: rows in the batch (per-example gradients: 1, nothing is summed).

    Returns:
        ``(rtol, atol)``.
    """
    name = np.dtype(dtype).name
    if (reference, name) not in DEFAULT_TOLERANCES:
        raise ValueError(
            f"no default tolerance for reference={reference!r} in {name}; expected one of "
            f"{sorted(DEFAULT_TOLERANCES)}"
        )
    base, atol = DEFAULT_TOLERANCES[(reference, name)]
    rows = min(check_int("batch_size", batch_size, 1), rows_per_sum(name))
    allowance = SUM_ROUNDING_FACTOR * _unit_roundoff(name) * float(np.sqrt(rows - 1))
    return base + allowance, atol


_ARTICLE_NOTE = (
    "article mode: the article code's 'sigmoid' is tanh forward with derivative O - O^2, "
    "and biases never reach the forward pass (their true gradient is 0)"
)


# ---------------------------------------------------------------- the reference loss
def reference_loss(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """The batch loss ``1/B sum_n E(forward(params, x_n), t_n)``, for autodiff; with
    ``sample_weight`` the weighted mean ``sum_n s_n E_n / sum_n s_n``.

    Written from :func:`jbpnn.network.forward` and ``LOSSES[params.loss].error``
    only (vmapped), independently of the hand-derived deltas.

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        sample_weight: optional weights, shape ``(B,)``.

    Returns:
        A scalar.
    """
    errors = jax.vmap(_example_error, in_axes=(None, 0, 0))(params, X, Y)
    if sample_weight is None:
        return jnp.mean(errors)
    return jnp.sum(sample_weight * errors) / jnp.sum(sample_weight)


def _example_error(params: MLP, x: Array, y: Array) -> Array:
    out, _ = forward(params, x)
    return LOSSES[params.loss].error(out, y)


_autodiff_loss_and_grad = jax.jit(jax.value_and_grad(reference_loss))
_hand_loss_and_grad = jax.jit(loss_and_gradient_kernel)
_autodiff_per_example = jax.jit(jax.vmap(jax.grad(_example_error), in_axes=(None, 0, 0)))


@partial(jax.jit, static_argnames=("chunk",))
def _finite_differences(
    params: MLP, X: Array, Y: Array, W: Array, coords: Array, eps: Array, *, chunk: int
) -> Array:
    """Central differences of :func:`reference_loss` along coordinates of the params.

    ``dL/dtheta_i ~ (L(theta + h e_i) - L(theta - h e_i)) / ((theta_i + h) - (theta_i - h))``
    (dividing by the step actually taken, not by 2h). ``coords`` index the
    params raveled in leaf order (``w_0, b_0, w_1, ...``); directions are
    vmapped ``chunk`` at a time, each costing two forward passes of the batch.
    """
    flat, unravel = ravel_pytree(params)

    def one(i: Array) -> Array:
        up, down = flat[i] + eps, flat[i] - eps
        loss_up = reference_loss(unravel(flat.at[i].set(up)), X, Y, W)
        loss_down = reference_loss(unravel(flat.at[i].set(down)), X, Y, W)
        return (loss_up - loss_down) / (up - down)

    return jax.lax.map(one, coords, batch_size=chunk)


# ---------------------------------------------------------------- the report
@dataclass(frozen=True)
class LeafCheck:
    """The comparison of one layer's ``w`` or ``b``.

    Attributes:
        layer: layer index, input side first.
        param: ``"w"`` or ``"b"``.
        activation: the layer's activation name.
        shape: the leaf's shape.
        n_checked: entries compared (fewer than ``n_total`` when sampled).
        n_total: entries in the leaf.
        max_ref: ``max |ref|``, the scale of the reference gradient.
        max_abs_err: ``max |hand - ref|``.
        max_rel_err: ``max |hand - ref| / max(|hand|, |ref|, atol / rtol)``.
        passed: ``max_rel_err <= rtol`` (and every value finite).
    """

    layer: int
    param: str
    activation: str
    shape: tuple[int, ...]
    n_checked: int
    n_total: int
    max_ref: float
    max_abs_err: float
    max_rel_err: float
    passed: bool

    @property
    def name(self) -> str:
        return f"layer {self.layer} {self.param}"


@dataclass(frozen=True)
class LossCheck:
    """The loss ``grad_fn`` returned against :func:`reference_loss` (autodiff reference).

    Attributes:
        hand: the loss ``grad_fn`` returned.
        ref: :func:`reference_loss` of the same batch.
        abs_err: ``|hand - ref|``.
        rel_err: ``|hand - ref| / max(|hand|, |ref|, atol / rtol)``.
        passed: ``rel_err <= rtol`` (and both finite), the rule of the gradient entries.
    """

    hand: float
    ref: float
    abs_err: float
    rel_err: float
    passed: bool


@dataclass(frozen=True)
class GradcheckReport:
    """The result of :func:`gradcheck` or :func:`compare_per_example`.

    ``str(report)`` is an aligned table; ``report.passed`` the verdict;
    ``report.failed`` the ``(layer, param)`` pairs that failed; ``report.loss_check``
    the returned loss against the reference (autodiff only), which must pass too.

    Attributes:
        checks: one :class:`LeafCheck` per layer and parameter (``w`` then ``b``).
        compared: what was compared with what, in words.
        reference: ``"autodiff"``, ``"finite_difference"`` or ``"autodiff_per_example"``.
        dtype: the dtype both gradients were computed in.
        rtol: relative tolerance.
        atol: absolute tolerance (also sets the floor ``atol / rtol`` of the relative error).
        eps: finite-difference step, or None.
        sizes: layer widths of the network, input first.
        activations: activation names per layer.
        loss: loss name.
        article_mode: whether the network reproduces the article code's bugs.
        batch_size: number of examples.
        notes: extra lines (casts, sampling, article mode).
        loss_check: the loss ``grad_fn`` returned against :func:`reference_loss`
            (a :class:`LossCheck`), or None where it is not compared (finite
            differences, per-example gradients).
        rtol_base: the base of the default ``rtol`` (:data:`DEFAULT_TOLERANCES`), to which
            :func:`default_tolerances` added ``16 u sqrt(rows_per_call - 1)``; None when
            ``rtol`` was given.
        rows_per_call: the most rows one call summed: the batch, or
            :func:`rows_per_sum` when the batch was checked in chunks (1 per example).
    """

    checks: tuple[LeafCheck, ...]
    compared: str
    reference: str
    dtype: str
    rtol: float
    atol: float
    eps: float | None
    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    article_mode: bool
    batch_size: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    loss_check: LossCheck | None = None
    rtol_base: float | None = None
    rows_per_call: int | None = None

    @property
    def passed(self) -> bool:
        """True when every layer's ``w`` and ``b`` pass, and the loss where it is checked."""
        loss_ok = self.loss_check is None or self.loss_check.passed
        return loss_ok and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[tuple[int, str]]:
        """The ``(layer, param)`` pairs that failed, e.g. ``[(0, "w"), (0, "b")]``.

        Gradients only: a wrong loss shows in ``loss_check`` (and makes ``passed`` False).
        """
        return [(c.layer, c.param) for c in self.checks if not c.passed]

    @property
    def max_abs_err(self) -> float:
        return max(c.max_abs_err for c in self.checks)

    @property
    def max_rel_err(self) -> float:
        return max(c.max_rel_err for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data, with ``passed`` and ``failed`` included."""
        d = asdict(self)
        d["checks"] = [asdict(c) | {"shape": list(c.shape)} for c in self.checks]
        d["sizes"], d["activations"], d["notes"] = (
            list(self.sizes),
            list(self.activations),
            list(self.notes),
        )
        d["passed"] = self.passed
        d["failed"] = [list(f) for f in self.failed]
        return d

    def _rtol_text(self) -> str:
        """``1e-03``, or for a default ``1.244e-03 = 1e-03 + 16 u sqrt(65536 - 1) (...)``."""
        if self.rtol_base is None or self.rows_per_call is None or self.rows_per_call < 2:
            return f"{self.rtol:.0e}"
        u = _unit_roundoff(self.dtype)
        return (
            f"{self.rtol:.3e} = {self.rtol_base:.0e} + {SUM_ROUNDING_FACTOR:g} u "
            f"sqrt({self.rows_per_call} - 1) ({self.dtype} u = {u:.2e}; the rounding of a "
            f"sum over {self.rows_per_call} row{'s' * (self.rows_per_call != 1)})"
        )

    def __str__(self) -> str:
        mark = "*" if self.article_mode else ""
        acts = [a + (mark if a == "sigmoid" else "") for a in self.activations]
        head = [
            f"gradcheck: {self.compared}",
            f"network {'-'.join(map(str, self.sizes))}, activations ({', '.join(acts)}), "
            f"loss {self.loss}, batch {self.batch_size}, dtype {self.dtype}",
            f"tolerance: rtol {self._rtol_text()}, atol {self.atol:.0e}"
            + (f", finite-difference step {self.eps:.0e}" if self.eps is not None else "")
            + f" (relative error floor atol/rtol = {self.atol / self.rtol:.0e})",
            "an entry passes when |hand - ref| <= max(atol, rtol * max(|hand|, |ref|)); "
            "rel err = |hand - ref| / max(|hand|, |ref|, atol/rtol)",
        ]
        cols = ["layer", "param", "activation", "shape", "checked", "max|ref|", "max abs err"]
        cols += ["max rel err", "result"]
        rows = [
            [
                str(c.layer),
                c.param,
                acts[c.layer],
                "x".join(map(str, c.shape)),
                str(c.n_checked) if c.n_checked == c.n_total else f"{c.n_checked}/{c.n_total}",
                f"{c.max_ref:.2e}",
                f"{c.max_abs_err:.2e}",
                f"{c.max_rel_err:.2e}",
                "ok" if c.passed else "FAIL",
            ]
            for c in self.checks
        ]
        widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
        left = {1, 2, 8}
        fmt = lambda r: "  ".join(  # noqa: E731
            v.ljust(w) if i in left or i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(r, widths))
        ).rstrip()
        lines = head + [fmt(cols)] + [fmt(r) for r in rows]
        lc = self.loss_check
        if lc is not None:
            lines.append(
                f"loss: hand {lc.hand:.8e}, reference {lc.ref:.8e}, abs err "
                f"{lc.abs_err:.2e}, rel err {lc.rel_err:.2e}  {'ok' if lc.passed else 'FAIL'}"
            )
        n, loss_failed = len(self.checks), lc is not None and not lc.passed
        if self.passed:
            lines.append(f"PASSED: all {n} checks{' and the loss' if lc else ''} within tolerance")
        elif self.failed:
            names = ", ".join(f"layer {layer} {p}" for layer, p in self.failed)
            also = "; the loss differs too" if loss_failed else ""
            lines.append(f"FAILED {len(self.failed)} of {n}: {names}{also}")
        else:
            lines.append(f"FAILED: the loss differs (all {n} gradient checks within tolerance)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _compare_leaf(
    hand: np.ndarray, ref: np.ndarray, rtol: float, atol: float
) -> tuple[float, float, float, bool]:
    """(max|ref|, max abs err, max rel err, passed) for one leaf, in float64 on the host."""
    hand, ref = np.asarray(hand, np.float64), np.asarray(ref, np.float64)
    if hand.size == 0:
        return 0.0, 0.0, 0.0, True
    diff = np.abs(hand - ref)
    scale = np.maximum(np.maximum(np.abs(hand), np.abs(ref)), atol / rtol)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=diff != 0)
    rel = np.where(np.isfinite(diff), rel, np.inf)
    max_rel = float(np.max(rel))
    return float(np.max(np.abs(ref))), float(np.max(diff)), max_rel, bool(max_rel <= rtol)


def _tolerances(
    reference: str, dtype: str, rtol: float | None, atol: float | None, rows: int
) -> tuple[float, float, float | None]:
    """``(rtol, atol, base rtol or None)``: :func:`default_tolerances` for ``rows`` rows
    summed per call where not given (a given ``rtol`` is used as is: base None)."""
    default_rtol, default_atol = default_tolerances(reference, dtype, rows)
    base = DEFAULT_TOLERANCES[(reference, dtype)][0] if rtol is None else None
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    if not (0 < rtol < np.inf) or not (0 <= atol < np.inf):  # inf: every check passes
        raise ValueError(
            f"rtol must be finite and > 0 and atol finite and >= 0, got rtol={rtol}, atol={atol}"
        )
    return rtol, atol, base


def _leaves_like(params: MLP, grads: Any, who: str) -> list[Array]:
    """The leaves of ``grads`` in params' order (w, b per layer), shape-checked."""
    if isinstance(grads, MLP):
        grads = grads.layers
    leaves = jax.tree.leaves(grads)
    want = jax.tree.leaves(params.layers)
    shapes = [tuple(np.shape(g)) for g in leaves]
    if shapes != [tuple(p.shape) for p in want]:
        raise ValueError(
            f"{who} must return gradients with the structure of params (an MLP, or a list of "
            f"(w, b) per layer) with shapes {[tuple(p.shape) for p in want]}; got shapes {shapes}"
        )
    return leaves


_GRAD_FN_SIGNATURE = (
    "grad_fn must be (params, X, Y, sample_weight) -> (loss, grads), as train(grad_fn=) "
    "takes (jbpnn.network.GradFn)"
)


def _check_grad_fn(grad_fn: Any) -> None:
    """Refuse, before anything is traced, a ``grad_fn`` that cannot take 4 positional arguments.

    Functions whose signature cannot be read (some builtins) are let through.
    """
    if not callable(grad_fn):
        raise ValueError(f"{_GRAD_FN_SIGNATURE}; got {grad_fn!r}, not a function")
    try:
        sig = inspect.signature(grad_fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(None, None, None, None)
    except TypeError:
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        n = sum(q.kind in kinds for q in sig.parameters.values())
        raise ValueError(
            f"{_GRAD_FN_SIGNATURE}; got a function of {n} positional parameters {sig}. "
            "Wrap a (params, X, Y) -> grads function f as "
            "lambda p, X, Y, w: (jbpnn.network.loss_kernel(p, X, Y, w), f(p, X, Y))"
        ) from None


def _split_output(out: Any) -> tuple[Any, Any]:
    """``(loss, grads)`` from what a ``grad_fn`` returned, or a ValueError saying what it was."""
    if not (isinstance(out, tuple) and len(out) == 2):
        got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
        raise ValueError(f"{_GRAD_FN_SIGNATURE}: it must return a pair (loss, grads); got {got}")
    loss = out[0]
    if not isinstance(loss, jax.Array | np.ndarray | np.generic | float | int):
        raise ValueError(
            f"{_GRAD_FN_SIGNATURE}: it must return a pair (loss, grads); got a pair whose "
            f"first item is a {type(loss).__name__}, not a scalar loss"
        )
    if np.shape(loss) != ():
        raise ValueError(
            f"{_GRAD_FN_SIGNATURE}: its loss must be a scalar (the batch mean); got shape "
            f"{np.shape(loss)}"
        )
    return loss, out[1]


def _call(grad_fn: GradFn, p: MLP, x: Array, y: Array, w: Array) -> tuple[Any, list[np.ndarray]]:
    """``grad_fn(p, x, y, w)``, checked: the loss, and the gradient leaves on the host."""
    loss, grads = _split_output(grad_fn(p, x, y, w))
    return loss, [np.asarray(g) for g in _leaves_like(p, grads, "grad_fn")]


def _compare_loss(
    hand: Any, ref: Any, rtol: float, atol: float
) -> tuple[float, float, float, float, bool]:
    """(hand, ref, abs err, rel err, passed) for the scalar losses: the rule of the leaves."""
    hand, ref = np.asarray(hand, np.float64), np.asarray(ref, np.float64)
    _, abs_err, rel_err, ok = _compare_leaf(hand, ref, rtol, atol)
    return float(hand), float(ref), abs_err, rel_err, ok


def _check_dtype(dtype: str) -> None:
    """The autodiff check's dtype: float32 or float64 (a 16-bit network's own arithmetic
    is too coarse for a tolerance that tells a wrong derivative from rounding)."""
    if dtype not in ("float32", "float64"):
        raise ValueError(
            f"dtype must be float32 or float64, got {dtype}: a {dtype} network is checked "
            "in a wider dtype, e.g. gradcheck(params, X, Y, dtype='float32') (its weights "
            "cast), or reference='finite_difference' (computed in float64)"
        )


def _check_params(params: Any) -> None:
    if not isinstance(params, MLP):
        raise ValueError(
            f"params must be a jbpnn MLP (from init_params or MLP.from_layers), "
            f"got {type(params).__name__}"
        )


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _cast(
    params: MLP, X: Array, Y: Array, W: Array | None, dtype: Any
) -> tuple[MLP, Array, Array, Array]:
    """Everything in ``dtype``; ``W`` the sample weights (None: all ones)."""
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    W = jnp.ones(np.shape(X)[:1], dtype) if W is None else cast(W)
    return jax.tree.map(cast, params), cast(X), cast(Y), W


def _report(
    params: MLP,
    hand: list[Any],
    ref: list[Any],
    n_total: list[int],
    *,
    rtol: float,
    atol: float,
    **fields: Any,
) -> GradcheckReport:
    checks = []
    for i, (h, r) in enumerate(zip(hand, ref)):
        layer, param = divmod(i, 2)
        max_ref, max_abs, max_rel, ok = _compare_leaf(np.asarray(h), np.asarray(r), rtol, atol)
        checks.append(
            LeafCheck(
                layer=layer,
                param="wb"[param],
                activation=params.activations[layer],
                shape=tuple(np.shape(params.layers[layer][param])),
                n_checked=int(np.size(r)),
                n_total=n_total[i],
                max_ref=max_ref,
                max_abs_err=max_abs,
                max_rel_err=max_rel,
                passed=ok,
            )
        )
    notes = list(fields.pop("notes", ()))
    if params.article_mode:
        notes.append("* " + _ARTICLE_NOTE)
    return GradcheckReport(
        checks=tuple(checks),
        rtol=rtol,
        atol=atol,
        sizes=tuple(params.sizes),
        activations=tuple(params.activations),
        loss=params.loss,
        article_mode=params.article_mode,
        notes=tuple(notes),
        **fields,
    )


# ---------------------------------------------------------------- the checks
def _pick_coordinates(params: MLP, max_coords: int, seed: int, notes: list[str]) -> list:
    """Flat indices to check in each leaf: all, or a seeded sample of ``max_coords``."""
    rng = np.random.default_rng(seed)
    picked = []
    for i, leaf in enumerate(jax.tree.leaves(params.layers)):
        coords = np.arange(leaf.size)
        if leaf.size > max_coords:
            coords = np.sort(rng.choice(leaf.size, max_coords, replace=False))
            notes.append(
                f"layer {i // 2} {'wb'[i % 2]}: {coords.size} of {leaf.size} "
                f"coordinates sampled (max_coords={max_coords})"
            )
        picked.append(coords)
    return picked


def _finite_difference_reference(
    params: MLP, X: Array, Y: Array, W: Array, picked: list, eps: float
) -> list[np.ndarray]:
    """Central differences at the picked coordinates of each leaf (float64 params)."""
    sizes = [leaf.size for leaf in jax.tree.leaves(params.layers)]
    offsets = np.cumsum([0, *sizes])[:-1]
    coords = np.concatenate([c + o for c, o in zip(picked, offsets)])
    chunk = int(max(1, min(256, 2**22 // (sum(sizes) + X.size))))  # ~32 MiB of copies
    fd = _finite_differences(
        params, X, Y, W, jnp.asarray(coords), jnp.asarray(eps, X.dtype), chunk=chunk
    )
    return np.split(np.asarray(fd), np.cumsum([c.size for c in picked])[:-1])


def _check_size(params: MLP, X: Any, dtype: str) -> None:
    """Refuse, before anything is allocated, a check that cannot fit in memory: 20
    copies of the params in ``dtype`` (the cast, two gradients, autodiff's temporaries,
    the host copies and the comparison's; ``jbpnn gradcheck --sizes 6000,6000,10``
    peaked at about 16), the data and weights cast to ``dtype``, and four of every
    layer's activations for the rows one call sums (:func:`rows_per_sum`)."""
    n_params = sum(int(np.size(l.w)) + int(np.size(l.b)) for l in params.layers)
    n_rows = int(np.shape(X)[0]) if np.ndim(X) > 1 else 1
    per_call = min(n_rows, rows_per_sum(dtype))
    data = n_rows * (params.n_in + params.n_out + 1)
    count = 20 * n_params + data + 4 * per_call * sum(params.sizes[1:])
    check_array_memory(
        (count,),
        dtype,
        f"gradcheck of a {'-'.join(map(str, params.sizes))} network on {n_rows} rows",
        device=jax.devices()[0],
        advice="check a smaller network on fewer rows (the check of the formulas does not "
        "need the full size)",
    )


@partial(jax.jit, static_argnames=("size",))
def _rows(a: Array, start: Array, size: int) -> Array:
    """Rows ``start .. start + size - 1`` of ``a`` (one compilation per size, not per start)."""
    return jax.lax.dynamic_slice_in_dim(a, start, size)


def _hand_and_autodiff(
    grad_fn: GradFn, p: MLP, x: Array, y: Array, w: Array, chunk: int, notes: list[str]
) -> tuple[Any, list[np.ndarray], Any, list[np.ndarray]]:
    """``(hand loss, hand leaves, autodiff loss, autodiff leaves)`` of the batch.

    At most ``chunk`` rows: one call of each. More: each called on consecutive chunks of
    ``chunk`` rows, the chunks' losses and gradients (weighted means) weighted by their
    weight sums and added in float64 on the host, so that no call sums more than
    ``chunk`` rows (:func:`rows_per_sum`); chunks whose weights are all 0 add nothing and
    are skipped (their mean is undefined).
    """
    n = int(x.shape[0])
    if n <= chunk:
        hand_loss, hand = _call(grad_fn, p, x, y, w)
        ref_loss, ref = _autodiff_loss_and_grad(p, x, y, w)
        return hand_loss, hand, ref_loss, [np.asarray(g) for g in jax.tree.leaves(ref.layers)]
    sums: list[np.ndarray] = []
    total, calls, n_leaves = 0.0, 0, 2 * len(p.layers)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        xk, yk, wk = (_rows(a, jnp.asarray(start, jnp.int32), size) for a in (x, y, w))
        weight = float(np.sum(np.asarray(wk, np.float64)))
        if weight == 0:
            continue
        hand_loss, hand = _call(grad_fn, p, xk, yk, wk)
        ref_loss, ref = _autodiff_loss_and_grad(p, xk, yk, wk)
        parts = [hand_loss, *hand, ref_loss, *jax.tree.leaves(ref.layers)]
        parts = [weight * np.asarray(a, np.float64) for a in parts]
        sums = parts if not sums else [a + b for a, b in zip(sums, parts)]
        total, calls = total + weight, calls + 1
    sums = [a / total for a in sums]
    notes.append(
        f"{n} rows checked in {calls} chunks of at most {chunk} rows (rows_per_sum): one "
        f"{x.dtype} call summing all {n} rows loses digits to rounding once its partial sums "
        "outgrow the terms, up to the size of a wrong derivative's error; both sides called "
        "on each chunk, the chunks' losses and gradients weighted by their weight sums and "
        "added in float64"
    )
    return sums[0], sums[1 : n_leaves + 1], sums[n_leaves + 1], sums[n_leaves + 2 :]


def gradcheck(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    reference: str = "autodiff",
    grad_fn: GradFn | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    eps: float | None = None,
    dtype: Any = None,
    max_coords: int = DEFAULT_MAX_COORDS,
    seed: int = 0,
    sample_weight: ArrayLike | None = None,
) -> GradcheckReport:
    """Compare the hand-derived batch gradient with autodiff or finite differences.

    A batch of more than :func:`rows_per_sum` rows (2^16 in float32) is checked in chunks
    of that many: ``grad_fn`` and jax.grad are called on each and the chunks combined in
    float64, weighted by their weight sums, since one float32 sum of more rows can be as
    far off as a wrong derivative (module docstring; the report's note says so).

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        reference: ``"autodiff"`` (``jax.grad`` of :func:`reference_loss`) or
            ``"finite_difference"`` (central differences, always in float64).
        grad_fn: the gradient to audit, a :data:`jbpnn.network.GradFn`, the signature
            ``train(grad_fn=)`` takes: ``grad_fn(params, X, Y, sample_weight) -> (loss,
            grads)``, called here with ``sample_weight`` (all ones by default, which
            does not test what ``grad_fn`` does with weights: give some, zeros
            included, as ``train``'s padded last batch has); ``loss`` is the
            batch-mean loss (checked against :func:`reference_loss` with the autodiff
            reference) and ``grads`` its ``dL/dtheta`` with the structure of params (an
            MLP or a list of ``(w, b)``). E.g. ``jax.value_and_grad(loss_kernel)``.
            Default: the hand-derived :func:`jbpnn.network.loss_and_gradient_kernel`.
        rtol: relative tolerance, used as given; default :func:`default_tolerances`: the
            base of :data:`DEFAULT_TOLERANCES` plus ``16 u sqrt(r - 1)`` for the ``r`` rows
            one call sums (the report prints it).
        atol: absolute tolerance; default from :data:`DEFAULT_TOLERANCES`.
        eps: finite-difference step ``h`` (default 1e-6); ignored for autodiff.
        dtype: autodiff only: compute both gradients in this dtype (default: the
            params' dtype). Finite differences always use float64.
        max_coords: finite differences: leaves with more entries are checked on a
            random sample of this many coordinates.
        seed: seed of that sample.
        sample_weight: non-negative weights of the rows, shape ``(B,)``, passed to
            ``grad_fn``; the references are then of the weighted mean loss
            (:func:`reference_loss`). Default: all ones (the plain mean).

    Returns:
        A :class:`GradcheckReport`; ``print`` it for the table.

    Raises:
        ValueError: on an unknown reference, bad shapes, an ``rtol`` not > 0, an
            ``atol`` not >= 0, a step not > 0, a ``grad_fn`` that cannot take ``(params,
            X, Y, sample_weight)`` (checked before anything runs), or one whose output is
            not ``(scalar loss, grads)`` with grads matching params.
    """
    _check_params(params)
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}; expected one of {list(REFERENCES)}")
    if grad_fn is not None:
        _check_grad_fn(grad_fn)
    X, Y, sw = check_batch(params, X, Y, sample_weight, domain=False)
    n_rows = int(X.shape[0])
    source = "grad_fn" if grad_fn is not None else "hand-derived loss_and_gradient_kernel"
    grad_fn = grad_fn if grad_fn is not None else _hand_loss_and_grad
    notes = []
    if sw is not None:
        notes.append("sample_weight given: the references are of the weighted mean loss")
    loss_check = None
    if reference == "autodiff":
        dtype = _dtype_name(params.dtype if dtype is None else dtype)
        _check_dtype(dtype)
        _check_size(params, X, dtype)
        per_call = min(n_rows, rows_per_sum(dtype))
        rtol, atol, rtol_base = _tolerances(reference, dtype, rtol, atol, per_call)
        with jax.enable_x64(dtype == "float64"):
            p, x, y, w = _cast(params, X, Y, sw, dtype)
            hand_loss, hand, ref_loss, ref = _hand_and_autodiff(
                grad_fn, p, x, y, w, per_call, notes
            )
        loss_check = LossCheck(*_compare_loss(hand_loss, ref_loss, rtol, atol))
        n_total = [r.size for r in ref]
        compared = f"{source} vs jax.grad of the batch loss"
        eps = None
    else:
        if dtype is not None and _dtype_name(dtype) != "float64":
            raise ValueError(f"finite differences run in float64 only; got dtype={dtype}")
        dtype = "float64"
        _check_size(params, X, dtype)
        per_call = min(n_rows, rows_per_sum(dtype))  # float64: n_rows, one call
        rtol, atol, rtol_base = _tolerances(reference, dtype, rtol, atol, per_call)
        eps = DEFAULT_EPS if eps is None else float(eps)
        if not (eps > 0 and np.isfinite(eps)):  # inf stepped every weight to inf: "FAILED"
            raise ValueError(f"the finite-difference step eps must be finite and > 0, got {eps}")
        max_coords = check_int("max_coords", max_coords, 1)  # 2.7 was cut to 2
        if _dtype_name(params.dtype) != "float64":
            notes.append(
                f"params and data cast from {_dtype_name(params.dtype)} to float64 for finite "
                "differences; both gradients computed in float64"
            )
        with jax.enable_x64(True):
            p, x, y, w = _cast(params, X, Y, sw, jnp.float64)
            hand_full = _call(grad_fn, p, x, y, w)[1]
            picked = _pick_coordinates(p, int(max_coords), seed, notes)
            ref = _finite_difference_reference(p, x, y, w, picked, eps)
        hand = [h.ravel()[c] for h, c in zip(hand_full, picked)]
        n_total = [h.size for h in hand_full]
        compared = f"{source} vs central finite differences of the batch loss"
    return _report(
        params,
        hand,
        ref,
        n_total,
        rtol=rtol,
        atol=atol,
        compared=compared,
        reference=reference,
        dtype=dtype,
        eps=eps,
        batch_size=n_rows,
        notes=notes,
        loss_check=loss_check,
        rtol_base=rtol_base,
        rows_per_call=per_call,
    )


def compare_per_example(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    per_example_fn: PerExampleFn | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: Any = None,
) -> GradcheckReport:
    """Compare per-example gradients with ``vmap(jax.grad(example error))``.

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        per_example_fn: ``per_example_fn(params, X, Y)`` (a :data:`PerExampleFn`, not a
            :data:`GradFn`: no weights, no loss) returning gradients whose leaves have a
            leading batch axis (layer ``l``'s ``w``: ``(B, n_in, n_out)``); default
            :func:`jbpnn.network.per_example_grads`.
        rtol: relative tolerance (default: the autodiff base of :data:`DEFAULT_TOLERANCES`,
            with no allowance: nothing is summed over the batch).
        atol: absolute tolerance (default as for the autodiff reference).
        dtype: compute both in this dtype (default: the params' dtype).

    Returns:
        A :class:`GradcheckReport` whose ``shape`` columns are per example and
        whose errors are maxima over the batch as well.
    """
    _check_params(params)
    X, Y, _ = check_batch(params, X, Y, domain=False)
    dtype = _dtype_name(params.dtype if dtype is None else dtype)
    _check_dtype(dtype)
    rtol, atol, rtol_base = _tolerances("autodiff", dtype, rtol, atol, 1)  # nothing summed
    source = "per_example_fn" if per_example_fn is not None else "hand-derived per_example_grads"
    per_example_fn = per_example_fn if per_example_fn is not None else per_example_grads
    with jax.enable_x64(dtype == "float64"):
        p, x, y, _ = _cast(params, X, Y, None, dtype)
        hand = per_example_fn(p, x, y)
        hand = hand.layers if isinstance(hand, MLP) else hand
        hand = [np.asarray(g) for g in jax.tree.leaves(hand)]
        ref = [np.asarray(g) for g in jax.tree.leaves(_autodiff_per_example(p, x, y).layers)]
    if [h.shape for h in hand] != [r.shape for r in ref]:
        raise ValueError(
            f"per_example_fn must return per-example gradients of shapes {[r.shape for r in ref]}, "
            f"got {[h.shape for h in hand]}"
        )
    return _report(
        params,
        hand,
        ref,
        [r.size for r in ref],
        rtol=rtol,
        atol=atol,
        compared=f"{source} vs vmap(jax.grad) of each example's error",
        reference="autodiff_per_example",
        dtype=dtype,
        eps=None,
        batch_size=int(X.shape[0]),
        rtol_base=rtol_base,
        rows_per_call=1,
    )


# ---------------------------------------------------------------- data
def random_batch(key: ArrayLike, params: MLP, batch_size: int) -> tuple[Array, Array]:
    """A random batch that suits the network's loss, in the params' dtype.

    ``X`` is standard normal, shape ``(B, n_in)``. ``Y`` has shape ``(B, n_out)``:
    uniform in [0, 1) for mse, one-hot labels for cross_entropy, 0/1 for
    binary_cross_entropy.
    """
    _check_params(params)
    if network_count(params):  # a stack's leading axis would read as n_in
        raise ValueError(
            "random_batch takes ONE network; for stacked params draw the batch for one of "
            "them, e.g. jax.tree.map(lambda a: a[0], params)"
        )
    batch_size = check_int("batch_size", batch_size, 1, high=INT32_MAX)
    # X, Y and the per-example work after them: refused before XLA aborts the process
    # (--batch 3000000000 ended jbpnn gradcheck with a C++ check failure)
    if 4 * batch_size * (params.n_in + params.n_out) * params.dtype.itemsize > 2**26:
        check_array_memory(  # above 64 MiB, as init_params: does it fit?
            (batch_size, params.n_in + params.n_out),
            params.dtype,
            f"a random batch of {batch_size} examples",
            copies=4,
            advice="use a smaller batch",
        )
    kx, ky = jax.random.split(key)
    shape = (int(batch_size), params.n_out)
    X = jax.random.normal(kx, (int(batch_size), params.n_in), params.dtype)
    if params.loss == "cross_entropy":
        labels = jax.random.randint(ky, shape[:1], 0, params.n_out)
        Y = jax.nn.one_hot(labels, params.n_out, dtype=params.dtype)
    elif params.loss == "binary_cross_entropy":
        Y = jax.random.bernoulli(ky, 0.5, shape).astype(params.dtype)
    else:
        Y = jax.random.uniform(ky, shape, params.dtype)
    return X, Y


# ---------------------------------------------------------------- a unit's own derivatives
UNIT_RTOL = 1e-6  # float64: a right derivative measures ~1e-15, a wrong one ~1e-1
UNIT_ROWS, UNIT_WIDTH = 32, 6  # the random net inputs: 32 layers' worth of 6 units


def _unit_relative_error(hand: Any, ref: Any) -> float:
    """The largest over the rows (one layer's units each) of ``|hand - ref| / |ref|``
    (norms of the row): one norm over every entry let the tails hide an error (``net^3``
    with a derivative 33% off for ``|net| < 0.8`` measured 1e-7, the entries at +-1000
    outweighing the rest). inf where ``hand`` is not finite. Entries where autodiff is
    not finite but ``hand`` is (an ``fn`` written ``1 / (1 + exp(-net))`` overflows inside
    its own autodiff at -1000, where its value and derivative are fine) are not compared;
    ValueError if that is more than a tenth of them."""
    hand, ref = np.asarray(hand, np.float64), np.asarray(ref, np.float64)
    if hand.shape != ref.shape:
        raise ValueError(f"it returned shape {hand.shape}, expected {ref.shape}")
    if not np.all(np.isfinite(hand)):
        return float("inf")
    unknown = ~np.isfinite(ref)
    if np.sum(unknown) > 0.1 * ref.size:
        raise ValueError(
            f"autodiff of fn is NaN or inf at {int(np.sum(unknown))} of {ref.size} net inputs, "
            "so the rule cannot be checked: write fn so that JAX can differentiate it there "
            "(e.g. jax.nn.sigmoid rather than 1 / (1 + exp(-net))), or register with check=False"
        )
    hand, ref = np.where(unknown, 0.0, hand), np.where(unknown, 0.0, ref)
    rows = hand.reshape(hand.shape[0], -1), ref.reshape(ref.shape[0], -1)
    diff, size = np.linalg.norm(rows[0] - rows[1], axis=1), np.linalg.norm(rows[1], axis=1)
    if not np.any(size) and np.any(diff):  # nothing to be relative to: say what differs
        raise ValueError(
            f"autodiff of fn gives 0 at every net input (a constant fn, or one that hides "
            f"its dependence from JAX, e.g. lax.stop_gradient) and the rule does not "
            f"(|hand| up to {float(np.max(np.abs(rows[0]))):.3g})"
        )
    floor = max(1e-12 * float(np.max(size)), 1e-300)  # a row whose derivative is ~0
    return float(np.max(diff / np.maximum(size, floor)))


# Net inputs an activation is also checked at, rows of like magnitude from 3e-4 to 1000
# (the error is judged row by row: a row mixing +-1000 with +-0.005 let a derivative wrong
# only near 0 pass), so that a derivative written wrong only in a band meets one of them:
# near 0 (a sign, a kink), the bands past the random inputs' reach (cut to 0 past |net| 8,
# a wrong piece between 5 and 8 or 13 and 29) and the tails (an overflowing exp).
UNIT_FIXED_NETS = ((-3e-3, -1e-3, -3e-4, 3e-4, 1e-3, 3e-3),
                   (-0.03, -0.01, -0.005, 0.005, 0.01, 0.03),
                   (-0.3, -0.15, -0.06, 0.06, 0.15, 0.3),
                   (-9.0, -7.0, -5.5, 5.5, 7.0, 9.0),
                   (-18.0, -14.0, -11.0, 11.0, 14.0, 18.0),
                   (-33.0, -27.0, -22.0, 22.0, 27.0, 33.0),
                   (-100.0, -70.0, -45.0, 45.0, 70.0, 100.0),
                   (-1000.0, -400.0, -150.0, 150.0, 400.0, 1000.0))  # fmt: skip
UNIT_NEAR_ROWS = 3  # UNIT_FIXED_NETS's rows near 0 (up to 0.3), judged as the random ones
# The tails are judged to 1e-3: autodiff of usual formulas keeps 4-5 digits there even in
# float64 (softplus's f'' through logaddexp, s (1 - s) of a sigmoid near 1: 1e-4 off at
# net 27), and a derivative wrong in a band is off by far more (0.1 to 1).
UNIT_TAIL_RTOL = 1e-3
UNIT_CHECK_DTYPES = ("float32", "float64", "float16", "bfloat16")


def _random_nets(seed: int, fixed: bool = False) -> tuple[Array, Array, Array]:
    """Net inputs ~ N(0, 2^2), kept 0.1 away from 0 (kinks there), and two directions;
    ``fixed``: UNIT_FIXED_NETS's rows after the random ones."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    rows = UNIT_ROWS + (len(UNIT_FIXED_NETS) if fixed else 0)
    shape = (rows, UNIT_WIDTH)
    net = 2.0 * jax.random.normal(k1, (UNIT_ROWS, UNIT_WIDTH), jnp.float64)
    net = net + jnp.where(net < 0, -0.1, 0.1)
    if fixed:
        net = jnp.concatenate([net, jnp.asarray(UNIT_FIXED_NETS, jnp.float64)])
    return net, jax.random.normal(k2, shape, jnp.float64), jax.random.normal(k3, shape, jnp.float64)


def _keeps_dtype(
    what: str, rules: dict[str, tuple[Callable[..., Any], int]], hint: str = ""
) -> None:
    """Refuse a rule whose output is not in its inputs' dtype, for each dtype a network
    may have (``jax.eval_shape``: nothing computed). A NumPy constant (``np.sqrt(2)`` is a
    float64) promoted a float32 network's passes to float64 (and ``lm`` failed inside its
    scan), ``jnp.float32(2)`` a float16 one's to float32."""
    for dtype in UNIT_CHECK_DTYPES:
        for rule, (fn, n_args) in rules.items():
            spec = jax.ShapeDtypeStruct((UNIT_WIDTH,), jnp.dtype(dtype))
            with _rules_run(what, hint):
                out = jax.eval_shape(fn, *[spec] * n_args)
            got = getattr(out, "dtype", None)
            if got != jnp.dtype(dtype):
                raise ValueError(
                    f"{what}: {rule} returns {got} for {dtype} inputs; a unit's or a loss's "
                    f"rules must keep their inputs' dtype (networks in "
                    f"{', '.join(UNIT_CHECK_DTYPES)} use them): write constants as Python "
                    "numbers (math.sqrt(2), 0.5), not NumPy or JAX scalars such as "
                    "np.sqrt(2) (a float64) or jnp.float32(2)"
                )


def _refuse(what: str, rule: str, error: float, against: str, rtol: float) -> None:
    if not error <= rtol:
        measured = "not finite" if not np.isfinite(error) else f"{error:.3g}"
        raise ValueError(
            f"{what}: {rule} disagrees with autodiff of {against}: relative error {measured} "
            f"(|hand - autodiff| / |autodiff| of each row of {UNIT_WIDTH} net inputs, the "
            f"largest, in float64; at most {rtol:g} is accepted)"
        )


@contextlib.contextmanager
def _rules_run(what: str, hint: str = "") -> Iterator[None]:
    """A user's rule that fails to run under JAX's transformations (NumPy on a tracer, a
    Python ``if`` on an array, a typo) is the ``ValueError`` the checks document, naming
    the registration and the fault (and ``hint``), not the raw error from inside JAX."""
    try:
        yield
    except ValueError as error:
        if str(error).startswith(what):
            raise
        raise ValueError(f"{what}: a rule fails to run ({_fault(error)}){hint}") from None
    except Exception as error:  # the user's code: any fault
        raise ValueError(f"{what}: a rule fails to run ({_fault(error)}){hint}") from None


def _fault(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def check_activation(
    act: Activation, what: str = "activation", *, seed: int = 0, rtol: float = UNIT_RTOL
) -> dict[str, float]:
    """Check an activation's hand derivatives against autodiff of its ``fn``, in float64.

    At random net inputs ``net`` (normal, standard deviation 2) and the fixed ones of
    UNIT_FIXED_NETS (out to +-1000, and close to 0), and random directions ``r``, ``g``,
    with ``z`` the unit's output ``fn(net)`` or ``net`` itself as ``act.uses`` says, each
    row of a layer:

        backprop(z, g)     vs  jax.vjp(fn, net)(g)                          J^T g
        tangent(z, r)      vs  jax.jvp(fn, net, r)                          J r
        second(z, r, g)    vs  jax.jvp(net -> jax.vjp(fn, net)(g), net, r)  d/de J(net + e r)^T g

    (``second`` only where given). :func:`jbpnn.register_activation` calls it.

    The random rows and UNIT_FIXED_NETS's rows near 0 are judged to ``rtol``, the rows
    of the tails to UNIT_TAIL_RTOL (autodiff itself keeps fewer digits there).

    Returns:
        The relative error of each rule checked, ``{"backprop": ..., ...}`` (the
        random inputs and those near 0).

    Raises:
        ValueError: a rule off by more than ``rtol`` (or not finite), naming ``what``,
            the rule and the measured error; a rule that fails to run (its message).
    """
    with jax.enable_x64(True):  # locally, never globally
        net, r, g = _random_nets(seed, fixed=True)

        def vjp_row(n: Array, c: Array) -> Array:
            return jax.vjp(act.fn, n)[1](c)[0]

        with _rules_run(what):
            out = jax.vmap(act.fn)(net)
        if not hasattr(out, "shape"):  # a forgotten return, a tuple
            raise ValueError(
                f"{what}: fn must return an array, one output per net input; it returned "
                f"{type(out).__name__}"
            )
        if out.shape != net.shape:
            raise ValueError(f"{what}: fn maps shape {net.shape[1:]} to {out.shape[1:]}")
        if not jnp.issubdtype(out.dtype, jnp.floating):  # a step's (net > 0).astype(int)
            raise ValueError(
                f"{what}: fn must return floats of its net input's dtype (a unit's output is "
                f"differentiated); it returned {out.dtype} for float64 net inputs"
            )
        bad = int(np.sum(~np.isfinite(np.asarray(out))))
        if bad:
            raise ValueError(
                f"{what}: fn gives NaN or inf at {bad} of {net.size} net inputs (normal, "
                "standard deviation 2, and fixed ones out to +-1000); an activation must be "
                "finite for every net input"
            )
        rules: dict[str, tuple[Callable[..., Any], int]] = {"fn": (act.fn, 1)}
        rules["the derivative (backprop)"] = (act.backprop, 2)
        if act.tangent is not None:
            rules["the tangent"] = (act.tangent, 2)
        if act.second is not None:
            rules["the second derivative"] = (act.second, 3)
        _keeps_dtype(what, rules)

        @jax.jit  # one small program: quicker than op by op
        def pairs(net: Array, r: Array, g: Array) -> dict[str, tuple[Array, Array]]:
            z = net if act.uses == "net" else jax.vmap(act.fn)(net)
            checks = {"backprop": (jax.vmap(act.backprop)(z, g), jax.vmap(vjp_row)(net, g))}
            if act.tangent is not None:
                ref = jax.vmap(lambda n, d: jax.jvp(act.fn, (n,), (d,))[1])(net, r)
                checks["tangent"] = (jax.vmap(act.tangent)(z, r), ref)
            if act.second is not None:
                ref = jax.vmap(lambda n, d, c: jax.jvp(lambda m: vjp_row(m, c), (n,), (d,))[1])(
                    net, r, g
                )
                checks["second"] = (jax.vmap(act.second)(z, r, g), ref)
            return checks

        with _rules_run(what):
            checks = pairs(net, r, g)
        errors = {}
        near = UNIT_ROWS + UNIT_NEAR_ROWS  # the random rows and those near 0, then the tails
        tail_rtol = max(rtol, UNIT_TAIL_RTOL)
        for rule, (hand, ref) in checks.items():
            name = {"backprop": "the derivative", "second": "the second derivative"}
            name_tails = name.get(rule, "the tangent") + " in the tails (|net| 5.5 to 1000)"
            try:
                errors[rule] = _unit_relative_error(hand[:near], ref[:near])
                tails = _unit_relative_error(hand[near:], ref[near:])
            except ValueError as e:
                raise ValueError(f"{what}: {rule}: {e}") from None
            _refuse(what, name.get(rule, "the tangent"), errors[rule], "fn", rtol)
            _refuse(what, name_tails, tails, "fn", tail_rtol)
    return errors


_width_hint = (
    f"; the check calls the rules on rows of {UNIT_WIDTH} outputs: for a loss written for a "
    "fixed number of outputs, register it with check=False and check it on your network "
    "with jbpnn.gradcheck(params, X, Y)"
)


def check_loss(
    loss: Loss,
    table: dict[str, Activation],
    what: str = "loss",
    *,
    seed: int = 0,
    rtol: float = UNIT_RTOL,
    any_targets: bool = False,
) -> dict[str, float]:
    """Check a loss's output delta (and ``delta_r``) against autodiff, for each output unit.

    For every name in ``loss.output_activations`` (its row from ``table``), at random
    net inputs of the output layer and random targets in (0, 1) (rows summing to 1 for
    softmax, probability targets), and with ``any_targets`` (a regression loss, whose
    standardised targets take either sign) also at targets ~ N(0, 2^2):

        delta(O, T, act)          vs  -d/dnet E(fn(net), T)                 Err = -dE/dnet
        delta_r(O, T, act, r)     vs  -jax.jvp(d/dnet E(fn(net), T), net, r)

    ``delta_gn`` is not checked (which part of the curvature it keeps is the loss's
    choice), nor ``delta_r`` with an output unit that has no ``second`` (``hvp``, which
    alone uses it, refuses such a network). :func:`jbpnn.register_loss` calls it.

    Returns:
        ``{"<activation>: delta": error, ...}``.

    Raises:
        ValueError: a rule off by more than ``rtol``, naming ``what``, the output
            activation and the measured error.
    """
    errors = {}
    with jax.enable_x64(True):  # locally, never globally
        net, r, u = _random_nets(seed)
        for name, wide in [(n, w) for n in loss.output_activations for w in (False, True)]:
            if wide and (not any_targets or name == "softmax"):
                continue
            act = table[name]
            if not wide:  # the rules keep the outputs' dtype, as a unit's must
                spec = jax.ShapeDtypeStruct((UNIT_WIDTH,), jnp.float64)
                with _rules_run(f"{what} with output {name!r}", _width_hint):
                    e = jax.eval_shape(lambda n, y, a=act: loss.error(a.fn(n), y), spec, spec)
                if getattr(e, "shape", None) != () or not jnp.issubdtype(e.dtype, jnp.floating):
                    got = f"shape {e.shape}, {e.dtype}" if hasattr(e, "shape") else type(e).__name__
                    raise ValueError(
                        f"{what}: error must return ONE float per example (E summed over "
                        f"the outputs, e.g. 0.5 * jnp.sum((t - o) ** 2)), got {got}"
                    )
                _keeps_dtype(
                    f"{what} with output {name!r}",
                    {
                        "error": (lambda n, y, a=act: loss.error(a.fn(n), y), 2),
                        "delta": (lambda n, y, a=act: loss.delta(a.fn(n), y, bind(a, n)), 2),
                    },
                    _width_hint,
                )
            t = 2 * u if wide else jax.nn.sigmoid(u)  # targets of any sign, or in (0, 1)
            if name == "softmax":
                t = t / jnp.sum(t, axis=-1, keepdims=True)

            def minus_grad(n: Array, y: Array, act: Activation = act) -> Array:
                return -jax.grad(lambda m: loss.error(act.fn(m), y))(n)

            def hand_delta(n: Array, y: Array, act: Activation = act) -> Array:
                return loss.delta(act.fn(n), y, bind(act, n))

            def hand_r(n: Array, y: Array, d: Array, act: Activation = act) -> Array:
                assert loss.delta_r is not None  # only called where it is set (below)
                return loss.delta_r(act.fn(n), y, bind(act, n), d)

            def ref_r(n: Array, y: Array, d: Array, act: Activation = act) -> Array:
                return jax.jvp(lambda m: minus_grad(m, y, act), (n,), (d,))[1]

            @jax.jit  # one small program: quicker than op by op
            def pairs(
                net: Array, t: Array, r: Array, with_second: bool = act.second is not None
            ) -> dict[str, tuple[Array, Array]]:
                checks = {"delta": (jax.vmap(hand_delta)(net, t), jax.vmap(minus_grad)(net, t))}
                # delta_r is used by hvp only, which refuses a unit without second=
                if loss.delta_r is not None and with_second:
                    checks["delta_r"] = (jax.vmap(hand_r)(net, t, r), jax.vmap(ref_r)(net, t, r))
                return checks

            hint = _width_hint
            with _rules_run(f"{what} with output {name!r}", hint):
                checks = pairs(net, t, r)
            for rule, (hand, ref) in checks.items():
                key = f"{name}: {rule}" + (" (targets of any sign)" if wide else "")
                try:
                    errors[key] = _unit_relative_error(hand, ref)
                except ValueError as e:
                    raise ValueError(f"{what}: {rule} with output {name!r}: {e}") from None
                signs = " and targets of any sign" if wide else ""
                _refuse(
                    what, f"{rule} with output {name!r}{signs}", errors[key], "E(fn(net), T)", rtol
                )
    return errors


# ---------------------------------------------------------------- jbpnn.gradcheck(...)
make_callable(__name__, lambda: gradcheck)  # jbpnn.gradcheck(params, X, Y)


if __name__ == "__main__":  # python -m jbpnn.gradcheck: the command line lives in jbpnn.cli
    from jbpnn.cli.gradcheck import main

    sys.exit(main())

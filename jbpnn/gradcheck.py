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
and the loss table's ``error`` only (or its ``error_net``, the same error written in the
output layer's net inputs, for the log losses with their own output unit), never from the
deltas, so the two sides are independent derivations of the same quantity
(``dE/dtheta``, the sign convention of :mod:`jbpnn.losses`: gradients, not descent
directions). With the autodiff reference the loss ``grad_fn`` returns is checked too,
against :func:`reference_loss`, with the same tolerances (``report.loss_check``).

Error measure, for each entry of each layer's ``w`` and ``b``::

    abs error  = |hand - ref|
    floor      = max(atol, rtol * max|ref| of the leaf, rounding * S)
    rel error  = |hand - ref| / max(|hand|, |ref|, floor / rtol)
    pass       <=>  rel error <= rtol  <=>  |hand - ref| <= max(rtol * max(|hand|, |ref|), floor)

A leaf passes when all its entries do; the report's "max rel err" is the largest rel
error, the one the verdict is based on. The floor follows each leaf's own scale (a
fixed float32 ``atol`` of 1e-6 passed an all-zero hand gradient of a leaf whose entries
were all below it, 5e-7, where the two sides agree to 1e-10):

* ``rtol * max|ref|`` of the leaf: a leaf's entries are sums of like terms (the leaf's
  inputs times its deltas), so a small entry is off by about as much as the largest
  (a forward sum that cancels, ``1 - O^2`` of a saturated tanh against autodiff's
  ``(1 - O)(1 + O)``); the leaf is judged to ``rtol`` at its own scale, however small.
* ``rounding * S``, against autodiff: ``S = sum_n |s_n dE_n/dtheta|`` (``s_n`` each row's
  share of the mean, autodiff of each example), the entry's size before its terms
  cancel, and ``rounding = (ROUNDING_TERM_FACTOR + 16 sqrt(r - 1)) u``
  (:func:`rounding_factor`): the rounding of the terms themselves (1024 u) and of their
  sum (below). Where a gradient cancels to near 0 (a network at a minimum) its entries
  are only known to this, and the floor says so rather than failing a correct gradient.
* ``atol``: 0 against autodiff unless given, 1e-7 for finite differences (whose error
  is the step's, not the leaf's); and at least ``tiny / u`` (2e-31 in float32), below
  which products keep no relative accuracy and XLA:CPU flushes subnormal numbers to 0.

Measured on 360 float32 networks (depths 1 to 6, widths 8 and 32, batches 32 and 1000,
every hidden unit of the library, each loss with its output units, he and article
weights, also rounded to bfloat16): all pass, the worst max rel err 7.5e-6.

Default tolerances (:func:`default_tolerances`): a base (:data:`DEFAULT_TOLERANCES`),
at least 13x the worst disagreement measured on 91 random networks at batch 32 (and
~1000x below the errors of a wrong derivative, which are of order 1), plus an
allowance for the rounding of the sums over the batch rows::

    rtol = base + 16 u sqrt(r - 1),   r = min(B, rows_per_sum(dtype)): rows summed per call

    autodiff, float32            base 1e-3,  atol 0      (u = 2^-24, r <= 2^16: rtol <= 1.24e-3)
    autodiff, float64            base 1e-8,  atol 0      (u = 2^-53: + at most 8e-11)
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
sums and added in float64 (a note says so). Each chunk takes rows spread over the whole
batch (``(a j) mod B``, ``_spread_stride``), so that a run of equal weights (the
zeros of ``train``'s padded last rows) meets the others in every chunk and a
``grad_fn`` that ignores its weights fails; only a chunk whose weights are all 0 is not
called (its mean is undefined; the note counts it). That checks the derivation, not the
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
many coordinates, named in the report (``LeafCheck.sampled``). Every entry of the hand
gradient, sampled or not, must be finite: a NaN or inf fails its leaf. A finite wrong
value at a coordinate not sampled is not seen (check such a leaf against autodiff, or
with ``max_coords`` at its size).

Limits of the references. Both differentiate the *implemented* loss. For binary
cross-entropy with a sigmoid output and cross-entropy with a softmax output that is the
loss's ``error_net`` (``softplus(net) - T net``, ``sum T (logsumexp(net) - net)``),
exact where an output rounds to 0 or 1, so a saturated, wrong output is checked there
(its hand-derived ``T - O`` agrees with float64 autodiff of ``error_net`` to 3e-7 in
float32). A loss without ``error_net`` (one registered with :func:`jbpnn.register_loss`)
is differentiated through its ``error(O, T)``: where it clips a log the loss is flat,
jax.grad and finite differences read 0, and a mismatch there is the reference failing.
Finite differences are also wrong for ReLU units whose net input lies within ``h`` of 0
(the kink).

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
from jbpnn.activations import is_builtin as activations_is_builtin
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
    "ROUNDING_TERM_FACTOR",
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
    "rounding_factor",
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
# default_tolerances adds the rounding allowance of the batch sums to the rtol. Against
# autodiff no absolute atol: each leaf's floor follows its own scale (_floors). A fixed
# float32 atol of 1e-6 passed an all-zero hand gradient of a leaf whose entries are all
# below it (5e-7 in an 8-8-8-8-8-1 sigmoid network, where the two sides agree to 1e-10).
# Finite differences keep 1e-7: their error is the step's (truncation and the loss's
# rounding over 2h), which does not scale with the leaf.
DEFAULT_TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("autodiff", "float32"): (1e-3, 0.0),
    ("autodiff", "float64"): (1e-8, 0.0),
    ("finite_difference", "float64"): (1e-5, 1e-7),
}
DEFAULT_EPS = 1e-6  # finite-difference step h, in float64
DEFAULT_MAX_COORDS = 4096  # finite differences: coordinates checked per leaf at most
# rtol allowance 16 u sqrt(r - 1) of a sum of r rows: lambda = 8 in the probabilistic bound
# lambda sqrt(r - 1) u of Higham and Mary (2019), for each of the two sides compared
SUM_ROUNDING_FACTOR = 16.0
# The rounding floor's allowance for the terms themselves, in units of u times their size
# (rounding_factor): each example's forward and backward pass, a few dozen operations
# deep, and the hand and autodiff forms of a derivative (1 - O^2 against (1 - O)(1 + O)).
ROUNDING_TERM_FACTOR = 1024.0


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


_ERROR_NET_NOTE = (
    "the reference differentiates the loss's error_net, written in the output layer's net "
    "inputs (exact where an output rounds to 0 or 1, where the log of the clipped output "
    "has derivative 0)"
)
_ARTICLE_NOTE = (
    "article mode: the article code's 'sigmoid' is tanh forward with derivative O - O^2, "
    "and biases never reach the forward pass (their true gradient is 0)"
)


# ---------------------------------------------------------------- the reference loss
def reference_loss(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """The batch loss ``1/B sum_n E(forward(params, x_n), t_n)``, for autodiff; with
    ``sample_weight`` the weighted mean ``sum_n s_n E_n / sum_n s_n``.

    Written from :func:`jbpnn.network.forward` and ``LOSSES[params.loss].error`` only
    (vmapped), independently of the hand-derived deltas; for binary cross-entropy with
    the sigmoid and cross-entropy with the softmax, from the loss's ``error_net`` of the
    output layer's net inputs instead (``_uses_error_net``): ``error`` clips the log
    where an output rounds to 0 or 1, and its derivative there is 0, so a correct float32
    gradient with one saturated wrong output was reported FAILED.

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
    """``E`` of one example: ``error_net(net, t)`` of the output layer's net inputs where the
    loss has one for this output unit (``_uses_error_net``), else ``error(O, t)``."""
    out, cache = forward(params, x)
    loss = LOSSES[params.loss]
    if not _uses_error_net(params):
        return loss.error(out, y)
    assert loss.error_net is not None  # _uses_error_net checked it
    last = params.layers[-1]
    o_prev = cache[-2].astype(last.w.dtype)  # the output layer's input, as forward has it
    net = o_prev @ last.w if params.article_mode else o_prev @ last.w + last.b
    return loss.error_net(net, y)


def _uses_error_net(params: MLP) -> bool:
    """Whether the reference differentiates the loss's ``error_net`` (the log losses with
    their own output unit: binary cross-entropy with the sigmoid, cross-entropy with the
    softmax): the output activation is one the loss lists and is still the built-in unit
    that ``error_net`` is written for (not the article mode's tanh-valued "sigmoid").
    Their ``error`` clips the log where an output rounds to 0 or 1 (float32 from a net
    input of about 16.6), where its derivative is 0 and the true one is not;
    ``error_net`` is exact there."""
    loss = LOSSES[params.loss]
    output = params.activations[-1]
    return (
        loss.error_net is not None
        and not params.article_mode  # its "sigmoid" is tanh: not the unit error_net is for
        and output in loss.output_activations
        and activations_is_builtin(output)
    )


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
        max_rel_err: the relative error the verdict is based on, the largest over the
            entries of ``|hand - ref| / max(|hand|, |ref|, floor / rtol)`` with each
            entry's floor (:class:`GradcheckReport`).
        passed: ``max_rel_err <= rtol`` (and every value finite; with finite differences
            every entry of the full hand gradient, sampled or not).
        floor: the largest entry floor of the leaf: ``|hand - ref|`` up to it passes.
        sampled: finite differences on a sample: the flat (row-major) indices of the
            entries compared; None when every entry was.
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
    floor: float = 0.0
    sampled: tuple[int, ...] | None = None

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
        rel_err: ``|hand - ref| / max(|hand|, |ref|, floor / rtol)``, the loss's floor
            ``max(atol, rounding sum_n |s_n E_n|)`` (:func:`rounding_factor`).
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
        atol: an absolute floor under every entry's (0 against autodiff unless given;
            finite differences: 1e-7, :data:`DEFAULT_TOLERANCES`). Each entry passes
            when ``|hand - ref| <= max(rtol max(|hand|, |ref|), floor)``, with ``floor =
            max(atol, rtol max|ref| of its leaf, rounding S)`` (module docstring).
        rounding: against autodiff, :func:`rounding_factor` of the dtype and the rows one
            call sums: the floor's ``rounding S`` term; None for finite differences.
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
    rounding: float | None = None

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
        d["checks"] = [
            asdict(c) | {"shape": list(c.shape), "sampled": _listed(c.sampled)} for c in self.checks
        ]
        d["sizes"], d["activations"], d["notes"] = (
            list(self.sizes),
            list(self.activations),
            list(self.notes),
        )
        d["passed"] = self.passed
        d["failed"] = [list(f) for f in self.failed]
        return d

    def _rtol_text(self) -> str:
        """``0.0015`` as given, or for a default ``1.244e-03 = 0.001 + 16 u sqrt(65536 - 1)
        (...)`` (its formula exact): given numbers printed so that they read back exactly
        (``_exact``)."""
        if self.rtol_base is None or self.rows_per_call is None or self.rows_per_call < 2:
            return _exact(self.rtol)
        u = _unit_roundoff(self.dtype)
        return (
            f"{self.rtol:.3e} = {_exact(self.rtol_base)} + {SUM_ROUNDING_FACTOR:g} u "
            f"sqrt({self.rows_per_call} - 1) ({self.dtype} u = {u:.2e}; the rounding of a "
            f"sum over {self.rows_per_call} row{'s' * (self.rows_per_call != 1)})"
        )

    def __str__(self) -> str:
        mark = "*" if self.article_mode else ""
        acts = [a + (mark if a == "sigmoid" else "") for a in self.activations]
        if self.rounding is None:
            rounding = ""
        else:
            summed = self.rows_per_call or 1
            rounding = (
                f", {self.rounding:.3g} S (S = sum_n |s_n dE_n/dtheta|, the entry's terms "
                f"before they cancel; {self.rounding:.3g} = ({ROUNDING_TERM_FACTOR:g} + "
                f"{SUM_ROUNDING_FACTOR:g} sqrt({summed} - 1)) u: its rounding)"
            )
        head = [
            f"gradcheck: {self.compared}",
            f"network {'-'.join(map(str, self.sizes))}, activations ({', '.join(acts)}), "
            f"loss {self.loss}, batch {self.batch_size}, dtype {self.dtype}",
            f"tolerance: rtol {self._rtol_text()}, atol {_exact(self.atol)}"
            + (f", finite-difference step {_exact(self.eps)}" if self.eps is not None else ""),
            "an entry passes when |hand - ref| <= max(rtol * max(|hand|, |ref|), floor); floor "
            f"= max(atol, rtol * max|ref| of its leaf{rounding}); 'max rel err' is the "
            "relative error the verdict is based on, the largest |hand - ref| / max(|hand|, "
            "|ref|, floor/rtol): a leaf passes when it is <= rtol",
        ]
        cols = ["layer", "param", "activation", "shape", "checked", "max|ref|", "floor"]
        cols += ["max abs err", "max rel err", "result"]
        rows = [
            [
                str(c.layer),
                c.param,
                acts[c.layer],
                "x".join(map(str, c.shape)),
                str(c.n_checked) if c.n_checked == c.n_total else f"{c.n_checked}/{c.n_total}",
                f"{c.max_ref:.2e}",
                f"{c.floor:.2e}",
                f"{c.max_abs_err:.2e}",
                f"{c.max_rel_err:.2e}",
                "ok" if c.passed else "FAIL",
            ]
            for c in self.checks
        ]
        widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
        left = {1, 2, 9}
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


def _exact(x: float) -> str:
    """``x`` with the fewest digits that read back as ``x`` (``0.0015``, ``1e-06``):
    a given tolerance printed ``.0e`` read 1.5e-3 as ``2e-03``."""
    return repr(float(x)) if x != int(x) or abs(x) >= 1e16 else f"{x:g}"


def _listed(picked: tuple[int, ...] | None) -> list[int] | None:
    return None if picked is None else list(picked)


def _compare_leaf(
    hand: np.ndarray, ref: np.ndarray, rtol: float, floor: Any
) -> tuple[float, float, float, bool, float]:
    """(max|ref|, max abs err, max rel err, passed, largest floor) for one leaf, in float64
    on the host: ``rel = |hand - ref| / max(|hand|, |ref|, floor / rtol)`` for each entry
    (``floor`` broadcast to it, ``_floors``), passed when every ``rel <= rtol``; inf
    where either side is not finite."""
    hand, ref = np.asarray(hand, np.float64), np.asarray(ref, np.float64)
    if hand.size == 0:
        return 0.0, 0.0, 0.0, True, 0.0
    diff = np.abs(hand - ref)
    floor = np.broadcast_to(np.asarray(floor, np.float64), diff.shape)
    scale = np.maximum(np.maximum(np.abs(hand), np.abs(ref)), floor / rtol)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=diff != 0)
    rel = np.where(np.isfinite(diff) & np.isfinite(scale), rel, np.inf)
    max_rel = float(np.max(rel))
    top_floor = float(np.max(floor))
    return (
        float(np.max(np.abs(ref))),
        float(np.max(diff)),
        max_rel,
        bool(max_rel <= rtol),
        top_floor,
    )


def rounding_factor(dtype: Any, rows: int) -> float:
    """``(ROUNDING_TERM_FACTOR + 16 sqrt(r - 1)) u``: the rounding floor of a mean of ``r``
    rows in ``dtype`` is this times ``S = sum_n |s_n dE_n/dtheta|`` (module docstring)."""
    u = _unit_roundoff(dtype)
    return (ROUNDING_TERM_FACTOR + SUM_ROUNDING_FACTOR * float(np.sqrt(max(rows, 1) - 1))) * u


def _underflow_floor(dtype: Any) -> float:
    """``tiny / u`` (2e-31 in float32, 2e-292 in float64; ``tiny`` the smallest normal
    number): products that pass below ``tiny`` keep no relative accuracy, and XLA:CPU
    flushes them to 0 on one side and not the other (a deep saturated sigmoid network's
    hand gradient 1e-36 where jax.grad's is 0), so entries this small are not compared."""
    return float(np.finfo(dtype).tiny) / _unit_roundoff(dtype)


def _floors(
    ref: list[np.ndarray],
    sums: list[np.ndarray] | None,
    rtol: float,
    atol: float,
    rounding: float,
    least: float,
) -> list[np.ndarray]:
    """Each entry's floor ``max(atol, least, rtol max|ref| of its leaf, rounding S)``:
    ``S`` its absolute sum (``_absolute_sums``; None: no such term, finite
    differences), ``least`` ``_underflow_floor``. Per-example gradients: the leaf's
    largest ``|ref|`` over the whole batch (an example whose gradient is 0 on one side
    and ``u`` on the other, a saturated sigmoid's ``T - O``, is no failure)."""
    floors = []
    for i, r in enumerate(ref):
        r = np.abs(np.asarray(r, np.float64))
        if r.size == 0:
            floors.append(np.zeros_like(r))
            continue
        top = np.max(np.where(np.isfinite(r), r, 0.0))
        floor = np.maximum(max(atol, least), rtol * top)
        if sums is not None:
            size = np.asarray(sums[i], np.float64)
            floor = np.maximum(floor, rounding * np.where(np.isfinite(size), size, 0.0))
        floors.append(floor)
    return floors


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
    hand: Any, ref: Any, rtol: float, floor: float
) -> tuple[float, float, float, float, bool]:
    """(hand, ref, abs err, rel err, passed) for the scalar losses: the rule of the leaves,
    with the loss's own floor (``max(atol, rounding sum_n |s_n E_n|)``)."""
    hand, ref = np.asarray(hand, np.float64), np.asarray(ref, np.float64)
    _, abs_err, rel_err, ok, _ = _compare_leaf(hand, ref, rtol, floor)
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
    floors: list[np.ndarray],
    sampled: list[np.ndarray | None] | None = None,
    nonfinite: list[int] | None = None,
    **fields: Any,
) -> GradcheckReport:
    """The report of the leaves compared; ``nonfinite``: NaN or inf entries of each leaf's
    FULL hand gradient (finite differences compare a sample only): such a leaf fails."""
    checks = []
    for i, (h, r) in enumerate(zip(hand, ref)):
        layer, param = divmod(i, 2)
        max_ref, max_abs, max_rel, ok, floor = _compare_leaf(
            np.asarray(h), np.asarray(r), rtol, floors[i]
        )
        if nonfinite is not None and nonfinite[i]:
            max_rel, ok = float("inf"), False
        picked = None if sampled is None or sampled[i] is None else sampled[i]
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
                floor=floor,
                sampled=None if picked is None else tuple(int(k) for k in picked),
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
                f"coordinates sampled (max_coords={max_coords}, seed={seed}; their flat "
                f"row-major indices in report.checks[{i}].sampled); the other "
                f"{leaf.size - coords.size} entries of the hand gradient are checked finite only"
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


@jax.jit
def _take(a: Array, rows: Array) -> Array:
    """The rows ``rows`` of ``a`` (one compilation per chunk size)."""
    return jnp.take(a, rows, axis=0)


def _spread_stride(n: int) -> int:
    """``a``, the integer nearest ``n (sqrt(5) - 1) / 2`` that is coprime with ``n``: the
    rows ``(a j) mod n``, ``j = 0 .. n - 1``, are then every row once, and consecutive
    ``j`` land far apart (a Weyl sequence: any run of rows, and any period, is spread
    evenly over the chunks)."""
    a = max(1, round(n * (np.sqrt(5.0) - 1) / 2))
    while np.gcd(a, n) != 1:
        a += 1
    return a


@partial(jax.jit, static_argnames=("block",))
def _absolute_sums(params: MLP, X: Array, Y: Array, W: Array, *, block: int) -> list[Array]:
    """``[sum_n |s_n E_n|, S_w0, S_b0, ...]`` with ``S = sum_n |s_n dE_n/dtheta|`` per entry
    and ``s_n = W_n / sum W``: the size of each mean before its terms cancel, the scale of
    its rounding (:func:`rounding_factor`). Autodiff of each example
    (``vmap(jax.value_and_grad)``), ``block`` rows at a time (``lax.scan``) so that the
    per-example gradients held at once stay small."""
    s = W / jnp.sum(W)
    pad = -X.shape[0] % block
    rows = [jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in (X, Y, s)]
    rows = [a.reshape(-1, block, *a.shape[1:]) for a in rows]
    per_example = jax.vmap(jax.value_and_grad(_example_error), in_axes=(None, 0, 0))

    def add(acc: list[Array], blk: tuple[Array, ...]) -> tuple[list[Array], None]:
        x, y, sb = blk
        e, g = per_example(params, x, y)
        parts = [e, *jax.tree.leaves(g.layers)]
        weigh = lambda a: jnp.tensordot(  # noqa: E731  sum_n |s_n| |a_n|, 0 where s_n = 0
            jnp.abs(sb), jnp.where((sb != 0).reshape(-1, *[1] * (a.ndim - 1)), jnp.abs(a), 0), 1
        )
        return [t + weigh(a) for t, a in zip(acc, parts)], None

    zeros = [jnp.zeros((), X.dtype), *[jnp.zeros_like(l) for l in jax.tree.leaves(params.layers)]]
    return jax.lax.scan(add, zeros, tuple(rows))[0]


def _block_rows(params: MLP, n: int) -> int:
    """Rows per step of ``_absolute_sums``: about 2^22 per-example gradient entries."""
    n_params = sum(int(np.size(l.w)) + int(np.size(l.b)) for l in params.layers)
    return int(max(1, min(n, 2**22 // (n_params + params.n_in + params.n_out))))


def _hand_and_autodiff(
    grad_fn: GradFn, p: MLP, x: Array, y: Array, w: Array, chunk: int, notes: list[str]
) -> tuple[Any, list[np.ndarray], Any, list[np.ndarray], list[np.ndarray]]:
    """``(hand loss, hand leaves, autodiff loss, autodiff leaves, absolute sums)`` of the
    batch, the last as ``_absolute_sums`` (loss first).

    At most ``chunk`` rows: one call of each. More: each called on chunks of at most
    ``chunk`` rows, the chunks' losses and gradients (weighted means) weighted by their
    weight sums and added in float64 on the host, so that no call sums more than
    ``chunk`` rows (:func:`rows_per_sum`). Chunk ``k`` takes the rows ``(a j) mod n`` for
    ``j`` in ``[k chunk, (k + 1) chunk)`` (``_spread_stride``), not a contiguous
    run: with contiguous chunks the zero weights of ``train``'s padded last rows filled
    chunks of their own, whose mean is undefined, while the chunks before held only
    ones, so a ``grad_fn`` that ignores its weights passed. A chunk whose weights are
    still all 0 (only where fewer rows than chunks weigh anything) adds nothing and is
    not called (the note counts them).
    """
    n = int(x.shape[0])
    if n <= chunk:
        hand_loss, hand = _call(grad_fn, p, x, y, w)
        ref_loss, ref = _autodiff_loss_and_grad(p, x, y, w)
        sums = _absolute_sums(p, x, y, w, block=_block_rows(p, n))
        ref_leaves = [np.asarray(g) for g in jax.tree.leaves(ref.layers)]
        return hand_loss, hand, ref_loss, ref_leaves, [np.asarray(a) for a in sums]
    totals: list[np.ndarray] = []
    total, calls, skipped, skipped_rows, n_leaves = 0.0, 0, 0, 0, 2 * len(p.layers)
    stride = _spread_stride(n)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        rows = jnp.asarray((stride * np.arange(start, start + size, dtype=np.int64)) % n, jnp.int32)
        xk, yk, wk = (_take(a, rows) for a in (x, y, w))
        weight = float(np.sum(np.asarray(wk, np.float64)))
        if weight == 0:  # its weighted mean is 0 / 0, and it adds nothing to the batch's
            skipped, skipped_rows = skipped + 1, skipped_rows + size
            continue
        hand_loss, hand = _call(grad_fn, p, xk, yk, wk)
        ref_loss, ref = _autodiff_loss_and_grad(p, xk, yk, wk)
        sums = _absolute_sums(p, xk, yk, wk, block=_block_rows(p, size))
        parts = [hand_loss, *hand, ref_loss, *jax.tree.leaves(ref.layers), *sums]
        parts = [weight * np.asarray(a, np.float64) for a in parts]
        totals = parts if not totals else [a + b for a, b in zip(totals, parts)]
        total, calls = total + weight, calls + 1
    totals = [a / total for a in totals]
    n_chunks = calls + skipped
    unused = (
        f"; {skipped} of them ({skipped_rows} rows) weigh nothing (every weight 0) and were "
        "not called: their mean is undefined and they add nothing to the batch's"
        if skipped
        else ""
    )
    notes.append(
        f"{n} rows in {n_chunks} chunks of at most {chunk} rows (rows_per_sum), "
        f"{n - skipped_rows} rows in the {calls} chunks called{unused}. One {x.dtype} call "
        "summing all rows loses digits to rounding once its partial sums outgrow the terms, "
        "up to the size of a wrong derivative's error; chunk k holds the rows (a j) mod n, "
        f"a = {stride}, for j from k {chunk} (spread over the batch, so that a run of equal "
        "weights, such as train's padded zeros, meets the other weights in every chunk); "
        "both sides called on each chunk, the chunks' losses and gradients weighted by their "
        "weight sums and added in float64"
    )
    loss_sum = totals[2 * n_leaves + 2]
    return (
        totals[0],
        totals[1 : n_leaves + 1],
        totals[n_leaves + 1],
        totals[n_leaves + 2 : 2 * n_leaves + 2],
        [loss_sum, *totals[2 * n_leaves + 3 :]],
    )


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
    of that many, each taking rows spread over the batch: ``grad_fn`` and jax.grad are
    called on each and the chunks combined in float64, weighted by their weight sums,
    since one float32 sum of more rows can be as far off as a wrong derivative (module
    docstring; the report's note says so).

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
        atol: an absolute floor under each entry's (module docstring); default from
            :data:`DEFAULT_TOLERANCES`: 0 against autodiff, where each leaf's floor follows
            its own scale (``rtol`` times its largest ``|ref|``, and the rounding of its
            terms), 1e-7 for finite differences.
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
            hand_loss, hand, ref_loss, ref, sums = _hand_and_autodiff(
                grad_fn, p, x, y, w, per_call, notes
            )
        rounding = rounding_factor(dtype, per_call)
        least = _underflow_floor(dtype)
        floors = _floors(ref, sums[1:], rtol, atol, rounding, least)
        loss_floor = max(atol, least, rounding * float(np.nan_to_num(sums[0], posinf=0.0)))
        loss_check = LossCheck(*_compare_loss(hand_loss, ref_loss, rtol, loss_floor))
        n_total = [r.size for r in ref]
        compared = f"{source} vs jax.grad of the batch loss"
        eps, sampled, nonfinite = None, None, None
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
        # every entry of the hand gradient must be finite, sampled or not: a NaN where no
        # coordinate was sampled passed
        nonfinite = [int(np.sum(~np.isfinite(h))) for h in hand_full]
        for i, bad in enumerate(nonfinite):
            if bad:
                first = np.unravel_index(
                    int(np.argmax(~np.isfinite(hand_full[i]))), hand_full[i].shape
                )
                notes.append(
                    f"layer {i // 2} {'wb'[i % 2]}: {bad} of {hand_full[i].size} entries of the "
                    f"hand gradient are NaN or inf (the first at {list(map(int, first))}): the "
                    "leaf fails, whether or not they were sampled"
                )
        hand = [h.ravel()[c] for h, c in zip(hand_full, picked)]
        sampled = [c if c.size < h.size else None for h, c in zip(hand_full, picked)]
        n_total = [h.size for h in hand_full]
        compared = f"{source} vs central finite differences of the batch loss"
        rounding = None
        floors = _floors(ref, None, rtol, atol, 0.0, _underflow_floor(np.float64))
    if _uses_error_net(params):
        notes.append(_ERROR_NET_NOTE)
    return _report(
        params,
        hand,
        ref,
        n_total,
        rtol=rtol,
        atol=atol,
        floors=floors,
        sampled=sampled,
        nonfinite=nonfinite,
        compared=compared,
        reference=reference,
        dtype=dtype,
        eps=eps,
        batch_size=n_rows,
        notes=notes,
        loss_check=loss_check,
        rtol_base=rtol_base,
        rows_per_call=per_call,
        rounding=rounding,
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
        atol: an absolute floor (default 0, as for the autodiff reference: each leaf's
            floor is ``rtol`` times its largest ``|ref|`` over the batch).
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
    # one term per entry: S is |ref| itself
    rounding = rounding_factor(dtype, 1)
    least = _underflow_floor(dtype)
    floors = _floors(ref, [np.abs(r) for r in ref], rtol, atol, rounding, least)
    return _report(
        params,
        hand,
        ref,
        [r.size for r in ref],
        rtol=rtol,
        atol=atol,
        floors=floors,
        rounding=rounding,
        notes=[_ERROR_NET_NOTE] if _uses_error_net(params) else [],
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
UNIT_TAIL_FROM = 8.0  # a row reaching past this |net| is a tail row (UNIT_TAIL_RTOL)
# A dense grid and log-spaced magnitudes, so that no band is left between the inputs
# checked: a ReLU6 whose derivative stepped at 6.5 rather than 6, and a softsign derivative
# 2x too large on 4.0-4.3, 5.6-6.9, 7.6-8.9, 9.5-10.5, past |net| 1000 or within 2.9e-4 of
# 0, all met no input of the random draw and UNIT_FIXED_NETS and were accepted. The grid
# runs from -12 in steps of 0.05, offset by 0.05 (sqrt(5) - 1) / 2 (irrational), so that
# no point falls on a kink (0, 6, an integer), where autodiff's convention (JAX takes the
# derivative of max(net, 0) at 0 as 0.5 or 0, of clip at 6 as either side) may differ from
# the unit's; the magnitudes run from 1e-8 to 1e6, four a decade, both signs.
UNIT_GRID = (-12.0, 12.0, 0.05)  # (from, to, step)
UNIT_MAGNITUDES = (-8, 6, 4)  # 10^-8 .. 10^6, 4 a decade
UNIT_CHECK_DTYPES = ("float32", "float64", "float16", "bfloat16")


def _grid_nets() -> np.ndarray:
    """UNIT_GRID's points and UNIT_MAGNITUDES's of both signs, rows of ``UNIT_WIDTH``: the
    grid's consecutive points, and the magnitudes as UNIT_FIXED_NETS's rows
    (``-m3, -m2, -m1, m1, m2, m3``, three consecutive magnitudes), float64."""
    lo, hi, step = UNIT_GRID
    offset = step * (np.sqrt(5.0) - 1) / 2
    n = int(round((hi - lo) / step)) // UNIT_WIDTH * UNIT_WIDTH
    grid = (lo + offset + step * np.arange(n)).reshape(-1, UNIT_WIDTH)
    first, last, per_decade = UNIT_MAGNITUDES
    k = ((last - first) * per_decade + 1) // (UNIT_WIDTH // 2) * (UNIT_WIDTH // 2)
    mags = (10.0 ** np.linspace(first, last, k)).reshape(-1, UNIT_WIDTH // 2)
    signed = np.concatenate([-mags[:, ::-1], mags], axis=1)
    return np.concatenate([grid, signed])


def _random_nets(seed: int, fixed: bool = False, grid: bool = False) -> tuple[Array, Array, Array]:
    """Net inputs ~ N(0, 2^2), kept 0.1 away from 0 (kinks there), and two directions;
    ``fixed``: UNIT_FIXED_NETS's rows after the random ones; ``grid``: then
    ``_grid_nets``'s."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    net = 2.0 * jax.random.normal(k1, (UNIT_ROWS, UNIT_WIDTH), jnp.float64)
    net = net + jnp.where(net < 0, -0.1, 0.1)
    if fixed:
        net = jnp.concatenate([net, jnp.asarray(UNIT_FIXED_NETS, jnp.float64)])
    if grid:
        net = jnp.concatenate([net, jnp.asarray(_grid_nets(), jnp.float64)])
    shape = net.shape
    return net, jax.random.normal(k2, shape, jnp.float64), jax.random.normal(k3, shape, jnp.float64)


def _tail_rows(net: Any) -> np.ndarray:
    """Which rows are tail rows: those reaching past ``UNIT_TAIL_FROM`` (judged to
    UNIT_TAIL_RTOL), the others to the check's rtol."""
    return np.max(np.abs(np.asarray(net)), axis=1) > UNIT_TAIL_FROM


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

    At random net inputs ``net`` (normal, standard deviation 2), the fixed ones of
    UNIT_FIXED_NETS (out to +-1000, and close to 0), a grid from -12 to 12 in steps of
    0.05 (no point on a kink) and magnitudes from 1e-8 to 1e6 of both signs
    (``_grid_nets``), and random directions ``r``, ``g``,
    with ``z`` the unit's output ``fn(net)`` or ``net`` itself as ``act.uses`` says, each
    row of a layer:

        backprop(z, g)     vs  jax.vjp(fn, net)(g)                          J^T g
        tangent(z, r)      vs  jax.jvp(fn, net, r)                          J r
        second(z, r, g)    vs  jax.jvp(net -> jax.vjp(fn, net)(g), net, r)  d/de J(net + e r)^T g

    (``second`` only where given). :func:`jbpnn.register_activation` calls it.

    Rows (of UNIT_WIDTH like inputs) within ``|net| <= 8`` are judged to ``rtol``, the
    rows reaching past it (the tails) to UNIT_TAIL_RTOL (autodiff itself keeps fewer
    digits there).

    Returns:
        The relative error of each rule checked, ``{"backprop": ..., ...}`` (the rows
        within ``|net| <= 8``).

    Raises:
        ValueError: a rule off by more than ``rtol`` (or not finite), naming ``what``,
            the rule and the measured error; a rule that fails to run (its message).
    """
    with jax.enable_x64(True):  # locally, never globally
        net, r, g = _random_nets(seed, fixed=True, grid=True)

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
                "standard deviation 2, and fixed ones out to +-1e6); an activation must be "
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
        tail = _tail_rows(net)  # rows reaching past |net| 8: judged to UNIT_TAIL_RTOL
        tail_rtol = max(rtol, UNIT_TAIL_RTOL)
        for rule, (hand, ref) in checks.items():
            name = {"backprop": "the derivative", "second": "the second derivative"}
            name_tails = (
                name.get(rule, "the tangent") + f" in the tails (rows reaching past |net| "
                f"{UNIT_TAIL_FROM:g}, out to 1e6)"
            )
            hand, ref = np.asarray(hand), np.asarray(ref)
            try:
                errors[rule] = _unit_relative_error(hand[~tail], ref[~tail])
                tails = _unit_relative_error(hand[tail], ref[tail])
            except ValueError as e:
                raise ValueError(f"{what}: {rule}: {e}") from None
            _refuse(what, name.get(rule, "the tangent"), errors[rule], "fn", rtol)
            _refuse(what, name_tails, tails, "fn", tail_rtol)
    return errors


# The output layer's net inputs a loss is also checked at, rows of like magnitude judged to
# UNIT_TAIL_RTOL: saturated outputs (a sigmoid's within 2e-9 of 0 or 1), where a delta
# zeroed past an output of 0.9999 was accepted (the random net inputs reach 7.5). Not
# further: in float64 a sigmoid rounds to 1 from net 36.7 and the log of 1 - O is 1e-3
# off at net 30, where autodiff of a loss written from the outputs is the reference.
LOSS_TAIL_NETS = ((-20.0, -14.0, -9.5, 9.5, 14.0, 20.0),
                  (-17.0, -11.0, 20.0, -20.0, 11.0, 17.0))  # fmt: skip
# Targets of any sign (regression losses) also at these, the residuals far past the random
# draw's (|T - O| up to 8.5: a Huber loss with threshold 9 and a wrong outlier branch was
# accepted).
LOSS_LARGE_TARGETS = (10.0, -30.0, 100.0, -1e3, 3e3, -1e4)


def _loss_rows(seed: int, softmax: bool, wide: bool) -> tuple[Array, Array, Array, np.ndarray]:
    """``(net, T, r, tail)``, float64: the output layer's net inputs, targets, a direction
    and which rows are judged to UNIT_TAIL_RTOL. Rows:

    * random net inputs (``_random_nets``) with random targets in (0, 1), or of either
      sign (``wide``, a regression loss: ``2 u``, ``u`` normal);
    * the same net inputs with hard targets: 0 and 1 at random, and one-hot rows (a
      delta wrong only where a target is exactly 0, such as a mask, was accepted);
    * LOSS_TAIL_NETS with targets 0, 1, alternating 0 and 1, and soft (tail rows);
    * ``wide``: the random net inputs with LOSS_LARGE_TARGETS (tail rows).

    With a softmax output every target row is made to sum to 1 (the soft ones divided by
    their sum; the hard ones one-hot), as the loss is checked and trained on.
    """
    net, r, u = (np.asarray(a, np.float64) for a in _random_nets(seed))  # NumPy: no compiles
    width = net.shape[1]
    soft = 2 * u if wide else 1 / (1 + np.exp(-u))  # targets of any sign, or in (0, 1)
    hot = np.eye(width)[np.argmax(u, axis=1)]
    rows = [(net, soft, False), (net, hot, False)]  # (net, T, tail)
    if not softmax:
        rows.append((net, (u > 0).astype(np.float64), False))  # 0 and 1 at random
    tails = np.asarray(LOSS_TAIL_NETS, np.float64)
    k = tails.shape[0]
    if softmax:  # one-hot on the largest, the smallest and a middle net input
        picks = [np.argmax(tails, axis=1), np.argmin(tails, axis=1), np.full(k, 2)]
        hard = [np.eye(width)[i] for i in picks]
    else:
        alternate = np.tile(np.arange(width) % 2, (k, 1)).astype(np.float64)
        hard = [np.zeros((k, width)), np.ones((k, width)), alternate]
    rows += [(tails, t, True) for t in [*hard, soft[:k]]]
    if wide:
        large = np.asarray(LOSS_LARGE_TARGETS) * np.where(u[:2] < 0, -1.0, 1.0)
        rows.append((net[:2], large, True))
    net_all = np.concatenate([n for n, _, _ in rows])
    t_all = np.concatenate([t for _, t, _ in rows])
    if softmax:
        t_all = t_all / np.sum(t_all, axis=-1, keepdims=True)
    tail = np.concatenate([np.full(n.shape[0], far) for n, _, far in rows])
    m = net_all.shape[0]
    r_all = np.concatenate([r] * (m // r.shape[0] + 1))[:m]
    as_jax = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    return as_jax(net_all), as_jax(t_all), as_jax(r_all), tail


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

    For every name in ``loss.output_activations`` (its row from ``table``), at the rows
    of ``_loss_rows``: random net inputs of the output layer with random targets in
    (0, 1) (rows summing to 1 for softmax, probability targets) and, with
    ``any_targets`` (a regression loss, whose standardised targets take either sign),
    targets ~ N(0, 2^2); the same net inputs with hard targets (0 and 1 at random, one-hot
    rows); saturated outputs (LOSS_TAIL_NETS, ``|net|`` 9.5 to 20) with hard and soft
    targets; and with ``any_targets`` large residuals (LOSS_LARGE_TARGETS, ``|T|`` up to
    1e4). The random and hard-target rows are judged to ``rtol``, the others to
    UNIT_TAIL_RTOL (a wrong branch is off by far more):

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
            net, t, r, tail = _loss_rows(seed, name == "softmax", wide)

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
                hand, ref = np.asarray(hand), np.asarray(ref)
                try:
                    errors[key] = _unit_relative_error(hand[~tail], ref[~tail])
                    tails = _unit_relative_error(hand[tail], ref[tail])
                except ValueError as e:
                    raise ValueError(f"{what}: {rule} with output {name!r}: {e}") from None
                signs = " and targets of any sign" if wide else ""
                against = "E(fn(net), T)"
                _refuse(what, f"{rule} with output {name!r}{signs}", errors[key], against, rtol)
                far = (
                    f"{rule} with output {name!r}{signs} at saturated outputs (|net| 9.5 to 20)"
                    + (" and large residuals (|T| 10 to 1e4)" if wide else "")
                )
                _refuse(what, far, tails, against, max(rtol, UNIT_TAIL_RTOL))
    return errors


# ---------------------------------------------------------------- jbpnn.gradcheck(...)
make_callable(__name__, lambda: gradcheck)  # jbpnn.gradcheck(params, X, Y)


if __name__ == "__main__":  # python -m jbpnn.gradcheck: the command line lives in jbpnn.cli
    from jbpnn.cli.gradcheck import main

    sys.exit(main())

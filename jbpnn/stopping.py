"""The stop rules of a run, declared once: :class:`Stopping`; their traced form StopRules.

A :class:`Stopping` holds the eleven thresholds of the stop rules (see
:mod:`jbpnn.training` for what each rule does), checked ONCE, in its constructor.
Everything downstream reads it:

- :meth:`Stopping.switches` and :meth:`Stopping.divergence`: which optional rules
  and divergence bounds exist (static: part of the compiled program's
  :class:`jbpnn.training.TrainConfig`; a rule that is off is not compiled);
- :meth:`Stopping.rules`: the thresholds as arrays (:class:`StopRules`, traced: a
  new threshold is not a new program);
- :func:`stack_rules`: one :class:`StopRules` with a leading network axis for
  ``train_many`` (every network its own thresholds, the same switches).

What ``None`` means, for every threshold (the command line has ``--tol``,
``--min-weight-change`` and ``--n-iter-no-change``, where ``off`` is None; the others are
the API's only):

==================== ========================== ==========================================
threshold            ``None``                    a number
==================== ========================== ==========================================
tol                  off (default)               stop when the epoch loss < tol (>= 0)
min_weight_change    off (default)               stop when every ``|delta w|`` < it (>= 0)
n_iter_no_change     off (``off``)               epochs without validation gain, >= 1
loss_patience        off (default)               epochs without loss gain, >= 1
lr_factor            off: a plateau stops        0 < f < 1: a plateau multiplies lr by f
max_loss_growth      off                         > 0 (default 1e6)
max_abs_param        off                         > 0 (default 1e9)
validation_tol       the optimizer's (default):  >= 0
                     1e-4, 0 with lm and br
loss_tol, min_lr     not allowed                 >= 0 (defaults 1e-4, 1e-6)
==================== ========================== ==========================================

``validation_tol`` is scikit-learn's absolute tolerance, 1e-4, except with the
Levenberg-Marquardt optimizers (``lm``, ``br``), whose ``n_iter_no_change`` is MATLAB's
``max_fail``: any gain counts (0). They reach losses far below 1e-4, where every epoch
would count as one without gain and the run would stop while its validation loss still
fell. :meth:`Stopping.for_optimizer` sets it when a run starts.

A count of ``0`` (``n_iter_no_change=0``, ``loss_patience=0``) is refused: "no
patience" could mean "off" or "stop at the first epoch without gain"; ``None`` is off.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.checks import INT32_MAX, check_int, check_threshold, scalar_value, to_device

__all__ = [
    "Divergence",
    "MONITORS",
    "NO_MONITOR",
    "RUNNING",
    "STOP_REASONS",
    "StopRules",
    "Stopping",
    "stack_rules",
    "stop_reason_name",
    "stop_rules",
]

Array = jax.Array

STOP_REASONS = (
    "max_epochs",
    "loss_below_tol",
    "weight_change_below_threshold",
    "no_validation_improvement",
    "diverged",
    "no_loss_improvement",
    "min_grad_reached",  # lm: |dE/dtheta| < min_grad (MATLAB's); lbfgs: max|g| <= gtol
    "mu_max_reached",  # lm: no step accepted with mu <= mu_max (MATLAB's mu_max)
    "loss_reduction_below_ftol",  # lbfgs: relative loss reduction <= ftol (scipy's)
    "max_fun_reached",  # lbfgs: more than max_fun evaluations of (E, g) (scikit-learn's)
    "line_search_failed",  # lbfgs: no step along -g met the Wolfe conditions
)
RUNNING = -1  # TrainState.stop while no rule has fired (also after max_epochs)
DEFAULT_VALIDATION_TOL = 1e-4  # scikit-learn's tol
_ANY_GAIN = ("lm", "br")  # MATLAB's max_fail: validation_tol 0

CODE = {name: i for i, name in enumerate(STOP_REASONS)}  # reason -> TrainState.stop

MONITORS = ("val_loss", "val_accuracy", "val_r2")  # what early stopping can watch
NO_MONITOR = -1  # TrainState.monitor without early stopping (else an index of MONITORS)


def stop_reason_name(stop: int) -> str:
    """The name of a ``TrainState.stop`` code (``RUNNING`` reads as ``"max_epochs"``).

    Raises:
        ValueError: a code that is neither ``RUNNING`` nor an index of :data:`STOP_REASONS`
            (an edited state).
    """
    code = int(stop)
    if not RUNNING <= code < len(STOP_REASONS):
        raise ValueError(
            f"TrainState.stop holds the stop code {code}; expected {RUNNING} (running) or "
            f"0 .. {len(STOP_REASONS) - 1} (an index of STOP_REASONS)"
        )
    return STOP_REASONS[CODE["max_epochs"] if code == RUNNING else code]


class StopRules(NamedTuple):
    """The stop-rule thresholds, as traced values (a new threshold is not a new program).

    Attributes:
        tol: stop when the epoch loss is below it (``-inf``: off).
        min_weight_change: stop when every ``|delta w|`` of an epoch is below it.
        n_iter_no_change: epochs without validation improvement before stopping (int32).
        validation_tol: the improvement that counts.
        loss_patience: epochs without training-loss improvement before stopping (int32).
        loss_tol: the improvement of the epoch loss that counts.
        lr_factor: with ``reduce_lr``, the learning rate's factor on a plateau.
        min_lr: with ``reduce_lr``, a plateau at ``lr <= min_lr`` stops the run.
        max_loss_growth: divergence: an epoch loss above this multiple of the
            reference loss (``TrainState.first_loss``; ``inf``: off).
        max_abs_param: divergence: a param of magnitude above it (``inf``: off).
    """

    tol: Array
    min_weight_change: Array
    n_iter_no_change: Array
    validation_tol: Array
    max_loss_growth: Array
    max_abs_param: Array
    loss_patience: Array
    loss_tol: Array
    lr_factor: Array
    min_lr: Array


class Switches(NamedTuple):
    """Which optional rules exist: static (they shape the compiled program)."""

    watch_weight_change: bool  # the article's rule 1 (max |delta w| is measured)
    early_stopping: bool  # n_iter_no_change (the best params are kept)
    watch_loss: bool  # loss_patience, the training-loss plateau
    reduce_lr: bool  # a plateau first multiplies lr by lr_factor
    monitor: str  # what early stopping watches


class Divergence(NamedTuple):
    """Which bounds of the divergence rule are on: static (off, they are not compiled).

    NaN/inf always count as divergence; these add the bounds for runs that blow up
    while still finite.
    """

    watch_growth: bool  # max_loss_growth (and its reference, from the first batch's loss)
    watch_params: bool  # max_abs_param


@dataclass(frozen=True)
class Stopping:
    """The stop rules of a run: eleven thresholds, checked once, here.

    ``train(..., stopping=Stopping(n_iter_no_change=10))`` is ``train(...,
    n_iter_no_change=10)``; build one to reuse a rule set across runs. See
    :mod:`jbpnn.training` for the rules and this module's table for what None means.

    Attributes:
        tol: stop when the epoch loss is below it (the article's rule 2); None: off.
        min_weight_change: stop when every ``|delta w|`` of an epoch is below it
            (the article's rule 1); None: off.
        n_iter_no_change: early stopping: epochs in a row without validation
            improvement (by ``validation_tol``) before stopping, >= 1; None: off.
        validation_tol: the improvement that counts, for ``n_iter_no_change``; None
            (default): the optimizer's, 1e-4 (scikit-learn's), 0 with ``lm`` and ``br``
            (MATLAB's ``max_fail``: any gain counts).
        monitor: what early stopping watches: ``"val_loss"``, ``"val_accuracy"``
            (as the error rate ``1 - accuracy``) or ``"val_r2"`` (as ``1 - R^2``,
            scikit-learn's uniform average over the outputs: ``MLPRegressor``'s).
        loss_patience: epochs in a row without training-loss improvement (by
            ``loss_tol``) before stopping, >= 1; None: off.
        loss_tol: the improvement that counts, for ``loss_patience``.
        lr_factor: on a plateau, multiply the learning rate by it (0 < f < 1) and
            go on until ``lr <= min_lr``; None: a plateau stops.
        min_lr: see ``lr_factor``.
        max_loss_growth: divergence: an epoch loss above this multiple of the
            reference loss; None: off.
        max_abs_param: divergence: a param of magnitude above it; None: off.

    Raises:
        ValueError: a threshold out of range, with its name and what is expected;
            ``monitor`` other than val_loss without ``n_iter_no_change``;
            ``lr_factor`` without a plateau rule.
    """

    tol: float | None = None
    min_weight_change: float | None = None
    n_iter_no_change: int | None = None
    validation_tol: float | None = None
    monitor: str = "val_loss"
    loss_patience: int | None = None
    loss_tol: float = 1e-4
    lr_factor: float | None = None
    min_lr: float = 1e-6
    max_loss_growth: float | None = 1e6
    max_abs_param: float | None = 1e9

    def __post_init__(self) -> None:
        checked = {
            "tol": check_threshold("tol", self.tol),
            "min_weight_change": check_threshold("min_weight_change", self.min_weight_change),
            "n_iter_no_change": _patience("n_iter_no_change", self.n_iter_no_change, "early"),
            "validation_tol": check_threshold("validation_tol", self.validation_tol),
            "loss_patience": _patience("loss_patience", self.loss_patience, "training-loss"),
            "loss_tol": _required("loss_tol", self.loss_tol),
            "lr_factor": _factor(self.lr_factor),
            "min_lr": _required("min_lr", self.min_lr),
            "max_loss_growth": _bound("max_loss_growth", self.max_loss_growth),
            "max_abs_param": _bound("max_abs_param", self.max_abs_param),
        }
        factor = checked["lr_factor"]
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {list(MONITORS)}, got {self.monitor!r}")
        if self.monitor != "val_loss" and checked["n_iter_no_change"] is None:
            raise ValueError(
                f"monitor={self.monitor!r} is what early stopping watches: give n_iter_no_change "
                "(and X_val, Y_val) too"
            )
        if factor is not None and checked["loss_patience"] is None:
            if checked["n_iter_no_change"] is None:
                raise ValueError(
                    "lr_factor acts on a plateau: give loss_patience (training loss) or "
                    "n_iter_no_change (validation) too"
                )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_keywords(cls, stopping: Stopping | None = None, **thresholds: Any) -> Stopping:
        """``stopping`` when given (then every keyword must be at its default), else
        ``Stopping(**thresholds)``: how ``train`` takes both spellings."""
        if stopping is None:
            return cls(**thresholds)
        if not isinstance(stopping, Stopping):
            raise ValueError(f"stopping must be a jbpnn Stopping, got {type(stopping).__name__}")
        defaults = {f.name: f.default for f in fields(cls)}
        mixed = sorted(k for k, v in thresholds.items() if not _same(v, defaults[k]))
        if "validation_tol" in mixed and _same(
            thresholds["validation_tol"], DEFAULT_VALIDATION_TOL
        ):
            # 1e-4 was the keyword's default: a caller forwarding it gives no second rule
            if stopping.validation_tol in (None, DEFAULT_VALIDATION_TOL):
                mixed.remove("validation_tol")
        if mixed:
            raise ValueError(
                f"give the stop rules either as stopping= or as keywords, not both: got "
                f"stopping= and {', '.join(mixed)}"
            )
        return stopping

    def for_optimizer(self, optimizer: Any) -> Stopping:
        """These rules with ``validation_tol``'s default set for ``optimizer``: 0 for
        ``lm`` and ``br`` (MATLAB's ``max_fail`` counts any gain), else 1e-4
        (scikit-learn's); one given stands."""
        if self.validation_tol is not None:
            return self
        exact = getattr(optimizer, "name", None) in _ANY_GAIN
        resolved = copy.copy(self)  # the others checked already: not again (replace would)
        object.__setattr__(resolved, "validation_tol", 0.0 if exact else DEFAULT_VALIDATION_TOL)
        return resolved

    def replace(self, **thresholds: Any) -> Stopping:
        """A copy with some thresholds changed (checked again)."""
        return type(self)(**{**self.as_dict(), **thresholds})

    def as_dict(self) -> dict[str, Any]:
        """The eleven thresholds by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def switches(self) -> Switches:
        """Which optional rules are on (static)."""
        return Switches(
            watch_weight_change=self.min_weight_change is not None,
            early_stopping=self.n_iter_no_change is not None,
            watch_loss=self.loss_patience is not None,
            reduce_lr=self.lr_factor is not None,
            monitor=self.monitor,
        )

    @property
    def divergence(self) -> Divergence:
        """Which divergence bounds are on (static)."""
        return Divergence(
            watch_growth=self.max_loss_growth is not None,
            watch_params=self.max_abs_param is not None,
        )

    def rules(self, dtype: Any, *, host: bool = False) -> StopRules:
        """The thresholds as arrays of ``dtype`` (counts int32): off is ``-inf`` for
        ``tol``, ``inf`` for the divergence bounds, 0 for the others; ``host=True``:
        NumPy scalars (to stack before one copy to the device)."""

        off = {"tol": -np.inf, "max_loss_growth": np.inf, "max_abs_param": np.inf}
        counts = ("n_iter_no_change", "loss_patience")
        values = {k: v for k, v in self.as_dict().items() if k != "monitor"}
        values["lr_factor"] = 1.0 if self.lr_factor is None else self.lr_factor
        if self.validation_tol is None:  # not set for an optimizer: scikit-learn's
            values["validation_tol"] = DEFAULT_VALIDATION_TOL
        # host=True keeps the NumPy arrays in the (Array-typed) fields, for one device_put.
        # A bound past the dtype's range (1e6 and 1e9 in float16, whose largest is 65504)
        # is inf there: no finite bound, the NaN/inf checks remain (no overflow warning).
        with np.errstate(over="ignore"):
            rules = StopRules(
                **{  # type: ignore[arg-type]
                    k: np.asarray(
                        off.get(k, 0) if v is None else v,
                        np.dtype(jnp.int32 if k in counts else dtype),
                    )
                    for k, v in values.items()
                }
            )
        return rules if host else jax.device_put(rules)  # one batched copy to the device


def stop_rules(dtype: Any, **thresholds: Any) -> StopRules:
    """``Stopping(**thresholds).rules(dtype)``: the checked thresholds as arrays."""
    return Stopping(**thresholds).rules(dtype)


def stack_rules(stoppings: Sequence[Stopping], dtype: Any) -> StopRules:
    """One :class:`StopRules` with a leading network axis, network ``i``'s from
    ``stoppings[i]``; copied to the device once.

    Raises:
        ValueError: the networks' switches differ (a rule on for some, off for
            others): one compiled program has one set of rules.
    """
    first = (stoppings[0].switches, stoppings[0].divergence)
    for i, s in enumerate(stoppings):
        if (s.switches, s.divergence) != first:
            diff = _diff(first[0], s.switches) or _diff(first[1], s.divergence)
            raise ValueError(
                f"network {i}: a stop rule is on for some networks and off (None) for others "
                f"({diff}); every network of one train_many call has the "
                "same rules (their thresholds may differ)"
            )
    rows = [s.rules(dtype, host=True) for s in stoppings]
    return StopRules(*(to_device(np.stack(column)) for column in zip(*rows)))


def _diff(a: NamedTuple, b: NamedTuple) -> str:
    return ", ".join(f"{k}: {x} vs {y}" for k, x, y in zip(a._fields, a, b) if x != y)


def _patience(name: str, value: Any, what: str) -> int | None:
    if value is not None and not isinstance(value, bool) and value == 0:
        raise ValueError(
            f"{name} must be an integer >= 1 or None (None: {what} stopping off), got 0: "
            "0 is ambiguous (off, or stop at the first epoch without a gain?)"
        )
    # an int32 count in the compiled program: 2**31 overflowed there (a raw OverflowError)
    return check_int(
        name, value, 1, allow_none=True, none_means=f"{what} stopping off", high=INT32_MAX
    )


def _factor(value: Any) -> float | None:
    """``lr_factor``: a number in (0, 1), or None (off); one message for every fault (True,
    NaN and -1 were told "a non-negative number")."""
    if value is None:
        return None
    value = scalar_value(value)  # np.array(0.5) as 0.5, as the other thresholds take it
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.number))
    if not number or not 0 < value < 1:
        raise ValueError(f"lr_factor must lie in (0, 1) (or None: off), got {value!r}")
    return float(value)


def _required(name: str, value: Any) -> float:
    checked = check_threshold(name, value)
    if checked is None:
        raise ValueError(f"{name} must be a finite number >= 0, got None")
    return checked


def _bound(name: str, value: Any) -> float | None:
    """A divergence bound: a number > 0, or None for off."""
    checked = check_threshold(name, value)
    if checked is not None and checked <= 0:
        raise ValueError(f"{name} must be a number > 0 or None (off), got {value!r}")
    return checked


def _same(given: Any, default: Any) -> bool:
    """``given`` is the keyword's default (an array or another type never is)."""
    return given is default or (type(given) is type(default) and given == default)

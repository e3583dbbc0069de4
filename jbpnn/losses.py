"""Losses, each with the delta it gives at the output layer.

Sign convention, stated once for the whole library: a *delta* (the article's
``Err``) is minus the derivative of the example's error with respect to a
unit's net input,

    Err_j = -dE/dnet_j,

so a positive delta means "this unit's net input should grow". Gradients
(``dE/dtheta``) are the negatives of the descent directions the article adds.

Each loss knows the output delta for the output activations it is exact with:

    mse                   E = 1/2 sum_k (T_k - O_k)^2     Err_k = f'(net_k) (T_k - O_k)
                                                          (sigmoid: O_k (1 - O_k)(T_k - O_k))
    cross_entropy         E = -sum_k T_k log O_k          Err_k = T_k - O_k     (softmax output)
    binary_cross_entropy  E = -sum_k [T_k log O_k         Err_k = T_k - O_k     (sigmoid output)
                                      + (1-T_k) log(1-O_k)]

The two ``T - O`` forms are exact only with their own output activation (the
f'(net) factor cancels against the log); any other pairing would silently
follow the wrong gradient, so ``VALID_PAIRS`` lists the allowed ones and
building params with another pair raises ``ValueError``.

For the curvature products (:mod:`jbpnn.curvature`) each loss also knows how its output
delta changes when the output layer's net inputs move along ``r`` (``R{net}``), in the
same sign (``-d^2E/dnet^2 r``), exactly (``delta_r``) and in the Gauss-Newton form
(``delta_gn``, ``-J^T H_O J r`` with ``H_O`` the Hessian of ``E`` in the outputs):

    mse                   R{Err} = -J^T J r + R{J^T} (T - O)     GN: -J^T J r      (H_O = I)
    cross_entropy         R{Err} = -sum(T) J r                   GN: the same
    binary_cross_entropy  R{Err} = -O (1 - O) r                  GN: the same

``J`` is the output activation's ``dO/dnet`` (``Activation.tangent``), ``R{J^T} g`` its
second derivative (``Activation.second``). The log losses are convex in the net inputs
of their own output activation, so there the exact and the Gauss-Newton terms agree
(``sum(T) (diag(O) - O O^T)`` per example for softmax, ``diag(O (1 - O))`` for sigmoid).

For an output unit that uses its net input (swish, gelu, softplus: ``uses="net"``) the
``activation`` a loss receives is already bound to the output layer's net inputs
(:func:`jbpnn.activations.bind`): ``act.backprop(O, g)`` is ``J^T g`` for every unit.

User-defined losses join the table through :func:`jbpnn.register_loss`.

This module imports only JAX and the activation table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from jbpnn.activations import ACTIVATIONS, Activation
from jbpnn.checks import is_concrete

__all__ = [
    "ANY_OUTPUT_LOSSES",
    "BUILTIN_LOSSES",
    "LOSSES",
    "VALID_PAIRS",
    "Loss",
    "add_loss",
    "add_output_activation",
    "binary_cross_entropy_delta",
    "binary_cross_entropy_delta_r",
    "binary_cross_entropy_error",
    "binary_cross_entropy_error_net",
    "CHECKED_TARGETS",
    "check_pair",
    "check_target_domain",
    "cross_entropy_delta",
    "cross_entropy_delta_r",
    "cross_entropy_error",
    "cross_entropy_error_net",
    "describe_valid_pairs",
    "get_loss",
    "is_builtin",
    "mse_delta",
    "mse_delta_gn",
    "mse_delta_r",
    "mse_error",
]

Array = jax.Array


class Loss(NamedTuple):
    """One row of the loss table.

    Attributes:
        error: ``(O, T) -> E`` for one example, ``O`` and ``T`` of shape ``(n_out,)``.
        delta: ``(O, T, activation) -> Err`` at the output layer, ``-dE/dnet``.
        output_activations: output activations for which ``delta`` is exact.
        delta_r: ``(O, T, activation, r) -> R{Err}``: the change of ``delta`` when the
            output layer's net inputs move along ``r``, ``-d^2E/dnet^2 r``.
        delta_gn: ``(O, T, activation, r) -> -J^T H_O J r``: its Gauss-Newton part.
        error_net: ``(net, T) -> E``, the same error written in the output layer's net
            inputs, for the loss's own output unit (the log losses): exact where an
            output rounds to 0 or 1, where ``log`` of it cannot be. The losses of the
            library use it wherever the net inputs are at hand; None: ``error`` only.
    """

    error: Callable[[Array, Array], Array]
    delta: Callable[[Array, Array, Activation], Array]
    output_activations: tuple[str, ...]
    delta_r: Callable[[Array, Array, Activation, Array], Array] | None = None
    delta_gn: Callable[[Array, Array, Activation, Array], Array] | None = None
    error_net: Callable[[Array, Array], Array] | None = None


def _clip_for_log(o: Array) -> Array:
    # Keeps log finite where an output rounds to exactly 0; the delta is unaffected.
    return jnp.maximum(o, jnp.finfo(o.dtype).tiny)


def mse_error(o: Array, t: Array) -> Array:
    """E = 1/2 sum_k (T_k - O_k)^2, the article's error."""
    return 0.5 * jnp.sum((t - o) ** 2)


def mse_delta(o: Array, t: Array, act: Activation) -> Array:
    """Err_k = f'(net_k) (T_k - O_k); for the sigmoid, O_k (1 - O_k)(T_k - O_k)."""
    return act.backprop(o, t - o)


def cross_entropy_error(o: Array, t: Array) -> Array:
    """E = -sum_k T_k log O_k, for a softmax output."""
    return -jnp.sum(xlogy(t, _clip_for_log(o)))


def cross_entropy_error_net(net: Array, t: Array) -> Array:
    """E = sum_k T_k (logsumexp(net) - net_k), which is -sum_k T_k log softmax(net)_k:
    exact where an output rounds to 0 (float32 from a gap of about 87 in net, float16 of
    about 10), where the clamped log of it reported a bounded loss."""
    return jnp.sum(t * (jax.nn.logsumexp(net) - net))


def cross_entropy_delta(o: Array, t: Array, act: Activation) -> Array:
    """Err_k = T_k - O_k (sum_j T_j); for one-hot or probability targets, T_k - O_k."""
    return t - o * jnp.sum(t)


def binary_cross_entropy_error(o: Array, t: Array) -> Array:
    """E = -sum_k [T_k log O_k + (1 - T_k) log(1 - O_k)], for sigmoid outputs."""
    return -jnp.sum(xlogy(t, _clip_for_log(o)) + xlogy(1 - t, _clip_for_log(1 - o)))


def binary_cross_entropy_error_net(net: Array, t: Array) -> Array:
    """E = sum_k [log(1 + e^net_k) - T_k net_k], which is
    -sum_k [T_k log s(net_k) + (1 - T_k) log(1 - s(net_k))]: exact where the sigmoid rounds
    to 1 (float32 from net about 17, float16 from about 8) or to 0, where the clamped log
    reported 87.3 (float32) or 9.7 (float16) whatever net was. ``jax.nn.softplus`` (a
    ``logaddexp``) keeps it stable for any net and its derivative s(net) - T exact at
    net = 0, where ``max(net, 0) + log1p(e^-|net|)`` gave autodiff -T (JAX's derivatives of
    max and |.| at 0), 0.5 off for a dead relu layer's examples."""
    return jnp.sum(jax.nn.softplus(net) - t * net)


def binary_cross_entropy_delta(o: Array, t: Array, act: Activation) -> Array:
    """Err_k = T_k - O_k (the sigmoid's O(1-O) cancels against the log)."""
    return t - o


def mse_delta_gn(o: Array, t: Array, act: Activation, r: Array) -> Array:
    """-J^T J r: the Gauss-Newton change of the mse delta (H_O = I)."""
    assert act.tangent is not None  # every table row has one
    return -act.backprop(o, act.tangent(o, r))


def mse_delta_r(o: Array, t: Array, act: Activation, r: Array) -> Array:
    """R{Err} = -J^T J r + R{J^T} (T - O): R{} of ``act.backprop(O, T - O)``."""
    assert act.second is not None  # jbpnn.hvp refuses a unit without one
    return mse_delta_gn(o, t, act, r) + act.second(o, r, t - o)


def cross_entropy_delta_r(o: Array, t: Array, act: Activation, r: Array) -> Array:
    """R{Err} = -sum(T) J r, ``J = diag(O) - O O^T``: R{} of ``T - O sum(T)``."""
    assert act.tangent is not None  # every table row has one
    return -act.tangent(o, r) * jnp.sum(t)


def binary_cross_entropy_delta_r(o: Array, t: Array, act: Activation, r: Array) -> Array:
    """R{Err} = -O (1 - O) r: R{} of ``T - O`` for a sigmoid output."""
    assert act.tangent is not None  # every table row has one
    return -act.tangent(o, r)


LOSSES: dict[str, Loss] = {
    "mse": Loss(mse_error, mse_delta, tuple(ACTIVATIONS), mse_delta_r, mse_delta_gn),
    "cross_entropy": Loss(
        cross_entropy_error,
        cross_entropy_delta,
        ("softmax",),
        cross_entropy_delta_r,
        cross_entropy_delta_r,
        cross_entropy_error_net,
    ),
    "binary_cross_entropy": Loss(
        binary_cross_entropy_error,
        binary_cross_entropy_delta,
        ("sigmoid",),
        binary_cross_entropy_delta_r,
        binary_cross_entropy_delta_r,
        binary_cross_entropy_error_net,
    ),
}

BUILTIN_LOSSES: tuple[str, ...] = tuple(LOSSES)
_BUILTIN_ENTRIES = dict(LOSSES)  # as defined here: is_builtin compares against them

# The built-in pairs. describe_valid_pairs and check_pair read LOSSES itself, so they
# also see the units and losses registered later (jbpnn.register_activation, register_loss).
VALID_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (loss, act) for loss, entry in LOSSES.items() for act in entry.output_activations
)

# Exact with ANY output activation: mse's delta is J^T (T - O), through the unit's own
# backprop, so a registered activation becomes a valid mse output unit.
ANY_OUTPUT_LOSSES: tuple[str, ...] = ("mse",)


def is_builtin(name: str) -> bool:
    """Whether the loss ``name`` still computes the built-in one's error and delta (a
    registration with ``replace=True`` may have put another under a built-in's name)."""
    entry = LOSSES.get(name)
    first = _BUILTIN_ENTRIES.get(name)
    return (
        entry is not None
        and first is not None
        and (entry.error, entry.delta) == (first.error, first.delta)
    )


def add_loss(name: str, loss: Loss, checked_on: str | None = None) -> None:
    """Put ``loss`` in the table under ``name``; :func:`jbpnn.register_loss` checks it first.

    ``checked_on``: the targets its check covered, ``"any"`` or ``"probabilities"`` (see
    ``CHECKED_TARGETS``), or None (not checked: no targets refused)."""
    LOSSES[name] = loss
    CHECKED_TARGETS.pop(name, None)
    if checked_on is not None:
        CHECKED_TARGETS[name] = checked_on


# The targets a registered loss's delta was checked on (jbpnn.register_loss): "any" (a
# regression loss, tasks="regression": either sign) or "probabilities" (values in [0, 1]);
# with a softmax output, rows in [0, 1] summing to 1 either way (the check normalises
# them). Training refuses targets outside them: a
# delta written for one-hot rows (Err = T - O with softmax) is wrong for other targets,
# silently (a relative error of 1.75 for multi-hot rows). Built-in losses are not here:
# theirs are exact for every target they accept.
CHECKED_TARGETS: dict[str, str] = {}
_ROW_SUM_TOL = 1e-3  # a softmax target row sums to 1: one-hot, soft or smoothed labels


def check_target_domain(name: str, loss: str, output: str, Y: Any) -> None:
    """Refuse targets outside those a registered loss's delta was checked on.

    Args:
        name: the targets' argument name, for the message.
        loss: the network's loss name; output: its output activation.
        Y: the targets, concrete (NumPy or a JAX array; traced ones pass).

    Raises:
        ValueError: naming ``name``, the loss, what it was checked on and what was found.
    """
    checked = CHECKED_TARGETS.get(loss)
    if checked is None or not is_concrete(Y):
        return
    softmax = output == "softmax"  # checked on normalised rows only, whatever the tasks
    if checked == "any" and not softmax:
        return
    a = np.asarray(Y, np.float64)
    if a.size == 0:
        return
    unchecked = "its delta is unchecked there"
    if softmax:
        advice = (
            "if its delta is right for such targets, check it on them (jbpnn.gradcheck("
            "params, X, Y)) and register it with check=False"
        )
    else:
        advice = (
            "register it with tasks='regression' to have it checked on targets of either "
            "sign, or with check=False once you have checked it on such targets yourself "
            "(jbpnn.gradcheck(params, X, Y))"
        )
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name}: the loss {loss!r} was checked (register_loss) on targets in [0, 1] only, "
            f"got values from {lo:g} to {hi:g}: {unchecked}; {advice}"
        )
    if softmax and a.ndim == 2:
        sums = np.sum(a, axis=1)
        worst = int(np.argmax(np.abs(sums - 1)))
        if abs(sums[worst] - 1) > _ROW_SUM_TOL:
            raise ValueError(
                f"{name}: the loss {loss!r} with softmax outputs was checked (register_loss) "
                f"on target rows that sum to 1 (probabilities), got row {worst} summing to "
                f"{sums[worst]:g}: {unchecked}; {advice}"
            )


# Their built-in deltas: only these are exact with any unit (a loss registered under the
# name with replace=True was checked with its own output units only).
_ANY_OUTPUT_DELTAS = {loss: LOSSES[loss].delta for loss in ANY_OUTPUT_LOSSES}


def add_output_activation(name: str) -> None:
    """Make the activation ``name`` a valid output unit of every loss in ANY_OUTPUT_LOSSES
    whose delta is still the built-in one."""
    for loss in ANY_OUTPUT_LOSSES:
        entry = LOSSES[loss]
        if entry.delta is not _ANY_OUTPUT_DELTAS[loss]:
            continue  # replaced by the user: valid with the units it was checked with only
        if name not in entry.output_activations:
            LOSSES[loss] = entry._replace(output_activations=(*entry.output_activations, name))


def describe_valid_pairs() -> str:
    """A one-line human-readable list of the valid (loss, output activation) pairs."""
    return "; ".join(
        f"{name} with {', '.join(entry.output_activations)}" for name, entry in LOSSES.items()
    )


def get_loss(name: str) -> Loss:
    """Look a loss up by name; raise ``ValueError`` listing valid names."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown loss {name!r}; expected one of {sorted(LOSSES)}. A loss of your own "
            "must be registered (jbpnn.register_loss) in this process first: import the "
            "module that registers it"
        ) from None


def check_pair(loss: str, output_activation: str) -> None:
    """Raise ``ValueError`` unless ``loss`` is exact with ``output_activation``."""
    entry = get_loss(loss)
    if output_activation not in entry.output_activations:
        raise ValueError(
            f"loss {loss!r} cannot be used with output activation {output_activation!r}: "
            f"its output delta would not be the gradient. Valid (loss, output activation) "
            f"pairs: {describe_valid_pairs()}"
        )

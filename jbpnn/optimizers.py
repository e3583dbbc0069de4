"""Optimizers: each an ``(init, update)`` pair of pure, jittable functions.

Every optimizer turns gradients ``g = dE/dtheta`` (from :func:`jbpnn.network.backward`,
the *minus* of the article's ``Err * O``) into *updates* that are ADDED to the
params::

    opt = momentum(0.1, m=0.9)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)          # p + u, leaf by leaf

The rules, with ``lr`` the learning rate at this step and ``m`` the momentum:

    sgd                  w += -lr g
    momentum classical   v = m v - lr g;          w += v
    momentum nesterov    v = m v - lr g;          w += m v - lr g     (v: the new velocity)
    momentum article     change = -g;             w += lr change + m prev_change;
                         prev_change = change     (ARTICLE.md section 4, item 4: the
                         article stores ``change = Err * O`` without lr, so the
                         momentum term is not scaled like the step it repeats)
    adam                 mu = b1 mu + (1-b1) g;   nu = b2 nu + (1-b2) g^2;   t = count + 1
                         w += -lr (mu / (1-b1^t)) / (sqrt(nu / (1-b2^t)) + eps)

L2 weight decay (``weight_decay > 0``) first replaces ``g`` by ``g + weight_decay * w``
for every parameter, biases included (the optimizers are generic over pytrees).

``lr`` is a number or a *schedule*, a function ``count -> lr`` of the number of
updates made so far (0 for the first): see :func:`constant`, :func:`step_decay`
and :func:`inverse_scaling`. Every hyperparameter may be a traced JAX scalar
(the code never branches on their values), so an optimizer can be built inside
a function that ``jax.vmap`` maps over learning rates or momenta.

This module imports only JAX and NumPy.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PyTree = Any
State = Any
Schedule = Callable[[Array], Array]
ScalarOrSchedule = Any  # float | jax.Array | Schedule


class Optimizer(NamedTuple):
    """A pair of pure functions.

    Attributes:
        init: ``params -> state``.
        update: ``(grads, state, params) -> (updates, new_state)``; ``updates``
            has the structure of ``params`` and is added to them by
            :func:`apply_updates`.
    """

    init: Callable[[PyTree], State]
    update: Callable[[PyTree, State, PyTree], tuple[PyTree, State]]


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates``, leaf by leaf."""
    return jax.tree.map(lambda p, u: p + u, params, updates)


# ---------------------------------------------------------------- schedules
def constant(lr: Any) -> Schedule:
    """The schedule ``lr_t = lr``."""
    return lambda count: lr


def step_decay(lr: Any, drop: Any = 0.5, every: int = 10) -> Schedule:
    """The schedule ``lr_t = lr * drop ** floor(t / every)``, ``t`` the update count."""
    _check_number("every", every, low=1, integer=True)
    return lambda count: lr * drop ** jnp.floor(_float(count) / every)


def inverse_scaling(lr: Any, power_t: Any = 0.5) -> Schedule:
    """scikit-learn's ``"invscaling"``: ``lr_t = lr / (t + 1) ** power_t``.

    ``t`` is the number of updates made so far (scikit-learn counts samples
    seen; with ``batch_size=1`` the two agree).
    """
    return lambda count: lr / (_float(count) + 1.0) ** power_t


SCHEDULES = {"constant": constant, "step_decay": step_decay, "inverse_scaling": inverse_scaling}


def _as_schedule(lr: ScalarOrSchedule) -> Schedule:
    if callable(lr):
        return lr
    _check_number("lr", lr, low=0.0)
    return constant(lr)


# ---------------------------------------------------------------- states
class SGDState(NamedTuple):
    """Plain gradient descent keeps only the step count."""

    count: Array


class MomentumState(NamedTuple):
    """Step count and velocity ``v`` (classical, nesterov) or ``prev_change`` (article)."""

    count: Array
    trace: PyTree


class AdamState(NamedTuple):
    """Step count, first moment ``mu`` and second moment ``nu``."""

    count: Array
    mu: PyTree
    nu: PyTree


# ---------------------------------------------------------------- optimizers
def sgd(lr: ScalarOrSchedule, weight_decay: Any = 0.0) -> Optimizer:
    """Gradient descent: ``w += -lr g`` (the article's ``w += l Err O`` without momentum).

    Args:
        lr: learning rate, a number or a schedule ``count -> lr``.
        weight_decay: L2 coefficient; ``g + weight_decay * w`` is used for ``g``.
    """
    lr_at = _as_schedule(lr)
    _check_number("weight_decay", weight_decay, low=0.0)

    def init(params: PyTree) -> SGDState:
        return SGDState(count=jnp.zeros((), jnp.int32))

    def update(grads: PyTree, state: SGDState, params: PyTree) -> tuple[PyTree, SGDState]:
        g = _decayed(grads, params, weight_decay)
        lr_t = lr_at(state.count)
        updates = jax.tree.map(lambda g: -lr_t * g, g)  # w += -lr g
        return _like(updates, params), SGDState(state.count + 1)

    return Optimizer(init, update)


def _classical(g: Array, v: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    v = m * v - lr * g  # v = m v - lr g
    return v, v  # w += v


def _nesterov(g: Array, v: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    v = m * v - lr * g  # v = m v - lr g
    return m * v - lr * g, v  # w += m v - lr g  (look-ahead form, as Sutskever et al. 2013)


def _article(g: Array, prev_change: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    change = -g  # the article's change = Err * O, without lr
    return lr * change + m * prev_change, change  # w += lr change + m prev_change


# variant -> (g, trace, lr, m) -> (update, new trace)
MOMENTUM_VARIANTS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "classical": _classical,
    "nesterov": _nesterov,
    "article": _article,
}


def momentum(
    lr: ScalarOrSchedule, m: Any = 0.9, variant: str = "classical", weight_decay: Any = 0.0
) -> Optimizer:
    """Gradient descent with momentum, in three named variants.

    ``classical`` (default)::

        v = m v - lr g;   w += v

    ``nesterov`` (the look-ahead form, with ``v`` the new velocity)::

        v = m v - lr g;   w += m v - lr g

    ``article``: the rule of the article's code (ARTICLE.md section 4, item 4)::

        change = -g  (= Err * O);   w += lr change + m prev_change;   prev_change = change

    There the momentum term repeats the previous *raw* change, not the previous
    step: with ``lr = 0.1, m = 0.1`` it weighs as much as the step itself.

    Args:
        lr: learning rate, a number or a schedule ``count -> lr``.
        m: momentum coefficient.
        variant: ``"classical"``, ``"nesterov"`` or ``"article"``.
        weight_decay: L2 coefficient; ``g + weight_decay * w`` is used for ``g``.

    Raises:
        ValueError: for an unknown variant, listing the valid ones.
    """
    if variant not in MOMENTUM_VARIANTS:
        raise ValueError(
            f"unknown momentum variant {variant!r}; expected one of {list(MOMENTUM_VARIANTS)}"
        )
    rule = MOMENTUM_VARIANTS[variant]
    lr_at = _as_schedule(lr)
    _check_number("m", m, low=0.0)
    _check_number("weight_decay", weight_decay, low=0.0)

    def init(params: PyTree) -> MomentumState:
        return MomentumState(count=jnp.zeros((), jnp.int32), trace=_zeros_like(params))

    def update(grads: PyTree, state: MomentumState, params: PyTree) -> tuple[PyTree, MomentumState]:
        g = _decayed(grads, params, weight_decay)
        lr_t = lr_at(state.count)
        pairs = jax.tree.map(lambda g, t: rule(g, t, lr_t, m), g, state.trace)
        updates, trace = _unzip(pairs, g)
        return _like(updates, params), MomentumState(state.count + 1, _like(trace, params))

    return Optimizer(init, update)


def adam(
    lr: ScalarOrSchedule = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
) -> Optimizer:
    """Adam (Kingma and Ba, 2015), with bias correction::

        mu = b1 mu + (1 - b1) g
        nu = b2 nu + (1 - b2) g^2
        w += -lr (mu / (1 - b1^t)) / (sqrt(nu / (1 - b2^t)) + eps),   t = count + 1

    Args:
        lr: learning rate, a number or a schedule ``count -> lr``.
        b1, b2: decay rates of the first and second moments, in ``[0, 1)``.
        eps: added to the denominator.
        weight_decay: L2 coefficient added to the gradient (not AdamW's decoupled decay).
    """
    lr_at = _as_schedule(lr)
    _check_number("b1", b1, low=0.0, high=1.0)
    _check_number("b2", b2, low=0.0, high=1.0)
    _check_number("eps", eps, low=0.0)
    _check_number("weight_decay", weight_decay, low=0.0)

    def init(params: PyTree) -> AdamState:
        return AdamState(
            count=jnp.zeros((), jnp.int32), mu=_zeros_like(params), nu=_zeros_like(params)
        )

    def update(grads: PyTree, state: AdamState, params: PyTree) -> tuple[PyTree, AdamState]:
        g = _decayed(grads, params, weight_decay)
        lr_t = lr_at(state.count)
        t = _float(state.count + 1)
        mu = jax.tree.map(lambda mu, g: b1 * mu + (1 - b1) * g, state.mu, g)
        nu = jax.tree.map(lambda nu, g: b2 * nu + (1 - b2) * g * g, state.nu, g)
        mu_hat_scale = 1.0 / (1.0 - b1**t)
        nu_hat_scale = 1.0 / (1.0 - b2**t)
        updates = jax.tree.map(
            lambda mu, nu: -lr_t * (mu * mu_hat_scale) / (jnp.sqrt(nu * nu_hat_scale) + eps),
            mu,
            nu,
        )
        new_state = AdamState(state.count + 1, _like(mu, params), _like(nu, params))
        return _like(updates, params), new_state

    return Optimizer(init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"sgd": sgd, "momentum": momentum, "adam": adam}


def get_optimizer(name: str, **hparams: Any) -> Optimizer:
    """Build an optimizer by name, e.g. ``get_optimizer("momentum", lr=0.1, m=0.9)``.

    Raises:
        ValueError: for an unknown name or a hyperparameter the optimizer does not take.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")
    factory = OPTIMIZERS[name]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(
            f"optimizer {name!r} does not take {unknown}; its hyperparameters are {accepted}"
        )
    return factory(**hparams)


# ---------------------------------------------------------------- helpers
def _float(count: Any) -> Array:
    # int32 counts would promote to float32; use the default float (float64 under x64).
    return jnp.asarray(count).astype(jnp.result_type(float))


def _decayed(grads: PyTree, params: PyTree, weight_decay: Any) -> PyTree:
    # L2 penalty weight_decay/2 |w|^2 adds weight_decay * w to the gradient.
    if isinstance(weight_decay, numbers.Real) and weight_decay == 0:
        return grads  # a plain 0: skip the extra read of every param per update
    return jax.tree.map(lambda g, p: g + weight_decay * p, grads, params)


def _zeros_like(params: PyTree) -> PyTree:
    return jax.tree.map(jnp.zeros_like, params)


def _like(tree: PyTree, params: PyTree) -> PyTree:
    # Keep every leaf in its param's dtype, even when a hyperparameter is a wider traced scalar.
    return jax.tree.map(lambda x, p: jnp.asarray(x, dtype=jnp.result_type(p)), tree, params)


def _unzip(pairs: PyTree, like: PyTree) -> tuple[PyTree, PyTree]:
    treedef = jax.tree.structure(like)
    leaves = treedef.flatten_up_to(pairs)
    firsts = treedef.unflatten([a for a, _ in leaves])
    seconds = treedef.unflatten([b for _, b in leaves])
    return firsts, seconds


def _check_number(
    name: str, value: Any, low: float, high: float | None = None, integer: bool = False
) -> None:
    """Check a hyperparameter given as a plain number; traced values pass through unchecked."""
    if isinstance(value, jax.Array):  # concrete or traced (tracers are jax.Array too)
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        else:
            raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not np.isfinite(value) or value < low or (high is not None and value >= high):
        upper = f" and below {high}" if high is not None else ""
        raise ValueError(f"{name} must be finite, at least {low}{upper}; got {value!r}")

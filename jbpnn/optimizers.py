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
scikit-learn's ``alpha`` is the other L2 convention: ``(alpha / 2) |W|^2 / n_batch``
added to the batch loss, on the weights only (leaves of two or more dimensions), so
``g_w + alpha * w / n_batch``; ``update`` then needs ``batch_size=n_batch``, which
:func:`jbpnn.training.train` passes.

``lr`` is a number or a *schedule* of the number of updates made so far (0 for the
first): :func:`constant`, :func:`step_decay` and :func:`inverse_scaling` (whose
parameters are hyperparameters like any other), or any function ``count -> lr``.

**Hyperparameters are data** (as optax's ``inject_hyperparams``). An
:class:`Optimizer` is its *kind* (the rule: ``sgd``, a momentum variant, ``adam``;
the schedule's kind; whether weight decay is on) plus initial hyperparameter
values. ``init`` puts the values into the state as arrays, ``state.hyperparams``
(``{"lr": ..., "m": ..., "weight_decay": ...}``), and ``update`` reads them from
there, never from the optimizer. ``opt.kind`` is the optimizer without its values;
kinds of two optimizers that differ only in values are equal, so a jitted loop
that takes the optimizer's ``kind`` as a static argument compiles once for every
learning rate; :func:`set_hyperparams` changes the values of a state (a new
learning rate mid-run, or one per network under ``jax.vmap``).
Weight decay is part of the kind: ``weight_decay=0`` (a plain zero) skips its
work, any other value (or an array) switches it on. A schedule given as a plain
function is part of the kind too (a new function compiles a new program).

Every hyperparameter may also be a traced JAX scalar (the code never branches on
their values), so an optimizer can be built inside a function that ``jax.vmap``
maps over learning rates or momenta.

This module imports only JAX, NumPy, :mod:`jbpnn.checks`, :mod:`jbpnn.lbfgs` and
:mod:`jbpnn.marquardt` (the L-BFGS and Levenberg-Marquardt / Bayesian-regularization
rules, written on flat vectors). One job, every optimizer's factory, the
:class:`Optimizer` they build and its registry: the factories read
best side by side, each with its rule in its docstring.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from jax.flatten_util import ravel_pytree

from jbpnn._slots import PicklesSlots
from jbpnn.checks import (
    INT32_MAX,
    check_number,
    host_or_device,
    host_value,
    is_concrete,
    scalar_value,
    to_device,
)
from jbpnn.lbfgs import HISTORY_KEYS as _LBFGS_HISTORY_KEYS
from jbpnn.lbfgs import LBFGSState
from jbpnn.lbfgs import evaluation as _lbfgs_evaluation
from jbpnn.lbfgs import init as _lbfgs_init
from jbpnn.lbfgs import stops as _lbfgs_stops
from jbpnn.lbfgs import update as _lbfgs_update
from jbpnn.marquardt import BRState, LMState, past_mu_max
from jbpnn.marquardt import br_init as _br_init
from jbpnn.marquardt import br_update as _br_update
from jbpnn.marquardt import lm_init as _lm_init
from jbpnn.marquardt import lm_update as _lm_update

__all__ = [
    "ADAM_VARIANTS",
    "MOMENTUM_VARIANTS",
    "OPTIMIZERS",
    "SCHEDULES",
    "AdamState",
    "BRState",
    "LBFGSState",
    "LMState",
    "Objective",
    "RpropState",
    "MomentumState",
    "Optimizer",
    "SGDState",
    "Schedule",
    "UNKNOWN_VARIANT",
    "adam",
    "apply_updates",
    "bayesian_regularization",
    "check_momentum_trace",
    "constant",
    "epoch_inverse_scaling",
    "get_optimizer",
    "inverse_scaling",
    "lbfgs",
    "levenberg_marquardt",
    "momentum",
    "momentum_variant_code",
    "rprop",
    "set_hyperparams",
    "sgd",
    "step_decay",
    "with_loss_penalty",
]

Array = jax.Array
PyTree = Any
State = Any


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates``, leaf by leaf, each in its param's dtype, as
    ``optax.apply_updates`` has it (bfloat16 params stay bfloat16 under float32 updates:
    they came back float32; a None param stays None)."""

    def step(p: Any, u: Any) -> Any:
        if p is None:
            return None
        return jnp.asarray(p + u).astype(jnp.asarray(p).dtype)  # w += update

    return jax.tree.map(step, params, updates, is_leaf=lambda x: x is None)


# ---------------------------------------------------------------- schedules
def _constant_lr(count: Array, hp: Mapping[str, Array]) -> Array:
    return hp["lr"]  # lr_t = lr


def _step_decay_lr(count: Array, hp: Mapping[str, Array]) -> Array:
    lr, drop, every = _wide(hp["lr"]), _wide(hp["drop"]), _wide(hp["every"])
    t = _float(count, lr)
    return _narrow(lr * drop ** jnp.floor(t / every), hp["lr"])  # lr drop^floor(t/every)


def _inverse_scaling_lr(count: Array, hp: Mapping[str, Array]) -> Array:
    lr, power_t = _wide(hp["lr"]), _wide(hp["power_t"])
    return _narrow(lr / (_float(count, lr) + 1.0) ** power_t, hp["lr"])  # lr / (t + 1)^power_t


def _epoch_inverse_scaling_lr(count: Array, hp: Mapping[str, Array]) -> Array:
    # t = samples seen at the start of this epoch (scikit-learn's MLP invscaling)
    lr, power_t = _wide(hp["lr"]), _wide(hp["power_t"])
    before, per_epoch = _wide(hp["updates_before"]), _wide(hp["updates_per_epoch"])
    epochs = jnp.floor((_float(count, lr) - before) / per_epoch)
    t = _wide(hp["samples_before"]) + epochs * _wide(hp["samples_per_epoch"])
    return _narrow(lr / (t + 1.0) ** power_t, hp["lr"])  # lr / (t + 1)^power_t


# kind -> (count, hyperparams) -> lr at that count
_SCHEDULE_RULES: dict[str, Callable[[Array, Mapping[str, Array]], Array]] = {
    "constant": _constant_lr,
    "step_decay": _step_decay_lr,
    "inverse_scaling": _inverse_scaling_lr,
    "epoch_inverse_scaling": _epoch_inverse_scaling_lr,
}


class Schedule(NamedTuple):
    """A learning-rate schedule: its kind (static) and its parameters (data).

    Calling it, ``schedule(count)``, gives the learning rate after ``count`` updates.
    Given as an optimizer's ``lr``, its parameters become hyperparameters of the
    optimizer state (``lr``, ``drop``, ``every``, ``power_t``).
    """

    kind: str
    params: tuple[tuple[str, Any], ...]

    def __call__(self, count: Any) -> Array:
        return _SCHEDULE_RULES[self.kind](jnp.asarray(count), dict(self.params))


def constant(lr: Any) -> Schedule:
    """The schedule ``lr_t = lr``."""
    _check_range("lr", lr)
    return Schedule("constant", (("lr", lr),))


def step_decay(lr: Any, drop: Any = 0.5, every: Any = 10) -> Schedule:
    """The schedule ``lr_t = lr * drop ** floor(t / every)``, ``t`` the update count."""
    _check_range("lr", lr)
    _check_range("drop", drop)
    _check_range("every", every)
    return Schedule("step_decay", (("lr", lr), ("drop", drop), ("every", every)))


def inverse_scaling(lr: Any, power_t: Any = 0.5) -> Schedule:
    """scikit-learn's ``"invscaling"``: ``lr_t = lr / (t + 1) ** power_t``.

    ``t`` is the number of updates made so far (scikit-learn counts samples
    seen; with ``batch_size=1`` the two agree).
    """
    _check_range("lr", lr)
    _check_range("power_t", power_t)
    return Schedule("inverse_scaling", (("lr", lr), ("power_t", power_t)))


def epoch_inverse_scaling(
    lr: Any,
    power_t: Any,
    samples_per_epoch: Any,
    updates_per_epoch: Any,
    samples_before: Any = 0,
    updates_before: Any = 0,
) -> Schedule:
    """scikit-learn's ``MLPClassifier(learning_rate="invscaling")`` exactly:
    ``lr_t = lr / (t + 1) ** power_t`` with ``t`` the SAMPLES seen before this epoch,
    so the rate changes once per epoch (its ``SGDOptimizer.iteration_ends(t_)``)::

        t = samples_before + floor((count - updates_before) / updates_per_epoch) * samples_per_epoch

    ``count`` is the number of updates made; ``samples_before`` / ``updates_before``
    carry ``t`` and the count of the calls before (a resumed run), as data.
    """
    _check_range("lr", lr)
    _check_range("power_t", power_t)
    _check_range("samples_per_epoch", samples_per_epoch)
    _check_range("updates_per_epoch", updates_per_epoch)
    _check_range("samples_before", samples_before)
    _check_range("updates_before", updates_before)
    params: tuple[tuple[str, Any], ...]
    params = (("lr", lr), ("power_t", power_t), ("samples_per_epoch", samples_per_epoch))
    params += (("updates_per_epoch", updates_per_epoch), ("samples_before", samples_before))
    return Schedule("epoch_inverse_scaling", (*params, ("updates_before", updates_before)))


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant,
    "step_decay": step_decay,
    "inverse_scaling": inverse_scaling,
    "epoch_inverse_scaling": epoch_inverse_scaling,
}


def _lr_spec(lr: Any) -> tuple[Any, dict[str, Any]]:
    """``(static schedule, hyperparameters)`` for an optimizer's ``lr`` argument.

    The static part is a schedule kind (a string), or the user's own function.
    """
    if isinstance(lr, Schedule):
        return lr.kind, dict(lr.params)
    if callable(lr):
        return lr, {}
    _check_range("lr", lr)
    return "constant", {"lr": lr}


def _lr_at(schedule: Any, count: Array, hp: Mapping[str, Array]) -> Array:
    if isinstance(schedule, str):
        return _SCHEDULE_RULES[schedule](count, hp)
    return schedule(count)  # the user's own function count -> lr


# ---------------------------------------------------------------- states
class SGDState(NamedTuple):
    """Plain gradient descent keeps the step count and its hyperparameters."""

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]


class MomentumState(NamedTuple):
    """Step count, hyperparameters, and velocity ``v`` (classical, nesterov) or
    ``prev_change`` (article).

    ``variant`` records which variant made the trace (int32, its index in
    :data:`MOMENTUM_VARIANTS`; :data:`UNKNOWN_VARIANT`, -1, in a state pickled or saved
    before jbpnn recorded it): the two traces mean different quantities (``v`` includes
    ``lr``, the article's raw change does not), so a resume with a variant of the other
    trace is refused (:func:`check_momentum_trace`).
    """

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    trace: PyTree
    # last, with a default: a MomentumState pickled before it existed unpickles
    variant: Array = np.int32(-1)  # type: ignore[assignment]


class AdamState(NamedTuple):
    """Step count, hyperparameters, first moment ``mu`` and second moment ``nu``."""

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    mu: PyTree
    nu: PyTree


class RpropState(NamedTuple):
    """Step count, hyperparameters, every weight's own step size ``delta`` and the
    previous gradient (its sign decides whether ``delta`` grows or shrinks)."""

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    delta: PyTree
    prev_grad: PyTree


class Objective(NamedTuple):
    """What a full-batch optimizer may ask of the training data; the training loop
    builds it for each update (``Optimizer.update(..., objective=...)``).

    Attributes:
        loss: ``params -> E``, the (weighted) mean loss over the whole training set.
        normal_equations: ``params -> (J^T J, J^T e, e^T e)`` of the residuals
            ``e = O - T`` (weighted by ``sqrt(sample_weight)``), the columns in
            :func:`jax.flatten_util.ravel_pytree` order (see :mod:`jbpnn.jacobian`).
        loss_and_grad: ``params -> (E, dE/dtheta)`` over the whole training set: the
            training loop's ``grad_fn`` (the hand-derived gradient by default); what
            L-BFGS's line search evaluates at every trial step.
        start: ``loss_and_grad`` at the params of this update, as the loop has it
            (L-BFGS starts from it), or None.
        penalty: ``params -> (E_penalty, its gradient)``, the L2 term ``loss_and_grad``
            leaves out (``alpha``'s, set by :meth:`Optimizer.update`), or None.
        data: the training data's :func:`jbpnn.lbfgs.data_fingerprint`, or None: L-BFGS
            keeps it with the ``(E, g)`` it carries to the next iteration, which a run
            resumed on other data must not reuse.
    """

    loss: Callable[[PyTree], Array]
    normal_equations: Callable[[PyTree], Any]
    loss_and_grad: Callable[[PyTree], tuple[Array, PyTree]] | None = None
    start: tuple[Array, PyTree] | None = None
    penalty: Callable[[PyTree], tuple[Array, PyTree]] | None = None
    data: Array | None = None


# ---------------------------------------------------------------- the rules
def _classical(g: Array, v: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    v = m * v - lr * g  # v = m v - lr g
    return v, v  # w += v


def _nesterov(g: Array, v: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    v = m * v - lr * g  # v = m v - lr g
    return m * v - lr * g, v  # w += m v - lr g  (look-ahead form, as Sutskever et al. 2013)


def _article(g: Array, prev_change: Array, lr: Array, m: Array) -> tuple[Array, Array]:
    change = -g  # the article's change = Err * O, without lr
    return lr * change + m * prev_change, change  # w += lr change + m prev_change


# variant -> (g, trace, lr, m) -> (update, new trace); a state records a variant by its
# index here (MomentumState.variant, saved in checkpoints): add new ones at the end
MOMENTUM_VARIANTS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "classical": _classical,
    "nesterov": _nesterov,
    "article": _article,
}
UNKNOWN_VARIANT = -1  # MomentumState.variant of a state made before jbpnn recorded it
# what each variant's trace holds: variants of one meaning may take over each other's state
_MOMENTUM_TRACES = {
    "classical": "the velocity v = m v - lr g (lr included)",
    "nesterov": "the velocity v = m v - lr g (lr included)",
    "article": "the raw change -g (lr not included)",
}


def momentum_variant_code(variant: str) -> int:
    """``MomentumState.variant`` of ``variant``: its index in :data:`MOMENTUM_VARIANTS`."""
    return list(MOMENTUM_VARIANTS).index(variant)


def check_momentum_trace(recorded: Any, variant: str, what: str = "this state") -> None:
    """Refuse going on with momentum ``variant`` from a state whose trace another variant
    made, of another meaning (``recorded``: ``MomentumState.variant``, one code or one a
    network): classical and Nesterov keep the velocity ``v = m v - lr g``, the article's
    variant the raw change ``-g``; one read as the other is a silently wrong step.
    Classical and Nesterov take over each other's state; an unknown code (-1) passes.

    Raises:
        ValueError: naming both variants, what each trace holds and what to do instead.
    """
    names = list(MOMENTUM_VARIANTS)
    codes = np.unique(np.asarray(recorded))
    known = [names[int(c)] for c in codes if 0 <= c < len(names)]
    other = [v for v in known if _MOMENTUM_TRACES[v] != _MOMENTUM_TRACES[variant]]
    if other:
        was = other[0]
        same = " or ".join(repr(v) for v in names if _MOMENTUM_TRACES[v] == _MOMENTUM_TRACES[was])
        raise ValueError(
            f"{what} was trained with momentum variant {was!r}, whose trace holds "
            f"{_MOMENTUM_TRACES[was]}; variant {variant!r} keeps {_MOMENTUM_TRACES[variant]} "
            f"there, so it would read the one as the other. Resume with variant={same}, or "
            "start a new run from its params (train(state.params, ...)) to change the variant"
        )


def _sgd_init(params: PyTree, hp: dict[str, Array]) -> SGDState:
    return SGDState(_count0(), hp)


def _sgd_update(grads, state: SGDState, params, lr_t, options) -> tuple[PyTree, SGDState]:
    updates = jax.tree.map(lambda g: -lr_t * g, grads)  # w += -lr g
    return updates, SGDState(_next(state.count), state.hyperparams)


def _momentum_init(
    params: PyTree, hp: dict[str, Array], variant: str = "classical"
) -> MomentumState:
    code = to_device(np.asarray(momentum_variant_code(variant), np.int32))
    return MomentumState(_count0(), hp, _zeros_like(params), code)


def _momentum_update(grads, state: MomentumState, params, lr_t, options):
    rule = MOMENTUM_VARIANTS[options["variant"]]
    m = state.hyperparams["m"]
    pairs = jax.tree.map(lambda g, t: rule(g, t, lr_t, m), grads, state.trace)
    updates, trace = _unzip(pairs, grads)
    # the recorded variant goes on as it came (resume_state sets it to the run's)
    return updates, state._replace(count=_next(state.count), trace=_like(trace, params))


def _adam_init(params: PyTree, hp: dict[str, Array]) -> AdamState:
    return AdamState(_count0(), hp, _zeros_like(params), _zeros_like(params))


# where Adam's eps sits (adam's variant): on sqrt(nu_hat), or on sqrt(nu) (scikit-learn's)
ADAM_VARIANTS = ("corrected", "efficient")


def _adam_update(grads, state: AdamState, params, lr_t, options):
    hp = state.hyperparams
    b1, b2, eps = hp["b1"], hp["b2"], hp["eps"]
    t = _float(_next(state.count), b1)
    mu = jax.tree.map(
        lambda mu, g: b1 * mu + (1 - b1) * g, state.mu, grads
    )  # mu = b1 mu + (1-b1) g
    nu = jax.tree.map(
        lambda nu, g: b2 * nu + (1 - b2) * g * g, state.nu, grads
    )  # nu = b2 nu + (1-b2) g^2
    if options.get("variant") == "efficient":  # w += -lr sqrt(1-b2^t)/(1-b1^t) mu/(sqrt(nu)+eps)
        step = lr_t * jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        updates = jax.tree.map(lambda mu, nu: -step * mu / (jnp.sqrt(nu) + eps), mu, nu)
    else:
        mu_hat_scale = 1.0 / (1.0 - b1**t)
        nu_hat_scale = 1.0 / (1.0 - b2**t)
        updates = jax.tree.map(  # w += -lr mu_hat / (sqrt(nu_hat) + eps)
            lambda mu, nu: -lr_t * (mu * mu_hat_scale) / (jnp.sqrt(nu * nu_hat_scale) + eps),
            mu,
            nu,
        )
    return updates, AdamState(_next(state.count), hp, _like(mu, params), _like(nu, params))


def _rprop_init(params: PyTree, hp: dict[str, Array]) -> RpropState:
    delta = jax.tree.map(lambda z: z + hp["delta0"].astype(z.dtype), _zeros_like(params))
    return RpropState(_count0(), hp, delta, _zeros_like(params))


def _rprop_update(grads, state: RpropState, params, lr_t, options, objective=None):
    hp = state.hyperparams
    first = state.count == 0  # MATLAB's trainrp: g_prev = g before the first step

    def one(g: Array, g_prev: Array, delta: Array) -> tuple[Array, Array]:
        g_prev = jnp.where(first, g, g_prev)
        same = g * g_prev  # > 0: the slope kept its sign; < 0: a minimum was jumped over
        delta = jnp.where(same > 0, delta * hp["delta_inc"], delta)  # delta *= delta_inc
        delta = jnp.where(same < 0, delta * hp["delta_dec"], delta)  # delta *= delta_dec
        delta = jnp.minimum(delta, hp["delta_max"])
        return -jnp.sign(g) * delta, delta  # w += -sign(g) delta

    pairs = jax.tree.map(one, grads, state.prev_grad, state.delta)
    updates, delta = _unzip(pairs, grads)
    return updates, RpropState(_next(state.count), hp, _like(delta, params), _like(grads, params))


# name -> (init(params, hyperparams), update(grads, state, params, lr_t, options[, objective]))
_RULES: dict[str, tuple[Callable, Callable]] = {
    "sgd": (_sgd_init, _sgd_update),
    "momentum": (_momentum_init, _momentum_update),
    "adam": (_adam_init, _adam_update),
    "rprop": (_rprop_init, _rprop_update),
    "lm": (_lm_init, _lm_update),
    "br": (_br_init, _br_update),
    "lbfgs": (_lbfgs_init, _lbfgs_update),
}
_FULL_BATCH = ("rprop", "lm", "br", "lbfgs")  # one update per epoch over the whole training set
_NEEDS_OBJECTIVE = ("lm", "br", "lbfgs")  # evaluate the loss (and J^T J, or g) themselves
_GRADIENT_ONLY = ("lbfgs",)  # of the objective, only the loss and gradient: any loss
# static options an init needs: its arrays' shapes (lbfgs), what it records (momentum)
_INIT_OPTIONS = {"lbfgs": ("history",), "momentum": ("variant",)}
# what lm and br add to the history each epoch (Optimizer.history_keys)
_HISTORY_KEYS = {
    "lm": ("mu", "grad_norm"),
    "br": ("mu", "grad_norm", "gamma"),
    "lbfgs": _LBFGS_HISTORY_KEYS,
}


# ---------------------------------------------------------------- the optimizer
class Optimizer(PicklesSlots):
    """An optimizer: its kind (static) and its initial hyperparameter values (data).

    Use it as an ``(init, update)`` pair of pure functions::

        state = opt.init(params)                          # hyperparams go into the state
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)

    Its *kind* (:attr:`kind`) is the rule (``name``), its static ``options``
    (momentum variant, schedule kind, weight decay on or off) and the names of
    its hyperparameters. :func:`jbpnn.training.train` compiles for the kind only,
    so a new value never causes a recompilation. Two optimizers are equal when
    their kinds and values are.

    Attributes:
        name: a key of :data:`OPTIMIZERS`: ``"sgd"``, ``"momentum"``, ``"adam"``, or a
            full-batch one (:attr:`full_batch`): ``"rprop"``, ``"lm"``, ``"br"``, ``"lbfgs"``.
        options: static settings, e.g. ``{"variant": "nesterov", "schedule": "constant",
            "weight_decay": False}``.
        hyperparams: initial values, e.g. ``{"lr": 0.1, "m": 0.9}``; schedule
            parameters (``drop``, ``every``, ``power_t``) and ``weight_decay`` included.
    """

    __slots__ = ("name", "options", "hyperparams")

    def __init__(self, name: str, options: Mapping[str, Any], hyperparams: Mapping[str, Any]):
        if name not in _RULES:
            raise ValueError(f"unknown optimizer {name!r}; expected one of {list(_RULES)}")
        self.name = name
        self.options = dict(options)
        self.hyperparams = dict(hyperparams)

    def _kind_key(self) -> tuple:
        return (self.name, tuple(sorted(self.options.items(), key=str)), tuple(self.hyperparams))

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Optimizer) or self._kind_key() != other._kind_key():
            return False
        return all(_same_value(v, other.hyperparams[k]) for k, v in self.hyperparams.items())

    def __hash__(self) -> int:
        return hash(self._kind_key())  # equal optimizers have equal kinds

    @property
    def kind(self) -> Optimizer:
        """This optimizer without its values: what a compiled loop may take as static.

        Kinds of two optimizers that differ only in values are equal, so a program
        compiled for one serves the other; the values come from the state
        (``state.hyperparams``). A kind can ``update`` but not ``init``.
        """
        return Optimizer(self.name, self.options, dict.fromkeys(self.hyperparams))

    @property
    def is_kind(self) -> bool:
        return any(v is None for v in self.hyperparams.values())

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={_show(v)}" for k, v in self.hyperparams.items())
        options = "".join(
            f", {k}={v!r}" for k, v in self.options.items() if k in ("variant", "history")
        )
        schedule = self.options.get("schedule")
        if schedule not in ("constant", None):
            name = schedule if isinstance(schedule, str) else getattr(schedule, "__name__", "fn")
            options += f", schedule={name}"
        return f"{self.name}({(values + options).removeprefix(', ')})"

    def replace(self, **hyperparams: Any) -> Optimizer:
        """The same kind with other initial values, e.g. ``opt.replace(lr=0.05)``."""
        unknown = sorted(set(hyperparams) - set(self.hyperparams))
        if unknown:
            raise ValueError(
                f"{self.name} has no hyperparameters {unknown}; its hyperparameters are "
                f"{list(self.hyperparams)}"
            )
        check_hyperparam_values(hyperparams)
        merged = {**self.hyperparams, **hyperparams}
        if self.name in ("lm", "br"):
            _check_mu_below_max(merged)
        c1, c2 = _number_or_none(merged.get("c1")), _number_or_none(merged.get("c2"))
        if c1 is not None and c2 is not None and not 0 < c1 < c2:
            raise ValueError(f"the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
        return Optimizer(self.name, self.options, merged)

    def init(self, params: PyTree) -> State:
        """``params -> state``: zero moments, count 0, the hyperparameters as arrays.

        The hyperparameters take the dtype of the params' first floating leaf, as
        Python numbers would (a float32 network keeps float32 arithmetic).
        """
        if self.is_kind:
            raise ValueError(
                f"{self!r} is an optimizer kind without values; init the optimizer it came from"
            )
        dtype = _float_dtype(params)
        hp = cast_hyperparams(self.name, self.hyperparams, dtype)
        static = {k: self.options[k] for k in _INIT_OPTIONS.get(self.name, ()) if k in self.options}
        return _RULES[self.name][0](params, hp, **static)

    @property
    def needs_batch_size(self) -> bool:
        """True when ``update`` needs ``batch_size`` (scikit-learn's ``alpha`` is on)."""
        return bool(self.options.get("alpha"))

    def update(
        self,
        grads: PyTree,
        state: State,
        params: PyTree,
        *,
        batch_size: Any = None,
        lr_scale: Any = None,
        objective: Objective | None = None,
    ) -> tuple[PyTree, State]:
        """``(grads, state, params) -> (updates, new_state)``; ``params + updates`` is the step.

        ``batch_size``: the number (total sample weight) of examples the gradient
        averages over; needed only with ``alpha`` (:attr:`needs_batch_size`).
        ``lr_scale``: this step uses ``lr * lr_scale`` (the plateau rule's reductions,
        ``TrainState.lr_scale``); the state keeps the ``lr`` it was given.
        ``objective``: the full training set's loss and normal equations, for an
        optimizer that :attr:`needs_objective` (``lm``).
        """
        hp = getattr(state, "hyperparams", None)
        if not isinstance(hp, dict) or set(hp) != set(self.hyperparams):
            raise ValueError(  # another kind's state: a bare KeyError 'drop' or 'b1' inside
                f"{self!r} cannot update a state of another optimizer kind: it holds "
                f"{sorted(hp) if isinstance(hp, dict) else type(state).__name__}, this "
                f"optimizer {sorted(self.hyperparams)}; update the state its own init made"
            )
        if lr_scale is not None:
            if "lr" not in hp:
                raise ValueError(
                    f"{self!r} has no learning rate lr for lr_scale to scale (rprop, lm, br, "
                    "lbfgs and a schedule of your own have none): leave lr_scale out"
                )
            hp = {**hp, "lr": hp["lr"] * jnp.asarray(lr_scale).astype(hp["lr"].dtype)}
        if self.options.get("weight_decay"):
            # L2 penalty weight_decay/2 |w|^2 adds weight_decay * w to the gradient.
            grads = jax.tree.map(lambda g, p: g + hp["weight_decay"] * p, grads, params)
        if self.options.get("alpha"):
            if batch_size is None:
                raise ValueError(f"{self!r} has alpha: pass update(..., batch_size=examples)")
            if is_concrete(batch_size) and np.any(np.asarray(batch_size) <= 0):
                raise ValueError(  # alpha w / 0: an inf update (train skips such batches)
                    f"{self!r} has alpha, which divides by batch_size: it must be > 0 (the "
                    f"examples, or their total sample weight, of the batch), got {batch_size!r}"
                )
            # scikit-learn's alpha: (alpha/2) |W|^2 / n_batch on weights only (leaves of
            # 2 or more dimensions; biases are left out): g_w += alpha w / n_batch.
            grads = jax.tree.map(
                lambda g, p: g + p * (hp["alpha"] / batch_size) if jnp.ndim(p) >= 2 else g,
                grads,
                params,
            )
            if objective is not None:  # what a full-batch rule evaluates carries it too
                objective = _with_alpha(objective, hp["alpha"], batch_size)
        schedule = self.options.get("schedule")
        lr_t = None if schedule is None else _lr_at(schedule, state.count, hp)
        rule = _RULES[self.name][1]
        if self.name in _NEEDS_OBJECTIVE:
            updates, state = rule(grads, state, params, lr_t, self.options, objective)
        else:
            updates, state = rule(grads, state, params, lr_t, self.options)
        return _like(updates, params), state

    @property
    def reports_penalty(self) -> bool:
        """True when the training loss carries an L2 term (:func:`with_loss_penalty`)."""
        return bool(self.options.get("loss_alpha"))

    def loss_penalty(self, squares: Array, state: State, batch_size: Any) -> Array:
        """``(loss_alpha / 2) |W|^2 / batch_size`` from ``squares = weight_squares(params)``
        (the training loop carries it from one update to the next): what
        :func:`with_loss_penalty` adds to a batch's loss."""
        return state.hyperparams["loss_alpha"] / (2 * batch_size) * squares

    @property
    def full_batch(self) -> bool:
        """True for a full-batch optimizer (``rprop``, ``lm``, ``br``): ``train`` then needs
        ``batch_size=None``."""
        return self.name in _FULL_BATCH

    @property
    def needs_objective(self) -> bool:
        """True when ``update`` needs ``objective=`` (the loss and the normal equations)."""
        return self.name in _NEEDS_OBJECTIVE

    @property
    def carries_evaluation(self) -> bool:
        """True when the state keeps ``(E, g)`` at the params its last update ended at
        (``lbfgs``: its line search's), which :meth:`evaluation` gives back."""
        return self.name == "lbfgs"

    def evaluation(
        self,
        state: State,
        params: PyTree,
        evaluate: Callable[[], tuple[Array, PyTree]],
        data: Array | None = None,
    ) -> tuple[Array, PyTree]:
        """``(E, g)`` at ``params``, as the training loop asks for them before each update:
        the state's carried ones where they are for these params and for the data whose
        fingerprint is ``data`` (:func:`jbpnn.lbfgs.evaluation`), else ``evaluate()``
        (every other optimizer)."""
        if not self.carries_evaluation:
            return evaluate()
        return _lbfgs_evaluation(state, params, evaluate, data)

    @property
    def needs_normal_equations(self) -> bool:
        """True when the objective's ``J^T J`` is used (``lm``, ``br``): only losses of
        residuals, and ``P x P`` memory; ``lbfgs`` uses only the loss and gradient."""
        return self.needs_objective and self.name not in _GRADIENT_ONLY

    @property
    def history_keys(self) -> tuple[str, ...]:
        """What the optimizer adds to a run's history each epoch (:meth:`record`)."""
        return _HISTORY_KEYS.get(self.name, ())

    def record(self, state: State) -> dict[str, Array]:
        """This epoch's entries of :attr:`history_keys`, read from the state."""
        return {k: getattr(state, k) for k in self.history_keys}

    def stops(self, state: State) -> list[tuple[Array, str]]:
        """The optimizer's own stop rules: ``(fired, reason)`` pairs (lm, br: MATLAB's
        ``min_grad`` and ``mu_max``; rprop: ``min_grad`` when on)."""
        if self.name == "lbfgs":  # scipy L-BFGS-B's: gtol, ftol, max_fun, a failed search
            return _lbfgs_stops(state)
        if self.name == "rprop" and self.options.get("min_grad"):
            # prev_grad: the gradient at the epoch's start, as lm's grad_norm
            norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(state.prev_grad)))
            return [(norm < state.hyperparams["min_grad"], "min_grad_reached")]
        if self.name not in ("lm", "br"):
            return []
        hp = state.hyperparams
        return [
            (state.grad_norm < hp["min_grad"], "min_grad_reached"),
            (past_mu_max(state.mu, hp["mu_max"]), "mu_max_reached"),
        ]


def _build(name: str, lr: Any, weight_decay: Any, alpha: Any, options: dict, hp: dict) -> Optimizer:
    schedule, lr_hp = _lr_spec(lr)
    _check_range("weight_decay", weight_decay)
    _check_range("alpha", alpha)
    decay, l2 = _is_on(weight_decay), _is_on(alpha)
    hp = {**lr_hp, **hp}
    if decay:
        hp["weight_decay"] = weight_decay
    if l2:
        hp["alpha"] = alpha
    options = {**options, "schedule": schedule, "weight_decay": decay, "alpha": l2}
    return Optimizer(name, options, hp)


def _is_on(value: Any) -> bool:
    """A penalty is off only for a plain zero (an array, maybe traced, switches it on)."""
    return not (isinstance(value, numbers.Real) and value == 0)


def sgd(lr: Any, weight_decay: Any = 0.0, alpha: Any = 0.0) -> Optimizer:
    """Gradient descent: ``w += -lr g`` (the article's ``w += l Err O`` without momentum).

    Args:
        lr: learning rate: a number, a :class:`Schedule`, or a function ``count -> lr``.
        weight_decay: L2 coefficient; ``g + weight_decay * w`` is used for ``g``
            (every param, biases included).
        alpha: scikit-learn's L2 penalty ``(alpha / 2) |W|^2 / n_batch`` on the
            weights only: ``g_w + alpha * w / n_batch``, biases untouched.
    """
    return _build("sgd", lr, weight_decay, alpha, {}, {})


def momentum(
    lr: Any, m: Any = 0.9, variant: str = "classical", weight_decay: Any = 0.0, alpha: Any = 0.0
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
        lr: learning rate: a number, a :class:`Schedule`, or a function ``count -> lr``.
        m: momentum coefficient, in ``[0, 1)``.
        variant: ``"classical"``, ``"nesterov"`` or ``"article"`` (static: part of the kind).
        weight_decay: L2 coefficient; ``g + weight_decay * w`` is used for ``g``.
        alpha: scikit-learn's L2 on the weights only, per batch (see :func:`sgd`).

    Raises:
        ValueError: for an unknown variant, listing the valid ones, or a bad value.
    """
    if not isinstance(variant, str) or variant not in MOMENTUM_VARIANTS:  # a list: unhashable
        raise ValueError(
            f"unknown momentum variant {variant!r}; expected one of {list(MOMENTUM_VARIANTS)}"
        )
    _check_range("m", m)
    return _build("momentum", lr, weight_decay, alpha, {"variant": variant}, {"m": m})


def adam(
    lr: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    alpha: Any = 0.0,
    variant: str = "corrected",
) -> Optimizer:
    """Adam (Kingma and Ba, 2015), with bias correction::

        mu = b1 mu + (1 - b1) g
        nu = b2 nu + (1 - b2) g^2
        w += -lr (mu / (1 - b1^t)) / (sqrt(nu / (1 - b2^t)) + eps),   t = count + 1

    That is ``variant="corrected"`` (their Algorithm 1: ``eps`` added to the corrected
    ``sqrt(nu_hat)``, as optax and PyTorch). ``variant="efficient"`` is the order of
    computation of their section 2, scikit-learn's (and TensorFlow 1's)::

        w += -lr (sqrt(1 - b2^t) / (1 - b1^t)) mu / (sqrt(nu) + eps)

    the same step but for where ``eps`` sits: it weighs ``1 / sqrt(1 - b2^t)`` times more
    (about 30x at ``t = 1``), which moves weights whose gradients are tiny (a pixel that is
    almost always 0) differently.

    Args:
        lr: learning rate: a number, a :class:`Schedule`, or a function ``count -> lr``.
        b1, b2: decay rates of the first and second moments, in ``[0, 1)``.
        eps: added to the denominator, > 0.
        weight_decay: L2 coefficient added to the gradient (not AdamW's decoupled decay).
        alpha: scikit-learn's L2 on the weights only, per batch (see :func:`sgd`).
        variant: ``"corrected"`` (default) or ``"efficient"`` (static: part of the kind).
    """
    if not isinstance(variant, str) or variant not in ADAM_VARIANTS:
        raise ValueError(f"unknown adam variant {variant!r}; expected one of {list(ADAM_VARIANTS)}")
    _check_range("b1", b1)
    _check_range("b2", b2)
    _check_range("eps", eps)  # > 0: 0 / (sqrt(0) + 0) for a zero gradient
    # the default adds no option, so that the kind (and a saved optimizer) stays as it was
    options = {} if variant == "corrected" else {"variant": variant}
    return _build("adam", lr, weight_decay, alpha, options, {"b1": b1, "b2": b2, "eps": eps})


def rprop(
    delta0: Any = 0.07,
    delta_inc: Any = 1.2,
    delta_dec: Any = 0.5,
    delta_max: Any = 50.0,
    min_grad: Any = 0.0,
) -> Optimizer:
    """Resilient back-propagation (Riedmiller and Braun 1993; MATLAB's ``trainrp``),
    full batch: every weight has its own step ``delta``, and only the gradient's
    SIGN is used::

        delta <- delta * delta_inc   where g g_prev > 0  (same slope: go faster)
        delta <- delta * delta_dec   where g g_prev < 0  (jumped over a minimum)
        delta <- min(delta, delta_max);    w += -sign(g) delta

    Defaults are MATLAB's ``net.trainParam`` (``delta0``, ``delt_inc``,
    ``delt_dec``, ``deltamax``). One update per epoch: ``train(batch_size=None)``.
    As in ``trainrp``, the first gradient counts as its own predecessor, so the first
    step is ``delta0 * delta_inc`` where ``g != 0``.

    ``min_grad`` (off at 0, the default; MATLAB's ``trainrp`` has 1e-5 on its mse, which
    :func:`jbpnn.matlab.feedforwardnet` applies): stop (``"min_grad_reached"``) after an
    epoch whose starting gradient has ``|dE/dtheta| < min_grad``, E the mean loss, as
    ``lm``'s rule.
    """
    _check_range("delta0", delta0)
    _check_range("delta_inc", delta_inc)
    _check_range("delta_dec", delta_dec)
    _check_range("delta_max", delta_max)
    _check_range("min_grad", min_grad)
    hp = {"delta0": delta0, "delta_inc": delta_inc, "delta_dec": delta_dec, "delta_max": delta_max}
    if not _is_on(min_grad):  # off: the state of every rprop run before the rule
        return Optimizer("rprop", {}, hp)
    return Optimizer("rprop", {"min_grad": True}, {**hp, "min_grad": min_grad})


def levenberg_marquardt(
    mu: Any = 1e-3,
    mu_dec: Any = 0.1,
    mu_inc: Any = 10.0,
    mu_max: Any = 1e10,
    min_grad: Any = 1e-7,
    alpha: Any = 0.0,
) -> Optimizer:
    """Levenberg-Marquardt (Hagan and Menhaj 1994; MATLAB's ``trainlm``), full batch,
    for the ``mse`` loss: each epoch solves ``(J^T J + mu I) dx = -J^T e`` with the
    hand-derived Jacobian of the residuals ``e = O - T`` (:mod:`jbpnn.jacobian`),
    keeps the step only if the loss falls (``mu <- mu mu_dec``), else raises ``mu``
    (``mu <- mu mu_inc``) and solves again, in the compiled program.

    Stops (besides :mod:`jbpnn.stopping`'s rules, ``tol`` being MATLAB's ``goal`` and
    ``n_iter_no_change`` its ``max_fail``): ``"min_grad_reached"`` when
    ``|dE/dtheta| < min_grad`` (E the mean loss), ``"mu_max_reached"`` when no step
    is accepted below ``mu_max``. The history gets ``mu`` and ``grad_norm``.
    Memory: ``J^T J`` is ``P x P`` (P weights and biases).

    ``alpha``: scikit-learn's L2 penalty ``(alpha / 2) |W|^2 / n`` on the weights only
    (``n`` the total sample weight), added to the loss each step must lower and to the
    normal equations: ``(J^T J + alpha D + mu I) dx = -(J^T e + alpha D x)``, ``D`` 1 on
    the weights' entries, 0 on the biases'.
    """
    hp = _marquardt_hyperparams(mu, mu_dec, mu_inc, mu_max, min_grad)
    _check_range("alpha", alpha)
    if not _is_on(alpha):
        return Optimizer("lm", {}, hp)
    return Optimizer("lm", {"alpha": True}, {**hp, "alpha": alpha})


def bayesian_regularization(
    mu: Any = 0.005,
    mu_dec: Any = 0.1,
    mu_inc: Any = 10.0,
    mu_max: Any = 1e10,
    min_grad: Any = 1e-7,
) -> Optimizer:
    """Bayesian regularization (MacKay 1992; Foresee and Hagan 1997, "Gauss-Newton
    approximation to Bayesian learning"; MATLAB's ``trainbr``), full batch, ``mse`` loss.

    Levenberg-Marquardt (:func:`levenberg_marquardt`'s solve and ``mu`` schedule) on
    ``F = beta SSE + alpha SSW``, ``SSW`` the sum of squared weights AND biases, with
    ``alpha``, ``beta`` and the effective number of parameters ``gamma`` re-estimated
    after every kept step (``N`` residuals, ``P`` weights and biases)::

        gamma = P - 2 alpha tr(H^-1),   H = 2 beta J^T J + 2 alpha I
        alpha = gamma / (2 SSW),        beta = (N - gamma) / (2 SSE)

    starting from ``gamma = P``, ``alpha = P / (2 SSW)``, ``beta = (N - P) / (2 SSE)``
    as MATLAB does (see ``_br_update``). ``alpha / beta`` is the weight decay the
    data ask for, so BR needs NO validation split: it is its own guard against
    overfitting, and MATLAB turns validation stops off for it (give all the data to
    training; ``X_val`` is still recorded if given). ``gamma`` (how many parameters the
    data determine, in ``(0, P]``) far below ``P`` says the network is larger than it
    needs to be.

    Same stops as lm (``"min_grad_reached"``, ``"mu_max_reached"``, ``tol`` as
    ``goal``); the history gets ``mu``, ``grad_norm`` and ``gamma``; ``alpha``,
    ``beta`` and ``gamma`` live in the state (:class:`BRState`), so a resumed run
    goes on exactly. Defaults are MATLAB's ``trainbr`` ``net.trainParam``.
    """
    return Optimizer("br", {}, _marquardt_hyperparams(mu, mu_dec, mu_inc, mu_max, min_grad))


def cast_hyperparams(name: str, given: Mapping[str, Any], dtype: Any) -> dict[str, Any]:
    """The hyperparameters ``given`` to the rule ``name`` in the params' ``dtype`` (host
    values stay NumPy), refused when the cast changes what they mean: a finite value that
    overflows to inf (``mu_max=1e39`` in float32), a non-zero one that underflows to 0
    (``mu=1e-50``), or lm's and br's ``mu_inc`` that no longer makes ``mu`` grow
    (``1.00000001`` is 1 in float32): each would let the damping loop run forever.

    Raises:
        ValueError: naming the hyperparameter, its value, the dtype and (several
            networks) the first network whose value it is.
    """
    dname = np.dtype(dtype).name
    if name in ("lm", "br") and dname not in ("float32", "float64"):
        raise ValueError(
            f"{name} solves (J^T J + mu I) dx = -J^T e by a Cholesky factorisation, which "
            f"needs float32 or float64 params, got {dname}: cast them first, e.g. "
            "jax.tree.map(lambda a: a.astype(jnp.float32), params)"
        )
    with np.errstate(over="ignore", under="ignore"):
        hp = {k: host_or_device(v, dtype) for k, v in given.items()}

    def refuse(k: str, bad: np.ndarray, why: str) -> None:
        value = given[k]
        where = ""
        if bad.ndim:  # one value per network
            i = int(np.argmax(bad))
            value, where = (
                np.broadcast_to(np.asarray(value), bad.shape)[i].item(),
                f" (network {i})",
            )
        whose = f"{name}'s " if name else ""  # set_hyperparams: no optimizer name, only a state
        raise ValueError(f"{whose}{k}={value!r}{where} {why} in the params' dtype {dname}")

    for k, v in given.items():
        if isinstance(hp[k], jax.Array) or not np.issubdtype(np.asarray(hp[k]).dtype, np.floating):
            continue  # a device array or tracer (checked where it was made), or an integer
        wide, cast = np.asarray(v, np.float64), np.asarray(hp[k])
        if np.any(overflow := np.isfinite(wide) & ~np.isfinite(cast)):
            refuse(k, overflow, f"overflows to inf (largest {np.finfo(dtype).max:.3g})")
        if np.any(underflow := (wide != 0) & (cast == 0)):
            refuse(
                k, underflow, f"underflows to 0 (smallest {np.finfo(dtype).smallest_subnormal:.3g})"
            )
    if name == "adam":  # b1, b2 that round to 1 (0.999 in bfloat16): 1 / (1 - b^t) is inf
        for k in ("b1", "b2"):
            if not isinstance(hp[k], jax.Array) and np.any(one := np.asarray(hp[k]) >= 1):
                refuse(
                    k,
                    one,
                    "is 1 once cast (the bias correction 1 / (1 - b^t) is then inf and every "
                    "update NaN: use float32 params or a smaller value)",
                )
    if name in ("lm", "br") and not isinstance(hp["mu"], jax.Array):
        mu, inc = np.asarray(hp["mu"]), np.asarray(hp["mu_inc"])
        still = np.broadcast_to((mu > 0) & (mu * inc <= mu), np.broadcast(mu, inc).shape)
        if np.any(still):
            m = np.broadcast_to(np.asarray(given["mu"]), still.shape).flat[np.argmax(still)].item()
            refuse("mu_inc", still, f"does not make mu={m!r} grow (mu * mu_inc == mu)")
    return hp


def _marquardt_hyperparams(
    mu: Any, mu_dec: Any, mu_inc: Any, mu_max: Any, min_grad: Any
) -> dict[str, Any]:
    """The checked hyperparameters of lm and br (MATLAB's names)."""
    _check_range("mu", mu)
    _check_range("mu_dec", mu_dec)
    _check_range("mu_inc", mu_inc)
    _check_range("mu_max", mu_max)
    _check_range("min_grad", min_grad)  # mu, mu_dec > 0 and mu_inc > 1: _ABOVE
    hp = {"mu": mu, "mu_dec": mu_dec, "mu_inc": mu_inc, "mu_max": mu_max, "min_grad": min_grad}
    _check_mu_below_max(hp)
    return hp


def _check_mu_below_max(hp: Mapping[str, Any]) -> None:
    """Refuse a starting ``mu`` above ``mu_max`` (plain numbers): the run would stop at
    its first epoch on ``"mu_max_reached"`` without a step."""
    mu, mu_max = _number_or_none(hp.get("mu")), _number_or_none(hp.get("mu_max"))
    if mu is not None and mu_max is not None and mu > mu_max:
        raise ValueError(
            f"mu={mu!r} is above mu_max={mu_max!r}: the first epoch would stop on "
            "mu_max_reached without a step; start mu below mu_max"
        )


def lbfgs(
    history: int = 10,
    max_linesearch: Any = 20,
    c1: Any = 1e-4,
    c2: Any = 0.9,
    gtol: Any = 1e-5,
    ftol: Any = 2.220446049250313e-09,
    max_fun: Any = 15000,
    alpha: Any = 0.0,
) -> Optimizer:
    """L-BFGS (Liu and Nocedal 1989; scikit-learn's ``solver="lbfgs"``), full batch: one
    iteration per epoch, ``x <- x + a d`` with ``d = -H g`` from the last ``history``
    pairs (the two-loop recursion) and ``a`` from a line search that meets the strong
    Wolfe conditions, all in the compiled program (:mod:`jbpnn.lbfgs`)::

        E(x + a d) <= E(x) + c1 a g^T d,        |g(x + a d)^T d| <= c2 |g^T d|

    For every loss; the gradient is the run's ``grad_fn`` (hand-derived by default).
    Stops (besides :mod:`jbpnn.stopping`'s rules; the epochs are scipy's ``maxiter``) as
    scipy's L-BFGS-B: ``"min_grad_reached"`` when ``max|g| <= gtol`` (``pgtol``),
    ``"loss_reduction_below_ftol"`` when ``(E_old - E_new) / max(|E_old|, |E_new|, 1)
    <= ftol``, ``"max_fun_reached"`` after more than ``max_fun`` evaluations of
    ``(E, g)``, ``"line_search_failed"`` when no step along ``-g`` meets the conditions
    in ``max_linesearch`` evaluations (the params stay; a failed search along the
    L-BFGS direction first forgets the pairs and tries ``-g`` the next epoch). The
    history gets ``grad_max``, ``step`` and ``n_evals``. Defaults are scipy's, but ``c1``
    (scipy's line search uses ``1e-3``).

    Args:
        history: pairs kept, ``m`` (static: the state holds ``(m, P)`` arrays).
        max_linesearch: evaluations one line search may make (scipy's ``maxls``).
        c1, c2: the Wolfe constants, ``0 < c1 < c2 < 1``.
        gtol, ftol, max_fun: the stop rules above.
        alpha: scikit-learn's L2 penalty ``(alpha / 2) |W|^2 / n`` on the weights only,
            added to the loss the line search evaluates and to the gradient.
    """
    if (
        isinstance(history, bool)
        or not isinstance(history, numbers.Integral)
        or not 1 <= history <= INT32_MAX
    ):
        raise ValueError(
            f"history must be an integer from 1 to {INT32_MAX} (pairs kept), got {history!r}"
        )
    _check_range("max_linesearch", max_linesearch)
    _check_range("c1", c1)
    _check_range("c2", c2)
    w1, w2 = _number_or_none(c1), _number_or_none(c2)
    if w1 is not None and w2 is not None and not 0 < w1 < w2:
        raise ValueError(f"the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
    _check_range("gtol", gtol)
    _check_range("ftol", ftol)
    _check_range("max_fun", max_fun)
    _check_range("alpha", alpha)
    hp = {"max_linesearch": max_linesearch, "c1": c1, "c2": c2}
    hp.update(gtol=gtol, ftol=ftol, max_fun=max_fun)
    l2 = _is_on(alpha)
    if l2:
        hp["alpha"] = alpha
    return Optimizer("lbfgs", {"history": int(history), "alpha": l2}, hp)


def _with_alpha(objective: Objective, alpha: Array, n: Array) -> Objective:
    """``objective`` plus scikit-learn's L2, as :meth:`Optimizer.update` adds it to the
    gradient: ``E + (alpha / 2) |W|^2 / n`` and ``g_w + alpha w / n``, W the weights
    (leaves of two or more dimensions). ``loss_and_grad`` stays the loop's; the term is
    its ``penalty``."""

    def penalty(p: PyTree) -> Array:
        weights = [w for w in jax.tree.leaves(p) if jnp.ndim(w) >= 2]
        return alpha / (2 * n) * sum(jnp.sum(w * w) for w in weights)

    def penalty_and_grad(p: PyTree) -> tuple[Array, PyTree]:
        grad = jax.tree.map(lambda w: alpha * w / n if jnp.ndim(w) >= 2 else jnp.zeros_like(w), p)
        return penalty(p), grad

    def normal_equations(p: PyTree) -> tuple[Array, Array, Array]:
        # E = e^T e / (2 n): in e^T e's units the penalty is alpha |W|^2, so J^T J gains
        # alpha D and J^T e gains alpha D x (D: 1 on the weights' entries, 0 on the biases')
        jtj, jte, sse = objective.normal_equations(p)
        x, _ = ravel_pytree(p)
        on = jax.tree.map(lambda w: jnp.full(jnp.shape(w), jnp.ndim(w) >= 2, x.dtype), p)
        d = alpha * ravel_pytree(on)[0]
        return jtj + jnp.diag(d), jte + d * x, sse + jnp.sum(d * x * x)

    return objective._replace(
        loss=lambda p: objective.loss(p) + penalty(p),
        normal_equations=normal_equations,
        penalty=penalty_and_grad,
    )


def weight_squares(params: PyTree) -> Array:
    """``|W|^2``: the sum of the squares of the weights (leaves of two or more dimensions;
    biases are left out), scikit-learn's L2 term without its ``alpha / 2``."""
    weights = [w for w in jax.tree.leaves(params) if jnp.ndim(w) >= 2]
    return jnp.asarray(sum(jnp.sum(w * w) for w in weights))


def with_loss_penalty(optimizer: Optimizer, loss_alpha: Any) -> Optimizer:
    """``optimizer`` whose training loss (the history's ``loss``) carries scikit-learn's
    L2 term, ``(loss_alpha / 2) |W|^2 / n_batch`` on each batch's loss before its update,
    as scikit-learn's ``loss_curve_`` does. The updates are unchanged (the gradient's
    term is ``alpha``'s); ``loss_alpha`` is a hyperparameter (data)."""
    _check_range("loss_alpha", loss_alpha)
    options = {**optimizer.options, "loss_alpha": True}
    return Optimizer(optimizer.name, options, {**optimizer.hyperparams, "loss_alpha": loss_alpha})


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd,
    "momentum": momentum,
    "adam": adam,
    "rprop": rprop,
    "lm": levenberg_marquardt,
    "br": bayesian_regularization,
    "lbfgs": lbfgs,
}


def get_optimizer(name: str, **hparams: Any) -> Optimizer:
    """Build an optimizer by name, e.g. ``get_optimizer("momentum", lr=0.1, m=0.9)``.

    The one name-to-optimizer lookup of the library (the command line, ``train_many``
    and checkpoints use it).

    Raises:
        ValueError: for an unknown name or a hyperparameter the optimizer does not take.
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")
    factory = OPTIMIZERS[name]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        scheduled = {p for f in SCHEDULES.values() for p in inspect.signature(f).parameters}
        hint = ""
        if set(unknown) <= scheduled and "lr" in accepted:  # a schedule's own parameters
            verb = "belongs" if len(unknown) == 1 else "belong"
            hint = (
                f" ({', '.join(unknown)} {verb} to a learning-rate schedule: give the "
                f"optimizer with its schedule, e.g. optimizer=jbpnn.{name}("
                "jbpnn.optimizers.step_decay(...)), and sweep them in hparams)"
            )
        raise ValueError(
            f"optimizer {name!r} does not take {unknown}; its hyperparameters are {accepted}{hint}"
        )
    return factory(**hparams)


# Each hyperparameter's range, by name: (low, high, integer), ``low <= value < high``. The
# one table: the factories check against it, and so do values given later
# (``Optimizer.replace``, ``set_hyperparams``).
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    **dict.fromkeys(
        ("lr", "drop", "power_t", "weight_decay", "alpha", "loss_alpha"), (0.0, None, False)
    ),
    **dict.fromkeys(("eps", "delta0", "delta_max", "mu", "mu_max", "min_grad"), (0.0, None, False)),
    **dict.fromkeys(("gtol", "ftol", "samples_before", "updates_before"), (0.0, None, False)),
    **dict.fromkeys(("m", "b1", "b2", "delta_dec", "mu_dec", "c1", "c2"), (0.0, 1.0, False)),
    **dict.fromkeys(("delta_inc", "mu_inc"), (1.0, None, False)),
    **dict.fromkeys(("samples_per_epoch", "updates_per_epoch"), (1.0, None, False)),
    **dict.fromkeys(("every", "max_linesearch", "max_fun"), (1.0, None, True)),
}


# Hyperparameters that must lie strictly above a bound (the range table's low end is
# allowed), and why: checked by the factories and for values given later alike.
_ABOVE: dict[str, tuple[float, str]] = {
    "eps": (
        0.0,
        ": a weight whose gradient is exactly 0 (a feature of zeros, a dead unit) would take "
        "the step 0 / (sqrt(0) + 0) = NaN",
    ),
    "mu": (0.0, ""),
    "mu_dec": (0.0, ""),
    "mu_inc": (1.0, " (mu grows on a rejected step)"),
}


def _number_or_none(value: Any) -> float | None:
    """One value known here as a Python number (a number, a 0-d NumPy array, a concrete
    0-d JAX array), else None (traced, one per network, a schedule): what the checks
    across two hyperparameters compare (a 0-d array skipped lbfgs's c1 < c2)."""
    value = scalar_value(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _check_above(name: str, value: Any) -> None:
    """Refuse a value known here (a number, any element of an array, a concrete JAX
    array's) at or below ``name``'s strict bound in :data:`_ABOVE`; traced ones pass."""
    value = host_value(value)
    if name not in _ABOVE or value is None:
        return
    bound, why = _ABOVE[name]
    for x in np.asarray(value, dtype=np.float64).ravel():
        if x <= bound:
            shown = value if np.ndim(value) == 0 else x.item()
            raise ValueError(f"{name} must be > {bound:g}{why}, got {shown!r}")


def _check_range(name: str, value: Any) -> None:
    """:func:`jbpnn.checks.check_number` with ``name``'s range from the table (and its
    strict bound, :data:`_ABOVE`)."""
    low, high, integer = _RANGES[name]
    check_number(name, value, low, high, integer=integer)
    _check_above(name, value)


def check_hyperparam_values(
    values: Mapping[str, Any], shapes: Mapping[str, Any] | None = None
) -> None:
    """Check hyperparameter values given after construction as their factory checks them:
    a host value (a number, or a NumPy array of one per network) in its range; with
    ``shapes``, of that shape or a scalar. JAX arrays (device or traced values) are data
    the caller vouches for: :func:`set_hyperparams` may run every step of a loop, where a
    copy to the host would wait for the device.

    Raises:
        ValueError: naming the hyperparameter and what it must be.
    """
    for k, v in values.items():
        if isinstance(v, jax.Array):  # device data (a user's loop may set it every step:
            continue  # no host round trip here) or traced; the factories check their scalars
        low, high, integer = _RANGES.get(k, (-np.inf, None, False))
        arr = np.asarray(v) if isinstance(v, (np.ndarray, list, tuple)) else None
        if arr is None:
            check_number(k, v, low, high, integer=integer)
            _check_above(k, v)
            continue
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"{k} must be a number or an array of numbers, got {v!r}")
        if shapes is not None and arr.ndim and arr.shape != tuple(np.shape(shapes[k])):
            raise ValueError(
                f"{k} must be one number or an array of shape {tuple(np.shape(shapes[k]))} "
                f"(the state's), got shape {arr.shape}"
            )
        finite = np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else True
        fits = finite & (arr >= low) & (True if high is None else arr < high)
        if integer:
            fits = fits & (arr == np.round(arr))
        if not np.all(fits):  # the first network out of range, by the scalar check's message
            check_number(k, arr.ravel()[int(np.argmin(np.ravel(fits)))].item(), low, high,
                         integer=integer)  # fmt: skip
        _check_above(k, arr)


def set_hyperparams(state: State, **values: Any) -> State:
    """The optimizer ``state`` with new hyperparameter values (same kind, same moments).

    ``set_hyperparams(state, lr=0.05)`` changes the learning rate from the next
    update on; works on traced values, so ``jax.vmap`` can give every network its own.
    For ``lm`` and ``br``, ``mu`` is also the damping the next epoch starts from (the
    state's ``mu``, which the epochs change; ``hyperparams["mu"]`` is the first value).

    Raises:
        ValueError: a name the state does not hold; a host value out of its range (the
            factory's: ``m`` in ``[0, 1)``, ``lr >= 0``, ...) or of another shape.
    """
    hp = getattr(state, "hyperparams", None)
    if not isinstance(hp, dict) and isinstance(getattr(state, "opt_state", None), tuple):
        raise ValueError(
            f"a {type(state).__name__}'s hyperparameters are in its optimizer state: "
            "set_hyperparams(state.opt_state, ...); train resumes with the values of the "
            "optimizer it is given (optimizer=opt.replace(...))"
        )
    if not isinstance(hp, dict):
        raise ValueError(f"{type(state).__name__} holds no hyperparameters")
    unknown = sorted(set(values) - set(hp))
    if unknown:
        raise ValueError(f"the state has no hyperparameters {unknown}; it holds {list(hp)}")
    check_hyperparam_values(values, hp)
    for k, v in values.items():  # in the state's dtype: no overflow to inf, no underflow to 0
        cast_hyperparams("", {k: v}, hp[k].dtype)
    new = {k: to_device(values[k], hp[k].dtype) if k in values else v for k, v in hp.items()}
    if isinstance(state, (LMState, BRState)) and "mu" in values:
        state = state._replace(mu=jnp.broadcast_to(new["mu"], jnp.shape(state.mu)))
    return state._replace(hyperparams=new)


# ---------------------------------------------------------------- helpers
def _float(count: Any, like: Any) -> Array:
    """An int32 step count in the dtype of the hyperparameter ``like`` it meets: the
    params' (a float32 network computes ``b1^t`` and its schedules in float32 whether or
    not ``jax_enable_x64`` is on; exact up to 2^24 steps). The schedules widen a narrower
    dtype first (:func:`_wide`); adam's ``b^t`` keeps the params' (a bfloat16 count that
    rounds moves ``1 / (1 - b^t)`` by less than bfloat16 resolves, and float16's inf
    gives its limit 1)."""
    return jnp.asarray(count).astype(jnp.result_type(like))


def _wide(x: Any) -> Array:
    """A hyperparameter in its own float dtype, or in float32 where that is narrower: a
    step count in bfloat16 rounds from 256 on (``step_decay`` dropped the rate early) and
    float16's overflows at 65504 (``inverse_scaling`` gave 0 from then on). The rate (or
    correction) it gives goes back to the hyperparameter's dtype (:func:`_narrow`); a
    float32 or float64 network computes exactly as before."""
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _narrow(x: Array, like: Any) -> Array:
    """``x`` back in the dtype of the hyperparameter ``like`` (see :func:`_wide`)."""
    return x.astype(jnp.result_type(like))


def _float_dtype(params: PyTree) -> Any:
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            return jnp.result_type(leaf)
    return jnp.result_type(float)


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if not (is_concrete(a) and is_concrete(b)):
        return False  # a traced value (inside the user's jit) is equal only to itself
    if isinstance(a, (jax.Array, np.ndarray)) or isinstance(b, (jax.Array, np.ndarray)):
        # by value: a copy equals its original (a == b of arrays is an array)
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _show(v: Any) -> str:
    if v is None:
        return "?"
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return "<traced>"


def _count0() -> Array:
    """The step count before the first update (built by NumPy: no compiled program)."""
    return to_device(np.zeros((), np.int32))


def _next(count: Array) -> Array:
    """``count + 1``, saturating at int32's largest value: after 2**31 - 1 updates (a long
    online run) the count stays there, so a schedule keeps its last rate instead of
    wrapping to a negative count (``lr / (t + 1)^p`` of a negative ``t`` is NaN)."""
    return count + (count < jnp.iinfo(count.dtype).max).astype(count.dtype)


def _zeros_like(params: PyTree) -> PyTree:
    return jax.tree.map(_zeros, params)


def _zeros(x: Any) -> Array:
    if is_concrete(x):  # built by NumPy: no XLA program compiled just for zeros
        return to_device(np.zeros(np.shape(x), np.dtype(jnp.result_type(x))))
    return jnp.zeros_like(x)


def _like(tree: PyTree, params: PyTree) -> PyTree:
    # Keep every leaf in its param's dtype, even when a hyperparameter is a wider scalar.
    return jax.tree.map(lambda x, p: jnp.asarray(x, dtype=jnp.result_type(p)), tree, params)


def _unzip(pairs: PyTree, like: PyTree) -> tuple[PyTree, PyTree]:
    # Any: mypy cannot resolve jax's PyTreeDef (jaxlib 0.10 ships no stub for it).
    treedef: Any = jax.tree.structure(like)
    leaves = treedef.flatten_up_to(pairs)
    firsts = treedef.unflatten([a for a, _ in leaves])
    seconds = treedef.unflatten([b for _, b in leaves])
    return firsts, seconds

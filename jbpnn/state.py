"""A run's settings and state: what the compiled loop carries, and what ``train`` returns.

- :class:`TrainConfig`: the static settings (shapes, which rules exist), part of
  the compiled program's cache key; :func:`train_config` checks and builds it.
- :class:`TrainState`: everything a run needs to go on, a pure pytree (``jit``,
  ``vmap``, ``save`` it); :func:`init_state` starts one, :func:`resume_state`
  adapts one to a new run's settings.
- :class:`TrainResult`: what :func:`jbpnn.training.train` returns;
  :func:`state_result` builds it from a final state and its history.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jbpnn.checks import INT32_MAX, as_key, check_int, host_or_device
from jbpnn.marquardt import BRState, LMState
from jbpnn.memory import check_array_memory
from jbpnn.optimizers import (
    MOMENTUM_VARIANTS,
    MomentumState,
    Optimizer,
    cast_hyperparams,
    check_momentum_trace,
    momentum_variant_code,
)
from jbpnn.params import MLP
from jbpnn.stopping import MONITORS, NO_MONITOR, RUNNING, Stopping, Switches, stop_reason_name

__all__ = [
    "HISTORY_CHUNK",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "batching",
    "init_state",
    "resume_state",
    "state_result",
    "train_config",
]

Array = jax.Array

HISTORY_CHUNK = 256  # epochs of history kept on the device; train copies it out per chunk


# ---------------------------------------------------------------- settings and state
class TrainConfig(NamedTuple):
    """Static settings: shapes and which rules exist (hashable; part of the jit cache key).

    Attributes:
        n_examples: training examples.
        batch_size: examples per update (``n_examples`` for full batch).
        n_batches: updates per epoch.
        shuffle: a new order every epoch.
        watch_weight_change: the article's rule 1 is on (max ``|delta w|`` is measured).
        early_stopping: ``n_iter_no_change`` is on (the best params are kept).
        monitor: what early stopping watches: ``"val_loss"``, ``"val_accuracy"`` or
            ``"val_r2"`` (which adds ``val_r2`` to the history).
        watch_loss: ``loss_patience`` is on (the training-loss plateau rule).
        reduce_lr: a plateau reduces the learning rate (``lr_factor``) before stopping.
        scaled_lr: the updates use ``lr * lr_scale`` without the plateau rule: a resume,
            without ``lr_factor``, of a run whose rule reduced ``lr`` (its reductions go on,
            whatever ``lr`` the resume gives).
        has_validation: validation data is given (``val_loss``, ``val_accuracy``).
        weighted: the user gave sample weights (updates on all-zero batches are skipped).
        history_chunk: epochs of history the state holds (a ring buffer).
        shards: devices each mini-batch is split across (data parallel); batches
            are padded with weight-0 rows to a multiple of it.
        optimizer_history: what the optimizer adds to the history each epoch
            (``Optimizer.history_keys``: ``mu``, ``grad_norm`` for ``lm``).
        watch_growth: the divergence rule's ``max_loss_growth`` is on (its reference
            is taken from the first epoch's batch losses); off, it is not compiled.
        watch_params: the divergence rule's ``max_abs_param`` is on.
    """

    n_examples: int
    batch_size: int
    n_batches: int
    shuffle: bool
    watch_weight_change: bool
    early_stopping: bool
    has_validation: bool
    weighted: bool = False
    monitor: str = "val_loss"
    watch_loss: bool = False
    reduce_lr: bool = False
    history_chunk: int = HISTORY_CHUNK
    shards: int = 1
    optimizer_history: tuple[str, ...] = ()
    watch_growth: bool = True
    watch_params: bool = True
    scaled_lr: bool = False

    def history_keys(self) -> tuple[str, ...]:
        """The history's keys in this run, in order: ``loss``, then what the rules and the
        optimizer add (see :class:`TrainResult`'s ``history``)."""
        keys = ("loss",) + (("max_weight_change",) if self.watch_weight_change else ())
        if self.has_validation:
            keys += ("val_loss", "val_accuracy") + (("val_r2",) if self.monitor == "val_r2" else ())
        if self.reduce_lr:  # the plateau rule's reductions so far, after each epoch
            keys += ("lr_scale",)
        return keys + self.optimizer_history


class TrainState(NamedTuple):
    """Everything a run needs to go on: a pure pytree (``jit``, ``vmap``, ``save`` it).

    Attributes:
        params: the network after the last epoch.
        opt_state: the optimizer's state (moments, step count, hyperparameters).
        key: the data-order key; epoch ``e`` is shuffled with ``fold_in(key, e)``.
        epoch: epochs run so far (int32).
        step: updates made so far (int32): not counting a mini-batch of weight 0 (the
            padding of ``train_many``'s shorter row sets) or a diverged epoch's, undone.
        stop: the :data:`STOP_REASONS` index of the rule that fired, or ``RUNNING`` (-1).
        best_params: with early stopping, the params of the best validation epoch
            (None without early stopping).
        best_val: that epoch's monitored validation value, lower is better: the
            validation loss, or ``1 - accuracy`` (``inf`` before any).
        best_epoch: its 1-based number (0 before any).
        bad_epochs: epochs in a row without validation improvement.
        best_loss: the lowest epoch loss so far (``inf`` before any).
        loss_bad_epochs: epochs in a row whose loss did not beat ``best_loss - loss_tol``.
        lr_scale: the product of the ``lr_factor`` reductions so far (1 before any):
            the updates use ``lr * lr_scale``, the optimizer state keeps ``lr``.
        first_loss: the divergence rule's reference loss: the starting params' loss
            on the run's first mini-batch (before its update), or the targets' spread
            if larger (:func:`jbpnn.training.divergence_reference`). NaN until the
            first epoch run with ``max_loss_growth`` on measures it.
        history: ring buffers of ``history_chunk`` entries: epoch ``e`` (0-based)
            is at index ``e % history_chunk``. Keys: ``loss``, and what
            :meth:`TrainConfig.history_keys` adds (see :class:`TrainResult`).
        monitor: what ``best_val`` measures, the index in
            :data:`jbpnn.stopping.MONITORS` (0 ``val_loss``, 1 ``val_accuracy``, 2
            ``val_r2``; int32), -1 without early stopping (or from a checkpoint or pickle
            saved before jbpnn recorded it): a resume watching another value is refused.
    """

    params: MLP
    opt_state: Any
    key: Array
    epoch: Array
    step: Array
    stop: Array
    best_params: MLP | None
    best_val: Array
    best_epoch: Array
    bad_epochs: Array
    best_loss: Array
    loss_bad_epochs: Array
    lr_scale: Array
    first_loss: Array
    history: dict[str, Array]
    # last, with a default: a TrainState pickled before it existed unpickles
    monitor: Array = np.int32(NO_MONITOR)  # type: ignore[assignment]


def init_state(
    params: MLP, optimizer: Any, config: TrainConfig, key: ArrayLike | int | None = None
) -> TrainState:
    """The state before the first epoch (pure: ``jax.vmap`` it over params or keys).

    ``key`` may be an int seed, a ``jax.random.key`` or None (seed 0).
    """
    dtype = params.dtype
    return TrainState(
        params=params,
        opt_state=optimizer.init(params),
        key=key if _is_key(key) else as_key(key),
        epoch=_filled(0, (), jnp.int32),
        step=_filled(0, (), jnp.int32),
        stop=_filled(RUNNING, (), jnp.int32),
        best_params=params if config.early_stopping else None,
        best_val=_filled(np.inf, (), _at_least_float32(dtype)),
        best_epoch=_filled(0, (), jnp.int32),
        bad_epochs=_filled(0, (), jnp.int32),
        best_loss=_filled(np.inf, (), dtype),
        loss_bad_epochs=_filled(0, (), jnp.int32),
        lr_scale=_filled(1.0, (), dtype),
        first_loss=_filled(np.nan, (), dtype),
        history=_empty_history(config, dtype),
        monitor=_filled(_monitor_code(config), (), jnp.int32),
    )


def _monitor_code(config: TrainConfig) -> int:
    """``TrainState.monitor`` for a run of ``config``: what its early stopping watches."""
    return MONITORS.index(config.monitor) if config.early_stopping else NO_MONITOR


_F = TypeVar("_F", bound=Callable[..., Any])


def own_nan_markers(fn: _F) -> _F:
    """``fn`` (``train``, ``train_many``, ``load``) run with ``jax_debug_nans`` and
    ``jax_debug_infs`` off, whatever the caller set.

    The state marks "not measured yet" with NaN and inf (``best_val``, ``best_loss``,
    ``first_loss``, the history's unused slots, L-BFGS's first point), and they pass
    through the compiled loop, so JAX's checker stopped every finite run. The loop
    checks for itself: a NaN or inf loss or weight stops the run as ``"diverged"``
    (``diverged_at``, the last finite params kept).
    """

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with jax.debug_nans(False), jax.debug_infs(False):
            return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _filled(value: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A constant array built by NumPy, left on the host: no XLA program is compiled for it
    (jnp.full would), and the compiled loop that first takes the state copies it with the
    call's other arguments (about 0.2 us each, against about 20 us for a jax.device_put
    of its own: a small full-batch fit made 30 of those)."""
    return np.full(shape, value, np.dtype(dtype))


def _is_key(key: Any) -> TypeGuard[Array]:
    return isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _at_least_float32(dtype: Any) -> np.dtype:
    """A 16-bit network's records (history, the best validation value) in float32: its
    counts (lbfgs's n_evals) exact past 256 (bfloat16) or 2048 (float16), its validation
    accuracy a whole number of rows."""
    return np.promote_types(np.dtype(dtype), np.float32)


def _empty_history(config: TrainConfig, dtype: Any) -> dict:
    dtype = _at_least_float32(dtype)
    return {k: _filled(np.nan, (config.history_chunk,), dtype) for k in config.history_keys()}


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: the params to use: with early stopping the params of the epoch
            with the best validation loss (``best_epoch``); after divergence, the
            last finite params (from before epoch ``diverged_at``); else the last.
        history: NumPy arrays (of the params' float dtype; float32 for 16-bit networks), one
            entry per epoch of this run (see ``start_epoch``): ``loss`` (the epoch loss),
            ``max_weight_change`` (only with ``min_weight_change``, the rule that needs it)
            and, with a validation set, ``val_loss`` and ``val_accuracy`` (and ``val_r2``
            with ``monitor="val_r2"``), ``lr_scale`` with ``lr_factor`` (the plateau rule's
            reductions so far, after the epoch); the full-batch optimizers add their own:
            ``mu`` and ``grad_norm`` (``lm``; ``br`` also ``gamma``), ``grad_max``, ``step``
            and ``n_evals`` (``lbfgs``). Resuming from a ``TrainResult`` extends its
            history: every key of either part, one entry per epoch, NaN where a part did
            not record it.
        epochs_run: epochs run in all, the diverged one included.
        stop_reason: one of :data:`STOP_REASONS`.
        diverged_at: the 1-based epoch whose loss or params became NaN/inf (or blew
            up, see ``max_loss_growth``), or None.
        best_epoch: the 1-based epoch of ``params`` under early stopping, else None.
        elapsed: wall-clock seconds, compilation included.
        state: the final :class:`TrainState`, to resume (``train(result.state, ...)``)
            or checkpoint (:func:`jbpnn.io.save`).
        optimizer: the optimizer used (so ``train(result, X, Y)`` can go on).
        start_epoch: epochs run before the first entry of ``history`` (0 for a fresh run).
        monitor: what early stopping watched (``"val_loss"``, ``"val_accuracy"``,
            ``"val_r2"``), None without it: a resume from this result must watch the
            same (its best value is of that kind).
        batching: the run's ``(batch_size, shuffle, drop_last)`` as given to
            :func:`jbpnn.train`; a resume from this result with others warns (they are
            not carried: 10 + 10 epochs equal 20 with the same ones only).
    """

    params: MLP
    history: dict[str, np.ndarray]
    epochs_run: int
    stop_reason: str
    diverged_at: int | None = None
    best_epoch: int | None = None
    elapsed: float = 0.0
    state: TrainState | None = field(default=None, repr=False)
    optimizer: Any = field(default=None, repr=False)
    start_epoch: int = 0
    monitor: str | None = field(default=None, repr=False)
    batching: tuple[Any, Any, bool] | None = field(default=None, repr=False)

    @property
    def final_loss(self) -> float:
        """The last finite epoch loss of the epochs whose params were kept (NaN if none).

        A diverged run returns the params from before its diverging epoch, so that epoch's
        loss (NaN, or a finite blow-up past ``max_loss_growth``) is not the final one. A
        resume from a bare :class:`TrainState` whose call kept no epoch of its own (the
        state had stopped, or its one epoch diverged) reads the earlier epochs' losses
        from the state's ring buffer (the last ``history_chunk`` epochs).
        """
        losses = self.history["loss"]
        kept = self.epochs_run if self.diverged_at is None else self.diverged_at - 1
        losses = losses[: max(kept - self.start_epoch, 0)]
        finite = losses[np.isfinite(losses)]
        if finite.size:
            return float(finite[-1])
        if self.state is None or "loss" not in self.state.history:
            return math.nan
        ring = np.asarray(self.state.history["loss"])
        if ring.ndim != 1:  # a batched state (train_many's): no one network's loss
            return math.nan
        # epochs before this call's, not yet overwritten in the ring by this call's own
        first = max(self.start_epoch + len(self.history["loss"]) - len(ring), 0)
        for epoch in range(min(kept, self.start_epoch) - 1, first - 1, -1):
            if np.isfinite(ring[epoch % len(ring)]):
                return float(ring[epoch % len(ring)])
        return math.nan

    def summary(self) -> str:
        """A few lines: why and when the run stopped, the final loss, the validation figures."""
        lines = [
            f"stopped: {self.stop_reason} after {self.epochs_run} epoch(s) in {self.elapsed:.2f} s",
            f"final loss: {self.final_loss:.6g}",
        ]
        if "val_loss" in self.history and len(self.history["val_loss"]):
            # Validation figures of the returned params: the best epoch's, or the last one's.
            epoch = self.best_epoch or self.epochs_run
            at = epoch - 1 - self.start_epoch
            if 0 <= at < len(self.history["val_loss"]):
                which = "best, " if self.best_epoch is not None else ""
                lines.append(
                    f"validation ({which}epoch {epoch}): loss {self.history['val_loss'][at]:.6g}, "
                    f"accuracy {self.history['val_accuracy'][at]:.4f}"
                )
        if self.diverged_at is not None:
            lines.append(
                f"diverged at epoch {self.diverged_at}: loss or params became NaN/inf or grew "
                "past the divergence bounds; "
                f"params are the last finite ones, from before that epoch"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def state_result(
    state: TrainState,
    history: dict[str, np.ndarray],
    *,
    elapsed: float = 0.0,
    optimizer: Any = None,
    start_epoch: int = 0,
    monitor: str | None = None,
    batching: tuple[Any, Any, bool] | None = None,
) -> TrainResult:
    """A :class:`TrainResult` from a final (un-batched, host) state and its host history."""
    n = int(state.epoch)
    reason = stop_reason_name(int(state.stop))
    # the best validation epoch's params: a later epoch's, or (a run whose best started
    # as its initial params' value, MATLAB's rule: jbpnn.matlab) epoch 0's
    early = state.best_params is not None and (
        int(state.best_epoch) > 0 or bool(np.isfinite(np.asarray(state.best_val)))
    )
    return TrainResult(
        params=state.best_params if early and state.best_params is not None else state.params,
        history=history,
        epochs_run=n,
        stop_reason=reason,
        diverged_at=n if reason == "diverged" else None,
        best_epoch=int(state.best_epoch) if early else None,
        elapsed=elapsed,
        state=state,
        optimizer=optimizer,
        start_epoch=start_epoch,
        monitor=monitor,
        batching=batching,
    )


def train_config(
    n_examples: int,
    *,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
    stopping: Stopping | Switches | None = None,
    has_validation: bool = False,
    weighted: bool = False,
    history_chunk: int = HISTORY_CHUNK,
    shards: int = 1,
    optimizer: Any = None,
) -> TrainConfig:
    """Check the static settings of a run and return its :class:`TrainConfig`.

    ``stopping`` (a :class:`jbpnn.stopping.Stopping` or its ``switches``) says which
    optional rules exist; None: only the article's rules 2 and 3 and divergence.
    ``optimizer``: a full-batch one (``full_batch``) needs ``batch_size=None``; its
    ``history_keys`` join the history.
    """
    switches = Stopping().switches if stopping is None else stopping
    divergence: dict[str, Any]
    divergence = {"watch_growth": True, "watch_params": True}  # Stopping()'s, and Switches'
    if isinstance(switches, Stopping):
        divergence = switches.divergence._asdict()
        switches = switches.switches
    check_int("history_chunk", history_chunk, 1, high=INT32_MAX)
    # an upper bound of the ring buffers (every key a run may have, float64), as
    # estimate_memory counts them: refused before XLA allocates them
    keys = 1 + 4 + len(getattr(optimizer, "history_keys", ()))
    if history_chunk * keys * 8 > 2**26:  # above 64 MiB of ring buffers: do they fit?
        check_array_memory(
            (history_chunk, keys),
            np.float64,
            f"the history ring buffers of history_chunk={history_chunk} epochs",
            advice="give a smaller history_chunk (the default is 256)",
        )
    if switches.early_stopping and not has_validation:
        raise ValueError(
            "n_iter_no_change (early stopping) watches the validation loss: "
            "pass X_val and Y_val too"
        )
    if getattr(optimizer, "full_batch", False) and batch_size not in (None, n_examples):
        raise ValueError(
            f"{optimizer!r} is a full-batch optimizer (one update per epoch over the whole "
            f"training set): give batch_size=None, not {batch_size!r}"
        )
    return TrainConfig(
        **batching(n_examples, batch_size, shuffle, drop_last),
        **switches._asdict(),
        has_validation=bool(has_validation),
        weighted=bool(weighted),
        history_chunk=int(history_chunk),
        shards=int(shards),
        optimizer_history=tuple(getattr(optimizer, "history_keys", ())),
        **divergence,
    )


def batching(
    n_examples: int, batch_size: int | None, shuffle: bool | None, drop_last: bool
) -> dict[str, Any]:
    """The batching fields of a :class:`TrainConfig` (``n_examples``, ``batch_size``,
    ``n_batches``, ``shuffle``), checked: ``batch_size`` None is full batch; ``shuffle``
    None shuffles mini-batches only (the article's online mode keeps the order)."""
    check_int("batch_size", batch_size, 1, allow_none=True)
    if batch_size is not None and batch_size > n_examples:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {n_examples} training examples; "
            "use batch_size=None for full-batch training"
        )
    if shuffle is not None and not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"shuffle must be True, False or None, got {shuffle!r}")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise ValueError(f"drop_last must be True or False, got {drop_last!r}")
    k = n_examples if batch_size is None else int(batch_size)
    n_batches = n_examples // k if drop_last else -(-n_examples // k)
    if shuffle is None:
        shuffle = 1 < k < n_examples
    return {
        "n_examples": int(n_examples),
        "batch_size": k,
        "n_batches": int(n_batches),
        "shuffle": bool(shuffle) and k < n_examples,
    }


def _specs(tree: Any) -> tuple:
    """``(structure, ((shape, dtype), ...))`` of a pytree of arrays or shape structs
    (no tracing: a resumed ``partial_fit`` pays microseconds, not milliseconds)."""
    leaves, structure = jax.tree.flatten(tree)
    specs = tuple((tuple(np.shape(x)), _dtype(x)) for x in leaves)
    return structure, specs


def _dtype(x: Any) -> Any:
    """An array's (or shape struct's) dtype; a Python number's as JAX would store it."""
    return x.dtype if hasattr(x, "dtype") else jax.eval_shape(lambda: x).dtype


def _same_structure(a: Any, b: Any) -> bool:
    return _specs(a) == _specs(b)


_INIT_SHAPES: dict[Any, Any] = {}  # (optimizer kind and shapes, params' specs) -> init's shape


def _init_shape(optimizer: Any, params: MLP) -> Any:
    """``jax.eval_shape(optimizer.init, params)``, traced once per kind and shapes."""
    shapes: tuple[Any, ...]
    kind, shapes = optimizer, ()
    if isinstance(optimizer, Optimizer):  # values take the params' dtype; shapes are theirs
        kind = optimizer.kind
        shapes = tuple((k, np.shape(v)) for k, v in sorted(optimizer.hyperparams.items()))
    key = (kind, shapes, _specs(params))
    if key not in _INIT_SHAPES:
        if len(_INIT_SHAPES) > 256:
            _INIT_SHAPES.clear()
        _INIT_SHAPES[key] = jax.eval_shape(optimizer.init, params)
    return _INIT_SHAPES[key]


def resume_state(state: TrainState, optimizer: Any, config: TrainConfig) -> TrainState:
    """``state`` adapted to a new run's settings: the moments, counters and key carried.

    The history buffers are made anew (the host holds the earlier history); early stopping
    switched on now starts tracking the best params from here; switched off, drops them (a
    network that has stopped keeps, as its params, the best ones its run gave back: it
    trains no more). The plateau rule's reductions so far (``lr_scale``) stand, with the
    rule switched off too (``config.scaled_lr``): the updates use the given ``lr`` times
    them. The optimizer must be of the state's kind; its hyperparameter values replace
    the state's (so a resume can change ``lr``).
    A momentum state goes on with a variant whose trace means what the state's does
    (classical and Nesterov: the velocity, with ``lr``; the article's: the raw change),
    and records the new one.

    Raises:
        ValueError: the optimizer's state does not match (another kind of optimizer, or
            a momentum variant whose trace means another quantity).
    """
    params = state.params
    fresh = _init_shape(optimizer, params)
    if not _same_structure(fresh, state.opt_state):
        structure, specs = _specs(fresh)
        held_structure, held_specs = _specs(state.opt_state)
        shapes, held_shapes = [sh for sh, _ in specs], [sh for sh, _ in held_specs]
        if structure == held_structure and shapes == held_shapes:  # only the dtypes differ
            floats = sorted(
                {np.dtype(d).name for _, d in held_specs if jnp.issubdtype(d, jnp.floating)}
            )
            raise ValueError(
                f"the state's optimizer state is {'/'.join(floats)} and its params are "
                f"{np.dtype(params.dtype).name}: a state saved or pickled with JAX's float64 "
                "on, read where it is off (jax_enable_x64), or params cast since; resume inside "
                "`with jax.enable_x64(True):`, or start a new run from the params"
            )
        raise ValueError(
            f"the state was trained with another kind of optimizer than {optimizer!r}: its "
            "optimizer state has another structure; resume with the optimizer it was trained with"
        )
    opt_state = state.opt_state
    variant = getattr(optimizer, "options", {}).get("variant")
    if isinstance(opt_state, MomentumState) and variant in MOMENTUM_VARIANTS:
        check_momentum_trace(opt_state.variant, variant)
        code = _filled(momentum_variant_code(variant), np.shape(opt_state.variant), jnp.int32)
        opt_state = opt_state._replace(variant=code)
    if isinstance(optimizer, Optimizer) and hasattr(opt_state, "hyperparams"):
        # host values stay NumPy: the compiled call copies them together
        hp = cast_hyperparams(optimizer.name, optimizer.hyperparams, params.dtype)
        hp = {k: host_or_device(v, opt_state.hyperparams[k].dtype) for k, v in hp.items()}
        if isinstance(opt_state, (LMState, BRState)):
            # lm, br: the damping is carried, unless this run gives another first mu
            # (per network in train_many); hyperparams["mu"] holds the first one
            was, now = np.asarray(opt_state.hyperparams["mu"]), np.asarray(hp["mu"])
            if not np.array_equal(was, now):
                mu = np.where(was != now, now, np.asarray(opt_state.mu))
                opt_state = opt_state._replace(mu=host_or_device(mu, opt_state.mu.dtype))
        opt_state = opt_state._replace(hyperparams=hp)
    scale = np.asarray(state.lr_scale)
    if np.any(scale != 1):  # the reductions so far stand: the updates use lr * lr_scale
        held = getattr(opt_state, "hyperparams", None)
        if not isinstance(held, dict) or "lr" not in held:
            raise ValueError(
                f"this run's plateau rule reduced the learning rate by {scale.min():g}, and "
                "this optimizer state holds no lr to carry it: resume with the optimizer the "
                "run was trained with"
            )
        if not (config.reduce_lr or config.scaled_lr):
            raise ValueError(  # train sets scaled_lr for such a state: a caller's own config
                f"this state's learning rate was reduced by {scale.min():g} (lr_scale): "
                "resume it with a config whose reduce_lr or scaled_lr is on"
            )
    best = state.best_params
    if config.early_stopping and best is None:
        state = state._replace(
            best_params=params,
            best_val=_filled(np.inf, (), _at_least_float32(params.dtype)),
            best_epoch=_filled(0, (), jnp.int32),
            bad_epochs=_filled(0, (), jnp.int32),
        )
    elif config.early_stopping:  # its record goes on: best_val must be of this run's kind
        _check_same_monitor(state, config.monitor)
    else:
        state = _drop_best(state)
    watched = _filled(_monitor_code(config), np.shape(state.monitor), jnp.int32)
    state = state._replace(monitor=watched)
    return state._replace(opt_state=opt_state, history=_carried_history(state, config))


def _carried_history(state: TrainState, config: TrainConfig) -> dict:
    """The resumed run's ring buffers: the state's own where this run records the same key
    in a buffer of the same size (epoch ``e`` stays at ``e % history_chunk``, so the last
    epochs before the resume stay readable: :attr:`TrainResult.final_loss` of a call that
    runs none), NaN-filled for the others."""
    empty = _empty_history(config, state.params.dtype)
    old = state.history if isinstance(state.history, dict) else {}
    return {
        k: old[k]
        if k in old and np.shape(old[k]) == v.shape and np.dtype(old[k].dtype) == v.dtype
        else v
        for k, v in empty.items()
    }


def _drop_best(state: TrainState) -> TrainState:
    """Early stopping switched off: the best record goes. A network that has stopped
    trains no more, and its run gave back its best epoch's params: those become its
    params, so that a resumed run gives back what the stopped one did (the state's
    ``params`` alone, with the record gone, were the last epoch's)."""
    if state.best_params is None:
        return state
    stopped = np.asarray(state.stop) != RUNNING
    # those whose result was their best params (state_result's rule: a best epoch, or
    # MATLAB's best start, jbpnn.matlab)
    early = (np.asarray(state.best_epoch) > 0) | np.isfinite(np.asarray(state.best_val))
    kept = stopped & early
    params = state.params
    if kept.any():

        def pick(best: Any, last: Any) -> Any:
            where = kept.reshape(kept.shape + (1,) * (np.ndim(last) - kept.ndim))
            chosen = np.where(where, np.asarray(best), np.asarray(last))
            # as the leaves came: device arrays stay device arrays (no program compiled)
            return jax.device_put(chosen) if isinstance(last, jax.Array) else chosen

        params = jax.tree.map(pick, state.best_params, state.params)
    return state._replace(params=params, best_params=None)


def _check_same_monitor(state: TrainState, monitor: str) -> None:
    """A run whose early stopping goes on from ``state``'s record watches what it did:
    its best value of another kind (a val_loss of 28 against a best ``1 - R^2`` of 0.78)
    never improves, and the run returns the older network."""
    codes = np.asarray(state.monitor)
    other = (codes != NO_MONITOR) & (codes != MONITORS.index(monitor))
    if other.any():
        watched = MONITORS[int(codes[other].flat[0])]
        raise ValueError(
            f"this run's early stopping watched {watched!r}: its best value cannot be "
            f"compared with {monitor!r}. Resume with monitor={watched!r}, or train "
            "its params afresh to watch another"
        )

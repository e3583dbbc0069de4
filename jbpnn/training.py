"""Training: the whole run as ONE compiled XLA program, with the article's stop rules.

:func:`train` runs epochs in ``lax.while_loop`` and the updates of an epoch in
``lax.scan``; each update is the hand-derived batch gradient
(:func:`jbpnn.network.loss_and_gradient_kernel`) fed to an optimizer from
:mod:`jbpnn.optimizers`. Nothing goes back to Python inside the loop (no host
callbacks), so it can be sharded or ``vmap``-ed.

Modes (``batch_size``):

- ``1``: online training, one update after each example, in the data's order
  (the article's); pass ``shuffle=True`` for a new order every epoch.
- ``k``: mini-batches of ``k``, a new order each epoch from
  ``jax.random.fold_in(key, epoch)``. The last partial batch is padded to ``k``
  rows with zero sample weight (its gradient is the mean over its real
  examples), or dropped with ``drop_last=True``.
- ``None``: full batch, one update per epoch.

The epoch loss is the mean, over the examples seen in the epoch, of each
example's error ``E`` measured by the batch that used it, *before* that batch's
update (as the article and scikit-learn accumulate it). In full-batch mode it is
therefore the loss of the params at the start of the epoch.

Stop rules, checked on the device after every epoch, first match wins:

1. ``"diverged"``: the epoch loss or a param is NaN/inf. The params (and
   optimizer state) from the start of that epoch are returned, never NaN.
2. ``"weight_change_below_threshold"`` (the article's rule 1): every
   ``|delta w|`` (weights and biases, every update of the epoch) is below
   ``min_weight_change``.
3. ``"loss_below_tol"`` (the article's rule 2): the epoch loss is below ``tol``.
4. ``"no_validation_improvement"``: the validation loss has not improved on its
   best by at least ``validation_tol`` for ``n_iter_no_change`` epochs in a row
   (scikit-learn's ``n_iter_no_change``). The returned params are then the ones
   with the best validation loss, as scikit-learn's ``early_stopping`` keeps.
5. ``"max_epochs"`` (the article's rule 3): ``epochs`` have run.

For ``jax.vmap`` over params, keys or optimizer hyperparameters (the later
``train_many``), use the pure pieces: :func:`train_config` (checks and static
settings), :func:`make_train_fn` (``init``, ``run``) and
:func:`result_from_state`; see :func:`make_train_fn` for an example.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jbpnn.network import check_batch, loss_and_gradient_kernel, loss_kernel, predict_kernel
from jbpnn.optimizers import Optimizer, apply_updates
from jbpnn.params import MLP

Array = jax.Array

STOP_REASONS = (
    "max_epochs",
    "loss_below_tol",
    "weight_change_below_threshold",
    "no_validation_improvement",
    "diverged",
)
_RUNNING = -1
_STOP = {name: i for i, name in enumerate(STOP_REASONS)}


# ---------------------------------------------------------------- static settings and carry
class TrainConfig(NamedTuple):
    """Static settings of the compiled loop (hashable: part of the jit cache key)."""

    epochs: int
    n_examples: int
    batch_size: int  # examples per update; n_examples for full batch
    n_batches: int  # updates per epoch
    shuffle: bool
    tol: float | None
    min_weight_change: float | None
    n_iter_no_change: int | None
    validation_tol: float
    has_validation: bool


class LoopState(NamedTuple):
    """Carry of the epoch loop; the history arrays have length ``epochs``, NaN past the end."""

    epoch: Array  # epochs run so far, int32
    params: MLP
    opt_state: Any
    stop: Array  # index into STOP_REASONS, -1 while running
    loss: Array  # (epochs,) epoch loss
    max_weight_change: Array  # (epochs,) max |delta w| over the epoch's updates
    val_loss: Array  # (epochs,)
    val_accuracy: Array  # (epochs,)
    best_params: MLP | None  # only with early stopping
    best_val_loss: Array
    best_epoch: Array  # 1-based epoch of best_params, 0 before any
    bad_epochs: Array  # epochs in a row without validation improvement


# ---------------------------------------------------------------- the compiled loop
def _all_finite(tree: Any) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _tree_where(cond: Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _max_abs(tree: Any) -> Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)]))


def shuffle_order(key: Array, n: int) -> Array:
    """A random permutation of ``range(n)``: the mini-batch order of one epoch.

    For ``n <= 2**16`` it is ONE sort of ``n`` packed ``uint32`` keys, ``(random
    high bits) | index``, whose low bits are the permutation: on XLA's CPU backend
    that is 4x cheaper than ``jax.random.permutation`` (two rounds of a key/value
    sort), which cost more than the 57 updates of a digits epoch
    (``experiments/bench.py``, profile 1). Indices whose random high bits collide
    (``32 - bit_length(n - 1)`` random bits: about 0.8 pairs per shuffle for
    ``n = 1797``) keep their relative order, a bias no training run can see.
    Larger ``n`` uses ``jax.random.permutation``.
    """
    low = max(1, (n - 1).bit_length())  # bits that hold an index
    if n > 2**16:
        return jax.random.permutation(key, n)
    high = jnp.uint32((0xFFFFFFFF >> low) << low)
    packed = (jax.random.bits(key, (n,), jnp.uint32) & high) | jnp.arange(n, dtype=jnp.uint32)
    return (lax.sort(packed) & jnp.uint32((1 << low) - 1)).astype(jnp.int32)


def _epoch_batches(
    X: Array, Y: Array, key: Array, epoch: Array, config: TrainConfig
) -> tuple[Array, Array, Array]:
    """This epoch's batches: ``(n_batches, batch_size, .)`` inputs, targets and sample weights."""
    n, k, nb = config.n_examples, config.batch_size, config.n_batches
    used = nb * k  # > n: the last batch is padded; < n: drop_last
    if config.shuffle:
        order = shuffle_order(jax.random.fold_in(key, epoch), n)
    else:
        order = jnp.arange(n)
    weight = jnp.ones((n,), X.dtype)
    if used > n:
        order = jnp.concatenate([order, jnp.zeros((used - n,), order.dtype)])
        weight = jnp.concatenate([weight, jnp.zeros((used - n,), X.dtype)])  # padding: weight 0
    order, weight = order[:used], weight[:used]
    if config.shuffle or used != n:
        X, Y = X[order], Y[order]
    return X.reshape(nb, k, -1), Y.reshape(nb, k, -1), weight.reshape(nb, k)


def _accuracy_kernel(params: MLP, X: Array, Y: Array) -> Array:
    """Fraction of rows whose predicted class matches ``Y``'s (argmax; one unit: ``>= 0.5``)."""
    out = predict_kernel(params, X)
    if out.shape[1] == 1:
        return jnp.mean((out[:, 0] >= 0.5) == (Y[:, 0] >= 0.5))
    return jnp.mean(jnp.argmax(out, axis=1) == jnp.argmax(Y, axis=1))


def init_state(params: MLP, optimizer: Optimizer, config: TrainConfig) -> LoopState:
    """The loop's carry before the first epoch."""
    dtype = params.dtype
    nan = jnp.full((config.epochs,), jnp.nan, dtype)
    early = config.n_iter_no_change is not None
    return LoopState(
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        stop=jnp.full((), _RUNNING, jnp.int32),
        loss=nan,
        max_weight_change=nan,
        val_loss=nan,
        val_accuracy=nan,
        best_params=params if early else None,
        best_val_loss=jnp.full((), jnp.inf, dtype),
        best_epoch=jnp.zeros((), jnp.int32),
        bad_epochs=jnp.zeros((), jnp.int32),
    )


def end_epoch(
    s: LoopState,
    params: Any,
    opt_state: Any,
    epoch_loss: Array,
    max_change: Array,
    finite: Array,
    validate: Callable[[Any], tuple[Array, Array]] | None,
    *,
    config: TrainConfig,
    where: Callable[[Array, Any, Any], Any],
    record: Callable[[Array, Array], Array],
) -> LoopState:
    """The end of an epoch, on the device: divergence rollback, stop rules, early stopping.

    Shared by :func:`run_epochs` and :func:`jbpnn.many.train_many` (whose arrays
    carry a leading network axis, so every condition is per network).

    Args:
        s: the state at the start of the epoch.
        params, opt_state: after the epoch's updates.
        epoch_loss, max_change: the epoch's loss and max ``|delta w|``.
        finite: False where the loss or a param became NaN/inf.
        validate: ``params -> (val_loss, val_accuracy)``, or None without validation.
        config: the static settings.
        where: ``(cond, a, b) -> tree`` select (per network for ``train_many``).
        record: ``(history, value) -> history`` with this epoch's entry written.
    """
    params = where(finite, params, s.params)  # diverged: keep the start-of-epoch params
    opt_state = where(finite, opt_state, s.opt_state)

    stop_if = [~finite]
    codes = [_STOP["diverged"]]
    if config.min_weight_change is not None:  # article rule 1
        stop_if.append(max_change < config.min_weight_change)
        codes.append(_STOP["weight_change_below_threshold"])
    if config.tol is not None:  # article rule 2
        stop_if.append(epoch_loss < config.tol)
        codes.append(_STOP["loss_below_tol"])

    val_loss, val_acc = s.val_loss, s.val_accuracy
    best_params, best_val, best_epoch, bad = (
        s.best_params,
        s.best_val_loss,
        s.best_epoch,
        s.bad_epochs,
    )
    if validate is not None:
        vl, va = validate(params)
        val_loss, val_acc = record(val_loss, vl), record(val_acc, va)
        if config.n_iter_no_change is not None:
            bad = jnp.where(vl < best_val - config.validation_tol, 0, bad + 1)
            better = vl < best_val
            best_params = where(better, params, best_params)
            best_epoch = jnp.where(better, s.epoch + 1, best_epoch)
            best_val = jnp.where(better, vl, best_val)
            stop_if.append(bad >= config.n_iter_no_change)
            codes.append(_STOP["no_validation_improvement"])

    stop = jnp.select(stop_if, [jnp.int32(c) for c in codes], jnp.int32(_RUNNING))
    return LoopState(
        epoch=s.epoch + 1,
        params=params,
        opt_state=opt_state,
        stop=stop,
        loss=record(s.loss, epoch_loss),
        max_weight_change=record(s.max_weight_change, max_change),
        val_loss=val_loss,
        val_accuracy=val_acc,
        best_params=best_params,
        best_val_loss=best_val,
        best_epoch=best_epoch,
        bad_epochs=bad,
    )


def run_epochs(
    state: LoopState,
    X: Array,
    Y: Array,
    key: Array,
    X_val: Array | None,
    Y_val: Array | None,
    until: ArrayLike,
    *,
    config: TrainConfig,
    optimizer: Optimizer,
) -> LoopState:
    """Run epochs from ``state.epoch`` until ``until`` epochs in all, or a stop rule fires.

    Pure and traceable: ``lax.while_loop`` over epochs, ``lax.scan`` over batches.
    Calling it twice with ``until = 10`` then ``until = 20`` gives the same state
    as one call with ``until = 20``.
    """

    def one_update(carry, batch):
        params, opt_state = carry
        xb, yb, sb = batch
        batch_loss, grads = loss_and_gradient_kernel(params, xb, yb, sb)  # hand-derived dE/dtheta
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = apply_updates(params, updates)  # p + u
        # max |delta w| only when the article's rule 1 needs it: it reads every update
        change = (
            _max_abs(updates)
            if config.min_weight_change is not None
            else jnp.zeros((), batch_loss.dtype)
        )
        return (params, opt_state), (batch_loss, jnp.sum(sb), change)

    def one_epoch(s: LoopState) -> LoopState:
        e = s.epoch
        batches = _epoch_batches(X, Y, key, e, config)
        (params, opt_state), (losses, counts, changes) = lax.scan(
            one_update, (s.params, s.opt_state), batches
        )
        epoch_loss = jnp.sum(losses * counts) / jnp.sum(counts)
        max_change = jnp.max(changes)

        finite = jnp.isfinite(epoch_loss) & _all_finite(params)

        def validate(params: MLP) -> tuple[Array, Array]:
            vl = loss_kernel(params, X_val, Y_val)
            return vl, _accuracy_kernel(params, X_val, Y_val).astype(vl.dtype)

        return end_epoch(
            s,
            params,
            opt_state,
            epoch_loss,
            max_change,
            finite,
            validate if config.has_validation else None,
            config=config,
            where=_tree_where,
            record=lambda history, value: history.at[e].set(value),
        )

    def running(s: LoopState) -> Array:
        return (s.epoch < until) & (s.stop == _RUNNING)

    return lax.while_loop(running, one_epoch, state)


_run_jit = jax.jit(run_epochs, static_argnames=("config", "optimizer"))


def make_train_fn(
    config: TrainConfig, optimizer: Optimizer
) -> tuple[Callable[[MLP], LoopState], Callable[..., LoopState]]:
    """The pure ``(init, run)`` pair behind :func:`train`, for ``jit`` and ``vmap``.

    ``init(params) -> state``; ``run(state, X, Y, key, X_val=None, Y_val=None,
    until=config.epochs) -> state``. Neither is jitted nor checks its inputs:
    check with :func:`train_config` and :func:`jbpnn.network.check_batch` first.
    Build the optimizer *inside* the mapped function to map over its
    hyperparameters::

        config = train_config(len(X), epochs=100, batch_size=32)

        def one(params, key, lr):
            init, run = make_train_fn(config, sgd(lr))
            return run(init(params), X, Y, key)

        states = jax.jit(jax.vmap(one))(stacked_params, keys, lrs)
        results = [result_from_state(jax.tree.map(lambda a: a[i], states), config)
                   for i in range(len(lrs))]
    """

    def init(params: MLP) -> LoopState:
        return init_state(params, optimizer, config)

    def run(
        state: LoopState,
        X: Array,
        Y: Array,
        key: Array,
        X_val: Array | None = None,
        Y_val: Array | None = None,
        until: ArrayLike | None = None,
    ) -> LoopState:
        until = config.epochs if until is None else until
        return run_epochs(state, X, Y, key, X_val, Y_val, until, config=config, optimizer=optimizer)

    return init, run


# ---------------------------------------------------------------- result
@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: the final params; with early stopping (``n_iter_no_change``) the
            params of the epoch with the best validation loss (``best_epoch``);
            after divergence, the last finite params (from before epoch ``diverged_at``).
        history: NumPy arrays, one entry per epoch run: ``loss`` (the epoch loss),
            ``max_weight_change`` (max ``|delta w|`` over the epoch's updates; only
            with ``min_weight_change``, which is the one rule that needs it) and,
            with a validation set, ``val_loss`` and ``val_accuracy``.
        epochs_run: epochs run, the diverged one included.
        stop_reason: one of :data:`STOP_REASONS`.
        diverged_at: the 1-based epoch whose loss or params became NaN/inf, or None.
        best_epoch: the 1-based epoch of ``params`` under early stopping, else None.
        elapsed: wall-clock seconds, compilation included.
    """

    params: MLP
    history: dict[str, np.ndarray]
    epochs_run: int
    stop_reason: str
    diverged_at: int | None = None
    best_epoch: int | None = None
    elapsed: float = 0.0

    @property
    def final_loss(self) -> float:
        """The last finite epoch loss (NaN if none)."""
        finite = self.history["loss"][np.isfinite(self.history["loss"])]
        return float(finite[-1]) if finite.size else math.nan

    def summary(self) -> str:
        lines = [
            f"stopped: {self.stop_reason} after {self.epochs_run} epoch(s) in {self.elapsed:.2f} s",
            f"final loss: {self.final_loss:.6g}",
        ]
        if "val_loss" in self.history and self.epochs_run:
            # Validation figures of the returned params: the best epoch's, or the last one's.
            at = (self.best_epoch or self.epochs_run) - 1
            which = "best, " if self.best_epoch is not None else ""
            lines.append(
                f"validation ({which}epoch {at + 1}): loss {self.history['val_loss'][at]:.6g}, "
                f"accuracy {self.history['val_accuracy'][at]:.4f}"
            )
        if self.diverged_at is not None:
            lines.append(
                f"diverged at epoch {self.diverged_at}: loss or params became NaN/inf; "
                f"params are the last finite ones, from before that epoch"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def result_from_state(state: LoopState, config: TrainConfig, elapsed: float = 0.0) -> TrainResult:
    """Turn a final (un-batched) :class:`LoopState` into a :class:`TrainResult`."""
    n = int(state.epoch)
    stop = int(state.stop)
    reason = STOP_REASONS[_STOP["max_epochs"] if stop == _RUNNING else stop]
    history = {
        "loss": np.asarray(state.loss)[:n],
        **(
            {"max_weight_change": np.asarray(state.max_weight_change)[:n]}
            if config.min_weight_change is not None
            else {}
        ),
    }
    if config.has_validation:
        history["val_loss"] = np.asarray(state.val_loss)[:n]
        history["val_accuracy"] = np.asarray(state.val_accuracy)[:n]
    early = config.n_iter_no_change is not None and int(state.best_epoch) > 0
    return TrainResult(
        params=state.best_params if early else state.params,
        history=history,
        epochs_run=n,
        stop_reason=reason,
        diverged_at=n if reason == "diverged" else None,
        best_epoch=int(state.best_epoch) if early else None,
        elapsed=elapsed,
    )


# ---------------------------------------------------------------- checks
def _check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {low}{none}, got {value!r}")


def _check_threshold(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a non-negative number or None, got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)


def train_config(
    n_examples: int,
    *,
    epochs: int = 200,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
    tol: float | None = None,
    min_weight_change: float | None = None,
    n_iter_no_change: int | None = None,
    validation_tol: float = 1e-4,
    has_validation: bool = False,
) -> TrainConfig:
    """Check the settings of :func:`train` and return its static :class:`TrainConfig`.

    Raises:
        ValueError: naming the bad setting and what was expected.
    """
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1, allow_none=True)
    if batch_size is not None and batch_size > n_examples:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {n_examples} training examples; "
            "use batch_size=None for full-batch training"
        )
    k = n_examples if batch_size is None else int(batch_size)
    n_batches = n_examples // k if drop_last else -(-n_examples // k)
    if shuffle is None:  # the article's online mode keeps the order; mini-batches shuffle
        shuffle = 1 < k < n_examples
    _check_int("n_iter_no_change", n_iter_no_change, 1, allow_none=True)
    if n_iter_no_change is not None and not has_validation:
        raise ValueError(
            "n_iter_no_change (early stopping) watches the validation loss: "
            "pass X_val and Y_val too"
        )
    return TrainConfig(
        epochs=int(epochs),
        n_examples=int(n_examples),
        batch_size=k,
        n_batches=int(n_batches),
        shuffle=bool(shuffle) and k < n_examples,
        tol=_check_threshold("tol", tol),
        min_weight_change=_check_threshold("min_weight_change", min_weight_change),
        n_iter_no_change=None if n_iter_no_change is None else int(n_iter_no_change),
        validation_tol=_check_threshold("validation_tol", validation_tol),
        has_validation=bool(has_validation),
    )


def check_training_data(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    X_val: ArrayLike | None,
    Y_val: ArrayLike | None,
    *,
    check_finite: bool = True,
    **settings: Any,
) -> tuple[Array, Array, Array | None, Array | None, TrainConfig]:
    """Check the data and settings of a training run before anything is traced.

    Shared by :func:`train` and :func:`jbpnn.many.train_many`. ``settings`` are
    :func:`train_config`'s keyword arguments.

    Returns:
        ``(X, Y, X_val, Y_val, config)``, the arrays cast to the params' dtype.
    """
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite)
    if X.shape[0] == 0:
        raise ValueError("X has no examples; training needs at least one")
    if (X_val is None) != (Y_val is None):
        raise ValueError("give both X_val and Y_val, or neither")
    if X_val is not None:
        X_val, Y_val, _ = check_batch(params, X_val, Y_val, check_finite=check_finite)
        if X_val.shape[0] == 0:
            raise ValueError("X_val has no examples")
    config = train_config(X.shape[0], has_validation=X_val is not None, **settings)
    return X, Y, X_val, Y_val, config


def _as_key(key: Any) -> Array:
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    return key


# ---------------------------------------------------------------- train
def train(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    optimizer: Optimizer,
    epochs: int = 200,
    batch_size: int | None = None,
    key: ArrayLike | int | None = None,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    tol: float | None = None,
    min_weight_change: float | None = None,
    n_iter_no_change: int | None = None,
    validation_tol: float = 1e-4,
    shuffle: bool | None = None,
    drop_last: bool = False,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    progress_every: int | None = None,
    check_finite: bool = True,
) -> TrainResult:
    """Train ``params`` on ``(X, Y)`` in one compiled program; see the module docstring.

    Args:
        params: the network, e.g. from :func:`jbpnn.params.init_params`.
        X: inputs, shape ``(n, n_in)``.
        Y: targets, shape ``(n, n_out)`` (one-hot for classes).
        optimizer: e.g. ``sgd(0.1)``, ``momentum(0.5, 0.9, variant="article")``.
        epochs: maximum number of epochs (the article's rule 3).
        batch_size: ``1`` online, ``k`` mini-batches, ``None`` full batch.
        key: a ``jax.random`` key or an int seed for the mini-batch order
            (default seed 0: runs are reproducible).
        X_val, Y_val: optional validation set; adds ``val_loss`` and
            ``val_accuracy`` to the history.
        tol: stop when the epoch loss is below it (the article's rule 2).
        min_weight_change: stop when every ``|delta w|`` of an epoch is below it
            (the article's rule 1).
        n_iter_no_change: stop after this many epochs in a row whose validation
            loss did not beat the best by ``validation_tol``; the best params are returned.
        validation_tol: the improvement that counts, for ``n_iter_no_change``.
        shuffle: new order every epoch; default True for mini-batches, False for
            online (the article's order) and full batch.
        drop_last: drop the last partial mini-batch instead of padding it.
        progress: called as ``progress(info)`` after every chunk of
            ``progress_every`` epochs, ``info`` a dict with ``epoch``, ``epochs``,
            ``loss``, ``val_loss`` (or None), ``elapsed`` (seconds) and ``stop_reason``
            (None while running). :func:`print_progress` prints one line.
        progress_every: epochs per compiled chunk (default: ``epochs // 10``
            when ``progress`` is given). The chunks reuse one compiled function and
            give the same result as one run.
        check_finite: raise on NaN/inf in the data before training.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: on bad data shapes, settings or optimizer, before any tracing.
    """
    start = time.perf_counter()
    if not isinstance(optimizer, Optimizer):
        init, update = getattr(optimizer, "init", None), getattr(optimizer, "update", None)
        if not (callable(init) and callable(update)):
            raise ValueError(
                "optimizer must be an Optimizer (init, update), e.g. jbpnn.optimizers.sgd(0.1) "
                f"or get_optimizer('momentum', lr=0.1, m=0.9); got {optimizer!r}"
            )
        optimizer = Optimizer(init, update)
    if not isinstance(params, MLP):
        raise ValueError(f"params must be an MLP (see init_params), got {type(params).__name__}")
    X, Y, X_val, Y_val, config = check_training_data(
        params,
        X,
        Y,
        X_val,
        Y_val,
        check_finite=check_finite,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        tol=tol,
        min_weight_change=min_weight_change,
        n_iter_no_change=n_iter_no_change,
        validation_tol=validation_tol,
    )
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a callable taking a dict, got {progress!r}")
    _check_int("progress_every", progress_every, 1, allow_none=True)
    if progress_every is None:
        progress_every = max(1, config.epochs // 10) if progress is not None else config.epochs
    key = _as_key(key)

    run = partial(_run_jit, config=config, optimizer=optimizer)
    state = init_state(params, optimizer, config)
    for until in range(progress_every, config.epochs + progress_every, progress_every):
        # Same compiled function for every chunk: `until` is a traced argument.
        state = run(state, X, Y, key, X_val, Y_val, np.int32(min(until, config.epochs)))
        if progress is None:
            if until < config.epochs and int(state.stop) != _RUNNING:
                break
            continue
        info = _progress_info(state, config, start)  # the one host transfer per chunk
        progress(info)
        if info["stop_reason"] is not None:
            break
    return result_from_state(state, config, time.perf_counter() - start)


def _progress_info(state: LoopState, config: TrainConfig, start: float) -> dict[str, Any]:
    epoch, stop, loss, val_loss = jax.device_get(
        (state.epoch, state.stop, state.loss, state.val_loss)
    )
    epoch, stop = int(epoch), int(stop)
    done = stop != _RUNNING or epoch >= config.epochs
    return {
        "epoch": epoch,
        "epochs": config.epochs,
        "loss": float(loss[epoch - 1]),
        "val_loss": float(val_loss[epoch - 1]) if config.has_validation else None,
        "elapsed": time.perf_counter() - start,
        "stop_reason": STOP_REASONS[max(stop, 0)] if done else None,
    }


def print_progress(info: dict[str, Any]) -> None:
    """A ``progress`` callback for :func:`train` that prints one line per chunk."""
    val = f"  val_loss {info['val_loss']:.6g}" if info.get("val_loss") is not None else ""
    done = f"  ({info['stop_reason']})" if info.get("stop_reason") else ""
    print(
        f"epoch {info['epoch']:>{len(str(info['epochs']))}}/{info['epochs']}  "
        f"loss {info['loss']:.6g}{val}  {info['elapsed']:.1f} s{done}",
        flush=True,
    )


# ---------------------------------------------------------------- helpers
def accuracy(params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True) -> float:
    """Fraction of examples classified right.

    The predicted class is the argmax of the outputs, or for a single output
    unit ``output >= 0.5``.

    Args:
        params: the network.
        X: inputs, shape ``(n, n_in)``.
        Y: targets, shape ``(n, n_out)`` (one-hot, or 0/1 for one unit), or
            integer labels of shape ``(n,)``.
    """
    Y = np.asarray(Y)
    if Y.ndim == 1:
        labels = Y
        if params.n_out == 1:
            Y = labels.reshape(-1, 1)
        else:
            if labels.size and (labels.min() < 0 or labels.max() >= params.n_out):
                raise ValueError(
                    f"labels must lie in 0..{params.n_out - 1} for {params.n_out} outputs, "
                    f"got values from {labels.min()} to {labels.max()}"
                )
            Y = np.eye(params.n_out)[labels.astype(int)]
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite)
    return float(_accuracy_jit(params, X, Y))


def evaluate(
    params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True
) -> dict[str, float]:
    """``{"loss": mean error, "accuracy": ...}`` on a data set (see :func:`accuracy`)."""
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite)
    return {"loss": float(_loss_jit(params, X, Y)), "accuracy": float(_accuracy_jit(params, X, Y))}


_accuracy_jit = jax.jit(_accuracy_kernel)
_loss_jit = jax.jit(loss_kernel)

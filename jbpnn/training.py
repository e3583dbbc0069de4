"""Training: ONE pure epoch step over a :class:`TrainState`, and the loop around it.

One job, the compiled training loop, in one module (the epoch
step, the loop, the checks of a run and ``train`` read best side by side). Its
settings live beside it: the stop rules in :mod:`jbpnn.stopping`, the config,
state and result in :mod:`jbpnn.state`, devices and meshes in :mod:`jbpnn.devices`.

The pieces, from the inside out:

- :func:`epoch_batches` cuts one epoch's mini-batches out of the data (its own
  order from ``jax.random.fold_in(state.key, epoch)``).
- :func:`train_epoch` is the epoch step: ``lax.scan`` over the batches, each
  update the hand-derived batch gradient (:func:`jbpnn.network.loss_and_gradient_kernel`,
  or your ``grad_fn``) fed to an optimizer from :mod:`jbpnn.optimizers`; then the
  stop rules and the history. Pure and jittable; a state that has stopped comes
  back unchanged.
- :func:`run_epochs` is the one loop: ``lax.while_loop`` over epochs until a
  traced epoch bound or a stop rule. With ``networks="shared"`` or ``"own"`` the
  state has a leading network axis and the epoch step is ``jax.vmap``-ed over it:
  that is :func:`jbpnn.many.train_many`. With a shared data order the mini-batches
  stay un-batched, so XLA sees one large product per layer for all networks, and
  the weights ride the batch loop transposed (``swap_carry``), the layout that
  product reads.
- :func:`train` checks its arguments, builds the state (or takes one to resume)
  and runs the compiled loop in chunks of at most ``history_chunk`` epochs,
  copying each chunk's history to the host.

Everything that is a *value* is data: the optimizer's hyperparameters live in its
state (:mod:`jbpnn.optimizers`), the stop-rule thresholds are traced arguments
(:class:`StopRules`), the epoch bound is traced, and the history is a ring buffer
of ``history_chunk`` epochs whose memory does not grow with ``epochs``. Only
shapes and kinds are static (:class:`TrainConfig`): a second run with another
learning rate, momentum, tolerance, epoch count or data of the same shape reuses
the compiled program.

Modes (``batch_size``):

- ``1``: online training, one update after each example, in the data's order
  (the article's); pass ``shuffle=True`` for a new order every epoch.
- ``k``: mini-batches of ``k``, a new order each epoch. The last partial batch is
  padded to ``k`` rows with zero sample weight (its gradient is the mean over its
  real examples), or dropped with ``drop_last=True``.
- ``None``: full batch, one update per epoch. ``train`` runs a one-batch epoch of
  at most ``ROW_BUCKETS_UP_TO`` rows on a bucket of rows (weight-0 padding, see
  :func:`row_bucket`): data of another length in the bucket (a stream of
  ``partial_fit`` chunks) reuses the compiled program.

The epoch loss is the (sample-weighted) mean, over the examples seen in the
epoch, of each example's error ``E`` measured by the batch that used it,
*before* that batch's update (as the article and scikit-learn accumulate it). In
full-batch mode it is therefore the loss of the params at the start of the epoch.

Stop rules, checked on the device after every epoch, first match wins:

1. ``"diverged"``: the epoch loss or a param is NaN/inf, or the run blew up
   while still finite: the epoch loss exceeds ``max_loss_growth`` (default 1e6)
   times the *reference loss*, or a param's magnitude exceeds ``max_abs_param``
   (default 1e9; a sigmoid or tanh unit saturates long before). The reference is
   the loss of the starting params on the run's first mini-batch (the loss the
   batch loop measures before that batch's update, so a first epoch that already
   blows up is caught; in full-batch mode the loss over the whole training set),
   or the targets' own spread ``1/2 mean sum_k (T_k - mean T_k)^2`` when that is
   larger (a start that fits well, e.g. fine-tuning, is no hair trigger): a
   network a million times worse than predicting the mean target has diverged.
   It costs no pass of its own over the data (:func:`divergence_reference`). The
   params (and optimizer state) from the start of that epoch are kept, never NaN. In
   full-batch mode the epoch loss is that of the starting params, so a finite blow-up
   shows one epoch after the update that made it, and the params kept are the ones
   whose loss blew up (``final_loss``, the epoch before's, is not theirs).
   A bound set to None is not compiled.
2. ``"weight_change_below_threshold"`` (the article's rule 1): every
   ``|delta w|`` (weights and biases, every update of the epoch) is below
   ``min_weight_change``.
3. ``"loss_below_tol"`` (the article's rule 2): the epoch loss is below ``tol``.
4. ``"no_loss_improvement"``: the epoch loss has not beaten its best by at
   least ``loss_tol`` for ``loss_patience`` epochs in a row (scikit-learn's
   ``tol`` / ``n_iter_no_change`` without early stopping).
5. ``"no_validation_improvement"``: the monitored validation value (the
   validation loss, or with ``monitor="val_accuracy"`` the error rate
   ``1 - accuracy``, with ``monitor="val_r2"`` ``1 - R^2``) has not beaten its
   best by at least ``validation_tol`` for ``n_iter_no_change`` epochs in a row
   (scikit-learn's ``early_stopping``; ``validation_tol`` 1e-4 by default, 0 with
   ``lm`` and ``br``, whose ``n_iter_no_change`` is MATLAB's ``max_fail``). The
   result's params are then the ones of the best validation epoch (any improvement
   counts there), as scikit-learn keeps.
6. ``"max_epochs"`` (the article's rule 3): ``epochs`` have run. The state is
   still *running*: train it again to go on.

With ``lr_factor`` (scikit-learn's ``learning_rate="adaptive"``: 0.2), rules 4
and 5 first reduce the learning rate instead: ``lr <- lr_factor * lr``, the
count starts again, and the run stops only when a plateau comes with
``lr <= min_lr`` already. The reductions so far are ``state.lr_scale`` (the
updates use ``lr * lr_scale``), carried when a run resumes.

Resuming: ``train(result.state, X, Y, optimizer=..., epochs=k)`` (or
``train(result, X, Y, epochs=k)``) runs ``k`` more epochs from where the state
stopped, with its optimizer moments, step count (schedules), data-order key and
early-stopping counters: 10 + 10 epochs give exactly the state of one 20-epoch run
with the same ``batch_size``, ``shuffle``, ``drop_last`` and validation set, given
again (a resume from a result with others warns). A state stopped by a rule stays
stopped: its resume trains no epoch, and warns (start a new run from ``result.params``
to go on).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jbpnn.checks import INT32_MAX, as_key, check_int, host_value, to_device
from jbpnn.compilation_cache import default_compilation_cache
from jbpnn.devices import (
    agree_across_processes,
    call_compiled,
    compiler_options,
    data_parallel,
    replicate,
    resolve_mesh,
    spans_processes,
    to_host,
    under_own_mesh,
    unsplit,
)
from jbpnn.jacobian import (
    RESIDUAL_LOSSES,
    n_params,
    normal_equations_kernel,
    replaced_residual_loss,
)
from jbpnn.lbfgs import data_fingerprint
from jbpnn.memory import (
    EnsembleTooLarge,
    available_memory,
    format_bytes,
    normal_equations_bytes,
)
from jbpnn.network import (
    GradFn,
    accuracy_kernel,
    check_batch,
    loss_and_gradient_kernel,
    loss_kernel,
    r2_kernel,
)
from jbpnn.optimizers import Objective, Optimizer, apply_updates, weight_squares
from jbpnn.params import MLP, Layer
from jbpnn.process import guarded
from jbpnn.state import (
    HISTORY_CHUNK,
    TrainConfig,
    TrainResult,
    TrainState,
    batching,
    init_state,
    own_nan_markers,
    resume_state,
    state_result,
    train_config,
)
from jbpnn.stopping import (
    CODE,
    MONITORS,
    NO_MONITOR,
    RUNNING,
    STOP_REASONS,
    Stopping,
    StopRules,
    stop_reason_name,
)

__all__ = [
    "HISTORY_CHUNK",
    "RUNNING",
    "STOP_REASONS",
    "StopRules",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "accuracy",
    "epoch_batches",
    "evaluate",
    "init_state",
    "Prepared",
    "prepare_training",
    "row_bucket",
    "ROW_BUCKETS_UP_TO",
    "SMALLEST_BUCKET",
    "run_chunks",
    "batching",
    "print_progress",
    "divergence_reference",
    "run_epochs",
    "shuffle_order",
    "state_result",
    "static_kind",
    "stop_reason_name",
    "train",
    "train_config",
    "train_epoch",
]

Array = jax.Array


# ---------------------------------------------------------------- the epoch step
def _tree_where(cond: Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


MAX_ABS_JOINED = 2**15  # the most elements _max_abs reduces in one joined reduction


def _max_abs(tree: Any) -> Array:
    """The largest ``|x|`` over the leaves; inf if any is NaN or inf.

    NaN counts as inf: XLA's CPU reductions of 4096 or more elements drop a NaN from a
    maximum (``jnp.max`` of 4096 ones and one NaN is 1.0 under jax 0.10.2 and 0.11.2; of
    4095, NaN), so the divergence rule would miss NaN params that the epoch's last update
    made (the epoch loss, measured before each update, is still finite then); an inf
    survives any maximum.

    Up to ``MAX_ABS_JOINED`` elements in all, one reduction over the leaves laid end to
    end (XLA fuses the concatenation into it), else one per leaf: the same value either
    way (a maximum does not round). The joined one makes a smaller program (a 64-64-10
    network's training program: 6 fusions fewer) that runs as fast up to about 26 000
    parameters (64-128-128-10) but not beyond (64-256-256-10, 85 000: 1.2x the epoch
    time), where the per-leaf reductions are library calls. The README's "Cold start and
    streams" gives what it changed in compile time.
    """

    def magnitude(x: Array) -> Array:
        return jnp.where(jnp.isnan(x), jnp.inf, jnp.abs(x))

    leaves = jax.tree.leaves(tree)
    if sum(x.size for x in leaves) <= MAX_ABS_JOINED:
        return jnp.max(magnitude(jnp.concatenate([jnp.ravel(x) for x in leaves])))
    return jnp.max(jnp.stack([jnp.max(magnitude(x)) for x in leaves]))


def _swap_weights(tree: Any) -> Any:
    """Every :class:`Layer`'s ``w`` with its last two axes swapped (exact, its own inverse)."""
    return jax.tree.map(
        lambda n: n._replace(w=jnp.swapaxes(n.w, -1, -2)) if isinstance(n, Layer) else n,
        tree,
        is_leaf=lambda n: isinstance(n, Layer),
    )


def shuffle_order(key: Array, n: int, n_real: Array | None = None) -> Array:
    """A random permutation of ``range(n)``: the mini-batch order of one epoch.

    For ``n <= 2**16`` it is ONE sort of ``n`` packed ``uint32`` keys, ``(random
    high bits) | index``, whose low bits are the permutation: on XLA's CPU backend
    that is several times cheaper than ``jax.random.permutation`` (two rounds of a
    key/value sort). Indices whose random high bits collide
    (``32 - bit_length(n - 1)`` random bits: about 0.8 pairs per shuffle for
    ``n = 1797``) keep their relative order, a bias no training run can see.
    Larger ``n`` uses ``jax.random.permutation``.

    ``n_real`` (traced, ``<= n``): rows ``n_real ..`` are padding and come last;
    the first ``n_real`` entries are then ``shuffle_order(key, n_real)`` exactly
    whenever ``n`` and ``n_real`` need the same number of index bits and
    ``n <= 2**16`` (JAX's random bits of a prefix do not depend on the length).
    """
    low = max(1, (n - 1).bit_length())  # bits that hold an index
    index = jnp.arange(n, dtype=jnp.uint32)
    if n > 2**16:
        if n_real is None:
            return jax.random.permutation(key, n)
        bits = jnp.where(index < n_real, jax.random.bits(key, (n,), jnp.uint32), 0xFFFFFFFF)
        return lax.sort((bits, index.astype(jnp.int32)), num_keys=1)[1]
    high = jnp.uint32((0xFFFFFFFF >> low) << low)
    bits = jax.random.bits(key, (n,), jnp.uint32)
    if n_real is not None:  # padding rows: all high bits set, so they sort after every real row
        bits = jnp.where(index < n_real, bits, high)
    packed = (bits & high) | index
    return (lax.sort(packed) & jnp.uint32((1 << low) - 1)).astype(jnp.int32)


def epoch_batches(
    X: Array,
    Y: Array,
    weight: Array | None,
    key: Array,
    epoch: Array,
    config: TrainConfig,
    n_real: Array | None = None,
) -> tuple[Array, Array, Array]:
    """One epoch's batches: inputs ``(n_batches, batch_size, n_in)``, targets, sample weights.

    The order is ``shuffle_order(fold_in(key, epoch), n)`` (or the data's order);
    a last partial batch is padded with weight-0 rows. ``weight`` None means all ones.
    ``n_real``: only the first ``n_real`` rows are data (the rest weigh 0 and are
    shuffled to the end, see :func:`shuffle_order`).
    """
    n, k, nb = config.n_examples, config.batch_size, config.n_batches
    used = nb * k  # > n: the last batch is padded; < n: drop_last
    if config.shuffle:
        order = shuffle_order(jax.random.fold_in(key, epoch), n, n_real)
    else:
        order = jnp.arange(n)
    w = jnp.ones((n,), X.dtype) if weight is None else (weight[order] if config.shuffle else weight)
    if used > n:
        order = jnp.concatenate([order, jnp.zeros((used - n,), order.dtype)])
        w = jnp.concatenate([w, jnp.zeros((used - n,), w.dtype)])  # padding rows weigh 0
    order, w = order[:used], w[:used]
    if config.shuffle or used != n:
        X, Y = X[order], Y[order]
    X, Y, w = X.reshape(nb, k, -1), Y.reshape(nb, k, -1), w.reshape(nb, k)
    pad = -k % config.shards  # rows of weight 0, so every device gets an equal share
    if pad:
        X, Y = (jnp.concatenate([a, jnp.zeros((nb, pad, a.shape[2]), a.dtype)], 1) for a in (X, Y))
        w = jnp.concatenate([w, jnp.zeros((nb, pad), w.dtype)], 1)
    return X, Y, w


def train_epoch(
    state: TrainState,
    batches: tuple[Array, Array, Array],
    val: tuple[Array, ...] | None,
    rules: StopRules,
    *,
    config: TrainConfig,
    optimizer: Any,
    grad_fn: GradFn = loss_and_gradient_kernel,
    mesh: Any = None,
    freeze: bool = True,
    swap_carry: bool = False,
) -> TrainState:
    """THE epoch step: one pass over ``batches``, then the stop rules, on the device.

    Pure and jittable; ``jax.vmap`` over a leading network axis of ``state`` (with
    ``batches`` shared or not) trains many networks. A state that has stopped
    (``state.stop != RUNNING``) comes back unchanged.

    Args:
        state: the state at the start of the epoch.
        batches: from :func:`epoch_batches`.
        val: ``(X_val, Y_val)`` or ``(X_val, Y_val, weights)``, or None without validation.
        rules: the thresholds.
        config: the static settings.
        optimizer: an ``(init, update)`` optimizer.
        grad_fn: ``(params, X, Y, sample_weight) -> (mean loss, dE/dtheta)``.
        mesh: ``(mesh, axis)`` to split every mini-batch across (see
            :func:`jbpnn.devices.data_parallel`), or None.
        freeze: return a stopped state unchanged (one select over the state);
            :func:`run_epochs` turns it off for one network, whose loop never runs a
            stopped state.
        swap_carry: carry every ``w`` (of the params and of the optimizer's state)
            through the batch loop with its last two axes swapped, ``(n_out, n_in)``:
            the same values and the same update, only laid out differently between
            updates. The gradient is computed from the params swapped back; a rule that
            updates each weight from its own gradient and state (sgd, momentum, adam,
            rprop) then updates the swapped carry with the gradient swapped to meet it,
            any other rule gets the params and state swapped back and its result swapped
            again. :func:`run_epochs` turns it on for networks sharing their mini-batches
            (:mod:`jbpnn.ensemble`), where XLA then reads each first-layer ``w`` as the
            one shared product needs it instead of transposing it every update (64
            digits networks: 0.9x the epoch time); for networks with their own batches it
            measured slower (1.2x).
    """
    if mesh is not None:
        grad_fn = data_parallel(grad_fn, *mesh)

    relayout = _swap_weights if swap_carry else (lambda tree: tree)  # its own inverse
    # A rule that updates each weight from its own gradient and state alone (the
    # Optimizer kinds without an objective: sgd, momentum, adam, rprop) updates the
    # swapped carry as it lies; only the gradient is swapped to meet it, where swapping
    # the params and state back for the rule made XLA transpose adam's moments on every
    # update.
    elementwise = isinstance(optimizer, Optimizer) and not optimizer.needs_objective
    in_place = swap_carry and elementwise
    # scikit-learn's loss carries (alpha/2) |W|^2 / n_batch of the params before each
    # update: |W|^2 is measured from the updated params, for the next batch, and carried
    # (the first from the epoch's start). Measured from the params an update reads, it
    # was a read XLA could not order before the update, so every update copied each w.
    penalize = getattr(optimizer, "reports_penalty", False)

    def one_update(full_carry, batch):
        carry, squares = (full_carry[:2], full_carry[2]) if penalize else (full_carry, None)
        if in_place:
            carried_params, opt_state = carry
            params = _swap_weights(carried_params)
        else:
            params, opt_state = relayout(carry)
            carried_params = params
        xb, yb, sb = batch

        def evaluate():  # hand-derived dE/dtheta by default
            return _checked_evaluation(grad_fn(params, xb, yb, sb), params, grad_fn)

        carried = getattr(optimizer, "evaluation", None)  # lbfgs: its last line search's (E, g)
        # ... kept with the fingerprint of the data they were evaluated on (a resume on
        # other rows evaluates afresh); full batch: one pass over the data, no copy
        keeps = getattr(optimizer, "carries_evaluation", False)
        data = data_fingerprint(xb, yb, sb) if keeps else None
        if carried is None:
            batch_loss, grads = evaluate()
        else:
            batch_loss, grads = carried(opt_state, params, evaluate, data)
        start = (batch_loss, grads)
        if penalize:  # scikit-learn's loss: E + its L2 term
            batch_loss = batch_loss + optimizer.loss_penalty(squares, opt_state, jnp.sum(sb))
        extra: dict[str, Any] = {}
        if getattr(optimizer, "needs_batch_size", False):  # scikit-learn's alpha / n_batch
            extra["batch_size"] = jnp.sum(sb)
        if config.reduce_lr or config.scaled_lr:  # the plateau rule's reductions: lr * lr_scale
            extra["lr_scale"] = state.lr_scale
        if getattr(optimizer, "needs_objective", False):  # lm: the whole set's E and J^T J
            extra["objective"] = Objective(
                loss=lambda p: loss_kernel(p, xb, yb, sb),
                normal_equations=lambda p: normal_equations_kernel(p, xb, yb, sb),
                loss_and_grad=lambda p: grad_fn(p, xb, yb, sb),  # lbfgs: E and g at trial steps
                start=start,
                data=data,
            )
        if in_place:
            grads = _swap_weights(grads)
        updates, new_opt = optimizer.update(grads, opt_state, carried_params, **extra)
        new_params = apply_updates(carried_params, updates)  # p + u
        # max |delta w| only when the article's rule 1 needs it: it reads every update
        change: tuple[Array, ...] = (_max_abs(updates),) if config.watch_weight_change else ()
        if config.weighted:  # a batch of weight 0 (the user's zeros) changes nothing
            real = jnp.sum(sb) > 0
            new_params, new_opt = _tree_where(
                real, (new_params, new_opt), (carried_params, opt_state)
            )
            # ... and moves no weight (its 0/0 update is NaN, which counted as inf)
            change = tuple(jnp.where(real, c, 0) for c in change)
        new_carry = (new_params, new_opt) if in_place else relayout((new_params, new_opt))
        if penalize:  # |W|^2 is the same in either layout
            new_carry = (*new_carry, weight_squares(new_params))
        return new_carry, (batch_loss, jnp.sum(sb), *change)

    first_carry = relayout((state.params, state.opt_state))
    if penalize:
        first_carry = (*first_carry, weight_squares(state.params))
    carry, (losses, counts, *changes) = lax.scan(one_update, first_carry, batches)
    params, opt_state = relayout(carry[:2])
    if config.weighted:  # the weights' scale: sums of 1e30-weights times a loss overflowed
        # only their ratios matter (never all 0: checked); the barrier keeps XLA from
        # folding the division back behind the product (inf again with one batch)
        counts = lax.optimization_barrier(counts / jnp.max(counts))
    # a 16-bit epoch's row count and sums in float32: 70000 rows overflowed float16 (inf),
    # and the epoch loss read 0
    wide = np.promote_types(losses.dtype, np.float32)
    losses, counts = losses.astype(wide), counts.astype(wide)
    seen = jnp.sum(counts)
    epoch_loss = jnp.sum(jnp.where(counts > 0, losses * counts, 0)) / seen
    max_change = jnp.max(changes[0]) if config.watch_weight_change else None

    # Divergence: NaN/inf in the loss or a param (max |param| is inf then), or a
    # bound that is on (static: a bound that is off is not compiled).
    largest = _max_abs(params)
    finite = jnp.isfinite(epoch_loss) & jnp.isfinite(largest)
    first_loss = state.first_loss
    if config.watch_growth:  # measured in the run's first epoch, from what it computed anyway
        # evaluated every epoch (one pass over the batch targets, cheap); a lax.cond that
        # skips it once known compiled 8% slower (0.60 vs 0.55 s for digits)
        reference = divergence_reference(losses, counts, batches)
        first_loss = jnp.where(jnp.isnan(first_loss), reference, first_loss)
        finite &= ~(epoch_loss > rules.max_loss_growth * first_loss)
    if config.watch_params:
        finite &= ~(largest > rules.max_abs_param)
    # diverged: keep the start-of-epoch params (a cond forwards buffers, selects would copy)
    params, opt_state = lax.cond(
        finite, lambda: (params, opt_state), lambda: (state.params, state.opt_state)
    )

    stop_if = [~finite]  # rule order: first match wins
    codes = [CODE["diverged"]]
    if config.watch_weight_change:  # article rule 1
        assert max_change is not None  # measured under the same switch
        stop_if.append(max_change < rules.min_weight_change)
        codes.append(CODE["weight_change_below_threshold"])
    stop_if.append(epoch_loss < rules.tol)  # article rule 2 (tol -inf: off)
    codes.append(CODE["loss_below_tol"])
    for fired, reason in getattr(optimizer, "stops", lambda s: [])(opt_state):
        stop_if.append(fired)  # the optimizer's own rules (lm: min_grad, mu_max)
        codes.append(CODE[reason])

    slot = state.epoch % config.history_chunk
    record = {"loss": epoch_loss}
    if config.watch_weight_change:
        assert max_change is not None  # measured under the same switch
        record["max_weight_change"] = max_change
    if config.optimizer_history:
        record.update(optimizer.record(opt_state))
    # Plateaus (scikit-learn's counting): an epoch is bad unless it is at least tol below
    # the best (exactly tol below, a tie with tol 0, counts as an improvement, as there)
    plateaus = []  # (stalled, code); with reduce_lr, a stall first reduces lr
    best_loss, loss_bad = state.best_loss, state.loss_bad_epochs
    if config.watch_loss:
        gained = jnp.isfinite(epoch_loss) & (epoch_loss <= best_loss - rules.loss_tol)
        loss_bad = jnp.where(gained, 0, loss_bad + 1)
        best_loss = jnp.where(finite, jnp.minimum(best_loss, epoch_loss), best_loss).astype(
            state.best_loss.dtype
        )
        plateaus.append((loss_bad >= rules.loss_patience, CODE["no_loss_improvement"]))
    best = (state.best_params, state.best_val, state.best_epoch, state.bad_epochs)
    if config.has_validation:
        assert val is not None  # has_validation says it is given
        X_val, Y_val, *weights = val  # (X_val, Y_val) or (X_val, Y_val, weights)
        w_val = weights[0] if weights else None
        vl = loss_kernel(params, X_val, Y_val, w_val)  # the (weighted) mean error
        va = accuracy_kernel(params, X_val, Y_val, w_val)  # float32 at least: exact counts
        record["val_loss"], record["val_accuracy"] = vl, va
        if config.monitor == "val_r2":  # scikit-learn's MLPRegressor's validation score
            record["val_r2"] = r2_kernel(params, X_val, Y_val, w_val)
        if config.early_stopping:
            if config.monitor == "val_loss":  # lower is better
                watched = vl
            elif config.monitor == "val_accuracy":
                watched = 1 - va
            else:
                watched = 1 - record["val_r2"]
            best_params, best_val, best_epoch, bad = best
            gained = jnp.isfinite(watched) & (watched <= best_val - rules.validation_tol)
            bad = jnp.where(gained, 0, bad + 1)
            better = watched < best_val  # the best params follow any improvement
            best = (
                _tree_where(better, params, best_params),
                jnp.where(better, watched, best_val).astype(best_val.dtype),
                jnp.where(better, state.epoch + 1, best_epoch),
                bad,
            )
            plateaus.append((bad >= rules.n_iter_no_change, CODE["no_validation_improvement"]))
    lr_scale = state.lr_scale
    if config.reduce_lr:  # scikit-learn's adaptive: lr / 5 on a plateau, until lr <= 1e-6
        stalled = jnp.any(jnp.stack([p for p, _ in plateaus]))
        lr = state.opt_state.hyperparams["lr"]
        reduce = stalled & finite & (lr * state.lr_scale.astype(lr.dtype) > rules.min_lr)
        lr_scale = jnp.where(reduce, lr_scale * rules.lr_factor, lr_scale)
        loss_bad = jnp.where(reduce, 0, loss_bad)
        best = (*best[:3], jnp.where(reduce, 0, best[3]))
        plateaus = [(p & ~reduce, code) for p, code in plateaus]
        record["lr_scale"] = lr_scale
    for stalled, code in plateaus:
        stop_if.append(stalled)
        codes.append(code)

    history = {k: buf.at[slot].set(record[k].astype(buf.dtype)) for k, buf in state.history.items()}
    new = TrainState(
        params=params,
        opt_state=opt_state,
        key=state.key,
        epoch=state.epoch + 1,
        # updates made: a batch of weight 0 makes none, a diverged epoch's are undone
        step=state.step + jnp.where(finite, jnp.sum(counts > 0), 0).astype(state.step.dtype),
        stop=jnp.select(stop_if, [jnp.int32(c) for c in codes], jnp.int32(RUNNING)),
        best_params=best[0],
        best_val=best[1],
        best_epoch=best[2],
        bad_epochs=best[3],
        best_loss=best_loss,
        loss_bad_epochs=loss_bad,
        lr_scale=lr_scale,
        first_loss=first_loss.astype(state.first_loss.dtype),
        history=history,
        monitor=state.monitor,
    )
    if not freeze:
        return new
    return _tree_where(state.stop == RUNNING, new, state)  # a stopped state stays as it is


# ---------------------------------------------------------------- the one loop
def run_epochs(
    state: TrainState,
    data: tuple[Array, Array, Array | None] | tuple[Array, Array, Array | None, Array],
    val: tuple[Array, ...] | None,
    rules: StopRules,
    until: ArrayLike,
    *,
    config: TrainConfig,
    optimizer: Any,
    grad_fn: GradFn = loss_and_gradient_kernel,
    networks: str | None = None,
    mesh: Any = None,
    own_val: bool = False,
    own_rules: bool = False,
) -> TrainState:
    """Run epochs until epoch ``until`` (traced) or until every network has stopped.

    Args:
        state: one network's state, or (``networks`` given) states with a leading
            network axis, e.g. ``jax.vmap(init_state)``.
        data: ``(X, Y, sample_weight or None)``, shared by every network; or, with
            ``networks="own"``, ``(X, Y, sample_weight, n_rows)`` with a leading
            network axis: each network's own rows, padded to one length (weight 0),
            ``n_rows[i]`` real ones first.
        val, rules, config, optimizer, grad_fn: as :func:`train_epoch`.
        until: stop once this many epochs have run in all (so calling it with 10
            then 20 equals one call with 20).
        networks: None (one network); ``"shared"``: a network axis, every network
            sees the same mini-batches (the order of network 0's key), which stay
            un-batched so each layer is ONE product for all networks; ``"own"``:
            each network shuffles with its own key; ``"grouped"``: ``data`` holds
            ``G`` row sets (as with ``"own"``, leading axis ``G``) and the ``N``
            networks come in ``G`` consecutive groups of ``N / G``, group ``g``
            training on row set ``g`` in the order of its first network's key, its
            networks sharing their mini-batches as with ``"shared"`` (the folds of a
            cross-validation, each with many candidates).
        mesh: ``(mesh, axis)``: split every mini-batch across that mesh axis.
        own_val: ``val`` has a leading network axis: each network its own
            validation rows (padded to one length with weight 0).
        own_rules: ``rules`` has a leading network axis: each network its own thresholds.
    """
    X, Y, weight, *rows = data
    n_rows = rows[0] if rows else None  # per-network data: (N, n_max, .) and real row counts
    step = partial(
        train_epoch,
        config=config,
        optimizer=optimizer,
        grad_fn=grad_fn,
        mesh=mesh,
        freeze=networks is not None,  # one network: the loop stops before a stopped epoch
        swap_carry=networks in ("shared", "grouped"),  # networks sharing their batches
    )

    v_axis = 0 if own_val else None  # each network its own validation rows, or shared
    r_axis = 0 if own_rules else None  # each network its own thresholds, or shared

    def one_epoch(carry):
        e, s = carry
        if networks is None:
            s = step(s, epoch_batches(X, Y, weight, s.key, e, config), val, rules)
        elif networks == "shared":
            batches = epoch_batches(X, Y, weight, s.key[0], e, config)
            s = jax.vmap(step, in_axes=(0, None, v_axis, r_axis))(s, batches, val, rules)
        elif networks == "grouped":  # groups sharing batches, each group its own rows

            def group(s_g, X1, Y1, w1, n1, v_g, r_g):
                batches = epoch_batches(X1, Y1, w1, s_g.key[0], e, config, n1)
                return jax.vmap(step, in_axes=(0, None, v_axis, r_axis))(s_g, batches, v_g, r_g)

            axes = (0, 0, 0, 0, 0, v_axis, r_axis)
            s_g = jax.vmap(group, in_axes=axes)(
                by_group(s),
                X,
                Y,
                weight,
                n_rows,
                by_group(val, own_val),
                by_group(rules, own_rules),
            )
            s = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), s_g)
        elif n_rows is not None:  # every network its own rows (e.g. the folds of a CV)

            def own(s1, X1, Y1, w1, n1, v1, r1):
                return step(s1, epoch_batches(X1, Y1, w1, s1.key, e, config, n1), v1, r1)

            axes = (0, 0, 0, 0, 0, v_axis, r_axis)
            s = jax.vmap(own, in_axes=axes)(s, X, Y, weight, n_rows, val, rules)
        else:

            def own_order(s1, v1, r1):
                return step(s1, epoch_batches(X, Y, weight, s1.key, e, config), v1, r1)

            s = jax.vmap(own_order, in_axes=(0, v_axis, r_axis))(s, val, rules)
        return e + 1, s

    def by_group(tree, per_network=True):  # (N, ...) -> (G, N / G, ...)
        if not per_network:
            return tree
        return jax.tree.map(lambda a: a.reshape(X.shape[0], -1, *a.shape[1:]), tree)

    def running(carry):
        e, s = carry
        return (e < until) & jnp.any(s.stop == RUNNING)

    # Running networks have all run the same epochs; stopped ones are frozen.
    _, state = lax.while_loop(running, one_epoch, (jnp.max(state.epoch), state))
    return state


def divergence_reference(
    batch_losses: Array, counts: Array, batches: tuple[Array, Array, Array]
) -> Array:
    """The divergence rule's reference: ``max(E_1, spread of the targets)``.

    ``E_1`` is the loss of the epoch's first batch that has weight (``batch_losses``
    and ``counts``, its total sample weight, as the batch loop returned them), measured
    before that batch's update, so in the first epoch of a run it is the starting
    params' loss on a sample of the training data, in the epoch loss's own units; the
    spread is ``1/2 mean sum_k (T_k - mean T_k)^2`` over the epoch's batches, the error
    of predicting the mean target. Never below the dtype's eps. Nothing is computed
    again: no forward pass of its own. Pure and jittable.
    """
    _, yb, wb = batches
    start = batch_losses[jnp.argmax(counts > 0)]  # batches of weight 0 leave the params
    # the weights' ratios only (1e30 weights overflowed), kept apart from the products
    w = lax.optimization_barrier(wb / jnp.max(wb))[..., None].astype(yb.dtype)
    seen = jnp.sum(w)
    mean_t = jnp.sum(w * yb, axis=(0, 1), keepdims=True) / seen
    spread = (0.5 * jnp.sum(w * (yb - mean_t) ** 2) / seen).astype(start.dtype)
    return jnp.maximum(jnp.maximum(start, spread), jnp.finfo(start.dtype).eps)


_RUN_STATIC = ("config", "optimizer", "grad_fn", "networks", "mesh", "own_val", "own_rules")
_run_jit = jax.jit(run_epochs, static_argnames=_RUN_STATIC)


@functools.cache
def run_program(options: tuple[tuple[str, str], ...] = ()) -> Any:
    """:func:`run_epochs`, jitted with the XLA ``options`` of
    :func:`jbpnn.devices.compiler_options` (``()``: the plain ``_run_jit``)."""
    if not options:
        return _run_jit
    return jax.jit(run_epochs, static_argnames=_RUN_STATIC, compiler_options=dict(options))


# ---------------------------------------------------------------- checks
def _as_optimizer(optimizer: Any) -> Any:
    if isinstance(optimizer, Optimizer):
        return optimizer
    init, update = getattr(optimizer, "init", None), getattr(optimizer, "update", None)
    if not (callable(init) and callable(update)):
        raise ValueError(
            "optimizer must be an Optimizer (init, update), e.g. jbpnn.optimizers.sgd(0.1) "
            f"or get_optimizer('momentum', lr=0.1, m=0.9); got {optimizer!r}"
        )
    try:
        hash(optimizer)
    except TypeError:
        raise ValueError(
            f"optimizer {optimizer!r} must be hashable (it is a static argument of the "
            "compiled loop), like a NamedTuple of functions"
        ) from None
    return optimizer


def static_kind(optimizer: Any) -> Any:
    """What a compiled loop takes as its static optimizer: an :class:`Optimizer`'s kind
    (no values: they come from the state), any other optimizer as it is."""
    return optimizer.kind if isinstance(optimizer, Optimizer) else optimizer


class Prepared(NamedTuple):
    """A run, checked and ready to compile (what :func:`prepare_training` returns).

    Attributes:
        config: the static settings (:class:`TrainConfig`).
        rules: the stop rules' thresholds as arrays (:class:`StopRules`).
        optimizer: the checked optimizer (with its hyperparameter values).
        data: ``(X, Y, sample_weight or None)`` on the device.
        val: ``(X_val, Y_val)`` or ``(X_val, Y_val, weights)``, or None.
        state: the state to run: fresh for params, the given one adapted to the
            settings when resuming; None with ``template`` (``train_many`` builds its own).
        previous: the :class:`TrainResult` resumed from, or None.
    """

    config: TrainConfig
    rules: StopRules
    optimizer: Any
    data: tuple[Array, Array, Array | None]
    val: tuple | None
    state: TrainState | None
    previous: TrainResult | None


def _warn_unlike(previous: TrainResult, batching: tuple, validated: bool, early: bool) -> None:
    """Warn where a resume from ``previous`` goes on with other settings than its run's:
    a result carries its state and optimizer, not the call's ``batch_size``, ``shuffle``,
    ``drop_last`` or validation set, and ``train(result, X, Y, epochs=k)`` left without
    them trained on full batches, without early stopping, unlike the run it continued."""
    before = getattr(previous, "batching", None)  # None: a result pickled without it
    if before is not None and tuple(before) != tuple(batching):
        names = ("batch_size", "shuffle", "drop_last")
        was = ", ".join(f"{n}={v!r}" for n, v in zip(names, before))
        now = ", ".join(f"{n}={v!r}" for n, v in zip(names, batching))
        warnings.warn(
            f"resuming a run trained with {was} with {now}: a TrainResult does not carry "
            "them; pass the run's own to go on with the same run (10 + 10 epochs equal 20 "
            "with the same settings only)",
            stacklevel=6,  # the caller of train (two decorators)
        )
    if previous.monitor is not None and not (validated and early):
        without = "without X_val and Y_val" if not validated else "without n_iter_no_change"
        warnings.warn(
            f"resuming a run whose early stopping watched {previous.monitor!r} {without}: "
            "early stopping is off from here (a stopped run keeps its best params); pass "
            "the validation set and its stop rules again to go on with it",
            stacklevel=6,  # the caller of train (two decorators)
        )


def _checked_evaluation(out: Any, params: MLP, grad_fn: Any) -> Any:
    """A ``grad_fn``'s ``(loss, grads)``, checked while the program is traced (no cost when
    it runs): a scalar loss and grads with the params' structure and shapes. A user's
    function returning one float raised "cannot unpack non-iterable float object"."""
    if grad_fn is loss_and_gradient_kernel:
        return out
    expected = "(loss, grads): a scalar loss and grads with the params' structure and shapes"
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(f"grad_fn must return {expected}; got {type(out).__name__}")
    loss, grads = out
    if jnp.shape(loss) != ():
        raise ValueError(f"grad_fn must return {expected}; its loss has shape {jnp.shape(loss)}")
    try:  # leaf by leaf (tree.map raises where the structures differ)
        fits = jax.tree.map(lambda p, g: jnp.shape(g) == jnp.shape(p), params, grads)
        same = all(jax.tree.leaves(fits))
    except (ValueError, TypeError):
        same = False
    shapes = [jnp.shape(p) for p in jax.tree.leaves(params)]
    if not same:
        raise ValueError(
            f"grad_fn must return {expected}; its grads are {jax.tree.structure(grads)} "
            f"with shapes {[jnp.shape(g) for g in jax.tree.leaves(grads)]}, the params' "
            f"{shapes}"
        )
    return out


def _warn_stopped(state: TrainState) -> None:
    """Warn that a resume of a state stopped by a rule trains no epoch (the stop is final:
    what stopped it, a tolerance met or a divergence, stays true of the state)."""
    codes = host_value(state.stop)  # None: held by other processes too (not read here)
    if codes is None or np.ndim(codes) or int(codes) == RUNNING:
        return
    reason = STOP_REASONS[int(codes)]
    warnings.warn(
        f"this run stopped by a rule ({reason!r}, after epoch {host_value(state.epoch)}) "
        "and a stop is final: resuming it trains no further epoch. To train on from its "
        "params, start a new run from them: train(result.params, X, Y, optimizer=...)",
        stacklevel=6,  # the caller of train (two decorators)
    )


def prepare_training(
    start: MLP | TrainState | TrainResult,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    optimizer: Any = None,
    stopping: Stopping | None = None,
    key: ArrayLike | int | None = None,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    val_sample_weight: ArrayLike | None = None,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
    history_chunk: int = HISTORY_CHUNK,
    check_finite: bool = True,
    template: MLP | None = None,
    mesh: Any = None,
    pad_rows: bool = False,
    host_data: bool = False,
) -> Prepared:
    """Check everything a run needs, before anything is traced (shared with ``train_many``).

    ``stopping`` is the run's checked :class:`jbpnn.stopping.Stopping` (default: the
    defaults); ``template`` (one network of a stack) asks for no state. ``host_data``:
    host data (and host validation data) stay NumPy arrays, for a caller that moves them
    (:func:`train` does when it launches more than one chunk). Returns a
    :class:`Prepared`.
    """
    stopping = Stopping() if stopping is None else stopping
    previous = start if isinstance(start, TrainResult) else None
    if previous is not None:
        if previous.state is None:
            raise ValueError("this TrainResult carries no state to resume from")
        start = previous.state
        if previous.monitor is not None and np.all(np.asarray(start.monitor) == NO_MONITOR):
            # a result pickled before the state recorded it: its own record stands
            code: Any = np.full(np.shape(start.monitor), MONITORS.index(previous.monitor), np.int32)
            start = start._replace(monitor=code)
        optimizer = previous.optimizer if optimizer is None else optimizer
        early = stopping is not None and stopping.switches.early_stopping
        _warn_unlike(previous, (batch_size, shuffle, drop_last), X_val is not None, early)
    if template is not None:
        params = template
    elif isinstance(start, TrainState):
        params = start.params
    elif isinstance(start, MLP):
        params = start
    else:
        raise ValueError(
            "train needs an MLP (see init_params), a TrainState or a TrainResult to resume; "
            f"got {type(start).__name__}"
        )
    if not isinstance(params, MLP):
        raise ValueError(f"params must be an MLP (see init_params), got {type(params).__name__}")
    if optimizer is None:
        raise ValueError(
            "optimizer is missing: give e.g. optimizer=jbpnn.optimizers.momentum(0.1, 0.9)"
        )
    optimizer = _as_optimizer(optimizer)
    stopping = stopping.for_optimizer(optimizer)  # validation_tol's default is the optimizer's
    was = None if previous is None else previous.optimizer
    if (
        isinstance(was, Optimizer)
        and isinstance(optimizer, Optimizer)
        and was.kind != optimizer.kind
    ):
        # the state holds the values, not the kind: a resume may change the values only
        # (another variant of momentum would run under the same state unnoticed)
        raise ValueError(
            f"this run was trained with {was!r}; a resume may change its values, not its "
            f"kind ({was.name} with options {was.options}), got {optimizer!r} with "
            f"options {optimizer.options}"
        )
    if Y is None:  # check_batch takes None as "no targets" (predict's): train needs them
        raise ValueError("Y is None: train needs the targets, shape (n, n_out), beside X")
    # cross-entropies: targets in [0, 1], checked even with check_finite=False
    X, Y, _ = check_batch(
        params, X, Y, check_finite=check_finite, targets=True, what="train", host=host_data
    )
    if X.shape[0] == 0:
        raise ValueError("X has no examples; training needs at least one")
    weight = None if sample_weight is None else _weights(params, X, sample_weight, host=host_data)
    val = _validation(params, X_val, Y_val, val_sample_weight, check_finite, host=host_data)
    if val is not None and stopping.monitor == "val_accuracy":  # early stopping watches it
        _check_class_targets(val[1])
    weighted = weight is not None
    rows = row_bucket(X.shape[0], batch_size, optimizer, mesh) if pad_rows else None
    if rows is not None:  # one batch of a bucket's size: the same program for every n in it
        X, Y, weight = _pad_rows(X, Y, weight, rows, host=host_data)
        batch_size = None
        # weight-0 rows make it a weighted run, the program of the same rows padded by the
        # user: the same fusion, so the same roundings (the unweighted one fused adam's
        # update with alpha otherwise: 1.5e-8 apart after three partial_fits)
        weighted = True
        val_rows = None if val is None else row_bucket(val[0].shape[0], None, optimizer, mesh)
        if val_rows is not None:  # the validation set on a bucket too, its padding weighing 0
            assert val is not None  # val_rows is set only for a validation set
            val_w = val[2] if len(val) == 3 else None
            val = _pad_rows(val[0], val[1], val_w, val_rows, host=host_data)
    config = train_config(
        X.shape[0],
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        stopping=stopping,
        has_validation=val is not None,
        weighted=weighted,
        history_chunk=history_chunk,
        shards=1 if mesh is None else mesh[0].shape[mesh[1]],
        optimizer=optimizer,
    )
    rules = stopping.rules(params.dtype, host=True)  # NumPy: each launch copies them with its call
    if config.reduce_lr:
        hp: Any = getattr(optimizer, "hyperparams", None)  # an Optimizer's dict
        if not isinstance(optimizer, Optimizer) or "lr" not in hp:
            raise ValueError(
                "lr_factor reduces the learning rate held in the optimizer state: it needs a "
                "jbpnn Optimizer whose lr is a number or a jbpnn schedule, got "
                f"{optimizer!r}"
            )
    if template is None and getattr(optimizer, "needs_normal_equations", False):
        # train_many checks its N; the block of Jacobian products is for the whole set
        check_normal_equations(params, optimizer, n_networks=1, n_examples=config.n_examples)
    state = None
    if template is None and isinstance(start, TrainState):
        if key is not None:
            raise ValueError(
                "a TrainState carries its own data-order key (state.key); drop key= to resume, "
                "or replace it with state._replace(key=jax.random.key(seed))"
            )
        _warn_stopped(start)
        if not config.reduce_lr and np.any(np.asarray(start.lr_scale) != 1):
            # the plateau rule is off now, but its reductions so far go on: lr * lr_scale
            # (they were folded into lr, and a later resume given the run's own optimizer
            # went back to its lr, silently)
            config = config._replace(scaled_lr=True)
        state = resume_state(start, optimizer, config)
    elif template is None:
        state = init_state(params, optimizer, config, as_key(key))  # eager: values stay data
    data = (X, Y, weight)
    if mesh is not None:  # replicate what is not already on the mesh
        data, val, rules = replicate((data, val, rules), mesh[0])
        state = None if state is None else replicate(state, mesh[0])
    return Prepared(config, rules, optimizer, data, val, state, previous)


ROW_BUCKETS_UP_TO = 4096  # train pads one-batch runs of at most this many rows to a bucket
SMALLEST_BUCKET = 64  # so chunks of 1 to 64 rows share one program


def row_bucket(
    n: int, batch_size: int | None, optimizer: Any = None, mesh: Any = None
) -> int | None:
    """The rows :func:`train` runs ``n`` examples on, or None: ``n`` as they are.

    A run whose epoch is ONE batch of every row (``batch_size`` None or ``n``, but not 1) with
    a first-order optimizer, on one device, with ``n <= ROW_BUCKETS_UP_TO``, runs on
    a bucket of rows, the next power of two (at least ``SMALLEST_BUCKET``): the real
    rows first, then weight-0 copies of row 0. Every ``n`` of a bucket shares one
    compiled program (a stream of ``partial_fit`` chunks compiles once per bucket,
    not once per size). The batch gradient, the loss and scikit-learn's
    ``alpha / n`` are weighted means over the real rows, so the padding changes
    only the float rounding of the sums over rows: a run on ``n`` rows equals, bit
    for bit, the run on those rows plus any weight-0 rows within the bucket, and
    the unpadded run up to rounding (XLA's sums over 37 rows and over 64 round
    differently, so no padding can equal it bit for bit). Such a run's validation set
    (at most ``ROW_BUCKETS_UP_TO`` rows) goes on its own bucket the same way: its
    losses and accuracies are weighted means over the real rows. Other runs
    (mini-batches, ``lm``/``br``/``lbfgs``, a mesh, more rows): None.
    """
    # batch_size 1 is online training (one example an update, e.g. the article's gradient,
    # which takes one row): a run on one row is that, never padded into a batch of many
    one_batch = batch_size is None or (batch_size == n and batch_size != 1)
    first_order = not getattr(optimizer, "needs_objective", False)
    if not (one_batch and first_order and mesh is None and 0 < n <= ROW_BUCKETS_UP_TO):
        return None
    return max(SMALLEST_BUCKET, 1 << (n - 1).bit_length())


def _pad_rows(
    X: Array, Y: Array, weight: Array | None, rows: int, host: bool = False
) -> tuple[Array, Array, Array]:
    """``X``, ``Y`` with weight-0 copies of row 0 appended up to ``rows`` rows (on the host:
    no program is compiled), and the weights (ones without any) with zeros appended; on
    the device, or (``host``) as NumPy arrays."""
    n = X.shape[0]
    Xh, Yh = np.asarray(X), np.asarray(Y)
    w = np.ones((n,), Xh.dtype) if weight is None else np.asarray(weight)
    pad = rows - n  # may be 0: the weights are an argument all the same (one program)
    Xh = np.concatenate([Xh, np.repeat(Xh[:1], pad, 0)])
    Yh = np.concatenate([Yh, np.repeat(Yh[:1], pad, 0)])
    w = np.concatenate([w, np.zeros((pad,), w.dtype)])
    if host:  # NumPy arrays: the compiled call takes them as it takes JAX arrays
        return Xh, Yh, w  # type: ignore[return-value]
    return jax.device_put(Xh), jax.device_put(Yh), jax.device_put(w)


def check_normal_equations(
    params: MLP, optimizer: Any, n_networks: int, limit: int | None = None, n_examples: int = 1
) -> None:
    """A network Levenberg-Marquardt can train: a loss of residuals (mse), and
    ``J^T J`` (``P x P``, 4 copies live while lm solves it, 7 for br) and a block of the
    Jacobian's products for ``n_examples`` rows (:func:`jbpnn.memory.normal_equations_bytes`)
    of every network within ``limit`` bytes (default 90% of the device's available
    memory, as :func:`jbpnn.memory.check_memory`).

    Raises:
        ValueError: another loss.
        EnsembleTooLarge: ``J^T J`` would not fit.
    """
    if params.loss not in RESIDUAL_LOSSES:
        raise ValueError(
            f"{optimizer!r} minimises a sum of squared residuals e = O - T: it needs loss "
            f"{' or '.join(map(repr, RESIDUAL_LOSSES))}, but the network's loss is "
            f"{params.loss!r}; use rprop, adam or momentum for it"
        )
    replaced = replaced_residual_loss(params.loss)
    if replaced is not None:
        raise ValueError(
            f"{optimizer!r} minimises a sum of squared residuals e = O - T: it needs "
            f"{replaced}; use rprop, adam or momentum for it"
        )
    p = n_params(params)
    need = normal_equations_bytes(params, optimizer, n_examples) * n_networks
    if limit is None:
        free, where = available_memory()
        limit, source = int(0.9 * free), f"90% of the {format_bytes(free)} of {where}"
    else:
        source = "memory_limit"
    if need > limit:
        raise EnsembleTooLarge(
            f"{optimizer!r} on {n_networks} network(s) of {p} weights and biases needs about "
            f"{format_bytes(need)} for J^T J ({p} x {p}) and the Jacobian's products, more than "
            f"the {format_bytes(limit)} "
            f"allowed ({source}); use a first-order optimizer (rprop, adam) or fewer networks"
        )


def _check_class_targets(Y_val: Any) -> None:
    """Refuse ``monitor="val_accuracy"`` on targets that are not classes: the accuracy
    takes each output row's argmax (one output: ``O > 0.5``) as a class, and on a
    regression's signed or unbounded targets an early stop on it stopped at a meaningless
    figure, silently. Class targets lie in [0, 1]: 0/1, one-hot rows, or probabilities."""
    Y = np.asarray(Y_val)
    outside = (Y < 0) | (Y > 1)
    if outside.any():
        row = int(np.argmax(outside.any(axis=1)))
        value = Y[row][outside[row]][0].item()
        raise ValueError(
            "monitor='val_accuracy' scores each output row's argmax (one output: O > 0.5) "
            f"as a class, but Y_val[{row}] holds {value:.6g}: class targets lie in [0, 1] "
            "(0/1, one-hot rows, probabilities); watch monitor='val_loss' or 'val_r2' for a "
            "regression"
        )


def _validation(
    params: MLP,
    X_val: ArrayLike | None,
    Y_val: ArrayLike | None,
    val_sample_weight: ArrayLike | None,
    check_finite: bool,
    host: bool = False,
) -> tuple | None:
    """The checked validation set: ``(X_val, Y_val)``, ``(X_val, Y_val, weights)`` or None."""
    if (X_val is None) != (Y_val is None):
        raise ValueError("give both X_val and Y_val, or neither")
    if X_val is None:
        if val_sample_weight is not None:
            raise ValueError("val_sample_weight weights X_val's rows: give X_val and Y_val too")
        return None
    X_val, Y_val, _ = check_batch(
        params,
        X_val,
        Y_val,
        check_finite=check_finite,
        names=("X_val", "Y_val"),
        targets=True,
        host=host,
    )
    if X_val.shape[0] == 0:
        raise ValueError("X_val has no examples")
    if val_sample_weight is None:
        return (X_val, Y_val)
    return (X_val, Y_val, _weights(params, X_val, val_sample_weight, "val_sample_weight", host))


def _weights(
    params: MLP, X: Array, weight: ArrayLike, name: str = "sample_weight", host: bool = False
) -> Array:
    """Checked sample weights of ``X``'s rows: finite, >= 0, a positive sum."""
    _, _, checked = check_batch(
        params, X, None, weight, check_finite=False, weight_name=name, host=host
    )
    assert checked is not None  # weights given, weights returned
    return checked


# ---------------------------------------------------------------- train
@guarded("jbpnn.train")  # no hang in a forked child; a bound on compiled programs
@own_nan_markers
@under_own_mesh(
    lambda kw: (resolve_mesh(kw.get("mesh"), kw.get("devices"), kw.get("data_axis")) or (None,))[0]
)
def train(
    params: MLP | TrainState | TrainResult,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    optimizer: Any = None,
    epochs: int = 200,
    batch_size: int | None = None,
    key: ArrayLike | int | None = None,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    val_sample_weight: ArrayLike | None = None,
    tol: float | None = None,
    min_weight_change: float | None = None,
    n_iter_no_change: int | None = None,
    validation_tol: float | None = None,
    monitor: str = "val_loss",
    loss_patience: int | None = None,
    loss_tol: float = 1e-4,
    lr_factor: float | None = None,
    min_lr: float = 1e-6,
    max_loss_growth: float | None = 1e6,
    max_abs_param: float | None = 1e9,
    stopping: Stopping | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
    grad_fn: GradFn | None = None,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    progress_every: int | None = None,
    history_chunk: int = HISTORY_CHUNK,
    mesh: Any = None,
    devices: int | Any = None,
    data_axis: str | None = None,
    check_finite: bool = True,
) -> TrainResult:
    """Train a network on ``(X, Y)`` in one compiled loop; see the module docstring.

    Args:
        params: the network (e.g. from :func:`jbpnn.params.init_params`), or a
            :class:`TrainState` / :class:`TrainResult` to resume.
        X: inputs, shape ``(n, n_in)``.
        Y: targets, shape ``(n, n_out)`` (one-hot for classes).
        optimizer: e.g. ``sgd(0.1)``, ``momentum(0.5, 0.9, variant="article")``; any
            hashable object with ``init`` and ``update``. Optional when resuming
            from a ``TrainResult`` (its optimizer is used).
        epochs: epochs to run in this call (the article's rule 3); resuming, that
            many more. Traced: a new value is not a new program.
        batch_size: ``1`` online, ``k`` mini-batches, ``None`` full batch.
        key: a ``jax.random.key`` or an int seed for the mini-batch order
            (default seed 0: runs are reproducible). A resumed state brings its own.
        X_val, Y_val: optional validation set; adds ``val_loss`` and
            ``val_accuracy`` to the history (and ``val_r2`` with ``monitor="val_r2"``).
        sample_weight: optional non-negative weights of the training examples,
            shape ``(n,)``: every batch gradient and the epoch loss are weighted means.
        val_sample_weight: optional weights of ``X_val``'s rows: ``val_loss`` and
            ``val_accuracy`` (and so early stopping) are weighted means.
        tol: stop when the epoch loss is below it (the article's rule 2).
        min_weight_change: stop when every ``|delta w|`` of an epoch is below it
            (the article's rule 1).
        n_iter_no_change: early stopping: stop after this many epochs in a row whose
            validation loss (or error rate, see ``monitor``) did not beat the best by
            ``validation_tol``; the params of the best epoch are returned.
        validation_tol: the improvement that counts, for ``n_iter_no_change``; default
            1e-4 (scikit-learn's), 0 with ``lm`` and ``br`` (MATLAB's ``max_fail``
            counts any gain: their losses fall far below 1e-4).
        monitor: what early stopping watches: ``"val_loss"`` (default),
            ``"val_accuracy"`` (scikit-learn's classifier), as the error rate
            ``1 - accuracy``, so ``validation_tol`` is an accuracy gain (class targets in
            [0, 1] only: a target outside is refused), or ``"val_r2"``
            (scikit-learn's regressor: ``r2_score``'s uniform average over the outputs,
            :func:`jbpnn.network.r2_kernel`), as ``1 - R^2``, so ``validation_tol`` is an
            R^2 gain; it adds ``val_r2`` to the history.
        loss_patience: stop after this many epochs in a row whose epoch loss did
            not beat the lowest so far by ``loss_tol`` (scikit-learn's ``tol`` and
            ``n_iter_no_change + 1`` without early stopping); None: off.
        loss_tol: the improvement that counts, for ``loss_patience``.
        lr_factor: on a plateau (``loss_patience`` or ``n_iter_no_change``),
            multiply the learning rate by this factor (0 < f < 1) and go on,
            stopping only once ``lr <= min_lr`` (scikit-learn's
            ``learning_rate="adaptive"``: 0.2 and 1e-6). None: a plateau stops.
            The reductions so far are recorded after each epoch as ``lr_scale``
            in the history (the epoch's updates used ``lr`` times the one before).
        min_lr: see ``lr_factor``; compared with the optimizer's ``lr`` times the
            reductions so far (with a schedule, its starting ``lr``: the schedule's own
            decay does not count).
        max_loss_growth, max_abs_param: the divergence rule for runs that blow up
            without reaching NaN/inf: stop (``"diverged"``, the start-of-epoch
            params kept) when the epoch loss exceeds ``max_loss_growth`` times the
            reference loss (the starting params' loss on the first mini-batch, measured
            before its update, or the targets' spread if larger: see the module
            docstring)
            or a param exceeds ``max_abs_param`` in magnitude; None switches either off.
        stopping: the eleven stop-rule keywords above as one
            :class:`jbpnn.stopping.Stopping`, to reuse a rule set; give either it or
            those keywords, not both.
        shuffle: new order every epoch; default True for mini-batches, False for
            online (the article's order) and full batch.
        drop_last: drop the last partial mini-batch instead of padding it.
        grad_fn: ``(params, X, Y, sample_weight) -> (mean loss, dE/dtheta)`` for one
            batch, traceable; default the hand-derived
            :func:`jbpnn.network.loss_and_gradient_kernel`. Pass e.g.
            ``jax.value_and_grad(jbpnn.network.loss_kernel)`` to train with autodiff.
        progress: called as ``progress(info)`` after every chunk of
            ``progress_every`` epochs, ``info`` a dict with ``epoch``, ``epochs``,
            ``loss``, ``val_loss``, ``val_accuracy``, ``val_r2`` and ``lr_scale`` (each
            None where not recorded), ``elapsed`` (seconds) and ``stop_reason`` (None
            while running).
            :func:`print_progress` prints one line.
        progress_every: epochs per chunk (default: ``epochs // 10`` with
            ``progress`` or on a mesh that spans processes, where every process runs
            the same chunks and often only process 0 reports; capped at
            ``history_chunk``). Chunks reuse one compiled program and give the same
            result as one run.
        history_chunk: epochs of history the device holds between copies to the
            host (static: the size of a buffer).
        mesh: a ``jax.sharding.Mesh`` (Auto or Explicit axis types, one process
            or several after ``jax.distributed.initialize``): data-parallel
            training of ONE network. Every mini-batch is split along ``data_axis``
            (weight-0 padding makes it divisible), each device computes its
            share's gradient and XLA all-reduces them; params and optimizer state
            are replicated. The result equals one device's up to float rounding.
        devices: a count or a list of devices: shorthand for a one-axis mesh
            ``("data",)`` over them.
        data_axis: the mesh axis to split batches along (default: the only axis,
            or ``"data"``).
        check_finite: raise on NaN/inf in the data before training.

    Returns:
        A :class:`TrainResult`; ``result.state`` resumes.

    Raises:
        ValueError: on bad data shapes, settings or optimizer, before any tracing.
    """
    stopping = Stopping.from_keywords(
        stopping,
        tol=tol,
        min_weight_change=min_weight_change,
        n_iter_no_change=n_iter_no_change,
        validation_tol=validation_tol,
        monitor=monitor,
        loss_patience=loss_patience,
        loss_tol=loss_tol,
        lr_factor=lr_factor,
        min_lr=min_lr,
        max_loss_growth=max_loss_growth,
        max_abs_param=max_abs_param,
    )
    start = time.perf_counter()
    default_compilation_cache()  # on in the per-user folder unless turned off (once a process)
    epochs = check_int("epochs", epochs, 1, high=INT32_MAX)  # the epoch counter is int32
    check_progress(progress)
    check_int("progress_every", progress_every, 1, allow_none=True)
    if grad_fn is not None and not callable(grad_fn):
        raise ValueError(
            f"grad_fn must be a function (params, X, Y, sample_weight), got {grad_fn!r}"
        )
    mesh = resolve_mesh(mesh, devices, data_axis)
    if mesh is None:  # one device: data split over several (an Explicit mesh's) comes whole
        X, Y, X_val, Y_val, sample_weight, val_sample_weight = (
            unsplit(a, name)
            for a, name in (
                (X, "X"),
                (Y, "Y"),
                (X_val, "X_val"),
                (Y_val, "Y_val"),
                (sample_weight, "sample_weight"),
                (val_sample_weight, "val_sample_weight"),
            )
        )
    if progress_every is None:  # over processes, the same chunks whichever has a callback
        chunked = progress is not None or (mesh is not None and spans_processes(mesh[0]))
        progress_every = max(1, epochs // 10) if chunked else epochs
    if mesh is not None:  # several processes: the same arguments everywhere, or a clear error
        agree_across_processes(
            mesh[0],
            "train",
            dict(
                params=params,
                X=X,
                Y=Y,
                optimizer=optimizer,
                epochs=epochs,
                batch_size=batch_size,
                key=key,
                X_val=X_val,
                Y_val=Y_val,
                sample_weight=sample_weight,
                val_sample_weight=val_sample_weight,
                stopping=stopping,
                shuffle=shuffle,
                drop_last=drop_last,
                grad_fn=grad_fn,
                progress_every=progress_every,
                history_chunk=history_chunk,
                data_axis=mesh[1],
                check_finite=check_finite,
            ),
        )
    run = prepare_training(
        params,
        X,
        Y,
        optimizer=optimizer,
        stopping=stopping,
        mesh=mesh,
        key=key,
        X_val=X_val,
        Y_val=Y_val,
        sample_weight=sample_weight,
        val_sample_weight=val_sample_weight,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        history_chunk=history_chunk,
        check_finite=check_finite,
        pad_rows=True,
        host_data=mesh is None,
    )
    config, state, previous = run.config, run.state, run.previous
    assert state is not None  # prepared without a template: its state is built
    static = dict(
        config=config,
        optimizer=static_kind(run.optimizer),
        grad_fn=loss_and_gradient_kernel if grad_fn is None else grad_fn,
        mesh=mesh,
    )
    sizes, where = state.params.sizes, None if mesh is None else mesh[0]

    def loop(*args: Any) -> TrainState:
        # compiler_options gives none once XLA has refused them (each chunk asks again)
        options = compiler_options(sizes, where)
        return call_compiled(run_program, options, *args, **static)

    first = int(state.epoch)
    target = first + epochs
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in config.history_keys()}

    def collect(epoch: int, done: Any, stop: Any, history: dict) -> int:
        slots = np.arange(epoch, int(done)) % config.history_chunk
        for k in pieces:
            pieces[k].append(np.asarray(history[k])[slots])
        if progress is not None:
            progress(_progress_info(pieces, int(done), target, int(stop), start))
        return int(done)

    chunk = min(progress_every, config.history_chunk)
    data, val, rules = run.data, run.val, run.rules
    if epochs > chunk:  # more than one launch: copy host data to the device once, not per call
        data, val, rules = jax.tree.map(to_device, (data, val, rules))
    state = run_chunks(
        lambda s, until: loop(s, data, val, rules, np.int32(until)),
        state,
        first,
        target,
        chunk,
        collect,
    )
    history = {  # no epoch run (a stopped state): empty, of the buffers' dtype
        k: np.concatenate(v) if v else np.zeros((0,), state.history[k].dtype)
        for k, v in pieces.items()
    }
    start_epoch = first
    if previous is not None:  # resuming a result: one history for the whole run
        start_epoch = previous.start_epoch
        history = _joined(previous.history, history)
    return state_result(
        state,
        history,
        elapsed=time.perf_counter() - start,
        optimizer=run.optimizer,
        start_epoch=start_epoch,
        monitor=config.monitor if config.early_stopping else None,
        batching=(batch_size, shuffle, drop_last),
    )


def _joined(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One history of a resumed run: every key of either part, one entry per epoch, NaN
    where a part did not record it (a validation set, or ``lr_factor``, given to one
    part only), so the keys stay aligned epoch by epoch."""
    n_before, n_after = len(before["loss"]), len(after["loss"])

    def part(h: dict[str, np.ndarray], k: str, n: int) -> np.ndarray:
        if k in h:
            return h[k]
        other = before.get(k, after.get(k))  # NaN of the recorded part's float dtype
        kind = other.dtype if other is not None and other.dtype.kind == "f" else np.float64
        return np.full(n, np.nan, kind)

    keys = list(before) + [k for k in after if k not in before]
    return {k: np.concatenate([part(before, k, n_before), part(after, k, n_after)]) for k in keys}


def run_chunks(
    launch: Callable[[Any, int], Any],
    state: Any,
    first: int,
    target: int,
    chunk: int,
    collect: Callable[[int, Any, Any, dict], int],
) -> Any:
    """THE chunk loop of :func:`train` and :func:`jbpnn.many.train_many`.

    Runs the compiled loop ``launch(state, until)`` (asynchronous: it returns at
    once) in chunks of ``chunk`` epochs from epoch ``first`` to ``target``. The
    next chunk is queued before the last one is read, so the device never waits
    for the host (the history copy, the progress line); if the last chunk stopped
    every network, the queued one finds stopped states, returns at once and is
    dropped. After each chunk, ``collect(epoch, done, stop, history)`` gets the
    host copies of ``state.epoch``, ``state.stop`` and the history ring buffer
    (one network's, or with a leading network axis), takes the epochs from
    ``epoch`` on, reports progress, and returns the epoch reached.

    Returns:
        The final state (on the device).
    """
    epoch, until = first, min(first + chunk, target)
    running = np.any(to_host(state.stop) == RUNNING)
    ahead = launch(state, until) if first < target and running else None
    while ahead is not None:
        state = ahead
        following = min(until + chunk, target)
        ahead = launch(state, following) if until < target else None
        done, stop, history = to_host((state.epoch, state.stop, state.history))  # all processes
        epoch, until = collect(epoch, done, stop, history), following
        if not np.any(np.asarray(stop) == RUNNING):
            ahead = None
    return state


def check_progress(progress: Any) -> None:
    """A ``progress`` callback is None or callable (``train``, ``train_many``)."""
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a callable taking a dict, got {progress!r}")


def _progress_info(
    pieces: dict[str, list[np.ndarray]], epoch: int, target: int, stop: int, start: float
) -> dict[str, Any]:
    def last(k: str) -> float | None:
        if k not in pieces or not pieces[k] or not len(pieces[k][-1]):
            return None
        return float(pieces[k][-1][-1])

    done = stop != RUNNING or epoch >= target
    return {
        "epoch": epoch,
        "epochs": target,
        "loss": last("loss"),
        "val_loss": last("val_loss"),
        "val_accuracy": last("val_accuracy"),
        "val_r2": last("val_r2"),
        "lr_scale": last("lr_scale"),
        "elapsed": time.perf_counter() - start,
        "stop_reason": stop_reason_name(stop) if done else None,
    }


def print_progress(info: dict[str, Any]) -> None:
    """A ``progress`` callback that prints one line per chunk: for :func:`train` the
    epoch, loss and validation loss; for :func:`jbpnn.many.train_many` (whose dicts have
    no loss, one per network) the epoch and the networks still running."""
    epoch = f"epoch {info['epoch']:>{len(str(info['epochs']))}}/{info['epochs']}"
    if "loss" not in info:  # train_many's: epoch, epochs, running, elapsed
        print(f"{epoch}  running {info['running']}  {info['elapsed']:.1f} s", flush=True)
        return
    val = f"  val_loss {info['val_loss']:.6g}" if info.get("val_loss") is not None else ""
    done = f"  ({info['stop_reason']})" if info.get("stop_reason") else ""
    loss = info["loss"] if info["loss"] is not None else math.nan
    print(f"{epoch}  loss {loss:.6g}{val}  {info['elapsed']:.1f} s{done}", flush=True)


# ---------------------------------------------------------------- helpers
def accuracy(params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True) -> float:
    """Fraction of examples classified right.

    The predicted class is the argmax of the outputs, or for a single output
    unit ``output > 0.5``; with ``binary_cross_entropy`` over several outputs
    (multilabel), a row counts when every output is right (subset accuracy).

    Args:
        params: the network.
        X: inputs, shape ``(n, n_in)``.
        Y: targets, shape ``(n, n_out)`` (one-hot, or 0/1 for one unit), or
            integer labels of shape ``(n,)``.
        check_finite: raise on NaN/inf in the inputs and on targets the loss cannot
            take (the cross-entropies need values in [0, 1]). Labels of shape ``(n,)``
            for several outputs must be whole numbers in ``0..n_out - 1`` either way.
    """
    Y = np.asarray(Y)
    if Y.ndim == 1:
        labels = Y
        if params.n_out == 1:
            Y = labels.reshape(-1, 1)
        else:
            bad = ~_whole(labels)
            if bad.any():  # 1.7 was read as class 1, NaN failed with an IndexError
                first = np.asarray(labels[np.argmax(bad)]).item()
                raise ValueError(
                    f"labels must be whole numbers 0..{params.n_out - 1} (class indices), got "
                    f"{labels.dtype} values such as {first!r}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= params.n_out):
                raise ValueError(
                    f"labels must lie in 0..{params.n_out - 1} for {params.n_out} outputs, "
                    f"got values from {labels.min()} to {labels.max()}"
                )
            Y = np.eye(params.n_out)[labels.astype(int)]
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite, min_rows=1, what="accuracy")
    return float(_accuracy_jit(params, X, Y))


def _whole(a: np.ndarray) -> np.ndarray:
    """Which entries are whole numbers (False for NaN, text, ...)."""
    if a.dtype.kind not in "biuf":  # text, even "1": labels are class indices here
        return np.zeros(a.shape, bool)
    try:
        f = a.astype(np.float64)
    except (TypeError, ValueError):
        return np.zeros(a.shape, bool)
    return np.isfinite(f) & (f == np.round(f))


def evaluate(
    params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True
) -> dict[str, float]:
    """``{"loss": mean error, "accuracy": ...}`` on a data set (see :func:`accuracy`)."""
    if Y is None:
        raise ValueError("Y is None: evaluate needs the targets, shape (n, n_out), beside X")
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite, min_rows=1, what="evaluate")
    return {"loss": float(_loss_jit(params, X, Y)), "accuracy": float(_accuracy_jit(params, X, Y))}


_accuracy_jit = jax.jit(accuracy_kernel)
_loss_jit = jax.jit(loss_kernel)

"""Train many networks of one architecture at once: sweeps over seeds and hyperparameters.

:func:`train_many` trains ``N`` independent networks in ONE compiled program and
returns a :class:`ManyResult` (stacked params, per-network histories, epochs run,
stop reasons). Each network follows :func:`jbpnn.training.train`'s stop rules on its
own: a network that has stopped is frozen while the others go on, and its result is
the one ``train`` gives for it alone (same init, data key and hyperparameters).
:func:`grid` builds hyperparameter grids, :class:`ResultsTable` is the one-row-per-network
table (print, sort, CSV/JSON), :func:`estimate_memory` says what fits.

Two ways to run the ensemble (``method``):

- ``"fused"`` (default when every network shares the data order, i.e. one ``key``):
  the networks see the same mini-batches, so the first layer of all ``N`` networks
  is ONE matrix product, and its weight gradient another. For network ``n``, unit
  ``j`` of a layer, example ``b`` of the batch (the article's formulas, ARTICLE.md
  section 1, with a network index)::

      net[n, j, b] = sum_i w[n, i, j] O[n, i, b] + theta[n, j]     O[n, j, b] = f(net[n, j, b])
      Err[n, k, b] = loss delta (output)                          (jbpnn.losses)
      Err[n, j, b] = f'(O[n, j, b]) sum_k Err[n, k, b] w[n, j, k]   (hidden)
      dE/dw[n, i, j] = -sum_b s_b O[n, i, b] Err[n, j, b]
      dE/dtheta[n, j] = -sum_b s_b Err[n, j, b]

  with ``s_b`` the normalised sample weights. In the first layer ``O[n, i, b] = x[b, i]``
  for every ``n``, so stacking the networks' weights as the rows of one
  ``(N * n_hidden, n_in)`` matrix turns ``net`` into ``W_all @ X_batch^T`` and the
  weight gradient into ``-(s Err_all) @ X_batch``: two large products instead of
  ``N`` small ones. The other layers are batched products over ``n``. ``f``, ``f'``
  (``backprop``) and the loss deltas are the core's tables, applied unit vector by
  unit vector with ``vmap``; the tests check every network against ``train``.
- ``"vmap"`` (default when each network has its own data-order ``keys``): ``jax.vmap``
  of :func:`jbpnn.training.make_train_fn`, the same loop as ``train``. General, but on
  a CPU barely faster than training the networks one after another.

Optimizer hyperparameters: ``hparams={"lr": [...], "m": [...]}`` gives each network
its own values (arrays of length ``N``, traced inside the program); a plain number,
string or schedule is shared by all (``{"variant": "nesterov"}``). Any argument of the
optimizer factory can be swept.

Devices: the networks are split evenly across the local devices (``devices=``); on a
CPU, JAX shows one device unless asked for more before it starts, with
:func:`use_cpu_devices` (one per core). Each device then runs its share in its own
loop, on its own core.

Speed (``experiments/sweep.py`` on this project's 2-core CPU: 64 networks 64-64-10,
batch 32, 20 epochs with validation, compilation excluded, medians of 5 runs): one
after another with ``train`` 1.5 s; ``train_many`` fused on 2 CPU devices 0.27 s
(5.5x), on 1 device 0.38-0.40 s (3.7-3.9x); the plain vmap 0.57 s on 2 devices, 0.96 s
on 1 (1.5x). With another process busy on one of the two cores: 3.6x on 2 devices,
2.3x on 1. Sharing the data order (one ``key``) is what makes the fused path
possible; one order per network (``keys``) takes the vmap path.

Memory: :func:`train_many` estimates the bytes it needs (:func:`estimate_memory`) and
raises :class:`EnsembleTooLarge` before allocating anything when that exceeds the
memory available (RAM on CPU, ``device.memory_stats()`` on accelerators). A digits
network 64-64-10 (batch 32, 359 validation rows, momentum, early stopping) needs about
370 KiB, so some 56 000 fit in 20 GiB of RAM; a 64-256-256-10 network about 4 MiB.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jbpnn.activations import activation_table
from jbpnn.losses import LOSSES
from jbpnn.memory import EnsembleTooLarge, check_memory, estimate_memory  # noqa: F401
from jbpnn.network import check_batch
from jbpnn.optimizers import OPTIMIZERS, Optimizer, apply_updates
from jbpnn.params import MLP, Layer, init_params
from jbpnn.tables import ResultsTable, grid  # noqa: F401
from jbpnn.training import (
    _RUNNING,
    _STOP,
    STOP_REASONS,
    LoopState,
    TrainConfig,
    TrainResult,
    _as_key,
    _epoch_batches,
    check_training_data,
    end_epoch,
    make_train_fn,
    result_from_state,
)

Array = jax.Array
PyTree = Any

METHODS = ("auto", "fused", "vmap")


# ---------------------------------------------------------------- what to train
class InitSpec(NamedTuple):
    """An architecture to initialise once per seed (see :func:`jbpnn.params.init_params`).

    Attributes:
        sizes: layer widths, input first, e.g. ``(64, 64, 10)``.
        activations: one name for every layer, or one per layer.
        loss: ``"mse"``, ``"cross_entropy"`` or ``"binary_cross_entropy"``.
        init: ``"article"``, ``"glorot"`` or ``"he"``.
        dtype: floating dtype of the params.
    """

    sizes: tuple[int, ...]
    activations: str | tuple[str, ...] = "sigmoid"
    loss: str = "mse"
    init: str = "article"
    dtype: Any = jnp.float32


def init_many(spec: InitSpec, seeds: Sequence[int] | ArrayLike) -> MLP:
    """One network per seed, stacked: leaves get a leading axis of length ``len(seeds)``.

    Network ``n`` equals ``init_params(jax.random.key(seeds[n]), *spec)``.
    """
    seeds = _as_seeds(seeds)
    template = _init_one(spec, 0)  # checks the spec, raises ValueError before vmap
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    stacked = jax.vmap(lambda k: _init_one(spec, k, key_given=True))(keys)
    return template.replace_layers(stacked.layers)


def _init_one(spec: InitSpec, seed_or_key: Any, key_given: bool = False) -> MLP:
    key = seed_or_key if key_given else jax.random.key(seed_or_key)
    return init_params(key, tuple(spec.sizes), spec.activations, spec.loss, spec.init, spec.dtype)


def stack_params(networks: Sequence[MLP]) -> MLP:
    """Stack same-architecture networks into one :class:`MLP` with a leading network axis."""
    networks = list(networks)
    if not networks or not all(isinstance(p, MLP) for p in networks):
        raise ValueError("stack_params needs a non-empty sequence of MLPs")
    first = networks[0]
    for i, p in enumerate(networks[1:], 1):
        if jax.tree.structure(p) != jax.tree.structure(first) or p.sizes != first.sizes:
            raise ValueError(
                f"network {i} has architecture {p.sizes} {p.activations} {p.loss!r}; "
                f"expected {first.sizes} {first.activations} {first.loss!r} like network 0"
            )
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *networks)


def unstack_params(stacked: MLP) -> list[MLP]:
    """The inverse of :func:`stack_params`."""
    n = stacked.layers[0].w.shape[0]
    return [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(n)]


def network_count(stacked: MLP) -> int:
    """``N``, the length of the leading axis of stacked params."""
    return int(stacked.layers[0].w.shape[0])


def _one_network(stacked: MLP) -> MLP:
    """Network 0 of a stack (the template for shapes, dtype and names)."""
    return jax.tree.map(lambda a: a[0], stacked)


def _as_seeds(seeds: Any) -> np.ndarray:
    arr = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers, got {seeds!r}")
    if arr.min() < 0 or arr.max() >= 2**32:
        raise ValueError("seeds must lie in 0 .. 2**32 - 1")
    return arr.astype(np.int64)


def _check_stacked(params: MLP) -> int:
    n = None
    for l, layer in enumerate(params.layers):
        for name, leaf, ndim in (("w", layer.w, 3), ("b", layer.b, 2)):
            shape = np.shape(leaf)
            if len(shape) != ndim:
                raise ValueError(
                    f"stacked params: layer {l} {name} must have a leading network axis "
                    f"(ndim {ndim}), got shape {shape}; stack networks with stack_params, or "
                    "pass an InitSpec with seeds"
                )
            if n is None:
                n = shape[0]
            elif shape[0] != n:
                raise ValueError(
                    f"stacked params: layer {l} {name} has {shape[0]} networks, layer 0 has {n}"
                )
    if not n:
        raise ValueError("stacked params hold no networks")
    return int(n)


# ---------------------------------------------------------------- optimizer specs
class OptSpec(NamedTuple):
    """A hashable optimizer recipe: ``factory(**static, **traced_values)``.

    Attributes:
        factory: e.g. :func:`jbpnn.optimizers.momentum`.
        static: ``(name, value)`` pairs shared by every network (numbers, strings, schedules).
        traced: names of the hyperparameters that differ between networks.
    """

    factory: Callable[..., Optimizer]
    static: tuple[tuple[str, Any], ...]
    traced: tuple[str, ...]

    def build(self, values: Mapping[str, Any]) -> Optimizer:
        """The optimizer of one network, ``values`` its traced hyperparameters."""
        return self.factory(**dict(self.static), **{k: values[k] for k in self.traced})


def _opt_spec(
    optimizer: str | Callable[..., Optimizer], hparams: Mapping[str, Any] | None, n: int
) -> tuple[OptSpec, dict[str, np.ndarray]]:
    """Split ``hparams`` into shared (static) and per-network (traced) values, and check them."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; expected one of {list(OPTIMIZERS)} "
                "or a factory like jbpnn.optimizers.momentum"
            )
        factory = OPTIMIZERS[optimizer]
    elif callable(optimizer):
        factory = optimizer
    else:
        raise ValueError(f"optimizer must be a name or a factory function, got {optimizer!r}")
    static: dict[str, Any] = {}
    traced: dict[str, np.ndarray] = {}
    for name, value in dict(hparams or {}).items():
        if isinstance(value, str) or callable(value) or value is None:
            static[name] = value
            continue
        arr = np.asarray(value)
        if arr.ndim == 0:
            static[name] = arr.item()  # shared: checked by the factory as a plain number
        elif arr.shape == (n,) and np.issubdtype(arr.dtype, np.number):
            traced[name] = arr
        else:
            raise ValueError(
                f"hyperparameter {name!r} must be one value for every network or an array of "
                f"{n} numbers (one per network), got shape {arr.shape}"
            )
    spec = OptSpec(factory, tuple(sorted(static.items())), tuple(sorted(traced)))
    # Build each network's optimizer once with plain numbers: the factory's own checks
    # (unknown names, negative lr, b1 >= 1, ...) run here, before any tracing.
    rows = np.stack([v.astype(float) for v in traced.values()], axis=1) if traced else None
    first = [0] if rows is None else np.unique(rows, axis=0, return_index=True)[1]
    for i in sorted(int(j) for j in first):  # each distinct combination once
        try:
            spec.build({k: float(v[i]) for k, v in traced.items()})
        except TypeError as error:
            raise ValueError(
                f"optimizer hyperparameters {sorted(hparams or {})}: {error}"
            ) from None
        except ValueError as error:
            raise ValueError(f"bad optimizer hyperparameter for network {i}: {error}") from None
    return spec, traced


# ---------------------------------------------------------------- the fused kernel
class _Net(NamedTuple):
    """The static description of the architecture the fused kernel needs."""

    activations: tuple[str, ...]
    loss: str
    article_mode: bool


def _per_unit(fn: Callable[..., Array], n_args: int, shared: tuple[int, ...] = ()) -> Callable:
    """Apply a one-example function of unit vectors to ``(N, units, B)`` arrays.

    ``fn`` takes vectors of shape ``(units,)`` (the core's activation and loss
    functions, written for one example); this maps it over the network axis 0
    and the batch axis -1. Arguments listed in ``shared`` have no network axis
    (shape ``(units, B)``).
    """
    over_b = jax.vmap(fn, in_axes=-1, out_axes=-1)
    over_n_axes = tuple(None if i in shared else 0 for i in range(n_args))
    return jax.vmap(over_b, in_axes=over_n_axes, out_axes=0)


def _forward_all(layers: Sequence[Layer], XT: Array, net: _Net) -> list[Array]:
    """Forward pass of all networks on one shared batch.

    Args:
        layers: internal layout, layer ``l`` with ``w`` of shape ``(N, n_out, n_in)``
            (each network's weight matrix transposed) and ``b`` of shape ``(N, n_out)``.
        XT: the batch's inputs transposed, shape ``(n_in, B)``, shared by every network.

    Returns:
        ``[X^T, O_1, ..., O_L]``; ``O_l`` of shape ``(N, n_l, B)``.
    """
    table = activation_table(net.article_mode)
    cache: list[Array] = [XT]
    o = XT
    for l, (layer, name) in enumerate(zip(layers, net.activations)):
        n_nets, n_out, n_in = layer.w.shape
        if l == 0:  # shared input: every network's first layer in ONE product
            z = (layer.w.reshape(n_nets * n_out, n_in) @ o).reshape(n_nets, n_out, -1)
        else:  # net[n, j, b] = sum_i w[n, i, j] O[n, i, b]
            z = jnp.einsum("nji,nib->njb", layer.w, o)
        if not net.article_mode:  # the article code's biases never reach the forward pass
            z = z + layer.b[:, :, None]  # + theta[n, j]
        o = _per_unit(table[name].fn, 1)(z)  # O = f(net)
        cache.append(o)
    return cache


def _fused_loss_and_gradient(
    layers: Sequence[Layer], X: Array, Y: Array, s: Array, net: _Net
) -> tuple[Array, tuple[Layer, ...]]:
    """Mean loss and hand-derived gradient of every network on one shared batch.

    Args:
        layers: internal layout (see :func:`_forward_all`).
        X: inputs, shape ``(B, n_in)``; Y: targets, shape ``(B, n_out)``.
        s: normalised sample weights, shape ``(B,)``, summing to 1.

    Returns:
        ``(mean_loss, grads)``: losses of shape ``(N,)``; grads in the layout of ``layers``.
    """
    table = activation_table(net.article_mode)
    acts = [table[name] for name in net.activations]
    rule = LOSSES[net.loss]
    cache = _forward_all(layers, X.T, net)
    out, T = cache[-1], Y.T
    errors = _per_unit(rule.error, 2, shared=(1,))(out, T)  # E[n, b]
    mean_loss = errors @ s
    delta = _per_unit(lambda o, t: rule.delta(o, t, acts[-1]), 2, shared=(1,))(out, T)
    errs = [delta]
    for l in range(len(layers) - 1, 0, -1):
        # Err[n, j, b] = f'(O[n, j, b]) sum_k Err[n, k, b] w[n, j, k]
        # as a (n_j, n_k) @ (n_k, B) product per network, on a materialised transposed
        # copy of w (the barrier stops XLA folding the transpose into the product, a
        # layout its CPU matrix kernels do not take)
        w_jk = lax.optimization_barrier(jnp.swapaxes(layers[l].w, 1, 2))  # w[n, j, k]
        back = jnp.einsum("njk,nkb->njb", w_jk, delta)  # sum_k w[n, j, k] Err[n, k, b]
        delta = _per_unit(acts[l - 1].backprop, 2)(cache[l], back)
        errs.append(delta)
    errs.reverse()
    grads = []
    for l, (o_prev, err) in enumerate(zip(cache[:-1], errs)):
        n_nets, n_out, n_in = layers[l].w.shape
        if l == 0:  # dE/dw[n, i, j] = -sum_b s_b Err[n, j, b] x[b, i]: ONE product
            se = err.reshape(n_nets * n_out, -1) * s  # s_b Err[n, j, b], networks stacked
            gw = -(se @ X).reshape(n_nets, n_out, n_in)
            gb = -jnp.sum(se, axis=-1).reshape(n_nets, n_out)
        else:  # dE/dw[n, i, j] = -sum_b s_b Err[n, j, b] O[n, i, b]
            se = err * s
            gw = -jnp.einsum("njb,nib->nji", se, o_prev)
            gb = -jnp.sum(se, axis=-1)
        grads.append(Layer(gw, gb))  # dE/dtheta[n, j] = -sum_b s_b Err[n, j, b]
    return mean_loss, tuple(grads)


def _scores_all(layers: Sequence[Layer], X: Array, Y: Array, net: _Net) -> tuple[Array, Array]:
    """Mean loss and accuracy of every network on ``(X, Y)``; each of shape ``(N,)``.

    Accuracy as :func:`jbpnn.training.accuracy`: argmax of the outputs, or for a
    single output unit ``output >= 0.5``.
    """
    out = _forward_all(layers, X.T, net)[-1]  # (N, n_out, B)
    T = Y.T
    errors = _per_unit(LOSSES[net.loss].error, 2, shared=(1,))(out, T)
    loss = jnp.mean(errors, axis=-1)
    if out.shape[1] == 1:
        right = (out[:, 0, :] >= 0.5) == (T[0] >= 0.5)[None, :]
    else:
        right = jnp.argmax(out, axis=1) == jnp.argmax(T, axis=0)[None, :]
    return loss, jnp.mean(right, axis=-1).astype(loss.dtype)


def _to_internal(layers: Sequence[Layer]) -> tuple[Layer, ...]:
    """``w`` of shape ``(N, n_in, n_out)`` -> ``(N, n_out, n_in)`` (each matrix transposed)."""
    return tuple(Layer(jnp.swapaxes(l.w, -1, -2), l.b) for l in layers)


_to_external = _to_internal  # transposing twice is the identity


# ---------------------------------------------------------------- the fused loop
class _Program(NamedTuple):
    """Static settings of the fused program (hashable: the jit cache key)."""

    config: TrainConfig
    net: _Net
    opt: OptSpec


def _tree_where_n(cond: Array, a: PyTree, b: PyTree) -> PyTree:
    """Per network: ``a`` where ``cond[n]``, else ``b``; leaves have a leading axis ``N``."""

    def pick(x, y):
        return jnp.where(cond.reshape(cond.shape + (1,) * (x.ndim - 1)), x, y)

    return jax.tree.map(pick, a, b)


def _per_network(reduce: Callable, tree: PyTree) -> Array:
    """``reduce`` over every axis but the first, then over the leaves: shape ``(N,)``."""
    parts = [reduce(x.reshape(x.shape[0], -1), axis=1) for x in jax.tree.leaves(tree)]
    return reduce(jnp.stack(parts), axis=0)


def _fused_init(layers: tuple[Layer, ...], hp: dict[str, Array], program: _Program) -> LoopState:
    """The loop's carry before the first epoch, every leaf with a leading network axis."""
    n = layers[0].w.shape[0]
    dtype = layers[0].w.dtype
    config = program.config
    nan = jnp.full((n, config.epochs), jnp.nan, dtype)
    early = config.n_iter_no_change is not None
    opt_state = jax.vmap(lambda p, h: program.opt.build(h).init(p))(layers, hp)
    return LoopState(
        epoch=jnp.zeros((n,), jnp.int32),
        params=layers,
        opt_state=opt_state,
        stop=jnp.full((n,), _RUNNING, jnp.int32),
        loss=nan,
        max_weight_change=nan,
        val_loss=nan,
        val_accuracy=nan,
        best_params=layers if early else None,
        best_val_loss=jnp.full((n,), jnp.inf, dtype),
        best_epoch=jnp.zeros((n,), jnp.int32),
        bad_epochs=jnp.zeros((n,), jnp.int32),
    )


def _fused_run(
    state: LoopState,
    hp: dict[str, Array],
    X: Array,
    Y: Array,
    key: Array,
    X_val: Array | None,
    Y_val: Array | None,
    program: _Program,
) -> LoopState:
    """All networks' epochs, in lockstep, until each has stopped or ``config.epochs`` ran.

    Mirrors :func:`jbpnn.training.run_epochs` rule for rule, with a leading network
    axis on every leaf of the state; a network whose ``stop`` is set is frozen (its
    state is not replaced any more) while the others go on.
    """
    config, net = program.config, program.net

    def update_all(grads, opt_state, params):
        def one(g, st, p, h):
            return program.opt.build(h).update(g, st, p)

        return jax.vmap(one)(grads, opt_state, params, hp)

    def one_update(carry, batch):
        params, opt_state = carry
        xb, yb, sb = batch
        s = sb / jnp.sum(sb)  # normalised sample weights (padding rows weigh 0)
        batch_loss, grads = _fused_loss_and_gradient(params, xb, yb, s, net)
        updates, opt_state = update_all(grads, opt_state, params)
        params = apply_updates(params, updates)  # p + u
        change = (  # max |delta w| only for the article's rule 1, as train does
            _per_network(jnp.max, _abs(updates))
            if config.min_weight_change is not None
            else jnp.zeros_like(batch_loss)
        )
        return (params, opt_state), (batch_loss, jnp.sum(sb), change)

    def one_epoch(carry):
        e, s = carry
        batches = _epoch_batches(X, Y, key, e, config)  # the same order for every network
        (params, opt_state), (losses, counts, changes) = lax.scan(
            one_update, (s.params, s.opt_state), batches
        )
        epoch_loss = jnp.sum(losses * counts[:, None], axis=0) / jnp.sum(counts)  # (N,)
        max_change = jnp.max(changes, axis=0)

        finite = jnp.isfinite(epoch_loss) & _per_network(jnp.all, _isfinite(params))
        new = end_epoch(  # the stop rules of train, per network
            s,
            params,
            opt_state,
            epoch_loss,
            max_change,
            finite,
            (lambda p: _scores_all(p, X_val, Y_val, net)) if config.has_validation else None,
            config=config,
            where=_tree_where_n,
            record=lambda history, value: history.at[:, e].set(value),
        )
        running = s.stop == _RUNNING
        return e + 1, _tree_where_n(running, new, s)  # a stopped network stays frozen

    def any_running(carry):
        e, s = carry
        return (e < config.epochs) & jnp.any(s.stop == _RUNNING)

    _, state = lax.while_loop(any_running, one_epoch, (jnp.int32(0), state))
    return state


def _abs(tree: PyTree) -> PyTree:
    return jax.tree.map(jnp.abs, tree)


def _isfinite(tree: PyTree) -> PyTree:
    return jax.tree.map(jnp.isfinite, tree)


def _fused_body(layers, hp, X, Y, key, X_val, Y_val, *, program: _Program) -> LoopState:
    """Params in (external layout), the final batched :class:`LoopState` out (no opt state)."""
    layers = _to_internal(layers)
    state = _fused_init(layers, hp, program)
    state = _fused_run(state, hp, X, Y, key, X_val, Y_val, program)
    best = None if state.best_params is None else _to_external(state.best_params)
    return state._replace(params=_to_external(state.params), best_params=best, opt_state=None)


# ---------------------------------------------------------------- the vmap path
def _vmap_body(params, hp, X, Y, keys, X_val, Y_val, *, config, opt, shared_key) -> LoopState:
    """``jax.vmap`` of :func:`jbpnn.training.make_train_fn`'s loop over the networks."""

    def one(p, k, h):
        init, run = make_train_fn(config, opt.build(h))
        return run(init(p), X, Y, k, X_val, Y_val)

    states = jax.vmap(one, in_axes=(0, None if shared_key else 0, 0))(params, keys, hp)
    return states._replace(opt_state=None)


# ---------------------------------------------------------------- devices
def _shard_map(fn: Callable, mesh: Any, in_specs: Any, out_specs: Any) -> Callable:
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # jax < 0.7

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


@functools.cache
def _compiled(body: Callable, static: tuple, devices: tuple, sharded_keys: bool) -> Callable:
    """``body`` jitted; with several devices, its networks split evenly across them.

    The networks are independent, so each device runs its share in its own loop
    (``shard_map`` over the network axis) and never waits for the others.
    """
    fn = partial(body, **dict(static))
    if len(devices) > 1:
        from jax.sharding import Mesh, PartitionSpec

        net, rep = PartitionSpec("net"), PartitionSpec()
        keys = net if sharded_keys else rep
        mesh = Mesh(np.array(devices), ("net",))
        fn = _shard_map(fn, mesh, (net, net, rep, rep, keys, rep, rep), net)
    return jax.jit(fn)


def _resolve_devices(devices: Any) -> tuple:
    if devices is None:
        return tuple(jax.local_devices())
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        available = jax.local_devices()
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices}: there are {len(available)} local devices ({available}); "
                "on CPU, start with jax.config.update('jax_num_cpu_devices', k) (before any "
                "JAX computation) or XLA_FLAGS=--xla_force_host_platform_device_count=k "
                "to get k devices"
            )
        return tuple(available[:devices])
    devices = tuple(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(
            f"devices must be None, a count, or a list of jax devices; got {devices!r}"
        )
    return devices


def _pad(tree: PyTree, n_pad: int) -> PyTree:
    """Append ``n_pad`` copies of network 0 (removed again after training)."""
    if n_pad == 0:
        return tree
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[:1], n_pad, axis=0)]), tree)


# ---------------------------------------------------------------- results
@dataclass(frozen=True, repr=False)
class ManyResult:
    """What :func:`train_many` returns: ``N`` trainings, stacked.

    Attributes:
        params: the returned params of every network, stacked (leading axis ``N``):
            as :class:`jbpnn.training.TrainResult`, the best-validation params under
            early stopping, the last finite ones after divergence.
        history: NumPy arrays of shape ``(N, epochs)``: ``loss``,
            ``max_weight_change`` (only with ``min_weight_change``) and, with
            validation data, ``val_loss`` and ``val_accuracy``; NaN after a
            network's last epoch.
        epochs_run: shape ``(N,)``, epochs each network ran (the diverged one included).
        stop_reason: ``N`` names from :data:`jbpnn.training.STOP_REASONS`.
        best_epoch: shape ``(N,)``, the 1-based epoch of ``params`` under early
            stopping (0 if none), or None without early stopping.
        hparams: every network's hyperparameters, arrays of shape ``(N,)``
            (shared values repeated), plus ``seed`` when the networks came from seeds.
        elapsed: wall-clock seconds of the whole call, compilation included.
        method: ``"fused"`` or ``"vmap"``.
    """

    params: MLP
    history: dict[str, np.ndarray]
    epochs_run: np.ndarray
    stop_reason: tuple[str, ...]
    best_epoch: np.ndarray | None
    hparams: dict[str, np.ndarray]
    elapsed: float
    method: str
    config: TrainConfig = field(repr=False)
    _states: LoopState = field(repr=False)

    def __len__(self) -> int:
        return len(self.stop_reason)

    def __getitem__(self, i: int) -> TrainResult:
        """Network ``i`` as the :class:`jbpnn.training.TrainResult` ``train`` returns."""
        n = len(self)
        if not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise IndexError(f"network index {i!r} out of range for {n} networks")
        one = jax.tree.map(lambda a: a[i], self._states)
        return result_from_state(one, self.config, self.elapsed)

    def results(self) -> list[TrainResult]:
        """Every network's :class:`jbpnn.training.TrainResult`."""
        return [self[i] for i in range(len(self))]

    def table(
        self,
        X: ArrayLike | None = None,
        Y: ArrayLike | None = None,
        *,
        check_finite: bool = True,
    ) -> ResultsTable:
        """One row per network: hyperparameters, train and validation figures, epochs, stop.

        Columns: ``network``, every swept hyperparameter (and ``seed``), then
        ``train_loss`` (the last epoch's loss; with ``X, Y`` the loss of the
        returned params on them instead) and ``train_accuracy`` (needs ``X, Y``),
        ``val_loss`` and ``val_accuracy`` of the returned params (with validation
        data), ``epochs`` and ``stop_reason``.
        """
        n = len(self)
        cols: dict[str, list[Any]] = {"network": list(range(n))}
        for name, values in self.hparams.items():
            cols[name] = [_plain(v) for v in values]
        last = np.clip(self.epochs_run - 1, 0, None)
        at = (
            last
            if self.best_epoch is None
            else np.where(self.best_epoch > 0, self.best_epoch - 1, last)
        )
        if X is not None:
            template = _one_network(self.params)
            Xc, Yc, _ = check_batch(template, X, Y, check_finite=check_finite)
            loss, acc = _scores_jit(self.params.layers, Xc, Yc, _net_of(template))
            cols["train_loss"] = [float(v) for v in np.asarray(loss)]
            cols["train_accuracy"] = [float(v) for v in np.asarray(acc)]
        else:
            finite_last = [
                _last_finite(self.history["loss"][i, : self.epochs_run[i]]) for i in range(n)
            ]
            cols["train_loss"] = finite_last
        if "val_loss" in self.history:
            rows = np.arange(n)
            cols["val_loss"] = [float(v) for v in self.history["val_loss"][rows, at]]
            cols["val_accuracy"] = [float(v) for v in self.history["val_accuracy"][rows, at]]
        cols["epochs"] = [int(v) for v in self.epochs_run]
        cols["stop_reason"] = list(self.stop_reason)
        names = list(cols)
        return ResultsTable([dict(zip(names, row)) for row in zip(*cols.values())], names)

    def summary(self) -> str:
        counts = {r: self.stop_reason.count(r) for r in STOP_REASONS if r in self.stop_reason}
        stops = ", ".join(f"{r}: {c}" for r, c in counts.items())
        return (
            f"{len(self)} networks ({self.method}) in {self.elapsed:.2f} s; "
            f"epochs run {int(self.epochs_run.min())}..{int(self.epochs_run.max())}; {stops}"
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"ManyResult({self.summary()})"


def _plain(v: Any) -> Any:
    """A NumPy scalar as a plain Python int, float or str."""
    v = np.asarray(v).item() if isinstance(v, (np.generic, np.ndarray)) else v
    return v


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def _net_of(template: MLP) -> _Net:
    return _Net(tuple(template.activations), template.loss, bool(template.article_mode))


@partial(jax.jit, static_argnames=("net",))
def _scores_jit(layers, X, Y, net):
    return _scores_all(_to_internal(layers), X, Y, net)


# ---------------------------------------------------------------- train_many
def train_many(
    params: MLP | Sequence[MLP] | InitSpec,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    seeds: Sequence[int] | ArrayLike | None = None,
    optimizer: str | Callable[..., Optimizer] = "momentum",
    hparams: Mapping[str, Any] | None = None,
    key: ArrayLike | int | None = None,
    keys: ArrayLike | Sequence[int] | None = None,
    epochs: int = 200,
    batch_size: int | None = None,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    tol: float | None = None,
    min_weight_change: float | None = None,
    n_iter_no_change: int | None = None,
    validation_tol: float = 1e-4,
    shuffle: bool | None = None,
    drop_last: bool = False,
    method: str = "auto",
    devices: int | Sequence[Any] | None = None,
    memory_limit: int | None = None,
    check_finite: bool = True,
) -> ManyResult:
    """Train ``N`` networks of one architecture in one compiled call.

    Network ``n`` gets exactly what ``train(params_n, X, Y, optimizer=opt_n, key=key_n,
    ...)`` gives, ``opt_n`` the optimizer built with network ``n``'s hyperparameters.

    Args:
        params: either stacked params (an :class:`MLP` whose leaves have a leading
            axis ``N``, see :func:`stack_params`), a list of ``N`` MLPs, or an
            :class:`InitSpec` together with ``seeds`` (network ``n`` is
            ``init_params(jax.random.key(seeds[n]), ...)``).
        X: inputs, shape ``(n, n_in)``; Y: targets, shape ``(n, n_out)``.
        seeds: with an :class:`InitSpec`, one init seed per network.
        optimizer: a name of :data:`jbpnn.optimizers.OPTIMIZERS` (``"sgd"``,
            ``"momentum"``, ``"adam"``) or a factory ``(**hparams) -> Optimizer``.
        hparams: the factory's arguments. An array of ``N`` numbers gives each
            network its own value (``{"lr": lrs, "m": ms}``); a number, string or
            schedule is shared (``{"variant": "article"}``).
        key: ONE data-order key (int or ``jax.random`` key) shared by every
            network (default 0): the fast ``"fused"`` method.
        keys: one data-order key (or int seed) per network: each network shuffles
            its own way (``"vmap"`` method, slower).
        epochs, batch_size, X_val, Y_val, tol, min_weight_change, n_iter_no_change,
            validation_tol, shuffle, drop_last, check_finite: as :func:`jbpnn.training.train`.
        method: ``"auto"`` (fused with a shared key, vmap with ``keys``), ``"fused"``
            or ``"vmap"``.
        devices: split the networks evenly across these devices (a count, or a list
            of ``jax.Device``); default: every local device. On a CPU, JAX shows one
            device unless started with ``jax.config.update("jax_num_cpu_devices", k)``.
        memory_limit: bytes the run may use (default: the memory available on the
            device, see :func:`available_memory`).

    Returns:
        A :class:`ManyResult`; ``result[i]`` is network ``i``'s ``TrainResult``.

    Raises:
        ValueError: bad shapes, settings or hyperparameters, before any tracing.
        EnsembleTooLarge: the estimated memory exceeds ``memory_limit`` (before allocating).
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if keys is not None and key is not None:
        raise ValueError("give key (one data order for all) or keys (one per network), not both")
    if keys is not None and method == "fused":
        raise ValueError(
            "method='fused' needs every network to share the data order (one key); "
            "with one key per network use method='vmap'"
        )

    # What to train: stacked params, or a spec and seeds (nothing allocated yet).
    seed_arr = None
    if isinstance(params, InitSpec):
        if seeds is None:
            raise ValueError("with an InitSpec, give seeds: one init seed per network")
        seed_arr = _as_seeds(seeds)
        n_nets = len(seed_arr)
        template = _init_one(params, 0)
    else:
        if seeds is not None:
            raise ValueError("seeds go with an InitSpec; stacked params are already initialised")
        if isinstance(params, MLP):
            n_nets = _check_stacked(params)
        elif isinstance(params, (list, tuple)):
            params = stack_params(params)
            n_nets = network_count(params)
        else:
            raise ValueError(
                "params must be stacked params (an MLP with a leading network axis), a list "
                f"of MLPs, or an InitSpec with seeds; got {type(params).__name__}"
            )
        template = _one_network(params)

    X, Y, X_val, Y_val, config = check_training_data(
        template,
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
    opt, traced = _opt_spec(optimizer, hparams, n_nets)
    if keys is not None:
        data_keys = _as_keys(keys, n_nets)
        use = "vmap"
    else:
        data_keys = _as_key(key)
        use = "fused" if method == "auto" else method

    estimate = estimate_memory(
        template,
        n_nets,
        n_examples=X.shape[0],
        batch_size=config.batch_size,
        epochs=config.epochs,
        n_val=0 if X_val is None else X_val.shape[0],
        optimizer=opt.build({k: float(v[0]) for k, v in traced.items()}),
        early_stopping=config.n_iter_no_change is not None,
        own_data_order=keys is not None,
    )
    check_memory(
        estimate, memory_limit, what=f"{n_nets} networks {'-'.join(map(str, template.sizes))}"
    )

    if seed_arr is not None:
        params = init_many(params, seed_arr)
    dtype = template.dtype
    hp = {k: jnp.asarray(v, dtype) for k, v in traced.items()}
    devs = _resolve_devices(devices)
    n_pad = -n_nets % len(devs)  # pad to a multiple of the device count
    own_keys = keys is not None
    if use == "fused":
        run = _compiled(
            _fused_body, (("program", _Program(config, _net_of(template), opt)),), devs, False
        )
        layers = run(_pad(params.layers, n_pad), _pad(hp, n_pad), X, Y, data_keys, X_val, Y_val)
        states = layers._replace(
            params=template.replace_layers(layers.params),
            best_params=None
            if layers.best_params is None
            else template.replace_layers(layers.best_params),
        )
    else:
        static = (("config", config), ("opt", opt), ("shared_key", not own_keys))
        run = _compiled(_vmap_body, static, devs, own_keys)
        data_keys = _pad(data_keys, n_pad) if own_keys else data_keys
        states = run(_pad(params, n_pad), _pad(hp, n_pad), X, Y, data_keys, X_val, Y_val)
    states = jax.device_get(states)
    if n_pad:
        states = jax.tree.map(lambda a: a[:n_nets], states)
    return _many_result(
        states, config, opt, traced, seed_arr, n_nets, use, start, tuple(hparams or {})
    )


def _as_keys(keys: Any, n: int) -> Array:
    if isinstance(keys, jax.Array) and jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        arr = keys
    else:
        arr = np.asarray(keys)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            arr = jax.vmap(jax.random.PRNGKey)(jnp.asarray(arr, jnp.uint32))
        elif not (arr.ndim == 2 and arr.shape[1] == 2 and arr.dtype == np.uint32):
            raise ValueError(
                f"keys must be {n} integer seeds or {n} jax.random keys, got shape {arr.shape}"
            )
    if arr.shape[0] != n:
        raise ValueError(f"keys has {arr.shape[0]} entries for {n} networks; give one per network")
    return jnp.asarray(arr)


def _many_result(
    states: LoopState,
    config: TrainConfig,
    opt: OptSpec,
    traced: dict[str, np.ndarray],
    seeds: np.ndarray | None,
    n: int,
    method: str,
    start: float,
    order: Sequence[str] = (),
) -> ManyResult:
    epochs_run = np.asarray(states.epoch).astype(int)
    stop = np.asarray(states.stop)
    reasons = tuple(STOP_REASONS[_STOP["max_epochs"] if s == _RUNNING else int(s)] for s in stop)
    history = {"loss": np.asarray(states.loss)}
    if config.min_weight_change is not None:
        history["max_weight_change"] = np.asarray(states.max_weight_change)
    if config.has_validation:
        history["val_loss"] = np.asarray(states.val_loss)
        history["val_accuracy"] = np.asarray(states.val_accuracy)
    best_epoch = None
    params = states.params
    if config.n_iter_no_change is not None:
        best_epoch = np.asarray(states.best_epoch).astype(int)
        params = _tree_where_n(jnp.asarray(best_epoch > 0), states.best_params, states.params)
        params = jax.device_get(params)
    table_hp: dict[str, np.ndarray] = {}
    static = dict(opt.static)
    for name in order:  # the user's order of the hyperparameters
        if name in traced:
            table_hp[name] = traced[name]
        elif isinstance(static.get(name), (int, float, str)) and not isinstance(static[name], bool):
            table_hp[name] = np.full(n, static[name])
    if seeds is not None:
        table_hp["seed"] = seeds
    return ManyResult(
        params=params,
        history=history,
        epochs_run=epochs_run,
        stop_reason=reasons,
        best_epoch=best_epoch,
        hparams=table_hp,
        elapsed=time.perf_counter() - start,
        method=method,
        config=config,
        _states=states,
    )


def use_cpu_devices(k: int | None = None) -> int:
    """Ask JAX for ``k`` CPU devices (default: one per core, at most 8), if it has not started.

    ``train_many`` splits its networks across them. Returns the number of
    devices JAX then has (unchanged if JAX had already run something).
    """
    if k is None:
        k = max(1, min(8, os.cpu_count() or 1))
    try:
        if jax.config.jax_num_cpu_devices != k:
            jax.config.update("jax_num_cpu_devices", int(k))
    except (RuntimeError, AttributeError):
        pass  # JAX already started (or too old): keep the devices it has
    return len(jax.local_devices())

"""Train many networks of one architecture at once: sweeps over seeds and hyperparameters.

(One job: ``train_many``'s checks of per-network rows, keys and
thresholds, and :class:`ManyResult`'s views of the stacked run.)

:func:`train_many` trains ``N`` independent networks in ONE compiled program and
returns a :class:`ManyResult` (stacked params, per-network histories, epochs run,
stop reasons, the stacked :class:`jbpnn.training.TrainState`). It is ``jax.vmap`` of
the one epoch step :func:`jbpnn.training.train_epoch` over a leading network axis,
inside the one loop :func:`jbpnn.training.run_epochs`: there is no second copy of
forward or backward. Each network follows ``train``'s stop rules on its own: a
network that has stopped is frozen while the others go on, and its result is the
one ``train`` gives for it alone (same init, data key and hyperparameters).

Data order: with one ``key`` (the default) every network sees the same
mini-batches, which stay un-batched under ``vmap``; the batch gradient of all ``N``
networks is then :func:`jbpnn.ensemble.ensemble_kernel` (the core's formulas for ``N``
networks at once, the first layer ONE product ``X_batch @ W_all``), which the vmapped
core step calls through the batching rule of
:data:`jbpnn.ensemble.ensemble_loss_and_gradient`. With ``keys`` (one per network)
each network shuffles its own way, a gather per network per epoch. With ``rows`` (each
network its own training rows), networks with the same rows AND the same data-order key
(a cross-validation's candidates on one fold, as :class:`jbpnn.sklearn.SweepSearchCV`
makes them) form groups of equal size that share their mini-batches (on several
devices, each device takes an equal share of every group, and all the row sets):
``run_epochs(networks="grouped")`` vmaps over the groups, and within a group the
networks' batch gradient is the ensemble kernel again (16 candidates x 5 folds of
digits 64-64-10: 36 ms an epoch against 79 ms with every network on its own). The
networks are sorted into groups for the run and come back in the caller's order; each
still equals ``train`` on its rows (tested). Groups of unequal size, or ones that do not
split evenly over the devices, train each network on its own.

Optimizer hyperparameters are data (:mod:`jbpnn.optimizers`):
``hparams={"lr": [...], "m": [...]}`` gives each network its own values (arrays
of length ``N``, held in each network's optimizer state); a plain number, string
or schedule is shared by all (``{"variant": "nesterov"}``).

Devices: the networks are split evenly across the local devices (``devices=``); on a
CPU, JAX shows one device unless asked for more before it starts, with
:func:`use_cpu_devices` (one per core). Each device runs its share in its own
loop (``shard_map`` over the network axis), on its own core.

Memory: :func:`train_many` estimates the bytes it needs
(:func:`jbpnn.memory.estimate_memory`) and raises
:class:`jbpnn.memory.EnsembleTooLarge` before allocating anything when that exceeds
the memory available. The history on the device is a ring buffer of
``history_chunk`` epochs per network, copied to the host chunk by chunk.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec
from jax.typing import ArrayLike

from jbpnn.checks import INT32_MAX, as_key, check_int, check_number, keys_from_seeds, to_device
from jbpnn.compilation_cache import default_compilation_cache
from jbpnn.devices import (
    agree_across_processes,
    host_take,
    network_layout,
    place,
    to_host,
    under_own_mesh,
    use_cpu_devices,
)
from jbpnn.ensemble import ensemble_loss_and_gradient
from jbpnn.memory import (
    EnsembleTooLarge,
    can_stop_early,
    check_history_growth,
    check_memory,
    estimate_memory,
)
from jbpnn.network import accuracy_kernel, check_batch, loss_and_gradient_kernel, loss_kernel
from jbpnn.optimizers import OPTIMIZERS, Optimizer, cast_hyperparams, get_optimizer
from jbpnn.params import (
    MLP,
    first_network,
    init_params,
    layer_sizes,
    mapped_layers,
    network_count,
    stacked_layers,
)
from jbpnn.process import guarded
from jbpnn.state import own_nan_markers
from jbpnn.stopping import RUNNING, STOP_REASONS, Stopping, stack_rules, stop_reason_name
from jbpnn.tables import ResultsTable
from jbpnn.training import (
    HISTORY_CHUNK,
    TrainConfig,
    TrainResult,
    TrainState,
    batching,
    check_normal_equations,
    check_progress,
    init_state,
    prepare_training,
    run_chunks,
    run_epochs,
    state_result,
    static_kind,
)

__all__ = [
    "EnsembleTooLarge",
    "InitSpec",
    "ManyResult",
    "init_many",
    "network_count",
    "stack_params",
    "train_many",
    "unstack_params",
    "use_cpu_devices",
]

Array = jax.Array
PyTree = Any


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

    Network ``n`` equals ``init_params(seeds[n], *spec)`` (the same as
    ``init_params(jax.random.key(seeds[n]), ...)``). On a CPU, up to
    :data:`INIT_ONE_BY_ONE` networks are drawn one by one with the program
    ``init_params`` compiles anyway; more by one compiled loop over the seeds
    (:func:`jbpnn.params.mapped_layers`: a second program, compiled in 0.3-0.4 s,
    where vmapping ``init_params`` compiled for 1-7 s). On an accelerator any number
    are drawn in one vmapped draw: there, a draw per network costs a dispatch and a copy
    back each (64 networks: about 60% of a 20-epoch ``train_many`` call's time on an H200).
    """
    seeds = _as_seeds(seeds)
    template = _init_one(spec, int(seeds[0]))  # checks the spec, raises ValueError first
    one_by_one = INIT_ONE_BY_ONE if jax.default_backend() == "cpu" else 1
    if len(seeds) <= one_by_one:  # one by one: one device_get for all (init_params bit for bit)
        layers = stacked_layers(seeds, layer_sizes(spec.sizes), spec.init, template.dtype)
        if layers is not None:
            return template.replace_layers(layers)
        nets = [template] + [_init_one(spec, int(s)) for s in seeds[1:]]
        # ONE device_get for every network's leaves: all the copies start, then one wait
        # (a device_get per network waited for each in turn: 64 round trips on a GPU)
        host = jax.device_get([jax.tree.leaves(p) for p in nets])
        leaves = [np.stack(parts) for parts in zip(*host)]
        return jax.tree.unflatten(jax.tree.structure(template), [to_device(a) for a in leaves])
    if jax.default_backend() == "cpu":  # many: one compiled loop over the seeds
        layers = mapped_layers(seeds, layer_sizes(spec.sizes), spec.init, template.dtype)
        if layers is not None:
            return template.replace_layers(layers)
    keys = keys_from_seeds(np.asarray(seeds, np.uint32))
    stacked = jax.vmap(lambda k: _init_one(spec, k))(keys)
    return template.replace_layers(stacked.layers)


INIT_ONE_BY_ONE = 512  # networks init_many draws one by one before it vmaps the draw


def _init_one(spec: InitSpec, seed_or_key: Any) -> MLP:
    return init_params(seed_or_key, spec.sizes, spec.activations, spec.loss, spec.init, spec.dtype)


def stack_params(networks: Sequence[MLP]) -> MLP:
    """Stack same-architecture networks into one :class:`MLP` with a leading network axis."""
    networks = list(networks)
    if not networks or not all(isinstance(p, MLP) for p in networks):
        raise ValueError("stack_params needs a non-empty sequence of MLPs")
    first = networks[0]
    for i, p in enumerate(networks):
        if network_count(p):  # a stack of stacks: refused only later (save), if at all
            raise ValueError(
                f"stack_params takes single networks; network {i} is already a stack of "
                f"{network_count(p)} (unstack_params(it) gives its networks)"
            )
    for i, p in enumerate(networks[1:], 1):
        # mypy cannot resolve jax's PyTreeDef (jaxlib 0.10 ships no stub for it)
        if jax.tree.structure(p) != jax.tree.structure(first) or p.sizes != first.sizes:  # type: ignore[operator]
            raise ValueError(
                f"network {i} has architecture {p.sizes} {p.activations} {p.loss!r} "
                f"article_mode={p.article_mode}; expected {first.sizes} {first.activations} "
                f"{first.loss!r} article_mode={first.article_mode} like network 0"
            )
        dtypes = [jnp.result_type(leaf).name for leaf in jax.tree.leaves(p)]
        expected = [jnp.result_type(leaf).name for leaf in jax.tree.leaves(first)]
        if dtypes != expected:  # jnp.stack would promote: network i in another precision
            raise ValueError(
                f"network {i} has {'/'.join(dict.fromkeys(dtypes))} params; expected "
                f"{'/'.join(dict.fromkeys(expected))} like network 0 (a stack has one dtype: "
                "convert them first, e.g. with jax.tree.map(lambda a: a.astype(dtype), net))"
            )
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *networks)


def unstack_params(stacked: MLP) -> list[MLP]:
    """The inverse of :func:`stack_params`."""
    if not isinstance(stacked, MLP) or not network_count(stacked):
        raise ValueError(
            "unstack_params takes stacked networks (every w (N, n_in, n_out)); got "
            f"{'one network' if isinstance(stacked, MLP) else type(stacked).__name__}"
        )
    n = stacked.layers[0].w.shape[0]
    return [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(n)]


def _as_seeds(seeds: Any) -> np.ndarray:
    if isinstance(seeds, range):  # NumPy's own: no Python int per network first
        seeds = np.arange(seeds.start, seeds.stop, seeds.step, dtype=np.int64)
    arr = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers, got {seeds!r}")
    if arr.min() < 0 or arr.max() >= 2**32:
        raise ValueError("seeds must lie in 0 .. 2**32 - 1")
    return arr.astype(np.int64)


def _split_hparams(
    optimizer: str | Callable[..., Any] | Optimizer, hparams: Mapping[str, Any] | None, n: int
) -> tuple[Optimizer, dict[str, np.ndarray], dict[str, Any]]:
    """``(template optimizer, per-network values, shared values)``, every value checked.

    The template is built with the per-network hyperparameters as arrays, so that
    its *kind* holds them as data (weight decay swept from 0 is switched on).
    """
    build: Callable[..., Any]  # values -> the optimizer
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; expected one of {list(OPTIMIZERS)}, "
                "a factory like jbpnn.optimizers.momentum, or an Optimizer"
            )
        build = partial(get_optimizer, optimizer)  # the one name-to-optimizer lookup
    elif isinstance(optimizer, Optimizer):
        base = optimizer

        def build(**values: Any) -> Optimizer:
            return base.replace(**values)
    elif callable(optimizer):
        build = optimizer
    else:
        raise ValueError(
            f"optimizer must be a name, a factory function or an Optimizer, got {optimizer!r}"
        )
    shared: dict[str, Any] = {}
    per: dict[str, np.ndarray] = {}
    firsts: dict[str, Any] = {}  # a value of each, as given (ints stay ints)
    for name, value in dict(hparams or {}).items():
        if isinstance(value, str) or callable(value) or value is None:
            shared[name] = value
            continue
        arr = np.asarray(value)
        if arr.ndim == 0:
            shared[name] = arr.item()  # checked by the factory as a plain number
        elif arr.shape == (n,) and np.all(arr == arr[0]):
            shared[name] = arr[0].item()  # the same for every network: shared (ints stay ints)
        elif arr.shape == (n,) and arr.dtype.kind == "c":  # astype(float) cut it to its real part
            raise ValueError(
                f"hyperparameter {name!r} must be real numbers, one per network; got complex "
                f"ones ({arr.tolist()})"
            )
        elif arr.shape == (n,) and np.issubdtype(arr.dtype, np.number):
            per[name] = arr.astype(float)
            firsts[name] = arr[np.argmax(arr != 0)].item()  # a non-zero one: "on"
        elif arr.shape == (n,):  # True/False, names: a switch of the optimizer, never data
            raise ValueError(
                f"hyperparameter {name!r} cannot differ between networks: only numbers can "
                f"be given per network, got {sorted(set(arr.tolist()), key=repr)}; train "
                "each value in its own train_many call"
            )
        else:
            raise ValueError(
                f"hyperparameter {name!r} must be one value for every network or an array of "
                f"{n} numbers (one per network), got shape {arr.shape}"
            )

    def make(values: Mapping[str, Any]) -> Any:
        try:
            return build(**shared, **values)
        except TypeError as error:
            given = sorted(hparams or {}) or "none given (hparams={'lr': ...}, say)"
            raise ValueError(f"optimizer hyperparameters {given}: {error}") from None

    def refuse_static(optimizer: Any) -> None:
        missing = sorted(set(per) - set(getattr(optimizer, "hyperparams", {})))
        if missing:
            raise ValueError(
                f"hyperparameters {missing} cannot differ between networks: {optimizer!r} does "
                "not hold them as data (only an Optimizer's hyperparams can); give one shared value"
            )

    # What the optimizer holds as data can differ between networks; a static option
    # (lbfgs's history, the shape of its memory) cannot: asked first, with values as given
    # (an int stays an int; a float value would fail the option's own integer check).
    try:
        first_net = make(firsts)
    except ValueError:  # a bad value: the checks below name its network
        first_net = None
    if first_net is not None:
        refuse_static(first_net)
    # Each distinct combination once, as plain numbers: the factory's checks run here.
    rows = np.stack(list(per.values()), axis=1) if per else None
    first = [0] if rows is None else np.unique(rows, axis=0, return_index=True)[1]
    for i in sorted(int(j) for j in first):
        try:
            make({k: float(v[i]) for k, v in per.items()})
        except ValueError as error:
            where = f" for network {i}" if per else ""  # shared ones: every network's fault
            raise ValueError(f"bad optimizer hyperparameter{where}: {error}") from None
    template = make({k: to_device(v[0]) for k, v in per.items()})
    refuse_static(template)
    return template, per, shared


# ---------------------------------------------------------------- devices
@functools.cache
def _compiled(
    layout: tuple,
    config: TrainConfig,
    optimizer: Any,
    grad_fn: Any,
    order: str,
    own_rows: bool = False,
    own_val: bool = False,
    own_rules: bool = False,
):
    """:func:`jbpnn.training.run_epochs` over a network axis, jitted.

    ``layout`` is ``(mesh, network_axis, data_axis)``: the networks split evenly
    over ``network_axis`` (``shard_map``; each device group runs its share in its
    own loop and never waits for the others), and with a ``data_axis`` every
    mini-batch of a network split across that axis too. ``mesh`` None: one device.
    """
    mesh, net_axis, data_axis = layout
    fn = partial(
        run_epochs,
        config=config,
        optimizer=optimizer,
        grad_fn=grad_fn,
        networks=order,
        mesh=None if data_axis is None else (None, data_axis),
        own_val=own_val,
        own_rules=own_rules,
    )
    if mesh is not None:
        net, rep = PartitionSpec(net_axis), PartitionSpec()
        data = net if own_rows else rep  # each network's own rows travel with it
        val = net if own_val else rep
        rules = net if own_rules else rep
        fn = jax.shard_map(
            fn, mesh=mesh, in_specs=(net, data, val, rules, rep), out_specs=net, check_vma=False
        )
    return jax.jit(fn)


def _row_sets(name: str, rows: Any, n: int, n_data: int) -> list[np.ndarray]:
    """``n`` checked, non-empty 1-D integer index arrays into ``n_data`` rows."""
    try:
        idx = [np.asarray(r) for r in rows]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {n} index arrays, got {rows!r}") from None
    if len(idx) != n:
        raise ValueError(f"{name} has {len(idx)} entries for {n} networks; give one per network")
    for i, r in enumerate(idx):
        if r.ndim != 1 or r.size == 0 or not np.issubdtype(r.dtype, np.integer):
            raise ValueError(f"{name}[{i}] must be a non-empty 1-D array of row indices")
        if r.min() < 0 or r.max() >= n_data:
            raise ValueError(f"{name}[{i}] has indices outside 0 .. {n_data - 1}")
    return idx


def _row_groups(
    idx: list[np.ndarray], key_data: np.ndarray, n_devices: int = 1
) -> tuple[np.ndarray, int] | None:
    """Networks with the same training rows and data-order key, as ``G`` groups of equal size.

    Returns ``(perm, G)``, ``perm`` sorting the networks device by device, then group by
    group (in order within a group): each of the ``n_devices`` consecutive shares holds
    ``1/n_devices`` of every group. None when no two networks share rows and key, the
    groups differ in size, or a group does not split evenly over the devices.
    """
    ids: dict[tuple[bytes, bytes], int] = {}
    group = np.array(
        [
            ids.setdefault((np.asarray(r, np.int64).tobytes(), k.tobytes()), len(ids))
            for r, k in zip(idx, key_data)
        ]
    )
    n, n_groups = len(idx), len(ids)
    size = n // n_groups
    if n_groups == n or n % n_groups or np.any(np.bincount(group) != size) or size % n_devices:
        return None
    members = np.argsort(group, kind="stable").reshape(n_groups, n_devices, size // n_devices)
    return members.transpose(1, 0, 2).reshape(-1), n_groups


def _stoppings(stopping: Any, thresholds: dict[str, Any], n: int) -> list[Stopping]:
    """The networks' stop rules: ``[one]`` when every network shares them, else ``n``
    (network ``i``'s from the thresholds given as one value per network)."""
    if stopping is not None and not isinstance(stopping, Stopping):
        stoppings = list(stopping)
        if len(stoppings) != n or not all(isinstance(s, Stopping) for s in stoppings):
            raise ValueError(
                f"stopping must be one jbpnn Stopping or a sequence of {n} (one per network)"
            )
        Stopping.from_keywords(stoppings[0], **thresholds)  # not both spellings
        return stoppings if len(set(stoppings)) > 1 else stoppings[:1]
    own = {}
    for name, value in thresholds.items():
        if isinstance(value, (list, tuple, np.ndarray, jax.Array)):
            values: list[Any] | None
            if isinstance(value, (list, tuple)):  # as given: NumPy made [2, 2.5] all floats,
                values = list(value)  # and the refusal of 2.5 named network 0's 2.0
            else:
                values = list(np.asarray(value).tolist()) if np.ndim(value) == 1 else None
            if values is None or len(values) != n:
                raise ValueError(
                    f"{name}: give one number for every network or a sequence of {n} "
                    f"(one per network), got shape {np.shape(value)}"
                )
            own[name] = values
    if not own:
        return [Stopping.from_keywords(stopping, **thresholds)]
    if stopping is not None:
        Stopping.from_keywords(stopping, **thresholds)  # raises: both spellings
    stoppings = []
    for i in range(n):
        try:
            stoppings.append(Stopping(**{**thresholds, **{k: v[i] for k, v in own.items()}}))
        except ValueError as error:
            raise ValueError(f"network {i}: {error}") from None
    return stoppings


def _own_val(val_rows: Any, n: int, val: tuple) -> tuple:
    """Every network's own validation rows of ``val``, padded to one length with weight 0:
    ``(X_val, Y_val, weight)`` with a leading network axis."""
    X_val, Y_val, *w = val
    idx = _row_sets("val_rows", val_rows, n, X_val.shape[0])
    m = max(len(r) for r in idx)
    take = np.stack([np.concatenate([r, np.zeros(m - len(r), r.dtype)]) for r in idx])
    real = (np.arange(m)[None, :] < np.array([len(r) for r in idx])[:, None]).astype(
        np.dtype(X_val.dtype)
    )
    if w:
        real = real * np.asarray(w[0])[take]
        if not (real.sum(axis=1) > 0).all():
            bad = int(np.argmin(real.sum(axis=1)))
            raise ValueError(f"val_sample_weight is 0 on every row of val_rows[{bad}]")
    t = jnp.asarray(take)
    return X_val[t], Y_val[t], jnp.asarray(real)


def _own_rows(
    rows: Any,
    n: int,
    data: tuple,
    config: TrainConfig,
    batch_size: Any,
    shuffle: Any,
    drop_last: Any,
    labels: Any = None,
) -> tuple[tuple, TrainConfig]:
    """Every network's own training rows, padded to one length with weight-0 rows.

    Returns the per-network data ``(X, Y, weight, n_rows)`` (leading axis ``n``) and
    the config for ``n_max`` rows. ``labels``: the network each row set belongs to, for
    the messages (default ``0 .. n - 1``; a group's first network for grouped rows).
    """
    if drop_last:
        raise ValueError("rows= (one set of training rows per network) cannot drop_last")
    X, Y, weight = data
    idx = _row_sets("rows", rows, n, X.shape[0])
    label = np.arange(n) if labels is None else np.asarray(labels)
    n_rows = np.array([len(r) for r in idx])
    n_max = int(n_rows.max())
    if batch_size is not None and batch_size > n_rows.min():
        raise ValueError(
            f"batch_size={batch_size} is larger than the {int(n_rows.min())} rows of network "
            f"{int(label[n_rows.argmin()])}"
        )
    padded = np.stack([np.concatenate([r, np.zeros(n_max - len(r), r.dtype)]) for r in idx])
    real = np.arange(n_max)[None, :] < n_rows[:, None]
    w = real.astype(np.dtype(X.dtype))
    if weight is not None:
        w = w * np.asarray(weight)[padded]
        totals = w.sum(axis=1)
        if not (totals > 0).all():
            bad = int(label[np.argmin(totals > 0)])
            raise ValueError(
                f"network {bad}: sample_weight is 0 on every row of rows[{bad}]; each network "
                "needs training rows of positive total weight (its weighted mean loss would "
                "be 0/0)"
            )
    sizes = batching(n_max, batch_size, shuffle, False)
    # The padding rows come last in every epoch's order (shuffle_order), so a batch
    # can be all padding only if a network's real rows end before the last batch;
    # only then (or with the caller's weights, which may be 0) must an update whose
    # batch weighs 0 be skipped (TrainConfig.weighted: a select over the state per update).
    some_empty = int(n_rows.min()) <= (sizes["n_batches"] - 1) * sizes["batch_size"]
    new = config._replace(**sizes, weighted=weight is not None or some_empty)
    if all(getattr(a, "is_fully_addressable", True) for a in (X, Y)):  # gathered on the host:
        X, Y = (to_device(np.asarray(a)[padded]) for a in (X, Y))  # no program compiled
    else:  # a global array spanning processes: gathered where it lives
        take = jnp.asarray(padded)
        X, Y = X[take], Y[take]
    return (X, Y, to_device(w), to_device(n_rows.astype(np.int32))), new


def _pad(tree: PyTree, n_pad: int) -> PyTree:
    """Append ``n_pad`` copies of network 0 (removed again after training)."""
    if n_pad == 0:
        return tree
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[:1], n_pad, axis=0)]), tree)


# ---------------------------------------------------------------- train_many
@guarded("jbpnn.train_many")  # no hang in a forked child; a bound on compiled programs
@own_nan_markers
@under_own_mesh(
    lambda kw: network_layout(
        kw.get("mesh"), kw.get("devices"), kw.get("network_axis"), kw.get("data_axis")
    )[0]
)
def train_many(
    params: MLP | Sequence[MLP] | InitSpec,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    seeds: Sequence[int] | ArrayLike | None = None,
    optimizer: str | Callable[..., Any] | Optimizer = "momentum",
    hparams: Mapping[str, Any] | None = None,
    key: ArrayLike | int | None = None,
    keys: ArrayLike | Sequence[int] | None = None,
    rows: Sequence[ArrayLike] | None = None,
    epochs: int = 200,
    batch_size: int | None = None,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    val_rows: Sequence[ArrayLike] | None = None,
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
    stopping: Stopping | Sequence[Stopping] | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
    grad_fn: Callable[..., Any] | None = None,
    devices: int | Sequence[Any] | None = None,
    mesh: Any = None,
    network_axis: str | None = None,
    data_axis: str | None = None,
    memory_limit: int | None = None,
    history_chunk: int = HISTORY_CHUNK,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    check_finite: bool = True,
) -> ManyResult:
    """Train ``N`` networks of one architecture in one compiled call.

    Network ``n`` gets what ``train(params_n, X, Y, optimizer=opt_n, key=key_n, ...)``
    gives, ``opt_n`` the optimizer with network ``n``'s hyperparameters: the same data
    order, rules and stop, and the same values up to rounding (the batched products may
    round their last bit otherwise; along a non-convex full-batch path, ``lbfgs``, ``lm``
    or ``br``, such a bit can grow: final losses 0.001194 and 0.001224 after 80 L-BFGS
    iterations in float64, one network in a red-team run).

    Args:
        params: either stacked params (an :class:`MLP` whose leaves have a leading
            axis ``N``, see :func:`stack_params`), a list of ``N`` MLPs, or an
            :class:`InitSpec` together with ``seeds`` (network ``n`` is
            ``init_params(jax.random.key(seeds[n]), ...)``).
        X: inputs, shape ``(n, n_in)``.
        Y: targets, shape ``(n, n_out)``.
        seeds: with an :class:`InitSpec`, one init seed per network.
        optimizer: a name of :data:`jbpnn.optimizers.OPTIMIZERS` (``"sgd"``,
            ``"momentum"``, ``"adam"``), a factory ``(**hparams) -> Optimizer``, or an
            :class:`jbpnn.optimizers.Optimizer` whose hyperparameters ``hparams`` sets.
        hparams: the optimizer's arguments. An array of ``N`` numbers gives each
            network its own value (``{"lr": lrs, "m": ms}``); a number, string or
            schedule is shared (``{"variant": "article"}``).
        key: ONE data-order key (int or ``jax.random`` key) shared by every
            network (default 0): the networks see the same mini-batches, and each
            layer of all of them is one large product.
        keys: one data-order key (or int seed) per network: each network shuffles
            its own way (a gather per network per epoch: slower).
        rows: one array of row indices into ``X``/``Y`` per network: each network
            trains on its own rows only (e.g. the training folds of a
            cross-validation), and gets what ``train`` gives (up to rounding) on
            ``X[rows[i]], Y[rows[i]]`` with the same key (as long as the row counts
            need the same number of index bits, see
            :func:`jbpnn.training.shuffle_order`). Networks with the same rows and key
            share their mini-batches (see the module's docstring). ``batch_size`` is
            checked against each network's rows, as ``train`` checks it (rows drawn with
            replacement may outnumber ``X``'s), and a full-batch optimizer needs
            ``batch_size=None``.
        val_rows: one array of row indices into ``X_val``/``Y_val`` per network:
            each network validates (and early-stops) on its own rows, e.g. the
            validation split of its fold (pass ``X_val=X, Y_val=Y`` to take them
            from the training data); network ``i`` then gets what ``train`` gives
            with ``X_val[val_rows[i]], Y_val[val_rows[i]]``.
        tol, min_weight_change, n_iter_no_change, validation_tol, loss_patience,
            loss_tol, lr_factor, min_lr, max_loss_growth, max_abs_param: the stop
            rules of :func:`jbpnn.training.train`, meaning what they mean there; each a
            single value for every network, or a sequence of ``N`` (one per network:
            thresholds are data too, one compiled program). A rule is on or off (None)
            for all networks.
        stopping: those keywords as one :class:`jbpnn.stopping.Stopping` for every
            network, or a sequence of ``N`` (one per network); not both.
        epochs, batch_size, X_val, Y_val, sample_weight, val_sample_weight, monitor,
            shuffle, drop_last, grad_fn, history_chunk, check_finite: as
            :func:`jbpnn.training.train`.
        devices: split the networks evenly across these devices (a count, or a list
            of ``jax.Device``); default: every local device. On a CPU, JAX shows one
            device unless started with :func:`use_cpu_devices`.
        mesh: a ``jax.sharding.Mesh`` instead of ``devices``: the networks split
            over ``network_axis`` (default: the mesh's only axis, or the one that is
            not ``data_axis``) and, with ``data_axis``, every mini-batch split over
            that axis as in data-parallel ``train`` (each network's gradient
            all-reduced over it).
        network_axis: the name of the ``mesh`` axis the networks split over; None
            (default) for the mesh's only axis, or the one that is not ``data_axis``
            (a mesh with more axes needs it). Only with ``mesh``.
        data_axis: the name of a ``mesh`` axis every mini-batch splits over (see
            ``mesh``); None (default): each network's batch is not split. Only with
            ``mesh``, and not ``network_axis``.
        memory_limit: bytes the run may use (default: the memory available on the
            device, see :func:`jbpnn.memory.available_memory`).
        progress: called after every chunk of ``history_chunk`` epochs with a dict
            ``epoch``, ``epochs``, ``running`` (networks still training), ``elapsed``.

    Returns:
        A :class:`ManyResult`; ``result[i]`` is network ``i``'s ``TrainResult``.

    Raises:
        ValueError: bad shapes, settings or hyperparameters, before any tracing.
        EnsembleTooLarge: the estimated memory exceeds ``memory_limit`` (before allocating).
    """
    thresholds = {
        "tol": tol,
        "min_weight_change": min_weight_change,
        "n_iter_no_change": n_iter_no_change,
        "validation_tol": validation_tol,
        "monitor": monitor,
        "loss_patience": loss_patience,
        "loss_tol": loss_tol,
        "lr_factor": lr_factor,
        "min_lr": min_lr,
        "max_loss_growth": max_loss_growth,
        "max_abs_param": max_abs_param,
    }
    start = time.perf_counter()
    default_compilation_cache()  # on in the per-user folder unless turned off, as train does
    if keys is not None and key is not None:
        raise ValueError("give key (one data order for all) or keys (one per network), not both")
    check_progress(progress)
    epochs = check_int("epochs", epochs, 1, high=INT32_MAX)  # the epoch counter is int32
    if memory_limit is not None:  # bytes: True, a string or NaN fell through to odd errors
        check_number("memory_limit", memory_limit, low=0.0)
        if not memory_limit > 0:
            raise ValueError(
                f"memory_limit must be a positive number of bytes, got {memory_limit!r}"
            )
    if mesh is not None:  # several processes: the same arguments everywhere, or a clear error
        agree_across_processes(
            mesh,
            "train_many",
            dict(
                params=params, X=X, Y=Y, seeds=seeds, optimizer=optimizer, hparams=hparams,
                epochs=epochs, batch_size=batch_size, key=key, keys=keys, X_val=X_val,
                Y_val=Y_val, rows=rows, val_rows=val_rows, sample_weight=sample_weight,
                val_sample_weight=val_sample_weight, stopping=stopping, shuffle=shuffle,
                drop_last=drop_last, grad_fn=grad_fn, network_axis=network_axis,
                data_axis=data_axis, history_chunk=history_chunk, **thresholds,
            ),
        )  # fmt: skip

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
            given = (
                "one network (to draw networks from seeds, describe them with "
                "jbpnn.InitSpec(sizes, activations, loss, init=...))"
                if isinstance(params, MLP) and network_count(params) == 0
                else "params that are already initialised"
            )
            raise ValueError(f"seeds go with an InitSpec, got {given}")
        if isinstance(params, MLP):
            n_nets = network_count(params)
            if n_nets == 0:
                raise ValueError(
                    "train_many needs stacked params (w 3-D, b 2-D: a leading network axis), "
                    "got one network; stack networks with stack_params, or pass an InitSpec "
                    "with seeds"
                )
        elif isinstance(params, (TrainState, TrainResult, ManyResult)):
            # a TrainState is a tuple: stack_params said "needs a sequence of MLPs"
            raise ValueError(
                "train_many starts from params; it does not resume a run: go on with one "
                "network at a time, train(result[i], X, Y, epochs=k) for a ManyResult, or "
                "train(jax.tree.map(lambda a: a[i], state), X, Y, optimizer=..., epochs=k) "
                "for a stacked TrainState (a loaded checkpoint's); or start train_many "
                "afresh from its .params"
            )
        elif isinstance(params, (list, tuple)):
            params = stack_params(params)
            n_nets = network_count(params)
        else:
            raise ValueError(
                "params must be stacked params (an MLP with a leading network axis), a list "
                f"of MLPs, or an InitSpec with seeds; got {type(params).__name__}"
            )
        template = first_network(params)

    opt, per, shared = _split_hparams(optimizer, hparams, n_nets)
    stoppings = _stoppings(stopping, thresholds, n_nets)
    if rows is not None:  # the batches are cut from each network's rows, checked there
        check_int("batch_size", batch_size, 1, allow_none=True)
    run = prepare_training(
        template,
        X,
        Y,
        optimizer=opt,
        stopping=stoppings[0],
        X_val=X_val,
        Y_val=Y_val,
        sample_weight=sample_weight,
        val_sample_weight=val_sample_weight,
        # rows= (bootstrap rows may outnumber X's): batch_size applies to each network's
        # rows (_own_rows), not to X's
        batch_size=None if rows is not None else batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        history_chunk=history_chunk,
        check_finite=check_finite,
        template=template,
    )
    stoppings = [s.for_optimizer(run.optimizer) for s in stoppings]  # as train's
    own_thresholds = len(stoppings) > 1
    if getattr(run.optimizer, "needs_normal_equations", False):  # lm, br: N copies of J^T J
        check_normal_equations(
            template, run.optimizer, n_networks=n_nets, limit=memory_limit,
            n_examples=run.data[0].shape[0],
        )  # fmt: skip
    config, data, val = run.config, run.data, run.val
    order = "own" if keys is not None or rows is not None else "shared"
    if val_rows is not None and val is None:
        raise ValueError("val_rows index X_val and Y_val: give them too (X_val=X, Y_val=Y)")
    # The memory check comes before the per-network copies of rows= and val_rows=
    # (N copies of the largest set each), and counts them.
    n_each = data[0].shape[0]
    batch_rows = config.batch_size  # the rows of one update, for the memory estimate
    if rows is not None:
        row_idx = _row_sets("rows", rows, n_nets, n_each)  # checked once, used below
        n_each = max(len(r) for r in row_idx)
        batch_rows = n_each if batch_size is None else batch_size  # _own_rows checks it
        if getattr(run.optimizer, "full_batch", False) and batch_size is not None:
            short = [i for i, r in enumerate(row_idx) if len(r) != batch_size]
            if short:  # train's refusal, for each network's rows
                raise ValueError(
                    f"{run.optimizer!r} is a full-batch optimizer (one update per epoch over "
                    f"each network's training rows): give batch_size=None, not {batch_size!r} "
                    f"(network {short[0]} has {len(row_idx[short[0]])} rows)"
                )
    n_val = 0 if val is None else val[0].shape[-2]
    if val_rows is not None:
        n_val = max(len(r) for r in _row_sets("val_rows", val_rows, n_nets, n_val))
    layout = network_layout(mesh, devices, network_axis, data_axis)
    # every device of the mesh holds a copy of the data its networks share; CPU devices
    # share the host's memory, an accelerator's own is checked for its share
    held_on = [jax.devices()[0]] if layout[0] is None else list(layout[0].devices.flat)
    # a run that a stop rule can end early: its host history checked as it grows
    stops_early = can_stop_early(config, stoppings, run.optimizer)
    estimate = estimate_memory(
        template,
        n_nets,
        n_examples=n_each,
        batch_size=batch_rows,
        epochs=epochs,
        n_val=n_val,  # per network
        optimizer=opt,
        early_stopping=config.early_stopping,
        own_data_order=order == "own",
        own_validation=val_rows is not None,
        history_chunk=config.history_chunk,
        history_keys=len(config.history_keys()),
        host_epochs=config.history_chunk if stops_early else None,
        devices=1 if layout[0] is None else int(layout[0].shape[layout[1]]),
        own_memory=any(d.platform != "cpu" for d in held_on),
    )
    what = f"{n_nets} networks {'-'.join(map(str, template.sizes))}"
    check_memory(estimate, memory_limit, what=what, devices=held_on)
    if keys is not None:
        data_keys = _as_keys(keys, n_nets)
    elif rows is not None:  # each network its own rows, every one the same data-order key
        data_keys = jnp.stack([as_key(key)] * n_nets)
    else:
        data_keys = as_key(key)
    # Networks with the same rows and data-order key (a cross-validation's candidates on
    # one fold) train as groups that share their mini-batches: sorted device by device,
    # group by group here (perm), back in the caller's order at the end.
    perm, hp_values, init_seeds, row_labels = None, per, seed_arr, None
    n_devices = 1 if layout[0] is None else int(layout[0].shape[layout[1]])
    if rows is not None and layout[2] is None:
        key_data = np.asarray(jax.random.key_data(data_keys))
        found = _row_groups(row_idx, key_data, n_devices)
        if found is not None:
            perm, n_groups = found
            order = "grouped"
            row_labels = perm[: n_nets // n_devices : n_nets // n_devices // n_groups]
            rows = [row_idx[i] for i in row_labels]  # one row set per group
            if val_rows is not None:
                val_rows = [val_rows[i] for i in perm]
            data_keys = jax.random.wrap_key_data(key_data[perm])  # on the host: no program
            hp_values = {k: np.asarray(v)[perm] for k, v in per.items()}
            if own_thresholds:
                stoppings = [stoppings[i] for i in perm]
            if seed_arr is not None:
                init_seeds = seed_arr[perm]
            else:
                params = jax.tree.map(lambda a: a[jnp.asarray(perm)], params)
    if val_rows is not None:
        assert val is not None  # refused above: val_rows without X_val
        val = _own_val(val_rows, n_nets, val)
    if rows is not None:
        n_sets = n_nets if row_labels is None else len(row_labels)
        data, config = _own_rows(
            rows, n_sets, data, config, batch_size, shuffle, drop_last, row_labels
        )

    if init_seeds is not None:
        assert isinstance(params, InitSpec)  # seed_arr is set for an InitSpec only
        params = init_many(params, init_seeds)
    if layout[2] is not None:  # batches split over the data axis: pad them to a multiple
        config = config._replace(shards=int(layout[0].shape[layout[2]]))
    groups = 1 if layout[0] is None else int(layout[0].shape[layout[1]])
    n_pad = -n_nets % groups  # pad to a multiple of the device (group) count
    kind = static_kind(opt)
    hp = _all_hyperparams(opt, hp_values, n_nets, template.dtype)
    own = order in ("own", "grouped")
    state = _init_many_jit(
        _pad(params, n_pad),
        _pad(hp, n_pad),
        _pad(data_keys, n_pad) if own else data_keys,
        opt=kind,
        config=config,
        own_keys=own,
    )
    grad = grad_fn
    if grad is None:  # shared batches, not split: one product per layer for all networks
        one_batch = order in ("shared", "grouped") and layout[2] is None
        grad = ensemble_loss_and_gradient if one_batch else loss_and_gradient_kernel
    loop = _compiled(
        layout,
        config,
        kind,
        grad,
        order,
        rows is not None and order != "grouped",  # grouped: every device all the row sets
        val_rows is not None,
        own_thresholds,
    )
    if rows is not None and order != "grouped":
        data = _pad(data, n_pad)
    rules = run.rules
    if own_thresholds:  # each network its own thresholds: StopRules of (N,) arrays
        rules = _pad(stack_rules(stoppings, template.dtype), n_pad)
    if val_rows is not None:
        val = _pad(val, n_pad)
    if layout[0] is not None:  # on the mesh before the call: Explicit axes need it
        net_axis = layout[1]
        state = place(state, layout[0], net_axis)
        own_rows = rows is not None and order != "grouped"
        data = place(data, layout[0], net_axis if own_rows else None)
        val = place(val, layout[0], net_axis if val_rows is not None else None)
        rules = place(rules, layout[0], net_axis if own_thresholds else None)
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in config.history_keys()}

    back = slice(None) if perm is None else np.argsort(perm)  # to the caller's order
    item, host_part = np.dtype(template.dtype).itemsize, estimate.parts["host_history"]

    def collect(epoch: int, done: Any, stop: Any, history: dict) -> int:
        done, stop = done[:n_nets][back], stop[:n_nets][back]  # host copies (run_chunks)
        reached = int(done.max())
        span = np.arange(epoch, reached)
        for k in pieces:  # a network that stopped earlier: NaN after its last epoch
            chunk = history[k][:n_nets][back][:, span % config.history_chunk]
            pieces[k].append(np.where(span[None, :] < done[:, None], chunk, np.nan))
        if stops_early and reached < epochs:  # the next chunk's history, and the join
            held = sum(a.nbytes for v in pieces.values() for a in v)
            more = len(pieces) * n_nets * min(config.history_chunk, epochs - reached) * item
            limit = None  # memory_limit: what the rest of the run leaves the history
            if memory_limit is not None:
                limit = int(memory_limit) - (estimate.total - n_nets * host_part) - held
            check_history_growth(held, more, what, limit)
        if progress is not None:
            # the last chunk's: every network is done (those still RUNNING at max epochs)
            running = 0 if reached >= epochs else int(np.sum(stop == RUNNING))
            elapsed = time.perf_counter() - start
            progress({"epoch": reached, "epochs": epochs, "running": running, "elapsed": elapsed})
        return reached

    state = run_chunks(
        lambda s, until: loop(s, data, val, rules, np.int32(until)),
        state,
        0,
        epochs,
        config.history_chunk,
        collect,
    )
    state = to_host(state)
    if n_pad:
        state = host_take(state, slice(0, n_nets))
    if perm is not None:
        state = host_take(state, back)
    history = {
        k: np.concatenate(v, axis=1) if v else np.zeros((n_nets, 0)) for k, v in pieces.items()
    }
    result = _many_result(
        state,
        history,
        config,
        opt,
        per,
        shared,
        seed_arr,
        n_nets,
        "own" if order == "grouped" else order,  # grouped: each network its own rows, as own
        start,
        tuple(hparams or {}),
    )
    # the call's settings, as train records them: a resume of result[i] without them warns
    return dataclasses.replace(result, batching=(batch_size, shuffle, drop_last))


def _all_hyperparams(opt: Any, per: dict[str, np.ndarray], n: int, dtype: Any) -> dict[str, Array]:
    """Every hyperparameter of ``opt`` as an array of ``n`` values (shared ones repeated)."""
    if not isinstance(opt, Optimizer):
        return {}
    given = {
        name: per[name] if name in per else np.full(n, float(value))
        for name, value in opt.hyperparams.items()
    }
    cast = cast_hyperparams(opt.name, given, dtype)  # refused: a value the dtype changes
    return {name: to_device(values) for name, values in cast.items()}  # cast by NumPy


@partial(jax.jit, static_argnames=("opt", "config", "own_keys"))
def _init_many_jit(params: MLP, hp: dict, keys: Array, *, opt, config, own_keys) -> TrainState:
    """Every network's :func:`jbpnn.training.init_state`, with its own hyperparameters.

    ``opt`` is static: an optimizer kind (its values arrive in ``hp``, traced) or the
    user's own optimizer.
    """

    def one(p: MLP, h: dict, k: Array) -> TrainState:
        network_opt = Optimizer(opt.name, opt.options, h) if isinstance(opt, Optimizer) else opt
        return init_state(p, network_opt, config, k)

    return jax.vmap(one, in_axes=(0, 0, 0 if own_keys else None))(params, hp, keys)


def _as_keys(keys: Any, n: int) -> Array:
    arr: Any  # the keys; NumPy seeds or key data before they are made keys
    if isinstance(keys, jax.Array) and jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        arr = keys
    else:
        arr = np.asarray(keys)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            if arr.size and (arr.min() < 0 or arr.max() >= 2**32):
                raise ValueError("keys: seeds must lie in 0 .. 2**32 - 1")
            arr = keys_from_seeds(arr.astype(np.uint32))
        elif arr.ndim == 2 and arr.shape[1] == 2 and arr.dtype == np.uint32:
            arr = jax.random.wrap_key_data(to_device(arr))
        else:
            raise ValueError(
                f"keys must be {n} integer seeds or {n} jax.random keys, got shape {arr.shape}"
            )
    if arr.shape[0] != n:
        raise ValueError(f"keys has {arr.shape[0]} entries for {n} networks; give one per network")
    return arr


def _many_result(
    state: TrainState,
    history: dict[str, np.ndarray],
    config: TrainConfig,
    opt: Any,
    per: dict[str, np.ndarray],
    shared: dict[str, Any],
    seeds: np.ndarray | None,
    n: int,
    method: str,
    start: float,
    order: Sequence[str] = (),
) -> ManyResult:
    epochs_run = np.asarray(state.epoch).astype(int)
    reasons = tuple(stop_reason_name(int(s)) for s in np.asarray(state.stop))
    best_epoch = None
    params = state.params
    if config.early_stopping:
        best_epoch = np.asarray(state.best_epoch).astype(int)
        pick = best_epoch > 0
        params = jax.tree.map(
            lambda b, p: np.where(pick.reshape((-1,) + (1,) * (np.ndim(p) - 1)), b, p),
            state.best_params,
            state.params,
        )
    table_hp: dict[str, np.ndarray] = {}
    for name in order:  # the user's order of the hyperparameters
        if name in per:
            table_hp[name] = per[name]
        elif isinstance(shared.get(name), (int, float, str)) and not isinstance(shared[name], bool):
            table_hp[name] = np.full(n, shared[name])
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
        state=state,
        optimizer=opt,
    )


# ---------------------------------------------------------------- results
@dataclass(frozen=True, repr=False)
class ManyResult:
    """What :func:`train_many` returns: ``N`` trainings, stacked.

    Attributes:
        params: the returned params of every network, stacked (leading axis ``N``):
            as :class:`jbpnn.training.TrainResult`, the best-validation params under
            early stopping, the last finite ones after divergence.
        history: NumPy arrays of shape ``(N, E)``, ``E`` the most epochs any network
            ran, the keys of :class:`jbpnn.training.TrainResult`'s ``history``:
            ``loss``, ``max_weight_change`` (only with ``min_weight_change``), with
            validation data ``val_loss`` and ``val_accuracy`` (and ``val_r2`` with
            ``monitor="val_r2"``), ``lr_scale`` with ``lr_factor``, and the full-batch
            optimizers' own (``mu``, ``grad_norm``, ``gamma``, ``grad_max``, ``step``,
            ``n_evals``); NaN after a network's last epoch.
        epochs_run: shape ``(N,)``, epochs each network ran (the diverged one included).
        stop_reason: ``N`` names from :data:`jbpnn.training.STOP_REASONS`.
        best_epoch: shape ``(N,)``, the 1-based epoch of ``params`` under early
            stopping (0 if none), or None without early stopping.
        hparams: every network's hyperparameters, arrays of shape ``(N,)``
            (shared values repeated), plus ``seed`` when the networks came from seeds.
        elapsed: wall-clock seconds of the whole call, compilation included.
        method: the data order, ``"shared"`` (one key) or ``"own"`` (one key per network).
        state: the final stacked :class:`jbpnn.training.TrainState` (leading axis ``N``).
        optimizer: the template optimizer (every network's kind).
        batching: the call's ``(batch_size, shuffle, drop_last)``, which ``result[i]``
            carries as :class:`jbpnn.training.TrainResult` does (a resume without them warns).
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
    state: TrainState = field(repr=False)
    optimizer: Any = field(default=None, repr=False)
    batching: tuple[Any, Any, bool] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.stop_reason)

    def __getitem__(self, i: int) -> TrainResult:
        """Network ``i`` as the :class:`jbpnn.training.TrainResult` ``train`` returns."""
        n = len(self)
        if not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise IndexError(f"network index {i!r} out of range for {n} networks")
        one = host_take(self.state, i)
        run = int(self.epochs_run[i])
        history = {k: v[i, :run] for k, v in self.history.items()}
        optimizer = self.optimizer  # with network i's own values: train(result, ...) goes on
        held = getattr(one.opt_state, "hyperparams", None)  # with them, as save records them
        if isinstance(optimizer, Optimizer) and held:
            optimizer = optimizer.replace(
                **{k: np.asarray(v).item() for k, v in held.items() if k in optimizer.hyperparams}
            )
        monitor = self.config.monitor if self.config.early_stopping else None
        return state_result(
            one,
            history,
            elapsed=self.elapsed,
            optimizer=optimizer,
            monitor=monitor,
            batching=self.batching,
        )

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
        ``train_loss`` (the last epoch's loss, a diverged network's last one before
        it diverged; with ``X, Y`` the loss of the returned params on them instead) and
        ``train_accuracy`` (needs ``X, Y``), ``val_loss`` and ``val_accuracy`` of the
        returned params (with validation data), ``epochs`` and ``stop_reason``.
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
            template = first_network(self.params)
            Xc, Yc, _ = check_batch(template, X, Y, check_finite=check_finite)
            loss, acc = _scores_jit(self.params, Xc, Yc)
            cols["train_loss"] = [float(v) for v in np.asarray(loss)]
            cols["train_accuracy"] = [float(v) for v in np.asarray(acc)]
        else:
            # a diverged network returns the params from before its diverging epoch
            kept = self.epochs_run - (np.asarray(self.stop_reason) == "diverged")
            finite_last = [_last_finite(self.history["loss"][i, : kept[i]]) for i in range(n)]
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
        """One line: how many networks, in how long, the epochs run and how they stopped."""
        counts = {r: self.stop_reason.count(r) for r in STOP_REASONS if r in self.stop_reason}
        stops = ", ".join(f"{r}: {c}" for r, c in counts.items())
        return (
            f"{len(self)} networks ({self.method} data order) in {self.elapsed:.2f} s; "
            f"epochs run {int(self.epochs_run.min())}..{int(self.epochs_run.max())}; {stops}"
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"ManyResult({self.summary()})"


def _plain(v: Any) -> Any:
    """A NumPy scalar as a plain Python int, float or str."""
    return np.asarray(v).item() if isinstance(v, (np.generic, np.ndarray)) else v


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


@jax.jit
def _scores_jit(stacked: MLP, X: Array, Y: Array) -> tuple[Array, Array]:
    """Mean loss and accuracy of every network on ``(X, Y)``; each of shape ``(N,)``."""

    def one(p: MLP) -> tuple[Array, Array]:
        loss = loss_kernel(p, X, Y)
        return loss, accuracy_kernel(p, X, Y).astype(loss.dtype)

    return jax.vmap(one)(stacked)

"""How much memory an ensemble needs, before anything is allocated.

:func:`estimate_memory` counts the bytes :func:`jbpnn.many.train_many` needs for
``N`` networks of one architecture (a deliberate over-estimate, by part),
:func:`available_memory` says what the device has free, and :func:`check_memory`
raises :class:`EnsembleTooLarge` when the estimate does not fit, with the number of
networks that would. :func:`check_array_memory` does the same for one dense array (a
sparse input densified by the scikit-learn estimators).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.checks import check_flag, check_int

if TYPE_CHECKING:  # params imports this module (its size guard)
    from jbpnn.params import MLP

__all__ = [
    "RUNTIME_OVERHEAD",
    "ArrayTooLarge",
    "EnsembleTooLarge",
    "MemoryEstimate",
    "SizedOptimizer",
    "available_memory",
    "can_stop_early",
    "cgroup_memory",
    "check_array_memory",
    "check_history_growth",
    "check_memory",
    "estimate_memory",
    "format_bytes",
    "memory_limit",
    "normal_equations_bytes",
]


class SizedOptimizer(Protocol):
    """What :func:`estimate_memory` needs of an optimizer: ``init(params) -> state``."""

    def init(self, params: Any) -> Any: ...


RUNTIME_OVERHEAD = 256 * 2**20  # bytes for XLA's compiler and runtime (measured ~200-300 MiB)


class EnsembleTooLarge(MemoryError, ValueError):
    """The requested ensemble would not fit in the memory available (raised before allocating)."""


class ArrayTooLarge(MemoryError, ValueError):
    """A dense array would not fit in the memory available (raised before allocating)."""


class MemoryEstimate(NamedTuple):
    """Bytes :func:`train_many` needs, by part (see :func:`estimate_memory`).

    Attributes:
        n_networks: the networks the estimate is for.
        per_network: bytes for one more network: ``params`` (params, the epoch-start
            copy kept for divergence rollback, gradients, updates; best params with
            early stopping), ``optimizer_state`` (twice, for rollback),
            ``activations`` (layer outputs, deltas and a temporary for one batch, and
            for the validation set), ``history`` (the device's ring buffers),
            ``host_history`` (their copies on the host), for ``lbfgs`` ``line_search``
            (its vectors and a second evaluation's activations) and, for ``lm`` and
            ``br``, ``normal_equations`` (``J^T J``, its factor and a block of Jacobian
            products).
        shared: bytes shared by all networks of one device: the data and one epoch's
            shuffled copy, and :data:`RUNTIME_OVERHEAD` for XLA's compiler and runtime.
        parts: the per-network figure split into the parts above, by name.
        devices: the devices the networks split over, each holding its own copy of the
            data shared by its networks (1: one device).
        replica: bytes each device after the first adds where the devices share one
            memory (CPU devices: the host's RAM): its copy of the shared data.
        own_memory: each device has a memory of its own (accelerators): each is
            checked for its share, ``ceil(n_networks / devices)`` networks and ``shared``.
    """

    n_networks: int
    per_network: int
    shared: int
    parts: dict[str, int]
    devices: int = 1
    replica: int = 0
    own_memory: bool = False

    @property
    def total(self) -> int:
        """Bytes in all, every device's together."""
        if self.own_memory:
            return self.n_networks * self.per_network + self.devices * self.shared
        return self.n_networks * self.per_network + self.shared + (self.devices - 1) * self.replica

    @property
    def per_device(self) -> int:
        """Bytes the fullest memory holds: one device's share where each device has its
        own memory, else :attr:`total` (CPU devices share the host's)."""
        if self.own_memory:
            return -(-self.n_networks // self.devices) * self.per_network + self.shared
        return self.total

    def max_networks(self, limit: int) -> int:
        """How many such networks fit in ``limit`` bytes (per device where each device
        has its own memory)."""
        if self.own_memory:
            return self.devices * max(0, (int(limit) - self.shared) // max(1, self.per_network))
        fixed = self.shared + (self.devices - 1) * self.replica
        return max(0, (int(limit) - fixed) // max(1, self.per_network))


def estimate_memory(
    template: MLP,
    n_networks: int,
    *,
    n_examples: int,
    batch_size: int | None = None,
    epochs: int = 200,
    n_val: int = 0,
    optimizer: SizedOptimizer | str | None = None,
    early_stopping: bool = False,
    own_data_order: bool = False,
    own_validation: bool = False,
    history_chunk: int | None = None,
    history_keys: int | None = None,
    host_epochs: int | None = None,
    devices: int = 1,
    own_memory: bool = False,
) -> MemoryEstimate:
    """Estimate the device memory of :func:`train_many`, without allocating anything.

    A deliberate over-estimate (XLA fuses many temporaries away): params, gradients,
    updates and rollback copies ``4 P`` (``5 P`` with early stopping), optimizer
    state ``2 S`` (``S`` = ``P`` for momentum, ``2 P`` for Adam, 0 for SGD),
    activations ``3 U B + 2 U n_val`` and history ``3 K H`` numbers per network
    (``K`` history keys: the loss, a weight-change and an ``lr_scale`` slot, the
    validation loss, accuracy and R^2 with a validation set, the optimizer's own;
    ``H`` = ``history_chunk``, the
    ring buffer's length whatever ``epochs`` is, or ``epochs`` without one; three copies:
    the compiled loop's carry in and out and the chunk copied to the host) and the
    whole run's history on the host, ``2 K epochs`` (the chunks and their join; ``2 K
    host_epochs`` where a stop rule can end the run early and the rest is checked as
    it arrives, :func:`check_history_growth`), ``P`` its parameter count, ``U`` its
    number of units, ``B`` the batch size; lbfgs's line search ``(10 + 2) P`` more
    and a second evaluation's ``U B``; plus the data twice (once per network with
    per-network data orders) and :data:`RUNTIME_OVERHEAD`, and with several
    ``devices`` the data shared by their networks once more on each (CPU devices,
    which share the host's memory: ``1.5`` times it, a copy and its reordering,
    measured 1.25-1.3 times; accelerators: each device is checked for its own share,
    see :class:`MemoryEstimate`). Measured on the digits (64-64-10, batch 32, 359
    validation rows): 4096 networks grew the process by 1.1 GiB, estimated 1.7 GiB.

    Args:
        template: one network of the ensemble, an :class:`~jbpnn.params.MLP` (for sizes
            and dtype; its arrays' shapes are enough, as ``jax.eval_shape`` gives them).
        n_networks: ``N``, an int >= 1.
        n_examples: training examples, an int >= 1 (with per-network ``rows=``, the
            largest set of rows).
        batch_size: the mini-batch size ``B`` the activations are counted for, an int
            >= 1 capped at ``n_examples``; None (the default) for full batch,
            ``B = n_examples``.
        epochs, n_val: epochs (an int >= 1) and validation examples (an int >= 0).
        optimizer: any object with ``init(params) -> state``, or the name of one (a key
            of :data:`jbpnn.optimizers.OPTIMIZERS`, as ``train_many`` takes), for the
            size of its state (traced with ``jax.eval_shape``, nothing allocated;
            default: one slot per parameter, as momentum). An optimizer that solves the normal
            equations (``lm``, ``br``) adds ``4 P^2`` (``br``: ``7 P^2``) for ``J^T J``
            and one block of the Jacobian's products
            (:func:`jbpnn.jacobian.block_entries`), part ``normal_equations``.
        early_stopping: keeps a copy of the best params.
        own_data_order: every network shuffles its own copy of the data (``keys``;
            with ``rows=``, ``n_examples`` is its largest set of rows): three copies
            of it (gathered on the host, on the device, and each epoch's order).
        own_validation: every network holds its own copy of ``n_val`` validation
            rows (``val_rows=``): two (gathered on the host, on the device).
        history_chunk: the history is kept in a ring buffer of this many epochs, an
            int >= 1 (default None: one entry per epoch, ``epochs`` of them).
        history_keys: how many keys the run's history has, an int >= 1
            (``TrainConfig.history_keys``; default None: every key a run could have, an
            over-estimate).
        host_epochs: the epochs of history counted on the host, an int >= 1 (default
            None: ``epochs``); fewer where a stop rule can end the run early and the
            host history is checked as it grows (:func:`check_history_growth`).
        devices: the devices the networks split over, an int >= 1 (default 1), each
            with its copy of the data its networks share.
        own_memory: each device has its own memory (accelerators: checked one by one
            for its share); False (default): they share one (CPU devices, the host's).

    Raises:
        TypeError: a ``template`` that is not a network, an ``optimizer`` without
            ``init``.
        ValueError: a count out of range or not an int (bools refused), a flag that is
            not a bool, an unknown optimizer name.

    Measured (CPU, 131072 networks 1-10-1, full batch of 32 rows, 10 epochs, chunk
    256): with a validation set of 8 rows the process grew by 1.8-1.9 GiB where the
    estimate said 1.0 GiB when the history counted ``4 min(epochs, chunk)`` numbers;
    the three ring buffers of 256 epochs, each held about three times, were the
    difference. Estimated since: 2.5 GiB.
    """
    from jbpnn.params import MLP  # params imports this module

    if not isinstance(template, MLP):
        raise TypeError(
            "template must be one network of the ensemble, an MLP (e.g. init_params(0, "
            f"sizes)), got {type(template).__name__}"
        )
    n_networks = check_int("n_networks", n_networks, 1)
    n_examples = check_int("n_examples", n_examples, 1)
    batch_size = check_int("batch_size", batch_size, 1, allow_none=True, none_means="full batch")
    epochs = check_int("epochs", epochs, 1)
    n_val = check_int("n_val", n_val, 0)
    history_chunk = check_int(
        "history_chunk", history_chunk, 1, allow_none=True, none_means="one entry per epoch"
    )
    history_keys = check_int(
        "history_keys", history_keys, 1, allow_none=True, none_means="every key a run could have"
    )
    host_epochs = check_int("host_epochs", host_epochs, 1, allow_none=True, none_means="epochs")
    devices = check_int("devices", devices, 1)
    check_flag("own_memory", own_memory)
    check_flag("early_stopping", early_stopping)
    check_flag("own_data_order", own_data_order)
    check_flag("own_validation", own_validation)
    optimizer = _sized_optimizer(optimizer)
    item = jnp.dtype(template.dtype).itemsize
    n_params = _n_params(template)
    units = sum(template.sizes[1:])
    shapes = None
    if optimizer is None:
        state_items = n_params
    else:
        shapes = jax.eval_shape(optimizer.init, template)
        state_items = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
    history_len = epochs if history_chunk is None else history_chunk
    # loss, a weight-change and an lr_scale slot (over-estimates when those rules are
    # off), validation's loss, accuracy and an R^2 slot (monitor="val_r2"; ditto)
    n_keys = 3 + (3 if n_val else 0) + len(getattr(optimizer, "history_keys", ()))
    if history_keys is not None:
        n_keys = history_keys
    batch = n_examples if batch_size is None else min(batch_size, n_examples)
    data = (n_examples + n_val) * (template.n_in + template.n_out)
    parts = {
        "params": (5 if early_stopping else 4) * n_params * item,
        "optimizer_state": 2 * state_items * item,
        "activations": (3 * units * batch + 2 * units * n_val) * item,
        "history": 3 * n_keys * history_len * item,
        "host_history": 2 * n_keys * min(epochs, host_epochs or epochs) * item,
    }
    if own_data_order:
        parts["activations"] += 3 * n_examples * (template.n_in + template.n_out) * item
    if own_validation:
        parts["activations"] += 2 * n_val * (template.n_in + template.n_out) * item
    if getattr(optimizer, "needs_normal_equations", False):  # lm, br: J^T J, P x P
        parts["normal_equations"] = normal_equations_bytes(template, optimizer, n_examples)
    if getattr(optimizer, "name", None) == "lbfgs":
        # the search's carry (start, direction, trial point, its gradient and the
        # loop's, the accepted ones), the pairs pushed (2 m P, m = the state's rows) and
        # a trial's evaluation beside the loop's own (its layer outputs)
        pairs = getattr(shapes, "s", None)
        m = int(pairs.shape[0]) if pairs is not None and len(pairs.shape) == 2 else 10
        parts["line_search"] = ((10 + 2 * m) * n_params + units * batch) * item
    shared = 2 * data * item + RUNTIME_OVERHEAD
    # the data the networks share, on every device again (not the per-network copies of
    # own_data_order / own_validation: those split over the devices with their networks)
    common = (0 if own_data_order else n_examples) + (0 if own_validation else n_val)
    replica = (3 * common * (template.n_in + template.n_out) * item) // 2 if devices > 1 else 0
    return MemoryEstimate(
        n_networks, sum(parts.values()), shared, parts, devices, replica, own_memory
    )


def _sized_optimizer(optimizer: Any) -> SizedOptimizer | None:
    """``optimizer`` if it has ``init``; a name (``"adam"``) as that optimizer with its
    default hyperparameters (an ``lr`` where it has none: the state's size does not
    depend on the values)."""
    if isinstance(optimizer, str):
        from jbpnn.optimizers import OPTIMIZERS, get_optimizer

        factory = OPTIMIZERS.get(optimizer)
        needed = {} if factory is None else inspect.signature(factory).parameters
        lr = "lr" in needed and needed["lr"].default is inspect.Parameter.empty
        return get_optimizer(optimizer, **({"lr": 0.1} if lr else {}))
    if optimizer is not None and not callable(getattr(optimizer, "init", None)):
        raise TypeError(
            "optimizer must be an optimizer (an object with init(params)), the name of one "
            f"or None, got {type(optimizer).__name__} {optimizer!r}"
        )
    return optimizer


def _n_params(template: Any) -> int:
    """P, the weights and biases of one network (its leaves' shapes only: a template of
    ``jax.ShapeDtypeStruct`` leaves counts as its arrays would)."""
    return sum(int(np.prod(np.shape(l.w))) + int(np.prod(np.shape(l.b))) for l in template.layers)


def normal_equations_bytes(template: Any, optimizer: Any, n_examples: int) -> int:
    """Bytes one network's normal equations take while they are solved: ``J^T J`` (``P x
    P``) about 4 times for ``lm`` (the damped copy, its Cholesky factor, the solve), 7
    for ``br`` (also the inverse whose trace gives ``gamma``; measured 6.8 on a 50-100-1
    network), and one block of the Jacobian's products
    (:func:`jbpnn.jacobian.block_entries`)."""
    from jbpnn.jacobian import block_entries  # params imports this module

    p = _n_params(template)
    copies = 7 if getattr(optimizer, "name", None) == "br" else 4
    item = jnp.dtype(template.dtype).itemsize
    return (copies * p * p + block_entries(template, n_examples)) * item


def available_memory(device: Any = None) -> tuple[int, str]:
    """Bytes free on ``device`` (default: the first JAX device) and where that came from.

    Accelerators: ``bytes_limit - bytes_in_use`` of ``device.memory_stats()``.
    CPU: ``MemAvailable`` of ``/proc/meminfo``, or less where the process's cgroup
    (Docker, Kubernetes, SLURM) allows less (:func:`cgroup_memory`); else
    ``os.sysconf`` available pages.
    """
    device = device or jax.devices()[0]
    stats = None
    if device.platform != "cpu":
        try:
            stats = device.memory_stats()
        except Exception:  # pragma: no cover - backend without memory stats
            stats = None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return free, f"{device.platform} device memory ({device})"
    host = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024, "available RAM (/proc/meminfo)"
    except OSError:
        pass
    group = cgroup_memory()
    if group is not None and (host is None or group[0] < host[0]):
        return group
    if host is not None:
        return host
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(pages), "available RAM (os.sysconf)"
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
        return 2**62, "unknown (no limit applied)"


_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2: no limit) gives None


def cgroup_memory(
    root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup"
) -> tuple[int, str] | None:
    """Bytes this process's cgroup still allows (its limit minus its usage), or None.

    A container (Docker, Kubernetes) or a batch job (SLURM) limits memory through
    the cgroup, where the kernel kills the process at the limit however much RAM
    the host has free. cgroup v2 (``memory.max``, ``memory.current``) and v1
    (``memory.limit_in_bytes``, ``memory.usage_in_bytes``) are read for the group
    and each of its parents, at the path ``/proc/self/cgroup`` names and at the
    mount's root (inside a container the group is the root); the tightest one wins.
    The usage counts the page cache, which the kernel reclaims before it kills: its
    inactive part (``inactive_file`` of ``memory.stat``; v1 ``total_inactive_file``)
    is not counted as used.
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    places = []  # (folder, limit file, usage file, memory.stat's reclaimable cache key)
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: "0::/path"
            files, base = ("memory.max", "memory.current", "inactive_file"), root
        elif "memory" in controllers.split(","):
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            base = f"{root}/memory"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            places.append(("/".join([base, *parts[:depth]]), *files))
    best = None
    for folder, limit_file, usage_file, cache_key in places:
        limit = _read_int(f"{folder}/{limit_file}")
        if limit is None or limit >= _NO_LIMIT:
            continue
        used = _read_int(f"{folder}/{usage_file}") or 0
        cache = min(used, _read_stat(f"{folder}/memory.stat", cache_key))
        free = max(0, limit - used + cache)
        if best is None or free < best[0]:
            best = (
                free,
                f"the cgroup's memory limit ({folder}/{limit_file}: "
                f"{format_bytes(limit)}, {format_bytes(used - cache)} in use besides "
                f"{format_bytes(cache)} of reclaimable file cache)",
            )
    return best


def _read_stat(path: str, key: str) -> int:
    """``key``'s value in a cgroup's ``memory.stat`` (0 when absent or unreadable; v1
    without the hierarchical ``total_`` entries: the group's own)."""
    values = {}
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if value.strip().isdigit():
                    values[name] = int(value)
    except OSError:
        return 0
    return values.get(key, values.get(key.removeprefix("total_"), 0))


def check_memory(
    estimate: MemoryEstimate,
    limit: int | None = None,
    what: str = "the ensemble",
    devices: Sequence[Any] | None = None,
) -> None:
    """Raise :class:`EnsembleTooLarge` if ``estimate`` exceeds ``limit`` bytes.

    ``limit`` defaults to 90% of :func:`available_memory` of the first of ``devices``
    (default: the first JAX device); where each device has its own memory
    (``estimate.own_memory``), to 90% of the least any of ``devices`` has free, and
    each device's share (:attr:`MemoryEstimate.per_device`) is what must fit (a
    ``limit`` given is then per device). The message's advice names what dominates:
    the epochs' history, the data, or the networks themselves.
    """
    pool = list(devices or [None])
    if not estimate.own_memory:
        pool = pool[:1]
    limit, source = memory_limit(limit, pool)
    need = estimate.per_device
    if need <= limit:
        return
    parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in estimate.parts.items())
    fit = estimate.max_networks(limit)
    where = ""
    if estimate.devices > 1:
        where = (
            f" on each of {estimate.devices} devices"
            if estimate.own_memory
            else f" on {estimate.devices} devices that share one memory (each its copy "
            f"of the data: {format_bytes(estimate.replica)} more per device)"
        )
    advice = (
        f"At most {fit} such networks fit: train the grid in parts of at most {fit} networks, "
        f"or {_remedy(estimate)}"
        if fit
        else f"Not even one such network fits: {_remedy(estimate)}, or allow more memory"
    )
    raise EnsembleTooLarge(
        f"{what} need about {format_bytes(need)}{where} "
        f"({format_bytes(estimate.per_network)} per network: {parts}; shared by all "
        f"{format_bytes(estimate.shared)}: the data and XLA's runtime), more than the "
        f"{format_bytes(limit)} allowed ({source}). {advice}"
    )


def _remedy(estimate: MemoryEstimate) -> str:
    """What would shrink ``estimate`` most: its largest part, named."""
    n = -(-estimate.n_networks // estimate.devices) if estimate.own_memory else estimate.n_networks
    p = estimate.parts
    data = estimate.shared - RUNTIME_OVERHEAD + (estimate.devices - 1) * estimate.replica
    sizes = {
        "history": n * (p.get("history", 0) + p.get("host_history", 0)),
        "data": data if not estimate.own_memory else estimate.shared - RUNTIME_OVERHEAD,
        "batch": n * p.get("activations", 0),
        "network": n
        * sum(
            p.get(k, 0) for k in ("params", "optimizer_state", "normal_equations", "line_search")
        ),
    }
    remedies = {
        "history": "use fewer epochs (the history keeps every epoch's entries: "
        f"{format_bytes(sizes['history'])}), or stop rules that end the run sooner",
        "data": f"use less data (the data take {format_bytes(sizes['data'])}"
        + (", a copy on every device: use fewer devices" if estimate.devices > 1 else "")
        + "; fewer rows or columns)",
        "batch": "use a smaller batch or validation set (layer outputs of a batch: "
        f"{format_bytes(sizes['batch'])})",
        "network": "use a smaller network or an optimizer with less state (params and "
        f"optimizer state: {format_bytes(sizes['network'])})",
    }
    return remedies[max(sizes, key=lambda k: sizes[k])]


def can_stop_early(config: Any, stoppings: Sequence[Any] = (), optimizer: Any = None) -> bool:
    """Whether a stop rule may end a run before its last epoch: early stopping, the
    training-loss plateau, the article's rules (``tol``, ``min_weight_change``), or the
    optimizer's own (lbfgs, lm, br; rprop's ``min_grad``). The divergence rule is not
    counted (a run that does not diverge runs on)."""
    rules = (
        getattr(config, name, False)
        for name in ("early_stopping", "watch_loss", "watch_weight_change")
    )
    if any(rules) or any(getattr(s, "tol", None) is not None for s in stoppings):
        return True
    if getattr(optimizer, "name", None) in ("lbfgs", "lm", "br"):
        return True
    return bool(getattr(optimizer, "options", None) and optimizer.options.get("min_grad"))


def check_history_growth(
    held: int, more: int, what: str = "the ensemble", limit: int | None = None
) -> None:
    """Raise :class:`EnsembleTooLarge` when the host history's next chunk would not fit.

    A run that a stop rule can end early is checked for its history as it grows,
    not for every epoch up front (``epochs=10**8`` costs what the epochs run cost):
    after each chunk, the next one (``more`` bytes) and the join of all at the end
    (``held + more`` again) must fit in ``limit`` bytes still free (default 90% of
    :func:`available_memory` now, which already counts the ``held`` bytes as used).
    """
    need = held + 2 * more
    limit, source = memory_limit(limit, [jax.devices("cpu")[0]])
    if need > limit:
        raise EnsembleTooLarge(
            f"{what}: the history kept on the host ({format_bytes(held)} so far) needs "
            f"{format_bytes(need)} more for its next chunk and the final join, more than the "
            f"{format_bytes(limit)} allowed ({source}). Use fewer epochs (the history keeps "
            "every epoch's entries), stop rules that end the run sooner, or fewer networks"
        )


def check_array_memory(
    shape: tuple[int, ...],
    dtype: Any,
    what: str,
    copies: int = 1,
    limit: int | None = None,
    *,
    device: Any = None,
    advice: str = "use fewer rows (train with partial_fit on chunks) or fewer columns",
) -> None:
    """Raise :class:`ArrayTooLarge` if ``copies`` dense arrays of ``shape`` and ``dtype``
    (a tuple of dtypes: one array of each, e.g. a copy cast to another dtype) exceed
    ``limit`` bytes (default 90% of :func:`available_memory` of ``device``, the CPU
    unless given), naming ``what``; ``advice`` ends the message."""
    dtypes = [np.dtype(d) for d in (dtype if isinstance(dtype, tuple) else (dtype,))]
    size = int(np.prod(shape, dtype=np.float64))
    need = copies * size * sum(d.itemsize for d in dtypes)
    limit, source = memory_limit(limit, [device or jax.devices("cpu")[0]], "the limit given")
    if need > limit:
        also = "".join(f" and a {d.name} copy" for d in dtypes[1:])
        raise ArrayTooLarge(
            f"{what} as a dense {dtypes[0].name} array of shape {tuple(shape)}{also} needs "
            f"{format_bytes(need)}, more than the {format_bytes(limit)} allowed ({source}); "
            f"{advice}"
        )


def memory_limit(
    limit: int | None, devices: Sequence[Any], given: str = "memory_limit"
) -> tuple[int, str]:
    """``(limit, what it is)``: the ``limit`` given (named ``given``), or 90% of the least
    memory any of ``devices`` has available (:func:`available_memory`; ``None`` for the
    default device), named by its source, for the refusal messages."""
    if limit is not None:
        return int(limit), given
    free, source = min((available_memory(d) for d in devices), key=lambda fs: fs[0])
    return int(0.9 * free), f"90% of the {format_bytes(free)} of {source}"


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: bytes in binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover

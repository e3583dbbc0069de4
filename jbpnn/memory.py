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
    "check_array_memory",
    "check_memory",
    "estimate_memory",
    "format_bytes",
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
            ``host_history`` (their copies on the host) and, for ``lm`` and ``br``,
            ``normal_equations`` (``J^T J``, its factor and a block of Jacobian products).
        shared: bytes shared by all networks: the data and one epoch's shuffled copy,
            and :data:`RUNTIME_OVERHEAD` for XLA's compiler and runtime.
        parts: the per-network figure split into the parts above, by name.
    """

    n_networks: int
    per_network: int
    shared: int
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return self.n_networks * self.per_network + self.shared

    def max_networks(self, limit: int) -> int:
        """How many such networks fit in ``limit`` bytes."""
        return max(0, (int(limit) - self.shared) // max(1, self.per_network))


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
    whole run's history on the host, ``2 K epochs`` (the chunks and their join),
    ``P`` its parameter count, ``U`` its number of units, ``B`` the batch size;
    plus the data twice (once per network with per-network data orders) and
    :data:`RUNTIME_OVERHEAD`. Measured on the digits (64-64-10, batch 32, 359
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
    check_flag("early_stopping", early_stopping)
    check_flag("own_data_order", own_data_order)
    check_flag("own_validation", own_validation)
    optimizer = _sized_optimizer(optimizer)
    item = jnp.dtype(template.dtype).itemsize
    n_params = _n_params(template)
    units = sum(template.sizes[1:])
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
        "host_history": 2 * n_keys * epochs * item,
    }
    if own_data_order:
        parts["activations"] += 3 * n_examples * (template.n_in + template.n_out) * item
    if own_validation:
        parts["activations"] += 2 * n_val * (template.n_in + template.n_out) * item
    if getattr(optimizer, "needs_normal_equations", False):  # lm, br: J^T J, P x P
        parts["normal_equations"] = normal_equations_bytes(template, optimizer, n_examples)
    shared = 2 * data * item + RUNTIME_OVERHEAD
    return MemoryEstimate(n_networks, sum(parts.values()), shared, parts)


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
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    places = []  # (folder, limit file, usage file)
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: "0::/path"
            files, base = ("memory.max", "memory.current"), root
        elif "memory" in controllers.split(","):
            files, base = ("memory.limit_in_bytes", "memory.usage_in_bytes"), f"{root}/memory"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            places.append(("/".join([base, *parts[:depth]]), *files))
    best = None
    for folder, limit_file, usage_file in places:
        limit = _read_int(f"{folder}/{limit_file}")
        if limit is None or limit >= _NO_LIMIT:
            continue
        used = _read_int(f"{folder}/{usage_file}") or 0
        free = max(0, limit - used)
        if best is None or free < best[0]:
            best = (
                free,
                f"the cgroup's memory limit ({folder}/{limit_file}: "
                f"{format_bytes(limit)}, {format_bytes(used)} in use)",
            )
    return best


def check_memory(
    estimate: MemoryEstimate, limit: int | None = None, what: str = "the ensemble"
) -> None:
    """Raise :class:`EnsembleTooLarge` if ``estimate`` exceeds ``limit`` bytes.

    ``limit`` defaults to 90% of :func:`available_memory`.
    """
    if limit is None:
        free, source = available_memory()
        limit = int(0.9 * free)
        source = f"90% of the {format_bytes(free)} of {source}"
    else:
        source = "memory_limit"
    if estimate.total <= limit:
        return
    parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in estimate.parts.items())
    fit = estimate.max_networks(limit)
    advice = (
        f"At most {fit} such networks fit: train the grid in parts of at most {fit} networks, "
        "or use a smaller batch, validation set or network"
        if fit
        else "Not even one such network fits: use a smaller batch, validation set or network, "
        "or allow more memory"
    )
    raise EnsembleTooLarge(
        f"{what} need about {format_bytes(estimate.total)} "
        f"({format_bytes(estimate.per_network)} per network: {parts}; shared by all "
        f"{format_bytes(estimate.shared)}: the data and XLA's runtime), more than the "
        f"{format_bytes(limit)} allowed ({source}). {advice}"
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
    exceed ``limit`` bytes (default 90% of :func:`available_memory` of ``device``, the
    CPU unless given), naming ``what``; ``advice`` ends the message."""
    need = copies * int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    if limit is None:
        free, source = available_memory(device or jax.devices("cpu")[0])
        limit, source = int(0.9 * free), f"90% of the {format_bytes(free)} of {source}"
    else:
        source = "the limit given"
    if need > limit:
        raise ArrayTooLarge(
            f"{what} as a dense {np.dtype(dtype).name} array of shape {tuple(shape)} needs "
            f"{format_bytes(need)}, more than the {format_bytes(limit)} allowed ({source}); "
            f"{advice}"
        )


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: bytes in binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover

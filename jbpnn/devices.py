"""Devices and meshes: which devices a run uses, and putting arrays on them.

The one place that turns ``devices=`` / ``mesh=`` arguments into a mesh:

- :func:`resolve_mesh`: ``train``'s data-parallel mesh (every mini-batch split
  along one axis; the devices may span processes after ``jax.distributed``).
- :func:`network_layout`: ``train_many``'s ``(mesh, network_axis, data_axis)``
  (the networks split along one axis, optionally every batch along another).
- :func:`pick_devices`: a count or a list of devices, checked, with one message
  for "not enough devices". ``train`` counts every device (``jax.devices()``: a
  data-parallel mesh spans processes); ``train_many`` counts this process's
  (``jax.local_devices()``: its networks live here).
- :func:`replicate`, :func:`place`: arrays onto a mesh (replicated, or split along
  the leading axis); typed PRNG keys go through their key data.
- :func:`data_parallel`: a batch gradient split across a mesh axis, one share
  per device, the weighted shares all-reduced (``psum``).
- :func:`use_cpu_devices`: ask JAX for several CPU devices before it starts.
- :func:`compiler_options`: the XLA options a network's programs compile with (on the
  CPU, small networks' matrix products by XLA's own emitter).
- :func:`agree_across_processes`: before a run whose mesh spans processes starts,
  every process's arguments are compared (one small all-gather), so processes
  called with different settings stop with both values named instead of hanging in
  the first collective, and a process that never arrives is reported after
  ``$JBPNN_PROCESS_TIMEOUT`` seconds (default 300).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.sharding import PartitionSpec as P

from jbpnn.checks import on_cpu, to_device
from jbpnn.network import GradFn
from jbpnn.state import TrainResult

__all__ = [
    "agree_across_processes",
    "call_compiled",
    "compiler_options",
    "data_parallel",
    "host_take",
    "network_layout",
    "pick_devices",
    "place",
    "refused_options",
    "gathered",
    "replicate",
    "resolve_mesh",
    "under_own_mesh",
    "to_host",
    "spans_processes",
    "unsplit",
    "use_cpu_devices",
]

PROCESS_TIMEOUT_ENV = "JBPNN_PROCESS_TIMEOUT"
DEFAULT_PROCESS_TIMEOUT = 300.0  # seconds a process waits for the others at a run's start
_FINGERPRINT_BYTES = 8192  # the gathered buffer: every process's arguments, described


def pick_devices(devices: Any, *, local: bool = False) -> tuple:
    """``devices`` as a tuple of ``jax.Device``: a count (the first ``k``), a list, or
    None (all of them). ``local``: this process's devices only.

    Raises:
        ValueError: a count JAX cannot give, or a list of something else.
    """
    available = jax.local_devices() if local else jax.devices()
    if devices is None:
        return tuple(available)
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            where = "local devices" if local else "devices"
            more = (
                "; on a CPU, start Python with XLA_FLAGS=--xla_force_host_platform_device_count=k "
                "or call jbpnn.many.use_cpu_devices(k) before any JAX computation"
            )
            raise ValueError(
                f"devices must be a count from 1 to the {len(available)} {where} JAX sees "
                f"({available}), got {devices}{more if devices > len(available) else ''}"
            )
        return tuple(available[:devices])
    given = tuple(devices) if isinstance(devices, (list, tuple)) else None
    if not given or not all(isinstance(d, jax.Device) for d in given):
        raise ValueError(
            "devices must be None (every device), a count k >= 1 (the first k) or a non-empty "
            f"list of jax devices (e.g. jax.devices()[:2]); got {type(devices).__name__} "
            f"{devices!r}"
        )
    if len(set(given)) != len(given):
        twice = next(d for d in given if given.count(d) > 1)
        raise ValueError(f"devices lists {twice} twice; give each device once")
    return given


def resolve_mesh(mesh: Any = None, devices: Any = None, axis: str | None = None):
    """``(mesh, axis)`` for data-parallel training, or None for one device.

    ``mesh`` is a ``jax.sharding.Mesh`` (Auto or Explicit axis types): with one
    axis, the batch is split along it; with several, along ``axis`` (default
    ``"data"``). ``devices`` (a count or a list of devices) builds a one-axis mesh
    ``("data",)`` over them.
    """
    if mesh is not None and devices is not None:
        raise ValueError("give mesh or devices, not both")
    if devices is not None:
        mesh = Mesh(np.array(pick_devices(devices)), ("data",))
    if mesh is None:
        if axis is not None:  # as train_many: an axis of no mesh was ignored
            raise ValueError(f"data_axis={axis!r} names an axis of a mesh: pass mesh= too")
        return None
    _check_mesh(mesh)
    names = tuple(mesh.axis_names)
    given_axis = axis
    if axis is None:
        axis = names[0] if len(names) == 1 else "data"
    if axis not in names:
        given = "" if given_axis is None else f"data_axis={given_axis!r} is not one of them; "
        raise ValueError(
            f"mesh axes are {names}: {given}name the one to split the batch along with data_axis="
        )
    return mesh, axis


def under_own_mesh(own_mesh: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    """Run the decorated function with its own mesh, ``own_mesh(kwargs)`` (None: none), as
    JAX's context mesh where the caller set another (``jax.set_mesh`` around the user's
    own sharded code): JAX checks every operation against the context mesh, and a run on
    ``devices=k`` or another mesh failed with "context mesh ... should match the aval
    mesh". Outside such a block it changes nothing."""

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if jax.sharding.get_abstract_mesh().empty:
                return fn(*args, **kwargs)
            try:
                mesh = own_mesh(kwargs)
            except (TypeError, ValueError):  # fn's own checks raise it, with their message
                mesh = None
            if mesh is None:
                return fn(*args, **kwargs)
            with jax.set_mesh(mesh):
                return fn(*args, **kwargs)

        return wrapped

    return decorate


def network_layout(
    mesh: Any, devices: Any, network_axis: str | None, data_axis: str | None
) -> tuple:
    """``(mesh or None, network_axis, data_axis)`` from ``train_many``'s arguments:
    without a mesh, the networks split over ``devices`` (default: every local device)."""
    if mesh is None:
        if network_axis is not None or data_axis is not None:
            raise ValueError("network_axis and data_axis name axes of a mesh: pass mesh= too")
        devs = pick_devices(devices, local=True)
        if len(devs) == 1:
            return (None, None, None)
        return (Mesh(np.array(devs), ("net",)), "net", None)
    if devices is not None:
        raise ValueError("give mesh or devices, not both")
    _check_mesh(mesh)
    names = tuple(mesh.axis_names)
    if network_axis is None:
        rest = [a for a in names if a != data_axis]
        if len(rest) != 1:
            raise ValueError(f"mesh axes are {names}: name the networks' axis with network_axis=")
        network_axis = rest[0]
    for what, axis in (("network_axis", network_axis), ("data_axis", data_axis)):
        if axis is not None and axis not in names:
            raise ValueError(f"{what}={axis!r} is not an axis of the mesh (axes {names})")
    if network_axis == data_axis:
        raise ValueError("network_axis and data_axis must be different mesh axes")
    return (mesh, network_axis, data_axis)


def _check_mesh(mesh: Any) -> None:
    """A ``Mesh`` whose axes are all Auto or Explicit: a Manual axis belongs inside a
    ``shard_map``, where jbpnn's own ``shard_map`` cannot run."""
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    types = getattr(mesh, "axis_types", None) or ()
    manual = [
        name
        for name, kind in zip(mesh.axis_names, types)
        if getattr(kind, "name", str(kind)) == "Manual"
    ]
    if manual:
        raise ValueError(
            f"mesh: axis {manual[0]!r} has axis type Manual; jbpnn splits the work over a mesh "
            "itself and needs Auto or Explicit axes (jax.make_mesh(..., axis_types="
            "(AxisType.Auto, ...)) or AxisType.Explicit)"
        )


def _keys_too(put: Any) -> Any:
    """``put`` for arrays, extended to typed PRNG keys (moved through their key data)."""

    def put_any(x: Any) -> Any:
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put_any(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return put(x)

    return put_any


def replicate(tree: Any, mesh: Any) -> Any:
    """Every leaf of ``tree`` replicated on ``mesh`` (leaves already on it are kept).

    Works with several processes (``jax.distributed``): host values must then be
    the same in every process.
    """
    rep = NamedSharding(mesh, PartitionSpec())

    def put(x: Any) -> Any:
        if isinstance(x, jax.Array) and getattr(x.sharding, "mesh", None) == mesh:
            return gathered(x)
        return _from_host(x, rep)

    return jax.tree.map(_keys_too(put), tree)


def gathered(x: Any) -> Any:
    """``x`` whole on every device of its mesh where an Explicit mesh splits it; anything
    else as it is. On an Explicit mesh the split is part of the array's type, and a
    program's gathers and contractions over the split axis (``X[order]``, ``J^T J``)
    refuse it: gathered once here (a collective where processes share the array)."""
    if not isinstance(x, jax.Array) or not isinstance(x.sharding, NamedSharding):
        return x
    mesh = x.sharding.mesh
    explicit = any(t == jax.sharding.AxisType.Explicit for t in getattr(mesh, "axis_types", ()))
    if explicit and not x.sharding.is_fully_replicated:
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
    return x


def unsplit(x: Any, name: str) -> Any:
    """``x`` for a run without a mesh: a JAX array split over several devices (say an
    Explicit mesh's rows) as one NumPy array; anything else as it is. Such an array in a
    program built for one device met its sharding deep inside JAX (a gather that asks
    for ``out_sharding``); one that spans processes cannot be gathered here at all.

    Raises:
        ValueError: ``x`` spans devices of other processes (pass ``mesh=``).
    """
    if not isinstance(x, jax.Array) or len(x.sharding.device_set) <= 1:
        return x
    if not x.is_fully_addressable:
        raise ValueError(
            f"{name} is a global array over the devices of several processes: give the "
            "run its mesh (mesh=...), or each process's rows as NumPy arrays"
        )
    return np.asarray(x)


def _from_host(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` placed by ``sharding``, each process building its own devices' shards from
    its copy (``jax.device_put`` would compare the copies, and NaN != NaN)."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place(tree: Any, mesh: Any, axis: str | None) -> Any:
    """``tree`` on ``mesh``: the leading axis split along ``axis``, or replicated when
    ``axis`` is None.

    Works with several processes (``jax.distributed``): each process builds the shards
    of its own devices from its copy, so host values must be the same in every process
    (:func:`agree_across_processes` checks the arguments they come from).
    """
    sharding = NamedSharding(mesh, PartitionSpec(axis) if axis else PartitionSpec())

    def put(x: Any) -> Any:
        if mesh.is_multi_process:
            return _from_host(x, sharding)
        if isinstance(x, jax.Array) and on_cpu(x):
            # resharding a device array compiles a slicing program per shape; a CPU
            # array is read in place and split on the host
            x = np.asarray(x)
        return jax.device_put(x, sharding)

    return jax.tree.map(_keys_too(put), tree)


def to_host(tree: Any) -> Any:
    """Every leaf of ``tree`` as a NumPy array of its whole (global) value, keys as keys.

    An array sharded over several processes is gathered from all of them
    (``multihost_utils.process_allgather``: a collective, so every process calls this
    at the same point); the others are copied with ``jax.device_get``.
    """

    def data(x: Any) -> Any:  # a key through its key data
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    leaves, treedef = jax.tree.flatten(tree)
    datas = [data(x) for x in leaves]
    spans = [isinstance(x, jax.Array) and not x.is_fully_addressable for x in datas]
    # ONE device_get for the local arrays: every copy starts, then one wait (a device_get
    # per leaf waits for each in turn, a round trip per leaf on an accelerator)
    local = iter(jax.device_get([x for x, g in zip(datas, spans) if not g]))
    out = []
    for x, d, g in zip(leaves, datas, spans):
        value = np.asarray(multihost_utils.process_allgather(d, tiled=True)) if g else next(local)
        if d is not x:  # a key again, from its key data
            value = jax.random.wrap_key_data(to_device(value), impl=jax.random.key_impl(x))
        out.append(value)
    return jax.tree.unflatten(treedef, out)


def host_take(tree: Any, index: Any) -> Any:
    """Every leaf of a host tree (:func:`to_host`'s) indexed by NumPy, ``leaf[index]``, keys
    through their key data: no program is compiled (indexing a JAX array compiles one)."""
    return jax.tree.map(_keys_too(lambda x: np.asarray(x)[index]), tree)


def _weighted_psum(grad_fn: GradFn, axis: str) -> GradFn:
    """One device's share of a batch: its weighted sums, all-reduced over ``axis``."""

    def local(params, X, Y, sample_weight):
        loss, grads = grad_fn(params, X, Y, sample_weight)
        w = jnp.sum(sample_weight)
        # each mean times its share of the batch's weight, w / total <= 1: times w itself,
        # a float16 share's loss 70 of 2000 rows overflowed (inf: "diverged" on the first
        # epoch where one device trained), as float32 with weights of 1e34
        share = w / lax.psum(w, axis)
        some = w > 0  # a share of padding only has a 0/0 mean: leave it out
        part = (
            jnp.where(some, loss * share, 0),
            jax.tree.map(lambda g: jnp.where(some, g * share, 0), grads),
        )
        return lax.psum(part, axis)

    return local


def data_parallel(grad_fn: GradFn, mesh: Any, axis: str) -> GradFn:
    """``grad_fn`` on a mini-batch split along ``axis`` of ``mesh``, one share per device.

    Each device computes its share's weighted mean loss and gradient; the total weight
    ``W = sum_d w_d`` (``w_d`` the share's total sample weight) is all-reduced
    (``psum``), then ``sum_d (w_d / W) mean_d``, which is the whole batch's weighted
    mean (each term scaled by a ratio at most 1: nothing overflows that one device's
    mean does not). A share of weight 0 (padding) adds nothing. The params stay replicated.

    ``mesh`` None: already inside a ``shard_map`` that is manual over ``axis``
    (``train_many`` on a mesh); each device then slices its share by
    ``lax.axis_index(axis)``.
    """
    local = _weighted_psum(grad_fn, axis)
    if mesh is None:

        def manual(params, X, Y, sample_weight):
            shards = lax.psum(1, axis)
            k = X.shape[0] // shards
            start = lax.axis_index(axis) * k
            share = (lax.dynamic_slice_in_dim(a, start, k) for a in (X, Y, sample_weight))
            return local(params, *share)

        return manual

    rep, split = P(), P(axis)
    sharded = jax.shard_map(
        local, mesh=mesh, in_specs=(rep, split, split, split), out_specs=(rep, rep), check_vma=False
    )
    explicit = _is_explicit(mesh, axis)

    def grad(params, X, Y, sample_weight):
        if explicit:  # Explicit axis types: the batch's sharding is part of its type
            to = NamedSharding(mesh, split)
            X, Y, sample_weight = (jax.reshard(a, to) for a in (X, Y, sample_weight))
        return sharded(params, X, Y, sample_weight)

    return grad


def _is_explicit(mesh: Any, axis: str) -> bool:
    types = getattr(mesh, "axis_types", None)
    if not types:
        return False
    kind = dict(zip(mesh.axis_names, types))[axis]
    return getattr(kind, "name", str(kind)) == "Explicit"


def use_cpu_devices(k: int | None = None) -> int:
    """Ask JAX for ``k`` CPU devices (default: one per core, at most 8), if it has not started.

    ``train_many`` splits its networks across them. Returns the number of
    devices JAX then has (unchanged if JAX had already run something).
    """
    if k is None:
        k = max(1, min(8, os.cpu_count() or 1))
    try:
        # jax.config's options are attributes set at run time: mypy cannot see them.
        if jax.config.jax_num_cpu_devices != k:  # type: ignore[attr-defined]
            jax.config.update("jax_num_cpu_devices", int(k))
    except (RuntimeError, AttributeError):
        pass  # JAX already started (or too old): keep the devices it has
    return len(jax.local_devices())


# ---------------------------------------------------------------- compile options
NARROW_UNITS = 32  # the widest layer (inputs or units) of a network compile_options calls narrow
# XLA's CPU backend hands each lone matrix product to the YNN library (its default list
# of "library fusions": individual dots and reductions), whose per-call cost dominates a
# product with a few columns; from 64 units on YNN is the faster one. So only networks no
# wider than NARROW_UNITS opt out, and they keep YNN's reductions (README, Performance:
# "Small networks on the CPU", has the measurements). The option is experimental in XLA:
# a jaxlib that does not know it (or its value) gets no options.
_NARROW = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
# The curvature products (jbpnn.curvature) of the wider networks keep YNN's products and
# leave it the reductions: YNN fused the R-passes' sums over the outputs (the softmax's,
# the targets') with the small products around them and ran the digits H v 11% slower
# than XLA's own reduction loops do (README, "Forward mode and curvature by hand"). A
# training program is slower that way (64 digits networks in train_many: 41 -> 59 ms an
# epoch), so only the curvature programs ask for it.
_CURVATURE = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
_PROGRAMS = ("train", "curvature")
_narrow_refused = False  # set when XLA refused the option once (refused_options)


def compiler_options(
    sizes: tuple[int, ...], mesh: Any = None, program: str = "train"
) -> tuple[tuple[str, str], ...]:
    """The XLA options for the programs of a network with layer ``sizes``, as sorted pairs.

    On the CPU (``mesh``'s devices, or JAX's default backend when ``mesh`` is None) a
    network whose every layer has at most ``NARROW_UNITS`` inputs and units compiles
    its matrix products with XLA's own emitter instead of the YNN library (the
    README's "Small networks on the CPU" gives the measurements). A wider network's
    ``program="curvature"`` (:func:`jbpnn.hvp`, :func:`jbpnn.gnvp`) keeps YNN's
    products and runs its reductions with XLA's own loops; its ``"train"`` programs get
    no options. Every other backend gets none (``()``). Only the speed changes: the
    float results may differ in the last bits. A tuple, so that it can be a static
    argument of a cached compiled program. A jaxlib whose XLA refuses the option (see
    :func:`refused_options`) gets none.

    Inside your own ``jax.jit``, ``jax.jit(f, compiler_options=dict(compiler_options(
    params.sizes, program="curvature")))`` compiles ``f`` as :func:`jbpnn.hvp` does.
    """
    if program not in _PROGRAMS:
        raise ValueError(f"program must be one of {_PROGRAMS}, got {program!r}")
    narrow = max(sizes) <= NARROW_UNITS
    if _narrow_refused or not (narrow or program == "curvature"):
        return ()
    devices = jax.devices() if mesh is None else list(np.asarray(mesh.devices).flat)
    if devices[0].platform != "cpu":
        return ()
    return tuple(sorted((_NARROW if narrow else _CURVATURE).items()))


def refused_options(error: Exception) -> bool:
    """Whether ``error`` is XLA refusing :func:`compiler_options`'s option (a jaxlib that
    does not know it, or not its value); :func:`compiler_options` then gives none for the
    rest of the process, and the caller compiles its program again without them."""
    global _narrow_refused
    refused = isinstance(error, jax.errors.JaxRuntimeError) and any(
        k in str(error) for k in {**_NARROW, **_CURVATURE}
    )
    _narrow_refused |= refused
    return refused


def call_compiled(
    program: Callable[[tuple[tuple[str, str], ...]], Any],
    options: tuple[tuple[str, str], ...],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``program(options)(*args, **kwargs)``; where XLA refuses the options (see
    :func:`refused_options`), ``program(())`` instead: the same results, compiled
    without them (and :func:`compiler_options` gives none from then on)."""
    try:
        return program(options)(*args, **kwargs)
    except jax.errors.JaxRuntimeError as error:
        if not options or not refused_options(error):
            raise
        return program(())(*args, **kwargs)


# ---------------------------------------------------------------- several processes
def spans_processes(mesh: Any) -> bool:
    """Whether ``mesh`` holds devices of more than one process (after ``jax.distributed``)."""
    if not isinstance(mesh, jax.sharding.Mesh):  # None, or a wrong value its check names
        return False
    return len({d.process_index for d in np.asarray(mesh.devices).flat}) > 1


def _describe_function(f: Any, depth: int) -> str:
    """A function by its name, and, one level down, its code and the values it closes over,
    defaults to and reads from its module (numbers, text, arrays): two lambdas returning a
    0.1 and a 0.5 differ; deeper functions count by their name only."""
    name = f"{getattr(f, '__module__', '?')}.{f.__qualname__}"
    code = getattr(f, "__code__", None)
    if code is None or depth >= 2:
        return name
    cells = [c.cell_contents for c in (getattr(f, "__closure__", None) or ()) if _filled_cell(c)]
    module = getattr(f, "__globals__", {})
    plain = (bool, int, float, str, np.generic, np.ndarray, jax.Array)
    read = [module[n] for n in code.co_names if isinstance(module.get(n), plain)]  # its globals
    consts = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(code.co_consts))  # nested code objects
    parts = [code.co_code.hex(), consts]
    values = [*cells, *(getattr(f, "__defaults__", None) or ()), *read]
    parts += [describe(v, depth + 1) for v in values]
    return f"{name} {hashlib.blake2b('|'.join(parts).encode(), digest_size=8).hexdigest()}"


def _filled_cell(cell: Any) -> bool:
    try:
        return cell.cell_contents is not _filled_cell  # reading an empty cell raises
    except ValueError:  # a cell not yet filled
        return False


def describe(value: Any, depth: int = 0) -> str:
    """A short text that is equal in two processes exactly when ``value`` is.

    Arrays give dtype, shape and a digest of their bytes (a global array that this
    process cannot read whole gives its sharding instead); pytrees (an ``MLP``, a
    ``TrainState``) their structure and leaves; a ``TrainResult`` its state (or params)
    and optimizer, what a resume takes (its ``elapsed`` differs in every process);
    functions their qualified name with a digest of their code and of the values they
    close over; an optimizer its name, options and every value in full; anything else its
    ``repr`` without memory addresses.
    """
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return repr(value)
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return "key " + describe(jax.random.key_data(value))
    if isinstance(value, (np.ndarray, jax.Array)):
        head = f"{value.dtype}{list(value.shape)}"
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            # spec: a NamedSharding's (the typed attribute is the base Sharding)
            return f"{head} global {value.sharding.spec}"  # type: ignore[attr-defined]
        data = np.ascontiguousarray(np.asarray(value))
        return f"{head} {hashlib.blake2b(data.tobytes(), digest_size=8).hexdigest()}"
    if callable(value) and hasattr(value, "__qualname__"):
        return _describe_function(value, depth)
    if all(hasattr(value, a) for a in ("name", "options", "hyperparams", "update")):
        # an Optimizer: its repr rounds values to 6 digits and names a schedule function
        # only: 0.1 and 0.1000001, or lambda c: a with another a, read the same
        parts = [describe(value.name, depth), describe(dict(value.options), depth)]
        parts += [f"{k}={describe(v, depth)}" for k, v in sorted(value.hyperparams.items())]
        return f"{type(value).__name__} " + " ".join(parts)
    if isinstance(value, TrainResult):  # what a resume takes from it; never its timing
        start = value.params if value.state is None else value.state
        return f"TrainResult {describe(start, depth)} {describe(value.optimizer, depth)}"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return (
            "{" + ", ".join(f"{k!r}: {describe(v, depth)}" for k, v in sorted(value.items())) + "}"
        )
    leaves, treedef = jax.tree.flatten(value)
    if not (len(leaves) == 1 and leaves[0] is value):  # a container or a registered pytree
        text = str(treedef) + "|" + "|".join(describe(x, depth) for x in leaves)
        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        return f"{type(value).__name__} of {len(leaves)} leaves {digest}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _describe_mesh(mesh: Any) -> str:
    """A mesh's axes (names, sizes, types) and its devices' ids in mesh order."""
    ids = np.vectorize(lambda d: d.id, otypes=[np.int64])(np.asarray(mesh.devices))
    types = getattr(mesh, "axis_types", None)
    axes = ", ".join(f"{n}: {k}" for n, k in zip(mesh.axis_names, ids.shape))
    kinds = "" if types is None else f" types {[str(t).split('.')[-1] for t in types]}"
    return f"Mesh({axes}){kinds} devices {ids.ravel().tolist()}"


def _process_timeout() -> float:
    text = os.environ.get(PROCESS_TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_PROCESS_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"${PROCESS_TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return seconds


def _encode(described: dict[str, str]) -> np.ndarray:
    """``described`` as a fixed-size byte buffer (as digests, if the texts are too long)."""
    raw = json.dumps(described, sort_keys=True).encode()
    if len(raw) > _FINGERPRINT_BYTES:
        digest = {k: hashlib.blake2b(v.encode()).hexdigest()[:16] for k, v in described.items()}
        raw = json.dumps(digest, sort_keys=True).encode()
    buf = np.zeros(_FINGERPRINT_BYTES, np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, np.uint8)
    return buf


def _decode(buf: np.ndarray) -> dict[str, str]:
    return json.loads(bytes(np.asarray(buf, np.uint8)).rstrip(b"\0").decode())


_abandoned: list[str] = []  # checks that timed out in this process (their gather pending)


def agree_across_processes(mesh: Any, what: str, arguments: dict[str, Any]) -> None:
    """Check that every process of a run on ``mesh`` was called with the same ``arguments``.

    A data-parallel run over several processes runs ONE program whose collectives
    pair up across processes. Processes called with different settings (a
    different ``batch_size``, ``epochs`` or optimizer; different initial params or
    data, as different seeds give) would hang in the first collective, or train
    replicas that silently differ. So, before anything else, every process
    describes its arguments (:func:`describe`) and the descriptions are all-gathered
    (one small collective of the same shape everywhere). Does nothing when ``mesh``
    is None or lives in this process only.

    Raises:
        ValueError: in every process, naming each argument that differs and its
            value in each process.
        TimeoutError: when the other processes have not reached ``what`` within
            ``$JBPNN_PROCESS_TIMEOUT`` seconds (default 300): one never called it,
            or crashed. Its all-gather stays pending, so every later call in this
            process raises RuntimeError (restart the processes) rather than pair
            with it or hang.
    """
    if not spans_processes(mesh):
        return
    if _abandoned:
        raise RuntimeError(
            f"{what}: an earlier check across processes ({_abandoned[0]}) timed out and its "
            "all-gather is still pending in this process, so its collectives no longer pair "
            "with the other processes' (a new call would meet that old one, or hang): "
            "restart the processes"
        )
    timeout = _process_timeout()
    mine = {name: describe(value) for name, value in arguments.items()}
    # the mesh itself: the same devices in another order pair the program's collectives
    # wrongly, and the run hung (a Mesh's repr names no device)
    mine["mesh"] = _describe_mesh(mesh)
    box: dict[str, Any] = {}

    def gather() -> None:
        try:
            box["all"] = multihost_utils.process_allgather(_encode(mine))
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    waiter = threading.Thread(target=gather, name=f"jbpnn-{what}-agree", daemon=True)
    waiter.start()
    waiter.join(timeout)
    me, count = jax.process_index(), jax.process_count()
    if waiter.is_alive():
        _abandoned.append(what)  # its gather may still pair with a late process's: see above
        raise TimeoutError(
            f"{what}: process {me} of {count} waited {timeout:g} s for the other processes "
            f"of this data-parallel run to reach {what}; every process must call it (one may "
            f"have crashed or taken another path). Set ${PROCESS_TIMEOUT_ENV} to wait longer"
        )
    if "error" in box:
        raise box["error"]
    everyone = [_decode(row) for row in np.asarray(box["all"]).reshape(count, -1)]
    differ = [k for k in sorted(everyone[0]) if len({str(d.get(k)) for d in everyone}) > 1]
    if differ:
        parts = []
        for k in differ:
            values = ", ".join(f"{d.get(k)} in process {i}" for i, d in enumerate(everyone))
            parts.append(f"{k} is {values}")
        raise ValueError(
            f"{what}: the processes of this data-parallel run were called with different "
            f"arguments: {'; '.join(parts)}. Every process must call {what} with the same "
            "arguments, params and data (a different seed gives different params), or "
            "pass the data as one global array"
        )

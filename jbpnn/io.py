"""Save and load a network, an ensemble or a whole training state: one ``.npz`` file.

(One job, the model file format: what a file holds, how it is
written and how every part of it is checked when read back; the atomic writing
itself lives in :mod:`jbpnn.files`.)

:func:`save` writes one of three things, :func:`load` rebuilds it without a template:

- an :class:`~jbpnn.params.MLP` (one network);
- a *stacked* MLP (``N`` networks, every leaf with a leading network axis, as
  :func:`jbpnn.many.stack_params` and ``ManyResult.params`` hold them);
- a :class:`~jbpnn.training.TrainState` (a checkpoint: params, optimizer moments
  and hyperparameters, data-order key, counters, early-stopping record,
  history buffers), so that ``train(load(p).state, X, Y, optimizer=load(p).optimizer,
  epochs=k)`` goes on exactly as the run would have; or a stacked one (``train_many``'s
  ``result.state``), whose network ``i``, ``jax.tree.map(lambda a: a[i], state)``, goes
  on with ``train`` as that network would (to float rounding: ``train_many``'s batched
  products round apart from ``train``'s, 1e-7 in float32; ``train_many`` itself starts
  from params: it does not resume).

The file is a plain NumPy ``.npz`` archive (readable with ``numpy.load(path,
allow_pickle=False)``, no pickle anywhere) holding these entries:

    format          "jbpnn-mlp"                  what the file is
    format_version  2 or 3                       bumped on incompatible changes (1 still read);
                                                 3 only for a file that needs `replaced`
    kind            "mlp" or "train_state"       v2; a version 1 file is an "mlp"
    stacked         int64                        v2; N networks on a leading axis, 0 for one
    sizes           int64 (n_layers + 1,)        layer widths, input first
    activations     str (n_layers,)              one activation name per layer (a unit of
                                                 your own is saved by name: register it
                                                 again before loading, or load refuses)
    loss            str                          the loss name
    article_mode    bool                         see jbpnn.params.MLP
    dtype           str                          w0's dtype, e.g. "float32", "bfloat16"
                                                 (version 1: every array's)
    dtypes          str (n_layers, 2)            v2; each layer's w and b dtype
    w0, b0, w1, b1, ...                          each layer's weights and biases; shape
                                                 (N, n_in, n_out) and (N, n_out) when stacked
    metadata        str                          the user's metadata, as JSON
    optimizer       str                          v2; JSON: the optimizer given to save
                                                 ({"name", "options", "hyperparams"}) or null
    replaced        str                          v3; JSON: the built-in names the network
                                                 uses that the saving process had replaced
                                                 (register_activation/register_loss with
                                                 replace=True), e.g. ["activation:tanh"]

A file whose network uses only units and losses as jbpnn defines them (or a user's under
new names) is written as version 2, readable by older jbpnn too. One that uses a
replacement of a built-in is version 3: an older jbpnn refuses it (it would compute the
built-in), and :func:`load` refuses it where the name is the built-in again, and refuses a
file saved with a built-in where this process has replaced it, naming the unit.

A ``train_state`` file adds (``w``/``b`` above hold ``state.params``):

    structure       str                          JSON: what rebuilds the state, below
    state/<path>    every other array leaf, named by its path in the state, e.g.
                    state/opt_state/count, state/opt_state/trace/layers/0/w,
                    state/best_params/layers/1/b, state/history/loss,
                    state/key (the key's jax.random.key_data, uint32)

``structure`` holds ``opt_state`` (the state's class, ``SGDState``,
``MomentumState``, ``AdamState``, ``RpropState``, ``LMState``, ``BRState`` or
``LBFGSState``, its hyperparameter names and, for L-BFGS, ``options``: the number of
pairs it keeps, ``history``),
``best_params`` (present or None), ``history`` (its keys and ``chunk``, the ring
buffer's length), ``keys`` (``{entry: key impl name}``, e.g. ``"threefry2x32"``)
and ``leaves`` (``{entry: dtype}``). :func:`load` builds the state's shape with
:func:`jbpnn.training.init_state` (``jax.eval_shape``, nothing computed) and
fills it entry by entry, refusing any entry whose shape or dtype differs.

Every array is stored in its own dtype; dtypes NumPy cannot store natively
(``bfloat16``) are stored as their bits (``uint16``) and viewed back on load.
Params (and a state's best params) with NaN or inf are refused, on save and on load, and
so are an optimizer state's hyperparameters (its other leaves may hold NaN and inf markers).
A momentum state records the variant that made its trace (``state/opt_state/variant``,
the index in :data:`jbpnn.optimizers.MOMENTUM_VARIANTS`); a checkpoint saved before it
did takes the variant of its ``optimizer`` entry, or -1 (not recorded) without one.

The write is atomic (:func:`jbpnn.files.atomic_write`, the one atomic write of
jbpnn): the archive is written to a temporary file in the target's directory (on
Linux an unnamed ``O_TMPFILE``, so a process killed mid-write leaves nothing
behind), flushed and ``fsync``-ed, then given the target's name (``linkat``, then
``os.replace`` over an existing file). A failure at any point, a full disk
included, removes the temporary file and leaves any previous file at ``path``
untouched. Only regular files are written (:func:`jbpnn.files.check_target`): a
symlink to a regular file is followed, and directories, special files
(``/dev/null``) and read-only files are refused, never replaced.

The file is written at exactly the path given: unlike ``numpy.savez``, no
``.npz`` suffix is appended, so ``load(path)`` always reads what ``save(path,
...)`` wrote. (The conventional suffix is still ``.npz``.)
"""

from __future__ import annotations

import inspect
import io
import json
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.activations import ACTIVATIONS, BUILTIN_ACTIVATIONS
from jbpnn.activations import is_builtin as activations_is_builtin
from jbpnn.checks import is_concrete
from jbpnn.files import as_path, atomic_write
from jbpnn.lbfgs import LBFGSState
from jbpnn.losses import BUILTIN_LOSSES, LOSSES
from jbpnn.losses import is_builtin as losses_is_builtin
from jbpnn.memory import ArrayTooLarge, check_array_memory
from jbpnn.optimizers import (
    MOMENTUM_VARIANTS,
    SCHEDULES,
    UNKNOWN_VARIANT,
    AdamState,
    BRState,
    LMState,
    MomentumState,
    Optimizer,
    RpropState,
    SGDState,
    check_hyperparam_values,
    check_momentum_trace,
    get_optimizer,
    momentum_variant_code,
    with_loss_penalty,
)
from jbpnn.params import MLP, Layer, check_network, network_count, replaced_builtins
from jbpnn.state import own_nan_markers
from jbpnn.stopping import MONITORS, NO_MONITOR, RUNNING, STOP_REASONS
from jbpnn.training import TrainConfig, TrainState, init_state

__all__ = ["FORMAT", "FORMAT_VERSION", "Saved", "load", "save", "save_bytes"]

FORMAT = "jbpnn-mlp"
FORMAT_VERSION = 3  # the newest this jbpnn reads and writes (see the module docstring)

# Dtypes numpy stores natively in .npz; any other float (bfloat16) is stored as its bits.
_NATIVE_FLOATS = ("float16", "float32", "float64")
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_HEADER_KEYS = ("format", "format_version", "sizes", "activations", "loss", "article_mode", "dtype")
_HEADER_KEYS_V2 = ("kind", "stacked", "dtypes")

# The optimizer states a checkpoint can hold: class name -> optimizer name.
_OPT_STATES = {
    SGDState: "sgd",
    MomentumState: "momentum",
    AdamState: "adam",
    RpropState: "rprop",
    LMState: "lm",
    BRState: "br",
    LBFGSState: "lbfgs",
}
_OPT_BY_CLASS = {cls.__name__: name for cls, name in _OPT_STATES.items()}


@dataclass(frozen=True, eq=False)
class Saved:
    """What :func:`load` returns; unpacks as ``params, metadata = load(path)``.

    Attributes:
        params: the network, rebuilt (and validated) with :meth:`MLP.from_layers`;
            stacked (leading network axis) if a stacked MLP was saved; for a
            checkpoint, the state's params (``state.params``).
        metadata: the keyword arguments given to :func:`save`, after a JSON round
            trip (tuples come back as lists, NumPy/JAX scalars as Python numbers).
        state: the :class:`~jbpnn.training.TrainState` of a checkpoint, else None.
        optimizer: the :class:`~jbpnn.optimizers.Optimizer` given to :func:`save`
            as ``optimizer=``, rebuilt; None if none was given.
    """

    params: MLP
    metadata: dict[str, Any]
    state: TrainState | None = None
    optimizer: Optimizer | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.params, self.metadata))  # params, metadata = load(path)


# ---------------------------------------------------------------- save
def save(
    path: str | os.PathLike,
    obj: MLP | TrainState,
    /,
    *,
    optimizer: Optimizer | None = None,
    **metadata: Any,
) -> Path:
    """Write a network, a stacked ensemble or a whole ``TrainState`` to ``path`` atomically.

    Args:
        path: the file to write, exactly (no suffix is added; ``.npz`` is the
            convention). Its directory must exist. An existing file is replaced
            only once the new one is completely on disk.
        obj: an :class:`MLP`; a stacked MLP (every ``w`` of shape ``(N, n_in,
            n_out)``, every ``b`` ``(N, n_out)``); or a
            :class:`~jbpnn.training.TrainState` (a checkpoint), e.g.
            ``result.state`` from ``train`` or ``train_many``.
        optimizer: the :class:`~jbpnn.optimizers.Optimizer` to store with it
            (keyword only), so that :func:`load` rebuilds it; for a state, the
            one it was trained with. Its schedule must be a built-in one
            (:data:`jbpnn.optimizers.SCHEDULES`). Not a metadata key.
        **metadata: anything JSON can hold (numbers, strings, bools, None, lists,
            dicts with string keys); NumPy and JAX scalars and arrays are
            converted to Python numbers and lists.

    Returns:
        The path written, as a :class:`pathlib.Path`: ``path``, or, when ``path`` is
        a symlink to a regular file, the file it points at (which is the one replaced).

    Raises:
        TypeError: ``obj`` is none of the above; its arrays are traced (inside
            ``jax.jit``); a metadata value is not JSON-serialisable (the message
            names the key); ``optimizer`` is not an Optimizer, or its schedule
            is the user's own function (only built-in schedules can be checkpointed).
        ValueError: params with NaN or inf (the message names the layer); stacked
            layers that disagree on ``N``; a state that ``load`` could not rebuild
            (another optimizer's state, or ``optimizer`` of another kind than the
            state's, where the kinds' states differ in structure, or a momentum variant
            whose trace means another quantity than the state's: the article's raw change
            against classical and Nesterov's velocity, which a state records; the variants
            whose states hold the same, classical and Nesterov momentum or adam's two
            variants, are not told apart: pass the run's own ``result.optimizer``); an
            optimizer state whose hyperparameters are NaN or inf. Nothing is written.
        FileNotFoundError: the target directory does not exist.
        IsADirectoryError, NotADirectoryError, PermissionError: ``path`` is a
            directory, under a regular file, read-only or in a folder that is not
            writable; a special file (``/dev/null``) is a ValueError. See
            :func:`jbpnn.files.check_target`. OSError: the write failed (a full disk): the
            previous file is intact and no temporary file is left.
    """
    # Any: numpy's savez stub types its keyword allow_pickle, which ** could name
    arrays: dict[str, Any] = _to_arrays(obj, optimizer, metadata)
    # a file object: numpy writes there and adds no suffix
    return atomic_write(path, lambda f: np.savez(f, **arrays), what="save to")


def save_bytes(
    obj: MLP | TrainState, /, *, optimizer: Optimizer | None = None, **metadata: Any
) -> bytes:
    """The bytes :func:`save` writes, in memory (checked as :func:`save` checks them).

    For writing a model together with other files, all or none
    (:func:`jbpnn.files.write_files`), as ``jbpnn train --save ... --plot ...`` does.
    """
    buffer = io.BytesIO()
    arrays: dict[str, Any] = _to_arrays(obj, optimizer, metadata)  # Any: as in save
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _to_arrays(
    obj: Any, optimizer: Optimizer | None, metadata: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    if isinstance(obj, TrainState):
        params = obj.params
        if not isinstance(params, MLP):
            raise TypeError(f"the TrainState's params must be an MLP, got {type(params).__name__}")
    elif isinstance(obj, MLP):
        params = obj
    else:
        hint = ""
        if hasattr(obj, "state") and hasattr(obj, "params"):  # a TrainResult or ManyResult
            hint = (
                "; save its params (save(path, result.params)) or its state as a checkpoint "
                "(save(path, result.state, optimizer=result.optimizer); networks trained with "
                "different values: save(path, result.state), or result[i] each)"
            )
        raise TypeError(
            f"save() expects an MLP, a stacked MLP or a TrainState, got {type(obj).__name__}{hint}"
        )
    _check_concrete(obj)
    check_network(params, "save", stacked=True)  # what load refuses is not written
    n = network_count(params)
    _check_finite_params("save", "params", params)
    replaced = _replaced_names(params)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        # version 2 unless the file needs the replacements recorded: older jbpnn reads it
        "format_version": np.array(3 if replaced else 2, np.int64),
        "kind": np.array("train_state" if isinstance(obj, TrainState) else "mlp"),
        "stacked": np.array(n, np.int64),
        **_params_entries(params, n),
        "metadata": np.array(_metadata_json(metadata)),
        "optimizer": np.array(json.dumps(_optimizer_description(optimizer))),
    }
    if replaced:
        arrays["replaced"] = np.array(json.dumps(replaced))
    if isinstance(obj, TrainState):
        arrays.update(_state_entries(obj, optimizer, n))
    return arrays


def _replaced_names(params: MLP) -> list[str]:
    """The built-in names ``params`` uses that this process has replaced by a user's
    unit or loss (``replace=True``), as ``"activation:NAME"`` / ``"loss:NAME"``."""
    return replaced_builtins(params)


def _replaced(activation: str) -> bool:
    return activation in BUILTIN_ACTIVATIONS and not activations_is_builtin(activation)


def _check_concrete(obj: Any) -> None:
    if not all(is_concrete(leaf) for leaf in jax.tree.leaves(obj)):
        raise TypeError(
            "save() needs concrete arrays, but got traced ones: call it outside jax.jit / jax.vmap"
        )


def _sizes(params: MLP) -> tuple[int, ...]:
    """Layer widths of one network (stacked or not): the last two axes of each ``w``."""
    shapes = [np.shape(layer.w)[-2:] for layer in params.layers]
    return (int(shapes[0][0]),) + tuple(int(s[1]) for s in shapes)


def _params_entries(params: MLP, n: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "sizes": np.array(_sizes(params), np.int64),
        "activations": np.array(params.activations),
        "loss": np.array(params.loss),
        "article_mode": np.array(params.article_mode),
        "dtype": np.array(_dtype_name(params.layers[0].w)),
        "dtypes": np.array([[_dtype_name(layer.w), _dtype_name(layer.b)] for layer in params]),
    }
    for i, layer in enumerate(params.layers):
        arrays[f"w{i}"] = _encode(np.asarray(layer.w))
        arrays[f"b{i}"] = _encode(np.asarray(layer.b))
    return arrays


def _dtype_name(a: Any) -> str:
    return jnp.dtype(a.dtype).name


class _NonFinite(ValueError):
    """Params with NaN or inf (the load message says so, not 'inconsistent contents')."""


def _check_finite_params(action: str, what: str, params: MLP) -> None:
    for i, layer in enumerate(params.layers):
        for name, leaf in (("w", layer.w), ("b", layer.b)):
            bad = ~np.isfinite(np.asarray(leaf))
            if bad.any():
                first = tuple(int(j) for j in np.argwhere(bad)[0])
                raise _NonFinite(
                    f"cannot {action} {what}: layer {i} {name} holds {int(bad.sum())} NaN or inf "
                    f"value(s), the first at index {first}; only finite params can be "
                    f"{'saved' if action == 'save' else 'loaded'}"
                )


def _encode(a: np.ndarray) -> np.ndarray:
    if a.dtype.name in _NATIVE_FLOATS or not jnp.issubdtype(a.dtype, jnp.floating):
        return a  # float16/32/64 and the integer counters: numpy stores them as they are
    return a.view(_BITS[a.dtype.itemsize])  # e.g. bfloat16 -> its uint16 bits


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def _flag(name: str, entry: np.ndarray) -> bool:
    """A stored bool: a bool array of one value (the string "False" was read as True)."""
    a = np.asarray(entry)
    if a.dtype != np.bool_ or a.shape != ():
        raise ValueError(f"{name} must be one bool, got {a.dtype} {a.shape}: {a!r}")
    return bool(a)


def _string_keys(value: Any, where: str) -> None:
    """Dicts in metadata have string keys: JSON would turn 0 into "0" and merge 1 and "1"."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"metadata {where} cannot be saved: its key {k!r} is a "
                    f"{type(k).__name__}; dicts in metadata need string keys (JSON turns "
                    "others into text, so they would not come back as given)"
                )
            _string_keys(v, where)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _string_keys(v, where)


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    for key, value in metadata.items():
        _string_keys(value, repr(key))
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"metadata {key!r} cannot be saved: {e}. Metadata values must be "
                "JSON-serialisable (numbers, strings, bools, None, lists, dicts with string keys)"
            ) from None
    return json.dumps(dict(metadata), default=_json_default)


def _optimizer_description(optimizer: Optimizer | None) -> dict[str, Any] | None:
    """``{"name", "options", "hyperparams"}`` of an Optimizer, checked to rebuild on load."""
    if optimizer is None:
        return None
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "optimizer= must be a jbpnn.optimizers.Optimizer (e.g. momentum(0.1, 0.9) or "
            f"get_optimizer('adam', lr=1e-3)), got {type(optimizer).__name__} {optimizer!r}; "
            "record anything else under another metadata key"
        )
    schedule = optimizer.options.get("schedule", "none")  # rprop, lm, br: no lr, no schedule
    if not isinstance(schedule, str):
        raise TypeError(
            f"{optimizer!r} has a learning-rate schedule that is a user function; only built-in "
            f"schedules ({', '.join(SCHEDULES)}) can be checkpointed, so that load can "
            "rebuild them. Use a jbpnn.optimizers schedule, or save without optimizer="
        )
    hyperparams = {}
    for name, value in optimizer.hyperparams.items():
        if value is None or not is_concrete(value) or np.ndim(value) != 0:
            raise TypeError(
                f"{optimizer!r}: hyperparameter {name!r} must be one concrete number to be "
                f"saved, got {value!r}"
            )
        hyperparams[name] = np.asarray(value).item()
    description = {"name": optimizer.name, "options": optimizer.options, "hyperparams": hyperparams}
    try:
        json.dumps(description)
        _rebuild_optimizer(description)
    except (TypeError, ValueError, KeyError) as e:
        raise TypeError(f"{optimizer!r} cannot be saved so that load rebuilds it: {e}") from None
    return description


# ---------------------------------------------------------------- the state
def _state_entries(state: TrainState, optimizer: Optimizer | None, n: int) -> dict[str, np.ndarray]:
    """``structure`` and the ``state/<path>`` entries; checks that load can rebuild them."""
    opt_state = state.opt_state
    if type(opt_state) not in _OPT_STATES:
        raise ValueError(
            f"cannot save a TrainState whose optimizer state is a {type(opt_state).__name__}: "
            f"only the states of jbpnn.optimizers ({', '.join(_OPT_BY_CLASS)}) can be checkpointed"
        )
    names = sorted(opt_state.hyperparams)
    if optimizer is not None:
        kind = _OPT_STATES[type(opt_state)]
        if optimizer.name != kind or sorted(optimizer.hyperparams) != names:
            raise ValueError(
                f"optimizer={optimizer!r} is not the kind this state was trained with: the state "
                f"is a {type(opt_state).__name__} with hyperparameters {names}"
            )
        _check_same_values(optimizer, opt_state.hyperparams, n)
        _check_same_trace(optimizer, opt_state, "cannot save this state with")
    _check_finite_hyperparams("save", opt_state)
    _check_hyperparam_ranges("save", opt_state)
    history = state.history
    if not isinstance(history, dict) or "loss" not in history:
        raise ValueError("the TrainState's history must be a dict of ring buffers with 'loss'")
    structure: dict[str, Any] = {
        "opt_state": {"class": type(opt_state).__name__, "hyperparams": names},
        "best_params": state.best_params is not None,
        "history": {"keys": sorted(history), "chunk": int(np.shape(history["loss"])[-1])},
        "keys": {},
        "leaves": {},
    }
    options = _shape_options(opt_state)
    if options:  # lbfgs only: older structures stay as they were
        structure["opt_state"]["options"] = options
    if state.best_params is not None:
        _check_finite_params("save", "best_params", state.best_params)
    arrays: dict[str, np.ndarray] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = _entry_name(path)
        if name.startswith("state/params/"):
            continue  # stored once, as w0, b0, ...
        if name in arrays:
            raise ValueError(f"two leaves of the state would be stored as {name!r}")
        if _is_key(leaf):
            structure["keys"][name] = str(jax.random.key_impl(leaf))
            arrays[name] = np.asarray(jax.random.key_data(leaf))
        else:
            a = np.asarray(leaf)
            structure["leaves"][name] = a.dtype.name
            arrays[name] = _encode(a)
    # What load will build must fit what is stored: refuse now rather than write a dead file.
    try:
        _check_leaves(state, _state_template(_first_network(state.params, n), structure), n)
    except ValueError as e:
        raise ValueError(f"this TrainState cannot be checkpointed: {e}") from None
    arrays["structure"] = np.array(json.dumps(structure))
    return arrays


def _entry_name(path: tuple[Any, ...]) -> str:
    """The entry of a state leaf: ``"state/opt_state/mu/layers/0/w"``."""
    parts = ["state"]
    for k in path:
        if isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append("layers")  # an MLP flattens, without a name, to its one child
        else:
            parts.append(jax.tree_util.keystr((k,), simple=True))
    return "/".join(parts)


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _first_network(params: MLP, n: int) -> MLP:
    return jax.tree.map(lambda a: a[0], params) if n else params


def _shape_options(opt_state: Any) -> dict[str, int]:
    """The static options that shape an optimizer state (lbfgs: ``history``, the pairs
    it keeps); read from the state itself, so a state saved without its optimizer loads."""
    if isinstance(opt_state, LBFGSState):
        return {"history": int(np.shape(opt_state.s)[-2])}
    return {}


def _state_template(params: MLP, structure: Mapping[str, Any]) -> TrainState:
    """The shape of the state (``jax.ShapeDtypeStruct`` leaves) of ONE network.

    Built as ``train`` builds it, :func:`init_state`, under ``jax.eval_shape``. The
    optimizer state's shape needs only the optimizer's name and hyperparameter
    names: its options and values do not change it.
    """
    opt = structure["opt_state"]
    if opt["class"] not in _OPT_BY_CLASS:
        raise ValueError(
            f"unknown optimizer state {opt['class']!r}; expected one of {list(_OPT_BY_CLASS)}"
        )
    options = dict(opt.get("options", {}))  # lbfgs: history; none for the others
    shape_only = Optimizer(
        _OPT_BY_CLASS[opt["class"]], options, dict.fromkeys(opt["hyperparams"], 0.0)
    )
    keys = set(structure["history"]["keys"])
    config = TrainConfig(
        n_examples=1,
        batch_size=1,
        n_batches=1,
        shuffle=False,
        watch_weight_change="max_weight_change" in keys,
        early_stopping=bool(structure["best_params"]),
        has_validation="val_loss" in keys,
        monitor="val_r2" if "val_r2" in keys else "val_loss",  # val_r2 is recorded then
        reduce_lr="lr_scale" in keys,  # its reductions are recorded then
        history_chunk=int(structure["history"]["chunk"]),
        optimizer_history=shape_only.history_keys,  # lm: mu, grad_norm; br: and gamma
    )
    if set(config.history_keys()) != keys:
        raise ValueError(f"history keys {sorted(keys)} are not a set that train records")
    return jax.eval_shape(lambda p: init_state(p, shape_only, config, jax.random.key(0)), params)


def _check_leaves(state: TrainState, template: TrainState, n: int) -> None:
    """``state`` has the template's structure, each leaf its shape (after ``N``) and dtype."""
    # mypy cannot resolve jax's PyTreeDef (jaxlib 0.10 ships no stub for it)
    if jax.tree.structure(state) != jax.tree.structure(template):  # type: ignore[operator]
        raise ValueError(
            "its structure is not the one init_state and train build for its optimizer state, "
            f"history and best_params: {jax.tree.structure(state)}"
        )
    lead = (n,) if n else ()
    flat = jax.tree_util.tree_flatten_with_path(template)[0]
    for (path, spec), leaf in zip(flat, jax.tree.leaves(state)):
        name = _entry_name(path)
        if np.shape(leaf) != lead + spec.shape:
            raise ValueError(f"{name} has shape {np.shape(leaf)}, expected {lead + spec.shape}")
        dtype = np.asarray(leaf).dtype if not _is_key(leaf) else spec.dtype
        if dtype != spec.dtype:
            raise ValueError(f"{name} has dtype {dtype}, expected {spec.dtype}")


# ---------------------------------------------------------------- optimizer
def _check_same_trace(optimizer: Optimizer, opt_state: Any, action: str) -> None:
    """A momentum state's recorded variant (``MomentumState.variant``) and ``optimizer``'s
    keep a trace of one meaning (classical and Nesterov the velocity, the article's the
    raw change): the file hands the optimizer back for the resume."""
    variant = optimizer.options.get("variant")
    if isinstance(opt_state, MomentumState) and variant in MOMENTUM_VARIANTS:
        try:
            check_momentum_trace(opt_state.variant, variant)
        except ValueError as e:
            raise ValueError(f"{action} optimizer={optimizer!r}: {e}") from None


def _check_finite_hyperparams(action: str, opt_state: Any) -> None:
    """The optimizer state's hyperparameters are finite numbers, as every factory checks
    them (a NaN ``eps`` made every update NaN); the state's other leaves may hold NaN and
    inf as markers (L-BFGS's first point) or after a diverged epoch, and are not checked."""
    hyperparams = getattr(opt_state, "hyperparams", None)
    if not isinstance(hyperparams, Mapping):
        return
    for name in sorted(hyperparams):
        a = np.asarray(hyperparams[name])
        if not jnp.issubdtype(a.dtype, jnp.floating):
            continue  # an integer one (step_decay's every): finite by its type
        bad = ~np.isfinite(a)
        if bad.any():
            value = a[bad].flat[0].item()
            where = f" (network {int(np.argmax(bad.reshape(-1)))})" if a.ndim else ""
            raise _NonFinite(
                f"cannot {action} the optimizer state: state/opt_state/hyperparams/{name} holds "
                f"{value!r}{where}; optimizer hyperparameters must be finite numbers"
            )


def _check_hyperparam_ranges(action: str, opt_state: Any) -> None:
    """The state's hyperparameters lie in the ranges their factories accept (a crafted or
    damaged file with ``m = 1.5`` or ``lr = -0.1`` trained on with them in a user's own
    ``optimizer.update`` loop, or in a resume of networks saved without ``optimizer=``)."""
    hyperparams = getattr(opt_state, "hyperparams", None)
    if not isinstance(hyperparams, Mapping):
        return
    values = {}
    for name, value in hyperparams.items():
        a = np.asarray(value)  # bfloat16 is no NumPy number: check its float32 values
        values[name] = a if np.issubdtype(a.dtype, np.number) else a.astype(np.float32)
    try:
        check_hyperparam_values(values)
    except ValueError as e:
        raise ValueError(
            f"cannot {action} the optimizer state: state/opt_state/hyperparams: {e}"
        ) from None


def _first_difference(
    optimizer: Optimizer, trained: Mapping[str, Any]
) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``(name, optimizer's value, the state's values)`` of the first hyperparameter whose
    values differ (every network's, when networks are stacked), or None."""
    for name in sorted(trained):
        held = np.asarray(trained[name])
        given = np.asarray(optimizer.hyperparams[name], held.dtype)
        if not np.array_equal(np.broadcast_to(given, held.shape), held, equal_nan=True):
            return name, given, held
    return None


def _check_file_values(optimizer: Optimizer, trained: Mapping[str, Any]) -> None:
    """The file's optimizer entry holds the values its state was trained with (``save``
    refuses another optimizer): a file whose two disagree would resume with the entry's
    values and report them, while the state's drove the epochs saved."""
    differ = _first_difference(optimizer, trained)
    if differ is not None:
        name, given, held = differ
        raise ValueError(
            f"the file's optimizer {optimizer!r} has {name}={given.item():.6g}, but its "
            f"state holds {name}={np.ravel(held)[0].item():.6g}: the file is damaged "
            "(save writes the values the state was trained with)"
        )


def _check_same_values(optimizer: Optimizer, trained: Mapping[str, Any], n: int) -> None:
    """``optimizer``'s values are the ones the state holds (every network's, when ``n``
    networks are stacked): load hands the optimizer back for the resume, and a resume takes
    its values, so another value would silently go on with it."""
    differ = _first_difference(optimizer, trained)
    if differ is None:
        return
    name, given, held = differ
    values = np.unique(held).tolist()
    if n and len(values) > 1:
        raise ValueError(
            f"the {n} networks were trained with different {name} ({values[0]:.6g} .. "
            f"{values[-1]:.6g}): one optimizer= cannot stand for them, and a resume would "
            f"take its {name}={given.item():.6g} for all; save without optimizer= (each "
            "network's values stay in the state), or each network on its own: "
            "save(path, result[i].state, optimizer=result[i].optimizer)"
        )
    raise ValueError(
        f"optimizer={optimizer!r} has {name}={given.item():.6g}, but the state was trained "
        f"with {name}={values[0]:.6g}: give the optimizer it was trained with "
        "(result.optimizer); a resume can change it later (train(state, optimizer=...))"
    )


def _rebuild_optimizer(description: Mapping[str, Any]) -> Optimizer:
    """The Optimizer of ``description``, through ``get_optimizer`` and the schedule factories."""
    name, options = description["name"], dict(description["options"])
    args: dict[str, Any] = dict(description["hyperparams"])
    if "schedule" in options:  # an optimizer with a learning rate (rprop, lm, br have none)
        schedule = options["schedule"]
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; expected one of {list(SCHEDULES)}")
        factory = SCHEDULES[schedule]
        schedule_args = {k: args.pop(k) for k in inspect.signature(factory).parameters}
        args["lr"] = factory(**schedule_args)
    for static in ("variant", "history"):  # momentum's and adam's rule, lbfgs's pairs
        if static in options:
            args[static] = options[static]
    for penalty in ("weight_decay", "alpha", "min_grad"):  # rprop's min_grad: an option too
        if options.get(penalty) and args.get(penalty) == 0:
            # A plain 0 switches the penalty off; as a 0-d array it stays on (a swept 0).
            args[penalty] = np.asarray(0.0)
    loss_alpha = args.pop("loss_alpha") if options.get("loss_alpha") else None
    optimizer = get_optimizer(name, **args)
    if loss_alpha is not None:  # the estimators' recorded loss: scikit-learn's alpha term
        optimizer = with_loss_penalty(optimizer, loss_alpha)
    names = set(description["hyperparams"])
    if optimizer.options != options or set(optimizer.hyperparams) != names:
        raise ValueError(
            f"rebuilt {optimizer!r} with options {optimizer.options} and hyperparameters "
            f"{sorted(optimizer.hyperparams)}, expected {options} and {sorted(names)}"
        )
    return optimizer


# ---------------------------------------------------------------- load
@own_nan_markers  # a state's NaN and inf markers go to the device as they were
def load(path: str | os.PathLike) -> Saved:
    """Read a network, a stacked ensemble or a checkpoint saved by :func:`save`.

    Args:
        path: the file, exactly as given to :func:`save`.

    Returns:
        A :class:`Saved`, which unpacks as ``params, metadata = load(path)``:

        - ``params``: equal to the saved ones bit for bit, each array in its
          saved dtype (float64 needs ``jax.enable_x64``, else JAX downcasts it to
          float32 as it does every float64 array); stacked if saved stacked; a
          checkpoint's ``state.params``.
        - ``metadata``: the saved metadata.
        - ``state``: a checkpoint's :class:`~jbpnn.training.TrainState`, every
          leaf as saved (the key with its impl), else None.
        - ``optimizer``: the Optimizer saved with ``optimizer=``, rebuilt with
          :func:`~jbpnn.optimizers.get_optimizer`, else None.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable ``.npz`` (truncated, corrupt,
            random bytes), holds pickled objects (never loaded), is an ``.npz`` but
            not a jbpnn model, was written by a
            newer format version, holds NaN or inf params (or optimizer
            hyperparameters; the message names the entry), names an activation or loss
            not registered in this process (:func:`jbpnn.register_activation`), or its contents are
            inconsistent (an entry missing, or of a shape or dtype other than the
            structure says). The message names the file and the fault.
    """
    path = Path(as_path(path, "load"))
    if not path.exists():
        raise FileNotFoundError(f"cannot load {path}: no such file")
    if path.is_dir():
        raise ValueError(f"cannot load {path}: it is a directory, not a saved model")
    if not path.is_file():  # a FIFO, a socket, a device: opening one may block forever
        raise ValueError(f"cannot load {path}: it is not a regular file (a FIFO or a device)")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _from_entries(path, _Members(path, archive))
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":  # never a model: refused unread (it may be huge)
                return _from_entries(path, np.empty(0))
        entries = _read_npz(path)
    except PermissionError:
        raise
    except _Unreadable as e:
        raise ValueError(f"cannot load {path}: {e}") from e.__cause__
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, *_ZIP_FAULTS) as e:
        if isinstance(e, ValueError) and str(e).startswith(f"cannot load {path}"):
            raise  # _from_entries's own message
        raise ValueError(f"cannot load {path}: {_read_fault(path, e)}") from e
    return _from_entries(path, entries)


# what zipfile raises for a damaged compressed member (zlib.error), a compression method
# or an encryption it does not read (NotImplementedError, RuntimeError "password required")
_ZIP_FAULTS = (zlib.error, NotImplementedError, RuntimeError)
_MAX_INFLATION = 64  # a compressed member inflating more than this (past 1 MiB) is refused


class _Unreadable(ValueError):
    """A member of the archive that cannot be read: its message says why."""


class _Members(Mapping):
    """The members of an ``.npz`` archive, each read only when asked for.

    Only the members the format defines are ever asked for, so an extra member (a
    compressed one that would inflate to gigabytes) is never read. Before a member is
    read, the size its ``.npy`` header declares (shape x dtype) must match the size the
    zip directory records for it and fit in memory; a pickled member is never loaded.
    """

    def __init__(self, path: Path, archive: zipfile.ZipFile):
        self._done: dict[str, np.ndarray]
        self._path, self._zip, self._done = path, archive, {}
        self._names = {n[: -len(".npy")]: n for n in archive.namelist() if n.endswith(".npy")}

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._names:
            raise KeyError(key)
        if key not in self._done:
            self._done[key] = self._read(key)
        return self._done[key]

    def _read(self, key: str) -> np.ndarray:
        name = self._names[key]
        try:
            info = self._zip.getinfo(name)
            with self._zip.open(name) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise _Unreadable(f"its member {key!r} is an .npy of version {version}")
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(f)
                header = f.tell()
            if dtype.hasobject:
                raise _Pickled(f"its member {key!r} holds pickled Python objects (an object array)")
            declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if header + declared != info.file_size:
                raise _Unreadable(
                    f"its member {key!r} is damaged: its header declares {declared} bytes of "
                    f"{dtype} {tuple(shape)}, the archive holds {info.file_size - header}"
                )
            if (
                info.compress_type != zipfile.ZIP_STORED
                and info.file_size > _MAX_INFLATION * info.compress_size + 2**20
            ):  # a model's weights compress about 1.1:1; zeros that inflate 1000:1 are a
                # zip bomb (a 1.5 MB file took 1.7 GB before its shape was found wrong)
                raise _Unreadable(
                    f"its member {key!r} would inflate from {info.compress_size} to "
                    f"{info.file_size} bytes; jbpnn writes its models uncompressed, and a "
                    "model's weights do not compress so: this file is not a model to load"
                )
            check_array_memory(
                shape, dtype, f"the member {key!r}", advice="this file is not a model to load"
            )
            with self._zip.open(name) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except _Pickled as e:
            raise _Unreadable(_read_fault(self._path, e)) from e
        except _Unreadable:
            raise
        except ArrayTooLarge as e:
            raise _Unreadable(str(e)) from e
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, *_ZIP_FAULTS) as e:
            raise _Unreadable(
                f"the zip archive is truncated or damaged ({type(e).__name__}: {e})"
            ) from e


class _Pickled(ValueError):
    """A member holds pickled Python objects, which are never loaded."""


def _read_npz(path: Path) -> dict[str, np.ndarray] | np.ndarray:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        return data  # a single .npy array
    # Read every entry now: NpzFile is lazy, and a damaged member only fails when read.
    entries = {}
    with data:
        for key in data.files:
            try:
                entries[key] = data[key]
            except ValueError as e:
                if _is_pickle_refusal(e):
                    raise _Pickled(
                        f"its member {key!r} holds pickled Python objects (an object array)"
                    ) from e
                raise
    return entries


def _is_pickle_refusal(error: ValueError) -> bool:
    """NumPy refusing an object array because ``allow_pickle=False``."""
    return "allow_pickle" in str(error)


def _read_fault(path: Path, error: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(6)
    pickled = None
    if isinstance(error, _Pickled):
        pickled = str(error)
    elif isinstance(error, ValueError) and _is_pickle_refusal(error):
        # NumPy says so of ANY file that is neither a zip nor an .npy: look at the bytes
        if head == b"\x93NUMPY":
            pickled = "the .npy data holds pickled Python objects"
        elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            pickled = "it is not an .npz file but a Python pickle"
    if pickled is not None:
        return (
            f"{pickled}, which jbpnn never loads: loading a pickle can run any code. A "
            "jbpnn model holds only numeric arrays and JSON text; this file was written "
            "by other code"
        )
    if head.startswith(b"PK"):
        return f"the zip archive is truncated or damaged ({type(error).__name__}: {error})"
    if head.startswith(b"\x93NUM"):
        return f"the .npy data is truncated or damaged ({type(error).__name__}: {error})"
    # numpy's own message here ("contains pickled data ... allow_pickle") would mislead.
    return "not an .npz file: it does not start with the zip signature (corrupt, or another format)"


def _from_entries(path: Path, entries: Mapping[str, np.ndarray] | np.ndarray) -> Saved:
    if not isinstance(entries, Mapping):
        raise ValueError(
            f"cannot load {path}: it holds a single .npy array, not a jbpnn model "
            f"(expected an .npz archive with format={FORMAT!r})"
        )
    fmt = str(entries["format"]) if "format" in entries else None
    if fmt != FORMAT:
        found = f"format={fmt!r}" if fmt is not None else f"no 'format'; has {sorted(entries)}"
        raise ValueError(
            f"cannot load {path}: not a jbpnn model file ({found}; expected format={FORMAT!r})"
        )
    missing = [k for k in _HEADER_KEYS if k not in entries]
    if missing:
        raise ValueError(f"cannot load {path}: incomplete jbpnn model file, missing {missing}")
    try:
        version = int(entries["format_version"])
    except (TypeError, ValueError):
        raise ValueError(
            f"cannot load {path}: invalid format_version {entries['format_version']!r}"
        ) from None
    if version > FORMAT_VERSION:
        raise ValueError(
            f"cannot load {path}: format version {version} is newer than this jbpnn "
            f"reads (up to {FORMAT_VERSION}); upgrade jbpnn"
        )
    if version < 1:
        raise ValueError(f"cannot load {path}: invalid format version {version}")
    missing = [k for k in _HEADER_KEYS_V2 if k not in entries] if version >= 2 else []
    missing += ["replaced"] if version >= 3 and "replaced" not in entries else []
    if missing:
        raise ValueError(f"cannot load {path}: incomplete jbpnn model file, missing {missing}")
    _check_registered(path, entries)
    try:
        return _rebuild(entries, version)
    except _NonFinite as e:
        raise ValueError(f"cannot load {path}: {e}") from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot load {path}: inconsistent contents: {e}") from None
    except (MemoryError, RecursionError) as e:  # a crafted size or nesting, not a model
        raise ValueError(
            f"cannot load {path}: inconsistent contents ({type(e).__name__}: its sizes or "
            "nesting are not a model's)"
        ) from None


def _check_registered(path: Path, entries: Mapping[str, np.ndarray]) -> None:
    """Refuse a file naming a unit or loss this process has not registered, or whose
    built-in name means another unit or loss here than in the process that saved it.

    A file records names only; a user's unit (:func:`jbpnn.register_activation`) or loss
    (:func:`jbpnn.register_loss`) must be registered again, by the same code, before
    loading: importing the module that registers it. A built-in name replaced by a
    user's (``replace=True``) is recorded in the file's ``replaced`` entry.
    """
    saved_replaced = _saved_replaced(path, entries)
    names = np.asarray(entries["activations"]).reshape(-1)
    for i, name in enumerate(names):
        if not isinstance(name, (str, np.str_)):
            continue  # a malformed entry: _rebuild names it
        name = str(name)
        if name not in ACTIVATIONS:
            raise ValueError(
                f"cannot load {path}: layer {i} uses the activation {name!r}, which is not "
                f"registered in this process; register it before loading (import the module "
                f"that calls jbpnn.register_activation({name!r}, ...); jbpnn predict: "
                f"--import MODULE)"
            )
        _check_same_meaning(
            path,
            f"layer {i} uses the activation",
            "activation",
            name,
            f"activation:{name}" in saved_replaced,
            _replaced(name),
        )
    loss = entries["loss"]
    if np.ndim(loss) == 0 and isinstance(loss.item(), str):
        name = loss.item()
        if name not in LOSSES:
            raise ValueError(
                f"cannot load {path}: it uses the loss {name!r}, which is not registered in "
                f"this process; register it before loading (import the module that calls "
                f"jbpnn.register_loss({name!r}, ...); jbpnn predict: --import MODULE)"
            )
        now = name in BUILTIN_LOSSES and not losses_is_builtin(name)
        _check_same_meaning(
            path, "it uses the loss", "loss", name, f"loss:{name}" in saved_replaced, now
        )


def _saved_replaced(path: Path, entries: Mapping[str, np.ndarray]) -> set[str]:
    """The file's ``replaced`` entry (version 3), as a set of ``kind:name``."""
    if "replaced" not in entries:
        return set()
    try:
        found = json.loads(str(entries["replaced"]))
    except (TypeError, ValueError):
        found = None
    if not isinstance(found, list) or not all(isinstance(k, str) for k in found):
        raise ValueError(
            f"cannot load {path}: inconsistent contents: its 'replaced' entry is not a JSON "
            "list of names"
        )
    return set(found)


def _check_same_meaning(
    path: Path, where: str, kind: str, name: str, saved_replaced: bool, now_replaced: bool
) -> None:
    """Refuse a built-in name replaced in one process and not in the other."""
    register = f"jbpnn.register_{kind}({name!r}, ..., replace=True)"
    if saved_replaced and not now_replaced:
        raise ValueError(
            f"cannot load {path}: {where} {name!r} as the saving process had replaced it "
            f"({register}), but here {name!r} is jbpnn's built-in; register the replacement "
            "again before loading (import the module that does; jbpnn predict: --import MODULE)"
        )
    if now_replaced and not saved_replaced:
        raise ValueError(
            f"cannot load {path}: {where} {name!r} as jbpnn's built-in, but this process has "
            f"replaced {name!r} ({register}); load it in a process without the replacement"
        )


def _rebuild(entries: Mapping[str, np.ndarray], version: int) -> Saved:
    kind = str(entries["kind"]) if version >= 2 else "mlp"
    if kind not in ("mlp", "train_state"):
        raise ValueError(f"kind {kind!r} is neither 'mlp' nor 'train_state'")
    n = int(entries["stacked"]) if version >= 2 else 0
    if n < 0:
        raise ValueError(f"stacked is {n}, expected a network count >= 1, or 0")
    structure = _json_entry(entries, "structure") if kind == "train_state" else None
    dtypes = _dtype_names(entries, version)
    if structure is not None:
        dtypes += list(structure["leaves"].values())
    if "float64" in dtypes and jnp.result_type(float) != jnp.float64:  # x64 off
        warnings.warn(
            "the file holds float64 params but JAX's float64 is off (jax_enable_x64): "
            "they are loaded as float32. Load inside `with jax.enable_x64(True):` to keep them",
            stacklevel=4,
        )
    params = _rebuild_params(entries, version, n)
    metadata = _json_entry(entries, "metadata")
    optimizer = None
    if "optimizer" in entries:
        description = _json_entry(entries, "optimizer", allow_none=True)
        optimizer = _rebuild_optimizer(description) if description is not None else None
    state = None
    if structure is not None:
        state = _rebuild_state(entries, structure, params, n, optimizer)
    if state is not None and optimizer is not None:
        assert structure is not None  # the state was rebuilt from it
        opt_kind = _OPT_BY_CLASS[structure["opt_state"]["class"]]
        if optimizer.name != opt_kind:
            raise ValueError(f"optimizer {optimizer!r} does not match the state's {opt_kind}")
        _check_same_trace(optimizer, state.opt_state, "the state does not fit its")
        hyperparams = getattr(state.opt_state, "hyperparams", None)
        if isinstance(hyperparams, Mapping):
            _check_file_values(optimizer, hyperparams)
    return Saved(params, metadata, state, optimizer)


def _json_entry(entries: Mapping[str, np.ndarray], key: str, allow_none: bool = False) -> Any:
    value = json.loads(str(entries[key]))
    if not isinstance(value, dict) and not (allow_none and value is None):
        raise ValueError(f"{key} is a {type(value).__name__}, expected a JSON object")
    return value


def _dtype_names(entries: Mapping[str, np.ndarray], version: int) -> list[str]:
    """Every ``w``/``b`` dtype name, layer by layer: ``[w0, b0, w1, b1, ...]``."""
    n_layers = len(entries["sizes"]) - 1
    if version < 2:  # version 1: one dtype for every array
        return [str(entries["dtype"])] * (2 * n_layers)
    dtypes = entries["dtypes"]
    if dtypes.shape != (n_layers, 2):
        raise ValueError(f"dtypes has shape {dtypes.shape}, expected ({n_layers}, 2)")
    return [str(d) for d in dtypes.reshape(-1)]


def _rebuild_params(entries: Mapping[str, np.ndarray], version: int, n: int) -> MLP:
    sizes = tuple(int(s) for s in entries["sizes"])
    n_layers = len(sizes) - 1
    dtypes = iter(_dtype_names(entries, version))
    lead = (n,) if n else ()
    layers = []
    for i in range(n_layers):
        if f"w{i}" not in entries or f"b{i}" not in entries:
            raise KeyError(f"missing w{i} or b{i} for layer {i} of {n_layers}")
        w = _decode(entries[f"w{i}"], jnp.dtype(next(dtypes)))
        b = _decode(entries[f"b{i}"], jnp.dtype(next(dtypes)))
        if w.shape != lead + sizes[i : i + 2]:
            raise ValueError(
                f"w{i} has shape {w.shape}, sizes {sizes} say {sizes[i : i + 2]}"
                + (f" for each of {n} networks" if n else "")
            )
        if n and b.shape != (n, sizes[i + 1]):
            raise ValueError(f"b{i} has shape {b.shape}, expected {(n, sizes[i + 1])}")
        layers.append((w, b))
    params = MLP.from_layers(
        [(w[0], b[0]) for w, b in layers] if n else layers,  # checks names, shapes, the loss pair
        activations=[str(a) for a in entries["activations"]],
        loss=str(entries["loss"]),
        article_mode=_flag("article_mode", entries["article_mode"]),
        check_finite=False,  # checked just below, with the file named
    )
    if n:
        params = params.replace_layers([Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in layers])
    _check_finite_params("load", "params", params)
    return params


# State entries a later jbpnn added, and the value a checkpoint without them loads with.
# L-BFGS's carried evaluation (x, x_loss, x_grad): NaN, so the next iteration evaluates;
# the fingerprint of its data (x_data): 0, no data's (the next iteration evaluates).
_ADDED_LATER = {f"state/opt_state/{k}": np.nan for k in ("x", "x_loss", "x_grad")}
_ADDED_LATER["state/opt_state/x_data"] = 0
_ADDED_LATER["state/monitor"] = NO_MONITOR  # what early stopping watched: not recorded
# the momentum variant that made the trace: the file's optimizer's, else not recorded
_ADDED_LATER["state/opt_state/variant"] = UNKNOWN_VARIANT


def _check_shape_options(
    entries: Mapping[str, np.ndarray], structure: Mapping[str, Any], n: int
) -> None:
    """The sizes the structure gives (the history's chunk, lbfgs's pairs) are the stored
    arrays' own: checked before the template is built from them, which allocates them (a
    file claiming a chunk of 10**12 epochs asked NumPy for terabytes)."""
    sizes = {"chunk": ("state/history/loss", -1, structure["history"]["chunk"])}
    options = structure["opt_state"].get("options", {})
    if "history" in options:
        sizes["history"] = ("state/opt_state/s", -2, options["history"])
    for what, (entry, axis, claimed) in sizes.items():
        if entry not in entries:
            raise ValueError(f"missing state entry {entry!r}")
        shape = np.shape(entries[entry])
        if isinstance(claimed, bool) or not isinstance(claimed, int) or not shape:
            raise ValueError(f"the structure's {what} {claimed!r} is not a whole number")
        if len(shape) < 1 + bool(n) or shape[axis] != claimed:
            raise ValueError(f"the structure's {what} {claimed} does not fit {entry} {shape}")


def _rebuild_state(
    entries: Mapping[str, np.ndarray],
    structure: Mapping[str, Any],
    params: MLP,
    n: int,
    optimizer: Optimizer | None = None,
) -> TrainState:
    """The state of :func:`_state_template`, filled entry by entry, every one checked.

    ``optimizer``: the file's, which gives a momentum state saved before jbpnn recorded
    its variant (``state/opt_state/variant``) the variant it was saved with."""
    added_later = dict(_ADDED_LATER)
    variant = None if optimizer is None else optimizer.options.get("variant")
    if optimizer is not None and optimizer.name == "momentum" and variant in MOMENTUM_VARIANTS:
        added_later["state/opt_state/variant"] = momentum_variant_code(variant)
    _check_shape_options(entries, structure, n)
    template = _state_template(_first_network(params, n), structure)
    treedef: Any  # mypy cannot resolve jax's PyTreeDef (jaxlib 0.10 ships no stub for it)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [_entry_name(path) for path, _ in flat]
    wanted = {name for name in names if not name.startswith("state/params/")}
    stored = {key for key in entries if key.startswith("state/")}
    added = {name for name in wanted - stored if name in added_later}
    if wanted - stored - added:
        raise ValueError(f"missing state entries {sorted(wanted - stored - added)}")
    if stored - wanted:
        raise ValueError(f"unexpected state entries {sorted(stored - wanted)}")
    lead = (n,) if n else ()
    param_leaves = iter(jax.tree.leaves(params))  # the state's params come first, in order
    leaves = []
    for name, (_, spec) in zip(names, flat):
        if name.startswith("state/params/"):
            leaves.append(next(param_leaves))
        elif name in added:  # saved by an older jbpnn: the entry's value for "not yet known"
            leaves.append(jnp.asarray(np.full(lead + spec.shape, added_later[name], spec.dtype)))
        elif name in structure["keys"]:
            impl = structure["keys"][name]
            leaves.append(_restore_key(name, entries[name], impl, lead + spec.shape))
        else:
            dtype = structure["leaves"].get(name)
            leaves.append(_restore_leaf(name, entries[name], dtype, lead, spec))
    state = treedef.unflatten(leaves)
    # codes: the state's value for "none", or an index of their table
    _check_code("stop", state.stop, (RUNNING, "running"), STOP_REASONS, "STOP_REASONS")
    _check_code("monitor", state.monitor, (NO_MONITOR, "no early stopping"), MONITORS, "MONITORS")
    if isinstance(state.opt_state, MomentumState):
        variants = tuple(MOMENTUM_VARIANTS)
        unknown = (UNKNOWN_VARIANT, "not recorded")
        _check_code(
            "opt_state/variant", state.opt_state.variant, unknown, variants, "MOMENTUM_VARIANTS"
        )
    _check_finite_hyperparams("load", state.opt_state)
    _check_hyperparam_ranges("load", state.opt_state)
    # the counters: a negative one (a crafted or damaged file) ran on as epoch -3
    epoch = np.asarray(state.epoch)
    for name in ("epoch", "step", "best_epoch", "bad_epochs", "loss_bad_epochs"):
        value = np.asarray(getattr(state, name))
        if (value < 0).any():
            raise ValueError(f"state/{name} holds {int(value.min())}; expected a count >= 0")
    if (np.asarray(state.best_epoch) > epoch).any():
        raise ValueError("state/best_epoch lies after state/epoch: the best epoch must be one run")
    scale = np.asarray(state.lr_scale)
    if not (np.isfinite(scale) & (scale > 0)).all():
        raise ValueError(f"state/lr_scale holds {float(scale.min())!r}; expected a factor > 0")
    if state.best_params is not None:
        _check_finite_params("load", "best_params", state.best_params)
    return state


def _check_code(
    name: str, value: Any, none: tuple[int, str], table: tuple[str, ...], table_name: str
) -> None:
    """``state/<name>`` holds ``none`` or an index of ``table``: a crafted or damaged file
    held others (a stop code of 99)."""
    codes = np.asarray(value)
    bad = (codes < none[0]) | (codes >= len(table))
    if bad.any():
        what = "the stop code " if name == "stop" else ""
        raise ValueError(
            f"state/{name} holds {what}{int(codes[bad].flat[0])}; expected {none[0]} "
            f"({none[1]}) or 0 .. {len(table) - 1} (an index of {table_name})"
        )


def _restore_key(name: str, data: np.ndarray, impl: str, shape: tuple[int, ...]) -> jax.Array:
    try:
        key = jax.random.wrap_key_data(jnp.asarray(data), impl=impl)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{name}: not key data of impl {impl!r} ({e})") from None
    if key.shape != shape:
        raise ValueError(f"{name} holds keys of shape {key.shape}, expected {shape}")
    return key


def _restore_leaf(
    name: str, stored: np.ndarray, dtype: str | None, lead: tuple[int, ...], spec: Any
) -> jax.Array:
    if dtype is None:
        raise ValueError(f"{name} has no dtype in the structure")
    a = _decode(stored, jnp.dtype(dtype), name)
    if a.shape != lead + spec.shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {lead + spec.shape}")
    if jax.dtypes.canonicalize_dtype(a.dtype) != spec.dtype:  # float64 is float32 with x64 off
        raise ValueError(f"{name} has dtype {a.dtype}, expected {spec.dtype}")
    return jnp.asarray(a)


def _decode(a: np.ndarray, dtype: np.dtype, name: str = "an array") -> np.ndarray:
    if a.dtype == dtype:
        return a
    if dtype.name not in _NATIVE_FLOATS and a.dtype == _BITS.get(dtype.itemsize):
        return a.view(dtype)
    raise ValueError(f"{name} is stored as {a.dtype}, but the file says dtype {dtype.name}")

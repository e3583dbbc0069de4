"""Save and load a network: one ``.npz`` file, written atomically.

The file is a plain NumPy ``.npz`` archive (readable with ``numpy.load(path,
allow_pickle=False)``, no pickle anywhere) holding these entries:

    format          "jbpnn-mlp"                  what the file is
    format_version  1                            bumped on incompatible changes
    sizes           int64 (n_layers + 1,)        layer widths, input first
    activations     str (n_layers,)              one activation name per layer
    loss            str                          the loss name
    article_mode    bool                         see jbpnn.params.MLP
    dtype           str                          e.g. "float32", "float64", "bfloat16"
    w0, b0, w1, b1, ...                          each layer's weights and biases
    metadata        str                          the user's metadata, as JSON

``w``/``b`` are stored in their own dtype; dtypes NumPy cannot store natively
(``bfloat16``) are stored as their bits (``uint16``) and viewed back on load.

The write is atomic: the archive is written to a temporary file in the target's
directory, flushed and ``fsync``-ed, then moved over the target with
``os.replace``. A failure at any point removes the temporary file and leaves
any previous file at ``path`` untouched.

The file is written at exactly the path given: unlike ``numpy.savez``, no
``.npz`` suffix is appended, so ``load(path)`` always reads what ``save(path,
...)`` wrote. (The conventional suffix is still ``.npz``.)
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.params import MLP

FORMAT = "jbpnn-mlp"
FORMAT_VERSION = 1

# Dtypes numpy stores natively in .npz; any other float (bfloat16) is stored as its bits.
_NATIVE_FLOATS = ("float16", "float32", "float64")
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_HEADER_KEYS = ("format", "format_version", "sizes", "activations", "loss", "article_mode", "dtype")


class Saved(NamedTuple):
    """What :func:`load` returns; unpacks as ``params, metadata = load(path)``.

    Attributes:
        params: the network, rebuilt (and validated) with :meth:`MLP.from_layers`.
        metadata: the keyword arguments given to :func:`save`, after a JSON round
            trip (tuples come back as lists, NumPy/JAX scalars as Python numbers).
    """

    params: MLP
    metadata: dict[str, Any]


# ---------------------------------------------------------------- save
def save(path: str | os.PathLike, params: MLP, /, **metadata: Any) -> Path:
    """Write ``params`` and ``metadata`` to ``path`` atomically.

    Args:
        path: the file to write, exactly (no suffix is added; ``.npz`` is the
            convention). Its directory must exist. An existing file is replaced
            only once the new one is completely on disk.
        params: the network to save.
        **metadata: anything JSON can hold (numbers, strings, bools, None, lists,
            dicts with string keys); NumPy and JAX scalars and arrays are
            converted to Python numbers and lists.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``params`` is not an :class:`MLP`, or a metadata value is not
            JSON-serialisable (the message names the key).
        FileNotFoundError: the target directory does not exist.
    """
    path = Path(path)
    arrays = _to_arrays(params, metadata)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: directory {directory} does not exist")
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never clobber a file we did not create; mode 0o666 is filtered by the umask,
    # so the saved file gets the same permissions as any other new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: numpy writes here and adds no suffix
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    return path


def _to_arrays(params: MLP, metadata: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(params, MLP):
        raise TypeError(f"save() expects an MLP as params, got {type(params).__name__}")
    dtype = jnp.dtype(params.dtype)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "sizes": np.array(params.sizes, np.int64),
        "activations": np.array(params.activations),
        "loss": np.array(params.loss),
        "article_mode": np.array(params.article_mode),
        "dtype": np.array(dtype.name),
        "metadata": np.array(_metadata_json(metadata)),
    }
    for i, layer in enumerate(params.layers):
        arrays[f"w{i}"] = _encode(np.asarray(layer.w))
        arrays[f"b{i}"] = _encode(np.asarray(layer.b))
    return arrays


def _encode(a: np.ndarray) -> np.ndarray:
    if a.dtype.name in _NATIVE_FLOATS:
        return a
    return a.view(_BITS[a.dtype.itemsize])  # e.g. bfloat16 -> its uint16 bits


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    for key, value in metadata.items():
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"metadata {key!r} cannot be saved: {e}. Metadata values must be "
                "JSON-serialisable (numbers, strings, bools, None, lists, dicts with string keys)"
            ) from None
    return json.dumps(dict(metadata), default=_json_default)


def _fsync_directory(directory: Path) -> None:
    # Make the rename itself durable (POSIX); not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- load
def load(path: str | os.PathLike) -> Saved:
    """Read a network saved by :func:`save`.

    Args:
        path: the file, exactly as given to :func:`save`.

    Returns:
        ``Saved(params, metadata)``: params equal to the saved ones bit for bit,
        in the saved dtype (float64 needs ``jax.enable_x64``, else JAX
        downcasts it to float32 as it does every float64 array).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable ``.npz`` (truncated, corrupt,
            random bytes), is an ``.npz`` but not a jbpnn model, was written by a
            newer format version, or its contents are inconsistent. The message
            names the file and the fault.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot load {path}: no such file")
    if path.is_dir():
        raise ValueError(f"cannot load {path}: it is a directory, not a saved model")
    try:
        entries = _read_npz(path)
    except PermissionError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot load {path}: {_read_fault(path, e)}") from e
    return _from_entries(path, entries)


def _read_npz(path: Path) -> dict[str, np.ndarray] | np.ndarray:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        return data  # a single .npy array
    # Read every entry now: NpzFile is lazy, and a damaged member only fails when read.
    with data:
        return {key: data[key] for key in data.files}


def _read_fault(path: Path, error: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return f"the zip archive is truncated or damaged ({type(error).__name__}: {error})"
    if head.startswith(b"\x93NUM"):
        return f"the .npy data is truncated or damaged ({type(error).__name__}: {error})"
    # numpy's own message here ("contains pickled data ... allow_pickle") would mislead.
    return "not an .npz file: it does not start with the zip signature (corrupt, or another format)"


def _from_entries(path: Path, entries: dict[str, np.ndarray] | np.ndarray) -> Saved:
    if not isinstance(entries, dict):
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
    try:
        return _rebuild(entries)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot load {path}: inconsistent contents: {e}") from None


def _rebuild(entries: dict[str, np.ndarray]) -> Saved:
    sizes = tuple(int(n) for n in entries["sizes"])
    n_layers = len(sizes) - 1
    dtype = jnp.dtype(str(entries["dtype"]))
    if dtype == np.float64 and jnp.result_type(float) != jnp.float64:  # x64 off
        warnings.warn(
            "the file holds float64 params but JAX's float64 is off (jax_enable_x64): "
            "they are loaded as float32. Load inside `with jax.enable_x64(True):` to keep them",
            stacklevel=4,
        )
    layers = []
    for i in range(n_layers):
        if f"w{i}" not in entries or f"b{i}" not in entries:
            raise KeyError(f"missing w{i} or b{i} for layer {i} of {n_layers}")
        w = _decode(entries[f"w{i}"], dtype)
        b = _decode(entries[f"b{i}"], dtype)
        if w.shape != (sizes[i], sizes[i + 1]):
            raise ValueError(f"w{i} has shape {w.shape}, sizes {sizes} say {sizes[i : i + 2]}")
        layers.append((w, b))
    params = MLP.from_layers(
        layers,
        activations=[str(a) for a in entries["activations"]],
        loss=str(entries["loss"]),
        article_mode=bool(entries["article_mode"]),
    )
    metadata = json.loads(str(entries["metadata"]))
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata is a {type(metadata).__name__}, expected a JSON object")
    return Saved(params, metadata)


def _decode(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if a.dtype == dtype:
        return a
    if dtype.name not in _NATIVE_FLOATS and a.dtype == _BITS[dtype.itemsize]:
        return a.view(dtype)
    raise ValueError(f"an array is stored as {a.dtype}, but the file says dtype {dtype.name}")

"""Data for training: the bundled digits, splits, scalers, label encoding.

NumPy only (no JAX), so the command line can load and check data before JAX starts.

- :func:`load_digits`: the UCI 8x8 handwritten digits shipped inside the package
  (``jbpnn/data/digits.npz``, CC BY 4.0, see ``jbpnn/data/DIGITS_LICENSE.txt``).
- :func:`train_test_split`, :func:`one_hot`, :func:`check_classes`.
- :class:`Standardizer`, :class:`MinMaxScaler`, :class:`LabelEncoder`: fitted on the
  training data, saved as plain JSON (``to_dict``/``from_dict``) in a model's metadata
  so that prediction applies the same scaling and prints the original labels.

A user's own files are read by :mod:`jbpnn.loaders` (CSV / NPZ as a
:class:`~jbpnn.loaders.Table`, a model's features by column name). :func:`load_csv`
and :func:`load_npz` are re-exported here, where the README documents them, and
:class:`DataError`, which the label checks here raise too.

Note: the data folder ``jbpnn/data/`` has no ``__init__.py``; it is read through
``importlib.resources`` and never imported, so ``import jbpnn.data`` is this module.
"""

from __future__ import annotations

import io
import numbers
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from jbpnn.loaders import DataError, load_csv, load_npz

__all__ = [
    "DIGITS_CITATION",
    "DIGITS_DESCRIPTION",
    "SCALERS",
    "DataError",
    "Dataset",
    "LabelEncoder",
    "MinMaxScaler",
    "Standardizer",
    "check_classes",
    "load_csv",
    "load_digits",
    "load_npz",
    "one_hot",
    "scaler_from_dict",
    "train_test_split",
]

DIGITS_CITATION = (
    'E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", '
    "UCI Machine Learning Repository, 1998. DOI: 10.24432/C50P49. Licence: CC BY 4.0."
)

DIGITS_DESCRIPTION = f"""UCI optical recognition of handwritten digits, 8x8 version.

1797 images of handwritten digits 0..9 (the UCI test file optdigits.tes), 10 classes.
Each image is 8x8 = 64 pixel counts in 0..16: 32x32 bitmaps extracted from NIST forms,
counted in non-overlapping 4x4 blocks. Rows of X are the images flattened row-major.

Source: {DIGITS_CITATION}
"""


class Dataset(NamedTuple):
    """A bundled dataset.

    Attributes:
        X: features, shape ``(n, d)``, float32.
        y: class indices ``0..C-1``, shape ``(n,)``, int64.
        target_names: the class names, shape ``(C,)``; ``target_names[y[i]]``.
        description: where the data comes from, its licence and attribution.
    """

    X: np.ndarray
    y: np.ndarray
    target_names: np.ndarray
    description: str


# ------------------------------------------------------------------ bundled digits
def digits_path() -> Any:
    """The bundled digits file (a :class:`pathlib.Path` in an ordinary install; a
    ``Traversable`` inside a zip): what ``jbpnn train`` reads without ``--data``."""
    return resources.files("jbpnn").joinpath("data", "digits.npz")


@cache
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """The stored arrays, read once: X uint8 ``(1797, 64)``, y uint8 ``(1797,)``; a
    damaged file (an install overwritten) is a :class:`DataError` naming it."""
    path = digits_path()
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as f:
            X, y = f["X"], f["y"]
    except Exception as e:  # unreadable, not an archive, pickled, arrays missing
        raise DataError(
            f"the bundled digits file {path} cannot be read ({type(e).__name__}: {e}); it is "
            "damaged: reinstall jbpnn"
        ) from None
    if X.shape != (1797, 64) or y.shape != (1797,):
        raise DataError(
            f"the bundled digits file {path} holds X {X.shape} and y {y.shape}, not (1797, 64) "
            "and (1797,); it is damaged: reinstall jbpnn"
        )
    return X, y


def load_digits(scale: bool = True) -> Dataset:
    """The UCI 8x8 handwritten digits, bundled with jbpnn (no network needed).

    Alpaydin and Kaynak (1998), UCI Machine Learning Repository, DOI 10.24432/C50P49,
    CC BY 4.0. Class counts for digits 0..9: 178 182 177 183 181 182 181 179 174 180.

    Args:
        scale: divide the pixel counts by 16, so ``X`` lies in ``[0, 1]``;
            ``False`` keeps the counts ``0..16`` (as float32).

    Returns:
        A :class:`Dataset`: ``X`` float32 ``(1797, 64)``, ``y`` int64 ``(1797,)`` in
        ``0..9``, ``target_names`` ``array([0, ..., 9])`` and a ``description``.
    """
    X, y = _digits_raw()
    X = X.astype(np.float32)
    if scale:
        X /= 16.0  # exact in float32
    return Dataset(X, y.astype(np.int64), np.arange(10), DIGITS_DESCRIPTION)


# ------------------------------------------------------------------ splitting, labels
def train_test_split(
    X: np.ndarray,
    y: np.ndarray,
    test_fraction: float = 0.2,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split rows into a shuffled train part and a held-out test part.

    ``round(n * test_fraction)`` rows (at least 1, at most ``n - 1``) go to the test
    part. With ``stratify`` and class labels (a 1-D ``y`` of integers, booleans or
    strings; float labels, as a numeric CSV column loads, through
    :class:`LabelEncoder` first) each class gets its share of the test rows (largest
    remainders), so class proportions match in both parts; a class with a single row
    is refused, as scikit-learn's stratified split does; a float ``y`` (regression) or
    a 2-D ``y`` is split at random. Deterministic for a given ``seed``.

    Args:
        X: features, shape ``(n, d)``.
        y: targets, shape ``(n,)`` or ``(n, k)``.
        test_fraction: share of rows held out, a real number in ``(0, 1)`` (a NumPy
            scalar or 0-d array too).
        seed: seed of the NumPy generator that shuffles, an int in ``0 .. 2**32 - 1``
            (:func:`jbpnn.checks.check_seed`), or what ``np.random.default_rng`` takes
            besides: a ``Generator``, a ``SeedSequence``, or None (a fresh random split).
        stratify: keep class proportions (class labels only, see above); True or False.

    Returns:
        ``(X_train, X_test, y_train, y_test)``, with ``n - n_test`` and ``n_test`` rows.

    Raises:
        TypeError: a ``test_fraction`` that is not a number, a ``seed`` that is not an
            int, a ``stratify`` that is not a bool.
        ValueError: ``X`` or ``y`` not arrays of rows, or of different lengths, a
            ``test_fraction`` outside ``(0, 1)``, a seed out of range, fewer than 2 rows.
    """
    # imports JAX; this module's import stays NumPy-only
    from jbpnn.checks import check_seed, scalar_value

    X, y = np.asarray(X), np.asarray(y)
    for name, a in (("X", X), ("y", y)):
        if a.ndim == 0:
            raise ValueError(
                f"{name} must be an array of rows (shape (n, ...)), got {type(a.item()).__name__} "
                f"{a.item()!r}"
            )
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; expected the same number")
    fraction = scalar_value(test_fraction)  # a NumPy scalar or 0-d array as its number
    if np.ndim(fraction) > 0 and not isinstance(fraction, (str, bytes)):
        raise TypeError(
            f"test_fraction must be one number in (0, 1), got an array of shape "
            f"{np.shape(fraction)}"
        )
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(
            f"test_fraction must be a number in (0, 1), got {type(test_fraction).__name__} "
            f"{test_fraction!r}"
        )
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if seed is not None and not isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        seed = check_seed("seed", seed)  # a generator or None: NumPy's default_rng takes them
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"stratify must be True or False, got {stratify!r}")
    if n < 2:
        raise ValueError(f"need at least 2 rows to split, got {n}")
    n_test = min(max(round(n * fraction), 1), n - 1)
    rng = np.random.default_rng(seed)
    if stratify and _is_label_array(y):
        classes, y_idx = np.unique(_clean_labels(y), return_inverse=True)
        counts = np.bincount(y_idx.ravel(), minlength=len(classes))
        if stratify and _is_label_array(y) and np.any(counts < 2):
            one = classes.tolist()[int(np.flatnonzero(counts < 2)[0])]
            raise ValueError(
                f"class {one!r} has a single row: a stratified split cannot put it in both "
                "parts (scikit-learn refuses it too); add rows of it, or give stratify=False"
            )
        quota = _largest_remainder(counts * (n_test / n), n_test, rng)
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(y_idx == c))[: quota[c]] for c in range(len(classes))]
        )
    else:
        test = rng.permutation(n)[:n_test]
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    train = rng.permutation(np.flatnonzero(~is_test))
    test = rng.permutation(test)
    return X[train], X[test], y[train], y[test]


def _is_label_array(y: np.ndarray) -> bool:
    """True for 1-D integer, boolean or string labels (not floats, not one-hot)."""
    return y.ndim == 1 and y.dtype.kind in "biuUSO"


def _largest_remainder(shares: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Integers summing to ``total``, each the floor of its share or one more.

    The leftover units go to the largest fractional parts, ties broken at random.
    """
    quota = np.floor(shares).astype(np.int64)
    left = total - int(quota.sum())
    if left > 0:
        frac = shares - quota
        order = np.lexsort((rng.random(len(shares)), -frac))  # largest fraction first
        quota[order[:left]] += 1
    return quota


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows of the identity: ``T[i, c] = 1`` if ``labels[i] == c`` else ``0``.

    Args:
        labels: class indices, shape ``(n,)``, integers in ``0..n_classes-1``.
        n_classes: ``C``, an int >= 1 (not a bool, not a float).

    Returns:
        Targets ``T``, shape ``(n, C)``, float32.

    Raises:
        ValueError: labels that are not class indices in range, an ``n_classes`` that
            is not an int >= 1.
        jbpnn.memory.ArrayTooLarge: ``T`` larger than the memory available (checked
            before allocating it; a ``ValueError`` too).

    A host function (its checks read the labels): inside ``jax.jit`` use
    ``jax.nn.one_hot(labels, n_classes)``.
    """
    # imports JAX; this module's import stays NumPy-only
    from jbpnn.checks import check_int, scalar_value

    if any(c.__name__ == "Tracer" for c in type(labels).__mro__):  # jax's, without JAX here
        raise ValueError(
            "one_hot checks its labels on the host, and these are traced (inside jax.jit "
            "or vmap): use jax.nn.one_hot(labels, n_classes) there, or one_hot before"
        )
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices, got shape {labels.shape}")
    if labels.dtype.kind == "f" and labels.size and np.any(labels != np.round(labels)):
        raise ValueError("labels must be integer class indices; use LabelEncoder first")
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    n_classes = check_int("n_classes", scalar_value(n_classes), 1)  # a 0-d array as its int
    idx = labels.astype(np.int64)
    bad = (idx < 0) | (idx >= n_classes)
    if np.any(bad):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}, got {labels[bad][0]} "
            f"(at index {int(np.flatnonzero(bad)[0])})"
        )
    if len(idx) * n_classes * 4 > _ONE_HOT_CHECKED:  # a large T: does it fit?
        from jbpnn.memory import check_array_memory  # imports JAX, as above

        check_array_memory(
            (len(idx), n_classes),
            np.float32,
            "one_hot's targets",
            advice="use fewer rows at a time, or fewer classes",
        )
    T = np.zeros((len(idx), n_classes), dtype=np.float32)  # not np.eye: C x C
    T[np.arange(len(idx)), idx] = 1.0
    return T


_ONE_HOT_CHECKED = 2**28  # bytes: one_hot checks larger targets against the memory free


def check_classes(y: np.ndarray, source: str = "the target") -> int:
    """Check that a classification target has at least two classes.

    Args:
        y: labels, shape ``(n,)``, any dtype.
        source: what ``y`` is, for the message (e.g. ``"column 'label' of data.csv"``).

    Returns:
        The number of classes ``C >= 2``.

    Raises:
        DataError: fewer than two distinct labels.
    """
    classes = np.unique(np.asarray(y)).tolist()
    if len(classes) < 2:
        if len(classes) == 0:
            raise DataError(f"{source} is empty; classification needs at least 2 classes")
        raise DataError(
            f"{source} has a single class {classes[0]!r} ({len(y)} rows); "
            "classification needs at least 2 classes"
        )
    return len(classes)


class LabelEncoder:
    """Map labels (strings or numbers) to class indices ``0..C-1`` and back.

    ``classes_`` holds the sorted distinct labels; label ``classes_[c]`` is class
    ``c``. Float labels that are all whole numbers (``1.0, 2.0``, as a numeric CSV
    column loads) are kept as integers, so predictions print ``2`` not ``2.0``.
    """

    def __init__(self, classes: Sequence[Any] | np.ndarray | None = None):
        self.classes_: np.ndarray | None = None
        if classes is not None:
            self.classes_ = _clean_labels(classes)
            if len(np.unique(self.classes_)) != len(self.classes_):
                raise ValueError(f"classes must be distinct, got {self.classes_.tolist()}")

    @property
    def n_classes(self) -> int:
        """``C``, the number of classes."""
        return len(self._fitted())

    def fit(self, y: Sequence[Any] | np.ndarray) -> LabelEncoder:
        """Learn the classes from labels ``y`` of shape ``(n,)``."""
        self.classes_ = np.unique(_clean_labels(y))
        return self

    def transform(self, y: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Labels ``(n,)`` -> class indices ``(n,)`` int64; unknown labels raise DataError."""
        classes = self._fitted()
        y = _clean_labels(y)
        as_str = (y.dtype.kind in "US") != (classes.dtype.kind in "US")
        key = str if as_str else (lambda label: label)
        index = {key(label): c for c, label in enumerate(classes.tolist())}
        labels = y.tolist()
        unknown = sorted({str(v) for v in labels if key(v) not in index})
        if unknown:
            raise DataError(
                f"unknown labels {unknown[:10]}{' ...' if len(unknown) > 10 else ''}; "
                f"the known classes are {classes.tolist()}"
            )
        return np.array([index[key(v)] for v in labels], dtype=np.int64)

    def fit_transform(self, y: Sequence[Any] | np.ndarray) -> np.ndarray:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(y).transform(y)

    def inverse_transform(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Class indices ``(n,)`` -> the original labels ``(n,)``."""
        classes = self._fitted()
        idx = np.asarray(idx)
        if idx.size and (idx.min() < 0 or idx.max() >= len(classes)):
            raise ValueError(f"class indices must lie in 0..{len(classes) - 1}")
        return classes[idx.astype(np.int64)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"kind": "label_encoder", "classes": [...]}``."""
        return {"kind": "label_encoder", "classes": self._fitted().tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelEncoder:
        """Rebuild from :meth:`to_dict`."""
        if "classes" not in d:
            raise ValueError(f"a label encoder dict needs 'classes', got keys {sorted(d)}")
        return cls(d["classes"])

    def _fitted(self) -> np.ndarray:
        if self.classes_ is None:
            raise ValueError("LabelEncoder is not fitted; call fit(y) first")
        return self.classes_

    def __repr__(self) -> str:
        return f"LabelEncoder(classes={None if self.classes_ is None else self.classes_.tolist()})"


def _clean_labels(y: Sequence[Any] | np.ndarray) -> np.ndarray:
    """1-D labels with one comparable dtype: strings, integers or floats."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, shape (n,), got shape {y.shape}")
    if y.dtype.kind == "O":
        kinds = {type(v).__name__ for v in y.tolist() if not isinstance(v, str)}
        if kinds and len(kinds) < len({type(v).__name__ for v in y.tolist()}):
            raise ValueError(
                f"labels mix text with {sorted(kinds)}: give one kind (all text or all numbers)"
            )
        y = y.astype(str)
    if y.dtype.kind == "c":
        raise ValueError("labels must be text or real numbers, got complex numbers")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"labels must be finite, got {y[bad]} at index {bad}")
    if y.dtype.kind == "f" and np.all(y == np.round(y)) and np.all(np.abs(y) <= 2**53):
        y = y.astype(np.int64)  # whole numbers as integers; beyond 2**53 (1e20) they stay
        # floats: int64 ends near 9.2e18, and 1e20 and 2e20 cast to one label
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    return y


# ------------------------------------------------------------------ scalers
def column_range(X: np.ndarray, caller: str, of: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Each column's ``(min, max)`` of float64 ``X``, refused (naming the ``caller``, the
    column and what it is a column ``of``) where ``max - min`` overflows float64: no scale
    maps such a range."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    with np.errstate(over="ignore"):
        wide = ~np.isfinite(hi - lo)
    if wide.any():
        j = int(np.flatnonzero(wide)[0])
        raise ValueError(
            f"{caller}: column {j}{of} spans from {lo[j]:.6g} to {hi[j]:.6g}, a range wider "
            "than float64 holds; rescale the data first"
        )
    return lo, hi


def _checked_offset_scale(name: str, offset: Any, scale: Any) -> tuple[np.ndarray, np.ndarray]:
    """``offset`` and ``scale`` as float64 vectors of one length, finite, ``scale > 0``."""
    try:
        o, c = np.asarray(offset, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: offset and scale must be lists of numbers") from None
    if o.ndim != 1 or c.shape != o.shape or o.size == 0:
        raise ValueError(
            f"{name}: offset and scale must be non-empty lists of the same length (one per "
            f"feature), got shapes {o.shape} and {c.shape}"
        )
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(c)) and np.all(c > 0)):
        raise ValueError(f"{name}: offset must be finite and scale finite and > 0, got "
                         f"offset {o.tolist()} and scale {c.tolist()}")  # fmt: skip
    return o, c


class _Scaler:
    """``X' = (X - offset) / scale`` per column, fitted on training data.

    Columns with zero spread (every value the same) get ``offset`` that value and
    ``scale = 1``, so they map to exactly 0 (a mean or standard deviation computed in
    floating point would leave a rounding error there: a spread of 1e-17 that blows a
    new value up by 1e16).
    """

    kind = ""

    def __init__(self, offset: Any = None, scale: Any = None):
        if (offset is None) != (scale is None):
            raise ValueError(f"{type(self).__name__}: give both offset and scale, or neither")
        self.offset_ = self.scale_ = None
        if offset is not None:
            self.offset_, self.scale_ = _checked_offset_scale(type(self).__name__, offset, scale)

    def _offset_scale(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, X: np.ndarray) -> _Scaler:
        """Learn per-column offset and scale from ``X`` of shape ``(n, d)``."""
        X = _check_features(X, "fit")
        if len(X) == 0:
            raise ValueError("cannot fit a scaler on 0 rows")
        X = X.astype(np.float64)
        lo, hi = column_range(X, "fit")
        with np.errstate(over="ignore", invalid="ignore"):
            offset, scale = self._offset_scale(X)
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale))):
            # huge values (|x| near 1e300): the sums overflow; work on x / max|x|
            m = np.max(np.abs(X), axis=0)
            m = np.where(m > 0, m, 1.0)
            offset, scale = self._offset_scale(X / m)
            offset, scale = offset * m, scale * m
        constant = hi == lo  # exactly: a mean of equal values can miss them by a rounding
        self.offset_ = np.where(constant, lo, offset)
        self.scale_ = np.where(constant | ~(scale > 0), 1.0, scale)
        return self

    def transform(self, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Scale ``X`` ``(n, d)``; returns ``(n, d)`` of ``dtype`` (float32 by default)."""
        offset, scale = self._fitted()
        X = _check_features(X, "transform", len(offset))
        with np.errstate(over="ignore", invalid="ignore"):
            Z = ((X.astype(np.float64) - offset) / scale).astype(dtype)
        _check_scaled(Z, "transform", dtype)
        return Z

    def fit_transform(self, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(X).transform(X, dtype)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`: ``(n, d)`` float64."""
        offset, scale = self._fitted()
        Z = _check_features(Z, "inverse_transform", len(offset))
        with np.errstate(over="ignore", invalid="ignore"):
            X = Z.astype(np.float64) * scale + offset
        _check_scaled(X, "inverse_transform", np.float64)
        return X

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"kind": ..., "offset": [d floats], "scale": [d floats]}``."""
        offset, scale = self._fitted()
        return {"kind": self.kind, "offset": offset.tolist(), "scale": scale.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Scaler:
        """Rebuild from :meth:`to_dict` (exact: JSON keeps every float64 digit)."""
        if d.get("kind") != cls.kind or "offset" not in d or "scale" not in d:
            raise ValueError(
                f"{cls.__name__}.from_dict needs kind={cls.kind!r}, 'offset' and 'scale'; "
                f"got kind={d.get('kind')!r} and keys {sorted(d)}"
            )
        return cls(d["offset"], d["scale"])

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.offset_ is None or self.scale_ is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(X) first")
        return self.offset_, self.scale_

    def __repr__(self) -> str:
        n = None if self.offset_ is None else len(self.offset_)
        return f"{type(self).__name__}(n_features={n})"


class Standardizer(_Scaler):
    """Standardise: ``X' = (X - mean) / std`` per column (population std; 0 -> 1)."""

    kind = "standardize"

    def _offset_scale(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X.mean(axis=0), X.std(axis=0)


class MinMaxScaler(_Scaler):
    """Min-max: ``X' = (X - min) / (max - min)`` per column, into ``[0, 1]`` (range 0 -> 1)."""

    kind = "minmax"

    def _offset_scale(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = X.min(axis=0)
        return lo, X.max(axis=0) - lo


SCALERS: dict[str, type[_Scaler]] = {"standardize": Standardizer, "minmax": MinMaxScaler}


def scaler_from_dict(d: Mapping[str, Any]) -> _Scaler:
    """Rebuild any scaler from its ``to_dict()`` by its ``"kind"`` (see :data:`SCALERS`)."""
    kind = d.get("kind")
    if kind not in SCALERS:
        raise ValueError(f"unknown scaler kind {kind!r}; expected one of {sorted(SCALERS)}")
    return SCALERS[kind].from_dict(d)


def _check_scaled(Z: np.ndarray, what: str, dtype: Any) -> None:
    if not np.all(np.isfinite(Z)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(Z))[0])
        raise ValueError(
            f"{what}: row {i}, column {j} is far outside the range the scaler was fitted "
            f"on: scaled, it overflows {np.dtype(dtype).name}"
        )


def _check_features(X: np.ndarray, what: str, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{what}: X must be a numeric 2-D array (n, d), got {X.dtype} {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{what}: X has {X.shape[1]} columns, expected {n_features}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what}: X contains NaN or inf")
    return X

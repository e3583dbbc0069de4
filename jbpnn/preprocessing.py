"""What a table's columns become for a network, and back: :class:`Preprocessing`.

A model trained on a user's table can predict later only if it keeps what was done
to the data: the task, the scaler fitted on the training rows, the class labels
(classification) or the target's scaling (regression), and the columns' names.
:class:`Preprocessing` holds exactly that, as plain immutable values. It is fitted
once (:meth:`Preprocessing.fit`), applied both ways (:meth:`~Preprocessing.transform`,
:meth:`~Preprocessing.targets`; :meth:`~Preprocessing.decode` turns the network's
outputs back into labels or values) and saved as JSON in a model's metadata
(:meth:`~Preprocessing.to_dict`, what ``jbpnn train --save`` writes), read back by
:meth:`~Preprocessing.from_dict`, which refuses a malformed record with a message
naming the bad field.

The record, as saved (the keys of a model's metadata; other keys are left alone)::

    task            "classification" or "regression"
    feature_names   the d input columns' names, in the network's input order
    target_name     the target column's name (or null)
    columns         every column of the training file in order, target included (or null)
    scaler          {"kind": "minmax" | "standardize", "offset": [d], "scale": [d]}
    classes         classification: {"kind": "label_encoder", "classes": [C labels]}
    target_scaler   regression: {"kind": "standardize", "offset": [1], "scale": [1]}

The modelling choices that go with a task live here too, so that the command line
and a script make them alike: :func:`infer_task` (is a target classes or numbers?),
:data:`TASK_LOSSES` and :func:`task_loss` (which losses train a task, the default
first), :func:`output_activation` (a regression's output unit is linear).

NumPy only (no JAX), like :mod:`jbpnn.data`, whose scalers and label encoder it uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jbpnn.data import SCALERS, DataError, LabelEncoder, one_hot, scaler_from_dict

__all__ = [
    "MAX_CLASSES",
    "TASKS",
    "TASK_LOSSES",
    "Preprocessing",
    "add_task_loss",
    "Scaling",
    "infer_task",
    "output_activation",
    "task_loss",
]

TASKS = ("classification", "regression")

# Which losses train each task, the default first. A regression target is one
# standardised number, so only mse fits it: a 1-unit softmax is constant 1 (loss 0,
# nothing learnt), and the cross-entropies need targets in [0, 1].
TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy", "binary_cross_entropy", "mse"),
    "regression": ("mse",),
}
_BUILTIN_TASK_LOSSES = dict(TASK_LOSSES)


def add_task_loss(name: str, tasks: Sequence[str]) -> None:
    """Let the loss ``name`` train ``tasks``, after the built-ins (``jbpnn.register_loss``'s
    ``tasks=``). It replaces what an earlier registration of ``name`` said; a built-in
    loss keeps its own tasks."""
    for task in TASKS:
        builtin = _BUILTIN_TASK_LOSSES[task]
        listed = tuple(n for n in TASK_LOSSES[task] if n != name or n in builtin)
        TASK_LOSSES[task] = (*listed, name) if task in tasks and name not in listed else listed


MAX_CLASSES = 20  # an integer target with more distinct values than this is a regression


def infer_task(y: Any, task: str = "auto") -> str:
    """The task of a target: ``"classification"`` or ``"regression"``.

    With ``task="auto"``: text labels are classes; numbers are classes when every one
    is a whole number and there are at most :data:`MAX_CLASSES` distinct values, else
    a regression. Any other ``task`` is returned as given (after a check).

    Args:
        y: the target column, shape ``(n,)``: real numbers, bools or text labels
            (pandas columns too), at least one, none missing.
        task: ``"auto"``, ``"classification"`` or ``"regression"``.

    Raises:
        ValueError: an unknown ``task``; with ``"auto"``, a ``y`` that is not one
            non-empty column, holds missing values (NaN, None, ``pd.NA``: how many) or
            infinities, or holds complex numbers, dates or times.
        TypeError: with ``"auto"``, a ``y`` that is None.
    """
    if task != "auto":
        if task not in TASKS:
            raise ValueError(f"task must be 'auto', {TASKS[0]!r} or {TASKS[1]!r}, got {task!r}")
        return task
    if y is None:
        raise TypeError("y must be the target column, an array of shape (n,), got None")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be the target column, shape (n,); got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y is empty: there is no target to infer a task from")
    if y.dtype.kind == "c":
        raise ValueError(
            f"y has complex values ({y.dtype.name}); a target is real numbers or labels"
        )
    if y.dtype.kind in "mMV":
        raise ValueError(
            f"y holds {y.dtype.name} values, which are neither classes nor numbers to "
            "regress: convert them first (to numbers, or to text labels)"
        )
    if y.dtype.kind == "f":
        missing = int(np.isnan(y).sum())
    else:
        missing = sum(_missing(v) for v in y) if y.dtype.kind == "O" else 0
    if missing:
        raise ValueError(
            f"y, the target, has {missing} missing value(s) (NaN, None or NA) among {y.size}; "
            "drop or fill those rows first"
        )
    if y.dtype.kind == "O" and not any(isinstance(v, (str, bytes)) for v in y):
        try:  # numbers held as objects (a pandas column): numbers, not labels
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if y.dtype.kind in "USO":  # text labels
        return "classification"
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(
            f"y, the target, has {int(np.isinf(y).sum())} infinite value(s); a target must "
            "be finite"
        )
    values = np.unique(y)
    whole = bool(np.all(values == np.round(values)))
    return "classification" if whole and len(values) <= MAX_CLASSES else "regression"


def task_loss(task: str, loss: str | None = None) -> str:
    """The loss that trains ``task``: ``loss`` if it can, the task's default for None.

    Raises:
        ValueError: ``loss`` cannot train ``task`` (see :data:`TASK_LOSSES`), naming
            the losses that can.
    """
    if loss is None:
        return TASK_LOSSES[task][0]
    if loss not in TASK_LOSSES[task]:
        builtin = any(loss in names for names in _BUILTIN_TASK_LOSSES.values())
        hint = "" if builtin else " (a loss of your own says which: register_loss(..., tasks=))"
        raise ValueError(
            f"{loss} cannot train a {task} target; {task} trains with "
            f"{' or '.join(TASK_LOSSES[task])}{hint}"
        )
    return loss


def output_activation(task: str, loss: str, exact_with: Sequence[str] = ()) -> str | None:
    """The output unit for ``task`` trained with ``loss``: ``"identity"`` for a regression
    (a standardised target takes any value); for classes, None: the loss's own default
    (softmax for cross-entropy, sigmoid otherwise, see :func:`jbpnn.params.init_params`),
    and for a loss of the user's own the first unit it is exact with (``exact_with``, its
    ``output_activations``)."""
    if task == "regression":
        return "identity"
    builtin = loss in _BUILTIN_TASK_LOSSES[task]
    return None if builtin or not exact_with else exact_with[0]


@dataclass(frozen=True)
class Scaling:
    """A fitted per-column scaling ``x' = (x - offset) / scale`` (see :mod:`jbpnn.data`).

    Attributes:
        kind: the rule that fitted it, a key of :data:`jbpnn.data.SCALERS`.
        offset: ``d`` finite numbers.
        scale: ``d`` finite numbers > 0.
    """

    kind: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in SCALERS:
            raise ValueError(f"unknown scaler kind {self.kind!r}; expected {sorted(SCALERS)}")
        offset = np.asarray(self.offset, np.float64)
        scale = np.asarray(self.scale, np.float64)
        if offset.ndim != 1 or offset.shape != scale.shape or offset.size == 0:
            raise ValueError(
                f"offset and scale must be two lists of one number per column, got "
                f"{len(self.offset)} and {len(self.scale)}"
            )
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("offset must be finite numbers and scale finite numbers > 0")
        object.__setattr__(self, "offset", tuple(offset.tolist()))
        object.__setattr__(self, "scale", tuple(scale.tolist()))

    @classmethod
    def fit(cls, kind: str, X: Any) -> Scaling:
        """Fit a ``kind`` scaler (``"minmax"``, ``"standardize"``) on ``X`` ``(n, d)``."""
        if kind not in SCALERS:
            raise ValueError(f"unknown scaler kind {kind!r}; expected one of {sorted(SCALERS)}")
        fitted = SCALERS[kind]().fit(X)
        assert fitted.offset_ is not None and fitted.scale_ is not None  # fit sets them
        return cls(kind, tuple(fitted.offset_), tuple(fitted.scale_))

    @property
    def n_columns(self) -> int:
        """``d``, the number of columns it scales."""
        return len(self.offset)

    def scaler(self) -> Any:
        """The fitted :mod:`jbpnn.data` scaler (``transform``, ``inverse_transform``)."""
        return SCALERS[self.kind](self.offset, self.scale)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"kind": ..., "offset": [d floats], "scale": [d floats]}``."""
        return {"kind": self.kind, "offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scaling:
        """Rebuild from :meth:`to_dict` (exact: JSON keeps every float64 digit)."""
        fitted = scaler_from_dict(d)
        # None (a JSON null) stays a TypeError here, as the callers expect
        return cls(fitted.kind, tuple(fitted.offset_), tuple(fitted.scale_))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Preprocessing:
    """How a table's columns become a network's inputs and targets, and back.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        scaler: the features' scaling, fitted on the training rows.
        feature_names: the ``d`` input columns' names (default ``col0, col1, ...``).
        target_name: the target column's name, or None.
        columns: every column of the training file in order, the target included;
            None when unknown (NPZ).
        classes: classification: the ``C`` labels, sorted; class ``c`` is
            ``classes[c]`` (network output ``c``). None for a regression.
        target_scaler: regression: the target's scaling (one column); None for
            classification.

    Raises:
        ValueError: a field that does not fit the others, naming it (e.g. a
            classification without ``classes``).
    """

    task: str
    scaler: Scaling
    feature_names: tuple[str, ...] | None = None
    target_name: str | None = None
    columns: tuple[str, ...] | None = None
    classes: tuple[Any, ...] | None = None
    target_scaler: Scaling | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise _bad(f"holds an unusable 'task' ({self.task!r}; expected {' or '.join(TASKS)})")
        if not isinstance(self.scaler, Scaling):
            raise _bad(f"holds an unusable 'scaler' (a Scaling, got {type(self.scaler).__name__})")
        d = self.scaler.n_columns
        names: Sequence[str] | None = self.feature_names
        if names is None:
            names = [f"col{j}" for j in range(d)]
        if not _is_list(names) or len(names) != d:
            raise _bad(f"holds an unusable 'feature_names' (not a list of {d} names)")
        object.__setattr__(self, "feature_names", tuple(str(n) for n in names))
        if self.target_name is not None and not isinstance(self.target_name, str):
            raise _bad(f"holds an unusable 'target_name' ({self.target_name!r}, not a name)")
        if self.columns is not None:
            if not _is_list(self.columns):
                raise _bad(f"holds an unusable 'columns' ({self.columns!r}, not a list)")
            object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))
        if self.task == "classification":
            self._check_classes()
        else:
            self._check_target_scaler()

    def _check_classes(self) -> None:
        if self.target_scaler is not None:
            raise _bad("holds a 'target_scaler', which a classification model has not")
        if self.classes is None:
            raise _bad("has no 'classes' (the class labels of a classification model)")
        try:
            classes = LabelEncoder(self.classes).classes_.tolist()  # type: ignore[union-attr]
        except (ValueError, TypeError) as e:
            raise _bad(f"holds an unusable 'classes' ({e})") from None
        if len(classes) < 2:
            raise _bad(f"holds an unusable 'classes' ({classes}: fewer than 2 classes)")
        object.__setattr__(self, "classes", tuple(classes))

    def _check_target_scaler(self) -> None:
        if self.classes is not None:
            raise _bad("holds 'classes', which a regression model has not")
        if self.target_scaler is None:
            raise _bad("has no 'target_scaler' (how a regression model's outputs are scaled)")
        if not isinstance(self.target_scaler, Scaling) or self.target_scaler.n_columns != 1:
            raise _bad("holds an unusable 'target_scaler' (a regression has one target column)")

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(
        cls,
        X: Any,
        y: Any,
        task: str,
        *,
        scale: str = "minmax",
        feature_names: Sequence[str] | None = None,
        target_name: str | None = None,
        columns: Sequence[str] | None = None,
        labels: Any = None,
    ) -> Preprocessing:
        """Fit on the training rows: the ``scale`` scaler on ``X``, the task's target coding.

        Args:
            X: training features, shape ``(n, d)``.
            y: training targets, shape ``(n,)``.
            task: ``"classification"`` or ``"regression"`` (see :func:`infer_task`).
            scale: a key of :data:`jbpnn.data.SCALERS`.
            feature_names, target_name, columns: the table's names (see the attributes);
                ``feature_names`` and ``columns`` are sequences of names, not one string.
            labels: classification: every label there is (e.g. the whole target
                column, so that a class absent from the training rows is still
                known), each label of ``y`` among them; default: those of ``y``.

        Raises:
            TypeError: ``feature_names`` or ``columns`` given as one string.
            ValueError: an unknown ``task``, a ``y`` of the wrong shape, ``labels`` that
                lack labels of ``y`` (naming them), a regression target that is not
                finite numbers.
        """
        if task not in TASKS:
            raise ValueError(f"task must be {TASKS[0]!r} or {TASKS[1]!r}, got {task!r}")
        for arg, names in (("feature_names", feature_names), ("columns", columns)):
            if isinstance(names, (str, bytes)):
                raise TypeError(
                    f"{arg} must be a sequence of names, got the single string {names!r} "
                    f"(for one name: [{names!r}])"
                )
        name = f"the target {target_name!r}" if target_name else "the target"
        n_rows, n_targets = len(np.asarray(X)), np.shape(y)
        if len(n_targets) != 1 or n_targets[0] != n_rows:
            raise ValueError(
                f"{name} must be one value per row of X, shape ({n_rows},); got shape {n_targets}"
            )
        classes = target_scaler = None
        if task == "classification":
            encoder = LabelEncoder().fit(y if labels is None else labels)
            assert encoder.classes_ is not None  # fit sets them
            classes = tuple(encoder.classes_.tolist())
            if labels is not None:
                seen = LabelEncoder().fit(y).classes_.tolist()  # type: ignore[union-attr]
                unknown = [v for v in seen if not _encodes(encoder, v)]
                if unknown:
                    raise ValueError(
                        f"labels must include every label of {name}; it lacks {unknown[:10]}"
                        f"{' ...' if len(unknown) > 10 else ''} (labels: {list(classes)})"
                    )
        else:
            if np.iscomplexobj(y):
                raise ValueError("the target has complex values; a regression needs real numbers")
            try:
                values = np.asarray(y, np.float64)
            except (TypeError, ValueError):
                first = next((v for v in np.asarray(y).ravel() if _not_number(v)), None)
                raise ValueError(
                    f"{name} holds text ({str(first)!r}); a regression needs numbers: use the "
                    "classification task for labels (jbpnn train --task classification)"
                ) from None
            _require_finite(values, f"{name} holds", "it must")
            target_scaler = Scaling.fit("standardize", values.reshape(-1, 1))
        return cls(
            task,
            Scaling.fit(scale, X),
            None if feature_names is None else tuple(feature_names),
            target_name,
            None if columns is None else tuple(columns),
            classes,
            target_scaler,
        )

    # ------------------------------------------------------------------ applying
    @property
    def n_features(self) -> int:
        """``d``, the network's inputs."""
        return self.scaler.n_columns

    @property
    def n_outputs(self) -> int:
        """The network's outputs: ``C`` classes, or 1 for a regression."""
        return 1 if self.classes is None else len(self.classes)

    def check_network(self, n_inputs: int, n_outputs: int) -> None:
        """Refuse a network of another shape than this record describes.

        Raises:
            ValueError: naming the field that does not fit.
        """
        if self.n_features != n_inputs:
            raise _bad(
                f"holds an unusable 'scaler' (it scales {self.n_features} features; the "
                f"network has {n_inputs} inputs)"
            )
        if self.n_outputs != n_outputs:
            field = "classes" if self.task == "classification" else "target_scaler"
            raise _bad(
                f"holds an unusable {field!r} ({self.n_outputs} output(s) for a network "
                f"of {n_outputs})"
            )

    def transform(self, X: Any) -> np.ndarray:
        """Features ``(n, d)`` -> the network's inputs ``(n, d)``, float32."""
        return self.scaler.scaler().transform(X)

    def class_indices(self, y: Any) -> np.ndarray:
        """Classification: labels ``(n,)`` -> class indices ``(n,)`` int64 (unknown: DataError)."""
        return LabelEncoder(self._classes()).transform(y)

    def targets(self, y: Any) -> np.ndarray:
        """Targets ``(n,)`` -> the network's targets ``(n, n_outputs)``, float32.

        Classification: one-hot rows; regression: the standardised value.
        """
        if self.target_scaler is None:
            return one_hot(self.class_indices(y), self.n_outputs)
        values = np.asarray(y, np.float64)
        if values.ndim != 1:
            raise ValueError(f"targets must have shape (n,), got shape {values.shape}")
        _require_finite(values, "targets hold", "they must")
        return self.target_scaler.scaler().transform(values.reshape(-1, 1))

    def decode(self, outputs: Any) -> np.ndarray:
        """The network's outputs ``(n, n_outputs)`` -> predictions ``(n,)``.

        Classification: the label of the largest output; regression: the value,
        unscaled (float64).
        """
        outputs = np.asarray(outputs)
        if self.target_scaler is None:
            return LabelEncoder(self._classes()).inverse_transform(np.argmax(outputs, axis=1))
        return self.target_scaler.scaler().inverse_transform(outputs)[:, 0]

    def _classes(self) -> tuple[Any, ...]:
        if self.classes is None:
            raise ValueError("a regression record has no classes")
        return self.classes

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (the layout in this module's docstring)."""
        d: dict[str, Any] = {
            "task": self.task,
            "feature_names": list(self.feature_names or ()),
            "target_name": self.target_name,
            "columns": None if self.columns is None else list(self.columns),
            "scaler": self.scaler.to_dict(),
        }
        if self.classes is not None:
            d["classes"] = {"kind": "label_encoder", "classes": list(self.classes)}
        if self.target_scaler is not None:
            d["target_scaler"] = self.target_scaler.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """Rebuild from :meth:`to_dict` (or a model's metadata: other keys are ignored).

        ``feature_names``, ``target_name`` and ``columns`` may be absent (models
        saved before they were recorded): ``col0, col1, ...``, None and None.

        Raises:
            ValueError: a missing or malformed field, naming it.
        """
        if not isinstance(d, Mapping):
            raise _bad(f"must be a dict, got {type(d).__name__}")
        for key, what in (("task", "classification or regression"), ("scaler", "its scaling")):
            if key not in d:
                raise _bad(f"has no {key!r} ({what})")
        return cls(
            task=d["task"],
            scaler=_field(d, "scaler", Scaling.from_dict),
            feature_names=d.get("feature_names"),
            target_name=d.get("target_name"),
            columns=d.get("columns"),
            classes=_field(d, "classes", _labels),
            target_scaler=_field(d, "target_scaler", Scaling.from_dict),
        )


def _bad(problem: str) -> ValueError:
    return ValueError(f"the preprocessing record {problem}")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _labels(d: Mapping[str, Any]) -> tuple[Any, ...]:
    """The labels of a saved label encoder, ``{"kind": "label_encoder", "classes": [...]}``."""
    # classes_ None (a JSON null) stays an AttributeError, which _field reports
    return tuple(LabelEncoder.from_dict(d).classes_.tolist())  # type: ignore[union-attr]


def _field(d: Mapping[str, Any], key: str, read: Any) -> Any:
    """``read(d[key])``, None when absent; a ValueError naming ``key`` when unusable."""
    if d.get(key) is None:
        return None
    try:
        return read(d[key])
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise _bad(f"holds an unusable {key!r} ({e})") from None


def _require_finite(values: np.ndarray, what: str, subject: str) -> None:
    """Refuse NaN or inf among a regression's target ``values``, naming the first row."""
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{what} {values[bad]} (row {bad}): {subject} be finite")


def _encodes(encoder: LabelEncoder, label: Any) -> bool:
    """Whether ``encoder`` knows ``label`` (as its ``transform`` matches labels)."""
    try:
        encoder.transform([label])
    except DataError:
        return False
    return True


def _missing(v: Any) -> bool:
    """A missing value: None, NaN, or pandas' ``NA`` / ``NaT``."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(v, (float, np.floating)) and bool(np.isnan(v))


def _not_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return True
    return False

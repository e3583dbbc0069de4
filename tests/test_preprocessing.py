"""The preprocessing record saved with a model: fitting, applying, to_dict/from_dict."""

from __future__ import annotations

import json

import numpy as np
import pytest

import jbpnn
from jbpnn.data import LabelEncoder, MinMaxScaler, Standardizer
from jbpnn.preprocessing import (
    TASK_LOSSES,
    Preprocessing,
    Scaling,
    infer_task,
    output_activation,
    task_loss,
)


def _classification(labels=("red", "green", "blue", "green", "red", "blue")):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(labels), 3)) * [1.0, 1e-300, 1e300]
    return Preprocessing.fit(
        X,
        np.array(labels),
        "classification",
        feature_names=["a", "b", "c"],
        target_name="colour",
        columns=["a", "b", "colour", "c"],
    )


def _regression(scale="standardize"):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 2)) / 3.0
    y = X @ [0.1, 0.2] + 1 / 3
    return Preprocessing.fit(X, y, "regression", scale=scale)


RECORDS = {
    "text classes": _classification,
    "integer classes": lambda: _classification((3, 1, 2, 1, 3, 2)),
    "whole floats as classes": lambda: _classification((3.0, 1.0, 2.0, 1.0, 3.0, 2.0)),
    "regression": _regression,
    "regression, minmax": lambda: _regression("minmax"),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_to_dict_from_dict_round_trips_exactly_through_json(name):
    prep = RECORDS[name]()
    d = prep.to_dict()
    text = json.dumps(d)  # JSON-able, as saved in a model's metadata
    again = Preprocessing.from_dict(json.loads(text))
    assert again == prep
    assert json.dumps(again.to_dict()) == text
    assert Preprocessing.from_dict(d) == prep


def test_to_dict_is_the_layout_jbpnn_train_always_saved():
    # the metadata keys and sub-dicts of models saved before Preprocessing existed
    d = _classification().to_dict()
    assert list(d) == ["task", "feature_names", "target_name", "columns", "scaler", "classes"]
    assert d["classes"] == {"kind": "label_encoder", "classes": ["blue", "green", "red"]}
    X = np.asarray(_classification_X())
    assert d["scaler"] == MinMaxScaler().fit(X).to_dict()
    r = _regression().to_dict()
    assert "classes" not in r and r["target_scaler"]["kind"] == "standardize"
    assert r["columns"] is None and r["feature_names"] == ["col0", "col1"]


def _classification_X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)) * [1.0, 1e-300, 1e300]


def test_from_dict_reads_a_model_metadata_and_older_records():
    meta = {
        **_classification().to_dict(),
        "source": "flowers.csv (90 x 3)",
        "test_accuracy": 0.9,
        "epochs_run": 3,
    }
    assert Preprocessing.from_dict(meta) == _classification()  # other keys: left alone
    for key in ("feature_names", "target_name", "columns"):  # not recorded by early versions
        del meta[key]
    old = Preprocessing.from_dict(meta)
    assert old.feature_names == ("col0", "col1", "col2")
    assert old.target_name is None and old.columns is None


def _without(key):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _with(key, value):
    return lambda d: {**d, key: value}


REFUSED = [
    ("task", _without("task"), "has no 'task'"),
    ("task", _with("task", "clustering"), "unusable 'task'"),
    ("scaler", _without("scaler"), "has no 'scaler'"),
    ("scaler", _with("scaler", {"kind": "robust", "offset": [0], "scale": [1]}), "'scaler'"),
    ("scaler", _with("scaler", {"kind": "minmax", "offset": [0, 1], "scale": [1]}), "'scaler'"),
    (
        "scaler",
        _with("scaler", {"kind": "minmax", "offset": [0] * 3, "scale": [0] * 3}),
        "'scaler'",
    ),
    ("scaler", _with("scaler", [0.0, 1.0]), "'scaler'"),
    ("feature_names", _with("feature_names", ["a", "b"]), "'feature_names'"),
    ("feature_names", _with("feature_names", "abc"), "'feature_names'"),
    ("target_name", _with("target_name", 3), "'target_name'"),
    ("columns", _with("columns", "a,b,c"), "'columns'"),
    ("classes", _without("classes"), "has no 'classes'"),
    ("classes", _with("classes", {"kind": "label_encoder", "classes": ["a"]}), "'classes'"),
    ("classes", _with("classes", {"kind": "label_encoder", "classes": ["a", "a"]}), "'classes'"),
    ("classes", _with("classes", ["a", "b"]), "'classes'"),
    ("target_scaler", _with("target_scaler", {"kind": "standardize"}), "'target_scaler'"),
]


@pytest.mark.parametrize(
    "field, change, message", REFUSED, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(REFUSED)]
)
def test_from_dict_refuses_a_malformed_record_naming_the_field(field, change, message):
    d = change(_classification().to_dict())
    with pytest.raises(ValueError, match="the preprocessing record") as info:
        Preprocessing.from_dict(d)
    assert message in str(info.value) and f"'{field}'" in str(info.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (_without("target_scaler"), "has no 'target_scaler'"),
        (
            _with("target_scaler", {"kind": "standardize", "offset": [0, 0], "scale": [1, 1]}),
            "unusable 'target_scaler'",
        ),
        (_with("classes", {"kind": "label_encoder", "classes": [0, 1]}), "'classes'"),
    ],
)
def test_from_dict_refuses_a_malformed_regression_record(change, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing.from_dict(change(_regression().to_dict()))


def test_from_dict_refuses_what_is_not_a_dict():
    with pytest.raises(ValueError, match="the preprocessing record must be a dict, got list"):
        Preprocessing.from_dict([("task", "regression")])


def test_check_network_names_the_field_that_does_not_fit():
    prep = _classification()
    prep.check_network(3, 3)
    with pytest.raises(ValueError, match="'scaler' .*3 features; the network has 4 inputs"):
        prep.check_network(4, 3)
    with pytest.raises(ValueError, match="'classes' .*3 output"):
        prep.check_network(3, 2)
    with pytest.raises(ValueError, match="'target_scaler'"):
        _regression().check_network(2, 2)


def test_apply_matches_the_scalers_and_decodes_back():
    X = _classification_X()
    labels = np.array(["red", "green", "blue", "green", "red", "blue"])
    prep = _classification()
    np.testing.assert_array_equal(prep.transform(X), MinMaxScaler().fit(X).transform(X))
    encoder = LabelEncoder().fit(labels)
    np.testing.assert_array_equal(prep.class_indices(labels), encoder.transform(labels))
    T = prep.targets(labels)
    assert T.shape == (6, 3) and T.dtype == np.float32
    assert prep.decode(T).tolist() == labels.tolist()

    reg = _regression()
    y = np.linspace(-2.0, 5.0, 7)
    Z = reg.targets(y)
    assert Z.shape == (7, 1)
    np.testing.assert_allclose(
        Z[:, 0], (y - reg.target_scaler.offset[0]) / reg.target_scaler.scale[0], rtol=1e-6
    )
    np.testing.assert_allclose(reg.decode(Z), y, rtol=1e-6, atol=1e-6)
    assert reg.n_outputs == 1 and prep.n_outputs == 3 and prep.n_features == 3


def test_classes_come_from_all_labels_when_given():
    X = np.zeros((4, 1))
    prep = Preprocessing.fit(X, ["a", "b", "a", "b"], "classification", labels=["a", "b", "c"])
    assert prep.classes == ("a", "b", "c") and prep.n_outputs == 3


def test_scaling_is_checked_and_rebuilds_the_data_scaler():
    s = Scaling.fit("standardize", np.array([[1.0, 2.0], [3.0, 2.0]]))
    assert s == Scaling("standardize", (2.0, 2.0), (1.0, 1.0))  # zero spread: scale 1
    assert isinstance(s.scaler(), Standardizer)
    with pytest.raises(ValueError, match="unknown scaler kind 'robust'"):
        Scaling.fit("robust", np.zeros((2, 1)))
    with pytest.raises(ValueError, match="scale finite numbers > 0"):
        Scaling("minmax", (0.0,), (-1.0,))


@pytest.mark.parametrize(
    "y, task",
    [
        (np.array(["cat", "dog"]), "classification"),
        (np.array([0, 1, 2, 1]), "classification"),
        (np.array([1.0, 2.0, 1.0]), "classification"),
        (np.arange(20.0), "classification"),
        (np.arange(21.0), "regression"),  # more than MAX_CLASSES values
        (np.array([0.5, 1.0, 1.5]), "regression"),
    ],
)
def test_infer_task(y, task):
    assert infer_task(y) == task
    other = "regression" if task == "classification" else "classification"
    assert infer_task(y, other) == other  # an explicit task wins
    with pytest.raises(ValueError, match="task must be 'auto'"):
        infer_task(y, "clusters")


def test_task_loss_and_output_activation():
    assert task_loss("classification") == "cross_entropy"
    assert task_loss("regression") == "mse"
    for task, losses in TASK_LOSSES.items():
        for loss in losses:
            assert task_loss(task, loss) == loss
    with pytest.raises(ValueError, match="cross_entropy cannot train a regression target; .*mse"):
        task_loss("regression", "cross_entropy")
    assert output_activation("regression", "mse") == "identity"
    assert output_activation("classification", "cross_entropy") is None


def test_exported_from_jbpnn():
    assert jbpnn.Preprocessing is Preprocessing and jbpnn.infer_task is infer_task
    assert {"Preprocessing", "infer_task"} <= set(jbpnn.__all__)
    assert "jbpnn.preprocessing" in jbpnn.__doc__


def test_fit_checks_the_target_shape_and_names_it():
    """A (5, 2) target was flattened into one scaler; 7 targets for 5 rows passed; a NaN
    regression target was blamed on 'X'."""
    X = np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match=r"per row of X, shape \(5,\); got shape \(5, 2\)"):
        Preprocessing.fit(X, np.arange(10.0).reshape(5, 2), "regression")
    for task in ("regression", "classification"):
        with pytest.raises(ValueError, match=r"shape \(5,\); got shape \(7,\)"):
            Preprocessing.fit(X, np.arange(7), task)
    with pytest.raises(ValueError, match="the target 'price' holds nan \\(row 2\\)"):
        Preprocessing.fit(X, np.array([1.0, 2, np.nan, 3, 4]), "regression", target_name="price")
    fitted = Preprocessing.fit(X, np.arange(5.0), "regression")
    with pytest.raises(ValueError, match="targets hold inf \\(row 1\\)"):
        fitted.targets([1.0, np.inf])


@pytest.mark.parametrize(
    "y, error, message",
    [
        (None, TypeError, "y must be the target column.*got None"),
        (5, ValueError, r"shape \(n,\); got shape \(\)"),
        (np.array([]), ValueError, "y is empty"),
        (np.array([1 + 2j, 2]), ValueError, "complex values"),
        (np.array(["2020-01-01"], "datetime64[D]"), ValueError, "datetime64.*convert them"),
        (np.array([1.0, np.nan, 2.0, np.nan]), ValueError, "has 2 missing value"),
        (np.array(["a", None, "b"], dtype=object), ValueError, "has 1 missing value"),
        (np.array([1.0, np.inf]), ValueError, "1 infinite value"),
    ],
)
def test_infer_task_refuses_what_is_not_a_target(y, error, message):
    # each of these was "classification" ("regression" for NaN; a raw 'rint' TypeError for dates)
    with pytest.raises(error, match=message):
        infer_task(y)


def test_infer_task_counts_the_missing_values_of_a_pandas_column():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match="has 1 missing value"):
        infer_task(pd.Series([1, None, 2], dtype="Int64"))  # was "regression"
    with pytest.raises(ValueError, match="has 1 missing value"):
        infer_task(pd.Series(["a", None, "b"], dtype="string"))  # NA was a class
    assert infer_task(pd.Series([1, 2, 1], dtype="Int64")) == "classification"
    assert infer_task(np.array([1.5, 2.7, 0.1], dtype=object)) == "regression"  # numbers


def test_fit_refuses_one_string_for_a_list_of_names():
    # feature_names="ab" became ('a', 'b'); columns="abc" was split into characters
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(TypeError, match="feature_names must be a sequence of names.*'ab'"):
        Preprocessing.fit(X, [0, 1, 0, 1], "classification", feature_names="ab")
    with pytest.raises(TypeError, match="columns must be a sequence of names.*'abc'"):
        Preprocessing.fit(X, [0, 1, 0, 1], "classification", columns="abc")


def test_fit_refuses_labels_that_lack_a_label_of_y():
    # labels=[0, 2] with a 1 in y: accepted, and targets() failed later ("unknown labels")
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=r"every label of the target; it lacks \[1\]"):
        Preprocessing.fit(X, [0, 1, 2, 1], "classification", labels=[0, 2])
    p = Preprocessing.fit(X, ["a", "b", "a", "b"], "classification", labels=["a", "b", "c"])
    assert p.classes == ("a", "b", "c")

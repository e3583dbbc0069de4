"""Bundled digits, CSV/NPZ loading and its error messages, split, scalers, labels."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from jbpnn.data import (
    DataError,
    LabelEncoder,
    MinMaxScaler,
    Standardizer,
    check_classes,
    load_csv,
    load_digits,
    load_features,
    load_npz,
    load_table,
    one_hot,
    scaler_from_dict,
    train_test_split,
)

# sklearn.datasets.load_digits(): np.bincount(y)
SKLEARN_DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------ digits
def test_digits_shape_range_counts():
    d = load_digits()
    assert d.X.shape == (1797, 64) and d.X.dtype == np.float32
    assert d.y.shape == (1797,) and d.y.dtype.kind == "i"
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    assert np.bincount(d.y).tolist() == SKLEARN_DIGITS_COUNTS
    assert d.target_names.tolist() == list(range(10))
    assert "Alpaydin" in d.description and "10.24432/C50P49" in d.description


def test_digits_unscaled_are_counts_and_deterministic():
    raw, scaled = load_digits(scale=False), load_digits()
    assert raw.X.max() == 16.0
    assert np.array_equal(raw.X, np.round(raw.X))  # integer pixel counts
    np.testing.assert_array_equal(raw.X / 16, scaled.X)
    np.testing.assert_array_equal(load_digits().X, scaled.X)
    # first image of sklearn's copy is a 0; its top row is 0 0 5 13 9 1 0 0
    assert scaled.y[0] == 0 and raw.X[0, :8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    scaled.X[0, 0] = 99.0  # callers get copies: the cache stays clean
    assert load_digits().X[0, 0] == 0.0


# ------------------------------------------------------------------ split
def test_split_stratified_disjoint_deterministic():
    d = load_digits()
    ids = np.arange(len(d.y))
    a = train_test_split(ids, d.y, test_fraction=0.2, seed=3)
    id_train, id_test, y_train, y_test = a
    assert len(id_test) == round(0.2 * 1797) and len(id_train) + len(id_test) == 1797
    assert not set(id_train) & set(id_test)
    np.testing.assert_array_equal(d.y[id_train], y_train)
    np.testing.assert_array_equal(d.y[id_test], y_test)
    # stratified: each class's test share is within one row of 20%
    counts = np.array(SKLEARN_DIGITS_COUNTS)
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.2 * counts) < 1.0)
    b = train_test_split(ids, d.y, test_fraction=0.2, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = train_test_split(ids, d.y, test_fraction=0.2, seed=4)
    assert not np.array_equal(a[1], c[1])


def test_split_string_labels_and_regression():
    y = np.array(["cat"] * 90 + ["dog"] * 10)
    _, _, _, y_test = train_test_split(np.zeros((100, 2)), y, test_fraction=0.3)
    assert sorted(y_test.tolist()) == ["cat"] * 27 + ["dog"] * 3
    X = np.arange(10.0)[:, None]
    X_train, X_test, y_train, y_test = train_test_split(X, X[:, 0] * 2, test_fraction=0.5)
    assert len(X_test) == 5 and np.array_equal(y_test, X_test[:, 0] * 2)
    assert sorted(np.concatenate([X_train, X_test])[:, 0]) == list(range(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(test_fraction=0.0), "test_fraction"),
        (dict(test_fraction=1.0), "test_fraction"),
    ],
)
def test_split_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.zeros((4, 1)), np.arange(4), **kwargs)
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        train_test_split(np.zeros((4, 1)), np.arange(3))


# ------------------------------------------------------------------ one_hot, classes
def test_one_hot():
    T = one_hot(np.array([2, 0, 1]), 3)
    assert T.dtype == np.float32
    np.testing.assert_array_equal(T, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"0\.\.2, got 3"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="LabelEncoder"):
        one_hot(np.array([0.5]), 3)


def test_check_classes():
    assert check_classes(np.array(["a", "b", "a"])) == 2
    with pytest.raises(DataError, match=r"column 'label' of x.csv has a single class 'a' \(3 rows"):
        check_classes(np.array(["a", "a", "a"]), "column 'label' of x.csv")


# ------------------------------------------------------------------ scalers
@pytest.mark.parametrize("cls", [Standardizer, MinMaxScaler])
def test_scaler_round_trip_via_json(cls):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 5.0, size=(50, 4))
    X[:, 2] = 7.0  # zero variance column
    s = cls().fit(X)
    Z = s.transform(X)
    assert Z.dtype == np.float32 and np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z[:, 2], 0.0)
    if cls is Standardizer:
        np.testing.assert_allclose(Z[:, [0, 1, 3]].mean(0), 0.0, atol=1e-6)
        np.testing.assert_allclose(Z[:, [0, 1, 3]].std(0), 1.0, atol=1e-6)
    else:
        assert Z.min() == 0.0 and Z[:, [0, 1, 3]].max(0).tolist() == [1.0, 1.0, 1.0]
    t = scaler_from_dict(json.loads(json.dumps(s.to_dict())))
    assert type(t) is cls
    np.testing.assert_array_equal(t.transform(X, dtype=np.float64), s.transform(X, np.float64))
    np.testing.assert_allclose(t.inverse_transform(t.transform(X, np.float64)), X, rtol=1e-12)
    with pytest.raises(ValueError, match="3 columns, expected 4"):
        t.transform(X[:, :3])


def test_scaler_errors():
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        MinMaxScaler().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="unknown scaler kind 'robust'"):
        scaler_from_dict({"kind": "robust"})
    with pytest.raises(ValueError, match="kind='standardize'"):
        Standardizer.from_dict(MinMaxScaler().fit(np.eye(2)).to_dict())


# ------------------------------------------------------------------ labels
def test_label_encoder_strings_round_trip():
    y = np.array(["dog", "cat", "bird", "cat"])
    enc = LabelEncoder().fit(y)
    idx = enc.transform(y)
    assert enc.classes_.tolist() == ["bird", "cat", "dog"] and idx.tolist() == [2, 1, 0, 1]
    back = LabelEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert back.inverse_transform(idx).tolist() == y.tolist()
    assert back.n_classes == 3
    with pytest.raises(DataError, match=r"unknown labels \['fish'\].*\['bird', 'cat', 'dog'\]"):
        back.transform(["cat", "fish"])


def test_label_encoder_numeric_labels_print_as_integers():
    enc = LabelEncoder().fit(np.array([3.0, 1.0, 3.0]))  # a numeric CSV target loads as float
    assert enc.classes_.tolist() == [1, 3] and enc.classes_.dtype.kind == "i"
    restored = LabelEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert restored.inverse_transform([1, 0]).tolist() == [3, 1]
    assert restored.transform(np.array(["3", "1"])).tolist() == [1, 0]  # text "3" still matches


# ------------------------------------------------------------------ CSV: good files
def test_csv_with_header_and_categorical_target(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,cat\n3.5, 4 ,dog\n\n5,-6e1,cat\n")
    t = load_csv(path)
    assert t.feature_names == ["a", "b"] and t.target_name == "label"
    np.testing.assert_array_equal(t.X, [[1, 2], [3.5, 4], [5, -60]])
    assert t.X.dtype == np.float64
    assert t.y.tolist() == ["cat", "dog", "cat"] and t.y.dtype.kind == "U"


def test_csv_header_detection_both_ways(tmp_path):
    headed = load_csv(write(tmp_path, "x,y\n1,0\n2,1\n", "h.csv"))
    assert headed.X.shape == (2, 1) and headed.feature_names == ["x"]
    plain = load_csv(write(tmp_path, "1,0\n2,1\n3,1\n", "p.csv"))
    assert plain.X.shape == (3, 1) and plain.feature_names == ["col0"]
    assert plain.target_name == "col1" and plain.y.tolist() == [0.0, 1.0, 1.0]
    # text labels in every row and no header: all rows are data
    text = load_csv(write(tmp_path, "1,2,cat\n3,4,dog\n", "t.csv"))
    assert text.X.shape == (2, 2) and text.y.tolist() == ["cat", "dog"]
    forced = load_csv(write(tmp_path, "1,2\n3,4\n5,6\n", "f.csv"), header=True)
    assert forced.feature_names == ["1"] and forced.X.shape == (2, 1)


def test_csv_target_by_name_index_and_features_only(tmp_path):
    path = write(tmp_path, "label,a,b\nx,1,2\ny,3,4\n")
    by_name = load_csv(path, target="label")
    by_index, by_digits = load_csv(path, target=0), load_csv(path, target="0")
    for t in (by_name, by_index, by_digits):
        assert t.feature_names == ["a", "b"] and t.y.tolist() == ["x", "y"]
    last = load_csv(write(tmp_path, "a,b,c\n1,2,3\n4,5,6\n", "n.csv"), target=-2)
    assert last.target_name == "b" and last.y.tolist() == [2.0, 5.0]
    assert last.X.tolist() == [[1.0, 3.0], [4.0, 6.0]]
    feats = load_csv(write(tmp_path, "a,b\n1,2\n", "f.csv"), has_target=False)
    assert feats.y is None and feats.X.tolist() == [[1.0, 2.0]]


def test_tsv_and_npz_via_load_table(tmp_path):
    t = load_table(write(tmp_path, "a\tb\n1\t2\n3\t4\n", "d.tsv"))
    assert t.X.tolist() == [[1.0], [3.0]] and t.y.tolist() == [2.0, 4.0]
    np.savez(tmp_path / "d.npz", X=np.arange(6).reshape(3, 2), y=np.array(["a", "b", "a"]))
    n = load_table(tmp_path / "d.npz")
    assert n.X.dtype == np.float64 and n.X.shape == (3, 2) and n.y.tolist() == ["a", "b", "a"]
    assert n.feature_names == ["col0", "col1"] and n.target_name == "y"


# ------------------------------------------------------------------ CSV: bad files
def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.csv"
    for load in (load_csv, load_table, load_npz):
        with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
            load(path)


BAD_CSV = [
    ("", r"empty\.csv is empty"),
    ("\n  \n", r"empty\.csv is empty"),
    ("a,b,label\n", r"has a header \(line 1\) but no data rows"),
    ("a,b,c\n1,2,3\n4,5\n6,7,8\n", r"line 3: has 2 fields, expected 3 \(as in the header, line 1"),
    ("1,2,3\n4,5,6,7\n", r"line 2: has 4 fields, expected 3 \(as in the first row, line 1\)"),
    ("a,b,y\n1,2,0\n3,abc,1\n", r"line 3, column 'b': 'abc' is not a number"),
    ("a,b,y\n1,2,0\n3,,1\n", r"line 3, column 'b': empty cell \(missing value\)"),
    ("a,b,y\n1,nan,0\n3,4,1\n", r"line 2, column 'b': 'nan' is not a finite number"),
    ("a,b,y\n1,2,0\n3,4,\n", r"line 3, target column 'y': empty cell"),
]


@pytest.mark.parametrize("text, match", BAD_CSV)
def test_bad_csv_messages(tmp_path, text, match):
    path = write(tmp_path, text, "empty.csv")
    with pytest.raises(DataError, match=match) as info:
        load_csv(path)
    assert str(path) in str(info.value)  # every message names the file
    assert isinstance(info.value, ValueError)


def test_missing_target_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,x\n")
    msg = r"no target column named 'klass'; the columns are 'a', 'b', 'label'"
    with pytest.raises(DataError, match=msg):
        load_csv(path, target="klass")
    with pytest.raises(DataError, match="index 5 is out of range for 3 columns"):
        load_csv(path, target=5)
    nohead = write(tmp_path, "1,2\n3,4\n", "n.csv")
    with pytest.raises(DataError, match="no header row: give the column index"):
        load_csv(nohead, target="label")


def test_single_class_from_csv(tmp_path):
    t = load_csv(write(tmp_path, "a,label\n1,cat\n2,cat\n"))
    with pytest.raises(DataError, match="single class 'cat' \\(2 rows\\)"):
        check_classes(t.y, f"column {t.target_name!r}")


def test_unknown_suffix(tmp_path):
    path = write(tmp_path, "a,b\n", "data.xlsx")
    msg = r"data\.xlsx: unsupported file type '\.xlsx'; expected one of \.csv, \.npz, \.tsv"
    with pytest.raises(DataError, match=msg):
        load_table(path)


# ------------------------------------------------------------------ NPZ
def test_npz_missing_key_lists_contents(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((2, 2)), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"no array named 'X', 'y'; the file holds \['features'"):
        load_npz(path)
    t = load_npz(path, target="labels", features="features")
    assert t.X.shape == (2, 2) and t.y.tolist() == [0, 1] and t.target_name == "labels"


def test_npz_bad_contents(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[1.0, np.nan]]), y=np.array([0]))
    with pytest.raises(DataError, match="'X' has NaN/inf, first at row 0, column 1"):
        load_npz(path)
    np.savez(path, X=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"'y' must have shape \(3,\)"):
        load_npz(path)
    not_zip = write(tmp_path, "hello", "fake.npz")
    with pytest.raises(DataError, match="fake.npz: not a readable .npz archive"):
        load_npz(not_zip)


# ------------------------------------------------------------------ CSV: read what is there
def _labelled(header: str, n: int = 6) -> str:
    rows = [f"{i}.5,{i},{-i},{'cat' if i % 2 else 'dog'}" for i in range(n)]
    return header + "\n" + "\n".join(rows) + "\n"


def test_numeric_looking_header_over_text_labels_is_a_header(tmp_path):
    t = load_csv(write(tmp_path, _labelled("1,2,3,label")))
    assert t.feature_names == ["1", "2", "3"] and t.target_name == "label"
    assert t.X.shape == (6, 3) and sorted(set(t.y.tolist())) == ["cat", "dog"]
    assert t.columns == ["1", "2", "3", "label"]
    # the same rows without the header: all data, and a first label that repeats is data
    plain = load_csv(write(tmp_path, _labelled("").lstrip("\n"), "plain.csv"))
    assert plain.X.shape == (6, 3) and plain.feature_names == ["col0", "col1", "col2"]


@pytest.mark.parametrize("cell", ["2023_01_05", "1_000", "\u0661\u0662", "0x10", "1e5e"])
def test_cells_float_accepts_are_not_numbers(tmp_path, cell):
    path = write(tmp_path, f"a,b,y\n1,{cell},0\n2,3,1\n")
    with pytest.raises(DataError, match=rf"line 2, column 'b': '{cell}' is not a number"):
        load_csv(path)


def test_underscore_and_decimal_comma_hints(tmp_path):
    with pytest.raises(DataError, match="underscores are not read as digit separators"):
        load_csv(write(tmp_path, "a,y\n2023_01_05,0\n1,1\n"))
    with pytest.raises(DataError, match="a decimal comma"):
        load_csv(write(tmp_path, "a;b;y\n1,5;2;x\n2,5;3;y\n"))


@pytest.mark.parametrize("marker", ["NaN", "nan", "NA", "N/A", "NULL", "None"])
def test_missing_label_is_refused_not_a_class(tmp_path, marker):
    path = write(tmp_path, f"a,label\n1,cat\n2,{marker}\n3,dog\n4,cat\n")
    with pytest.raises(DataError, match=rf"line 3, target column 'label': '{marker}' is a missing"):
        load_csv(path)
    with pytest.raises(DataError, match="not a finite number .a missing value."):
        load_csv(write(tmp_path, f"a,b,y\n1,{marker},0\n3,4,1\n", "f.csv"))


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_delimiter_is_detected(tmp_path, sep):
    text = "a,b,label\n1,2.5,x\n3,4,y\n5,6,x\n".replace(",", sep)
    t = load_table(write(tmp_path, text, "d.csv"))
    assert t.feature_names == ["a", "b"] and t.X.tolist() == [[1, 2.5], [3, 4], [5, 6]]
    assert t.y.tolist() == ["x", "y", "x"]


def test_wrong_delimiter_names_the_likely_cause(tmp_path):
    path = write(tmp_path, "a;b;label\n1;2;x\n3;4;y\n")
    with pytest.raises(
        DataError, match=r"single column.*delimited by ';'\? \(pass delimiter=';'\)"
    ):
        load_csv(path, delimiter=",")


# ------------------------------------------------------------------ scalers at float64's edges
@pytest.mark.parametrize("cls", [Standardizer, MinMaxScaler])
def test_scalers_fit_huge_values_without_overflow(cls):
    y = np.array([[1e300], [2e300], [-1e300], [1.5e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        s = cls().fit(y)
        z = s.transform(y)
    assert np.all(np.isfinite(s.offset_)) and np.all(np.isfinite(s.scale_))
    assert np.all(np.isfinite(z)) and np.abs(z).max() < 3
    np.testing.assert_allclose(s.inverse_transform(z), y, rtol=1e-6)


def test_scaler_range_wider_than_float64_and_far_values_are_refused():
    with pytest.raises(ValueError, match="column 0 spans from -1.7e.308 to 1.7e.308"):
        MinMaxScaler().fit(np.array([[-1.7e308], [1.7e308]]))
    s = Standardizer().fit(np.array([[0.0], [1.0]]))
    with pytest.raises(ValueError, match="overflows float32"):
        s.transform(np.array([[1e300]]))


# ------------------------------------------------------------------ a model's features by name
def test_load_features_matches_columns_by_name(tmp_path):
    path = write(tmp_path, "c,label,a,b\n3,x,1,2\n6,y,4,5\n")
    t = load_features(path, ["a", "b", "c"], "label")
    assert t.X.tolist() == [[1, 2, 3], [4, 5, 6]] and t.y is None
    with pytest.raises(DataError, match=r"lacks the model's feature column\(s\) \['d'\]"):
        load_features(path, ["a", "b", "c", "d"], "label")
    with pytest.raises(DataError, match=r"does not know its column\(s\) \['c'\]"):
        load_features(path, ["a", "b"], "label")
    numeric = write(tmp_path, "3,1,2\n30,10,20\n", "n.csv")  # a header of the model's names
    assert load_features(numeric, ["1", "2", "3"]).X.tolist() == [[10, 20, 30]]


def test_load_features_without_a_header_checks_the_count(tmp_path):
    path = write(tmp_path, "1,2\n3,4\n", "n.csv")
    assert load_features(path, ["a", "b"], "y").X.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(DataError, match="has 2 columns .* the model needs 3 features, or 4"):
        load_features(path, ["a", "b", "c"], "y")
    # one more column: the target, at its place in the training file
    assert load_features(path, ["a"], "y", columns=["y", "a"]).X.tolist() == [[2], [4]]
    assert load_features(path, ["col1"], "col0").X.tolist() == [[2], [4]]
    assert load_features(path, ["a"], "y").X.tolist() == [[1], [3]]  # else the last
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.array([[1.0, 2.0]]), feature_names=np.array(["b", "a"]))
    assert load_features(npz, ["a", "b"]).X.tolist() == [[2, 1]]

"""Bundled digits, split, one-hot and classes, scalers, labels (the readers: test_loaders)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from jbpnn import data, loaders
from jbpnn.data import (
    DataError,
    LabelEncoder,
    MinMaxScaler,
    Standardizer,
    check_classes,
    load_digits,
    one_hot,
    scaler_from_dict,
    train_test_split,
)
from jbpnn.loaders import load_csv

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


def test_single_class_from_csv(tmp_path):
    t = load_csv(write(tmp_path, "a,label\n1,cat\n2,cat\n"))
    with pytest.raises(DataError, match="single class 'cat' \\(2 rows\\)"):
        check_classes(t.y, f"column {t.target_name!r}")


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


# ------------------------------------------------------------------ the readers, re-exported
def test_data_re_exports_the_readers():
    # The README names these as jbpnn.data's (and its label checks raise DataError too);
    # they live in jbpnn.loaders.
    for name in ("DataError", "load_csv", "load_npz"):
        assert name in data.__all__ and getattr(data, name) is getattr(loaders, name)
    assert all(hasattr(data, name) for name in data.__all__)


# ---------------------------------------------------------------- red-team findings
@pytest.mark.parametrize("value", [0.1, 1e6 + 0.1, np.pi])
def test_a_constant_column_scales_to_exactly_zero(value):
    """A mean of ten 0.1s is not 0.1: the spread came out 1.4e-17, the column mapped to
    +-1 and a new 0.2 there to 7e15; the docstring promises 0."""
    X = np.full((10, 2), value)
    X[:, 1] = np.arange(10)
    for scaler in (Standardizer(), MinMaxScaler()):
        scaler.fit(X)
        assert scaler.scale_[0] == 1.0 and np.all(scaler.transform(X)[:, 0] == 0)
        assert abs(scaler.transform(np.array([[value + 0.1, 3.0]]))[0, 0] - 0.1) < 1e-6


@pytest.mark.parametrize(
    "offset, scale, match",
    [
        ([0.0, 0.0], [-1.0, 1.0], "scale finite and > 0"),
        ([0.0, 0.0], [0.0, 1.0], "scale finite and > 0"),
        ([np.nan, 0.0], [1.0, 1.0], "offset must be finite"),
        ([0.0, 0.0], [1.0], "same length"),
        ([[0.0, 0.0]], [[1.0, 1.0]], "same length"),
        (["a"], [1.0], "lists of numbers"),
    ],
)
def test_a_scaler_dict_is_checked(offset, scale, match):
    """A negative scale flipped a column's sign silently, lengths broadcast."""
    for kind in ("standardize", "minmax"):
        with pytest.raises(ValueError, match=match):
            scaler_from_dict({"kind": kind, "offset": offset, "scale": scale})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_labels_are_refused(bad):
    """fit made NaN a class that transform then called unknown."""
    with pytest.raises(ValueError, match=f"labels must be finite, got {bad} at index 1"):
        LabelEncoder().fit([1.0, bad, 2.0])


def test_mixed_text_and_number_labels_are_refused():
    with pytest.raises(ValueError, match="labels mix text with"):
        LabelEncoder().fit(np.array([1, "a", 2], dtype=object))
    with pytest.raises(ValueError, match="labels mix text with"):
        train_test_split(np.zeros((4, 1)), np.array([1, "a", 2, "a"], dtype=object))


def test_a_stratified_split_refuses_a_class_of_one_row():
    """Class 3 landed in the test part only, absent from training (scikit-learn refuses)."""
    y = np.array([0] * 10 + [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="class 1 has a single row"):
        train_test_split(np.arange(15)[:, None], y, 0.2)
    _, _, y_tr, _ = train_test_split(np.arange(15)[:, None], y, 0.2, stratify=False)
    assert len(y_tr) == 12


def test_one_hot_inside_jit_says_what_to_use_there():
    """one_hot reads its labels on the host: traced, it raised JAX's raw
    TracerArrayConversionError."""
    import jax
    import jax.numpy as jnp

    with pytest.raises(ValueError, match=r"use jax.nn.one_hot\(labels, n_classes\) there"):
        jax.jit(lambda y: data.one_hot(y, 3))(jnp.array([0, 1, 2]))
    assert data.one_hot(jnp.array([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]


def test_one_hot_refuses_a_class_count_that_is_not_an_int():
    # 2.0: a raw np.eye TypeError; True: one class
    labels = np.array([0, 1, 1])
    for bad in (2.0, True, "2", None):
        with pytest.raises(ValueError, match=f"n_classes must be an integer >= 1, got {bad!r}"):
            one_hot(labels, bad)
    np.testing.assert_array_equal(one_hot(labels, np.int64(2)), [[1, 0], [0, 1], [0, 1]])


def test_one_hot_of_many_classes_checks_the_memory_first():
    # 10**6 classes: np.eye(C) of C x C floats, a raw MemoryError however few the labels
    T = one_hot(np.array([0, 999_999, 5]), 10**6)
    assert T.shape == (3, 10**6) and T.sum() == 3 and T[1, 999_999] == 1
    from jbpnn.memory import ArrayTooLarge

    with pytest.raises(ArrayTooLarge, match=r"one_hot's targets .* shape \(100000, 100000000\)"):
        one_hot(np.zeros(100_000, np.int64), 10**8)  # 36 TiB


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(test_fraction="0.2"), TypeError, "test_fraction must be a number in .* str '0.2'"),
        (dict(test_fraction=None), TypeError, "test_fraction must be a number .* None"),
        (dict(test_fraction=0.2j), TypeError, "test_fraction must be a number .* complex"),
        (dict(test_fraction=True), TypeError, "test_fraction must be a number .* bool"),
        (dict(test_fraction=np.array([0.2])), TypeError, r"one number .* shape \(1,\)"),
        (dict(seed=-1), ValueError, r"seed: a seed must lie in 0 \.\. 2\*\*32 - 1, got -1"),
        (dict(seed=1.5), TypeError, "seed must be an int seed, got float 1.5"),
        (dict(seed="0"), TypeError, "seed must be an int seed, got str '0'"),
        (dict(seed=True), TypeError, "seed must be an int seed, got bool True"),
        (dict(stratify="no"), TypeError, "stratify must be True or False, got 'no'"),
        (dict(X=None), ValueError, "X must be an array of rows .* got NoneType None"),
    ],
)
def test_split_refuses_arguments_of_the_wrong_kind(kwargs, error, match):
    # raw errors from '<', round(), NumPy's SeedSequence and len(); seed=True and
    # stratify="no" were taken as 1 and True
    args = dict(X=np.zeros((10, 1)), y=np.arange(10) % 2) | kwargs
    with pytest.raises(error, match=match):
        train_test_split(**args)


def test_split_takes_numpy_scalars_and_0d_arrays():
    X, y = np.arange(10.0)[:, None], np.arange(10) % 2
    want = train_test_split(X, y, 0.2, seed=3)
    for fraction, seed in ((np.float32(0.2), np.int64(3)), (np.array(0.2), np.uint32(3))):
        for a, b in zip(train_test_split(X, y, fraction, seed=seed), want):
            np.testing.assert_array_equal(a, b)

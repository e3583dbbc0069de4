"""The readers: CSV / TSV / NPZ loading, header and delimiter detection, a model's
features by column name, and error messages that name the file and the line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from jbpnn.loaders import DataError, load_csv, load_features, load_npz, load_table


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


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


def test_numeric_looking_header_over_text_labels_is_refused_unless_said(tmp_path):
    """``1,2,3,label`` over rows of numbers and cat/dog reads as a header (a name found
    nowhere below among the labels) and as data (numbers in every number column, a class
    of one row): not guessed either way."""
    with pytest.raises(
        DataError, match=r"cannot tell whether the first row \(line 1: 1,2,3,label\).*--no-header"
    ):
        load_csv(write(tmp_path, _labelled("1,2,3,label")))
    t = load_csv(write(tmp_path, _labelled("1,2,3,label")), header=True)
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
        DataError,
        match=r"single column.*delimited by ';'\? Say so: delimiter=';' in Python, "
        r"--delimiter ';' to jbpnn train",
    ):
        load_csv(path, delimiter=",")
    tsv = write(tmp_path, "a,b,label\n1,2,x\n3,4,y\n", "d.tsv")  # read with a tab
    with pytest.raises(DataError, match=r"delimited by ','\? Say so: delimiter=',' in Python"):
        load_table(tsv)
    assert load_table(tsv, delimiter=",").X.tolist() == [[1, 2], [3, 4]]


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
    assert load_features(numeric, ["1", "2", "3"], header=True).X.tolist() == [[10, 20, 30]]
    with pytest.raises(DataError, match="reads both as the model's column names"):
        load_features(numeric, ["1", "2", "3"])  # or a row of data: not guessed


def test_features_for_a_model_without_names_keep_every_row(tmp_path):
    """A model trained from a file without a header (names col0, col1, ...): its data's
    first row ``1.3, 0.9, -0.7, cat`` (a label found nowhere below) was taken for a header
    and not predicted; only a first row of names is one."""
    path = write(tmp_path, "1.3,0.9,-0.7,cat\n0.1,-0.1,0.6,dog\n0.2,-0.5,0.4,dog\n", "p.csv")
    names = ["col0", "col1", "col2"]
    assert load_features(path, names, "col3").X.shape == (3, 3)
    named = write(tmp_path, "a,b,c,label\n1.3,0.9,-0.7,cat\n0.1,-0.1,0.6,dog\n", "h.csv")
    assert load_features(named, names, "col3").X.shape == (2, 3)


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


def test_repeated_column_names_and_complex_targets_are_refused(tmp_path):
    """A header a,a,y trained, and predict then refused the same file; a complex NPZ
    target was cast to its real part (with a ComplexWarning on stderr)."""
    path = write(tmp_path, "a,a,y\n1,2,3\n4,5,6\n", "dup.csv")
    with pytest.raises(DataError, match=r"columns \['a'\] appear more than once"):
        load_csv(path)
    npz = tmp_path / "c.npz"
    np.savez(npz, X=np.ones((3, 2)), y=np.arange(3) + 1j)
    with pytest.raises(DataError, match="'y' has complex values"):
        load_npz(npz)


def test_a_regression_on_text_labels_names_the_target():
    from jbpnn.preprocessing import Preprocessing

    with pytest.raises(ValueError, match=r"the target 'species' holds text \('dog'\)"):
        Preprocessing.fit(np.ones((3, 2)), np.array(["1.5", "dog", "cat"]), task="regression",
                          target_name="species")  # fmt: skip


def test_a_target_of_numbers_with_a_stray_text_cell_is_refused(tmp_path):
    """One '?' in 400 ages made the target text: a 43-class classifier with '?' a class."""
    rows = "".join(f"{i % 7},{i},{20 + i % 41}\n" for i in range(40))
    (tmp_path / "ages.csv").write_text("a,b,age\n" + rows + "1,2,unknown\n")
    with pytest.raises(
        DataError,
        match=r"line 42, target column 'age': 'unknown' is text in a column of numbers \(40 of 41",
    ):
        load_table(tmp_path / "ages.csv", target="age")
    (tmp_path / "ages.csv").write_text("a,b,age\n" + rows + "1,2,?\n")  # '?': missing
    with pytest.raises(DataError, match=r"line 42, target column 'age': '\?' is a missing value"):
        load_table(tmp_path / "ages.csv", target="age")
    (tmp_path / "names.csv").write_text("a,b,kind\n1,2,cat\n3,4,dog\n")  # all text: labels
    assert list(load_table(tmp_path / "names.csv", target="kind").y) == ["cat", "dog"]


def test_integer_labels_beyond_2_53_are_refused_and_big_floats_stay_apart(tmp_path):
    """9007199254740993 reads as ...992 in float64 (two labels merged); 1e20 and 2e20 were
    cast to int64's minimum, one label printed as -9223372036854775808."""
    from jbpnn.data import LabelEncoder

    (tmp_path / "ids.csv").write_text("a,id\n1,9007199254740993\n2,9007199254740992\n")
    with pytest.raises(
        DataError,
        match="line 2, target column 'id': the integer 9007199254740993 is beyond 2\\*\\*53",
    ):
        load_table(tmp_path / "ids.csv", target="id")
    enc = LabelEncoder().fit(np.array([1e20, 2e20, 5.0]))
    assert list(enc.classes_) == [5.0, 1e20, 2e20]


def test_predict_files_header_col0_col1_is_matched_by_name(tmp_path):
    """A model trained on a header col0,col1 took a file's header col1,col0 by position:
    the columns swapped, 47 of 80 predictions changed."""
    (tmp_path / "p.csv").write_text("col1,col0\n10,1\n20,2\n")
    t = load_features(tmp_path / "p.csv", ["col0", "col1"], "y")
    np.testing.assert_array_equal(t.X, [[1, 10], [2, 20]])
    (tmp_path / "q.csv").write_text("1,10\n2,20\n")  # no header: by position, as before
    np.testing.assert_array_equal(
        load_features(tmp_path / "q.csv", ["col0", "col1"], "y").X, [[1, 10], [2, 20]]
    )


def test_a_first_row_of_numbers_that_are_also_the_column_names_is_not_guessed(tmp_path):
    """A model whose columns are named 0, 1 took a headerless first row 1,0 as a header:
    that row was not predicted and the columns swapped."""
    (tmp_path / "new.csv").write_text("1,0\n0,1\n1,1\n")
    with pytest.raises(
        DataError, match=r"first row \(line 1\) 1,0 reads both as the model's column names"
    ):
        load_features(tmp_path / "new.csv", ["0", "1"], "label")
    t = load_features(tmp_path / "new.csv", ["0", "1"], "label", header=False)
    np.testing.assert_array_equal(t.X, [[1, 0], [0, 1], [1, 1]])
    t = load_features(tmp_path / "new.csv", ["0", "1"], "label", header=True)
    np.testing.assert_array_equal(t.X, [[1, 0], [1, 1]])  # by name: column "0" is the 2nd


def test_an_empty_header_name_is_col_j_at_training_and_at_predict(tmp_path):
    """pandas' df.to_csv() writes an unnamed index column (header ",a,y"): training named
    it col0, and predict on the same file refused it ("does not know its column(s) ['']")."""
    path = write(tmp_path, ",a,y\n7,1.5,up\n3,2.5,down\n", "df.csv")  # not row numbers
    table = load_csv(path)
    assert table.feature_names == ["col0", "a"]
    t = load_features(path, table.feature_names, table.target_name)
    np.testing.assert_array_equal(t.X, table.X)


def test_npz_feature_names_given_twice_are_refused(tmp_path):
    """A CSV header with a name twice is refused before training; an NPZ's feature_names
    with one twice trained, and predict then refused the same file."""
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((4, 2)), y=np.arange(4.0), feature_names=np.array(["a", "a"]))
    with pytest.raises(DataError, match=r"'feature_names' holds \['a'\] more than once"):
        load_npz(path)


def test_npz_tables_without_columns_or_with_odd_targets(tmp_path):
    """An X of shape (20, 0) failed in the scaler ("offset and scale must be two lists");
    a datetime64 target in NumPy's rint; a bytes target at the end, when the model's
    metadata was saved."""
    path = tmp_path / "t.npz"
    np.savez(path, X=np.zeros((20, 0)), y=np.arange(20.0))
    with pytest.raises(DataError, match=r"'X' has shape \(20, 0\): a table needs rows and"):
        load_npz(path)
    np.savez(path, X=np.zeros((3, 2)), y=np.array(["2020-01-01"] * 3, dtype="datetime64[D]"))
    with pytest.raises(DataError, match=r"dtype datetime64\[D\]; a target is numbers or text"):
        load_npz(path)
    np.savez(path, X=np.zeros((3, 2)), y=np.array([b"cat", b"dog", b"cat"]))
    assert load_npz(path).y.tolist() == ["cat", "dog", "cat"]


@pytest.mark.parametrize("label", ["nan", "", "NA", " null "])
def test_npz_text_labels_that_mark_a_missing_value_are_refused_as_in_a_csv(tmp_path, label):
    # load_csv refuses them; load_npz made 'nan' and '' classes of their own
    X = np.random.default_rng(0).normal(size=(6, 2))
    path = tmp_path / "labels.npz"
    np.savez(path, X=X, y=np.array(["cat", label] * 3))
    want = f"missing-value label {label.strip()!r} \\(first at row 1\\)"
    with pytest.raises(DataError, match=want):
        load_npz(path)


def test_a_target_of_numbers_written_as_text_is_refused_not_made_classes(tmp_path):
    """A target written with decimal commas (every cell) loaded as text and trained as
    classes (a feature so written was refused with a hint); percentages and thousands
    separators likewise."""
    for cells, hint in (
        (["1,50", "2,00", "1,50", "3,25"], "a decimal comma"),
        (["10%", "20%", "10%", "5%"], "a percentage"),
        (['"1,000"', '"2,500"', '"1,000"', '"3,000"'], "a decimal comma or a thousands"),
        (['"1,000,000"', '"2,500.5"', '"1,000,000"', '"3,000.0"'], "thousands separators"),
    ):
        f = tmp_path / "t.csv"
        f.write_text("a;b;y\n" if hint == "a decimal comma" else "a,b,y\n")
        sep = ";" if hint == "a decimal comma" else ","
        with f.open("a") as out:
            for i, c in enumerate(cells):
                out.write(f"{i}{sep}{i + 1}{sep}{c}\n")
        with pytest.raises(
            DataError, match=rf"every other target is a number written as text; {hint}"
        ):
            load_csv(f)


def test_a_row_of_empty_cells_among_the_data_is_refused(tmp_path):
    """A ',' row was dropped: predict printed 2 answers for 3 rows, every one after it
    on its neighbour's line. Refused now; blank lines and trailing empty rows (a
    spreadsheet's padding) are still skipped."""
    f = tmp_path / "p.csv"
    f.write_text("a,b\n1,2\n,\n2,3\n")
    with pytest.raises(DataError, match=r"line 3: a row of empty cells among the data"):
        load_features(f, ["a", "b"])
    f.write_text("a,b,y\n1,2,0\n\n2,3,1\n4,5,0\n,,\n,,\n")
    t = load_csv(f)
    assert t.X.tolist() == [[1, 2], [2, 3], [4, 5]]


def test_a_question_mark_is_a_missing_value(tmp_path):
    """'?' (the UCI repository's marker) in a headerless first row made that row the
    header, silently losing it; it is a missing value now, refused as the others."""
    f = tmp_path / "q.csv"
    f.write_text("5.1,?,0\n4.9,3.0,1\n4.7,3.2,0\n4.6,3.1,1\n")
    with pytest.raises(DataError, match=r"line 1, column 'col1': '\?' is not a finite number"):
        load_csv(f)


def test_npz_damage_names_and_labels(tmp_path):
    """A truncated or bit-flipped NPZ was an unexpected BadZipFile/CRC error without the
    file's name; bytes feature_names became "b'a'"; a feature_names of the wrong
    length was replaced by col0, ... unsaid; NPZ text labels were not stripped as the
    CSV reader strips them."""
    ok = tmp_path / "ok.npz"
    np.savez(ok, X=np.random.default_rng(0).uniform(size=(24, 2)), y=np.arange(24) % 2)
    raw = ok.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[:300])
    with pytest.raises(DataError, match=r"trunc.npz: "):
        load_npz(tmp_path / "trunc.npz")
    flipped = bytearray(raw)
    flipped[200] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=r"flip.npz: "):
        load_npz(tmp_path / "flip.npz")
    X = np.ones((4, 2))
    np.savez(tmp_path / "fb.npz", X=X, y=np.arange(4) % 2, feature_names=np.array([b"a", b"b"]))
    assert load_npz(tmp_path / "fb.npz").feature_names == ["a", "b"]
    np.savez(tmp_path / "fw.npz", X=X, y=np.arange(4) % 2, feature_names=np.array(["a"]))
    with pytest.raises(DataError, match=r"'feature_names' has shape \(1,\).*needs shape \(2,\)"):
        load_npz(tmp_path / "fw.npz")
    np.savez(tmp_path / "lab.npz", X=X, y=np.array(["cat", "cat ", " dog", "dog"]))
    assert sorted(set(load_npz(tmp_path / "lab.npz").y)) == ["cat", "dog"]


def test_a_header_a_headerless_model_cannot_match_is_said(tmp_path):
    """A model trained without a header took a prediction file's header (c,a,b) by
    position without a word: the same columns reordered gave other predictions."""
    f = tmp_path / "h.csv"
    f.write_text("c,a,b\n1,2,3\n4,5,6\n")
    with pytest.warns(UserWarning, match=r"trained on a table without a header.*by position"):
        t = load_features(f, ["col0", "col1", "col2"], "col3")
    assert t.X.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_target_index_digits_are_ascii(tmp_path):
    """--target ² was int()'s message without the file; ٣ was column 3."""
    f = tmp_path / "d.csv"
    f.write_text("a,b,c,y\n1,2,3,0\n4,5,6,1\n")
    for target in ("²", "٣"):
        with pytest.raises(DataError, match=rf"no target column named '{target}'"):
            load_csv(f, target=target)


# ------------------------------------------------------------------ red-team round 3
def _rows(n: int = 12, sep: str = ",") -> list[str]:
    """``n`` rows of three numbers and a repeating label (cat, dog)."""
    return [sep.join([f"{i}.5", f"{-i}", f"{i % 5}", "cat" if i % 2 else "dog"]) for i in range(n)]


def test_a_headerless_first_row_with_a_label_found_once_is_not_a_header(tmp_path):
    """A headerless file whose first row's class occurs only once lost that row: the
    row was taken for a header, the features named '0.5', '0', ... Its number columns
    hold numbers, as data does; a header would name them, so it cannot be told."""
    path = write(tmp_path, "\n".join(["0.25,-0.5,0.75,bird", *_rows()]) + "\n")
    with pytest.raises(
        DataError,
        match=r"line 1: 0.25,-0.5,0.75,bird\) is a header or data.*"
        r"'bird' \(column 4\) is found nowhere below.*"
        r"header=True or header=False \(jbpnn train: --header or --no-header\)",
    ):
        load_csv(path)
    t = load_csv(path, header=False)
    assert t.X.shape == (13, 3) and t.feature_names == ["col0", "col1", "col2"]
    assert t.y[0] == "bird"
    # a word over a column of numbers still makes a header; numbers with known labels are data
    assert load_csv(write(tmp_path, _labelled("a,2,3,label"), "h.csv")).X.shape == (6, 3)
    assert load_csv(write(tmp_path, "\n".join(_rows()) + "\n", "d.csv")).X.shape == (12, 3)


def test_predict_on_a_first_row_it_cannot_tell_asks_for_no_header(tmp_path):
    """predict on such a file said "the model does not know its column(s) ['1.3', ...]"
    without a word of the first row being data."""
    path = write(tmp_path, "\n".join(["1.3,0.9,-0.7,bird", *_rows(6)]) + "\n")
    with pytest.raises(DataError, match=r"is a header or data.*jbpnn predict: --header or --no-"):
        load_features(path, ["a", "b", "c"], "label")
    assert load_features(path, ["a", "b", "c"], "label", header=False).X.shape == (7, 3)
    # a first row of numbers taken for a header (a word over numbers): the message says so
    odd = write(tmp_path, "1.3,x,-0.7,bird\n" + "\n".join(_rows(6)) + "\n", "odd.csv")
    with pytest.raises(
        DataError,
        match=r"The first row \(line 1, 1.3,x,-0.7,bird\) was taken for a header; if it is "
        r"data, say so: header=False \(jbpnn predict: --no-header\)",
    ):
        load_features(odd, ["a", "b", "c"], "label")


def test_a_pandas_row_index_is_refused_not_a_feature(tmp_path):
    """df.to_csv(path) writes the index as a first column with an empty header cell: it
    was trained on as a feature 'col0' (the row number)."""
    text = ",a,b,label\n" + "".join(
        f"{i},{i}.5,{-i},{'cat' if i % 2 else 'dog'}\n" for i in range(6)
    )
    path = write(tmp_path, text, "df.csv")
    message = (
        r"column 1 has no name in the header \(line 1\) and holds the row numbers "
        r"0, 1, 2, \.\.\.: it looks like a row index written by pandas.*index=False"
    )
    with pytest.raises(DataError, match=message):
        load_csv(path)
    with pytest.raises(DataError, match=message):
        load_features(path, ["a", "b"], "label")
    # a filtered frame's index (increasing, with gaps) too
    gaps = write(tmp_path, ",a,y\n3,1.5,up\n8,2.5,down\n9,3.5,up\n", "gaps.csv")
    with pytest.raises(DataError, match="holds the row numbers 3, 8, 9: it looks like a row"):
        load_csv(gaps)


@pytest.mark.parametrize("sep,name", [(";", "semi.csv"), ("\t", "tab.csv"), ("\t", "tab.tsv")])
def test_one_ragged_line_is_reported_not_taken_for_another_delimiter(tmp_path, sep, name):
    """A ';' or tab .csv with one line of 5 fields was read with ',' (every line had to
    agree): 'single column ... (pass delimiter=';')' instead of the ragged line."""
    rows = [sep.join(["a", "b", "c", "label"]), *_rows(10, sep)]
    rows[5] += sep + "9.9"
    path = write(tmp_path, "\n".join(rows) + "\n", name)
    with pytest.raises(DataError, match=r"line 6: has 5 fields, expected 4 \(as in the header"):
        load_table(path)
    with pytest.raises(DataError, match=r"line 6: has 5 fields, expected 4"):
        load_features(path, ["a", "b", "c"], "label")


def test_excels_sep_line_names_the_delimiter(tmp_path):
    """Excel's first line 'sep=;' was read as data: a single column."""
    path = write(tmp_path, "sep=;\na;b;label\n1;2;x\n3;4;y\n")
    t = load_csv(path)
    assert t.feature_names == ["a", "b"] and t.X.tolist() == [[1, 2], [3, 4]]
    assert t.y.tolist() == ["x", "y"]
    assert load_features(path, ["b", "a"], "label").X.tolist() == [[2, 1], [4, 3]]
    tab = write(tmp_path, "\ufeffsep=\t\r\na\tlabel\r\n1\tx\r\n2\ty\r\n", "t.csv")
    assert load_csv(tab).X.tolist() == [[1], [2]]
    bad = write(tmp_path, "sep=;\na;b;label\n1;2;x\n3;zz;y\n", "bad.csv")  # lines counted
    with pytest.raises(DataError, match=r"line 4, column 'b': 'zz' is not a number"):
        load_csv(bad)
    with pytest.raises(DataError, match=r"line 1: 'sep=;' names the delimiter ';', but it is"):
        load_csv(path, delimiter=",")


def test_a_column_empty_in_every_row_is_named(tmp_path):
    """A comma at the end of every line made an empty last column the target: the message
    was "column 'label': 'dog' is not a number"."""
    rows = _rows(6)
    trailing = write(tmp_path, "a,b,c,label,\n" + "".join(r + ",\n" for r in rows), "t.csv")
    with pytest.raises(
        DataError, match=r"column 5 is empty in every row: every line ends with ','\? delete"
    ):
        load_csv(trailing)
    with pytest.raises(DataError, match=r"column 5 is empty in every row"):
        load_features(trailing, ["a", "b", "c"], "label")
    gap = write(tmp_path, "a,b,,label\n1,2,,x\n3,4,,y\n", "g.csv")  # an empty column
    with pytest.raises(DataError, match=r"column 3 is empty in every row; delete the column"):
        load_csv(gap)


def test_a_comment_line_is_named_as_one(tmp_path):
    """'# written by ...' as the first line: "line 2: has 4 fields, expected 1"."""
    rows = _rows(6)
    comment = write(tmp_path, "# written by a logger\na,b,c,label\n" + "\n".join(rows), "c.csv")
    with pytest.raises(
        DataError,
        match=r"line 1: '# written by a logger' looks like a comment; comment lines are not",
    ):
        load_csv(comment)
    midway = write(tmp_path, "a,b,c,label\n" + "\n".join([*rows[:3], "# part 2", *rows[3:]]),
                   "m.csv")  # fmt: skip
    with pytest.raises(DataError, match=r"line 5: '# part 2' looks like a comment"):
        load_features(midway, ["a", "b", "c"], "label")
    na = write(tmp_path, "a,b,label\n#N/A,1,x\n2,3,y\n", "na.csv")  # a missing value, not one
    with pytest.raises(DataError, match=r"line 2, column 'a': '#N/A' is not a finite number"):
        load_csv(na)


def test_a_text_column_among_the_features_suggests_naming_the_target(tmp_path):
    """A text target in the middle column: "'dog' is not a number", without a word of
    --target."""
    mid = write(tmp_path, "a,label,b\n1,cat,2\n3,dog,4\n5,cat,6\n", "mid.csv")
    with pytest.raises(
        DataError,
        match=r"line 2, column 'label': 'cat' is not a number \(features must be numeric\); "
        r"column 'label' holds no numbers: if it is the target, name it \(target='label'; "
        r"jbpnn train: --target label\)",
    ):
        load_csv(mid)
    assert load_csv(mid, target="label").y.tolist() == ["cat", "dog", "cat"]
    headless = write(tmp_path, "1,cat,2\n3,dog,4\n5,cat,6\n", "midh.csv")
    with pytest.raises(DataError, match=r"\(target='1'; jbpnn train: --target 1\)"):
        load_csv(headless)
    # one text cell among numbers is a bad cell, not a target: no hint
    with pytest.raises(DataError, match=r"'zz' is not a number \(features must be numeric\)$"):
        load_csv(write(tmp_path, "a,b,y\n1,zz,0\n2,3,1\n", "z.csv"))


@pytest.mark.parametrize("bad", ["", ";;", "a", "1", '"', "\n"])
def test_a_delimiter_is_one_character(tmp_path, bad):
    path = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"the delimiter must be one character"):
        load_csv(path, delimiter=bad)
    with pytest.raises(ValueError, match=r"the delimiter must be one character"):
        load_features(path, ["a"], "b", delimiter=bad)

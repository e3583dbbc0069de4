"""grid and ResultsTable: the Cartesian product, CSV/JSON round trips, sort, summarize,
and files written as jbpnn.files writes them (atomic, refused targets, no collisions)."""

from __future__ import annotations

import errno
import json
import math
import os
import stat

import numpy as np
import pytest
from conftest import file_size_limit

from jbpnn.tables import ResultsTable, grid


def test_grid_is_the_cartesian_product_first_axis_slowest():
    g = grid(lr=[0.1, 0.3], m=[0.0, 0.9], seed=range(2))
    assert list(g) == ["lr", "m", "seed"]
    assert g["lr"].tolist() == [0.1] * 4 + [0.3] * 4
    assert g["m"].tolist() == [0.0, 0.0, 0.9, 0.9] * 2
    assert g["seed"].tolist() == [0, 1] * 4
    assert grid(lr=0.5, variant="article")["variant"].tolist() == ["article"]
    with pytest.raises(ValueError, match="empty"):
        grid(lr=[])
    with pytest.raises(ValueError, match="at least one axis"):
        grid()


def _table():
    rows = [
        {"network": 0, "lr": 0.1, "seed": 0, "val_accuracy": 0.5, "stop_reason": "max_epochs"},
        {"network": 1, "lr": 0.1, "seed": 1, "val_accuracy": 0.7, "stop_reason": "max_epochs"},
        {"network": 2, "lr": 10.0, "seed": 0, "val_accuracy": math.nan, "stop_reason": "diverged"},
        {"network": 3, "lr": 10.0, "seed": 1, "val_accuracy": 1 / 3, "stop_reason": "diverged"},
    ]
    return ResultsTable(rows)


def test_results_table_csv_json_round_trip(tmp_path):
    table = _table()
    assert ResultsTable.from_csv(table.to_csv(tmp_path / "t.csv")) == table
    assert ResultsTable.from_csv(tmp_path / "t.csv") == table
    assert ResultsTable.from_json(table.to_json(tmp_path / "t.json")) == table
    assert ResultsTable.from_json(tmp_path / "t.json") == table
    assert json.loads((tmp_path / "t.json").read_text())["rows"][2]["val_accuracy"] is None
    assert ResultsTable.from_csv(tmp_path / "t.csv")[3]["val_accuracy"] == 1 / 3  # exact
    assert table != table.sort("lr", descending=True)
    with pytest.raises(ValueError, match="line 2"):
        ResultsTable.from_csv("a,b\n1\n")


def test_results_table_sort_print_summarize():
    table = _table()
    best = table.sort("val_accuracy", descending=True)
    assert best["network"] == [1, 0, 3, 2]  # NaN last
    assert table.sort("val_accuracy")["network"] == [3, 0, 1, 2]
    text = str(table)
    assert text.splitlines()[0].split() == table.columns and "diverged" in text
    s = table.summarize(["lr"], ["val_accuracy"])
    assert s["lr"] == [0.1, 10.0] and s["n"] == [2, 2]
    assert s[0]["val_accuracy_mean"] == pytest.approx(0.6)
    assert s[0]["val_accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s[1]["val_accuracy_mean"] == pytest.approx(1 / 3)  # NaN left out
    with pytest.raises(KeyError, match="no column"):
        table.sort("accuracy")


# ---------------------------------------------------------------- writing the files
@pytest.mark.parametrize("method", ["to_csv", "to_json"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, method):
    path = tmp_path / f"t.{method[3:]}"
    getattr(_table().head(1), method)(path)
    before = path.read_bytes()
    with file_size_limit(len(before) + 10), pytest.raises(OSError) as info:
        getattr(_table(), method)(path)  # four rows do not fit: the "disk" is full
    assert info.value.errno == errno.EFBIG
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_read_only_and_special_targets_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    _table().head(1).to_csv(path)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only .mode 0444.; it is not replaced"):
        _table().to_csv(path)
    assert path.read_bytes() == before
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="a FIFO .named pipe., not a regular file"):
        _table().to_json(pipe)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.json", "t.csv"]


def test_two_writers_of_one_file_do_not_collide(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("old\n")
    first, second = _table(), _table().head(2)
    real_replace = os.replace

    def replace(src, dst, **kwargs):  # the first writer's rename, with another write just before
        monkeypatch.setattr(os, "replace", real_replace)
        second.to_csv(path)
        assert ResultsTable.from_csv(path) == second
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    first.to_csv(path)
    assert ResultsTable.from_csv(path) == first  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_the_data_is_fsynced_before_it_is_named(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.exists(tmp_path / "t.json"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _table().to_json(tmp_path / "t.json")
    assert synced and synced[0] is False  # the file's data, then (maybe) its folder
    assert ResultsTable.from_json(tmp_path / "t.json") == _table()


def test_sort_by_several_columns_descending_and_numpy_numbers():
    """Found by a red-team pass: descending with a string column sorted every column as
    text (0.03 > 0.5 > 1e-05) and NaN not last; NumPy integers (grid() gives them) sorted
    as text (10 before 2) and broke to_json."""
    rows = [
        {"act": "relu", "lr": 1e-05, "acc": float("nan"), "seed": np.int64(10)},
        {"act": "relu", "lr": 0.5, "acc": 0.9, "seed": np.int64(2)},
        {"act": "relu", "lr": 0.03, "acc": 0.7, "seed": np.int64(1)},
    ]
    t = ResultsTable(rows, ["act", "lr", "acc", "seed"])
    assert [r["lr"] for r in t.sort(["act", "lr"], descending=True).rows] == [0.5, 0.03, 1e-05]
    assert [r["acc"] for r in t.sort(["act", "acc"], descending=True).rows][:2] == [0.9, 0.7]
    assert math.isnan(t.sort(["act", "acc"], descending=True).rows[-1]["acc"])
    assert [int(r["seed"]) for r in t.sort("seed").rows] == [1, 2, 10]
    assert json.loads(t.to_json())["rows"][0]["seed"] == 10


def test_csv_round_trip_keeps_none_and_booleans():
    """None was written as "None" and True as "True", both read back as text."""
    table = ResultsTable(
        [
            {"a": None, "b": True, "c": np.bool_(False), "d": np.float32(0.5), "e": "x"},
            {"a": 1.5, "b": False, "c": True, "d": 2, "e": "007"},
        ]  # fmt: skip
    )
    back = ResultsTable.from_csv(table.to_csv())
    assert back.rows[0] == {"a": None, "b": True, "c": False, "d": 0.5, "e": "x"}
    assert type(back.rows[0]["b"]) is bool and type(back.rows[1]["d"]) is int
    assert back.rows[1]["e"] == 7  # CSV has no types: documented (JSON keeps the text)
    assert ResultsTable.from_json(table.to_json()).rows[1]["e"] == "007"


def test_sort_orders_numbers_of_every_kind_by_value():
    # 0-d NumPy / JAX arrays and Decimals sorted as text: 2, 10, 1 -> 1, 10, 2
    import decimal

    import jax.numpy as jnp

    for kind in (np.array, jnp.array, decimal.Decimal):
        table = ResultsTable([{"a": kind(v)} for v in (2, 10, 1)] + [{"a": kind(math.nan)}])
        got = [float(v) for v in table.sort("a")["a"]]
        assert got[:3] == [1.0, 2.0, 10.0] and math.isnan(got[3])
        got = [float(v) for v in table.sort("a", descending=True)["a"]]
        assert got[:3] == [10.0, 2.0, 1.0] and math.isnan(got[3])
    with pytest.raises(TypeError, match="descending must be True or False, got 'no'"):
        _table().sort("lr", descending="no")


def test_results_table_refuses_bad_rows_and_columns():
    with pytest.raises(TypeError, match="rows must be an iterable of dicts.*NoneType"):
        ResultsTable(None)
    with pytest.raises(TypeError, match="row 1 must be a dict"):
        ResultsTable([{"a": 1}, 5])
    with pytest.raises(ValueError, match=r"each column once; \['lr'\] appear more than once"):
        ResultsTable([{"lr": 0.1, "acc": 0.5}], columns=["lr", "acc", "lr"])
    with pytest.raises(TypeError, match="columns must be a list of column names"):
        ResultsTable([{"lr": 0.1}], columns="lr")


def test_to_text_refuses_a_negative_max_rows_or_digits():
    # max_rows=-1 printed 2 of 3 rows and "... (4 more rows)"; digits=-1 a format error
    table = _table()
    assert table.to_text(max_rows=0).splitlines()[-1] == "... (4 more rows)"
    with pytest.raises(ValueError, match="max_rows must be an integer >= 0 or None"):
        table.to_text(max_rows=-1)
    with pytest.raises(ValueError, match="digits must be an integer >= 1, got -1"):
        table.to_text(digits=-1)
    assert "0.3333" in table.to_text(max_rows=np.int64(4), digits=np.int64(4))


def test_to_json_writes_0d_arrays_as_numbers_and_names_other_cells():
    import jax.numpy as jnp

    table = ResultsTable([{"a": np.array(2.5), "b": jnp.array(3)}])
    assert ResultsTable.from_json(table.to_json()).rows == [{"a": 2.5, "b": 3}]
    with pytest.raises(ValueError, match=r"row 0, column 'a' holds an array of shape \(2,\)"):
        ResultsTable([{"a": np.array([1.0, 2.0])}]).to_json()
    with pytest.raises(ValueError, match="row 0, column 'a' holds object"):
        ResultsTable([{"a": object()}]).to_json()


def test_from_json_and_from_csv_say_what_they_expected(tmp_path):
    # from_json('[]'): FileNotFoundError "No such file '[]'"; from_csv(''): IsADirectoryError '.'
    with pytest.raises(ValueError, match='an object with "columns" and "rows", got a list'):
        ResultsTable.from_json("[]")
    with pytest.raises(ValueError, match="CSV table is empty"):
        ResultsTable.from_csv("")
    with pytest.raises(FileNotFoundError, match="expected a path to a JSON file.*no such file"):
        ResultsTable.from_json(str(tmp_path / "missing.json"))
    with pytest.raises(IsADirectoryError, match="expected a path to a CSV file.*a folder"):
        ResultsTable.from_csv(tmp_path)
    with pytest.raises(TypeError, match="source must be a path to a JSON file"):
        ResultsTable.from_json(None)


def test_summarize_names_a_column_that_is_not_numeric():
    # "could not convert string to float: 'max_epochs'"
    with pytest.raises(ValueError, match="column 'stop_reason' is not numeric"):
        _table().summarize(["lr"], ["stop_reason"])
    summary = _table().summarize("lr", "val_accuracy")  # one name as a string
    assert summary["val_accuracy_mean"] == [0.6, pytest.approx(1 / 3)]


# ---------------------------------------------------------------- red-team pass 7
def test_summarize_keeps_inf_and_leaves_out_only_nan():
    """xs[np.isfinite(xs)] dropped an inf too: [0.7, inf, 0.8] had mean 0.75, max 0.8."""
    rows = [{"lr": 3.0, "loss": v} for v in (0.7, math.inf, 0.8, math.nan)]
    s = ResultsTable(rows).summarize("lr", "loss")[0]
    assert s["n"] == 4  # the rows, NaN included
    assert s["loss_mean"] == math.inf and s["loss_max"] == math.inf
    assert s["loss_min"] == 0.7 and math.isnan(s["loss_std"])
    only_nan = ResultsTable([{"lr": 1, "loss": math.nan}]).summarize("lr", "loss")[0]
    assert math.isnan(only_nan["loss_mean"]) and only_nan["n"] == 1


def test_summarize_puts_every_nan_key_in_one_group():
    """Each float('nan') object was a group of its own (dict keys compare by identity
    first), also after a CSV round trip."""
    rows = [{"tol": float("nan"), "acc": 0.9 + s / 100} for s in range(3)]
    rows += [{"tol": np.float64("nan"), "acc": 0.5}, {"tol": 1e-3, "acc": 0.8}]
    table = ResultsTable(rows)
    for t in (table, ResultsTable.from_csv(table.to_csv())):
        s = t.summarize("tol", "acc")
        assert s["n"] == [4, 1]
        assert math.isnan(s[0]["tol"]) and s[1]["tol"] == 1e-3
        assert s[0]["acc_mean"] == pytest.approx((0.9 + 0.91 + 0.92 + 0.5) / 4)


def test_summarize_groups_list_and_array_cells_by_their_items():
    """A list-valued column raised a bare TypeError: unhashable type: 'list'."""
    rows = [
        {"hidden": [64, 32], "acc": 0.9},
        {"hidden": np.array([64, 32]), "acc": 0.8},
        {"hidden": [16], "acc": 0.5},
    ]
    s = ResultsTable(rows).summarize("hidden", "acc")
    assert s["hidden"] == [[64, 32], [16]] and s["n"] == [2, 1]
    with pytest.raises(ValueError, match="column 'h' holds dict .* cannot be grouped"):
        ResultsTable([{"h": {"a": 1}, "acc": 0.5}]).summarize("h", "acc")


def test_to_csv_writes_0d_arrays_exactly_and_refuses_arrays_of_several_values():
    """0-d arrays went through str() (float32 1/3 as 0.33333334), and an array of 2000
    values as NumPy's shortened repr '[   0    1 ... 1999]'."""
    import jax.numpy as jnp

    t = ResultsTable([{"a": np.float32(1 / 3), "b": np.array(1 / 3, np.float32),
                       "c": jnp.float32(1 / 3)}])  # fmt: skip
    back = ResultsTable.from_csv(t.to_csv())[0]
    assert back == ResultsTable.from_json(t.to_json())[0] == {c: float(np.float32(1 / 3))
                                                              for c in "abc"}  # fmt: skip
    for array in (np.arange(2000), jnp.arange(3)):
        with pytest.raises(ValueError, match=r"to_csv: row 0, column 'd' holds an array of shape"):
            ResultsTable([{"d": array}]).to_csv()


def test_csv_keeps_a_carriage_return_in_text_and_in_files(tmp_path):
    """A field with a lone '\\r' was written unquoted (read back: a raw _csv.Error); a
    file read with read_text() turned 'a\\r\\nb' into 'a\\nb'."""
    t = ResultsTable([{"note": "c\rd", "x": 1}, {"note": "a\r\nb", "x": 2}])
    assert ResultsTable.from_csv(t.to_csv()) == t
    t.to_csv(tmp_path / "t.csv")
    assert ResultsTable.from_csv(tmp_path / "t.csv") == t
    assert ResultsTable.from_csv(ResultsTable([{"x": 1}]).to_csv()) == ResultsTable([{"x": 1}])


def test_sort_descending_keeps_numbers_before_text_and_nan_last():
    """descending=True reversed the whole order: 'diverged' topped the best table."""
    cells = [("A", 0.97), ("B", "diverged"), ("C", 0.95), ("D", math.nan), ("E", "x")]
    t = ResultsTable([{"cfg": c, "acc": v} for c, v in cells])
    assert t.sort("acc")["cfg"] == ["C", "A", "B", "E", "D"]
    assert t.sort("acc", descending=True)["cfg"] == ["A", "C", "E", "B", "D"]


def test_grid_keeps_tuples_mixed_kinds_and_0d_arrays_as_given():
    """Tuples made a 2-D column (ragged ones a raw NumPy error), ["relu", 1] became text,
    [True, 2] ints, and a 0-d array raised 'iteration over a 0-d array'."""
    g = grid(hidden=[(64, 32), (128, 64)], lr=[0.1, 0.3])
    assert g["hidden"].shape == (4,) and g["hidden"].tolist() == [(64, 32)] * 2 + [(128, 64)] * 2
    ragged = grid(hidden=[(64,), (64, 32)])["hidden"]
    assert ragged.shape == (2,) and ragged.tolist() == [(64,), (64, 32)]
    assert grid(act=["relu", 1])["act"].tolist() == ["relu", 1]
    mixed = grid(flag=[True, 2])["flag"].tolist()
    assert mixed == [True, 2] and type(mixed[0]) is bool
    assert grid(lr=np.array(0.1), seed=range(2))["lr"].tolist() == [0.1, 0.1]
    assert grid(lr=[0.1, 1])["lr"].dtype == np.float64  # numbers stay one numeric column
    assert grid(flag=[True, False])["flag"].dtype == np.bool_


def test_from_json_of_a_path_holding_a_brace_says_how_to_pass_it(tmp_path):
    """A str path holding '{' is JSON text (documented): a bare JSONDecodeError said so."""
    folder = tmp_path / "run{1}"
    folder.mkdir()
    t = ResultsTable([{"a": 1}])
    t.to_json(folder / "t.json")
    with pytest.raises(ValueError, match=r"read as JSON text .* pass it as a pathlib\.Path"):
        ResultsTable.from_json(str(folder / "t.json"))
    assert ResultsTable.from_json(folder / "t.json") == t

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

"""grid and ResultsTable: the Cartesian product, CSV/JSON round trips, sort, summarize."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

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

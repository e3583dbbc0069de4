"""plots: the loss curves and the heatmap are PNG files; a clear error without matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from jbpnn.plots import plot_heatmap, plot_history, require_matplotlib
from jbpnn.tables import ResultsTable

PNG = b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ImportError, match=r'pip install "jbpnn\[plot\]"'):
        require_matplotlib()
    with pytest.raises(ImportError, match="the loss-curve plot needs matplotlib"):
        plot_history(tmp_path / "c.png", {"loss": np.ones(3)}, "t")
    with pytest.raises(ImportError, match="the heatmap needs matplotlib"):
        plot_heatmap([{"lr": 0.1, "m": 0.0, "val_accuracy_mean": 0.5}], tmp_path / "h.png")
    assert not list(tmp_path.iterdir())


def test_png_files_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    history = {
        "loss": np.array([1.0, 0.5, 0.25]),
        "val_loss": np.array([1.1, 0.6, 0.4]),
        "val_accuracy": np.array([0.3, 0.6, 0.8]),
    }
    plot_history(tmp_path / "curve.png", history, "three epochs")
    rows = [
        {"lr": lr, "m": m, "val_accuracy_mean": v}
        for (lr, m), v in zip(
            [(0.1, 0.0), (0.1, 0.9), (1.0, 0.0), (1.0, 0.9)], [0.5, 0.7, 0.9, 0.1]
        )
    ]
    plot_heatmap(ResultsTable(rows), tmp_path / "heat.png", title="a grid")
    for name in ("curve.png", "heat.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    # no temporaries left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "heat.png"]

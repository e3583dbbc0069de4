"""plots: the loss curves and the heatmap are PNG files; a clear error without matplotlib;
the files written as jbpnn.files writes them (atomic, refused targets, no collisions)."""

from __future__ import annotations

import errno
import io
import os
import stat
import sys

import numpy as np
import pytest
from conftest import file_size_limit

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


# ---------------------------------------------------------------- writing the files
HISTORY = {"loss": np.array([1.0, 0.5, 0.25])}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curve.png"
    plot_history(path, HISTORY, "before")
    before = path.read_bytes()
    with file_size_limit(len(before) // 2), pytest.raises(OSError) as info:
        plot_history(path, HISTORY, "after")
    assert info.value.errno == errno.EFBIG
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


def test_read_only_and_special_targets_are_refused(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curve.png"
    plot_history(path, HISTORY, "before")
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only .mode 0444.; it is not replaced"):
        plot_history(path, HISTORY, "after")
    assert path.read_bytes() == before
    pipe = tmp_path / "heat.png"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="a FIFO .named pipe., not a regular file"):
        plot_heatmap([{"lr": 0.1, "m": 0.0, "val_accuracy_mean": 0.5}], pipe)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "heat.png"]


def test_two_writers_of_one_file_do_not_collide(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    path, alone = tmp_path / "curve.png", tmp_path / "alone" / "curve.png"
    alone.parent.mkdir()
    plot_history(alone, HISTORY, "first")  # what the first writer's file holds
    path.write_bytes(b"old")
    real_replace = os.replace

    def replace(src, dst, **kwargs):  # the first writer's rename, with another write just before
        monkeypatch.setattr(os, "replace", real_replace)
        plot_history(path, HISTORY, "second")
        assert path.read_bytes()[:8] == PNG
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    plot_history(path, HISTORY, "first")
    assert path.read_bytes() == alone.read_bytes()  # the last rename wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "curve.png"]


def test_the_suffix_names_the_format(tmp_path, capsys):
    """curve.pdf held PNG bytes (the library and jbpnn train --plot): the suffix chooses,
    PNG without one; a suffix matplotlib writes no format for is refused (curve.xyz held
    PNG bytes), before anything is drawn or trained."""
    pytest.importorskip("matplotlib")
    for name, magic in (("c.pdf", b"%PDF"), ("c.svg", b"<?xml"), ("c.png", PNG), ("c", PNG)):
        plot_history(tmp_path / name, {"loss": np.ones(3)}, "t")
        assert (tmp_path / name).read_bytes().startswith(magic), name
    with pytest.raises(ValueError, match=r"cannot write a figure as 'xyz' .*matplotlib writes"):
        plot_history(tmp_path / "c.xyz", {"loss": np.ones(3)}, "t")
    with pytest.raises(ValueError, match=r"cannot write a figure as 'x'"):
        plot_history(io.BytesIO(), {"loss": np.ones(3)}, "t", suffix=".x")
    assert not (tmp_path / "c.xyz").exists()
    from conftest import run_cli, write_flowers

    write_flowers(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--data", tmp_path / "flowers.csv", "--target",
                         "colour", "--epochs", "1", "--plot", tmp_path / "curve.pdf")  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "curve.pdf").read_bytes().startswith(b"%PDF")
    rc, out, err = run_cli(capsys, "train", "--data", tmp_path / "flowers.csv", "--target",
                           "colour", "--epochs", "1", "--plot", tmp_path / "curve.xyz")  # fmt: skip
    assert rc == 2 and "--plot cannot write a figure as 'xyz'" in err and "epoch" not in out
    assert not (tmp_path / "curve.xyz").exists()


def test_heatmap_reads_a_generator_and_refuses_a_cell_twice(tmp_path):
    """iter(rows) drew an empty (0, 2) grid and wrote it without a word; a second row for
    a cell silently replaced the first."""
    pytest.importorskip("matplotlib")
    import matplotlib.axes

    rows = [{"lr": a, "m": b, "val_accuracy_mean": a + b} for a in (0.1, 1.0) for b in (0.0, 0.9)]
    shown = []
    imshow = matplotlib.axes.Axes.imshow

    def spy(self, a, *args, **kwargs):
        shown.append(np.shape(a))
        return imshow(self, a, *args, **kwargs)

    matplotlib.axes.Axes.imshow = spy
    try:
        plot_heatmap(iter(rows), tmp_path / "h.png")
    finally:
        matplotlib.axes.Axes.imshow = imshow
    assert shown == [(2, 2)]
    with pytest.raises(ValueError, match="two rows for the cell lr=0.1, m=0.0"):
        plot_heatmap(rows + rows[:1], tmp_path / "h2.png")


def test_what_one_figure_cannot_show_is_refused_in_plot_history(tmp_path):
    """train_many's (networks, epochs) history drew an "epoch" axis of network numbers;
    a missing loss, curves of other lengths and a result object gave raw errors."""
    pytest.importorskip("matplotlib")
    import io

    import jbpnn

    with pytest.raises(ValueError, match=r"shape \(3, 15\) \(one row per network"):
        plot_history(tmp_path / "m.png", {"loss": np.ones((3, 15))}, "many")
    with pytest.raises(ValueError, match="with a 'loss' curve.*keys \\['val_loss'\\]"):
        plot_history(tmp_path / "m.png", {"val_loss": np.ones(3)}, "x")
    with pytest.raises(
        ValueError, match=r"history\['val_loss'\] has shape \(3,\), the loss \(5,\)"
    ):
        plot_history(tmp_path / "m.png", {"loss": np.ones(5), "val_loss": np.ones(3)}, "x")
    assert not (tmp_path / "m.png").exists()
    X = np.random.default_rng(0).normal(size=(8, 2))
    result = jbpnn.train(
        jbpnn.init_params(0, (2, 3, 1)), X, X[:, :1], optimizer=jbpnn.sgd(0.1), epochs=1
    )
    out = io.BytesIO()
    plot_history(out, result, "one epoch", suffix="png")  # the result itself; one epoch
    assert out.getvalue().startswith(b"\x89PNG")


def test_plot_heatmap_takes_named_axes_and_names_what_is_missing(tmp_path):
    pytest.importorskip("matplotlib")
    import io

    rows = [{"activation": a, "m": m, "v": i + m} for i, a in enumerate(["relu", "tanh"])
            for m in (0.0, 0.9)]  # fmt: skip
    out = io.BytesIO()
    plot_heatmap(rows, out, suffix="png", x="activation", value="v")  # names, not numbers
    assert out.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match=r"row 0 has no column 'lr' \(x\)"):
        plot_heatmap(rows, tmp_path / "h.png", value="v")
    with pytest.raises(ValueError, match=r"row 0 has no value \(None\) in 'activation'"):
        plot_heatmap([{**rows[0], "activation": None}] + rows[1:], io.BytesIO(),
                     x="activation", value="v")  # fmt: skip
    with pytest.raises(ValueError, match="mix types"):
        plot_heatmap([{**rows[0], "activation": 1.0}] + rows[1:], io.BytesIO(),
                     x="activation", value="v")  # fmt: skip
    with pytest.raises(ValueError, match=r"no column 'val_accuracy_mean' \(value\)"):
        plot_heatmap(rows, io.BytesIO(), x="activation")


# ---------------------------------------------------------------- red-team pass 7
def _drawn(monkeypatch):
    """The figures plots writes, kept open to read their labels."""
    from jbpnn import plots

    figures = []
    save = plots._save

    def keep(fig, plt, path, kind):
        figures.append(fig)
        save(fig, plt, path, kind)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def test_heatmap_cells_say_inf_and_keep_small_values_distinct(monkeypatch):
    """An infinite cell was written "nan"; .3f wrote 2e-4 and 4e-4 both as 0.000."""
    pytest.importorskip("matplotlib")
    figures = _drawn(monkeypatch)
    rows = [{"lr": 1, "m": 0, "v": 2e-4}, {"lr": 2, "m": 0, "v": 4e-4},
            {"lr": 3, "m": 0, "v": float("inf")}, {"lr": 4, "m": 0, "v": float("nan")}]  # fmt: skip
    plot_heatmap(rows, io.BytesIO(), value="v")
    assert [t.get_text() for t in figures[-1].axes[0].texts] == ["0.0002", "0.0004", "inf", "nan"]


def test_heatmap_ticks_tell_distinct_values_apart(monkeypatch):
    """1000 and 1001 were both '1e+03', 0.3 and 0.1 + 0.2 both '0.3', bools '0' and '1'."""
    pytest.importorskip("matplotlib")
    figures = _drawn(monkeypatch)

    def ticks(values):
        plot_heatmap([{"lr": v, "m": 0, "val_accuracy_mean": 0.5} for v in values], io.BytesIO())
        return [t.get_text() for t in figures[-1].axes[0].get_xticklabels()]

    assert ticks([1000, 1001, 1024]) == ["1000", "1001", "1024"]
    assert ticks([0.1, 0.1001, 0.3, 0.1 + 0.2]) == ["0.1", "0.1001", "0.3", "0.30000000000000004"]
    assert ticks([False, True]) == ["False", "True"]
    assert ticks([0.003, 0.01, 0.3, 1.0, 10.0]) == ["0.003", "0.01", "0.3", "1", "10"]


def test_an_empty_summary_is_refused_and_a_zero_loss_is_drawn(tmp_path, monkeypatch):
    """An empty summary wrote a blank figure; a zero loss vanished from the log axis."""
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="the summary has no rows"):
        plot_heatmap([], tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()
    figures = _drawn(monkeypatch)
    plot_history(io.BytesIO(), {"loss": np.array([1.0, 0.0, 0.5])}, "t")
    assert figures[-1].axes[0].get_yscale() == "linear"
    plot_history(io.BytesIO(), {"loss": np.array([1.0, 0.1, 0.5])}, "t")
    assert figures[-1].axes[0].get_yscale() == "log"

"""End-to-end tests of the jbpnn command, through subprocesses on small data."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import Screen, one_line_error, run_cli, write_flowers

import jbpnn as jbpnn_api
from jbpnn.io import load

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, JBPNN_CACHE_DIR=str(cwd / "cache"))  # a cache of the test's own
    env.pop("JBPNN_NO_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "jbpnn", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 120
    c = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 3)) * 0.5 + c[:, None] * 2.0  # well separated classes
    names = np.array(["red", "green", "blue"])[c]
    with open(d / "flowers.csv", "w") as f:
        f.write("a,b,colour,c\n")
        for x, s in zip(X, names):
            f.write(f"{x[0]:.4f},{x[1]:.4f},{s},{x[2]:.4f}\n")
    with open(d / "rows.csv", "w") as f:
        f.write("a,b,c\n")
        for x in X[:6]:
            f.write(",".join(f"{v:.4f}" for v in x) + "\n")
    (d / "labels.txt").write_text("\n".join(names[:6]) + "\n")
    Xr = rng.normal(size=(200, 2))
    np.savez(d / "reg.npz", X=Xr, y=Xr @ [3.0, -2.0] + 0.1 * rng.normal(size=200))  # regression
    return d


def test_train_save_predict_round_trip_with_categorical_target(workdir, capsys, monkeypatch):
    out = run(
        "train",
        "--data",
        "flowers.csv",
        "--target",
        "colour",
        "--hidden",
        "8",
        "--epochs",
        "300",
        "--lr",
        "0.3",
        "--save",
        "model.npz",
        cwd=workdir,
    ).stdout
    assert "test accuracy" in out and "saved model model.npz" in out
    params, meta = load(workdir / "model.npz")
    assert params.sizes == (3, 8, 3)
    assert meta["classes"]["classes"] == ["blue", "green", "red"]
    assert meta["test_accuracy"] >= 0.9
    # predict prints the original labels, from a file with or without the target column
    pred = run("predict", "model.npz", "rows.csv", cwd=workdir).stdout.split()
    expected = (workdir / "labels.txt").read_text().split()
    assert pred == expected
    monkeypatch.chdir(workdir)  # the other two in this process (a subprocess each: 2-3 s)
    rc, out, err = jbpnn(capsys, "predict", "model.npz", "flowers.csv")
    assert rc == 0 and out.split()[:6] == expected, err
    rc, out, err = jbpnn(capsys, "predict", "model.npz", "rows.csv", "--out", "p.txt")
    assert rc == 0 and (workdir / "p.txt").read_text().split() == expected, err


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "data file not found: missing.csv"),
        ("", "bad.csv is empty"),
        ("a,b,y\n1,2,x\n3,4\n", "bad.csv, line 3: has 2 fields, expected 3"),
        ("a,b,y\n1,zz,x\n3,4,y\n", "bad.csv, line 2, column 'b': 'zz' is not a number"),
        ("a,b,y\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n", "has a single class 'x'"),
    ],
    ids=["missing", "empty", "ragged", "non-numeric", "single-class"],
)
def test_bad_csv_messages(workdir, content, message, capsys, monkeypatch):
    # in this process (a subprocess each cost 2-3 s); the process-level behaviour (exit
    # status, no traceback) has subprocess tests of its own (test_regression_task, ...)
    monkeypatch.chdir(workdir)
    name = "missing.csv" if content is None else "bad.csv"
    if content is not None:
        (workdir / name).write_text(content)
    rc, out, err = jbpnn(capsys, "train", "--data", name, "--save", "never.npz")
    one_line_error(rc, err, message)
    assert not (workdir / "never.npz").exists()


def test_missing_target_column(workdir):
    proc = run("train", "--data", "flowers.csv", "--target", "kind", cwd=workdir, check=False)
    assert proc.returncode == 2
    assert "'kind'" in proc.stderr and "colour" in proc.stderr


def test_divergence_writes_nothing(workdir):
    proc = run(
        "train",
        "--data",
        "reg.npz",
        "--activation",
        "identity",
        "--lr",
        "1e6",
        "--save",
        "diverged.npz",
        *(["--plot", "diverged.png"] if HAVE_MATPLOTLIB else []),
        cwd=workdir,
        check=False,
    )
    assert proc.returncode == 2
    assert "diverged at epoch" in proc.stderr and "nothing was saved" in proc.stderr
    assert not (workdir / "diverged.npz").exists() and not (workdir / "diverged.png").exists()


def test_regression_task(workdir):
    out = run(
        "train",
        "--data",
        "reg.npz",
        "--hidden",
        "8",
        "--activation",
        "tanh",
        "--epochs",
        "300",
        cwd=workdir,
    ).stdout
    rmse = float(out.split("test RMSE")[1].split()[0])
    assert rmse < 0.5  # y = 3 x0 - 2 x1 + noise: std about 3.6, noise std 0.1


@pytest.mark.parametrize(
    "command", ["", "train", "predict", "example", "demo", "gradcheck", "sweep"]
)
def test_help(command, capsys):
    rc, out, err = jbpnn(capsys, *([command] if command else []), "--help")
    assert rc == 0 and "usage: jbpnn" in out and "example:" in out


def test_example_prints_the_oracle_values(workdir):
    out = run("example", cwd=workdir).stdout
    for figure in (
        "0.5249791875",
        "0.6926361652",
        "0.0654350888",
        "0.7003435206",
        "0.1311690782",
        "-0.2608288463",
    ):
        assert figure in out


def test_no_subcommand_prints_the_help_and_exits_zero(workdir):
    proc = run(cwd=workdir)
    assert proc.stdout.startswith("usage: jbpnn") and "train" in proc.stdout
    assert proc.stderr == ""


def test_version(workdir):
    import jbpnn

    assert run("--version", cwd=workdir).stdout.strip() == f"jbpnn {jbpnn.__version__}"


def test_demo_matches_the_article(workdir):
    out = run("demo", cwd=workdir).stdout
    assert "(same)" in out


def test_gradcheck_subcommand_exit_codes(workdir):
    ok = run("gradcheck", "--sizes", "4,3,2", "--activation", "tanh", cwd=workdir)
    assert "PASSED" in ok.stdout
    bad = run("gradcheck", "--sizes", "4,3,1", "--article-mode", cwd=workdir, check=False)
    assert bad.returncode == 1 and "FAIL" in bad.stdout


@pytest.mark.parametrize("args", [(), ("--quick",), ("--help",)])
def test_bench_subcommand_was_removed_and_says_what_to_run(args, capsys):
    rc, out, err = jbpnn(capsys, "bench", *args)
    assert rc == 2 and out == ""
    assert err.splitlines() == [
        "jbpnn bench was removed: run `python experiments/bench.py` from a source checkout"
    ]


def test_sweep_quick_without_timing(tmp_path):
    proc = run("sweep", "--quick", "--no-plot", "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert "best configurations" in proc.stdout
    assert "python experiments/sweep.py" in proc.stdout  # where the timing is
    assert (tmp_path / "s" / "sweep.csv").is_file() and (tmp_path / "s" / "sweep.json").is_file()


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed (jbpnn[plot])")
def test_plot_is_written(workdir):
    out = run("train", "--data", "reg.npz", "--epochs", "5", "--plot", "curve.png", cwd=workdir)
    assert "curves curve.png" in out.stdout
    assert (workdir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_are_rendered_in_memory_with_no_temporary_folder(monkeypatch, capsys, tmp_path):
    """A process killed while rendering (SIGTERM) once left an empty jbpnn-plot-* folder in
    /tmp: the figures are rendered into memory now, so nothing is made there to leave."""
    import tempfile

    from jbpnn import cli

    def no_folder(*args, **kwargs):
        raise AssertionError("a temporary folder was made")

    monkeypatch.setattr(tempfile, "mkdtemp", no_folder)
    curve = tmp_path / "curve.svg"
    assert cli.main(["train", "--epochs", "2", "--plot", str(curve)]) == 0
    assert curve.read_bytes().lstrip().startswith(b"<?xml")  # the suffix's format
    from jbpnn.cli.sweep import _render_heatmap  # the sweep's figure, without a sweep

    cells = [{"lr": lr, "m": m, "val_accuracy_mean": 0.5} for lr in (0.1, 1) for m in (0, 0.9)]
    args = argparse.Namespace(seeds=2, batch_size=32)
    assert _render_heatmap(cells, "64-16-10", args)[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()


def test_plot_needs_matplotlib_and_says_how_to_install(monkeypatch, capsys):
    from jbpnn import cli

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert cli.main(["train", "--epochs", "1", "--plot", "never.png"]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and 'pip install "jbpnn[plot]"' in err


# ---------------------------------------------------------------- layout
ROOT = Path(__file__).resolve().parents[1]


def test_import_jbpnn_loads_neither_the_cli_nor_matplotlib():
    code = (
        "import jbpnn, sys; "
        "assert 'matplotlib' not in sys.modules and 'jbpnn.cli' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('matplotlib', 'jbpnn.cli')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_argparse_only_in_the_cli_package():
    package = ROOT / "jbpnn"
    holders = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "import argparse" in path.read_text() and path.parent != package / "cli"
    )
    assert holders == []


def test_matplotlib_only_in_plots():
    package = ROOT / "jbpnn"
    holders = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "import matplotlib" in path.read_text()
    )
    assert holders == ["plots.py"]


def test_python_m_jbpnn_gradcheck_still_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "jbpnn.gradcheck", "--sizes", "4,3,2", "--batch", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "PASSED" in proc.stdout
    for bad in (["--bogus"], ["--sizes", "abc"], ["--seed", str(2**70)]):  # one line, exit 2
        proc = subprocess.run(
            [sys.executable, "-m", "jbpnn.gradcheck", *bad],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and proc.stdout == "", (bad, proc.stdout)
        assert proc.stderr.count("\n") == 1 and "error:" in proc.stderr, (bad, proc.stderr)
        assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr


# ---------------------------------------------------------------- in-process helpers
jbpnn = run_cli  # cli.main in this process: (exit status, stdout, stderr)


@pytest.fixture
def flowers(tmp_path, monkeypatch):
    """tmp_path as the working folder, holding flowers.csv (3 features, text classes)."""
    monkeypatch.chdir(tmp_path)
    X, names = write_flowers(tmp_path)
    return tmp_path, X, names


TRAIN_FLOWERS = ("train", "--data", "flowers.csv", "--target", "colour", "--hidden", "4")


def test_cli_in_process_leaves_the_compilation_cache_off(capsys, tmp_path, monkeypatch):
    import jax

    monkeypatch.chdir(tmp_path)
    before = jax.config.jax_compilation_cache_dir
    assert os.environ.get("JBPNN_NO_CACHE") == "1"  # tests/conftest.py, for the whole session
    assert jbpnn(capsys, "example", "--which", "textbook")[0] == 0
    assert jax.config.jax_compilation_cache_dir == before


# ---------------------------------------------------------------- predict by column name
def _train_flowers(capsys, *extra):
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, "--epochs", "200", "--lr", "0.3", *extra)
    assert rc == 0, err
    return out


def test_predict_matches_columns_by_name(capsys, flowers):
    d, X, names = flowers
    _train_flowers(capsys, "--save", "m.npz")
    (d / "ordered.csv").write_text("a,b,c\n" + "".join(f"{x[0]},{x[1]},{x[2]}\n" for x in X[:8]))
    (d / "shuffled.csv").write_text("c,a,b\n" + "".join(f"{x[2]},{x[0]},{x[1]}\n" for x in X[:8]))
    rc, ordered, err = jbpnn(capsys, "predict", "m.npz", "ordered.csv")
    assert rc == 0, err
    assert ordered.split() == names[:8].tolist()
    assert jbpnn(capsys, "predict", "m.npz", "shuffled.csv")[1] == ordered
    (d / "with_target.csv").write_text(
        "colour,c,b,a\n" + "".join(f"x,{x[2]},{x[1]},{x[0]}\n" for x in X[:8])
    )
    assert jbpnn(capsys, "predict", "m.npz", "with_target.csv")[1] == ordered
    (d / "wrong.csv").write_text("a,b,d\n1,2,3\n")
    rc, _, err = jbpnn(capsys, "predict", "m.npz", "wrong.csv")
    one_line_error(rc, err, "lacks the model's feature column(s) ['c']", "column(s) ['d']")
    (d / "nohead.csv").write_text("1,2\n3,4\n")
    rc, _, err = jbpnn(capsys, "predict", "m.npz", "nohead.csv")
    one_line_error(rc, err, "has 2 columns", "the model needs 3 features, or 4")


@pytest.mark.parametrize("missing", ["classes", "target_scaler"])
def test_model_metadata_missing_an_entry_is_one_line(capsys, flowers, missing):
    from jbpnn.io import load, save

    d, X, _ = flowers
    if missing == "classes":
        _train_flowers(capsys, "--save", "m.npz")
    else:
        (d / "reg.csv").write_text("a,y\n" + "".join(f"{i},{2.5 * i}\n" for i in range(30)))
        assert (
            jbpnn(capsys, "train", "--data", "reg.csv", "--epochs", "3", "--save", "m.npz")[0] == 0
        )
    params, meta = load("m.npz")
    del meta[missing]
    save("m.npz", params, **meta)
    (d / "rows.csv").write_text("a,b,c\n1,2,3\n" if missing == "classes" else "a\n1\n")
    rc, _, err = jbpnn(capsys, "predict", "m.npz", "rows.csv")
    one_line_error(rc, err, f"has no '{missing}'", "m.npz")


# ---------------------------------------------------------------- what is read is what is there
def test_numeric_looking_header_is_not_trained_on(capsys, flowers):
    from jbpnn.io import load

    d, X, names = flowers
    text = (d / "flowers.csv").read_text().replace("a,b,colour,c", "1,2,label,3", 1)
    (d / "numeric_header.csv").write_text(text)
    train = ("train", "--data", "numeric_header.csv", "--target", "label", "--hidden", "4")
    # numbers over numbers, a name found nowhere below over labels: header or data?
    rc, out, err = jbpnn(capsys, *train, "--epochs", "2")
    one_line_error(rc, err, "cannot tell whether the first row", "--header or --no-header")
    rc, out, err = jbpnn(capsys, *train, "--header", "--epochs", "2", "--save", "m.npz")
    assert rc == 0, err
    assert "numeric_header.csv (90 x 3)" in out  # 90 data rows, not 91
    meta = load("m.npz").metadata
    assert meta["feature_names"] == ["1", "2", "3"]
    assert meta["classes"]["classes"] == ["blue", "green", "red"]  # no class "label"


@pytest.mark.parametrize(
    "cell, message",
    [
        ("2023_01_05", "'2023_01_05' is not a number"),
        ("NaN", "'NaN' is a missing value"),
    ],
    ids=["underscores", "nan-label"],
)
def test_cells_that_would_change_the_data_are_refused(capsys, flowers, cell, message):
    d, _, _ = flowers
    lines = (d / "flowers.csv").read_text().splitlines()
    a, b, colour, c = lines[5].split(",")
    lines[5] = ",".join([cell, b, colour, c] if cell[0].isdigit() else [a, b, cell, c])
    (d / "bad.csv").write_text("\n".join(lines) + "\n")
    rc, _, err = jbpnn(
        capsys, "train", "--data", "bad.csv", "--target", "colour", "--save", "m.npz"
    )
    one_line_error(rc, err, "bad.csv, line 6", message)
    assert not (d / "m.npz").exists()


def test_semicolon_csv_is_read(capsys, flowers):
    d, _, _ = flowers
    (d / "semi.csv").write_text((d / "flowers.csv").read_text().replace(",", ";"))
    rc, out, err = jbpnn(
        capsys,
        "train",
        "--data",
        "semi.csv",
        "--target",
        "colour",
        "--hidden",
        "4",
        "--epochs",
        "2",
    )
    assert rc == 0, err
    assert "semi.csv (90 x 3)" in out


def test_regression_targets_near_1e300_give_a_finite_rmse(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(120, 2))
    y = (3 * x[:, 0] - 2 * x[:, 1]) * 1e300
    (tmp_path / "huge.csv").write_text(
        "x0,x1,y\n" + "".join(f"{a:.17g},{b:.17g},{t:.17g}\n" for (a, b), t in zip(x, y))
    )
    rc, out, err = jbpnn(
        capsys,
        "train",
        "--data",
        "huge.csv",
        "--activation",
        "tanh",
        "--hidden",
        "8",
        "--epochs",
        "200",
    )
    assert rc == 0, err
    rmse = float(out.split("test RMSE")[1].split()[0])
    assert np.isfinite(rmse) and 0 < rmse < 1e300  # y spreads about 2e300


def test_regression_with_a_cross_entropy_loss_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reg.csv").write_text("a,y\n" + "".join(f"{i},{0.37 * i}\n" for i in range(40)))
    for loss in ("cross_entropy", "binary_cross_entropy"):
        rc, out, err = jbpnn(
            capsys, "train", "--data", "reg.csv", "--task", "regression", "--loss", loss
        )
        one_line_error(rc, err, f"--loss {loss} cannot train a regression target", "mse")
        assert out == ""


def test_cross_entropy_targets_must_be_probabilities():
    from jbpnn.checks import check_targets

    check_targets("Y", "cross_entropy", np.eye(3))
    check_targets("Y", "mse", -np.ones((2, 1)))
    for loss in ("cross_entropy", "binary_cross_entropy"):
        with pytest.raises(ValueError, match=rf"Y: {loss} needs targets in \[0, 1\].*from -1"):
            check_targets("Y", loss, np.array([[-1.0, 1.0]]))


# ---------------------------------------------------------------- lost or clobbered files
def test_outputs_never_overwrite_inputs_or_each_other(capsys, flowers):
    d, _, _ = flowers
    data_before = (d / "flowers.csv").read_bytes()
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, "--save", "flowers.csv")
    one_line_error(rc, err, "--save flowers.csv is the command's input --data flowers.csv")
    assert out == "" and (d / "flowers.csv").read_bytes() == data_before
    rc, _, err = jbpnn(capsys, *TRAIN_FLOWERS, "--save", "x.out", "--plot", "./x.out")
    one_line_error(rc, err, "are the same file")
    _train_flowers(capsys, "--save", "m.npz")
    model_before = (d / "m.npz").read_bytes()
    for target in ("m.npz", "flowers.csv"):
        rc, _, err = jbpnn(capsys, "predict", "m.npz", "flowers.csv", "--out", target)
        one_line_error(rc, err, f"--out {target} is the command's input")
    assert (d / "m.npz").read_bytes() == model_before
    assert (d / "flowers.csv").read_bytes() == data_before


def test_symlink_is_followed_and_named(capsys, flowers):
    d, _, _ = flowers
    (d / "real.npz").write_bytes(b"old")
    (d / "link.npz").symlink_to(d / "real.npz")
    out = _train_flowers(capsys, "--epochs", "2", "--save", "link.npz")
    assert f"model link.npz (the symlink's target {d / 'real.npz'})" in out
    assert (d / "link.npz").is_symlink() and (d / "real.npz").read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("kind", ["read-only", "directory", "sys", "empty"])
def test_bad_targets_are_refused_before_training(capsys, flowers, kind):
    d, _, _ = flowers
    target = {
        "read-only": "ro.npz",
        "directory": ".",
        "sys": "/sys/m.npz",
        "empty": "",
    }[kind]
    if kind == "read-only":
        (d / "ro.npz").write_bytes(b"keep")
        (d / "ro.npz").chmod(0o444)
    if kind == "sys" and not os.path.isdir("/sys"):
        pytest.skip("no /sys")
    message = {
        "read-only": "read-only (mode 0444)",
        "directory": "is a directory",
        "sys": "does not take new files",
        "empty": "needs a file name",
    }[kind]
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, "--save", target)
    one_line_error(rc, err, message)
    assert out == ""  # refused before anything ran
    if kind == "read-only":
        assert (d / "ro.npz").read_bytes() == b"keep"


def test_special_files_are_refused():
    # checked, not run: a test must never risk replacing /dev/null (today's code would)
    from jbpnn.cli import CLIError
    from jbpnn.cli.files import check_outputs

    with pytest.raises(CLIError, match="--save /dev/null: it is a character device"):
        check_outputs({"--save": "/dev/null"})
    with pytest.raises(CLIError, match="--out /dev/null: it is a character device"):
        check_outputs({"--out": "/dev/null"}, {"MODEL": "m.npz"})


def test_full_disk_is_one_line_and_keeps_the_old_model(capsys, flowers, monkeypatch):
    import errno

    d, _, _ = flowers
    _train_flowers(capsys, "--epochs", "2", "--save", "m.npz")
    before = (d / "m.npz").read_bytes()
    real_write = os.write

    def full_disk(fd, data):
        if fd > 2:  # a file, not stdout/stderr
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    rc, _, err = jbpnn(capsys, *TRAIN_FLOWERS, "--epochs", "3", "--save", "m.npz")
    monkeypatch.undo()
    one_line_error(rc, err, "cannot write m.npz: No space left on device")
    assert (d / "m.npz").read_bytes() == before
    assert sorted(p.name for p in d.iterdir()) == ["flowers.csv", "m.npz"]  # no temp file


def test_a_failing_plot_writes_no_model(capsys, flowers, monkeypatch):
    pytest.importorskip("matplotlib")
    import jbpnn.plots as plots

    d, _, _ = flowers

    def broken(*args, **kwargs):
        raise RuntimeError("the renderer broke")

    monkeypatch.setattr(plots, "plot_history", broken)
    rc, _, err = jbpnn(
        capsys, *TRAIN_FLOWERS, "--epochs", "2", "--save", "m.npz", "--plot", "c.png"
    )
    one_line_error(rc, err, "RuntimeError: the renderer broke")
    assert not (d / "m.npz").exists() and not (d / "c.png").exists()


# ---------------------------------------------------------------- one line, never a traceback
def test_sweep_out_under_a_regular_file(capsys, flowers):
    rc, out, err = jbpnn(capsys, "sweep", "--quick", "--out", "flowers.csv/sweep")
    one_line_error(rc, err, "--out flowers.csv/sweep: lies under the file flowers.csv")
    assert out == ""


def test_the_bundled_digits_are_an_input_never_an_output(capsys, monkeypatch, tmp_path):
    """Without --data the input is the bundled digits.npz: --save or --plot onto it (a
    writable install) replaced it, exit 0, and every later run failed to read it."""
    import importlib
    import shutil

    from jbpnn.data import digits_path

    bundled = tmp_path / "digits.npz"  # a copy stands for the install's file
    shutil.copyfile(digits_path(), bundled)
    before = bundled.read_bytes()
    train_command = importlib.import_module("jbpnn.cli.train")
    monkeypatch.setattr(train_command, "digits_path", lambda: bundled)
    for flag in ("--save", "--plot"):
        rc, out, err = jbpnn(capsys, "train", "--epochs", "1", flag, str(bundled))
        one_line_error(rc, err, f"{flag} {bundled} is the command's input digits {bundled}")
    assert bundled.read_bytes() == before


def test_sweep_never_writes_the_bundled_digits_it_reads(capsys, tmp_path, monkeypatch):
    """A symlink named sweep.json in --out pointing at the bundled digits file: sweep
    (which, unlike train, did not count the digits as its input) replaced it with JSON."""
    import shutil

    from jbpnn import data

    bundled = tmp_path / "digits.npz"  # a copy stands for the install's file
    shutil.copyfile(data.digits_path(), bundled)
    before = bundled.read_bytes()
    monkeypatch.setattr(data, "digits_path", lambda: bundled)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").symlink_to(bundled)
    rc, _, err = jbpnn(capsys, "sweep", "--quick", "--no-plot", "--out", str(out))
    one_line_error(
        rc, err, f"sweep.json in --out {out / 'sweep.json'} is the command's input digits"
    )
    assert bundled.read_bytes() == before


def test_a_damaged_bundled_digits_file_is_an_error_naming_it(capsys, tmp_path, monkeypatch):
    """np.load's own message ("pickled (object) data ...") named no file."""
    from jbpnn import data

    damaged = tmp_path / "digits.npz"
    damaged.write_text('{"sweep": "json"}')
    monkeypatch.setattr(data, "digits_path", lambda: damaged)
    data._digits_raw.cache_clear()  # read again, from the damaged file
    try:
        with pytest.raises(data.DataError, match=f"bundled digits file {damaged} cannot be read"):
            data.load_digits()
        rc, _, err = jbpnn(capsys, "sweep", "--quick", "--no-plot", "--out", str(tmp_path / "s"))
        one_line_error(rc, err, "bundled digits file", "reinstall jbpnn")
    finally:
        monkeypatch.undo()
        data._digits_raw.cache_clear()


def test_sweep_batch_larger_than_its_split_is_refused_before_it_starts(capsys, flowers):
    rc, out, err = jbpnn(capsys, "sweep", "--quick", "--batch-size", "100000", "--no-plot")
    one_line_error(rc, err, "--batch-size 100000 is larger than the 1438 training examples")
    assert out == ""  # no header line announcing a sweep that cannot run


@pytest.mark.parametrize("command", ["train", "sweep", "demo", "gradcheck"])
def test_huge_seed_is_refused_as_the_api_refuses_it(capsys, command):
    from jbpnn.checks import as_key, check_seed

    rc, out, err = jbpnn(capsys, command, "--seed", str(2**70))
    one_line_error(rc, err, "--seed", "a seed must lie in 0 .. 2**32 - 1")
    for value in (2**70, 2**32, -1, 2**32 - 1, 0):  # one rule for the API and the CLI
        api_ok = cli_ok = True
        try:
            as_key(value)
        except ValueError:
            api_ok = False
        try:
            check_seed("s", value)
        except ValueError:
            cli_ok = False
        assert api_ok == cli_ok, value


@pytest.mark.parametrize("command", [["train", "--epochs", "2"], ["example"]])
def test_closed_pipe_exits_quietly(tmp_path, command):
    env = dict(os.environ, JBPNN_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jbpnn", *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and first
    assert err == "", err


def test_closed_pipe_still_saves(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "jbpnn", "train", "--epochs", "2", "--save", "m.npz"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0 and proc.stderr.read() == b""
    assert load(tmp_path / "m.npz").metadata["epochs_run"] == 2


# ---------------------------------------------------------------- options mean one thing
@pytest.mark.parametrize(
    "args, message",
    [
        (("--batch-size", "-3"), "--batch-size: the value must be an integer >= 0"),
        (("--hidden", "0"), "--hidden: item '0' of '0' is refused"),
        (("--hidden", ""), "--hidden: item '' of '' is not an integer >= 1"),
        (("--save", ""), "--save needs a file name"),
        (("--plot", ""), "--plot needs a file name"),
        (
            ("--optimizer", "adam", "--momentum", "0.5"),
            "--momentum applies to --optimizer momentum",
        ),
        (("--optimizer", "sgd", "--momentum-variant", "nesterov"), "--momentum-variant applies"),
        (("--epochs", "0"), "--epochs: the value must be an integer >= 1"),
        (("--lr", "-1"), "--lr"),
    ],
)
def test_bad_options_are_errors_not_silent_defaults(capsys, flowers, args, message):
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, *args)
    one_line_error(rc, err, message)
    assert out == ""


def test_hidden_none_is_the_explicit_linear_model(capsys, flowers):
    out = _train_flowers(capsys, "--hidden", "none", "--epochs", "2")
    assert "network: 3-3, softmax" in out


def test_n_iter_no_change_off_in_train_and_sweep(capsys, flowers, tmp_path):
    out = _train_flowers(capsys, "--epochs", "30", "--n-iter-no-change", "off")
    assert "stopped after 30 epochs: max_epochs" in out
    rc, out, err = jbpnn(
        capsys, "sweep", "--quick", "--no-plot", "--n-iter-no-change", "off", "--out", "s"
    )
    assert rc == 0, err
    assert "early stopping patience off" in out


@pytest.mark.parametrize("command", [("train",), ("sweep", "--quick", "--no-plot")])
def test_n_iter_no_change_zero_is_refused_as_the_api_refuses_it(capsys, flowers, command):
    # the API refuses n_iter_no_change=0 (ambiguous); the command line refuses it too
    rc, out, err = jbpnn(capsys, *command, "--n-iter-no-change", "0")
    assert rc == 2 and out == ""
    assert "--n-iter-no-change" in err and "0 is ambiguous" in err and "or off" in err
    with pytest.raises(ValueError, match="0 is ambiguous"):
        jbpnn_api.Stopping(n_iter_no_change=0)


def test_sweep_quick_keeps_explicit_options(capsys, flowers):
    rc, out, err = jbpnn(
        capsys,
        "sweep",
        "--quick",
        "--no-plot",
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--lrs",
        "0.1",
        "--out",
        "s",
    )
    assert rc == 0, err
    assert "1 learning rates x 2 momenta x 2 seeds = 4 networks 64-8-10" in out
    assert "up to 3 epochs" in out


def test_sweep_quick_never_overrides_any_option_given():
    # every option --quick sets (grid, budget, timing): a given value stays as given,
    # from the parsed command line (momenta and seeds included, not only the three above)
    import argparse

    from jbpnn.cli.sweep import QUICK, add_sweep_arguments, resolve_budget

    def build_parser():  # experiments/sweep.py's parser: jbpnn sweep's plus --timing-*
        return add_sweep_arguments(argparse.ArgumentParser())

    given = {
        "--lrs": "0.7",
        "--momenta": "0.25",
        "--seeds": "3",
        "--hidden": "5",
        "--epochs": "6",
        "--timing-networks": "7",
        "--timing-epochs": "8",
        "--timing-sequential": "9",
        "--timing-repeats": "2",
    }
    assert sorted(f.lstrip("-").replace("-", "_") for f in given) == sorted(QUICK)
    argv = ["--quick", *(x for kv in given.items() for x in kv)]
    args = resolve_budget(build_parser().parse_args(argv))
    assert isinstance(args, argparse.Namespace)
    assert (args.lrs, args.momenta) == ((0.7,), (0.25,))
    assert (args.seeds, args.hidden, args.epochs) == (3, 5, 6)
    timing = (args.timing_networks, args.timing_epochs, args.timing_sequential)
    assert timing + (args.timing_repeats,) == (7, 8, 9, 2)
    quick = resolve_budget(build_parser().parse_args(["--quick"]))
    assert all(getattr(quick, name) == value for name, value in QUICK.items())


def test_help_shows_every_default():
    import argparse

    from jbpnn.cli import HelpFormatter, build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        formatter = HelpFormatter(name)
        for action in sub._actions:
            plain_flag = action.nargs == 0 and action.default in (False, argparse.SUPPRESS)
            if not action.option_strings or plain_flag:
                continue  # positionals, --help, plain flags (off unless given)
            if "default" not in formatter._get_help_string(action):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


# ---------------------------------------------------------------- progress
def _infos(epochs=300, stop_at=29):
    infos = []
    for epoch in range(3, stop_at + 1, 3):
        infos.append(
            {
                "epoch": epoch,
                "epochs": epochs,
                "loss": 1.0 / epoch * (1 + epoch % 7),
                "val_loss": 12.3 / epoch,
                "elapsed": 2.0 + epoch / 100,
                "stop_reason": None,
            }
        )
    infos.append(dict(infos[-1], epoch=stop_at, stop_reason="no_validation_improvement"))
    return infos


def test_progress_fallback_fits_a_60_column_terminal(monkeypatch):
    import io
    import shutil

    from jbpnn.cli.progress import ProgressBar

    monkeypatch.setattr(
        shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((60, 24))
    )
    stream, screen = io.StringIO(), Screen(60)
    bar = ProgressBar(300, stream, use_tqdm=False)
    first = stream.getvalue()
    assert "compiling..." in first and "epoch 0/300" in first  # before the first chunk
    for info in _infos():
        before = len(stream.getvalue())
        bar(info)
        update = stream.getvalue()[before:]
        screen.feed(update)
        shown = update.rsplit("\r", 1)[-1].rstrip()
        assert screen.lines[screen.row].rstrip() == shown  # no stale characters left
    bar.close(29, "no_validation_improvement")
    screen.feed(stream.getvalue()[before:])
    assert not screen.wrapped and all(len(line) <= 59 for line in screen.lines)
    final = screen.lines[-2]
    assert "epoch 29/300" in final and "no_validation_improvement" in final
    assert stream.getvalue().endswith("\n")


def test_progress_line_shows_rate_and_eta_and_shrinks():
    from jbpnn.cli.progress import ProgressBar

    bar = ProgressBar(300, __import__("io").StringIO(), use_tqdm=False)
    infos = _infos()
    bar(infos[0])
    bar(infos[1])
    line = bar._line(200)
    assert "epoch/s" in line and "ETA" in line and line.startswith("[")
    narrow = bar._line(30)
    assert len(narrow) <= 30 and narrow.startswith("epoch 6/300")
    bar(infos[-1])
    assert "done: no_validation_improvement" in bar._line(60)
    # train_many's running count goes before the stop reason (it cut the reason off)
    many = ProgressBar(10, __import__("io").StringIO(), use_tqdm=False, networks=256)
    many({"epoch": 10, "epochs": 10, "loss": 0.5, "running": 3, "elapsed": 1.0})
    many.close(10, "max_epochs")
    assert many._line(30) == "epoch 10/10  done: max_epochs"
    # a shorter line after a longer one is padded over the old characters
    long_len = bar._shown
    bar._draw("x")
    assert bar.stream.getvalue().endswith("\rx" + " " * (long_len - 1))


def test_progress_uses_tqdm_when_installed(monkeypatch):
    import types

    calls = []

    class FakeTqdm:
        def __init__(self, **kw):
            self.n, self.total, self.kw = 0, kw["total"], kw
            calls.append(("init", kw["desc"]))

        def update(self, k):
            self.n += k

        def set_description(self, text, refresh=True):
            calls.append(("desc", text))

        def set_postfix_str(self, text, refresh=True):
            calls.append(("postfix", text))

        def close(self):
            calls.append(("close", self.n, self.total))

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))
    from jbpnn.cli.progress import ProgressBar, have_tqdm

    assert have_tqdm()
    bar = ProgressBar(300, __import__("io").StringIO())
    for info in _infos():
        bar(info)
    bar.close(29, "no_validation_improvement")
    assert calls[0] == ("init", "compiling...")
    assert ("desc", "done: no_validation_improvement") in calls
    assert calls[-1] == ("close", 29, 29)  # ends full, on the real last epoch


def test_train_and_sweep_show_progress(capsys, flowers):
    rc, _, err = jbpnn(capsys, *TRAIN_FLOWERS, "--epochs", "40", "--progress")
    assert rc == 0
    assert "compiling..." in err and err.endswith("\n")
    last = err.rstrip("\n").rsplit("\r", 1)[-1]
    assert "epoch" in last and "done:" in last
    rc, _, err = jbpnn(capsys, "sweep", "--quick", "--no-plot", "--out", "s", "--progress")
    assert rc == 0
    assert "compiling..." in err and "running" in err and "done:" in err


# ---------------------------------------------------------------- a run's settings, declared once
def _flag_type(command, flag):
    """The argparse type of ``jbpnn COMMAND FLAG``."""
    import argparse

    from jbpnn.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices[command]
    return next(a for a in sub._actions if flag in a.option_strings).type


@pytest.mark.parametrize(
    "command, flag, text, bad, expected",
    [
        ("train", "--hidden", "64,0", "0", "layer widths such as 64 or 64,32"),
        ("train", "--hidden", "64,x", "x", "layer widths such as 64 or 64,32"),
        ("sweep", "--lrs", "0.1,-1", "-1", "learning rates >= 0"),
        ("sweep", "--lrs", "0.1,fast", "fast", "learning rates >= 0"),
        ("sweep", "--momenta", "0.5,1.5", "1.5", "momenta m, 0 <= m < 1"),
        ("gradcheck", "--sizes", "4,0,2", "0", "at least two layer widths, input first"),
        ("gradcheck", "--sizes", "4,a", "a", "at least two layer widths, input first"),
    ],
)
def test_comma_lists_have_one_parser_one_error_type_one_message(
    capsys, command, flag, text, bad, expected
):
    # before: --hidden raised CLIError in cmd_train, --lrs/--momenta ValueError (argparse
    # then said only "invalid number_list value"), --sizes ArgumentTypeError; --momenta
    # took 1.5 (refused only once train_many ran)
    import argparse

    convert = _flag_type(command, flag)
    with pytest.raises(argparse.ArgumentTypeError) as info:
        convert(text)
    message = str(info.value)
    assert message.startswith(f"item {bad!r} of {text!r} is ")
    assert f"; expected {expected}" in message
    rc, out, err = jbpnn(capsys, command, flag, text)
    one_line_error(rc, err, f"argument {flag}: {message}")
    assert out == ""


def test_comma_list_too_short_and_spelled_values():
    import argparse

    too_few = r"^'4' has 1 item\(s\), too few; expected"
    with pytest.raises(argparse.ArgumentTypeError, match=too_few):
        _flag_type("gradcheck", "--sizes")("4")
    assert _flag_type("train", "--hidden")("None") == ()
    assert _flag_type("train", "--hidden")("64, 32") == (64, 32)
    assert _flag_type("sweep", "--lrs")("0,0.5") == (0.0, 0.5)  # lr 0 as momentum(0.0)


def _tiny_train(**kwargs):
    """jbpnn.train on 8 rows of a 3-2 network, one epoch unless said."""
    from jbpnn import init_params, sgd, train

    X = np.linspace(0, 1, 24, dtype=np.float32).reshape(8, 3)
    Y = np.eye(2, dtype=np.float32)[[0, 1] * 4]
    kwargs.setdefault("epochs", 1)
    train(init_params(0, (3, 2)), X, Y, optimizer=sgd(0.1), **kwargs)


def _split(fraction):
    from jbpnn import train_test_split

    train_test_split(np.zeros((10, 1)), np.arange(10) % 2, fraction)


def _every_optimizer(lr):
    from jbpnn import adam, momentum, sgd

    for make in (sgd, momentum, adam):
        make(lr)


def _api_table():
    """flag -> (command, how the flag's text becomes the API's value, the API call, values).

    The command line spells two API values its own way (jbpnn.cli.options): a batch
    size of 0 is batch_size=None, a validation fraction of 0 is no validation split.
    """
    from jbpnn import momentum, sgd
    from jbpnn.checks import as_key

    floats = ["-1", "-0.0", "0", "1e-3", "0.5", "0.999", "1", "1.5", "1e300", "nan", "inf"]
    ints = ["-1", "0", "1", "2", "4"]
    return {
        "--lr": ("train", float, _every_optimizer, floats),
        "--momentum": ("train", float, lambda v: momentum(0.1, m=v), floats),
        "--weight-decay": ("train", float, lambda v: sgd(0.1, weight_decay=v), floats),
        "--tol": ("train", float, lambda v: _tiny_train(tol=v), ["-1", "0", "0.5", "nan", "inf"]),
        "--min-weight-change": (
            "train",
            float,
            lambda v: _tiny_train(min_weight_change=v),
            ["-1", "0", "1e-3", "nan", "inf"],
        ),
        "--epochs": ("train", int, lambda v: _tiny_train(epochs=v), ["-1", "0", "1", "2"]),
        "--batch-size": ("train", int, lambda v: _tiny_train(batch_size=v or None), ints),
        "--validation-fraction": ("train", float, lambda v: v == 0 or _split(v), floats),
        "--test-fraction": ("train", float, _split, floats),
        "--seed": ("train", int, as_key, ["-1", "0", str(2**32 - 1), str(2**32)]),
        "--lrs": ("sweep", float, _every_optimizer, floats),
        "--momenta": ("sweep", float, lambda v: momentum(0.1, m=v), floats),
    }


@pytest.mark.parametrize("flag", list(_api_table()))
def test_numeric_flags_accept_and_refuse_what_the_api_does(capsys, flag):
    # before: --lr 0 was refused though momentum(0.0) is accepted; the fractions and
    # --momenta 1.5 were accepted by the parser and refused later, or by the library
    from jbpnn.cli import build_parser

    command, parse, api, values = _api_table()[flag]
    for text in values:
        try:
            api(parse(text))
            api_ok = True
        except (ValueError, TypeError) as e:
            api_ok, api_message = False, str(e)
        try:
            build_parser().parse_args([command, flag, text])
            cli_ok = True
        except SystemExit:
            cli_ok = False
        err = capsys.readouterr().err
        assert api_ok == cli_ok, (flag, text, "API" if api_ok else "CLI", "accepts")
        if not cli_ok:
            assert f"argument {flag}: " in err and err.count("\n") == 1, err
        if not api_ok and flag in ("--lr", "--momentum", "--weight-decay", "--lrs", "--momenta"):
            # the library's message, the argument's name replaced by the flag
            assert api_message.split(" must ", 1)[1] in err, (api_message, err)


def test_lr_zero_trains_as_the_api_does(capsys, flowers):
    out = _train_flowers(capsys, "--epochs", "2", "--lr", "0")
    assert "optimizer momentum (lr 0.0)" in out


def test_old_models_still_predict(capsys, flowers):
    # a model in the oldest layout jbpnn train wrote: no feature_names, target_name or
    # columns, the scores and source beside the record
    from jbpnn.io import save
    from jbpnn.network import predict
    from jbpnn.params import init_params

    d, X, names = flowers
    params = init_params(3, (3, 4, 3), "sigmoid", "cross_entropy")
    offset, scale = [-1.0, -0.5, -0.25], [6.0, 5.0, 4.0]
    meta = {
        "task": "classification",
        "scaler": {"kind": "minmax", "offset": offset, "scale": scale},
        "classes": {"kind": "label_encoder", "classes": ["blue", "green", "red"]},
        "source": "flowers.csv (90 x 3)",
        "train_accuracy": 0.5,
        "test_accuracy": 0.5,
    }
    save("old.npz", params, **meta)
    (d / "rows.csv").write_text("".join(f"{x[0]},{x[1]},{x[2]}\n" for x in X[:8]))
    rc, out, err = jbpnn(capsys, "predict", "old.npz", "rows.csv")
    assert rc == 0, err
    scaled = ((np.asarray(X[:8], np.float64) - offset) / scale).astype(np.float32)
    expected = np.array(["blue", "green", "red"])[np.argmax(predict(params, scaled), axis=1)]
    assert out.split() == expected.tolist()


def test_no_function_level_imports_in_the_cli():
    # before: 20 in cmd_train and its helpers alone; importing jbpnn.cli imports the
    # library anyway. tqdm stays lazy: it is optional (the fallback line without it).
    import ast

    lazy = []
    for path in sorted((ROOT / "jbpnn" / "cli").glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import):
                        lazy += [(path.name, fn.name, a.name) for a in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        lazy.append((path.name, fn.name, node.module))
    assert lazy == [("progress.py", "have_tqdm", "tqdm"), ("progress.py", "__init__", "tqdm")]


def test_cmd_train_is_stages_of_a_few_dozen_lines():
    # before: cmd_train was one function of 159 lines with 23 branches
    import ast

    tree = ast.parse((ROOT / "jbpnn" / "cli" / "train.py").read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    cmd = functions["cmd_train"]
    called = [
        node.func.id
        for node in ast.walk(cmd)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    stages = [name for name in dict.fromkeys(called) if name in functions]
    assert len(stages) >= 6, stages  # load, preprocessing, network, train, report, save
    for name in ["cmd_train", *stages]:
        fn = functions[name]
        assert fn.end_lineno - fn.lineno + 1 <= 50, (name, fn.end_lineno - fn.lineno + 1)
        assert ast.get_docstring(fn), name


# ---------------------------------------------------------------- full-batch optimizers
def test_lm_and_rprop_train_full_batch_from_the_command_line(capsys, flowers):
    rc, out, err = jbpnn(
        capsys, *TRAIN_FLOWERS, "--optimizer", "lm", "--loss", "mse", "--epochs", "30"
    )
    assert rc == 0, err
    assert "optimizer lm (full batch)" in out and "loss mse" in out
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, "--optimizer", "rprop", "--epochs", "30")
    assert rc == 0, err
    assert "optimizer rprop (full batch)" in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (
            ("--optimizer", "lm", "--lr", "0.1"),
            "--lr applies to --optimizer adam or momentum or sgd",
        ),
        (("--optimizer", "momentum", "--mu", "0.01"), "--mu applies to --optimizer br or lm only"),
        (  # adam's own `variant` let it through, and adam refused "classical" in its words
            ("--optimizer", "adam", "--momentum-variant", "classical"),
            "--momentum-variant applies to --optimizer momentum only, not adam: drop "
            "--momentum-variant or use --optimizer momentum",
        ),
        (("--optimizer", "rprop", "--batch-size", "8"), "rprop trains full batch"),
        (("--optimizer", "lm"), "needs loss 'mse'"),  # the flowers are classes: cross_entropy
    ],
)
def test_full_batch_optimizer_options_are_refused_in_one_line(capsys, flowers, extra, words):
    rc, out, err = jbpnn(capsys, *TRAIN_FLOWERS, "--epochs", "2", *extra)
    one_line_error(rc, err, words)


def test_gradcheck_errors_carry_the_command_prefix(capsys):
    """Its own checks printed "error: ..." without "jbpnn gradcheck: ", unlike every other."""
    rc, _, err = run_cli(capsys, "gradcheck", "--rtol", "nan")
    one_line_error(rc, err, "jbpnn gradcheck: error: ", "rtol")


def test_class_accuracy_is_that_of_the_labels_predict_prints():
    """binary_cross_entropy on a class table: the report used jbpnn.accuracy's multilabel
    rule (every output on its side of 0.5) and printed 0.0 where predict's labels, the
    largest output, were right."""
    import jbpnn
    from jbpnn.cli.train import _label_accuracy

    layers = [(np.array([[0.0, 0.0]]), np.array([0.4, 0.2]))]  # outputs 0.6, 0.55: both > 0.5
    params = jbpnn.MLP.from_layers(layers, ("sigmoid",), "binary_cross_entropy")
    X, labels = np.zeros((4, 1), np.float32), np.zeros(4, int)  # class 0: the largest output
    assert float(jbpnn.accuracy(params, X, np.eye(2)[labels])) == 0.0
    assert _label_accuracy(params, X, labels) == 1.0


def test_predict_refuses_no_header_on_an_npz_as_train_does(tmp_path, capsys):
    """predict --no-header DATA.npz was ignored silently (columns matched by the NPZ's
    names); train refuses it."""
    write_flowers(tmp_path)
    model = tmp_path / "m.npz"
    rc, _, err = run_cli(capsys, "train", "--data", tmp_path / "flowers.csv", "--target",
                         "colour", "--epochs", "1", "--save", model)  # fmt: skip
    assert rc == 0, err
    data = tmp_path / "d.npz"
    np.savez(data, X=np.ones((2, 4)))
    rc, _, err = run_cli(capsys, "predict", "--no-header", model, data)
    one_line_error(rc, err, "--header/--no-header apply to CSV files")


def test_predict_dash_is_not_a_file_name(tmp_path, capsys, monkeypatch):
    """--out - wrote a file named "-" (stdout is where predict prints without --out),
    and DATA - read that file back: both said, in one line."""
    write_flowers(tmp_path)
    model = tmp_path / "m.npz"
    rc, _, err = run_cli(capsys, "train", "--data", tmp_path / "flowers.csv", "--target",
                         "colour", "--epochs", "1", "--save", model)  # fmt: skip
    assert rc == 0, err
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "predict", model, tmp_path / "flowers.csv", "--out", "-")
    one_line_error(rc, err, "--out -: the predictions go to stdout without --out")
    rc, _, err = run_cli(capsys, "predict", model, "-")
    one_line_error(rc, err, "DATA -: predict reads a CSV or NPZ file, not stdin")
    assert not (tmp_path / "-").exists()


def test_a_threshold_flag_takes_off_as_its_messages_say(tmp_path, capsys):
    """--tol's error offered "or None", which the flag refused as not a number."""
    write_flowers(tmp_path)
    common = ("train", "--data", tmp_path / "flowers.csv", "--target", "colour", "--epochs", "1")
    rc, _, err = run_cli(capsys, *common, "--tol", "-1")
    one_line_error(rc, err, "finite number >= 0 or off")
    rc, _, err = run_cli(capsys, *common, "--tol", "off")
    assert rc == 0, err


def test_numeric_class_labels_are_stratified(tmp_path, capsys):
    """A CSV's 0/1 label column loads as floats, which the split took for a regression
    target: the minority class's test rows varied from 1 to 4 of 2 over seeds."""
    from jbpnn.cli.train import _split

    y = np.array([0.0] * 90 + [1.0] * 10)
    X = np.arange(100.0)[:, None]
    for seed in range(6):
        X_tr, X_te, y_tr, y_te = _split(X, y, 0.2, seed, "classification", "test")
        assert np.sum(y_te == 1) == 2 and np.array_equal(y[X_te[:, 0].astype(int)], y_te)
        assert sorted(np.concatenate([X_tr, X_te])[:, 0]) == list(range(100))
    rows = ["a,label"] + [f"{i},{i % 2}" for i in range(30)] + ["5,7"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    rc, _, err = run_cli(capsys, "train", "--data", tmp_path / "d.csv", "--epochs", 1)
    one_line_error(rc, err, "class 7 has a single row left for the test split")


def test_predict_names_a_stacked_model(tmp_path, capsys):
    """A file of 2 stacked networks was refused as 'the network has 2 inputs'."""
    from jbpnn.many import stack_params

    write_flowers(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--data", tmp_path / "flowers.csv", "--target", "colour",
                         "--hidden", 4, "--epochs", 2, "--save", tmp_path / "m.npz")  # fmt: skip
    assert rc == 0, err
    params, meta = load(tmp_path / "m.npz")
    jbpnn_api.save(tmp_path / "s.npz", stack_params([params, params]), **meta)
    rc, _, err = run_cli(capsys, "predict", tmp_path / "s.npz", tmp_path / "flowers.csv")
    one_line_error(rc, err, "s.npz holds 2 stacked networks")


@pytest.mark.parametrize("after", [0.3, 1.0])
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path, after):
    """A Ctrl-C while JAX loaded printed an import traceback, or was swallowed by JAX's
    garbage-collector callback and the run went on and replaced the --save file (exit 0)."""
    import signal
    import time

    original = b"the model from yesterday"
    (tmp_path / "m.npz").write_bytes(original)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.getenv("PYTHONPATH", "")]))
    run = subprocess.Popen(
        [sys.executable, "-m", "jbpnn", "train", "--epochs", "5000", "--save", "m.npz"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(after)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.decode().strip().splitlines() == ["jbpnn train: interrupted"], err
    assert (tmp_path / "m.npz").read_bytes() == original


def test_a_command_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path):
    """A shell starts a background job (``cmd &``) with SIGINT ignored, so that a Ctrl-C
    in the terminal leaves it running; the command set its own handler and stopped (130)."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.getenv("PYTHONPATH", "")]))
    run = subprocess.Popen(
        [sys.executable, "-m", "jbpnn", "train", "--epochs", "3000", "--save", "m.npz"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    for after in (0.3, 2.5):  # while JAX loads, and while the command trains (about 4 s)
        time.sleep(after)
        run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert (tmp_path / "m.npz").exists()


def test_ctrl_c_swallowed_by_a_gc_callback_still_stops_the_command(tmp_path):
    """A Ctrl-C whose KeyboardInterrupt Python raised inside a garbage-collector callback
    (JAX has one) was dropped with a 5-line "Exception ignored" traceback; the run went
    on, replaced the --save file and exited 0. The callback here delivers the signal
    inside itself, deterministically, once the command is running."""
    code = """if True:
        import gc, signal, sys
        from jbpnn.cli import main
        fired = []
        def training():
            frame = sys._getframe()
            while frame is not None and frame.f_code.co_name != "cmd_train":
                frame = frame.f_back
            return frame is not None
        def callback(phase, info):
            if not fired and training():
                fired.append(1)
                signal.raise_signal(signal.SIGINT)  # its handler runs in this callback
        gc.callbacks.append(callback)
        status = main(sys.argv[1:])
        assert fired, "no garbage collection during the command"
        sys.exit(status)
    """
    original = b"the model from yesterday"
    (tmp_path / "m.npz").write_bytes(original)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.getenv("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", code, "train", "--epochs", "3", "--save", "m.npz"],
        cwd=tmp_path, env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 130, run.stderr
    assert run.stderr.decode().strip().splitlines() == ["jbpnn train: interrupted"], run.stderr
    assert (tmp_path / "m.npz").read_bytes() == original


def test_options_are_never_abbreviated(tmp_path, capsys, monkeypatch):
    """--imp filled --import without importing the module, so the module went unprotected
    as an input: --save my_units.py overwrote it with the model (exit 0)."""
    write_flowers(tmp_path)
    monkeypatch.chdir(tmp_path)
    module = tmp_path / "my_units.py"
    module.write_text("X = 1\n")
    rc, _, err = run_cli(capsys, "train", "--data", "flowers.csv", "--target", "colour",
                         "--epochs", 1, "--imp", "my_units.py",
                         "--save", "my_units.py")  # fmt: skip
    one_line_error(rc, err, "jbpnn train: error: unrecognized arguments: --imp my_units.py")
    assert module.read_text() == "X = 1\n"
    rc, _, err = run_cli(capsys, "train", "--epoch", 1)
    one_line_error(rc, err, "jbpnn train: error: unrecognized arguments: --epoch 1")


def test_flag_values_and_leftovers_get_the_subcommands_one_line(tmp_path, capsys, monkeypatch):
    write_flowers(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--lr", "-1e-3")  # was "expected one argument"
    one_line_error(rc, err, "argument --lr: the value must be finite, at least 0.0; got -0.001")
    rc, _, err = run_cli(capsys, "train", "extra")  # was "jbpnn: error: ..."
    one_line_error(rc, err, "jbpnn train: error: unrecognized arguments: extra")
    rc, _, err = run_cli(capsys, "train", "--optimizer", "lm", "--mu", "0", "--data", "none.csv")
    one_line_error(rc, err, "argument --mu: mu must be > 0, got 0.0")  # before the data
    rc, _, err = run_cli(capsys, "train", "--data", "flowers.csv", "--target", "colour",
                         "--validation-fraction", 0, "--n-iter-no-change", 1)  # fmt: skip
    one_line_error(rc, err, "--n-iter-no-change watches the validation rows")
    rc, _, err = run_cli(capsys, "train", "--data", "flowers.csv", "--target", "colour",
                         "--epochs", 2, "--validation-fraction", 0)  # fmt: skip
    assert rc == 0, err  # the default patience needs no validation rows
    rc, _, err = run_cli(capsys, "sweep", "--quick", "--lrs", "0.1,0.1", "--no-plot")
    one_line_error(rc, err, "argument --lrs: 0.1 is given twice in '0.1,0.1'")


def test_an_interrupted_sweep_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """A Ctrl-C between the sweep's mkdir and its write left an empty --out folder."""
    import jbpnn.cli.sweep as sweep_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_cli, "write_files", interrupted)
    rc, _, err = run_cli(capsys, "sweep", "--quick", "--epochs", 1, "--seeds", 1, "--no-plot",
                         "--out", tmp_path / "new" / "out")  # fmt: skip
    assert rc == 130 and err.strip() == "jbpnn sweep: interrupted", err
    assert not (tmp_path / "new" / "out").exists()


def test_predict_prints_every_digit_of_a_regression_value(capsys, tmp_path, monkeypatch):
    """predict printed 6 significant digits: targets near 1e6 came out as 1e+06 or 999999,
    up to 0.5 off, where the model was within 1e-4."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(120, 2))
    y = 1e6 + 0.5 * X[:, 0] + 0.2 * X[:, 1]
    with open("prices.csv", "w") as f:
        f.write("a,b,price\n")
        f.writelines(
            f"{a!r},{b!r},{c!r}\n"
            for a, b, c in zip(X[:, 0].tolist(), X[:, 1].tolist(), y.tolist())
        )
    train = ("train", "--data", "prices.csv", "--hidden", "8", "--optimizer", "lm")
    rc, out, err = jbpnn(
        capsys, *train, "--epochs", "60", "--validation-fraction", "0", "--save", "m.npz"
    )
    assert rc == 0, err
    rc, out, err = jbpnn(capsys, "predict", "m.npz", "prices.csv")
    assert rc == 0, err
    predicted = np.array([float(v) for v in out.split()])
    assert len(predicted) == len(y) and np.max(np.abs(predicted - y)) < 0.05


def test_an_interrupted_command_ends_without_the_interpreters_shutdown(monkeypatch):
    """A Ctrl-C during a compilation left XLA's compiler threads running, and Python's
    shutdown beside them crashed after the message (exit 139 in 6 of 10 tries): the
    command ends with os._exit(130) once its output is flushed (the crash itself is timing
    dependent; this pins the mechanism)."""
    import jbpnn.__main__ as entry

    ended = []

    def fake_exit(status):
        ended.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(entry, "_cli_main", lambda argv: 130)
    monkeypatch.setattr(entry.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        entry.main(["train"])
    assert ended == [130]
    monkeypatch.setattr(entry, "_cli_main", lambda argv: 2)
    assert entry.main(["train"]) == 2 and ended == [130]  # other statuses return as before


def test_a_table_too_small_to_split_names_the_split(capsys, tmp_path, monkeypatch):
    """Two rows of a regression: "need at least 2 rows to split, got 1", naming neither
    the file's size nor which split."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "two.csv").write_text("a,y\n1,0.5\n2,1.5\n")
    rc, out, err = jbpnn(capsys, "train", "--data", "two.csv", "--epochs", "1")
    one_line_error(rc, err, "1 row left for the validation split: it needs at least 2")


def test_cli_warnings_are_one_line(capsys, monkeypatch):
    """A warning (e.g. the compilation cache's, of a folder writable by others) was
    Python's two lines from the CLI: the file and line of jbpnn's code, then that code."""
    import warnings

    from jbpnn import cli

    def warn(args):
        warnings.warn("something to say", UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(cli, "_run_command", warn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc, _, err = run_cli(capsys, "gradcheck")
    assert rc == 0 and err == "jbpnn gradcheck: warning: something to say\n", err


# ---------------------------------------------------------------- red-team round 3: CSV input
def test_a_headerless_first_row_of_a_rare_class_is_refused_then_read_with_no_header(
    capsys, flowers
):
    """jbpnn train on a headerless file whose first row's class occurs once reported 89
    rows of 90: that row was the header, the features named '0.1891', ..."""
    d, X, names = flowers
    rows = (d / "flowers.csv").read_text().splitlines()[1:]
    a, b, _, c = rows[0].split(",")
    (d / "nohead.csv").write_text("\n".join([f"{a},{b},bird,{c}", *rows[1:]]) + "\n")
    train = ("train", "--data", "nohead.csv", "--target", "2", "--hidden", "4", "--epochs", "2")
    rc, _, err = jbpnn(capsys, *train)
    one_line_error(rc, err, "cannot tell whether the first row (line 1", "--no-header")
    rc, out, err = jbpnn(capsys, *train, "--no-header")  # 90 rows: its one bird is refused
    one_line_error(rc, err, "class 'bird' has a single row left for the test split")
    _train_flowers(capsys, "--save", "m.npz")  # predict with a model that names its columns
    rc, _, err = jbpnn(capsys, "predict", "m.npz", "nohead.csv")
    one_line_error(rc, err, "is a header or data", "jbpnn predict: --header or --no-header")
    rc, out, err = jbpnn(capsys, "predict", "m.npz", "nohead.csv", "--no-header")
    assert rc == 0 and len(out.split()) == 90, err


def test_delimiter_option_reads_and_is_refused_where_it_cannot_apply(capsys, flowers):
    """The hint of a single-column CSV told a command-line user to "pass delimiter=';'",
    an argument the command line did not have."""
    d, _, names = flowers
    text = (d / "flowers.csv").read_text()
    (d / "semi.tsv").write_text(text.replace(",", ";"))  # a .tsv is read with tabs
    train = ("train", "--data", "semi.tsv", "--target", "colour", "--hidden", "4", "--epochs", "2")
    rc, _, err = jbpnn(capsys, *train)
    one_line_error(rc, err, "is the file delimited by ';'? Say so", "--delimiter ';' to jbpnn")
    rc, out, err = jbpnn(capsys, *train, "--delimiter", ";", "--save", "m.npz")
    assert rc == 0 and "semi.tsv (90 x 3)" in out, err
    (d / "rows.txt.tsv").write_text(text.replace(",", "|"))
    rc, out, err = jbpnn(capsys, "predict", "m.npz", "rows.txt.tsv", "--delimiter", "|")
    assert rc == 0 and len(out.split()) == 90, err
    (d / "tabs.csv").write_text(text.replace(",", "\t"))
    rc, out, err = jbpnn(capsys, "predict", "m.npz", "tabs.csv", "--delimiter", "tab")
    assert rc == 0 and len(out.split()) == 90, err
    rc, _, err = jbpnn(capsys, *train, "--delimiter", ";;")
    one_line_error(rc, err, "argument --delimiter: the delimiter must be one character")
    np.savez(d / "d.npz", X=np.ones((4, 2)), y=np.arange(4) % 2)
    for command in (("train", "--data", "d.npz"), ("predict", "m.npz", "d.npz")):
        rc, _, err = jbpnn(capsys, *command, "--delimiter", ";")
        one_line_error(rc, err, "--delimiter applies to CSV files; an NPZ has no delimiter")


def test_a_ragged_semicolon_csv_names_its_line(capsys, flowers):
    d, _, _ = flowers
    lines = (d / "flowers.csv").read_text().replace(",", ";").splitlines()
    lines[5] += ";9.9"
    (d / "semi.csv").write_text("\n".join(lines) + "\n")
    rc, _, err = jbpnn(capsys, "train", "--data", "semi.csv", "--target", "colour")
    one_line_error(rc, err, "semi.csv, line 6: has 5 fields, expected 4 (as in the header")


def test_a_forced_classification_of_a_continuous_target_says_how_many_values(capsys, tmp_path):
    """--task classification on a continuous target said only "class -4.58176 has a single
    row left for the test split"."""
    rows = [f"{i},{i * 0.37 - 4:.5f}" for i in range(40)]
    (tmp_path / "reg.csv").write_text("a,y\n" + "\n".join(rows) + "\n")
    rc, _, err = run_cli(
        capsys, "train", "--data", tmp_path / "reg.csv", "--task", "classification"
    )
    one_line_error(
        rc,
        err,
        "has a single row left for the test split",
        "the target 'y' has 40 distinct values in 40 rows, each a class with --task "
        "classification: for a continuous target use --task regression",
    )


# ---------------------------------------------------------------- red-team pass 7: sweep
def test_sweep_without_a_heatmap_removes_the_earlier_one(capsys, flowers):
    """A second run with --no-plot left the first run's heatmap.png beside the new CSV."""
    out = flowers[0] / "s"
    out.mkdir()
    (out / "heatmap.png").write_bytes(b"an earlier sweep's figure")
    rc, stdout, _ = jbpnn(capsys, "sweep", "--quick", "--epochs", "1", "--no-plot", "--out", "s")
    assert rc == 0 and "removed" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.json"]
    rc, stdout, _ = jbpnn(capsys, "sweep", "--help")
    assert "replaced" in " ".join(stdout.split())


def test_sweep_checks_every_range_before_its_header_line(capsys, flowers):
    """--epochs past int32 failed after the header line announcing the sweep."""
    rc, out, err = jbpnn(capsys, "sweep", "--quick", "--no-plot", "--epochs", "9" * 20)
    one_line_error(rc, err, "--epochs must be an integer from 1 to 2147483647")
    assert out == "" and not (flowers[0] / "sweep").exists()

"""End-to-end tests of the jbpnn command, through subprocesses on small data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jbpnn.io import load

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, JBPNN_CACHE_DIR=str(cwd / "cache"))
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


def test_train_save_predict_round_trip_with_categorical_target(workdir):
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
    pred_with_target = run("predict", "model.npz", "flowers.csv", cwd=workdir).stdout.split()
    assert pred_with_target[:6] == expected
    run("predict", "model.npz", "rows.csv", "--out", "p.txt", cwd=workdir)
    assert (workdir / "p.txt").read_text().split() == expected


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
def test_bad_csv_messages(workdir, content, message):
    name = "missing.csv" if content is None else "bad.csv"
    if content is not None:
        (workdir / name).write_text(content)
    proc = run("train", "--data", name, "--save", "never.npz", cwd=workdir, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
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
def test_help(workdir, command):
    out = run(*([command] if command else []), "--help", cwd=workdir).stdout
    assert "usage: jbpnn" in out and "example:" in out


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
def test_bench_subcommand_was_removed_and_says_what_to_run(workdir, args):
    proc = run("bench", *args, cwd=workdir, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
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

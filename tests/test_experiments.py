"""The small experiments run as scripts, in subprocesses (the larger ones have their own tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_article_demos_match_the_article(tmp_path):
    proc = _run(str(EXPERIMENTS / "article_demos.py"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the list matches the article's: yes" in proc.stdout


def test_xor_quick(tmp_path):
    proc = _run(
        str(EXPERIMENTS / "xor.py"), "--quick", "--out", str(tmp_path / "x.png"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x1  x2 | target  output" in proc.stdout


def test_progress_overhead_quick(tmp_path):
    # the figure itself is the experiment's to report (README), never a timed assertion
    proc = _run(str(EXPERIMENTS / "progress_overhead.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("train ", "train_many x4"):
        assert any(
            line.strip().startswith(name) and "overhead" in line
            for line in proc.stdout.splitlines()
        ), proc.stdout
    assert "largest overhead" in proc.stdout
    # a smoke test: no verdict on the 5% bar from 5 epochs
    assert "quick run: no verdict" in proc.stdout and "the 5% bar" not in proc.stdout


def test_second_order_quick(tmp_path):
    # LM against adam, autodiff and SciPy; the figures are the README's, never asserted on time
    proc = _run(str(EXPERIMENTS / "second_order.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    lm = [line for line in lines if line.split()[-5:-4] == ["lm"] or " lm " in line]
    assert lm and not any("did not reach it" in line for line in lm), proc.stdout
    assert any("J^T J agree to" in line for line in lines), proc.stdout
    # the SciPy row: a speed-up where jbpnn reached SciPy's SSE within 1%, else MISSED with
    # its stop reason and no ratio (float32 rounding decides it on the sin task)
    scipy = [line for line in lines if line.startswith("sin 1-10-1") and "SSE" not in line]
    assert any(
        re.search(r"\d+\.\dx  \(loss_below_tol\)$", line)
        or re.search(r"MISSED  \(stopped on \w+, .* no speed-up\)$", line)
        for line in scipy
    ), proc.stdout
    assert "train_many" in proc.stdout


def test_curvature_quick(tmp_path):
    # hand H v and G v against autodiff's; the times are the README's, never asserted on
    proc = _run(str(EXPERIMENTS / "curvature.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line[:30].strip(): line.split() for line in proc.stdout.splitlines()}
    for name in ("hand H v (R-operator)", "hand G v (Gauss-Newton)"):
        assert name in rows, proc.stdout
        assert float(rows[name][-1]) < 1e-5, proc.stdout  # agrees with autodiff (float32)
    assert "autodiff H v (jvp of grad)" in rows and "wide:" not in proc.stdout


def test_conventions_exact_equivalents_agree_and_the_built_ins_differ(tmp_path):
    # the README's "Differences" table: each one-line optax equivalent reproduces jbpnn's
    # epoch losses to float32 rounding, and the closest built-in differs (2 epochs here)
    proc = _run(str(EXPERIMENTS / "conventions.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    diff = {line[33:79].strip(): float(line.split()[-1]) for line in proc.stdout.splitlines()[2:-1]}
    for exact in (
        "chain(scale_by_schedule(-sched), trace(0.9))",
        "optax.sgd(0.1, momentum=0.9)",
        "optax.sgd(0.1, 0.9, nesterov=True)",
        "chain(add_decayed_weights(1e-2), adam(1e-3))",
    ):
        assert diff[exact] < 2e-5, proc.stdout
    assert diff["optax.sgd(schedule, momentum=0.9)"] > 1e-3, proc.stdout
    assert diff["optax.adamw(1e-3, weight_decay=1e-2)"] > 1e-3, proc.stdout


def test_cold_start_quick(tmp_path):
    # the first call's compilations; timings are the experiment's to report, never asserted
    proc = _run(str(EXPERIMENTS / "cold_start.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = next(line for line in proc.stdout.splitlines() if line.strip().startswith("jbpnn "))
    assert first.split()[3] == "1", proc.stdout  # one compilation in the first train call


def test_core_targets_quick(tmp_path):
    # (f) only: train_many vs the vmapped core (and equinox + optax where installed) and
    # N x train, with GFLOP/s against the measured peak; the figures are never asserted on
    proc = _run(str(EXPERIMENTS / "core_targets.py"), "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "of peak" in proc.stdout and "16 x train vs train_many" in proc.stdout, proc.stdout
    # ... and the same against train_many on one CPU device per core, in a fresh process
    assert re.search(r"16 x train vs train_many, \d+ dev", proc.stdout), proc.stdout
    # a smoke test against the full run's targets: no verdicts
    assert "quick run: no verdict" in proc.stdout, proc.stdout
    assert not re.search(r"\b(MET|MISSED)\b", proc.stdout), proc.stdout


def test_bad_values_of_the_scripts_flags_are_argparse_errors(tmp_path):
    # --repeats 0 ended in statistics.StatisticsError (or printed a table of nan, exit 0),
    # --processes 0 in max() of an empty sequence; article_demos ran on --help or a typo
    for script, args, what in (
        ("curvature.py", ["--no-wide", "--repeats", "0"], r"--repeats: .*integer >= 1, got 0"),
        ("distributed.py", ["--processes", "0"], r"--processes: .*integer >= 1, got 0"),
        ("article_demos.py", ["--bogus"], "unrecognized arguments: --bogus"),
    ):
        proc = _run(str(EXPERIMENTS / script), *args, cwd=tmp_path)
        assert proc.returncode == 2 and re.search(what, proc.stderr), (script, proc.stderr)


def test_the_scripts_refuse_their_outputs_before_running(tmp_path):
    """Outputs written with savefig / write_text / os.replace: a read-only file was
    replaced, a file as a folder or --out-dir was a traceback after the whole run, and
    sweep.py printed a traceback for what `jbpnn sweep` says in one line; unchecked
    numbers (--torch-threads 0, --timeout inf, --wide-rows 0, --block 0) ran or crashed.
    Each is now one line on stderr, exit status 2, before any work."""
    (tmp_path / "afile").write_text("x")
    read_only = tmp_path / "ro.json"
    read_only.write_text("{}")
    read_only.chmod(0o444)
    for script, args, what in (
        ("bench.py", ["--quick", "--out", "ro.json"], r"ro.json: the file is read-only"),
        ("bench.py", ["--out", "afile/x.json"], r"its folder \(afile is a file, not a folder\)"),
        ("bench.py", ["--torch-threads", "0"], r"--torch-threads: .*integer >= 1, got 0"),
        ("xor.py", ["--quick", "--out", "afile/x.png"], r"afile is a file, not a folder"),
        ("xor.py", ["--quick", "--out", "adir/"], r"adir/: a path ending in '/' names a folder"),
        ("autodiff_comparison.py", ["--quick", "--out-dir", "afile"], r"afile is a file"),
        ("gpu_check.py", ["--quick", "--out", "ro.json"], r"ro.json: the file is read-only"),
        ("sweep.py", ["--quick", "--out", "afile"], r"^sweep.py: error: --out afile: is a file"),
        ("distributed.py", ["--timeout", "inf"], r"--timeout: must be a finite number > 0"),
        ("curvature.py", ["--wide-rows", "0"], r"--wide-rows: .*integer >= 1, got 0"),
        ("jacobian_speed.py", ["--block", "0"], r"--block: .*integer >= 1, got 0"),
    ):
        proc = _run(str(EXPERIMENTS / script), *args, cwd=tmp_path)
        assert proc.returncode == 2, (script, args, proc.stdout[-500:], proc.stderr[-2000:])
        assert re.search(what, proc.stderr, re.M), (script, proc.stderr)
        assert "Traceback" not in proc.stderr, (script, proc.stderr)
    assert read_only.read_text() == "{}" and not (read_only.stat().st_mode & 0o222)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ro.json"]  # no litter

"""The benchmark's quick mode: every contender does the same work (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import bench  # noqa: E402
from pure_python_bpnn import DEMO_TEST, DEMO_TRAIN, PureBPNN  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    """One run of ``bench.py --quick`` in a fresh process; its exit status and JSON."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.exists(), proc.stderr[-3000:]
    return {"rc": proc.returncode, "stdout": proc.stdout, "json": json.loads(out.read_text())}


def _checks(quick: dict, contender: str) -> list[dict]:
    return [c for c in quick["json"]["checks"] if c["contender"] == contender]


def test_quick_exits_zero_and_every_check_passes(quick):
    bad = [c for c in quick["json"]["checks"] if not c["ok"]]
    assert not bad, bad
    assert quick["rc"] == 0, quick["stdout"][-3000:]
    assert "Loss agreement" in quick["stdout"] and "Targets" in quick["stdout"]


@pytest.mark.parametrize(
    "contender, tasks",
    [
        ("jax.grad loop (same train)", {"digits", "wide", "online"}),
        ("numpy (hand backprop)", {"digits", "wide", "online"}),
        ("pure Python (article loop)", {"online (pure-Python subset)"}),
        ("pure Python BPNN (float64)", {"tiny (article momentum)"}),
    ],
)
def test_core_contenders_agree_with_jbpnn(quick, contender, tasks):
    checks = _checks(quick, contender)
    assert {c["task"] for c in checks} == tasks
    for c in checks:
        assert c["rel_diff"] <= 1e-4, c


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed (pip install 'jbpnn[bench]')")
def test_torch_agrees_with_jbpnn(quick):
    checks = _checks(quick, "pytorch eager")
    assert {c["task"] for c in checks} == {"digits", "wide", "online"}
    assert all(c["ok"] for c in checks), checks


@pytest.mark.skipif(
    not HAS_SKLEARN, reason="scikit-learn not installed (pip install 'jbpnn[bench]')"
)
def test_sklearn_agrees_with_jbpnn_on_log_loss(quick):
    (check,) = _checks(quick, "scikit-learn MLPClassifier")
    assert check["task"] == "digits (log-loss)" and check["reference"] == "jbpnn train (log-loss)"
    assert check["ok"], check


def test_quick_json_has_every_task_and_target(quick):
    data = quick["json"]
    for task in ("digits", "wide", "online"):
        row = data[task]["rows"][0]
        assert row["contender"] == "jbpnn train"
        assert row["epoch_ms"] > 0 and row["samples_per_s"] > 0
        assert np.isfinite(row["final_loss"])
    assert data["wide"]["matmul_peak_gflops"]["jax"] > 0
    tiny = data["tiny"]["rows"]
    assert {"import jax (bare)", "jbpnn, cache warm", "pure Python demo"} <= set(tiny)
    # the warm child's demo result: the article's separation of the two patterns
    assert len(tiny["jbpnn, cache warm"]["outputs"]) == len(DEMO_TEST)
    assert len(data["targets"]) == 7


def test_a_contender_that_does_other_work_fails_the_run(monkeypatch, tmp_path):
    """NumPy with a learning rate off by 1% must be caught, and the exit status be 1."""
    real = bench.run_numpy

    def off(problem):
        return real(bench.Problem(**{**problem.__dict__, "lr": problem.lr * 1.01}))

    monkeypatch.setattr(bench, "run_numpy", off)
    argv = ["--quick", "--tasks", "online", "--skip", "jax.grad,torch,sklearn,python"]
    assert bench.main([*argv, "--out", str(tmp_path / "b.json")]) == 1
    (check,) = json.loads((tmp_path / "b.json").read_text())["checks"]
    assert check["contender"] == "numpy (hand backprop)" and not check["ok"]


def test_rel_diff():
    assert bench.rel_diff([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert bench.rel_diff([1.0, 2.2], [1.0, 2.0]) == pytest.approx(0.1)
    assert bench.rel_diff([1.0], [1.0, 2.0]) == float("inf")  # a run cut short never agrees


def test_pure_python_step_equals_jbpnn_backward():
    """One online step of the pure-Python BPNN (no momentum) on the textbook's 3-2-1 example."""
    import jax

    from jbpnn.network import backward, forward
    from jbpnn.oracles import TEXTBOOK_3_2_1 as ex
    from jbpnn.params import MLP

    with jax.enable_x64(True):
        params = MLP.from_layers(ex["layers"], dtype=np.float64)
        _, cache = forward(params, np.array(ex["x"], np.float64))
        grads = backward(params, cache, np.array(ex["y"], np.float64))
        expected = [
            (
                np.asarray(p.w) - ex["lr"] * np.asarray(g.w),
                np.asarray(p.b) - ex["lr"] * np.asarray(g.b),
            )
            for p, g in zip(params.layers, grads.layers)
        ]
    for rule in ("article", "classical"):
        net = PureBPNN(3, 1, lr=ex["lr"], m=0.0, momentum=rule, layers=ex["layers"])
        net.update(ex["x"])
        net.backpropagate(ex["y"])
        for (w, b), (ew, eb) in zip(zip(net.w, net.b), expected):
            np.testing.assert_allclose(w, ew, rtol=1e-12)
            np.testing.assert_allclose(b, eb, rtol=1e-12)
    # the textbook's rounded figures (ARTICLE.md section 2): w46 -0.261, theta6 0.218
    assert net.w[1][0][0] == pytest.approx(-0.261, abs=5e-4)
    assert net.b[1][0] == pytest.approx(0.218, abs=5e-4)


def test_pure_python_momentum_rules_differ_as_documented():
    """Two identical steps: article w += lr c + m c_prev; classical v = m v + lr c."""
    layers = [([[0.5]], [0.0])]
    nets = {
        r: PureBPNN(1, 1, lr=0.5, m=0.5, momentum=r, layers=layers)
        for r in ("article", "classical")
    }
    for net in nets.values():
        for _ in range(2):
            net.update([1.0])
            net.backpropagate([1.0])
    assert nets["article"].w[0][0][0] != pytest.approx(nets["classical"].w[0][0][0], abs=1e-6)


def test_pure_python_demo_data_is_the_articles():
    from jbpnn.oracles import DEMO_TEST as J_TEST
    from jbpnn.oracles import DEMO_TRAIN as J_TRAIN

    assert DEMO_TRAIN == J_TRAIN and DEMO_TEST == J_TEST


def test_pure_python_length_errors():
    net = PureBPNN(5, 1)
    with pytest.raises(ValueError, match="Your data length is 4, but our input needs 5"):
        net.update([1, 0, 1, 0])
    net.update([1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="Your target length is 2, but our output needs 1"):
        net.backpropagate([1, 0])


@pytest.mark.parametrize("argv", [["--tasks", "digits,foo"], ["--skip", "torch,bar"]])
def test_bad_arguments_name_what_is_wrong(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert ("foo" if "--tasks" in argv else "bar") in capsys.readouterr().err


def test_the_script_takes_the_arguments_jbpnn_bench_took():
    """``jbpnn bench`` is gone; ``python experiments/bench.py ARGS`` is the way to run it."""
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "bench.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--quick" in proc.stdout

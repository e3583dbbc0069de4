"""Progress through the public surfaces (``jbpnn train/sweep --progress``, ``train_many``).

The unit tests of ``jbpnn.cli.progress.ProgressBar`` in test_cli.py cannot run on
code without that class; these go through the command and the API, so they state the
behaviour itself: the line fits a 60-column terminal and leaves no stale characters,
shows rate and ETA, ends on the real last epoch and the stop reason, uses tqdm when it
is installed, and train_many/sweep report progress too.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import Screen, write_flowers

FAKE_TQDM = """
bars = []
class tqdm:
    def __init__(self, total=None, file=None, **kw):
        self.n, self.total, self.file = 0, total, file
    def update(self, k=1):
        self.n += k
    def set_description(self, *a, **k):
        pass
    def set_postfix_str(self, *a, **k):
        pass
    def refresh(self, *a, **k):
        pass
    def close(self):
        import sys
        sys.stderr.write(f"FAKE_TQDM closed n={self.n} total={self.total}\\n")
"""


def jbpnn(cwd, *args: str, columns: int = 200, tqdm: str = "absent"):
    """``python -m jbpnn args`` in ``cwd`` with a ``columns``-wide terminal.

    ``tqdm``: "absent" (import tqdm fails: the fallback line) or "fake" (a stand-in
    tqdm that reports how it was closed).
    """
    shim = cwd / "shim"
    shim.mkdir(exist_ok=True)
    if tqdm == "fake":
        (shim / "tqdm.py").write_text(FAKE_TQDM)
    else:
        (shim / "tqdm.py").write_text("raise ImportError('no tqdm in this test')\n")
    env = dict(os.environ, COLUMNS=str(columns), LINES="24", JBPNN_NO_CACHE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-m", "jbpnn", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=300,
    )  # bytes: keep every \r
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.fixture
def flowers(tmp_path):
    write_flowers(tmp_path)
    return tmp_path


# early stopping fires well before the 300 epochs (at 57 on this data)
EARLY_STOP = (
    "train",
    "--data",
    "flowers.csv",
    "--target",
    "colour",
    "--hidden",
    "4",
    "--epochs",
    "300",
    "--lr",
    "0.1",
    "--n-iter-no-change",
    "5",
    "--progress",
)


def _stopped(out: str) -> tuple[int, str]:
    m = re.search(r"stopped after (\d+) epochs: (\w+)", out)
    assert m, out
    return int(m.group(1)), m.group(2)


def test_train_progress_fits_60_columns_without_stale_characters(flowers):
    rc, out, err = jbpnn(flowers, *EARLY_STOP, columns=60)
    assert rc == 0, err
    screen = Screen(60)
    for update in re.split(r"(?=\r)", err):
        screen.feed(update)
        written = update.lstrip("\r").rstrip("\n").rstrip()
        if written and not screen.wrapped:
            assert screen.lines[screen.row - update.endswith("\n")].rstrip() == written, update
    assert not screen.wrapped, err  # the terminal never wrapped: no new line per update
    assert all(len(line) <= 59 for line in screen.lines)
    epochs, reason = _stopped(out)
    final = [line for line in screen.lines if line.strip()][-1]
    assert f"epoch {epochs}/300" in final and reason in final, final


def test_train_progress_shows_rate_eta_and_ends_on_the_real_stop(flowers):
    rc, out, err = jbpnn(flowers, *EARLY_STOP)
    assert rc == 0, err
    epochs, reason = _stopped(out)
    assert reason == "no_validation_improvement" and epochs < 300
    updates = [u for u in err.split("\r") if u.strip()]
    last = updates[-1]  # ends on the real last epoch and says why it stopped
    assert last.endswith("\n") and f"epoch {epochs}/300" in last and reason in last, last
    assert any("epoch/s" in u and "ETA" in u for u in updates), updates  # rate and time left
    assert "compiling" in updates[0]  # the compilation phase is shown


def test_train_progress_uses_tqdm_when_installed(flowers):
    rc, out, err = jbpnn(flowers, *EARLY_STOP, tqdm="fake")
    assert rc == 0, err
    epochs, _ = _stopped(out)
    closed = re.findall(r"FAKE_TQDM closed n=(\d+) total=(\d+)", err)
    assert closed, err  # the command drew with tqdm
    assert closed == [(str(epochs), str(epochs))], closed  # ends full, on the real last epoch


def test_train_many_reports_progress():
    from jbpnn.many import InitSpec, train_many

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    calls = []
    result = train_many(
        InitSpec((3, 4, 2), "sigmoid", "cross_entropy", "glorot"),
        X,
        Y,
        seeds=[0, 1, 2],
        hparams={"lr": [0.1, 0.2, 0.3], "m": 0.9},
        epochs=30,
        progress=calls.append,
    )
    assert calls, "train_many called progress"
    assert {"epoch", "epochs", "running", "elapsed"} <= set(calls[-1])
    assert calls[-1]["epoch"] == int(np.max(result.epochs_run)) and calls[-1]["epochs"] == 30


def test_sweep_shows_progress(tmp_path):
    rc, _, err = jbpnn(tmp_path, "sweep", "--quick", "--no-plot", "--out", "s", "--progress")
    assert rc == 0, err
    updates = [u for u in err.split("\r") if u.strip()]
    assert "compiling" in updates[0] and len(updates) >= 2, err
    assert "running" in err and "done:" in updates[-1], err


def _run_on_a_pty(cwd, args, columns: int) -> tuple[int, str, str]:
    """``python -m jbpnn args``: stderr on a ``columns``-wide pseudo-terminal, stdout a pipe
    (as in ``jbpnn train ... > log.txt``). Returns (exit status, stdout, what the tty got)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["JBPNN_NO_CACHE"] = "1"
    shim = cwd / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "tqdm.py").write_text("raise ImportError('no tqdm in this test')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen(
        [sys.executable, "-m", "jbpnn", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    out = proc.stdout.read().decode()
    proc.wait(timeout=300)
    return proc.returncode, out, tty.decode().replace("\r\n", "\n")  # the tty's ONLCR


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
def test_train_progress_fits_the_terminal_it_is_drawn_on(flowers):
    """The width is stderr's terminal's, also when stdout is redirected to a file or pipe."""
    rc, out, tty = _run_on_a_pty(flowers, EARLY_STOP, columns=60)
    assert rc == 0, tty
    screen = Screen(60)
    screen.feed(tty)
    assert not screen.wrapped, screen.lines
    epochs, reason = _stopped(out)
    final = [line for line in screen.lines if line.strip()][-1]
    assert f"epoch {epochs}/300" in final and reason in final, final


def test_a_bar_on_a_closed_or_full_stderr_lets_the_run_go_on():
    """Drawing on a closed stderr (2>&-: EBADF) or a full device (ENOSPC) raised OSError
    in the bar's first draw: the run died with exit 1 and wrote nothing."""
    from jbpnn.cli.progress import ProgressBar

    class Dead:
        def write(self, text):
            raise OSError(9, "Bad file descriptor")

        def flush(self):
            raise OSError(28, "No space left on device")

        def isatty(self):
            return False

    bar = ProgressBar(5, Dead(), use_tqdm=False)
    bar(
        {
            "epoch": 1,
            "epochs": 5,
            "loss": 0.5,
            "val_loss": None,
            "elapsed": 0.1,
            "stop_reason": None,
        }
    )
    bar.close(5, "max_epochs")


def test_print_progress_takes_train_manys_dicts_too(capsys):
    """print_progress with train_many raised a bare KeyError 'loss' (its dicts have none)."""
    from jbpnn.many import InitSpec, train_many
    from jbpnn.training import print_progress

    X = np.zeros((16, 2), np.float32)
    Y = np.zeros((16, 1), np.float32)
    spec = InitSpec((2, 3, 1), "tanh", "mse")
    train_many(
        spec,
        X,
        Y,
        seeds=[0, 1],
        hparams={"lr": 0.1},
        epochs=4,
        batch_size=8,
        progress=print_progress,
        history_chunk=2,
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines and lines[-1].startswith("epoch 4/4  running ")


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_a_run_that_raises_ends_its_line_where_it_was_not_done(flowers, capsys, monkeypatch, error):
    # Ctrl-C after the first chunk drew a full bar, "done: stopped", above "interrupted"
    import io

    from conftest import run_cli

    import jbpnn.cli.train as cli_train
    from jbpnn.cli.progress import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(10, out, use_tqdm=False)
    info = {"epoch": 3, "epochs": 10, "loss": 0.5, "val_loss": None, "elapsed": 0.2}
    bar({**info, "stop_reason": None})
    bar.close(stop_reason="interrupted")
    last = out.getvalue().split("\r")[-1]
    assert "epoch 3/10" in last and last.rstrip().endswith("interrupted") and "done" not in last
    assert "#" * 24 not in last  # the bar stays at 3 of 10

    def raising(*args, progress=None, **kw):  # one chunk, then the error
        progress({"epoch": 1, "epochs": 300, "loss": 0.5, "val_loss": None, "elapsed": 0.1,
                  "stop_reason": None})  # fmt: skip
        raise error("stop here")

    monkeypatch.setattr(cli_train, "train", raising)
    rc, _, err = run_cli(capsys, *EARLY_STOP[:2], str(flowers / "flowers.csv"), *EARLY_STOP[3:])
    expected = "interrupted" if error is KeyboardInterrupt else "failed"
    bar_lines = [u for u in err.split("\r") if "epoch 1/300" in u]
    assert bar_lines and expected in bar_lines[-1] and "done" not in bar_lines[-1], err
    assert rc == (130 if error is KeyboardInterrupt else 2), err


def test_the_command_line_without_a_stderr_runs_and_fails_with_its_status(
    capsys, tmp_path, monkeypatch
):
    """Started with 2>&- (sys.stderr None), `jbpnn train` and `jbpnn sweep` stopped at
    once: "'NoneType' object has no attribute 'isatty'" (printed to stdout); with
    2>/dev/full, a failure's error line raised OSError and the exit status was 1."""
    from conftest import write_flowers

    from jbpnn.cli import main

    monkeypatch.chdir(tmp_path)
    write_flowers(tmp_path)
    train = ["train", "--data", "flowers.csv", "--target", "colour", "--hidden", "2"]
    monkeypatch.setattr(sys, "stderr", None)
    for extra in ([], ["--progress"]):
        assert main([*train, "--epochs", "2", "--save", "m.npz", *extra]) == 0
        assert (tmp_path / "m.npz").exists()
        (tmp_path / "m.npz").unlink()
    assert main(["sweep", "--quick", "--out", "sw", "--no-plot", "--progress"]) == 0
    assert main(["train", "--data", "missing.csv"]) == 2
    out = capsys.readouterr().out
    assert "error" not in out and "isatty" not in out

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stderr", Full())
    assert main(["train", "--data", "missing.csv"]) == 2
    assert main(["train", "--data", "flowers.csv", "--lr", "-1"]) == 2


def test_a_sweep_bar_that_ran_out_of_epochs_says_max_epochs():
    """running == 0 at the last epoch read "every network stopped" for networks that
    all ran to the epoch limit."""
    from jbpnn.cli.progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(4, stream, networks=8, use_tqdm=False)
    bar({"epoch": 4, "epochs": 4, "elapsed": 0.1, "running": 0, "stop_reason": None})
    bar.close(4)
    assert stream.getvalue().rstrip().endswith("done: max_epochs"), stream.getvalue()
    stream = io.StringIO()
    bar = ProgressBar(4, stream, networks=8, use_tqdm=False)
    bar({"epoch": 2, "epochs": 4, "elapsed": 0.1, "running": 0, "stop_reason": None})
    bar.close(2)
    assert "every network stopped" in stream.getvalue(), stream.getvalue()

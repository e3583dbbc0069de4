"""Shared fixtures: float64 per test, and a tree comparison helper.

The whole session runs with ``JBPNN_NO_CACHE=1``: ``jbpnn.train``, the estimators and
``jbpnn.cli.main`` would otherwise turn JAX's persistent compilation cache on (in the
user's ``~/.cache/jbpnn/jax``) for every later test, and subprocesses inherit the
setting. ``tests/test_compile.py`` tests the cache in fresh processes on temporary folders.

Instead the session shares ONE persistent cache of its own, a temporary folder made by
the first process (pytest, or xdist's controller), used by every worker and every
subprocess that inherits the environment (``JAX_COMPILATION_CACHE_DIR``; jbpnn leaves a
cache set this way alone) and deleted at the end. The same program is then compiled
once per session, not once per worker and per command-line test. A test that counts
XLA compilations turns it off around the counted block (:func:`no_persistent_cache`):
a program read from the cache is not compiled. A cache of your own
(``JAX_COMPILATION_CACHE_DIR`` already set) is used as it is.

Each compiled XLA program keeps about three memory mappings in the process, and a test
worker compiles thousands of them: past the kernel's ``vm.max_map_count`` (65530 by
default) the next compilation aborts or segfaults the worker. ``_release_compiled_programs``
clears JAX's caches between tests once 40% of that limit is in use (counted every 10th
test: one test adds a few hundred mappings at most), as ``jbpnn.process.release_programs``
does for a user's process after ``train`` (counted only after a compilation there).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import tempfile

os.environ["JBPNN_NO_CACHE"] = "1"  # before any test imports jbpnn.cli

# The suite is compile-bound: its programs compile with LLVM at optimization level 0, the
# same HLO (XLA's own passes, fusion and layouts, are unchanged) turned into slower machine
# code faster (the suite: 8.3 instead of 11.4 minutes on 2 cores). Float results differ
# in the last digits from the default level's; no check depends on them except the
# README's quoted output, whose run (tests/test_readme.py) drops the flag, as do the
# multi-device subprocesses that set XLA_FLAGS themselves. JBPNN_TEST_FULL_OPT=1: the
# default level throughout.
FAST_COMPILE = "--xla_backend_optimization_level=0"
if not os.environ.get("JBPNN_TEST_FULL_OPT") and FAST_COMPILE not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()


def default_compile_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the suite's fast-compile flag taken out of ``XLA_FLAGS`` (a subprocess
    whose floats must be the default level's: the README's quoted output)."""
    flags = env.get("XLA_FLAGS", "").replace(FAST_COMPILE, "").strip()
    out = {k: v for k, v in env.items() if k != "XLA_FLAGS"}
    return {**out, "XLA_FLAGS": flags} if flags else out


# JAX's settings of its persistent cache; a subprocess that tests jbpnn's own cache drops them
JAX_CACHE = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)
_SESSION_CACHE = "JBPNN_TEST_SESSION_CACHE"  # the folder, set by the process that made it
if not os.environ.get(_SESSION_CACHE) and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    os.environ[_SESSION_CACHE] = tempfile.mkdtemp(prefix="jbpnn-test-cache-")
    _OWN_CACHE: str | None = os.environ[_SESSION_CACHE]  # this process deletes it at the end
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # every program
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
else:
    _OWN_CACHE = None

import jax  # noqa: E402 (after the environment above: JAX reads it on import)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jbpnn.process import map_limit, mapped_regions  # noqa: E402

# below jbpnn.process's own half (its RuntimeWarning would reach a test that turns warnings
# into errors): at most a few hundred mappings a test, ten tests between two counts
_MAPS_BUDGET = map_limit() * 2 // 5
_tests_run = [0]


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE is not None and not hasattr(session.config, "workerinput"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@contextlib.contextmanager
def no_persistent_cache():
    """Within the block, every program is compiled (none is read from the session cache)."""
    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", before)


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """After a test, drop JAX's compiled programs if the worker's mappings near the limit."""
    yield
    _tests_run[0] += 1
    if _tests_run[0] % 10 == 0 and mapped_regions() > _MAPS_BUDGET:
        jax.clear_caches()
        gc.collect()


@pytest.fixture
def x64():
    """Enable float64 for one test only (never for the whole library)."""
    with jax.enable_x64(True):
        yield


def tree_allclose(a, b, rtol=1e-7, atol=0.0, err_msg=""):
    """Assert two pytrees have the same structure and allclose leaves."""
    sa, sb = jax.tree.structure(a), jax.tree.structure(b)
    assert sa == sb, f"tree structures differ: {sa} vs {sb}"
    for i, (x, y) in enumerate(zip(jax.tree.leaves(a), jax.tree.leaves(b))):
        np.testing.assert_allclose(
            np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=f"{err_msg} leaf {i}"
        )


# ---------------------------------------------------------------- command-line helpers
def write_flowers(folder):
    """``folder/flowers.csv``: 90 rows, features a, b, c and a text class ``colour``
    between b and c (red/green/blue, separated by c * 2); returns ``(X, names)``."""
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, 90)
    X = rng.normal(size=(90, 3)) * 0.5 + c[:, None] * 2.0
    names = np.array(["red", "green", "blue"])[c]
    lines = ["a,b,colour,c"] + [f"{x[0]:.4f},{x[1]:.4f},{s},{x[2]:.4f}" for x, s in zip(X, names)]
    (folder / "flowers.csv").write_text("\n".join(lines) + "\n")
    return X, names


def run_cli(capsys, *args):
    """``jbpnn.cli.main(args)`` in this process: ``(exit status, stdout, stderr)``."""
    from jbpnn import cli

    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(rc, err, *fragments):
    """The command failed as the CLI must: exit 2, one line on stderr, no traceback."""
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class Screen:
    """What a terminal shows after a stream of ``\\r``-rewritten lines (wraps at ``columns``)."""

    def __init__(self, columns: int):
        self.columns, self.lines, self.row, self.col, self.wrapped = columns, [""], 0, 0, False

    def feed(self, text: str) -> None:
        for ch in text:
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.lines.append("")
                self.row, self.col = self.row + 1, 0
            else:
                if self.col >= self.columns:  # the terminal wraps: a new line per update
                    self.wrapped = True
                    self.lines.append("")
                    self.row, self.col = self.row + 1, 0
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + ch + line[self.col + 1 :]
                self.col += 1


# ---------------------------------------------------------------- a full disk, for real
@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past ``nbytes`` fail with EFBIG, as a full disk fails them (RLIMIT_FSIZE).

    For this process only, and restored on exit; SIGXFSZ is ignored meanwhile so the
    write raises instead of killing the process. Skips the test where POSIX rlimits
    are missing.
    """
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)

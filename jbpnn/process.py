"""What a long-lived or forked process needs from jbpnn: a bound on the compiled programs
it keeps, and a clear error instead of a hang in a forked child.

**Compiled programs.** Each XLA program compiled (or loaded from the persistent cache)
keeps about three memory mappings in the process for as long as JAX's caches hold it,
and a network of another shape, or another batch size, is another program. Past the
kernel's ``vm.max_map_count`` (65530 by default on Linux) the next compilation fails
("LLVM compilation error: Cannot allocate memory") and the process segfaults: a
notebook or a search over ``hidden_layer_sizes`` x ``batch_size`` crashed after about
330 shapes with 15 GB of memory free. :func:`release_programs` (run at the end of
``train`` and ``train_many``, so of every estimator's fit) counts the process's mappings
after a compilation and, once half of the limit is in use, clears JAX's caches
(``jax.clear_caches()``, every program of the process, the caller's own included: each
compiles again on its next call) with a warning. Linux only (elsewhere nothing is
counted).

**Forked children.** JAX runs threads, which ``os.fork`` does not copy: a child forked
after its parent used JAX waits forever on its first array (joblib's
``"multiprocessing"`` backend, ``multiprocessing``'s ``fork`` start method). "Used"
here: the parent compiled (or loaded) a program, or ran one of jbpnn's entry points.
:func:`check_not_forked` (called by ``train``, ``train_many``, ``predict`` and the
estimators' ``predict``) refuses to start there, naming the backends that work
(joblib's default ``loky``, ``"threading"``, ``multiprocessing``'s ``spawn`` or
``forkserver``). A child forked before the parent used JAX runs as any process.
"""

from __future__ import annotations

import functools
import gc
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import jax

__all__ = ["check_not_forked", "guarded", "map_limit", "mapped_regions", "release_programs"]

_F = TypeVar("_F", bound=Callable[..., Any])

_state: dict[str, Any] = {"forked": False, "used": False, "programs": 0, "counted": 0}


# ---------------------------------------------------------------- forked children
def _after_fork_in_child() -> None:
    # whether the parent had run JAX (its runtime's threads are not in the child): a
    # program it compiled or loaded, or a jbpnn entry point it ran. JAX's own record of
    # its started backends is private (jax._src); a parent that only moved arrays to
    # the device, and never computed, is not seen
    _state["forked"] = _state["used"]


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def check_not_forked(what: str) -> None:
    """Refuse to run ``what`` in a child forked from a process that had used JAX.

    Raises:
        RuntimeError: naming the parallel backends that work.
    """
    if _state["forked"]:
        raise RuntimeError(
            f"{what} cannot run in this process: it was forked (os.fork) from a process "
            "that had already used JAX, whose threads a fork does not copy, so JAX would "
            "wait forever on its first array. Use joblib's default backend (loky) or "
            "'threading' instead of 'multiprocessing', or multiprocessing's 'spawn' or "
            "'forkserver' start method"
        )


def guarded(what: str) -> Callable[[_F], _F]:
    """Decorate a public entry point: :func:`check_not_forked` before it runs, and
    :func:`release_programs` after it returns."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            check_not_forked(what)
            _state["used"] = True
            out = fn(*args, **kwargs)
            release_programs(stacklevel=3)
            return out

        return wrapped  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------- compiled programs
_PROGRAM_EVENTS = (  # a program compiled, or loaded from the persistent cache
    "/jax/core/compile/backend_compile_duration",
    "/jax/compilation_cache/cache_retrieval_time_sec",
)


def _listen(event: str, duration_secs: float, **kwargs: str | int) -> None:
    if event in _PROGRAM_EVENTS:
        _state["programs"] += 1
        _state["used"] = True  # JAX computes in this process: a fork of it would hang


jax.monitoring.register_event_duration_secs_listener(_listen)


def mapped_regions() -> int:
    """The memory mappings of this process (lines of ``/proc/self/maps``; 0 elsewhere)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def map_limit() -> int:
    """The kernel's ``vm.max_map_count`` (65530, Linux's default, where it is unknown)."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530


def release_programs(stacklevel: int = 2) -> bool:
    """Clear JAX's caches if, after a compilation since the last look, this process's
    memory mappings fill half of ``vm.max_map_count`` (see the module docstring).

    Returns:
        True when the caches were cleared.
    """
    if _state["programs"] == _state["counted"]:
        return False  # nothing compiled since: no mapping added by a program
    _state["counted"] = _state["programs"]
    regions, limit = mapped_regions(), map_limit()
    if regions <= limit // 2:
        return False
    jax.clear_caches()
    gc.collect()
    warnings.warn(
        f"this process holds {regions} memory mappings, over half of the kernel's limit "
        f"vm.max_map_count = {limit} (each compiled XLA program keeps about three; past the "
        "limit compilation fails and the process crashes): jbpnn cleared JAX's caches "
        "(jax.clear_caches()), so each program compiles again on its next call. Networks of "
        "fewer distinct shapes and batch sizes share programs",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return True

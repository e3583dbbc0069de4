"""JAX's persistent compilation cache, on by default for jbpnn's training programs.

A new Python process compiles every program again: for a small network that is
most of the first ``train`` call (or the first ``BPNNClassifier().fit``). JAX can
keep compiled programs on disk, but by default it caches nothing (no folder) and
only programs that took over a second to compile. So the first :func:`jbpnn.train`
or :func:`jbpnn.train_many` of a process (and so every estimator's ``fit`` and
``SweepSearchCV``, which call them; and the ``jbpnn`` command) calls
:func:`default_compilation_cache`, which points JAX at a per-user
folder and caches every program:

- the folder: ``$JBPNN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/jbpnn/jax``
  (default ``~/.cache/jbpnn/jax``), made private to the user (mode 0700); an existing
  folder that another user owns, or that others may write to, is not used (a warning
  names it: the cache holds programs the process runs);
- off: set ``JBPNN_NO_CACHE=1`` (any value but ``""`` and ``"0"``: ``false`` and ``no``
  turn it off too), or call :func:`disable_compilation_cache` (before
  or after the first ``train``); either leaves JAX's settings alone;
- your own JAX cache wins: if ``jax_compilation_cache_dir`` is already set
  (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config.update``), jbpnn changes nothing;
- safe: a folder that cannot be created or written (read-only, a file in the
  way), or no home directory to put it in, leaves the cache off: silently for the
  default folder, with a warning naming it for one you asked for (the argument of
  :func:`enable_compilation_cache` or ``$JBPNN_CACHE_DIR``); two
  processes may share one folder (JAX writes an entry only once; an entry read while
  another process is still writing it, or one cut short by a full disk or a killed
  writer, fails to decompress and the program is compiled again, with a JAX warning;
  JAX does not replace such an entry: delete the folder to clear the warnings). An
  entry that decompresses but holds another program (files swapped or edited by hand)
  is not detected: JAX runs it and fails with an internal error; delete the folder.

Once on, the setting is JAX's and holds for the whole process, so your own
programs are cached there too. The folder is not pruned: delete it to reclaim the
space. ``experiments/cold_start.py`` measures the first fit with the cache cold
and warm.
"""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

__all__ = [
    "cache_dir",
    "default_compilation_cache",
    "disable_compilation_cache",
    "enable_compilation_cache",
]

_state: dict[str, Any] = {"decided": False, "disabled": False, "folder": None}


def cache_dir() -> Path | None:
    """The per-user folder of JAX's persistent compilation cache used by jbpnn.

    ``$JBPNN_CACHE_DIR`` if set (``~`` expanded, a relative path taken from the current
    folder once, here: a later ``os.chdir`` does not move it), else
    ``$XDG_CACHE_HOME/jbpnn/jax`` (default ``~/.cache/jbpnn/jax``; a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG specification says); None when there is
    no home directory to put it in (``HOME`` unset or empty and a user id without a
    passwd entry, as in some containers): the cache then stays off.
    """
    if os.environ.get("JBPNN_CACHE_DIR"):
        folder = Path(os.environ["JBPNN_CACHE_DIR"])
        if folder.parts and folder.parts[0] == "~":  # this user's home, as cache_dir finds it
            try:
                folder = _home().joinpath(*folder.parts[1:])
            except (RuntimeError, KeyError, OSError):
                return None
        return folder.expanduser().absolute()  # ~user
    base: str | Path | None = os.environ.get("XDG_CACHE_HOME")
    if not base or not Path(base).is_absolute():
        try:
            home = _home()
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
            return None
        if not home.is_absolute():
            return None
        base = home / ".cache"
    return Path(base) / "jbpnn" / "jax"


def _home() -> Path:
    """``Path.home()``, with an empty ``HOME`` taken as unset (the passwd entry's home):
    ``Path.home()`` reads it as ``/``, which put the cache in ``/.cache`` for root."""
    if os.environ.get("HOME", None) == "":
        import pwd  # POSIX only, as an empty HOME is

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    return Path.home()


def _env_disabled() -> bool:
    """``JBPNN_NO_CACHE`` set to anything but ``""`` or ``"0"``."""
    return os.environ.get("JBPNN_NO_CACHE", "") not in ("", "0")


def _writable(folder: Path, asked: bool = False) -> bool:
    """The folder exists (made if missing, private to the user) and a file can be
    written in it: the one test that holds for every kind of read-only (permissions,
    a read-only file system, root on either). A folder the user ``asked`` for (the
    argument or ``$JBPNN_CACHE_DIR``) that fails it is named in a warning; the default
    one stays off silently."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        if asked:
            warnings.warn(
                f"jbpnn: the compilation cache folder {folder} cannot be used "
                f"({error.strerror or error}): the cache stays off; point JBPNN_CACHE_DIR "
                "at a folder you can write to",
                stacklevel=4,
            )
        return False
    return _private(folder)


def _private(folder: Path) -> bool:
    """Whether ``folder`` is the user's own and writable by no one else (POSIX). Cache
    entries are compiled programs that the process runs: an existing folder that another
    user owns, or that others may write to (``/tmp/shared``, mode 777), is not used,
    with a warning naming it (``mkdir`` makes a missing one private, but leaves an
    existing one as it is)."""
    if not hasattr(os, "getuid"):  # not POSIX: no owner and mode bits to check
        return True
    st = folder.stat()
    if st.st_uid == os.getuid() and not st.st_mode & 0o022:
        return True
    warnings.warn(
        f"jbpnn: the compilation cache folder {folder} is not private to this user (owner "
        f"uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}): compiled programs from it "
        "would run in this process, so the cache stays off; point JBPNN_CACHE_DIR at a "
        "folder of your own, or chmod go-w it",
        stacklevel=4,
    )
    return False


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache now, small programs included.

    By default JAX only caches programs that took over a second to compile;
    jbpnn's are smaller, so both thresholds are set to cache everything. A
    second process with the same shapes then skips XLA compilation.
    ``JBPNN_NO_CACHE=1`` leaves JAX's settings alone.

    Args:
        path: the folder; default :func:`cache_dir`.

    Returns:
        The cache folder, or None when disabled or not writable.
    """
    if _env_disabled():
        return None
    if path is not None and str(path) == "":  # Path("") is the working folder
        raise ValueError(
            "enable_compilation_cache got an empty path; give a folder, or None for the "
            "per-user one"
        )
    folder = Path(path).expanduser().absolute() if path is not None else cache_dir()
    asked = path is not None or bool(os.environ.get("JBPNN_CACHE_DIR"))
    if folder is None or not _writable(folder, asked):
        return None
    if "thresholds" not in _state:  # JAX's own, for disable_compilation_cache to restore
        _state["thresholds"] = (
            jax.config.jax_persistent_cache_min_compile_time_secs,  # type: ignore[attr-defined]
            jax.config.jax_persistent_cache_min_entry_size_bytes,  # type: ignore[attr-defined]
        )
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _jax_cache.reset_cache()  # JAX opens its cache at the next compile, in this folder
    _state.update(decided=True, folder=folder)
    return folder


def default_compilation_cache() -> Path | None:
    """What :func:`jbpnn.train` calls first: the cache on in the per-user folder, once
    per process, unless it is off (``JBPNN_NO_CACHE``, :func:`disable_compilation_cache`)
    or JAX's cache folder is already set. Cheap after the first call.

    Returns:
        The folder jbpnn turned the cache on in (this call or an earlier one), else None.
    """
    if _state["decided"]:
        return _state["folder"]
    _state["decided"] = True
    # jax.config's options are attributes set at run time: mypy cannot see them.
    if _state["disabled"] or _env_disabled() or jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return None
    return enable_compilation_cache()


def disable_compilation_cache() -> None:
    """Keep jbpnn from turning the persistent cache on; if it already did, turn it off
    (JAX's cache folder unset). A cache you configured yourself is left alone."""
    _state["disabled"] = True
    _state["decided"] = True
    folder, _state["folder"] = _state["folder"], None
    if folder is not None and jax.config.jax_compilation_cache_dir == str(folder):  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", None)
        _jax_cache.reset_cache()  # else JAX keeps writing to the cache it opened
        if "thresholds" in _state:  # JAX's own again: a folder set later caches as JAX does
            seconds, size = _state.pop("thresholds")
            jax.config.update("jax_persistent_cache_min_compile_time_secs", seconds)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", size)

"""Writing files safely: the one atomic write of jbpnn, and the checks of a target.

Every file the library writes goes through here: models and checkpoints
(:func:`jbpnn.io.save`), results tables (:meth:`jbpnn.tables.ResultsTable.to_csv`,
``to_json``), figures (:mod:`jbpnn.plots`) and every file of the command line.

- :func:`check_target`: the regular file a write creates or replaces. A symlink to a
  regular file is followed; an empty path, a directory, a special file
  (``/dev/null``, a FIFO, a socket), a dangling symlink, a read-only file and a
  folder that is missing or not writable are refused, never replaced.
- :func:`atomic_write`: one file, atomically; :func:`write_files`: several, all or none.

The contents are written to a temporary file in the target's folder (on Linux an
unnamed ``O_TMPFILE``, so a process killed mid-write leaves nothing behind;
elsewhere a hidden ``.NAME.PID-XXXXXXXXXXXX.tmp``, unique to the write, which a
later write of the same target removes once its process is gone), flushed and
``fsync``-ed, then given the target's name (``linkat``, then ``os.replace`` over an
existing file) and the folder ``fsync``-ed. A failure at any point, a full disk
included, removes the temporary file and leaves any previous file at the path
untouched; a replaced file keeps its permission bits.

Standard library only: it imports nothing of jbpnn.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["as_path", "atomic_write", "check_target", "write_files"]

_TEMP_SUFFIX = ".tmp"
_STALE_LEGACY_S = 3600.0  # today's-code temp names carry no pid: removed once this old
_USE_O_TMPFILE = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def as_path(path: Any, what: str = "write") -> str | os.PathLike:
    """``path`` as a file name: a ``str`` or an ``os.PathLike`` (bytes decoded as the file
    system does); anything else (None, a number) is a TypeError naming it."""
    if isinstance(path, bytes):
        return os.fsdecode(path)  # pathlib takes no bytes
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"cannot {what} {path!r}: a path is a file name (str or pathlib.Path), got "
            f"{type(path).__name__}"
        )
    return path


def check_target(path: str | os.PathLike, what: str = "write") -> Path:
    """The regular file that writing ``path`` creates or replaces; refuses anything else.

    Follows a symlink to a regular file (the file it points at is the one replaced,
    the link stays). Refuses, with a message naming the fault: an empty path; a
    directory, or a path ending in a slash (``m.npz/``: a folder's name); a special
    file (``/dev/null``, a FIFO, a socket); a dangling symlink; a read-only file (no
    write bit, e.g. mode ``0444``: it is not replaced); a parent that is missing, not
    a folder or not writable.

    Returns:
        The path to write: ``path`` itself, or the regular file its symlink points at.

    Raises:
        ValueError: an empty path, a special file or a dangling symlink.
        IsADirectoryError, NotADirectoryError, FileNotFoundError, PermissionError:
            as the names say. OSError: the path cannot be looked at (a name longer than
            the file system allows: ``cannot write PATH: File name too long``).
    """
    path = as_path(path, what)
    if not str(path):
        raise ValueError(f"cannot {what} an empty path")
    text = os.fspath(path)
    if isinstance(text, str) and text.endswith(("/", os.sep)):  # Path() would drop the slash
        raise IsADirectoryError(
            f"cannot {what} {text}: a path ending in {text[-1]!r} names a folder, not a file"
        )
    given = Path(path)
    try:
        return _checked_target(given, what)
    except OSError as e:
        if e.errno is None:  # one of the refusals above, its message already said
            raise
        # a probe of the path failed (a name too long for the file system, a symlink
        # loop): said as a write's failure is, "cannot save to m.npz: File name too long"
        raise type(e)(e.errno, f"cannot {what} {given}: {e.strerror}") from e


def _checked_target(given: Path, what: str) -> Path:
    """:func:`check_target` past its checks of the path's text."""
    target = given
    if given.is_symlink():
        target = Path(os.path.realpath(given))
        if not target.exists():
            raise ValueError(
                f"cannot {what} {given}: it is a symlink to {target}, which does not exist"
            )
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent is a file: said below
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"cannot {what} {given}: it is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(
                f"cannot {what} {given}: it is {_file_kind(st.st_mode)}, not a regular file; "
                "jbpnn writes only regular files"
            )
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise PermissionError(
                f"cannot {what} {given}: the file is read-only "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); it is not replaced"
            )
    directory = target.parent
    if not directory.exists():
        raise FileNotFoundError(f"cannot {what} {given}: directory {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"cannot {what} {given}: {directory} is not a folder")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot {what} {given}: folder {directory} is not writable")
    return target


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def atomic_write(
    path: str | os.PathLike, data: bytes | Callable[[BinaryIO], Any], what: str = "write"
) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    See :func:`write_files`, of which this is the one-file case.

    Returns:
        The file written (a symlink's target, see :func:`check_target`).
    """
    return write_files([(path, data)], what=what)[0]


def write_files(
    items: Sequence[tuple[str | os.PathLike, bytes | Callable[[BinaryIO], Any]]],
    what: str = "write",
) -> list[Path]:
    """Write several files all or none: each completely and ``fsync``-ed before any is named.

    Every target is checked first (:func:`check_target`; two items may not name one
    file). Each file's contents are then written to an unnamed temporary file in its
    target's folder (Linux: ``O_TMPFILE``, so a process killed mid-write leaves
    nothing behind; elsewhere a hidden ``.NAME.PID-XXXXXXXXXXXX.tmp`` that the next
    write of the same target removes once its process is gone), flushed and
    ``fsync``-ed. Only when all are complete are they put in place, each by one
    rename over its target (``linkat`` + rename for ``O_TMPFILE``). A failure before
    that (a full disk, an error of a writer) removes every temporary file and leaves
    every previous file untouched. A replaced file keeps its permission bits.

    Returns:
        The files written, in order (symlinks resolved to their targets).
    """
    targets = [check_target(path, what) for path, _ in items]
    seen: dict[Path, str] = {}
    for (path, _), target in zip(items, targets):
        key = Path(os.path.realpath(target))
        if key in seen:
            raise ValueError(f"cannot {what} {path} and {seen[key]}: they are the same file")
        seen[key] = str(path)
    pending: list[_TempFile] = []
    try:
        for (path, data), target in zip(items, targets):
            try:
                pending.append(_TempFile(target))
                pending[-1].write(data)
            except OSError as e:
                if e.errno is None:
                    raise
                # e.g. "cannot write m.npz: No space left on device", not the temp file's name
                raise type(e)(e.errno, f"cannot {what} {path}: {e.strerror}") from e
        for (path, _), temp in zip(items, pending):
            try:
                temp.commit()
            except OSError as e:  # named after the target, not the temporary file
                if e.errno is None:
                    raise
                raise type(e)(e.errno, f"cannot {what} {path}: {e.strerror}") from e
    finally:
        for temp in pending:
            temp.discard()
    return targets


class _TempFile:
    """A file written completely in ``target``'s folder before it takes ``target``'s name."""

    def __init__(self, target: Path):
        self.target = target
        self.directory = target.parent
        self.name: str | None = None  # the temporary name; None while anonymous (O_TMPFILE)
        self.fd: int | None = None
        self.done = False
        _remove_stale_temps(target)
        if _USE_O_TMPFILE:
            try:
                self.fd = os.open(self.directory, os.O_TMPFILE | os.O_WRONLY, 0o666)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                    raise
        if self.fd is None:
            self.name = _temp_name(target)
            # O_EXCL: never clobber a file we did not create; 0o666 is filtered by the umask
            self.fd = os.open(
                self.directory / self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666
            )
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = None
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(self.fd, mode)  # a replaced file keeps its permissions
        if mode is not None and hasattr(os, "fchown"):
            st = target.stat()
            try:  # and its owner (root replacing a user's file made it root's: unreadable)
                if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(self.fd, st.st_uid, st.st_gid)
            except OSError:
                pass  # not allowed (not root): the file is the writer's, as any new one

    def write(self, data: bytes | Callable[[BinaryIO], Any]) -> None:
        assert self.fd is not None  # open from __init__ until discard()
        if callable(data):
            with os.fdopen(os.dup(self.fd), "wb") as f:
                data(f)
                f.flush()
        else:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        os.fsync(self.fd)

    def commit(self) -> None:
        if self.name is None:
            dir_fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                try:  # a new file gets its name at once: nothing to leave behind
                    self._link(self.target.name, dir_fd)
                except FileExistsError:  # replacing: link under a temporary name, rename
                    name = _temp_name(self.target)
                    self._link(name, dir_fd)
                    self.name = name
                    os.replace(self.directory / name, self.target)
            finally:
                os.close(dir_fd)
        else:
            os.replace(self.directory / self.name, self.target)
        self.done = True
        _fsync_directory(self.directory)

    def _link(self, name: str, dir_fd: int) -> None:
        # dst_dir_fd makes os.link call linkat(..., AT_SYMLINK_FOLLOW), which names the
        # anonymous file behind /proc/self/fd/N (plain link() would link the magic symlink)
        os.link(f"/proc/self/fd/{self.fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.name is not None and not self.done:
            try:
                os.unlink(self.directory / self.name)
            except FileNotFoundError:
                pass
            self.name = None


def _temp_stem(target: Path) -> str:
    """``target``'s name as its temporary files carry it: within the 255 bytes a file
    name may have beside the longest tail (a 10-digit PID), whole UTF-8 characters only.
    :func:`_remove_stale_temps` looks for the same stem (it looked for the whole name, so
    the temporary files of a long or non-UTF-8 name were never removed)."""
    room = 255 - 1 - len(f".{10**10 - 1}-{'0' * 12}{_TEMP_SUFFIX}")
    return os.fsencode(target.name)[:room].decode(errors="ignore")


def _temp_name(target: Path) -> str:
    """A fresh name beside ``target``, within the 255 bytes a file name may have: a long
    but legal target name is shortened in it (its own name could not be replaced else)."""
    return f".{_temp_stem(target)}.{os.getpid()}-{secrets.token_hex(6)}{_TEMP_SUFFIX}"


def _remove_stale_temps(target: Path) -> None:
    """Remove the temporary files of earlier writes of ``target`` whose process is gone.

    ``.NAME.PID-XXXXXXXXXXXX.tmp`` when process PID no longer runs, and the
    ``.NAME.XXXXXXXXXXXX.tmp`` of earlier jbpnn versions (no PID) once an hour old.
    """
    ours = re.compile(rf"\.{re.escape(_temp_stem(target))}\.(\d+)-[0-9a-f]{{12}}\.tmp")
    legacy = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    now = time.time()
    for name in names:
        m = ours.fullmatch(name)
        path = target.parent / name
        try:
            if m and not _process_alive(int(m.group(1))):
                path.unlink()
            elif legacy.fullmatch(name) and now - path.lstat().st_mtime > _STALE_LEGACY_S:
                path.unlink()
        except OSError:
            pass  # gone already, or not ours to remove


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or no way to tell: keep its file
    return True


def _fsync_directory(directory: Path) -> None:
    # Make the rename itself durable (POSIX); not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""The files a command writes: all checked before anything runs, then written all or none.

A command names its inputs and outputs once (:func:`check_outputs`): an output that
is one of the inputs (``--save`` onto ``--data``), two outputs onto one file, an
empty name, a directory, a special file (``/dev/null``), a read-only file or a
folder that cannot be written is refused before any work is done. The outputs are
then rendered in memory and handed to :func:`jbpnn.files.write_files`, the one atomic
write, which names none of them until all are completely on disk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jbpnn.cli.base import CLIError
from jbpnn.files import check_target

__all__ = ["check_folder", "check_outputs", "same_file"]

PathOrNone = str | os.PathLike | None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file (hard and symbolic links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(
    outputs: Mapping[str, PathOrNone], inputs: Mapping[str, PathOrNone] | None = None
) -> dict[str, Path]:
    """Check every output of a command before it runs; ``{flag: file to write}``.

    Args:
        outputs: ``{"--save": path or None, ...}``; None means the option was not given.
        inputs: ``{"--data": path or None, ...}``, the files the command reads.

    Returns:
        The file each given output writes (a symlink resolved to the regular file it
        points at, see :func:`jbpnn.files.check_target`).

    Raises:
        CLIError: naming the option and the fault.
    """
    given_inputs = {k: v for k, v in (inputs or {}).items() if v is not None}
    given = {k: v for k, v in outputs.items() if v is not None}
    checked: dict[str, Path] = {}
    for flag, path in given.items():
        if str(path) == "":
            raise CLIError(f"{flag} needs a file name, got an empty string")
        for in_flag, in_path in given_inputs.items():
            if same_file(path, in_path):
                raise CLIError(
                    f"{flag} {path} is the command's input {in_flag} {in_path}: writing it "
                    "would destroy it; choose another file"
                )
        for other, other_path in checked.items():
            if same_file(path, other_path):
                raise CLIError(f"{flag} {path} and {other} {given[other]} are the same file")
        try:
            checked[flag] = check_target(path, what=f"write {flag}")
        except (OSError, ValueError) as e:  # an OS error's own text, without "[Errno 36]"
            text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise CLIError(text) from None
        _probe(flag, path, checked[flag].parent)
    return checked


def _probe(flag: str, path: Any, folder: Path) -> None:
    """Create (and drop at once) a temporary file in ``folder``: can files be made there?

    Permissions say yes to root everywhere, but ``/sys`` or a read-only mount
    refuse new files; better now than after the training.
    """
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise CLIError(
            f"cannot write {flag} {path}: folder {folder} does not take new files "
            f"({e.strerror or e})"
        ) from None


def check_folder(flag: str, folder: str | os.PathLike) -> Path:
    """A folder a command will create (with its parents) or write into; checked now.

    Raises:
        CLIError: the path is a file, sits under a regular file, or its nearest
            existing ancestor is not writable.
    """
    if str(folder) == "":
        raise CLIError(f"{flag} needs a folder name, got an empty string")
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise CLIError(f"{flag} {folder}: {probe} is a symlink to a missing folder")
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == folder else f"lies under the file {probe}"
        raise CLIError(f"{flag} {folder}: {where}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {folder}: folder {probe} is not writable")
    _probe(flag, folder, probe)
    return folder

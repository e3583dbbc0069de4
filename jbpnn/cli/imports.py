"""``--import MODULE``: the user's own modules, imported before the parser is built.

A unit or loss of the user's own (:func:`jbpnn.register_activation`,
:func:`jbpnn.register_loss`) lives in the user's module; ``jbpnn train --import my_units
--activation mine`` imports ``my_units`` first, so that ``--activation`` and ``--loss``
offer the names it registers and ``jbpnn predict --import my_units model.npz ...`` loads
a model that uses them. :func:`import_modules` runs on the subcommand's raw arguments
before the parser is built; :func:`add_import_argument` declares the option so that
``--help`` shows it and the parser accepts it. A path to a ``.py`` file
(``--import ./my_units.py``) imports that file as the module its name gives. A module
that fails to import is one line on stderr and exit status 2 (a
:class:`~jbpnn.cli.base.CLIError`), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from jbpnn.activations import ACTIVATIONS
from jbpnn.cli.base import CLIError
from jbpnn.losses import LOSSES

__all__ = ["IMPORTING_COMMANDS", "add_import_argument", "import_modules"]

# The subcommands that take --import MODULE: those that name units (--activation,
# --loss) or load a model that may use a unit of the user's own.
IMPORTING_COMMANDS = ("train", "predict", "gradcheck")


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """Declare ``--import MODULE`` (repeatable) on a subcommand's parser."""
    parser.add_argument(
        "--import",
        dest="imports",
        metavar="MODULE",
        action="append",
        help="import this Python module first, e.g. the one that registers your own units "
        "(jbpnn.register_activation, register_loss); repeatable; a name found on PYTHONPATH "
        "or in the current folder, or a .py file's path (default: none)",
    )


def _import_names(argv: Sequence[str]) -> list[str]:
    """The values of ``--import MODULE`` / ``--import=MODULE`` in ``argv`` (up to ``--``)."""
    names, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--import" and i + 1 < len(argv):
            names.append(argv[i + 1])
            i += 1
        elif arg.startswith("--import="):
            names.append(arg.removeprefix("--import="))
        i += 1
    return names


def import_modules(argv: Sequence[str]) -> list[str]:
    """Import every ``--import`` module of ``argv`` (the arguments after the subcommand).

    The current folder is searched after ``sys.path`` (where ``python -m`` would look
    first), so ``--import my_units`` finds ``./my_units.py``.

    Returns:
        The module names, in order.

    Raises:
        CLIError: a module that cannot be imported or fails while importing (a
            registration refused, for one), naming it and the fault, in one line.
    """
    names = _import_names(argv)
    REGISTERED_NOTHING.clear()  # this command's modules only (main may run many)
    if names and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for name in names:
        before = _registered()
        try:
            _IMPORTED[name] = _import(name)
            if _registered() == before:  # said if the parser then refuses a unit's name
                REGISTERED_NOTHING.append(name)
        except CLIError:
            raise
        except KeyboardInterrupt:
            raise
        except SystemExit as error:  # sys.exit() in the module: no silent exit status
            raise CLIError(f"--import {name}: the module called sys.exit({error.code!r})") from None
        except BaseException as error:  # the user's code: any fault is one line
            text = " ".join((str(error) or type(error).__name__).split())
            raise CLIError(
                f"--import {name}: cannot import it ({type(error).__name__}: {text})"
            ) from None
    return names


_IMPORTED: dict[str, ModuleType] = {}  # --import's argument -> the module it imported
REGISTERED_NOTHING: list[str] = []  # --import modules that registered no unit or loss


def _registered() -> tuple[tuple[str, int], ...]:
    """The unit and loss tables' names and entries (a replacement changes an entry)."""
    tables = [*ACTIVATIONS.items(), *LOSSES.items()]
    return tuple((name, id(entry)) for name, entry in tables)


def _import(name: str) -> ModuleType:
    """The module ``name`` (``importlib.import_module``), or the ``.py`` file it names
    (a name ending in ``.py`` or holding a path separator), imported as its stem."""
    if not (name.endswith(".py") or os.sep in name or "/" in name):
        return importlib.import_module(name)
    path = Path(name).expanduser()
    if not path.is_file():
        raise CLIError(f"--import {name}: no such file (give a module's name or a .py file)")
    stem = path.stem
    loaded = sys.modules.get(stem)
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
        if where and Path(where).resolve() == path.resolve():
            return loaded
        raise CLIError(
            f"--import {name}: a module named {stem!r} is already imported from "
            f"{where or 'elsewhere'}; rename the file"
        )
    spec = importlib.util.spec_from_file_location(stem, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"--import {name}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module  # as an import would: the module's own imports find it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(stem, None)
        raise
    return module


def imported_files(names: list[str] | None) -> dict[str, str | None]:
    """``{"--import NAME": the module's source file}`` of the imported modules: inputs of the
    command, which an output must not overwrite (None: a module without a file)."""
    return {
        f"--import {name}": getattr(_IMPORTED.get(name) or sys.modules.get(name), "__file__", None)
        for name in names or []
    }

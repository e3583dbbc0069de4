"""Pickling for the classes with ``__slots__`` (``MLP``, ``Optimizer``). Standard library only."""

from __future__ import annotations

from typing import Any

__all__ = ["PicklesSlots"]


class PicklesSlots:
    """Every pickle protocol for a class with ``__slots__``: 0 and 1 refuse one without
    ``__getstate__``; a state pickled by ``object``'s default, ``(None, {slot: value})``
    (jbpnn before this class), still loads."""

    __slots__ = ()

    def __getstate__(self) -> dict[str, Any]:
        names: tuple[str, ...] = type(self).__slots__  # the subclass's
        return {k: getattr(self, k) for k in names}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):
            state = state[1]
        names = type(self).__slots__
        unknown = sorted(k for k in state if k not in names)
        if unknown:  # a field this version lacks: the pickle is a newer jbpnn's
            from jbpnn import __version__  # at call time: jbpnn imports this module

            raise ValueError(
                f"cannot unpickle this {type(self).__name__}: it has fields {unknown} that "
                f"jbpnn {__version__} does not know; it was pickled by a newer jbpnn: "
                "upgrade jbpnn to load it"
            )
        for k, v in state.items():
            object.__setattr__(self, k, v)

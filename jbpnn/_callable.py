"""A module callable as one of its functions: ``jbpnn.jacobian(params, X)``.

Issue 18 names the API ``jbpnn.jacobian(params, X)`` and ``jbpnn.lbfgs(history=10)``,
where ``jbpnn.jacobian`` and ``jbpnn.lbfgs`` are modules (and ``jbpnn.gradcheck`` too):
:func:`make_callable` gives such a module a class whose ``__call__`` is the function, so
both ``jbpnn.jacobian(params, X)`` and ``from jbpnn.jacobian import jacobian_kernel``
work. Standard library only.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["make_callable"]


def make_callable(module_name: str, target: Callable[[], Callable[..., Any]]) -> None:
    """Make the module ``module_name`` callable: ``module(*args, **kwargs)`` calls
    ``target()(*args, **kwargs)`` (``target`` returns the function when called, so that
    it may import it late)."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return target()(*args, **kwargs)

    CallableModule.__doc__ = f"{module_name}, callable as its function."
    sys.modules[module_name].__class__ = CallableModule

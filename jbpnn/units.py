"""Units and losses of your own: registered by name, checked against autodiff first.

An activation is a row of :data:`jbpnn.ACTIVATIONS`; a loss a row of :data:`jbpnn.LOSSES`.
:func:`register_activation` and :func:`register_loss` add rows, after checking the hand
derivatives you give against JAX's autodiff of the function you give (in float64, at
random inputs: :func:`jbpnn.gradcheck.check_activation`, :func:`~jbpnn.gradcheck.check_loss`).
A wrong derivative is refused, with the measured relative error. From then on the
name works wherever a built-in's does: hidden and output layers (:func:`jbpnn.init_params`),
every hand-derived pass (backward, :func:`jbpnn.jvp`, :func:`jbpnn.apply`, the ensemble
kernel, the Jacobian for Levenberg-Marquardt, :func:`jbpnn.hvp` when ``second`` is given),
:func:`jbpnn.save` and :func:`jbpnn.load`, and the command line's ``--activation`` after
``--import MODULE``. Training stays hand-derived: autodiff runs once, at registration
(:mod:`jbpnn.gradcheck` is imported then, not before).

A saved model records names, not code: load it in a process that has registered the
same names (import the module that registers them), or :func:`jbpnn.load` refuses,
naming the unit.

The built-ins ``swish``, ``gelu`` and ``softplus`` are written the same way
(:func:`jbpnn.activations.elementwise`, derivatives from the net input).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import jax

from jbpnn import activations as _activations
from jbpnn import losses as _losses
from jbpnn.activations import Activation, elementwise
from jbpnn.checks import check_flag
from jbpnn.losses import Loss
from jbpnn.preprocessing import TASKS, add_task_loss

__all__ = ["register_activation", "register_loss"]

Array = jax.Array

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # one word: a CLI choice, a saved string


def _check_name(kind: str, name: object, table: dict, builtins: Sequence[str], replace: bool):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"register_{kind}: the name must be one word of letters, digits, '_', '-' or '.' "
            f"(not starting with a digit), got {name!r}"
        )
    if name in table and not replace:
        owner = "a built-in" if name in builtins else "an already registered"
        raise ValueError(
            f"register_{kind}: {name!r} is {owner} {kind}; pass replace=True to replace it "
            f"(networks that use the name then compute with the new one)"
        )


def _check_callable(kind: str, name: str, arg: str, value: object, optional: bool = False):
    if value is None and optional:
        return
    if not callable(value):
        raise TypeError(
            f"register_{kind}({name!r}): {arg} must be callable"
            + (" or None" if optional else "")
            + f", got {type(value).__name__}"
        )


def register_activation(
    name: str,
    fn: Callable[[Array], Array],
    backprop: Callable[[Array], Array],
    *,
    uses: str = "output",
    second: Callable[[Array], Array] | None = None,
    output_only: bool = False,
    replace: bool = False,
    check: bool = True,
) -> Activation:
    """Add an element-wise activation ``O = f(net)`` with its hand derivative, by name.

    The derivative is written from ``z``, the unit's output ``O`` (``uses="output"``, as
    the article's ``f'(net) = O (1 - O)`` for the sigmoid) or its net input
    (``uses="net"``, for units such as swish whose ``f'`` cannot be written from ``O``).
    Every pass then applies it unit by unit, ``J^T g = f'(z) g``; for example::

        jbpnn.register_activation(
            "softsign", lambda net: net / (1 + jnp.abs(net)),
            backprop=lambda net: 1 / (1 + jnp.abs(net)) ** 2,     # f'(net) = 1/(1+|net|)^2
            uses="net",
            second=lambda net: -2 * jnp.sign(net) / (1 + jnp.abs(net)) ** 3,  # f''(net)
        )

    Args:
        name: the unit's name, one word (it is saved in model files and is a choice of
            ``--activation``).
        fn: ``net -> O``, applied to a layer's net inputs, shape ``(n,)``; element-wise.
        backprop: ``z -> f'(net)``, element-wise, with ``z`` as ``uses`` says.
        uses: ``"output"`` or ``"net"``: what ``backprop`` and ``second`` take.
        second: ``z -> f''(net)``, optional; :func:`jbpnn.hvp` needs it (without it hvp
            refuses networks with this unit; :func:`jbpnn.gnvp` needs only ``f'``).
        output_only: the unit may only be the output layer's.
        replace: allow ``name`` to be an existing unit's (a built-in's too). JAX's
            compiled programs are then dropped (``jax.clear_caches``), since they were
            compiled for the old unit under the same name.
        check: compare ``backprop`` (and ``second``) with autodiff of ``fn`` first
            (:func:`jbpnn.gradcheck.check_activation`: float64, 834 net inputs: random
            ones, a grid from -12 to 12 in steps of 0.05 offset off the kinks, magnitudes
            from 1e-8 to 1e6 of both signs and fixed ones out to +-1000; relative error at
            most 1e-6, 1e-3 on rows reaching past ``|net|`` 8). Only switch it off for a
            unit already checked.

    Returns:
        The table row added (:class:`jbpnn.activations.Activation`).

    Raises:
        ValueError: a bad or taken name, ``uses`` not ``"output"``/``"net"``, a
            derivative that disagrees with autodiff (the message gives the relative error
            measured), or ``fn`` not element-wise in shape.
        TypeError: ``fn``, ``backprop`` or ``second`` not callable.
    """
    _check_name(
        "activation", name, _activations.ACTIVATIONS, _activations.BUILTIN_ACTIVATIONS, replace
    )
    _check_callable("activation", name, "fn", fn)
    _check_callable("activation", name, "backprop", backprop)
    _check_callable("activation", name, "second", second, optional=True)
    if uses not in _activations.UNIT_KINDS:
        raise ValueError(
            f"register_activation({name!r}): uses must be 'output' (backprop written from "
            f"O = f(net)) or 'net' (from the net input), got {uses!r}"
        )
    output_only = check_flag(f"register_activation({name!r}): output_only", output_only)
    act = elementwise(fn, backprop, uses=uses, second=second, output_only=output_only)
    existed = name in _activations.ACTIVATIONS
    if check:
        from jbpnn.gradcheck import check_activation, check_loss  # autodiff, here only

        what = f"register_activation({name!r})"
        check_activation(act, what)
        # a replaced unit: every loss paired with the name must still be exact with it
        # (binary_cross_entropy's T - O is the sigmoid's, not any unit's)
        table = {**_activations.ACTIVATIONS, name: act}
        paired = [(k, v) for k, v in _losses.LOSSES.items() if name in v.output_activations]
        for loss_name, loss in paired if existed else []:
            one = loss._replace(output_activations=(name,))
            if act.second is None:  # no curvature with this unit: delta_r is never used
                one = one._replace(delta_r=None)
            try:
                check_loss(one, table, f"{what} with the loss {loss_name!r}")
            except ValueError as error:
                raise ValueError(
                    f"{error}; the loss's delta was written for the unit it replaces: "
                    f"register the loss again for the new unit (register_loss({loss_name!r}, "
                    "..., replace=True)) or give the unit another name"
                ) from None
    _activations.add_activation(name, act)
    _losses.add_output_activation(name)  # mse's delta J^T (T - O) is exact with any unit
    if existed:
        jax.clear_caches()
    return act


def register_loss(
    name: str,
    error: Callable[[Array, Array], Array],
    delta: Callable[[Array, Array, Activation], Array],
    output_activations: str | Sequence[str],
    *,
    delta_r: Callable[[Array, Array, Activation, Array], Array] | None = None,
    delta_gn: Callable[[Array, Array, Activation, Array], Array] | None = None,
    tasks: str | Sequence[str] = (),
    replace: bool = False,
    check: bool = True,
) -> Loss:
    """Add a loss ``E(O, T)`` with its hand output delta ``Err = -dE/dnet``, by name.

    ``delta(O, T, act)`` is the output layer's delta for one example, in the library's
    sign (:mod:`jbpnn.losses`); ``act.backprop(O, g)`` carries a derivative ``g`` of the
    outputs back to the net inputs, ``J^T g``, for any output unit. For example, a
    scaled squared error, exact with every output activation listed::

        jbpnn.register_loss(
            "half_mse",
            error=lambda o, t: 0.25 * jnp.sum((t - o) ** 2),     # E = 1/4 sum (T - O)^2
            delta=lambda o, t, act: act.backprop(o, 0.5 * (t - o)),  # Err = J^T (T - O)/2
            output_activations=("identity", "sigmoid"),
            tasks="regression",  # checked on targets of either sign too: trains on them
        )

    Args:
        name: the loss's name, one word (saved in model files).
        error: ``(O, T) -> E`` for one example, ``O`` and ``T`` of shape ``(n_out,)``.
        delta: ``(O, T, act) -> Err``, shape ``(n_out,)``.
        output_activations: the output activations ``delta`` is exact with (registered
            names); networks with another output unit are refused at construction.
        delta_r: ``(O, T, act, r) -> R{Err}``, optional: the change of ``delta`` when the
            output net inputs move along ``r`` (``-d^2E/dnet^2 r``); :func:`jbpnn.hvp`
            needs it.
        delta_gn: ``(O, T, act, r)``, optional: its Gauss-Newton part, for
            :func:`jbpnn.gnvp` (not checked: which part it keeps is the loss's choice).
        tasks: the tables it can train from the command line (``jbpnn train --loss
            name``): ``"classification"`` (one-hot targets; the output unit is the first
            of ``output_activations``) and/or ``"regression"`` (one standardised target;
            the output unit is ``"identity"``, which must then be in
            ``output_activations``). Without it the command line refuses the loss, naming
            this argument: which targets a loss is written for is not guessed.
        replace: allow ``name`` to be an existing loss's (a built-in's too); JAX's
            compiled programs are then dropped.
        check: compare ``delta`` (and ``delta_r``) with autodiff of ``error(fn(net), T)``
            for every output activation first (:func:`jbpnn.gradcheck.check_loss`,
            float64, random net inputs with targets in (0, 1), hard 0/1 and one-hot
            targets, saturated outputs (``|net|`` 9.5-20), and with ``"regression"`` in
            ``tasks`` targets of either sign up to 1e4; relative error at most 1e-6, 1e-3
            on the saturated rows). Training (and
            :func:`jbpnn.loss`, :func:`jbpnn.loss_and_gradient`, ...) then refuses
            targets outside those checked: outside [0, 1] unless ``tasks`` has
            ``"regression"``, and with a softmax output rows that do not sum to 1 (the
            check's rows do); :func:`jbpnn.gradcheck` takes any, to check them. With
            ``check=False`` nothing is refused.

    Returns:
        The table row added (:class:`jbpnn.losses.Loss`).

    Raises:
        ValueError: a bad or taken name, an unknown or missing output activation, or a
            delta that disagrees with autodiff (with the relative error measured).
        TypeError: a rule not callable.
    """
    _check_name("loss", name, _losses.LOSSES, _losses.BUILTIN_LOSSES, replace)
    _check_callable("loss", name, "error", error)
    _check_callable("loss", name, "delta", delta)
    _check_callable("loss", name, "delta_r", delta_r, optional=True)
    _check_callable("loss", name, "delta_gn", delta_gn, optional=True)
    outputs = (output_activations,) if isinstance(output_activations, str) else output_activations
    try:
        outputs = tuple(outputs)
    except TypeError:
        raise TypeError(
            f"register_loss({name!r}): output_activations must be a name or a sequence of "
            f"names, got {type(output_activations).__name__}"
        ) from None
    if not outputs:
        raise ValueError(f"register_loss({name!r}): output_activations is empty")
    for out in outputs:
        if not isinstance(out, str) or out not in _activations.ACTIVATIONS:
            raise ValueError(
                f"register_loss({name!r}): unknown output activation {out!r}; expected "
                f"registered names, {sorted(_activations.ACTIVATIONS)}"
            )
    tasks = _check_tasks(name, tasks, outputs)
    loss = Loss(error, delta, tuple(dict.fromkeys(outputs)), delta_r, delta_gn)
    if check:
        from jbpnn.gradcheck import check_loss  # autodiff, here only: never on training

        check_loss(
            loss,
            _activations.ACTIVATIONS,
            f"register_loss({name!r})",
            any_targets="regression" in tasks,
        )
    existed = name in _losses.LOSSES
    # the targets the check covered, which training then holds the data to
    checked_on = ("any" if "regression" in tasks else "probabilities") if check else None
    _losses.add_loss(name, loss, checked_on)
    add_task_loss(name, tasks)
    if existed:
        jax.clear_caches()
    return loss


def _check_tasks(name: str, tasks: object, outputs: tuple[str, ...]) -> tuple[str, ...]:
    """``register_loss``'s ``tasks=``: names from TASKS; regression needs an identity output."""
    found = (tasks,) if isinstance(tasks, str) else tasks
    if not isinstance(found, Sequence) or any(t not in TASKS for t in found):
        raise ValueError(
            f"register_loss({name!r}): tasks must be a sequence of {TASKS[0]!r} and/or "
            f"{TASKS[1]!r}, got {tasks!r}"
        )
    if "regression" in found and "identity" not in outputs:
        raise ValueError(
            f"register_loss({name!r}): a regression loss trains an 'identity' output unit "
            f"(its target is one standardised number), but output_activations are {outputs}; "
            "add 'identity' or leave 'regression' out of tasks"
        )
    return tuple(dict.fromkeys(found))

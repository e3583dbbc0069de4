"""Parameters: ``Layer(w, b)`` and the ``MLP`` pytree, and how to build them.

``w`` has shape ``(n_in, n_out)`` so that ``w[j, k]`` is the article's ``w_jk``,
the weight from unit j of the layer below to unit k of this layer; ``b`` has
shape ``(n_out,)`` and holds the article's biases ``theta_k``.

An ``MLP`` holds its layers as pytree *data* and its activation names and loss
name as static *metadata*: ``jax.jit``, ``jax.vmap``, ``jax.tree.map`` and
``jax.device_put`` see only the arrays, and the names never become traced
values. Gradients returned by ``backward`` are ``MLP`` objects of the same
structure, so ``jax.tree.map(lambda p, g: p - lr * g, params, grads)`` is one
step of gradient descent.

Key paths name the leaves as attributes: ``jax.tree_util.keystr`` gives
``.layers[0].w``, ``.layers[0].b``, ... (``jax.tree_util.tree_flatten_with_path``).
:meth:`MLP.architecture` is everything but the arrays as a JSON-able dict, and
:meth:`MLP.from_architecture` rebuilds params from it and ``jax.tree.leaves(params)``
(no template network needed).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, MappingView, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jbpnn import checks
from jbpnn._slots import PicklesSlots
from jbpnn._threefry import host_unit_draws
from jbpnn.activations import BUILTIN_ACTIVATIONS, get_activation
from jbpnn.activations import is_builtin as activation_is_builtin
from jbpnn.checks import check_flag, check_seed, is_concrete
from jbpnn.losses import BUILTIN_LOSSES, LOSSES, check_pair, get_loss
from jbpnn.losses import is_builtin as loss_is_builtin
from jbpnn.memory import check_array_memory

__all__ = [
    "INITS",
    "MLP",
    "Layer",
    "check_network",
    "first_network",
    "init_params",
    "layer_sizes",
    "network_count",
]

Array = jax.Array

INITS = ("article", "glorot", "he")

# The output activation chosen when a single activation name is given.
_DEFAULT_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


class Layer(NamedTuple):
    """One fully connected layer: ``net = O_prev @ w + b``.

    Attributes:
        w: weights, shape ``(n_in, n_out)``; ``w[j, k]`` is the article's ``w_jk``.
        b: biases, shape ``(n_out,)``; ``b[k]`` is the article's ``theta_k``.
    """

    w: Array
    b: Array


@jax.tree_util.register_pytree_with_keys_class
class MLP(PicklesSlots):
    """A multilayer perceptron: layers as data, activation and loss names as metadata.

    Build one with :func:`init_params` or :meth:`MLP.from_layers`; both check
    the names, the shapes and the (loss, output activation) pair. Calling it,
    ``params(x)``, is :func:`jbpnn.network.apply`: the outputs of one example
    ``(n_in,)`` or a batch ``(B, n_in)``, differentiable through the hand-derived
    backward pass.

    Attributes:
        layers: tuple of :class:`Layer`, input side first.
        activations: one activation name per layer.
        loss: the loss name.
        article_mode: False (always, unless you ask): True reproduces the
            article code's bugs for comparison studies, see
            :mod:`jbpnn.activations` (``ARTICLE_MODE_ACTIVATIONS``). Never use it to train.
    """

    __slots__ = ("layers", "activations", "loss", "article_mode")

    def __init__(
        self,
        layers: Sequence[Layer],
        activations: Sequence[str],
        loss: str,
        article_mode: bool = False,
    ):
        # No validation here: JAX rebuilds pytrees with placeholders and tracers.
        # The public constructors (init_params, from_layers) validate.
        self.layers = tuple(layers)
        self.activations = tuple(activations)
        self.loss = loss
        # init_params(article_mode="yes") and =1 switched it on, None off: a bool only
        self.article_mode = check_flag("article_mode", article_mode)

    # -- pickling ----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The slots, and the built-in names this network uses that this process has
        replaced (``replace=True``): a pickle of a network whose ``tanh`` was ``sin``
        unpickled elsewhere as the real tanh, silently. A plain network pickles as before."""
        state = super().__getstate__()
        replaced = replaced_builtins(self)
        if replaced:
            state["replaced"] = replaced
        if any(np.dtype(leaf.dtype) == np.float64 for leaf in jax.tree.leaves(self)):
            state["float64"] = True  # JAX unpickles float64 arrays as float32 with x64 off
        return state

    def __setstate__(self, state: Any) -> None:
        """Refuse a network whose built-in names were replaced in one of the pickling
        and the unpickling process and not in the other (as :func:`jbpnn.io.load` does)."""
        if isinstance(state, tuple):  # pickled by object's default (older jbpnn)
            state = state[1]
        state = dict(state)
        recorded = state.pop("replaced", [])
        float64 = state.pop("float64", False)
        super().__setstate__(state)
        if float64 and not any(np.dtype(x.dtype) == np.float64 for x in jax.tree.leaves(self)):
            warnings.warn(  # as jbpnn.io.load warns for a file
                "this network was pickled with float64 params but JAX's float64 is off "
                "(jax_enable_x64): they were unpickled as float32. Unpickle inside "
                "`with jax.enable_x64(True):` to keep them",
                stacklevel=2,
            )
        now = replaced_builtins(self)
        for name in sorted(set(recorded) ^ set(now)):
            kind, unit = name.split(":", 1)
            register = f"jbpnn.register_{kind}({unit!r}, ..., replace=True)"
            if name in recorded:
                raise ValueError(
                    f"cannot unpickle this network: it uses the {kind} {unit!r} as the "
                    f"pickling process had replaced it ({register}), but here {unit!r} is "
                    "jbpnn's built-in; register the replacement again before unpickling"
                )
            raise ValueError(
                f"cannot unpickle this network: it uses the {kind} {unit!r} as jbpnn's "
                f"built-in, but this process has replaced {unit!r} ({register}); unpickle "
                "it in a process without the replacement"
            )

    # -- pytree protocol -------------------------------------------------
    def tree_flatten(self) -> tuple[tuple[tuple[Layer, ...]], tuple[Any, ...]]:
        return (self.layers,), (self.activations, self.loss, self.article_mode)

    def tree_flatten_with_keys(self) -> tuple[tuple[tuple[Any, Any], ...], tuple[Any, ...]]:
        """The one child, ``layers``, under its attribute name: paths read ``.layers[0].w``."""
        children, aux = self.tree_flatten()
        return ((jax.tree_util.GetAttrKey("layers"), children[0]),), aux

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: Any) -> MLP:
        (layers,) = children
        return cls(layers, *aux)

    # -- construction ----------------------------------------------------
    @classmethod
    def from_layers(
        cls,
        layers: Sequence[tuple[ArrayLike, ArrayLike]],
        activations: str | Sequence[str] = "sigmoid",
        loss: str = "mse",
        dtype: Any = None,
        article_mode: bool = False,
        *,
        check_finite: bool = True,
        host: bool = False,
    ) -> MLP:
        """Build params from exact weights and biases (oracles, ported models).

        Args:
            layers: sequence of ``(w, b)`` pairs, ``w`` of shape ``(n_in, n_out)``
                and ``b`` of shape ``(n_out,)``, input side first (one pair is
                ``[(w, b)]``).
            activations: one name for every layer, or one name per layer.
            loss: loss name; see :data:`jbpnn.losses.LOSSES`.
            dtype: cast every array to this floating dtype (default: keep the
                arrays' own; integer arrays become the default float dtype).
            article_mode: reproduce the article code's bugs (see :class:`MLP`).
            check_finite: refuse NaN or inf in concrete arrays (traced ones are
                never checked).
            host: keep host values (NumPy arrays, lists) on the host as NumPy arrays,
                for params that go straight into a compiled call such as
                :func:`jbpnn.train` (the call copies its NumPy arguments, about 0.2 us
                each, where a ``jax.device_put`` costs about 20 us); JAX arrays stay JAX
                arrays either way.

        Raises:
            ValueError: on unknown names, an invalid (loss, output) pair, shapes
                that do not chain, one bare ``(w, b)`` pair instead of a sequence of
                pairs, or NaN/inf in a layer (naming the layer and the first index).
            TypeError: ``dtype`` not one floating dtype (an integer dtype, a tuple).
        """
        if dtype is not None:
            dtype = _requested_dtype(dtype)
        if len(layers) == 0:
            raise ValueError("an MLP needs at least one layer; got an empty list of layers")
        if len(layers) == 2 and _ndim(layers[0]) == 2 and _ndim(layers[1]) == 1:
            raise ValueError(
                "layers must be a sequence of (w, b) pairs, but got one bare (w, b) pair; "
                "for a one-layer network write [(w, b)]"
            )
        move = checks.host_or_device if host else checks.to_device
        built: list[Layer] = []
        for i, pair in enumerate(layers):
            try:
                w, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"layer {i}: expected a (w, b) pair, got {pair!r}") from None
            w = move(w, dtype)  # host values cast by NumPy: no program compiled
            b = move(b, dtype)
            if w.ndim != 2:
                raise ValueError(f"layer {i}: w must have shape (n_in, n_out), got {w.shape}")
            if b.shape != (w.shape[1],):
                raise ValueError(
                    f"layer {i}: b must have shape ({w.shape[1]},) to match w {w.shape}, "
                    f"got {b.shape}"
                )
            if not jnp.issubdtype(w.dtype, jnp.floating):
                w, b = w.astype(jnp.result_type(float)), b.astype(jnp.result_type(float))
            if i > 0 and built[-1].w.shape[1] != w.shape[0]:
                raise ValueError(
                    f"layer {i}: w has {w.shape[0]} inputs but layer {i - 1} has "
                    f"{built[-1].w.shape[1]} outputs"
                )
            if check_finite:
                _check_finite_layer(i, w, b)
            built.append(Layer(w, b))
        names = _resolve_activations(
            activations, len(built), loss, article_mode, built[-1].w.shape[1] if built else None
        )
        return cls(built, names, loss, article_mode)

    # -- architecture: everything but the arrays -------------------------
    def architecture(self) -> dict[str, Any]:
        """Everything but the arrays, as a JSON-able dict (``json.dumps`` takes it as is).

        Returns:
            ``{"sizes": [n_in, ..., n_out], "activations": [...], "loss": ...,
            "article_mode": bool, "dtypes": [[w dtype, b dtype], ...] per layer,
            "networks": None}``; for stacked params (every leaf with one leading
            network axis, as :func:`jbpnn.many.init_many` builds) ``networks`` is
            their number and ``sizes`` describe one network.
            ``MLP.from_architecture(params.architecture(), jax.tree.leaves(params))``
            rebuilds ``params``.
        """
        n = network_count(self)
        shapes = [np.shape(layer.w)[-2:] for layer in self.layers]
        return {
            "sizes": [int(shapes[0][0])] + [int(s[1]) for s in shapes],
            "activations": list(self.activations),
            "loss": self.loss,
            "article_mode": self.article_mode,
            "dtypes": [[jnp.dtype(leaf.dtype).name for leaf in layer] for layer in self.layers],
            "networks": n or None,
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any], leaves: Sequence[ArrayLike]) -> MLP:
        """Params from :meth:`architecture`'s dict and a flat list of arrays, no template.

        Args:
            architecture: a dict from :meth:`architecture` (or ``json.loads`` of one).
            leaves: the arrays in ``jax.tree.leaves(params)`` order, ``w0, b0, w1, b1,
                ...``; each is cast to the dtype the dict names. Tracers are fine
                (inside ``jit``/``vmap``: shapes are checked, values are not).

        Raises:
            ValueError: a missing or malformed entry of the dict, the wrong number of
                arrays or a wrong shape (naming the leaf, e.g. ``.layers[1].w``),
                NaN/inf, unknown names or an invalid (loss, output) pair.
            TypeError: a dtype name that is not a floating dtype.
        """
        arch = _check_architecture(architecture)
        sizes, n = arch["sizes"], arch["networks"]
        n_layers = len(sizes) - 1
        leaves = list(leaves)
        if len(leaves) != 2 * n_layers:
            raise ValueError(
                f"sizes {sizes} describe {n_layers} layer(s), so {2 * n_layers} arrays "
                f"(w0, b0, w1, b1, ...), but got {len(leaves)}"
            )
        lead = () if n is None else (n,)
        layers = []
        for i in range(n_layers):
            pair = []
            for j, (name, shape) in enumerate(
                (("w", sizes[i : i + 2]), ("b", sizes[i + 1 : i + 2]))
            ):
                leaf = leaves[2 * i + j]
                expected = lead + tuple(shape)
                if np.shape(leaf) != expected:
                    per = f" ({n} networks)" if n is not None else ""
                    raise ValueError(
                        f".layers[{i}].{name} must have shape {expected}{per} for sizes "
                        f"{sizes}, got {np.shape(leaf)}"
                    )
                pair.append(jnp.asarray(leaf, dtype=arch["dtypes"][i][j]))
            _check_finite_layer(i, *pair)
            layers.append(Layer(*pair))
        names = _resolve_activations(
            arch["activations"], n_layers, arch["loss"], arch["article_mode"], sizes[-1]
        )
        return cls(layers, names, arch["loss"], arch["article_mode"])

    def __call__(self, x: ArrayLike, *, check_finite: bool = True) -> Array:
        """``jbpnn.network.apply(self, x)``: outputs of ``(n_in,)`` or ``(B, n_in)`` inputs."""
        from jbpnn.network import apply  # network imports params: deferred, not circular

        if isinstance(x, MLP):  # optax.multi_transform calls a callable label tree on params
            raise TypeError(
                "an MLP called on an MLP: MLP(x) runs the network on inputs x. An MLP of "
                "labels (optax.multi_transform / optax.partition call a callable "
                "param_labels on the params) needs wrapping: param_labels=lambda _: labels"
            )
        return apply(self, x, check_finite=check_finite)

    # -- conveniences ----------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths, input first: ``(n_in, n_hidden..., n_out)``."""
        return (self.layers[0].w.shape[0],) + tuple(layer.w.shape[1] for layer in self.layers)

    @property
    def n_in(self) -> int:
        return self.layers[0].w.shape[0]

    @property
    def n_out(self) -> int:
        return self.layers[-1].w.shape[1]

    @property
    def dtype(self) -> Any:
        return self.layers[0].w.dtype

    def replace_layers(self, layers: Sequence[Layer]) -> MLP:
        """The same architecture (names) with other layer arrays."""
        return MLP(layers, self.activations, self.loss, self.article_mode)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        try:
            shapes = ", ".join(f"{tuple(np.shape(l.w))}" for l in self.layers)  # noqa: E741
        except Exception:  # pragma: no cover - placeholder leaves
            shapes = "?"
        mode = ", article_mode=True" if self.article_mode else ""
        return f"MLP(w shapes=[{shapes}], activations={self.activations}, loss={self.loss!r}{mode})"


_ARCHITECTURE_KEYS = ("sizes", "activations", "loss", "article_mode", "dtypes")


def network_count(params: MLP) -> int:
    """How many networks ``params`` holds: 0 for ONE network (every ``w`` 2-D, ``b`` 1-D),
    ``N`` for stacked networks (every ``w`` 3-D, ``b`` 2-D, one leading axis of length
    ``N >= 1``, as :func:`jbpnn.many.init_many` builds). The one place this is decided.

    Raises:
        ValueError: a mix of ranks, or layers with different network counts.
    """
    ndims = {(np.ndim(layer.w), np.ndim(layer.b)) for layer in params.layers}
    if ndims == {(2, 1)}:
        return 0
    if ndims != {(3, 2)}:
        raise ValueError(
            "params must be one network (w 2-D, b 1-D) or stacked networks (w 3-D, b 2-D, a "
            f"leading network axis) in every layer; got (w, b) ndims {sorted(ndims)}"
        )
    counts = {np.shape(leaf)[0] for layer in params.layers for leaf in layer}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            "stacked params: every layer needs the same number (>= 1) of networks, got "
            f"{sorted(counts)}"
        )
    return int(counts.pop())


def check_network(params: Any, what: str = "params", *, stacked: bool = False) -> int:
    """Check an :class:`MLP` before anything is traced; returns :func:`network_count`.

    The constructor cannot check (JAX rebuilds pytrees from placeholders), so an
    ``MLP(layers, activations, loss)`` built directly is checked here, where it is used:
    every ``w`` ``(n_in, n_out)`` and ``b`` ``(n_out,)`` (after the network axis), each
    layer's inputs the outputs of the layer below, one known activation name per layer, a
    known loss exact with the output unit, output-only units (softmax) only there.

    Args:
        params: the network (or stacked networks).
        what: the function that takes it, named in the messages.
        stacked: accept stacked params (else ONE network is required).

    Raises:
        TypeError: ``params`` is not an MLP.
        ValueError: shapes that do not chain (naming the layer and the shapes), unknown
            activation names (listing the known ones), or stacked params where ONE network
            is expected (pointing to ``jax.vmap`` and ``result[i].params``).
    """
    where = "" if what == "params" else f"{what}: "
    if not isinstance(params, MLP):
        raise TypeError(
            f"{where}params must be an MLP (see init_params or MLP.from_layers), got "
            f"{type(params).__name__}"
        )
    if not params.layers:
        raise ValueError(f"{where}params has no layers; an MLP needs at least one")
    n = network_count(params)
    lead = 1 if n else 0
    previous = None
    for i, layer in enumerate(params.layers):
        w, b = tuple(np.shape(layer.w)[lead:]), tuple(np.shape(layer.b)[lead:])
        if b != (w[1],):
            raise ValueError(
                f"{where}layer {i}'s b has shape {b}, but its w {w} needs b of shape ({w[1]},)"
            )
        if previous is not None and previous[1] != w[0]:
            raise ValueError(
                f"{where}the layer shapes do not chain: layer {i}'s w has shape {w} "
                f"({w[0]} inputs) but layer {i - 1}'s w has shape {previous} "
                f"({previous[1]} outputs); w of layer l must be (n_out of layer l-1, n_out)"
            )
        previous = w
    if len(params.activations) != len(params.layers):
        raise ValueError(
            f"{where}params has {len(params.activations)} activation names for "
            f"{len(params.layers)} layers; give one per layer"
        )
    for i, name in enumerate(params.activations):
        try:
            get_activation(name)  # the registry's names, units registered by the user included
        except ValueError as error:
            raise ValueError(f"{where}layer {i}: {error}") from None
    try:  # the loss, an output-only unit below the output, the (loss, output unit) pair
        _resolve_activations(
            tuple(params.activations),
            len(params.layers),
            params.loss,
            params.article_mode,
            None if previous is None else previous[1],
        )
    except ValueError as error:  # a wrong pair trained on a delta that is not its gradient
        raise ValueError(f"{where}{error}") from None
    if n and not stacked:
        raise ValueError(
            f"{what} takes ONE network (w 2-D, b 1-D), but params is a stack of {n} networks "
            "(train_many's result.params, or a stacked checkpoint); take network i with "
            "result[i].params or jax.tree.map(lambda a: a[i], params), or map over the stack "
            "with jax.vmap, in_axes 0 for params and None for the data, e.g. "
            "jax.vmap(jbpnn.apply, in_axes=(0, None))"
        )
    return n


def first_network(stacked: MLP) -> MLP:
    """Network 0 of stacked params (the template for shapes, dtype and names)."""
    return jax.tree.map(lambda a: a[0], stacked)


def _check_architecture(arch: Any) -> dict[str, Any]:
    """The dict of :meth:`MLP.architecture`, checked and normalised (sizes as a tuple)."""
    if not isinstance(arch, Mapping):
        raise ValueError(f"architecture must be a dict, got {type(arch).__name__}")
    missing = [k for k in _ARCHITECTURE_KEYS if k not in arch]
    unknown = sorted(set(arch) - set(_ARCHITECTURE_KEYS) - {"networks"})
    if missing or unknown:
        raise ValueError(
            f"architecture: missing keys {missing}, unknown keys {unknown}; expected "
            f"{list(_ARCHITECTURE_KEYS)} and optionally 'networks'"
        )
    sizes = arch["sizes"]
    if (
        isinstance(sizes, (str, bytes))
        or not isinstance(sizes, Sequence)
        or len(sizes) < 2
        or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes
        )
    ):
        raise ValueError(f"architecture['sizes'] must be >= 2 positive integers, got {sizes!r}")
    sizes = tuple(int(s) for s in sizes)
    n_layers = len(sizes) - 1
    dtypes = arch["dtypes"]
    if (
        not isinstance(dtypes, Sequence)
        or len(dtypes) != n_layers
        or not all(
            isinstance(d, Sequence) and not isinstance(d, str) and len(d) == 2 for d in dtypes
        )
    ):
        raise ValueError(
            f"architecture['dtypes'] must hold one [w dtype, b dtype] pair per layer "
            f"({n_layers}), got {dtypes!r}"
        )
    dtypes = [
        [_float_dtype(f"architecture['dtypes'][{i}][{j}]", d) for j, d in enumerate(pair)]
        for i, pair in enumerate(dtypes)
    ]
    if not isinstance(arch["article_mode"], (bool, np.bool_)):
        raise ValueError(
            f"architecture['article_mode'] must be a bool, got {arch['article_mode']!r}"
        )
    networks = checks.check_int(
        "architecture['networks']", arch.get("networks"), 1, allow_none=True
    )
    return {
        "sizes": sizes,
        "activations": arch["activations"],
        "loss": arch["loss"],
        "article_mode": bool(arch["article_mode"]),
        "dtypes": dtypes,
        "networks": networks,
    }


def _ndim(a: Any) -> int | None:
    """``np.ndim(a)``, or None for a ragged sequence such as a ``(w, b)`` pair (of arrays,
    or of tracers inside the user's ``jit``, which NumPy cannot read: a TypeError)."""
    try:
        return np.ndim(a)
    except (ValueError, TypeError):
        return None


def _float_dtype(name: str, dtype: Any) -> np.dtype:
    """``dtype`` as ONE floating NumPy dtype; ``TypeError`` naming ``name`` otherwise."""
    if isinstance(dtype, (tuple, list)):
        raise TypeError(
            f"{name} must be one floating dtype such as jnp.float32, "
            f"got a {type(dtype).__name__}: {dtype!r}"
        )
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{name} must be a floating dtype such as jnp.float32, got {dtype!r}"
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"{name} must be a floating dtype (float16, bfloat16, float32, float64), got {dt.name}"
        )
    return dt


def _requested_dtype(dtype: Any) -> np.dtype:
    """A ``dtype=`` argument: one floating dtype, and float64 only with 64-bit JAX (JAX
    would make float32 arrays of it without a word here: the estimators refuse it too)."""
    dt = _float_dtype("dtype", dtype)
    if dt == np.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "dtype float64 needs 64-bit JAX: jax.config.update('jax_enable_x64', True) "
            "before creating arrays (or jax.enable_x64 around the work); without it the "
            "params would be float32"
        )
    return dt


def _check_finite_layer(i: int, w: Any, b: Any) -> None:
    """``ValueError`` naming layer ``i``, the leaf and the first index of a NaN or inf."""
    for name, leaf in (("w", w), ("b", b)):
        if not checks.is_concrete(leaf):
            continue
        bad = ~np.isfinite(np.asarray(leaf))
        if bad.any():
            first = tuple(int(j) for j in np.argwhere(bad)[0])
            raise ValueError(
                f"layer {i}: {name} holds {int(bad.sum())} NaN or inf value(s), the first at "
                f"index {first}; params must be finite"
            )


def layer_sizes(sizes: Any) -> tuple[int, ...]:
    """``sizes`` as a tuple of Python ints, checked: at least two positive integers, in
    order (a list, a tuple, a range, a 1-D array or Series, a generator); a set or a dict
    has no order ({3, 4, 1} became (1, 3, 4)), a string or a number is no sequence.

    Raises:
        ValueError: anything else, naming what was given.
    """
    if isinstance(sizes, jax.Array) and is_concrete(sizes):
        sizes = np.asarray(sizes)  # jnp.array([3, 4, 1]) as np.array([3, 4, 1])
    unordered = isinstance(sizes, (str, bytes, AbstractSet, Mapping, MappingView))
    if hasattr(sizes, "__array__") and not isinstance(sizes, np.ndarray):
        sizes = np.asarray(sizes)  # a pandas Series
    flat = not isinstance(sizes, np.ndarray) or sizes.ndim == 1
    if unordered or not flat or not isinstance(sizes, Iterable):
        raise ValueError(
            "sizes must be a list, tuple or 1-D array of layer widths in order, input first "
            "(n_in, ..., n_out), "
            f"got {type(sizes).__name__} {sizes!r}"
        )
    widths = tuple(int(n) if isinstance(n, np.integer) else n for n in sizes)
    if len(widths) < 2 or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in widths
    ):
        raise ValueError(
            f"sizes must be at least two positive integers (n_in, ..., n_out), got {widths!r}"
        )
    return widths


def _resolve_activations(
    activations: str | Sequence[str],
    n_layers: int,
    loss: str,
    article_mode: bool = False,
    n_out: int | None = None,
) -> tuple[str, ...]:
    """One name per layer, validated; a single name means 'every hidden layer'.

    With a single name, the output layer gets the activation that the loss is
    exact with (softmax for cross_entropy, sigmoid for binary_cross_entropy) and
    the same name for mse, as scikit-learn's MLPClassifier does. ``n_out``: the output
    layer's width, where known (a softmax over one unit is refused).
    """
    get_loss(loss)
    if not isinstance(activations, (str, list, tuple)):  # None, 5: a raw "not iterable"
        raise ValueError(
            f"activations must be a name or a list of names (one per layer), got {activations!r}"
        )
    if isinstance(activations, str):
        output = _DEFAULT_OUTPUT.get(loss, activations)
        names = (activations,) * (n_layers - 1) + (output,)
    else:
        names = tuple(activations)
        if len(names) != n_layers:
            raise ValueError(
                f"got {len(names)} activation names for {n_layers} layers; "
                "give one name, or one per layer"
            )
    for i, name in enumerate(names):
        act = get_activation(name)
        if act.output_only and i != n_layers - 1:
            raise ValueError(
                f"activation {name!r} may only be used on the output layer, "
                f"but was given for layer {i} of {n_layers}"
            )
    check_pair(loss, names[-1])
    if n_out == 1 and names[-1] == "softmax":
        raise ValueError(
            "a softmax output over one unit is 1 for every input, so its loss and gradient "
            "are 0 and nothing is learned: for one output use sigmoid with "
            "binary_cross_entropy (two classes, targets 0/1) or identity with mse, or give "
            "the softmax two or more outputs (one-hot targets)"
        )
    if article_mode and loss in _LOGISTIC_DELTAS:
        raise ValueError(
            f"article_mode's sigmoid is the article code's (tanh forward, O(1 - O) as its "
            f"derivative), but the output delta T - O of {loss!r} is the logistic "
            "sigmoid's: in article mode use mse, the article's loss, or build the network "
            "without article_mode"
        )
    return names


# Losses whose output delta T - O holds for the logistic sigmoid only (not article mode's)
_LOGISTIC_DELTAS = ("binary_cross_entropy",)


def replaced_builtins(params: MLP) -> list[str]:
    """The built-in names ``params`` uses that this process has replaced by a user's unit
    or loss (``register_activation(..., replace=True)``), as ``"activation:NAME"`` and
    ``"loss:NAME"``: what a model file (its ``replaced`` entry) and a pickle record."""
    names = [
        f"activation:{a}"
        for a in dict.fromkeys(params.activations)
        if a in BUILTIN_ACTIVATIONS and not activation_is_builtin(a)
    ]
    if params.loss in BUILTIN_LOSSES and not loss_is_builtin(params.loss):
        names.append(f"loss:{params.loss}")
    return names


def init_params(
    key: ArrayLike,
    sizes: Sequence[int],
    activations: str | Sequence[str] = "sigmoid",
    loss: str = "mse",
    init: str = "article",
    dtype: Any = jnp.float32,
    article_mode: bool = False,
) -> MLP:
    """Random params for a network of the given layer widths.

    Args:
        key: a ``jax.random`` key, or an int seed (same as ``jax.random.key(seed)``): a
            Python or NumPy int, or an integer JAX scalar (traced too: ``jax.vmap`` of
            ``init_params`` over ``jnp.arange(n)`` draws ``n`` networks).
        sizes: layer widths, input first, e.g. ``(9, 2, 1)`` or ``(64, 128, 64, 10)``.
        activations: one name for every layer (with cross-entropy losses, the
            output layer then gets the matching softmax or sigmoid), or one
            name per layer.
        loss: ``"mse"``, ``"cross_entropy"`` or ``"binary_cross_entropy"``.
        init: ``"article"``: weights and biases uniform in ``[-0.2, 0.2]``, as the
            article's code; ``"glorot"``: weights uniform in ``+-sqrt(6 / (n_in +
            n_out))``, biases 0; ``"he"``: weights normal with std
            ``sqrt(2 / n_in)``, biases 0.
        dtype: floating dtype of every array. The weights are drawn in float32 and
            cast (as scikit-learn draws in float64 for any dtype): the same key starts
            every dtype from the same network, rounded.
        article_mode: reproduce the article code's bugs (see :class:`MLP`); for
            comparison studies only.

    Returns:
        An :class:`MLP` with ``len(sizes) - 1`` layers.

    Raises:
        ValueError: bad sizes, unknown names, an invalid (loss, output) pair.
        TypeError: ``dtype`` not one floating dtype (an integer dtype, a tuple), or
            ``key`` neither an int seed nor a ``jax.random`` key.
    """
    sizes = layer_sizes(sizes)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")
    if not isinstance(loss, str) or loss not in LOSSES:  # ["mse"]: unhashable, a raw error
        get_loss(loss)
    names = _resolve_activations(activations, len(sizes) - 1, loss, article_mode, sizes[-1])
    dtype = jnp.dtype(dtype) if dtype is None else _requested_dtype(dtype)
    if key is None:  # as_key would take None as seed 0; here the key is required
        raise TypeError(
            "key must be an int seed or a jax.random.key, got NoneType None; init_params "
            "has no default key (e.g. key=0)"
        )
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_params * dtype.itemsize > 2**26:  # above 64 MiB, ask how much memory is free
        check_array_memory(
            (n_params,),
            dtype,
            f"the {n_params:,} params of a {'-'.join(map(str, sizes))} network",
            device=jax.devices()[0],
            advice="choose smaller layers",
        )
    if (
        isinstance(key, jax.Array)
        and key.shape == ()
        and jnp.issubdtype(key.dtype, jnp.integer)
        and not jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    ):  # an int seed as a JAX array: a value, or traced under jit / vmap (its key)
        try:
            key = int(key)
        except jax.errors.ConcretizationTypeError:
            key = jax.random.key(key)
    if isinstance(key, np.ndarray) and key.ndim == 0 and np.issubdtype(key.dtype, np.integer):
        key = key.item()  # np.array(5) as 5, as jnp.array(5) is taken
    seed = isinstance(key, (int, np.integer)) and not isinstance(key, bool)
    if seed:  # as uint32: a Python int from 2**31 on would overflow jit's int32
        key = np.uint32(check_seed("key", key))
    else:  # a typed key, a legacy uint32[2] key, or TypeError / ValueError naming key
        key = checks.as_key(key, "key")
    if _shape_free_draws(key, seed) and _bucket_fits(sizes):
        layers = _init_layers_bucketed(key, seed, sizes, init, dtype)
    elif seed:
        layers = _in_dtype(_init_layers_from_seed(key, sizes, init), dtype)
    else:
        layers = _in_dtype(_init_layers(key, sizes, init), dtype)
    return MLP(layers, names, loss, article_mode)


def _in_dtype(layers: list[Layer], dtype: Any) -> list[Layer]:
    """Float32 draws in the network's dtype: cast on the host, as the bucketed draws are
    (round to nearest even; XLA's CPU convert at ``--xla_backend_optimization_level=0``
    rounded some float16 ties the other way), or by JAX where the key is traced."""
    if np.dtype(jax.dtypes.canonicalize_dtype(dtype)) == DRAW_DTYPE:
        return layers
    if all(checks.is_concrete(a) for a in jax.tree.leaves(layers)):
        return jax.device_put(_cast(jax.device_get(layers), dtype))
    return [Layer(w.astype(dtype), b.astype(dtype)) for w, b in layers]


# ---------------------------------------------------------------- the draws, bucketed
# Compiling JAX's threefry for a new set of shapes takes 0.5-1 s on a CPU: most of an
# estimator's first fit. With JAX's default "partitionable" threefry, element i of
# jax.random.uniform(k, shape) depends only on k and i (the flat row-major index), and
# jax.random.split(k, n)[i] only on k and i. So every layer's draws are the first
# n_in * n_out of one long draw per layer key, and ONE program per (power-of-two layer
# count, power-of-two length, init, dtype) serves every architecture with the same
# values as _init_layers (tests/test_params.py checks them bit for bit).
_MIN_DRAW = 4096  # the shortest draw per layer (a power of two)
# Every dtype's weights are drawn in float32 and cast, as scikit-learn draws in float64
# for any dtype: the same key gives the same starting weights (rounded) in float16,
# bfloat16, float32 and float64, so a run compared across dtypes differs by rounding
# alone. (Drawn in each dtype, they were four unrelated sets of weights.)
DRAW_DTYPE = np.dtype(np.float32)


def _cast(tree: Any, dtype: Any) -> Any:
    """Host draws (NumPy, float32) in the network's dtype (its canonical one: float32
    for float64 without ``jax_enable_x64``)."""
    npd = np.dtype(jax.dtypes.canonicalize_dtype(dtype))  # (under eval_shape: tracers)
    return jax.tree.map(lambda a: a if a.dtype == npd else a.astype(npd), tree)


def _shape_free_draws(key: Any, seed: bool) -> bool:
    """True where the bucketed draws equal _init_layers': JAX's partitionable threefry,
    a concrete seed (under threefry, the default implementation) or threefry key (a
    traced one goes through _init_layers)."""
    if not jax.config.jax_threefry_partitionable:  # type: ignore[attr-defined]
        return False
    if seed:  # jax.random.key(seed) is a threefry key only under the default implementation
        impl = str(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]
        return impl == "threefry2x32" and checks.is_concrete(key)
    return (
        checks.is_concrete(key)
        and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        and key.shape == ()
        and str(jax.random.key_impl(key)) == "threefry2x32"
    )


def _power_of_two(n: int, least: int = 1) -> int:
    return max(least, 1 << (max(n, 1) - 1).bit_length())


def _bound(x: Any, dtype: Any) -> np.ndarray:
    """A float64 bound or scale ``x`` in ``dtype`` (canonical: float32 for float64 without
    ``jax_enable_x64``), as the per-architecture program and the bucketed one both use it:
    a 16-bit dtype through float32 (a float64 rounded straight to float16 can land one
    step away from the float32 value rounded to float16)."""
    npd = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    x = np.asarray(x, np.float64)
    return (x.astype(np.float32) if npd.itemsize < 4 else x).astype(npd)


def _bucket_plan(sizes: tuple[int, ...], init: str, dtype: Any) -> tuple:
    """``(pairs, count, width, b_width, lo, hi)``: the bucketed draw's static sizes and
    its per-layer bounds for ``sizes`` (the same for every key), in the canonical dtype."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    count = _power_of_two(len(pairs))
    width = _power_of_two(max(a * b for a, b in pairs), _MIN_DRAW)
    b_width = _power_of_two(max(b for _, b in pairs), _MIN_DRAW) if init == "article" else 0
    if init == "he":  # w = normal * sqrt(2 / n_in)
        hi = _bound([np.sqrt(2.0 / a) for a, _ in pairs] + [1.0] * (count - len(pairs)), dtype)
        lo = np.zeros(count, hi.dtype)
    else:  # w ~ uniform(-limit, limit)
        limits = [_limit(init, a, b) for a, b in pairs] + [1.0] * (count - len(pairs))
        hi = _bound(limits, dtype)
        lo = -hi
    return pairs, count, width, b_width, lo, hi


def _limit(init: str, n_in: int, n_out: int) -> float:
    """The bound of a uniform init: the article's 0.2, or glorot's sqrt(6 / (n_in + n_out))."""
    return 0.2 if init == "article" else float(np.sqrt(6.0 / (n_in + n_out)))


def _bucket_fits(sizes: tuple[int, ...]) -> bool:
    """Whether the bucketed draw's padded layout (every layer as long as the widest, the
    layer count a power of two) stays within 4x the weights (and 2**22 draws): a wide
    layer among many narrow ones would draw, and hold, many times the network's size
    (1024-1024 then 16 layers of 1: 34M draws for 1M weights); such a network takes the
    per-architecture program, the same values."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    padded = _power_of_two(len(pairs)) * _power_of_two(max(a * b for a, b in pairs), _MIN_DRAW)
    return padded <= max(4 * sum(a * b for a, b in pairs), 2**22)


def _host_layers(w_all: np.ndarray, b_all: np.ndarray, pairs: list, init: str) -> tuple:
    """Each layer's ``(w, b)`` cut out of one key's host draws."""
    w_host = [w_all[i, : a * b].reshape(a, b) for i, (a, b) in enumerate(pairs)]
    if init == "article":
        b_host = [b_all[i, :b] for i, (_, b) in enumerate(pairs)]
    else:
        b_host = [np.zeros(b, w_all.dtype) for _, b in pairs]
    return w_host, b_host


def _init_layers_bucketed(
    key: Any, seed: bool, sizes: tuple[int, ...], init: str, dtype: Any
) -> list[Layer]:
    """_init_layers' arrays, drawn by a program shared by every architecture."""
    pairs, count, width, b_width, lo, hi = _bucket_plan(sizes, init, DRAW_DTYPE)
    w_all, b_all = jax.device_get(_draws(key, lo, hi, count, width, b_width, init, seed))
    w_dev, b_dev = jax.device_put(_cast(_host_layers(w_all, b_all, pairs, init), dtype))
    return [Layer(w, b) for w, b in zip(w_dev, b_dev)]


def stacked_layers(seeds: Any, sizes: tuple[int, ...], init: str, dtype: Any) -> list[Layer] | None:
    """``init_params(seed, sizes, ..., init, dtype)``'s layers for every int seed, stacked
    (a leading axis of ``len(seeds)``), bit for bit: each seed's draw as init_params makes
    it (the random bits from the host for a uniform init, 16 seeds at a time, else the
    bucketed program), all dispatched first and copied back with ONE ``device_get`` (one
    ``init_params`` per seed waits for each copy in turn). None without JAX's partitionable
    threefry (see ``_shape_free_draws``). ``sizes`` and ``init`` are already checked."""
    if not (_shape_free_draws(np.uint32(seeds[0]), True) and _bucket_fits(tuple(sizes))):
        return None
    pairs, count, width, b_width, lo, hi = _bucket_plan(tuple(sizes), init, DRAW_DTYPE)
    draws = []
    for start in range(0, len(seeds), 16):  # the host's bits 16 seeds at a time (memory)
        chunk = np.asarray(seeds[start : start + 16], np.uint32)
        keys = np.stack([np.zeros_like(chunk), chunk], axis=-1)  # jax.random.key(s)'s data
        unit = host_unit_draws(keys, count, width, b_width, init, lo.dtype)
        if unit is None:
            draws += [_bucketed_draws(s, lo, hi, count, width, b_width, init, True) for s in chunk]
        else:
            draws += [_scaled_draws(w, b, lo, hi) for w, b in zip(*unit)]
    per_seed = [_host_layers(w, b, pairs, init) for w, b in jax.device_get(draws)]
    w = [np.stack([ws[i] for ws, _ in per_seed]) for i in range(len(pairs))]
    b = [np.stack([bs[i] for _, bs in per_seed]) for i in range(len(pairs))]
    w_dev, b_dev = jax.device_put(_cast((w, b), dtype))
    return [Layer(wi, bi) for wi, bi in zip(w_dev, b_dev)]


def mapped_layers(seeds: Any, sizes: tuple[int, ...], init: str, dtype: Any) -> list[Layer] | None:
    """:func:`stacked_layers`' values (bit for bit) from ONE compiled loop over the seeds:
    ``lax.map`` of the bucketed draw, ``MAPPED_CHUNK`` seeds a call (the last chunk padded),
    the draws as long as the power of two that holds the widest layer (no ``_MIN_DRAW``
    floor: this program is not init_params' own), copied back with one ``device_get``.
    For many networks on a CPU: one compile of 0.3-0.4 s, shared by every count of
    networks and every architecture of the same bucket, instead of a dispatch per network
    or a vmapped ``init_params`` (whose exact-shape draws compiled for 1-7 s). None
    without JAX's partitionable threefry. ``sizes`` and ``init`` are already checked."""
    if not (_shape_free_draws(np.uint32(seeds[0]), True) and _bucket_fits(tuple(sizes))):
        return None
    pairs, count, _, _, lo, hi = _bucket_plan(tuple(sizes), init, DRAW_DTYPE)
    width = _power_of_two(max(a * b for a, b in pairs))
    b_width = _power_of_two(max(b for _, b in pairs)) if init == "article" else 0
    n = len(seeds)
    padded = np.zeros(-(-n // MAPPED_CHUNK) * MAPPED_CHUNK, np.uint32)
    padded[:n] = seeds
    chunks = padded.reshape(-1, MAPPED_CHUNK)
    draws = jax.device_get([_mapped_draws(c, lo, hi, count, width, b_width, init) for c in chunks])
    w_all = np.concatenate([w for w, _ in draws])[:n]  # (n, count, width)
    b_all = np.concatenate([b for _, b in draws])[:n]
    w = [w_all[:, i, : a * b].reshape(n, a, b) for i, (a, b) in enumerate(pairs)]
    if init == "article":
        b = [b_all[:, i, :nb] for i, (_, nb) in enumerate(pairs)]
    else:
        b = [np.zeros((n, nb), w_all.dtype) for _, nb in pairs]
    w_dev, b_dev = jax.device_put(_cast((w, b), dtype))
    return [Layer(wi, bi) for wi, bi in zip(w_dev, b_dev)]


MAPPED_CHUNK = 256  # seeds per call of mapped_layers' program (its compiled loop length)


@partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _mapped_draws(
    seeds: Array, lo: Array, hi: Array, count: int, width: int, b_width: int, init: str
) -> tuple[Array, Array]:
    """:func:`_bucketed_draws` of every seed, one after the other in a compiled loop."""
    draw = _bucketed_draws.__wrapped__  # type: ignore[attr-defined]  # the same draw, traced
    return lax.map(lambda s: draw(s, lo, hi, count, width, b_width, init, True), seeds)


def _draws(
    key: Any,
    lo: np.ndarray,
    hi: np.ndarray,
    count: int,
    width: int,
    b_width: int,
    init: str,
    seed: bool,
) -> tuple[Array, Array]:
    """:func:`_bucketed_draws`' values. For a uniform init (an integer seed or one
    concrete threefry key) the random bits come from the host (:mod:`jbpnn._threefry`:
    the same bits, no threefry program to compile, which took 0.3-0.7 s of a process's
    first fit on a 2-core CPU) and only the scaling to ``[lo, hi)`` runs in JAX;
    otherwise the bucketed program draws them."""
    # (_shape_free_draws has checked that a key is one concrete threefry key)
    data = np.array([0, key], np.uint32) if seed else np.asarray(jax.random.key_data(key))
    unit = host_unit_draws(data, count, width, b_width, init, lo.dtype)
    if unit is None:
        return _bucketed_draws(key, lo, hi, count, width, b_width, init, seed)
    return _scaled_draws(*unit, lo, hi)


@jax.jit
def _scaled_draws(w_unit: Array, b_unit: Array, lo: Array, hi: Array) -> tuple[Array, Array]:
    """The last step of :func:`_bucketed_draws`' ``jax.random.uniform`` on unit draws in
    ``[0, 1)``: ``max(lo, u (hi - lo) + lo)`` per layer, biases on ``[-0.2, 0.2)`` (XLA
    rounds the multiply-add as in that program: tests/test_params.py compares them)."""
    dtype = lo.dtype

    def scale(u: Array, a: Array, b: Array) -> Array:
        return lax.max(a, u * (b - a) + a)

    w = jax.vmap(scale)(w_unit, lo, hi)
    if b_unit.shape[1] == 0:
        return w, b_unit
    bias_lo, bias_hi = jnp.asarray(-0.2, dtype), jnp.asarray(0.2, dtype)
    return w, jax.vmap(lambda u: scale(u, bias_lo, bias_hi))(b_unit)


@partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def _bucketed_draws(
    key: Array, lo: Array, hi: Array, count: int, width: int, b_width: int, init: str, seed: bool
) -> tuple[Array, Array]:
    """``count`` layer keys, as _init_layers splits them, and a draw of ``width`` weights
    (and ``b_width`` biases) from each: uniform on ``[lo, hi)``, or for "he" normal
    times ``hi``."""
    keys = jax.random.split(jax.random.key(key) if seed else key, count)
    kw, kb = jax.vmap(jax.random.split, out_axes=1)(keys)
    dtype = lo.dtype
    if init == "he":
        w = jax.vmap(lambda k, scale: jax.random.normal(k, (width,), dtype) * scale)(kw, hi)
    else:
        w = jax.vmap(lambda k, a, b: jax.random.uniform(k, (width,), dtype, a, b))(kw, lo, hi)
    if not b_width:
        return w, jnp.zeros((count, 0), dtype)
    bias = lambda k: jax.random.uniform(k, (b_width,), dtype, -0.2, 0.2)  # noqa: E731
    return w, jax.vmap(bias)(kb)


@partial(jax.jit, static_argnums=(1, 2))
def _init_layers_from_seed(seed: Array, sizes: tuple[int, ...], init: str):
    """:func:`_init_layers` for ``jax.random.key(seed)``, key creation included."""
    return _init_layers(jax.random.key(seed), sizes, init)


@partial(jax.jit, static_argnums=(1, 2))
def _init_layers(key: Array, sizes: tuple[int, ...], init: str) -> list[Layer]:
    """The random arrays of :func:`init_params`, drawn in one compiled program, in
    ``DRAW_DTYPE`` (:func:`_in_dtype` casts them)."""
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    d = DRAW_DTYPE
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]):
        kw, kb = jax.random.split(k)
        if init == "article":  # the article's getRandom(-0.2, 0.2), biases included
            w = jax.random.uniform(kw, (n_in, n_out), d, -0.2, 0.2)
            b = jax.random.uniform(kb, (n_out,), d, -0.2, 0.2)
        elif init == "glorot":
            limit = _bound(_limit(init, n_in, n_out), d)  # in float32, as the bucketed draw's
            w = jax.random.uniform(kw, (n_in, n_out), d, -limit, limit)
            b = jnp.zeros((n_out,), d)
        else:  # he: the scale in float32, so w is float32 (a float64 scale made it float64)
            w = jax.random.normal(kw, (n_in, n_out), d) * _bound(np.sqrt(2.0 / n_in), d)
            b = jnp.zeros((n_out,), d)
        layers.append(Layer(w, b))
    return layers

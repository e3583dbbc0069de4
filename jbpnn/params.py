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
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jbpnn.activations import get_activation
from jbpnn.losses import LOSSES, check_pair, get_loss

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


@jax.tree_util.register_pytree_node_class
class MLP:
    """A multilayer perceptron: layers as data, activation and loss names as metadata.

    Build one with :func:`init_params` or :meth:`MLP.from_layers`; both check
    the names, the shapes and the (loss, output activation) pair.

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
        self.article_mode = bool(article_mode)

    # -- pytree protocol -------------------------------------------------
    def tree_flatten(self) -> tuple[tuple[tuple[Layer, ...]], tuple[Any, ...]]:
        return (self.layers,), (self.activations, self.loss, self.article_mode)

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
    ) -> MLP:
        """Build params from exact weights and biases (oracles, ported models).

        Args:
            layers: sequence of ``(w, b)`` pairs, ``w`` of shape ``(n_in, n_out)``
                and ``b`` of shape ``(n_out,)``, input side first.
            activations: one name for every layer, or one name per layer.
            loss: loss name; see :data:`jbpnn.losses.LOSSES`.
            dtype: cast every array to this dtype (default: keep the arrays' own,
                floats only).
            article_mode: reproduce the article code's bugs (see :class:`MLP`).

        Raises:
            ValueError: on unknown names, an invalid (loss, output) pair, or
                shapes that do not chain.
        """
        if len(layers) == 0:
            raise ValueError("an MLP needs at least one layer; got an empty list of layers")
        built = []
        for i, pair in enumerate(layers):
            try:
                w, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"layer {i}: expected a (w, b) pair, got {pair!r}") from None
            w = jnp.asarray(w, dtype=dtype)
            b = jnp.asarray(b, dtype=dtype)
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
            built.append(Layer(w, b))
        names = _resolve_activations(activations, len(built), loss)
        return cls(built, names, loss, article_mode)

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


def _resolve_activations(
    activations: str | Sequence[str], n_layers: int, loss: str
) -> tuple[str, ...]:
    """One name per layer, validated; a single name means 'every hidden layer'.

    With a single name, the output layer gets the activation that the loss is
    exact with (softmax for cross_entropy, sigmoid for binary_cross_entropy) and
    the same name for mse, as scikit-learn's MLPClassifier does.
    """
    get_loss(loss)
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
        key: a ``jax.random`` key, or an int seed (same as ``jax.random.key(seed)``).
        sizes: layer widths, input first, e.g. ``(9, 2, 1)`` or ``(64, 128, 64, 10)``.
        activations: one name for every layer (with cross-entropy losses, the
            output layer then gets the matching softmax or sigmoid), or one
            name per layer.
        loss: ``"mse"``, ``"cross_entropy"`` or ``"binary_cross_entropy"``.
        init: ``"article"``: weights and biases uniform in ``[-0.2, 0.2]``, as the
            article's code; ``"glorot"``: weights uniform in ``+-sqrt(6 / (n_in +
            n_out))``, biases 0; ``"he"``: weights normal with std
            ``sqrt(2 / n_in)``, biases 0.
        dtype: floating dtype of every array.
        article_mode: reproduce the article code's bugs (see :class:`MLP`); for
            comparison studies only.

    Returns:
        An :class:`MLP` with ``len(sizes) - 1`` layers.
    """
    sizes = tuple(int(n) if isinstance(n, np.integer) else n for n in sizes)
    if len(sizes) < 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in sizes):
        raise ValueError(
            f"sizes must be at least two positive integers (n_in, ..., n_out), got {sizes!r}"
        )
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")
    if loss not in LOSSES:
        get_loss(loss)
    names = _resolve_activations(activations, len(sizes) - 1, loss)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        layers = _init_layers_from_seed(int(key), sizes, init, jnp.dtype(dtype))
    else:
        layers = _init_layers(key, sizes, init, jnp.dtype(dtype))
    return MLP(layers, names, loss, article_mode)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _init_layers_from_seed(seed: Array, sizes: tuple[int, ...], init: str, dtype: Any):
    """:func:`_init_layers` for ``jax.random.key(seed)``, key creation included."""
    return _init_layers(jax.random.key(seed), sizes, init, dtype)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _init_layers(key: Array, sizes: tuple[int, ...], init: str, dtype: Any) -> list[Layer]:
    """The random arrays of :func:`init_params`, drawn in one compiled program."""
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]):
        kw, kb = jax.random.split(k)
        if init == "article":  # the article's getRandom(-0.2, 0.2), biases included
            w = jax.random.uniform(kw, (n_in, n_out), dtype, -0.2, 0.2)
            b = jax.random.uniform(kb, (n_out,), dtype, -0.2, 0.2)
        elif init == "glorot":
            limit = np.sqrt(6.0 / (n_in + n_out))
            w = jax.random.uniform(kw, (n_in, n_out), dtype, -limit, limit)
            b = jnp.zeros((n_out,), dtype)
        else:  # he
            w = jax.random.normal(kw, (n_in, n_out), dtype) * np.sqrt(2.0 / n_in)
            b = jnp.zeros((n_out,), dtype)
        layers.append(Layer(w, b))
    return layers

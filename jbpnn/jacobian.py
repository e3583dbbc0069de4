"""The Jacobian of the outputs with respect to every weight, back-propagated by hand.

Levenberg-Marquardt and Gauss-Newton need, for every example ``n`` and output ``k``,
the derivative of the output ``O_nk`` (or of the residual ``e_nk = O_nk - T_nk``, the
same thing: ``T`` does not depend on the weights) with respect to every weight and
bias. Hagan and Menhaj (IEEE Trans. Neural Networks 5(6), 1994, "Training feedforward
networks with the Marquardt algorithm") derived it as a back-propagation of the output
*sensitivities* instead of the error: where :func:`jbpnn.network.deltas` carries one
vector ``Err`` back through the layers, here every output unit ``k`` carries its own
``dO_k/dnet`` back, all ``n_out`` of them at once as the rows of a matrix ``S``.

For ONE example, with ``S_l`` of shape ``(n_out, n_l)``, row ``k`` = ``dO_k/dnet_l``:

    output     S_L = J_L^T I                    act.backprop(O_L, u_k), u_k the k-th unit vector
    hidden     S_l = J_l^T (S_{l+1} w_{l+1}^T)  act.backprop(O_l, S_{l+1} @ w_{l+1}.T)
    weights    dO_k/dw_l[i, j] = O_{l-1, i} S_l[k, j]    (outer(O_{l-1}, S_l[k]))
    biases     dO_k/db_l[j]    = S_l[k, j]

``J_l`` is the activation's Jacobian ``dO_l/dnet_l``, applied through the SAME
``backprop`` entries of :func:`jbpnn.activations.activation_table` that the deltas use,
written from the unit's output: ``O(1 - O)`` for the sigmoid, ``1 - O^2`` for tanh,
``diag(O) - O O^T`` for softmax (from the net input for the units that use it, swish,
gelu, softplus: :func:`jbpnn.activations.units`). So with ``params.article_mode`` the
Jacobian is the article code's derivative (its tanh "sigmoid" differentiated as
``O - O^2``, biases that never reach the forward pass still given ``dO/db = S``), consistent with
:func:`jbpnn.network.backward` and NOT the derivative of its forward pass.

Relation to the gradient (mse, ``E_n = 1/2 sum_k e_nk^2``): ``dE_n/dtheta = J_n^T e_n``,
so ``J^T e = N g`` where ``g`` is :func:`jbpnn.network.batch_gradient` (the batch mean),
``e^T e = 2 N loss``, and ``J^T J`` is the Gauss-Newton approximation of ``N`` times the
Hessian of the mean loss. Levenberg-Marquardt's step is ``(J^T J + mu I) dx = -J^T e``.

The parameter order (the columns of the Jacobian, :func:`flatten_params`): layer 0's
``w`` row-major (``w[i, j]`` at ``i * n_out_0 + j``), layer 0's ``b``, layer 1's ``w``,
layer 1's ``b``, ... -- the order of ``jax.tree.leaves(params)``, each leaf raveled, as
``jax.flatten_util.ravel_pytree`` gives it. Rows: example ``n``, output ``k`` at row
``n * n_out + k``.

:func:`normal_equations` gives ``J^T J``, ``J^T e`` and ``e^T e`` without storing ``J``:
it accumulates them over blocks of examples in a ``lax.scan`` (MATLAB's ``mem_reduc``),
and uses the structure of ``J`` (each row is ``Ob_{l-1} (x) S_l[k]`` in layer ``l``'s
columns, ``Ob = [O, 1]``) to sum over the outputs before the product: ``J^T J``'s block
``(l, m)`` is ``sum_n Ob_{l-1} Ob_{m-1}^T (x) S_l^T S_m``, ``N P^2`` multiply-adds instead
of the ``N n_out P^2`` of ``J.T @ J``. Memory: ``O(P^2)`` for the sums and, per block,
the sensitivities and the ``Ob Ob^T`` and ``S^T S`` factors.

No autodiff here (no ``jax.grad``, ``jax.jacrev``, ``jax.jacfwd``): the tests read this
file to make sure.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jbpnn import checks
from jbpnn._callable import make_callable
from jbpnn.activations import units
from jbpnn.devices import gathered
from jbpnn.losses import is_builtin
from jbpnn.network import check_batch, forward, predict_kernel, require_targets
from jbpnn.params import MLP, Layer, network_count

__all__ = [
    "RESIDUAL_LOSSES",
    "NormalEquations",
    "block_entries",
    "example_jacobian",
    "flatten_params",
    "jacobian",
    "jacobian_kernel",
    "n_params",
    "normal_equations",
    "normal_equations_kernel",
    "replaced_residual_loss",
    "sensitivities",
    "unflatten_params",
]

Array = jax.Array

# Losses that are a sum of squared residuals, E = 1/2 sum_k e_k^2 with e = O - T: only for
# them is J^T e the gradient and J^T J the Gauss-Newton Hessian.
RESIDUAL_LOSSES: tuple[str, ...] = ("mse",)

# With ``block=None``, one block's factors hold at most max(this, P^2) entries: 4 Mi (16 MiB
# in float32), or as many as J^T J itself, whose memory they then at most double.
_AUTO_BLOCK_ENTRIES = 2**22


class NormalEquations(NamedTuple):
    """The Gauss-Newton terms of a batch, ``J`` and ``e`` weighted by ``sqrt(sample_weight)``.

    Attributes:
        jtj: ``J^T J``, shape ``(P, P)``, symmetric.
        jte: ``J^T e``, shape ``(P,)``: the gradient of ``1/2 e^T e``.
        sse: ``e^T e``, the (weighted) sum of squared errors, a scalar.
    """

    jtj: Array
    jte: Array
    sse: Array


# ---------------------------------------------------------------- parameter order
def n_params(params: MLP) -> int:
    """P, the number of weights and biases of ONE network: ``sum_l (n_in_l + 1) n_out_l``."""
    if not isinstance(params, MLP):
        raise TypeError(f"params must be an MLP (see init_params), got {type(params).__name__}")
    return sum(int(layer.w.size) + int(layer.b.size) for layer in params.layers)


def flatten_params(params: MLP) -> Array:
    """Every weight and bias of ONE network in one vector, in the Jacobian's column order.

    Order: layer 0's ``w`` row-major (``w[i, j]`` at ``i * n_out_0 + j``), then layer 0's
    ``b``, then layer 1's ``w``, layer 1's ``b``, ... (``jax.tree.leaves(params)`` order,
    each leaf raveled; the same as ``jax.flatten_util.ravel_pytree``). Traceable.

    Args:
        params: ONE network.

    Returns:
        The vector, shape ``(P,)`` with ``P = n_params(params)``, in the leaves' common dtype.
    """
    _require_one_network(params, "flatten_params")
    return jnp.concatenate([leaf.ravel() for layer in params.layers for leaf in layer])


def unflatten_params(params_template: MLP, vector: ArrayLike) -> MLP:
    """The inverse of :func:`flatten_params`: ``vector`` cut into the template's layers.

    Args:
        params_template: ONE network giving the shapes, dtypes, names and mode.
        vector: shape ``(P,)``, in :func:`flatten_params`'s order. Traceable.

    Returns:
        An :class:`MLP` like the template, each leaf cast to the template leaf's dtype.

    Raises:
        ValueError: stacked params, or a vector whose shape is not ``(P,)``.
    """
    _require_one_network(params_template, "unflatten_params")
    if jnp.iscomplexobj(vector):  # the cast would drop the imaginary part, as for data
        raise ValueError("unflatten_params: the vector has complex values; params are real")
    vector = jnp.asarray(vector)
    P = n_params(params_template)
    if vector.shape != (P,):
        raise ValueError(
            f"unflatten_params: the vector must have shape ({P},) for a network of sizes "
            f"{params_template.sizes}, got shape {vector.shape}"
        )
    layers, start = [], 0
    for layer in params_template.layers:
        pair = []
        for leaf in layer:
            pair.append(vector[start : start + leaf.size].reshape(leaf.shape).astype(leaf.dtype))
            start += leaf.size
        layers.append(Layer(*pair))
    return params_template.replace_layers(layers)


# ---------------------------------------------------------------- one example
def _rows(backprop, o: Array, G: Array) -> Array:
    """``J^T g`` for every row ``g`` of ``G``: one ``backprop`` per output unit."""
    return jax.vmap(backprop, in_axes=(None, 0))(o, G)


def sensitivities(params: MLP, x: ArrayLike) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """The Marquardt sensitivities ``S_l = dO/dnet_l`` of ONE example, every layer.

    Args:
        params: ONE network.
        x: one input, shape ``(n_in,)``.

    Returns:
        ``(cache, S)``: ``cache`` from :func:`jbpnn.network.forward`, ``(x, O_1, ..., O_L)``;
        ``S`` one array per layer, input side first, ``S[l]`` of shape ``(n_out, n_l)``
        with row ``k`` = ``dO_k/dnet_l`` (``S[-1]`` is the output layer's).
    """
    _, cache = forward(params, x)
    acts = units(params, cache)  # the table's rows (bound to net_l where a unit uses it)
    eye = jnp.eye(params.n_out, dtype=cache[-1].dtype)
    S = _rows(acts[-1].backprop, cache[-1], eye)  # S_L = J_L^T I: row k is dO_k/dnet_L
    sens = [S]
    for l in range(len(params.layers) - 1, 0, -1):
        G = S @ params.layers[l].w.T  # row k: dO_k/dO_l = S_{l+1}[k] w_{l+1}^T
        S = _rows(acts[l - 1].backprop, cache[l], G)  # S_l = J_l^T (S_{l+1} w_{l+1}^T)
        sens.append(S)
    return cache, tuple(reversed(sens))


def example_jacobian(params: MLP, x: ArrayLike) -> Array:
    """The Jacobian ``dO/dtheta`` of ONE example, from its sensitivities.

    Args:
        params: ONE network.
        x: one input, shape ``(n_in,)``.

    Returns:
        Shape ``(n_out, P)``: row ``k`` is ``dO_k/dtheta`` in :func:`flatten_params`'s order.
    """
    cache, sens = sensitivities(params, x)
    columns = []
    for o_prev, S in zip(cache[:-1], sens):
        dw = o_prev[None, :, None] * S[:, None, :]  # dO_k/dw_ij = O_i S_kj
        columns += [dw.reshape(params.n_out, -1), S]  # dO_k/db_j = S_kj
    return jnp.concatenate(columns, axis=1)


# ---------------------------------------------------------------- compiled batched kernels
def jacobian_kernel(params: MLP, X: Array) -> Array:
    """Unchecked, traceable core of :func:`jacobian`: ``vmap(example_jacobian)``, reshaped.

    For use inside ``jit``; for stacked networks ``jax.vmap(jacobian_kernel, in_axes=(0,
    None))``.

    Args:
        params: ONE network.
        X: inputs, shape ``(N, n_in)``, in the params' dtype.

    Returns:
        ``J``, shape ``(N * n_out, P)``: row ``n * n_out + k`` is ``dO_nk/dtheta``.
    """
    jac = jax.vmap(example_jacobian, in_axes=(None, 0))(params, X)
    return jac.reshape(-1, jac.shape[-1])


def _pairs(n_layers: int) -> list[tuple[int, int]]:
    """The blocks ``(l, m)``, ``l <= m``, of the upper triangle of ``J^T J``."""
    return [(l, m) for l in range(n_layers) for m in range(l, n_layers)]


def normal_equations_kernel(
    params: MLP,
    X: Array,
    Y: Array,
    sample_weight: Array | None = None,
    block: int | None = None,
) -> NormalEquations:
    """Unchecked, traceable core of :func:`normal_equations` (``block`` must be static).

    The examples are padded with zero rows of weight 0 to a whole number of blocks; a
    ``lax.scan`` over the blocks adds each block's terms to the sums. ``J``'s row for
    example ``n``, output ``k`` holds ``Ob_{l-1, i} S_l[k, p]`` in layer ``l``'s columns,
    with ``Ob_{l-1} = [O_{l-1}, 1]`` (the bias is the weight from a unit whose output is
    1; ``[w; b]`` row-major is the flat order), so the sum over ``k`` moves inside:

        r_n      = sqrt(w_n)                                  (1 without sample weights)
        J^T J    (l, m) block:  sum_n r_n^2  Ob_{l-1} Ob_{m-1}^T (x) S_l^T S_m
        J^T e    layer l:       sum_n r_n^2  Ob_{l-1} (S_l^T e_n)^T            (the gradient)
        e^T e                   sum_n r_n^2  |O_n - T_n|^2

    One product of ``P_l P_m`` entries per example and block of ``J^T J``, ``N P^2`` in
    all, where forming ``J`` first and then ``J^T J`` costs ``N n_out P^2``.
    """
    _require_residuals(params, "normal_equations")
    if params.n_out == 1:  # J's rows are the examples: J^T J is ONE product per block
        return _normal_equations_by_rows(params, X, Y, sample_weight, block)
    n_layers = len(params.layers)
    dtype = jnp.result_type(*jax.tree.leaves(params))
    blocks = _blocks(X, Y, sample_weight, _block_size(block, X.shape[0], params), dtype)
    n_inputs = [n_in + 1 for n_in in params.sizes[:-1]]  # len(Ob_{l-1}) = n_{l-1} + 1
    n_units = params.sizes[1:]

    def add_block(sums, xyr):
        jtj, jte, sse = sums
        x, y, rb = xyr
        b = x.shape[0]  # examples in the block
        cache, sens = jax.vmap(sensitivities, in_axes=(None, 0))(params, x)
        S = [rb[:, None, None] * s for s in sens]  # r_n S_l, shape (block, n_out, n_l)
        e = rb[:, None] * (cache[-1] - y)  # r_n e_n, e = O - T
        Ob = [jnp.pad(o, ((0, 0), (0, 1)), constant_values=1) for o in cache[:-1]]  # [O_{l-1}, 1]
        jtj = list(jtj)
        for t, (l, m) in enumerate(_pairs(n_layers)):
            A = (Ob[l][:, :, None] * Ob[m][:, None, :]).reshape(b, -1)  # Ob_{l-1} Ob_{m-1}^T
            B = jnp.einsum("nkp,nkq->npq", S[l], S[m]).reshape(b, -1)  # S_l^T S_m
            jtj[t] = jtj[t] + A.T @ B  # sum_n A_n (x) B_n, as [(i, j), (p, q)]
        jte = [
            g + Ob[l].T @ jnp.einsum("nkp,nk->np", S[l], e)  # sum_n Ob_{l-1} (S_l^T e_n)^T
            for l, g in enumerate(jte)
        ]
        return (tuple(jtj), tuple(jte), sse + jnp.sum(e * e)), None  # e^T e

    zeros = (
        tuple(
            jnp.zeros((n_inputs[l] * n_inputs[m], n_units[l] * n_units[m]), dtype)
            for l, m in _pairs(n_layers)
        ),
        tuple(jnp.zeros((a, u), dtype) for a, u in zip(n_inputs, n_units)),
        jnp.zeros((), dtype),
    )
    (jtj, jte, sse), _ = lax.scan(add_block, zeros, blocks)
    # [(i, j), (p, q)] -> [(i, p), (j, q)]: rows and columns in flatten_params's order
    tiles = {}
    for (l, m), G in zip(_pairs(n_layers), jtj):
        G = G.reshape(n_inputs[l], n_inputs[m], n_units[l], n_units[m]).transpose(0, 2, 1, 3)
        tiles[l, m] = G.reshape(n_inputs[l] * n_units[l], n_inputs[m] * n_units[m])
        tiles[m, l] = tiles[l, m].T  # J^T J is symmetric
    full = jnp.block([[tiles[l, m] for m in range(n_layers)] for l in range(n_layers)])
    return NormalEquations(full, jnp.concatenate([g.ravel() for g in jte]), sse)


def _blocks(
    X: Array, Y: Array, sample_weight: Array | None, block: int, dtype: Any
) -> tuple[Array, Array, Array]:
    """``(X, Y, r)`` cut into blocks of ``block`` examples, ``r_n = sqrt(w_n)``; the last
    block padded with zero rows of weight 0."""
    n = X.shape[0]
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    w = jnp.ones((n,), dtype) if sample_weight is None else sample_weight.astype(dtype)
    r = jnp.sqrt(jnp.pad(w, (0, pad))).reshape(n_blocks, block)  # padded rows weigh 0

    def cut(a: Array) -> Array:
        return jnp.pad(a, ((0, pad), (0, 0))).reshape(n_blocks, block, -1)

    return cut(X), cut(Y), r


def _normal_equations_by_rows(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None, block: int | None
) -> NormalEquations:
    """One output unit: ``J`` has one row per example, so a block's ``J_b`` (``block x P``)
    is formed and ``J^T J += J_b^T J_b`` is one matrix product (as many flops as the
    sum-first form, which pays off with several outputs, and one product instead of one
    per pair of layers: several times faster, and far faster under ``vmap``)."""
    n, P = X.shape[0], n_params(params)
    block = max(1, min(n, block or max(1, _AUTO_BLOCK_ENTRIES // P)))
    dtype = jnp.result_type(*jax.tree.leaves(params))
    blocks = _blocks(X, Y, sample_weight, block, dtype)

    def add_block(sums, xyr):
        jtj, jte, sse = sums
        x, y, rb = xyr
        J = rb[:, None] * jax.vmap(example_jacobian, in_axes=(None, 0))(params, x)[:, 0]
        e = rb * (predict_kernel(params, x)[:, 0] - y[:, 0])  # r_n e_n, e = O - T
        return (jtj + J.T @ J, jte + J.T @ e, sse + e @ e), None  # J^T J, J^T e, e^T e

    zeros = (jnp.zeros((P, P), dtype), jnp.zeros((P,), dtype), jnp.zeros((), dtype))
    (jtj, jte, sse), _ = lax.scan(add_block, zeros, blocks)
    return NormalEquations((jtj + jtj.T) / 2, jte, sse)  # exactly symmetric, as the tiles


_jacobian_jit = jax.jit(jacobian_kernel)
_normal_equations_jit = jax.jit(normal_equations_kernel, static_argnames=("block",))


# ---------------------------------------------------------------- checked public API
def jacobian(
    params: MLP, X: ArrayLike, Y: ArrayLike | None = None, *, check_finite: bool = True
) -> Array:
    """The Jacobian of the outputs (or of the residuals ``O - T``) by hand, jitted.

    Computed by the Marquardt back-propagation (see the module docstring), never by
    autodiff. It stores all ``N * n_out * P`` entries; for the products that
    Levenberg-Marquardt needs use :func:`normal_equations`, which does not.

    Args:
        params: ONE network (any loss when ``Y`` is None).
        X: inputs, shape ``(N, n_in)``.
        Y: optional targets, shape ``(N, n_out)``. The Jacobian of the residuals
            ``e = O - T`` is the same matrix (``T`` does not depend on the weights);
            given, ``Y`` is checked as residuals need it: its shape, finite values,
            and a loss that has residuals (``mse``).
        check_finite: raise on NaN/inf in ``X`` (and ``Y``).

    Returns:
        ``J``, shape ``(N * n_out, P)``: row ``n * n_out + k`` is ``dO_nk/dtheta``, the
        columns in :func:`flatten_params`'s order; the params' dtype.

    Raises:
        ValueError: stacked params, a wrong feature count or target width, NaN/inf,
            or ``Y`` given for a loss without residuals.
        TypeError: ``params`` not an :class:`MLP`.
    """
    _require_one_network(params, "jacobian")
    if Y is not None:
        _require_residuals(params, "the Jacobian of the residuals (jacobian with Y)")
    X, _, _ = check_batch(params, X, Y, check_finite=check_finite)
    return _jacobian_jit(params, X)


def normal_equations(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    block: int | None = None,
    check_finite: bool = True,
) -> NormalEquations:
    """``J^T J``, ``J^T e`` and ``e^T e`` of the residuals ``e = O - T``, without storing J.

    Accumulated over blocks of ``block`` examples (``block * n_out`` rows of ``J``) in one
    compiled ``lax.scan`` (MATLAB's ``mem_reduc``), from the sensitivities, with the sum
    over the outputs taken before the product (see :func:`normal_equations_kernel`).
    Memory: ``O(P^2)`` for the sums plus, per block, ``block`` times the per-example
    factors: the sensitivities ``S_l`` (``n_out n_l`` entries a layer) and, for each pair of
    layers, ``Ob_{l-1} Ob_{m-1}^T`` and ``S_l^T S_m`` (``(n_{l-1} + 1)(n_{m-1} + 1)`` and
    ``n_l n_m`` entries).

    With sample weights each residual row is weighted by ``sqrt(w_n)``, so that
    ``e^T e = sum_n w_n |e_n|^2`` and the products are those of the weighted sum of squares
    (weights are not normalised).

    With ``N`` examples (``W = sum_n w_n`` with sample weights) and
    :func:`jbpnn.network.loss_and_gradient`'s ``(loss, g)`` (batch means, ``mse``):
    ``J^T e = N g`` (``W g``) and ``e^T e = 2 N loss`` (``2 W loss``).

    Args:
        params: ONE network with a loss that has residuals (``mse``).
        X: inputs, shape ``(N, n_in)``.
        Y: targets, shape ``(N, n_out)``.
        sample_weight: optional weights ``w_n >= 0`` with a positive sum, shape ``(N,)``.
        block: examples per block, >= 1 (larger than ``N``: one block). None: as many as
            keep one block's factors within ``max(4 Mi, P^2)`` entries (so at most
            doubling the memory of ``J^T J``, or 16 MiB in float32). The last block is padded with
            rows of weight 0. Each value compiles once.
        check_finite: raise on NaN/inf in ``X`` and ``Y``.

    Returns:
        :class:`NormalEquations` ``(jtj (P, P), jte (P,), sse ())`` in the params' dtype,
        columns in :func:`flatten_params`'s order.

    Raises:
        ValueError: a loss without residuals, stacked params, a bad ``block``, wrong
            shapes, NaN/inf, bad sample weights.
        TypeError: ``params`` not an :class:`MLP`.
    """
    _require_one_network(params, "normal_equations")
    _require_residuals(params, "normal_equations")
    require_targets(Y, "normal_equations")
    block = checks.check_int(
        "block", block, 1, allow_none=True, none_means="blocks of up to max(4 Mi, P^2) entries"
    )
    X, Y, sw = check_batch(params, X, Y, sample_weight, check_finite=check_finite, min_rows=1)
    # rows split on an Explicit mesh: the block scan and J^T J contract over them
    X, Y, sw = (gathered(a) for a in (X, Y, sw))
    return _normal_equations_jit(params, X, Y, sw, block=block)


# ---------------------------------------------------------------- checks
def _require_one_network(params: MLP, what: str) -> None:
    if not isinstance(params, MLP):
        raise TypeError(
            f"params must be an MLP (see init_params or MLP.from_layers), got "
            f"{type(params).__name__}"
        )
    n = network_count(params)
    if n:
        raise ValueError(
            f"{what} takes ONE network (w 2-D, b 1-D); for stacked params vmap the kernel, "
            f"e.g. jax.vmap(jbpnn.jacobian.jacobian_kernel, in_axes=(0, None)); got a "
            f"stack of {n} networks"
        )


def replaced_residual_loss(loss: str) -> str | None:
    """Why the residual loss ``loss`` (one of RESIDUAL_LOSSES) cannot give ``J^T e`` and
    ``J^T J``, or None: a registration replaced it (``register_loss(..., replace=True)``:
    another loss under the built-in's name, whose gradient is not ``J^T e``)."""
    if loss in RESIDUAL_LOSSES and not is_builtin(loss):
        return (
            f"the built-in {loss!r} (1/2 sum (O - T)^2), but {loss!r} was replaced by a "
            "registration (register_loss(..., replace=True)), whose loss its residuals "
            "e = O - T would not follow"
        )
    return None


def _require_residuals(params: MLP, what: str) -> None:
    if params.loss not in RESIDUAL_LOSSES:
        raise ValueError(
            f"{what} needs a loss that is a sum of squared residuals e = O - T "
            f"({', '.join(RESIDUAL_LOSSES)}), but the network's loss is {params.loss!r}; "
            "the Jacobian of the outputs, jacobian(params, X) without Y, works for any loss"
        )
    replaced = replaced_residual_loss(params.loss)
    if replaced is not None:
        raise ValueError(
            f"{what} needs {replaced}; the Jacobian of the outputs, jacobian(params, X) "
            "without Y, works for any loss"
        )


def _block_size(block: int | None, n: int, params: MLP) -> int:
    """Examples per block: ``block`` capped at ``n``, or the automatic size.

    Per example a block holds the sensitivities (``n_out n_l`` a layer) and, for every
    pair of layers, ``Ob_{l-1} Ob_{m-1}^T`` and ``S_l^T S_m``; None fits them in
    ``max(_AUTO_BLOCK_ENTRIES, P^2)`` entries.
    """
    if block is None:
        block = max(_AUTO_BLOCK_ENTRIES, n_params(params) ** 2) // _per_example(params)
    return max(1, min(block, n))


def _per_example(params: MLP) -> int:
    """Numbers a block holds per example (several outputs; see :func:`_block_size`)."""
    a = [n_in + 1 for n_in in params.sizes[:-1]]
    u = params.sizes[1:]
    per_example = sum(a[l] * a[m] + u[l] * u[m] for l, m in _pairs(len(u)))
    return per_example + params.n_out * sum(u)


def block_entries(params: MLP, n: int) -> int:
    """Numbers one block of :func:`normal_equations` over ``n`` examples holds (automatic
    block size): ``J_b`` (``block x P``) with one output, the per-example products with
    several. The memory estimate of ``lm`` / ``br`` counts it beside ``J^T J``."""
    if params.n_out == 1:
        P = n_params(params)
        return max(1, min(n, max(1, _AUTO_BLOCK_ENTRIES // P))) * P
    return _block_size(None, n, params) * _per_example(params)


# ---------------------------------------------------------------- jbpnn.jacobian(...)
make_callable(__name__, lambda: jacobian)  # jbpnn.jacobian(params, X), the API's name

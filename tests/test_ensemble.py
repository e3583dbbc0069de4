"""The ensemble kernel against the core kernel it replaces under vmap (kernel against kernel)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from jbpnn.ensemble import ensemble_kernel, ensemble_loss_and_gradient
from jbpnn.many import InitSpec, init_many
from jbpnn.network import loss_and_gradient_kernel
from jbpnn.params import MLP

CASES = [
    ((5, 7, 3), ("sigmoid", "softmax"), "cross_entropy"),
    ((4, 6, 5, 2), ("tanh", "relu", "identity"), "mse"),
    ((3, 2), "sigmoid", "binary_cross_entropy"),
    ((3, 4, 1), ("tanh", "sigmoid"), "mse"),
    ((4, 5, 3, 2), ("swish", "gelu", "softplus"), "mse"),  # f' from the net input
    ((3, 12, 14, 4), ("tanh", "sigmoid", "softmax"), "cross_entropy"),  # > FEW_UNITS: products
]


def _problem(sizes, loss, n=4, rows=9):
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(-1, 1, (rows, sizes[0])))
    Y = jnp.asarray(rng.uniform(0, 1, (rows, sizes[-1])))
    if loss == "cross_entropy":
        Y = Y / Y.sum(axis=1, keepdims=True)
    return X, Y, jnp.asarray(rng.uniform(0, 2, rows))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_ensemble_kernel_equals_vmap_of_the_core_kernel(x64, case):
    sizes, acts, loss = CASES[case]
    params = init_many(InitSpec(sizes, acts, loss, "glorot", jnp.float64), np.arange(4))
    X, Y, w = _problem(sizes, loss)
    w = w if case % 2 else None  # with and without sample weights
    core = jax.vmap(loss_and_gradient_kernel, in_axes=(0, None, None, None))(params, X, Y, w)
    # the drop-in grad_fn under vmap: its batching rule runs ensemble_kernel
    drop_in = jax.vmap(ensemble_loss_and_gradient, in_axes=(0, None, None, None))
    tree_allclose(jax.jit(drop_in)(params, X, Y, w), core, rtol=1e-12, atol=1e-15)


def test_one_network_and_own_batches_are_the_core_kernel(x64):
    sizes, acts, loss = CASES[0]
    params = init_many(InitSpec(sizes, acts, loss, "glorot", jnp.float64), np.arange(3))
    X, Y, w = _problem(sizes, loss)
    one = jax.tree.map(lambda a: a[1], params)
    tree_allclose(
        ensemble_loss_and_gradient(one, X, Y, w), loss_and_gradient_kernel(one, X, Y, w), rtol=0
    )
    own = jnp.stack([X, 2 * X, -X])  # each network its own batch: vmap of the core
    got = jax.vmap(ensemble_loss_and_gradient, in_axes=(0, 0, None, None))(params, own, Y, w)
    want = jax.vmap(loss_and_gradient_kernel, in_axes=(0, 0, None, None))(params, own, Y, w)
    tree_allclose(got, want, rtol=0)


def test_article_mode_skips_biases_in_the_forward_pass(x64):
    params = init_many(InitSpec((3, 4, 2), "sigmoid", "mse", "article", jnp.float64), [0, 1])
    params = MLP(params.layers, params.activations, params.loss, article_mode=True)
    X, Y, _ = _problem((3, 4, 2), "mse")
    core = jax.vmap(loss_and_gradient_kernel, in_axes=(0, None, None, None))(params, X, Y, None)
    tree_allclose(ensemble_kernel(params, X, Y), core, rtol=1e-12, atol=1e-15)

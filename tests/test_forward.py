"""Forward mode by hand: jbpnn.jvp, and jax.jvp / linearize / jacfwd / hessian through apply.

The reference is JAX's own forward mode of the plain forward pass, ``jax.vmap(forward)``,
in float64; in article mode the hand rule must differ from it (proof that ours runs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import jbpnn
from jbpnn import ACTIVATIONS, Layer, apply, forward, init_params

TOL = dict(rtol=1e-10, atol=1e-12)


def plain_apply(params, X):
    """The reference: the forward pass, vmapped, differentiated by JAX's own autodiff."""
    return jax.vmap(lambda x: forward(params, x)[0])(X)


def _network(seed, sizes, acts, loss="mse", article_mode=False):
    rng = np.random.default_rng(seed)
    params = init_params(
        jax.random.key(seed), sizes, acts, loss, "glorot", jnp.float64, article_mode
    )
    params = jax.tree.map(lambda a: a + 0.2 * jnp.asarray(rng.normal(size=a.shape)), params)
    return params.replace_layers([Layer(l.w, l.b + 0.3) for l in params.layers]), rng


def _direction(params, rng):
    return jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)


def _acts(act, depth):
    hidden = "tanh" if ACTIVATIONS[act].output_only else act
    return (hidden,) * (depth - 1) + (act,)


@jax.jit
def _references(params, X, dparams, dX):
    return (
        jax.jvp(plain_apply, (params, X), (dparams, dX)),
        jax.jvp(plain_apply, (params, X), (dparams, jnp.zeros_like(X)))[1],
        jax.jvp(apply, (params, X), (dparams, dX))[1],
    )


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_hand_jvp_equals_jax_jvp_of_the_forward_pass(x64, act, depth):
    rng = np.random.default_rng(depth)
    sizes = tuple(int(n) for n in rng.integers(2, 6, size=depth + 1))
    params, rng = _network(10 * depth + len(act), sizes, _acts(act, depth))
    X = jnp.asarray(rng.normal(size=(5, params.n_in)))
    dparams, dX = _direction(params, rng), jnp.asarray(rng.normal(size=X.shape))
    out, dout = jbpnn.jvp(params, X, dparams, dX)
    (ref_out, ref_dout), ref_weights_only, through_apply = _references(params, X, dparams, dX)
    np.testing.assert_allclose(out, ref_out, rtol=1e-14)
    np.testing.assert_allclose(dout, ref_dout, **TOL, err_msg=f"{act} depth {depth}")
    assert float(jnp.max(jnp.abs(dout))) > 1e-6
    # the weights alone (dX defaults to zeros), and jax.jvp through apply
    np.testing.assert_allclose(jbpnn.jvp(params, X, dparams)[1], ref_weights_only, **TOL)
    np.testing.assert_allclose(through_apply, dout, **TOL)


def _scalar(apply_fn, n_out):
    """A scalar function of the weights and the inputs, through ``apply_fn``."""
    return lambda p, X: jnp.sum(jnp.sin(apply_fn(p, X)) * jnp.arange(1.0, n_out + 1.0))


@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("relu", "tanh", "softmax")])
def test_linearize_jacfwd_and_vmap_through_apply_equal_autodiff(x64, acts):
    params, rng = _network(4, (3, 4, 4, 3)[: len(acts) + 1], acts)
    X = jnp.asarray(rng.normal(size=(4, 3)))
    dparams, dX = _direction(params, rng), jnp.asarray(rng.normal(size=X.shape))

    def lin(apply_fn):
        return jax.jit(lambda p, X, dp, dX: jax.linearize(apply_fn, p, X)[1](dp, dX))

    np.testing.assert_allclose(
        lin(apply)(params, X, dparams, dX), lin(plain_apply)(params, X, dparams, dX), **TOL
    )
    jac, jac_ref = (jax.jit(jax.jacfwd(a, (0, 1))) for a in (apply, plain_apply))
    tree_allclose(jac(params, X), jac_ref(params, X), **TOL)
    dXs = jnp.stack([dX, 2 * dX, -dX])
    batched = jax.vmap(lambda d: jax.jvp(apply, (params, X), (dparams, d))[1])(dXs)
    for d, b in zip(dXs, batched):
        np.testing.assert_allclose(b, jbpnn.jvp(params, X, dparams, d)[1], **TOL)


def test_second_order_transforms_through_apply_equal_autodiff(x64):
    params, rng = _network(4, (3, 4, 3), ("tanh", "softmax"))
    X = jnp.asarray(rng.normal(size=(4, 3)))
    dparams = _direction(params, rng)

    def second_order(apply_fn):
        def jvp_sum(p):  # reverse over (hand) forward
            return jnp.sum(jax.jvp(lambda q: apply_fn(q, X), (p,), (dparams,))[1] ** 2)

        # forward over (hand) reverse
        return jax.hessian(_scalar(apply_fn, 3), (0, 1))(params, X), jax.grad(jvp_sum)(params)

    ours, ref = (jax.jit(second_order, static_argnums=0)(a) for a in (apply, plain_apply))
    tree_allclose(ours, ref, **TOL)


def test_article_mode_jvp_is_the_articles_derivative_not_autodiffs(x64):
    # tanh forward, no biases; the article's derivative O - O^2, biases moving net
    params, rng = _network(5, (4, 3, 2), "sigmoid", article_mode=True)
    X = jnp.asarray(rng.normal(size=(6, 4)))
    dparams, dX = _direction(params, rng), jnp.asarray(rng.normal(size=X.shape))
    ours = jax.jvp(apply, (params, X), (dparams, dX))[1]
    np.testing.assert_allclose(ours, jbpnn.jvp(params, X, dparams, dX)[1], **TOL)
    auto = jax.jvp(plain_apply, (params, X), (dparams, dX))[1]
    assert float(jnp.max(jnp.abs(ours - auto))) > 1e-3  # not the forward pass's derivative
    # ... but the transpose of the article's backward: <J v, G> = <v, J^T G>
    G = jnp.asarray(rng.normal(size=ours.shape))
    dp, dx = jax.vjp(apply, params, X)[1](G)
    lhs = jnp.sum(ours * G)
    rhs = sum(
        jnp.sum(a * b) for a, b in zip(jax.tree.leaves((dparams, dX)), jax.tree.leaves((dp, dx)))
    )
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_the_hand_jvp_is_in_the_jaxpr_of_forward_mode():
    params = init_params(0, (3, 4, 2))
    X = jnp.ones((5, 3))
    jvp_jaxpr = str(jax.make_jaxpr(lambda p, X: jax.jvp(apply, (p, X), (p, X)))(params, X))
    assert "fn=hand_jvp" in jvp_jaxpr and "fn=hand_vjp" not in jvp_jaxpr
    plain = str(jax.make_jaxpr(lambda p, X: jax.jvp(plain_apply, (p, X), (p, X)))(params, X))
    assert "hand_linear" not in plain


def test_one_example_jit_and_bad_directions(x64):
    params, rng = _network(6, (3, 4, 2), ("relu", "identity"))
    X = jnp.asarray(rng.normal(size=(4, 3)))
    dparams, dX = _direction(params, rng), jnp.asarray(rng.normal(size=X.shape))
    out, dout = jbpnn.jvp(params, X, dparams, dX)
    one, done = jbpnn.jvp(params, X[1], dparams, dX[1])
    assert one.shape == done.shape == (2,)
    np.testing.assert_allclose(done, dout[1], **TOL)
    np.testing.assert_allclose(jax.jit(jbpnn.jvp_kernel)(params, X, dparams, dX)[1], dout, **TOL)
    bad = dparams.replace_layers([Layer(l.w[:-1], l.b) for l in dparams.layers])
    with pytest.raises(ValueError, match=r"dparams: layer 0 has w \(2, 4\)"):
        jbpnn.jvp(params, X, bad)
    with pytest.raises(ValueError, match="dparams must be an MLP"):
        jbpnn.jvp(params, X, [(1.0, 2.0)])
    with pytest.raises(ValueError, match=r"dX must have the shape of X, \(4, 3\)"):
        jbpnn.jvp(params, X, dparams, dX[:2])
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        jbpnn.jvp(params, X[:, :2], dparams)

"""The article's worked examples (ARTICLE.md section 2) as oracles, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn import MLP, backward, deltas, forward
from jbpnn.oracles import ARTICLE_9_2_1, TEXTBOOK_3_2_1


def _one_step(spec):
    params = MLP.from_layers(spec["layers"], "sigmoid", "mse", dtype=jnp.float64)
    x = jnp.asarray(spec["x"], jnp.float64)
    y = jnp.asarray(spec["y"], jnp.float64)
    _, cache = forward(params, x)
    nets = [cache[l] @ layer.w + layer.b for l, layer in enumerate(params.layers)]
    errs = deltas(params, cache, y)
    grads = backward(params, cache, y)
    new = jax.tree.map(lambda p, g: p - spec["lr"] * g, params, grads)
    return params, cache, nets, errs, new


def test_article_9_2_1(x64):
    params, cache, nets, errs, new = _one_step(ARTICLE_9_2_1)
    tol = dict(rtol=0, atol=1e-9)
    np.testing.assert_allclose(nets[0], [0.1, 0.8], **tol)
    np.testing.assert_allclose(nets[1], [0.8124726718], **tol)
    np.testing.assert_allclose(cache[1], [0.5249791875, 0.6899744811], **tol)
    np.testing.assert_allclose(cache[2], [0.6926361652], **tol)
    np.testing.assert_allclose(errs[1], [0.0654350888], **tol)
    np.testing.assert_allclose(errs[0], [0.0114225603, 0.0069986000], **tol)
    np.testing.assert_allclose(new.layers[1].w[:, 0], [0.7003435206, 0.5004514854], **tol)
    np.testing.assert_allclose(new.layers[1].b, [0.1006543509], **tol)
    np.testing.assert_allclose(new.layers[0].b, [-0.0998857744, 0.2000699860], **tol)
    w = np.asarray(new.layers[0].w)
    np.testing.assert_allclose(w[0], [0.1001142256, 0.2000699860], **tol)
    np.testing.assert_allclose(w[2], [0.3001142256, 0.1000699860], **tol)
    np.testing.assert_allclose(w[5], [-0.1998857744, 0.3000699860], **tol)
    old = np.asarray(params.layers[0].w)
    unchanged = [1, 3, 4, 6, 7, 8]  # rows whose input is 0
    np.testing.assert_array_equal(w[unchanged], old[unchanged])


def test_textbook_3_2_1(x64):
    params, cache, nets, errs, new = _one_step(TEXTBOOK_3_2_1)
    tol = dict(rtol=0, atol=5e-4)
    np.testing.assert_allclose(np.concatenate(nets), [-0.7, 0.1, -0.105], **tol)
    np.testing.assert_allclose(np.concatenate(cache[1:]), [0.332, 0.525, 0.474], **tol)
    np.testing.assert_allclose(errs[1], [0.1311], **tol)
    np.testing.assert_allclose(errs[0], [-0.0087, -0.0065], **tol)
    w0, w1 = np.asarray(new.layers[0].w), np.asarray(new.layers[1].w)
    np.testing.assert_allclose(w1[:, 0], [-0.261, -0.138], **tol)
    np.testing.assert_allclose(w0[0], [0.192, -0.306], **tol)
    np.testing.assert_allclose(w0[2], [-0.508, 0.194], **tol)
    np.testing.assert_allclose(w0[1], [0.4, 0.1], **tol)
    np.testing.assert_allclose(new.layers[1].b, [0.218], **tol)
    np.testing.assert_allclose(new.layers[0].b, [-0.408, 0.194], **tol)


@pytest.mark.parametrize("spec", [ARTICLE_9_2_1, TEXTBOOK_3_2_1], ids=["article", "textbook"])
def test_float32_close_to_oracle(spec):
    """The same step in float32 agrees with the float64 oracle to float32 precision."""
    p32 = MLP.from_layers(spec["layers"], "sigmoid", "mse", dtype=jnp.float32)
    _, cache = forward(p32, jnp.asarray(spec["x"], jnp.float32))
    assert cache[-1].dtype == jnp.float32
    with jax.enable_x64(True):
        _, _, _, _, new64 = _one_step(spec)
        new64 = jax.tree.map(np.asarray, new64)
    g = backward(p32, cache, jnp.asarray(spec["y"], jnp.float32))
    new32 = jax.tree.map(lambda p, g: p - spec["lr"] * g, p32, g)
    for a, b in zip(jax.tree.leaves(new32), jax.tree.leaves(new64)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-7)

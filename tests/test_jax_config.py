"""A JAX user's own strict settings around jbpnn: rank and dtype promotion, the NaN and inf
checkers, jax_enable_x64, and the transfer guard (each switched on for one test only)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import jbpnn
from jbpnn.optimizers import adam, inverse_scaling, lbfgs, momentum, sgd, step_decay


def _data(n=24, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    Y = np.tanh(X[:, :n_out] + 0.1 * X[:, 1:2] ** 2).astype(np.float32)
    return X, Y


def _runs():
    """One call per training path: mini-batches with validation (R^2 watched, so the
    divergence reference and the R^2 kernel run), each full-batch optimizer, many networks."""
    X, Y = _data(n_out=2)
    p = jbpnn.init_params(jax.random.key(0), (3, 4, 2), ("tanh", "identity"))
    val = dict(X_val=X[:8], Y_val=Y[:8], n_iter_no_change=3, monitor="val_r2")
    return {
        "minibatch": lambda: jbpnn.train(
            p, X, Y, optimizer=momentum(0.1, 0.9), epochs=3, batch_size=8, **val
        ),
        "lbfgs": lambda: jbpnn.train(p, X, Y, optimizer=lbfgs(), epochs=3),
        "lm": lambda: jbpnn.train(p, X, Y, optimizer=jbpnn.levenberg_marquardt(), epochs=3),
        "many": lambda: jbpnn.train_many(
            jbpnn.InitSpec((3, 4, 2), ("tanh", "identity")),
            X,
            Y,
            seeds=[0, 1],
            optimizer="sgd",
            hparams={"lr": [0.1, 0.2]},
            epochs=3,
            batch_size=8,
            key=1,
        ),
    }


@pytest.mark.parametrize("path", list(_runs()))
def test_training_broadcasts_explicitly_under_rank_promotion_raise(path):
    # the divergence reference's (T - mean T), the ensemble's err * s and the R^2's
    # (T - Tbar) broadcast implicitly: every training call failed under "raise"
    run = _runs()[path]
    with jax.numpy_rank_promotion("raise"):
        result = run()
    assert np.isfinite(np.asarray(jax.tree.leaves(result.params)[0])).all()


def test_lbfgs_runs_under_strict_dtype_promotion():
    # its int32 evaluation counts met float budgets (max_linesearch, max_fun)
    with jax.numpy_dtype_promotion("strict"):
        result = _runs()["lbfgs"]()
    assert result.epochs_run == 3


@pytest.mark.parametrize("path", list(_runs()))
def test_finite_runs_pass_jax_debug_nans_and_infs(path, tmp_path):
    # the state's "not measured yet" markers (NaN, inf) went through the compiled loop:
    # every run stopped with FloatingPointError (or, with mini-batches, a
    # TracerArrayConversionError from JAX's de-optimised re-run)
    run = _runs()[path]
    with jax.debug_nans(True), jax.debug_infs(True):
        result = run()
        if path != "many":  # a checkpoint's markers load as they were
            jbpnn.save(tmp_path / "state.npz", result.state, optimizer=result.optimizer)
            saved = jbpnn.load(tmp_path / "state.npz")
            again = jbpnn.train(saved.state, *_data(n_out=2), optimizer=saved.optimizer, epochs=1)
            assert again.epochs_run == result.epochs_run + 1
    assert np.isfinite(np.asarray(jax.tree.leaves(result.params)[0])).all()


def test_a_diverging_run_still_says_so_under_jax_debug_nans():
    X, Y = _data()
    p = jbpnn.init_params(jax.random.key(0), (3, 4, 1), ("tanh", "identity"))
    with jax.debug_nans(True):
        result = jbpnn.train(p, X, 1e3 * Y, optimizer=sgd(1e6), epochs=5, batch_size=8)
    assert result.stop_reason == "diverged" and result.diverged_at is not None


@pytest.mark.parametrize(
    "optimizer",
    [adam(0.01), sgd(inverse_scaling(0.1, 0.5)), momentum(step_decay(0.1, 0.5, 3), 0.9)],
    ids=["adam", "inverse_scaling", "step_decay"],
)
def test_a_float32_network_trains_alike_with_and_without_x64(optimizer):
    # the step count was cast to the default float: b1^t and the schedules ran in float64
    # under jax_enable_x64, and a float32 adam run moved by 6e-8
    X, Y = _data()
    p = jbpnn.init_params(jax.random.key(0), (3, 4, 1), ("tanh", "identity"))
    plain = jbpnn.train(p, X, Y, optimizer=optimizer, epochs=4, batch_size=8, key=3)
    with jax.enable_x64(True):
        wide = jbpnn.train(p, X, Y, optimizer=optimizer, epochs=4, batch_size=8, key=3)
    assert wide.params.dtype == jnp.float32
    tree_allclose(plain.params, wide.params, rtol=0)


def test_a_long_run_copies_its_rules_to_the_device_once(capfd):
    # the stop thresholds went along as NumPy with every chunk of epochs: 4 host-to-device
    # copies per chunk (jax.transfer_guard("log") counts them); one is left, the epoch
    # the launch runs to
    X, Y = jax.device_put(_data())
    p = jbpnn.init_params(jax.random.key(0), (3, 4, 1), ("tanh", "identity"))

    def copies(epochs: int) -> int:
        kw = dict(optimizer=sgd(0.01), epochs=epochs, batch_size=8, key=1, progress_every=8)
        jbpnn.train(p, X, Y, **kw)  # compiled first
        capfd.readouterr()
        with jax.transfer_guard("log"):
            jbpnn.train(p, X, Y, **kw)
        return capfd.readouterr().err.count("host-to-device transfer")

    few, many = copies(16), copies(64)  # 2 and 8 launches
    assert few > 0 and many - few == 8 - 2

"""train_many against train, network by network; grids, result tables, memory, the sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from jbpnn.many import (
    InitSpec,
    init_many,
    network_count,
    stack_params,
    train_many,
    unstack_params,
)
from jbpnn.memory import EnsembleTooLarge
from jbpnn.optimizers import OPTIMIZERS, momentum, sgd
from jbpnn.params import init_params
from jbpnn.tables import ResultsTable, grid
from jbpnn.training import STOP_REASONS, train

ROOT = Path(__file__).resolve().parents[1]


def _classes(n=48, n_in=5, n_out=3, seed=0):
    """A small learnable 3-class problem (one-hot targets)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_in))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3).astype(int)
    return X, np.eye(n_out)[labels]


def _alone(spec, seed, X, Y, opt_name="momentum", **kw):
    """One network trained alone by train(), as train_many's network with this seed."""
    hp = kw.pop("hp")
    params = init_params(
        jax.random.key(seed), spec.sizes, spec.activations, spec.loss, spec.init, spec.dtype
    )
    return train(params, X, Y, optimizer=OPTIMIZERS[opt_name](**hp), **kw)


def _assert_same(many_result, alone, i, rtol=1e-6, atol=1e-9):
    got = many_result[i]
    assert got.stop_reason == alone.stop_reason, f"network {i}"
    assert got.epochs_run == alone.epochs_run, f"network {i}"
    assert got.best_epoch == alone.best_epoch, f"network {i}"
    tree_allclose(got.params, alone.params, rtol=rtol, atol=atol, err_msg=f"network {i}")
    assert set(got.history) == set(alone.history)
    for name in alone.history:
        np.testing.assert_allclose(
            got.history[name],
            alone.history[name],
            rtol=rtol,
            atol=atol,
            err_msg=f"network {i} history {name}",
        )


# ---------------------------------------------------------------- equality with train
def test_every_network_equals_train_alone(x64):
    X, Y = _classes()
    X_val, Y_val = _classes(20, seed=1)
    spec = InitSpec((5, 6, 3), "sigmoid", "cross_entropy", "glorot", jnp.float64)
    g = grid(lr=[0.1, 1.0], m=[0.0, 0.9])
    seeds = [3, 4, 5, 6]
    kw = dict(key=7, epochs=5, batch_size=10, X_val=X_val, Y_val=Y_val)
    result = train_many(spec, X, Y, seeds=seeds, hparams=g, **kw)
    assert result.method == "shared" and len(result) == 4
    assert result.history["loss"].shape == (4, 5)
    for i in range(len(result)):
        hp = {"lr": float(g["lr"][i]), "m": float(g["m"][i])}
        _assert_same(result, _alone(spec, int(seeds[i]), X, Y, hp=hp, **kw), i)
    # the stacked params are the per-network results, stacked
    tree_allclose(unstack_params(result.params)[2], result[2].params)


def test_networks_stop_independently_and_equal_train(x64):
    """tol, early stopping, divergence and max_epochs in one ensemble, each as if alone."""
    X, Y = _classes(40)
    X_val, Y_val = _classes(16, seed=2)
    spec = InitSpec((5, 6, 3), "relu", "cross_entropy", "glorot", jnp.float64)
    lrs = np.array([0.02, 0.3, 1.0, 3.0, 1e200, 0.1])
    seeds = np.arange(len(lrs))
    kw = dict(key=1, epochs=25, batch_size=8, X_val=X_val, Y_val=Y_val, tol=0.3, n_iter_no_change=3)
    result = train_many(spec, X, Y, seeds=seeds, hparams={"lr": lrs, "m": 0.5}, **kw)
    assert set(result.stop_reason) == {
        "max_epochs",
        "no_validation_improvement",
        "loss_below_tol",
        "diverged",
    }, result.stop_reason
    assert len(set(result.epochs_run.tolist())) >= 4, result.epochs_run
    for i in range(len(lrs)):
        alone = _alone(spec, int(seeds[i]), X, Y, hp={"lr": float(lrs[i]), "m": 0.5}, **kw)
        _assert_same(result, alone, i)
        # a stopped network is frozen: nothing is written after its last epoch
        assert np.all(np.isnan(result.history["loss"][i, result.epochs_run[i] :]))
    diverged = result[result.stop_reason.index("diverged")]
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(diverged.params))


@pytest.mark.parametrize(
    "opt_name, hparams",
    [
        ("sgd", {"lr": [0.5, 0.1], "weight_decay": [0.0, 0.1]}),
        ("adam", {"lr": [0.01, 0.05], "b1": [0.9, 0.5]}),
    ],
)
def test_any_optimizer_hyperparameter_sweeps(x64, opt_name, hparams):
    X, Y = _classes(30)
    spec = InitSpec((5, 4, 4, 3), "relu", "cross_entropy", "he", jnp.float64)
    kw = dict(key=2, epochs=3, batch_size=7)  # 30 = 4 x 7 + 2: a padded last batch
    result = train_many(spec, X, Y, seeds=[0, 1], optimizer=opt_name, hparams=hparams, **kw)
    for i in range(2):
        hp = {k: v if isinstance(v, str) else v[i] for k, v in hparams.items()}
        _assert_same(result, _alone(spec, i, X, Y, opt_name, hp=hp, **kw), i)


def test_mse_regression_and_full_batch(x64):
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (25, 3))
    Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    spec = InitSpec((3, 5, 2), ("sigmoid", "identity"), "mse", "article", jnp.float64)
    kw = dict(epochs=6, batch_size=None, min_weight_change=1e-3)
    result = train_many(spec, X, Y, seeds=[5, 6], hparams={"lr": [0.5, 2.0], "m": 0.0}, **kw)
    for i, lr in enumerate([0.5, 2.0]):
        _assert_same(result, _alone(spec, 5 + i, X, Y, hp={"lr": lr, "m": 0.0}, **kw), i)


def test_article_mode_stacked_params(x64):
    """Stacked params in (here in article mode: no biases forward), as train gives."""
    nets = [
        init_params(jax.random.key(s), (4, 3, 2), dtype=jnp.float64, article_mode=True)
        for s in range(3)
    ]
    X, Y = np.random.default_rng(0).uniform(0, 1, (12, 4)), np.full((12, 2), 0.7)
    kw = dict(epochs=4, batch_size=1, key=0)
    result = train_many(
        nets,
        X,
        Y,
        optimizer="momentum",
        hparams={"lr": [0.1, 0.5, 0.9], "m": 0.1, "variant": "article"},
        **kw,
    )
    for i, lr in enumerate([0.1, 0.5, 0.9]):
        alone = train(nets[i], X, Y, optimizer=momentum(lr, 0.1, "article"), **kw)
        _assert_same(result, alone, i)


def test_own_data_order_per_network_vmap_path(x64):
    X, Y = _classes(30)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy", "glorot", jnp.float64)
    kw = dict(epochs=3, batch_size=8)
    result = train_many(spec, X, Y, seeds=[0, 0], keys=[11, 12], hparams={"lr": 0.5}, **kw)
    assert result.method == "own"
    for i, k in enumerate([11, 12]):
        _assert_same(result, _alone(spec, 0, X, Y, hp={"lr": 0.5}, key=k, **kw), i)
    assert not np.allclose(result.history["loss"][0], result.history["loss"][1])
    # one key per network, all equal, gives what one shared key gives
    shared = train_many(spec, X, Y, seeds=[0, 1], hparams={"lr": 0.5}, key=3, **kw)
    own = train_many(spec, X, Y, seeds=[0, 1], hparams={"lr": 0.5}, keys=[3, 3], **kw)
    assert (shared.method, own.method) == ("shared", "own")
    tree_allclose(shared.params, own.params, rtol=1e-9, atol=1e-12)


def test_history_chunks_equal_one_chunk_and_memory_does_not_grow_with_epochs(x64):
    """The device history is a ring of history_chunk epochs; the host result is whole."""
    X, Y = _classes(30)
    X_val, Y_val = _classes(10, seed=3)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy", "glorot", jnp.float64)
    kw = dict(epochs=11, batch_size=8, X_val=X_val, Y_val=Y_val, n_iter_no_change=4)
    hp = {"lr": [0.3, 3.0, 0.05]}
    whole = train_many(spec, X, Y, seeds=[0, 1, 2], hparams=hp, **kw)
    chunked = train_many(spec, X, Y, seeds=[0, 1, 2], hparams=hp, history_chunk=3, **kw)
    assert chunked.state.history["loss"].shape == (3, 3)  # bounded, whatever epochs is
    for name in whole.history:
        np.testing.assert_array_equal(whole.history[name], chunked.history[name])
    tree_allclose(whole.params, chunked.params, rtol=0)
    np.testing.assert_array_equal(whole.epochs_run, chunked.epochs_run)


@pytest.mark.parametrize("backend", ["cpu", "cpu, mapped", "gpu"])
def test_init_many_draws_what_init_params_draws_one_by_one_or_vmapped(monkeypatch, backend):
    """On a CPU up to INIT_ONE_BY_ONE networks are drawn one by one, more by one compiled
    loop over the seeds (here from 3 on, 2 seeds a call); on an accelerator (here pretended)
    all in one vmapped draw: either way network n is init_params(seeds[n]) bit for bit."""
    import jbpnn.many as many
    import jbpnn.params as params_module

    if backend == "cpu, mapped":
        monkeypatch.setattr(many, "INIT_ONE_BY_ONE", 2)
        monkeypatch.setattr(params_module, "MAPPED_CHUNK", 2)
        params_module._mapped_draws.clear_cache()
    monkeypatch.setattr(many.jax, "default_backend", lambda: backend.split(",")[0])
    seeds = [3, 0, 11, 2**31 + 5]
    for init in ("article", "glorot", "he"):
        spec = InitSpec((5, 7, 3), "tanh", "cross_entropy", init)
        stacked = many.init_many(spec, seeds)
        for n, seed in enumerate(seeds):
            alone = init_params(seed, (5, 7, 3), "tanh", "cross_entropy", init)
            for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(alone)):
                np.testing.assert_array_equal(np.asarray(a)[n], np.asarray(b), err_msg=init)
    if backend == "cpu, mapped":  # one program per init, whatever the count of seeds
        many.init_many(InitSpec((5, 7, 3), "tanh", "mse", "glorot"), range(7))
        assert params_module._mapped_draws._cache_size() == 3


def test_init_many_and_stacking():
    spec = InitSpec((3, 4, 2), "tanh", "mse", "glorot")
    stacked = init_many(spec, [4, 9])
    assert network_count(stacked) == 2 and stacked.layers[0].w.shape == (2, 3, 4)
    one = init_params(jax.random.key(9), (3, 4, 2), "tanh", "mse", "glorot")
    tree_allclose(unstack_params(stacked)[1], one, rtol=0)
    tree_allclose(stack_params(unstack_params(stacked)), stacked, rtol=0)
    with pytest.raises(ValueError, match="architecture"):
        stack_params([one, init_params(jax.random.key(0), (3, 5, 2), "tanh", "mse")])
    # jnp.stack promoted a float16 network to network 0's float32: refused, as train_many's
    half = jax.tree.map(lambda a: a.astype(jnp.float16), one)
    for networks in ([one, half], [half, one]):
        with pytest.raises(ValueError, match="network 1 has float(16|32) params; expected"):
            stack_params(networks)
    X = np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match="network 1 has float16 params; expected float32"):
        train_many([one, half], X, np.zeros((8, 2), np.float32), optimizer="sgd", epochs=1)


def test_network_i_goes_on_with_its_own_hyperparameters(x64):
    """result[i].optimizer was network 0's (the template): train(result[i], ...) went on
    with lr 0.05 for every network and save recorded it. 5 + 5 epochs == 10 alone."""
    X, Y = _classes()
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy", dtype=jnp.float64)
    lrs = [0.05, 0.5, 2.0]
    many = train_many(spec, X, Y, seeds=[0, 1, 2], optimizer="sgd", hparams={"lr": lrs},
                      key=4, epochs=5, batch_size=8)  # fmt: skip
    for i, lr in enumerate(lrs):
        assert many[i].optimizer.hyperparams["lr"] == lr
        more = train(many[i], X, Y, epochs=5, batch_size=8)
        p0 = init_params(i, spec.sizes, spec.activations, spec.loss, spec.init, spec.dtype)
        alone = train(p0, X, Y, optimizer=sgd(lr), key=4, epochs=10, batch_size=8)
        tree_allclose(more.params, alone.params, rtol=1e-12)


# ---------------------------------------------------------------- bad input
def test_a_static_option_given_per_network_is_refused_for_what_it_is():
    """lbfgs's history sets its memory's shape: one value for all (the same value given per
    network is that value); it was refused as "must be an integer >= 1, got 5.0"."""
    X, Y = _classes(20)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match=r"\['history'\] cannot differ between networks"):
        train_many(spec, X, Y, seeds=[0, 1], optimizer="lbfgs", hparams={"history": [5, 10]})
    r = train_many(spec, X, Y, seeds=[0, 1], optimizer="lbfgs", hparams={"history": [5, 5]},
                   epochs=2)  # fmt: skip
    assert r.state.opt_state.s.shape[1] == 5


def test_a_switch_given_per_network_is_refused_for_what_it_is():
    """variant=["classical", "nesterov"] was refused as "must be ... an array of 2 numbers
    (one per network), got shape (2,)": it was that shape. The same switch for every
    network is that switch (a grid over lr x variant gives such a column)."""
    X, Y = _classes(20)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match=r"'variant' cannot differ.*\['classical', 'nesterov'\]"):
        train_many(spec, X, Y, seeds=[0, 1], optimizer="momentum",
                   hparams={"lr": 0.1, "variant": ["classical", "nesterov"]})  # fmt: skip
    with pytest.raises(ValueError, match=r"'flag' cannot differ.*\[False, True\]"):
        train_many(spec, X, Y, seeds=[0, 1], optimizer="momentum",
                   hparams={"lr": 0.1, "flag": np.array([True, False])})  # fmt: skip
    r = train_many(spec, X, Y, seeds=[0, 1], optimizer="momentum",
                   hparams={"lr": [0.1, 0.2], "variant": ["nesterov"] * 2}, epochs=1)  # fmt: skip
    assert r[1].optimizer.kind == momentum(0.2, variant="nesterov").kind


@pytest.mark.parametrize("limit", [True, "20GB", float("nan"), -1, 0])
def test_a_bad_memory_limit_is_named(limit):
    """True was 1 byte, a string a TypeError from inside, NaN 'cannot convert float NaN'."""
    X, Y = _classes(20)
    with pytest.raises(ValueError, match="memory_limit"):
        train_many(InitSpec((5, 4, 3)), X, Y, seeds=[0], hparams={"lr": 0.1}, memory_limit=limit)


def test_bad_requests_raise_before_training():
    X, Y = _classes(20)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match="one per network"):
        train_many(spec, X, Y, seeds=[0, 1, 2], hparams={"lr": [0.1, 0.2]})
    with pytest.raises(ValueError, match="network 1: lr must be"):
        train_many(spec, X, Y, seeds=[0, 1], hparams={"lr": [0.1, -0.2]})
    with pytest.raises(ValueError, match="unknown optimizer"):
        train_many(spec, X, Y, seeds=[0], optimizer="rmsprop", hparams={"lr": 0.1})
    with pytest.raises(ValueError, match="does not take|unexpected"):
        train_many(spec, X, Y, seeds=[0], hparams={"lr": 0.1, "beta": [0.1]})
    with pytest.raises(ValueError, match="give seeds"):
        train_many(spec, X, Y, hparams={"lr": 0.1})
    with pytest.raises(ValueError, match="not both"):
        train_many(spec, X, Y, seeds=[0], hparams={"lr": 0.1}, key=0, keys=[1])
    with pytest.raises(ValueError, match="cannot differ between networks"):
        # lr hidden in the user's own schedule function: not data of the optimizer
        train_many(
            spec,
            X,
            Y,
            seeds=[0, 1],
            optimizer=lambda lr: sgd(lambda count: lr),
            hparams={"lr": [0.1, 0.2]},
        )
    with pytest.raises(ValueError, match="Your data length is 4"):
        train_many(spec, X[:, :4], Y, seeds=[0], hparams={"lr": 0.1})
    one = init_params(jax.random.key(0), (5, 4, 3), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match="leading network axis"):
        train_many(one, X, Y, hparams={"lr": 0.1})


def test_too_large_request_fails_before_allocating():
    X, Y = _classes(20)
    spec = InitSpec((5, 100_000, 3), "sigmoid", "cross_entropy")
    seeds = np.arange(100_000)  # 10^5 networks of 8e5 params: ~1.5 TB
    with pytest.raises(EnsembleTooLarge, match=r"At most \d+ such networks fit") as info:
        train_many(spec, X, Y, seeds=seeds, hparams={"lr": 0.1})
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    assert "available RAM" in str(info.value) or "device memory" in str(info.value)
    # an explicit limit: 4 small networks fit in 300 MiB (with the runtime overhead), 10^6 do not
    small = InitSpec((5, 4, 3), "sigmoid", "cross_entropy")
    train_many(small, X, Y, seeds=range(4), hparams={"lr": 0.1}, epochs=1, memory_limit=300 * 2**20)
    with pytest.raises(EnsembleTooLarge, match="memory_limit"):
        train_many(small, X, Y, seeds=range(10**6), hparams={"lr": 0.1}, memory_limit=300 * 2**20)


def test_many_result_table_has_one_row_per_network(x64):
    X, Y = _classes(30)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy", "glorot", jnp.float64)
    g = grid(lr=[0.3, 1.0], seed=[0, 1])
    seeds = g.pop("seed")
    result = train_many(
        spec,
        X,
        Y,
        seeds=seeds,
        hparams=dict(g, m=0.9),
        epochs=4,
        batch_size=10,
        X_val=X[:10],
        Y_val=Y[:10],
        n_iter_no_change=2,
    )
    table = result.table(X, Y)
    assert table.columns == [
        "network",
        "lr",
        "m",
        "seed",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "epochs",
        "stop_reason",
    ]
    assert len(table) == 4 and table["seed"] == [0, 1, 0, 1] and table["m"] == [0.9] * 4
    for i, row in enumerate(table):
        alone = result[i]
        at = (alone.best_epoch or alone.epochs_run) - 1
        assert row["val_accuracy"] == alone.history["val_accuracy"][at]
        assert row["epochs"] == alone.epochs_run and row["stop_reason"] == alone.stop_reason
    assert ResultsTable.from_json(table.to_json()) == table


# ---------------------------------------------------------------- subprocesses
def _run(code_or_args, env_extra=None, timeout=180):
    env = dict(os.environ, **(env_extra or {}))
    env.setdefault("JBPNN_NO_CACHE", "1")
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_split_across_two_cpu_devices_gives_the_same_networks():
    """On two devices, the same results as on one: five networks (padded to six); and two
    folds x 4 networks, interleaved, where each device takes 2 networks of every fold
    (grouped). One subprocess: JAX starts once for both."""
    code = textwrap.dedent(
        """
        import jax
        jax.config.update("jax_num_cpu_devices", 2)
        jax.config.update("jax_enable_x64", True)
        import numpy as np, jax.numpy as jnp
        import jbpnn.many as many
        from jbpnn.many import InitSpec, train_many
        assert len(jax.devices()) == 2
        orders, compiled = [], many._compiled
        many._compiled = lambda *a: orders.append(a[4]) or compiled(*a)
        rng = np.random.default_rng(0)
        X = rng.uniform(-1, 1, (30, 4)); Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
        spec = InitSpec((4, 5, 2), "relu", "cross_entropy", "glorot", jnp.float64)

        def same(**kw):
            two = train_many(spec, X, Y, devices=2, epochs=6, batch_size=8, tol=0.2, **kw)
            one = train_many(spec, X, Y, devices=1, epochs=6, batch_size=8, tol=0.2, **kw)
            assert two.stop_reason == one.stop_reason, (two.stop_reason, one.stop_reason)
            assert (two.epochs_run == one.epochs_run).all()
            for a, b in zip(jax.tree.leaves(two.params), jax.tree.leaves(one.params)):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
            print("OK", two.stop_reason)

        same(seeds=range(5), hparams={"lr": [0.1, 0.5, 1, 2, 1e200], "m": 0.5})
        assert orders == ["shared", "shared"], orders
        folds = [np.arange(0, 20), np.arange(8, 30)]
        same(seeds=range(8), hparams={"lr": [0.1, 0.5, 1, 2, 0.3, 0.7, 1.5, 1e200]},
             rows=[folds[i % 2] for i in range(8)])
        assert orders[2:] == ["grouped", "grouped"], orders
        """
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("OK") == 2 and proc.stdout.count("diverged") >= 2, proc.stdout


def test_quick_sweep_script(tmp_path):
    proc = _run(["experiments/sweep.py", "--quick", "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "best configurations" in out and "speed-up of train_many" in out
    table = ResultsTable.from_csv(tmp_path / "sweep.csv")
    assert len(table) == 8 and set(table["stop_reason"]) <= set(STOP_REASONS)
    assert ResultsTable.from_json(tmp_path / "sweep.json") == table
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    png = (tmp_path / "heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("shortest", [31, 30])
def test_own_rows_whose_last_batches_are_all_padding(x64, shortest):
    # 36 rows in batches of 6: with 31 rows every batch has a real row (no update is
    # skipped, and none is gated); with 30 the sixth batch is all padding, an update
    # that must be skipped (as train skips a batch of weight 0): each network equals
    # train alone, its optimizer's step count included
    from jbpnn import many
    from jbpnn.state import train_config

    X, Y = _classes(37)
    spec = InitSpec((5, 4, 3), "tanh", "cross_entropy", "glorot", jnp.float64)
    rows = [np.arange(shortest), np.arange(1, 37)]
    kw = dict(epochs=3, batch_size=6, key=4)
    result = train_many(spec, X, Y, seeds=[1, 2], rows=rows, hparams={"lr": 0.3}, **kw)
    for i, (r, seed) in enumerate(zip(rows, [1, 2])):
        alone = _alone(spec, seed, X[r], Y[r], hp={"lr": 0.3}, **kw)
        _assert_same(result, alone, i)
        assert int(result[i].state.opt_state.count) == int(alone.state.opt_state.count)
    template = train_config(37, batch_size=6)
    _, config = many._own_rows(rows, 2, (X, Y, None), template, 6, None, False)
    assert config.weighted == (shortest == 30)  # the per-update gate only where needed


def test_own_rows_per_network_equal_train_on_those_rows(x64):
    """The folds of a cross-validation as networks: each equals train on its own rows."""
    X, Y = _classes(37)
    spec = InitSpec((5, 4, 3), "tanh", "cross_entropy", "glorot", jnp.float64)
    rows = [np.arange(0, 30), np.arange(5, 37), np.r_[0:10, 20:37], np.arange(7, 37)]
    kw = dict(epochs=4, batch_size=6, key=2)
    result = train_many(
        spec, X, Y, seeds=[1, 1, 2, 2], rows=rows, hparams={"lr": [0.3, 0.3, 0.1, 1.0]}, **kw
    )
    assert result.method == "own"
    for i, (r, lr, seed) in enumerate(zip(rows, [0.3, 0.3, 0.1, 1.0], [1, 1, 2, 2])):
        alone = _alone(spec, seed, X[r], Y[r], hp={"lr": lr}, **kw)
        _assert_same(result, alone, i)
        assert int(result[i].state.opt_state.count) == int(alone.state.opt_state.count)
    with pytest.raises(ValueError, match="one per network"):
        train_many(spec, X, Y, seeds=[1, 2], rows=rows, hparams={"lr": 0.1}, **kw)
    with pytest.raises(ValueError, match="outside"):
        train_many(spec, X, Y, seeds=[1], rows=[np.array([0, 99])], hparams={"lr": 0.1}, **kw)
    with pytest.raises(ValueError, match="larger than the 3 rows"):
        train_many(spec, X, Y, seeds=[1], rows=[np.arange(3)], hparams={"lr": 0.1}, **kw)


def test_bootstrap_rows_take_a_batch_size_up_to_their_own_length(x64):
    """rows drawn with replacement may outnumber X's rows: batch_size is checked against
    each network's rows, as train on X[rows[i]] checks it (it was refused against X's)."""
    X, Y = _classes(10)
    spec = InitSpec((5, 4, 3), "sigmoid", "cross_entropy", "glorot", jnp.float64)
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 10, 20), rng.integers(0, 10, 18)]
    kw = dict(epochs=4, batch_size=15, key=3)
    result = train_many(spec, X, Y, seeds=[0, 1], rows=rows, hparams={"lr": 0.3, "m": 0.5}, **kw)
    for i, r in enumerate(rows):
        _assert_same(result, _alone(spec, i, X[r], Y[r], hp={"lr": 0.3, "m": 0.5}, **kw), i)
    with pytest.raises(ValueError, match="larger than the 18 rows of network 1"):
        train_many(
            spec, X, Y, seeds=[0, 1], rows=rows, hparams={"lr": 0.3}, epochs=1, batch_size=19
        )
    with pytest.raises(ValueError, match="batch_size must be"):
        train_many(spec, X, Y, seeds=[0, 1], rows=rows, hparams={"lr": 0.3}, batch_size=0)


def test_a_full_batch_optimizer_refuses_a_batch_smaller_than_a_networks_rows(x64):
    """lm with rows=: a batch_size equal to X's length but not to a network's rows was a
    mini-batch for a full-batch rule (train on those rows refuses it)."""
    X, Y = _classes(10)
    spec = InitSpec((5, 3, 3), "tanh", "mse", "glorot", jnp.float64)
    rows = [np.arange(10), np.r_[0:10, 0:10]]
    with pytest.raises(ValueError, match=r"full-batch optimizer .*\(network 1 has 20 rows\)"):
        train_many(spec, X, Y, seeds=[0, 1], rows=rows, optimizer="lm", hparams={}, batch_size=10)
    with pytest.raises(ValueError, match="full-batch optimizer"):  # train's own refusal
        train(init_params(0, spec.sizes, "tanh", "mse", dtype=jnp.float64), X[rows[1]],
              Y[rows[1]], optimizer=OPTIMIZERS["lm"](), batch_size=10, epochs=1)  # fmt: skip
    full = train_many(spec, X, Y, seeds=[0, 1], rows=rows, optimizer="lm", hparams={}, epochs=2)
    assert full.epochs_run.tolist() == [2, 2]


def test_networks_sharing_rows_and_key_train_as_groups_each_equal_train_alone(x64, monkeypatch):
    """A cross-validation's candidates on each fold (interleaved, as SweepSearchCV orders
    them): networks with the same rows and data-order key train as groups sharing their
    mini-batches, each network still equal to train on its rows, with its own validation
    rows and thresholds, and every result in the caller's order."""
    import jbpnn.many as many

    orders = []
    compiled = many._compiled
    monkeypatch.setattr(many, "_compiled", lambda *a: orders.append(a[4]) or compiled(*a))
    X, Y = _classes(41)
    spec = InitSpec((5, 4, 3), "tanh", "cross_entropy", "glorot", jnp.float64)
    folds = [np.arange(0, 30), np.r_[0:10, 20:41]]  # lengths 30 and 31
    vals = [np.arange(30, 41), np.arange(10, 20)]
    rows = [folds[i % 2] for i in range(6)]  # fold 0, fold 1, fold 0, ...
    val_rows = [vals[i % 2] for i in range(6)]
    lrs, tols = [0.3, 1.0, 0.1, 2.0, 0.6, 0.05], [0.0, 0.0, 0.0, 5.0, 0.0, 0.0]
    kw = dict(epochs=30, batch_size=7, key=5, n_iter_no_change=4)
    result = train_many(spec, X, Y, seeds=np.arange(6), rows=rows, X_val=X, Y_val=Y,
                        val_rows=val_rows, hparams={"lr": lrs}, tol=tols, **kw)  # fmt: skip
    assert orders == ["grouped"] and result.method == "own"
    assert len(set(result.stop_reason)) >= 2, result.stop_reason  # they stop on their own
    for i in range(6):
        r, v = rows[i], val_rows[i]
        alone = _alone(spec, i, X[r], Y[r], hp={"lr": lrs[i]}, X_val=X[v], Y_val=Y[v],
                       **{**kw, "tol": tols[i]})  # fmt: skip
        _assert_same(result, alone, i)
    # groups of unequal size (3 networks on one fold, 1 on another): each its own batches
    train_many(spec, X, Y, seeds=[0, 1, 2, 3], rows=[folds[0]] * 3 + [folds[1]],
               hparams={"lr": 0.1}, epochs=1, batch_size=7)  # fmt: skip
    assert orders[-1] == "own"


def test_own_validation_rows_per_network_equal_train_with_that_validation_set(x64):
    """Each fold its own training AND validation rows (scikit-learn's early stopping in a
    cross-validation): network i equals train with X[rows[i]] and X[val_rows[i]]."""
    X, Y = _classes(41)
    spec = InitSpec((5, 4, 3), "tanh", "cross_entropy", "glorot", jnp.float64)
    rows = [np.arange(0, 30), np.arange(8, 37), np.r_[0:10, 20:35]]
    val_rows = [np.arange(30, 41), np.arange(0, 8), np.r_[10:20, 35:41]]  # lengths 11, 8, 16
    weight = np.random.default_rng(1).uniform(0.5, 2.0, 41)
    kw = dict(epochs=60, batch_size=5, key=3, n_iter_no_change=3, monitor="val_accuracy")
    lrs = [0.5, 2.0, 1.0]
    for order in ({}, {"keys": [4, 5, 6], "key": None}):  # rows with one key; each its own
        result = train_many(spec, X, Y, seeds=[1, 2, 3], rows=rows, X_val=X, Y_val=Y,
                            val_rows=val_rows, val_sample_weight=weight, hparams={"lr": lrs},
                            **{**kw, **order})  # fmt: skip
        for i, (r, v, lr) in enumerate(zip(rows, val_rows, lrs)):
            k = {**kw, "key": order["keys"][i]} if order else kw  # the key train gets
            alone = _alone(spec, i + 1, X[r], Y[r], hp={"lr": lr}, X_val=X[v], Y_val=Y[v],
                           val_sample_weight=weight[v], **k)  # fmt: skip
            _assert_same(result, alone, i)
        assert any(result[i].stop_reason == "no_validation_improvement" for i in range(3))
    # shared training data, own validation rows (the "shared" path)
    result = train_many(spec, X, Y, seeds=[1, 2], X_val=X, Y_val=Y, val_rows=val_rows[:2],
                        hparams={"lr": 0.5}, **kw)  # fmt: skip
    for i, v in enumerate(val_rows[:2]):
        _assert_same(result, _alone(spec, i + 1, X, Y, hp={"lr": 0.5}, X_val=X[v], Y_val=Y[v],
                                    **kw), i)  # fmt: skip
    with pytest.raises(ValueError, match="give them too"):
        train_many(spec, X, Y, seeds=[1], val_rows=[np.arange(3)], hparams={"lr": 0.1})
    with pytest.raises(ValueError, match=r"val_rows\[0\] has indices outside"):
        train_many(spec, X, Y, seeds=[1], X_val=X[:5], Y_val=Y[:5], val_rows=[np.arange(9)],
                   hparams={"lr": 0.1})  # fmt: skip
    with pytest.raises(ValueError, match="val_sample_weight is 0 on every row"):
        zero_first = np.r_[np.zeros(3), np.ones(38)]
        train_many(spec, X, Y, seeds=[1], X_val=X, Y_val=Y, val_rows=[np.arange(3)],
                   val_sample_weight=zero_first, hparams={"lr": 0.1})  # fmt: skip


def test_per_network_stop_thresholds_equal_train_with_each(x64):
    """Thresholds are data too: each network its own tol, patience and validation tol."""
    X, Y = _classes(40)
    spec = InitSpec((5, 4, 3), "tanh", "cross_entropy", "glorot", jnp.float64)
    patience, vtol, ltol = [2, 3, 5], [1e-3, 0.0, 1e-2], [1e-2, 1e-3, 1e-4]
    kw = dict(epochs=80, batch_size=8, key=1)
    val = dict(X_val=X[:12], Y_val=Y[:12])
    result = train_many(spec, X, Y, seeds=[1, 2, 3], hparams={"lr": [0.5, 1.0, 2.0]}, **kw,
                        **val, n_iter_no_change=patience, validation_tol=vtol,
                        loss_patience=np.array([4, 6, 9]), loss_tol=ltol)  # fmt: skip
    for i, lr in enumerate([0.5, 1.0, 2.0]):
        alone = _alone(spec, i + 1, X, Y, hp={"lr": lr}, **kw, **val,
                       n_iter_no_change=patience[i], validation_tol=vtol[i],
                       loss_patience=[4, 6, 9][i], loss_tol=ltol[i])  # fmt: skip
        _assert_same(result, alone, i)
    assert len({result[i].epochs_run for i in range(3)}) > 1
    with pytest.raises(ValueError, match="a sequence of 3"):
        train_many(spec, X, Y, seeds=[1, 2, 3], hparams={"lr": 0.1}, tol=[0.1, 0.2])
    with pytest.raises(ValueError, match="network 1: tol must be"):
        train_many(spec, X, Y, seeds=[1, 2, 3], hparams={"lr": 0.1}, tol=[0.1, -1.0, 0.2])
    with pytest.raises(ValueError, match="on for some networks and off"):
        train_many(spec, X, Y, seeds=[1, 2], hparams={"lr": 0.1}, loss_patience=[3, None])


def test_data_keys_from_seeds_are_jax_random_keys():
    # built by NumPy from the seeds (no compiled program): the same keys as jax.random.key
    from jbpnn.many import _as_keys

    seeds = np.array([0, 5, 2**31, 2**32 - 1])
    want = jax.random.key_data(jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32)))
    np.testing.assert_array_equal(jax.random.key_data(_as_keys(seeds, 4)), want)
    np.testing.assert_array_equal(jax.random.key_data(_as_keys(np.asarray(want), 4)), want)


def test_a_diverged_networks_row_describes_the_params_it_returns(x64):
    """The table's train loss of a diverged network is its returned params' epoch's (from
    before the diverging epoch), as train's final loss: both once were the discarded one's."""
    from jbpnn.network import loss

    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(64, 2)), rng.normal(size=(16, 2))
    Y, Yv = X @ np.array([[1.5], [-2.0]]), Xv @ np.array([[1.5], [-2.0]])
    spec = InitSpec((2, 1), "identity", "mse", dtype=jnp.float64)
    res = train_many(
        spec, X, Y, seeds=[0, 0], hparams={"lr": np.array([0.05, 3.0])},
        optimizer=sgd(0.1), epochs=200, X_val=Xv, Y_val=Yv, key=0,
    )  # fmt: skip
    assert tuple(res.stop_reason) == ("max_epochs", "diverged")
    kept = int(res.epochs_run[1]) - 1  # the epochs whose params were kept
    p1 = unstack_params(res.params)[1]
    row = res.table()[1]
    assert row["val_loss"] == pytest.approx(float(loss(p1, Xv, Yv)), rel=1e-12)
    assert row["train_loss"] == res.history["loss"][1, kept - 1]
    alone = train(p1, X, Y, optimizer=sgd(3.0), epochs=50, X_val=Xv, Y_val=Yv)
    assert alone.stop_reason == "diverged"
    back = alone.diverged_at - 1
    assert f"final loss: {alone.history['loss'][back - 1]:.6g}" in str(alone)


def test_a_stacked_checkpoint_goes_on_network_by_network_and_train_many_says_so(tmp_path):
    # train_many(state) said "stack_params needs a non-empty sequence of MLPs" (a TrainState
    # is a tuple); io promised that a stacked checkpoint goes on with train, which refuses
    # stacked params: network i's slice of the state does
    from jbpnn.io import load, save

    X, Y = _classes()
    spec = InitSpec((5, 4, 3), ("tanh", "softmax"), "cross_entropy", "glorot")
    kw = dict(optimizer="momentum", hparams={"lr": [0.1, 0.2], "m": 0.9}, batch_size=16)
    whole = train_many(spec, X, Y, seeds=[0, 1], epochs=4, key=2, **kw)
    first = train_many(spec, X, Y, seeds=[0, 1], epochs=2, key=2, **kw)
    save(tmp_path / "many.npz", first.state)  # each network's values stay in the state
    state = load(tmp_path / "many.npz").state
    for start in (state, first, first.state):
        with pytest.raises(ValueError, match="does not resume a run: go on with one network"):
            train_many(start, X, Y, epochs=2, **kw)
    for i in range(2):
        one = jax.tree.map(lambda a, i=i: a[i], state)
        more = train(one, X, Y, optimizer=first[i].optimizer, epochs=2, batch_size=16)
        tree_allclose(more.params, whole[i].params, rtol=1e-6, atol=1e-7)


def test_complex_per_network_hyperparameters_are_refused_not_cut_to_their_real_part():
    # astype(float) dropped 0.2j's imaginary part: network 1 trained with lr 0
    X = np.random.default_rng(0).normal(size=(40, 4))
    Y = np.eye(3)[np.arange(40) % 3]
    spec = InitSpec((4, 5, 3), "tanh", "cross_entropy", "glorot")
    hp = {"lr": np.array([0.1, 0.2j, 0.3]), "m": 0.5}
    with pytest.raises(ValueError, match="'lr' must be real numbers, one per network"):
        train_many(spec, X, Y, seeds=[0, 1, 2], hparams=hp, epochs=1, batch_size=8)


@pytest.mark.parametrize("patience", [[2, 2.5], (2, 3.0)])
def test_a_bad_per_network_threshold_names_its_own_network(patience):
    # NumPy made [2, 2.5] all floats, and the refusal named network 0's valid 2 ("2.0")
    X = np.random.default_rng(0).normal(size=(40, 4))
    Y = np.eye(3)[np.arange(40) % 3]
    spec = InitSpec((4, 5, 3), "tanh", "cross_entropy", "glorot")
    with pytest.raises(ValueError, match=f"network 1: loss_patience .* got {patience[1]}"):
        train_many(
            spec,
            X,
            Y,
            seeds=[0, 1],
            hparams={"lr": 0.1, "m": 0.5},
            epochs=1,
            batch_size=8,
            loss_patience=patience,
        )
    with pytest.raises(ValueError, match=r"hyperparameter: optimizer hyperparameters none given"):
        train_many(spec, X, Y, seeds=[0, 1], epochs=1, batch_size=8)  # momentum needs lr

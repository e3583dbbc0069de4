"""The compiled training loop against plain Python loops, and its stop rules."""

from __future__ import annotations

import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import no_persistent_cache, tree_allclose

from jbpnn.network import loss_and_gradient
from jbpnn.optimizers import adam, apply_updates, inverse_scaling, momentum, sgd, step_decay
from jbpnn.params import MLP, init_params
from jbpnn.stopping import Stopping, stop_rules
from jbpnn.training import (
    STOP_REASONS,
    TrainResult,
    accuracy,
    evaluate,
    init_state,
    run_epochs,
    shuffle_order,
    train,
    train_config,
)


def _data(n=10, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_in))
    Y = rng.uniform(0, 1, (n, n_out))
    return X, Y


def _python_loop(params, X, Y, batches_per_epoch, opt):
    """Reference: a Python loop over epochs and batches of the checked public gradient."""
    state = opt.init(params)
    losses = []
    for batches in batches_per_epoch:
        total, count = 0.0, 0
        for idx in batches:
            loss, grads = loss_and_gradient(params, X[idx], Y[idx])  # mean over the batch
            updates, state = opt.update(grads, state, params)
            params = apply_updates(params, updates)
            total += float(loss) * len(idx)
            count += len(idx)
        losses.append(total / count)
    return params, np.array(losses)


@pytest.mark.parametrize(
    "opt",
    [sgd(0.3), momentum(0.4, 0.5, variant="article")],
    ids=["sgd", "article_momentum"],
)
def test_online_equals_python_loop(x64, opt):
    X, Y = _data()
    p0 = init_params(jax.random.PRNGKey(1), (3, 4, 2), dtype=jnp.float64)
    result = train(p0, X, Y, optimizer=opt, epochs=3, batch_size=1)
    order = [[i] for i in range(len(X))]  # in order, one example per update
    expected, losses = _python_loop(p0, X, Y, [order] * 3, opt)
    tree_allclose(result.params, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)
    assert result.epochs_run == 3 and result.stop_reason == "max_epochs"


def test_minibatch_with_partial_last_batch_equals_weighted_means(x64):
    X, Y = _data(n=10)
    p0 = init_params(jax.random.PRNGKey(2), (3, 5, 2), activations="tanh", dtype=jnp.float64)
    opt = momentum(0.2, 0.9)
    key = jax.random.PRNGKey(7)
    result = train(p0, X, Y, optimizer=opt, epochs=3, batch_size=4, key=key)
    # The documented order: shuffle_order(fold_in(key, epoch)); batches of 4, 4, then 2.
    epochs = []
    for e in range(3):
        order = np.asarray(shuffle_order(jax.random.fold_in(key, e), 10))
        epochs.append([order[0:4], order[4:8], order[8:10]])
    expected, losses = _python_loop(p0, X, Y, epochs, opt)
    tree_allclose(result.params, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)


def test_drop_last_and_no_shuffle(x64):
    X, Y = _data(n=10)
    p0 = init_params(jax.random.PRNGKey(2), (3, 5, 2), dtype=jnp.float64)
    opt = sgd(0.5)
    result = train(p0, X, Y, optimizer=opt, epochs=2, batch_size=4, shuffle=False, drop_last=True)
    batches = [np.arange(0, 4), np.arange(4, 8)]  # examples 8 and 9 dropped
    expected, losses = _python_loop(p0, X, Y, [batches] * 2, opt)
    tree_allclose(result.params, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)


def test_full_batch_loss_is_the_loss_at_the_start_of_each_epoch(x64):
    X, Y = _data(n=6)
    p0 = init_params(jax.random.PRNGKey(3), (3, 2), dtype=jnp.float64)
    opt = sgd(0.5)
    result = train(p0, X, Y, optimizer=opt, epochs=4)
    expected, losses = _python_loop(p0, X, Y, [[np.arange(6)]] * 4, opt)
    tree_allclose(result.params, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)


# ---------------------------------------------------------------- stop rules
def _linear_problem(n=20):
    """Identity network fitting an exact linear map: full-batch GD converges geometrically."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    Y = X @ np.array([[1.5], [-0.5]]) + 0.25
    p0 = init_params(jax.random.PRNGKey(0), (2, 1), activations="identity", dtype=jnp.float64)
    return p0, X, Y


def test_loss_below_tol_stops(x64):
    p0, X, Y = _linear_problem()
    result = train(p0, X, Y, optimizer=sgd(0.3), epochs=500, tol=1e-4)
    loss = result.history["loss"]
    assert result.stop_reason == "loss_below_tol"
    assert 1 < result.epochs_run < 500
    assert loss[-1] < 1e-4 <= loss[-2]
    assert len(loss) == result.epochs_run


def test_weight_change_below_threshold_stops(x64):
    p0, X, Y = _linear_problem()
    result = train(p0, X, Y, optimizer=sgd(0.3), epochs=500, min_weight_change=1e-3)
    change = result.history["max_weight_change"]
    assert result.stop_reason == "weight_change_below_threshold"
    assert 1 < result.epochs_run < 500
    assert change[-1] < 1e-3 <= change[-2]


def test_max_epochs_when_no_rule_fires(x64):
    p0, X, Y = _linear_problem()
    result = train(p0, X, Y, optimizer=sgd(0.3), epochs=7, tol=1e-30, min_weight_change=1e-30)
    assert result.stop_reason == "max_epochs" and result.epochs_run == 7


def test_no_validation_improvement_stops_and_keeps_the_best(x64):
    p0, X, Y = _linear_problem()
    # Validation targets of the opposite slope: the val loss falls at first, then rises.
    X_val, Y_val = X, 0.5 * X[:, :1] - 0.25
    result = train(
        p0,
        X,
        Y,
        optimizer=sgd(0.05),
        epochs=500,
        X_val=X_val,
        Y_val=Y_val,
        n_iter_no_change=5,
    )
    val = result.history["val_loss"]
    assert result.stop_reason == "no_validation_improvement"
    assert result.epochs_run < 500
    best = int(np.argmin(val))
    assert result.best_epoch == best + 1
    # Replay the rule: an epoch counts as no improvement unless it beats the best by 1e-4.
    best_so_far, bad, stop_at = np.inf, 0, None
    for i, v in enumerate(val):
        bad = 0 if v < best_so_far - 1e-4 else bad + 1
        best_so_far = min(best_so_far, v)
        if bad >= 5:
            stop_at = i + 1
            break
    assert result.epochs_run == stop_at
    assert best + 1 < result.epochs_run <= best + 1 + 5
    np.testing.assert_allclose(evaluate(result.params, X_val, Y_val)["loss"], val[best], rtol=1e-10)
    assert "val_accuracy" in result.history and len(result.history["val_accuracy"]) == len(val)


def _replay_plateau(values, patience, tol, factor=None, lr=1.0, min_lr=1e-6):
    """scikit-learn's ``_update_no_improvement_count`` and ``trigger_stopping`` in Python:
    (epochs run, lr scale at the end)."""
    best, count, scale = np.inf, 0, 1.0
    for i, v in enumerate(values):
        count = 0 if v < best - tol else count + 1
        best = min(best, v)
        if count >= patience:
            if factor is None or lr * scale <= min_lr:
                return i + 1, scale
            scale, count = scale * factor, 0
    return len(values), scale


def test_training_loss_plateau_stops_as_scikit_learn_counts(x64):
    X, Y = _data(n=40, seed=3)
    p0 = init_params(jax.random.key(1), (3, 6, 2), dtype=jnp.float64)
    kw = dict(optimizer=momentum(0.3, 0.9), batch_size=8)
    free = train(p0, X, Y, epochs=300, **kw)  # the same run without the rule
    result = train(p0, X, Y, epochs=300, loss_patience=4, loss_tol=1e-3, **kw)
    assert result.stop_reason == "no_loss_improvement"
    expected, _ = _replay_plateau(free.history["loss"], 4, 1e-3)
    assert expected < 300 and result.epochs_run == expected
    np.testing.assert_array_equal(result.history["loss"], free.history["loss"][:expected])
    assert int(result.state.loss_bad_epochs) == 4
    assert float(result.state.best_loss) == free.history["loss"][:expected].min()


def test_lr_factor_divides_the_learning_rate_on_each_plateau(x64):
    X, Y = _data(n=40, seed=3)
    p0 = init_params(jax.random.key(1), (3, 6, 2), dtype=jnp.float64)
    kw = dict(optimizer=sgd(0.5), batch_size=8, loss_patience=3, loss_tol=1e-3)
    result = train(p0, X, Y, epochs=400, lr_factor=0.2, min_lr=1e-4, **kw)
    epochs, scale = _replay_plateau(result.history["loss"], 3, 1e-3, 0.2, 0.5, 1e-4)
    assert result.stop_reason == "no_loss_improvement" and result.epochs_run == epochs
    assert scale <= 0.2**3 and float(result.state.lr_scale) == pytest.approx(scale, rel=1e-12)
    assert float(result.state.opt_state.hyperparams["lr"]) == 0.5  # the state keeps lr
    # resume: 10 + 10 epochs equal 20, the reductions carried
    whole = train(p0, X, Y, epochs=60, lr_factor=0.5, min_lr=1e-9, **kw)
    half = train(p0, X, Y, epochs=30, lr_factor=0.5, min_lr=1e-9, **kw)
    again = train(half.state, X, Y, epochs=30, lr_factor=0.5, min_lr=1e-9, **kw)
    assert float(half.state.lr_scale) < 1 and again.stop_reason == whole.stop_reason
    _same_state(whole.state, again.state)


def test_lr_scale_is_the_learning_rate_the_updates_use(x64):
    X, Y = _data(n=16, seed=4)
    p0 = init_params(jax.random.key(2), (3, 4, 2), dtype=jnp.float64)
    kw = dict(batch_size=4, shuffle=False, loss_patience=1, loss_tol=10.0)  # every epoch stalls
    reduced = train(p0, X, Y, optimizer=sgd(0.8), epochs=3, lr_factor=0.5, min_lr=0.0, **kw)
    # epoch 1 beats the initial best (inf); epochs 2 and 3 stall, each halving the lr after it
    assert float(reduced.state.lr_scale) == 0.5**2
    # ... recorded after each epoch (the reductions so far), and in a checkpoint
    np.testing.assert_array_equal(reduced.history["lr_scale"], [1.0, 0.5, 0.25])
    assert "lr_scale" not in train(p0, X, Y, optimizer=sgd(0.8), epochs=1, **kw).history
    from jbpnn.io import load, save

    with tempfile.TemporaryDirectory() as folder:
        save(f"{folder}/s.npz", reduced.state, optimizer=sgd(0.8))
        saved = load(f"{folder}/s.npz")
    more = train(saved.state, X, Y, optimizer=saved.optimizer, epochs=1, lr_factor=0.5,
                 min_lr=0.0, **kw)  # fmt: skip
    assert more.history["lr_scale"].tolist() == [0.125]
    params = p0  # so epochs 1, 2, 3 ran with lr 0.8, 0.8, 0.4: as three runs by hand
    for lr in (0.8, 0.8, 0.4):
        params = train(
            params, X, Y, optimizer=sgd(lr), epochs=1, batch_size=4, shuffle=False
        ).params
    tree_allclose(reduced.params, params, rtol=1e-12)


def test_early_stopping_on_validation_accuracy(x64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    labels = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    Y = np.eye(2)[labels]
    p0 = init_params(jax.random.key(0), (4, 6, 2), ("sigmoid", "softmax"), "cross_entropy",
                     dtype=jnp.float64)  # fmt: skip
    kw = dict(optimizer=sgd(0.5), batch_size=10, X_val=X[80:], Y_val=Y[80:])
    free = train(p0, X[:80], Y[:80], epochs=200, **kw)
    result = train(p0, X[:80], Y[:80], epochs=200, n_iter_no_change=4, validation_tol=0.01,
                   monitor="val_accuracy", **kw)  # fmt: skip
    acc = free.history["val_accuracy"]
    expected, _ = _replay_plateau(1 - acc, 4, 0.01)
    assert result.stop_reason == "no_validation_improvement" and result.epochs_run == expected
    best = int(np.argmax(acc[:expected]))  # the first epoch of the highest accuracy
    assert result.best_epoch == best + 1
    assert accuracy(result.params, X[80:], Y[80:]) == acc[best]
    # the loss monitor stops elsewhere: the two rules are not the same rule
    by_loss = train(p0, X[:80], Y[:80], epochs=200, n_iter_no_change=4, validation_tol=0.01, **kw)
    assert by_loss.epochs_run == _replay_plateau(free.history["val_loss"], 4, 0.01)[0]


def test_divergence_returns_last_finite_params(x64):
    # lr = 10 is far above 2 / (largest curvature): |w| grows ~10x per epoch until it overflows.
    p0, X, Y = _linear_problem()
    opt = sgd(10.0)
    off = dict(max_loss_growth=None, max_abs_param=None)  # only NaN/inf counts here
    result = train(p0, X, Y, optimizer=opt, epochs=1000, **off)
    assert result.stop_reason == "diverged", result
    assert result.diverged_at == result.epochs_run > 10
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))
    assert not np.isfinite(result.history["loss"][-1])
    assert np.all(np.isfinite(result.history["loss"][:-1]))
    assert "diverged at epoch" in str(result)
    # The params returned are those after the last finite epoch.
    before = train(p0, X, Y, optimizer=opt, epochs=result.diverged_at - 1, **off)
    assert before.stop_reason == "max_epochs"
    tree_allclose(result.params, before.params, rtol=1e-12)
    np.testing.assert_array_equal(result.history["loss"][:-1], before.history["loss"])


def test_divergence_with_a_huge_learning_rate(x64):
    p0, X, Y = _linear_problem()
    p0 = init_params(
        jax.random.PRNGKey(0), (2, 8, 1), activations=["relu", "identity"], dtype=jnp.float64
    )
    result = train(p0, X, Y, optimizer=sgd(1e6), epochs=50, batch_size=1)
    assert result.stop_reason == "diverged"
    assert result.diverged_at is not None and result.diverged_at <= 50
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))


# ---------------------------------------------------------------- keys, accuracy, progress
def test_same_key_same_params_different_key_different():
    X, Y = _data(n=30)
    p0 = init_params(jax.random.PRNGKey(0), (3, 4, 2))
    opt = sgd(0.5)
    a = train(p0, X, Y, optimizer=opt, epochs=5, batch_size=4, key=jax.random.PRNGKey(1))
    b = train(p0, X, Y, optimizer=opt, epochs=5, batch_size=4, key=jax.random.PRNGKey(1))
    c = train(p0, X, Y, optimizer=opt, epochs=5, batch_size=4, key=jax.random.PRNGKey(2))
    for la, lb in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(la, lb)
    assert any(
        not np.array_equal(la, lc)
        for la, lc in zip(jax.tree.leaves(a.params), jax.tree.leaves(c.params))
    )


def _two_moons(n, noise, rng):
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    X = np.stack([x, y], axis=1) + rng.normal(scale=noise, size=(n, 2))
    return X - X.mean(axis=0), upper.astype(float)[:, None]


def test_two_moons_minibatch_reaches_95_percent():
    rng = np.random.default_rng(0)
    X, Y = _two_moons(600, 0.1, rng)
    X_test, Y_test = _two_moons(400, 0.1, rng)
    p0 = init_params(
        jax.random.PRNGKey(0), (2, 16, 16, 1), "tanh", loss="binary_cross_entropy", init="glorot"
    )
    result = train(p0, X, Y, optimizer=adam(0.01), epochs=150, batch_size=32, key=3)
    acc = accuracy(result.params, X_test, Y_test)
    assert acc >= 0.95, (acc, str(result))
    assert accuracy(result.params, X_test, Y_test[:, 0].astype(int)) == acc  # labels accepted


def test_progress_chunks_equal_one_run_and_call_back_per_chunk():
    X, Y = _data(n=20)
    p0 = init_params(jax.random.PRNGKey(0), (3, 4, 2))
    opt = momentum(0.3, 0.9, variant="nesterov")
    kw = dict(optimizer=opt, epochs=25, batch_size=6, key=4, X_val=X[:5], Y_val=Y[:5])
    whole = train(p0, X, Y, **kw)
    calls = []
    chunked = train(p0, X, Y, progress=calls.append, progress_every=10, **kw)
    for la, lb in zip(jax.tree.leaves(whole.params), jax.tree.leaves(chunked.params)):
        np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(whole.history["loss"], chunked.history["loss"])
    assert [c["epoch"] for c in calls] == [10, 20, 25]
    assert [c["stop_reason"] for c in calls] == [None, None, "max_epochs"]
    assert calls[-1]["loss"] == pytest.approx(float(whole.history["loss"][-1]))
    assert calls[0]["val_loss"] is not None and calls[-1]["elapsed"] > 0


def test_progress_stops_calling_after_a_stop_rule(x64):
    p0, X, Y = _linear_problem()
    calls = []
    result = train(p0, X, Y, optimizer=sgd(0.3), epochs=500, tol=1e-4, progress=calls.append)
    assert len(calls) == -(-result.epochs_run // 50)  # default chunk: epochs // 10
    assert calls[-1]["stop_reason"] == "loss_below_tol"
    assert calls[-1]["epoch"] == result.epochs_run


def test_vmap_of_the_epoch_step_over_learning_rates_matches_separate_runs():
    """The public pieces compose: vmap(init_state) and run_epochs over a network axis."""
    X, Y = _data(n=12)
    X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    p0 = init_params(jax.random.key(0), (3, 4, 2))
    config = train_config(len(X), batch_size=4)
    rules = stop_rules(jnp.float32)
    kind = sgd(0.1).kind  # static: no values

    def init_one(lr):
        return init_state(p0, sgd(lr), config, jax.random.key(0))

    states = jax.vmap(init_one)(jnp.array([0.1, 0.5]))
    states = jax.jit(run_epochs, static_argnames=("config", "optimizer", "networks"))(
        states, (X, Y, None), None, rules, 5, config=config, optimizer=kind, networks="shared"
    )
    for i, lr in enumerate([0.1, 0.5]):
        alone = train(p0, X, Y, optimizer=sgd(lr), epochs=5, batch_size=4, key=0)
        mapped = jax.tree.map(lambda a: a[i], states)
        tree_allclose(mapped.params, alone.params, rtol=1e-5, atol=1e-7)
        assert int(mapped.epoch) == 5 and int(mapped.step) == 15
        np.testing.assert_allclose(mapped.history["loss"][:5], alone.history["loss"], rtol=1e-5)


def test_accuracy_and_evaluate():
    p = init_params(jax.random.PRNGKey(0), (2, 3))
    p = p.replace_layers(
        [p.layers[0]._replace(w=jnp.array([[1.0, 0, 0], [0, 1.0, 0]]), b=jnp.zeros(3))]
    )
    X = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [-1.0, -1.0]])
    labels = np.array([0, 1, 0, 2])  # the third is wrong; the last: argmax of (.27,.27,.5) is 2
    assert accuracy(p, X, labels) == pytest.approx(0.75)
    assert accuracy(p, X, np.eye(3)[labels]) == pytest.approx(0.75)
    res = evaluate(p, X, np.eye(3)[labels])
    assert set(res) == {"loss", "accuracy"} and res["accuracy"] == pytest.approx(0.75)
    one = init_params(jax.random.PRNGKey(0), (1, 1))
    one = one.replace_layers([one.layers[0]._replace(w=jnp.ones((1, 1)), b=jnp.zeros(1))])
    # a single sigmoid unit: output >= 0.5 iff x >= 0
    assert accuracy(
        one, np.array([[1.0], [-1.0], [2.0]]), np.array([[1.0], [0.0], [0.0]])
    ) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        accuracy(p, X, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match="labels must be whole numbers 0..2.*'0'"):
        accuracy(p, X, np.array(["0", "1", "0", "2"]))  # was NumPy's UFuncTypeError


def test_result_is_readable():
    X, Y = _data(n=8)
    p0 = init_params(jax.random.PRNGKey(0), (3, 2))
    result = train(p0, X, Y, optimizer=sgd(0.1), epochs=3)
    assert isinstance(result, TrainResult)
    text = str(result)
    assert "max_epochs" in text and "3 epoch" in text and "final loss" in text
    assert result.stop_reason in STOP_REASONS


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs must be an integer >= 1"),
        (dict(epochs=2.5), "epochs must be an integer"),
        (dict(batch_size=0), "batch_size must be an integer >= 1 or None"),
        (dict(batch_size=9), "batch_size=9 is larger than the 8 training examples"),
        (dict(optimizer="sgd"), "optimizer must be an Optimizer"),
        (dict(tol=-1.0), "tol must be a finite number >= 0"),
        (dict(n_iter_no_change=3), "pass X_val and Y_val"),
        (dict(X_val=np.zeros((2, 3))), "both X_val and Y_val"),
        (dict(X_val=np.zeros((2, 4)), Y_val=np.zeros((2, 2))), "Your data length is 4"),
        (dict(progress_every=0), "progress_every"),
        (dict(progress="yes"), "progress must be a callable"),
        (dict(loss_patience=0), "loss_patience must be an integer >= 1"),
        (dict(loss_patience=2, loss_tol=None), "loss_tol must be a finite number"),
        (dict(loss_patience=2, lr_factor=1.0), r"lr_factor must lie in \(0, 1\)"),
        (dict(lr_factor=0.5), "lr_factor acts on a plateau"),
        (dict(loss_patience=2, lr_factor=0.5, min_lr=float("nan")), "min_lr must be"),
        (dict(monitor="val_accuracy"), "is what early stopping watches"),
        (dict(monitor="accuracy"), "monitor must be one of"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, match):
    X, Y = _data(n=8)
    p0 = init_params(jax.random.PRNGKey(0), (3, 2))
    kwargs = {"optimizer": sgd(0.1), **kwargs}
    with pytest.raises(ValueError, match=match):
        train(p0, X, Y, **kwargs)


def test_cross_entropy_targets_outside_0_1_are_refused():
    X, _ = _data(n=8)
    p0 = init_params(jax.random.PRNGKey(0), (3, 2), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match="Y: cross_entropy needs targets in \\[0, 1\\]"):
        train(p0, X, -np.ones((8, 2)), optimizer=sgd(0.1))
    with pytest.raises(ValueError, match="Y_val: cross_entropy"):
        train(p0, X, np.full((8, 2), 0.5), optimizer=sgd(0.1), X_val=X, Y_val=np.full((8, 2), 2.0))


def test_bad_data_are_clear_errors():
    X, Y = _data(n=8)
    p0 = init_params(jax.random.PRNGKey(0), (3, 2))
    with pytest.raises(ValueError, match="Your data length is 2, but our input needs 3"):
        train(p0, X[:, :2], Y, optimizer=sgd(0.1))
    with pytest.raises(ValueError, match="X has 8 examples but Y has 7"):
        train(p0, X, Y[:7], optimizer=sgd(0.1))
    X_bad = X.copy()
    X_bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        train(p0, X_bad, Y, optimizer=sgd(0.1))


# ---------------------------------------------------------------- resume
def _resume_case(opt, **kw):
    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2), activations="tanh", dtype=jnp.float64)
    kw = dict(optimizer=opt, batch_size=4, key=9, X_val=X_val, Y_val=Y_val, **kw)
    whole = train(p0, X, Y, epochs=20, **kw)
    first = train(p0, X, Y, epochs=10, **kw)
    kw.pop("key")
    again = train(first.state, X, Y, epochs=10, **kw)  # from the bare state
    from_result = train(first, X, Y, epochs=10, **{k: v for k, v in kw.items() if k != "optimizer"})
    return whole, again, from_result


def _same_state(a, b):
    a, b = a._replace(history=None), b._replace(history=None)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "opt",
    [
        sgd(0.3),
        momentum(0.2, 0.9),
        momentum(0.2, 0.9, variant="nesterov"),
        momentum(0.2, 0.5, variant="article"),
        adam(step_decay(0.05, 0.5, 7)),
        sgd(inverse_scaling(0.5, 0.5), weight_decay=0.01),
    ],
    ids=["sgd", "classical", "nesterov", "article", "adam_step_decay", "sgd_invscaling_decay"],
)
def test_ten_plus_ten_epochs_equal_twenty_exactly(x64, opt):
    whole, again, from_result = _resume_case(opt)
    _same_state(whole.state, again.state)
    _same_state(whole.state, from_result.state)
    assert int(again.state.step) == 20 * 6 and int(again.state.opt_state.count) == 20 * 6
    assert again.epochs_run == 20 and again.start_epoch == 10 and len(again.history["loss"]) == 10
    np.testing.assert_array_equal(again.history["loss"], whole.history["loss"][10:])
    # resuming a TrainResult extends its history: one history for the whole run
    assert from_result.start_epoch == 0
    for name in whole.history:
        np.testing.assert_array_equal(from_result.history[name], whole.history[name])


def test_resume_carries_the_early_stopping_counters(x64):
    opt = momentum(0.5, 0.9)
    whole, again, from_result = _resume_case(opt, n_iter_no_change=50)
    _same_state(whole.state, again.state)
    assert int(whole.state.best_epoch) >= 1 and whole.best_epoch == from_result.best_epoch
    tree_allclose(whole.params, from_result.params, rtol=0)
    # a run that stopped on a rule stays stopped: resuming it changes nothing
    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2), dtype=jnp.float64)
    kw = dict(optimizer=sgd(5.0), batch_size=4, X_val=X_val, Y_val=Y_val, n_iter_no_change=2)
    stopped = train(p0, X, Y, epochs=200, **kw)
    assert stopped.stop_reason == "no_validation_improvement"
    with pytest.warns(UserWarning, match="'no_validation_improvement'.*trains no further epoch"):
        more = train(stopped, X, Y, epochs=5, **{k: v for k, v in kw.items() if k != "optimizer"})
    _same_state(stopped.state, more.state)
    assert more.stop_reason == stopped.stop_reason and more.epochs_run == stopped.epochs_run


def test_a_resume_from_a_result_watches_what_its_early_stopping_watched():
    # the best value is 1 - R^2 (or the loss, or the error rate): a resume watching another
    # compared a val_loss of 28 with a best of 0.78, never improved, stopped and returned
    # the older network
    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2))
    kw = dict(optimizer=sgd(0.1), batch_size=4, X_val=X_val, Y_val=Y_val, n_iter_no_change=3)
    first = train(p0, X, Y, epochs=3, monitor="val_r2", **kw)
    assert first.monitor == "val_r2" and "val_r2" in first.history
    with pytest.raises(ValueError, match="watched 'val_r2'.*cannot be compared with 'val_loss'"):
        train(first, X, Y, epochs=2, monitor="val_loss", **kw)
    more = train(first, X, Y, epochs=2, monitor="val_r2", **kw)  # the same: goes on
    assert more.epochs_run > first.epochs_run and more.monitor == "val_r2"
    assert train(first, X, Y, epochs=1, optimizer=sgd(0.1)).monitor is None  # no early stopping


def test_a_resume_from_a_bare_or_loaded_state_watches_what_its_early_stopping_watched(tmp_path):
    # the state itself records it (TrainState.monitor): a checkpoint's state, or result.state,
    # resumed with another monitor compared values of two kinds as the result above did
    from jbpnn.io import load, save
    from jbpnn.many import train_many

    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2))
    kw = dict(optimizer=sgd(0.1), batch_size=4, X_val=X_val, Y_val=Y_val, n_iter_no_change=3)
    first = train(p0, X, Y, epochs=3, monitor="val_accuracy", **kw)
    assert int(first.state.monitor) == 1  # MONITORS.index("val_accuracy")
    save(tmp_path / "run.npz", first.state, optimizer=sgd(0.1))
    loaded = load(tmp_path / "run.npz").state
    for state in (first.state, loaded):
        for other in ("val_loss", "val_r2"):
            with pytest.raises(ValueError, match=f"watched 'val_accuracy'.*with '{other}'"):
                train(state, X, Y, epochs=1, monitor=other, **kw)
        assert train(state, X, Y, epochs=1, monitor="val_accuracy", **kw).epochs_run == 4
    # early stopping off, then on again: a new record, of the new kind
    plain = train(first.state, X, Y, epochs=1, optimizer=sgd(0.1), batch_size=4)
    assert int(plain.state.monitor) == -1
    assert int(train(plain.state, X, Y, epochs=1, monitor="val_r2", **kw).state.monitor) == 2
    # a checkpoint written before jbpnn recorded it loads as "not recorded" and goes on
    with np.load(tmp_path / "run.npz") as f:
        entries = {k: f[k] for k in f.files if k != "state/monitor"}
    np.savez(tmp_path / "older.npz", **entries)
    older = load(tmp_path / "older.npz").state
    assert int(older.monitor) == -1
    assert train(older, X, Y, epochs=1, monitor="val_loss", **kw).epochs_run == 4
    # a damaged entry is named
    entries["state/monitor"] = np.int32(7)
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="state/monitor holds 7"):
        load(tmp_path / "bad.npz")
    # many networks: the record per network
    stacked = jax.tree.map(lambda a: jnp.stack([a, a + 0.1]), p0)
    many = train_many(stacked, X, Y, epochs=2, monitor="val_r2", **kw)
    assert np.asarray(many.state.monitor).tolist() == [2, 2]


def test_a_train_state_pickled_before_it_recorded_its_monitor_unpickles():
    # unpickling calls TrainState(*fields): one written before the field existed has one
    # field fewer; it unpickles as "not recorded" (-1) and goes on
    import pickle

    from jbpnn.state import TrainState

    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    kw = dict(optimizer=sgd(0.1), batch_size=4, X_val=X_val, Y_val=Y_val, n_iter_no_change=3)
    state = train(init_params(jax.random.key(3), (3, 5, 2)), X, Y, epochs=2, **kw).state
    assert int(pickle.loads(pickle.dumps(state)).monitor) == 0  # val_loss, kept
    older = TrainState(*state[: len(TrainState._fields) - 1])
    assert older.history is state.history and int(np.asarray(older.monitor)) == -1
    assert train(older, X, Y, epochs=1, monitor="val_accuracy", **kw).epochs_run == 3
    # a TrainResult pickled then (its monitor recorded, its state's not) is still checked
    import dataclasses

    result = train(
        init_params(jax.random.key(3), (3, 5, 2)), X, Y, epochs=2, monitor="val_r2", **kw
    )
    old_result = dataclasses.replace(result, state=TrainState(*result.state[:-1]))
    with pytest.raises(ValueError, match="watched 'val_r2'.*cannot be compared with 'val_loss'"):
        train(old_result, X, Y, epochs=1, monitor="val_loss", **kw)
    assert train(old_result, X, Y, epochs=1, monitor="val_r2", **kw).epochs_run == 3


def test_a_resumed_history_keeps_its_keys_aligned_epoch_by_epoch():
    # a resume without the validation set dropped the earlier val_loss entries, and one
    # with lr_factor only for a part made lr_scale shorter than loss (DataFrame refused it)
    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2))
    kw = dict(optimizer=sgd(0.1), batch_size=4)
    first = train(p0, X, Y, epochs=3, X_val=X_val, Y_val=Y_val, **kw)
    second = train(first, X, Y, epochs=2, loss_patience=1, loss_tol=10.0, lr_factor=0.5,
                   min_lr=0.0, **kw)  # fmt: skip
    third = train(second, X, Y, epochs=2, X_val=X_val, Y_val=Y_val, **kw)
    h = third.history
    assert {len(v) for v in h.values()} == {7} and set(h) >= {"val_loss", "lr_scale"}
    np.testing.assert_array_equal(h["val_loss"][:3], first.history["val_loss"])
    assert np.isnan(h["val_loss"][3:5]).all() and np.isfinite(h["val_loss"][5:]).all()
    assert np.isnan(h["lr_scale"][[0, 1, 2, 5, 6]]).all() and h["lr_scale"][4] < 1


def test_resume_refuses_another_kind_of_optimizer_and_a_second_key():
    X, Y = _data(n=8)
    first = train(init_params(0, (3, 2)), X, Y, optimizer=momentum(0.1), epochs=2)
    with pytest.raises(ValueError, match="another kind of optimizer"):
        train(first.state, X, Y, optimizer=adam(0.1), epochs=2)
    with pytest.raises(ValueError, match="carries its own data-order key"):
        train(first.state, X, Y, optimizer=momentum(0.1), epochs=2, key=3)
    with pytest.raises(ValueError, match="optimizer is missing"):
        train(first.state, X, Y, epochs=2)


def test_resume_with_new_hyperparameter_values_uses_them(x64):
    X, Y = _data(n=8)
    p0 = init_params(jax.random.key(0), (3, 2), dtype=jnp.float64)
    first = train(p0, X, Y, optimizer=sgd(0.1), epochs=1)
    slow = train(first.state, X, Y, optimizer=sgd(0.1), epochs=1)
    fast = train(first.state, X, Y, optimizer=sgd(0.4), epochs=1)
    assert float(fast.state.opt_state.hyperparams["lr"]) == 0.4
    step_slow = slow.params.layers[0].w - first.params.layers[0].w
    step_fast = fast.params.layers[0].w - first.params.layers[0].w
    np.testing.assert_allclose(step_fast, 4 * step_slow, rtol=1e-12)


def test_resume_hands_new_hyperparameters_to_the_compiled_call_as_host_values():
    # A resume (every partial_fit) copies the optimizer's new values with the compiled
    # call's arguments (about 0.2 us each), not with a jax.device_put each (about 20 us).
    from jbpnn.state import resume_state, train_config

    X, Y = _data(n=8)
    first = train(init_params(0, (3, 2)), X, Y, optimizer=adam(1e-3), epochs=1)
    optimizer = adam(2e-3)
    state = resume_state(first.state, optimizer, train_config(len(X), optimizer=optimizer))
    hp = state.opt_state.hyperparams
    assert set(hp) == set(optimizer.hyperparams)
    assert all(isinstance(v, np.ndarray) for v in hp.values())
    assert float(hp["lr"]) == pytest.approx(2e-3) and hp["lr"].dtype == np.float32


# ---------------------------------------------------------------- one program per kind
def _compilations(fn):
    """How many XLA compilations ``fn()`` triggers (deterministic: JAX's own log)."""
    import logging

    records = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Finished XLA compilation"):
                records.append(record.getMessage())

    handler = Count()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True), no_persistent_cache():
            fn()
    finally:
        logger.removeHandler(handler)
    return [r for r in records if "run_epochs" in r]


def test_new_hyperparameter_values_reuse_the_compiled_loop():
    X, Y = _data(n=24)
    X_val, Y_val = _data(n=6, seed=1)
    p0 = init_params(jax.random.key(0), (3, 4, 2))
    kw = dict(batch_size=5, X_val=X_val, Y_val=Y_val, n_iter_no_change=3, min_weight_change=1e-9)
    train(p0, X, Y, optimizer=momentum(0.1, 0.9), epochs=4, tol=0.01, **kw)  # compiles once
    X2, Y2 = _data(n=24, seed=7)  # other data values, same shapes
    p1 = init_params(jax.random.key(5), (3, 4, 2))

    def others():
        train(
            p1,
            X2,
            Y2,
            optimizer=momentum(0.37, 0.55),
            epochs=7,
            tol=0.002,
            key=4,
            validation_tol=1e-3,
            **{**kw, "n_iter_no_change": 5, "min_weight_change": 1e-7},
        )
        train(p0, X, Y, optimizer=momentum(step_decay(0.3, 0.1, 2), 0.1), epochs=3, **kw)
        train(p0, X, Y, optimizer=momentum(step_decay(0.2, 0.5, 3), 0.2), epochs=9, **kw)

    compiled = _compilations(others)
    # the step_decay schedule is a new kind (compiles once); the rest reuse programs
    assert len(compiled) == 1, compiled
    assert _compilations(others) == []
    # a new kind is a new program: another momentum variant
    assert (
        len(
            _compilations(
                lambda: train(p0, X, Y, optimizer=momentum(0.1, variant="nesterov"), epochs=2, **kw)
            )
        )
        == 1
    )


def test_new_plateau_thresholds_reuse_the_compiled_loop():
    X, Y = _data(n=27)  # shapes no other test compiles
    p0 = init_params(jax.random.key(0), (3, 7, 2))
    kw = dict(optimizer=sgd(0.1), batch_size=5)
    train(p0, X, Y, epochs=4, loss_patience=3, loss_tol=1e-3, lr_factor=0.5, **kw)

    def others():
        train(p0, X, Y, epochs=9, loss_patience=7, loss_tol=0.1, lr_factor=0.2, min_lr=1e-3, **kw)

    assert _compilations(others) == []
    # the rule switched off is another program (it is not computed at all)
    assert len(_compilations(lambda: train(p0, X, Y, epochs=2, **kw))) == 1


def test_history_buffer_does_not_grow_with_epochs():
    X, Y = _data(n=8)
    p0 = init_params(jax.random.key(0), (3, 4, 2))
    result = train(p0, X, Y, optimizer=sgd(0.1), epochs=10**8, tol=1e9)  # stops after one
    assert result.epochs_run == 1 and result.stop_reason == "loss_below_tol"
    assert result.state.history["loss"].shape == (256,)
    long = train(p0, X, Y, optimizer=sgd(0.1), epochs=600, history_chunk=64)
    assert long.state.history["loss"].shape == (64,) and long.history["loss"].shape == (600,)
    short = train(p0, X, Y, optimizer=sgd(0.1), epochs=600)
    np.testing.assert_array_equal(long.history["loss"], short.history["loss"])
    tree_allclose(long.params, short.params, rtol=0)


# ---------------------------------------------------------------- seams and weights
def test_grad_fn_seam_trains_with_autodiff_to_the_same_params(x64):
    from jbpnn.network import loss_kernel

    X, Y = _data(n=12)
    p0 = init_params(jax.random.key(2), (3, 4, 2), dtype=jnp.float64)
    kw = dict(optimizer=momentum(0.3, 0.9), epochs=5, batch_size=5, key=1)
    hand = train(p0, X, Y, **kw)
    auto = train(p0, X, Y, grad_fn=jax.value_and_grad(loss_kernel), **kw)
    tree_allclose(hand.params, auto.params, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hand.history["loss"], auto.history["loss"], rtol=1e-12)
    calls = []

    def spy(params, X, Y, sample_weight):
        calls.append(X.shape)  # traced once per compilation
        return loss_kernel(params, X, Y, sample_weight), jax.tree.map(jnp.zeros_like, params)

    frozen = train(p0, X, Y, grad_fn=spy, **kw)
    assert calls and calls[0] == (5, 3)
    tree_allclose(frozen.params, p0, rtol=0)  # zero gradients: nothing moves
    with pytest.raises(ValueError, match="grad_fn must be a function"):
        train(p0, X, Y, grad_fn="autodiff", **kw)


def test_sample_weight_equals_repeating_rows_in_full_batch(x64):
    X, Y = _data(n=6)
    p0 = init_params(jax.random.key(4), (3, 2), dtype=jnp.float64)
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0])
    weighted = train(p0, X, Y, optimizer=sgd(0.5), epochs=3, sample_weight=w)
    rows = np.repeat(np.arange(6), w.astype(int))
    repeated = train(p0, X[rows], Y[rows], optimizer=sgd(0.5), epochs=3)
    tree_allclose(weighted.params, repeated.params, rtol=1e-12)
    np.testing.assert_allclose(weighted.history["loss"], repeated.history["loss"], rtol=1e-12)
    # a mini-batch of weight 0 changes nothing (no NaN from 0/0)
    zero_first = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    r = train(
        p0,
        X,
        Y,
        optimizer=momentum(0.5),
        epochs=2,
        batch_size=2,
        shuffle=False,
        sample_weight=zero_first,
    )
    assert np.all(np.isfinite(r.history["loss"]))
    for bad in ([-1.0] * 6, [0.0] * 6, [np.nan] + [1.0] * 5):
        with pytest.raises(ValueError, match="sample_weight"):
            train(p0, X, Y, optimizer=sgd(0.5), epochs=1, sample_weight=np.array(bad))


def test_train_epoch_is_pure_and_a_stopped_state_stays():
    from jbpnn.training import epoch_batches, train_config, train_epoch

    X, Y = _data(n=8)
    X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    p0 = init_params(jax.random.key(0), (3, 2))
    config = train_config(8, batch_size=4)
    opt = momentum(0.2, 0.9)
    s0 = init_state(p0, opt, config, 0)
    batches = epoch_batches(X, Y, None, s0.key, s0.epoch, config)
    step = jax.jit(
        partial_step := (
            lambda s, b: train_epoch(
                s, b, None, stop_rules(jnp.float32), config=config, optimizer=opt.kind
            )
        )
    )
    s1 = step(s0, batches)
    s1b = step(s0, batches)
    _same_state(s1, s1b)
    assert int(s1.epoch) == 1 and int(s1.step) == 2
    stopped = s1._replace(stop=jnp.int32(1))
    _same_state(step(stopped, batches), stopped)
    assert callable(partial_step)


def _swap_carry_epoch(opt, dtype=jnp.float64):
    """``(s0, epoch)``: a state of a 4-4-4 network (square w: a transposition goes unnoticed
    by the shapes) and ``epoch(swap)``, one jitted ``train_epoch`` with ``swap_carry=swap``,
    or with ``jaxpr=True`` its jaxpr."""
    from jbpnn.training import epoch_batches, train_config, train_epoch

    rng = np.random.default_rng(3)
    X, Y = rng.uniform(-1, 1, (12, 4)), rng.uniform(0, 1, (12, 4))
    p0 = init_params(jax.random.key(1), (4, 4, 4), "tanh", "mse", dtype=dtype)
    config = train_config(12, batch_size=4)
    s0 = init_state(p0, opt, config, 0)
    batches = epoch_batches(jnp.asarray(X), jnp.asarray(Y), None, s0.key, s0.epoch, config)

    def epoch(swap, jaxpr=False):
        rules = stop_rules(dtype)

        def one(s, b):
            return train_epoch(
                s, b, None, rules, config=config, optimizer=opt.kind, swap_carry=swap
            )

        return jax.make_jaxpr(one)(s0, batches) if jaxpr else jax.jit(one)(s0, batches)

    return s0, epoch


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: momentum(0.2, 0.9),
        lambda: adam(0.05),
        lambda: adam(0.05, alpha=0.1, variant="efficient"),  # scikit-learn's: w only
        lambda: sgd(0.1, weight_decay=0.05),
        lambda: momentum(0.2, 0.9, "nesterov", weight_decay=0.05),
    ],
)
def test_train_epoch_with_the_weights_carried_transposed_is_the_same_epoch(x64, make_opt):
    """swap_carry (train_many's shared batches) only relays the weights out inside the
    batch loop: every w of the params and the optimizer's state comes back as it would,
    for the rules that update the swapped carry as it lies (their penalties included)."""
    opt = make_opt()
    s0, epoch = _swap_carry_epoch(opt)
    p0 = s0.params

    plain, swapped = epoch(False), epoch(True)
    assert jax.tree.structure(plain) == jax.tree.structure(swapped)
    key_data = jax.random.key_data
    tree_allclose(
        swapped._replace(key=key_data(swapped.key)),
        plain._replace(key=key_data(plain.key)),
        rtol=1e-13,
        atol=1e-15,
    )
    assert not np.allclose(plain.params.layers[0].w, p0.layers[0].w)  # it trained


def test_a_swapped_carry_transposes_no_optimizer_state():
    """With swap_carry, sgd, momentum and adam update the swapped weights as they lie:
    the batch loop transposes the params (for the gradient) and the gradient (back to the
    carry), never the moments. Swapping adam's two moments to the params' layout and back
    around every update made XLA transpose them on every update (64 digits networks:
    73-80 against 43-47 ms an epoch)."""

    def transposes(opt) -> int:  # in the batch loop (the scan), not around it
        def count(jp, in_loop: bool) -> int:
            return sum(
                (in_loop and e.primitive.name == "transpose")
                + sum(
                    count(getattr(sub, "jaxpr", sub), in_loop or e.primitive.name == "scan")
                    for sub in _subjaxprs(e)
                )
                for e in jp.eqns
            )

        return count(_swap_carry_epoch(opt, jnp.float32)[1](True, jaxpr=True).jaxpr, False)

    plain = transposes(sgd(0.1))
    assert plain > 0  # the params' and the gradient's: the relayout is there
    assert transposes(momentum(0.2, 0.9)) == plain
    assert transposes(adam(0.05)) == plain


@pytest.mark.parametrize("swap", [False, True])
def test_the_loss_penalty_costs_the_batch_loop_no_copy_of_the_weights(swap):
    """scikit-learn's L2 term in the loss (with_loss_penalty) is |W|^2 of the params
    before each update. Measured from the params the update reads, XLA could not order
    that read before the update and copied every w on every update (80 digits networks
    of a 16 x 5 SweepSearchCV: 0.2 of the epoch); carried from the last update, it adds
    no copy to the compiled epoch."""
    import re

    from jbpnn.optimizers import with_loss_penalty
    from jbpnn.training import epoch_batches, train_config, train_epoch

    rng = np.random.default_rng(3)
    X, Y = rng.uniform(-1, 1, (12, 3)), rng.uniform(0, 1, (12, 2))
    p0 = init_params(jax.random.key(1), (3, 7, 2), "tanh", "mse")  # w: 3x7, 7x2
    config = train_config(12, batch_size=4)

    def weight_copies(opt) -> int:
        s0 = init_state(p0, opt, config, 0)
        batches = epoch_batches(
            jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32), None, s0.key, 0, config
        )
        rules = stop_rules(jnp.float32)

        def one(s, b):
            return train_epoch(
                s, b, None, rules, config=config, optimizer=opt.kind, swap_carry=swap
            )

        text = jax.jit(one).lower(s0, batches).compile().as_text()
        return len(re.findall(r"= f32\[(?:3,7|7,3|7,2|2,7)\]\{[0-9,]+\} copy\(", text))

    base = momentum(0.2, 0.9, alpha=0.1)
    with_penalty = with_loss_penalty(base, 0.1)
    assert with_penalty.reports_penalty
    assert weight_copies(with_penalty) == weight_copies(base)


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(item, "eqns") or hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item


def test_alpha_reproduces_scikit_learns_worked_example(x64):
    """scikit-learn's test_mlp.py::test_fit: one SGD step with alpha=0.1 (weights only)."""
    from jbpnn.params import MLP

    params = MLP.from_layers(
        [
            (np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), np.array([0.1, 0.1])),
            (np.array([[0.1], [0.2]]), np.array([1.0])),
        ],
        "sigmoid",
        "binary_cross_entropy",
        dtype=jnp.float64,
    )
    X, Y = np.array([[0.6, 0.8, 0.7]]), np.array([[0.0]])
    result = train(params, X, Y, optimizer=sgd(0.1, alpha=0.1), epochs=1, batch_size=1)
    (w1, b1), (w2, b2) = result.params.layers
    # the published figures, to their published 3 decimals
    np.testing.assert_allclose(
        w1, [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]], atol=5e-4
    )
    np.testing.assert_allclose(w2, [[0.04706], [0.154089]], atol=5e-4)
    np.testing.assert_allclose(b1, [0.098333, 0.09626], atol=5e-4)  # biases: no alpha
    np.testing.assert_allclose(b2, [0.9235], atol=5e-4)
    out = jax.nn.sigmoid(jax.nn.sigmoid(X @ w1 + b1) @ w2 + b2)
    np.testing.assert_allclose(out[0, 0], 0.739, atol=5e-4)
    # weight_decay, by contrast, decays the biases too
    decayed = train(params, X, Y, optimizer=sgd(0.1, weight_decay=0.1), epochs=1, batch_size=1)
    assert abs(float(decayed.params.layers[1].b[0]) - 0.9235) > 0.009


def test_a_bare_state_resume_that_keeps_no_epoch_reports_the_earlier_final_loss():
    # A resume from result.state whose call runs no epoch (the state had stopped) or whose
    # one epoch diverged: final_loss is the last epoch's before the resume, from the state's
    # ring buffer (it was NaN: the call's own history holds no kept epoch)
    X, Y = _data(40, 3, 1)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    p0 = init_params(0, [3, 4, 1])
    first = train(p0, X, Y, optimizer=sgd(0.5), epochs=300, stopping=Stopping(tol=0.05))
    assert first.stop_reason == "loss_below_tol" and np.isfinite(first.final_loss)
    with pytest.warns(UserWarning, match="a stop is final"):
        again = train(first.state, X, Y, optimizer=sgd(0.5), epochs=5)
    assert again.epochs_run == first.epochs_run and len(again.history["loss"]) == 0
    assert again.final_loss == first.final_loss
    assert f"final loss: {first.final_loss:.6g}" in again.summary()
    going = train(p0, X, Y, optimizer=sgd(0.5), epochs=3)
    blown = train(going.state, X, Y, optimizer=sgd(1e30), epochs=5)
    assert blown.stop_reason == "diverged" and blown.diverged_at == 4
    assert blown.final_loss == going.final_loss == going.history["loss"][-1]
    # the carried ring buffer changes no history: a result resume joins the two as before
    joined = train(going, X, Y, optimizer=sgd(0.5), epochs=2)
    fresh = train(p0, X, Y, optimizer=sgd(0.5), epochs=5)
    np.testing.assert_array_equal(joined.history["loss"], fresh.history["loss"])


def test_finite_blow_ups_count_as_divergence(x64):
    p0, X, Y = _linear_problem()
    # full-batch GD with too large a step on an exact linear map: |error| grows
    # geometrically, finite for hundreds of epochs
    blown = train(p0, X, Y, optimizer=sgd(3.0), epochs=500)
    assert blown.stop_reason == "diverged" and blown.diverged_at < 60
    loss = blown.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] > 1e6 * loss[0] >= loss[-2]
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(blown.params))
    # the returned params are from before the blow-up: so is the final loss, and the summary's
    assert blown.final_loss == loss[-2] and f"final loss: {loss[-2]:.6g}" in blown.summary()
    off = train(
        p0,
        X,
        Y,
        optimizer=sgd(3.0),
        epochs=blown.epochs_run,
        max_loss_growth=None,
        max_abs_param=None,
    )
    assert off.stop_reason == "max_epochs"
    # a weight past max_abs_param: the start-of-epoch params are kept
    big = train(p0, X, Y, optimizer=sgd(3.0), epochs=500, max_loss_growth=None, max_abs_param=50.0)
    assert big.stop_reason == "diverged"
    assert max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(big.params)) <= 50.0
    with pytest.raises(ValueError, match="max_abs_param must be a number > 0"):
        train(p0, X, Y, optimizer=sgd(0.1), max_abs_param=0.0)


def test_a_saturating_learning_rate_is_divergence_not_a_result():
    X, Y = _data(n=20)
    p0 = init_params(jax.random.key(0), (3, 8, 2), "sigmoid", "cross_entropy", "glorot")
    r = train(
        p0, X, Y / Y.sum(1, keepdims=True), optimizer=momentum(1e9, 0.9), epochs=10, batch_size=5
    )
    assert r.stop_reason == "diverged" and r.diverged_at < 10
    # the epoch that blew up is rolled back: every weight within the bound, finite
    assert max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(r.params)) <= 1e9


def test_divergence_reference_is_the_first_batch_loss_before_its_update(x64):
    # the reference (state.first_loss) is the loss of the run's first batch (that has
    # weight) at the starting params, or the targets' spread when larger; full batch:
    # E(start params) over the data; a run resumed keeps it
    p0, X, Y = _linear_problem()
    p0 = jax.tree.map(lambda a: 10 * a + 3, p0)  # a poor start: above the targets' spread
    spread = 0.5 * float(np.mean((Y - Y.mean(0)) ** 2))
    full = train(p0, X, Y, optimizer=sgd(0.01), epochs=3)
    start = float(loss_and_gradient(p0, X, Y)[0])
    assert start > spread
    assert float(full.state.first_loss) == pytest.approx(start, rel=1e-12)
    r = train(p0, X, Y, optimizer=sgd(0.01), epochs=3, batch_size=4, shuffle=False)
    first_batch = float(loss_and_gradient(p0, X[:4], Y[:4])[0])
    assert first_batch != pytest.approx(start)  # the batch, not the whole table
    assert float(r.state.first_loss) == pytest.approx(first_batch, rel=1e-12)
    more = train(r, X, Y, optimizer=sgd(0.01), epochs=6, batch_size=4, shuffle=False)
    assert float(more.state.first_loss) == float(r.state.first_loss)
    # a first batch of weight 0 makes no update: the next one measures the start
    w = np.ones(len(X))
    w[:4] = 0
    r = train(p0, X, Y, sample_weight=w, optimizer=sgd(0.01), epochs=1, batch_size=4, shuffle=False)
    second_batch = float(loss_and_gradient(p0, X[4:8], Y[4:8])[0])
    assert float(r.state.first_loss) == pytest.approx(second_batch, rel=1e-12)


def test_a_start_that_fits_well_is_no_hair_trigger(x64):
    # fine-tuning from an exact fit (start loss ~1e-30) with weight decay: the loss
    # rises far more than 1e6-fold, but stays far below the targets' spread, which
    # is the reference then; the rule still fires for a real blow-up
    p0, X, Y = _linear_problem()
    fitted = train(p0, X, Y, optimizer=sgd(0.3), epochs=3000, tol=1e-30).params
    start = float(loss_and_gradient(fitted, X, Y)[0])
    assert start < 1e-24
    r = train(fitted, X, Y, optimizer=sgd(0.1, weight_decay=0.01), epochs=20, batch_size=4)
    assert r.stop_reason == "max_epochs", r
    assert float(r.history["loss"][-1]) > 1e6 * start
    assert float(r.state.first_loss) == pytest.approx(0.5 * float(np.mean((Y - Y.mean(0)) ** 2)))
    blown = train(fitted, X, Y, optimizer=sgd(3.0), epochs=500, batch_size=4)
    assert blown.stop_reason == "diverged", blown


def _device_puts(monkeypatch, columns):
    """A list that gets every ``jax.device_put`` of a table of ``columns`` columns from now
    on (a full-batch run pads the rows to a bucket)."""
    seen = []
    real = jax.device_put

    def counting(x, *args, **kwargs):
        seen.extend(a for a in jax.tree.leaves(x) if np.ndim(a) == 2 and a.shape[1] == columns)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(jax, "device_put", counting)
    return seen


@pytest.mark.parametrize("batch_size", [None, 8])
def test_host_data_goes_with_the_compiled_call_and_moves_once_for_many_chunks(
    monkeypatch, batch_size
):
    # a jax.device_put costs about 20 us an array; one launch takes NumPy data as it is
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(37, 3)), rng.uniform(size=(37, 2))
    p = init_params(0, (3, 4, 2), ("tanh", "sigmoid"))
    opt = momentum(0.1, 0.9)
    kw = dict(optimizer=opt, epochs=6, batch_size=batch_size, key=0)
    on_device = train(p, jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32), **kw)
    seen = _device_puts(monkeypatch, X.shape[1])
    one = train(p, X, Y, **kw)
    assert seen == []
    chunks = train(p, X, Y, **kw, progress_every=2)  # three launches: copied once
    assert len(seen) == 1
    for run in (one, chunks):  # the same run either way
        tree_allclose(run.params, on_device.params, rtol=0)
        np.testing.assert_array_equal(run.history["loss"], on_device.history["loss"])


def test_from_layers_on_the_host_trains_as_on_the_device():
    rng = np.random.default_rng(1)
    layers = [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 1)), [0.5])]
    host = MLP.from_layers(layers, ("tanh", "identity"), "mse", dtype=np.float32, host=True)
    device = MLP.from_layers(layers, ("tanh", "identity"), "mse", dtype=np.float32)
    assert all(type(a) is np.ndarray for a in jax.tree.leaves(host))
    assert all(isinstance(a, jax.Array) for a in jax.tree.leaves(device))
    tree_allclose(host, device, rtol=0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    a = train(host, X, Y, optimizer=sgd(0.05), epochs=3, batch_size=None)
    b = train(device, X, Y, optimizer=sgd(0.05), epochs=3, batch_size=None)
    tree_allclose(a.params, b.params, rtol=0)
    with pytest.raises(ValueError, match="layer 1: b must have shape"):
        MLP.from_layers([layers[0], (layers[1][0], [1.0, 2.0])], host=True)


def test_a_resume_keeps_the_optimizers_kind():
    """train(result, optimizer=momentum(variant="nesterov")) for a classical run went on
    as Nesterov's under the same state, although a resume may change values only."""
    X, Y = _data(n=8)
    first = train(init_params(jax.random.PRNGKey(0), (3, 2)), X, Y,
                  optimizer=momentum(0.1, 0.9), epochs=2)  # fmt: skip
    assert train(first, X, Y, optimizer=momentum(0.5, 0.5), epochs=1).epochs_run == 3
    with pytest.raises(ValueError, match="may change its values, not its kind .*'nesterov'"):
        train(first, X, Y, optimizer=momentum(0.1, 0.9, variant="nesterov"), epochs=1)


def test_a_batch_of_weight_zero_moves_no_weight_and_makes_no_update():
    """A mini-batch of weight 0 changes nothing, but its NaN (0/0) update counted as an
    infinite weight change, so min_weight_change never fired (train_many with rows= of
    unequal counts, whose shorter sets end in such batches, then differed from train),
    and state.step counted it as an update."""
    from jbpnn import train
    from jbpnn.many import train_many

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    Y = rng.normal(size=(40, 1)).astype(np.float32)
    p = init_params(0, (3, 4, 1), ("tanh", "identity"))
    w = np.ones(40, np.float32)
    w[:8] = 0  # the first batch of 8: weight 0
    kw = dict(optimizer=sgd(0.01), epochs=5, batch_size=8, shuffle=False, min_weight_change=1.0)
    weighted = train(p, X, Y, sample_weight=w, **kw)
    assert weighted.stop_reason == "weight_change_below_threshold" and weighted.epochs_run == 1
    assert np.isfinite(weighted.history["max_weight_change"]).all()
    assert int(weighted.state.step) == 4  # 5 batches, one of weight 0
    many = train_many([p, p], X, Y, rows=[np.arange(40), np.arange(20)], **kw)
    alone = train(p, X[:20], Y[:20], **kw)
    assert many[1].stop_reason == alone.stop_reason == "weight_change_below_threshold"
    assert int(many[1].state.step) == int(alone.state.step) == 3
    np.testing.assert_allclose(many[1].params.layers[0].w, alone.params.layers[0].w, rtol=1e-6)


def test_a_tie_counts_as_a_gain_as_scikit_learn_counts(x64):
    """scikit-learn counts an epoch as bad only if it is MORE than tol above the best (a
    tie with tol 0 resets the count); jbpnn counted ties as bad, so a flat validation
    accuracy stopped it after n_iter_no_change epochs where MLPClassifier ran on."""
    from jbpnn import train

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    Y = rng.normal(size=(30, 1))
    p = init_params(0, (2, 3, 1), ("tanh", "identity"), dtype=jnp.float64)
    flat = sgd(0.0)  # every epoch the same loss: a tie with the best
    kw = dict(optimizer=flat, epochs=8, batch_size=None)
    assert train(p, X, Y, loss_patience=2, loss_tol=0.0, **kw).stop_reason == "max_epochs"
    val = dict(X_val=X[:10], Y_val=Y[:10], n_iter_no_change=2, validation_tol=0.0)
    assert train(p, X, Y, **val, **kw).stop_reason == "max_epochs"
    # a tie is not a gain of tol > 0: those still stop
    stalled = train(p, X, Y, loss_patience=2, loss_tol=1e-3, **kw)
    assert (stalled.stop_reason, stalled.epochs_run) == ("no_loss_improvement", 3)


def test_a_resume_without_the_plateau_rule_keeps_its_reductions(x64):
    """The plateau rule's reductions (state.lr_scale) were dropped by a resume without
    lr_factor: the updates jumped back to lr (1e4 times the reduced rate) while the state
    still reported them."""
    from jbpnn import train
    from jbpnn.optimizers import set_hyperparams

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    Y = np.sin(X[:, :1])
    p = init_params(0, (2, 3, 1), ("tanh", "identity"), dtype=jnp.float64)
    first = train(p, X, Y, optimizer=sgd(0.5), epochs=12, batch_size=None,
                  loss_patience=1, loss_tol=10.0, lr_factor=0.1, min_lr=1e-12)  # fmt: skip
    scale = float(first.state.lr_scale)
    assert scale < 1e-3  # reduced every epoch
    resumed = train(first, X, Y, epochs=3)
    assert float(resumed.state.lr_scale) == scale  # the reductions stand: lr * lr_scale
    assert float(resumed.state.opt_state.hyperparams["lr"]) == 0.5
    state = first.state._replace(
        lr_scale=jnp.ones((), jnp.float64),
        opt_state=set_hyperparams(first.state.opt_state, lr=0.5 * scale),
    )
    reference = train(state, X, Y, optimizer=sgd(0.5 * scale), epochs=3, batch_size=None)
    tree_allclose(resumed.params, reference.params, rtol=1e-12)
    # split again, each piece a bare state given the run's own optimizer (a checkpoint's
    # resume): the reductions were folded into lr by the first piece, and the second,
    # given lr 0.5 again, went back to it (params 0.2 apart, silently)
    a = train(first.state, X, Y, optimizer=sgd(0.5), epochs=1, batch_size=None)
    b = train(a.state, X, Y, optimizer=sgd(0.5), epochs=2, batch_size=None)
    tree_allclose(b.params, resumed.params, rtol=1e-12)
    assert float(b.state.lr_scale) == scale


def test_val_accuracy_is_computed_in_the_params_dtype(x64):
    """The fraction of rows right was a float32 mean (0.65000004 for 13 of 20) in a float64
    network's history; train_many's weighted path had it exact."""
    from jbpnn import train
    from jbpnn.network import predict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    Y = (X[:, :1] > 0).astype(np.float64)
    Xv = rng.normal(size=(20, 2))
    Yv = (Xv[:, :1] + Xv[:, 1:] > 0).astype(np.float64)
    p = init_params(0, (2, 3, 1), "sigmoid", "mse", dtype=jnp.float64)
    r = train(p, X, Y, optimizer=sgd(0.5), epochs=1, batch_size=None, X_val=Xv, Y_val=Yv)
    after = np.mean((np.asarray(predict(r.params, Xv)) >= 0.5) == (Yv >= 0.5))  # epoch 1's
    assert float(r.history["val_accuracy"][0]) == after  # exactly a k/20 fraction


@pytest.mark.parametrize("batch_size", [None, 16])
def test_huge_sample_weights_weigh_as_their_ratios(batch_size):
    """Weights of 1e30 (their sum far inside float32) made the epoch loss's sum of
    loss x weight overflow: inf, reported as "diverged" (full batch, where XLA also folded
    a division back behind the product). Only the ratios matter: the same run as weights 1."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    Y = 1e4 * X[:, :1]
    p = init_params(jax.random.key(0), (2, 4, 1), ("tanh", "identity"), "mse")
    runs = [
        train(p, X, Y, sample_weight=np.full(64, w), optimizer=sgd(1e-4), epochs=3,
              batch_size=batch_size, key=0)
        for w in (1.0, 1e30)
    ]  # fmt: skip
    assert [r.stop_reason for r in runs] == ["max_epochs", "max_epochs"]
    np.testing.assert_allclose(runs[1].history["loss"], runs[0].history["loss"], rtol=1e-5)


def test_targets_whose_squares_overflow_the_dtype_are_refused():
    """Targets of 1e20 in float32: the loss and evaluate reported inf, train "diverged"
    at epoch 1 (the estimators refused them already)."""
    from jbpnn import evaluate, loss

    X = np.ones((8, 2))
    Y = np.full((8, 1), 1e20)
    p = init_params(jax.random.key(0), (2, 3, 1), ("tanh", "identity"), "mse")
    for call in (
        lambda: loss(p, X, Y),
        lambda: evaluate(p, X, Y),
        lambda: train(p, X, Y, optimizer=sgd(0.1), epochs=1),
    ):
        with pytest.raises(
            ValueError, match="sum of squares .* overflows the network's dtype float32"
        ):
            call()
    # several outputs: each square fits float16, their sum (the row's error) does not
    p16 = init_params(jax.random.key(0), (2, 3, 10), ("tanh", "identity"), "mse", dtype="float16")
    with pytest.raises(
        ValueError, match=r"a row whose sum of squares .* is 1e\+05, which overflows"
    ):
        loss(p16, X, np.full((8, 10), 100.0))  # it was inf


def test_a_bare_state_keeps_the_meaning_of_its_momentum_trace():
    """train(result.state, optimizer=momentum(variant="article")) for a classical run went
    on without a word: classical and Nesterov keep v = m v - lr g (lr inside), the article's
    variant the raw change -g, so the carried trace was read as another quantity. A state
    records the variant now; the variants whose traces mean the same stay interchangeable."""
    X, Y = _data(n=8)
    p0 = init_params(jax.random.PRNGKey(0), (3, 2))
    kw = dict(epochs=1, batch_size=4)
    classical = train(p0, X, Y, optimizer=momentum(0.3, 0.9), epochs=2, batch_size=4).state
    with pytest.raises(ValueError, match=r"'classical'.*'article'"):
        train(classical, X, Y, optimizer=momentum(0.3, 0.9, variant="article"), **kw)
    article = train(p0, X, Y, optimizer=momentum(0.3, 0.9, variant="article"), **kw).state
    for other in ("classical", "nesterov"):
        with pytest.raises(ValueError, match=rf"'article'.*'{other}'"):
            train(article, X, Y, optimizer=momentum(0.3, 0.9, variant=other), **kw)
    # the same trace: classical <-> nesterov go on, and the state records the new one
    nesterov = train(classical, X, Y, optimizer=momentum(0.3, 0.9, variant="nesterov"), **kw)
    back = train(nesterov.state, X, Y, optimizer=momentum(0.3, 0.9), **kw)
    assert back.epochs_run == 4
    # adam's two variants carry the same moments (only where eps sits differs)
    first = train(p0, X, Y, optimizer=adam(0.01), **kw)
    assert train(first.state, X, Y, optimizer=adam(0.01, variant="efficient"), **kw).epochs_run == 2


def test_early_stopping_on_accuracy_refuses_a_regressions_targets():
    """monitor="val_accuracy" on signed regression targets stopped a run on the argmax
    (one output: O > 0.5) of values that are no classes, silently."""
    X, Y = _data(n=23)
    X_val, Y_val = _data(n=7, seed=5)
    p0 = init_params(jax.random.key(3), (3, 5, 2), ("tanh", "identity"))
    kw = dict(optimizer=sgd(0.1), batch_size=4, epochs=2, n_iter_no_change=3)
    signed = Y_val * 2 - 1
    with pytest.raises(ValueError, match=r"monitor='val_accuracy' .*Y_val\[0\] holds -?0\.\d+: "
                                         r"class targets lie in \[0, 1\]"):  # fmt: skip
        train(p0, X, Y, X_val=X_val, Y_val=signed, monitor="val_accuracy", **kw)
    # probabilities and the validation loss are fine
    assert train(p0, X, Y, X_val=X_val, Y_val=Y_val, monitor="val_accuracy", **kw).epochs_run
    assert train(p0, X, Y, X_val=X_val, Y_val=signed, **kw).epochs_run == 2

"""jbpnn.matlab: MATLAB's feedforwardnet workflow, names and defaults."""

from __future__ import annotations

import numpy as np
import pytest

from jbpnn.matlab import TRAIN_FCNS, dividerand, feedforwardnet, mapminmax


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 5, (n, 2))
    t = 10 + 4 * np.sin(x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return x, t


def test_mapminmax_is_matlabs_formula_and_reverses():
    x = np.array([[0.0, 5.0, 2.0], [10.0, 5.0, 4.0], [5.0, 5.0, 3.0]])
    y, s = mapminmax(x)
    # y = (ymax - ymin) (x - xmin) / (xmax - xmin) + ymin; a constant column goes to ymin
    np.testing.assert_allclose(y, [[-1, -1, -1], [1, -1, 1], [0, -1, 0]], atol=1e-7)
    np.testing.assert_allclose(s.reverse(y), x, atol=1e-5)
    y2, _ = mapminmax(x, 0.0, 1.0)
    np.testing.assert_allclose(y2[:, 0], [0, 1, 0.5])
    with pytest.raises(ValueError, match="NaN or inf"):
        mapminmax([[np.nan]])
    with pytest.raises(ValueError, match="ymin < ymax"):
        mapminmax(x, 1, -1)


def test_dividerand_is_a_random_partition_in_matlabs_ratios():
    tr, va, te = dividerand(100, seed=3)
    assert (len(tr), len(va), len(te)) == (70, 15, 15)
    assert sorted(np.concatenate([tr, va, te])) == list(range(100))
    again = dividerand(100, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(tr, dividerand(100, seed=4)[0])
    assert [len(p) for p in dividerand(10, 2, 1, 1)] == [4, 3, 3]  # normalised; 2.5 -> 3
    with pytest.raises(ValueError, match="train_ratio must be > 0"):
        dividerand(10, 0, 1, 1)
    # MATLAB's sizes: validation and test rounded half away from zero, training the rest
    # (jbpnn rounded the training share and gave the test part the rest: 5 rows 4/1/0)
    matlab = {
        2: (2, 0, 0),
        3: (3, 0, 0),
        5: (3, 1, 1),
        10: (6, 2, 2),
        30: (20, 5, 5),
        50: (34, 8, 8),
    }
    for n, sizes in matlab.items():
        assert tuple(len(p) for p in dividerand(n)) == sizes, n
    with pytest.raises(ValueError, match="leaves no training rows"):
        dividerand(4, 0.01, 0.5, 0.5)


def test_train_params_in_matlabs_units():
    """min_grad went to jbpnn unchanged, tested on |J^T e| / n: trainlm stopped at twice
    MATLAB's gradient (one output), trainbr at 2n times (sse); traingd / traingdm stepped
    k/2 of MATLAB's (E = k/2 mse) and traingdm 1/(1 - mc) of it (no (1 - mc) factor)."""
    x, t = _data()
    t2 = np.column_stack([t, -t])
    for fcn, targets, expected in (
        ("trainlm", t, lambda n, k: 1e-5 * k / 2),
        ("trainlm", t2, lambda n, k: 1e-5 * k / 2),
        ("trainbr", t, lambda n, k: 1e-5 / (2 * n)),
        ("trainrp", t2, lambda n, k: 1e-5 * k / 2),
    ):
        fit = feedforwardnet(x, targets, 4, fcn, epochs=1, min_grad=1e-5)
        n, k = len(fit.train_ind), np.shape(targets)[-1] if np.ndim(targets) > 1 else 1
        assert fit.result.optimizer.hyperparams["min_grad"] == pytest.approx(expected(n, k))
    # MATLAB's defaults, the values trainbr.m and trainlm.m declare (trainbr.m's 2012 header
    # comment says 1e-10, its parameter 1e-7: jbpnn took the comment's), trainrp's 1e-5
    default = feedforwardnet(x, t, 4, "trainbr", epochs=1)
    assert default.result.optimizer.hyperparams["min_grad"] == pytest.approx(
        1e-7 / (2 * len(default.train_ind))
    )
    default = feedforwardnet(x, t2, 4, "trainrp", epochs=1)  # was none: trainrp ran on
    assert default.result.optimizer.hyperparams["min_grad"] == pytest.approx(1e-5 * 2 / 2)
    assert (
        "min_grad" not in feedforwardnet(x, t, 4, "traingd", epochs=1).result.optimizer.hyperparams
    )
    assert feedforwardnet(x, t, 4, "traingd", epochs=1).result.optimizer.hyperparams[
        "lr"
    ] == pytest.approx(0.01 * 2)
    gdm = feedforwardnet(x, t2, 4, "traingdm", epochs=1).result.optimizer.hyperparams
    assert gdm["lr"] == pytest.approx(0.01 * (2 / 2) * (1 - 0.9)) and gdm["m"] == 0.9


def test_trainlm_fits_with_validation_stopping_in_the_targets_units():
    x, t = _data()
    net = feedforwardnet(x, t, 8, "trainlm", seed=1)
    assert net.result.optimizer.name == "lm" and net.net.activations == ("tanh", "identity")
    assert net.stop in (
        "no_validation_improvement",
        "mu_max_reached",
        "min_grad_reached",
        "max_epochs",
    )
    assert len(net.val_ind) == 18 and len(net.test_ind) == 18
    pred = net(x[net.test_ind]).ravel()
    rmse = float(np.sqrt(np.mean((pred - t[net.test_ind]) ** 2)))
    assert rmse < 0.25 * np.std(t), rmse  # in t's own units, far better than the mean
    # perf is MATLAB's mse on the mapped targets
    assert 0 < net.perf < 0.05


def test_goal_is_matlabs_mse():
    x, t = _data()
    net = feedforwardnet(x, t, 8, "trainlm", goal=0.01, max_fail=1000, seed=1)
    assert net.stop == "loss_below_tol"
    # the goal fired on the epoch loss (the params before that epoch's step), whose mse is
    # below the goal; the step taken after it only lowers it (lm accepts only descents)
    assert net.perf < 0.01


def test_unknown_train_fcn_lists_the_known_ones():
    x, t = _data(20)
    with pytest.raises(
        ValueError, match=r"unknown train_fcn 'trainscg'; expected one of \['trainlm'"
    ):
        feedforwardnet(x, t, train_fcn="trainscg")
    assert set(TRAIN_FCNS) >= {"trainlm", "trainbr", "trainrp", "traingdm", "traingd"}


def test_rows_must_match():
    x, t = _data(20)
    with pytest.raises(ValueError, match="x has 20 rows and t 19"):
        feedforwardnet(x, t[:19])


def test_maps_and_nets_refuse_data_of_another_width():
    """A 1-column x was broadcast to both inputs of a 2-input net (predictions, no error);
    NaN in t was reported as one in x; two ratios took a silent third."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 2))
    t = x[:, 0] - x[:, 1] ** 2
    net = feedforwardnet(x, t, 3, "traingd", epochs=2)
    with pytest.raises(ValueError, match=r"x must be rows of 2 column\(s\).*\(3, 1\)"):
        net(x[:3, :1])
    _, settings = mapminmax(x)
    with pytest.raises(ValueError, match=r"y must be rows of 2 column"):
        settings.reverse(np.zeros((3, 1)))
    bad = t.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="mapminmax: t holds NaN"):
        feedforwardnet(x, bad, 3, "traingd", epochs=2)
    with pytest.raises(ValueError, match="three numbers"):
        feedforwardnet(x, t, 3, "traingd", epochs=2, ratios=(0.7, 0.15))


@pytest.mark.parametrize("ymin, ymax", [(0.0, np.inf), (-np.inf, 1.0), (0.0, np.nan)])
def test_mapminmax_refuses_non_finite_limits(ymin, ymax):
    """ymax=inf passed `ymin < ymax` and mapped [1, 2, 3] to [nan, inf, inf]."""
    with pytest.raises(ValueError, match="finite ymin < ymax"):
        mapminmax(np.array([[1.0], [2.0], [3.0]]), ymin, ymax)


def test_mapminmax_refuses_an_overflowing_range_and_bad_input():
    with pytest.raises(ValueError, match="column 0 of x spans from -1e\\+308 to 1e\\+308"):
        mapminmax(np.array([[-1e308], [0.0], [1e308]]))  # was [-1, -1, nan]
    with pytest.raises(ValueError, match="must be real numbers"):
        mapminmax(np.array([[1 + 5j], [2 + 0j]]))  # the imaginary part was dropped
    _, settings = mapminmax(np.array([[1.0], [3.0]]))
    with pytest.raises(ValueError, match="holds NaN or inf"):
        settings.apply(np.array([[np.nan]]))  # passed NaN through


def test_preset_arguments_are_named():
    x = np.linspace(-1, 1, 20)[:, None]
    with pytest.raises(ValueError, match="seed"):
        dividerand(10, seed=-1)  # "expected non-negative integer" from NumPy
    with pytest.raises(ValueError, match="seed"):
        feedforwardnet(x, x[:, 0], 3, seed=-1, epochs=1)
    with pytest.raises(ValueError, match="hidden must be a layer size"):
        feedforwardnet(x, x[:, 0], 2.5, epochs=1)  # "'float' object is not iterable"
    with pytest.raises(ValueError, match="hidden must be a layer size"):
        feedforwardnet(x, x[:, 0], [3, 0], epochs=1)


def test_validation_stopping_counts_the_initial_net_as_matlab_does():
    """MATLAB's best starts as the initial net (tr.best_epoch 0): max_fail epochs none of
    which beats it stop the run ("Validation stop." at epoch max_fail) and return it.
    jbpnn's best started at the first epoch's: one epoch later, and a net 6.7x worse on
    the validation rows than the initial one was returned."""
    import jbpnn

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 1))
    t = np.sin(3 * x[:, 0])
    _, va, _ = dividerand(200, 0.7, 0.15, 0.15, seed=0)
    t[va] = -t[va]  # rows that training can only get worse on
    fit = feedforwardnet(x, t, 10, "trainlm", seed=0, max_fail=6)
    assert (fit.stop, fit.result.epochs_run, fit.best_epoch) == ("no_validation_improvement", 6, 0)
    xs, _ = mapminmax(x)
    ts, _ = mapminmax(t[:, None])
    p0 = jbpnn.init_params(0, (1, 10, 1), ("tanh", "identity"), "mse", "glorot")
    for a, b in zip(jax_leaves(fit.net), jax_leaves(p0)):
        np.testing.assert_array_equal(a, b)  # the initial net, returned
    v0 = float(np.mean((np.asarray(jbpnn.predict(p0, xs[va])) - ts[va]) ** 2))
    assert fit.vperf == pytest.approx(v0, rel=1e-6)
    assert np.all(np.asarray(fit.result.history["val_loss"]) > v0 / 2)  # none beat it (E = mse/2)


def jax_leaves(tree):
    import jax

    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def test_mapminmax_refuses_a_scale_or_values_that_overflow():
    # a subnormal span, or ymax - ymin past float64, gave NaN and inf silently; inputs
    # far outside the fitted range mapped to inf (a network then blamed "NaN in X")
    with pytest.raises(ValueError, match="column 0 spans 4.94e-324.*overflows"):
        mapminmax(np.array([[0.0], [5e-324]]))
    with pytest.raises(ValueError, match=r"\[ymin, ymax\] = \[-1e\+308, 1e\+308\].*overflows"):
        mapminmax(np.array([[0.0], [1.0]]), -1e308, 1e308)
    x = np.array([[0.0], [1e-30], [5e-31]])
    y, settings = mapminmax(x)
    np.testing.assert_allclose(settings.reverse(y), x, rtol=1e-6)
    with pytest.raises(ValueError, match="row 0, column 0 is far outside.*overflows float32"):
        settings.apply(np.array([[1e10]]))
    with pytest.raises(ValueError, match="row 1, column 0 is far outside.*overflows float64"):
        _, wide = mapminmax(np.array([[0.0], [1e300]]))
        wide.reverse(np.array([[0.0], [1e300]]))


def test_mu_and_min_grad_with_other_training_functions_are_refused_in_matlab_terms():
    """They were refused in jbpnn's terms ("optimizer 'sgd' does not take ['mu']; its
    hyperparameters are ['lr', ...]", names feedforwardnet does not take)."""
    x = np.random.default_rng(0).uniform(size=(30, 2))
    t = x.sum(axis=1)
    with pytest.raises(ValueError, match=r"^mu is trainlm's and trainbr's .* 'traingd' has no mu"):
        feedforwardnet(x, t, 3, "traingd", mu=0.1)
    with pytest.raises(ValueError, match=r"^mu is trainlm's and trainbr's .* 'trainrp' has no mu"):
        feedforwardnet(x, t, 3, "trainrp", mu=0.1, min_grad=1e-6)
    # traingd's and traingdm's min_grad exists in MATLAB (1e-5): jbpnn's sgd has no such rule
    with pytest.raises(ValueError, match=r"'traingdm': jbpnn's momentum has no min_grad stop"):
        feedforwardnet(x, t, 3, "traingdm", min_grad=1e-6)
    rp = feedforwardnet(x, t, 3, "trainrp", min_grad=1e3, epochs=50)  # a gradient stop
    assert rp.stop == "min_grad_reached" and rp.result.epochs_run == 1
    assert feedforwardnet(x, t, 3, "trainlm", mu=0.01, epochs=2).result.epochs_run == 2

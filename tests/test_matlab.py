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
    # y = (ymax - ymin) (x - xmin) / (xmax - xmin) + ymin; a constant column passes through
    np.testing.assert_allclose(y, [[-1, 5, -1], [1, 5, 1], [0, 5, 0]], atol=1e-12)
    np.testing.assert_allclose(s.reverse(y), x, atol=1e-12)
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
    # c: MATLAB's squared error per squared mapped error, (span / 2)^2 with its default
    # normalization 'none' (errors in t's units; t and -t share one span), 1 with 'standard'
    c_none = (np.ptp(t) / 2) ** 2
    for normalization, c in (("standard", 1.0), ("none", c_none)):
        for fcn, targets, expected in (
            ("trainlm", t, lambda n, k: 1e-5 * k / 2),
            ("trainlm", t2, lambda n, k: 1e-5 * k / 2),
            ("trainbr", t, lambda n, k: 1e-5 / (2 * n)),
            ("trainrp", t2, lambda n, k: 1e-5 * k / 2),
        ):
            fit = feedforwardnet(
                x, targets, 4, fcn, epochs=1, min_grad=1e-5, normalization=normalization
            )
            n, k = len(fit.train_ind), np.shape(targets)[-1] if np.ndim(targets) > 1 else 1
            assert fit.result.optimizer.hyperparams["min_grad"] == pytest.approx(
                expected(n, k) / c
            ), (normalization, fcn)
    # MATLAB's defaults, the values trainbr.m and trainlm.m declare (trainbr.m's 2012 header
    # comment says 1e-10, its parameter 1e-7: jbpnn took the comment's), trainrp's 1e-5
    default = feedforwardnet(x, t, 4, "trainbr", epochs=1)
    assert default.result.optimizer.hyperparams["min_grad"] == pytest.approx(
        1e-7 / (2 * len(default.train_ind) * c_none)
    )
    default = feedforwardnet(x, t2, 4, "trainrp", epochs=1)  # was none: trainrp ran on
    assert default.result.optimizer.hyperparams["min_grad"] == pytest.approx(1e-5 / c_none)
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
    # perf is MATLAB's mse, in t's own units (normalization 'none')
    assert 0 < net.perf < 0.05 * np.var(t)


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
    # glorot: a start whose first epoch already worsens the validation rows (initnw's
    # rands output layer starts far off, and any first step beats it)
    fit = feedforwardnet(
        x, t, 10, "trainlm", seed=0, max_fail=6, init="glorot", normalization="standard"
    )
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
    # ymax - ymin past float64 gave NaN and inf silently; inputs far outside the fitted
    # range mapped to inf (a network then blamed "NaN in X")
    with pytest.raises(ValueError, match=r"\[ymin, ymax\] = \[-1e\+308, 1e\+308\].*overflows"):
        mapminmax(np.array([[0.0], [1.0]]), -1e308, 1e308)
    # a subnormal span (gain inf: above MATLAB's 1e14) passes through, as in MATLAB:
    # y = (x - ymin) 1 + ymin, which rounds 5e-324 to 0 (as MATLAB's arithmetic does)
    y, settings = mapminmax(np.array([[0.0], [5e-324]]))
    assert settings.passed.tolist() == [True] and y.ravel().tolist() == [0.0, 0.0]
    x = np.array([[0.0], [1e-12], [5e-13]])
    y, settings = mapminmax(x)
    np.testing.assert_allclose(settings.reverse(y), x, rtol=1e-12)
    with pytest.raises(ValueError, match="row 0, column 0 is far outside.*overflows float64"):
        settings.apply(np.array([[1e300]]))
    with pytest.raises(ValueError, match="row 1, column 0 is far outside.*overflows float64"):
        _, wide = mapminmax(np.array([[0.0], [1e300]]))
        wide.reverse(np.array([[0.0], [1e300]]))
    # a network's float32 inputs: feedforwardnet's net(x) refuses what overflows them
    xf = np.linspace(0, 1e-6, 30)[:, None]
    fit = feedforwardnet(xf, np.sin(xf[:, 0] * 1e6), 3, "traingd", epochs=1)
    with pytest.raises(ValueError, match="row 0, column 0 is far outside.*overflows float32"):
        fit(np.array([[1e36]]))


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


def _initnw_reference(seed, sizes, activations):
    """MATLAB's initnw.m / calcnw, written from its formulas in MATLAB's S x R layout, on
    NumPy's generator in initnw's order (per layer: weights, then the rands biases)."""
    rng = np.random.default_rng(seed)
    active = {"tanh": (-2.0, 2.0), "sigmoid": (-4.0, 4.0)}
    out_range = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
    lo, hi = -1.0, 1.0
    layers = []
    for r, s, act in zip(sizes[:-1], sizes[1:], activations):
        if act == "identity":  # rands
            w = 2 * rng.random((s, r)) - 1
            b = 2 * rng.random(s) - 1
        else:
            w_mag = 0.7 * s ** (1 / r)
            w_dir = 2 * rng.random((s, r)) - 1  # randnr.m: normr(rands(s, r))
            w_dir = w_dir / np.linalg.norm(w_dir, axis=1)[:, None]
            w = w_mag * w_dir
            b = 0 * w[:, 0] if s == 1 else w_mag * np.linspace(-1, 1, s) * np.sign(w[:, 0])
            amin, amax = active[act]
            w, b = (amax - amin) / 2 * w, (amax - amin) / 2 * b + (amax + amin) / 2
            xr = 2 / (hi - lo) * np.ones(r)  # calcnw: inputs of [lo, hi] to [-1, 1]
            yr = 1 - hi * xr
            b = w @ yr + b  # calcnw.m's order: b = w*y+b; w = w.*xp(ones(1,s),:)
            w = w @ np.diag(xr)
            lo, hi = out_range[act]
        layers.append((w.T, b))  # jbpnn's (R, S) layout
    return layers


@pytest.mark.parametrize(
    "sizes, activations",
    [((3, 7, 2), ("tanh", "identity")), ((2, 1, 4, 1), ("sigmoid", "tanh", "identity"))],
)
def test_initnw_is_matlabs_nguyen_widrow(sizes, activations):
    """feedforwardnet drew glorot weights and zero biases, not MATLAB's initnw."""
    from jbpnn.matlab import initnw

    net = initnw(5, sizes, activations)
    assert net.sizes == sizes and net.activations == activations and net.dtype == np.float32
    for (w, b), (rw, rb) in zip(net.layers, _initnw_reference(5, sizes, activations)):
        np.testing.assert_allclose(np.asarray(w), rw, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(b), rb, rtol=1e-6, atol=1e-6)
    w0 = np.asarray(net.layers[0].w)
    # tanh units with R inputs: |w| = 2 * 0.7 S^(1/R) per unit, the biases spread over it
    if activations[0] == "tanh":
        norms = np.linalg.norm(w0, axis=0)
        np.testing.assert_allclose(norms, 2 * 0.7 * sizes[1] ** (1 / sizes[0]), rtol=1e-6)
    with pytest.raises(ValueError, match="layer 0's activation 'relu' has no rule"):
        initnw(0, (2, 3, 1), ("relu", "identity"))


def test_feedforwardnet_starts_from_initnw():
    """The default init is initnw; init='glorot' keeps jbpnn's glorot start."""
    from jbpnn.matlab import initnw

    x = np.linspace(-1, 1, 40)[:, None]
    t = x[:, 0] ** 2
    _, va, _ = dividerand(40, seed=2)
    t[va] = -t[va] + 5  # validation rows no step helps: the initial net is returned
    fit = feedforwardnet(x, t, 4, "trainlm", seed=2, max_fail=1)
    assert (fit.best_epoch, fit.result.epochs_run) == (0, 1)
    for a, b in zip(jax_leaves(fit.net), jax_leaves(initnw(2, (1, 4, 1)))):
        np.testing.assert_array_equal(a, b)  # the returned initial net: initnw's
    glorot = feedforwardnet(x, t, 4, "trainlm", seed=2, epochs=1, init="glorot")
    assert glorot.net.sizes == (1, 4, 1)
    with pytest.raises(ValueError, match="init must be 'initnw'"):
        feedforwardnet(x, t, 4, init="nw")


def test_trainbr_fits_matlabs_documentation_example():
    """MATLAB's trainbr example, x = -1:0.05:1; t = sin(2*pi*x) + 0.1*randn(size(x));
    feedforwardnet(20, 'trainbr'): from glorot weights jbpnn's trainbr collapsed to a
    constant network for every seed (gamma 0-1 of 61, mse against the sine 0.488, its
    variance); from initnw's it fits (mse 0.002-0.003 against the noiseless sine, gamma
    12-16, seeds 0-4)."""
    rng = np.random.default_rng(0)
    x = np.arange(-1, 1.0001, 0.05)[:, None]
    f = np.sin(2 * np.pi * x[:, 0])
    t = f + 0.1 * rng.normal(size=len(x))
    for seed in range(3):
        fit = feedforwardnet(x, t, 20, "trainbr", seed=seed)
        err = float(np.mean((fit(x)[:, 0] - f) ** 2))
        gamma = float(fit.result.history["gamma"][-1])
        assert err < 0.02, (seed, err, gamma)  # var(sin) is 0.488
        assert gamma > 5, (seed, err, gamma)


def test_perf_and_goal_are_in_the_targets_units():
    """MATLAB's mse has normalization 'none': goal and perf in t's own units. jbpnn took
    goal on the mapped targets: on targets spanning 0-100, goal=1.5 (MATLAB's mse, about
    the noise) stopped after 1 epoch with a real mse of 948, and perf said 0.38."""
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 300)[:, None]
    t = 50 + 50 * np.sin(2 * x[:, 0]) + rng.normal(size=300)
    fit = feedforwardnet(x, t, 10, "trainlm", goal=1.5, seed=1)
    e = fit(x)[:, 0] - t
    real = float(np.mean(e[fit.train_ind] ** 2))
    assert fit.stop == "loss_below_tol" and fit.result.epochs_run > 1, (fit.result.epochs_run, real)
    assert real < 1.5, real  # in t's units
    for rows, perf in ((fit.train_ind, fit.perf), (fit.val_ind, fit.vperf)):
        assert perf == pytest.approx(np.mean(e[rows] ** 2), rel=1e-12)
    assert fit.tperf == pytest.approx(np.mean(e[fit.test_ind] ** 2), rel=1e-12)
    assert fit.normalization == "none"
    # "standard": the mse of outputs and targets mapped to [-1, 1]
    std = feedforwardnet(x, t, 10, "trainlm", seed=1, epochs=5, normalization="standard")
    ys, ts = std.target_map.apply(std(x)), std.target_map.apply(t[:, None])
    assert std.perf == pytest.approx(np.mean((ys - ts)[std.train_ind] ** 2), rel=1e-9)
    with pytest.raises(ValueError, match="normalization must be one of"):
        feedforwardnet(x, t, 3, normalization="percent")


def test_goal_and_min_grad_with_outputs_of_different_spans_are_refused():
    """MATLAB's 'none' mse weighs each target column by its span^2, jbpnn's loss the
    mapped columns equally: no tolerance on jbpnn's loss is MATLAB's goal there."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 2))
    t = np.column_stack([x[:, 0], 100 * x[:, 1]])
    with pytest.raises(ValueError, match="goal with normalization='none'.*span.*'standard'"):
        feedforwardnet(x, t, 3, goal=0.1)
    with pytest.raises(ValueError, match="min_grad with normalization='none'.*'standard'"):
        feedforwardnet(x, t, 3, min_grad=1e-6)
    fit = feedforwardnet(x, t, 3, epochs=2)  # the default min_grad: as 'standard'
    assert fit.result.optimizer.hyperparams["min_grad"] == pytest.approx(1e-7 * 2 / 2)
    e = fit(x) - t
    assert fit.perf == pytest.approx(np.mean(e[fit.train_ind] ** 2), rel=1e-12)
    std = feedforwardnet(x, t, 3, goal=0.1, normalization="standard", epochs=2)
    assert std.normalization == "standard"


def test_matlabs_layout_is_refused():
    """MATLAB's simplefit_dataset is 1 x 94: passed untransposed, a 94-10-94 network
    trained on one example and reported a perfect fit."""
    x = np.linspace(0, 10, 94)[None, :]
    t = 3 * np.sin(x) + 5
    with pytest.raises(ValueError, match=r"x has shape \(1, 94\) and t \(1, 94\).*x\.T and t\.T"):
        feedforwardnet(x, t, 10)
    with pytest.raises(ValueError, match=r"x has shape \(2, 94\).*MATLAB's layout"):
        feedforwardnet(np.vstack([x, x**2]), t, 10)
    with pytest.raises(ValueError, match=r"x has 1 rows and t 94.*pass x\.T"):
        feedforwardnet(x, t.ravel(), 10)
    assert feedforwardnet(x.T, t.T, 3, epochs=2).net.sizes == (1, 3, 1)


def test_mapminmax_passes_constant_columns_through_in_float64():
    """A constant column mapped to ymin (a new 7 in a constant-5 column came back as 3);
    apply cast to float32 (123456789.123 in a column spanning 1e9 came back 13 off)."""
    y, s = mapminmax(np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]))
    assert y.dtype == np.float64 and y[:, 1].tolist() == [5.0, 5.0, 5.0]
    assert s.apply(np.array([[2.0, 7.0]]))[0, 1] == 7.0
    assert s.reverse(np.array([[0.0, 7.0]]))[0, 1] == 7.0
    x = np.array([[0.0], [1e9], [123456789.123]])
    y, s = mapminmax(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(s.reverse(y), x, rtol=0, atol=1e-6)
    # a gain above 1e14 (mapminmax.m's limit) passes through too
    tiny = np.array([[1.0], [1.0 + 4e-15]])
    assert mapminmax(tiny)[0].ravel().tolist() == tiny.ravel().tolist()
    # MATLAB's documentation example, rows as MATLAB's variables: x1.T in, y.T out
    x1 = np.array([[1, 2, 4], [1, 1, 1], [3, 2, 2], [0, 0, 0]], float)
    np.testing.assert_allclose(
        mapminmax(x1.T)[0].T, [[-1, -1 / 3, 1], [1, 1, 1], [1, -1, -1], [0, 0, 0]], atol=1e-12
    )


def test_constant_columns_are_removed_as_matlabs_removeconstantrows():
    """A constant input column of 1e6 went to the network as -1 (MATLAB removes it); a
    constant target column was fitted (MATLAB predicts its constant); all-constant
    targets trained a network on nothing."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (150, 1))
    t = np.sin(2 * x[:, 0])
    plain = feedforwardnet(x, t, 5, seed=3)
    wide_x = np.column_stack([x, np.full(150, 1e6)])
    fit = feedforwardnet(wide_x, np.column_stack([t, np.full(150, 7.0)]), 5, seed=3)
    assert fit.net.sizes == (1, 5, 1), fit.net.sizes
    assert fit.input_cols.tolist() == [0] and fit.target_cols.tolist() == [0]
    for a, b in zip(jax_leaves(fit.net), jax_leaves(plain.net)):
        np.testing.assert_array_equal(a, b)  # the same network as without the columns
    y = fit(np.array([[0.3, 5.0], [1.0, 1e6]]))
    assert y.shape == (2, 2) and y[:, 1].tolist() == [7.0, 7.0]
    np.testing.assert_allclose(y[:, 0], plain(np.array([[0.3], [1.0]]))[:, 0])
    assert fit.perf == pytest.approx(plain.perf / 2)  # MATLAB's mse: over both columns
    with pytest.raises(ValueError, match=r"every column of t is constant \(\[7\.0\]\)"):
        feedforwardnet(x, np.full(150, 7.0), 5)
    with pytest.raises(ValueError, match="every column of x is constant"):
        feedforwardnet(np.ones((150, 2)), t, 5)


def test_dtype_float64_trains_in_double(x64):
    """MATLAB trains in double; feedforwardnet had no dtype and trained in float32, where
    trainlm stops near an mse of 1e-9 of the mapped targets."""
    x = np.linspace(-3, 3, 200)[:, None]
    t = np.sin(2 * x[:, 0])
    kw = dict(seed=0, ratios=(1, 0, 0), normalization="standard")
    f32 = feedforwardnet(x, t, 10, **kw)
    f64 = feedforwardnet(x, t, 10, dtype="float64", **kw)
    assert f32.net.dtype == np.float32 and f64.net.dtype == np.float64
    assert f64.perf < f32.perf / 4, (f64.perf, f32.perf)
    with pytest.raises(ValueError, match="dtype must be None, 'float32' or 'float64'"):
        feedforwardnet(x, t, 3, dtype="float16")


def test_dtype_float64_needs_64_bit_jax():
    import jax

    if jax.config.read("jax_enable_x64"):
        pytest.skip("64-bit JAX is on in this process")
    x = np.linspace(-1, 1, 20)[:, None]
    with pytest.raises(ValueError, match="float64 needs 64-bit JAX.*jax_enable_x64"):
        feedforwardnet(x, x[:, 0], 3, dtype="float64")


def test_history_is_one_epoch_apart_from_matlabs_tr():
    """Documented alignment: history["loss"][i] is mse/2 of the network at the start of
    epoch i + 1, history["val_loss"][i] of the network after epoch i + 1 (mapped)."""
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 200)[:, None]
    t = np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=200)
    fit = feedforwardnet(x, t, 10, "trainlm", seed=1, normalization="standard")
    b = fit.best_epoch
    assert 0 < b < fit.result.epochs_run
    loss, val = np.asarray(fit.result.history["loss"]), np.asarray(fit.result.history["val_loss"])
    assert 2 * loss[b] == pytest.approx(fit.perf, rel=1e-4)
    assert 2 * val[b - 1] == pytest.approx(fit.vperf, rel=1e-4)

"""jbpnn.sklearn: scikit-learn's own estimator checks, its worked example, and the sweep.

- ``parametrize_with_checks`` runs every check of scikit-learn's suite on both
  estimators; the checks they fail are declared with their reasons
  (``jbpnn.sklearn.EXPECTED_FAILED_CHECKS``), as scikit-learn's own estimators do.
  With ``solver="lbfgs"``, the checks that train.
- ``test_mlp.py::test_fit``'s one SGD step with ``alpha=0.1`` through the estimator.
- The estimators are ``jbpnn.train`` with the documented mapping, exactly.
- ``SweepSearchCV`` equals ``GridSearchCV`` with the same folds, in ONE ``train_many``
  call per group of static settings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("sklearn")

from numpy.testing import assert_allclose, assert_almost_equal, assert_array_equal  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    estimator_checks_generator,
    parametrize_with_checks,
)

import jbpnn  # noqa: E402
from jbpnn.sklearn import (  # noqa: E402
    EXPECTED_FAILED_CHECKS,
    BPNNClassifier,
    BPNNRegressor,
    SweepSearchCV,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    d = jbpnn.load_digits()
    return d.X[:300], d.y[:300]


# ---------------------------------------------------------------- scikit-learn's own checks
@parametrize_with_checks(
    [BPNNClassifier(max_iter=50), BPNNRegressor(max_iter=50)],  # max_iter as scikit-learn's own
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# solver="lbfgs": the checks that train (the input checks before training do not depend on
# the solver). Every check of the suite passes with lbfgs too (measured: 117 passed, the 2
# declared float32 failures; 160 s on one core, which is why the suite runs these only).
_LBFGS_CHECKS = {
    "check_classifiers_classes",
    "check_classifiers_one_label_sample_weights",
    "check_classifiers_train",
    "check_estimators_dtypes",
    "check_estimators_partial_fit_n_features",
    "check_estimators_pickle",
    "check_fit2d_1sample",
    "check_fit_idempotent",
    "check_non_transformer_estimators_n_iter",
    "check_regressors_int",
    "check_regressors_train",
    "check_supervised_y_2d",
}


def _lbfgs_checks():
    for est in (
        BPNNClassifier(solver="lbfgs", max_iter=50),
        BPNNRegressor(solver="lbfgs", max_iter=50),
        BPNNRegressor(solver="lm", max_iter=20, hidden_layer_sizes=(10,)),  # Levenberg-Marquardt
    ):
        for item in estimator_checks_generator(est, mark="xfail"):
            estimator, check = getattr(item, "values", item)
            name = check.func.__name__
            if name in _LBFGS_CHECKS:
                tag = f"{type(est).__name__}-{est.solver}-{name}"
                yield pytest.param(estimator, check, id=tag)


@pytest.mark.parametrize("estimator, check", list(_lbfgs_checks()))
def test_scikit_learn_estimator_checks_with_lbfgs(estimator, check):
    check(estimator)


def test_every_declared_failure_has_a_reason_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From scikit-learn") :]
    section = section[: section.index("\n## ", 1)]
    for name, failures in EXPECTED_FAILED_CHECKS.items():
        assert name in ("BPNNClassifier", "BPNNRegressor")
        for check, reason in failures.items():
            assert reason and check in section, (name, check)


# ---------------------------------------------------------------- scikit-learn's worked example
_INIT = [
    (np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), np.array([0.1, 0.1])),
    (np.array([[0.1], [0.2]]), np.array([1.0])),
]


def test_alpha_reproduces_scikit_learns_worked_example():
    """test_mlp.py::test_fit: the same initial weights, one SGD step, the published numbers."""
    X, y = np.array([[0.6, 0.8, 0.7]]), np.array([0])
    kw = dict(
        solver="sgd",
        learning_rate_init=0.1,
        alpha=0.1,
        activation="logistic",
        random_state=1,
        max_iter=1,
        hidden_layer_sizes=2,
        momentum=0,
        init=_INIT,  # the initial params, in coefs_ layout
    )
    mlp = BPNNClassifier(**kw).partial_fit(X, y, classes=[0, 1])  # as the test does
    assert mlp.out_activation_ == "logistic" and mlp.n_outputs_ == 1
    assert_almost_equal(
        mlp.coefs_[0],
        np.array([[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]]),
        decimal=3,
    )
    assert_almost_equal(mlp.coefs_[1], np.array([[0.04706], [0.154089]]), decimal=3)
    assert_almost_equal(mlp.intercepts_[0], np.array([0.098333, 0.09626]), decimal=3)
    assert_almost_equal(mlp.intercepts_[1], np.array([0.9235]), decimal=3)
    assert_almost_equal(mlp.predict_proba(X)[0, 1], 0.739, decimal=3)


def test_worked_example_equals_scikit_learns_own_step():
    """Beyond the published 3 decimals: MLPClassifier's own partial_fit from the same weights."""
    X, y = np.array([[0.6, 0.8, 0.7]]), np.array([0])
    kw = dict(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic")
    kw.update(random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0)
    ours = BPNNClassifier(**kw, init=_INIT).partial_fit(X, y, classes=[0, 1])
    theirs = MLPClassifier(**kw).partial_fit(X, y, classes=[0, 1])  # initialises, then:
    theirs.coefs_ = [w.copy() for w, _ in _INIT]
    theirs.intercepts_ = [b.copy() for _, b in _INIT]
    del theirs._optimizer  # a fresh optimizer for the given weights, as test_fit sets up
    theirs.partial_fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)


# ---------------------------------------------------------------- the mapping onto the core
def test_regressor_is_train_with_the_documented_mapping(digits):
    """sgd + invscaling + alpha, two outputs: exactly jbpnn.train; loss_curve_ averages outputs."""
    X, _ = digits
    Y = np.c_[X[:, 20], X[:, 40]]
    est = BPNNRegressor(
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.05,
        power_t=0.25,
        momentum=0.5,
        nesterovs_momentum=False,
        alpha=1e-3,
        batch_size=16,
        max_iter=7,
        random_state=3,
    ).fit(X, Y)
    init_seed, order_seed = np.random.RandomState(3).randint(0, 2**31 - 1, size=2)
    params = jbpnn.init_params(
        jax.random.key(int(init_seed)), (64, 8, 2), ("tanh", "identity"), "mse", "glorot"
    )
    # scikit-learn's invscaling: t the samples seen before the epoch (300 rows, 19 batches)
    rate = jbpnn.optimizers.epoch_inverse_scaling(0.05, 0.25, len(X), -(-len(X) // 16))
    opt = jbpnn.momentum(rate, 0.5, "classical", alpha=1e-3)
    # the loss curve carries scikit-learn's alpha term (alpha * 2 outputs in the core's units)
    opt = jbpnn.optimizers.with_loss_penalty(opt, 2e-3)
    run = jbpnn.train(
        params, X, Y, optimizer=opt, epochs=7, batch_size=16, key=int(order_seed), shuffle=True
    )
    assert_allclose(est.loss_curve_, run.history["loss"] / 2, rtol=1e-6)  # squared_error
    for ours, layer in zip(est.coefs_, run.params.layers):
        assert_allclose(ours, layer.w, rtol=1e-6, atol=1e-7)
    assert est.n_iter_ == 7 and est.t_ == 7 * len(X) and est.best_loss_ == min(est.loss_curve_)
    assert est.loss_ == est.loss_curve_[-1]
    assert set(est.state_.opt_state.hyperparams) >= {"lr", "power_t", "m", "alpha"}
    assert est.predict(X).shape == (len(X), 2) and est.out_activation_ == "identity"


def test_warm_start_and_partial_fit_resume_the_core_state(digits):
    """4 + 3 epochs (warm_start) == 7 epochs; three partial_fits == fit with max_iter=3."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.1, batch_size=32)
    whole = BPNNClassifier(**kw, max_iter=7, random_state=0).fit(X, y)
    warm = BPNNClassifier(**kw, max_iter=4, random_state=0, warm_start=True).fit(X, y)
    warm.set_params(max_iter=3).fit(X, y)
    for a, b in zip(warm.coefs_ + warm.intercepts_, whole.coefs_ + whole.intercepts_):
        assert_array_equal(a, b)
    assert warm.loss_curve_ == whole.loss_curve_ and warm.n_iter_ == 3 and warm.t_ == 7 * len(X)
    three = BPNNClassifier(**kw, max_iter=3, random_state=0).fit(X, y)
    parts = BPNNClassifier(**kw, random_state=0)
    parts.partial_fit(X, y, classes=np.unique(y))
    parts.partial_fit(X, y)
    parts.partial_fit(X, y)
    assert_array_equal(parts.coefs_[0], three.coefs_[0])
    assert parts.n_iter_ == 1 and len(parts.loss_curve_) == 3 and parts.t_ == 3 * len(X)
    with pytest.raises(ValueError, match="classes"):
        BPNNClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        warm.fit(X[y < 5], y[y < 5])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        BPNNClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_after_early_stopping_keeps_its_record_as_scikit_learn(digits):
    # scikit-learn's warm fit keeps _best_coefs, best_validation_score_ and the count of
    # epochs without improvement: a second fit of a run that stopped stops after one epoch
    # on the overall best weights (jbpnn's restarted the record: 6 more epochs, and coefs_
    # scoring 0.79 where best_validation_score_ said 0.875)
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.3, momentum=0.9,
              batch_size=16, early_stopping=True, n_iter_no_change=3, max_iter=200,
              warm_start=True, random_state=0)  # fmt: skip
    est = BPNNClassifier(**kw).fit(X, y)
    assert est.stop_reason_ == "no_validation_improvement"
    first_best, first = est.best_validation_score_, [c.copy() for c in est.coefs_]
    est.fit(X, y)
    assert est.n_iter_ == 1 and est.stop_reason_ == "no_validation_improvement"
    assert est.best_validation_score_ == first_best == max(est.validation_scores_)
    for a, b in zip(est.coefs_, first):  # the best epoch is still the first fit's
        assert_array_equal(a, b)
    # without early stopping now: no validation scores (scikit-learn: None), best_loss_ set
    est.set_params(early_stopping=False, max_iter=2).fit(X, y)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.best_loss_ == min(est.loss_curve_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_warm_fit_with_another_solver_goes_on_from_coefs_as_scikit_learn():
    # sgd then lbfgs (warm_start) was refused ("trained with another solver"); scikit-learn
    # makes a new optimizer at every fit and goes on from coefs_: so does this now
    rs = np.random.RandomState(0)
    X = rs.randn(60, 3)
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rs.randn(60)
    est = BPNNRegressor(hidden_layer_sizes=(5,), solver="sgd", max_iter=5, warm_start=True,
                        random_state=0).fit(X, y)  # fmt: skip
    start = list(zip([w.copy() for w in est.coefs_], [b.copy() for b in est.intercepts_]))
    est.set_params(solver="lbfgs", max_iter=7).fit(X, y)
    fresh = BPNNRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=7, init=start,
                          random_state=0).fit(X, y)  # fmt: skip
    for a, b in zip(est.coefs_ + est.intercepts_, fresh.coefs_ + fresh.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert est.n_iter_ == fresh.n_iter_ and len(est.loss_curve_) == 5 + fresh.n_iter_
    est.set_params(solver="sgd", max_iter=2).fit(X, y)  # and back (scikit-learn: AttributeError)
    assert est.n_iter_ == 2
    # one step of a state: refused, naming the fitted solver and the new one
    with pytest.raises(ValueError, match="trained with solver='sgd'.*not solver='adam'"):
        est.set_params(solver="adam").partial_fit(X, y)


@pytest.mark.parametrize(
    "solver, bad",
    [
        ("adam", {"momentum": 5.0}),
        ("adam", {"momentum": "x"}),
        ("adam", {"nesterovs_momentum": "no"}),
        ("adam", {"power_t": -1.0}),
        ("sgd", {"power_t": "x"}),
        ("sgd", {"beta_1": 5.0}),
        ("sgd", {"epsilon": -1.0}),
        ("lbfgs", {"momentum": 2.0}),
        ("lbfgs", {"beta_2": 1.0}),
        ("adam", {"verbose": "yes"}),
        ("adam", {"verbose": -1}),
        ("adam", {"momentum_variant": "bogus"}),
    ],
)
def test_parameters_the_solver_does_not_use_are_checked_too(solver, bad):
    """scikit-learn checks every constructor parameter at fit, used or not."""
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        BPNNClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=1, **bad).fit(X, y)


def test_a_network_that_cannot_go_on_says_how_to_start_afresh(digits):
    """partial_fit always goes on from the fitted network: its refusal points to fit, not
    to warm_start (which partial_fit ignores); fit with warm_start points to it."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(5,), solver="sgd", max_iter=2, random_state=0)
    stream = BPNNClassifier(**kw).partial_fit(X, y, classes=np.unique(y))
    stream.set_params(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match=r"^partial_fit: .*\(64, 7, 10\).*call fit"):
        stream.partial_fit(X, y)
    stream.set_params(hidden_layer_sizes=(5,), solver="adam")
    with pytest.raises(ValueError, match=r"^partial_fit: .*solver='sgd'.*call fit"):
        stream.partial_fit(X, y)
    warm = BPNNRegressor(**kw, warm_start=True).fit(X, np.c_[y, y].astype(float))
    with pytest.raises(ValueError, match=r"^fit with warm_start=True: .*warm_start=False"):
        warm.fit(X, y.astype(float))  # the data now has one output: the settings did not change


def test_labels_outputs_and_losses(digits):
    X, y = digits
    X = X[:120]
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0, learning_rate_init=0.01)
    names = np.array(["cat", "dog", "emu"])[y[:120] % 3]
    multi = BPNNClassifier(**kw).fit(X, names)
    assert multi.out_activation_ == "softmax" and list(multi.classes_) == ["cat", "dog", "emu"]
    assert set(multi.predict(X)) <= set(names)
    assert_allclose(multi.predict_proba(X).sum(axis=1), 1, rtol=1e-6)
    for labels in ((y[:120] % 2).astype(bool), np.where(y[:120] % 2, 7, -3)):
        binary = BPNNClassifier(**kw).fit(X, labels)  # ONE sigmoid unit, binary cross-entropy
        assert binary.n_outputs_ == 1 and binary.params_.loss == "binary_cross_entropy"
        assert binary.predict(X).dtype == labels.dtype and binary.predict_proba(X).shape == (120, 2)
    Y = np.c_[y[:120] % 2, y[:120] < 5, y[:120] % 3 == 0].astype(int)
    multilabel = BPNNClassifier(**kw).fit(X, Y)
    assert multilabel.out_activation_ == "logistic" and multilabel.predict(X).shape == Y.shape
    article = BPNNClassifier(**kw, loss="mse", init="article").fit(X, names)
    assert article.params_.loss == "mse" and article.params_.activations[-1] == "sigmoid"
    assert_allclose(article.predict_proba(X).sum(axis=1), 1, rtol=1e-6)


def test_early_stopping_keeps_the_best_params(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.3, batch_size=32)
    clf = BPNNClassifier(**kw, max_iter=200, early_stopping=True, n_iter_no_change=3)
    clf.fit(X, y)
    assert clf.stop_reason_ == "no_validation_improvement" and clf.best_loss_ is None
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_ < 200
    best = int(clf.state_.best_epoch)
    # scikit-learn's rule: an epoch counts as bad unless it beats the best by tol, while the
    # best params follow any improvement, so the best can be the last epoch itself
    assert 1 <= best <= clf.n_iter_ and clf.n_iter_ - best <= 4 == int(clf.state_.bad_epochs)
    assert_almost_equal(clf.best_validation_score_, clf.validation_scores_[best - 1])
    Y = np.c_[X[:, 20], X[:, 36]]
    reg = BPNNRegressor(**kw, max_iter=30, early_stopping=True).fit(X, Y)
    best = int(reg.state_.best_epoch)  # the core's R^2 (monitor="val_r2")
    assert_allclose(reg.best_validation_score_, reg.validation_scores_[best - 1], atol=1e-5)


def _fitted_from_the_same_start(Theirs, kw, X, y):
    """scikit-learn's estimator ``Theirs(**kw)`` fitted from initial weights it drew in a
    probe fit, and those weights (for jbpnn's ``init=``): both fits start alike."""
    probe = Theirs(**{**kw, "max_iter": 1, "early_stopping": False}).fit(X, y)
    init = list(zip(probe.coefs_, probe.intercepts_))
    given = list(init)

    class SameStart(Theirs):
        def _init_coef(self, fan_in, fan_out, dtype):
            return [a.copy() for a in given.pop(0)]

    return SameStart(**kw).fit(X, y), init


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_adam_fits_equal_scikit_learns_from_the_same_weights(x64, digits):
    # solver="adam" (MLPClassifier's default) adds epsilon where scikit-learn does, to
    # sqrt(nu): adam(variant="efficient"). With eps on sqrt(nu_hat) the digits' probabilities
    # were 2.6e-3 apart after 5 epochs (the zero pixels' weights moved differently)
    X, y = digits
    X = X.astype(np.float64)  # scikit-learn computes in float32 for float32 input
    kw = dict(hidden_layer_sizes=(7,), solver="adam", learning_rate_init=0.01, max_iter=5,
              shuffle=False, random_state=0)  # fmt: skip
    theirs, init = _fitted_from_the_same_start(MLPClassifier, kw, X, y)
    ours = BPNNClassifier(**kw, init=init, dtype="float64").fit(X, y)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    assert ours.state_.opt_state.hyperparams["eps"] == 1e-8


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_r2_kernel_sums_16_bit_networks_in_float32(dtype):
    """float16's sums of 200 squared targets near 200 overflowed: val_r2 read -inf."""
    from sklearn.metrics import r2_score

    from jbpnn.network import predict_kernel, r2_kernel

    rs = np.random.RandomState(0)
    params = jbpnn.init_params(0, (3, 8, 1), ("tanh", "identity"), "mse", "glorot", dtype)
    X = rs.randn(200, 3).astype(np.float32)
    Y = (np.tanh(X @ [[1.0], [2.0], [-1.0]]) + 200).astype(dtype)  # as the run casts them
    O = np.asarray(predict_kernel(params, X), np.float64)
    got = r2_kernel(params, X.astype(dtype), Y)
    assert got.dtype == np.float32
    assert float(got) == pytest.approx(r2_score(Y.astype(np.float64), O), rel=1e-3)


def test_r2_kernel_is_r2_scores_uniform_average(x64):
    from sklearn.metrics import r2_score

    from jbpnn.network import predict_kernel, r2_kernel

    rs = np.random.RandomState(0)
    params = jbpnn.init_params(0, (3, 5, 3), ("tanh", "identity"), "mse", "glorot", "float64")
    X = rs.randn(40, 3)
    Y = np.c_[rs.randn(40) * 10, rs.randn(40) * 0.1, np.full(40, 2.0)]  # one constant output
    O = np.asarray(predict_kernel(params, X))
    # whole weights: the constant output's weighted mean is exact, so its SST is 0
    for sw in (None, rs.randint(1, 4, 40).astype(float)):
        expected = r2_score(Y, O, sample_weight=sw)  # the constant output scores 0
        assert float(r2_kernel(params, X, Y, sw)) == pytest.approx(expected, rel=1e-12)
    # a constant output fitted exactly scores 1 (r2_score's force_finite)
    exact = np.c_[Y[:, :2], np.full(40, 2.0)]
    last = params.layers[1]
    fitted = params.replace_layers(
        [params.layers[0], last._replace(w=last.w.at[:, 2].set(0.0), b=last.b.at[2].set(2.0))]
    )
    out = np.asarray(predict_kernel(fitted, X))
    assert np.all(out[:, 2] == 2.0)
    assert float(r2_kernel(fitted, X, exact)) == pytest.approx(r2_score(exact, out), rel=1e-12)
    assert r2_score(exact[:, 2:], out[:, 2:]) == 1.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regressor_early_stopping_on_several_outputs_stops_as_mlpregressor(x64, monkeypatch):
    # MLPRegressor scores its validation split by r2_score's uniform average over the
    # outputs; jbpnn watched the variance-weighted R^2 (its validation loss): on two outputs
    # of unequal variance it stopped at epoch 67 where scikit-learn stops at 78
    import sklearn.neural_network._multilayer_perceptron as mlp
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor

    rs = np.random.RandomState(1)
    X = rs.randn(200, 5)
    Y = np.c_[X @ rs.randn(5), np.tanh(X[:, 0])] + 0.3 * rs.randn(200, 2)
    va = np.random.RandomState(5).permutation(200)[:40]
    tr = np.setdiff1d(np.arange(200), va)
    monkeypatch.setattr(  # both take the same validation rows
        mlp, "train_test_split", lambda *arrays, **kw: [p for a in arrays for p in (a[tr], a[va])]
    )

    class SameRows(BPNNRegressor):
        def _split_rows(self, Y, s, rng):
            return tr, va

    kw = dict(hidden_layer_sizes=(7,), random_state=0, shuffle=False, solver="sgd",
              learning_rate_init=0.01, early_stopping=True, n_iter_no_change=3, max_iter=200,
              batch_size=20)  # fmt: skip
    sk, init = _fitted_from_the_same_start(MLPRegressor, kw, X, Y)
    jb = SameRows(**kw, init=init, dtype="float64").fit(X, Y)
    assert jb.n_iter_ == sk.n_iter_ == 78 and jb.stop_reason_ == "no_validation_improvement"
    assert_allclose(jb.validation_scores_, sk.validation_scores_, rtol=1e-12)
    assert_allclose(jb.predict(X), sk.predict(X), atol=1e-12)  # the same best epoch restored
    assert jb.best_validation_score_ == pytest.approx(r2_score(Y[va], jb.predict(X[va])))
    assert "val_r2" in jb.state_.history  # the core's history has the score it watched


def _sklearn_stop(values, n_iter_no_change, tol, lr=None):
    """scikit-learn's _fit_stochastic stopping on a curve (lower is better), in Python:
    the epochs it runs and (learning_rate="adaptive", lr given) its lr at the end."""
    best, count = np.inf, 0
    for i, v in enumerate(values):
        count = count + 1 if v > best - tol else 0  # _update_no_improvement_count
        best = min(best, v)
        if count > n_iter_no_change:
            if lr is None or lr <= 1e-6:  # trigger_stopping
                return i + 1, lr
            lr, count = lr / 5.0, 0
    return len(values), lr


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_tol_and_n_iter_no_change_stop_as_scikit_learn_counts(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.2, batch_size=64,
              max_iter=300, random_state=0)  # fmt: skip
    free = BPNNClassifier(**kw, n_iter_no_change=np.inf).fit(X, y)  # the rule off
    assert free.n_iter_ == 300 and free.stop_reason_ == "max_epochs"
    clf = BPNNClassifier(**kw, n_iter_no_change=3, tol=1e-3).fit(X, y)
    expected, _ = _sklearn_stop(free.loss_curve_, 3, 1e-3)
    assert clf.stop_reason_ == "no_loss_improvement" and clf.n_iter_ == expected < 300
    assert_array_equal(clf.loss_curve_, free.loss_curve_[:expected])
    assert clf.best_loss_ == min(clf.loss_curve_)
    # learning_rate="adaptive": each plateau divides the lr by 5, until it is <= 1e-6
    ada = BPNNClassifier(**{**kw, "max_iter": 2000}, learning_rate="adaptive", n_iter_no_change=2,
                         tol=1e-2).fit(X, y)  # fmt: skip
    epochs, lr = _sklearn_stop(ada.loss_curve_, 2, 1e-2, lr=0.2)
    assert ada.n_iter_ == epochs and ada.stop_reason_ == "no_loss_improvement"
    assert lr <= 1e-6 and float(ada.state_.lr_scale) * 0.2 == pytest.approx(lr, rel=1e-5)
    # with adam, learning_rate is ignored (as scikit-learn ignores it)
    a1 = BPNNClassifier(**{**kw, "solver": "adam", "max_iter": 5, "learning_rate_init": 1e-3})
    assert_array_equal(a1.fit(X, y).loss_curve_, a1.set_params(learning_rate="adaptive",
                       power_t=9.0).fit(X, y).loss_curve_)  # fmt: skip


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_watches_the_validation_accuracy(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.3, batch_size=32,
              early_stopping=True, random_state=0, max_iter=300)  # fmt: skip
    free = BPNNClassifier(**kw, n_iter_no_change=np.inf).fit(X, y)
    clf = BPNNClassifier(**kw, n_iter_no_change=4, tol=1e-3).fit(X, y)
    scores = np.asarray(free.validation_scores_)
    expected, _ = _sklearn_stop(-scores, 4, 1e-3)  # score < best + tol counts as no gain
    assert clf.n_iter_ == expected and clf.stop_reason_ == "no_validation_improvement"
    best = int(np.argmax(scores[:expected]))  # the params of the first best score are kept
    assert int(clf.state_.best_epoch) == best + 1
    assert clf.best_validation_score_ == pytest.approx(scores[best], abs=1e-6)  # float32
    # multilabel: subset accuracy, per epoch
    Y = np.c_[y % 2, y < 5, y % 3 == 0].astype(int)
    ml = BPNNClassifier(**{**kw, "max_iter": 8}).fit(X, Y)
    assert np.all(np.isfinite(ml.validation_scores_))
    assert int(ml.state_.best_epoch) and ml.best_validation_score_ == pytest.approx(
        max(ml.validation_scores_), abs=1e-6
    )


def test_refusals_name_the_setting(digits):
    X, y = digits
    for kw, message in (
        (dict(learning_rate="optimal"), "learning_rate must be 'constant', 'invscaling' or"),
        (dict(solver="newton"), "solver must be 'sgd', 'adam', 'lbfgs' or 'lm'"),
        (dict(solver="lm"), "use solver='lbfgs'.*or loss='mse' with solver='lm'"),
        (dict(solver="lbfgs", max_fun=0), "max_fun must be an integer >= 1"),
        (dict(solver="sgd", momentum=1.0), "momentum must be"),
        (dict(activation="nope"), "activation must be one of"),
        (dict(init="zeros"), "init must be one of"),
        (dict(dtype="float64"), "jax_enable_x64"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
    ):
        with pytest.raises(ValueError, match=message):
            BPNNClassifier(**kw).fit(X, y)
    with pytest.raises(ValueError, match="poisson is not offered"):
        BPNNRegressor(loss="poisson").fit(X, y)
    with pytest.raises(ValueError, match="init params have layer sizes"):
        BPNNClassifier(hidden_layer_sizes=(3,), init=_INIT).fit(X, y)


def test_import_jbpnn_does_not_import_scikit_learn():
    code = "import sys, jbpnn; assert not {'sklearn', 'jbpnn.sklearn'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- SweepSearchCV
def _same_results(sweep, grid, atol=1e-6):
    assert list(sweep.cv_results_) == list(grid.cv_results_)
    for key, value in grid.cv_results_.items():
        if key.startswith(("split", "mean_test", "std_test")):
            assert_allclose(sweep.cv_results_[key], value, atol=atol, err_msg=key)
        elif key.startswith(("param_", "rank", "params")):
            assert list(sweep.cv_results_[key]) == list(value), key
            if key.startswith("param_"):
                assert sweep.cv_results_[key].dtype == value.dtype, key
    assert sweep.best_params_ == grid.best_params_ and sweep.best_index_ == grid.best_index_
    assert abs(sweep.best_score_ - grid.best_score_) <= atol


def test_sweep_equals_grid_search_in_one_train_many_call(digits):
    X, y = digits
    base = BPNNClassifier(hidden_layer_sizes=(16,), solver="sgd", batch_size=32, max_iter=15)
    # (learning rates where training is stable: at lr 0.3 float32 rounding, which differs
    # between a vmapped and a single product, can move a test example across the boundary)
    grid = {"learning_rate_init": [0.03, 0.1], "alpha": [1e-4, 0.1], "random_state": [0, 1]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    sweep = SweepSearchCV(base, grid, cv=cv).fit(X, y)
    assert [c["networks"] for c in sweep.sweep_calls_] == [8 * 3]
    reference = GridSearchCV(base, grid, cv=cv).fit(X, y)
    _same_results(sweep, reference)
    assert_array_equal(sweep.predict(X), reference.predict(X))
    assert sweep.score(X, y) == reference.score(X, y) and list(sweep.classes_) == list(range(10))


def test_sweep_encodes_each_folds_classes_as_its_own_fit(digits):
    """The fitted networks of a fold have the classes (and the encoding) the fold's
    training rows give, found once per group of folds with the same classes: a fold
    whose training rows lack a class scores as GridSearchCV's fit of it (log loss reads
    classes_ and predict_proba)."""
    X, y = digits
    X, y = X[:300], y[:300] % 3
    folds = np.arange(len(y)) % 3
    folds[y == 2] = 0  # every class-2 row in fold 0's test part: its fit never sees one
    keep = (y != 2) | (np.cumsum(y == 2) <= 40)
    X, y, folds = X[keep], y[keep], folds[keep]
    cv = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(3)]
    assert 2 not in set(y[cv[0][0]]) and 2 in set(y[cv[1][0]])
    base = BPNNClassifier(hidden_layer_sizes=(8,), batch_size=32, max_iter=5, random_state=0)
    grid = {"learning_rate_init": [0.03, 0.1]}
    kw = dict(cv=cv, scoring=["accuracy", "neg_log_loss"], refit=False, error_score=np.nan)
    with pytest.warns(UserWarning):  # fold 0's log loss: labels its fit never saw
        sweep = SweepSearchCV(base, grid, **kw).fit(X, y)
        reference = GridSearchCV(base, grid, **kw).fit(X, y)
    for key in ("split0_test_accuracy", "split1_test_accuracy", "split1_test_neg_log_loss"):
        assert_allclose(sweep.cv_results_[key], reference.cv_results_[key], rtol=1e-6)
    assert_array_equal(
        np.isnan(sweep.cv_results_["split0_test_neg_log_loss"]),
        np.isnan(reference.cv_results_["split0_test_neg_log_loss"]),
    )


def test_sweep_groups_static_settings_and_early_stopping(digits):
    """Two max_iter values: two calls; adam values as data; early stopping: one call."""
    X, _ = digits
    y = X[:, 28] + X[:, 35]
    base = BPNNRegressor(
        hidden_layer_sizes=(8,), batch_size=50, random_state=0, learning_rate_init=0.01
    )
    grid = [
        {"max_iter": [5, 10], "beta_1": [0.8, 0.9]},  # max_iter is one value per train_many call
        {"early_stopping": [True], "max_iter": [10]},
    ]
    cv = KFold(3, shuffle=True, random_state=1)
    sweep = SweepSearchCV(base, grid, cv=cv, scoring="neg_mean_squared_error").fit(X, y)
    # the early-stopping regressors train in one call too: each split's own tol (thresholds
    # per network) and validation rows
    assert sorted(c["networks"] for c in sweep.sweep_calls_) == [3, 6, 6]
    reference = GridSearchCV(base, grid, cv=cv, scoring="neg_mean_squared_error").fit(X, y)
    _same_results(sweep, reference, atol=1e-5)
    with pytest.raises(TypeError, match="GridSearchCV for other estimators"):
        SweepSearchCV(MLPClassifier(), {"alpha": [1e-4]}).fit(X, y > 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sweep_trains_early_stopping_classifiers_in_one_call_as_grid_search(digits):
    """Each fold its own validation split (val_rows=), weighted: GridSearchCV's results."""
    X, y = digits
    X, y = X[:600], y[:600]
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    base = BPNNClassifier(hidden_layer_sizes=(16,), solver="sgd", batch_size=32, max_iter=40,
                          early_stopping=True, n_iter_no_change=2, random_state=3)  # fmt: skip
    grid = {"learning_rate_init": [0.05, 0.3], "momentum": [0.5, 0.9]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    sweep = SweepSearchCV(base, grid, cv=cv).fit(X, y, sample_weight=weight)
    assert [c["networks"] for c in sweep.sweep_calls_] == [12]
    reference = GridSearchCV(base, grid, cv=cv).fit(X, y, sample_weight=weight)
    _same_results(sweep, reference)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sweep_from_given_params_is_one_call(digits):
    """init= params: every candidate is a clone (a deep copy of them), equal by value, so
    they train together (they trained one call each, grouped by the object's id)."""
    X, y = digits
    rng = np.random.default_rng(0)
    init = [
        (rng.uniform(-0.3, 0.3, (64, 6)), np.zeros(6)),
        (rng.uniform(-0.3, 0.3, (6, 10)), np.zeros(10)),
    ]
    base = BPNNClassifier(hidden_layer_sizes=(6,), solver="sgd", batch_size=50, max_iter=5,
                          init=init, random_state=0)  # fmt: skip
    grid = {"learning_rate_init": [0.05, 0.2], "alpha": [1e-4, 1e-2]}
    sweep = SweepSearchCV(base, grid, cv=3).fit(X, y)
    assert [c["networks"] for c in sweep.sweep_calls_] == [12]
    _same_results(sweep, GridSearchCV(base, grid, cv=3).fit(X, y))
    other = [(w + 0.1, b) for w, b in init]  # other values: another call
    sweep = SweepSearchCV(base, {"init": [init, other]}, cv=3).fit(X, y)
    assert [c["networks"] for c in sweep.sweep_calls_] == [3, 3]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sweep_over_stop_thresholds_is_one_call(digits):
    """tol and n_iter_no_change are per-network thresholds: one train_many call."""
    X, y = digits
    X, y = X[:500], y[:500]
    base = BPNNClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.2,
                          batch_size=50, max_iter=60, random_state=1)  # fmt: skip
    grid = {"n_iter_no_change": [1, 4], "tol": [1e-3, 3e-2]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    sweep = SweepSearchCV(base, grid, cv=cv).fit(X, y)
    assert [c["networks"] for c in sweep.sweep_calls_] == [12]
    _same_results(sweep, GridSearchCV(base, grid, cv=cv).fit(X, y))
    assert len(set(sweep.cv_results_["mean_test_score"])) > 1  # the thresholds mattered


# ---------------------------------------------------------------- the README section
def test_readme_section_has_a_python_block():
    """tests/test_readme.py runs every README python block, this section's included."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## From scikit-learn\n")
    section = text[start : text.index("\n## ", start + 1)]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(code) == 1 and "MLPClassifier" in code[0] and "BPNNClassifier" in code[0]
    compile(code[0], "README.md", "exec")


# ---------------------------------------------------------------- solver="lm"
def test_lm_regressor_is_levenberg_marquardt_with_alpha(digits):
    """solver="lm": jbpnn.train with levenberg_marquardt(min_grad=tol, alpha=alpha), full
    batch; alpha enters the normal equations (smaller weights) and the loss curve."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (120, 3))
    y = np.sin(2 * X).sum(axis=1)
    kw = dict(solver="lm", hidden_layer_sizes=(8,), activation="tanh", max_iter=15, random_state=0)
    free = BPNNRegressor(**kw, alpha=0.0).fit(X, y)
    assert free.score(X, y) > 0.99 and free.params_.loss == "mse" and free.t_ == 15 * len(X)
    est = BPNNRegressor(**kw, alpha=1.0).fit(X, y)
    init_seed, _ = np.random.RandomState(0).randint(0, 2**31 - 1, size=2)
    params = jbpnn.init_params(
        jax.random.key(int(init_seed)), (3, 8, 1), ("tanh", "identity"), "mse", "glorot"
    )
    opt = jbpnn.optimizers.levenberg_marquardt(min_grad=1e-4, alpha=1.0)
    opt = jbpnn.optimizers.with_loss_penalty(opt, 1.0)
    run = jbpnn.train(params, X, y[:, None], optimizer=opt, epochs=15, batch_size=None)
    assert_allclose(est.loss_curve_, run.history["loss"], rtol=1e-6)
    for ours, layer in zip(est.coefs_, run.params.layers):
        assert_allclose(ours, layer.w, rtol=1e-5, atol=1e-6)
    norm = [sum(float(np.sum(w**2)) for w in e.coefs_) for e in (free, est)]
    assert norm[1] < norm[0]  # the penalty pulls the weights in
    w0 = [np.asarray(layer.w, np.float64) for layer in params.layers]  # epoch 1: from the init
    penalty = 0.5 * sum(np.sum(w**2) for w in w0) / len(X)
    E0 = 0.5 * np.mean((np.asarray(jbpnn.predict(params, X))[:, 0] - y) ** 2)
    assert est.loss_curve_[0] == pytest.approx(E0 + penalty, rel=1e-5)


def test_lm_classifier_needs_the_squared_error(digits):
    X, y = digits
    X, y = X[:150], y[:150] % 3
    with pytest.raises(ValueError, match="use solver='lbfgs'.*or loss='mse' with solver='lm'"):
        BPNNClassifier(solver="lm").fit(X, y)
    clf = BPNNClassifier(solver="lm", loss="mse", hidden_layer_sizes=(6,), max_iter=10,
                         random_state=0).fit(X, y)  # fmt: skip
    assert clf.params_.activations[-1] == "sigmoid" and clf.score(X, y) > 0.9
    assert_allclose(clf.predict_proba(X).sum(axis=1), 1, rtol=1e-6)


# ---------------------------------------------------------------- issue 20's defects
def test_finite_input_that_overflows_float32_is_refused_before_training():
    """test_mlp.py::test_nonfinite_params: X = float64 max * uniform; y and sample_weight."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    for est in (BPNNRegressor(max_iter=5), BPNNClassifier(max_iter=5)):
        with pytest.raises(ValueError, match=r"^X has .* column\(s\) 0-1 .*float32"):
            est.fit(X, y > 0)
    X1 = np.c_[
        rng.uniform(size=10), 1e39 * np.ones(10), rng.uniform(size=(10, 2)), 1e40 * np.ones(10)
    ]
    with pytest.raises(ValueError, match=r"column\(s\) 1, 4 \(of 5\)"):
        BPNNRegressor(max_iter=5).fit(X1, y)
    small = rng.uniform(size=(10, 2))
    with pytest.raises(ValueError, match=r"^y has values .*squared error.*float32"):
        BPNNRegressor(max_iter=5).fit(small, 1e30 * y)
    with pytest.raises(ValueError, match=r"^sample_weight sums to 1e\+39.*float32"):
        BPNNRegressor(max_iter=5).fit(small, y, sample_weight=np.full(10, 1e38))
    fitted = BPNNRegressor(max_iter=2).fit(small, y)
    with pytest.raises(ValueError, match=r"^X has values"):
        fitted.predict(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_best_validation_score_is_the_largest_validation_score(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.1, batch_size=32,
              early_stopping=True, max_iter=12)  # fmt: skip
    for seed in range(3):
        clf = BPNNClassifier(**kw, random_state=seed).fit(X, y)
        n_val = 30  # validation_fraction 0.1 of 300
        assert clf.best_validation_score_ == max(clf.validation_scores_)
        for score in clf.validation_scores_:  # exact fractions k / n_val
            assert score == round(score * n_val) / n_val
        reg = BPNNRegressor(**kw, random_state=seed).fit(X, X[:, 20])
        assert reg.best_validation_score_ == max(reg.validation_scores_)


def test_regressor_early_stopping_stops_on_a_constant_validation_target():
    """R^2 of a constant target is 0 (scikit-learn's r2_score): no epoch gains tol, so it
    stops after n_iter_no_change + 2 epochs, as MLPRegressor does."""
    from sklearn.neural_network import MLPRegressor

    X = np.random.RandomState(0).uniform(size=(100, 3))
    y = np.full(100, 2.0)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", early_stopping=True, max_iter=200,
              random_state=0)  # fmt: skip
    ours = BPNNRegressor(**kw).fit(X, y)
    theirs = MLPRegressor(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 12
    assert ours.stop_reason_ == "no_validation_improvement"
    assert set(ours.validation_scores_) == {0.0} == set(theirs.validation_scores_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_invscaling_is_scikit_learns_samples_seen_once_per_epoch():
    """lr = learning_rate_init / (t + 1) ** power_t, t the samples seen, per epoch: the
    rates after 1 and 5 epochs on iris are MLPClassifier's, and they are the rates used."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    kw = dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1, power_t=0.5,
              batch_size=20, random_state=0, hidden_layer_sizes=(5,), momentum=0.5)  # fmt: skip
    for epochs in (1, 5):
        theirs = MLPClassifier(**kw, max_iter=epochs).fit(X, y)._optimizer.learning_rate
        ours = BPNNClassifier(**kw, max_iter=epochs).fit(X, y)
        assert ours._optimizer.learning_rate == theirs == 0.1 / (150 * epochs + 1) ** 0.5
        hp = ours.state_.opt_state.hyperparams  # the core's own schedule at its step count
        rate = jbpnn.optimizers.epoch_inverse_scaling(
            *(float(hp[k]) for k in ("lr", "power_t", "samples_per_epoch", "updates_per_epoch"))
        )
        assert float(rate(ours.state_.opt_state.count)) == pytest.approx(theirs, rel=1e-6)
    # the rates the updates used: 3 epochs == 3 one-epoch runs at constant lr 0.1/(150e+1)^0.5
    kw.update(shuffle=False, max_iter=3)
    est = BPNNClassifier(**kw).fit(X, y)
    init_seed, _ = np.random.RandomState(0).randint(0, 2**31 - 1, size=2)
    run = jbpnn.init_params(jax.random.key(int(init_seed)), (4, 5, 3), ("relu", "softmax"),
                            "cross_entropy", "glorot")  # fmt: skip
    Y = np.eye(3)[y]
    for epoch in range(3):
        opt = jbpnn.momentum(0.1 / (150 * epoch + 1) ** 0.5, 0.5, "nesterov", alpha=1e-4)
        run = jbpnn.train(run, X, Y, optimizer=opt, epochs=1, batch_size=20, shuffle=False)
    for ours, layer in zip(est.coefs_, run.params.layers):
        assert_allclose(ours, layer.w, rtol=1e-5, atol=1e-6)


def test_coefs_set_by_hand_take_effect():
    rng = np.random.RandomState(0)
    X, y = rng.uniform(size=(50, 3)), rng.uniform(size=50)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, shuffle=False,
              batch_size=10, random_state=0, learning_rate_init=0.05)  # fmt: skip
    with pytest.warns(Warning):
        est = BPNNRegressor(**kw, max_iter=3).fit(X, y)
    W = [rng.normal(size=w.shape) for w in est.coefs_]
    b = [rng.normal(size=c.shape) for c in est.intercepts_]
    est.coefs_, est.intercepts_ = [w.copy() for w in W], [c.copy() for c in b]
    hidden = np.maximum(X @ W[0] + b[0], 0)
    assert_allclose(est.predict(X), (hidden @ W[1] + b[1]).ravel(), rtol=1e-5)  # predict
    est.partial_fit(X, y)  # goes on from the weights set (sgd without momentum: no memory)
    fresh = BPNNRegressor(**kw, init=list(zip(W, b))).partial_fit(X, y)
    for ours, theirs in zip(est.coefs_ + est.intercepts_, fresh.coefs_ + fresh.intercepts_):
        assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    est.coefs_[1][:] = 0.0  # in place, too
    est.intercepts_[1][:] = 3.0
    assert_allclose(est.predict(X), 3.0)


def test_sparse_input_is_densified_with_a_memory_guard(monkeypatch):
    import scipy.sparse as sp

    import jbpnn.memory

    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 6)) * (rng.uniform(size=(40, 6)) < 0.3)
    y = (X.sum(axis=1) > 0.6).astype(int)
    kw = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=1, solver="lbfgs")
    dense = BPNNClassifier(**kw).fit(X, y)
    for make in (sp.csr_matrix, sp.csc_matrix, sp.csr_array):
        est = BPNNClassifier(**kw).fit(make(X), y)
        assert_array_equal(est.predict(make(X)), dense.predict(X))
        assert_allclose(est.predict_proba(X), dense.predict_proba(X), rtol=1e-6)
        est.partial_fit(make(X), y)
    reg = BPNNRegressor(**kw).fit(sp.csr_matrix(X), X[:, 0])
    assert reg.predict(sp.csc_matrix(X)).shape == (40,)
    monkeypatch.setattr(jbpnn.memory, "available_memory", lambda device=None: (1000, "test RAM"))
    with pytest.raises(
        MemoryError, match=r"the sparse X as a dense float64 array of shape \(40, 6\)"
    ):
        BPNNClassifier(**kw).fit(sp.csr_matrix(X), y)


@pytest.mark.parametrize("Estimator", [BPNNClassifier, BPNNRegressor])
def test_dtypes_follow_scikit_learns_contract(Estimator, digits):
    """test_mlp.py::test_mlp_param_dtypes: float32 input, float32 coefs_ and predictions;
    float64 input: predictions in float64 (X @ coefs_), coefs_ in the network's dtype."""
    X, y = digits
    est = Estimator(hidden_layer_sizes=(5, 3), max_iter=5, random_state=1)
    with pytest.warns(Warning):
        est.fit(X.astype(np.float32), y)
    assert {w.dtype for w in est.coefs_ + est.intercepts_} == {np.dtype(np.float32)}
    out32 = est.predict_proba if Estimator is BPNNClassifier else est.predict
    assert out32(X.astype(np.float32)).dtype == np.float32
    assert out32(X.astype(np.float64)).dtype == np.float64


def test_loss_curve_has_scikit_learns_alpha_term_and_verbose_its_lines(capsys):
    """The worked example's step with alpha=0.1, and two more: MLPClassifier's loss_curve_,
    which adds 0.5 alpha |W|^2 / n_batch to every batch's loss."""
    X = np.array([[0.6, 0.8, 0.7], [0.1, 0.4, 0.9], [0.3, 0.3, 0.2]])
    y = np.array([0, 1, 0])
    kw = dict(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
              random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0, batch_size=2,
              shuffle=False)  # fmt: skip
    ours = BPNNClassifier(**kw, init=_INIT, verbose=True)
    theirs = MLPClassifier(**kw).partial_fit(X, y, classes=[0, 1])
    theirs.coefs_ = [w.copy() for w, _ in _INIT]
    theirs.intercepts_ = [b.copy() for _, b in _INIT]
    theirs.loss_curve_ = []
    del theirs._optimizer
    for _ in range(3):
        ours.partial_fit(X, y, classes=[0, 1])
        theirs.partial_fit(X, y)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    assert ours.loss_ == ours.loss_curve_[-1] and ours.best_loss_ == min(ours.loss_curve_)
    lines = capsys.readouterr().out.splitlines()
    # each partial_fit is an iteration 1 of its own, as scikit-learn prints it
    assert lines == [f"Iteration 1, loss = {v:.8f}" for v in ours.loss_curve_]
    assert re.fullmatch(r"Iteration 1, loss = \d\.\d{8}", lines[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("Estimator", [BPNNClassifier, BPNNRegressor])
def test_verbose_prints_scikit_learns_validation_and_stop_lines(capsys, digits, Estimator):
    # MLPClassifier/MLPRegressor print "Validation score: ..." after each epoch with early
    # stopping and the plateau's stop line; jbpnn printed only the Iteration lines
    from sklearn.neural_network import MLPRegressor

    X, y = digits
    Theirs = MLPClassifier if Estimator is BPNNClassifier else MLPRegressor
    if Estimator is BPNNRegressor:
        y = np.full(len(y), 0.5)  # a constant target: R^2 0 every epoch, a stop after 4
    kw = dict(hidden_layer_sizes=(5,), verbose=True, early_stopping=True, n_iter_no_change=2,
              max_iter=50, learning_rate_init=1e-6, random_state=0)  # fmt: skip
    ours = Estimator(**kw).fit(X, y)
    printed = capsys.readouterr().out.splitlines()
    Theirs(**kw).fit(X, y)
    theirs = capsys.readouterr().out.splitlines()
    n = ours.n_iter_
    assert printed[:-1] == [
        line
        for k, (loss, score) in enumerate(zip(ours.loss_curve_, ours.validation_scores_), 1)
        for line in (f"Iteration {k}, loss = {loss:.8f}", f"Validation score: {score:f}")
    ]
    assert (
        printed[-1]
        == theirs[-1]
        == (
            "Validation score did not improve more than tol=0.000100 for 2 consecutive epochs. "
            "Stopping."
        )
    )
    shape = {re.sub(r"\d+(\.\d+)?", "x", line) for line in theirs}
    assert {re.sub(r"\d+(\.\d+)?", "x", line) for line in printed} == shape and n < 50


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_prints_the_adaptive_learning_rates_as_scikit_learn(capsys, digits):
    # learning_rate="adaptive": scikit-learn prints "... Setting learning rate to 0.000200"
    # at each plateau; jbpnn's reductions happen inside the compiled loop and were not
    # printed (they are in the history's lr_scale now). tol=10: every epoch a plateau's
    X, y = digits
    kw = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate="adaptive", tol=10.0,
              n_iter_no_change=2, max_iter=60, learning_rate_init=1e-3, random_state=0,
              verbose=True)  # fmt: skip
    lines = {}
    for E in (BPNNClassifier, MLPClassifier):
        E(**kw).fit(X, y)
        out = capsys.readouterr().out.splitlines()
        lines[E] = [re.sub(r"loss = \S+", "loss = x", line) for line in out]
    assert lines[BPNNClassifier] == lines[MLPClassifier]
    rates = [line.split()[-1] for line in lines[MLPClassifier] if "Setting learning rate" in line]
    assert rates == ["0.000200", "0.000040", "0.000008", "0.000002", "0.000000"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_counts_iterations_per_call_as_scikit_learn(capsys, digits):
    # the lines counted every epoch of the state (1, 2, 3, 4), scikit-learn each call's
    X, y = digits
    numbers = {}
    for E in (BPNNClassifier, MLPClassifier):
        est = E(hidden_layer_sizes=(5,), verbose=True, warm_start=True, random_state=0)
        est.partial_fit(X, y, classes=np.unique(y))
        est.partial_fit(X, y)
        est.set_params(max_iter=2).fit(X, y)
        out = capsys.readouterr().out.splitlines()
        numbers[E] = [int(line.split(",")[0].split()[1]) for line in out if "Iteration" in line]
    assert numbers[BPNNClassifier] == numbers[MLPClassifier] == [1, 1, 1, 2]


@pytest.mark.parametrize("solver", ["sgd", "adam", "lm"])
def test_an_estimators_optimizer_saves_and_loads_with_its_alpha_term(tmp_path, solver):
    # the estimators record scikit-learn's alpha term in the loss (the optimizer's
    # loss_alpha option) and sgd's invscaling counts samples: a checkpoint written with
    # the estimator's own optimizer must load it back, with the same options and values
    from jbpnn.optimizers import (
        adam,
        epoch_inverse_scaling,
        levenberg_marquardt,
        momentum,
        with_loss_penalty,
    )

    base = {
        "sgd": momentum(epoch_inverse_scaling(0.1, 0.5, 150, 8, 300, 16), 0.9),
        "adam": adam(1e-3, variant="efficient"),  # the estimators' adam
        "lm": levenberg_marquardt(alpha=1e-4),
    }[solver]
    opt = with_loss_penalty(base, 0.1)
    params = jbpnn.init_params(0, (4, 3, 2), "sigmoid", "mse")
    X = np.random.default_rng(0).normal(size=(16, 4))
    Y = np.eye(2)[np.arange(16) % 2]
    run = jbpnn.train(
        params, X, Y, optimizer=opt, epochs=2, batch_size=None if solver == "lm" else 8
    )
    jbpnn.save(tmp_path / "s.npz", run.state, optimizer=opt)
    back = jbpnn.load(tmp_path / "s.npz").optimizer
    assert back.options == opt.options and back.reports_penalty
    assert float(back.hyperparams["loss_alpha"]) == pytest.approx(0.1)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_going_on_after_early_stopping_starts_from_the_kept_best_network(how):
    """coefs_ hold early stopping's best epoch, but partial_fit and a warm-started fit
    went on from the state's last epoch: a step of 1e-12 changed the predictions."""
    from sklearn.exceptions import ConvergenceWarning

    from jbpnn.sklearn import BPNNClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(200, 5).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.randn(200) > 0).astype(int)
    est = BPNNClassifier(hidden_layer_sizes=(30,), solver="sgd", momentum=0.0,
                         learning_rate_init=0.3, early_stopping=True, n_iter_no_change=5,
                         max_iter=100, random_state=0, shuffle=False).fit(X, y)  # fmt: skip
    assert est.best_validation_score_ is not None and est.n_iter_ > int(
        np.argmax(est.validation_scores_) + 1
    )  # an earlier epoch was kept
    best = [np.array(w) for w in est.coefs_]
    last = np.asarray(est.state_.params.layers[0].w)
    assert not np.allclose(last, best[0])
    if how == "partial_fit":
        est.set_params(early_stopping=False, learning_rate_init=1e-12)
        est.partial_fit(X, y)
    else:
        est.set_params(warm_start=True, learning_rate_init=1e-12, max_iter=1, early_stopping=False)
        with pytest.warns(ConvergenceWarning):  # max_iter=1
            est.fit(X, y)
    for w, b in zip(est.coefs_, best):
        np.testing.assert_allclose(w, b, atol=1e-6)


def test_init_mlp_with_other_units_is_refused():
    """init=MLP carries unit names; the estimator replaced them by its own activation
    without a word (a softsign network trained as relu)."""
    import jax.numpy as jnp

    import jbpnn
    from jbpnn.sklearn import BPNNRegressor

    X = np.linspace(-1, 1, 20)[:, None]
    y = np.sin(3 * X[:, 0])
    p = jbpnn.init_params(0, (1, 4, 1), ("tanh", "identity"), "mse", dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"init is an MLP with activations \('tanh', 'identity'\)"):
        BPNNRegressor(hidden_layer_sizes=(4,), init=p, max_iter=2).fit(X, y)  # relu
    est = BPNNRegressor(hidden_layer_sizes=(4,), activation="tanh", init=p, max_iter=2)
    with pytest.warns(Warning):  # ConvergenceWarning: max_iter=2
        est.fit(X, y)
    assert est.params_.activations == ("tanh", "identity")


@pytest.mark.parametrize("solver", ["lbfgs", "lm"])
def test_full_batch_solvers_take_early_stopping_with_no_validation_rows(solver):
    """early_stopping is not used by lbfgs (nor lm), as scikit-learn's MLPRegressor, which
    accepts validation_fraction=0 with it; it was refused."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from jbpnn.sklearn import BPNNRegressor

    X = np.linspace(-1, 1, 30)[:, None]
    est = BPNNRegressor(hidden_layer_sizes=(3,), solver=solver, early_stopping=True,
                        validation_fraction=0.0, max_iter=3)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # whether it converges or not
        est.fit(X, np.sin(3 * X[:, 0]))
    assert est.validation_scores_ is None and est.n_iter_ <= 3


def test_sweep_records_error_score_for_a_fit_that_fails_as_gridsearchcv():
    """A candidate the estimator refuses (solver='lm' with the classifier's cross-entropy)
    aborted the whole SweepSearchCV; GridSearchCV records error_score for it."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, y = load_iris(return_X_y=True)
    grid = {"solver": ["lbfgs", "lm"]}
    base = BPNNClassifier(hidden_layer_sizes=(4,), max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(FitFailedWarning, match="3 fits failed out of a total of 6"):
            sweep = SweepSearchCV(base, grid, cv=3).fit(X, y)
        with pytest.warns(FitFailedWarning):
            theirs = GridSearchCV(base, grid, cv=3).fit(X, y)
        np.testing.assert_allclose(
            sweep.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=0.02
        )
        assert np.isnan(sweep.cv_results_["mean_test_score"][1])
        assert sweep.best_params_ == {"solver": "lbfgs"}
        with pytest.raises(ValueError, match="minimises a sum of squared residuals"):
            SweepSearchCV(base, grid, cv=3, error_score="raise").fit(X, y)


def test_a_float64_fit_refuses_to_predict_where_float64_is_off():
    """Unpickled in a process without jax_enable_x64, a dtype='float64' estimator predicted
    in float32 (7e-7 off) without a word, where partial_fit and fit refuse."""
    import pickle

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    with jax.enable_x64(True):
        est = BPNNRegressor((4,), dtype="float64", max_iter=5, random_state=0).fit(X, y)
        want = est.predict(X)
    again = pickle.loads(pickle.dumps(est))
    with pytest.raises(ValueError, match="fitted with dtype='float64', and JAX's float64 is off"):
        again.predict(X)
    with pytest.raises(ValueError, match="float64 is off"):
        again.score(X, y)
    with jax.enable_x64(True):
        assert np.array_equal(again.predict(X), want)


def test_a_float64_set_after_a_float32_fit_predicts_in_the_fitted_dtype():
    # predict checked the dtype set since, not the fitted one: "fitted with dtype='float64',
    # and JAX's float64 is off" for a float32 fit (the docstring: predict goes on in float32)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    est = BPNNRegressor((4,), max_iter=5, random_state=0).fit(X, y)
    want = est.predict(X)
    assert np.array_equal(est.set_params(dtype="float64").predict(X), want)


def test_partial_fit_takes_a_sparse_multilabel_y_as_fit_does():
    """MLPClassifier.partial_fit tests type_of_target: a sparse indicator matrix is
    multilabel. jbpnn's np.asarray(y).ndim read it as 0-d and fitted the binarizer on
    ``classes`` as multiclass ("The object was not fitted with multilabel input")."""
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.rand(30, 4)
    Y = (np.random.RandomState(1).rand(30, 3) > 0.5).astype(int)
    kw = dict(random_state=0, hidden_layer_sizes=(5,))
    dense = BPNNClassifier(**kw).partial_fit(X, Y, classes=[0, 1, 2])
    for matrix in (sp.csr_matrix(Y), sp.csc_array(Y)):
        est = BPNNClassifier(**kw).partial_fit(X, matrix, classes=[0, 1, 2])
        assert est.n_outputs_ == 3
        assert_array_equal(est.predict_proba(X), dense.predict_proba(X))
    assert MLPClassifier(**kw).partial_fit(X, sp.csr_matrix(Y), classes=[0, 1, 2]).n_outputs_ == 3


def test_regressor_refuses_text_targets():
    """NumPy read numbers written as text ("1.5") as numbers: BPNNRegressor trained on them
    silently (MLPRegressor fails on them)."""
    X = np.random.RandomState(0).rand(20, 3)
    with pytest.raises(ValueError, match=r"y holds text \(dtype <U\d+\): BPNNRegressor fits"):
        BPNNRegressor(max_iter=2).fit(X, X.sum(1).astype(str))
    with pytest.raises(ValueError, match="y holds text"):
        BPNNRegressor(max_iter=2).partial_fit(X, X.sum(1).astype(bytes))


def test_lbfgs_t_and_best_loss_as_scikit_learn_reads_them(digits):
    """scikit-learn's lbfgs leaves t_ at 0 (jbpnn counted n_iter_ * n samples), and
    best_loss_ (jbpnn's, the lowest loss) was above loss_ (the final weights' loss, which the
    curve of each iteration's starting loss does not hold)."""
    X, y = digits
    est = BPNNClassifier(solver="lbfgs", max_iter=30, random_state=0).fit(X, y)
    assert est.t_ == 0 and MLPClassifier(solver="lbfgs", max_iter=2).fit(X, y).t_ == 0
    assert est.best_loss_ <= est.loss_ and est.best_loss_ <= min(est.loss_curve_)


def _attributes(est):
    """The estimator's attributes, comparable: arrays as lists."""
    out = {}
    for k, v in vars(est).items():
        if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
            v = [a.tolist() for a in v]
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v if isinstance(v, (int, float, str, list, tuple, type(None))) else id(v)
    return out


def test_a_refused_or_interrupted_refit_leaves_the_estimator_as_it_was(monkeypatch):
    # the refit encoded its new labels (classes_) before a later check refused its weights,
    # or before Ctrl-C: predict then named the old network's classes by the new labels
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = (X[:, 0] > 0).astype(int) + (X[:, 2] > 1)
    est = BPNNClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    before, predicted = _attributes(est), est.predict(X)
    w = np.ones(len(y))
    w[0] = -1.0
    with pytest.raises(ValueError, match="sample_weight"):
        est.fit(X, np.array(["cat", "dog", "eel"])[y], sample_weight=w)
    assert _attributes(est) == before and list(est.classes_) == [0, 1, 2]
    assert_array_equal(est.predict(X), predicted)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("jbpnn.sklearn.train", interrupted)
    for call in (
        lambda: est.fit(X, np.array(["a", "b", "c"])[y]),
        lambda: est.partial_fit(X, y),
    ):
        with pytest.raises(KeyboardInterrupt):
            call()
        assert _attributes(est) == before
    assert_array_equal(est.predict(X), predicted)


def test_a_diverging_epoch_is_not_counted_and_a_call_that_keeps_none_raises():
    # the diverging epoch is undone (its params are not kept): it was counted in n_iter_
    # and t_ and its loss recorded; a partial_fit whose one epoch diverged changed nothing
    # while t_ grew and loss_curve_ gained an inf, call after call
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = X @ rng.randn(4) * 100
    est = BPNNRegressor(
        hidden_layer_sizes=(5,), max_iter=20, random_state=0, solver="sgd", learning_rate_init=10.0
    )
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 2"):
        est.fit(X, y)
    assert est.stop_reason_ == "diverged" and est.n_iter_ == 1 and est.t_ == 100
    assert len(est.loss_curve_) == 1 and np.all(np.isfinite(est.loss_curve_))
    assert est.loss_ == est.best_loss_ == est.loss_curve_[-1]
    before = _attributes(est)
    with pytest.raises(ValueError, match="diverged in the first epoch of this partial_fit"):
        est.partial_fit(X, y)
    assert _attributes(est) == before
    fresh = BPNNRegressor(hidden_layer_sizes=(5,), random_state=0, solver="sgd")
    with pytest.raises(ValueError, match="diverged in the first epoch of this fit"):
        fresh.set_params(learning_rate_init=1e6).fit(X * 1e3, y)
    assert not hasattr(fresh, "coefs_")


def test_a_sweep_network_that_diverges_at_once_fails_as_its_fit_does():
    # GridSearchCV's fit of such a candidate raises (error_score); the sweep's must too
    from sklearn.exceptions import FitFailedWarning

    rng = np.random.RandomState(0)
    X = rng.randn(60, 3) * 1e3
    y = (X[:, 0] > 0).astype(int)
    base = BPNNClassifier(
        hidden_layer_sizes=(4,), solver="sgd", max_iter=3, batch_size=4, random_state=0
    )
    grid = {"learning_rate_init": [1e-6, 1e6]}
    searches = []
    for Search in (GridSearchCV, SweepSearchCV):
        with pytest.warns(FitFailedWarning, match="diverged in the first epoch of this fit"):
            searches.append(Search(base, grid, cv=3).fit(X, y))
    grid_scores, sweep_scores = (s.cv_results_["mean_test_score"] for s in searches)
    assert np.isnan(grid_scores[1]) and np.isnan(sweep_scores[1])
    assert_allclose(sweep_scores[0], grid_scores[0])


def test_a_pickle_of_another_jbpnn_version_warns():
    # the pickles recorded no jbpnn version: one from a newer jbpnn unpickled silently
    import pickle

    X = np.random.RandomState(0).randn(20, 3)
    est = BPNNRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, X[:, 0])
    state = est.__getstate__()
    assert state["_jbpnn_version"] == jbpnn.__version__ and "_jbpnn_version" not in vars(est)
    back = pickle.loads(pickle.dumps(est))
    assert "_jbpnn_version" not in vars(back)
    assert_array_equal(back.predict(X), est.predict(X))
    state["_jbpnn_version"] = "99.0"
    fresh = BPNNRegressor.__new__(BPNNRegressor)
    with pytest.warns(UserWarning, match="pickled by jbpnn 99.0 and is unpickled by jbpnn"):
        fresh.__setstate__(state)


def _fake_memory(monkeypatch, limit: int) -> None:
    import jbpnn.memory
    import jbpnn.training

    fake = lambda device=None: (limit, "fake available memory")  # noqa: E731
    monkeypatch.setattr(jbpnn.memory, "available_memory", fake)
    if hasattr(jbpnn.training, "available_memory"):
        monkeypatch.setattr(jbpnn.training, "available_memory", fake)


def _mixed_sweep() -> tuple:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 20)).astype(np.float32)
    y = X[:, 0] + 0.1 * rng.standard_normal(3000)
    base = BPNNRegressor(hidden_layer_sizes=(50,), max_iter=3, activation="tanh")
    grid = {"solver": ["adam", "lm"], "alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 2.0, 3.0]}
    return SweepSearchCV(base, grid, cv=5), X, y


def test_sweep_memory_check_estimates_each_group_with_its_own_solver(monkeypatch):
    # {"solver": ["adam", "lm"]}: the pre-check sized adam's group only, then train_many
    # refused lm's 40 networks (J^T J) and the sweep scored them NaN with a warning
    from jbpnn.memory import EnsembleTooLarge

    _fake_memory(monkeypatch, 800 * 2**20)
    search, X, y = _mixed_sweep()
    with pytest.raises(EnsembleTooLarge, match="solver='lm'.*normal_equations"):
        search.fit(X, y)
    assert not hasattr(search, "sweep_calls_")  # refused before any network was trained


def test_sweep_memory_refusal_is_not_a_failed_fit(monkeypatch):
    # a memory refusal inside train_many is raised, never error_score with a warning
    from jbpnn.memory import EnsembleTooLarge

    _fake_memory(monkeypatch, 800 * 2**20)
    monkeypatch.setattr(SweepSearchCV, "_check_size", lambda self, *a: None)
    search, X, y = _mixed_sweep()
    with pytest.raises(EnsembleTooLarge, match=r"J\^T J"):
        search.fit(X, y)


@pytest.mark.parametrize(
    "settings",
    [{"dtype": np.float64}, {"early_stopping": True}, {"solver": "lbfgs"}, {"solver": "lm"}],
)
def test_sweep_memory_pre_check_is_at_least_train_manys_estimate(monkeypatch, settings):
    # the pre-check used adam float32 mini-batches whatever the grid: 0.50 of train_many's
    # own per-network estimate with float64, 0.86 with early stopping, 0.25 lbfgs, 0.23 lm
    import warnings

    import jbpnn.many
    import jbpnn.memory
    import jbpnn.sklearn

    seen = []
    real = jbpnn.memory.check_memory
    spy = lambda est, *a, **k: seen.append(est) or real(est, *a, **k)  # noqa: E731
    monkeypatch.setattr(jbpnn.sklearn, "check_memory", spy)
    monkeypatch.setattr(jbpnn.many, "check_memory", spy)
    rng = np.random.default_rng(0)
    settings = dict(settings)
    X = rng.standard_normal((2000, 20)).astype(settings.pop("dtype", np.float32))
    y = X[:, 0] + 0.1 * rng.standard_normal(2000)
    base = BPNNRegressor(hidden_layer_sizes=(32,), max_iter=2, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SweepSearchCV(base, {"alpha": [1e-4, 1e-3]}, cv=2).fit(X, y)
    pre, actual = seen[0], seen[1]
    assert pre.n_networks == actual.n_networks == 4
    assert pre.per_network >= actual.per_network, (pre.parts, actual.parts)
    assert pre.shared >= actual.shared


def test_sparse_input_is_densified_in_its_own_dtype(monkeypatch):
    # the check assumed two float64 copies whatever the input: a float32 matrix whose
    # one dense copy fits was refused
    import scipy.sparse as sp

    from jbpnn.memory import ArrayTooLarge
    from jbpnn.sklearn import _dense

    _fake_memory(monkeypatch, 1500)  # 90%: 1350 bytes
    X = sp.random(20, 12, density=0.3, format="csr", dtype=np.float32, random_state=0)
    assert _dense(X, np.dtype(np.float32)).dtype == np.float32  # 960 bytes, one copy
    with pytest.raises(
        ArrayTooLarge, match=r"float32 array of shape \(20, 12\) and a float64 copy"
    ):
        _dense(X, np.dtype(np.float64))  # and its float64 copy: 2880 bytes

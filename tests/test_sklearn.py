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
    ):
        for item in estimator_checks_generator(est, mark="xfail"):
            estimator, check = getattr(item, "values", item)
            name = check.func.__name__
            if name in _LBFGS_CHECKS:
                yield pytest.param(estimator, check, id=f"{type(est).__name__}-lbfgs-{name}")


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
    opt = jbpnn.momentum(jbpnn.optimizers.inverse_scaling(0.05, 0.25), 0.5, "classical", alpha=1e-3)
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
    best = int(reg.state_.best_epoch)  # variance-weighted R^2 from the core's val_loss
    assert_allclose(reg.best_validation_score_, reg.validation_scores_[best - 1], atol=1e-5)


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
        (dict(solver="newton"), "solver must be 'sgd', 'adam' or 'lbfgs'"),
        (dict(solver="lbfgs", max_fun=0), "max_fun must be an integer >= 1"),
        (dict(solver="sgd", momentum=1.0), "momentum must be"),
        (dict(activation="softplus"), "activation must be one of"),
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

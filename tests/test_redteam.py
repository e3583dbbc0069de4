"""Issue 20's red-team defects: each input that used to fail deep inside JAX, NumPy or
Python (or, worse, to run) is refused up front with a message naming the argument, what
was wrong and what was expected. One small test per defect, each failing before its fix."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import one_line_error, run_cli, write_flowers

import jbpnn
from jbpnn.activations import ACTIVATIONS
from jbpnn.many import InitSpec, stack_params
from jbpnn.optimizers import sgd
from jbpnn.params import MLP, Layer

X3 = np.linspace(0, 1, 12, dtype=np.float32).reshape(4, 3)
Y1 = np.array([[0.0], [1.0], [1.0], [0.0]], np.float32)


# ---------------------------------------------------------------- 1, 2: a directly built MLP
def test_layers_that_do_not_chain_are_refused_naming_the_layer_and_shapes():
    bad = MLP(
        [Layer(jnp.ones((3, 4)), jnp.ones(4)), Layer(jnp.ones((5, 2)), jnp.ones(2))],
        ("sigmoid", "sigmoid"),
        "mse",
    )
    for call, name in (
        (lambda: jbpnn.predict(bad, X3), "predict"),
        (lambda: jbpnn.apply(bad, X3), "apply"),
        (lambda: jbpnn.forward(bad, X3[0]), "forward"),
    ):
        with pytest.raises(
            ValueError, match=rf"{name}: .*layer 1's w has shape \(5, 2\).*\(3, 4\)"
        ):
            call()


def test_unknown_activation_of_a_direct_mlp_lists_the_known_names():
    bad = MLP([Layer(jnp.ones((3, 1)), jnp.ones(1))], ("nosuch",), "mse")
    for call in (lambda: jbpnn.predict(bad, X3), lambda: jbpnn.forward(bad, X3[0])):
        with pytest.raises(ValueError, match="layer 0: unknown activation 'nosuch'") as info:
            call()
        assert all(repr(name) in str(info.value) for name in ACTIVATIONS)  # the registry's


# ---------------------------------------------------------------- 3, 4: devices and meshes
def test_devices_true_is_refused_saying_what_devices_accepts():
    p = jbpnn.init_params(0, (3, 2, 1))
    expected = r"devices must be None .*a count .*list of jax devices.*got bool True"
    with pytest.raises(ValueError, match=expected):
        jbpnn.train(p, X3, Y1, optimizer=sgd(0.1), epochs=1, devices=True)
    with pytest.raises(ValueError, match=expected):
        jbpnn.train_many(
            InitSpec((3, 2, 1)), X3, Y1, seeds=[0, 1], optimizer=sgd(0.1), epochs=1, devices=True
        )


def test_a_mesh_with_a_manual_axis_is_refused_up_front():
    AxisType = pytest.importorskip("jax.sharding").__dict__.get("AxisType")
    if AxisType is None or not hasattr(AxisType, "Manual"):
        pytest.skip("this jax has no AxisType.Manual")
    from jax.sharding import Mesh

    mesh = Mesh(np.array(jax.devices()[:1]), ("data",), axis_types=(AxisType.Manual,))
    p = jbpnn.init_params(0, (3, 2, 1))
    with pytest.raises(
        ValueError, match="mesh: axis 'data' has axis type Manual.*Auto or Explicit"
    ):
        jbpnn.train(p, X3, Y1, optimizer=sgd(0.1), epochs=1, mesh=mesh)
    with pytest.raises(ValueError, match="axis type Manual"):
        jbpnn.train_many(
            InitSpec((3, 2, 1)), X3, Y1, seeds=[0, 1], optimizer=sgd(0.1), epochs=1, mesh=mesh
        )


# ---------------------------------------------------------------- 5: an edited checkpoint
def test_checkpoint_with_an_out_of_range_stop_code_names_the_file_and_field(tmp_path):
    from jbpnn.stopping import stop_reason_name

    run = jbpnn.train(jbpnn.init_params(0, (3, 2, 1)), X3, Y1, optimizer=sgd(0.1), epochs=1)
    good, edited = tmp_path / "ck.npz", tmp_path / "edited.npz"
    jbpnn.save(good, run.state, optimizer=sgd(0.1))
    entries = dict(np.load(good, allow_pickle=False))
    entries["state/stop"] = np.array(99, entries["state/stop"].dtype)
    np.savez(edited, **entries)
    with pytest.raises(ValueError, match=r"edited\.npz.*state/stop holds the stop code 99"):
        jbpnn.load(edited)
    with pytest.raises(ValueError, match="stop code 99; expected -1"):
        stop_reason_name(99)
    # impossible counters loaded and resumed as epoch -3
    for name, value, words in (
        ("state/epoch", -5, "state/epoch holds -5; expected a count >= 0"),
        ("state/step", -1, "state/step holds -1; expected a count >= 0"),
        ("state/best_epoch", 7, "state/best_epoch lies after state/epoch"),
        ("state/lr_scale", 0.0, r"state/lr_scale holds 0\.0; expected a factor > 0"),
    ):
        changed = dict(np.load(good, allow_pickle=False))
        changed[name] = np.array(value, changed[name].dtype)
        np.savez(edited, **changed)
        with pytest.raises(ValueError, match=words):
            jbpnn.load(edited)


# ---------------------------------------------------------------- 6: mixed label types
def test_classifier_labels_mixing_strings_with_none_or_numbers_are_refused():
    from jbpnn.sklearn import BPNNClassifier

    X = np.random.default_rng(0).random((6, 2))
    clf = BPNNClassifier(hidden_layer_sizes=(2,), max_iter=1)
    with pytest.raises(ValueError, match="y holds None at index 2"):
        clf.fit(X, np.array(["a", "b", None, "a", "b", "a"], dtype=object))
    with pytest.raises(ValueError, match=r"Mix of label input types \(string and number\)"):
        clf.fit(X, np.array(["a", "b", 1, "a", "b", 2], dtype=object))
    with pytest.raises(ValueError, match="Mix of label input types .* in classes"):
        clf.partial_fit(X, ["a"] * 6, classes=np.array(["a", 0], dtype=object))


# ---------------------------------------------------------------- 7, 8, 13: SweepSearchCV
def _search(**kw):
    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    est = BPNNClassifier(hidden_layer_sizes=(2,), max_iter=2, random_state=0)
    return SweepSearchCV(est, {"alpha": [1e-4]}, **kw)


XS = np.random.default_rng(1).random((12, 2))
YS = np.array([0, 1] * 6)
FOLDS = [(np.arange(8), np.arange(8, 12)), (np.arange(4, 12), np.arange(4))]


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_sweep_cv_takes_boolean_masks_and_refuses_indices_out_of_range(quiet):
    masks = []
    for tr, te in FOLDS:
        m = np.zeros(12, bool)
        m[tr] = True
        masks.append((m, ~m))
    by_index = _search(cv=FOLDS, refit=False).fit(XS, YS).cv_results_
    by_mask = _search(cv=masks, refit=False).fit(XS, YS).cv_results_
    for k in range(2):  # as GridSearchCV: a mask selects the same rows as its indices
        assert by_mask[f"split{k}_test_score"] == by_index[f"split{k}_test_score"]
    bad = [FOLDS[0], (np.arange(8), np.array([8, 9, 12]))]
    with pytest.raises(ValueError, match=r"cv fold 1: test indices run from 8 to 12, but X has 12"):
        _search(cv=bad).fit(XS, YS)
    with pytest.raises(ValueError, match=r"cv fold 0: the train mask has shape \(5,\)"):
        _search(cv=[(np.ones(5, bool), masks[0][1])]).fit(XS, YS)


def test_sweep_multimetric_scoring_as_gridsearchcv(quiet):
    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import BPNNClassifier

    scoring = {"acc": "accuracy", "bal": "balanced_accuracy"}
    search = _search(cv=FOLDS, scoring=scoring, refit="bal").fit(XS, YS)
    est = BPNNClassifier(hidden_layer_sizes=(2,), max_iter=2, random_state=0)
    grid = GridSearchCV(est, {"alpha": [1e-4]}, cv=FOLDS, scoring=scoring, refit="bal")
    grid.fit(XS, YS)
    assert list(search.cv_results_) == list(grid.cv_results_)
    assert search.multimetric_ and set(search.scorer_) == {"acc", "bal"}
    assert search.best_score_ == pytest.approx(grid.best_score_, abs=1e-6)
    assert search.score(XS, YS) == pytest.approx(grid.score(XS, YS), abs=1e-6)
    listed = _search(cv=FOLDS, scoring=["accuracy", "f1"], refit=False).fit(XS, YS)
    assert "mean_test_f1" in listed.cv_results_ and not hasattr(listed, "best_index_")
    with pytest.raises(ValueError, match="For multi-metric scoring, the parameter refit"):
        _search(cv=FOLDS, scoring=scoring).fit(XS, YS)  # refit=True names no metric


def test_all_zero_training_weights_are_refused_per_network_and_fail_their_folds(quiet):
    weights = np.ones(12)
    weights[:6] = 0
    with pytest.raises(
        ValueError, match=r"network 0: sample_weight is 0 on every row of rows\[0\]"
    ):
        jbpnn.train_many(
            InitSpec((2, 2, 1)),
            XS.astype(np.float32),
            YS[:, None].astype(np.float32),
            seeds=[0, 1],
            optimizer=sgd(0.1),
            epochs=1,
            rows=[np.arange(6), np.arange(6, 12)],
            sample_weight=weights,
        )
    # a fold whose training weights are all 0: its fits fail (error_score, a
    # FitFailedWarning), the other folds' scores stand, as GridSearchCV's (the whole
    # search was refused)
    from sklearn.model_selection import GridSearchCV

    folds = [(np.arange(6, 12), np.arange(6)), (np.arange(6), np.arange(6, 12))]
    search = _search(cv=folds).fit(XS, YS, sample_weight=weights)
    grid = GridSearchCV(_search().estimator, {"alpha": [1e-4]}, cv=folds)
    grid.fit(XS, YS, sample_weight=weights)
    for k in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_allclose(search.cv_results_[k], grid.cv_results_[k], atol=1e-6)
    assert np.isnan(search.cv_results_["split1_test_score"]).all()
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        _search(cv=folds, error_score="raise").fit(XS, YS, sample_weight=weights)


def test_a_validation_split_a_fold_cannot_give_fails_that_candidate_only(quiet):
    # early stopping whose validation_fraction leaves one row for two classes: that
    # candidate's fits fail (error_score) and the other candidate trains, as in
    # GridSearchCV (the split's error escaped and ended the whole search)
    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = BPNNClassifier(
        hidden_layer_sizes=(5,),
        max_iter=8,
        random_state=0,
        early_stopping=True,
        n_iter_no_change=2,
    )
    grid = {"validation_fraction": [0.02, 0.2]}
    search = SweepSearchCV(est, grid, cv=3).fit(X, y)
    want = GridSearchCV(est, grid, cv=3).fit(X, y)
    got = search.cv_results_["mean_test_score"]
    np.testing.assert_allclose(got, want.cv_results_["mean_test_score"], atol=1e-6)
    assert np.isnan(got[0]) and search.best_params_ == want.best_params_
    with pytest.raises(ValueError, match="test_size = 1 should be greater or equal"):
        SweepSearchCV(est, grid, cv=3, error_score="raise").fit(X, y)


def test_a_pipeline_whose_steps_give_folds_different_widths_trains_each_width_apart(quiet):
    # a OneHotEncoder meeting a category in some folds' training rows only, a
    # VarianceThreshold dropping a column constant on some folds' training rows: the folds
    # have different widths, so they cannot share one table (np.concatenate failed)
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.RandomState(5)
    X = rng.randn(90, 4)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    net = BPNNClassifier(hidden_layer_sizes=(6,), max_iter=8, random_state=0)
    grid = {"net__alpha": [1e-4, 1.0]}
    codes = np.c_[rng.randint(0, 3, 90), rng.randint(0, 2, 90)].astype(float)
    codes[:30, 0] = 3  # a category in the first fold only
    flat = X.copy()
    flat[30:, 3] = 0.0  # constant on the last fold's training rows
    for head, data in (
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), codes),
        (VarianceThreshold(), flat),
    ):
        pipe = Pipeline([("head", head), ("net", net)])
        search = SweepSearchCV(pipe, grid, cv=KFold(3)).fit(data, y)
        want = GridSearchCV(pipe, grid, cv=KFold(3)).fit(data, y)
        for k in ("split0_test_score", "split1_test_score", "split2_test_score"):
            np.testing.assert_allclose(search.cv_results_[k], want.cv_results_[k], atol=1e-6)
        assert search.best_params_ == want.best_params_
        assert len(search.sweep_calls_) == 2  # two widths: two train_many calls
        np.testing.assert_array_equal(search.predict(data), want.predict(data))


# ---------------------------------------------------------------- 9, 10: the command line
def test_predict_with_stdout_closed_is_one_line_and_other_commands_exit_quietly(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_flowers(tmp_path)
    train = ("train", "--data", "flowers.csv", "--target", "colour", "--hidden", "2")
    rc, _, err = run_cli(capsys, *train, "--epochs", "1", "--save", "m.npz")
    assert rc == 0, err
    monkeypatch.setattr(sys, "stdout", None)  # what Python sets when started with >&-
    rc, _, err = run_cli(capsys, "predict", "m.npz", "flowers.csv")
    one_line_error(rc, err, "jbpnn predict: error: stdout is closed", "--out")
    rc, _, err = run_cli(capsys, "predict", "m.npz", "flowers.csv", "--out", "p.txt")
    assert rc == 0 and len((tmp_path / "p.txt").read_text().split()) == 90, err
    rc, _, err = run_cli(capsys, *train, "--epochs", "1")  # as for a closed pipe: quiet
    assert (rc, err) == (0, "")


def test_no_home_directory_leaves_the_compilation_cache_off(capsys, tmp_path, monkeypatch):
    from jbpnn import compilation_cache

    for name in ("HOME", "XDG_CACHE_HOME", "JBPNN_CACHE_DIR", "JBPNN_NO_CACHE"):
        monkeypatch.delenv(name, raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    before = jax.config.jax_compilation_cache_dir
    assert compilation_cache.cache_dir() is None
    assert compilation_cache.enable_compilation_cache() is None
    rc, _, err = run_cli(capsys, "predict", tmp_path / "none.npz", tmp_path / "none.csv")
    one_line_error(rc, err, "jbpnn predict: error:", "none.npz")
    assert jax.config.jax_compilation_cache_dir == before


# ---------------------------------------------------------------- 11: stacked params
def test_stacked_params_are_refused_where_one_network_is_expected():
    one = jbpnn.init_params(0, (3, 2, 1))
    stacked = stack_params([one, one, one])  # 3 networks of 3 inputs: shapes alone pass
    hint = r"takes ONE network .* a stack of 3 networks .*result\[i\]\.params.*jax\.vmap"
    for call, name in (
        (lambda: jbpnn.predict(stacked, X3), "predict"),
        (lambda: jbpnn.forward(stacked, X3[0]), "forward"),
        (lambda: jbpnn.loss(stacked, X3, Y1), "loss"),
        (lambda: jbpnn.batch_gradient(stacked, X3, Y1), "batch_gradient"),
        (lambda: jbpnn.train(stacked, X3, Y1, optimizer=sgd(0.1), epochs=1), "train"),
    ):
        with pytest.raises(ValueError, match=name + " " + hint):
            call()
    # the advice works: vmap over the stack gives each network's predictions
    out = jax.vmap(jbpnn.predict, in_axes=(0, None))(stacked, X3)
    np.testing.assert_allclose(out[1], jbpnn.predict(one, X3), rtol=1e-6)


# ---------------------------------------------------------------- 12: warm_start after set_params
def test_warm_start_after_set_params_uses_the_new_activation_as_mlpclassifier(quiet):
    from jbpnn.sklearn import BPNNClassifier

    X = np.random.default_rng(2).random((20, 2))
    y = (X[:, 0] > 0.5).astype(int)
    clf = BPNNClassifier(hidden_layer_sizes=(3,), max_iter=2, warm_start=True, random_state=0)
    clf.fit(X, y).set_params(activation="tanh")
    (w0, w1), (b0, b1) = clf.coefs_, clf.intercepts_
    by_hand = 1 / (1 + np.exp(-(np.tanh(X @ w0 + b0) @ w1 + b1)))  # MLPClassifier's forward
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], by_hand.ravel(), rtol=1e-5)
    clf.fit(X, y)  # the existing weights go on training with the new activation
    assert (
        clf.params_.activations == ("tanh", "sigmoid") and clf.get_params()["activation"] == "tanh"
    )
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 4


def test_warm_start_after_set_params_dtype_trains_in_the_new_dtype(x64, quiet):
    from jbpnn.sklearn import BPNNClassifier

    X = np.random.default_rng(3).random((20, 2))
    y = (X[:, 0] > 0.5).astype(int)
    clf = BPNNClassifier(hidden_layer_sizes=(3,), max_iter=2, warm_start=True, random_state=0)
    clf.fit(X, y).set_params(dtype="float64")
    coefs = [c.copy() for c in clf.coefs_]
    clf.fit(X, y)
    assert clf.params_.dtype == np.float64 and clf.coefs_[0].dtype == np.float64
    assert not np.allclose(clf.coefs_[0], coefs[0])  # trained on from the fitted weights


def test_sweep_that_cannot_fit_is_refused_before_any_network_is_set_up(monkeypatch):
    """10**6 candidates x 3 folds ran for minutes before: now refused before a single job is
    set up, naming the candidates, folds, networks of the largest train_many call and its
    memory."""
    import jbpnn.sklearn as jsk
    from jbpnn.memory import EnsembleTooLarge

    def no_job(*args, **kw):
        raise AssertionError("a job was set up before the size check")

    monkeypatch.setattr(jsk, "_settings", no_job)
    X = np.random.default_rng(0).normal(size=(300, 8))
    y = (X[:, 0] > 0).astype(int)
    grid = {"alpha": np.logspace(-6, 0, 10**6)}
    with pytest.raises(EnsembleTooLarge, match=r"1000000 candidates x 3 folds.*3000000 networks"):
        jsk.SweepSearchCV(jsk.BPNNClassifier(max_iter=5), grid, cv=3).fit(X, y)


def test_train_refuses_finite_inputs_and_weights_that_overflow_float32():
    """X = 1e39 (finite in float64) and sample weights whose float32 sum overflows (each
    1e38, the weighted mean's divisor 4e38): refused before training, naming the argument
    and the dtype (the weights once trained silently on a divisor of inf)."""
    params = jbpnn.init_params(0, (2, 3, 1))
    Y = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"X has values too large for float32"):
        jbpnn.train(params, np.full((4, 2), 1e39), Y, optimizer=jbpnn.sgd(0.1), epochs=1)
    with pytest.raises(ValueError, match=r"sample_weight: the weights sum to 4e\+38.*float32"):
        jbpnn.train(
            params,
            np.ones((4, 2)),
            Y,
            optimizer=jbpnn.sgd(0.1),
            epochs=1,
            sample_weight=np.full(4, 1e38),
        )


def test_sweep_takes_gridsearchcv_arguments_with_their_meaning(capsys):
    """n_jobs, pre_dispatch, verbose, error_score and return_train_score (a TypeError before):
    the same cv_results_ keys in the same order and the same train scores as GridSearchCV;
    a scorer that raises (f1 on three classes) records error_score with a warning instead
    of throwing the sweep away, or raises with error_score='raise'."""
    import warnings

    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    base = BPNNClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    grid = {"alpha": [1e-4, 1e-2]}
    kw = dict(cv=3, return_train_score=True, n_jobs=2, pre_dispatch=4, error_score=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(base, grid, verbose=1, **kw).fit(X, y)
        search = GridSearchCV(base, grid, **kw).fit(X, y)
    assert "Fitting 3 folds for each of 2 candidates, totalling 6 fits" in capsys.readouterr().out
    assert list(sweep.cv_results_) == list(search.cv_results_)
    np.testing.assert_allclose(
        sweep.cv_results_["mean_train_score"], search.cv_results_["mean_train_score"], atol=0.02
    )
    with pytest.warns(UserWarning, match="Scoring failed"):
        failed = SweepSearchCV(base, grid, scoring="f1", cv=3).fit(X, y)
    assert np.isnan(failed.cv_results_["mean_test_score"]).all()
    with pytest.raises(ValueError, match="average"):
        SweepSearchCV(base, grid, scoring="f1", cv=3, error_score="raise").fit(X, y)


def test_sweep_takes_a_pipeline_and_fits_its_preceding_steps_per_fold_as_gridsearchcv():
    """A scaler before the network (a TypeError before, so users scaled outside the search,
    leaking the test folds into the scaler): per fold the scaler is fitted on the training
    rows only; the scores, keys and best parameters equal GridSearchCV's, and the networks
    of every fold still train in one train_many call per scaler setting."""
    import warnings

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 1]
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 5)
    net = BPNNClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("net", net)])
    grid = {"scale__with_mean": [True, False], "net__alpha": [1e-4, 1e-2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(pipe, grid, cv=3).fit(X, y)
        search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert list(sweep.cv_results_) == list(search.cv_results_)
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=0.02
    )
    assert sweep.best_params_ == search.best_params_
    assert isinstance(sweep.best_estimator_, Pipeline)
    assert [call["networks"] for call in sweep.sweep_calls_] == [6, 6]
    with pytest.raises(TypeError, match="last step is StandardScaler"):
        SweepSearchCV(Pipeline([("net", net), ("scale", StandardScaler())]), {}, cv=3).fit(X, y)


def test_sweep_pipelines_as_gridsearchcv_or_refused():
    """Found by a red-team pass: a grid over the last step itself was ignored (both
    candidates scored with the pipeline's own network); the grid's scaler objects were
    fitted in place and shared with best_estimator_; a pipeline of the network alone
    raised AttributeError; head settings grouped by repr trained one with another's
    steps when reprs read alike (long arrays); a callable scorer got the network and the
    transformed rows; verbose printed one line per head setting."""
    import warnings

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)
    net = BPNNClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("net", net)])
    with pytest.raises(ValueError, match="replaces the Pipeline's last step 'net'"):
        SweepSearchCV(pipe, {"net": [net, clone(net).set_params(alpha=0.1)]}, cv=3).fit(X, y)
    with pytest.raises(ValueError, match="callable scoring with a Pipeline"):
        SweepSearchCV(pipe, {"net__alpha": [1e-4]}, scoring=lambda e, X, y: 0.0, cv=3).fit(X, y)
    scalers = [StandardScaler(), MinMaxScaler()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(pipe, {"scale": scalers}, cv=3, verbose=1).fit(X, y)
        alone = SweepSearchCV(Pipeline([("net", net)]), {"net__alpha": [1e-4, 1e-1]}, cv=3)
        search = GridSearchCV(Pipeline([("net", net)]), {"net__alpha": [1e-4, 1e-1]}, cv=3)
        alone.fit(X, y), search.fit(X, y)
    assert not any(hasattr(s, "mean_") or hasattr(s, "data_min_") for s in scalers)
    assert sweep.best_estimator_.named_steps["scale"] not in scalers
    np.testing.assert_allclose(
        alone.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=0.02
    )
    # two weight matrices whose reprs are the same (NumPy abbreviates long arrays)
    W1 = np.ones(2000)
    W2 = W1.copy()
    W2[1000] = 0.0
    assert repr(W1) == repr(W2)
    f = FunctionTransformer(lambda Z, W: Z * W[: Z.shape[1]] * (W[1000] if W[1000] else 0))
    grid = {"f__kw_args": [{"W": W1}, {"W": W2}]}
    two = Pipeline([("f", f), ("net", net)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(two, grid, cv=3).fit(X, y)
        search = GridSearchCV(two, grid, cv=3).fit(X, y)
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=0.02
    )
    assert len(sweep.sweep_calls_) == 2  # one per setting of the steps before the network


@pytest.mark.parametrize(
    "bad",
    [
        {"error_score": "0.5"},
        {"error_score": "rasie"},
        {"error_score": None},
        {"n_jobs": "many"},
        {"return_train_score": "yes"},
        {"refit": 2},
        {"pre_dispatch": [1]},
        {"verbose": "loud"},
    ],
)
def test_sweep_checks_its_own_arguments_as_gridsearchcv(bad):
    """error_score='0.5' was stored as the score 0.5 (a failing candidate won); the others
    were accepted or failed inside."""
    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2
    with pytest.raises(ValueError, match=next(iter(bad))):
        SweepSearchCV(BPNNClassifier(max_iter=1), {"alpha": [1e-4]}, cv=2, **bad).fit(X, y)


def test_sweep_warns_of_non_finite_train_scores_as_gridsearchcv():
    import warnings

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2

    def scorer(est, X, y):
        if len(y) > 10:  # the training folds (20 rows; the test folds have 10)
            raise RuntimeError("no train score")
        return 0.5

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SweepSearchCV(BPNNClassifier(max_iter=1), {"alpha": [1e-4]}, cv=3, scoring=scorer,
                      return_train_score=True, error_score=np.nan).fit(X, y)  # fmt: skip
    assert any("train scores are non-finite" in str(w.message) for w in caught)


def test_function_api_refusals_and_traced_calls():
    """Found by a red-team pass of the function API: from_layers of a 2-layer network
    failed inside jit (the bare-pair check read tracers); jvp of one example failed under
    jit and vmap; accuracy read label 1.7 as class 1 and NaN as an IndexError; an MLP built
    directly with a loss its output unit is not exact with trained, and save wrote it over
    a good file that load then refused; unstack_params cut one network's rows into
    "networks"; stack_params stacked stacks; a complex vector was unflattened to its real
    part."""
    import jax
    import jax.numpy as jnp

    import jbpnn
    from jbpnn.many import stack_params, unstack_params
    from jbpnn.params import MLP

    X = jnp.ones((5, 3))
    p = jbpnn.init_params(0, (3, 4, 2), "tanh")

    def rebuilt(leaves):
        pairs = [(leaves[0], leaves[1]), (leaves[2], leaves[3])]
        return jbpnn.predict(MLP.from_layers(pairs, "tanh"), X)

    assert jax.jit(rebuilt)(jax.tree.leaves(p)).shape == (5, 2)
    assert jax.jit(jbpnn.jvp)(p, jnp.ones(3), p)[1].shape == (2,)
    assert jax.vmap(jbpnn.jvp, in_axes=(None, 0, None))(p, X, p)[1].shape == (5, 2)
    c = jbpnn.init_params(0, (3, 4, 3), "tanh", "cross_entropy")
    with pytest.raises(ValueError, match="labels must be whole numbers"):
        jbpnn.accuracy(c, np.ones((2, 3)), np.array([0.0, 1.7]))
    with pytest.raises(ValueError, match="labels must be whole numbers"):
        jbpnn.accuracy(c, np.ones((2, 3)), np.array([np.nan, 1.0]))
    assert jbpnn.accuracy(c, np.ones((2, 3)), np.array([0.0, 1.0])) in (0.0, 0.5, 1.0)
    bad = MLP(p.layers, p.activations, "cross_entropy")  # tanh outputs: not its pair
    with pytest.raises(ValueError, match="cannot be used with output activation 'tanh'"):
        jbpnn.loss(bad, np.ones((2, 3)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="may only be used on the output layer"):
        jbpnn.predict(MLP(p.layers, ("softmax", "tanh"), "mse"), np.ones((2, 3)))
    with pytest.raises(ValueError, match="unknown loss 'mae'"):
        jbpnn.predict(MLP(p.layers, p.activations, "mae"), np.ones((2, 3)))
    with pytest.raises(ValueError, match="unstack_params takes stacked networks"):
        unstack_params(p)
    with pytest.raises(ValueError, match="already a stack of 2"):
        stack_params([stack_params([p, p])] * 2)
    with pytest.raises(ValueError, match="article_mode=True"):
        stack_params([p, jbpnn.init_params(0, (3, 4, 2), "tanh", article_mode=True)])
    with pytest.raises(ValueError, match="complex values"):
        jbpnn.unflatten_params(p, np.asarray(jbpnn.flatten_params(p)) + 1j)


def test_save_refuses_what_load_would_refuse(tmp_path):
    import jbpnn
    from jbpnn.params import MLP

    p = jbpnn.init_params(0, (3, 4, 2), "tanh", "mse")
    path = tmp_path / "good.npz"
    jbpnn.save(path, p)
    with pytest.raises(ValueError, match="cannot be used with output activation"):
        jbpnn.save(path, MLP(p.layers, p.activations, "cross_entropy"))
    assert jbpnn.load(path).params.loss == "mse"  # the good file is kept


# ---------------------------------------------------------------- SweepSearchCV as GridSearchCV
def _sweep_and_grid(est, grid, X, y, fit_kw=None, **kw):
    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import SweepSearchCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(est, grid, **kw).fit(X, y, **(fit_kw or {}))
        search = GridSearchCV(est, grid, **kw).fit(X, y, **(fit_kw or {}))
    return sweep, search


def test_sweep_raises_as_gridsearchcv_when_every_fit_fails(quiet):
    """Every fit failing passed with refit=False (best_params_ a candidate that never
    trained) and failed later, in the refit, with refit=True; GridSearchCV raises."""
    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    d = jbpnn.load_digits()
    X, y = d.X[:60], d.y[:60]
    for refit in (False, True):
        sweep = SweepSearchCV(BPNNClassifier(max_iter=2), {"learning_rate_init": [-1.0, -2.0]},
                              cv=2, refit=refit)  # fmt: skip
        with pytest.raises(ValueError, match="All the 4 fits failed"):
            sweep.fit(X, y)


def test_sweep_records_error_score_where_a_pipelines_preceding_step_fails(quiet):
    """PCA(n_components=500) on 64 features raised out of the whole search; GridSearchCV
    records error_score for those candidates and picks among the others."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from jbpnn.sklearn import BPNNClassifier

    d = jbpnn.load_digits()
    X, y = d.X[:120], d.y[:120]
    net = BPNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    pipe = Pipeline([("sc", StandardScaler()), ("pca", PCA(random_state=0)), ("net", net)])
    grid = {"pca__n_components": [5, 500], "net__learning_rate_init": [0.01, 0.2]}
    sweep, search = _sweep_and_grid(pipe, grid, X, y, cv=2)
    mean = sweep.cv_results_["mean_test_score"]
    np.testing.assert_allclose(mean, search.cv_results_["mean_test_score"], atol=1e-6)
    assert np.isnan(mean).sum() == 2 and sweep.best_params_ == search.best_params_


def test_sweep_takes_sparse_input_as_its_estimator_and_gridsearchcv(quiet):
    import scipy.sparse as sp
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from jbpnn.sklearn import BPNNClassifier

    d = jbpnn.load_digits()
    X, y = d.X[:80], d.y[:80]
    net = BPNNClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    grid = {"learning_rate_init": [0.01, 0.1]}
    sweep, search = _sweep_and_grid(net, grid, sp.csr_matrix(X), y, cv=2)
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=1e-6
    )
    # a OneHotEncoder's sparse output reaches the networks' inner sweep
    pipe = Pipeline([("oh", OneHotEncoder(handle_unknown="ignore")), ("net", net)])
    sweep, search = _sweep_and_grid(pipe, {"net__" + k: v for k, v in grid.items()},
                                    (X[:, 20:24] > 8).astype(int), y, cv=2)  # fmt: skip
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=1e-6
    )


def test_sweep_is_a_classifier_or_regressor_and_delegates_as_gridsearchcv(quiet):
    """is_classifier was False (nested cross_val_score used KFold, not StratifiedKFold, and
    scored 0 on sorted labels); predict_log_proba was missing; hasattr answered True for
    methods that raise (refit=False, a regressor's predict_proba)."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.model_selection import cross_val_score

    from jbpnn.sklearn import BPNNClassifier, BPNNRegressor, SweepSearchCV

    d = jbpnn.load_digits()
    order = np.argsort(d.y[:120], kind="stable")
    X, y = d.X[:120][order], d.y[:120][order]  # sorted labels: KFold folds miss classes
    clf = SweepSearchCV(BPNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
                        {"learning_rate_init": [0.05, 0.2]}, cv=2)  # fmt: skip
    reg = SweepSearchCV(BPNNRegressor(max_iter=2), {"alpha": [1e-4]}, cv=2)
    assert is_classifier(clf) and is_regressor(reg) and not is_classifier(reg)
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(clf.estimator, clf.param_grid, cv=2)
    np.testing.assert_allclose(  # the same (stratified) outer folds as GridSearchCV's
        cross_val_score(clf, X, y, cv=3), cross_val_score(search, X, y, cv=3), atol=1e-6
    )
    clf.fit(X, y)
    np.testing.assert_allclose(
        clf.predict_log_proba(X), clf.best_estimator_.predict_log_proba(X), rtol=1e-6
    )
    assert not hasattr(reg, "predict_proba") and not hasattr(reg, "predict_log_proba")
    assert not hasattr(clf.set_params(refit=False), "predict")


def test_pipeline_sweep_takes_the_last_steps_sample_weight_as_gridsearchcv(quiet):
    """net__sample_weight=w (GridSearchCV's spelling: weighted fits, unweighted scoring) was
    a TypeError; sample_weight= weights the scoring too."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    d = jbpnn.load_digits()
    X, y = d.X[:120], d.y[:120]
    w = np.random.RandomState(0).uniform(0.1, 3, len(y))
    net = BPNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    pipe = Pipeline([("sc", StandardScaler()), ("net", net)])
    grid = {"net__learning_rate_init": [0.05, 0.2]}
    sweep, search = _sweep_and_grid(pipe, grid, X, y, {"net__sample_weight": w}, cv=2)
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], atol=1e-6
    )
    with pytest.raises(TypeError, match="net__sample_weight"):
        SweepSearchCV(pipe, grid, cv=2).fit(X, y, sc__sample_weight=w)


def _routing_data():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=90, n_features=5, n_informative=4, n_redundant=0, n_classes=3, random_state=0
    )
    return X, y, np.random.RandomState(0).uniform(0.1, 2, size=len(y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sweep_routes_metadata_as_gridsearchcv_when_routing_is_on():
    # with scikit-learn's metadata routing on, SweepSearchCV weighted every fit and every
    # score whatever was requested (fit only, score only), took weights nobody requested,
    # was no router (cross_validate(params=) refused it), and a Pipeline's refit got
    # net__sample_weight, which routing refuses
    import sklearn
    from sklearn.model_selection import GridSearchCV, cross_validate
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils._metadata_requests import UnsetMetadataPassedError

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, y, sw = _routing_data()
    grid, one = {"alpha": [1e-4, 1e-1]}, {"alpha": [1e-1]}
    net = dict(hidden_layer_sizes=(6,), max_iter=4, random_state=0, learning_rate_init=0.05)

    def both(est, grid, fit=None, **kw):
        out = []
        for Search in (GridSearchCV, SweepSearchCV):
            search = Search(est, grid, cv=2).fit(X, y, **kw)
            out.append(search.cv_results_["mean_test_score"])
        return out

    with sklearn.config_context(enable_metadata_routing=True):
        seen = set()
        for fit_w, score_w in ((False, True), (True, False)):
            est = BPNNClassifier(**net).set_fit_request(sample_weight=fit_w)
            est = est.set_score_request(sample_weight=score_w)
            grid_scores, sweep_scores = both(est, grid, sample_weight=sw)
            np.testing.assert_allclose(sweep_scores, grid_scores, rtol=1e-6)
            seen.add(tuple(np.round(sweep_scores, 6)))
        assert len(seen) == 2  # the requests change the scores: each was routed
        for Search in (GridSearchCV, SweepSearchCV):  # nobody asked: scikit-learn's error
            with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
                Search(BPNNClassifier(**net), grid, cv=2).fit(X, y, sample_weight=sw)
        est = BPNNClassifier(**net).set_fit_request(sample_weight=True)
        est = est.set_score_request(sample_weight=True)
        nested = [  # one candidate: the routing is the point
            cross_validate(Search(est, one, cv=2), X, y, cv=2, params={"sample_weight": sw})
            for Search in (GridSearchCV, SweepSearchCV)
        ]
        np.testing.assert_allclose(nested[1]["test_score"], nested[0]["test_score"], rtol=1e-6)
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        pipe = Pipeline([("scale", scaler), ("net", est)])
        pipe_grid = {"net__alpha": [1e-1]}
        grid_scores, sweep_scores = both(pipe, pipe_grid, sample_weight=sw)
        np.testing.assert_allclose(sweep_scores, grid_scores, rtol=1e-6)


def test_nan_under_assume_finite_is_refused_not_trained_on():
    # scikit-learn's assume_finite=True skips its finiteness check: a fit on NaN "diverged"
    # at once, kept its untrained weights and blamed the learning rate; a sweep scored them
    import sklearn

    from jbpnn.sklearn import BPNNClassifier, BPNNRegressor

    X, y, sw = _routing_data()
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r"X contains NaN or infinity in column\(s\) 2"):
            BPNNClassifier(max_iter=2).fit(X_nan, y)
        y_nan = y.astype(float)
        y_nan[0] = np.nan
        with pytest.raises(ValueError, match="y contains NaN or infinity"):
            BPNNRegressor(max_iter=2).fit(X, y_nan)
        sw[1] = np.inf
        with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
            BPNNRegressor(max_iter=2).fit(X, y.astype(float), sample_weight=sw)


def _stopped_early(optimizer):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 2)).astype(np.float32)
    Y = np.stack([np.sin(3 * X[:, 0]), X[:, 1] ** 2], 1).astype(np.float32)
    Xv = rng.uniform(-1, 1, (30, 2)).astype(np.float32)
    Yv = np.stack([np.sin(3 * Xv[:, 0]), Xv[:, 1] ** 2], 1) + rng.normal(size=(30, 2))
    p = jbpnn.init_params(0, (2, 8, 2), ("tanh", "identity"), "mse")
    r = jbpnn.train(
        p,
        X,
        Y,
        optimizer=optimizer,
        epochs=200,
        X_val=Xv,
        Y_val=Yv.astype(np.float32),
        n_iter_no_change=3,
    )
    assert r.stop_reason == "no_validation_improvement" and r.best_epoch < r.epochs_run
    return r, X, Y


@pytest.mark.parametrize("make", [jbpnn.levenberg_marquardt, lambda: sgd(0.5)])
def test_a_stopped_early_stopping_run_resumed_without_validation_keeps_its_best_params(make):
    # resumed without X_val, the best record was dropped and the result gave the last
    # epoch's params, although the stopped run trained no more
    r, X, Y = _stopped_early(make())
    for resumed in (
        jbpnn.train(r, X, Y, epochs=5),
        jbpnn.train(r.state, X, Y, optimizer=make(), epochs=5),
    ):
        assert resumed.stop_reason == r.stop_reason and resumed.epochs_run == r.epochs_run
        for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(r.params)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    last = jbpnn.train(r.state, X, Y, optimizer=make(), epochs=5)  # the state keeps the last too
    assert not np.array_equal(
        np.asarray(r.state.params.layers[0].w), np.asarray(r.params.layers[0].w)
    )
    assert last.history["loss"].dtype == np.float32  # an empty part joined kept its dtype
    assert jbpnn.train(r, X, Y, epochs=5).history["loss"].dtype == np.float32


def test_a_16_bit_networks_history_is_float32():
    # lbfgs's n_evals went into a bfloat16 history: counts from 257 on were rounded
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    Y = np.tanh(X @ rng.normal(size=(3, 1))).astype(np.float32)
    p = jbpnn.init_params(0, (3, 4, 1), ("tanh", "identity"), "mse", dtype=jnp.bfloat16)
    r = jbpnn.train(p, X, Y, optimizer=jbpnn.lbfgs(), epochs=3)
    assert {v.dtype for v in r.history.values()} == {np.dtype(np.float32)}


def test_sweep_takes_every_sparse_format_and_array_likes_as_gridsearchcv(quiet):
    # COO and BSR X, and array-likes with __array__ only, failed after all the training
    # (the test folds indexed the raw input); GridSearchCV makes them indexable first
    import scipy.sparse as sp
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler
    from sklearn.utils.estimator_checks import _NotAnArray

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = (X[:, 0] > 0).astype(int)
    net = BPNNClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    grid = {"alpha": [1e-4, 1e-2]}
    cases = [
        (net, grid, sp.coo_matrix(X), y, {}),
        (net, grid, sp.bsr_matrix(X), y, {}),
        (net, grid, _NotAnArray(X), _NotAnArray(y), {}),
        (net, grid, X, y, {"sample_weight": _NotAnArray(np.ones(40))}),
        (
            make_pipeline(MaxAbsScaler(), net),
            {"bpnnclassifier__alpha": [1e-4, 1e-2]},
            sp.coo_matrix(X),
            y,
            {},
        ),
    ]
    for est, g, Xc, yc, kw in cases:
        want = GridSearchCV(est, g, cv=2).fit(Xc, yc, **kw).cv_results_["mean_test_score"]
        got = SweepSearchCV(est, g, cv=2).fit(Xc, yc, **kw).cv_results_["mean_test_score"]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_sweep_has_the_best_estimators_feature_names_as_gridsearchcv(quiet):
    pd = pytest.importorskip("pandas")  # installed by the test extra
    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(40, 3), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    net = BPNNClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    search = SweepSearchCV(net, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    np.testing.assert_array_equal(search.feature_names_in_, ["a", "b", "c"])
    assert not hasattr(
        SweepSearchCV(net, {"alpha": [1e-4]}, cv=2).fit(X.to_numpy(), y), "feature_names_in_"
    )
    assert not hasattr(SweepSearchCV(net, {"alpha": [1e-4]}, cv=2), "feature_names_in_")


def test_a_softmax_output_over_one_unit_is_refused(capsys):
    # its output is 1 for every input: loss and gradient 0, a run that "trained" on 0/1
    # targets learned nothing, and gradcheck passed it
    with pytest.raises(ValueError, match="softmax output over one unit is 1 for every input"):
        jbpnn.init_params(0, (5, 4, 1), "tanh", "cross_entropy")
    with pytest.raises(ValueError, match="softmax output over one unit"):
        MLP.from_layers([(np.ones((5, 1)), np.zeros(1))], "softmax", "cross_entropy")
    direct = MLP([Layer(jnp.ones((5, 1)), jnp.zeros(1))], ("softmax",), "cross_entropy")
    with pytest.raises(ValueError, match="train: a softmax output over one unit"):
        jbpnn.train(direct, np.ones((4, 5)), np.ones((4, 1)), optimizer=sgd(0.1), epochs=1)
    rc, _, err = run_cli(capsys, "gradcheck", "--sizes", "5,4,1", "--loss", "cross_entropy")
    one_line_error(rc, err, "softmax output over one unit")
    jbpnn.init_params(0, (5, 4, 2), "tanh", "cross_entropy")  # two outputs: fine


def test_a_data_axis_without_a_mesh_is_refused_as_train_many_refuses_it():
    p = jbpnn.init_params(0, (3, 2, 1))
    with pytest.raises(ValueError, match="data_axis='data' names an axis of a mesh"):
        jbpnn.train(p, X3, Y1, optimizer=sgd(0.1), epochs=1, data_axis="data")


def test_a_resume_from_a_result_with_other_batching_or_no_validation_warns():
    # train(result, X, Y, epochs=k), the documented form, trained on full batches without
    # early stopping where the run had mini-batches and a validation set: 10 + 10 != 20
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    Y = np.tanh(X[:, :1]).astype(np.float32)
    p = jbpnn.init_params(0, (3, 4, 1), ("tanh", "identity"), "mse")
    kw = dict(optimizer=jbpnn.momentum(0.05, 0.9), batch_size=16, key=1)
    full = jbpnn.train(p, X, Y, epochs=6, **kw)
    first = jbpnn.train(p, X, Y, epochs=3, **kw)
    with pytest.warns(UserWarning, match="trained with batch_size=16.* with batch_size=None"):
        jbpnn.train(first, X, Y, epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run's own settings: no warning, the same run
        same = jbpnn.train(first, X, Y, epochs=3, batch_size=16)
    tree_equal = [
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(same.params), jax.tree.leaves(full.params))
    ]
    assert all(tree_equal)
    watched = jbpnn.train(p, X, Y, epochs=2, X_val=X[:8], Y_val=Y[:8], n_iter_no_change=50, **kw)
    with pytest.warns(UserWarning, match="early stopping watched 'val_loss' without X_val"):
        jbpnn.train(watched, X, Y, epochs=1, batch_size=16)


def test_a_16_bit_networks_accuracy_counts_whole_rows():
    # the fraction was taken in the params' dtype: bfloat16 steps of 1/256 near 1 (1796 of
    # 1797 right read 1.0) and val_accuracy of 691.15 / 797 rows; early stopping compared those
    d = jbpnn.load_digits()
    Y = jbpnn.one_hot(d.y, 10)
    p = jbpnn.init_params(0, (64, 16, 10), "tanh", "cross_entropy", "glorot", dtype=jnp.bfloat16)
    r = jbpnn.train(
        p,
        d.X[:300],
        Y[:300],
        optimizer=jbpnn.momentum(0.05, 0.9),
        epochs=3,
        batch_size=64,
        X_val=d.X[300:597],
        Y_val=Y[300:597],
        monitor="val_accuracy",
        n_iter_no_change=5,
    )
    counts = r.history["val_accuracy"] * 297
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    assert r.state.best_val.dtype == np.float32
    pred = np.argmax(np.asarray(jbpnn.predict(r.params, d.X), np.float32), axis=1)
    right = int(np.sum(pred == d.y))
    assert float(jbpnn.accuracy(r.params, d.X, d.y)) == pytest.approx(right / len(d.y), abs=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sweep_routes_an_aliased_sample_weight_as_gridsearchcv():
    import sklearn
    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, y, sw = _routing_data()
    net = dict(hidden_layer_sizes=(6,), max_iter=10, random_state=0, learning_rate_init=0.1)
    with sklearn.config_context(enable_metadata_routing=True):
        est = BPNNClassifier(**net).set_fit_request(sample_weight="w2")
        seen = set()
        for w in (sw, np.ones_like(sw)):
            want = GridSearchCV(est, {"alpha": [1e-4, 1e-1]}, cv=2).fit(X, y, w2=w)
            got = SweepSearchCV(est, {"alpha": [1e-4, 1e-1]}, cv=2).fit(X, y, w2=w)
            np.testing.assert_allclose(
                got.cv_results_["mean_test_score"], want.cv_results_["mean_test_score"], rtol=1e-6
            )
            seen.add(tuple(np.round(got.cv_results_["mean_test_score"], 6)))
        assert len(seen) == 2  # the aliased weights reached the fits


def test_gradcheck_helpers_and_tables_refuse_what_they_cannot_take():
    from jbpnn.gradcheck import gradcheck, random_batch
    from jbpnn.tables import ResultsTable

    nets = [jbpnn.init_params(i, (5, 4, 2), "tanh", "mse") for i in range(3)]
    with pytest.raises(ValueError, match="random_batch takes ONE network"):
        random_batch(jax.random.key(0), stack_params(nets), 4)  # read the stack as n_in
    X, Y = random_batch(jax.random.key(0), nets[0], 8)
    with pytest.raises(ValueError, match="eps must be finite and > 0, got inf"):
        gradcheck(nets[0], X, Y, reference="finite_difference", eps=float("inf"))
    with pytest.raises(ValueError, match="max_coords must be an integer >= 1, got 2.7"):
        gradcheck(nets[0], X, Y, reference="finite_difference", max_coords=2.7)
    table = ResultsTable([{"lr": 0.1, "val_accuracy": 0.5}])
    with pytest.raises(KeyError, match="no column 'zzz' to summarize; columns are"):
        table.summarize(["zzz"])


def test_train_manys_last_progress_report_has_no_network_running():
    # networks at max_epochs were still counted "running" in the report of a finished run
    infos = []
    jbpnn.train_many(
        InitSpec((3, 4, 1)),
        X3,
        Y1,
        seeds=[0, 1],
        optimizer=sgd(0.1),
        epochs=7,
        progress=infos.append,
        history_chunk=3,
    )
    assert [i["epoch"] for i in infos] == [3, 6, 7]
    assert infos[-1]["running"] == 0 and infos[0]["running"] == 2


def test_init_params_takes_an_int_seed_that_is_a_jax_array_traced_or_not():
    # a jnp int (and a traced one under jit / vmap) went to the PRNG as raw key data
    want = [jbpnn.init_params(s, (3, 2)).layers[0].w for s in range(3)]
    np.testing.assert_array_equal(jbpnn.init_params(jnp.array(1), (3, 2)).layers[0].w, want[1])
    jitted = jax.jit(lambda s: jbpnn.init_params(s, (3, 2)))(2)
    np.testing.assert_array_equal(jitted.layers[0].w, want[2])
    many = jax.vmap(lambda s: jbpnn.init_params(s, (3, 2)))(jnp.arange(3))
    np.testing.assert_array_equal(many.layers[0].w, np.stack(want))


def test_an_mlp_of_labels_for_optax_multi_transform_says_how_to_pass_it():
    # optax calls a callable param_labels on the params: an MLP of labels ran as a network
    # and failed inside apply ("params must be one network ... ndims [(0, 0)]")
    optax = pytest.importorskip("optax")  # the test extra installs it
    p = jbpnn.init_params(jax.random.key(0), (3, 4, 2), "tanh", init="glorot")
    labels = jax.tree_util.tree_map_with_path(
        lambda k, x: "w" if jax.tree_util.keystr(k).endswith(".w") else "b", p
    )
    rules = {"w": optax.sgd(0.1), "b": optax.set_to_zero()}
    with pytest.raises(TypeError, match=r"param_labels=lambda _: labels"):
        optax.multi_transform(rules, labels).init(p)
    opt = optax.multi_transform(rules, lambda _: labels)
    grads = jax.tree.map(jnp.ones_like, p)
    updates, _ = opt.update(grads, opt.init(p), p)
    assert all(float(jnp.max(jnp.abs(layer.b))) == 0 for layer in updates.layers)
    for layer in updates.layers:
        np.testing.assert_allclose(layer.w, -0.1, rtol=1e-6)


def test_weights_summing_past_the_reciprocal_of_the_smallest_normal_are_refused():
    """XLA divides a mean by the weights' sum as a product with its reciprocal, which
    rounds to 0 once the sum passes 1 / finfo.tiny (float32: 8.5e37): weights of 6e36 on
    16 rows gave a loss and gradient of exactly 0 (a run stopped on loss_below_tol after
    one epoch); refused now, in train, loss and the estimators, and 5e36 still equals
    the unweighted loss."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    Y = np.full((16, 1), 0.3, np.float32)
    p = jbpnn.init_params(0, (3, 4, 1))
    plain = float(jbpnn.loss(p, X, Y))
    assert float(jbpnn.loss(p, X, Y, sample_weight=np.full(16, 5e36))) == pytest.approx(plain)
    match = r"sample_weight: the weights sum to 9.6e\+37, more than float32 divides by"
    with pytest.raises(ValueError, match=match):
        jbpnn.loss(p, X, Y, sample_weight=np.full(16, 6e36))
    with pytest.raises(ValueError, match=match):
        jbpnn.train(p, X, Y, optimizer=sgd(0.1), epochs=2, sample_weight=np.full(16, 6e36))
    from jbpnn.sklearn import BPNNRegressor

    with pytest.raises(ValueError, match=r"sample_weight sums to 1.2e\+38, more than"):
        BPNNRegressor(max_iter=2).fit(X, Y.ravel(), sample_weight=np.full(16, 7.5e36))


def test_float16_means_over_more_rows_than_it_can_weigh():
    """A float16 mean over n rows weighs each 1/n, subnormal past 16384 rows (the
    gradient was 3.9x off at 60000 rows, 0 at 300000; a full-batch run 'diverged'):
    refused, naming the limit. Mini-batches of such data train, and the epoch loss,
    summed over more rows than float16 counts (inf past 65504), read 0 and stopped the
    run on tol: now summed in float32, as float32 training's."""
    rng = np.random.default_rng(0)
    n = 70000
    X = rng.normal(size=(n, 3)).astype(np.float32)
    Y = (rng.uniform(size=(n, 1)) > 0.5).astype(np.float32)
    p16 = jbpnn.init_params(0, (3, 4, 1), dtype=jnp.float16)
    with pytest.raises(ValueError, match=r"float16 mean over 17000 rows .* at most 16384 rows"):
        jbpnn.loss(p16, X[:17000], Y[:17000])
    with pytest.raises(ValueError, match=r"float16 mean over 70000 rows"):
        jbpnn.train(p16, X, Y, optimizer=sgd(0.1), epochs=2)
    assert np.isfinite(float(jbpnn.loss(p16, X[:16384], Y[:16384])))
    kw = dict(optimizer=sgd(0.1), epochs=2, batch_size=1000, shuffle=False, tol=0.01)
    r16 = jbpnn.train(p16, X, Y, **kw)
    r32 = jbpnn.train(jbpnn.init_params(0, (3, 4, 1)), X, Y, **kw)
    assert r16.epochs_run == 2 and r16.stop_reason == "max_epochs"
    np.testing.assert_allclose(r16.history["loss"], r32.history["loss"], rtol=2e-2)


def test_float64_params_without_64_bit_jax_are_refused_not_truncated():
    """init_params(dtype=float64) without jax_enable_x64 gave float32 params without a
    word (the estimators and BPNN refuse it): refused, as MLP.from_layers(dtype=float64)."""
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match=r"dtype float64 needs 64-bit JAX"):
            jbpnn.init_params(0, (3, 4, 2), dtype=jnp.float64)
        with pytest.raises(ValueError, match=r"dtype float64 needs 64-bit JAX"):
            MLP.from_layers([(np.ones((3, 2)), np.ones(2))], ("identity",), "mse", dtype="float64")
        assert jbpnn.init_params(0, (3, 4, 2), dtype=jnp.float32).dtype == jnp.float32
    with jax.enable_x64(True):
        assert jbpnn.init_params(0, (3, 4, 2), dtype=jnp.float64).dtype == jnp.float64


def test_sgd_momentum_bound_is_stated_once():
    """momentum=1.5 with sgd said "<= 1.0" and momentum=1.0 then "< 1.0": sgd's bound
    (m < 1, what its core needs) is the one stated; adam keeps scikit-learn's [0, 1]."""
    from jbpnn.sklearn import BPNNClassifier

    X, y = np.random.default_rng(0).uniform(size=(30, 3)), np.arange(30) % 2
    for m in (1.5, 1.0):
        with pytest.raises(ValueError, match=rf"^momentum must be >= 0.0 and < 1.0, got {m}"):
            BPNNClassifier(solver="sgd", momentum=m, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match=r"^momentum must be >= 0.0 and <= 1.0, got 1.5"):
        BPNNClassifier(solver="adam", momentum=1.5, max_iter=2).fit(X, y)


def test_a_nan_sample_weight_is_named_as_such():
    """One NaN weight read "got values from nan to nan"."""
    p = jbpnn.init_params(0, (3, 4, 1))
    X, Y = np.ones((4, 3)), np.ones((4, 1))
    with pytest.raises(ValueError, match=r"got 1 NaN value\(s\), the others from 1 to 3$"):
        jbpnn.loss(p, X, Y, sample_weight=np.array([1, np.nan, 2, 3]))


def test_seeds_with_one_network_say_what_to_pass():
    """train_many(one MLP, seeds=...) said "stacked params are already initialised" of
    params that were neither stacked nor several."""
    p = jbpnn.init_params(0, (3, 4, 1))
    X, Y = np.ones((5, 3)), np.ones((5, 1))
    with pytest.raises(ValueError, match=r"got one network \(to draw networks from seeds"):
        jbpnn.train_many(p, X, Y, seeds=[0, 1], epochs=1)
    with pytest.raises(ValueError, match=r"got params that are already initialised$"):
        jbpnn.train_many(stack_params([p, p]), X, Y, seeds=[0, 1], epochs=1)


def test_a_reduced_learning_rate_goes_on_in_the_result_and_its_save(tmp_path):
    """A resume without lr_factor once folded the plateau rule's reductions into lr in
    the state while the result's optimizer kept the first lr: the next train(result)
    went back to it (2000x the reduced rate) and save(state, optimizer=result.optimizer)
    refused the pair it recommends. The reductions now stay in lr_scale: every resume,
    by the result or by a bare state given the run's optimizer, goes on at lr * lr_scale."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 3)).astype(np.float32)
    Y = jbpnn.one_hot((X[:, 0] > 0).astype(int), 2)
    p = jbpnn.init_params(0, (3, 4, 2), "tanh", "cross_entropy")
    a = jbpnn.train(p, X, Y, optimizer=sgd(0.5), epochs=15, batch_size=8, loss_patience=1,
                    loss_tol=0.05, lr_factor=0.5)  # fmt: skip
    scale = float(a.state.lr_scale)
    assert scale < 1
    b = jbpnn.train(a, X, Y, epochs=3, batch_size=8)
    assert b.optimizer.hyperparams["lr"] == 0.5 and float(b.state.lr_scale) == scale
    c = jbpnn.train(b, X, Y, epochs=3, batch_size=8)
    assert float(c.state.opt_state.hyperparams["lr"]) == 0.5
    assert float(c.state.lr_scale) == scale
    whole = jbpnn.train(a, X, Y, epochs=6, batch_size=8)
    np.testing.assert_array_equal(c.params.layers[0].w, whole.params.layers[0].w)
    jbpnn.save(tmp_path / "b.npz", b.state, optimizer=b.optimizer)
    d = jbpnn.train(jbpnn.load(tmp_path / "b.npz").state, X, Y, optimizer=sgd(0.5), epochs=3,
                    batch_size=8)  # fmt: skip
    np.testing.assert_array_equal(d.params.layers[0].w, whole.params.layers[0].w)


def test_a_warm_fit_with_another_schedule_makes_a_new_optimizer():
    """learning_rate="adaptive" then "constant" went on at the plateau rule's reduced rate
    (and a third identical warm fit jumped back to learning_rate_init): a new optimizer,
    as scikit-learn's and as the README's warm_start row says."""
    from jbpnn.sklearn import BPNNClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(4,), random_state=0, solver="sgd", learning_rate_init=0.5,
              batch_size=8, learning_rate="adaptive", n_iter_no_change=1, tol=5e-2,
              max_iter=15, momentum=0.0, warm_start=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = BPNNClassifier(**kw).fit(X, y)
        assert float(e.state_.lr_scale) < 1
        e.set_params(learning_rate="constant", max_iter=3)
        for _ in range(2):
            e.fit(X, y)
            assert float(e.state_.opt_state.hyperparams["lr"]) == pytest.approx(0.5)


def test_a_train_many_result_resumed_without_its_settings_warns_as_train_s_does():
    """train_many(...)[i] carried no batching or monitor: train(result[i], X, Y, epochs=k)
    trained on full batches without early stopping without a word (a train result warns);
    a resume with the validation set but without n_iter_no_change did not warn either."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    Y = np.tanh(X[:, :1])
    spec = InitSpec((3, 4, 1), ("tanh", "identity"), "mse")
    kw = dict(epochs=3, batch_size=8, X_val=X[:10], Y_val=Y[:10], n_iter_no_change=5)
    m = jbpnn.train_many(spec, X, Y, seeds=[0, 1], hparams={"lr": 0.1, "m": 0.0}, **kw)
    with pytest.warns(UserWarning) as caught:
        jbpnn.train(m[0], X, Y, epochs=2)
    said = " ".join(str(w.message) for w in caught)
    assert "batch_size=8" in said and "without X_val and Y_val" in said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jbpnn.train(m[1], X, Y, **{**kw, "epochs": 2})  # the same settings: no warning
    with pytest.warns(UserWarning, match="without n_iter_no_change: early stopping is off"):
        jbpnn.train(m[1], X, Y, epochs=2, batch_size=8, X_val=X[:10], Y_val=Y[:10])

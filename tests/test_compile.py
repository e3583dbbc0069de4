"""What ``train`` compiles: one program per kind of run, none for a rule that is off,
one per row bucket for a stream of chunks; and the persistent compilation cache.

Compilations are counted with JAX's monitoring events (one per XLA compilation,
named by the jitted function). Each test uses a network size no other test file
uses, so the programs it counts are not already in this process's caches. The
persistent cache is off for the suite (``conftest.py``); its tests run fresh
processes on temporary folders.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import JAX_CACHE, default_compile_env, no_persistent_cache

from jbpnn import compilation_cache, training
from jbpnn.data import load_digits, one_hot
from jbpnn.many import train_many
from jbpnn.optimizers import adam, momentum, sgd
from jbpnn.params import init_params
from jbpnn.training import train

ROOT = Path(__file__).resolve().parents[1]
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiled: list[str] | None = None  # the programs compiled while counting


def _listen(event: str, duration: float, **kwargs) -> None:
    if _compiled is not None and event == _COMPILE_EVENT:
        _compiled.append(str(kwargs.get("fun_name", "?")))


jax.monitoring.register_event_duration_secs_listener(_listen)


@contextlib.contextmanager
def compiles():
    """The names of the XLA programs compiled inside the block."""
    global _compiled
    _compiled = names = []
    try:
        with no_persistent_cache():  # a program read from the session's cache is not compiled
            yield names
    finally:
        _compiled = None


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return np.asarray(ds.X, np.float32), np.asarray(one_hot(ds.y, 10), np.float32)


def _leaves(result):
    return [np.asarray(x) for x in jax.tree.leaves(result.params)] + [result.history["loss"]]


# ---------------------------------------------------------------- one program per run
def test_first_train_call_compiles_one_program(digits):
    X, Y = (jax.device_put(a[:300]) for a in digits)  # data already on the device
    params = init_params(0, (64, 11, 10), "sigmoid", "cross_entropy", "glorot")
    kw = dict(optimizer=momentum(0.1, 0.9), batch_size=64)
    with compiles() as first:
        train(params, X, Y, epochs=3, **kw)
    assert first == ["jit(run_epochs)"]
    with compiles() as again:  # other values, more epochs, progress chunks: the same program
        train(params, X, Y, epochs=4, key=3, progress=lambda info: None, progress_every=2, **kw)
        train(params, X, Y, epochs=2, optimizer=momentum(0.3, 0.5), batch_size=64)
    assert again == []
    X_val, Y_val = (jax.device_put(a[:100]) for a in digits)
    with compiles() as val:  # validation, early stopping: one program, checks included
        train(params, X, Y, epochs=2, X_val=X_val, Y_val=Y_val, n_iter_no_change=3, **kw)
    assert val == ["jit(run_epochs)"]


def _equations(config, primitive: str | None = None) -> int:
    """Equations in the jaxpr of the training loop of ``config`` (nested ones included),
    or only those of ``primitive``."""
    params = init_params(0, (6, 4, 3), "tanh", "cross_entropy", "glorot")
    X, Y = np.zeros((20, 6), np.float32), np.eye(3, dtype=np.float32)[np.arange(20) % 3]
    run = training.prepare_training(params, X, Y, optimizer=sgd(0.1), stopping=config)
    loop = functools.partial(
        training.run_epochs, config=run.config, optimizer=training.static_kind(run.optimizer)
    )
    jaxpr = jax.make_jaxpr(loop)(run.state, run.data, run.val, run.rules, np.int32(1))

    def count(jp) -> int:
        return sum(
            (primitive is None or e.primitive.name == primitive)
            + sum(count(sub.jaxpr if hasattr(sub, "jaxpr") else sub) for sub in _subjaxprs(e))
            for e in jp.eqns
        )

    return count(jaxpr.jaxpr)


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(item, "eqns") or hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item


def test_a_rule_that_is_off_is_not_traced():
    from jbpnn.stopping import Stopping

    on = _equations(Stopping())
    no_growth = _equations(Stopping(max_loss_growth=None))
    off = _equations(Stopping(max_loss_growth=None, max_abs_param=None))
    assert off < no_growth < on
    # the growth rule's reference reads the losses the batch loop measured: no forward
    # pass of its own (it once ran one over every batch before the first epoch)
    products = _equations(Stopping(), "dot_general")
    assert products == _equations(Stopping(max_loss_growth=None), "dot_general") > 0


def _reduce_max_count(tree) -> int:
    return sum(
        e.primitive.name == "reduce_max" for e in jax.make_jaxpr(training._max_abs)(tree).eqns
    )


def test_max_abs_param_is_one_reduction_for_a_small_network():
    # The divergence rule reads max |param| every epoch. For a small network it is one
    # reduction over the leaves laid end to end (a smaller program to compile: the
    # per-leaf reductions were 5 here), beyond MAX_ABS_JOINED elements one per leaf
    # (faster to run there); the value is the same either way.
    small = init_params(0, (6, 4, 3), "tanh", "cross_entropy", "glorot")
    large = init_params(0, (64, 256, 128), "tanh", "cross_entropy", "glorot")
    assert sum(x.size for x in jax.tree.leaves(large)) > training.MAX_ABS_JOINED
    assert _reduce_max_count(small) == 1
    assert _reduce_max_count(large) == len(jax.tree.leaves(large)) + 1
    for tree in (small, large):
        leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
        assert float(training._max_abs(tree)) == max(float(np.max(np.abs(x))) for x in leaves)
        for bad in (np.nan, -np.inf):  # a NaN or an inf anywhere reaches the result
            hit = jax.tree.map(lambda x: x, tree)
            w = np.asarray(hit.layers[-1].w).copy()
            w[0, -1] = bad
            hit = hit.replace_layers([*hit.layers[:-1], hit.layers[-1]._replace(w=jnp.asarray(w))])
            assert float(training._max_abs(hit)) == np.inf  # NaN counts as inf


def test_nan_params_from_the_epochs_last_update_are_a_divergence():
    # The epoch loss is measured before each update, so NaN params made by the last one
    # are seen only by max |param|; a maximum over 4096 or more elements in XLA's CPU
    # reductions drops NaN, and the run went on with the NaN params (stopping "diverged"
    # an epoch later, on the NaN loss, with the NaN params kept as the epoch's start).
    X, Y = (
        np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32),
        np.eye(10)[np.arange(40) % 10].astype(np.float32),
    )
    params = init_params(0, (64, 100, 10), "sigmoid", "cross_entropy", "glorot")  # w1: 6400

    def nan_gradient(p, Xb, Yb, w):
        loss, grads = training.loss_and_gradient_kernel(p, Xb, Yb, w)
        w1 = grads.layers[0].w.at[3, 7].set(jnp.nan)  # one NaN in the big layer
        return loss, grads.replace_layers([grads.layers[0]._replace(w=w1), *grads.layers[1:]])

    run = train(params, X, Y, optimizer=sgd(0.1), epochs=3, batch_size=None, grad_fn=nan_gradient)
    assert run.stop_reason == "diverged" and run.epochs_run == 1
    kept = [np.asarray(x) for x in jax.tree.leaves(run.params)]
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(kept, jax.tree.leaves(params)))
    # the same rule under vmap: every network of train_many stops at its first epoch
    many = train_many(
        [params, init_params(1, (64, 100, 10), "sigmoid", "cross_entropy", "glorot")],
        X,
        Y,
        optimizer="sgd",
        hparams={"lr": 0.1},
        epochs=3,
        batch_size=None,
        grad_fn=nan_gradient,
    )
    assert list(many.stop_reason) == ["diverged"] * 2 and list(many.epochs_run) == [1, 1]
    assert np.isfinite(np.asarray(many.params.layers[0].w)).all()


# ---------------------------------------------------------------- streams of chunk sizes
SIZES = [50, 50, 37, 50, 41, 50, 23, 50, 37, 64]


def test_a_stream_of_chunk_sizes_compiles_one_program_per_bucket(digits):
    X, Y = digits
    cuts = np.cumsum([0, *SIZES])
    run = init_params(1, (64, 12, 10), "relu", "cross_entropy", "glorot")
    with compiles() as names:
        for a, b in zip(cuts[:-1], cuts[1:]):
            run = train(run, X[a:b], Y[a:b], optimizer=adam(1e-3), epochs=1)
    assert names == ["jit(run_epochs)"]  # every chunk in the bucket of 64 rows
    assert run.epochs_run == len(SIZES) and len(run.history["loss"]) == len(SIZES)


def test_grouped_train_many_and_its_results_compile_no_eager_indexing():
    """train_many with rows shared by groups sorts, gathers and un-sorts on the host: no
    small program is compiled for indexing (each costs 20-40 ms in a cold process), nor
    for ManyResult[i]."""
    from jbpnn.many import InitSpec, train_many

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (43, 7)).astype(np.float32)  # shapes no other test uses
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 43)]
    folds = [np.arange(0, 33), np.arange(10, 43)]
    spec = InitSpec((7, 5, 3), "tanh", "cross_entropy", "glorot")
    with compiles() as names:
        rows = [folds[i % 2] for i in range(4)]
        lrs = {"lr": [0.1, 0.2, 0.3, 0.4]}
        result = train_many(spec, X, Y, seeds=range(4), rows=rows, hparams=lrs, epochs=2)
        result[3]
    indexing = {"gather", "dynamic_slice", "select_n", "scatter", "squeeze", "slice"}
    assert not [n for n in names if n.removeprefix("jit(").rstrip(")") in indexing], names
    assert sum("run_epochs" in n for n in names) == 1, names


_FRESH_PROGRAMS = """
    import jax, numpy as np
    from jbpnn.many import use_cpu_devices
    use_cpu_devices()  # two CPU devices, as the sweeps of the experiments run
    names = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: names.append(kw.get("fun_name"))
        if event == "/jax/core/compile/backend_compile_duration" else None)
    import jbpnn
    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV
    jbpnn.disable_compilation_cache()
    X = np.random.default_rng(0).uniform(size=(60, 5)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    BPNNClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0).fit(X, y)
    print("fit", ",".join(names))
    names.clear()
    grid = {"learning_rate_init": [0.01, 0.1], "alpha": [1e-4, 1e-3]}
    est = BPNNClassifier(hidden_layer_sizes=(7,), solver="sgd", max_iter=3, random_state=0)
    SweepSearchCV(est, grid, cv=2, refit=False).fit(X, y)
    print("sweep", ",".join(names))
    names.clear()
    from jbpnn.sklearn import BPNNRegressor
    init = [(np.full((5, 3), 0.1), np.zeros(3)), (np.full((3, 1), 0.2), np.zeros(1))]
    BPNNRegressor(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=3, init=init).fit(X, X[:, 0])
    print("lbfgs", ",".join(names))
"""


def test_an_estimator_fit_and_a_sweep_compile_no_small_programs():
    """In a fresh process (two CPU devices), a first fit compiles the scaling of the
    weights' draw (its random bits come from the host: no threefry program) and the
    training program only (with the weights given and lbfgs, the training program),
    and a sweep also its state's setup and the predictions of its scores: no program per
    host value moved (``jnp.asarray`` of a NumPy array compiles one per shape), per key
    (``jax.random.key``), per flattening (``ravel_pytree``) or per state placed on the
    devices (a reshard compiles one per shape)."""
    pytest.importorskip("sklearn")
    got = _report(_python(_FRESH_PROGRAMS, {"JBPNN_NO_CACHE": "1"}))
    fit, sweep, lbfgs = (set(got[k].split(",")) for k in ("fit", "sweep", "lbfgs"))
    assert lbfgs == {"jit(run_epochs)"}, lbfgs  # given weights: nothing drawn
    assert fit == {"jit(_scaled_draws)", "jit(run_epochs)"}, fit
    programs = {"jit(_scaled_draws)", "jit(_init_many_jit)", "jit(run_epochs)"}
    small = sweep - programs - {"jit(predict_kernel)"}
    assert not small, sweep


def test_partial_fit_stream_compiles_once(digits):
    pytest.importorskip("sklearn")
    from jbpnn.sklearn import BPNNClassifier

    X, Y = digits
    y = Y.argmax(1)
    est = BPNNClassifier(hidden_layer_sizes=(13,), random_state=0)
    cuts = np.cumsum([0, *SIZES])
    counts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        with compiles() as names:
            est.partial_fit(X[a:b], y[a:b], classes=np.arange(10))
        counts.append(names.count("jit(run_epochs)"))
    assert counts == [1] + [0] * (len(SIZES) - 1)
    assert est.t_ == sum(SIZES)
    # a chunk of one row is a batch of its bucket too (batch_size 1 was online training,
    # a program of its own)
    with compiles() as names:
        est.partial_fit(X[:1], y[:1])
    assert "jit(run_epochs)" not in names
    assert est.t_ == sum(SIZES) + 1


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_padded_rows_equal_weight_zero_rows_exactly(digits, monkeypatch, name):
    """n rows run on their bucket: the same as the caller's own weight-0 rows, bit for bit,
    and as the unpadded run up to float rounding (sums over 37 and 64 rows round apart).
    With alpha: the penalty's alpha / n counts the real rows only. The padded run is a
    weighted one (adam with alpha: the unweighted program fused its update otherwise,
    1.5e-8 apart)."""
    X, Y = digits
    params = init_params(0, (64, 9, 10), "sigmoid", "cross_entropy", "glorot")
    opt = sgd(0.5, alpha=0.01) if name == "sgd" else adam(1e-2, alpha=np.float32(1e-4))
    n, m = 37, 61  # 37 and 61 rows: both in the bucket of 64
    padded = train(params, X[:n], Y[:n], optimizer=opt, epochs=12)
    w = np.r_[np.ones(n), np.zeros(m - n)].astype(np.float32)
    theirs = train(params, X[:m], Y[:m], optimizer=opt, epochs=12, sample_weight=w)
    for a, b in zip(_leaves(padded), _leaves(theirs)):
        np.testing.assert_array_equal(a, b)
    assert padded.state.step == theirs.state.step == 12
    assert training.row_bucket(n, None, opt) == training.row_bucket(m, m, opt) == 64
    monkeypatch.setattr(training, "ROW_BUCKETS_UP_TO", 0)  # no bucket: 37 rows as they are
    plain = train(params, X[:n], Y[:n], optimizer=opt, epochs=12)
    for a, b in zip(_leaves(padded), _leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_validation_rows_of_a_bucketed_run_are_padded_too(digits, monkeypatch):
    """A one-batch run's validation set goes on its own bucket (weight-0 rows): early
    stopping on data of a new length compiled once per validation length (an estimator's
    split of 4, 5, ... rows). The history and the stop equal the caller's own weight-0
    validation rows bit for bit, and the unpadded run's up to rounding (its accuracy is
    a mean, sum * (1/n): 3/7 one float32 step above the weighted sum / n)."""
    X, Y = digits
    params = init_params(0, (64, 9, 10), "sigmoid", "cross_entropy", "glorot")
    kw = dict(optimizer=sgd(0.5), epochs=30, n_iter_no_change=3)
    counts = []
    for n, n_val in ((40, 5), (45, 6), (50, 7), (60, 9)):
        with compiles() as names:
            train(
                params, X[:n], Y[:n], X_val=X[100 : 100 + n_val], Y_val=Y[100 : 100 + n_val], **kw
            )
        counts.append(names.count("jit(run_epochs)"))
    assert counts == [1, 0, 0, 0], counts
    padded = train(params, X[:40], Y[:40], X_val=X[100:107], Y_val=Y[100:107], **kw)
    w = np.r_[np.ones(7), np.zeros(20)].astype(np.float32)
    rows = np.r_[100:107, 300:320]
    theirs = train(params, X[:40], Y[:40], X_val=X[rows], Y_val=Y[rows], val_sample_weight=w, **kw)
    assert padded.stop_reason == theirs.stop_reason and padded.epochs_run == theirs.epochs_run
    for k in ("val_loss", "val_accuracy"):
        np.testing.assert_array_equal(padded.history[k], theirs.history[k])
    monkeypatch.setattr(training, "ROW_BUCKETS_UP_TO", 0)  # no bucket: the rows as they are
    plain = train(params, X[:40], Y[:40], X_val=X[100:107], Y_val=Y[100:107], **kw)
    assert plain.stop_reason == padded.stop_reason and plain.epochs_run == padded.epochs_run
    for k in ("val_loss", "val_accuracy"):
        np.testing.assert_allclose(plain.history[k], padded.history[k], rtol=1e-6)


_PADDED_ADAM = """
    import jax, numpy as np, jbpnn
    from jbpnn.optimizers import adam
    d = jbpnn.load_digits()
    X, Y = d.X, np.eye(10, dtype=np.float32)[d.y]
    p0 = jbpnn.init_params(0, (64, 16, 10), ("relu", "softmax"), "cross_entropy")
    opt = adam(1e-3, alpha=np.float32(1e-4))
    w = np.r_[np.ones(37), np.zeros(24)].astype(np.float32)
    a, b = p0, p0
    for s in (0, 37, 74):  # three partial_fit-like calls: 37 rows, padded by jbpnn or by hand
        a = jbpnn.train(a, X[s:s + 37], Y[s:s + 37], optimizer=opt, epochs=1)
        rows = np.r_[s:s + 37, 500:524]
        b = jbpnn.train(b, X[rows], Y[rows], optimizer=opt, epochs=1, sample_weight=w)
    same = all(np.array_equal(np.asarray(u), np.asarray(v))
               for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))
    print("same", same)
"""


def test_padded_adam_equals_weight_zero_rows_at_the_default_compile_level():
    """The suite compiles at LLVM level 0, where both programs round alike; at the default
    level the unweighted padded program fused adam's update with alpha otherwise."""
    flags = default_compile_env(dict(os.environ)).get("XLA_FLAGS", "")
    env = {"JBPNN_NO_CACHE": "1", "XLA_FLAGS": flags}
    assert _report(_python(_PADDED_ADAM, env))["same"] == "True"


def test_only_one_batch_runs_are_padded():
    opt = sgd(0.1)
    assert training.row_bucket(37, None, opt) == 64
    assert training.row_bucket(100, 100, opt) == 128
    assert training.row_bucket(64, None, opt) == 64  # weights all the same (one program)
    assert training.row_bucket(100, 32, opt) is None  # mini-batches: shuffled, not padded
    assert training.row_bucket(5000, None, opt) is None  # compile time is not what counts
    lbfgs = training._as_optimizer(__import__("jbpnn").optimizers.lbfgs())
    assert training.row_bucket(37, None, lbfgs) is None  # line searches on the whole set


# ---------------------------------------------------------------- compile options
def test_narrow_networks_on_the_cpu_compile_their_products_without_ynn(monkeypatch):
    """A network no wider than devices.NARROW_UNITS gets the option, a wider one and a
    non-CPU mesh none; train compiles its program with the options compiler_options
    gives, and that program has no YNN library call for its lone products."""
    from jbpnn import devices

    narrow = devices.compiler_options((10, 10, 1))
    assert narrow == (("xla_cpu_experimental_ynn_fusion_type", "LIBRARY_FUSION_TYPE_REDUCE"),)
    assert devices.compiler_options((10, devices.NARROW_UNITS, 1)) == narrow
    assert devices.compiler_options((64, 64, 10)) == ()
    assert devices.compiler_options((10, devices.NARROW_UNITS + 1, 1)) == ()

    class Gpu:
        platform = "gpu"

    class GpuMesh:
        devices = np.array([Gpu()])

    assert devices.compiler_options((10, 10, 1), GpuMesh()) == ()

    asked = []
    real = training.run_program
    monkeypatch.setattr(training, "run_program", lambda o=(): asked.append(o) or real(o))
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (53, 10)).astype(np.float32)
    Y = np.tanh(X[:, :1]).astype(np.float32)
    p = init_params(0, (10, 9, 1), ("tanh", "identity"), "mse", "glorot")
    r = train(p, X, Y, optimizer=sgd(0.1), epochs=3, batch_size=None)
    assert asked == [narrow] and np.isfinite(r.final_loss)
    wide = init_params(0, (10, 40, 1), ("tanh", "identity"), "mse", "glorot")
    train(wide, X, Y, optimizer=sgd(0.1), epochs=3, batch_size=None)
    assert asked[-1] == ()

    # the option's effect, where this XLA hands lone products to YNN by default
    dot = jax.jit(lambda a, b: a @ b)
    a, b = jnp.ones((442, 10)), jnp.ones((10, 10))
    plain = dot.lower(a, b).compile().as_text()
    opted = jax.jit(lambda a, b: a @ b, compiler_options=dict(narrow)).lower(a, b).compile()
    assert "__ynn_fusion" not in opted.as_text()
    if "__ynn_fusion" not in plain:
        pytest.skip("this XLA does not use YNN for a lone product: nothing to turn off")


def test_curvature_programs_leave_the_reductions_to_xla_on_the_cpu(monkeypatch):
    """hvp and gnvp of a network wider than NARROW_UNITS compile with the curvature option
    (YNN's products, XLA's own reduction loops), a narrow one with the narrow option, a
    training program of the same network with none; the compiled H v has fewer YNN
    calls than under a plain jit and the same value."""
    from jbpnn import curvature, devices, hvp

    wide = devices.compiler_options((64, 64, 10), program="curvature")
    assert wide == (("xla_cpu_experimental_ynn_fusion_type", "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"),)
    assert devices.compiler_options((64, 64, 10)) == ()  # training: none
    assert devices.compiler_options((10, 10, 1), program="curvature") == devices.compiler_options(
        (10, 10, 1)
    )
    with pytest.raises(ValueError, match="program must be one of"):
        devices.compiler_options((64, 64, 10), program="hvp")

    class Gpu:
        platform = "gpu"

    class GpuMesh:
        devices = np.array([Gpu()])

    assert devices.compiler_options((64, 64, 10), GpuMesh(), program="curvature") == ()

    asked = []
    real = curvature.program
    monkeypatch.setattr(curvature, "program", lambda k, o=(): asked.append((k, o)) or real(k, o))
    d = load_digits()
    X = jnp.asarray(d.X[:200], jnp.float32)
    Y = jnp.asarray(one_hot(d.y[:200], 10), jnp.float32)
    p = init_params(0, (64, 64, 10), "tanh", "cross_entropy", "glorot")
    v = jax.tree.map(lambda a: jnp.full_like(a, 0.01), p)
    got = hvp(p, X, Y, v)
    assert asked == [(curvature.hvp_kernel, wide)]
    plain = jax.jit(curvature.hvp_kernel)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(plain(p, X, Y, v))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # inside the caller's jit or vmap (no options on a nested jit): the plain program
    inside = jax.jit(lambda p: hvp(p, X, Y, v, check_finite=False))(p)
    mapped = jax.vmap(lambda s: hvp(p, X, Y, v, check_finite=False, sample_weight=s))(
        jnp.ones((2, 200), jnp.float32)
    )
    for a, b, c in zip(jax.tree.leaves(got), jax.tree.leaves(inside), jax.tree.leaves(mapped)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(a, c[1], rtol=1e-4, atol=1e-6)
    opted = real(curvature.hvp_kernel, wide).lower(p, X, Y, v).compile().as_text()
    default = plain.lower(p, X, Y, v).compile().as_text()
    if "__ynn_fusion" not in default:
        pytest.skip("this XLA does not use YNN on the CPU: nothing to change")
    assert opted.count("__ynn_fusion") < default.count("__ynn_fusion")


def test_curvature_programs_compile_without_an_option_xla_refuses(monkeypatch):
    """As train: an XLA that does not know the curvature option gets the plain program,
    the same H v, and the option is asked no more."""
    from jbpnn import curvature, devices, gnvp

    monkeypatch.setattr(
        devices, "_CURVATURE", {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_TYPE"}
    )
    monkeypatch.setattr(devices, "_narrow_refused", False)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 40)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    p = init_params(0, (40, 40, 3), "tanh", "cross_entropy", "glorot")
    v = jax.tree.map(lambda a: jnp.full_like(a, 0.01), p)
    assert devices.compiler_options(p.sizes, program="curvature") != ()
    got = gnvp(p, X, Y, v)
    assert devices._narrow_refused
    assert devices.compiler_options(p.sizes, program="curvature") == ()
    want = jax.jit(curvature.gnvp_kernel)(p, jnp.asarray(X), jnp.asarray(Y), v)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))


def test_an_xla_that_refuses_the_option_trains_with_the_plain_program(monkeypatch):
    """A jaxlib whose XLA does not know the option (or its value) raises when compiling;
    train then compiles without it, with the same result, and asks no more."""
    from jbpnn import devices

    monkeypatch.setattr(devices, "_NARROW", {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_TYPE"})
    monkeypatch.setattr(devices, "_narrow_refused", False)
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (31, 3)).astype(np.float32)
    Y = np.sin(X[:, :1]).astype(np.float32)
    p = init_params(0, (3, 6, 1), ("tanh", "identity"), "mse", "glorot")
    assert devices.compiler_options(p.sizes) != ()
    got = train(p, X, Y, optimizer=sgd(0.1), epochs=4, batch_size=None)
    assert devices._narrow_refused and devices.compiler_options(p.sizes) == ()
    again = train(p, X, Y, optimizer=sgd(0.1), epochs=4, batch_size=None)
    assert _leaves(got)[:-1] and all(
        np.array_equal(a, b) for a, b in zip(_leaves(got), _leaves(again))
    )
    # any other compile error is the caller's
    monkeypatch.setattr(devices, "_narrow_refused", False)
    assert not devices.refused_options(jax.errors.JaxRuntimeError("INVALID_ARGUMENT: other"))
    assert not devices.refused_options(ValueError("xla_cpu_experimental_ynn_fusion_type"))


# ---------------------------------------------------------------- the persistent cache
def _python(code: str, env: dict, **popen) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k != "JBPNN_NO_CACHE" and k not in JAX_CACHE}
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


_FIT = """
    import jax, numpy as np, jbpnn
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
    X = np.random.default_rng(0).uniform(size=(40, 5)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[(X[:, 0] > 0.5).astype(int)]
    p = jbpnn.init_params(0, (5, 7, 2), "tanh", "cross_entropy", "glorot")
    r = jbpnn.train(p, X, Y, optimizer=jbpnn.momentum(0.1, 0.9), epochs=5)
    print("dir", jax.config.jax_compilation_cache_dir)
    print("hits", len(hits))
    print("loss", repr(r.final_loss))
"""


def _report(proc: subprocess.Popen) -> dict[str, str]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert "Error reading" not in err and "Error writing" not in err, err[-3000:]
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_cache_is_on_by_default_per_user_and_shared_by_two_processes(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "JBPNN_CACHE_DIR": ""}
    folder = tmp_path / "jbpnn" / "jax"
    two = [_python(_FIT, env) for _ in range(2)]  # at once, on one (missing) folder
    cold = [_report(p) for p in two]
    assert cold[0]["dir"] == cold[1]["dir"] == str(folder)
    assert cold[0]["loss"] == cold[1]["loss"]
    assert any(folder.iterdir()) and (folder.stat().st_mode & 0o777) == 0o700
    warm = _report(_python(_FIT, env))
    assert int(warm["hits"]) >= 1 and warm["loss"] == cold[0]["loss"]


def test_train_many_turns_the_cache_on_as_train_does(tmp_path):
    code = """
        import jax, numpy as np, jbpnn
        X = np.random.default_rng(0).uniform(size=(40, 5)).astype(np.float32)
        Y = np.eye(2, dtype=np.float32)[(X[:, 0] > 0.5).astype(int)]
        spec = jbpnn.InitSpec((5, 7, 2), "tanh", "cross_entropy", "glorot")
        jbpnn.train_many(spec, X, Y, seeds=[0, 1], optimizer=jbpnn.sgd(0.1), epochs=2)
        print("dir", jax.config.jax_compilation_cache_dir)
    """
    report = _report(_python(code, {"JBPNN_CACHE_DIR": str(tmp_path / "c")}))
    assert report["dir"] == str(tmp_path / "c") and any((tmp_path / "c").iterdir())


def test_cache_folder_that_cannot_be_written_leaves_it_off(tmp_path, monkeypatch):
    before = jax.config.jax_compilation_cache_dir
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = [blocker / "jax"]  # cannot be created
    if Path("/proc").is_dir():
        bad.append(Path("/proc"))  # exists, read-only even for root
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        bad.append(ro)
    monkeypatch.delenv("JBPNN_NO_CACHE", raising=False)
    for folder in bad:  # a folder asked for by name: a warning names it
        with pytest.warns(UserWarning, match=f"folder {re.escape(str(folder))} cannot be used"):
            assert compilation_cache.enable_compilation_cache(folder) is None, folder
        assert jax.config.jax_compilation_cache_dir == before
    # the default: JAX's own folder unset (the suite sets one, which jbpnn leaves alone)
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        monkeypatch.setenv("JBPNN_CACHE_DIR", str(blocker / "jax"))
        monkeypatch.setattr(
            compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
        )
        with pytest.warns(UserWarning, match="cannot be used .*JBPNN_CACHE_DIR"):
            assert compilation_cache.default_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir is None
        # the default folder (no variable) that cannot be made: off, silently
        monkeypatch.delenv("JBPNN_CACHE_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
        monkeypatch.setattr(
            compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert compilation_cache.default_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_a_cache_folder_others_may_write_or_own_is_not_used(tmp_path, monkeypatch):
    """mkdir(mode=0o700, exist_ok=True) left an existing folder as it was: one that
    others may write to (or another user owns) held programs this process would run."""
    if not hasattr(os, "getuid"):
        pytest.skip("no owners and mode bits on this platform")
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.delenv("JBPNN_NO_CACHE", raising=False)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    folders = [shared]
    if os.getuid() == 0:  # root can hand a folder to another user
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, -1)
        folders.append(theirs)
    for folder in folders:
        with pytest.warns(UserWarning, match=f"folder {folder} is not private to this user"):
            assert compilation_cache.enable_compilation_cache(folder) is None
        assert jax.config.jax_compilation_cache_dir == before
    private = tmp_path / "private"
    private.mkdir(mode=0o755)  # writable by its owner only: used
    assert compilation_cache._private(private)


def test_cache_setting_and_variable_turn_it_off(tmp_path, monkeypatch):
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("JBPNN_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("JBPNN_NO_CACHE", "1")
    monkeypatch.setattr(
        compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
    )
    assert compilation_cache.default_compilation_cache() is None
    monkeypatch.setenv("JBPNN_NO_CACHE", "0")  # "0" is not "off"
    monkeypatch.setattr(
        compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
    )
    compilation_cache.disable_compilation_cache()  # the setting
    assert compilation_cache.default_compilation_cache() is None
    assert not (tmp_path / "c").exists() and jax.config.jax_compilation_cache_dir == before


def test_cache_folder_is_absolute_whatever_the_variables_say(tmp_path, monkeypatch):
    """A relative XDG_CACHE_HOME is ignored (the XDG specification); JBPNN_CACHE_DIR gets
    ``~`` expanded and a relative one is taken from the current folder once: no folder
    named ``~`` or ``relcache`` in the working directory, and no cache that moves (and
    stops being found) after an ``os.chdir``."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JBPNN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")
    assert compilation_cache.cache_dir() == tmp_path / "home" / ".cache" / "jbpnn" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache.cache_dir() == tmp_path / "xdg" / "jbpnn" / "jax"
    monkeypatch.setenv("JBPNN_CACHE_DIR", "~/jbcache")
    assert compilation_cache.cache_dir() == tmp_path / "home" / "jbcache"
    monkeypatch.setenv("JBPNN_CACHE_DIR", "rel/cache")
    assert compilation_cache.cache_dir() == tmp_path / "rel" / "cache"
    # an empty HOME is no home: the passwd entry's, as with HOME unset (Path.home() read it
    # as "/": root's cache went to /.cache/jbpnn/jax)
    import pwd

    passwd_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("HOME", "")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("JBPNN_CACHE_DIR")
    assert compilation_cache.cache_dir() == passwd_home / ".cache" / "jbpnn" / "jax"
    monkeypatch.setenv("JBPNN_CACHE_DIR", "~/jbcache")
    assert compilation_cache.cache_dir() == passwd_home / "jbcache"


def test_disable_after_enable_stops_writing(tmp_path):
    code = """
        import os, jax, jax.numpy as jnp, jbpnn
        folder = jbpnn.enable_compilation_cache()
        jax.jit(lambda x: x * 3 + 1)(jnp.ones(5)).block_until_ready()
        n = len(os.listdir(folder))
        jbpnn.disable_compilation_cache()
        jax.jit(lambda x: x * 5 + 2)(jnp.ones(5)).block_until_ready()
        print("entries", n, len(os.listdir(folder)), jax.config.jax_compilation_cache_dir)
    """
    out = _report(_python(code, {"JBPNN_CACHE_DIR": str(tmp_path)}))
    n, after, folder = out["entries"].split()
    assert int(n) >= 1 and after == n and folder == "None"


def test_finite_check_of_cpu_arrays_compiles_nothing():
    # read in place with NumPy: no program, the same message
    a = jnp.array([[1.0, 2.0], [3.0, np.inf]])
    from jbpnn.checks import check_finite

    with compiles() as names, pytest.raises(ValueError, match=r"index \(1, 1\)"):
        check_finite("X", a)
    assert names == []


def test_finite_check_reads_small_accelerator_arrays_on_the_host():
    # an accelerator's array of at most HOST_CHECK_BYTES is copied back (a copy is far
    # cheaper than compiling the check's program); a larger one is checked there
    from jbpnn import checks

    class Device:
        platform = "gpu"

    class OnGpu:
        is_fully_addressable = True

        def __init__(self, nbytes):
            self.nbytes = nbytes

        def devices(self):
            return {Device()}

    assert checks._read_on_host(OnGpu(checks.HOST_CHECK_BYTES))
    assert not checks._read_on_host(OnGpu(checks.HOST_CHECK_BYTES + 1))
    assert checks._read_on_host(jnp.zeros(3 * checks.HOST_CHECK_BYTES, jnp.uint8))  # the CPU


def test_the_command_line_leaves_a_cache_the_user_set_alone(capsys, tmp_path, monkeypatch):
    """jbpnn's command turned its own folder on over a JAX_COMPILATION_CACHE_DIR the user
    had set (the library's train left it alone, as documented)."""
    from jbpnn import cli

    before = jax.config.jax_compilation_cache_dir
    assert before  # the suite's session cache: a folder set before jbpnn runs
    monkeypatch.delenv("JBPNN_NO_CACHE", raising=False)
    monkeypatch.setenv("JBPNN_CACHE_DIR", str(tmp_path / "jbpnn"))
    monkeypatch.setattr(
        compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
    )
    try:
        assert cli.main(["example", "--which", "textbook"]) == 0
        assert jax.config.jax_compilation_cache_dir == before
        assert not (tmp_path / "jbpnn").exists()
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    capsys.readouterr()


def test_disabling_restores_jaxs_thresholds_and_an_empty_path_is_refused(tmp_path, monkeypatch):
    """disable_compilation_cache after jbpnn turned the cache on left JAX's thresholds at
    0 (a folder set later cached every program); enable_compilation_cache("") cached into
    the working folder."""
    names = (
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    saved = [getattr(jax.config, n) for n in names] + [jax.config.jax_compilation_cache_dir]
    monkeypatch.delenv("JBPNN_NO_CACHE", raising=False)
    monkeypatch.setattr(
        compilation_cache, "_state", dict(decided=False, disabled=False, folder=None)
    )
    try:
        jax.config.update(names[0], 1.0)
        jax.config.update(names[1], 0)
        assert compilation_cache.enable_compilation_cache(tmp_path / "c") == tmp_path / "c"
        assert getattr(jax.config, names[0]) == 0.0
        compilation_cache.disable_compilation_cache()
        assert [getattr(jax.config, n) for n in names] == [1.0, 0]
        with pytest.raises(ValueError, match="got an empty path"):
            compilation_cache.enable_compilation_cache("")
    finally:
        for n, v in zip((*names, "jax_compilation_cache_dir"), saved):
            jax.config.update(n, v)

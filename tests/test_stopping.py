"""jbpnn.stopping: the stop rules declared once, checked once, read by every caller."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jbpnn
import jbpnn.stopping as stopping_module
from jbpnn.many import InitSpec, train_many
from jbpnn.optimizers import sgd
from jbpnn.stopping import RUNNING, STOP_REASONS, Stopping, stack_rules, stop_reason_name

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, np.eye(2, dtype=np.float32)[y]


def test_defaults_and_switches():
    s = Stopping()
    assert s.as_dict() == {
        "tol": None,
        "min_weight_change": None,
        "n_iter_no_change": None,
        "validation_tol": None,  # the optimizer's: 1e-4, 0 with lm and br (for_optimizer)
        "monitor": "val_loss",
        "loss_patience": None,
        "loss_tol": 1e-4,
        "lr_factor": None,
        "min_lr": 1e-6,
        "max_loss_growth": 1e6,
        "max_abs_param": 1e9,
    }
    assert tuple(s.switches) == (False, False, False, False, "val_loss")
    on = Stopping(min_weight_change=0.0, n_iter_no_change=3, loss_patience=2, lr_factor=0.5)
    assert tuple(on.switches) == (True, True, True, True, "val_loss")


def test_rules_are_arrays_with_off_values():
    r = Stopping().rules(jnp.float32)
    assert float(r.tol) == -np.inf and float(r.max_loss_growth) == 1e6
    assert int(r.n_iter_no_change) == 0 and r.n_iter_no_change.dtype == jnp.int32
    r = Stopping(tol=0.5, max_loss_growth=None, max_abs_param=None).rules(jnp.float32)
    assert float(r.tol) == 0.5 and float(r.max_loss_growth) == np.inf
    assert float(r.max_abs_param) == np.inf and float(r.lr_factor) == 1.0


def test_frozen_hashable_and_replace_checks_again():
    s = Stopping(tol=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.tol = 0.2
    assert hash(s) == hash(Stopping(tol=0.1)) and s == Stopping(tol=0.1)
    assert s.replace(tol=0.2).tol == 0.2
    with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
        s.replace(tol=-1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tol": -1.0}, r"tol must be a finite number >= 0 or None, got -1.0"),
        (
            {"n_iter_no_change": 0},
            r"n_iter_no_change must be an integer >= 1 or None .* 0 is ambiguous",
        ),
        ({"loss_patience": 0}, r"loss_patience must be an integer >= 1 or None .* 0 is ambiguous"),
        ({"n_iter_no_change": 2.5}, r"n_iter_no_change must be an integer >= 1"),
        ({"validation_tol": -1e-4}, r"validation_tol must be a finite number >= 0 or None"),
        ({"loss_tol": None}, r"loss_tol must be a finite number >= 0, got None"),
        ({"lr_factor": 1.5, "loss_patience": 3}, r"lr_factor must lie in \(0, 1\)"),
        ({"lr_factor": 0.5}, r"lr_factor acts on a plateau: give loss_patience"),
        ({"monitor": "val_accuracy"}, r"monitor='val_accuracy' is what early stopping watches"),
        ({"monitor": "loss"}, r"monitor must be one of \['val_loss', 'val_accuracy', 'val_r2'\]"),
        ({"max_loss_growth": 0}, r"max_loss_growth must be a number > 0 or None \(off\)"),
    ],
)
def test_one_message_per_fault_in_the_librarys_terms(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        Stopping(**kwargs)
    assert "--" not in str(e.value) and "command line" not in str(e.value)


def _counting_check_int(monkeypatch):
    calls = []
    real = stopping_module.check_int

    def counting(name, *a, **k):
        calls.append(name)
        return real(name, *a, **k)

    monkeypatch.setattr(stopping_module, "check_int", counting)
    return calls


def test_train_checks_each_threshold_once(monkeypatch):
    X, Y = _data()
    p = jbpnn.init_params(0, (3, 4, 2))
    calls = _counting_check_int(monkeypatch)
    jbpnn.train(p, X, Y, optimizer=sgd(0.1), epochs=2, X_val=X, Y_val=Y, n_iter_no_change=10)
    assert calls.count("n_iter_no_change") == 1  # was 2: prepare_training and stop_rules


def test_train_many_checks_shared_thresholds_once_and_own_ones_per_network(monkeypatch):
    X, Y = _data()
    spec = InitSpec((3, 4, 2))
    calls = _counting_check_int(monkeypatch)
    kw = dict(hparams={"lr": 0.1}, optimizer="sgd", epochs=2, X_val=X, Y_val=Y)
    train_many(spec, X, Y, seeds=[0, 1, 2], n_iter_no_change=10, **kw)
    assert calls.count("n_iter_no_change") == 1  # was 2 + N
    calls.clear()
    train_many(spec, X, Y, seeds=[0, 1, 2], n_iter_no_change=[3, 4, 5], **kw)
    assert calls.count("n_iter_no_change") == 3  # one per network


def test_stopping_object_equals_the_keywords():
    X, Y = _data()
    p = jbpnn.init_params(0, (3, 4, 2))
    kw = dict(optimizer=sgd(0.5), epochs=40, X_val=X[:8], Y_val=Y[:8], batch_size=4)
    rules = dict(n_iter_no_change=3, tol=0.01, loss_patience=5)
    a = jbpnn.train(p, X, Y, **kw, **rules)
    b = jbpnn.train(p, X, Y, **kw, stopping=Stopping(**rules))
    assert a.epochs_run == b.epochs_run and a.stop_reason == b.stop_reason
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_giving_both_spellings_is_a_clear_error():
    X, Y = _data()
    p = jbpnn.init_params(0, (3, 4, 2))
    with pytest.raises(
        ValueError,
        match="either as stopping= or as keywords, not both: got stopping= and loss_patience, tol",
    ):
        jbpnn.train(p, X, Y, optimizer=sgd(0.1), stopping=Stopping(), tol=0.1, loss_patience=3)
    with pytest.raises(ValueError, match="not both"):
        train_many(
            InitSpec((3, 4, 2)),
            X,
            Y,
            seeds=[0, 1],
            hparams={"lr": 0.1},
            optimizer="sgd",
            stopping=Stopping(),
            tol=[0.1, 0.2],
        )
    with pytest.raises(ValueError, match="stopping must be a jbpnn Stopping"):
        jbpnn.train(p, X, Y, optimizer=sgd(0.1), stopping={"tol": 0.1})


def test_train_many_takes_one_stopping_per_network():
    X, Y = _data()
    spec = InitSpec((3, 4, 2))
    kw = dict(hparams={"lr": 0.5}, optimizer="sgd", epochs=30, batch_size=4)
    a = train_many(spec, X, Y, seeds=[0, 1], tol=[0.3, 0.0], **kw)
    b = train_many(spec, X, Y, seeds=[0, 1], stopping=[Stopping(tol=0.3), Stopping(tol=0.0)], **kw)
    assert list(a.epochs_run) == list(b.epochs_run)
    assert a[0].stop_reason == "loss_below_tol" and a[0].epochs_run < 30
    with pytest.raises(ValueError, match="one jbpnn Stopping or a sequence of 2"):
        train_many(spec, X, Y, seeds=[0, 1], stopping=[Stopping()], **kw)


def test_stack_rules_refuses_different_switches():
    rules = stack_rules([Stopping(tol=0.1), Stopping(tol=0.2)], jnp.float32)
    np.testing.assert_allclose(np.asarray(rules.tol), [0.1, 0.2])
    with pytest.raises(
        ValueError,
        match=r"network 1: a stop rule is on for some networks .*"
        r"watch_loss: False vs True",
    ):
        stack_rules([Stopping(), Stopping(loss_patience=3)], jnp.float32)


def test_stop_reasons_keep_their_codes():
    # codes are saved in checkpoints: new reasons are appended, never reordered
    old = "max_epochs loss_below_tol weight_change_below_threshold no_validation_improvement"
    assert STOP_REASONS[:6] == (*old.split(), "diverged", "no_loss_improvement")
    assert stop_reason_name(RUNNING) == "max_epochs"


def test_no_function_has_more_than_25_parameters_but_the_public_entry_points():
    allowed = {("training.py", "train"), ("many.py", "train_many"), ("sklearn.py", "__init__")}
    big = set()
    for path in (ROOT / "jbpnn").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                a = node.args
                if len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) > 25:
                    big.add((path.name, node.name))
    assert big <= allowed, big - allowed


def test_the_chunk_loop_exists_once():
    # train and train_many share jbpnn.training.run_chunks; neither writes its own
    for name in ("training.py", "many.py"):
        source = (ROOT / "jbpnn" / name).read_text()
        assert source.count("while ahead is not None") == (1 if name == "training.py" else 0)
    assert "run_chunks(" in (ROOT / "jbpnn" / "many.py").read_text()


def test_float16_rules_cast_without_an_overflow_warning():
    """max_loss_growth=1e6 and max_abs_param=1e9 overflow float16 (largest 65504): every
    float16 train warned "overflow encountered in cast"; they are inf there (no finite
    bound; the NaN/inf checks remain), quietly."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rules = Stopping().rules(jnp.float16)
    assert np.isinf(np.asarray(rules.max_loss_growth)) and np.isinf(np.asarray(rules.max_abs_param))

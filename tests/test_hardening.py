"""Issue 13's examples, each pinned through public behaviour (the CLI, io, train, ...).

Every test here was run against the code before the hardening (commit e3f4d5c, and
a0831d5 for ``jbpnn sweep``) and failed there for the defect itself, not for a
missing name; the other examples' tests live with their modules (test_cli, test_io,
test_data, test_params, test_training, test_network, test_optimizers).
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import one_line_error, run_cli, write_flowers

import jbpnn.network
from jbpnn.io import load, save
from jbpnn.optimizers import adam, momentum, sgd
from jbpnn.params import init_params
from jbpnn.training import train


@pytest.fixture
def flowers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_flowers(tmp_path)
    return tmp_path


TRAIN = ("train", "--data", "flowers.csv", "--target", "colour", "--hidden", "4", "--epochs", "2")


def _model(capsys, d):
    rc, _, err = run_cli(capsys, *TRAIN, "--save", "m.npz")
    assert rc == 0, err
    return (d / "m.npz").read_bytes()


TRAIN_LR = ("train", "--data", "flowers.csv", "--target", "colour", "--hidden", "4")


def _regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    return X, (X @ [3.0, -2.0])[:, None].astype(np.float32)


# ---------------------------------------------------------------- outputs vs inputs
def test_save_onto_the_data_file_is_refused(capsys, flowers):
    before = (flowers / "flowers.csv").read_bytes()
    rc, out, err = run_cli(capsys, *TRAIN, "--save", "flowers.csv")
    one_line_error(rc, err, "--save flowers.csv", "input")
    assert out == "" and (flowers / "flowers.csv").read_bytes() == before


def test_save_and_plot_onto_one_file_are_refused(capsys, flowers):
    pytest.importorskip("matplotlib")
    rc, out, err = run_cli(capsys, *TRAIN, "--save", "x.out", "--plot", "./x.out")
    one_line_error(rc, err, "same file")
    assert out == "" and not (flowers / "x.out").exists()


@pytest.mark.parametrize("target", ["m.npz", "flowers.csv"])
def test_predict_out_onto_an_input_is_refused(capsys, flowers, target):
    model = _model(capsys, flowers)
    data = (flowers / "flowers.csv").read_bytes()
    rc, _, err = run_cli(capsys, "predict", "m.npz", "flowers.csv", "--out", target)
    one_line_error(rc, err, f"--out {target}", "input")
    assert (flowers / "m.npz").read_bytes() == model
    assert (flowers / "flowers.csv").read_bytes() == data


# ---------------------------------------------------------------- special targets
def test_cli_never_replaces_a_fifo(capsys, flowers):
    # a FIFO made here stands in for a device node (never touch /dev in a test)
    os.mkfifo(flowers / "pipe")
    rc, out, err = run_cli(capsys, *TRAIN, "--save", "pipe")
    one_line_error(rc, err, "pipe", "FIFO")
    assert out == "" and stat.S_ISFIFO(os.lstat(flowers / "pipe").st_mode)
    _model(capsys, flowers)
    rc, _, err = run_cli(capsys, "predict", "m.npz", "flowers.csv", "--out", "pipe")
    one_line_error(rc, err, "pipe", "FIFO")
    assert stat.S_ISFIFO(os.lstat(flowers / "pipe").st_mode)


def test_save_never_replaces_a_fifo(tmp_path):
    from jbpnn.io import save
    from jbpnn.params import init_params

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="FIFO"):
        save(tmp_path / "pipe", init_params(0, (3, 2)))
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


# ---------------------------------------------------------------- SIGKILL mid-save
_KILLED = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import jbpnn.files as jfiles
    import jbpnn.io as jio
    from jbpnn.params import init_params
    if sys.argv[2] == "named":
        jfiles._USE_O_TMPFILE = False  # the portable fallback (an attribute of the fixed code)
    params = init_params(0, (3, 2))
    def slow(file, **arrays):
        file.write(b"PK half an archive"); file.flush()
        print("writing", flush=True)
        time.sleep(120)
    np.savez = slow
    jio.save(sys.argv[1], params)
    """
)


def _kill_mid_save(path, kind):
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(path), kind], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


@pytest.mark.skipif(sys.platform != "linux", reason="O_TMPFILE is Linux only")
def test_sigkill_during_save_leaves_no_file_on_linux(tmp_path):
    from jbpnn.io import load, save
    from jbpnn.params import init_params

    path = tmp_path / "m.npz"
    save(path, init_params(1, (3, 2)), v=1)
    _kill_mid_save(path, "default")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    assert load(path).metadata == {"v": 1}


def test_sigkill_leftover_is_cleaned_by_the_next_save(tmp_path):
    from jbpnn.io import load, save
    from jbpnn.params import init_params

    path = tmp_path / "m.npz"
    save(path, init_params(1, (3, 2)), v=1)
    _kill_mid_save(path, "named")
    save(path, init_params(1, (3, 2)), v=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    assert load(path).metadata == {"v": 2}


# ---------------------------------------------------------------- all outputs or none
def test_a_plot_that_fails_leaves_no_model(capsys, flowers, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    def broken(self, *args, **kwargs):
        raise RuntimeError("the renderer broke")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    rc, _, err = run_cli(capsys, *TRAIN, "--save", "m.npz", "--plot", "c.png")
    one_line_error(rc, err, "the renderer broke")
    assert not (flowers / "m.npz").exists() and not (flowers / "c.png").exists()


# ---------------------------------------------------------------- ENOSPC
def test_full_disk_is_one_line_keeps_the_old_model_and_no_temp(capsys, flowers, monkeypatch):
    """A full disk wherever the bytes reach the file: numpy's writes or os.write."""
    rc, _, err = run_cli(capsys, *TRAIN, "--save", "m.npz")
    assert rc == 0, err
    before = (flowers / "m.npz").read_bytes()
    real_savez, real_write = np.savez, os.write

    def savez(file, *args, **kwargs):
        if isinstance(file, io.BytesIO):  # rendered in memory: not the disk yet
            return real_savez(file, *args, **kwargs)
        file.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    def write(fd, data):
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(np, "savez", savez)
    monkeypatch.setattr(os, "write", write)
    rc, _, err = run_cli(capsys, *TRAIN, "--save", "m.npz")
    monkeypatch.undo()
    one_line_error(rc, err, "No space left on device")
    assert (flowers / "m.npz").read_bytes() == before
    assert sorted(p.name for p in flowers.iterdir()) == ["flowers.csv", "m.npz"]


# ---------------------------------------------------------------- --seed 2**70
@pytest.mark.parametrize("command", ["train", "demo", "gradcheck", "sweep"])
def test_huge_seed_is_one_line(capsys, command):
    rc, out, err = run_cli(capsys, command, "--seed", str(2**70))
    one_line_error(rc, err, "--seed")
    assert out == ""


# ---------------------------------------------------------------- help shows every default
def test_every_option_help_names_its_default():
    from jbpnn.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        formatter = sub._get_formatter()  # the subcommand's own formatter class
        for action in sub._actions:
            plain_flag = action.nargs == 0 and action.default in (False, argparse.SUPPRESS)
            if not action.option_strings or plain_flag or action.help == argparse.SUPPRESS:
                continue
            if "default" not in (formatter._get_help_string(action) or ""):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


# ---------------------------------------------------------------- API: bad keys and arrays
@pytest.mark.parametrize(
    "key, error, message",
    [
        ("abc", TypeError, r"^key must be an int seed or a jax.random.key, got str"),
        (1.5, TypeError, r"^key must be an int seed or a jax.random.key, got float"),
        ((0, 1), TypeError, r"^key must be an int seed or a jax.random.key, got tuple"),
        (2**64, ValueError, r"^key: a seed must lie in 0 .. 2\*\*32 - 1"),
    ],
    ids=["str", "float", "tuple", "2**64"],
)
def test_bad_keys_are_named_by_init_params_and_train(key, error, message):
    from jbpnn.params import init_params
    from jbpnn.training import train

    with pytest.raises(error, match=message):
        init_params(key, (3, 2))
    X = np.zeros((4, 3), np.float32)
    Y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    with pytest.raises(error, match=message):
        train(init_params(0, (3, 2)), X, Y, optimizer=momentum(0.1), epochs=1, key=key)


@pytest.mark.parametrize(
    "X", [np.array([["a", "b", "c"]] * 2), [[1.0, 2.0, 3.0], [1.0, 2.0]]], ids=["str", "ragged"]
)
def test_string_and_ragged_arrays_name_the_argument(X):
    import jbpnn
    from jbpnn.training import train

    p = jbpnn.init_params(0, (3, 2))
    Y = np.zeros((2, 2), np.float32)
    for call in (
        lambda: jbpnn.predict(p, X),
        lambda: jbpnn.loss(p, X, Y),
        lambda: train(p, X, Y, optimizer=momentum(0.1), epochs=1),
    ):
        with pytest.raises(ValueError, match="X must be an array of numbers"):
            call()


def test_a_tuple_as_params_names_params():
    import jbpnn
    from jbpnn.training import train

    layers = tuple(jbpnn.init_params(0, (3, 2)).layers)
    X, Y = np.zeros((2, 3), np.float32), np.zeros((2, 2), np.float32)
    for call in (
        lambda: jbpnn.predict(layers, X),
        lambda: jbpnn.loss(layers, X, Y),
        lambda: jbpnn.batch_gradient(layers, X, Y),
        lambda: train(layers, X, Y, optimizer=momentum(0.1), epochs=1),
    ):
        with pytest.raises((TypeError, ValueError), match="MLP.*got tuple"):
            call()


# ---------------------------------------------------------------- divergence
def test_lr_1e9_does_not_replace_a_good_model(capsys, flowers):
    rc, _, err = run_cli(capsys, *TRAIN_LR, "--epochs", "50", "--lr", "0.3", "--save", "m.npz")
    assert rc == 0, err
    before = (flowers / "m.npz").read_bytes()
    rc, out, err = run_cli(capsys, *TRAIN_LR, "--epochs", "20", "--lr", "1e9", "--save", "m.npz")
    assert rc == 2 and "diverged" in err and "nothing was saved" in err, (rc, out, err)
    assert (flowers / "m.npz").read_bytes() == before  # before: replaced, exit 0


@pytest.mark.parametrize("m", ["1.0", "1.5"])  # m < 0: refused already before
def test_impossible_momentum_on_the_command_line(capsys, flowers, m):
    rc, out, err = run_cli(capsys, *TRAIN_LR, "--epochs", "2", "--momentum", m)
    assert rc == 2 and "--momentum" in err and len(err.splitlines()) == 1, (rc, out, err)
    assert out == ""


def test_adam_lr_1e6_full_batch_is_divergence():
    X, y = _regression()
    p = init_params(jax.random.key(0), (2, 64, 1), ["sigmoid", "identity"], "mse")
    r = train(p, X, y, optimizer=adam(1e6), epochs=300)  # before: max_epochs, loss ~5e14
    assert r.stop_reason == "diverged" and r.diverged_at < 10, r


@pytest.mark.parametrize("batch_size", [32, 1])
def test_adam_lr_1e6_mini_batch_is_divergence(batch_size):
    # mini-batch: the first epoch's loss is already ~1e13 (the blow-up happens inside
    # epoch 1), so a rule against the first epoch's loss never fires (loss 1e9..1e15);
    # the reference is the loss before the first update
    X, y = _regression()
    p = init_params(jax.random.key(0), (2, 64, 1), ["sigmoid", "identity"], "mse")
    r = train(p, X, y, optimizer=adam(1e6), epochs=100, batch_size=batch_size)
    assert r.stop_reason == "diverged", (r, float(r.history["loss"][-1]))


def test_pickled_member_is_reported_as_a_pickle_not_as_truncated(tmp_path):
    path = tmp_path / "m.npz"
    save(path, init_params(jax.random.key(0), (3, 4, 2)))
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    entries["w0"] = np.array([{"payload": 1}], dtype=object)  # a pickled member
    np.savez(path, **entries)
    with pytest.raises(ValueError, match=r"m\.npz.*pickle") as info:
        load(path)
    assert "truncated" not in str(info.value)  # before: "truncated or damaged"


@pytest.mark.parametrize(
    "weight",
    [[0.0] * 4, [-1.0] * 4, [1.0, 1.0, -1.0, -1.0], [np.nan, 1.0, 1.0, 1.0]],
    ids=["all-zero", "negative", "sum-zero", "nan"],
)
@pytest.mark.parametrize("fn", ["loss", "batch_gradient", "loss_and_gradient"])
def test_bad_sample_weights_are_refused_by_the_network_functions(fn, weight):
    # before: NaN (zero sums, NaN) or a weighted "reward" (negative weights), no error
    p = init_params(jax.random.key(0), (3, 4, 2), "sigmoid", "cross_entropy")
    X = np.random.default_rng(0).normal(size=(4, 3))
    Y = np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="sample_weight"):
        getattr(jbpnn.network, fn)(p, X, Y, sample_weight=np.array(weight))


def test_weights_too_small_for_the_dtype_are_refused_with_the_way_out():
    """All below float32's smallest normal: the run stopped as "diverged" after one epoch,
    advising a lower learning rate; 1e-37 trains as unweighted. Estimator and train."""
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    p = init_params(jax.random.key(0), (3, 4, 2), "sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match=r"below the smallest normal float32.*scale them up"):
        train(p, X, np.eye(2)[y], optimizer=sgd(0.1), sample_weight=np.full(20, 1e-40, np.float32))
    pytest.importorskip("sklearn")
    from jbpnn.sklearn import BPNNClassifier

    with pytest.raises(ValueError, match=r"below the smallest normal float32"):
        BPNNClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(
            X, y, sample_weight=np.full(20, 1e-40)
        )
    fit = BPNNClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(
        X, y, sample_weight=np.full(20, 1e-37)
    )
    assert fit.stop_reason_ != "diverged"


@pytest.mark.parametrize("where", ["X", "Y"])
def test_complex_data_is_refused_not_cast_to_its_real_part(where):
    """A complex X or Y was cast to its real part (one NumPy ComplexWarning at most)."""
    p = init_params(jax.random.key(0), (3, 4, 2), "sigmoid", "mse")
    X, Y = np.ones((2, 3)), np.zeros((2, 2))
    X, Y = (X * (1 + 5j), Y) if where == "X" else (X, Y * (1 + 5j))
    with pytest.raises(ValueError, match=f"{where} has complex values"):
        jbpnn.network.loss(p, X, Y)
    with pytest.raises(ValueError, match=f"{where} has complex values"):
        train(p, jax.numpy.asarray(X), jax.numpy.asarray(Y), optimizer=sgd(0.1), epochs=1)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_loading_a_fifo_is_refused_at_once(tmp_path, capsys):
    """Opening a FIFO blocks until a writer comes: load (and the CLI's predict) hung."""
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load(fifo)
    data = tmp_path / "x.csv"
    data.write_text("a,b,c\n1,2,3\n")
    one_line_error(*run_cli(capsys, "predict", fifo, data)[::2], "not a regular file")


def test_cross_entropy_targets_of_minus_one_are_refused_by_loss():
    p = init_params(jax.random.key(0), (3, 4, 2), "sigmoid", "cross_entropy")
    X = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"cross_entropy needs targets in \[0, 1\]"):
        jbpnn.loss(p, X, -np.ones((4, 2)))  # before: a negative loss, no error


# ---------------------------------------------------------------- errors name the right thing
def _case():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))  # float64 on the host; the params are float32
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    p = init_params(jax.random.key(0), (3, 4, 2), "sigmoid", "cross_entropy")
    return p, X, Y


def test_values_too_large_for_the_params_dtype_are_not_called_nan():
    p, X, Y = _case()
    big = X.copy()
    big[3, 1] = 1e300  # finite in float64, inf once cast to float32
    with pytest.raises(ValueError, match=r"X has values too large for float32") as info:
        train(p, big, Y, optimizer=sgd(0.1), epochs=1)
    assert "NaN" not in str(info.value)  # before: "X contains 1 NaN or inf value(s)"
    with pytest.raises(ValueError, match=r"X_val has values too large for float32"):
        train(p, X, Y, optimizer=sgd(0.1), epochs=1, X_val=big, Y_val=Y, n_iter_no_change=2)


def test_nan_in_the_validation_set_names_x_val_and_y_val():
    p, X, Y = _case()
    bad = X.copy()
    bad[2, 1] = np.nan
    kw = dict(optimizer=sgd(0.1), epochs=1, n_iter_no_change=2)
    with pytest.raises(ValueError, match=r"^X_val contains 1 NaN or inf .* \(2, 1\)"):
        train(p, X, Y, X_val=bad, Y_val=Y, **kw)  # before: "X contains ..."
    Y_bad = Y.copy()
    Y_bad[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Y_val contains 1 NaN or inf"):
        train(p, X, Y, X_val=X, Y_val=Y_bad, **kw)


# ---------------------------------------------------------------- predict: columns by name
@pytest.fixture
def only_a_matters(tmp_path, monkeypatch):
    """The class is decided by column 'a' alone; 'b' and 'c' are noise of another scale."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, 90)
    a = c * 3.0 + rng.normal(size=90) * 0.3
    b, n = rng.normal(size=90) * 0.3 - 5.0, rng.normal(size=90) * 0.3 + 9.0
    names = np.array(["red", "green", "blue"])[c]
    rows = "".join(f"{x:.4f},{y:.4f},{s},{z:.4f}\n" for x, y, s, z in zip(a, b, names, n))
    (tmp_path / "train.csv").write_text("a,b,colour,c\n" + rows)
    return tmp_path, np.stack([a, b, n], 1), names


def test_reordered_named_columns_give_the_same_predictions(capsys, only_a_matters):
    d, X, names = only_a_matters
    rc, _, err = run_cli(
        capsys, "train", "--data", "train.csv", "--target", "colour", "--hidden", "4",
        "--epochs", "200", "--lr", "0.3", "--save", "m.npz",
    )  # fmt: skip
    assert rc == 0, err
    rows = X[:20]
    (d / "ordered.csv").write_text("a,b,c\n" + "".join(f"{x},{y},{z}\n" for x, y, z in rows))
    (d / "shuffled.csv").write_text("c,a,b\n" + "".join(f"{z},{x},{y}\n" for x, y, z in rows))
    rc, ordered, err = run_cli(capsys, "predict", "m.npz", "ordered.csv")
    assert rc == 0, err
    assert np.mean(np.array(ordered.split()) == names[:20]) >= 0.9
    rc, shuffled, err = run_cli(capsys, "predict", "m.npz", "shuffled.csv")
    assert rc == 0, err
    assert shuffled == ordered  # by name, not by position (before: a different answer, exit 0)


def test_init_params_refuses_a_none_key():
    """The issue lists key=None with the bad keys; init_params documents no None."""
    from jbpnn.params import init_params

    with pytest.raises(
        TypeError, match=r"^key must be an int seed or a jax.random.key, got NoneType"
    ):
        init_params(None, (3, 2))


def test_n_iter_no_change_zero_says_how_to_turn_early_stopping_off():
    # off is None (0 is refused as ambiguous, as scikit-learn refuses it), and the
    # message says so in the library's own terms, not the command line's
    p = init_params(0, (3, 2))
    X, Y = np.zeros((4, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match=r"None: early stopping off\), got 0: 0 is ambiguous") as e:
        train(p, X, Y, optimizer=sgd(0.1), X_val=X, Y_val=Y, n_iter_no_change=0)
    assert "command line" not in str(e.value) and "--" not in str(e.value)


def test_a_save_path_ending_in_a_slash_is_refused(capsys, flowers):
    rc, out, err = run_cli(capsys, *TRAIN, "--save", "m.npz/")
    one_line_error(rc, err, "m.npz/", "names a folder")
    assert out == "" and not (flowers / "m.npz").exists()  # before: m.npz written, exit 0
    with pytest.raises(IsADirectoryError, match="names a folder"):
        save(str(flowers / "n.npz") + "/", init_params(0, (3, 2)))


# ---------------------------------------------------------------- argument fuzzing (session 20)
def _tiny():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(20, 3)).astype(np.float32)
    return jbpnn.init_params(0, (3, 4, 1)), X, X.sum(1, keepdims=True)


def test_masked_and_date_arrays_are_refused_not_read_as_their_raw_values():
    """np.asarray dropped a mask (the masked 1e6 was data) and read dates as day counts."""
    p, X, Y = _tiny()
    Xm = X.copy()
    Xm[0, 0] = 1e6
    masked = np.ma.masked_array(Xm, mask=np.arange(Xm.size).reshape(Xm.shape) == 0)
    with pytest.raises(ValueError, match=r"X is a masked array with 1 masked values"):
        jbpnn.predict(p, masked)
    with pytest.raises(ValueError, match=r"X is a masked array"):
        jbpnn.train(p, masked, Y, optimizer=jbpnn.sgd(0.1), epochs=1)
    np.testing.assert_array_equal(jbpnn.predict(p, np.ma.masked_array(X)), jbpnn.predict(p, X))
    with pytest.raises(ValueError, match=r"X holds dates or durations \(datetime64\[D\]\)"):
        jbpnn.predict(p, np.arange(60).astype("datetime64[D]").reshape(20, 3))
    with pytest.raises(ValueError, match=r"Y holds dates or durations"):
        jbpnn.train(p, X, Y.astype("timedelta64[s]"), optimizer=jbpnn.sgd(0.1), epochs=1)


@pytest.mark.parametrize("value", [None, 0, 1, "False", "no"])
def test_flags_take_true_or_false_only(value):
    """check_finite=None switched the NaN check off, "False" switched it on; article_mode
    took "yes" and 1 as True."""
    p, X, Y = _tiny()
    with pytest.raises(ValueError, match=r"check_finite must be True or False"):
        jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1, check_finite=value)
    with pytest.raises(ValueError, match=r"check_finite must be True or False"):
        jbpnn.predict(p, X, check_finite=value)
    with pytest.raises(ValueError, match=r"article_mode must be True or False"):
        jbpnn.init_params(0, (3, 4, 1), article_mode=value)
    assert jbpnn.init_params(0, (3, 4, 1), article_mode=np.True_).article_mode is True


@pytest.mark.parametrize(
    "sizes", [{3, 4, 1}, None, 3, "341", {"a": 3, "b": 1}, np.ones((2, 2), int)]
)
def test_sizes_must_be_an_ordered_sequence(sizes):
    """A set was reordered ({3, 4, 1} -> (1, 3, 4)); None and 3 raised "not iterable"."""
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"sizes must be a list, tuple or 1-D array of layer"):
        jbpnn.init_params(0, sizes)
    with pytest.raises(ValueError, match=r"sizes must be a list, tuple or 1-D array"):
        jbpnn.train_many(
            jbpnn.InitSpec(sizes), X, X[:, :1], seeds=[0, 1], optimizer=jbpnn.sgd(0.1), epochs=1
        )
    for ordered in (jnp.array([3, 4, 1]), range(3, 5), (n for n in (3, 4, 1))):
        assert jbpnn.init_params(0, ordered).sizes[0] == 3


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"activations": None}, r"activations must be a name or a list of names"),
        ({"activations": 5}, r"activations must be a name or a list of names"),
        ({"loss": ["mse"]}, r"unknown loss \['mse'\]"),
    ],
)
def test_init_params_names_a_bad_name_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        jbpnn.init_params(0, (3, 4, 1), **kw)


@pytest.mark.parametrize(
    "key, error, match",
    [
        (jax.random.split(jax.random.key(0), 2), ValueError, r"key must be ONE jax.random key"),
        (jnp.array(5.0), TypeError, r"key must be an int seed or a jax.random.key"),
        (jnp.array([0, 5]), TypeError, r"key must be an int seed or a jax.random.key"),
    ],
)
def test_init_params_keys_that_are_not_one_key_are_named(key, error, match):
    with pytest.raises(error, match=match):
        jbpnn.init_params(key, (3, 4, 1))


def test_a_0d_numpy_seed_is_a_seed():
    a, b = jbpnn.init_params(np.array(5), (3, 4, 1)), jbpnn.init_params(5, (3, 4, 1))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_variant_lists_are_named_not_unhashable():
    with pytest.raises(ValueError, match=r"unknown momentum variant \['article'\]"):
        jbpnn.momentum(0.1, variant=["article"])
    with pytest.raises(ValueError, match=r"unknown adam variant \['corrected'\]"):
        jbpnn.adam(0.1, variant=["corrected"])


@pytest.mark.parametrize("name", ["n_iter_no_change", "loss_patience"])
def test_patience_counts_past_int32_are_refused(name):
    """The count is an int32 in the compiled program: 2**31 raised a raw OverflowError."""
    p, X, Y = _tiny()
    kw = {name: 2**31, "X_val": X, "Y_val": Y}
    with pytest.raises(ValueError, match=rf"{name} must be an integer from 1 to 2147483647"):
        jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1, **kw)
    jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1, **{**kw, name: 2**31 - 1})


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({"epochs": 2**31}, ValueError, r"epochs must be an integer from 1 to 2147483647"),
        ({"history_chunk": 2**31}, ValueError, r"history_chunk must be an integer from 1 to"),
        ({"history_chunk": 10**9}, MemoryError, r"history ring buffers of history_chunk="),
    ],
)
def test_counts_and_buffers_past_what_a_program_holds_are_refused(kw, error, match):
    """epochs=2**31 (an int32 counter) ran; history_chunk=2**31 raised a raw OverflowError,
    10**9 allocated gigabytes for a 3-epoch run."""
    p, X, Y = _tiny()
    with pytest.raises(error, match=match):
        jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), **{"epochs": 3, **kw})


def test_lbfgs_history_past_memory_is_refused_by_name():
    p, X, Y = _tiny()
    with pytest.raises(ValueError, match=r"history must be an integer from 1 to 2147483647"):
        jbpnn.lbfgs(history=2**63)
    with pytest.raises(MemoryError, match=r"L-BFGS's history=1000000000 pairs"):
        jbpnn.train(p, X, Y, optimizer=jbpnn.lbfgs(history=10**9), epochs=2)


def test_missing_targets_and_bad_paths_are_named():
    p, X, Y = _tiny()
    with pytest.raises(ValueError, match=r"Y is None: train needs the targets"):
        jbpnn.train(p, X, None, optimizer=jbpnn.sgd(0.1))
    with pytest.raises(ValueError, match=r"Y is None: evaluate needs the targets"):
        jbpnn.evaluate(p, X, None)
    with pytest.raises(TypeError, match=r"cannot load None: a path is a file name"):
        jbpnn.load(None)
    with pytest.raises(TypeError, match=r"cannot save to None: a path is a file name"):
        jbpnn.save(None, p)
    with pytest.raises(TypeError, match=r"params must be an MLP"):
        jbpnn.n_params(None)


def test_bytes_paths_save_and_load(tmp_path):
    """The message for None said bytes are accepted; pathlib then refused them."""
    p, _, _ = _tiny()
    path = os.fsencode(tmp_path / "m.npz")
    jbpnn.save(path, p)
    assert jbpnn.load(path).params.sizes == (3, 4, 1)


@pytest.mark.parametrize(
    "grad_fn, match",
    [
        (lambda p, x, y, w: 1.0, r"grad_fn must return \(loss, grads\).*got float"),
        (lambda p, x, y, w: (1.0, 2.0), r"its grads are PyTreeDef"),
        (lambda p, x, y, w: (jnp.ones(3), jbpnn.loss_and_gradient(p, x, y)[1]), r"loss has shape"),
    ],
)
def test_a_grad_fn_returning_the_wrong_thing_is_named(grad_fn, match):
    """One float raised "cannot unpack non-iterable float object" from the trace."""
    p, X, Y = _tiny()
    with pytest.raises(ValueError, match=match):
        jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), grad_fn=grad_fn, epochs=1)


def test_number_messages_name_the_number_kind_and_the_optimizerless_state():
    from fractions import Fraction

    from jbpnn.optimizers import set_hyperparams
    from jbpnn.stopping import Stopping

    with pytest.raises(ValueError, match=r"lr must be a number \(an int or a float\)"):
        jbpnn.sgd(Fraction(1, 10))
    state = jbpnn.sgd(0.1).init(jbpnn.init_params(0, (2, 2, 1)))
    with pytest.raises(ValueError, match=r"^lr=1e\+39 overflows to inf"):
        set_hyperparams(state, lr=1e39)
    for bad in (True, float("nan"), -1):
        with pytest.raises(ValueError, match=r"lr_factor must lie in \(0, 1\)"):
            Stopping(lr_factor=bad, loss_patience=3)


def test_gradcheck_refuses_a_batch_it_cannot_hold(capsys):
    """--batch 3000000000 aborted the process (XLA: Check failed: buffer_.IsConcrete())."""
    rc, _, err = run_cli(capsys, "gradcheck", "--sizes", "3,2,1", "--batch", "3000000000")
    assert rc == 2 and "batch_size must be an integer from 1 to 2147483647" in err
    rc, _, err = run_cli(capsys, "gradcheck", "--sizes", "3,2,1", "--batch", "900000000000")
    assert rc == 2


def test_thresholds_take_0d_arrays_as_the_optimizers_do():
    """tol=np.array(0.1) was refused ("must be a non-negative number") where
    sgd(np.array(0.1)) is taken; a concrete JAX scalar is checked as its value."""
    p, X, Y = _tiny()
    for tol in (np.array(5.0), jnp.array(5.0)):
        r = jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=3, tol=tol)
        assert r.stop_reason == "loss_below_tol"
    with pytest.raises(ValueError, match=r"tol must be a finite number >= 0 or None, got -1.0"):
        jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=3, tol=jnp.array(-1.0))


def test_what_the_new_checks_must_still_take(tmp_path):
    """Regressions a review of this session's checks found (each worked before them):
    train_test_split's seed None / Generator, one_hot of a 0-d class count, a figure name
    with a dot in its stem, tuple cells in JSON, lr_factor and flags as 0-d arrays, a
    NumPy bool for sort, a forwarded validation_tol=1e-4 beside stopping=."""
    from jbpnn.plots import plot_history
    from jbpnn.stopping import Stopping
    from jbpnn.tables import ResultsTable

    X, y = np.arange(20.0)[:, None], np.arange(20) % 2
    for seed in (None, np.random.default_rng(1), np.random.SeedSequence(3)):
        assert jbpnn.train_test_split(X, y, seed=seed)[1].shape == (4, 1)
    assert jbpnn.one_hot(np.array([0, 2]), jnp.array(3)).shape == (2, 3)
    pytest.importorskip("matplotlib")
    plot_history(tmp_path / "curve_lr0.1", {"loss": np.ones(3)}, "t")
    assert (tmp_path / "curve_lr0.1").read_bytes().startswith(b"\x89PNG")
    written = json.loads(ResultsTable([{"sizes": (3, 4, 1)}]).to_json())
    assert written["rows"][0]["sizes"] == [3, 4, 1]
    assert Stopping(lr_factor=np.array(0.5), loss_patience=2).lr_factor == 0.5
    assert Stopping(lr_factor=jnp.array(0.5), loss_patience=2).lr_factor == 0.5
    rows = ResultsTable([{"a": 1}, {"a": 2}]).sort("a", descending=np.bool_(True)).rows
    assert [r["a"] for r in rows] == [2, 1]
    p, Xt, Yt = _tiny()
    assert jbpnn.init_params(0, (3, 4, 1), article_mode=jnp.array(False)).article_mode is False
    kw = dict(optimizer=jbpnn.sgd(0.1), epochs=1)
    jbpnn.train(p, Xt, Yt, check_finite=np.array(True), **kw)
    jbpnn.train(p, Xt, Yt, stopping=Stopping(tol=0.1), validation_tol=1e-4, **kw)


def test_a_schedules_parameter_given_with_an_optimizer_name_says_where_it_goes():
    """hparams={"lr": step_decay(...), "drop": [...]} with optimizer="sgd" said only
    "optimizer 'sgd' does not take ['drop']"; with the optimizer given with its schedule
    the same sweep works."""
    from jbpnn.optimizers import step_decay

    _, X, Y = _tiny()
    kw = dict(seeds=[0, 1], epochs=2)
    spec, schedule = jbpnn.InitSpec((3, 4, 1)), step_decay(0.3, 0.5, 3)
    with pytest.raises(ValueError, match=r"drop belongs to a learning-rate schedule"):
        hparams = {"lr": schedule, "drop": [0.5, 0.9]}
        jbpnn.train_many(spec, X, Y, optimizer="sgd", hparams=hparams, **kw)
    hparams = {"drop": [0.5, 0.9]}
    jbpnn.train_many(spec, X, Y, optimizer=jbpnn.sgd(schedule), hparams=hparams, **kw)

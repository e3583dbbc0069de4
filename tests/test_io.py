"""Save/load: exact round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import pickle
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import jbpnn
import jbpnn.io as jio
from jbpnn.io import FORMAT, FORMAT_VERSION, Saved, load, save
from jbpnn.optimizers import adam, lbfgs, momentum
from jbpnn.params import MLP, init_params
from jbpnn.training import TrainState, train


def _params(dtype=jnp.float32, **kw) -> MLP:
    key = jax.random.key(3)
    return init_params(key, (4, 5, 3), "tanh", "mse", init="glorot", dtype=dtype, **kw)


def _assert_same(a: MLP, b: MLP) -> None:
    assert (a.activations, a.loss, a.article_mode, a.sizes) == (
        b.activations,
        b.loss,
        b.article_mode,
        b.sizes,
    )
    for la, lb in zip(a.layers, b.layers):
        for x, y in ((la.w, lb.w), (la.b, lb.b)):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # exact, not close


# ---------------------------------------------------------------- round trips
def test_round_trip_float32_with_metadata(tmp_path):
    params = _params()
    path = tmp_path / "model.npz"
    meta = {"epochs": 1000, "lr": 0.1, "note": "demo 1", "history": [0.5, 0.25], "nested": {"a": 1}}
    written = save(path, params, **meta)
    assert written == path and path.exists()
    loaded = load(path)
    assert isinstance(loaded, Saved)
    _assert_same(loaded.params, params)
    assert loaded.params.dtype == jnp.float32
    assert loaded.metadata == meta


def test_round_trip_float64(tmp_path, x64):
    params = _params(jnp.float64)
    save(tmp_path / "m.npz", params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no float64 warning when x64 is on
        got, meta = load(tmp_path / "m.npz")
    assert got.dtype == jnp.float64
    _assert_same(got, params)
    assert meta == {}


def test_float64_file_without_x64_warns(tmp_path):
    with jax.enable_x64(True):
        save(tmp_path / "m.npz", _params(jnp.float64))
    with pytest.warns(UserWarning, match="float64.*enable_x64"):
        got, _ = load(tmp_path / "m.npz")
    assert got.dtype == jnp.float32


def test_round_trip_bfloat16_and_mixed_architecture(tmp_path):
    params = init_params(
        jax.random.key(0), (3, 6, 4, 2), ("relu", "tanh", "softmax"), "cross_entropy",
        dtype=jnp.bfloat16,
    )  # fmt: skip
    save(tmp_path / "m.npz", params)
    _assert_same(load(tmp_path / "m.npz").params, params)


def test_round_trip_article_mode(tmp_path):
    params = init_params(jax.random.key(1), (5, 3, 1), article_mode=True)
    save(tmp_path / "m.npz", params)
    assert load(tmp_path / "m.npz").params.article_mode is True


def test_file_contents_are_documented_entries(tmp_path):
    save(tmp_path / "m.npz", _params(), run="x")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert (
            str(z["format"]) == FORMAT and int(z["format_version"]) == 2
        )  # 3 only with replaced units
        assert tuple(z["sizes"]) == (4, 5, 3)
        assert list(z["activations"]) == ["tanh", "tanh"]
        assert str(z["loss"]) == "mse" and str(z["dtype"]) == "float32"
        assert z["w0"].shape == (4, 5) and z["b1"].shape == (3,)
        assert json.loads(str(z["metadata"])) == {"run": "x"}


def test_exact_path_no_suffix_added(tmp_path):
    path = tmp_path / "model"  # numpy.savez would write model.npz
    save(path, _params())
    assert path.exists() and not (tmp_path / "model.npz").exists()
    _assert_same(load(path).params, _params())


def test_metadata_numpy_and_jax_values_become_python(tmp_path):
    save(tmp_path / "m.npz", _params(), loss=np.float32(0.5), n=np.int64(3), arr=jnp.arange(3))
    assert load(tmp_path / "m.npz").metadata == {"loss": 0.5, "n": 3, "arr": [0, 1, 2]}


def test_metadata_keys_may_be_path_or_params(tmp_path):
    save(tmp_path / "m.npz", _params(), path="elsewhere", params=3)
    assert load(tmp_path / "m.npz").metadata == {"path": "elsewhere", "params": 3}


def test_non_serialisable_metadata_names_the_key(tmp_path):
    with pytest.raises(TypeError, match="metadata 'callback'.*JSON"):
        save(tmp_path / "m.npz", _params(), ok=1, callback=print)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_save_rejects_non_mlp(tmp_path):
    with pytest.raises(TypeError, match="expects an MLP"):
        save(tmp_path / "m.npz", [(np.ones((2, 2)), np.ones(2))])


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(tmp_path / "nope" / "m.npz", _params())


# ---------------------------------------------------------------- atomic write
def _boom_mid_write(file, **arrays):
    file.write(b"PK\x03\x04 half an archive")
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch, where):
    path = tmp_path / "model.npz"
    old = _params()
    save(path, old, version="old")
    before = path.read_bytes()

    if where == "savez":
        monkeypatch.setattr(jio.np, "savez", _boom_mid_write)
    elif where == "fsync":

        def bad_fsync(fd):
            raise OSError("fsync failed")

        monkeypatch.setattr(jio.os, "fsync", bad_fsync)
    else:

        def bad_replace(src, dst):
            raise OSError("rename failed")

        monkeypatch.setattr(jio.os, "replace", bad_replace)

    new = init_params(jax.random.key(99), (2, 2))
    with pytest.raises((RuntimeError, OSError)):
        save(path, new, version="new")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp file left behind
    params, meta = load(path)
    _assert_same(params, old)
    assert meta == {"version": "old"}


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(jio.np, "savez", _boom_mid_write)
    with pytest.raises(RuntimeError):
        save(tmp_path / "m.npz", _params())
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params(), v=1)
    save(path, init_params(jax.random.key(5), (2, 3)), v=2)
    params, meta = load(path)
    assert params.sizes == (2, 3) and meta == {"v": 2}


# ---------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match=r"absent\.npz.*no such file"):
        load(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 5, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"m\.npz.*truncated or damaged"):
            load(path)


def test_damaged_member(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("w0.npy")
    data = bytearray(path.read_bytes())
    # flip a byte inside w0's stored data (local header 30 bytes + name + npy header).
    pos = info.header_offset + 30 + len(info.filename) + info.file_size - 3
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"m\.npz.*truncated or damaged.*CRC"):
        load(path)


def test_corrupt_random_bytes(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(ValueError, match=r"noise\.npz.*not an \.npz file.*zip signature"):
        load(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz.*not an \.npz file"):
        load(path)


def test_wrong_format_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match=r"other\.npz.*not a jbpnn model file.*has \['a'\]"):
        load(path)
    np.savez(path, format=np.array("someone-else"))
    with pytest.raises(ValueError, match=r"other\.npz.*format='someone-else'.*jbpnn-mlp"):
        load(path)


def test_single_npy_array(tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(3))
    with pytest.raises(ValueError, match=r"arr\.npy.*single \.npy array"):
        load(path)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    entries.update(changes)
    for k, v in list(entries.items()):
        if v is None:
            del entries[k]
    with open(path, "wb") as f:
        np.savez(f, **entries)


def test_newer_format_version(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    _rewrite(path, format_version=np.array(FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=rf"m\.npz.*format version {FORMAT_VERSION + 1} is newer"):
        load(path)


def test_inconsistent_contents(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    _rewrite(path, w1=None)
    with pytest.raises(ValueError, match=r"m\.npz.*inconsistent.*w1"):
        load(path)
    save(path, _params())
    _rewrite(path, w0=np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match=r"m\.npz.*inconsistent.*w0 has shape"):
        load(path)
    save(path, _params())
    _rewrite(path, loss=np.array("cross_entropy"))  # tanh output with cross_entropy: invalid pair
    with pytest.raises(ValueError, match=r"m\.npz.*inconsistent.*cross_entropy"):
        load(path)
    save(path, _params())
    _rewrite(path, loss=None)
    with pytest.raises(ValueError, match=r"m\.npz.*missing \['loss'\]"):
        load(path)


def test_load_directory(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        load(tmp_path)


def test_str_paths_work(tmp_path):
    path = os.fspath(tmp_path / "m.npz")
    save(path, _params())
    _assert_same(load(path).params, _params())


# ---------------------------------------------------------------- version 1 files
def _write_version_1(path, params: MLP, **metadata) -> None:
    """A file exactly as jbpnn's format version 1 wrote it (one dtype for every array)."""
    entries = {
        "format": np.array("jbpnn-mlp"),
        "format_version": np.array(1, np.int64),
        "sizes": np.array(params.sizes, np.int64),
        "activations": np.array(params.activations),
        "loss": np.array(params.loss),
        "article_mode": np.array(params.article_mode),
        "dtype": np.array(jnp.dtype(params.dtype).name),
        "metadata": np.array(json.dumps(metadata)),
    }
    for i, layer in enumerate(params.layers):
        for name, a in (("w", np.asarray(layer.w)), ("b", np.asarray(layer.b))):
            entries[f"{name}{i}"] = a.view(np.uint16) if a.dtype.name == "bfloat16" else a
    with open(path, "wb") as f:
        np.savez(f, **entries)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_version_1_file_still_loads(tmp_path, dtype):
    params = _params(dtype)
    _write_version_1(tmp_path / "v1.npz", params, run="old")
    loaded = load(tmp_path / "v1.npz")
    _assert_same(loaded.params, params)
    assert loaded.metadata == {"run": "old"}
    assert loaded.state is None and loaded.optimizer is None


def test_new_files_are_version_2(tmp_path):
    """Version 3 only for a file that records replaced built-ins (see test_units.py)."""
    assert FORMAT_VERSION == 3
    save(tmp_path / "m.npz", _params())
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert int(z["format_version"]) == 2
        assert str(z["kind"]) == "mlp" and int(z["stacked"]) == 0
        assert z["dtypes"].tolist() == [["float32", "float32"], ["float32", "float32"]]
        assert json.loads(str(z["optimizer"])) is None


def test_version_2_file_missing_a_v2_entry(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    _rewrite(path, stacked=None)
    with pytest.raises(ValueError, match=r"m\.npz.*missing \['stacked'\]"):
        load(path)


# ---------------------------------------------------------------- Saved
def test_saved_unpacks_to_params_and_metadata(tmp_path):
    save(tmp_path / "m.npz", _params(), a=1)
    saved = load(tmp_path / "m.npz")
    params, meta = saved
    assert params is saved.params and meta == {"a": 1}
    assert saved.state is None and saved.optimizer is None
    assert jio.Saved is Saved
    import jbpnn

    assert jbpnn.Saved is Saved


# ---------------------------------------------------------------- mixed dtypes
@pytest.mark.parametrize("b_dtype", [jnp.float16, jnp.bfloat16])
def test_mixed_dtype_round_trip(tmp_path, b_dtype):
    key = jax.random.key(2)
    w0, w1 = jax.random.normal(key, (4, 5)), jax.random.normal(key, (5, 3))
    b0 = jnp.arange(5, dtype=b_dtype) / 7
    b1 = jnp.arange(3, dtype=b_dtype) / 3
    params = MLP.from_layers([(w0, b0), (w1, b1)], "tanh", "mse")
    assert params.layers[0].b.dtype == b_dtype  # from_layers keeps each array's dtype
    save(tmp_path / "m.npz", params)
    got = load(tmp_path / "m.npz").params
    _assert_same(got, params)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        name = jnp.dtype(b_dtype).name
        assert z["dtypes"].tolist() == [["float32", name], ["float32", name]]
        assert str(z["dtype"]) == "float32"  # w0's, as version 1 readers expect


def test_mixed_dtype_tampered_dtypes_refused(tmp_path):
    path = tmp_path / "m.npz"
    params = MLP.from_layers(
        [(np.ones((2, 3), np.float32), np.ones(3, np.float16))], "sigmoid", "mse"
    )
    save(path, params)
    _rewrite(path, dtypes=np.array([["float32", "float32"]]))
    with pytest.raises(ValueError, match=r"inconsistent.*stored as float16.*float32"):
        load(path)


# ---------------------------------------------------------------- stacked params
def _stack_of_three() -> MLP:
    from jbpnn.many import stack_params

    nets = [init_params(jax.random.key(s), (4, 5, 3), "tanh", "mse") for s in range(3)]
    return stack_params(nets)


def test_stacked_round_trip(tmp_path):
    stacked = _stack_of_three()
    save(tmp_path / "s.npz", stacked, note="ensemble")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert int(z["stacked"]) == 3 and tuple(z["sizes"]) == (4, 5, 3)
        assert z["w0"].shape == (3, 4, 5) and z["b1"].shape == (3, 3)
    loaded = load(tmp_path / "s.npz")
    assert loaded.metadata == {"note": "ensemble"}
    got = loaded.params
    assert got.layers[0].w.shape == (3, 4, 5) and got.layers[1].b.shape == (3, 3)
    _assert_same(got, stacked)
    from jbpnn.many import unstack_params

    assert len(unstack_params(got)) == 3


def test_stacked_of_one_network(tmp_path):
    from jbpnn.many import stack_params

    stacked = stack_params([_params()])
    save(tmp_path / "s.npz", stacked)
    got = load(tmp_path / "s.npz").params
    assert got.layers[0].w.shape == (1, 4, 5)
    _assert_same(got, stacked)


@pytest.fixture(scope="module")
def many():
    """Three networks from train_many, with early stopping (best params and their record)."""
    from jbpnn import InitSpec, train_many

    X, Y = _data()
    Xv, Yv = _data(20, seed=1)
    return train_many(
        InitSpec((3, 4, 2), "tanh", "cross_entropy"), X, Y, seeds=[0, 1, 2],
        optimizer="adam", hparams={"lr": [0.01, 0.02, 0.03]}, epochs=4, X_val=Xv, Y_val=Yv,
        n_iter_no_change=3,
    )  # fmt: skip


def test_stacked_from_many_result(tmp_path, many):
    save(tmp_path / "s.npz", many.params)
    got = load(tmp_path / "s.npz").params
    _assert_same(got, many.params)
    assert got.layers[0].w.shape == (3, 3, 4)


def test_stacked_layers_must_agree(tmp_path):
    stacked = _stack_of_three()
    bad = stacked.replace_layers(
        [stacked.layers[0], stacked.layers[1]._replace(b=jnp.ones((2, 3)))]
    )
    with pytest.raises(ValueError, match="same number"):
        save(tmp_path / "s.npz", bad)
    mixed = stacked.replace_layers([stacked.layers[0], _params().layers[1]])
    with pytest.raises(ValueError, match="one network.*or stacked"):
        save(tmp_path / "s.npz", mixed)
    assert list(tmp_path.iterdir()) == []


def test_stacked_tampered_file(tmp_path):
    path = tmp_path / "s.npz"
    save(path, _stack_of_three())
    _rewrite(path, stacked=np.array(2, np.int64))
    with pytest.raises(ValueError, match=r"s\.npz.*inconsistent.*w0 has shape \(3, 4, 5\)"):
        load(path)
    save(path, _stack_of_three())
    _rewrite(path, stacked=np.array(0, np.int64))  # says one network, holds three
    with pytest.raises(ValueError, match=r"s\.npz.*inconsistent.*w0 has shape"):
        load(path)


# ---------------------------------------------------------------- NaN / inf
def _with_bad_value(params: MLP, layer: int, name: str, value: float) -> MLP:
    layers = list(params.layers)
    leaf = getattr(layers[layer], name)
    layers[layer] = layers[layer]._replace(
        **{name: leaf.reshape(-1).at[1].set(value).reshape(leaf.shape)}
    )
    return params.replace_layers(layers)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_save_refuses_non_finite_params(tmp_path, value):
    bad = _with_bad_value(_params(), 1, "b", value)
    with pytest.raises(ValueError, match=r"cannot save params: layer 1 b holds 1 NaN or inf"):
        save(tmp_path / "m.npz", bad)
    stacked = _with_bad_value(_stack_of_three(), 0, "w", value)
    with pytest.raises(ValueError, match=r"layer 0 w holds 1 NaN or inf.*index \(0, 0, 1\)"):
        save(tmp_path / "m.npz", stacked)
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_non_finite_params(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params())
    w1 = np.asarray(_params().layers[1].w).copy()
    w1[2, 0] = np.nan
    _rewrite(path, w1=w1)
    with pytest.raises(
        ValueError, match=r"m\.npz: cannot load params: layer 1 w holds 1 NaN.*\(2, 0\)"
    ):
        load(path)
    _write_version_1(path, _params())  # version 1 files are checked too
    _rewrite(path, b0=np.full(5, np.inf, np.float32))
    with pytest.raises(ValueError, match=r"layer 0 b holds 5 NaN or inf"):
        load(path)


# ---------------------------------------------------------------- checkpoints
def _data(n=40, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    labels = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, np.eye(n_out, dtype=np.float32)[labels]


def _net(dtype=jnp.float32):
    return init_params(jax.random.key(7), (3, 6, 2), "tanh", "cross_entropy", "glorot", dtype)


def _leaves_equal(a, b, what=""):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b), what
    for i, (x, y) in enumerate(zip(la, lb)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert str(jax.random.key_impl(x)) == str(jax.random.key_impl(y))
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype, f"{what} leaf {i}"
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{what} leaf {i}")


_CARRIED = ("params", "opt_state", "key", "epoch", "step", "stop", "best_params",
            "best_val", "best_epoch", "bad_epochs", "best_loss", "loss_bad_epochs",
            "lr_scale")  # fmt: skip


def _assert_same_run(a, b):
    """Everything a resumed run carries (the history buffers are made anew on resume)."""
    for name in _CARRIED:
        _leaves_equal(getattr(a, name), getattr(b, name), name)


def test_checkpoint_round_trip_is_exact(tmp_path):

    X, Y = _data()
    opt = momentum(0.3, 0.8, variant="nesterov")
    result = train(_net(), X, Y, optimizer=opt, epochs=5, batch_size=8, min_weight_change=1e-9)
    save(tmp_path / "c.npz", result.state, optimizer=opt, run="ckpt")
    loaded = load(tmp_path / "c.npz")
    _leaves_equal(loaded.state, result.state, "state")  # history, key, everything
    assert isinstance(loaded.state, TrainState)
    _assert_same(loaded.params, result.state.params)
    assert loaded.optimizer == opt and loaded.optimizer.options == opt.options
    assert loaded.metadata == {"run": "ckpt"}
    params, meta = loaded  # an MLP, as for a model file
    assert isinstance(params, MLP) and meta == {"run": "ckpt"}


def test_checkpoint_of_a_run_watching_val_r2_loads(tmp_path):
    # early stopping on R^2 records val_r2 (the regressor's estimator watches it); the
    # loader took that history for one train never records
    X, Y = _data(60)
    net = init_params(jax.random.key(7), (3, 6, 2), "tanh", "mse", "glorot")
    result = train(net, X[:40], Y[:40], X_val=X[40:], Y_val=Y[40:], n_iter_no_change=2,
                   monitor="val_r2", epochs=4, batch_size=8, optimizer=jbpnn.sgd(0.1))  # fmt: skip
    assert "val_r2" in result.history
    save(tmp_path / "c.npz", result.state)
    _leaves_equal(load(tmp_path / "c.npz").state, result.state, "state")


def test_checkpoint_entries_are_documented(tmp_path):

    X, Y = _data()
    result = train(_net(), X, Y, optimizer=momentum(0.1), epochs=2, X_val=X, Y_val=Y,
                   n_iter_no_change=5)  # fmt: skip
    save(tmp_path / "c.npz", result.state)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert str(z["kind"]) == "train_state" and int(z["stacked"]) == 0
        assert z["state/opt_state/trace/layers/0/w"].shape == (3, 6)
        assert z["state/best_params/layers/1/b"].shape == (2,)
        assert z["state/history/val_loss"].shape == (256,)
        assert z["state/key"].dtype == np.uint32 and z["state/key"].shape == (2,)
        assert int(z["state/epoch"]) == 2
        assert not any(k.startswith("state/params/") for k in z.files)  # stored once, as w0, ...
        structure = json.loads(str(z["structure"]))
        assert json.loads(str(z["optimizer"])) is None
    assert structure["opt_state"] == {"class": "MomentumState", "hyperparams": ["lr", "m"]}
    assert structure["best_params"] is True
    assert structure["history"] == {"keys": ["loss", "val_accuracy", "val_loss"], "chunk": 256}
    assert structure["keys"] == {"state/key": "threefry2x32"}
    assert structure["leaves"]["state/opt_state/count"] == "int32"


def _resume_cases():
    from jbpnn.optimizers import adam, step_decay

    fit = {"batch_size": 8}
    cases = [
        pytest.param(momentum(0.3, 0.8, variant=v), fit, id=f"momentum-{v}")
        for v in ("classical", "nesterov", "article")
    ]
    cases.append(pytest.param(adam(step_decay(0.05, 0.5, 20)), fit, id="adam-step_decay"))
    Xv, Yv = _data(20, seed=1)
    # With these, the best validation epoch is 4 and the rule fires at epoch 12: the
    # checkpoint at 10 carries the best params and the count of bad epochs.
    early = {"batch_size": 8, "X_val": Xv, "Y_val": Yv, "n_iter_no_change": 8,
             "validation_tol": 1e-3}  # fmt: skip
    cases.append(pytest.param(adam(0.05), early, id="early-stopping"))
    return cases


@pytest.mark.parametrize("opt, fit", _resume_cases())
def test_checkpoint_resume_equals_one_run(tmp_path, opt, fit):
    X, Y = _data()
    whole = train(_net(), X, Y, optimizer=opt, epochs=20, **fit)
    first = train(_net(), X, Y, optimizer=opt, epochs=10, **fit)
    save(tmp_path / "c.npz", first.state, optimizer=opt)
    ckpt = load(tmp_path / "c.npz")
    assert ckpt.optimizer == opt
    rest = train(ckpt.state, X, Y, optimizer=ckpt.optimizer, epochs=10, **fit)
    _assert_same_run(rest.state, whole.state)
    assert rest.stop_reason == whole.stop_reason
    np.testing.assert_array_equal(rest.history["loss"], whole.history["loss"][10:])
    if "n_iter_no_change" in fit:  # the rule fired after the checkpoint, and was carried
        assert whole.stop_reason == "no_validation_improvement"
        assert 10 < whole.epochs_run < 20
        _leaves_equal(rest.params, whole.params, "best params")


def test_checkpoint_without_optimizer(tmp_path):
    from jbpnn.optimizers import adam

    X, Y = _data()
    opt = adam(0.01)
    first = train(_net(), X, Y, optimizer=opt, epochs=3, batch_size=10)
    save(tmp_path / "c.npz", first.state)
    ckpt = load(tmp_path / "c.npz")
    assert ckpt.optimizer is None
    rest = train(ckpt.state, X, Y, optimizer=opt, epochs=3, batch_size=10)
    whole = train(_net(), X, Y, optimizer=opt, epochs=6, batch_size=10)
    _assert_same_run(rest.state, whole.state)


def test_optimizer_with_a_model_file(tmp_path):
    from jbpnn.optimizers import inverse_scaling, sgd

    opt = sgd(inverse_scaling(0.2, 0.25), weight_decay=1e-3)
    save(tmp_path / "m.npz", _params(), optimizer=opt)
    got = load(tmp_path / "m.npz")
    assert got.optimizer == opt and got.state is None


def test_weight_decay_swept_from_zero_stays_on(tmp_path):

    opt = momentum(0.1, weight_decay=jnp.asarray(0.0))  # an array: decay is on, at 0
    assert opt.options["weight_decay"] is True
    X, Y = _data()
    result = train(_net(), X, Y, optimizer=opt, epochs=2)
    save(tmp_path / "c.npz", result.state, optimizer=opt)
    got = load(tmp_path / "c.npz").optimizer
    assert got.options == opt.options and float(got.hyperparams["weight_decay"]) == 0.0


def test_checkpoint_float64(tmp_path, x64):

    X, Y = _data()
    opt = momentum(0.1)
    result = train(_net(jnp.float64), X, Y.astype(np.float64), optimizer=opt, epochs=2)
    save(tmp_path / "c.npz", result.state, optimizer=opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load(tmp_path / "c.npz").state
    assert got.opt_state.trace.layers[0].w.dtype == jnp.float64
    _leaves_equal(got, result.state)


def test_checkpoint_float64_without_x64_warns(tmp_path):

    with jax.enable_x64(True):
        X, Y = _data()
        result = train(
            _net(jnp.float64), X, Y.astype(np.float64), optimizer=momentum(0.1), epochs=2
        )
        save(tmp_path / "c.npz", result.state)
    with pytest.warns(UserWarning, match="float64.*enable_x64"):
        got = load(tmp_path / "c.npz").state
    assert got.params.dtype == jnp.float32 and got.opt_state.count.dtype == jnp.int32
    assert got.best_val.dtype == jnp.float32


def test_checkpoint_keeps_the_key_impl(tmp_path):
    from jbpnn.optimizers import sgd

    X, Y = _data()
    result = train(_net(), X, Y, optimizer=sgd(0.1), epochs=1)
    state = result.state._replace(key=jax.random.key(5, impl="rbg"))
    save(tmp_path / "c.npz", state)
    got = load(tmp_path / "c.npz").state
    assert str(jax.random.key_impl(got.key)) == "rbg"
    _leaves_equal(got, state)


def test_stacked_checkpoint_from_train_many(tmp_path, many):
    save(tmp_path / "c.npz", many.state)  # each network's lr stays in the state
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert int(z["stacked"]) == 3 and z["state/key"].shape == (3, 2)
    got = load(tmp_path / "c.npz")
    _leaves_equal(got.state, many.state, "stacked state")
    assert got.params.layers[0].w.shape == (3, 3, 4)
    np.testing.assert_array_equal(np.asarray(got.state.opt_state.hyperparams["lr"]),
                                  np.float32([0.01, 0.02, 0.03]))  # fmt: skip
    assert got.optimizer is None


def test_an_optimizer_that_is_not_the_states_is_refused(tmp_path, many):
    """save(many.state, optimizer=many.optimizer) recorded network 0's lr; network 2 taken
    from the loaded state and resumed with the loaded optimizer went on at lr 0.01, not its
    0.03, silently (and a single state saved with another lr was accepted)."""
    from jbpnn.optimizers import adam

    with pytest.raises(ValueError, match=r"3 networks were trained with different lr \(0.01 .. "):
        save(tmp_path / "c.npz", many.state, optimizer=many.optimizer)
    with pytest.raises(ValueError, match="has lr=0.7, but the state was trained with lr=0.1"):
        save(tmp_path / "c.npz", _momentum_state(), optimizer=momentum(0.7))
    assert not os.listdir(tmp_path)
    save(tmp_path / "n2.npz", many[2].state, optimizer=many[2].optimizer)  # one network
    got = load(tmp_path / "n2.npz")
    assert got.optimizer.hyperparams["lr"] == adam(np.float32(0.03)).hyperparams["lr"]
    X, Y = _data()
    a = train(got.state, X, Y, optimizer=got.optimizer, epochs=2).params
    b = train(many[2], X, Y, epochs=2).params
    _leaves_equal(a, b)


# ---------------------------------------------------------------- refused checkpoints
@functools.cache
def _momentum_state():
    """A small momentum run's state (immutable: the tests share it)."""

    X, Y = _data()
    return train(_net(), X, Y, optimizer=momentum(0.1), epochs=2).state


def test_user_schedule_is_refused(tmp_path):

    opt = momentum(lambda count: 0.1 / (1.0 + count))
    with pytest.raises(TypeError, match="only built-in schedules.*can be checkpointed"):
        save(tmp_path / "c.npz", _momentum_state(), optimizer=opt)
    assert list(tmp_path.iterdir()) == []


def test_optimizer_of_another_kind_is_refused(tmp_path):
    from jbpnn.optimizers import adam, sgd

    with pytest.raises(ValueError, match=r"adam.*not the kind.*MomentumState"):
        save(tmp_path / "c.npz", _momentum_state(), optimizer=adam(0.1))
    with pytest.raises(ValueError, match="not the kind"):
        save(tmp_path / "c.npz", _momentum_state(), optimizer=sgd(0.1))
    with pytest.raises(TypeError, match="must be a jbpnn.optimizers.Optimizer"):
        save(tmp_path / "c.npz", _momentum_state(), optimizer="momentum")
    assert list(tmp_path.iterdir()) == []


def test_foreign_optimizer_state_is_refused(tmp_path):
    state = _momentum_state()
    weird = state._replace(opt_state=(state.opt_state.count,))
    with pytest.raises(ValueError, match="only the states of jbpnn.optimizers"):
        save(tmp_path / "c.npz", weird)
    broken = state._replace(epoch=np.int64(3))  # not the int32 counter init_state makes
    with pytest.raises(ValueError, match="cannot be checkpointed: state/epoch has dtype int64"):
        save(tmp_path / "c.npz", broken)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_best_params_refused(tmp_path):

    X, Y = _data()
    state = train(_net(), X, Y, optimizer=momentum(0.1), epochs=2, X_val=X, Y_val=Y,
                  n_iter_no_change=5).state  # fmt: skip
    bad = state._replace(best_params=_with_bad_value(state.best_params, 0, "b", np.nan))
    with pytest.raises(ValueError, match="cannot save best_params: layer 0 b"):
        save(tmp_path / "c.npz", bad)
    path = tmp_path / "c.npz"
    save(path, state)
    b0 = np.asarray(state.best_params.layers[0].b).copy()
    b0[0] = np.inf
    _rewrite(path, **{"state/best_params/layers/0/b": b0})
    with pytest.raises(ValueError, match=r"c\.npz: cannot load best_params: layer 0 b"):
        load(path)


def test_results_are_refused_with_a_hint(tmp_path):
    from jbpnn.optimizers import sgd

    X, Y = _data()
    result = train(_net(), X, Y, optimizer=sgd(0.1), epochs=1)
    with pytest.raises(TypeError, match=r"expects an MLP.*got TrainResult.*result\.state"):
        save(tmp_path / "c.npz", result)


def test_traced_arrays_are_refused(tmp_path):
    def inside(params):
        save(tmp_path / "m.npz", params)
        return params

    with pytest.raises(TypeError, match="concrete arrays.*outside jax.jit"):
        jax.jit(inside)(_params())
    assert list(tmp_path.iterdir()) == []


def test_tampered_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save(path, _momentum_state())
    _rewrite(path, **{"state/opt_state/trace/layers/1/w": np.zeros((6, 3), np.float32)})
    with pytest.raises(
        ValueError, match=r"inconsistent.*state/opt_state/trace/layers/1/w has shape \(6, 3\)"
    ):
        load(path)
    save(path, _momentum_state())
    _rewrite(path, **{"state/step": np.zeros((), np.float32)})
    with pytest.raises(ValueError, match=r"state/step is stored as float32.*int32"):
        load(path)
    save(path, _momentum_state())
    _rewrite(path, **{"state/opt_state/count": None})
    with pytest.raises(ValueError, match=r"missing state entries \['state/opt_state/count'\]"):
        load(path)
    save(path, _momentum_state())
    _rewrite(path, **{"state/extra": np.zeros(2)})
    with pytest.raises(ValueError, match=r"unexpected state entries \['state/extra'\]"):
        load(path)
    save(path, _momentum_state())
    _rewrite(path, **{"state/key": np.zeros(3, np.uint32)})
    with pytest.raises(ValueError, match=r"state/key: not key data"):
        load(path)
    save(path, _momentum_state())
    with np.load(path) as z:
        structure = json.loads(str(z["structure"]))
    structure["opt_state"]["class"] = "RMSPropState"
    _rewrite(path, structure=np.array(json.dumps(structure)))
    with pytest.raises(ValueError, match=r"inconsistent.*unknown optimizer state 'RMSPropState'"):
        load(path)


def _add_member(path, name, header_shape, data=b"", compress=zipfile.ZIP_DEFLATED):
    """Append ``name`` to the archive: an .npy header declaring float64 ``header_shape``,
    followed by ``data`` (a lie when it is shorter than the shape says)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": header_shape}
    )
    with zipfile.ZipFile(path, "a", compression=compress) as z:
        z.writestr(name, buf.getvalue() + data)


def test_load_reads_only_the_members_the_format_defines_and_sizes_them_first(tmp_path, monkeypatch):
    """A model file with an extra member (one that would inflate to a terabyte) loads: the
    extra member is never read. A known member whose header and archive disagree on its
    size, or that would not fit in memory, is refused before its data is read."""
    import jbpnn.memory as memory

    params = init_params(jax.random.key(0), (3, 4, 2))
    extra = tmp_path / "extra.npz"
    save(extra, params)
    _add_member(extra, "junk.npy", (2**37,))  # 1 TiB declared, nothing behind it
    back = load(extra)
    for a, b in zip(jax.tree.leaves(back.params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)

    lying = tmp_path / "lying.npz"
    save(lying, params)
    with zipfile.ZipFile(lying) as z, zipfile.ZipFile(tmp_path / "tmp.npz", "w") as out:
        for info in z.infolist():
            if info.filename != "w0.npy":
                out.writestr(info, z.read(info.filename))
    os.replace(tmp_path / "tmp.npz", lying)
    _add_member(lying, "w0.npy", (2**30, 4), b"\0" * 96)
    with pytest.raises(ValueError, match=r"member 'w0' is damaged: its header declares"):
        load(lying)

    fine = tmp_path / "fine.npz"
    save(fine, init_params(jax.random.key(0), (300, 400, 2)))  # w0: 480000 bytes
    monkeypatch.setattr(memory, "available_memory", lambda device=None: (100_000, "a test"))
    with pytest.raises(ValueError, match=r"the member 'w0' as a dense float32 array"):
        load(fine)


# ---------------------------------------------------------------- red-team: crafted files
def _tampered(tmp_path, name, change, obj=None):
    """A saved checkpoint (or ``obj``) with its entries changed by ``change(entries)``."""
    base = tmp_path / "base.npz"
    save(base, obj if obj is not None else _momentum_state())
    with np.load(base) as z:
        entries = {k: z[k] for k in z.files}
    change(entries)
    np.savez(tmp_path / name, **entries)
    return tmp_path / name


def _structure(key, value):
    def change(entries):
        s = json.loads(str(entries["structure"]))
        s["history"][key] = value
        entries["structure"] = np.array(json.dumps(s))

    return change


@pytest.mark.parametrize("chunk", [10**12, 10**8, 2.5, True])
def test_a_crafted_history_chunk_is_refused_before_allocating(tmp_path, chunk):
    """chunk 10**12 raised NumPy's MemoryError (3.6 TiB); 10**8 allocated 400 MB a key."""
    path = _tampered(tmp_path, "c.npz", _structure("chunk", chunk))
    with pytest.raises(ValueError, match="cannot load .*the structure's chunk"):
        load(path)


def test_crafted_nesting_and_npy_headers_are_refused(tmp_path):
    nested = _tampered(
        tmp_path, "n.npz", lambda e: e.__setitem__("metadata", np.array("[" * 10**5 + "]" * 10**5))
    )
    with pytest.raises(ValueError, match="cannot load .*RecursionError"):
        load(nested)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    (tmp_path / "bomb.npy").write_bytes(header.getvalue() + b"\0" * 16)
    with pytest.raises(ValueError, match="a single .npy array, not a jbpnn model"):
        load(tmp_path / "bomb.npy")  # was a MemoryError from NumPy


def test_damaged_compressed_and_encrypted_members_are_named(tmp_path):
    """zlib.error escaped from zipfile (as did NotImplementedError for an unknown
    compression method and RuntimeError for an encrypted member: caught alike)."""
    save(tmp_path / "good.npz", init_params(0, (3, 40, 2)), note="x" * 2000)
    with np.load(tmp_path / "good.npz") as z:
        entries = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "c.npz", **entries)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "c.npz") as archive:
        info = archive.getinfo("metadata.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(10, 40):
        data[start + k] ^= 0xFF
    (tmp_path / "damaged.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="cannot load .*damaged"):
        load(tmp_path / "damaged.npz")


def test_article_mode_must_be_a_stored_bool(tmp_path):
    """The string "False" loaded as article_mode=True."""
    path = _tampered(
        tmp_path, "a.npz", lambda e: e.__setitem__("article_mode", np.array("False")), _net()
    )
    with pytest.raises(ValueError, match="article_mode must be one bool"):
        load(path)


@pytest.mark.parametrize("value", [{0: "cat"}, {"a": {True: 1}}, [{None: 2}]])
def test_metadata_dicts_need_string_keys(tmp_path, value):
    """{0: "cat"} came back as {"0": "cat"}, {1: "a", "1": "b"} as one entry."""
    with pytest.raises(TypeError, match="metadata 'classes' cannot be saved: its key"):
        save(tmp_path / "m.npz", _net(), classes=value)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_params_and_optimizers_pickle_with_every_protocol_and_equal_their_copies(protocol):
    # protocols 0 and 1 refused them ("__slots__ without __getstate__"); an optimizer whose
    # value is a JAX array was not equal to its own copy (arrays compared by identity), so
    # each copy compiled again as a static argument
    params = init_params(jax.random.key(0), (3, 4, 2))
    per_network = adam(0.01).replace(lr=jnp.array([0.01, 0.02]))  # one value a network
    for opt in (adam(jnp.float32(0.01)), per_network, lbfgs(history=5)):
        again = pickle.loads(pickle.dumps(opt, protocol=protocol))
        assert again == opt and hash(again) == hash(opt) and copy.deepcopy(opt) == opt
    back = pickle.loads(pickle.dumps(params, protocol=protocol))
    assert back.sizes == params.sizes and back.activations == params.activations
    tree_allclose(back, params, rtol=0)
    # the state an older jbpnn pickled (object's default: (None, {slot: value})) still loads
    older = MLP.__new__(MLP)
    older.__setstate__((None, params.__getstate__()))
    tree_allclose(older, params, rtol=0)
    assert adam(0.01) != adam(0.02) and adam(jnp.float32(0.01)) != adam(jnp.float32(0.02))


def test_a_member_that_inflates_like_a_zip_bomb_is_refused_before_it_is_read(tmp_path):
    """A 1.5 MB file whose w0 declared 1.6 GB of zeros was inflated (1.7 GB of memory)
    before its shape was compared with sizes: a compressed member that would inflate
    more than 64:1 is refused from the zip directory alone."""
    import zipfile

    import jbpnn

    good = tmp_path / "m.npz"
    jbpnn.save(good, jbpnn.init_params(0, (3, 2, 2)))
    bomb = tmp_path / "bomb.npz"
    n = 64 * 2**20 // 4  # 64 MiB of float32 zeros
    # the model's members, w0 replaced by compressed zeros (64 MiB stream in ~0.3 s)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for name in src.namelist():
            if name != "w0.npy":
                dst.writestr(name, src.read(name))
        info = zipfile.ZipInfo("w0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (n,)}
            )
            zeros = bytes(2**20)
            for _ in range(n * 4 // len(zeros)):
                f.write(zeros)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(ValueError, match=r"member 'w0' would inflate from .* to 67108"):
        jbpnn.load(bomb)
    jbpnn.load(good)  # an uncompressed model loads as before


# ---------------------------------------------------------------- red-team: kinds and values
def test_a_checkpoint_keeps_the_meaning_of_its_momentum_trace(tmp_path):
    """A loaded classical-momentum state resumed with the article's variant (whose trace
    is the raw change -g, not m v - lr g) ran without a word; so did saving it with an
    optimizer of that variant. A file saved before the state recorded its variant takes
    it from the file's optimizer, or loads without it (and goes on as before)."""
    X, Y = _data()
    opt = momentum(0.3, 0.9)
    state = train(_net(), X, Y, optimizer=opt, epochs=2, batch_size=8).state
    article = momentum(0.3, 0.9, variant="article")
    path = tmp_path / "c.npz"
    with pytest.raises(ValueError, match=r"'classical'.*'article'"):
        save(path, state, optimizer=article)
    assert not path.exists()
    save(path, state, optimizer=momentum(0.3, 0.9, variant="nesterov"))  # the same trace
    save(path, state, optimizer=opt)
    loaded = load(path)
    with pytest.raises(ValueError, match=r"'classical'.*'article'"):
        train(loaded.state, X, Y, optimizer=article, epochs=1, batch_size=8)
    assert train(loaded.state, X, Y, optimizer=loaded.optimizer, epochs=1).epochs_run == 3
    # a file of an older jbpnn: no state/opt_state/variant entry
    _rewrite(path, **{"state/opt_state/variant": None})
    older = load(path)
    _leaves_equal(older.state, loaded.state, "state")  # the variant from its optimizer
    with pytest.raises(ValueError, match=r"'classical'.*'article'"):
        train(older.state, X, Y, optimizer=article, epochs=1, batch_size=8)
    _rewrite(path, optimizer=np.array("null"))
    unknown = load(path)  # neither recorded: not known, resumed as before
    assert int(unknown.state.opt_state.variant) == -1
    assert train(unknown.state, X, Y, optimizer=article, epochs=1).epochs_run == 3
    _rewrite(path, **{"state/opt_state/variant": np.array(7, np.int32)})
    with pytest.raises(ValueError, match=r"cannot load .*state/opt_state/variant holds 7"):
        load(path)


@pytest.mark.parametrize("name, value", [("eps", np.nan), ("lr", np.inf), ("b2", -np.inf)])
def test_non_finite_hyperparameters_are_refused(tmp_path, name, value):
    """A checkpoint whose adam eps was NaN loaded without a word (every update then NaN),
    while NaN params were refused naming the layer: so are non-finite hyperparameters."""
    X, Y = _data()
    state = train(_net(), X, Y, optimizer=adam(0.01), epochs=1, batch_size=8).state
    entry = f"state/opt_state/hyperparams/{name}"
    _refused_in_a_file_and_in_a_save(
        tmp_path, state, name, np.float32(value), rf"{entry} holds .*(nan|inf)", rf"{entry} holds"
    )


def _refused_in_a_file_and_in_a_save(tmp_path, state, name, value, loading, saving):
    """A file whose hyperparameter ``name`` reads ``value`` is refused by ``load`` (message
    ``loading``), and a state holding it (as device data) by ``save`` (``saving``)."""
    path = tmp_path / "c.npz"
    save(path, state)
    _rewrite(path, **{f"state/opt_state/hyperparams/{name}": np.array(value, np.float32)})
    with pytest.raises(ValueError, match=rf"cannot load .*{loading}"):
        load(path)
    hp = {**state.opt_state.hyperparams, name: jnp.float32(value)}  # device data: unchecked
    bad = state._replace(opt_state=state.opt_state._replace(hyperparams=hp))
    with pytest.raises(ValueError, match=rf"cannot save .*{saving}"):
        save(tmp_path / "d.npz", bad)
    assert not (tmp_path / "d.npz").exists()


def test_the_nan_and_inf_markers_of_an_lbfgs_checkpoint_still_load(tmp_path):
    """L-BFGS's state marks "not evaluated yet" with NaN (its first point ``x``, ``loss``)
    and the state its records with inf: only the hyperparameters must be finite."""
    from jbpnn.state import init_state, train_config

    opt = lbfgs()
    state = init_state(_net(), opt, train_config(40, optimizer=opt, has_validation=True))
    assert np.isnan(np.asarray(state.opt_state.x)).all() and np.isinf(state.best_val)
    save(tmp_path / "c.npz", state, optimizer=opt)
    _leaves_equal(load(tmp_path / "c.npz").state, state, "state")


@pytest.mark.parametrize(
    "name, value, message",
    [("m", 1.5, r"m must be .*below 1"), ("lr", -0.1, r"lr must be .*at least 0"),
     ("b1", 1.0, r"b1 must be")],
)  # fmt: skip
def test_out_of_range_hyperparameters_are_refused(tmp_path, name, value, message):
    """A file whose momentum m was 1.5 or lr -0.1 loaded without a word (finite values
    were all load checked), and a user's own ``optimizer.update`` loop, or a resume of
    networks saved without ``optimizer=``, went on with them: load and save check the
    ranges the factories check."""
    X, Y = _data()
    opt = adam(0.01) if name == "b1" else momentum(0.1, m=0.9)
    state = train(_net(), X, Y, optimizer=opt, epochs=1, batch_size=8).state
    expected = rf"hyperparams: {message}"
    _refused_in_a_file_and_in_a_save(tmp_path, state, name, value, expected, expected)


def test_a_file_whose_optimizer_and_state_disagree_is_refused(tmp_path):
    """save writes the optimizer the state was trained with (it refuses another), so a
    file whose optimizer entry says m=0.9 while its state holds m=0.5 is damaged: it
    loaded, reported m=0.9, and resumed with it, though m=0.5 drove the saved epochs."""
    X, Y = _data()
    opt = momentum(0.1, m=0.9)
    state = train(_net(), X, Y, optimizer=opt, epochs=1, batch_size=8).state
    path = tmp_path / "c.npz"
    save(path, state, optimizer=opt)
    assert load(path).optimizer.hyperparams["m"] == pytest.approx(0.9)
    _rewrite(path, **{"state/opt_state/hyperparams/m": np.array(0.5, np.float32)})
    with pytest.raises(ValueError, match=r"optimizer .* has m=0.9, but its state holds m=0.5"):
        load(path)


def test_a_float64_pickle_unpickled_with_float64_off_warns_and_a_resume_names_the_dtypes():
    # JAX unpickles float64 arrays as float32 where its float64 is off: a network (or a
    # result holding one) came back float32 without a word (jbpnn.load warns for a file),
    # and a host float64 state (a ManyResult's) resumed with float32 params was refused as
    # "another kind of optimizer"
    X = np.linspace(-1, 1, 12).reshape(6, 2)
    Y = X[:, :1] ** 2
    with jax.enable_x64(True):
        p64 = init_params(0, (2, 3, 1), dtype="float64")
        blob = pickle.dumps(p64)
        run = train(p64, X, Y, optimizer=momentum(0.1), epochs=2)
        # on the host, as a ManyResult keeps it (the key stays a key)
        held = jax.tree.map(
            lambda a: a if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else np.asarray(a),
            run.state,
        )
    with pytest.warns(UserWarning, match="pickled with float64 params but JAX's float64 is off"):
        back = pickle.loads(blob)
    assert back.dtype == np.float32
    with jax.enable_x64(True):
        assert pickle.loads(blob).dtype == np.float64  # no warning where it is on
    cast = held._replace(params=jax.tree.map(lambda a: np.asarray(a, np.float32), held.params))
    with pytest.raises(ValueError, match="optimizer state is float64 and its params are float32"):
        train(cast, X.astype(np.float32), Y.astype(np.float32), optimizer=momentum(0.1), epochs=1)


def test_a_pickle_with_fields_this_jbpnn_lacks_is_refused_by_name():
    p = init_params(0, (2, 3, 1))
    state = {**p.__getstate__(), "new_slot": 1}
    with pytest.raises(ValueError, match=r"fields \['new_slot'\].*pickled by a newer jbpnn"):
        MLP.__new__(MLP).__setstate__(state)

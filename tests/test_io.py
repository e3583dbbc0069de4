"""Save/load: exact round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jbpnn.io as jio
from jbpnn.io import FORMAT, FORMAT_VERSION, Saved, load, save
from jbpnn.params import MLP, init_params


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
        assert str(z["format"]) == FORMAT and int(z["format_version"]) == FORMAT_VERSION
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

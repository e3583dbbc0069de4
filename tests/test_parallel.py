"""Data-parallel training of one network over devices and processes (CPU devices forced)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import jbpnn

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import AxisType, Mesh
    import jbpnn

    assert len(jax.devices()) == 8, jax.devices()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (203, 6)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    Y = jbpnn.one_hot(labels, 3).astype(np.float32)
    X_val, Y_val = X[:40], Y[:40]
    params = jbpnn.init_params(0, (6, 16, 3), "tanh", "cross_entropy", "glorot")
    kw = dict(optimizer=jbpnn.adam(0.01), epochs=12, batch_size=30, key=3,
              X_val=X_val, Y_val=Y_val, n_iter_no_change=4)
    one = jbpnn.train(params, X, Y, **kw)

    def worst(r):
        return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                   for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(r.params)))

    meshes = {
        "explicit": jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,)),
        "auto": Mesh(np.array(jax.devices()), ("data",), axis_types=(AxisType.Auto,)),
        "2d": Mesh(np.array(jax.devices()).reshape(2, 4), ("model", "batch")),
    }
    for name, mesh in meshes.items():
        r = jbpnn.train(params, X, Y, mesh=mesh, data_axis="batch" if name == "2d" else None, **kw)
        assert r.epochs_run == one.epochs_run and r.stop_reason == one.stop_reason, name
        np.testing.assert_allclose(r.history["loss"], one.history["loss"], atol=1e-5)
        np.testing.assert_allclose(r.history["val_loss"], one.history["val_loss"], atol=1e-5)
        assert worst(r) < 1e-5, (name, worst(r))
        print(name, "ok", worst(r))
    r = jbpnn.train(params, X, Y, devices=3, **kw)  # 30 rows over 3 devices, no padding
    assert worst(r) < 1e-5
    more = jbpnn.train(r, X, Y, devices=3, epochs=2)  # resume on the mesh
    assert more.epochs_run == r.epochs_run + (2 if r.stop_reason == "max_epochs" else 0)
    print("devices ok")
    """
)


MANY_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import AxisType, Mesh
    import jbpnn
    from jbpnn.many import InitSpec, train_many

    assert len(jax.devices()) == 8, jax.devices()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (90, 5)).astype(np.float32)
    Y = jbpnn.one_hot((X[:, 0] > 0).astype(int) + (X[:, 1] > 0), 3).astype(np.float32)
    spec = InitSpec((5, 8, 3), "tanh", "cross_entropy", "glorot")
    kw = dict(seeds=[0, 1, 2, 3], hparams={"lr": [0.05, 0.1, 0.2, 0.4], "m": 0.9}, epochs=6,
              batch_size=14, key=1, X_val=X[:20], Y_val=Y[:20], n_iter_no_change=3)

    def worst(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))

    base = train_many(spec, X, Y, devices=1, **kw)
    devs = np.array(jax.devices())
    explicit = lambda k: (AxisType.Explicit,) * k
    for name, mesh, axes in [
        ("net x data auto", Mesh(devs.reshape(2, 4), ("net", "data")), dict(data_axis="data")),
        ("net x data explicit", jax.make_mesh((2, 4), ("net", "data"), axis_types=explicit(2)),
         dict(data_axis="data")),
        ("net only explicit", jax.make_mesh((4,), ("net",), axis_types=explicit(1)), {}),
        ("data only", Mesh(devs.reshape(1, 8), ("net", "data")), dict(data_axis="data")),
    ]:
        r = train_many(spec, X, Y, mesh=mesh, **axes, **kw)
        assert list(r.epochs_run) == list(base.epochs_run), (name, r.epochs_run)
        assert worst(r, base) < 1e-5, (name, worst(r, base))
        np.testing.assert_allclose(r.history["loss"], base.history["loss"], atol=1e-5)
        print(name, "ok")
    rows = [np.arange(0, 80), np.arange(10, 90), np.arange(0, 85), np.arange(5, 90)]
    alone = train_many(spec, X, Y, devices=1, rows=rows, **kw)
    split = train_many(spec, X, Y, mesh=Mesh(devs.reshape(4, 2), ("net", "data")),
                       data_axis="data", rows=rows, **kw)
    assert worst(alone, split) < 1e-5
    print("rows on mesh ok")
    """
)


def _run(code: str, devices: int, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_one_network_and_many_networks_on_8_cpu_devices_equal_one_device():
    """One subprocess with 8 forced CPU devices (JAX starts once for both checks).

    Data-parallel train: Explicit and Auto axis types, a 2-D mesh, batch 30 over 8
    devices (padded), validation and early stopping: the result equals the
    single-device run within 1e-5 (float32). train_many on a mesh: networks over one
    axis, each network's batches over another, also with every network's own rows.
    """
    run = _run(SCRIPT + MANY_SCRIPT, 8)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "explicit ok" in run.stdout and "auto ok" in run.stdout and "devices ok" in run.stdout
    for name in ("net x data auto", "net x data explicit", "net only explicit", "data only"):
        assert f"{name} ok" in run.stdout
    assert "rows on mesh ok" in run.stdout


def test_two_processes_of_two_cpu_devices_equal_one_process():
    """jax.distributed on 127.0.0.1 with gloo; the script kills its workers on failure."""
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "distributed.py"),
            "--processes",
            "2",
            "--local-devices",
            "2",
            "--timeout",
            "240",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "EQUAL within 1e-5" in run.stdout


def test_mesh_arguments_are_checked():
    X, Y = np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32)
    params = jbpnn.init_params(0, (2, 1))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("a",))
    with pytest.raises(ValueError, match="mesh or devices, not both"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh=mesh, devices=1)
    with pytest.raises(ValueError, match="data_axis"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh=mesh, data_axis="data")
    with pytest.raises(ValueError, match="devices=99"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), devices=99)
    with pytest.raises(ValueError, match="jax.sharding.Mesh"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh="data")
    one = jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=3)
    same = jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=3, mesh=mesh)
    np.testing.assert_allclose(one.history["loss"], same.history["loss"], rtol=1e-6)

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


def _with_devices(devices: int) -> str:
    """``XLA_FLAGS`` for a subprocess with ``devices`` CPU devices, keeping the suite's
    own flags (its fast compile level: these compare meshes within one process)."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"


def _run(code: str, devices: int, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS=_with_devices(devices))
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


@pytest.mark.parametrize(
    "local_devices, extra",
    [("2", []), ("1", ["--local-data"]), ("1", ["--many"])],
    ids=[
        "whole-data-2x2-devices",
        "process-local-data-2x1-devices",
        "train-many-and-sweep-2x1-devices",
    ],
)
def test_two_processes_equal_one_process(local_devices, extra, tmp_path):
    """jax.distributed on 127.0.0.1 with gloo; the script kills its workers on failure.
    ``--local-data``: each process holds only its rows (a global array), which the
    checks of the data read shard by shard. ``--many``: train_many and SweepSearchCV with
    the networks split over the two processes, every network equal to one process's.
    Its temporary folder is gone afterwards (every run left one in /tmp)."""
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "distributed.py"),
            "--processes",
            "2",
            "--local-devices",
            local_devices,
            "--timeout",
            "240",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "EQUAL within 1e-5" in run.stdout
    assert not list(tmp_path.glob("jbpnn-distributed-*"))


def test_mesh_arguments_are_checked():
    X, Y = np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32)
    params = jbpnn.init_params(0, (2, 1))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("a",))
    with pytest.raises(ValueError, match="mesh or devices, not both"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh=mesh, devices=1)
    with pytest.raises(ValueError, match="data_axis"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh=mesh, data_axis="data")
    with pytest.raises(ValueError, match="devices must be a count from 1 .*got 99; on a CPU"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), devices=99)
    with pytest.raises(ValueError, match=r"devices must be a count from 1 .*got 0$"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), devices=0)  # no XLA_FLAGS advice
    with pytest.raises(ValueError, match="jax.sharding.Mesh"):
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), mesh="data")
    with pytest.raises(ValueError, match="jax.sharding.Mesh"):  # was an AttributeError
        jbpnn.train_many(jbpnn.InitSpec((2, 1)), X, Y, seeds=[0], hparams={"lr": 0.1}, mesh="data")
    with pytest.raises(ValueError, match="twice; give each device once"):  # an XLA INTERNAL
        jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), devices=[jax.devices()[0]] * 2)
    one = jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=3)
    same = jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=3, mesh=mesh)
    np.testing.assert_allclose(one.history["loss"], same.history["loss"], rtol=1e-6)


DISAGREE = textwrap.dedent(
    """
    import json, os, sys, time
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, me, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=me, initialization_timeout=60)
    import numpy as np
    from jax.sharding import Mesh
    import jbpnn

    mesh = Mesh(np.array(jax.devices()), ("data",))
    X = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
    Y = (X[:, :1] > 0).astype(np.float32)
    seen = {}

    def attempt(name, **kw):
        args = dict(optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=16, mesh=mesh)
        params = kw.pop("params", jbpnn.init_params(0, (2, 3, 1)))
        t = time.perf_counter()
        try:
            jbpnn.train(params, X, Y, **{**args, **kw})
            seen[name] = ["ran", "", time.perf_counter() - t]
        except Exception as e:
            seen[name] = [type(e).__name__, str(e), time.perf_counter() - t]

    attempt("same")
    attempt("batch_size", batch_size=16 if me == 0 else 8)
    attempt("seed", params=jbpnn.init_params(me, (2, 3, 1)))
    attempt("lr_close", optimizer=jbpnn.momentum(0.1 if me == 0 else 0.1000001))
    a = 0.1 if me == 0 else 0.5
    attempt("lr_fn", optimizer=jbpnn.sgd(lambda count: a))
    devs = jax.devices()  # the same devices in another order: the collectives hung
    attempt("mesh_order", mesh=Mesh(np.array(devs if me == 0 else devs[::-1]), ("data",)))
    if me == 0:  # process 1 never calls train: process 0 must not wait forever
        os.environ["JBPNN_PROCESS_TIMEOUT"] = "3"
        attempt("absent")
        attempt("after_timeout")  # its gather is pending: refused, not paired or hung
    with open(out, "w") as f:
        json.dump(seen, f)
    time.sleep(8 if me == 1 else 0)  # process 1 keeps the run alive until 0 has written
    os._exit(0)
    """
)


def test_processes_called_with_different_arguments_stop_with_both_values_named(tmp_path):
    """Two processes of one data-parallel run: different batch sizes or seeds give the same
    ValueError in both (not a hang), and a process whose partner never arrives stops after
    $JBPNN_PROCESS_TIMEOUT seconds with a TimeoutError."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "worker.py").write_text(DISAGREE)
    env = dict(os.environ, XLA_FLAGS=_with_devices(1))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "worker.py"),
                str(port),
                str(i),
                str(tmp_path / f"{i}"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=150)[0].decode()[-3000:])
    finally:
        for p in procs:  # nothing is left running, whatever happened
            if p.poll() is None:
                p.kill()
                p.wait()
    import json

    assert all((tmp_path / f"{i}").exists() for i in range(2)), "\n".join(logs)
    seen = [json.loads((tmp_path / f"{i}").read_text()) for i in range(2)]
    for mine in seen:
        assert mine["same"][0] == "ran", mine["same"]
        kind, message, _ = mine["batch_size"]
        assert kind == "ValueError", mine["batch_size"]
        assert "batch_size is 16 in process 0, 8 in process 1" in message, message
        kind, message, _ = mine["seed"]
        assert kind == "ValueError" and "params is MLP" in message, mine["seed"]
        assert "different seed" in message
        # both read "momentum(lr=0.1, ...)" and "sgd(, schedule=<lambda>)" and trained apart
        kind, message, _ = mine["lr_close"]
        assert kind == "ValueError" and "optimizer is" in message, mine["lr_close"]
        assert (
            "lr=0.1 m=0.9 in process 0" in message and "lr=0.1000001 m=0.9 in process 1" in message
        )
        kind, message, _ = mine["lr_fn"]
        assert kind == "ValueError" and "optimizer is" in message, mine["lr_fn"]
        kind, message, _ = mine["mesh_order"]
        assert kind == "ValueError" and "mesh is Mesh(data: 2)" in message, mine["mesh_order"]
    kind, message, waited = seen[0]["absent"]
    assert kind == "TimeoutError" and "JBPNN_PROCESS_TIMEOUT" in message, seen[0]["absent"]
    assert 3 <= waited < 30
    kind, message, _ = seen[0]["after_timeout"]
    assert kind == "RuntimeError" and "restart the processes" in message, seen[0]["after_timeout"]


SHARDED_GRAD = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import jbpnn
    from jbpnn.network import predict_kernel

    params = jbpnn.init_params(0, (6, 8, 5, 3), "tanh", "mse")
    X = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
    Y = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)

    def loss(f):
        return lambda p, x, y: jnp.mean(jnp.sum((f(p, x) - y) ** 2, axis=1))

    ref = jax.grad(loss(predict_kernel), argnums=(0, 1))(params, X, Y)  # autodiff, one device
    for kind in (AxisType.Explicit, AxisType.Auto):
        mesh = jax.make_mesh((4,), ("data",), axis_types=(kind,))
        Xs, Ys = (jax.device_put(a, NamedSharding(mesh, P("data"))) for a in (X, Y))
        with jax.set_mesh(mesh):
            got = jax.jit(jax.grad(loss(jbpnn.apply), argnums=(0, 1)))(params, Xs, Ys)
        worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)))
        print(kind.name, len(got[1].sharding.device_set), f"{worst:.1e}")
    """
)


def test_jit_grad_through_apply_on_explicit_and_auto_meshes_equals_autodiff():
    """The hand-derived VJP inside the user's own jit(grad) with the batch sharded over 4
    CPU devices: on an Explicit mesh its contractions over the batch say where their sums
    live (replicated); params and input gradients equal autodiff of the plain forward."""
    env = dict(os.environ, XLA_FLAGS=_with_devices(4))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-c", SHARDED_GRAD], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    rows = dict((line.split()[0], line.split()[1:]) for line in run.stdout.splitlines())
    for kind in ("Explicit", "Auto"):
        devices, worst = rows[kind]
        assert devices == "4" and float(worst) < 1e-6, run.stdout


def test_describe_tells_close_values_and_closures_apart():
    """The cross-process check described an optimizer by its repr (6 digits) and a function
    by its name: momentum(0.1) and momentum(0.1000001), or lambdas closing over 1 and 3,
    read the same and two processes trained apart without a word."""
    from jbpnn.devices import describe

    assert describe(jbpnn.momentum(0.1)) != describe(jbpnn.momentum(0.1000001))
    assert describe(jbpnn.momentum(0.1)) == describe(jbpnn.momentum(0.1))

    def scaled(k):
        return lambda g: g * k

    assert describe(scaled(1)) != describe(scaled(3)) and describe(scaled(1)) == describe(scaled(1))
    assert describe(jbpnn.sgd(scaled(1))) != describe(jbpnn.sgd(scaled(3)))
    # a nested function's code object prints its address: not part of the description
    # (two processes would differ)
    code = "def outer(c):\n    inner = lambda: c\n    return 0.1\n"
    first, second = {}, {}
    exec(code, first)
    exec(code, second)
    assert describe(first["outer"]) == describe(second["outer"])


def test_describe_a_train_result_by_what_a_resume_takes():
    """A TrainResult was described by its repr, whose wall-clock elapsed differs in every
    process: train(result, mesh=) across processes was always refused."""
    import dataclasses

    from jbpnn.devices import describe

    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    Y = X[:, :1] ** 2
    p = jbpnn.init_params(0, (3, 4, 1), "tanh", "mse")
    r = jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.1), epochs=2)
    assert describe(r) == describe(dataclasses.replace(r, elapsed=r.elapsed + 1.0))
    other = jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.2), epochs=2)
    assert describe(other) != describe(dataclasses.replace(r, elapsed=other.elapsed))


SPLIT_DATA = textwrap.dedent(
    """
    import jax, numpy as np, jbpnn
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    X = np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)
    Y = np.sin(2 * X[:, :1]).astype(np.float32)
    p = jbpnn.init_params(0, (3, 5, 1), "tanh", "mse")
    for name, kw in (("sgd", dict(optimizer=jbpnn.sgd(0.1), batch_size=16)),
                     ("lm", dict(optimizer=jbpnn.optimizers.levenberg_marquardt()))):
        ref = jbpnn.train(p, X, Y, epochs=3, **kw).params
        for kind in (AxisType.Explicit, AxisType.Auto):
            mesh = jax.make_mesh((4,), ("data",), axis_types=(kind,))
            Xs, Ys = (jax.device_put(a, NamedSharding(mesh, P("data"))) for a in (X, Y))
            got = jbpnn.train(p, Xs, Ys, mesh=mesh, epochs=3, **kw).params
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
            print(name, kind.name, "ok")
            # no mesh=: one device, the split arrays taken whole (raw sharding errors once)
            w = jax.device_put(np.ones(64, np.float32), NamedSharding(mesh, P("data")))
            alone = jbpnn.train(p, Xs, Ys, sample_weight=w, epochs=3, **kw).params
            for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(ref)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
            print(name, kind.name, "without mesh= ok")
    """
)


def test_data_already_split_on_an_explicit_mesh_trains():
    """X and Y split along an Explicit mesh (jax.make_mesh's default) stopped train with a
    ShardingTypeError in the shuffle's gather (mini-batches) and in J^T J (lm, br), with
    mesh= and (later found) without it."""
    run = _run(SPLIT_DATA, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(" ok") == 8 and run.stdout.count("without mesh= ok") == 4, run.stdout


PER_EXAMPLE_EXPLICIT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, jbpnn
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    params = jbpnn.init_params(0, (6, 8, 3), "tanh", "mse")
    X = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)

    def per_example(p, x):
        return jax.vmap(lambda xi: jax.grad(lambda q: jnp.sum(jbpnn.apply(q, xi)))(p))(x)

    ref = jax.jit(per_example)(params, X)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(mesh):
        got = jax.jit(per_example)(params, jax.device_put(X, NamedSharding(mesh, P("data"))))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    print("per-example ok")
    """
)


def test_per_example_gradients_through_apply_on_an_explicit_mesh():
    """vmap(grad) through apply over a batch split on an Explicit mesh: the hand rule's
    batching broadcast an unbatched input without the batch's split ("Mapped away
    dimension ... should be sharded the same")."""
    run = _run(PER_EXAMPLE_EXPLICIT, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "per-example ok" in run.stdout


EXPLICIT_MORE = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, jbpnn
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from jbpnn.network import loss_and_gradient_kernel, predict_kernel

    jax.config.update("jax_enable_x64", True)
    params = jbpnn.init_params(0, (3, 5, 2), "tanh", "mse", dtype=jnp.float64)
    X = np.random.default_rng(0).normal(size=(8, 3))
    Y = np.random.default_rng(1).normal(size=(8, 2))
    mesh = jax.make_mesh((4,), ("d",), axis_types=(AxisType.Explicit,))
    Xs, Ys = (jax.device_put(a, NamedSharding(mesh, P("d"))) for a in (X, Y))
    losses = {"sum": lambda O: jnp.sum(O), "mean": lambda O: jnp.mean(O),
              "both": lambda O: 1e-3 * jnp.sum(O) + jnp.sum(O ** 2)}
    for name, L in losses.items():
        ref = jax.grad(lambda p: L(predict_kernel(p, X)))(params)
        with jax.set_mesh(mesh):
            got = jax.jit(jax.grad(lambda p, x: L(jbpnn.apply(p, x))))(params, Xs)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
        print(name, "ok")
    calls = {
        "kernel": lambda x, y: loss_and_gradient_kernel(params, x, y)[1],
        "hvp": lambda x, y: jbpnn.hvp(params, x, y, params),
        "gnvp": lambda x, y: jbpnn.gnvp(params, x, y, params),
    }
    for name, f in calls.items():
        ref = f(X, Y)
        with jax.set_mesh(mesh):
            got = jax.jit(f)(Xs, Ys)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
        print(name, "ok")
    # normal_equations of split rows (it raised ShardingTypeError, or a raw scan error)
    for n_out in (2, 1):
        p = jbpnn.init_params(0, (3, 5, n_out), "tanh", "mse", dtype=jnp.float64)
        ref = jbpnn.normal_equations(p, X, Y[:, :n_out])
        with jax.set_mesh(mesh):
            Yn = jax.device_put(Y[:, :n_out], NamedSharding(mesh, P("d")))
            for block in (None, 3, 4):
                ne = jbpnn.normal_equations(p, Xs, Yn, block=block)
                np.testing.assert_allclose(ne.jtj, ref.jtj, rtol=1e-12, atol=1e-14)
                np.testing.assert_allclose(ne.jte, ref.jte, rtol=1e-12, atol=1e-14)
    print("normal_equations ok")
    """
)


def test_more_of_the_function_api_on_an_explicit_mesh():
    """On a batch split along an Explicit mesh: grad through apply of sum(O) or mean(O)
    (an unsplit cotangent: "Mapped away dimension ..."; with another term an
    AssertionError), the unchecked loss_and_gradient_kernel ("Contracting dimensions are
    sharded"), hvp and gnvp (the unsplit weights), normal_equations (a raw scan error):
    all against one device, float64."""
    run = _run(EXPLICIT_MORE, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(" ok") == 7, run.stdout


CONTEXT_MESH_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, jbpnn
    from jax.sharding import AxisType
    from jbpnn.many import InitSpec

    X = np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)
    Y = X[:, :2] ** 2
    params = jbpnn.init_params(0, (4, 5, 2), "tanh", "mse")
    spec = InitSpec((4, 5, 2), "tanh", "mse")
    kw = dict(optimizer=jbpnn.sgd(0.1), epochs=2, batch_size=16)
    ref = {k: np.asarray(jbpnn.train(params, X, Y, devices=k, **kw).params.layers[0].w)
           for k in (2, 4)}
    ref_many = np.asarray(jbpnn.train_many(spec, X, Y, seeds=[0, 1, 2], **kw).params.layers[0].w)
    explicit2 = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Explicit,))
    for kind in (AxisType.Explicit, AxisType.Auto):
        with jax.set_mesh(jax.make_mesh((4,), ("data",), axis_types=(kind,))):
            runs = [(jbpnn.train(params, X, Y, devices=4, **kw), 4),
                    (jbpnn.train(params, X, Y, devices=2, **kw), 2),
                    (jbpnn.train(params, X, Y, mesh=explicit2, **kw), 2)]
            many = jbpnn.train_many(spec, X, Y, seeds=[0, 1, 2], devices=2, **kw)
        for r, k in runs:
            assert np.max(np.abs(np.asarray(r.params.layers[0].w) - ref[k])) < 1e-6
        assert np.max(np.abs(np.asarray(many.params.layers[0].w) - ref_many)) < 1e-6
        print(kind, "ok")
    """
)


def test_train_and_train_many_on_their_own_mesh_inside_the_users_set_mesh():
    """Inside the user's jax.set_mesh block (their own sharded code), train(devices=k),
    train(mesh=another) and train_many failed with JAX's "context mesh ... should match
    the aval mesh": they run under their own mesh and give the results they give outside."""
    run = _run(CONTEXT_MESH_SCRIPT, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Explicit ok" in run.stdout and "Auto ok" in run.stdout, run.stdout


SHARDED_JACOBIANS = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import jbpnn
    from jbpnn.network import predict_kernel

    params = jbpnn.init_params(0, (5, 7, 3), "tanh", "mse", dtype=jnp.float64)
    X = np.random.default_rng(0).normal(size=(8, 5))
    for kind in (AxisType.Explicit, AxisType.Auto):
        mesh = jax.make_mesh((4,), ("data",), axis_types=(kind,))
        Xs = jax.device_put(X, NamedSharding(mesh, P("data")))
        with jax.set_mesh(mesh):
            for name, make, args in [
                ("jacrev_params", lambda f: jax.jacrev(f), (params, Xs)),
                ("jacrev_X", lambda f: jax.jacrev(lambda x: f(params, x)), (Xs,)),
                ("hessian_params",
                 lambda f: jax.hessian(lambda p, x: jnp.sum(f(p, x) ** 2)), (params, Xs)),
                ("hessian_X", lambda f: jax.hessian(lambda x: jnp.sum(f(params, x) ** 2)), (Xs,)),
            ]:
                got = jax.jit(make(jbpnn.apply))(*args)
                ref = jax.jit(make(predict_kernel))(*args)
                worst = max(float(jnp.max(jnp.abs(a - b)))
                            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)))
                print(kind.name, name, f"{worst:.1e}")
    """
)


def test_jacrev_and_hessian_through_apply_on_explicit_and_auto_meshes_equal_autodiff():
    """jacrev and hessian vmap the hand VJP: on an Explicit mesh its replicated
    contraction's PartitionSpec() had no room for the batch axis JAX inserts
    (AssertionError inside JAX's dot batching rule). Float64, 4 CPU devices."""
    run = _run(SHARDED_JACOBIANS, 4)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    rows = [line.split() for line in run.stdout.splitlines()]
    assert len(rows) == 8, run.stdout
    for kind, name, worst in rows:
        assert float(worst) < 1e-12, (kind, name, worst)


JVP_CLOSED_OVER = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import jbpnn

    p = jbpnn.init_params(0, (3, 4, 2), "tanh", "mse", dtype=jnp.float64)
    X = np.random.default_rng(1).normal(size=(8, 3))
    ref = jbpnn.jvp(p, X, p)[1]
    mesh = jax.make_mesh((4,), ("e",), axis_types=(AxisType.Explicit,))
    Xe = jax.device_put(X, NamedSharding(mesh, P("e")))
    with jax.set_mesh(mesh):
        got = jax.jit(lambda q: jbpnn.jvp(q, Xe, q)[1])(p)
    print("closed over", float(jnp.max(jnp.abs(got - ref))) < 1e-12)
    """
)


def test_jvp_without_dx_inside_jit_over_an_explicit_sharded_x():
    """jvp filled dX with zeros_like(X), which inside the caller's jit dropped a closed-over
    X's Explicit sharding ("Mapped away dimension ... e vs None"); dX=None now forms no
    dO_0 w_1 product at all."""
    run = _run(JVP_CLOSED_OVER, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "closed over True" in run.stdout, run.stdout


WEIGHTED_SHARES_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, jbpnn
    from jax.sharding import NamedSharding, PartitionSpec as P

    rng = np.random.default_rng(1)
    # float16, a loss of 70 on 2000 rows: each share's loss times its weight sum overflowed
    X = rng.normal(size=(2000, 5)).astype(np.float16)
    Y = (10 * np.tanh(X.astype(np.float32) @ rng.normal(size=(5, 2)))).astype(np.float16)
    p = jbpnn.init_params(0, (5, 7, 2), "tanh", init="glorot", dtype="float16")
    runs = [jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(1e-3), epochs=3, devices=d) for d in (None, 4)]
    assert [r.stop_reason for r in runs] == ["max_epochs"] * 2, [r.history["loss"] for r in runs]
    np.testing.assert_allclose(runs[1].history["loss"], runs[0].history["loss"], rtol=2e-3)
    print("float16 shares ok")
    # float32 weights of 1e34, which train accepts
    X2 = rng.normal(size=(101, 5)).astype(np.float32)
    Y2 = 100 * np.tanh(X2 @ rng.normal(size=(5, 1)))
    p2 = jbpnn.init_params(0, (5, 7, 1), "tanh", init="glorot")
    kw = dict(optimizer=jbpnn.sgd(1e-4), epochs=3, sample_weight=np.full(101, 1e34), batch_size=50)
    runs = [jbpnn.train(p2, X2, Y2, devices=d, **kw) for d in (None, 4)]
    assert runs[1].stop_reason == "max_epochs", runs[1].history["loss"]
    np.testing.assert_allclose(runs[1].history["loss"], runs[0].history["loss"], rtol=1e-5)
    print("large weights ok")
    # sample weights split along an Explicit mesh (a raw "Contracting dimensions are sharded")
    T = rng.normal(size=(12, 3)).astype(np.float32)
    X3, sw = rng.normal(size=(12, 5)).astype(np.float32), rng.uniform(0.5, 2, 12).astype(np.float32)
    p3 = jbpnn.init_params(0, (5, 6, 3), "tanh", init="glorot")
    ref_loss, ref_grad = jbpnn.loss_and_gradient(p3, X3, T, sw)
    mesh = jax.make_mesh((4,), ("data",))
    sh = lambda a: jax.device_put(a, NamedSharding(mesh, P("data")))
    with jax.set_mesh(mesh):
        got = [jbpnn.loss(p3, sh(X3), sh(T), sh(sw)),
               jax.jit(jbpnn.network.loss_and_gradient_kernel)(p3, sh(X3), sh(T), sh(sw))[0]]
        grad = jax.jit(jax.grad(jbpnn.network.loss_kernel))(p3, sh(X3), sh(T), sh(sw))
    np.testing.assert_allclose(np.asarray(got, np.float64), float(ref_loss), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(ref_grad)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    print("sharded weights ok")
    """
)


def test_weighted_shares_neither_overflow_nor_fail_on_a_mesh():
    """float16 data-parallel training stopped as 'diverged' in its first epoch (each
    device's loss times its share's weight sum overflowed), as did float32 with weights
    of 1e34; a sample_weight split along an Explicit mesh failed in the loss kernels with
    a raw ShardingTypeError."""
    run = _run(WEIGHTED_SHARES_SCRIPT, 4)
    assert run.returncode == 0, run.stdout + run.stderr
    for what in ("float16 shares", "large weights", "sharded weights"):
        assert f"{what} ok" in run.stdout, run.stdout


def test_a_data_axis_the_mesh_lacks_is_named():
    """It said 'name the one to split the batch along with data_axis=' to a user who had."""
    run = _run(
        "import jax, numpy as np, jbpnn\n"
        "p = jbpnn.init_params(0, (3, 4, 1), 'tanh')\n"
        "try:\n"
        "    jbpnn.train(p, np.ones((4, 3)), np.ones((4, 1)), optimizer=jbpnn.sgd(0.1), epochs=1,\n"
        "                mesh=jax.make_mesh((2,), ('d',)), data_axis='x')\n"
        "except ValueError as e:\n"
        "    print(e)\n",
        2,
    )
    assert "data_axis='x' is not one of them" in run.stdout, run.stdout + run.stderr

"""Memory estimates of an ensemble: the parts, the history buffer, the refusal."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jbpnn.memory import (
    RUNTIME_OVERHEAD,
    EnsembleTooLarge,
    MemoryEstimate,
    available_memory,
    check_memory,
    estimate_memory,
    format_bytes,
)
from jbpnn.optimizers import OPTIMIZERS
from jbpnn.params import init_params


def test_memory_estimate_parts():
    one = init_params(jax.random.key(0), (64, 64, 10), "sigmoid", "cross_entropy")
    n_params = 64 * 64 + 64 + 64 * 10 + 10
    adam = OPTIMIZERS["adam"](0.01)
    est = estimate_memory(
        one,
        10,
        n_examples=1000,
        batch_size=32,
        epochs=50,
        n_val=100,
        optimizer=adam,
    )
    assert est.parts["params"] == 4 * n_params * 4
    # mu, nu, a count (and the hyperparameters, where the state holds them as data)
    state_items = sum(np.size(leaf) for leaf in jax.tree.leaves(adam.init(one)))
    assert state_items >= 2 * n_params + 1
    assert est.parts["optimizer_state"] == 2 * state_items * 4
    assert est.parts["activations"] == (3 * 74 * 32 + 2 * 74 * 100) * 4
    # 3 copies of 6 keys (loss, weight change, lr_scale, val loss, accuracy, R^2) of 50 epochs
    assert est.parts["history"] == 3 * 6 * 50 * 4
    assert est.total == 10 * est.per_network + est.shared
    assert est.max_networks(est.total) == 10


def test_history_chunk_sets_the_history_part():
    """The device keeps a ring buffer of history_chunk epochs whatever epochs is (a run
    of 10 epochs holds 256 per key): min(epochs, chunk) under-estimated 131072 small
    networks with validation by half (1.0 GiB estimated, 1.8 GiB measured)."""
    one = init_params(jax.random.key(0), (4, 3, 2), "sigmoid", "cross_entropy")
    kw = dict(n_examples=100, batch_size=10, epochs=500)
    full = estimate_memory(one, 2, **kw)
    chunked = estimate_memory(one, 2, **kw, history_chunk=64)
    longer = estimate_memory(one, 2, **kw, history_chunk=10_000)
    val = estimate_memory(one, 2, **kw, history_chunk=64, n_val=5)
    assert full.parts["history"] == 3 * 3 * 500 * 4  # loss, a weight-change and an lr_scale slot
    assert chunked.parts["history"] == 3 * 3 * 64 * 4
    assert longer.parts["history"] == 3 * 3 * 10_000 * 4
    assert val.parts["history"] == 3 * 6 * 64 * 4  # and the validation loss, accuracy, R^2
    assert {k: v for k, v in chunked.parts.items() if k != "history"} == {
        k: v for k, v in full.parts.items() if k != "history"
    }


def test_the_history_buffer_is_history_chunk_long():
    """What the estimate counts: the state's ring buffer, for any number of epochs."""
    from jbpnn import InitSpec, train_many

    X = np.linspace(0, 1, 20, dtype=np.float32).reshape(10, 2)
    r = train_many(InitSpec((2, 3, 1), "tanh", "mse"), X, X[:, :1], seeds=[0, 1],
                   hparams={"lr": 0.1}, epochs=5, history_chunk=40)  # fmt: skip
    assert {k: v.shape for k, v in r.state.history.items()} == {"loss": (2, 40)}


def test_any_object_with_init_sizes_the_optimizer_state():
    one = init_params(jax.random.key(0), (4, 3, 2), "sigmoid", "cross_entropy")
    n_params = 4 * 3 + 3 + 3 * 2 + 2

    class TwoSlots:  # not an Optimizer: only init is needed
        def init(self, params):
            return (params, params)

    est = estimate_memory(one, 1, n_examples=10, optimizer=TwoSlots())
    assert est.parts["optimizer_state"] == 2 * 2 * n_params * 4
    assert estimate_memory(one, 1, n_examples=10).parts["optimizer_state"] == 2 * n_params * 4
    sgd = estimate_memory(one, 1, n_examples=10, optimizer=OPTIMIZERS["sgd"](0.1))
    assert sgd.parts["optimizer_state"] < 2 * n_params * 4


def test_check_memory_refuses_with_the_number_that_fits():
    est = MemoryEstimate(10, per_network=1000, shared=RUNTIME_OVERHEAD, parts={"params": 1000})
    check_memory(est, limit=est.total)  # exactly enough
    with pytest.raises(EnsembleTooLarge, match=r"At most 9 such networks fit") as info:
        check_memory(est, limit=est.total - 1, what="10 networks 4-3-2")
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)
    assert "10 networks 4-3-2 need about" in str(info.value) and "memory_limit" in str(info.value)
    assert est.max_networks(0) == 0


def test_available_memory_and_format_bytes():
    free, source = available_memory()
    assert free > 0 and isinstance(source, str) and source
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_limits_v2_and_v1_parents_included(tmp_path):
    from jbpnn.memory import cgroup_memory

    GiB = 2**30
    # v2: the job's group allows 4 GiB (1 GiB used); its parent has no limit ("max")
    _write(tmp_path / "v2" / "proc", "0::/slurm/job7\n")
    _write(tmp_path / "v2" / "fs" / "slurm" / "job7" / "memory.max", f"{4 * GiB}\n")
    _write(tmp_path / "v2" / "fs" / "slurm" / "job7" / "memory.current", f"{GiB}\n")
    _write(tmp_path / "v2" / "fs" / "slurm" / "memory.max", "max\n")
    free, source = cgroup_memory(str(tmp_path / "v2" / "fs"), str(tmp_path / "v2" / "proc"))
    assert free == 3 * GiB and "memory.max" in source and "4.0 GiB" in source
    # v1: no limit on the group itself (2**63 - 4096), 2 GiB on its parent: the parent's
    _write(tmp_path / "v1" / "proc", "5:cpu,cpuacct:/\n4:memory:/docker/abc\n")
    mem = tmp_path / "v1" / "fs" / "memory"
    _write(mem / "docker" / "abc" / "memory.limit_in_bytes", "9223372036854771712\n")
    _write(mem / "docker" / "memory.limit_in_bytes", f"{2 * GiB}\n")
    _write(mem / "docker" / "memory.usage_in_bytes", f"{GiB // 2}\n")
    free, source = cgroup_memory(str(tmp_path / "v1" / "fs"), str(tmp_path / "v1" / "proc"))
    assert free == 2 * GiB - GiB // 2 and "limit_in_bytes" in source
    # no cgroup file, or no limit anywhere: None (the host's RAM decides)
    assert cgroup_memory(str(tmp_path / "none"), str(tmp_path / "missing")) is None
    _write(tmp_path / "v2u" / "proc", "0::/\n")
    _write(tmp_path / "v2u" / "fs" / "memory.max", "max\n")
    assert cgroup_memory(str(tmp_path / "v2u" / "fs"), str(tmp_path / "v2u" / "proc")) is None


def test_the_cgroup_limit_is_the_guard_when_it_is_tighter_than_the_host(monkeypatch):
    """25000 digits networks with adam do not fit a 1 GiB container: refused, naming it."""
    import jbpnn.memory as memory

    monkeypatch.setattr(memory, "cgroup_memory", lambda: (2**30, "the cgroup's memory limit"))
    free, source = available_memory(jax.devices("cpu")[0])
    assert free == 2**30 and "cgroup" in source
    one = init_params(jax.random.key(0), (64, 64, 10), "sigmoid", "cross_entropy")
    est = estimate_memory(
        one, 25000, n_examples=1797, batch_size=32, optimizer=OPTIMIZERS["adam"](0.01)
    )
    with pytest.raises(EnsembleTooLarge, match="cgroup"):
        check_memory(est)


def test_train_many_counts_and_checks_per_network_row_copies_before_making_them(monkeypatch):
    """100 candidates x 5 folds of a 20000 x 100 table: the N copies of each network's rows
    are estimated and refused before a single one is made."""
    import jbpnn
    import jbpnn.many as many

    def no_copy(*args, **kw):
        raise AssertionError("the rows were copied before the memory check")

    monkeypatch.setattr(many, "_own_rows", no_copy)
    monkeypatch.setattr(many, "_own_val", no_copy)
    X = np.zeros((20000, 100), np.float32)
    Y = np.zeros((20000, 1), np.float32)
    folds = [np.arange(20000)[np.arange(20000) % 5 != k] for k in range(5)] * 100
    val = [np.arange(20000)[np.arange(20000) % 5 == k] for k in range(5)] * 100
    spec = jbpnn.InitSpec((100, 8, 1), "tanh", "mse", "glorot")
    with pytest.raises(EnsembleTooLarge, match="500 networks") as info:
        jbpnn.train_many(
            spec,
            X,
            Y,
            seeds=range(500),
            optimizer=jbpnn.sgd(0.1),
            epochs=1,
            rows=folds,
            X_val=X,
            Y_val=Y,
            val_rows=val,
            memory_limit=2**28,
        )
    # 16000 rows x 101 numbers x 4 bytes per network for its training copy alone: 6.2 MiB
    assert "per network" in str(info.value)
    est = estimate_memory(
        init_params(jax.random.key(0), (100, 8, 1)),
        500,
        n_examples=16000,
        n_val=4000,
        own_data_order=True,
        own_validation=True,
    )
    assert est.per_network >= (16000 + 4000) * 101 * 4


def test_huge_networks_are_refused_before_anything_is_allocated(monkeypatch):
    """init_params (and so every estimator's fit) and gradcheck size what they would allocate
    first: a 10**9-unit hidden layer, or a check that needs more than the memory there is."""
    import jbpnn
    import jbpnn.memory as memory
    from jbpnn.gradcheck import gradcheck
    from jbpnn.memory import ArrayTooLarge

    with pytest.raises(ArrayTooLarge, match=r"75,000,000,010 params of a 64-1000000000-10"):
        jbpnn.init_params(0, (64, 10**9, 10))
    sklearn = pytest.importorskip("sklearn")
    del sklearn
    from jbpnn.sklearn import BPNNClassifier

    X, y = np.zeros((6, 4), np.float32), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ArrayTooLarge, match="choose smaller layers"):
        BPNNClassifier(hidden_layer_sizes=(10**9,)).fit(X, y)
    params = jbpnn.init_params(0, (4, 3, 2))
    monkeypatch.setattr(memory, "available_memory", lambda device=None: (1000, "a tiny test"))
    with pytest.raises(ArrayTooLarge, match="gradcheck of a 4-3-2 network on 6 rows"):
        gradcheck(params, X, np.eye(2, dtype=np.float32)[y])


def test_the_estimate_counts_the_hosts_history_and_the_copies_of_own_rows():
    # a long run of many networks passed memory_limit and grew the process 3.4x past it:
    # the history the host gathers (every epoch of every network, and its join) was not
    # counted; rows= / val_rows= copies are held 3 and 2 times, counted once (2.0x)
    from jbpnn.many import InitSpec, train_many

    one = init_params(0, (3, 4, 2))
    kw = dict(n_examples=50, batch_size=10, epochs=40_000)
    base = estimate_memory(one, 2, **kw, history_keys=1)
    assert base.parts["host_history"] == 2 * 1 * 40_000 * 4
    own = estimate_memory(one, 2, **kw, history_keys=1, own_data_order=True, n_val=7,
                          own_validation=True)  # fmt: skip
    assert (
        own.parts["activations"] - base.parts["activations"]
        == (
            3 * 50 * 5 + 2 * 7 * 5 + 2 * 6 * 7  # rows 3x, validation rows 2x, their activations
        )
        * 4
    )
    # train_many counts its own history keys: 1000 networks of 20000 epochs hold 160 MB
    X = np.zeros((8, 1), np.float32)
    spec = InitSpec((1, 2, 1), ("tanh", "identity"))
    with pytest.raises(EnsembleTooLarge, match="host_history"):
        train_many(spec, X, X, seeds=range(1000), epochs=20_000, memory_limit=100_000_000,
                   optimizer="sgd", hparams={"lr": 0.1})  # fmt: skip


def test_a_memory_limit_past_int64_is_a_number():
    # 2**70 bytes: NumPy's isfinite refused the Python int ("ufunc 'isfinite' not supported"),
    # in train_many's check of its arguments (check_number)
    from jbpnn.checks import check_number

    check_number("memory_limit", 2**70, low=0.0)
    check_memory(estimate_memory(init_params(0, (3, 4, 2)), 2, n_examples=50), 2**70, "2 nets")
    with pytest.raises(ValueError, match="must be finite"):
        check_number("memory_limit", float("inf"), low=0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_networks=-1), "n_networks must be an integer >= 1, got -1"),
        (dict(n_networks=0), "n_networks must be an integer >= 1, got 0"),
        (dict(n_networks=2.5), "n_networks must be an integer >= 1, got 2.5"),
        (dict(n_networks="3"), "n_networks must be an integer >= 1, got '3'"),
        (dict(n_networks=True), "n_networks must be an integer >= 1, got True"),
        (dict(history_keys=-5), "history_keys must be an integer >= 1 or None"),
        (dict(n_examples=-5), "n_examples must be an integer >= 1, got -5"),
        (dict(epochs=-1), "epochs must be an integer >= 1, got -1"),
        (dict(batch_size=-1), "batch_size must be an integer >= 1 or None .None: full batch"),
        (dict(n_val=-3), "n_val must be an integer >= 0, got -3"),
        (dict(history_chunk=0), "history_chunk must be an integer >= 1 or None"),
        (dict(early_stopping="no"), "early_stopping must be True or False, got 'no'"),
        (dict(optimizer="nope"), "unknown optimizer 'nope'"),
    ],
)
def test_estimate_memory_refuses_counts_out_of_range(kwargs, match):
    # each was accepted: a negative byte count, a fraction of a network, a bool as 1
    args = dict(n_networks=2, n_examples=10) | kwargs
    with pytest.raises(ValueError, match=match):
        estimate_memory(init_params(0, (3, 4, 2)), **args)


def test_estimate_memory_names_a_template_or_optimizer_it_cannot_use():
    # AttributeError: 'NoneType' object has no attribute 'dtype' / 'str' ... 'init'
    one = init_params(0, (3, 4, 2))
    with pytest.raises(TypeError, match="template must be one network .* got NoneType"):
        estimate_memory(None, 3, n_examples=10)
    with pytest.raises(TypeError, match="optimizer must be an optimizer .* got int 5"):
        estimate_memory(one, 3, n_examples=10, optimizer=5)
    shapes = jax.eval_shape(lambda: one)  # shapes only, as the estimators pass
    assert estimate_memory(shapes, np.int64(3), n_examples=np.int32(10)).n_networks == 3


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_estimate_memory_takes_an_optimizer_by_name(name):
    # as train_many does: optimizer="sgd" raised AttributeError
    one = init_params(0, (3, 4, 2))
    lr = {"lr": 0.1} if name in ("sgd", "momentum") else {}
    want = estimate_memory(one, 2, n_examples=10, optimizer=OPTIMIZERS[name](**lr))
    assert estimate_memory(one, 2, n_examples=10, optimizer=name) == want


_DEVICES_SCRIPT = """
import numpy as np, jax
import jbpnn
from jbpnn.many import train_many
from jbpnn.memory import EnsembleTooLarge, estimate_memory
assert len(jax.devices()) == 4
X = np.zeros((20000, 64), np.float32); Y = np.zeros((20000, 10), np.float32)
spec = jbpnn.InitSpec((64, 8, 10), "tanh", "mse")
one = jax.eval_shape(lambda: jbpnn.init_params(0, spec.sizes, "tanh", "mse"))
alone = estimate_memory(one, 4, n_examples=20000, batch_size=1000, epochs=1, optimizer="sgd")
try:  # the one-device estimate fits; the data's copies on the other 3 devices do not
    train_many(spec, X, Y, seeds=range(4), optimizer="sgd", hparams={"lr": 0.1}, epochs=1,
               batch_size=1000, memory_limit=alone.total + 2**20)
    print("ran")
except EnsembleTooLarge as e:
    print("refused:", e)
"""


def test_several_cpu_devices_count_the_data_each_holds():
    # train_many replicates the shared data on every device; on 4 CPU devices (one
    # memory, the host's) a run grew 2.2x past its estimate, which counted the data once
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    run = subprocess.run(
        [sys.executable, "-c", _DEVICES_SCRIPT], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused:" in run.stdout, run.stdout
    assert "4 devices that share one memory" in run.stdout
    one = init_params(0, (64, 8, 10))
    kw = dict(n_examples=20000, batch_size=1000, epochs=1)
    alone, four = estimate_memory(one, 4, **kw), estimate_memory(one, 4, **kw, devices=4)
    data = 20000 * 74 * 4  # each further device: its copy and its reordering, 1.5x
    assert four.total - alone.total == 3 * four.replica == 3 * (3 * data // 2)
    # per-network copies (own rows) split over the devices with their networks
    assert estimate_memory(one, 4, **kw, devices=4, own_data_order=True).replica == 0


class _Accelerator:
    """A device with memory of its own (``memory_stats``), as a GPU reports it."""

    platform = "gpu"

    def __init__(self, limit: int):
        self.limit = limit

    def memory_stats(self) -> dict:
        return {"bytes_limit": self.limit, "bytes_in_use": 0}


def test_accelerators_are_checked_each_for_its_own_share():
    # 4 GPUs: each holds 1/4 of the networks and its copy of the data; checking all
    # of them against device 0's memory refused runs that fit by a factor of 4
    one = init_params(0, (64, 256, 10))
    est = estimate_memory(one, 64, n_examples=2000, batch_size=200, epochs=10,
                          devices=4, own_memory=True)  # fmt: skip
    assert est.per_device == 16 * est.per_network + est.shared
    assert est.total == 64 * est.per_network + 4 * est.shared
    roomy = int(est.per_device / 0.9) + 1
    assert roomy < 64 * est.per_network + est.shared  # all of them would not fit on one
    check_memory(est, devices=[_Accelerator(roomy)] * 4)
    # the fullest device decides; the advice counts every device's room
    with pytest.raises(EnsembleTooLarge, match="on each of 4 devices") as info:
        small = int((est.shared + 8.5 * est.per_network) / 0.9)  # room for 8 networks
        check_memory(est, devices=[_Accelerator(roomy)] * 3 + [_Accelerator(small)])
    assert est.max_networks(int(0.9 * small)) == 32
    assert "At most 32 such networks" in str(info.value)
    check_memory(est, limit=est.per_device)  # a limit given is per device


def test_cgroup_page_cache_is_not_counted_as_used(tmp_path):
    # 8 GiB limit, 7.5 GiB "used", 5.5 GiB of it inactive file cache the kernel
    # reclaims first: 6 GiB free, not 0.5 GiB
    from jbpnn.memory import cgroup_memory

    G = 2**30
    for version, files, stat in (
        ("v2", ("memory.max", "memory.current"), "anon 1\ninactive_file 5905580032\n"),
        ("v1", ("memory.limit_in_bytes", "memory.usage_in_bytes"), "total_inactive_file "
         "5905580032\ninactive_file 1\n"),
    ):  # fmt: skip
        root = tmp_path / version
        folder = root / ("docker/abc" if version == "v2" else "memory/docker/abc")
        folder.mkdir(parents=True)
        (folder / files[0]).write_text(str(8 * G))
        (folder / files[1]).write_text(str(int(7.5 * G)))
        (folder / "memory.stat").write_text(stat)
        proc = root / "cgroup"
        proc.write_text("0::/docker/abc\n" if version == "v2" else "4:memory:/docker/abc\n")
        free, source = cgroup_memory(root=str(root), proc_cgroup=str(proc))
        assert free == 6 * G, (version, free)
        assert "reclaimable file cache" in source


def test_long_runs_that_a_rule_can_stop_pay_for_the_epochs_they_run():
    # epochs=10**7 of 64 tiny networks that stop after a few epochs: refused at 14.6 GiB
    # (host_history 228.9 MiB a network, charged up front) though they ran 4 epochs
    from jbpnn.many import InitSpec, train_many

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    spec = InitSpec((4, 8, 1), "tanh", "mse")
    kw = dict(seeds=range(64), optimizer="adam", hparams={"lr": 1e-2}, memory_limit=2**30)
    r = train_many(spec, X, X[:, :1], epochs=10**7, X_val=X, Y_val=X[:, :1],
                   n_iter_no_change=3, validation_tol=1e9, **kw)  # fmt: skip
    assert r.history["loss"].shape[1] < 256
    # no rule to end it: every epoch's history is counted, and the advice says so
    with pytest.raises(EnsembleTooLarge, match="use fewer epochs"):
        train_many(spec, X, X[:, :1], epochs=10**7, **kw)


def test_a_long_run_is_refused_when_its_history_outgrows_the_memory(monkeypatch):
    import jbpnn.many as many
    from jbpnn.many import InitSpec, train_many

    seen = []
    real = many.check_memory
    monkeypatch.setattr(
        many, "check_memory", lambda est, *a, **k: seen.append(est) or real(est, *a, **k)
    )
    X = np.zeros((8, 1), np.float32)
    spec = InitSpec((1, 2, 1), ("tanh", "identity"))
    kw = dict(seeds=range(1000), optimizer="sgd", hparams={"lr": 0.1}, tol=0.0)  # never fires
    X, Y = np.zeros((8, 1), np.float32), np.ones((8, 1), np.float32)
    train_many(spec, X, Y, epochs=256, **kw)
    room = seen[0].total + 10 * 2**20  # a few chunks of history: 3 MB each
    with pytest.raises(EnsembleTooLarge, match="so far"):
        train_many(spec, X, Y, epochs=10**6, memory_limit=room, **kw)


def test_the_advice_names_what_dominates():
    one = init_params(0, (4, 3, 1))
    data = estimate_memory(one, 2, n_examples=10**8, batch_size=10, epochs=1)
    with pytest.raises(EnsembleTooLarge, match="use less data"):
        check_memory(data, limit=data.total - 1)
    big = estimate_memory(init_params(0, (4, 3000, 3000, 1)), 1000, n_examples=10, epochs=1)
    with pytest.raises(EnsembleTooLarge, match="a smaller network"):
        check_memory(big, limit=big.total - 1)


def test_lbfgs_counts_its_line_search():
    # full batch lbfgs grew the process 1.15-1.2x its estimate (64-64-10, 20000 rows):
    # the search's trial evaluation beside the loop's and its vectors were not counted
    one = init_params(0, (64, 64, 10))
    n_params = 64 * 64 + 64 + 64 * 10 + 10
    kw = dict(n_examples=20000, epochs=10)
    est = estimate_memory(one, 64, **kw, optimizer="lbfgs")
    assert est.parts["line_search"] == ((10 + 2 * 10) * n_params + 74 * 20000) * 4
    assert estimate_memory(one, 64, **kw, optimizer="momentum").parts.keys() == {
        "params", "optimizer_state", "activations", "history", "host_history"
    }  # fmt: skip


def test_dense_copies_are_counted_in_their_own_dtypes(monkeypatch):
    from jbpnn import memory

    monkeypatch.setattr(memory, "available_memory", lambda device=None: (1000, "test RAM"))
    memory.check_array_memory((10, 20), np.float32, "X")  # 800 B <= 900
    with pytest.raises(
        memory.ArrayTooLarge, match=r"dense float32 array of shape \(\d+, \d+\) and a float64 copy"
    ):
        memory.check_array_memory((10, 20), (np.float32, np.float64), "X")

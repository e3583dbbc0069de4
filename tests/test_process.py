"""jbpnn.process: a forked child refuses to run instead of hanging; a long-lived process
clears JAX's compiled programs before the kernel's mapping limit crashes it."""

from __future__ import annotations

import os
import select
import signal
import warnings

import numpy as np
import pytest

import jbpnn
import jbpnn.process as process


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3)).astype(np.float32)
    return X, (X[:, :1] > 0).astype(np.float32)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_a_child_forked_after_jax_ran_refuses_to_train_instead_of_hanging():
    """joblib's "multiprocessing" backend forked workers from a process that had fitted
    an estimator: each waited forever on its first JAX array (the runtime's threads are
    not copied by fork)."""
    X, Y = _data()
    params = jbpnn.init_params(0, (3, 2, 1))
    jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1)  # JAX runs here
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Python's "fork ... deadlock"
        pid = os.fork()
    if pid == 0:  # the child: no JAX call may run before the check
        try:
            jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1)
            message = b"trained"
        except RuntimeError as e:
            message = str(e).encode()
        except BaseException as e:  # noqa: BLE001
            message = f"{type(e).__name__}: {e}".encode()
        os.write(write, message[:4000])
        os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 60)
        message = os.read(read, 4000).decode() if ready else "no answer in 60 s (hung)"
    finally:
        os.close(read)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert "jbpnn.train cannot run in this process: it was forked" in message, message
    assert "loky" in message and "spawn" in message
    process.check_not_forked("here")  # the parent itself is no forked child


def test_past_half_the_mapping_limit_the_compiled_programs_are_released(monkeypatch):
    """A process fitting ever new network shapes kept every compiled program (about
    three memory mappings each) and segfaulted at vm.max_map_count (after about 330
    shapes, with 15 GB free): past half the limit, jbpnn clears JAX's caches, saying so."""
    cleared = []
    monkeypatch.setattr(process.jax, "clear_caches", lambda: cleared.append(True))
    X, Y = _data()
    params = jbpnn.init_params(0, (3, 7, 1))
    jbpnn.train(params, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1)
    assert cleared == []  # far below the limit: nothing happens
    regions = process.mapped_regions()
    assert regions > 0  # Linux: the mappings are counted
    monkeypatch.setattr(process, "map_limit", lambda: regions)  # half of it is in use
    again = jbpnn.init_params(1, (3, 11, 1))  # a new shape: a new program
    with pytest.warns(RuntimeWarning, match=r"memory mappings, over half .*jax.clear_caches"):
        jbpnn.train(again, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1)
    assert cleared == [True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no new program since: no look, no warning
        jbpnn.train(again, X, Y, optimizer=jbpnn.sgd(0.1), epochs=1)
    assert cleared == [True]


def test_cross_validation_in_threads_scores_as_one_job():
    """joblib's "threading" backend (and the default loky, checked by hand: a process per
    worker) gives the scores of n_jobs=1."""
    pytest.importorskip("sklearn")
    from joblib import parallel_backend
    from sklearn.model_selection import cross_val_score

    from jbpnn.sklearn import BPNNClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = BPNNClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    one = cross_val_score(est, X, y, cv=3, n_jobs=1)
    with parallel_backend("threading"):
        two = cross_val_score(est, X, y, cv=3, n_jobs=2)
    np.testing.assert_array_equal(one, two)

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
    assert est.parts["history"] == 4 * 50 * 4
    assert est.total == 10 * est.per_network + est.shared
    assert est.max_networks(est.total) == 10


def test_history_chunk_caps_the_history_part():
    one = init_params(jax.random.key(0), (4, 3, 2), "sigmoid", "cross_entropy")
    kw = dict(n_examples=100, batch_size=10, epochs=500)
    full = estimate_memory(one, 2, **kw)
    chunked = estimate_memory(one, 2, **kw, history_chunk=64)
    longer = estimate_memory(one, 2, **kw, history_chunk=10_000)
    assert full.parts["history"] == 4 * 500 * 4
    assert chunked.parts["history"] == 4 * 64 * 4
    assert longer.parts["history"] == full.parts["history"]  # min(epochs, history_chunk)
    assert full.per_network - chunked.per_network == 4 * (500 - 64) * 4
    assert {k: v for k, v in chunked.parts.items() if k != "history"} == {
        k: v for k, v in full.parts.items() if k != "history"
    }


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

"""Each optimizer against its formula worked by hand in NumPy (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jbpnn
from jbpnn.optimizers import (
    OPTIMIZERS,
    AdamState,
    MomentumState,
    Optimizer,
    SGDState,
    adam,
    apply_updates,
    constant,
    get_optimizer,
    inverse_scaling,
    momentum,
    set_hyperparams,
    sgd,
    step_decay,
)

# A small pytree of params and two different gradients, as NumPy float64.
P = {"w": np.array([[0.5, -1.0], [2.0, 0.25]]), "b": np.array([0.1, -0.3])}
G1 = {"w": np.array([[0.2, -0.4], [1.0, 0.0]]), "b": np.array([-0.5, 0.3])}
G2 = {"w": np.array([[-0.1, 0.7], [0.3, -0.2]]), "b": np.array([0.05, 0.6])}


def _steps(opt: Optimizer, grads_seq, params=P):
    """Run the optimizer on a sequence of gradients; return (params after each step, state)."""
    params = jax.tree.map(jnp.asarray, params)
    state = opt.init(params)
    out = []
    for g in grads_seq:
        updates, state = jax.jit(opt.update)(jax.tree.map(jnp.asarray, g), state, params)
        params = apply_updates(params, updates)
        out.append(jax.tree.map(np.asarray, params))
    return out, state


def _close(a, b, rtol=1e-12):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=1e-15, err_msg=k)


def _tmap(f, *trees):
    return {k: f(*(t[k] for t in trees)) for k in trees[0]}


def test_sgd_one_step(x64):
    (p1,), state = _steps(sgd(0.3), [G1])
    _close(p1, _tmap(lambda p, g: p - 0.3 * g, P, G1))
    assert isinstance(state, SGDState) and int(state.count) == 1


def test_sgd_weight_decay(x64):
    (p1,), _ = _steps(sgd(0.3, weight_decay=0.01), [G1])
    _close(p1, _tmap(lambda p, g: p - 0.3 * (g + 0.01 * p), P, G1))


def test_momentum_classical_two_steps(x64):
    lr, m = 0.1, 0.9
    (p1, p2), state = _steps(momentum(lr, m), [G1, G2])
    v1 = _tmap(lambda g: -lr * g, G1)  # v = m*0 - lr g
    e1 = _tmap(lambda p, v: p + v, P, v1)
    v2 = _tmap(lambda v, g: m * v - lr * g, v1, G2)
    e2 = _tmap(lambda p, v: p + v, e1, v2)
    _close(p1, e1)
    _close(p2, e2)
    assert isinstance(state, MomentumState) and int(state.count) == 2
    _close(jax.tree.map(np.asarray, state.trace), v2)


def test_momentum_nesterov_two_steps(x64):
    lr, m = 0.1, 0.9
    (p1, p2), _ = _steps(momentum(lr, m, variant="nesterov"), [G1, G2])
    v1 = _tmap(lambda g: -lr * g, G1)
    e1 = _tmap(lambda p, v, g: p + m * v - lr * g, P, v1, G1)
    v2 = _tmap(lambda v, g: m * v - lr * g, v1, G2)
    e2 = _tmap(lambda p, v, g: p + m * v - lr * g, e1, v2, G2)
    _close(p1, e1)
    _close(p2, e2)


def test_momentum_article_two_steps(x64):
    # ARTICLE.md section 4 item 4: change = Err*O = -g (no lr); w += lr change + m prev_change.
    lr, m = 0.5, 0.1
    (p1, p2), state = _steps(momentum(lr, m, variant="article"), [G1, G2])
    e1 = _tmap(lambda p, g: p + lr * (-g) + m * 0.0, P, G1)
    e2 = _tmap(lambda p, g, g_prev: p + lr * (-g) + m * (-g_prev), e1, G2, G1)
    _close(p1, e1)
    _close(p2, e2)
    _close(jax.tree.map(np.asarray, state.trace), _tmap(lambda g: -g, G2))


def test_momentum_zero_is_sgd(x64):
    for variant in ("classical", "nesterov", "article"):
        (_, p2), _ = _steps(momentum(0.2, 0.0, variant=variant), [G1, G2])
        (_, s2), _ = _steps(sgd(0.2), [G1, G2])
        _close(p2, s2)


def test_adam_two_steps(x64):
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    (p1, p2), state = _steps(adam(lr, b1, b2, eps), [G1, G2])
    p, mu, nu = dict(P), _tmap(np.zeros_like, P), _tmap(np.zeros_like, P)
    expected = []
    for t, g in enumerate([G1, G2], start=1):
        mu = _tmap(lambda mu, g: b1 * mu + (1 - b1) * g, mu, g)
        nu = _tmap(lambda nu, g: b2 * nu + (1 - b2) * g**2, nu, g)
        p = _tmap(
            lambda p, mu, nu: p - lr * (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t)) + eps),
            p,
            mu,
            nu,
        )
        expected.append(p)
    _close(p1, expected[0])
    _close(p2, expected[1])
    assert isinstance(state, AdamState) and int(state.count) == 2


def test_adam_efficient_variant_is_scikit_learns_step(x64):
    # scikit-learn's AdamOptimizer: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
    # w -= lr_t mu / (sqrt(nu) + eps): eps on sqrt(nu), not on the corrected sqrt(nu_hat)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-3  # a large eps: the variants differ visibly
    opt = adam(lr, b1, b2, eps, variant="efficient")
    (p1, p2), _ = _steps(opt, [G1, G2])
    p, mu, nu = dict(P), _tmap(np.zeros_like, P), _tmap(np.zeros_like, P)
    expected = []
    for t, g in enumerate([G1, G2], start=1):
        mu = _tmap(lambda mu, g: b1 * mu + (1 - b1) * g, mu, g)
        nu = _tmap(lambda nu, g: b2 * nu + (1 - b2) * g**2, nu, g)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        p = _tmap(lambda p, mu, nu: p - lr_t * mu / (np.sqrt(nu) + eps), p, mu, nu)
        expected.append(p)
    _close(p1, expected[0])
    _close(p2, expected[1])
    (c1, _), _ = _steps(adam(lr, b1, b2, eps), [G1, G2])
    assert not np.allclose(c1["w"], p1["w"], rtol=1e-6)  # the default is another step
    assert opt.kind != adam(lr).kind and adam(lr).options.get("variant") is None
    assert get_optimizer("adam", lr=lr, b1=b1, b2=b2, eps=eps, variant="efficient") == opt
    with pytest.raises(ValueError, match="unknown adam variant 'sklearn'"):
        adam(lr, variant="sklearn")


def test_adam_first_step_is_lr_sign(x64):
    # With bias correction the first step is -lr * g / (|g| + eps): about lr per coordinate
    # (eps tiny; 0 is refused: a zero gradient would take 0/0).
    (p1,), _ = _steps(adam(0.01, eps=1e-300), [G1])
    expected = _tmap(lambda p, g: p - 0.01 * np.sign(g), P, G1)
    nonzero = _tmap(lambda g: g != 0, G1)
    for k in P:
        np.testing.assert_allclose(p1[k][nonzero[k]], expected[k][nonzero[k]], rtol=1e-12)


def test_schedules(x64):
    t = jnp.arange(6)
    np.testing.assert_allclose(constant(0.3)(3), 0.3)
    np.testing.assert_allclose(step_decay(1.0, 0.5, 2)(t), [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(
        inverse_scaling(0.1, 0.5)(t), 0.1 / np.sqrt(np.arange(6) + 1.0), rtol=1e-12
    )


def test_schedule_drives_the_steps(x64):
    sched = step_decay(0.4, 0.5, 1)  # 0.4, then 0.2
    (p1, p2), _ = _steps(sgd(sched), [G1, G2])
    e1 = _tmap(lambda p, g: p - 0.4 * g, P, G1)
    _close(p1, e1)
    _close(p2, _tmap(lambda p, g: p - 0.2 * g, e1, G2))


def test_hyperparameters_can_be_traced():
    """An optimizer built inside vmap over lr and m gives one step per value."""
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}

    def one(lr, m):
        opt = momentum(lr, m, variant="nesterov")
        updates, _ = opt.update(grads, opt.init(params), params)
        return updates["w"]

    lrs, ms = jnp.array([0.1, 0.2]), jnp.array([0.0, 0.5])
    out = jax.jit(jax.vmap(one))(lrs, ms)
    for i in range(2):
        lr, m = float(lrs[i]), float(ms[i])
        v = -lr * np.asarray(grads["w"])
        np.testing.assert_allclose(out[i], m * v - lr * np.asarray(grads["w"]), rtol=1e-6)

    def adam_one(b1):
        opt = adam(0.1, b1=b1)
        return opt.update(grads, opt.init(params), params)[0]["w"]

    assert jax.vmap(adam_one)(jnp.array([0.5, 0.9])).shape == (2, 3)


def test_updates_keep_the_param_dtype(x64):
    params = {"w": jnp.ones(2, jnp.float32)}
    opt = adam(jnp.asarray(0.1, jnp.float64))
    updates, state = opt.update({"w": jnp.ones(2, jnp.float32)}, opt.init(params), params)
    assert updates["w"].dtype == jnp.float32
    assert state.mu["w"].dtype == jnp.float32


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(ValueError, match="classical.*nesterov.*article"):
        momentum(0.1, variant="heavy_ball")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: sgd(-0.1), "lr"),
        (lambda: sgd(float("nan")), "lr"),
        (lambda: sgd("fast"), "lr must be a number"),
        (lambda: momentum(0.1, m=-0.5), "m must be"),
        (lambda: adam(b1=1.0), "b1"),
        (lambda: sgd(0.1, weight_decay=-1), "weight_decay"),
        (lambda: step_decay(0.1, 0.5, 0), "every"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_registry_and_get_optimizer():
    first_order = {"sgd", "momentum", "adam"}
    assert first_order | {"rprop", "lm", "br"} <= set(OPTIMIZERS)  # lbfgs joins them
    assert not any(get_optimizer(n, lr=0.1).full_batch for n in first_order)
    opt = get_optimizer("momentum", lr=0.1, m=0.5, variant="article")
    assert isinstance(opt, Optimizer)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'.*sgd"):
        get_optimizer("rmsprop", lr=0.1)
    with pytest.raises(ValueError, match="does not take \\['m'\\]"):
        get_optimizer("sgd", lr=0.1, m=0.9)


# ---------------------------------------------------------------- hyperparameters as data
def test_hyperparameters_live_in_the_state_and_kinds_ignore_values(x64):
    opt = momentum(0.1, 0.9, variant="nesterov")
    state = opt.init(jax.tree.map(jnp.asarray, P))
    assert set(state.hyperparams) == {"lr", "m"} and float(state.hyperparams["m"]) == 0.9
    assert opt.kind == momentum(0.7, 0.2, variant="nesterov").kind
    assert hash(opt.kind) == hash(momentum(0.3, 0.5, variant="nesterov"))
    assert opt != momentum(0.2, 0.9, variant="nesterov") and opt == momentum(0.1, 0.9, "nesterov")
    assert opt.kind != momentum(0.1, 0.9, variant="classical").kind
    assert sgd(0.1).kind != sgd(0.1, weight_decay=0.01).kind  # weight decay on: another kind
    assert sgd(step_decay(0.1, 0.5, 2)).kind == sgd(step_decay(0.9, 0.1, 5)).kind
    with pytest.raises(ValueError, match="kind without values"):
        opt.kind.init(P)


def test_the_update_reads_the_values_from_the_state_not_the_optimizer(x64):
    params = jax.tree.map(jnp.asarray, P)
    grads = jax.tree.map(jnp.asarray, G1)
    state = sgd(0.1).init(params)
    fast = set_hyperparams(state, lr=0.5)
    step = jax.jit(sgd(123.0).kind.update)  # the kind has no values at all
    (u_slow, _), (u_fast, _) = step(grads, state, params), step(grads, fast, params)
    _close(u_slow, _tmap(lambda g: -0.1 * g, G1))
    _close(u_fast, _tmap(lambda g: -0.5 * g, G1))
    with pytest.raises(ValueError, match="no hyperparameters \\['m'\\]"):
        set_hyperparams(state, m=0.9)
    assert sgd(0.1).replace(lr=0.2) == sgd(0.2)
    with pytest.raises(ValueError, match="has no hyperparameters"):
        sgd(0.1).replace(m=0.5)


def test_impossible_hyperparameters_are_refused():
    for make in (
        lambda: momentum(0.1, m=1.0),
        lambda: momentum(0.1, m=1.5),
        lambda: adam(b2=1.2),
        lambda: adam(eps=-1.0),
        lambda: sgd(float("inf")),
    ):
        with pytest.raises(ValueError, match="must be finite"):
            make()


@pytest.mark.parametrize("make", [jbpnn.sgd, jbpnn.momentum, jbpnn.adam])
def test_the_update_count_saturates_instead_of_wrapping_after_2_31_updates(make):
    """A long online run: after 2**31 - 1 updates the int32 count stays at its largest value,
    so inverse scaling keeps its last (tiny, finite) rate instead of turning into NaN."""
    params = jbpnn.init_params(0, (2, 1))
    opt = make(jbpnn.optimizers.inverse_scaling(0.1, 0.5))
    state = opt.init(params)
    state = state._replace(count=jnp.asarray(2**31 - 3, jnp.int32))
    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(4):
        updates, state = opt.update(grads, state, params)
        assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves(updates))
    assert int(state.count) == 2**31 - 1


def test_adam_eps_zero_is_refused():
    """A weight whose gradient is exactly 0 took 0 / (sqrt(0) + 0) = NaN: the run stopped as
    "diverged" after one epoch."""
    with pytest.raises(ValueError, match="eps must be > 0"):
        adam(0.01, eps=0)


def test_adam_refuses_a_beta_that_rounds_to_one():
    """b2=0.999 is 1.0 in bfloat16: nu stayed 0, 1 / (1 - b2^t) was inf and the first
    update NaN, silently in a user's loop (optax's adam gives finite updates there)."""
    from jbpnn import init_params

    p = init_params(0, (2, 3, 1), dtype=jnp.bfloat16)
    with pytest.raises(ValueError, match=r"adam's b2=0.999 is 1 once cast .* bfloat16"):
        adam(1e-3).init(p)
    adam(1e-3, b2=0.99).init(p)  # 0.98828125 in bfloat16


def test_values_given_later_meet_the_factories_checks():
    """set_hyperparams and Optimizer.replace took what the factories refuse (m=1.5, lr=nan,
    lr='0.1', b1=1.0): NaN or a blow-up later, or a raw broadcasting error for a shape."""
    p = jbpnn.init_params(0, (3, 4, 1), "tanh", "mse")
    state = jbpnn.momentum(0.1, 0.5).init(p)
    for values, words in (
        ({"m": 1.5}, "m must be finite, at least 0.0 and below 1.0; got 1.5"),
        ({"lr": float("nan")}, "lr must be finite, at least 0.0; got nan"),
        ({"lr": -1.0}, "lr must be finite, at least 0.0; got -1.0"),
        ({"lr": "0.1"}, r"lr must be a number \(an int or a float\), got '0.1'"),
        ({"lr": np.array([0.1, 0.2])}, r"lr must be one number or an array of shape \(\)"),
    ):
        with pytest.raises(ValueError, match=words):
            jbpnn.set_hyperparams(state, **values)
        if "shape" not in words:
            with pytest.raises(ValueError, match=words):
                jbpnn.momentum(0.1, 0.5).replace(**values)
    with pytest.raises(ValueError, match="b1 must be finite, at least 0.0 and below 1.0"):
        jbpnn.set_hyperparams(jbpnn.adam().init(p), b1=1.0)
    with pytest.raises(ValueError, match="0 < c1 < c2 < 1, got c1=0.5, c2=0.5"):
        jbpnn.lbfgs().replace(c1=0.5, c2=0.5)
    # valid values, host or device, one per network on a stacked state: taken
    assert float(jbpnn.set_hyperparams(state, m=0.9).hyperparams["m"]) == pytest.approx(0.9)
    assert jbpnn.momentum(0.1).replace(lr=jnp.float32(0.3)).hyperparams["lr"] == 0.3
    stacked = jax.vmap(jbpnn.momentum(0.1, 0.5).init)(jbpnn.many.stack_params([p, p]))
    out = jbpnn.set_hyperparams(stacked, lr=np.array([0.1, 0.2]))
    assert np.allclose(out.hyperparams["lr"], [0.1, 0.2])
    with pytest.raises(ValueError, match="lr must be finite, at least 0.0; got -0.2"):
        jbpnn.set_hyperparams(stacked, lr=np.array([0.1, -0.2]))


def test_set_hyperparams_on_a_train_state_points_to_its_opt_state():
    p = jbpnn.init_params(0, (2, 3, 1))
    X = np.zeros((8, 2), np.float32)
    run = jbpnn.train(p, X, X[:, :1], optimizer=jbpnn.sgd(0.1), epochs=1)
    with pytest.raises(ValueError, match=r"set_hyperparams\(state.opt_state, ...\)"):
        jbpnn.set_hyperparams(run.state, lr=0.2)


def test_update_refuses_a_state_of_another_kind_by_name():
    """sgd(step_decay).update on an sgd(0.1) state raised a bare KeyError 'drop'; adam's
    update on a momentum state KeyError 'b1'."""
    p = jbpnn.init_params(0, (2, 3, 1))
    g = jax.tree.map(jnp.zeros_like, p)
    with pytest.raises(
        ValueError, match=r"holds \['lr'\], this optimizer \['drop', 'every', 'lr'\]"
    ):
        jbpnn.sgd(jbpnn.optimizers.step_decay(0.1)).update(g, jbpnn.sgd(0.1).init(p), p)
    with pytest.raises(ValueError, match="cannot update a state of another optimizer kind"):
        jbpnn.adam().update(g, jbpnn.momentum(0.1).init(p), p)


# ---------------------------------------------------------------- red-team pass (opt15)
def test_lbfgs_init_and_update_called_directly_without_jit():
    """The (init, update) pair used as the README shows, eagerly: lbfgs's init builds NumPy
    rows, which its two-loop recursion indexed with a scan's traced index (a
    TracerArrayConversionError); the eager step equals the jitted one."""
    from jbpnn.jacobian import normal_equations_kernel
    from jbpnn.network import loss_and_gradient_kernel, loss_kernel
    from jbpnn.optimizers import Objective, lbfgs

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 2)).astype(np.float32)
    Y = np.sin(3 * X[:, :1]) * X[:, 1:]
    p = jbpnn.init_params(0, (2, 4, 1), ("tanh", "identity"), "mse")
    obj = Objective(
        loss=lambda q: loss_kernel(q, X, Y, None),
        normal_equations=lambda q: normal_equations_kernel(q, X, Y, None),
        loss_and_grad=lambda q: loss_and_gradient_kernel(q, X, Y, None),
    )
    opt = lbfgs()
    step = jax.jit(lambda s, q: opt.update(None, s, q, objective=obj))
    eager = jitted = (opt.init(p), p)
    for _ in range(4):  # the first step, then steps with pairs in the memory
        u, s = opt.update(None, *eager, objective=obj)
        u_jit, s_jit = step(*jitted)
        assert float(s.loss) == pytest.approx(float(s_jit.loss), rel=1e-5)
        np.testing.assert_allclose(u.layers[0].w, u_jit.layers[0].w, rtol=1e-4, atol=1e-7)
        eager, jitted = (s, apply_updates(eager[1], u)), (s_jit, apply_updates(jitted[1], u_jit))
    assert int(s.n_pairs) >= 2


@pytest.mark.parametrize(
    "make, given, message",
    [
        (lambda: adam(0.01), {"eps": 0.0}, "eps must be > 0"),
        (lambda: adam(0.01), {"eps": np.array([1e-8, 0.0])}, "eps must be > 0"),
        (lambda: jbpnn.levenberg_marquardt(), {"mu": 0.0}, "mu must be > 0"),
        (lambda: jbpnn.levenberg_marquardt(), {"mu_dec": 0.0}, "mu_dec must be > 0"),
        (lambda: jbpnn.bayesian_regularization(), {"mu_inc": 1.0}, "mu_inc must be > 1"),
    ],
)
def test_values_given_later_meet_the_factorys_strict_bounds(make, given, message):
    """Optimizer.replace and set_hyperparams check what the factory checks: adam's eps
    0 (a zero gradient's step is 0/0 = NaN: a resumed run "diverged"), lm's mu and mu_dec
    0, br's mu_inc 1 (mu never grows) were taken."""
    opt = make()
    with pytest.raises(ValueError, match=message):
        opt.replace(**given)
    if np.ndim(next(iter(given.values()))) == 0:  # a state of one network takes one value
        with pytest.raises(ValueError, match=message):
            set_hyperparams(opt.init({"w": jnp.zeros((2, 2))}), **given)
    if np.ndim(next(iter(given.values()))) == 0:  # the factory, as before
        with pytest.raises(ValueError, match=message):
            OPTIMIZERS[opt.name](**given)


def test_set_hyperparams_refuses_a_value_the_states_dtype_cannot_hold():
    """lr=1e300 into a float32 state became inf (only NumPy's RuntimeWarning), and the next
    update NaN; init refuses it as an overflow, and so does set_hyperparams now."""
    state = sgd(0.1).init({"w": jnp.zeros(2, jnp.float32)})
    with pytest.raises(ValueError, match="overflows to inf"):
        set_hyperparams(state, lr=1e300)
    with pytest.raises(ValueError, match="underflows to 0"):
        set_hyperparams(state, lr=1e-300)
    assert float(set_hyperparams(state, lr=0.5).hyperparams["lr"]) == 0.5


def test_lm_refuses_a_starting_mu_above_mu_max():
    with pytest.raises(ValueError, match="above mu_max"):
        jbpnn.levenberg_marquardt(mu=1.0, mu_max=0.1)
    with pytest.raises(ValueError, match="above mu_max"):
        jbpnn.levenberg_marquardt().replace(mu=1e11)
    jbpnn.levenberg_marquardt(mu=0.1, mu_max=0.1)  # equal: MATLAB tries mu_max itself


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_schedules_count_updates_exactly_in_low_precision_networks(dtype):
    """The update count met the schedule in the params' dtype: bfloat16 rounds it from 256
    on (step_decay dropped the rate at update 299 to 0.125, not 0.25) and float16's
    overflows at 65504 (inverse_scaling's rate 0 from then on)."""

    def lr_at(opt, count):
        p = {"w": jnp.zeros((1,), dtype)}
        state = opt.init(p)._replace(count=jnp.asarray(count, jnp.int32))
        u, _ = opt.update({"w": -jnp.ones((1,), dtype)}, state, p)
        assert u["w"].dtype == dtype  # the rate still meets the network in its dtype
        return float(u["w"][0])

    for count in (299, 1199):
        assert lr_at(sgd(step_decay(1.0, 0.5, 100)), count) == 0.5 ** (count // 100)
    expect = 1 / np.sqrt(70000 + 1)
    assert lr_at(sgd(inverse_scaling(1.0, 0.5)), 70000) == pytest.approx(expect, rel=1e-2)


def test_optimizers_with_numpy_values_per_network_are_equal_to_their_copies():
    """``a == b`` of NumPy arrays is an array: an optimizer with one value per network was
    unequal to its copy and to its pickle (a set kept both; a compiled loop taking it as
    static compiled again)."""
    import pickle

    a = momentum(0.1).replace(lr=np.array([0.1, 0.2]))
    b = momentum(0.1).replace(lr=np.array([0.1, 0.2]))
    assert a == b and a == pickle.loads(pickle.dumps(a)) and len({a, b}) == 1
    assert a != momentum(0.1).replace(lr=np.array([0.1, 0.3]))


def test_update_arguments_an_optimizer_cannot_use_are_refused_clearly():
    """lr_scale for an optimizer without lr was a bare KeyError 'lr'; alpha with a batch
    size of 0 an inf update; a schedule of your own showed as ``sgd(, schedule=...)``."""
    from jbpnn.optimizers import rprop

    p = {"w": jnp.ones((2, 2))}
    g = {"w": jnp.ones((2, 2))}
    for opt in (rprop(), sgd(lambda t: 0.1)):
        with pytest.raises(ValueError, match="no learning rate lr for lr_scale"):
            opt.update(g, opt.init(p), p, lr_scale=0.5)
    opt = sgd(0.1, alpha=0.1)
    with pytest.raises(ValueError, match="batch_size: it must be > 0"):
        opt.update(g, opt.init(p), p, batch_size=0)
    assert repr(sgd(lambda t: 0.1)) == "sgd(schedule=<lambda>)"


def test_a_jax_array_of_several_values_is_not_one_optimizers_hyperparameter():
    """momentum(jnp.array([0.1, 0.2, 0.3])) was built, then train failed with a broadcasting
    error inside the rule and train_many with "Only scalar arrays can be converted"; the
    factory refuses it, pointing to train_many's per-network hparams (NumPy arrays were
    refused already)."""
    with pytest.raises(ValueError, match=r"lr must be one number, got an array of shape \(3,\)"):
        momentum(jnp.array([0.1, 0.2, 0.3]), 0.9)
    with pytest.raises(ValueError, match="lr must be a number"):
        momentum(np.array([0.1, 0.2, 0.3]), 0.9)
    assert float(momentum(jnp.asarray(0.1), 0.9).init({"w": jnp.zeros(2)}).hyperparams["lr"]) == (
        pytest.approx(0.1)
    )


@pytest.mark.parametrize("make", [sgd, jbpnn.adam])
def test_alpha_divides_once_per_update_not_once_per_weight(make):
    """scikit-learn's alpha term, g_w += alpha w / n_batch, is w * (alpha / n_batch): a
    division per weight was a pass of its own over every w (XLA would not fuse it into
    both consumers of momentum's two updates: 24 us of a 550 us update of 40 digits
    networks)."""
    params = jbpnn.init_params(jax.random.key(0), (3, 5, 2), "tanh", "mse")
    grads = jax.tree.map(jnp.ones_like, params)

    def divisions(opt) -> int:  # of arrays of weights, not of scalars
        jaxpr = jax.make_jaxpr(lambda g, s, p: opt.update(g, s, p, batch_size=jnp.float32(4)))(
            grads, opt.init(params), params
        )
        return sum(e.primitive.name == "div" and e.outvars[0].aval.ndim >= 2 for e in jaxpr.eqns)

    assert divisions(make(0.01, alpha=0.1)) == divisions(make(0.01))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: jbpnn.sgd(jnp.array(-1.0)), r"lr must be finite, at least 0.0; got -1.0"),
        (lambda: jbpnn.adam(0.1, b1=jnp.array(-1.0)), r"b1 must be finite"),
        (lambda: jbpnn.levenberg_marquardt(mu=jnp.array(-1.0)), r"mu must be finite"),
        (lambda: jbpnn.rprop(delta_max=jnp.array(-1.0)), r"delta_max must be finite"),
        (lambda: jbpnn.lbfgs(c1=np.array(0.95)), r"Wolfe constants need 0 < c1 < c2"),
        (lambda: jbpnn.lbfgs(c1=jnp.array(0.95)), r"Wolfe constants need 0 < c1 < c2"),
        (lambda: jbpnn.levenberg_marquardt(mu=np.array(1e12)), r"is above mu_max"),
        (lambda: jbpnn.levenberg_marquardt(mu=1e3, mu_max=jnp.array(1.0)), r"is above mu_max"),
        (lambda: jbpnn.momentum(0.1, m=jnp.array(5.0)), r"m must be finite, at least 0.0 and"),
    ],
)
def test_values_known_here_are_checked_whatever_array_holds_them(make, match):
    """A concrete JAX array's value is known: sgd(jnp.array(-1.0)) ran gradient ascent
    unchecked, and a 0-d NumPy array skipped the checks across two hyperparameters
    (lbfgs's c1 < c2, lm's mu <= mu_max). Traced values still pass (test below)."""
    with pytest.raises(ValueError, match=match):
        make()


def test_set_hyperparams_copies_no_device_value_to_the_host():
    """set_hyperparams may run every step of a user's loop: a device array is the caller's
    data (a copy to the host per call waits for the device; 4096 networks' lr took 7 ms);
    host values are checked, a whole array at once."""
    p = jbpnn.init_params(0, (2, 2, 1))
    state = jax.vmap(lambda lr: jbpnn.momentum(lr, 0.9).init(p))(jnp.full((8,), 0.1))
    new = set_hyperparams(state, m=jnp.full((8,), 0.5))
    assert float(new.hyperparams["m"][0]) == 0.5
    with pytest.raises(ValueError, match=r"m must be finite, at least 0.0 and below 1.0; got 5.0"):
        set_hyperparams(state, m=np.r_[np.full(7, 0.5), 5.0])


def test_traced_hyperparameters_still_pass_unchecked():
    p = jbpnn.init_params(0, (2, 2, 1))
    lrs = jax.jit(lambda lr: jbpnn.sgd(lr).init(p).hyperparams["lr"])(jnp.float32(0.5))
    assert float(lrs) == 0.5
    assert jbpnn.sgd(jnp.array(0.1)).hyperparams["lr"] is not None


def test_a_momentum_state_records_its_variant():
    """The state's trace means lr * velocity (classical, nesterov) or the raw change
    (article): the state records which variant made it, and keeps it through updates."""
    from jbpnn.optimizers import MOMENTUM_VARIANTS, MomentumState, momentum

    params = jbpnn.init_params(0, (3, 2))
    grads = jax.tree.map(jnp.ones_like, params)
    for variant in MOMENTUM_VARIANTS:
        opt = momentum(0.1, 0.5, variant=variant)
        state = opt.init(params)
        _, state = jax.jit(opt.update)(grads, state, params)
        assert isinstance(state, MomentumState)
        assert int(state.variant) == list(MOMENTUM_VARIANTS).index(variant)


def test_apply_updates_keeps_each_params_dtype_as_optax_does():
    """bfloat16 params under float32 updates came back float32 (optax keeps bfloat16), so
    a user's jitted step changed the params' type and compiled again."""
    optax = pytest.importorskip("optax")
    params = jbpnn.init_params(0, (3, 4, 2), dtype=jnp.bfloat16)
    updates = jax.tree.map(lambda a: jnp.full(a.shape, 0.1, jnp.float32), params)
    mine, theirs = apply_updates(params, updates), optax.apply_updates(params, updates)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))

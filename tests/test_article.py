"""The article's facade: demo 1, its messages, one step by hand, train == the loop, getData."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbpnn.article import BPNN, get_data
from jbpnn.network import backward, forward
from jbpnn.params import MLP

# ARTICLE.md section 3, demo 1.
A, B = [1, 0, 1, 0, 1], [1, 0, 1, 1, 1]
DEMO_TRAIN = [[A, [1]], [A, [1]], [A, [1]], [B, [0]], [A, [1]], [B, [0]]]
DEMO_TEST = [A, A, B, A, B, A, A, B, A, [1, 1, 1, 0, 1]]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_layers(params: MLP):
    return [(np.asarray(l.w, np.float64), np.asarray(l.b, np.float64)) for l in params.layers]


# ---------------------------------------------------------------- the demo
def test_demo_1_reproduced(capsys):
    net = BPNN(5, 1, seed=0)
    errors = net.train(DEMO_TRAIN)  # the article's defaults: 1000 epochs, lr 0.1, m 0.1
    out = net.fit(DEMO_TEST)
    assert len(out) == 10 and all(len(o) == 1 for o in out)
    for x, (o,) in zip(DEMO_TEST, out):
        if x == A:
            assert o > 0.9, out
        elif x == B:
            assert o < 0.1, out
    printed = capsys.readouterr().out
    assert printed == f"Err: {float(errors.min())}\n"
    assert errors.shape == (1000,) and errors[-1] < errors[0]


def test_demo_2_cat_dog_with_one_hot_targets():
    data = [[x, [1, 0] if y == [1] else [0, 1]] for x, y in DEMO_TRAIN]
    net = BPNN(5, 2, seed=0)
    net.train(data, verbose=False)
    labels = ["cat" if o[0] > o[1] else "dog" for o in net.fit(DEMO_TEST)]
    assert labels[:9] == ["cat", "cat", "dog", "cat", "dog", "cat", "cat", "dog", "cat"]


# ---------------------------------------------------------------- messages
def test_update_wrong_length_uses_article_message():
    net = BPNN(5, 1)
    with pytest.raises(ValueError, match=r"^Your data length is 4, but our input needs 5$"):
        net.update([1, 0, 1, 0])


def test_backpropagate_wrong_length():
    net = BPNN(5, 2)
    net.update(A)
    with pytest.raises(ValueError, match=r"^Your target length is 1, but our output needs 2$"):
        net.backpropagate([1])


def test_train_and_fit_wrong_lengths_name_the_example():
    net = BPNN(5, 1)
    bad_x = DEMO_TRAIN[:2] + [[[1, 0, 1], [1]]]
    with pytest.raises(
        ValueError, match=r"Your data length is 3, but our input needs 5 \(example 2\)"
    ):
        net.train(bad_x, verbose=False)
    bad_y = [[A, [1, 0]]]
    with pytest.raises(ValueError, match=r"Your target length is 2, but our output needs 1"):
        net.train(bad_y, verbose=False)
    with pytest.raises(
        ValueError, match=r"Your data length is 6, but our input needs 5 \(example 1\)"
    ):
        net.fit([A, A + [0]])
    with pytest.raises(ValueError, match=r"expected an \[x, y\] pair"):
        net.train([A], verbose=False)
    with pytest.raises(ValueError, match="at least one"):
        net.train([], verbose=False)
    with pytest.raises(ValueError, match="epochs"):
        net.train(DEMO_TRAIN, epochs=0)


def test_train_rejects_nan():
    net = BPNN(2, 1)
    with pytest.raises(ValueError, match="NaN"):
        net.train([[[0.0, float("nan")], [1]]], verbose=False)


def test_backpropagate_needs_update_first():
    net = BPNN(2, 1)
    with pytest.raises(ValueError, match=r"update\(inputs\) before backpropagate"):
        net.backpropagate([1])
    net.update([1, 2])
    net.backpropagate([1])
    with pytest.raises(ValueError, match=r"update\(inputs\) before"):
        net.backpropagate([1])  # the outputs of that forward pass are stale now


@pytest.mark.parametrize(
    "kwargs", [{"n_in": 0}, {"n_out": 1.5}, {"n_hidden": -1}, {"lr": -0.1}, {"m": -1.0}]
)
def test_constructor_validates(kwargs):
    args = {"n_in": 2, "n_out": 1, **kwargs}
    with pytest.raises(ValueError):
        BPNN(**args)


# ---------------------------------------------------------------- the maths
def test_forward_uses_biases_and_logistic_sigmoid(x64):
    net = BPNN(3, 2, n_hidden=4, seed=7, dtype=jnp.float64)
    (w1, b1), (w2, b2) = _np_layers(net.params)
    assert np.all(b1 != 0) and np.all(np.abs(b1) <= 0.2) and np.all(np.abs(w1) <= 0.2)
    x = np.array([0.5, -1.0, 2.0])
    expected = _sigmoid(_sigmoid(x @ w1 + b1) @ w2 + b2)  # bias reaches every unit
    np.testing.assert_allclose(net.update(x), expected, rtol=1e-13)


def test_backpropagate_two_steps_by_hand(x64):
    """Two steps (the second uses momentum) against numpy formulas and against backward."""
    lr, m = 0.5, 0.3
    net = BPNN(3, 2, n_hidden=2, lr=lr, m=m, seed=1, dtype=jnp.float64)
    examples = [([1.0, 0.0, 1.0], [1.0, 0.0]), ([0.0, 2.0, -1.0], [0.0, 1.0])]
    layers = _np_layers(net.params)
    prev = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    for x, t in examples:
        x, t = np.array(x), np.array(t)
        params_before = net.params
        (w1, b1), (w2, b2) = layers
        # The article's formulas, in numpy.
        o1 = _sigmoid(x @ w1 + b1)
        o2 = _sigmoid(o1 @ w2 + b2)
        err2 = o2 * (1 - o2) * (t - o2)  # Err_k = O(1-O)(T-O)
        err1 = o1 * (1 - o1) * (w2 @ err2)  # Err_j = O(1-O) sum_k Err_k w_jk (old weights)
        change = [(np.outer(x, err1), err1), (np.outer(o1, err2), err2)]  # change = Err * O
        # The same change from jbpnn's backward: -dE/dtheta.
        _, cache = forward(params_before, x)
        grads = backward(params_before, cache, t)
        for (cw, cb), g in zip(change, grads.layers):
            np.testing.assert_allclose(-np.asarray(g.w), cw, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(-np.asarray(g.b), cb, rtol=1e-12, atol=1e-15)
        # w += lr * change + m * prev_change
        layers = [
            (w + lr * cw + m * pw, b + lr * cb + m * pb)
            for (w, b), (cw, cb), (pw, pb) in zip(layers, change, prev)
        ]
        prev = change
        assert net.update(x) == pytest.approx(o2.tolist(), rel=1e-13)
        rms = net.backpropagate(t)
        assert rms == pytest.approx(np.sqrt(np.mean((t - o2) ** 2)), rel=1e-13)
        for (w, b), got in zip(layers, net.params.layers):
            np.testing.assert_allclose(np.asarray(got.w), w, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(np.asarray(got.b), b, rtol=1e-13, atol=1e-15)


def test_train_equals_loop_of_update_backpropagate(x64):
    data = [[A, [1.0, 0.0]], [B, [0.0, 1.0]], [[0.2, 1.5, 0, 1, 0.3], [1.0, 1.0]]]
    fast = BPNN(5, 2, n_hidden=3, lr=0.3, m=0.2, seed=4, dtype=jnp.float64)
    slow = BPNN(5, 2, n_hidden=3, lr=0.3, m=0.2, seed=4, dtype=jnp.float64)
    errors = fast.train(data, epochs=4, verbose=False)
    loop_errors = []
    for _ in range(4):
        err = 0.0
        for x, y in data:
            slow.update(x)
            err += slow.backpropagate(y)
        loop_errors.append(err)
    np.testing.assert_allclose(errors, loop_errors, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(slow.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
    for a, b in zip(jax.tree.leaves(fast.opt_state), jax.tree.leaves(slow.opt_state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)


def test_momentum_carries_across_train_calls(x64):
    one = BPNN(5, 1, seed=2, dtype=jnp.float64)
    two = BPNN(5, 1, seed=2, dtype=jnp.float64)
    one.train(DEMO_TRAIN, epochs=2, verbose=False)
    two.train(DEMO_TRAIN, epochs=1, verbose=False)
    two.train(DEMO_TRAIN, epochs=1, verbose=False)  # prev_change kept from the first call
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(two.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_seed_decides_initial_params():
    same = [BPNN(5, 1, seed=3).params for _ in range(2)]
    other = BPNN(5, 1, seed=4).params
    np.testing.assert_array_equal(same[0].layers[0].w, same[1].layers[0].w)
    assert not np.array_equal(same[0].layers[0].w, other.layers[0].w)
    assert same[0].sizes == (5, 10, 1)
    assert same[0].activations == ("sigmoid", "sigmoid") and same[0].loss == "mse"


def test_predict_shape_and_agrees_with_update():
    net = BPNN(5, 2, seed=0)
    p = net.predict(DEMO_TEST)
    assert p.shape == (10, 2)
    np.testing.assert_allclose(p[2], net.update(DEMO_TEST[2]), rtol=1e-6)
    assert net.fit(DEMO_TEST) == p.tolist()
    assert net.predict([]).shape == (0, 2)


# ---------------------------------------------------------------- getData
def test_get_data_with_labels():
    data = get_data(200, 5, c=2, seed=1)
    assert len(data) == 200
    xs = np.array([x for x, _ in data])
    labels = [y for _, y in data]
    assert xs.shape == (200, 5) and xs.min() >= 0.0 and xs.max() < 2.0
    assert all(len(y) == 1 and isinstance(y[0], int) for y in labels)
    assert {y[0] for y in labels} == {0, 1, 2}  # 0..c inclusive, like random.randint
    assert not np.all(xs == xs[:, :1])  # independent features by default
    assert get_data(200, 5, c=2, seed=1) == data
    assert get_data(200, 5, c=2, seed=2) != data


def test_get_data_without_labels_and_article_quirk():
    rows = get_data(10, 3)
    assert len(rows) == 10 and all(len(r) == 3 and isinstance(r[0], float) for r in rows)
    same = np.array(get_data(10, 3, same_value=True))
    assert np.all(same == same[:, :1])  # the article's [uniform()] * n: one draw per row


def test_get_data_feeds_the_facade():
    net = BPNN(4, 1)
    net.train(get_data(20, 4, c=1), epochs=2, verbose=False)
    assert len(net.fit(get_data(3, 4))) == 3


@pytest.mark.parametrize("args", [(0, 5), (3, 0), (3, 2, -1), (2.5, 3)])
def test_get_data_validates(args):
    with pytest.raises(ValueError):
        get_data(*args)
    for seed in (1.5, -1):  # NumPy's SeedSequence errors named no argument
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            get_data(3, 2, seed=seed)


def test_train_on_one_pair_is_the_update_backpropagate_step(x64):
    # one pair was padded into a batch of 64 for the one-example article gradient:
    # "got a batch of 64; its other rows would be dropped"
    fast = BPNN(5, 2, n_hidden=3, lr=0.3, m=0.2, seed=4, dtype=jnp.float64)
    slow = BPNN(5, 2, n_hidden=3, lr=0.3, m=0.2, seed=4, dtype=jnp.float64)
    errors = fast.train([[A, [1.0, 0.0]]], epochs=2, verbose=False)
    loop = []
    for _ in range(2):
        slow.update(A)
        loop.append(slow.backpropagate([1.0, 0.0]))
    np.testing.assert_allclose(errors, loop, rtol=1e-12)


def test_lr_and_m_set_on_the_object_take_effect():
    """The article's class reads self.lr and self.m at every step; here they were copies:
    net.lr = 0 changed nothing (and -5 was accepted)."""
    from jbpnn.article import BPNN

    data = [[[0, 0], [0]], [[0, 1], [1]], [[1, 0], [1]], [[1, 1], [0]]]
    net = BPNN(2, 1, n_hidden=3)
    net.lr, net.m = 0.0, 0.0
    before = np.asarray(net.params.layers[0].w)
    net.train(data, epochs=3, verbose=False)
    net.update([1, 0])
    net.backpropagate([1])
    np.testing.assert_array_equal(net.params.layers[0].w, before)
    net.lr = 0.5
    assert net.lr == 0.5 and float(net.opt_state.hyperparams["lr"]) == 0.5
    net.train(data, epochs=1, verbose=False)
    assert not np.array_equal(np.asarray(net.params.layers[0].w), before)
    with pytest.raises(ValueError, match="lr must be finite, at least 0"):
        net.lr = -5
    assert net.lr == 0.5


def test_the_facade_refuses_what_it_cannot_do_right():
    from jbpnn.article import BPNN, article_gradient

    net = BPNN(2, 1, n_hidden=3)
    with pytest.raises(ValueError, match="expected finite numbers"):
        net.update([np.inf, 0])  # NaN weights after backpropagate, without a word
    net.update([1, 0])
    with pytest.raises(ValueError, match="expected finite numbers"):
        net.backpropagate([np.nan])
    if not jax.config.read("jax_enable_x64"):
        with pytest.raises(ValueError, match="dtype float64 needs 64-bit JAX"):
            BPNN(2, 1, dtype=jnp.float64)  # was float32 without a word
    X, Y = jnp.ones((3, 2)), jnp.ones((3, 1))
    with pytest.raises(ValueError, match="the gradient of ONE example"):
        article_gradient(net.params, X, Y)  # used row 0 of any batch


def test_the_facade_train_has_no_divergence_guard_as_the_article():
    """train stopped "diverged" (a shorter error array, then nothing, then a crash on an
    empty minimum); the article's loop, update/backpropagate in order, has no guard."""
    from jbpnn.article import BPNN

    data = [[[0, 0], [0]], [[0, 1], [1]], [[1, 0], [1]], [[1, 1], [0]]]
    a, b = BPNN(2, 1, n_hidden=3, lr=1e10), BPNN(2, 1, n_hidden=3, lr=1e10)
    errors = a.train(data, epochs=6, verbose=False)
    assert errors.shape == (6,)
    loop = []
    for _ in range(6):
        loop.append(sum(b.update(x) and b.backpropagate(y) for x, y in data))
    np.testing.assert_allclose(errors, loop, rtol=1e-5)
    assert a.train(data, epochs=2).shape == (2,)


def test_article_mode_with_a_logistic_delta_is_refused():
    """binary_cross_entropy's delta T - O is the logistic sigmoid's; in article mode the
    sigmoid is the article code's tanh: negative 'cross-entropies' trained silently."""
    from jbpnn import MLP, init_params

    with pytest.raises(ValueError, match="article_mode's sigmoid is the article code's"):
        init_params(0, (2, 3, 1), "sigmoid", "binary_cross_entropy", article_mode=True)
    layers = [(np.ones((2, 3)), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    with pytest.raises(ValueError, match="article_mode's sigmoid"):
        MLP.from_layers(layers, "sigmoid", "binary_cross_entropy", article_mode=True)
    init_params(0, (2, 3, 1), "sigmoid", "mse", article_mode=True)  # the article's own


def test_the_estimators_refuse_an_article_mode_init():
    """init=MLP in article mode trained with the correct maths and dropped the mode."""
    from jbpnn import init_params
    from jbpnn.sklearn import BPNNRegressor

    p = init_params(0, (2, 3, 1), ("sigmoid", "identity"), "mse", article_mode=True)
    with pytest.raises(ValueError, match="init is an article_mode MLP"):
        BPNNRegressor(hidden_layer_sizes=(3,), activation="logistic", init=p).fit(
            np.ones((4, 2)), np.ones(4)
        )


def test_print_example_prints_the_article_figures_in_any_process():
    """print_example printed float32 digits to 10 decimals unless the caller had turned
    64-bit JAX on (only the command did)."""
    import io

    from jbpnn.cli.article import print_example
    from jbpnn.oracles import EXAMPLES

    out = io.StringIO()
    print_example(EXAMPLES[next(iter(EXAMPLES))], out)
    assert "H1      0.1000000000  0.5249791875" in out.getvalue()


def test_bpnn_names_what_is_wrong_with_a_row():
    """1e40 read "(NaN or inf)" after a NumPy overflow warning, None read as NaN, a scalar
    target "got shape ()", and seed=-1 was blamed on an argument named key."""
    import warnings

    net = BPNN(5, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a cast on the way
        with pytest.raises(ValueError, match=r"numbers that float32 holds \(up to 3.4e\+38\)"):
            net.update([1e40, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"a flat list of 5 numbers, got \[None, 0, 0, 0, 0\]$"):
        net.update([None, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"\(a single number is written as a list: \[1\]\)"):
        net.train([[[1, 0, 1, 0, 1], 1]])
    with pytest.raises(ValueError, match=r"^seed must lie in 0 \.\. 2\*\*32 - 1, got -1"):
        BPNN(5, 1, seed=-1)
    assert 0 < net.update([1, 0, 1, 0, 1])[0] < 1


def test_demo_prints_demo_1s_check(capsys):
    """jbpnn demo exited 1 without saying that demo 1 missed its thresholds."""
    from jbpnn.cli import main

    assert main(["demo", "--epochs", "200"]) == 1
    out = capsys.readouterr().out
    assert "check: [1,0,1,0,1] rows > 0.9 and [1,0,1,1,1] rows < 0.1: NO" in out

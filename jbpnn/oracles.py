"""The article's worked examples (ARTICLE.md section 2), as data.

``ARTICLE_9_2_1``: the article's 9-2-1 sigmoid network, one example, lr 0.01, T = 1.
``TEXTBOOK_3_2_1``: Han and Kamber's 3-2-1 back-propagation example, lr 0.9, T = 1.

Each is a dict with ``layers`` (``(w, b)`` pairs, ``w[j, k]`` = w_jk), ``x``,
``y``, ``lr`` and, for printing, the article's unit names. They are used by the
tests (as oracles), by ``jbpnn example`` and by the docs.
"""

from __future__ import annotations

__all__ = [
    "ARTICLE_9_2_1",
    "DEMO_2_ARTICLE",
    "DEMO_2_ARTICLE_ERR",
    "DEMO_A",
    "DEMO_B",
    "DEMO_TEST",
    "DEMO_TRAIN",
    "EXAMPLES",
    "TEXTBOOK_3_2_1",
]

ARTICLE_9_2_1 = {
    "name": "the article's 9-2-1 network",
    "layers": [
        (
            # w[i, j]: input i -> hidden unit j (columns H1, H2)
            [
                [0.1, 0.2],
                [0.2, 0.4],
                [0.3, 0.1],
                [-0.4, -0.2],
                [-0.1, -0.4],
                [-0.2, 0.3],
                [-0.3, 0.2],
                [0.4, 0.4],
                [0.5, -0.2],
            ],
            [-0.1, 0.2],
        ),
        ([[0.7], [0.5]], [0.1]),
    ],
    "x": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    "y": [1.0],
    "lr": 0.01,
    "input_names": [str(i) for i in range(1, 10)],
    "unit_names": [["H1", "H2"], ["C"]],
}

TEXTBOOK_3_2_1 = {
    "name": "the textbook's 3-2-1 network (Han and Kamber)",
    "layers": [
        ([[0.2, -0.3], [0.4, 0.1], [-0.5, 0.2]], [-0.4, 0.2]),
        ([[-0.3], [-0.2]], [0.1]),
    ],
    "x": [1.0, 0.0, 1.0],
    "y": [1.0],
    "lr": 0.9,
    "input_names": ["1", "2", "3"],
    "unit_names": [["4", "5"], ["6"]],
}

EXAMPLES = {"article": ARTICLE_9_2_1, "textbook": TEXTBOOK_3_2_1}

# ARTICLE.md section 3: the demos' six training patterns and ten test rows.
A, B = [1, 0, 1, 0, 1], [1, 0, 1, 1, 1]
DEMO_A = A
"""The demos' first input pattern, ``[1, 0, 1, 0, 1]``: target ``[1]`` ("cat" in demo 2)."""
DEMO_B = B
"""The demos' second input pattern, ``[1, 0, 1, 1, 1]``: target ``[0]`` ("dog" in demo 2)."""
DEMO_TRAIN = [[A, [1]], [A, [1]], [A, [1]], [B, [0]], [A, [1]], [B, [0]]]
DEMO_TEST = [A, A, B, A, B, A, A, B, A, [1, 1, 1, 0, 1]]
# Demo 2's printed result and error in the article.
DEMO_2_ARTICLE = ["cat", "cat", "dog", "cat", "dog", "cat", "cat", "dog", "cat", "cat"]
DEMO_2_ARTICLE_ERR = 0.10754377610345334

import numpy as np
import pandas as pd

from tf_profiles.data.splits import Split
from tf_profiles.evaluation import baselines
from tf_profiles.evaluation.protocol import eval_rows


def _rows():
    # Everyone walks 0 → 1 → 2 → 3; user "z" stopped at 1.
    events = [(u, str(i), t) for u in "abc" for t, i in enumerate(range(4))]
    events += [("z", "0", 0), ("z", "1", 1)]
    train = pd.DataFrame(events, columns=["user_id", "item_id", "timestamp"]).assign(rating=3.0)
    test = pd.DataFrame([("z", "2", 2)], columns=["user_id", "item_id", "timestamp"]).assign(
        rating=3.0)
    split = Split("loo", train, train.iloc[:0], test, ["0", "1", "2", "3"])
    return eval_rows(split, "test", max_history=3)


def test_markov_chain_follows_the_last_item():
    scores = baselines.markov_chain(_rows())
    assert scores[0].argmax() == 2


def test_ease_weights_have_zero_diagonal_and_rank_co_occurring_items():
    rows = _rows()
    scores = baselines.ease(rows, l2=1.0)
    assert scores.shape == (1, 4)
    assert scores[0, 2] > 0 and scores[0, 3] > 0


def test_most_popular_counts_known_events():
    assert list(baselines.most_popular(_rows())[0]) == [4, 4, 3, 3]


def test_content_only_uses_history_text():
    rows = _rows()
    text = np.eye(4, dtype=np.float32)
    scores = baselines.content_only(rows, {str(i): text[i] for i in range(4)})
    assert scores[0, 0] > scores[0, 2] and scores[0, 1] > scores[0, 3]


def test_tfrs_baselines_return_full_score_matrices():
    rows = _rows()
    assert baselines.id_two_tower(rows, dim=4, epochs=1).shape == (1, 4)
    assert baselines.gru_sequential(rows, dim=4, context=2, epochs=1).shape == (1, 4)

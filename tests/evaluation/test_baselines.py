import numpy as np
import pandas as pd
import pytest

from tf_profiles.data.splits import Split
from tf_profiles.evaluation import baselines
from tf_profiles.evaluation.baselines import trained
from tf_profiles.evaluation.protocol import eval_rows

COLUMNS = ["user_id", "item_id", "timestamp"]


def _split(train, test, candidates, valid=()):
    def frame(events):
        return pd.DataFrame(list(events), columns=COLUMNS).assign(rating=3.0)
    return Split("loo", frame(train), frame(valid), frame(test), list(candidates))


def _rows():
    # Everyone walks 0 → 1 → 2 → 3; user "z" stopped at 1.
    events = [(u, str(i), t) for u in "abc" for t, i in enumerate(range(4))]
    events += [("z", "0", 0), ("z", "1", 1)]
    return eval_rows(_split(events, [("z", "2", 2)], "0123"), "test", max_history=3)


def test_markov_chain_follows_the_last_item():
    assert baselines.markov_chain(_rows(), smoothing=0.0)[0].argmax() == 2


def test_markov_chain_does_not_depend_on_the_order_of_same_time_events():
    # Users walk 0 → {1, 2 in one second} → 3 → 4; "z" ends on the tie.
    events = [(u, "0", 0) for u in "abc"] + [(u, i, 1) for u in "abc" for i in "12"]
    events += [(u, i, t) for u in "abc" for i, t in (("3", 2), ("4", 3))]
    events += [("z", "0", 0), ("z", "1", 1), ("z", "2", 1)]
    test = [("z", "3", 2)]
    forward = eval_rows(_split(events, test, "01234"), "test", max_history=3)
    swapped = [(u, {"1": "2", "2": "1"}.get(i, i) if t == 1 else i, t) for u, i, t in events]
    backward = eval_rows(_split(swapped, test, "01234"), "test", max_history=3)
    scores = baselines.markov_chain(forward, smoothing=0.0)
    np.testing.assert_allclose(scores, baselines.markov_chain(backward, smoothing=0.0))
    # From the tie, 3 follows (1 and 2 follow each other half as often).
    assert scores[0].argmax() == 3 and scores[0, 1] == pytest.approx(scores[0, 2])


def test_markov_smoothing_moves_scores_towards_popularity():
    rows = _rows()
    sharp, smooth = (baselines.markov_chain(rows, smoothing=s)[0] for s in (0.0, 1e6))
    assert sharp[3] < 1e-6 < sharp[2]
    # Popularity [4, 4, 3, 3] outweighs the transition 1 → 2.
    assert smooth[:2].min() > smooth[2:].max()


def test_ease_weights_rank_co_occurring_items_and_l2_flattens_them():
    rows = _rows()
    scores = baselines.ease(rows, l2=1.0)
    assert scores.shape == (1, 4)
    assert scores[0, 2] > 0 and scores[0, 3] > 0
    assert np.ptp(baselines.ease(rows, l2=1e4)[0]) < np.ptp(scores[0])


def test_cooccurrence_knn_finds_the_items_near_the_latest_ones():
    # Everyone's sequence puts 5 right after 4 and 9 five events later.
    events = [(u, i, t) for u in "abcd" for t, i in enumerate("0123456789")]
    events += [("z", "0", 0), ("z", "4", 1)]
    rows = eval_rows(_split(events, [("z", "5", 2)], "0123456789"), "test", max_history=3)
    scores = baselines.cooccurrence_knn(rows, window=1, recent=1, normalise=False)[0]
    # Window 1 from item 4: its neighbours 3 and 5 only, each once per user.
    assert scores[3] == pytest.approx(4.0, rel=1e-6) and scores[5] == pytest.approx(4.0, rel=1e-6)
    assert scores[9] < 1e-6
    wide = baselines.cooccurrence_knn(rows, window=5, distance_decay=0.5, recent=1,
                                      normalise=False)[0]
    assert wide[9] == pytest.approx(4.0 * 0.5 ** 4, rel=1e-6) and wide[5] > wide[9]
    # With two votes, item 0 (the older one) weighs ``decay``.
    both = baselines.cooccurrence_knn(rows, window=1, recent=2, decay=0.5, normalise=False)[0]
    assert both[1] == pytest.approx(0.5 * 4.0, rel=1e-6)


def test_most_popular_counts_known_events():
    assert list(baselines.most_popular(_rows())[0]) == [4, 4, 3, 3]


def test_content_knn_uses_history_text_and_ratings():
    rows = _rows()
    text = {str(i): v for i, v in enumerate(np.eye(4, dtype=np.float32))}
    scores = baselines.content_knn(rows, text)
    assert scores[0, 0] > scores[0, 2] and scores[0, 1] > scores[0, 3]
    rows.known.loc[(rows.known["user_id"] == "z") & (rows.known["item_id"] == "1"), "rating"] = 5
    weighted = baselines.content_knn(rows, text, history="all", weighting="rating")
    assert weighted[0, 1] > weighted[0, 0]


def test_text_popularity_predicts_cold_items_from_text():
    # Two warm items: "1" popular, "0" rare; cold "2" reads like "1", cold "3" like "0".
    events = [(u, "1", 0) for u in "abcdef"] + [("a", "0", 1), ("z", "0", 0)]
    split = _split(events, [("z", "2", 1)], ["2", "3"])
    rows = eval_rows(split, "test", max_history=3)
    text = {"0": np.array([1.0, 0.0]), "1": np.array([0.0, 1.0]),
            "2": np.array([0.1, 1.0]), "3": np.array([1.0, 0.1])}
    scores = baselines.text_popularity(rows, text, l2=0.01)
    assert scores[0, 0] > scores[0, 1]
    # Content only: the user's history ("0") reads like "3".
    content = baselines.text_popularity(rows, text, l2=0.01, content_weight=1.0)
    assert content[0, 1] > content[0, 0]


def test_tfrs_baseline_keeps_the_best_validation_epoch():
    events = [(u, str(i), t) for u in "abcdefgh" for t, i in enumerate(range(6))]
    valid = [(u, "6", 6) for u in "abcd"]
    split = _split(events, [], list("0123456"), valid=valid)
    rows = eval_rows(split, "valid", max_history=3)
    fitted = trained.fit("id", rows.known, rows, epochs=3, patience=1, dim=4, batch_size=8)
    curve = dict(fitted.curve)
    assert fitted.epoch == max(curve, key=curve.get)
    assert fitted.scores(rows).shape == (4, 7)
    # Stopping: no more than `patience` epochs after the best.
    assert max(curve) - fitted.epoch <= 1


def test_tfrs_gru_without_validation_trains_every_epoch():
    rows = _rows()
    gru = trained.fit("gru", rows.known, None, epochs=2, dim=4, context=2, batch_size=8)
    assert gru.curve == [] and gru.epoch == 2 and gru.scores(rows).shape == (1, 4)


def test_unknown_trained_kind_is_an_error():
    with pytest.raises(ValueError, match="kind must be one of"):
        trained.fit("lstm", _rows().known)

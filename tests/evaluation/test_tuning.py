import numpy as np
import pandas as pd
import pytest

from tf_profiles.data.splits import Split
from tf_profiles.evaluation import tuning
from tf_profiles.evaluation.protocol import eval_rows

COLUMNS = ["user_id", "item_id", "timestamp"]


def _loo_rows():
    # Everyone walks 0 → 1 → ... → 5; validation: the step after 3 is 4.
    train = pd.DataFrame([(u, str(i), i) for u in "abcdef" for i in range(6)] +
                         [(u, str(i), i) for u in "xyz" for i in range(4)],
                         columns=COLUMNS).assign(rating=4.0)
    valid = pd.DataFrame([(u, "4", 4) for u in "xyz"], columns=COLUMNS).assign(rating=4.0)
    split = Split("loo", train, valid, valid.iloc[:0], [str(i) for i in range(6)])
    return eval_rows(split, "valid", max_history=3)


def test_grid_points_cover_every_combination():
    assert tuning.grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"},
                                                             {"a": 2, "b": "x"}]
    assert tuning.grid_points({}) == [{}]


def test_tune_records_every_trial_and_returns_the_argmax():
    rows = _loo_rows()
    grid = {"window": [1, 3], "recent": [1, 4], "decay": [0.5], "distance_decay": [1.0]}
    result = tuning.tune("cooc_knn", rows, grid=grid)
    assert [t.params for t in result.trials] == tuning.grid_points(grid)
    assert all(t.seconds >= 0 and "NDCG@10" in t.metrics for t in result.trials)
    best = max(result.trials, key=lambda t: t.metrics["NDCG@10"])
    assert result.params == best.params
    # The last item alone (window 1, recent 1) points at 4 exactly.
    assert result.trials[0].metrics["NDCG@10"] == pytest.approx(1.0)
    scores = tuning.tuned_scores("cooc_knn", result.params, rows)
    assert tuning.masked_metrics(scores, rows)["NDCG@10"] == best.metrics["NDCG@10"]


def test_tune_trained_baseline_records_its_epoch_and_curve():
    rows = _loo_rows()
    result = tuning.tune("tfrs_id", rows, grid={"learning_rate": [0.05], "epochs": [2],
                                                 "dim": [4], "batch_size": [16]})
    trial, = result.trials
    assert result.params["epochs"] == max(dict(trial.curve), key=dict(trial.curve).get)
    # For the test it is refit on the known events, seeded: the same scores twice.
    scores = tuning.tuned_scores("tfrs_id", result.params, rows, seed=3)
    assert scores.shape == (3, 6)
    np.testing.assert_allclose(tuning.tuned_scores("tfrs_id", result.params, rows, seed=3),
                               scores, rtol=1e-5)


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown baseline 'sasrec'"):
        tuning.tune("sasrec", _loo_rows())
    with pytest.raises(ValueError, match="needs item_text"):
        tuning.tune("content_knn", _loo_rows())


def test_cold_items_validation_holds_out_warm_items():
    train = pd.DataFrame([(u, str(i), i) for u in "abcd" for i in range(10)],
                         columns=COLUMNS).assign(rating=3.0)
    split = Split("cold-items", train, train.iloc[:0], train.iloc[:0], ["10", "11"])
    rows = tuning.cold_items_validation(split, max_history=3, fraction=0.2, seed=1)
    held = set(rows.candidates)
    assert len(held) == 2 and held <= {str(i) for i in range(10)}
    assert not set(rows.known["item_id"]) & held
    assert all(len(t) == 2 for t in rows.targets)
    whole = tuning.cold_items_validation(split, 3, fraction=0.2, seed=1, candidates="catalogue")
    assert len(whole.candidates) == 12
    assert {whole.candidates[c] for c in whole.targets[0]} == held
    text = {str(i): np.eye(12)[i] for i in range(12)}
    assert tuning.tune("content_knn", whole, item_text=text).params


@pytest.mark.parametrize("protocol", ["loo", "temporal", "cold-users", "cold-items"])
def test_every_protocol_has_validation_rows_disjoint_from_its_test(protocol):
    from tf_profiles.data.splits import make_split

    rng = np.random.default_rng(0)
    events = pd.DataFrame({
        "user_id": [f"u{u}" for u in range(30) for _ in range(8)],
        "item_id": [f"i{rng.integers(20)}" for _ in range(240)],
        "timestamp": np.arange(240) % 37, "rating": 4.0})
    split = make_split(protocol, events, seed=0, item_ids=[f"i{i}" for i in range(20)])
    rows = tuning.validation_rows(split, max_history=4)
    assert len(rows.users)
    test_events = set(map(tuple, split.test[["user_id", "item_id", "timestamp"]].to_numpy()))
    known = set(map(tuple, rows.known[["user_id", "item_id", "timestamp"]].to_numpy()))
    assert not known & test_events  # tuning never reads a test event
    assert set(tuning.baselines_for(protocol)) <= set(tuning.REGISTRY)

import numpy as np
import pandas as pd

from tf_profiles.features.examples import latest_histories, training_examples
from tf_profiles.data.splits import Split, cold_start_items, cold_start_users, leave_one_out


def _events():
    return pd.DataFrame({
        "user_id": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "item_id": ["1", "2", "3", "4", "3", "1", "2", "1"],
        "timestamp": [40, 10, 20, 20, 5, 6, 7, 1],
        "rating": [5.0, 4.0, np.nan, 1.0, 3.0, 3.0, 3.0, 2.0],
    })


def test_leave_one_out_by_time_with_ties_in_file_order():
    split = leave_one_out(_events())
    assert split.test.set_index("user_id")["item_id"].to_dict() == {"a": "1", "b": "2"}
    assert split.valid.set_index("user_id")["item_id"].to_dict() == {"a": "4", "b": "1"}
    assert split.train.groupby("user_id")["item_id"].agg(list).to_dict() == {
        "a": ["2", "3"], "b": ["3"], "c": ["1"]}


def test_training_histories_hold_only_earlier_events():
    examples = training_examples(_events(), max_history=2)
    rows = {(u, i): list(h) for u, i, h in zip(
        examples["user_id"], examples["item_id"], examples["history"])}
    assert rows[("a", "2")] == ["", ""]
    assert rows[("a", "3")] == ["", "2"]
    assert rows[("a", "4")] == ["2", "3"]
    assert rows[("a", "1")] == ["3", "4"]
    ratings = {(u, i): list(r) for u, i, r in zip(
        examples["user_id"], examples["item_id"], examples["history_rating"])}
    assert ratings[("a", "1")] == [0.0, 1.0]  # unknown rating → 0
    probability = dict(zip(examples["item_id"], examples["item_probability"]))
    assert probability["1"] == 3 / 8


def test_latest_histories_and_unknown_users():
    history = latest_histories(_events(), ["b", "zz"], max_history=4)
    assert list(history["history"][0]) == ["", "3", "1", "2"]
    assert list(history["history"][1]) == ["", "", "", ""]


def test_cold_items_never_train_on_held_out_items():
    events = pd.DataFrame({"user_id": [str(u % 7) for u in range(200)],
                           "item_id": [str(i % 40) for i in range(200)],
                           "timestamp": range(200), "rating": 3.0})
    split = cold_start_items(events, fraction=0.25, seed=1)
    assert len(split.candidates) == 10
    assert not set(split.train["item_id"]) & set(split.candidates)
    assert set(split.test["item_id"]) <= set(split.candidates)


def test_cold_users_keep_their_first_events_and_test_the_next():
    events = pd.DataFrame({"user_id": [str(u) for u in range(10) for _ in range(6)],
                           "item_id": [str(i) for _ in range(10) for i in range(6)],
                           "timestamp": list(range(6)) * 10, "rating": 3.0})
    split = cold_start_users(events, fraction=0.2, max_events=3, seed=0)
    cold = set(split.test["user_id"])
    assert len(cold) == 2
    assert (split.train[split.train["user_id"].isin(cold)].groupby("user_id").size() == 3).all()
    assert set(split.test["item_id"]) == {"3"}


def test_split_round_trips(tmp_path):
    split = leave_one_out(_events())
    split.save(tmp_path)
    loaded = Split.load(tmp_path)
    assert loaded.protocol == "loo" and loaded.candidates == split.candidates
    pd.testing.assert_frame_equal(loaded.test, split.test)

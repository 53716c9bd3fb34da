import numpy as np
import pandas as pd
import pytest

from tf_profiles.data.splits import (PROTOCOLS, Split, cold_start_items, cold_start_users,
                                     leave_one_out, make_split, order_events, temporal)
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.features.examples import latest_histories, training_examples


def _events():
    return pd.DataFrame({
        "user_id": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "item_id": ["1", "2", "3", "4", "3", "1", "2", "1"],
        "timestamp": [40, 10, 20, 20, 5, 6, 7, 1],
        "rating": [5.0, 4.0, np.nan, 1.0, 3.0, 3.0, 3.0, 2.0],
    })


def _tied_events():
    """Two users, each with one early event and then eight in the same second."""
    return pd.DataFrame({
        "user_id": [u for u in ("a", "b") for _ in range(9)],
        "item_id": [str(i) for _ in range(2) for i in range(9)],
        "timestamp": [0] + [50] * 8 + [0] + [60] * 8,
        "rating": 3.0,
    })


def _order(events, seed):
    return order_events(events, seed).groupby("user_id")["item_id"].agg(list).to_dict()


def test_leave_one_out_by_time():
    split = leave_one_out(_events())
    assert split.test.set_index("user_id")["item_id"].to_dict() == {"a": "1", "b": "2"}
    # "3" and "4" share a time: either may be the validation event.
    valid = split.valid.set_index("user_id")["item_id"].to_dict()
    assert valid["b"] == "1" and valid["a"] in {"3", "4"}
    train = split.train.groupby("user_id")["item_id"].agg(list).to_dict()
    assert train == {"a": ["2", ({"3", "4"} - {valid["a"]}).pop()], "b": ["3"], "c": ["1"]}


def test_ties_are_seeded_not_file_order():
    events = _tied_events()
    assert _order(events, 0) == _order(events, 0)
    assert _order(events, 0) != _order(events, 1)
    shuffled = events.sample(frac=1.0, random_state=3)
    for seed in (0, 1, 2):
        assert _order(shuffled, seed) == _order(events, seed)
        # Time still comes first: the early event leads every order.
        assert all(items[0] == "0" for items in _order(events, seed).values())


def test_a_subset_keeps_the_tie_order_of_the_whole():
    # Tie keys belong to events, so the train frame of a split (or old plus
    # new events when fine-tuning) orders its ties as the whole log did.
    events = _tied_events()
    subset = events[events["item_id"] != "5"]
    whole = _order(events, 4)
    assert _order(subset, 4) == {u: [i for i in items if i != "5"] for u, items in whole.items()}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_model_inputs_and_held_out_item_follow_the_split_tie_order(seed, tmp_path):
    # The contract every reader relies on: the saved frames are in split
    # order and the stable re-sorts downstream keep it.
    events = _tied_events()
    order = _order(events, seed)
    make_split("loo", events, seed=seed).save(tmp_path)
    split = Split.load(tmp_path)
    assert split.seed == seed
    assert split.test.set_index("user_id")["item_id"].to_dict() == {
        u: items[-1] for u, items in order.items()}
    assert split.valid.set_index("user_id")["item_id"].to_dict() == {
        u: items[-2] for u, items in order.items()}

    examples = training_examples(split.train, max_history=8)
    last_train = {u: (h, i) for u, h, i in zip(
        examples["user_id"], examples["history"], examples["item_id"])}  # last row wins
    for user, items in order.items():
        history, item = last_train[user]
        assert [*[h for h in history if h], item] == items[:-2]

    rows = eval_rows(split, "test", max_history=8)
    for user, history in zip(rows.users, rows.histories["history"]):
        assert list(history) == order[user][:-1]
    assert [split.candidates[t[0]] for t in rows.targets] == [order[u][-1] for u in rows.users]


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


def _log(users=10, events_per_user=20):
    return pd.DataFrame({
        "user_id": [str(u) for u in range(users) for _ in range(events_per_user)],
        "item_id": [str((u + e) % 30) for u in range(users) for e in range(events_per_user)],
        # Coarse times: many events of different users share each value.
        "timestamp": [e // 2 * 10 for _ in range(users) for e in range(events_per_user)],
        "rating": 3.0})


def test_temporal_periods_are_time_intervals():
    events = _log()
    split = temporal(events, test_fraction=0.1, valid_fraction=0.2, seed=0)
    assert split.protocol == "temporal" and split.seed == 0
    assert split.train["timestamp"].max() < split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() < split.test["timestamp"].min()
    # Every event is kept: the periods hold all of theirs (export reads them).
    assert len(split.train) + len(split.valid) + len(split.test) == len(events)
    assert len(split.test) == pytest.approx(0.1 * len(events), abs=10)
    assert len(split.valid) == pytest.approx(0.2 * len(events), abs=10)
    assert split.candidates == sorted(events["item_id"].unique())


def test_temporal_ties_at_a_cut_off_stay_in_one_period():
    events = _log()
    events.loc[events["timestamp"] >= 80, "timestamp"] = 80  # last 20 % in one second
    split = temporal(events, test_fraction=0.05, valid_fraction=0.05)
    assert (split.test["timestamp"] == 80).all() and len(split.test) == 40
    assert (split.valid["timestamp"] < 80).all()


@pytest.mark.parametrize("test_fraction, valid_fraction, bad", [
    (0.0, 0.1, "test_fraction"), (1.0, 0.0, "test_fraction"),
    (0.5, 0.5, "valid_fraction"), (0.1, -0.1, "valid_fraction")])
def test_temporal_fractions_are_checked(test_fraction, valid_fraction, bad):
    with pytest.raises(ValueError, match=bad):
        temporal(_log(), test_fraction=test_fraction, valid_fraction=valid_fraction)


def test_rolling_temporal_cut_offs_turn_the_clock_back_one_period_each():
    events = _log()
    splits = [make_split("temporal", events, period=0.1, periods_back=k) for k in range(3)]
    # Each cut-off's test period is the previous one's validation period...
    for later, earlier in zip(splits, splits[1:]):
        assert earlier.test["timestamp"].min() == later.valid["timestamp"].min()
        # ... and nothing after the cut-off is kept.
        assert earlier.test["timestamp"].max() < later.test["timestamp"].min()
    for split in splits:
        assert split.train["timestamp"].max() < split.valid["timestamp"].min()
        assert split.valid["timestamp"].max() < split.test["timestamp"].min()
        assert len(split.test) == pytest.approx(0.1 * len(events), abs=12)
    with pytest.raises(ValueError, match="periods_back"):
        temporal(events, 0.3, 0.3, periods_back=2)


def test_make_split_knows_every_protocol_and_names_a_bad_one():
    events = _log()
    for protocol in PROTOCOLS:
        split = make_split(protocol, events, seed=1)
        assert split.protocol == protocol and split.seed == 1 and len(split.test)
    with pytest.raises(ValueError, match="unknown protocol 'future'.*temporal"):
        make_split("future", events)


def test_without_holdout_every_event_trains_in_tie_order():
    events = _tied_events()
    split = make_split("loo", events, seed=5, holdout=False)
    assert split.valid.empty and split.test.empty
    assert split.train.groupby("user_id")["item_id"].agg(list).to_dict() == _order(events, 5)


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
    split = leave_one_out(_events(), seed=7)
    split.save(tmp_path)
    loaded = Split.load(tmp_path)
    assert loaded.protocol == "loo" and loaded.seed == 7
    assert loaded.candidates == split.candidates
    pd.testing.assert_frame_equal(loaded.test, split.test)


def test_a_split_saved_before_split_json_still_loads(tmp_path):
    leave_one_out(_events()).save(tmp_path)
    (tmp_path / "split.json").unlink()
    (tmp_path / "protocol.txt").write_text("loo\n")
    loaded = Split.load(tmp_path)
    assert loaded.protocol == "loo" and loaded.seed is None

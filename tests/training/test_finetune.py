import json

import numpy as np
import pandas as pd
import pytest

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.cli import _selected_epochs
from tf_profiles.data.splits import Split
from tf_profiles.training.finetune import finetune, finetune_data, guard_slice, new_events


@pytest.fixture()
def events(trained_model):
    """The training data plus, for each of four users, two later events on
    items new to them (an item a user knows is masked, so the guard could not
    rank it)."""
    known = pd.read_csv(trained_model.parent / "data" / "interactions.csv",
                        dtype={"user_id": str, "item_id": str})
    users = [f"u{u}" for u in (1, 2, 3, 4)]
    seen = known.groupby("user_id")["item_id"].agg(set)
    unseen = {u: sorted({f"i{i}" for i in range(15)} - seen[u])[:2] for u in users}
    later = pd.DataFrame({"user_id": [u for u in users for _ in range(2)],
                          "item_id": [i for u in users for i in unseen[u]],
                          "timestamp": 2_000_000, "rating": 5.0})
    later["timestamp"] += np.arange(len(later))
    return pd.concat([known, later], ignore_index=True)


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(rating=3.0)


def _split():
    train = _frame([("a", "1", 1), ("a", "2", 2), ("b", "1", 1), ("b", "2", 2)])
    return Split("loo", train, _frame([("a", "3", 3), ("b", "3", 3)]),
                 _frame([("a", "4", 4), ("b", "4", 4)]), [str(i) for i in range(1, 10)], seed=0)


def test_guard_slice_is_the_latest_new_events():
    fresh = _frame([(u, str(i), 10 * i) for u in "abcd" for i in range(5, 10)])
    earlier, latest = guard_slice(fresh, 0.2, seed=0)
    assert len(latest) == 4 and (latest["timestamp"] == 90).all()
    assert len(earlier) == 16 and earlier["timestamp"].max() == 80


def test_guard_slice_cuts_same_second_events_in_the_seeded_order():
    fresh = _frame([("a", str(i), 50) for i in range(10)])
    orders = {seed: guard_slice(fresh, 0.3, seed)[1]["item_id"].tolist() for seed in range(4)}
    assert all(len(items) == 3 for items in orders.values())
    assert len({tuple(items) for items in orders.values()}) > 1
    assert guard_slice(fresh, 0.3, 1)[1]["item_id"].tolist() == orders[1]


@pytest.mark.parametrize("fraction, count, message", [
    (0.0, 5, "guard_fraction must be in"), (1.0, 5, "guard_fraction must be in"),
    (0.1, 1, "1 new event.*too few")])
def test_guard_slice_needs_a_fraction_and_events_on_both_sides(fraction, count, message):
    fresh = _frame([("a", str(i), i) for i in range(count)])
    with pytest.raises(ValueError, match=message):
        guard_slice(fresh, fraction, seed=0)


def test_examples_see_every_earlier_event_and_the_guard_is_never_trained_on():
    fresh = _frame([("a", "5", 10), ("b", "6", 11), ("a", "7", 12), ("b", "8", 13),
                    ("c", "9", 14)])
    data = finetune_data(_split(), fresh, max_history=6, seed=0, guard_fraction=0.4)
    # Guard: the latest two new events ("b" 8, "c" 9); "c" has no earlier event.
    assert sorted(data.guard["item_id"]) == ["8", "9"]
    assert data.rows.users.tolist() == ["b"]
    assert [data.rows.candidates[c] for c in data.rows.targets[0]] == ["8"]
    # Known for the guard: the previous split's events (test included) and
    # the new events before the slice.
    assert list(data.rows.histories["history"][0]) == ["", "1", "2", "3", "4", "6"]
    # Targets are the new events before the slice only; histories hold the
    # previous valid and test events.
    histories = {(u, i): [h for h in history if h] for u, i, history in zip(
        data.examples["user_id"], data.examples["item_id"], data.examples["history"])}
    assert histories == {("a", "5"): ["1", "2", "3", "4"], ("b", "6"): ["1", "2", "3", "4"],
                         ("a", "7"): ["1", "2", "3", "4", "5"]}


def test_a_guard_of_unknown_users_only_is_an_error():
    fresh = _frame([("a", "5", 10), ("new", "6", 11)])
    with pytest.raises(ValueError, match="guard slice .* no event of a user with earlier"):
        finetune_data(_split(), fresh, max_history=4, seed=0, guard_fraction=0.5)


def test_only_events_outside_the_split_are_new(trained_model, events):
    fresh = new_events(ModelDir(trained_model), events)
    assert len(fresh) == 8 and (fresh["timestamp"] >= 2_000_000).all()


def test_warm_start_starts_from_the_previous_weights(trained_model, events, tmp_path):
    # With a zero learning rate the fine-tuned model is the previous one.
    report = finetune(trained_model, events, tmp_path / "tuned", learning_rate=0.0,
                      log=lambda _: None)
    # 8 new events: the latest one (u4's second) is the guard slice.
    assert report.accepted and report.examples == 7
    assert report.guard_events == 1 and report.guard_users == 1
    assert report.ndcg_after == pytest.approx(report.ndcg_before)
    before, after = (ModelDir(p).load_model() for p in (trained_model, tmp_path / "tuned"))
    for tower in ("user_tower", "item_tower"):
        for a, b in zip(getattr(before, tower).get_weights(), getattr(after, tower).get_weights()):
            np.testing.assert_array_equal(a, b)
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["new_events"] == 8 and metrics["accepted"] is True
    assert metrics["guard_events"] == 1 and metrics["guard_since"] == 2_000_007
    ModelDir(tmp_path / "tuned").check()
    # The same writer as training: --epochs-from reads a fine-tuned folder too.
    assert _selected_epochs(tmp_path / "tuned") == metrics["epochs"]
    assert sorted(p.name for p in (tmp_path / "tuned").iterdir() if "partial" in p.name) == []


def test_guard_refuses_a_model_that_loses_guard_ndcg(trained_model, events, tmp_path):
    # A negative margin demands a gain no fine-tuning can promise.
    report = finetune(trained_model, events, tmp_path / "tuned", epochs=1, max_ndcg_drop=-1.0,
                      log=lambda _: None)
    assert not report.accepted
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["accepted"] is False


def test_nothing_new_or_an_existing_folder_is_an_error(trained_model, events, tmp_path):
    known = events[events["timestamp"] < 2_000_000]
    with pytest.raises(ValueError, match="no events newer"):
        finetune(trained_model, known, tmp_path / "tuned", log=lambda _: None)
    (tmp_path / "exists").mkdir()
    with pytest.raises(ValueError, match="exists already"):
        finetune(trained_model, events, tmp_path / "exists", log=lambda _: None)


def test_causal_examples_target_only_the_new_events_before_the_guard():
    fresh = _frame([("a", "5", 10), ("b", "6", 11), ("a", "7", 12), ("b", "8", 13),
                    ("c", "9", 14)])
    data = finetune_data(_split(), fresh, max_history=6, seed=0, guard_fraction=0.4,
                         recipe="causal")
    # Each user's sequence in one window; only new, pre-guard events are targets.
    targets = {u: [t for t in row if t] for u, row in zip(data.examples["user_id"],
                                                          data.examples["next_items"])}
    assert targets == {"a": ["5", "7"], "b": ["6"]}
    a = list(data.examples["user_id"]).index("a")
    assert [h for h in data.examples["history"][a] if h] == ["1", "2", "3", "4", "5"]

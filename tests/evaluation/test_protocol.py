import pandas as pd
import pytest

from tf_profiles.data.splits import Split, leave_one_out, make_split, temporal
from tf_profiles.evaluation.protocol import eval_rows


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(rating=3.0)


def _temporal_split():
    # Periods by time: train < 100 ≤ valid < 200 ≤ test.
    train = _frame([("a", "1", 10), ("a", "2", 20), ("b", "1", 30)])
    valid = _frame([("a", "3", 100), ("b", "2", 110), ("new", "1", 120)])
    test = _frame([("a", "4", 200), ("a", "5", 210), ("a", "1", 220), ("a", "4", 230),
                   ("b", "9", 200), ("c", "5", 250)])
    return Split("temporal", train, valid, test, ["1", "2", "3", "4", "5", "9"], seed=0)


def _targets(rows):
    return {u: sorted(rows.candidates[c] for c in t) for u, t in zip(rows.users, rows.targets)}


def test_temporal_test_rows_are_users_with_history_and_their_new_items():
    rows = eval_rows(_temporal_split(), "test", max_history=3)
    # "c" has no event before the test period; "a"'s "1" is known and "4"
    # comes twice; "new" only appeared in the valid period but is not tested.
    assert _targets(rows) == {"a": ["4", "5"], "b": ["9"]}
    assert len(rows.known) == 6  # train + valid
    histories = dict(zip(rows.users, rows.histories["history"].tolist()))
    assert histories == {"a": ["1", "2", "3"], "b": ["", "1", "2"]}
    seen = {u: sorted(rows.candidates[c] for c in s) for u, s in zip(rows.users, rows.seen)}
    assert seen == {"a": ["1", "2", "3"], "b": ["1", "2"]}


def test_temporal_validation_knows_train_only():
    rows = eval_rows(_temporal_split(), "valid", max_history=3)
    assert _targets(rows) == {"a": ["3"], "b": ["2"]}
    assert len(rows.known) == 3


def test_temporal_split_end_to_end_has_rows_for_both_stages():
    events = _frame([(str(u), str((u + e) % 12), 10 * e) for u in range(8) for e in range(10)])
    split = temporal(events, test_fraction=0.2, valid_fraction=0.2, seed=3)
    for stage in ("valid", "test"):
        rows = eval_rows(split, stage, max_history=4)
        assert len(rows.users) == 8 and all(len(t) == 2 for t in rows.targets)


def test_leave_one_out_rows_are_one_target_per_user_with_seen_masked():
    # Unchanged by the temporal rules: a re-consumed test item stays a target
    # (and is masked as seen), one row per user with a test event.
    events = _frame([("a", "1", 1), ("a", "2", 2), ("a", "3", 3), ("a", "1", 4),
                     ("b", "2", 1), ("b", "3", 2), ("b", "4", 3)])
    rows = eval_rows(leave_one_out(events), "test", max_history=2)
    assert _targets(rows) == {"a": ["1"], "b": ["4"]}
    seen = {u: sorted(rows.candidates[c] for c in s) for u, s in zip(rows.users, rows.seen)}
    assert seen == {"a": ["1", "2", "3"], "b": ["2", "3"]}


def test_an_unknown_stage_is_named():
    with pytest.raises(ValueError, match="'train'"):
        eval_rows(_temporal_split(), "train", max_history=3)


def test_a_split_without_held_out_events_is_a_clear_error():
    events = _frame([("a", "1", 1), ("a", "2", 2), ("a", "3", 3)])
    split = make_split("loo", events, holdout=False)
    with pytest.raises(ValueError, match="no test events to rank"):
        eval_rows(split, "test", max_history=2)

import json

import numpy as np
import pandas as pd
import pytest

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.training.finetune import finetune, new_events


@pytest.fixture()
def events(trained_model):
    """The training data plus two later events for each of four users."""
    known = pd.read_csv(trained_model.parent / "data" / "interactions.csv",
                        dtype={"user_id": str, "item_id": str})
    later = pd.DataFrame({"user_id": [f"u{u}" for u in (1, 2, 3, 4) for _ in range(2)],
                          "item_id": ["i7", "i8"] * 4, "timestamp": 2_000_000,
                          "rating": 5.0})
    later["timestamp"] += np.arange(len(later))
    return pd.concat([known, later], ignore_index=True)


def test_only_events_outside_the_split_are_new(trained_model, events):
    fresh = new_events(ModelDir(trained_model), events)
    assert len(fresh) == 8 and (fresh["timestamp"] >= 2_000_000).all()


def test_warm_start_starts_from_the_previous_weights(trained_model, events, tmp_path):
    # With a zero learning rate the fine-tuned model is the previous one.
    report = finetune(trained_model, events, tmp_path / "tuned", learning_rate=0.0,
                      log=lambda _: None)
    assert report.accepted and report.examples == 8
    assert report.ndcg_after == pytest.approx(report.ndcg_before)
    before, after = (ModelDir(p).load_model() for p in (trained_model, tmp_path / "tuned"))
    for tower in ("user_tower", "item_tower"):
        for a, b in zip(getattr(before, tower).get_weights(), getattr(after, tower).get_weights()):
            np.testing.assert_array_equal(a, b)
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["new_events"] == 8 and metrics["accepted"] is True
    ModelDir(tmp_path / "tuned").check()


def test_guard_refuses_a_model_that_loses_held_out_ndcg(trained_model, events, tmp_path):
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

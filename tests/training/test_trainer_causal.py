"""The causal recipe (every position against the catalogue) and the refit on
training + validation events."""
import dataclasses

import numpy as np
import pytest

from tf_profiles.bundle.config import TrainConfig
from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.data.loaders import load_dataset
from tf_profiles.evaluation.evaluate import evaluate
from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import model_scores
from tf_profiles.models.ranking import exclude
from tf_profiles.training.trainer import train

from tests.conftest import read_json


def _config(tiny_bert, **overrides):
    values = dict(recipe="causal", epochs=2, batch_size=4, embedding_dim=8, max_history=4,
                  num_layers=1, encoder=str(tiny_bert), text_max_length=16, mask_seen=True,
                  item_bias=True, user_id_dropout=0.2, learning_rate_decay=0.9)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture()
def dataset(tiny_data):
    return load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])


def test_causal_recipe_trains_one_example_per_sequence_window(tiny_bert, dataset, cache_dir,
                                                             tmp_path):
    metrics = train(dataset, _config(tiny_bert), tmp_path / "model", cache_dir)
    folder = ModelDir(tmp_path / "model")
    split = folder.split()
    # 12 users × 6 training events (8 less valid and test): 5 targets each, in
    # windows of at most 4 → two windows per user.
    assert metrics["targets"] == len(split.train) - split.train["user_id"].nunique() == 60
    assert metrics["examples"] == 24
    assert "val_ndcg@10" in metrics["history"]
    model = folder.load_model()
    assert model.user_tower.causal and model.mask_seen and model.item_tower.use_bias
    rows = eval_rows(split, "test", 4)
    scores = model_scores(model, rows)
    assert scores.shape == (len(rows.users), len(rows.candidates)) and np.isfinite(scores).all()


def test_refit_trains_on_validation_events_and_keeps_the_split(tiny_bert, dataset, cache_dir,
                                                              tmp_path):
    held = train(dataset, _config(tiny_bert), tmp_path / "held", cache_dir)
    refit = train(dataset, _config(tiny_bert, refit=True), tmp_path / "refit", cache_dir)
    # Each user's validation event is one more target; nothing validates.
    assert refit["targets"] == held["targets"] + 12
    assert "val_ndcg@10" not in refit["history"] and refit["selected_epochs"] == 2
    saved, original = ModelDir(tmp_path / "refit").split(), ModelDir(tmp_path / "held").split()
    assert len(saved.valid) == len(original.valid) == 12
    evaluate(tmp_path / "refit", with_baselines=False, log=lambda _: None)
    assert "training + validation" in read_json(tmp_path / "refit" / "evaluation.json")[
        "model_fit_on"]
    evaluate(tmp_path / "held", with_baselines=False, log=lambda _: None)
    assert read_json(tmp_path / "held" / "evaluation.json")["model_fit_on"].startswith(
        "training events only")


@pytest.mark.parametrize("overrides, message", [
    ({"negatives": "in-batch"}, "negatives must be 'catalogue'"),
    ({"query_fraction": 0.2}, "query_fraction needs recipe 'per-event'"),
    ({"recipe": "sasrec"}, "recipe 'sasrec'"),
    ({"learning_rate_decay": 0.0}, "learning_rate_decay"),
    ({"user_id_dropout": 1.0}, "user_id_dropout"),
    ({"refit": True, "holdout": False}, "refit"),
])
def test_bad_recipe_settings_are_refused(tiny_bert, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(tiny_bert, **overrides)


@pytest.mark.slow
def test_the_unknown_user_is_trained_and_beats_random_on_held_out_users(ml100k_slice, tmp_path):
    # Real MiniLM, 150 real users: every held-out user scored as a user the
    # model does not know, with no history: what row 0 of the ID embedding
    # learned (through user-ID dropout) must rank their test event far above
    # chance.
    dataset = load_dataset(ml100k_slice["interactions"], ml100k_slice["items"],
                           ml100k_slice["users"])
    train(dataset, TrainConfig(recipe="causal", epochs=4, batch_size=32, max_history=50,
                               user_id_dropout=0.5, mask_seen=True, learning_rate=2e-3),
          tmp_path / "model")
    folder = ModelDir(tmp_path / "model")
    model, split = folder.load_model(), folder.split()
    rows = eval_rows(split, "test", 50)
    strangers = np.array([f"stranger-{i}" for i in range(len(rows.users))], dtype=object)
    unknown = dataclasses.replace(rows, histories={
        "user_id": strangers, "history": np.full((len(strangers), 1), "", dtype=object),
        "history_rating": np.zeros((len(strangers), 1), np.float32)})
    scores = model_scores(model, unknown)
    # One vector for every unknown user: the trained row 0 (no text, no history).
    np.testing.assert_allclose(scores, np.repeat(scores[:1], len(scores), axis=0), atol=1e-5)
    ndcg = ranking_metrics(exclude(scores, rows.seen), rows.targets)["NDCG@10"]
    chance = np.mean([ranking_metrics(exclude(np.random.default_rng(seed).random(scores.shape),
                                              rows.seen), rows.targets)["NDCG@10"]
                      for seed in range(5)])
    assert ndcg > 3 * chance

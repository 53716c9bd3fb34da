import json

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.data.loaders import load_dataset
from tf_profiles.evaluation.evaluate import evaluate
from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.training.trainer import train

from tests.conftest import read_json
from tests.harness import assert_same_outputs


def _tiny_config(tiny_bert, **overrides):
    values = dict(epochs=2, batch_size=16, embedding_dim=8, max_history=4, num_layers=1,
                  encoder=str(tiny_bert), text_max_length=16)
    values.update(overrides)
    return TrainConfig(**values)


def test_train_writes_a_complete_model_folder(tiny_bert, tiny_data, cache_dir, tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    metrics = train(dataset, _tiny_config(tiny_bert), tmp_path / "model", cache_dir)
    folder = ModelDir(tmp_path / "model")
    folder.check()
    assert folder.curves_file.stat().st_size > 0
    assert list(folder.checkpoint_dir.glob("epoch-002*"))
    assert any(folder.log_dir.rglob("events.out.tfevents*"))
    assert len(metrics["history"]["loss"]) == 2 and "val_ndcg@10" in metrics["history"]
    assert read_json(folder.config_file)["encoder"] == str(tiny_bert)

    catalogue = folder.catalogue()
    assert catalogue.users.set_index("user_id").loc["u0", "text"].endswith("eating food")
    model = folder.load_model()
    split = folder.split()
    assert model.preprocessor.item_vocabulary == sorted(split.train["item_id"].unique())
    stored = model.preprocessor.item_text.vectors.numpy()[1:]
    assert model.preprocessor.item_text.ids == catalogue.items["item_id"].tolist()
    np.testing.assert_allclose(stored, catalogue.item_text_embeddings, atol=1e-6)
    # The selected epoch's checkpoint holds the kept towers (not the frozen encoder).
    towers = {name: type(tower).from_config(tower.get_config())
              for name, tower in (("user_tower", model.user_tower),
                                  ("item_tower", model.item_tower))}
    for tower in towers.values():
        tower.build_from_config({})
    selected = folder.checkpoint_dir / f"epoch-{metrics['selected_epochs']:03d}"
    tf.train.Checkpoint(**towers).read(str(selected)).assert_consumed()
    assert_same_outputs(towers["item_tower"].get_weights(), model.item_tower.get_weights())
    assert_same_outputs(towers["user_tower"].get_weights(), model.user_tower.get_weights())


def test_evaluate_writes_the_table_with_every_baseline(tiny_bert, tiny_data, cache_dir,
                                                       tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    train(dataset, _tiny_config(tiny_bert, epochs=1), tmp_path / "model", cache_dir)
    table = evaluate(tmp_path / "model", log=lambda _: None)
    assert list(table) == ["tf_profiles (this model)", "MostPop", "EASE", "Markov chain",
                           "Co-occurrence KNN", "TFRS ID two-tower", "TFRS GRU sequential"]
    report = read_json(tmp_path / "model" / "evaluation.json")
    assert report["protocol"] == "loo" and report["test_rows"] == 12
    # Each baseline's grid was searched on validation and every trial kept.
    assert len(report["baseline_tuning"]["EASE"]["trials"]) == 8
    assert "epochs" in report["baseline_tuning"]["TFRS ID two-tower"]["params"]
    assert "| Markov chain |" in (tmp_path / "model" / "evaluation.md").read_text()
    assert (tmp_path / "model" / "evaluation.png").stat().st_size > 0


def test_cold_item_protocol_ranks_held_out_items_by_text(tiny_bert, tiny_data, cache_dir,
                                                         tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"])
    train(dataset, _tiny_config(tiny_bert, epochs=1, protocol="cold-items"),
          tmp_path / "model", cache_dir)
    table = evaluate(tmp_path / "model", log=lambda _: None)
    assert set(table) == {"tf_profiles (this model)", "Content KNN (text)", "Text → popularity",
                          "Random"}
    split = ModelDir(tmp_path / "model").split()
    assert not set(split.train["item_id"]) & set(split.candidates)


def test_finetune_mode_trains_the_top_encoder_layers(tiny_bert, tiny_data, cache_dir,
                                                     tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    config = _tiny_config(tiny_bert, epochs=1, encoder_mode="finetune", trainable_layers=1)
    train(dataset, config, tmp_path / "model", cache_dir)
    model = ModelDir(tmp_path / "model").load_model()
    from tf_profiles.text.encoder import TextEncoder

    pretrained = TextEncoder.from_checkpoint(tiny_bert)
    texts = tf.constant(["star wars", "drama"])
    encoder = model.preprocessor.encoder
    assert not np.allclose(encoder(texts).numpy(), pretrained(texts).numpy())
    assert encoder.trainable_layers == 1


def test_training_is_reproducible_with_a_seed(tiny_bert, tiny_data, cache_dir, tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"])
    first = train(dataset, _tiny_config(tiny_bert, epochs=1), tmp_path / "a", cache_dir)
    second = train(dataset, _tiny_config(tiny_bert, epochs=1), tmp_path / "b", cache_dir)
    assert first["history"]["loss"] == pytest.approx(second["history"]["loss"], rel=1e-5)
    a, b = ModelDir(tmp_path / "a").load_model(), ModelDir(tmp_path / "b").load_model()
    ids = tf.constant(["i1", "i2"])
    assert_same_outputs(a.item_embedding({"item_id": ids}), b.item_embedding({"item_id": ids}),
                        atol=1e-5)


def test_config_file_unknown_keys_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 3, "epoch": 4}))
    with pytest.raises(ValueError, match="unknown config key.*epoch"):
        TrainConfig.from_file(path)
    path.write_text(json.dumps({"epochs": 3}))
    assert TrainConfig.from_file(path, seed=5).seed == 5


def test_bad_config_values():
    with pytest.raises(ValueError, match="encoder_mode"):
        TrainConfig(encoder_mode="thawed")
    with pytest.raises(ValueError, match="not divisible"):
        TrainConfig(embedding_dim=10, num_heads=3)


def test_early_stopping_keeps_the_best_validation_epoch(tiny_bert, tiny_data, cache_dir,
                                                        tmp_path):
    from tf_profiles.evaluation.protocol import eval_rows
    from tf_profiles.evaluation.scoring import held_out_metrics

    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    config = _tiny_config(tiny_bert, epochs=6, patience=1, learning_rate=0.05)
    metrics = train(dataset, config, tmp_path / "model", cache_dir)
    validation = metrics["history"]["val_ndcg@10"]
    best = int(np.argmax(validation))
    assert metrics["selected_epochs"] == best + 1
    # Stopped once `patience` epochs brought nothing better (or ran out).
    assert len(validation) == min(best + 1 + config.patience, config.epochs)
    folder = ModelDir(tmp_path / "model")
    rows = eval_rows(folder.split(), "valid", config.max_history)
    restored = held_out_metrics(folder.load_model(), rows)["NDCG@10"]
    assert restored == pytest.approx(validation[best], abs=1e-6)


def test_holdout_none_trains_on_every_event(tiny_bert, tiny_data, cache_dir, tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    metrics = train(dataset, _tiny_config(tiny_bert, holdout=False), tmp_path / "model",
                    cache_dir)
    split = ModelDir(tmp_path / "model").split()
    assert len(split.train) == len(dataset.interactions) and split.test.empty
    assert metrics["selected_epochs"] == 2 and "val_ndcg@10" not in metrics["history"]


def test_unknown_negatives_are_refused():
    with pytest.raises(ValueError, match="negatives 'sampled'"):
        TrainConfig(negatives="sampled")

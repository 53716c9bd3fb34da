import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import ItemTower, Preprocessor, TwoTowerModel, UserTower
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.data.loaders import load_dataset
from tf_profiles.features import spec
from tf_profiles.features.examples import training_examples
from tf_profiles.training.trainer import build_model

from tests.harness import check_config, check_save_load


def _preprocessor(items, users, text_dim=4):
    preprocessor = Preprocessor(items, users, text_dim, max_history=4)
    preprocessor.set_item_text(np.random.default_rng(0).normal(size=(len(items), text_dim)))
    return preprocessor


def _model(items, users, dim=8, text_dim=4, temperature=0.1, negatives="in-batch"):
    return TwoTowerModel(
        _preprocessor(items, users, text_dim),
        UserTower(len(users), text_dim, dim, max_history=4, num_layers=1, dropout=0.0),
        ItemTower(len(items), text_dim, dim, id_dropout=0.0), temperature=temperature,
        negatives=negatives)


def _batch(examples, size=None):
    return {k: tf.constant(v[:size].astype(str) if v.dtype == object else v[:size])
            for k, v in examples.items()}


@pytest.fixture()
def examples(tiny_data):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"])
    return training_examples(dataset.interactions, max_history=4)


def test_loss_is_in_batch_softmax_with_logq_and_accidental_hits(examples):
    items = sorted(set(examples["item_id"]))
    model = _model(items, sorted(set(examples["user_id"])))
    batch = _batch(examples, 16)
    users = model.user_embedding(batch).numpy()
    candidates = model.item_embedding(batch).numpy()
    logits = users @ candidates.T / 0.1 - np.log(batch[spec.ITEM_PROBABILITY].numpy())[None]
    ids = batch[spec.ITEM_ID].numpy()
    duplicate = (ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool)
    assert duplicate.any()  # the batch exercises accidental-hit removal
    logits[duplicate] = np.finfo(np.float32).min / 2
    expected = -np.trace(_log_softmax(logits))
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


def _log_softmax(logits):
    top = logits.max(1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))


def test_catalogue_loss_is_a_full_softmax_over_the_vocabulary(examples):
    # The vocabulary lacks one batch item: its positive column still counts,
    # and a history holding it embeds it through the item tower.
    items = sorted(set(examples["item_id"]))
    model = _model(items[1:], sorted(set(examples["user_id"])), negatives="catalogue")
    batch = _batch(examples, 16)
    assert items[0] in batch[spec.ITEM_ID].numpy().astype(str)
    assert items[0] in batch[spec.HISTORY].numpy().astype(str)
    users = model.user_embedding(batch).numpy()
    positives = model.item_embedding(batch).numpy()
    catalogue = model.item_embedding({spec.ITEM_ID: tf.constant(items[1:])}).numpy()
    logits = users @ catalogue.T
    is_positive = batch[spec.ITEM_ID].numpy().astype(str)[:, None] == np.array(items[1:])
    logits[is_positive] = -np.inf
    logits = np.concatenate([(users * positives).sum(1, keepdims=True), logits], 1) / 0.1
    expected = -_log_softmax(logits)[:, 0].sum()
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("negatives", ["in-batch", "catalogue"])
def test_training_lowers_the_loss(examples, negatives):
    model = _model(sorted(set(examples["item_id"])), sorted(set(examples["user_id"])),
                   negatives=negatives)
    model.compile(tf.keras.optimizers.Adam(0.01))
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: v.astype(str) if v.dtype == object else v for k, v in examples.items()}).batch(32)
    history = model.fit(dataset, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0]


def test_trained_model_round_trips_through_load_model(examples, tmp_path):
    model = _model(sorted(set(examples["item_id"])), sorted(set(examples["user_id"])))
    model.compile(tf.keras.optimizers.Adam(0.01))
    batch = _batch(examples)
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=2, verbose=0)
    unknown = dict(batch, **{spec.USER_ID: tf.fill(tf.shape(batch[spec.USER_ID]), "new"),
                             spec.ITEM_ID: tf.fill(tf.shape(batch[spec.ITEM_ID]), "new")})
    reloaded = check_save_load(model, batch, tmp_path / "model.keras")
    check_save_load(reloaded, unknown, tmp_path / "again.keras")
    assert reloaded.get_config()["temperature"] == 0.1
    check_config(reloaded)


def test_tower_sizes_must_match():
    with pytest.raises(ValueError, match="tower sizes differ"):
        TwoTowerModel(_preprocessor(["i"], ["u"]), UserTower(1, 4, 8), ItemTower(1, 4, 16))


def test_mixed_precision_trains_with_loss_scaling(examples):
    config = TrainConfig(embedding_dim=8, max_history=4, num_layers=1, mixed_precision=True)
    model = build_model(config, _preprocessor(sorted(set(examples["item_id"])),
                                              sorted(set(examples["user_id"]))))
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    assert model.user_tower.compute_dtype == "float16"
    model.compile(tf.keras.optimizers.Adam(0.01))
    loss = model.fit(tf.data.Dataset.from_tensors(_batch(examples, 32)), epochs=2,
                     verbose=0).history["loss"]
    assert isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert np.isfinite(loss).all()
    assert model.user_embedding(_batch(examples, 4)).dtype == tf.float32

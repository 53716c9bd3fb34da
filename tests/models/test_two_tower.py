import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import ItemTower, Preprocessor, TwoTowerModel, UserTower
from tf_profiles.bundle.config import PER_EVENT, TrainConfig
from tf_profiles.data.loaders import load_dataset
from tf_profiles.features import spec
from tf_profiles.features.examples import sequence_examples, training_examples
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
    config = TrainConfig(**PER_EVENT, embedding_dim=8, num_layers=1, mixed_precision=True)
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


def _causal_model(items, users, dim=8, text_dim=4):
    return TwoTowerModel(
        _preprocessor(items, users, text_dim),
        UserTower(len(users), text_dim, dim, max_history=4, num_layers=1, dropout=0.0,
                  causal=True),
        ItemTower(len(items), text_dim, dim, id_dropout=0.0), temperature=0.1,
        negatives="catalogue", mask_seen=False)


def test_every_position_loss_is_the_catalogue_loss_of_every_event(tiny_data):
    # One pass over a sequence trains exactly what one example per event
    # would, when each event's history is what the causal window holds.
    events = load_dataset(tiny_data["interactions"], tiny_data["items"]).interactions
    events = events[events["user_id"].isin(["u0", "u1", "u2"])]
    sequences = sequence_examples(events, max_history=4)
    model = _causal_model(sorted(events["item_id"].unique()), ["u0", "u1", "u2"])
    per_event = {key: [] for key in (spec.USER_ID, spec.HISTORY, spec.HISTORY_RATING,
                                     spec.ITEM_ID)}
    for row in range(len(sequences[spec.USER_ID])):
        for slot in np.flatnonzero(sequences[spec.NEXT_ITEMS][row] != spec.PADDING_ID):
            padding = 4 - slot - 1
            per_event[spec.USER_ID].append(sequences[spec.USER_ID][row])
            per_event[spec.HISTORY].append(
                [spec.PADDING_ID] * padding + list(sequences[spec.HISTORY][row][:slot + 1]))
            per_event[spec.HISTORY_RATING].append(
                [0.0] * padding + list(sequences[spec.HISTORY_RATING][row][:slot + 1]))
            per_event[spec.ITEM_ID].append(sequences[spec.NEXT_ITEMS][row][slot])
    per_event = {key: np.asarray(value, dtype=np.float32 if key == spec.HISTORY_RATING
                                 else object) for key, value in per_event.items()}
    assert len(per_event[spec.ITEM_ID]) == len(events) - 3  # every event but the firsts
    expected = model._catalogue_softmax_loss(_batch(per_event), training=False)
    assert float(model.compute_loss(_batch(sequences))) == pytest.approx(float(expected),
                                                                          rel=1e-4)


def test_causal_training_lowers_the_loss(tiny_data):
    events = load_dataset(tiny_data["interactions"], tiny_data["items"]).interactions
    sequences = sequence_examples(events, max_history=4)
    model = _causal_model(sorted(events["item_id"].unique()), sorted(events["user_id"].unique()))
    model.compile(tf.keras.optimizers.Adam(0.01))
    history = model.fit(tf.data.Dataset.from_tensors(_batch(sequences)), epochs=15,
                        verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0]


def test_a_causal_tower_needs_catalogue_negatives():
    with pytest.raises(ValueError, match="negatives must be 'catalogue'"):
        TwoTowerModel(_preprocessor(["i"], ["u"]), UserTower(1, 4, 8, causal=True),
                      ItemTower(1, 4, 8), negatives="in-batch")


def test_mask_seen_leaves_the_users_items_out_of_each_positions_softmax(tiny_data):
    events = load_dataset(tiny_data["interactions"], tiny_data["items"]).interactions
    sequences = sequence_examples(events, max_history=4)
    items = sorted(events["item_id"].unique())
    model = _causal_model(items, sorted(events["user_id"].unique()))
    masked = TwoTowerModel(model.preprocessor, model.user_tower, model.item_tower,
                           temperature=0.1, negatives="catalogue", mask_seen=True)
    batch = _batch(sequences)
    features = model.preprocessor.user_features(batch[spec.USER_ID], batch[spec.HISTORY],
                                                batch[spec.HISTORY_RATING])
    catalogue = model.item_embedding({spec.ITEM_ID: tf.constant(items)}).numpy()
    states = model.user_tower.every_position({**features, spec.HISTORY_EMBEDDINGS: tf.gather(
        np.concatenate([np.zeros((1, 8), np.float32), catalogue]),
        features[spec.HISTORY_INDEX])}).numpy()
    states /= np.linalg.norm(states, axis=-1, keepdims=True)
    expected = 0.0
    for row, slot in zip(*np.nonzero(sequences[spec.NEXT_ITEMS] != spec.PADDING_ID)):
        logits = catalogue @ states[row, slot] / 0.1
        target = items.index(sequences[spec.NEXT_ITEMS][row, slot])
        for seen in sequences[spec.HISTORY][row, :slot + 1]:
            if seen != spec.PADDING_ID and items.index(seen) != target:
                logits[items.index(seen)] = -np.inf
        expected -= _log_softmax(logits[None])[0, target]
    assert float(masked.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)
    assert float(masked.compute_loss(batch)) < float(model.compute_loss(batch))


def test_item_bias_is_a_dot_product_with_a_constant_user_column(examples):
    items, users = sorted(set(examples["item_id"])), sorted(set(examples["user_id"]))
    model = TwoTowerModel(
        _preprocessor(items, users),
        UserTower(len(users), 4, 8, max_history=4, num_layers=1, dropout=0.0),
        ItemTower(len(items), 4, 8, id_dropout=0.0, use_bias=True), temperature=0.1,
        negatives="catalogue")
    batch = _batch(examples, 8)
    model(batch)  # builds the weights
    model.item_tower.id_bias.embeddings.assign(np.arange(len(items) + 1, dtype=np.float32)[:, None])
    user, item = model.user_embedding(batch).numpy(), model.item_embedding(batch).numpy()
    assert model.output_dim == 9 and user.shape == (8, 9) and item.shape == (8, 9)
    np.testing.assert_allclose(user[:, -1], 1.0)
    np.testing.assert_allclose(np.linalg.norm(user[:, :-1], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(item[:, :-1], axis=1), 1.0, rtol=1e-5)
    index = [items.index(i) + 1 for i in batch[spec.ITEM_ID].numpy().astype(str)]
    np.testing.assert_allclose(item[:, -1], index, rtol=1e-5)  # text bias starts at 0
    # A new item gets no ID bias: its bias is its text's.
    new = model.item_embedding({spec.ITEM_ID: tf.constant(["new"])}).numpy()
    assert new[0, -1] == 0.0
    model.compile(tf.keras.optimizers.Adam(0.01))
    loss = model.fit(tf.data.Dataset.from_tensors(_batch(examples)), epochs=3,
                     verbose=0).history["loss"]
    assert np.isfinite(loss).all()
    assert np.abs(model.item_tower.text_bias.get_weights()[0]).sum() > 0  # the text part learns

import inspect
import json

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import ItemTower, UserTower
from tf_profiles.data import schema

from tests.conftest import assert_same_outputs


def _item_tower():
    tower = ItemTower(["a", "b", "c"], text_dim=4, embedding_dim=8, id_dropout=0.0)
    tower.set_text_embeddings(np.eye(3, 4, dtype=np.float32))
    return tower


def _user_inputs(history_mask, ratings=None, batch=2, length=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        schema.USER_ID: tf.constant(["u1", "nobody"][:batch]),
        "history_embeddings": tf.constant(rng.normal(size=(batch, length, dim)), tf.float32),
        "history_mask": tf.constant(history_mask),
        schema.HISTORY_RATING: tf.constant(ratings if ratings is not None
                                           else np.zeros((batch, length)), tf.float32),
    }


@pytest.mark.parametrize("tower", [
    lambda: ItemTower(["a", "b"], text_dim=4, embedding_dim=8, id_dropout=0.2, name="items"),
    lambda: UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=5, num_layers=1,
                      num_heads=2, dropout=0.1, name="users"),
])
def test_config_is_exactly_the_constructor_arguments(tower):
    tower = tower()
    config = tower.get_config()
    json.dumps(config)
    parameters = set(inspect.signature(type(tower).__init__).parameters) - {"self", "kwargs"}
    assert set(config) == parameters | {"name"}
    assert type(tower).from_config(config).get_config() == config


def test_unknown_item_embeds_through_its_text():
    tower = _item_tower()
    text = np.zeros((2, 4), np.float32)
    text[1] = [0, 1, 0, 0]  # a new item whose text equals b's
    out = tower({schema.ITEM_ID: tf.constant(["new", "new"]),
                 schema.ITEM_TEXT_EMBEDDING: tf.constant(text)}).numpy()
    assert np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])  # text moved it
    stored = tower(tf.constant(["b"])).numpy()
    given = tower({schema.ITEM_ID: tf.constant(["b"]),
                   schema.ITEM_TEXT_EMBEDDING: tf.constant(text[1:])}).numpy()
    np.testing.assert_allclose(stored, given, atol=1e-6)  # zeros mean "use stored"


def test_item_ids_of_any_shape():
    assert _item_tower()(tf.constant([["a", ""], ["zz", "c"]])).shape == (2, 2, 8)


def test_wrong_text_table_shape_is_named():
    with pytest.raises(ValueError, match=r"expected \(3, 4\)"):
        _item_tower().set_text_embeddings(np.zeros((2, 4)))


def test_id_dropout_only_in_training():
    tower = ItemTower(["a"], text_dim=2, embedding_dim=4, id_dropout=1.0)
    ids = tf.constant(["a"])
    oov = tower(tf.constant(["zz"])).numpy()
    np.testing.assert_allclose(tower(ids, training=True).numpy(), oov, atol=1e-6)
    assert not np.allclose(tower(ids).numpy(), oov)


def test_history_order_and_recency_change_the_profile():
    tower = UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    mask = [[True, True, True], [True, True, True]]
    inputs = _user_inputs(mask)
    reordered = dict(inputs, history_embeddings=inputs["history_embeddings"][:, ::-1])
    assert not np.allclose(tower(inputs).numpy(), tower(reordered).numpy(), atol=1e-4)


def test_padding_anywhere_is_ignored():
    tower = UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=4, dropout=0.0)
    inputs = _user_inputs([[True, False, True], [True, True, False]], batch=2)
    compact = dict(inputs)
    embeddings = inputs["history_embeddings"].numpy()
    moved = embeddings.copy()
    moved[0, 1], moved[0, 0] = embeddings[0, 0], 99.0  # same events, padding first
    compact["history_embeddings"] = tf.constant(moved)
    compact["history_mask"] = tf.constant([[False, True, True], [True, True, False]])
    np.testing.assert_allclose(tower(inputs).numpy()[0], tower(compact).numpy()[0], atol=1e-5)


def test_empty_history_and_unknown_user_still_embed():
    tower = UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=3)
    out = tower(_user_inputs([[False] * 3, [False] * 3])).numpy()
    assert out.shape == (2, 8) and np.isfinite(out).all()


def test_ratings_change_the_profile():
    tower = UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    liked = _user_inputs([[True] * 3] * 2, ratings=np.full((2, 3), 5.0))
    disliked = _user_inputs([[True] * 3] * 2, ratings=np.full((2, 3), 1.0))
    assert not np.allclose(tower(liked).numpy(), tower(disliked).numpy())


def test_user_text_override():
    tower = UserTower(["u1"], text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    tower.set_text_embeddings(np.ones((1, 4), np.float32))
    inputs = _user_inputs([[True] * 3] * 2)
    with_text = dict(inputs, **{schema.USER_TEXT_EMBEDDING: tf.constant(
        [[0, 0, 0, 0], [1, 1, 1, 1]], tf.float32)})
    out, out_text = tower(inputs).numpy(), tower(with_text).numpy()
    np.testing.assert_allclose(out[0], out_text[0], atol=1e-6)  # zeros → stored text
    assert not np.allclose(out[1], out_text[1])  # unknown user described by text


def test_towers_round_trip_through_keras_saving(tmp_path):
    tower = _item_tower()
    ids = tf.constant(["a", "zz"])
    expected = tower(ids)
    tower.save(tmp_path / "items.keras")
    reloaded = tf.keras.models.load_model(tmp_path / "items.keras")
    assert_same_outputs(expected, reloaded(ids))

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import ItemTower, UserTower
from tf_profiles.features import spec

from tests.harness import check_config, check_save_load


def _items(index, text):
    return {spec.ITEM_INDEX: tf.constant(index, tf.int64),
            spec.ITEM_TEXT_EMBEDDING: tf.constant(text, tf.float32)}


def _user_inputs(history_mask, ratings=None, batch=2, length=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        spec.USER_INDEX: tf.constant([1, 0][:batch], tf.int64),
        spec.USER_TEXT_EMBEDDING: tf.zeros((batch, 4)),
        spec.HISTORY_EMBEDDINGS: tf.constant(rng.normal(size=(batch, length, dim)), tf.float32),
        spec.HISTORY_MASK: tf.constant(history_mask),
        spec.HISTORY_RATING: tf.constant(ratings if ratings is not None
                                         else np.zeros((batch, length)), tf.float32),
    }


@pytest.mark.parametrize("tower", [
    lambda: ItemTower(2, text_dim=4, embedding_dim=8, id_dropout=0.2, name="items"),
    lambda: UserTower(1, text_dim=4, embedding_dim=8, max_history=5, num_layers=1,
                      num_heads=2, dropout=0.1, name="users"),
    lambda: UserTower(1, text_dim=4, embedding_dim=8, max_history=5, causal=True,
                      id_dropout=0.2, name="causal_users"),
])
def test_config_is_exactly_the_constructor_arguments(tower):
    check_config(tower())


def test_unknown_item_embeds_through_its_text():
    tower = ItemTower(3, text_dim=4, embedding_dim=8, id_dropout=0.0)
    text = np.zeros((2, 4), np.float32)
    text[1] = [0, 1, 0, 0]
    out = tower(_items([0, 0], text)).numpy()
    assert np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])  # text moved it
    # A known item adds its ID embedding to the same text path.
    assert not np.allclose(tower(_items([2], text[1:])).numpy(), out[1:])


def test_item_features_of_any_shape():
    tower = ItemTower(3, text_dim=4, embedding_dim=8)
    assert tower(_items([[1, 0], [3, 2]], np.zeros((2, 2, 4)))).shape == (2, 2, 8)


def test_id_dropout_only_in_training():
    tower = ItemTower(1, text_dim=2, embedding_dim=4, id_dropout=1.0)
    text = np.ones((1, 2), np.float32)
    oov = tower(_items([0], text)).numpy()
    np.testing.assert_allclose(tower(_items([1], text), training=True).numpy(), oov, atol=1e-6)
    assert not np.allclose(tower(_items([1], text)).numpy(), oov)


def test_history_order_and_recency_change_the_profile():
    tower = UserTower(1, text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    inputs = _user_inputs([[True, True, True], [True, True, True]])
    reordered = dict(inputs, **{spec.HISTORY_EMBEDDINGS:
                                inputs[spec.HISTORY_EMBEDDINGS][:, ::-1]})
    assert not np.allclose(tower(inputs).numpy(), tower(reordered).numpy(), atol=1e-4)


def test_padding_anywhere_is_ignored():
    tower = UserTower(1, text_dim=4, embedding_dim=8, max_history=4, dropout=0.0)
    inputs = _user_inputs([[True, False, True], [True, True, False]], batch=2)
    embeddings = inputs[spec.HISTORY_EMBEDDINGS].numpy()
    moved = embeddings.copy()
    moved[0, 1], moved[0, 0] = embeddings[0, 0], 99.0  # same events, padding first
    compact = dict(inputs, **{spec.HISTORY_EMBEDDINGS: tf.constant(moved),
                              spec.HISTORY_MASK: tf.constant([[False, True, True],
                                                              [True, True, False]])})
    np.testing.assert_allclose(tower(inputs).numpy()[0], tower(compact).numpy()[0], atol=1e-5)


def test_empty_history_and_unknown_user_still_embed():
    tower = UserTower(1, text_dim=4, embedding_dim=8, max_history=3)
    out = tower(_user_inputs([[False] * 3, [False] * 3])).numpy()
    assert out.shape == (2, 8) and np.isfinite(out).all()


def test_ratings_change_the_profile():
    tower = UserTower(1, text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    liked = _user_inputs([[True] * 3] * 2, ratings=np.full((2, 3), 5.0))
    disliked = _user_inputs([[True] * 3] * 2, ratings=np.full((2, 3), 1.0))
    assert not np.allclose(tower(liked).numpy(), tower(disliked).numpy())


def test_user_text_changes_the_profile():
    tower = UserTower(1, text_dim=4, embedding_dim=8, max_history=3, dropout=0.0)
    inputs = _user_inputs([[True] * 3] * 2)
    described = dict(inputs, **{spec.USER_TEXT_EMBEDDING: tf.ones((2, 4))})
    assert not np.allclose(tower(inputs).numpy(), tower(described).numpy())


@pytest.mark.parametrize("tower, inputs", [
    (lambda: ItemTower(3, text_dim=4, embedding_dim=8, id_dropout=0.0),
     lambda: _items([1, 0], np.eye(2, 4))),
    (lambda: UserTower(1, text_dim=4, embedding_dim=8, max_history=3, num_layers=1),
     lambda: _user_inputs([[True, False, True], [False] * 3])),
])
def test_towers_round_trip_through_keras_saving(tower, inputs, tmp_path):
    check_save_load(tower(), inputs(), tmp_path / "tower.keras")


@pytest.mark.parametrize("switches", [{"use_id": False}, {"use_text": False}])
def test_item_tower_ablations_ignore_the_switched_off_input(switches, tmp_path):
    tower = ItemTower(3, text_dim=4, embedding_dim=8, id_dropout=0.0, **switches)
    text = np.random.default_rng(0).normal(size=(2, 4))
    other_input = (_items([2, 1], text) if not switches.get("use_id", True)
                   else _items([1, 2], text[::-1]))
    assert np.allclose(tower(_items([1, 2], text)).numpy(), tower(other_input).numpy())
    check_config(tower)
    check_save_load(tower, _items([1, 0], text), tmp_path / "tower.keras")


@pytest.mark.parametrize("switches, changed", [
    ({"use_id": False}, {spec.USER_INDEX: tf.constant([0, 1], tf.int64)}),
    ({"use_text": False}, {spec.USER_TEXT_EMBEDDING: tf.ones((2, 4))}),
    ({"use_history": False}, {spec.HISTORY_EMBEDDINGS: tf.ones((2, 3, 8))}),
])
def test_user_tower_ablations_ignore_the_switched_off_input(switches, changed, tmp_path):
    tower = UserTower(2, text_dim=4, embedding_dim=8, max_history=3, num_layers=1,
                      dropout=0.0, **switches)
    inputs = _user_inputs([[True, False, True], [True] * 3])
    assert np.allclose(tower(inputs).numpy(), tower(dict(inputs, **changed)).numpy())
    check_config(tower)
    check_save_load(tower, inputs, tmp_path / "tower.keras")


def test_a_tower_without_inputs_is_refused():
    with pytest.raises(ValueError, match="use_id or use_text"):
        ItemTower(3, 4, 8, use_id=False, use_text=False)
    with pytest.raises(ValueError, match="use_history"):
        UserTower(3, 4, 8, use_id=False, use_text=False, use_history=False)


def test_a_causal_state_is_the_profile_of_the_history_cut_there():
    tower = UserTower(3, text_dim=4, embedding_dim=8, max_history=5, num_layers=2,
                      dropout=0.0, causal=True)
    inputs = _user_inputs([[False, True, True, True, True]] * 2, length=5,
                          ratings=np.tile([0.0, 5, 1, 4, 2], (2, 1)))
    states = tower.every_position(inputs).numpy()  # [B, H, D]
    for end in range(2, 6):  # the history up to slot end - 1, right-aligned as served
        cut = {**inputs}
        for key in (spec.HISTORY_EMBEDDINGS, spec.HISTORY_MASK, spec.HISTORY_RATING):
            values = inputs[key].numpy()[:, :end]
            padding = np.zeros((2, 5 - end) + values.shape[2:], values.dtype)
            cut[key] = tf.constant(np.concatenate([padding, values], axis=1))
        np.testing.assert_allclose(tower(cut).numpy(), states[:, end - 1], atol=1e-5)


def test_every_position_needs_a_causal_history_tower():
    with pytest.raises(ValueError, match="causal tower"):
        UserTower(1, text_dim=4, embedding_dim=8, max_history=3).every_position(
            _user_inputs([[True] * 3] * 2))


def test_user_id_dropout_trains_the_unknown_user_row():
    tower = UserTower(2, text_dim=4, embedding_dim=8, max_history=3, use_history=False,
                      use_text=False, id_dropout=0.5)
    inputs = _user_inputs([[True] * 3] * 2)
    known = {**inputs, spec.USER_INDEX: tf.constant([1, 2], tf.int64)}
    optimizer = tf.keras.optimizers.SGD(0.1)
    tower(known)  # builds the weights
    before = tower.id_embedding.embeddings.numpy()[0].copy()
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tower(known, training=True) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, tower.trainable_variables),
                                      tower.trainable_variables))
    # Only known users were trained, yet row 0 ("a user we do not know") moved.
    assert not np.allclose(tower.id_embedding.embeddings.numpy()[0], before)
    # Outside training no user is dropped: an unknown user reads row 0.
    unknown = {**inputs, spec.USER_INDEX: tf.constant([0, 0], tf.int64)}
    np.testing.assert_allclose(tower(unknown).numpy()[0], tower(unknown).numpy()[1])
    assert not np.allclose(tower(known).numpy()[0], tower(unknown).numpy()[0])


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_user_id_dropout_outside_0_1_is_refused(rate):
    with pytest.raises(ValueError, match="id_dropout"):
        UserTower(1, text_dim=4, embedding_dim=8, id_dropout=rate)

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import Preprocessor
from tf_profiles.features import spec
from tf_profiles.features.history import compact_history, pad_left
from tf_profiles.features.text_table import TextTable
from tf_profiles.text.encoder import TextEncoder

from tests.harness import check_config, check_save_load

ITEMS = ["i1", "i2", "i3"]


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    return TextEncoder.from_checkpoint(tiny_bert, max_length=16)


@pytest.fixture()
def preprocessor(encoder):
    """Vocabulary i1, i2 and u1; catalogue i1..i3 and u1, u2; u1 stores a history."""
    layer = Preprocessor(["i1", "i2"], ["u1"], text_dim=8, max_history=3, encoder=encoder,
                         item_catalogue=ITEMS, user_catalogue=["u1", "u2"])
    layer.set_item_text(np.arange(24, dtype=np.float32).reshape(3, 8))
    layer.set_users(np.ones((2, 8), np.float32) * [[1], [2]],
                    np.array([["", "i1", "i3"], ["", "", ""]], dtype=object),
                    np.array([[0, 4, 2], [0, 0, 0]], np.float32))
    return layer


def _users(users, history, ratings=None, text=None):
    return {spec.USER_ID: tf.constant(users), spec.HISTORY: tf.constant(history),
            **({spec.HISTORY_RATING: tf.constant(ratings, tf.float32)} if ratings else {}),
            **({spec.USER_TEXT: tf.constant(text)} if text else {})}


def test_config_is_exactly_the_constructor_arguments(preprocessor):
    check_config(preprocessor)
    check_config(TextTable(ITEMS, 8, name="t"))


def test_save_load_keeps_tables_state_and_encoder(preprocessor, tmp_path):
    inputs = {**_users(["u1", "u2", "zz"], [["", "", ""], ["i2", "", "i9"], ["i1", "", ""]],
                       text=["", "drama", ""]),
              spec.ITEM_ID: tf.constant(["i1", "new", "i3"]),
              spec.ITEM_TEXT: tf.constant(["", "comedy", ""])}
    check_save_load(preprocessor, inputs, tmp_path / "preprocessor.keras")


def test_items_get_their_index_and_stored_or_given_text(preprocessor, encoder):
    features = preprocessor.item_features(tf.constant(["i2", "i3", "new", "new"]),
                                          tf.constant(["", "", "", "comedy"]))
    assert features[spec.ITEM_INDEX].numpy().tolist() == [2, 0, 0, 0]  # i3: no ID embedding
    text = features[spec.ITEM_TEXT_EMBEDDING].numpy()
    np.testing.assert_allclose(text[:2], np.arange(8, 24).reshape(2, 8))
    assert not text[2].any()  # unknown and no text
    np.testing.assert_allclose(text[3], encoder(tf.constant(["comedy"])).numpy()[0], atol=1e-6)
    shaped = preprocessor.item_features(tf.constant([["i1", ""], ["i2", "i3"]]))
    assert shaped[spec.ITEM_TEXT_EMBEDDING].shape == (2, 2, 8)


def test_history_is_compacted_and_truncated(preprocessor):
    sparse = preprocessor.user_features(*_users(["zz"], [["i1", "", "i2", "", "i3", "i1"]],
                                                [[1, 0, 2, 0, 3, 4]]).values())
    assert sparse[spec.HISTORY_ROWS].numpy().tolist() == [[2, 3, 1]]
    assert sparse[spec.HISTORY_RATING].numpy().tolist() == [[2, 3, 4]]
    assert sparse[spec.HISTORY_INDEX].numpy().tolist() == [[2, 0, 1]]
    assert sparse[spec.HISTORY_MASK].numpy().all()


def test_empty_history_falls_back_to_the_stored_one(preprocessor):
    features = preprocessor.user_features(
        tf.constant(["u1", "u2", "zz"]), tf.constant([["", ""], ["", ""], ["", ""]]))
    assert features[spec.HISTORY_ROWS].numpy().tolist() == [[0, 1, 3], [0, 0, 0], [0, 0, 0]]
    assert features[spec.HISTORY_INDEX].numpy().tolist()[0] == [0, 1, 0]  # i3: no ID
    assert features[spec.HISTORY_RATING].numpy().tolist()[0] == [0, 4, 2]
    assert features[spec.HISTORY_MASK].numpy().tolist()[0] == [False, True, True]
    assert features[spec.USER_INDEX].numpy().tolist() == [1, 0, 0]


def test_request_history_takes_the_stored_ratings(preprocessor):
    features = preprocessor.user_features(tf.constant(["u1", "u2"]),
                                          tf.constant([["i3", "i2"], ["i3", ""]]))
    assert features[spec.HISTORY_RATING].numpy().tolist() == [[0, 2, 0], [0, 0, 0]]


def test_empty_text_keeps_the_stored_text_and_other_text_is_encoded(preprocessor, encoder):
    text = preprocessor.user_features(tf.constant(["u1", "u2", "zz", "u1"]),
                                      tf.constant([[""]] * 4),
                                      user_text=tf.constant(["", "", "", "drama"])
                                      )[spec.USER_TEXT_EMBEDDING].numpy()
    np.testing.assert_allclose(text[:3], np.array([[1] * 8, [2] * 8, [0] * 8]))
    np.testing.assert_allclose(text[3], encoder(tf.constant(["drama"])).numpy()[0], atol=1e-6)


def test_with_state_keeps_vocabularies_and_encoder(preprocessor):
    other = preprocessor.with_state(["i2", "new"], np.ones((2, 8)), ["u9"], np.zeros((1, 8)),
                                    np.array([["", "", "new"]], object), np.ones((1, 3)))
    assert other.encoder is preprocessor.encoder
    features = other.item_features(tf.constant(["i2", "new", "i1"]))
    assert features[spec.ITEM_INDEX].numpy().tolist() == [2, 0, 1]
    assert features[spec.ITEM_TEXT_EMBEDDING].numpy()[:, 0].tolist() == [1, 1, 0]
    stored = other.user_features(tf.constant(["u9"]), tf.constant([[""]]))
    assert stored[spec.HISTORY_ROWS].numpy().tolist() == [[0, 0, 2]]


def test_wrong_shapes_are_named(preprocessor):
    with pytest.raises(ValueError, match=r"expected \(3, 8\)"):
        preprocessor.set_item_text(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="users × max_history"):
        preprocessor.set_users(np.zeros((2, 8)), np.full((2, 4), "", object), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="no encoder"):
        Preprocessor(["i1"], ["u1"], 8, 3).item_features(tf.constant(["i1"]),
                                                         tf.constant(["text"]))


def test_history_helpers():
    assert pad_left([["a"], [], ["b", "c", "d"]], 2).tolist() == [["", "a"], ["", ""],
                                                                   ["c", "d"]]
    compact, rating = compact_history(tf.constant([["a", "", "b"]]), 4,
                                      tf.constant([[1.0, 9.0, 2.0]]))
    assert compact.numpy().tolist() == [[b"", b"", b"a", b"b"]]
    assert rating.numpy().tolist() == [[0, 0, 1, 2]]


def test_a_frozen_encoder_embeds_request_text_without_dropout_even_in_training(
        preprocessor, encoder):
    # Stored texts were embedded with the encoder in inference mode; a
    # training step's query must embed the same way (no dropout noise).
    inputs = _users(["u1"], [["i1"]], text=["star wars action"])
    served = preprocessor(inputs)[spec.USER_TEXT_EMBEDDING]
    for _ in range(3):
        trained = preprocessor(inputs, training=True)[spec.USER_TEXT_EMBEDDING]
        np.testing.assert_allclose(trained.numpy(), served.numpy(), atol=1e-6)
    np.testing.assert_allclose(served.numpy()[0],
                               encoder(tf.constant(["star wars action"])).numpy()[0], atol=1e-6)


def test_known_texts_embed_as_given_and_match_the_encoder(preprocessor, encoder, tmp_path,
                                                          cache_dir):
    from tf_profiles.text.cache import embed_texts

    queries = ["a comedy", "something drama"]
    inputs = _users(["u1", "u2", "u1", "u2"], [["i1"]] * 4,
                    text=["a comedy", "", "star wars", "something drama"])
    expected = preprocessor(inputs, training=True)[spec.USER_TEXT_EMBEDDING].numpy()
    with preprocessor.known_texts(queries, embed_texts(queries, encoder, cache_dir)):
        remembered = preprocessor(inputs, training=True)[spec.USER_TEXT_EMBEDDING].numpy()
        # Proof the vectors are read, not recomputed: other vectors, other features.
        with preprocessor.known_texts(queries, np.zeros((2, 8))):
            zeroed = preprocessor(inputs)[spec.USER_TEXT_EMBEDDING].numpy()
    # The cached vectors are what the encoder computes in the step ("star wars"
    # is not known and still goes through it; "" keeps the stored text).
    np.testing.assert_allclose(remembered, expected, atol=1e-5)
    assert not zeroed[[0, 3]].any() and np.allclose(zeroed[[1, 2]], expected[[1, 2]], atol=1e-5)
    # Gone after the block, and never part of what is saved.
    assert preprocessor._known_texts is None
    check_save_load(preprocessor, inputs, str(tmp_path / "preprocessor.keras"))


def test_known_texts_refuse_a_trainable_encoder_and_bad_shapes(preprocessor, tiny_bert):
    with pytest.raises(ValueError, match="expected distinct texts and \\[2, 8\\]"):
        with preprocessor.known_texts(["a", "b"], np.zeros((2, 4))):
            pass
    with pytest.raises(ValueError, match="1 distinct"):
        with preprocessor.known_texts(["a", "a"], np.zeros((2, 8))):
            pass
    trainable = Preprocessor(["i1"], ["u1"], 8, 3, TextEncoder.from_checkpoint(
        tiny_bert, max_length=16, trainable_layers=1))
    with pytest.raises(ValueError, match="frozen encoder"):
        with trainable.known_texts(["a"], np.zeros((1, 8))):
            pass

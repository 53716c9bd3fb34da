import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.text.encoder import CheckpointError, TextEncoder

from tests.harness import check_config, check_save_load


def test_tiny_checkpoint_encodes_strings_to_unit_vectors(tiny_bert):
    encoder = TextEncoder.from_checkpoint(tiny_bert, max_length=16)
    vectors = encoder(tf.constant(["a man is eating food", "star wars"])).numpy()
    assert vectors.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_chinese_text_is_split_per_character(tiny_bert):
    encoder = TextEncoder.from_checkpoint(tiny_bert)
    ids = encoder.tokenizer(tf.constant(["我爱北京电影"]))["input_ids"].numpy()[0]
    vocab = encoder.vocab
    assert [vocab[i] for i in ids] == ["[CLS]", "我", "爱", "北", "京", "电", "影", "[SEP]"]
    assert np.isfinite(encoder(tf.constant(["我爱北京电影"])).numpy()).all()


def test_weights_come_from_the_checkpoint(tiny_bert):
    first = TextEncoder.from_checkpoint(tiny_bert)(tf.constant(["star wars"])).numpy()
    second = TextEncoder.from_checkpoint(tiny_bert)(tf.constant(["star wars"])).numpy()
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_trainable_layers_freeze_the_rest(tiny_bert):
    encoder = TextEncoder.from_checkpoint(tiny_bert, trainable_layers=1)
    names = [w.name for w in encoder.trainable_weights]
    assert names and all("layer_._1" in name for name in names)
    assert not TextEncoder.from_checkpoint(tiny_bert).trainable_weights


def test_config_round_trip(tiny_bert, tmp_path):
    encoder = TextEncoder.from_checkpoint(tiny_bert, max_length=12)
    check_config(encoder)
    clone = TextEncoder.from_config(encoder.get_config())
    clone.set_weights(encoder.get_weights())
    texts = tf.constant(["a man is eating bread", "drama"])
    np.testing.assert_allclose(clone(texts).numpy(), encoder(texts).numpy(), atol=1e-6)
    check_save_load(encoder, texts, tmp_path / "encoder.keras")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="vocab.txt"):
        (tmp_path / "config.json").write_text("{}")
        TextEncoder.from_checkpoint(tmp_path)


def test_missing_weights_are_named(tiny_bert, tmp_path):
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((tiny_bert / name).read_bytes())
    with pytest.raises(CheckpointError, match="model.safetensors"):
        TextEncoder.from_checkpoint(tmp_path)


@pytest.mark.slow
def test_real_minilm_matches_sentence_transformers_similarity():
    encoder = TextEncoder.from_checkpoint()
    vectors = encoder(tf.constant(["A man is eating food.",
                                   "A man is eating a piece of bread."])).numpy()
    assert encoder.output_dim == 384
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.755, abs=0.005)

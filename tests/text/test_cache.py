import numpy as np
import pytest

from tf_profiles.text import cache
from tf_profiles.text.encoder import TextEncoder


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    return TextEncoder.from_checkpoint(tiny_bert)


def test_texts_are_encoded_once_and_reused(encoder, cache_dir, monkeypatch):
    first = cache.embed_texts(["star wars", "drama", "star wars"], encoder, cache_dir)
    assert first.shape == (3, 8)
    np.testing.assert_allclose(first[0], first[2])

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder ran although every text was cached")

    monkeypatch.setattr(encoder, "call", refuse)
    again = cache.embed_texts(["drama", "star wars"], encoder, cache_dir)
    np.testing.assert_allclose(again, first[[1, 0]], atol=1e-6)


def test_empty_text_embeds_as_zeros(encoder, cache_dir):
    vectors = cache.embed_texts(["", "drama"], encoder, cache_dir)
    assert not vectors[0].any() and vectors[1].any()
    assert cache.embed_texts([], encoder, cache_dir).shape == (0, 8)


def test_changed_weights_change_the_key(tiny_bert):
    first = TextEncoder.from_checkpoint(tiny_bert, trainable_layers=1)
    key = cache.encoder_key(first)
    assert cache.encoder_key(TextEncoder.from_checkpoint(tiny_bert)) == key
    first.trainable_weights[0].assign_add(np.ones(first.trainable_weights[0].shape, np.float32))
    assert cache.encoder_key(first) != key

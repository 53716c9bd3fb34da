import numpy as np

from tf_profiles.text import cache
from tf_profiles.text.encoder import TextEncoder


def test_texts_are_encoded_once_and_reused(tiny_bert, cache_dir, monkeypatch):
    first = cache.embed_texts(["star wars", "drama", "star wars"], tiny_bert, cache_dir)
    assert first.shape == (3, 8)
    np.testing.assert_allclose(first[0], first[2])

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was loaded although every text was cached")

    monkeypatch.setattr(TextEncoder, "from_checkpoint", refuse)
    again = cache.embed_texts(["drama", "star wars"], tiny_bert, cache_dir)
    np.testing.assert_allclose(again, first[[1, 0]], atol=1e-6)


def test_empty_text_embeds_as_zeros(tiny_bert, cache_dir):
    vectors = cache.embed_texts(["", "drama"], tiny_bert, cache_dir)
    assert not vectors[0].any() and vectors[1].any()
    assert cache.embed_texts([], tiny_bert, cache_dir).shape == (0, 8)

"""Frozen-encoder text embeddings, computed once per (encoder, text) and cached.

The cache is keyed by the encoder's weights and each text's hash, so a
second training run, an evaluation or a profile refresh encodes only texts
it has not seen before.
"""
import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tf_profiles.text.encoder import TextEncoder


def default_cache_dir() -> Path:
    return Path(os.environ.get("TF_PROFILES_CACHE",
                               Path.home() / ".cache" / "tf_profiles"))


def encoder_key(encoder: TextEncoder) -> str:
    """Identifies what an encoder computes: its weights and its token limit.

    A fine-tuned encoder gets another key than its checkpoint, so the cache
    never hands it the frozen checkpoint's vectors.
    """
    digest = hashlib.sha256(f"{encoder.max_length}|{encoder.normalize}".encode())
    # In a fixed order: Keras lists trainable weights first, so the order
    # would follow trainable_layers. The first name part is the instance's
    # ("tf_bert_model_3"), not the weight's.
    for weight in sorted(encoder.weights, key=lambda w: w.name.split("/", 1)[-1]):
        digest.update(np.ascontiguousarray(weight.numpy()))
    return digest.hexdigest()[:16]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(texts: Sequence[str], encoder: TextEncoder, cache_dir: Optional[Path] = None,
                batch_size: int = 64) -> np.ndarray:
    """Embeds ``texts`` with ``encoder``, reusing cached vectors.

    Args:
      texts: any strings; duplicates are encoded once. "" embeds as zeros
        ("no text").
      encoder: the model's :class:`TextEncoder` (the cache is keyed by its
        weights, see :func:`encoder_key`).
      cache_dir: where vectors are kept; defaults to $TF_PROFILES_CACHE or
        ~/.cache/tf_profiles.

    Returns:
      [len(texts), hidden] float32.
    """
    cache_file = (Path(cache_dir) if cache_dir else default_cache_dir()) / (
        f"text_embeddings_{encoder_key(encoder)}.npz")
    cached = {}
    if cache_file.is_file():
        with np.load(cache_file) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["vectors"]))
    unique = sorted({t for t in texts if t and _text_key(t) not in cached}, key=len)
    if unique:
        encode = tf.function(encoder.call, input_signature=[
            tf.TensorSpec([None], tf.string)], reduce_retracing=True)
        # Sorted by length so each batch pads to a similar length.
        for start in tqdm(range(0, len(unique), batch_size), desc="encoding texts",
                          unit="batch", disable=len(unique) <= batch_size):
            batch = unique[start:start + batch_size]
            for text, vector in zip(batch, encode(tf.constant(batch)).numpy()):
                cached[_text_key(text)] = vector
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(cached)
        # One temporary file per process: training workers on one machine
        # share the cache and may write it at the same time.
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, keys=np.array(keys), vectors=np.stack([cached[k] for k in keys]))
        temporary.replace(cache_file)  # atomic: a killed run leaves the old cache intact
    empty = np.zeros(encoder.output_dim, np.float32)
    return np.stack([cached[_text_key(t)] if t else empty for t in texts] or [empty])[
        :len(texts)].astype(np.float32)

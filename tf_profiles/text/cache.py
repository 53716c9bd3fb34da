"""Frozen-encoder text embeddings, computed once per (encoder, text) and cached.

The cache is keyed by the checkpoint's identity and each text's hash, so a
second training run, an evaluation or a profile refresh encodes only texts
it has not seen before.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tf_profiles.text.encoder import TextEncoder, default_checkpoint


def default_cache_dir() -> Path:
    return Path(os.environ.get("TF_PROFILES_CACHE",
                               Path.home() / ".cache" / "tf_profiles"))


def _checkpoint_key(checkpoint: Path, max_length: int) -> str:
    weights = sorted(p for p in checkpoint.iterdir()
                     if p.name in ("model.safetensors", "tf_model.h5"))
    identity = [str(checkpoint.resolve()), str(max_length)]
    identity += [f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in weights]
    return hashlib.sha256("|".join(identity).encode()).hexdigest()[:16]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(texts: Sequence[str], checkpoint: Optional[Path] = None,
                cache_dir: Optional[Path] = None, max_length: int = 64,
                batch_size: int = 64, encoder: Optional[TextEncoder] = None) -> np.ndarray:
    """Embeds ``texts`` with a frozen BERT, reusing cached vectors.

    Args:
      texts: any strings; duplicates are encoded once. "" embeds as zeros
        (the towers read an all-zero text embedding as "no text").
      checkpoint: BERT folder; defaults to the bundled all-MiniLM-L6-v2.
      cache_dir: where vectors are kept; defaults to $TF_PROFILES_CACHE or
        ~/.cache/tf_profiles.
      encoder: an already loaded encoder for ``checkpoint`` (skips loading).

    Returns:
      [len(texts), hidden] float32.
    """
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint()
    cache_file = (Path(cache_dir) if cache_dir else default_cache_dir()) / (
        f"text_embeddings_{_checkpoint_key(checkpoint, max_length)}.npz")
    cached = {}
    if cache_file.is_file():
        with np.load(cache_file) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["vectors"]))
    unique = sorted({t for t in texts if t and _text_key(t) not in cached}, key=len)
    if unique:
        encoder = encoder or TextEncoder.from_checkpoint(checkpoint, max_length=max_length)
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
    width = json.loads((checkpoint / "config.json").read_text())["hidden_size"]
    empty = np.zeros(width, np.float32)
    return np.stack([cached[_text_key(t)] if t else empty for t in texts] or [empty])[
        :len(texts)].astype(np.float32)

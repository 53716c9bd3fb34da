"""A trained model applied in batches: embeddings of many items or users, and scores.

Every caller that embeds more than one request's worth of rows (evaluation,
profile building, explanations, export) goes through here, so batching and
tracing are decided once.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_profiles.features import spec


def _batches(features: Dict[str, np.ndarray], batch_size: int):
    count = len(next(iter(features.values())))
    for start in range(0, count, batch_size):
        yield {key: tf.constant(value[start:start + batch_size].astype(str)
                                if value.dtype == object else value[start:start + batch_size])
               for key, value in features.items()}


def item_embeddings(model, item_ids: Sequence[str], item_texts: Optional[Sequence[str]] = None,
                    batch_size: int = 4096) -> np.ndarray:
    """[C, D] item-tower outputs of ``item_ids`` (text from the preprocessor's
    catalogue, or ``item_texts`` where not "")."""
    features = {spec.ITEM_ID: np.asarray(list(item_ids), dtype=object)}
    if item_texts is not None:
        features[spec.ITEM_TEXT] = np.asarray(list(item_texts), dtype=object)
    embed = tf.function(model.item_embedding, reduce_retracing=True)
    parts = [embed(batch).numpy() for batch in _batches(features, batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, model.output_dim), np.float32))


def user_embeddings(model, users: Dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
    """[N, D] user-tower outputs for raw user features (``user_id``, ``history``,
    optional ``history_rating`` and ``user_text``), e.g. of ``latest_histories``.

    In batches: a batch's history text is [batch, H, E], too big to hold for
    a whole population at once.
    """
    embed = tf.function(model.user_embedding, reduce_retracing=True)
    parts = [embed(batch).numpy() for batch in _batches(users, batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, model.output_dim), np.float32))

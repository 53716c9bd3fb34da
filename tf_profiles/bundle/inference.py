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


def _traced(model, method: str):
    """One ``tf.function`` per model, method and preprocessor state, kept on the
    model and reused by every later call (each validation epoch): a new
    tf.function per call traced anew every time."""
    functions = vars(model).get("_traced_inference")
    if functions is None:
        functions = {}
        # object.__setattr__: Keras would track (and try to save) the dict.
        object.__setattr__(model, "_traced_inference", functions)
    key = (method, model.preprocessor.tracing_generation)
    if key not in functions:
        functions[key] = tf.function(getattr(model, method), reduce_retracing=True)
    return functions[key]


def item_embeddings(model, item_ids: Sequence[str], item_texts: Optional[Sequence[str]] = None,
                    batch_size: int = 4096) -> np.ndarray:
    """[C, D] item-tower outputs of ``item_ids`` (text from the preprocessor's
    catalogue, or ``item_texts`` where not "")."""
    features = {spec.ITEM_ID: np.asarray(list(item_ids), dtype=object)}
    if item_texts is not None:
        features[spec.ITEM_TEXT] = np.asarray(list(item_texts), dtype=object)
    embed = _traced(model, "item_embedding")
    parts = [embed(batch).numpy() for batch in _batches(features, batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, model.output_dim), np.float32))


def user_embeddings(model, users: Dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
    """[N, D] user-tower outputs for raw user features (``user_id``, ``history``,
    optional ``history_rating`` and ``user_text``), e.g. of ``latest_histories``.

    In batches: a batch's history text is [batch, H, E], too big to hold for
    a whole population at once.
    """
    embed = _traced(model, "user_embedding")
    parts = [embed(batch).numpy() for batch in _batches(users, batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, model.output_dim), np.float32))

"""Scores → the best k, never an excluded item: the one ranking rule, in numpy and in TF.

Evaluation, explanations, the servable and the sharded client all rank
with these, so "already seen" means the same thing everywhere.
"""
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_profiles.features.spec import PADDING_ID


# === numpy ===

def exclude(scores: np.ndarray, excluded: Sequence[np.ndarray]) -> np.ndarray:
    """Sets each row's excluded columns (per row, column indices) to -inf, in place."""
    for row, columns in enumerate(excluded):
        if len(columns):
            scores[row, columns] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """(columns, scores) of each row's k best, best first; equal scores keep
    column order, so answers are deterministic."""
    columns = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return columns, np.take_along_axis(scores, columns, axis=1)


# === TensorFlow ===

def top_k_excluding(scores: tf.Tensor, ids: tf.Tensor, excluded: tf.Tensor,
                    k: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """The k best of ``scores`` [B, N] (candidates ``ids`` [B, N]) whose id is
    not in the row's ``excluded`` [B, H] (padding ignored): (ids, scores) [B, k].

    N must be at least k + H for k to remain in every row (ask the index for
    that many).
    """
    seen = tf.reduce_any(tf.equal(ids[:, :, tf.newaxis], excluded[:, tf.newaxis, :])
                         & tf.not_equal(excluded, PADDING_ID)[:, tf.newaxis, :], axis=2)
    scores = tf.where(seen, tf.cast(-np.inf, scores.dtype), scores)
    best_scores, positions = tf.math.top_k(scores, k=k)
    return tf.gather(ids, positions, batch_dims=1), best_scores

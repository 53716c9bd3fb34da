"""Scores → the best k, never an excluded item: the one ranking rule, in numpy and in TF.

Evaluation, explanations, the servable and the sharded client all rank
with these, so "already seen" means the same thing everywhere.
"""
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf


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

def top_k_excluding(scores: tf.Tensor, excluded: tf.Tensor,
                    k: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """The k best columns of ``scores`` [B, C] outside each row's ``excluded``
    columns [B, X] (-1: none): (columns, scores), [B, k] each, best first.

    Excluded columns are set to -inf before the top-k, so however many a row
    excludes, k others come back (if the catalogue has them).
    """
    valid = excluded >= 0
    rows = tf.broadcast_to(tf.range(tf.shape(excluded, out_type=excluded.dtype)[0])[:, None],
                           tf.shape(excluded))
    positions = tf.stack([tf.boolean_mask(rows, valid), tf.boolean_mask(excluded, valid)], 1)
    scores = tf.tensor_scatter_nd_update(
        scores, positions, tf.fill(tf.shape(positions)[:1], tf.cast(-np.inf, scores.dtype)))
    best_scores, columns = tf.math.top_k(scores, k=k)
    return columns, best_scores

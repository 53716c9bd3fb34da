"""Histories as fixed-width rows: real events right-aligned, oldest first.

The numpy form serves callers that assemble requests or stored rows; the
TensorFlow form runs inside the Preprocessor on whatever a request sends.
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_profiles.features.spec import PADDING_ID


def pad_left(rows: Sequence[Sequence], width: Optional[int] = None, fill=PADDING_ID,
             dtype=object) -> np.ndarray:
    """[len(rows), width] array: each row's values right-aligned, ``fill`` before them.

    Args:
      rows: per row, values oldest first; a row longer than ``width`` keeps
        its last ``width`` values.
      width: default: the longest row (at least 1).
    """
    width = max([len(r) for r in rows] + [1]) if width is None else width
    out = np.full((len(rows), width), fill, dtype=dtype)
    for index, values in enumerate(rows):
        values = list(values)[-width:] if width else []
        if values:
            out[index, width - len(values):] = values
    return out


def compact_history(history: tf.Tensor, max_history: int, *aligned: tf.Tensor):
    """[B, W] ids with padding anywhere → [B, max_history]: real events moved
    right in their order, the oldest dropped beyond ``max_history``.

    ``aligned`` tensors ([B, W] each, e.g. ratings) move with their ids and
    get 0 where the history is padded. Returns the history, then them.
    """
    width = tf.shape(history)[1]
    present = tf.not_equal(history, PADDING_ID)
    positions = tf.broadcast_to(tf.range(width), tf.shape(history))
    # Padding sorts before every real event; stable keeps the events' order.
    order = tf.argsort(tf.where(present, positions + width, positions), axis=1, stable=True)

    def compact(values, fill):
        values = tf.gather(values, order, batch_dims=1)
        values = tf.pad(values, [[0, 0], [max_history, 0]], constant_values=fill)
        return values[:, -max_history:]

    compacted = compact(history, PADDING_ID)
    present = tf.not_equal(compacted, PADDING_ID)
    return (compacted,) + tuple(
        tf.where(present, compact(values, tf.zeros([], values.dtype)), tf.zeros([], values.dtype))
        for values in aligned)

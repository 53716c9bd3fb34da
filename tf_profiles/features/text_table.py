"""TextTable: id → stored text embedding, zeros for an id it does not hold."""
from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_profiles.features.spec import PADDING_ID


def id_rows(ids: Sequence[str]) -> tf.lookup.StaticHashTable:
    """A table mapping ``ids[i]`` to i + 1 and every other string to 0.

    A hash table rather than StringLookup: its default row is our "not held"
    row. The padding id maps to 0 explicitly, which also keeps the table
    non-empty for an empty id list (an export of an empty store).
    """
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant([PADDING_ID] + list(ids), tf.string, shape=[len(ids) + 1]),
            tf.range(len(ids) + 1, dtype=tf.int64)),
        default_value=0)


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class TextTable(tf.keras.layers.Layer):
    """The text embeddings of a list of ids, looked up inside the graph.

    Row 0 of the table is all-zero and answers every id the table does not
    hold (padding included), so callers never special-case unknown ids.

    Args:
      ids: the ids whose text is stored, in the order of ``set_vectors``.
      text_dim: the encoder's output size.

    Call: ids of any shape (strings) → [..., text_dim] float32. ``rows``
    gives the 1-based row of each id (0 = not held).
    """

    def __init__(self, ids: Sequence[str], text_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.ids = [str(i) for i in ids]
        self.text_dim = int(text_dim)
        self.table = id_rows(self.ids)
        self.vectors = self.add_weight(name="vectors", shape=(len(self.ids) + 1, self.text_dim),
                                       initializer="zeros", trainable=False)

    def set_vectors(self, vectors):
        """Stores ``vectors`` [len(ids), text_dim], row i for ``ids[i]``.

        Raises:
          ValueError: the shape does not match the ids and ``text_dim``.
        """
        vectors = np.asarray(vectors, np.float32)
        expected = (len(self.ids), self.text_dim)
        if vectors.shape != expected:
            raise ValueError(f"{self.name}: text embeddings have shape {vectors.shape}, "
                             f"expected {expected} (ids × text_dim)")
        self.vectors.assign(np.concatenate([np.zeros((1, self.text_dim), np.float32), vectors]))

    def rows(self, ids) -> tf.Tensor:
        return self.table.lookup(tf.convert_to_tensor(ids, tf.string))

    def call(self, ids):
        return tf.gather(self.vectors, self.rows(ids))

    def get_config(self):
        return {"ids": list(self.ids), "text_dim": self.text_dim, "name": self.name}

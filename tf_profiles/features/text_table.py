"""TextTable: id → stored text embedding, zeros for an id it does not hold."""
from typing import Sequence

import numpy as np
import tensorflow as tf


class IdTable(tf.lookup.experimental.MutableHashTable):
    """A table mapping ``keys[i]`` to ``values[i]`` (default i + 1), anything else to 0.

    A mutable table filled once, not a StaticHashTable: a SavedModel stores
    its contents with the variables, whereas a static table's keys become
    constants in saved_model.pb, which cannot exceed 2 GB (a few million
    users would break the export). Its default 0 is our "not held" row.

    Args:
      keys: ids (strings), or int64 keys.
      values: int64, same length; default 1..len(keys).
    """

    def __init__(self, keys: Sequence, values=None):
        keys = np.asarray(list(keys), dtype=object if not len(keys) or isinstance(
            keys[0], str) else np.int64)
        super().__init__(tf.string if keys.dtype == object else tf.int64, tf.int64,
                         default_value=0)
        if len(keys):
            self.insert(tf.constant(keys, self.key_dtype),
                        tf.constant(np.arange(1, len(keys) + 1) if values is None else values,
                                    tf.int64))

    def lookup(self, keys, dynamic_default_values=None, name=None):
        # A mutable table's lookup loses the static shape, which Keras
        # layers downstream need.
        keys = tf.convert_to_tensor(keys, self.key_dtype)
        rows = super().lookup(keys, name=name)
        rows.set_shape(keys.shape)
        return rows


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
        self.table = IdTable(self.ids)
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
        return self.table.lookup(ids)

    def call(self, ids):
        return tf.gather(self.vectors, self.rows(ids))

    def get_config(self):
        return {"ids": list(self.ids), "text_dim": self.text_dim, "name": self.name}

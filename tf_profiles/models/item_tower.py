"""Item tower: item id + the BERT embedding of the item's text → one vector."""
from typing import List

import tensorflow as tf

from tf_profiles.data import schema
from tf_profiles.models.text_table import fill_text_table, stored_or_given_text


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class ItemTower(tf.keras.Model):
    """Embeds items from their id and their text.

    The frozen encoder's text embedding of every catalogue item is stored in
    a non-trainable table (``set_text_embeddings``), so a known item needs
    only its id. An item outside the vocabulary gets no id embedding and is
    embedded through the text embedding given with it alone: that is how a
    new item is recommended before anyone touched it.

    Args:
      item_ids: the vocabulary.
      text_dim: the text encoder's output size.
      embedding_dim: output size.
      id_dropout: in training, the probability of dropping an item's id
        embedding, which teaches the text path to stand on its own (cold start).

    Call inputs:
      a string tensor of ids (any shape), or a dict with ``item_id`` [...] and
      optionally ``item_text_embedding`` [..., text_dim], where an all-zero
      row means "use the stored text".
    """

    def __init__(self, item_ids: List[str], text_dim: int, embedding_dim: int = 64,
                 id_dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.item_ids = [str(i) for i in item_ids]
        self.text_dim = text_dim
        self.embedding_dim = embedding_dim
        self.id_dropout = id_dropout
        # Index 0: ids the model has never seen (their id embedding is unused).
        self.lookup = tf.keras.layers.StringLookup(
            vocabulary=self.item_ids, num_oov_indices=1, mask_token=None)
        vocab_size = len(self.item_ids) + 1
        self.id_embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.text_table = self.add_weight(
            name="text_table", shape=(vocab_size, text_dim),
            initializer="zeros", trainable=False)
        self.text_projection = tf.keras.Sequential([
            tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
            tf.keras.layers.Dense(embedding_dim),
        ], name="text_projection")

    def set_text_embeddings(self, embeddings):
        """Stores the text embeddings of ``item_ids`` (same order), [N, text_dim]."""
        fill_text_table(self.text_table, embeddings, "item")

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            item_ids, text_override = inputs[schema.ITEM_ID], inputs.get(
                schema.ITEM_TEXT_EMBEDDING)
        else:
            item_ids, text_override = inputs, None
        index = self.lookup(item_ids)
        text = stored_or_given_text(self.text_table, index, text_override)  # [..., text_dim]
        if training and self.id_dropout > 0:
            dropped = tf.random.uniform(tf.shape(index)) < self.id_dropout
            index = tf.where(dropped, tf.zeros_like(index), index)
        # The OOV row is not used: an unseen (or dropped-out) id contributes
        # nothing, so such an item is embedded by its text alone rather than
        # shifted towards a generic "unknown item" vector.
        known = tf.cast(index > 0, self.compute_dtype)[..., tf.newaxis]
        return self.id_embedding(index) * known + self.text_projection(text)

    # Keras rebuilds a reloaded model from its input shape, which cannot say
    # "strings"; building on a real (empty) id does.
    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self(tf.constant([schema.PADDING_ID]))

    def get_config(self):
        return {"item_ids": list(self.item_ids), "text_dim": self.text_dim,
                "embedding_dim": self.embedding_dim, "id_dropout": self.id_dropout,
                "name": self.name}

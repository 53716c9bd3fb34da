"""User tower: the profile vector from id, text, and the ordered recent history."""
from typing import List

import tensorflow as tf

from tf_profiles.data import schema
from tf_profiles.models.text_table import fill_text_table, stored_or_given_text


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class UserTower(tf.keras.Model):
    """Fuses a user's id, text and recent behaviour into one vector.

    The history arrives as item-tower outputs, so the profile follows new
    behaviour without retraining: pass a new history, get a new vector.
    History is read as a sequence (self-attention with a learned embedding of
    each event's recency and of its rating), and the most recent event's
    contextual state summarises it: on MovieLens the next item is strongly
    predicted by the last few, which a mean over history cannot express.

    Args:
      user_ids: the vocabulary (unknown users share an OOV row).
      text_dim: the text encoder's output size.
      embedding_dim: output size; equals the item tower's.
      max_history: longest history read.
      num_layers, num_heads: self-attention blocks over the history.
      dropout: dropout rate in the attention blocks and the fusion.

    Call inputs (dict):
      user_id [B]; history_embeddings [B, H, D]; history_mask [B, H] bool;
      history_rating [B, H] (0 = unknown); optional user_text_embedding
      [B, text_dim], all-zero rows meaning "use the stored text".
    """

    def __init__(self, user_ids: List[str], text_dim: int, embedding_dim: int = 64,
                 max_history: int = 50, num_layers: int = 2, num_heads: int = 2,
                 dropout: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.user_ids = [str(u) for u in user_ids]
        self.text_dim = text_dim
        self.embedding_dim = embedding_dim
        self.max_history = max_history
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.dropout = dropout
        self.lookup = tf.keras.layers.StringLookup(
            vocabulary=self.user_ids, num_oov_indices=1, mask_token=None)
        vocab_size = len(self.user_ids) + 1
        self.id_embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.text_table = self.add_weight(
            name="text_table", shape=(vocab_size, text_dim),
            initializer="zeros", trainable=False)
        self.text_projection = tf.keras.layers.Dense(embedding_dim, name="text_projection")
        self.recency_embedding = tf.keras.layers.Embedding(max_history, embedding_dim)
        self.rating_projection = tf.keras.layers.Dense(embedding_dim, name="rating_projection")
        self.input_norm = tf.keras.layers.LayerNormalization()
        self.attention = [tf.keras.layers.MultiHeadAttention(
            num_heads, embedding_dim // num_heads, dropout=dropout) for _ in range(num_layers)]
        self.attention_norm = [tf.keras.layers.LayerNormalization() for _ in range(num_layers)]
        self.feed_forward = [tf.keras.Sequential([
            tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
            tf.keras.layers.Dense(embedding_dim), tf.keras.layers.Dropout(dropout)])
            for _ in range(num_layers)]
        self.feed_forward_norm = [tf.keras.layers.LayerNormalization() for _ in range(num_layers)]
        self.fusion = tf.keras.Sequential([
            tf.keras.layers.Dropout(dropout),
            tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
            tf.keras.layers.Dense(embedding_dim)], name="fusion")

    def set_text_embeddings(self, embeddings):
        """Stores the text embeddings of ``user_ids`` (same order), [N, text_dim]."""
        fill_text_table(self.text_table, embeddings, "user")

    def _encode_history(self, history, mask, rating, training):
        history = tf.cast(history, self.compute_dtype)
        mask_float = tf.cast(mask, history.dtype)  # [B, H]
        # Recency rank: 0 for the most recent real event, wherever padding stands.
        recency = tf.cumsum(mask_float, axis=1, reverse=True) - 1.0
        recency = tf.cast(tf.clip_by_value(recency, 0.0, self.max_history - 1.0), tf.int32)
        rating_features = tf.stack(
            [tf.cast(rating, history.dtype) / 5.0, tf.cast(rating > 0, history.dtype)], -1)
        states = self.input_norm(history + self.recency_embedding(recency)
                                 + self.rating_projection(rating_features))
        states *= mask_float[..., tf.newaxis]
        attention_mask = tf.logical_and(mask[:, :, tf.newaxis], mask[:, tf.newaxis, :])
        for attention, norm, feed_forward, ff_norm in zip(
                self.attention, self.attention_norm, self.feed_forward,
                self.feed_forward_norm):
            attended = attention(states, states, attention_mask=attention_mask,
                                 training=training)
            states = norm(states + attended)
            states = ff_norm(states + feed_forward(states, training=training))
        # The most recent real event's state; zeros for an empty history.
        positions = tf.range(tf.shape(mask)[1])[tf.newaxis, :]
        last = tf.reduce_max(tf.where(mask, positions, -1), axis=1)  # [B]
        last_state = tf.gather(states, tf.maximum(last, 0), batch_dims=1)
        return last_state * tf.cast(last >= 0, states.dtype)[:, tf.newaxis]

    def call(self, inputs, training=False):
        index = self.lookup(inputs[schema.USER_ID])
        text = stored_or_given_text(self.text_table, index, inputs.get(schema.USER_TEXT_EMBEDDING))
        history = self._encode_history(
            inputs["history_embeddings"], inputs["history_mask"],
            inputs[schema.HISTORY_RATING], training)
        fused = tf.concat([history, self.id_embedding(index),
                           self.text_projection(text)], axis=-1)
        return history + self.fusion(fused, training=training)

    # See ItemTower.get_build_config.
    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self({schema.USER_ID: tf.constant([schema.PADDING_ID]),
              "history_embeddings": tf.zeros((1, 1, self.embedding_dim)),
              "history_mask": tf.zeros((1, 1), tf.bool),
              schema.HISTORY_RATING: tf.zeros((1, 1))})

    def get_config(self):
        return {"user_ids": list(self.user_ids), "text_dim": self.text_dim,
                "embedding_dim": self.embedding_dim, "max_history": self.max_history,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "dropout": self.dropout, "name": self.name}

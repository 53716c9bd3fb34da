"""User tower: the profile vector from ID, text and the ordered recent history."""
import tensorflow as tf

from tf_profiles.data.schema import RATING_SCALE
from tf_profiles.features import spec


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class UserTower(tf.keras.Model):
    """Fuses a user's ID, text and recent behaviour into one vector.

    The history arrives as item-tower outputs, so the profile follows new
    behaviour without retraining: pass a new history, get a new vector.
    History is read as a sequence (self-attention with a learned embedding of
    each event's position and of its rating), and the most recent event's
    contextual state summarises it: on MovieLens the next item is strongly
    predicted by the last few, which a mean over history cannot express.

    A ``causal`` tower lets each event attend only to itself and the events
    before it, and numbers positions from the oldest event of the window, so
    the state at every position is the profile of the user as they were
    then (:meth:`every_position`): one pass over a sequence trains a
    prediction of each next event (SASRec's recipe). Its last state is the
    same computation for serving. A bidirectional tower (``causal=False``)
    reads the whole history at once and numbers positions by recency; it
    can only be trained one target event per example.

    Args:
      vocabulary_size: users with an ID embedding (indices 1..N; 0 = unknown,
        an OOV row shared by every unknown user).
      text_dim: the text embedding's size.
      embedding_dim: output size; equals the item tower's.
      max_history: longest history read.
      num_layers, num_heads: self-attention blocks over the history.
      dropout: dropout rate in the attention blocks and the fusion.
      causal: causal attention, positions counted from the oldest event.
      id_dropout: in training, the probability of reading a user as unknown
        (index 0), so that row 0 is a trained "user we do not know" (every
        user outside the vocabulary, at serving, gets it) rather than a
        random vector.
      use_id, use_text, use_history: which inputs the tower reads (ablations;
        without the history it is a static user model, with the history alone
        a sequential model of items).

    Raises:
      ValueError: no input is used.

    Call inputs (dict): ``spec.USER_INDEX`` [B] int; ``spec.USER_TEXT_EMBEDDING``
    [B, text_dim]; ``spec.HISTORY_EMBEDDINGS`` [B, H, D]; ``spec.HISTORY_MASK``
    [B, H] bool; ``spec.HISTORY_RATING`` [B, H] (0 = unknown).
    """

    def __init__(self, vocabulary_size: int, text_dim: int, embedding_dim: int = 64,
                 max_history: int = 100, num_layers: int = 2, num_heads: int = 2,
                 dropout: float = 0.2, use_id: bool = True, use_text: bool = True,
                 use_history: bool = True, causal: bool = False, id_dropout: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not (use_id or use_text or use_history):
            raise ValueError("UserTower needs use_id, use_text or use_history: "
                             "it has no other input")
        self.vocabulary_size, self.text_dim = int(vocabulary_size), int(text_dim)
        self.embedding_dim, self.max_history = int(embedding_dim), max_history
        self.num_layers, self.num_heads, self.dropout = num_layers, num_heads, dropout
        self.use_id, self.use_text = bool(use_id), bool(use_text)
        self.use_history = bool(use_history)
        self.causal, self.id_dropout = bool(causal), float(id_dropout)
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"UserTower id_dropout must be in [0, 1), got {id_dropout}")
        if self.use_id:
            self.id_embedding = tf.keras.layers.Embedding(self.vocabulary_size + 1,
                                                          embedding_dim)
        if self.use_text:
            self.text_projection = tf.keras.layers.Dense(embedding_dim,
                                                         name="text_projection")
        if self.use_history:
            self._build_history_layers()
        self.fusion = tf.keras.Sequential([
            tf.keras.layers.Dropout(dropout),
            tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
            tf.keras.layers.Dense(embedding_dim)], name="fusion")

    def _build_history_layers(self):
        embedding_dim, num_heads, dropout = self.embedding_dim, self.num_heads, self.dropout
        # Named by what it counts: the recency rank (bidirectional) or the
        # position from the window's oldest event (causal).
        self.position_embedding = tf.keras.layers.Embedding(
            self.max_history, embedding_dim,
            name="position_embedding" if self.causal else "recency_embedding")
        self.rating_projection = tf.keras.layers.Dense(embedding_dim, name="rating_projection")
        self.input_norm = tf.keras.layers.LayerNormalization()
        self.attention = [tf.keras.layers.MultiHeadAttention(
            num_heads, embedding_dim // num_heads, dropout=dropout)
            for _ in range(self.num_layers)]
        self.attention_norm = [tf.keras.layers.LayerNormalization()
                               for _ in range(self.num_layers)]
        self.feed_forward = [tf.keras.Sequential([
            tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
            tf.keras.layers.Dense(embedding_dim), tf.keras.layers.Dropout(dropout)])
            for _ in range(self.num_layers)]
        self.feed_forward_norm = [tf.keras.layers.LayerNormalization()
                                  for _ in range(self.num_layers)]

    def _encode_history(self, history, mask, rating, training):
        """[B, H, D] contextual state of every history slot (zeros at padding)."""
        history = tf.cast(history, self.compute_dtype)
        mask_float = tf.cast(mask, history.dtype)  # [B, H]
        if self.causal:
            # 0 for the oldest real event of the window: the same number at
            # every step of a sequence whatever comes after it.
            position = tf.cumsum(mask_float, axis=1) - 1.0
        else:
            # Recency rank: 0 for the most recent real event.
            position = tf.cumsum(mask_float, axis=1, reverse=True) - 1.0
        position = tf.cast(tf.clip_by_value(position, 0.0, self.max_history - 1.0), tf.int32)
        rating_features = tf.stack(
            [tf.cast(rating, history.dtype) / RATING_SCALE[1],
             tf.cast(rating > 0, history.dtype)], -1)
        states = self.input_norm(history + self.position_embedding(position)
                                 + self.rating_projection(rating_features))
        states *= mask_float[..., tf.newaxis]
        attention_mask = tf.logical_and(mask[:, :, tf.newaxis], mask[:, tf.newaxis, :])
        if self.causal:
            width = tf.shape(mask)[1]
            earlier = tf.linalg.band_part(tf.ones([width, width], tf.bool), -1, 0)  # [H, H]
            attention_mask = tf.logical_and(attention_mask, earlier[tf.newaxis])
        for attention, norm, feed_forward, ff_norm in zip(
                self.attention, self.attention_norm, self.feed_forward,
                self.feed_forward_norm):
            attended = attention(states, states, attention_mask=attention_mask,
                                 training=training)
            states = norm(states + attended)
            states = ff_norm(states + feed_forward(states, training=training))
        return states * mask_float[..., tf.newaxis]

    def _user_parts(self, inputs, training):
        """The ID and text parts, [B, ·] each."""
        parts = []
        if self.use_id:
            index = inputs[spec.USER_INDEX]
            if training and self.id_dropout > 0:
                dropped = tf.random.uniform(tf.shape(index)) < self.id_dropout
                index = tf.where(dropped, tf.zeros_like(index), index)
            parts.append(self.id_embedding(index))
        if self.use_text:
            text = tf.cast(inputs[spec.USER_TEXT_EMBEDDING], self.compute_dtype)
            parts.append(self.text_projection(text))
        return parts

    def _fuse(self, history, parts, training):
        # The history state is a residual path: the profile starts from what
        # the user just did and the fusion adjusts it by who they are.
        if history is not None:
            parts = [history] + parts
        fused = self.fusion(tf.concat(parts, axis=-1), training=training)
        return history + fused if history is not None else fused

    def call(self, inputs, training=False):
        parts = self._user_parts(inputs, training)
        if not self.use_history:
            return self._fuse(None, parts, training)
        mask = inputs[spec.HISTORY_MASK]
        states = self._encode_history(inputs[spec.HISTORY_EMBEDDINGS], mask,
                                      inputs[spec.HISTORY_RATING], training)
        # The most recent real event's state; zeros for an empty history.
        positions = tf.range(tf.shape(mask)[1])[tf.newaxis, :]
        last = tf.reduce_max(tf.where(mask, positions, -1), axis=1)  # [B]
        last_state = tf.gather(states, tf.maximum(last, 0), batch_dims=1)
        return self._fuse(last_state, parts, training)

    def every_position(self, inputs, training=False):
        """[B, H, D]: at each history slot, the profile after that slot's event
        (what :meth:`call` returns for the history cut there). Causal towers only.

        Raises:
          ValueError: the tower is not causal or does not read the history
            (the state at a slot would see later events, or there is none).
        """
        if not (self.causal and self.use_history):
            raise ValueError("every_position needs a causal tower that reads the history")
        states = self._encode_history(inputs[spec.HISTORY_EMBEDDINGS], inputs[spec.HISTORY_MASK],
                                      inputs[spec.HISTORY_RATING], training)
        width = tf.shape(states)[1]
        parts = [tf.repeat(part[:, tf.newaxis, :], width, axis=1)
                 for part in self._user_parts(inputs, training)]
        return self._fuse(states, parts, training)

    # See ItemTower.get_build_config.
    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self({spec.USER_INDEX: tf.zeros([1], tf.int64),
              spec.USER_TEXT_EMBEDDING: tf.zeros([1, self.text_dim]),
              spec.HISTORY_EMBEDDINGS: tf.zeros((1, 1, self.embedding_dim)),
              spec.HISTORY_MASK: tf.zeros((1, 1), tf.bool),
              spec.HISTORY_RATING: tf.zeros((1, 1))})

    def get_config(self):
        return {"vocabulary_size": self.vocabulary_size, "text_dim": self.text_dim,
                "embedding_dim": self.embedding_dim, "max_history": self.max_history,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "dropout": self.dropout, "use_id": self.use_id, "use_text": self.use_text,
                "use_history": self.use_history, "causal": self.causal,
                "id_dropout": self.id_dropout, "name": self.name}

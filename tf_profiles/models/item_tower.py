"""Item tower: an item's ID embedding + its text embedding → one vector."""
import tensorflow as tf

from tf_profiles.features import spec


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class ItemTower(tf.keras.Model):
    """Embeds items from their ID index and their text embedding.

    An item outside the vocabulary (index 0) gets no ID embedding and is
    embedded through its text alone: that is how a new item is recommended
    before anyone touched it.

    Args:
      vocabulary_size: items with an ID embedding (indices 1..N).
      text_dim: the text embedding's size.
      embedding_dim: output size.
      id_dropout: in training, the probability of dropping an item's ID
        embedding, which teaches the text path to stand on its own (cold start).
      use_id, use_text: which inputs the tower reads (ablations: an ID-only
        tower is the classic ID model, a text-only one a content model).
      use_bias: also output the item's bias (its popularity prior) as one
        more column, an ID part plus a text part, so that a new item gets its
        bias from its text. The model joins it to the unit item vector and a
        constant 1 to the user vector: the score stays a dot product.

    Raises:
      ValueError: neither input is used.

    Call inputs (dict, any leading shape): ``spec.ITEM_INDEX`` [...] int and
    ``spec.ITEM_TEXT_EMBEDDING`` [..., text_dim], as the Preprocessor makes them.
    Returns [..., embedding_dim], or [..., embedding_dim + 1] with the bias last.
    """

    def __init__(self, vocabulary_size: int, text_dim: int, embedding_dim: int = 64,
                 id_dropout: float = 0.1, use_id: bool = True, use_text: bool = True,
                 use_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not (use_id or use_text):
            raise ValueError("ItemTower needs use_id or use_text: it has no other input")
        self.vocabulary_size, self.text_dim = int(vocabulary_size), int(text_dim)
        self.embedding_dim, self.id_dropout = int(embedding_dim), id_dropout
        self.use_id, self.use_text = bool(use_id), bool(use_text)
        self.use_bias = bool(use_bias)
        if self.use_id:
            # The bias is an extra column of the ID embedding (zero at the
            # start: no prior until training finds one).
            self.id_embedding = tf.keras.layers.Embedding(self.vocabulary_size + 1,
                                                          embedding_dim)
            if self.use_bias:
                self.id_bias = tf.keras.layers.Embedding(self.vocabulary_size + 1, 1,
                                                         embeddings_initializer="zeros",
                                                         name="id_bias")
        if self.use_text:
            self.text_projection = tf.keras.Sequential([
                tf.keras.layers.Dense(2 * embedding_dim, activation="gelu"),
                tf.keras.layers.Dense(embedding_dim),
            ], name="text_projection")
            if self.use_bias:
                # No intercept: a shift shared by every item changes no softmax
                # and no ranking, so its gradient is noise that Adam amplifies.
                self.text_bias = tf.keras.layers.Dense(1, use_bias=False,
                                                       kernel_initializer="zeros",
                                                       name="text_bias")

    def call(self, inputs, training=False):
        index = inputs[spec.ITEM_INDEX]
        text = tf.cast(inputs[spec.ITEM_TEXT_EMBEDDING], self.compute_dtype)
        output = tf.zeros(tf.concat([tf.shape(index), [self.embedding_dim]], 0),
                          self.compute_dtype)
        bias = tf.zeros(tf.concat([tf.shape(index), [1]], 0), self.compute_dtype)
        if self.use_id:
            # ID dropout only teaches the text path to stand alone: without
            # text it would just blank items.
            if training and self.id_dropout > 0 and self.use_text:
                dropped = tf.random.uniform(tf.shape(index)) < self.id_dropout
                index = tf.where(dropped, tf.zeros_like(index), index)
            # Row 0 is not used: an unseen (or dropped-out) id contributes
            # nothing, so such an item is embedded by its text alone rather
            # than shifted towards a generic "unknown item" vector.
            known = tf.cast(index > 0, self.compute_dtype)[..., tf.newaxis]
            output += self.id_embedding(index) * known
            if self.use_bias:
                bias += self.id_bias(index) * known
        if self.use_text:
            output += self.text_projection(text)
            if self.use_bias:
                bias += self.text_bias(text)
        return tf.concat([output, bias], axis=-1) if self.use_bias else output

    # Keras rebuilds a reloaded model from its input shape, which cannot
    # describe a dict of features; building on one padding item does.
    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self({spec.ITEM_INDEX: tf.zeros([1], tf.int64),
              spec.ITEM_TEXT_EMBEDDING: tf.zeros([1, self.text_dim])})

    def get_config(self):
        return {"vocabulary_size": self.vocabulary_size, "text_dim": self.text_dim,
                "embedding_dim": self.embedding_dim, "id_dropout": self.id_dropout,
                "use_id": self.use_id, "use_text": self.use_text, "use_bias": self.use_bias,
                "name": self.name}

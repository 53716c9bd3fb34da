"""Preprocessor: raw ids and strings → the dense features the towers read.

Training, evaluation, profile building, explanations and the servable all
turn raw inputs into features here, so a profile stored in the profile
store and one computed online for the same state are the same computation.
"""
import contextlib
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_profiles.features import spec
from tf_profiles.features.history import compact_history
from tf_profiles.features.text_table import IdTable, TextTable
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.sentiment import SentimentHead


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class Preprocessor(tf.keras.layers.Layer):
    """Owns everything between raw inputs and the towers.

    It holds the ID vocabularies (which ids own an ID embedding), the text
    tables (the stored text embedding of every catalogue item and user), the
    one text encoder (frozen or fine-tuned: request and example text goes
    through it), the users' stored latest histories and ratings, and the
    rules that combine them: history compaction, the stored history when a
    request sends none, the stored rating of each history item, the stored
    text when a request sends "".

    Args:
      item_vocabulary, user_vocabulary: ids with an ID embedding; index i + 1
        in the towers (0: none).
      text_dim: the encoder's output size.
      max_history: history events the user tower reads.
      encoder: the :class:`TextEncoder` for text that comes with examples or
        requests; None: text comes only from the tables.
      item_catalogue: items whose text is stored (default: the vocabulary).
      user_catalogue: users whose text, history and ratings are stored
        (default: the vocabulary).
      sentiment: a :class:`SentimentHead` over ``encoder``'s vectors: the
        rating an event's text implies where the event has none (see
        :mod:`tf_profiles.features.feedback`); None: text gives no feedback.

    Call inputs: a dict of raw features (``spec.USER_ID``, ``spec.HISTORY``,
    optional ``spec.HISTORY_RATING`` and ``spec.USER_TEXT``; and/or
    ``spec.ITEM_ID`` and optional ``spec.ITEM_TEXT``); returns the union of
    :meth:`user_features` and :meth:`item_features`.
    """

    def __init__(self, item_vocabulary: Sequence[str], user_vocabulary: Sequence[str],
                 text_dim: int, max_history: int, encoder: Optional[TextEncoder] = None,
                 item_catalogue: Optional[Sequence[str]] = None,
                 user_catalogue: Optional[Sequence[str]] = None,
                 sentiment: Optional[SentimentHead] = None, **kwargs):
        # Features stay float32 under a mixed_float16 policy (the towers cast
        # what they read); only the encoder may compute in float16.
        super().__init__(dtype="float32", **kwargs)
        self.item_vocabulary = [str(i) for i in item_vocabulary]
        self.user_vocabulary = [str(u) for u in user_vocabulary]
        self.text_dim = int(text_dim)
        self.max_history = int(max_history)
        self.encoder = encoder
        self.sentiment = sentiment
        if sentiment is not None:
            # Fitted on labelled reviews; the recommender's training must not move it.
            sentiment.trainable = False
            if not sentiment.built:
                # Weights exist before a saved model's weights are loaded into them.
                sentiment.build([None, self.text_dim])
        self.item_catalogue = None if item_catalogue is None else [str(i) for i in item_catalogue]
        self.user_catalogue = None if user_catalogue is None else [str(u) for u in user_catalogue]
        self.item_text = TextTable(self.item_catalogue if item_catalogue is not None
                                   else self.item_vocabulary, self.text_dim, name="item_text",
                                   dtype="float32")
        self.user_text = TextTable(self.user_catalogue if user_catalogue is not None
                                   else self.user_vocabulary, self.text_dim, name="user_text",
                                   dtype="float32")
        self.item_index = IdTable(self.item_vocabulary)
        self.user_index = IdTable(self.user_vocabulary)
        # The ITEM_INDEX of each catalogue row, for stored histories (kept as
        # rows): a table, since it is derived from the configuration (not a
        # weight) and a graph constant would count against saved_model.pb's
        # 2 GB limit.
        self.catalogue_item_index = IdTable(
            np.arange(1, len(self.item_text.ids) + 1),
            self.item_index.lookup(tf.constant(self.item_text.ids, tf.string,
                                               shape=[len(self.item_text.ids)])))
        users = len(self.user_text.ids) + 1
        # Each stored user's latest events as item-catalogue rows (0: padding).
        self.stored_history = self.add_weight(
            name="stored_history", shape=(users, self.max_history), dtype="int64",
            initializer="zeros", trainable=False)
        self.stored_rating = self.add_weight(
            name="stored_rating", shape=(users, self.max_history), initializer="zeros",
            trainable=False)
        # Set by known_texts() for one block only; object.__setattr__ keeps
        # Keras from tracking it, so it is never saved with the model.
        object.__setattr__(self, "_known_texts", None)
        object.__setattr__(self, "_tracing_generation", 0)
        self.built = True

    # === State ===

    def set_item_text(self, vectors):
        """Text embeddings of the item catalogue, [len(catalogue), text_dim]."""
        self.item_text.set_vectors(vectors)

    def set_users(self, text, history=None, history_rating=None):
        """Stored state of the user catalogue, row i for its user i.

        Args:
          text: [U, text_dim] text embeddings.
          history, history_rating: [U, max_history] latest item ids (oldest
            first, padding first) and their ratings; items outside the item
            catalogue are dropped from the stored history.
        """
        self.user_text.set_vectors(text)
        if history is None:
            return
        history = np.asarray(history, dtype=object)
        expected = (len(self.user_text.ids), self.max_history)
        if history.shape != expected or np.shape(history_rating) != expected:
            raise ValueError(f"stored histories have shape {history.shape} and ratings "
                             f"{np.shape(history_rating)}, expected {expected} "
                             "(users × max_history)")
        rows = self.item_text.rows(history.astype(str)).numpy()
        rating = np.where(rows > 0, np.asarray(history_rating, np.float32), 0.0)
        self.stored_history.assign(np.concatenate([np.zeros((1, self.max_history), np.int64),
                                                   rows]))
        self.stored_rating.assign(np.concatenate(
            [np.zeros((1, self.max_history), np.float32), rating]).astype(np.float32))

    def with_state(self, item_catalogue: Sequence[str], item_text,
                   user_catalogue: Sequence[str] = (), user_text=None, history=None,
                   history_rating=None) -> "Preprocessor":
        """The same vocabularies and encoder over another catalogue and stored users
        (e.g. the items and profiles of a profile store, for serving)."""
        other = type(self)(self.item_vocabulary, self.user_vocabulary, self.text_dim,
                           self.max_history, self.encoder, list(item_catalogue),
                           list(user_catalogue), self.sentiment, name=self.name)
        other.set_item_text(item_text)
        if len(other.user_text.ids):
            other.set_users(user_text, history, history_rating)
        return other

    @contextlib.contextmanager
    def known_texts(self, texts: Sequence[str], vectors):
        """Within the block, ``texts`` embed as ``vectors`` instead of going through
        the encoder; other texts still do.

        For training with pseudo-queries (:mod:`tf_profiles.features.queries`):
        embedded once beforehand (``embed_texts``, cached) instead of once per
        batch, which made a CPU training step 1.66× as long. The result is the
        same computation, because a frozen encoder runs request text in
        inference mode (see :meth:`_text`) and ``embed_texts`` calls that
        same encoder; a trainable encoder would move away from the vectors
        after one step, so it is refused. Nothing of it is saved with the
        model, and functions traced inside the block (Keras's train
        function) keep it: retrace them (``model.train_function = None``)
        before using them again.

        Args:
          texts: [Q] distinct strings ("" is the stored text; it is not looked up).
          vectors: [Q, text_dim] what the encoder computes for them.

        Raises:
          ValueError: no encoder, a trainable encoder, or shapes that disagree.
        """
        if self.encoder is None or self.encoder.trainable_layers:
            raise ValueError("known_texts needs a frozen encoder: a trainable one stops "
                             "computing the given vectors after one training step")
        texts = [str(t) for t in texts]
        vectors = np.asarray(vectors, np.float32)
        if vectors.shape != (len(texts), self.text_dim) or len(set(texts)) != len(texts):
            raise ValueError(f"known_texts: {len(texts)} texts ({len(set(texts))} distinct) "
                             f"and vectors of shape {vectors.shape}; expected distinct texts "
                             f"and [{len(texts)}, {self.text_dim}]")
        table = IdTable(texts)  # text → row of the vectors below (0: not known)
        rows = tf.constant(np.concatenate([np.zeros((1, self.text_dim), np.float32), vectors]))
        previous = self._known_texts
        object.__setattr__(self, "_known_texts", (table, rows))
        object.__setattr__(self, "_tracing_generation", self._tracing_generation + 1)
        try:
            yield self
        finally:
            object.__setattr__(self, "_known_texts", previous)
            object.__setattr__(self, "_tracing_generation", self._tracing_generation + 1)

    @property
    def tracing_generation(self) -> int:
        """Changes whenever functions traced before must not be reused (entering
        or leaving :meth:`known_texts`): a key for caches of traced functions."""
        return self._tracing_generation

    # === Features ===

    def user_rows(self, user_id) -> tf.Tensor:
        """The 1-based row of each user in the user catalogue (0: not stored)."""
        return self.user_text.rows(user_id)

    def _text(self, texts, stored, training=None):
        # "" keeps the stored text; other strings go through the encoder,
        # each distinct string once (a batch of users often shares texts).
        if texts is None:
            return stored
        if self.encoder is None:
            raise ValueError("raw text was given but this Preprocessor has no encoder")
        texts = tf.convert_to_tensor(texts, tf.string)
        present = tf.not_equal(texts, "")
        unique, index = tf.unique(tf.boolean_mask(texts, present))
        # A frozen encoder runs as it did when the stored texts were embedded
        # (no dropout), or a training query would embed unlike a served one.
        training = training if self.encoder.trainable_layers else False
        if self._known_texts is None:
            encoded = self._encode(unique, training)
        else:
            table, known = self._known_texts
            rows = table.lookup(unique)  # [U], 0 for a text not known
            unknown = tf.where(tf.equal(rows, 0))  # [M, 1]
            encoded = tf.tensor_scatter_nd_update(
                tf.gather(known, rows), unknown,
                self._encode(tf.gather_nd(unique, unknown), training))
        shape = tf.stack([tf.shape(texts, out_type=tf.int64)[0], self.text_dim])
        given = tf.scatter_nd(tf.where(present), tf.gather(encoded, index), shape)
        return tf.where(present[:, tf.newaxis], given, stored)

    def _encode(self, texts, training):
        # BERT cannot run on an empty batch, and most requests carry no text.
        return tf.cond(
            tf.size(texts) > 0,
            lambda: tf.cast(self.encoder(texts, training=training), tf.float32),
            lambda: tf.zeros([0, self.text_dim], tf.float32))

    def positive_probability(self, texts) -> tf.Tensor:
        """[B] strings → [B] P(the text is positive) by the sentiment head (NaN for "").

        Raises:
          ValueError: this Preprocessor has no sentiment head or no encoder.
        """
        if self.sentiment is None or self.encoder is None:
            raise ValueError("this model has no sentiment head (it was trained without "
                             "event text)")
        texts = tf.convert_to_tensor(texts, tf.string)
        probability = self.sentiment(self._text(texts, tf.zeros(
            tf.stack([tf.size(texts), self.text_dim]))))
        return tf.where(tf.equal(texts, ""), float("nan"), probability)

    def item_vocabulary_ids(self) -> tf.Tensor:
        """[N] the items with an ID embedding, in index order (index i + 1)."""
        return tf.constant(self.item_vocabulary, tf.string)

    def item_features(self, item_id, item_text=None, training=None) -> dict:
        """Items (ids of any shape; ``item_text`` only for [B] ids) → ``spec.ITEM_INDEX``
        and ``spec.ITEM_TEXT_EMBEDDING``."""
        rows = self.item_text.rows(item_id)
        return {spec.ITEM_INDEX: self.item_index.lookup(item_id),
                spec.ITEM_TEXT_EMBEDDING: self._text(
                    item_text, tf.gather(self.item_text.vectors, rows), training)}

    def _stored_rating_of(self, request_rows, stored_rows, stored_rating):
        # The rating of each request item in the user's stored history (its
        # latest occurrence there), 0 for items it does not hold.
        match = tf.logical_and(
            tf.equal(request_rows[:, :, tf.newaxis], stored_rows[:, tf.newaxis, :]),
            (request_rows > 0)[:, :, tf.newaxis])  # [B, H, H]
        positions = tf.range(tf.shape(stored_rows, out_type=tf.int64)[1])
        last = tf.reduce_max(tf.where(match, positions, -1), axis=2)  # [B, H]
        rating = tf.gather(stored_rating, tf.maximum(last, 0), batch_dims=1)
        return rating * tf.cast(last >= 0, rating.dtype)

    def user_features(self, user_id, history, history_rating=None, user_text=None,
                      training=None) -> dict:
        """Users → the user tower's features and the resolved history.

        Args:
          user_id: [B]; history: [B, W] item ids, oldest first, padding
            anywhere (W may differ from max_history).
          history_rating: [B, W] ratings; None: each item's stored rating.
          user_text: [B] strings; None or "": the stored text.

        Returns:
          ``spec.USER_INDEX``, ``spec.USER_TEXT_EMBEDDING``,
          ``spec.HISTORY_ROWS`` (the item-catalogue rows read, [B, max_history]:
          the request's, or the stored history for a stored user whose request
          history is empty; 0 for padding and items outside the catalogue),
          ``spec.HISTORY_INDEX``, ``spec.HISTORY_TEXT_EMBEDDING``,
          ``spec.HISTORY_MASK``, ``spec.HISTORY_RATING``.
        """
        user_id = tf.convert_to_tensor(user_id, tf.string)
        history = tf.convert_to_tensor(history, tf.string)
        rows = self.user_rows(user_id)
        stored_rows = tf.gather(self.stored_history, rows)  # [B, H]
        stored_rating = tf.gather(self.stored_rating, rows)
        if history_rating is None:
            (history,) = compact_history(history, self.max_history)
            request_rows = self.item_text.rows(history)
            history_rating = self._stored_rating_of(request_rows, stored_rows, stored_rating)
        else:  # Keras casts a float16 model's float inputs to float16.
            history, history_rating = compact_history(
                history, self.max_history, tf.cast(history_rating, tf.float32))
            request_rows = self.item_text.rows(history)
        present = tf.not_equal(history, spec.PADDING_ID)
        empty = tf.logical_not(tf.reduce_any(present, axis=1)) & (rows > 0)
        fallback = empty[:, tf.newaxis]
        item_rows = tf.where(fallback, stored_rows, request_rows)
        return {
            spec.USER_INDEX: self.user_index.lookup(user_id),
            spec.USER_TEXT_EMBEDDING: self._text(user_text, self.user_text(user_id), training),
            spec.HISTORY_ROWS: item_rows,
            spec.HISTORY_INDEX: tf.where(
                fallback, self.catalogue_item_index.lookup(stored_rows),
                self.item_index.lookup(history)),
            spec.HISTORY_TEXT_EMBEDDING: tf.gather(self.item_text.vectors, item_rows),
            # An item outside the catalogue is still an event (it embeds by
            # its ID alone); stored histories hold catalogue rows only.
            spec.HISTORY_MASK: tf.where(fallback, stored_rows > 0, present),
            spec.HISTORY_RATING: tf.where(fallback, stored_rating, history_rating),
        }

    def call(self, inputs, training=None):
        features = {}
        if spec.USER_ID in inputs:
            features.update(self.user_features(
                inputs[spec.USER_ID], inputs[spec.HISTORY], inputs.get(spec.HISTORY_RATING),
                inputs.get(spec.USER_TEXT), training))
        if spec.ITEM_ID in inputs:
            features.update(self.item_features(inputs[spec.ITEM_ID], inputs.get(spec.ITEM_TEXT),
                                               training))
        return features

    # === Config ===

    def get_config(self):
        return {
            "item_vocabulary": list(self.item_vocabulary),
            "user_vocabulary": list(self.user_vocabulary),
            "text_dim": self.text_dim, "max_history": self.max_history,
            "encoder": (tf.keras.utils.serialize_keras_object(self.encoder)
                        if self.encoder is not None else None),
            "item_catalogue": self.item_catalogue, "user_catalogue": self.user_catalogue,
            "sentiment": (tf.keras.utils.serialize_keras_object(self.sentiment)
                          if self.sentiment is not None else None),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for layer in ("encoder", "sentiment"):
            if config.get(layer) is not None:
                config[layer] = tf.keras.utils.deserialize_keras_object(config[layer])
        return cls(**config)

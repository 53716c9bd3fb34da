"""The servable: a tf.Module whose signatures are the serving contract.

Everything a request needs is inside the SavedModel: the model with its
Preprocessor (the in-graph tokenizer and encoder, the catalogue's text, each
stored user's text, latest history and ratings), the catalogue's item-tower
embeddings, every item each stored user consumed, and each stored user's
readable profile, so the stock TF Serving model server runs it with no
custom ops (TF Text's FastBertTokenizer is linked into TF Serving ≥ 2.12).

Per-user and per-item state lives in variables and mutable tables, never in
graph constants: saved_model.pb stays the same size whatever the catalogue
and the profile store hold (a SavedModel proto cannot exceed 2 GB).
"""
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.bundle import inference
from tf_profiles.features import spec
from tf_profiles.models.ranking import top_k_excluding

USER_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.USER_ID),
                tf.TensorSpec([None, None], tf.string, name=spec.HISTORY),
                tf.TensorSpec([None], tf.string, name=spec.USER_TEXT)]
ITEM_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.ITEM_ID),
                tf.TensorSpec([None], tf.string, name=spec.ITEM_TEXT)]
LOOKUP_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.USER_ID)]
TEXT_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.TEXT)]


def _with_empty_row(values, dtype):
    # Row 0 answers every user (or item) the Preprocessor does not hold.
    values = np.asarray(values)
    empty = np.full((1,) + values.shape[1:], "" if dtype == tf.string else 0, values.dtype)
    rows = np.concatenate([empty, values])
    if dtype == tf.string:
        rows = np.vectorize(lambda v: str(v).encode("utf-8"), otypes=[object])(rows)
    return tf.Variable(rows, trainable=False, dtype=dtype)


class ServingModule(tf.Module):
    """Builds the five signatures from a model that holds the served state.

    Args:
      model: a trained :class:`TwoTowerModel` whose Preprocessor holds the
        served catalogue and stored users (:meth:`Preprocessor.with_state`).
      profiles: the readable profiles of the Preprocessor's stored users, in
        its user-catalogue order: ``profile_text`` [U], ``interests`` and
        ``interest_weights`` [U, T], ``embedding`` [U, D] (from
        :class:`ProfileBuilder`).
      k: how many items ``serving_default`` returns.
      item_embeddings: [C, D] item-tower outputs of the catalogue already
        computed (e.g. streamed by :mod:`tf_profiles.export.catalogue`);
        default: computed here, in batches.
      consumed: (user_id, item_id) of every stored event: ``serving_default``
        never recommends an item the user consumed. None: only the request's
        history (or the stored history it falls back to) is excluded, for
        catalogues where repeats are wanted.
    """

    def __init__(self, model, profiles, k: int, item_embeddings=None,
                 consumed: Optional[pd.DataFrame] = None):
        super().__init__(name="tf_profiles_servable")
        self.model = model
        item_ids = model.preprocessor.item_text.ids
        self.num_items = len(item_ids)
        self.k = min(int(k), self.num_items)
        self.max_history = model.preprocessor.max_history
        if item_embeddings is None:
            item_embeddings = inference.item_embeddings(model, item_ids)
        # The catalogue in the Preprocessor's item order: column c is row c + 1.
        self.candidates = tf.Variable(np.asarray(item_embeddings, np.float32), trainable=False)
        self.embedding_dim = int(self.candidates.shape[1])
        self.item_ids = _with_empty_row(np.asarray(item_ids, dtype=object), tf.string)
        self.exclude_consumed = consumed is not None
        if self.exclude_consumed:
            self.consumed_rows, self.consumed_splits = self._consumed_table(consumed)
        # Profiles were embedded when they were built, so a lookup is a hash
        # and a gather.
        self.profile_embedding = _with_empty_row(profiles["embedding"].astype(np.float32),
                                                 tf.float32)
        self.profile_text = _with_empty_row(profiles["profile_text"], tf.string)
        self.interests = _with_empty_row(profiles["interests"], tf.string)
        self.interest_weights = _with_empty_row(
            profiles["interest_weights"].astype(np.float32), tf.float32)

    def _consumed_table(self, consumed: pd.DataFrame):
        # Each stored user's consumed items as a ragged row of catalogue rows
        # (int32, 4 bytes per distinct (user, item) pair, and 8 per user):
        # row r of the splits is user-catalogue row r, row 0 empty.
        preprocessor = self.model.preprocessor
        users = preprocessor.user_rows(consumed["user_id"].astype(str).to_numpy()).numpy()
        items = preprocessor.item_text.rows(consumed["item_id"].astype(str).to_numpy()).numpy()
        keep = (users > 0) & (items > 0)
        pairs = np.unique(np.stack([users[keep], items[keep]], axis=1), axis=0)
        counts = np.bincount(pairs[:, 0], minlength=len(preprocessor.user_text.ids) + 1)
        splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return (tf.Variable(pairs[:, 1].astype(np.int32), trainable=False),
                tf.Variable(splits, trainable=False))

    def _excluded_columns(self, user_id, history, features):
        # Catalogue rows → score columns (row - 1; padding and unknown items → -1).
        rows = [features[spec.HISTORY_ROWS], self.model.preprocessor.item_text.rows(history)]
        if self.exclude_consumed:
            consumed = tf.RaggedTensor.from_row_splits(
                self.consumed_rows, self.consumed_splits, validate=False)
            user_rows = self.model.preprocessor.user_rows(user_id)
            rows.append(tf.cast(tf.gather(consumed, user_rows).to_tensor(0), tf.int64))
        return tf.concat(rows, axis=1) - 1

    # === Signatures ===

    @tf.function(input_signature=USER_REQUEST)
    def serve_recommendations(self, user_id, history, user_text):
        features = self.model.preprocessor.user_features(user_id, history, user_text=user_text)
        query = self.model.embed_user_features(features)
        # The whole catalogue is scored (the matmul and top-k TFRS's
        # BruteForce runs), so that a row's excluded items, however many,
        # are masked before the top-k rather than filtered after it.
        scores = tf.matmul(query, self.candidates, transpose_b=True)  # [B, C]
        columns, scores = top_k_excluding(
            scores, self._excluded_columns(user_id, history, features), self.k)
        return {"item_ids": tf.gather(self.item_ids, columns + 1),
                "scores": tf.cast(scores, tf.float32)}

    @tf.function(input_signature=USER_REQUEST)
    def serve_user_embedding(self, user_id, history, user_text):
        return {"embedding": self.model.user_embedding(
            {spec.USER_ID: user_id, spec.HISTORY: history, spec.USER_TEXT: user_text})}

    @tf.function(input_signature=ITEM_REQUEST)
    def serve_item_embedding(self, item_id, item_text):
        return {"embedding": self.model.item_embedding(
            {spec.ITEM_ID: item_id, spec.ITEM_TEXT: item_text})}

    @tf.function(input_signature=LOOKUP_REQUEST)
    def serve_lookup_profiles(self, user_id):
        rows = self.model.preprocessor.user_rows(user_id)
        return {
            "found": rows > 0,
            "embedding": tf.gather(self.profile_embedding, rows),
            "profile_text": tf.gather(self.profile_text, rows),
            "interests": tf.gather(self.interests, rows),
            "interest_weights": tf.gather(self.interest_weights, rows),
        }

    @tf.function(input_signature=TEXT_REQUEST)
    def serve_text_sentiment(self, text):
        if self.model.preprocessor.sentiment is None:
            # Same signature for every export, so clients need not ask first.
            return {"positive_probability": tf.fill(tf.shape(text), float("nan"))}
        return {"positive_probability": self.model.preprocessor.positive_probability(text)}

    def signatures(self):
        return {
            spec.SERVING_DEFAULT: self.serve_recommendations.get_concrete_function(),
            spec.USER_EMBEDDING: self.serve_user_embedding.get_concrete_function(),
            spec.ITEM_EMBEDDING: self.serve_item_embedding.get_concrete_function(),
            spec.LOOKUP_PROFILES: self.serve_lookup_profiles.get_concrete_function(),
            spec.TEXT_SENTIMENT: self.serve_text_sentiment.get_concrete_function(),
        }

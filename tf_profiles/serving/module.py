"""The servable: a tf.Module whose signatures are the serving contract.

Everything a request needs is inside the SavedModel: the towers, the text
encoder with its in-graph tokenizer, a BruteForce index over the whole
catalogue, and each known user's stored text, history and profile, so the
stock TF Serving model server runs it with no custom ops (TF Text's
FastBertTokenizer is linked into TF Serving ≥ 2.12; ScaNN is not, hence
BruteForce).
"""
import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.data import schema
from tf_profiles.evaluation.scoring import candidate_embeddings

# === Contract ===
SERVING_DEFAULT = "serving_default"
USER_EMBEDDING = "user_embedding"
ITEM_EMBEDDING = "item_embedding"
LOOKUP_PROFILES = "lookup_profiles"
SIGNATURES = (SERVING_DEFAULT, USER_EMBEDDING, ITEM_EMBEDDING, LOOKUP_PROFILES)
_RATING_KEY_SEPARATOR = "\x1f"

USER_REQUEST = [tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None, None], tf.string, name="history"),
                tf.TensorSpec([None], tf.string, name="user_text")]
ITEM_REQUEST = [tf.TensorSpec([None], tf.string, name="item_id"),
                tf.TensorSpec([None], tf.string, name="item_text")]
LOOKUP_REQUEST = [tf.TensorSpec([None], tf.string, name="user_id")]


def _row_table(keys):
    keys = [str(k) for k in keys]
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.string), tf.range(len(keys), dtype=tf.int64)),
        default_value=-1)


def _string_variable(values, name):
    encoded = np.vectorize(lambda v: str(v).encode("utf-8"), otypes=[object])(
        np.asarray(values, dtype=object))
    return tf.Variable(encoded, trainable=False, dtype=tf.string, name=name)


class ServingModule(tf.Module):
    """Builds the four signatures from a trained model and stored user state.

    Args:
      model: a trained :class:`TwoTowerModel`.
      encoder: the frozen :class:`TextEncoder` that embedded the training text.
      item_ids, item_text_embeddings: the catalogue ([C], [C, E]), including
        items the model never saw (embedded by their text, also in histories).
      users: dict of per-user arrays, all indexed alike: ``user_id`` [U],
        ``text_embedding`` [U, E] (of the stored user text),
        ``history`` [U, H] and ``history_rating`` [U, H] (latest events),
        ``profile_text`` [U], ``interests`` [U, T], ``interest_weights`` [U, T],
        ``embedding`` [U, D] (built by :class:`ProfileBuilder`).
      rated: (user_id, item_id, rating) of every known event: a request's
        history gets the stored rating of each (user, item) it names, so an
        explicit history and the stored one embed alike.
      k: how many items ``serving_default`` returns.
      item_embeddings: [C, D] item-tower outputs already computed (e.g.
        streamed by :mod:`tf_profiles.serving.catalogue`); default: computed
        here, in batches.
    """

    def __init__(self, model, encoder, item_ids, item_text_embeddings, users, rated, k: int,
                 item_embeddings=None):
        super().__init__(name="tf_profiles_servable")
        self.model = model
        self.encoder = encoder
        self.num_items = len(item_ids)
        self.k = min(int(k), self.num_items)
        self.max_history = int(users["history"].shape[1])
        if item_embeddings is None:
            # In batches: one call over a million items would hold every
            # layer's [C, width] activations at once.
            item_embeddings = candidate_embeddings(model, item_ids, item_text_embeddings)
        item_embeddings = tf.constant(item_embeddings, tf.float32)
        self.embedding_dim = int(item_embeddings.shape[1])
        self.index = tfrs.layers.factorized_top_k.BruteForce(k=self.k)
        self.index.index(item_embeddings, tf.constant(list(item_ids)))
        self.item_rows = _row_table(item_ids)
        # asarray, not astype: a float32 memmap is read straight into the variable.
        self.item_text = tf.Variable(np.asarray(item_text_embeddings, np.float32),
                                     trainable=False, name="item_text")
        self.user_rows = _row_table(users["user_id"])
        # The keys again, readable: a restored hash table cannot be listed.
        self.user_ids = _string_variable(users["user_id"], "user_ids")
        self.user_text = tf.Variable(users["text_embedding"].astype(np.float32),
                                     trainable=False, name="user_text")
        self.stored_history = _string_variable(users["history"], "stored_history")
        self.stored_rating = tf.Variable(users["history_rating"].astype(np.float32),
                                         trainable=False, name="stored_rating")
        self.profile_text = _string_variable(users["profile_text"], "profile_text")
        self.interests = _string_variable(users["interests"], "interests")
        self.interest_weights = tf.Variable(users["interest_weights"].astype(np.float32),
                                            trainable=False, name="interest_weights")
        rating_keys = [f"{u}{_RATING_KEY_SEPARATOR}{i}" for u, i in zip(rated[0], rated[1])]
        self.ratings = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(rating_keys or [""], tf.string),
                tf.constant(np.asarray(rated[2], np.float32) if rating_keys else [0.0])),
            default_value=0.0)
        # Profiles were embedded when they were built, so a lookup is a hash
        # and a gather.
        self.profile_embedding = tf.Variable(users["embedding"].astype(np.float32),
                                             trainable=False, name="profile_embedding")

    # === Helpers traced into the signatures ===

    def _embed_text(self, texts, rows, stored):
        # Encodes only non-empty strings; "" takes the text stored for a
        # known id (row ≥ 0) and stays all-zero otherwise.
        present = tf.not_equal(texts, "")
        shape = tf.stack([tf.shape(texts, out_type=tf.int64)[0],
                          tf.cast(self.encoder.output_dim, tf.int64)])
        # BERT cannot run on an empty batch, and most requests carry no text.
        encoded = tf.cond(
            tf.reduce_any(present),
            lambda: tf.scatter_nd(tf.where(present), tf.cast(
                self.encoder(tf.boolean_mask(texts, present)), tf.float32), shape),
            lambda: tf.zeros(shape, tf.float32))
        known = tf.gather(stored, tf.maximum(rows, 0)) * tf.cast(
            rows >= 0, tf.float32)[:, tf.newaxis]
        return tf.where(present[:, tf.newaxis], encoded, known)

    def _history_text(self, history):
        # [B, H] ids → [B, H, E] catalogue text; zeros for "" and unknown ids.
        rows = self.item_rows.lookup(history)
        return tf.gather(self.item_text, tf.maximum(rows, 0)) * tf.cast(
            rows >= 0, tf.float32)[..., tf.newaxis]

    def _compact_history(self, history):
        # [B, H] with "" anywhere → [B, max_history]: real events moved right
        # in their order, the oldest dropped beyond max_history.
        width = tf.shape(history)[1]
        present = tf.not_equal(history, "")
        positions = tf.broadcast_to(tf.range(width), tf.shape(history))
        order = tf.argsort(tf.where(present, positions + width, positions), axis=1, stable=True)
        compact = tf.gather(history, order, batch_dims=1)
        compact = tf.pad(compact, [[0, 0], [self.max_history, 0]], constant_values="")
        return compact[:, -self.max_history:]

    def _user_features(self, user_id, history, user_text):
        # An all-empty history row falls back to a known user's stored history.
        history = self._compact_history(history)
        rows = self.user_rows.lookup(user_id)
        empty = tf.reduce_all(tf.equal(history, ""), axis=1) & (rows >= 0)
        safe_rows = tf.maximum(rows, 0)
        request_rating = self.ratings.lookup(tf.strings.join(
            [tf.broadcast_to(user_id[:, tf.newaxis], tf.shape(history)), history],
            separator=_RATING_KEY_SEPARATOR))
        history = tf.where(empty[:, tf.newaxis], tf.gather(self.stored_history, safe_rows),
                           history)
        return {
            schema.USER_ID: user_id,
            schema.HISTORY: history,
            schema.HISTORY_RATING: tf.where(empty[:, tf.newaxis],
                                            tf.gather(self.stored_rating, safe_rows),
                                            request_rating),
            schema.USER_TEXT_EMBEDDING: self._embed_text(user_text, rows, self.user_text),
            schema.HISTORY_TEXT_EMBEDDING: self._history_text(history),
        }

    def _user_vectors(self, user_id, history, user_text):
        return self.model.user_embedding(self._user_features(user_id, history, user_text))

    # === Signatures ===

    @tf.function(input_signature=USER_REQUEST)
    def serve_recommendations(self, user_id, history, user_text):
        features = self._user_features(user_id, history, user_text)
        query = self.model.user_embedding(features)
        # Never recommends the request's history (all of it, also beyond
        # max_history) nor the stored history a row fell back to.
        history = tf.concat([features[schema.HISTORY], history], axis=1)
        # Asks for K + H so that K remain after the row's history is removed
        # (BruteForce.query_with_exclusions needs a static H; requests vary).
        scores, ids = self.index(query, k=tf.minimum(self.k + tf.shape(history)[1],
                                                     self.num_items))
        seen = tf.reduce_any(tf.equal(ids[:, :, tf.newaxis], history[:, tf.newaxis, :])
                             & tf.not_equal(history, "")[:, tf.newaxis, :], axis=2)
        scores = tf.where(seen, tf.cast(-np.inf, scores.dtype), scores)
        top_scores, top_positions = tf.math.top_k(scores, k=self.k)
        return {"item_ids": tf.gather(ids, top_positions, batch_dims=1),
                "scores": tf.cast(top_scores, tf.float32)}

    @tf.function(input_signature=USER_REQUEST)
    def serve_user_embedding(self, user_id, history, user_text):
        return {"embedding": self._user_vectors(user_id, history, user_text)}

    @tf.function(input_signature=ITEM_REQUEST)
    def serve_item_embedding(self, item_id, item_text):
        return {"embedding": self.model.item_embedding({
            schema.ITEM_ID: item_id,
            schema.ITEM_TEXT_EMBEDDING: self._embed_text(
                item_text, self.item_rows.lookup(item_id), self.item_text)})}

    @tf.function(input_signature=LOOKUP_REQUEST)
    def serve_lookup_profiles(self, user_id):
        rows = self.user_rows.lookup(user_id)
        found = rows >= 0
        safe = tf.maximum(rows, 0)
        mask = tf.cast(found, tf.float32)[:, tf.newaxis]
        return {
            "found": found,
            "embedding": tf.gather(self.profile_embedding, safe) * mask,
            "profile_text": tf.where(found, tf.gather(self.profile_text, safe), ""),
            "interests": tf.where(found[:, tf.newaxis], tf.gather(self.interests, safe), ""),
            "interest_weights": tf.gather(self.interest_weights, safe) * mask,
        }

    def signatures(self):
        return {
            SERVING_DEFAULT: self.serve_recommendations.get_concrete_function(),
            USER_EMBEDDING: self.serve_user_embedding.get_concrete_function(),
            ITEM_EMBEDDING: self.serve_item_embedding.get_concrete_function(),
            LOOKUP_PROFILES: self.serve_lookup_profiles.get_concrete_function(),
        }


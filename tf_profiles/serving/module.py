"""The servable: a tf.Module whose signatures are the serving contract.

Everything a request needs is inside the SavedModel: the model with its
Preprocessor (the in-graph tokenizer and encoder, the catalogue's text, each
stored user's text, latest history and ratings), a BruteForce index over the
whole catalogue, and each stored user's readable profile, so the stock TF
Serving model server runs it with no custom ops (TF Text's FastBertTokenizer
is linked into TF Serving ≥ 2.12; ScaNN is not, hence BruteForce).
"""
import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.bundle import inference
from tf_profiles.features import spec
from tf_profiles.models.ranking import top_k_excluding

USER_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.USER_ID),
                tf.TensorSpec([None, None], tf.string, name=spec.HISTORY),
                tf.TensorSpec([None], tf.string, name=spec.USER_TEXT)]
ITEM_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.ITEM_ID),
                tf.TensorSpec([None], tf.string, name=spec.ITEM_TEXT)]
LOOKUP_REQUEST = [tf.TensorSpec([None], tf.string, name=spec.USER_ID)]


def _with_empty_row(values, dtype):
    # Row 0 answers every user the Preprocessor does not store.
    values = np.asarray(values)
    empty = np.full((1,) + values.shape[1:], "" if dtype == tf.string else 0, values.dtype)
    rows = np.concatenate([empty, values])
    if dtype == tf.string:
        rows = np.vectorize(lambda v: str(v).encode("utf-8"), otypes=[object])(rows)
    return tf.Variable(rows, trainable=False, dtype=dtype)


class ServingModule(tf.Module):
    """Builds the four signatures from a model that holds the served state.

    Args:
      model: a trained :class:`TwoTowerModel` whose Preprocessor holds the
        served catalogue and stored users (:meth:`Preprocessor.with_state`).
      profiles: the readable profiles of the Preprocessor's stored users, in
        its user-catalogue order: ``profile_text`` [U], ``interests`` and
        ``interest_weights`` [U, T], ``embedding`` [U, D] (from
        :class:`ProfileBuilder`).
      k: how many items ``serving_default`` returns.
      item_embeddings: [C, D] item-tower outputs of the catalogue already
        computed (e.g. streamed by :mod:`tf_profiles.serving.catalogue`);
        default: computed here, in batches.
    """

    def __init__(self, model, profiles, k: int, item_embeddings=None):
        super().__init__(name="tf_profiles_servable")
        self.model = model
        item_ids = model.preprocessor.item_text.ids
        self.num_items = len(item_ids)
        self.k = min(int(k), self.num_items)
        self.max_history = model.preprocessor.max_history
        if item_embeddings is None:
            item_embeddings = inference.item_embeddings(model, item_ids)
        item_embeddings = tf.constant(item_embeddings, tf.float32)
        self.embedding_dim = int(item_embeddings.shape[1])
        self.index = tfrs.layers.factorized_top_k.BruteForce(k=self.k)
        self.index.index(item_embeddings, tf.constant(item_ids))
        # Profiles were embedded when they were built, so a lookup is a hash
        # and a gather.
        self.profile_embedding = _with_empty_row(profiles["embedding"].astype(np.float32),
                                                 tf.float32)
        self.profile_text = _with_empty_row(profiles["profile_text"], tf.string)
        self.interests = _with_empty_row(profiles["interests"], tf.string)
        self.interest_weights = _with_empty_row(
            profiles["interest_weights"].astype(np.float32), tf.float32)

    # === Signatures ===

    @tf.function(input_signature=USER_REQUEST)
    def serve_recommendations(self, user_id, history, user_text):
        features = self.model.preprocessor.user_features(user_id, history, user_text=user_text)
        query = self.model.embed_user_features(features)
        # Never recommends the request's history (all of it, also beyond
        # max_history) nor the stored history a row fell back to.
        excluded = tf.concat([features[spec.HISTORY], history], axis=1)
        # Asks for K + H so that K remain after the row's history is removed
        # (BruteForce.query_with_exclusions needs a static H; requests vary).
        scores, ids = self.index(query, k=tf.minimum(self.k + tf.shape(excluded)[1],
                                                     self.num_items))
        ids, scores = top_k_excluding(scores, ids, excluded, self.k)
        return {"item_ids": ids, "scores": tf.cast(scores, tf.float32)}

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

    def signatures(self):
        return {
            spec.SERVING_DEFAULT: self.serve_recommendations.get_concrete_function(),
            spec.USER_EMBEDDING: self.serve_user_embedding.get_concrete_function(),
            spec.ITEM_EMBEDDING: self.serve_item_embedding.get_concrete_function(),
            spec.LOOKUP_PROFILES: self.serve_lookup_profiles.get_concrete_function(),
        }

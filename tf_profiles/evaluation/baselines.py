"""Baselines scored on exactly the rows the model is scored on.

Each baseline is fitted on the known events and returns a [N, C] score
matrix over ``rows.candidates``. The two TFRS baselines follow the TFRS
basic-retrieval and sequential-retrieval tutorials.
"""
from typing import Dict

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.features.examples import training_examples
from tf_profiles.evaluation.protocol import EvalRows


def _index(values, vocabulary):
    position = {v: i for i, v in enumerate(vocabulary)}
    return np.array([position.get(v, -1) for v in values], dtype=np.int64)


def most_popular(rows: EvalRows) -> np.ndarray:
    counts = rows.known["item_id"].value_counts()
    popularity = counts.reindex(rows.candidates).fillna(0).to_numpy(np.float64)
    return np.tile(popularity, (len(rows.users), 1))


def _user_item_matrix(rows: EvalRows):
    known = rows.known[rows.known["item_id"].isin(set(rows.candidates))]
    user_index = _index(known["user_id"], rows.users)
    keep = user_index >= 0
    matrix = np.zeros((len(rows.users), len(rows.candidates)), np.float64)
    matrix[user_index[keep], _index(known["item_id"], rows.candidates)[keep]] = 1.0
    all_users = sorted(known["user_id"].unique())
    train_matrix = np.zeros((len(all_users), len(rows.candidates)), np.float64)
    train_matrix[_index(known["user_id"], all_users),
                 _index(known["item_id"], rows.candidates)] = 1.0
    return matrix, train_matrix


def ease(rows: EvalRows, l2: float = 250.0) -> np.ndarray:
    """EASE (Steck, 2019): closed-form item-item weights, zero diagonal."""
    matrix, train_matrix = _user_item_matrix(rows)
    gram = train_matrix.T @ train_matrix + l2 * np.eye(train_matrix.shape[1])
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return matrix @ weights


def markov_chain(rows: EvalRows) -> np.ndarray:
    """First-order Markov chain: how often each candidate followed the last item.

    Popularity breaks ties (and scores users whose last item never led anywhere).
    """
    known = rows.known.sort_values(["user_id", "timestamp"], kind="stable")
    items = _index(known["item_id"], rows.candidates)
    same_user = known["user_id"].to_numpy()[1:] == known["user_id"].to_numpy()[:-1]
    source, target = items[:-1][same_user], items[1:][same_user]
    valid = (source >= 0) & (target >= 0)
    transitions = np.zeros((len(rows.candidates),) * 2)
    np.add.at(transitions, (source[valid], target[valid]), 1.0)
    popularity = most_popular(rows)[0]
    last = _index(rows.histories["history"][:, -1], rows.candidates)
    scores = np.where((last >= 0)[:, None], transitions[np.maximum(last, 0)], 0.0)
    return scores + 1e-6 * popularity / max(popularity.max(), 1.0)


def content_only(rows: EvalRows, item_text: Dict[str, np.ndarray]) -> np.ndarray:
    """User = mean text embedding of the history items; cosine to candidates."""
    history = rows.histories["history"]
    candidate_text = np.stack([item_text[c] for c in rows.candidates])
    width = candidate_text.shape[1]
    users = np.zeros((len(history), width))
    for row, items in enumerate(history):
        vectors = [item_text[i] for i in items if i in item_text]
        if vectors:
            users[row] = np.mean(vectors, axis=0)
    users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
    candidates = candidate_text / np.maximum(
        np.linalg.norm(candidate_text, axis=1, keepdims=True), 1e-12)
    return users @ candidates.T


def _fit_retrieval(query_model, candidate_model, dataset, query_key, epochs, learning_rate):
    class _Model(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.query_model, self.candidate_model = query_model, candidate_model
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.query_model(features[query_key]),
                             self.candidate_model(features["item_id"]), compute_metrics=False)

    model = _Model()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate))
    model.fit(dataset, epochs=epochs, verbose=0)
    return model


def id_two_tower(rows: EvalRows, dim: int = 32, epochs: int = 10, seed: int = 0) -> np.ndarray:
    """TFRS basic-retrieval tutorial: user-id and item-id embeddings only."""
    tf.keras.utils.set_random_seed(seed)
    users = sorted(rows.known["user_id"].unique())
    items = sorted(rows.known["item_id"].unique())

    def tower(vocabulary):
        return tf.keras.Sequential([
            tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
            tf.keras.layers.Embedding(len(vocabulary) + 1, dim)])

    dataset = tf.data.Dataset.from_tensor_slices({
        "user_id": rows.known["user_id"].to_numpy(str),
        "item_id": rows.known["item_id"].to_numpy(str)}).shuffle(
            100_000, seed=seed).batch(8192).cache()
    model = _fit_retrieval(tower(users), tower(items), dataset, "user_id", epochs, 0.1)
    query = model.query_model(tf.constant(rows.users.astype(str))).numpy()
    candidates = model.candidate_model(tf.constant(rows.candidates)).numpy()
    return query @ candidates.T


def gru_sequential(rows: EvalRows, dim: int = 32, context: int = 10, epochs: int = 5,
                   seed: int = 0) -> np.ndarray:
    """TFRS sequential-retrieval tutorial: a GRU over the last items is the query."""
    tf.keras.utils.set_random_seed(seed)
    items = sorted(rows.known["item_id"].unique())
    examples = training_examples(rows.known, context)
    has_history = (examples["history"] != "").any(axis=1)
    query_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=items, mask_token=""),
        tf.keras.layers.Embedding(len(items) + 2, dim, mask_zero=True),
        tf.keras.layers.GRU(dim)])
    candidate_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=items, mask_token=""),
        tf.keras.layers.Embedding(len(items) + 2, dim)])
    dataset = tf.data.Dataset.from_tensor_slices({
        "history": examples["history"][has_history].astype(str),
        "item_id": examples["item_id"][has_history].astype(str)}).shuffle(
            100_000, seed=seed).batch(256).cache()
    model = _fit_retrieval(query_model, candidate_model, dataset, "history", epochs, 0.1)
    history = rows.histories["history"][:, -context:].astype(str)
    query = model.query_model.predict(history, batch_size=1024, verbose=0)
    candidates = model.candidate_model(tf.constant(rows.candidates)).numpy()
    return query @ candidates.T


def random_scores(rows: EvalRows, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((len(rows.users), len(rows.candidates)))

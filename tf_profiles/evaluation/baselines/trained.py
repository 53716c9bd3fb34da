"""The two TFRS tutorial models as baselines, trained until validation stops improving.

Kind ``"id"`` follows the TFRS basic-retrieval tutorial (user-id and
item-id embeddings), ``"gru"`` the sequential-retrieval one (a GRU over the
latest items is the query). Both train with the TFRS in-batch
softmax; with ``logq`` the softmax is corrected for how often an item lands
in a batch (logQ) and accidental hits are removed, so popular items are not
pushed down for being frequent negatives (without it the tutorial models
score below MostPop on ml-100k).

:func:`fit` trains on one set of events and, given validation rows, keeps
the weights of the epoch with the best validation NDCG@10 (early stopping
with ``patience``); the returned :class:`Fitted` then scores any rows
(e.g. test rows, whose histories include the validation events) with those
weights.
"""
import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.protocol import EvalRows
from tf_profiles.features.examples import latest_histories, training_examples
from tf_profiles.models.ranking import exclude

KINDS = ("id", "gru")


class _Retrieval(tfrs.Model):
    """query_model(features[query_key]) · candidate_model(item_id), TFRS Retrieval loss."""

    def __init__(self, query_model, candidate_model, query_key: str, logq: bool):
        super().__init__()
        self.query_model, self.candidate_model = query_model, candidate_model
        self.query_key, self.logq = query_key, logq
        self.task = tfrs.tasks.Retrieval(remove_accidental_hits=logq)

    def compute_loss(self, features, training=False):
        query = self.query_model(features[self.query_key])
        candidates = self.candidate_model(features["item_id"])
        if not self.logq:
            return self.task(query, candidates, compute_metrics=False)
        return self.task(query, candidates, compute_metrics=False,
                         candidate_sampling_probability=features["item_probability"],
                         candidate_ids=features["item_code"])


@dataclasses.dataclass
class Fitted:
    """A trained TFRS baseline, holding the weights of its best validation epoch.

    Attributes:
      kind: "id" or "gru".
      model: the trained model.
      context: GRU history length (unused for "id").
      epoch: the epoch whose weights it holds.
      curve: [(epoch, validation NDCG@10)] of every epoch trained (empty
        without validation).
    """
    kind: str
    model: _Retrieval
    context: int
    epoch: int
    curve: List[Tuple[int, float]]

    def scores(self, rows: EvalRows) -> np.ndarray:
        """[N, C] dot products of ``rows``' queries with ``rows.candidates``.

        Queries come from ``rows``: user ids, or the latest ``context`` items
        of ``rows.known`` (so test histories include the validation events).
        """
        if self.kind == "id":
            queries = np.asarray(rows.users, dtype=str)
        else:
            queries = latest_histories(rows.known, rows.users, self.context)["history"].astype(str)
        query = self.model.query_model.predict(queries, batch_size=1024, verbose=0)
        candidates = self.model.candidate_model(tf.constant(list(rows.candidates))).numpy()
        return query @ candidates.T


def _validation_ndcg(fitted: Fitted, rows: EvalRows) -> float:
    return ranking_metrics(exclude(fitted.scores(rows), rows.seen), rows.targets,
                           cutoffs=(10,))["NDCG@10"]


def _id_model(events: pd.DataFrame, dim: int, logq: bool):
    def tower(vocabulary):
        return tf.keras.Sequential([
            tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
            tf.keras.layers.Embedding(len(vocabulary) + 1, dim)])

    model = _Retrieval(tower(sorted(events["user_id"].unique())),
                       tower(sorted(events["item_id"].unique())), "user_id", logq)
    return model, {"user_id": events["user_id"].to_numpy(str),
                   "item_id": events["item_id"].to_numpy(str)}


def _gru_model(events: pd.DataFrame, dim: int, logq: bool, context: int):
    items = sorted(events["item_id"].unique())
    query_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=items, mask_token=""),
        tf.keras.layers.Embedding(len(items) + 2, dim, mask_zero=True),
        tf.keras.layers.GRU(dim)])
    candidate_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=items, mask_token=""),
        tf.keras.layers.Embedding(len(items) + 2, dim)])
    examples = training_examples(events, context)
    # A user's first event has no history to predict it from.
    has_history = (examples["history"] != "").any(axis=1)
    return _Retrieval(query_model, candidate_model, "history", logq), {
        "history": examples["history"][has_history].astype(str),
        "item_id": examples["item_id"][has_history].astype(str)}


def fit(kind: str, events: pd.DataFrame, valid_rows: Optional[EvalRows] = None,
        epochs: int = 40, patience: int = 4, dim: int = 32, context: int = 10,
        optimizer: str = "adam", learning_rate: float = 0.003, batch_size: int = 1024,
        logq: bool = True, seed: int = 0) -> Fitted:
    """Trains a TFRS baseline on ``events``, keeping its best validation epoch.

    Args:
      kind: "id" (basic retrieval) or "gru" (sequential retrieval).
      events: the training events (a validation's ``known``).
      valid_rows: rows scored after every epoch; training stops after
        ``patience`` epochs without a better NDCG@10 and the best epoch's
        weights are restored. None: train exactly ``epochs`` epochs.
      epochs: the most epochs trained.
      dim: embedding (and GRU) width.
      context: how many latest items the GRU reads.
      optimizer: "adam" or "adagrad".
      learning_rate, batch_size: of the optimizer.
      logq: logQ-corrected in-batch softmax without accidental hits.
      seed: weights and shuffling.

    Returns:
      The :class:`Fitted` model.

    Raises:
      ValueError: for an unknown ``kind`` or ``optimizer``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    optimizers = {"adam": tf.keras.optimizers.Adam, "adagrad": tf.keras.optimizers.Adagrad}
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {', '.join(optimizers)}, not {optimizer!r}")
    tf.keras.utils.set_random_seed(seed)
    if kind == "id":
        model, features = _id_model(events, dim, logq)
    else:
        model, features = _gru_model(events, dim, logq, context)
    frequency = events["item_id"].value_counts(normalize=True)
    item_ids = pd.Series(features["item_id"])
    features["item_probability"] = item_ids.map(frequency).to_numpy(np.float32)
    # Integer ids: finding accidental hits compares every pair in a batch,
    # which on strings costs more than the training step itself.
    features["item_code"] = pd.factorize(item_ids)[0]
    count = len(features["item_id"])
    # Reshuffled every epoch: identical batches each epoch would repeat the
    # same in-batch negatives.
    dataset = tf.data.Dataset.from_tensor_slices(features).cache().shuffle(
        count, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    model.compile(optimizer=optimizers[optimizer](learning_rate))
    fitted = Fitted(kind, model, context, epoch=0, curve=[])
    best_score, best_weights = -np.inf, None
    for epoch in range(1, epochs + 1):
        model.fit(dataset, epochs=1, verbose=0)
        fitted.epoch = epoch
        if valid_rows is None:
            continue
        score = _validation_ndcg(fitted, valid_rows)
        fitted.curve.append((epoch, score))
        if score > best_score:
            best_score, best_weights, best_epoch = score, model.get_weights(), epoch
        elif epoch - best_epoch >= patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
        fitted.epoch = best_epoch
    return fitted

"""Scores of a trained two-tower model over the candidates of an evaluation."""
import numpy as np
import tensorflow as tf

from tf_profiles.data import schema
from tf_profiles.evaluation.metrics import mask_seen, ranking_metrics
from tf_profiles.evaluation.protocol import EvalRows


def candidate_embeddings(model, item_ids, item_text: np.ndarray, batch_size: int = 4096):
    """[C, D] item-tower outputs; text is passed so unseen items embed by text."""
    parts = []
    for start in range(0, len(item_ids), batch_size):
        parts.append(model.item_embedding({
            schema.ITEM_ID: tf.constant(list(item_ids[start:start + batch_size])),
            schema.ITEM_TEXT_EMBEDDING: tf.constant(item_text[start:start + batch_size]),
        }).numpy())
    return np.concatenate(parts)


def user_embeddings(model, histories, batch_size: int = 1024) -> np.ndarray:
    """[N, D] user-tower outputs for the features of ``latest_histories``."""
    embed = tf.function(model.user_embedding)
    parts = []
    count = len(histories[schema.USER_ID])
    for start in range(0, count, batch_size):
        batch = {key: tf.constant(value[start:start + batch_size].astype(
            str if value.dtype == object else value.dtype))
            for key, value in histories.items()}
        parts.append(embed(batch).numpy())
    return np.concatenate(parts)


def model_scores(model, rows: EvalRows, candidate_text: np.ndarray) -> np.ndarray:
    """[N, C] dot products: exactly the score the exported model ranks by."""
    users = user_embeddings(model, rows.histories)
    items = candidate_embeddings(model, rows.candidates, candidate_text)
    return users @ items.T


def held_out_metrics(model, rows: EvalRows, candidate_text: np.ndarray,
                     cutoffs=(10,)) -> dict:
    """Full-ranking metrics of ``model`` on ``rows``, already-seen items masked."""
    scores = mask_seen(model_scores(model, rows, candidate_text), rows.seen)
    return ranking_metrics(scores, rows.targets, cutoffs=cutoffs)

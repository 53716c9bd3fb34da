"""Cold-start item baselines: what item text alone says about a never-seen item.

Item text embeddings come as ``{item_id: vector}`` (``Catalogue.item_text_by_id``).
Both baselines score every candidate, warm or cold, so they serve the
held-out-items ranking and the whole-catalogue ranking alike.
"""
from typing import Dict

import numpy as np

from tf_profiles.evaluation.baselines.events import KnownEvents, known_events
from tf_profiles.evaluation.protocol import EvalRows

HISTORIES = ("recent", "all")
WEIGHTINGS = ("mean", "rating")


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _text_matrix(events: KnownEvents, item_text: Dict[str, np.ndarray]) -> np.ndarray:
    """[U, D] unit text vector of each universe item (zeros for an item without text)."""
    width = len(next(iter(item_text.values())))
    matrix = np.zeros((len(events.universe), width))
    for index, item in enumerate(events.universe):
        if item in item_text:
            matrix[index] = item_text[item]
    return _unit(matrix)


def _content(rows: EvalRows, events: KnownEvents, text: np.ndarray, history: str,
             weighting: str) -> np.ndarray:
    if history not in HISTORIES:
        raise ValueError(f"history must be one of {', '.join(HISTORIES)}, not {history!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    count = rows.histories["history"].shape[1] if history == "recent" else None
    users = _unit(events.recent_weights(count, by_rating=weighting == "rating") @ text)
    return users @ text[events.candidates].T


def content_knn(rows: EvalRows, item_text: Dict[str, np.ndarray], history: str = "recent",
                weighting: str = "mean") -> np.ndarray:
    """Cosine of each candidate's text to the user's (weighted) mean history text.

    Args:
      item_text: item id → text embedding.
      history: "recent" (the latest ``max_history`` events, what the model
        reads) or "all" (the whole known history).
      weighting: "mean" (every event alike) or "rating" (each event weighs
        its rating, so liked items pull harder).
    """
    events = known_events(rows)
    return _content(rows, events, _text_matrix(events, item_text), history, weighting)


def _standardise(scores: np.ndarray) -> np.ndarray:
    # Per row, so the two mixed scores are on one scale.
    spread = scores.std(axis=-1, keepdims=True)
    return (scores - scores.mean(axis=-1, keepdims=True)) / np.where(spread > 0, spread, 1.0)


def text_popularity(rows: EvalRows, item_text: Dict[str, np.ndarray], l2: float = 10.0,
                    content_weight: float = 0.0, history: str = "all",
                    weighting: str = "rating") -> np.ndarray:
    """Popularity predicted from text, optionally mixed with content KNN.

    A ridge regression from an item's text embedding to log(1 + its event
    count), fitted on the items with known events, predicts how popular a
    cold item will be; warm candidates keep their observed log count.

    Args:
      item_text: item id → text embedding.
      l2: the ridge penalty.
      content_weight: score = (1 - w) · popularity + w · content KNN, each
        standardised per user (0: popularity only).
      history, weighting: of the content KNN part (see :func:`content_knn`).
    """
    events = known_events(rows)
    text = _text_matrix(events, item_text)
    popularity = np.log1p(events.popularity())
    warm = popularity > 0
    features, target = text[warm], popularity[warm]
    feature_mean, target_mean = features.mean(axis=0), target.mean()
    centred = features - feature_mean
    coefficients = np.linalg.solve(centred.T @ centred + l2 * np.eye(text.shape[1]),
                                   centred.T @ (target - target_mean))
    estimate = np.where(warm, popularity, (text - feature_mean) @ coefficients + target_mean)
    scores = np.tile(_standardise(estimate[events.candidates]), (events.rows, 1))
    if content_weight:
        content = _content(rows, events, text, history, weighting)
        scores = (1 - content_weight) * scores + content_weight * _standardise(content)
    return scores

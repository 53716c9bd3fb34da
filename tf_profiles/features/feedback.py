"""Feedback from what people write: an event's text stands in for a missing rating.

A review "I hated it" with no stars says as much as a 1-star rating, so an
event with text and no rating gets the rating its text's sentiment implies
(:func:`tf_profiles.text.sentiment.feedback_rating`: P(positive) 0 → the
scale's low end, 1 → its high end). The history's rating feature, the
interest weights and the explanations then treat it like any rating. An
explicit rating always wins over the text.
"""
from typing import Callable, Sequence, Tuple

import numpy as np
import pandas as pd

from tf_profiles.data.schema import EVENT_TEXT, RATING_SCALE
from tf_profiles.text.sentiment import feedback_rating, score_texts

# A fixed scale keeps a text's rating the same whichever events it is filled among.
DEFAULT_SCALE = RATING_SCALE


def needs_text_feedback(events: pd.DataFrame) -> np.ndarray:
    """[len(events)] bool: events with text and no rating."""
    if EVENT_TEXT not in events.columns:
        return np.zeros(len(events), bool)
    return (events["rating"].isna() & (events[EVENT_TEXT].fillna("").str.strip() != "")
            ).to_numpy()


def with_text_feedback(events: pd.DataFrame,
                       positive_probability: Callable[[Sequence[str]], np.ndarray],
                       scale: Tuple[float, float] = DEFAULT_SCALE) -> pd.DataFrame:
    """``events`` with each missing rating of an event with text filled from its sentiment.

    Args:
      events: with ``rating`` (NaN = unknown) and, optionally, ``text``.
      positive_probability: texts → P(positive) per text (e.g. the model's
        sentiment head over its encoder).
      scale: (low, high) of the ratings.

    Returns:
      A copy (the input is not changed); events without text, or with a
      rating, are as they were.
    """
    missing = needs_text_feedback(events)
    if not missing.any():
        return events
    low, high = scale
    probability = np.asarray(positive_probability(
        events.loc[missing, EVENT_TEXT].tolist()), np.float64)
    events = events.copy()
    events.loc[missing, "rating"] = feedback_rating(probability, low, high)
    return events


def with_head_feedback(events: pd.DataFrame, encoder, sentiment, cache_dir=None) -> pd.DataFrame:
    """:func:`with_text_feedback` with a model's encoder and sentiment head (e.g.
    ``preprocessor.encoder, preprocessor.sentiment``), through the text-embedding
    cache; unchanged when there is no head."""
    if sentiment is None or not needs_text_feedback(events).any():
        return events
    return with_text_feedback(events, lambda texts: score_texts(texts, encoder, sentiment,
                                                                cache_dir))

"""Turns ordered events into model features (histories padded to a fixed length).

A training example's history holds only events before it, so no example
sees its own future.
"""
from typing import Dict

import numpy as np
import pandas as pd

from tf_profiles.data.splits import sort_events
from tf_profiles.features import spec


def _gather_histories(items, ratings, ends, lengths, max_history):
    # For each row: the `lengths` events just before index `ends`, at most
    # max_history of them, right-aligned (most recent last), "" padded.
    offsets = np.arange(max_history, 0, -1)  # [H]: H, ..., 1
    index = ends[:, None] - offsets[None, :]  # [N, H]
    valid = offsets[None, :] <= np.minimum(lengths, max_history)[:, None]
    index = np.where(valid, index, 0)
    history = np.where(valid, items[index], spec.PADDING_ID).astype(object)
    history_rating = np.where(valid, ratings[index], 0.0).astype(np.float32)
    return history, history_rating


def _arrays(events):
    items = events["item_id"].to_numpy(dtype=object)
    ratings = np.nan_to_num(events["rating"].to_numpy(dtype=np.float32), nan=0.0)
    return items, ratings


def training_examples(events: pd.DataFrame, max_history: int) -> Dict[str, np.ndarray]:
    """One example per event: the event's item is the target, earlier events the history.

    Returns:
      Features ``user_id``, ``history``, ``history_rating``, ``item_id`` and
      ``item_probability`` (the target item's share of all events, for the
      sampling-bias correction).
    """
    events = sort_events(events)
    items, ratings = _arrays(events)
    position = events.groupby("user_id").cumcount().to_numpy()
    history, history_rating = _gather_histories(
        items, ratings, np.arange(len(events)), position, max_history)
    frequency = events["item_id"].map(events["item_id"].value_counts(normalize=True))
    return {
        spec.USER_ID: events["user_id"].to_numpy(dtype=object),
        spec.HISTORY: history,
        spec.HISTORY_RATING: history_rating,
        spec.ITEM_ID: items,
        spec.ITEM_PROBABILITY: frequency.to_numpy(dtype=np.float32),
    }


def latest_histories(events: pd.DataFrame, users, max_history: int) -> Dict[str, np.ndarray]:
    """Each user's most recent ``max_history`` events, for scoring what comes next.

    Args:
      events: the events known before the moment of prediction.
      users: user ids, in the order wanted; a user without events gets an
        empty (all-padding) history.
    """
    events = sort_events(events)
    items, ratings = _arrays(events)
    users = np.asarray(users, dtype=object)
    grouped = events.groupby("user_id").indices
    ends = np.array([grouped[u][-1] + 1 if u in grouped else 0 for u in users])
    lengths = np.array([len(grouped[u]) if u in grouped else 0 for u in users])
    history, history_rating = _gather_histories(items, ratings, ends, lengths, max_history)
    return {spec.USER_ID: users, spec.HISTORY: history,
            spec.HISTORY_RATING: history_rating}

"""Turns ordered events into model features (histories padded to a fixed length).

A training example's history holds only events before it, so no example
sees its own future: one example per event (:func:`training_examples`), or
one per window of a user's sequence with the event after each slot as that
slot's target (:func:`sequence_examples`, for a causal user tower).
"""
from typing import Dict, Optional

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


def sequence_examples(events: pd.DataFrame, max_history: int,
                      trained: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Each user's sequence in windows of ``max_history`` slots, each slot's target
    the event after it.

    A sequence of n events trains n − 1 predictions (the first event has no
    history). They are cut from the end into windows of at most
    ``max_history`` targets; a window's slots hold the events just before
    its targets, so each window reads like a served history of that length.
    Slots are right-aligned and padded with ``spec.PADDING_ID`` as in
    :func:`latest_histories`.

    Args:
      events: the events; ``trained``, if given, [len(events)] bools in the
        order of ``sort_events(events)``: only those events are targets (the
        others are history only; windows without a target are dropped).

    Returns:
      Features ``user_id`` [W], ``history`` and ``history_rating`` [W, H]
      and ``next_items`` [W, H] ("" at padding).
    """
    events = sort_events(events)
    items, ratings = _arrays(events)
    users, window_ends, window_lengths = [], [], []
    for user, index in events.groupby("user_id", sort=False).indices.items():
        # Targets are index[1:]; the window whose last target is index[end]
        # reads the slots index[end - length .. end - 1].
        for end in range(len(index) - 1, 0, -max_history):
            users.append(user)
            window_ends.append(index[end])
            window_lengths.append(min(max_history, end))
    ends = np.asarray(window_ends, dtype=np.int64)
    lengths = np.asarray(window_lengths, dtype=np.int64)
    history, history_rating = _gather_histories(items, ratings, ends, lengths, max_history)
    next_items, _ = _gather_histories(items, ratings, ends + 1, lengths, max_history)
    if trained is not None:
        is_target, _ = _gather_histories(np.asarray(trained, dtype=object), ratings, ends + 1,
                                         lengths, max_history)
        next_items = np.where(is_target == True, next_items, spec.PADDING_ID)  # noqa: E712
        keep = (next_items != spec.PADDING_ID).any(axis=1)
        users, history = np.asarray(users, dtype=object)[keep], history[keep]
        history_rating, next_items = history_rating[keep], next_items[keep]
    return {
        spec.USER_ID: np.asarray(users, dtype=object),
        spec.HISTORY: history,
        spec.HISTORY_RATING: history_rating,
        spec.NEXT_ITEMS: next_items,
    }


def target_items(examples: Dict[str, np.ndarray]) -> np.ndarray:
    """The target item of every trained prediction, in either example format."""
    if spec.NEXT_ITEMS in examples:
        targets = examples[spec.NEXT_ITEMS].ravel()
        return targets[targets != spec.PADDING_ID]
    return examples[spec.ITEM_ID]


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

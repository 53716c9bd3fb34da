"""Counting baselines: popularity, EASE, a first-order Markov chain, item co-occurrence.

Each is ``(rows, **params) -> [N, C]`` scores over ``rows.candidates``, fitted
on ``rows.known`` only. Dense numpy over the item universe: fine for
catalogues of a few thousand items (ml-100k, 1682 items: EASE takes about a
second, the others less).
"""
import numpy as np

from tf_profiles.evaluation.baselines.events import KnownEvents, known_events
from tf_profiles.evaluation.protocol import EvalRows

# Added to scores so that items a method cannot tell apart are ordered by
# popularity rather than tied (the metrics count a tie against the target).
_TIE_BREAK = 1e-9


def _candidate_scores(scores: np.ndarray, events: KnownEvents) -> np.ndarray:
    """[N, U] universe scores → [N, C], equal scores ordered by popularity."""
    popularity = events.popularity()
    scores = scores + _TIE_BREAK * np.abs(scores).max(initial=1.0) * popularity / max(
        popularity.max(), 1.0)
    return scores[:, events.candidates]


def _pair_counts(size: int, first: np.ndarray, second: np.ndarray, weights=None) -> np.ndarray:
    """[size, size] sum of ``weights`` (default 1) over the pairs (first, second)."""
    flat = np.bincount(first * size + second, weights=weights, minlength=size * size)
    return flat.reshape(size, size).astype(np.float64)


def most_popular(rows: EvalRows) -> np.ndarray:
    """Every user gets the known-event count of each candidate."""
    events = known_events(rows)
    return np.tile(events.popularity()[events.candidates], (events.rows, 1))


def ease(rows: EvalRows, l2: float = 250.0) -> np.ndarray:
    """EASE (Steck, 2019): closed-form item-item weights with a zero diagonal.

    Args:
      l2: the ridge penalty λ; small λ fits co-occurrence closely, large λ
        moves the weights towards popularity.
    """
    events = known_events(rows)
    matrix = events.interaction_matrix()
    gram = matrix.T @ matrix
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    consumed = (events.recent_weights() > 0).astype(np.float64)
    return _candidate_scores(consumed @ weights, events)


def _time_groups(events: KnownEvents):
    """Each event's time group (a user's events in one timestamp) and the group sizes."""
    starts = np.r_[True, (events.user[1:] != events.user[:-1])
                   | (events.timestamp[1:] != events.timestamp[:-1])]
    group = np.cumsum(starts) - 1
    return group, np.bincount(group).astype(np.float64)


def _expected_transitions(events: KnownEvents, group, size) -> np.ndarray:
    """[U, U] transition counts averaged over every order of same-time events.

    In a uniformly random order of a group of m events, each ordered pair of
    its members is adjacent with probability 1/m; the last of a group and the
    first of the user's next group (k events) are each pair with 1/(m k).
    """
    universe = len(events.universe)
    transitions = np.zeros((universe, universe))
    for distance in range(1, 2 * int(size.max(initial=1))):
        first, second = events.same_user_pairs(distance)
        within = group[first] == group[second]
        weight = 1.0 / size[group[first[within]]]
        a, b = events.item[first[within]], events.item[second[within]]
        transitions += _pair_counts(universe, a, b, weight) + _pair_counts(universe, b, a, weight)
        following = group[second] == group[first] + 1
        a, b = first[following], second[following]
        transitions += _pair_counts(universe, events.item[a], events.item[b],
                                    1.0 / (size[group[a]] * size[group[b]]))
    return transitions


def markov_chain(rows: EvalRows, smoothing: float = 1.0) -> np.ndarray:
    """First-order Markov chain, the same whatever the order of same-time events.

    P(next = b | a) counts how often b followed a, smoothed towards popularity:
    ``(T[a, b] + smoothing * p(b)) / (T[a, :].sum() + smoothing)``. Events
    sharing a timestamp have no order, so T is the expected count over every
    order of them, and the user's state is their latest time group (each of
    its items equally likely the last): permuting ties in ``rows.known``
    does not change a score.

    Args:
      smoothing: pseudo-counts of the popularity prior p (0: pure transitions).
    """
    events = known_events(rows)
    group, size = _time_groups(events)
    transitions = _expected_transitions(events, group, size)
    popularity = events.popularity()
    prior = popularity / max(popularity.sum(), 1.0)
    total = transitions.sum(axis=1, keepdims=True) + smoothing
    # An item that never led anywhere (and smoothing 0) falls back to the prior.
    probability = np.where(total > 0, (transitions + smoothing * prior) / np.maximum(total, 1e-300),
                           prior)
    latest = (group == group[np.arange(len(group)) + events.position_from_end()]) & (events.row >= 0)
    state = np.zeros((events.rows, len(events.universe)))
    np.add.at(state, (events.row[latest], events.item[latest]), 1.0 / size[group[latest]])
    scores = state @ probability
    scores[state.sum(axis=1) == 0] = prior  # users without known events
    return _candidate_scores(scores, events)


def cooccurrence_knn(rows: EvalRows, window: int = 3, distance_decay: float = 1.0,
                     recent: int = 5, decay: float = 0.8, normalise: bool = True) -> np.ndarray:
    """Sequential item co-occurrence: items near the user's latest items in others' sequences.

    Two events of one user at most ``window`` positions apart co-occur, in
    both directions, with weight ``distance_decay ** (distance - 1)``. A
    user's score for an item sums its co-occurrence with the user's
    ``recent`` latest items, the latest weighing 1, the one before
    ``decay``, and so on.

    Args:
      window: how many positions apart two events still co-occur.
      distance_decay: weight of a pair one position further apart.
      recent: how many of the user's latest events vote.
      decay: recency decay of the votes.
      normalise: divide counts by sqrt(popularity) of both items (cosine),
        so popular items do not co-occur with everything.
    """
    events = known_events(rows)
    universe = len(events.universe)
    counts = np.zeros((universe, universe))
    for distance in range(1, window + 1):
        first, second = events.same_user_pairs(distance)
        counts += distance_decay ** (distance - 1) * _pair_counts(
            universe, events.item[first], events.item[second])
    counts += counts.T
    np.fill_diagonal(counts, 0.0)  # a repeat of the same item is no evidence
    if normalise:
        norm = np.sqrt(np.maximum(events.popularity(), 1.0))
        counts /= norm[:, None] * norm[None, :]
    return _candidate_scores(events.recent_weights(recent, decay) @ counts, events)


def random_scores(rows: EvalRows, seed: int = 0) -> np.ndarray:
    """Uniform random scores: the floor every method must clear."""
    return np.random.default_rng(seed).random((len(rows.users), len(rows.candidates)))

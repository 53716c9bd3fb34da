"""The known events of an evaluation as integer arrays, shared by every baseline.

Baselines count, invert and embed over an item *universe*: every item with a
known event plus every candidate (a cold item has no events but must still
get a score). Events are read in split order (:func:`sort_events` is stable,
so same-second events keep the split's seeded tie order), never re-ordered.
"""
import dataclasses

import numpy as np
import pandas as pd

from tf_profiles.data.splits import sort_events
from tf_profiles.evaluation.protocol import EvalRows


@dataclasses.dataclass
class KnownEvents:
    """``rows.known`` by user, then time, as indices.

    Attributes:
      universe: [U] item ids: every known item and every candidate, sorted.
      candidates: [C] universe index of each of ``rows.candidates``.
      item: [E] universe index of each event's item.
      user: [E] user code of each event (0..users-1, in sorted user order).
      row: [E] the event's user's row in ``rows.users``, -1 if not tested.
      timestamp, rating: [E] (rating 0 where missing).
      rows: N, the number of evaluated users.
    """
    universe: np.ndarray
    candidates: np.ndarray
    item: np.ndarray
    user: np.ndarray
    row: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray
    rows: int

    @property
    def users(self) -> int:
        return int(self.user.max()) + 1 if len(self.user) else 0

    def popularity(self) -> np.ndarray:
        """[U] number of known events of each universe item."""
        return np.bincount(self.item, minlength=len(self.universe)).astype(np.float64)

    def same_user_pairs(self, distance: int):
        """Positions (i, i + distance) of two events of one user ``distance`` apart."""
        first = np.arange(len(self.item) - distance)
        first = first[self.user[first] == self.user[first + distance]]
        return first, first + distance

    def position_from_end(self) -> np.ndarray:
        """[E] 0 for each user's latest event, 1 for the one before, ..."""
        last = np.r_[np.flatnonzero(self.user[1:] != self.user[:-1]), len(self.user) - 1]
        last_of_user = np.repeat(last, np.diff(np.r_[-1, last]))
        return last_of_user - np.arange(len(self.user))

    def recent_weights(self, count=None, decay: float = 1.0, by_rating: bool = False):
        """[N, U] weight of each universe item in each row's latest ``count`` events.

        Args:
          count: how many of the latest events (None: the whole history).
          decay: the latest event weighs 1, the one before ``decay``, ...
          by_rating: multiply each event's weight by its rating.
        """
        back = self.position_from_end()
        keep = (self.row >= 0) & (back < (count if count is not None else len(back) + 1))
        weight = decay ** back[keep].astype(np.float64)
        if by_rating:
            weight = weight * self.rating[keep]
        matrix = np.zeros((self.rows, len(self.universe)), np.float64)
        np.add.at(matrix, (self.row[keep], self.item[keep]), weight)
        return matrix

    def interaction_matrix(self) -> np.ndarray:
        """[users, U] 1 where a user has an event with the item."""
        matrix = np.zeros((self.users, len(self.universe)), np.float64)
        matrix[self.user, self.item] = 1.0
        return matrix


def known_events(rows: EvalRows) -> KnownEvents:
    """Indexes ``rows.known`` (see :class:`KnownEvents`)."""
    events = sort_events(rows.known)
    universe = np.array(sorted(set(events["item_id"]) | set(rows.candidates)), dtype=object)
    position = pd.Index(universe)
    user_codes, _ = pd.factorize(events["user_id"], sort=True)
    row_of_user = pd.Series(np.arange(len(rows.users)), index=pd.Index(rows.users, dtype=object))
    rating = (events["rating"] if "rating" in events else pd.Series(0.0, index=events.index))
    return KnownEvents(
        universe=universe,
        candidates=position.get_indexer(rows.candidates),
        item=position.get_indexer(events["item_id"]),
        user=user_codes.astype(np.int64),
        row=events["user_id"].map(row_of_user).fillna(-1).to_numpy(np.int64),
        timestamp=events["timestamp"].to_numpy(),
        rating=np.nan_to_num(rating.to_numpy(np.float64), nan=0.0),
        rows=len(rows.users))

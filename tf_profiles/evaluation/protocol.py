"""Who is tested on what: the rows every scorer (model or baseline) ranks for."""
import dataclasses
from typing import Dict, List

import numpy as np
import pandas as pd

from tf_profiles.errors import UserError
from tf_profiles.features.examples import latest_histories
from tf_profiles.data.splits import Split


@dataclasses.dataclass
class EvalRows:
    """One row per tested user.

    Attributes:
      users: [N] user ids.
      known: the events known at prediction time (what scorers may use).
      histories: model features of each user's latest known events.
      candidates: the item ids ranked (columns of every score matrix).
      targets: per row, column indices of the held-out items.
      seen: per row, column indices of already-seen items (masked).
    """
    users: np.ndarray
    known: pd.DataFrame
    histories: Dict[str, np.ndarray]
    candidates: List[str]
    targets: List[np.ndarray]
    seen: List[np.ndarray]


def eval_rows(split: Split, stage: str, max_history: int) -> EvalRows:
    """Rows for ``stage`` "test" (known = train + valid) or "valid" (known = train).

    Every held-out event among the candidates is a target of its user. For
    the ``temporal`` protocol the held-out events are a whole period: only
    users with a known event are tested (a user first seen inside the period
    has no history to rank from), and their targets are the period's items
    new to them (an item they already know is masked, so it could never be hit).

    Known events are concatenated train before valid; the stable sort
    downstream keeps that order for equal times, which is the split's order
    (a user's valid events never precede their train events).

    Raises:
      ValueError: ``stage`` is unknown, or no user has a held-out event to
        rank (e.g. a split made without holdout).
    """
    if stage == "valid":
        known, held = split.train, split.valid
    elif stage == "test":
        known, held = pd.concat([split.train, split.valid], ignore_index=True), split.test
    else:
        raise ValueError(f"stage must be 'valid' or 'test', not {stage!r}")
    column = {item: index for index, item in enumerate(split.candidates)}
    held = held[held["item_id"].isin(column)]
    if split.protocol == "temporal":
        held = held[held["user_id"].isin(known["user_id"])]
        held = held.drop_duplicates(["user_id", "item_id"])
        held = held.merge(known[["user_id", "item_id"]].drop_duplicates(), how="left",
                          indicator=True)
        held = held[held["_merge"] == "left_only"]
    if held.empty:
        raise UserError(f"the {split.protocol} split has no {stage} events to rank (a model "
                        f"trained with holdout none holds nothing out)")
    users = np.array(sorted(held["user_id"].unique()), dtype=object)
    targets_by_user = held.groupby("user_id")["item_id"].agg(list)
    seen_by_user = known[known["item_id"].isin(column)].groupby("user_id")["item_id"].agg(list)

    def to_columns(ids):
        return np.array([column[i] for i in ids], dtype=np.int64)

    return EvalRows(
        users=users, known=known,
        histories=latest_histories(known, users, max_history),
        candidates=list(split.candidates),
        targets=[to_columns(targets_by_user[u]) for u in users],
        seen=[to_columns(seen_by_user.get(u, [])) for u in users])

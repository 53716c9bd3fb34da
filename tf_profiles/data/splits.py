"""Evaluation protocols: which events train a model and which test it.

Every split orders each user's events by time; ties keep file order, so the
split is deterministic for a given file.
"""
import dataclasses
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

PROTOCOLS = ("loo", "cold-items", "cold-users")


@dataclasses.dataclass
class Split:
    """Train/valid/test events and the candidates test events are ranked among.

    Attributes:
      protocol: one of PROTOCOLS.
      train, valid, test: events (valid may be empty).
      candidates: item ids a test event is ranked among.
    """
    protocol: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    candidates: List[str]

    def save(self, directory: Path):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("train", "valid", "test"):
            getattr(self, name).to_parquet(directory / f"{name}.parquet", index=False)
        pd.DataFrame({"item_id": self.candidates}).to_parquet(
            directory / "candidates.parquet", index=False)
        (directory / "protocol.txt").write_text(self.protocol)

    @classmethod
    def load(cls, directory: Path) -> "Split":
        directory = Path(directory)
        frames = {name: pd.read_parquet(directory / f"{name}.parquet")
                  for name in ("train", "valid", "test")}
        candidates = pd.read_parquet(directory / "candidates.parquet")["item_id"].tolist()
        return cls((directory / "protocol.txt").read_text().strip(),
                   candidates=candidates, **frames)


def sort_events(interactions: pd.DataFrame) -> pd.DataFrame:
    """Orders events by user, then time; equal times keep file order."""
    return interactions.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def _catalogue(events, item_ids):
    return sorted(set(events["item_id"]) | set(item_ids or ()))


def leave_one_out(interactions: pd.DataFrame, item_ids=None) -> Split:
    """Last event per user is the test, the one before is validation.

    Users with fewer than 3 events stay entirely in training. Candidates are
    all of ``item_ids`` (the catalogue) plus every item with an event.
    """
    events = sort_events(interactions)
    position_from_end = events.groupby("user_id").cumcount(ascending=False)
    length = events.groupby("user_id")["item_id"].transform("size")
    eligible = length >= 3
    test = events[eligible & (position_from_end == 0)]
    valid = events[eligible & (position_from_end == 1)]
    train = events[~events.index.isin(test.index) & ~events.index.isin(valid.index)]
    return Split("loo", train.reset_index(drop=True), valid.reset_index(drop=True),
                 test.reset_index(drop=True), _catalogue(events, item_ids))


def cold_start_items(interactions: pd.DataFrame, fraction: float = 0.15,
                     seed: int = 0) -> Split:
    """Holds out a random ``fraction`` of items with all their interactions.

    The model never sees a held-out item in training; each test user's
    held-out items are ranked among all held-out items.
    """
    events = sort_events(interactions)
    items = np.array(sorted(events["item_id"].unique()))
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(items, size=int(round(fraction * len(items))), replace=False))
    is_held = events["item_id"].isin(held_out)
    train = events[~is_held]
    test = events[is_held & events["user_id"].isin(train["user_id"])]
    return Split("cold-items", train.reset_index(drop=True), train.iloc[:0],
                 test.reset_index(drop=True), sorted(held_out))


def cold_start_users(interactions: pd.DataFrame, fraction: float = 0.1,
                     max_events: int = 3, seed: int = 0, item_ids=None) -> Split:
    """A random ``fraction`` of users keep only their first ``max_events`` events.

    Their next event is the test; everything after it is dropped. All other
    users train on their full histories.
    """
    events = sort_events(interactions)
    users = np.array(sorted(events["user_id"].unique()))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(users, size=max(1, int(round(fraction * len(users)))),
                          replace=False))
    position = events.groupby("user_id").cumcount()
    is_cold = events["user_id"].isin(cold)
    train = events[~is_cold | (position < max_events)]
    test = events[is_cold & (position == max_events)]
    return Split("cold-users", train.reset_index(drop=True), train.iloc[:0],
                 test.reset_index(drop=True), _catalogue(events, item_ids))


def make_split(protocol: str, interactions: pd.DataFrame, seed: int = 0,
               item_ids=None, holdout: bool = True) -> Split:
    """The split of ``protocol``; ``item_ids`` is the catalogue to rank.

    With ``holdout=False`` every event trains (valid and test are empty).
    """
    if not holdout:
        events = sort_events(interactions)
        return Split(protocol, events, events.iloc[:0], events.iloc[:0],
                     _catalogue(events, item_ids))
    if protocol == "loo":
        return leave_one_out(interactions, item_ids)
    if protocol == "cold-items":
        return cold_start_items(interactions, seed=seed)
    if protocol == "cold-users":
        return cold_start_users(interactions, seed=seed, item_ids=item_ids)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")

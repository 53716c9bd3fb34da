"""Evaluation protocols: which events train a model and which test it.

Every split orders each user's events by time. Events of one user with the
same timestamp (half of ml-100k's consecutive events share a second) are put
in a seeded random order, the ``seed`` of :func:`make_split`: which of them
is "the next item" is a random draw recorded with the split, not an
artefact of file order. The split's frames are stored in that order, and
everything downstream (training examples, histories, baselines) re-sorts
with the stable :func:`sort_events`, so the model and every baseline see the
same order.
"""
import dataclasses
import json
from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd

from tf_profiles.errors import UserError

PROTOCOLS = ("loo", "temporal", "cold-items", "cold-users")

_EVENT_KEY = ["user_id", "item_id", "timestamp"]


@dataclasses.dataclass
class Split:
    """Train/valid/test events and the candidates test events are ranked among.

    Attributes:
      protocol: one of PROTOCOLS.
      train, valid, test: events (valid may be empty), each in split order:
        by user, then time, same-time events in the seeded random order.
      candidates: item ids a test event is ranked among.
      seed: the seed of the tie order and the protocol's random choices;
        None for a split saved before it was recorded (ties in file order).
    """
    protocol: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    candidates: List[str]
    seed: Optional[int] = None

    def save(self, directory: Path):
        """Writes ``{train,valid,test,candidates}.parquet`` and ``split.json``
        (protocol and seed); row order is kept, it carries the tie order."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("train", "valid", "test"):
            getattr(self, name).to_parquet(directory / f"{name}.parquet", index=False)
        pd.DataFrame({"item_id": self.candidates}).to_parquet(
            directory / "candidates.parquet", index=False)
        (directory / "split.json").write_text(
            json.dumps({"protocol": self.protocol, "seed": self.seed}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "Split":
        """Reads a saved split; folders from before ``split.json`` (only
        ``protocol.txt``) load with ``seed=None``."""
        directory = Path(directory)
        frames = {name: pd.read_parquet(directory / f"{name}.parquet")
                  for name in ("train", "valid", "test")}
        candidates = pd.read_parquet(directory / "candidates.parquet")["item_id"].tolist()
        if (directory / "split.json").exists():
            record = json.loads((directory / "split.json").read_text())
        else:
            record = {"protocol": (directory / "protocol.txt").read_text().strip()}
        return cls(record["protocol"], candidates=candidates, seed=record.get("seed"),
                   **frames)


def sort_events(interactions: pd.DataFrame) -> pd.DataFrame:
    """Orders events by user, then time; equal times keep row order.

    Stable on purpose: given a split's frames (already in tie order) it keeps
    their order, so every reader of a split sees the split's tie order.
    """
    return interactions.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def tie_keys(events: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded pseudo-random uint64 key per event, from (user, item, timestamp).

    A key depends on the event and ``seed`` only, not on the row order or on
    which other events are present, so any subset of a log (a split's train
    frame, new events plus old ones) orders its ties the same way.
    """
    # SipHash keyed by the seed; the columns are hashed as text because
    # pandas applies the key to strings only.
    hash_key = f"{int(seed) & (2**64 - 1):016x}"
    return pd.util.hash_pandas_object(events[_EVENT_KEY].astype(str), index=False,
                                      hash_key=hash_key).to_numpy()


def order_events(interactions: pd.DataFrame, seed: int, by_user: bool = True) -> pd.DataFrame:
    """Events by user (with ``by_user``), then time; ties in a seeded random order.

    ``by_user=False`` gives the global time order with the same tie keys, so
    each user's events keep the relative order ``by_user=True`` gives them.
    """
    columns = ["user_id", "timestamp"] if by_user else ["timestamp"]
    keyed = interactions.assign(_tie=tie_keys(interactions, seed))
    # item_id last: identical tie keys (a 64-bit collision) still order the
    # same way whatever the file order.
    ordered = keyed.sort_values([*columns, "_tie", "item_id"], kind="stable")
    return ordered.drop(columns="_tie").reset_index(drop=True)


def _catalogue(events, item_ids):
    return sorted(set(events["item_id"]) | set(item_ids or ()))


def leave_one_out(interactions: pd.DataFrame, item_ids=None, seed: int = 0) -> Split:
    """Last event per user is the test, the one before is validation.

    Users with fewer than 3 events stay entirely in training. Candidates are
    all of ``item_ids`` (the catalogue) plus every item with an event.
    """
    events = order_events(interactions, seed)
    position_from_end = events.groupby("user_id").cumcount(ascending=False)
    length = events.groupby("user_id")["item_id"].transform("size")
    eligible = length >= 3
    test = events[eligible & (position_from_end == 0)]
    valid = events[eligible & (position_from_end == 1)]
    train = events[~events.index.isin(test.index) & ~events.index.isin(valid.index)]
    return Split("loo", train.reset_index(drop=True), valid.reset_index(drop=True),
                 test.reset_index(drop=True), _catalogue(events, item_ids), seed)


def temporal(interactions: pd.DataFrame, test_fraction: float = 0.1,
             valid_fraction: float = 0.1, seed: int = 0, item_ids=None,
             periods_back: int = 0) -> Split:
    """A global time split: the latest events are the test period.

    With ``periods_back`` = k > 0 the clock is turned back: the latest k ×
    ``test_fraction`` of events are dropped first (they never happened), so
    k = 0, 1, 2 are three rolling cut-offs, each with its own validation
    period just before its test period.

    The test period starts at the ``1 - test_fraction`` quantile of event
    times, the validation period at the ``1 - test_fraction - valid_fraction``
    quantile; events at a cut-off time belong to the later period, so a
    period is a time interval and same-second events never straddle it.
    Train is every event before the validation period. Each period holds
    all its events (export and fine-tuning read every event of a split);
    :func:`tf_profiles.evaluation.protocol.eval_rows` tests only users with
    earlier events, on the items new to them.

    Raises:
      ValueError: a fraction outside [0, 1), no test fraction, or fractions
        summing to 1 or more.
    """
    if not 0 < test_fraction < 1:
        raise UserError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= valid_fraction < 1 or test_fraction + valid_fraction >= 1:
        raise UserError(f"valid_fraction must be in [0, 1 - test_fraction), got "
                        f"{valid_fraction} with test_fraction {test_fraction}")
    if periods_back < 0 or (periods_back + 1) * test_fraction + valid_fraction >= 1:
        raise UserError(f"periods_back must be ≥ 0 and leave training events, got "
                        f"{periods_back} with test_fraction {test_fraction} and "
                        f"valid_fraction {valid_fraction}")
    events = order_events(interactions, seed)
    if periods_back:
        times = events["timestamp"].to_numpy()
        now = np.quantile(times, 1 - periods_back * test_fraction, method="higher")
        events = events[times < now].reset_index(drop=True)
    times = events["timestamp"].to_numpy()
    # method="higher": a cut-off is a real event time, so each period is
    # non-empty whenever its fraction of events is.
    test_start = np.quantile(times, 1 - test_fraction, method="higher")
    valid_start = np.quantile(times, 1 - test_fraction - valid_fraction, method="higher")
    is_test = times >= test_start
    is_valid = (times >= valid_start) & ~is_test
    return Split("temporal", events[~is_valid & ~is_test].reset_index(drop=True),
                 events[is_valid].reset_index(drop=True), events[is_test].reset_index(drop=True),
                 _catalogue(events, item_ids), seed)


def cold_start_items(interactions: pd.DataFrame, fraction: float = 0.15,
                     seed: int = 0) -> Split:
    """Holds out a random ``fraction`` of items with all their interactions.

    The model never sees a held-out item in training; each test user's
    held-out items are ranked among all held-out items.
    """
    events = order_events(interactions, seed)
    items = np.array(sorted(events["item_id"].unique()))
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(items, size=int(round(fraction * len(items))), replace=False))
    is_held = events["item_id"].isin(held_out)
    train = events[~is_held]
    test = events[is_held & events["user_id"].isin(train["user_id"])]
    return Split("cold-items", train.reset_index(drop=True), train.iloc[:0],
                 test.reset_index(drop=True), sorted(held_out), seed)


def cold_start_users(interactions: pd.DataFrame, fraction: float = 0.1,
                     max_events: int = 3, seed: int = 0, item_ids=None) -> Split:
    """A random ``fraction`` of users keep only their first ``max_events`` events.

    Their next event is the test; everything after it is dropped. All other
    users train on their full histories.
    """
    events = order_events(interactions, seed)
    users = np.array(sorted(events["user_id"].unique()))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(users, size=max(1, int(round(fraction * len(users)))),
                          replace=False))
    position = events.groupby("user_id").cumcount()
    is_cold = events["user_id"].isin(cold)
    train = events[~is_cold | (position < max_events)]
    test = events[is_cold & (position == max_events)]
    return Split("cold-users", train.reset_index(drop=True), train.iloc[:0],
                 test.reset_index(drop=True), _catalogue(events, item_ids), seed)


def make_split(protocol: str, interactions: pd.DataFrame, seed: int = 0,
               item_ids=None, holdout: bool = True, period: float = 0.1,
               periods_back: int = 0) -> Split:
    """The split of ``protocol``; ``item_ids`` is the catalogue to rank.

    ``period`` and ``periods_back``: the temporal protocol's test and
    validation share of events and its rolling cut-off (see :func:`temporal`).

    ``seed`` orders same-time events and draws the protocol's random
    choices. With ``holdout=False`` every event trains (valid and test are
    empty), in the same tie order.

    Raises:
      ValueError: ``protocol`` is not one of PROTOCOLS.
    """
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not holdout:
        events = order_events(interactions, seed)
        return Split(protocol, events, events.iloc[:0], events.iloc[:0],
                     _catalogue(events, item_ids), seed)
    if protocol == "loo":
        return leave_one_out(interactions, item_ids, seed=seed)
    if protocol == "temporal":
        return temporal(interactions, period, period, seed=seed, item_ids=item_ids,
                        periods_back=periods_back)
    if protocol == "cold-items":
        return cold_start_items(interactions, seed=seed)
    return cold_start_users(interactions, seed=seed, item_ids=item_ids)

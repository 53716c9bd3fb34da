"""The fast path: recompute the profiles of users whose data changed, no training.

Ingestion marks a user stale in the same transaction that stores the event;
a refresh reads the stale users with their marks, rebuilds their profiles
with the trained user tower in batches and writes each batch in one
transaction that also clears the marks. Its cost grows with the number of
touched users, not with the population. A user touched again, or deleted,
while a batch was computing keeps (or loses) the mark and is not
overwritten.
"""
import dataclasses
import time
from typing import List

import numpy as np
from tqdm import tqdm

from tf_profiles.features import spec
from tf_profiles.features.history import pad_left
from tf_profiles.profiles.builder import TOP_INTERESTS, ProfileBuilder
from tf_profiles.store.store import ProfileStore


@dataclasses.dataclass
class RefreshReport:
    """Attributes: stale users found, profiles written, users left stale
    (touched or deleted meanwhile), events read, wall time."""
    stale: int = 0
    written: int = 0
    skipped: int = 0
    events: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.written / self.seconds if self.seconds else 0.0
        return (f"{self.written} profiles refreshed ({self.stale} stale, {self.skipped} "
                f"changed again meanwhile) from {self.events} events in {self.seconds:.1f} s "
                f"({rate:,.0f} users/s)")


def _rows(profiles, model_key) -> List[dict]:
    rows = []
    for index, user in enumerate(profiles["user_id"]):
        history = profiles["history"][index]
        present = history != ""
        rows.append({
            "user_id": user, "embedding": profiles["embedding"][index],
            "user_text": profiles["user_text"][index],
            "history": [[str(i), float(r)] for i, r in
                        zip(history[present], profiles["history_rating"][index][present])],
            "interests": [[str(t), float(w)] for t, w in
                          zip(profiles["interests"][index], profiles["interest_weights"][index])
                          if t],
            "description": profiles["profile_text"][index], "model_key": model_key})
    return rows


def refresh_profiles(store: ProfileStore, builder: ProfileBuilder, batch_size: int = 2048,
                     progress: bool = True) -> RefreshReport:
    """Rebuilds the profiles of stale users, and of every user when the model or
    the profile settings changed (both are recorded in the store).

    Args:
      store: the profile store.
      builder: the trained model and catalogue (its ``model_key`` is stored
        with each profile).
      batch_size: users per batch and per write transaction.

    Returns:
      A :class:`RefreshReport`.
    """
    started = time.perf_counter()
    store.use_model(builder.model_key)
    store.use_profile_settings(builder.profile_settings())
    marks = store.stale_users()
    users = sorted(marks)
    report = RefreshReport(stale=len(users))
    for start in tqdm(range(0, len(users), batch_size), desc="refreshing profiles",
                      unit="batch", disable=not progress or len(users) <= batch_size):
        batch = users[start:start + batch_size]
        events = store.events(batch)
        profiles = builder.build(events, batch, store.user_attributes(batch))
        written = store.write_profiles(_rows(profiles, builder.model_key), marks)
        report.written += written
        report.skipped += len(batch) - written
        report.events += len(events)
    report.seconds = time.perf_counter() - started
    return report


def profile_arrays(store: ProfileStore, builder: ProfileBuilder) -> dict:
    """Every stored profile as the per-user arrays a servable holds
    (the keys of :meth:`ProfileBuilder.build`)."""
    stored = store.profiles()
    histories = stored["history"].tolist()
    tags = np.full((len(stored), TOP_INTERESTS), "", dtype=object)
    weights = np.zeros((len(stored), TOP_INTERESTS), np.float32)
    for row, interests in enumerate(stored["interests"]):
        for rank, (tag, weight) in enumerate(interests[:TOP_INTERESTS]):
            tags[row, rank], weights[row, rank] = tag, weight
    dim = builder.model.output_dim
    return {
        spec.USER_ID: stored["user_id"].to_numpy(dtype=object),
        spec.USER_TEXT: stored["user_text"].fillna("").to_numpy(dtype=object),
        spec.HISTORY: pad_left([[item for item, _ in row] for row in histories],
                               builder.max_history),
        spec.HISTORY_RATING: pad_left([[value for _, value in row] for row in histories],
                                      builder.max_history, 0.0, np.float32),
        "interests": tags, "interest_weights": weights,
        "profile_text": stored["description"].to_numpy(dtype=object),
        "embedding": (np.stack(stored["embedding"].tolist()) if len(stored)
                      else np.zeros((0, dim), np.float32)),
    }

"""``tf-profiles ingest``: validated, idempotent, crash-safe event ingestion.

Unlike training-time loading, ingestion never stops at a bad row: each bad
row is rejected with its line and reason, and the good rows go in.
"""
import dataclasses
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pandas as pd

from tf_profiles.data import schema
from tf_profiles.data.loaders import (line_number, load_items, load_users, read_table,
                                     validate_events)
from tf_profiles.store.store import ProfileStore, event_key



@dataclasses.dataclass
class IngestReport:
    """What happened to each row of a file.

    Attributes:
      inserted: new events stored.
      duplicates: events already stored (same event_id, or same user, item, time).
      rejected: (line, column, reason) for every row that was not stored.
    """
    inserted: int = 0
    duplicates: int = 0
    rejected: List[Tuple[int, str, str]] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.inserted} inserted, {self.duplicates} already stored, "
                f"{len(self.rejected)} rejected")

    def lines(self, path, show_rejected: int = 20) -> List[str]:
        """The summary for ``path``, then the first ``show_rejected`` rejected rows."""
        lines = [f"{path}: {self.summary()}"]
        lines += [f"  line {line}, column {column!r}: {reason}"
                  for line, column, reason in self.rejected[:show_rejected]]
        if len(self.rejected) > show_rejected:
            lines.append(f"  ... {len(self.rejected) - show_rejected} more")
        return lines


def _reject(report, frame, mask, path, column, reason):
    mask = mask.fillna(True).astype(bool)
    for position in np.flatnonzero(mask.to_numpy()):
        report.rejected.append((line_number(path, int(frame.index[position])), column, reason))
    return frame[~mask]


def ingest(store: ProfileStore, events, items=None, users=None,
           batch_size: int = 10_000) -> IngestReport:
    """Adds or updates the ``items`` and ``users`` files (if given), then
    stores the good rows of ``events`` (see :func:`ingest_file`).

    Raises:
      DataError: a file is missing, unreadable, empty or lacks a column.
    """
    if items:
        store.upsert_items(load_items(items))
    if users:
        store.upsert_users(load_users(users))
    return ingest_file(store, events, batch_size=batch_size)


def ingest_file(store: ProfileStore, path, batch_size: int = 10_000) -> IngestReport:
    """Validates ``path`` (CSV/TSV/Parquet events) and stores its good rows.

    Columns: user_id, item_id, timestamp[, rating][, text][, event_id]. A row
    is rejected for a missing field, a bad timestamp or rating, text that is
    not UTF-8, or an item the store does not know; text longer than
    ``schema.MAX_EVENT_TEXT_CHARS`` characters is stored cut to that length. Rows are committed in transactions of
    ``batch_size``: a killed process keeps every committed batch, and
    re-running the same file finishes the job without duplicates.

    Raises:
      DataError: the file is missing, unreadable, empty or lacks a column.
    """
    path = Path(path)
    report = IngestReport()

    def drop(frame, mask, column, message, reason):
        return _reject(report, frame, mask, path, column, message)

    frame, _ = validate_events(read_table(path, allow_empty=True), path, store.known_items(),
                               "unknown item", drop)
    event_ids = (frame["event_id"].astype("string").fillna("") if "event_id" in frame.columns
                 else pd.Series("", index=frame.index))
    columns = [frame["user_id"].to_numpy(object), frame["item_id"].to_numpy(object),
               frame["timestamp"].to_numpy(np.int64),
               frame["rating"].astype("float64").to_numpy(), event_ids.to_numpy(object),
               frame[schema.EVENT_TEXT].to_numpy(object)]
    # Rows are built one transaction at a time, so memory stays bounded by
    # the batch, not the file.
    for start in range(0, len(frame), batch_size):
        rows = [(event_key(u, i, t, e), u, i, int(t), None if r != r else float(r), x)
                for u, i, t, r, e, x in zip(*(c[start:start + batch_size] for c in columns))]
        inserted, duplicates = store.add_events(rows)
        report.inserted += inserted
        report.duplicates += duplicates
    report.rejected.sort()
    return report

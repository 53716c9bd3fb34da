"""The profile store: SQLite (standard library), WAL mode, one schema with versioned migrations.

Events are keyed (an ``event_id`` column, or the (user, item, timestamp)
triple), so ingesting the same event twice adds nothing; every batch is one
transaction, so a process killed mid-ingest leaves every committed event and
nothing half-written.
"""
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import pandas as pd

# Each entry moves the schema from version i to i + 1; never edit a shipped one.
MIGRATIONS: List[str] = [
    """
    CREATE TABLE items (
        item_id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, tags TEXT);
    CREATE TABLE users (user_id TEXT PRIMARY KEY, attributes TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE events (
        event_key TEXT PRIMARY KEY, user_id TEXT NOT NULL,
        item_id TEXT NOT NULL REFERENCES items(item_id),
        timestamp INTEGER NOT NULL, rating REAL, ingested_at INTEGER NOT NULL);
    CREATE INDEX events_by_user ON events(user_id, timestamp);
    CREATE TABLE profiles (
        user_id TEXT PRIMARY KEY, embedding BLOB, interests TEXT, description TEXT,
        updated_at INTEGER NOT NULL, model_version INTEGER);
    CREATE TABLE exports (
        version INTEGER PRIMARY KEY, path TEXT NOT NULL, model_dir TEXT,
        created_at INTEGER NOT NULL);
    """,
]

_KEY_SEPARATOR = "\x1f"


def event_key(user_id: str, item_id: str, timestamp: int, event_id: Optional[str] = None) -> str:
    """The idempotency key: the event's own id, else (user, item, timestamp)."""
    if event_id:
        return f"id{_KEY_SEPARATOR}{event_id}"
    return _KEY_SEPARATOR.join(("uit", user_id, item_id, str(int(timestamp))))


class ProfileStore:
    """Events, users, items, profiles and export versions in one SQLite file.

    Args:
      path: the database file (created, and migrated to the latest schema).

    Example:
      >>> store = ProfileStore("profiles.db")
      >>> store.upsert_items(items_frame)
      >>> inserted, duplicates = store.add_events(rows)
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL: a committed transaction survives a killed process
        # (only an OS crash may lose the last ones).
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self):
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def schema_version(self) -> int:
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self):
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise ValueError(f"{self.path}: schema version {version} is newer than this "
                             f"tf_profiles knows ({len(MIGRATIONS)}); upgrade tf_profiles")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in filter(str.strip, script.split(";")):
                    self.connection.execute(statement)
                self.connection.execute(f"PRAGMA user_version = {number}")

    def transaction(self):
        """A context manager: BEGIN IMMEDIATE … COMMIT, ROLLBACK on error."""
        return _Transaction(self.connection)

    # === Catalogue ===

    def upsert_items(self, items: pd.DataFrame):
        rows = [(str(r["item_id"]), str(r["title"]), _text(r.get("description")),
                 _text(r.get("tags"))) for r in items.to_dict("records")]
        with self.transaction():
            self.connection.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?) ON CONFLICT(item_id) DO UPDATE SET "
                "title=excluded.title, description=excluded.description, tags=excluded.tags",
                rows)

    def upsert_users(self, users: pd.DataFrame):
        rows = [(str(r.pop("user_id")), json.dumps({k: _text(v) for k, v in r.items()}))
                for r in users.to_dict("records")]
        with self.transaction():
            self.connection.executemany(
                "INSERT INTO users VALUES (?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                "attributes=excluded.attributes", rows)

    def user_ids(self) -> set:
        return {row[0] for row in self.connection.execute("SELECT user_id FROM users")}

    def known_items(self) -> set:
        return {row[0] for row in self.connection.execute("SELECT item_id FROM items")}

    # === Events ===

    def add_events(self, rows: Iterable[Tuple[str, str, str, int, Optional[float]]]
                   ) -> Tuple[int, int]:
        """Inserts (key, user_id, item_id, timestamp, rating) rows in one transaction.

        Returns:
          (inserted, duplicates): rows already stored (same key) are not added again.
        """
        rows = list(rows)
        now = int(time.time())
        with self.transaction():
            before = self.connection.total_changes
            self.connection.executemany(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, now) for row in rows])
            inserted = self.connection.total_changes - before
        return inserted, len(rows) - inserted

    def events(self, user_ids: Optional[Iterable[str]] = None) -> pd.DataFrame:
        """Events (user_id, item_id, timestamp, rating), all or for ``user_ids``."""
        query = "SELECT user_id, item_id, timestamp, rating FROM events"
        if user_ids is None:
            return pd.read_sql_query(query, self.connection)
        users = list(user_ids)
        marks = ",".join("?" * len(users))
        return pd.read_sql_query(f"{query} WHERE user_id IN ({marks})", self.connection,
                                 params=users)

    def count_events(self) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # === Deletion ===

    def delete_user(self, user_id: str) -> int:
        """Removes the user's events, attributes and profile; returns the events removed."""
        with self.transaction():
            removed = self.connection.execute(
                "DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            self.connection.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,))
            self.connection.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
        return removed


class _Transaction:
    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.connection.execute("ROLLBACK" if exc_type else "COMMIT")


def _text(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)

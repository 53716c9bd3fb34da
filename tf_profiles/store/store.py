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
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd

from tf_profiles.errors import UserError

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
    # Fast-path refresh: a profile row holds everything a servable needs for
    # the user, and every change to a user's events or attributes marks the
    # user stale with a fresh random mark (in the same transaction), so a
    # refresh can tell whether a user changed again while it was computing.
    """
    ALTER TABLE profiles ADD COLUMN user_text TEXT;
    ALTER TABLE profiles ADD COLUMN history TEXT;
    ALTER TABLE profiles ADD COLUMN model_key TEXT;
    CREATE TABLE stale_users (user_id TEXT PRIMARY KEY, mark INTEGER NOT NULL);
    CREATE TRIGGER events_mark_stale AFTER INSERT ON events BEGIN
        INSERT INTO stale_users VALUES (NEW.user_id, random())
        ON CONFLICT(user_id) DO UPDATE SET mark = excluded.mark;
    END;
    CREATE TRIGGER users_insert_mark_stale AFTER INSERT ON users BEGIN
        INSERT INTO stale_users VALUES (NEW.user_id, random())
        ON CONFLICT(user_id) DO UPDATE SET mark = excluded.mark;
    END;
    CREATE TRIGGER users_update_mark_stale AFTER UPDATE ON users
    WHEN OLD.attributes IS NOT NEW.attributes BEGIN
        INSERT INTO stale_users VALUES (NEW.user_id, random())
        ON CONFLICT(user_id) DO UPDATE SET mark = excluded.mark;
    END;
    INSERT OR IGNORE INTO stale_users
        SELECT user_id, random() FROM (SELECT user_id FROM users
                                        UNION SELECT user_id FROM events);
    """,
    # Which model the stored profiles belong to, kept once: comparing it per
    # profile would make every refresh scan the whole population.
    """
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT);
    """,
    # Never read: profiles.model_version was always NULL (settings holds the
    # profile model) and each export's own metadata says what it was made from.
    # DROP COLUMN needs SQLite 3.35 or newer.
    """
    ALTER TABLE profiles DROP COLUMN model_version;
    DROP TABLE exports;
    """,
    # What the user wrote with the event (review, comment, query); NULL: nothing.
    """
    ALTER TABLE events ADD COLUMN text TEXT;
    """,
]

_KEY_SEPARATOR = "\x1f"
_MAX_PARAMETERS = 30_000


def event_key(user_id: str, item_id: str, timestamp: int, event_id: Optional[str] = None) -> str:
    """The idempotency key: the event's own id, else (user, item, timestamp)."""
    if event_id:
        return f"id{_KEY_SEPARATOR}{event_id}"
    return _KEY_SEPARATOR.join(("uit", user_id, item_id, str(int(timestamp))))


class ProfileStore:
    """Events, users, items and profiles in one SQLite file.

    Args:
      path: the database file (created, and migrated to the latest schema).

    Raises:
      ValueError: the file's schema is newer than this tf_profiles knows, or
        a migration fails (its statement and the SQLite version are named).

    Example:
      >>> store = ProfileStore("profiles.db")
      >>> store.upsert_items(items_frame)
      >>> inserted, duplicates = store.add_events(rows)
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: how long a statement waits for another process's lock.
        self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            self._use_wal()
        except sqlite3.DatabaseError as error:
            self.connection.close()
            if "locked" in str(error):
                raise
            raise UserError(f"{self.path}: not a profile store, or a damaged one "
                            f"(SQLite: {error})") from error
        self.connection.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, not just unlinked (the
        # default depends on how SQLite was built).
        self.connection.execute("PRAGMA secure_delete=ON")
        # WAL + NORMAL: a committed transaction survives a killed process
        # (only an OS crash may lose the last ones).
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _use_wal(self):
        # Switching a new file to WAL needs it alone for a moment, and SQLite
        # answers "locked" at once there instead of waiting out the busy
        # timeout: a process opening it beside others tries again.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

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
        # The version is read under the write lock (BEGIN IMMEDIATE): two
        # processes opening a new file at once would otherwise both migrate it.
        with self.transaction():
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise UserError(f"{self.path}: schema version {version} is newer than this "
                                f"tf_profiles knows ({len(MIGRATIONS)}); upgrade tf_profiles")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    try:
                        self.connection.execute(statement)
                    except sqlite3.OperationalError as error:
                        raise UserError(
                            f"{self.path}: cannot migrate to schema version {number} with "
                            f"SQLite {sqlite3.sqlite_version}: {error} in {statement!r}"
                        ) from error
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

    def check_user(self, user_id: str):
        """Raises ValueError unless the store has events or attributes of ``user_id``."""
        known = self.connection.execute(
            "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = ?) "
            "OR EXISTS (SELECT 1 FROM events WHERE user_id = ?)", (user_id, user_id)).fetchone()[0]
        if not known:
            raise UserError(f"user {user_id!r} has no events or attributes in {self.path}")

    def known_items(self) -> set:
        return {row[0] for row in self.connection.execute("SELECT item_id FROM items")}

    def items(self) -> pd.DataFrame:
        """item_id, title, description, tags of every stored item."""
        return pd.read_sql_query("SELECT * FROM items ORDER BY item_id", self.connection)

    def user_attributes(self, user_ids: Iterable[str]) -> List[dict]:
        """Each user's attributes (``{}`` for a user with events only), in the order given."""
        users = list(user_ids)
        stored = dict(self._select_in(
            "SELECT user_id, attributes FROM users WHERE user_id IN ({})", users))
        return [json.loads(stored.get(user, "{}")) for user in users]

    def _select_in(self, query: str, keys: List[str]) -> List[tuple]:
        # SQLite caps the bound parameters of one statement (32,766 by default).
        rows = []
        for start in range(0, len(keys), _MAX_PARAMETERS):
            chunk = keys[start:start + _MAX_PARAMETERS]
            rows += self.connection.execute(query.format(",".join("?" * len(chunk))),
                                            chunk).fetchall()
        return rows

    # === Events ===

    def add_events(self, rows: Iterable[tuple]) -> Tuple[int, int]:
        """Inserts (key, user_id, item_id, timestamp, rating[, text]) rows in one transaction.

        ``text`` (what the user wrote with the event) may be None or "" for none.

        Returns:
          (inserted, duplicates): rows already stored (same key) are not added again.
        """
        rows = [tuple(row) + (None,) * (6 - len(row)) for row in rows]
        now = int(time.time())
        with self.transaction():
            # rowcount, unlike total_changes, leaves out the rows the
            # stale-marking trigger writes.
            inserted = self.connection.executemany(
                "INSERT OR IGNORE INTO events (event_key, user_id, item_id, timestamp, rating, "
                "text, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*row[:5], row[5] or None, now) for row in rows]).rowcount
        return inserted, len(rows) - inserted

    def events(self, user_ids: Optional[Iterable[str]] = None) -> pd.DataFrame:
        """Events (user_id, item_id, timestamp, rating, text), all or for ``user_ids``.

        ``text`` is "" where the event has none. Ordered by user, time, then
        arrival, so equal timestamps keep the order they were ingested in,
        whichever users are asked for.
        """
        query = "SELECT user_id, item_id, timestamp, rating, COALESCE(text, '') FROM events"
        order = " ORDER BY user_id, timestamp, rowid"
        if user_ids is None:
            rows = self.connection.execute(query + order).fetchall()
        else:
            rows = self._select_in(query + " WHERE user_id IN ({})" + order, list(user_ids))
        frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "text"])
        return frame.astype({"user_id": str, "item_id": str, "timestamp": "int64",
                             "rating": "float64", "text": str})

    def consumed_items(self) -> pd.DataFrame:
        """Every distinct (user_id, item_id) with an event."""
        return pd.DataFrame(self.connection.execute(
            "SELECT DISTINCT user_id, item_id FROM events").fetchall(),
            columns=["user_id", "item_id"])

    def count_events(self) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # === Profiles ===

    def stale_users(self) -> Dict[str, int]:
        """Users whose events or attributes changed since their profile was written → mark."""
        return dict(self.connection.execute("SELECT user_id, mark FROM stale_users"))

    def is_stale(self, user_id: str) -> bool:
        return self.connection.execute(
            "SELECT EXISTS (SELECT 1 FROM stale_users WHERE user_id = ?)", (user_id,)).fetchone()[0]

    def mark_stale(self):
        """Marks every user stale (their profiles are recomputed by the next refresh)."""
        with self.transaction():
            self._mark_everyone_stale()

    def profile_model(self) -> Optional[str]:
        """The key of the model the stored profiles are computed by (None: none yet)."""
        row = self.connection.execute(
            "SELECT value FROM settings WHERE name = 'profile_model'").fetchone()
        return None if row is None else row[0]

    def profile_settings(self) -> dict:
        """The settings the stored profiles are computed with ({}: none recorded)."""
        row = self.connection.execute(
            "SELECT value FROM settings WHERE name = 'profile_settings'").fetchone()
        return {} if row is None else json.loads(row[0])

    def use_profile_settings(self, settings: dict):
        """Records the settings profiles are now computed with; on a change every
        user is marked stale, in the same transaction."""
        with self.transaction():
            if self.profile_settings() != settings:
                self._mark_everyone_stale()
                self.connection.execute(
                    "INSERT OR REPLACE INTO settings VALUES ('profile_settings', ?)",
                    (json.dumps(settings, sort_keys=True),))

    def use_model(self, model_key: str):
        """Records that profiles are now computed by ``model_key``; on a change of
        model every user is marked stale, in the same transaction."""
        with self.transaction():
            if self.profile_model() != model_key:
                self._mark_everyone_stale()
                self.connection.execute(
                    "INSERT OR REPLACE INTO settings VALUES ('profile_model', ?)", (model_key,))

    def _mark_everyone_stale(self):
        self.connection.execute(
            "INSERT OR IGNORE INTO stale_users SELECT user_id, random() FROM ("
            "SELECT user_id FROM users UNION SELECT user_id FROM events"
            " UNION SELECT user_id FROM profiles)")

    def write_profiles(self, profiles: List[dict], marks: Dict[str, int]) -> int:
        """Stores profiles computed for users read stale with ``marks``, in one transaction.

        A user touched again (new mark) or deleted (no mark) while the
        profiles were computed is left stale and unwritten: the next refresh
        recomputes it, and a deleted user's profile is never brought back.

        Args:
          profiles: dicts with user_id, embedding (float32 array), user_text,
            history ([[item, rating], ...], oldest first), interests
            ([[tag, weight], ...]), description, model_key.

        Returns:
          How many were written.
        """
        now = int(time.time())
        with self.transaction():
            current = dict(self._select_in(
                "SELECT user_id, mark FROM stale_users WHERE user_id IN ({})",
                [p["user_id"] for p in profiles]))
            fresh = [p for p in profiles if current.get(p["user_id"]) == marks[p["user_id"]]]
            self.connection.executemany(
                "INSERT OR REPLACE INTO profiles (user_id, embedding, interests, description, "
                "updated_at, user_text, history, model_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(p["user_id"], np.asarray(p["embedding"], np.float32).tobytes(),
                  json.dumps(p["interests"]), p["description"], now, p["user_text"],
                  json.dumps(p["history"]), p["model_key"]) for p in fresh])
            self.connection.executemany(
                "DELETE FROM stale_users WHERE user_id = ? AND mark = ?",
                [(p["user_id"], marks[p["user_id"]]) for p in fresh])
        return len(fresh)

    def profiles(self, user_ids: Optional[Iterable[str]] = None) -> pd.DataFrame:
        """Stored profiles: user_id, embedding (array), user_text, history,
        interests (lists), description, updated_at, model_key; ordered by user."""
        query = ("SELECT user_id, embedding, user_text, history, interests, description, "
                 "updated_at, model_key FROM profiles")
        rows = (self.connection.execute(query + " ORDER BY user_id").fetchall()
                if user_ids is None else
                self._select_in(query + " WHERE user_id IN ({}) ORDER BY user_id",
                                list(user_ids)))
        frame = pd.DataFrame(rows, columns=["user_id", "embedding", "user_text", "history",
                                            "interests", "description", "updated_at",
                                            "model_key"])
        frame["embedding"] = [np.frombuffer(b, np.float32) for b in frame["embedding"]]
        for column in ("history", "interests"):
            frame[column] = [json.loads(v) for v in frame[column]]
        return frame

    # === Deletion ===

    def delete_user(self, user_id: str) -> int:
        """Removes the user's events, attributes and profile; returns the events removed.

        The id is read as ingestion reads it (surrounding spaces dropped). Once
        committed, the write-ahead log is checkpointed into the file and
        truncated: until then it still held the rows as they were.
        """
        user_id = str(user_id).strip()
        with self.transaction():
            removed = self.connection.execute(
                "DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            for table in ("profiles", "stale_users", "users"):
                self.connection.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        busy, _, _ = self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise UserError(f"{self.path}: user {user_id!r} is deleted, but another process "
                            "reading the store keeps older copies of their rows in its "
                            "write-ahead log; run delete-user again once it has finished")
        return removed


class _Transaction:
    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.connection.execute("ROLLBACK" if exc_type else "COMMIT")


def _statements(script: str) -> List[str]:
    # Split at the ";" that end a statement, not those inside a trigger body.
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()!r}")
    return statements


def _text(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)

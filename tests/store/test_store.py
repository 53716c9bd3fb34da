import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from tf_profiles.data.loaders import DataError, load_items
from tf_profiles.store import store as store_module
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import MIGRATIONS, ProfileStore, event_key

ITEMS = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "tags": ["X|Y", "Y"]})


@pytest.fixture()
def store(tmp_path):
    with ProfileStore(tmp_path / "profiles.db") as opened:
        opened.upsert_items(ITEMS)
        yield opened


def _write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_schema_is_migrated_and_wal(store):
    assert store.schema_version == len(MIGRATIONS)
    assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _rows(store, query):
    return store.connection.execute(query).fetchall()


def test_a_store_at_schema_3_migrates_keeping_its_data(tmp_path, monkeypatch):
    path = tmp_path / "profiles.db"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:3])
    with ProfileStore(path) as old:
        old.upsert_items(ITEMS)
        old.upsert_users(pd.DataFrame({"user_id": ["u1", "u2"], "age": [24, 30]}))
        # As the code of schema 3 inserted them (no text column yet).
        old.connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", [
            (event_key("u1", "a", 100), "u1", "a", 100, 5.0, 1),
            (event_key("u2", "b", 200), "u2", "b", 200, None, 1)])
        old.write_profiles([{"user_id": "u1", "embedding": [0.5, -1.0], "user_text": "",
                             "history": [["a", 5.0]], "interests": [["X", 1.0]],
                             "description": "Interested in X.", "model_key": "m1"}],
                           old.stale_users())
        old.connection.execute("INSERT INTO exports VALUES (1, 'saved_models/m/1', 'm', 0)")
        assert old.schema_version == 3
        queries = ["SELECT * FROM items ORDER BY item_id", "SELECT * FROM users ORDER BY user_id",
                   "SELECT event_key, user_id, item_id, timestamp, rating, ingested_at "
                   "FROM events ORDER BY event_key",
                   "SELECT * FROM stale_users ORDER BY user_id",
                   "SELECT user_id, embedding, interests, description, updated_at, user_text, "
                   "history, model_key FROM profiles ORDER BY user_id"]
        before = [_rows(old, query) for query in queries]
    monkeypatch.undo()
    with ProfileStore(path) as migrated:
        assert migrated.schema_version == len(MIGRATIONS)
        assert [_rows(migrated, query) for query in queries] == before
        assert before[2] and before[4]  # events and a profile were there to keep
        columns = [row[1] for row in _rows(migrated, "PRAGMA table_info(profiles)")]
        assert "model_version" not in columns
        tables = {row[0] for row in _rows(migrated, "SELECT name FROM sqlite_master")}
        assert "exports" not in tables
        assert migrated.profiles()["embedding"][0].tolist() == [0.5, -1.0]
        assert migrated.events()["text"].tolist() == ["", ""]


def test_same_file_twice_changes_nothing(store, tmp_path):
    events = _write(tmp_path / "events.csv", """
        user_id,item_id,timestamp,rating
        u1,a,100,5
        u1,b,2020-01-01T00:00:00Z,
        u2,a,100,3
    """)
    first = ingest_file(store, events)
    assert (first.inserted, first.duplicates, first.rejected) == (3, 0, [])
    snapshot = store.events().sort_values(["user_id", "timestamp"]).reset_index(drop=True)
    second = ingest_file(store, events)
    assert (second.inserted, second.duplicates) == (0, 3)
    pd.testing.assert_frame_equal(
        store.events().sort_values(["user_id", "timestamp"]).reset_index(drop=True), snapshot)


def test_event_ids_are_the_key_when_given(store, tmp_path):
    events = _write(tmp_path / "events.csv", """
        event_id,user_id,item_id,timestamp
        e1,u1,a,100
        e2,u1,a,100
        e1,u1,b,200
    """)
    report = ingest_file(store, events)
    assert (report.inserted, report.duplicates) == (2, 1)


def test_bad_rows_are_rejected_with_reasons_and_good_rows_kept(store, tmp_path):
    events = _write(tmp_path / "events.csv", """
        user_id,item_id,timestamp,rating
        u1,a,100,5
        ,a,101,4
        u1,zzz,102,4
        u1,b,soon,4
        u1,b,103,five
        u2,b,104,2
    """)
    report = ingest_file(store, events)
    assert report.inserted == 2
    assert report.rejected == [(3, "user_id", "missing value"), (4, "item_id", "unknown item"),
                               (5, "timestamp", "not a Unix time or ISO-8601 date"),
                               (6, "rating", "not a number")]


def test_a_file_without_a_required_column_is_an_error(store, tmp_path):
    with pytest.raises(DataError, match="missing column"):
        ingest_file(store, _write(tmp_path / "events.csv", "user_id,item_id\nu1,a\n"))
    assert store.count_events() == 0


def test_delete_user_removes_events_and_attributes(store, tmp_path):
    store.upsert_users(pd.DataFrame({"user_id": ["u1", "u2"], "age": [24, 30]}))
    ingest_file(store, _write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu1,a,1\nu2,a,1\n"))
    assert store.delete_user("u1") == 1
    assert store.events()["user_id"].tolist() == ["u2"]
    users = [r[0] for r in store.connection.execute("SELECT user_id FROM users")]
    assert users == ["u2"]


def test_a_deleted_users_rows_leave_the_files_at_once(tmp_path):
    """Scans the raw database and write-ahead log while the store is still open."""
    items = "item_id,title\n" + "".join(f"i{i},Film {i}\n" for i in range(300))
    events = "user_id,item_id,timestamp\n" + "".join(
        f"someone-{u:03d},i{i},{1000 + 300 * u + i}\n" for u in range(60) for i in range(300))
    with ProfileStore(tmp_path / "p.db") as store:
        store.upsert_items(load_items(_write(tmp_path / "items.csv", items)))
        assert ingest_file(store, _write(tmp_path / "e.csv", events)).inserted == 18_000
        assert store.delete_user(" someone-007 ") == 300  # ids read as ingestion reads them
        raw = b"".join(path.read_bytes() for path in tmp_path.glob("p.db*"))
        assert raw.count(b"someone-007") == 0 and raw.count(b"someone-008") >= 300


def test_a_header_only_file_inserts_nothing_and_is_no_error(store, tmp_path):
    report = ingest_file(store, _write(tmp_path / "e.csv", "user_id,item_id,timestamp\n"))
    assert (report.inserted, report.duplicates, report.rejected) == (0, 0, [])


@pytest.mark.slow
def test_killed_mid_ingest_keeps_every_committed_event(tmp_path):
    database, events = tmp_path / "profiles.db", tmp_path / "events.csv"
    with ProfileStore(database) as store:
        store.upsert_items(ITEMS)
    rows = 200_000
    pd.DataFrame({"user_id": [f"u{i % 5000}" for i in range(rows)],
                  "item_id": ["a", "b"] * (rows // 2), "timestamp": range(rows)}).to_csv(
                      events, index=False)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from tf_profiles.store.store import ProfileStore
        from tf_profiles.store.ingest import ingest_file
        ingest_file(ProfileStore({str(database)!r}), {str(events)!r}, batch_size=1000)
    """)])
    watcher = sqlite3.connect(database)
    deadline = time.time() + 120
    while time.time() < deadline:
        if watcher.execute("SELECT COUNT(*) FROM events").fetchone()[0] >= 5000:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    watcher.close()
    with ProfileStore(database) as store:
        assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        committed = store.count_events()
        assert 5000 <= committed < rows and committed % 1000 == 0  # whole batches only
        report = ingest_file(store, events)
        assert report.duplicates == committed and store.count_events() == rows


def test_ingest_and_delete_user_commands(tmp_path, capsys):
    from tf_profiles.cli import main

    items = _write(tmp_path / "items.csv", "item_id,title\na,A\n")
    events = _write(tmp_path / "events.csv", "user_id,item_id,timestamp\nu1,a,1\nu1,zz,2\n")
    database = str(tmp_path / "profiles.db")
    assert main(["ingest", str(events), "--store", database, "--items", str(items)]) == 0
    out = capsys.readouterr().out
    assert "1 inserted, 0 already stored, 1 rejected" in out
    assert "line 3, column 'item_id': unknown item" in out
    assert main(["delete-user", "u1", "--store", database]) == 0
    assert "1 events" in capsys.readouterr().out
    with ProfileStore(database) as store:
        assert store.count_events() == 0


def test_consumed_items_are_every_distinct_user_item_pair(store):
    store.add_events([(event_key("u1", "a", 1), "u1", "a", 1, 4.0),
                      (event_key("u1", "a", 2), "u1", "a", 2, 2.0),
                      (event_key("u1", "b", 3), "u1", "b", 3, None),
                      (event_key("u2", "b", 4), "u2", "b", 4, 5.0)])
    pairs = store.consumed_items().sort_values(["user_id", "item_id"])
    assert pairs.values.tolist() == [["u1", "a"], ["u1", "b"], ["u2", "b"]]
    store.delete_user("u1")
    assert store.consumed_items().values.tolist() == [["u2", "b"]]


def test_event_text_is_stored_cut_and_read_back(store, tmp_path):
    from tf_profiles.data.schema import MAX_EVENT_TEXT_CHARS

    events = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2"], "item_id": ["a", "b", "a", "b"],
                  "timestamp": [1, 2, 3, 4],
                  "text": ["I hated it", None, "x" * 1_000_000, b"\xff"]}
                 ).astype({"text": object}).to_parquet(events)
    report = ingest_file(store, events)
    assert (report.inserted, [r[1:] for r in report.rejected]) == (
        3, [("text", "not UTF-8 text")])
    texts = store.events()["text"].tolist()
    assert texts[:2] == ["I hated it", ""] and len(texts[2]) == MAX_EVENT_TEXT_CHARS


def test_non_utf8_csv_is_refused_whole_with_its_line_and_nothing_stored(store, tmp_path):
    events = tmp_path / "events.csv"
    events.write_bytes(b"user_id,item_id,timestamp,text\nu1,a,1,ok\nu1,b,2,caf\xe9\n")
    with pytest.raises(DataError, match=r"events.csv, line 3: not UTF-8 text"):
        ingest_file(store, events)
    assert store.count_events() == 0


_OPEN_AT = """
import sys, time
from tf_profiles.store.store import ProfileStore
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
with ProfileStore(sys.argv[1]) as store:
    print(store.schema_version)
"""


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    for trial in range(3):
        path, start = tmp_path / f"new-{trial}.db", time.time() + 5
        opened = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(path), str(start)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(6)]
        answers = [process.communicate(timeout=120) for process in opened]
        assert [process.returncode for process in opened] == [0] * 6, answers
        assert {out.strip() for out, _ in answers} == {str(len(MIGRATIONS))}


def test_a_damaged_store_file_is_named_not_a_traceback(tmp_path, capsys):
    from tf_profiles.cli import main

    damaged = tmp_path / "p.db"
    damaged.write_bytes(bytes(range(256)) * 20)
    assert main(["delete-user", "u1", "--store", str(damaged)]) == 2
    assert "p.db: not a profile store, or a damaged one" in capsys.readouterr().err

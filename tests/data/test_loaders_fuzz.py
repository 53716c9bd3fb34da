"""Fuzzing the input loaders and ingestion with random CSV files.

Whatever a file holds, loading gives a valid result or a DataError naming
the file, never another exception; ingestion rejects bad rows one by one
and leaves the store consistent.
"""
import csv
import io
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tf_profiles.data.loaders import DataError, load_dataset, load_items, load_users, read_table
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore

# No example database (.hypothesis/ then holds only Hypothesis's caches, ignored by
# git); a failure prints the input that caused it.
FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

ODD_CELLS = ["", " ", "NaN", "nan", "NULL", "None", "NA", "inf", "-inf", "1e308", "1e400",
             "-0", "9" * 40, "-" + "9" * 25, "1_000", "0x1F", "1,5", "５", "١٢٣",
             "2020-01-01", "2020-01-01T00:00:00Z", "2020-02-30", "2020-13-45", "0000-00-00",
             "9999-12-31T23:59:59", "1677-09-21", "1970-01-01T00:00:00+14:00", "yesterday",
             '"', '""', "a,b", "line\nbreak", "\r", "\ufeff1", "\x00", "\u202e1", "😀", "é"]
# Ids the files share, so rows sometimes join and sometimes do not.
IDS = ["1", "2", "007", " 2 ", "u1", "é"]
CELL = st.one_of(st.sampled_from(ODD_CELLS), st.sampled_from(IDS),
                 st.integers(-2**70, 2**70).map(str),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.text(max_size=12))
# What a column normally holds, so that many files load and the checks on a
# loaded dataset run too.
TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=12)
VALID = {"user_id": st.sampled_from(IDS), "item_id": st.sampled_from(IDS),
         "event_id": st.sampled_from(IDS + [""]),
         "timestamp": st.one_of(st.integers(0, 2**31).map(str),
                                st.sampled_from(["2020-01-01", "2021-06-30T12:00:00Z"])),
         "rating": st.sampled_from(["1", "5", "4.5", ""]), "title": TEXT}


@st.composite
def csv_bytes(draw, required, optional=(), key=None):
    """A CSV file: mostly the right columns and row widths, sometimes not.

    ``key``: a column whose values are usually unique (item or user id).
    """
    def rarely():  # ~1 in 10; not 0, which Hypothesis draws far more often than 1 in 10
        return draw(st.integers(0, 9)) == 5

    extras = draw(st.lists(st.sampled_from(list(optional) + ["extra", "", "Unnamed: 0"]),
                           max_size=2))
    if rarely():  # the same column twice once names are stripped
        extras.append(" " + required[0])
    columns = draw(st.permutations(list(required) + extras))
    if rarely():  # a required column is gone
        columns = columns[1:]
    width = len(columns)
    noise = draw(st.sampled_from([0, 1, 5, 10]))  # in tenths: how many columns hold odd cells
    if rarely():  # ragged rows
        row = st.lists(CELL, min_size=max(width - 1, 0), max_size=width + 1)
    else:
        row = st.tuples(*[CELL if draw(st.integers(0, 9)) < noise
                          else VALID.get(column.strip(), TEXT) for column in columns])
    at = columns.index(key) if key in columns else None
    unique = dict(unique_by=lambda r: r[at].strip() if at < len(r) else "", max_size=len(IDS)
                  ) if at is not None and not rarely() else dict(max_size=8)
    rows = [list(r) for r in draw(st.lists(row, min_size=0 if rarely() else 1, **unique))]
    buffer = io.StringIO()
    if draw(st.booleans()):
        writer = csv.writer(buffer, quoting=draw(st.sampled_from(
            [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])))
        writer.writerows([columns] + rows)
    else:  # written by hand: stray quotes, commas and line breaks stay raw
        buffer.write("\n".join(",".join(row) for row in [columns] + rows))
    encoded = buffer.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])),
                                       errors="surrogatepass")
    if rarely():  # bytes that are not UTF-8
        at = draw(st.integers(0, len(encoded)))
        encoded = encoded[:at] + b"\xff\xfe" + encoded[at:]
    return encoded


INTERACTIONS = csv_bytes(("user_id", "item_id", "timestamp"), ("rating",))
ITEMS = csv_bytes(("item_id", "title"), ("description", "tags"), key="item_id")
USERS = csv_bytes(("user_id",), ("age", "text"), key="user_id")
EVENTS = csv_bytes(("user_id", "item_id", "timestamp"), ("rating", "event_id"))


def _write(directory, name, content: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(content)
    return path


def _names_a_file(error: DataError, *paths):
    assert error.path in {str(p) for p in paths}, error
    assert str(error).startswith(error.path), error


ITEMS_OK = b"item_id,title\n1,A\n2,B\n"


# What the fuzzing found (each raised TypeError, OverflowError, OutOfBoundsDatetime,
# AttributeError or ValueError, or silently shifted columns), pinned.
@pytest.mark.parametrize("events, message", [
    (b"9" * 40, r"line 2, column 'timestamp': not a Unix time"),
    (b"inf", r"line 2, column 'timestamp': not a Unix time"),
    (b"-9223372036854775808", r"line 2, column 'timestamp': not a Unix time"),
    (b"1,5", r"a row has more fields than the header"),  # was: user_id became the index
])
def test_timestamps_and_rows_found_by_fuzzing(tmp_path, events, message):
    interactions = _write(tmp_path, "interactions.csv",
                          b"user_id,item_id,timestamp\nu1,1," + events + b"\n")
    with pytest.raises(DataError, match=message):
        load_dataset(interactions, _write(tmp_path, "items.csv", ITEMS_OK))


def test_far_dates_parse_or_are_named_and_repeated_columns_are_an_error(tmp_path):
    interactions = _write(tmp_path, "interactions.csv",
                          b"user_id,item_id,timestamp\nu1,1,9999-12-31T23:59:59\n")
    dataset = load_dataset(interactions, _write(tmp_path, "items.csv", ITEMS_OK))
    assert dataset.interactions["timestamp"].tolist() == [253402300799]
    items = _write(tmp_path, "items.csv", b"item_id,title, item_id\n1,A,1\n")
    with pytest.raises(DataError, match=r"items.csv: column\(s\) 'item_id' appear more than"):
        load_items(items)
    with pytest.raises(DataError, match=r"items.csv: no usable rows left"):
        load_dataset(interactions, _write(tmp_path, "items.csv", b"item_id,title\n1,\n"),
                     skip_bad_rows=True)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_read_as_a_table_or_a_data_error(content):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "any.csv", content)
        try:
            frame = read_table(path)
        except DataError as error:
            _names_a_file(error, path)
            return
    assert len(frame) > 0 and all(isinstance(c, str) for c in frame.columns)


@FUZZ
@given(INTERACTIONS, ITEMS, st.one_of(st.none(), USERS), st.booleans())
def test_load_dataset_is_valid_or_names_the_file(interactions, items, users, skip):
    with tempfile.TemporaryDirectory() as directory:
        paths = [_write(directory, "interactions.csv", interactions),
                 _write(directory, "items.csv", items),
                 _write(directory, "users.csv", users) if users is not None else None]
        try:
            dataset = load_dataset(*paths, skip_bad_rows=skip)
        except DataError as error:
            _names_a_file(error, *[p for p in paths if p])
            event("DataError")
            return
    event("loaded")
    events, catalogue = dataset.interactions, dataset.items
    assert (str(events["timestamp"].dtype), str(events["rating"].dtype)) == ("int64", "float64")
    assert len(events) > 0 and len(catalogue) > 0
    assert catalogue.index.is_unique and catalogue.index.isin(catalogue["item_id"]).all()
    assert events["item_id"].isin(catalogue.index).all()
    for ids in (events["user_id"], events["item_id"], catalogue["item_id"]):
        assert ids.map(lambda i: isinstance(i, str) and i == i.strip() and i != "").all()
    assert (catalogue["title"].str.strip() != "").all()
    assert not events.duplicated(["user_id", "item_id", "timestamp"]).any()
    if dataset.users is not None:
        assert dataset.users.index.is_unique


@FUZZ
@given(ITEMS, USERS, st.booleans())
def test_items_and_users_load_or_name_the_file(items, users, skip):
    with tempfile.TemporaryDirectory() as directory:
        for load, name, content in ((load_items, "items.csv", items),
                                    (load_users, "users.csv", users)):
            path = _write(directory, name, content)
            try:
                frame = load(path, skip_bad_rows=skip)
            except DataError as error:
                _names_a_file(error, path)
                continue
            assert frame.index.is_unique and len(frame.columns) == len(set(frame.columns))


@FUZZ
@given(EVENTS, EVENTS)
def test_ingest_rejects_bad_rows_and_keeps_the_store_consistent(first, second):
    with tempfile.TemporaryDirectory() as directory, \
            ProfileStore(Path(directory) / "profiles.db") as store:
        store.upsert_items(pd.DataFrame({"item_id": IDS, "title": IDS}))
        for content in (first, second):
            path = _write(directory, "events.csv", content)
            before = store.count_events()
            try:
                report = ingest_file(store, path)
            except DataError as error:  # the file as a whole: unreadable, empty, no column
                _names_a_file(error, path)
                assert store.count_events() == before
                continue
            rows = len(read_table(path, allow_empty=True))  # a header-only file: 0 rows
            assert report.inserted + report.duplicates + len(report.rejected) == rows
            assert store.count_events() == before + report.inserted
            assert all(line >= 2 for line, _, _ in report.rejected)
            again = ingest_file(store, path)  # idempotent
            assert again.inserted == 0 and store.count_events() == before + report.inserted
        stored = store.events()
        assert stored["item_id"].isin(IDS).all()
        assert (stored["user_id"].str.strip() == stored["user_id"]).all()
        with sqlite3.connect(store.path) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert check.execute("PRAGMA foreign_key_check").fetchall() == []

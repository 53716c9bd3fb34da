import pandas as pd
import pytest

from tf_profiles.data.loaders import DataError, load_dataset


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture()
def files(tmp_path):
    items = _write(tmp_path / "items.csv",
                   "item_id,title,tags\n007,Bond,Action|Spy\n2,Heat,Crime\n")
    users = _write(tmp_path / "users.csv", "user_id,age,text\nu1,24,likes spies\n")
    interactions = _write(tmp_path / "interactions.csv",
                          "user_id,item_id,timestamp,rating\n"
                          "u1,007,100,5\nu1,2,2020-01-01T00:00:00Z,\n")
    return interactions, items, users


def test_ids_stay_strings_and_dates_parse(files):
    dataset = load_dataset(*files)
    assert list(dataset.items.index) == ["007", "2"]
    assert dataset.interactions["timestamp"].tolist() == [100, 1577836800]
    assert dataset.interactions["rating"].isna().tolist() == [False, True]
    assert dataset.skipped == {}


@pytest.mark.parametrize("content, message", [
    ("user_id,item_id\nu1,007\n", r"bad.csv: missing column\(s\) timestamp"),
    ("user_id,item_id,timestamp\nu1,007,100\nu1,2,yesterday\n",
     r"bad.csv, line 3, column 'timestamp'.*'yesterday'"),
    ("user_id,item_id,timestamp,rating\nu1,007,1,five\n", r"line 2, column 'rating'.*not a number"),
    *[(f"user_id,item_id,timestamp\nu1,007,874724710\nu1,2,{value}\n",
       rf"line 3, column 'timestamp'.*looks like {unit}")
      for value, unit in [(874724710000, "milliseconds"), (874724710000000, "microseconds"),
                          (874724710000000000, "nanoseconds")]],
    *[(f"user_id,item_id,timestamp,rating\nu1,007,1,{rating}\n",
       r"line 2, column 'rating'.*outside the rating scale")
      for rating in ["inf", "-inf", "1e300", "-5", "1000"]],
    ("user_id,item_id,timestamp,timestamp\nu1,007,1,2\n",
     r"column\(s\) 'timestamp' appear more than once"),
])
def test_a_bad_interactions_file_is_named_with_line_and_column(files, tmp_path, content, message):
    bad = _write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError, match=message):
        load_dataset(bad, files[1])


def test_unknown_item_raises_or_is_skipped_and_counted(files, tmp_path):
    bad = _write(tmp_path / "bad.csv", "user_id,item_id,timestamp\nu1,007,100\nu1,999,101\n")
    with pytest.raises(DataError, match=r"line 3, column 'item_id'.*not in the items file"):
        load_dataset(bad, files[1])
    dataset = load_dataset(bad, files[1], skip_bad_rows=True)
    assert len(dataset.interactions) == 1
    assert dataset.skipped == {"unknown item": 1}


def test_duplicate_item_is_an_error_even_when_skipping(files, tmp_path):
    items = _write(tmp_path / "items.csv", "item_id,title\n1,A\n1,B\n")
    with pytest.raises(DataError, match=r"line 3, column 'item_id'.*duplicate item_id"):
        load_dataset(files[0], items, skip_bad_rows=True)


def test_duplicate_user_is_an_error(files, tmp_path):
    users = _write(tmp_path / "users.csv", "user_id\nu1\nu1\n")
    with pytest.raises(DataError, match="duplicate user_id"):
        load_dataset(files[0], files[1], users)


def test_exact_duplicate_events_are_dropped_and_counted(files, tmp_path):
    events = _write(tmp_path / "events.csv",
                    "user_id,item_id,timestamp\nu1,007,100\nu1,007,100\n")
    dataset = load_dataset(events, files[1])
    assert len(dataset.interactions) == 1
    assert dataset.skipped == {"duplicate event": 1}


def test_empty_and_missing_files(files, tmp_path):
    empty = _write(tmp_path / "empty.csv", "user_id,item_id,timestamp\n")
    with pytest.raises(DataError, match="empty.csv: the file has no rows"):
        load_dataset(empty, files[1])
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_dataset(tmp_path / "nope.csv", files[1])


def test_parquet_rows_are_named_by_row(files, tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["007", "2"],
                          "timestamp": ["1", "never"]})
    frame.to_parquet(tmp_path / "events.parquet")
    with pytest.raises(DataError, match=r"events.parquet, row 1, column 'timestamp'"):
        load_dataset(tmp_path / "events.parquet", files[1])


def test_unsupported_format(files, tmp_path):
    with pytest.raises(DataError, match="unsupported format"):
        load_dataset(_write(tmp_path / "events.json", "{}"), files[1])


def test_event_text_is_kept_empty_where_missing_and_long_text_is_cut(files, tmp_path):
    from tf_profiles.data.schema import MAX_EVENT_TEXT_CHARS

    long_review = "great " * 200_000  # 1.2 MB
    interactions = _write(tmp_path / "events.csv",
                          "user_id,item_id,timestamp,rating,text\n"
                          f'u1,007,100,,"I hated it, sorry"\nu1,2,200,4,\nu1,2,300,,{long_review}\n')
    dataset = load_dataset(interactions, files[1])
    texts = dataset.interactions["text"].tolist()
    assert texts[:2] == ["I hated it, sorry", ""]
    assert len(texts[2]) == MAX_EVENT_TEXT_CHARS
    assert dataset.skipped == {"text truncated": 1}
    # Files without the column get "" (no text) everywhere.
    assert load_dataset(*files).interactions["text"].tolist() == ["", ""]


def test_non_utf8_event_text_names_the_line(files, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"user_id,item_id,timestamp,text\nu1,007,100,fine\nu1,2,200,caf\xe9\n")
    with pytest.raises(DataError, match=r"events.csv, line 3: not UTF-8 text"):
        load_dataset(path, files[1])


def test_parquet_bytes_text_that_is_not_utf8_is_named_or_skipped(files, tmp_path):
    path = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["007", "2"], "timestamp": [1, 2],
                  "text": [b"ok", b"\xff\xfe"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"events.parquet, row 1, column 'text': not UTF-8"):
        load_dataset(path, files[1])
    dataset = load_dataset(path, files[1], skip_bad_rows=True)
    assert dataset.interactions["text"].tolist() == ["ok"]
    assert dataset.skipped == {"text not UTF-8": 1}


def test_a_parquet_timestamp_column_reads_the_same_in_train_and_ingest(files, tmp_path):
    from tf_profiles.data.loaders import load_items
    from tf_profiles.store.ingest import ingest_file
    from tf_profiles.store.store import ProfileStore

    frame = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["007", "2"],
                          "timestamp": pd.to_datetime(["1997-09-20 03:05:10",
                                                       "1997-09-20 03:06:00"])})
    assert str(frame["timestamp"].dtype).startswith("datetime64")
    frame.to_parquet(tmp_path / "events.parquet")
    trained = load_dataset(tmp_path / "events.parquet", files[1]).interactions
    assert trained["timestamp"].tolist() == [874724710, 874724760]
    with ProfileStore(tmp_path / "p.db") as store:
        store.upsert_items(load_items(files[1]))
        assert ingest_file(store, tmp_path / "events.parquet").inserted == 2
        assert sorted(store.events()["timestamp"]) == [874724710, 874724760]

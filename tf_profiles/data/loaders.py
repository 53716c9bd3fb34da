"""Loading and validating users' interaction, item and user files.

Every problem is reported with the file, the line (CSV, header = line 1) or
row (Parquet) and the column, before anything reaches TensorFlow.
"""
import csv
import dataclasses
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tf_profiles.data import schema
from tf_profiles.errors import UserError


# Counted in ``Dataset.skipped`` with the dropped rows, but the row is kept
# (its text cut to ``schema.MAX_EVENT_TEXT_CHARS``).
TEXT_TRUNCATED = "text truncated"
KEPT_ROW_REASONS = (TEXT_TRUNCATED,)


class DataError(UserError):
    """An input file is missing, empty or holds a bad value.

    Attributes:
      path, line, column: where the problem is (line may be None).
    """

    def __init__(self, path, message, line=None, column=None):
        self.path, self.line, self.column = str(path), line, column
        where = str(path)
        if line is not None:
            where += f", {'line' if str(path).endswith('.csv') else 'row'} {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


@dataclasses.dataclass
class Dataset:
    """Interactions, items and (optionally) users, validated and typed.

    ``interactions`` has string ``user_id``/``item_id``, int64 ``timestamp``
    (seconds), float ``rating`` (NaN where unknown) and str ``text`` ("" where
    none), in file order;
    ``items`` and ``users`` are indexed by their id. ``skipped`` counts rows
    dropped by ``skip_bad_rows``, by reason.
    """
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: Optional[pd.DataFrame] = None
    skipped: Dict[str, int] = dataclasses.field(default_factory=dict)


def read_table(path, allow_empty: bool = False) -> pd.DataFrame:
    """A CSV/TSV (every value as text) or Parquet file as a frame.

    Raises:
      DataError: missing, unreadable, not UTF-8, a repeated column, or (unless
        ``allow_empty``: ingesting nothing is not an error) no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            frame = frame.astype({c: "string" for c in frame.columns
                                  if c.endswith("_id")})
        elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
            # Everything as text first: IDs stay strings ("007" != "7") and
            # each column is parsed below with errors that name the line.
            # index_col=False: otherwise rows one field longer than the header
            # silently make the first column the index and shift the rest;
            # pandas warns instead, and that warning is an error here.
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            # pandas renames a repeated column ("timestamp.1"): read the header itself.
            with path.open(newline="", encoding="utf-8") as stream:
                header = next(csv.reader(stream, delimiter=separator), [])
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False,
                                    index_col=False)
            if len(header) == len(frame.columns):
                frame.columns = header
        else:
            raise DataError(path, "unsupported format: use .csv, .tsv or .parquet")
    except DataError:
        raise
    except pd.errors.ParserWarning as error:
        raise DataError(path, "a row has more fields than the header (quote fields that "
                        "hold the separator)") from error
    except UnicodeDecodeError as error:
        raise DataError(path, f"not UTF-8 text: byte {error.object[error.start:error.start + 1]!r} "
                        "(save the file as UTF-8)", line=_line_of_byte(path, error)) from error
    except Exception as error:  # pandas/pyarrow parser errors.
        raise DataError(path, f"cannot be read: {error}") from error
    if frame.empty and not allow_empty:
        raise DataError(path, "the file has no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if repeated:
        raise DataError(path, f"column(s) {', '.join(map(repr, repeated))} appear more than once")
    return frame


def _line_of_byte(path, error: UnicodeDecodeError):
    # pandas decodes in chunks, so error.start is an offset into some chunk:
    # find the first undecodable byte in the whole file instead.
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as whole:
        return raw.count(b"\n", 0, whole.start) + 1
    return None


def clean_texts(values: pd.Series) -> Tuple[pd.Series, pd.Series, pd.Series]:
    """Event texts as str: missing → "", bytes decoded as UTF-8, cut at
    ``schema.MAX_EVENT_TEXT_CHARS``.

    Returns:
      (texts, not_utf8, truncated): the two masks mark rows whose bytes are
      not UTF-8 (their text is "") and rows that were cut.
    """
    def decode(value):
        if value is None or (isinstance(value, float) and value != value):
            return "", False
        if isinstance(value, (bytes, bytearray)):
            try:
                return bytes(value).decode("utf-8"), False
            except UnicodeDecodeError:
                return "", True
        return str(value), False

    decoded = [decode(v) for v in values.to_numpy(object)]
    texts = pd.Series([t.strip() for t, _ in decoded], index=values.index, dtype=object)
    not_utf8 = pd.Series([bad for _, bad in decoded], index=values.index, dtype=bool)
    truncated = texts.str.len() > schema.MAX_EVENT_TEXT_CHARS
    return texts.str.slice(0, schema.MAX_EVENT_TEXT_CHARS), not_utf8, truncated


def line_number(path, position: int) -> int:
    # CSV: line 1 is the header. Parquet: 0-based row numbers.
    return position + 2 if Path(path).suffix.lower() in (".csv", ".tsv", ".txt") else position


def _require_columns(frame, path, required: Sequence[str]):
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found "
                        f"{', '.join(frame.columns)}")


def _bad_rows(frame, mask, path, column, message, skip, reason, skipped):
    """Raises on the first bad row, or drops them all and counts them."""
    if not mask.any():
        return frame
    if not skip:
        position = int(mask.to_numpy().nonzero()[0][0])
        value = frame[column].iloc[position]
        raise DataError(path, f"{message} (value {value!r}); "
                        f"{int(mask.sum())} row(s) have this problem",
                        line=line_number(path, int(frame.index[position])), column=column)
    skipped[reason] = skipped.get(reason, 0) + int(mask.sum())
    return frame[~mask]


def _check_ids(frame, path, column, skip, skipped):
    ids = frame[column].astype("string").str.strip()
    frame = frame.assign(**{column: ids})
    return _bad_rows(frame, ids.isna() | (ids == ""), path, column,
                     "empty id", skip, f"empty {column}", skipped)


def parse_timestamps(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    # inf, NaN and numbers past int64 ("9" * 40) are not times; casting them would raise.
    numeric = numeric.where(numeric.between(-2.0 ** 62, 2.0 ** 62))
    parsed = numeric.round().astype("Int64")
    text = numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if text.any():
        dates = pd.to_datetime(values[text], errors="coerce", utc=True, format="ISO8601")
        # The epoch in the dates' own unit: a nanosecond one overflows past 2262.
        epoch = pd.Timestamp(0, tz="UTC").as_unit(dates.dt.unit)
        seconds = (dates - epoch) // pd.Timedelta(seconds=1)
        parsed[text] = seconds.astype("Int64")
    return parsed


# Unix seconds stay below 10^11 until the year 5138; today's time in
# milliseconds is ~1.7·10^12, in microseconds ~1.7·10^15, in nanoseconds
# ~1.7·10^18. A larger number is one of those units taken for seconds, which
# would silently reorder or spread every event.
OTHER_UNITS = (("milliseconds", 10 ** 11, 10 ** 14), ("microseconds", 10 ** 14, 10 ** 17),
               ("nanoseconds", 10 ** 17, 2 ** 63))


def validate_events(frame: pd.DataFrame, path, known_items, unknown_item: str,
                    drop: Callable) -> Tuple[pd.DataFrame, int]:
    """The one check of event rows, for training-time loading and for ingestion.

    In order: user_id, item_id and timestamp present; the timestamp Unix
    seconds or an ISO-8601 date (numbers too large for seconds are refused,
    naming the unit they look like; a Parquet timestamp column reads as dates,
    whatever its unit); the rating (if any) a number; the text (if any)
    UTF-8, cut at ``schema.MAX_EVENT_TEXT_CHARS``; the item known.

    Args:
      known_items: the item ids an event may name.
      unknown_item: what an unknown item is called (where it was looked for).
      drop: ``drop(frame, bad_mask, column, message, reason)`` → the frame
        without the bad rows, for each check that finds some (or raises).

    Returns:
      (user_id, item_id, timestamp int64, rating float64 (NaN: none), text
      str and any other columns; how many texts were cut).

    Raises:
      DataError: a required column is missing.
    """
    _require_columns(frame, path, schema.INTERACTION_COLUMNS)
    for column in schema.INTERACTION_COLUMNS:
        values = frame[column].astype("string").str.strip()
        frame = drop(frame.assign(**{column: values}), values.isna() | (values == ""),
                     column, "missing value", f"empty {column}")
    timestamps = parse_timestamps(frame["timestamp"])
    frame = drop(frame, timestamps.isna(), "timestamp", "not a Unix time or ISO-8601 date",
                 "bad timestamp")
    # Numbers only: a date is a date, whatever its year.
    numbers = pd.to_numeric(frame["timestamp"], errors="coerce").abs().fillna(0)
    frame = frame.assign(timestamp=timestamps[frame.index].astype("int64"))
    for unit, low, high in OTHER_UNITS:
        value = numbers[frame.index]
        frame = drop(frame, (value >= low) & (value < high), "timestamp",
                     f"looks like {unit} since 1970, not seconds: give Unix seconds or "
                     "an ISO-8601 date", f"timestamp in {unit}")
    if "rating" in frame.columns:
        text = frame["rating"].astype("string").str.strip().fillna("")
        ratings = pd.to_numeric(text.where(text != ""), errors="coerce")
        frame = drop(frame, ratings.isna() & (text != ""), "rating", "not a number",
                     "bad rating")
        # The towers read ratings on one scale: inf, 1e300, -5 or 1000 would
        # swamp every other feature of the user.
        ratings = ratings[frame.index]
        high = schema.RATING_SCALE[1]
        frame = drop(frame, ratings.notna() & ~ratings.between(0, high), "rating",
                     f"outside the rating scale 0–{high:g} (empty: no rating)", "bad rating")
        frame = frame.assign(rating=ratings[frame.index].astype("float64"))
    else:
        frame = frame.assign(rating=np.nan)
    truncated = 0
    if schema.EVENT_TEXT in frame.columns:
        texts, not_utf8, cut = clean_texts(frame[schema.EVENT_TEXT])
        frame = drop(frame.assign(**{schema.EVENT_TEXT: texts}), not_utf8, schema.EVENT_TEXT,
                     "not UTF-8 text", "text not UTF-8")
        truncated = int(cut[frame.index].sum())
    else:
        frame = frame.assign(**{schema.EVENT_TEXT: ""})
    frame = drop(frame, ~frame["item_id"].isin(known_items), "item_id", unknown_item,
                 "unknown item")
    return frame, truncated


def load_items(path, skip_bad_rows: bool = False, skipped=None) -> pd.DataFrame:
    """Reads an items file: ``item_id,title[,description][,tags]``.

    Raises:
      DataError: missing column, empty id or title, duplicate item_id.
    """
    skipped = {} if skipped is None else skipped
    frame = read_table(path)
    _require_columns(frame, path, schema.ITEM_COLUMNS)
    frame = _check_ids(frame, path, "item_id", skip_bad_rows, skipped)
    duplicate = frame["item_id"].duplicated(keep="first")
    # A duplicate key is ambiguous (which title is right?), so it is never skipped.
    _bad_rows(frame, duplicate, path, "item_id", "duplicate item_id", False, "", skipped)
    title = frame["title"].astype(str).str.strip()
    frame = _bad_rows(frame.assign(title=title), title == "", path, "title",
                      "empty title", skip_bad_rows, "empty title", skipped)
    for column in schema.ITEM_OPTIONAL:
        if column not in frame.columns:
            frame[column] = ""
    return frame.set_index("item_id", drop=False).rename_axis(None)


def load_users(path, skip_bad_rows: bool = False, skipped=None) -> pd.DataFrame:
    """Reads a users file: ``user_id[,attribute columns...][,text]``.

    Raises:
      DataError: missing user_id column, empty or duplicate user_id.
    """
    skipped = {} if skipped is None else skipped
    frame = read_table(path)
    _require_columns(frame, path, schema.USER_COLUMNS)
    frame = _check_ids(frame, path, "user_id", skip_bad_rows, skipped)
    _bad_rows(frame, frame["user_id"].duplicated(), path, "user_id",
              "duplicate user_id", False, "", skipped)
    return frame.set_index("user_id", drop=False).rename_axis(None)


def load_interactions(path, items: pd.DataFrame, skip_bad_rows: bool = False,
                      skipped=None) -> pd.DataFrame:
    """Reads an interactions file: ``user_id,item_id,timestamp[,rating][,text]``.

    Timestamps are Unix seconds or ISO-8601 dates; ratings are numbers;
    ``text`` is what the user wrote with the event (a review, a comment, the
    query that led to it): "" for none, cut at ``schema.MAX_EVENT_TEXT_CHARS``
    characters (counted in ``skipped`` as :data:`TEXT_TRUNCATED`, the row is kept).

    Args:
      items: the loaded items; every interaction's item must be among them.
      skip_bad_rows: drop (and count) rows with a bad value instead of raising;
        exact duplicate events are always dropped and counted.

    Raises:
      DataError: missing column, empty id, bad timestamp or rating, or an
        item that is not in the items file.
    """
    skipped = {} if skipped is None else skipped

    def drop(frame, mask, column, message, reason):
        return _bad_rows(frame, mask, path, column, message, skip_bad_rows, reason, skipped)

    frame, truncated = validate_events(read_table(path), path, items.index,
                                       "item is not in the items file", drop)
    if truncated:
        skipped[TEXT_TRUNCATED] = skipped.get(TEXT_TRUNCATED, 0) + truncated
    duplicate = frame.duplicated(["user_id", "item_id", "timestamp"])
    if duplicate.any():
        skipped["duplicate event"] = skipped.get("duplicate event", 0) + int(duplicate.sum())
        frame = frame[~duplicate]
    frame = frame[["user_id", "item_id", "timestamp", "rating", schema.EVENT_TEXT]].astype(
        {"user_id": str, "item_id": str, "timestamp": "int64", "rating": "float64",
         schema.EVENT_TEXT: str})
    return frame.reset_index(drop=True)


def load_dataset(interactions, items, users=None, skip_bad_rows: bool = False) -> Dataset:
    """Loads and cross-checks the three files.

    Args:
      interactions, items, users: paths (CSV, TSV or Parquet).
      skip_bad_rows: see :func:`load_interactions`.

    Returns:
      A :class:`Dataset`; its ``skipped`` says what was dropped and why.

    Raises:
      DataError: naming file, line and column of the first problem.
    """
    skipped: Dict[str, int] = Counter()
    item_frame = load_items(items, skip_bad_rows, skipped)
    user_frame = load_users(users, skip_bad_rows, skipped) if users else None
    interaction_frame = load_interactions(interactions, item_frame, skip_bad_rows, skipped)
    for path, frame in ((items, item_frame), (interactions, interaction_frame)):
        if frame.empty:  # every row was skipped: nothing to train on
            raise DataError(path, f"no usable rows left; skipped: {dict(skipped)}")
    return Dataset(interaction_frame, item_frame, user_frame, dict(skipped))

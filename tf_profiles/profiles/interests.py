"""Interests: which tags (genres) a user's events point to, and how strongly.

Each event votes for its item's tags with a weight that is rating-aware (a
1-star rating is a vote against) and recency-decayed (an event one
half-life old counts half). A catalogue without tags gets its interest terms
from phrases mined from the item text (:func:`item_interest_terms`); the
scoring is the same.
"""
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tf_profiles.data.schema import RATING_SCALE, TAG_SEPARATOR
from tf_profiles.errors import UserError
from tf_profiles.profiles.phrases import mine_phrases
from tf_profiles.profiles.settings import HALF_LIFE_DAYS

SECONDS_PER_DAY = 86_400


def rating_signal(ratings: pd.Series, low: float = RATING_SCALE[0],
                  high: float = RATING_SCALE[1]) -> pd.Series:
    """Maps explicit ratings to [-1, 1] around the scale's lower-middle.

    On 1–5: 1★ → -0.6, 2★ → -0.2, 3★ → 0.2, 4★ → 0.6, 5★ → 1. A missing
    rating (implicit feedback: a click, a view) counts as 1.
    """
    neutral = low + (high - low) * 0.375
    signal = (ratings - neutral) / (high - neutral)
    return signal.clip(-1.0, 1.0).fillna(1.0)


def interest_weights(events: pd.DataFrame, items: pd.DataFrame,
                     half_life_days: float = HALF_LIFE_DAYS, as_of: Optional[int] = None,
                     top: int = 5) -> pd.DataFrame:
    """Top ``top`` tags per user with weights that sum to 1 over positive tags.

    Args:
      events: user_id, item_id, timestamp, rating (NaN = implicit).
      items: item_id, tags ("A|B").
      half_life_days: recency decay; events this old count half.
      as_of: the moment weights are computed for (Unix seconds); default:
        the newest event.

    Returns:
      Rows (user_id, tag, weight, rank), rank 0 = strongest; users whose
      events carry no positive tag have no rows.
    """
    if half_life_days <= 0:
        raise UserError(f"half_life_days must be > 0, got {half_life_days}")
    if events.empty:
        return pd.DataFrame(columns=["user_id", "tag", "weight", "rank"])
    as_of = int(events["timestamp"].max()) if as_of is None else as_of
    tags = items.set_index("item_id")["tags"].fillna("").astype(str).str.split(
        TAG_SEPARATOR)
    frame = events[["user_id", "item_id", "timestamp", "rating"]].copy()
    age_days = (as_of - frame["timestamp"]).clip(lower=0) / SECONDS_PER_DAY
    frame["vote"] = rating_signal(frame["rating"]) * np.power(0.5, age_days / half_life_days)
    frame["tag"] = frame["item_id"].map(tags)
    frame = frame.explode("tag")
    frame = frame[frame["tag"].notna() & (frame["tag"] != "")]
    # An item's vote is shared among its tags, so a many-genre film does not
    # outweigh a single-genre one.
    frame["vote"] /= frame.groupby(["user_id", "item_id", "timestamp"])["tag"].transform("size")
    scores = frame.groupby(["user_id", "tag"], as_index=False)["vote"].sum()
    scores = scores[scores["vote"] > 0]
    scores["weight"] = scores["vote"] / scores.groupby("user_id")["vote"].transform("sum")
    scores = scores.sort_values(["user_id", "weight", "tag"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("user_id").cumcount()
    return scores[scores["rank"] < top][["user_id", "tag", "weight", "rank"]].reset_index(
        drop=True)


def item_interest_terms(items: pd.DataFrame, encoder, cache_dir: Optional[Path] = None,
                        **mining) -> pd.DataFrame:
    """``items`` with the ``tags`` column :func:`interest_weights` reads.

    The catalogue's own tags when any item has one (items without stay
    without); otherwise phrases mined from each item's title and description
    by the model's encoder (:func:`~tf_profiles.profiles.phrases.mine_phrases`).

    Args:
      items: item_id, title, optionally description and tags.
      encoder: the model's :class:`TextEncoder`; None (a model without text)
        leaves an untagged catalogue without interest terms.
      cache_dir: the text-embedding cache.
      **mining: ``mine_phrases``'s options (per_item, min_items, labels, ...).

    Returns:
      A copy of ``items`` whose ``tags`` are "A|B" terms ("" for none).
    """
    tags = (items["tags"] if "tags" in items.columns
            else pd.Series("", index=items.index, dtype=object))
    if tags.fillna("").astype(str).str.strip().ne("").any() or encoder is None or items.empty:
        return items.assign(tags=tags.fillna("").astype(str))
    mined = mine_phrases(items, encoder, cache_dir, **mining)
    return items.assign(tags=mined.tags.to_numpy())

"""A stored profile for a person to read: text lines and a chart of interests over time.

``tf-profiles profile show`` prints :func:`profile_lines` and writes
:func:`write_interest_chart`; both read the store only.
"""
import time
from pathlib import Path
from typing import List, Optional

from tf_profiles.profiles import settings
from tf_profiles.profiles.plots import plot_interest_timeline
from tf_profiles.profiles.timeline import interest_timeline
from tf_profiles.store.store import ProfileStore


def _quote(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def profile_lines(store: ProfileStore, user_id: str, shown_texts: int = 3) -> List[str]:
    """The user's event count, attributes, latest own words (the last
    ``shown_texts`` event texts) and stored profile, one line each.

    Raises:
      ValueError: the store has no events or attributes of ``user_id``.
    """
    store.check_user(user_id)
    events = store.events([user_id])
    lines = [f"user {user_id}: {len(events)} events"]
    attributes = store.user_attributes([user_id])[0]
    if attributes:
        lines.append("attributes: " + ", ".join(f"{k}={v}" for k, v in attributes.items()))
    written = events[events["text"] != ""].tail(shown_texts).iloc[::-1]
    if len(written):
        titles = store.items().set_index("item_id")["title"]
        lines.append("recent words (newest first):")
        lines += [f'  {time.strftime("%Y-%m-%d", time.gmtime(row.timestamp))} '
                  f'{titles.get(row.item_id, row.item_id)}: "{_quote(row.text)}"'
                  for row in written.itertuples()]
    profile = store.profiles([user_id])
    if profile.empty:
        return lines + ["no stored profile yet (run `tf-profiles refresh`)"]
    row = profile.iloc[0]
    updated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(row["updated_at"]))
    stale = store.is_stale(user_id)
    return lines + [
        f"profile (updated {updated}, model {row['model_key']}"
        f"{', STALE: newer events or attributes not refreshed yet' if stale else ''}):",
        f"  {row['description']}",
        "  interests: " + (", ".join(f"{t} {w:.2f}" for t, w in row["interests"]) or "none yet"),
        f"  embedding: {len(row['embedding'])} floats, norm "
        f"{float((row['embedding'] ** 2).sum() ** 0.5):.3f}"]


def write_interest_chart(store: ProfileStore, user_id: str, png: Path,
                         half_life_days: Optional[float] = None, items=None) -> int:
    """Writes ``png``: the user's interest weights over time, from the stored events.

    Args:
      half_life_days: default the store's recorded value (what its profiles use).
      items: the catalogue with the ``tags`` interests are scored over; the
        default is the store's items, whose tags are empty in an untagged
        catalogue: pass ``ProfileBuilder.interest_items()`` (phrases mined
        from item text there), what the stored profiles' interests read.

    Returns:
      How many interest terms the chart shows (0: an empty chart).
    """
    timeline = interest_timeline(store.events([user_id]),
                                 store.items() if items is None else items,
                                 settings.half_life_days(store, half_life_days))
    plot_interest_timeline(timeline, png, f"interests of user {user_id} over time")
    return int(timeline["tag"].nunique())

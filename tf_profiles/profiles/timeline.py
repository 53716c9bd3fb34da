"""How a user's interests moved: the weights as they stood after each stretch of events."""
import numpy as np
import pandas as pd

from tf_profiles.profiles.interests import interest_weights
from tf_profiles.profiles.settings import HALF_LIFE_DAYS


def interest_timeline(events: pd.DataFrame, items: pd.DataFrame, half_life_days: float = HALF_LIFE_DAYS,
                      points: int = 30) -> pd.DataFrame:
    """Interest weights of one user at up to ``points`` moments of their history.

    The moments are the times of evenly spaced events (always the last one),
    and each uses only the events up to it, decayed to that moment: what the
    profile said then.

    Args:
      events: one user's events (user_id, item_id, timestamp, rating).
      items: item_id, tags.

    Returns:
      Rows (as_of, tag, weight) for every positive tag at every moment.
    """
    if events.empty:
        return pd.DataFrame(columns=["as_of", "tag", "weight"])
    times = np.sort(events["timestamp"].to_numpy())
    picks = np.unique(np.linspace(0, len(times) - 1, min(points, len(times))).round().astype(int))
    frames = []
    for as_of in np.unique(times[picks]):
        weights = interest_weights(events[events["timestamp"] <= as_of], items, half_life_days,
                                   as_of=int(as_of), top=len(items))
        frames.append(weights.assign(as_of=int(as_of))[["as_of", "tag", "weight"]])
    return pd.concat(frames, ignore_index=True)

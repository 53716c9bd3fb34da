"""What a user's own words say, for the readable profile.

"Writes about" phrases are mined from the user's latest event texts with
the same KeyBERT-style miner as item phrases (:func:`mine_phrases`, one
document per user, so a phrase need only occur in the user's own words); the
tone is the share of those texts whose rating (given, or implied by the text
through the sentiment head) is on the positive side of the scale.
"""
import dataclasses
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from tf_profiles.data.schema import EVENT_TEXT, TAG_SEPARATOR
from tf_profiles.profiles.phrases import mine_phrases
from tf_profiles.text.encoder import TextEncoder

# On 1–5 stars: 4★ and 5★ (or text the head finds positive) are positive.
POSITIVE_FROM = 3.5
# Characters read per text when mining: the opening of a long review says
# what it is about, and every n-gram of a 4,000-character text would be
# embedded otherwise.
MINED_CHARS = 300


@dataclasses.dataclass
class Words:
    """Attributes:
      writes_about: phrases from the user's latest texts, best first.
      positive, rated: of the latest texts with a rating (given or implied),
        how many are positive.
    """
    writes_about: List[str]
    positive: int
    rated: int

    def tone(self) -> Optional[str]:
        """"mostly positive", "mostly negative", "mixed", or None without rated texts."""
        if not self.rated:
            return None
        share = self.positive / self.rated
        return ("mostly positive" if share >= 2 / 3 else
                "mostly negative" if share <= 1 / 3 else "mixed")


def users_words(events: pd.DataFrame, encoder: TextEncoder, cache_dir: Optional[Path] = None,
                recent: int = 5, phrases: int = 3) -> Dict[str, Words]:
    """:class:`Words` of every user with event text in ``events``.

    Args:
      events: user_id, timestamp, rating (NaN = unknown; fill it from text
        first, see :func:`tf_profiles.features.feedback.with_head_feedback`)
        and text, in time order per user.
      encoder: the model's encoder (phrases are scored with its embeddings).
      recent: the latest texts read per user.
      phrases: phrases kept per user.
    """
    if EVENT_TEXT not in events.columns:
        return {}
    written = events[events[EVENT_TEXT].fillna("").str.strip() != ""]
    if written.empty:
        return {}
    latest = written.groupby("user_id", sort=False).tail(recent)
    documents = latest.groupby("user_id", sort=True)[EVENT_TEXT].apply(
        lambda texts: ". ".join(t[:MINED_CHARS] for t in texts))
    mined = mine_phrases(pd.DataFrame({"item_id": documents.index, "title": documents.values}),
                         encoder, cache_dir, per_item=phrases, min_items=1)
    rated = latest.dropna(subset=["rating"])
    positive = (rated["rating"] >= POSITIVE_FROM).groupby(rated["user_id"]).sum()
    counts = rated.groupby("user_id").size()
    return {user: Words([p for p in mined.tags.get(user, "").split(TAG_SEPARATOR) if p],
                        int(positive.get(user, 0)), int(counts.get(user, 0)))
            for user in documents.index}

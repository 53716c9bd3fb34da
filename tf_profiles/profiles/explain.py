"""Why an item is recommended to a user: the history and interests behind the score.

Both towers end in unit vectors compared by dot product, so the history
items nearest the recommended item in the item tower's space are the
events that pull the profile towards it; shared tags say the same in the
words of the profile's interests.
"""
import dataclasses
from typing import List, Tuple

import numpy as np

from tf_profiles.data.schema import TAG_SEPARATOR
from tf_profiles.errors import UserError
from tf_profiles.models.ranking import exclude
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.store.store import ProfileStore


@dataclasses.dataclass
class Explanation:
    """Attributes:
      score: the model's dot product for (user, item).
      rank: the item's place among the catalogue items the user has not seen
        (1 = first), out of ``candidates`` (they and, when the user already
        has it, the item itself).
      similar_history: (item_id, title, rating, similarity, text) of the
        history items closest to the item, closest first (rating 0 =
        unknown; text: what the user last wrote with that item, "" if nothing).
      shared_interests: (tag, weight) of the user's interests the item carries.
    """
    user_id: str
    item_id: str
    title: str
    score: float
    rank: int
    candidates: int
    similar_history: List[Tuple[str, str, float, float]]
    shared_interests: List[Tuple[str, float]]
    profile_text: str

    def summary(self) -> str:
        lines = [f"{self.title} ({self.item_id}) for user {self.user_id}: score "
                 f"{self.score:.3f}, ranked {self.rank} of {self.candidates} unseen items.",
                 f"Profile: {self.profile_text}"]
        if self.similar_history:
            lines.append("Closest in the user's history:")
            for item, title, rating, similarity, text in self.similar_history:
                rated = f", rated {rating:g}" if rating else ""
                wrote = f', wrote "{_quote(text)}"' if text else ""
                lines.append(f"  {title} ({item}){rated}{wrote}, similarity {similarity:.2f}")
        if self.shared_interests:
            lines.append("Shared interests: " + ", ".join(
                f"{tag} ({weight:.2f})" for tag, weight in self.shared_interests))
        return "\n".join(lines)


def _quote(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def explain(builder: ProfileBuilder, store: ProfileStore, user_id: str, item_id: str,
            top: int = 3) -> Explanation:
    """Explains the model's score for ``item_id`` given ``user_id``'s current data.

    The profile is built from the store's events as they are now (no refresh
    needed), with the builder's model and catalogue.

    Raises:
      ValueError: the user has neither events nor attributes in the store, or
        the item is not in the catalogue.
    """
    store.check_user(user_id)
    events = store.events([user_id])
    (row,) = builder.item_rows([item_id])
    if row < 0:
        raise UserError(f"item {item_id!r} is not in the catalogue of the model or {store.path}")
    profile = builder.build(events, [user_id], store.user_attributes([user_id]))
    items = builder.item_embeddings()
    scores = items @ profile["embedding"][0]
    seen = builder.item_rows(set(events["item_id"]))
    unseen = exclude(scores[np.newaxis].copy(), [seen[seen >= 0]])[0]
    rank = 1 + int(np.sum(unseen > scores[row]))
    # An item the user already has is placed among the unseen ones, itself
    # one more candidate.
    candidates = int(np.isfinite(unseen).sum()) + int(row in seen)

    history = profile["history"][0]
    present = history != ""
    history_ids = history[present]
    ratings = profile["history_rating"][0][present]
    similarity = items[builder.item_rows(history_ids)] @ items[row]
    order = np.argsort(-similarity, kind="stable")[:top]
    titles = builder.items["title"].to_numpy(dtype=object)
    history_rows = builder.item_rows(history_ids)
    tags = set(str(builder.interest_items()["tags"].fillna("")[row]).split(TAG_SEPARATOR))
    shared = [(str(tag), float(weight)) for tag, weight in
              zip(profile["interests"][0], profile["interest_weights"][0]) if tag in tags]
    written = events[events["text"] != ""].groupby("item_id")["text"].last()
    return Explanation(
        user_id, item_id, str(titles[row]), float(scores[row]), rank, candidates,
        [(str(history_ids[i]), str(titles[history_rows[i]]), float(ratings[i]),
          float(similarity[i]), str(written.get(history_ids[i], ""))) for i in order],
        shared, str(profile["profile_text"][0]))

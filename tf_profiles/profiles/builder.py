"""Complete profiles from events and attributes: embedding and readable part.

Export, the fast-path refresh and ``profile show`` all build profiles here,
so a profile refreshed in the store and one recomputed from scratch for the
same events are the same profile.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.data import schema
from tf_profiles.data.examples import latest_histories
from tf_profiles.evaluation.scoring import candidate_embeddings
from tf_profiles.profiles.describe import describe_profile
from tf_profiles.profiles.interests import interest_weights
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.render import render_item_text, render_user_text
from tf_profiles.training.artifacts import ModelDir

TOP_INTERESTS = 5


class ProfileBuilder:
    """Builds profiles with one trained model over one item catalogue.

    Args:
      model: a trained :class:`TwoTowerModel`.
      model_key: identifies ``model`` (stored with each profile, so profiles
        computed by an older model are found and recomputed).
      items: the catalogue (item_id, title, tags, ..., text), including items
        the model never saw: they are embedded by their text.
      max_history: events per profile (the model's).
      checkpoint, text_max_length: the frozen encoder, for texts not embedded yet.
      known_texts: text → embedding already computed (skips the encoder for
        them; other texts, the items' included, are encoded once).
      half_life_days: recency decay of interests.
    """

    def __init__(self, model, model_key: str, items: pd.DataFrame, max_history: int, checkpoint,
                 text_max_length: int, known_texts: Optional[Dict[str, np.ndarray]] = None,
                 half_life_days: float = 90.0, cache_dir=None):
        self.model = model
        self.model_key = model_key
        self.items = items.reset_index(drop=True)
        self.max_history = max_history
        self.checkpoint = Path(checkpoint)
        self.text_max_length = text_max_length
        self.half_life_days = half_life_days
        self.cache_dir = cache_dir
        self._known_texts = dict(known_texts or {})
        self._encoder = None
        self._item_embeddings = None
        self._item_rows = pd.Series(np.arange(len(self.items)),
                                    index=self.items["item_id"].to_numpy())
        self._titles = self.items.set_index("item_id")["title"]
        self._embed = tf.function(model.user_embedding, reduce_retracing=True)
        self.item_text_embeddings = self.text_embeddings(self.items["text"].tolist())

    @classmethod
    def from_model_dir(cls, model_dir, store=None, model=None, half_life_days: float = 90.0,
                       cache_dir=None) -> "ProfileBuilder":
        """The builder for a ``train`` folder; with a store, its items join the catalogue
        (a stored item replaces the training one with the same id)."""
        model_dir = ModelDir(Path(model_dir))
        model_dir.check()
        config, catalogue = model_dir.config(), model_dir.catalogue()
        known = dict(zip(catalogue.items["text"], catalogue.item_text_embeddings))
        known.update(zip(catalogue.users["text"], catalogue.user_text_embeddings))
        items = catalogue.items
        if store is not None:
            stored = store.items()
            if len(stored):
                stored = stored.assign(text=[render_item_text(row)
                                             for row in stored.to_dict("records")])
                items = pd.concat([items[~items["item_id"].isin(stored["item_id"])], stored],
                                  ignore_index=True)
        return cls(model if model is not None else model_dir.load_model(), model_dir.key(),
                   items, config.max_history, config.encoder, config.text_max_length, known,
                   half_life_days, cache_dir)

    # === Text ===

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), E]; "" is all-zero (the towers then use the stored text)."""
        new = sorted({t for t in texts if t and t not in self._known_texts})
        if new:
            if self._encoder is None:
                self._encoder = TextEncoder.from_checkpoint(
                    self.checkpoint, max_length=self.text_max_length)
            self._known_texts.update(zip(new, embed_texts(
                new, self.checkpoint, self.cache_dir, self.text_max_length,
                encoder=self._encoder)))
        width = self.model.user_tower.text_dim
        empty = np.zeros(width, np.float32)
        return np.stack([self._known_texts[t] if t else empty for t in texts]
                        or [empty])[:len(texts)].astype(np.float32)

    def history_text(self, history: np.ndarray) -> np.ndarray:
        """[N, H] item ids → [N, H, E] their catalogue text (zeros for "" and unknown ids)."""
        rows = self._item_rows.reindex(history.ravel()).to_numpy()
        known = ~np.isnan(rows)
        out = np.zeros((rows.size, self.item_text_embeddings.shape[1]), np.float32)
        out[known] = self.item_text_embeddings[rows[known].astype(np.int64)]
        return out.reshape(*history.shape, -1)

    def item_embeddings(self) -> np.ndarray:
        """[len(items), D] item-tower outputs for the whole catalogue (computed once)."""
        if self._item_embeddings is None:
            self._item_embeddings = candidate_embeddings(
                self.model, self.items["item_id"].tolist(), self.item_text_embeddings)
        return self._item_embeddings

    def item_rows(self, item_ids) -> np.ndarray:
        """Row of each id in ``items`` (-1 when not in the catalogue)."""
        return self._item_rows.reindex(list(item_ids)).fillna(-1).to_numpy(np.int64)

    # === Profiles ===

    def build(self, events: pd.DataFrame, user_ids: Sequence[str], attributes: List[dict],
              user_text: Optional[Sequence[str]] = None,
              batch_size: int = 1024) -> Dict[str, np.ndarray]:
        """Profiles of ``user_ids`` from their ``events`` and ``attributes`` (same order).

        Args:
          user_text: the text the encoder reads per user; default: rendered
            from ``attributes`` (a ``text`` attribute is the user's own words).

        Returns:
          Arrays indexed like ``user_ids``: ``user_id``, ``user_text``,
          ``text_embedding`` [U, E], ``history`` and ``history_rating``
          [U, max_history] (oldest first, "" padded), ``interests`` and
          ``interest_weights`` [U, TOP_INTERESTS], ``profile_text`` [U],
          ``embedding`` [U, D].
        """
        user_ids = np.asarray(user_ids, dtype=object)
        if user_text is None:
            user_text = [render_user_text(a) for a in attributes]
        user_text = list(user_text)
        histories = latest_histories(events, user_ids, self.max_history)
        tags, weights = self._interests(events, user_ids)
        descriptions = []
        for row, user in enumerate(attributes):
            recent = [self._titles.get(i, i) for i in histories[schema.HISTORY][row][::-1] if i]
            pairs = [(t, float(w)) for t, w in zip(tags[row], weights[row]) if t]
            descriptions.append(describe_profile(user, pairs, recent))
        profiles = {
            "user_id": user_ids, "user_text": np.array(user_text, dtype=object),
            "text_embedding": self.text_embeddings(user_text),
            "history": histories[schema.HISTORY],
            "history_rating": histories[schema.HISTORY_RATING],
            "interests": tags, "interest_weights": weights,
            "profile_text": np.array(descriptions, dtype=object),
        }
        profiles["embedding"] = self.embed(profiles, batch_size)
        return profiles

    def embed(self, profiles: Dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """[U, D] user-tower outputs for stored histories and text, in batches
        (the history's text is [batch, H, E], too big to hold for everyone)."""
        parts = []
        for start in range(0, len(profiles["user_id"]), batch_size):
            window = slice(start, start + batch_size)
            history = profiles["history"][window]
            parts.append(self._embed({
                schema.USER_ID: tf.constant(profiles["user_id"][window].astype(str)),
                schema.HISTORY: tf.constant(history.astype(str)),
                schema.HISTORY_RATING: tf.constant(profiles["history_rating"][window]),
                schema.USER_TEXT_EMBEDDING: tf.constant(profiles["text_embedding"][window]),
                schema.HISTORY_TEXT_EMBEDDING: tf.constant(self.history_text(history)),
            }).numpy())
        dim = self.model.user_tower.embedding_dim
        return np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)

    def _interests(self, events, user_ids):
        interests = interest_weights(events, self.items, self.half_life_days, top=TOP_INTERESTS)
        tags = np.full((len(user_ids), TOP_INTERESTS), "", dtype=object)
        weights = np.zeros((len(user_ids), TOP_INTERESTS), np.float32)
        row_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
        interests = interests[interests["user_id"].isin(row_of.index)]
        rows = row_of.reindex(interests["user_id"]).to_numpy()
        ranks = interests["rank"].to_numpy(dtype=np.int64)
        tags[rows, ranks] = interests["tag"].to_numpy(dtype=object)
        weights[rows, ranks] = interests["weight"].to_numpy(np.float32)
        return tags, weights

"""Complete profiles from events and attributes: embedding and readable part.

Export, the fast-path refresh, ``explain`` and ``profile show`` all build
profiles here, with the trained model behind a Preprocessor that holds the
current catalogue, so a profile refreshed in the store and one recomputed
from scratch (or served online) for the same events are one computation.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tf_profiles.bundle.inference import item_embeddings, user_embeddings
from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.features import spec
from tf_profiles.features.examples import latest_histories
from tf_profiles.features.feedback import with_head_feedback
from tf_profiles.profiles import settings
from tf_profiles.profiles.describe import describe_profile
from tf_profiles.profiles.interests import interest_weights, item_interest_terms
from tf_profiles.profiles.words import Words, users_words
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.render import render_item_text, render_user_text

TOP_INTERESTS = 5


class ProfileBuilder:
    """Builds profiles with one trained model over one item catalogue.

    Args:
      model: a :class:`TwoTowerModel` whose Preprocessor holds ``items``
        (see :meth:`from_model_dir`).
      model_key: identifies the trained weights (stored with each profile, so
        profiles computed by an older model are found and recomputed).
      items: the catalogue (item_id, title, tags, ..., text), in the order of
        the Preprocessor's item catalogue.
      half_life_days: recency decay of interests (:mod:`tf_profiles.profiles.settings`).
      known_texts: text → embedding already computed by the model's encoder.
      cache_dir: text-embedding cache for texts not embedded yet.
    """

    def __init__(self, model, model_key: str, items: pd.DataFrame,
                 half_life_days: float = settings.HALF_LIFE_DAYS,
                 known_texts: Optional[Dict[str, np.ndarray]] = None, cache_dir=None):
        self.model = model
        self.model_key = model_key
        self.items = items.reset_index(drop=True)
        self.max_history = model.preprocessor.max_history
        self.half_life_days = half_life_days
        self.cache_dir = cache_dir
        self._known_texts = dict(known_texts or {})
        self._item_embeddings = None
        self._interest_items = None
        self._item_rows = pd.Series(np.arange(len(self.items)),
                                    index=self.items["item_id"].to_numpy())
        self._titles = self.items.set_index("item_id")["title"]

    def profile_settings(self) -> dict:
        """What a store records with the profiles this builder computes."""
        return {"half_life_days": self.half_life_days}

    @classmethod
    def from_model_dir(cls, model_dir, store=None, model=None,
                       half_life_days: Optional[float] = None,
                       cache_dir=None) -> "ProfileBuilder":
        """The builder for a ``train`` folder; with a store, its items join the catalogue
        (a stored item replaces the training one with the same id). Settings not
        given are the store's recorded ones (else the defaults)."""
        model_dir = ModelDir(Path(model_dir))
        model_dir.check()
        catalogue = model_dir.catalogue()
        trained = model if model is not None else model_dir.load_model()
        items = catalogue.items
        if store is not None:
            stored = store.items()
            if len(stored):
                stored = stored.assign(text=[render_item_text(row)
                                             for row in stored.to_dict("records")])
                items = pd.concat([items[~items["item_id"].isin(stored["item_id"])], stored],
                                  ignore_index=True)
        builder = cls(trained, model_dir.key(), items,
                      settings.half_life_days(store, half_life_days), catalogue.texts(),
                      cache_dir)
        preprocessor = trained.preprocessor.with_state(
            builder.items["item_id"].tolist(), builder.text_embeddings(builder.items["text"]))
        builder.model = trained.with_preprocessor(preprocessor)
        return builder

    # === Catalogue ===

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), E] by the model's encoder; "" is all-zero ("no text")."""
        texts = list(texts)
        new = sorted({t for t in texts if t and t not in self._known_texts})
        if new:
            self._known_texts.update(zip(new, embed_texts(
                new, self.model.preprocessor.encoder, self.cache_dir)))
        empty = np.zeros(self.model.preprocessor.text_dim, np.float32)
        return np.stack([self._known_texts[t] if t else empty for t in texts]
                        or [empty])[:len(texts)].astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        """[len(items), D] item-tower outputs for the whole catalogue (computed once)."""
        if self._item_embeddings is None:
            self._item_embeddings = item_embeddings(self.model, self.items["item_id"].tolist())
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
          ``history`` and ``history_rating`` [U, max_history] (oldest first,
          "" padded), ``interests`` and ``interest_weights`` [U, TOP_INTERESTS],
          ``profile_text`` [U], ``embedding`` [U, D].
        """
        user_ids = np.asarray(user_ids, dtype=object)
        # Events with text and no rating get the rating their text implies.
        events = with_head_feedback(events, self.model.preprocessor.encoder,
                                    self.model.preprocessor.sentiment, self.cache_dir)
        if user_text is None:
            user_text = [render_user_text(a) for a in attributes]
        histories = latest_histories(events, user_ids, self.max_history)
        tags, weights = self._interests(events, user_ids)
        written = users_words(events, self.model.preprocessor.encoder, self.cache_dir)
        descriptions = []
        for row, user in enumerate(attributes):
            recent = [self._titles.get(i, i) for i in histories[spec.HISTORY][row][::-1] if i]
            pairs = [(t, float(w)) for t, w in zip(tags[row], weights[row]) if t]
            words = written.get(user_ids[row], Words([], 0, 0))
            descriptions.append(describe_profile(user, pairs, recent,
                                                 writes_about=words.writes_about,
                                                 tone=words.tone()))
        profiles = {
            spec.USER_ID: user_ids, spec.USER_TEXT: np.array(list(user_text), dtype=object),
            spec.HISTORY: histories[spec.HISTORY],
            spec.HISTORY_RATING: histories[spec.HISTORY_RATING],
            "interests": tags, "interest_weights": weights,
            "profile_text": np.array(descriptions, dtype=object),
        }
        profiles["embedding"] = self.embed(profiles, batch_size)
        return profiles

    def embed(self, profiles: Dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """[U, D] user-tower outputs for profiles' ids, histories, ratings and text."""
        return user_embeddings(self.model, {key: profiles[key] for key in (
            spec.USER_ID, spec.HISTORY, spec.HISTORY_RATING, spec.USER_TEXT)}, batch_size)

    def interest_items(self) -> pd.DataFrame:
        """``items`` with the tags interests are scored over: the catalogue's tags, or
        phrases mined from item text when it has none (computed once)."""
        if self._interest_items is None:
            self._interest_items = item_interest_terms(
                self.items, self.model.preprocessor.encoder, self.cache_dir)
        return self._interest_items

    def _interests(self, events, user_ids):
        interests = interest_weights(events, self.interest_items(), self.half_life_days,
                                     top=TOP_INTERESTS)
        tags = np.full((len(user_ids), TOP_INTERESTS), "", dtype=object)
        weights = np.zeros((len(user_ids), TOP_INTERESTS), np.float32)
        row_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
        interests = interests[interests["user_id"].isin(row_of.index)]
        rows = row_of.reindex(interests["user_id"]).to_numpy()
        ranks = interests["rank"].to_numpy(dtype=np.int64)
        tags[rows, ranks] = interests["tag"].to_numpy(dtype=object)
        weights[rows, ranks] = interests["weight"].to_numpy(np.float32)
        return tags, weights

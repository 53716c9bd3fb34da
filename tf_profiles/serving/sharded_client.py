"""Recommendations from a catalogue split over index-only shards (see :mod:`.shards`).

The main servable computes the query (``user_embedding``); every shard's
``top_k`` is asked concurrently; the client merges their answers by score
and drops the request's history items.
"""
from concurrent import futures
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tf_profiles.errors import UserError
from tf_profiles.features.spec import QUERY, TOP_K, USER_EMBEDDING
from tf_profiles.models.ranking import top_k
from tf_profiles.serving.client import ServingClient


class ShardedClient:
    """``recommend`` over S shard models, with the main model's user tower.

    Args:
      target: "host:port" serving ``model_name`` (and the shards, unless
        ``shard_target`` says otherwise).
      model_name: the main servable (its ``user_embedding`` gives the query).
      shard_names: the shard models (``<name>-shard-<i>``), all of them: a
        missing shard silently loses its items.
      k: items returned per user. Exact while each shard's answer still
        holds ``k`` items once the row's history is dropped from it (or the
        shard returned all its items): export shards with k ≥ this k + the
        widest history.
      shard_target: "host:port" of the shards, if elsewhere.
      options: passed to every :class:`ServingClient` (timeout,
        max_batch_size, max_retries, ...); a ``version``/``version_label``
        pins the main model only (shards are versioned on their own).
    """

    def __init__(self, target: str, model_name: str, shard_names: Sequence[str], k: int = 10,
                 shard_target: Optional[str] = None, **options):
        if not shard_names:
            raise UserError("no shard names: a sharded client needs at least one shard")
        self.k = int(k)
        self.main = ServingClient(target, model_name, **options)
        shard_options = {key: value for key, value in options.items()
                         if key not in ("version", "version_label")}
        self.shards = [ServingClient(shard_target or target, name, **shard_options)
                       for name in shard_names]
        self._pool = futures.ThreadPoolExecutor(max_workers=len(self.shards))

    def close(self):
        self._pool.shutdown(wait=False)
        for client in [self.main] + self.shards:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_enough(self, user_ids, answers, seen):
        # Merging is exact if every shard still offers k items after the
        # history is dropped, or offered all it has (padded with ""): its
        # unreturned items then score below k others of its own.
        start = 0
        for shard, answer in zip(self.shards, answers):
            width = answer["item_ids"].shape[1]
            kept = width - seen[:, start:start + width].sum(axis=1)
            short = (kept < self.k) & (answer["item_ids"][:, -1] != b"")
            if short.any():
                row = int(np.argmax(short))
                raise ValueError(
                    f"user {user_ids[row]!s}: shard {shard.model_name} returns {width} items, "
                    f"{width - kept[row]} of them in the history, leaving {kept[row]} < "
                    f"k={self.k}; export the shards with a larger k or ask for fewer items")
            start += width

    def recommend(self, user_ids: Sequence, histories: Optional[Sequence[Sequence]] = None,
                  user_texts: Optional[Sequence[str]] = None) -> pd.DataFrame:
        """Top-k items per user, as :meth:`ServingClient.recommend`: user_id, rank, item_id, score.

        Unlike ``serving_default``, only the request's history is excluded
        (as an export with ``--no-exclude-consumed`` does): a row with no
        history is embedded from the stored one (in the main servable), but
        no signature returns the stored history or the consumed items; pass
        the items to exclude as the history.

        Raises:
          ValueError: a shard's answer holds fewer than ``k`` items once a
            row's history is dropped (the merge could miss items).
        """
        inputs = ServingClient._user_inputs(user_ids, histories, user_texts)
        query = self.main.predict_batched(USER_EMBEDDING, inputs)["embedding"]
        answers = list(self._pool.map(
            lambda shard: shard.predict_batched(TOP_K, {QUERY: query}), self.shards))
        # [B, sum of the shards' k]: every shard's own top list, side by side.
        ids = np.concatenate([a["item_ids"] for a in answers], axis=1)
        scores = np.concatenate([a["scores"] for a in answers], axis=1).astype(np.float32)
        # Sets per row, not a [B, S·k, H] comparison of object arrays.
        excluded = [set(row) - {b""} for row in inputs["history"]]
        seen = np.array([[item in row_excluded for item in row]
                         for row, row_excluded in zip(ids, excluded)], dtype=bool)
        self._check_enough(user_ids, answers, seen)
        # Equal scores keep shard order: deterministic answers.
        top, best = top_k(np.where(seen, -np.inf, scores), self.k)
        k = top.shape[1]
        return pd.DataFrame({
            "user_id": np.repeat([str(u) for u in user_ids], k),
            "rank": np.tile(np.arange(1, k + 1), len(user_ids)),
            "item_id": [i.decode() for i in np.take_along_axis(ids, top, axis=1).ravel()],
            "score": best.ravel()})

"""Index-only shard servables: a catalogue too large for one index, split over S SavedModels.

Stock TF Serving has no ScaNN, so a catalogue whose BruteForce index is too
large for one servable is split instead: each shard is a plain SavedModel
holding a BruteForce index over one slice of the item embeddings and one
signature, ``top_k``. No towers and no text table go in, so a shard is its
slice's [n, D] vectors and ids, nothing else. The query comes from the main
servable's ``user_embedding``;
:class:`~tf_profiles.serving.sharded_client.ShardedClient` fans it out to
every shard and merges the answers (exact: each shard returns its own exact
top k).

Layout, beside the main servable's base path::

    <export_base>/<name>-shard-<i>/<version>/     one TF Serving model per shard
    <export_base>/<name>-shards.models.config     lists them (and the main model)
"""
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.errors import UserError
from tf_profiles.export.versions import next_version, write_version
from tf_profiles.features.spec import QUERY, TOP_K

_CONFIG_ENTRY = """  config {{
    name: "{name}"
    base_path: "{base_path}"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
  }}
"""


def shard_name(name: str, shard: int) -> str:
    """The TF Serving model name of shard ``shard`` of ``name``."""
    return f"{name}-shard-{shard}"


class ShardModule(tf.Module):
    """One shard: ``top_k`` = ``query`` [B, D] float32 → ``item_ids`` [B, k], ``scores`` [B, k].

    Args:
      item_ids: the shard's [n] item ids.
      item_embeddings: their [n, D] item-tower embeddings (a memmap slice is
        read once).
      k: items returned per query, fixed at export. The client drops the
        request's history from them, so export k ≥ K + the widest history a
        request may exclude. A shard of fewer than k items returns all of
        them, padded to k with id "" and score -inf (the client then knows
        the shard has nothing more).
    """

    def __init__(self, item_ids: Sequence[str], item_embeddings, k: int):
        super().__init__(name="tf_profiles_shard")
        item_embeddings = tf.constant(np.asarray(item_embeddings, np.float32))
        self.num_items = len(item_ids)
        self.k = int(k)
        self.embedding_dim = int(item_embeddings.shape[1])
        self.index = tfrs.layers.factorized_top_k.BruteForce(k=min(self.k, self.num_items))
        self.index.index(item_embeddings, tf.constant([str(i) for i in item_ids]))
        # D is fixed by the index, so the signature says it: a query of the
        # wrong width fails in the server's shape check, naming the input.
        self.serve_top_k = tf.function(self._top_k, input_signature=[
            tf.TensorSpec([None, self.embedding_dim], tf.float32, name=QUERY)])

    def _top_k(self, query):
        scores, ids = self.index(query)
        missing = self.k - min(self.k, self.num_items)  # static: known at export
        return {"item_ids": tf.pad(ids, [[0, 0], [0, missing]], constant_values=""),
                "scores": tf.pad(scores, [[0, 0], [0, missing]],
                                 constant_values=float("-inf"))}

    def signatures(self):
        return {TOP_K: self.serve_top_k.get_concrete_function()}


def shard_bounds(num_items: int, num_shards: int) -> List[tuple]:
    """[(start, stop)] of ``num_shards`` contiguous slices differing by at most one row."""
    if not 1 <= num_shards <= num_items:
        raise UserError(f"num_shards={num_shards}: need 1 ≤ num_shards ≤ {num_items} items")
    edges = np.linspace(0, num_items, num_shards + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def write_shards_config(path: Path, names: Sequence[str], models_root: str = "/models") -> Path:
    """A TF Serving models.config serving each of ``names`` from ``<models_root>/<name>``."""
    entries = "".join(_CONFIG_ENTRY.format(name=name, base_path=f"{models_root}/{name}")
                      for name in names)
    path = Path(path)
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


def export_shards(item_ids: Sequence[str], item_embeddings, export_base, name: str,
                  num_shards: int, k: int = 130, version: Optional[int] = None,
                  main_model: Optional[str] = None, models_root: str = "/models",
                  log=print) -> List[Path]:
    """Splits the catalogue into ``num_shards`` index-only servables, one TF Serving model each.

    Args:
      item_ids, item_embeddings: [N] ids and [N, D] item-tower embeddings,
        e.g. the memory-mapped file of
        :func:`tf_profiles.export.catalogue.stream_item_embeddings` (each
        shard reads only its slice).
      export_base: the folder holding the models (``saved_models``); shard i
        goes to ``<export_base>/<name>-shard-<i>/<version>/``.
      k: items each shard returns per query (see :class:`ShardModule`):
        default 130 = K 100 + max_history 30.
      version: the same for every shard; default: the next one free in all.
      main_model: also list this model (the servable answering
        ``user_embedding``) in the models.config.
      models_root: where TF Serving finds the models (``/models`` in the
        docker files; an absolute local path for ``tf-profiles serve``).

    Returns:
      The shards' version folders, in shard order.

    Raises:
      ValueError: ids and embeddings differ in length, ids repeat, a bad
        ``num_shards``, or the version exists already in some shard.
    """
    if len(item_ids) != len(item_embeddings):
        raise UserError(f"{len(item_ids)} item ids but {len(item_embeddings)} embedding rows")
    if len(set(map(str, item_ids))) != len(item_ids):
        raise UserError("item ids repeat: an item in two shards would be returned twice")
    export_base = Path(export_base)
    bounds = shard_bounds(len(item_ids), num_shards)
    names = [shard_name(name, i) for i in range(num_shards)]
    version = max(next_version(export_base / n) for n in names) if version is None else version
    for shard in names:
        if int(version) < 1 or (export_base / shard / str(version)).exists():
            raise UserError(f"{export_base / shard / str(version)}: version {version} exists "
                            "already or is not ≥ 1; versions are never overwritten")
    targets = []
    for shard, ((start, stop), model_name) in enumerate(zip(bounds, names)):
        started = time.perf_counter()
        module = ShardModule(item_ids[start:stop], item_embeddings[start:stop], k)
        target = export_base / model_name / str(version)
        query = np.zeros((1, module.embedding_dim), np.float32)
        write_version(module, target, {TOP_K: {QUERY: query}}, {
            "model_name": model_name, "version": int(version), "shard": shard,
            "num_shards": num_shards, "rows": [start, stop], "items": module.num_items,
            "k": module.k, "embedding_dim": module.embedding_dim,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "signatures": [TOP_K]})
        targets.append(target)
        log(f"exported {model_name} version {version} ({module.num_items} items) "
            f"in {time.perf_counter() - started:.1f} s")
    write_shards_config(export_base / f"{name}-shards.models.config",
                        ([main_model] if main_model else []) + names, models_root)
    return targets

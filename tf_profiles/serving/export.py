"""``tf-profiles export``: a trained model folder → a versioned SavedModel for TF Serving."""
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import profile_arrays, refresh_profiles
from tf_profiles.serving import warmup
from tf_profiles.serving.configs import write_serving_configs
from tf_profiles.serving.module import (ITEM_EMBEDDING, LOOKUP_PROFILES, SERVING_DEFAULT,
                                        USER_EMBEDDING, ServingModule)
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.training.artifacts import ModelDir

METADATA_FILE = "tf_profiles.json"


def next_version(export_base: Path) -> int:
    """1 + the largest integer folder name under ``export_base`` (1 when none)."""
    versions = [int(p.name) for p in Path(export_base).glob("*") if p.name.isdigit()]
    return max(versions, default=0) + 1


def _float16_copy(layer):
    # Keras fixes a layer's compute dtype when it is built, so a float16
    # servable is a rebuilt copy carrying the trained float32 weights.
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        copy = type(layer).from_config(layer.get_config())
        if isinstance(copy, tf.keras.Model):  # the encoder builds in its constructor
            copy.build_from_config({})
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(layer.get_weights())
    return copy


def warmup_inputs(profiles: dict, item_ids) -> dict:
    """A small request per signature, from stored users and items."""
    users = np.asarray(profiles["user_id"][:2], dtype=object).astype(bytes)
    history = np.asarray(profiles["history"][:2], dtype=object).astype(bytes)
    items = np.asarray(list(item_ids[:2]), dtype=object).astype(bytes)
    return {
        SERVING_DEFAULT: {"user_id": users, "history": history,
                          "user_text": np.array([b"", b"likes old westerns"][:len(users)])},
        USER_EMBEDDING: {"user_id": users, "history": history,
                         "user_text": np.array([b"", b""][:len(users)])},
        ITEM_EMBEDDING: {"item_id": items,
                         "item_text": np.array([b"", b"A new film. Genres: Drama."][:len(items)])},
        LOOKUP_PROFILES: {"user_id": np.append(users, b"unknown-user")},
    }


def export_model(model_dir, export_base, version: Optional[int] = None, k: int = 100,
                 float16: bool = False, half_life_days: float = 90.0,
                 max_batch_size: int = 256, store=None, cache_dir=None, log=print,
                 served_items=None) -> Path:
    """Writes ``export_base/<version>/`` atomically and the TF Serving configs.

    Args:
      model_dir: written by ``train``.
      export_base: the folder TF Serving polls (``saved_models/NAME``).
      version: integer version; default: the next one.
      k: items returned by ``serving_default``.
      float16: compute in float16 (for GPUs; inputs and outputs stay float32).
      store: a :class:`ProfileStore`; its profiles (refreshed first: stale
        users and users another model embedded), users and items, rather than
        the training data, become the served state (a deleted user is gone).
      cache_dir: text-embedding cache for texts the training run did not embed.
      served_items: ``(item_ids, item_text_embeddings, item_embeddings)`` to serve
        instead of the model's items, e.g. a million items streamed by
        :mod:`tf_profiles.serving.catalogue` (memory-mapped arrays are read
        once); it should hold the items of the served histories, since the
        user tower reads their text from it.

    Returns:
      The version folder.

    Raises:
      ValueError: not a model folder, or the version exists already.
    """
    model_dir = ModelDir(Path(model_dir))
    model_dir.check()
    export_base = Path(export_base)
    version = next_version(export_base) if version is None else int(version)
    target = export_base / str(version)
    if version < 1 or target.exists():
        raise ValueError(f"{target}: version {version} exists already or is not ≥ 1; "
                         "versions are never overwritten")
    config = model_dir.config()
    model = model_dir.load_model()
    builder = ProfileBuilder.from_model_dir(model_dir.path, store, model, half_life_days,
                                            cache_dir)
    # The servable holds every known event, not just the training split:
    # what is served is the freshest state.
    if store is None:
        split, catalogue = model_dir.split(), model_dir.catalogue()
        events = pd.concat([split.train, split.valid, split.test], ignore_index=True)
        users = catalogue.users
        profiles = builder.build(events, users["user_id"].tolist(),
                                 users.drop(columns=["text"]).to_dict("records"),
                                 users["text"].tolist())
    else:
        log(refresh_profiles(store, builder).summary())
        profiles = profile_arrays(store, builder)
    encoder = model.text_encoder or TextEncoder.from_checkpoint(
        config.encoder, max_length=config.text_max_length)
    if float16:
        model, encoder = _float16_copy(model), _float16_copy(encoder)
    item_ids, item_text, item_embeddings = (
        (builder.items["item_id"].tolist(), builder.item_text_embeddings, None)
        if served_items is None else served_items)
    # A request's history gets the stored rating of each (user, item) it
    # names; the stored histories are the events a request repeats. An item
    # seen twice keeps its latest rating.
    present = profiles["history"] != ""
    rated = pd.DataFrame({
        "user_id": np.repeat(profiles["user_id"], present.sum(axis=1)),
        "item_id": profiles["history"][present],
        "rating": profiles["history_rating"][present]}).drop_duplicates(
            ["user_id", "item_id"], keep="last")
    rated = (rated["user_id"].tolist(), rated["item_id"].tolist(),
             rated["rating"].to_numpy(np.float32))
    module = ServingModule(model, encoder, item_ids, item_text, profiles, rated, k,
                           item_embeddings)

    export_base.mkdir(parents=True, exist_ok=True)
    # Written beside the final folder, then renamed: a server polling
    # export_base sees the whole version or none of it (non-integer folder
    # names are ignored by TF Serving).
    staging = export_base / f".staging-{version}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        tf.saved_model.save(module, str(staging), signatures=module.signatures())
        extra = staging / "assets.extra"
        warmup.write_warmup(extra / warmup.WARMUP_FILE, export_base.name,
                            warmup_inputs(profiles, item_ids))
        fingerprint = hashlib.sha256(profiles["embedding"].tobytes()).hexdigest()[:16]
        (extra / METADATA_FILE).write_text(json.dumps({
            "version": version, "model_dir": str(model_dir.path.resolve()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "k": module.k, "embedding_dim": module.embedding_dim,
            "max_history": module.max_history, "text_max_length": config.text_max_length,
            "encoder": config.encoder, "float16": float16,
            "items": len(item_ids), "users": len(profiles["user_id"]),
            "profiles_fingerprint": fingerprint, "model_key": builder.model_key,
            "signatures": list(module.signatures()),
        }, indent=2))
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    write_serving_configs(export_base / "serving", export_base.name,
                          max_batch_size=max_batch_size)
    if store is not None:
        store.record_export(version, target, model_dir.path.resolve())
    log(f"exported version {version} to {target} in {time.perf_counter() - started:.1f} s")
    return target

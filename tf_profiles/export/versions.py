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

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.compat.check import require_servable
from tf_profiles.compat.versions import matching_serving_version, parse_version
from tf_profiles.errors import UserError
from tf_profiles.export.configs import write_serving_configs
from tf_profiles.export.module import ServingModule
from tf_profiles.features import spec
from tf_profiles.features.spec import FeatureSpec
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import profile_arrays
from tf_profiles.serving import warmup

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
        copy.build_from_config({})
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(layer.get_weights())
    return copy


def warmup_inputs(item_ids, max_history: int) -> dict:
    """A small request per signature. The ids are made up and the histories
    are catalogue items: the records travel with every copy of the export, so
    they hold no real user (an unknown user runs the same graph)."""
    users = np.array([b"warmup-user-1", b"warmup-user-2"])
    items = np.asarray(list(item_ids[:2]), dtype=object).astype(bytes)
    width = max(1, min(max_history, len(items)))
    history = np.full((2, width), b"", dtype=object)
    if len(items):
        history[0] = items[-width:]
    return {
        spec.SERVING_DEFAULT: {
            spec.USER_ID: users, spec.HISTORY: history,
            spec.USER_TEXT: np.array([b"", b"likes old westerns"][:len(users)])},
        spec.USER_EMBEDDING: {spec.USER_ID: users, spec.HISTORY: history,
                              spec.USER_TEXT: np.array([b"", b""][:len(users)])},
        spec.ITEM_EMBEDDING: {
            spec.ITEM_ID: items,
            spec.ITEM_TEXT: np.array([b"", b"A new film. Genres: Drama."][:len(items)])},
        spec.LOOKUP_PROFILES: {spec.USER_ID: np.append(users, b"unknown-user")},
        spec.TEXT_SENTIMENT: {spec.TEXT: np.array([b"I hated it", b""])},
    }


def consumed_items(model_dir: ModelDir, store=None) -> pd.DataFrame:
    """(user_id, item_id) of every served event: what ``serving_default`` excludes."""
    if store is not None:
        return store.consumed_items()
    split = model_dir.split()
    return pd.concat([split.train, split.valid, split.test])[["user_id", "item_id"]]


def _require_current(store, builder: ProfileBuilder):
    """Exporting only reads the store, so its profiles must already be the
    ones ``builder`` would write: computed by this model, none stale."""
    stale = len(store.stale_users())
    if store.profile_model() != builder.model_key:
        raise UserError(f"{store.path}: the stored profiles were not computed by the "
                        "exported model; refresh them first (tf-profiles refresh, or "
                        "export --store, which refreshes then exports)")
    if store.profile_settings() != builder.profile_settings():
        raise UserError(f"{store.path}: the stored profiles were computed with "
                        f"{store.profile_settings() or 'other settings'}, not "
                        f"{builder.profile_settings()}; refresh them first (tf-profiles "
                        "refresh, or export --store, which refreshes then exports)")
    if stale:
        raise UserError(f"{store.path}: {stale} profiles are stale (new events or deletions "
                        "since the last refresh); refresh them first (tf-profiles refresh, "
                        "or export --store, which refreshes then exports)")


def served_profiles(model_dir: ModelDir, builder: ProfileBuilder, store=None) -> dict:
    """The profiles a new version serves: the store's (which must be current),
    or ones built from every event of the training data."""
    if store is not None:
        _require_current(store, builder)
        return profile_arrays(store, builder)
    # The servable holds every known event, not just the training split:
    # what is served is the freshest state.
    split, users = model_dir.split(), model_dir.catalogue().users
    events = pd.concat([split.train, split.valid, split.test], ignore_index=True)
    return builder.build(events, users["user_id"].tolist(),
                         users.drop(columns=["text"]).to_dict("records"),
                         users["text"].tolist())


def servable_model(builder: ProfileBuilder, profiles: dict, served_items=None,
                   forget_absent: bool = False):
    """The builder's model behind a Preprocessor that stores the served users
    (text, latest history and ratings) and, with ``served_items``, another catalogue.

    ``forget_absent``: a trained user the served profiles lack (deleted from
    the store) is served as an unknown user: their ID leaves the lookup
    table, so their ID embedding row, which still remembers them, is never read.
    """
    item_ids, item_text = (
        (builder.items["item_id"].tolist(), builder.text_embeddings(builder.items["text"]))
        if served_items is None else served_items[:2])
    preprocessor = builder.model.preprocessor.with_state(
        item_ids, item_text, profiles[spec.USER_ID].tolist(),
        builder.text_embeddings(profiles[spec.USER_TEXT]), profiles[spec.HISTORY],
        profiles[spec.HISTORY_RATING])
    if forget_absent:
        absent = sorted(set(preprocessor.user_vocabulary) - set(map(str, profiles[spec.USER_ID])))
        if absent:
            preprocessor.user_index.remove(tf.constant(absent, tf.string))
    return builder.model.with_preprocessor(preprocessor)


def export_model(model_dir, export_base, version: Optional[int] = None, k: int = 100,
                 float16: bool = False, half_life_days: Optional[float] = None,
                 max_batch_size: int = 256, store=None, cache_dir=None, log=print,
                 served_items=None, exclude_consumed: bool = True,
                 serving_version: Optional[str] = None,
                 builder: Optional[ProfileBuilder] = None) -> Path:
    """Writes ``export_base/<version>/`` atomically and the TF Serving configs.

    Args:
      model_dir: written by ``train``.
      export_base: the folder TF Serving polls (``saved_models/NAME``).
      version: integer version; default: the next one.
      k: items returned by ``serving_default``.
      half_life_days: recency decay of the served profiles' interests; default:
        the store's recorded value, else :data:`~tf_profiles.profiles.settings.HALF_LIFE_DAYS`.
      float16: compute in float16 (for GPUs; inputs and outputs stay float32).
      store: a :class:`ProfileStore`; its profiles, users and items, rather
        than the training data, become the served state (a deleted user is
        gone). The store is only read: its profiles must be current
        (:func:`tf_profiles.workflows.export_store.refresh_and_export`
        refreshes them first).
      cache_dir: text-embedding cache for texts the training run did not embed.
      served_items: ``(item_ids, item_text_embeddings, item_embeddings)`` to serve
        instead of the model's items, e.g. a million items streamed by
        :mod:`tf_profiles.export.catalogue` (memory-mapped arrays are read
        once); it should hold the items of the served histories, since the
        user tower reads their text from it.
      exclude_consumed: ``serving_default`` never recommends an item the
        served data says the user consumed (every stored event, not only
        the latest ``max_history``); False for catalogues where repeats are
        wanted (music, groceries): then only the request's history (or the
        stored history it falls back to) is excluded.
      serving_version: the TF Serving release (X.Y.Z) the configs run;
        default: the one matching the installed TensorFlow. An older release
        must pass ``tf-profiles check-serving`` first (the version is not
        published otherwise).
      builder: the :class:`ProfileBuilder` of ``model_dir`` when the caller
        has it loaded (with ``store``, ``half_life_days`` and ``cache_dir``);
        default: loaded here.

    Returns:
      The version folder.

    Raises:
      ValueError: not a model folder, the version exists already, the
        store's profiles are not current, or TF Serving ``serving_version``
        cannot serve it.
    """
    model_dir = ModelDir(Path(model_dir))
    model_dir.check()
    export_base = Path(export_base)
    version = next_version(export_base) if version is None else int(version)
    serving_version = serving_version or matching_serving_version()
    parse_version(serving_version)
    target = export_base / str(version)
    if version < 1 or target.exists():
        raise UserError(f"{target}: version {version} exists already or is not ≥ 1; "
                        "versions are never overwritten")
    builder = builder or ProfileBuilder.from_model_dir(
        model_dir.path, store, half_life_days=half_life_days, cache_dir=cache_dir)
    profiles = served_profiles(model_dir, builder, store)
    model = servable_model(builder, profiles, served_items, forget_absent=store is not None)
    if float16:
        model = _float16_copy(model)
    module = ServingModule(model, profiles, k,
                           served_items[2] if served_items is not None else None,
                           consumed_items(model_dir, store) if exclude_consumed else None)
    started = time.perf_counter()
    write_version(module, target, warmup_inputs(model.preprocessor.item_text.ids,
                                                module.max_history), {
        # Names, not paths: the metadata travels with the export, and the
        # training machine's folders are none of a server's business.
        "version": version, "model_dir": model_dir.path.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "k": module.k, "embedding_dim": module.embedding_dim,
        "max_history": module.max_history, "text_max_length": model_dir.config().text_max_length,
        "encoder": Path(model_dir.config().encoder or "").name, "float16": float16,
        "exclude_consumed": module.exclude_consumed,
        "items": module.num_items, "users": len(profiles[spec.USER_ID]),
        "profiles_fingerprint": hashlib.sha256(profiles["embedding"].tobytes()).hexdigest()[:16],
        "model_key": builder.model_key, "signatures": list(module.signatures()),
        "features": FeatureSpec(module.max_history, model.preprocessor.text_dim,
                                module.embedding_dim).to_dict(),
    }, check=lambda staging: require_servable(staging, serving_version, log=log))
    write_serving_configs(export_base / "serving", export_base.name,
                          max_batch_size=max_batch_size, serving_version=serving_version)
    log(f"exported version {version} to {target} in {time.perf_counter() - started:.1f} s")
    return target


def write_version(module: ServingModule, target: Path, warmup_requests: dict, metadata: dict,
                  check=None):
    """Saves ``module`` with its warm-up requests and metadata as ``target``, atomically.

    Written beside the final folder, then renamed: a server polling the base
    path sees the whole version or none of it (TF Serving ignores folder
    names that are not integers). ``check(staging folder)`` runs before the
    rename; if it raises, the version is not published.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        tf.saved_model.save(module, str(staging), signatures=module.signatures())
        extra = staging / "assets.extra"
        warmup.write_warmup(extra / warmup.WARMUP_FILE, target.parent.name, warmup_requests)
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        if check is not None:
            check(staging)
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)

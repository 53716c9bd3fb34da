"""Refresh then export: a new version serving a profile store's current state.

``export_model`` only reads a store; this workflow first brings its profiles
up to date with the exported model (stale users, users another model
embedded), so ``tf-profiles export --store`` serves what the store holds now.
"""
from pathlib import Path
from typing import Optional

from tf_profiles.export.versions import export_model
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import refresh_profiles
from tf_profiles.store.store import ProfileStore


def refresh_and_export(model_dir, export_base, store: ProfileStore,
                       half_life_days: Optional[float] = None, cache_dir=None,
                       refresh_batch_size: int = 2048, log=print, **export_options) -> Path:
    """Refreshes ``store``'s profiles with ``model_dir``'s model, then exports
    a version serving them (``export_options``: :func:`export_model`'s).
    ``half_life_days``: default the store's recorded value; another one is
    recorded and recomputes every profile.

    Returns:
      The version folder.
    """
    builder = ProfileBuilder.from_model_dir(model_dir, store, half_life_days=half_life_days,
                                            cache_dir=cache_dir)
    log(refresh_profiles(store, builder, refresh_batch_size).summary())
    return export_model(model_dir, export_base, store=store, cache_dir=cache_dir, log=log,
                        builder=builder, **export_options)

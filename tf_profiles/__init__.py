"""tf_profiles: user profiles for recommender systems with a language model.

Behaviour, attributes and text become a profile vector (a BERT encoder
feeding a TensorFlow Recommenders two-tower model) plus a readable part.

Importing this package selects Keras 2 (tf-keras) for TensorFlow; import it
before ``tensorflow``. The public names below load their layer on first use,
so that ``import tf_profiles`` (and the command line's start) does not pay
for TensorFlow, TFRS and transformers until something needs them.
"""
import importlib

from tf_profiles import _keras_setup  # noqa: F401  (must precede TensorFlow)

__version__ = "0.1.0"

_PUBLIC = {
    "CheckpointError": "tf_profiles.text.encoder",
    "DataError": "tf_profiles.data.loaders",
    "Dataset": "tf_profiles.data.loaders",
    "Explanation": "tf_profiles.profiles.explain",
    "ItemTower": "tf_profiles.models.item_tower",
    "Preprocessor": "tf_profiles.features.preprocessor",
    "ProfileBuilder": "tf_profiles.profiles.builder",
    "ProfileStore": "tf_profiles.store.store",
    "TextEncoder": "tf_profiles.text.encoder",
    "TrainConfig": "tf_profiles.bundle.config",
    "TwoTowerModel": "tf_profiles.models.two_tower",
    "UserTower": "tf_profiles.models.user_tower",
    "explain": "tf_profiles.profiles.explain",
    "ingest_file": "tf_profiles.store.ingest",
    "load_dataset": "tf_profiles.data.loaders",
    "load_servable": "tf_profiles.compat.check",
    "refresh_profiles": "tf_profiles.profiles.refresh",
    "render_item_text": "tf_profiles.text.render",
    "render_user_text": "tf_profiles.text.render",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tf_profiles' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(list(globals()) + __all__)

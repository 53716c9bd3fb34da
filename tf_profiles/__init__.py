"""tf_profiles: user profiles for recommender systems with a language model.

Behaviour, attributes and text become a profile vector (a BERT encoder
feeding a TensorFlow Recommenders two-tower model) plus a readable part.

Importing this package selects Keras 2 (tf-keras) for TensorFlow; import it
before ``tensorflow``.
"""
from tf_profiles import _keras_setup  # noqa: F401  (must precede TensorFlow)

from tf_profiles.bundle.config import TrainConfig
from tf_profiles.data.loaders import Dataset, DataError, load_dataset
from tf_profiles.features.preprocessor import Preprocessor
from tf_profiles.models.item_tower import ItemTower
from tf_profiles.models.two_tower import TwoTowerModel
from tf_profiles.models.user_tower import UserTower
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.explain import Explanation, explain
from tf_profiles.profiles.refresh import refresh_profiles
from tf_profiles.serving.compat import load_servable
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore
from tf_profiles.text.encoder import CheckpointError, TextEncoder
from tf_profiles.text.render import render_item_text, render_user_text

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "DataError", "Dataset", "Explanation", "ItemTower", "Preprocessor",
    "ProfileBuilder", "ProfileStore", "TextEncoder", "TrainConfig", "TwoTowerModel", "UserTower",
    "explain", "ingest_file", "load_dataset", "load_servable", "refresh_profiles",
    "render_item_text", "render_user_text",
]

"""The trained-model bundle: a folder written by ``train``, read by everything else.

    DIR/config.json            TrainConfig used
    DIR/model.keras            the Keras model with its Preprocessor and encoder
                               (tf.keras.models.load_model)
    DIR/split/                 train/valid/test events and candidates
    DIR/catalogue/             items and users with rendered text and their
                               embeddings by the model's encoder
    DIR/checkpoints/           per-epoch tf.train.Checkpoint of the towers (and of a
                               fine-tuned encoder): epoch-NNN.index/.data-*
    DIR/logs/                  TensorBoard
    DIR/backup/                the training state while training runs (resume
                               after a restart; emptied when training ends)
    DIR/metrics.json, training_curves.png
"""
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Dict

import numpy as np
import pandas as pd

from tf_profiles.bundle.config import TrainConfig
from tf_profiles.data.loaders import Dataset
from tf_profiles.data.splits import Split
from tf_profiles.errors import UserError
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.render import render_item_text, render_user_text


@dataclasses.dataclass
class Catalogue:
    """Items and users with the text the encoder read and its embedding."""
    items: pd.DataFrame  # item_id, title, ..., text
    users: pd.DataFrame  # user_id, attributes..., text
    item_text_embeddings: np.ndarray  # [len(items), E]
    user_text_embeddings: np.ndarray  # [len(users), E]

    def save(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.items.to_parquet(directory / "items.parquet", index=False)
        self.users.to_parquet(directory / "users.parquet", index=False)
        np.save(directory / "item_text_embeddings.npy", self.item_text_embeddings)
        np.save(directory / "user_text_embeddings.npy", self.user_text_embeddings)

    @classmethod
    def load(cls, directory: Path) -> "Catalogue":
        return cls(pd.read_parquet(directory / "items.parquet"),
                   pd.read_parquet(directory / "users.parquet"),
                   np.load(directory / "item_text_embeddings.npy"),
                   np.load(directory / "user_text_embeddings.npy"))

    def item_text_by_id(self) -> Dict[str, np.ndarray]:
        return dict(zip(self.items["item_id"], self.item_text_embeddings))

    def texts(self) -> Dict[str, np.ndarray]:
        """Text → embedding, for every item and user text already embedded."""
        known = dict(zip(self.items["text"], self.item_text_embeddings))
        known.update(zip(self.users["text"], self.user_text_embeddings))
        return known


def build_catalogue(dataset: Dataset, encoder: TextEncoder, cache_dir=None) -> Catalogue:
    """Renders every item's and user's text and embeds it with ``encoder``."""
    items = dataset.items.reset_index(drop=True)
    items = items.assign(text=[render_item_text(row) for row in items.to_dict("records")])
    known_users = sorted(set(dataset.interactions["user_id"]))
    if dataset.users is not None:
        users = dataset.users.reset_index(drop=True)
        extra = sorted(set(known_users) - set(users["user_id"]))
        users = pd.concat([users, pd.DataFrame({"user_id": extra})], ignore_index=True)
    else:
        users = pd.DataFrame({"user_id": known_users})
    users = users.fillna("").astype(str)
    users = users.assign(text=[render_user_text(row) for row in users.to_dict("records")])
    return Catalogue(items, users, *embed_catalogue_texts(items, users, encoder, cache_dir))


def embed_catalogue_texts(items: pd.DataFrame, users: pd.DataFrame, encoder: TextEncoder,
                          cache_dir=None):
    """([items, E], [users, E]) embeddings of the ``text`` columns by ``encoder``."""
    vectors = embed_texts(items["text"].tolist() + users["text"].tolist(), encoder, cache_dir)
    return vectors[:len(items)], vectors[len(items):]


@dataclasses.dataclass
class ModelDir:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    config_file = property(lambda self: self.path / "config.json")
    model_file = property(lambda self: self.path / "model.keras")
    split_dir = property(lambda self: self.path / "split")
    catalogue_dir = property(lambda self: self.path / "catalogue")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    log_dir = property(lambda self: self.path / "logs")
    backup_dir = property(lambda self: self.path / "backup")
    metrics_file = property(lambda self: self.path / "metrics.json")
    curves_file = property(lambda self: self.path / "training_curves.png")

    def check(self):
        """Raises a clear error if this is not a trained-model folder."""
        missing = [p.name for p in (self.config_file, self.model_file, self.split_dir,
                                    self.catalogue_dir) if not p.exists()]
        if missing:
            raise UserError(f"{self.path} is not a trained model folder (written by "
                            f"`tf-profiles train`): missing {', '.join(missing)}")

    def config(self) -> TrainConfig:
        return TrainConfig.from_file(self.config_file)

    def split(self) -> Split:
        return Split.load(self.split_dir)

    def catalogue(self) -> Catalogue:
        return Catalogue.load(self.catalogue_dir)

    def key(self) -> str:
        """Identifies the trained weights (a hash of the model file)."""
        digest = hashlib.sha256()
        with self.model_file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:16]

    def write_model(self, model, metrics: dict):
        """The last step of writing a model folder, for training and fine-tuning
        alike: ``model.keras``, then ``metrics.json``, each written under a
        temporary name and renamed, so neither is ever half-written.

        Args:
          metrics: must hold ``selected_epochs`` (what ``--epochs-from`` reads).
        """
        if "selected_epochs" not in metrics:
            raise ValueError("metrics of a model folder need selected_epochs")
        partial = self.model_file.with_name(f".partial-{self.model_file.name}")
        model.save(partial)
        os.replace(partial, self.model_file)
        partial = self.metrics_file.with_name(f".partial-{self.metrics_file.name}")
        partial.write_text(json.dumps(metrics, indent=2))
        os.replace(partial, self.metrics_file)

    def load_model(self):
        import tensorflow as tf

        return tf.keras.models.load_model(self.model_file)

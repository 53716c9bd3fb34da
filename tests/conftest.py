"""Shared fixtures: tiny BERT checkpoints, tiny datasets, real ml-100k slices.

Slow tests (real MiniLM, real ml-100k) are marked ``slow`` and run by
default, CI included; ``-m "not slow"`` gives the fast loop while coding.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_profiles  # noqa: E402,F401  (Keras 2 before TensorFlow)

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import transformers  # noqa: E402

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "is", "eating",
              "food", "bread", "piece", "of", "action", "comedy", "drama", "star", "wars",
              "genres", ",", ".", "(", ")", ":", "age", "male", "female", "1977",
              "我", "爱", "北", "京", "电", "影", "##s", "##ing"]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real MiniLM / real ml-100k; minutes, not seconds")


def write_tiny_bert(directory: Path, vocab=TINY_VOCAB, hidden: int = 8) -> Path:
    """A random 2-layer BERT checkpoint folder (config.json, vocab.txt, tf_model.h5)."""
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
    model = transformers.TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(directory)
    (Path(directory) / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return Path(directory)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def write_tiny_dataset(directory: Path, users: int = 12, items: int = 15,
                       events_per_user: int = 8, seed: int = 0) -> dict:
    """Random but structured generic-format files: users follow item chains."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    genres = ["Action", "Comedy", "Drama"]
    item_rows = [{"item_id": f"i{i}", "title": f"Star Wars {i} (1977)",
                  "tags": "|".join(rng.choice(genres, 2, replace=False))} for i in range(items)]
    events = []
    for user in range(users):
        start = rng.integers(items)
        for step in range(events_per_user):
            events.append({"user_id": f"u{user}", "item_id": f"i{(start + step) % items}",
                           "timestamp": 1_000_000 + 100 * step + user,
                           "rating": int(rng.integers(1, 6))})
    user_rows = [{"user_id": f"u{u}", "age": int(rng.integers(18, 70)),
                  "gender": rng.choice(["M", "F"]), "text": "eating food"} for u in range(users)]
    paths = {name: directory / f"{name}.csv" for name in ("interactions", "items", "users")}
    pd.DataFrame(events).to_csv(paths["interactions"], index=False)
    pd.DataFrame(item_rows).to_csv(paths["items"], index=False)
    pd.DataFrame(user_rows).to_csv(paths["users"], index=False)
    return paths


@pytest.fixture()
def tiny_data(tmp_path) -> dict:
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def ml100k_dir(tmp_path_factory) -> dict:
    from tf_profiles.data.movielens import convert_ml100k

    return convert_ml100k(tmp_path_factory.mktemp("ml100k"))


@pytest.fixture(scope="session")
def ml100k_slice(tmp_path_factory, ml100k_dir) -> dict:
    """The first 150 users of ml-100k (all their events), real items and users."""
    directory = tmp_path_factory.mktemp("ml100k_slice")
    interactions = pd.read_csv(ml100k_dir["interactions"], dtype=str)
    users = sorted(interactions["user_id"].unique(), key=int)[:150]
    interactions[interactions["user_id"].isin(users)].to_csv(
        directory / "interactions.csv", index=False)
    paths = {"interactions": directory / "interactions.csv"}
    for name in ("items", "users"):
        paths[name] = ml100k_dir[name]
    return paths


def read_json(path):
    return json.loads(Path(path).read_text())


def train_tiny(root: Path, tiny_bert: Path, **overrides) -> Path:
    """Trains a tiny model on ``write_tiny_dataset(root / "data")`` into ``root / "model"``."""
    from tf_profiles.bundle.config import TrainConfig
    from tf_profiles.data.loaders import load_dataset
    from tf_profiles.training.trainer import train

    paths = write_tiny_dataset(root / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    values = dict(epochs=2, batch_size=16, embedding_dim=8, max_history=4, num_layers=1,
                  encoder=str(tiny_bert), text_max_length=16)
    values.update(overrides)
    train(dataset, TrainConfig(**values), root / "model", cache_dir=root / "cache")
    return root / "model"


@pytest.fixture(scope="session")
def trained_model(tiny_bert, tmp_path_factory):
    """A tiny trained model folder; its data files are in ``../data``."""
    return train_tiny(tmp_path_factory.mktemp("served"), tiny_bert)


@pytest.fixture(scope="session", autouse=True)
def every_export_passes_the_static_serving_check():
    """Every SavedModel the suite writes (exports, shards) uses only ops and
    attributes the installed TensorFlow's model server knows (check-serving's
    static check), so no test can pass on an export TF Serving would refuse."""
    import tensorflow as tf

    from tf_profiles.compat import check as compat
    from tf_profiles.export import shards
    from tf_profiles.export import versions as export

    defs = compat.op_defs(tf.__version__, log=lambda _: None)
    write_version = export.write_version

    def checked(module, target, *args, **kwargs):
        written = write_version(module, target, *args, **kwargs)
        assert compat.static_problems(target, defs) == [], target
        return written

    with pytest.MonkeyPatch.context() as patch:
        for owner in (export, shards):
            patch.setattr(owner, "write_version", checked)
        yield


@pytest.fixture(scope="session")
def exported(trained_model, tmp_path_factory):
    """(export base, version folder) of the tiny model, k=5."""
    from tf_profiles.export.versions import export_model

    base = tmp_path_factory.mktemp("saved_models") / "tiny"
    version = export_model(trained_model, base, k=5, max_batch_size=64, log=lambda _: None)
    return base, version


@pytest.fixture()
def fresh_base(exported, tmp_path):
    """A private copy of the export base, for tests that add versions."""
    base = tmp_path / "tiny"
    shutil.copytree(exported[0], base)
    return base

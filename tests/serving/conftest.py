import shutil

import pytest

from tf_profiles.data.loaders import load_dataset
from tf_profiles.serving.export import export_model
from tf_profiles.training.config import TrainConfig
from tf_profiles.training.trainer import train

from tests.conftest import write_tiny_dataset


@pytest.fixture(scope="session")
def trained_model(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    paths = write_tiny_dataset(root / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    config = TrainConfig(epochs=2, batch_size=16, embedding_dim=8, max_history=4, num_layers=1,
                         encoder=str(tiny_bert), text_max_length=16)
    train(dataset, config, root / "model", cache_dir=root / "cache")
    return root / "model"


@pytest.fixture(scope="session")
def exported(trained_model, tmp_path_factory):
    """(export base, version folder) of the tiny model, k=5."""
    base = tmp_path_factory.mktemp("saved_models") / "tiny"
    version = export_model(trained_model, base, k=5, max_batch_size=64, log=lambda _: None)
    return base, version


@pytest.fixture()
def fresh_base(exported, tmp_path):
    """A private copy of the export base, for tests that add versions."""
    base = tmp_path / "tiny"
    shutil.copytree(exported[0], base)
    return base

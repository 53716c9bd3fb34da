import shutil

import pytest

from tf_profiles.serving.export import export_model


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

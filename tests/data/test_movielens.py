import pytest

from tf_profiles.data.loaders import DataError, load_dataset
from tf_profiles.data.movielens import convert_ml100k


def test_ml100k_converts_to_the_generic_format(ml100k_dir):
    dataset = load_dataset(ml100k_dir["interactions"], ml100k_dir["items"], ml100k_dir["users"])
    assert len(dataset.interactions) == 100_000
    assert len(dataset.items) == 1682 and len(dataset.users) == 943
    assert dataset.items.loc["1", "title"] == "Toy Story (1995)"
    assert dataset.items.loc["1", "tags"] == "Animation|Children's|Comedy"
    assert dataset.users.loc["1", ["age", "gender", "occupation"]].tolist() == [
        "24", "M", "technician"]
    assert dataset.skipped == {}


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="ml-100k.inter: file not found"):
        convert_ml100k(tmp_path / "out", source=tmp_path)

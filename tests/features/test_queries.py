import numpy as np
import pandas as pd
import pytest

from tf_profiles.features import spec
from tf_profiles.features.queries import (TAG_TEMPLATES, TITLE_TEMPLATES, item_query_words,
                                          pseudo_queries, with_queries)

ITEMS = pd.DataFrame({
    "item_id": ["1", "2", "3", "4"],
    "title": ["Usual Suspects, The (1995)", "Alien (1979)", "(1995)", "Heat (1995)"],
    "tags": ["Crime|Thriller", "Horror|Sci-Fi", "unknown", None],
})


def _possible(tags, title):
    """Every query the templates can make from these words."""
    phrases = list(tags) + [f"{a} and {b}" for i, a in enumerate(tags) for b in tags[i + 1:]]
    return ({t.format(tags=p) for t in TAG_TEMPLATES for p in phrases}
            | {t.format(title=title) for t in TITLE_TEMPLATES})


def test_words_are_lower_case_tags_and_the_title_as_typed():
    words = item_query_words(ITEMS)
    assert words["1"] == (["crime", "thriller"], "the usual suspects")
    assert words["4"] == ([], "heat")
    assert "3" not in words  # a placeholder tag and a title of only a year: no words


def test_queries_name_the_target_item_and_are_seeded():
    item_ids = ["1", "2"] * 200
    first = pseudo_queries(item_ids, ITEMS, 1.0, seed=3)
    assert first.tolist() == pseudo_queries(item_ids, ITEMS, 1.0, seed=3).tolist()
    assert first.tolist() != pseudo_queries(item_ids, ITEMS, 1.0, seed=4).tolist()
    possible = {"1": _possible(["crime", "thriller"], "the usual suspects"),
                "2": _possible(["horror", "sci-fi"], "alien")}
    assert all(query in possible[item] for item, query in zip(item_ids, first))
    # Both kinds occur: tag queries mostly, title queries sometimes.
    assert any("like" in q for q in first) and any("horror" in q for q in first)


def test_the_fraction_is_respected_and_items_without_words_get_none():
    item_ids = np.array(["1", "2", "3", "4", "not-in-catalogue"] * 2000)
    queries = pseudo_queries(item_ids, ITEMS, 0.3, seed=0)
    for item in ("1", "2", "4"):
        assert (queries[item_ids == item] != "").mean() == pytest.approx(0.3, abs=0.03)
    assert (queries[item_ids == "3"] == "").all()
    assert (queries[item_ids == "not-in-catalogue"] == "").all()
    assert set(queries[item_ids == "4"]) - {""} <= {t.format(title="heat")
                                                    for t in TITLE_TEMPLATES}
    assert (pseudo_queries(item_ids, ITEMS, 0.0, seed=0) == "").all()


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match=r"query fraction must be in \[0, 1\]"):
        pseudo_queries(["1"], ITEMS, fraction, seed=0)


def test_with_queries_keeps_the_text_of_examples_without_a_query():
    examples = {spec.ITEM_ID: np.array(["3", "1"], object),
                spec.USER_TEXT: np.array(["age 24", "age 30"], object)}
    out = with_queries(examples, ITEMS, 1.0, seed=0)
    assert out[spec.USER_TEXT][0] == "age 24"  # item 3 makes no query
    assert out[spec.USER_TEXT][1] in _possible(["crime", "thriller"], "the usual suspects")
    # Frozen-encoder examples carry no user text: "" keeps the stored one.
    frozen = with_queries({spec.ITEM_ID: examples[spec.ITEM_ID]}, ITEMS, 1.0, seed=0)
    assert frozen[spec.USER_TEXT][0] == "" and frozen[spec.USER_TEXT][1] != ""

import math

import pandas as pd
import pytest

from tf_profiles.profiles.describe import describe_profile
from tf_profiles.profiles.interests import SECONDS_PER_DAY, interest_weights, rating_signal

ITEMS = pd.DataFrame({"item_id": ["a", "b", "c"], "tags": ["Sci-Fi", "Action|Sci-Fi", "Drama"]})


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def test_rating_signal_makes_one_star_negative():
    signal = rating_signal(pd.Series([1.0, 3.0, 5.0, math.nan]))
    assert signal.tolist() == pytest.approx([-0.6, 0.2, 1.0, 1.0])


def test_weights_share_item_votes_among_tags_and_sum_to_one():
    weights = interest_weights(_events([("u", "a", 0, 5.0), ("u", "b", 0, 5.0)]), ITEMS)
    by_tag = dict(zip(weights["tag"], weights["weight"]))
    assert by_tag == pytest.approx({"Sci-Fi": 0.75, "Action": 0.25})
    assert weights["rank"].tolist() == [0, 1]


def test_disliked_tags_are_not_interests():
    weights = interest_weights(_events([("u", "c", 0, 1.0), ("u", "a", 0, 4.0)]), ITEMS)
    assert weights["tag"].tolist() == ["Sci-Fi"]


def test_recency_decay_halves_an_old_event():
    day = SECONDS_PER_DAY
    events = _events([("u", "a", 0, 5.0), ("u", "c", 10 * day, 5.0)])
    weights = interest_weights(events, ITEMS, half_life_days=10)
    by_tag = dict(zip(weights["tag"], weights["weight"]))
    assert by_tag["Drama"] == pytest.approx(2 * by_tag["Sci-Fi"])


def test_bad_half_life_and_no_events():
    with pytest.raises(ValueError, match="half_life_days"):
        interest_weights(_events([("u", "a", 0, 5.0)]), ITEMS, half_life_days=0)
    assert interest_weights(_events([]), ITEMS).empty


def test_description_reads_like_the_spec():
    text = describe_profile({"user_id": "1", "age": 24, "gender": "M", "occupation": "technician"},
                            [("Sci-Fi", 0.41), ("Action", 0.22)],
                            ["Star Wars (1977)", "Alien (1979)"])
    assert text == ("age 24, male, technician. Interested in Sci-Fi (0.41), Action (0.22). "
                    "Recently: Star Wars (1977), Alien (1979).")

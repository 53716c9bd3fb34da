import numpy as np
import pandas as pd
import pytest

from tf_profiles.features.feedback import (needs_text_feedback, with_model_feedback,
                                           with_text_feedback)


def _events():
    return pd.DataFrame({"user_id": ["u1"] * 4, "item_id": ["a", "b", "c", "d"],
                         "timestamp": [1, 2, 3, 4], "rating": [np.nan, 2.0, np.nan, np.nan],
                         "text": ["I hated it", "great", "", "loved it"]})


def test_only_events_with_text_and_no_rating_are_filled_on_the_star_scale():
    events = _events()
    scores = {"I hated it": 0.0, "loved it": 0.75}
    filled = with_text_feedback(events, lambda texts: [scores[t] for t in texts])
    assert needs_text_feedback(events).tolist() == [True, False, False, True]
    # p 0 → 1★, p 0.75 → 4★; the given 2★ wins over "great"; no text stays unknown.
    assert filled["rating"].tolist()[:2] == [1.0, 2.0] and np.isnan(filled["rating"][2])
    assert filled["rating"][3] == pytest.approx(4.0)
    assert np.isnan(events["rating"][0])  # the input is not changed


def test_events_without_a_text_column_or_a_head_are_returned_as_they_are():
    events = _events().drop(columns="text")
    assert with_text_feedback(events, lambda texts: 1 / 0) is events

    class NoHead:
        sentiment = None

    assert with_model_feedback(_events(), NoHead()) is not None
    assert np.isnan(with_model_feedback(_events(), NoHead())["rating"][0])

import numpy as np
import pandas as pd
import pytest

from tf_profiles.features.feedback import (needs_text_feedback, with_head_feedback,
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

    assert with_head_feedback(_events(), None, None) is not None
    assert np.isnan(with_head_feedback(_events(), None, None)["rating"][0])


@pytest.mark.slow
def test_real_reviews_vote_like_stars_through_the_default_head(cache_dir):
    from tf_profiles.text.encoder import TextEncoder
    from tf_profiles.text.sentiment import score_texts, train_default_head

    encoder = TextEncoder.from_checkpoint(max_length=64)  # MiniLM, the model's token limit
    head = train_default_head(encoder, cache_dir, per_dataset=1000)
    events = pd.DataFrame({
        "user_id": ["u1"] * 3, "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3],
        "rating": [np.nan, np.nan, 5.0],
        "text": ["A dull, badly acted waste of two hours. I hated it.",
                 "A wonderful, moving film with a brilliant cast. Loved every minute.",
                 "I hated it."]})
    filled = with_text_feedback(events, lambda texts: score_texts(texts, encoder, head,
                                                                  cache_dir))
    assert filled["rating"][0] < 2.0 < 4.0 < filled["rating"][1]
    assert filled["rating"][2] == 5.0  # the given stars win

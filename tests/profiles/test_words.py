import numpy as np
import pandas as pd

from tf_profiles.profiles.describe import describe_profile
from tf_profiles.profiles.words import Words, users_words
from tf_profiles.text.encoder import TextEncoder


def test_users_words_mine_the_users_latest_texts_and_count_their_tone(tiny_bert, cache_dir):
    encoder = TextEncoder.from_checkpoint(tiny_bert, max_length=16)
    events = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u3"], "item_id": ["a", "b", "c", "a", "b"],
        "timestamp": [1, 2, 3, 1, 1], "rating": [5.0, 1.0, 4.0, np.nan, 3.0],
        "text": ["star wars is food", "", "star wars again", "", "a man eating bread"]})
    words = users_words(events, encoder, cache_dir, phrases=2)
    assert set(words) == {"u1", "u3"}  # u2 wrote nothing
    assert words["u1"].rated == 2 and words["u1"].positive == 2
    assert words["u1"].tone() == "mostly positive"
    assert words["u1"].writes_about and all(
        p in "star wars is food. star wars again" for p in words["u1"].writes_about)
    assert words["u3"].tone() == "mostly negative"  # 3★ is not positive
    assert users_words(events.drop(columns="text"), encoder, cache_dir) == {}


def test_description_cites_the_words_and_their_tone():
    text = describe_profile({"age": 24}, [("Drama", 0.5)], ["Heat"],
                            writes_about=["slow burn", "strong lead"], tone="mostly positive")
    assert text.endswith("Writes about: slow burn, strong lead; recent reviews mostly positive.")
    assert Words([], 1, 2).tone() == "mixed" and Words([], 0, 0).tone() is None
    assert describe_profile({}, [], [], tone="mostly negative") == (
        "Recent reviews mostly negative.")

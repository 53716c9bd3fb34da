import math

from tf_profiles import render_item_text, render_user_text


def test_user_attributes_read_as_natural_language():
    text = render_user_text({"user_id": "1", "age": "24", "gender": "M",
                             "occupation": "technician"})
    assert text == "age 24, male, technician"


def test_user_free_text_follows_attributes_and_missing_values_are_skipped():
    text = render_user_text({"user_id": "1", "age": math.nan, "gender": "F",
                             "occupation": "", "text": "I love  old westerns"})
    assert text == "female. I love old westerns"


def test_user_without_anything_is_empty():
    assert render_user_text({"user_id": "9"}) == ""


def test_item_title_tags_description():
    text = render_item_text({"item_id": "50", "title": "Star Wars (1977)",
                             "tags": "Action|Sci-Fi", "description": "Space opera."})
    assert text == "Star Wars (1977). Genres: Action, Sci-Fi. Space opera."


def test_item_tags_as_list_and_extra_columns():
    text = render_item_text({"item_id": "1", "title": "X", "tags": ["A", "B"],
                             "director": "Lucas"})
    assert text == "X. Genres: A, B. director: Lucas."


def test_item_missing_tags():
    assert render_item_text({"item_id": "1", "title": "X", "tags": math.nan}) == "X."

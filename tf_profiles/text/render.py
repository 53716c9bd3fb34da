"""The one place that turns attributes into the text the encoder reads.

Training, evaluation, profile descriptions and serving all call these two
functions, so the text a model saw in training is the text it sees in
production.
"""
from typing import Any, Mapping

import math

# Keys that identify a row rather than describe it; never rendered.
_ID_KEYS = frozenset({"user_id", "item_id"})
_TEXT_KEYS = ("text", "description")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _clean(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def render_user_text(user: Mapping[str, Any]) -> str:
    """Renders a user's attributes and free text as one sentence.

    Attribute values are joined in the mapping's order ("age 24, male,
    technician"); numeric attributes keep their column name so that a bare
    number stays meaningful. Free text (a ``text`` column) follows.

    Args:
      user: column name → value; ``user_id`` is ignored, missing values
        (None, NaN, "") are skipped.

    Returns:
      The text, possibly "" when nothing is known about the user.

    Example:
      >>> render_user_text({"user_id": "7", "age": 24, "gender": "M",
      ...                   "occupation": "technician"})
      'age 24, male, technician'
    """
    parts = []
    for key, value in user.items():
        if key in _ID_KEYS or key in _TEXT_KEYS or _is_missing(value):
            continue
        if key == "gender":
            parts.append(_GENDER_WORDS.get(_clean(value).upper(), _clean(value)))
        elif isinstance(value, (int, float)) or _clean(value).isdigit():
            parts.append(f"{key.replace('_', ' ')} {_clean(value)}")
        else:
            parts.append(_clean(value).replace("_", " "))
    sentence = ", ".join(parts)
    free_text = " ".join(
        _clean(user[key]) for key in _TEXT_KEYS
        if key in user and not _is_missing(user[key])
    )
    if sentence and free_text:
        return f"{sentence}. {free_text}"
    return sentence or free_text


_GENDER_WORDS = {"M": "male", "F": "female"}


def render_item_text(item: Mapping[str, Any]) -> str:
    """Renders an item's title, tags and description as one string.

    Args:
      item: with ``title`` and optionally ``tags`` ("Action|Sci-Fi" or a
        list), ``description`` and other attribute columns, which are
        rendered as "name: value".

    Returns:
      e.g. "Star Wars (1977). Genres: Action, Adventure, Sci-Fi."

    Example:
      >>> render_item_text({"item_id": "50", "title": "Star Wars (1977)",
      ...                   "tags": "Action|Sci-Fi"})
      'Star Wars (1977). Genres: Action, Sci-Fi.'
    """
    parts = []
    if not _is_missing(item.get("title")):
        parts.append(_clean(item["title"]))
    tags = item.get("tags")
    if _is_missing(tags):
        tags = []
    elif isinstance(tags, str):
        tags = tags.split("|")
    tag_words = [_clean(tag) for tag in tags if not _is_missing(tag)]
    if tag_words:
        parts.append("Genres: " + ", ".join(tag_words))
    for key, value in item.items():
        if key in _ID_KEYS or key in ("title", "tags", "description"):
            continue
        if not _is_missing(value):
            parts.append(f"{key.replace('_', ' ')}: {_clean(value)}")
    if not _is_missing(item.get("description")):
        parts.append(_clean(item["description"]))
    return "".join(part.rstrip(".") + ". " for part in parts).strip()

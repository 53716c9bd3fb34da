"""Pseudo-queries: what a user might type at request time, made from the target item.

A request's ``user_text`` ("something scary for tonight") goes through the
encoder and *replaces* the stored user-text embedding (see
:meth:`Preprocessor.user_features`); the user's ID embedding and history
still reach the user tower, so the answer stays personal. A model trained
only on stored attribute text ("age 24, male, technician") has never seen
such text in that slot and does not know what to do with it. So in a
fraction of the training examples the user text is a short query naming
the target item's tags or title; the tower learns to move the profile
toward items that match it.

Why *replace* rather than append to the attribute text ("age 24, male.
Looking for: horror"): at serving a request sends only the query, and the
Preprocessor keeps no stored text to append it to (it holds embeddings), so
training on appended text would train one input and serve another. The
attributes are missing only for those examples; the ID embedding, which is
learned from the same user's examples, carries what they said.

Why these templates: short and domain-neutral (no "movie"), lower-case tag
words as users type them, and few of them, so that a training set holds a
few thousand distinct strings, which the trainer embeds once before fit
(:meth:`Preprocessor.known_texts`) with a frozen encoder. Paraphrases that
avoid the tag word ("something scary") are *not* generated: whether those
steer is what the encoder's semantics must carry, and
``benchmarks/text_intent.py`` measures it.
"""
import math
import re
from typing import List, Sequence

import numpy as np
import pandas as pd

from tf_profiles.data.schema import TAG_SEPARATOR
from tf_profiles.errors import UserError
from tf_profiles.features import spec

# "{tags}": one tag, or two joined by "and" ("comedy and romance").
TAG_TEMPLATES = ("{tags}", "something {tags}", "in the mood for {tags}", "looking for {tags}",
                 "{tags} please")
TITLE_TEMPLATES = ("something like {title}", "more like {title}")
# Of the queries, the share made from the title (where the item has one);
# the rest name tags, the steering a user asks for most.
TITLE_SHARE = 0.2
# Of the tag queries of an item with ≥ 2 tags, the share naming two.
TWO_TAG_SHARE = 0.25
# Tags that say nothing about the item (ml-100k: "unknown"; MovieLens
# latest: "(no genres listed)").
PLACEHOLDER_TAGS = frozenset({"unknown", "(no genres listed)", "none", "n/a"})

_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>the|a|an)$", re.IGNORECASE)


def _tag_words(tags) -> List[str]:
    if tags is None or (isinstance(tags, float) and math.isnan(tags)):
        return []
    if isinstance(tags, str):
        tags = tags.split(TAG_SEPARATOR)
    words = [" ".join(str(tag).split()).lower() for tag in tags]
    return [w for w in words if w and w not in PLACEHOLDER_TAGS]


def _title_words(title) -> str:
    # "Usual Suspects, The (1995)" → "the usual suspects": the title as typed.
    if not isinstance(title, str):
        return ""
    title = " ".join(_YEAR.sub("", title).split())
    match = _ARTICLE.match(title)
    if match:
        title = f"{match['article']} {match['rest']}"
    return title.lower() if any(c.isalnum() for c in title) else ""


def item_query_words(items: pd.DataFrame) -> dict:
    """item id → (tag words, title words) of the items that can make a query.

    Args:
      items: with ``item_id`` and optionally ``title`` and ``tags``
        (``"Action|Sci-Fi"`` or a list).
    """
    words = {}
    for row in items.to_dict("records"):
        tags, title = _tag_words(row.get("tags")), _title_words(row.get("title"))
        if tags or title:
            words[str(row["item_id"])] = (tags, title)
    return words


def pseudo_queries(item_ids: Sequence[str], items: pd.DataFrame, fraction: float,
                   seed: int) -> np.ndarray:
    """A query for about ``fraction`` of the examples, from each one's target item.

    Args:
      item_ids: [N] each example's target item.
      items: the item catalogue (see :func:`item_query_words`).
      fraction: the probability that an example gets a query; an example
        whose item has neither tags nor title words never gets one.
      seed: the random choices (which examples, which words and template).

    Returns:
      [N] object array: the query, or "" (no query: the stored text).

    Raises:
      ValueError: ``fraction`` is outside [0, 1].

    Example:
      >>> items = pd.DataFrame({"item_id": ["1"], "title": ["Alien (1979)"],
      ...                       "tags": ["Horror|Sci-Fi"]})
      >>> pseudo_queries(["1", "1", "1"], items, 1.0, seed=0).tolist()
      ['something like alien', 'sci-fi please', 'something sci-fi']
    """
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"query fraction must be in [0, 1], got {fraction}")
    words = item_query_words(items)
    rng = np.random.default_rng(seed)
    item_ids = [str(i) for i in item_ids]
    chosen = rng.random(len(item_ids)) < fraction
    queries = np.full(len(item_ids), "", dtype=object)
    for row in np.flatnonzero(chosen):
        if item_ids[row] not in words:
            continue
        tags, title = words[item_ids[row]]
        if title and (not tags or rng.random() < TITLE_SHARE):
            template = TITLE_TEMPLATES[rng.integers(len(TITLE_TEMPLATES))]
            queries[row] = template.format(title=title)
            continue
        count = 2 if len(tags) >= 2 and rng.random() < TWO_TAG_SHARE else 1
        picked = rng.choice(len(tags), count, replace=False)
        template = TAG_TEMPLATES[rng.integers(len(TAG_TEMPLATES))]
        queries[row] = template.format(tags=" and ".join(tags[i] for i in sorted(picked)))
    return queries


def with_queries(examples: dict, items: pd.DataFrame, fraction: float, seed: int) -> dict:
    """Training examples whose ``user_text`` is a pseudo-query in about ``fraction``
    of them; the others keep theirs ("" where absent: the stored text)."""
    queries = pseudo_queries(examples[spec.ITEM_ID], items, fraction, seed)
    present = examples.get(spec.USER_TEXT, np.full(len(queries), "", dtype=object))
    return {**examples, spec.USER_TEXT: np.where(queries != "", queries, present).astype(object)}

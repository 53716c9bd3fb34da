"""Interest phrases mined from item text, for catalogues without tags.

A KeyBERT-style miner (Grootendorst, 2020: candidate n-grams ranked by the
cosine similarity of their embedding to the document's embedding, with
Maximal Marginal Relevance for diversity) over the model's own frozen
encoder and its embedding cache (:func:`~tf_profiles.text.cache.embed_texts`).
The ``keybert`` package is not used: it is not installed, it would pull in
torch and sentence-transformers beside TensorFlow, and it would embed with
another copy of the encoder than the one the model reads; what it does here
is thirty lines over ``embed_texts``.

Two candidate sources, chosen by the caller:

- **text** (default): word 1–3-grams of the items' own title and description,
  lower-cased; an n-gram may not start or end with a stop word, may not hold a
  pure number (years, sequel numbers), and is kept only if it occurs in at
  least ``min_items`` items. A phrase of one item alone says nothing about a
  user's taste that the item itself does not; one shared by several items is
  what a profile can generalise over. Each item's phrases are chosen among
  the candidates that occur in its own text.
- **labels**: a fixed list of candidate labels given by the caller (for
  instance :data:`FILM_THEMES`), each scored against every item zero-shot,
  whether or not the item's text contains it. Titles alone are short, so
  this is the source that can put "vampires" on "Bram Stoker's Dracula"
  (tests/profiles/test_phrases.py checks a few such titles with MiniLM).
  The labels are the caller's prior: they must not be derived from withheld
  labels of the items being evaluated. Scores are centred per label (see
  ``center``): on ml-100k, uncentred zero-shot themes did worse than random
  (docs/benchmarks/text_signals_interests.md).

The result is an item → phrases mapping in the ``"A|B"`` tag format, so
:func:`~tf_profiles.profiles.interests.interest_weights` scores users'
interests over phrases exactly as it does over tags.

Example:
  >>> mined = mine_phrases(items, encoder, per_item=3)          # doctest: +SKIP
  >>> items.assign(tags=items["item_id"].map(mined.tags))        # doctest: +SKIP
"""
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tf_profiles.data.schema import TAG_SEPARATOR
from tf_profiles.errors import UserError
from tf_profiles.text.render import render_item_text

if TYPE_CHECKING:
    from tf_profiles.text.encoder import TextEncoder

# English function words, plus the articles and prepositions of the other
# languages common in film titles ("Cité des enfants perdus, La"). Roman
# numerals go too: "II" is a sequel mark, not a theme.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in
into is it its itself just me more most my myself no nor not now of off on once only or
other our ours out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself
yourselves s t ll ve re d m don isn aren wasn weren won didn doesn couldn shouldn
la le les l un une des du de et en el los las y il lo di da der das und ein eine
ii iii iv v vi vii viii ix x part
""".split())

# Generic film themes for the ``labels`` source: written as a list of what
# films are about, not taken from any dataset's genre column.
FILM_THEMES = (
    "love story", "romance and relationships", "wedding", "family", "children",
    "animated cartoon", "fairy tale", "magic and fantasy", "superheroes",
    "space and aliens", "robots and technology", "time travel", "future world",
    "monsters", "ghosts and haunted houses", "vampires", "serial killer",
    "murder mystery", "detective", "police", "crime and gangsters", "heist",
    "prison", "courtroom", "spies and espionage", "conspiracy", "politics",
    "war", "soldiers and battle", "history", "biography", "cowboys and the old west",
    "adventure and exploration", "treasure hunt", "disaster", "survival",
    "martial arts", "car chase", "revenge", "sports", "music", "dancing",
    "stand-up humor", "slapstick", "satire", "friendship", "coming of age",
    "high school", "small town", "big city life", "road trip", "animals and nature",
    "religion", "drugs", "poverty", "documentary about real events",
)

NGRAM_RANGE = (1, 3)
_TOKEN = re.compile(r"\w+(?:['’]\w+)*")
# Phrases never cross these: "Usual Suspects, The" gives no "suspects the".
_BOUNDARY = re.compile(r"[.,;:!?()\[\]{}\"/|–—-]+")


@dataclasses.dataclass
class MinedPhrases:
    """What :func:`mine_phrases` found.

    Attributes:
      tags: item_id → that item's phrases, best first, ``"A|B"`` ("" when none).
      vocabulary: the distinct phrases given to at least one item, sorted.
      candidates: every phrase that was scored, sorted.
      source: ``"text"`` or ``"labels"``.
    """
    tags: pd.Series
    vocabulary: List[str]
    candidates: List[str]
    source: str


def item_phrase_text(item: dict) -> str:
    """The text an item is mined from: title and description, never its tags."""
    return render_item_text({key: item.get(key) for key in ("title", "description")})


def _segments(text) -> List[List[str]]:
    if not isinstance(text, str):
        return []
    return [[token for token in _TOKEN.findall(segment.lower())]
            for segment in _BOUNDARY.split(text)]


def _ngrams(text, ngram_range: Tuple[int, int]) -> set:
    low, high = ngram_range
    found = set()
    for tokens in _segments(text):
        for size in range(low, high + 1):
            for start in range(len(tokens) - size + 1):
                gram = tokens[start:start + size]
                if (gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS
                        or len(gram[0]) < 2 or len(gram[-1]) < 2
                        or any(token.isdigit() or "_" in token for token in gram)):
                    continue
                found.add(" ".join(gram))
    return found


def candidate_phrases(texts: Iterable[str], ngram_range: Tuple[int, int] = NGRAM_RANGE,
                      min_items: int = 2) -> List[str]:
    """The n-grams of ``texts`` that occur in at least ``min_items`` of them.

    Args:
      texts: one text per item (non-strings count as empty).
      ngram_range: (shortest, longest) phrase length in words.
      min_items: in how many distinct texts a phrase must occur.

    Returns:
      Sorted lower-case phrases, none starting or ending with a stop word or
      holding a pure number.

    Raises:
      ValueError: a bad ``ngram_range`` or ``min_items``.

    Example:
      >>> candidate_phrases(["Star Wars (1977)", "Return of the Jedi: Star Wars"])
      ['star', 'star wars', 'wars']
    """
    _check_mining(ngram_range, min_items, 1, 0.0)
    counts: Dict[str, int] = {}
    for text in texts:
        for gram in _ngrams(text, ngram_range):
            counts[gram] = counts.get(gram, 0) + 1
    return sorted(gram for gram, count in counts.items() if count >= min_items)


def mine_phrases(items: pd.DataFrame, encoder: "TextEncoder", cache_dir: Optional[Path] = None,
                 per_item: int = 3, min_items: int = 2,
                 ngram_range: Tuple[int, int] = NGRAM_RANGE, diversity: float = 0.3,
                 labels: Optional[Sequence[str]] = None, center: bool = True) -> MinedPhrases:
    """Each item's ``per_item`` phrases closest to its text, by the model's encoder.

    A candidate's score for an item is the cosine similarity of the encoder's
    embedding of the phrase and of the item's text (:func:`item_phrase_text`).
    Phrases are then picked by Maximal Marginal Relevance: the next pick
    maximises ``(1 - diversity) * score - diversity * max similarity to the
    phrases already picked``, so "star wars" is not followed by "star" and
    "wars".

    Args:
      items: item_id, title and optionally description; tags are ignored.
      encoder: the model's text encoder (embeddings come from its cache).
      cache_dir: the text-embedding cache (see ``embed_texts``).
      per_item: phrases kept per item.
      min_items: text source: in how many items a phrase must occur.
      ngram_range: text source: (shortest, longest) phrase length in words.
      diversity: 0 ranks by score alone; towards 1 favours phrases unlike
        those already picked.
      labels: the candidate labels of the ``labels`` source (e.g.
        :data:`FILM_THEMES`); None mines the items' own text.
      center: labels source: score each label by its similarity to the item
        minus its mean similarity over the catalogue, so a label close to
        every title (a "hub") is not everyone's interest.

    Returns:
      :class:`MinedPhrases`.

    Raises:
      ValueError: bad parameters, a label that is empty or holds the tag
        separator, or items without item_id / title.
    """
    _check_mining(ngram_range, min_items, per_item, diversity)
    missing = [column for column in ("item_id", "title") if column not in items.columns]
    if missing:
        raise UserError(f"items lack column(s) {', '.join(missing)}")
    records = items.to_dict("records")
    texts = [item_phrase_text(item) for item in records]
    if labels is None:
        source = "text"
        # ". " so that no phrase runs from the title into the description.
        raw = [". ".join(item[key] for key in ("title", "description")
                         if isinstance(item.get(key), str)) for item in records]
        candidates = candidate_phrases(raw, ngram_range, min_items)
        position = {phrase: index for index, phrase in enumerate(candidates)}
        # Each item may only get phrases its own text contains.
        allowed = [sorted(position[g] for g in _ngrams(text, ngram_range) if g in position)
                   for text in raw]
    else:
        source = "labels"
        candidates = _check_labels(labels)
        allowed = None
    # Here, not at the top: reading stored profiles (profile show) needs no TensorFlow.
    from tf_profiles.text.cache import embed_texts

    item_vectors = _unit(embed_texts(texts, encoder, cache_dir))
    phrase_vectors = _unit(embed_texts(candidates, encoder, cache_dir))
    if allowed is None:
        # [I, L]: cosine similarity of every item to every label (L is small).
        label_scores = item_vectors @ phrase_vectors.T
        has_text = np.array([bool(text) for text in texts])
        if center and has_text.any():
            label_scores = label_scores - label_scores[has_text].mean(axis=0, keepdims=True)
        label_between = phrase_vectors @ phrase_vectors.T
    chosen = []
    for row in range(len(records)):
        if not texts[row]:
            chosen.append("")
            continue
        if allowed is None:
            pool, scores, between = np.arange(len(candidates)), label_scores[row], label_between
        else:
            # Only this item's own candidates: a few, so no [I, C] matrix is ever built.
            pool = np.asarray(allowed[row], dtype=np.int64)
            scores = phrase_vectors[pool] @ item_vectors[row]
            between = phrase_vectors[pool] @ phrase_vectors[pool].T
        picks = _mmr(scores, between, per_item, diversity)
        chosen.append(TAG_SEPARATOR.join(candidates[pool[p]] for p in picks))
    tags = pd.Series(chosen, index=items["item_id"].to_numpy(), dtype=object)
    vocabulary = sorted({p for row in chosen if row for p in row.split(TAG_SEPARATOR)})
    return MinedPhrases(tags, vocabulary, list(candidates), source)


def _mmr(scores: np.ndarray, between: np.ndarray, count: int, diversity: float) -> List[int]:
    """Indices into ``scores`` picked by Maximal Marginal Relevance, best first."""
    picks: List[int] = []
    left = np.ones(len(scores), bool)
    while left.any() and len(picks) < count:
        value = (1.0 - diversity) * scores
        if picks:
            value = value - diversity * between[:, picks].max(axis=1)
        value = np.where(left, value, -np.inf)
        best = int(np.argmax(value))
        picks.append(best)
        left[best] = False
    return picks


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # "" embeds as zeros: it stays zero (similar to nothing) instead of NaN.
    return vectors / np.where(norms > 0, norms, 1.0)


def _check_mining(ngram_range, min_items, per_item, diversity):
    if (len(tuple(ngram_range)) != 2 or not all(isinstance(n, int) for n in ngram_range)
            or not 1 <= ngram_range[0] <= ngram_range[1]):
        raise UserError(f"ngram_range must be (low, high) with 1 <= low <= high, "
                        f"got {ngram_range!r}")
    if not isinstance(min_items, int) or min_items < 1:
        raise UserError(f"min_items must be an int >= 1, got {min_items!r}")
    if not isinstance(per_item, int) or per_item < 1:
        raise UserError(f"per_item must be an int >= 1, got {per_item!r}")
    if not 0.0 <= diversity <= 1.0:
        raise UserError(f"diversity must be in [0, 1], got {diversity!r}")


def _check_labels(labels: Sequence[str]) -> List[str]:
    if isinstance(labels, str):
        raise UserError("labels must be a list of strings, not one string")
    cleaned = []
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise UserError(f"labels[{index}] is empty or not a string: {label!r}")
        if TAG_SEPARATOR in label:
            raise UserError(f"labels[{index}] {label!r} holds the tag separator "
                            f"{TAG_SEPARATOR!r}")
        cleaned.append(" ".join(label.split()))
    if not cleaned:
        raise UserError("labels is empty: give at least one candidate label")
    return sorted(set(cleaned))

"""The readable part of a profile: one description a person can check."""
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from tf_profiles.text.render import render_user_text


def describe_profile(attributes: Mapping, interests: Iterable[Tuple[str, float]],
                     recent_titles: Sequence[str], shown_interests: int = 3,
                     shown_recent: int = 3, writes_about: Sequence[str] = (),
                     tone: Optional[str] = None) -> str:
    """E.g. "age 24, male, technician. Interested in Sci-Fi (0.41), Action (0.22).
    Recently: Star Wars (1977), Alien (1979). Writes about: slow burn, strong
    lead; recent reviews mostly positive."

    Args:
      attributes: the user's row (rendered with :func:`render_user_text`).
      interests: (tag, weight), strongest first.
      recent_titles: most recent first.
      writes_about: phrases from the user's own words (see
        :mod:`tf_profiles.profiles.words`).
      tone: of the user's recent texts ("mostly positive", ...).
    """
    parts = []
    about = render_user_text(attributes)
    if about:
        parts.append(about.rstrip("."))
    interests = list(interests)[:shown_interests]
    if interests:
        parts.append("Interested in " + ", ".join(f"{tag} ({weight:.2f})"
                                                 for tag, weight in interests))
    if recent_titles:
        parts.append("Recently: " + ", ".join(recent_titles[:shown_recent]))
    words = []
    if writes_about:
        words.append("Writes about: " + ", ".join(writes_about))
    if tone:
        words.append(f"recent reviews {tone}")
    if words:
        sentence = "; ".join(words)
        parts.append(sentence[0].upper() + sentence[1:])
    return "".join(part + ". " for part in parts).strip()

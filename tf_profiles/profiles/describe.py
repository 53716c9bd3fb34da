"""The readable part of a profile: one description a person can check."""
from typing import Iterable, Mapping, Sequence, Tuple

from tf_profiles.text.render import render_user_text


def describe_profile(attributes: Mapping, interests: Iterable[Tuple[str, float]],
                     recent_titles: Sequence[str], shown_interests: int = 3,
                     shown_recent: int = 3) -> str:
    """E.g. "age 24, male, technician. Interested in Sci-Fi (0.41), Action (0.22).
    Recently: Star Wars (1977), Alien (1979)."

    Args:
      attributes: the user's row (rendered with :func:`render_user_text`).
      interests: (tag, weight), strongest first.
      recent_titles: most recent first.
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
    return "".join(part + ". " for part in parts).strip()

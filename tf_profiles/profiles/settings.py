"""Profile settings: how profiles are computed from events, and where they are kept.

A profile store records the settings its profiles were computed with, so
that a later refresh or export (or ``profile show``) computes the same way
unless told otherwise; a change of setting marks every profile stale, so the
next refresh recomputes them all. This module holds the one default of each.
"""
from typing import Optional

# Interests: an event this many days older than the user's latest counts half.
HALF_LIFE_DAYS = 90.0


def half_life_days(store=None, given: Optional[float] = None) -> float:
    """``given`` if set, else the value ``store`` recorded, else the default."""
    if given is not None:
        return float(given)
    recorded = store.profile_settings().get("half_life_days") if store is not None else None
    return HALF_LIFE_DAYS if recorded is None else float(recorded)

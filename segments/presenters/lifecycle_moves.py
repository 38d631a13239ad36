"""A move between lifecycle states since a business day, as a customers list's filter names
it in its URL: `<from>:<to>:<YYYY-MM-DD>`. The overview's flow writes such links, the
customers list's filter (segments.admin.LifecycleMoveListFilter) reads them."""

from dataclasses import dataclass
from datetime import date

from django.utils.dateparse import parse_date

from segments.models import LifecycleState

LIFECYCLE_MOVE_PARAMETER = "lifecycle_move"


@dataclass(frozen=True)
class LifecycleMove:
    from_state: str
    to_state: str
    since: date  # a business day: the move began at or after its start

    @property
    def value(self) -> str:
        return f"{self.from_state}:{self.to_state}:{self.since.isoformat()}"


def lifecycle_move_parse(value: str) -> LifecycleMove | None:
    """The move a filter value names; None when it names none (an unknown state, the same
    state twice, no such day)."""
    parts = value.split(":")
    if len(parts) != 3:
        return None
    from_state, to_state, day = parts
    states = LifecycleState.values
    if from_state not in states or to_state not in states or from_state == to_state:
        return None
    try:
        since = parse_date(day)
    except ValueError:  # well formed, but no such day
        return None
    if since is None:
        return None
    return LifecycleMove(from_state=from_state, to_state=to_state, since=since)

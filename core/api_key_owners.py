"""The staff members (跟进人) an API key may be bound to, as core sees them: an extension point.

Staff members live in crm, which core may not import; crm registers how to read them
(crm.apps.CrmConfig.ready), and core's key service (is the id known?) and admin (whose name?)
ask through here. Reads only."""

from collections.abc import Callable, Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class OwnerDirectory:
    # Staff member ids -> display names, for the ids that exist (one query).
    names: Callable[[Collection[int]], dict[int, str]]
    # Every active staff member as (id, name), for a form's choices.
    choices: Callable[[], list[tuple[int, str]]]


_directory: OwnerDirectory | None = None


def register(directory: OwnerDirectory) -> None:
    global _directory
    _directory = directory


def owner_names(ids: Collection[int]) -> dict[int, str]:
    """The names of the staff members among `ids` that exist (none before crm registered)."""
    if _directory is None or not ids:
        return {}
    return _directory.names(ids)


def owner_choices() -> list[tuple[int, str]]:
    return [] if _directory is None else _directory.choices()

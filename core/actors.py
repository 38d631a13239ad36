"""Who did something, in the operator's words: the services record an actor or a trigger as a
code (`user:7`, `admin:user:7`, `api_key:erp:ab12cd`, `schedule`, `command`); these functions
turn the codes into what an admin page shows (the user's name, API 密钥「erp」, 定时任务).
Reads only; `actor_labels` resolves a page of codes with one query."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Triggers and actors the code writes as a fixed word rather than a person or key.
FIXED_ACTORS = {
    "schedule": _("Scheduled task"),
    "command": _("Command line"),
    "api": _("Integration API"),
    "policy": _("Policy change"),
    "default": _("System"),
    "system": _("System"),
    "sweep": _("Scheduled task (marked customers)"),
    "wecom": _("WeCom"),
    "wecom_sync": _("WeCom sync"),
}


def _user_id(actor: str) -> int | None:
    """The user id of `user:<id>` or `admin:user:<id>` (the admin's triggers), else None."""
    code = actor.removeprefix("admin:")
    prefix, _sep, rest = code.partition(":")
    if prefix == "user" and rest.isdigit():
        return int(rest)
    return None


def _user_name(user: object) -> str:
    full_name = user.get_full_name().strip()  # type: ignore[attr-defined]
    return full_name or user.get_username()  # type: ignore[attr-defined,no-any-return]


def _label(actor: str, names: dict[int, str]) -> str:
    if not actor:
        return gettext("System")
    user_id = _user_id(actor)
    if user_id is not None:
        return names.get(user_id) or gettext("Deleted user #%(id)d") % {"id": user_id}
    prefix, _sep, rest = actor.partition(":")
    if prefix == "api_key" and rest:
        # api_key:<name>:<prefix>; the name itself may hold a colon, the prefix never does.
        name = rest.rpartition(":")[0] or rest
        return gettext("API key “%(name)s”") % {"name": name}
    fixed = FIXED_ACTORS.get(actor)
    return str(fixed) if fixed is not None else actor


def actor_labels(actors: Iterable[str]) -> dict[str, str]:
    """Each distinct actor code mapped to its label; users are read in one query."""
    codes = set(actors)
    user_ids = {user_id for code in codes if (user_id := _user_id(code or "")) is not None}
    names: dict[int, str] = {}
    if user_ids:
        names = {
            user.pk: _user_name(user) for user in get_user_model().objects.filter(pk__in=user_ids)
        }
    return {code: _label(code or "", names) for code in codes}


def actor_label(actor: str) -> str:
    """One actor code's label (one query when it names a user)."""
    return actor_labels([actor])[actor]

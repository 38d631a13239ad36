"""What a sync run's change counts mean, in the operator's words: the admin's sync records and
the `wecom_sync` command show each kind by its label (a kind without one shows as 其他变更)."""

from collections.abc import Mapping

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

CHANGE_LABELS = {
    "contacts_created": _("customers added"),
    "contacts_updated": _("customers updated"),
    "follows_opened": _("relations added"),
    "follows_changed": _("relations changed"),
    "follows_ended": _("relations ended"),
    "staff_skipped_no_privilege": _("staff members skipped (not visible to the app)"),
}


def change_lines(changes: Mapping[str, int]) -> list[str]:
    """One line per kind of change: its label and count, in CHANGE_LABELS order."""
    known = [kind for kind in CHANGE_LABELS if changes.get(kind)]
    others = sum(n for kind, n in changes.items() if kind not in CHANGE_LABELS)
    lines = [
        gettext("%(label)s: %(count)d") % {"label": CHANGE_LABELS[kind], "count": changes[kind]}
        for kind in known
    ]
    if others:
        lines.append(gettext("other changes: %(count)d") % {"count": others})
    return lines

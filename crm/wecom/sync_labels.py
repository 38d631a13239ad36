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
    "tag_groups_created": _("tag groups added"),
    "tag_groups_adopted": _("tag groups linked by name"),
    "tag_groups_renamed": _("tag groups renamed"),
    "tag_groups_deleted": _("tag groups deleted"),
    "tag_groups_unlinked": _("tag groups no longer synced (deleted in WeCom)"),
    "tags_created": _("tags added"),
    "tags_adopted": _("tags linked by name"),
    "tags_renamed": _("tags renamed"),
    "tags_deleted": _("tags deleted"),
    "tag_holdings_deleted": _("customers' tags removed with their deleted tags"),
    "tags_given": _("customers' tags given from WeCom"),
    "tags_taken": _("customers' tags taken away from WeCom"),
    "group_chats_created": _("group chats added"),
    "group_chats_renamed": _("group chats renamed"),
    "group_chat_owners_changed": _("group chat owners changed"),
    "group_chats_dismissed": _("group chats dismissed"),
    "group_chats_restored": _("group chats found again"),
    "group_chats_skipped": _("group chats skipped (not visible to the app)"),
    "stays_opened": _("group chat stays opened"),
    "stays_closed": _("group chat stays closed"),
    "customers_created": _("customers added from group chats"),
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

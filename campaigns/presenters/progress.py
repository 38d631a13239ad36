"""A campaign's progress in words: the state shown (发送中 / 待员工确认 while deliveries still
wait, the stored state otherwise) and its sent, waiting and failed counts, for its page and for
the JSON its page polls."""

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from campaigns.models import CampaignState
from campaigns.presenters.formatting import format_count, format_percent
from campaigns.selectors import (
    PROGRESS_AWAITING_PLATFORM,
    PROGRESS_AWAITING_STAFF,
    PROGRESS_SENDING,
    CampaignProgress,
)

PROGRESS_LABELS: dict[str, Promise] = {
    PROGRESS_SENDING: _("Sending"),
    PROGRESS_AWAITING_STAFF: _("Waiting for staff to confirm"),
    PROGRESS_AWAITING_PLATFORM: _("Waiting for the platform"),
}

PROGRESS_HINTS: dict[str, Promise] = {
    PROGRESS_AWAITING_STAFF: _(
        "The WeCom tasks are created: each staff member confirms theirs in WeCom, then the "
        "results are collected every few minutes."
    ),
    PROGRESS_AWAITING_PLATFORM: _("The sends are handed over: their results are not in yet."),
}


def progress_state_label(progress: CampaignProgress) -> str:
    label = PROGRESS_LABELS.get(progress.state)
    return str(label if label is not None else CampaignState(progress.state).label)


def progress_data(progress: CampaignProgress) -> dict[str, Any]:
    """The progress as its page shows it and its JSON answers it: counts, and their words."""
    done = progress.sent + progress.failed
    return {
        "state": progress.state,
        "state_label": progress_state_label(progress),
        "hint": str(PROGRESS_HINTS.get(progress.state, "")),
        "is_live": progress.is_live,
        "sent": progress.sent,
        "waiting": progress.waiting,
        "awaiting_platform": progress.awaiting_platform,
        "failed": progress.failed,
        "to_send": progress.to_send,
        "done_percent": round(done * 100 / progress.to_send) if progress.to_send else 0,
        "text": {
            "sent": format_count(progress.sent),
            "waiting": format_count(progress.waiting),
            "awaiting_platform": format_count(progress.awaiting_platform),
            "failed": format_count(progress.failed),
            "to_send": format_count(progress.to_send),
            "done": format_percent(done / progress.to_send) if progress.to_send else "—",
        },
    }

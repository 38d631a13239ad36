"""The state changes of campaigns offered as admin actions (launch, pause, resume, cancel, rotate
a webhook's signing secret): the service each calls and the words of its confirmation page."""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from campaigns.models import Campaign
from campaigns.services.campaigns import (
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_webhook_secret_rotate,
)


@dataclass(frozen=True)
class Transition:
    """A state change offered as an admin action, with the words of its confirmation."""

    service: Callable[..., Campaign]
    title: Promise
    question: Promise
    confirm_label: Promise
    done: Promise  # takes %(count)d


TRANSITIONS = {
    "launch": Transition(
        service=campaign_launch,
        title=_("Launch campaigns"),
        question=_(
            "Launch these campaigns? Each starts sending at once, at its scheduled time, or "
            "(a triggered campaign) with the next customer who enters its trigger."
        ),
        confirm_label=_("Yes, launch"),
        done=ngettext_lazy(
            "%(count)d campaign launched.", "%(count)d campaigns launched.", "count"
        ),
    ),
    "pause": Transition(
        service=campaign_pause,
        title=_("Pause campaigns"),
        question=_(
            "Pause these campaigns? Sends already handed to a channel finish; the others wait "
            "until the campaign is resumed."
        ),
        confirm_label=_("Yes, pause"),
        done=ngettext_lazy("%(count)d campaign paused.", "%(count)d campaigns paused.", "count"),
    ),
    "resume": Transition(
        service=campaign_resume,
        title=_("Resume campaigns"),
        question=_("Resume these campaigns?"),
        confirm_label=_("Yes, resume"),
        done=ngettext_lazy("%(count)d campaign resumed.", "%(count)d campaigns resumed.", "count"),
    ),
    "cancel": Transition(
        service=campaign_cancel,
        title=_("Cancel campaigns"),
        question=_(
            "Cancel these campaigns for good? Every send not yet handed to a channel is "
            "cancelled; a cancelled campaign cannot be resumed."
        ),
        confirm_label=_("Yes, cancel them"),
        done=ngettext_lazy(
            "%(count)d campaign cancelled.", "%(count)d campaigns cancelled.", "count"
        ),
    ),
    "rotate_webhook_secret": Transition(
        service=campaign_webhook_secret_rotate,
        title=_("Rotate webhook signing secrets"),
        question=_(
            "Give these webhook campaigns new signing secrets? Posts from now on are signed "
            "with the new secret and the old one no longer verifies: the receiver must be "
            "given the new secret, which is shown only once, on the next page."
        ),
        confirm_label=_("Yes, rotate"),
        done=ngettext_lazy(
            "%(count)d signing secret rotated.", "%(count)d signing secrets rotated.", "count"
        ),
    ),
}

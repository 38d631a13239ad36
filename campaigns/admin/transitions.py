"""The state changes of campaigns offered as admin actions (launch, pause, resume, cancel, rotate
a webhook's signing secret) and, the first four, as buttons on the campaign's page: the service
each calls, the states it applies to, and the words of its button and confirmation page."""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from campaigns.models import Campaign, CampaignState
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
    states: tuple[str, ...] = ()  # those it applies to, as a button on the campaign's page
    button_label: Promise | None = None  # None: an action of the list only
    page_question: Promise | None = None  # the confirmation page's question, one campaign


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
        states=(CampaignState.DRAFT,),
        button_label=_("Launch"),
        page_question=_(
            "Launch this campaign? It starts sending at once, at its scheduled time, or (a "
            "triggered campaign) with the next customer who enters its trigger. Below: what "
            "launching it now would do."
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
        states=(CampaignState.SCHEDULED, CampaignState.SENDING),
        button_label=_("Pause"),
        page_question=_(
            "Pause this campaign? Sends already handed to a channel finish; the others wait "
            "until the campaign is resumed."
        ),
    ),
    "resume": Transition(
        service=campaign_resume,
        title=_("Resume campaigns"),
        question=_("Resume these campaigns?"),
        confirm_label=_("Yes, resume"),
        done=ngettext_lazy("%(count)d campaign resumed.", "%(count)d campaigns resumed.", "count"),
        states=(CampaignState.PAUSED,),
        button_label=_("Resume"),
        page_question=_("Resume this campaign? The sends that wait go out again."),
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
        states=(CampaignState.SCHEDULED, CampaignState.SENDING, CampaignState.PAUSED),
        button_label=_("Cancel campaign"),
        page_question=_(
            "Cancel this campaign for good? Every send not yet handed to a channel is "
            "cancelled; a cancelled campaign cannot be resumed."
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

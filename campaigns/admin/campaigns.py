"""Campaigns with their variants, written through the services and read-only once launched;
launch, pause, resume and cancel as buttons on the campaign's page, each behind a confirmation
page (launching's with the dry run's funnel, the WeCom tasks and warnings), and as actions of
the list with the rotation of a webhook's secret; the campaign's progress, which its pages poll
as JSON; and its dry run and report pages, reading the services."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from campaigns.admin.campaign_form import (
    FORM_FIELD_OPTIONS,
    SERVICE_FIELD_NAMES,
    CampaignForm,
    VariantInline,
    campaign_values,
    is_draft,
    variant_inputs,
    with_validators,
)
from campaigns.admin.transitions import TRANSITIONS
from campaigns.models import Campaign, CampaignState, DeliveryStatus, Variant
from campaigns.presenters.dry_run import dry_run_context
from campaigns.presenters.launch import example_messages, launch_context
from campaigns.presenters.progress import progress_data, progress_state_label
from campaigns.presenters.report import report_context
from campaigns.selectors import (
    campaign_delivery_counts,
    campaign_progress,
    campaign_search_condition,
    progress_of,
)
from campaigns.services.campaigns import (
    ERROR_CAMPAIGN_NOT_FOUND,
    CampaignInput,
    VariantInput,
    campaign_create,
    campaign_delete,
    campaign_update,
)
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.launch_check import campaign_launch_check
from campaigns.services.report import campaign_report
from core.admin import ServiceAdmin, actor_column
from core.business_time import business_time_label
from core.errors import DomainError
from crm.admin_scoping import AllCustomersAdmin

ERROR_PERMISSION_DENIED = "permission_denied"

# Shown once, when a secret is issued: only its encrypted form is kept.
SECRET_ISSUED = _(
    "Signing secret of the webhook campaign “%(name)s”: %(secret)s — it is shown "
    "only this once: give it to the receiver now (it verifies the X-CRM-Signature header)."
)

# The dry run answers what launching would do: worth a look until the campaign is planned.
DRY_RUN_STATES = {CampaignState.DRAFT, CampaignState.SCHEDULED}
# The transitions offered as buttons on the campaign's page, in their order there.
PAGE_TRANSITIONS = ("launch", "pause", "resume", "cancel")
# How often a page showing a campaign's progress asks for it again, while it moves.
PROGRESS_POLL_MILLISECONDS = 4000


class CampaignChangeList(ChangeList):
    """Fetches the delivery counts of the page's campaigns in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        counts = campaign_delivery_counts([campaign.pk for campaign in self.result_list])
        for campaign in self.result_list:  # evaluates and caches the page the template shows
            campaign.counts_by_status = counts[campaign.pk]


# What the campaign's life wrote, shown read-only in its "Progress" section. A tuple: the
# read-only fields and the section share it, so neither may change it for the other.
PROGRESS_FIELDS = (
    "state_shown",
    "delivery_counts",
    "created_by_label",
    "created_at_shown",
    "updated_at_shown",
    "launched_at_shown",
    "planned_at_shown",
    "finished_at_shown",
)


def business_time_field(name: str, description: Any) -> Any:
    """A read-only field showing the time field `name` in business time, zone named."""

    @admin.display(description=description, ordering=name)
    def shown(model_admin: admin.ModelAdmin, campaign: Campaign) -> str:
        return business_time_label(getattr(campaign, name))

    shown.__name__ = f"{name}_shown"
    return shown


@admin.register(Campaign)
class CampaignAdmin(AllCustomersAdmin, ServiceAdmin):
    created_by_label = actor_column("created_by", _("created by"))
    created_at_shown = business_time_field("created_at", _("created at"))
    updated_at_shown = business_time_field("updated_at", _("updated at"))
    launched_at_shown = business_time_field("launched_at", _("launched at"))
    planned_at_shown = business_time_field("planned_at", _("planned at"))
    finished_at_shown = business_time_field("finished_at", _("finished at"))
    form = CampaignForm
    service_field_names = SERVICE_FIELD_NAMES
    inlines = [VariantInline]
    list_display = [
        "name",
        "channel",
        "state_shown",
        "schedule",
        "holdout",
        "priority",
        "launched_at_shown",
        "delivery_counts",
    ]
    list_filter = ["state", "channel", "schedule_kind"]
    search_fields = ["name"]  # and labels: see get_search_results
    search_help_text = _("Name contains, or a label.")
    autocomplete_fields = ["include_segments", "exclude_segments", "trigger_segment"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = PROGRESS_FIELDS
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "description",
                    "channel",
                    "consent_channel",
                    "webhook_url",
                    "labels",
                    "priority",
                ]
            },
        ),
        (_("Audience"), {"fields": ["include_segments", "exclude_segments", "extra_rule"]}),
        (
            _("Schedule"),
            {
                "fields": [
                    "schedule_kind",
                    "scheduled_at",
                    "trigger_lifecycle_state",
                    "trigger_segment",
                    "trigger_ends_at",
                    "quiet_hours_start",
                    "quiet_hours_end",
                    "throttle_per_minute",
                ]
            },
        ),
        (
            _("Holdout and frequency caps"),
            {"fields": ["holdout_share", "respects_caps", "counts_toward_caps"]},
        ),
        (
            _("Conversions"),
            {
                "fields": [
                    "conversion_window_days",
                    "conversion_min_amount",
                    "conversion_sku",
                    "conversion_category",
                    "attribution_model",
                ]
            },
        ),
        (
            _("Progress"),
            {"fields": PROGRESS_FIELDS},
        ),
    ]
    actions = ["launch", "pause", "resume", "cancel", "rotate_webhook_secret"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The admin builds its form with this callback, not CampaignForm.Meta's.
        kwargs = {**FORM_FIELD_OPTIONS.get(db_field.name, {}), **kwargs}
        return with_validators(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:-1]  # no progress before saving

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CampaignChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Campaign], search_term: str
    ) -> tuple[QuerySet[Campaign], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(campaign_search_condition(term)), False

    @admin.display(description=_("schedule"), ordering="schedule_kind")
    def schedule(self, campaign: Campaign) -> str:
        kind = campaign.get_schedule_kind_display()
        if campaign.scheduled_at is None:
            return kind
        # A planned time: its zone is named, so that nobody reads it as their own.
        return f"{kind} {business_time_label(campaign.scheduled_at)}"

    @admin.display(description=_("state"), ordering="state")
    def state_shown(self, campaign: Campaign) -> str:
        """The state, or what a campaign sending (or completed) still waits for; on the change
        page, kept up to date by campaigns/campaign.js with the progress panel."""
        if campaign.pk is None:
            return "-"
        counts = getattr(campaign, "counts_by_status", None)
        if counts is not None:  # the list
            return progress_state_label(progress_of(campaign, counts))
        label = progress_state_label(campaign_progress(campaign))
        return format_html('<span data-progress="state_label">{}</span>', label)

    @admin.display(description=_("holdout"), ordering="holdout_share")
    def holdout(self, campaign: Campaign) -> str:
        return f"{(campaign.holdout_share * 100).normalize():f}%"

    @admin.display(description=_("deliveries"))
    def delivery_counts(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "-"
        counts = getattr(campaign, "counts_by_status", None)
        if counts is None:  # the change page: one campaign
            counts = campaign_delivery_counts([campaign.pk])[campaign.pk]
        shown = [(DeliveryStatus(s).label, n) for s, n in counts.items() if n]
        if not shown:
            return "-"
        url = reverse("admin:campaigns_delivery_changelist")
        return format_html(
            '<a href="{}?campaign__id__exact={}">{}</a>',
            url,
            campaign.pk,
            format_html_join(", ", "{}: {}", shown),
        )

    # The dry run and the report: pages of their own, linked from the change form, open to
    # whoever may view campaigns.

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name=f"{info}_dry_run",
            ),
            path(
                "<path:object_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name=f"{info}_report",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name=f"{info}_progress",
            ),
            *(
                path(
                    f"<path:object_id>/{action}/",
                    self.admin_site.admin_view(self.transition_view),
                    {"action": action},
                    name=f"{info}_{action}",
                )
                for action in PAGE_TRANSITIONS
            ),
            *super().get_urls(),  # last: it ends with a catch-all of <path:object_id>/
        ]

    def campaign_pages(self, campaign: Campaign) -> list[tuple[str, Promise]]:
        """The pages worth opening in the campaign's state: the dry run until it is planned,
        the report once launched."""
        pages: list[tuple[str, Promise]] = []
        if campaign.state in DRY_RUN_STATES:
            url = reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk])
            pages.append((url, _("Dry run")))
        if campaign.state != CampaignState.DRAFT:
            url = reverse("admin:campaigns_campaign_report", args=[campaign.pk])
            pages.append((url, _("Report")))
        return pages

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["campaign_pages"] = self.campaign_pages(obj)
            context["campaign_buttons"] = self.campaign_buttons(request, obj)
            context.update(self._progress_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def campaign_buttons(self, request: HttpRequest, campaign: Campaign) -> list[dict[str, Any]]:
        """The state changes open to the user in the campaign's state, each a link to its
        confirmation page."""
        if not self.has_launch_permission(request):
            return []
        return [
            {
                "action": action,
                "label": TRANSITIONS[action].button_label,
                "url": reverse(f"admin:campaigns_campaign_{action}", args=[campaign.pk]),
            }
            for action in PAGE_TRANSITIONS
            if campaign.state in TRANSITIONS[action].states
        ]

    def _progress_context(self, campaign: Campaign) -> dict[str, Any]:
        """The progress panel: shown once the campaign is launched, polled while it moves."""
        if campaign.state == CampaignState.DRAFT:
            return {}
        return {
            "progress": progress_data(campaign_progress(campaign)),
            "progress_url": reverse("admin:campaigns_campaign_progress", args=[campaign.pk]),
            "progress_poll_milliseconds": PROGRESS_POLL_MILLISECONDS,
        }

    def _viewed_campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404(_("No campaign with this id."))
        return campaign

    def _campaign_page(
        self,
        request: HttpRequest,
        campaign: Campaign,
        *,
        title: Promise,
        template: str,
        context: dict[str, Any],
    ) -> TemplateResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "subtitle": campaign.name,
                "opts": self.opts,
                "original": campaign,
                **context,
            },
        )

    def dry_run_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        campaign = self._viewed_campaign(request, object_id)
        at = timezone.now()
        dry_run = campaign_dry_run(campaign=campaign, at=at)
        return self._campaign_page(
            request,
            campaign,
            title=_("Dry run"),
            template="admin/campaigns/campaign/dry_run.html",
            context={
                "at_label": business_time_label(at),
                "is_planned": campaign.state not in DRY_RUN_STATES,
                **dry_run_context(campaign, dry_run),
            },
        )

    def report_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        campaign = self._viewed_campaign(request, object_id)
        report = campaign_report(campaign=campaign)
        return self._campaign_page(
            request,
            campaign,
            title=_("Report"),
            template="admin/campaigns/campaign/report.html",
            context={
                **report_context(report),
                **self._progress_context(campaign),
                "examples": example_messages(campaign),
                "at_label": business_time_label(timezone.now()),
                "launched_label": business_time_label(campaign.launched_at),
                "finished_label": business_time_label(campaign.finished_at),
            },
        )

    def progress_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """The campaign's progress as JSON, for its pages to poll; a refusal as JSON with its
        code."""
        if not self.has_view_permission(request):
            return JsonResponse(
                {"code": ERROR_PERMISSION_DENIED, "detail": str(_("You may not view campaigns."))},
                status=403,
            )
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            return JsonResponse(
                {"code": ERROR_CAMPAIGN_NOT_FOUND, "detail": str(_("No campaign with this id."))},
                status=404,
            )
        return JsonResponse(progress_data(campaign_progress(campaign)))

    def transition_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """A state change of one campaign: its confirmation page (GET), then the service
        (POST), back on the campaign's page either way it ends."""
        campaign = self._viewed_campaign(request, object_id)
        if not self.has_launch_permission(request):
            raise PermissionDenied
        transition = TRANSITIONS[action]
        change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        if campaign.state not in transition.states:
            message = _("This campaign is %(state)s: it cannot be changed this way now.") % {
                "state": campaign.get_state_display()
            }
            self.message_user(request, message, messages.WARNING)
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            try:
                transition.service(campaign_id=campaign.pk, actor=f"user:{request.user.pk}")
            except DomainError as refusal:
                self.message_refusal(request, refusal)
            else:
                self.message_user(request, transition.done % {"count": 1}, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        return self._campaign_page(
            request,
            campaign,
            title=transition.button_label or transition.title,
            template="admin/campaigns/campaign/confirm.html",
            context={
                "transition": transition,
                "action": action,
                "change_url": change_url,
                **self._confirmation_context(campaign, action, change_url),
            },
        )

    def _confirmation_context(
        self, campaign: Campaign, action: str, change_url: str
    ) -> dict[str, Any]:
        """What the confirmation shows: what sending now would do when it starts the sends (a
        launch, or resuming a campaign paused before it was planned); else where they are."""
        if action not in ("launch", "resume") or campaign.planned_at is not None:
            return self._progress_context(campaign)
        at = timezone.now()
        dry_run = campaign_dry_run(campaign=campaign, at=at)
        check = campaign_launch_check(campaign=campaign, at=at)
        return {
            "at_label": business_time_label(at),
            **launch_context(campaign, dry_run, check, edit_url=change_url),
            "is_editable": campaign.state == CampaignState.DRAFT,
        }

    # Read-only once launched: a launched campaign is changed by the actions, never edited.

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_draft(obj) and super().has_delete_permission(request, obj)

    def has_launch_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.launch_campaign")

    # Saving: the form and its variants go to the service together, in save_related (Django
    # calls save_model first, before the variant rows are at hand). What the service refuses
    # (the rules only it checks: known template variables, an audience, a coherent schedule)
    # is shown on the form by ServiceAdmin.

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        """Nothing yet: see save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        variants: list[VariantInput] = []
        for formset in formsets:
            # What the change message reads; the service writes the variants, not the formset.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is Variant:
                variants = variant_inputs(formset)
        values = campaign_values(form.cleaned_data, variants)
        actor = f"user:{request.user.pk}"
        if change:
            saved = campaign_update(campaign_id=form.instance.pk, actor=actor, changes=values)
        else:
            saved = campaign_create(data=CampaignInput(**values), actor=actor)
        form.instance.pk = saved.pk
        self._show_issued_secret(request, saved)

    def _show_issued_secret(self, request: HttpRequest, campaign: Campaign) -> None:
        if campaign.issued_webhook_secret:
            message = SECRET_ISSUED % {
                "name": campaign.name,
                "secret": campaign.issued_webhook_secret,
            }
            self.message_user(request, message, messages.WARNING)

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        """The service deletes drafts only."""
        campaign_delete(campaign_id=object_id, actor=f"user:{request.user.pk}")

    # Actions: a confirmation page first (the standard pattern of delete_selected), then the
    # service, campaign by campaign; a refusal is reported and the others go ahead.

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Campaign], action: str
    ) -> TemplateResponse | None:
        transition = TRANSITIONS[action]
        campaigns = list(queryset.order_by("pk"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": transition.title,
                "question": transition.question,
                "confirm_label": transition.confirm_label,
                "campaigns": campaigns,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.opts,
                "media": self.media,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request, "admin/campaigns/campaign/transition_confirmation.html", context
            )
        done = 0
        for campaign in campaigns:
            try:
                changed = transition.service(
                    campaign_id=campaign.pk, actor=f"user:{request.user.pk}"
                )
            except DomainError as refusal:
                self.message_refusal(request, refusal, about=campaign.name)
            else:
                done += 1
                self._show_issued_secret(request, changed)
        if done:
            self.message_user(request, transition.done % {"count": done}, messages.SUCCESS)
        return None

    @admin.action(description=_("Launch the selected campaigns"), permissions=["launch"])
    def launch(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "launch")

    @admin.action(description=_("Pause the selected campaigns"), permissions=["launch"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "pause")

    @admin.action(description=_("Resume the selected campaigns"), permissions=["launch"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "resume")

    @admin.action(description=_("Cancel the selected campaigns"), permissions=["launch"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "cancel")

    @admin.action(
        description=_("Rotate the webhook signing secret of the selected campaigns"),
        permissions=["launch"],
    )
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "rotate_webhook_secret")

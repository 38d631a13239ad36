"""The audit trail as an operator reads it (the admin's 审计日志): each event's detail in words,
never codes, JSON or UTC. Changes name fields by their models' labels and values by their
choices' labels, moments in business time, staff members by name, API key scopes by their
labels; a PIPL request's counts by kind of data, what was deleted apart from what was kept; an
export's filter by the fields and values of the customer list. Reads only.

Core sits below the apps whose models the events name: it looks them up by label at call time
(`apps.get_model`), never imports them."""

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext_lazy, pgettext
from django.utils.translation import gettext_lazy as _

from core.api_key_owners import owner_names
from core.business_time import business_time_label
from core.models import AuditAction, AuditEvent
from core.services.api_keys import scope_label
from core.services.audit import SECRET_CHANGED

# The models whose fields the events name, by label (core may not import the apps above it).
AUDITED_MODELS = {
    "customer": "crm.Customer",
    "segment": "segments.Segment",
    "campaign": "campaigns.Campaign",
    "frequency_rule": "campaigns.FrequencyRule",
    "rfm_policy": "segments.RfmPolicy",
    "lifecycle_policy": "segments.LifecyclePolicy",
    "api_key": "core.ApiKey",
    "contact_way": "crm.ContactWay",
}
# The model an export's filter starts from (the customer list's parameters).
EXPORTED_MODEL = "crm.Customer"

# Names a change records that are no field of its model, or a field without a label.
EXTRA_FIELD_LABELS = {
    "secret_hash": _("key secret"),
    "webhook_secret": _("signing secret"),
}
# Recorded values of secrets: never the value, only that it changed.
SECRET_FIELDS = frozenset({"secret_hash", "webhook_secret"})

# The facts other than changes an event's detail holds (merges, exports, views of lists).
AUDITED_FACTS = {
    "customer_ids": _("customers"),
    "survivor_id": _("customer kept"),
    "absorbed_ids": _("customers merged into it"),
    "filter": _("filter"),
    "is_searched": _("narrowed by a search"),
    "row_count": _("rows"),
    "format": _("file format"),
    "is_unmasked": _("unmasked"),
}
FACT_ORDER = {name: position for position, name in enumerate(AUDITED_FACTS)}
# The detail's entries shown otherwise than as facts.
SHOWN_APART = frozenset({"before", "after", "operation", "privacy_request_id", "counts"})
# An export's file formats (console.models.ExportFormat), as operators know them.
EXPORT_FORMATS = {"csv": "CSV", "xlsx": "Excel"}

# The steps a change may name (AuditEvent.detail["operation"]).
AUDITED_OPERATIONS = {
    "launch": _("launched"),
    "pause": _("paused"),
    "resume": _("resumed"),
    "cancel": _("cancelled"),
    "revoke": _("revoked"),
    "rotate_webhook_secret": _("signing secret replaced"),
}


# The kinds of data a PIPL request counts (console.services.privacy), in the order shown, each
# with its count in words (标签 2 条: `% {"count": n, "shown": n as shown}`). Kinds an erasure
# deleted, unless in KEPT_KINDS or CLEANED_KINDS.
PRIVACY_COUNT_WORDS: dict[str, Any] = {
    "customer": ngettext_lazy("%(shown)s customer profile", "%(shown)s customer profiles", "count"),
    "identities": ngettext_lazy("%(shown)s identity", "%(shown)s identities", "count"),
    "tags": ngettext_lazy("%(shown)s tag", "%(shown)s tags", "count"),
    "group_stays": ngettext_lazy("%(shown)s group stay", "%(shown)s group stays", "count"),
    "orders": ngettext_lazy("%(shown)s order", "%(shown)s orders", "count"),
    "order_items": ngettext_lazy("%(shown)s order item", "%(shown)s order items", "count"),
    "interactions": ngettext_lazy("%(shown)s interaction", "%(shown)s interactions", "count"),
    "consents": ngettext_lazy(
        "%(shown)s marketing consent", "%(shown)s marketing consents", "count"
    ),
    "consent_events": ngettext_lazy(
        "%(shown)s marketing consent change", "%(shown)s marketing consent changes", "count"
    ),
    "metrics": ngettext_lazy("%(shown)s set of metrics", "%(shown)s sets of metrics", "count"),
    "predictions": ngettext_lazy(
        "%(shown)s set of predictions", "%(shown)s sets of predictions", "count"
    ),
    "lifecycle_transitions": ngettext_lazy(
        "%(shown)s lifecycle transition", "%(shown)s lifecycle transitions", "count"
    ),
    "segment_memberships": ngettext_lazy(
        "%(shown)s segment membership", "%(shown)s segment memberships", "count"
    ),
    "segment_membership_events": ngettext_lazy(
        "%(shown)s segment entry or exit", "%(shown)s segment entries and exits", "count"
    ),
    "deliveries": ngettext_lazy("%(shown)s delivery", "%(shown)s deliveries", "count"),
    "link_clicks": ngettext_lazy("%(shown)s link click", "%(shown)s link clicks", "count"),
    "conversions": ngettext_lazy("%(shown)s conversion", "%(shown)s conversions", "count"),
    "merges": ngettext_lazy("%(shown)s merge record", "%(shown)s merge records", "count"),
    "admin_log_entries": ngettext_lazy(
        "%(shown)s admin history entry", "%(shown)s admin history entries", "count"
    ),
    "list_export_records_scrubbed": ngettext_lazy(
        "%(shown)s list export record", "%(shown)s list export records", "count"
    ),
}
# An erasure's counts of the brand's accounts it kept, detached from the person, by the kind
# of data they count.
KEPT_KINDS = {"orders_detached": "orders", "order_items_detached": "order_items"}
CLEANED_KINDS = ("list_export_records_scrubbed",)
PRIVACY_REQUEST_URL = "admin:console_privacyrequest_change"

# The lookups an export's filter may name (a__b__gte), as words around the field's label.
FILTER_LOOKUPS = {
    "exact": _("%(field)s: %(value)s"),
    "iexact": _("%(field)s: %(value)s"),
    "in": _("%(field)s: %(value)s"),
    "gte": _("%(field)s ≥ %(value)s"),
    "gt": _("%(field)s > %(value)s"),
    "lte": _("%(field)s ≤ %(value)s"),
    "lt": _("%(field)s < %(value)s"),
    "contains": _("%(field)s contains %(value)s"),
    "icontains": _("%(field)s contains %(value)s"),
    "year": _("%(field)s: year %(value)s"),
    "month": _("%(field)s: month %(value)s"),
    "day": _("%(field)s: day %(value)s"),
}
ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _separator() -> str:
    return pgettext("list separator", ", ")


def _yes_no(value: bool) -> str:
    return gettext("Yes") if value else gettext("No")


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


# --- Fields of a change ------------------------------------------------------------------


def audited_model(object_type: str) -> type[models.Model] | None:
    label = AUDITED_MODELS.get(object_type)
    if label is None:
        return None
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _model_field(object_type: str, name: str) -> Any:
    """The model field `name` of an event's object, also when recorded as its ids
    (`include_segment_ids` of `include_segments`, `trigger_segment_id`); None when unknown."""
    model = audited_model(object_type)
    if model is None:
        return None
    candidates = [name]
    if name.endswith("_ids"):
        candidates.append(f"{name[:-4]}s")
    elif name.endswith("_id"):
        candidates.append(name[:-3])
    for candidate in candidates:
        try:
            return model._meta.get_field(candidate)
        except FieldDoesNotExist:
            continue
    return None


def _label_of(field: Any, default: str) -> str:
    if field.is_relation and not hasattr(field, "verbose_name"):  # a reverse relation
        return str(field.related_model._meta.verbose_name_plural)
    return str(getattr(field, "verbose_name", default))


def field_label(object_type: str, name: str) -> str:
    """A field's name as its model's form shows it (最大次数), else as recorded."""
    if name in EXTRA_FIELD_LABELS:
        return str(EXTRA_FIELD_LABELS[name])
    field = _model_field(object_type, name)
    return name if field is None else _label_of(field, name)


def _moment(value: str) -> str | None:
    """An ISO date-time (as the detail holds it) in business time with its zone."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return business_time_label(moment)


def shown_value(value: Any, *, field: Any = None) -> str:
    """A recorded value in words: a choice by its label, a moment in business time, a list
    joined with 、, yes or no, "-" for none; `field`, the model field it is a value of."""
    if isinstance(value, bool):
        return _yes_no(value)
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        item_field = getattr(field, "base_field", field)  # an ArrayField's items: its base's
        return _separator().join(shown_value(item, field=item_field) for item in value)
    if isinstance(field, models.BooleanField) and isinstance(value, str):
        return _yes_no(value.lower() in {"1", "true"})
    if isinstance(value, str | int) and getattr(field, "choices", None):
        choices = dict(field.flatchoices)
        if value in choices:
            return str(choices[value])
    if isinstance(value, str):
        if isinstance(field, models.DateTimeField) or (field is None and ISO_MOMENT.match(value)):
            return _moment(value) or value
        if isinstance(field, models.DateField):
            day = parse_date(value)
            return date_format(day) if day is not None else value
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def change_value(object_type: str, name: str, value: Any, *, staff_names: Mapping[int, str]) -> str:
    """A value of a changed field as an operator reads it."""
    if name in SECRET_FIELDS and value == SECRET_CHANGED:
        return gettext("changed")
    if value is None or value == "":
        return "-"
    if name == "scopes" and isinstance(value, list):
        return _separator().join(scope_label(str(scope)) for scope in value)
    if name == "staff_member_id" and isinstance(value, int):
        return staff_names.get(value) or gettext("Deleted staff member #%(id)d") % {"id": value}
    return shown_value(value, field=_model_field(object_type, name))


def staff_member_ids(events: Collection[AuditEvent]) -> set[int]:
    """The staff members the events' changes name (an API key's binding), to name them all in
    one query."""
    ids: set[int] = set()
    for event in events:
        detail = event.detail or {}
        for side in ("before", "after"):
            values = detail.get(side)
            if isinstance(values, dict) and isinstance(values.get("staff_member_id"), int):
                ids.add(values["staff_member_id"])
    return ids


# --- Facts: PIPL requests, exports, lists --------------------------------------------------


def _counts_in_words(counts: Mapping[str, Any], kinds: Collection[str]) -> str:
    """The non-zero counts of `kinds`, in PRIVACY_COUNT_WORDS' order then any other's."""

    def position(kind: str) -> tuple[int, str]:
        order = list(PRIVACY_COUNT_WORDS)
        counted = KEPT_KINDS.get(kind, kind)
        return (order.index(counted) if counted in order else len(order), kind)

    words = []
    for kind in sorted((kind for kind in kinds if kind in counts), key=position):
        count = counts[kind]
        if not isinstance(count, int) or count == 0:
            continue
        kind = KEPT_KINDS.get(kind, kind)
        if kind in PRIVACY_COUNT_WORDS:
            words.append(PRIVACY_COUNT_WORDS[kind] % {"count": count, "shown": _number(count)})
        else:
            words.append(f"{kind} {_number(count)}")
    return _separator().join(words)


def privacy_request_line(request_id: Any) -> str:
    """请求编号 2, a link to the request's page where the admin has one."""
    text = gettext("Request no. %(id)s") % {"id": request_id}
    try:
        url = reverse(PRIVACY_REQUEST_URL, args=[request_id])
    except NoReverseMatch:
        return text
    return format_html('<a href="{}">{}</a>', url, text)


def privacy_count_lines(action: str, counts: Mapping[str, Any]) -> list[str]:
    """A PIPL request's counts: what an export held; what an erasure deleted, apart from what
    it kept (detached) and what it cleaned."""
    if not isinstance(counts, Mapping):
        return [gettext("%(fact)s: %(value)s") % {"fact": "counts", "value": shown_value(counts)}]
    if action == AuditAction.ERASE:
        deleted = [k for k in counts if k not in KEPT_KINDS and k not in CLEANED_KINDS]
        groups = [
            (pgettext("erasure", "Deleted"), deleted),
            (gettext("Kept, detached from the customer"), KEPT_KINDS),
            (gettext("Cleaned of the customer's values"), CLEANED_KINDS),
        ]
    else:
        groups = [(gettext("Exported"), list(counts))]
    lines = []
    for title, kinds in groups:
        words = _counts_in_words(counts, kinds)
        if words:
            lines.append(gettext("%(fact)s: %(value)s") % {"fact": title, "value": words})
    return lines or [gettext("No data was held.")]


def _filter_field(path: list[str]) -> tuple[Any, list[str]]:
    """Follow `path` (a list filter's parameter, split at __) through the customer's fields:
    the last field and the lookups after it; (None, path) where the path names no field."""
    try:
        model: Any = apps.get_model(EXPORTED_MODEL)
    except LookupError:
        return None, path
    field: Any = None
    for position, part in enumerate(path):
        if model is None:
            return field, path[position:]
        try:
            found = model._meta.get_field(part)
        except FieldDoesNotExist:
            return (field, path[position:]) if field is not None else (None, path)
        if not (getattr(found, "primary_key", False) and field is not None):  # owner__id
            field = found
        model = found.related_model if found.is_relation else None
    return field, []


def filter_words(name: str, value: str) -> str:
    """One parameter of an exported list's filter in words (生命周期阶段：沉睡); unknown
    parameters as recorded (name = value)."""
    field, lookups = _filter_field(name.split("__"))
    if field is None or len(lookups) > 1:
        return f"{name} = {value}"
    lookup = lookups[0] if lookups else "exact"
    label = _label_of(field, name)
    if lookup == "isnull":
        empty = value.lower() in {"true", "1"}
        return (
            gettext("%(field)s: empty") % {"field": label}
            if empty
            else gettext("%(field)s: not empty") % {"field": label}
        )
    template = FILTER_LOOKUPS.get(lookup)
    if template is None:
        return f"{name} = {value}"
    parts = value.split(",") if lookup == "in" else [value]
    shown = _separator().join(shown_value(part, field=field) for part in parts)
    return str(template) % {"field": label, "value": shown}


def _fact_value(name: str, value: Any) -> str:
    if name == "filter" and isinstance(value, Mapping):
        words = [filter_words(str(key), str(item)) for key, item in value.items()]
        separator = pgettext("filter separator", "; ")
        return separator.join(words) if words else gettext("none (every customer)")
    if name == "format" and isinstance(value, str):
        return EXPORT_FORMATS.get(value, value)
    if name == "row_count" and isinstance(value, int):
        return _number(value)
    return shown_value(value)


# --- An event's detail ---------------------------------------------------------------------


def audit_detail_lines(
    event: AuditEvent, *, staff_names: Mapping[int, str] | None = None
) -> list[str]:
    """An event's detail as an operator reads it: the step a change was, one line per changed
    field (`name: before → after`), then the other facts (a PIPL request and its counts, ids,
    an export's filter). Lines may be safe HTML (a link to a PIPL request)."""
    detail = event.detail or {}
    if staff_names is None:
        staff_names = owner_names(staff_member_ids([event]))
    lines: list[str] = []
    operation = detail.get("operation")
    if operation:
        lines.append(str(AUDITED_OPERATIONS.get(operation, operation)))
    before, after = detail.get("before"), detail.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted({*before, *after}, key=lambda n: field_label(event.object_type, n)):
            lines.append(
                gettext("%(field)s: %(before)s → %(after)s")
                % {
                    "field": field_label(event.object_type, name),
                    "before": change_value(
                        event.object_type, name, before.get(name), staff_names=staff_names
                    ),
                    "after": change_value(
                        event.object_type, name, after.get(name), staff_names=staff_names
                    ),
                }
            )
    if "privacy_request_id" in detail:
        lines.append(privacy_request_line(detail["privacy_request_id"]))
    if "counts" in detail:
        lines.extend(privacy_count_lines(event.action, detail["counts"]))
    others = [name for name in detail if name not in SHOWN_APART]
    others.sort(key=lambda name: (FACT_ORDER.get(name, len(FACT_ORDER)), name))
    for name in others:
        value = detail[name]
        fact = AUDITED_FACTS.get(name, name)
        lines.append(
            gettext("%(fact)s: %(value)s") % {"fact": fact, "value": _fact_value(name, value)}
        )
    return lines


def joined(lines: list[str], separator: str) -> SafeString:
    """Lines (texts, or safe HTML) joined, each text escaped."""
    return mark_safe(separator.join(str(conditional_escape(line)) for line in lines))  # noqa: S308

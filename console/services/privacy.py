"""The rights of a person under PIPL (arts. 45 and 47): everything held about one customer as
JSON (`customer_personal_export`), and its erasure (`customer_erase`). Each request is recorded
(console.models.PrivacyRequest) and audited (one AuditEvent each), with ids and counts only,
never a personal value.

The console sits above every app holding a customer's rows, so it is the one place that knows
them all: the CRM's (identities, tags, group stays, orders, interactions, consents, merges,
WeCom's callback events naming them),
segmentation's (metrics, lifecycle transitions, predictions, segment membership and its
history) and campaigns' (deliveries, their conversions and link clicks). Both functions read or
write each kind in one set-based statement, never row by row.

Erasure deletes the person's rows and keeps the brand's accounts: orders and their items stay,
with their amounts and dates, detached from the person (customer NULL). What is derived from
the rows deleted stays consistent: segment sizes are decreased in the same transaction, and
campaign reports and lift are computed from the remaining deliveries and conversions."""

import base64
import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Conversion, Delivery, LinkClick
from console.models import PrivacyRequest, PrivacyRequestKind
from core.errors import NotFound
from core.models import AuditAction
from core.services.audit import audit_record
from crm.models import (
    Consent,
    ConsentEvent,
    Customer,
    CustomerMerge,
    CustomerTag,
    GroupMembership,
    Identity,
    Interaction,
    Order,
    OrderItem,
)
from crm.personal_data import decrypt
from crm.services.customers import ERROR_CUSTOMER_NOT_FOUND
from crm.services.removals import customers_removal_lock
from segments.models import (
    CustomerMetrics,
    CustomerPrediction,
    LifecycleTransition,
    Segment,
    SegmentMembership,
    SegmentMembershipEvent,
)

logger = logging.getLogger(__name__)

ERROR_CUSTOMER_ERASED = "customer_erased"
EXPORT_FORMAT_VERSION = 1

# --- Export --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as JSON holds it: times and dates in ISO 8601, amounts as decimal strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(rows: Iterable[Mapping[str, Any]], **renamed: str) -> list[dict[str, Any]]:
    """Rows of `.values()` as plain JSON objects, with lookups renamed (`tag__name` → `tag`)."""
    names = {lookup: name for name, lookup in renamed.items()}
    return [{names.get(k, k): _plain(v) for k, v in row.items()} for row in rows]


def _own_fields(model: type[Model], *exclude: str) -> list[str]:
    """The model's concrete columns by attribute name (`customer_id`), less `exclude`."""
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.attname not in exclude and field.name not in exclude
    ]


def check_customer_exportable(*, customer_id: int) -> None:
    """Validation of an export: the customer exists (an erased one is named as such)."""
    if Customer.objects.filter(pk=customer_id).exists():
        return
    if PrivacyRequest.objects.filter(
        kind=PrivacyRequestKind.ERASE, customer_id=customer_id
    ).exists():
        raise NotFound(ERROR_CUSTOMER_ERASED, _("This customer's personal data was erased."))
    raise NotFound(ERROR_CUSTOMER_NOT_FOUND, _("No such customer."))


def _personal_data(customer_id: int) -> dict[str, Any]:
    """Everything held about the customer: one query per kind of data."""
    of_customer = {"customer_id": customer_id}
    profile = (
        Customer.objects.filter(pk=customer_id)
        .values(*_own_fields(Customer), "owner__name", "owner__wecom_userid")
        .get()
    )
    identities = [
        {
            "provider": row["provider"],
            "namespace": row["namespace"],
            # The person is entitled to the values themselves, not their masks.
            "value": decrypt(row["value_encrypted"]),
            "is_sensitive": row["is_sensitive"],
            "created_at": _plain(row["created_at"]),
        }
        for row in Identity.objects.filter(**of_customer)
        .order_by("pk")
        .values("provider", "namespace", "value_encrypted", "is_sensitive", "created_at")
    ]
    tags = CustomerTag.objects.filter(**of_customer).order_by("pk")
    stays = GroupMembership.objects.filter(**of_customer).order_by("joined_at", "pk")
    orders = Order.objects.filter(**of_customer).order_by("paid_at", "pk")
    # Items are found through their orders (no index leads with an item's customer_id).
    items = OrderItem.objects.filter(order__customer_id=customer_id).order_by("order_id", "line_no")
    items_by_order: dict[int, list[dict[str, Any]]] = {}
    for item in _rows(items.values(*_own_fields(OrderItem, "id", "customer"))):
        items_by_order.setdefault(item.pop("order_id"), []).append(item)
    orders_out = _rows(orders.values(*_own_fields(Order, "customer", "content_hash")))
    for order in orders_out:
        order["items"] = items_by_order.get(order["id"], [])
    deliveries = Delivery.objects.filter(**of_customer).order_by("planned_at", "pk")
    delivery_ids = deliveries.values("pk")
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": _plain(timezone.now()),
        "profile": _rows(
            [profile], owner_name="owner__name", owner_wecom_userid="owner__wecom_userid"
        )[0],
        "identities": identities,
        "tags": _rows(
            tags.values("tag__name", "tag__group__name", "source", "tagged_at"),
            tag="tag__name",
            tag_group="tag__group__name",
        ),
        "group_stays": _rows(
            stays.values("group__name", "group__kind", "joined_at", "left_at"),
            group="group__name",
            group_kind="group__kind",
        ),
        "orders": orders_out,
        "interactions": _rows(
            Interaction.objects.filter(**of_customer)
            .order_by("occurred_at", "pk")
            .values(*_own_fields(Interaction, "customer"))
        ),
        "consents": _rows(
            Consent.objects.filter(**of_customer)
            .order_by("channel")
            .values("channel", "status", "source", "changed_at")
        ),
        "consent_events": _rows(
            ConsentEvent.objects.filter(**of_customer)
            .order_by("occurred_at", "pk")
            .values("channel", "status", "source", "occurred_at", "recorded_at")
        ),
        "metrics": next(
            iter(
                _rows(
                    CustomerMetrics.objects.filter(**of_customer).values(
                        *_own_fields(CustomerMetrics, "customer")
                    )
                )
            ),
            None,
        ),
        "lifecycle_transitions": _rows(
            LifecycleTransition.objects.filter(**of_customer)
            .order_by("at", "pk")
            .values("from_state", "to_state", "at", "recorded_at")
        ),
        "predictions": next(
            iter(
                _rows(
                    CustomerPrediction.objects.filter(**of_customer).values(
                        *_own_fields(CustomerPrediction, "customer")
                    )
                )
            ),
            None,
        ),
        "segment_memberships": _rows(
            SegmentMembership.objects.filter(**of_customer)
            .order_by("segment_id")
            .values("segment_id", "segment__name", "entered_at"),
            segment="segment__name",
        ),
        "segment_membership_events": _rows(
            SegmentMembershipEvent.objects.filter(**of_customer)
            .order_by("at", "pk")
            .values("segment_id", "segment__name", "kind", "at"),
            segment="segment__name",
        ),
        "deliveries": _rows(
            deliveries.values(
                "id",
                "campaign_id",
                "campaign__name",
                "step",
                "variant__name",
                "is_holdout",
                "status",
                "reason",
                "planned_at",
                "reserved_at",
                "sent_at",
            ),
            campaign="campaign__name",
            variant="variant__name",
        ),
        "link_clicks": _rows(
            LinkClick.objects.filter(delivery_id__in=delivery_ids)
            .order_by("clicked_at", "pk")
            .values("delivery_id", "campaign_id", "link_no", "clicked_at")
        ),
        "conversions": _rows(
            Conversion.objects.filter(**of_customer)
            .order_by("converted_at", "pk")
            .values(
                "delivery_id",
                "campaign_id",
                "campaign__name",
                "order_id",
                "is_holdout",
                "credit",
                "revenue",
                "converted_at",
            ),
            campaign="campaign__name",
        ),
        # Customers found to be this person and merged into it: their profiles as they were.
        "merges": _rows(
            CustomerMerge.objects.filter(survivor_id=customer_id)
            .order_by("merged_at", "pk")
            .values("merged_customer_id", "merged_profile", "merged_at")
        ),
    }


# The kinds of data an export holds as lists, counted in its record.
_COUNTED_KINDS = (
    "identities",
    "tags",
    "group_stays",
    "orders",
    "interactions",
    "consents",
    "consent_events",
    "lifecycle_transitions",
    "segment_memberships",
    "segment_membership_events",
    "deliveries",
    "link_clicks",
    "conversions",
    "merges",
)


def customer_personal_export(*, customer_id: int, actor: str) -> dict[str, Any]:
    """Everything held about one customer, as JSON-ready data (arts. 45 and 47 of PIPL: access
    and portability). Identity values are unmasked: the person asking is entitled to them.
    Recorded as a PrivacyRequest and one audit event."""
    check_customer_exportable(customer_id=customer_id)
    with transaction.atomic():
        try:
            data = _personal_data(customer_id)
        except Customer.DoesNotExist:  # erased or merged away since the check
            raise NotFound(ERROR_CUSTOMER_NOT_FOUND, _("No such customer.")) from None
        counts = {kind: len(data[kind]) for kind in _COUNTED_KINDS}
        counts["metrics"] = int(data["metrics"] is not None)
        counts["predictions"] = int(data["predictions"] is not None)
        request = _request_record(
            kind=PrivacyRequestKind.EXPORT, customer_id=customer_id, actor=actor, counts=counts
        )
    data["request_id"] = request.pk
    logger.info("customer.personal_exported", extra={"customer_id": customer_id, "actor": actor})
    return data


# --- Erasure -------------------------------------------------------------------------------


def check_customer_erasable(*, customer_id: int) -> PrivacyRequest | None:
    """Validation of an erasure: the earlier erasure of this customer if there was one (a
    second request is answered with it), else None when the customer exists; NotFound else."""
    earlier = PrivacyRequest.objects.filter(
        kind=PrivacyRequestKind.ERASE, customer_id=customer_id
    ).first()
    if earlier is not None:
        return earlier
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(ERROR_CUSTOMER_NOT_FOUND, _("No such customer."))
    return None


# Each statement removes (or detaches) one kind of the customer's (%(customer)s) rows; the
# count of rows it touched goes to the request's record under its name. In order: rows that
# find others through the customer's rows before those. Segment sizes lose the members
# deleted in the same statement (the segments' rows were locked first, see _lock_segments).
_ERASE_STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "link_clicks",
        """DELETE FROM campaigns_linkclick WHERE delivery_id IN (
                SELECT id FROM campaigns_delivery WHERE customer_id = %(customer)s)""",
    ),
    ("conversions", "DELETE FROM campaigns_conversion WHERE customer_id = %(customer)s"),
    ("deliveries", "DELETE FROM campaigns_delivery WHERE customer_id = %(customer)s"),
    (
        "segment_membership_events",
        "DELETE FROM segments_segmentmembershipevent WHERE customer_id = %(customer)s",
    ),
    (
        "segment_memberships",
        """WITH gone AS (
                DELETE FROM segments_segmentmembership WHERE customer_id = %(customer)s
                RETURNING segment_id)
            UPDATE segments_segment s SET member_count = greatest(s.member_count - 1, 0)
            FROM gone WHERE s.id = gone.segment_id""",
    ),
    ("predictions", "DELETE FROM segments_customerprediction WHERE customer_id = %(customer)s"),
    ("metrics", "DELETE FROM segments_customermetrics WHERE customer_id = %(customer)s"),
    (
        "lifecycle_transitions",
        "DELETE FROM segments_lifecycletransition WHERE customer_id = %(customer)s",
    ),
    ("consent_events", "DELETE FROM crm_consentevent WHERE customer_id = %(customer)s"),
    ("consents", "DELETE FROM crm_consent WHERE customer_id = %(customer)s"),
    ("interactions", "DELETE FROM crm_interaction WHERE customer_id = %(customer)s"),
    ("group_stays", "DELETE FROM crm_groupmembership WHERE customer_id = %(customer)s"),
    ("tags", "DELETE FROM crm_customertag WHERE customer_id = %(customer)s"),
    # WeCom's callback events naming the person (by the keyed hash of their external
    # contact id, as their `wecom` identities hold it): found through the identities, so
    # before them.
    (
        "wecom_events",
        """DELETE FROM crm_wecomevent WHERE subject_hash IN (
                SELECT value_hash FROM crm_identity
                WHERE customer_id = %(customer)s AND provider = 'wecom')""",
    ),
    # The identities and their keyed hashes: the person is not found again by them.
    ("identities", "DELETE FROM crm_identity WHERE customer_id = %(customer)s"),
    # Merged customers' profiles, kept on their merge records.
    ("merges", "DELETE FROM crm_customermerge WHERE survivor_id = %(customer)s"),
    # The brand's accounts stay, detached: items before their orders, found through them.
    (
        "order_items_detached",
        """UPDATE crm_orderitem i SET customer_id = NULL
            FROM crm_order o WHERE o.customer_id = %(customer)s AND i.order_id = o.id""",
    ),
    (
        "orders_detached",
        """UPDATE crm_order SET customer_id = NULL, updated_at = now()
            WHERE customer_id = %(customer)s""",
    ),
    # The admin's history of changes to the customer (its object_repr holds the name).
    (
        "admin_log_entries",
        """DELETE FROM django_admin_log
            WHERE content_type_id = %(content_type)s AND object_id = %(customer_text)s""",
    ),
    ("customer", "DELETE FROM crm_customer WHERE id = %(customer)s"),
)


def _lock_segments(customer_id: int) -> None:
    """Lock the rows of the segments the customer is a member of, in id order, before the
    customer-removal lock: refreshes lock their segment first, then take that lock shared,
    so erasures take them in the same order."""
    list(
        Segment.objects.select_for_update()
        .filter(pk__in=SegmentMembership.objects.filter(customer_id=customer_id).values("segment"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _personal_values(customer_id: int) -> set[str]:
    """The customer's name and identity values (phones in E.164 and as typed at home), as the
    records of list exports may quote them (a list searched for a name or a phone)."""
    name = Customer.objects.filter(pk=customer_id).values_list("display_name", flat=True).get()
    values = {name}
    for token in Identity.objects.filter(customer_id=customer_id).values_list(
        "value_encrypted", flat=True
    ):
        value = decrypt(token)
        values |= {value, value.removeprefix(f"+{settings.DEFAULT_PHONE_REGION}")}
    # Single characters (a one-character name) would scrub every record.
    return {value for value in values if len(value) >= 2}


_SCRUB_SQL = """
    UPDATE console_customerexport
    SET filters = replace(filters, %(form)s, %(placeholder)s),
        query_string = replace(query_string, %(form)s, %(placeholder)s)
    WHERE strpos(filters, %(form)s) > 0 OR strpos(query_string, %(form)s) > 0
    RETURNING id
"""
ERASED_PLACEHOLDER = "[erased]"


def _scrub_list_exports(values: set[str]) -> int:
    """Replace the values, as written and as a query string encodes them, by a placeholder in
    the records of list exports (their filters and query strings); returns how many records
    changed. A small table, scanned once per form of a value."""
    changed: set[int] = set()
    forms = {form for value in values for form in (value, quote(value), quote_plus(value))}
    with connection.cursor() as cursor:
        for form in sorted(forms):
            cursor.execute(_SCRUB_SQL, {"form": form, "placeholder": ERASED_PLACEHOLDER})
            changed.update(row[0] for row in cursor.fetchall())
    return len(changed)


def customer_erase(*, customer_id: int, actor: str, reason: str = "") -> PrivacyRequest:
    """Erase a customer's personal data (art. 47 of PIPL), in one transaction with its row
    locked; answer the request's record. A second request for the same customer changes
    nothing and is answered with the first one's record."""
    earlier = check_customer_erasable(customer_id=customer_id)
    if earlier is not None:
        return earlier
    with transaction.atomic():
        _lock_segments(customer_id)
        # No writer adds rows for the customer while they are removed (see crm.services.
        # removals); then the customer's own row.
        customers_removal_lock(exclusive=True)
        locked = Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk")
        if not locked:
            # Erased (or merged away) by a concurrent request while this one waited.
            earlier = check_customer_erasable(customer_id=customer_id)
            assert earlier is not None  # check_customer_erasable raised NotFound otherwise
            return earlier
        list_exports = _scrub_list_exports(_personal_values(customer_id))
        counts: dict[str, int] = {}
        params: dict[str, int | str] = {
            "customer": customer_id,
            "customer_text": str(customer_id),
            "content_type": ContentType.objects.get_for_model(Customer).pk,
        }
        with connection.cursor() as cursor:
            for name, statement in _ERASE_STATEMENTS:
                cursor.execute(statement, params)
                counts[name] = cursor.rowcount
        counts["list_export_records_scrubbed"] = list_exports
        request = _request_record(
            kind=PrivacyRequestKind.ERASE,
            customer_id=customer_id,
            actor=actor,
            counts=counts,
            reason=reason,
        )
    logger.info("customer.erased", extra={"customer_id": customer_id, "actor": actor})
    return request


def _request_record(
    *,
    kind: PrivacyRequestKind,
    customer_id: int,
    actor: str,
    counts: dict[str, int],
    reason: str = "",
) -> PrivacyRequest:
    """The request's record and its one audit event, in the caller's transaction."""
    now = timezone.now()
    request = PrivacyRequest.objects.create(
        kind=kind,
        customer_id=customer_id,
        requested_by=actor,
        requested_at=now,
        completed_at=now,
        outcome=counts,
        reason=reason,
    )
    action = AuditAction.ERASE if kind == PrivacyRequestKind.ERASE else AuditAction.PERSONAL_EXPORT
    audit_record(
        actor=actor,
        action=action,
        object_type="customer",
        object_id=customer_id,
        customer_id=customer_id,
        detail={"privacy_request_id": request.pk, "counts": counts},
    )
    return request

"""Customer profiles: create or update customers named by identities (versioned by the source
system's update time), update one by id, correct first_seen_at from orders found later, delete
customers; and the staff members profiles name as owners."""

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound
from crm.models import Customer, StaffMember
from crm.personal_data import IdentityKey
from crm.services.identities import customers_resolve
from crm.services.removals import customers_removal_lock

logger = logging.getLogger(__name__)

ERROR_CUSTOMER_NOT_FOUND = "customer_not_found"


def staff_members_ensure(userids: Iterable[str]) -> dict[str, int]:
    """Ids of staff members by WeCom userid, creating the unknown ones."""
    wanted = sorted({u for u in userids if u})
    if not wanted:
        return {}
    StaffMember.objects.bulk_create(
        [StaffMember(wecom_userid=u) for u in wanted], ignore_conflicts=True
    )
    return dict(
        StaffMember.objects.filter(wecom_userid__in=wanted).values_list("wecom_userid", "id")
    )


def _profile_apply(
    customer: Customer, profile: Mapping[str, Any], owner_ids: Mapping[str, int]
) -> list[str]:
    """Set the given profile fields; return the names of the fields that changed."""
    changed: list[str] = []
    for name, value in profile.items():
        if name == "owner":
            attribute, new = "owner_id", owner_ids.get(value) if value else None
        else:
            attribute, new = name, value
        if getattr(customer, attribute) != new:
            setattr(customer, attribute, new)
            changed.append(attribute)
    return changed


@dataclass(frozen=True)
class CustomerInput:
    identities: Sequence[IdentityKey]
    profile: Mapping[str, Any]
    # The source system's update time of this profile (None: unknown, always applied).
    source_updated_at: datetime | None = None


@dataclass
class BulkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # customers whose rows were all older than the profile version stored
    customer_ids: list[int] = field(default_factory=list)


def _profile_version_verdict(
    customer: Customer, version: datetime | None
) -> Literal["apply", "unchanged", "stale"]:
    """Whether a row of this profile version is applied: not when the version applied last
    is newer (stale) or the same (unchanged); always when either is unknown."""
    applied = customer.profile_source_updated_at
    if version is None or applied is None or version > applied:
        return "apply"
    return "stale" if version < applied else "unchanged"


_encode = msgspec.json.Encoder().encode


def _customers_write(customers: Sequence[Customer], fields: Sequence[str]) -> None:
    """Write `fields` of these customers in one UPDATE ... FROM json_to_recordset: Django's
    bulk_update builds a CASE expression per row and field, which costs about 2 ms of Python a
    row (a page of 100 customers from WeCom spent most of its time there)."""
    columns: list[Field[Any, Any]] = []
    for name in fields:
        column = Customer._meta.get_field(name)
        assert isinstance(column, Field)
        columns.append(column)
    quote = connection.ops.quote_name
    record = ", ".join(f"{quote(c.attname)} {c.db_type(connection)}" for c in columns)
    assignments = ", ".join(f"{quote(c.attname)} = v.{quote(c.attname)}" for c in columns)
    rows = [
        {"id": customer.pk, **{c.attname: getattr(customer, c.attname) for c in columns}}
        for customer in customers
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE crm_customer c SET {assignments}
            FROM json_to_recordset(%s::json) AS v(id bigint, {record})
            WHERE c.id = v.id
            """,  # noqa: S608 (column names and types come from the model)
            [_encode(rows).decode()],
        )


@transaction.atomic
def customers_bulk_upsert(*, rows: Sequence[CustomerInput], actor: str) -> BulkOutcome:
    """Create or update customers named by identities. Profile fields absent from a row are
    left as they are. Rows naming the same person are applied in order.

    A row whose `source_updated_at` is older than the version of the profile applied last
    sets no profile field (stale), one equal to it neither (unchanged); its identities are
    still linked (they are facts, not versioned values). The customers are locked, in id
    order, for the comparison: of two concurrent versions the newer stands."""
    resolution = customers_resolve(identity_rows=[r.identities for r in rows], actor=actor)
    owner_ids = staff_members_ensure(r.profile.get("owner") or "" for r in rows)
    customers = {
        customer.pk: customer
        # NO KEY: a profile write must not wait for the KEY SHARE locks a campaign's call holds
        # on its customers while it posts (campaigns.services.channel_calls.consent_hold).
        for customer in Customer.objects.select_for_update(no_key=True)
        .filter(pk__in=set(resolution.customer_ids))
        .order_by("pk")
    }
    changed_fields: set[str] = set()
    changed_ids: set[int] = set()
    versioned_ids: set[int] = set()  # a newer profile version to record
    stale_ids: set[int] = set()
    for row, customer_id in zip(rows, resolution.customer_ids, strict=True):
        customer = customers[customer_id]
        verdict = _profile_version_verdict(customer, row.source_updated_at)
        if verdict == "stale":
            stale_ids.add(customer_id)
        if verdict != "apply":
            continue
        changed = _profile_apply(customer, row.profile, owner_ids)
        if changed:
            changed_fields.update(changed)
            changed_ids.add(customer_id)
        if row.source_updated_at is not None:
            customer.profile_source_updated_at = row.source_updated_at
            versioned_ids.add(customer_id)
    now = timezone.now()
    for customer_id in changed_ids | resolution.created:
        customers[customer_id].updated_at = now
    if changed_ids or versioned_ids:
        fields = [*changed_fields, "updated_at"]
        if versioned_ids:
            fields.append("profile_source_updated_at")
        _customers_write([customers[i] for i in sorted(changed_ids | versioned_ids)], fields)
    outcome = BulkOutcome(customer_ids=resolution.customer_ids)
    for customer_id in set(resolution.customer_ids):
        if customer_id in resolution.created:
            outcome.created += 1
        elif customer_id in changed_ids or customer_id in resolution.survivors:
            outcome.updated += 1
        elif customer_id in stale_ids:
            outcome.stale += 1
        else:
            outcome.unchanged += 1
    logger.info(
        "customers.bulk_upsert",
        extra={
            "actor": actor,
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "stale_count": outcome.stale,
        },
    )
    return outcome


def customer_upsert(
    *, identities: Sequence[IdentityKey], profile: Mapping[str, Any], actor: str
) -> tuple[Customer, bool]:
    """Create or update the one customer these identities name. Returns (customer, created)."""
    outcome = customers_bulk_upsert(rows=[CustomerInput(identities, profile)], actor=actor)
    return Customer.objects.get(pk=outcome.customer_ids[0]), outcome.created == 1


@transaction.atomic
def customer_create(*, profile: Mapping[str, Any], actor: str) -> Customer:
    """A customer an operator enters by hand, before any identity names them (identities
    arrive with the integrations' data, or by a merge)."""
    owner_ids = staff_members_ensure([profile.get("owner") or ""])
    customer = Customer()
    _profile_apply(customer, profile, owner_ids)
    customer.save()
    logger.info("customer.created", extra={"actor": actor, "customer_id": customer.pk})
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, profile: Mapping[str, Any], actor: str) -> Customer:
    # NO KEY, as in customers_bulk_upsert: never behind a campaign's call in flight.
    customer = Customer.objects.select_for_update(no_key=True).filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(ERROR_CUSTOMER_NOT_FOUND, _("No such customer."))
    owner_ids = staff_members_ensure([profile.get("owner") or ""])
    changed = _profile_apply(customer, profile, owner_ids)
    if changed:
        customer.updated_at = timezone.now()
        customer.save(update_fields=[*changed, "updated_at"])
        logger.info("customer.updated", extra={"actor": actor, "customer_id": customer_id})
    return customer


def customers_pull_first_seen(*, first_paid: Sequence[tuple[int, datetime]]) -> int:
    """Move first_seen_at back to each customer's earliest paid order where an older order
    arrived later (a backfill): `first_paid` pairs customer ids with those times, as the
    recomputation sweep computes them anyway (ingestion leaves it to the sweep, where it
    would cost a query per batch). Returns how many customers changed."""
    if not first_paid:
        return 0
    ids = [customer_id for customer_id, _at in first_paid]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_customer c SET first_seen_at = k.first_paid_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS k(id, first_paid_at)
            WHERE c.id = k.id AND k.first_paid_at < c.first_seen_at
              AND c.id = ANY(%s)  -- probes of the primary key, not a merge along all of it
            """,
            [ids, [at for _id, at in first_paid], ids],
        )
        return cursor.rowcount


@transaction.atomic
def customers_delete(*, customer_ids: Collection[int], actor: str) -> int:
    """Delete customers with everything they own; returns how many were deleted."""
    customers_removal_lock(exclusive=True)
    deleted = Customer.objects.filter(pk__in=list(customer_ids))
    count = deleted.count()
    deleted.delete()
    logger.info("customers.deleted", extra={"actor": actor, "deleted_count": count})
    return count

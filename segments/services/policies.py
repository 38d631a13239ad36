"""RFM and lifecycle policies: validate a change, then write it as a new active version (the old
version stays, so every recomputation run names the exact policy it used)."""

import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.locks import Lock, xact_lock
from core.models import AuditAction
from core.services.audit import audit_change, audit_values
from segments import enqueue
from segments.models import LifecyclePolicy, PolicyBase, RfmPolicy, RfmScoringMethod

ERROR_INVALID_POLICY = "invalid_policy"

RFM_FIELDS = (
    "lookback_days",
    "scoring_method",
    "recency_breakpoints",
    "frequency_breakpoints",
    "monetary_breakpoints",
    "high_score_threshold",
)
LIFECYCLE_FIELDS = ("new_days", "active_days", "sleeping_days", "reactivated_days")
BREAKPOINT_COUNT = 4  # four breakpoints split a dimension into scores 1 to 5

P = TypeVar("P", bound=PolicyBase)


# Writers of a policy queue on a transaction-level lock, so that each reads the version the
# previous one made active (a row lock would leave the second writer with no active row).
_POLICY_LOCKS: dict[type[PolicyBase], Lock] = {
    RfmPolicy: Lock.RFM_POLICY,
    LifecyclePolicy: Lock.LIFECYCLE_POLICY,
}


def _active(model: type[P], *, for_update: bool) -> P:
    """The active version (the writers' lock taken first with `for_update`); version 1 with
    the defaults in a table that has none (a fresh database whose migration data was
    flushed)."""
    if for_update:
        xact_lock(_POLICY_LOCKS[model])
    active = model._default_manager.filter(is_active=True).first()
    if active is None:
        active, _created = model._default_manager.get_or_create(
            version=1, defaults={"is_active": True, "created_by": "default"}
        )
    return active


def rfm_policy_active(*, for_update: bool = False) -> RfmPolicy:
    return _active(RfmPolicy, for_update=for_update)


def lifecycle_policy_active(*, for_update: bool = False) -> LifecyclePolicy:
    return _active(LifecyclePolicy, for_update=for_update)


def _invalid(errors: dict[str, list[str]]) -> ValidationFailed:
    return ValidationFailed(ERROR_INVALID_POLICY, _("The policy is not valid."), detail=errors)


def _check_breakpoints(values: Sequence[Any], field: str, errors: dict[str, list[str]]) -> None:
    if len(values) != BREAKPOINT_COUNT:
        errors.setdefault(field, []).append(
            _("Give exactly %(count)d breakpoints.") % {"count": BREAKPOINT_COUNT}
        )
    elif any(later <= earlier for earlier, later in itertools.pairwise(values)):
        errors.setdefault(field, []).append(_("Breakpoints must be strictly ascending."))
    elif any(value < 0 for value in values):
        errors.setdefault(field, []).append(_("Breakpoints cannot be negative."))


def check_rfm_policy(values: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if not 1 <= values["lookback_days"] <= 3650:
        errors["lookback_days"] = [_("Between 1 and 3650 days.")]
    if not 1 <= values["high_score_threshold"] <= 5:
        errors["high_score_threshold"] = [_("A score from 1 to 5.")]
    if values["scoring_method"] == RfmScoringMethod.THRESHOLDS:
        for field in ("recency_breakpoints", "frequency_breakpoints", "monetary_breakpoints"):
            _check_breakpoints(list(values[field]), field, errors)
    if errors:
        raise _invalid(errors)


def check_lifecycle_policy(values: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for field in LIFECYCLE_FIELDS:
        if not 1 <= values[field] <= 3650:
            errors[field] = [_("Between 1 and 3650 days.")]
    if errors:
        raise _invalid(errors)
    if values["new_days"] > values["active_days"]:
        errors["new_days"] = [_("A customer cannot stay new longer than the active window.")]
    if values["sleeping_days"] <= values["active_days"]:
        errors["sleeping_days"] = [_("Must be longer than the active window.")]
    if values["reactivated_days"] > values["active_days"]:
        errors["reactivated_days"] = [
            _("A customer cannot stay reactivated longer than the active window.")
        ]
    if errors:
        raise _invalid(errors)


# The audit trail's names of the policies (core.models.AuditEvent.object_type).
_AUDIT_TYPES: dict[type[PolicyBase], str] = {
    RfmPolicy: "rfm_policy",
    LifecyclePolicy: "lifecycle_policy",
}


def _new_version(model: type[P], current: P, values: Mapping[str, Any], actor: str) -> P:
    """Write the active version, and queue a full recomputation once it is committed; audited
    as one change of the policy (its fields and version, before -> after)."""
    # The caller locked the active row: concurrent updates take their versions one by one.
    latest = model._default_manager.aggregate(latest=Max("version"))["latest"] or 0
    model._default_manager.filter(is_active=True).update(is_active=False)
    enqueue.recompute_full(trigger="policy")
    policy = model._default_manager.create(
        version=latest + 1, is_active=True, created_by=actor, **dict(values)
    )
    fields = ["version", *values]
    audit_change(
        actor=actor,
        action=AuditAction.CHANGE,
        object_type=_AUDIT_TYPES[model],
        object_id=policy.pk,
        before=audit_values(current, fields),
        after=audit_values(policy, fields),
    )
    return policy


def _merged(
    current: PolicyBase, fields: Sequence[str], changes: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = set(changes) - set(fields)
    if unknown:
        raise _invalid({name: [_("Unknown field.")] for name in sorted(unknown)})
    return {field: changes.get(field, getattr(current, field)) for field in fields}


@transaction.atomic
def rfm_policy_update(*, changes: Mapping[str, Any], actor: str) -> RfmPolicy:
    """Write the active RFM policy with `changes` applied as a new active version (a full
    recomputation follows). Nothing changes when the values are those of the active version."""
    current = rfm_policy_active(for_update=True)
    values = _merged(current, RFM_FIELDS, changes)
    values["monetary_breakpoints"] = [Decimal(str(v)) for v in values["monetary_breakpoints"]]
    check_rfm_policy(values)
    if all(getattr(current, field) == values[field] for field in RFM_FIELDS):
        return current
    return _new_version(RfmPolicy, current, values, actor)


@transaction.atomic
def lifecycle_policy_update(*, changes: Mapping[str, Any], actor: str) -> LifecyclePolicy:
    """Write the active lifecycle policy with `changes` applied as a new active version."""
    current = lifecycle_policy_active(for_update=True)
    values = _merged(current, LIFECYCLE_FIELDS, changes)
    check_lifecycle_policy(values)
    if all(getattr(current, field) == values[field] for field in LIFECYCLE_FIELDS):
        return current
    return _new_version(LifecyclePolicy, current, values, actor)

"""Frequency rules: create, change and delete them. Validation is the model's `clean`, so the
admin and the API refuse the same rules with the same messages."""

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import FrequencyRule
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import AuditAction
from core.services.audit import audit_change, audit_values

logger = logging.getLogger(__name__)

ERROR_RULE_NOT_FOUND = "frequency_rule_not_found"
ERROR_INVALID_RULE = "invalid_frequency_rule"
ERROR_PRESET_KEPT = "frequency_rule_preset_kept"

EDITABLE_FIELDS = (
    "name",
    "description",
    "scope",
    "channel",
    "label",
    "max_count",
    "window_kind",
    "window_hours",
    "calendar_unit",
    "on_hit",
    "max_delay_hours",
    "is_active",
)


def frequency_rule_get_or_404(rule_id: int, *, for_update: bool = False) -> FrequencyRule:
    rules = FrequencyRule.objects.select_for_update() if for_update else FrequencyRule.objects
    try:
        return rules.get(pk=rule_id)
    except FrequencyRule.DoesNotExist:
        raise NotFound(ERROR_RULE_NOT_FOUND, _("No such frequency rule.")) from None


def _check(rule: FrequencyRule) -> None:
    try:
        rule.full_clean()
    except ValidationError as error:
        raise ValidationFailed(
            ERROR_INVALID_RULE, _("The frequency rule is not valid."), detail=error.message_dict
        ) from None


def _audit(
    rule: FrequencyRule, *, actor: str, action: AuditAction, before: dict[str, Any] | None
) -> None:
    audit_change(
        actor=actor,
        action=action,
        object_type="frequency_rule",
        object_id=rule.pk,
        before=before,
        after=None if action == AuditAction.DELETE else audit_values(rule, EDITABLE_FIELDS),
    )


@transaction.atomic
def frequency_rule_create(*, actor: str, **fields: Any) -> FrequencyRule:
    rule = FrequencyRule(**{key: fields[key] for key in EDITABLE_FIELDS if key in fields})
    _check(rule)
    rule.save()
    _audit(rule, actor=actor, action=AuditAction.CREATE, before=None)
    logger.info("frequency_rule.created", extra={"rule_id": rule.pk, "actor": actor})
    return rule


@transaction.atomic
def frequency_rule_update(*, rule_id: int, actor: str, **changes: Any) -> FrequencyRule:
    """Change the fields given; the others keep their values."""
    rule = frequency_rule_get_or_404(rule_id, for_update=True)
    before = audit_values(rule, EDITABLE_FIELDS)
    for key in EDITABLE_FIELDS:
        if key in changes:
            setattr(rule, key, changes[key])
    rule.updated_at = timezone.now()
    _check(rule)
    rule.save()
    _audit(rule, actor=actor, action=AuditAction.CHANGE, before=before)
    logger.info("frequency_rule.updated", extra={"rule_id": rule.pk, "actor": actor})
    return rule


@transaction.atomic
def frequency_rule_delete(*, rule_id: int, actor: str) -> None:
    """Delete a rule. The platform preset stays (nothing would bring it back): it can be
    deactivated or changed instead."""
    rule = frequency_rule_get_or_404(rule_id, for_update=True)
    if rule.is_platform_preset:
        raise Conflict(
            ERROR_PRESET_KEPT,
            _("The platform limit preset cannot be deleted; deactivate or change it instead."),
        )
    before = audit_values(rule, EDITABLE_FIELDS)
    rule.delete()
    rule.pk = rule_id
    _audit(rule, actor=actor, action=AuditAction.DELETE, before=before)
    logger.info("frequency_rule.deleted", extra={"rule_id": rule_id, "actor": actor})

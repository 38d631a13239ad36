"""API key services: keys are `<prefix>.<secret>`; only a SHA-256 digest of the secret is kept."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound, ValidationFailed
from core.models import ApiKey, AuditAction
from core.services.api_key_usage import api_key_use_count
from core.services.audit import audit_change, audit_values

RESOURCES = (
    "customers",
    "orders",
    "tags",
    "groups",
    "interactions",
    "consents",
    "segments",
    "campaigns",
)
SCOPES = (
    *(f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write")),
    "personal_data:read",
    "audit:read",
)
ERROR_UNKNOWN_SCOPE = "unknown_scope"
ERROR_NO_SCOPES = "no_scopes"
ERROR_NAME_REQUIRED = "name_required"
ERROR_API_KEY_NOT_FOUND = "api_key_not_found"

KEY_PREFIX_LENGTH = 12


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Normalise scopes; `resource` alone means read and write, `*` means every scope."""
    result: set[str] = set()
    for scope in scopes:
        scope = scope.strip()
        if scope == "*":
            result.update(SCOPES)
        elif scope in RESOURCES:
            result.update({f"{scope}:read", f"{scope}:write"})
        elif scope in SCOPES:
            result.add(scope)
        else:
            raise ValidationFailed(
                ERROR_UNKNOWN_SCOPE,
                _("Unknown scope %(scope)s.") % {"scope": scope},
                detail={
                    "scopes": [
                        _("Unknown scope %(scope)s. Known: %(known)s, *")
                        % {"scope": scope, "known": ", ".join(SCOPES)}
                    ]
                },
            )
    if not result:
        raise ValidationFailed(ERROR_NO_SCOPES, _("At least one scope is required."))
    return sorted(result)


# The fields an audit event shows of a key; its digest only as "changed".
AUDITED_FIELDS = ("name", "prefix", "scopes", "expires_at", "allowed_ips", "staff_member_id")


def api_key_audit(
    *, actor: str, action: AuditAction, api_key: ApiKey, before: dict[str, Any], operation: str = ""
) -> None:
    """The audit event of a key's creation, change or revocation (see core.services.audit)."""
    after = {} if action == AuditAction.DELETE else _audited(api_key)
    audit_change(
        actor=actor,
        action=action,
        object_type="api_key",
        object_id=api_key.pk,
        before=before,
        after=after,
        secret_fields=("secret_hash",),
        operation=operation,
    )


def _audited(api_key: ApiKey) -> dict[str, Any]:
    values = audit_values(api_key, (*AUDITED_FIELDS, "revoked_at"))
    values["secret_hash"] = api_key.secret_hash
    return values


@transaction.atomic
def api_key_create(
    *, name: str, scopes: Iterable[str], actor: str = "system"
) -> tuple[ApiKey, str]:
    """Create a key; return it with the plain key, which is shown once and never stored."""
    if not name.strip():
        raise ValidationFailed(ERROR_NAME_REQUIRED, _("A key needs a name."))
    checked = check_scopes(scopes)
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name.strip(), prefix=prefix, secret_hash=_digest(secret), scopes=checked
    )
    api_key_audit(actor=actor, action=AuditAction.CREATE, api_key=api_key, before={})
    return api_key, f"{prefix}.{secret}"


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Constant-time comparison of digests."""
    prefix, _, secret = raw_key.partition(".")
    if len(prefix) != KEY_PREFIX_LENGTH or not secret:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _digest(secret)):
        return None
    now = timezone.now()
    # Touch at most once a minute: a write per request would cost more than the request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    api_key_use_count(api_key_id=api_key.pk, now=now)
    return api_key


@transaction.atomic
def api_key_revoke(*, prefix: str, actor: str = "system") -> ApiKey:
    """Revoke a key (once: revoking a revoked key changes nothing and records nothing)."""
    api_key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
    if api_key is None:
        raise NotFound(ERROR_API_KEY_NOT_FOUND, _("No such API key."))
    if api_key.revoked_at is None:
        before = _audited(api_key)
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        api_key_audit(
            actor=actor,
            action=AuditAction.CHANGE,
            api_key=api_key,
            before=before,
            operation="revoke",
        )
    return api_key

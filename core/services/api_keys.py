"""API key services: keys are `<prefix>.<secret>`; only a SHA-256 digest of the secret is kept.
A key may carry limits: an expiry, the addresses or networks it may be used from, and the staff
member (跟进人) whose customers alone it answers for (enforced by the endpoints)."""

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.api_key_owners import owner_names
from core.errors import DomainError, NotFound, ValidationFailed
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
    "contact_ways",
)
SCOPES = (
    *(f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write")),
    "personal_data:read",
    # Erasing a customer's personal data (PIPL), which nothing else grants.
    "personal_data:erase",
    "audit:read",
)
# Each scope as operators read it (客户：读取); the code stays what integrators send.
SCOPE_LABELS = {
    "customers:read": gettext_lazy("Customers: read"),
    "customers:write": gettext_lazy("Customers: write"),
    "orders:read": gettext_lazy("Orders: read"),
    "orders:write": gettext_lazy("Orders: write"),
    "tags:read": gettext_lazy("Tags: read"),
    "tags:write": gettext_lazy("Tags: write"),
    "groups:read": gettext_lazy("Customer groups: read"),
    "groups:write": gettext_lazy("Customer groups: write"),
    "interactions:read": gettext_lazy("Interactions: read"),
    "interactions:write": gettext_lazy("Interactions: write"),
    "consents:read": gettext_lazy("Marketing consents: read"),
    "consents:write": gettext_lazy("Marketing consents: write"),
    "segments:read": gettext_lazy("Segments: read"),
    "segments:write": gettext_lazy("Segments: write"),
    "campaigns:read": gettext_lazy("Campaigns: read"),
    "campaigns:write": gettext_lazy("Campaigns: write"),
    "contact_ways:read": gettext_lazy("Channel QR codes: read"),
    "contact_ways:write": gettext_lazy("Channel QR codes: write"),
    "personal_data:read": gettext_lazy("Personal data: see unmasked"),
    "personal_data:erase": gettext_lazy("Personal data: erase (PIPL)"),
    "audit:read": gettext_lazy("Audit trail: read"),
}


def scope_label(scope: str) -> str:
    """A scope as operators read it; an unknown one (of an older release) as its code."""
    label = SCOPE_LABELS.get(scope)
    return str(label) if label is not None else scope


ERROR_UNKNOWN_SCOPE = "unknown_scope"
ERROR_NO_SCOPES = "no_scopes"
ERROR_NAME_REQUIRED = "name_required"
ERROR_API_KEY_NOT_FOUND = "api_key_not_found"
ERROR_API_KEY_EXPIRED = "api_key_expired"
ERROR_API_KEY_IP_NOT_ALLOWED = "api_key_ip_not_allowed"
ERROR_INVALID_ALLOWED_IP = "invalid_allowed_ip"
ERROR_TOO_MANY_ALLOWED_IPS = "too_many_allowed_ips"
ERROR_EXPIRY_IN_PAST = "expiry_in_past"
ERROR_UNKNOWN_STAFF_MEMBER = "unknown_staff_member"

# Entries of a key's allowed_ips at most: a list of networks, not a firewall.
MAX_ALLOWED_IPS = 100

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


def _allowed_entry(entry: str) -> str:
    """One allowed_ips entry in canonical form: an address, or a network in CIDR notation
    (host bits clear). Raises ValueError for anything else."""
    if "/" in entry:
        return str(ipaddress.ip_network(entry, strict=True))
    return str(ipaddress.ip_address(entry))


def check_allowed_ips(entries: Iterable[str]) -> list[str]:
    """The entries as canonical addresses and networks, duplicates dropped; every entry that
    is neither is named in the refusal."""
    checked: list[str] = []
    bad: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            canonical = _allowed_entry(entry)
        except ValueError:
            bad.append(entry)
            continue
        if canonical not in checked:
            checked.append(canonical)
    if bad:
        messages = [
            _("Not an IP address or network (CIDR): %(entry)s") % {"entry": entry} for entry in bad
        ]
        raise ValidationFailed(
            ERROR_INVALID_ALLOWED_IP, messages[0], detail={"allowed_ips": messages}
        )
    if len(checked) > MAX_ALLOWED_IPS:
        message = _("At most %(count)d allowed addresses or networks.") % {"count": MAX_ALLOWED_IPS}
        raise ValidationFailed(
            ERROR_TOO_MANY_ALLOWED_IPS, message, detail={"allowed_ips": [message]}
        )
    return checked


def check_expiry(expires_at: datetime | None, *, now: datetime | None = None) -> None:
    if expires_at is not None and expires_at <= (now or timezone.now()):
        message = _("The expiry must be in the future.")
        raise ValidationFailed(ERROR_EXPIRY_IN_PAST, message, detail={"expires_at": [message]})


def check_staff_member(staff_member_id: int | None) -> None:
    if staff_member_id is not None and staff_member_id not in owner_names([staff_member_id]):
        message = _("No such staff member.")
        raise ValidationFailed(
            ERROR_UNKNOWN_STAFF_MEMBER, message, detail={"staff_member_id": [message]}
        )


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
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    allowed_ips: Iterable[str] = (),
    staff_member_id: int | None = None,
    actor: str = "system",
) -> tuple[ApiKey, str]:
    """Create a key; return it with the plain key, which is shown once and never stored.
    `expires_at` (future), `allowed_ips` (addresses or CIDR networks; none: anywhere) and
    `staff_member_id` (a crm staff member; None: every customer) limit it."""
    if not name.strip():
        raise ValidationFailed(ERROR_NAME_REQUIRED, _("A key needs a name."))
    checked = check_scopes(scopes)
    checked_ips = check_allowed_ips(allowed_ips)
    check_expiry(expires_at)
    check_staff_member(staff_member_id)
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name.strip(),
        prefix=prefix,
        secret_hash=_digest(secret),
        scopes=checked,
        expires_at=expires_at,
        allowed_ips=checked_ips,
        staff_member_id=staff_member_id,
    )
    api_key_audit(actor=actor, action=AuditAction.CREATE, api_key=api_key, before={})
    return api_key, f"{prefix}.{secret}"


class ApiKeyRefused(DomainError):
    """A valid key used outside its limits (expired, or from an address it may not be used
    from): the API answers 401 with the code, so that an integrator knows which limit."""

    status_code = 401


def ip_is_allowed(client_ip: str | None, allowed_ips: Iterable[str]) -> bool:
    """Whether `client_ip` is one of `allowed_ips` or inside one of its networks. An IPv4
    address a dual-stack server sees as IPv6 (::ffff:10.0.0.1) counts as the IPv4 one; an
    unknown address is allowed nowhere."""
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for entry in allowed_ips:
        network = ipaddress.ip_network(entry, strict=False)
        if any(candidate in network for candidate in candidates):
            return True
    return False


def check_api_key_limits(
    api_key: ApiKey, *, client_ip: str | None, now: datetime | None = None
) -> None:
    """Refuse (ApiKeyRefused) a key past its expiry or used from an address outside its
    allowed_ips (an empty list allows every address)."""
    if api_key.expires_at is not None and api_key.expires_at <= (now or timezone.now()):
        raise ApiKeyRefused(ERROR_API_KEY_EXPIRED, _("This API key has expired."))
    if api_key.allowed_ips and not ip_is_allowed(client_ip, api_key.allowed_ips):
        raise ApiKeyRefused(
            ERROR_API_KEY_IP_NOT_ALLOWED,
            _("This API key may not be used from this address."),
        )


def api_key_authenticate(raw_key: str, *, client_ip: str | None = None) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Constant-time comparison of digests.
    A matching key outside its limits (expired; `client_ip`, the caller's address, not
    allowed) raises ApiKeyRefused; without an address, a key limited to addresses is refused."""
    prefix, _, secret = raw_key.partition(".")
    if len(prefix) != KEY_PREFIX_LENGTH or not secret:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _digest(secret)):
        return None
    now = timezone.now()
    check_api_key_limits(api_key, client_ip=client_ip, now=now)
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

"""Personal data at rest: identity values are normalised, encrypted (Fernet, key rotation with
MultiFernet), found by a keyed HMAC-SHA256 hash and shown masked to anyone without the
`crm.view_personal_data` permission (or the `personal_data:read` API scope)."""

import hashlib
import hmac
import re
from datetime import date
from functools import cache
from typing import NamedTuple

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.utils.translation import gettext as _

from core.validators import text_error
from crm.models import IdentityProvider

# Plain strings, not the enum members: identity_key runs for every row of every batch, and
# set lookups of str are several times faster than of Django's choice enums.
PROVIDERS = frozenset(str(p) for p in IdentityProvider.values)
PROVIDERS_WITH_NAMESPACE = frozenset({"wecom", "openid", "external"})
ALWAYS_SENSITIVE = frozenset({"phone"})

ERROR_UNKNOWN_PROVIDER = "unknown_provider"
ERROR_NAMESPACE_REQUIRED = "namespace_required"
ERROR_NAMESPACE_NOT_ALLOWED = "namespace_not_allowed"
ERROR_INVALID_PHONE = "invalid_phone"
ERROR_INVALID_VALUE = "invalid_value"

_PHONE_STRIP = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ID_VALUE = re.compile(r"^[\x21-\x7e]{1,128}$")


class IdentityError(ValueError):
    """A malformed identity; `code` is one of the ERROR_* constants, `field` the culprit."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class IdentityKey(NamedTuple):
    """A normalised identity: what makes it unique, and its value for encryption. (A named
    tuple: one is made per ingested row, and a frozen dataclass costs several times more.)"""

    provider: str
    namespace: str
    value: str
    value_hash: str
    is_sensitive: bool

    @property
    def unique_key(self) -> tuple[str, str, str]:
        return (self.provider, self.namespace, self.value_hash)


def normalize_phone(raw: str) -> str:
    """A phone number in E.164 form; bare Chinese mobile numbers get the default region."""
    phone = _PHONE_STRIP.sub("", raw)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not phone.startswith("+"):
        if not _CN_MOBILE.match(phone):
            raise IdentityError(ERROR_INVALID_PHONE, "value", _("Not a valid phone number."))
        phone = f"+{settings.DEFAULT_PHONE_REGION}{phone}"
    if not _E164.match(phone):
        raise IdentityError(ERROR_INVALID_PHONE, "value", _("Not a valid phone number."))
    return phone


def phone_search_value(term: str) -> str | None:
    """A phone number as typed into a search box, in E.164, or None. Beyond what
    `normalize_phone` takes: the country code without its "+" (8613812341234, 86-138-...), or a
    "+" that an unescaped query string turned into a space."""
    try:
        return normalize_phone(term)
    except IdentityError:
        pass
    digits = _PHONE_STRIP.sub("", term)
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return normalize_phone(f"+{digits}")
    except IdentityError:
        return None


def identity_key(
    *, provider: str, value: str, namespace: str = "", is_sensitive: bool = False
) -> IdentityKey:
    """Validate and normalise one identity. Raises IdentityError."""
    if provider not in PROVIDERS:
        raise IdentityError(
            ERROR_UNKNOWN_PROVIDER,
            "provider",
            _("Unknown provider %(provider)s.") % {"provider": provider},
        )
    namespace = (namespace or "").strip()
    if error := text_error(namespace):
        raise IdentityError(ERROR_INVALID_VALUE, "namespace", error)
    if provider == "wecom" and not namespace:
        namespace = settings.WECOM_CORP_ID
    if provider in PROVIDERS_WITH_NAMESPACE:
        if not namespace:
            raise IdentityError(
                ERROR_NAMESPACE_REQUIRED,
                "namespace",
                _("Provider %(provider)s needs a namespace.") % {"provider": provider},
            )
    elif namespace:
        raise IdentityError(
            ERROR_NAMESPACE_NOT_ALLOWED,
            "namespace",
            _("Provider %(provider)s has no namespace.") % {"provider": provider},
        )
    value = (value or "").strip()
    if provider == "phone":
        value = normalize_phone(value)
    elif not _ID_VALUE.match(value):
        raise IdentityError(
            ERROR_INVALID_VALUE, "value", _("Expected 1 to 128 printable ASCII characters.")
        )
    return IdentityKey(
        provider=provider,
        namespace=namespace,
        value=value,
        value_hash=hash_identity(provider, namespace, value),
        is_sensitive=is_sensitive or provider in ALWAYS_SENSITIVE,
    )


@cache
def _keyed_hasher(key: str) -> "hmac.HMAC":
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def hash_identity(provider: str, namespace: str, value: str) -> str:
    # A copy of a keyed HMAC skips the key schedule that hmac.digest() repeats on every call.
    hasher = _keyed_hasher(settings.PII_HASH_KEY).copy()
    hasher.update(f"{provider}\x1f{namespace}\x1f{value}".encode())
    return hasher.hexdigest()


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.PII_ENCRYPTION_KEYS])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


# Masks show at most this share of a value's characters (digits of a phone number), at most
# MASK_TAIL of them at the end, then up to MASK_HEAD at the start. Hidden characters are
# always four stars, whatever their number, so that a mask does not tell a value's length.
MASK_SHOWN_SHARE = 0.4
MASK_HEAD = 3
MASK_TAIL = 2


def _mask_middle(text: str) -> str:
    shown = int(len(text) * MASK_SHOWN_SHARE)
    tail = min(MASK_TAIL, shown)
    head = min(MASK_HEAD, shown - tail)
    return f"{text[:head]}****{text[len(text) - tail :]}"


def mask(provider: str, value: str) -> str:
    """What a viewer without the personal-data permission sees: at most 40 % of the value,
    the last 2 characters and up to 3 first ones. Phones in the default region lose their
    country code first: 13812341234 shows as 13****34 (4 of 11 digits), +1234567 as +****67,
    +4915112345678 as +491****78 (5 of 13). A guess of the hidden digits is also slowed by
    the API's rate limits on phone lookups."""
    if provider == IdentityProvider.PHONE:
        national = value.removeprefix(f"+{settings.DEFAULT_PHONE_REGION}")
        if national.startswith("+"):
            return "+" + _mask_middle(national[1:])
        return _mask_middle(national)
    return _mask_middle(value)


def display_value(
    *,
    provider: str,
    value_masked: str,
    value_encrypted: str,
    may_see_personal_data: bool,
) -> str:
    """The identity value as a given viewer may see it: every identity value is 敏感个人信息
    (docs/privacy.md), masked without the personal-data permission whatever its
    `is_sensitive` flag (which records the sender's own classification)."""
    if may_see_personal_data:
        return decrypt(value_encrypted)
    return value_masked


# What a viewer without the personal-data permission sees of a birthday (敏感个人信息): nothing
# of it, only that there is one.
BIRTHDAY_MASK = "****-**-**"


def mask_birthday(birthday: date | None) -> str:
    return BIRTHDAY_MASK if birthday is not None else ""


def mask_display_name(name: str) -> str:
    """A display name as an export without personal data shows it: its first character and
    two stars (王**), whatever its length, so that the mask tells neither the given name nor
    the name's length."""
    return f"{name[:1]}**" if name else ""

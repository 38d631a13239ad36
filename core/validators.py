"""Accepted values of every input, in one place: the ranges of timestamps, amounts and dates,
the currencies, and what a string or a JSON blob may hold. The API (msgspec structs of
`crm.inputs`, DRF serializers) and the admin forms check against these, so that nothing is
accepted that breaks what reads it later (a year-1 timestamp overflows the business time zone
in every list; a NUL byte or a lone surrogate cannot be stored by PostgreSQL at all).

The README's "Accepted values" list states the same limits for integrators."""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

# Timestamps of things that happened (paid_at, occurred_at, first_seen_at, observed_at...): from
# 2000-01-01T00:00:00Z (UTC, not business time, so the bound never depends on a setting) to one
# day ahead of the server's clock (clocks of integrating systems drift; a day more is a mistake).
EVENT_TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
EVENT_TIME_MAX_AHEAD = timedelta(days=1)
# Times something is planned for (a campaign's send time, its trigger's end).
PLANNED_TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
BIRTHDAY_MIN = date(1900, 1, 1)

MONEY_LIMIT = Decimal("1e12")  # NUMERIC(14, 2)
_CENT = Decimal("0.01")

# Free text without a column limit (a message's content): 10,000 characters, more than any
# WeCom message may carry.
FREE_TEXT_MAX_LENGTH = 10_000
# A JSON blob (interaction properties, a rule) once encoded.
JSON_MAX_BYTES = 16 * 1024

# ISO 4217 codes of currencies in circulation. Fund codes (BOV, CHE, USN...), precious metals
# (XAU...), SDR (XDR), the test code XTS and "no currency" XXX are left out: no order is paid
# in them. A fixed list rather than a package: it changes once in a few years, and a package's
# list carries those codes, which would need filtering anyway.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
    KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON
    RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
    TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
    """.split()  # noqa: SIM905 - reads like the standard's table
)

ERROR_OUT_OF_RANGE = "out_of_range"
ERROR_INVALID_TEXT = "invalid_text"

# A NUL byte (PostgreSQL text cannot hold it) or a lone UTF-16 surrogate (which no UTF-8
# encoder accepts, and which JSON's \ud800 escape produces in Python).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def event_time_error(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why `value` cannot be the time of something that happened, or None."""
    latest = (now or timezone.now()) + EVENT_TIME_MAX_AHEAD
    if EVENT_TIME_MIN <= value <= latest:
        return None
    return _("Must lie between 2000-01-01T00:00:00Z and one day from now.")


def planned_time_error(value: datetime) -> str | None:
    if EVENT_TIME_MIN <= value < PLANNED_TIME_MAX:
        return None
    return _("Must lie between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z.")


def birthday_error(value: date) -> str | None:
    if BIRTHDAY_MIN <= value <= timezone.localdate():
        return None
    return _("Must lie between 1900-01-01 and today.")


def money_error(value: Decimal) -> str | None:
    """Why `value` cannot be an amount of NUMERIC(14, 2), or None. (Runs for every amount of
    every batch, hence quantize rather than the slower as_tuple.)"""
    if not value.is_finite() or value < 0:
        return _("Must be a number not below 0.")
    if value >= MONEY_LIMIT or value.quantize(_CENT) != value:
        return _("At most 12 digits before the decimal point and 2 after it.")
    return None


def currency_error(code: str) -> str | None:
    if code in CURRENCIES:
        return None
    return _("Not an ISO 4217 currency code in circulation.")


def text_error(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if _UNSTORABLE.search(value) is None:
        return None
    return _("Must not contain a NUL character or a lone surrogate.")


def json_error(value: Any, *, max_bytes: int | None = JSON_MAX_BYTES) -> tuple[str, str] | None:
    """(path, message) of the first string (key or value) in a decoded JSON document that
    cannot be stored, or of the whole document when it encodes to more than `max_bytes`
    (None: no bound here); None when it is fine. Paths are dotted, `""` for the document."""
    found = _json_unstorable(value, "")
    if found is not None:
        return found
    if max_bytes is not None and len(msgspec.json.encode(value)) > max_bytes:
        return "", _("At most %(limit)d bytes of JSON.") % {"limit": max_bytes}
    return None


def _json_unstorable(value: Any, path: str) -> tuple[str, str] | None:
    # An explicit stack rather than recursion: the depth of a document is the sender's choice.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if error := text_error(item):
                return where, error
        elif isinstance(item, dict):
            for key, child in item.items():
                # A path goes back to the caller: it must not hold what it reports.
                shown = _UNSTORABLE.sub("\ufffd", key) if isinstance(key, str) else str(key)
                child_path = f"{where}.{shown}" if where else shown
                if isinstance(key, str) and (error := text_error(key)):
                    return child_path, error
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}.{index}" if where else str(index))
                for index, child in enumerate(item)
            )
    return None


# Django validators (for forms and for DRF fields, which accept them alike).


def _validator(check: Callable[[Any], str | None], code: str) -> Callable[[Any], None]:
    def validate(value: Any) -> None:
        if value is None:
            return
        if message := check(value):
            raise ValidationError(message, code=code)

    validate.__name__ = f"validate_{check.__name__.removesuffix('_error')}"
    return validate


validate_event_time = _validator(event_time_error, ERROR_OUT_OF_RANGE)
validate_planned_time = _validator(planned_time_error, ERROR_OUT_OF_RANGE)
validate_birthday = _validator(birthday_error, ERROR_OUT_OF_RANGE)


def validate_json_text(value: Any) -> None:
    """Every string of a JSON document (a segment rule) can be stored. Its size is the rule
    language's to bound."""
    if value is None:
        return
    if found := json_error(value, max_bytes=None):
        path, message = found
        raise ValidationError(f"{path}: {message}" if path else message, code=ERROR_INVALID_TEXT)

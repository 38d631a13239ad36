"""Shapes of data entering the CRM in bulk, decoded and validated straight from JSON by msgspec.

msgspec decodes and validates a batch of 1000 orders with their items several times faster
than pydantic and an order of magnitude faster than DRF serializers, and ingestion speed is part
of the contract (bench/ingest_orders.py). Services take these structs; `crm.api.bulk` turns
decoding errors into per-row field errors. Checks that msgspec constraints cannot express
(money precision, refund within total, identities normalised and hashed) run in
`__post_init__`, which msgspec calls while decoding, so a bad row fails like any other.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from django.utils.translation import gettext as _
from msgspec import UNSET, UnsetType

from crm.personal_data import IdentityError, IdentityKey, identity_key

MONEY_LIMIT = Decimal("1e12")  # NUMERIC(14, 2)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


def money_error(value: Decimal) -> str | None:
    """Why `value` cannot be an amount of NUMERIC(14, 2), or None. (Runs for every amount of
    every batch, hence quantize rather than the slower as_tuple.)"""
    if not value.is_finite() or value < _ZERO:
        return _("Must be a number not below 0.")
    if value >= MONEY_LIMIT or value.quantize(_CENT) != value:
        return _("At most 12 digits before the decimal point and 2 after it.")
    return None


class RowError(ValueError):
    """A check of `__post_init__` failed on `field` (reported as `<row path>.<field>`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


class IdentityIn(msgspec.Struct, dict=True):
    """One identity; normalised and hashed on decoding (`.key`)."""

    provider: Literal["wecom", "unionid", "openid", "phone", "external"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    namespace: Annotated[str, msgspec.Meta(max_length=64)] = ""
    is_sensitive: bool = False

    def __repr__(self) -> str:  # the value is personal data
        return f"IdentityIn(provider={self.provider!r})"

    def __post_init__(self) -> None:
        try:
            key = identity_key(
                provider=self.provider,
                namespace=self.namespace,
                value=self.value,
                is_sensitive=self.is_sensitive,
            )
        except IdentityError as error:
            raise RowError(error.field, str(error)) from error
        setattr(self, "_key", key)  # noqa: B010 - not a field, so never decoded from input

    @property
    def key(self) -> IdentityKey:
        key: IdentityKey = getattr(self, "_key")  # noqa: B009
        return key


class CustomerRefIn(msgspec.Struct, frozen=True):
    """The customer a row belongs to, named by identities (created when none is known)."""

    identities: Annotated[list[IdentityIn], msgspec.Meta(min_length=1, max_length=20)]

    @property
    def keys(self) -> list[IdentityKey]:
        return [identity.key for identity in self.identities]


class CustomerIn(msgspec.Struct, frozen=True):
    """A customer named by identities, with the profile fields to set (absent ones are left as
    they are)."""

    identities: Annotated[list[IdentityIn], msgspec.Meta(min_length=1, max_length=20)]
    display_name: Annotated[str, msgspec.Meta(max_length=128)] | UnsetType = UNSET
    gender: Literal["unknown", "male", "female"] | UnsetType = UNSET
    birthday: date | UnsetType | None = UNSET
    province: Annotated[str, msgspec.Meta(max_length=32)] | UnsetType = UNSET
    city: Annotated[str, msgspec.Meta(max_length=32)] | UnsetType = UNSET
    source_channel: (
        Literal[
            "",
            "douyin",
            "kuaishou",
            "wechat_channels",
            "xiaohongshu",
            "bilibili",
            "miniprogram",
            "offline_store",
            "wecom",
            "other",
        ]
        | UnsetType
    ) = UNSET
    first_seen_at: AwareDatetime | UnsetType = UNSET
    owner: Annotated[str, msgspec.Meta(max_length=64)] | UnsetType | None = UNSET  # WeCom userid
    member_level: Annotated[int, msgspec.Meta(ge=0, le=32767)] | UnsetType = UNSET
    member_points: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)] | UnsetType = UNSET

    @property
    def keys(self) -> list[IdentityKey]:
        return [identity.key for identity in self.identities]

    @property
    def profile(self) -> dict[str, Any]:
        return {
            name: value
            for name in self.__struct_fields__
            if name != "identities" and (value := getattr(self, name)) is not UNSET
        }


class OrderItemIn(msgspec.Struct, frozen=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    unit_price: Decimal
    name: Annotated[str, msgspec.Meta(max_length=128)] = ""
    category: Annotated[str, msgspec.Meta(max_length=64)] = ""

    def __post_init__(self) -> None:
        if error := money_error(self.unit_price):
            raise RowError("unit_price", error)


class OrderIn(msgspec.Struct, frozen=True):
    source: Source
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    customer: CustomerRefIn
    status: Literal["paid", "partially_refunded", "refunded", "cancelled"]
    total_amount: Decimal
    refunded_amount: Decimal = Decimal("0.00")
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "CNY"
    paid_at: AwareDatetime | None = None
    channel: Annotated[str, msgspec.Meta(max_length=32)] = ""
    store: Annotated[str, msgspec.Meta(max_length=64)] = ""
    items: Annotated[list[OrderItemIn], msgspec.Meta(max_length=500)] = []

    def __post_init__(self) -> None:
        for name in ("total_amount", "refunded_amount"):
            if error := money_error(getattr(self, name)):
                raise RowError(name, error)
        if self.refunded_amount > self.total_amount:
            raise RowError("refunded_amount", _("Must not exceed total_amount."))
        if self.paid_at is None and self.status != "cancelled":
            raise RowError("paid_at", _("Required unless the order is cancelled."))


class InteractionIn(msgspec.Struct, frozen=True):
    customer: CustomerRefIn
    kind: Literal[
        "message_reply",
        "link_click",
        "content_view",
        "miniprogram_visit",
        "group_message",
        "live_stream_view",
        "coupon_claim",
    ]
    occurred_at: AwareDatetime
    source: Source
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    properties: dict[str, Any] = {}

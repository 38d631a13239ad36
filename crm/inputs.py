"""Shapes of data entering the CRM in bulk, decoded and validated straight from JSON by msgspec.

msgspec decodes and validates a batch of 1000 orders with their items several times faster
than pydantic and an order of magnitude faster than DRF serializers, and ingestion speed is part
of the contract (bench/ingest_orders.py). Services take these structs; `crm.api.bulk` turns
decoding errors into per-row field errors. Checks that msgspec constraints cannot express
(money precision, refund within total, identities normalised and hashed, the accepted values
of `core.validators`: timestamp ranges, currencies, storable strings) run in
`__post_init__`, which msgspec calls while decoding, so a bad row fails like any other.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from django.utils.translation import gettext as _
from msgspec import UNSET, UnsetType

from core.validators import (
    birthday_error,
    currency_error,
    event_time_error,
    json_error,
    money_error,
    text_error,
)
from crm.personal_data import IdentityError, IdentityKey, identity_key

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class RowError(ValueError):
    """A check of `__post_init__` failed on `field` (reported as `<row path>.<field>`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def _check_source_time(row: Any) -> None:
    """A source system's update time lies in the range of times of things that happened: a
    clock years off, or a version from the future that would make every later one stale, is
    refused."""
    if row.source_updated_at is not None and (error := event_time_error(row.source_updated_at)):
        raise RowError("source_updated_at", error)


def check_texts(
    row: msgspec.Struct, names: tuple[str, ...], *, prefix: str = "", more: str = ""
) -> None:
    """Raise RowError on the first of the string fields `names` that cannot be stored (named
    `<prefix><name>`). One search over the joined values, `more` included (the caller checks
    those itself when this passes): this runs for every row of every batch."""
    values = [value for name in names if isinstance(value := getattr(row, name), str)]
    if not text_error("".join(values) + more):
        return
    for name in names:
        value = getattr(row, name)
        if isinstance(value, str) and (error := text_error(value)):
            raise RowError(prefix + name, error)


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
    # The source system's update time of this profile: an older one than applied is stale.
    source_updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_texts(self, ("display_name", "province", "city", "owner"))
        _check_source_time(self)
        if isinstance(self.first_seen_at, datetime) and (
            error := event_time_error(self.first_seen_at)
        ):
            raise RowError("first_seen_at", error)
        if isinstance(self.birthday, date) and (error := birthday_error(self.birthday)):
            raise RowError("birthday", error)

    @property
    def keys(self) -> list[IdentityKey]:
        return [identity.key for identity in self.identities]

    @property
    def profile(self) -> dict[str, Any]:
        return {
            name: value
            for name in self.__struct_fields__
            if name not in ("identities", "source_updated_at")
            and (value := getattr(self, name)) is not UNSET
        }


class OrderItemIn(msgspec.Struct, frozen=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    unit_price: Decimal
    name: Annotated[str, msgspec.Meta(max_length=128)] = ""
    category: Annotated[str, msgspec.Meta(max_length=64)] = ""

    # Its strings are checked by its order's __post_init__, together with the order's.

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
    currency: str = "CNY"
    paid_at: AwareDatetime | None = None
    channel: Annotated[str, msgspec.Meta(max_length=32)] = ""
    store: Annotated[str, msgspec.Meta(max_length=64)] = ""
    items: Annotated[list[OrderItemIn], msgspec.Meta(max_length=500)] = []
    # The source system's update time of this version (Shopify's updated_at, Youzan's
    # update_time). Last of the fields: the content hash leaves it out (see order_content_hash).
    source_updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        items = "".join([f"{i.sku}{i.name}{i.category}" for i in self.items])
        check_texts(self, ("source", "external_id", "channel", "store"), more=items)
        if items and text_error(items):
            for position, item in enumerate(self.items):
                check_texts(item, ("sku", "name", "category"), prefix=f"items.{position}.")
        if error := currency_error(self.currency):
            raise RowError("currency", error)
        for name in ("total_amount", "refunded_amount"):
            if error := money_error(getattr(self, name)):
                raise RowError(name, error)
        if self.refunded_amount > self.total_amount:
            raise RowError("refunded_amount", _("Must not exceed total_amount."))
        if self.paid_at is None:
            if self.status != "cancelled":
                raise RowError("paid_at", _("Required unless the order is cancelled."))
        elif error := event_time_error(self.paid_at):
            raise RowError("paid_at", error)
        _check_source_time(self)


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
    # The source system's update time of `properties`: a re-send with a newer one replaces them.
    source_updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_texts(self, ("source", "idempotency_key"))
        if error := event_time_error(self.occurred_at):
            raise RowError("occurred_at", error)
        if found := json_error(self.properties):
            path, message = found
            raise RowError("properties", f"{path}: {message}" if path else message)
        _check_source_time(self)

"""Masks hide enough of any value: at most 40 % of the characters (digits of a phone number),
short numbers included, and stored masks are rewritten by the migration."""

import importlib

import pytest
from django.apps import apps
from django.test import override_settings

from crm.models import Identity
from crm.personal_data import identity_key, mask
from tests.factories import IdentityFactory

_REMASK_MIGRATION = importlib.import_module("crm.migrations.0007_identity_masks_hide_more")


@pytest.mark.parametrize(
    ("raw", "masked", "digits"),
    [
        ("+1234567", "+****67", 7),
        ("+12345678", "+1****78", 8),
        ("13812347759", "13****59", 11),  # default region: the national number
        ("+4915112345678", "+491****78", 13),
        ("+861234567", "****67", 7),  # short, in the default region
    ],
)
def test_phone_masks_show_at_most_two_fifths_of_the_digits(
    raw: str, masked: str, digits: int
) -> None:
    value = identity_key(provider="phone", value=raw).value
    assert mask("phone", value) == masked
    shown = sum(c.isdigit() for c in masked)
    assert shown <= digits * 2 // 5


@override_settings(DEFAULT_PHONE_REGION="1")
def test_a_chinese_number_outside_the_default_region_keeps_its_country_code_masked() -> None:
    assert mask("phone", "+8613812347759") == "+861****59"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("M000123456", "M0****56"),
        ("oU1abcdefghijklmnopqrstuvwxyz", "oU1****yz"),
        ("ab", "****"),
    ],
)
def test_other_sensitive_values_are_masked_alike(value: str, masked: str) -> None:
    assert mask("external", value) == masked


@pytest.mark.django_db
def test_the_migration_rewrites_stored_masks_of_sensitive_identities() -> None:
    phone = IdentityFactory(provider="phone", raw_value="13812347759", value_masked="138****7759")
    short = IdentityFactory(provider="phone", raw_value="+1234567", value_masked="+12****4567")
    plain = IdentityFactory(provider="unionid", raw_value="oU1abcdefgh", value_masked="kept")
    _REMASK_MIGRATION.remask(apps, None)
    masks = dict(Identity.objects.values_list("pk", "value_masked"))
    assert masks == {phone.pk: "13****59", short.pk: "+****67", plain.pk: "kept"}

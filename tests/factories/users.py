"""factory_boy factory for the admin site's users: staff with the permissions a test names.
Tests log them in with `force_login`, so they have no usable password (no hashing to pay)."""

from collections.abc import Iterable
from typing import Any

import factory
from django.contrib.auth.models import Permission, User


class UserFactory(factory.django.DjangoModelFactory):
    """`UserFactory(permissions=Permission.objects.filter(...))`: a staff member who holds
    exactly those permissions."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff-user-{n}")
    password = factory.django.Password(None)
    is_staff = True

    @factory.post_generation
    def permissions(self, create: bool, extracted: Iterable[Permission] | None, **_: Any) -> None:
        if create and extracted is not None:
            self.user_permissions.set(extracted)


def seeing_every_customer(permissions: Iterable[Permission]) -> list[Permission]:
    """`permissions` and `crm.view_all_customers`: an operator not scoped to the customers of
    one owner (as the 运营 and 数据分析 roles are), for tests about other permissions."""
    every = Permission.objects.get(content_type__app_label="crm", codename="view_all_customers")
    return [*permissions, every]

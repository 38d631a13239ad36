"""`manage.py sync_roles`: create the operator roles' permission groups (品牌管理员, 运营, 导购,
数据分析, 审计) and set their permissions to the product's definition (core.services.roles).
`migrate` does the same at its end; this is for a database whose groups were edited by hand."""

from typing import Any

from django.core.management.base import BaseCommand

from core.services.roles import roles_sync


class Command(BaseCommand):
    help = "Create the operator roles' permission groups and set their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, count in roles_sync().items():
            self.stdout.write(f"{name}: {count}")

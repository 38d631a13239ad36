from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Customers")

    def ready(self) -> None:
        # API keys (core) may be bound to a staff member: core reads their names through this.
        from core.api_key_owners import OwnerDirectory, register
        from crm.selectors.staff_members import staff_member_choices, staff_member_names

        register(OwnerDirectory(names=staff_member_names, choices=staff_member_choices))

        # Registers the tasks the services enqueue by name (crm.enqueue) in every process.
        from crm import tasks  # noqa: F401

        # WeCom corp tags: the sync step "tags" and the change_external_tag handlers.
        from crm.wecom import tags  # noqa: F401

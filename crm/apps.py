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
        # The tasks crm.enqueue names, held by every process (see core.enqueue), and the WeCom
        # callback handlers and full-sync steps, which register themselves on import.
        import crm.wecom.contacts_sync
        import crm.wecom.groups
        import crm.wecom.tags  # noqa: F401
        from crm import tasks  # noqa: F401

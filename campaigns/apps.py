from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # Registers the tasks the services enqueue by name (campaigns.enqueue) in every
        # process, not only in the worker that autodiscovers them.
        from campaigns import tasks  # noqa: F401
        from campaigns.services.attribution import conversions_attribute_after_orders
        from campaigns.services.ledger import deliveries_merge
        from crm.services.merges import customers_merge_subscribe
        from crm.services.orders import orders_changed_subscribe

        orders_changed_subscribe(conversions_attribute_after_orders)
        customers_merge_subscribe(deliveries_merge)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from campaigns.services.ledger import deliveries_merge
        from campaigns.tasks import attribute_customers_after_orders
        from crm.services.merges import customers_merge_subscribe
        from crm.services.orders import orders_changed_subscribe

        orders_changed_subscribe(attribute_customers_after_orders)
        customers_merge_subscribe(deliveries_merge)

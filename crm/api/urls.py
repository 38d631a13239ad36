"""Integration API v1 routes."""

from django.urls import path

from crm.api import consents, contact_ways, customers, groups, interactions, orders, tags

urlpatterns = [
    path("customers", customers.CustomerListView.as_view(), name="customer-list"),
    path("customers/bulk", customers.CustomerBulkView.as_view(), name="customer-bulk"),
    path("orders", orders.OrderListView.as_view(), name="order-list"),
    path("orders/bulk", orders.OrderBulkView.as_view(), name="order-bulk"),
    path("orders/<int:order_id>", orders.OrderDetailView.as_view(), name="order-detail"),
    path("interactions", interactions.InteractionListView.as_view(), name="interaction-list"),
    path("interactions/bulk", interactions.InteractionBulkView.as_view(), name="interaction-bulk"),
    path("consents", consents.ConsentView.as_view(), name="consents"),
    path("consents/events", consents.ConsentEventListView.as_view(), name="consent-events"),
    path("tag-groups", tags.TagGroupListView.as_view(), name="tag-group-list"),
    path("tag-groups/<int:group_id>", tags.TagGroupDetailView.as_view(), name="tag-group-detail"),
    path("tags", tags.TagListView.as_view(), name="tag-list"),
    path("tags/assign", tags.TagsAssignView.as_view(), name="tags-assign"),
    path("tags/remove", tags.TagsRemoveView.as_view(), name="tags-remove"),
    path("tags/<int:tag_id>", tags.TagDetailView.as_view(), name="tag-detail"),
    path("groups", groups.GroupListView.as_view(), name="group-list"),
    path("groups/<int:group_id>", groups.GroupDetailView.as_view(), name="group-detail"),
    path("groups/<int:group_id>/members", groups.GroupMembersView.as_view(), name="group-members"),
    path("contact-ways", contact_ways.ContactWayListView.as_view(), name="contact-way-list"),
    path(
        "contact-ways/<int:contact_way_id>",
        contact_ways.ContactWayDetailView.as_view(),
        name="contact-way-detail",
    ),
    path(
        "contact-ways/<int:contact_way_id>/deactivate",
        contact_ways.ContactWayDeactivateView.as_view(),
        name="contact-way-deactivate",
    ),
    path(
        "contact-ways/<int:contact_way_id>/qr-code",
        contact_ways.ContactWayQrCodeView.as_view(),
        name="contact-way-qr-code",
    ),
]

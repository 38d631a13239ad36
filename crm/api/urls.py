"""Integration API v1 routes."""

from django.urls import path

from crm.api import customers

urlpatterns = [
    path("customers", customers.CustomerListView.as_view(), name="customer-list"),
    path("customers/bulk", customers.CustomerBulkView.as_view(), name="customer-bulk"),
    path(
        "customers/by-identity/<str:provider>/<str:value>",
        customers.CustomerByIdentityView.as_view(),
        name="customer-by-identity",
    ),
    path(
        "customers/<int:customer_id>",
        customers.CustomerDetailView.as_view(),
        name="customer-detail",
    ),
]

"""Integration API v1 routes of the customer 360° view (under the same prefix as the apps')."""

from django.urls import path

from console.api import customers, privacy

urlpatterns = [
    path("customers/lookup", customers.CustomerLookupView.as_view(), name="customer-lookup"),
    path(
        "customers/by-identity",
        customers.CustomerIdentityUpsertView.as_view(),
        name="customer-identity-upsert",
    ),
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
    path(
        "customers/<int:customer_id>/export",
        privacy.CustomerPersonalExportView.as_view(),
        name="customer-personal-export",
    ),
    path(
        "customers/<int:customer_id>/erase",
        privacy.CustomerEraseView.as_view(),
        name="customer-erase",
    ),
]

"""URL map: the root (to the admin), admin, health check, tracked-link redirects, WeCom's
callback, the integration API v1 and its OpenAPI docs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.views import link_redirect
from config.health import healthz
from crm.views import wecom_callback

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="root"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("l/<str:token>", link_redirect, name="link-redirect"),
    path("wecom/callback", wecom_callback, name="wecom-callback"),
    path("api/v1/", include("crm.api.urls")),
    path("api/v1/", include("segments.api.urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/v1/", include("console.api.urls")),
    path("api/v1/", include("core.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# Django's own errors answer JSON under /api/ (the error contract), the usual pages elsewhere.
handler400 = "core.api.errors.bad_request"
handler403 = "core.api.errors.permission_denied"
handler404 = "core.api.errors.page_not_found"
handler500 = "core.api.errors.server_error"

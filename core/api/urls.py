"""core routes of the integration API v1: the audit trail."""

from django.urls import path

from core.api import audit

urlpatterns = [
    path("audit-events", audit.AuditEventListView.as_view(), name="audit-event-list"),
]

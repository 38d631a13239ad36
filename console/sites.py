"""The admin site of the console: Django's, whose first page shows the overview (运营看板)
above the list of models. Installed as the default site by console.apps.ConsoleAdminConfig,
so every app's `admin.site.register` lands on it. Its login is core.admin_login's: a lockout
after repeated failures, and a second factor for those who need one (ADMIN_OTP_REQUIRED), whom
the site lets in only once their session is verified (django-otp's OTPAdminSite, for them
alone)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from console.overview import overview_context
from core.admin_login import AdminLoginForm, is_verified, otp_required_for
from core.two_step import two_step_view


class ConsoleAdminSite(admin.AdminSite):
    index_template = "console/overview/index.html"
    login_form = AdminLoginForm
    login_template = "core/admin_login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not otp_required_for(request.user) or is_verified(request.user)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Each user's own authenticator apps (二次验证), before the admin's catch-all patterns.
        return [
            path("two-step/", self.admin_view(two_step_view), name="two_step"),
            *super().get_urls(),
        ]

    def index(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        context = {"overview": overview_context(request), **(extra_context or {})}
        return super().index(request, context)

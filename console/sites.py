"""The admin site of the console: Django's, whose first page shows the overview (运营看板)
above the list of models. Installed as the default site by console.apps.ConsoleAdminConfig,
so every app's `admin.site.register` lands on it."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from console.overview import overview_context


class ConsoleAdminSite(admin.AdminSite):
    index_template = "console/overview/index.html"

    def index(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        context = {"overview": overview_context(request), **(extra_context or {})}
        return super().index(request, context)

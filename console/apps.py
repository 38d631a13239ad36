from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        # Registers the console's Celery tasks with the app.
        from console import tasks  # noqa: F401


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the console's site (console.sites) as its default site. Named in
    INSTALLED_APPS in place of django.contrib.admin; never the config of `console` itself."""

    default = False
    default_site = "console.sites.ConsoleAdminSite"

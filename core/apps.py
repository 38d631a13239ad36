from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After the last app's post_migrate (by then Django has created every app's
    permissions), set the role groups' permissions (core.services.roles)."""
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if not with_models or sender is not with_models[-1]:
        return
    from core.services.roles import roles_sync  # models are ready only now

    roles_sync()


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="core.sync_roles")

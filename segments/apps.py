from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = _("Segmentation")

    def ready(self) -> None:
        # Registers the tasks the services enqueue by name (segments.enqueue) in every process,
        # not only in the worker that autodiscovers them.
        from segments import tasks  # noqa: F401

"""What the console keeps of its own: the record of every export of a customer list (who
exported which list, when, how many rows, in which format, with personal data unmasked or
not). Append-only: written by console.services.exports, never changed or deleted."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.actors import actor_label
from core.business_time import business_time_label


class ExportFormat(models.TextChoices):
    CSV = "csv", _("CSV")
    XLSX = "xlsx", _("Excel (.xlsx)")


class CustomerExport(models.Model):
    actor = models.CharField(_("exported by"), max_length=128)  # an actor code (core.actors)
    exported_at = models.DateTimeField(_("exported at"), default=timezone.now)
    filters = models.TextField(_("filters"), blank=True)  # as the operator read them
    query_string = models.TextField(_("query string"), blank=True)  # the list's, exactly
    row_count = models.PositiveIntegerField(_("customers exported"))
    file_format = models.CharField(_("format"), max_length=8, choices=ExportFormat.choices)
    is_unmasked = models.BooleanField(_("personal data unmasked"))

    class Meta:
        verbose_name = _("customer export")
        verbose_name_plural = _("customer exports")
        indexes = [models.Index(fields=["-exported_at"], name="customer_export_by_time")]

    def __str__(self) -> str:
        return gettext("Exported by %(actor)s at %(time)s") % {
            "actor": actor_label(self.actor),
            "time": business_time_label(self.exported_at),
        }

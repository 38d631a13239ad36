"""What the console keeps of its own: the record of every export of a customer list (who
exported which list, when, how many rows, in which format, with personal data unmasked or
not), and the record of every request of a person under PIPL (an export of everything held
about one customer, or its erasure). Append-only: written by console.services.exports and
console.services.privacy, never changed or deleted."""

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


class PrivacyRequestKind(models.TextChoices):
    EXPORT = "export", _("Personal data export")
    ERASE = "erase", _("Erasure")


class PrivacyRequest(models.Model):
    """One request of a person under PIPL answered here: an export of everything held about
    one customer (arts. 45, 47) or its erasure (art. 47). `customer_id` is no foreign key: the
    record outlives the customer it names. `outcome` holds counts per kind of data, never a
    personal value."""

    kind = models.CharField(_("kind"), max_length=8, choices=PrivacyRequestKind.choices)
    customer_id = models.BigIntegerField(_("customer id"))
    requested_by = models.CharField(_("requested by"), max_length=160)  # an actor code
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    outcome = models.JSONField(_("outcome"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("personal data request")
        verbose_name_plural = _("personal data requests (PIPL)")
        ordering = ["-requested_at", "-id"]
        permissions = [
            ("erase_personal_data", _("Can erase a customer's personal data (PIPL)")),
            ("export_personal_data", _("Can export a customer's personal data (PIPL)")),
        ]
        constraints = [
            # One erasure per customer: a second request is answered with the first.
            models.UniqueConstraint(
                fields=["customer_id"],
                condition=models.Q(kind="erase"),
                name="privacy_request_one_erasure",
            )
        ]
        indexes = [
            models.Index(fields=["customer_id", "kind"], name="privacy_request_by_customer"),
            models.Index(fields=["-requested_at"], name="privacy_request_by_time"),
        ]

    def __str__(self) -> str:
        return gettext("%(kind)s of customer #%(customer)s") % {
            "kind": self.get_kind_display(),
            "customer": self.customer_id,
        }

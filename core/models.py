"""core models: what every app needs that is not about customers: the integration API keys and
the audit trail."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiKey(models.Model):
    """An integration API key. Only a SHA-256 digest of the secret is stored (the secret is 32
    random bytes, so a slow password hash adds nothing); `prefix` finds the row."""

    name = models.CharField(_("name"), max_length=64)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=32), verbose_name=_("scopes"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Addresses or networks (CIDR) the key may be used from; empty means anywhere.
    allowed_ips = ArrayField(
        models.CharField(max_length=64), verbose_name=_("allowed IPs"), default=list, blank=True
    )
    # The id of the crm staff member (跟进人) whose customers alone the key answers for, or None
    # for every customer. An id rather than a foreign key: core sits below crm (crm checks it).
    staff_member_id = models.BigIntegerField(_("bound to staff member"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        db_table = "crm_apikey"  # created by crm's first migration, kept when the model moved here

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditAction(models.TextChoices):
    VIEW_PERSONAL_DATA = "view_personal_data", _("Viewed personal data")
    EXPORT = "export", _("Export")
    PERSONAL_EXPORT = "personal_export", _("Personal data export (PIPL)")
    ERASE = "erase", _("Erasure (PIPL)")
    MERGE = "merge", _("Merge")
    CREATE = "create", _("Created")
    CHANGE = "change", _("Changed")
    DELETE = "delete", _("Deleted")
    API_KEY_USE = "api_key_use", _("API key use")


# The audit trail's names of the objects it records (AuditEvent.object_type).
AUDITED_OBJECT_TYPES = {
    "customer": _("customer"),
    "customer_export": _("customer export"),
    "segment": _("segment"),
    "campaign": _("campaign"),
    "frequency_rule": _("frequency rule"),
    "rfm_policy": _("RFM policy"),
    "lifecycle_policy": _("lifecycle policy"),
    "api_key": _("API key"),
    "contact_way": _("channel QR code"),
}


class AuditEvent(models.Model):
    """One entry of the append-only audit trail: who (an actor code, as core.actors reads it) did
    what to which object, and for personal data which customer and which fields. Values of
    personal fields are never written here, only field names and ids."""

    occurred_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    actor = models.CharField(_("actor"), max_length=160)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    # No foreign key: the trail outlives the customers it names (an erased one included).
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True)
    fields = ArrayField(
        models.CharField(max_length=64), verbose_name=_("fields"), default=list, blank=True
    )
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer_id", "occurred_at"], name="audit_customer_time"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
            # The customers a list page showed (detail.customer_ids), for the search by id.
            GinIndex(
                OpClass(KeyTransform("customer_ids", "detail"), name="jsonb_path_ops"),
                name="audit_detail_customer_ids",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_label}"

    @property
    def object_label(self) -> str:
        """The object by its kind's name and id: 频控规则 #3."""
        if not self.object_type:
            return "-"
        kind = AUDITED_OBJECT_TYPES.get(self.object_type, self.object_type)
        return f"{kind} #{self.object_id}" if self.object_id else str(kind)


class ApiKeyUsage(models.Model):
    """How many requests one API key made in one hour (the hour's start, UTC). Counted in the
    shared cache as requests arrive and folded in here by a scheduled task
    (core.services.api_key_usage): the request path never writes this table."""

    api_key = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, related_name="usage", verbose_name=_("API key")
    )
    hour = models.DateTimeField(_("hour"))
    request_count = models.PositiveIntegerField(_("requests"), default=0)

    class Meta:
        verbose_name = _("API key use")
        verbose_name_plural = _("API key use (per hour)")
        ordering = ["-hour", "api_key_id"]
        constraints = [
            models.UniqueConstraint(fields=["api_key", "hour"], name="api_key_usage_key_hour")
        ]
        indexes = [models.Index(fields=["hour"], name="api_key_usage_hour")]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.hour:%Y-%m-%d %H:00}"

"""Each webhook campaign signs its posts with a secret of its own (encrypted like personal
data), instead of the global WEBHOOK_SIGNING_SECRET: existing webhook campaigns get one each,
generated here, which their operator reads by rotating it (the old global key is gone, so
receivers must take the new secret anyway). A delivery refused because its campaign's URL
points inside the network gets a reason of its own."""

import secrets
from typing import Any

from django.db import migrations, models


def issue_secrets(apps: Any, schema_editor: Any) -> None:
    from crm.personal_data import encrypt

    Campaign = apps.get_model("campaigns", "Campaign")
    for campaign in Campaign.objects.filter(channel="webhook", webhook_secret_encrypted=""):
        campaign.webhook_secret_encrypted = encrypt("whsec_" + secrets.token_urlsafe(32))
        campaign.save(update_fields=["webhook_secret_encrypted"])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0009_delivery_id_cache"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="webhook_secret_encrypted",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(issue_secrets, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="delivery",
            name="reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("opted_out", "Opted out"),
                    ("no_identity", "No identity for the channel"),
                    ("capped", "Capped by a frequency rule"),
                    ("cap_delay_exceeded", "Deferred by a frequency rule past its delay"),
                    ("quiet_hours", "Deferred by quiet hours"),
                    ("throttled", "Deferred by the throttle"),
                    ("campaign_cancelled", "Campaign cancelled"),
                    ("not_contact", "No longer the sender's contact"),
                    ("platform_cap", "Refused by the platform's own limit"),
                    ("unconfirmed", "Never confirmed by the staff member"),
                    ("channel_error", "Channel error"),
                    ("group_blocked", "Held back with its group chat"),
                    ("webhook_url_not_allowed", "Webhook URL not allowed"),
                ],
                max_length=24,
                verbose_name="reason",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("channel", "webhook"), _negated=True),
                    models.Q(("webhook_secret_encrypted", ""), _negated=True),
                    _connector="OR",
                ),
                name="campaign_webhook_has_secret",
            ),
        ),
    ]

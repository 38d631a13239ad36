"""Masks of sensitive identities follow crm.personal_data.mask, which now shows at most 40 % of
a value (`138****1234` showed 7 of 11 digits, `+12****4567` 6 of 7): every stored mask of a
sensitive identity is written again from its decrypted value, by primary-key batches. A value
no key decrypts any longer (its key rotated away) gets the bare mask."""

from django.db import migrations

BATCH = 2000


def remask(apps, schema_editor):
    from cryptography.fernet import InvalidToken

    from crm.personal_data import decrypt, mask

    Identity = apps.get_model("crm", "Identity")
    last_id = 0
    while True:
        batch = list(
            Identity.objects.filter(is_sensitive=True, pk__gt=last_id)
            .order_by("pk")
            .only("pk", "provider", "value_encrypted", "value_masked")[:BATCH]
        )
        if not batch:
            return
        last_id = batch[-1].pk
        changed = []
        for identity in batch:
            try:
                masked = mask(identity.provider, decrypt(identity.value_encrypted))
            except InvalidToken:
                masked = "****"
            if masked != identity.value_masked:
                identity.value_masked = masked
                changed.append(identity)
        Identity.objects.bulk_update(changed, ["value_masked"])


class Migration(migrations.Migration):

    dependencies = [
        ("crm", "0006_cache_table"),
    ]

    operations = [migrations.RunPython(remask, migrations.RunPython.noop, elidable=True)]

from django.db import migrations


def create_preset(apps, schema_editor):
    FrequencyRule = apps.get_model("campaigns", "FrequencyRule")
    # WeCom itself refuses bulk messages to a customer past its limit (status 3 in the send
    # results). Its documented limit changes; one a day per customer never exceeds the forms
    # it has taken. Operators set it to what WeCom allows their corp now.
    FrequencyRule.objects.get_or_create(
        name="企业微信平台群发限制",
        defaults={
            "description": "企业微信平台自身对每位客户可接收群发消息数的限制",
            "scope": "channel",
            "channel": "wecom_customer",
            "max_count": 1,
            "window_kind": "calendar",
            "calendar_unit": "day",
            "on_hit": "skip",
            "is_platform_preset": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial")]

    operations = [migrations.RunPython(create_preset, migrations.RunPython.noop)]

"""Moments as operators read them: in business time (settings.TIME_ZONE, Asia/Shanghai by
default), in the active language's format, followed by the zone's name where a time could be
read in another zone (a planned send, say). Reads only."""

from datetime import datetime

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# The zones' names operators use; any other zone is shown by its tz database name.
ZONE_NAMES = {"Asia/Shanghai": _("Beijing time")}


def business_zone_name() -> str:
    name = ZONE_NAMES.get(settings.TIME_ZONE)
    return str(name) if name is not None else settings.TIME_ZONE


def business_time_label(value: datetime | None, *, empty: str = "-") -> str:
    """`value` in business time with its zone: "2026年1月2日 01:30（北京时间）"."""
    if value is None:
        return empty
    shown = formats.localize(timezone.localtime(value, timezone.get_default_timezone()))
    return gettext("%(time)s (%(zone)s)") % {"time": shown, "zone": business_zone_name()}

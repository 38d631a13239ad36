"""Numbers as the console's readers write them: in Chinese, counts from ten thousand in 万
and from a hundred million in 亿 (1.23万, 4.5亿), money with ¥; in other languages, digits
grouped by thousands. Rates as percentages, changes of rates in percentage points."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

_UNITS = ((Decimal(100_000_000), "亿"), (Decimal(10_000), "万"))


def _reads_chinese() -> bool:
    return (translation.get_language() or "").startswith("zh")


def _trimmed(value: Decimal, places: int) -> str:
    """`value` rounded half up to `places` decimals, without trailing zeros."""
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _abbreviated(value: Decimal) -> str | None:
    """`value` in 万 or 亿 (two decimals at most) when it reaches one, in Chinese; else None."""
    if not _reads_chinese():
        return None
    for size, unit in _UNITS:
        if abs(value) >= size:
            return f"{_trimmed(value / size, 2)}{unit}"
    return None


def format_count(value: int) -> str:
    """12345 -> "1.23万" in Chinese, "12,345" otherwise."""
    return _abbreviated(Decimal(value)) or f"{value:,}"


def format_money(value: Decimal) -> str:
    """Yuan: 123456.7 -> "¥12.35万" in Chinese, "¥123,456.70" otherwise; below 万, to the fen."""
    short = _abbreviated(value)
    if short is not None:
        return f"¥{short}"
    return f"¥{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def format_rate(value: float) -> str:
    """0.2345 -> "23.5%"."""
    return f"{_trimmed(Decimal(str(value)) * 100, 1)}%"


def format_relative_change(current: Decimal | int, previous: Decimal | int) -> str | None:
    """How much `current` is above or below `previous`, as "+12.5%" / "-3%"; None when there
    was nothing before to compare with."""
    if not previous:
        return None
    change = (Decimal(current) - Decimal(previous)) / Decimal(previous) * 100
    return f"{'+' if change > 0 else ''}{_trimmed(change, 1)}%"


def format_points_change(current: float, previous: float) -> str:
    """A change of a rate in percentage points: 0.30 against 0.25 -> "+5 pp" (个百分点)."""
    points = (Decimal(str(current)) - Decimal(str(previous))) * 100
    text = f"{'+' if points > 0 else ''}{_trimmed(points, 1)}"
    return gettext("%(points)s pp") % {"points": text}


def zone_label() -> str:
    """The business time zone as readers name it: 北京时间 for China's, else its name."""
    if settings.TIME_ZONE in ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"):
        return gettext("Beijing time")
    return str(settings.TIME_ZONE)

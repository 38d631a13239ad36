"""How the campaign pages write their figures: numbers in the operator's locale, rounded half
up, percentages and percentage points signed where they are changes, "—" for a figure that
cannot be computed; and the rows of a table of figures."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

UNKNOWN = "—"  # a figure that cannot be computed: an empty arm, a holdout that never converted


def round_half_up(value: float | Decimal, places: int) -> Decimal:
    """Half up: number_format alone truncates a float."""
    exponent = Decimal(1).scaleb(-places)
    return Decimal(str(value)).quantize(exponent, rounding=ROUND_HALF_UP) + 0  # no "-0.00"


def format_fixed(value: float | Decimal, places: int = 2) -> str:
    return number_format(round_half_up(value, places), places)


def format_credit(value: Decimal) -> str:
    """A number of orders credited to a campaign: whole under last-touch (3, not 3.00), a
    fraction when several touches share an order (2.5)."""
    rounded = round_half_up(value, 2)
    if rounded == rounded.to_integral_value():
        return number_format(int(rounded))
    return number_format(rounded.normalize())


def format_signed(value: float) -> str:
    rounded = round_half_up(value, 2)
    text = number_format(rounded, 2)
    return f"+{text}" if rounded > 0 else text


def format_percent(share: float | None) -> str:
    return UNKNOWN if share is None else f"{format_fixed(share * 100)}%"


def format_relative(share: float | None) -> str:
    """A change relative to a rate, signed."""
    return UNKNOWN if share is None else f"{format_signed(share * 100)}%"


def format_points(difference: float | None) -> str:
    """A difference of two rates, in percentage points."""
    if difference is None:
        return UNKNOWN
    return str(_("%(points)s pp") % {"points": format_signed(difference * 100)})


def format_interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return UNKNOWN
    return str(
        _("%(low)s to %(high)s pp")
        % {"low": format_signed(low * 100), "high": format_signed(high * 100)}
    )


def format_p_value(p_value: float | None) -> str:
    if p_value is None:
        return UNKNOWN
    return "< 0.0001" if p_value < 0.0001 else format_fixed(p_value, 4)


def format_money(amount: Decimal | None) -> str:
    return UNKNOWN if amount is None else format_fixed(amount)


def format_count(count: int) -> str:
    return number_format(count)


@dataclass(frozen=True)
class FigureLine:
    """One row of a table of figures: its label, then one cell per column."""

    label: Promise | str
    cells: list[str]

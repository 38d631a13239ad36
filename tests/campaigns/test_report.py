"""The report: counts per arm, attributed revenue, and lift statistics equal to an independent
computation with scipy."""

import math
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from campaigns.presenters.formatting import format_credit
from campaigns.presenters.report import report_context
from campaigns.services.report import Lift, campaign_report, lift_statistics
from tests.campaigns.support import report_case
from tests.factories import CampaignFactory, CustomerFactory, LinkClickFactory

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def scipy_lift(
    n1: int, x1: int, n2: int, x2: int
) -> tuple[float, float | None, float | None, float | None]:
    """Difference and its 95 % interval (unpooled, scipy's normal quantile; None when neither
    rate varies, the interval's standard error being 0); the p-value of
    Pearson's chi-square test on the 2x2 table without continuity correction, which is the
    pooled two-proportion z-test's (None when a column of the table is empty)."""
    p1, p2 = x1 / n1, x2 / n2
    z975 = stats.norm.ppf(0.975)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    p_value = None
    if 0 < x1 + x2 < n1 + n2:
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        p_value = float(stats.chi2_contingency(table, correction=False).pvalue)
    if not se:
        return p1 - p2, None, None, p_value
    return p1 - p2, p1 - p2 - z975 * se, p1 - p2 + z975 * se, p_value


@settings(max_examples=200, deadline=None)
@given(
    n1=st.integers(1, 100_000),
    n2=st.integers(1, 100_000),
    r1=st.floats(0, 1),
    r2=st.floats(0, 1),
)
def test_lift_statistics_equal_scipy(n1: int, n2: int, r1: float, r2: float) -> None:
    x1, x2 = round(n1 * r1), round(n2 * r2)
    lift = lift_statistics(treated=n1, treated_converted=x1, holdout=n2, holdout_converted=x2)
    expected = scipy_lift(n1, x1, n2, x2)
    assert lift.absolute == pytest.approx(expected[0], abs=1e-12)
    if expected[1] is None:
        assert (lift.ci_low, lift.ci_high) == (None, None)  # no variance: no interval
    else:
        assert lift.ci_low == pytest.approx(expected[1], abs=1e-9)
        assert lift.ci_high == pytest.approx(expected[2], abs=1e-9)
    if expected[3] is None:
        assert lift.p_value is None  # nobody's rate varies: no test
    else:
        assert lift.p_value == pytest.approx(expected[3], rel=1e-6, abs=1e-12)
    assert lift.relative == (pytest.approx(expected[0] / (x2 / n2)) if x2 else None)


def test_lift_when_nobody_converted_has_no_interval() -> None:
    lift = lift_statistics(treated=200, treated_converted=0, holdout=50, holdout_converted=0)
    assert lift == Lift(
        treated_rate=0.0,
        holdout_rate=0.0,
        absolute=0.0,
        relative=None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        incremental_revenue=Decimal("0.00"),
    )


def test_lift_when_somebody_converted_has_an_interval() -> None:
    lift = lift_statistics(treated=200, treated_converted=0, holdout=50, holdout_converted=1)
    spread = math.sqrt(0.02 * 0.98 / 50)
    assert lift.ci_low == pytest.approx(-0.02 - 1.959963984540054 * spread)
    assert lift.ci_high == pytest.approx(-0.02 + 1.959963984540054 * spread)


def test_lift_without_a_holdout_is_unknown() -> None:
    lift = lift_statistics(treated=10, treated_converted=3, holdout=0, holdout_converted=0)
    assert (lift.treated_rate, lift.holdout_rate, lift.absolute, lift.p_value) == (
        0.3,
        None,
        None,
        None,
    )


@pytest.mark.django_db
def test_report_counts_each_arm_and_variant() -> None:
    campaign = CampaignFactory(name="report", variants=["A", "B"])
    case = report_case(campaign, CustomerFactory.create_batch(9), at=T0)
    sent_b, held = case.sent_b, case.held

    report = campaign_report(campaign=campaign)
    total = report.total
    assert (total.audience, total.holdout, total.sent, total.failed, total.waiting) == (
        9,
        3,
        3,
        1,
        1,
    )
    assert total.suppressed == {"opted_out": 1, "capped": 1}
    assert total.deferred == {"quiet_hours": 1}
    assert (total.converted, total.clicked, total.clicks) == (2, 1, 3)
    assert total.revenue == Decimal("220.00")
    assert total.attributed_orders == Decimal("3.000000")
    assert total.revenue_per_recipient == Decimal("73.33")
    assert (report.holdout_converted, report.holdout_window_revenue) == (1, Decimal("30.00"))
    assert total.lift is not None
    assert total.lift.absolute == pytest.approx(2 / 3 - 1 / 2)
    # (220 / 3 - 30 / 2) * 3 = 175
    assert total.lift.incremental_revenue == Decimal("175.00")
    by_name = {arm.variant: arm for arm in report.variants}
    assert (by_name["A"].sent, by_name["A"].converted, by_name["A"].revenue) == (
        2,
        1,
        Decimal("100.00"),
    )
    assert (by_name["B"].sent, by_name["B"].converted, by_name["B"].revenue) == (
        1,
        1,
        Decimal("120.00"),
    )
    assert by_name["B"].failed == 1 and by_name["B"].clicks == 1
    assert by_name["A"].lift is not None and by_name["A"].lift.absolute == pytest.approx(0.0)
    assert len(sent_b) + len(held) == 3


@pytest.mark.django_db
def test_clicks_on_a_shared_text_are_not_counted_as_a_recipient_s() -> None:
    campaign = CampaignFactory(name="report", variants=["A"])
    variant = campaign.variants.get()
    LinkClickFactory(campaign=campaign, variant=variant)  # a bulk text: no delivery known

    report = campaign_report(campaign=campaign)
    arm = report.variants[0]
    assert (report.total.clicked, report.total.clicks, report.total.shared_clicks) == (0, 1, 1)
    assert (arm.clicked, arm.clicks, arm.shared_clicks) == (0, 1, 1)
    with translation.override("en"):
        lines = {str(line.label): line.cells for line in report_context(report)["figure_lines"]}
    assert lines["Recipients who clicked"] == ["0", "0"]
    shared = "1 (1 on links the whole message shared: clicker unknown)"
    assert lines["Clicks"] == [shared, shared]


@pytest.mark.parametrize(
    ("credit", "shown"),
    [
        (Decimal("3.000000"), "3"),
        (Decimal("2.500000"), "2.5"),
        (Decimal("0.333333"), "0.33"),
        (Decimal("30.000000"), "30"),
        (Decimal("0"), "0"),
    ],
)
def test_attributed_orders_read_as_a_count_of_orders(credit: Decimal, shown: str) -> None:
    with translation.override("en"):
        assert format_credit(credit) == shown

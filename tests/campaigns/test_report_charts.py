"""The report's charts as data for ECharts (campaigns.presenters.charts): rates in percent and
lifts in percentage points, rounded half up to two decimals, each with its label."""

from django.utils import translation

from campaigns.presenters.charts import lift_chart, rate_chart
from campaigns.services.report import ArmReport, Lift


def _lift(absolute: float, low: float | None, high: float | None) -> Lift:
    return Lift(
        treated_rate=None,
        holdout_rate=None,
        absolute=absolute,
        relative=None,
        ci_low=low,
        ci_high=high,
        p_value=None,
        incremental_revenue=None,
    )


def test_the_rate_chart_gives_each_arm_its_rate_in_percent_and_marks_the_holdout() -> None:
    with translation.override("en"):
        chart = rate_chart([("A", 0.123456, False), ("B", None, False), ("Holdout", 0.005, True)])
    assert chart == {
        "title": "Conversion rate",
        "names": ["A", "B", "Holdout"],
        "values": [12.35, None, 0.5],
        "labels": ["12.35%", "—", "0.50%"],
        "holdout": [False, False, True],
        "axis_label": "Conversion rate (%)",
    }


def test_the_lift_chart_gives_each_known_lift_with_its_interval_in_points() -> None:
    arms = [
        ("All variants", ArmReport(variant=None, lift=_lift(0.1, 0.04567, 0.15433))),
        ("A", ArmReport(variant="A", lift=None)),
        ("B", ArmReport(variant="B", lift=_lift(-0.02, -0.081, 0.041))),
    ]
    with translation.override("zh-hans"):
        chart = lift_chart(arms)
    assert chart == {
        "title": "相对对照组的提升",
        "names": ["All variants", "A", "B"],
        "estimates": [[4.57, 10.0, 15.43], None, [-8.1, -2.0, 4.1]],
        "labels": [
            "+10.00 个百分点 [+4.57, +15.43]",
            "—",
            "-2.00 个百分点 [-8.10, +4.10]",
        ],
        "axis_label": "提升（百分点），含 95% 置信区间",
    }


def test_the_lift_chart_leaves_out_a_lift_without_an_interval() -> None:
    arms = [("A", ArmReport(variant="A", lift=_lift(0.0, None, None)))]  # nobody converted
    with translation.override("en"):
        chart = lift_chart(arms)
    assert (chart["estimates"], chart["labels"]) == ([None], ["—"])

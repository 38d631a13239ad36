"""A model fit's charts as data for ECharts (segments.presenters.charts): the calibration
chart's lines (the baseline a line like the model's, never an area) and the clusters' sizes."""

from django.utils import translation

from segments.presenters.charts import calibration_chart, cluster_chart


def test_calibration_chart_gives_each_series_its_points_on_the_probability_scale() -> None:
    with translation.override("zh-hans"):
        chart = calibration_chart(
            title="校准",
            x_label="预测",
            y_label="实际",
            series=[
                ("本模型", "model", [{"predicted": 0.123456, "observed": 0.2}]),
                (
                    "仅看最近消费",
                    "baseline",
                    [{"predicted": 0.3, "observed": 0.25}, {"predicted": 0.7, "observed": 0.9}],
                ),
            ],
        )
    assert chart == {
        "title": "校准",
        "x_label": "预测",
        "y_label": "实际",
        "bound": 1.0,
        "diagonal_name": "完全校准",
        "series": [
            {"name": "本模型", "role": "model", "points": [[0.1235, 0.2]]},
            {"name": "仅看最近消费", "role": "baseline", "points": [[0.3, 0.25], [0.7, 0.9]]},
        ],
    }


def test_calibration_chart_of_counts_reaches_their_largest_value() -> None:
    chart = calibration_chart(
        title="t",
        x_label="x",
        y_label="y",
        series=[("m", "model", [{"predicted": 1.5, "observed": 2.25}])],
    )
    assert chart is not None and chart["bound"] == 2.25


def test_no_calibration_chart_without_bins() -> None:
    assert (
        calibration_chart(title="t", x_label="x", y_label="y", series=[("m", "model", [])]) is None
    )


def test_cluster_chart_names_each_cluster_by_its_description() -> None:
    clusters = [
        {"number": 1, "description": "高频复购", "size": 120, "share": 0.6},
        {"number": 2, "description": "", "size": 80, "share": 0.4},
    ]
    with translation.override("zh-hans"):
        chart = cluster_chart(clusters)
    assert chart == {
        "title": "各分群的客户数",
        "names": ["#1 高频复购", "#2"],
        "sizes": [120, 80],
        "shares": [60.0, 40.0],
        "axis_label": "客户数",
    }

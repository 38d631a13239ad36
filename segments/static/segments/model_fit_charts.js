/* A model fit's charts (segments.presenters.charts), drawn with Apache ECharts from the data of
   json_script elements: the calibration chart (predicted against observed per bin, one line per
   model, the baseline in grey, the dashed diagonal of perfect calibration) and the customers
   per cluster of a behaviour clustering. */
"use strict";

(function () {
    var MODEL_COLOUR = "#417690";
    var BASELINE_COLOUR = "#9e9e9e";

    function drawCalibration(target, data) {
        var colour = window.crmCharts.textColour();
        var quiet = window.crmCharts.quietColour();
        var lines = data.series.map(function (series) {
            var tint = series.role === "baseline" ? BASELINE_COLOUR : MODEL_COLOUR;
            return {
                name: series.name,
                type: "line",
                data: series.points,
                symbolSize: 6,
                lineStyle: {color: tint, width: 2},
                itemStyle: {color: tint}
            };
        });
        lines.push({
            name: data.diagonal_name,
            type: "line",
            data: [[0, 0], [data.bound, data.bound]],
            symbol: "none",
            silent: true,
            lineStyle: {color: quiet, type: "dashed", width: 1},
            itemStyle: {color: quiet},
            tooltip: {show: false}
        });
        window.crmCharts.draw(target, {
            grid: {left: 16, right: 24, top: 64, bottom: 40, containLabel: true},
            legend: {top: 0, textStyle: {color: colour}},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(
                        item.seriesName + "：" + item.value[0] + " → " + item.value[1]
                    );
                }
            },
            xAxis: {
                type: "value", min: 0, max: data.bound, name: data.x_label,
                nameLocation: "middle", nameGap: 28, axisLabel: {color: colour}
            },
            yAxis: {
                type: "value", min: 0, max: data.bound, name: data.y_label,
                nameLocation: "end", nameTextStyle: {color: colour, align: "left"},
                axisLabel: {color: colour}
            },
            series: lines
        });
    }

    function drawClusters(target, data) {
        var colour = window.crmCharts.textColour();
        window.crmCharts.draw(target, {
            grid: {left: 8, right: 72, top: 8, bottom: 32, containLabel: true},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(
                        data.names[item.dataIndex] + "：" + item.value + "（" + data.shares[item.dataIndex] + "%）"
                    );
                }
            },
            xAxis: {type: "value", name: data.axis_label, nameLocation: "middle", nameGap: 24, axisLabel: {color: colour}},
            yAxis: {type: "category", inverse: true, data: data.names, axisLabel: {color: colour, fontSize: 12, width: 260, overflow: "truncate"}},
            series: [{
                type: "bar",
                barMaxWidth: 22,
                itemStyle: {color: MODEL_COLOUR},
                label: {
                    show: true,
                    position: "right",
                    color: colour,
                    formatter: function (item) {
                        return data.shares[item.dataIndex] + "%";
                    }
                },
                data: data.sizes
            }]
        });
    }

    document.addEventListener("DOMContentLoaded", function () {
        var calibration = document.getElementById("calibration-chart");
        if (calibration) {
            drawCalibration(calibration, window.crmCharts.readData(calibration.dataset.source));
        }
        var clusters = document.getElementById("cluster-chart");
        if (clusters) {
            drawClusters(clusters, window.crmCharts.readData(clusters.dataset.source));
        }
    });
})();

/* The report's charts (campaigns.presenters.charts), drawn with Apache ECharts from the data of
   each figure's json_script element: bars of conversion rate per arm (the holdout in grey), and
   each arm's lift against the holdout as a point with its 95 % interval as a whisker. */
"use strict";

(function () {
    var ARM_COLOUR = "#417690";
    var HOLDOUT_COLOUR = "#9e9e9e";

    function rateOption(data, colour) {
        return {
            grid: {left: 8, right: 72, top: 8, bottom: 28, containLabel: true},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(data.names[item.dataIndex] + "：" + data.labels[item.dataIndex]);
                }
            },
            xAxis: {type: "value", name: data.axis_label, nameLocation: "middle", nameGap: 28, min: 0, axisLabel: {color: colour, formatter: "{value}%"}},
            yAxis: {type: "category", inverse: true, data: data.names, axisLabel: {color: colour, fontSize: 13}},
            series: [{
                type: "bar",
                barMaxWidth: 24,
                label: {
                    show: true,
                    position: "right",
                    color: colour,
                    formatter: function (item) {
                        return data.labels[item.dataIndex];
                    }
                },
                data: data.values.map(function (value, index) {
                    return {value: value === null ? 0 : value, itemStyle: {color: data.holdout[index] ? HOLDOUT_COLOUR : ARM_COLOUR}};
                })
            }]
        };
    }

    function liftOption(data, colour) {
        var known = data.estimates.map(function (estimate, index) {
            return estimate === null ? null : [estimate[0], estimate[1], estimate[2], index];
        }).filter(function (row) {
            return row !== null;
        });
        var largest = Math.max.apply(null, known.map(function (row) {
            return Math.max(Math.abs(row[0]), Math.abs(row[2]));
        }).concat([1]));
        // Round ticks (a step of 1, 2, 5, 10, 20, 25, 50 or 100 points, at most four on each
        // side) and a bound as far on either side of 0, so that 0 stays in the middle.
        var step = [1, 2, 5, 10, 20, 25, 50, 100].find(function (candidate) {
            return candidate >= largest / 4;
        }) || 100;
        var bound = Math.ceil(largest / step) * step;
        function tooltip(item) {
            var index = item.value[3];
            return echarts.format.encodeHTML(data.names[index] + "：" + data.labels[index]);
        }
        return {
            grid: {left: 8, right: 24, top: 8, bottom: 28, containLabel: true},
            tooltip: {trigger: "item", formatter: tooltip},
            xAxis: {
                type: "value",
                name: data.axis_label,
                nameLocation: "middle",
                nameGap: 28,
                min: -bound,
                max: bound,
                interval: step,
                axisLabel: {color: colour}
            },
            yAxis: {type: "category", inverse: true, data: data.names, axisLabel: {color: colour, fontSize: 13}},
            series: [
                {
                    // The whisker: the interval with a cap at each end.
                    type: "custom",
                    data: known.map(function (row) {
                        return [row[0], row[1], row[2], row[3]];
                    }),
                    encode: {x: [0, 2], y: 3},
                    renderItem: function (params, api) {
                        var low = api.coord([api.value(0), api.value(3)]);
                        var high = api.coord([api.value(2), api.value(3)]);
                        var cap = 6;
                        var style = {stroke: colour, lineWidth: 2};
                        return {
                            type: "group",
                            children: [
                                {type: "line", shape: {x1: low[0], y1: low[1], x2: high[0], y2: high[1]}, style: style},
                                {type: "line", shape: {x1: low[0], y1: low[1] - cap, x2: low[0], y2: low[1] + cap}, style: style},
                                {type: "line", shape: {x1: high[0], y1: high[1] - cap, x2: high[0], y2: high[1] + cap}, style: style}
                            ]
                        };
                    },
                    z: 1
                },
                {
                    type: "scatter",
                    symbolSize: 10,
                    itemStyle: {color: ARM_COLOUR, borderColor: colour},
                    data: known.map(function (row) {
                        return [row[1], row[3], row[0], row[3]];
                    }),
                    encode: {x: 0, y: 1},
                    markLine: {
                        silent: true,
                        symbol: "none",
                        lineStyle: {color: colour, type: "dashed"},
                        label: {show: false},
                        data: [{xAxis: 0}]
                    },
                    z: 2
                }
            ]
        };
    }

    function drawAll() {
        var colour = window.crmCharts.textColour();
        document.querySelectorAll(".campaign-chart-canvas").forEach(function (target) {
            var data = window.crmCharts.readData(target.dataset.source);
            if (!data) {
                return;
            }
            var option = target.dataset.chart === "lift" ? liftOption(data, colour) : rateOption(data, colour);
            window.crmCharts.draw(target, option);
        });
    }

    document.addEventListener("DOMContentLoaded", drawAll);
})();

/* The campaign's pages: the dry run's funnel and the report's charts (Apache ECharts, vendored)
   drawn from the data of json_script, and the progress panel asking for the campaign's progress
   again every few seconds while the campaign moves, without reloading the page. */
"use strict";

(function () {
    // The steps from the audience down, darkest first; those to send in green.
    var STEP_COLOURS = ["#205067", "#2f6580", "#417893", "#5b8ca5", "#7aa3b8", "#98b9ca"];

    function textColour() {
        return getComputedStyle(document.documentElement).getPropertyValue("--body-fg").trim() || "#333";
    }

    function drawFunnel() {
        var source = document.getElementById("campaign-funnel-data");
        var target = document.getElementById("campaign-funnel-chart");
        if (!source || !target || typeof echarts === "undefined") {
            return;
        }
        var data = JSON.parse(source.textContent);
        var chart = echarts.init(target, null, {renderer: "svg"});
        var last = data.values.length - 1;
        chart.setOption({
            animation: false,
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(data.names[item.dataIndex] + ": " + data.labels[item.dataIndex]);
                }
            },
            series: [{
                name: data.title,
                type: "funnel",
                sort: "none",
                min: 0,
                max: Math.max.apply(null, data.values.concat([1])),
                minSize: "2%",
                gap: 2,
                left: 8,
                right: 8,
                top: 8,
                bottom: 8,
                label: {
                    show: true,
                    position: "inside",
                    color: "#fff",
                    textBorderColor: "rgba(0,0,0,0.45)",
                    textBorderWidth: 2,
                    formatter: function (item) {
                        return data.names[item.dataIndex] + "  " + data.labels[item.dataIndex];
                    }
                },
                labelLine: {show: false},
                data: data.values.map(function (value, index) {
                    return {
                        name: data.names[index],
                        value: value,
                        itemStyle: {color: index === last ? "#52c41a" : STEP_COLOURS[index % STEP_COLOURS.length]}
                    };
                })
            }],
            textStyle: {color: textColour()}
        });
        window.addEventListener("resize", function () {
            chart.resize();
        });
    }

    // The height of a chart of one row per arm: its rows, and its axis.
    var ROW_HEIGHT = 36;
    var AXIS_HEIGHT = 48;

    function rateOption(data, colour) {
        return {
            grid: {left: 8, right: 96, top: 8, bottom: 8, containLabel: true},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(data.names[item.dataIndex] + ": " + data.labels[item.dataIndex]);
                }
            },
            xAxis: {type: "value", min: 0, axisLabel: {color: colour, formatter: "{value}%"}},
            yAxis: {type: "category", inverse: true, data: data.names, axisLabel: {color: colour}},
            series: [{
                type: "bar",
                barMaxWidth: 22,
                label: {
                    show: true,
                    position: "right",
                    color: colour,
                    formatter: function (item) {
                        return data.labels[item.dataIndex];
                    }
                },
                data: data.values.map(function (value, index) {
                    return {value: value, itemStyle: {color: data.is_holdout[index] ? "#8c8c8c" : "#417690"}};
                })
            }]
        };
    }

    // The smallest of 1, 2 or 5 times a power of ten above `value`, with a little room.
    function niceBound(value) {
        var wanted = value * 1.05;
        var power = Math.pow(10, Math.floor(Math.log10(wanted)));
        var steps = [1, 2, 5, 10];
        for (var index = 0; index < steps.length; index += 1) {
            if (steps[index] * power >= wanted) {
                return steps[index] * power;
            }
        }
        return 10 * power;
    }

    function liftOption(data, colour) {
        var ends = data.lows.concat(data.highs).filter(function (value) {
            return value !== null;
        });
        var bound = niceBound(Math.max.apply(null, ends.map(Math.abs).concat([1])));
        var whiskers = [];
        data.lows.forEach(function (low, index) {
            if (low !== null) {
                whiskers.push([index, low, data.highs[index]]);
            }
        });
        return {
            grid: {left: 8, right: 16, top: 8, bottom: 8, containLabel: true},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    var index = item.seriesType === "custom" ? item.value[0] : item.value[1];
                    return echarts.format.encodeHTML(data.names[index] + ": " + data.labels[index]);
                }
            },
            xAxis: {
                type: "value",
                min: -bound,
                max: bound,
                axisLabel: {color: colour, formatter: "{value} " + data.axis_label}
            },
            yAxis: {type: "category", inverse: true, data: data.names, axisLabel: {color: colour}},
            series: [
                {
                    type: "custom",
                    encode: {x: [1, 2], y: 0},
                    data: whiskers,
                    renderItem: function (params, api) {
                        var low = api.coord([api.value(1), api.value(0)]);
                        var high = api.coord([api.value(2), api.value(0)]);
                        var cap = api.size([0, 1])[1] * 0.15;
                        var style = {stroke: colour, lineWidth: 2};
                        return {
                            type: "group",
                            children: [
                                {type: "line", shape: {x1: low[0], y1: low[1], x2: high[0], y2: high[1]}, style: style},
                                {type: "line", shape: {x1: low[0], y1: low[1] - cap, x2: low[0], y2: low[1] + cap}, style: style},
                                {type: "line", shape: {x1: high[0], y1: high[1] - cap, x2: high[0], y2: high[1] + cap}, style: style}
                            ]
                        };
                    }
                },
                {
                    type: "scatter",
                    symbolSize: 11,
                    itemStyle: {color: "#417690", borderColor: colour},
                    label: {
                        show: true,
                        position: "top",
                        color: colour,
                        formatter: function (item) {
                            return data.labels[item.value[1]];
                        }
                    },
                    data: data.estimates.map(function (value, index) {
                        return value === null ? null : [value, index];
                    }).filter(function (point) {
                        return point !== null;
                    }),
                    markLine: {
                        silent: true,
                        symbol: "none",
                        lineStyle: {color: colour, type: "dashed"},
                        label: {show: false},
                        data: [{xAxis: 0}]
                    }
                }
            ]
        };
    }

    function drawReportCharts() {
        if (typeof echarts === "undefined") {
            return;
        }
        document.querySelectorAll(".campaign-chart-canvas").forEach(function (target) {
            var data = JSON.parse(document.getElementById(target.getAttribute("data-chart-data")).textContent);
            target.style.height = (data.names.length * ROW_HEIGHT + AXIS_HEIGHT) + "px";
            var chart = echarts.init(target, null, {renderer: "svg"});
            var colour = textColour();
            var option = data.kind === "lift" ? liftOption(data, colour) : rateOption(data, colour);
            option.animation = false;
            chart.setOption(option);
            window.addEventListener("resize", function () {
                chart.resize();
            });
        });
    }

    function valueAt(data, path) {
        return path.split(".").reduce(function (value, key) {
            return value == null ? value : value[key];
        }, data);
    }

    function showProgress(panel, data) {
        document.querySelectorAll("[data-progress]").forEach(function (element) {
            var value = valueAt(data, element.getAttribute("data-progress"));
            element.textContent = value == null ? "" : value;
        });
        var state = panel.querySelector(".campaign-state");
        if (state) {
            state.className = "campaign-state campaign-state-" + data.state;
        }
        var bar = panel.querySelector(".campaign-progress-bar");
        if (bar) {
            bar.setAttribute("aria-valuenow", data.done_percent);
            bar.querySelector(".campaign-progress-done").style.width = data.done_percent + "%";
        }
        panel.setAttribute("data-live", data.is_live ? "true" : "false");
    }

    function watchProgress(panel) {
        var url = panel.getAttribute("data-progress-url");
        var wait = parseInt(panel.getAttribute("data-poll-milliseconds"), 10) || 4000;

        function ask() {
            if (panel.getAttribute("data-live") !== "true") {
                return;
            }
            fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
                .then(function (response) {
                    if (!response.ok) {
                        throw new Error(response.status);
                    }
                    return response.json();
                })
                .then(function (data) {
                    showProgress(panel, data);
                    window.setTimeout(ask, wait);
                })
                .catch(function () {
                    window.setTimeout(ask, wait * 3);  // a hiccup: ask again, less often
                });
        }

        window.setTimeout(ask, wait);
    }

    document.addEventListener("DOMContentLoaded", function () {
        drawFunnel();
        drawReportCharts();
        document.querySelectorAll(".campaign-progress[data-progress-url]").forEach(watchProgress);
    });
})();

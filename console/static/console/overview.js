/* The overview's charts (Apache ECharts, vendored), drawn from the data the page gives in
   json_script elements. A bar of the lifecycle chart opens the customers in that state, a
   flow of the lifecycle Sankey the customers who moved so, a bar of the RFM chart the tier's. */
"use strict";

(function () {
    // One colour per lifecycle state, the same whatever the order or the language.
    var STATE_COLOURS = {
        prospect: "#8c8c8c",
        new: "#13c2c2",
        active: "#52c41a",
        sleeping: "#faad14",
        churned: "#f5222d",
        reactivated: "#1677ff"
    };

    var readData = window.crmCharts.readData;
    var textColour = window.crmCharts.textColour;

    function drawLifecycle() {
        var data = readData("overview-lifecycle-data");
        var target = document.getElementById("overview-lifecycle-chart");
        if (!data || !target) {
            return;
        }
        var chart = echarts.init(target, null, {renderer: "svg"});
        var colour = textColour();
        chart.setOption({
            animation: false,
            grid: {left: 8, right: 8, top: 28, bottom: 8, containLabel: true},
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    return echarts.format.encodeHTML(data.tooltips[item.dataIndex]);
                }
            },
            xAxis: {
                type: "category",
                data: data.labels,
                axisLabel: {color: colour, fontSize: 13},
                axisTick: {alignWithLabel: true}
            },
            yAxis: {type: "value", axisLabel: {color: colour}},
            series: [{
                name: data.series_name,
                type: "bar",
                barMaxWidth: 56,
                cursor: "pointer",
                label: {
                    show: true,
                    position: "top",
                    color: colour,
                    formatter: function (item) {
                        return data.count_labels[item.dataIndex];
                    }
                },
                data: data.counts.map(function (count, index) {
                    return {value: count, itemStyle: {color: STATE_COLOURS[data.states[index]]}};
                })
            }]
        });
        chart.on("click", function (event) {
            var url = data.urls[event.dataIndex];
            if (url) {
                window.location.assign(url);
            }
        });
        window.addEventListener("resize", function () {
            chart.resize();
        });
    }

    function openOnClick(chart, urlOf) {
        chart.on("click", function (event) {
            var url = urlOf(event);
            if (url) {
                window.location.assign(url);
            }
        });
        window.addEventListener("resize", function () {
            chart.resize();
        });
    }

    // The flow between lifecycle states: where customers came from on the left, where they
    // went on the right (nodes named apart by side, as a Sankey may have no cycle).
    function drawLifecycleFlow() {
        var data = readData("overview-lifecycle-flow-data");
        var target = document.getElementById("overview-lifecycle-flow-chart");
        if (!data || !target) {
            return;
        }
        var chart = echarts.init(target, null, {renderer: "svg"});
        var colour = textColour();
        chart.setOption({
            animation: false,
            tooltip: {
                trigger: "item",
                formatter: function (item) {
                    var text = item.dataType === "edge" ? item.data.tooltip : item.data.label;
                    return echarts.format.encodeHTML(text);
                }
            },
            series: [{
                type: "sankey",
                left: 8,
                right: 72,
                top: 8,
                bottom: 8,
                nodeGap: 12,
                draggable: false,
                cursor: "pointer",
                layoutIterations: 0,
                emphasis: {focus: "adjacency"},
                label: {
                    color: colour,
                    fontSize: 13,
                    formatter: function (item) {
                        return item.data.label;
                    }
                },
                lineStyle: {color: "source", opacity: 0.35, curveness: 0.5},
                data: data.nodes.map(function (node) {
                    return {
                        name: node.name,
                        label: node.label,
                        itemStyle: {color: STATE_COLOURS[node.state]}
                    };
                }),
                links: data.links
            }]
        });
        openOnClick(chart, function (event) {
            return event.dataType === "edge" ? event.data.url : null;
        });
    }

    // The RFM tiers: each tier's share of the customers next to its share of the revenue.
    function drawRfm() {
        var data = readData("overview-rfm-data");
        var target = document.getElementById("overview-rfm-chart");
        if (!data || !target) {
            return;
        }
        var chart = echarts.init(target, null, {renderer: "svg"});
        var colour = textColour();
        var percent = function (value) {
            return value + "%";
        };
        chart.setOption({
            animation: false,
            color: ["#1677ff", "#faad14"],
            legend: {top: 0, textStyle: {color: colour}},
            grid: {left: 8, right: 24, top: 32, bottom: 8, containLabel: true},
            tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, valueFormatter: percent},
            xAxis: {type: "value", axisLabel: {color: colour, formatter: "{value}%"}},
            yAxis: {
                type: "category",
                inverse: true,
                data: data.labels,
                axisLabel: {color: colour, fontSize: 13}
            },
            series: [
                {name: data.series[0], type: "bar", cursor: "pointer", data: data.customer_shares},
                {name: data.series[1], type: "bar", cursor: "pointer", data: data.revenue_shares}
            ]
        });
        openOnClick(chart, function (event) {
            return data.urls[event.dataIndex];
        });
    }

    // Retention: one curve per cohort, the share buying again in each month after the first.
    function drawRetention() {
        var data = readData("overview-retention-data");
        var target = document.getElementById("overview-retention-chart");
        if (!data || !target) {
            return;
        }
        var chart = echarts.init(target, null, {renderer: "svg"});
        var colour = textColour();
        chart.setOption({
            animation: false,
            legend: {type: "scroll", top: 0, textStyle: {color: colour}},
            grid: {left: 8, right: 24, top: 36, bottom: 8, containLabel: true},
            tooltip: {
                trigger: "axis",
                valueFormatter: function (value) {
                    return value + "%";
                }
            },
            xAxis: {
                type: "category",
                boundaryGap: false,
                data: data.months,
                axisLabel: {color: colour}
            },
            yAxis: {type: "value", axisLabel: {color: colour, formatter: "{value}%"}},
            series: data.series.map(function (cohort) {
                return {name: cohort.name, type: "line", symbolSize: 6, data: cohort.rates};
            })
        });
        window.addEventListener("resize", function () {
            chart.resize();
        });
    }

    document.addEventListener("DOMContentLoaded", drawLifecycle);
    document.addEventListener("DOMContentLoaded", drawLifecycleFlow);
    document.addEventListener("DOMContentLoaded", drawRfm);
    document.addEventListener("DOMContentLoaded", drawRetention);
})();

/* Acquisition by channel (stacked bars), pinned segments' sizes (lines, a click opens the
   segment), campaigns' lift with its interval, and contact pressure against the frequency
   caps (the caps as mark lines). */
(function () {
    // One colour per source channel, the same whatever the order or the language.
    var CHANNEL_COLOURS = {
        douyin: "#1d1d1f",
        kuaishou: "#ff7a00",
        wechat_channels: "#fa8c16",
        xiaohongshu: "#ff2442",
        bilibili: "#00a1d6",
        miniprogram: "#07c160",
        offline_store: "#722ed1",
        wecom: "#1677ff",
        other: "#8c8c8c",
        "": "#bfbfbf"
    };
    var CAP_COLOUR = "#cf1322";

    var readData = window.crmCharts.readData;
    var textColour = window.crmCharts.textColour;

    function draw(targetId, dataId, option) {
        var data = readData(dataId);
        var target = document.getElementById(targetId);
        if (!data || !target) {
            return null;
        }
        var chart = echarts.init(target, null, {renderer: "svg"});
        chart.setOption(option(data, textColour()));
        window.addEventListener("resize", function () {
            chart.resize();
        });
        return {chart: chart, data: data};
    }

    function axes(colour, categories, extra) {
        return {
            xAxis: Object.assign({type: "category", data: categories, axisLabel: {color: colour}}, extra || {}),
            yAxis: {type: "value", minInterval: 1, axisLabel: {color: colour}}
        };
    }

    function drawAcquisition() {
        draw("overview-acquisition-chart", "overview-acquisition-data", function (data, colour) {
            return Object.assign({
                animation: false,
                grid: {left: 8, right: 8, top: 36, bottom: 8, containLabel: true},
                legend: {top: 0, textStyle: {color: colour}},
                tooltip: {trigger: "axis", axisPointer: {type: "shadow"}}
            }, axes(colour, data.buckets), {
                series: data.series.map(function (series) {
                    return {
                        name: series.name,
                        type: "bar",
                        stack: "customers",
                        barMaxWidth: 48,
                        itemStyle: {color: CHANNEL_COLOURS[series.channel]},
                        data: series.counts
                    };
                })
            });
        });
    }

    function drawPinned() {
        var drawn = draw("overview-pinned-chart", "overview-pinned-data", function (data, colour) {
            return Object.assign({
                animation: false,
                grid: {left: 8, right: 32, top: 36, bottom: 8, containLabel: true},
                legend: {top: 0, textStyle: {color: colour}},
                tooltip: {trigger: "axis"}
            }, axes(colour, data.days, {boundaryGap: false}), {
                series: data.lines.map(function (line) {
                    var known = line.sizes.filter(function (size) { return size !== null; });
                    return {
                        name: line.name,
                        type: "line",
                        cursor: "pointer",
                        // A segment refreshed on one day only (just created) is a dot.
                        showSymbol: known.length < 2,
                        symbolSize: known.length < 2 ? 8 : 4,
                        triggerLineEvent: true,
                        data: line.sizes
                    };
                })
            });
        });
        if (drawn) {
            drawn.chart.on("click", function (event) {
                window.location.assign(drawn.data.lines[event.seriesIndex].url);
            });
        }
    }

    function drawCampaigns() {
        var drawn = draw("overview-campaigns-chart", "overview-campaigns-data", function (data, colour) {
            return {
                animation: false,
                grid: {left: 8, right: 24, top: 16, bottom: 28, containLabel: true},
                tooltip: {
                    trigger: "item",
                    formatter: function (item) {
                        return echarts.format.encodeHTML(data.tooltips[item.dataIndex]);
                    }
                },
                xAxis: {
                    type: "value",
                    name: data.axis_name,
                    nameLocation: "middle",
                    nameGap: 24,
                    axisLabel: {color: colour}
                },
                yAxis: {type: "category", data: data.names, inverse: true, axisLabel: {color: colour}},
                series: [{
                    // The interval as a whisker from its low to its high end.
                    type: "custom",
                    renderItem: function (params, api) {
                        if (data.low[params.dataIndex] === null) {
                            return null;  // no interval known: nobody converted, say
                        }
                        var low = api.coord([api.value(0), api.value(2)]);
                        var high = api.coord([api.value(1), api.value(2)]);
                        var half = 6;
                        var style = {stroke: colour, lineWidth: 1.5};
                        return {
                            type: "group",
                            children: [
                                {type: "line", shape: {x1: low[0], y1: low[1], x2: high[0], y2: high[1]}, style: style},
                                {type: "line", shape: {x1: low[0], y1: low[1] - half, x2: low[0], y2: low[1] + half}, style: style},
                                {type: "line", shape: {x1: high[0], y1: high[1] - half, x2: high[0], y2: high[1] + half}, style: style}
                            ]
                        };
                    },
                    encode: {x: [0, 1], y: 2},
                    data: data.low.map(function (low, index) {
                        return [low, data.high[index], index];
                    })
                }, {
                    type: "scatter",
                    symbolSize: 12,
                    cursor: "pointer",
                    itemStyle: {color: "#1677ff"},
                    data: data.lift.map(function (lift, index) {
                        return [lift, index];
                    }),
                    markLine: {
                        silent: true,
                        symbol: "none",
                        lineStyle: {color: colour, type: "dashed"},
                        label: {show: false},
                        data: [{xAxis: 0}]
                    }
                }]
            };
        });
        if (drawn) {
            drawn.chart.on("click", function (event) {
                window.location.assign(drawn.data.urls[event.dataIndex]);
            });
        }
    }

    // The caps as lines across the chart: at a number of messages on the value axis, or at
    // its bar on the axis of categories (1 message is the first bar; a cap past the last bar
    // is not drawn).
    function capLines(caps, axis, categories) {
        var shown = caps.filter(function (cap) {
            return axis === "yAxis" || cap.weekly <= categories;
        });
        return {
            silent: true,
            symbol: "none",
            lineStyle: {color: CAP_COLOUR, type: "dashed"},
            label: {
                color: CAP_COLOUR,
                position: axis === "yAxis" ? "insideEndTop" : "end",
                formatter: "{b}"
            },
            data: shown.map(function (cap) {
                var line = {name: cap.name};
                line[axis] = axis === "xAxis" ? cap.weekly - 1 : cap.weekly;
                return line;
            })
        };
    }

    function drawPressure() {
        draw("overview-pressure-weeks-chart", "overview-pressure-data", function (data, colour) {
            return Object.assign({
                animation: false,
                grid: {left: 8, right: 16, top: 36, bottom: 8, containLabel: true},
                title: {text: data.per_customer_name, textStyle: {color: colour, fontSize: 13}},
                tooltip: {trigger: "axis"},
                yAxis: {
                    type: "value",
                    axisLabel: {color: colour},
                    // Up to the highest cap, so that its line shows however few the messages.
                    max: function (extent) {
                        return Math.max.apply(null, [extent.max].concat(data.caps.map(function (cap) {
                            return cap.weekly;
                        })));
                    }
                }
            }, {xAxis: axes(colour, data.weeks).xAxis}, {
                series: [{
                    name: data.per_customer_name,
                    type: "bar",
                    barMaxWidth: 40,
                    itemStyle: {color: "#1677ff"},
                    data: data.per_customer,
                    markLine: capLines(data.caps, "yAxis", 0)
                }]
            });
        });
        draw("overview-pressure-received-chart", "overview-pressure-data", function (data, colour) {
            return Object.assign({
                animation: false,
                grid: {left: 8, right: 16, top: 48, bottom: 28, containLabel: true},
                title: {text: data.received_name, textStyle: {color: colour, fontSize: 13}},
                tooltip: {trigger: "axis", axisPointer: {type: "shadow"}}
            }, axes(colour, data.received_labels, {
                name: data.received_axis,
                nameLocation: "middle",
                nameGap: 24,
                nameTextStyle: {color: colour}
            }), {
                series: [{
                    name: data.received_name,
                    type: "bar",
                    barMaxWidth: 40,
                    itemStyle: {color: "#faad14"},
                    data: data.received,
                    markLine: capLines(data.caps, "xAxis", data.received_labels.length)
                }]
            });
        });
    }

    document.addEventListener("DOMContentLoaded", function () {
        drawAcquisition();
        drawPinned();
        drawCampaigns();
        drawPressure();
    });
})();

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

    function readData(id) {
        var element = document.getElementById(id);
        return element ? JSON.parse(element.textContent) : null;
    }

    function textColour() {
        return getComputedStyle(document.documentElement).getPropertyValue("--body-fg").trim() || "#333";
    }

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

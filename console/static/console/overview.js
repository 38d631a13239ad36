/* The overview's charts (Apache ECharts, vendored), drawn from the data the page gives in
   json_script elements. A bar of the lifecycle chart opens the customers in that state. */
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

    document.addEventListener("DOMContentLoaded", drawLifecycle);
})();

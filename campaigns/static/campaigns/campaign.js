/* The campaign's pages: the dry run's funnel (Apache ECharts, vendored) drawn from the data of
   json_script, and the progress panel asking for the campaign's progress
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
        document.querySelectorAll(".campaign-progress[data-progress-url]").forEach(watchProgress);
    });
})();

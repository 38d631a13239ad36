/* The charts of a segment's portrait (Apache ECharts, vendored): per dimension, horizontal
   bars of the segment's share next to all customers', the TGI on the segment's bar, and the
   bars of a TGI above the threshold in the highlight colour. Drawn from the page's json_script
   data (console.portrait); `window.segmentPortrait.draw(root, data)` draws the same data into
   the `.portrait-chart[data-dimension]` elements of any other page (the builder's). */
"use strict";

(function () {
    var SEGMENT_COLOUR = "#1677ff";
    var HIGH_COLOUR = "#d4380d";
    var BASE_COLOUR = "#bfbfbf";

    var textColour = window.crmCharts.textColour;

    function drawDimension(target, dimension, data) {
        var chart = echarts.init(target, null, {renderer: "svg"});
        var colour = textColour();
        var values = dimension.chart;
        // Top to bottom in table order: ECharts lists categories from the bottom up.
        var order = values.labels.map(function (_, index) { return index; }).reverse();
        function pick(list) {
            return order.map(function (index) { return list[index]; });
        }
        var tgis = pick(values.tgis);
        var barLabels = pick(values.bar_labels);
        var shareLabels = pick(values.share_labels);
        var baseLabels = pick(values.base_share_labels);
        chart.setOption({
            animation: false,
            legend: {top: 0, textStyle: {color: colour}},
            grid: {left: 8, right: 110, top: 28, bottom: 8, containLabel: true},
            tooltip: {
                trigger: "axis",
                axisPointer: {type: "shadow"},
                formatter: function (items) {
                    var index = items[0].dataIndex;
                    var tgi = tgis[index] === null ? "–" : tgis[index];
                    return echarts.format.encodeHTML(pick(values.labels)[index]) + "<br>" +
                        echarts.format.encodeHTML(data.series_names.segment + ": " + shareLabels[index]) + "<br>" +
                        echarts.format.encodeHTML(data.series_names.base + ": " + baseLabels[index]) + "<br>" +
                        "TGI: " + echarts.format.encodeHTML(String(tgi));
                }
            },
            xAxis: {
                type: "value",
                axisLabel: {color: colour, formatter: "{value}%"},
                splitLine: {lineStyle: {opacity: 0.3}}
            },
            yAxis: {
                type: "category",
                data: pick(values.labels),
                axisLabel: {color: colour, width: 120, overflow: "truncate"}
            },
            series: [
                {
                    name: data.series_names.base,
                    type: "bar",
                    barGap: "10%",
                    itemStyle: {color: BASE_COLOUR},
                    data: pick(values.base_shares)
                },
                {
                    name: data.series_names.segment,
                    type: "bar",
                    itemStyle: {color: SEGMENT_COLOUR},
                    label: {
                        show: true,
                        position: "right",
                        color: colour,
                        formatter: function (item) {
                            return barLabels[item.dataIndex];
                        }
                    },
                    data: pick(values.shares).map(function (share, index) {
                        var high = tgis[index] !== null && tgis[index] > data.high_tgi;
                        return {
                            // A suppressed cell has no bar, only its label.
                            value: share === null ? 0 : share,
                            itemStyle: high ? {color: HIGH_COLOUR} : undefined,
                            label: high ? {color: HIGH_COLOUR, fontWeight: "bold"} : undefined
                        };
                    })
                }
            ]
        });
        window.addEventListener("resize", function () {
            chart.resize();
        });
        return chart;
    }

    function draw(root, data) {
        data.dimensions.forEach(function (dimension) {
            var target = root.querySelector('.portrait-chart[data-dimension="' + dimension.name + '"]');
            if (target && dimension.rows.length) {
                var height = Math.max(160, 60 + dimension.rows.length * 34);
                target.style.height = height + "px";
                drawDimension(target, dimension, data);
            }
        });
    }

    window.segmentPortrait = {draw: draw};

    document.addEventListener("DOMContentLoaded", function () {
        var element = document.getElementById("portrait-data");
        if (element) {
            draw(document, JSON.parse(element.textContent));
        }
    });
})();

/* What every page's ECharts charts share (core/vendor/echarts must load first): the data a
   template gave in a json_script element, the page's text colour, and a chart drawn as SVG
   into an element, resized with the window. */
"use strict";

window.crmCharts = (function () {
    function readData(id) {
        var element = document.getElementById(id);
        return element ? JSON.parse(element.textContent) : null;
    }

    function textColour() {
        return getComputedStyle(document.documentElement).getPropertyValue("--body-fg").trim() || "#333";
    }

    function quietColour() {
        return getComputedStyle(document.documentElement).getPropertyValue("--body-quiet-color").trim() || "#666";
    }

    function draw(target, option) {
        var chart = echarts.init(target, null, {renderer: "svg"});
        chart.setOption(Object.assign({animation: false}, option));
        window.addEventListener("resize", function () {
            chart.resize();
        });
        return chart;
    }

    return {readData: readData, textColour: textColour, quietColour: quietColour, draw: draw};
})();

/* The portrait (人群画像) of the rule being built, under the segment builder's live preview.
   Folded until the operator asks for it; open, it is fetched from the rule portrait endpoint
   (POST {"rule": ...}, with the form's CSRF token) for the rule of the builder's last preview
   (its `segment-builder:preview` event), drawn by window.segmentPortrait, and fetched again
   after later previews, debounced: a portrait can take seconds over many customers. An answer
   to an older rule than the last one asked for is dropped. */
"use strict";

(function () {
    var REFRESH_MS = 1000;

    var holder = document.getElementById("segment-builder-portrait");
    var section = holder && holder.querySelector(".builder-portrait");
    if (!section) {
        return;
    }
    var toggle = section.querySelector(".builder-portrait-toggle");
    var body = section.querySelector(".builder-portrait-body");
    var status = section.querySelector(".builder-portrait-status");
    var charts = section.querySelector(".builder-portrait-charts");
    var csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
    var texts = section.dataset;

    var rule = null; // the rule of the builder's last preview
    var drawnRule; // the rule of the portrait shown (as JSON)
    var timer = null;
    var asked = 0; // the number of the last request: older answers are dropped

    function element(tag, className, text) {
        var made = document.createElement(tag);
        if (className) {
            made.className = className;
        }
        if (text) {
            made.textContent = text;
        }
        return made;
    }

    function clearCharts() {
        charts.querySelectorAll(".portrait-chart").forEach(function (chart) {
            echarts.dispose(chart);
        });
        charts.replaceChildren();
    }

    function show(data) {
        clearCharts();
        if (data.is_empty) {
            status.textContent = texts.empty;
            return;
        }
        status.textContent = texts.sizes.replace("{size}", data.size).replace("{base}", data.base_size) +
            " " + data.computed_at;
        var grid = element("div", "portrait-grid");
        data.dimensions.forEach(function (dimension) {
            var panel = element("section", "module portrait-panel");
            panel.append(element("h2", "", dimension.label));
            if (dimension.estimate_note) {
                panel.append(element("p", "portrait-meta", dimension.estimate_note));
            }
            if (dimension.rows.length) {
                var chart = element("div", "portrait-chart");
                chart.dataset.dimension = dimension.name;
                chart.setAttribute("role", "img");
                chart.setAttribute("aria-label", dimension.label);
                panel.append(chart);
            }
            grid.append(panel);
        });
        charts.append(grid);
        window.segmentPortrait.draw(charts, data);
    }

    function load() {
        timer = null;
        if (rule === null) {
            clearCharts();
            status.textContent = texts.noRule;
            drawnRule = JSON.stringify(null);
            return;
        }
        var wanted = JSON.stringify(rule);
        if (wanted === drawnRule) {
            return;
        }
        asked += 1;
        var number = asked;
        section.classList.add("builder-portrait-loading");
        status.textContent = texts.loading;
        fetch(texts.url, {
            method: "POST",
            credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrfInput ? csrfInput.value : ""},
            body: JSON.stringify({rule: rule})
        })
            .then(function (response) {
                return response.json().then(function (answer) {
                    return {ok: response.ok, answer: answer};
                });
            })
            .then(function (result) {
                if (number !== asked) {
                    return;
                }
                section.classList.remove("builder-portrait-loading");
                if (!result.ok) {
                    clearCharts();
                    status.textContent = texts.failed + " " + result.answer.detail;
                    return;
                }
                drawnRule = wanted;
                show(result.answer);
            })
            .catch(function (error) {
                if (number === asked) {
                    section.classList.remove("builder-portrait-loading");
                    status.textContent = texts.failed + " " + error.message;
                }
            });
    }

    function isOpen() {
        return !body.hidden;
    }

    toggle.addEventListener("click", function () {
        var open = !isOpen();
        body.hidden = !open;
        toggle.textContent = open ? texts.hide : texts.show;
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        if (open) {
            clearTimeout(timer);
            load();
        }
    });

    holder.addEventListener("segment-builder:preview", function (event) {
        rule = event.detail.rule;
        if (isOpen()) {
            clearTimeout(timer);
            timer = setTimeout(load, REFRESH_MS);
        }
    });
})();

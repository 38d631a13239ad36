/*
 * The segment builder: the rule of a dynamic segment (segments.rules) built from lists.
 *
 * The rule's textarea (#id_rule) stays the form's submitted value and is the builder's JSON
 * view: each change in the tree rewrites it, each valid edit of it redraws the tree. A rule
 * read into the tree and written back is the same rule (parse, then serialize): nodes the
 * builder cannot draw are kept as they are ("raw") and written back unchanged.
 *
 * Fields, operators, choices and every word come from the page (json_script
 * #segment-builder-data, made by segments.presenters.builder from the rule registry). Every
 * change asks the admin's preview (debounced) for the size, each top-level condition's count
 * and sample customers; a rule the server refuses has its problems marked at their nodes by
 * their paths ($.all[2].value).
 */
(function () {
  "use strict";

  const DEBOUNCE_MS = 400;
  const SEARCH_DEBOUNCE_MS = 250;
  const LEAF_KEYS = ["field", "op", "value", "params"];
  const LIST_OPS = ["in", "not_in", "has_any", "has_all", "has_none"];
  const DAY = /^\d{4}-\d{2}-\d{2}$/;

  const dataElement = document.getElementById("segment-builder-data");
  const shell = document.getElementById("segment-builder");
  const textarea = document.getElementById("id_rule");
  if (!dataElement || !shell || !textarea) {
    return;
  }
  const data = JSON.parse(dataElement.textContent);
  const texts = data.texts;
  const fields = new Map();
  data.catalogue.categories.forEach(function (category) {
    category.fields.forEach(function (field) {
      fields.set(field.name, field);
    });
  });

  const treeElement = shell.querySelector(".segment-builder-tree");
  const problemsElement = shell.querySelector(".segment-builder-problems");
  const jsonToggle = shell.querySelector(".segment-builder-json-toggle");
  const sizeElement = shell.querySelector(".segment-builder-size-value");
  const statusElement = shell.querySelector(".segment-builder-status");
  const sampleTable = shell.querySelector(".segment-builder-sample");
  const portrait = document.getElementById("segment-builder-portrait");
  const kindSelect = document.getElementById("id_kind");
  const csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");

  // Labels of the rows a rule names by id, by kind ("tag", "group", ...): id -> name.
  const referenceLabels = {
    tag: new Map(), tag_group: new Map(), group: new Map(), segment: new Map(), staff: new Map(), contact_way: new Map(),
  };

  // `counts`: the last preview's count of each top-level condition, shown until the tree's
  // shape changes.
  const state = { root: null, problems: data.problems || [], jsonError: "", counts: [] };
  // The node each drawn element shows, to word its problems.
  const nodeOfElement = new WeakMap();

  function interpolate(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_match, key) {
      return String(values[key]);
    });
  }

  function h(tag, attributes) {
    const element = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([key, value]) {
      if (value === undefined || value === null || value === false) {
        return;
      }
      if (key === "text") {
        element.textContent = value;
      } else if (key.startsWith("on")) {
        element.addEventListener(key.slice(2), value);
      } else if (key === "dataset") {
        Object.assign(element.dataset, value);
      } else {
        element.setAttribute(key, value === true ? "" : value);
      }
    });
    for (let index = 2; index < arguments.length; index += 1) {
      const child = arguments[index];
      if (child === null || child === undefined || child === false) {
        continue;
      }
      element.append(child);
    }
    return element;
  }

  // --- The tree: JSON <-> nodes ------------------------------------------------------------

  function isPlainObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function parseNode(raw) {
    if (isPlainObject(raw)) {
      const keys = Object.keys(raw);
      if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any") && Array.isArray(raw[keys[0]])) {
        return { type: keys[0], children: raw[keys[0]].map(parseNode) };
      }
      if (keys.length === 1 && keys[0] === "not") {
        return { type: "not", child: parseNode(raw.not) };
      }
      const isLeaf =
        typeof raw.field === "string" &&
        typeof raw.op === "string" &&
        "value" in raw &&
        keys.every(function (key) {
          return LEAF_KEYS.includes(key);
        });
      if (isLeaf) {
        return { type: "leaf", field: raw.field, op: raw.op, value: raw.value, params: raw.params };
      }
    }
    return { type: "raw", json: raw };
  }

  function serializeNode(node) {
    if (node.type === "all" || node.type === "any") {
      return { [node.type]: node.children.map(serializeNode) };
    }
    if (node.type === "not") {
      return { not: node.child ? serializeNode(node.child) : null };
    }
    if (node.type === "leaf") {
      const leaf = { field: node.field, op: node.op, value: node.value };
      if (node.params !== undefined) {
        leaf.params = node.params;
      }
      return leaf;
    }
    return node.json;
  }

  function serializeRule() {
    return state.root === null ? null : serializeNode(state.root);
  }

  // --- Defaults of a new condition -------------------------------------------------------------

  function opsOffered(field, current) {
    return field.ops.filter(function (op) {
      return !op.alias || op.code === current;
    });
  }

  function defaultValue(field, op) {
    if ("value" in op) {
      return op.value;
    }
    if (LIST_OPS.includes(op.code)) {
      return [];
    }
    if (op.code === "between") {
      return [null, null];
    }
    if (op.code === "within_last_days") {
      return 30;
    }
    if (field.params.length && field.kind === "number") {
      return 1; // a count: at least once
    }
    return null;
  }

  function defaultParams(field) {
    if (!field.params.length) {
      return undefined;
    }
    const params = {};
    const alternativesSeen = new Set();
    field.params.forEach(function (spec) {
      if (spec.alternative_of) {
        if (!alternativesSeen.has(spec.alternative_of)) {
          alternativesSeen.add(spec.alternative_of);
          params[spec.key] = [];
        }
      } else if (spec.required && spec.kind === "choice") {
        params[spec.key] = spec.choices[0].code;
      }
    });
    return Object.keys(params).length ? params : undefined;
  }

  function newLeaf(fieldName) {
    const field = fields.get(fieldName);
    const op = field.ops.find(function (candidate) {
      return !candidate.alias && candidate.code === "gte";
    }) || field.ops[0];
    return {
      type: "leaf",
      field: fieldName,
      op: op.code,
      value: defaultValue(field, op),
      params: defaultParams(field),
    };
  }

  function firstFieldName() {
    return data.catalogue.categories[0].fields[0].name;
  }

  // --- Changes ----------------------------------------------------------------------------

  let previewTimer = null;

  function changed(options) {
    if (!(options && options.fromJson)) {
      textarea.value = JSON.stringify(serializeRule(), null, 2);
    }
    if (options && options.redraw) {
      render();
    }
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, DEBOUNCE_MS);
  }

  function structureChanged() {
    state.problems = [];
    state.counts = [];
    changed({ redraw: true });
  }

  // --- Drawing ------------------------------------------------------------------------------

  function childPath(parentPath, node, index) {
    if (node.type === "not") {
      return parentPath + ".not";
    }
    return parentPath + "." + node.type + "[" + index + "]";
  }

  function render() {
    treeElement.replaceChildren();
    if (state.root === null) {
      treeElement.append(
        h(
          "div",
          { class: "sb-empty" },
          h("p", { text: texts.empty_rule }),
          addButtons(function (node) {
            state.root = { type: "all", children: [node] };
            structureChanged();
          })
        )
      );
    } else {
      treeElement.append(drawNode(state.root, "$", null, null));
    }
    markProblems();
    drawJsonError();
    drawCounts();
  }

  function addButtons(add) {
    return h(
      "div",
      { class: "sb-add" },
      h("button", {
        type: "button",
        class: "button sb-add-condition",
        text: "+ " + texts.add_condition,
        onclick: function () {
          add(newLeaf(firstFieldName()));
        },
      }),
      h("button", {
        type: "button",
        class: "button sb-add-group",
        text: "+ " + texts.add_group,
        onclick: function () {
          add({ type: "all", children: [newLeaf(firstFieldName())] });
        },
      })
    );
  }

  function removeButton(remove) {
    return h("button", {
      type: "button",
      class: "sb-remove",
      title: texts.remove,
      "aria-label": texts.remove,
      text: "×",
      onclick: remove,
    });
  }

  // `replace(node)` puts another node in this one's place, `remove()` takes it out; the root
  // has neither (its last condition removed, the rule is empty).
  function drawNode(node, path, replace, remove) {
    let element;
    if (node.type === "leaf") {
      element = drawLeaf(node, remove);
    } else if (node.type === "raw") {
      element = h(
        "div",
        { class: "sb-raw" },
        h("p", { class: "help", text: texts.unreadable_node }),
        h("code", { text: JSON.stringify(node.json) }),
        remove ? removeButton(remove) : null
      );
    } else {
      element = drawGroup(node, path, replace, remove);
    }
    element.classList.add("sb-node");
    element.dataset.path = path;
    nodeOfElement.set(element, node);
    return element;
  }

  function drawGroup(node, path, replace, remove) {
    const modeSelect = h(
      "select",
      {
        class: "sb-mode",
        "aria-label": texts.all + " / " + texts.any + " / " + texts.not,
        onchange: function () {
          const mode = modeSelect.value;
          const children = node.type === "not" ? (node.child ? [node.child] : []) : node.children;
          let next;
          if (mode === "not") {
            const child = children.length === 1 ? children[0] : children.length ? { type: "all", children: children } : null;
            next = { type: "not", child: child };
          } else {
            next = { type: mode, children: children };
          }
          if (replace) {
            replace(next);
          } else {
            state.root = next;
          }
          structureChanged();
        },
      },
      h("option", { value: "all", text: texts.all, selected: node.type === "all" }),
      h("option", { value: "any", text: texts.any, selected: node.type === "any" }),
      h("option", { value: "not", text: texts.not, selected: node.type === "not" })
    );
    const header = h(
      "div",
      { class: "sb-group-header" },
      modeSelect,
      h("span", { class: "sb-group-hint", text: texts[node.type + "_hint"] }),
      remove ? removeButton(remove) : null
    );
    const body = h("div", { class: "sb-group-body" });
    if (node.type === "not") {
      if (node.child) {
        body.append(
          drawNode(
            node.child,
            path + ".not",
            function (next) {
              node.child = next;
            },
            function () {
              node.child = null;
              structureChanged();
            }
          )
        );
      } else {
        body.append(
          addButtons(function (child) {
            node.child = child;
            structureChanged();
          })
        );
      }
    } else {
      node.children.forEach(function (child, index) {
        const drawn = drawNode(
          child,
          childPath(path, node, index),
          function (next) {
            node.children[index] = next;
          },
          function () {
            node.children.splice(index, 1);
            if (node === state.root && node.children.length === 0) {
              state.root = null;
            }
            structureChanged();
          }
        );
        if (node === state.root) {
          drawn.append(h("span", { class: "sb-count", dataset: { index: String(index) } }));
        }
        body.append(drawn);
      });
      body.append(
        addButtons(function (child) {
          node.children.push(child);
          structureChanged();
        })
      );
    }
    return h("div", { class: "sb-group sb-group-" + node.type }, header, body);
  }

  function fieldSelect(node) {
    const select = h("select", {
      class: "sb-field",
      "aria-label": texts.choose_field,
      onchange: function () {
        Object.assign(node, newLeaf(select.value));
        structureChanged();
      },
    });
    if (!fields.has(node.field)) {
      select.append(h("option", { value: node.field, text: node.field, selected: true, disabled: true }));
    }
    data.catalogue.categories.forEach(function (category) {
      const group = h("optgroup", { label: category.label });
      category.fields.forEach(function (field) {
        group.append(h("option", { value: field.name, text: field.label, selected: field.name === node.field }));
      });
      select.append(group);
    });
    return select;
  }

  function opSelect(node, field) {
    const offered = opsOffered(field, node.op);
    const current = offered.findIndex(function (op) {
      return op.code === node.op && (!("value" in op) || op.value === node.value);
    });
    const select = h("select", {
      class: "sb-op",
      "aria-label": texts.choose,
      onchange: function () {
        const op = offered[Number(select.value)];
        const wasList = Array.isArray(node.value);
        node.op = op.code;
        const fresh = defaultValue(field, op);
        // A list of values survives a change between list operators.
        if (!(wasList && Array.isArray(fresh) && op.code !== "between" && LIST_OPS.includes(op.code))) {
          node.value = fresh;
        }
        structureChanged();
      },
    });
    if (current < 0) {
      select.append(h("option", { value: "", text: node.op, selected: true, disabled: true }));
    }
    offered.forEach(function (op, index) {
      select.append(h("option", { value: String(index), text: op.label, selected: index === current }));
    });
    return select;
  }

  function drawLeaf(node, remove) {
    const field = fields.get(node.field);
    const row = h("div", { class: "sb-condition" }, fieldSelect(node));
    if (field) {
      const op = field.ops.find(function (candidate) {
        return candidate.code === node.op;
      });
      row.append(opSelect(node, field));
      if (op && !("value" in op)) {
        row.append(valueEditor(field, node));
      }
      if (field.params.length) {
        row.append(paramsEditor(field, node));
      }
    }
    if (remove) {
      row.append(removeButton(remove));
    }
    return h("div", { class: "sb-leaf" }, row);
  }

  // --- Value editors ----------------------------------------------------------------------

  function numberInput(value, field, onValue, label) {
    return h("input", {
      type: "number",
      class: "sb-number",
      step: field.integer ? "1" : "any",
      min: field.minimum,
      max: field.maximum,
      value: value === null || value === undefined ? "" : String(value),
      "aria-label": label || field.label,
      oninput: function (event) {
        const text = event.target.value;
        onValue(text === "" ? null : Number(text));
      },
    });
  }

  function textInput(value, onValue, label) {
    return h("input", {
      type: "text",
      class: "sb-text",
      value: typeof value === "string" ? value : "",
      "aria-label": label,
      oninput: function (event) {
        onValue(event.target.value);
      },
    });
  }

  function dateEditor(value, onValue, label) {
    const box = h("span", { class: "sb-date" });
    function draw() {
      box.replaceChildren();
      if (typeof value === "string" && value !== "" && !DAY.test(value)) {
        box.append(textInput(value, function (text) { value = text; onValue(text); }, label));
        return;
      }
      const isDaysAgo = isPlainObject(value);
      const mode = h(
        "select",
        {
          class: "sb-date-mode",
          "aria-label": label,
          onchange: function () {
            value = mode.value === "days_ago" ? { days_ago: 7 } : null;
            onValue(value);
            draw();
          },
        },
        h("option", { value: "day", text: texts.on_day, selected: !isDaysAgo }),
        h("option", { value: "days_ago", text: texts.days_ago_mode, selected: isDaysAgo })
      );
      box.append(mode);
      if (isDaysAgo) {
        box.append(
          numberInput(value.days_ago, { integer: true, minimum: 0 }, function (days) {
            value = { days_ago: days };
            onValue(value);
          }, texts.days_ago),
          h("span", { class: "sb-unit", text: texts.days_ago })
        );
      } else {
        box.append(
          h("input", {
            type: "date",
            class: "sb-day",
            value: typeof value === "string" ? value : "",
            "aria-label": label,
            oninput: function (event) {
              value = event.target.value || null;
              onValue(value);
            },
          })
        );
      }
    }
    draw();
    return box;
  }

  function choiceEditor(field, node, isList) {
    if (isList) {
      const box = h("span", { class: "sb-choices" });
      field.choices.forEach(function (choice) {
        box.append(
          h(
            "label",
            { class: "sb-choice" },
            h("input", {
              type: "checkbox",
              value: choice.code,
              checked: listOf(node).includes(choice.code),
              onchange: function (event) {
                const chosen = new Set(listOf(node));
                if (event.target.checked) {
                  chosen.add(choice.code);
                } else {
                  chosen.delete(choice.code);
                }
                // In the choices' own order, as an operator reads them.
                node.value = field.choices.map(function (c) { return c.code; }).filter(function (code) {
                  return chosen.has(code);
                });
                changed();
              },
            }),
            " " + choice.label
          )
        );
      });
      return box;
    }
    const select = h("select", {
      class: "sb-value",
      "aria-label": field.label,
      onchange: function () {
        node.value = select.value || null;
        changed();
      },
    });
    select.append(h("option", { value: "", text: texts.choose, selected: node.value === null }));
    field.choices.forEach(function (choice) {
      select.append(h("option", { value: choice.code, text: choice.label, selected: choice.code === node.value }));
    });
    return select;
  }

  // Free values typed one by one (strings, numbers): chips, Enter adds.
  function chipsEditor(values, parse, onValues, label) {
    const box = h("span", { class: "sb-chips" });
    const input = h("input", {
      type: "text",
      class: "sb-chip-input",
      placeholder: texts.type_and_enter,
      "aria-label": label,
      onkeydown: function (event) {
        if (event.key !== "Enter") {
          return;
        }
        event.preventDefault();
        const text = input.value.trim();
        if (text === "") {
          return;
        }
        values.push(parse(text));
        input.value = "";
        onValues(values);
        draw();
        input.focus();
      },
    });
    function draw() {
      box.replaceChildren();
      values.forEach(function (value, index) {
        box.append(
          h(
            "span",
            { class: "sb-chip" },
            String(value),
            h("button", {
              type: "button",
              class: "sb-chip-remove",
              text: "×",
              "aria-label": texts.remove,
              onclick: function () {
                values.splice(index, 1);
                onValues(values);
                draw();
              },
            })
          )
        );
      });
      box.append(input);
    }
    draw();
    return box;
  }

  function referenceLabel(kind, value) {
    if (referenceLabels[kind].has(value)) {
      return referenceLabels[kind].get(value);
    }
    if (isPlainObject(value)) {
      return value.group + " / " + value.name; // a tag by its group's name and its own
    }
    if (typeof value === "string") {
      return value; // a tag group by name, a staff member by an unknown userid
    }
    return "#" + value;
  }

  function optionsUrl(kind, query) {
    return data.urls.options.replace("KIND", kind) + "?" + new URLSearchParams(query).toString();
  }

  // Rows picked by name from a search (tags, tag groups, group chats, segments); the rule
  // holds their ids. `multiple`: a list, else one value (or null).
  function picker(kind, value, multiple, onValue, label) {
    let values = multiple ? value : value === null || value === undefined ? [] : [value];
    const box = h("span", { class: "sb-picker", dataset: { kind: kind } });
    const chips = h("span", { class: "sb-picker-chips" });
    const results = h("ul", { class: "sb-picker-results", role: "listbox", hidden: true });
    let searchTimer = null;
    let searchNumber = 0;
    const input = h("input", {
      type: "search",
      class: "sb-picker-search",
      placeholder: texts.search,
      "aria-label": label,
      autocomplete: "off",
      onfocus: function () { search(); },
      oninput: function () {
        clearTimeout(searchTimer);
        searchTimer = setTimeout(search, SEARCH_DEBOUNCE_MS);
      },
      onkeydown: function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          const first = results.querySelector("button");
          if (first) {
            first.click();
          }
        } else if (event.key === "Escape") {
          results.hidden = true;
        }
      },
      onblur: function () {
        setTimeout(function () { results.hidden = true; }, 200);
      },
    });
    function choose(option) {
      referenceLabels[kind].set(option.id, option.label);
      if (multiple) {
        if (!values.includes(option.id)) {
          values.push(option.id);
        }
        onValue(values);
      } else {
        values = [option.id];
        onValue(option.id);
      }
      input.value = "";
      results.hidden = true;
      drawChips();
    }
    function search() {
      const number = ++searchNumber;
      fetch(optionsUrl(kind, { q: input.value.trim() }), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (body) {
          if (number !== searchNumber) {
            return;
          }
          results.replaceChildren();
          body.results.forEach(function (option) {
            results.append(
              h("li", { role: "option" },
                h("button", {
                  type: "button",
                  class: "sb-picker-option",
                  text: option.label,
                  onmousedown: function (event) { event.preventDefault(); },
                  onclick: function () { choose(option); },
                })
              )
            );
          });
          if (!body.results.length) {
            results.append(h("li", { class: "sb-picker-none", text: texts.no_match }));
          }
          results.hidden = false;
        })
        .catch(function () { results.hidden = true; });
    }
    function drawChips() {
      chips.replaceChildren();
      values.forEach(function (chosen, index) {
        chips.append(
          h("span", { class: "sb-chip" },
            referenceLabel(kind, chosen),
            h("button", {
              type: "button",
              class: "sb-chip-remove",
              text: "×",
              "aria-label": texts.remove,
              onclick: function () {
                values.splice(index, 1);
                onValue(multiple ? values : null);
                drawChips();
              },
            })
          )
        );
      });
    }
    drawChips();
    box.append(chips, h("span", { class: "sb-picker-box" }, input, results));
    return box;
  }

  // Drawing never changes the rule: a value of another shape is replaced only when edited.
  function between(makeOne, node) {
    const pair = Array.isArray(node.value) && node.value.length === 2 ? node.value.slice() : [null, null];
    function setEnd(index) {
      return function (end) {
        pair[index] = end;
        node.value = pair.slice();
        changed();
      };
    }
    return h(
      "span",
      { class: "sb-between" },
      makeOne(pair[0], setEnd(0)),
      h("span", { class: "sb-unit", text: texts.to }),
      makeOne(pair[1], setEnd(1))
    );
  }

  function setValue(node) {
    return function (value) {
      node.value = value;
      changed();
    };
  }

  function valueEditor(field, node) {
    const op = node.op;
    const isList = LIST_OPS.includes(op);
    if (["tag", "tag_group", "group", "segment"].includes(field.kind)) {
      return picker(field.kind, isList ? listOf(node) : node.value, isList, setValue(node), field.label);
    }
    // A field whose values are rows' keys (an owner's WeCom userid) picks them by name, but
    // for `contains`, which matches any part of the key.
    if (field.picks && op !== "contains") {
      return picker(field.picks, isList ? listOf(node) : node.value, isList, setValue(node), field.label);
    }
    if (field.kind === "choice") {
      return choiceEditor(field, node, isList);
    }
    if (field.kind === "datetime") {
      if (op === "within_last_days") {
        return h(
          "span",
          { class: "sb-days" },
          numberInput(node.value, { integer: true, minimum: 1, label: texts.days }, setValue(node), texts.days),
          h("span", { class: "sb-unit", text: texts.days })
        );
      }
      if (op === "between") {
        return between(function (value, onValue) { return dateEditor(value, onValue, field.label); }, node);
      }
      return dateEditor(node.value, setValue(node), field.label);
    }
    const isNumber = field.kind === "number";
    if (isList) {
      return chipsEditor(listOf(node), isNumber ? Number : String, setValue(node), field.label);
    }
    if (op === "between") {
      return between(function (value, onValue) { return numberInput(value, field, onValue); }, node);
    }
    return isNumber
      ? numberInput(node.value, field, setValue(node))
      : textInput(node.value, function (text) { node.value = text; changed(); }, field.label);
  }

  // A copy of the node's list of values to edit (empty if its value is not a list).
  function listOf(node) {
    return Array.isArray(node.value) ? node.value.slice() : [];
  }

  // --- Params (purchased, interacted, group_joined) -------------------------------------------

  function paramsEditor(field, node) {
    const box = h("div", { class: "sb-params" });
    function params() {
      if (!isPlainObject(node.params)) {
        node.params = {};
      }
      return node.params;
    }
    function setParam(key, value) {
      const current = params();
      if (value === null || value === undefined || value === "") {
        delete current[key];
      } else {
        current[key] = value;
      }
      if (!Object.keys(current).length && !field.params.some(function (spec) { return spec.required || spec.alternative_of; })) {
        node.params = undefined;
      }
      changed();
    }
    const alternativesDrawn = new Set();
    field.params.forEach(function (spec) {
      const current = isPlainObject(node.params) ? node.params : {};
      if (spec.alternative_of) {
        if (alternativesDrawn.has(spec.alternative_of)) {
          return;
        }
        alternativesDrawn.add(spec.alternative_of);
        const choices = field.params.filter(function (other) { return other.alternative_of === spec.alternative_of; });
        const chosen = choices.find(function (other) { return other.key in current; }) || choices[0];
        const keySelect = h("select", {
          class: "sb-param-key",
          "aria-label": chosen.label,
          onchange: function () {
            const values = params()[chosen.key] || [];
            delete params()[chosen.key];
            params()[keySelect.value] = values;
            structureChanged();
          },
        });
        choices.forEach(function (other) {
          keySelect.append(h("option", { value: other.key, text: other.label, selected: other === chosen }));
        });
        const values = Array.isArray(current[chosen.key]) ? current[chosen.key] : [];
        box.append(
          h("span", { class: "sb-param" }, keySelect,
            chipsEditor(values, String, function (list) { params()[chosen.key] = list; changed(); }, chosen.label))
        );
        return;
      }
      let editor;
      if (spec.kind === "days") {
        editor = h("span", { class: "sb-days" },
          numberInput(current[spec.key], { integer: true, minimum: 1 }, function (days) { setParam(spec.key, days); }, spec.label),
          h("span", { class: "sb-unit", text: texts.days })
        );
      } else if (spec.kind === "choice") {
        editor = h("select", {
          class: "sb-param-choice",
          "aria-label": spec.label,
          onchange: function (event) { setParam(spec.key, event.target.value); },
        });
        if (!spec.required) {
          editor.append(h("option", { value: "", text: texts.choose }));
        }
        spec.choices.forEach(function (choice) {
          editor.append(h("option", { value: choice.code, text: choice.label, selected: current[spec.key] === choice.code }));
        });
      } else if (spec.kind === "group") {
        editor = picker("group", current[spec.key] === undefined ? null : current[spec.key], false, function (id) {
          setParam(spec.key, id);
        }, spec.label);
      } else {
        editor = chipsEditor(Array.isArray(current[spec.key]) ? current[spec.key] : [], String, function (list) {
          setParam(spec.key, list.length ? list : null);
        }, spec.label);
      }
      const label = spec.required ? spec.label : interpolate(texts.optional, { label: spec.label });
      box.append(h("span", { class: "sb-param" }, h("span", { class: "sb-param-label", text: label }), editor));
    });
    return box;
  }

  // --- Problems at their nodes ------------------------------------------------------------

  // The node a problem's path falls in: the deepest drawn node whose path starts it.
  function nodeFor(path) {
    let found = null;
    treeElement.querySelectorAll(".sb-node").forEach(function (element) {
      const nodePath = element.dataset.path;
      const next = path.charAt(nodePath.length);
      if (path.startsWith(nodePath) && (next === "" || next === "." || next === "[")) {
        if (!found || nodePath.length > found.dataset.path.length) {
          found = element;
        }
      }
    });
    return found;
  }

  function isBlank(value) {
    return value === null || value === "" || (Array.isArray(value) && (!value.length || value.some(isBlank)));
  }

  // The value at a problem's path below a node ("value[1]", "params.category"), if any.
  function valueAt(node, rest) {
    let value = node;
    const steps = rest.match(/[^.[\]]+/g) || [];
    for (const step of steps) {
      if (value === null || typeof value !== "object" || !(step in value)) {
        return undefined;
      }
      value = value[step];
    }
    return value;
  }

  // The server's words, or the builder's own when a condition is just not filled in yet
  // (the server's would list codes of the choices the builder already offers).
  function problemText(element, problem) {
    const node = nodeOfElement.get(element);
    if (node && node.type === "leaf") {
      const rest = problem.path.slice(element.dataset.path.length);
      if (/^\.(value|params)/.test(rest) && isBlank(valueAt(node, rest))) {
        return texts.value_missing;
      }
    }
    return problem.message;
  }

  function markProblems() {
    treeElement.querySelectorAll(".sb-problem-message").forEach(function (element) { element.remove(); });
    treeElement.querySelectorAll(".sb-has-problem").forEach(function (element) {
      element.classList.remove("sb-has-problem");
    });
    const unplaced = [];
    state.problems.forEach(function (problem) {
      const element = nodeFor(problem.path);
      if (!element) {
        unplaced.push(problem.message);
        return;
      }
      element.classList.add("sb-has-problem");
      const message = h("p", { class: "sb-problem-message errornote", text: problemText(element, problem) });
      const header = element.querySelector(":scope > .sb-condition, :scope > .sb-group-header");
      if (header) {
        header.after(message);
      } else {
        element.append(message);
      }
    });
    problemsElement.replaceChildren();
    unplaced.forEach(function (message) {
      problemsElement.append(h("p", { class: "errornote", text: message }));
    });
    problemsElement.hidden = unplaced.length === 0;
  }

  function drawJsonError() {
    if (state.jsonError) {
      problemsElement.hidden = false;
      problemsElement.append(h("p", { class: "errornote", text: interpolate(texts.json_invalid, { error: state.jsonError }) }));
    }
  }

  // --- Preview ------------------------------------------------------------------------------

  let previewNumber = 0;

  function formatCount(count) {
    return interpolate(texts.people, { count: Number(count).toLocaleString("zh-CN") });
  }

  function preview() {
    const rule = serializeRule();
    const number = ++previewNumber;
    if (rule === null || (kindSelect && kindSelect.value === "static")) {
      sizeElement.textContent = "—";
      statusElement.textContent = texts.empty_rule;
      sampleTable.hidden = true;
      return;
    }
    statusElement.textContent = texts.preview_pending;
    shell.classList.add("sb-previewing");
    fetch(data.urls.preview, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfInput ? csrfInput.value : "" },
      body: JSON.stringify({ rule: rule, segment: data.segment_id }),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (number !== previewNumber) {
          return; // a newer preview is on its way
        }
        shell.classList.remove("sb-previewing");
        if (answer.ok) {
          state.problems = [];
          markProblems();
          showPreview(answer.body, rule);
          return;
        }
        const problems = answer.body.errors && answer.body.errors.rule;
        state.problems = Array.isArray(problems) && problems.length && typeof problems[0] === "object"
          ? problems
          : [{ path: "$", message: answer.body.detail }];
        markProblems();
        sizeElement.textContent = "—";
        statusElement.textContent = texts.preview_invalid;
        sampleTable.hidden = true;
        clearCounts();
      })
      .catch(function () {
        if (number === previewNumber) {
          shell.classList.remove("sb-previewing");
          statusElement.textContent = texts.preview_failed;
        }
      });
  }

  function drawCounts() {
    treeElement.querySelectorAll(".sb-count").forEach(function (badge) {
      const count = state.counts[Number(badge.dataset.index)];
      badge.textContent = count === undefined
        ? ""
        : interpolate(texts.alone, { count: Number(count).toLocaleString("zh-CN") });
    });
  }

  function clearCounts() {
    state.counts = [];
    drawCounts();
  }

  function showPreview(body, rule) {
    sizeElement.textContent = formatCount(body.size);
    statusElement.textContent = texts.preview_before_save;
    state.counts = body.condition_counts;
    drawCounts();
    const rows = sampleTable.querySelector("tbody");
    rows.replaceChildren();
    body.sample.forEach(function (customer) {
      rows.append(
        h("tr", {},
          h("td", {}, h("a", { href: customer.url, target: "_blank", rel: "noopener", text: customer.display_name })),
          h("td", { text: customer.lifecycle_state }),
          h("td", { text: customer.rfm_tier })
        )
      );
    });
    if (!body.sample.length) {
      rows.append(h("tr", {}, h("td", { colspan: "3", text: texts.sample_empty })));
    }
    sampleTable.hidden = false;
    if (portrait) {
      portrait.dispatchEvent(new CustomEvent("segment-builder:preview", { detail: { rule: rule, size: body.size } }));
    }
  }

  // --- Labels of the rows a stored rule names ---------------------------------------------------

  function collectReferences(node, into) {
    if (!node) {
      return;
    }
    if (node.type === "all" || node.type === "any") {
      node.children.forEach(function (child) { collectReferences(child, into); });
    } else if (node.type === "not") {
      collectReferences(node.child, into);
    } else if (node.type === "leaf") {
      const field = fields.get(node.field);
      if (field && field.picks && node.op !== "contains") {
        // Keys are texts (a staff member's userid) or ids (a channel QR code's).
        (Array.isArray(node.value) ? node.value : [node.value]).forEach(function (value) {
          if ((typeof value === "string" && value !== "") || Number.isInteger(value)) {
            into[field.picks].add(value);
          }
        });
      } else if (field && into[field.kind]) {
        (Array.isArray(node.value) ? node.value : [node.value]).forEach(function (value) {
          if (Number.isInteger(value)) {
            into[field.kind].add(value);
          }
        });
      }
      if (isPlainObject(node.params) && Number.isInteger(node.params.group)) {
        into.group.add(node.params.group);
      }
    }
  }

  function loadReferenceLabels() {
    const wanted = {
      tag: new Set(), tag_group: new Set(), group: new Set(), segment: new Set(), staff: new Set(), contact_way: new Set(),
    };
    collectReferences(state.root, wanted);
    const requests = Object.entries(wanted)
      .map(function ([kind, ids]) {
        return [kind, Array.from(ids).filter(function (id) { return !referenceLabels[kind].has(id); })];
      })
      .filter(function ([, ids]) { return ids.length > 0; })
      .map(function ([kind, ids]) {
        return fetch(optionsUrl(kind, { ids: ids.join(",") }), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (body) {
            body.results.forEach(function (option) { referenceLabels[kind].set(option.id, option.label); });
          });
      });
    if (requests.length) {
      Promise.all(requests).then(render).catch(function () {});
    }
  }

  // --- The JSON view and the form ---------------------------------------------------------------

  function readJson() {
    try {
      const rule = JSON.parse(textarea.value);
      state.root = rule === null ? null : parseNode(rule);
      state.jsonError = "";
      return true;
    } catch (error) {
      state.jsonError = error.message;
      return false;
    }
  }

  function showJson(shown) {
    textarea.hidden = !shown;
    jsonToggle.textContent = shown ? texts.hide_json : texts.show_json;
    jsonToggle.setAttribute("aria-pressed", shown ? "true" : "false");
  }

  function followKind() {
    const isStatic = kindSelect && kindSelect.value === "static";
    shell.hidden = isStatic;
    textarea.closest(".form-row").hidden = isStatic;
    textarea.value = isStatic ? "null" : JSON.stringify(serializeRule(), null, 2);
  }

  function start() {
    const row = textarea.closest(".form-row");
    const container = textarea.closest(".flex-container") || textarea.parentNode;
    container.after(shell);
    row.classList.add("sb-rule-row");
    textarea.title = texts.json_help;
    const isReadable = readJson();
    showJson(!isReadable);
    shell.hidden = false;
    jsonToggle.addEventListener("click", function () { showJson(textarea.hidden); });
    textarea.addEventListener("input", function () {
      readJson();
      state.problems = [];
      state.counts = [];
      render();
      if (!state.jsonError) {
        changed({ fromJson: true });
        loadReferenceLabels();
      }
    });
    // Enter in a field of the builder completes the field, never submits the form.
    shell.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") {
        event.preventDefault();
      }
    });
    if (kindSelect) {
      kindSelect.addEventListener("change", function () {
        followKind();
        preview();
      });
      if (kindSelect.value === "static") {
        followKind();
      }
    }
    render();
    loadReferenceLabels();
    if (state.root !== null) {
      preview();
    }
  }

  start();
})();

// Small DOM helpers shared by the views: an element builder (text is always text, never
// parsed HTML), times in the viewer's zone with UTC on hover, status badges, tables, empty
// states and errors with their correlation id.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return h("span", {}, iso);
  return h("time", { datetime: iso, title: when.toISOString().replace(".000Z", "Z") + " (UTC)" },
    dateTime.format(when));
}

export function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function badge(status) {
  const text = status ?? "unknown";
  return h("span", { class: `badge s-${String(text).replace(/[^a-z_]/gi, "")}` }, text);
}

export function empty(text, ...more) {
  return h("p", { class: "empty" }, text, ...more);
}

export function errorBox(err) {
  const cid = err && err.correlationId;
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, err && err.code ? `${err.code}: ` : "error: "),
    (err && err.message) || String(err),
    cid ? h("span", { class: "cid" }, "correlation id ", h("code", {}, cid)) : null);
}

export function table(columns, rows, { caption, empty: none } = {}) {
  if (!rows.length) return empty(none || "nothing yet");
  return h("div", { class: "scroll" },
    h("table", {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) =>
        h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row))))))));
}

export function card(title, ...children) {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...children);
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function needsScope(section) {
  return section && section.hidden ? empty(section.hidden) : null;
}

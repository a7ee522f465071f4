/* The timeline and the sources of the matching articles (the "facets" of an /ask response):
 * months as a small bar chart, sources as a list. A click filters the question by that month
 * or source (through the form, so the route and the back button follow); a second click on
 * the active one removes the filter again. */

import { el } from "./dom.js";
import { ui } from "./page.js";

const UNKNOWN = "unknown";
const MAX_GAP_MONTHS = 120; // a longer span is drawn without its empty months

/** "2023-02" -> [2023, 2] (null for anything else). */
function parseMonth(value) {
  const m = /^(\d{4})-(\d{2})$/.exec(value || "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const pad = (n) => String(n).padStart(2, "0");

/** The first and last day of a month, as the date filters take them. */
export function monthRange(value) {
  const [y, m] = parseMonth(value);
  const last = new Date(y, m, 0).getDate();
  return [`${y}-${pad(m)}-01`, `${y}-${pad(m)}-${pad(last)}`];
}

/** The dated months in order, with the empty months between them filled in (count 0). */
function timeline(months) {
  const dated = months.filter((v) => parseMonth(v.value) && Number.isFinite(v.count));
  if (dated.length < 2) return dated;
  const counts = new Map(dated.map((v) => [v.value, v.count]));
  const [y0, m0] = parseMonth(dated[0].value);
  const [y1, m1] = parseMonth(dated[dated.length - 1].value);
  const span = (y1 - y0) * 12 + (m1 - m0);
  if (span > MAX_GAP_MONTHS) return dated;
  const out = [];
  for (let k = 0; k <= span; k++) {
    const y = y0 + Math.floor((m0 - 1 + k) / 12);
    const m = ((m0 - 1 + k) % 12) + 1;
    const value = `${y}-${pad(m)}`;
    out.push({ value, count: counts.get(value) || 0 });
  }
  return out;
}

/** Put a filter in the form and ask again (the form's submit does the route and the request). */
function applyFilters(values) {
  if ("dateFrom" in values) ui.dateFrom.value = values.dateFrom;
  if ("dateTo" in values) ui.dateTo.value = values.dateTo;
  if ("source" in values) ui.source.value = values.source;
  ui.filters.open = Boolean(ui.dateFrom.value || ui.dateTo.value || ui.source.value);
  if (typeof ui.form.requestSubmit === "function") ui.form.requestSubmit();
  else ui.form.dispatchEvent(new Event("submit", { cancelable: true }));
}

function monthBar(v, max, params, showYear) {
  const [y, m] = parseMonth(v.value);
  const [from, to] = monthRange(v.value);
  const active = params.get("df") === from && params.get("dt") === to;
  const label = showYear ? `${y}年${m}月` : `${m}月`;
  const bar = el(
    "button",
    {
      type: "button",
      class: active ? "bar active" : "bar",
      title: `${y}年${m}月：${v.count} 篇${active ? "（再点一次取消筛选）" : ""}`,
      "aria-label": `${y}年${m}月，${v.count} 篇`,
      "aria-pressed": String(active),
      disabled: v.count === 0 && !active,
      "data-testid": "month-bar",
      dataset: { month: v.value, count: String(v.count) },
    },
    el("span", { class: "bar-count", text: v.count ? String(v.count) : "" }),
    el("span", { class: "bar-fill", style: `height: ${max ? Math.max(4, Math.round((v.count / max) * 100)) : 0}%` }),
    el("span", { class: "bar-label", text: label }),
  );
  bar.addEventListener("click", () =>
    applyFilters(active ? { dateFrom: "", dateTo: "" } : { dateFrom: from, dateTo: to }),
  );
  return bar;
}

function sourceItem(v, params) {
  const known = v.value !== UNKNOWN;
  const active = known && params.get("src") === v.value;
  const name = known ? v.value : "来源不详";
  const content = [el("span", { class: "source-name", text: name }), el("span", { class: "source-count", text: String(v.count) })];
  if (!known) return el("li", { class: "muted", "data-testid": "source-facet" }, ...content);
  const button = el(
    "button",
    {
      type: "button",
      class: active ? "source active" : "source",
      "aria-pressed": String(active),
      title: active ? "再点一次取消筛选" : `只看${name}`,
      "data-testid": "source-facet",
      dataset: { source: v.value },
    },
    ...content,
  );
  button.addEventListener("click", () => applyFilters({ source: active ? "" : v.value }));
  return el("li", {}, button);
}

/** Show the facets of a response (`facets` may be missing: then the block stays hidden);
 * `params` are the route parameters the response answers, to mark the active filters. */
export function renderFacets(facets, params) {
  const months = Array.isArray(facets && facets.month) ? facets.month : [];
  const sources = Array.isArray(facets && facets.source) ? facets.source : [];
  ui.facets.hidden = !months.length && !sources.length;
  if (ui.facets.hidden) return;

  const bars = timeline(months);
  const max = Math.max(0, ...bars.map((v) => v.count));
  let year = null;
  ui.timeline.replaceChildren(
    ...bars.map((v) => {
      const y = parseMonth(v.value)[0];
      const showYear = y !== year;
      year = y;
      return monthBar(v, max, params, showYear);
    }),
  );
  ui.timeline.hidden = !bars.length;
  const undated = months.find((v) => v.value === UNKNOWN);
  const total = months.reduce((n, v) => n + (Number(v.count) || 0), 0);
  ui.timelineNote.textContent = `相关文章 ${total} 篇${undated ? `，其中 ${undated.count} 篇日期不详` : ""}`;
  ui.sourceFacets.replaceChildren(...sources.map((v) => sourceItem(v, params)));
}

/* The ask form and its filters <-> the route's parameters <-> the /ask request body.
 * Route parameters: q (question), mode, k (top_k), df / dt (date from / to), src (source). */

import { api } from "./api.js";
import { el } from "./dom.js";
import { ui } from "./page.js";

const MODES = ["hybrid", "dense", "bm25"];

/** The form's current values as route parameters. */
export function formParams() {
  const checked = ui.form.querySelector('input[name="mode"]:checked');
  const params = new URLSearchParams();
  params.set("q", ui.question.value.trim());
  params.set("mode", checked ? checked.value : "hybrid");
  params.set("k", ui.topK.value);
  if (ui.dateFrom.value) params.set("df", ui.dateFrom.value);
  if (ui.dateTo.value) params.set("dt", ui.dateTo.value);
  if (ui.source.value.trim()) params.set("src", ui.source.value.trim());
  return params;
}

/** Put route parameters back into the form (a link or the back button). */
export function fillForm(params) {
  ui.question.value = params.get("q") || "";
  const mode = MODES.includes(params.get("mode")) ? params.get("mode") : "hybrid";
  for (const radio of ui.form.querySelectorAll('input[name="mode"]')) radio.checked = radio.value === mode;
  const k = params.get("k");
  if (k && [...ui.topK.options].some((o) => o.value === k)) ui.topK.value = k;
  ui.dateFrom.value = params.get("df") || "";
  ui.dateTo.value = params.get("dt") || "";
  ui.source.value = params.get("src") || "";
  if (ui.dateFrom.value || ui.dateTo.value || ui.source.value) ui.filters.open = true;
}

/** The POST /ask body for route parameters. */
export function askBody(params) {
  const body = {
    question: params.get("q") || "",
    mode: params.get("mode") || "hybrid",
    top_k: Number(params.get("k")) || 5,
    facets: ["month", "source"], // the timeline and the source list (facets.js)
  };
  const filters = {};
  if (params.get("df")) filters.date_from = params.get("df");
  if (params.get("dt")) filters.date_to = params.get("dt");
  if (params.get("src")) filters.source = params.get("src");
  if (Object.keys(filters).length) body.filters = filters;
  return body;
}

/** Offer the index's newspapers and date range in the filters (a nicety: errors are ignored). */
export async function loadFilterHints() {
  try {
    const stats = await api("GET", "/stats");
    if (ui.sources && Array.isArray(stats.sources)) {
      ui.sources.replaceChildren(...stats.sources.filter((x) => typeof x === "string").map((x) => el("option", { value: x })));
    }
    const range = Array.isArray(stats.date_range) ? stats.date_range : [];
    const iso = (d) => (typeof d === "string" && /^\d{4}-\d{2}-\d{2}$/.test(d) ? d : null);
    for (const input of [ui.dateFrom, ui.dateTo]) {
      if (iso(range[0])) input.min = range[0];
      if (iso(range[1])) input.max = range[1];
    }
  } catch (_) {
    /* the filters work without the hints */
  }
}

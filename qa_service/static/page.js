/* The page's elements, what it remembers between routes, and its status line: loading,
 * errors, which view shows. */

import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

export const ui = {
  form: $("ask-form"),
  question: $("question"),
  ask: $("ask"),
  topK: $("top-k"),
  dateFrom: $("date-from"),
  dateTo: $("date-to"),
  source: $("source"),
  sources: $("sources"),
  filters: $("filters"),
  status: $("status"),
  error: $("error"),
  results: $("results"),
  facets: $("facets"),
  timeline: $("timeline"),
  timelineNote: $("timeline-note"),
  sourceFacets: $("source-facets"),
  answerText: $("answer-text"),
  answerMessage: $("answer-message"),
  confidence: $("confidence"),
  confidenceFill: $("confidence-fill"),
  confidenceValue: $("confidence-value"),
  passages: $("passages"),
  timings: $("timings"),
  article: $("article-view"),
  articleBack: $("article-back"),
  articleTitle: $("article-title"),
  articleMeta: $("article-meta"),
  articleCite: $("article-cite"),
  articleBody: $("article-body"),
};

export const BASE_TITLE = document.title;

export const state = {
  askKey: null, // the route key of the results on the page
  askHash: "#/", // where "back" from an article goes
  resultsScroll: 0,
  inflight: null, // AbortController of the request the page is waiting for
  articles: new Map(), // article_id -> article JSON
  lastRoute: null,
};

export function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

function setLoading(message) {
  if (message) {
    ui.status.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }), el("span", { text: message }));
    ui.status.hidden = false;
    ui.ask.disabled = true;
    ui.ask.textContent = "检索中";
    document.body.setAttribute("aria-busy", "true");
    ui.results.classList.add("stale");
  } else {
    ui.status.hidden = true;
    ui.status.replaceChildren();
    ui.ask.disabled = false;
    ui.ask.textContent = "提问";
    document.body.removeAttribute("aria-busy");
    ui.results.classList.remove("stale");
  }
}

/** Start a request the page will wait for; an older one still running is cancelled. */
export function begin(message) {
  if (state.inflight) state.inflight.abort();
  const controller = new AbortController();
  state.inflight = controller;
  clearError();
  setLoading(message);
  return controller;
}

/** Stop waiting for whatever request is running (the page moved on). */
export function cancel() {
  if (state.inflight) {
    state.inflight.abort();
    state.inflight = null;
    setLoading(null);
  }
}

export function finish(controller) {
  if (state.inflight === controller) {
    state.inflight = null;
    setLoading(null);
  }
}

/** Show the "results" view (the ask box and any answer) or the "article" view. */
export function showView(name) {
  ui.results.hidden = name !== "results" || state.askKey === null;
  ui.article.hidden = name !== "article";
  ui.form.hidden = false;
}

/* 新闻问答 — the page at "/". Plain ES modules, no dependencies, no build step.
 *
 * Routes (in the URL hash, so the back button and links work):
 *   #/                                   the ask box
 *   #/ask?q=<question>&mode=&k=&df=&dt=&src=   ask and show the answer and its passages
 *   #/article/<article_id>?p=<passage_id>       the whole article, passage p marked
 *
 * Modules: api (fetch), dom (nodes and marks), page (elements, state, status), filters (form
 * and route parameters), render (answer and passages), facets (timeline and sources of the
 * matching articles), article (article view), main (routes and events).
 */

import { api } from "./api.js";
import { runArticle } from "./article.js";
import { renderFacets } from "./facets.js";
import { askBody, fillForm, formParams, loadFilterHints } from "./filters.js";
import { BASE_TITLE, begin, clearError, finish, showError, showView, state, ui } from "./page.js";
import { focusPassage, renderAsk } from "./render.js";

async function runAsk(params) {
  const key = params.toString();
  const controller = begin("正在检索并组织答案…");
  showView("results");
  try {
    const data = await api("POST", "/ask", askBody(params), controller.signal);
    if (state.inflight !== controller) return;
    state.askKey = key;
    state.askHash = "#/ask?" + key;
    ui.articleBack.setAttribute("href", state.askHash);
    renderAsk(data);
    renderFacets(data.facets, params);
    showView("results");
    document.title = `${data.question} — ${BASE_TITLE}`;
  } catch (err) {
    if (err && err.name === "AbortError") return;
    state.askKey = null;
    showView("results");
    showError(err.message || String(err));
  } finally {
    finish(controller);
  }
}

// ---------------------------------------------------------------------- router

function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = q === -1 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q === -1 ? "" : raw.slice(q + 1));
  return { path, params };
}

function route() {
  const hash = window.location.hash;
  if (hash === state.lastRoute) return;
  const previous = state.lastRoute;
  state.lastRoute = hash;
  const { path, params } = parseHash(hash);
  const article = path.match(/^\/article\/(.+)$/);
  if (article) {
    if (previous === null || !parseHash(previous).path.startsWith("/article/")) state.resultsScroll = window.scrollY;
    let id;
    try {
      id = decodeURIComponent(article[1]);
    } catch (_) {
      id = article[1];
    }
    runArticle(id, params.get("p"));
    return;
  }
  document.title = BASE_TITLE;
  if (path === "/ask" && params.get("q")) {
    fillForm(params);
    const key = params.toString();
    if (key === state.askKey) {
      clearError();
      showView("results");
      window.scrollTo(0, state.resultsScroll);
    } else {
      runAsk(params);
    }
    return;
  }
  // "#/" or anything unknown: the ask box (results, if any, stay below it).
  clearError();
  showView("results");
}

// ---------------------------------------------------------------------- events

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!ui.question.value.trim()) {
    showError("请输入问题。");
    ui.question.focus();
    return;
  }
  const params = formParams();
  const hash = "#/ask?" + params.toString();
  if (window.location.hash !== hash) {
    history.pushState(null, "", hash);
  }
  state.lastRoute = hash;
  runAsk(params); // asking the same question again asks again
});

ui.question.addEventListener("keydown", (event) => {
  // Enter asks; Shift+Enter is a new line; Enter that confirms an IME candidate does nothing.
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  if (typeof ui.form.requestSubmit === "function") ui.form.requestSubmit();
  else ui.form.dispatchEvent(new Event("submit", { cancelable: true }));
});

ui.question.addEventListener("input", () => {
  if (!ui.error.hidden && ui.question.value.trim()) clearError();
});

ui.answerText.addEventListener("click", (event) => {
  const link = event.target.closest("a.cite");
  if (!link) return;
  event.preventDefault();
  focusPassage(Number(link.dataset.n));
});

window.addEventListener("hashchange", route);
window.addEventListener("popstate", route);
route();
loadFilterHints();
if (!window.location.hash || window.location.hash === "#/") ui.question.focus();

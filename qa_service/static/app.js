/* 新闻问答 — the page at "/". Plain JS, no dependencies.
 *
 * Routes (in the URL hash, so the back button and links work):
 *   #/                                   the ask box
 *   #/ask?q=<question>&mode=&k=&df=&dt=&src=   ask and show the answer and its passages
 *   #/article/<article_id>?p=<passage_id>       the whole article, passage p marked
 *
 * Everything the server sends is put on the page with textContent / createTextNode, never as
 * HTML. Offsets from the server (highlights) count Unicode code points (Python str indices);
 * they are converted to JS string (UTF-16) indices before slicing.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("ask-form"),
    question: $("question"),
    ask: $("ask"),
    topK: $("top-k"),
    dateFrom: $("date-from"),
    dateTo: $("date-to"),
    source: $("source"),
    filters: $("filters"),
    status: $("status"),
    error: $("error"),
    results: $("results"),
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
  const MODES = ["hybrid", "dense", "bm25"];
  const BASE_TITLE = document.title;

  const state = {
    askKey: null, // the route key of the results on the page
    askHash: "#/", // where "back" from an article goes
    resultsScroll: 0,
    inflight: null, // AbortController of the request the page is waiting for
    articles: new Map(), // article_id -> article JSON
    lastRoute: null,
  };

  // ------------------------------------------------------------------ DOM helpers

  /** el("a", {class: "x", href: "#", text: "全文"}, child, ...) — text always as textContent. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  /** UTF-16 index of each code point index of `text` (length = code points + 1). */
  function codePointOffsets(text) {
    const offsets = [0];
    let units = 0;
    for (const ch of text) {
      units += ch.length;
      offsets.push(units);
    }
    return offsets;
  }

  /** Sorted, merged, clipped [start, end) spans. */
  function normaliseSpans(spans, length) {
    const clean = [];
    for (const span of spans || []) {
      if (!Array.isArray(span) || span.length < 2) continue;
      const s = Math.max(0, Math.min(length, Number(span[0])));
      const e = Math.max(0, Math.min(length, Number(span[1])));
      if (Number.isFinite(s) && Number.isFinite(e) && e > s) clean.push([s, e]);
    }
    clean.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const merged = [];
    for (const [s, e] of clean) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    return merged;
  }

  /** A fragment of `text` with the [start, end) UTF-16 spans wrapped in <mark>. */
  function markedText(text, spans, markClass) {
    const frag = document.createDocumentFragment();
    let at = 0;
    for (const [s, e] of normaliseSpans(spans, text.length)) {
      if (s > at) frag.append(document.createTextNode(text.slice(at, s)));
      frag.append(el("mark", { class: markClass, text: text.slice(s, e) }));
      at = e;
    }
    if (at < text.length) frag.append(document.createTextNode(text.slice(at)));
    return frag;
  }

  /** Same, for spans counted in code points (as the server counts them). */
  function markedTextCodePoints(text, spans, markClass) {
    const offsets = codePointOffsets(text);
    const last = offsets.length - 1;
    const clip = (i) => offsets[Math.max(0, Math.min(last, Number(i) || 0))];
    const units = (spans || [])
      .filter((sp) => Array.isArray(sp) && sp.length >= 2)
      .map(([s, e]) => [clip(s), clip(e)]);
    return markedText(text, units, markClass);
  }

  function metaSpans(parts) {
    return parts.filter((p) => p).map((p) => (typeof p === "string" ? el("span", { text: p }) : p));
  }

  function articleHash(articleId, passageId) {
    let hash = "#/article/" + encodeURIComponent(articleId);
    if (passageId) hash += "?p=" + encodeURIComponent(passageId);
    return hash;
  }

  function location_(file, start, end) {
    return `${file}:${start}–${end}`;
  }

  // -------------------------------------------------------------- status, errors

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function detailOf(data) {
    if (!data || data.detail === undefined || data.detail === null) return "";
    const d = data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((x) => (x && x.msg) || JSON.stringify(x)).join("; ");
    return JSON.stringify(d);
  }

  async function api(method, path, body, signal) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: body ? { "Content-Type": "application/json", Accept: "application/json" } : { Accept: "application/json" },
        body: body ? JSON.stringify(body) : undefined,
        signal,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("无法连接到服务，请稍后再试。");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const detail = detailOf(data);
      const prefix = response.status === 503 ? "服务还没有准备好" : `请求出错（${response.status}）`;
      throw new ApiError(detail ? `${prefix}：${detail}` : prefix, response.status);
    }
    if (data === null) throw new ApiError("服务返回的内容无法解析。", response.status);
    return data;
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
  }

  function clearError() {
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
  function begin(message) {
    if (state.inflight) state.inflight.abort();
    const controller = new AbortController();
    state.inflight = controller;
    clearError();
    setLoading(message);
    return controller;
  }

  /** Stop waiting for whatever request is running (the page moved on). */
  function cancel() {
    if (state.inflight) {
      state.inflight.abort();
      state.inflight = null;
      setLoading(null);
    }
  }

  function finish(controller) {
    if (state.inflight === controller) {
      state.inflight = null;
      setLoading(null);
    }
  }

  function showView(name) {
    ui.results.hidden = name !== "results" || state.askKey === null;
    ui.article.hidden = name !== "article";
    ui.form.hidden = false;
  }

  // ---------------------------------------------------------------------- asking

  function formParams() {
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

  function fillForm(params) {
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

  function askBody(params) {
    const body = {
      question: params.get("q") || "",
      mode: params.get("mode") || "hybrid",
      top_k: Number(params.get("k")) || 5,
    };
    const filters = {};
    if (params.get("df")) filters.date_from = params.get("df");
    if (params.get("dt")) filters.date_to = params.get("dt");
    if (params.get("src")) filters.source = params.get("src");
    if (Object.keys(filters).length) body.filters = filters;
    return body;
  }

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

  function renderAnswerText(text, count) {
    const frag = document.createDocumentFragment();
    const re = /\[(\d+)\]/g;
    let at = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const n = Number(m[1]);
      if (n < 1 || n > count) continue;
      if (m.index > at) frag.append(document.createTextNode(text.slice(at, m.index)));
      frag.append(
        el("a", {
          class: "cite",
          href: `#passage-${n}`,
          text: `[${n}]`,
          title: `查看出处段落 ${n}`,
          "aria-label": `出处 ${n}`,
          "data-testid": "cite",
          dataset: { n: String(n) },
        }),
      );
      at = m.index + m[0].length;
    }
    if (at < text.length) frag.append(document.createTextNode(text.slice(at)));
    return frag;
  }

  function renderAsk(data) {
    const passages = Array.isArray(data.passages) ? data.passages : [];
    const answer = data.answer;
    if (answer && typeof answer.text === "string") {
      ui.answerText.replaceChildren(renderAnswerText(answer.text, passages.length));
      ui.answerText.hidden = false;
      ui.answerMessage.hidden = true;
      const c = Math.max(0, Math.min(1, Number(answer.confidence) || 0));
      ui.confidenceFill.style.width = `${Math.round(c * 100)}%`;
      ui.confidenceValue.textContent = `${Math.round(c * 100)}%`;
      ui.confidence.title = `置信度 ${c.toFixed(3)}`;
      ui.confidence.hidden = false;
    } else {
      ui.answerText.replaceChildren();
      ui.answerText.hidden = true;
      ui.answerMessage.textContent = data.message || "没有找到能回答这个问题的段落。";
      ui.answerMessage.hidden = false;
      ui.confidence.hidden = true;
    }
    const cited = new Set((answer && answer.citations) || []);
    ui.passages.replaceChildren(
      ...passages.map((p, i) => passageItem(p, i + 1, cited.has(i + 1))),
    );
    if (!passages.length) ui.passages.append(el("li", { class: "muted", text: "没有匹配的段落。" }));
    const t = data.timings || {};
    ui.timings.textContent = Number.isFinite(t.total_ms) ? `用时 ${Math.round(t.total_ms)} 毫秒` : "";
  }

  function passageItem(p, n, cited) {
    const similarBox = el("div", { class: "similar", "data-testid": "similar", hidden: true, "aria-live": "polite" });
    const similarButton = el("button", {
      type: "button",
      class: "similar-btn",
      text: "相似文章",
      "aria-expanded": "false",
      "data-testid": "similar-button",
    });
    similarButton.addEventListener("click", () => toggleSimilar(p, similarBox, similarButton));
    const text = typeof p.text === "string" ? p.text : "";
    return el(
      "li",
      {
        class: cited ? "passage cited" : "passage",
        id: `passage-${n}`,
        tabindex: "-1",
        "data-testid": "passage",
        dataset: { n: String(n), passageId: p.passage_id, articleId: p.article_id },
      },
      el(
        "div",
        { class: "passage-head" },
        el("span", { class: "passage-num", text: `[${n}]` }),
        el("h3", { class: "passage-title", text: p.title || "（无标题）" }),
      ),
      el(
        "p",
        { class: "passage-meta" },
        ...metaSpans([
          p.date || "日期不详",
          p.source || null,
          Number.isFinite(p.score) ? `相关度 ${p.score.toFixed(3)}` : null,
        ]),
      ),
      el("p", { class: "cite-loc", title: "原始文件中的字符位置", text: location_(p.file, p.start, p.end) }),
      el("p", { class: "passage-text" }, markedTextCodePoints(text, p.highlights)),
      el(
        "div",
        { class: "passage-actions" },
        el("a", {
          class: "full-article",
          href: articleHash(p.article_id, p.passage_id),
          text: "全文",
          "data-testid": "full-article",
        }),
        similarButton,
      ),
      similarBox,
    );
  }

  function focusPassage(n) {
    const item = document.getElementById(`passage-${n}`);
    if (!item) return;
    for (const other of ui.passages.querySelectorAll(".passage.focused")) other.classList.remove("focused");
    item.classList.add("focused");
    item.scrollIntoView({ behavior: "smooth", block: "center" });
    item.focus({ preventScroll: true });
  }

  async function toggleSimilar(p, box, button) {
    if (box.dataset.loaded === "1") {
      box.hidden = !box.hidden;
      button.setAttribute("aria-expanded", String(!box.hidden));
      return;
    }
    if (box.dataset.loading === "1") return;
    box.dataset.loading = "1";
    box.hidden = false;
    button.setAttribute("aria-expanded", "true");
    box.replaceChildren(el("span", { class: "muted", text: "正在查找相似文章…" }));
    try {
      const data = await api("POST", "/similar", { passage_id: p.passage_id, level: "article", top_k: 5 });
      const results = Array.isArray(data.results) ? data.results : [];
      if (!results.length) {
        box.replaceChildren(el("span", { class: "muted", text: "没有找到相似文章。" }));
      } else {
        box.replaceChildren(
          el("div", { class: "muted", text: "相似文章" }),
          el(
            "ol",
            {},
            ...results.map((r) =>
              el(
                "li",
                { "data-testid": "similar-item" },
                el("a", { href: articleHash(r.article_id, r.best_passage_id), text: r.title || "（无标题）" }),
                " ",
                el("span", {
                  class: "muted",
                  text: [r.date, r.source, Number.isFinite(r.score) ? `相似度 ${r.score.toFixed(3)}` : null]
                    .filter(Boolean)
                    .join(" · "),
                }),
              ),
            ),
          ),
        );
      }
      box.dataset.loaded = "1";
    } catch (err) {
      box.replaceChildren(el("span", { class: "error-inline", role: "alert", text: err.message || String(err) }));
    } finally {
      box.dataset.loading = "";
    }
  }

  // ------------------------------------------------------------- whole article

  /** Where `passage` sits in the article's paragraphs: [{para, start, end}] in UTF-16 indices. */
  function locatePassage(paragraphs, passage) {
    const texts = paragraphs.map((p) => (typeof p.text === "string" ? p.text : ""));
    const joined = texts.join("\n");
    const paraStarts = [];
    let offset = 0;
    for (const t of texts) {
      paraStarts.push(offset);
      offset += t.length + 1;
    }
    const paraAt = (i) => {
      let k = 0;
      while (k + 1 < paraStarts.length && paraStarts[k + 1] <= i) k += 1;
      return k;
    };
    // Prefer the occurrence whose paragraph covers the passage's raw start offset.
    const pick = (candidates) => {
      const near = candidates.find(([s]) => {
        const para = paragraphs[paraAt(s)];
        return para && para.start <= passage.start && passage.start < para.end;
      });
      return near || candidates[0];
    };
    const split = ([s, e]) => {
      const pieces = [];
      texts.forEach((t, k) => {
        const ps = paraStarts[k];
        const a = Math.max(s, ps);
        const b = Math.min(e, ps + t.length);
        if (b > a) pieces.push({ para: k, start: a - ps, end: b - ps });
      });
      return pieces;
    };
    const needle = typeof passage.text === "string" ? passage.text : "";
    if (needle) {
      const found = [];
      for (let i = joined.indexOf(needle); i !== -1; i = joined.indexOf(needle, i + 1)) {
        found.push([i, i + needle.length]);
      }
      if (found.length) return split(pick(found));
      // Ignore white space (cleaning may differ between the two texts).
      const squashedNeedle = needle.replace(/\s+/g, "");
      const map = [];
      let squashed = "";
      for (let i = 0; i < joined.length; i += 1) {
        if (!/\s/.test(joined[i])) {
          squashed += joined[i];
          map.push(i);
        }
      }
      if (squashedNeedle) {
        const loose = [];
        for (let i = squashed.indexOf(squashedNeedle); i !== -1; i = squashed.indexOf(squashedNeedle, i + 1)) {
          loose.push([map[i], map[i + squashedNeedle.length - 1] + 1]);
        }
        if (loose.length) return split(pick(loose));
      }
    }
    // Last resort: the paragraphs whose raw ranges overlap the passage's.
    const pieces = [];
    paragraphs.forEach((p, k) => {
      if (p.start < passage.end && p.end > passage.start) pieces.push({ para: k, start: 0, end: texts[k].length });
    });
    return pieces;
  }

  async function runArticle(articleId, passageId) {
    showView("article");
    let article = state.articles.get(articleId);
    if (!article) {
      ui.articleTitle.textContent = "";
      ui.articleMeta.replaceChildren();
      ui.articleCite.hidden = true;
      ui.articleBody.replaceChildren();
      const controller = begin("正在载入全文…");
      try {
        article = await api("GET", "/articles/" + encodeURIComponent(articleId), null, controller.signal);
        if (state.inflight !== controller) return;
        state.articles.set(articleId, article);
      } catch (err) {
        if (err && err.name === "AbortError") return;
        showError(err.message || String(err));
        ui.articleTitle.textContent = "无法载入这篇文章";
        return;
      } finally {
        finish(controller);
      }
    } else {
      cancel();
      clearError();
    }
    renderArticle(article, passageId);
  }

  function renderArticle(article, passageId) {
    document.title = `${article.title} — ${BASE_TITLE}`;
    ui.articleTitle.textContent = article.title || "（无标题）";
    const files = Array.isArray(article.files) && article.files.length ? article.files : [article.file];
    const meta = metaSpans([article.date, article.source, article.byline, files.join("，")]);
    if (typeof article.url === "string" && /^https?:\/\//i.test(article.url)) {
      meta.push(el("span", {}, el("a", { href: article.url, rel: "noopener noreferrer", target: "_blank", text: "原文链接" })));
    }
    ui.articleMeta.replaceChildren(...meta);

    const paragraphs = Array.isArray(article.paragraphs) && article.paragraphs.length
      ? article.paragraphs
      : [{ text: article.text || "", start: 0, end: 0 }];
    const passages = Array.isArray(article.passages) ? article.passages : [];
    const passage = passageId ? passages.find((p) => p.passage_id === passageId) : null;
    const marks = new Map(); // para index -> [[start, end]]
    if (passage) {
      for (const piece of locatePassage(paragraphs, passage)) {
        if (!marks.has(piece.para)) marks.set(piece.para, []);
        marks.get(piece.para).push([piece.start, piece.end]);
      }
      ui.articleCite.textContent = `标出的是本文第 ${passage.position + 1} 个片段（共 ${passages.length} 个）：${location_(passage.file, passage.start, passage.end)}`;
      ui.articleCite.hidden = false;
    } else if (passageId) {
      ui.articleCite.textContent = `这篇文章里没有片段 ${passageId}（索引可能已更新）。`;
      ui.articleCite.hidden = false;
    } else {
      ui.articleCite.hidden = true;
    }
    ui.articleBody.replaceChildren(
      ...paragraphs.map((p, k) =>
        el("p", { dataset: { start: String(p.start), end: String(p.end) } }, markedText(p.text || "", marks.get(k) || [], "passage-mark")),
      ),
    );
    const first = ui.articleBody.querySelector("mark.passage-mark");
    if (first) {
      first.id = "article-mark";
      first.scrollIntoView({ block: "center" });
    } else {
      window.scrollTo(0, 0);
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

  /** Offer the index's newspapers and date range in the filters (a nicety: errors are ignored). */
  async function loadFilterHints() {
    try {
      const stats = await api("GET", "/stats");
      const list = $("sources");
      if (list && Array.isArray(stats.sources)) {
        list.replaceChildren(...stats.sources.filter((x) => typeof x === "string").map((x) => el("option", { value: x })));
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

  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
  route();
  loadFilterHints();
  if (!window.location.hash || window.location.hash === "#/") ui.question.focus();
})();

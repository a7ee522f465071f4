/* The whole-article view: its paragraphs, with one passage marked and scrolled to. */

import { api } from "./api.js";
import { codePointLength, el, markedTextCodePoints, metaSpans } from "./dom.js";
import { BASE_TITLE, begin, cancel, clearError, finish, showError, showView, state, ui } from "./page.js";
import { DERIVED_TITLE_HINT, fileLocation } from "./render.js";

/** Show article `articleId` (loaded once, then kept) with passage `passageId` marked. */
export async function runArticle(articleId, passageId) {
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

/** The passage's place in the article, per paragraph: paragraph index -> [[start, end]].
 *
 * The server gives it as article_start/article_end: code point offsets into the article's
 * text, which is its paragraphs joined by "\n". */
function passageMarks(paragraphs, passage) {
  const marks = new Map();
  const start = passage.article_start;
  const end = passage.article_end;
  if (!Number.isInteger(start) || !Number.isInteger(end)) return marks;
  let base = 0;
  paragraphs.forEach((p, k) => {
    const length = codePointLength(p.text || "");
    const s = Math.max(start, base);
    const e = Math.min(end, base + length);
    if (e > s) marks.set(k, [[s - base, e - base]]);
    base += length + 1;
  });
  return marks;
}

function renderArticle(article, passageId) {
  document.title = `${article.title} — ${BASE_TITLE}`;
  ui.articleTitle.textContent = article.title || "（无标题）";
  ui.articleTitle.classList.toggle("derived", Boolean(article.title_derived));
  ui.articleTitle.title = article.title_derived ? DERIVED_TITLE_HINT : "";
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
  const marks = passage ? passageMarks(paragraphs, passage) : new Map();
  if (passage) {
    ui.articleCite.textContent = `标出的是本文第 ${passage.position + 1} 个片段（共 ${passages.length} 个）：${fileLocation(passage.file, passage.start, passage.end)}`;
    ui.articleCite.hidden = false;
  } else if (passageId) {
    ui.articleCite.textContent = `这篇文章里没有片段 ${passageId}（索引可能已更新）。`;
    ui.articleCite.hidden = false;
  } else {
    ui.articleCite.hidden = true;
  }
  ui.articleBody.replaceChildren(
    ...paragraphs.map((p, k) =>
      el("p", { dataset: { start: String(p.start), end: String(p.end) } }, markedTextCodePoints(p.text || "", marks.get(k) || [], "passage-mark")),
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

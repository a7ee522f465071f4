/* The answer and its passages: [n] citations, highlights, similar articles. */

import { api } from "./api.js";
import { el, markedTextCodePoints, metaSpans } from "./dom.js";
import { ui } from "./page.js";

/** What a derived title (the source had none: its first sentence) says when hovered. */
export const DERIVED_TITLE_HINT = "原文没有标题，这里显示的是正文第一句";

/** The route of an article, with passage `passageId` marked in it. */
export function articleHash(articleId, passageId) {
  let hash = "#/article/" + encodeURIComponent(articleId);
  if (passageId) hash += "?p=" + encodeURIComponent(passageId);
  return hash;
}

/** Where a passage was read from: "file:start–end" (raw character offsets). */
export function fileLocation(file, start, end) {
  return `${file}:${start}–${end}`;
}

/** The answer text with each valid [n] turned into a link to passage n. */
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

/** Show a POST /ask response: the answer (or why there is none) and the passages. */
export function renderAsk(data) {
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
      el("h3", {
        class: p.title_derived ? "passage-title derived" : "passage-title",
        text: p.title || "（无标题）",
        title: p.title_derived ? DERIVED_TITLE_HINT : null,
      }),
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
    el("p", { class: "cite-loc", title: "原始文件中的字符位置", text: fileLocation(p.file, p.start, p.end) }),
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

/** Scroll to passage n and mark it as the one a citation points at. */
export function focusPassage(n) {
  const item = document.getElementById(`passage-${n}`);
  if (!item) return;
  for (const other of ui.passages.querySelectorAll(".passage.focused")) other.classList.remove("focused");
  item.classList.add("focused");
  item.scrollIntoView({ behavior: "smooth", block: "center" });
  item.focus({ preventScroll: true });
}

/** Open (loading them once) or close the articles similar to passage p. */
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

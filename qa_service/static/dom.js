/* Building DOM nodes. Everything the server sends goes on the page as text (textContent /
 * createTextNode), never as HTML. Offsets from the server count Unicode code points (Python
 * str indices); they are converted to JS string (UTF-16) indices before slicing. */

/** el("a", {class: "x", href: "#", text: "全文"}, child, ...) — text always as textContent. */
export function el(tag, props, ...children) {
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

/** How many code points `text` has (what the server's offsets count). */
export function codePointLength(text) {
  return Array.from(text).length;
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

/** A fragment of `text` with the [start, end) spans, counted in code points as the server
 * counts them, wrapped in <mark class=markClass>. */
export function markedTextCodePoints(text, spans, markClass) {
  const offsets = codePointOffsets(text);
  const last = offsets.length - 1;
  const clip = (i) => offsets[Math.max(0, Math.min(last, Number(i) || 0))];
  const units = (spans || [])
    .filter((sp) => Array.isArray(sp) && sp.length >= 2)
    .map(([s, e]) => [clip(s), clip(e)]);
  return markedText(text, units, markClass);
}

/** <span>s for the non-empty parts of a "date · source · ..." line. */
export function metaSpans(parts) {
  return parts.filter((p) => p).map((p) => (typeof p === "string" ? el("span", { text: p }) : p));
}

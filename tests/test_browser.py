"""The web page at ``/`` in a real headless Chromium, against the real service and seed index.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package, which
``make test`` installs first (``make browser``, i.e. ``scripts/install-browser.sh``). The tests
never install anything: when a piece is missing they fail in CI (env CI set) and skip elsewhere,
saying what to run. Screenshots go to ``test-artifacts/`` at the repository root.

    make browser && .venv/bin/pytest -m browser -v
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from indexer.clean import squash
from tests.conftest import REPO, SEEDS
from tests.helpers.ci import missing
from tests.helpers.server import serve
from tests.helpers.service import make_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
    "--lang=zh-CN",
]
QUESTION = "北碚经济技术开发区规划总面积是多少？"
ANSWER = "172.6"
WAIT = 60  # seconds: generous for a loaded CI machine; a normal answer takes well under 1 s


# ---------------------------------------------------------------- set-up


def _tools_missing() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    importlib.invalidate_caches()
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium")
    return missing


@pytest.fixture(scope="session")
def browser_tools() -> None:
    """Chromium, chromedriver and selenium: checked, never installed here."""
    if absent := _tools_missing():
        missing(f"headless Chromium ({', '.join(absent)})", "run `make browser` (as root)")


@pytest.fixture(scope="module")
def base_url(seed_index, embedder, settings):
    """The real service (uvicorn, in a thread) on a free port of 127.0.0.1."""
    with serve(make_app(settings, seed_index, embedder), wait_s=WAIT) as url:
        yield url


@pytest.fixture
def driver(browser_tools, tmp_path, request):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    drv.set_page_load_timeout(WAIT)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield drv
    finally:
        # The last state of every test, pass or fail: what to look at when one fails.
        with contextlib.suppress(Exception):
            drv.save_screenshot(str(ARTIFACTS / f"browser-{request.node.name}-last.png"))
        drv.quit()


# --------------------------------------------------------------- helpers


def shot(drv, name: str) -> Path:
    path = ARTIFACTS / f"browser-{name}.png"
    assert drv.save_screenshot(str(path)), f"could not save {path}"
    return path


def console_errors(drv, allow: tuple[str, ...] = ()) -> list[str]:
    """SEVERE entries of the browser console, less those containing an allowed string."""
    try:
        entries = drv.get_log("browser")
    except Exception:  # a driver without the log endpoint: nothing to check
        return []
    return [
        e["message"]
        for e in entries
        if e.get("level") == "SEVERE" and not any(a in e["message"] for a in allow)
    ]


def wait_for(drv, condition, what: str, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(
        condition, message=f"timed out waiting for {what}"
    )


def visible(drv, css: str):
    from selenium.webdriver.common.by import By

    def check(d):
        found = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return found or False

    return check


def text_of(drv, element) -> str:
    """textContent (what the DOM holds, not what CSS happens to show)."""
    return drv.execute_script("return arguments[0].textContent;", element)


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        return json.loads(r.read())


def expected_marks(text: str, highlights: list[list[int]]) -> list[str]:
    """The strings the page must wrap in <mark>: merged [s, e) spans in code points."""
    spans = sorted((max(0, s), min(len(text), e)) for s, e in highlights if e > s)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [text[s:e] for s, e in merged]


def in_viewport(drv, element) -> bool:
    return drv.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.bottom > 0 && r.top < window.innerHeight;",
        element,
    )


# ----------------------------------------------------------------- tests


def test_ask_cite_highlight_similar_and_article(driver, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = driver
    drv.get(base_url + "/")
    assert drv.title == "新闻问答"
    question = drv.find_element(By.ID, "question")
    assert drv.switch_to.active_element == question, "the ask box has the focus on load"

    # Ask with the Enter key.
    question.send_keys(QUESTION)
    question.send_keys(Keys.ENTER)
    cites = wait_for(drv, visible(drv, "#answer-text a.cite"), "an answer with [n] citations")
    answer = drv.find_element(By.ID, "answer-text")
    answer_text = text_of(drv, answer)
    assert ANSWER in answer_text, answer_text
    assert re.search(r"\[\d+\]", answer_text), answer_text
    assert all(re.fullmatch(r"\[\d+\]", c.text) for c in cites)
    assert urllib.parse.unquote(drv.current_url).endswith(
        "#/ask?q=" + QUESTION + "&mode=hybrid&k=5"
    )
    assert drv.find_element(By.ID, "ask").is_enabled(), "the loading state ended"
    assert not drv.find_element(By.ID, "status").is_displayed()
    assert drv.find_element(By.ID, "confidence").is_displayed()
    # The source filter offers the index's newspapers (from /stats).
    stats = json.loads(urllib.request.urlopen(base_url + "/stats", timeout=WAIT).read())
    options = wait_for(
        drv,
        lambda d: (
            [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#sources option")]
            or False
        ),
        "the source hints",
    )
    assert options == stats["sources"]

    # The passages: numbered, located in their file, highlighted exactly where the API says.
    passages = drv.find_elements(By.CSS_SELECTOR, "#passages .passage")
    assert passages, "no passages shown"
    api = post_json(base_url + "/ask", {"question": QUESTION})
    assert len(passages) == len(api["passages"])
    assert drv.find_elements(By.CSS_SELECTOR, "#passages .passage mark"), "no <mark> highlight"
    for n, (item, p) in enumerate(zip(passages, api["passages"], strict=True), start=1):
        assert item.get_attribute("id") == f"passage-{n}"
        assert item.get_attribute("data-passage-id") == p["passage_id"]
        assert item.find_element(By.CSS_SELECTOR, ".passage-num").text == f"[{n}]"
        assert item.find_element(By.CSS_SELECTOR, ".passage-title").text == p["title"]
        loc = item.find_element(By.CSS_SELECTOR, ".cite-loc").text
        assert loc == f"{p['file']}:{p['start']}–{p['end']}"
        body = item.find_element(By.CSS_SELECTOR, ".passage-text")
        assert text_of(drv, body) == p["text"]
        marks = [text_of(drv, m) for m in body.find_elements(By.TAG_NAME, "mark")]
        assert marks == expected_marks(p["text"], p["highlights"])
        # file:start–end on the page is the passage's place in the raw seed file.
        raw = (SEEDS / p["file"]).read_text(encoding="utf-8")
        assert squash(raw[p["start"] : p["end"]]) == squash(p["text"])
    assert ANSWER in text_of(drv, passages[0])
    shot(drv, "01-answer")

    # A citation scrolls to its passage and marks it as the focused one.
    cite = cites[-1]
    n = int(cite.get_attribute("data-n"))
    drv.execute_script("window.scrollTo(0, 0);")
    cite.click()
    target = drv.find_element(By.ID, f"passage-{n}")
    wait_for(drv, lambda d: "focused" in target.get_attribute("class"), f"passage {n} focused")
    assert drv.switch_to.active_element == target
    assert len(drv.find_elements(By.CSS_SELECTOR, ".passage.focused")) == 1
    wait_for(drv, lambda d: in_viewport(d, target), f"passage {n} scrolled into view", 10)
    assert target.find_elements(By.TAG_NAME, "mark"), "the cited passage has highlights"
    shot(drv, "02-citation")

    # Similar articles of the cited passage.
    target.find_element(By.CSS_SELECTOR, "[data-testid=similar-button]").click()
    box = target.find_element(By.CSS_SELECTOR, "[data-testid=similar]")
    items = wait_for(drv, visible(drv, f"#passage-{n} [data-testid=similar-item]"), "similar")
    api_similar = post_json(
        base_url + "/similar",
        {"passage_id": target.get_attribute("data-passage-id"), "level": "article", "top_k": 5},
    )
    assert len(items) == len(api_similar["results"])
    first = items[0].find_element(By.TAG_NAME, "a")
    assert first.text == (api_similar["results"][0]["title"] or "（无标题）")
    assert "#/article/" in first.get_attribute("href")
    assert box.is_displayed()
    shot(drv, "03-similar")

    # The whole article, with the passage marked and scrolled into view.
    passage_title = target.find_element(By.CSS_SELECTOR, ".passage-title").text
    passage_text = text_of(drv, target.find_element(By.CSS_SELECTOR, ".passage-text"))
    target.find_element(By.CSS_SELECTOR, "a.full-article").click()
    wait_for(drv, visible(drv, "#article-body mark.passage-mark"), "the article view")
    assert "/article/" in urllib.parse.unquote(drv.current_url)
    assert drv.find_element(By.ID, "article-title").text == passage_title
    assert not drv.find_element(By.ID, "results").is_displayed()
    marks = drv.find_elements(By.CSS_SELECTOR, "#article-body mark.passage-mark")
    assert squash("".join(text_of(drv, m) for m in marks)) == squash(passage_text)
    assert in_viewport(drv, marks[0])
    article_id = target.get_attribute("data-article-id")
    with urllib.request.urlopen(f"{base_url}/articles/{article_id}", timeout=WAIT) as r:
        article = json.loads(r.read())
    paragraphs = drv.find_elements(By.CSS_SELECTOR, "#article-body p")
    assert [text_of(drv, p) for p in paragraphs] == [p["text"] for p in article["paragraphs"]]
    assert drv.title.startswith(article["title"])
    shot(drv, "04-article")

    # Another passage of the same article, further down: marked exactly and scrolled to.
    last = article["passages"][-1]
    drv.get(f"{base_url}/#/article/{article_id}?p={last['passage_id']}")
    wait_for(
        drv,
        lambda d: (
            squash(
                "".join(
                    text_of(d, m) for m in d.find_elements(By.CSS_SELECTOR, "mark.passage-mark")
                )
            )
            == squash(last["text"])
        ),
        "the last passage marked",
    )
    marks = drv.find_elements(By.CSS_SELECTOR, "#article-body mark.passage-mark")
    assert in_viewport(drv, marks[0])
    assert (
        f"{last['file']}:{last['start']}–{last['end']}"
        in drv.find_element(By.ID, "article-cite").text
    )
    shot(drv, "04b-article-last-passage")
    drv.back()

    # Back to the answer: the results are still there, without asking again.
    drv.find_element(By.ID, "article-back").click()
    wait_for(drv, visible(drv, "#answer-text a.cite"), "the answer again")
    assert not drv.find_element(By.ID, "article-view").is_displayed()
    assert text_of(drv, drv.find_element(By.ID, "answer-text")) == answer_text

    errors = console_errors(drv)
    assert not errors, errors


def test_empty_question_and_server_errors_are_plain_messages(driver, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = driver
    drv.get(base_url + "/")
    error = drv.find_element(By.ID, "error")
    assert not error.is_displayed()

    # Empty and blank questions: a plain message, no request, no crash.
    drv.find_element(By.ID, "ask").click()
    wait_for(drv, lambda d: error.is_displayed(), "the empty-question message", 10)
    assert error.text == "请输入问题。"
    assert not drv.find_element(By.ID, "results").is_displayed()
    question = drv.find_element(By.ID, "question")
    question.send_keys("   ")
    question.send_keys(Keys.ENTER)
    assert error.text == "请输入问题。"
    assert drv.switch_to.active_element == question
    shot(drv, "05-empty-question")

    # The page still works after that: typing clears the message and a question is answered.
    question.clear()
    question.send_keys(QUESTION)
    assert not error.is_displayed()
    drv.find_element(By.ID, "ask").click()
    wait_for(drv, visible(drv, "#answer-text a.cite"), "an answer after the error")

    # A question the server refuses (over the length limit): its 422 detail, shown plainly.
    drv.execute_script("arguments[0].value = '问'.repeat(5000);", question)
    drv.find_element(By.ID, "ask").click()
    wait_for(drv, lambda d: error.is_displayed(), "the 422 message")
    assert "422" in error.text and "5000" in error.text, error.text
    assert "Traceback" not in error.text and "<" not in error.text
    assert drv.find_element(By.ID, "ask").is_enabled()
    shot(drv, "06-server-error")

    # No answer: the response's message, shown plainly (a filter that matches nothing).
    drv.get(base_url + "/#/ask?" + urllib.parse.urlencode({"q": QUESTION, "src": "没有这家报纸"}))
    message = wait_for(drv, visible(drv, "#answer-message"), "the no-answer message")[0]
    api = post_json(
        base_url + "/ask", {"question": QUESTION, "filters": {"source": "没有这家报纸"}}
    )
    assert api["answer"] is None
    assert message.text == api["message"]
    assert not drv.find_elements(By.CSS_SELECTOR, "#answer-text a.cite")
    assert not error.is_displayed()

    # An unknown article: the 404 detail.
    drv.get(base_url + "/#/article/no-such-article?p=x")
    error = wait_for(drv, visible(drv, "#error"), "the 404 message")[0]
    assert "404" in error.text and "no-such-article" in error.text, error.text
    shot(drv, "07-unknown-article")

    # Only the refused requests themselves may be in the console: no script errors.
    errors = console_errors(drv, allow=("Failed to load resource",))
    assert not errors, errors


def test_loading_state_on_a_narrow_screen(driver, base_url):
    from selenium.webdriver.common.by import By

    drv = driver
    drv.set_window_size(390, 844)
    drv.get(base_url + "/")
    # Hold every request back a little so that the loading state can be seen.
    drv.execute_script(
        "const real = window.fetch;"
        "window.fetch = (...a) => new Promise(r => setTimeout(r, 1500)).then(() => real(...a));"
    )
    drv.find_element(By.ID, "question").send_keys(QUESTION)
    drv.find_element(By.ID, "ask").click()
    status = wait_for(drv, visible(drv, "#status"), "the loading state", 5)[0]
    assert "正在检索" in status.text
    assert not drv.find_element(By.ID, "ask").is_enabled()
    assert drv.find_element(By.TAG_NAME, "body").get_attribute("aria-busy") == "true"
    shot(drv, "08-loading-narrow")
    wait_for(drv, visible(drv, "#answer-text a.cite"), "the answer")
    assert not status.is_displayed()
    assert drv.find_element(By.ID, "ask").is_enabled()
    # Nothing sticks out sideways on a phone-sized screen.
    overflow = drv.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    shot(drv, "09-answer-narrow")
    errors = console_errors(drv)
    assert not errors, errors


# ------------------------------------------------------------ the timeline

FACET_QUESTION = "重庆的项目建设"


def facets_of(base_url: str, **filters) -> dict:
    body = {"question": FACET_QUESTION, "facets": ["month", "source"]}
    if filters:
        body["filters"] = filters
    return post_json(base_url + "/ask", body)["facets"]


def passage_dates(drv) -> list[str]:
    from selenium.webdriver.common.by import By

    metas = drv.find_elements(By.CSS_SELECTOR, "#passages .passage .passage-meta span:first-child")
    return [text_of(drv, m) for m in metas]


def active(drv, css: str) -> str | None:
    """The month or source of the active facet button (one read: the list is re-rendered)."""
    return drv.execute_script(
        "const b = document.querySelector(arguments[0] + '.active');"
        "return b ? (b.dataset.month || b.dataset.source) : null;",
        css,
    )


def test_timeline_and_sources_filter_the_results(driver, base_url):
    from selenium.webdriver.common.by import By

    drv = driver
    drv.get(base_url + "/#/ask?" + urllib.parse.urlencode({"q": FACET_QUESTION}))
    bars = wait_for(drv, visible(drv, "#timeline .bar"), "the timeline")
    api = facets_of(base_url)

    # The bars are the dated months of the facets; the note counts every matching article.
    dated = [v for v in api["month"] if v["value"] != "unknown"]
    assert [(b.get_attribute("data-month"), int(b.get_attribute("data-count"))) for b in bars] == [
        (v["value"], v["count"]) for v in dated
    ]
    total = sum(v["count"] for v in api["month"])
    note = drv.find_element(By.ID, "timeline-note").text
    assert f"相关文章 {total} 篇" in note
    sources = drv.find_elements(By.CSS_SELECTOR, "#source-facets [data-testid=source-facet]")
    assert [text_of(drv, s.find_element(By.CSS_SELECTOR, ".source-count")) for s in sources] == [
        str(v["count"]) for v in api["source"]
    ]
    # The timeline sits above the answer and the passages.
    facets = drv.find_element(By.ID, "facets")
    answer = drv.find_element(By.ID, "answer")
    assert facets.location["y"] < answer.location["y"]
    shot(drv, "10-timeline")

    # A click on February 2023: the question is asked again with that month as its filter.
    bar = next(b for b in bars if b.get_attribute("data-month") == "2023-02")
    bar.click()
    wait_for(drv, lambda d: active(d, "#timeline .bar") == "2023-02", "the month filter")
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(drv.current_url).fragment.split("?")[1])
    assert (params["df"], params["dt"]) == (["2023-02-01"], ["2023-02-28"])
    assert drv.find_element(By.ID, "date-from").get_attribute("value") == "2023-02-01"
    dates = passage_dates(drv)
    assert dates and all(d.startswith("2023-02") for d in dates), dates
    filtered = facets_of(base_url, date_from="2023-02-01", date_to="2023-02-28")
    assert filtered["month"] == [v for v in api["month"] if v["value"] == "2023-02"]
    bars = drv.find_elements(By.CSS_SELECTOR, "#timeline .bar")
    assert [b.get_attribute("data-month") for b in bars] == ["2023-02"]
    shot(drv, "11-timeline-month-filter")

    # A second click on the active bar takes the month filter off again.
    bars[0].click()
    wait_for(
        drv,
        lambda d: "df=" not in d.current_url and active(d, "#timeline .bar") is None,
        "the month filter removed",
    )
    assert len(drv.find_elements(By.CSS_SELECTOR, "#timeline .bar")) == len(dated)

    # A click on a source filters by it.
    paper = next(v for v in api["source"] if v["value"] != "unknown")["value"]
    drv.find_element(By.CSS_SELECTOR, f'#source-facets button[data-source="{paper}"]').click()
    wait_for(drv, lambda d: active(d, "#source-facets .source") == paper, "the source filter")
    assert drv.find_element(By.ID, "source").get_attribute("value") == paper
    metas = drv.find_elements(By.CSS_SELECTOR, "#passages .passage .passage-meta")
    assert metas and all(paper in text_of(drv, m) for m in metas)
    shot(drv, "12-source-filter")

    errors = console_errors(drv)
    assert not errors, errors

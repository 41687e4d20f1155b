"""The HTML report in real headless Chromium (Debian's ``chromium``, driven by Playwright).

The page loads with no console errors, the filters change what is shown, a cell page opens, and a
patch named ``<script>alert(1)</script>.patch`` and a log line full of HTML are shown as text (no
dialog ever opens). Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
from conftest_report import HTML_LOG, XSS_PATCH, make_db, populate_sample  # noqa: E402

from tracker.report.data import load_report_data  # noqa: E402
from tracker.report.html import write_html  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def site(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        info = populate_sample(s)
        alpha_id = info["alpha"].id
        data = load_report_data(s)
    out = tmp_path / "site"
    write_html(data, out)
    return out, data, alpha_id


def _watch(page):
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on(
        "request",
        lambda r: problems.append(f"request: {r.url}") if not r.url.startswith("file://") else None,
    )
    return problems


def _visible_rows(page) -> list[str]:
    return page.eval_on_selector_all(
        "table.mx tbody tr",
        "trs => trs.filter(t => !t.hidden && t.offsetParent !== null)"
        ".map(t => t.querySelector('th').innerText)",
    )


def _visible_cells(page, selector: str) -> int:
    return page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.offsetParent !== null && "
        "getComputedStyle(e.querySelector('a') || e).visibility !== 'hidden').length",
    )


def test_matrix_page_filters_and_cell_page(browser, site):
    out, data, alpha_id = site
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems = _watch(page)
    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.title() == "ktrack: compatibility matrix"
    page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)

    all_rows = _visible_rows(page)
    assert sorted(set(all_rows)) == ["alpha@1.0", "beta@0.3"]
    total = _visible_cells(page, "table.mx td:not(.n)")
    assert total == len(data.matrix.cells)

    # patch set filter
    page.select_option("#f-ps", "beta")
    assert set(_visible_rows(page)) == {"beta@0.3"}
    page.select_option("#f-ps", "")
    assert sorted(set(_visible_rows(page))) == ["alpha@1.0", "beta@0.3"]

    # series filter: only 6.12's columns remain; beta has no 6.12 result and disappears
    series = page.eval_on_selector_all("#f-series option", "os => os.map(o => o.textContent)")
    page.select_option("#f-series", str(series.index("6.12") - 1))
    headers = page.eval_on_selector_all(
        "table.mx thead tr:nth-child(2) th",
        "ths => ths.filter(t => t.offsetParent !== null).map(t => t.innerText)",
    )
    assert set(headers) == {"6.12"}
    assert set(_visible_rows(page)) == {"alpha@1.0"}
    page.screenshot(path=str(ARTIFACTS / "report-series-filter.png"), full_page=True)
    page.select_option("#f-series", "")

    # status filter: unticking everything but "fail" hides the other cells and rows without one
    for value in ("p", "w", "e", "k"):
        page.uncheck(f".f-st[value='{value}']")
    fails = sum(1 for c in data.matrix.cells.values() if c.status.value == "fail")
    assert _visible_cells(page, "table.mx td:not(.n)") == fails
    assert _visible_cells(page, "table.mx td.p") == 0
    assert page.inner_text("#f-count").startswith(str(len(_visible_rows(page))))
    page.screenshot(path=str(ARTIFACTS / "report-status-filter.png"), full_page=True)

    # open the failing alpha cell on 6.12 (x86_64): the cell page shows the hostile text as text
    page.click("table.mx[data-target='x86_64:tinyconfig'] td.f a >> nth=0")
    page.wait_for_load_state("load")
    assert "/c/" in page.url
    verdict = page.inner_text("#verdict")
    assert verdict in ("apply:fail", "build:fail", "boot:fail")
    if verdict != "apply:fail":  # first failing cell was beta's: go to alpha's 6.12 instead
        job = next(
            j
            for j in data.matrix.jobs.values()
            if j.patchset == "alpha" and j.release == "6.12" and j.status.value == "fail"
        )
        page.goto((out / "c" / f"{job.id}.html").as_uri())
    assert page.inner_text("#verdict") == "apply:fail"
    names = page.eval_on_selector_all("td.pname", "tds => tds.map(t => t.textContent)")
    assert XSS_PATCH in names
    assert HTML_LOG in page.inner_text("pre.log")
    assert page.eval_on_selector_all("pre.log img, pre.log b, pre.log script", "e => e.length") == 0
    page.screenshot(path=str(ARTIFACTS / "report-cell.png"), full_page=True)

    # the patch set page with its SVG charts
    page.goto((out / "p" / f"{alpha_id}.html").as_uri())
    assert page.eval_on_selector_all("#timeline rect", "r => r.length") == sum(
        1 for j in data.matrix.jobs.values() if j.patchset == "alpha"
    )
    assert page.eval_on_selector_all("#drift circle", "c => c.length") >= 4
    page.screenshot(path=str(ARTIFACTS / "report-patchset.png"), full_page=True)
    assert problems == []
    page.close()

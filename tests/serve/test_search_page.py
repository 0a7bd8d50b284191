"""The kiosk search page in a real browser: Debian's headless Chromium (installed by `make test`), driven by
Selenium through Debian's chromedriver. A query is typed as a visitor types it, and the hits the page shows must be
the server's. One browser session, a few seconds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from m2v_edge.sync import Outbox, Record, ingest

from .conftest import start_server
from .test_serve_outbox import DEBIAN

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60.0
"""Seconds the browser may take to show what is waited for, on a loaded machine."""


@pytest.fixture(scope="module")
def page_server(potion_bundle: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    rows = [json.loads(line) for line in DEBIAN.read_text(encoding="utf-8").splitlines()[:500]]
    path = tmp_path_factory.mktemp("page") / "kiosk.outbox"
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id="lobby") as outbox:
        ingest(outbox, embedder, [Record(r["package"], r["document"], {"title": r["query"]}) for r in rows])
    server, url = start_server(potion_bundle, "--outbox", str(path))
    yield url
    assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    for program in (CHROMIUM, CHROMEDRIVER):  # `make test` installs both: their absence is a failure, not a skip
        assert shutil.which(program), f"{program} is missing: apt-get install chromium chromium-driver"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=800,480", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser or a driver
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_typed_query_shows_the_servers_hits(page_server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    query = "a text editor for the terminal"
    expected = requests.post(f"{page_server}/search", json={"query": query, "k": 10}, timeout=60).json()["hits"]
    browser.get(f"{page_server}/")
    assert browser.title == "Search"
    box = browser.find_element(By.ID, "query")
    box.send_keys(query, Keys.ENTER)
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "status").text.startswith("10 results"))
    items = browser.find_elements(By.CSS_SELECTOR, "#hits li")
    assert [item.get_attribute("data-id") for item in items] == [hit["id"] for hit in expected]
    first = items[0]
    assert first.find_element(By.CLASS_NAME, "id").text == expected[0]["metadata"]["title"]
    assert first.find_element(By.CLASS_NAME, "score").text == f"{expected[0]['score']:.3f}"
    assert expected[0]["text"].split()[0] in first.find_element(By.CLASS_NAME, "text").text

    box.clear()
    box.send_keys("🙂", Keys.ENTER)  # the server refuses a query that embeds to zero: the page says why
    WebDriverWait(browser, WAIT).until(lambda d: "zero vectors" in d.find_element(By.ID, "status").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#hits li") == []
    assert browser.find_element(By.ID, "status").get_attribute("class") == "error"

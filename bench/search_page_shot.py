"""`python -m bench.search_page_shot`: a screenshot of the kiosk search page for the README's gallery.

2,000 Debian packages (their synopsis as the title) go into a fresh outbox through `POST /documents`, a query is
typed into the page in Debian's headless Chromium at a 7" touch screen's 800x480, and the page is saved as
`bench/results/<date>-search-page.png`. Needs `chromium` and `chromium-driver` (Debian), like the page's test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import requests

from bench.serve_load import Server
from bench.paths import DEBIAN_DATA, POTION_MODEL, REPO

DOCUMENTS = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_page_shot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="play music and videos")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from m2v_edge.export import export_model

    rows = [json.loads(line) for line in DEBIAN_DATA.read_text(encoding="utf-8").splitlines()[:DOCUMENTS]]
    records = [{"id": r["package"], "text": r["document"], "metadata": {"title": r["query"], "package": r["package"]}}
               for r in rows]
    with tempfile.TemporaryDirectory() as scratch:
        bundle = export_model(POTION_MODEL, Path(scratch) / "bundle", variants=("int8",))
        server = Server("m2v_edge.cli", "serve", str(bundle), "--port", "0", "--outbox", f"{scratch}/kiosk.outbox")
        try:
            for start in range(0, DOCUMENTS, 500):
                reply = requests.post(f"{server.url}/documents", json=records[start : start + 500], timeout=300)
                reply.raise_for_status()
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
                options.add_argument(argument)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:  # the window's size includes a frame, in headless mode too: the page gets exactly 800x480
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                       {"width": 800, "height": 480, "deviceScaleFactor": 1, "mobile": False})
                driver.get(f"{server.url}/")
                driver.find_element(By.ID, "query").send_keys(args.query, Keys.ENTER)
                WebDriverWait(driver, 60).until(lambda d: "results" in d.find_element(By.ID, "status").text)
                args.out.mkdir(parents=True, exist_ok=True)
                path = args.out / f"{datetime.date.today().isoformat()}-search-page.png"
                driver.save_screenshot(str(path))
            finally:
                driver.quit()
        finally:
            server.stop()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

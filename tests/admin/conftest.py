"""A served application and one headless Chromium for the admin's browser tests, with a
screenshot of every view a failed test went through, written under its ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from servers import Server, call, token

#: Apps every browser test may rely on (and change: each test uses its own).
APPS = [
    {"id": 1, "name": "Zeta Expansion", "type": "dlc", "total_recommendations": 30},
    {"id": 2, "name": "Alpha Expansion", "type": "dlc", "total_recommendations": 10},
    {"id": 3, "name": "Mu Expansion", "type": "dlc", "total_recommendations": 20},
    {"id": 4, "name": "Big Game", "type": "game", "total_recommendations": 99},
    *(
        {
            "id": id,
            "name": f"Priced Game {id}",
            "type": "game",
            "prices": {
                "US": {
                    "currency": "USD",
                    "is_available": True,
                    "price_story": [
                        {
                            "price": 19.99,
                            "initial_price": 19.99,
                            "discount": 0,
                            "timestamp": "2025-06-01T00:00:00+00:00",
                        }
                    ],
                }
            },
        }
        for id in (10, 11, 12)
    ),
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator:
    """Tell the test's fixtures how its call went (``item.failed``)."""
    report = yield
    if report.when == "call" and report.failed:
        item.failed = True  # type: ignore[attr-defined]
    return report


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    services.require_browser()
    server = Server(tmp_path_factory.mktemp("admin-served")).start()
    try:
        writer = token("backend/*")
        for app in APPS:
            status, _, body = call(f"{server.url}/api/v1/apps", "POST", app, writer)
            assert status == 201, body
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def driver(served: Server) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = services.CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(services.CHROMEDRIVER), options=options)
    browser.implicitly_wait(5)
    try:
        yield browser
    finally:
        browser.quit()


class Browser:
    """The shared browser as one test uses it: every view it reaches is kept as a screenshot,
    written out if the test fails."""

    def __init__(self, driver, base: str) -> None:  # type: ignore[no-untyped-def]
        self.driver = driver
        self.base = base
        self.shots: list[tuple[str, bytes]] = []

    def seen(self, name: str) -> None:
        self.shots.append((name, self.driver.get_screenshot_as_png()))

    def open(self, path: str, name: str = "") -> None:
        self.driver.get(self.base + path)
        self.seen(name or path.strip("/").replace("/", "-") or "home")

    def find(self, css: str):  # type: ignore[no-untyped-def]
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css: str, name: str) -> None:
        self.find(css).click()
        self.seen(name)

    def type_into(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def sign_in(self, bearer: str) -> None:
        self.open("/admin/sign-in")
        self.type_into("#token", bearer)
        self.click("#sign-in-submit", "signed-in")

    def write_screenshots(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        shots = [*self.shots, ("at-failure", self.driver.get_screenshot_as_png())]
        for number, (name, png) in enumerate(shots, 1):
            (folder / f"{number:02d}-{name}.png").write_bytes(png)


@pytest.fixture
def browser(request: pytest.FixtureRequest, driver, served: Server, tmp_path: Path):  # type: ignore[no-untyped-def]
    if driver.current_url.startswith(served.url):
        driver.delete_all_cookies()  # each test signs in as it needs
    used = Browser(driver, served.url)
    yield used
    if getattr(request.node, "failed", False):
        used.write_screenshots(tmp_path / "screenshots")

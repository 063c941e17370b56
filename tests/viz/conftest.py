"""A headless Chromium for the HTML view tests (Debian's `chromium` + `chromium-driver`).

Skipped only where Chromium is not installed; under CI (`CI=true`) a missing browser is a failure
(.ci/run installs it). Never lets selenium fetch a browser or driver of its own.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        what = "Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(f"{what} are missing; CI requires them")
        pytest.skip(f"{what} are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service  # given a driver path: no Selenium Manager

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    yield drv
    drv.quit()

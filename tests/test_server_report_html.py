"""The HTML credit report rendered in headless Chromium, Chinese text readable.

``.ci/install-chromium.sh`` installs Debian's ``chromium`` and ``fonts-noto-cjk``;
CI runs it before the suite, so with ``CI=true`` this test always runs. On a
developer machine without Chromium it is skipped with the reason below.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from test_server_support import (  # noqa: F401 - fixtures
    SUBJECT_WITH_EVERYTHING,
    World,
    make_world,
    trained,
)

CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1200, 2600

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed; run .ci/install-chromium.sh (CI always does)")


@pytest.fixture(scope="module")
def world(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    yield from make_world(trained, tmp_path_factory.mktemp("report"))


def screenshot(html: Path, png: Path, profile: Path) -> None:
    """Headless Chromium, fresh profile, no network services; the process group is ours
    and is ended by its id if it overruns."""
    assert CHROMIUM is not None, "chromium is missing although CI=true"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
               f"--screenshot={png}", html.as_uri()]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert png.exists(), err.decode(errors="replace")[-2000:]


def test_report_renders_with_chinese_text(world: World, tmp_path: Path) -> None:
    response = world.platform.get(
        f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}/report",
        params={"purpose": "loan_approval", "format": "html"},
        headers=world.headers(world.bank_b_key))
    assert response.status_code == 200
    html = tmp_path / "report.html"
    html.write_text(response.text, encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(html, png, tmp_path / "profile")
    keep = os.environ.get("CREDITLAB_SCREENSHOT_DIR")
    if keep:
        shutil.copy(png, Path(keep) / "credit_report.png")
    image = Image.open(png).convert("L")
    assert image.size == (WIDTH, HEIGHT)
    pixels = image.tobytes()
    ink = sum(1 for p in pixels if p < 128) / len(pixels)
    assert 0.005 < ink < 0.5  # a page of text: neither blank nor a black box
    # the fonts Chromium falls back to for Chinese are CJK fonts, not boxes
    matched = subprocess.run(["fc-match", "-f", "%{family}", "sans-serif:lang=zh-cn"],
                             capture_output=True, text=True, check=True).stdout
    assert "CJK" in matched, matched

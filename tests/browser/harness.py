"""What the browser tests drive: a daphne subprocess (HTTP + websockets) and Debian's chromium;
what they check of a page's layout, and the screenshots they take for the docs."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import connections

from tests.processes import daphne_command, free_port, stop_process

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class DaphneServer:
    """``daphne hypersdk.asgi:application`` on a free port, sharing the test session's DB and Redis."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env, self.log_file = env, log_file
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> DaphneServer:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                daphne_command(self.port),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"daphne did not start:\n{self.log()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def outside_the_event_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in a thread of its own. Playwright's sync API runs an event loop
    in the test's thread, where the channel layer cannot publish (async_to_sync refuses, and the
    publisher drops the message): a job changed there would never reach the browser."""

    def closing_its_connection() -> T:
        try:
            return call(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(closing_its_connection).result()


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)", pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# Elements, or text too long for its element, sticking out of the viewport on the right,
# unless a scrolling (or clipping) box inside the viewport holds them: such a box scrolls on
# its own, the page does not.
FIND_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const holder = (element) => {
    for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") return box;
    }
    return null;
  };
  const name = (element) =>
    element.tagName.toLowerCase() + (element.id ? `#${element.id}` : "") +
    (element.className && typeof element.className === "string" ? `.${element.className.trim().split(/\\s+/).join(".")}` : "");
  const out = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    const clips = getComputedStyle(element).overflowX !== "visible";
    const right = Math.max(box.right, clips ? 0 : box.left + element.scrollWidth);
    if (box.width === 0 || right <= width + 0.5) continue;
    const held = holder(element);
    if (held && held.getBoundingClientRect().right <= width + 0.5) continue;
    out.push(`${name(element)} (right edge ${Math.round(right)} px)`);
  }
  return { width, pageWidth: document.documentElement.scrollWidth, out: out.slice(0, 10) };
}"""


def horizontal_overflow(page) -> list[str]:
    """What makes the page wider than its viewport: [] when nothing does."""
    found = page.evaluate(FIND_OVERFLOW)
    wide = [f"the page is {found['pageWidth']} px wide"] if found["pageWidth"] > found["width"] else []
    return wide + found["out"]


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
SCREENSHOT_VIEWPORT = {"width": 1024, "height": 700}
MAX_SCREENSHOT_BYTES = 150_000
UPDATE_SCREENSHOTS = "HYPERSDK_UPDATE_SCREENSHOTS"


def screenshot(page, name: str) -> Path:
    """``docs/images/<name>.png`` (the docs embed it): taken again, at 1024x700, when
    HYPERSDK_UPDATE_SCREENSHOTS=1; otherwise it must be there. Pixels are never compared: a
    restyled page is not a failure, only a missing or oversized image is."""
    path = SCREENSHOTS / f"{name}.png"
    if os.environ.get(UPDATE_SCREENSHOTS) == "1":
        page.set_viewport_size(SCREENSHOT_VIEWPORT)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(page.screenshot(type="png", animations="disabled", caret="hide"))
    assert path.is_file(), f"{path} is missing: run the browser tests with {UPDATE_SCREENSHOTS}=1"
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, f"{path} is {path.stat().st_size} bytes"
    return path

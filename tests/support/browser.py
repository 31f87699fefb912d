"""A real browser for page tests: headless Chromium driven over the DevTools protocol.

The protocol runs over a pipe (``--remote-debugging-pipe``: commands on the browser's fd 3,
replies and events on fd 4, one JSON message per NUL-terminated chunk), so the tests need no
websocket library and open no port. Chromium runs with a fresh profile and every background
network feature off (the machine's closed network otherwise makes it stall).

:func:`check_page` loads a page and reports what a person would see go wrong: pictures that did
not load, audio whose metadata did not load, console errors and uncaught exceptions, resources
that failed; it also takes a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--remote-debugging-pipe",
)
_TIMEOUT_S = 60.0

# Waits until every picture has loaded or failed and every audio element has its metadata or an
# error (5 s at most each), then reports the failures.
_CHECK_MEDIA = """(async () => {
  const settle = (el, done, events) => new Promise((resolve) => {
    if (done()) { resolve(); return; }
    events.forEach((e) => el.addEventListener(e, resolve, { once: true }));
    setTimeout(resolve, 5000);
  });
  const images = Array.from(document.images);
  const audio = Array.from(document.querySelectorAll("audio"));
  await Promise.all(images.map((i) => settle(i, () => i.complete, ["load", "error"])));
  await Promise.all(audio.map((a) => settle(a, () => a.readyState >= 1 || a.error,
                                            ["loadedmetadata", "error"])));
  return {
    images: images.length,
    broken_images: images.filter((i) => !(i.complete && i.naturalWidth > 0))
                         .map((i) => i.getAttribute("src")),
    audio: audio.length,
    broken_audio: audio.filter((a) => a.readyState < 1 || a.error)
                       .map((a) => a.getAttribute("src")),
    durations: audio.map((a) => a.duration),
  };
})()"""


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium executable; skips the test (a failure under ``CI=true``) when absent."""
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    return path


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class DevTools:
    """One headless Chromium and one page, driven over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # above fd 10, so that the redirections below cannot clobber them
        to_browser_r, from_browser_w = (_high(to_browser_r), _high(from_browser_w))
        # the browser reads commands on fd 3 and writes replies on fd 4
        redirect = (
            f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
            f"{to_browser_r}<&- {from_browser_w}>&-"
        )
        self.process = subprocess.Popen(
            ["bash", "-c", redirect, executable, *FLAGS, f"--user-data-dir={profile}"],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            self._replies[message["id"]] = message
                            self._lock.notify_all()
                    else:
                        self._events.put(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> Any:
        """Send one command (to the page's session unless ``page`` is False); return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + _TIMEOUT_S
        with self._lock:
            while self._next_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise TimeoutError(f"no reply from Chromium to {method}")
                self._lock.wait(min(left, 0.5))
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str) -> dict[str, Any]:
        """Collect events until ``method`` arrives; returns it."""
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium sent no {method}")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            self.events.append(event)
            if event.get("method") == method:
                return event

    def drain(self) -> None:
        while True:
            try:
                self.events.append(self._events.get_nowait())
            except queue.Empty:
                return

    def open(self, url: str, *, width: int = 1280, height: int = 900) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        self.drain()
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(str(params["exceptionDetails"].get("exception", params)))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                out.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close", page=False)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


@dataclass
class PageCheck:
    """What loading a page showed.

    Attributes:
        images, audio: how many picture / audio elements the page has.
        broken_images, broken_audio: the ``src`` of those that did not load.
        durations: each audio element's duration in seconds.
        errors: console errors, uncaught exceptions, failed loads.
        screenshot: the PNG taken after loading.
        results: the values of the extra expressions, in order.
    """

    images: int
    audio: int
    broken_images: list[str]
    broken_audio: list[str]
    durations: list[float]
    errors: list[str]
    screenshot: Path
    results: list[Any] = field(default_factory=list)


def check_page(
    index: Path, screenshot: Path, *, expressions: tuple[str, ...] = (), profile: Path
) -> PageCheck:
    """Load ``index`` in headless Chromium, wait for its media, evaluate ``expressions`` (e.g. to
    use the filters), take a screenshot and report (see :class:`PageCheck`)."""
    browser = DevTools(require_chromium(), profile)
    try:
        browser.open(index.resolve().as_uri())
        media = browser.evaluate(_CHECK_MEDIA)
        results = [browser.evaluate(expression) for expression in expressions]
        browser.screenshot(screenshot)
        return PageCheck(
            images=media["images"],
            audio=media["audio"],
            broken_images=media["broken_images"],
            broken_audio=media["broken_audio"],
            durations=media["durations"],
            errors=browser.errors(),
            screenshot=screenshot,
            results=results,
        )
    finally:
        browser.close()

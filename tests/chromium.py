"""Headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``: no
port, no extra dependency): the dashboard's browser tests, the Superset screenshot and the
dashboard benchmark (bench/bench_dashboard.py) use it. Written by hand because the Python
DevTools clients on PyPI need a debugging port or a bundled browser download; this one needs
only the Debian ``chromium`` package.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                       "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-pipe",
)

def chromium_binary() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate.startswith("/"):
            if os.access(candidate, os.X_OK):
                return candidate
        elif shutil.which(candidate):
            return shutil.which(candidate)
    return None


# -- a minimal DevTools-protocol client over --remote-debugging-pipe ----------------------

class DevTools:
    """Chromium with ``--remote-debugging-pipe``: commands go to its fd 3, answers and
    events come from its fd 4, each JSON message ended by a NUL byte."""

    def __init__(self, binary: str, workdir: Path) -> None:
        profile = workdir / "profile"
        profile.mkdir()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Copies numbered 10 or more (close-on-exec), so that placing them on 3 and 4 in the
        # child cannot overwrite one with the other; the placed 3 and 4 survive the exec.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def place_pipe_fds() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log_path = workdir / "chromium.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                close_fds=False, preexec_fn=place_pipe_fds,
            )
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from Chromium in time; log: "
                                   f"{self.log_path}")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited; log: {self.log_path.read_text()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


class Tab:
    """One page: network offline, console and exceptions recorded, dialogs recorded."""

    def __init__(self, browser: DevTools, width: int, height: int = 900, *,
                 offline: bool = True) -> None:
        """``offline``: no network at all (a page on a local server needs it off, and then
        checks requested_urls() instead)."""
        self.browser = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable")
        self.send("Network.emulateNetworkConditions", {
            "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self.resize(width, height)

    def send(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def resize(self, width: int, height: int = 900) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def open(self, path: Path) -> None:
        self.send("Page.navigate", {"url": path.resolve().as_uri()})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        """Poll until ``expression`` is truthy (errors while the page loads count as no)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression):
                    return
            except (AssertionError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}; "
                                     f"problems: {self.problems()}")
            time.sleep(0.05)

    def screenshot(self, path: Path, *, whole_page: bool = True) -> Path:
        """The whole page, or (``whole_page=False``, for a page that scrolls inside
        itself) what the viewport shows."""
        params: dict[str, Any] = {"format": "png"}
        if whole_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update({"captureBeyondViewport": True, "clip": {
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        shot = self.send("Page.captureScreenshot", params)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def events(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.browser.events
                if e.get("method") == method and e.get("sessionId") == self.session]

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, dialogs."""
        self.browser.drain(0.3)
        found = [f"console.{e['type']}: {e['args']}"
                 for e in self.events("Runtime.consoleAPICalled")
                 if e["type"] in ("error", "assert", "warning")]
        found += [f"exception: {e['exceptionDetails']}"
                  for e in self.events("Runtime.exceptionThrown")]
        found += [f"log {e['entry']['level']}: {e['entry']['text']}"
                  for e in self.events("Log.entryAdded")
                  if e["entry"]["level"] in ("error", "warning")]
        found += [f"dialog: {e['message']}" for e in self.events("Page.javascriptDialogOpening")]
        return found

    def requested_urls(self) -> list[str]:
        return [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]

"""Headless Chromium driven over the DevTools protocol: open a page, wait for what it shows, screenshot it.

Debian's ``chromium`` package is the browser (``apt-get install chromium``; ``scripts/setup.sh`` installs it
where apt can); ``websocket-client`` (one small pure-Python wheel, in the ``dev`` extra) speaks the protocol.
Lighter than Selenium (a driver binary and a dozen packages) or Playwright (its own browser build, which a
machine without internet cannot download). Used by ``scripts/screenshots.py`` and the suite's UI test.

Example::

    with Browser() as browser:
        browser.open("http://127.0.0.1:5000/")
        browser.wait("document.querySelectorAll('svg .trace').length > 0", "the charts")
        browser.screenshot(Path("ui.png"))
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",  # as root (CI, containers) Chromium refuses to start without it
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
"""No network beyond the page: no update checks, sync or field trials (nothing outside can be reached)."""


def chromium() -> str | None:
    """The browser's path: $CHROMIUM, else the first of Debian's and Ubuntu's names on the PATH."""
    return os.environ.get("CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )


class Browser:
    """One headless Chromium with a fresh profile, one page, ``width`` x ``height`` CSS pixels."""

    def __init__(self, width: int = 1600, height: int = 1000, executable: str | None = None) -> None:
        import websocket  # the dev extra's; imported here so that a missing one is said by the caller

        path = executable or chromium()
        if path is None:
            raise FileNotFoundError("no chromium on the PATH (apt-get install chromium)")
        self.profile = Path(tempfile.mkdtemp(prefix="gansweep-chromium-"))
        command = [path, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0"]
        command += [f"--window-size={width},{height}", "about:blank"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                page = next(t for t in json.load(answer) if t["type"] == "page")
            # Chromium refuses a socket that names an Origin it was not told to allow; a client need name none.
            self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._ids = itertools.count(1)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _port(self, timeout: float = 30) -> int:
        """The port Chromium chose, from the file it writes into its profile once it listens."""
        written = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.process.returncode} before it listened")
            if written.is_file() and (lines := written.read_text().splitlines()):
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not listen within {timeout:.0f} s")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (the events that arrive meanwhile are not needed here)."""
        sent = next(self._ids)
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait(self, expression: str, what: str, timeout: float = 90) -> Any:
        """Polls ``expression`` until it is truthy and returns its value; raises naming ``what`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not show {what} within {timeout:.0f} s")
            time.sleep(0.5)

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        """The page as a PNG (``clip``: x, y, width, height in CSS pixels)."""
        params: dict[str, Any] = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

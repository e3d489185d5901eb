"""A real headless browser for tests: Debian's chromium, driven over the Chrome DevTools Protocol (no extra packages).

Started with ``--headless --no-sandbox --disable-gpu`` on a loopback debugging
port, with a throw-away profile; nothing is downloaded. :meth:`Browser.poll`
evaluates a JavaScript expression in the page, or in its frames (the MLflow
UI shows an HTML artifact in an iframe), until it returns something truthy.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from websockets.sync.client import connect

from flows.processes import Started, stop

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
WHY_MISSING = (
    "chromium is not installed: `bash scripts/test.sh` installs Debian's chromium when it runs as root with apt-get; "
    "elsewhere install it (apt-get install chromium) to run the browser tests"
)


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class PageChanged(RuntimeError):
    """The page or one of its frames navigated between two DevTools calls; the caller may simply look again."""


class Browser:
    def __init__(self, executable: str, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self._log = open(profile / "chromium.log", "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [
                executable, "--headless", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                # keep the sandboxed iframe of an HTML artifact in this process, so that its document can be inspected
                "--disable-features=IsolateOrigins,site-per-process,IsolateSandboxedIframes",
                "about:blank",
            ],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.started = Started("chromium", self.proc.pid, psutil.Process(self.proc.pid).create_time(), str(profile / "chromium.log"))
        self._ids = itertools.count(1)
        try:
            port = self._port(profile / "DevToolsActivePort")
            request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
            with urllib.request.urlopen(request, timeout=30) as response:
                target = json.load(response)
            self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
            self.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def _port(self, path: Path, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its debugging port")

    def call(self, method: str, **params: Any) -> dict:
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    error = f"{method}: {message['error']}"
                    gone = any(m in error for m in ("Cannot find context", "No frame", "Execution context was destroyed"))
                    raise PageChanged(error) if gone else RuntimeError(error)
                return message["result"]

    def open(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"could not open {url}: {result['errorText']}")

    def _evaluate(self, expression: str, context_id: int | None = None) -> Any:
        params = {"expression": expression, "returnByValue": True}
        if context_id is not None:
            params["contextId"] = context_id
        result = self.call("Runtime.evaluate", **params)
        return None if "exceptionDetails" in result else result["result"].get("value")

    def _frames(self) -> list[str]:
        def walk(node: dict) -> list[str]:
            return [node["frame"]["id"], *(f for child in node.get("childFrames", []) for f in walk(child))]

        return walk(self.call("Page.getFrameTree")["frameTree"])[1:]

    def poll(self, expression: str, *, frames: bool = False, timeout: float = 90) -> Any:
        """Evaluate ``expression`` in the page (or in each of its frames) until it is truthy; return that value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if frames:
                    for frame_id in self._frames():
                        context = self.call("Page.createIsolatedWorld", frameId=frame_id)["executionContextId"]
                        if value := self._evaluate(expression, context):
                            return value
                elif value := self._evaluate(expression):
                    return value
            except PageChanged:
                pass  # a frame navigated or went away between two calls: look again
            time.sleep(0.5)
        raise AssertionError(f"not true after {timeout:.0f} s: {expression}")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        stop(self.started, timeout=20)  # chromium and its helper processes
        self.proc.wait(timeout=5)
        self._log.close()

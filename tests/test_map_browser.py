"""The map in a real headless Chromium with every network request blocked.

Chromium is driven over its DevTools protocol on a pipe (--remote-debugging-pipe: file descriptors 3 and 4,
NUL-separated JSON), so the test needs nothing beyond the standard library. It records console errors,
uncaught exceptions, JavaScript dialogs (an injected alert) and every request the page makes, then counts
what Leaflet drew and saves a screenshot under test-artifacts/.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from planner.maps import write_map

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "devtools:")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, binary: str, profile: Path):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def child_fds() -> None:  # runs in the child: the protocol pipes must be fds 3 and 4
            high_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-quic",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),  # kept open in the child after child_fds() put the pipes there
            preexec_fn=child_fds,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)

    def _record(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":  # an alert blocks the page: dismiss it
            self.send("Page.handleJavaScriptDialog", {"accept": True}, session=message.get("sessionId"))

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            self._record(message)
            if message.get("method") == method:
                return message

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while True:
                self._record(self._read_message(deadline))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def _load_page(binary: str, url: str, screenshot: Path) -> dict[str, Any]:
    """Open `url`, let it settle, and return what happened: requests, errors, dialogs and DOM counts."""
    with tempfile.TemporaryDirectory(prefix="planner-chromium-") as profile:
        browser = DevTools(binary, Path(profile))
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session=session)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            browser.send("Page.navigate", {"url": url}, session=session)
            browser.wait_for("Page.loadEventFired", timeout=60)
            browser.drain(1.5)
            counts = browser.send(
                "Runtime.evaluate",
                {
                    "expression": """JSON.stringify({
                        paths: document.querySelectorAll('path.leaflet-interactive').length,
                        allPaths: document.querySelectorAll('.leaflet-overlay-pane path').length,
                        popup: (document.querySelector('.leaflet-popup-content') || {}).textContent || null,
                        popupHtml: (document.querySelector('.leaflet-popup-content') || {}).innerHTML || null,
                        scripts: Array.from(document.scripts).map(s => s.src).filter(Boolean),
                        pwned: document.body.dataset.pwned || null,
                        layers: document.querySelectorAll('.leaflet-control-layers-overlays label').length,
                        legend: (document.querySelector('.kpu-legend') || {}).textContent || null,
                        leaflet: typeof L !== 'undefined' ? L.version : null,
                    })""",
                    "returnByValue": True,
                },
                session=session,
            )
            shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            browser.drain(0.3)
        finally:
            browser.close()
    events = browser.events
    return {
        "dom": json.loads(counts["result"]["value"]),
        "requests": [
            e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"
        ],
        "exceptions": [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"],
        "console_errors": [
            e["params"]
            for e in events
            if (
                e.get("method") == "Runtime.consoleAPICalled"
                and e["params"].get("type") in ("error", "assert")
            )
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
        ],
        "dialogs": [e["params"] for e in events if e.get("method") == "Page.javascriptDialogOpening"],
    }


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium not installed: browser tests skipped")
    return binary


def _render(tmp_path: Path, plan, network, node_info, items, boundaries, audience: str) -> Path:
    return write_map(
        plan,
        network,
        node_info,
        audience,
        tmp_path / f"map-{audience}.html",
        items=items,
        boundaries=boundaries,
    )


def test_kpu_map_renders_offline_with_routes_markers_and_escaped_names(
    chromium, tmp_path, maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries
):
    page = _render(tmp_path, maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries, "kpu")
    # open the hostile desa's popup on load, so its name is in the DOM
    url = page.as_uri() + "#popup=" + "pps:64.99.01.2001"
    result = _load_page(chromium, url, ARTIFACTS / "map-kpu.png")
    dom = result["dom"]

    assert result["exceptions"] == []
    assert result["console_errors"] == []
    assert result["dialogs"] == [], "a desa name ran as script"
    leaving = [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)]
    assert leaving == [], f"requests left the machine: {leaving}"
    assert dom["scripts"] == []  # every script is inline
    assert dom["leaflet"] == "1.9.4"
    assert dom["pwned"] is None

    legs_drawn = sum(1 for _ in maps_network.legs.index)
    markers = len(maps_network.nodes)
    route_features = len(maps_plan.routes)
    # every open and blocked leg except the hidden access layer, every route and every node marker
    access = int((maps_network.legs["mode"] == "access").sum())
    assert dom["paths"] >= legs_drawn - access + route_features + markers
    assert dom["allPaths"] > dom["paths"]  # arrowheads and boundaries are drawn but not clickable

    hostile = maps_network.nodes.at["pps:64.99.01.2001", "name"]
    assert hostile == "<script>alert(1)</script>"
    assert dom["popup"] is not None and hostile in dom["popup"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom["popupHtml"]
    assert "DPT" in dom["popup"] and "1,170" in dom["popup"]
    assert "Delivered: Surat suara" in dom["popup"]
    vehicles = len({r.vehicle_id for r in maps_plan.routes})
    assert dom["layers"] >= vehicles + 8
    assert "Blocked legs" in dom["legend"]
    assert (ARTIFACTS / "map-kpu.png").stat().st_size > 10_000


@pytest.mark.parametrize("node_id", ["pps:64.99.01.2002", "pps:64.99.02.2001"])
def test_other_hostile_names_show_as_text(
    chromium, tmp_path, maps_plan, maps_network, maps_node_info, maps_items, node_id
):
    page = _render(tmp_path, maps_plan, maps_network, maps_node_info, maps_items, None, "kpu")
    result = _load_page(chromium, page.as_uri() + "#popup=" + node_id, tmp_path / "shot.png")
    expected = maps_network.nodes.at[node_id, "name"]
    assert "<img" in expected or "${" in expected
    assert result["dom"]["popup"] is not None and expected in result["dom"]["popup"]
    assert result["dom"]["pwned"] is None
    assert result["dialogs"] == []
    assert result["exceptions"] == [] and result["console_errors"] == []
    assert [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)] == []


def test_lanal_map_renders_offline(chromium, tmp_path, maps_plan, maps_network, maps_items, maps_boundaries):
    page = _render(tmp_path, maps_plan, maps_network, None, maps_items, maps_boundaries, "lanal")
    result = _load_page(chromium, page.as_uri() + "#popup=pps:64.99.02.2002", ARTIFACTS / "map-lanal.png")
    assert result["exceptions"] == [] and result["console_errors"] == [] and result["dialogs"] == []
    assert [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)] == []
    dom = result["dom"]
    assert dom["popup"] is not None and "Pulau Miang" in dom["popup"]
    # one sea leg, the ship route, two sea ports and one island stop
    assert dom["paths"] == 1 + 1 + 2 + 1


def test_the_harness_sees_requests_errors_and_dialogs(chromium, tmp_path):
    """The checks above can fail: a page that phones home, logs an error, throws and alerts is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><head><script src='https://cdn.example.org/leaflet.js'></script></head><body>"
        "<script>console.error('boom'); alert(1);</script><script>throw new Error('bad')</script>"
        "</body></html>",
        encoding="utf-8",
    )
    result = _load_page(chromium, page.as_uri(), tmp_path / "bad.png")
    assert any(u.startswith("https://cdn.example.org/") for u in result["requests"])
    assert result["console_errors"]
    assert result["exceptions"]
    assert result["dialogs"]


def test_hostile_vehicle_id_in_the_layer_control_is_text(chromium, tmp_path, maps_plan, maps_network):
    plan = maps_plan.model_copy(deep=True)
    plan.routes[0].vehicle_id = '<img src=x onerror="document.body.dataset.pwned=1">'
    page = write_map(plan, maps_network, None, "kpu", tmp_path / "map.html")
    result = _load_page(chromium, page.as_uri(), tmp_path / "shot.png")
    assert result["dom"]["pwned"] is None
    assert result["dialogs"] == [] and result["exceptions"] == [] and result["console_errors"] == []
    assert [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)] == []

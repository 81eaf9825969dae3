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
from collections.abc import Sequence
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


def _load_page(
    binary: str,
    url: str,
    screenshot: Path,
    actions: Sequence[str] = (),
    size: tuple[int, int] = (1200, 900),
) -> dict[str, Any]:
    """Open `url`, let it settle, and return what happened: requests, errors, dialogs and DOM counts.

    `actions`: JavaScript expressions evaluated in turn after the page settled (before the screenshot);
    their JSON values are returned under "actions". `size`: the viewport (width, height).
    """
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
                {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 700},
                session=session,
            )
            browser.send("Page.navigate", {"url": url}, session=session)
            browser.wait_for("Page.loadEventFired", timeout=60)
            browser.drain(1.5)
            done = []
            for action in actions:
                answer = browser.send(
                    "Runtime.evaluate",
                    {"expression": f"JSON.stringify({action})", "returnByValue": True},
                    session=session,
                )
                done.append(json.loads(answer["result"].get("value") or "null"))
                browser.drain(0.3)
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
        "actions": done,
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
    assert "DPT" in dom["popup"] and "1.170" in dom["popup"] and "Surat suara" in dom["popup"]
    assert "<details>" in dom["popupHtml"]  # the item list is folded away
    # boundaries x2, road, river, sea, access, blocked, 4 vehicle families, 5 point layers, positions
    assert dom["layers"] == 2 + 5 + 4 + 5 + 1
    assert "Ruas tertutup" in dom["legend"]
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
    # one sea leg, the ship route, two sea ports, one island stop and the ship's position marker
    assert dom["paths"] == 1 + 1 + 2 + 1 + 1


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


def _kaltim_like_plan(plan, network):
    """The fixture plan with a second sea trip, so the Lanal table has rows to count."""
    from datetime import timedelta

    busier = plan.model_copy(deep=True)
    second = busier.routes[4].model_copy(deep=True, update={"trip": 2})
    for stop in second.stops:
        stop.arrival += timedelta(hours=8)
        stop.departure += timedelta(hours=8)
    busier.routes.append(second)
    return busier


MARKERS = "Array.from(document.querySelectorAll('path.kpu-vehicle')).map(p => p.getAttribute('d'))"


def _set_time(minute: int) -> str:
    return (
        "(() => { const i = document.getElementById('kpu-time-input'); i.value = "
        f"{minute}; i.dispatchEvent(new Event('input')); const box = document.getElementById('kpu-time');"
        " return {clock: box.querySelector('.kpu-clock').textContent, moving: box.dataset.moving,"
        f" markers: {MARKERS}}}; }})()"
    )


def test_the_time_control_moves_the_vehicles(chromium, tmp_path, maps_plan, maps_network, maps_items):
    page = write_map(maps_plan, maps_network, None, "kpu", tmp_path / "map.html", items=maps_items)
    # the truck leaves the warehouse at 06:00 on 23 Nov and reaches PPK Alpha at 07:00
    result = _load_page(
        chromium,
        page.as_uri(),
        ARTIFACTS / "map-kpu-time.png",
        actions=[
            _set_time(6 * 60),
            _set_time(6 * 60 + 30),
            _set_time(6 * 60 + 45),
            _set_time(24 * 60 + 60 * 3),
        ],
    )
    assert result["exceptions"] == [] and result["console_errors"] == []
    assert [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)] == []
    at_six, half_past, quarter_to, next_day = result["actions"]
    assert at_six["clock"] == "Sabtu, 23 November 2024, 06.00 WITA"
    assert next_day["clock"] == "Minggu, 24 November 2024, 03.00 WITA"
    vehicles = len({r.vehicle_id for r in maps_plan.routes})
    assert len(at_six["markers"]) == len(half_past["markers"]) == vehicles
    moved = [a != b for a, b in zip(at_six["markers"], half_past["markers"], strict=True)]
    assert sum(moved) == 1  # only the truck is on the road then
    assert half_past["markers"] != quarter_to["markers"]  # and it keeps moving
    assert half_past["moving"] == "1" and next_day["moving"] == "0"


def test_lanal_table_has_one_row_per_sea_trip(chromium, tmp_path, maps_plan, maps_network, maps_items):
    plan = _kaltim_like_plan(maps_plan, maps_network)
    sea_trips = [r for r in plan.routes if any(leg.startswith("sea:") for leg in r.legs)]
    page = write_map(plan, maps_network, None, "lanal", tmp_path / "lanal.html", items=maps_items)
    rows = (
        "Array.from(document.querySelectorAll('#kpu-trips tbody tr')).map(tr => "
        "({trip: tr.dataset.trip, text: tr.textContent}))"
    )
    result = _load_page(chromium, page.as_uri(), ARTIFACTS / "map-lanal-table.png", actions=[rows])
    assert result["exceptions"] == [] and result["console_errors"] == []
    table = result["actions"][0]
    assert [row["trip"] for row in table] == [f"trip:{r.vehicle_id}#{r.trip}" for r in sea_trips]
    for row in table:
        assert "Pulau Miang" in row["text"] and "koli" in row["text"] and "Pelabuhan Lanal" in row["text"]


def test_kpu_map_on_a_phone_screen(chromium, tmp_path, maps_plan, maps_network, maps_node_info, maps_items):
    page = write_map(
        maps_plan, maps_network, maps_node_info, "lanal", tmp_path / "phone.html", items=maps_items
    )
    legend_open = "document.querySelector('.kpu-legend details').open"
    result = _load_page(
        chromium, page.as_uri(), ARTIFACTS / "map-lanal-phone.png", actions=[legend_open], size=(390, 800)
    )
    assert result["exceptions"] == [] and result["console_errors"] == []
    assert result["actions"] == [False]  # the legend starts folded on a phone
    assert (ARTIFACTS / "map-lanal-phone.png").stat().st_size > 5_000

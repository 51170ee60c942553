"""The HTML rollout report in a real headless Chromium.

Three checks: the DOM after the page's JS ran (``--dump-dom``), a screenshot that shows the
verdict colours (``--screenshot``), and hovering, clicking and the styled tooltip, driven
over the DevTools protocol on a pipe (``--remote-debugging-pipe``, Python stdlib only).

Chromium comes from Debian's ``chromium`` package (``tools/install_chromium.sh``); the tests
skip only when no Chromium binary can be found. ``FGRLHF_CHROMIUM`` names a binary to use;
``FGRLHF_REPORT_ARTIFACTS`` names a folder that receives the report and its screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fgrlhf.eval.html import ERROR_COLOUR, OK_COLOUR, items_from_eval_records, rollout_report

pytestmark = pytest.mark.slow

CANDIDATES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome", "headless_shell")
WIDTH, HEIGHT = 1200, 1400


def find_chromium() -> str | None:
    """``FGRLHF_CHROMIUM``, else the first Chromium on PATH, else Debian's library path."""
    env = os.environ.get("FGRLHF_CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return "/usr/lib/chromium/chromium" if os.access("/usr/lib/chromium/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium binary found (chromium or chromium-headless-shell on PATH, or "
                    "FGRLHF_CHROMIUM); install one with tools/install_chromium.sh")
    return path


def base_flags(binary: str, profile: Path) -> list[str]:
    headless = "--headless" if "headless" in Path(binary).name else "--headless=new"
    # --no-sandbox: Chromium refuses to start as root (CI containers) with its sandbox on.
    return [headless, "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
            "--force-device-scale-factor=1", f"--user-data-dir={profile}"]


def run_chromium(binary: str, args: list[str], tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{time.monotonic_ns()}"
    proc = subprocess.run([binary, *base_flags(binary, profile), *args], capture_output=True, timeout=timeout,
                          start_new_session=True)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-3000:]}"
    return proc


# --- the report under test ---------------------------------------------------------------

NASTY = 'Use <b>x</b> & "y" </div><script>document.title="hacked"</script> here.'
ANSWERS = [
    "Paris is the capital of France. It lies on the Seine, and it has 2 million people.\n"
    "The Eiffel Tower was built in 1999.",
    NASTY,
    "I do not know.",
]


def _records() -> list[dict]:
    """Three answers in evaluate_qa's record format: R1 verdicts with P(error), R2 verdicts,
    an R3 score."""
    a0, a1 = ANSWERS[0], ANSWERS[1]

    def seg(text, piece, error, p):
        s = text.index(piece)
        return {"start": s, "end": s + len(piece), "text": piece, "error": error, "error_prob": p}

    rel0 = [seg(a0, "Paris is the capital of France.", False, 0.05), seg(a0, "It lies on the Seine,", False, 0.2),
            seg(a0, "and it has 2 million people.", True, 0.8), seg(a0, "The Eiffel Tower was built in 1999.", False, 0.3)]
    fact0 = [seg(a0, "Paris is the capital of France.", False, 0.02),
             seg(a0, "It lies on the Seine, and it has 2 million people.", False, 0.4),
             seg(a0, "The Eiffel Tower was built in 1999.", True, 0.95)]
    rel1 = [seg(a1, a1[:a1.index(" </div>")], True, 0.6), seg(a1, a1[a1.index("</div>"):], False, 0.1)]
    fact1 = [seg(a1, a1, True, 0.7)]
    rel2 = [seg(ANSWERS[2], ANSWERS[2], False, 0.4)]
    fact2 = [seg(ANSWERS[2], ANSWERS[2], False, 0.1)]
    return [{"prompt_index": i, "sample": 0, "question": q, "answer": a, "relevance": r, "factuality": f,
             "completeness": c, "rougeLsum": 30.0 - 10 * i, "length_words": len(a.split())}
            for i, (q, a, r, f, c) in enumerate(zip(
                ["What is the capital of France?", 'What does <script> do & why "quote"?', "Who?"],
                ANSWERS, [rel0, rel1, rel2], [fact0, fact1, fact2], [1.2, -0.4, -2.0]))]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, list]:
    items = items_from_eval_records(_records(), reward_values={"relevance": (0.3, -0.3),
                                                               "factuality": (0.5, -0.5), "completeness": 0.3})
    path = rollout_report(items, tmp_path_factory.mktemp("report") / "rollouts.html", title="Browser check <&>")
    return path, items


def _keep(*paths: Path) -> None:
    folder = os.environ.get("FGRLHF_REPORT_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for p in paths:
            shutil.copy(p, Path(folder) / p.name)


class Dom(HTMLParser):
    """Segments (attributes and text), answers (their whole text) and scripts of a DOM dump."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, str]] = []  # (tag, class)
        self.segments: list[dict] = []
        self.answers: list[str] = []
        self.scripts = 0
        self.root: dict = {}
        self.tooltip: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        cls = attrs.get("class") or ""
        if tag == "html":
            self.root = attrs
        if tag == "script":
            self.scripts += 1
        if attrs.get("id") == "tooltip":
            self.tooltip = attrs
        if tag == "div" and "answer" in cls.split():
            self.answers.append("")
        if tag == "span" and "seg" in cls.split():
            self.segments.append({**attrs, "text": ""})
        if tag not in ("meta", "input", "br"):
            self.open.append((tag, cls))

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if any(t == "div" and "answer" in c.split() for t, c in self.open):
            self.answers[-1] += data
        if any(t == "span" and "seg" in c.split() for t, c in self.open):
            self.segments[-1]["text"] += data


def test_dom_after_javascript(chromium, report, tmp_path):
    path, items = report
    out = run_chromium(chromium, ["--dump-dom", path.as_uri()], tmp_path)
    dom_html = out.stdout.decode("utf-8")
    (tmp_path / "dom.html").write_text(dom_html, encoding="utf-8")
    dom = Dom()
    dom.feed(dom_html)
    # The page's script ran to its end (it marks the root) and nothing in the answers ran.
    assert dom.root.get("data-report-ready") == "true", dom_html[:500]
    assert dom.scripts == 1
    assert "<title>Browser check &lt;&amp;&gt;</title>" in dom_html  # not "hacked"
    # Every segment rendered, with its text, tooltip and data; every answer whole, once per category.
    expected = [(k, it.answer[s.start:s.end]) for it in items for k, j in it.categories.items() for s in j.segments]
    assert [(s["data-category"], s["text"]) for s in dom.segments] == expected
    assert dom.answers == [it.answer for it in items for _ in it.categories]
    assert all(s.get("title", "").count("\n") >= 2 and "reward " in s["title"] for s in dom.segments)
    assert dom.tooltip is not None and "hidden" in dom.tooltip
    assert sum(s["class"] == "seg seg-error" for s in dom.segments) == 4


def _colour_pixels(rgb, hex_colour: str, tol: float = 4 / 255):
    import numpy as np

    target = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(rgb - target) <= tol).all(axis=-1).sum())


def test_screenshot_shows_the_verdicts(chromium, report, tmp_path):
    import numpy as np
    from matplotlib.image import imread

    path, _ = report
    png = tmp_path / "report.png"
    run_chromium(chromium, [f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", path.as_uri()], tmp_path)
    _keep(path, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rgb = imread(png)[..., :3]
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    # Not blank: dark text on light backgrounds, and both verdict colours over many pixels.
    assert rgb.std() > 0.05
    assert (rgb.mean(axis=-1) < 0.3).sum() > 2000
    assert _colour_pixels(rgb, OK_COLOUR) > 2000, "no error-free (green) segments painted"
    assert _colour_pixels(rgb, ERROR_COLOUR) > 1000, "no error (red) segments painted"
    assert np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0).shape[0] > 50


# --- DevTools protocol over a pipe ---------------------------------------------------------

class DevTools:
    """A minimal Chrome DevTools Protocol client: Chromium reads commands from its fd 3 and
    writes replies and events to its fd 4, each message one JSON text ended by a NUL byte."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60) -> None:
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Chromium's ends must not be 3 or 4 themselves, or the redirections below clobber them.
        to_chrome_r, from_chrome_w = (_fd_above(fd, 10) for fd in (to_chrome_r, from_chrome_w))
        # bash puts our pipe ends on fds 3 and 4 of the exec'd Chromium (dash cannot: fds > 9).
        cmd = [shutil.which("bash") or "/bin/bash", "-c", f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', "sh", binary,
               *base_flags(binary, profile), "--remote-debugging-pipe", f"--window-size={WIDTH},{HEIGHT}",
               "about:blank"]
        self.proc = subprocess.Popen(cmd, pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.timeout, self.next_id, self.buffer = timeout, 0, b""
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:  # events (no id) are not needed here
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                raise TimeoutError(f"no reply to {method} in {self.timeout} s")
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-3000:] if self.proc.poll() is not None else ""
                raise RuntimeError(f"Chromium closed the pipe during {method}\n{err}")
            self.buffer += chunk

    def js(self, expression: str):
        """The value of a JS expression in the page (promises awaited)."""
        out = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in out:
            raise RuntimeError(f"JS error in {expression!r}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def mouse(self, kind: str, x: float, y: float) -> None:
        params = {"type": kind, "x": x, "y": y}
        if kind != "mouseMoved":
            params.update(button="left", clickCount=1)
        self.send("Input.dispatchMouseEvent", params)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # Chromium and its helpers: its own group
            self.proc.wait()
        for fd in (self.to_chrome, self.from_chrome):
            os.close(fd)


def _fd_above(fd: int, low: int) -> int:
    """``fd`` moved to the lowest free number ≥ ``low``."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return moved


@pytest.fixture()
def page(chromium, report, tmp_path):
    path, _ = report
    tools = DevTools(chromium, tmp_path / "profile")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        tools.session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                   session=False)["sessionId"]
        tools.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1,
                                                          "mobile": False})
        tools.send("Page.navigate", {"url": path.as_uri()})
        deadline = time.monotonic() + 30
        while tools.js("document.readyState === 'complete' && document.documentElement.dataset.reportReady") != "true":
            assert time.monotonic() < deadline, "the report never became ready"
            time.sleep(0.1)
        yield tools
    finally:
        tools.close()


def _centre(tools: DevTools, selector: str) -> dict:
    return tools.js(f"""(() => {{
        const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
        return {{x: r.left + Math.min(r.width / 2, 20), y: r.top + r.height / 2, top: r.top, bottom: r.bottom}};
    }})()""")


def test_hover_tooltip_switcher_and_filter(page, report, tmp_path):
    import numpy as np
    from matplotlib.image import imread

    path, items = report
    # Hover the first erroneous relevance segment: the styled tooltip shows its verdict and reward.
    seg = '.seg-error[data-category="relevance"]'
    title = page.js(f"document.querySelector('{seg}').getAttribute('title')")
    assert title == "relevance · segment 3 of 4\nerror\nP(error) 0.800\nreward -0.300"
    at = _centre(page, seg)
    assert 0 < at["top"] and at["bottom"] < HEIGHT, "the segment should be in view without scrolling"
    page.mouse("mouseMoved", at["x"], at["y"])
    tip = page.js("""(() => { const t = document.getElementById('tooltip'), r = t.getBoundingClientRect();
        return {hidden: t.hidden, display: getComputedStyle(t).display, text: t.innerText,
                x: r.left, y: r.top, w: r.width, h: r.height}; })()""")
    assert not tip["hidden"] and tip["display"] != "none"
    assert tip["text"] == title
    assert tip["w"] > 50 and tip["h"] > 30 and abs(tip["x"] - at["x"]) < 40 and 0 < tip["y"] - at["y"] < 40
    # The native tooltip does not pile on while the styled one shows.
    assert page.js(f"document.querySelector('{seg}').hasAttribute('title')") is False
    shot = tmp_path / "report_hover.png"
    shot.write_bytes(base64.b64decode(page.send("Page.captureScreenshot", {"format": "png"})["data"]))
    _keep(shot)
    rgb = imread(shot)[..., :3]
    box = rgb[int(tip["y"]) + 2:int(tip["y"] + tip["h"]) - 2, int(tip["x"]) + 2:int(tip["x"] + tip["w"]) - 2]
    assert box.size and (np.abs(box - 0x22 / 255) < 3 / 255).all(axis=-1).mean() > 0.5, "tooltip not painted"

    # Moving off the segment hides the tooltip and gives the title back.
    page.mouse("mouseMoved", 5, 5)
    assert page.js("document.getElementById('tooltip').hidden") is True
    assert page.js(f"document.querySelector('{seg}').getAttribute('title')") == title

    # A real click on the "factuality" button leaves only the factuality answers in view.
    at = _centre(page, 'button[data-show="factuality"]')
    page.mouse("mousePressed", at["x"], at["y"])
    page.mouse("mouseReleased", at["x"], at["y"])
    shown = "[...document.querySelectorAll('section.cat')].filter(s => s.offsetParent !== null).map(s => s.dataset.category)"
    assert page.js(shown) == ["factuality"] * len(items)
    assert page.js("document.querySelector('button.show.active').dataset.show") == "factuality"

    # "Only answers with errors" hides the answer without any.
    at = _centre(page, "#only-errors")
    page.mouse("mousePressed", at["x"], at["y"])
    page.mouse("mouseReleased", at["x"], at["y"])
    visible = "[...document.querySelectorAll('article.item')].filter(a => !a.hidden).map(a => a.id)"
    assert page.js(visible) == ["item-0", "item-1"]
    assert page.js("document.title") == "Browser check <&>"

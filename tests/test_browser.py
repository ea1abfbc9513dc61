"""A real browser: JupyterLab serves notebook 05, headless Chromium runs it, moves the frame slider and
checks the layout a learner sees.

This checks what no kernel-side test can: that the widget front-end (ipywidgets 8 in JupyterLab 4)
renders the explorers, that a slider moved in the page reaches the kernel and comes back as a new
image, and that the explorers, the plotly trajectory and the filmstrips hold their shape at two
window sizes (1280x800 with the file browser open, 1920x1080 without): frame images keep their
aspect ratio within 2%, no control overlaps another, no text is clipped or pushed out of the output
area, every legend swatch sits beside its label, every slider step of the plotly figure is labelled
and its buttons stay clear of the slider, and the filmstrips are shown at (nearly) their own size.
Screenshots and the measurements go to ``tests/artifacts/`` (``layout_<size>_<what>.png``,
``layout.json``; ``ADAFOCUS_SCREENSHOT_TAG=before`` names them ``before_...``, and
``ADAFOCUS_BROWSER_NOTEBOOK`` runs another copy of notebook 05, e.g. an older one).

The notebook is copied to a temporary folder (JupyterLab autosaves outputs into the file it runs),
and JupyterLab, Chromium and the kernel get temporary settings, runtime and profile folders. The
server, its kernels and the browser are always stopped, also when an assertion fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# another copy of notebook 05 (e.g. an older version, for before/after screenshots) may stand in for it
NOTEBOOK = Path(os.environ.get("ADAFOCUS_BROWSER_NOTEBOOK", REPO / "notebooks" / "05_patch_trajectories.ipynb"))
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
TAG = os.environ.get("ADAFOCUS_SCREENSHOT_TAG", "layout")  # screenshot name prefix
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90  # JupyterLab answering /api/status
KERNEL_READY_S = 90  # the notebook's kernel idle
NOTEBOOK_RUN_S = 420  # seconds for the whole notebook to run in FAST mode
RENDER_S = 180  # all cells run and the widget's image shown (imports torch, builds the data)
UPDATE_S = 60  # a slider move comes back as a new image
STOP_S = 20  # a clean shutdown before SIGKILL
RELAYOUT_MS = 1500  # after a window resize or the side bar moving
SCREENSHOT_HEIGHT = 2000  # the window height for the explorers' screenshots (taken after the measurements)
# (name, viewport, file browser open, comparison panels side by side): the window sizes of the layout check
WINDOWS = [("1280x800", {"width": 1280, "height": 800}, True, False),
           ("1920x1080", {"width": 1920, "height": 1080}, False, True)]
ASPECT_TOLERANCE = 0.02  # a frame image's shown width / height within 2% of its pixels' ratio
MIN_FILMSTRIP_SCALE = 0.9  # a filmstrip is shown at >= 90% of its pixel size (its labels stay readable)
MIN_LEGEND_FONT_PX = 10  # plotly legend and slider labels
SWATCH_GAP_PX = 12  # the most space between a legend swatch and the start of its label
# A cell added at the end of the notebook copy: notebook 00's data filmstrip of full-mode clips (the small
# preset's 16 frames, generated in a second), the policy filmstrip of the notebook's model and a plotly
# trajectory over 16 frames (full mode's slider)
FILMSTRIP_CELL = """print("filmstrips below")
from adafocus.config import get_config
from adafocus.data.preview import filmstrip_figure
from adafocus.data.synthetic import generate_clips
from adafocus.notebook import show_policy
c16 = generate_clips(get_config("small").data, "test", range(3), progress=False)
display(filmstrip_figure(c16, [0, 1, 2]))
show_policy(model, splits["test"][1])
plt.show()
display(trajectory_plotly(c16.videos[0], c16.boxes[0] + 2, c16.boxes[0], c16.mask[0], [1, 5, 10, 15],
                          title="16 frames"))"""

# Asks the notebook's kernel for its sys.prefix (the kernel must run in the venv that runs the tests).
KERNEL_PREFIX_JS = """async () => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code: 'import sys; print(sys.prefix)', store_history: false});
    let out = '';
    future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
    await future.done;
    return out.trim();
}"""

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
    return json.loads(body) if body else None


def _wait_for_server(proc: subprocess.Popen, base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            _api(base, token, "/api/status")
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer /api/status within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop_server(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shuts the kernels down through the API, then the server (its own process group)."""
    try:
        for kernel in _api(base, token, "/api/kernels"):
            _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
    except OSError:
        pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # jupyter_server shuts its kernels down on SIGTERM
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_S)


@pytest.fixture
def lab(tmp_path: Path):
    """A JupyterLab server on a free local port serving a copy of the notebooks: (base url, token)."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ)  # ADAFOCUS_CACHE passes through: the kernel reuses the data cache
    for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"), ("IPYTHONDIR", "ipython"),
                     ("MPLCONFIGDIR", "matplotlib")):
        env[var] = str(tmp_path / sub)
    news = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no news pop-up, no request
    tracker = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell rendered: all outputs measurable
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells through lab's own commands
           "--ServerApp.open_browser=False", "--LabServerApp.collaborative=False"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log = tmp_path / "jupyter.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=root, start_new_session=True)
    try:
        _wait_for_server(proc, base, token, log)
        yield base, token
    finally:
        _stop_server(proc, base, token)


# ----------------------------------------------------------------------------- measurements in the page

# One output area's widgets: frame images (shown and natural size), controls, text that does not fit,
# legend swatches and where their labels start. Everything in CSS pixels of the page.
LAYOUT_JS = """(out) => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
    const shown = (e) => { const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
    const name = (e) => {
        const kind = [...e.classList].find(c => c.startsWith('widget-')) || e.tagName.toLowerCase();
        return kind + ':' + (e.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    };
    const area = box(out);
    const images = [...out.querySelectorAll('img.widget-image')].filter(shown)
        .map(e => ({...box(e), nw: e.naturalWidth, nh: e.naturalHeight}));
    const controls = [...out.querySelectorAll('.widget-image, .widget-html, .widget-play, .widget-hslider')]
        .filter(shown).map(e => ({...box(e), name: name(e)}));
    const texts = [...out.querySelectorAll('.widget-html-content, .widget-label')].filter(shown);
    const clipped = texts.filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
        .map(e => name(e) + ` (content ${e.scrollWidth}x${e.scrollHeight} in ${e.clientWidth}x${e.clientHeight})`);
    const legends = [...out.querySelectorAll('.adafocus-swatch, span[style*="background:rgb"]')].filter(shown)
        .map(sw => {
            const label = sw.nextSibling;
            if (!label) return {label: null};
            const range = document.createRange();
            range.selectNodeContents(label);
            const first = [...range.getClientRects()].find(r => r.width > 0);
            return {swatch: box(sw), label: (label.textContent || '').trim().slice(0, 40),
                    start: first ? {x: first.x, y: first.y, w: first.width, h: first.height} : null};
        });
    return {area, viewport: {w: window.innerWidth, h: window.innerHeight}, images, controls, clipped, legends};
}"""

# The plotly figure in one output area: its title, modebar, buttons, slider parts, step labels, legend.
PLOTLY_JS = """(out) => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
    const plot = out.matches('.js-plotly-plot') ? out : out.querySelector('.js-plotly-plot');
    if (!plot) return null;
    const all = (sel) => [...plot.querySelectorAll(sel)].filter(e => box(e).w > 0);
    const title = plot.querySelector('.gtitle');
    const labels = all('.slider-label-group');  // one group per labelled step (plotly skips some when crowded)
    const legend = all('.legend .legendtext');
    return {
        svg: box(plot.querySelector('.main-svg')),
        title: title ? {...box(title), text: title.textContent} : null,
        legend_box: plot.querySelector('.legend') ? box(plot.querySelector('.legend')) : null,
        buttons: all('.updatemenu-button').map(e => ({...box(e), name: 'button:' + e.textContent})),
        slider: [...all('.slider-rail-rect'), ...all('.slider-grip-rect'), ...labels, ...all('.slider-current-value')]
            .map(e => ({...box(e), name: 'slider:' + (e.textContent || e.getAttribute('class'))})),
        labels: labels.map(e => ({...box(e), text: e.textContent,
                                  font: parseFloat(getComputedStyle(e.querySelector('text') || e).fontSize)})),
        steps: plot._fullLayout.sliders[0].steps.length,
        legend: legend.map(e => ({...box(e), text: e.textContent, font: parseFloat(getComputedStyle(e).fontSize)})),
    };
}"""

# The images (matplotlib figures) in one output area: shown width against pixel width.
IMAGES_JS = """(out) => [...out.querySelectorAll('img')].filter(e => e.naturalWidth > 0).map(e => {
    const b = e.getBoundingClientRect();
    return {w: b.width, h: b.height, nw: e.naturalWidth, nh: e.naturalHeight};
})"""

SIDEBAR_JS = """(open) => {
    const shell = window.jupyterapp.shell;
    if (open) { shell.activateById('filebrowser'); shell.expandLeft(); } else { shell.collapseLeft(); }
    return !shell.leftCollapsed;
}"""

# Adds a code cell at the end of the notebook and runs it (the kernel keeps the notebook's variables).
ADD_CELL_JS = """async (code) => {
    const app = window.jupyterapp, nb = app.shell.currentWidget.content;
    nb.activeCellIndex = nb.widgets.length - 1;
    await app.commands.execute('notebook:insert-cell-below');
    nb.activeCell.model.sharedModel.setSource(code);
    await app.commands.execute('notebook:run-cell');
    return nb.widgets.length;
}"""

KERNEL_IDLE_JS = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')];
    return k && k.status === 'idle' && prompts.length > 0 && !prompts.some(p => p.innerText.includes('*'));
}"""


def _overlap(a: dict, b: dict, tol: float = 1.0) -> bool:
    """Whether two boxes ``{x, y, w, h}`` share more than ``tol`` pixels in both directions."""
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return dx > tol and dy > tol


def explorer_problems(report: dict, where: str) -> list[str]:
    """What is wrong with one explorer's layout (``LAYOUT_JS``'s report), one line each."""
    problems = []
    for img in report["images"]:
        if img["nw"] and img["nh"] and img["h"]:
            ratio = (img["w"] / img["h"]) / (img["nw"] / img["nh"])
            if abs(ratio - 1) > ASPECT_TOLERANCE:
                problems.append(f"{where}: a {img['nw']}x{img['nh']} image is shown at {img['w']:.0f}x{img['h']:.0f} "
                                f"(aspect ratio off by {100 * (ratio - 1):+.1f}%)")
    controls = report["controls"]
    for i, a in enumerate(controls):
        for b in controls[i + 1:]:
            if _overlap(a, b):
                problems.append(f"{where}: {a['name']!r} overlaps {b['name']!r}")
    right = min(report["area"]["x"] + report["area"]["w"], report["viewport"]["w"])
    for c in controls:
        if c["x"] + c["w"] > right + 1:
            problems.append(f"{where}: {c['name']!r} reaches x = {c['x'] + c['w']:.0f}, past the visible output "
                            f"area's right edge at {right:.0f}")
    problems += [f"{where}: clipped text {c}" for c in report["clipped"]]
    for leg in report["legends"]:
        start, sw = leg.get("start"), leg.get("swatch")
        if start is None:
            problems.append(f"{where}: a legend swatch without a label ({leg.get('label')!r})")
            continue
        same_line = abs((start["y"] + start["h"] / 2) - (sw["y"] + sw["h"] / 2)) <= max(sw["h"], start["h"]) / 2
        gap = start["x"] - (sw["x"] + sw["w"])
        if not same_line or not -1 <= gap <= SWATCH_GAP_PX:
            problems.append(f"{where}: legend label {leg['label']!r} starts at ({start['x']:.0f}, {start['y']:.0f}), "
                            f"not beside its swatch at ({sw['x']:.0f}, {sw['y']:.0f})")
    return problems


def plotly_problems(report: dict | None, where: str) -> list[str]:
    """What is wrong with the plotly figure's layout (``PLOTLY_JS``'s report), one line each."""
    if report is None:
        return [f"{where}: no plotly figure rendered"]
    problems, svg = [], report["svg"]
    title = report["title"]
    if title is None:
        problems.append(f"{where}: no title")
    elif title["x"] < svg["x"] - 1 or title["x"] + title["w"] > svg["x"] + svg["w"] + 1:
        problems.append(f"{where}: title {title['text']!r} ({title['w']:.0f} px wide) is clipped by the "
                        f"{svg['w']:.0f} px figure")
    if title is not None and report["legend_box"] is not None and _overlap(title, report["legend_box"]):
        problems.append(f"{where}: the title overlaps the legend")
    for b in report["buttons"]:
        for s in report["slider"]:
            if _overlap(b, s):
                problems.append(f"{where}: {b['name']!r} overlaps {s['name']!r}")
    labels = [lab for lab in report["labels"] if lab["text"].strip()]
    if len(labels) != report["steps"]:
        problems.append(f"{where}: {len(labels)} of the slider's {report['steps']} steps are labelled")
    for a, b in zip(labels, labels[1:]):
        if _overlap(a, b, 0.5):
            problems.append(f"{where}: slider labels {a['text']!r} and {b['text']!r} overlap")
    if len(report["legend"]) < 2:
        problems.append(f"{where}: {len(report['legend'])} legend entries (expected the colour key)")
    for item in report["legend"] + labels:
        if item["font"] < MIN_LEGEND_FONT_PX:
            problems.append(f"{where}: {item['text']!r} in {item['font']:.0f} px type")
    return problems


def filmstrip_problems(images: list[dict], where: str) -> list[str]:
    """Filmstrip images shown much smaller than their pixels: their labels become unreadable."""
    if not images:
        return [f"{where}: no filmstrip image rendered"]
    return [f"{where}: a {img['nw']} px wide figure is shown {img['w']:.0f} px wide ({img['w'] / img['nw']:.0%})"
            for img in images if img["w"] < MIN_FILMSTRIP_SCALE * img["nw"]]


def _output_with(page, selector: str):
    """The notebook's output areas that contain ``selector``."""
    return page.locator(".jp-OutputArea-output", has=page.locator(selector))


def arrangement_problems(report: dict, side_by_side: bool, where: str) -> list[str]:
    """The comparison explorer's two frames: side by side in a wide output area, stacked in a narrow one."""
    frames = [i for i in report["images"] if i["nw"] == i["nh"]]  # the square frames (the strips are wide)
    if len(frames) != 2:
        return [f"{where}: expected 2 frames, found {len(frames)}"]
    a, b = frames
    beside = abs(a["y"] - b["y"]) < 1 and b["x"] >= a["x"] + a["w"]
    above = b["y"] >= a["y"] + a["h"]
    if side_by_side and not beside:
        return [f"{where}: the panels are stacked although the output area is {report['area']['w']:.0f} px wide"]
    if not side_by_side and not above:
        return [f"{where}: the panels are not stacked in a {report['area']['w']:.0f} px output area"]
    return []


def check_layout(page, size: str, side_by_side: bool) -> tuple[list[str], dict]:
    """Measures every explorer, the plotly figure and the filmstrips at the current window size; saves
    screenshots. Returns the problems found and the measurements."""
    problems, measured = [], {}
    explorers = _output_with(page, ".widget-image")
    names = ["truth_explorer", "model_explorer", "compare_explorer"]
    assert explorers.count() == len(names), f"expected {len(names)} explorers, found {explorers.count()}"
    for k, name in enumerate(names):
        out = explorers.nth(k)
        out.scroll_into_view_if_needed()
        report = out.evaluate(LAYOUT_JS)
        measured[name] = report
        problems += explorer_problems(report, f"{size} {name}")
        if name == "compare_explorer":
            problems += arrangement_problems(report, side_by_side, f"{size} {name}")
    plots = page.locator(".jp-OutputArea-output.js-plotly-plot, .jp-OutputArea-output:has(.js-plotly-plot)")
    if plots.count() < 2:
        kinds = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')]
            .map(o => o.className + ' ' + (o.getAttribute('data-mime-type') || ''))""")
        problems.append(f"{size} plotly: expected 2 plotly figures, found {plots.count()}; outputs: {kinds}")
    for k in range(plots.count()):  # the notebook's (8 frames in FAST mode) and the added 16-frame one
        out, name = plots.nth(k), "plotly" if k == 0 else f"plotly{k}"
        out.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        report = out.evaluate(PLOTLY_JS)
        measured[name] = report
        problems += plotly_problems(report, f"{size} {name}")
        out.screenshot(path=str(ARTIFACTS / f"{TAG}_{size}_{name}.png"))
    strips = page.locator(".jp-Cell", has_text="filmstrips below").last.locator(".jp-OutputArea-output")
    images, strips_shown = [], []
    for k in range(strips.count()):
        strip = strips.nth(k)
        found = strip.evaluate(IMAGES_JS)
        if found:
            strips_shown.append(strip)
            images += found
    measured["filmstrips"] = images
    problems += filmstrip_problems(images, f"{size} filmstrips")
    page.screenshot(path=str(ARTIFACTS / f"{TAG}_{size}_page.png"))
    # whole explorers for a person to look at: a taller window (same width, so the same layout) holds them
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": SCREENSHOT_HEIGHT})
    page.wait_for_timeout(RELAYOUT_MS)
    shots = [(explorers.nth(k), name) for k, name in enumerate(names)]
    shots += [(strip, f"filmstrip{k}") for k, strip in enumerate(strips_shown)]
    for element, name in shots:
        element.scroll_into_view_if_needed()
        element.screenshot(path=str(ARTIFACTS / f"{TAG}_{size}_{name}.png"))
    page.set_viewport_size(viewport)
    return problems, measured


def _aspect_summary(measured: dict) -> dict[str, list[float]]:
    """Shown aspect ratio over natural aspect ratio of every explorer image (1.0 = kept)."""
    return {name: [round((i["w"] / i["h"]) / (i["nw"] / i["nh"]), 4) for i in rep["images"] if i["h"] and i["nh"]]
            for name, rep in measured.items() if isinstance(rep, dict) and "images" in rep}


# ----------------------------------------------------------------------------- the test


@pytest.fixture
def sync_api():
    """playwright's sync API, or a skip that says what is missing (checked before the server starts)."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: run `make browser` (needs root + apt)")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install playwright")


def _move_frame_slider(page) -> None:
    """Moves the first explorer's frame slider by two steps; the image and the caption must follow."""
    label = page.locator("label", has_text="frame")
    out = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider", has=label)).first
    out.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    frame = out.locator(".widget-slider", has=label).first
    readout = frame.locator(".widget-readout")
    image = out.locator(".widget-image").first
    before = image.get_attribute("src")
    assert before and before.startswith(("blob:", "data:")), before
    assert readout.inner_text().strip() == "0"
    handle = frame.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    deadline = time.time() + UPDATE_S
    while image.get_attribute("src") == before and time.time() < deadline:
        time.sleep(0.2)
    assert image.get_attribute("src") != before, "the image did not change after moving the slider"
    assert readout.inner_text().strip() == "2"
    deadline = time.time() + UPDATE_S
    while "frame 2" not in out.inner_text() and time.time() < deadline:
        time.sleep(0.2)
    assert "frame 2" in out.inner_text(), out.inner_text()[-500:]


@pytest.mark.timeout(720)
def test_notebook_05_in_chromium_reacts_and_holds_its_layout(sync_api, lab, tmp_path):
    base, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        size, viewport, _, _ = WINDOWS[0]
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport=viewport)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}&reset", wait_until="domcontentloaded")
            page.wait_for_function("""() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return k && k.status === 'idle';
            }""", timeout=KERNEL_READY_S * 1000)
            assert page.evaluate(KERNEL_PREFIX_JS) == sys.prefix, "the notebook's kernel is not this environment's"
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # wait until every cell has run (the notebook trains tiny models): the kernel must be free
            # to answer the slider
            page.wait_for_timeout(2000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=NOTEBOOK_RUN_S * 1000)
            page.evaluate(ADD_CELL_JS, FILMSTRIP_CELL)
            page.wait_for_timeout(1000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=RENDER_S * 1000)
            page.wait_for_function("""() => [...document.querySelectorAll('.jp-OutputArea-output img.widget-image')]
                .every(img => img.naturalWidth > 0)""", timeout=RENDER_S * 1000)
            text = page.locator(".jp-Notebook").inner_text()
            assert "Traceback" not in text and "Error displaying widget" not in text, text[-2000:]

            problems, measured = [], {}
            for size, viewport, sidebar, side_by_side in WINDOWS:
                page.set_viewport_size(viewport)
                assert page.evaluate(SIDEBAR_JS, sidebar) == sidebar
                page.wait_for_timeout(RELAYOUT_MS)
                found, measured[size] = check_layout(page, size, side_by_side)
                problems += found
            summary = {size: _aspect_summary(m) for size, m in measured.items()}
            (ARTIFACTS / f"{TAG}.json").write_text(json.dumps({"aspect": summary, "problems": problems,
                                                               "measured": measured}, indent=1))
            _move_frame_slider(page)
            assert not problems, "layout problems:\n" + "\n".join(problems)
            assert not errors, f"JavaScript errors in the page: {errors}"
        finally:
            browser.close()

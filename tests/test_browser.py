"""A real browser: JupyterLab serves notebook 05, headless Chromium runs it and moves the frame slider.

This checks what no kernel-side test can: that the widget front-end (ipywidgets 8 in JupyterLab 4)
renders the explorer and that a slider moved in the page reaches the kernel and comes back as a new
image. The notebook is copied to a temporary folder (JupyterLab autosaves outputs into the file it
runs), and JupyterLab, Chromium and the kernel get temporary settings, runtime and profile folders.
The server, its kernels and the browser are always stopped, also when an assertion fails.
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
NOTEBOOK = REPO / "notebooks" / "05_patch_trajectories.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "tests" / "artifacts" / "browser_explorer.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90  # JupyterLab answering /api/status
KERNEL_READY_S = 90  # the notebook's kernel idle
NOTEBOOK_RUN_S = 420  # seconds for the whole notebook to run in FAST mode
RENDER_S = 180  # all cells run and the widget's image shown (imports torch, builds the data)
UPDATE_S = 60  # a slider move comes back as a new image
STOP_S = 20  # a clean shutdown before SIGKILL

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


def _frame_image_src(page) -> str:
    return page.evaluate("""() => {
        const img = document.querySelector('.jp-OutputArea-output .widget-image');
        return img ? img.getAttribute('src') : null;
    }""")


@pytest.fixture
def sync_api():
    """playwright's sync API, or a skip that says what is missing (checked before the server starts)."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: run `make browser` (needs root + apt)")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install playwright")


@pytest.mark.timeout(600)
def test_notebook_05_explorer_reacts_to_the_frame_slider_in_chromium(sync_api, lab, tmp_path):
    base, token = lab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
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
            # wait until every cell has run (the notebook trains a tiny model): the kernel must be free
            # to answer the slider
            page.wait_for_timeout(2000)
            page.wait_for_function("""() => {
                const w = window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')];
                return k && k.status === 'idle' && prompts.length > 0 && !prompts.some(p => p.innerText.includes('*'));
            }""", timeout=NOTEBOOK_RUN_S * 1000)
            page.wait_for_selector(".jp-OutputArea-output .widget-image", timeout=RENDER_S * 1000)
            page.wait_for_function("""() => {
                const img = document.querySelector('.jp-OutputArea-output .widget-image');
                return img && img.naturalWidth > 0;
            }""", timeout=RENDER_S * 1000)
            # the first explorer's output area: its frame slider, its image, its caption
            label = page.locator("label", has_text="frame")
            out = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider", has=label)).first
            out.scroll_into_view_if_needed()  # JupyterLab renders only what is on screen
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
            text = page.locator(".jp-Notebook").inner_text()
            assert "Traceback" not in text and "Error displaying widget" not in text, text[-2000:]
            page.locator(".widget-image").first.scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            assert not errors, f"JavaScript errors in the page: {errors}"
        finally:
            browser.close()

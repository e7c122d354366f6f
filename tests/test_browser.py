"""A student's session in a real browser: JupyterLab on the student's own copy of notebook 01,
run, and the attention explorer widget moving its heatmap when a slider moves.

Drives Debian's chromium (`apt-get install chromium`; `make setup` installs it when it may)
with Playwright; nothing downloads a browser. The screenshot it takes is the README's picture:
with WORKBOOK_UPDATE_SCREENSHOTS=1 it replaces docs/images/explorer.png."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import COURSE, ROOT
from workbook_instructor.samples import reference_notebooks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
README_PICTURE = ROOT / "docs" / "images" / "explorer.png"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(make setup installs it when run as root on Debian)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """JupyterLab serving a student's folder that holds notebook 01, solved."""
    work = tmp_path / "work" / "01-attention"
    work.mkdir(parents=True)
    solved = reference_notebooks(COURSE, "01-attention")["01-attention"]
    (work / "01-attention.ipynb").write_text(json.dumps(solved))
    port, token = _free_port(), "workbook-browser-test"
    # A student's JupyterLab starts the notebook's own kernel without asking (the setting behind
    # the "Always start the preferred kernel" box of the kernel dialog).
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"autoStartDefaultKernel": true}')
    env = {**os.environ, "WORKBOOK_SIZE": "grade", "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    env.pop("MPLBACKEND", None)   # the lab kernel draws inline, as a student's does
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path / 'work'}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start within 120 s")
            time.sleep(0.5)
    # On a cold start the server can answer before it has found its kernels; a notebook opened
    # then makes JupyterLab ask which kernel to use. Wait until it knows python3.
    while b'"python3"' not in urllib.request.urlopen(
            f"{url}/api/kernelspecs?token={token}", timeout=10).read():
        if time.monotonic() > deadline:
            server.kill()
            pytest.fail("JupyterLab did not list the python3 kernel within 120 s")
        time.sleep(0.5)
    yield f"{url}/lab/tree/01-attention/01-attention.ipynb?token={token}"
    os.killpg(server.pid, 9)
    server.wait()


def _accept_dialogs(page, seen: list) -> bool:
    """Accept any dialog JupyterLab shows (e.g. a kernel choice on a first start), as a student
    would (choosing Python 3), and remember what it said."""
    dialog = page.locator(".jp-Dialog")
    accepted = False
    while dialog.count() and dialog.first.is_visible():
        seen.append(" ".join(dialog.first.inner_text().split())[:200])
        choice = dialog.first.locator("select")
        if choice.count():   # "Select Kernel": the student picks Python 3, not "No Kernel"
            options = choice.first.locator("option").all_inner_texts()
            python = [o for o in options if o.startswith("Python 3")]
            if python:
                choice.first.select_option(label=python[0])
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        dialog.first.wait_for(state="detached", timeout=30_000)
        accepted = True
    return accepted


def test_student_runs_notebook_01_and_moves_the_explorer(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(lab)
        page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=120_000)
        started, dialogs = False, []
        time.sleep(2)   # a kernel dialog, if any, comes right after the notebook opens
        for attempt in range(3):   # a click that lands while the page settles can be lost
            if _accept_dialogs(page, dialogs):
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                    timeout=120_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and not started:
                if _accept_dialogs(page, dialogs):   # the run was lost with the old kernel
                    break
                prompts = page.locator(".jp-InputPrompt").all_inner_texts()
                started = any(any(ch.isdigit() or ch == "*" for ch in p) for p in prompts)
                time.sleep(1)
            if started:
                break
        explorer = page.locator(".widget-vbox").filter(has=page.locator(".widget-slider")).first
        try:
            explorer.wait_for(timeout=180_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
            errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']").all_inner_texts()
            pytest.fail(f"the explorer did not appear within 180 s (cells started: {started}; "
                        f"dialogs: {dialogs}); the page is in "
                        f"{tmp_path / 'failed.png'}; errors shown: {errors[:2]}")
        picture = explorer.locator("img").first
        expect(picture).to_be_visible(timeout=60_000)
        before = picture.get_attribute("src")
        explorer.scroll_into_view_if_needed()
        layer = explorer.locator(".widget-slider").first.locator(".noUi-handle, .ui-slider-handle").first
        layer.focus()
        for _ in range(3):
            layer.press("ArrowRight")
        expect(explorer.locator(".widget-readout").first).to_have_text("3", timeout=30_000)
        expect(picture).not_to_have_attribute("src", before, timeout=60_000)
        shot = tmp_path / "explorer.png"
        explorer.screenshot(path=str(shot))
        browser.close()
    print("dialogs accepted:", dialogs)
    assert shot.stat().st_size > 10_000
    if os.environ.get("WORKBOOK_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, README_PICTURE)

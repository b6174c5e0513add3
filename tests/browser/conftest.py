"""Fixtures of the real-browser suite: Debian's chromium (installed with apt-get when missing),
a JupyterLab server on 127.0.0.1 with a token, and every lesson and solution run in a page.

The lessons run as a learner runs them: JupyterLab opens the notebook, "Run All Cells" executes
it in a kernel, and the widgets render in chromium. Two notebooks run at a time (one kernel per
core of a small CI machine); each test then reads the page its notebook ran in.

Nothing is left behind: JupyterLab runs with autosave off (the notebooks stay without outputs;
the fixture checks their bytes), its kernels and the server are shut down and any survivor is
killed by its process id, and the browser is closed.
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
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
LESSONS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "solutions").glob("*.ipynb"))
NOTEBOOKS = LESSONS + SOLUTIONS
ONLY = [part for part in os.environ.get("KAFKA_LAB_NOTEBOOKS", "").split(",") if part]
"""Run only the notebooks whose path contains one of these (comma-separated, e.g.
``KAFKA_LAB_NOTEBOOKS=06_streams,00_tour``); the tests of the others are skipped. The two
cores of a small machine take a while to run them all."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 1000}
PARALLEL = 2
"""Notebooks executing at once."""
NOTEBOOK_TIMEOUT_S = 600
SERVER_TIMEOUT_S = 60

# JupyterLab settings for the test server: keep every cell in the page (no virtual scrolling,
# so every output can be measured), never write the notebooks back, never reach the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def _apt_install_chromium() -> str:
    """Install Debian's chromium with apt-get (updating the package lists if the first try
    fails); returns why it could not, or "" on success."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "installing it needs root (run: apt-get install -y chromium)"
    if shutil.which("apt-get") is None:
        return "this machine has no apt-get to install it with"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    for attempt in range(2):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                           timeout=600, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900,
                              check=False)
        if done.returncode == 0 and Path(CHROMIUM).exists():
            return ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return f"apt-get install chromium failed: {tail[0]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium, installed now if missing; skips only if it cannot be."""
    if not Path(CHROMIUM).exists():
        problem = _apt_install_chromium()
        if problem:
            pytest.skip(f"no browser for the browser tests: {CHROMIUM} is missing and {problem}")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (read from /proc; empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and ") Z " in state.read_text())


@dataclass
class Lab:
    """A running JupyterLab: its base URL and token."""

    url: str
    token: str
    process: subprocess.Popen[bytes]

    def open_url(self, path: str) -> str:
        return f"{self.url}lab/tree/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


@pytest.fixture(scope="package")  # closed as soon as the browser tests are done
def lab(chromium: str) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (a free port, a random token) rooted at the repository."""
    before = {p: p.read_bytes() for p in map(ROOT.joinpath, NOTEBOOKS)}
    scratch = Path(tempfile.mkdtemp(prefix="kafka-lab-browser-"))
    settings = scratch / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={ROOT}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={scratch / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(scratch / "config"),
           "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "MPLBACKEND": "agg"}
    log = (scratch / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log,
                               start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}/", token, process)
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        while True:
            try:
                server.api("api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (scratch / "server.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield server
    finally:
        _stop(server)
        log.close()
        changed = [str(p.relative_to(ROOT)) for p, data in before.items()
                   if p.read_bytes() != data]
        for p in map(ROOT.joinpath, changed):
            p.write_bytes(before[p])  # never leave outputs in a committed notebook
        shutil.rmtree(scratch, ignore_errors=True)
        assert not changed, f"the browser run wrote to {changed} (restored)"


def _stop(server: Lab) -> None:
    """Shut JupyterLab and its kernels down; kill whatever is left, by process id."""
    pids = _descendants(server.process.pid)
    try:
        server.api("api/shutdown", method="POST")
        server.process.wait(timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="package")  # closed as soon as the browser tests are done
def browser(chromium: str) -> Iterator[object]:
    """Chromium driven by Playwright, with a fresh profile; closed at the end."""
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="kafka-lab-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport=VIEWPORT, device_scale_factor=1)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@dataclass
class NotebookRun:
    """A notebook opened in its own page and run with "Run All Cells"."""

    path: str
    page: object
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.replace("/", "-").removesuffix(".ipynb")


START_RUN = """async () => {
  const app = window.jupyterapp;
  let panel = app.shell.currentWidget;
  for (let i = 0; i < 200 && !(panel && panel.sessionContext); i++) {
    await new Promise(r => setTimeout(r, 100));
    panel = app.shell.currentWidget;
  }
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__klRun = {done: false};
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__klRun = {done: true, ok}; },
    e => { window.__klRun = {done: true, ok: false, error: String(e)}; });
}"""

RUN_STATE = """() => {
  const run = window.__klRun;
  if (!run || !run.done) return null;
  const panel = window.jupyterapp.shell.currentWidget;
  const status = panel.sessionContext.session?.kernel?.status;
  return {...run, status};
}"""


def _open(context: object, lab: Lab, path: str) -> NotebookRun:
    page = context.new_page()  # type: ignore[attr-defined]
    page.goto(lab.open_url(path))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext",
                           timeout=SERVER_TIMEOUT_S * 1000)
    run = NotebookRun(path, page, started=time.monotonic())
    page.evaluate(START_RUN)
    return run


def _settle(run: NotebookRun) -> None:
    """After "Run All Cells": wait until the kernel is idle and no widget is still loading."""
    page = run.page
    page.wait_for_function(
        """() => {
          const panel = window.jupyterapp.shell.currentWidget;
          if (panel.sessionContext.session?.kernel?.status !== 'idle') return false;
          return !panel.node.innerText.includes('Loading widget');
        }""", timeout=30_000)
    page.wait_for_timeout(300)  # last images decode


class Runs(dict[str, NotebookRun]):
    """The notebooks run, by path; a test of one that was left out (:data:`ONLY`) is skipped."""

    def __missing__(self, path: str) -> NotebookRun:
        pytest.skip(f"{path} was not run (KAFKA_LAB_NOTEBOOKS={','.join(ONLY)})")


@pytest.fixture(scope="package")  # closed as soon as the browser tests are done
def notebook_runs(browser: object, lab: Lab) -> Runs:
    """Every lesson and solution (or those :data:`ONLY` names), run in its own page,
    :data:`PARALLEL` at a time."""
    waiting = [p for p in NOTEBOOKS if not ONLY or any(part in p for part in ONLY)]
    running: list[NotebookRun] = []
    done = Runs()
    while waiting or running:
        while waiting and len(running) < PARALLEL:
            running.append(_open(browser, lab, waiting.pop(0)))
        time.sleep(0.5)
        for run in list(running):
            state = run.page.evaluate(RUN_STATE)
            elapsed = time.monotonic() - run.started
            if state is None and elapsed < NOTEBOOK_TIMEOUT_S:
                continue
            running.remove(run)
            if state is None:
                run.error = f"still running after {NOTEBOOK_TIMEOUT_S} s"
            elif not state.get("ok"):
                run.error = state.get("error", "Run All Cells stopped at a failing cell")
            try:
                _settle(run)
            except Exception as exc:  # a timeout is reported by the tests, not here
                run.notes.append(f"did not settle: {exc}")
            run.seconds = time.monotonic() - run.started
            _screenshots(run)
            done[run.path] = run
    return done


def _screenshots(run: NotebookRun) -> None:
    """The top of the page, then each cell's figures and panels, in tests/browser/screenshots/
    (not committed)."""
    folder = SCREENSHOTS / run.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    page = run.page
    page.screenshot(path=folder / "page.png")  # type: ignore[attr-defined]
    for cell in output_facts(run):
        if cell["text"].strip() or cell["images"]:
            area = page.locator(".jp-Notebook .jp-Cell").nth(cell["index"]).locator(
                ".jp-Cell-outputArea").first  # not an Output widget's area nested inside
            area.screenshot(path=folder / f"cell-{cell['index']:02d}.png")


OUTPUT_FACTS = r"""() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs.toJSON();
    const area = cell.node.querySelector('.jp-OutputArea');
    const images = [], tables = [], cut = [];
    const nodes = area ? [...area.querySelectorAll('.jp-OutputArea-output')] : [];
    for (const out of nodes) {
      for (const img of out.querySelectorAll('img')) {
        if (!img.naturalWidth) continue;
        images.push({natural: [img.naturalWidth, img.naturalHeight],
                     shown: [img.clientWidth, img.clientHeight]});
      }
      for (const table of out.querySelectorAll('table')) {
        const width = table.getBoundingClientRect().width;
        // the first box that is narrower than the table and does not let it spill over
        let box = table.parentElement, narrow = null;
        while (box && box !== out.parentElement) {
          const spills = getComputedStyle(box).overflowX === 'visible' && box !== out;
          if (box.clientWidth + 1 < width && !spills) { narrow = box; break; }
          box = box.parentElement;
        }
        tables.push({width, output: out.clientWidth,
                     narrow: narrow ? narrow.className || narrow.tagName : null,
                     scrolls: narrow ? scrolls(narrow) : true,
                     head: table.innerText.slice(0, 60)});
        for (const td of table.querySelectorAll('td, th')) {
          const text = td.innerText.trim();
          // overflowing its cell, or shortened by pandas (display.max_colwidth) with "..."
          if (td.scrollWidth > td.clientWidth + 1 || /\w(\.\.\.|…)$/.test(text)) {
            cut.push(text.slice(0, 80));
          }
        }
      }
    }
    for (const out of nodes) {  // widget labels shortened with an ellipsis
      for (const label of out.querySelectorAll('.widget-label, .widget-label-basic')) {
        if (label.offsetParent && label.scrollWidth > label.clientWidth + 1) {
          cut.push('label: ' + label.innerText.slice(0, 80));
        }
      }
    }
    cells.push({
      index, count: cell.model.executionCount,
      source: cell.model.sharedModel.getSource(),
      errors: outputs.filter(o => o.output_type === 'error')
                     .map(o => o.ename + ': ' + o.evalue),
      widgetOutputs: outputs.filter(o => o.data &&
                                    o.data['application/vnd.jupyter.widget-view+json']).length,
      widgetsShown: nodes.filter(n => n.querySelector(':scope > .jupyter-widgets')).length,
      text: nodes.map(n => n.innerText).join('\n'),
      images, tables, cut,
    });
  });
  return cells;
}"""


def output_facts(run: NotebookRun) -> list[dict]:
    """Per code cell: its errors, widgets in the model and in the page, images, tables."""
    return run.page.evaluate(OUTPUT_FACTS)  # type: ignore[attr-defined]

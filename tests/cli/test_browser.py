"""Notebook 02 as a person sees it: JupyterLab on 127.0.0.1, opened in headless Chromium (Debian's `chromium`,
driven by Playwright), Run All with tiny parameters. The epoch grids render inline, each epoch is one line, the bars
end finished, no error box shows, and the saved file holds the same; the interrupt button ends training with one
line and the cells below still run. Screenshots go to the test's folder, and to $DCGAN_SCREENSHOTS when set (the
README's pictures of notebook 02 come from there)."""

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

from tests.helpers import REPO

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
# headless, and nothing that reaches for the internet (refused here, and slow to fail)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DONE = """() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'
    && [...document.querySelectorAll('.jp-Cell .jp-InputArea-prompt')].every(p => !p.textContent.includes('*'))"""
STARTED = "() => document.querySelector('.jp-CodeCell .jp-InputArea-prompt')?.textContent.match(/[*0-9]/)"
ERROR_BOXES = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def needed():
    """Playwright and Debian's Chromium; CI installs both (.ci/run), so there a missing one fails the test."""
    missing = [] if CHROMIUM.exists() else [f"{CHROMIUM} (apt-get install -y chromium)"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright (pip install playwright)")
        sync_playwright = None
    if missing and os.environ.get("CI"):
        pytest.fail(f"the browser test needs {', '.join(missing)}")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    return sync_playwright


@pytest.fixture(scope="module")
def lab(tmp_path_factory, fashion_mnist_available):
    """A JupyterLab server on 127.0.0.1 with a token, its settings and workspaces in a folder of its own; yields
    (url of a notebook path, the folder it serves)."""
    needed()
    root, home = tmp_path_factory.mktemp("lab"), tmp_path_factory.mktemp("jupyter-home")
    for extension, values in (("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
                              ("notebook-extension/tracker", {"autoStartDefaultKernel": True})):  # no dialogs
        settings = home / "settings" / "@jupyterlab" / f"{extension}.jupyterlab-settings"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(values))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = os.urandom(12).hex()
    log = (home / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                               f"--port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={root}", "--allow-root"], stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, (home / "server.log").read_text()
                time.sleep(0.3)
        # each notebook in a workspace of its own, so that no page reopens another's notebook
        yield (lambda name: f"http://127.0.0.1:{port}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}"
               ), root
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    sync_playwright = needed()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def notebook_02(root: Path, name: str, **parameters) -> str:
    """Notebook 02 with `parameters` after its parameters cell (as papermill injects them), saved as `name`."""
    papermill = pytest.importorskip("papermill")
    nbformat = pytest.importorskip("nbformat")
    notebook = papermill.iorw.load_notebook_node(str(REPO / "notebooks" / "02_train_dcgan.ipynb"))
    folders = {key: str(root / key) for key in ("data_dir", "samples_dir", "checkpoints_dir")}
    nbformat.write(papermill.parameterize.parameterize_notebook(notebook, {**folders, **parameters}), root / name)
    return name


def open_and_run_all(page, url: str, interrupt_when: str = "") -> None:
    """Open the notebook, Run All (as a person does, from the Run menu), optionally press ■ once `interrupt_when`
    shows, and wait until every cell has run."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000, state="attached")
    for _ in range(5):  # a kernel still connecting lets Run All pass without running a cell: ask again
        if page.locator(".jp-Dialog").count():  # "Select Kernel", should it still ask: the preferred one
            page.locator(".jp-Dialog .jp-mod-accept").click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(STARTED, timeout=20_000)
            break
        except PlaywrightTimeout:
            continue
    if interrupt_when:
        page.get_by_text(interrupt_when).first.wait_for(timeout=300_000)
        page.locator("[data-command='notebook:interrupt-kernel']").first.click()  # the toolbar's ■
    page.wait_for_function(DONE, timeout=600_000, polling=500)


def cell_text(page, index: int) -> str:
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()


def keep(shot: Path) -> None:
    """Copy a screenshot to $DCGAN_SCREENSHOTS (for the README), when set."""
    target = os.environ.get("DCGAN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)


TRAINING_CELL = 5  # 02's cells: title, autoreload, parameters, injected parameters, imports, training, ...


def test_notebook_02_renders_its_epochs_in_a_real_browser(lab, browser, tmp_path):
    url, root = lab
    # tiny, or for the README's pictures the set-up command's recipe over all the images for 2 epochs
    recipe = (dict(limit=0, ngf=32, ndf=32, lr=3e-4, diffaugment="translation", ema=0.999, log_every=50)
              if os.environ.get("DCGAN_SCREENSHOTS") else dict(limit=640, ngf=16, ndf=16, log_every=5))
    name = notebook_02(root, "02_train_dcgan.ipynb", image_size=32, epochs=2, batch_size=64, run="browser",
                       device="cpu", **recipe)
    page = browser.new_page(viewport={"width": 1280, "height": 2000})  # tall enough for the training cell's outputs
    open_and_run_all(page, url(name))

    assert page.locator(ERROR_BOXES).count() == 0  # no red box anywhere
    training = page.locator(".jp-Notebook .jp-Cell").nth(TRAINING_CELL)
    grids = training.locator(".jp-OutputArea-output img")
    assert grids.count() == 3  # epochs 0, 1 and 2, inline below the training cell
    for index in range(3):  # each decoded and drawn at least at its own size
        assert grids.nth(index).evaluate("image => image.complete && image.naturalWidth > 0 && "
                                         "image.getBoundingClientRect().width >= image.naturalWidth")
    text = cell_text(page, TRAINING_CELL)
    lines = text.splitlines()
    for epoch in (1, 2):
        assert sum(line.startswith(f"epoch {epoch}/2") for line in lines) == 1, text  # one line per epoch
    assert training.locator(".widget-hprogress, .jupyter-widgets").count() == 0  # every bar ended
    assert "decoding" not in text or "100%" in text
    assert "done: samples in" in text
    images_below = page.locator(".jp-Notebook .jp-Cell").locator(".jp-OutputArea-output img").count()
    assert images_below == 3 + 3  # then the curves, the progression and the GIF

    training.scroll_into_view_if_needed()
    shot = tmp_path / "notebook-02-training.png"
    training.screenshot(path=str(shot))
    keep(shot)
    curves = page.locator(".jp-Notebook .jp-Cell").nth(TRAINING_CELL + 2)
    curves.scroll_into_view_if_needed()
    shot = tmp_path / "notebook-02-curves.png"
    curves.screenshot(path=str(shot))
    keep(shot)

    page.keyboard.press("Control+s")  # saved as a person saves it: the file says what the page showed
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
    saved = json.loads((root / name).read_text())
    outputs = [output for cell in saved["cells"] for output in cell.get("outputs", [])]
    assert not [output for output in outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 3 + 2


def test_the_interrupt_button_ends_training_in_one_line_and_the_cells_below_run(lab, browser):
    url, root = lab
    name = notebook_02(root, "02_interrupted.ipynb", image_size=32, epochs=100, batch_size=64, ngf=16, ndf=16,
                       limit=1280, log_every=5, run="browser-stop", device="cpu")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    open_and_run_all(page, url(name), interrupt_when="epoch 1/100: loss_D")

    assert page.locator(ERROR_BOXES).count() == 0  # no traceback, no red box
    text = cell_text(page, TRAINING_CELL)
    [stop] = [line for line in text.splitlines() if line.startswith("stopped by")]
    assert stop.startswith("stopped by the interrupt (■) at ") and stop.endswith("continue with resume = True")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    curves = page.locator(".jp-Notebook .jp-Cell").nth(TRAINING_CELL + 2).locator(".jp-OutputArea-output img")
    assert curves.count() == 1  # the cells below ran with the state as saved
    assert (root / "checkpoints_dir" / "browser-stop" / "last.pt").is_file()

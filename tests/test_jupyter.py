"""An animation's notebook outputs in real front ends, in Debian's headless chromium: a JupyterLab server started here
(a free port, a token, stopped at the end) shows the player playing in a trusted notebook and the GIF moving in an
untrusted copy; nbconvert's sanitised HTML (`--sanitize-html`) shows the GIF, asking the network for nothing."""
import base64
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import NO_IRI_GRAMMARS
from PIL import Image

FRAMES, FPS = 8, 10
CELL = f"learn.animate(frames={FRAMES}, fps={FPS}, panels=('fit', 'surface', 'loss'), dpi=60)"


@pytest.fixture(scope='module')
def outputs():
    "The outputs `learn.animate()` gives a notebook: three panels, 936 px wide."
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    anim = eval(CELL, {'learn': learn})
    from nbformat.v4 import new_output  # here, not at the top: importing nbformat costs seconds in every xdist worker
    return [new_output('display_data', data=d) for d in anim.outputs()]


def animation_notebook(outputs, note=None):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    cells = [new_markdown_cell(note)] if note else []
    cells.append(new_code_cell(CELL, outputs=outputs, execution_count=1))
    return new_notebook(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})


def gif_frames(src:str) -> int:
    "Frames of the GIF in a data: URI, whatever type the URI declares (0 when it is not a GIF)."
    data = base64.b64decode(src.split(',', 1)[1])
    return Image.open(io.BytesIO(data)).n_frames if data[:4] == b'GIF8' else 0


def moving(locator, wait_ms:int=3000) -> bool:
    """Whether what `locator` shows changes over `wait_ms` (an animated GIF plays: no script needed); longer than the
    GIF's hold of its last frame (`fastfit.gif.HOLD_LAST`), which a shorter look could fall within."""
    def shot(): return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert('RGB'))
    first = shot()
    deadline = time.monotonic() + wait_ms / 1000
    while time.monotonic() < deadline:
        locator.page.wait_for_timeout(120)
        if not np.array_equal(shot(), first): return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Lab:
    "A JupyterLab server on a free port with a token, its settings and notebook signatures in `home`; `stop()` ends it."
    def __init__(self, root, home, timeout:float=60):
        pytest.importorskip('jupyterlab', reason="JupyterLab is missing: pip install -e '.[dev]'")
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.env = dict(os.environ, JUPYTER_DATA_DIR=str(home / 'data'), JUPYTER_CONFIG_DIR=str(home / 'config'),
                        JUPYTER_RUNTIME_DIR=str(home / 'runtime'), JUPYTERLAB_SETTINGS_DIR=str(home / 'settings'),
                        JUPYTERLAB_WORKSPACES_DIR=str(home / 'workspaces'), JUPYTER_PLATFORM_DIRS='1')
        self.log = home / 'server.log'
        # `python -m jupyterlab`, without the grammars no test needs (conftest's NO_IRI_GRAMMARS)
        lab = f'{NO_IRI_GRAMMARS}; from jupyterlab.labapp import main; sys.exit(main())'
        cmd = [sys.executable, '-c', lab, '--no-browser', '--ip=127.0.0.1', f'--port={self.port}',
               '--ServerApp.port_retries=0', f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={root}',
               '--allow-root', '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
        with open(self.log, 'w') as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)  # its own process group: stopped whole, kernels too
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f'{self.url}/api/status?token={self.token}', timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.skip(f"the JupyterLab server did not start: {self.log.read_text()[-1500:]}")
                time.sleep(.3)

    @property
    def url(self) -> str: return f'http://127.0.0.1:{self.port}'

    def notebook_url(self, name:str) -> str:
        "The notebook alone in a fresh workspace (`reset`: no tabs restored from an earlier page)."
        return f'{self.url}/lab/tree/{name}?reset&token={self.token}'

    def sign(self, nb):
        "Sign `nb` with this server's notary: it opens trusted, as if it were run on this machine."
        from nbformat.sign import NotebookNotary
        os.makedirs(self.env['JUPYTER_DATA_DIR'], exist_ok=True)
        NotebookNotary(data_dir=self.env['JUPYTER_DATA_DIR']).sign(nb)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down, then exits
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired: pass
        try: os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of its group is left (only processes this test started)
        except ProcessLookupError: pass
        self.proc.wait()


@pytest.fixture(scope='module')
def lab(tmp_path_factory, outputs, browser):
    "The server, with `trusted.ipynb` (signed) and `untrusted.ipynb` (a copy from elsewhere) in its root folder."
    import nbformat
    root, home = tmp_path_factory.mktemp('lab_root'), tmp_path_factory.mktemp('lab_home')
    server = Lab(root, home)
    try:
        nb = animation_notebook(outputs)
        server.sign(nb)
        nbformat.write(nb, root / 'trusted.ipynb')
        nbformat.write(animation_notebook(outputs, 'A notebook from elsewhere: never run here, never signed.'), root / 'untrusted.ipynb')
        yield server
    finally: server.stop()
    assert server.proc.returncode is not None


class Opened:
    "A page in its own browser context: requests to anywhere but `allowed` are blocked and kept; console errors kept."
    def __init__(self, browser, url, allowed=('data:', 'blob:', 'file:'), width=1200):
        self.ctx = browser.new_context(viewport={'width': width, 'height': 900}, device_scale_factor=1)
        self.blocked, self.errors = [], []
        def route(r):
            if r.request.url.startswith(allowed): return r.continue_()
            self.blocked.append(r.request.url)
            r.abort()
        self.ctx.route('**/*', route)
        self.page = self.ctx.new_page()
        self.page.on('console', lambda m: m.type == 'error' and self.errors.append(m.text))
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.page.goto(url)

    def close(self): self.ctx.close()


def open_notebook(browser, lab, name) -> Opened:
    o = Opened(browser, lab.notebook_url(name), allowed=('data:', 'blob:', lab.url, lab.url.replace('http', 'ws')))
    o.page.wait_for_selector('.jp-OutputArea-output[data-mime-type="image/png"]', state='attached', timeout=60000)
    return o


def test_trusted_notebook_plays_the_player(browser, lab):
    o = open_notebook(browser, lab, 'trusted.ipynb')
    try:
        pg = o.page
        player = pg.locator('.jp-OutputArea-output .ff-player')
        player.locator('.ff-canvas').wait_for(state='visible', timeout=20000)
        assert pg.locator('.jp-RenderedImage img').is_hidden()  # the GIF gave way to the player
        label = player.locator('.ff-label')
        assert label.text_content() == f'1/{FRAMES}'
        player.locator('.ff-play').click()
        label.filter(has_not_text=f'1/{FRAMES}').wait_for(timeout=20_000)  # the frame advances
        player.locator('.ff-play').click()
        player.locator('.ff-last').click()
        assert label.text_content() == f'{FRAMES}/{FRAMES}'
        area = pg.locator('.jp-RenderedJavaScript')
        box, canvas = area.bounding_box(), player.locator('.ff-canvas').bounding_box()
        assert canvas['width'] <= box['width'] and area.evaluate('e => e.scrollWidth <= e.clientWidth')  # fits its column
        assert o.blocked == [] and [e for e in o.errors if 'fastfit' in e or 'ff-' in e] == []
    finally: o.close()


def test_untrusted_copy_shows_the_gif_moving(browser, lab):
    o = open_notebook(browser, lab, 'untrusted.ipynb')
    try:
        pg = o.page
        img = pg.locator('.jp-RenderedImage img')
        img.wait_for(state='visible', timeout=20000)
        assert gif_frames(img.get_attribute('src')) == FRAMES and img.bounding_box()['width'] > 300
        assert moving(img), 'the GIF does not play'
        pg.wait_for_timeout(300)
        assert pg.locator('.ff-player').count() == 0  # no script ran
        script_out = pg.locator('.jp-OutputArea-output').nth(1)
        assert script_out.get_attribute('data-mime-type') == 'text/plain' and script_out.inner_text().strip() == ''
        assert o.blocked == []
    finally: o.close()


def exported(browser, outputs, folder, **kw) -> tuple:
    "(the page nbconvert's HTMLExporter(**kw) makes of the notebook, opened offline; what its template alone loads)."
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(**kw)
    for name, outs in (('empty', []), ('nb', outputs)):
        page, _ = exporter.from_notebook_node(animation_notebook(outs))
        (folder / f'{name}.html').write_text(page)
    o = Opened(browser, (folder / 'empty.html').as_uri())  # the template's own script tags (require.js, MathJax)
    template = set(o.blocked)
    o.close()
    return Opened(browser, (folder / 'nb.html').as_uri()), template


def test_sanitised_html_shows_the_gif_without_network(browser, outputs, tmp_path):
    o, template = exported(browser, outputs, tmp_path, sanitize_html=True)  # `jupyter nbconvert --to html --sanitize-html`
    try:
        img = o.page.locator('.jp-OutputArea-output img')
        assert img.count() == 1 and img.is_visible() and img.bounding_box()['width'] > 300
        assert gif_frames(img.get_attribute('src')) == FRAMES and moving(img), 'the GIF does not play'
        assert 'fastfitPlayer' not in (tmp_path / 'nb.html').read_text()  # sanitised: the script is gone, the GIF stays
        o.page.wait_for_timeout(300)
        assert set(o.blocked) <= template, f'the output asks the network for {set(o.blocked) - template}'
    finally: o.close()


def test_exported_html_plays_the_player(browser, outputs, tmp_path):
    "`jupyter nbconvert --to html` (scripts kept): the player mounts on the GIF and plays, asking the network for nothing."
    o, template = exported(browser, outputs, tmp_path)
    try:
        label = o.page.locator('.ff-player .ff-label')
        label.wait_for(timeout=10000)
        assert label.text_content() == f'1/{FRAMES}' and o.page.locator('.jp-RenderedImage img').is_hidden()
        o.page.click('.ff-play')
        label.filter(has_not_text=f'1/{FRAMES}').wait_for(timeout=20_000)
        assert not [e for e in o.errors if 'fastfit' in e or 'ff-' in e]
        assert set(o.blocked) <= template, f'the output asks the network for {set(o.blocked) - template}'
    finally: o.close()

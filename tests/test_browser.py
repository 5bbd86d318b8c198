"The .html export in a real browser (Debian's headless chromium, driven by Playwright): frames show, step, play; offline."
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path('/usr/bin/chromium')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']


@pytest.fixture(scope='module')
def browser():
    if not CHROMIUM.exists(): pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError: pytest.skip("Playwright's Python package is missing: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope='module')
def page_html(tmp_path_factory):
    "A fit exported as a 5-frame player page, and its frames as base64 PNGs."
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    path = learn.save_animation(tmp_path_factory.mktemp('html') / 'fit.html', frames=5, fps=10, dpi=40)
    frames = re.findall(r'"([A-Za-z0-9+/=]{100,})"', re.search(r'const frames = \[(.*?)\];', path.read_text(), re.S).group(1))
    assert len(frames) == 5
    return path, frames


@pytest.fixture
def page(browser, page_html):
    "The page loaded, with every request, console error and page error it produced."
    ctx = browser.new_context(viewport={'width': 900, 'height': 700}, device_scale_factor=1)
    pg = ctx.new_page()
    pg.requests, pg.errors = [], []
    pg.on('request', lambda r: pg.requests.append(r.url))
    pg.on('console', lambda m: m.type == 'error' and pg.errors.append(m.text))
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.goto(page_html[0].as_uri())
    pg.wait_for_function("document.getElementById('ff-img').complete && document.getElementById('ff-img').naturalWidth > 0")
    yield pg
    ctx.close()


def shown(pg) -> np.ndarray:
    "The pixels of the player's image as the browser paints them."
    return np.asarray(Image.open(io.BytesIO(pg.locator('#ff-img').screenshot())).convert('RGB'))


def decoded(b64) -> np.ndarray:
    import base64
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGB'))


def src_index(pg, frames) -> int:
    src = pg.get_attribute('#ff-img', 'src')
    assert src.startswith('data:image/png;base64,')
    return frames.index(src.split(',', 1)[1])


def test_shows_first_frame_then_steps(page, page_html):
    _, frames = page_html
    assert src_index(page, frames) == 0 and page.text_content('#ff-label') == '1/5'
    first = shown(page)
    assert first.shape == decoded(frames[0]).shape  # drawn at its own size
    assert np.abs(first.astype(int) - decoded(frames[0])).mean() < 2  # what is painted is frame 0
    page.click('#ff-next')
    page.wait_for_function("document.getElementById('ff-label').textContent === '2/5'")
    assert src_index(page, frames) == 1
    page.click('#ff-last')
    page.wait_for_function("document.getElementById('ff-label').textContent === '5/5'")
    last = shown(page)
    assert src_index(page, frames) == 4
    assert np.abs(last.astype(int) - decoded(frames[4])).mean() < 2
    assert (last != first).any(axis=-1).mean() > .005  # the fitted line moved: the picture differs
    page.click('#ff-next')  # wraps round to the first frame
    page.wait_for_function("document.getElementById('ff-label').textContent === '1/5'")
    assert page.evaluate("document.getElementById('ff-slider').value") == '0'
    assert page.errors == []


def test_slider_and_play(page, page_html):
    _, frames = page_html
    page.evaluate("s => { s.value = 2; s.dispatchEvent(new Event('input')); }", page.query_selector('#ff-slider'))
    assert page.text_content('#ff-label') == '3/5' and src_index(page, frames) == 2
    page.click('#ff-play')  # 10 fps: a frame every 100 ms
    page.wait_for_function("document.getElementById('ff-label').textContent !== '3/5'", timeout=5000)
    page.click('#ff-play')  # pause
    k = page.text_content('#ff-label')
    page.wait_for_timeout(400)
    assert page.text_content('#ff-label') == k  # paused: no more steps
    assert page.errors == []


def test_no_network_and_no_console_error(page, page_html):
    path, _ = page_html
    page.click('#ff-next'); page.click('#ff-play'); page.wait_for_timeout(300); page.click('#ff-play')
    outside = [u for u in page.requests if not (u == path.as_uri() or u.startswith('data:'))]
    assert outside == [], outside
    assert page.errors == []

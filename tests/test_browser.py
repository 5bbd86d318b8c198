"The .html export in a real browser (Debian's headless chromium, driven by Playwright): frames show, step, play; offline."
import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastfit.writers import exported_frames

CHROMIUM = Path('/usr/bin/chromium')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
N = 40  # more than the player's 16-frame snapshots, so that jumps and backward steps cross them


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
    "A fit exported as a 40-frame player page, and its frames as the file holds them."
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(60)
    path = learn.save_animation(tmp_path_factory.mktemp('html') / 'fit.html', frames=N, fps=10, dpi=40)
    frames = exported_frames(path)
    assert len(frames) == N
    return path, frames


def _open(browser, path, js=True):
    ctx = browser.new_context(viewport={'width': 900, 'height': 700}, device_scale_factor=1, java_script_enabled=js)
    pg = ctx.new_page()
    pg.requests, pg.errors = [], []
    pg.on('request', lambda r: pg.requests.append(r.url))
    pg.on('console', lambda m: m.type == 'error' and pg.errors.append(m.text))
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.goto(path.as_uri())
    return ctx, pg


@pytest.fixture
def page(browser, page_html):
    "The page loaded, with every request, console error and page error it produced."
    ctx, pg = _open(browser, page_html[0])
    pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/40'")
    yield pg
    ctx.close()


def shown(pg) -> np.ndarray:
    "The pixels the player's canvas holds."
    url = pg.evaluate("document.querySelector('.ff-canvas').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(',', 1)[1]))).convert('RGB'))


def label(pg) -> str: return pg.text_content('.ff-label')


def test_shows_first_frame_then_steps(page, page_html):
    _, frames = page_html
    assert np.array_equal(shown(page), frames[0])  # the canvas is frame 0, pixel for pixel
    assert page.is_hidden('.ff-gif') and page.is_visible('.ff-canvas')  # the script took over from the <img>
    page.click('.ff-next')
    assert label(page) == f'2/{N}' and np.array_equal(shown(page), frames[1])
    page.click('.ff-last')
    assert label(page) == f'{N}/{N}' and np.array_equal(shown(page), frames[-1])
    assert (frames[-1] != frames[0]).any(-1).mean() > .005  # the fitted line moved: the picture differs
    page.click('.ff-next')  # wraps round to the first frame
    assert label(page) == f'1/{N}' and np.array_equal(shown(page), frames[0])
    assert page.evaluate("document.querySelector('.ff-slider').value") == '0'
    assert page.errors == []


def test_every_frame_forward_backward_and_by_slider(page, page_html):
    "Stepping forward, backward (across the 16-frame snapshots) and jumping all show exactly the file's frames."
    _, frames = page_html
    for k in range(1, N):
        page.click('.ff-next')
        assert np.array_equal(shown(page), frames[k]), k
    for k in range(N - 2, -1, -1):
        page.keyboard.press('ArrowLeft')
        assert label(page) == f'{k + 1}/{N}' and np.array_equal(shown(page), frames[k]), k
    for k in (37, 5, 16, 15, 31, 0, 39):
        page.evaluate("k => { const s = document.querySelector('.ff-slider'); s.value = k; s.dispatchEvent(new Event('input')); }", k)
        assert label(page) == f'{k + 1}/{N}' and np.array_equal(shown(page), frames[k]), k
    assert page.errors == []


def test_slider_and_play(page):
    page.evaluate("s => { s.value = 2; s.dispatchEvent(new Event('input')); }", page.query_selector('.ff-slider'))
    assert label(page) == f'3/{N}'
    page.click('.ff-play')  # 10 fps: a frame every 100 ms
    page.wait_for_function(f"document.querySelector('.ff-label').textContent !== '3/{N}'", timeout=5000)
    page.click('.ff-play')  # pause
    k = label(page)
    page.wait_for_timeout(400)
    assert label(page) == k  # paused: no more steps
    assert page.errors == []


def test_no_network_and_no_console_error(page, page_html):
    path, _ = page_html
    page.click('.ff-next'); page.click('.ff-play'); page.wait_for_timeout(300); page.click('.ff-play')
    outside = [u for u in page.requests if not (u == path.as_uri() or u.startswith('data:'))]
    assert outside == [], outside
    assert page.errors == []


def test_without_scripts_the_gif_plays(browser, page_html):
    "Where scripts do not run (sanitised outputs), the page still shows the animation: the GIF itself."
    ctx, pg = _open(browser, page_html[0], js=False)
    try:
        assert pg.is_visible('.ff-gif') and pg.is_hidden('.ff-canvas') and pg.is_hidden('.ff-controls')
        assert pg.evaluate("document.querySelector('.ff-gif').naturalWidth") == page_html[1][0].shape[1]
    finally: ctx.close()


def test_mounts_on_the_gif_alone(browser, page_html, tmp_path):
    "A notebook output may hold only the GIF: the script adds the canvas and controls and plays the same frames."
    import html

    from fastfit.player import page_gif, player_script
    gif, counts = page_gif(page_html[0].read_text())
    bare = (f'<!DOCTYPE html><html><body><div class="ff-player" data-fps="10" data-counts="{html.escape(str(counts))}">'
            f'<img class="ff-gif" src="data:image/gif;base64,{base64.b64encode(gif).decode()}"></div>'
            f'<script>{player_script()}\nfastfitPlayer(document.querySelector(".ff-player"));</script></body></html>')
    (tmp_path / 'bare.html').write_text(bare)
    ctx, pg = _open(browser, tmp_path / 'bare.html')
    try:
        assert label(pg) == f'1/{N}' and pg.is_visible('.ff-controls') and pg.is_hidden('.ff-gif')
        pg.click('.ff-next')
        assert label(pg) == f'2/{N}' and np.array_equal(shown(pg), page_html[1][1])
        assert pg.errors == []
    finally: ctx.close()


def test_arrow_keys_step_one_frame_wherever_the_focus_is_in_the_player(page, page_html):
    "Clicking the picture focuses the player; then each arrow key steps one frame, also with the slider focused."
    _, frames = page_html
    page.click('.ff-canvas')
    assert page.evaluate("document.activeElement.classList.contains('ff-player')")
    page.keyboard.press('ArrowRight')
    assert label(page) == f'2/{N}' and np.array_equal(shown(page), frames[1])
    page.keyboard.press('ArrowRight'); page.keyboard.press('ArrowLeft')
    assert label(page) == f'2/{N}'
    page.focus('.ff-slider')  # the slider moves itself on arrow keys: one step, not two
    page.keyboard.press('ArrowRight')
    assert label(page) == f'3/{N}' and np.array_equal(shown(page), frames[2])
    page.keyboard.press('ArrowLeft')
    assert label(page) == f'2/{N}' and np.array_equal(shown(page), frames[1])
    assert page.errors == []


def test_space_on_a_focused_button_toggles_play_once(page):
    page.click('.ff-next')  # the button keeps the focus
    page.keyboard.press(' ')
    page.wait_for_function(f"document.querySelector('.ff-label').textContent !== '2/{N}'", timeout=5000)  # playing
    page.keyboard.press(' ')  # paused again (not toggled twice: play, then pause)
    k = label(page)
    page.wait_for_timeout(400)
    assert label(page) == k and page.errors == []


def test_arrow_keys_in_a_notebook_like_output(browser, page_html, tmp_path):
    "Mounted on the GIF alone inside a host page with its own key handlers (a notebook's shortcuts): the keys it takes stay with it."
    import html

    from fastfit.player import page_gif, player_script
    gif, counts = page_gif(page_html[0].read_text())
    host = (f'<!DOCTYPE html><html><body><div class="cell" tabindex="-1"><div class="output">'
            f'<div class="ff-player" data-fps="10" data-counts="{html.escape(str(counts))}">'
            f'<img class="ff-gif" src="data:image/gif;base64,{base64.b64encode(gif).decode()}"></div></div></div>'
            f'<script>window.seen = []; document.addEventListener("keydown", e => seen.push(e.key));\n'
            f'{player_script()}\nfastfitPlayer(document.querySelector(".ff-player"));</script></body></html>')
    (tmp_path / 'host.html').write_text(host)
    ctx, pg = _open(browser, tmp_path / 'host.html')
    try:
        pg.click('.ff-canvas')
        for key in ('ArrowRight', 'ArrowRight', 'ArrowLeft'): pg.keyboard.press(key)
        assert label(pg) == f'2/{N}' and np.array_equal(shown(pg), page_html[1][1])
        pg.keyboard.press('x')  # not the player's: the page sees it
        assert pg.evaluate('window.seen') == ['x'] and pg.errors == []
    finally: ctx.close()

"The .html export in a real browser (Debian's headless chromium, driven by Playwright): frames show, step, play; offline."
import base64
import io

import numpy as np
import pytest
from PIL import Image

from fastfit.writers import exported_frames

N = 40  # more than the player's 16-frame snapshots, so that jumps and backward steps cross them


@pytest.fixture(scope='module')
def page_html(tmp_path_factory):
    "A fit exported as a 40-frame player page (an APNG), its frames as the file holds them, and the same frames as a GIF."
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(60)
    path = learn.save_animation(tmp_path_factory.mktemp('html') / 'fit.html', frames=N, fps=10, dpi=40)
    gif = learn.save_animation(path.with_suffix('.gif'), frames=N, fps=10, dpi=40).read_bytes()
    frames = exported_frames(path)
    assert len(frames) == N and all(np.array_equal(a, b) for a, b in zip(frames, exported_frames(path.with_suffix('.gif'), fps=10)))
    return path, frames, gif


def _open(browser, path, js=True, width=900):
    ctx = browser.new_context(viewport={'width': width, 'height': 700}, device_scale_factor=1, java_script_enabled=js)
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
    _, frames, _ = page_html
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
    _, frames, _ = page_html
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
    page.wait_for_function(f"document.querySelector('.ff-label').textContent !== '3/{N}'", timeout=20_000)
    page.click('.ff-play')  # pause
    k = label(page)
    page.wait_for_timeout(400)
    assert label(page) == k  # paused: no more steps
    assert page.errors == []


def test_no_network_and_no_console_error(page, page_html):
    path, *_ = page_html
    page.click('.ff-next'); page.click('.ff-play'); page.wait_for_timeout(300); page.click('.ff-play')
    outside = [u for u in page.requests if not (u == path.as_uri() or u.startswith('data:'))]
    assert outside == [], outside
    assert page.errors == []


def test_without_scripts_the_image_plays(browser, page_html):
    "Where scripts do not run (sanitised outputs), the page still shows the animation: its APNG, moving by itself."
    ctx, pg = _open(browser, page_html[0], js=False)
    try:
        assert pg.is_visible('.ff-gif') and pg.is_hidden('.ff-canvas') and pg.is_hidden('.ff-controls')
        assert pg.evaluate("document.querySelector('.ff-gif').naturalWidth") == page_html[1][0].shape[1]
        seen = {pg.locator('.ff-gif').screenshot() for _ in range(6) if pg.wait_for_timeout(150) is None}
        assert len(seen) > 1, 'the image does not move'
    finally: ctx.close()


@pytest.mark.parametrize('bad', ['still PNG', 'one count too many'])
def test_an_image_it_cannot_play_stays_up(browser, page_html, tmp_path, bad):
    """A page whose image the player cannot step through as its counts say (a still PNG: no frame it reads; more counts
    than image frames) keeps showing the <img>, with an error in the console, rather than an empty canvas."""
    from fastfit.player import page_image, player_page
    png, counts = page_image(page_html[0].read_text())
    if bad == 'still PNG':
        buf = io.BytesIO()
        Image.fromarray(page_html[1][0]).save(buf, format='PNG')
        png, counts = buf.getvalue(), [1]
    else: counts = [*counts, 1]
    path = tmp_path / 'bad.html'
    path.write_text(player_page(png, counts, 10))
    ctx, pg = _open(browser, path)
    try:
        assert pg.is_visible('.ff-gif') and pg.is_hidden('.ff-canvas') and pg.is_hidden('.ff-controls')
        assert any('fastfit player' in e for e in pg.errors), pg.errors
    finally: ctx.close()


def _apng_page(tmp_path, n, level=1, strategy=None, big=False):
    """A player page of an ApngStream (`n` frames: boxes of many sizes, one pixel, repeats merged) whose boxes zlib codes
    at `level` with `strategy` (the writer's own: run-length), and what the player should show: each frame's palette
    colours, and the stream."""
    import functools
    import zlib

    from fastfit.gif import ApngStream, Palette, _deflated
    from fastfit.player import player_page
    rng = np.random.default_rng(n)
    H, W = (600, 1100) if big else (40, 60)
    cols = rng.choice(1 << 24, 255, replace=False).astype(np.uint32).view(np.uint8).reshape(-1, 4)[:, :3]  # the palette
    first = np.full((H, W, 4), 255, np.uint8)
    first[..., :3] = cols[(np.arange(W)[None] // 7 + np.arange(H)[:, None] // 5) % 30]
    if big: first[H // 2:, :, :3] = cols[rng.integers(0, 255, (H - H // 2, W))]  # noise: stored blocks after coded ones
    frames = [first]
    for k in range(1, n):
        f = frames[-1].copy()
        if k % 5 == 0: f[k % H, 3 * k % W, :3] = rng.integers(0, 256, 3)  # a one-pixel box
        elif k % 7:  # (7, 14...: the same frame again)
            y, x = rng.integers(0, H - 1), rng.integers(0, W - 1)
            f[y:rng.integers(y + 1, H + 1), x:rng.integers(x + 1, W + 1), :3] = rng.integers(0, 256, 3)
        frames.append(f)

    pal = Palette(frames[:1])
    st = ApngStream(pal, 10)
    st.code = functools.partial(_deflated, level=level, strategy=zlib.Z_RLE if strategy is None else strategy)
    for f in frames: st.add(f)
    (path := tmp_path / 'p.html').write_text(player_page(st.getvalue(), st.counts, 10))
    return path, [pal.rgb[pal.index(f)] for f in frames], st


@pytest.mark.parametrize('n,level,strategy,big', [
    (30, 1, None, False), (1, 1, None, False),  # the writer's run-length coding; a single frame
    (30, 0, None, False), (30, 6, 'Z_FIXED', False), (30, 9, 'Z_DEFAULT_STRATEGY', False),  # stored, fixed, dynamic codes
    (30, 1, 'Z_HUFFMAN_ONLY', False), (3, 1, None, True)],  # literals only; 600x1100 frames, half noise
    ids=['rle', 'one-frame', 'stored', 'fixed', 'dynamic', 'huffman', 'large'])
def test_the_player_reads_each_kind_of_deflate_block(browser, tmp_path, n, level, strategy, big):
    """The player's inflate reads every kind of deflate block zlib writes (stored, fixed and dynamic codes, literals
    only, runs), in frames of every box size (one pixel too), merged repeats, a single frame and large frames."""
    import zlib
    path, want, _ = _apng_page(tmp_path, n, level, strategy and getattr(zlib, strategy), big)
    ctx, pg = _open(browser, path, width=1200)
    try:
        assert pg.errors == [] and pg.is_hidden('.ff-gif')
        for k in [*range(n), n - 1, 0, 19 % n, 3 % n]:
            pg.evaluate(f"s => {{ s.value = {k}; s.dispatchEvent(new Event('input')); }}", pg.query_selector('.ff-slider'))
            assert np.array_equal(shown(pg), want[k]), k
    finally: ctx.close()


def test_chromium_plays_the_apng_as_written(browser, tmp_path):
    """Chromium's own decoder (WebCodecs' ImageDecoder: what the <img> plays with scripts off) reads the APNG as Pillow
    does: the same frames, each for its delay, looping forever."""
    from fastfit.gif import HOLD_LAST
    path, want, st = _apng_page(tmp_path, 30)
    ctx, pg = _open(browser, path)
    try:
        got = pg.evaluate("""async () => {
          const src = document.querySelector('.ff-gif').src, bin = atob(src.slice(src.indexOf(',') + 1));
          const dec = new ImageDecoder({data: Uint8Array.from(bin, c => c.charCodeAt(0)), type: 'image/png'});
          await dec.tracks.ready;
          const track = dec.tracks.selectedTrack, out = [];
          for (let i = 0; i < track.frameCount; i++) {
            const {image} = await dec.decode({frameIndex: i}), c = new OffscreenCanvas(image.displayWidth, image.displayHeight);
            c.getContext('2d').drawImage(image, 0, 0);
            out.push([image.duration, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]);
            image.close();
          }
          return {loops: track.repetitionCount, frames: out};
        }""")
    finally: ctx.close()
    assert got['loops'] == float('inf') and len(got['frames']) == len(st.counts)
    for i, (k, (us, px)) in enumerate(zip(np.cumsum([0, *st.counts[:-1]]), got['frames'])):
        rgba = np.array(px, np.uint8).reshape(*want[0].shape[:2], 4)
        assert (rgba[..., 3] == 255).all() and np.array_equal(rgba[..., :3], want[k]), i
        assert us == 1000 * (100 * st.counts[i] + 10 * HOLD_LAST * (i == len(st.counts) - 1)), i


def test_mounts_on_the_gif_alone(browser, page_html, tmp_path):
    "A notebook output may hold only the GIF: the script adds the canvas and controls and plays the same frames."
    import html

    from fastfit.player import page_image, player_script
    (_, counts), gif = page_image(page_html[0].read_text()), page_html[2]  # a notebook holds the GIF
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
    _, frames, _ = page_html
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
    page.wait_for_function(f"document.querySelector('.ff-label').textContent !== '2/{N}'", timeout=20_000)  # playing
    page.keyboard.press(' ')  # paused again (not toggled twice: play, then pause)
    k = label(page)
    page.wait_for_timeout(400)
    assert label(page) == k and page.errors == []


def test_arrow_keys_in_a_notebook_like_output(browser, page_html, tmp_path):
    "Mounted on the GIF alone inside a host page with its own key handlers (a notebook's shortcuts): the keys it takes stay with it."
    import html

    from fastfit.player import page_image, player_script
    (_, counts), gif = page_image(page_html[0].read_text()), page_html[2]  # a notebook holds the GIF
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


# -- any width: a three-panel figure (~1,600 px) in a 970 px column --------------------------------------------------
@pytest.fixture(scope='module')
def wide(tmp_path_factory):
    "A three-panel animation 1,560 px wide: its .html export and its notebook outputs."
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(20)
    kw = dict(frames=6, fps=10, panels=('fit', 'surface', 'loss'), dpi=100)
    page = learn.save_animation(tmp_path_factory.mktemp('wide') / 'wide.html', **kw)
    anim = learn.animate(**kw)
    return page, anim.outputs()


def fits_its_column(pg, column:int):
    "The player is no wider than `column` and nothing scrolls sideways; the canvas keeps the GIF's aspect; every control shows."
    assert pg.evaluate("document.scrollingElement.scrollWidth") <= pg.viewport_size['width'], 'the page scrolls sideways'
    c = pg.evaluate("""() => { const c = document.querySelector('.ff-canvas'), r = c.getBoundingClientRect();
        return {w: r.width, h: r.height, W: c.width, H: c.height, right: r.right}; }""")
    assert c['W'] == 1560 and 300 < c['w'] <= column and c['right'] <= pg.viewport_size['width']
    assert abs(c['h'] - c['w'] * c['H'] / c['W']) <= 1, f"the canvas is stretched: {c}"
    for sel in ('.ff-first', '.ff-prev', '.ff-play', '.ff-next', '.ff-last', '.ff-slider', '.ff-loop'):
        box = pg.locator(sel).bounding_box()
        assert pg.is_visible(sel) and box['x'] >= 0 and box['x'] + box['width'] <= pg.viewport_size['width'], sel
    assert pg.locator('.ff-slider').bounding_box()['width'] > 80  # still something to drag
    pg.click('.ff-next')
    assert label(pg) == '2/6'


def test_the_page_fits_a_narrow_window(browser, wide):
    ctx, pg = _open(browser, wide[0], width=970)
    try:
        pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/6'")
        fits_its_column(pg, 970)
    finally: ctx.close()


# The outputs as Jupyter front ends lay them out: JupyterLab and nbconvert's lab template (`.jp-OutputArea-child`, the
# script given `element`), the classic notebook and nbviewer (`.output_area`, `element` a jQuery object).
LAB = """<div class="jp-OutputArea" style="width:{w}px"><div class="jp-OutputArea-child"><div class="jp-OutputArea-output">
<img src="data:image/png;base64,{png}"></div></div><div class="jp-OutputArea-child"><div class="jp-OutputArea-output" id="js">
<script>var element = document.getElementById('js');
{js}</script></div></div></div>"""
CLASSIC = LAB.replace('jp-OutputArea-child', 'output_area').replace(
    "var element = document.getElementById('js');", "var element = {{jquery: '3.5', 0: document.getElementById('js')}};")


@pytest.mark.parametrize('layout', [LAB, CLASSIC], ids=['lab', 'classic'])
def test_the_notebook_outputs_mount_the_player_in_a_970px_column(browser, wide, tmp_path, layout):
    img, js = wide[1]
    body = layout.format(w=970, png=img['image/png'], js=js['application/javascript'])
    (tmp_path / 'nb.html').write_text(f'<!DOCTYPE html><html><body style="margin:0">{body}</body></html>')
    ctx, pg = _open(browser, tmp_path / 'nb.html', width=1100)
    try:
        pg.wait_for_function("document.querySelector('.ff-label') && document.querySelector('.ff-label').textContent === '1/6'")
        assert pg.is_hidden('img[src^="data:image/png"]')  # the GIF output gives way to the player
        fits_its_column(pg, 970)
        assert pg.errors == [] and [u for u in pg.requests if not u.startswith(('file:', 'data:'))] == []
    finally: ctx.close()


def test_without_scripts_the_notebook_gif_shows_and_fits(browser, wide, tmp_path):
    img, js = wide[1]
    body = LAB.format(w=970, png=img['image/png'], js=js['application/javascript'])
    # front ends fit images to the column, as JupyterLab, nbconvert and GitHub do
    (tmp_path / 'nb.html').write_text(f'<!DOCTYPE html><html><body>{body}<style>img{{max-width:100%}}</style></body></html>')
    ctx, pg = _open(browser, tmp_path / 'nb.html', js=False, width=1100)
    try:
        box = pg.locator('img').bounding_box()
        assert pg.is_visible('img') and 300 < box['width'] <= 970 and not pg.query_selector('.ff-player')
    finally: ctx.close()


# -- reading aids: hover or tap the loss curve / the path to jump there; the frame's parameters as text; "press play" ---
@pytest.fixture(scope='module')
def aids_page(tmp_path_factory):
    "A three-panel page (fit, surface, loss) of 30 frames, with its learner and the reading aids it holds."
    import json

    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(60)
    path = learn.save_animation(tmp_path_factory.mktemp('aids') / 'aids.html', frames=30, fps=10,
                                panels=('fit', 'surface', 'loss'), dpi=50)
    import html as h
    import re
    marks = json.loads(h.unescape(re.search(r'data-marks="([^"]*)"', path.read_text()).group(1)))
    return learn, path, marks


def client_xy(pg, px):
    "Where image pixel `px` (x, y) of the canvas is on the page."
    return pg.evaluate("""([x, y]) => { const c = document.querySelector('.ff-canvas'), r = c.getBoundingClientRect();
        return [r.left + x * r.width / c.width, r.top + y * r.height / c.height]; }""", px)


def test_hovering_the_loss_curve_or_the_path_jumps_to_that_step(browser, aids_page):
    learn, path, marks = aids_page
    surface, loss = marks['pts']  # the path's point, then the loss curve's point, frame by frame
    assert len(surface) == len(loss) == 30 and all(p is not None for p in loss)
    ctx, pg = _open(browser, path, width=1400)
    try:
        pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/30'")
        pg.mouse.move(*client_xy(pg, loss[20]))  # hover the loss curve where frame 21's point is
        assert label(pg) == '21/30'
        pg.mouse.move(*client_xy(pg, loss[4]))
        assert label(pg) == '5/30'
        pg.mouse.click(*client_xy(pg, surface[12]))  # a tap on the path
        assert label(pg) == '13/30'
        pg.mouse.move(5, 5)  # away from every marker: the frame stays
        assert label(pg) == '13/30' and pg.errors == []
    finally: ctx.close()


def test_the_frames_parameters_are_text_to_copy(browser, aids_page):
    learn, path, marks = aids_page
    h = learn.param_history
    ctx, pg = _open(browser, path, width=1400)
    try:
        pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/30'")
        assert pg.is_visible('.ff-params') and pg.text_content('.ff-params') == marks['params'][0]
        assert marks['params'][0] == f"step 0: w={h.params['w'][0, 0].item():.7g}  b={h.params['b'][0].item():.7g}"
        pg.click('.ff-last')
        text = pg.text_content('.ff-params')
        assert text == f"step 60: w={learn.model.w.item():.7g}  b={learn.model.b.item():.7g}"
        selected = pg.evaluate("""() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('.ff-params'));
            getSelection().removeAllRanges(); getSelection().addRange(r); return getSelection().toString(); }""")
        assert selected == text  # selectable, as it reads
    finally: ctx.close()


def test_a_paused_player_says_press_play(browser, aids_page):
    _, path, _ = aids_page
    ctx, pg = _open(browser, path, width=1400)
    try:
        pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/30'")
        assert pg.is_visible('.ff-hint') and 'press play' in pg.text_content('.ff-hint')
        pg.click('.ff-hint')  # it plays
        pg.wait_for_function("document.querySelector('.ff-label').textContent !== '1/30'", timeout=20_000)
        assert pg.is_hidden('.ff-hint')
        pg.click('.ff-play')
    finally: ctx.close()
    ctx, pg = _open(browser, path, width=1400)
    try:
        pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/30'")
        pg.click('.ff-next')  # any step says the reader found the controls
        assert pg.is_hidden('.ff-hint') and pg.errors == []
    finally: ctx.close()

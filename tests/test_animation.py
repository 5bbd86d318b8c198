"Exports (.gif, .html, .mp4, .png) against matplotlib's own render of the same frames; atomic files; offline player."
import os
import re
import stat
import sys
import warnings

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from fastfit.all import AnimateFit, regression_learner, synth_linear
from fastfit.plots import learner_frames
from fastfit.render import Renderer, frames_differ, mpl_frames, render_frames
from fastfit.writers import exported_frames, write_atomic

N, FPS, DPI = 10, 10, 80


@pytest.fixture(scope='module')
def learn():
    s = synth_linear(n=100, seed=42)
    learn = regression_learner(s.dataloaders(bs=None))
    with learn.no_bar(), learn.no_logging(): learn.fit(100)
    return learn


@pytest.fixture(scope='module')
def reference(learn):
    "matplotlib's own frames: FuncAnimation.save of learn.animate(), a full redraw per frame."
    return mpl_frames(learn.animate(frames=N, fps=FPS, dpi=DPI))




def assert_same_pictures(frames, ref):
    assert len(frames) == len(ref)
    assert frames[0].shape[:2] == ref[0].shape[:2]
    shares = [frames_differ(f, r) for f, r in zip(frames, ref)]
    assert max(shares) <= 1e-3, shares


def test_gif_matches_matplotlib(learn, reference, tmp_path):
    path = learn.save_animation(tmp_path / 'fit.gif', frames=N, fps=FPS, dpi=DPI)
    assert_same_pictures(exported_frames(path, FPS), reference)
    with Image.open(path) as im: assert im.info['loop'] == 0  # loop forever


def test_gif_has_one_palette_with_exact_fit_colour(learn, reference, tmp_path):
    path = learn.save_animation(tmp_path / 'fit.gif', frames=N, fps=FPS, dpi=DPI)
    with Image.open(path) as im:
        pal = im.getpalette()
        assert (0xD5, 0x5E, 0x00) in {tuple(pal[i:i + 3]) for i in range(0, len(pal), 3)}
    # wherever matplotlib drew the fitted line's exact colour, the GIF has exactly that colour
    for f, r in zip(exported_frames(path, FPS), reference):
        line = (r[..., :3] == (0xD5, 0x5E, 0x00)).all(-1)
        assert line.sum() > 200
        assert (f[line] == (0xD5, 0x5E, 0x00)).all()


def test_html_matches_matplotlib_and_is_offline(learn, reference, tmp_path):
    path = learn.save_animation(tmp_path / 'fit.html', frames=N, fps=FPS, dpi=DPI)
    page = path.read_text()
    assert_same_pictures(exported_frames(path), reference)
    for ref in re.findall(r'''(?:src|href)\s*=\s*["']([^"']*)''', page): assert ref.startswith('data:'), ref
    assert not re.search(r'https?:|@import|url\(|<script[^>]+src', page)
    for control in ('ff-play', 'ff-prev', 'ff-next', 'ff-slider'): assert f'class="{control}"' in page


def test_png_is_last_frame(learn, reference, tmp_path):
    path = learn.save_animation(tmp_path / 'fit.png', frames=N, dpi=DPI)
    assert_same_pictures([np.asarray(Image.open(path).convert('RGB'))], reference[-1:])


def test_animate_is_a_funcanimation_of_the_same_frames(learn, reference):
    anim = learn.animate(frames=N, fps=FPS, dpi=DPI)
    assert isinstance(anim, FuncAnimation) and len(list(anim.new_frame_seq())) == N
    for k in (0, N - 1):  # its own function on its own figure draws the reference's frames
        anim._func(k)
        anim._fig.canvas.draw()
        assert frames_differ(np.asarray(anim._fig.canvas.buffer_rgba()), reference[k]) == 0
    fr = learner_frames(learn, N, ('fit',), DPI, 'test')
    assert_same_pictures(render_frames(fr), reference)


def test_limits_fixed_and_moving_text_inside_axes(learn):
    fr = learner_frames(learn, 50, ('fit',), DPI, 'test')
    lims = [(ax.get_xlim(), ax.get_ylim()) for ax in fr.fig.axes]
    r = FigureCanvasAgg(fr.fig).get_renderer()
    for k in range(len(fr)):
        for a in fr.draw(k):
            if isinstance(a, mpl.text.Text) and a.get_visible() and a.get_text():  # a hidden note has no extent
                box, ax = a.get_window_extent(r), a.axes.bbox
                assert ax.x0 <= box.x0 and box.x1 <= ax.x1 and ax.y0 <= box.y0 and box.y1 <= ax.y1, (k, a.get_text())
        assert [(ax.get_xlim(), ax.get_ylim()) for ax in fr.fig.axes] == lims
    with Renderer(fr) as r:
        for k in range(len(fr)): r.frame(k)
        assert not r.whole  # so the fit panel is blitted, not redrawn whole


class _LineUnderLegend:
    "A duck-typed `Frames`: a line moving across a legend drawn above it (same zorder, later in the draw order)."
    def __init__(self, move_limits=False):
        self.fig = Figure(figsize=(4, 3), dpi=60)
        ax = self.fig.subplots()
        ax.plot([0, 1], [0, 1], c='C0', label='static')
        self.line, = ax.plot([0, 1], [.5, .5], c='#D55E00', lw=4, zorder=5, label='moving')
        ax.legend(loc='center', framealpha=1, fontsize=14)
        ax.set_xlim(0, 1); ax.set_ylim(0, 1)
        self.artists, self.ax, self.move_limits = [self.line], ax, move_limits
    def __len__(self): return 4
    def draw(self, k):
        self.line.set_ydata([.35 + k * .1] * 2)
        if self.move_limits: self.ax.set_ylim(0, 1 + k)
        return self.artists


def _full(fr):
    c = FigureCanvasAgg(fr.fig)
    out = []
    for k in range(len(fr)):
        fr.draw(k); c.draw(); out.append(np.asarray(c.buffer_rgba()).copy())
    return out


def test_static_artists_above_moving_ones_stay_above():
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no fallback to full draws: the blitted frames must be right by themselves
        got = render_frames(_LineUnderLegend())
    ref = _full(_LineUnderLegend())
    assert_same_pictures(got, ref)
    assert frames_differ(got[1], got[2]) > 0  # the line moved (under the legend, which hides it)


class _TwoPanelsAndTitle(_LineUnderLegend):
    "Two panels with moving lines, and a moving figure title over them."
    def __init__(self):
        self.fig = Figure(figsize=(6, 3), dpi=60)
        axs = self.fig.subplots(1, 2)
        self.lines = [ax.plot([0, 1], [0, 1], c=c, lw=3)[0] for ax, c in zip(axs, ('C1', 'C2'))]
        for ax in axs: ax.set_xlim(0, 1); ax.set_ylim(0, 2); ax.grid()
        self.title = self.fig.suptitle('')
        self.artists = self.lines + [self.title]
    def draw(self, k):
        for i, line in enumerate(self.lines): line.set_ydata([k * .3, 1 + i * .2])
        self.title.set_text(f'frame {k}')
        return self.artists


def test_panels_and_figure_level_text_match_full_draws():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        got = render_frames(_TwoPanelsAndTitle())
    assert_same_pictures(got, _full(_TwoPanelsAndTitle()))


class _Moving3D(_LineUnderLegend):
    "A point moving over a surface in 3D axes: matplotlib orders 3D artists by depth, not by zorder."
    def __init__(self):
        self.fig = Figure(figsize=(3, 3), dpi=50)
        ax = self.fig.add_subplot(projection='3d')
        x, y = np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8))
        ax.plot_surface(x, y, x ** 2 + y ** 2, cmap='viridis')
        self.pt, = ax.plot([0], [0], [0], 'o', c='#D55E00', ms=8)
        self.artists = [self.pt]
    def __len__(self): return 3
    def draw(self, k):
        self.pt.set_data_3d([k * .4 - .4], [0], [(k * .4 - .4) ** 2])
        return self.artists


def test_3d_axes_frames_match_full_draws():
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the 3D axes is redrawn whole each frame, the rest blitted: no fallback
        got = render_frames(_Moving3D())
    assert_same_pictures(got, _full(_Moving3D()))


def test_changing_limits_redraw_that_axes_whole():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        got = render_frames(_LineUnderLegend(move_limits=True))
    assert_same_pictures(got, _full(_LineUnderLegend(move_limits=True)))


def test_html_thinned_under_embed_limit(learn, tmp_path):
    with mpl.rc_context({'animation.embed_limit': .05}), pytest.warns(UserWarning, match=r'Showing \d+ of 40 frames'):
        path = learn.save_animation(tmp_path / 'fit.html', frames=40, fps=FPS, dpi=DPI)
    page = path.read_text()
    assert len(page.encode()) <= .05 * 2 ** 20
    assert 'animation.embed_limit' in page  # the page says so too
    assert 2 <= len(exported_frames(path)) < 40


def _page_marks(path):
    import html
    import json
    return json.loads(html.unescape(re.search(r'data-marks="([^"]*)"', path.read_text()).group(1)))


def test_html_reading_aids_are_those_of_each_frame(learn, tmp_path):
    "The marks an export gathers while drawing are those of each frame drawn on its own (also on a thinned page)."
    from fastfit.player import frame_marks
    panels = ('fit', 'surface', 'loss')
    path = learn.save_animation(tmp_path / 'a.html', frames=N, fps=FPS, dpi=DPI, panels=panels)
    marks = _page_marks(path)
    assert marks == frame_marks(learner_frames(learn, N, panels, DPI, 'test'))
    assert len(marks['pts']) == 2 and all(len(t) == N and all(p is not None for p in t) for t in marks['pts'])
    assert len(set(map(tuple, marks['pts'][1]))) > N // 2  # the loss curve's point moves
    with mpl.rc_context({'animation.embed_limit': .05}), pytest.warns(UserWarning, match=r'Showing \d+ of 40 frames'):
        path = learn.save_animation(tmp_path / 'b.html', frames=40, fps=FPS, dpi=DPI, panels=panels)
    step = int(re.search(r'one in (\d+)', path.read_text()).group(1))
    keep = sorted({*range(0, 40, step), 39})
    assert _page_marks(path) == frame_marks(learner_frames(learn, 40, panels, DPI, 'test'), keep)


def test_mp4_without_extra_names_it(learn, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', None)  # as if not installed
    with pytest.raises(ImportError, match=r"fastfit-gd\[mp4\]"): learn.save_animation(tmp_path / 'fit.mp4', frames=N)
    with pytest.raises(ImportError, match=r"fastfit-gd\[mp4\]"): AnimateFit(tmp_path / 'fit.mp4')
    assert not list(tmp_path.iterdir())


def test_mp4(learn, reference, tmp_path):
    iio = pytest.importorskip('imageio_ffmpeg')
    path = learn.save_animation(tmp_path / 'fit.mp4', frames=N, fps=FPS, dpi=DPI)
    gen = iio.read_frames(str(path))
    meta = next(gen)
    assert tuple(meta['size']) == (512, 384) and meta['fps'] == FPS
    frames = [np.frombuffer(f, np.uint8).reshape(384, 512, 3) for f in gen]
    assert len(frames) == N
    # lossy (yuv420p halves the colour resolution): close, not exact
    for f, r in zip(frames, reference): assert frames_differ(f, r, tol=80) < .01


def test_bad_arguments(learn, tmp_path):
    with pytest.raises(ValueError, match=r"unknown file suffix '\.avi'.*\.gif"): learn.save_animation(tmp_path / 'x.avi')
    with pytest.raises(ValueError, match='fps <= 50'): learn.save_animation(tmp_path / 'x.gif', fps=60)
    with pytest.raises(ValueError, match='fps must be > 0'): learn.save_animation(tmp_path / 'x.html', fps=0)


def test_write_atomic_permissions_and_no_temp_on_failure(tmp_path):
    umask = os.umask(0o022); os.umask(umask)
    p = write_atomic(tmp_path / 'a.gif', lambda t: open(t, 'wb').write(b'new'))
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    os.chmod(p, 0o640)
    write_atomic(p, lambda t: open(t, 'wb').write(b'newer'))
    assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_bytes() == b'newer'  # an existing file keeps its mode
    def fail(t):
        open(t, 'wb').write(b'half')
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError, match='disk full'): write_atomic(p, fail)
    assert p.read_bytes() == b'newer' and sorted(x.name for x in tmp_path.iterdir()) == ['a.gif']
    with pytest.raises(RuntimeError): write_atomic(tmp_path / 'b.gif', fail)
    assert sorted(x.name for x in tmp_path.iterdir()) == ['a.gif']


def test_html_player_in_a_browser_makes_no_request(learn, tmp_path, browser):
    "The exported page plays offline (the session's chromium: a second Playwright in one process would fail)."
    path = learn.save_animation(tmp_path / 'fit.html', frames=N, fps=FPS, dpi=DPI)
    page = browser.new_page()
    try:
        requests, errors = [], []
        page.on('request', lambda r: requests.append(r.url))
        page.on('console', lambda m: m.type == 'error' and errors.append(m.text))
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        label = page.locator('.ff-label')
        assert label.text_content() == f'1/{N}'
        page.click('.ff-next'); assert label.text_content() == f'2/{N}'
        page.click('.ff-last'); assert label.text_content() == f'{N}/{N}'
        page.click('.ff-prev'); assert label.text_content() == f'{N - 1}/{N}'
        page.locator('.ff-slider').fill('3'); assert label.text_content() == f'4/{N}'
        page.click('.ff-play'); page.wait_for_timeout(350); page.click('.ff-play')
        assert label.text_content() != f'4/{N}'
    finally: page.close()
    assert not errors
    assert all(u.startswith('data:') or u == path.as_uri() for u in requests), requests


def test_one_frame_and_callback(learn, tmp_path):
    "One frame works; AnimateFit writes the GIF when fit ends, with no warning (a fresh learner: `learn` stays as is)."
    for ext in ('gif', 'html', 'png'): assert learn.save_animation(tmp_path / f'one.{ext}', frames=1).stat().st_size > 1000
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cb = AnimateFit(tmp_path / 'cb.gif', frames=3, fps=FPS)
        fresh = regression_learner(synth_linear(n=30, seed=1).dataloaders(bs=None))
        with fresh.no_bar(), fresh.no_logging(): fresh.fit(2, cbs=cb)
    assert len(exported_frames(cb.saved, FPS)) == 3

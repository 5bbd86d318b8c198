"Text from cached glyphs: the same pixels and metrics as matplotlib's own text drawing, for any string it is given."
import random

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fastfit import glyphs
from fastfit.glyphs import GlyphText

pytestmark = pytest.mark.skipif(not glyphs._INTERNALS, reason="this matplotlib has no per-glyph Agg text drawing")

ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-+=:()[]/%_' + 'σ−×é'


def _strings(n, seed=0):
    rng = random.Random(seed)
    fixed = ['AVATAR Tj', 'office fluff', 'step 12  loss 0.9871', 'w=2.953  b=-1.08e-05', '−0.5', 'σ-T', 'x²']
    return fixed + [''.join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def _draw(texts, fast, **kw) -> np.ndarray:
    fig = Figure(figsize=(4, 6), dpi=kw.pop('dpi', 80), facecolor=kw.pop('facecolor', 'white'))
    for i, s in enumerate(texts): fig.text(.02, 1 - (i + 1) / (len(texts) + 1), s, **kw)
    canvas = FigureCanvasAgg(fig)
    g = GlyphText(canvas.get_renderer())
    if fast: g.install()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_self_check_passes_here():
    assert glyphs._check()  # so exports do draw their text from cached glyphs


@pytest.mark.parametrize('kw', [dict(family='monospace', fontsize=10), dict(family='sans-serif', fontsize=9, dpi=100),
                                dict(family='serif', fontsize=13, dpi=72), dict(fontsize=11, color='#D55E00', alpha=.6),
                                dict(fontsize=10, bbox=dict(boxstyle='round', fc='white', alpha=.85), linespacing=1.5),
                                dict(fontsize=12, facecolor='none'), dict(fontsize=12, facecolor=(.2, .5, .8, .5)),
                                dict(fontsize=30, family='monospace', dpi=100)])
def test_same_pixels_as_matplotlib(kw):
    texts = _strings(30)
    for chunk in (texts[:19], texts[19:]):
        assert np.array_equal(_draw(chunk, True, **dict(kw)), _draw(chunk, False, **dict(kw)))


def test_multiline_rotated_and_math_text_the_same():
    for kw in (dict(rotation=30), dict(rotation=90, fontsize=8)):
        assert np.array_equal(_draw(['tilted 1.5', 'AV'], True, **kw), _draw(['tilted 1.5', 'AV'], False, **kw))
    texts = [r'$\alpha=0.5$', 'two\nlines 2.5', 'a $x^2$ b']
    assert np.array_equal(_draw(texts, True), _draw(texts, False))


def test_a_hinting_setting_changed_between_draws_is_followed():
    "Fonts are cached by the hinting settings they were made under: changing one draws as matplotlib draws under it."
    import matplotlib as mpl
    texts = _strings(6, seed=3)
    for hinting in ('no_hinting', 'force_autohint', 'default'):
        with mpl.rc_context({'text.hinting': hinting}):
            assert np.array_equal(_draw(texts, True, fontsize=11), _draw(texts, False, fontsize=11)), hinting
    differ = []
    for hinting in ('no_hinting', 'force_autohint'):
        with mpl.rc_context({'text.hinting': hinting}): differ.append(_draw(texts, True, fontsize=11))
    assert not np.array_equal(*differ)  # the setting does change the pixels: the check above could fail


def test_same_metrics_as_matplotlib():
    from matplotlib.font_manager import FontProperties
    fig = Figure(dpi=80)
    r = FigureCanvasAgg(fig).get_renderer()
    g = GlyphText(r)
    for fam in ('monospace', 'sans-serif'):
        prop = FontProperties(family=fam, size=10)
        for s in _strings(200, seed=1):
            assert g.metrics(s, prop, False) == type(r).get_text_width_height_descent(r, s, prop, False), s
        assert g.height_metrics(prop)[0] > 0


def test_each_glyph_is_rasterised_once_not_every_frame():
    "Not a timing test: a caption redrawn for 40 frames costs FreeType each glyph (per subpixel phase) once, not 40 times."
    from matplotlib.ft2font import FT2Font
    fig = Figure(figsize=(3, 1), dpi=80)
    t = fig.text(.05, .5, '', family='monospace', fontsize=10)
    canvas = FigureCanvasAgg(fig)
    g = GlyphText(canvas.get_renderer())
    calls, orig = [], FT2Font._render_glyph
    def count(fast):
        glyphs._FACES.clear()
        if fast: g.install()
        calls.clear()
        try:
            for k in range(40):
                t.set_text(f'step {k}  loss {1 / (k + 1):.4f}')
                canvas.draw()
        finally: g.uninstall()
        return len(calls)
    try:
        FT2Font._render_glyph = lambda self, *a: calls.append(1) or orig(self, *a)
        slow, fast = count(False), count(True)
    finally: FT2Font._render_glyph = orig
    assert slow > 600 and fast < 60, (fast, slow)


def test_a_glyph_is_placed_once_where_lines_put_it_again():
    """Lines of numbers that change every frame (the step panel's) place each glyph where an earlier line put it from its
    kept place, and every frame is matplotlib's own drawing of it."""
    fig = Figure(figsize=(4, 1.5), dpi=80)
    t = fig.text(.02, .9, '', family='monospace', fontsize=10, va='top')
    canvas = FigureCanvasAgg(fig)
    g = GlyphText(canvas.get_renderer())
    placed, orig = [], glyphs._at
    glyphs._FACES.clear()
    glyphs._at = lambda *a: placed.append(1) or orig(*a)
    try:
        frames, pasted = [], 0
        for k in range(30):
            t.set_text(f"w = {1 - k / 29:.7f} - 0.1×({k * 0.37:.5g})\nloss {1 / (k + 1):.6g} → {1 / (k + 2):.6g}")
            g.install()
            canvas.draw()
            g.uninstall()
            frames.append(np.asarray(canvas.buffer_rgba()).copy())
            pasted += sum(c != ' ' for c in t.get_text() if c != '\n')
    finally: glyphs._at = orig
    assert len(placed) < pasted / 3, (len(placed), pasted)  # most glyphs were where an earlier line put them
    for k, f in enumerate(frames):
        t.set_text(f"w = {1 - k / 29:.7f} - 0.1×({k * 0.37:.5g})\nloss {1 / (k + 1):.6g} → {1 / (k + 2):.6g}")
        canvas.draw()
        assert np.array_equal(f, np.asarray(canvas.buffer_rgba())), k


def test_pen_positions_round_halves_to_even_as_matplotlib():
    """A glyph's pen is rounded to 1/64 px halves to even (numpy's `rint`, which matplotlib's own drawing matches):
    positions that fall on a half, or just off one, are placed where that rounding puts them."""
    fig = Figure(figsize=(3, 1), dpi=80)
    g = GlyphText(FigureCanvasAgg(fig).get_renderer())
    face = g._face(fig.text(0, 0, 'x', family='monospace')._fontproperties)
    ln = face.line('a1b2c3 d4')
    for x in (10.0, 10 + 1 / 128, 10 + 3 / 128, 10 + 1 / 128 + 1e-12, np.float64(7.5 + 5 / 128), 200 - 1 / 128):
        tx = np.rint((x + np.asarray(ln[1])) * 64).astype(np.int64)
        inked = [j for j, c in enumerate('a1b2c3 d4') if c != ' ']
        want = [(int(tx[j]) >> 6) + face.bitmap(ln[0][j], glyphs.RenderMode.NORMAL, int(tx[j]), 640)[1] for j in inked]
        assert [p[1] for p in face.placed(ln, x, glyphs.RenderMode.NORMAL, 640, 60, 240)] == want, x
        assert [p[0] for p in face.placed(ln, x, glyphs.RenderMode.NORMAL, 640, 60, 240)] == \
            [face.bitmap(ln[0][j], glyphs.RenderMode.NORMAL, int(tx[j]), 640) for j in inked]


def test_pens_kept_for_a_line_serve_another_of_its_offsets():
    """The pens `_Face.placed` keeps for a line's start and offsets (a render's `pens`) place another monospace line of
    that length exactly where a fresh rounding does, at starts on and off a half."""
    fig = Figure(figsize=(3, 1), dpi=80)
    g = GlyphText(FigureCanvasAgg(fig).get_renderer())
    face = g._face(fig.text(0, 0, 'x', family='monospace')._fontproperties)
    first = face.line('a1b2c3 d4')
    pens = {}
    for x in (10.0, 10 + 1 / 128, 10 + 3 / 128, np.float64(7.5 + 5 / 128)):
        face.placed(first, x, glyphs.RenderMode.NORMAL, 640, 60, 240, pens)
        for ln in (face.line('x9y8z7 w6'), face.line('0.123456e')):
            assert ln[1] == first[1]
            assert face.placed(ln, x, glyphs.RenderMode.NORMAL, 640, 60, 240, pens) == \
                face.placed(ln, x, glyphs.RenderMode.NORMAL, 640, 60, 240)
    assert len(pens) == 4


@pytest.mark.parametrize('under', ['noise', 'plain'])
@pytest.mark.parametrize('color', [(0, 0, 0, 1), (.835, .369, 0, .6), (.2, .4, .6, .3), (1, 1, 1, 1)])
def test_text_is_blended_as_agg_blends_it(color, under):
    """Coverage pasted through the blend table read from Agg gives `draw_text_image`'s pixels, whatever lies under it:
    noise, or one colour (a paper or a box, blended through that colour's row of the tables) beside another."""
    rng = np.random.default_rng(0)
    canvases = []
    for fast in (True, False):
        fig = Figure(figsize=(2, 1), dpi=100)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        r = canvas.get_renderer()
        buf = np.asarray(r._renderer)
        buf[..., :3] = np.random.default_rng(1).integers(0, 256, buf[..., :3].shape)
        if under == 'plain': buf[:, :120, :3], buf[:, 120:, :3] = (250, 248, 245), (30, 60, 90)
        gc = r.new_gc()
        gc.set_foreground(color, isRGBA=True)
        g, rng = GlyphText(r), np.random.default_rng(0)
        for _ in range(20):
            img = rng.integers(0, 256, (rng.integers(1, 40), rng.integers(1, 60)), dtype=np.uint8)
            img[rng.random(img.shape) < .5] = 0
            again = np.where(rng.random(img.shape) < .3, img, 0)  # some pixels inked twice (two glyphs overlapping)
            x, y = int(rng.integers(0, 200 - img.shape[1])), int(rng.integers(img.shape[0], 100))
            if fast:
                (ys, xs), (ys2, xs2) = np.nonzero(img), np.nonzero(again)
                lin = np.r_[ys, ys2] * r.width + np.r_[xs, xs2] + (y - img.shape[0]) * r.width + x
                table = g._table(gc, (x, y - img.shape[0], x + img.shape[1], y), r.height, r.width)
                assert table.blend(buf.reshape(-1).view(np.uint32), lin, np.r_[img[ys, xs], again[ys2, xs2]], (len(ys),))
            else:
                for im in (img, again): r._renderer.draw_text_image(im, x, y, 0, gc)
        canvases.append(buf.copy())
    assert np.array_equal(*canvases)


def test_text_is_laid_out_as_matplotlib_lays_it_out():
    "`GlyphText.layout` gives `Text._get_layout`'s box, lines and positions exactly, for every alignment and spacing."
    import itertools
    fig = Figure(figsize=(4, 3), dpi=100)
    r = FigureCanvasAgg(fig).get_renderer()
    g = GlyphText(r)
    assert g.layout(fig.text(.1, .5, 'not installed')) is None  # measured by matplotlib: laid out by it too
    g.install()
    texts = ['step 12  loss 0.9871\nw=2.953  b=-1.08e-05', 'one', 'a\n\nb\n', 'cost \\$5', 'Tj gy\nAVATAR office\n×σ']
    for s, ha, va, ma, ls, mode, kw in itertools.product(
            texts, ['left', 'center', 'right'], ['top', 'bottom', 'center', 'baseline', 'center_baseline'],
            [None, 'center', 'right'], [None, 1.5, 'normal'], ['default', 'anchor'],
            [dict(family='monospace', fontsize=10), dict(fontsize=13), dict(family='serif', fontsize=7)]):
        t = fig.text(.1, .5, s, ha=ha, va=va, multialignment=ma, linespacing=ls, rotation_mode=mode, **kw)
        mine, theirs = g.layout(t), t._get_layout(r)
        assert mine[0].bounds == theirs[0].bounds and mine[1:] == theirs[1:], (s, ha, va, ma, ls, mode, kw)
        t.remove()
    for kw in (dict(rotation=30), dict(wrap=True)):  # left to matplotlib
        assert g.layout(fig.text(.1, .5, 'tilted', **kw)) is None
    assert g.layout(fig.text(.1, .5, 'a $x^2$ b')) is None


def _texts_drawn(specs, plain:bool) -> tuple:
    "A figure with texts `specs` ((x, y, s, kw)) drawn by matplotlib, or its texts by `GlyphText.draw_plain`: pixels, results."
    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_axes((.1, .1, .8, .8))
    ax.plot([0, 1], [0, 1], lw=8)
    texts = [ax.text(x, y, s, **kw) for x, y, s, kw in specs]
    canvas = FigureCanvasAgg(fig)
    g = GlyphText(canvas.get_renderer())
    if not plain:
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy(), None
    g.install()
    for t in texts: t.set_animated(True)
    canvas.draw()
    done = [g.draw_plain(t) for t in texts]
    return np.asarray(canvas.buffer_rgba()).copy(), done


def test_a_plain_text_is_drawn_at_once_as_matplotlib_draws_it():
    """`draw_plain` draws a text's lines at once with the pixels of `Text.draw`: boxes, alignments, colours, clipping, lines
    close enough for their glyphs to meet (pasted in matplotlib's order), over lines and over paper."""
    specs = [(.05, .95, 'step 12  loss 0.9871\nw=2.953  b=-1.08e-05', dict(va='top', family='monospace', fontsize=10,
                                                                         bbox=dict(boxstyle='round', fc='white', alpha=.85))),
             (.5, .5, 'Tg jy (p)\nÅ|{[]}\n_gyp|', dict(ha='center', va='center', fontsize=20, linespacing=.55, color='#D55E00',
                                                     alpha=.7)),
             (.95, .05, 'right\naligned\n\nlines', dict(ha='right', multialignment='right', fontsize=9, color='C2')),
             (.9, .6, 'clipped at the axes', dict(fontsize=14, clip_on=True)), (.2, .3, '', {}),
             (.3, .2, 'cost \\$5', dict(fontsize=11, visible=False))]
    mine, done = _texts_drawn(specs, True)
    assert all(done)
    assert np.array_equal(mine, _texts_drawn(specs, False)[0])


def test_a_text_is_placed_where_matplotlib_places_it_whatever_its_position_is_given_as():
    """Positions given as ints and floats (taken as they are), numpy numbers, a masked value (not drawn) and dates on a
    date axis (converted by the axis's units): `draw_plain` draws each where `Text.draw` does."""
    specs = [(0, 1, 'int 0, 1', {}), (.25, .5, 'float', {}), (np.float64(.3), np.int64(0), 'numpy', {}),
             (np.ma.masked, .5, 'masked', {}), (.6, .2, 'step 3\nloss 0.5', dict(family='monospace'))]
    mine, done = _texts_drawn(specs, True)
    assert done == [True, True, True, False, True]  # (matplotlib draws nothing at a masked position either)
    assert np.array_equal(mine, _texts_drawn(specs, False)[0])
    import datetime
    days = [datetime.date(2024, 1, d) for d in (1, 5, 9)]
    canvases = []
    for plain in (True, False):
        fig = Figure(figsize=(3, 2), dpi=100)
        ax = fig.add_axes((.1, .1, .8, .8))
        ax.plot(days, [0, 1, 2])
        t = ax.text(datetime.date(2024, 1, 4), 1.5, 'a date')
        canvas = FigureCanvasAgg(fig)
        if plain:
            g = GlyphText(canvas.get_renderer())
            g.install()
            t.set_animated(True)
            canvas.draw()
            assert g.draw_plain(t)
        else: canvas.draw()
        canvases.append(np.asarray(canvas.buffer_rgba()).copy())
    assert np.array_equal(*canvases)


def test_glyphs_inking_one_pixel_are_blended_in_rounds_in_matplotlibs_order(monkeypatch):
    """Glyphs whose ink may share pixels (kerned pairs, lines set close) are blended in rounds, a glyph after those it
    may meet, lines together or (where they meet) one after the other: matplotlib's pixels, over paper and over a line."""
    seen = []
    def rounds(lines, meet):
        out = orig(lines, meet)
        seen.append((meet, len(out[2])))
        return out
    orig = glyphs._rounds
    monkeypatch.setattr(glyphs, '_rounds', rounds)
    specs = [(.02, .9, 'AVAWAT Tj fj\nLT yVA WAV', dict(va='top', fontsize=26)),  # lines apart: rounds side by side
             (.05, .6, 'VAVAV/\\/\\\nAVAVA//\\', dict(va='top', fontsize=24, linespacing=.45, alpha=.8)),  # lines meet
             (.3, .2, 'AVATAR f/j', dict(fontsize=30, color='C3'))]
    mine, done = _texts_drawn(specs, True)
    assert all(done)
    assert np.array_equal(mine, _texts_drawn(specs, False)[0])
    assert (False, True) in {(m, n > 0) for m, n in seen} and (True, True) in {(m, n > 0) for m, n in seen}, seen


def test_other_texts_are_left_to_matplotlib():
    fig = Figure(figsize=(3, 2), dpi=100)
    ax = fig.add_axes((.1, .1, .8, .8))
    g = GlyphText(FigureCanvasAgg(fig).get_renderer())
    g.install()
    import matplotlib.patheffects as pe
    for t in (ax.text(.5, .5, 'tilted', rotation=30), ax.text(.5, .5, 'a $x^2$ b'), ax.annotate('note', (.5, .5)),
              ax.text(.5, .5, 'glow', path_effects=[pe.withStroke(linewidth=3)]), ax.text(.5, .5, 'raster', rasterized=True)):
        assert not g.draw_plain(t)


@pytest.mark.parametrize('kw', [dict(fontsize=11), dict(family='serif', fontsize=13, dpi=100),
                                dict(family='monospace', fontsize=10), dict(fontsize=9, color='#D55E00', alpha=.6)])
def test_lines_with_ligatures_are_drawn_from_the_cache_as_matplotlib_draws_them(kw):
    """DejaVu's "fi", "ff", "fl", "ffi", "ffl" are one glyph each in matplotlib's layout: lines holding them (the fit
    panel's 'fit off the chart:') are laid out unit by unit from the cache, with matplotlib's pixels and metrics."""
    from matplotlib.font_manager import FontProperties
    texts = ['fit off the chart:', 'office fluff', 'fff ffff fffi ffl', 'affine efficient', 'ﬁ: a ligature typed',
             'waffle (sniffing)', 'f f.f-fi']
    drawn_by_matplotlib = []
    orig = GlyphText._matplotlib
    GlyphText._matplotlib = lambda self, *a: drawn_by_matplotlib.append(a[3]) or orig(self, *a)
    try: fast = _draw(texts, True, **dict(kw))
    finally: GlyphText._matplotlib = orig
    assert drawn_by_matplotlib == ['ﬁ: a ligature typed']  # a typed ligature character is left to matplotlib
    assert np.array_equal(fast, _draw(texts, False, **dict(kw)))
    r = FigureCanvasAgg(Figure(dpi=80)).get_renderer()
    g, prop = GlyphText(r), FontProperties(family=kw.get('family', 'sans-serif'), size=kw['fontsize'])
    for s in texts[:4] + texts[5:]:
        assert g.metrics(s, prop, False) == type(r).get_text_width_height_descent(r, s, prop, False), s
    if 'family' not in kw: assert len(g._face(prop).line('office fluff')[0]) == 8  # o, ffi, c, e, a space, fl, u, ff


@pytest.mark.parametrize('family', ['sans-serif', 'monospace'])
def test_a_line_laid_out_pair_by_pair_is_laid_out_unit_by_unit(family):
    "A line whose adjacent characters were all seen as pairs (no ligature) takes one lookup a pair: the same layout."
    from matplotlib.font_manager import FontProperties
    face = GlyphText(FigureCanvasAgg(Figure(dpi=80)).get_renderer())._face(FontProperties(family=family, size=11))
    rng, paired = random.Random(2), 0
    for s in _strings(400, seed=2) + ['ffi fi' * 3, 'office', 'x', 'a\tb', 'e\u0301']:
        for t in (s, s[::-1], s + s, ''.join(rng.sample(s, len(s)))):  # seen once, then made of pairs seen before
            paired += len(t) > 1 and all(t[i:i + 2] in face.steps for i in range(len(t) - 1))
            assert face._line(t) == face._units_line(t), t
    assert paired > 300  # the pair path was taken

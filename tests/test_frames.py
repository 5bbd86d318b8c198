"`Frames`: the figure an animation or export is drawn from, built as matplotlib would lay it out."
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure

from fastfit import glyphs
from fastfit.all import lr_sweep, synth_linear
from fastfit.panels.frames import Frames
from fastfit.panels.layout import TICKS_RELY_ON
from fastfit.plots import learner_frames


def _layout(fr) -> tuple:
    "Where everything of `fr`'s figure is: its axes, their titles, labels and legends, and its pixels (matplotlib's draw)."
    fig = fr.fig
    r = fig.canvas.get_renderer()
    fig.canvas.draw()
    boxes = [tuple(a.get_position().bounds) for a in fig.axes]
    texts = [tuple(t.get_window_extent(r).bounds) for a in fig.axes for t in (a.title, a.xaxis.label, a.yaxis.label)]
    legs = [tuple(leg.get_window_extent(r).bounds) for leg in [a.get_legend() for a in fig.axes] + fig.legends if leg]
    return boxes, texts, legs, np.asarray(fig.canvas.buffer_rgba()).copy()


@pytest.mark.skipif(not glyphs._check(), reason="this matplotlib's text is not drawn from cached glyphs")
@pytest.mark.parametrize('kind', ['fit+step', 'sweep grid'])
def test_a_figure_is_laid_out_from_the_glyph_cache_as_matplotlib_lays_it_out(fitted, kind, monkeypatch):
    """The figure build measures its text (tick labels, legends, titles) from the glyph cache, kept across figures, not
    by FreeType each time: the same layout and pixels as matplotlib's own measuring, and the renderer given back."""
    if kind == 'fit+step': build = lambda: learner_frames(fitted, 20, ('fit', 'step'), 100, 'test')
    else:
        sweep = lr_sweep(synth_linear(n=50, seed=1).dataloaders(bs=None), lrs=[.01, .1, .5, 1.05], epochs=15)
        build = lambda: sweep.frames(10, ('fit',), 100)
    measured = []
    real = RendererAgg.get_text_width_height_descent
    monkeypatch.setattr(RendererAgg, 'get_text_width_height_descent', lambda self, s, *a: measured.append(s) or real(self, s, *a))
    build()  # the cache filled
    measured.clear()
    fr = build()
    cached = len(measured)
    assert isinstance(fr, Frames) and not fr.fig.canvas.get_renderer().__dict__.keys() & {'draw_text', 'get_text_width_height_descent'}
    mine = _layout(fr)
    monkeypatch.setattr(glyphs, '_ACTIVE', False)  # matplotlib measures every text
    measured.clear()
    theirs = _layout(build())
    assert len(measured) > 3 * cached + 10, (cached, len(measured))  # tick labels, legends: measured once, not per figure
    for m, t in zip(mine[:3], theirs[:3]): assert m == t
    assert np.array_equal(mine[3], theirs[3])


def _alike(a, b, depth=4) -> bool:
    "Whether `a` and `b` hold equal values attribute by attribute (`depth` levels down), callbacks both empty."
    from matplotlib.cbook import CallbackRegistry
    if a is b: return True
    if type(a) is not type(b): return False
    if isinstance(a, np.ndarray): return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(_alike(x, y, depth) for x, y in zip(a, b))
    if isinstance(a, CallbackRegistry): return not (a.callbacks or b.callbacks)
    if isinstance(a, float): return a == b or a != a and b != b
    if hasattr(a, '__func__'): return a.__func__ is b.__func__  # a marker's bound drawing function
    if type(a).__eq__ is not object.__eq__ or not hasattr(a, '__dict__'): return bool(a == b)
    return depth > 0 and vars(a).keys() == vars(b).keys() and all(_alike(v, vars(b)[k], depth - 1) for k, v in vars(a).items())


def _ticked_figure():
    "Linear and log axes (minor ticks by the dozen), their ticks styled: grid, direction, size, colours, pad, rotation."
    fig = Figure(figsize=(6, 3), dpi=60)
    FigureCanvasAgg(fig)
    lin, log = fig.subplots(1, 2)
    lin.plot([-3, 7], [0, 1]); log.loglog([1e-4, 30], [2e-3, 5e2])
    lin.grid(True); log.grid(True, which='both')
    lin.tick_params(direction='in', length=6, colors='tab:red', labelsize=7, pad=6, labelrotation=30)
    log.tick_params(which='minor', width=2, color='0.3')
    return fig


@pytest.mark.parametrize('copies', [True, False])
def test_ticks_made_while_placed_once_are_matplotlibs_ticks(monkeypatch, copies):
    """The ticks an axis makes after its first two while its ticks are placed once are copies of the second (the first
    matplotlib made after the first): the same pixels, each tick the one matplotlib would make, and a copy changed
    changes no other tick."""
    from matplotlib.axis import Axis

    from fastfit.panels import layout
    if not copies: monkeypatch.setattr(layout, '_copyable', lambda tick: False)  # a matplotlib without the names
    made, get_tick, copied, tick_like = [], Axis._get_tick, [], layout._tick_like
    monkeypatch.setattr(Axis, '_get_tick', lambda self, major: made.append(self) or get_tick(self, major))
    monkeypatch.setattr(layout, '_tick_like', lambda tick: copied.append(tick) or tick_like(tick))
    theirs, mine = _ticked_figure(), _ticked_figure()
    theirs.canvas.draw()
    made.clear()
    axes = [x for a in mine.axes for x in a._axis_map.values()]
    with layout.ticks_placed_once(axes): mine.canvas.draw()
    assert all(not {'_update_ticks', 'get_major_ticks', 'get_minor_ticks', '_get_ticklabel_bboxes'} & set(vars(x)) for x in axes)
    assert np.array_equal(np.asarray(theirs.canvas.buffer_rgba()), np.asarray(mine.canvas.buffer_rgba()))
    lists = [ts for x in axes for ts in (x.majorTicks, x.minorTicks) if len(ts) > 1]
    # copies: matplotlib made one new tick a list, the rest are copies; else matplotlib made them all (how many of a
    # list's first ticks it makes elsewhere differs between its versions)
    assert sum(map(len, lists)) > 40 and len(made) == len(lists) if copies else not copied and len(made) > 40
    for x in axes:  # five more of each, as made (not placed yet), against matplotlib's own
        for major, ticks in ((True, x.majorTicks), (False, x.minorTicks)):
            n = len(ticks)
            with layout.ticks_placed_once([x]): new = (x.get_major_ticks if major else x.get_minor_ticks)(n + 5)[n:]
            for t in new:
                own = get_tick(x, major)
                x._copy_tick_props(ticks[0], own)
                assert _alike(own, t), (x, major)
    t = x.minorTicks[-1]
    other = x.minorTicks[-2]
    size, data = other.label1.get_fontsize(), list(other.tick1line.get_xdata())
    t.label1.set_fontsize(size + 3); t.tick1line.set_xdata([123.]); t.gridline.set_marker('o')
    assert other.label1.get_fontsize() == size and list(other.tick1line.get_xdata()) == data
    assert other.gridline.get_marker() != 'o'
    told = []
    for part in (t, t.tick1line, t.label1): part.add_callback(told.append)
    for part in (other, other.tick1line, other.label1): part.set_visible(False)
    assert not told


@pytest.mark.parametrize('name', TICKS_RELY_ON)
def test_every_private_name_tick_copies_rely_on_exists(name):
    "Each is there in matplotlib 3.11; without one, `ticks_placed_once` leaves every tick to matplotlib (tested above)."
    from matplotlib.artist import Artist
    from matplotlib.text import Text
    cls, attr = name.split('.')
    assert attr in vars({'Artist': Artist(), 'Text': Text()}[cls]), f"fastfit/panels/layout.py reads matplotlib's private `{name}`"

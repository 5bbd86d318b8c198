"`Frames`: the figure an animation or export is drawn from, built as matplotlib would lay it out."
import numpy as np
import pytest
from matplotlib.backends.backend_agg import RendererAgg

from fastfit import glyphs
from fastfit.all import lr_sweep, synth_linear
from fastfit.panels.frames import Frames
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

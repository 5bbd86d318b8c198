"""`Frames`: a figure of panels (side by side, or small multiples) and what moves in it, frame by frame."""
from __future__ import annotations

import threading

from fastai.learner import Learner
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..classify import is_classifier
from ..glyphs import GlyphText
from ..records import Records
from ..style import restyle, style_scale
from .base import COLORS, PANELS, Panel, _listify, fitting_panels
from .layout import merge_legend, ticks_placed_once

__all__ = ['Frames']


def _grid_cols(n:int) -> int:
    "Columns for `n` small multiples: at most 3, rows as even as possible (4 -> 2x2)."
    if n <= 3: return n
    rows = -(-n // 3)
    return -(-n // rows)


def _panel_name(name:str, learns:list) -> str:
    "The panel drawn for `name`: a classifier's 'fit' (of two features) is its decision boundary."
    if name == 'fit' and 'boundary' in PANELS and all(is_classifier(lrn) and lrn.dls.n_in == 2 for lrn in learns):
        return 'boundary'
    return name


def _panel_list(panels) -> tuple:
    return (panels,) if isinstance(panels, str) or callable(panels) else tuple(panels)


def panel_makers(panels, learns) -> list:
    "What makes each of `panels` (names from `PANELS`, `Panel` subclasses, callables), checked against `learns` first."
    panels = _panel_list(panels)
    unknown = [p for p in panels if not (callable(p) or isinstance(p, str) and p in PANELS)]
    if unknown or not panels:
        raise ValueError(f"unknown panels {unknown or panels!r}: choose from {tuple(PANELS)} (those that fit "
                         f"{type(learns[0].model).__name__}: {fitting_panels(learns[0])}), or give a Panel subclass")
    make = [PANELS[_panel_name(p, learns)] if isinstance(p, str) else p for p in panels]
    for m in make:  # what a panel needs is checked before any drawing
        m = getattr(m, 'func', m)  # functools.partial(SomePanel, option=...)
        if isinstance(m, type) and issubclass(m, Panel):
            for lrn in learns: m.check(lrn)
    return make


def _moving(panel, artists) -> list:
    "What `panel.setup(ax)` returned, checked to be the artists that move: a clear error for None or anything else."
    ok = isinstance(artists, (list, tuple)) and all(isinstance(a, Artist) for a in artists)
    if not ok:
        got = 'None (no return)' if artists is None else f"{type(artists).__name__} {artists!r}"[:120]
        raise TypeError(f"{type(panel).__name__}.setup(ax) must return the matplotlib artists that move (a list, [] if "
                        f"none does), e.g. `self.line, = ax.plot(...); return [self.line]`; it returned {got}")
    return list(artists)


def panel_cells(panels, n_runs:int=1, split:bool=False) -> int:
    "How many axes `panels` make for `n_runs` runs (one per panel, or one per panel and run when `split`)."
    return len(_panel_list(panels)) * (n_runs if split else 1)


def cell_width(make) -> float:
    "How many standard cells wide the panel `make` draws (its `cell_width()`: the 'step' panel's text needs more)."
    f = getattr(getattr(make, 'func', make), 'cell_width', None)
    return float(f()) if callable(f) else 1.


def panel_widths(panels) -> list:
    "The `cell_width` of each of `panels` (names from `PANELS`, `Panel` subclasses, callables)."
    return [cell_width(PANELS.get(p, p) if isinstance(p, str) else p) for p in _panel_list(panels)]


def figure_size(cells:int, split:bool=False, ncols:int|None=None, widths=None) -> tuple:
    """The (width, height) in inches of a `Frames` figure of `cells` axes; `widths`: each cell's `cell_width` (they
    count in a single row of panels)."""
    nc = ncols or (_grid_cols(cells) if split else cells)
    nr = -(-cells // nc)
    wide = sum(widths) if widths is not None and nr == 1 and len(widths) == cells else cells
    if cells == 1: return (6.4 * wide, 4.8)
    return (4.6 * nc, 3.7 * nr) if split else (5.2 * wide, 4.8 * nr)


def _tight_layout(fig, rect=None) -> None:
    """`fig.tight_layout(rect=rect)`, each axes measured once and each axis' ticks placed once (`ticks_placed_once`):
    with a `rect` matplotlib lays out twice, measuring every axes (its tick labels, titles) again in the second pass,
    though nothing has moved in between (same numbers)."""
    def once(get):
        kept = {}
        def measure(renderer=None, *args, **kw):
            if args or kw != {'for_layout_only': True}: return get(renderer, *args, **kw)  # as tight_layout asks: kept
            if id(renderer) not in kept: kept[id(renderer)] = get(renderer, **kw)
            return kept[id(renderer)]
        return measure
    axs = [a for a in fig.axes if 'get_tightbbox' not in vars(a)]
    for a in axs: a.get_tightbbox = once(a.get_tightbbox)
    try:
        with ticks_placed_once([x for a in fig.axes for x in a._axis_map.values()]): fig.tight_layout(rect=rect)
    finally:
        for a in axs: del a.get_tightbbox


_MATHTEXT = {}  # (thread, output type) -> the MathTextParser every figure's renderer of that thread shares


def _share_mathtext(renderer) -> None:
    """Give `renderer` the mathtext parser of the figures drawn before it in this thread: a parser keeps what it parsed
    (log-scale tick labels such as 10^-2, ~10 ms each) for itself only, and each renderer makes its own. Per thread: a
    parse holds fonts, which matplotlib does not share between threads either."""
    p = getattr(renderer, 'mathtext_parser', None)
    if (kind := getattr(p, '_output_type', None)) is not None:
        if len(_MATHTEXT) > 64: _MATHTEXT.clear()  # threads come and go
        renderer.mathtext_parser = _MATHTEXT.setdefault((threading.get_ident(), kind), p)


class NotebookFigure(Figure):
    "A `Figure` that shows itself as a PNG in a notebook: pyplot's inline backend shows only the figures pyplot made."
    def _repr_png_(self) -> bytes:
        import io
        buf = io.BytesIO()
        self.savefig(buf, format='png')
        return buf.getvalue()


class Frames:
    """A figure of panels (side by side, or a grid of small multiples) and what moves in it: `draw(k)` sets every moving
    artist (`artists`) to frame `k` of `len(frames)`; `fig`, `axs` and `panels` are the figure, its axes and the
    `Panel` drawn on each. Animations and exports are made from it; nothing is re-trained."""
    def __init__(self,
        learn:Learner, # a fitted learner (with history), or any learner for the current state; or a list of learners
        recs:Records, # the states to draw; a list of `Records` (one per learner, all of one length) for several
        panels=('fit',), # names from `PANELS`, `Panel` subclasses, or callables (learn, recs, labels) -> panel
        dpi:int=100, # pixels per inch (640x480 per panel at 100)
        fig=None, ax=None, # draw into an existing figure/axes instead of a new one
        labels=None, # one label per learner (legend entries, one colour each)
        split:bool=False, # one axes per learner and panel (small multiples) instead of every learner on each panel
        titles=None, # one title per axes
        ncols:int|None=None, # columns of the grid of axes (default: all panels in a row; small multiples: at most 3)
        shared=(), # with `split`: the panels (of `panels`) drawn once with every run, after the small multiples
    ):
        learns, recss = _listify(learn), _listify(recs)
        measured = None
        if len(learns) != len(recss): raise ValueError(f"{len(learns)} learners but {len(recss)} Records: give one per learner")
        if len({len(r) for r in recss}) > 1:
            raise ValueError(f"every Records must have as many frames, got {[len(r) for r in recss]}: use Records.aligned")
        labels = list(labels) if labels is not None else [None] * len(learns)
        make = panel_makers(panels, learns)
        together = [m for m, p in zip(make, _panel_list(panels)) if split and p in _panel_list(shared)]
        if split: cells = [(m, [i]) for i in range(len(learns)) for m in make if m not in together]
        else: cells = [(m, list(range(len(learns)))) for m in make]
        cells += [(m, list(range(len(learns)))) for m in together]
        self.recs, self.recss = recss[0], recss
        if ax is not None:
            if len(cells) != 1: raise ValueError(f"ax= draws one panel, but {len(cells)} were asked: pass fig= or neither")
            axs, fig = [ax], ax.figure
        else:
            nc = ncols or (_grid_cols(len(cells)) if split else len(cells))
            nr = -(-len(cells) // nc)
            widths = [cell_width(m) for m, _ in cells]
            size = figure_size(len(cells), split, ncols, widths)
            if fig is None:  # `fr.fig` last in a cell shows the picture
                fig = NotebookFigure(figsize=size, dpi=dpi)
                # Its Agg canvas from the start: the layout below (legends, tight_layout) measures its text with the
                # renderer that draws it (matplotlib keeps text metrics per renderer: the draw finds them measured);
                # a canvas-less figure makes a throwaway renderer, by a printed figure, each time one is asked for.
                _share_mathtext(r := FigureCanvasAgg(fig).get_renderer())
                # measured from the glyph cache (matplotlib's own metrics, kept across figures: GlyphText) while built
                measured = GlyphText(r)
                measured.install()
            else: fig.set_size_inches(size); fig.set_dpi(dpi)
            wide = dict(width_ratios=widths) if nr == 1 and len(widths) == nc and set(widths) != {1.} else None
            grid = fig.subplots(nr, nc, squeeze=False, gridspec_kw=wide).ravel()
            for a in grid[len(cells):]: a.set_visible(False)
            axs = grid[:len(cells)]
        self.fig, self.axs = fig, list(axs)
        # small multiples in one colour are told apart by their titles: their lines keep the panels' own names ('fit')
        named = not split or together
        self.panels = [m([learns[i] for i in idx] if len(idx) > 1 else learns[idx[0]],
                         [recss[i] for i in idx] if len(idx) > 1 else recss[idx[0]],
                         labels=[labels[i] if named or len(idx) > 1 else None for i in idx]) for m, idx in cells]
        if together:  # a run's small multiples take the colour it has in the shared panels
            for p, (_, idx) in zip(self.panels, cells):
                if len(idx) == 1 and hasattr(p, 'colors'): p.colors = [COLORS['runs'][idx[0] % len(COLORS['runs'])]]
        merged = [a_ for a_, (_, idx) in zip(self.axs, cells) if len(idx) == 1] if split and ax is None else []
        for a_ in merged: merge_legend(a_)  # the small multiples' legends become one below the figure (`_one_legend`)
        self.artists = [a for p, a_ in zip(self.panels, self.axs) for a in _moving(p, p.setup(a_))]
        for a_, t in zip(self.axs, titles or []):  # above the panel's own title (what it holds fixed, say), if any
            if t: a_.set_title(t + (f"\n{a_.get_title()}" if a_.get_title() else ''), fontsize=11)
        restyle(self.axs, None) if ax is not None else restyle(fig.axes, fig)  # set_style('classroom'): larger
        bottom = self._one_legend(merged) if merged else 0
        # rect=None where it would be the whole figure: matplotlib measures every axes again for any rect (same result)
        if ax is None: _tight_layout(fig, rect=(0, bottom, 1, 1) if bottom else None)
        if measured is not None: measured.uninstall()

    def _one_legend(self, axs) -> float:
        """The small multiples' legends (one each, saying the same) as one legend below the figure; the share of the
        figure's height it takes."""
        entries = {}
        for a in axs:
            if (kept := getattr(a, '_fastfit_legend_entries', None)) is not None:  # what `place_legend` kept for it
                for h, t in zip(*kept): entries.setdefault(t, h)
            if (leg := a.get_legend()) is None: continue
            for h, t in zip(leg.legend_handles, leg.get_texts()): entries.setdefault(t.get_text(), h)
            leg.remove()
        if not entries: return 0
        fig = self.fig
        leg = fig.legend(list(entries.values()), list(entries), loc='lower center', ncol=min(len(entries), 6), frameon=False,
                         fontsize=9 * style_scale('font'))
        return (leg.get_window_extent(fig._get_renderer()).height + 4) / fig.bbox.height

    def __len__(self): return len(self.recs)

    def draw(self, k:int) -> list:
        "Set every moving artist to frame `k`; return them (a FuncAnimation `func`)."
        for p in self.panels: p.update(k)
        return self.artists

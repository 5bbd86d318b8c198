"""`set_style`: fastfit's pictures sized for a screen ('default') or a projector ('classroom': larger text, thicker lines
and bigger markers), in plots, animations and exports alike. Panels draw at the default sizes; `restyle` scales what
they drew, once per axes, before the first draw (so the renderer's glyph cache, keyed on the font size, never pastes
text of the other style)."""
from __future__ import annotations

from matplotlib.collections import PathCollection
from matplotlib.lines import Line2D

__all__ = ['set_style', 'get_style', 'STYLES']

# How much larger than the default each style draws: text, lines, markers (sizes as lengths; scatter areas squared).
STYLES = {'default': dict(font=1., line=1., marker=1.),
          'classroom': dict(font=1.45, line=1.8, marker=1.5)}
_style = 'default'


def set_style(name:str='default'):
    "Draw every fastfit picture from now on in style `name`: 'default' or 'classroom' (for a projector)."
    global _style
    if not isinstance(name, str) or name not in STYLES:
        raise ValueError(f"unknown style {name!r}: use one of {', '.join(map(repr, STYLES))}, e.g. set_style('classroom')")
    _style = name


def get_style() -> str:
    "The name of the style fastfit's pictures are drawn in."
    return _style


def style_scale(what:str) -> float:
    "How much the current style scales 'font', 'line' or 'marker' sizes."
    return STYLES[_style][what]


def _texts(ax) -> list:
    out = [*ax.texts, ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label,
           ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]
    leg = ax.get_legend()
    if leg is not None: out += [*leg.get_texts(), leg.get_title()]
    return out


def _lines(ax) -> list:
    leg = ax.get_legend()
    return [*ax.lines, *(h for h in (leg.legend_handles if leg is not None else []) if isinstance(h, Line2D))]


def restyle(axes, fig=None):
    "Scale the text, lines and markers of `axes` (and the figure-level text of `fig`) to the current style, once each."
    f, lw, ms = STYLES[_style]['font'], STYLES[_style]['line'], STYLES[_style]['marker']
    if f == lw == ms == 1: return
    texts, lines, colls = [], [], []
    for ax in axes:
        if getattr(ax, '_fastfit_style', None) is not None: continue
        ax._fastfit_style = _style
        texts += _texts(ax)
        lines += _lines(ax)
        colls += ax.collections
        for axis in (ax.xaxis, ax.yaxis):  # a colour bar has its ticks on one axis only
            ticks = axis.get_major_ticks()
            if ticks: axis.set_tick_params(labelsize=ticks[0].label1.get_fontsize() * f,
                                           width=ticks[0].tick1line.get_markeredgewidth() * lw)
        leg = ax.get_legend()
        if leg is not None:
            for h in leg.legend_handles:
                if isinstance(h, PathCollection): colls.append(h)
    if fig is not None and getattr(fig, '_fastfit_style', None) is None:
        fig._fastfit_style = _style
        texts += list(fig.texts) + ([fig._suptitle] if fig._suptitle is not None else [])
    for t in texts:
        if t is None or getattr(t, '_fastfit_styled', False): continue
        t.set_fontsize(t.get_fontsize() * f)
        t._fastfit_styled = True
    for ln in lines:
        ln.set_linewidth(ln.get_linewidth() * lw)
        ln.set_markersize(ln.get_markersize() * ms)
        ln.set_markeredgewidth(ln.get_markeredgewidth() * ms)
    for c in colls:
        if isinstance(c, PathCollection): c.set_sizes(c.get_sizes() * ms ** 2)
        else: c.set_linewidths([w * lw for w in c.get_linewidths()])  # contour lines, line collections

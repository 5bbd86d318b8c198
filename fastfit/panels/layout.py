"""Where things go on a panel so that nothing hides what it explains: a legend placed where no data, line or caption is
drawn in any frame (`place_legend`), a point that may leave the axes marked at their edge with its value (`EdgeMark`),
and axis labels with their notes in one bracket (`label`)."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from matplotlib.cbook import CallbackRegistry
from matplotlib.collections import Collection
from matplotlib.text import Text

from ..style import style_scale

__all__ = ['place_legend', 'EdgeMark', 'label', 'axes_points', 'free_corner', 'merge_legend', 'legend_merged',
           'ticks_placed_once']

_NOTE = dict(boxstyle='round', fc='white', ec='0.7', alpha=.9)


def label(text:str, *notes:str) -> str:
    "An axis label with its notes in one bracket: label('x', 'other features at their mean', '') -> 'x (other features at their mean)'."
    notes = [n for n in notes if n]
    return f"{text} ({'; '.join(notes)})" if notes else text


def _renderer(fig):
    return fig._get_renderer()  # the Agg renderer a draw would use (no drawing happens)


def _to_axes(ax, xy, trans=None) -> np.ndarray:
    "Points (n, 2) in data coordinates of `trans` (default: `ax`'s) as fractions of `ax` (0..1 inside it)."
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(1)]
    if not len(xy): return np.zeros((0, 2))
    with np.errstate(all='ignore'):
        out = (trans or ax.transData).transform(xy)
    out = ax.transAxes.inverted().transform(out[np.isfinite(out).all(1)])
    return out


def _dense(uv:np.ndarray, step:float=.01) -> np.ndarray:
    "A polyline (n, 2) in axes fractions resampled every `step` along its length, so each stretch counts as it is long."
    if len(uv) < 2: return uv
    return _resampled(uv, np.arange(len(uv)) == len(uv) - 1, step)


def _resampled(uv:np.ndarray, last:np.ndarray, step:float=.01) -> np.ndarray:
    """Polylines in axes fractions, one after the other in `uv` (n, 2) (`last`: each one's last point), each resampled
    every `step` along its length: a segment goes from each point but a last one to the next."""
    seg = np.zeros_like(uv)
    seg[~last] = np.diff(uv, axis=0)[~last[:-1]]
    n = np.ones(len(uv), dtype=int)
    n[~last] = np.ceil(np.hypot(*seg[~last].T).clip(max=4) / step).astype(int).clip(1)  # a segment far outside counts little
    i = np.repeat(np.arange(len(uv)), n)
    t = (np.arange(len(i)) - np.repeat(np.cumsum(n) - n, n)) / n[i]  # j / k for j < k on each segment of k points
    return uv[i] + seg[i] * t[:, None]


def _dense_curves(ax, curves) -> np.ndarray:
    """`_dense(_to_axes(ax, c))` of every polyline `c` of `curves` (data coordinates), concatenated: transformed at once
    and resampled in one pass (the units panel avoids 25 frames x 9 curves: ~50 ms one by one). Same numbers: each
    point is transformed, and each segment resampled, by the same operations."""
    cs = [np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in curves]
    if not cs: return np.zeros((0, 2))
    xy, ends = np.concatenate(cs), np.cumsum([len(c) for c in cs])
    ok = np.isfinite(xy).all(1)
    with np.errstate(all='ignore'): out = ax.transData.transform(xy[ok])
    fine = np.isfinite(out).all(1)
    uv = ax.transAxes.inverted().transform(out[fine])
    kept = np.flatnonzero(ok)[fine]  # each point of `uv`: its index in `xy`
    if not len(uv): return uv
    curve = np.searchsorted(ends, kept, 'right')  # a curve's last kept point ends it
    return _resampled(uv, np.r_[curve[1:] != curve[:-1], True])


def axes_points(ax, lines=(), points=(), curves=()) -> np.ndarray:
    """Everything drawn on `ax` a legend must not cover, as points in axes fractions: `lines` (Line2D, each resampled
    along its length), `points` (n, 2) in data coordinates (scatter, markers), `curves` ((n, 2) polylines in data
    coordinates, e.g. the fitted line of every frame)."""
    out = [np.zeros((0, 2))]
    for ln in lines:
        xy = np.column_stack([np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)])
        uv = _to_axes(ln.axes, xy)
        out.append(_dense(uv) if ln.get_linestyle() not in ('None', '', ' ') else uv)
    for p in points: out.append(_to_axes(ax, p))
    out.append(_dense_curves(ax, curves))
    return np.concatenate(out)


def _drawn(ax) -> np.ndarray:
    "What `ax` holds now (its lines, resampled, and its scatter points), in axes fractions."
    lines = [ln for ln in ax.lines if ln.get_visible()]
    pts = [c.get_offsets() for c in ax.collections if isinstance(c, Collection) and c.get_visible()
           and len(c.get_offsets()) and c.get_offset_transform() == ax.transData]
    return axes_points(ax, lines, pts)


def merge_legend(ax) -> None:
    "Say that `ax`'s legend will be merged into one for the figure (small multiples' legends say the same): not placed."
    ax._fastfit_merged_legend = True


def legend_merged(ax) -> bool:
    "Whether `ax`'s legend is merged into the figure's (`merge_legend`): `place_legend` keeps its entries for it."
    return getattr(ax, '_fastfit_merged_legend', False)


_TICK_PARTS = ('tick1line', 'tick2line', 'gridline', 'label1', 'label2')
# matplotlib's private names `_tick_like` relies on (tests/test_frames.py checks them); without one, matplotlib makes
# every tick
TICKS_RELY_ON = ['Artist._callbacks', 'Text._fontproperties']


def _artist_like(a):
    """A new artist in the state of artist `a`: its attributes shared, but for its own callbacks, sticky edges (lists)
    and, for a text, font (`set_fontsize` changes it in place)."""
    new = object.__new__(type(a))
    new.__dict__.update(vars(a))
    new._callbacks = CallbackRegistry(signals=['pchanged'])
    if (edges := vars(a).get('_sticky_edges')) is not None: new._sticky_edges = type(edges)([*edges.x], [*edges.y])
    if isinstance(a, Text): new._fontproperties = a._fontproperties.copy()
    return new


def _copyable(tick) -> bool:
    "Whether `tick` and its parts have the private attributes `_artist_like` replaces (`TICKS_RELY_ON`)."
    parts = [tick] + [getattr(tick, n, None) for n in _TICK_PARTS]
    return all(isinstance(getattr(a, '__dict__', {}).get('_callbacks'), CallbackRegistry) for a in parts) and \
        all('_fontproperties' in vars(a) for a in parts if isinstance(a, Text))


def _tick_like(tick):
    """A tick equal to `tick`, which matplotlib has just made (`_get_tick`, then the first tick's properties copied to
    it): made by copying, ~10 us, not ~250 us (five artists set up from rcParams, their properties then overwritten with
    the first tick's, a deep copy of each marker). What the two share, matplotlib replaces whole and never changes in
    place (marker styles, data lists, arrays and paths: `set_xdata`, `recache`)."""
    new = _artist_like(tick)
    for name in _TICK_PARTS: setattr(new, name, _artist_like(getattr(tick, name)))
    return new


def _more_ticks(axis, get, major:bool):
    """`axis.get_major_ticks` (`get`; `major` False: `get_minor_ticks`), with the ticks it makes after the first
    copies of that one (`_tick_like`) made before it moves."""
    def ticks(numticks=None):
        have = axis.majorTicks if major else axis.minorTicks
        if numticks is None or len(have) >= numticks: return get(numticks)
        first = len(have)
        get(first + 1)  # matplotlib's own new tick
        have = axis.majorTicks if major else axis.minorTicks
        if len(have) > first and _copyable(have[first]):  # (an axis class of its own may make no tick here)
            while len(have) < numticks: have.append(_tick_like(have[first]))
        return get(numticks)
    return ticks


@contextmanager
def ticks_placed_once(axes):
    """Meanwhile each of `axes` (matplotlib `Axis` objects) places its ticks (locator, formatter, every tick moved) when
    first asked only, and gives the same ticks after: measuring or drawing an axis places them up to five times (for its
    tick labels, its label, its spines), the same each time while nothing moves. Use it where nothing moves. The ticks
    it makes more of are copies (`_more_ticks`): a log axis' minor ticks are dozens. Their labels are measured once too
    (for the axis, then again for its label's place beside them)."""
    def once(update):
        kept = []
        def ticks():
            if not kept: kept.append(update())
            return list(kept[0])
        return ticks
    def measured_once(measure):
        kept = {}
        def boxes(ticks, renderer=None):
            key = (*map(id, ticks), id(renderer))
            if key not in kept: kept[key] = (ticks, measure(ticks, renderer))  # the ticks kept: their ids stay theirs
            return tuple(list(b) for b in kept[key][1])
        return boxes
    axes = [x for x in axes if '_update_ticks' not in vars(x)]
    for x in axes:
        x._update_ticks = once(x._update_ticks)
        x.get_major_ticks, x.get_minor_ticks = _more_ticks(x, x.get_major_ticks, True), _more_ticks(x, x.get_minor_ticks, False)
        if hasattr(x, '_get_ticklabel_bboxes'): x._get_ticklabel_bboxes = measured_once(x._get_ticklabel_bboxes)
    try: yield
    finally:
        for x in axes:
            for n in ('_update_ticks', 'get_major_ticks', 'get_minor_ticks', '_get_ticklabel_bboxes'): vars(x).pop(n, None)


_SPOTS = ('upper right', 'upper left', 'lower right', 'lower left', 'center right', 'center left', 'upper center',
          'lower center')


def place_legend(ax, handles=None, labels=None, avoid=None, texts=(), spots=_SPOTS, most:int=0, outside:str='below',
                 **kw):
    """The legend of `ax` where it covers the fewest of the `avoid` points (axes fractions, see `axes_points`; default:
    what the axes holds now) and no text of `texts` (a caption box, in every frame): the first of `spots` that covers
    the fewest, if at most `most` (a line counts a point every 1% of the axes it crosses) or `outside` is None; else
    below the axes (`outside='below'`) or to their right ('right'). The legend's text is sized for the current style."""
    fs = kw.pop('fontsize', 9) * style_scale('font')
    if handles is None: handles, labels = ax.get_legend_handles_labels()
    if not handles: return None
    if legend_merged(ax):  # its entries go to the figure's legend (`Frames`): kept for it, no legend built or placed
        ax._fastfit_legend_entries = (list(handles), list(labels))
        return None
    uv = _drawn(ax) if avoid is None else np.asarray(avoid).reshape(-1, 2)
    r = _renderer(ax.figure)
    boxes = [t.get_window_extent(r).transformed(ax.transAxes.inverted()) for t in texts if t.get_text()]  # shown in some frame
    best, leg, size = None, None, None
    for spot in spots:  # one legend moved from spot to spot (building one costs ~10x moving it: handles are copied)
        if leg is None: leg = ax.legend(handles, labels, loc=spot, fontsize=fs, **kw)
        else: leg.set_loc(spot)
        # `leg.get_window_extent(r)`, its box laid out once: it is as big at every spot (its entries are laid out anew
        # each time they are measured, ~1 ms)
        box = leg._legend_box
        if size is None: size = box.get_bbox(r)
        bb = size.translated(*box.get_offset(size, r)).transformed(ax.transAxes.inverted())
        if any(bb.overlaps(b) for b in boxes): continue
        x0, y0, x1, y1 = bb.x0 - .01, bb.y0 - .01, bb.x1 + .01, bb.y1 + .01
        n = int(((uv[:, 0] > x0) & (uv[:, 0] < x1) & (uv[:, 1] > y0) & (uv[:, 1] < y1)).sum())
        if best is None or n < best[0]: best = (n, spot)
        if n == 0: break
    if best is not None and (best[0] <= most or outside is None): leg.set_loc(best[1])
    elif outside == 'right':
        leg = ax.legend(handles, labels, loc='upper left', bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=fs,
                        **{k: v for k, v in kw.items() if k != 'ncol'})
    else:
        # clear of the tick labels and the x label below the axes: they and the pad grow with the style's font alike
        leg = ax.legend(handles, labels, loc='upper center', bbox_to_anchor=(.5, 0), borderaxespad=3.8, fontsize=fs,
                        frameon=False, **{'ncol': 3, **{k: v for k, v in kw.items() if k != 'framealpha'}})
    for t in leg.get_texts() + [leg.get_title()]: t._fastfit_styled = True
    return leg


def free_corner(ax, avoid, size=(.45, .2)) -> dict:
    """Where a caption of about `size` (axes fractions) covers the fewest of the `avoid` points (axes fractions): the
    keyword arguments of `ax.text` for the upper-left, upper-right, lower-left or lower-right corner."""
    uv, (w, h) = np.asarray(avoid).reshape(-1, 2), size
    best = None
    for x, y, ha, va in ((.02, .97, 'left', 'top'), (.98, .97, 'right', 'top'), (.02, .03, 'left', 'bottom'),
                         (.98, .03, 'right', 'bottom')):
        x0, y0 = (x if ha == 'left' else x - w), (y - h if va == 'top' else y)
        n = int(((uv[:, 0] > x0) & (uv[:, 0] < x0 + w) & (uv[:, 1] > y0) & (uv[:, 1] < y0 + h)).sum())
        if best is None or n < best[0]: best = (n, dict(x=x, y=y, ha=ha, va=va))
    return best[1]


class EdgeMark:
    """A point that may leave the axes (a diverging run's current state, a far-away truth): drawn where it is while
    inside, else at the edge it left by, as a triangle pointing the way it went, with its value written beside it."""
    def __init__(self, ax, color, marker:str='o', ms:float=9, fmt=None, zorder:float=8,
                 aim:bool=True, # at the edge where the line from the axes' centre to the point leaves them; else the nearest
                 row:int=0, # its text this many lines further in from the edge (marks that leave by the same side)
                 **kw):
        self.ax, self.marker, self.fmt, self.aim = ax, marker, fmt or (lambda x, y: f"({x:.3g}, {y:.3g})"), aim
        self.row = row
        self.point = ax.plot([], [], marker, ms=ms, c=color, zorder=zorder, clip_on=False, **kw)[0]
        self.text = ax.text(0, 0, '', transform=ax.transAxes, color=color, fontsize=9, zorder=zorder + .1, visible=False,
                            bbox=_NOTE)
        for a in self.artists: a.set_in_layout(False)  # wherever it goes, it never shrinks the axes (tight_layout)

    @property
    def artists(self) -> list: return [self.point, self.text]

    def set(self, x, y, what:str|None=None):
        "Put the mark at data point (x, y); outside the axes, at their edge with `what` (default: its coordinates)."
        ax = self.ax
        if not (np.isfinite(x) and np.isfinite(y)):
            self.point.set_data([], []); self.text.set_visible(False); return
        with np.errstate(all='ignore'):
            u, v = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))
        if not (np.isfinite(u) and np.isfinite(v)):
            self.point.set_data([], []); self.text.set_visible(False); return
        if 0 <= u <= 1 and 0 <= v <= 1:
            self.point.set_data([x], [y]); self._set_marker(self.marker); self.text.set_visible(False)
            return
        if self.aim:  # where the way from the centre to the point crosses the edge
            t = .5 / max(abs(u - .5), abs(v - .5))
            cu, cv = .5 + t * (u - .5), .5 + t * (v - .5)
        else: cu, cv = min(max(u, 0.), 1.), min(max(v, 0.), 1.)
        # the way it went: the side it is furthest past
        past = {'>': u - 1, '<': -u, '^': v - 1, 'v': -v}
        way = max(past, key=past.get)
        self._set_marker(way)
        self.point.set_data(*ax.transData.inverted().transform(ax.transAxes.transform((cu, cv)))[:, None])
        ha = {'>': 'right', '<': 'left'}.get(way, 'left' if cu < .3 else 'right' if cu > .7 else 'center')
        va = {'^': 'top', 'v': 'bottom'}.get(way, 'bottom' if cv < .3 else 'top' if cv > .7 else 'center')
        tu = {'>': .96, '<': .04}.get(way, min(max(cu, .03), .97))
        tv = {'^': .95, 'v': .05}.get(way, min(max(cv, .05), .95))
        what = what if what is not None else self.fmt(x, y)
        if self.row:  # each row a note further in (in points: layout changes keep it)
            from matplotlib.transforms import offset_copy
            dy = self.row * (1.2 * (what.count('\n') + 1) + 1) * self.text.get_fontsize() * (-1 if tv > .5 else 1)
            self.text.set_transform(offset_copy(ax.transAxes, ax.figure, y=dy, units='points'))
        self.text.set_position((tu, tv)); self.text.set_ha(ha); self.text.set_va(va)
        self.text.set_text(what)
        self.text.set_visible(True)

    def _set_marker(self, marker:str):
        # the same marker made anew draws the same pixels, but is a new object to the line painter (`lines.LinePainter`)
        if self.point.get_marker() != marker: self.point.set_marker(marker)

"The line painter replays matplotlib's own Agg calls for moving lines and scatters: their `draw`'s pixels, on every kind."
import matplotlib

matplotlib.use('Agg')
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.path import Path  # noqa: E402

from fastfit import lines  # noqa: E402
from fastfit.render import Renderer  # noqa: E402

MPL = tuple(int(v) for v in matplotlib.__version__.split('.')[:2])  # (3, 11)


class _LineFrames:
    """Moving lines of the kinds the panels draw (a fitted curve, a growing trail with alpha, dashed and dotted lines,
    marks with edges, a mark outside the axes, data given as lists, a line with marks on log axes, its values not all
    positive; scatters of one colour and of several, a dashed line collection) and of kinds left to matplotlib (steps,
    mark-every, gap colours, over 1,000 points, colours from a colormap), their data and some properties changing from
    frame to frame."""
    def __init__(self, frames=12):
        self.fig = Figure(figsize=(5, 3), dpi=90)
        ax, lg = self.fig.subplots(1, 2, gridspec_kw=dict(wspace=.6))  # a mark outside one is not under the other's labels
        ax.set_xlim(-1, 1); ax.set_ylim(-1.5, 1.5)
        lg.set_yscale('log'); lg.set_xlim(0, 1); lg.set_ylim(1e-3, 10)
        self.x = np.linspace(-1, 1, 200)
        t = np.linspace(0, 1, 60)
        self.trail = np.c_[np.cos(5 * t) * t, np.sin(5 * t) * t]
        self.fit = ax.plot(self.x, 0 * self.x, lw=2.5, zorder=4)[0]
        self.path = ax.plot([], [], '-', c='C1', lw=2, alpha=.95, zorder=5)[0]
        self.dash = ax.plot([], [], '--', c='k', lw=1.2)[0]
        self.dots = ax.plot([0, 1], [0, 0], ':', c='C2', transform=ax.transAxes)[0]
        self.mark = ax.plot([], [], 'o', ms=9, c='C3', mec='black', mew=.6, zorder=8, clip_on=False)[0]
        self.edge = ax.plot([], [], 's', ms=7, c='C4', zorder=8, clip_on=False)[0]
        self.line_marks = ax.plot([], [], '^-', ms=5, c='C5')[0]
        self.log = lg.plot([], [], 'o-', c='C0')[0]
        self.steps = lg.plot([], [], drawstyle='steps-post', c='C1')[0]
        self.every = lg.plot([], [], 's-', markevery=3, c='C2')[0]
        self.gap = lg.plot([], [], '--', gapcolor='C3', c='C4')[0]
        self.many = lg.plot([], [], c='C5', lw=.5)[0]
        self.scatter = ax.scatter([], [], s=30, c='C6', marker='s', edgecolors='black', linewidths=.4, zorder=4)
        self.log_scatter = lg.scatter([.5], [1.], s=50, c='C7', marker='v', zorder=4)
        self.colours = ax.scatter([0, .1, .2], [0, 0, 0], c=['C0', 'C1', 'C2'])  # several colours: a path collection
        self.mapped = ax.scatter([0, .1, .2], [.3, .3, .3], c=[0, 1, 2])  # colours from a colormap: matplotlib's
        self.border = ax.add_collection(LineCollection([], colors='C8', linewidths=2.5, linestyles='--', zorder=5))
        self.gapped = ax.add_collection(LineCollection([], colors='C9', linestyles='--', gapcolor='C1'))  # matplotlib's
        self.artists = [self.fit, self.path, self.dash, self.dots, self.mark, self.edge, self.line_marks, self.log,
                        self.steps, self.every, self.gap, self.many, self.scatter, self.log_scatter, self.colours,
                        self.mapped, self.border, self.gapped]
        self.n = frames

    def __len__(self): return self.n

    def draw(self, k):
        j = 5 * k + 1
        self.fit.set_ydata(np.sin(3 * self.x + k / 3) * (1 - k / self.n))
        self.fit.set_color('C0' if k < self.n // 2 else (.2, .5, .1))  # a new state: recorded again
        self.path.set_data(self.trail[:j, 0], self.trail[:j, 1])
        self.dash.set_data(self.trail[:j:3, 1], self.trail[:j:3, 0])
        self.dots.set_ydata([k / self.n, 1 - k / self.n])
        self.dots.set_visible(k % 4 != 3)
        self.mark.set_data([float(self.trail[j - 1, 0])], [float(self.trail[j - 1, 1])])
        self.edge.set_data([1.], [1.5 * k / self.n])  # on the axes' edge: painted outside them
        self.edge.set_marker('s' if k % 3 else '>')
        self.mark.set_markersize(9 + k % 2)  # the same marker, a new size
        self.line_marks.set_data(np.arange(k % 5) / 5 - .9, np.full(k % 5, -1.2) + k / 50)  # none in some frames
        u = np.linspace(0, 1, 8 + k)
        for line, p in ((self.log, 1), (self.steps, 2), (self.every, 3), (self.gap, 4)):
            line.set_data(u, (u + .05) ** p * (1 + k / 5))
        self.log.set_ydata((u - .1) * (1 + k / 5))  # log 0 and of negative values clipped
        self.scatter.set_offsets(self.trail[:j:4] * [1, -1])  # none in the first frame
        self.scatter.set_sizes([30 if k < self.n // 2 else 45])
        self.log_scatter.set_offsets(np.c_[u[::2], (u[::2] - .2) * (k + 1)])  # log of values <= 0 clipped
        self.colours.set_offsets(np.c_[np.r_[0, .1, .2] + k / 50, np.full(3, -.5)])
        self.mapped.set_offsets(np.c_[np.r_[0, .1, .2] - k / 50, np.full(3, .3)])
        segs = [self.trail[i:j:5] * [-1, 1] for i in range(0, j, 20)]  # none at first, then one, two, three borders
        self.border.set_segments([q for q in segs if len(q) > 1])
        self.gapped.set_segments([self.trail[:j + 10:5] * [1, -1]])  # (matplotlib 3.11 fails on no segments with a gap colour)
        w = np.linspace(0, 1, 1500)
        self.many.set_data(w, 1e-2 + w * (k + 1) / 3)
        return self.artists


def test_moving_lines_have_matplotlibs_pixels():
    "Every frame, blitted with lines replayed where they may be, is matplotlib's full draw of it."
    fr = _LineFrames()
    with Renderer(fr) as r:
        blitted = [r.frame(k).copy() for k in list(range(len(fr))) + [3, 0]]
        assert r.lines.replayed > 4 * len(fr)
        left = {id(a) for a in (fr.steps, fr.every, fr.gap, fr.many, fr.mapped, fr.gapped)}  # matplotlib's: none recorded
        assert all(v[3] is None for k, v in r.lines.kept.items() if k in left)
        # replayed: every kind this matplotlib has the names for (before 3.11 collections are matplotlib's: see below)
        kinds = [a for a in (fr.log, fr.scatter, fr.log_scatter, fr.colours, fr.border) if type(a) in lines._KINDS]
        assert fr.log in kinds and all(r.lines.kept[id(a)][3] is not None for a in kinds)
    for i, k in enumerate(list(range(len(fr))) + [3, 0]):
        fr.draw(k)
        fr.fig.canvas.draw()
        assert np.array_equal(blitted[i], np.asarray(fr.fig.canvas.buffer_rgba())), k


def test_replayed_lines_leave_the_frames_and_areas_of_matplotlibs_draw(monkeypatch):
    "The frames and the areas they report are the ones the renderer makes when `Line2D.draw` draws every line."
    fr = _LineFrames()
    with Renderer(fr) as r:
        painted = [(r.frame(k).copy(), r.area) for k in range(len(fr))]
    monkeypatch.setattr(lines.LinePainter, 'draw', lambda self, line, renderer, affines: line.draw(renderer))
    with Renderer(fr) as r:
        for k, (f, area) in enumerate(painted):
            assert np.array_equal(f, r.frame(k)) and area == r.area, k


def test_recache_leaves_the_state_matplotlibs_recache_leaves():
    "Data as arrays of floats or ints, or as lists of numbers, give the arrays and path `Line2D.recache` makes."
    for x, y in ((np.linspace(0, 1, 5), np.arange(5)), ([1.5], [np.float64(2)]), ((1, 2), [3., 4.])):
        mine, theirs = Line2D(x, y), Line2D(x, y)
        assert lines._recache(mine)
        theirs.recache()
        assert not (mine._invalidx or mine._invalidy or mine._subslice)
        assert np.array_equal(mine._xy, theirs._xy) and mine._xy.dtype == theirs._xy.dtype
        assert np.array_equal(mine._x, theirs._x) and np.array_equal(mine._y, theirs._y)
        assert np.shares_memory(mine._x, mine._xy)
        for a in ('should_simplify', 'simplify_threshold', 'codes', '_interpolation_steps'):
            assert getattr(mine._path, a) == getattr(theirs._path, a), a


@pytest.mark.parametrize('x, y', [(np.ma.masked_array([1., 2.], [0, 1]), [1., 2.]), (np.array([True, False]), [1., 2.]),
                                  (['a', 'b'], [1., 2.]), ([1.], [1., 2.]), (np.zeros((2, 1)), [1., 2.]),
                                  (np.arange(1001.), np.arange(1001.))])
def test_data_needing_units_masks_broadcasting_or_subslicing_is_left_to_matplotlib(x, y):
    assert not lines._recache(Line2D(x, y))


@pytest.mark.parametrize('name', lines.RELIES_ON)
def test_every_private_name_the_line_painter_relies_on_exists(name):
    """Each is there in matplotlib 3.11 (the version constraints.txt tests). A matplotlib lacking one (3.9 and 3.10: a
    collection's hatch colours came in 3.11) draws the artists needing it itself: they are not in `lines._KINDS`."""
    cls, attr = name.split('.')
    obj = {'Line2D': Line2D([0.], [0.]), 'PathCollection': PathCollection([]), 'LineCollection': LineCollection([]),
           'Path': Path(np.zeros((1, 2)))}[cls]
    if not hasattr(obj, attr):
        assert not set(lines._KINDS) & ({type(obj)} if cls != 'Path' else {Line2D, PathCollection, LineCollection})
        assert MPL < (3, 11), \
            f"fastfit/lines.py reads matplotlib's private `{name}`, gone in matplotlib {matplotlib.__version__}"
    elif MPL >= (3, 11):
        assert set(lines._KINDS) == {Line2D, PathCollection, LineCollection}

"""Moving lines and scatters at blit speed: the calls their `draw` makes to Agg, made again with new data, pixel for pixel.

A moving line (a fitted curve, a loss curve growing, a path and the mark at its end) changes its data alone from one
frame to the next, yet `Line2D.draw` redoes everything: `recache` (unit checks, broadcasting, stacking, a new `Path`),
a `TransformedPath` and a frozen copy of the composed affine, a graphics context set up from a dozen properties, the
marker's colours, snapping and scaled transform. In the 3-run export that Python cost ~35 us a line around ~25 us of
Agg, 15 lines a frame. Here a line's first draw in a given state (`_STATE`: everything `draw` reads but the data and
the transform's matrix) is matplotlib's own, through a renderer that records the Agg calls it makes (graphics
contexts, marker path and transform, face colour); later draws in that state make the same calls with the new data's
path and the frame's affine, the only arguments data change. `recache` is done as matplotlib does it where the data
are plain numbers (`_recache`). Only lines that `draw` hands to Agg as they are take this path: `Line2D` itself, the
default draw style, no path effects, sketch, gap colour, mark-every, rasterizing or filter, under
1,000 points (no subslicing), and a recording whose paths and affine are the line's; anything else matplotlib draws.
A scatter (`PathCollection`: the sweep's runs, four a frame) moves its offsets alone, a `LineCollection` (a decision
boundary) its paths: they are replayed likewise, their `draw_markers` or `draw_path_collection` call given the new
offsets and paths through their transforms as `Collection._prepare_points` makes them.
"""
from __future__ import annotations

from operator import attrgetter

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.lines import Line2D
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

__all__ = ['LinePainter', 'affine_of']

# What `Line2D.draw` (matplotlib 3.11) reads besides the data and its transform's matrix; a recording is replayed
# while all of these are the same objects or equal.
_STATE_NAMES = ('_transform', '_linestyle', '_linewidth', '_dash_pattern', '_dashcapstyle', '_dashjoinstyle',
                '_solidcapstyle', '_solidjoinstyle', '_antialiased', '_snap', '_color', '_alpha', '_url', '_gid',
                '_clipon', 'clipbox', '_clippath', '_marker', '_markersize', '_markeredgewidth', '_markeredgecolor',
                '_markerfacecolor', '_markerfacecoloralt', '_sketch', '_path_effects', '_gapcolor', '_drawstyle',
                '_markevery', '_rasterized', '_agg_filter')
_STATE = attrgetter(*_STATE_NAMES)
# What `Collection.draw` reads besides its paths, its offsets and their transforms' matrices (a scatter's markers are
# also scaled by its sizes at the figure's dpi)
_COLLECTION_NAMES = ('_transform', '_offset_transform', '_facecolors', '_edgecolors', '_linewidths', '_linestyles',
                     '_antialiaseds', '_urls', '_hatch', '_hatchcolors', '_hatch_linewidth', '_joinstyle', '_capstyle',
                     '_snap', '_clipon', 'clipbox', '_clippath', '_sketch', '_path_effects', '_gapcolor', '_rasterized',
                     '_agg_filter', '_A', '_gid')
_COLLECTION = attrgetter(*_COLLECTION_NAMES)
_SCATTER = attrgetter('_paths', '_sizes', *_COLLECTION_NAMES)
_DATA_NAMES = ('_xorig', '_yorig', '_x', '_y', '_xy', '_path', '_invalidx', '_invalidy', '_subslice', '_transformed_path',
               '_subslice_optim_min_size', '_visible')
# matplotlib's private names this module relies on, by the class that has them (tests/test_lines.py fails when one is
# gone); with a matplotlib that lacks one, the artists that need it are matplotlib's own draw (`_KINDS`)
_PATH_NAMES = ('_interpolation_steps', '_fast_from_codes_and_verts')
_NEEDS = {Line2D: _STATE_NAMES + _DATA_NAMES, PathCollection: ('_paths', '_sizes', *_COLLECTION_NAMES),
          LineCollection: _COLLECTION_NAMES}
RELIES_ON = [f'{cls.__name__}.{n}' for cls, names in _NEEDS.items() for n in names] + [f'Path.{n}' for n in _PATH_NAMES]
_NUMBERS = (float, int, np.float64, np.float32, np.int64, np.int32)


def affine_of(tr, affines:dict):
    "The affine part of transform `tr` if `tr` is affine, else None; kept in `affines` (a frame's, by id) while they stay."
    return _affine_part(tr, affines)[1]


def _affine_part(tr, affines:dict) -> tuple:
    "(`tr`, its affine part if it is affine else None, its affine part): kept in `affines` (see `affine_of`)."
    if (got := affines.get(id(tr))) is None:
        part = tr.get_affine()
        got = affines[id(tr)] = (tr, part if tr.is_affine else None, part)
    return got


def _floats(a):
    """`a` as `recache` makes it where it needs no units, mask or broadcasting: a 1-d array of numbers as floats; else
    None. (matplotlib takes an array or list as numbers when its first element is one, then as `np.asanyarray(a, float)`.)"""
    if type(a) is np.ndarray:
        return np.asarray(a, float) if a.ndim == 1 and len(a) and a.dtype.kind in 'fiu' else None
    if type(a) in (list, tuple) and a and type(a[0]) in _NUMBERS:
        a = np.asarray(a, float)
        return a if a.ndim == 1 else None
    return None


def _recache(line) -> bool:
    """Do what `line.recache()` does, where its data are plain numbers of one length and a draw would not subslice them
    (the state it leaves is the same: `_xy`, views `_x` and `_y`, a new `_path`); whether the line's data are now ready
    to draw as they are."""
    if line._invalidx or line._invalidy:
        x = _floats(line._xorig) if line._invalidx else line._x
        y = _floats(line._yorig) if line._invalidy else line._y
        if x is None or y is None or len(x) != len(y) or len(x) > line._subslice_optim_min_size \
                or line._drawstyle != 'default' or (line._path is not None and line._path._interpolation_steps != 1):
            return False
        xy = np.empty((len(x), 2))
        xy[:, 0], xy[:, 1] = x, y
        line._xy, line._x, line._y = xy, xy[:, 0], xy[:, 1]
        line._subslice = False
        line._path = Path(xy)
        line._transformed_path = None
        line._invalidx = line._invalidy = False
    return not line._subslice


class _Recorder:
    """A renderer passing every call on to `renderer`, recording the drawing calls (graphics context and all) made to it;
    `other`: whether a drawing call it does not record was made."""
    def __init__(self, renderer):
        self.renderer, self.calls, self.other = renderer, [], False

    def __getattr__(self, name):
        if name.startswith('draw_') and name not in _SLOTS: self.other = True
        got = getattr(self.renderer, name)
        if name not in _SLOTS: return got
        def record(*args, **kwargs):
            out = got(*args, **kwargs)
            self.calls.append((name, args, kwargs))  # once made (matplotlib tries some calls with newer arguments first)
            return out
        return record


# Which arguments of each recorded call data change, by position: what they are (the keys of `_line`'s and
# `_collection`'s data), and how a recorded one is checked to be the artist's own
_SLOTS = {'draw_path': ((1, 'path'), (2, 'm')), 'draw_markers': ((3, 'points'), (4, 'mo')),
          'draw_path_collection': ((1, 'm'), (2, 'paths'), (4, 'offsets'), (5, 'mo'))}


def _same_path(p, q) -> bool:
    return p is q or (p.codes is None and q.codes is None or np.array_equal(p.codes, q.codes)) \
        and np.array_equal(p.vertices, q.vertices, equal_nan=True)


def _same(key, got, mine) -> bool:
    if key in ('path', 'points'): return _same_path(got, mine)
    if key == 'paths': return len(got) == len(mine) and all(map(_same_path, got, mine))
    return np.array_equal(np.asarray(got), mine, equal_nan=True)


def _replayable(calls, data) -> list | None:
    """The recorded calls, each with the positions of its arguments that new data fill, if every one of those drew the
    artist's data (`data`, as `_line` or `_collection` make it); else None."""
    out = []
    for name, args, kwargs in calls:
        slots = []
        for i, key in _SLOTS[name]:
            if key == 'paths' and not len(args[i]) and len(data[key]): continue  # `Collection.draw` first tries the
            # renderer's arguments with no paths (nothing to draw), always: kept as it was
            if not _same(key, args[i], data[key]): return None
            slots.append((i, key))
        out.append((name, args, kwargs, slots))
    return out


def _line(line, affines) -> tuple | None:
    """(data, number of points, state) of a line to replay, None for one matplotlib draws; data: its path through the
    non-affine part of its transform for its line, its points through it for its markers (what `TransformedPath` gives
    `draw`), and the affine part's matrix for both."""
    if not _recache(line): return None
    tr = line.get_transform()
    _, affine, part = _affine_part(tr, affines)
    if affine is not None: path = points = line._path
    else:
        path = tr.transform_path_non_affine(line._path)
        points = Path._fast_from_codes_and_verts(tr.transform_non_affine(line._path.vertices), None, line._path)
    m = part.get_matrix()
    return dict(path=path, points=points, m=m, mo=m), len(line._xy), _STATE(line)


def _line_replays(line, calls) -> bool:
    return line._drawstyle == 'default' and not (line._path_effects or line._sketch or line._gapcolor is not None
                                                 or line._markevery is not None or line._rasterized or line._agg_filter)


def _collection(c, affines) -> tuple | None:
    """(data, number of offsets (0 without paths), state) of a scatter or line collection to replay; data, as
    `_prepare_points` makes them: its paths and offsets through the non-affine parts of their transforms, and the affine
    parts' matrices."""
    if c.have_units(): return None
    tr, otr = c.get_transform(), c.get_offset_transform()
    paths, offsets = c.get_paths(), c.get_offsets()
    _, affine, part = _affine_part(tr, affines)
    if affine is None: paths = [tr.transform_path_non_affine(p) for p in paths]
    _, affine, opart = _affine_part(otr, affines)
    if affine is None: offsets = otr.transform_non_affine(offsets)
    if isinstance(offsets, np.ma.MaskedArray): offsets = offsets.filled(np.nan)
    state = (c.figure.dpi, *_SCATTER(c)) if type(c) is PathCollection else _COLLECTION(c)
    data = dict(paths=paths, offsets=offsets, points=Path(offsets), m=part.get_matrix(), mo=opart.get_matrix())
    return data, len(offsets) if len(paths) else 0, state


def _collection_replays(c, calls) -> bool:
    # a single marker's transform is recorded whole: the collection's own transform (a scatter's: none) must not move it
    return c._A is None and c._hatch is None and not (c._path_effects or c._sketch or c._gapcolor is not None
                                                      or c._rasterized or c._agg_filter) \
        and (type(c.get_transform()) is IdentityTransform or all(name != 'draw_markers' for name, _, _ in calls))


def _has_names(cls) -> bool:
    probe = cls([0.], [0.]) if cls is Line2D else cls([])
    return all(hasattr(probe, n) for n in _NEEDS[cls]) and all(hasattr(Path(np.zeros((1, 2))), n) for n in _PATH_NAMES)


# the artists replayed, by type (exactly: a subclass may draw otherwise), each as (its data, whether a recording replays)
_KINDS = {cls: kind for cls, kind in ((Line2D, (_line, _line_replays)), (PathCollection, (_collection, _collection_replays)),
                                      (LineCollection, (_collection, _collection_replays))) if _has_names(cls)}


class LinePainter:
    """Draws moving `Line2D`s, scatters and line collections as their `draw` does, replaying its Agg calls with new data
    while nothing else changed."""
    def __init__(self):
        self.kept = {}  # id(artist) -> (artist, renderer, state, recorded calls, or None where matplotlib draws it)
        self.replayed = 0  # draws made by replaying (tests see the fast path is taken)

    def draw(self, a, renderer, affines:dict):
        "Draw `a` on `renderer` (a canvas's `RendererAgg`); `affines`: the frame's, as `affine_of` keeps them."
        if not a.get_visible(): return
        kind = _KINDS.get(type(a))
        if kind is None or type(renderer) is not RendererAgg or (got := kind[0](a, affines)) is None:
            return a.draw(renderer)
        data, n, state = got
        state, kept = (renderer.dpi, *state), self.kept.get(id(a))
        try: same = kept is not None and kept[0] is a and kept[1] is renderer and kept[2] == state
        except ValueError: same = False  # colours as arrays not the same objects, compared element by element
        if not same:
            rec = _Recorder(renderer)
            a.draw(rec)
            if len(self.kept) > 256: self.kept.clear()
            if not n: self.kept.pop(id(a), None)  # it drew nothing: what it draws is seen when it has data
            else: self.kept[id(a)] = (a, renderer, state, _replayable(rec.calls, data)
                                      if not rec.other and kind[1](a, rec.calls) else None)
            return
        if kept[3] is None: return a.draw(renderer)  # not to replay in this state (a gap colour, say)
        if not n: return
        for name, args, kwargs, slots in kept[3]:
            args = list(args)
            for i, key in slots: args[i] = data[key]
            getattr(renderer, name)(*args, **kwargs)
        self.replayed += 1
        if type(a) is Line2D: a.ind_offset = 0
        a.stale = False

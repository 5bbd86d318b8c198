"""The 'surface' panel: the training loss over two parameters (`LossSurface`) with each run's path."""
from __future__ import annotations

import numpy as np
import torch
from fastai.learner import Learner
from torch.func import functional_call

from ..data import EVAL_ROWS, check_positive, mean_over_rows
from ..history import ParamHistory
from ..optimum import optimum_label
from ..records import _finite_records, _history
from .base import _NOTE, COLORS, MARKERS, MAX_POINTS, PANELS, Panel, _named_flat, _one_thread, _short, _width, private_model, sample_sets
from .layout import EdgeMark, label, place_legend

__all__ = ['LossSurface', 'SurfacePanel', 'EqualSurfacePanel']


class LossSurface:
    """The training loss over a grid of two parameters (the others held at the model's current values), by `vmap` over
    chunks of the grid and batches of the data (memory stays bounded), on at most `max_n` training points (`note`)."""
    def __init__(self,
        learn:Learner, # the learner: its model, loss function and training data
        params=None, # two flat parameter names, e.g. ('w', 'b') or ('c1', 'c0'); default: the first two
        max_n:int|None=MAX_POINTS, # the loss on a seeded sample of this many training points when there are more; None: all
    ):
        self.learn, self.model = learn, private_model(learn.model)  # functional_call swaps its parameters: a copy
        if max_n is not None: max_n = check_positive('max_n', max_n, int)
        dl = learn.dls.train
        # `note`, e.g. '10,000 of 800,000 points', is for the picture to say
        [(self.note, x, y)] = sample_sets((dl.x, dl.y), max_n=max_n, what='points')
        self.x, self.y = x.cpu(), y.cpu()
        self.layout, self.all_names, self.base = _named_flat(self.model)
        if len(self.all_names) < 2:
            raise ValueError(f"a loss surface needs two parameters; the model has only {self.all_names}")
        if params is None: params = self.all_names[:2]
        params = tuple(params) if isinstance(params, (list, tuple)) else (params,)
        bad = [p for p in params if p not in self.all_names]
        if len(params) != 2 or bad or params[0] == params[1]:
            names = self.all_names if len(self.all_names) <= 12 else [*self.all_names[:8], '...', *self.all_names[-2:]]
            more = (f" ({len(self.all_names):,} in all); or draw the loss over all of them at once with the 'landscape' "
                    f"panel" if len(self.all_names) > 12 else '')
            raise ValueError(f"params must name two different parameters of the model, got {params!r}; "
                             f"choose two of {names}{more}")
        self.names, self.ij = params, [self.all_names.index(p) for p in params]
        self.hold(self.base, 'final')

    def hold(self, flat:torch.Tensor, at:str):
        "Hold the other parameters at the flat vector `flat` (all of them, in order), named `at` in the picture (e.g. 'start')."
        self.base, self.held_at = torch.as_tensor(flat).float().clone(), at
        self.held = {n: float(v) for i, (n, v) in enumerate(zip(self.all_names, self.base.tolist())) if i not in self.ij}

    def _unflat(self, theta):
        "Flat parameter vector(s) `theta` (..., n_params) as a dict name -> (..., *shape)."
        out, i = {}, 0
        for k, shape in self.layout:
            n = int(np.prod(shape))
            out[k] = theta[..., i:i + n].reshape(tuple(theta.shape[:-1]) + tuple(shape))
            i += n
        return out

    def point(self, p:dict) -> tuple | None:
        "The two coordinates of the parameters `p` (name -> tensor), or None if `p` lacks one of them."
        try: ts = [torch.as_tensor(p[k]).float() for k, _ in self.layout]
        except KeyError: return None
        if any(t.numel() != int(np.prod(s)) for t, (_, s) in zip(ts, self.layout)): return None  # another model's names
        flat = torch.cat([t.reshape(-1) for t in ts])
        return float(flat[self.ij[0]]), float(flat[self.ij[1]])

    def points(self, params) -> np.ndarray:
        """(len(params), 2): `point` of each of `params` (dicts name -> tensor), taken at once from a history's records
        (`Records.params`, whose `stacked()` gives every record's parameters)."""
        at_once = hasattr(params, 'stacked') and len(params) and type(self).point is LossSurface.point  # (a plane projects)
        ps = params.stacked() if at_once else {}
        cols = [ps[k].float().reshape(len(params), -1) for k, _ in self.layout if k in ps]
        if len(cols) < len(self.layout) or any(c.shape[1] != int(np.prod(s)) for c, (_, s) in zip(cols, self.layout)):
            return np.array([self.point(p) for p in params], dtype=np.float64)
        return torch.cat(cols, 1)[:, self.ij].double().numpy()

    def path(self, h:ParamHistory) -> tuple:
        "(steps, xy) of every finite record of history `h`."
        names = h.flat_names
        missing = [p for p in self.names if p not in names]
        if missing: raise ValueError(f"the history did not record {missing}: record them with ParamHistory(params=...)")
        keep = _finite_records(h)
        cols = [names.index(p) for p in self.names]
        return h.steps[keep], h.flat[keep][:, cols].numpy().astype(np.float64)

    vmap_budget = 1 << 22  # (theta, point, unit) values a vmap call holds (16 MB)
    many_budget = 1 << 22  # the same for a model's own batched forward, `forward_many` (MLPModel)

    def losses(self, thetas:torch.Tensor, budget:int|None=None, rows:int=EVAL_ROWS) -> torch.Tensor:
        """The training loss at each row of `thetas` (G, n_params): `budget` (theta, point, unit) values a call (default:
        `many_budget` or `vmap_budget`, by the path taken), `rows` points at most."""
        loss_func, out = self.learn.loss_func, torch.empty(len(thetas))
        many = getattr(self.model, 'forward_many', None)  # a model's own batched forward (MLPModel), else vmap
        if budget is None: budget = self.vmap_budget if many is None else self.many_budget
        def losses(ths, x, y):
            if many is not None: return torch.func.vmap(lambda pred: loss_func(pred, y))(many(x, self._unflat(ths)))
            def loss(theta): return loss_func(functional_call(self.model, self._unflat(theta), (x,)), y)
            return torch.func.vmap(loss)(ths)
        per_theta = min(len(self.x), rows) * _width(self.model)
        chunk = max(1, budget // per_theta)
        with torch.no_grad(), _one_thread(len(thetas) * per_theta):
            # Into `out`, chunk by chunk: vmap's own chunk_size keeps every chunk's (point-sized) buffers until the end.
            for i in range(0, len(thetas), chunk):
                out[i:i + chunk] = mean_over_rows(lambda x, y: losses(thetas[i:i + chunk], x, y), self.x, self.y, rows)
        return out

    def grid(self, xlim, ylim, n:int=100) -> tuple:
        "(P1, P2, Z): n x n meshgrid of the two parameters and the loss on it."
        p1, p2 = np.linspace(*xlim, n), np.linspace(*ylim, n)
        P1, P2 = np.meshgrid(p1, p2)
        thetas = self.base.repeat(n * n, 1)
        thetas[:, self.ij[0]] = torch.from_numpy(P1.ravel()).float()
        thetas[:, self.ij[1]] = torch.from_numpy(P2.ravel()).float()
        return P1, P2, self.losses(thetas).reshape(n, n).double().numpy()


def _frame(centre, starts:np.ndarray, path:np.ndarray, far:float=3., pad:float=.12) -> tuple:
    """Axis limits centred on `centre` (the minimum: the bowl is shown whole around it) wide enough for the `starts`
    and for the `path` points up to `far` times as far as the furthest start (a diverging run's first growing swings;
    beyond, its point is marked at the edge). Each axis spans at least a quarter of the other."""
    c = np.asarray(centre, dtype=np.float64)
    half = np.abs(np.asarray(starts, dtype=np.float64).reshape(-1, 2) - c).max(0)
    if half.max() <= 0: half = np.full(2, max(1., np.abs(c).max()) * .25)
    half = np.maximum(half, .25 * half.max())
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    path = path[np.isfinite(path).all(1)]
    near = path[(np.abs(path - c) <= far * half).all(1)]
    if len(near): half = np.maximum(half, np.abs(near - c).max(0))
    half = half * (1 + pad)
    return (c[0] - half[0], c[0] + half[0]), (c[1] - half[1], c[1] + half[1])


def _ticks(lo:float, hi:float, log:bool) -> list:
    "Round tick values between `lo` and `hi`: 1-2-5 steps of each decade on a log scale, else at most six even steps."
    from matplotlib.ticker import LogLocator, MaxNLocator
    if not log: return [t for t in MaxNLocator(5).tick_values(lo, hi) if lo <= t <= hi]
    for subs in ((1.,), (1., 2., 5.), (1., 2., 3., 5., 7.)):
        ts = [t for t in LogLocator(subs=subs).tick_values(lo, hi) if lo <= t <= hi]
        if len(ts) >= 3: return ts[::max(1, len(ts) // 7 + 1)] if len(ts) > 7 else ts
    return [lo, hi]


def _inside(p, xlim, ylim, slack:float=1.) -> bool:
    "Whether point `p` lies within the limits widened by `slack` times their half-spans about their centre."
    return all(abs(v - (lo + hi) / 2) <= slack * (hi - lo) / 2 for v, (lo, hi) in zip(p, (xlim, ylim)))


def _spans_decades(v, decades=2.) -> bool:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(len(v)) and v.min() > 0 and v.max() / v.min() > 10 ** decades


def _equal_spans(xlim, ylim) -> tuple:
    "The limits widened so both axes span as much (on a squarish axes, a round bowl then looks round)."
    span = max(xlim[1] - xlim[0], ylim[1] - ylim[0])
    return tuple(((lo + hi - span) / 2, (lo + hi + span) / 2) for lo, hi in (xlim, ylim))


class SurfacePanel(Panel):
    "Loss contours over two parameters, the true values and the optimum (static); each run's path so far and point (moving)."
    name, needs = 'surface', ('two params', 'data')
    equal_spans = False  # both axes span as much, so the loss's shape is not stretched (compare_scaling)
    dots = False  # a dot on the path at each recorded step: a zig-zag that goes back over itself can be counted
    short_paths = False  # frame paths that hardly moved (the minimum at the edge) rather than centre the minimum

    def __init__(self, learn, recs, labels=None,
        params=None, # the two parameters (flat names); default: the first two, the others held at their final values
        n:int=100, # grid points per axis
        show_end:bool=False, # mark each run's final state (static pictures)
        max_n:int|None=MAX_POINTS, # the loss on a seeded sample of this many training points when there are more; None: all
    ):
        super().__init__(learn, recs, labels)
        self.n, self.show_end = int(n), show_end
        if self.n < 2: raise ValueError(f"n must be >= 2 grid points per axis, got {n!r}")
        self.surf = surf = self._surface(params, max_n)
        h = _history(self.learn)
        if getattr(self.learn, 'diverged', None) is not None and surf.held and h is not None and h.flat_names == surf.all_names:
            surf.hold(h.flat[0], 'start')  # a diverged run's final values are huge: the loss there is flat to float32
        self._follow()
        self.truth = surf.point(getattr(self.learn.dls, 'truth', None) or {})
        opt = self.optimum()
        self.opt = None if opt is None else surf.point(opt)
        self.xlim, self.ylim = self._limits()
        # a truth near the frame widens it; one far from the bowl would squeeze it into a corner: it is marked at the edge
        self.truth_far = self.truth is not None and not _inside(self.truth, self.xlim, self.ylim, 1.6)
        if self.truth is not None and not self.truth_far and not _inside(self.truth, self.xlim, self.ylim):
            c = [(lo + hi) / 2 for lo, hi in (self.xlim, self.ylim)]
            half = [max((hi - lo) / 2, 1.1 * abs(t - m)) for (lo, hi), t, m in zip((self.xlim, self.ylim), self.truth, c)]
            self.xlim, self.ylim = ((c[0] - half[0], c[0] + half[0]), (c[1] - half[1], c[1] + half[1]))
        if self.equal_spans: self.xlim, self.ylim = _equal_spans(self.xlim, self.ylim)
        self.P1, self.P2, self.Z = surf.grid(self.xlim, self.ylim, self.n)

    def _surface(self, params, max_n): return LossSurface(self.learn, params, max_n)

    def _follow(self):
        "Each run's path (steps, xy: the whole recorded path, revealed up to each frame's step) and point per frame."
        surf, self.paths = self.surf, []
        for lrn, r in zip(self.learns, self.recss):
            h = _history(lrn)
            if h is not None: self.paths.append(surf.path(h))
            else: self.paths.append((np.asarray([0 if s is None else s for s in r.steps]),
                                     np.array([surf.point(p) for p in r.params])))
        self.cur = [surf.points(r.params) for r in self.recss]

    def renew(self, recs):
        "Draw `recs` (one per run) from now on, keeping the grid: a live view's latest state (the path and point move)."
        self.recss = recs if isinstance(recs, list) else [recs]
        self.recs = self.recss[0]
        self._follow()

    def _centre(self) -> tuple:
        "The bowl's bottom: the optimum, or else the lowest loss any run recorded (the truth, if nothing was recorded)."
        if self.opt is not None: return self.opt
        best = min(((float(r.losses[k]), tuple(cur[k])) for r, cur in zip(self.recss, self.cur) for k in range(len(r))
                    if np.isfinite(r.losses[k]) and np.isfinite(cur[k]).all()), default=None)
        return best[1] if best is not None else self.truth if self.truth is not None else tuple(self.paths[0][1][-1])

    def _limits(self) -> tuple:
        """The axes' limits: the bowl centred, every start and the path's first swings in view (see `_frame`); with
        `short_paths`, paths that went less than a quarter of the way to the minimum are framed themselves (their steps
        then show), the minimum marked at the edge."""
        starts = np.array([xy[0] for _, xy in self.paths if len(xy)])
        path = np.concatenate([xy for _, xy in self.paths])
        path = path[np.isfinite(path).all(1)]
        c = np.asarray(self._centre(), dtype=np.float64)
        if self.short_paths and len(path):
            near = np.hypot(*(path - c).T).min()  # how close any path came to the minimum
            if near > .75 * np.hypot(*(starts - c).T).max():
                lo, hi = path.min(0), path.max(0)
                return _frame((lo + hi) / 2, np.array([lo, hi]), path, pad=.2)
        return _frame(c, starts, path)

    def setup(self, ax) -> list:
        self.ax = ax
        Z = np.where(np.isfinite(self.Z), self.Z, np.nan)
        if not np.isfinite(Z).any() or np.nanmax(Z) <= np.nanmin(Z): return self._setup_flat(ax)
        self._contours(ax)
        if self.truth is not None and not self.truth_far:
            ax.plot(*self.truth, 'P', ms=12, c=COLORS['truth'], mec='white', mew=1, label='true', zorder=6)
        if self.opt is not None:  # or where it is, at the edge, when the frame is on a path that hardly moved
            what = optimum_label(self.learn.loss_func)
            m = EdgeMark(ax, COLORS['optimum'], '*', ms=17, fmt=lambda x, y: f"{what}:\n" + self._coords(x, y),
                         mec='black', mew=.8)
            ax.set_xlim(*self.xlim); ax.set_ylim(*self.ylim)
            m.set(*self.opt)
            m.point.set_label(what if _inside(self.opt, self.xlim, self.ylim) else f"{what} (off the axes)")
        ax.set_xlim(*self.xlim); ax.set_ylim(*self.ylim)
        if self.equal_spans:  # one scale: a round bowl looks round
            from matplotlib.ticker import MaxNLocator
            ax.set_aspect('equal', adjustable='box')
            for a in (ax.xaxis, ax.yaxis): a.set_major_locator(MaxNLocator(5))
        self.lines, self.marks = [], []
        for i, ((_, xy), c, lab) in enumerate(zip(self.paths, self.colors, self.labels)):
            mk = MARKERS[i % len(MARKERS)]
            ax.plot(*xy[0], mk, ms=9, mfc='white', mec=c, mew=2, zorder=6,
                    label=('start' if not self.multi else None) if i == 0 or not self.multi else None)
            if self.show_end and _inside(xy[-1], self.xlim, self.ylim):
                ax.plot(*xy[-1], 'X', ms=11, c=c, mec='black', mew=.6, zorder=7, label='end' if i == 0 else None)
            self.lines.append(ax.plot(*xy.T, '-', c=c, lw=2, alpha=.95, zorder=5, label=lab or 'path',
                                      **(dict(marker='o', ms=3.5, mec='white', mew=.5) if self.dots else {}))[0])
            # the current point, or where it went (at the edge, with its value) when it has left the axes
            self.marks.append(EdgeMark(ax, c, mk, ms=9, fmt=self._coords, mec='black', mew=.6, row=i))
        self.points = [m.point for m in self.marks]
        if self.multi: ax.plot([], [], 'o', ms=8, mfc='white', mec='0.3', mew=2, label='start')
        if self.truth_far:  # far away: at the edge, so that it does not squeeze the bowl into a corner
            row = int(self.opt is not None and not _inside(self.opt, self.xlim, self.ylim))  # below the optimum's note
            far = EdgeMark(ax, COLORS['truth'], 'P', ms=12, fmt=lambda x, y: 'true:\n' + self._coords(x, y), mec='white', mew=1,
                           row=row)
            far.set(*self.truth)
            far.point.set_label('true (off the axes)')
        note = getattr(self.learn.dls, 'units_note', '')  # normalize=True: the parameters are those on standardised x
        ax.set_xlabel(self.surf.names[0] + note); ax.set_ylabel(self.surf.names[1] + note)
        self._title_held(ax)
        # Below the axes: inside, it would hide the optimum or the path wherever it went.
        self._setup_optimum_note(ax)
        place_legend(ax, spots=(), ncol=3, fontsize=8.5)
        return [*self.lines, *[a for m in self.marks for a in m.artists], *self._setup_stop_note(ax)]

    def _coords(self, x, y) -> str:
        "A point off the axes, as its two coordinates by name."
        a, b = getattr(self.surf, 'short', self.surf.names)
        return f"{a}={_short(x)}, {b}={_short(y)}"

    def _contours(self, ax):
        "The loss as grey contours, low loss light, with a colour bar whose bands sit at their values."
        from matplotlib.colors import LogNorm
        Z = np.where(np.isfinite(self.Z), self.Z, np.nan)
        zmin, zmax = np.nanmin(Z), np.nanmax(Z)
        self.log = _spans_decades([zmin, zmax])
        if self.log: levels, norm = np.geomspace(zmin, zmax, 22), LogNorm(zmin, zmax)
        else: levels, norm = zmin + (zmax - zmin) * np.linspace(0, 1, 22) ** 2, None  # a bowl: rings evenly spaced in distance
        # Grey, low loss light: the coloured paths and markers stay the only colour on it.
        cf = ax.contourf(self.P1, self.P2, Z, levels=levels, norm=norm, cmap='Greys', alpha=.55)
        ax.contour(self.P1, self.P2, Z, levels=levels[::3], norm=norm, colors='0.45', linewidths=.6)
        # proportional: each band as tall as the loss it spans (the levels are closer near the minimum), round ticks;
        # in the figure's grid (use_gridspec), so that tight_layout keeps its label clear of the next panel
        cb = ax.figure.colorbar(cf, ax=ax, fraction=.05, pad=.02, spacing='proportional',
                                use_gridspec=ax.get_subplotspec() is not None)
        ticks = _ticks(zmin, zmax, self.log)
        cb.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
        cb.ax.minorticks_off()
        note = f"on {self.surf.note}" if self.surf.note else ''
        how = 'levels at equal ratios' if self.log else 'levels closer near the minimum'
        cb.set_label(label('training loss', 'log scale' if self.log else '') + f'\n{how}' + (f', {note}' if note else ''))
        self.colorbar = cb

    def _title_held(self, ax):
        held, at = ', '.join(f"{k}={_short(v)}" for k, v in self.surf.held.items()), getattr(self.surf, 'held_at', 'final')
        if held: ax.set_title(f"held at {at}: {held}" if len(held) < 50 else f'others held at their {at} values', fontsize=9)

    def _setup_flat(self, ax) -> list:
        "No contours where the loss is not finite, or the same, over the whole grid (a diverged run): the paths, and why."
        v = self.Z[np.isfinite(self.Z)]
        what = 'not finite anywhere here' if not v.size else f"{_short(float(v[0]))} all over here"
        ax.text(.5, .5, f"no contours: the loss is\n{what}\n(a diverged run: float32\nsees no difference)",
                transform=ax.transAxes, ha='center', va='center', fontsize=10, color='0.3', bbox=_NOTE)
        ax.set_xlim(*self.xlim); ax.set_ylim(*self.ylim)
        self.lines, self.marks = [], []
        for i, ((_, xy), c, lab) in enumerate(zip(self.paths, self.colors, self.labels)):
            self.lines.append(ax.plot(*xy.T, '-', c=c, lw=2, alpha=.95, zorder=5, label=lab or 'path')[0])
            self.marks.append(EdgeMark(ax, c, MARKERS[i % len(MARKERS)], ms=9, fmt=self._coords, mec='black', mew=.6, row=i))
        self.points = [m.point for m in self.marks]
        ax.set_xlabel(self.surf.names[0]); ax.set_ylabel(self.surf.names[1])
        self._title_held(ax)
        return [*self.lines, *[a for m in self.marks for a in m.artists], *self._setup_stop_note(ax)]

    def update(self, k:int):
        "Reveal each path up to frame `k`'s step and put each point there (at the edge, with its value, once it left)."
        for line, mark, (steps, xy), cur, r in zip(self.lines, self.marks, self.paths, self.cur, self.recss):
            s = r.steps[k]
            j = len(steps) if s is None else int(np.searchsorted(steps, s, 'right'))
            line.set_data(xy[:j, 0], xy[:j, 1])
            mark.set(*cur[k])
        self._update_stop_note(k)


class EqualSurfacePanel(SurfacePanel):
    "The 'surface' panel with both axes spanning as much (a round bowl looks round, a narrow valley narrow), a dot a step."
    equal_spans = dots = short_paths = True


PANELS['surface'] = SurfacePanel

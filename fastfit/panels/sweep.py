"""The 'sweep' panel: an lr sweep's stability map (each run's loss against its lr, coloured by its fate, the Hessian's
thresholds marked), and `fate`, what a run's recorded history did."""
from __future__ import annotations

import math
import weakref

import numpy as np
import torch
from matplotlib.path import Path
from matplotlib.transforms import Bbox

from ..curvature import Curvature  # noqa: F401 (`learn.curvature()` is patched onto Learner there)
from ..history import opt_cb_names
from ..learner import has_data
from ..records import _finite_records, require_history
from .base import COLORS, PANELS, Panel
from .layout import axes_points, free_corner, place_legend

__all__ = ['fate', 'fates', 'records_fates', 'FATES', 'StabilityPanel']

# A run's fate, in the order the map's legend lists them, with a colour (Okabe-Ito) and a marker each.
FATES = {'converging': ('#009E73', 'o'), 'slow': ('#56B4E9', 's'), 'oscillating': ('#E69F00', '^'), 'diverged': ('#D55E00', 'X')}

_UNSET = object()
_FATE_CACHE = weakref.WeakKeyDictionary()  # learner -> ((stop, steps, records), fate): a sweep and its map ask once


def optimum_loss(learn) -> float | None:
    "The training loss at the optimum (`learn.optimum()`), when the model has a finite one (else None)."
    try: return learn.train_loss(learn.optimum())
    except (TypeError, ValueError): return None


def fate(learn, stop=None, opt_loss=_UNSET) -> str:
    """'diverged', 'oscillating', 'slow' or 'converging': what the recorded history of `learn`'s fit did (`stop`: the run
    was stopped early; `opt_loss`: the loss at the optimum, when the caller has it for many runs of one problem)."""
    h = require_history(learn, 'fate')
    key = (stop, h.step, len(h))
    hit = _FATE_CACHE.get(learn)
    if hit is not None and hit[0] == key: return hit[1]
    out = _fate(learn, h, stop, opt_loss)
    _FATE_CACHE[learn] = (key, out)
    return out


def _fate(learn, h, stop, opt_loss) -> str:
    keep = _finite_records(h)
    if stop is not None or len(keep) < 2: return 'diverged'
    losses, flat = h.losses.numpy()[keep].astype(np.float64), h.flat[keep].numpy().astype(np.float64)
    l0, lf = losses[0], losses[-1]
    if lf > l0: return 'diverged'
    # Oscillating: a parameter's step changes sign at most steps (overshooting the valley), or the loss keeps rising.
    flips = _flips(np.diff(flat, axis=0))
    rises = float(np.mean(np.diff(losses) > 1e-6 * abs(l0)))
    if flips > .6 or rises > .2: return 'oscillating'
    opt = optimum_loss(learn) if opt_loss is _UNSET else opt_loss
    if opt is not None: return 'converging' if lf - opt <= max(.1 * abs(opt), 1e-3 * (l0 - opt)) else 'slow'
    # Without an optimum: slow when the last tenth of the steps still took a real share of the loss off.
    recent = losses[int(.9 * (len(losses) - 1))] - lf
    return 'slow' if recent > .02 * (l0 - lf) else 'converging'


def fates(learns:list, stops:list, opt_loss) -> list:
    """`fate` of each of many runs of one problem (`opt_loss`: its optimum's loss, or None), as one: the runs that kept
    the same records (an lr sweep fitted together) are judged at once, array by array, not one after another."""
    out, groups = [None] * len(learns), {}
    for i, (lrn, stop) in enumerate(zip(learns, stops)):
        h = require_history(lrn, 'fate')
        hit = _FATE_CACHE.get(lrn)
        if hit is not None and hit[0] == (stop, h.step, len(h)): out[i] = hit[1]
        elif stop is not None: out[i] = 'diverged'
        else: groups.setdefault((len(h), h.flat.shape[1], h.steps.tobytes()), []).append(i)
    for idx in groups.values():
        hs = [learns[i].param_history for i in idx]
        L = torch.stack([h.losses for h in hs]).numpy()  # (R, T)
        F = torch.stack([h.flat for h in hs]).numpy()  # (R, T, P)
        for i, v in zip(idx, records_fates(L, F, opt_loss, lambda j, idx=idx: learns[idx[j]])): out[i] = v
    for lrn, stop, v in zip(learns, stops, out):
        h = lrn.param_history
        _FATE_CACHE[lrn] = ((stop, h.step, len(h)), v)
    return out


def records_fates(L:np.ndarray, F:np.ndarray, opt_loss, learner) -> list:
    """The fates of runs of one problem that kept the same records, from their losses `L` (R, T) and parameters `F`
    (R, T, P) as their histories hold them; `learner(i)` gives run i's learner, judged alone when records must be dropped."""
    L = L.astype(np.float64)
    out = [None] * len(L)
    finite = np.isfinite(L) & np.isfinite(F).all(2)
    whole = finite.all(1)
    for j in np.nonzero(~whole)[0]:  # records to drop: alone
        lrn = learner(j)
        out[j] = _fate(lrn, lrn.param_history, None, opt_loss)
    idx = np.nonzero(whole)[0]
    L = L[whole]
    if not len(idx): return out
    if L.shape[1] < 2:
        for i in idx: out[i] = 'diverged'
        return out
    # (T, R, P): step by step, as a sweep's buffers hold the records (no copy of them then); each step's change in
    # float64 as `_fate` takes it, made in one pass, and laid out as `_flip_shares` reads it (T - 1, R * P)
    F = F.transpose(1, 0, 2)
    if not whole.all(): F = F[:, whole]
    T, R, P = F.shape
    l0, lf = L[:, 0], L[:, -1]
    flips = _flip_shares(np.subtract(F[1:], F[:-1], dtype=np.float64, order='C').reshape(T - 1, R * P)).reshape(R, P).max(1)
    rises = np.mean(np.diff(L, axis=1) > 1e-6 * np.abs(l0)[:, None], axis=1)
    if opt_loss is not None:
        calm = np.where(lf - opt_loss <= np.maximum(.1 * abs(opt_loss), 1e-3 * (l0 - opt_loss)), 'converging', 'slow')
    else:
        recent = L[:, int(.9 * (T - 1))] - lf
        calm = np.where(recent > .02 * (l0 - lf), 'slow', 'converging')
    f = np.where(lf > l0, 'diverged', np.where((flips > .6) | (rises > .2), 'oscillating', calm))
    for i, v in zip(idx, f): out[i] = str(v)
    return out


def _flips(d:np.ndarray) -> float:
    """The largest share, over the parameters (columns of `d`, each step's change), of sign changes between one of a
    parameter's real steps (over 1e-3 of its largest) and its previous real step; 0 for one with 3 real steps or fewer."""
    if d.shape[0] == 0: return 0.
    return float(_flip_shares(d).max())


def _flip_shares(d:np.ndarray) -> np.ndarray:
    "`_flips` of each column of `d` (T, P): (P,)."
    T, P = d.shape
    if T == 0: return np.zeros(P)
    a = np.abs(d)
    big = a > 1e-3 * a.max(0)  # (none in a column that never moved)
    # Each real step coded 2t + (1 if it went up): the running maximum of the codes is the last real step so far and
    # its direction at once (a pass of small ints, where a gather of each previous step's sign would take four).
    it = np.int16 if 2 * T < 2**15 else np.int64
    up = d > 0
    code = np.where(big, (2 * np.arange(T, dtype=it))[:, None] + up, it(-1))
    if P < 256: code = np.maximum.accumulate(code, axis=0)
    else:  # row by row: numpy's running maximum down the columns of a wide array is ~6x slower
        for t in range(1, T): np.maximum(code[t - 1], code[t], out=code[t])
    prev = code[:-1]  # each step's previous real step (-1 if none)
    changed = big[1:] & (prev >= 0) & ((prev & 1) != up[1:])
    n = big.sum(0)  # real steps; all but the first have a previous one
    return np.where(n > 3, changed.sum(0) / np.maximum(n - 1, 1), 0.)


def top_eigenvalue(learn, params:dict) -> float | None:
    "The largest eigenvalue of the training loss's Hessian at `params` (None for a model too big for a Hessian, or no data)."
    if not has_data(learn): return None
    try: lam = float(learn.curvature(params)[0][-1])
    except (ValueError, RuntimeError, TypeError): return None
    return lam if lam > 0 and math.isfinite(lam) else None


class _Marker(Path):
    """A scatter's marker that keeps its extents per transform: `Collection.draw` finds them anew at every draw (the
    Bezier extrema of a circle, ~0.5 ms) only to check that one marker is smaller than the figure; the map draws four
    scatters a frame. (The scatter keeps this path: `set_paths` would give it another object, not change this one.)"""
    def get_extents(self, transform=None, **kwargs):
        if kwargs or transform is None or not transform.is_affine: return super().get_extents(transform, **kwargs)
        known = self.__dict__.setdefault('_known', {})
        key = (transform.get_matrix().tobytes(), self.vertices.tobytes())
        if (e := known.get(key)) is None:
            if len(known) > 16: known.clear()
            e = known[key] = super().get_extents(transform).get_points().copy()
        return Bbox(e.copy())


class StabilityPanel(Panel):
    """An lr sweep's stability map: each run's training loss at the frame's step against its lr (log-log), coloured and
    marked by its fate; the lrs 1/λ (the fastest without oscillation) and 2/λ (beyond it plain gradient descent diverges on
    a quadratic) of the Hessian's largest eigenvalue λ at the start marked, for plain SGD; the optimum's loss dotted."""
    name = 'sweep'
    needs = ('history',)

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        lrs = np.array([float(lrn.opt.hypers[-1]['lr']) if lrn.opt is not None else float(lrn.lr) for lrn in self.learns])
        self.order = np.argsort(lrs, kind='stable')
        self.lrs = lrs[self.order]
        opt = self.optimum()
        self.opt = None if opt is None else self.learn.train_loss(opt)
        stops = [r.stop for r in self.recss]
        self.fates = fates(self.learns, stops, self.opt)  # runs of one sweep judged array by array, as `fate` of each
        plain = all(lrn.opt is not None and opt_cb_names(lrn.opt) in (('weight_decay', 'sgd_step'), ('l2_reg', 'sgd_step'))
                    for lrn in self.learns)
        self.lam = top_eigenvalue(self.learn, self.params(0)) if plain else None
        # (frames, runs) losses, in lr order: what each frame shows (a run's at once: 200 runs x 100 frames one by one
        # took ~3 ms)
        self.L = np.stack([np.asarray(r.losses, dtype=np.float64) for r in self.recss], 1)[:, self.order]
        self.gone = np.stack([r.stopped_frames() for r in self.recss], 1)[:, self.order]

    def setup(self, ax) -> list:
        self.ax = ax
        ax.set_xscale('log'); ax.set_yscale('log')
        fin = self.L[np.isfinite(self.L) & (self.L > 0)]
        # The runs' starting loss: their histories' first record (a still of the last frame holds no frame of the start)
        starts = np.array([float(lrn.param_history.losses[0]) for lrn in self.learns if len(lrn.param_history)])
        starts = starts[np.isfinite(starts) & (starts > 0)]
        l0 = float(starts.max()) if len(starts) else float(np.nanmax(self.L[0])) if np.isfinite(self.L[0]).any() else 1.
        lo = min([fin.min() if len(fin) else l0] + ([self.opt] if self.opt is not None and self.opt > 0 else []))
        # Diverged losses reach 1e30: the map shows up to 1000x the starting loss; a run above it sits on the top edge.
        self.top = min(float(fin.max()) if len(fin) else l0, 1e3 * l0) * 1.6
        ax.set_ylim(lo / 1.6, self.top * 1.25)
        ax.set_xlim(self.lrs[0] / 1.3, self.lrs[-1] * 1.3)
        if self.opt is not None and self.opt > 0:
            ax.axhline(self.opt, ls=':', c=COLORS['optimum'], lw=2.2, label='optimum')
        if self.lam is not None:
            for v, ls, what in ((1 / self.lam, '--', '1/λ: fastest, no oscillation'), (2 / self.lam, '-.', '2/λ: plain GD diverges')):
                ax.axvline(v, ls=ls, c='black', lw=1.4, label=what)
        self.curve, = ax.plot([], [], '-', c=COLORS['grey'], lw=1, zorder=2)
        fates = np.array(self.fates)[self.order]
        self.members, self.dots = {}, {}
        for f, (c, m) in FATES.items():
            idx = np.nonzero(fates == f)[0]
            if not len(idx): continue
            self.members[f] = idx
            self.dots[f] = ax.scatter(self.lrs[idx], np.full(len(idx), lo), s=30 if len(self.lrs) > 60 else 50, c=c, marker=m,
                                      edgecolors='black', linewidths=.4, zorder=4, label=f"{f} ({len(idx)})")
            self.dots[f].set_paths([_Marker(p.vertices, p.codes, p._interpolation_steps) for p in self.dots[f].get_paths()])
        ax.set_xlabel('learning rate (log scale)')
        ax.set_ylabel('training loss at the step shown (log scale)')
        ax.grid(alpha=.25, which='major')
        self._setup_optimum_note(ax)
        # The step shown, and the legend, where no run is in any frame (the diverged ones sit on the top edge).
        ys = [self._shown(k) for k in np.unique(np.linspace(0, len(self.L) - 1, 25).round().astype(int))]
        avoid = axes_points(ax, lines=[ln for ln in ax.lines if ln is not self.curve],
                            curves=[np.c_[self.lrs, y] for y in ys])
        self.caption = ax.text(s=self._caption(len(self.L) - 1),
                               fontsize=10, bbox=dict(boxstyle='round', fc='white', ec='0.7', alpha=.85), zorder=7,
                               transform=ax.transAxes, **free_corner(ax, avoid, size=(.55, .08)))
        place_legend(ax, avoid=avoid, texts=(self.caption,), framealpha=.85)
        return [self.curve, *self.dots.values(), self.caption]

    def _shown(self, k:int) -> np.ndarray:
        "Where each run is drawn at frame `k`: its loss there, or the top edge once it has diverged (or climbed past the map)."
        y = self.L[k].copy()
        y[~np.isfinite(y) | (y > self.top) | self.gone[k]] = self.top
        return y

    def update(self, k:int):
        "Every run at frame `k`'s step: its loss there, or the top edge once it has diverged (or climbed past the map)."
        y = self._shown(k)
        self.curve.set_data(self.lrs, y)
        for f, idx in self.members.items(): self.dots[f].set_offsets(np.column_stack((self.lrs[idx], y[idx])))
        self.caption.set_text(self._caption(k))

    def _caption(self, k:int) -> str:
        """The step of frame `k` and the runs past the map at it: above 1000x the start, or stopped at NaN/inf. (Not
        "off the map": the font joins "ff" into one glyph, which the glyph cache leaves to matplotlib, ~10 ms a frame.)"""
        s = int(self.recs.clock[k])  # the runs' shared clock (a diverged run's own step stays where it stopped)
        L = self.L[k]
        off, nan = int((~np.isfinite(L) | (L > self.top) | self.gone[k]).sum()), int(self.gone[k].sum())
        if not off: return f"step {s:,}"
        return f"step {s:,}; {off} past the map (top edge)" + (f", {nan} of them NaN/inf" if nan else '')


PANELS['sweep'] = StabilityPanel

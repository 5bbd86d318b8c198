"""What each picture shows. A `Panel` draws one axes: `setup(ax)` the still part, returning the artists that move, and
`update(k)` moves them to frame `k` of its `Records`. `PANELS` names the built-in ones; `Frames` is a figure of panels."""
from __future__ import annotations

import numpy as np
import torch
from fastai.learner import Learner
from matplotlib.figure import Figure
from torch.func import functional_call

from .classify import is_classifier, probabilities
from .history import ParamHistory
from .models import flat_names
from .optimum import optimum_label
from .records import Records, _finite_records, _history

__all__ = ['COLORS', 'Frames', 'Panel', 'FitPanel', 'LossSurface', 'SurfacePanel', 'LossPanel', 'PANELS', 'NEEDS', 'outputs']

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey.
COLORS = dict(data='#0072B2', valid='#56B4E9', fit='#D55E00', truth='#000000', optimum='#009E73',
              path='#CC79A7', extra=('#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9', '#F0E442'),
              # several runs on one axes: the data goes grey, so blue is free; green stays the optimum's
              runs=('#D55E00', '#0072B2', '#E69F00', '#CC79A7', '#56B4E9', '#000000'), grey='#8C8C8C',
              # class labels (with a marker each): neither the fit's vermillion nor the optimum's green
              classes=('#0072B2', '#E69F00', '#CC79A7', '#56B4E9', '#F0E442'), accuracy='#0072B2')
MARKERS = ('o', 's', '^', 'D', 'v', 'P')


def _plot_feature(x) -> int:
    "The feature drawn on the x axis: the first that is not constant (a ones column is skipped)."
    varies = (x.max(0).values - x.min(0).values) > 0
    return int(varies.nonzero()[0]) if varies.any() else 0


def _truth_curve(truth, xg):
    "The noise-free function of synthetic data on the grid `xg`: linear in 'w' (and 'b') or a polynomial in 'c*'."
    if not truth: return None
    if 'w' in truth:
        w = torch.as_tensor(truth['w']).float().flatten()
        if len(w) != xg.shape[1]: return None
        return (xg @ w + torch.as_tensor(truth.get('b', 0.)).float()).flatten()
    cs = sorted((k for k in truth if k[0] == 'c' and k[1:].isdigit()), key=lambda k: -int(k[1:]))
    if not cs or xg.shape[1] != 1: return None
    y = torch.zeros(len(xg))
    for k in cs: y = y * xg[:, 0] + float(truth[k])
    return y


def _short(v): return f"{v:.4g}"

def _params_texts(params:list, max_scalars=4) -> list:
    "'w=2.95  b=1.98' for each parameter dict of `params` ('' when there are more than `max_scalars` scalars)."
    names = flat_names((k, v.shape) for k, v in params[0].items())
    if len(names) > max_scalars: return [''] * len(params)
    vals = torch.cat([torch.stack([p[k] for p in params]).reshape(len(params), -1) for k in params[0]], 1).tolist()
    return ['  '.join(f"{n}={_short(v)}" for n, v in zip(names, row)) for row in vals]


def _listify(x): return list(x) if isinstance(x, (list, tuple)) else [x]

def _cpu_model(model): return model if next(model.parameters()).device.type == 'cpu' else _cpu_copy(model)

_NOTE = dict(boxstyle='round', fc='white', ec='0.7', alpha=.85)


def _n_params(learn) -> int: return sum(p.numel() for p in learn.model.parameters())

def _history_of(learn) -> bool: return isinstance(getattr(learn, 'param_history', None), ParamHistory)


def _optimum(learn) -> dict | None:
    "The learner's `optimum()`, or None when its model/loss has none (TypeError) or no finite one (ValueError)."
    try: return learn.optimum()
    except (TypeError, ValueError): return None


# What a panel may need of its learner (`Panel.needs`): name -> (test, what to say when it fails). Add to it for new needs.
NEEDS = {
    'history': (_history_of, "the parameter history: create the learner with history=True (the default)"),
    'two params': (lambda learn: _n_params(learn) >= 2,
                   "a model with at least two parameters (it draws the loss over two of them)"),
    'classes': (is_classifier, "class labels: a classification_learner on ClsDataLoaders (e.g. synth_blobs().dataloaders())"),
    'two features': (lambda learn: learn.dls.n_in == 2, "data with two features (it draws the plane of x[0] and x[1])"),
}


class Panel:
    """One picture of a fit, on one axes, that moves with the frames. Subclass it and write two methods:
    `setup(ax)` draws what stays still and returns the artists that move; `update(k)` sets those to frame `k`.
    In animations and exports only the moving artists are redrawn each frame (blitted), text included, so a new panel
    is exported as fast as the built-in ones. Frame `k` shows the parameters `self.params(k)` (name -> tensor) at
    step `self.step(k)` with training loss `self.loss(k)`; `self.predict(x, k)` is the model's output for `x` there;
    `self.x`, `self.y` are the training data. Several runs on one axes (compare_optimizers): `self.learns`,
    `self.recss` and one colour each in `self.colors`. `needs` names what the panel requires of a learner (keys of
    `NEEDS`), checked before anything is drawn."""
    name = None  # its key in `PANELS`, for the built-in panels
    needs = ()  # e.g. ('two params',): see `NEEDS`

    def __init__(self,
        learn, # a learner, or a list of them (several runs: one colour each, with a legend)
        recs, # its `Records`, or one per learner (all of one length)
        labels=None, # one legend label per run
    ):
        self.learns, self.recss = _listify(learn), _listify(recs)
        if len(self.learns) != len(self.recss):
            raise ValueError(f"{len(self.learns)} learners but {len(self.recss)} Records: give one Records per learner")
        n = len(self.learns)
        self.labels = list(labels) if labels is not None else [None] * n
        self.multi = n > 1
        self.colors = [COLORS['fit']] if n == 1 else [COLORS['runs'][i % len(COLORS['runs'])] for i in range(n)]
        self.learn, self.recs = self.learns[0], self.recss[0]

    @classmethod
    def check(cls, learn):
        "Raise a `ValueError` naming the panel and what it needs if `learn` lacks something in `needs`."
        for need in cls.needs:
            test, what = NEEDS[need]
            if not test(learn): raise ValueError(f"the {cls.name or cls.__name__!r} panel needs {what}")

    def setup(self, ax) -> list:
        "Draw what does not move on `ax`; return the artists that do."
        raise NotImplementedError(f"{type(self).__name__}.setup(ax) must draw the still part and return the moving artists")

    def update(self, k:int):
        "Set the moving artists to frame `k`."
        raise NotImplementedError(f"{type(self).__name__}.update(k) must set the moving artists to frame k")

    # -- what frame k shows (of run `run`) -------------------------------------------------------------------------
    def params(self, k:int, run:int=0) -> dict:
        "The parameters (name -> tensor) of frame `k`."
        return self.recss[run].params[k]

    def step(self, k:int, run:int=0) -> int|None:
        "The optimizer step frame `k` shows (None for a model not fitted with a history)."
        s = self.recss[run].steps[k]
        return None if s is None else int(s)

    def loss(self, k:int, run:int=0) -> float:
        "The training loss at frame `k`'s parameters."
        return float(self.recss[run].losses[k])

    def predict(self, x, k:int, run:int=0) -> np.ndarray:
        "The model's output for inputs `x` (n, n_features) at frame `k`'s parameters, as a flat numpy array."
        if not hasattr(self, '_cpu'): self._cpu = [_cpu_model(lrn.model) for lrn in self.learns]
        with torch.no_grad():
            return functional_call(self._cpu[run], self.params(k, run), (torch.as_tensor(x).float(),)).flatten().numpy()

    @property
    def x(self) -> torch.Tensor:
        "The training inputs (n, n_features), on the CPU."
        if not hasattr(self, '_x'): self._x = self.learn.dls.train.x.cpu()
        return self._x

    @property
    def y(self) -> torch.Tensor:
        "The training targets (n, 1), on the CPU."
        if not hasattr(self, '_y'): self._y = self.learn.dls.train.y.cpu()
        return self._y

    def _setup_stop_note(self, ax):
        "A note shown once the (single) run has been stopped early, e.g. diverged."
        r = self.recs
        if self.multi or r.stop is None: return []
        self.note = ax.text(.5, .5, f"{r.stop[1]}\nstopped at step {int(r.stop[0])}", transform=ax.transAxes, ha='center',
                            va='center', fontsize=13, color=COLORS['fit'], zorder=8, visible=False,
                            bbox=dict(boxstyle='round', fc='white', ec=COLORS['fit'], alpha=.9))
        return [self.note]

    def _update_stop_note(self, k):
        if getattr(self, 'note', None) is not None: self.note.set_visible(self.recs.stopped(k))


class FitPanel(Panel):
    """The data, the true line, the least-squares optimum (static) and the fitted line(s) with a caption (moving).
    A two-class classifier of one feature: the labels 0/1 and p(class 1) against x (the sigmoid curve)."""
    name, n_grid = 'fit', 200

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        learn = self.learn
        dls, model, x = learn.dls, learn.model, self.x
        self.cls = is_classifier(learn)
        if self.cls and dls.n_classes != 2:
            raise ValueError(f"the 'fit' panel draws a classifier of one feature as p(class 1) against x, for two classes; "
                             f"this data has {dls.n_classes}: draw panels=('loss', 'surface'), or give the data two features "
                             f"(the 'boundary' panel)")
        self.xv, self.yv = (dls.valid.x.cpu(), dls.valid.y.cpu()) if dls.has_valid else (None, None)
        xall = x if self.xv is None else torch.cat([x, self.xv])
        self.feat = _plot_feature(xall)
        lo, hi = float(xall[:, self.feat].min()), float(xall[:, self.feat].max())
        pad = (hi - lo) * .02
        xg = x.mean(0, keepdim=True).repeat(self.n_grid, 1)
        xg[:, self.feat] = torch.linspace(lo - pad, hi + pad, self.n_grid)
        self.xg, self.xs = xg, xg[:, self.feat].numpy()
        with torch.no_grad():
            self.predss = []
            for lrn, r in zip(self.learns, self.recss):
                m = _cpu_model(lrn.model)
                self.predss.append(np.stack([self._curve(functional_call(m, p, (xg,))) for p in r.params]))
            self.preds = self.predss[0]
            self.truth = _truth_curve(getattr(dls, 'truth', None), xg)
            if self.truth is not None and self.cls: self.truth = torch.sigmoid(self.truth)  # the true logit's probability
            opt = _optimum(learn)
            self.opt = None if opt is None else self._curve(functional_call(_cpu_model(model), opt, (xg,)))

    def _curve(self, out) -> np.ndarray:
        "The curve drawn for the model's outputs on the grid: the prediction, or for a classifier p(class 1)."
        return (probabilities(out, self.learn.loss_func)[:, 1] if self.cls else out).flatten().numpy()

    def _ylim(self):
        ys = [self.y.numpy().ravel()] + ([self.yv.numpy().ravel()] if self.yv is not None else [])
        if self.truth is not None: ys.append(self.truth.numpy())
        lo, hi = min(a.min() for a in ys), max(a.max() for a in ys)
        span = max(hi - lo, 1e-6)
        # Fitted lines far off (early frames, divergence) may leave the frame, not shrink the data to a dot.
        allp = np.concatenate([p.ravel() for p in self.predss])
        p = np.clip(allp[np.isfinite(allp)], lo - span, hi + span)
        if p.size: lo, hi = min(lo, p.min()), max(hi, p.max())
        pad = (hi - lo) * .05
        return lo - pad, hi + pad

    def setup(self, ax) -> list:
        "Draw what does not move; return the artists that do."
        self.ax = ax
        xl = 'x' if self.x.shape[1] == 1 else f'x[{self.feat}]'
        dc, vc = (COLORS['grey'], COLORS['grey']) if self.multi else (COLORS['data'], COLORS['valid'])
        ax.scatter(self.x[:, self.feat], self.y[:, 0], s=14, c=dc, alpha=.65, lw=0, label='train data')
        if self.xv is not None:
            ax.scatter(self.xv[:, self.feat], self.yv[:, 0], s=14, c=vc, alpha=.65, lw=0, marker='s', label='valid data')
        if self.truth is not None: ax.plot(self.xs, self.truth, '--', c=COLORS['truth'], lw=1.5, label='true')
        if self.opt is not None:
            ax.plot(self.xs, self.opt, ':', c=COLORS['optimum'], lw=2.5, label=optimum_label(self.learn.loss_func))
        self.lines = [ax.plot(self.xs, p[-1], '-', c=c, lw=2.5, label=lab or 'fit', zorder=5)[0]
                      for p, c, lab in zip(self.predss, self.colors, self.labels)]
        self.line = self.lines[0]
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', ha='left', fontsize=10, family='monospace',
                            zorder=6, bbox=_NOTE)
        ax.set_xlim(self.xs[0], self.xs[-1])
        ax.set_ylim(*self._ylim())
        ax.set_xlabel(xl if self.x.shape[1] - int((self.x == 1).all(0).sum()) <= 1 else f'{xl} (other features at their mean)')
        ax.set_ylabel('label, and p(class 1)' if self.cls else 'y')
        ax.legend(loc='lower right', fontsize=9, framealpha=.85)
        ax.grid(alpha=.25)
        return [*self.lines, self.text, *self._setup_stop_note(ax)]

    def _caption(self, k):
        r = self.recs
        step, loss = r.clock[k], r.losses[k]
        if not self.multi:
            if r.stopped(k): head = f"step {int(r.steps[k])} (last finite)  loss {_short(float(loss))}"
            else: head = ('' if step is None else f"step {int(step)}  ") + f"loss {_short(float(loss))}"
            if not hasattr(self, '_ptexts'): self._ptexts = _params_texts(r.params)  # all at once: cheaper per frame
            ps = self._ptexts[k]
            return head + ('\n' + ps if ps else '')
        w = max(len(str(lab)) for lab in self.labels)
        rows = [f"{str(lab):<{w}} "
                + (f"stopped at {int(rr.stop[0])}" if rr.stopped(k) else f"loss {_short(float(rr.losses[k]))}")
                for lab, rr in zip(self.labels, self.recss)]
        return '\n'.join(([] if step is None else [f"step {int(step)}"]) + rows)

    def update(self, k:int):
        "Move the fitted line(s) and caption to frame `k`."
        for line, p in zip(self.lines, self.predss): line.set_ydata(p[k])
        self.text.set_text(self._caption(k))
        self._update_stop_note(k)


def _cpu_copy(model):
    import copy
    return copy.deepcopy(model).cpu()


def _named_flat(model) -> tuple:
    "The model's parameters as (layout [(name, shape)], flat names, flat CPU vector)."
    named = [(k, p.detach().cpu()) for k, p in model.named_parameters()]
    layout = [(k, tuple(p.shape)) for k, p in named]
    return layout, flat_names(layout), torch.cat([p.reshape(-1) for _, p in named]).float()


class LossSurface:
    "The training loss over a grid of two parameters (the others held at the model's current values), by `vmap`."
    def __init__(self,
        learn:Learner, # the learner: its model, loss function and training data
        params=None, # two flat parameter names, e.g. ('w', 'b') or ('c1', 'c0'); default: the first two
    ):
        self.learn, self.model = learn, _cpu_model(learn.model)
        self.layout, self.all_names, self.base = _named_flat(self.model)
        if len(self.all_names) < 2:
            raise ValueError(f"a loss surface needs two parameters; the model has only {self.all_names}")
        if params is None: params = self.all_names[:2]
        params = tuple(params) if isinstance(params, (list, tuple)) else (params,)
        bad = [p for p in params if p not in self.all_names]
        if len(params) != 2 or bad or params[0] == params[1]:
            raise ValueError(f"params must name two different parameters of the model, got {params!r}; "
                             f"choose two of {self.all_names}")
        self.names, self.ij = params, [self.all_names.index(p) for p in params]
        self.held = {n: float(v) for i, (n, v) in enumerate(zip(self.all_names, self.base.tolist())) if i not in self.ij}

    def _unflat(self, theta):
        out, i = {}, 0
        for k, shape in self.layout:
            n = int(np.prod(shape))
            out[k] = theta[i:i + n].reshape(shape)
            i += n
        return out

    def point(self, p:dict) -> tuple | None:
        "The two coordinates of the parameters `p` (name -> tensor), or None if `p` lacks one of them."
        try: ts = [torch.as_tensor(p[k]).float() for k, _ in self.layout]
        except KeyError: return None
        if any(t.numel() != int(np.prod(s)) for t, (_, s) in zip(ts, self.layout)): return None  # another model's names
        flat = torch.cat([t.reshape(-1) for t in ts])
        return float(flat[self.ij[0]]), float(flat[self.ij[1]])

    def path(self, h:ParamHistory) -> tuple:
        "(steps, xy) of every finite record of history `h`."
        names = h.flat_names
        missing = [p for p in self.names if p not in names]
        if missing: raise ValueError(f"the history did not record {missing}: record them with ParamHistory(params=...)")
        keep = _finite_records(h)
        cols = [names.index(p) for p in self.names]
        return h.steps[keep], h.flat[keep][:, cols].numpy().astype(np.float64)

    def losses(self, thetas:torch.Tensor) -> torch.Tensor:
        "The training loss at each row of `thetas` (G, n_params): one batched call, chunked to bound memory."
        dl = self.learn.dls.train
        x, y, loss_func = dl.x.cpu(), dl.y.cpu(), self.learn.loss_func
        def loss(theta): return loss_func(functional_call(self.model, self._unflat(theta), (x,)), y)
        chunk = max(1, int(4e6 // max(1, len(x))))
        with torch.no_grad(): return torch.func.vmap(loss, chunk_size=chunk)(thetas)

    def grid(self, xlim, ylim, n:int=100) -> tuple:
        "(P1, P2, Z): n x n meshgrid of the two parameters and the loss on it."
        p1, p2 = np.linspace(*xlim, n), np.linspace(*ylim, n)
        P1, P2 = np.meshgrid(p1, p2)
        thetas = self.base.repeat(n * n, 1)
        thetas[:, self.ij[0]] = torch.from_numpy(P1.ravel()).float()
        thetas[:, self.ij[1]] = torch.from_numpy(P2.ravel()).float()
        return P1, P2, self.losses(thetas).reshape(n, n).double().numpy()


def _limits(core:np.ndarray, extra:np.ndarray, pad=.15) -> tuple:
    "Axis limits around the `core` points (start, optimum, truth) and the `extra` (path) points not too far from them."
    lo, hi = core.min(0), core.max(0)
    span = hi - lo
    big = span.max() if span.max() > 0 else max(1., np.abs(core).max())
    span = np.maximum(span, .25 * big)
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2, mid + span / 2
    if len(extra):
        near = extra[np.all((extra > lo - span) & (extra < hi + span), 1)]
        if len(near): lo, hi = np.minimum(lo, near.min(0)), np.maximum(hi, near.max(0))
    span = hi - lo
    return (lo[0] - pad * span[0], hi[0] + pad * span[0]), (lo[1] - pad * span[1], hi[1] + pad * span[1])


def _spans_decades(v, decades=2.) -> bool:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(len(v)) and v.min() > 0 and v.max() / v.min() > 10 ** decades


class SurfacePanel(Panel):
    "Loss contours over two parameters, the true values and the optimum (static); each run's path so far and point (moving)."
    name, needs = 'surface', ('two params',)

    def __init__(self, learn, recs, labels=None,
        params=None, # the two parameters (flat names); default: the first two, the others held at their final values
        n:int=100, # grid points per axis
        show_end:bool=False, # mark each run's final state (static pictures)
    ):
        super().__init__(learn, recs, labels)
        self.n, self.show_end = int(n), show_end
        if self.n < 2: raise ValueError(f"n must be >= 2 grid points per axis, got {n!r}")
        self.surf = surf = LossSurface(self.learn, params)
        self.paths = []  # (steps, xy) per run: the whole recorded path, revealed up to each frame's step
        for lrn, r in zip(self.learns, self.recss):
            h = _history(lrn)
            if h is not None: self.paths.append(surf.path(h))
            else: self.paths.append((np.asarray([0 if s is None else s for s in r.steps]),
                                     np.array([surf.point(p) for p in r.params])))
        self.cur = [np.array([surf.point(p) for p in r.params], dtype=np.float64) for r in self.recss]
        self.truth = surf.point(getattr(self.learn.dls, 'truth', None) or {})
        opt = _optimum(self.learn)
        self.opt = None if opt is None else surf.point(opt)
        core = [xy[:1] for _, xy in self.paths] + [np.array([p]) for p in (self.truth, self.opt) if p is not None]
        if self.opt is None and self.truth is None: core += [xy[-1:] for _, xy in self.paths]
        core = np.concatenate([c for c in core if len(c)])
        self.xlim, self.ylim = _limits(core, np.concatenate([xy for _, xy in self.paths]))
        self.P1, self.P2, self.Z = surf.grid(self.xlim, self.ylim, self.n)

    def setup(self, ax) -> list:
        from matplotlib.colors import LogNorm
        self.ax = ax
        Z = np.where(np.isfinite(self.Z), self.Z, np.nan)
        zmin, zmax = np.nanmin(Z), np.nanmax(Z)
        self.log = _spans_decades([zmin, zmax])
        if self.log:
            levels, norm = np.geomspace(zmin, zmax, 22), LogNorm(zmin, zmax)
        else: levels, norm = zmin + (zmax - zmin) * np.linspace(0, 1, 22) ** 2, None  # a bowl: rings evenly spaced in distance
        # Grey, low loss light: the coloured paths and markers stay the only colour on it.
        cf = ax.contourf(self.P1, self.P2, Z, levels=levels, norm=norm, cmap='Greys', alpha=.55)
        ax.contour(self.P1, self.P2, Z, levels=levels[::3], norm=norm, colors='0.45', linewidths=.6)
        cb = ax.figure.colorbar(cf, ax=ax, fraction=.05, pad=.02)
        cb.set_ticks(levels[::3], labels=[f"{v:.3g}" for v in levels[::3]])
        cb.ax.minorticks_off()
        cb.set_label('training loss' + (' (log scale)' if self.log else ''))
        if self.truth is not None:
            ax.plot(*self.truth, 'P', ms=12, c=COLORS['truth'], mec='white', mew=1, label='true', zorder=6)
        if self.opt is not None:
            ax.plot(*self.opt, '*', ms=17, c=COLORS['optimum'], mec='black', mew=.8, zorder=8,
                    label=optimum_label(self.learn.loss_func))
        self.lines, self.points = [], []
        for i, ((_, xy), c, lab) in enumerate(zip(self.paths, self.colors, self.labels)):
            mk = MARKERS[i % len(MARKERS)]
            ax.plot(*xy[0], mk, ms=9, mfc='white', mec=c, mew=2, zorder=6,
                    label=('start' if not self.multi else None) if i == 0 or not self.multi else None)
            if self.show_end: ax.plot(*xy[-1], 'X', ms=11, c=c, mec='black', mew=.6, zorder=7, label='end' if i == 0 else None)
            self.lines.append(ax.plot(*xy.T, '-', c=c, lw=2, alpha=.95, zorder=5, label=lab or 'path')[0])
            self.points.append(ax.plot(*xy[-1], mk, ms=9, c=c, mec='black', mew=.6, zorder=7)[0])
        if self.multi: ax.plot([], [], 'o', ms=8, mfc='white', mec='0.3', mew=2, label='start')
        ax.set_xlim(*self.xlim); ax.set_ylim(*self.ylim)
        ax.set_xlabel(self.surf.names[0]); ax.set_ylabel(self.surf.names[1])
        held = ', '.join(f"{k}={_short(v)}" for k, v in self.surf.held.items())
        if held: ax.set_title(f"held at final: {held}" if len(held) < 50 else 'others held at their final values', fontsize=9)
        # Below the axes: inside, it would hide the optimum or the path wherever it went.
        ax.legend(loc='upper center', bbox_to_anchor=(.5, 0), borderaxespad=4, ncol=3, fontsize=8.5, frameon=False)
        return [*self.lines, *self.points, *self._setup_stop_note(ax)]

    def update(self, k:int):
        "Reveal each path up to frame `k`'s step and put each point there."
        for line, pt, (steps, xy), cur, r in zip(self.lines, self.points, self.paths, self.cur, self.recss):
            s = r.steps[k]
            j = len(steps) if s is None else int(np.searchsorted(steps, s, 'right'))
            line.set_data(xy[:j, 0], xy[:j, 1])
            pt.set_data(cur[k, :1], cur[k, 1:])
        self._update_stop_note(k)


def outputs(model, params:list, x:torch.Tensor, chunk:int|None=None) -> torch.Tensor:
    "The model's outputs for `x` at each of `params` (dicts name -> tensor), (len(params), n, n_out): batched calls (vmap)."
    if not params: return torch.zeros(0)
    chunk = chunk or max(1, int(2e6 // max(1, len(x))))  # bounds the memory of one batched call
    def one(ps): return functional_call(model, ps, (x,))
    out = []
    with torch.no_grad():
        for i in range(0, len(params), chunk):
            ps = {k: torch.stack([p[k] for p in params[i:i + chunk]]) for k in params[0]}
            out.append(torch.func.vmap(one)(ps))
    return torch.cat(out)


def _accuracy_curve(learn, h:ParamHistory|None, recs, most:int=300) -> tuple:
    "(steps, training accuracy) at up to `most` records of history `h` (or at the `recs` drawn, without one)."
    x, y = learn.dls.train.x.cpu(), learn.dls.train.y.cpu().reshape(-1)
    if h is not None:
        keep = _finite_records(h)
        keep = keep[np.unique(np.linspace(0, len(keep) - 1, min(most, len(keep))).round().astype(int))]
        steps, params = h.steps[keep], [{k: v[i] for k, v in h.params.items()} for i in keep]
    else: steps, params = np.array([0 if s is None else s for s in recs.steps]), recs.params
    acc = (probabilities(outputs(_cpu_model(learn.model), params, x), learn.loss_func).argmax(-1) == y).float().mean(-1)
    return np.asarray(steps), acc.numpy()


class LossPanel(Panel):
    """Each run's training loss against step (growing with the frames), log scale when it spans decades; the optimum's
    loss dotted; for a classifier, the training accuracy too (dashed, on the right axis)."""
    name = 'loss'

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        self.curves = []
        for lrn, r in zip(self.learns, self.recss):
            h = _history(lrn)
            if h is not None:
                keep = _finite_records(h)
                self.curves.append((h.steps[keep], h.losses.numpy()[keep].astype(np.float64)))
            else: self.curves.append((np.array([0 if s is None else s for s in r.steps]), r.losses.astype(np.float64)))
        lrn = self.learn
        opt = _optimum(lrn)
        self.opt = None if opt is None else lrn.train_loss(opt)
        self.accs = [_accuracy_curve(lrn, _history(lrn), r) for lrn, r in zip(self.learns, self.recss)] \
            if is_classifier(lrn) else []

    def setup(self, ax) -> list:
        self.ax = ax
        allv = np.concatenate([v for _, v in self.curves] + ([[self.opt]] if self.opt is not None else []))
        allv = allv[np.isfinite(allv)]
        self.log = _spans_decades(allv)
        if self.log: ax.set_yscale('log')
        if self.opt is not None:
            ax.axhline(self.opt, ls=':', c=COLORS['optimum'], lw=2.5, label=optimum_label(self.learn.loss_func))
        self.lines, self.points = [], []
        for i, ((st, v), c, lab) in enumerate(zip(self.curves, self.colors, self.labels)):
            self.lines.append(ax.plot(st, v, '-', c=c, lw=2, label=lab or 'training loss')[0])
            self.points.append(ax.plot(st[-1:], v[-1:], MARKERS[i % len(MARKERS)], ms=8, c=c, mec='black', mew=.6, zorder=6)[0])
        last = max(int(st[-1]) for st, _ in self.curves if len(st))
        ax.set_xlim(0, max(last, 1))
        lo, hi = allv.min(), allv.max()
        if self.log: ax.set_ylim(lo / 1.5, hi * 1.5)
        else: ax.set_ylim(min(0, lo), hi + .05 * (hi - min(0, lo)) + 1e-12)
        ax.set_xlabel('step'); ax.set_ylabel('training loss' + (' (log scale)' if self.log else ''))
        ax.grid(alpha=.25, which='both' if not self.log else 'major')
        handles = ax.get_legend_handles_labels()
        self.acc_lines = self._setup_accuracy(ax, handles) if self.accs else []
        ax.legend(*handles, loc='center right' if self.accs else 'upper right', fontsize=9, framealpha=.85)
        return [*self.lines, *self.points, *self.acc_lines, *self._setup_stop_note(ax)]

    def _setup_accuracy(self, ax, handles) -> list:
        "The training accuracy of each run on a second y axis (0 to 1, right), dashed; its legend entries join `handles`."
        self.ax2 = ax2 = ax.twinx()
        lines = []
        for i, ((st, acc), c, lab) in enumerate(zip(self.accs, self.colors, self.labels)):
            c = COLORS['accuracy'] if not self.multi else c
            lines.append(ax2.plot(st, acc, '--', c=c, lw=1.8, label='training accuracy' if i == 0 else None)[0])
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel('training accuracy', color=COLORS['accuracy'] if not self.multi else 'black')
        h2, l2 = ax2.get_legend_handles_labels()
        handles[0].extend(h2); handles[1].extend(l2)
        return lines

    def update(self, k:int):
        "Grow each loss curve (and accuracy curve) up to frame `k`'s step."
        for line, pt, (st, v), r in zip(self.lines, self.points, self.curves, self.recss):
            s = r.steps[k]
            j = len(st) if s is None else max(1, int(np.searchsorted(st, s, 'right')))
            line.set_data(st[:j], v[:j])
            pt.set_data(st[j - 1:j], v[j - 1:j])
        for line, (st, acc), r in zip(self.acc_lines, self.accs, self.recss):
            s = r.steps[k]
            j = len(st) if s is None else max(1, int(np.searchsorted(st, s, 'right')))
            line.set_data(st[:j], acc[:j])
        self._update_stop_note(k)


PANELS = {'fit': FitPanel, 'surface': SurfacePanel, 'loss': LossPanel}


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


def panel_cells(panels, n_runs:int=1, split:bool=False) -> int:
    "How many axes `panels` make for `n_runs` runs (one per panel, or one per panel and run when `split`)."
    return len(_panel_list(panels)) * (n_runs if split else 1)


def figure_size(cells:int, split:bool=False, ncols:int|None=None) -> tuple:
    "The (width, height) in inches of a `Frames` figure of `cells` axes."
    nc = ncols or (_grid_cols(cells) if split else cells)
    nr = -(-cells // nc)
    if cells == 1: return (6.4, 4.8)
    return (4.6 * nc, 3.7 * nr) if split else (5.2 * nc, 4.8 * nr)


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
    ):
        panels = _panel_list(panels)
        unknown = [p for p in panels if not (callable(p) or isinstance(p, str) and p in PANELS)]
        if unknown or not panels:
            raise ValueError(f"unknown panels {unknown or panels!r}: choose from {tuple(PANELS)}, or give a Panel subclass")
        learns, recss = _listify(learn), _listify(recs)
        if len(learns) != len(recss): raise ValueError(f"{len(learns)} learners but {len(recss)} Records: give one per learner")
        if len({len(r) for r in recss}) > 1:
            raise ValueError(f"every Records must have as many frames, got {[len(r) for r in recss]}: use Records.aligned")
        labels = list(labels) if labels is not None else [None] * len(learns)
        make = [PANELS[_panel_name(p, learns)] if isinstance(p, str) else p for p in panels]
        for m in make:  # what a panel needs is checked before any drawing
            if isinstance(m, type) and issubclass(m, Panel):
                for lrn in learns: m.check(lrn)
        if split: cells = [(m, [i]) for i in range(len(learns)) for m in make]
        else: cells = [(m, list(range(len(learns)))) for m in make]
        self.recs, self.recss = recss[0], recss
        if ax is not None:
            if len(cells) != 1: raise ValueError(f"ax= draws one panel, but {len(cells)} were asked: pass fig= or neither")
            axs, fig = [ax], ax.figure
        else:
            nc = ncols or (_grid_cols(len(cells)) if split else len(cells))
            nr = -(-len(cells) // nc)
            size = figure_size(len(cells), split, ncols)
            if fig is None: fig = Figure(figsize=size, dpi=dpi)
            else: fig.set_size_inches(size); fig.set_dpi(dpi)
            grid = fig.subplots(nr, nc, squeeze=False).ravel()
            for a in grid[len(cells):]: a.set_visible(False)
            axs = grid[:len(cells)]
        self.fig, self.axs = fig, list(axs)
        self.panels = [m([learns[i] for i in idx] if len(idx) > 1 else learns[idx[0]],
                         [recss[i] for i in idx] if len(idx) > 1 else recss[idx[0]],
                         labels=[labels[i] for i in idx]) for m, idx in cells]
        self.artists = [a for p, a_ in zip(self.panels, self.axs) for a in p.setup(a_)]
        for a_, t in zip(self.axs, titles or []):
            if t: a_.set_title(t, fontsize=11)
        if ax is None: fig.tight_layout()

    def __len__(self): return len(self.recs)

    def draw(self, k:int) -> list:
        "Set every moving artist to frame `k`; return them (a FuncAnimation `func`)."
        for p in self.panels: p.update(k)
        return self.artists

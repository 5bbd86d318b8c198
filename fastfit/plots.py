"Pictures of a fit: one function draws a frame (`Frames.draw`); `show_fit`, `animate` and the exports all use it."
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from fastai.learner import Learner
from fastcore.basics import patch
from matplotlib.figure import Figure
from torch.func import functional_call

from .data import RegDataLoaders, SynthData
from .history import ParamHistory
from .models import flat_names

__all__ = ['COLORS', 'frame_idxs', 'Frames', 'FitPanel', 'PANELS', 'show_xy', 'show_dls']

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey.
COLORS = dict(data='#0072B2', valid='#56B4E9', fit='#D55E00', truth='#000000', optimum='#009E73',
              path='#CC79A7', extra=('#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9', '#F0E442'))


def frame_idxs(n_records:int, frames:int) -> np.ndarray:
    "`frames` record indices spread evenly over `n_records` (fewer if there are fewer records), first and last kept."
    if n_records <= 0: return np.zeros(0, dtype=np.int64)
    k = max(1, min(int(frames), n_records))
    if k == 1: return np.array([n_records - 1])
    return np.floor(np.linspace(0, n_records - 1, k) + .5).astype(np.int64)


def _history(learn) -> ParamHistory | None:
    h = getattr(learn, 'param_history', None)
    return h if isinstance(h, ParamHistory) and len(h) else None


def require_history(learn, what) -> ParamHistory:
    "The learner's recorded history, or a clear error saying how to get one."
    h = getattr(learn, 'param_history', None)
    if not isinstance(h, ParamHistory):
        raise ValueError(f"{what} needs the parameter history: create the learner with regression_learner(..., history=True)")
    if h.step == 0:
        raise ValueError(f"{what} needs a fit first: the history holds no step yet (call learn.fit(n) before)")
    return h


class Records:
    "The states drawn: parameters (by name), step and loss of each frame."
    def __init__(self, params:list, steps, losses): self.params, self.steps, self.losses = params, np.asarray(steps), np.asarray(losses)
    def __len__(self): return len(self.params)

    @classmethod
    def from_history(cls, h:ParamHistory, frames:int):
        idx = frame_idxs(len(h), frames)
        ps, steps, losses = h.params, h.steps, h.losses.numpy()
        return cls([{k: v[i] for k, v in ps.items()} for i in idx], steps[idx], losses[idx])

    @classmethod
    def current(cls, learn):
        "The model as it is now (step: the history's last, if any)."
        dl = learn.dls.train
        with torch.no_grad(): loss = float(learn.loss_func(learn.model(dl.x), dl.y))
        h = getattr(learn, 'param_history', None)
        step = h.step if isinstance(h, ParamHistory) else None
        return cls([{k: p.detach().cpu() for k, p in learn.model.named_parameters()}], [step], [loss])


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

def _params_text(p:dict, max_scalars=4) -> str:
    names = flat_names((k, v.shape) for k, v in p.items())
    if len(names) > max_scalars: return ''
    vals = torch.cat([v.reshape(-1) for v in p.values()]).tolist()
    return '  '.join(f"{n}={_short(v)}" for n, v in zip(names, vals))


class FitPanel:
    "The data, the true line, the least-squares optimum (static) and the fitted line with a caption (moving)."
    name, n_grid = 'fit', 200

    def __init__(self, learn, recs:Records):
        self.learn, self.recs = learn, recs
        dls, model = learn.dls, learn.model
        x, y = dls.train.x.cpu(), dls.train.y.cpu()
        self.xv, self.yv = (dls.valid.x.cpu(), dls.valid.y.cpu()) if dls.has_valid else (None, None)
        xall = x if self.xv is None else torch.cat([x, self.xv])
        self.x, self.y, self.feat = x, y, _plot_feature(xall)
        lo, hi = float(xall[:, self.feat].min()), float(xall[:, self.feat].max())
        pad = (hi - lo) * .02
        xg = x.mean(0, keepdim=True).repeat(self.n_grid, 1)
        xg[:, self.feat] = torch.linspace(lo - pad, hi + pad, self.n_grid)
        self.xg, self.xs = xg, xg[:, self.feat].numpy()
        cpu_model = model if next(model.parameters()).device.type == 'cpu' else _cpu_copy(model)
        with torch.no_grad():
            self.preds = np.stack([functional_call(cpu_model, p, (xg,)).flatten().numpy() for p in recs.params])
            self.truth = _truth_curve(getattr(dls, 'truth', None), xg)
            try: self.opt = functional_call(cpu_model, learn.ols(), (xg,)).flatten().numpy()
            except TypeError: self.opt = None

    def _ylim(self):
        ys = [self.y.numpy().ravel()] + ([self.yv.numpy().ravel()] if self.yv is not None else [])
        if self.truth is not None: ys.append(self.truth.numpy())
        lo, hi = min(a.min() for a in ys), max(a.max() for a in ys)
        span = max(hi - lo, 1e-6)
        # Fitted lines far off (early frames, divergence) may leave the frame, not shrink the data to a dot.
        p = np.clip(self.preds[np.isfinite(self.preds)], lo - span, hi + span)
        if p.size: lo, hi = min(lo, p.min()), max(hi, p.max())
        pad = (hi - lo) * .05
        return lo - pad, hi + pad

    def setup(self, ax) -> list:
        "Draw what does not move; return the artists that do."
        self.ax = ax
        xl = 'x' if self.x.shape[1] == 1 else f'x[{self.feat}]'
        ax.scatter(self.x[:, self.feat], self.y[:, 0], s=14, c=COLORS['data'], alpha=.65, lw=0, label='train data')
        if self.xv is not None:
            ax.scatter(self.xv[:, self.feat], self.yv[:, 0], s=14, c=COLORS['valid'], alpha=.65, lw=0, marker='s', label='valid data')
        if self.truth is not None: ax.plot(self.xs, self.truth, '--', c=COLORS['truth'], lw=1.5, label='true')
        if self.opt is not None: ax.plot(self.xs, self.opt, ':', c=COLORS['optimum'], lw=2.5, label='least squares')
        self.line, = ax.plot(self.xs, self.preds[-1], '-', c=COLORS['fit'], lw=2.5, label='fit', zorder=5)
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', ha='left', fontsize=10, family='monospace',
                            zorder=6, bbox=dict(boxstyle='round', fc='white', ec='0.7', alpha=.85))
        ax.set_xlim(self.xs[0], self.xs[-1])
        ax.set_ylim(*self._ylim())
        ax.set_xlabel(xl if self.x.shape[1] - int((self.x == 1).all(0).sum()) <= 1 else f'{xl} (other features at their mean)')
        ax.set_ylabel('y')
        ax.legend(loc='lower right', fontsize=9, framealpha=.85)
        ax.grid(alpha=.25)
        return [self.line, self.text]

    def update(self, k:int):
        "Move the fitted line and caption to frame `k`."
        self.line.set_ydata(self.preds[k])
        step, loss = self.recs.steps[k], self.recs.losses[k]
        head = ('' if step is None else f"step {int(step)}  ") + f"loss {_short(float(loss))}"
        ps = _params_text(self.recs.params[k])
        self.text.set_text(head + ('\n' + ps if ps else ''))


def _cpu_copy(model):
    import copy
    return copy.deepcopy(model).cpu()


PANELS = {'fit': FitPanel}


class Frames:
    "A figure of panels side by side, and `draw(k)`: every moving artist set to frame `k`."
    def __init__(self,
        learn:Learner, # a fitted learner (with history), or any learner for the current state
        recs:Records, # the states to draw
        panels=('fit',), # names from `PANELS`
        dpi:int=100, # pixels per inch (640x480 per panel at 100)
        fig=None, ax=None, # draw into an existing figure/axes instead of a new one
    ):
        panels = (panels,) if isinstance(panels, str) else tuple(panels)
        unknown = [p for p in panels if p not in PANELS]
        if unknown or not panels:
            raise ValueError(f"unknown panels {unknown or panels!r}: choose from {tuple(PANELS)}")
        self.recs = recs
        if ax is not None: axs, fig = [ax], ax.figure
        else:
            fig = Figure(figsize=(6.4 * len(panels) if len(panels) < 2 else 5.2 * len(panels), 4.8), dpi=dpi)
            axs = fig.subplots(1, len(panels), squeeze=False)[0]
        self.fig, self.axs = fig, list(axs)
        self.panels = [PANELS[p](learn, recs) for p in panels]
        self.artists = [a for p, ax in zip(self.panels, self.axs) for a in p.setup(ax)]
        if ax is None: fig.tight_layout()

    def __len__(self): return len(self.recs)

    def draw(self, k:int) -> list:
        "Set every moving artist to frame `k`; return them (a FuncAnimation `func`)."
        for p in self.panels: p.update(k)
        return self.artists


@patch
def show_fit(self:Learner, ax=None, **kwargs):
    "Plot the data, the current fit, the true line and the least-squares optimum."
    if ax is None: _, ax = plt.subplots(figsize=(6.4, 4.8))
    fr = Frames(self, Records.current(self), ax=ax, **kwargs)
    fr.draw(0)
    return ax


@patch
def plot_params(self:Learner, figsize=None):
    "Each recorded parameter against step, with the true value (dashed) and the least-squares optimum (dotted)."
    h = require_history(self, 'plot_params')
    names, flat, steps = h.flat_names, h.flat.numpy(), h.steps
    truth = _flat_named(getattr(self.dls, 'truth', None), h)
    try: opt = _flat_named(self.ols(), h)
    except TypeError: opt = None
    n = len(names)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=figsize or (4.2 * cols, 3.2 * rows), squeeze=False)
    for i, (ax, name) in enumerate(zip(axs.flat, names)):
        ax.plot(steps, flat[:, i], c=COLORS['fit'], lw=2, label=name)
        if truth is not None: ax.axhline(truth[i], ls='--', c=COLORS['truth'], lw=1.2, label='true')
        if opt is not None: ax.axhline(opt[i], ls=':', c=COLORS['optimum'], lw=2, label='least squares')
        ax.set_title(name); ax.set_xlabel('step'); ax.grid(alpha=.25)
        ax.legend(fontsize=8)
    for ax in axs.flat[n:]: ax.set_visible(False)
    fig.tight_layout()
    return fig


def _flat_named(d, h):
    "`d` (name -> value) flattened in the order of the history's columns, or None if it does not name them all."
    if not d: return None
    try: return np.concatenate([np.asarray(torch.as_tensor(d[k]).float().reshape(-1)) for k, s, _ in h.layout])
    except KeyError: return None


def show_xy(x, y, axs=None, title=None, **kwargs):
    "Scatter of y against each non-constant feature of x (one panel each)."
    x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()
    feats = [i for i in range(x.shape[1]) if float(x[:, i].max() - x[:, i].min()) > 0] or [0]
    if axs is None: _, axs = plt.subplots(1, len(feats), figsize=(4.8 * len(feats), 4), squeeze=False)
    axs = np.asarray(axs).ravel()
    for ax, i in zip(axs, feats):
        ax.scatter(x[:, i], y[:, 0], s=14, c=COLORS['data'], alpha=.7, lw=0, **kwargs)
        ax.set_xlabel('x' if x.shape[1] == 1 else f'x[{i}]'); ax.set_ylabel('y'); ax.grid(alpha=.25)
    if title: axs[0].figure.suptitle(title, fontsize=10)
    return axs


def show_dls(dls:RegDataLoaders, batch=False):
    "Train and validation scatter side by side, on shared y limits (seed 003's `figure1`)."
    x, y = dls.train.one_batch() if batch else (dls.train.x, dls.train.y)
    sets = [('train batch' if batch else 'train', x.cpu(), y.cpu(), COLORS['data'])]
    if dls.has_valid and not batch: sets.append(('valid', dls.valid.x.cpu(), dls.valid.y.cpu(), COLORS['valid']))
    f = _plot_feature(dls.train.x.cpu())
    fig, axs = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), sharey=True, squeeze=False)
    for ax, (name, xs, ys, c) in zip(axs[0], sets):
        ax.scatter(xs[:, f], ys[:, 0], s=14, c=c, alpha=.8, lw=0)
        ax.set_title(f'{name} ({len(xs)})'); ax.set_xlabel('x' if xs.shape[1] == 1 else f'x[{f}]'); ax.grid(alpha=.25)
    axs[0, 0].set_ylabel('y')
    fig.tight_layout()
    return axs[0]


@patch
def show(self:SynthData, **kwargs):
    "Scatter of y against each non-constant feature (one panel each)."
    return show_xy(self.x, self.y, title=repr(self), **kwargs)

@patch
def show(self:RegDataLoaders, **kwargs):  # noqa: F811 (fastcore @patch: a method of another class)
    "Train and validation scatter side by side."
    return show_dls(self, **kwargs)

@patch
def show_batch(self:RegDataLoaders, **kwargs):
    "Scatter of one training batch."
    return show_dls(self, batch=True, **kwargs)


"Several fits of one problem drawn together: `compare_optimizers` (one colour each) and `lr_sweep` (small multiples)."
from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from fastai.optimizer import SGD
from matplotlib.figure import Figure

from .data import RegDataLoaders, check_positive
from .learner import regression_learner
from .models import LinearModel
from .panels import Frames
from .player import FitAnimation, animation_of
from .plots import check_frames
from .records import Records, _finite_records, require_history
from .writers import check_export, check_fps

__all__ = ['fate', 'Runs', 'Comparison', 'LRSweep', 'compare_optimizers', 'lr_sweep']


def _opt_loss(learn) -> float | None:
    "The training loss at the least-squares optimum, when the model has one."
    try: return learn.train_loss(learn.ols())
    except TypeError: return None


def fate(learn, stop=None) -> str:
    "'diverged', 'oscillating', 'slow' or 'converging': what the recorded history of `learn`'s fit did."
    h = require_history(learn, 'fate')
    keep = _finite_records(h)
    if stop is not None or len(keep) < 2: return 'diverged'
    losses, flat = h.losses.numpy()[keep].astype(np.float64), h.flat[keep].numpy().astype(np.float64)
    l0, lf = losses[0], losses[-1]
    if lf > l0: return 'diverged'
    # Oscillating: a parameter's step changes sign at most steps (overshooting the valley), or the loss keeps rising.
    d = np.diff(flat, axis=0)
    flips = 0.
    for col in d.T:
        big = col[np.abs(col) > 1e-3 * np.abs(col).max()] if np.abs(col).max() > 0 else col[:0]
        s = np.sign(big)
        if len(s) > 3: flips = max(flips, float(np.mean(s[1:] != s[:-1])))
    rises = float(np.mean(np.diff(losses) > 1e-6 * abs(l0)))
    if flips > .6 or rises > .2: return 'oscillating'
    opt = _opt_loss(learn)
    if opt is not None: return 'converging' if lf - opt <= max(.1 * abs(opt), 1e-3 * (l0 - opt)) else 'slow'
    # Without an optimum: slow when the last tenth of the steps still took a real share of the loss off.
    recent = losses[int(.9 * (len(losses) - 1))] - lf
    return 'slow' if recent > .02 * (l0 - lf) else 'converging'


def _fit_quietly(learn, epochs):
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn


class Runs:
    "Several fitted learners of one problem, drawn on shared panels (or small multiples) and animated in step."
    panels, split = ('fit', 'surface', 'loss'), False

    def __init__(self,
        learners:dict, # label -> fitted learner (with history)
        stops:dict|None=None, # label -> (step, reason) for runs stopped early
    ):
        self.learners, self.stops = dict(learners), dict(stops or {})

    @property
    def labels(self) -> list: return [str(k) for k in self.learners]
    def titles(self) -> list|None: return None

    def frames(self, frames:int=100, panels=None, dpi:int=100, fig=None) -> Frames:
        "The `Frames` of every run on one clock: frame k is the same step in each."
        frames, dpi = check_frames(frames, dpi, panels or self.panels, len(self.learners), self.split)
        learns = list(self.learners.values())
        hists = [require_history(lrn, type(self).__name__) for lrn in learns]
        recs = Records.aligned(hists, frames, [self.stops.get(k) for k in self.learners])
        return Frames(learns, recs, panels=panels or self.panels, dpi=dpi, fig=fig, labels=self.labels,
                      split=self.split, titles=self.titles())

    def show(self,
        panels=None, # names from `PANELS` or `Panel` subclasses (default: the class's)
        dpi:int=100, # resolution of the new figure
        fig=None, # an empty matplotlib figure to draw into (its size and dpi are set); default: a new pyplot figure
    ) -> None:
        "Draw the runs' final state (with pyplot, shown by the notebook; returns None, as fastai's `show_*` do)."
        if fig is not None and not isinstance(fig, Figure):
            raise TypeError(f"fig must be a matplotlib Figure (e.g. `plt.figure()`), got {type(fig).__name__}: {fig!r}")
        fr = self.frames(1, panels, dpi, fig=plt.figure() if fig is None else fig)
        fr.draw(len(fr) - 1)

    def animate(self, frames:int=100, fps:float=20, panels=None, dpi:float=100) -> FitAnimation:
        "A matplotlib `FuncAnimation` of every run in step (in a notebook: fastfit's player, or the GIF where outputs are sanitised)."
        fps = check_fps(fps)
        return animation_of(self.frames(frames, panels, dpi), fps)

    def save_animation(self, fname, frames:int=100, fps:float=20, panels=None, dpi:float=80) -> Path:
        "Write the animation to `fname` (.gif, .html, .mp4 or .png, atomically) and return its path."
        write = check_export(fname, fps)  # a bad suffix, fps or destination fails before any drawing
        return write(self.frames(frames, panels, dpi), Path(fname), check_fps(fps))

    def final_losses(self) -> dict:
        "label -> training loss at the end of the run (the last finite record)."
        out = {}
        for k, lrn in self.learners.items():
            h = lrn.param_history
            keep = _finite_records(h)
            out[k] = float(h.losses[keep[-1]]) if len(keep) else math.nan
        return out

    def __len__(self): return len(self.learners)


class Comparison(Runs):
    "Optimizers fitted from the same start: all paths on one loss surface, all fitted lines on the data."
    def __repr__(self):
        rows = [f"  {k:<12} lr={lrn.lr:<8g} final loss {v:.4g}" + (f"  ({self.stops[k][1]})" if k in self.stops else '')
                for (k, lrn), v in zip(self.learners.items(), self.final_losses().values())]
        return f"Comparison of {len(self)} optimizers:\n" + '\n'.join(rows)


class LRSweep(Runs):
    "One fit per learning rate from the same start: small multiples, each titled with its lr and its fate."
    panels, split = ('fit',), True

    def __init__(self, learners:dict, stops=None):
        super().__init__(learners, stops)
        self.fates = {lr: fate(lrn, self.stops.get(lr)) for lr, lrn in self.learners.items()}

    @property
    def labels(self) -> list: return [f"lr={lr:g}" for lr in self.learners]
    def titles(self) -> list: return [f"lr={lr:g}: {self.fates[lr]}" for lr in self.learners]

    def __repr__(self):
        losses = self.final_losses().values()
        rows = [f"  lr={lr:<10g} {self.fates[lr]:<12} final loss {v:.4g}" for lr, v in zip(self.learners, losses)]
        return f"LRSweep of {len(self)} learning rates:\n" + '\n'.join(rows)


def _opt_name(f) -> str:
    if isinstance(f, functools.partial):
        args = ', '.join(f"{k}={v}" for k, v in f.keywords.items())
        return f"{_opt_name(f.func)}({args})" if args else _opt_name(f.func)
    return getattr(f, '__name__', type(f).__name__)


def _start_model(dls, model):
    if not isinstance(dls, RegDataLoaders):
        raise TypeError(f"dls must be RegDataLoaders (from `SynthData.dataloaders()` or `RegDataLoaders.from_arrays`), "
                        f"got {type(dls).__name__}")
    return LinearModel(n_in=dls.n_in) if model is None else model


def _fit_from(dls, model0, epochs, **kwargs):
    "Fit a copy of `model0` (so every run starts from the same parameters); (learner, (step, reason) if it diverged)."
    learn = regression_learner(dls, model=copy.deepcopy(model0), **kwargs)
    _fit_quietly(learn, epochs)
    # RegLearner stops a fit whose loss becomes NaN/inf; its history then ends at the last finite step.
    return learn, None if learn.diverged is None else (learn.diverged, 'diverged: loss NaN/inf')


def compare_optimizers(
    dls:RegDataLoaders, # the data
    opts, # dict label -> fastai optimizer (e.g. {'SGD': SGD, 'momentum': partial(SGD, mom=.9), 'Adam': Adam}), or a list
    model=None, # the model every optimizer starts from (copied; default `LinearModel(n_in=dls.n_in)`)
    lr=.1, # learning rate: one for all, or a dict label -> lr
    epochs:int=50, # epochs of each fit
    loss_func=None, # default MSE
) -> Comparison:
    "Fit one copy of `model` per optimizer, from the same initial parameters; a `Comparison` to show or animate."
    if isinstance(opts, (list, tuple)): opts = {_opt_name(f): f for f in opts}
    if not isinstance(opts, dict) or not opts:
        raise TypeError(f"opts must be a non-empty dict label -> optimizer (or a list of optimizers), got {opts!r}")
    bad = [k for k, f in opts.items() if not callable(f)]
    if bad: raise TypeError(f"opts[{bad[0]!r}] must be a fastai optimizer function such as SGD or Adam, got {opts[bad[0]]!r}")
    lrs = lr if isinstance(lr, dict) else {k: lr for k in opts}
    missing = [k for k in opts if k not in lrs]
    if missing: raise ValueError(f"lr is a dict without an entry for {missing}: give one lr per optimizer in opts")
    epochs = check_positive('epochs', epochs, int)
    model0 = _start_model(dls, model)
    learners, stops = {}, {}
    for k, f in opts.items():
        learners[k], stop = _fit_from(dls, model0, epochs, loss_func=loss_func, opt_func=f, lr=lrs[k])
        if stop: stops[k] = stop
    return Comparison(learners, stops)


def lr_sweep(
    dls:RegDataLoaders, # the data
    lrs, # the learning rates, e.g. (1e-3, 1e-2, .1, 1.)
    epochs:int=50, # epochs of each fit
    model=None, # the model every run starts from (copied; default `LinearModel(n_in=dls.n_in)`)
    loss_func=None, # default MSE
    opt_func=SGD, # the optimizer of every run
) -> LRSweep:
    "Fit one copy of `model` per learning rate, from the same start; an `LRSweep` of small multiples titled with each fate."
    lrs = [lrs] if isinstance(lrs, (int, float)) else list(lrs)
    if not lrs: raise ValueError("lrs must hold at least one learning rate, e.g. (1e-3, 1e-2, .1, 1.)")
    lrs = [check_positive('lrs', v) for v in lrs]
    if len(set(lrs)) != len(lrs): raise ValueError(f"lrs holds a learning rate twice: {lrs}")
    epochs = check_positive('epochs', epochs, int)
    model0 = _start_model(dls, model)
    learners, stops = {}, {}
    for v in lrs:
        learners[v], stop = _fit_from(dls, model0, epochs, loss_func=loss_func, opt_func=opt_func, lr=v)
        if stop: stops[v] = stop
    return LRSweep(learners, stops)

"""Several fits of one problem drawn together: `compare_optimizers` and `compare_batch_sizes` (one colour each), `lr_sweep`
(small multiples, or a stability map of many lrs) and `compare_scaling` (small multiples). Runs of one model on one data
set are fitted together as one batch (`fastfit.batched`), each with its own seeded batch order: the same call gives the
same runs, and two runs of one optimizer are one run twice."""
from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from fastai.optimizer import SGD
from matplotlib.figure import Figure

from .batched import StackedRuns, fit_stacked, fit_together
from .classify import classification_learner
from .curvature import Curvature
from .data import ClsDataLoaders, RegDataLoaders, SynthData, TensorDL, check_dls, check_positive, rebatch
from .fastai_private import fresh_copy
from .learner import regression_learner
from .models import LinearModel, LogisticModel, SoftmaxModel, copy_model
from .panels import EqualSurfacePanel, Frames, LossPanel, SamplesLossPanel, SurfacePanel
from .panels.loss import samples_per_step
from .panels.sweep import FATES, fate, fates, optimum_loss, records_fates
from .player import FitAnimation, animation_of
from .plots import check_frames
from .records import Records, _finite_records, require_history
from .writers import check_export, check_fps

__all__ = ['fate', 'Runs', 'Comparison', 'LRSweep', 'BatchSizes', 'Scaling', 'Curvature', 'compare_optimizers', 'lr_sweep',
           'compare_batch_sizes', 'compare_scaling']


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
        # runs fitted together keep their learners lazily (`StackedRuns`: each made when asked for)
        self.learners = learners if isinstance(learners, StackedRuns) else dict(learners)
        self.stops = dict(stops or {})

    @property
    def labels(self) -> list:
        "One legend label per run."
        return [str(k) for k in self.learners]

    def titles(self) -> list|None:
        "One title per run for small multiples (None: no titles)."
        return None

    def records(self, hists:list, frames:int) -> list:
        "One `Records` per run on one clock: frame k is the same step in each."
        return Records.aligned(hists, frames, [self.stops.get(k) for k in self.learners])

    def frames(self, frames:int=100, panels=None, dpi:int=100, fig=None) -> Frames:
        "The `Frames` of every run on one clock: frame k is the same step in each."
        frames, dpi = check_frames(frames, dpi, panels or self.panels, len(self.learners), self.split)
        learns = list(self.learners.values())
        hists = [require_history(lrn, f"{type(self).__name__}'s run {lab}") for lab, lrn in zip(self.labels, learns)]
        titles, per = self.titles() if self.split else None, len(_listify_panels(panels or self.panels))
        # one title per run, on the first of its axes (small multiples have one axes per run and panel)
        if titles and self.split: titles = [t if j == 0 else None for t in titles for j in range(per)]
        return Frames(learns, self.records(hists, frames), panels=panels or self.panels, dpi=dpi, fig=fig,
                      labels=self.labels, split=self.split, titles=titles)

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

    def save_animation(self, fname, frames:int=100, fps:float=20, panels=None, dpi:float=100) -> Path:
        "Write the animation to `fname` (.gif, .html, .mp4 or .png, atomically) and return its path."
        write = check_export(fname, fps)  # a bad suffix, fps or destination fails before any drawing
        return write(self.frames(frames, panels, dpi), Path(fname), check_fps(fps))

    def final_losses(self) -> dict:
        "label -> training loss at the end of the run (the last finite record)."
        known = {}
        if isinstance(self.learners, StackedRuns):  # the runs still going at the end, from the batch's records
            labels, L, _ = self.learners.records()
            known = {k: v for k, v in zip(labels, L[:, -1].astype(float).tolist()) if math.isfinite(v)}  # else: its last finite
        out = {}
        for k in self.learners:
            if k in known: out[k] = known[k]; continue
            h = self.learners[k].param_history
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
    """One fit per learning rate from the same start. A few lrs: small multiples, each titled with its lr and its fate;
    more than `max_multiples`: the stability map ('sweep': the loss against the lr, each coloured by its fate)."""
    max_multiples = 9

    def __init__(self, learners:dict, stops=None):
        super().__init__(learners, stops)
        opt = optimum_loss(next(iter(self.learners.values())))  # one problem: one optimum for every run
        if isinstance(self.learners, StackedRuns):  # judged from the batch's records, without a learner each
            labels, L, F = self.learners.records()
            self.fates = {k: 'diverged' for k in self.learners}
            self.fates.update(zip(labels, records_fates(L, F.numpy(), opt, lambda i: self.learners[labels[i]])))
        else:
            self.fates = dict(zip(self.learners, fates(list(self.learners.values()), [self.stops.get(lr) for lr in self.learners], opt)))
        many = len(self.learners) > self.max_multiples
        self.panels, self.split = (('sweep',), False) if many else (('fit',), True)

    @property
    def labels(self) -> list: return [f"lr={lr:g}" for lr in self.learners]
    def titles(self) -> list: return [f"lr={lr:g}: {self.fates[lr]}" for lr in self.learners]

    def frames(self, frames:int=100, panels=None, dpi:int=100, fig=None) -> Frames:
        "The `Frames` of every run on one clock; the stability map ('sweep') draws them all on one axes."
        if 'sweep' in _listify_panels(panels or self.panels):
            split, self.split = self.split, False
            try: return super().frames(frames, panels, dpi, fig)
            finally: self.split = split
        return super().frames(frames, panels, dpi, fig)

    def counts(self) -> dict:
        "fate -> how many runs met it."
        fates = list(self.fates.values())
        return {f: fates.count(f) for f in FATES if f in fates}

    def __repr__(self):
        losses = list(self.final_losses().values())
        lrs = list(self.learners)
        show = range(len(lrs)) if len(lrs) <= 20 else np.unique(np.linspace(0, len(lrs) - 1, 12).round().astype(int))
        rows = [f"  lr={lrs[i]:<10g} {self.fates[lrs[i]]:<12} final loss {losses[i]:.4g}" for i in show]
        counts = ', '.join(f"{n} {f}" for f, n in self.counts().items())
        more = '' if len(show) == len(lrs) else f"  ({len(show)} of {len(lrs)} shown)\n"
        return f"LRSweep of {len(self)} learning rates: {counts}\n" + more + '\n'.join(rows)


def _opt_name(f) -> str:
    if isinstance(f, functools.partial):
        args = ', '.join(f"{k}={v}" for k, v in f.keywords.items())
        return f"{_opt_name(f.func)}({args})" if args else _opt_name(f.func)
    return getattr(f, '__name__', type(f).__name__)


def _as_dls(dls) -> RegDataLoaders:
    """The comparisons' data: `RegDataLoaders` / `ClsDataLoaders` as they are; a `SynthData` as its `dataloaders(valid_pct=0)`
    (every point trains, in fastai's batches of 64: a comparison holds none out)."""
    if isinstance(dls, SynthData): return dls.dataloaders(valid_pct=0)
    check_dls(dls)
    return dls


def _start_model(dls, model):
    if model is not None: return model
    if isinstance(dls, ClsDataLoaders):
        return LogisticModel(dls.n_in) if dls.n_classes == 2 else SoftmaxModel(dls.n_in, dls.n_classes)
    return LinearModel(n_in=dls.n_in)


def _own_order(dls):
    "A copy of `dls` whose loaders shuffle afresh from their seed: every run sees the batches a fit of its own would, call after call."
    d = copy.copy(dls)
    d.loaders = [dl.new() if isinstance(dl, TensorDL) else dl for dl in dls.loaders]
    return d


def _fit_runs(dls, model0, runs:dict, epochs:int, loss_func, what:str) -> tuple:
    """Fit one copy of `model0` per run (label -> the learner's arguments: lr, opt_func, and `dls` when the runs' data
    differ) from the same parameters, each on its own copy of its data (the same batches in the same order): together as
    one batch when they can be (`fit_stacked`, `fit_together`), else one after another. (learners, stops); the runs that
    diverged are reported in one line."""
    learners = _fit_stacked(dls, model0, runs, epochs, loss_func)
    if learners is None: learners = _fit_learners(dls, model0, runs, epochs, loss_func)
    # A run whose loss became NaN/inf stopped there; its history ends at the last finite step.
    div = learners.diverged if isinstance(learners, StackedRuns) else (lambda k: learners[k].diverged)
    stops = {k: (s, 'diverged: loss NaN/inf') for k in learners if (s := div(k)) is not None}
    if stops:
        names = [f"{k:g}" if isinstance(k, float) else str(k) for k in stops]
        listed = ', '.join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else '')
        print(f"fastfit: {what}: {len(stops)} of {len(learners)} runs diverged (loss NaN/inf) and stopped there: {listed}")
    return learners, stops


def _fit_stacked(dls, model0, runs:dict, epochs:int, loss_func) -> StackedRuns | None:
    """Runs on one data set with one optimizer function, differing only in their lr (an lr sweep), fitted together
    without a learner each (`fit_stacked`): a `StackedRuns` that makes each run's learner when asked for; None when the
    runs are not such, or cannot be fitted so."""
    kws = list(runs.values())
    if dls is None or len(kws) < 2 or any(set(kw) != {'opt_func', 'lr'} or kw['opt_func'] is not kws[0]['opt_func'] for kw in kws):
        return None
    lrs = [check_positive('lr', kw['lr']) for kw in kws]  # as the learner's function checks it
    first = _new_learner(dls, model0, loss_func, **kws[0])  # built and checked once
    def run(lr): return _copy_learner(first, dls, lr=lr)
    tmpl = run(lrs[0])
    if tmpl is None: return None
    batch = fit_stacked(tmpl, lrs, epochs)
    if batch is None: return None
    by_label = dict(zip(runs, lrs))
    return StackedRuns(list(runs), lambda k: run(by_label[k]), batch, tmpl)


def _new_learner(dls, model0, loss_func, **kw):
    "A learner of a run: a copy of `model0` on its own copy of `dls` (the same batches in the same order)."
    make = classification_learner if isinstance(dls, ClsDataLoaders) else regression_learner
    return make(_own_order(dls), model=copy.deepcopy(model0), loss_func=loss_func, **kw)


def _copy_learner(first, dls, **kw):
    "A learner of a run of `first`'s problem, copied from it (`fresh_copy`: None where it cannot be), with `kw` its own."
    return fresh_copy(first, dls=_own_order(dls), model=copy_model(first.model), **kw)


def _fit_learners(dls, model0, runs:dict, epochs:int, loss_func) -> dict:
    "label -> a learner of each run, fitted together as one batch (`fit_together`) when they can be, else one by one."
    learners, first = {}, None
    for k, kw in runs.items():
        d = kw.pop('dls', dls)
        lrn = None
        if first is not None and d is dls:  # the first run's problem: a copy of its learner (built and checked once)
            if 'lr' in kw: kw['lr'] = check_positive('lr', kw['lr'])  # as the learner's function checks it
            lrn = _copy_learner(first, d, **kw)
        if lrn is None:
            lrn = _new_learner(d, model0, loss_func, **kw)
            if first is None and d is dls: first = lrn
        learners[k] = lrn
    if not fit_together(list(learners.values()), epochs):
        for lrn in learners.values():
            lrn.report_divergence = False  # said once for all below
            _fit_quietly(lrn, epochs)
            del lrn.report_divergence
    return learners


def compare_optimizers(
    dls, # the data: `RegDataLoaders` / `ClsDataLoaders`, or a `SynthData` (all its points train, bs=64)
    opts, # dict label -> fastai optimizer (e.g. {'SGD': SGD, 'momentum': partial(SGD, mom=.9), 'Adam': Adam}), or a list
    model=None, # the model every optimizer starts from (copied; default `LinearModel(n_in=dls.n_in)`, or a classifier's default)
    epochs:int=50, # epochs of each fit
    lr=.1, # learning rate: one for all, or a dict label -> lr
    loss_func=None, # default MSE (classifiers: cross-entropy)
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
    dls = _as_dls(dls)
    model0 = _start_model(dls, model)
    runs = {k: dict(opt_func=f, lr=lrs[k]) for k, f in opts.items()}
    return Comparison(*_fit_runs(dls, model0, runs, epochs, loss_func, 'compare_optimizers'))


def lr_sweep(
    dls, # the data: `RegDataLoaders` / `ClsDataLoaders`, or a `SynthData` (all its points train, bs=64)
    lrs, # the learning rates, e.g. (1e-3, 1e-2, .1, 1.)
    model=None, # the model every run starts from (copied; default `LinearModel(n_in=dls.n_in)`, or a classifier's default)
    epochs:int=50, # epochs of each fit
    loss_func=None, # default MSE (classifiers: cross-entropy)
    opt_func=SGD, # the optimizer of every run
) -> LRSweep:
    """Fit one copy of `model` per learning rate, from the same start (all at once: a run of 200 lrs costs a few fits);
    an `LRSweep`: small multiples titled with each fate, or for many lrs a stability map (loss against lr, by fate)."""
    lrs = [lrs] if isinstance(lrs, (int, float)) else list(lrs)
    if not lrs: raise ValueError("lrs must hold at least one learning rate, e.g. (1e-3, 1e-2, .1, 1.)")
    lrs = [check_positive('lrs', v) for v in lrs]
    if len(set(lrs)) != len(lrs): raise ValueError(f"lrs holds a learning rate twice: {lrs}")
    epochs = check_positive('epochs', epochs, int)
    dls = _as_dls(dls)
    model0 = _start_model(dls, model)
    runs = {v: dict(opt_func=opt_func, lr=v) for v in lrs}
    return LRSweep(*_fit_runs(dls, model0, runs, epochs, loss_func, 'lr_sweep'))


class BatchSizes(Runs):
    """One fit per batch size from the same start: the paths on one loss surface and the loss on all the data against
    the samples seen (not steps: a full-batch step sees every sample, a bs-1 step one), animated in step by samples."""
    panels = ('surface', 'loss')

    def __init__(self, learners:dict, stops=None):
        super().__init__(learners, stops)
        self.per_step = {k: samples_per_step(lrn) for k, lrn in self.learners.items()}

    @property
    def labels(self) -> list:
        "One legend label per run: 'bs=16', or 'full batch (n)'."
        return [f"full batch ({self.per_step[k]})" if lrn.dls.train.full_batch else f"bs={k}" for k, lrn in self.learners.items()]

    def records(self, hists:list, frames:int) -> list:
        "One `Records` per run on one clock of samples seen: frame k shows every run after the same number of samples."
        per = [self.per_step[k] for k in self.learners]
        stops = [(s[0] * p, s[1]) if (s := self.stops.get(k)) else None for k, p in zip(self.learners, per)]
        recss = Records.aligned(hists, frames, stops, per_step=per)
        for r in recss: r.clock_label = '{:,} samples seen'
        return recss

    def frames(self, frames:int=100, panels=None, dpi:int=100, fig=None) -> Frames:
        "The `Frames` of every run on one clock of samples seen ('loss' is drawn against samples seen, on all the data)."
        panels = [SamplesLossPanel if p == 'loss' or p is LossPanel else p for p in (_listify_panels(panels or self.panels))]
        return super().frames(frames, panels, dpi, fig)

    def __repr__(self):
        rows = [f"  {lab:<18} {lrn.param_history.step:>6} steps  final loss {v:.4g}"
                + (f"  ({self.stops[k][1]})" if k in self.stops else '')
                for lab, (k, lrn), v in zip(self.labels, self.learners.items(), self.final_losses().values())]
        n = next(iter(self.learners.values())).dls.train.n
        return f"BatchSizes: {len(self)} runs of {n} samples per epoch:\n" + '\n'.join(rows)


def _listify_panels(panels) -> list:
    return [panels] if isinstance(panels, str) or callable(panels) else list(panels)


def compare_batch_sizes(
    dls, # the data: `RegDataLoaders` / `ClsDataLoaders` (its training set), or a `SynthData` (all its points train)
    bss=(1, 16, None), # batch sizes; None: full batch
    model=None, # the model every run starts from (copied; default `LinearModel(n_in=...)`)
    epochs:int=20, # epochs of each fit (every run sees the same samples: epochs x the training set)
    lr:float=.1, # learning rate of every run
    loss_func=None, # default MSE
    opt_func=SGD, # the optimizer of every run
) -> BatchSizes:
    "Fit one copy of `model` per batch size, from the same start; `BatchSizes` to show or animate (paths, loss per sample)."
    bss = [bss] if bss is None or isinstance(bss, (int, float)) else list(bss)
    if not bss: raise ValueError("bss must hold at least one batch size, e.g. (1, 16, None); None is full batch")
    if len(set(bss)) != len(bss): raise ValueError(f"bss holds a batch size twice: {bss}")
    epochs, lr = check_positive('epochs', epochs, int), check_positive('lr', lr)
    if not isinstance(dls, SynthData): check_dls(dls)
    dlss = {bs: rebatch(dls, bs) for bs in bss}  # a bad bs fails here, before any fit
    full = tuple(bs for bs, d in dlss.items() if d.train.full_batch)
    if len(full) > 1:
        raise ValueError(f"bss={full} are each full batch for the {next(iter(dlss.values())).train.n} training samples: keep one "
                         f"(a bs of at least the training set is one batch of all of it, as bs=None)")
    model0 = _start_model(next(iter(dlss.values())), model)
    # Each batch size has its own batches and steps: the runs cannot share a step, so they are fitted one after another.
    runs = {bs: dict(dls=d, opt_func=opt_func, lr=lr) for bs, d in dlss.items()}
    return BatchSizes(*_fit_runs(None, model0, runs, epochs, loss_func, 'compare_batch_sizes'))


class Scaling(Runs):
    """The same model fitted on raw and on standardised x, each at a share of its own largest stable lr: the elongated
    valley (with its zig-zag) beside the round bowl, each titled with its condition number and largest stable lr, and
    both losses on one log axis (how far each got is the lesson)."""
    panels, split, shared = ('surface', 'loss'), True, ('loss',)

    def __init__(self, learners:dict, curvatures:dict, lrs:dict, stops=None):
        super().__init__(learners, stops)
        self.curvatures, self.lrs = curvatures, lrs

    def titles(self) -> list:
        "One title per fit: its condition number, its largest stable lr and the lr it used."
        return [f"{k}: condition number {c.condition:.3g}\nlargest stable lr 2/λmax = {c.max_lr:.3g}, used {self.lrs[k]:.3g}"
                for k, c in self.curvatures.items()]

    def frames(self, frames:int=100, panels=None, dpi:int=100, fig=None) -> Frames:
        """The `Frames` of both fits in step: a 'surface' each, spanning as much on both axes (the valley and the bowl
        keep their shapes), with a dot a step; and the panels of `shared` (the loss) once, with both runs."""
        panels = [EqualSurfacePanel if p == 'surface' or p is SurfacePanel else p for p in _listify_panels(panels or self.panels)]
        frames, dpi = check_frames(frames, dpi, panels, len(self.learners), self.split)
        learns = list(self.learners.values())
        hists = [require_history(lrn, f"{type(self).__name__}'s run {lab}") for lab, lrn in zip(self.labels, learns)]
        own = [p for p in panels if p not in self.shared]
        titles = [t if j == 0 else None for t in self.titles() for j in range(len(own))]
        return Frames(learns, self.records(hists, frames), panels=panels, dpi=dpi, fig=fig, labels=self.labels,
                      split=True, shared=self.shared, titles=titles, ncols=len(own) * len(learns) + len(panels) - len(own))

    def __repr__(self):
        rows = [f"  {k:<14} condition number {c.condition:<10.3g} largest stable lr {c.max_lr:<10.3g} lr {self.lrs[k]:<10.3g}"
                f" final loss {v:.4g}" for (k, c), v in zip(self.curvatures.items(), self.final_losses().values())]
        return "Scaling: raw and standardised x\n" + '\n'.join(rows)


def compare_scaling(
    dls, # the raw data (fitted full batch): `RegDataLoaders` (its training set), or a `SynthData` (all its points)
    model=None, # the model both fits start from (copied; default `LinearModel(n_in=...)`), e.g. `PolyModel(2)`
    epochs:int=50, # full-batch steps of each fit
    lr_share:float=.8, # each fit's lr as a share of its own largest stable lr 2/λmax (< 1, or it diverges); .8 zig-zags a little
    loss_func=None, # default MSE
) -> Scaling:
    """Fit `model` on raw and on standardised x (`normalize=True`), each full batch at `lr_share` of its largest stable
    lr (from the Hessian at the start); `Scaling` to show or animate side by side."""
    epochs, lr_share = check_positive('epochs', epochs, int), check_positive('lr_share', lr_share)
    if lr_share >= 2: raise ValueError(f"lr_share must be < 2 (at 2 x the largest stable lr even a quadratic diverges), "
                                       f"got {lr_share}; e.g. .8 zig-zags across the valley and converges")
    if not isinstance(dls, SynthData): check_dls(dls)
    dlss = {'raw x': rebatch(dls, None, normalize=False), 'standardised x': rebatch(dls, None, normalize=True)}
    model0 = _start_model(dlss['raw x'], model)
    curvs, lrs = {}, {}
    for k, dls in dlss.items():
        probe = regression_learner(dls, model=copy.deepcopy(model0), loss_func=loss_func, history=False)
        curvs[k] = c = probe.curvature()
        if not math.isfinite(c.max_lr):
            raise ValueError(f"the loss has no positive curvature on {k} (eigenvalues {c.eigenvalues}): no largest stable lr")
        lrs[k] = lr_share * c.max_lr
    learners, stops = _fit_runs(None, model0, {k: dict(dls=d, lr=lrs[k]) for k, d in dlss.items()}, epochs, loss_func, 'compare_scaling')
    return Scaling(learners, curvs, lrs, stops)

"""The 'loss' panel: the training loss (and a classifier's accuracy) against step, or against samples seen."""
from __future__ import annotations

import numpy as np

from ..classify import is_classifier, probabilities
from ..history import ParamHistory
from ..learner import has_data
from ..optimum import optimum_label
from ..records import _finite_records, _history
from .base import COLORS, MARKERS, PANELS, Panel, _one_thread, _width, outputs, private_model
from .layout import axes_points, label, place_legend
from .surface import LossSurface, _spans_decades

__all__ = ['LossPanel', 'SamplesLossPanel']

# A loss of fewer values than torch's grain (32,768) is summed in one piece whatever the threads, so it is the same on
# one thread; there a classifier's log-sigmoid (split between threads from 2 values on) does not wake them (~6 ms CPU)
ONE_PIECE = 1 << 15


def _accuracy_curve(learn, h:ParamHistory|None, recs, most:int=300) -> tuple:
    "(steps, training accuracy) at up to `most` records of history `h` (or at the `recs` drawn, without one)."
    x, y = learn.dls.train.x.cpu(), learn.dls.train.y.cpu().reshape(-1)
    if h is not None:
        keep = _finite_records(h)
        keep = keep[np.unique(np.linspace(0, len(keep) - 1, min(most, len(keep))).round().astype(int))]
        steps, params = h.steps[keep], [{k: v[i] for k, v in h.params.items()} for i in keep]
    else: steps, params = np.array([0 if s is None else s for s in recs.steps]), recs.params
    acc = (probabilities(outputs(private_model(learn.model), params, x), learn.loss_func).argmax(-1) == y).float().mean(-1)
    return np.asarray(steps), acc.numpy()


class LossPanel(Panel):
    """Each run's training loss against step (growing with the frames), log scale when it spans decades; the optimum's
    loss dotted; for a classifier, the training accuracy too (dashed, on the right axis)."""
    name, xlabel, ylabel, ynote = 'loss', 'step', 'training loss', ''
    xsteps = None  # per run, the step of each point of its curve when the curve's x is not the step (samples seen)

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        self.curves = []
        for lrn, r in zip(self.learns, self.recss):
            h = _history(lrn)
            if h is not None:
                keep = _finite_records(h)
                self.curves.append((h.steps[keep], h.losses.numpy()[keep].astype(np.float64)))
            else: self.curves.append((np.array([0 if s is None else s for s in r.steps]), r.losses.astype(np.float64)))
        self._opt_loss()

    def _opt_loss(self):
        lrn = self.learn
        opt = self.optimum()
        with _one_thread(len(lrn.dls.train.x) * _width(lrn.model), most=ONE_PIECE):
            self.opt = None if opt is None else lrn.train_loss(opt)
        self.accs = [_accuracy_curve(lrn, _history(lrn), r) for lrn, r in zip(self.learns, self.recss)] \
            if is_classifier(lrn) and has_data(lrn) else []

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
            # clip_on=False: at the axes' edge (the last step, the top) the point is drawn whole
            self.points.append(ax.plot(st[-1:], v[-1:], MARKERS[i % len(MARKERS)], ms=8, c=c, mec='black', mew=.6, zorder=6,
                                       clip_on=False)[0])
        last = max(int(st[-1]) for st, _ in self.curves if len(st))
        ax.set_xlim(0, max(last, 1))
        lo, hi = allv.min(), allv.max()
        if self.log: ax.set_ylim(lo / 1.5, hi * 1.5)
        else: ax.set_ylim(min(0, lo), hi + .05 * (hi - min(0, lo)) + 1e-12)
        ax.set_xlabel(self.xlabel); ax.set_ylabel(label(self.ylabel, self.ynote, 'log scale' if self.log else ''))
        ax.grid(alpha=.25, which='both' if not self.log else 'major')
        self._setup_optimum_note(ax)
        handles = ax.get_legend_handles_labels()
        self.acc_lines = self._setup_accuracy(ax, handles) if self.accs else []
        stop = self._setup_stop_note(ax)
        # where no curve goes in any frame (the whole curves are drawn now), nor the note of a stopped run
        avoid = axes_points(ax, [*ax.lines, *self.acc_lines])
        place_legend(ax, *handles, avoid=avoid, texts=stop, framealpha=.85)
        return [*self.lines, *self.points, *self.acc_lines, *stop]

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
        for i, (line, pt, (st, v), r) in enumerate(zip(self.lines, self.points, self.curves, self.recss)):
            s = r.steps[k]
            j = len(st) if s is None else max(1, int(np.searchsorted(st if self.xsteps is None else self.xsteps[i], s, 'right')))
            line.set_data(st[:j], v[:j])
            pt.set_data(st[j - 1:j], v[j - 1:j])
        for line, (st, acc), r in zip(self.acc_lines, self.accs, self.recss):
            s = r.steps[k]
            j = len(st) if s is None else max(1, int(np.searchsorted(st, s, 'right')))
            line.set_data(st[:j], acc[:j])
        self._update_stop_note(k)


def samples_per_step(learn) -> int:
    "How many training samples one step of `learn` sees: the batch size (fastfit's loaders drop the last short batch)."
    dl = learn.dls.train
    return int(dl.n if getattr(dl, 'full_batch', False) else dl.bs)


def exact_losses(learn, h:ParamHistory, keep) -> np.ndarray:
    "The loss on all the training data at the records `keep` of `h` (a minibatch history holds its batches' losses)."
    try: surf = LossSurface(learn)
    except ValueError: surf = None  # a one-parameter model
    if surf is None or h.flat_names != surf.all_names: return h.losses.numpy()[keep].astype(np.float64)
    return surf.losses(h.flat[keep]).double().numpy()


class SamplesLossPanel(LossPanel):
    """Each run's training loss on all the training data against the samples it has seen, so runs of different batch
    sizes share one axis (`compare_batch_sizes`): a minibatch run's curve is the true loss along its path."""
    xlabel, ylabel, ynote = 'samples seen', 'training loss', 'all data'

    def __init__(self, learn, recs, labels=None):
        Panel.__init__(self, learn, recs, labels)
        self.curves, self.xsteps = [], []
        for lrn in self.learns:
            h = _history(lrn)
            keep = _finite_records(h)
            self.xsteps.append(h.steps[keep])
            self.curves.append((h.steps[keep] * samples_per_step(lrn), exact_losses(lrn, h, keep)))
        self._opt_loss()
        self.accs = []  # a classifier's accuracy is drawn against steps, not samples seen


PANELS['loss'] = LossPanel

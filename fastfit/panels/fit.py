"""The 'fit' panel: the data, the true curve, the optimum, and the fitted line(s) moving with a caption."""
from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call

from ..classify import is_classifier, probabilities
from ..models import flat_names
from ..optimum import optimum_label
from ..style import style_scale
from .base import _NOTE, COLORS, PANELS, Panel, _outputs_each, _raw_x, _short, sample_sets
from .layout import EdgeMark, axes_points, label, legend_merged, place_legend

__all__ = ['FitPanel']


def _plot_feature(x) -> int:
    "The feature drawn on the x axis: the first that is not constant (a ones column is skipped) in `x` (or a list of sets)."
    xs = x if isinstance(x, (list, tuple)) else [x]
    lo = torch.stack([t.amin(0) for t in xs]).amin(0)  # not min(0): its indices are found in a parallel region (ms)
    varies = (torch.stack([t.amax(0) for t in xs]).amax(0) - lo) > 0
    return int(varies.nonzero()[0]) if varies.any() else 0


def _truth_curve(truth, xg):
    "The noise-free function of synthetic data on the grid `xg`: linear in 'w' (and 'b'), a polynomial in 'c*', or a 'curve'."
    if not truth: return None
    if 'curve' in truth:  # synth_func: the function sampled densely, (xs, ys)
        if xg.shape[1] != 1: return None
        xs, ys = (np.asarray(v, dtype=np.float64) for v in truth['curve'])
        inside = (xg[:, 0] >= xs[0]) & (xg[:, 0] <= xs[-1])
        y = np.interp(xg[:, 0].numpy(), xs, ys)
        return torch.from_numpy(np.where(inside.numpy(), y, np.nan)).float()
    if 'w' in truth:
        w = torch.as_tensor(truth['w']).float().flatten()
        if len(w) != xg.shape[1]: return None
        return (xg @ w + torch.as_tensor(truth.get('b', 0.)).float()).flatten()
    cs = sorted((k for k in truth if k[0] == 'c' and k[1:].isdigit()), key=lambda k: -int(k[1:]))
    if not cs or xg.shape[1] != 1: return None
    y = torch.zeros(len(xg))
    for k in cs: y = y * xg[:, 0] + float(truth[k])
    return y

def _params_texts(params:list, max_scalars=4) -> list:
    "'w=2.95  b=1.98' for each parameter dict of `params` ('' when there are more than `max_scalars` scalars)."
    names = flat_names((k, v.shape) for k, v in params[0].items())
    if len(names) > max_scalars: return [''] * len(params)
    vals = torch.cat([torch.stack([p[k] for p in params]).reshape(len(params), -1) for k in params[0]], 1).tolist()
    return ['  '.join(f"{n}={_short(v)}" for n, v in zip(names, row)) for row in vals]


class FitPanel(Panel):
    """The data, the true line, the least-squares optimum (static) and the fitted line(s) with a caption (moving).
    A two-class classifier of one feature: the labels 0/1 and p(class 1) against x (the sigmoid curve)."""
    name, needs, n_grid = 'fit', ('data',), 200

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        learn = self.learn
        dls, x = learn.dls, self.x
        self.cls = is_classifier(learn)
        if self.cls and dls.n_classes != 2:
            raise ValueError(f"the 'fit' panel draws a classifier of one feature as p(class 1) against x, for two classes; "
                             f"this data has {dls.n_classes}: draw panels=('loss', 'surface'), or give the data two features "
                             f"(the 'boundary' panel)")
        self.xv, self.yv = (dls.valid.x.cpu(), dls.valid.y.cpu()) if dls.has_valid else (None, None)
        xs = [x] if self.xv is None else [x, self.xv]
        self.feat = _plot_feature(xs)
        lo, hi = min(float(t[:, self.feat].min()) for t in xs), max(float(t[:, self.feat].max()) for t in xs)
        pad = (hi - lo) * .02
        xg = x.mean(0, keepdim=True).repeat(self.n_grid, 1)
        xg[:, self.feat] = torch.linspace(lo - pad, hi + pad, self.n_grid)
        self.xg, self.xs = xg, _raw_x(dls, xg)[:, self.feat].numpy()  # the model sees xg; the axis shows raw units
        with torch.no_grad():
            self.predss = []
            for run, r in enumerate(self.recss):
                m = self.model_copy(run)
                self.predss.append(np.stack([self._curve(out) for out in _outputs_each(m, r.params, xg)]))
            self.preds = self.predss[0]
            # normalize=True: the truth of the data in its own units (`truth` is that of the model on standardised x)
            raw = getattr(dls, 'norm', None) is not None
            self.truth = _truth_curve(dls.raw_truth if raw else getattr(dls, 'truth', None), _raw_x(dls, xg))
            if self.truth is not None and self.cls: self.truth = torch.sigmoid(self.truth)  # the true logit's probability
            opt = self.optimum()
            self.opt = None if opt is None else self._curve(functional_call(self.model_copy(), opt, (xg,)))
        # What is drawn of the data (all of it, or a seeded sample said in the legend) also sets the y limits.
        # normalize=True: the model sees standardised x, the axis shows raw units.
        sets = [(x, self.y[:, 0])] + ([(self.xv, self.yv[:, 0])] if self.xv is not None else [])
        self.data = [(f"{lab} ({note})" if note else lab, _raw_x(dls, xs)[:, self.feat], ys)
                     for lab, (note, xs, ys) in zip(('train data', 'valid data'), sample_sets(*sets))]

    def _curve(self, out) -> np.ndarray:
        "The curve drawn for the model's outputs on the grid: the prediction, or for a classifier p(class 1)."
        return (probabilities(out, self.learn.loss_func)[:, 1] if self.cls else out).flatten().numpy()

    def _ylim(self):
        ys = [y.numpy() for _, _, y in self.data]
        if self.truth is not None: ys.append(self.truth.numpy()[np.isfinite(self.truth.numpy())])  # a curve: NaN past its ends
        lo, hi = min(a.min() for a in ys), max(a.max() for a in ys)
        span = max(hi - lo, 1e-6)
        # Fitted lines far off (early frames, divergence) leave the frame, marked at its edge: the data keep at least
        # 60% of the height.
        allp = np.concatenate([p.ravel() for p in self.predss])
        p = np.clip(allp[np.isfinite(allp)], lo - .25 * span, hi + .25 * span)
        if p.size: lo, hi = min(lo, p.min()), max(hi, p.max())
        pad = (hi - lo) * .05
        return lo - pad, hi + pad

    def setup(self, ax) -> list:
        "Draw what does not move; return the artists that do."
        self.ax = ax
        xl = 'x' if self.x.shape[1] == 1 else f'x[{self.feat}]'
        dc, vc = (COLORS['grey'], COLORS['grey']) if self.multi else (COLORS['data'], COLORS['valid'])
        dls = self.learn.dls
        for (lab, xs, ys), c, mk in zip(self.data, (dc, vc), 'os'):
            ax.scatter(xs, ys, s=14, c=c, alpha=.65, lw=0, marker=mk, label=lab)
        if self.truth is not None: ax.plot(self.xs, self.truth, '--', c=COLORS['truth'], lw=1.5, label='true')
        if self.opt is not None:
            ax.plot(self.xs, self.opt, ':', c=COLORS['optimum'], lw=2.5, label=optimum_label(self.learn.loss_func))
        self.lines = [ax.plot(self.xs, p[-1], '-', c=c, lw=2.5, label=lab or 'fit', zorder=5)[0]
                      for p, c, lab in zip(self.predss, self.colors, self.labels)]
        self.line = self.lines[0]
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', ha='left', fontsize=10 * style_scale('font'),
                            family='monospace', zorder=6, bbox=_NOTE)
        self.text._fastfit_styled = True  # sized for the style now: the legend is placed around it
        ax.set_xlim(self.xs[0], self.xs[-1])
        ax.set_ylim(*self._ylim())
        several = self.x.shape[1] - int((self.x == 1).all(0).sum()) > 1
        ax.set_xlabel(label(xl, 'other features at their mean' if several else '',
                            'the model is fitted on standardised x' if getattr(dls, 'norm', None) is not None else ''))
        ax.set_ylabel('label, and p(class 1)' if self.cls else 'y')
        self._setup_optimum_note(ax)
        ax.grid(alpha=.25)
        # a fitted line that leaves the axes (a diverging run) is pointed to at their edge, with its value
        self.offs = [EdgeMark(ax, c, marker='', ms=11, aim=False, row=i) for i, c in enumerate(self.colors)]  # a row each
        ticks = [t for t in ax.get_xticks() if self.xs[0] <= t <= self.xs[-1]] or [self.xs[len(self.xs) // 2]]
        self._tick = float(min(ticks, key=lambda t: abs(t - (self.xs[0] + .75 * (self.xs[-1] - self.xs[0])))))
        self._xname = xl
        self._legend(ax)
        return [*self.lines, self.text, *[a for m in self.offs for a in m.artists], *self._setup_stop_note(ax)]

    def _legend(self, ax):
        "The legend where neither the data nor the fitted line of any frame nor the caption lies."
        if legend_merged(ax): return place_legend(ax)  # the figure's legend: nothing to keep clear on this axes
        captions = self._captions()
        self.text.set_text(captions[max(range(len(captions)), key=lambda k: len(captions[k]))])  # its largest box, kept free
        frames = np.unique(np.linspace(0, len(self.recs) - 1, min(len(self.recs), 40)).round().astype(int))
        curves = [np.column_stack([self.xs, p[k]]) for p in self.predss for k in frames]
        avoid = axes_points(ax, [ln for ln in ax.lines if ln not in self.lines], [np.column_stack([x, y]) for _, x, y in self.data],
                            curves)
        place_legend(ax, avoid=avoid, texts=[self.text], most=2, framealpha=.85)
        self.text.set_text('')

    def _captions(self) -> list:
        "Every frame's caption, made once for the records drawn (the legend's placing reads them all; a live view renews them)."
        key = (self.recs, *self.recss)
        kept = getattr(self, '_kept_captions', ((), None))
        if len(kept[0]) != len(key) or any(a is not b for a, b in zip(kept[0], key)):
            kept = self._kept_captions = (key, [self._caption(k) for k in range(len(self.recs))])
        return kept[1]

    def _caption(self, k):
        r = self.recs
        step, loss = r.clock[k], r.losses[k]
        if not self.multi:
            if r.stopped(k): head = f"step {int(r.steps[k])} (last finite)  loss {_short(float(loss))}"
            else: head = ('' if step is None else f"step {int(step)}  ") + f"loss {_short(float(loss))}"
            # every frame's at once (cheaper per frame), made again for new records (a live view renews them)
            if getattr(self, '_ptexts', (None,))[0] is not r: self._ptexts = (r, _params_texts(r.params))
            ps = self._ptexts[1][k]
            return head + ('\n' + ps if ps else '')
        w = max(len(str(lab)) for lab in self.labels)
        rows = [f"{str(lab):<{w}} "
                + (f"stopped at {int(rr.stop[0])}" if rr.stopped(k) else f"loss {_short(float(rr.losses[k]))}")
                for lab, rr in zip(self.labels, self.recss)]
        return '\n'.join(([] if step is None else [r.clock_label.format(int(step))]) + rows)

    def _gone(self, lo, hi) -> list:
        "Per run, per frame: whether the fitted curve is finite and wholly above `hi` or below `lo`."
        kept = getattr(self, '_kept_gone', None)
        if kept is None or kept[0] != (lo, hi) or kept[1] is not self.predss:
            # every frame at once: four numpy calls a frame otherwise, on arrays of a curve's hundred-odd points
            rows = [p.reshape(len(p), -1) for p in self.predss]
            kept = self._kept_gone = ((lo, hi), self.predss, [np.isfinite(r).all(1) & ((r > hi).all(1) | (r < lo).all(1))
                                                              for r in rows])
        return kept[2]

    def update(self, k:int):
        "Move the fitted line(s) and caption to frame `k`."
        lo, hi = self.ax.get_ylim()
        for line, p, off, gone in zip(self.lines, self.predss, self.offs, self._gone(lo, hi)):
            line.set_ydata(p[k])
            y = p[k]
            if not gone[k]: off.set(np.nan, np.nan); continue
            x0 = self._tick  # a round x at three quarters of the axis: the note stays clear of the caption
            y0 = float(np.interp(x0, self.xs, y))
            off.set(x0, y0, f"fit off the chart:\ny = {_short(y0)} at {self._xname} = {_short(x0)}")
        self.text.set_text(self._captions()[k])
        self._update_stop_note(k)


PANELS['fit'] = FitPanel

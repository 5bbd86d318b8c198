"""The 'step' panel: the arithmetic of each frame's optimizer step, with its numbers."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..style import style_scale
from .base import PANELS, Panel

__all__ = ['StepPanel', 'step_kind', 'step_update']


# -- the arithmetic of one step ('step' panel) ------------------------------------------------------------------------
def _fmt_param(v:float) -> str:
    """A parameter's value to the digits float32 holds: 7 decimals below 1 (seed 003's 0.80119529 is 0.8011953 here),
    7 significant digits above, scientific when very large or very small."""
    if not math.isfinite(v): return str(v)
    a = abs(v)
    if a == 0 or 1e-4 <= a < 1: return f"{v:.7f}"
    return f"{v:.7g}" if 1 <= a < 1e7 else f"{v:.4e}"

def _fmt(v:float) -> str:
    "5 significant digits, negatives in parentheses (they follow an operator)."
    s = f"{v:.5g}"
    return f"({s})" if s.startswith('-') else s


def step_kind(opt_cbs) -> str:
    "'sgd', 'momentum', 'adam' or 'other': which update fastai's optimizer made of its step functions `opt_cbs` applies."
    for k, f in (('sgd', 'sgd_step'), ('momentum', 'momentum_step'), ('adam', 'adam_step')):
        if f in opt_cbs: return k
    return 'other'


def step_update(kind:str, d:dict, i:int, decoupled:bool=True) -> np.ndarray:
    """The parameters after step `i` of `d` (a history's `step_data`, as float64 numpy) computed by the update rule of
    `kind` from the recorded parameters before it, gradient, state and hypers: what the 'step' panel prints."""
    w, g, lr = d['before'][i], d['grad'][i], d['lr'][i]  # a hyper is (T,), or (T, P) with several parameter groups
    wd = d.get('wd', np.zeros(len(d['lr'])))[i]
    wd = np.where(np.isfinite(wd), wd, 0.) if decoupled else 0.
    if kind == 'sgd': return w * (1 - lr * wd) - lr * g
    if kind == 'momentum': return w * (1 - lr * wd) - lr * d['grad_avg'][i]
    if kind == 'adam':
        t, mom, sqr_mom = d['opt_step'][i], d['mom'][i], d['sqr_mom'][i]
        den = np.sqrt(d['sqr_avg'][i] / (1 - sqr_mom ** t)) + d['eps'][i]
        return w * (1 - lr * wd) - lr / (1 - mom ** t) * d['grad_avg'][i] / den
    raise ValueError(f"kind must be 'sgd', 'momentum' or 'adam', got {kind!r}")


class StepPanel(Panel):
    """The arithmetic of each frame's step, with its numbers: for each parameter the value before, the learning rate,
    the gradient and the value after (`w ← w - lr·∂L/∂w`); for momentum and Adam fastai's own update with its state
    (`grad_avg`, `sqr_avg`); and the loss before and after. Needs the gradients in the history (`ParamHistory(grads=True)`)."""
    name, needs = 'step', ('grads',)
    max_params = 6  # scalar parameters shown; the others are counted
    fontsize = 18.  # at most (times the style's text scale): smaller when the lines would not fit the axes
    fps = 1  # an animation showing it defaults to a step a second: the time to read one (`plots.pace`)

    @classmethod
    def cell_width(cls) -> float:
        "Its axes are this many standard cells wide (`Frames`): lines of arithmetic, at a size that grows with the style."
        return 1.6 * style_scale('font')

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        self.blocks = []  # per run: one list of text lines per frame
        for lrn, r, lab in zip(self.learns, self.recss, self.labels):
            h = lrn.param_history
            full = bool(getattr(lrn.dls.train, 'full_batch', False))
            self.blocks.append(_step_texts(h, r, lab if self.multi else None, full, self.max_params))
        # every frame of a run gets as many lines (so the blocks stay put), each padded to one width (no jitter)
        self.n_lines = [max(len(f) for f in b) for b in self.blocks]
        self.width = max(len(line) for b in self.blocks for f in b for line in f)

    def setup(self, ax) -> list:
        self.ax = ax
        ax.set_axis_off()
        fig, pos = ax.figure, ax.get_position()
        w, h = pos.width, pos.height
        if (ss := ax.get_subplotspec()) is not None:  # an axes without ticks and labels gets most of its cell after tight_layout
            gs = ss.get_gridspec()
            wr, hr = gs.get_width_ratios() or [1] * gs.ncols, gs.get_height_ratios() or [1] * gs.nrows
            w = max(w, .92 * sum(wr[ss.colspan.start:ss.colspan.stop]) / sum(wr))
            h = max(h, .88 * sum(hr[ss.rowspan.start:ss.rowspan.stop]) / sum(hr))
        w, h = w * fig.get_figwidth() * 72, h * fig.get_figheight() * 72
        lines = sum(self.n_lines) + len(self.n_lines) - 1
        # DejaVu Sans Mono advances .602 em a character; lines are 1.2 em apart: the largest size that fits the axes
        fs = min(self.fontsize * style_scale('font'), .97 * w / (.602 * max(self.width, 1)), .97 * h / (1.2 * lines))
        self.texts = []
        for c in self.colors if self.multi else ['black']:
            kw = dict(va='top', ha='left', family='monospace', fontsize=fs, color=c)
            if not self.texts: t = ax.text(0, 1, '', transform=ax.transAxes, **kw)
            else:  # each run's block below the one before (every frame of a block has as many lines)
                t = ax.annotate('', xy=(0, 0), xycoords=self.texts[-1], xytext=(0, -.8 * fs), textcoords='offset points', **kw)
            t._fastfit_styled = True  # sized to fit here: the classroom style must not scale it again
            self.texts.append(t)
        return self.texts

    def update(self, k:int):
        "Set each run's text to the arithmetic of frame `k`'s step."
        for t, b, n in zip(self.texts, self.blocks, self.n_lines):
            f = b[k]
            t.set_text('\n'.join(f + [''] * (n - len(f))))


_OPS = ('+', '-', '=')


def _align(frames:list) -> list:
    """`frames` (lists of lines: a string, or (key, cells) aligned with the frame's other rows of that key) as lists of
    strings: the first cell left-aligned, the others right-aligned. The first two columns (the name, what is updated)
    are as wide as their widest among the frame's rows of that key; the numbers after them among the rows of the same
    formula (the same operators): a sum lines up with sums, an update with updates, and a number far wider in another
    frame pads none of this one's."""
    out = []
    for f in frames:
        widths, rows = {}, []
        for row in f:
            if isinstance(row, str): rows.append(row); continue
            key, cells = row
            form = (key, len(cells), tuple([c for c in cells[2:] if c in _OPS]))
            cols = [(key, j) if j < 2 else (form, j) for j in range(len(cells))]  # the column each cell lines up in
            for col, c in zip(cols, cells):
                if widths.get(col, -1) < len(c): widths[col] = len(c)
            rows.append((cols, cells))
        # (lists, not generators, to join: fewer Python calls a cell)
        out.append([row if isinstance(row, str) else
                    ' '.join([c.ljust(widths[col]) if j == 0 else c.rjust(widths[col]) for j, (col, c) in enumerate(zip(*row))])
                    for row in rows])
    return out


def _one(v, fmt='{:g}', what='per group') -> str:
    "The hyper-parameter values `v` of the columns shown as one number when they agree, else `what`."
    vals = [x for x in np.asarray(v, dtype=np.float64).ravel().tolist() if math.isfinite(x)]
    if vals and all(x == vals[0] and math.copysign(1, x) == math.copysign(1, vals[0]) for x in vals):
        return fmt.format(vals[0])  # what np.unique keeps below (a few values: comparing them costs less than its sort)
    v = np.unique(np.asarray(v, dtype=np.float64)[np.isfinite(v)])
    return fmt.format(v[0]) if len(v) == 1 else what


def _step_texts(h, recs, label, full_batch, max_params) -> list:
    """The lines of the 'step' panel for every frame of `recs` (one list of lines per frame). Each step is shown by its own
    rule (the optimizer that made it, its parameter group's hypers); every line's numbers satisfy the update it shows."""
    d = {k: v.double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
         for k, v in h.step_data.items()}
    after, names, losses = h.flat.double().numpy(), h.flat_names, h.losses.double().numpy()
    shown = list(range(min(len(names), max_params)))
    more = len(names) - len(shown)
    loss = 'loss' if full_batch else 'batch loss'
    hypers = {}  # hyper -> its value at each record for each shown column (NaN where not recorded), made once
    def hyper(k, i):  # this step's value of hyper `k` for each shown column
        if k not in hypers:
            a = d.get(k, np.full(len(h), np.nan))
            a = a[:, shown] if a.ndim == 2 else np.repeat(a[:, None], len(shown), 1)
            hypers[k] = np.nan_to_num(a, nan=0.) if k == 'wd' else a  # no weight decay where none is recorded
        return hypers[k][i]
    steps, graded = h.steps.tolist(), np.isfinite(d['grad']).any(1).tolist()  # (all records at once: cheaper per frame)
    frames, last = [], steps[-1]
    for k in range(len(recs)):
        i = int(recs.idx[k]) if recs.idx is not None else len(h) - 1  # the model as it is: the history's last record
        s = steps[i]
        head = (f"{label}: " if label else '') + f"step {s} of {last}"
        if s == 0 or not graded[i]:
            lines = [head + (': the start' if s == 0 else ': its gradient was not recorded')]
            lines += [('r', [names[j], '=', _fmt_param(after[i, j])]) for j in shown]
            if more: lines.append(f"... and {more} more parameters")
            frames.append(lines + [f"{loss} {losses[i]:.6g}"])
            continue
        cbs = h.opt_cbs_at(i)
        kind, decoupled = step_kind(cbs), 'l2_reg' not in cbs
        lr, wd = hyper('lr', i), hyper('wd', i)
        decay = (wd != 0) & decoupled
        keep, rows = ('·(1-lr·wd)' if decay.any() else ''), []
        lrs = _one(lr)
        groups = '' if lrs != 'per group' else ' (per parameter group)'
        if groups: lrs = f"{np.nanmin(lr):g} to {np.nanmax(lr):g}" if np.isfinite(lr).any() else 'nan'
        wds = f", wd {_one(wd)}" if wd.any() else ''
        def old(c):  # noqa: B023
            j = shown[c]
            return _fmt_param(d['before'][i, j]) + (f"×{1 - lr[c] * wd[c]:g}" if decay[c] else '')
        def moved(c) -> bool:  # a parameter this step updated with a recorded gradient (else: frozen, or not held)  # noqa: B023
            return math.isfinite(d['grad'][i, shown[c]]) and math.isfinite(lr[c])
        def still(c, key):  # a parameter without a gradient this step: its value before and after, and why  # noqa: B023
            j, b, a = shown[c], d['before'][i, shown[c]], after[i, shown[c]]
            if b == a: return (key, [names[j], '=' if key == 'r' else f"{names[j]} =", _fmt_param(b), '', '', '=',
                                     _fmt_param(a), '(no gradient: not updated)'])
            return (key, [names[j], '=' if key == 'r' else f"{names[j]} =", _fmt_param(b), '+', _fmt(a - b), '=',
                          _fmt_param(a), '(no gradient recorded)'])
        if kind == 'sgd':
            head += f" · plain SGD, lr {lrs}{groups}{wds}"
            top = [f"p ← p{keep} - lr·∂L/∂p" + ('  (∂L/∂p includes wd·p: L2)' if wd.any() and not decoupled else '')]
            for c, j in enumerate(shown):
                if not moved(c): rows.append(still(c, 'r')); continue
                rows.append(('r', [names[j], '=', old(c), '-', f"{lr[c]:g}×{_fmt(d['grad'][i, j])}", '=', _fmt_param(after[i, j])]))
        elif kind == 'momentum':
            mom = hyper('mom', i)
            head += f" · SGD with momentum, lr {lrs}, mom {_one(mom)}{groups}{wds}"
            top = ["grad_avg ← mom·grad_avg + ∂L/∂p", f"p ← p{keep} - lr·grad_avg"]
            for c, j in enumerate(shown):
                if not moved(c): rows.append(still(c, 'a')); continue
                rows.append(('a', [names[j], 'grad_avg =', f"{mom[c]:g}×{_fmt(d['grad_avg_before'][i, j])}", '+',
                                   _fmt(d['grad'][i, j]), '=', _fmt(d['grad_avg'][i, j])]))
                rows.append(('a', ['', f"{names[j]} =", old(c), '-', f"{lr[c]:g}×{_fmt(d['grad_avg'][i, j])}", '=',
                                   _fmt_param(after[i, j])]))
        elif kind == 'adam':
            mom, sqr, eps, t = hyper('mom', i), hyper('sqr_mom', i), hyper('eps', i), d['opt_step'][i]
            b1, b2 = 1 - mom ** t, 1 - sqr ** t
            head += f" · Adam, lr {lrs}{groups}{wds}"
            top = [f"mom {_one(mom)}, sqr_mom {_one(sqr)}, eps {_one(eps)}, g = ∂L/∂p",
                   "grad_avg ← mom·grad_avg + (1-mom)·g",
                   "sqr_avg ← sqr_mom·sqr_avg + (1-sqr_mom)·g²",
                   f"p ← p{keep} - step·grad_avg / (√(sqr_avg/(1-sqr_mom^t)) + eps)",
                   f"step = lr/(1-mom^t) = {_one(lr / b1, '{:.5g}')}, 1-sqr_mom^t = {_one(b2, '{:.5g}')} (t = {t:g})"]
            for c, j in enumerate(shown):
                if not moved(c): rows.append(still(c, 'a')); continue
                g, ga, sa = d['grad'][i, j], d['grad_avg'][i, j], d['sqr_avg'][i, j]
                rows.append(('a', [names[j], 'grad_avg =', f"{mom[c]:g}×{_fmt(d['grad_avg_before'][i, j])}", '+',
                                   f"{1 - mom[c]:.4g}×{_fmt(g)}", '=', _fmt(ga)]))
                rows.append(('a', ['', 'sqr_avg =', f"{sqr[c]:g}×{_fmt(d['sqr_avg_before'][i, j])}", '+',
                                   f"{1 - sqr[c]:.4g}×{_fmt(g * g)}", '=', _fmt(sa)]))
                rows.append(('a', ['', f"{names[j]} =", old(c), '-',
                                   f"{lr[c] / b1[c]:.5g}×{_fmt(ga)}/{_fmt(np.sqrt(sa / b2[c]) + eps[c])}", '=',
                                   _fmt_param(after[i, j])]))
        else:
            head += f" · {', '.join(c for c in cbs if c not in ('weight_decay', 'l2_reg')) or 'optimizer'}, lr {lrs}{groups}"
            top = ["p ← p + (the optimizer's update)"]
            for j in shown:
                rows.append(('r', [names[j], '=', _fmt_param(d['before'][i, j]), '+',
                                   _fmt(after[i, j] - d['before'][i, j]), '=', _fmt_param(after[i, j])]))
        lines = [head, *top, *rows]
        if more: lines.append(f"... and {more} more parameters")
        lines.append(f"{loss} {d['loss_before'][i]:.6g} → {losses[i]:.6g}" + ('' if full_batch else '  (this batch → the next)'))
        frames.append(lines)
    return _align(frames)


PANELS['step'] = StepPanel

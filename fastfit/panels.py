"""What each picture shows. A `Panel` draws one axes: `setup(ax)` the still part, returning the artists that move, and
`update(k)` moves them to frame `k` of its `Records`. `PANELS` names the built-in ones; `Frames` is a figure of panels."""
from __future__ import annotations

import numpy as np
import torch
from fastai.learner import Learner
from matplotlib.figure import Figure
from torch.func import functional_call

from .classify import is_classifier, probabilities
from .data import EVAL_ROWS, check_positive, mean_over_rows
from .history import ParamHistory
from .models import flat_names
from .optimum import optimum_label
from .records import Records, _finite_records, _history
from .style import restyle, style_scale

__all__ = ['COLORS', 'Frames', 'Panel', 'FitPanel', 'LossSurface', 'SurfacePanel', 'EqualSurfacePanel', 'LossPanel',
           'SamplesLossPanel', 'StepPanel', 'step_kind', 'step_update', 'PANELS', 'NEEDS', 'MAX_POINTS', 'sample_rows',
           'sample_sets', 'outputs', 'fitting_panels']

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey.
COLORS = dict(data='#0072B2', valid='#56B4E9', fit='#D55E00', truth='#000000', optimum='#009E73',
              path='#CC79A7', extra=('#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9', '#F0E442'),
              # several runs on one axes: the data goes grey, so blue is free; green stays the optimum's
              runs=('#D55E00', '#0072B2', '#E69F00', '#CC79A7', '#56B4E9', '#000000'), grey='#8C8C8C',
              # class labels (with a marker each): neither the fit's vermillion nor the optimum's green
              classes=('#0072B2', '#E69F00', '#CC79A7', '#56B4E9', '#F0E442'), accuracy='#0072B2')
MARKERS = ('o', 's', '^', 'D', 'v', 'P')


# Big data: a million points drawn help nobody and cost seconds and gigabytes. A picture scatters at most MAX_POINTS
# points in all (a seeded random sample, the same share of each data set) and a loss surface sums at most MAX_POINTS
# training points; the picture says so. Smaller data is drawn and summed whole, as it always was.
MAX_POINTS = 10_000


def sample_rows(n:int, max_n:int|None=MAX_POINTS, seed:int=0) -> torch.Tensor|None:
    "Indices of a seeded random sample of `max_n` of `n` rows (the same every call), or None when all `n` are kept."
    if max_n is None or n <= max_n: return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_n]


def _rows(t, idx): return t if idx is None else t[idx]


def sample_sets(*sets:tuple, max_n:int|None=MAX_POINTS, what:str='shown') -> list:
    """What to draw of data `sets` (each a tuple of tensors with the same rows, e.g. (x, y)): [(note, *rows of each)].
    All rows and note '' when the sets total at most `max_n` rows; else a seeded sample (`sample_rows`) of the same share
    of each, and a note to say in the picture, e.g. '8,000 of 800,000 shown'."""
    ns = [len(ts[0]) for ts in sets]
    total = sum(ns)
    ks = ns if max_n is None or total <= max_n else [max(1, round(max_n * n / total)) if n else 0 for n in ns]
    out = []
    for ts, n, k in zip(sets, ns, ks):
        idx = sample_rows(n, k)
        out.append(('' if idx is None else f"{k:,} of {n:,} {what}", *(_rows(t, idx) for t in ts)))
    return out


def _plot_feature(x) -> int:
    "The feature drawn on the x axis: the first that is not constant (a ones column is skipped) in `x` (or a list of sets)."
    xs = x if isinstance(x, (list, tuple)) else [x]
    lo = torch.stack([t.min(0).values for t in xs]).min(0).values
    varies = (torch.stack([t.max(0).values for t in xs]).max(0).values - lo) > 0
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


def _short(v): return f"{v:.4g}"

def _raw_x(dls, x):
    "Inputs as the model sees them (standardised, with `normalize=True`) back in the data's own units, for the axes."
    f = getattr(dls, 'denormalize', None)
    return x if f is None else f(x)

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
    'grads': (lambda learn: _history_of(learn) and learn.param_history.has_grads,
              "each step's gradients in the parameter history, which this learner did not record: create it with "
              "regression_learner(dls, cbs=ParamHistory(grads=True)) and fit it again"),
}


def fitting_panels(learn) -> tuple:
    "The names of the panels in `PANELS` whose needs `learn` meets."
    return tuple(k for k, P in PANELS.items() if all(NEEDS[n][0](learn) for n in getattr(P, 'needs', ())))


class Panel:
    """One picture of a fit, on one axes, that moves with the frames. Subclass it and write two methods:
    `setup(ax)` draws what stays still and returns the artists that move; `update(k)` sets those to frame `k`.
    In animations and exports only the moving artists are redrawn each frame (blitted), text included, so a new panel
    is exported as fast as the built-in ones. Frame `k` shows the parameters `self.params(k)` (name -> tensor) at
    step `self.step(k)` with training loss `self.loss(k)`; `self.predict(x, k)` is the model's output for `x` there;
    `self.x`, `self.y` are the training data (scatter what `sample_sets((x, y))` keeps of them: big data is sampled,
    and the picture should say so). Several runs on one axes (compare_optimizers): `self.learns`,
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
            if not test(learn):
                raise ValueError(f"the {cls.name or cls.__name__!r} panel needs {what}; panels that fit "
                                 f"{type(learn.model).__name__}: {fitting_panels(learn)}")

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
        xs = [x] if self.xv is None else [x, self.xv]
        self.feat = _plot_feature(xs)
        lo, hi = min(float(t[:, self.feat].min()) for t in xs), max(float(t[:, self.feat].max()) for t in xs)
        pad = (hi - lo) * .02
        xg = x.mean(0, keepdim=True).repeat(self.n_grid, 1)
        xg[:, self.feat] = torch.linspace(lo - pad, hi + pad, self.n_grid)
        self.xg, self.xs = xg, _raw_x(dls, xg)[:, self.feat].numpy()  # the model sees xg; the axis shows raw units
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
        dls = self.learn.dls
        for (label, xs, ys), c, mk in zip(self.data, (dc, vc), 'os'):
            ax.scatter(xs, ys, s=14, c=c, alpha=.65, lw=0, marker=mk, label=label)
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
        ax.set_xlabel((xl if self.x.shape[1] - int((self.x == 1).all(0).sum()) <= 1 else f'{xl} (other features at their mean)')
                      + (' (the model is fitted on standardised x)' if getattr(dls, 'norm', None) is not None else ''))
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
        return '\n'.join(([] if step is None else [r.clock_label.format(int(step))]) + rows)

    def update(self, k:int):
        "Move the fitted line(s) and caption to frame `k`."
        for line, p in zip(self.lines, self.predss): line.set_ydata(p[k])
        self.text.set_text(self._caption(k))
        self._update_stop_note(k)


def _cpu_copy(model):
    import copy
    return copy.deepcopy(model).cpu()


def _width(model) -> int:
    "The widest parameter axis (a layer's units): a batched forward holds about (points x width) values per row."
    return max([max(p.shape) for p in model.parameters() if p.ndim] + [1])


def _named_flat(model) -> tuple:
    "The model's parameters as (layout [(name, shape)], flat names, flat CPU vector)."
    named = [(k, p.detach().cpu()) for k, p in model.named_parameters()]
    layout = [(k, tuple(p.shape)) for k, p in named]
    return layout, flat_names(layout), torch.cat([p.reshape(-1) for _, p in named]).float()


class LossSurface:
    """The training loss over a grid of two parameters (the others held at the model's current values), by `vmap` over
    chunks of the grid and batches of the data (memory stays bounded), on at most `max_n` training points (`note`)."""
    def __init__(self,
        learn:Learner, # the learner: its model, loss function and training data
        params=None, # two flat parameter names, e.g. ('w', 'b') or ('c1', 'c0'); default: the first two
        max_n:int|None=MAX_POINTS, # the loss on a seeded sample of this many training points when there are more; None: all
    ):
        self.learn, self.model = learn, _cpu_model(learn.model)
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
        chunk = max(1, budget // (min(len(self.x), rows) * _width(self.model)))
        with torch.no_grad():
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


def _equal_spans(xlim, ylim) -> tuple:
    "The limits widened so both axes span as much (on a squarish axes, a round bowl then looks round)."
    span = max(xlim[1] - xlim[0], ylim[1] - ylim[0])
    return tuple(((lo + hi - span) / 2, (lo + hi + span) / 2) for lo, hi in (xlim, ylim))


class SurfacePanel(Panel):
    "Loss contours over two parameters, the true values and the optimum (static); each run's path so far and point (moving)."
    name, needs = 'surface', ('two params',)
    equal_spans = False  # both axes span as much, so the loss's shape is not stretched (compare_scaling)

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
        if self.equal_spans: self.xlim, self.ylim = _equal_spans(self.xlim, self.ylim)
        self.P1, self.P2, self.Z = surf.grid(self.xlim, self.ylim, self.n)

    def _surface(self, params, max_n): return LossSurface(self.learn, params, max_n)

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
        note = f"on {self.surf.note}" if self.surf.note else ''
        cb.set_label('training loss' + (' (log scale)' if self.log else '') + (f'\n{note}' if note else ''))
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
        note = getattr(self.learn.dls, 'units_note', '')  # normalize=True: the parameters are those on standardised x
        ax.set_xlabel(self.surf.names[0] + note); ax.set_ylabel(self.surf.names[1] + note)
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


class EqualSurfacePanel(SurfacePanel):
    "The 'surface' panel with both axes spanning as much: a round bowl looks round, a narrow valley narrow."
    equal_spans = True


class LossPanel(Panel):
    """Each run's training loss against step (growing with the frames), log scale when it spans decades; the optimum's
    loss dotted; for a classifier, the training accuracy too (dashed, on the right axis)."""
    name, xlabel, ylabel = 'loss', 'step', 'training loss'
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
        ax.set_xlabel(self.xlabel); ax.set_ylabel(self.ylabel + (' (log scale)' if self.log else ''))
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


# -- the arithmetic of one step ('step' panel) ------------------------------------------------------------------------
def _fmt_param(v:float) -> str:
    """A parameter's value to the digits float32 holds: 7 decimals below 1 (seed 003's 0.80119529 is 0.8011953 here),
    7 significant digits above, scientific when very large or very small."""
    if not np.isfinite(v): return str(v)
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
    w, g, lr = d['before'][i], d['grad'][i], d['lr'][i]
    wd = d.get('wd', np.zeros(len(d['lr'])))[i]
    wd = 0. if not np.isfinite(wd) or not decoupled else wd
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
    fontsize = 12.  # at most: smaller when the lines would not fit the axes

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


def _align(frames:list) -> list:
    """`frames` (lists of lines: a string, or (key, cells) aligned with every row of that key in every frame) as lists
    of strings: the first cell left-aligned, the others right-aligned, each column as wide as its widest."""
    widths = {}
    for f in frames:
        for row in f:
            if isinstance(row, str): continue
            key, cells = row
            for j, c in enumerate(cells): widths[key, j] = max(widths.get((key, j), 0), len(c))
    return [[row if isinstance(row, str) else
             ' '.join(c.ljust(widths[row[0], j]) if j == 0 else c.rjust(widths[row[0], j]) for j, c in enumerate(row[1]))
             for row in f] for f in frames]


def _step_texts(h, recs, label, full_batch, max_params) -> list:
    "The lines of the 'step' panel for every frame of `recs` (one list of lines per frame)."
    d = {k: v.double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
         for k, v in h.step_data.items()}
    after, names, losses = h.flat.double().numpy(), h.flat_names, h.losses.double().numpy()
    kind, decoupled = step_kind(h.opt_cbs), 'l2_reg' not in h.opt_cbs
    shown = list(range(min(len(names), max_params)))
    more = len(names) - len(shown)
    loss = 'loss' if full_batch else 'batch loss'
    frames, last = [], int(h.steps[-1])
    for k in range(len(recs)):
        i = int(recs.idx[k]) if recs.idx is not None else len(h) - 1  # the model as it is: the history's last record
        s = int(h.steps[i])
        head = (f"{label}: " if label else '') + f"step {s} of {last}"
        if s == 0 or not np.isfinite(d['grad'][i]).any():
            lines = [head + (': the start' if s == 0 else ': its gradient was not recorded')]
            lines += [('r', [names[j], '=', _fmt_param(after[i, j])]) for j in shown]
            if more: lines.append(f"... and {more} more parameters")
            frames.append(lines + [f"{loss} {losses[i]:.6g}"])
            continue
        lr, wd = d['lr'][i], d.get('wd', np.zeros(len(after)))[i]
        wd = 0. if not np.isfinite(wd) else wd
        decay = wd != 0 and decoupled
        keep, rows = ('·(1-lr·wd)' if decay else ''), []
        def old(j): return _fmt_param(d['before'][i, j]) + (f"×{1 - lr * wd:g}" if decay else '')  # noqa: B023
        if kind == 'sgd':
            head += f" · plain SGD, lr {lr:g}" + (f", wd {wd:g}" if wd else '')
            top = [f"p ← p{keep} - lr·∂L/∂p" + ('  (∂L/∂p includes wd·p: L2)' if wd and not decoupled else '')]
            for j in shown:
                rows.append(('r', [names[j], '=', old(j), '-', f"{lr:g}×{_fmt(d['grad'][i, j])}", '=', _fmt_param(after[i, j])]))
        elif kind == 'momentum':
            mom = d['mom'][i]
            head += f" · SGD with momentum, lr {lr:g}, mom {mom:g}" + (f", wd {wd:g}" if wd else '')
            top = ["grad_avg ← mom·grad_avg + ∂L/∂p", f"p ← p{keep} - lr·grad_avg"]
            for j in shown:
                rows.append(('a', [names[j], 'grad_avg =', f"{mom:g}×{_fmt(d['grad_avg_before'][i, j])}", '+',
                                   _fmt(d['grad'][i, j]), '=', _fmt(d['grad_avg'][i, j])]))
                rows.append(('a', ['', f"{names[j]} =", old(j), '-', f"{lr:g}×{_fmt(d['grad_avg'][i, j])}", '=',
                                   _fmt_param(after[i, j])]))
        elif kind == 'adam':
            mom, sqr, eps, t = d['mom'][i], d['sqr_mom'][i], d['eps'][i], d['opt_step'][i]
            b1, b2 = 1 - mom ** t, 1 - sqr ** t
            head += f" · Adam, lr {lr:g}" + (f", wd {wd:g}" if wd else '')
            top = [f"mom {mom:g}, sqr_mom {sqr:g}, eps {eps:g}, g = ∂L/∂p",
                   "grad_avg ← mom·grad_avg + (1-mom)·g",
                   "sqr_avg ← sqr_mom·sqr_avg + (1-sqr_mom)·g²",
                   f"p ← p{keep} - step·grad_avg / (√(sqr_avg/(1-sqr_mom^t)) + eps)",
                   f"step = lr/(1-mom^t) = {lr / b1:.5g}, 1-sqr_mom^t = {b2:.5g} (t = {t:g})"]
            for j in shown:
                g, ga, sa = d['grad'][i, j], d['grad_avg'][i, j], d['sqr_avg'][i, j]
                rows.append(('a', [names[j], 'grad_avg =', f"{mom:g}×{_fmt(d['grad_avg_before'][i, j])}", '+',
                                   f"{1 - mom:.4g}×{_fmt(g)}", '=', _fmt(ga)]))
                rows.append(('a', ['', 'sqr_avg =', f"{sqr:g}×{_fmt(d['sqr_avg_before'][i, j])}", '+',
                                   f"{1 - sqr:.4g}×{_fmt(g * g)}", '=', _fmt(sa)]))
                rows.append(('a', ['', f"{names[j]} =", old(j), '-',
                                   f"{lr / b1:.5g}×{_fmt(ga)}/{_fmt(np.sqrt(sa / b2) + eps)}", '=', _fmt_param(after[i, j])]))
        else:
            head += f" · {', '.join(c for c in h.opt_cbs if c not in ('weight_decay', 'l2_reg')) or 'optimizer'}, lr {lr:g}"
            top = ["p ← p + (the optimizer's update)"]
            for j in shown:
                rows.append(('r', [names[j], '=', _fmt_param(d['before'][i, j]), '+',
                                   _fmt(after[i, j] - d['before'][i, j]), '=', _fmt_param(after[i, j])]))
        lines = [head, *top, *rows]
        if more: lines.append(f"... and {more} more parameters")
        lines.append(f"{loss} {d['loss_before'][i]:.6g} → {losses[i]:.6g}" + ('' if full_batch else '  (this batch → the next)'))
        frames.append(lines)
    return _align(frames)


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
    xlabel, ylabel = 'samples seen', 'training loss (all data)'

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


PANELS = {'fit': FitPanel, 'surface': SurfacePanel, 'loss': LossPanel, 'step': StepPanel}


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


def panel_makers(panels, learns) -> list:
    "What makes each of `panels` (names from `PANELS`, `Panel` subclasses, callables), checked against `learns` first."
    panels = _panel_list(panels)
    unknown = [p for p in panels if not (callable(p) or isinstance(p, str) and p in PANELS)]
    if unknown or not panels:
        raise ValueError(f"unknown panels {unknown or panels!r}: choose from {tuple(PANELS)} (those that fit "
                         f"{type(learns[0].model).__name__}: {fitting_panels(learns[0])}), or give a Panel subclass")
    make = [PANELS[_panel_name(p, learns)] if isinstance(p, str) else p for p in panels]
    for m in make:  # what a panel needs is checked before any drawing
        m = getattr(m, 'func', m)  # functools.partial(SomePanel, option=...)
        if isinstance(m, type) and issubclass(m, Panel):
            for lrn in learns: m.check(lrn)
    return make


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
        learns, recss = _listify(learn), _listify(recs)
        if len(learns) != len(recss): raise ValueError(f"{len(learns)} learners but {len(recss)} Records: give one per learner")
        if len({len(r) for r in recss}) > 1:
            raise ValueError(f"every Records must have as many frames, got {[len(r) for r in recss]}: use Records.aligned")
        labels = list(labels) if labels is not None else [None] * len(learns)
        make = panel_makers(panels, learns)
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
        restyle(self.axs, None) if ax is not None else restyle(fig.axes, fig)  # set_style('classroom'): larger
        if ax is None: fig.tight_layout()

    def __len__(self): return len(self.recs)

    def draw(self, k:int) -> list:
        "Set every moving artist to frame `k`; return them (a FuncAnimation `func`)."
        for p in self.panels: p.update(k)
        return self.artists

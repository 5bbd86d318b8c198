"""What every panel shares: `Panel` (a picture of a fit on one axes: `setup(ax)` draws the still part and returns the
artists that move, `update(k)` moves them to frame `k` of its `Records`), `PANELS` (the registry of named panels), what
a panel may need of a learner (`NEEDS`), the colours, and the sampling of big data."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from torch.func import functional_call

from ..classify import is_classifier
from ..history import ParamHistory
from ..learner import has_data
from ..models import flat_names, private_model
from ..optimum import OptimumTooCostly

__all__ = ['COLORS', 'Panel', 'PANELS', 'NEEDS', 'MAX_POINTS', 'sample_rows', 'sample_sets', 'outputs', 'fitting_panels']

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey.
COLORS = dict(data='#0072B2', valid='#56B4E9', fit='#D55E00', truth='#000000', optimum='#009E73',
              path='#CC79A7', extra=('#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9', '#F0E442'),
              # several runs on one axes: the data goes grey, so blue is free; green stays the optimum's. The first three
              # stay apart for deuteranopes and protanopes too (CIELAB distance >= 60 under Machado et al.'s simulation;
              # vermillion and orange, 18, do not)
              runs=('#D55E00', '#0072B2', '#000000', '#56B4E9', '#CC79A7', '#E69F00'), grey='#8C8C8C',
              # class labels (with a marker each): hues apart for colour-blind readers, light tints of them apart too
              # (the background), each dark enough for a hollow marker on white; not the optimum's green, nor black
              # (the boundary)
              classes=('#0072B2', '#E69F00', '#CC3311', '#DDCC77', '#CC6677'), boundary='#000000', accuracy='#0072B2')
MARKERS = ('o', 's', '^', 'D', 'v', 'P')


# Big data: a million points drawn help nobody and cost seconds and gigabytes. A picture scatters at most MAX_POINTS
# points in all (a seeded random sample, the same share of each data set) and a loss surface sums at most MAX_POINTS
# training points; the picture says so. Smaller data is drawn and summed whole, as it always was.
MAX_POINTS = 10_000


def sample_rows(n:int, max_n:int|None=MAX_POINTS, seed:int=42) -> torch.Tensor|None:
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


def _short(v): return f"{v:.4g}"

def _raw_x(dls, x):
    "Inputs as the model sees them (standardised, with `normalize=True`) back in the data's own units, for the axes."
    f = getattr(dls, 'denormalize', None)
    return x if f is None else f(x)


def _listify(x): return list(x) if isinstance(x, (list, tuple)) else [x]

_cpu_model = private_model  # the name panels used before the copy was private

_NOTE = dict(boxstyle='round', fc='white', ec='0.7', alpha=.85)


def _n_params(learn) -> int: return sum(p.numel() for p in learn.model.parameters())

def _history_of(learn) -> bool: return isinstance(getattr(learn, 'param_history', None), ParamHistory)


# A picture waits at most this long for the learner's optimum (a big softmax regression): then it is drawn without it,
# saying so (`Panel.optimum`). The failure is remembered beside the learner: the next panel does not wait again.
PICTURE_SECONDS = 3.


def _optimum(learn) -> dict | None:
    """The learner's `optimum()`, or None when its model/loss has none (TypeError), no finite one (ValueError) or one too
    costly to solve within `PICTURE_SECONDS` (`OptimumTooCostly`)."""
    try: return learn.optimum(max_seconds=PICTURE_SECONDS)
    except (TypeError, ValueError): return None


# What a panel may need of its learner (`Panel.needs`): name -> (test, what to say when it fails). Add to it for new needs.
NEEDS = {
    'history': (_history_of, "the parameter history: create the learner with history=True (the default)"),
    'two params': (lambda learn: _n_params(learn) >= 2,
                   "a model with at least two parameters (it draws the loss over two of them)"),
    'classes': (is_classifier, "class labels: a classification_learner on ClsDataLoaders (e.g. synth_blobs().dataloaders())"),
    'two features': (lambda learn: learn.dls.n_in == 2, "data with two features (it draws the plane of x[0] and x[1])"),
    'data': (has_data, "training data, which a learner from load_learner does not hold (export keeps the model and its "
                       "history, not the data): give it some first, learn.dls = RegDataLoaders.from_arrays(x, y) (or "
                       "ClsDataLoaders); the 'loss' and 'step' panels draw the history alone"),
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
        if 'data' in self.needs:  # made directly (plot_loss_surface), not by Frames, which checks every need first
            for lrn in self.learns:
                if not has_data(lrn): raise ValueError(f"the {self.name or type(self).__name__!r} panel needs {NEEDS['data'][1]}")
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

    def model_copy(self, run:int=0) -> torch.nn.Module:
        "This panel's private CPU copy of run `run`'s model (`private_model`): call it with any parameters, never `learn.model`."
        if not hasattr(self, '_cpu'): self._cpu = [private_model(lrn.model) for lrn in self.learns]
        return self._cpu[run]

    def predict(self, x, k:int, run:int=0) -> np.ndarray:
        "The model's output for inputs `x` (n, n_features) at frame `k`'s parameters, as a flat numpy array."
        with torch.no_grad():
            return functional_call(self.model_copy(run), self.params(k, run), (torch.as_tensor(x).float(),)).flatten().numpy()

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

    def optimum(self) -> dict | None:
        """The learner's optimum to draw, or None: none known for its model and loss, none finite (separable classes), or
        too costly to solve within `PICTURE_SECONDS`; then `optimum_note` says so and `_setup_optimum_note` shows it.
        `no_finite_optimum` says whether it has none finite (the classes are separable)."""
        self.no_finite_optimum = False
        if not has_data(self.learn): return None
        try: return self.learn.optimum(max_seconds=PICTURE_SECONDS)
        except OptimumTooCostly: self.optimum_note = f"optimum not drawn: not solved within {PICTURE_SECONDS:g} s"
        except TypeError: pass
        except ValueError: self.no_finite_optimum = True
        return None

    def _setup_optimum_note(self, ax):
        "Say in the legend (call it before the legend is made) that the optimum is left out because it was too costly."
        note = getattr(self, 'optimum_note', '')
        if note: ax.plot([], [], ' ', label=note)  # a legend entry: it covers nothing the picture explains

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


# Below this many (theta, point, unit) values a grid of losses or probabilities (a landscape's, a surface's, a boundary's
# chunk of frames) takes ~0.05 s on one thread, and torch's threads cost more CPU than they save: their parallel regions
# wait on each other (2 threads: 0.11 s CPU for the bench's 60x60 grid of a 1-8-1 MLP on 200 points vs 0.06 s on one;
# its path's SVD, 0.3 ms on one thread, took up to 0.3-1 s on a busy machine; a classifier's 100x100 surface, 1.6M
# values, 0.25 s of wall time vs 0.05 s). The numbers are the same either way.
ONE_THREAD_VALUES = 1 << 24


@contextmanager
def _one_thread(values:int, most:int|None=None):
    """torch on one thread meanwhile, if a computation of `values` (theta, point, unit) values is small: at most `most`
    (default `ONE_THREAD_VALUES`)."""
    was = torch.get_num_threads()
    if values > (ONE_THREAD_VALUES if most is None else most) or was == 1:
        yield
        return
    torch.set_num_threads(1)
    try: yield
    finally: torch.set_num_threads(was)


def _width(model) -> int:
    "The widest parameter axis (a layer's units): a batched forward holds about (points x width) values per row."
    return max([max(p.shape) for p in model.parameters() if p.ndim] + [1])


def _named_flat(model) -> tuple:
    "The model's parameters as (layout [(name, shape)], flat names, flat CPU vector)."
    named = [(k, p.detach().cpu()) for k, p in model.named_parameters()]
    layout = [(k, tuple(p.shape)) for k, p in named]
    return layout, flat_names(layout), torch.cat([p.reshape(-1) for _, p in named]).float()


def _outputs_each(model, params, x:torch.Tensor) -> list:
    """`functional_call(model, p, (x,))` for each of `params` (dicts name -> tensor), one call each: the same calls of
    `model` on the same tensors, its parameters swapped in once a record (functional_call checks and swaps them in and
    out each call, ~15 us: 1.5 ms a run of 100 frames) and given back at the end. A model with buffers, with parameters
    `params` leaves out or under two names: functional_call itself."""
    names = dict(model.named_parameters(remove_duplicate=False))
    if not len(params) or next(model.buffers(), None) is not None or set(params[0]) != set(names) \
            or len({id(t) for t in names.values()}) < len(names):
        return [functional_call(model, p, (x,)) for p in params]
    slots = [(model.get_submodule(k.rpartition('.')[0]), k.rpartition('.')[2]) for k in names]
    kept = [m._parameters[leaf] for m, leaf in slots]
    out = []
    try:
        for p in params:
            for (m, leaf), k in zip(slots, names): m._parameters[leaf] = p[k]
            out.append(model(x))
    finally:
        for (m, leaf), t in zip(slots, kept): m._parameters[leaf] = t
    return out


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


# The named panels, for `panels=('fit', ...)`: each panel module adds its own (`PANELS['fit'] = FitPanel`).
PANELS = {}

"""The 'weights' panel: what a model learned, as pictures of its weights. Each output's weights on the inputs (a
`LogisticModel`'s one logit, a `SoftmaxModel`'s one per class, a few units of an `MLPModel`'s first layer) drawn as an
image of the input (8x8 for digits: the data's `img_shape`), or, for data that are not images, as a row of a heat-map
with the features named; a diverging colour map centred on 0 with a colour bar, moving with the frames."""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from ..models import LinearModel, MLPModel, SoftmaxModel
from ..records import _history
from .base import NEEDS, PANELS, Panel, _short

__all__ = ['WeightsPanel', 'weight_rows']

# Diverging, centred on 0: ColorBrewer's red-blue, which stays two hues apart for the common colour-vision deficiencies
# (and reads as dark-light-dark in grey). The same map as `plot_params`' heat-map of many parameters.
CMAP = 'RdBu_r'


def _weight_key(model) -> tuple | None:
    "(the name of the first layer's weight, whether its rows are the inputs) for the models the panel draws, else None."
    if isinstance(model, SoftmaxModel): return 'w', False  # (n_classes, n_in)
    if isinstance(model, LinearModel): return 'w', True  # (n_in,): one output (LogisticModel is a LinearModel)
    if isinstance(model, MLPModel): return 'l1.w', True  # (n_in, hidden)
    return None


def weight_rows(model, params:dict) -> torch.Tensor:
    "(n_outputs, n_in): each output's (class's, first-layer unit's) weights on the inputs, from `params` (name -> tensor)."
    key, inputs_first = _weight_key(model)
    w = torch.as_tensor(params[key]).detach().float().cpu()
    if w.ndim == 1: return w[None]
    return w.T if inputs_first else w


NEEDS['weights on inputs'] = (lambda learn: _weight_key(learn.model) is not None,
                              "a model whose outputs weigh the inputs: LogisticModel, SoftmaxModel, LinearModel, or an "
                              "MLPModel (its first layer's units); it draws each output's weights on the inputs")


def _vocab(learn) -> list | None:
    v = getattr(learn.dls, 'vocab', None)
    return None if v is None else [str(c) for c in v]


def _tiles_grid(n:int, ncols:int|None) -> tuple:
    "(rows, cols) of `n` small images: one row up to 5, else two or more rows of at most 5 (10 classes: 2 x 5)."
    cols = ncols or (n if n <= 5 else min(5, math.ceil(n / math.ceil(n / 5))))
    return math.ceil(n / cols), cols


class WeightsPanel(Panel):
    """Each output's weights on the inputs, moving with the frames: for image data (`dls.img_shape`, e.g. `digits()`'s
    8x8) one small image per class (one for a single logit; a few first-layer units of an MLP), else a heat-map of
    outputs x features. Red weights raise an output, blue ones lower it (the colour bar, centred on 0, is fixed over
    the frames, so the weights are seen to grow); pixels that are blank in every image get no gradient and keep their
    initial weights."""
    name, needs = 'weights', ('weights on inputs',)

    def __init__(self, learn, recs, labels=None,
        max_units:int=8, # an MLP's first layer: draw this many units (those whose weights moved most by the last frame)
        ncols:int|None=None, # images per row (default: up to 5)
        change:bool=False, # draw each weight's change since the fit began: what it learned, without a random start
    ):
        super().__init__(learn, recs, labels)
        if self.multi: raise ValueError("the 'weights' panel draws one run: with several, pass split=True (small multiples)")
        model = self.learn.model
        key, _ = _weight_key(model)
        if key not in self.recs.params[0]:
            raise ValueError(f"the 'weights' panel needs {key!r} in the history, which recorded {list(self.recs.params[0])}: "
                             f"record it with regression_learner/classification_learner(..., cbs=ParamHistory(params=[{key!r}, ...]))")
        W = torch.stack([weight_rows(model, p) for p in self.recs.params]).numpy()  # (frames, outputs, n_in)
        start = self._start(key)
        self.units = None
        if isinstance(model, MLPModel):
            moved = np.abs(W[-1] - start).sum(1)
            self.units = np.sort(np.argsort(-moved, kind='stable')[:max_units])
            W, start = W[:, self.units], start[self.units]
        self.change = bool(change)
        self.W = W - start[None] if self.change else W
        n_in = W.shape[2]
        shape = getattr(self.learn.dls, 'img_shape', None)
        self.img_shape = tuple(shape) if shape is not None and int(np.prod(shape)) == n_in else None
        self.ncols = ncols
        finite = np.abs(self.W[np.isfinite(self.W)])
        # Fixed over the frames, so that growth shows; a few outliers (a diverging run) do not wash out the rest.
        self.lim = float(np.percentile(finite, 99.5)) if finite.size else 1.
        self.lim = self.lim if self.lim > 0 else 1.
        self.norm = Normalize(-self.lim, self.lim)

    def _start(self, key) -> np.ndarray:
        "(outputs, n_in): the weights before the first step (the history's first record), or at the first frame without one."
        h = _history(self.learn)
        p = {key: h.params[key][0]} if h is not None and key in h.params else self.recs.params[0]
        return weight_rows(self.learn.model, p).numpy()

    # -- what each image is called ------------------------------------------------------------------------------
    def _titles(self) -> list:
        m, vocab = self.learn.model, _vocab(self.learn)
        if self.units is not None: return [f"unit {u + 1}" for u in self.units]
        if self.W.shape[1] == 1:
            if vocab is not None and len(vocab) == 2: return [f"{vocab[1]} (+) vs {vocab[0]} (−)"]
            return ['class 1 (+) vs class 0 (−)'] if getattr(self.learn.dls, 'n_classes', None) else ['w']
        return [vocab[i] if vocab is not None and len(vocab) == m.n_out else f"class {i}" for i in range(self.W.shape[1])]

    def _what(self) -> str:
        n, m = self.W.shape[1], self.learn.model
        on = f"{self.img_shape[0]}x{self.img_shape[1]} pixels" if self.img_shape else f"{self.W.shape[2]} features"
        what = "weights" if not self.change else "weights' change since the start"
        if self.units is not None:
            h = m.hidden[0]
            whose = "each unit's" if n == h else f"{n} of {h} units'"
            return f"first layer: {whose} {what} on the {on}"
        return f"the {what} on the {on}" if n == 1 else f"each class's {what} on the {on}"

    # -- drawing -------------------------------------------------------------------------------------------------
    def setup(self, ax) -> list:
        self.ax = ax
        self.meshes = self._setup_images(ax) if self.img_shape else self._setup_heatmap(ax)
        # beside the images as drawn (an equal-aspect axes shrinks to them at draw time): as tall as they are
        cax = ax.inset_axes([1.04, 0, .05, 1]) if self.img_shape else ax.inset_axes([1.03, 0, .04, 1])
        cax.set_zorder(.4)  # under the moving images in the draw order: nothing static is composited over them per frame
        cb = ax.figure.colorbar(ScalarMappable(self.norm, CMAP), cax=cax, extend=self._extend())
        label = self._bar_label()
        cb.set_label(label if self.img_shape else label.replace(' (', '\n(', 1))  # a heat-map's bar can be short
        # the caption is the title's second line: above the images, never over them, however narrow the axes
        self.what = self._what()
        self.text = ax.set_title(self.what + '\n', fontsize=10)
        return [*self.meshes, self.text, *self._setup_stop_note(ax)]

    def _bar_label(self) -> str:
        "What the colours mean: which class a weight speaks for, or which way it moves the prediction."
        vocab, classes = _vocab(self.learn), getattr(self.learn.dls, 'n_classes', None)
        if self.units is not None: return 'weight'
        if self.W.shape[1] == 1 and classes:
            a, b = vocab if vocab is not None and len(vocab) == 2 else ('class 0', 'class 1')
            return f"weight (+ for {b}, − for {a})"
        return 'weight (+ for the class, − against it)' if classes else 'weight (+ raises the prediction, − lowers it)'

    def _extend(self) -> str:
        big = np.nanmax(np.abs(self.W)) > self.lim * (1 + 1e-6)
        return 'both' if big else 'neither'

    def _setup_images(self, ax) -> list:
        "One small image per output in a grid, each labelled above it (one output: no label, the colour bar says it)."
        h, w = self.img_shape
        n = self.W.shape[1]
        rows, cols = _tiles_grid(n, self.ncols)
        gx, gy = (.25 * w, .45 * h) if n > 1 else (0, 0)  # gaps: each image's label sits in the one above it
        meshes = []
        for i, t in enumerate(self._titles()):
            r, c = divmod(i, cols)
            x0, y0 = c * (w + gx), gy + r * (h + gy)
            meshes.append(ax.pcolormesh(x0 + np.arange(w + 1), y0 + np.arange(h + 1), self.W[-1, i].reshape(h, w),
                                        cmap=CMAP, norm=self.norm, shading='flat'))
            if n > 1: ax.text(x0 + w / 2, y0 - .08 * h, t, ha='center', va='bottom', fontsize=10, zorder=.5)
            ax.add_patch(_frame(x0, y0, w, h))
        width, height = cols * (w + gx) - gx, rows * (h + gy)
        pad = .06 * max(w, h)  # room for the outlines
        ax.set_xlim(-pad, width + pad); ax.set_ylim(height + pad, -pad)  # row 0 on top
        ax.set_aspect('equal'); ax.set_axis_off()
        return meshes

    def _setup_heatmap(self, ax) -> list:
        "Features that are not pixels: a heat-map, one row per output, one column per (named) feature."
        n, n_in = self.W.shape[1:]
        mesh = ax.pcolormesh(np.arange(n_in + 1), np.arange(n + 1), self.W[-1], cmap=CMAP, norm=self.norm, shading='flat',
                             edgecolors='white', linewidth=.5)
        names = getattr(self.learn.dls, 'feature_names', None) or [f"x[{j}]" for j in range(n_in)]
        every = math.ceil(n_in / 16)  # at most 16 names fit under the axes
        ax.set_xticks(np.arange(0, n_in, every) + .5, names[::every], rotation=30 if n_in > 3 else 0,
                      ha='right' if n_in > 3 else 'center', fontsize=9)
        ax.set_yticks(np.arange(n) + .5, self._titles(), fontsize=9)
        ax.set_ylim(n, 0)  # row 0 on top
        ax.set_box_aspect(max(.35, min(1, max(n, 5) / n_in)))  # one row still tall enough for its colour bar
        ax.tick_params(length=0)
        return [mesh]

    def _caption(self, k:int) -> str:
        step = self.step(k)
        out = ('' if step is None else f"step {step}  ") + f"loss {_short(self.loss(k))}"
        b = self.params(k).get('b')
        if self.units is None and b is not None and torch.as_tensor(b).numel() == 1: out += f"  b {_short(float(b))}"
        return out

    def update(self, k:int):
        "Set each image (or heat-map row) to frame `k`'s weights, and the caption to its step and loss."
        if self.img_shape:
            for i, mesh in enumerate(self.meshes): mesh.set_array(self.W[k, i].reshape(self.img_shape))
        else: self.meshes[0].set_array(self.W[k])
        self.text.set_text(f"{self.what}\n{self._caption(k)}")
        self._update_stop_note(k)


def _frame(x0, y0, w, h) -> Rectangle:
    "A thin grey outline around an image (under it, a little larger): blank (white) weights stay inside their square."
    e = .03 * max(w, h)
    return Rectangle((x0 - e, y0 - e), w + 2 * e, h + 2 * e, fill=False, ec='0.6', lw=.8, zorder=.5)


PANELS['weights'] = WeightsPanel

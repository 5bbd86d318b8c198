"""Pictures of image data (rows of pixels with `dls.img_shape`, e.g. `digits()`): `learn.show_misclassified()` (the
validation images with target and prediction, the wrong ones first, as fastai's `show_results` / `plot_top_losses`;
`learn.show_results()` draws it for image data), the data's own pictures (`RealData.show`, `dls.show()` of images), and
`RealData.show` of real tables (features named on the axes)."""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from fastai.learner import Learner
from fastcore.basics import patch

from .classify import is_classifier, probabilities
from .data import RegDataLoaders, check_positive
from .panels import COLORS
from .plots import check_axs, show_classes
from .realdata import RealData
from .style import restyle

__all__ = []  # it adds methods: `Learner.show_misclassified`, `RealData.show` (and images to `show_results`, `dls.show`)

WRONG = COLORS['fit']  # vermillion: a misclassified image's label and frame (bold and framed too, not colour alone)
RIGHT = '0.2'
IMAGE, GAP = 1., .25  # inches: each image's side, and the gap between images in a row (8 a row: 10 inches wide)
LINE = .19  # inches a line of 10-point text takes, with its spacing


def image_shape(dls) -> tuple | None:
    "The (height, width) of the images whose pixels are the rows of `dls` (`dls.img_shape`), or None for other data."
    shape = getattr(dls, 'img_shape', None)
    if shape is None: return None
    n_in = getattr(dls, 'n_in', None)
    if n_in is not None and int(np.prod(shape)) != n_in:
        raise ValueError(f"dls.img_shape={tuple(shape)} holds {int(np.prod(shape))} pixels but the data has {n_in} features: "
                         f"set it to the (height, width) of the images, with height * width = {n_in}")
    return tuple(int(v) for v in shape)


def _grid_width(cols:int) -> float: return cols * IMAGE + (cols - 1) * GAP + .2


def _image_grid(rows:int, cols:int, title_lines:int, head_lines:int) -> tuple:
    """A new pyplot figure of `rows` x `cols` square image axes, each with room for `title_lines` of title above it and
    `head_lines` of suptitle over them all; laid out here (no tight_layout): (figure, grid of axes)."""
    t, top = title_lines * LINE + .08, head_lines * LINE + .12  # inches above each image, and above the first row
    W, H = _grid_width(cols), top + rows * (IMAGE + t) + .1
    fig, grid = plt.subplots(rows, cols, figsize=(W, H), squeeze=False,
                             gridspec_kw=dict(left=.1 / W, right=1 - .1 / W, top=1 - (top + t) / H, bottom=.1 / H,
                                              wspace=GAP / IMAGE, hspace=t / IMAGE))
    return fig, grid


def _draw_image(ax, pixels, shape, vmin, vmax, title='', color=RIGHT, wrong=False):
    "One image on `ax` (ink dark on white, as the digits were written), no ticks, titled; a wrong one framed in `WRONG`."
    ax.imshow(np.asarray(pixels, dtype=np.float32).reshape(shape), cmap='Greys', vmin=vmin, vmax=vmax,
              interpolation='nearest')
    ax.set_xticks([]); ax.set_yticks([])
    ax.set_title(title, fontsize=10, color=color, fontweight='bold' if wrong else 'normal', pad=3, linespacing=1.15)
    for sp in ax.spines.values():
        sp.set_edgecolor(WRONG if wrong else '0.7')
        sp.set_linewidth(2.5 if wrong else .8)


HOW = ("the wrong ones first (bold, framed), then the right ones, the least sure first; over each: the true class, the "
       "predicted one and its probability")


def _per_line(inches:float) -> int:
    "About how many characters of 10-point text a line `inches` wide holds."
    return max(30, int(inches * 12))


def _names(dls, k:int) -> list:
    v = getattr(dls, 'vocab', None)
    return [str(c) for c in v] if v is not None and len(v) == k else [str(i) for i in range(k)]


def show_image_rows(x, y, shape, names=None, per_class:int=8, axs=None, title=None):
    "Draw up to `per_class` images of each class, one row per class (the class's name over each image)."
    x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu().reshape(-1)
    k = int(y.max()) + 1
    names = names or [str(i) for i in range(k)]
    picks = [torch.nonzero(y == c).flatten()[:per_class] for c in range(k)]
    cols = max(len(p) for p in picks)
    cells = [(c, int(i)) for c, p in enumerate(picks) for i in p]
    if axs is None:
        _, grid = _image_grid(k, cols, 1, 1 if title else 0)
        for r, p in enumerate(picks):
            for ax in grid[r, len(p):]: ax.set_visible(False)
        axs = [ax for r, p in enumerate(picks) for ax in grid[r, :len(p)]]
    else: axs = check_axs(axs, len(cells), f"{len(cells)} images")
    lo, hi = float(x.min()), float(x.max())
    for ax, (c, i) in zip(axs, cells): _draw_image(ax, x[i], shape, lo, hi, names[c])
    fig = axs[0].figure
    if title: fig.suptitle(title, fontsize=10, y=1 - .06 / fig.get_figheight(), va='top')
    restyle(axs, fig)


@patch
def show_misclassified(self:Learner,
    ds_idx:int=1, # 1: the validation set (the training set when there is none), 0: the training set
    dl=None, # or any loader of (x, y) image rows, e.g. `learn.dls.test_dl((x, y), with_labels=True)`
    max_n:int=24, # at most this many images
    ncols:int=8, # images per row
    axs=None, # matplotlib Axes to draw into, one per image (default: a new pyplot figure)
) -> None:
    """Draw a grid of images with their target and the model's prediction (and its probability): the misclassified first
    (bold, framed in vermillion), the most confidently wrong first, then the right ones, the least sure first — fastai's
    `show_results` and `plot_top_losses` in one picture. For image data: the loaders' `img_shape` (`digits()` sets it)."""
    if axs is not None: check_axs(axs, 1, 'images')  # what it is, before anything else is looked at
    dls = self.dls
    shape = image_shape(dls)
    if shape is None:
        raise ValueError("show_misclassified draws images: it needs the data's image shape in dls.img_shape, e.g. the "
                         "loaders of digits() (for your own pixels, set dls.img_shape = (height, width))")
    if not is_classifier(self):
        raise TypeError(f"show_misclassified needs class labels (a classification_learner on ClsDataLoaders), got "
                        f"{type(dls).__name__}: for a regression use learn.show_results()")
    max_n, ncols = check_positive('max_n', max_n, int), check_positive('ncols', ncols, int)
    if dl is None:
        if ds_idx == 1 and not dls.has_valid: ds_idx = 0
        if ds_idx not in (0, 1): raise ValueError(f"ds_idx must be 0 (training set) or 1 (validation set), got {ds_idx!r}")
        dl, where = dls[ds_idx], ('training set', 'validation set')[ds_idx]
    else: where = 'given data'
    if getattr(dl, 'y', None) is None:
        raise ValueError("show_misclassified needs targets: give a loader of (x, y), e.g. dls.test_dl((x, y), with_labels=True)")
    x, y = dl.x, dl.y.reshape(-1).long()
    with torch.no_grad(): z = self.model(x)  # reads the model as it is (as get_preds does); nothing is written into it
    P = probabilities(z.float(), self.loss_func).cpu()
    y = y.cpu()
    pred = P.argmax(-1)
    right = pred == y
    sure = P.gather(1, y[:, None])[:, 0]  # the probability of the true class
    order = np.lexsort((sure.numpy(), right.numpy()))[:max_n]  # wrong first; least sure of the truth first
    names = _names(dls, P.shape[-1])
    raw = dls.denormalize(x.cpu()) if hasattr(dls, 'denormalize') else x.cpu()
    lo, hi = float(raw.min()), float(raw.max())
    if axs is None:
        rows, cols = math.ceil(len(order) / ncols), min(len(order), ncols)
        head = 1 + len(textwrap.wrap(HOW, _per_line(_grid_width(cols))))
        fig, grid = _image_grid(rows, cols, 2, head)
        for ax in grid.ravel()[len(order):]: ax.set_visible(False)
        cells = list(grid.ravel()[:len(order)])
    else: cells = check_axs(axs, len(order), f"{len(order)} images")[:len(order)]
    for ax, i in zip(cells, order):
        wrong = not bool(right[i])
        title = f"true {names[y[i]]}\npred {names[pred[i]]} ({float(P[i, pred[i]]):.2f})"
        _draw_image(ax, raw[i], shape, lo, hi, title, WRONG if wrong else RIGHT, wrong)
    fig = cells[0].figure
    n, n_wrong = len(y), int((~right).sum())
    head = f"{where}: {n_wrong} of {n:,} misclassified (accuracy {1 - n_wrong / n:.1%})"
    fig.suptitle(head + '\n' + textwrap.fill(HOW, _per_line(fig.get_figwidth())), fontsize=10,
                 y=1 - .06 / fig.get_figheight(), va='top')
    restyle(cells, fig)


def show_image_dls(dls:RegDataLoaders, batch:bool=False, axs=None, per_class:int=8) -> None:
    "Draw images of each class of `dls` (one training batch, with `batch`), one row per class."
    x, y = dls.train.one_batch() if batch else (dls.train.x, dls.train.y)
    k = getattr(dls, 'n_classes', None) or int(y.max()) + 1
    what = f"{'one training batch' if batch else 'training set'} ({len(x):,} images)"
    show_image_rows(dls.denormalize(x.cpu()), y, image_shape(dls), _names(dls, k), per_class, axs, what)


@patch
def show(self:RealData, axs=None, per_class:int=8, **kwargs) -> None:
    """Draw the data: images (digits) `per_class` of each class a row; a table's classes by the first two features
    (named on the axes); a continuous target against each feature (a grid of panels)."""
    if self.img_shape is not None:
        return show_image_rows(self.x, self.y, self.img_shape, self.vocab, per_class, axs, title=repr(self))
    if self.vocab is not None:
        ax = check_axs(axs, 1, 'one picture')[0] if axs is not None else plt.subplots(figsize=(5.6, 4.6))[1]
        show_classes(self.x, self.y, ax=ax, title=repr(self), **kwargs)
        ax.set_xlabel(self.feature_names[0])
        if len(self.feature_names) > 1: ax.set_ylabel(self.feature_names[1])
        for t, name in zip(ax.get_legend().get_texts(), self.vocab): t.set_text(name)
        return
    n = self.x.shape[1]
    new = axs is None
    if new:
        cols = min(n, 5)
        _, axs = plt.subplots(math.ceil(n / cols), cols, figsize=(2.6 * cols, 2.4 * math.ceil(n / cols)), sharey=True,
                              squeeze=False)
    axs = check_axs(axs, n, f"{n} features")
    # one opaque colour: a few hundred points per panel stay readable, and the PNG small (blended points do not compress)
    for i, (ax, name) in enumerate(zip(axs, self.feature_names)):
        ax.scatter(self.x[:, i], self.y[:, 0], s=7, c=COLORS['data'], lw=0, **kwargs)
        ax.set_xlabel(name); ax.grid(alpha=.25)
        ax.set_ylabel(self.target_name if not new or i % axs[0].get_subplotspec().get_gridspec().ncols == 0 else '')
    axs[0].figure.suptitle(repr(self), fontsize=10)
    restyle(axs[:n], axs[0].figure)
    if new: axs[0].figure.tight_layout()

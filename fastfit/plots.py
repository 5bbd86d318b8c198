"""The user-facing pictures of a fit: `show_fit`, `plot_params`, `plot_loss_surface`, `animate`, `save_animation`,
`AnimateFit`, `storyboard`; and the data's own `show`. Every `show_*`/`plot_*` draws with pyplot into the axes it is given (`ax=`,
`axs=`) or a new figure, and returns None, as fastai's do: the last line of a cell shows one picture, no stray repr."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.torch_core import rank_distrib
from fastcore.basics import patch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .data import ClsDataLoaders, RegDataLoaders, SynthData, check_positive
from .learner import FitLearner
from .optimum import optimum_label
from .panels import (
    COLORS,
    MAX_POINTS,
    PANELS,
    Frames,
    StepPanel,
    SurfacePanel,
    sample_sets,
)
from .panels.base import MARKERS, _optimum
from .panels.boundary import class_colors
from .panels.fit import _plot_feature
from .panels.frames import NotebookFigure, _grid_cols, figure_size, panel_cells, panel_makers, panel_widths
from .panels.layout import place_legend
from .player import FitAnimation, animation_of
from .records import Records, _finite_records, _history, frame_idxs, require_history
from .render import check_dpi
from .style import restyle, style_scale
from .writers import check_export, check_fps, check_number

__all__ = ['AnimateFit', 'show_xy', 'show_dls', 'show_classes']


def check_frames(frames, dpi, panels, n_runs:int=1, split:bool=False, ncols=None) -> tuple:
    "(frames, dpi) as numbers, or an error naming the argument: frames a whole number >= 1, dpi in the range that renders."
    frames = check_number('frames', frames, integer=True)
    if frames < 1: raise ValueError(f"frames must be >= 1, got {frames}")
    dpi = check_number('dpi', dpi)
    check_dpi(dpi, figure_size(panel_cells(panels, n_runs, split), split, ncols, None if split else panel_widths(panels)))
    return frames, dpi


def check_ax(ax, name:str='ax'):
    "An error naming `name` unless `ax` is None or a matplotlib `Axes`."
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"{name} must be a matplotlib Axes (e.g. `fig, ax = plt.subplots()`), got {type(ax).__name__}: {ax!r}")


def check_axs(axs, n:int, what:str) -> list:
    "`axs` (an Axes, or any nesting of them) as a flat list of at least `n` Axes, or an error saying what they must hold."
    flat = list(np.asarray(axs, dtype=object).ravel())
    bad = [a for a in flat if not isinstance(a, Axes)]
    if bad:
        raise TypeError(f"axs must hold matplotlib Axes (e.g. `fig, axs = plt.subplots(1, {n})`), got {type(bad[0]).__name__}: {bad[0]!r}")
    if len(flat) < n: raise ValueError(f"axs holds {len(flat)} Axes but there are {what} to draw: give {n} (plt.subplots(1, {n}))")
    return flat


def learner_frames(learn, frames, panels, dpi, what) -> Frames:
    """The `Frames` of `learn`'s recorded fit: `frames` records spread over its history (every record when it holds at
    most one more: 100 steps and the start in 101 frames, none skipped), the arguments checked first."""
    frames, dpi = check_frames(frames, dpi, panels)
    h = require_history(learn, what)
    n = len(_finite_records(h)) or len(h)
    return Frames(learn, Records.from_history(h, frames + 1 if n == frames + 1 else frames), panels=panels, dpi=dpi)


DEFAULT_FPS = 20  # frames per second of an animation, unless a panel asks for a slower pace (the 'step' panel: 1)


def pace(panels) -> float:
    "The frames per second `panels` are read at: `DEFAULT_FPS`, or the slowest `fps` a panel class asks for."
    makers = [getattr(m, 'func', m) for m in ((panels,) if isinstance(panels, str) or callable(panels) else panels)]
    makers = [PANELS.get(m, m) if isinstance(m, str) else m for m in makers]
    return float(min([DEFAULT_FPS] + [m.fps for m in makers if isinstance(getattr(m, 'fps', None), (int, float))]))


@patch
def animate(self:Learner,
    frames:int=100, # at most this many frames, spread evenly over the history (first and last kept; every step up to 100)
    fps:float|None=None, # frames per second (None: 20, or a pace to read by with the 'step' panel: 1)
    panels=('fit',), # panels side by side: names from `PANELS` ('fit', 'surface', 'loss', 'step', ...) or `Panel` subclasses
    dpi:float=100, # resolution (100: 640x480 pixels per panel)
) -> FitAnimation:
    """A matplotlib `FuncAnimation` of the recorded fit; nothing is re-trained. In a notebook it shows as an animated GIF
    (which plays where outputs are sanitised: untrusted notebooks, GitHub, nbviewer, exported HTML) and, where scripts
    run, as fastfit's player on that GIF. A GIF over matplotlib's `animation.embed_limit` (20 MB of base64 by default)
    shows as its last frame with a note instead. `rcParams['animation.html'] = 'jshtml'` (or 'html5') shows matplotlib's
    own HTML instead."""
    fps = check_fps(pace(panels) if fps is None else fps)
    return animation_of(learner_frames(self, frames, panels, dpi, 'animate'), fps)


@patch
def save_animation(self:Learner,
    fname, # output file: .gif, .html (self-contained player), .mp4 (needs fastfit-gd[mp4]) or .png (the last frame)
    frames:int=100, # at most this many frames, spread evenly over the history (every step up to 100)
    fps:float|None=None, # frames per second (None: 20, or a pace to read by with the 'step' panel: 1)
    panels=('fit',), # panels side by side: names from `PANELS` ('fit', 'surface', 'loss', 'step', ...) or `Panel` subclasses
    dpi:float=100, # resolution (100: 640x480 pixels per panel)
) -> Path:
    "Write the animation of the recorded fit to `fname` (atomically) and return its path (None on ranks > 0, as fastai's `export`)."
    if rank_distrib(): return None  # distributed training: the history is on rank 0, and so are the files
    if fps is None: fps = pace(panels)
    write = check_export(fname, fps)  # a bad suffix, fps or destination fails before any drawing
    return write(learner_frames(self, frames, panels, dpi, 'save_animation'), Path(fname), check_fps(fps))


class AnimateFit(Callback):
    "Save the animation of the fit to `fname` when the fit ends."
    order = 60
    def __init__(self, fname, frames:int=100, fps:float|None=None, panels=('fit',), dpi:float=100):
        if fps is None: fps = pace(panels)
        check_export(fname, fps)
        self.n_frames, self.dpi = check_frames(frames, dpi, panels)
        self.fname, self.fps, self.panels = fname, fps, panels

    def after_fit(self):
        if getattr(self.learn, 'fit_error', None) is not None: return  # a fit cut short (Ctrl-C, an error): no file
        # `saved`, not `path`: a callback attribute named like a Learner's one makes fastai warn about shadowing
        self.saved = self.learn.save_animation(self.fname, frames=self.n_frames, fps=self.fps, panels=self.panels, dpi=self.dpi)

@patch
def storyboard(self:Learner,
    n:int=6, # frames: the start, the end and n-2 records evenly between (fewer if the history holds fewer)
    panels=('fit',), # the panels of each frame: names from `PANELS` or `Panel` subclasses
    ncols:int|None=None, # frames per row (default: up to 3 with one panel, one frame per row with several)
    dpi:float=100, # resolution when shown or saved as PNG
) -> Figure:
    "A static figure of `n` frames of the recorded fit as small multiples, for print and slides (`fig.savefig('fit.pdf')`)."
    n = check_number('n', n, integer=True)
    if n < 1: raise ValueError(f"n must be >= 1 frame, got {n}: e.g. storyboard(n=6)")
    if ncols is not None:
        ncols = check_number('ncols', ncols, integer=True)
        if ncols < 1: raise ValueError(f"ncols must be >= 1 frame per row, got {ncols}")
    make = panel_makers(panels, [self])
    h = require_history(self, 'storyboard')
    recs = Records.from_history(h, n)
    k, per = len(recs), len(make)
    fpr = min(k, ncols or (_grid_cols(k) if per == 1 else 1))  # frames per row
    rows, cols = -(-k // fpr), fpr * per
    # text panels (the step's arithmetic) need width to stay readable; a larger style's text, larger cells
    grow = style_scale('font')
    widths = [(6.4 if isinstance(m, type) and issubclass(m, StepPanel) else 3.9) * grow for m in make] * fpr
    size = (sum(widths), 3.2 * grow * rows)
    check_dpi(check_number('dpi', dpi), size)
    fig = NotebookFigure(figsize=size, dpi=dpi)
    grid = fig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(width_ratios=widths))
    legend = {}  # one legend for the figure: every entry of the first frame's panels
    for j in range(k):
        axs = grid[j // fpr, (j % fpr) * per:(j % fpr + 1) * per]
        for i, (m, ax) in enumerate(zip(make, axs)):
            p = m(self, recs)
            p.setup(ax)
            p.update(j)
            leg = ax.get_legend()
            if leg is not None:
                if j == 0:
                    for hd, t in zip(leg.legend_handles, leg.get_texts()): legend.setdefault(t.get_text(), hd)
                leg.remove()
            step = int(recs.steps[j])
            # the step as a title, unless the panel's caption says it already
            if i == 0 and not any(t.get_text().startswith(f"step {step}") for t in ax.texts):
                old = ax.get_title()
                ax.set_title(f"step {step}" + (f"\n{old}" if old else ''), fontsize=11, loc='left')
    for r in range(rows):  # the cells after the last frame
        for c in range(cols):
            if r * fpr + c // per >= k: grid[r, c].set_visible(False)
    restyle(fig.axes, fig)
    bottom = 0
    if legend:
        leg = fig.legend(list(legend.values()), list(legend), loc='lower center', ncol=min(len(legend), 6), frameon=False,
                         fontsize=9 * grow)
        bottom = (leg.get_window_extent(fig._get_renderer()).height + 4) / fig.bbox.height
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


@patch
def plot_loss_surface(self:Learner,
    params=None, # two parameter names, e.g. ('w', 'b'), ('c1', 'c0'); default: the first two (others held at their final values)
    n:int=100, # grid points per axis
    ax=None, # matplotlib axes to draw into (default: a new pyplot figure)
    max_n:int|None=MAX_POINTS, # at most this many training points in the loss (a seeded sample, said by the colour bar); None: all
) -> None:
    "Draw the contour of the training loss over two parameters with the path taken, its start and end, the truth and the optimum."
    check_ax(ax)
    new = ax is None
    if new: _, ax = plt.subplots(figsize=(6.4, 4.8))
    h = _history(self)
    recs = Records.from_history(h, 1) if h is not None else Records.current(self)
    panel = SurfacePanel(self, recs, params=params, n=n, show_end=True, max_n=max_n)
    panel.setup(ax)
    panel.update(0)
    restyle(ax.figure.axes if new else [ax])
    if new: ax.figure.tight_layout()


@patch
def show_fit(self:Learner,
    ax=None, # matplotlib axes to draw into (default: a new pyplot figure)
    **kwargs, # passed to `Frames` (e.g. panels=('surface',), one panel)
) -> None:
    "Draw the data, the current fit, the true line and the optimum (a classifier of two features: its decision boundary)."
    check_ax(ax)
    new = ax is None
    if new: _, ax = plt.subplots(figsize=(6.4, 4.8))
    Frames(self, Records.current(self), ax=ax, **kwargs).draw(0)
    if new: ax.figure.tight_layout()  # a legend below the axes (a classifier's) stays in the figure, and in savefig


@patch
def plot_params(self:Learner,
    figsize=None, # of the new figure (default: 4.2 x 3.2 inches a parameter, three a row)
    axs=None, # matplotlib axes to draw into: one per parameter value, or two for the summary (default: a new pyplot figure)
) -> None:
    """Draw each recorded parameter against step, with the true value (dashed) and the optimum (dotted); for more than
    `MANY_PARAMS`, a summary: each one's change as a heat-map against step, and how far each tensor moved."""
    h = require_history(self, 'plot_params')
    if len(h.flat_names) > MANY_PARAMS: return _plot_params_summary(h, figsize, axs)
    names, flat, steps = h.flat_names, h.flat.numpy(), h.steps
    truth = _flat_named(getattr(self.dls, 'truth', None), h)
    opt = _flat_named(_optimum(self), h)
    n = len(names)
    new = axs is None
    if new:
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        fig, axs = plt.subplots(rows, cols, figsize=figsize or (4.2 * cols, 3.2 * rows), squeeze=False)
    axs = check_axs(axs, n, f"{n} parameter values ({', '.join(names)})")
    for i, (ax, name) in enumerate(zip(axs, names)):
        ax.plot(steps, flat[:, i], c=COLORS['fit'], lw=2, label='fit')  # the title names the parameter
        if truth is not None: ax.axhline(truth[i], ls='--', c=COLORS['truth'], lw=1.2, label='true')
        if opt is not None: ax.axhline(opt[i], ls=':', c=COLORS['optimum'], lw=2, label=optimum_label(self.loss_func))
        ax.set_title(name + getattr(self.dls, 'units_note', '')); ax.set_xlabel('step'); ax.grid(alpha=.25)
        place_legend(ax, fontsize=8, framealpha=.85)  # where no line runs
    if new:
        for ax in axs[n:]: ax.set_visible(False)
    restyle(list(axs[:n]), fig if new else None)
    if new: fig.tight_layout()


MANY_PARAMS = 12  # plot_params draws a summary for more scalar parameters than this (a line each would be unreadable)
BAND_ROWS = 100  # rows of the summary's heat-map per tensor


def _plot_params_summary(h, figsize=None, axs=None):
    "Many parameters: a heat-map of each one's change from its start against step, and how far each tensor moved."
    rec = frame_idxs(len(h), 400)  # at most 400 columns: more is finer than the pixels
    flat, steps = h.flat[rec].numpy(), h.steps[rec]
    change = flat - flat[:1]
    tensors, i = [], 0
    for k, shape, _ in h.layout:
        n = int(np.prod(shape)); tensors.append((k, i, n)); i += n
    # Rows: one band per tensor, each as tall (a bias of one value as visible as a weight of thousands), its entries
    # spread evenly over it; colour: each tensor's change over its own largest (a layer that moves little is not white)
    P = flat.shape[1]
    bands = [np.linspace(start, start + n - 1, BAND_ROWS).round().astype(int) for _, start, n in tensors]
    rows = np.concatenate(bands)
    new = axs is None
    if new: _, axs = plt.subplots(1, 2, figsize=figsize or (12, 4.6), gridspec_kw=dict(width_ratios=(1.25, 1)))
    ax, ax2 = check_axs(axs, 2, f"a summary of {len(h.flat_names):,} parameters (a heat-map and the tensors' RMS change)")[:2]
    fig = ax.figure
    scales = [float(np.nanpercentile(np.abs(change[:, start:start + n]), 99)) or 1. for _, start, n in tensors]
    v = (change[:, rows] / np.repeat(scales, BAND_ROWS)).T
    im = ax.imshow(v, aspect='auto', cmap='RdBu_r', vmin=-1, vmax=1, interpolation='nearest',
                   extent=(steps[0], steps[-1], len(rows), 0))
    fig.colorbar(im, ax=ax, fraction=.05, pad=.02).set_label("change from the start,\nover the tensor's largest (in its label)")
    edges = np.arange(len(tensors) + 1) * BAND_ROWS
    for e in edges[1:-1]: ax.axhline(e, c='k', lw=.8)
    ax.set_yticks((edges[:-1] + edges[1:]) / 2, [f"{k} ({n:,})\n±{sc:.2g}" for (k, _, n), sc in zip(tensors, scales)], fontsize=8)
    ax.set_xlabel('step')
    ax.set_title(f"each of the {P:,} parameters' change from its start (rows, by tensor)", fontsize=10)
    colors, styles = ('#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9', '#000000', '#D55E00'), ('-', '--', ':')
    for j, (k, start, n) in enumerate(tensors[:21]):
        d = change[:, start:start + n]
        ax2.plot(steps, np.sqrt((d ** 2).mean(1)), styles[j // len(colors)], lw=1.8, c=colors[j % len(colors)],
                 label=f"{k} ({n:,})")
    ax2.set_xlabel('step'); ax2.set_ylabel('RMS change from the start')
    more = f" (the first 21 of {len(tensors)} tensors)" if len(tensors) > 21 else ''
    ax2.set_title(f"how far each tensor moved{more}", fontsize=10)
    ax2.grid(alpha=.25); place_legend(ax2, fontsize=8, framealpha=.85)
    restyle([ax, ax2], fig if new else None)
    if new: fig.tight_layout()


def _flat_named(d, h):
    "`d` (name -> value) flattened in the order of the history's columns, or None if it does not name them all."
    if not d: return None
    try: vs = [np.asarray(torch.as_tensor(d[k]).float().reshape(-1)) for k, s, _ in h.layout]
    except KeyError: return None
    if any(v.size != int(np.prod(s)) for v, (_, s, _) in zip(vs, h.layout)): return None  # names of another model
    return np.concatenate(vs)


def show_xy(x, y,
    axs=None, # matplotlib axes to draw into, one per non-constant feature (default: a new pyplot figure)
    title=None, # the figure's title
    **kwargs, # passed to `ax.scatter`
) -> None:
    "Draw a scatter of y against each non-constant feature of x (one panel each; big data: a seeded sample, said in the title)."
    x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()
    feats = [i for i in range(x.shape[1]) if float(x[:, i].max() - x[:, i].min()) > 0] or [0]
    if axs is None: _, axs = plt.subplots(1, len(feats), figsize=(4.8 * len(feats), 4), squeeze=False)
    axs = check_axs(axs, len(feats), f"{len(feats)} features")
    [(note, xs, ys)] = sample_sets((x, y), what='points shown')
    for ax, i in zip(axs, feats):
        ax.scatter(xs[:, i], ys[:, 0], s=14, c=COLORS['data'], alpha=.7, lw=0, **kwargs)
        ax.set_xlabel('x' if x.shape[1] == 1 else f'x[{i}]'); ax.set_ylabel('y'); ax.grid(alpha=.25)
        if note: ax.set_title(note, fontsize=9)
    if title: axs[0].figure.suptitle(title, fontsize=10)
    restyle(axs, axs[0].figure if title else None)


def show_dls(dls:RegDataLoaders,
    batch:bool=False, # one training batch instead of the whole sets
    axs=None, # matplotlib axes to draw into: one per set (train, valid) (default: a new pyplot figure, shared y)
) -> None:
    "Draw the train and validation scatter side by side, on shared y limits (seed 003's `figure1`); class labels: points by class."
    if getattr(dls, 'img_shape', None) is not None:  # pixels (digits()): the images themselves
        from .gallery import show_image_dls
        return show_image_dls(dls, batch, axs)
    x, y = dls.train.one_batch() if batch else (dls.train.x, dls.train.y)
    if isinstance(dls, ClsDataLoaders): return _show_cls_dls(dls, x, y, batch, axs)
    raw = dls.denormalize  # normalize=True: the data in its own units
    sets = [('train batch' if batch else 'train', raw(x.cpu()), y.cpu(), COLORS['data'])]
    if dls.has_valid and not batch: sets.append(('valid', raw(dls.valid.x.cpu()), dls.valid.y.cpu(), COLORS['valid']))
    f = _plot_feature(dls.train.x.cpu())
    new = axs is None
    if new: _, axs = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), sharey=True, squeeze=False)
    axs = check_axs(axs, len(sets), ' and '.join(s[0] for s in sets))
    for ax, (name, xs, ys, c), (note, xd, yd) in zip(axs, sets, sample_sets(*((xs, ys) for _, xs, ys, _ in sets))):
        ax.scatter(xd[:, f], yd[:, 0], s=14, c=c, alpha=.8, lw=0)  # big data: a seeded sample, said in the title
        ax.set_title(f'{name} ({note or len(xs)})')
        ax.set_xlabel('x' if xs.shape[1] == 1 else f'x[{f}]'); ax.grid(alpha=.25)
    axs[0].set_ylabel('y')
    restyle(list(axs), axs[0].figure if new else None)
    if new: axs[0].figure.tight_layout()


def show_classes(x, y,
    ax=None, # matplotlib axes to draw into (default: a new pyplot figure)
    title=None, # the figure's title
    hollow:bool=False, # open markers (the validation set beside the training set)
    s:float=26, # marker size
    **kwargs, # passed to `ax.scatter`
) -> None:
    """Draw the points by class: x[0] against x[1] (one feature: x against the label), a colour-blind-safe colour and a
    marker per class (big data: a seeded sample, said in the title). The labels may be any values (0/1, -1/+1, names)."""
    check_ax(ax)
    x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x).cpu()
    if x.ndim == 1: x = x[:, None]
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if len(labels) != len(x): raise ValueError(f"x has {len(x)} rows but y has {len(labels)} labels: give one label per row")
    if labels.dtype.kind in 'iub' and len(labels) and 0 <= labels.min() and labels.max() < 1000:
        names, codes = np.arange(int(labels.max()) + 1), labels.astype(np.int64)  # 0..k-1: class c, colour c (as the panels)
    else: names, codes = np.unique(labels, return_inverse=True)  # -1/+1, names, IDs: each distinct label a class, sorted
    y = torch.as_tensor(codes.reshape(-1, 1))
    new = ax is None
    if new: _, ax = plt.subplots(figsize=(5.6, 4.6))
    k = len(names)
    [(note, x, y)] = sample_sets((x, y), what='points shown')
    y = y[:, 0]
    for c, col in enumerate(class_colors(k)):
        xs = x[y == c]
        if not len(xs): continue
        xy = (xs[:, 0], xs[:, 1]) if x.shape[1] > 1 else (xs[:, 0], torch.full((len(xs),), c))
        style = dict(facecolors='none', edgecolors=col, linewidths=1.2) if hollow else dict(c=col, edgecolors='0.15', linewidths=.5)
        ax.scatter(*xy, s=s, marker=MARKERS[c % len(MARKERS)], label=f'class {names[c]}', **style, **kwargs)
    if x.shape[1] > 1: ax.set_xlabel('x[0]'); ax.set_ylabel('x[1]')
    else: ax.set_xlabel('x'); ax.set_ylabel('class'); ax.set_yticks(range(k), [str(v) for v in names])
    notes = ([f'the first two of {x.shape[1]} features'] if x.shape[1] > 2 else []) + ([note] if note else [])
    if notes: ax.set_title('; '.join(notes), fontsize=9)
    place_legend(ax, fontsize=8.5, framealpha=.85, most=2); ax.grid(alpha=.25)  # where (almost) no point lies
    if title: ax.figure.suptitle(title, fontsize=10)
    restyle([ax], ax.figure if title else None)


def _show_cls_dls(dls, x, y, batch, axs=None):
    sets = [('train batch' if batch else 'train', dls.denormalize(x.cpu()), y, False)]
    if dls.has_valid and not batch: sets.append(('valid', dls.denormalize(dls.valid.x.cpu()), dls.valid.y, True))
    new = axs is None
    if new: _, axs = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4.3), sharex=True, sharey=True, squeeze=False)
    axs = check_axs(axs, len(sets), ' and '.join(s[0] for s in sets))
    for ax, (name, xs, ys, hollow) in zip(axs, sets):
        show_classes(xs, ys, ax=ax, hollow=hollow)
        ax.set_title(f'{name} ({len(xs):,})' + (f'; {ax.get_title()}' if ax.get_title() else ''), fontsize=10)
    if new: axs[0].figure.tight_layout()


def _data_title(s:SynthData) -> str:
    "The title of synthetic data `s`'s picture: its generator, size and true parameters ('synth_linear: 100 points; a=3, b=2')."
    def v(x):
        if callable(x): return getattr(x, '__name__', type(x).__name__)
        a = np.asarray(x, dtype=object)
        if a.ndim == 0: return f"{float(a):g}" if isinstance(x, (int, float, np.number)) else str(x)
        if a.ndim == 1 and len(a) <= 4: return '(' + ', '.join(f"{float(t):g}" for t in a) + ')'
        return None  # a table (blob centres): too long to say
    ps = [f"{k}={t}" for k, t in ((k, v(x)) for k, x in s.params.items()) if t is not None]
    classes = f" in {int(s.y.max()) + 1} classes" if not s.y.is_floating_point() else ''
    return f"{s.name}: {len(s.x):,} points{classes}" + ('; ' + ', '.join(ps) if ps else '')


@patch
def show(self:SynthData, axs=None, **kwargs) -> None:
    "Draw a scatter of y against each non-constant feature (one panel each; `axs` to draw into); class labels: the points by class."
    import textwrap
    title = _data_title(self)
    if not self.y.is_floating_point():
        show_classes(self.x, self.y, ax=check_axs(axs, 1, 'one picture')[0] if axs is not None else None, title=title, **kwargs)
    else: show_xy(self.x, self.y, axs=axs, title=title, **kwargs)
    fig = plt.gcf() if axs is None else np.asarray(axs, dtype=object).ravel()[0].figure
    if fig._suptitle is not None:  # wrapped to the figure's width: never clipped, never widening a tight savefig
        chars = max(20, int(fig.get_figwidth() * 72 / (.6 * fig._suptitle.get_fontsize())))
        fig._suptitle.set_text(textwrap.fill(title, chars))
    if axs is None: fig.tight_layout()

@patch
def show(self:RegDataLoaders, axs=None) -> None:  # noqa: F811 (fastcore @patch: a method of another class)
    "Draw the train and validation scatter side by side (`axs` to draw into)."
    show_dls(self, axs=axs)

@patch
def show_batch(self:RegDataLoaders, ax=None) -> None:
    "Draw a scatter of one training batch (`ax` to draw into)."
    check_ax(ax)
    show_dls(self, batch=True, axs=None if ax is None else [ax])



@patch
def show_results(self:FitLearner,
    ds_idx:int=1, # 1: the validation set (the training set when there is none), 0: the training set
    dl=None, # or any loader of (x, y), e.g. `learn.dls.test_dl(x, with_labels=True)`
    max_n:int|None=None, # at most this many points (a seeded sample of them); None: all, up to `MAX_POINTS` (10,000)
    shuffle:bool=True, # sample the points at random (seeded) rather than take the first ones
    ax=None, # matplotlib axes to draw into (default: a new pyplot figure)
    **kwargs, # passed to `ax.scatter`
) -> None:
    "Draw targets against predictions (points on the dashed diagonal are predicted exactly); images: `show_misclassified`."
    check_ax(ax)
    if getattr(self.dls, 'img_shape', None) is not None:  # pixels (digits()): the images, the wrong ones first
        from . import gallery  # noqa: F401 (it adds `Learner.show_misclassified`)
        return self.show_misclassified(ds_idx=ds_idx, dl=dl, max_n=max_n or 24, axs=ax)
    if dl is None:
        if ds_idx == 1 and not self.dls.has_valid: ds_idx = 0
        dl = self.dls[ds_idx]
    if not hasattr(dl, 'x'): return Learner.show_results(self, ds_idx=ds_idx, dl=dl, max_n=max_n or 9, shuffle=shuffle, **kwargs)
    if max_n is not None: max_n = check_positive('max_n', max_n, int)
    preds, targs = self.get_preds(dl=dl)
    if targs is None: raise ValueError("show_results needs targets: give a loader of (x, y), e.g. dls.test_dl((x, y), with_labels=True)")
    where = {0: 'training set', 1: 'validation set'}.get(ds_idx) if dl is self.dls[ds_idx] else 'given data'
    if isinstance(self.dls, ClsDataLoaders): return _show_cls_results(self, preds, targs, where, ax)
    p, t = preds.reshape(len(preds), -1)[:, 0].float(), targs.reshape(len(targs), -1)[:, 0].float()
    n, mse = len(t), float(((p - t) ** 2).mean())
    keep = min(n, max_n or MAX_POINTS)
    # the rows of `sample_rows(n, keep)` when sampling; all of them shuffled (drawing order) otherwise, as before
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(42))[:keep] if shuffle else torch.arange(keep)
    if ax is None: _, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter(t[idx], p[idx], s=16, c=COLORS['data'], alpha=.75, lw=0, **kwargs)
    lo, hi = float(torch.minimum(t.min(), p.min())), float(torch.maximum(t.max(), p.max()))
    pad = (hi - lo) * .05 or 1.
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls='--', c=COLORS['truth'], lw=1.2, label='prediction = target')
    ax.set_xlim(lo - pad, hi + pad); ax.set_ylim(lo - pad, hi + pad); ax.set_aspect('equal')
    shown = f"{keep:,} of {n:,} points" if keep < n else f"{n:,} points"
    ax.set_title(f"{where}: {shown}, MSE {mse:.4g}", fontsize=10)
    ax.set_xlabel('target y'); ax.set_ylabel('prediction'); ax.grid(alpha=.25); ax.legend(fontsize=8, loc='upper left')
    restyle([ax])


def _show_cls_results(learn, preds, targs, where, ax=None):
    "A classifier's results: the confusion matrix (true class against predicted class, with counts) and the accuracy."
    k = learn.dls.n_classes
    dec = getattr(learn.loss_func, 'decodes', None)
    pred = (dec(preds) if callable(dec) else preds.argmax(-1) if preds.shape[-1] > 1 else (preds > .5).long()).reshape(-1)
    true = targs.reshape(-1).long()
    cm = torch.zeros(k, k, dtype=torch.long).index_put_((true, pred.long()), torch.ones_like(true), accumulate=True).numpy()
    new = ax is None
    if new: _, ax = plt.subplots(figsize=(2.4 + .7 * k, 1.8 + .7 * k))
    ax.imshow(cm, cmap='Blues', vmin=0)
    for i in range(k):
        for j in range(k): ax.text(j, i, f"{cm[i, j]:,}", ha='center', va='center', fontsize=10,
                                   color='white' if cm[i, j] > .6 * cm.max() else 'black')
    ax.set_xticks(range(k)); ax.set_yticks(range(k))
    ax.set_xlabel('predicted class'); ax.set_ylabel('true class')
    ax.set_title(f"{where}: {len(true):,} points, accuracy {float((pred == true).float().mean()):.3f}", fontsize=10)
    restyle([ax])
    if new: ax.figure.tight_layout()

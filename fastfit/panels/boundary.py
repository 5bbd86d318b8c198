"""The 'boundary' panel of a classifier: the training points by class, each class's probability as a light background,
the decision boundary (p = .5; for more classes, the borders of their regions) moving with the frames, and the optimum's
boundary dashed. It draws any model that maps (n, 2) inputs to logits, (n, 1) or (n, k), evaluated on a grid."""
from __future__ import annotations

import contourpy
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, Normalize, to_rgb

from ..classify import probabilities
from ..optimum import optimum_label
from ..style import style_scale
from .base import _NOTE, COLORS, MARKERS, PANELS, Panel, _one_thread, _raw_x, _short, _width, outputs
from .fit import _params_texts
from .layout import label, place_legend

__all__ = ['BoundaryPanel', 'class_colors']

TINT = .4  # the background's strongest tint (a class's colour mixed with white): points stay the strongest colour


def class_colors(k:int) -> list:
    "One colour per class (Okabe-Ito, none of them the fit's vermillion or the optimum's green)."
    cs = COLORS['classes']
    return [cs[i % len(cs)] for i in range(k)]


def _tints(k:int) -> np.ndarray:
    "(k, 3): each class's colour mixed with white, as the background shows a sure prediction of it."
    return np.array([1 - TINT * (1 - np.array(to_rgb(c))) for c in class_colors(k)])


def _model_x(dls, x):
    "Inputs in the data's own units as the model sees them (standardised, with `normalize=True`)."
    f = getattr(dls, 'normalize', None)
    return x if f is None else f(x)


def borders(P:np.ndarray, xc, yc) -> list:
    """The borders between the predicted classes of probabilities `P` (ny, nx, k) on the grid (xc, yc), as polylines.
    `xc`, `yc`: the grid's coordinates, (nx,) and (ny,), or both (ny, nx) float64: their meshgrid, made once for every frame's."""
    if np.ndim(xc) == 1: xc, yc = np.meshgrid(np.asarray(xc, np.float64), np.asarray(yc, np.float64))
    k = P.shape[-1]
    segs = []
    for c in range(k - 1):  # every border touches a class below k - 1: its region's edge covers it
        others = P[..., 1] if k == 2 else np.delete(P, c, -1).max(-1)
        f = P[..., c] - others
        lo, hi = f.min(), f.max()
        if lo >= 0 or hi <= 0: continue
        segs += [s for s in _zero_lines(xc, yc, f, np.isfinite(lo) and np.isfinite(hi)) if len(s) > 1]
    return segs


def _zero_lines(X, Y, f, finite:bool) -> list:
    """contourpy's lines of `f` at 0 on the grid (X, Y) (ny, nx). Finite values (`finite`): its serial generator made
    directly, with `contour_generator`'s defaults, whose checks and masked-array round trip cost as much as the
    contouring (~45 us of ~85 on an 80 x 80 grid); else `contour_generator`, which masks what is not finite."""
    if not finite: return contourpy.contour_generator(X, Y, f).lines(0.)
    return contourpy.SerialContourGenerator(
        X, Y, np.asarray(f, np.float64), None, corner_mask=True, line_type=contourpy.LineType.Separate,
        fill_type=contourpy.FillType.OuterOffset, quad_as_tri=False, z_interp=contourpy.ZInterp.Linear,
        x_chunk_size=0, y_chunk_size=0).lines(0.)


class BoundaryPanel(Panel):
    """Points by class (marker and colour; validation points hollow), the probability of the likeliest class as a light
    background, the decision boundary moving with the frames, the optimum's boundary dashed, and a caption (step, loss,
    accuracy). Any classifier of two features: the model's outputs are logits (n, 1) or (n, k), turned into
    probabilities by its loss's `activation` (fastai's convention) or else sigmoid/softmax."""
    name, needs = 'boundary', ('classes', 'two features', 'data')
    n_grid = 80  # grid cells per axis: the background and the borders are computed on it, every frame
    levels = 10  # tints of each class in the background, from chance to sure
    chunk = 100  # frames computed in one batched call (its overhead is most of its cost: 25 frames ~28 ms, 100 ~39 ms)

    def __init__(self, learn, recs, labels=None):
        super().__init__(learn, recs, labels)
        dls = self.learn.dls
        self.k = dls.n_classes
        # normalize=True: the model sees standardised x; the axes, the points and the grid are in the data's own units
        self.raw = _raw_x(dls, self.x)
        self.xv, self.yv = (_raw_x(dls, dls.valid.x.cpu()), dls.valid.y.cpu()) if dls.has_valid else (None, None)
        pts = self.raw if self.xv is None else torch.cat([self.raw, self.xv])
        # amin/amax: the same numbers as min(0)/max(0), which also find the indices in a parallel region that wakes
        # torch's threads (~10 ms of CPU each on a busy machine, for 2 columns)
        lo, hi = pts.amin(0).numpy(), pts.amax(0).numpy()
        pad = (hi - lo) * .08 + 1e-6
        self.lo, self.hi = lo - pad, hi + pad
        self.hi[1] += .24 * (self.hi[1] - self.lo[1])  # headroom: the caption sits above the points, hiding none
        n = self.n_grid
        edges = [np.linspace(self.lo[i], self.hi[i], n + 1) for i in (0, 1)]
        self.edges, self.xc, self.yc = edges, *[(e[:-1] + e[1:]) / 2 for e in edges]
        X, Y = self.XY = np.meshgrid(self.xc, self.yc)  # the borders' grid, every frame
        self.grid = _model_x(dls, torch.from_numpy(np.stack([X.ravel(), Y.ravel()], 1)).float())
        self.opt, opt = None, self.optimum()
        self.separable = self.no_finite_optimum
        if opt is not None: self.opt = borders(self._probs([opt])[0], *self.XY)
        self.opt_label = optimum_label(self.learn.loss_func)
        self._acc = [self._accuracies(run) for run in range(len(self.learns))]
        self._chunks = {}  # run -> [[first frame, probabilities of a chunk of frames on the grid, colours]], the latest first

    def _probs(self, params:list, run:int=0) -> np.ndarray:
        "Each class's probability on the grid at each of `params`, (len(params), n_grid, n_grid, k)."
        model = self.model_copy(run)
        with _one_thread(len(params) * len(self.grid) * _width(model)):
            p = probabilities(outputs(model, params, self.grid), self.learns[run].loss_func)
        return p.reshape(len(params), self.n_grid, self.n_grid, -1).numpy()

    def _frame_probs(self, k:int, run:int, background:bool=False):
        """The grid's probabilities at frame `k` (and with `background`, the background's colours), computed for `chunk`
        frames at a time (one batched call: cheap per frame). The last two chunks computed are kept: an export draws a few
        frames spread over the animation (its palette's), then the others in order."""
        chunks = self._chunks.setdefault(run, [])
        i = next((i for i, (first, P, _) in enumerate(chunks) if first <= k < first + len(P)), None)
        if i is None:
            P = self._probs([self.params(j, run) for j in range(k, min(k + self.chunk, len(self.recss[run])))], run)
            chunks.insert(0, [k, P, None])
            del chunks[2:]
            i = 0
        first, P, bg = chunks[i]
        if not background: return P[k - first]
        # element by element: as each frame's own, in one go (a colour table and each cell's entry, or the colours)
        if bg is None: bg = chunks[i][2] = self._background_table(P) or (None, self._background_of(P))
        table, at = bg
        # np.take: a row per cell ~8x faster than indexing the table with the cells' entries (~5 of ~40 us a frame)
        return P[k - first], at[k - first] if table is None else np.take(table, at[k - first], 0)

    def _accuracies(self, run:int) -> np.ndarray:
        "The training accuracy at each frame's parameters."
        lrn = self.learns[run]
        x, y = lrn.dls.train.x.cpu(), lrn.dls.train.y.cpu().reshape(-1)
        model = self.model_copy(run)
        with _one_thread(len(self.recss[run]) * len(x) * _width(model)):
            z = outputs(model, self.recss[run].params, x)
            return (probabilities(z, lrn.loss_func).argmax(-1) == y).float().mean(-1).numpy()

    def _background(self, P:np.ndarray) -> np.ndarray:
        """RGBA of each grid cell (n_grid ** 2, 4): the likeliest class's tint, as strong as its probability is above chance
        (1/k); for probabilities of several frames (frames, n_grid, n_grid, k), each frame's (frames, n_grid ** 2, 4)."""
        if (tab := self._background_table(P)) is None: return self._background_of(P)  # NaN probabilities (a diverged fit), say
        table, at = tab
        return np.take(table, at, 0)

    def _background_table(self, P:np.ndarray) -> tuple | None:
        """`_background` as a table of the (levels + 1) * k colours a cell can show and each cell's entry in it, (frames,
        n_grid ** 2) or (n_grid ** 2,); None where a probability is not one (NaN)."""
        top = P[..., 0].copy()  # the largest probability, class by class (np.max over a short last axis is slow)
        likeliest = np.zeros(top.shape, np.intp)
        for i in range(1, P.shape[-1]):
            likeliest[P[..., i] > top] = i  # the first of equals, as argmax
            np.maximum(top, P[..., i], out=top)
        sure = (top - 1 / self.k) / (1 - 1 / self.k)
        band = np.ceil(sure * self.levels)  # bands of probability: they read as contours, and compress
        if not (np.isfinite(band).all() and band.min() >= 0 and band.max() <= self.levels): return None
        # a cell shows one of (levels + 1) * k colours: each made once, by the same arithmetic as cell by cell
        colours = np.empty((self.levels + 1, self.k, 4))
        fraction = np.arange(self.levels + 1, dtype=band.dtype) / self.levels  # in the probabilities' precision
        colours[..., :3] = 1 - fraction[:, None, None] * (1 - _tints(self.k))
        colours[..., 3] = 1
        return colours.reshape(-1, 4), (band.astype(np.intp) * self.k + likeliest).reshape(*P.shape[:-3], -1)

    def _background_of(self, P:np.ndarray) -> np.ndarray:
        "`_background` cell by cell (any probabilities, NaN included)."
        top = P[..., 0].copy()
        for i in range(1, P.shape[-1]): np.maximum(top, P[..., i], out=top)
        sure = (top - 1 / self.k) / (1 - 1 / self.k)
        sure = np.ceil(sure * self.levels) / self.levels
        out = np.empty(P.shape[:-1] + (4,))
        rgb = out[..., :3]
        np.multiply(sure[..., None], (1 - _tints(self.k))[P.argmax(-1)], out=rgb)
        np.subtract(1, rgb, out=rgb)
        out[..., 3] = 1
        return out.reshape(*P.shape[:-3], -1, 4)

    def setup(self, ax) -> list:
        self.ax = ax
        moving = []
        if not self.multi:
            self.mesh = ax.pcolormesh(*self.edges, np.zeros((self.n_grid, self.n_grid)), zorder=.5, shading='flat')
            self.mesh.set_array(None)  # colours set per frame (set_facecolor), no colormap
            moving.append(self.mesh)
            self._colorbar(ax)
        shades = np.linspace(.2, .6, self.k)
        for c in range(self.k):
            col = class_colors(self.k)[c] if not self.multi else str(shades[c])
            m = MARKERS[c % len(MARKERS)]
            xs = self.raw[self.y[:, 0] == c]
            ax.scatter(xs[:, 0], xs[:, 1], s=26, c=col, marker=m, edgecolors='0.15', linewidths=.5, zorder=3,
                       label=f'class {c}')
            if self.xv is not None:
                xs = self.xv[self.yv[:, 0] == c]
                ax.scatter(xs[:, 0], xs[:, 1], s=26, facecolors='none', edgecolors=col, marker=m, linewidths=1.2, zorder=3)
        if self.xv is not None:
            ax.scatter([], [], s=26, facecolors='none', edgecolors='0.3', marker='o', linewidths=1.2, label='valid (hollow)')
        what = 'boundary' if self.k == 2 else 'borders'
        if self.opt is not None:
            ax.add_collection(LineCollection(self.opt, colors=COLORS['optimum'], linewidths=2.2, linestyles=(0, (4, 2.5)),
                                             zorder=4, label=f'{what}: {self.opt_label}'))
        self.lines = []
        for c, lab in zip(self.colors if self.multi else [COLORS['boundary']], self.labels):
            lab = lab or (f'{what} (p = .5)' if self.k == 2 else what)
            self.lines.append(ax.add_collection(LineCollection([], colors=c, linewidths=2.5, zorder=5, label=lab)))
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', ha='left', fontsize=9, family='monospace',
                            zorder=6, bbox=_NOTE)
        ax.set_xlim(self.lo[0], self.hi[0]); ax.set_ylim(self.lo[1], self.hi[1])
        std = 'the model is fitted on standardised x' if getattr(self.learn.dls, 'norm', None) is not None else ''
        ax.set_xlabel(label('x[0]', std)); ax.set_ylabel('x[1]')
        self._setup_optimum_note(ax)
        # below the axes: the points fill them
        place_legend(ax, spots=(), ncol=3, fontsize=8.5,
                     title=None if self.k == 2 or self.multi else 'shade: probability of the likeliest class',
                     title_fontsize=8.5 * style_scale('font'))
        return [*moving, *self.lines, self.text, *self._setup_stop_note(ax)]

    def _colorbar(self, ax):
        if self.k == 2:  # p(class 1) in bands of 1 / (2 * levels), each the colour the background gives it
            t0, t1 = _tints(2)
            sure = np.r_[np.arange(self.levels, 0, -1), np.arange(1, self.levels + 1)] / self.levels
            tint = np.r_[[t0] * self.levels, [t1] * self.levels]
            cmap = ListedColormap(1 - sure[:, None] * (1 - tint))
            cb = ax.figure.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, fraction=.05, pad=.02, ticks=[0, .5, 1])
            cb.set_label('p(class 1)')

    def _caption(self, k:int) -> str:
        r = self.recs
        if self.multi:
            w = max(len(str(lab)) for lab in self.labels)
            rows = [f"{str(lab):<{w}} loss {_short(float(rr.losses[k]))}  acc {acc[k]:.3f}"
                    for lab, rr, acc in zip(self.labels, self.recss, self._acc)]
            return '\n'.join(([] if r.clock[k] is None else [f"step {int(r.clock[k])}"]) + rows)
        step = r.steps[k]
        head = ('' if step is None else f"step {int(step)}  ") + f"loss {_short(float(r.losses[k]))}"
        # every frame's at once (cheaper per frame), made again for new records (a live view renews them)
        if getattr(self, '_ptexts', (None,))[0] is not r: self._ptexts = (r, _params_texts(r.params))
        ps = self._ptexts[1][k]
        note = "\nseparable: no finite optimum (|w| grows)" if self.separable else ''
        return head + f"  accuracy {self._acc[0][k]:.3f}" + ('\n' + ps if ps else '') + note

    def update(self, k:int):
        "Move the background, the boundary (or borders) and the caption to frame `k`."
        for run, lc in enumerate(self.lines):
            if run == 0 and not self.multi:
                P, bg = self._frame_probs(k, run, background=True)
                self.mesh.set_facecolor(bg)
            else: P = self._frame_probs(k, run)
            lc.set_segments(borders(P, *self.XY))
        self.text.set_text(self._caption(k))
        self._update_stop_note(k)


PANELS['boundary'] = BoundaryPanel

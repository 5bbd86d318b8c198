"""Pictures of neural nets, as panels: `'units'` (the fitted curve as a sum of its hidden units' pieces) and `'landscape'`
(the loss over a plane through all the parameters, with the path projected onto it; `LossPlane` computes it)."""
from __future__ import annotations

import numpy as np
import torch

from ..data import EVAL_ROWS
from ..models import MLPModel
from ..records import _finite_records, _history, frame_idxs
from ..style import style_scale
from .base import _NOTE, COLORS, MAX_POINTS, NEEDS, PANELS, Panel, _one_thread, _raw_x, _short, _width, sample_sets
from .layout import axes_points, free_corner, label, place_legend
from .surface import LossSurface, SurfacePanel

__all__ = ['UnitsPanel', 'LossPlane', 'LandscapePanel']


def _one_in_one_out_mlp(learn) -> bool:
    m = learn.model
    return isinstance(m, MLPModel) and m.n_in == 1 and m.n_out == 1


def _records_all(learn) -> bool:
    h = _history(learn)
    return h is not None and len(h.flat_names) == sum(p.numel() for p in learn.model.parameters())


NEEDS['units'] = (_one_in_one_out_mlp, "an MLPModel with one input and one output, e.g. MLPModel(n_in=1, hidden=(8,)) "
                                       "(it draws the curve as the sum of the hidden units' pieces)")
NEEDS['every param recorded'] = (_records_all, "a fit whose history records every parameter (the landscape is the "
                                 "plane of the whole path): fit first, with the default ParamHistory (it records them "
                                 "all unless the model is too big for ParamHistory.max_bytes) or ParamHistory(params=None)")

# One colour per unit while they are few; past that, every unit one thin colour and the sum stands out.
UNIT_COLORS = ('#0072B2', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000')


class UnitsPanel(Panel):
    """The fitted curve (moving) as the sum of its last hidden layer's units: each unit's piece, its activation times its
    output weight (for ReLU, a hinge), and the output bias. Up to six units get a colour each; more are drawn thin in one
    colour, the `max_units` largest only."""
    name, needs, n_grid = 'units', ('units', 'data'), 200

    def __init__(self, learn, recs, labels=None,
        max_units:int=40, # draw at most this many units (the largest at the last frame); the sum counts them all
    ):
        super().__init__(learn, recs, labels)
        if self.multi: raise ValueError("the 'units' panel draws one run per axes: for several runs, draw them as small "
                                        "multiples, e.g. comparison.split = True before comparison.animate(panels=('units',)), "
                                        "or Frames(learners, records, panels=('units',), split=True)")
        model = self.model_copy()
        dls = self.learn.dls
        xall = torch.cat([self.x, dls.valid.x.cpu()]) if dls.has_valid else self.x
        lo, hi = float(xall.min()), float(xall.max())
        pad = (hi - lo) * .02
        xg = torch.linspace(lo - pad, hi + pad, self.n_grid)[:, None]
        self.xs = _raw_x(dls, xg)[:, 0].numpy()  # normalize=True: the model sees xg, the axis shows the data's own units
        out = f'l{len(model.layers)}.b'
        missing = [k for k in self.learn.model.state_dict() if k not in self.recs.params[0]]
        if missing: raise ValueError(f"the 'units' panel needs every parameter in the history; it lacks {missing}: "
                                     f"record them with ParamHistory(params=None)")
        with torch.no_grad(), _one_thread(len(self.recs) * self.n_grid * _width(model)):
            self.parts = np.stack([model.units(xg, p).numpy() for p in self.recs.params])  # (frames, grid, units)
            self.bias = np.array([float(p[out][0]) for p in self.recs.params])
        self.sums = self.parts.sum(2) + self.bias[:, None]
        n_units = self.parts.shape[2]
        # one hidden layer of ReLUs: unit j's piece bends where w1*x + b1 = 0, its hinge (in the data's units)
        self.hinges = None
        if len(model.layers) == 2 and model.act_name in ('relu', 'leaky_relu'):
            w, b = (np.stack([p[k].reshape(-1).double().numpy() for p in self.recs.params]) for k in ('l1.w', 'l1.b'))
            with np.errstate(divide='ignore', invalid='ignore'): at = np.where(w != 0, -b / w, np.nan)
            self.hinges = _raw_x(dls, torch.from_numpy(at.reshape(-1, 1))).numpy().reshape(at.shape)
        self.shown = np.argsort(-np.abs(self.parts[-1]).max(0), kind='stable')[:max_units]
        self.shown.sort()
        self.n_units = n_units

    def _ylim(self):
        y = self.y.numpy().ravel()
        lo, hi = y.min(), y.max()
        span = max(hi - lo, 1e-6)
        # The sum and the last frame's pieces are in frame; early, far-off values may leave it.
        v = np.concatenate([self.sums.ravel(), self.parts[-1][:, self.shown].ravel(), self.bias])
        v = np.clip(v[np.isfinite(v)], lo - span, hi + span)
        if v.size: lo, hi = min(lo, v.min()), max(hi, v.max())
        pad = (hi - lo) * .05
        return lo - pad, hi + pad

    def setup(self, ax) -> list:
        self.ax = ax
        dls = self.learn.dls
        [(note, xs, ys)] = sample_sets((_raw_x(dls, self.x)[:, 0], self.y[:, 0]))  # big data: a seeded sample, in the legend
        ax.scatter(xs, ys, s=12, c=COLORS['grey'], alpha=.45, lw=0, label=f"train data ({note})" if note else 'train data',
                   zorder=1)
        few = self.n_units <= len(UNIT_COLORS)
        self.unit_lines, self.unit_colors = [], []
        for i, j in enumerate(self.shown):
            c, lw, a = (UNIT_COLORS[i], 1.6, .95) if few else (COLORS['data'], .9, .55)
            lab = f'unit {j + 1}' if few else (None if i else
                  f"each unit ({self.n_units})" if len(self.shown) == self.n_units
                  else f"{len(self.shown)} of {self.n_units} units")
            self.unit_lines.append(ax.plot(self.xs, self.parts[-1][:, j], '-', c=c, lw=lw, alpha=a, label=lab, zorder=3)[0])
            self.unit_colors.append(c)
        self.bias_line = ax.axhline(self.bias[-1], ls=':', c=COLORS['truth'], lw=1.2, label='output bias', zorder=2)
        self.sum_line = ax.plot(self.xs, self.sums[-1], '-', c=COLORS['fit'], lw=2.8, label='sum = fit', zorder=5)[0]
        moving = []
        if self.hinges is not None:  # each unit's hinge, where its piece leaves zero
            self.hinge_marks = ax.scatter(self.hinges[-1, self.shown], np.zeros(len(self.shown)), s=30, marker='o',
                                          facecolors='white', edgecolors=self.unit_colors, linewidths=1.5, zorder=4,
                                          label="a unit's hinge")
            moving.append(self.hinge_marks)
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', ha='left', fontsize=10 * style_scale('font'),
                            family='monospace', zorder=6, bbox=_NOTE)
        self.text._fastfit_styled = True  # sized for the style now: the legend is placed around it
        ax.set_xlim(self.xs[0], self.xs[-1])
        ax.set_ylim(*self._ylim())
        ax.set_xlabel(label('x', 'the model is fitted on standardised x' if getattr(dls, 'norm', None) is not None else ''))
        ax.set_ylabel('y')
        ax.set_title(f"the fit as a sum of {self.n_units} {self.learn.model.act_name} units", fontsize=10)
        ax.grid(alpha=.25)
        # the legend where no piece, sum or point of any frame lies, nor the caption
        self.text.set_text(f"step {self.recs.steps[-1]}  loss {_short(float(self.recs.losses[0]))}")
        frames = np.unique(np.linspace(0, len(self.recs) - 1, min(len(self.recs), 25)).round().astype(int))
        curves = [np.column_stack([self.xs, c]) for k in frames for c in (self.sums[k], *self.parts[k][:, self.shown].T)]
        avoid = axes_points(ax, points=[np.column_stack([xs, ys])], curves=curves)
        place_legend(ax, avoid=avoid, texts=[self.text], most=2, fontsize=8, framealpha=.85,
                     ncol=2 if few and self.n_units > 3 else 1)
        self.text.set_text('')
        return [*self.unit_lines, self.bias_line, self.sum_line, *moving, self.text, *self._setup_stop_note(ax)]

    def update(self, k:int):
        "Move each unit's piece (and hinge), the output bias and their sum to frame `k`."
        for line, j in zip(self.unit_lines, self.shown): line.set_ydata(self.parts[k][:, j])
        if self.hinges is not None:
            self.hinge_marks.set_offsets(np.column_stack([self.hinges[k, self.shown], np.zeros(len(self.shown))]))
        self.bias_line.set_ydata([self.bias[k]] * 2)
        self.sum_line.set_ydata(self.sums[k])
        r = self.recs
        step = r.steps[k]
        self.text.set_text(('' if step is None else f"step {int(step)}  ") + f"loss {_short(float(r.losses[k]))}")
        self._update_stop_note(k)


def _filter_normalized(base:list, g:torch.Generator, per_column:bool) -> torch.Tensor:
    """A random direction scaled filter by filter to the parameters' own norms (Li et al. 2018): each unit's weights
    (a column of an MLPModel weight, a row of a torch layer's) get the norm of that unit's; vectors and scalars as one."""
    out = []
    for p in base:
        d = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if p.ndim >= 2:
            dims = tuple(range(p.ndim - 1)) if per_column else tuple(range(1, p.ndim))
            d = d * p.norm(dim=dims, keepdim=True) / d.norm(dim=dims, keepdim=True).clamp_min(1e-12)
        else: d = d * p.norm() / d.norm().clamp_min(1e-12)
        out.append(d.reshape(-1))
    return torch.cat(out)


class LossPlane(LossSurface):
    """The training loss over a plane through all the parameters: origin the final parameters, axes two directions, the
    path's two principal directions (`'pca'`: PCA of the recorded path, as loss-landscape-anim does) or two random
    filter-normalised ones (`'random'`, Li et al. 2018). Coordinates are least-squares projections onto the plane."""
    max_pca_records = 500  # the PCA of a long path uses this many records, spread evenly (first and last kept)
    # vmap over the whole parameter vector: 4 MB buffers stay in cache (on a 1-32-1 MLP, 1.8x faster than 16 MB). A
    # model's own `forward_many` (batched matmuls, activation in place) keeps 16 MB: fewer calls (1-32-1 MLP on 1,000
    # points: 0.45 s a 100x100 grid vs 0.64 s at 4 MB).
    vmap_budget = 1 << 20

    def __init__(self,
        learn, # the learner: its model, loss function and training data
        paths:list, # the recorded paths, (T, n_params) each (several runs: one plane through all of them)
        directions:str='pca', # 'pca' or 'random'
        seed:int=42, # seed of the random directions
        max_n:int|None=MAX_POINTS, # the loss on a seeded sample of this many training points when there are more; None: all
    ):
        if directions not in ('pca', 'random'):
            raise ValueError(f"directions must be 'pca' (the path's principal directions) or 'random' (filter-normalised), "
                             f"got {directions!r}")
        super().__init__(learn, None, max_n)  # the model, the training points, the parameters' layout
        paths = [torch.as_tensor(p, dtype=torch.float64) for p in paths]
        self.of_path = "the paths'" if len(paths) > 1 else "the path's"
        origin = paths[0][-1]
        if directions == 'pca':
            X = torch.cat([p[frame_idxs(len(p), self.max_pca_records)] for p in paths]) - origin
            _, S, Vh = torch.linalg.svd(X - X.mean(0), full_matrices=False)
            var = S ** 2
            share = (var / var.sum()).tolist() + [0., 0.] if float(var.sum()) > 0 else [0., 0.]
            D = torch.zeros(2, X.shape[1], dtype=X.dtype)
            for i in range(2):
                if i < len(S) and float(S[i]) > 1e-9 * float(S[0]): D[i] = Vh[i]
                else:  # a still or straight path spans less than a plane: any direction orthogonal to it will do
                    r = torch.randn(X.shape[1], generator=torch.Generator().manual_seed(seed + i), dtype=X.dtype)
                    for j in range(i): r = r - (r @ D[j]) * D[j]
                    D[i] = r / r.norm()
            self.names = tuple(f"PC{i + 1} ({share[i]:.0%} of {self.of_path} variance)" for i in range(2))
            self.short = ('PC1', 'PC2')
        else:
            g = torch.Generator().manual_seed(int(seed))
            base = [o.reshape(s) for o, (_, s) in zip(origin.split([int(np.prod(s)) for _, s in self.layout]), self.layout)]
            per_col = isinstance(self.model, MLPModel)
            D = torch.stack([_filter_normalized(base, g, per_col) for _ in range(2)])
            self.names = ('random direction 1 (filter-normalised)', 'random direction 2 (filter-normalised)')
            self.short = ('d1', 'd2')
        self.origin, self.D, self.directions = origin, D, directions
        # How much of the path lies in the plane: its squared distance from the origin, projected, over the whole.
        Q = torch.linalg.qr(D.T).Q
        X = torch.cat(paths) - origin
        total = float((X ** 2).sum())
        self.captured = float(((X @ Q) ** 2).sum()) / total if total > 0 else 1.
        self.base = origin.float()
        self.held = {}
        self._pinv = torch.linalg.pinv(D.T)  # (2, P): least-squares coordinates of a point

    def coords(self, flat) -> np.ndarray:
        "(T, 2) plane coordinates of flat parameter rows (T, n_params)."
        flat = torch.as_tensor(flat, dtype=torch.float64).reshape(-1, self.D.shape[1])
        return ((flat - self.origin) @ self._pinv.T).numpy()

    def point(self, p:dict) -> tuple | None:
        "The plane coordinates of parameters `p` (name -> tensor), or None if `p` lacks one of them."
        try: flat = torch.cat([torch.as_tensor(p[k]).double().reshape(-1) for k, _ in self.layout])
        except KeyError: return None
        if len(flat) != self.D.shape[1]: return None
        return tuple(float(v) for v in self.coords(flat)[0])

    def path(self, h) -> tuple:
        "(steps, xy) of every finite record of history `h`, projected onto the plane."
        keep = _finite_records(h)
        return h.steps[keep], self.coords(h.flat[keep])

    def at(self, ab) -> np.ndarray:
        "The loss on the plane at coordinates `ab` (n, 2)."
        ab = torch.as_tensor(np.asarray(ab, dtype=np.float64)).reshape(-1, 2).float()
        return self.losses(self.base + ab @ self.D.float()).double().numpy()

    def grid(self, xlim, ylim, n:int=100) -> tuple:
        "(A, B, Z): n x n meshgrid of plane coordinates and the loss there, in blocks of batched (vmap) evaluations."
        a, b = np.linspace(*xlim, n), np.linspace(*ylim, n)
        A, B = np.meshgrid(a, b)
        ab = torch.from_numpy(np.stack([A.ravel(), B.ravel()], 1))
        D, P = self.D.float(), self.D.shape[1]
        block = max(1, int(2 ** 22 // P))  # rows of full parameter vectors made at once (16 MB)
        Z = torch.cat([self.losses(self.base + ab[i:i + block].float() @ D) for i in range(0, len(ab), block)])
        return A, B, Z.reshape(n, n).double().numpy()


def _loss_rows(losses, labels=None) -> str:
    """The landscape's caption: the plane's and the run's loss at the point, (plane, run) strings, one a row for one run
    (narrow: it must fit a square panel's corner), one column each beside the runs' `labels` for several."""
    if labels is None:
        (plane, run), = losses
        return f"loss at the point\nthe plane's {plane}\nthe run's   {run}"
    w, c = max(len(str(lab)) for lab in labels), max(len(p) for p, _ in losses)
    return '\n'.join(['loss at the point', f"{'':{w}}  {'plane':{c}}  run",
                      *(f"{str(lab):{w}}  {p:{c}}  {r}" for lab, (p, r) in zip(labels, losses))])


class LandscapePanel(SurfacePanel):
    """The loss landscape: contours of the training loss over a plane through all the parameters (see `LossPlane`),
    the path projected onto it (moving). The path leaves the plane wherever it is not flat: the contours are the loss on
    the plane, not along the path, so a caption gives both, the plane's loss under the point and the run's own. Both
    directions are drawn to one scale (`equal`); random directions are framed at +-1, as Li et al. (2018) plot them."""
    name, needs = 'landscape', ('history', 'two params', 'every param recorded', 'data')

    def __init__(self, learn, recs, labels=None,
        directions:str='pca', # 'pca': the path's two principal directions; 'random': filter-normalised random ones
        n:int=60, # grid points per axis (n*n batched forward passes)
        seed:int=42, # seed of the random directions
        show_end:bool=False, # mark each run's final state (static pictures)
        max_n:int|None=MAX_POINTS, # the loss on a seeded sample of this many training points when there are more; None: all
        equal:bool=True, # one scale for both directions (a unit of PC2 as long as one of PC1); False: each fills its axis
    ):
        self.directions, self.seed, self.equal_spans = directions, seed, equal
        first = learn[0] if isinstance(learn, (list, tuple)) else learn
        points = min(len(first.dls.train.x), EVAL_ROWS, max_n or EVAL_ROWS)
        with _one_thread(int(n) ** 2 * points * _width(first.model)):
            super().__init__(learn, recs, labels, n=n, show_end=show_end, max_n=max_n)
            # the plane's loss under each frame's projected point, beside the run's own loss there
            self.on_plane = [self.surf.at(np.nan_to_num(cur)) for cur in self.cur]

    def _surface(self, params, max_n):
        hs = [_history(lrn) for lrn in self.learns]
        for lrn, h in zip(self.learns, hs):
            if h is None or not _records_all(lrn): type(self).check(lrn)
        paths = [h.flat[_finite_records(h)] for h in hs]
        return LossPlane(self.learn, paths, self.directions, self.seed, max_n)

    def _limits(self) -> tuple:
        if self.directions != 'random': return super()._limits()
        # Li et al.'s frame: -1..1 along each filter-normalised direction (the path, a few hundredths long, near 0)
        xy = np.concatenate([xy for _, xy in self.paths] + [np.zeros((1, 2))])
        xy = xy[np.isfinite(xy).all(1)]
        half = max(1., 1.05 * float(np.abs(xy).max()))
        return (-half, half), (-half, half)

    def setup(self, ax) -> list:
        artists = super().setup(ax)
        how = f"{self.surf.of_path} two principal" if self.directions == 'pca' else 'two random'
        whose = f"{self.labels[0]}'s" if self.multi and self.labels[0] else 'the'
        ax.set_title(f"the loss on a plane through {whose} final parameters,\nalong {how} directions (it holds "
                     f"{self.surf.captured:.0%}\nof {self.surf.of_path} squared distance from there)", fontsize=9)
        ax.set_xlabel(self.surf.names[0], fontsize=9); ax.set_ylabel(self.surf.names[1], fontsize=9)
        # the caption's rows (`update`): a title, then the plane's and the run's loss (one column each for several runs)
        where = free_corner(ax, axes_points(ax, curves=[xy for _, xy in self.paths]),
                            size=(.5, .08 * (3 + self.multi * (len(self.labels) - 1))))
        self.text = ax.text(s='', transform=ax.transAxes, fontsize=9, family='monospace', zorder=9, bbox=_NOTE, **where)
        return [*artists, self.text]

    def update(self, k:int):
        "Move the path and points to frame `k`; the caption gives the plane's loss there and the run's."
        super().update(k)
        losses = [(_short(float(p[k])), _short(self.loss(k, i))) for i, p in enumerate(self.on_plane)]
        self.text.set_text(_loss_rows(losses, self.labels if self.multi else None))


PANELS.update(units=UnitsPanel, landscape=LandscapePanel)

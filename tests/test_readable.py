"""Pictures a class can read (issue 22), measured: text height in pixels at the default dpi, colour distances under a
deuteranopia simulation, a diverging run kept in view, legends clear of what they explain, honest scales, the last
frame held, and `normalize=True` pictures in the data's own units."""
import base64
import json
import re
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.text import Text
from PIL import Image

from fastfit.all import (
    SGD,
    Adam,
    LandscapePanel,
    LinearModel,
    MLPModel,
    PolyModel,
    RegDataLoaders,
    RMSProp,
    classification_learner,
    compare_batch_sizes,
    compare_optimizers,
    compare_scaling,
    exported_frames,
    fitting_panels,
    lr_sweep,
    regression_learner,
    set_style,
    synth_blobs,
    synth_func,
    synth_linear,
    synth_moons,
    synth_rollercoaster,
)
from fastfit.panels.layout import axes_points
from fastfit.plots import learner_frames

ROOT = Path(__file__).parents[1]
DPI = 100  # the library's default dpi: what `animate` draws at and a reader sees
MIN_PX = 10  # the smallest text a projector audience reads (SPEC: "text >= 10 px at the default dpi")


def quiet(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


@pytest.fixture(scope='module')
def dls():
    return synth_linear(n=100, seed=42).dataloaders(bs=None)


@pytest.fixture(scope='module')
def diverging(dls):
    "lr 1.05 on synth_linear: b's steps overshoot by more each time; 30 steps take the loss from 6 to 1,570."
    return quiet(regression_learner(dls, lr=1.05), 30)


# -- measures ---------------------------------------------------------------------------------------------------------
def text_px(fig) -> list:
    "(pixel size, text) of every visible, non-empty text of `fig` (tick labels, legends, colour bars included)."
    drawn(fig)
    return [(t.get_fontsize() * fig.dpi / 72, t.get_text()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.get_figure() is not None]


_DEUT = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]])


def _lin(c): c = np.asarray(c, float); return np.where(c <= .04045, c / 12.92, ((c + .055) / 1.055) ** 2.4)
def _srgb(c): c = np.clip(c, 0, 1); return np.where(c <= .0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - .055)


def deuteranope(c) -> np.ndarray:
    "The sRGB colour a deuteranope sees for `c` (Machado, Oliveira & Fernandes 2009, severity 1)."
    return _srgb(_lin(to_rgb(c)) @ _DEUT.T)


def _lab(rgb) -> np.ndarray:
    xyz = np.array([[.4124, .3576, .1805], [.2126, .7152, .0722], [.0193, .1192, .9505]]) @ _lin(rgb) / [.95047, 1, 1.08883]
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b, sim=deuteranope) -> float:
    "CIELAB distance (ΔE*76) between colours `a` and `b` as a deuteranope sees them (sim=to_rgb: as others do)."
    return float(np.linalg.norm(_lab(sim(a)) - _lab(sim(b))))


def drawn(fig):
    "The renderer of `fig` after a full draw (Agg, as exports use)."
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def covered(ax, leg, avoid) -> int:
    "How many of the points `avoid` (axes fractions) the legend `leg` of `ax` covers."
    r = drawn(ax.figure)
    bb = leg.get_window_extent(r).transformed(ax.transAxes.inverted())
    return int(((avoid[:, 0] > bb.x0) & (avoid[:, 0] < bb.x1) & (avoid[:, 1] > bb.y0) & (avoid[:, 1] < bb.y1)).sum())


def inside(ax, x, y) -> bool:
    "Whether data point (x, y) is within the axes (at their edge included, to float round-off)."
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    ex, ey = 1e-9 * (x1 - x0), 1e-9 * (y1 - y0)
    return x0 - ex <= x <= x1 + ex and y0 - ey <= y <= y1 + ey


# -- 1. the shipped animations ------------------------------------------------------------------------------------------
def _stored_gifs():
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(nb.read_text())['cells']):
            for out in cell.get('outputs', []):
                data = out.get('data', {}).get('image/png')
                if data and base64.b64decode(data[:8])[:4] == b'GIF8':
                    yield f"{nb.name} cell {i}", Image.open(__import__('io').BytesIO(base64.b64decode(data)))
    for p in [*(ROOT / 'nbs').glob('*.gif'), *(ROOT / 'assets').glob('*.gif')]: yield p.name, Image.open(p)


def test_stored_animations_are_drawn_at_the_default_dpi():
    """Every GIF a notebook or the README ships is at least 500x360 px (a panel is 640x480 at the default dpi, 460x345
    at the 72 they had), the README's at least 640x480, and no notebook asks for a lower dpi."""
    small = [(where, im.size) for where, im in _stored_gifs() if im.size[0] < 500 or im.size[1] < 360]
    assert not small, f"animations too small to read: {small}"
    small = [(p.name, Image.open(p).size) for p in (ROOT / 'assets').glob('*.gif') if Image.open(p).size < (640, 480)]
    assert not small, f"the README's animations below the default dpi: {small}"
    low = [(nb.name, m) for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) for cell in json.loads(nb.read_text())['cells']
           if cell['cell_type'] == 'code' for m in re.findall(r'dpi=(\d+)', ''.join(cell['source'])) if int(m) < DPI
           and 'savefig' not in ''.join(cell['source']).split(f'dpi={m}')[0].rsplit('\n', 1)[-1]]
    assert not low, f"notebooks drawing pictures below the default dpi {DPI}: {low}"


# -- text height --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('style', ['default', 'classroom'])
def test_text_is_at_least_10_px_at_the_default_dpi(dls, style):
    "Every text of the built-in pictures (panels, storyboards, plot_params, compare_*) is >= 10 px tall at dpi 100."
    set_style(style)
    try:
        lin = quiet(regression_learner(dls, lr=.1), 20)
        two = quiet(classification_learner(synth_blobs(n=60, centers=2, seed=0).dataloaders(bs=None), lr=1.), 20)
        net = quiet(regression_learner(synth_func(torch.sin, n=60, seed=0).dataloaders(bs=None, valid_pct=0),
                                       model=MLPModel(hidden=(4,)), lr=.1), 30)
        figs = {'fit, surface, loss': learner_frames(lin, 5, ('fit', 'surface', 'loss'), DPI, 't').fig,
                'boundary, loss': learner_frames(two, 5, ('boundary', 'loss'), DPI, 't').fig,
                'units, landscape': learner_frames(net, 5, ('units', 'landscape'), DPI, 't').fig,
                'storyboard': lin.storyboard(n=4), 'step storyboard': lin.storyboard(n=3, panels=('fit', 'step')),
                'fit, step': learner_frames(lin, 5, ('fit', 'step'), DPI, 't').fig,
                'scaling': compare_scaling(synth_rollercoaster(), PolyModel(2), epochs=10).frames(3).fig}
        lin.plot_params(); figs['plot_params'] = plt.gcf()
        net.plot_params(); figs['plot_params of many'] = plt.gcf()
        for name, fig in figs.items():
            fig.set_dpi(DPI)
            small = [(round(px, 1), t) for px, t in text_px(fig) if px < MIN_PX]
            assert not small, f"{name}: text under {MIN_PX} px at dpi {DPI}: {small}"
    finally: set_style('default')


# -- 2. a diverging run -------------------------------------------------------------------------------------------------
def test_a_diverging_run_stays_in_view(diverging):
    "The surface shows the first growing swings; the current point stays in the axes, marked at the edge with its value."
    fr = learner_frames(diverging, 31, ('fit', 'surface', 'loss'), DPI, 't')
    fit, surf, loss = fr.panels
    _, xy = surf.paths[0]
    assert all(inside(surf.ax, *p) for p in xy[:5]), "the first swings leave the surface"
    for k in range(len(fr)):
        fr.draw(k)
        for p in (surf.points[0], loss.points[0]):
            x, y = p.get_xdata()[0], p.get_ydata()[0]
            assert inside(p.axes, x, y), (k, p.axes.get_ylabel(), x, y)  # the current point, or its mark at the edge
        assert not loss.points[0].get_clip_on()  # drawn whole at the axes' edge
    w, b = surf.cur[0][-1]
    mark = surf.marks[0].text
    assert not inside(surf.ax, w, b) and mark.get_visible() and f"b={b:.4g}" in mark.get_text()
    assert surf.points[0].get_marker() == 'v'  # at the bottom edge, pointing the way it went
    # the fit panel keeps the data readable (more than half its height) and points to the line that left
    lo, hi = fit.ax.get_ylim()
    ys = np.concatenate([y.numpy() for _, _, y in fit.data])
    assert (ys.max() - ys.min()) / (hi - lo) > .55
    note = fit.offs[0].text
    assert note.get_visible() and 'fit off the chart' in note.get_text() and inside(fit.ax, *fit.offs[0].point.get_xydata()[0])


def test_lr_sweeps_diverged_panel_points_to_its_line(dls):
    sw = lr_sweep(dls, (.1, 1.5), epochs=60)
    fr = sw.frames(8)
    fr.draw(len(fr) - 1)
    notes = [m.text for p in fr.panels for m in p.offs if m.text.get_visible()]
    assert len(notes) == 1 and 'fit off the chart' in notes[0].get_text() and 'e+' in notes[0].get_text()


# -- 4. the landscape beside the loss -----------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def net():
    sine = synth_func(torch.sin, n=100, x_range=(-3, 3), noise=.1, seed=42).dataloaders(bs=None, valid_pct=0)
    return quiet(regression_learner(sine, model=MLPModel(hidden=(8,)), lr=.1), 300)


def test_landscape_gives_the_runs_loss_beside_the_planes(net):
    fr = learner_frames(net, 5, ('landscape', 'loss'), DPI, 't')
    land = fr.panels[0]
    fr.draw(0)
    caption = land.text.get_text()
    run, plane = float(net.param_history.losses[0]), float(land.surf.at([land.cur[0][0]])[0])
    assert f"the run's   {run:.4g}" in caption and f"the plane's {plane:.4g}" in caption and abs(run - plane) > .01
    # the caption fits inside its (square) axes beside the units panel, at the widest numbers of the run
    wide = learner_frames(net, 5, ('units', 'landscape', 'loss'), DPI, 't')
    for k in range(len(wide)):
        wide.draw(k)
        wide.fig.canvas.draw()
        r = wide.fig.canvas.get_renderer()
        inner, box = wide.panels[1].ax.get_window_extent(r), wide.panels[1].text.get_bbox_patch().get_window_extent(r)
        assert inner.x0 <= box.x0 and box.x1 <= inner.x1 and inner.y0 <= box.y0 and box.y1 <= inner.y1, k
    # one scale for both directions: as many units per pixel on each axis
    ax = land.ax
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x1 - x0 == pytest.approx(y1 - y0) and ax.get_aspect() == 1
    # random filter-normalised directions at Li et al.'s scale: -1..1
    rand = learner_frames(net, 3, (partial(LandscapePanel, directions='random', n=15),), DPI, 't').panels[0]
    assert rand.ax.get_xlim() == pytest.approx((-1, 1)) and rand.ax.get_ylim() == pytest.approx((-1, 1))


def _learner(kind):
    sine = synth_func(torch.sin, n=100, x_range=(-3, 3), seed=0).dataloaders(bs=None)
    made = {'line': lambda: regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None), lr=.1),
            'sine MLP': lambda: regression_learner(sine, model=MLPModel(hidden=(8,)), lr=.1),
            'logistic': lambda: classification_learner(synth_blobs(n=200, seed=0).dataloaders(bs=None), lr=.5),
            'softmax': lambda: classification_learner(synth_blobs(n=300, centers=3, seed=0).dataloaders(bs=None), lr=.5),
            'moons MLP': lambda: classification_learner(synth_moons(n=200, seed=0).dataloaders(bs=None),
                                                        model=MLPModel(n_in=2, hidden=(8,), n_out=2), lr=.5)}[kind]()
    return quiet(made, 40)


@pytest.mark.parametrize('kind', ['line', 'sine MLP', 'logistic', 'softmax', 'moons MLP'])
def test_every_panels_captions_stay_inside_their_axes(kind):
    "A caption or note placed in axes fractions (a corner's caption, a 'fit off the chart' note) never reaches past its axes."
    learn = _learner(kind)
    for panel in fitting_panels(learn):
        fr = learner_frames(learn, 5, (panel,), DPI, 't')
        for k in (0, 2, 4):
            fr.draw(k)
            fr.fig.canvas.draw()
            r = fr.fig.canvas.get_renderer()
            for ax in fr.fig.axes:
                inner = ax.get_window_extent(r)
                for t in ax.texts:
                    if not (t.get_visible() and t.get_text()) or t.get_transform() is not ax.transAxes: continue
                    box = (t.get_bbox_patch() or t).get_window_extent(r)
                    assert inner.x0 - 1 <= box.x0 and box.x1 <= inner.x1 + 1 and inner.y0 - 1 <= box.y0 \
                        and box.y1 <= inner.y1 + 1, (panel, k, t.get_text())
        plt.close(fr.fig)


# -- 5. legends ---------------------------------------------------------------------------------------------------------
def test_legends_cover_no_line_and_hardly_any_point(dls, diverging):
    "The fit legend misses every frame's fitted line; loss legends miss every curve (diverging, Adam's, accuracy)."
    start = quiet(regression_learner(dls, LinearModel(init=dict(w=[-.5], b=4.)), lr=.1), 30)  # a start line across the data
    fr = learner_frames(start, 31, ('fit', 'loss'), DPI, 't')
    fit, loss = fr.panels
    curves = [np.column_stack([fit.xs, fit.preds[k]]) for k in range(len(fr))]
    data = [np.column_stack([x, y]) for _, x, y in fit.data]
    assert covered(fit.ax, fit.ax.get_legend(), axes_points(fit.ax, curves=curves)) == 0
    assert covered(fit.ax, fit.ax.get_legend(), axes_points(fit.ax, points=data)) <= 2
    for learn, panels in ((diverging, ('loss',)), (compare_optimizers(dls, [SGD, Adam], epochs=30), ('loss',)),
                          (quiet(classification_learner(synth_blobs(n=80, seed=1).dataloaders(bs=None), lr=1.), 30), ('loss',))):
        fr = learn.frames(10) if hasattr(learn, 'learners') else learner_frames(learn, 10, panels, DPI, 't')
        p = fr.panels[-1]
        lines = [*p.lines, *getattr(p, 'acc_lines', [])]
        assert covered(p.ax, p.ax.get_legend(), axes_points(p.ax, lines)) == 0, p.ax.get_legend().get_texts()
    # units: the legend misses the caption and the pieces of every frame
    fr = learner_frames(quiet(regression_learner(synth_func(torch.sin, n=60, seed=0).dataloaders(bs=None, valid_pct=0),
                                                 model=MLPModel(hidden=(3,)), lr=.1), 100), 10, ('units',), DPI, 't')
    u = fr.panels[0]
    fr.draw(0)
    r = drawn(fr.fig)
    assert not u.text.get_window_extent(r).overlaps(u.ax.get_legend().get_window_extent(r))
    pieces = [np.column_stack([u.xs, c]) for k in range(len(fr)) for c in (u.sums[k], *u.parts[k].T)]
    assert covered(u.ax, u.ax.get_legend(), axes_points(u.ax, curves=pieces)) == 0
    # plot_params: "fit", not the parameter's name again, and no line under the legend
    start.plot_params()
    for ax in plt.gcf().axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()][0] == 'fit'
        assert covered(ax, ax.get_legend(), axes_points(ax, ax.lines)) == 0



def test_curves_to_avoid_are_each_curve_resampled_in_axes_fractions():
    "axes_points(curves=...) takes every curve at once: the points of each, one by one (non-finite points dropped)."
    from matplotlib.figure import Figure

    from fastfit.panels.layout import _dense, _to_axes
    rng = np.random.default_rng(0)
    for scale in ('linear', 'log'):
        ax = Figure().subplots()
        ax.set_xlim(.1, 10); ax.set_ylim(.5, 30); ax.set_yscale(scale)
        curves = [rng.normal(3, 3, (k, 2)) for k in (200, 0, 1, 2, 5, 200)]
        curves[4][2] = np.nan; curves[5][::7, 1] = -1.; curves[5][3] = np.inf  # -1: off a log axis
        curves += [np.array([[np.nan, 1.]]), np.array([[1., 2.], [np.nan, 3.]])]
        one_by_one = np.concatenate([_dense(_to_axes(ax, c)) for c in curves])
        assert len(one_by_one) > 1000
        assert np.array_equal(axes_points(ax, curves=curves), one_by_one)
        assert np.array_equal(axes_points(ax, curves=curves[:1]), _dense(_to_axes(ax, curves[0])))
    assert axes_points(ax, curves=[]).shape == (0, 2)

# -- 6. the loss surface shows the bowl ---------------------------------------------------------------------------------
def test_surface_centres_the_minimum_and_says_its_levels(dls):
    learn = quiet(regression_learner(dls, lr=.1), 30)
    fr = learner_frames(learn, 3, ('surface',), DPI, 't')
    p = fr.panels[0]
    (x0, x1), (y0, y1) = p.ax.get_xlim(), p.ax.get_ylim()
    w, b = p.opt
    assert (x0 + x1) / 2 == pytest.approx(w) and (y0 + y1) / 2 == pytest.approx(b)  # the whole bowl around it
    assert p.colorbar.spacing == 'proportional' and 'levels' in p.colorbar.ax.get_ylabel()
    ticks = p.colorbar.get_ticks()
    assert all(f"{t:g}" == lab.get_text() for t, lab in zip(ticks, p.colorbar.ax.get_yticklabels()))  # round values
    # a truth far from the data's optimum is marked at the edge rather than squeezing the bowl into a corner
    x, y = dls.train.x, dls.train.y
    far = RegDataLoaders.from_arrays(x, y, valid_pct=0, truth=dict(w=torch.tensor([40.]), b=torch.tensor(-30.)))
    p = learner_frames(quiet(regression_learner(far, lr=.1), 30), 3, ('surface',), DPI, 't').panels[0]
    (x0, x1), (y0, y1) = p.ax.get_xlim(), p.ax.get_ylim()
    assert x1 - x0 < 10 and y1 - y0 < 10 and p.truth_far
    notes = [t.get_text() for t in p.ax.texts if t.get_visible()]
    assert any(n.startswith('true') and 'w=40' in n for n in notes)


# -- 7. colours ---------------------------------------------------------------------------------------------------------
def test_colours_stay_apart_for_colour_blind_readers(dls):
    "Runs, classes, their background tints and the boundary line differ for a deuteranope (CIELAB ΔE76, Machado 2009)."
    cmp = compare_optimizers(dls, {'SGD': SGD, 'RMSProp': RMSProp, 'Adam': Adam}, lr={'SGD': .1, 'RMSProp': .03, 'Adam': .05},
                             epochs=5)
    fr = cmp.frames(2)
    runs = [line.get_color() for line in fr.panels[2].lines]
    assert min(delta_e(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]) > 40  # vermillion/orange was 18
    bs = compare_batch_sizes(dls, bss=(1, 16, None), epochs=1)
    runs = [line.get_color() for line in bs.frames(2).panels[1].lines]
    assert delta_e(runs[0], runs[2]) > 40  # bs=1 against full batch
    five = quiet(classification_learner(synth_blobs(n=150, centers=5, seed=0).dataloaders(bs=None), lr=.5), 5)
    p = learner_frames(five, 2, ('boundary',), DPI, 't').panels[0]
    pts = [c.get_facecolor()[0][:3] for c in p.ax.collections if c.get_label().startswith('class ')]
    assert len(pts) == 5 and min(delta_e(a, b) for i, a in enumerate(pts) for b in pts[i + 1:]) > 25
    tints = [p._background(np.eye(5)[None, c])[0, :3] for c in range(5)]  # a sure prediction of each class
    assert min(delta_e(a, b) for i, a in enumerate(tints) for b in tints[i + 1:]) > 12  # regions 0/3 and 1/4 were 6-8
    assert min(delta_e(c, 'white') for c in pts) > 35  # hollow (validation) markers show on white; yellow was 15
    line = p.lines[0].get_color()[0][:3]
    assert min(delta_e(line, c) for c in pts) > 40  # the boundary is in no class's colour family


# -- 8. the classroom style ---------------------------------------------------------------------------------------------
def test_classroom_scales_colour_bar_ticks_and_keeps_labels_apart(dls):
    learn = quiet(regression_learner(dls, lr=.1), 20)
    sizes = {}
    for style in ('default', 'classroom'):
        set_style(style)
        try: fr = learner_frames(learn, 3, ('surface', 'loss'), DPI, 't')
        finally: set_style('default')
        cb = fr.panels[0].colorbar.ax
        sizes[style] = cb.get_yticklabels()[0].get_fontsize()
        r = drawn(fr.fig)
        label, ylabel = cb.yaxis.label.get_window_extent(r), fr.panels[1].ax.yaxis.label.get_window_extent(r)
        assert not label.overlaps(ylabel) and label.x1 < ylabel.x0, style  # the colour bar's label, then the next panel's
    assert sizes['classroom'] == pytest.approx(1.45 * sizes['default'])


# -- 9. compare_scaling -------------------------------------------------------------------------------------------------
def test_compare_scaling_shows_both_losses_and_what_it_holds():
    sc = compare_scaling(synth_rollercoaster(seed=0), PolyModel(2, init=dict(c2=-2., c1=0., c0=0.)), epochs=60)
    fr = sc.frames(5)
    raw, std, loss = fr.panels
    assert [line.get_label() for line in loss.lines] == ['raw x', 'standardised x'] and loss.log  # 578 against 5.9, one axis
    assert [raw.lines[0].get_color(), std.lines[0].get_color()] == [line.get_color() for line in loss.lines]
    assert all('held at final: c0=' in p.ax.get_title() for p in (raw, std))
    # the raw run's zig-zag fills its panel (framed on the path, the far minimum marked at the edge), a dot a step
    _, xy = raw.paths[0]
    (x0, x1) = raw.ax.get_xlim()
    assert (xy[:, 0].max() - xy[:, 0].min()) / (x1 - x0) > .5 and raw.lines[0].get_marker() == 'o'
    assert any(t.get_text().startswith('least squares') for t in raw.ax.texts if t.get_visible())
    assert sc.lrs['standardised x'] == pytest.approx(.8 * sc.curvatures['standardised x'].max_lr)


# -- 11. exports keep what they draw ------------------------------------------------------------------------------------
def test_exports_keep_legends_and_titles_inside_the_figure(tmp_path):
    two = quiet(classification_learner(synth_blobs(n=60, centers=2, seed=0).dataloaders(bs=None), lr=1.), 10)
    two.show_fit()
    fig = plt.gcf()
    r = drawn(fig)
    leg = fig.axes[0].get_legend().get_window_extent(r)
    assert leg.y0 >= 0 and leg.x0 >= 0 and leg.x1 <= fig.bbox.x1  # below the axes, yet inside the figure (and savefig)
    s = synth_blobs(n=60, centers=3, seed=0)
    s.show()
    fig = plt.gcf()
    title = fig._suptitle.get_text()
    assert 'SynthData(' not in title and title.startswith('synth_blobs: 60 points in 3 classes')
    box = fig._suptitle.get_window_extent(drawn(fig))
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1  # not clipped
    fig.savefig(tmp_path / 's.png', bbox_inches='tight')
    assert Image.open(tmp_path / 's.png').size[0] <= fig.bbox.width + 20  # a tight savefig is not widened by the title


# -- 12. pace and frames ------------------------------------------------------------------------------------------------
def test_the_last_frame_is_held_and_every_step_is_shown(dls, tmp_path):
    learn = quiet(regression_learner(dls, lr=.1), 100)
    gif = learn.save_animation(tmp_path / 'a.gif', fps=20, dpi=30)
    with Image.open(gif) as im:
        assert im.n_frames == 101  # 100 steps and the start: none skipped (step 50 was)
        im.seek(im.n_frames - 1)
        assert im.info['duration'] == 50 + 1500  # the last frame stays 1.5 s longer before the GIF starts again
        im.seek(1)
        assert im.info['duration'] == 50
    assert len(exported_frames(gif, 20)) == 101
    fr = learner_frames(learn, 100, ('loss',), 30, 't')
    assert list(fr.recs.steps) == list(range(101))
    assert len(learner_frames(learn, 50, ('loss',), 30, 't')) == 50  # fewer frames than steps: thinned as before


def test_the_step_panel_is_shown_at_a_pace_to_read(dls):
    learn = quiet(regression_learner(dls, lr=.1), 5)
    intervals = []
    for kw in (dict(panels=('fit', 'step')), dict(panels=('fit',)), dict(panels=('fit', 'step'), fps=4)):
        anim = learn.animate(**kw)
        anim._draw_was_started = True  # not shown here: no "deleted without rendering" warning
        intervals.append(anim._interval)
    assert intervals == [1000, 50, 250]  # a step a second with the 'step' panel (not 20 frames a second); fps= wins


def test_labels_have_one_bracket_and_units_mark_their_hinges(dls):
    bs = compare_batch_sizes(dls, bss=(16, None), epochs=2)
    ylabel = bs.frames(2).panels[1].ax.get_ylabel()
    assert ylabel.count('(') == 1 and ylabel in ('training loss (all data)', 'training loss (all data; log scale)')
    net = quiet(regression_learner(synth_func(torch.sin, n=60, seed=0).dataloaders(bs=None, valid_pct=0),
                                   model=MLPModel(hidden=(3,)), lr=.1), 50)
    fr = learner_frames(net, 4, ('units',), DPI, 't')
    u = fr.panels[0]
    fr.draw(2)
    w, b = (u.params(2)[k].reshape(-1).numpy() for k in ('l1.w', 'l1.b'))
    np.testing.assert_allclose(u.hinge_marks.get_offsets()[:, 0], -b / w, rtol=1e-5)  # where each unit's piece bends
    np.testing.assert_allclose(u.hinge_marks.get_offsets()[:, 1], 0)


def test_normalize_pictures_are_in_raw_units():
    "With normalize=True every picture of the data (fit, units, boundary, show) is drawn in the data's own units."
    s = synth_func(torch.sin, n=80, x_range=(10, 16), noise=.1, seed=0)  # raw x 10..16, standardised about -1.7..1.7
    net = quiet(regression_learner(s.dataloaders(bs=None, valid_pct=0, normalize=True), model=MLPModel(hidden=(4,)), lr=.1), 20)
    fr = learner_frames(net, 3, ('fit', 'units'), DPI, 't')
    for p in fr.panels:
        lo, hi = p.ax.get_xlim()
        assert 9.5 < lo < 10.1 and 15.9 < hi < 16.5, (p.name, lo, hi)
        xs = np.concatenate([c.get_offsets()[:, 0] for c in p.ax.collections if len(c.get_offsets()) > 10])
        assert xs.min() >= 10 and xs.max() <= 16
        assert 'standardised' in p.ax.get_xlabel()
    fit, units = fr.panels
    fr.draw(2)
    np.testing.assert_allclose(fit.lines[0].get_ydata(), units.sum_line.get_ydata(), atol=1e-5)  # one curve, one scale
    truth = next(line for line in fit.ax.lines if line.get_label() == 'true')
    np.testing.assert_allclose(truth.get_ydata(), np.sin(fit.xs), atol=1e-2)  # the truth in raw units too
    b = synth_blobs(n=80, centers=2, spread=.5, seed=0)
    b.x = b.x * torch.tensor([100., 1.]) + torch.tensor([1000., 0.])  # x[0] about 800..1200
    two = quiet(classification_learner(b.dataloaders(bs=None, normalize=True), lr=1.), 20)
    p = learner_frames(two, 3, ('boundary',), DPI, 't').panels[0]
    (x0, x1) = p.ax.get_xlim()
    assert 700 < x0 < x1 < 1300 and 'standardised' in p.ax.get_xlabel()
    pts = np.concatenate([c.get_offsets() for c in p.ax.collections if c.get_label().startswith('class ')])
    assert pts[:, 0].min() > 700
    fr = learner_frames(two, 3, ('boundary',), DPI, 't')
    fr.draw(2)
    segs = np.concatenate(fr.panels[0].lines[0].get_segments())
    assert 700 < segs[:, 0].min() and segs[:, 0].max() < 1300  # the boundary in raw units, where the points are


def test_the_player_holds_the_last_frame(browser, dls, tmp_path):
    learn = quiet(regression_learner(dls, lr=.1), 10)
    page = learn.save_animation(tmp_path / 'p.html', frames=4, fps=20, dpi=30)
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(page.as_uri())
    pg.wait_for_function("document.querySelector('.ff-label').textContent === '1/4'")
    pg.click('.ff-play')
    pg.wait_for_function("document.querySelector('.ff-label').textContent === '4/4'")
    pg.wait_for_timeout(600)  # 12 ticks at 20 fps: without the hold it would have looped back long ago
    assert pg.text_content('.ff-label') == '4/4'
    pg.wait_for_function("document.querySelector('.ff-label').textContent !== '4/4'", timeout=10_000)  # then it loops
    ctx.close()


# -- 3. the step panel --------------------------------------------------------------------------------------------------
def _seed003(opt):
    rng = np.random.RandomState(42)
    x = rng.rand(100, 1)
    d = RegDataLoaders.from_arrays(x, 1 + 2 * x + .1 * rng.randn(100, 1), valid_pct=.2, bs=None)
    return quiet(regression_learner(d, LinearModel(init=dict(w=[-0.1382643], b=0.49671415)), opt_func=opt, lr=.1), 10)


def test_the_step_panel_fills_its_panel_grows_with_the_style_and_pads_no_gap():
    "Adam's arithmetic at the default dpi: >= 14 px (it was 6-9), filling its panel; larger in the classroom style."
    adam = _seed003(Adam)
    size = {}
    for style in ('default', 'classroom'):
        set_style(style)
        try: fr = learner_frames(adam, 11, ('fit', 'step'), DPI, 't')
        finally: set_style('default')
        step = fr.panels[1]
        fr.draw(3)
        r = drawn(fr.fig)
        box, ax = step.texts[0].get_window_extent(r), step.ax.get_window_extent(r)
        size[style] = step.texts[0].get_fontsize() * DPI / 72
        assert max(box.width / ax.width, box.height / ax.height) > .85, style  # it fills its panel, one way or the other
        assert box.x1 <= fr.fig.bbox.x1 and box.y0 >= 0  # and stays in the figure
    assert size['default'] >= 14 and size['classroom'] >= 1.3 * size['default']
    # padding: a column is as wide as this frame needs (no "b =   1.575663 -      0.1×0.070318")
    sgd = _seed003(SGD)
    step = learner_frames(sgd, 11, ('step',), DPI, 't').panels[0]
    rows = [line for frame in step.blocks[0] for line in frame if line[:2] in ('w ', 'b ')]
    assert rows and not any('   ' in line.split('=', 1)[1] for line in rows), rows

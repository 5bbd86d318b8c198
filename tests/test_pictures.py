"Loss surface, synced panels, optimizer comparison and lr sweep: numbers, frames and files a user sees."
import time
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from fastfit.all import (
    SGD,
    Adam,
    LinearModel,
    LossSurface,
    PolyModel,
    Records,
    compare_optimizers,
    exported_frames,
    fate,
    lr_sweep,
    regression_learner,
    synth_linear,
    synth_rollercoaster,
)
from fastfit.panels import Frames


def quiet_fit(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


@pytest.fixture(scope='module')
def dls():
    return synth_linear(n=100, seed=42).dataloaders(bs=None)


def test_loss_surface_matches_loss_at_each_grid_point(fitted):
    surf = LossSurface(fitted)
    P1, P2, Z = surf.grid((0., 4.), (-1., 3.), n=7)
    assert Z.shape == (7, 7) and surf.names == ('w', 'b')
    x, y = fitted.dls.train.x, fitted.dls.train.y
    for i, j in [(0, 0), (3, 5), (6, 2)]:
        w, b = P1[i, j], P2[i, j]
        assert Z[i, j] == pytest.approx(float(((x * w + b - y) ** 2).mean()), rel=1e-5)
    # the grid's minimum is near the least-squares optimum
    P1, P2, Z = surf.grid((2., 3.5), (1., 3.), n=101)
    ols = fitted.ols()
    i, j = np.unravel_index(Z.argmin(), Z.shape)
    assert abs(P1[i, j] - float(ols['w'])) < .02 and abs(P2[i, j] - float(ols['b'])) < .02


def test_loss_surface_poly_holds_the_others_and_names_errors():
    s = synth_rollercoaster()
    learn = quiet_fit(regression_learner(s.dataloaders(bs=None, valid_pct=0), model=PolyModel(2), lr=1e-5), 20)
    surf = LossSurface(learn, ('c1', 'c0'))
    assert set(surf.held) == {'c2'} and surf.held['c2'] == pytest.approx(float(learn.model.c2.detach()))
    _, _, Z = surf.grid((-1, 1), (-1, 1), n=3)
    with torch.no_grad(): here = float(learn.loss_func(learn.model(learn.dls.train.x), learn.dls.train.y))
    assert np.isfinite(Z).all() and Z.min() < 10 * here
    with pytest.raises(ValueError, match=r"choose two of \['c2', 'c1', 'c0'\]"): LossSurface(learn, ('c1', 'w'))
    with pytest.raises(ValueError, match='two different'): LossSurface(learn, ('c1', 'c1'))


def test_loss_surface_points_of_records_at_once_are_each_records_point():
    "`points` of a history's records (stacked at once) gives what `point` gives record by record, and falls back to it."
    from fastfit.records import Records
    s = synth_rollercoaster()
    learn = quiet_fit(regression_learner(s.dataloaders(bs=None, valid_pct=0), model=PolyModel(2), lr=1e-5), 20)
    surf = LossSurface(learn, ('c0', 'c2'))  # not the first two, nor in order
    recs = Records.from_history(learn.param_history, 7)
    one_by_one = np.array([surf.point(p) for p in recs.params], dtype=np.float64)
    assert one_by_one.shape == (7, 2) and np.array_equal(surf.points(recs.params), one_by_one)
    assert np.array_equal(surf.points(list(recs.params)), one_by_one)  # plain dicts: one by one
    assert surf.points([]).shape == (0,)
    from fastfit.panels.nets import LossPlane
    plane = LossPlane(learn, [learn.param_history.flat])  # its points are projections: one by one, as `point`
    assert np.array_equal(plane.points(recs.params), np.array([plane.point(p) for p in recs.params], dtype=np.float64))


def test_plot_loss_surface_draws_path_start_end_and_optimum(fitted):
    _, ax = plt.subplots()
    assert fitted.plot_loss_surface(n=30, ax=ax) is None
    assert ax.get_xlabel() == 'w' and ax.get_ylabel() == 'b'
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for want in ('true', 'least squares', 'start', 'end', 'path'): assert want in labels
    path = next(line for line in ax.lines if line.get_label() == 'path')
    assert len(path.get_xdata()) == len(fitted.param_history)  # the whole recorded path
    ols = fitted.ols()
    star = next(line for line in ax.lines if line.get_label() == 'least squares')
    assert star.get_xdata()[0] == pytest.approx(float(ols['w'])) and star.get_ydata()[0] == pytest.approx(float(ols['b']))


@pytest.mark.parametrize('suffix', ['.gif', '.html'])
def test_three_synced_panels_export_exactly_the_frames_asked(fitted, tmp_path, suffix):
    p = fitted.save_animation(tmp_path / f'a{suffix}', frames=12, fps=10, panels=('fit', 'surface', 'loss'), dpi=50)
    if suffix == '.gif':
        im = Image.open(p)
        assert im.n_frames == 12 and im.size[0] > 2.5 * im.size[1]  # three panels side by side
    else:
        assert len(exported_frames(p)) == 12  # twelve frames in the page's player


def test_panels_move_in_step(fitted):
    h = fitted.param_history
    fr = Frames(fitted, Records.from_history(h, 5), panels=('fit', 'surface', 'loss'), dpi=40)
    fit, surf, loss = fr.panels
    fr.draw(2)
    step = fit.recs.steps[2]
    # the surface point is at the parameters of that step, the loss curve ends at that step
    i = int(np.searchsorted(h.steps, step))
    assert surf.points[0].get_xdata()[0] == pytest.approx(float(h.params['w'][i, 0]))
    assert loss.lines[0].get_xdata()[-1] == step
    assert f"step {step}" in fit.text.get_text()


def test_loss_panel_uses_log_scale_when_loss_spans_decades(fitted):
    s = synth_rollercoaster()
    learn = quiet_fit(regression_learner(s.dataloaders(bs=None, valid_pct=0), model=PolyModel(2), lr=1e-5), 30)
    fr = Frames(learn, Records.from_history(learn.param_history, 3), panels='loss', dpi=40)
    assert fr.axs[0].get_yscale() == 'log'
    fr = Frames(fitted, Records.from_history(fitted.param_history, 3), panels='loss', dpi=40)
    assert fr.axs[0].get_yscale() == 'linear'


def test_compare_optimizers_same_start_one_colour_each(dls, tmp_path):
    c = compare_optimizers(dls, {'SGD': SGD, 'momentum': partial(SGD, mom=.9), 'Adam': Adam}, lr=.1, epochs=30)
    assert list(c.learners) == ['SGD', 'momentum', 'Adam']
    starts = [lrn.param_history.flat[0] for lrn in c.learners.values()]
    for s in starts[1:]: torch.testing.assert_close(s, starts[0])
    ends = [lrn.param_history.flat[-1] for lrn in c.learners.values()]
    assert not torch.allclose(ends[0], ends[2])  # they really took different paths
    assert c.show() is None
    fig = plt.gcf()
    surf_ax = fig.axes[1]
    colours = {line.get_color() for line in surf_ax.lines if line.get_label() in c.learners}
    assert len(colours) == 3
    assert [t.get_text() for t in surf_ax.get_legend().get_texts() if t.get_text() in c.learners] == list(c.learners)
    gif = c.save_animation(tmp_path / 'c.gif', frames=9, dpi=40)
    assert Image.open(gif).n_frames == 9
    html = c.save_animation(tmp_path / 'c.html', frames=9, dpi=40)
    assert len(exported_frames(html)) == 9
    anim = c.animate(frames=7)
    assert len(list(anim.new_frame_seq())) == 7
    with pytest.raises(ValueError, match='no entry|without an entry'): compare_optimizers(dls, {'SGD': SGD}, lr={'Adam': .1})
    with pytest.raises(ValueError, match='suffix'): c.save_animation(tmp_path / 'c.avi')


def test_lr_sweep_fates_and_diverged_run_stops(dls, tmp_path):
    sw = lr_sweep(dls, (.01, .1, .9, 5.), epochs=60)
    assert sw.fates == {.01: 'slow', .1: 'converging', .9: 'oscillating', 5.: 'diverged'}
    assert 5. in sw.stops and sw.stops[5.][0] < 60  # stopped early, its history kept finite up to there
    h = sw.learners[5.].param_history
    assert len(h) > 2 and np.isfinite(sw.final_losses()[5.])
    fig = plt.figure()
    sw.show(fig=fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles == ['lr=0.01: slow', 'lr=0.1: converging', 'lr=0.9: oscillating', 'lr=5: diverged']
    notes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible() and 'stopped at step' in t.get_text()]
    assert len(notes) == 1 and 'diverged' in notes[0]
    gif = sw.save_animation(tmp_path / 's.gif', frames=8, dpi=40)
    assert Image.open(gif).n_frames == 8
    assert len(exported_frames(sw.save_animation(tmp_path / 's.html', frames=8, dpi=40))) == 8


def test_fate_reads_raw_vs_standardised_rollercoaster():
    s = synth_rollercoaster()
    t = s.x
    raw = s.dataloaders(bs=None, valid_pct=0)
    assert lr_sweep(raw, (1e-5,), epochs=50, model=PolyModel(2)).fates[1e-5] == 'slow'
    assert lr_sweep(raw, (1e-3,), epochs=50, model=PolyModel(2)).fates[1e-3] == 'diverged'
    from fastfit.all import RegDataLoaders
    std = RegDataLoaders.from_arrays((t - t.mean()) / t.std(), s.y, valid_pct=0)
    assert lr_sweep(std, (.1,), epochs=200, model=PolyModel(2)).fates[.1] == 'converging'


def test_fate_needs_a_fit(dls):
    learn = regression_learner(dls)
    with pytest.raises(ValueError, match='fit first'): fate(learn)


def test_sweep_errors_name_the_argument(dls):
    with pytest.raises(ValueError, match='lrs'): lr_sweep(dls, (.1, -1.))
    with pytest.raises(ValueError, match='at least one'): lr_sweep(dls, ())
    with pytest.raises(TypeError, match='opts'): compare_optimizers(dls, {})
    with pytest.raises(TypeError, match='dls must be DataLoaders from fastfit'): lr_sweep([1, 2], (.1,))


def test_surface_is_broadcast_not_a_loop(dls):
    "A 200x200 grid (40,000 points) takes well under a second: one batched call, not 40,000 model calls."
    learn = quiet_fit(regression_learner(dls, model=LinearModel(1)), 5)
    surf = LossSurface(learn)
    t = time.perf_counter()
    _, _, Z = surf.grid((0, 4), (-1, 3), n=200)
    assert Z.shape == (200, 200) and time.perf_counter() - t < 2


def test_small_grids_are_computed_on_one_thread_with_the_same_numbers(monkeypatch):
    """A classifier's surface (1.6M values) and its boundary's chunk of frames on one torch thread, the number given back
    after; the same numbers as on two threads."""
    import fastfit.panels.base as base
    import fastfit.panels.boundary as boundary
    from fastfit.all import classification_learner, synth_blobs
    from fastfit.plots import learner_frames
    learn = quiet_fit(classification_learner(synth_blobs(spread=1.2).dataloaders(bs=None), lr=1.), 5)
    surf, seen = LossSurface(learn), []
    vmap, outputs = torch.func.vmap, boundary.outputs
    monkeypatch.setattr(torch.func, 'vmap', lambda *a, **kw: seen.append(torch.get_num_threads()) or vmap(*a, **kw))
    monkeypatch.setattr(boundary, 'outputs', lambda *a, **kw: seen.append(torch.get_num_threads()) or outputs(*a, **kw))
    def grids():
        b = learner_frames(learn, 5, ('boundary',), 40, 't').panels[0]
        return surf.grid((-3, 3), (-3, 3), n=60)[2], b._frame_probs(3, 0), b._acc[0]
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one, p1, a1 = grids()
        assert set(seen) == {1} and torch.get_num_threads() == 2
        monkeypatch.setattr(base, 'ONE_THREAD_VALUES', 0)  # every grid on torch's own threads
        seen.clear()
        two, p2, a2 = grids()
        assert set(seen) == {2} and torch.get_num_threads() == 2
    finally: torch.set_num_threads(was)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(a1, a2)

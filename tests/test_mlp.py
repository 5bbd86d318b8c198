"Neural nets (issue 16): MLPModel, synth_func, synth_moons, the units and landscape panels, history and plot_params of many parameters."
import ast
import copy
import re
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from fastfit.all import (
    SGD,
    Adam,
    LandscapePanel,
    LossPlane,
    MLPModel,
    ParamHistory,
    UnitsPanel,
    classification_learner,
    compare_optimizers,
    exported_frames,
    fitting_panels,
    load_learner,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
    synth_moons,
)
from fastfit.panels.fit import _truth_curve
from fastfit.plots import learner_frames
from fastfit.records import _finite_records


def raises(exc, f, *parts):
    with pytest.raises(exc) as e: f()
    msg = str(e.value)
    for p in parts: assert p in msg, f"{p!r} not in {msg!r}"
    return msg


def fit(model, steps=200, lr=.1, n=100, history=True, cbs=None, valid_pct=0):
    s = synth_func(torch.sin, n=n, seed=0)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=valid_pct), model=model, lr=lr, history=history, cbs=cbs)
    with learn.no_bar(), learn.no_logging(): learn.fit(steps)
    return learn


@pytest.fixture(scope='module')
def mlp16():
    return fit(MLPModel(hidden=(16,)), steps=300)


# --- MLPModel ----------------------------------------------------------------------------------------------------------
def test_mlp_names_shapes_and_forward():
    m = MLPModel(n_in=2, hidden=(5, 3), n_out=4)
    assert [(k, tuple(p.shape)) for k, p in m.named_parameters()] == [
        ('l1.w', (2, 5)), ('l1.b', (5,)), ('l2.w', (5, 3)), ('l2.b', (3,)), ('l3.w', (3, 4)), ('l3.b', (4,))]
    x = torch.randn(7, 2)
    p = dict(m.named_parameters())
    want = F.relu(F.relu(x @ p['l1.w'] + p['l1.b']) @ p['l2.w'] + p['l2.b']) @ p['l3.w'] + p['l3.b']
    torch.testing.assert_close(m(x), want)
    assert m.param_names()[:3] == ['l1.w[0]', 'l1.w[1]', 'l1.w[2]'] and len(m.param_names()) == 2 * 5 + 5 + 15 + 3 + 12 + 4
    assert repr(MLPModel(hidden=8, act='tanh')) == "MLPModel(n_in=1, hidden=(8,), n_out=1, act='tanh'): 25 parameters"
    torch.testing.assert_close(MLPModel(act='tanh')(x[:, :1]),
                               torch.tanh(x[:, :1] @ MLPModel().l1.w + MLPModel().l1.b) @ MLPModel().l2.w + MLPModel().l2.b)


def test_mlp_init_seeded_and_by_name():
    a, b, c = MLPModel(), MLPModel(), MLPModel(seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.l1.w, c.l1.w)
    # as torch's nn.Linear: uniform on +-1/sqrt(fan_in)
    big = MLPModel(hidden=(400,))
    w1, w2 = big.l1.w.detach().abs().max(), big.l2.w.detach().abs().max()
    assert float(w1) <= 1 and float(w2) <= 400 ** -.5 < float(w1)
    m = MLPModel(hidden=(3,), init={'l1.b': [1., 2., 3.], 'l2.b': 0.})
    assert m.l1.b.tolist() == [1., 2., 3.] and m.l2.b.tolist() == [0.] and torch.equal(m.l1.w, MLPModel(hidden=(3,)).l1.w)
    flat = torch.arange(10.)
    m = MLPModel(hidden=(3,), init=flat)
    assert torch.equal(torch.cat([p.reshape(-1) for p in m.parameters()]), flat)


def test_mlp_units_sum_to_the_output():
    m = MLPModel(hidden=(6, 4))
    x = torch.linspace(-3, 3, 50)[:, None]
    parts = m.units(x)
    assert parts.shape == (50, 4)
    torch.testing.assert_close(parts.sum(1, keepdim=True) + m.l3.b, m(x))
    p = {k: v * 2 for k, v in m.named_parameters()}
    torch.testing.assert_close(m.units(x, p).sum(1, keepdim=True) + p['l3.b'], functional_call(m, p, (x,)))


def test_mlp_bad_arguments():
    raises(ValueError, lambda: MLPModel(n_in=0), 'n_in must be a positive int', 'got 0')
    raises(ValueError, lambda: MLPModel(hidden=()), 'hidden=()', 'hidden=(8,)', 'LinearModel')
    raises(ValueError, lambda: MLPModel(hidden=(8, 0)), 'hidden[1] must be a positive int', 'got 0')
    raises(TypeError, lambda: MLPModel(hidden=None), 'hidden must be a tuple', 'None')
    raises(ValueError, lambda: MLPModel(hidden=(2.5,)), 'hidden[0] must be a positive int', '2.5')
    raises(ValueError, lambda: MLPModel(act='swish'), "act must be one of ('relu'", "'swish'")
    raises(TypeError, lambda: MLPModel(act=3), 'act must be one of', 'a function', '3')
    raises(ValueError, lambda: MLPModel(init={'l1.W': 1.}), "init names ['l1.W']", 'l1.w (1, 8)')
    raises(ValueError, lambda: MLPModel(init=torch.zeros(5)), 'init has 5 values but the model has 25')
    dls = synth_linear(n=20).dataloaders(bs=None, valid_pct=0)
    raises(ValueError, lambda: regression_learner(dls, model=MLPModel(n_in=2)), 'MLPModel(n_in=1, ...)', 'shape (20, 1)')


def test_mlp_fit_is_the_hand_loop_step_for_step():
    "Full-batch SGD on an MLP reproduces a hand-written torch loop with the same init."
    s = synth_func(torch.sin, n=50, seed=0)
    model = MLPModel(hidden=(8,))
    hand = copy.deepcopy(model)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=model, lr=.05)
    with learn.no_bar(), learn.no_logging(): learn.fit(20)
    x, y = learn.dls.train.x, learn.dls.train.y
    for _ in range(20):
        F.mse_loss(hand(x), y).backward()
        with torch.no_grad():
            for p in hand.parameters(): p -= .05 * p.grad; p.grad = None
    for (k, p), q in zip(model.named_parameters(), hand.parameters()): torch.testing.assert_close(p, q, msg=k)
    h = learn.param_history
    assert list(h.params) == ['l1.w', 'l1.b', 'l2.w', 'l2.b'] and h.params['l1.w'].shape == (21, 1, 8)
    torch.testing.assert_close(h.record(-1)['l2.w'], model.l2.w.detach())


def test_mlp_fits_a_sine_better_with_more_units():
    losses = {h: fit(MLPModel(hidden=(h,)), steps=400).train_loss() for h in (1, 16)}
    assert losses[16] < .02 < .1 < losses[1]  # noise .1: .01 is the floor; one ReLU can only bend once


def test_dotted_names_through_the_learner_api(mlp16, tmp_path):
    mlp16.export(tmp_path / 'm.pkl')
    back = load_learner(tmp_path / 'm.pkl')
    x = torch.tensor([[.5], [-1.]])
    torch.testing.assert_close(back.model(x), mlp16.model(x))
    png = mlp16.save_animation(tmp_path / 'a.png', panels=('fit', 'loss'), dpi=40)
    assert png.exists()
    mlp16.plot_loss_surface(params=('l1.w[3]', 'l2.b'), n=12)
    ax = plt.gcf().axes[0]
    assert ax.get_xlabel() == 'l1.w[3]' and ax.get_ylabel() == 'l2.b'


# --- data --------------------------------------------------------------------------------------------------------------
def test_synth_func():
    s = synth_func(torch.sin, n=300, x_range=(-2, 4), noise=0, seed=3)
    assert s.x.shape == (300, 1) and s.y.shape == (300, 1) and s.x.dtype == torch.float32
    assert -2 <= float(s.x.min()) and float(s.x.max()) <= 4
    torch.testing.assert_close(s.y, torch.sin(s.x))
    noisy, again = synth_func(lambda x: x ** 2, seed=3), synth_func(lambda x: x ** 2, seed=3)
    assert torch.equal(noisy.y, again.y) and .05 < float((noisy.y - noisy.x ** 2).std()) < .15
    assert s.params == {'f': 'sin'} and 'synth_func(sin)' in repr(s)
    # numpy functions too; the truth is the curve itself, drawn by the fit panel (and kept by learn.export: no lambda)
    s = synth_func(lambda x: np.cos(x.numpy()), n=20, noise=0)
    torch.testing.assert_close(s.y, torch.cos(s.x))
    xg = torch.linspace(-3, 3, 7)[:, None]
    torch.testing.assert_close(_truth_curve(s.truth, xg), torch.cos(xg[:, 0]), atol=2e-3, rtol=0)


def test_synth_func_bad_input():
    raises(TypeError, lambda: synth_func(3.), 'f must be a function', '3.0')
    raises(ValueError, lambda: synth_func(lambda x: x[:3]), 'returned shape (3,) for 200 x values', 'one y per x')
    raises(ValueError, lambda: synth_func(lambda x: x.foo()), 'failed on a float32 tensor', 'torch.sin')
    raises(ValueError, lambda: synth_func(torch.log, x_range=(-1, 1)), 'NaN/inf', 'x_range=(-1, 1)')
    raises(ValueError, lambda: synth_func(torch.sin, x_range=(3, -3)), 'x_range must be (low, high)')
    raises(ValueError, lambda: synth_func(torch.sin, n=0), 'n must be an integer > 0')


def test_synth_moons_matches_scikit_learn():
    from sklearn.datasets import make_moons
    s = synth_moons(n=201, noise=0)
    xs, ys = make_moons(n_samples=201, noise=0, shuffle=False)
    assert s.x.shape == (201, 2) and s.y.shape == (201, 1)
    d = np.linalg.norm(s.x.numpy()[:, None] - xs[None], axis=2)  # each of our points: its match among theirs
    match = d.argmin(1)
    assert d.min(1).max() < 1e-6 and len(set(match)) == 201 and (s.y[:, 0].numpy() == ys[match]).all()
    n1 = synth_moons(n=200, seed=1)
    assert torch.equal(n1.x, synth_moons(n=200, seed=1).x) and int(n1.y.sum()) == 100
    assert not torch.equal(n1.y, synth_moons(n=200, seed=2).y)  # shuffled by the seed
    raises(ValueError, lambda: synth_moons(n=1), 'n must be >= 2')
    raises(ValueError, lambda: synth_moons(noise=-1), 'noise must be a finite number >= 0')


# --- the units panel ---------------------------------------------------------------------------------------------------
def test_units_panel_draws_each_unit_and_their_sum(mlp16):
    fr = learner_frames(mlp16, 6, ('units',), 50, 'test')
    p = fr.panels[0]
    assert len(p.unit_lines) == 16 and p.parts.shape == (6, 200, 16)
    labels = [t.get_text() for t in p.ax.get_legend().get_texts()]
    assert labels == ['train data', 'each unit (16)', 'output bias', 'sum = fit', "a unit's hinge"]
    for k in (0, 3, 5):
        fr.draw(k)
        xg = torch.from_numpy(p.xs)[:, None].float()
        np.testing.assert_allclose(p.sum_line.get_ydata(), p.predict(xg, k), rtol=1e-5, atol=1e-5)
        j = 7
        w1, b1, w2 = (p.params(k)[n] for n in ('l1.w', 'l1.b', 'l2.w'))
        np.testing.assert_allclose(p.unit_lines[j].get_ydata(),
                                   (F.relu(xg[:, 0] * w1[0, j] + b1[j]) * w2[j, 0]).numpy(), rtol=1e-5, atol=1e-6)
        assert p.bias_line.get_ydata()[0] == pytest.approx(float(p.params(k)['l2.b'][0]))
        assert p.text.get_text().startswith(f"step {p.step(k)}  loss")


def test_units_panel_few_units_get_a_colour_each_and_many_are_capped(tmp_path):
    learn = fit(MLPModel(hidden=(3,)), steps=20)
    p = learner_frames(learn, 3, ('units',), 40, 'test').panels[0]
    assert [t.get_text() for t in p.ax.get_legend().get_texts()][1:4] == ['unit 1', 'unit 2', 'unit 3']
    assert len({line.get_color() for line in p.unit_lines}) == 3
    learn = fit(MLPModel(hidden=(60,)), steps=20)
    fr = learner_frames(learn, 3, (partial(UnitsPanel, max_units=10),), 40, 'test')
    p = fr.panels[0]
    assert len(p.unit_lines) == 10 and '10 of 60 units' in [t.get_text() for t in p.ax.get_legend().get_texts()]
    peaks = np.abs(p.parts[-1]).max(0)
    assert peaks[p.shown].min() >= np.delete(peaks, p.shown).max()  # the largest ones
    gif = learn.save_animation(tmp_path / 'u.gif', frames=5, panels=('units',), dpi=40)
    assert len(exported_frames(gif, 20)) == 5


def fitting(msg, model='LinearModel') -> tuple:
    "The panels an error message names as fitting `model`."
    return ast.literal_eval(re.search(rf"(?:panels|those) that fit {model}: (\(.*?\))", msg).group(1))


def test_units_panel_on_a_model_without_units_names_the_panels_that_fit(tmp_path):
    s = synth_linear(n=30)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(5)
    msg = raises(ValueError, lambda: learn.save_animation(tmp_path / 'a.gif', panels=('fit', 'units')),
                 "the 'units' panel needs an MLPModel with one input and one output")
    fits = fitting(msg)
    assert fits == fitting_panels(learn) and {'fit', 'surface', 'loss', 'landscape'} <= set(fits) and 'units' not in fits
    raises(ValueError, lambda: learn.animate(panels=(partial(UnitsPanel, max_units=3),)), "the 'units' panel needs")
    msg = raises(ValueError, lambda: learn.animate(panels=('unit',)), "unknown panels ['unit']", "those that fit LinearModel")
    assert fitting(msg) == fits
    assert not (tmp_path / 'a.gif').exists()
    moons = synth_moons(n=40)
    learn = classification_learner(moons.dataloaders(bs=None, valid_pct=0), model=MLPModel(n_in=2))
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    msg = raises(ValueError, lambda: learn.animate(panels=('units',)), "the 'units' panel needs")
    assert 'landscape' in fitting(msg, 'MLPModel') and 'units' not in fitting(msg, 'MLPModel')


# --- the landscape -----------------------------------------------------------------------------------------------------
def _plane(learn, directions='pca'):
    h = learn.param_history
    return LossPlane(learn, [h.flat[_finite_records(h)]], directions)


def test_landscape_grid_is_the_loss_of_a_loop_of_forward_passes(mlp16):
    plane = _plane(mlp16)
    A, B, Z = plane.grid((-1, 2), (-.5, .5), n=7)
    x, y = mlp16.dls.train.x, mlp16.dls.train.y
    for i, j in ((0, 0), (3, 5), (6, 2)):
        theta = plane.origin + A[i, j] * plane.D[0] + B[i, j] * plane.D[1]
        want = float(F.mse_loss(functional_call(plane.model, plane._unflat(theta.float()), (x,)), y))
        assert Z[i, j] == pytest.approx(want, rel=1e-5)


def test_landscape_pca_plane_holds_the_path(mlp16):
    plane = _plane(mlp16)
    torch.testing.assert_close(plane.D @ plane.D.T, torch.eye(2, dtype=torch.float64))  # orthonormal directions
    steps, xy = plane.path(mlp16.param_history)
    assert np.allclose(xy[-1], 0) and len(xy) == 301  # the origin is the last record
    assert .9 < plane.captured <= 1 + 1e-9 and 'PC1 (' in plane.names[0]
    # Two parameters: the plane is the whole space, so the loss on it along the path is the recorded loss.
    s = synth_linear(n=50, seed=1)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), lr=.2)
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    plane = _plane(learn)
    assert plane.captured == pytest.approx(1)
    h = learn.param_history
    _, xy = plane.path(h)
    for k in (0, 10, 30):
        th = plane.origin + xy[k, 0] * plane.D[0] + xy[k, 1] * plane.D[1]
        assert learn.train_loss(plane._unflat(th.float())) == pytest.approx(float(h.losses[k]), rel=1e-4)


def test_landscape_random_directions_are_filter_normalised(mlp16):
    plane = _plane(mlp16, 'random')
    p = plane._unflat(plane.origin)
    for d in plane.D:
        dd = plane._unflat(d)
        # each unit's weights (a column of an MLPModel weight) have that unit's norm; vectors as a whole
        torch.testing.assert_close(dd['l2.w'].norm(dim=0), p['l2.w'].norm(dim=0))
        torch.testing.assert_close(dd['l1.w'].norm(dim=0), p['l1.w'].norm(dim=0))
        torch.testing.assert_close(dd['l1.b'].norm(), p['l1.b'].norm())
    assert 'random' in plane.names[0] and 0 <= plane.captured < 1
    raises(ValueError, lambda: _plane(mlp16, 'pcaa'), "directions must be 'pca'", "'pcaa'")


def test_landscape_panel_animates_the_projected_path(mlp16, tmp_path):
    fr = learner_frames(mlp16, 5, ('landscape',), 40, 'test')
    p = fr.panels[0]
    assert p.Z.shape == (60, 60) and np.isfinite(p.Z).all()
    fr.draw(2)
    j = int(np.searchsorted(p.paths[0][0], p.step(2), 'right'))
    assert len(p.lines[0].get_xdata()) == j
    np.testing.assert_allclose(p.points[0].get_xydata()[0], p.surf.point(p.params(2)), atol=1e-6)
    assert 'PC1' in p.ax.get_xlabel() and 'holds' in p.ax.get_title() and "the run's" in p.text.get_text()
    gif = mlp16.save_animation(tmp_path / 'l.gif', frames=4, dpi=40,
                               panels=('units', partial(LandscapePanel, directions='random', n=15), 'loss'))
    assert len(exported_frames(gif, 20)) == 4


def test_landscape_of_several_runs_gives_each_runs_losses_in_columns_inside_the_axes():
    dls = synth_func(torch.sin, n=100, seed=0).dataloaders(bs=None, valid_pct=0)
    runs = compare_optimizers(dls, {'SGD': SGD, 'Adam': Adam}, model=MLPModel(hidden=(8,)), lr=.05, epochs=40)
    fr = runs.frames(4, panels=('landscape',))
    fr.draw(3)
    fr.fig.canvas.draw()
    p, r = fr.panels[0], fr.fig.canvas.get_renderer()
    rows = p.text.get_text().split('\n')
    assert rows[0] == 'loss at the point' and rows[1].split() == ['plane', 'run'] and len(rows) == 4
    for row, lab, plane, i in zip(rows[2:], ('SGD', 'Adam'), p.on_plane, range(2)):
        assert row.split() == [lab, f"{float(plane[3]):.4g}", f"{p.loss(3, i):.4g}"]
        assert row.index(row.split()[1]) == rows[1].index('plane') and row.rindex(row.split()[2]) == rows[1].index('run')
    inner, box = p.ax.get_window_extent(r), p.text.get_bbox_patch().get_window_extent(r)
    assert inner.x0 <= box.x0 and box.x1 <= inner.x1 and inner.y0 <= box.y0 and box.y1 <= inner.y1


def test_a_small_landscape_is_computed_on_one_thread_with_the_same_numbers(mlp16, monkeypatch):
    import fastfit.panels.base as base
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen, grid = [], LossPlane.grid
        monkeypatch.setattr(LossPlane, 'grid', lambda self, *a, **kw: seen.append(torch.get_num_threads()) or grid(self, *a, **kw))
        one = learner_frames(mlp16, 5, ('units', 'landscape'), 40, 'test').panels
        assert seen == [1] and torch.get_num_threads() == 2  # given back
        monkeypatch.setattr(base, 'ONE_THREAD_VALUES', 0)  # every landscape on torch's own threads
        two = learner_frames(mlp16, 5, ('units', 'landscape'), 40, 'test').panels
        assert seen == [1, 2] and torch.get_num_threads() == 2
        np.testing.assert_allclose(one[1].Z, two[1].Z, rtol=1e-6)
        np.testing.assert_allclose(one[1].on_plane[0], two[1].on_plane[0], rtol=1e-6)
        np.testing.assert_allclose(one[0].parts, two[0].parts, rtol=1e-6)
        monkeypatch.setattr(base, 'ONE_THREAD_VALUES', 1 << 24)
        with pytest.raises(KeyError), base._one_thread(10):
            assert torch.get_num_threads() == 1
            raise KeyError('inside')
        assert torch.get_num_threads() == 2  # given back on an error too
    finally: torch.set_num_threads(was)


def test_landscape_needs_every_parameter_recorded(tmp_path):
    learn = fit(MLPModel(hidden=(4,)), steps=5, history=False, cbs=ParamHistory(params=['l1.w', 'l2.w']))
    msg = raises(ValueError, lambda: learn.animate(panels=('landscape',)), "the 'landscape' panel needs a fit whose "
                 "history records every parameter")
    assert {'fit', 'units'} <= set(fitting(msg, 'MLPModel')) and 'landscape' not in fitting(msg, 'MLPModel')


def test_surface_with_parameters_the_model_lacks(mlp16):
    msg = raises(ValueError, lambda: mlp16.plot_loss_surface(params=('w', 'b')), "got ('w', 'b')",
                 "choose two of ['l1.w[0]'", "'...', 'l2.w[15]', 'l2.b'] (49 in all)", "'landscape' panel")
    assert len(msg) < 400


# --- history and plot_params for many parameters -------------------------------------------------------------------
def test_history_of_a_10k_parameter_model_records_all_within_max_bytes():
    s = synth_func(torch.sin, n=20, seed=0)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=MLPModel(hidden=(100, 98)), lr=.01)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    h = learn.param_history
    held = sum(t.nbytes for t in (h._flat, *h._g.values()))  # the parameters, and each step's gradient and start
    assert len(h.flat_names) == 10_197 and held <= h.max_bytes == 100_000_000 and h.rows >= h.min_records
    # room for 10 records of parameters and gradients: thinned as max_records would be (first and last kept)
    small = ParamHistory(max_bytes=10 * (4 * 10_197 * 3 + 64))
    small.min_records = 5
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=MLPModel(hidden=(100, 98)), lr=.01,
                               history=False, cbs=small)
    with learn.no_bar(), learn.no_logging(): learn.fit(40)
    assert small._flat.shape == (10, 10_197) and 3 <= len(small) <= 10 and small.steps[0] == 0 and small.steps[-1] == 40


def test_plot_params_summarises_many_parameters(mlp16):
    assert mlp16.plot_params() is None  # drawn with pyplot (fastai's show_* convention)
    fig = plt.gcf()
    heat, moved = fig.axes[0], fig.axes[1]  # the heat-map and the tensors' RMS change (then the colour bar)
    ticks = [t.get_text().split('\n') for t in heat.get_yticklabels()]
    assert [t[0] for t in ticks] == ['l1.w (16)', 'l1.b (16)', 'l2.w (16)', 'l2.b (1)']
    img = heat.get_images()[0].get_array()
    assert img.shape == (4 * 100, 301)  # one band per tensor, each as tall (a bias as visible as a weight); a column per record
    h = mlp16.param_history
    change = (h.params['l2.b'][:, 0] - h.params['l2.b'][0, 0]).numpy()
    # each band in its own colour range: the tensor's change over its largest (99th percentile), said in its label
    assert float(ticks[-1][1].lstrip('±')) == pytest.approx(np.percentile(np.abs(change), 99), rel=.05)
    np.testing.assert_allclose(img[-1] * np.percentile(np.abs(change), 99), change, atol=1e-5)
    assert [line.get_label() for line in moved.get_lines()] == ['l1.w (16)', 'l1.b (16)', 'l2.w (16)', 'l2.b (1)']
    fit(MLPModel(hidden=(2,)), steps=5).plot_params()  # 7 parameters: one axes each, as for a line
    assert len([a for a in plt.gcf().axes if a.get_visible()]) == 7
    fig, axs = plt.subplots(1, 2)
    mlp16.plot_params(axs=axs)  # the summary into given axes
    assert axs[0].get_images() and axs[1].get_lines()
    with pytest.raises(ValueError, match='give 2'): mlp16.plot_params(axs=axs[:1])
    plt.close('all')


# --- a net as a classifier ----------------------------------------------------------------------------------------------
def test_mlp_classifier_on_moons_draws_its_curved_boundary(tmp_path):
    "An MLP's logit through classification_learner: moons separated, a boundary that is no straight line, no optimum."
    dls = synth_moons(n=200, noise=.1).dataloaders(bs=None)
    learn = classification_learner(dls, model=MLPModel(n_in=2, hidden=(16,)), lr=1.)
    with learn.no_bar(), learn.no_logging(): learn.fit(300)
    assert learn.recorder.values[-1][-1] > .95  # validation accuracy
    assert {'boundary', 'landscape', 'loss'} <= set(fitting_panels(learn)) and 'units' not in fitting_panels(learn)
    raises(TypeError, learn.optimum, 'knows no optimum for MLPModel')
    fr = learner_frames(learn, 4, ('boundary', 'landscape', 'loss'), 40, 'test')
    p = fr.panels[0]
    fr.draw(3)
    x, y = np.concatenate(p.lines[0].get_segments()).T  # the boundary's pieces at the last frame
    slope = np.polyfit(x, y, 1)
    assert np.abs(np.polyval(slope, x) - y).max() > .2  # curved: far from its best straight line
    assert p.opt is None  # a net has no optimum to draw
    gif = learn.save_animation(tmp_path / 'moons.gif', panels=('boundary', 'landscape', 'loss'), frames=4, dpi=40)
    assert len(exported_frames(gif, 20)) == 4


def test_mlp_classifier_outputs_must_match_the_classes():
    dls = synth_blobs(n=60, centers=3).dataloaders(bs=None)
    raises(ValueError, lambda: classification_learner(dls, model=MLPModel(n_in=2, hidden=(4,), n_out=2)),
           'returns 2 output(s) per sample but the data has 3 classes', 'MLPModel(n_in=2, hidden=(4,), n_out=3)')


@pytest.mark.parametrize('hidden, act, n_in, n_out', [((16,), 'relu', 1, 1), ((8, 8), 'relu', 2, 1), ((5, 4), 'tanh', 2, 3)])
def test_forward_many_is_functional_call_at_each_parameter_set(hidden, act, n_in, n_out):
    "The landscape's batched forward: at each of G parameter sets, what the model itself computes there."
    m = MLPModel(n_in=n_in, hidden=hidden, n_out=n_out, act=act)
    x = torch.randn(50, n_in, generator=torch.Generator().manual_seed(0))
    ps = {k: p.detach() + .3 * torch.randn(7, *p.shape, generator=torch.Generator().manual_seed(1)) for k, p in m.named_parameters()}
    got = m.forward_many(x, ps)
    want = torch.stack([functional_call(m, {k: v[g] for k, v in ps.items()}, (x,)) for g in range(7)])
    assert got.shape == (7, 50, n_out)
    torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)

"Teaching pictures (issue 17): standardised features, batch sizes, scaling and curvature, storyboards, the classroom style."
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fastfit.all import (
    LinearModel,
    PolyModel,
    RegDataLoaders,
    compare_batch_sizes,
    compare_scaling,
    regression_learner,
    set_style,
    synth_linear,
    synth_rollercoaster,
)
from fastfit.panels import FitPanel, SamplesLossPanel
from fastfit.plots import learner_frames
from fastfit.records import Records
from fastfit.render import Renderer
from fastfit.style import get_style


def fit(dls, model=None, n=30, **kw):
    learn = regression_learner(dls, model, **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


# -- normalize=True ----------------------------------------------------------------------------------------------------
def test_normalize_standardises_with_the_training_stats_and_keeps_the_truth():
    s = synth_linear(n=200, a=3., b=2., x_range=(10, 30), seed=0)
    raw, std = s.dataloaders(bs=None), s.dataloaders(bs=None, normalize=True)
    x = std.train.x
    assert float(x.mean()) == pytest.approx(0, abs=1e-5) and float(x.std()) == pytest.approx(1, abs=1e-5)
    mean, sd = std.norm
    torch.testing.assert_close(std.valid.x, (raw.valid.x - mean) / sd)  # validation: the training set's statistics
    torch.testing.assert_close(std.denormalize(std.train.x), raw.train.x)
    assert std.raw_truth is s.truth and raw.norm is None
    # the truth, as parameters of the model on standardised x, is the same function: the same loss
    lr, ls = fit(raw, n=1, history=False), fit(std, n=1, history=False)
    assert ls.train_loss(std.truth) == pytest.approx(lr.train_loss(s.truth), rel=1e-4)
    # predictions on raw inputs: test_dl standardises them as the training data was
    xs = torch.tensor([[12.], [25.]])
    p = ls.get_preds(dl=std.test_dl(xs))[0]
    torch.testing.assert_close(p, ls.model(std.normalize(xs)).detach())


def test_normalize_fixes_the_rollercoaster_and_plots_in_raw_units():
    "fastbook's rollercoaster: lr 0.1 works on standardised time; the fitted curve is drawn against time in seconds."
    s = synth_rollercoaster(seed=0)
    dls = s.dataloaders(bs=None, valid_pct=0, normalize=True)
    learn = fit(dls, PolyModel(2, seed=42), n=300, lr=.1)
    opt = learn.ols()
    for k, v in learn.model.named_parameters(): assert float(v.detach()) == pytest.approx(float(opt[k]), abs=1e-2)
    assert dls.truth['c2'] == pytest.approx(.75 * float(dls.norm[1]) ** 2)  # c2 t² = c2 sd² u² + ...
    panel = FitPanel(learn, Records.from_history(learn.param_history, 3))
    assert panel.xs[0] < 0 < 19 < panel.xs[-1] < 20  # the axis is time (0..19 s), not u
    fig = Figure()
    panel.setup(fig.add_subplot())
    assert 'standardised' in panel.ax.get_xlabel()
    xs = np.concatenate([c.get_offsets()[:, 0] for c in panel.ax.collections])
    np.testing.assert_allclose(np.sort(xs), np.arange(20.), atol=1e-4)


def test_normalize_leaves_a_column_of_ones_alone():
    s = synth_linear(n=100, add_ones=True, seed=0)
    dls = s.dataloaders(bs=None, normalize=True)
    assert (dls.train.x[:, 1] == 1).all() and dls.norm[1][0, 1] == 1
    learn = fit(dls, LinearModel(n_in=2, bias=False), n=1, history=False)
    assert learn.train_loss(dls.truth) == pytest.approx(learn.train_loss({'w': learn.ols()['w']}), rel=.2)


def test_normalize_bad_input():
    with pytest.raises(TypeError, match="normalize must be True or False, got 'yes'"):
        RegDataLoaders.from_arrays([1., 2., 3.], [1., 2., 3.], valid_pct=0, normalize='yes')


# -- compare_batch_sizes ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def batch_sizes():
    return compare_batch_sizes(synth_linear(n=64, seed=0), bss=(1, 16, None), epochs=3, lr=.05)


def test_batch_sizes_start_together_and_share_a_clock_of_samples(batch_sizes):
    b = batch_sizes
    assert b.labels == ['bs=1', 'bs=16', 'full batch (64)'] and b.per_step == {1: 1, 16: 16, None: 64}
    hs = [lrn.param_history for lrn in b.learners.values()]
    for h in hs[1:]: torch.testing.assert_close(h.flat[0], hs[0].flat[0])  # the same start
    assert [h.step for h in hs] == [192, 12, 3]  # 3 epochs of 64 samples each
    fr = b.frames(frames=13, dpi=40)
    for r, bs in zip(fr.recss, b.learners):  # frame k shows every run at the last step it took by then
        done = r.steps * b.per_step[bs]
        assert (done <= r.clock).all() and (r.clock < done + b.per_step[bs]).all()
    assert fr.recss[0].clock[-1] == 192 and len(set(map(len, fr.recss))) == 1
    assert isinstance(fr.panels[1], SamplesLossPanel) and fr.axs[1].get_xlabel() == 'samples seen'
    fr.draw(len(fr) - 1)
    assert [line.get_xdata()[-1] for line in fr.panels[1].lines] == [192, 192, 192]


def test_batch_size_loss_is_on_all_the_data(batch_sizes):
    "The loss drawn for a minibatch run is the loss of all the training data at each recorded step, not its batch's."
    lrn = batch_sizes.learners[1]
    panel = SamplesLossPanel(lrn, Records.from_history(lrn.param_history, 5))
    _, v = panel.curves[0]
    h = lrn.param_history
    for i in (0, 17, len(h) - 1):
        assert v[i] == pytest.approx(lrn.train_loss(h.record(i)), rel=1e-5)


def test_batch_sizes_caption_counts_samples(batch_sizes):
    fr = batch_sizes.frames(frames=5, panels=('fit', 'loss'), dpi=40)
    fr.draw(4)
    assert fr.panels[0].text.get_text().startswith('192 samples seen')


def test_batch_sizes_bad_input():
    s = synth_linear(n=50, seed=0)  # all 50 samples train (a comparison holds none out)
    with pytest.raises(ValueError, match=r'bss=\(64, None\) are each full batch for the 50 training samples: keep one'):
        compare_batch_sizes(s, bss=(1, 64, None), epochs=1)
    with pytest.raises(ValueError, match='bss holds a batch size twice'): compare_batch_sizes(s, bss=(4, 4))
    with pytest.raises(ValueError, match='bss must hold at least one'): compare_batch_sizes(s, bss=())
    with pytest.raises(TypeError, match='dls must be DataLoaders from fastfit'): compare_batch_sizes([1, 2, 3])
    with pytest.raises(ValueError, match='lr must be'): compare_batch_sizes(s, lr=-1)


# -- compare_scaling and curvature --------------------------------------------------------------------------------------
def test_curvature_is_the_hessian_of_the_mse():
    s = synth_rollercoaster(seed=0)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), PolyModel(2), history=False)
    c = learn.curvature()
    t = s.x[:, 0].double()
    X = torch.stack([t ** 2, t, torch.ones_like(t)], 1)
    eig = torch.linalg.eigvalsh(2 / len(t) * X.T @ X).numpy()
    np.testing.assert_allclose(c.eigenvalues, eig, rtol=1e-6)
    assert c.condition == pytest.approx(eig[-1] / eig[0]) and c.max_lr == pytest.approx(2 / eig[-1])
    assert 3e-5 < c.max_lr < 4e-5  # the brief's "largest stable lr ~3.5e-5"
    with pytest.raises(ValueError, match='max_params=2'): learn.curvature(max_params=2)


def test_scaling_raw_zigzags_the_standardised_bowl_converges():
    sc = compare_scaling(synth_rollercoaster(seed=0), PolyModel(2, seed=42), epochs=60)
    raw, std = sc.curvatures['raw x'], sc.curvatures['standardised x']
    assert raw.condition > 1e5 and std.condition < 10
    assert sc.lrs['raw x'] == pytest.approx(.8 * raw.max_lr) and not sc.stops
    c2 = sc.learners['raw x'].param_history.params['c2'][:6].numpy()
    assert (np.sign(np.diff(c2)[1:]) != np.sign(np.diff(c2)[:-1])).all()  # zig-zag: every step turns back
    losses = {k: lrn.param_history.losses[-1].item() for k, lrn in sc.learners.items()}
    assert losses['standardised x'] < 1.01 * sc.learners['standardised x'].train_loss(sc.learners['standardised x'].ols())
    assert losses['raw x'] > 10 * losses['standardised x']
    fr = sc.frames(frames=3, dpi=40)
    titles = [ax.get_title() for ax in fr.axs]
    assert titles[0].startswith('raw x: condition number 2.18e+05') and 'largest stable lr 2/λmax = 3.54e-05' in titles[0]
    assert titles[1].startswith('standardised x: condition number') and 'standardised' in fr.axs[1].get_xlabel()
    x0, x1 = fr.axs[1].get_xlim(); y0, y1 = fr.axs[1].get_ylim()
    assert x1 - x0 == pytest.approx(y1 - y0)  # both axes span as much: the bowl looks round
    with pytest.raises(ValueError, match='lr_share must be < 2'): compare_scaling(synth_rollercoaster(), lr_share=2)


# -- storyboard ------------------------------------------------------------------------------------------------------------
def test_storyboard_is_a_figure_of_small_multiples(tmp_path):
    learn = fit(synth_linear(n=60, seed=0).dataloaders(bs=None), n=40)
    before = plt.get_fignums()
    fig = learn.storyboard(n=6)
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # made without pyplot: nothing else shows
    shown = [ax for ax in fig.axes if ax.get_visible()]
    steps = (0, 8, 16, 24, 32, 40)
    assert len(shown) == 6 and [ax.texts[0].get_text().split('  ')[0] for ax in shown] == [f'step {s}' for s in steps]
    assert not any(ax.get_title(loc='left') for ax in shown)  # the caption says the step: no title repeats it
    assert sum(ax.get_legend() is not None for ax in shown) == 0 and len(fig.legends) == 1  # one legend, for all
    fig = learn.storyboard(n=3, panels=('surface',))
    assert [ax.get_title(loc='left').split('\n')[0] for ax in fig.axes if ax.get_title(loc='left')] == ['step 0', 'step 20', 'step 40']
    for ext in ('png', 'pdf', 'svg'):
        fig.savefig(tmp_path / f'story.{ext}')
        assert (tmp_path / f'story.{ext}').stat().st_size > 1000
    fig = learn.storyboard(n=4, panels=('fit', 'loss'))
    assert sum(ax.get_visible() for ax in fig.axes) == 8
    short = fit(synth_linear(n=60, seed=0).dataloaders(bs=None), n=5)  # (a 41-record grid takes seconds to draw)
    assert sum(ax.get_visible() for ax in short.storyboard(n=500).axes) == 6  # no more frames than records: 6


def test_storyboard_bad_input():
    learn = fit(synth_linear(n=60, seed=0).dataloaders(bs=None), n=5)
    with pytest.raises(ValueError, match='n must be >= 1 frame, got 0'): learn.storyboard(n=0)
    with pytest.raises(TypeError, match="n must be a whole number, got '6'"): learn.storyboard(n='6')
    with pytest.raises(ValueError, match='ncols must be >= 1'): learn.storyboard(ncols=0)
    with pytest.raises(ValueError, match="unknown panels"): learn.storyboard(panels=('nope',))
    fresh = regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None))
    with pytest.raises(ValueError, match='storyboard needs a fit first'): fresh.storyboard()


# -- set_style ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def classroom():
    set_style('classroom')
    yield
    set_style('default')


def test_classroom_style_is_larger_in_plots_and_exports_and_goes_back(classroom, tmp_path):
    learn = fit(synth_linear(n=60, seed=0).dataloaders(bs=None), n=20)
    assert get_style() == 'classroom'
    big = learner_frames(learn, 5, ('fit', 'loss'), 60, 'test')
    set_style('default')
    small = learner_frames(learn, 5, ('fit', 'loss'), 60, 'test')
    for attr in (lambda fr: fr.panels[0].text.get_fontsize(), lambda fr: fr.axs[0].xaxis.label.get_fontsize(),
                 lambda fr: fr.panels[0].line.get_linewidth(), lambda fr: fr.axs[1].get_legend().get_texts()[0].get_fontsize()):
        assert attr(big) > 1.4 * attr(small)
    assert small.panels[0].text.get_fontsize() == 10  # back to the default sizes
    set_style('classroom')
    fig, ax = plt.subplots()
    learn.plot_loss_surface(ax=ax)
    assert ax.xaxis.label.get_fontsize() > 1.4 * 10
    plt.close(fig)


def test_classroom_exports_blit_without_stale_glyphs(classroom):
    "The glyph cache keys on the font size: frames in one style after the other equal matplotlib's full draws."
    learn = fit(synth_linear(n=60, seed=0).dataloaders(bs=None), n=20)
    for style in ('default', 'classroom', 'default', 'classroom'):
        set_style(style)
        fr = learner_frames(learn, 6, ('fit', 'step'), 50, 'test')
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            with Renderer(fr, check=True) as r:
                for k in range(len(fr)): r.frame(k)
                assert not r.full and not r.whole


def test_unknown_style():
    with pytest.raises(ValueError, match=r"unknown style 'projector': use one of 'default', 'classroom'"): set_style('projector')
    with pytest.raises(ValueError, match='unknown style None'): set_style(None)
    assert get_style() == 'default'


def test_batch_sizes_of_loaders_without_validation_keep_their_standardisation():
    dls = synth_linear(n=40, x_range=(5, 9), seed=0).dataloaders(bs=None, valid_pct=0, normalize=True)
    b = compare_batch_sizes(dls, bss=(8, None), epochs=2, lr=.05)
    for lrn in b.learners.values():
        torch.testing.assert_close(lrn.dls.norm[0], dls.norm[0])
        assert float(lrn.dls.train.x.mean()) == pytest.approx(0, abs=1e-5)
        assert not lrn.dls.has_valid and lrn.dls.train.n == 40
    torch.testing.assert_close(b.learners[None].dls.truth['w'], dls.truth['w'])

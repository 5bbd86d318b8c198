"The public API of SPEC.md, end to end: every name importable, the one-liner, plots, animation, callback."
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastai.learner import Learner
from matplotlib.animation import FuncAnimation
from PIL import Image

import fastfit.all as ff
from fastfit.all import (
    AnimateFit,
    LinearModel,
    ParamHistory,
    PolyModel,
    RegDataLoaders,
    huber,
    regression_learner,
    synth_linear,
    synth_poly,
)

SPEC_NAMES = '''synth_linear synth_multilinear synth_poly synth_rollercoaster SynthData RegDataLoaders LinearModel PolyModel
FuncModel regression_learner ParamHistory AnimateFit huber SGD Adam Learner F torch nn'''.split()


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def test_all_exports_spec_names_and_fastai_basics():
    missing = [n for n in SPEC_NAMES if not hasattr(ff, n)]
    assert not missing
    for m in ('ols', 'show_fit', 'plot_params', 'animate', 'save_animation'):
        assert hasattr(Learner, m), m


def test_one_liner_defaults(fitted):
    learn = fitted
    assert isinstance(learn, Learner) and isinstance(learn.model, LinearModel)
    assert learn.loss_func is F.mse_loss and learn.opt.__class__.__name__ == 'Optimizer'
    assert isinstance(learn.param_history, ParamHistory)
    # converged close to the least-squares optimum
    opt = learn.ols()
    assert abs(learn.model.w.item() - opt['w'].item()) < 1e-2 and abs(learn.model.b.item() - opt['b'].item()) < 1e-3


def test_ols_matches_numpy_lstsq():
    s = synth_poly(noise=3.)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=PolyModel(2), lr=1e-5)
    X = np.vander(learn.dls.train.x.numpy().ravel(), 3)
    coef = np.linalg.lstsq(X, learn.dls.train.y.numpy().ravel(), rcond=None)[0]
    got = learn.ols()
    np.testing.assert_allclose([float(got[k]) for k in ('c2', 'c1', 'c0')], coef, rtol=1e-4)


def test_history_false_attaches_nothing():
    learn = regression_learner(synth_linear().dataloaders(bs=None), history=False)
    assert not any(isinstance(cb, ParamHistory) for cb in learn.cbs)
    quiet(learn, 3)


def test_custom_losses_train():
    dls = synth_linear(noise=.1).dataloaders(bs=None)
    for lf in (F.l1_loss, huber(delta=1.)):
        learn = quiet(regression_learner(dls, loss_func=lf, lr=.1), 300)
        assert abs(learn.model.w.item() - 3) < .2, lf


def test_huber_is_torch_huber():
    p, t = torch.tensor([0., 3.]), torch.tensor([.5, 0.])
    assert float(huber(1.)(p, t)) == float(F.huber_loss(p, t, delta=1.))


def test_minibatch_fit_and_get_preds():
    learn = quiet(regression_learner(synth_linear(n=200).dataloaders(bs=32), lr=.05), 5)
    assert learn.param_history.step == 5 * (160 // 32)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (40, 1)


def test_no_validation_set_has_no_valid_loss_column():
    dls = RegDataLoaders.from_arrays(torch.randn(20), torch.randn(20), valid_pct=0)
    learn = regression_learner(dls)
    quiet(learn, 2)
    assert list(learn.recorder.metric_names) == ['epoch', 'train_loss', 'time']


def test_show_fit_and_plot_params(fitted):
    assert fitted.show_fit() is None  # drawn with pyplot: a cell's last line shows one picture, no repr
    ax = plt.gca()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ['train data', 'valid data', 'true', 'least squares', 'fit']
    caption = [t.get_text() for t in ax.texts][0]
    assert caption.startswith('step 100  loss') and 'w=' in caption and 'b=' in caption
    assert fitted.plot_params() is None
    assert [a.get_title() for a in plt.gcf().axes if a.get_visible()] == ['w', 'b']
    fig, axs = plt.subplots(1, 2)
    fitted.plot_params(axs=axs)  # into the caller's axes
    assert [a.get_title() for a in axs] == ['w', 'b']
    with pytest.raises(ValueError, match=r'axs holds 1 Axes but there are 2 parameter values \(w, b\) to draw'):
        fitted.plot_params(axs=axs[:1])
    with pytest.raises(TypeError, match='ax must be a matplotlib Axes'): fitted.show_fit(ax=fig)


def test_animate_is_a_funcanimation_over_thinned_frames(fitted):
    anim = fitted.animate(frames=20, dpi=40)
    assert isinstance(anim, FuncAnimation)
    html = anim.to_jshtml()
    assert 'frames[19]' in html and 'frames[20]' not in html


def test_animate_fit_callback_writes_gif_when_fit_ends(tmp_path):
    learn = regression_learner(synth_linear().dataloaders(bs=None))
    quiet(learn, 30, cbs=AnimateFit(tmp_path / 'fit.gif', frames=25, dpi=40))
    im = Image.open(tmp_path / 'fit.gif')
    assert im.n_frames >= 20


def test_full_batch_train_loss_column_is_each_steps_exact_loss():
    learn = quiet(regression_learner(synth_linear().dataloaders(bs=None)), 5)
    train_losses = [v[0] for v in learn.recorder.values]
    np.testing.assert_allclose(train_losses, learn.param_history.losses[:5].numpy(), rtol=1e-5)


def test_train_loss_at_current_and_given_parameters(fitted):
    dl = fitted.dls.train
    with torch.no_grad(): now = float(F.mse_loss(fitted.model(dl.x), dl.y))
    assert abs(fitted.train_loss() - now) < 1e-6
    assert abs(fitted.train_loss() - float(fitted.param_history.losses[-1])) < 1e-6
    assert fitted.train_loss(fitted.ols()) <= fitted.train_loss() + 1e-7  # the optimum is no worse

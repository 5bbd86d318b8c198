"""The 'weights' panel: each output's weights on the inputs as an image (8x8 for digits), a diverging colour map centred
on 0 with a colour bar, moving with the frames; for LogisticModel, SoftmaxModel and an MLPModel's first layer."""
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from fastfit.all import (
    PANELS,
    LogisticModel,
    MLPModel,
    PolyModel,
    Records,
    WeightsPanel,
    classification_learner,
    digits,
    iris,
    regression_learner,
    synth_rollercoaster,
)
from fastfit.panels import Frames
from fastfit.render import render_frames

pytest.importorskip('sklearn.datasets')


def quiet_fit(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


@pytest.fixture(scope='module')
def logistic():
    dls = digits().dataloaders(bs=None)
    return quiet_fit(classification_learner(dls, model=LogisticModel(64, init=dict(w=torch.zeros(64), b=0.)), lr=1.), 30)


@pytest.fixture(scope='module')
def softmax():
    return quiet_fit(classification_learner(digits(None).dataloaders(bs=None), lr=1.), 20)


def frames(learn, n=5, panels=('weights',)):
    return Frames(learn, Records.from_history(learn.param_history, n), panels=panels)


def test_registered_in_order():
    names = list(PANELS)
    assert PANELS['weights'] is WeightsPanel and names.index('landscape') < names.index('weights')


def test_logistic_one_8x8_image_of_w_each_frame(logistic):
    fr = frames(logistic)
    p = fr.panels[0]
    assert len(p.meshes) == 1
    for k in range(len(fr)):
        fr.draw(k)
        w = fr.recs.params[k]['w'].numpy()
        np.testing.assert_array_equal(np.asarray(p.meshes[0].get_array()).reshape(8, 8), w.reshape(8, 8))
    assert 'step 30' in p.text.get_text() and 'loss' in p.text.get_text()
    [cax] = fr.axs[0].child_axes  # the colour bar
    assert cax.get_ylabel() == 'weight (+ for 7, − for 3)'


def test_diverging_map_centred_on_zero_with_a_colour_bar(logistic):
    fr = frames(logistic)
    mesh = fr.panels[0].meshes[0]
    assert mesh.get_cmap().name == 'RdBu_r' and mesh.norm.vmin == -mesh.norm.vmax > -np.inf
    # the colour bar: an axes of its own, showing the same range
    cax = fr.axs[0].child_axes
    assert len(cax) == 1 and cax[0].get_ylim()[0] == pytest.approx(mesh.norm.vmin, rel=1e-6)
    # zero is white-ish, the ends are two hues apart (red and blue)
    c0, lo, hi = (mesh.get_cmap()(mesh.norm(v)) for v in (0, mesh.norm.vmin, mesh.norm.vmax))
    assert min(c0[:3]) > .9 and hi[0] > hi[2] + .2 and lo[2] > lo[0] + .2


def test_pictures_change_frame_by_frame(logistic):
    px = render_frames(frames(logistic, 4))
    assert all(np.abs(a.astype(int) - b.astype(int)).max() > 40 for a, b in zip(px, px[1:]))


def test_softmax_one_image_per_class_named_by_vocab(softmax):
    fr = frames(softmax)
    p = fr.panels[0]
    assert len(p.meshes) == 10
    labels = [t.get_text() for t in fr.axs[0].texts]
    assert labels == [str(d) for d in range(10)]
    w = fr.recs.params[-1]['w'].numpy()
    for c in (0, 7): np.testing.assert_array_equal(np.asarray(p.meshes[c].get_array()).reshape(8, 8), w[c].reshape(8, 8))
    assert "each class's weights on the 8x8 pixels" in p.text.get_text()


def test_mlp_first_layer_units_that_moved_most():
    dls = digits().dataloaders(bs=None)
    learn = quiet_fit(classification_learner(dls, model=MLPModel(64, hidden=(12,), n_out=1), lr=1.), 20)
    fr = Frames(learn, Records.from_history(learn.param_history, 3), panels=(partial(WeightsPanel, max_units=4),))
    p = fr.panels[0]
    h = learn.param_history.params['l1.w']
    moved = (h[-1] - h[0]).abs().sum(0)
    assert sorted(p.units.tolist()) == sorted(moved.argsort(descending=True)[:4].tolist())
    fr.draw(2)
    for mesh, u in zip(p.meshes, p.units):
        np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(), fr.recs.params[2]['l1.w'][:, u].numpy())
    assert [t.get_text() for t in fr.axs[0].texts] == [f'unit {u + 1}' for u in p.units]
    assert "4 of 12 units' weights" in p.text.get_text()
    # change=True: the weights minus those before the first step, also when only the model as it is now is drawn
    fr = Frames(learn, Records.from_history(learn.param_history, 3), panels=(partial(WeightsPanel, change=True),))
    fr.draw(0)
    assert not np.asarray(fr.panels[0].meshes[0].get_array()).any()
    fr = Frames(learn, Records.current(learn), panels=(partial(WeightsPanel, change=True, max_units=12),))
    fr.draw(0)
    now = np.stack([np.asarray(m.get_array()).ravel() for m in fr.panels[0].meshes])
    np.testing.assert_allclose(now, (learn.model.l1.w.detach() - h[0]).T.numpy(), atol=1e-6)
    assert 0 < fr.panels[0].norm.vmax <= np.abs(now).max() + 1e-9  # the colour scale is the changes', not the weights'


def test_table_data_is_a_heat_map_with_named_features():
    learn = quiet_fit(classification_learner(iris().dataloaders(bs=None, normalize=True), lr=.5), 20)
    fr = frames(learn)
    ax = fr.axs[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)',
                                                            'petal width (cm)']
    assert [t.get_text() for t in ax.get_yticklabels()] == ['setosa', 'versicolor', 'virginica']
    fr.draw(4)
    np.testing.assert_array_equal(np.asarray(fr.panels[0].meshes[0].get_array()), fr.recs.params[4]['w'].numpy())


def test_models_without_weights_on_inputs_name_the_panels_that_fit():
    learn = quiet_fit(regression_learner(synth_rollercoaster().dataloaders(bs=None), model=PolyModel(2), lr=1e-5), 3)
    with pytest.raises(ValueError, match=r"'weights' panel needs a model whose outputs weigh the inputs.*panels that fit"):
        frames(learn)


def test_drawing_leaves_the_learner_as_it_was(logistic, tmp_path):
    before = {k: v.detach().clone() for k, v in logistic.model.state_dict().items()}
    steps = logistic.param_history.step
    out = logistic.save_animation(tmp_path / 'w.gif', frames=10, panels=('weights', 'loss'))
    with Image.open(out) as im: assert im.n_frames == 10
    assert all(torch.equal(before[k], v) for k, v in logistic.model.state_dict().items())
    assert logistic.param_history.step == steps


def test_blitted_frames_are_matplotlibs_own(logistic):
    fr = frames(logistic, 3, ('weights', 'loss'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the renderer warns (and redraws in full) when blitting would differ
        from fastfit.render import Renderer
        with Renderer(fr, check=True) as r: assert not r.full


def test_text_is_readable_at_the_default_dpi(softmax):
    fr = frames(softmax)
    fig = fr.fig
    assert fig.dpi == 100
    fig.canvas.draw()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, 'get_fontsize') and hasattr(a, 'get_text'))
             if t.get_visible() and t.get_text()]
    assert any(t.get_text() == '9' for t in texts) and any('weight' in t.get_text() for t in texts)  # labels, colour bar
    assert texts and min(t.get_fontsize() * fig.dpi / 72 for t in texts) >= 10  # points to pixels

"Classification: blobs, class-label loaders, classification_learner, the optimum against scikit-learn, the boundary picture."
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sklearn
import torch
import torch.nn.functional as F
from fastai.learner import Learner, load_learner
from fastai.metrics import accuracy, error_rate

from fastfit.all import (
    BCEWithLogits,
    BoundaryPanel,
    ClsDataLoaders,
    ClsLearner,
    CrossEntropy,
    FitLearner,
    FuncModel,
    LogisticModel,
    RegDataLoaders,
    RegLearner,
    SoftmaxModel,
    binary_accuracy,
    binary_error_rate,
    classification_learner,
    compare_optimizers,
    exported_frames,
    regression_learner,
    synth_blobs,
    synth_linear,
)
from fastfit.panels.boundary import class_colors
from fastfit.plots import learner_frames
from fastfit.render import Renderer, frames_differ, mpl_frames


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def sk_logistic():
    "scikit-learn's unpenalised logistic regression (`penalty=None`, spelled C=inf from scikit-learn 1.8), solved tightly."
    from sklearn.linear_model import LogisticRegression
    new = tuple(int(v) for v in sklearn.__version__.split('.')[:2]) >= (1, 8)
    return LogisticRegression(**(dict(C=np.inf) if new else dict(penalty=None)), tol=1e-12, max_iter=100_000)


def mnist_loss(pred, targ):  # fastbook chapter 4
    return torch.where(targ == 1, 1 - pred.sigmoid(), pred.sigmoid()).mean()


@pytest.fixture(scope='module')
def two():
    "Two overlapping blobs, 300 full-batch steps."
    learn = classification_learner(synth_blobs(n=200, spread=1.2).dataloaders(bs=None), lr=1.)
    return quiet(learn, 300)


@pytest.fixture(scope='module')
def three():
    learn = classification_learner(synth_blobs(n=150, centers=3).dataloaders(bs=None), lr=1.)
    return quiet(learn, 150)


def test_spec_names():
    import fastfit.all as ff
    for name in ('synth_blobs', 'classification_learner', 'LogisticModel', 'SoftmaxModel', 'ClsDataLoaders', 'accuracy'):
        assert hasattr(ff, name), name
    assert hasattr(Learner, 'optimum') and hasattr(Learner, 'ols')
    assert ff.accuracy is accuracy  # fastai's own: classification_learner makes it binary_accuracy for one logit


# -- data ---------------------------------------------------------------------------------------------------------
def test_blobs_labels_shapes_and_seed():
    s = synth_blobs()
    assert s.x.shape == (200, 2) and s.x.dtype == torch.float32
    assert s.y.shape == (200, 1) and s.y.dtype == torch.int64
    assert torch.bincount(s.y.flatten()).tolist() == [100, 100]
    assert torch.equal(s.x, synth_blobs().x) and not torch.equal(s.x, synth_blobs(seed=1).x)
    s5 = synth_blobs(n=500, centers=5, n_features=3, spread=.1)
    assert s5.x.shape == (500, 3) and torch.bincount(s5.y.flatten()).tolist() == [100] * 5
    # each blob sits on its centre: radius 2 on a circle in the first two features, zeros in the others
    for c in range(5):
        m = s5.x[s5.y[:, 0] == c].mean(0)
        assert abs(float(m[:2].norm()) - 2) < .05 and abs(float(m[2])) < .05
    pts = synth_blobs(n=400, centers=[[0, 0], [5, 5], [0, 5]], spread=.2)
    np.testing.assert_allclose(pts.x[pts.y[:, 0] == 1].mean(0), [5, 5], atol=.05)
    assert synth_blobs(n=10, centers=2, n_features=1).x.shape == (10, 1)


def test_blobs_truth_is_the_bayes_classifier():
    s = synth_blobs(spread=2.)
    (c0, c1), s2 = torch.tensor(s.params['centers']), 4.
    torch.testing.assert_close(s.truth['w'], (c1 - c0) / s2)
    assert float(s.truth['b']) == pytest.approx(float((c0 @ c0 - c1 @ c1) / (2 * s2)), abs=1e-6)
    assert synth_blobs(centers=3).truth['w'].shape == (3, 2)  # SoftmaxModel's names and shapes


@pytest.mark.parametrize('kwargs, err, pattern', [
    (dict(centers=1), ValueError, r'centers must be 2 to 5 classes .*got 1'),
    (dict(centers=6), ValueError, r'centers must be 2 to 5 classes'),
    (dict(centers=[[0, 0, 0], [1, 1, 1]], n_features=4), ValueError, r'points with 3 coordinate\(s\) but n_features=4'),
    (dict(centers='two'), TypeError, r'centers must be a number of classes \(2-5\) or a list of points'),
    (dict(n=3, centers=2), ValueError, r'n=3 is too few for 2 classes'),
    (dict(spread=0), ValueError, r'spread must be a finite number > 0, got 0'),
])
def test_blobs_bad_input(kwargs, err, pattern):
    with pytest.raises(err, match=pattern): synth_blobs(**kwargs)


def test_blobs_dataloaders_hold_labels():
    dls = synth_blobs(centers=3).dataloaders(bs=None)
    assert isinstance(dls, ClsDataLoaders) and dls.n_classes == dls.c == 3
    assert dls.train.y.dtype == torch.int64 and dls.valid.y.dtype == torch.int64 and dls.train.y.shape[1] == 1
    assert isinstance(synth_linear().dataloaders(), RegDataLoaders) and not isinstance(synth_linear().dataloaders(), ClsDataLoaders)


@pytest.mark.parametrize('y', [[0, 1, 1, 0] * 5, np.array([0., 1.] * 10), np.array([True, False] * 10),
                               torch.tensor([1, 0] * 10)[:, None], np.array([0, 1] * 10, dtype=np.uint8)])
def test_labels_accepted(y):
    dls = ClsDataLoaders.from_arrays(torch.randn(20, 2), y, valid_pct=0)
    assert dls.n_classes == 2 and dls.train.y.dtype == torch.int64 and set(dls.train.y.flatten().tolist()) == {0, 1}


@pytest.mark.parametrize('y, err, pattern', [
    ([0, 1, .5, 1], ValueError, r'got 1 value\(s\) that are not whole numbers: 0\.5 \(first in row 2\)'),
    ([0, 1, -1, 1], ValueError, r'negative label\(s\) -1 \(first in row 2\)'),
    (['cat', 'dog', 'cat', 'dog'], TypeError, r"y must hold integer class labels 0..k-1, got str values such as 'cat', 'dog'"),
    ([1, 1, 1, 1], ValueError, r'y holds one class only \(label 1 for all 4 samples\)'),
    ([1, 2, 3, 1], ValueError, r'labels \[1, 2, 3\] \(no sample of class 0\): subtract 1'),
    ([0, 2, 0, 2], ValueError, r'no sample of class 1\): renumber them'),
    ([[1, 0], [0, 1], [1, 0], [0, 1]], ValueError, r'one class label per sample.*shape \(4, 2\): for one-hot rows use y.argmax\(1\)'),
    ([0, 1, float('nan'), 1], ValueError, r'NaN/inf label'),
])
def test_labels_refused_with_the_offending_values(y, err, pattern):
    with pytest.raises(err, match=pattern): ClsDataLoaders.from_arrays(torch.randn(4, 2), y, valid_pct=0)


def test_valid_labels_checked_and_counted_together():
    x = torch.randn(6, 2)
    with pytest.raises(ValueError, match=r'y_valid must hold .*0\.5'):
        ClsDataLoaders.from_arrays(x, [0, 1, 0, 1, 0, 1], valid=(x[:2], [0, .5]))
    dls = ClsDataLoaders.from_arrays(x, [0, 1, 0, 1, 0, 1], valid=(x[:2], [2, 0]))
    assert dls.n_classes == 3  # a class seen only in the validation set still counts


# -- the learner ----------------------------------------------------------------------------------------------------
def test_defaults_two_and_three_classes(two, three):
    assert isinstance(two, Learner) and isinstance(two, ClsLearner) and isinstance(two, FitLearner)
    assert not isinstance(two, RegLearner)  # a classifier's class says what it fits
    assert isinstance(two.model, LogisticModel) and isinstance(two.loss_func, BCEWithLogits)
    assert [m.name for m in two.metrics] == ['binary_accuracy']  # accuracy argmaxes: one logit needs a threshold
    assert dict((k, tuple(p.shape)) for k, p in two.model.named_parameters()) == {'w': (2,), 'b': ()}
    assert isinstance(three.model, SoftmaxModel) and isinstance(three.loss_func, CrossEntropy)
    assert [m.name for m in three.metrics] == ['accuracy']
    assert dict((k, tuple(p.shape)) for k, p in three.model.named_parameters()) == {'w': (3, 2), 'b': (3,)}
    assert three.param_history.flat_names[:2] == ['w[0]', 'w[1]']


def test_accuracy_metric_is_right_for_one_logit_and_softmax(two, three):
    for learn in (two, three):
        x, y = learn.dls.valid.x, learn.dls.valid.y.flatten()
        with torch.no_grad(): z = learn.model(x)
        cls = (z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1)
        want = float((cls == y).float().mean())
        assert learn.recorder.values[-1][-1] == pytest.approx(want)
        assert want > .8
    z, t = torch.tensor([[2.], [-1.], [.3], [-.2]]), torch.tensor([[1], [0], [0], [0]])
    assert float(binary_accuracy(z, t)) == .75 and float(binary_error_rate(z, t)) == .25
    assert float(accuracy(torch.cat([-z, z], 1), t)) == .75  # the same as softmax over two outputs


def test_error_rate_becomes_binary_for_one_logit():
    learn = classification_learner(synth_blobs().dataloaders(), metrics=[accuracy, error_rate])
    assert [m.name for m in learn.metrics] == ['binary_accuracy', 'binary_error_rate']


def test_outputs_must_match_the_classes():
    dls3 = synth_blobs(centers=3).dataloaders()
    with pytest.raises(ValueError, match=r'returns 4 output\(s\) per sample but the data has 3 classes.*'
                                         r'SoftmaxModel\(n_in=2, n_classes=3\)'):
        classification_learner(dls3, model=SoftmaxModel(2, 4))
    with pytest.raises(ValueError, match=r'returns 1 output\(s\) per sample but the data has 3 classes'):
        classification_learner(dls3, model=LogisticModel(2))
    dls2 = synth_blobs().dataloaders()
    with pytest.raises(ValueError, match=r'returns 3 output\(s\) per sample but the data has 2 classes.*or LogisticModel\(n_in=2\)'):
        classification_learner(dls2, model=SoftmaxModel(2, 3))
    assert isinstance(classification_learner(dls2, model=SoftmaxModel(2, 2)).loss_func, CrossEntropy)  # 2 logits: fine


def test_learners_refuse_the_other_kind_of_data():
    with pytest.raises(TypeError, match=r'dls holds class labels \(2 classes\): use classification_learner'):
        regression_learner(synth_blobs().dataloaders())
    with pytest.raises(TypeError, match=r'dls must be ClsDataLoaders .*got RegDataLoaders'):
        classification_learner(synth_linear().dataloaders())


def test_any_loss_works_mnist_loss(two):
    dls = two.dls
    learn = quiet(classification_learner(dls, loss_func=mnist_loss, lr=1.), 200)
    assert learn.recorder.values[-1][-1] > .9  # validation accuracy
    with pytest.raises(TypeError, match=r'optimum\(\) knows no optimum for LogisticModel\(n_in=2\) with loss mnist_loss'):
        learn.optimum()


def test_predict_get_preds_export(two, tmp_path):
    preds, targs = two.get_preds()
    assert preds.shape == (40, 1) and ((preds >= 0) & (preds <= 1)).all()  # the probability of class 1
    _, _, dec = two.get_preds(with_decoded=True)
    assert torch.equal(dec, (preds > .5).long())
    x = two.dls.valid.x[0]
    cls, _, probs = two.predict(x.tolist())
    assert int(cls) == int(probs[0] > .5)
    two.export(tmp_path / 'c.pkl')
    back = load_learner(tmp_path / 'c.pkl')
    torch.testing.assert_close(back.predict(x.tolist())[2], probs)
    assert back.dls.n_classes == 2
    p3, _ = classification_learner(synth_blobs(centers=3).dataloaders()).get_preds()
    torch.testing.assert_close(p3.sum(1), torch.ones(len(p3)))  # softmax: each class's probability


# -- the optimum ----------------------------------------------------------------------------------------------------
def _overlapping(centers=2, spread=1.5, n=300):
    return synth_blobs(n=n, centers=centers, spread=spread).dataloaders(bs=None, valid_pct=0)


def test_optimum_is_scikit_learns_logistic_regression():
    dls = _overlapping()
    learn = classification_learner(dls)
    opt = learn.optimum()
    sk = sk_logistic().fit(dls.train.x.double().numpy(), dls.train.y.numpy().ravel())
    np.testing.assert_allclose(opt['w'].numpy(), sk.coef_[0], rtol=1e-5, atol=1e-6)
    assert float(opt['b']) == pytest.approx(float(sk.intercept_[0]), rel=1e-5, abs=1e-6)
    # the gradient of the mean cross-entropy there is zero (to float32's rounding of the returned parameters)
    X = torch.cat([dls.train.x, torch.ones(len(dls.train.x), 1)], 1).double()
    theta = torch.cat([opt['w'], opt['b'][None]]).double().requires_grad_()
    F.binary_cross_entropy_with_logits(X @ theta, dls.train.y[:, 0].double()).backward()
    assert theta.grad.abs().max() < 1e-6


def test_gradient_descent_converges_to_scikit_learns_coefficients():
    dls = _overlapping(spread=2.)
    learn = quiet(classification_learner(dls, lr=4.), 400)
    sk = sk_logistic().fit(dls.train.x.double().numpy(), dls.train.y.numpy().ravel())
    np.testing.assert_allclose(learn.model.w.detach().numpy(), sk.coef_[0], atol=1e-4)
    assert float(learn.model.b.detach()) == pytest.approx(float(sk.intercept_[0]), abs=1e-4)


def test_softmax_optimum_is_scikit_learns_up_to_the_shift_it_cannot_see():
    dls = _overlapping(centers=3)
    learn = quiet(classification_learner(dls, lr=1.), 20)
    opt = learn.optimum()
    sk = sk_logistic().fit(dls.train.x.double().numpy(), dls.train.y.numpy().ravel())
    # every optimum + (the same vector for each class) is one: scikit-learn's has zero mean over the classes
    np.testing.assert_allclose((opt['w'] - opt['w'].mean(0)).numpy(), sk.coef_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose((opt['b'] - opt['b'].mean()).numpy(), sk.intercept_, rtol=1e-5, atol=1e-5)
    # ours is the one nearest the model's parameters: the same mean over the classes, where gradient descent goes
    torch.testing.assert_close(opt['w'].mean(0), learn.model.w.detach().mean(0), atol=1e-6, rtol=0)
    assert learn.train_loss(opt) < learn.train_loss()


def test_optimum_generalises_ols(fitted):
    opt, ols = fitted.optimum(), fitted.ols()
    assert set(opt) == {'w', 'b'}
    for k in opt: torch.testing.assert_close(opt[k], ols[k])
    learn = regression_learner(synth_linear().dataloaders(), model=FuncModel(lambda x, p: x * p[0], torch.ones(1)))
    with pytest.raises(TypeError, match=r'optimum\(\) knows no optimum for FuncModel'): learn.optimum()
    with pytest.raises(TypeError, match='ols'): learn.ols()
    huber = regression_learner(synth_linear().dataloaders(), loss_func=F.l1_loss)
    with pytest.raises(TypeError, match=r'with loss l1_loss'): huber.optimum()


def test_separable_classes_fit_without_nan_and_say_there_is_no_finite_optimum(capsys, tmp_path):
    dls = synth_blobs(n=100, spread=.3).dataloaders(bs=None)
    learn = quiet(classification_learner(dls, lr=1.), 300)
    h = learn.param_history
    assert torch.isfinite(h.flat).all() and torch.isfinite(h.losses).all() and learn.diverged is None
    assert h.flat[-1].abs().max() > h.flat[len(h) // 2].abs().max()  # still growing
    out = capsys.readouterr().out
    assert out.count('fastfit: the model now classifies every training sample correctly') == 1
    assert 'they grow without bound (there is no finite optimum' in out
    with pytest.raises(ValueError, match=r'there is no finite optimum for LogisticModel\(n_in=2\): its decision boundary '
                                         r'separates the training classes perfectly'):
        learn.optimum()
    fr = learner_frames(learn, 5, ('boundary', 'surface', 'loss'), 40, 'test')
    fr.draw(4)
    assert 'separable: no finite optimum' in fr.panels[0].text.get_text()
    assert 'minimum of the loss' not in [t.get_text() for t in fr.axs[1].get_legend().get_texts()]
    quiet(learn, 5)
    assert 'fastfit:' not in capsys.readouterr().out  # said once


# -- pictures -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('learner', ['two', 'three'])
def test_boundary_animation_is_blitted_with_matplotlibs_pixels(learner, request, tmp_path):
    learn = request.getfixturevalue(learner)
    panels = ('boundary', 'surface', 'loss')
    gif = learn.save_animation(tmp_path / 'b.gif', frames=6, fps=10, panels=panels, dpi=50)
    ref = mpl_frames(learn.animate(frames=6, fps=10, panels=panels, dpi=50))
    got = exported_frames(gif, 10)
    assert len(got) == 6 and max(frames_differ(a, b) for a, b in zip(got, ref)) <= 1e-3
    assert frames_differ(got[0], got[-1]) > .01
    fr = learner_frames(learn, 6, panels, 50, 'test')
    with Renderer(fr) as r:
        for k in range(len(fr)): r.frame(k)
        b = fr.panels[0]
        # the background mesh, the boundary and the caption are drawn alone each frame: no axes or figure redrawn
        assert b.mesh in r.steps and b.lines[0] in r.steps and b.text in r.steps
        assert not r.full and not r.whole and not any(s is fr.axs[0] for s in r.steps)


def test_an_export_computes_each_chunk_of_probabilities_once(two, tmp_path, monkeypatch):
    """An export draws its palette's frames (spread over the animation), then the others from the first: the chunks of
    probabilities it computed for the palette's are still there, none is computed twice, and the frames are matplotlib's."""
    monkeypatch.setattr(BoundaryPanel, 'chunk', 4)
    starts, probs = [], BoundaryPanel._probs
    def counted(self, params, run=0):
        starts.append(next((k for k, p in enumerate(self.recss[run].params) if p is params[0]), 'the optimum'))
        return probs(self, params, run)
    monkeypatch.setattr(BoundaryPanel, '_probs', counted)
    gif = two.save_animation(tmp_path / 'b.gif', frames=10, fps=10, panels=('boundary',), dpi=50)
    # the palette's frames 0, 3, 6, 9: chunks 0-3 and 6-9; then the others in order, 4-7 for frames 4 and 5
    assert starts == ['the optimum', 0, 6, 4]
    ref = mpl_frames(two.animate(frames=10, fps=10, panels=('boundary',), dpi=50))
    assert max(frames_differ(a, b) for a, b in zip(exported_frames(gif, 10), ref)) <= 1e-3


@pytest.mark.parametrize('learner', ['two', 'three'])
def test_background_colours_from_the_table_are_those_cell_by_cell(learner, request):
    """The background's colours, each of its (levels + 1) x k made once, are bit for bit those of the arithmetic cell by
    cell: on the panel's own probabilities (float32), ties between classes, and NaN (a diverged fit) alike."""
    learn = request.getfixturevalue(learner)
    b = learner_frames(learn, 6, ('boundary',), 50, 'test').panels[0]
    P = b._probs([b.params(j) for j in range(6)])
    P[1, :4] = 1 / b.k  # every class alike: chance, the first class's tint at strength 0
    P[2, :4, :, :2] = P[2, :4, :, :2].max(-1, keepdims=True)  # the first two tied
    for q in (P, P.astype(np.float64), P[0, 0]):
        assert np.array_equal(b._background(q), b._background_of(q))
    P[3, 5, 5, 0] = np.nan
    assert np.array_equal(b._background(P), b._background_of(P), equal_nan=True)


def test_boundary_is_where_the_model_says_p_half(two):
    fr = learner_frames(two, 3, ('boundary',), 60, 'test')
    fr.draw(2)
    w, b = (two.param_history.params[k][-1].double() for k in ('w', 'b'))
    segs = np.concatenate(fr.panels[0].lines[0].get_segments())
    assert len(segs) > 10
    z = segs @ w.numpy() + float(b)
    cell = (fr.panels[0].xc[1] - fr.panels[0].xc[0])
    assert np.abs(z).max() / float(w.norm()) < .01 * cell  # each point's distance to the line w.x + b = 0
    opt = [c for c in fr.axs[0].collections if c.get_label() == 'boundary: minimum of the loss']
    assert len(opt) == 1 and len(opt[0].get_segments())


def test_borders_are_contourpys_lines_on_any_probabilities():
    """The borders, contoured by contourpy's generator made directly, are `contour_generator`'s lines: two classes and
    three, a border through grid points (values exactly 0), a grid given as its axes or its meshgrid, NaN (masked)."""
    import contourpy

    from fastfit.panels.boundary import borders
    rng = np.random.default_rng(0)
    xc, yc = np.linspace(-2, 3, 40), np.linspace(-1, 1, 30)
    X, Y = np.meshgrid(xc, yc)
    def reference(P):
        k, out = P.shape[-1], []
        for c in range(k - 1):
            f = P[..., c] - (P[..., 1] if k == 2 else np.delete(P, c, -1).max(-1))
            if f.min() >= 0 or f.max() <= 0: continue
            out += [s for s in contourpy.contour_generator(xc, yc, f).lines(0.) if len(s) > 1]
        return out
    z = np.stack([np.sin(X + Y), X * Y - .3, np.round(X) * .5], -1).astype(np.float32)  # the third: 0 on grid points
    for P in (z[..., :2], z, z[..., [0, 2]], np.exp(z) / np.exp(z).sum(-1, keepdims=True), rng.random((30, 40, 3))):
        got = borders(P, X, Y)
        assert len(got) and [s.tolist() for s in got] == [s.tolist() for s in reference(P)]
        assert [s.tolist() for s in borders(P, xc, yc)] == [s.tolist() for s in got]
    P = z.copy()
    P[10:14, 5:9, 0] = np.nan
    assert [s.tolist() for s in borders(P, X, Y)] == [s.tolist() for s in reference(P)]

def test_legends_name_the_optimum_and_the_classes(two):
    fr = learner_frames(two, 3, ('boundary', 'surface', 'loss'), 50, 'test')
    labels = [[t.get_text() for t in a.get_legend().get_texts()] for a in fr.axs]
    assert labels[0] == ['class 0', 'class 1', 'valid (hollow)', 'boundary: minimum of the loss', 'boundary (p = .5)']
    assert 'minimum of the loss' in labels[1] and 'least squares' not in labels[1]
    assert labels[2] == ['minimum of the loss', 'training loss', 'training accuracy']
    fr.draw(2)
    cap = fr.panels[0].text.get_text()
    assert re.match(r'step 300  loss [0-9.]+  accuracy 0\.\d{3}\nw\[0\]=', cap)


def test_show_fit_picks_the_boundary_for_a_classifier(three):
    three.show_fit()
    ax = plt.gca()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ['class 0', 'class 1', 'class 2'] and 'borders' in labels
    assert ax.get_xlabel() == 'x[0]' and ax.get_ylabel() == 'x[1]'


def test_boundary_of_any_model_of_two_features():
    "A non-linear model (what an MLP gives): a curved boundary, no optimum drawn, nothing asked of the model but logits."
    def circle(x, p): return p['r'] ** 2 - ((x - p['c']) ** 2).sum(1, keepdim=True)
    dls = ClsDataLoaders.from_arrays(torch.randn(200, 2, generator=torch.Generator().manual_seed(0)),
                                     (torch.randn(200, 2, generator=torch.Generator().manual_seed(0)).norm(dim=1) < 1).long())
    learn = quiet(classification_learner(dls, model=FuncModel(circle, dict(r=.5, c=[.3, 0.])), lr=.5), 30)
    fr = learner_frames(learn, 4, ('boundary', 'loss'), 50, 'test')
    fr.draw(3)
    segs = np.concatenate(fr.panels[0].lines[0].get_segments())
    r = np.linalg.norm(segs - learn.model.c.detach().numpy(), axis=1)
    np.testing.assert_allclose(r, abs(float(learn.model.r)), rtol=.03)  # a circle
    assert fr.panels[0].opt is None


def test_boundary_needs_a_classifier_of_two_features(fitted, tmp_path):
    with pytest.raises(ValueError, match=r"the 'boundary' panel needs class labels"):
        fitted.save_animation(tmp_path / 'a.gif', panels=('boundary',))
    one = quiet(classification_learner(synth_blobs(n=40, n_features=1).dataloaders(bs=None)), 2)
    with pytest.raises(ValueError, match=r"the 'boundary' panel needs data with two features"):
        one.save_animation(tmp_path / 'a.gif', panels=('boundary',))
    assert not list(tmp_path.iterdir())


def test_compare_optimizers_on_a_classifier(tmp_path):
    from fastai.optimizer import SGD, Adam
    runs = compare_optimizers(synth_blobs().dataloaders(bs=None), {'SGD': SGD, 'Adam': Adam}, lr=.1, epochs=20)
    assert all(isinstance(lrn.model, LogisticModel) for lrn in runs.learners.values())
    fr = runs.frames(4, dpi=40)
    assert isinstance(fr.panels[0], BoundaryPanel) and len(fr.panels[0].lines) == 2
    assert len(exported_frames(runs.save_animation(tmp_path / 'c.gif', frames=4, dpi=40), 20)) == 4


def test_blob_pictures_use_a_colour_and_a_marker_per_class(tmp_path):
    s = synth_blobs(centers=3)
    assert s.show() is None  # drawn with pyplot, shown once in a notebook (fastai's show_* convention)
    ax = plt.gcf().axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['class 0', 'class 1', 'class 2']
    cols = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections]
    assert len(set(cols)) == 3 and len({c.get_paths()[0].vertices.shape for c in ax.collections}) > 1  # colours, markers
    plt.close('all')
    assert s.dataloaders().show() is None and len(plt.gcf().axes) == 2  # train and valid side by side
    learn = quiet(classification_learner(s.dataloaders(bs=None), lr=1.), 10)
    gif = learn.save_animation(tmp_path / 'c.gif', frames=3, panels=('boundary',), dpi=60)
    from PIL import Image
    with Image.open(gif) as im:
        pal = im.getpalette()
        got = {tuple(pal[i:i + 3]) for i in range(0, len(pal), 3)}
    for c in class_colors(3):  # the markers keep their exact colours in the 256-colour GIF
        assert tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) in got


def test_one_feature_classifier_fit_is_the_sigmoid_curve(tmp_path):
    learn = quiet(classification_learner(synth_blobs(n=100, n_features=1, spread=1.5).dataloaders(bs=None), lr=1.), 50)
    fr = learner_frames(learn, 3, ('fit', 'surface', 'loss'), 40, 'test')
    p = fr.panels[0]
    fr.draw(2)
    w, b = (float(learn.param_history.params[k][-1].flatten()[0]) for k in ('w', 'b'))
    np.testing.assert_allclose(p.line.get_ydata(), 1 / (1 + np.exp(-(w * p.xs + b))), rtol=1e-4, atol=1e-6)
    assert fr.axs[0].get_ylabel() == 'label, and p(class 1)' and p.opt is not None and p.opt.max() <= 1
    three = classification_learner(synth_blobs(n=60, centers=3, n_features=1).dataloaders(bs=None))
    with pytest.raises(ValueError, match=r"p\(class 1\) against x, for two classes; this data has 3"): three.show_fit()


def test_pictures_without_a_history(two):
    learn = classification_learner(two.dls, model=LogisticModel(2, init=dict(w=[-2., -2.], b=0.)), history=False)
    learn.show_fit()
    ax = plt.gca()
    assert 'step' not in ax.texts[0].get_text() and 'accuracy' in ax.texts[0].get_text()


def test_binary_accuracy_follows_labels_changed_in_place():
    "binary_accuracy keeps the labels' booleans between calls: labels changed in place, or new ones, are read afresh."
    from fastfit.classify import binary_accuracy
    logits = torch.tensor([[2.], [-1.], [3.], [-4.]])
    y = torch.tensor([[1], [0], [1], [1]])
    assert binary_accuracy(logits, y).item() == .75
    y[3] = 0
    assert binary_accuracy(logits, y).item() == 1.
    assert binary_accuracy(logits, torch.zeros(4, 1, dtype=torch.long)).item() == .5
    assert binary_accuracy(logits, y.view(-1).float()).item() == 1.  # other shapes and dtypes: the same elements compared


def test_the_loss_panels_optimum_loss_on_one_thread_is_the_same(two, monkeypatch):
    "The loss panel computes a small classifier's optimum loss on one thread (no threads woken): the same number as on torch's."
    import fastfit.panels.base as base
    from fastfit.panels.loss import LossPanel
    from fastfit.records import Records
    threads = []
    monkeypatch.setattr(base.torch, 'set_num_threads', lambda n, f=torch.set_num_threads: threads.append(n) or f(n))
    panel = LossPanel(two, Records.from_history(two.param_history, 10))
    assert panel.opt == two.train_loss(two.optimum())
    assert threads[:1] == ([1] if torch.get_num_threads() > 1 else [])

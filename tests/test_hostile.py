"Hostile use at the edges of the new features (issue 21): one test per category, each a wrong or unclear result before."
import base64
import io
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fastfit.all import (
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_linear,
)


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def _state(learn) -> dict: return {k: v.clone() for k, v in learn.model.state_dict().items()}


def test_rendering_never_changes_the_learner(tmp_path):
    "Two exports of one learner at once (threads) give the bytes of one alone; the learner's weights and loss stay put."
    reg = quiet(regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None)), 12)
    cls = quiet(classification_learner(synth_blobs(n=60, seed=0).dataloaders(bs=None)), 8)
    for learn, panels in ((reg, ('fit', 'surface', 'loss')), (cls, ('boundary', 'loss'))):
        before, loss = _state(learn), learn.train_loss()
        learn.save_animation(tmp_path / 'alone.gif', frames=6, panels=panels, dpi=50)
        alone = (tmp_path / 'alone.gif').read_bytes()
        errors = []
        def export(i, learn=learn, panels=panels):
            try: learn.save_animation(tmp_path / f'{i}.gif', frames=6, panels=panels, dpi=50)
            except Exception as e: errors.append(e)
        threads = [threading.Thread(target=export, args=(i,)) for i in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert not errors
        assert all((tmp_path / f'{i}.gif').read_bytes() == alone for i in range(3))
        after = _state(learn)
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert learn.train_loss() == loss
        # train_loss at other parameters, the current state's Records: neither moves the model nor follows it later
        learn.train_loss({k: torch.zeros_like(v) for k, v in before.items()})
        assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    from fastfit.models import private_model
    m = reg.model
    copy = private_model(m)
    assert all(a.data_ptr() != b.data_ptr() and not b.requires_grad for a, b in zip(m.parameters(), copy.parameters()))
    from fastfit.records import Records
    recs = Records.current(reg)
    w = recs.params[0]['w'].clone()
    quiet(reg, 3)
    assert torch.equal(recs.params[0]['w'], w)


def _checked_arithmetic(frames) -> int:
    "Recompute every line 'name = <numbers> = result' of the step panel's frames; return how many were checked."
    import re
    n = 0
    for lines in frames:
        assert not any('nan' in ln for ln in lines), lines
        for ln in lines:
            parts = [p.strip() for p in ln.split(' = ')]
            if len(parts) < 3 or re.search(r'[a-df-z]', parts[-2].replace('×', '')): continue  # not numbers: a formula
            expr, result = parts[-2].replace('×', '*'), float(parts[-1].split()[0].strip('()'))
            terms = [abs(float(t)) for t in re.findall(r'\d[\d.]*(?:e[-+]?\d+)?', expr)]
            assert abs(eval(expr) - result) <= 2e-4 * max(terms + [abs(result)]) + 1e-9, ln
            n += 1
    return n


def test_step_panel_shows_each_steps_rule():
    "An optimizer changed mid-history, parameter groups with their own lr, a frozen parameter: every line adds up."
    from fastai.optimizer import SGD, Adam

    from fastfit.panels import StepPanel
    from fastfit.records import Records
    dls = synth_linear(n=50, seed=0).dataloaders(bs=None)
    def texts(learn): return StepPanel(learn, Records.from_history(learn.param_history, 100)).blocks[0]
    # SGD for 3 steps, then Adam (a new optimizer, its state starting at 0) for 2
    learn = quiet(regression_learner(dls), 3)
    learn.opt_func, learn.opt = Adam, None
    frames = texts(quiet(learn, 2))
    assert [f[0].split(' · ')[1].split(',')[0] for f in frames[1:]] == ['plain SGD'] * 3 + ['Adam'] * 2
    assert _checked_arithmetic(frames) == 3 * 2 + 2 * 6
    # parameter groups: w at lr .01, b at lr .1 (fastai's slice over a splitter's groups); SGD with momentum too
    for opt_func in (SGD, partial_momentum()):
        learn = regression_learner(dls, splitter=lambda m: [[m.w], [m.b]], opt_func=opt_func)
        frames = texts(quiet(learn, 2, lr=slice(.01, .1)))
        assert 'per parameter group' in frames[1][0]
        w_row = next(ln for ln in frames[1] if ln.lstrip().startswith('w ='))
        assert '0.01×' in w_row
        assert _checked_arithmetic(frames) >= 4
    # a frozen parameter: no gradient, shown unchanged (SGD and Adam)
    for opt_func in (SGD, Adam):
        learn = regression_learner(dls, opt_func=opt_func)
        learn.model.b.requires_grad_(False)
        frames = texts(quiet(learn, 2))
        assert any('no gradient: not updated' in ln for ln in frames[1])
        assert _checked_arithmetic(frames) >= 4


def partial_momentum():
    from functools import partial

    from fastai.optimizer import SGD
    return partial(SGD, mom=.9)


def _peak_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def test_optimum_scales(monkeypatch):
    "Labels that are IDs fail at once; the optimum's memory stays bounded; a big solve stops and says why; advice works."
    from fastfit import optimum
    from fastfit.all import ClsDataLoaders, SoftmaxModel
    from fastfit.optimum import OptimumTooCostly
    g = torch.Generator().manual_seed(0)
    # labels that are IDs: refused before anything the size of the largest ID is made (it once took 12 GB)
    peak = _peak_mb()
    with pytest.raises(ValueError, match=r'got labels \[0, 1, 2, 100000000\] \(no sample of class 3, 4, 5, \.\.\.\)'):
        ClsDataLoaders.from_arrays(torch.randn(6, 2, generator=g), [0, 10**8, 1, 2, 0, 1], valid_pct=0)
    assert _peak_mb() - peak < 500
    # 300 classes: no (samples, classes, classes) tensor (it was 720 MB here), a solve that stops at its time budget
    x, y = torch.randn(1000, 5, generator=g), torch.arange(1000) % 300
    learn = classification_learner(ClsDataLoaders.from_arrays(x, y, valid_pct=0, bs=None))
    peak = _peak_mb()
    # the solve's clock made to advance 0.2 s a reading: it gives up after its second Newton step, on any machine (this
    # solve converges in ~0.3 s on a fast, idle one)
    clock = iter(range(10**6))
    monkeypatch.setattr(optimum, 'time', SimpleNamespace(monotonic=lambda: .2 * next(clock)))
    with pytest.raises(OptimumTooCostly, match=r"gave up on SoftmaxModel\(n_in=5, n_classes=300\) \(1,000 samples, 300 classes, "
                                               r"6 weights each\): Newton's method had not converged after 0.5 s; call "
                                               r"learn.optimum\(max_seconds=None\)"):
        learn.optimum(max_seconds=.5)
    assert _peak_mb() - peak < 500
    monkeypatch.undo()
    # scikit-learn's digits, 10 classes x 64 features: separable, said at once (it took 109 s), and the advice works:
    # weight decay is no way to a finite optimum() (it minimises the loss alone), so the message no longer offers it
    from sklearn.datasets import load_digits
    d = load_digits()
    learn = classification_learner(ClsDataLoaders.from_arrays(d.data / 16, d.target, bs=None))
    assert isinstance(learn.model, SoftmaxModel) and learn.model.w.shape == (10, 64)
    with pytest.raises(ValueError, match='separates the training classes perfectly') as e: learn.optimum(max_seconds=60)
    assert 'weight decay, wd=..., changes the fit, not this' in str(e.value) and 'or a penalty' not in str(e.value)
    # a picture does not wait for an optimum past PICTURE_SECONDS: it is drawn without it, saying so
    import fastfit.panels.base as base
    from fastfit.panels import Frames
    from fastfit.records import Records
    x, y = torch.randn(400, 2, generator=g), torch.randint(0, 4, (400,), generator=g)
    learn = quiet(classification_learner(ClsDataLoaders.from_arrays(x, y, valid_pct=0, bs=None)), 2)
    old, base.PICTURE_SECONDS = base.PICTURE_SECONDS, 1e-9
    try: fr = Frames(learn, Records.from_history(learn.param_history, 3), panels=('boundary', 'loss', 'surface'))
    finally: base.PICTURE_SECONDS = old
    for p, ax in zip(fr.panels, fr.axs):
        assert p.opt is None and p.optimum_note == 'optimum not drawn: not solved within 1e-09 s'
        assert p.optimum_note in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not fr.panels[0].separable  # too costly is not "no finite optimum"
    assert learn.optimum()['w'].shape == (4, 2)  # with its own budget, the same learner's optimum is solved


def test_exported_learners(tmp_path, capsys):
    "export keeps what was recorded (about the model plus the records), atomically; a loaded learner says it has no data."
    import pickle

    from fastai.learner import load_learner

    from fastfit.all import MLPModel
    learn = quiet(regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None), model=MLPModel(1, (1000,)),
                                     path=tmp_path), 1)
    learn.export('mlp.pkl')
    n_params = sum(p.numel() for p in learn.model.parameters())
    assert (tmp_path / 'mlp.pkl').stat().st_size < 4 * n_params * 20  # it was 156 MB: the preallocated rows, twice
    loaded = load_learner(tmp_path / 'mlp.pkl')
    h, h0 = loaded.param_history, learn.param_history
    torch.testing.assert_close(h.flat, h0.flat)
    assert (h.steps == h0.steps).all() and torch.equal(h.losses, h0.losses)
    # a failed export over an existing file leaves it as it was, and no temporary file beside it
    before = (tmp_path / 'mlp.pkl').read_bytes()
    learn.model.unpicklable = lambda x: x
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)): learn.export('mlp.pkl')
    del learn.model.unpicklable
    assert (tmp_path / 'mlp.pkl').read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['mlp.pkl']
    # a loaded classifier: predict says nothing about separability; fit and the pictures that need data say it is missing
    cls = quiet(classification_learner(synth_blobs(n=100, spread=3, seed=0).dataloaders(bs=None), path=tmp_path), 3)
    cls.export('cls.pkl')
    loaded = load_learner(tmp_path / 'cls.pkl')
    capsys.readouterr()
    loaded.predict(torch.tensor([0., 0.]))
    assert 'separable' not in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"fit needs training data, and this learner holds none: learn.export\(\) keeps the "
                                         r"model and its history, not the data.*learn.dls = ClsDataLoaders.from_arrays\(x, y\)"):
        loaded.fit(5)
    with pytest.raises(ValueError, match=r"the 'boundary' panel needs training data, which a learner from load_learner does "
                                         r"not hold.*panels that fit LogisticModel: \('loss', 'step'[,)]"):
        loaded.animate(panels=('fit',))
    loaded.save_animation(tmp_path / 'loss.gif', frames=3, panels=('loss', 'step'), dpi=50)  # the history alone: drawn
    # given data again, it fits on from where its history ended
    loaded.dls = synth_blobs(n=100, spread=3, seed=0).dataloaders(bs=None)
    quiet(loaded, 2)
    assert list(loaded.param_history.steps) == [0, 1, 2, 3, 4, 5]


def test_quietly_wrong_results(recwarn):
    "Each of these gave a wrong number or picture without a word: now the right one, or a clear error."
    import matplotlib.pyplot as plt
    from fastai.metrics import F1Score, Precision, RocAucBinary
    from sklearn.metrics import f1_score, precision_score, roc_auc_score

    from fastfit.all import ParamHistory, show_classes
    two, three = synth_blobs(n=90, centers=2, seed=0), synth_blobs(n=90, centers=3, seed=0)
    # a 2-class learner given 3-class loaders: refused at fit, as at creation (it fitted to a negative BCE)
    learn = quiet(classification_learner(two.dataloaders(bs=None)), 2)
    learn.dls = three.dataloaders(bs=None)
    with pytest.raises(ValueError, match=r'returns 1 output\(s\) per sample but the data has 3 classes'): learn.fit(1)
    # fastai's F1Score and other AccumMetrics on one logit: scikit-learn's numbers (F1 read 0)
    learn = quiet(classification_learner(synth_blobs(n=200, spread=2.5, seed=0).dataloaders(bs=None),
                                         metrics=[F1Score(), Precision(), RocAucBinary()]), 10)
    p, t = learn.get_preds()
    pred, t = (p[:, 0] > .5).long().numpy(), t[:, 0].numpy()
    want = [f1_score(t, pred), precision_score(t, pred), roc_auc_score(t, p[:, 0].numpy())]
    np.testing.assert_allclose(learn.recorder.values[-1][1:], want, rtol=1e-6)
    assert 0 < want[0] < 1
    # show_results on 3 classes: a confusion matrix with the accuracy (it drew p(class 0) against labels, titled MSE)
    learn = quiet(classification_learner(three.dataloaders(bs=None)), 5)
    learn.show_results()
    ax = plt.gca()
    acc = float((learn.get_preds(with_decoded=True)[2] == learn.dls.valid.y[:, 0]).float().mean())
    assert ax.get_title() == f"validation set: 18 points, accuracy {acc:.3f}" and 'MSE' not in ax.get_title()
    assert sum(int(t.get_text()) for t in ax.texts) == 18 and ax.get_xlabel() == 'predicted class'
    # show_classes with -1/+1 labels, and with names: every point drawn, each label named (every -1 was dropped)
    x = np.random.default_rng(0).normal(size=(40, 2))
    for y, names in ((np.where(x[:, 0] > 0, 1, -1), ['class -1', 'class 1']),
                     (np.where(x[:, 1] > 0, 'cat', 'dog'), ['class cat', 'class dog'])):
        _, ax = plt.subplots()
        show_classes(x, y, ax=ax)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == names
        assert sum(len(c.get_offsets()) for c in ax.collections) == 40
    # a second ParamHistory in fit(cbs=...) records beside the learner's own, which keeps its name and records
    learn = quiet(regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None)), 2)
    own, extra = learn.param_history, ParamHistory()
    quiet(learn, 3, cbs=extra)
    assert learn.param_history is own and len(own) == 6 and len(extra) == 4 and own in learn.cbs and extra not in learn.cbs
    # learn.model = another model after the optimizer exists: a warning, and the new model trains (it trained not at all)
    from fastfit.all import LinearModel
    new = LinearModel(1)
    w0 = new.w.detach().clone()
    with pytest.warns(UserWarning, match=r'learn.model was replaced after the learner made its optimizer'): learn.model = new
    quiet(learn, 2)
    assert not torch.equal(new.w.detach(), w0)


def test_one_fps_rule(tmp_path):
    "Every writer and the notebook display take one fps range, and the GIF each embeds has delays browsers play."
    from PIL import Image

    from fastfit.player import page_image
    learn = quiet(regression_learner(synth_linear(n=30, seed=0).dataloaders(bs=None)), 6)
    too_fast = r'fps=100 is too fast for a GIF, which every animation shows as .*use fps <= 50'
    for fname in ('a.gif', 'a.html', 'a.mp4'):
        with pytest.raises(ValueError, match=too_fast): learn.save_animation(tmp_path / fname, fps=100)
    with pytest.raises(ValueError, match=too_fast): learn.animate(fps=100)  # the notebook display: it accepted 100
    with pytest.raises(ValueError, match=r'too slow for a GIF'): learn.save_animation(tmp_path / 'a.html', fps=.001)
    # at the fastest fps allowed, the .html page and the notebook display embed frames of 2/100 s: what browsers play
    page = learn.save_animation(tmp_path / 'a.html', frames=5, fps=50, dpi=40).read_text()
    anim = learn.animate(frames=5, fps=50, dpi=40)
    display_gif = base64.b64decode(anim.outputs()[0]['image/png'])
    for gif in (page_image(page)[0], display_gif):
        im = Image.open(io.BytesIO(gif))
        delays = []
        for i in range(im.n_frames):
            im.seek(i); delays.append(im.info['duration'])
        assert min(delays) >= 20


def test_unclear_cases_are_clear(tmp_path):
    "Each of these failed deep inside (or gave advice that could not be followed): now it works, or says why not."
    import torch.nn.functional as F
    from fastai.callback.mixup import MixUp
    from fastai.interpret import ClassificationInterpretation
    from fastai.optimizer import SGD, Adam
    from torch import nn

    from fastfit.all import MLPModel, Panel, PolyModel, SoftmaxModel, compare_optimizers, synth_func, synth_poly
    from fastfit.panels import Frames
    from fastfit.records import Records
    two, three = synth_blobs(n=90, centers=2, seed=0), synth_blobs(n=90, centers=3, seed=0)
    # torch's own cross-entropy losses with fastfit's labels (n, 1): they fit, and the optimum knows them
    for dls, model, loss in ((three, None, F.cross_entropy), (three, None, nn.CrossEntropyLoss()),
                             (two, SoftmaxModel(2, 2), nn.CrossEntropyLoss()), (two, None, nn.BCEWithLogitsLoss()),
                             (two, None, F.binary_cross_entropy_with_logits)):
        learn = quiet(classification_learner(dls.dataloaders(bs=None), model=model, loss_func=loss), 3)
        assert np.isfinite(learn.recorder.values[-1]).all() and set(learn.optimum()) == {'w', 'b'}
    with pytest.raises(ValueError, match=r"loss_func cross_entropy takes one logit per class, shape \(n, 2\), but the model "
                                         r"returns one logit for two classes, \(n, 1\).*use BCEWithLogits\(\)"):
        classification_learner(two.dataloaders(bs=None), loss_func=F.cross_entropy)
    with pytest.raises(ValueError, match=r"loss_func BCEWithLogitsLoss takes one logit per sample.*returns 3 per sample: "
                                         r"use CrossEntropy\(\)"):
        classification_learner(three.dataloaders(bs=None), loss_func=nn.BCEWithLogitsLoss())
    # the 'units' panel on several runs: the advice names what takes it (save_animation takes no split), and it works
    dls = synth_func(torch.sin, n=40, seed=0).dataloaders(bs=None)
    cmp = compare_optimizers(dls, {'SGD': SGD, 'Adam': Adam}, model=MLPModel(1, (3,), act=nn.Tanh()), epochs=3)
    with pytest.raises(ValueError, match=r"comparison.split = True before comparison.animate\(panels=\('units',\)\)"):
        cmp.save_animation(tmp_path / 'u.gif', frames=2, panels=('units',), dpi=40)
    cmp.split = True
    cmp.save_animation(tmp_path / 'u.gif', frames=2, panels=('units',), dpi=40)
    # MLPModel(act=nn.Tanh()): a torch module as the activation (it failed in nn.Module's __init__)
    m = MLPModel(1, (3,), act=nn.Tanh())
    assert m.act_name == 'tanh' and torch.allclose(m(torch.ones(2, 1)), MLPModel(1, (3,), act='tanh')(torch.ones(2, 1)))
    # a Panel whose setup returns None or non-artists: a TypeError saying what setup must return
    class Lazy(Panel):
        def setup(self, ax): ax.plot([0, 1])
        def update(self, k): pass
    class Wrong(Lazy):
        def setup(self, ax): return ['line']
    learn = quiet(regression_learner(synth_linear(n=30, seed=0).dataloaders(bs=None)), 3)
    for P, got in ((Lazy, r'None \(no return\)'), (Wrong, r"list \['line'\]")):
        with pytest.raises(TypeError, match=rf"{P.__name__}.setup\(ax\) must return the matplotlib artists that move \(a "
                                            rf"list, \[\] if none does\).*it returned {got}"):
            Frames(learn, Records.from_history(learn.param_history, 2), panels=(P,))
    # a diverged run's surface (matplotlib's "Contour levels must be increasing"): the others held at the start
    learn = quiet(regression_learner(synth_poly(seed=0).dataloaders(bs=None), model=PolyModel(2), lr=1e-2), 50)
    assert learn.diverged is not None
    fr = Frames(learn, Records.from_history(learn.param_history, 3), panels=('surface', 'landscape'))
    assert fr.axs[0].get_title().startswith('held at start: c0=') and len(fr.axs[0].collections) >= 2  # the contours
    assert 'no contours: the loss is' in fr.axs[1].texts[0].get_text()  # a plane through the run's huge end: said so
    # fastai's extras on a classifier: MixUp, ClassificationInterpretation, plot_loss with no validation set
    learn = quiet(classification_learner(three.dataloaders(bs=None)), 3, cbs=MixUp())
    assert np.isfinite(learn.recorder.values[-1]).all()
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().sum() == len(learn.dls.valid.y) and len(interp.top_losses(3)[0]) == 3
    with pytest.raises(AttributeError, match=r"fastfit's loaders hold tensors \(x, y\), not items to show"):
        interp.plot_top_losses(3)
    learn = quiet(classification_learner(two.dataloaders(bs=None, valid_pct=0)), 3)
    learn.recorder.plot_loss(skip_start=0)

"RegLearner keeps fastai's contract (events, cancels, callbacks, lr_find, schedules) while being fast; divergence."
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastai.basics import (
    SGD,
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    Learner,
    Recorder,
)
from fastai.callback.schedule import ParamScheduler, SchedLin
from fastai.callback.tracker import TerminateOnNaNCallback
from fastai.test_utils import VerboseCallback

from fastfit.all import FuncModel, LinearModel, ParamHistory, RegLearner, regression_learner, synth_linear, synth_multilinear


def dls(bs=None, n=40, valid_pct=.25): return synth_linear(n=n, seed=1).dataloaders(bs=bs, valid_pct=valid_pct, seed=1)


def both(cbs_fn, bs=None, n_epoch=3):
    "Fit a fastfit learner and a stock fastai Learner alike; return their event logs and parameters."
    out = []
    for make in (lambda d, m, cbs: regression_learner(d, m, lr=.1, cbs=cbs),
                 lambda d, m, cbs: Learner(d, m, loss_func=F.mse_loss, opt_func=SGD, lr=.1, cbs=cbs)):
        d, m = dls(bs), LinearModel(init={'w': [.5], 'b': -.5})
        log = []
        class EventLog(Callback):
            order = 100
            def __call__(self, e):
                log.append(e)
                super().__call__(e)
        learn = make(d, m, [EventLog()] + cbs_fn())
        with learn.no_bar(), learn.no_logging(): learn.fit(n_epoch)
        out.append((log, torch.cat([p.detach().flatten() for p in m.parameters()])))
    return out


def test_is_a_real_learner():
    learn = regression_learner(dls())
    assert isinstance(learn, Learner) and isinstance(learn, RegLearner) and isinstance(learn.recorder, Recorder)
    assert learn.progress is not None and learn.param_history is not None


@pytest.mark.parametrize('bs', [None, 8])
def test_event_order_matches_fastai(bs):
    (a, pa), (b, pb) = both(lambda: [], bs=bs)
    assert a == b and len(a) > 20
    torch.testing.assert_close(pa, pb)


def test_verbose_callback_prints_fastai_order(capsys):
    for make in (lambda d: regression_learner(d, LinearModel(), cbs=VerboseCallback()),
                 lambda d: Learner(d, LinearModel(), loss_func=F.mse_loss, opt_func=SGD, cbs=VerboseCallback())):
        learn = make(dls(bs=8))
        with learn.no_bar(), learn.no_logging(): learn.fit(1)
    out = capsys.readouterr().out.split()
    half = len(out) // 2
    assert out[:half] == out[half:] and out[half - 1] == 'after_fit' and 'after_step' in out


@pytest.mark.parametrize('ev,ex', [('after_loss', CancelBatchException), ('before_step', CancelStepException),
                                   ('before_train', CancelTrainException), ('before_epoch', CancelEpochException),
                                   ('before_validate', CancelValidException), ('after_pred', CancelFitException)])
def test_cancel_exceptions_match_fastai(ev, ex):
    def cbs():
        class Raise(Callback):
            def __init__(self): self.n = 0
        def raiser(self):
            self.n += 1
            if self.n % 2 == 0: raise ex()  # every other time, so some work is done and some skipped
        setattr(Raise, ev, raiser)
        return [Raise()]
    (a, pa), (b, pb) = both(cbs, bs=8)
    cancel = {CancelBatchException: 'batch', CancelStepException: 'step', CancelTrainException: 'train',
              CancelEpochException: 'epoch', CancelValidException: 'validate', CancelFitException: 'fit'}[ex]
    assert a == b and f'after_cancel_{cancel}' in a
    torch.testing.assert_close(pa, pb)


def test_add_and_remove_callbacks_during_fit():
    def cbs():
        class Counter(Callback):
            def __init__(self): self.n = 0
            def after_batch(self): self.n += 1
        counter = Counter()
        class Manage(Callback):
            def before_epoch(self):
                if self.epoch == 1: self.learn.add_cb(counter)
                if self.epoch == 3: self.learn.remove_cb(counter)
        return [Manage(), counter]
    res = []
    for make in (lambda d, cbs: regression_learner(d, LinearModel(), cbs=cbs),
                 lambda d, cbs: Learner(d, LinearModel(), loss_func=F.mse_loss, opt_func=SGD, cbs=cbs)):
        manage, counter = cbs()
        learn = make(dls(bs=8), [manage])
        with learn.no_bar(), learn.no_logging(): learn.fit(5)
        res.append(counter.n)
    # epochs 1 and 2: 3 train + 2 valid batches (10 train rows... 30 rows / bs 8 = 3, 10 valid / 8 = 2)
    assert res[0] == res[1] == 2 * (3 + 2)


def test_lr_find_works_and_leaves_model_and_history_alone():
    learn = regression_learner(synth_linear(n=200, seed=0).dataloaders(bs=16))
    before = [p.detach().clone() for p in learn.model.parameters()]
    with learn.no_bar(), learn.no_logging(): sug = learn.lr_find(show_plot=False)
    assert 1e-5 < sug.valley < 10 and len(learn.recorder.lrs) > 10
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    assert len(learn.param_history) == 0 and learn.diverged is None
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    assert len(learn.param_history) == 2 * 10 + 1


def test_fit_one_cycle_schedules_lr_and_records_every_step():
    learn = regression_learner(synth_linear(n=200, seed=0).dataloaders(bs=16, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, lr_max=.1)
    lrs = learn.recorder.lrs
    assert len(lrs) == 3 * 12 and max(lrs) == pytest.approx(.1, rel=.05) and lrs[0] < .01 and lrs[-1] < lrs[0] / 10
    assert len(learn.param_history) == 3 * 12 + 1
    assert len(learn.recorder.losses) == 36 and isinstance(learn.smooth_loss, torch.Tensor)


def test_fastai_optimizer_with_momentum_matches_stock_learner():
    from functools import partial
    res = []
    for cls in (regression_learner, None):
        d, m = dls(bs=8), LinearModel(init={'w': [0.], 'b': 0.})
        opt = partial(SGD, mom=.9, wd=.01)
        learn = (regression_learner(d, m, opt_func=opt, lr=.05) if cls else
                 Learner(d, m, loss_func=F.mse_loss, opt_func=opt, lr=.05))
        with learn.no_bar(), learn.no_logging(): learn.fit(4)
        res.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    torch.testing.assert_close(res[0], res[1])


def test_terminate_on_nan_callback_still_works():
    # NaN predictions only in eval mode: fastfit's own check (training loss) misses it, TerminateOnNaN catches it.
    model = FuncModel(lambda x, p: x[:, 0] * p['a'] + (float('nan') if not torch.is_grad_enabled() else 0.),
                      init={'a': 1.})
    learn = regression_learner(dls(), model, cbs=TerminateOnNaNCallback())
    with learn.no_bar(), learn.no_logging(): learn.fit(5)
    assert learn.param_history.step == 1 and learn.diverged is None  # stopped in the first validation


def test_show_training_loop_lists_fastfit_callbacks(capsys):
    regression_learner(dls()).show_training_loop()
    out = capsys.readouterr().out
    assert 'after_step' in out and 'ParamHistory' in out and 'after_fit' in out


def test_divergence_stops_at_once_with_one_line(capsys):
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None, valid_pct=0), lr=3.)
    with learn.no_bar(), learn.no_logging(): learn.fit(500)
    k = learn.diverged
    assert k is not None and 5 < k < 500
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert f'diverged (NaN/inf) at step {k}' in lines[0] and 'lr=0.3' in lines[0] and 'lr_find' in lines[0]
    h = learn.param_history
    assert len(h) == k and h.steps[-1] == k - 1 == h.step and torch.isfinite(h.losses).all()
    assert torch.isfinite(h.flat).all()
    # the next fit after lowering the lr works and continues the history
    learn.lr = .1
    learn.model.w.data.fill_(0); learn.model.b.data.fill_(0)
    with learn.no_bar(), learn.no_logging(): learn.fit(10)
    assert learn.diverged is None and math.isfinite(float(learn.param_history.losses[-1]))


def test_divergence_without_history_still_stops(capsys):
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None, valid_pct=0), lr=3., history=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(500)
    assert learn.diverged is not None and 'diverged' in capsys.readouterr().out


@pytest.mark.parametrize('bar', [True, False])
def test_long_fit_prints_a_bounded_table(capsys, bar):
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None), lr=.1)
    if bar: learn.fit(1000)
    else:
        with learn.no_bar(): learn.fit(1000)
    lines = [ln for ln in capsys.readouterr().out.replace('\r', '\n').splitlines() if ln.strip('█ ')]
    rows = [ln.split() for ln in lines if ln.split()[0].isdigit()]
    assert 15 <= len(rows) <= 22 and len(lines) <= 25
    assert [r[0] for r in rows[:3]] == ['0', '50', '100'] and rows[-1][0] == '999'
    assert len(rows[-1]) == 4 and float(rows[-1][1]) < float(rows[0][1])  # epoch, train_loss, valid_loss, time
    assert lines[0] == '(one row every 50 epochs of 1000, and the last)' and lines[1].split()[0] == 'epoch'


def test_short_fit_prints_every_epoch(capsys):
    learn = regression_learner(dls(), lr=.1)
    learn.fit(5)
    out = capsys.readouterr().out
    assert 'train_loss' in out and 'valid_loss' in out
    assert sum(1 for ln in out.splitlines() if ln[:1].isdigit()) == 5


def test_no_logging_silences_the_table(capsys):
    learn = regression_learner(dls(), lr=.1)
    with learn.no_logging(): learn.fit(50)
    assert capsys.readouterr().out.replace('█', '').strip() == ''


# --- fastai's inference and persistence API on fastfit's learner (issue 11) --------------------------------------------
def quiet_fit(learn, *args, **kwargs):
    with learn.no_bar(), learn.no_logging(): learn.fit(*args, **kwargs)
    return learn


def fitted(n=100, bs=None, epochs=20, **kwargs):
    return quiet_fit(regression_learner(synth_linear(n=n, seed=0).dataloaders(bs=bs), **kwargs), epochs)


def test_predict_and_test_dl_take_new_x():
    learn = fitted()
    x = torch.tensor([[.5], [-1.], [2.]])
    preds, targs = learn.get_preds(dl=learn.dls.test_dl(x))
    assert targs is None
    torch.testing.assert_close(preds, learn.model(x).detach())
    expect = learn.model(torch.tensor([[.5]])).detach()[0]
    for item in (.5, np.float32(.5), [.5], np.array([.5]), torch.tensor(.5), torch.tensor([.5]), torch.tensor([[.5]])):
        full, dec, raw = learn.predict(item)
        for t in (full, dec, raw): torch.testing.assert_close(t, expect)
    with pytest.raises(ValueError, match=r"test_items have 2 feature\(s\) \(shape \(1, 2\)\) but the model was fitted on 1: "
                                         r"pass one row per sample, shape \(n, 1\)"):
        learn.predict([1., 2.])
    multi = quiet_fit(regression_learner(synth_multilinear(n=50).dataloaders(bs=None)), 5)
    full, _, _ = multi.predict([1., 2.])
    torch.testing.assert_close(full, multi.model(torch.tensor([[1., 2.]])).detach()[0])
    xs, ys = torch.randn(7, 2), torch.randn(7, 1)
    preds, targs = multi.get_preds(dl=multi.dls.test_dl((xs, ys), with_labels=True))
    torch.testing.assert_close(targs, ys)


def test_get_preds_validate_predict_show_results_summary_leave_the_history_alone():
    learn = fitted()
    h = learn.param_history
    before = (len(h), h.step, h.flat.clone(), h.losses.clone())
    calls = []
    learn.model.register_forward_hook(lambda *a: calls.append(1))
    inps, preds, targs = learn.get_preds(with_input=True)
    torch.testing.assert_close(inps, learn.dls.valid.x)
    torch.testing.assert_close(targs, learn.dls.valid.y)
    torch.testing.assert_close(preds, learn.model(inps).detach())
    loss = learn.validate()[0]
    assert loss == pytest.approx(float(F.mse_loss(learn.model(learn.dls.valid.x), learn.dls.valid.y)), rel=1e-5)
    learn.predict(.3); learn.show_results(); learn.summary()
    after = (len(h), h.step, h.flat, h.losses)
    assert before[:2] == after[:2] and torch.equal(before[2], after[2]) and torch.equal(before[3], after[3])
    # ...and at no extra cost: as many forward passes as the learner without a history makes
    lean = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None), history=False)
    lean_calls = []
    lean.model.register_forward_hook(lambda *a: lean_calls.append(1))
    calls.clear()
    for lrn in (learn, lean): lrn.get_preds(with_input=True); lrn.validate(); lrn.predict(.3)
    assert len(calls) == len(lean_calls) > 0


def test_show_results_plots_targets_against_predictions():
    learn = fitted()
    assert learn.show_results() is None
    ax = plt.gca()
    pts = np.asarray(ax.collections[0].get_offsets())
    v = learn.dls.valid
    expect = np.stack([v.y[:, 0].numpy(), learn.model(v.x).detach().numpy()[:, 0]], 1)  # (target, prediction) pairs
    np.testing.assert_allclose(pts[np.argsort(pts[:, 0])], expect[np.argsort(expect[:, 0])], rtol=1e-5)
    title = ax.get_title()
    assert title.startswith('validation set: 20 points, MSE ') and ax.get_xlabel() == 'target y'
    assert ax.get_legend().get_texts()[0].get_text() == 'prediction = target'
    _, ax = plt.subplots()
    learn.show_results(ds_idx=0, max_n=5, ax=ax)
    assert len(ax.collections[0].get_offsets()) == 5 and ax.get_title().startswith('training set: 5 of 80 points')
    no_valid = quiet_fit(regression_learner(synth_linear(n=30).dataloaders(bs=None, valid_pct=0)), 3)
    no_valid.show_results()
    assert plt.gca().get_title().startswith('training set: 30 points')
    with pytest.raises(ValueError, match='max_n must be an integer > 0, got 0'): learn.show_results(max_n=0)


def test_export_and_load_learner_round_trip(tmp_path):
    from fastai.learner import load_learner
    learn = fitted()
    learn.path = tmp_path
    learn.export('reg.pkl')
    back = load_learner(tmp_path / 'reg.pkl')
    assert type(back) is RegLearner and back.dls.n_in == 1 and len(back.dls.train.x) == 0  # the model, not the data
    for item in (.5, -2.):
        for a, b in zip(back.predict(item), learn.predict(item)): torch.testing.assert_close(a, b)
    h, hb = learn.param_history, back.param_history
    assert list(hb.steps) == list(h.steps) and torch.equal(hb.flat, h.flat)  # the history travels with the learner
    assert [type(c).__name__ for c in back.cbs] == [type(c).__name__ for c in learn.cbs]
    quiet_fit(learn, 3)  # the exported learner still fits
    back.dls = learn.dls  # and the loaded one fits on data given to it
    quiet_fit(back, 3)
    assert back.param_history.step == h.step == 23


def test_save_and_load_weights(tmp_path):
    learn = fitted()
    learn.path = tmp_path
    learn.save('w')
    other = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None), path=tmp_path).load('w')
    for a, b in zip(other.model.parameters(), learn.model.parameters()): torch.testing.assert_close(a, b)


def test_fit_flat_cos_schedules_and_records_every_step():
    learn = regression_learner(synth_linear(n=200, seed=0).dataloaders(bs=16, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit_flat_cos(4, lr=.1)
    lrs = learn.recorder.lrs
    assert len(lrs) == 4 * 12 and lrs[0] == pytest.approx(.1) and lrs[len(lrs) // 2] == pytest.approx(.1) and lrs[-1] < .01
    assert len(learn.param_history) == 4 * 12 + 1 and torch.isfinite(learn.param_history.losses).all()


def test_lr_find_draws_its_suggestion():
    import matplotlib.pyplot as plt
    learn = regression_learner(synth_linear(n=200, seed=0).dataloaders(bs=16))
    with learn.no_bar(): sug = learn.lr_find()
    ax = plt.gcf().axes[0]
    assert ax.get_xscale() == 'log' and ax.get_xlabel() == 'Learning Rate'
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == 'o']
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['valley'] and len(marks) == 1
    assert marks[0].get_xdata()[0] == pytest.approx(sug.valley)


def test_summary_counts_the_named_parameters():
    text = str(fitted().summary())
    assert 'LinearModel (Input shape: 80 x 1)' in text and 'Total params: 2' in text
    assert [ln.split()[0] for ln in text.splitlines() if ln.startswith(('w ', 'b '))] == ['w', 'b']
    assert 'Optimizer used:' in text and 'ParamHistory' in text and 'FitProgress' in text


def test_cbs_as_a_fastcore_L_or_a_class():
    from fastai.callback.training import ShortEpochCallback
    from fastcore.foundation import L
    learn = regression_learner(dls(), cbs=L([ShortEpochCallback(), TerminateOnNaNCallback]))
    names = [type(c).__name__ for c in learn.cbs]
    assert names[-3:] == ['ShortEpochCallback', 'TerminateOnNaNCallback', 'ParamHistory'], names
    assert sum(isinstance(c, ParamHistory) for c in regression_learner(dls(), cbs=ParamHistory).cbs) == 1


# --- surviving what notebook users do (issue 12) ------------------------------------------------------------------
class InterruptAt(Callback):
    "Raise KeyboardInterrupt (as 'interrupt kernel' does) at `event` of training step `k`."
    def __init__(self, k, event='after_step'):
        self.k, self.n = k, 0
        setattr(self, event, self._maybe)
    def _maybe(self):
        if self.learn.training:
            self.n += 1
            if self.n == self.k: raise KeyboardInterrupt


@pytest.mark.parametrize('event', ['after_step', 'after_loss', 'before_batch'])
def test_an_interrupted_fit_leaves_a_learner_that_fits_again(event, capsys):
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=10), lr=.05)
    with pytest.raises(KeyboardInterrupt): learn.fit(5, cbs=InterruptAt(13, event))
    assert learn.logger is print and learn.fit_error is not None
    h, model = learn.param_history, learn.model
    # every step the optimizer took is in the history, the last one with its (finite) loss
    taken = 13 if event == 'after_step' else 12
    assert h.step == taken and list(h.steps) == list(range(taken + 1)) and torch.isfinite(h.losses).all()
    torch.testing.assert_close(h.flat[-1], torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # no half-step gradients left behind
    from fastfit.all import Records
    assert Records.from_history(h, 5).steps[-1] == taken
    assert learn.animate(frames=5) is not None
    capsys.readouterr()
    learn.fit(2)  # fits again, with its table (the logger was given back: no RecursionError)
    out = capsys.readouterr().out
    assert 'train_loss' in out and sum(ln[:1].isdigit() for ln in out.splitlines()) == 2
    assert h.step == taken + 2 * 8 and torch.isfinite(h.losses).all()


def test_an_interrupted_lr_find_restores_the_weights_and_writes_no_animation(tmp_path):
    from fastfit.all import AnimateFit
    learn = regression_learner(synth_linear(n=200, seed=0).dataloaders(bs=16))
    before = [p.detach().clone() for p in learn.model.parameters()]
    with learn.added_cbs(InterruptAt(20)), pytest.raises(KeyboardInterrupt), learn.no_bar(): learn.lr_find()
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    with pytest.raises(KeyboardInterrupt), learn.no_bar(), learn.no_logging():
        learn.fit(3, cbs=[InterruptAt(5), AnimateFit(tmp_path / 'fit.gif', frames=3)])
    assert list(tmp_path.iterdir()) == []
    quiet_fit(learn, 1)


def test_an_error_in_a_callback_leaves_a_learner_that_fits_again(capsys):
    class Boom(Callback):
        def after_batch(self):
            if self.learn.training and self.train_iter == 3: raise RuntimeError('boom')
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=10))
    with pytest.raises(RuntimeError, match='boom'): learn.fit(2, cbs=Boom())
    assert learn.logger is print and torch.isfinite(learn.param_history.losses).all()
    learn.fit(1)
    assert 'train_loss' in capsys.readouterr().out


LR_PATHS = [
    (lambda l: l.fit(2, lr=-.1), ValueError, 'lr must be a finite number > 0, got -0.1'),
    (lambda l: l.fit(2, lr=0), ValueError, 'lr must be a finite number > 0, got 0'),
    (lambda l: l.fit(2, lr=slice(-.1)), ValueError, 'lr.stop must be a finite number > 0, got -0.1'),
    (lambda l: l.fit(2, lr=slice(-.1, .1)), ValueError, 'lr.start must be a finite number > 0, got -0.1'),
    (lambda l: l.fit(2, lr=[-.1]), ValueError, r'lr\[0\] must be a finite number > 0, got -0.1'),
    (lambda l: l.fit(2, lr=np.array([.1, 0.])), ValueError, r'lr\[1\] must be a finite number > 0, got 0.0'),
    (lambda l: l.fit(2, lr='0.1'), TypeError, "lr must be a finite number > 0, got '0.1' of type str: write it without quotes"),
    (lambda l: l.fit_one_cycle(2, lr_max=-.5), ValueError, 'lr_max must be a finite number > 0, got -0.5'),
    (lambda l: l.fit_one_cycle(2, lr_max=0), ValueError, 'lr_max must be a finite number > 0, got 0'),
    (lambda l: l.fit_flat_cos(2, lr=-1), ValueError, 'lr must be a finite number > 0, got -1'),
    (lambda l: l.fit_sgdr(1, 1, lr_max=-1), ValueError, 'lr_max must be a finite number > 0, got -1'),
    (lambda l: l.lr_find(start_lr=-1e-7), ValueError, 'start_lr must be a finite number > 0, got -1e-07'),
    (lambda l: l.fit(2, cbs=ParamScheduler({'lr': SchedLin(-1e-2, 1e-2)})), ValueError,
     r'lr must be > 0, but the optimizer was about to step with lr=-0.01 \(step 0, set by a schedule or an lr argument\)'),
    (lambda l: setattr(l, 'lr', -.2) or l.fit(2), ValueError, 'learn.lr must be a finite number > 0, got -0.2'),
]


@pytest.mark.parametrize('call, exc, msg', LR_PATHS, ids=[m[:30] for _, _, m in LR_PATHS])
def test_every_way_an_lr_reaches_the_optimizer_is_checked(call, exc, msg):
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=10))
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(exc, match=msg), learn.no_bar(), learn.no_logging(): call(learn)
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))  # not one step taken
    learn.lr = .1
    quiet_fit(learn, 1)  # and it fits again


def test_counts_and_number_types():
    learn = regression_learner(dls())
    with pytest.raises(ValueError, match=r'n_epoch must be an integer > 0, got -3'): learn.fit(-3)
    with pytest.raises(ValueError, match=r'n_epoch must be an integer > 0, got 2.5: use 2'): learn.fit(2.5)
    with pytest.raises(TypeError, match=r"n_epoch must be an integer > 0, got '3' of type str: write it without quotes"):
        learn.fit('3')
    with pytest.raises(ValueError, match=r'n_epoch must be an integer > 0, got 2.5'): learn.fit_one_cycle(2.5)
    with pytest.raises(TypeError, match=r"lr must be a finite number > 0, got '0.1'"): regression_learner(dls(), lr='0.1')
    assert learn.param_history.step == 0
    for lr in (np.float32(.1), torch.tensor(.1), np.float64(.1), 1):
        l = regression_learner(dls(), lr=lr)
        assert isinstance(l.lr, float)
        quiet_fit(l, 1, lr=lr)
        assert l.opt.hypers[0]['lr'] == pytest.approx(float(lr))


@pytest.mark.parametrize('loss', [lambda p, t: torch.tensor(1.), lambda p, t: torch.tensor(F.mse_loss(p, t).item()),
                                  lambda p, t: F.mse_loss(p, t).detach()], ids=['constant', 'item', 'detach'])
def test_a_loss_without_gradient_says_it_does_not_depend_on_the_parameters(loss):
    with pytest.raises(ValueError, match="with no gradient: it does not depend on the model's parameters"):
        regression_learner(dls(), loss_func=loss)
    learn = regression_learner(dls())
    learn.loss_func = loss  # swapped after the up-front check: the fit says the same
    with pytest.raises(ValueError, match=r"the loss \(<lambda>\) returned \[.*\] with no gradient: it does not depend on "
                                         r"the model's parameters"):
        quiet_fit(learn, 2)
    learn.loss_func = F.mse_loss
    quiet_fit(learn, 2)
    assert learn.param_history.step == 2


def test_a_model_with_frozen_parameters_is_named():
    m = LinearModel()
    for p in m.parameters(): p.requires_grad_(False)
    with pytest.raises(ValueError, match='returns predictions with no gradient: they do not depend on its parameters'):
        regression_learner(dls(), m)


def test_backward_steps_as_torchs_and_runs_tensor_hooks():
    """The fit's backward (a short path for a plain one-number loss) steps exactly as `loss.backward()` does and runs
    tensor hooks; other losses (a (1,)-shaped one, fastai's TensorBase) go through torch's own and step alike."""
    s = synth_linear(n=50, seed=0)
    dls = s.dataloaders(bs=None, valid_pct=0)
    model = LinearModel()
    w0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    seen = []
    model.w.register_hook(lambda g: seen.append(g.clone()))
    learn = regression_learner(dls, model, lr=.1, history=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    hand = LinearModel(init=w0)
    for _ in range(3):
        loss = F.mse_loss(hand(s.x), s.y)
        loss.backward()
        with torch.no_grad():
            for p in hand.parameters(): p -= .1 * p.grad; p.grad.zero_()
    assert len(seen) == 3
    for k, p in hand.named_parameters(): assert torch.equal(p, getattr(model, k)), k
    # losses the short path leaves to torch: shape (1,), and fastai's TensorBase
    from fastai.torch_core import TensorBase
    for loss_func in (lambda p, t: F.mse_loss(p, t).reshape(1), lambda p, t: TensorBase(F.mse_loss(p, t))):
        learn = regression_learner(dls, LinearModel(init=w0), lr=.1, history=False, loss_func=loss_func)
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        for k, p in hand.named_parameters(): assert torch.allclose(p, getattr(learn.model, k)), k

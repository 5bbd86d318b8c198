"RegLearner keeps fastai's contract (events, cancels, callbacks, lr_find, schedules) while being fast; divergence."
import math

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
from fastai.callback.tracker import TerminateOnNaNCallback
from fastai.test_utils import VerboseCallback

from fastfit.all import FuncModel, LinearModel, RegLearner, regression_learner, synth_linear


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

"""fastai's own Learner and callback tests, transcribed, run on fastai's `Learner` and on fastfit's learner.

The tests are the test cells of fastai's notebooks (repository fastai/fastai, folder nbs/): 13a_learner, 13_callback.core,
14_callback.schedule, 16_callback.progress, 17_callback.tracker and 18a_callback.training. Each test names its notebook
and the cell (by the cell's first line or comment). They use `synth_learner`, which here is built four ways:

- `stock`: fastai's `Learner` on fastai's `synth_dbunch` (the control: what fastai's tests run);
- `lean`: `regression_learner(..., history=False)` on `RegDataLoaders` of the same data;
- `history`: the same with the parameter history on (fastfit's default);
- `defaults`: `regression_learner` with its own defaults (plain SGD, `F.mse_loss`, history on), so fastfit's fast paths
  (one foreach op per SGD step) run under fastai's tests too.

All four take fastai's test_utils `synth_learner` options: `SGD(mom=0.9)` and `MSELossFlat` unless a test passes its own
(13a's notebook-local `synth_learner` uses Adam; no 13a test depends on it). What differs, and why, is listed in
DIFFERENCES below and marked where it applies; everything else is fastai's test unchanged. fastcore's `test_eq`,
`test_close`, `test_ne`, `test_stdout` are imported as `eq`, `close`, `ne`, `stdout_is` (pytest would collect `test_*`).

The cancel-exception traces at the end raise each of fastai's cancel exceptions from each event and compare the sequence
of events (and what escapes the fit, and the parameters) with fastai's own `Learner`.
"""
import io
import os
import shutil
import time
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path

import fastcore.test as fct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastai.callback.core import (
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    TrainEvalCallback,
)
from fastai.callback.progress import CSVLogger, ShowGraphCallback
from fastai.callback.schedule import (
    LRFinder,
    ParamScheduler,
    SchedCos,
    SchedExp,
    SchedLin,
    combined_cos,
    minimum,
    slide,
    steep,
    valley,
)
from fastai.callback.tracker import (
    EarlyStoppingCallback,
    ReduceLROnPlateau,
    SaveModelCallback,
    TerminateOnNaNCallback,
    TrackerCallback,
)
from fastai.callback.training import GradientAccumulation, GradientClip, ShortEpochCallback
from fastai.data.core import DataLoaders, Datasets, TfmdDL, Transform
from fastai.learner import AvgLoss, AvgMetric, AvgSmoothLoss, Learner, Metric, Recorder, ValueMetric, _before_epoch
from fastai.losses import BCEWithLogitsLossFlat, MSELossFlat
from fastai.optimizer import SGD, Adam, OptimWrapper
from fastai.test_utils import RegModel, VerboseCallback, synth_dbunch
from fastai.torch_core import find_bs, find_device, no_random, tensor, to_detach
from fastcore.basics import first, noop
from fastcore.foundation import L
from fastprogress.fastprogress import format_time
from torch import nn
from torch.utils.data import DataLoader as TorchDL
from torch.utils.data import TensorDataset

from fastfit.all import (
    BCEWithLogits,
    ClsDataLoaders,
    LogisticModel,
    ParamHistory,
    RegDataLoaders,
    RegLearner,
    binary_accuracy,
    classification_learner,
    regression_learner,
)

eq, close, ne, stdout_is = fct.test_eq, fct.test_close, fct.test_ne, fct.test_stdout

WAYS = ('stock', 'lean', 'history', 'defaults')

# What differs from fastai's tests, and why (each use is marked `DIFFERENCE n` below).
DIFFERENCES = {
    1: "Default callbacks: 13a's cells before its Recorder section ran with TrainEvalCallback as the only default. With "
       "all of fastai's defaults (TrainEval, Recorder, CastToTensor, Progress) counts are relative to a fresh learner's "
       "(the history adds ParamHistory after the callbacks given), and the one cell that needs TrainEval alone "
       "(TestOneBatch) builds its learner with default_cbs=False, cbs=[TrainEvalCallback, ...].",
    2: "Raw torch DataLoaders: regression_learner takes fastfit's RegDataLoaders (it checks model, loss and data up "
       "front), so the raw-torch cell swaps `learn.dls` after creation.",
    3: "fastfit's default loss is F.mse_loss, a function: loss_not_reduced passes reduction='none' to it (fastai's "
       "Learner does that for any loss without a `reduction` attribute) instead of setting an attribute.",
    4: "Plain SGD (no momentum) keeps no optimizer state, so a learner loaded without it has the same (empty) state.",
    5: "Data of shape (n, 1) (fastfit's y is always one column; 13a's synth_dbunch is 1-d): MSELossFlat's unreduced "
       "losses are compared flat, and predict returns one value per target, shape (1,).",
    6: "fastprogress's console bar prints a bar glyph and a carriage return when it is created, even with NO_BAR (fastai's "
       "tests run in a notebook, where bars are widgets): for the stock Learner those are allowed in 'no output'; "
       "fastfit's FitProgress honours NO_BAR and prints nothing.",
}


def make_synth_learner(way, n_trn=10, n_val=2, cuda=False, lr=1e-3, data=None, model=None, n_train=None, nb='test_utils',
                       **kwargs):
    "fastai's `synth_learner` (test_utils', or 13a's own with `nb='13a'`), built one of the four ways."
    if n_train is not None: n_trn = n_train  # 13a's notebook spells it n_train
    if data is None: data = synth_data(way, n_train=n_trn, n_valid=n_val, nb=nb)
    if model is None: model = RegModel()
    # test_utils' synth_learner trains with SGD(mom=0.9); 13a's own with the Learner's default (Adam)
    if way != 'defaults' and nb != '13a': kwargs.setdefault('opt_func', partial(SGD, mom=0.9))
    if way == 'stock': return Learner(data, model, lr=lr, loss_func=MSELossFlat(), **kwargs)
    if way != 'defaults':
        if nb == '13a': kwargs.setdefault('opt_func', Adam)
        kwargs.setdefault('loss_func', MSELossFlat())
    return regression_learner(data, model, lr=lr, history=way != 'lean', **kwargs)


def synth_data(way, a=2, b=3, bs=16, n_train=10, n_valid=2, nb='test_utils'):
    "fastai's `synth_dbunch` (stock: test_utils', or 13a's own), or the same draws as fastfit's `RegDataLoaders`."
    if way == 'stock' and nb != '13a': return synth_dbunch(a=a, b=b, bs=bs, n_train=n_train, n_valid=n_valid)
    shape = (lambda n: (int(bs * n),)) if way == 'stock' else (lambda n: (int(bs * n), 1))  # 13a's x is 1-d
    def get(n):
        x = torch.randn(*shape(n))
        return x, a * x + b + 0.1 * torch.randn(*shape(n))
    (xt, yt), (xv, yv) = get(n_train), get(n_valid)
    if way == 'stock':  # 13a's synth_dbunch
        return DataLoaders(TfmdDL(TensorDataset(xt, yt), bs=bs, shuffle=True, num_workers=0, drop_last=True),
                           TfmdDL(TensorDataset(xv, yv), bs=bs, num_workers=0))
    return RegDataLoaders.from_arrays(xt, yt, valid=(xv, yv), bs=bs)


@pytest.fixture(params=WAYS)
def way(request):
    torch.manual_seed(0)
    return request.param


@pytest.fixture
def synth_learner(way): return partial(make_synth_learner, way)


@pytest.fixture
def synth_learner_13a(way): return partial(make_synth_learner, way, nb='13a')


def n_base(synth_learner): return len(synth_learner().cbs)  # DIFFERENCE 1


def tst_metric(out, targ): return F.mse_loss(out, targ)


# ---------------------------------------------------------------------------------------------------------------------
# 13a_learner
# ---------------------------------------------------------------------------------------------------------------------
def test_training_makes_the_model_better(synth_learner_13a):
    # 13a_learner, cell "#Training a few epochs should make the model better"
    learn = synth_learner_13a(lr=0.1)
    learn(_before_epoch)
    learn.model = learn.model.cpu()
    xb, yb = learn.dls.one_batch()
    init_loss = learn.loss_func(learn.model(xb), yb)
    learn.fit(10)
    xb, yb = learn.dls.one_batch()
    final_loss = learn.loss_func(learn.model(xb), yb)
    assert final_loss < init_loss, (final_loss, init_loss)


def test_trains_with_raw_torch_dataloaders(synth_learner_13a):
    # 13a_learner, cell "#Ensure we can train with raw torch" (DIFFERENCE 2: dls swapped after creation)
    learn = synth_learner_13a(lr=0.1)
    x = torch.randn(160, 1)
    ds = TensorDataset(x, 2 * x + 3 + 0.1 * torch.randn(160, 1))
    learn.dls = DataLoaders(TorchDL(ds, batch_size=16, shuffle=True, num_workers=0, drop_last=True),
                            TorchDL(ds, batch_size=16, num_workers=0))
    learn(_before_epoch)
    learn.model = learn.model.cpu()
    xb, yb = next(iter(learn.dls[0]))
    init_loss = learn.loss_func(learn.model(xb), yb)
    learn.fit(10)
    xb, yb = next(iter(learn.dls[0]))
    learn.model = learn.model.cpu()
    final_loss = learn.loss_func(learn.model(xb), yb)
    assert final_loss < init_loss, (final_loss, init_loss)


class TestTrainEvalCallback(Callback):
    __test__ = False  # a callback, not a pytest test class
    # 13a_learner, the hidden cell defining `TestTrainEvalCallback`
    run_after, run_valid = TrainEvalCallback, False
    def before_fit(self):
        eq([self.pct_train, self.train_iter], [0., 0])
        self.old_pct_train, self.old_train_iter = self.pct_train, self.train_iter

    def before_batch(self): eq(next(self.parameters()).device, find_device(self.xb))

    def after_batch(self):
        assert self.training
        eq(self.pct_train, self.old_pct_train + 1 / (self.n_iter * self.n_epoch))
        eq(self.train_iter, self.old_train_iter + 1)
        self.old_pct_train, self.old_train_iter = self.pct_train, self.train_iter

    def before_train(self):
        assert self.training and self.model.training
        eq(self.pct_train, self.epoch / self.n_epoch)
        self.old_pct_train = self.pct_train

    def before_validate(self):
        assert not self.training and not self.model.training


def test_train_eval_callback(synth_learner_13a):
    # 13a_learner, the hidden cell "learn = synth_learner_13a(cbs=TestTrainEvalCallback)"
    learn = synth_learner_13a(cbs=TestTrainEvalCallback)
    learn.fit(1)
    # Check order is properly taken into account
    learn.cbs = L(reversed(learn.cbs))


class _TstModel(nn.Module):
    # 13a_learner, the hidden cell "#Check wd is not applied on bn/bias when option wd_bn_bias=False"
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.randn(1)), nn.Parameter(torch.randn(1))
        self.tst = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(3))
        self.tst[0].bias.data, self.tst[1].bias.data = torch.randn(5), torch.randn(3)
    def forward(self, x): return x * self.a + self.b


class _PutGrad(Callback):
    def before_step(self):
        for p in self.learn.tst.parameters():
            if p.requires_grad: p.grad = torch.ones_like(p.data)


def test_no_weight_decay_on_bn_and_bias_then_one_batch(synth_learner_13a):
    # 13a_learner, cell "#Check wd is not applied on bn/bias when option wd_bn_bias=False", then the cell after
    # show_doc(Learner.one_batch): "b = learn.dls.one_batch()"
    learn = synth_learner_13a(n_train=5, opt_func=partial(SGD, wd=1, decouple_wd=True), cbs=_PutGrad)
    learn.model = _TstModel()
    init = [p.clone() for p in learn.tst.parameters()]
    learn.fit(1, lr=1e-2)
    end = list(learn.tst.parameters())
    assert not torch.allclose(end[0] - init[0], -0.05 * torch.ones_like(end[0]))
    for i in [1, 2, 3]: close(end[i] - init[i], -0.05 * torch.ones_like(end[i]))

    b = learn.dls.one_batch()
    learn.one_batch(0, b)
    eq(learn.x, b[0])
    eq(learn.y, b[1])
    out = learn.model(learn.x)
    eq(learn.pred, out)
    eq(learn.loss, learn.loss_func(out, b[1]))


class TestOneBatch(VerboseCallback):
    __test__ = False  # a callback, not a pytest test class
    # 13a_learner, the hidden cell defining `TestOneBatch`
    def __init__(self, xb, yb, i):
        self.save_xb, self.save_yb, self.i = xb, yb, i
        self.old_pred, self.old_loss = None, tensor(0.)

    def before_batch(self):
        self.old_a, self.old_b = self.a.data.clone(), self.b.data.clone()
        eq(self.iter, self.i)
        eq(self.save_xb, *self.xb)
        eq(self.save_yb, *self.yb)
        if hasattr(self.learn, 'pred'): eq(self.pred, self.old_pred)

    def after_pred(self):
        self.old_pred = self.pred
        eq(self.pred, self.a.data * self.x + self.b.data)
        eq(self.loss, self.old_loss)

    def after_loss(self):
        self.old_loss = self.loss
        eq(self.loss, self.loss_func(self.old_pred, self.save_yb))
        for p in self.parameters():
            if not hasattr(p, 'grad') or p.grad is not None: eq(p.grad, tensor([0.]))

    def before_step(self):
        self.grad_a = (2 * self.x * (self.pred.data - self.y)).mean()
        self.grad_b = 2 * (self.pred.data - self.y).mean()
        close(self.a.grad.data, self.grad_a)
        close(self.b.grad.data, self.grad_b)
        eq(self.a.data, self.old_a)
        eq(self.b.data, self.old_b)

    def after_step(self):
        close(self.a.data, self.old_a - self.lr * self.grad_a)
        close(self.b.data, self.old_b - self.lr * self.grad_b)
        self.old_a, self.old_b = self.a.data.clone(), self.b.data.clone()
        close(self.a.grad.data, self.grad_a)
        close(self.b.grad.data, self.grad_b)

    def after_batch(self):
        for p in self.parameters(): eq(p.grad, tensor([0.]))


batch_events = ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step',
                'after_step', 'after_batch']
valid_events = ['before_batch', 'after_pred', 'after_loss', 'after_batch']


def test_one_batch_events_in_order(synth_learner_13a):
    # 13a_learner, the hidden cell "learn = synth_learner_13a(); b = learn.dls.one_batch(); ... #Remove train/eval"
    learn = synth_learner_13a()
    b = learn.dls.one_batch()
    # DIFFERENCE 1: at this point of 13a, TrainEvalCallback is the only default callback
    with redirect_stdout(io.StringIO()):
        learn = synth_learner_13a(default_cbs=False, cbs=[TrainEvalCallback, TestOneBatch(*b, 42)], lr=1e-2)
    # Remove train/eval
    learn.cbs = learn.cbs[1:]
    # Setup
    learn.loss, learn.training = tensor(0.), True
    learn.opt = SGD(learn.parameters(), lr=learn.lr)
    learn.model.train()
    stdout_is(lambda: learn.one_batch(42, b), '\n'.join(batch_events))
    stdout_is(lambda: learn.one_batch(42, b), '\n'.join(batch_events))  # Check it works for a second batch


def test_all_batches_and_epoch_events(synth_learner_13a):
    # 13a_learner, the hidden cells after show_doc(Learner.all_batches) (DIFFERENCE 1: TrainEvalCallback the only default)
    def learner(**kw): return synth_learner_13a(default_cbs=False, cbs=[TrainEvalCallback, VerboseCallback()], **kw)
    with redirect_stdout(io.StringIO()): learn = learner(n_train=5)
    learn.opt = SGD(learn.parameters(), lr=learn.lr)
    with redirect_stdout(io.StringIO()):
        learn(_before_epoch)
        learn.epoch, learn.dl = 0, learn.dls.train
        learn('before_train')
    stdout_is(learn.all_batches, '\n'.join(batch_events * 5))
    eq(learn.train_iter, 5)

    with redirect_stdout(io.StringIO()):
        learn.dl = learn.dls.valid
        learn('before_validate')
    stdout_is(learn.all_batches, '\n'.join(valid_events * 2))
    eq(learn.train_iter, 5)

    with redirect_stdout(io.StringIO()): learn = learner(n_train=5)
    stdout_is(lambda: learn(_before_epoch), 'before_fit\nbefore_epoch')
    eq(learn.loss, tensor(0.))

    learn.opt = SGD(learn.parameters(), lr=learn.lr)
    learn.epoch = 0
    stdout_is(lambda: learn._do_epoch_train(), '\n'.join(['before_train'] + batch_events * 5 + ['after_train']))
    stdout_is(learn._do_epoch_validate, '\n'.join(['before_validate'] + valid_events * 2 + ['after_validate']))


def test_create_opt(synth_learner_13a):
    # 13a_learner, the three cells after show_doc(Learner.create_opt)
    with redirect_stdout(io.StringIO()):
        learn = synth_learner_13a(n_train=5, cbs=VerboseCallback())
    assert learn.opt is None
    learn.create_opt()
    assert learn.opt is not None
    eq(learn.opt.hypers[0]['lr'], learn.lr)

    with redirect_stdout(io.StringIO()):
        learn = synth_learner_13a(n_train=5, cbs=VerboseCallback(), opt_func=partial(OptimWrapper, opt=torch.optim.Adam))
    assert learn.opt is None
    learn.create_opt()
    assert learn.opt is not None
    eq(learn.opt.hypers[0]['lr'], learn.lr)

    wrapper_lr = 1
    with redirect_stdout(io.StringIO()):
        learn = synth_learner_13a(n_train=5, cbs=VerboseCallback(), opt_func=partial(OptimWrapper, opt=torch.optim.Adam, lr=wrapper_lr))
    assert learn.opt is None
    learn.create_opt()
    assert learn.opt is not None
    eq(learn.opt.hypers[0]['lr'], wrapper_lr)


def test_callbacks_at_init(synth_learner_13a):
    # 13a_learner, cell "#Test init with callbacks" (DIFFERENCE 1)
    class TstCallback(Callback):
        def batch_begin(self): self.learn.a = self.a + 1
    n = n_base(synth_learner_13a)
    tst_learn = synth_learner_13a()
    assert isinstance(tst_learn.cbs[0], TrainEvalCallback)
    assert hasattr(tst_learn, ('train_eval'))

    tst_learn = synth_learner_13a(cbs=TstCallback())
    eq(len(tst_learn.cbs), n + 1)
    # the defaults first (in fastai's places), then the callbacks given
    assert isinstance(tst_learn.cbs[len(Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat()).cbs)], TstCallback)  # noqa: E501
    assert hasattr(tst_learn, ('tst'))


def test_default_callbacks_stand_in_fastais_places(synth_learner_13a):
    # fastfit: the lean replacements of fastai's defaults stand where the defaults stand (13a indexes learn.cbs)
    stock = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat()).cbs
    learn = synth_learner_13a(cbs=TstCallbackNamed())
    for mine, theirs in zip(learn.cbs, stock):
        assert isinstance(mine, type(theirs)) or (type(theirs).__name__ == 'ProgressCallback' and mine.name == 'progress')
    assert isinstance(learn.cbs[len(stock)], TstCallbackNamed)


class TstCallbackNamed(Callback): pass


def test_call_an_event(synth_learner_13a, capsys):
    # 13a_learner, cell "learn = synth_learner_13a(cbs=VerboseCallback()); learn('after_fit')"
    learn = synth_learner_13a(cbs=VerboseCallback())
    learn('after_fit')
    assert capsys.readouterr().out == 'after_create\nafter_fit\n'


def test_add_cb_and_add_cbs(synth_learner_13a):
    # 13a_learner, the cells after show_doc(Learner.add_cb) and show_doc(Learner.add_cbs) (DIFFERENCE 1)
    n = n_base(synth_learner_13a)
    learn = synth_learner_13a()
    learn.add_cb(TestTrainEvalCallback())
    eq(len(learn.cbs), n + 1)
    assert isinstance(learn.cbs[-1], TestTrainEvalCallback)
    eq(learn.train_eval.learn, learn)

    learn.add_cbs([TestTrainEvalCallback(), TestTrainEvalCallback()])
    eq(len(learn.cbs), n + 3)


def test_added_cbs_and_ordered_cbs(synth_learner_13a):
    # 13a_learner, the cells after show_doc(Learner.added_cbs) and show_doc(Learner.ordered_cbs) (DIFFERENCE 1)
    n = n_base(synth_learner_13a)
    learn = synth_learner_13a()
    eq(len(learn.cbs), n)
    with learn.added_cbs(TestTrainEvalCallback()):
        eq(len(learn.cbs), n + 1)
    learn = synth_learner_13a()
    learn.add_cb(TestTrainEvalCallback())
    cbs = learn.ordered_cbs('before_fit')
    assert isinstance(cbs[0], TrainEvalCallback) and isinstance(cbs[1], TestTrainEvalCallback)


def test_remove_cb_remove_cbs_removed_cbs(synth_learner_13a):
    # 13a_learner, the cells after show_doc(Learner.remove_cb), show_doc(Learner.remove_cbs) and
    # show_doc(Learner.removed_cbs) (DIFFERENCE 1)
    n = n_base(synth_learner_13a)
    learn = synth_learner_13a()
    learn.add_cb(TestTrainEvalCallback())
    cb = learn.cbs[-1]
    learn.remove_cb(learn.cbs[-1])
    eq(len(learn.cbs), n)
    assert cb.learn is None
    assert not getattr(learn, 'test_train_eval', None)

    learn = synth_learner_13a()
    learn.add_cbs([TestTrainEvalCallback(), TestTrainEvalCallback()])
    learn.remove_cb(TestTrainEvalCallback)
    eq(len(learn.cbs), n)
    assert not getattr(learn, 'test_train_eval', None)

    learn = synth_learner_13a()
    learn.add_cbs([TestTrainEvalCallback() for _ in range(3)])
    cb = learn.cbs[n]
    learn.remove_cbs(learn.cbs[n:])
    eq(len(learn.cbs), n)

    learn = synth_learner_13a()
    learn.add_cb(TestTrainEvalCallback())
    with learn.removed_cbs(learn.cbs[-1]):
        eq(len(learn.cbs), n)
    eq(len(learn.cbs), n + 1)


def test_show_training_loop(synth_learner_13a, capsys):
    # 13a_learner, cell "learn = synth_learner_13a(); learn.show_training_loop()"
    learn = synth_learner_13a()
    learn.show_training_loop()
    out = capsys.readouterr().out
    assert out.startswith('Start Fit') and ' - after_fit      :' in out
    assert 'TrainEvalCallback' in out.replace('RegTrainEval', 'TrainEvalCallback')


def test_skip_to_epoch(synth_learner_13a):
    # 13a_learner, cell "# test SkipToEpoch callback"
    class TestSkipToEpoch(Callback):
        def after_train(self):
            assert self.epoch >= 2
    learn = synth_learner_13a(cbs=TestSkipToEpoch())
    learn.fit(4, start_epoch=2)

    learn = synth_learner_13a()
    p0_pre = first(learn.model.parameters()).data.clone()
    learn.fit(3, start_epoch=3)
    p0 = first(learn.model.parameters()).data
    eq(p0_pre, p0)


def test_save_and_load(synth_learner_13a, way, tmp_path):
    # 13a_learner, the cell after show_doc of `load` ("with tempfile.TemporaryDirectory() as d:") and the hidden cell
    # "#Test load works when the model is saved without opt"
    d = tmp_path
    learn = synth_learner_13a(path=d)
    learn.fit(1)
    # Test save created a file
    learn.save('tmp')
    assert (Path(d) / 'models/tmp.pth').exists()
    # Test load did load the model
    learn1 = synth_learner_13a(path=d)
    learn1 = learn1.load('tmp')
    eq(learn.a, learn1.a)
    eq(learn.b, learn1.b)
    eq(learn.opt.state_dict(), learn1.opt.state_dict())

    learn = synth_learner_13a(path=d)
    learn.fit(1)
    learn.save('tmp', with_opt=False)
    learn1 = synth_learner_13a(path=d)
    learn1 = learn1.load('tmp', with_opt=False)
    eq(learn.a, learn1.a)
    eq(learn.b, learn1.b)
    if way != 'defaults': ne(learn.opt.state_dict(), learn1.opt.state_dict())
    else: eq(learn.opt.state_dict()['state'], learn1.opt.state_dict()['state'])  # DIFFERENCE 4


def test_to_detach(synth_learner_13a):
    # 13a_learner, the hidden cell after show_doc(Learner.to_detach)
    learn = synth_learner_13a()
    eq(learn.to_detach(torch.Tensor([123])), torch.Tensor([123]))
    learn.dl = learn.dls[0]
    eq(learn.to_detach(torch.Tensor([123])), torch.Tensor([123]))
    learn.dl.to_detach = lambda b, cpu, gather: b - 100
    eq(learn.to_detach(torch.Tensor([123.])), torch.Tensor([23.]))


def test_metrics_on_a_learner(synth_learner_13a):
    # 13a_learner, the cells after show_doc(AvgMetric), show_doc(AvgLoss), show_doc(AvgSmoothLoss), show_doc(ValueMetric)
    learn = synth_learner_13a()
    tst = AvgMetric(lambda x, y: (x - y).abs().mean())
    t, u = torch.randn(100), torch.randn(100)
    tst.reset()
    for i in range(0, 100, 25):
        learn.pred, learn.yb = t[i:i + 25], (u[i:i + 25],)
        tst.accumulate(learn)
    close(tst.value, (t - u).abs().mean())
    # With varying batch size
    tst.reset()
    splits = [0, 30, 50, 60, 100]
    for i in range(len(splits) - 1):
        learn.pred, learn.yb = t[splits[i]:splits[i + 1]], (u[splits[i]:splits[i + 1]],)
        tst.accumulate(learn)
    close(tst.value, (t - u).abs().mean())

    tst = AvgLoss()
    t = torch.randn(100)
    tst.reset()
    for i in range(0, 100, 25):
        learn.yb, learn.loss = t[i:i + 25], t[i:i + 25].mean()
        tst.accumulate(learn)
    close(tst.value, t.mean())

    tst = AvgSmoothLoss()
    t = torch.randn(100)
    tst.reset()
    val = tensor(0.)
    for i in range(4):
        learn.loss = t[i * 25:(i + 1) * 25].mean()
        tst.accumulate(learn)
        val = val * 0.98 + t[i * 25:(i + 1) * 25].mean() * (1 - 0.98)
        close(val / (1 - 0.98 ** (i + 1)), tst.value)

    def metric_value_fn(): return 5e-3
    vm = ValueMetric(metric_value_fn, 'custom_value_metric')
    eq(vm.value, 5e-3)
    eq(vm.name, 'custom_value_metric')


def test_recorder_printed_output(synth_learner_13a):
    # 13a_learner, cell "#Test printed output"
    learn = synth_learner_13a(n_train=5, metrics=tst_metric, default_cbs=False, cbs=[TrainEvalCallback, Recorder])
    pat = r"\[\d, \d+.\d+, \d+.\d+, \d+.\d+, '\d\d:\d\d'\]"
    stdout_is(lambda: learn.fit(1), pat, regex=True)


class TestRecorderCallback(Callback):
    __test__ = False  # a callback, not a pytest test class
    # 13a_learner, the hidden cell defining `TestRecorderCallback`
    order = 51
    def before_fit(self):
        self.train_metrics, self.add_time = self.recorder.train_metrics, self.recorder.add_time
        self.beta = self.recorder.smooth_loss.beta
        for m in self.metrics: assert isinstance(m, Metric)
        eq(self.recorder.smooth_loss.val, 0.)
        # To test what the recorder logs, we use a custom logger function.
        self.learn.logger = self.test_log
        self.old_smooth, self.count = tensor(0.), 0

    def after_batch(self):
        if self.training:
            self.count += 1
            eq(len(self.recorder.lrs), self.count)
            eq(self.recorder.lrs[-1], self.opt.hypers[-1]['lr'])
            eq(len(self.recorder.losses), self.count)
            smooth = (1 - self.beta ** (self.count - 1)) * self.old_smooth * self.beta + self.loss * (1 - self.beta)
            smooth /= 1 - self.beta ** self.count
            close(self.recorder.losses[-1], smooth, eps=1e-4)
            close(self.smooth_loss, smooth, eps=1e-4)
            self.old_smooth = self.smooth_loss
        self.bs += find_bs(self.yb)
        if not self.training: eq(self.recorder.loss.count, self.bs)
        if self.train_metrics or not self.training:
            for m in self.metrics: eq(m.count, self.bs)
        self.losses.append(self.loss.detach().cpu())

    def before_epoch(self):
        if self.add_time: self.start_epoch = time.time()
        self.log = [self.epoch]

    def before_train(self):
        self.bs = 0
        self.losses = []
        for m in self.recorder._train_mets: eq(m.count, self.bs)

    def after_train(self):
        mean = tensor(self.losses).mean()
        self.log += [self.smooth_loss, mean] if self.train_metrics else [self.smooth_loss]
        close(self.log, self.recorder.log)
        self.losses = []

    def before_validate(self):
        self.bs = 0
        self.losses = []
        for m in [self.recorder.loss] + self.metrics: eq(m.count, self.bs)

    def test_log(self, log):
        res = tensor(self.losses).mean()
        self.log += [res, res]
        if self.add_time: self.log.append(format_time(time.time() - self.start_epoch))
        close(log[:-1], self.log[:-1])
        eq(log[-1], self.log[-1])


def test_recorder_records(synth_learner_13a):
    # 13a_learner, the hidden cell "def _get_learn(): ..."
    def _get_learn():
        return synth_learner_13a(n_train=5, metrics=tst_metric, default_cbs=False, cbs=[TrainEvalCallback, Recorder, TestRecorderCallback])
    learn = _get_learn()
    learn.fit(1)
    eq(learn.recorder.metric_names, ['epoch', 'train_loss', 'valid_loss', 'tst_metric', 'time'])

    learn = _get_learn()
    learn.recorder.train_metrics = True
    learn.fit(1)
    eq(learn.recorder.metric_names, ['epoch', 'train_loss', 'train_tst_metric', 'valid_loss', 'valid_tst_metric', 'time'])

    learn = _get_learn()
    learn.recorder.add_time = False
    learn.fit(1)
    eq(learn.recorder.metric_names, ['epoch', 'train_loss', 'valid_loss', 'tst_metric'])


def test_numpy_metric_and_plot_loss(synth_learner_13a):
    # 13a_learner, cell "#Test numpy metric", then "learn.recorder.plot_loss(skip_start=1)"
    def tst_metric_np(out, targ): return F.mse_loss(out, targ).numpy()
    learn = synth_learner_13a(n_train=5, metrics=tst_metric_np)
    learn.fit(1)
    learn.recorder.plot_loss(skip_start=1)


def test_validate(synth_learner_13a):
    # 13a_learner, cells "#Test result" (after show_doc(Learner.validate)) and "#Test other dl"
    learn = synth_learner_13a(n_train=5, metrics=tst_metric)
    res = learn.validate()
    eq(res[0], res[1])
    x, y = learn.dls.valid_ds.tensors
    close(res[0], F.mse_loss(learn.model(x), y), 1e-3)
    res = learn.validate(dl=learn.dls.train)
    eq(res[0], res[1])
    x, y = learn.dls.train_ds.tensors
    close(res[0], F.mse_loss(learn.model(x), y), 1e-3)


def test_get_preds(synth_learner_13a):
    # 13a_learner, cell "#Test result" (after the get_preds note)
    learn = synth_learner_13a(n_train=5, metrics=tst_metric)
    preds, targs = learn.get_preds()
    x, y = learn.dls.valid_ds.tensors
    eq(targs, y)
    close(preds, learn.model(x))

    preds, targs = learn.get_preds(act=torch.sigmoid)
    eq(targs, y)
    close(preds, torch.sigmoid(learn.model(x)))


def test_get_preds_not_divisible_by_bs(synth_learner_13a):
    # 13a_learner, cell "#Test get_preds work with ds not evenly divisible by bs"; the last line checks the predictions
    # come for every sample, in order (fastfit: its shuffled, drop_last training loader is read in full, in order)
    learn = synth_learner_13a(n_train=2.5, metrics=tst_metric)
    preds, targs = learn.get_preds(ds_idx=0)
    # Also make sure this version works when drop_last of the dl would be True
    preds, targs = learn.get_preds(dl=learn.dls.train)
    eq(targs, learn.dls.train_ds.tensors[1])


def test_get_preds_other_dataset_loss_inputs(synth_learner_13a, way):
    # 13a_learner, cell "#Test other dataset" (with_loss, with_input)
    learn = synth_learner_13a(n_train=2.5, metrics=tst_metric)
    x = torch.randn(16 * 5)
    y = 2 * x + 3 + 0.1 * torch.randn(16 * 5)
    dl = TfmdDL(TensorDataset(x, y), bs=16)
    preds, targs = learn.get_preds(dl=dl)
    eq(targs, y)
    close(preds, learn.model(x))
    # Test with loss
    preds, targs, losses = learn.get_preds(dl=dl, with_loss=True)
    eq(targs, y)
    close(preds, learn.model(x))
    close(losses, F.mse_loss(preds, targs, reduction='none'))
    # Test with inputs
    inps, preds, targs = learn.get_preds(dl=dl, with_input=True)
    eq(inps, x)
    eq(targs, y)
    close(preds, learn.model(x))


def test_get_preds_no_target_tuple_targets_tuple_inputs(synth_learner_13a):
    # 13a_learner, cells "#Test with no target", "#Test with targets that are tuples", "#Test with inputs that are tuples"
    learn = synth_learner_13a(n_train=5)
    x = torch.randn(16 * 5)
    dl = TfmdDL(TensorDataset(x), bs=16)
    preds, targs = learn.get_preds(dl=dl)
    assert targs is None

    def _fake_loss(x, y, z, reduction=None): return F.mse_loss(x, y)
    learn = synth_learner_13a(n_train=5)
    x = torch.randn(16 * 5)
    y = 2 * x + 3 + 0.1 * torch.randn(16 * 5)
    learn.dls.n_inp = 1
    learn.loss_func = _fake_loss
    dl = TfmdDL(TensorDataset(x, y, y), bs=16)
    preds, targs = learn.get_preds(dl=dl)
    eq(targs, [y, y])

    class _TupleModel(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model
        def forward(self, x1, x2): return self.model(x1)
    learn = synth_learner_13a(n_train=5)
    x = torch.randn(16 * 5)
    y = 2 * x + 3 + 0.1 * torch.randn(16 * 5)
    learn.model = _TupleModel(learn.model)
    learn.dls = DataLoaders(TfmdDL(TensorDataset(x, x, y), bs=16), TfmdDL(TensorDataset(x, x, y), bs=16))
    inps, preds, targs = learn.get_preds(ds_idx=0, with_input=True)
    eq(inps, [x, x])
    learn.get_preds(ds_idx=0, with_input=True)


def test_get_preds_activation_and_reorder(synth_learner_13a):
    # 13a_learner, cells "#Test auto activation function is picked", "#Test reorder is done", and the one after
    learn = synth_learner_13a(n_train=5)
    learn.loss_func = BCEWithLogitsLossFlat()
    x = torch.randn(16 * 5)
    y = 2 * x + 3 + 0.1 * torch.randn(16 * 5)
    dl = TfmdDL(TensorDataset(x, y), bs=16)
    preds, targs = learn.get_preds(dl=dl)
    close(preds, torch.sigmoid(learn.model(x)))

    learn = synth_learner_13a(n_train=5)
    x = torch.randn(16 * 5)
    y = 2 * x + 3 + 0.1 * torch.randn(16 * 5)
    dl = TfmdDL(TensorDataset(x, y), bs=16, shuffle=True)
    preds, targs = learn.get_preds(dl=dl)
    eq(targs, y)
    inps, preds, targs = learn.get_preds(ds_idx=0, with_input=True)
    learn.get_preds(ds_idx=0, with_input=True, with_decoded=True)


class _FakeLossFunc(nn.Module):
    reduction = 'none'
    def forward(self, x, y): return F.mse_loss(x, y)
    def activation(self, x): return x + 1
    def decodes(self, x): return 2 * x


class _Add1(Transform):
    def encodes(self, x): return x + 1
    def decodes(self, x): return x - 1


def test_predict(synth_learner_13a):
    # 13a_learner, the cell after the notes on predict ("class _FakeLossFunc(Module): ...")
    learn = synth_learner_13a(n_train=5)
    dl = TfmdDL(Datasets(torch.arange(50), tfms=[L(), [_Add1()]]))
    learn.dls = DataLoaders(dl, dl)
    learn.loss_func = _FakeLossFunc()
    inp = tensor([2.])
    out = learn.model(inp).detach() + 1  # applying model + activation
    dec = 2 * out  # decodes from loss function
    full_dec = dec - 1  # decodes from _Add1
    eq(learn.predict(inp), [full_dec, dec, out])
    eq(learn.predict(inp, with_input=True), [inp, full_dec, dec, out])


def test_no_logging(synth_learner_13a, way, capsys):
    # 13a_learner, the cell after show_doc(Learner.no_logging)
    learn = synth_learner_13a(n_train=5, metrics=tst_metric)
    with learn.no_logging():
        if way == 'stock':  # DIFFERENCE 6
            learn.fit(1)
            assert capsys.readouterr().out.replace('\u2588', '').replace('\r', '') == ''
        else: stdout_is(lambda: learn.fit(1), '')
    eq(learn.logger, print)


def test_loss_not_reduced(synth_learner_13a, way):
    # 13a_learner, the hidden cell after show_doc(Learner.loss_not_reduced)
    learn = synth_learner_13a(n_train=5, metrics=tst_metric)
    if way == 'defaults':  # DIFFERENCE 3
        with learn.loss_not_reduced():
            x, y = learn.dls.one_batch()
            p = learn.model(x)
            losses = learn.loss_func(p, y)
            eq(losses.shape, y.shape)
            eq(losses, F.mse_loss(p, y, reduction='none'))
        assert learn.loss_func is F.mse_loss
        return
    eq(learn.loss_func.reduction, 'mean')
    with learn.loss_not_reduced():
        eq(learn.loss_func.reduction, 'none')
        x, y = learn.dls.one_batch()
        if way != 'stock': y = y.flatten()  # DIFFERENCE 5: MSELossFlat flattens, and fastfit's y is (n, 1)
        p = learn.model(x).flatten() if way != 'stock' else learn.model(x)
        losses = learn.loss_func(p, y)
        eq(losses.shape, y.shape)
        eq(losses, F.mse_loss(p, y, reduction='none'))
    eq(learn.loss_func.reduction, 'mean')


def _splitter(m): return [list(m.tst[0].parameters()), list(m.tst[1].parameters()), [m.a, m.b]]


def test_freeze_trains_bn(synth_learner_13a):
    # 13a_learner, the hidden cell "class _TstModel(nn.Module): ..." under "Transfer learning"
    learn = synth_learner_13a(n_train=5, opt_func=partial(SGD), cbs=_PutGrad, splitter=_splitter, lr=1e-2)
    learn.model = _TstModel()
    learn.freeze()
    init = [p.clone() for p in learn.tst.parameters()]
    learn.fit(1, wd=0.)
    end = list(learn.tst.parameters())
    # linear was not trained
    for i in [0, 1]: close(end[i], init[i])
    # bn was trained even frozen since `train_bn=True` by default
    for i in [2, 3]: close(end[i] - init[i], -0.05 * torch.ones_like(end[i]))


def test_freeze_to_and_unfreeze(synth_learner_13a):
    # 13a_learner, the hidden cell "learn = synth_learner_13a(..., train_bn=False, lr=1e-2)"
    learn = synth_learner_13a(n_train=5, opt_func=partial(SGD), cbs=_PutGrad, splitter=_splitter, train_bn=False, lr=1e-2)
    learn.model = _TstModel()
    learn.freeze()
    init = [p.clone() for p in learn.tst.parameters()]
    learn.fit(1, wd=0.)
    end = list(learn.tst.parameters())
    # linear and bn were not trained
    for i in range(4): close(end[i], init[i])

    learn.freeze_to(-2)
    init = [p.clone() for p in learn.tst.parameters()]
    learn.fit(1, wd=0.)
    end = list(learn.tst.parameters())
    # linear was not trained
    for i in [0, 1]: close(end[i], init[i])
    # bn was trained
    for i in [2, 3]: close(end[i] - init[i], -0.05 * torch.ones_like(end[i]))

    learn.unfreeze()
    init = [p.clone() for p in learn.tst.parameters()]
    learn.fit(1, wd=0.)
    end = list(learn.tst.parameters())
    # linear and bn were trained
    for i in range(4): close(end[i] - init[i], -0.05 * torch.ones_like(end[i]), 1e-3)


def test_tta(synth_learner_13a):
    # 13a_learner, the hidden cell after the TTA notes
    learn = synth_learner_13a()
    dl = TfmdDL(Datasets(torch.arange(50), [noop, noop]))
    learn.dls = DataLoaders(dl, dl)
    preds, targs = learn.tta()
    assert len(preds), len(targs)


# ---------------------------------------------------------------------------------------------------------------------
# 13_callback.core: the tests that go through a learner's dispatch
# ---------------------------------------------------------------------------------------------------------------------
def test_callback_error_names_callback_and_event(synth_learner):
    # 13_callback.core, the hidden cell 'with ExceptionExpected(TypeError, regex=" in `TstCallback` when calling event
    # `batch_begin`")', run through a learner's events (a fit-level event and a per-batch one)
    class TstCallback(Callback):
        def before_fit(self): self.learn.a = 1 + "a"
    learn = synth_learner(cbs=TstCallback())
    with fct.ExceptionExpected(TypeError, regex=" in `TstCallback` when calling event `before_fit`"):
        with learn.no_logging(): learn.fit(1)

    class TstCallback2(Callback):
        def after_loss(self): self.learn.a = 1 + "a"
    learn = synth_learner(cbs=TstCallback2())
    with fct.ExceptionExpected(TypeError, regex=" in `TstCallback2` when calling event `after_loss`"):
        with learn.no_logging(): learn.fit(1)


def test_callback_reads_learner_attributes_and_warns_on_shadowing(synth_learner):
    # 13_callback.core, cells "class TstCallback(Callback): def batch_begin(self): print(self.a)" and
    # "... self.a += 1" (shadowing warning), with a learner's attribute `lr` in place of TstLearner's `a`
    seen = []
    class TstCallback(Callback):
        def before_fit(self): seen.append(self.lr)
    learn = synth_learner(lr=0.25, cbs=TstCallback())
    with learn.no_logging(): learn.fit(1)
    eq(seen, [0.25])

    class Shadow(Callback):
        def before_fit(self): self.lr = 3
    learn = synth_learner(cbs=Shadow())
    with pytest.warns(UserWarning, match=r'You are shadowing an attribute \(lr\)'):
        with learn.no_logging(): learn.fit(1)
    eq(learn.shadow.lr, 3)
    eq(learn.lr, 1e-3)


# ---------------------------------------------------------------------------------------------------------------------
# 14_callback.schedule
# ---------------------------------------------------------------------------------------------------------------------
def test_param_scheduler(synth_learner):
    # 14_callback.schedule, the cell after the ParamScheduler notes, and "#test discriminative lrs"
    learn = synth_learner()
    sched = {'lr': SchedLin(1e-3, 1e-2)}
    learn.fit(1, cbs=ParamScheduler(sched))
    n = len(learn.dls.train)
    close(learn.recorder.hps['lr'], [1e-3 + (1e-2 - 1e-3) * i / n for i in range(n)])

    def _splitter(m): return [[m.a], [m.b]]
    learn = synth_learner(splitter=_splitter)
    sched = {'lr': combined_cos(0.5, np.array([1e-4, 1e-3]), np.array([1e-3, 1e-2]), np.array([1e-5, 1e-4]))}
    learn.fit(1, cbs=ParamScheduler(sched))


def test_fit_one_cycle(synth_learner):
    # 14_callback.schedule, cells "#Integration test: training a few epochs should make the model better" and
    # "#Scheduler test", then "#test discriminative lrs" and "learn.recorder.plot_sched()"
    learn = synth_learner(lr=1e-2)
    xb, yb = learn.dls.one_batch()
    init_loss = learn.loss_func(learn.model(xb), yb)
    learn.fit_one_cycle(2)
    xb, yb = learn.dls.one_batch()
    final_loss = learn.loss_func(learn.model(xb), yb)
    assert final_loss < init_loss
    # Scheduler test
    lrs, moms = learn.recorder.hps['lr'], learn.recorder.hps['mom']
    close(lrs, [combined_cos(0.25, 1e-2 / 25, 1e-2, 1e-7)(i / 20) for i in range(20)])
    close(moms, [combined_cos(0.25, 0.95, 0.85, 0.95)(i / 20) for i in range(20)])

    def _splitter(m): return [[m.a], [m.b]]
    learn = synth_learner(splitter=_splitter)
    learn.fit_one_cycle(1, lr_max=slice(1e-3, 1e-2))
    learn = synth_learner()
    learn.fit_one_cycle(2)
    learn.recorder.plot_sched()


def test_fit_flat_cos_and_sgdr(synth_learner):
    # 14_callback.schedule, cells "learn = synth_learner(); learn.fit_flat_cos(2)" and the fit_sgdr cell (#|slow)
    learn = synth_learner()
    learn.fit_flat_cos(2)
    learn.recorder.plot_sched()

    learn = synth_learner()
    with learn.no_logging(): learn.fit_sgdr(3, 1)
    eq(learn.n_epoch, 7)
    iters = [k * len(learn.dls.train) for k in [0, 1, 3, 7]]
    for i in range(3):
        n = iters[i + 1] - iters[i]
        # The start of a cycle can be mixed with the 0 of the previous cycle with rounding errors, so we test at +1
        close(learn.recorder.lrs[iters[i] + 1:iters[i + 1]], [SchedCos(learn.lr, 0)(k / n) for k in range(1, n)])
    learn.recorder.plot_sched()
    learn.fine_tune(1)


class InterruptCallback(Callback):
    # 14_callback.schedule, the hidden cell under "Resume training from checkpoint"
    def __init__(self, epoch): self._interupt_before = epoch
    def before_epoch(self):
        if self.epoch == self._interupt_before: raise CancelFitException


def test_resume_from_checkpoint(synth_learner, tmp_path):
    # 14_callback.schedule, the cell under "Resume training from checkpoint" (#|slow)
    d = tmp_path
    learn1 = synth_learner(path=d, cbs=SaveModelCallback(with_opt=True, fname="ckpt"))
    learn1.fit_one_cycle(5, cbs=InterruptCallback(2))
    learn2 = synth_learner(path=d)
    learn2 = learn2.load("ckpt")
    learn2.fit_one_cycle(5, start_epoch=2)
    eq(len(learn2.recorder.lrs), 3 * len(learn2.dls.train))
    close(learn2.recorder.lrs[0], learn1.recorder.lrs[-1], eps=1e-2)


def test_lr_finder(synth_learner, way, tmp_path):
    # 14_callback.schedule, the LRFinder cell "with tempfile.TemporaryDirectory() as d:" (#|slow)
    learn = synth_learner(path=tmp_path)
    init_a, init_b = learn.model.a.detach().clone(), learn.model.b.detach().clone()
    with learn.no_logging(): learn.fit(20, cbs=LRFinder(num_it=100))
    assert len(learn.recorder.lrs) <= 100
    eq(len(learn.recorder.lrs), len(learn.recorder.losses))
    # Check stop if diverge
    if len(learn.recorder.lrs) < 100: assert learn.recorder.losses[-1] > 4 * min(learn.recorder.losses)
    # Test schedule
    eq(learn.recorder.lrs, [SchedExp(1e-7, 10)(i / 100) for i in range(len(learn.recorder.lrs))])
    # No validation data
    eq([len(v) for v in learn.recorder.values], [1 for _ in range(len(learn.recorder.values))])
    # Model loaded back properly
    eq(learn.model.a, init_a)
    eq(learn.model.b, init_b)
    eq(learn.opt.state_dict()['state'], [{}, {}])


def test_lr_find_suggestions(synth_learner, tmp_path):
    # 14_callback.schedule, the last cell (#|slow): "lr_min, lr_steep, lr_valley, lr_slide = learn.lr_find(...)"
    learn = synth_learner(path=tmp_path)
    weights_pre_lr_find = [p.detach().clone() for p in learn.model.parameters()]
    lr_min, lr_steep, lr_valley, lr_slide = learn.lr_find(suggest_funcs=(minimum, steep, valley, slide))
    weights_post_lr_find = L(learn.model.parameters())
    eq(weights_pre_lr_find, weights_post_lr_find)
    for v in (lr_min, lr_steep, lr_valley, lr_slide): assert 1e-7 <= v <= 10


# ---------------------------------------------------------------------------------------------------------------------
# 16_callback.progress
# ---------------------------------------------------------------------------------------------------------------------
def test_progress_fit_no_bar_and_validate_untrained(synth_learner):
    # 16_callback.progress, cells "learn = synth_learner(); learn.fit(5)", "with learn.no_bar(): learn.fit(5)",
    # "# Check validate works without any training" and "# Check get_preds works without any training"
    learn = synth_learner()
    learn.fit(5)
    learn = synth_learner()
    with learn.no_bar(): learn.fit(5)
    learn = synth_learner(n_trn=5, metrics=tst_metric)
    preds, targs = learn.validate()
    learn = synth_learner(n_trn=5, metrics=tst_metric)
    preds, targs = learn.validate()


def test_show_graph_callback(synth_learner, way):
    # 16_callback.progress, cells "learn = synth_learner(cbs=ShowGraphCallback()); learn.fit(5)" and
    # "learn.predict(torch.tensor([[0.1]]))"
    learn = synth_learner(cbs=ShowGraphCallback())
    learn.fit(5)
    res = learn.predict(torch.tensor([[0.1]]))
    expect = learn.model(torch.tensor([[0.1]])).detach()
    close(res[-1], expect[0] if way == 'stock' else expect.reshape(-1))  # DIFFERENCE 5


def test_csv_logger(synth_learner, tmp_path):
    # 16_callback.progress, the CSVLogger cells "learn = synth_learner(cbs=CSVLogger()); learn.fit(5)" and
    # "df = learn.csv_logger.read_log() ..." (path: a temporary folder, not the working directory)
    learn = synth_learner(cbs=CSVLogger(), path=tmp_path)
    learn.fit(5)
    df = learn.csv_logger.read_log()
    eq(df.columns.values, learn.recorder.metric_names)
    for i, v in enumerate(learn.recorder.values):
        close(df.iloc[i][:3], [i] + v)
    os.remove(learn.path / learn.csv_logger.fname)


# ---------------------------------------------------------------------------------------------------------------------
# 17_callback.tracker
# ---------------------------------------------------------------------------------------------------------------------
def test_terminate_on_nan(synth_learner, capsys):
    # 17_callback.tracker, cells "learn = synth_learner(); learn.fit(10, lr=100, cbs=TerminateOnNaNCallback())" and
    # "assert len(learn.recorder.losses) < 10 * len(learn.dls.train) ..."
    learn = synth_learner()
    learn.fit(10, lr=100, cbs=TerminateOnNaNCallback())
    assert len(learn.recorder.losses) < 10 * len(learn.dls.train)
    for l in learn.recorder.losses:
        assert not torch.isinf(l) and not torch.isnan(l)


class FakeRecords(Callback):
    # 17_callback.tracker, the hidden cell defining `FakeRecords` and `TestTracker`
    order = 51
    def __init__(self, monitor, values): self.monitor, self.values = monitor, values
    def before_fit(self): self.idx = list(self.recorder.metric_names[1:]).index(self.monitor)
    def after_epoch(self): self.recorder.values[-1][self.idx] = self.values[self.epoch]


class TestTracker(Callback):
    __test__ = False  # a callback, not a pytest test class
    order = 61
    def before_fit(self): self.bests, self.news = [], []
    def after_epoch(self):
        self.bests.append(self.tracker.best)
        self.news.append(self.tracker.new_best)


def test_tracker_callback(synth_learner):
    # 17_callback.tracker, the hidden cells "learn = synth_learner(n_trn=2, cbs=TestTracker())", "#By default metrics
    # have to be bigger at each epoch.", "#Setting reset_on_fit=True will maintain the "best" value ...", "#A tracker
    # callback is not run during an lr_find"
    learn = synth_learner(n_trn=2, cbs=TestTracker())
    cbs = [TrackerCallback(monitor='valid_loss'), FakeRecords('valid_loss', [0.2, 0.1])]
    with learn.no_logging(): learn.fit(2, cbs=cbs)
    eq(learn.test_tracker.bests, [0.2, 0.1])
    eq(learn.test_tracker.news, [True, True])
    # With a min_delta
    cbs = [TrackerCallback(monitor='valid_loss', min_delta=0.15), FakeRecords('valid_loss', [0.2, 0.1])]
    with learn.no_logging(): learn.fit(2, cbs=cbs)
    eq(learn.test_tracker.bests, [0.2, 0.2])
    eq(learn.test_tracker.news, [True, False])

    learn = synth_learner(n_trn=2, cbs=TestTracker(), metrics=tst_metric)
    cbs = [TrackerCallback(monitor='tst_metric'), FakeRecords('tst_metric', [0.2, 0.1])]
    with learn.no_logging(): learn.fit(2, cbs=cbs)
    eq(learn.test_tracker.bests, [0.2, 0.2])
    eq(learn.test_tracker.news, [True, False])
    # This can be overwritten by passing `comp=np.less`.
    learn = synth_learner(n_trn=2, cbs=TestTracker(), metrics=tst_metric)
    cbs = [TrackerCallback(monitor='tst_metric', comp=np.less), FakeRecords('tst_metric', [0.2, 0.1])]
    with learn.no_logging(): learn.fit(2, cbs=cbs)
    eq(learn.test_tracker.bests, [0.2, 0.1])
    eq(learn.test_tracker.news, [True, True])

    learn = synth_learner(n_val=2, cbs=TrackerCallback(monitor='tst_metric', reset_on_fit=False), metrics=tst_metric)
    tracker_cb = learn.cbs.filter(lambda cb: isinstance(cb, TrackerCallback))[0]
    with learn.no_logging(): learn.fit(1)
    first_best = tracker_cb.best
    with learn.no_logging(): learn.fit(1)
    eq(tracker_cb.best, first_best)

    learn = synth_learner(n_trn=2, cbs=TrackerCallback(monitor='tst_metric'), metrics=tst_metric)
    learn.lr_find(num_it=15, show_plot=False)
    assert not hasattr(learn, 'new_best')


def test_early_stopping(synth_learner):
    # 17_callback.tracker, the EarlyStoppingCallback cells and "test_eq(len(learn.recorder.values), 3)"
    learn = synth_learner(n_trn=2, metrics=F.mse_loss)
    learn.fit(n_epoch=200, lr=1e-7, cbs=EarlyStoppingCallback(monitor='mse_loss', min_delta=0.1, patience=2))
    learn.validate()
    learn = synth_learner(n_trn=2)
    learn.fit(n_epoch=200, lr=1e-7, cbs=EarlyStoppingCallback(monitor='valid_loss', min_delta=0.1, patience=2))
    eq(len(learn.recorder.values), 3)


def test_save_model_callback(synth_learner, tmp_path):
    # 17_callback.tracker, the SaveModelCallback cell (in a temporary folder, not Path.cwd()/'tmp')
    tmp = tmp_path / 'tmp'
    learn = synth_learner(n_trn=2, path=tmp)
    learn.fit(n_epoch=2, cbs=SaveModelCallback())
    assert (tmp / 'models/model.pth').exists()
    learn = synth_learner(n_trn=2, path=tmp)
    learn.fit(n_epoch=2, cbs=SaveModelCallback(fname='end', at_end=True))
    assert (tmp / 'models/end.pth').exists()
    learn.fit(n_epoch=2, cbs=SaveModelCallback(every_epoch=True))
    for i in range(2): assert (tmp / f'models/model_{i}.pth').exists()
    shutil.rmtree(tmp)
    learn.fit(n_epoch=4, cbs=SaveModelCallback(every_epoch=2))
    for i in range(4):
        if not i % 2: assert (tmp / f'models/model_{i}.pth').exists()
        else: assert not (tmp / f'models/model_{i}.pth').exists()
    shutil.rmtree(tmp)


def test_reduce_lr_on_plateau(synth_learner):
    # 17_callback.tracker, the ReduceLROnPlateau cells and their "test_eq(learn.opt.hypers[-1]['lr'], 1e-8)"
    learn = synth_learner(n_trn=2)
    learn.fit(n_epoch=4, lr=1e-7, cbs=ReduceLROnPlateau(monitor='valid_loss', min_delta=0.1, patience=2))
    eq(learn.opt.hypers[-1]['lr'], 1e-8)
    learn = synth_learner(n_trn=2)
    learn.fit(n_epoch=6, lr=5e-8, cbs=ReduceLROnPlateau(monitor='valid_loss', min_delta=0.1, patience=2, min_lr=1e-8))
    eq(learn.opt.hypers[-1]['lr'], 1e-8)


# ---------------------------------------------------------------------------------------------------------------------
# 18a_callback.training
# ---------------------------------------------------------------------------------------------------------------------
def test_short_epoch(synth_learner):
    # 18a_callback.training, cells "learn.fit(1, cbs=ShortEpochCallback())" and "... short_valid=False"
    learn = synth_learner()
    learn.fit(1, cbs=ShortEpochCallback())
    learn = synth_learner()
    learn.fit(1, cbs=ShortEpochCallback(short_valid=False))


class GetGrads(Callback):
    # 18a_callback.training, the hidden cell defining `GetGrads` and `_test_acc`
    run_valid, order = False, GradientAccumulation.order + 1
    def before_step(self): self.grads = to_detach(L([p.grad.clone() for p in self.model.parameters()]))


def test_gradient_accumulation(synth_learner, way):
    # 18a_callback.training, the hidden cell "# grads should be same, valid loss same, train loss different", and
    # "learn.fit(1, lr=0.01, cbs=GradientAccumulation(n_acc=1000))"
    def _test_acc(bs, n, cbs=None):
        with no_random(99):
            db = synth_data(way, bs=bs, n_train=n, n_valid=n)
            learn = synth_learner(data=db, cbs=[GetGrads] + L(cbs))
            learn.fit(1, lr=0.01)
            train, valid = learn.recorder.values[-1]
            return train, valid, learn.get_grads.grads
    acc_cb = GradientAccumulation(n_acc=8)
    train1, valid1, grads1 = _test_acc(8, 1)
    train2, valid2, grads2 = _test_acc(1, 8, acc_cb)
    close(grads2, grads1)
    close(valid2, valid1)
    ne(train2, train1)

    learn = synth_learner()
    learn.fit(1, lr=0.01, cbs=GradientAccumulation(n_acc=1000))
    # ensure valid_loss didn't change
    assert learn.recorder.values[-1][1] == learn.recorder.values[0][1]


def test_gradient_clip(synth_learner):
    # 18a_callback.training, the GradientClip cells, on the CPU without MixedPrecision (its cells need CUDA)
    torch.manual_seed(99)
    learn = synth_learner(lr=1.1)
    learn.fit(3, cbs=GradientClip)


# ---------------------------------------------------------------------------------------------------------------------
# Cancel exceptions: every event x every cancel exception, the events seen compared with fastai's Learner
# ---------------------------------------------------------------------------------------------------------------------
CANCELS = {'batch': CancelBatchException, 'backward': CancelBackwardException, 'step': CancelStepException,
           'train': CancelTrainException, 'validate': CancelValidException, 'epoch': CancelEpochException,
           'fit': CancelFitException}
MAIN_EVENTS = ['before_fit', 'before_epoch', 'before_train', 'before_batch', 'after_pred', 'after_loss', 'before_backward',
               'after_backward', 'before_step', 'after_step', 'after_batch', 'after_train', 'before_validate',
               'after_validate', 'after_epoch', 'after_fit']
# An after_cancel_X event happens only after a CancelXException: it is triggered at X's first event.
TRIGGER = {'batch': 'after_pred', 'backward': 'before_backward', 'step': 'before_step', 'train': 'before_train',
           'validate': 'before_validate', 'epoch': 'before_epoch', 'fit': 'before_epoch'}
EVENTS = MAIN_EVENTS + [f'after_cancel_{k}' for k in CANCELS]


class Tracer(Callback):
    "Records every event it sees (fastai's VerboseCallback, into a list)."
    order = -100
    def __init__(self): self.seen = []
    def __call__(self, event_name):
        self.seen.append(event_name)
        return super().__call__(event_name)


class RaiseOnce(Callback):
    "Raise `ex` the first time `event_name` happens."
    def __init__(self, event_name, ex):
        self.n = 0
        def raiser(cb):
            cb.n += 1
            if cb.n == 1: raise ex()
        setattr(self, event_name, raiser.__get__(self))


def _regression():
    dls = RegDataLoaders.from_arrays(torch.linspace(-1, 1, 40), torch.linspace(-1, 1, 40) * 3 + 2, valid_pct=.25, bs=8)
    model = RegModel()
    with torch.no_grad(): model.a.fill_(.5); model.b.fill_(-.5)
    return dls, model


def _classification():
    "Two overlapping classes of two features, and a logistic model from a fixed start."
    x = torch.stack([torch.linspace(-1, 1, 40), torch.linspace(-1, 1, 40).flip(0) * .5], 1)
    y = (x[:, 0] + .4 * torch.sin(7 * torch.arange(40.)) > 0).long()
    return ClsDataLoaders.from_arrays(x, y, valid_pct=.25, bs=8), LogisticModel(2, init=dict(w=[.5, -.5], b=.1))


def _cancel_trace(make, event_name, ex, problem=_regression):
    "(events seen, exception that escaped the fit or None, parameters after) for one learner."
    dls, model = problem()
    tracer, cbs = Tracer(), []
    if event_name.startswith('after_cancel_'):
        kind = event_name[len('after_cancel_'):]
        cbs.append(RaiseOnce(TRIGGER[kind], CANCELS[kind]))
    cbs.append(RaiseOnce(event_name, ex))
    learn = make(dls, model, [tracer] + cbs)
    escaped = None
    with learn.no_logging(), learn.no_bar():
        try: learn.fit(2)
        except Exception as e: escaped = type(e).__name__
    return tracer.seen, escaped, torch.cat([p.detach().flatten() for p in model.parameters()])


MAKERS = {
    'stock': lambda dls, model, cbs: Learner(dls, model, loss_func=F.mse_loss, opt_func=SGD, lr=.1, cbs=cbs),
    'lean': lambda dls, model, cbs: regression_learner(dls, model, lr=.1, cbs=cbs, history=False),
    'history': lambda dls, model, cbs: regression_learner(dls, model, lr=.1, cbs=cbs),
}


@pytest.mark.parametrize('ex', list(CANCELS.values()), ids=list(CANCELS))
@pytest.mark.parametrize('event_name', EVENTS)
def test_cancel_exception_traces_match_fastai(event_name, ex):
    stock = _cancel_trace(MAKERS['stock'], event_name, ex)
    for name in ('lean', 'history'):
        seen, escaped, params = _cancel_trace(MAKERS[name], event_name, ex)
        assert (seen, escaped) == stock[:2], (name, event_name, ex)
        torch.testing.assert_close(params, stock[2])
    assert stock[0][:2] == ['after_create', 'before_fit']  # the trace is a real one


# classification_learner: the same lean loop, against fastai's Learner with the same model, loss and metric
CLS_MAKERS = {
    'stock': lambda dls, model, cbs: Learner(dls, model, loss_func=BCEWithLogits(), opt_func=SGD, lr=.1, cbs=cbs,
                                             metrics=binary_accuracy),
    'classification': lambda dls, model, cbs: classification_learner(dls, model, lr=.1, cbs=cbs),
}


@pytest.mark.parametrize('ex', list(CANCELS.values()), ids=list(CANCELS))
@pytest.mark.parametrize('event_name', EVENTS)
def test_cancel_exception_traces_match_fastai_for_a_classifier(event_name, ex):
    stock = _cancel_trace(CLS_MAKERS['stock'], event_name, ex, _classification)
    seen, escaped, params = _cancel_trace(CLS_MAKERS['classification'], event_name, ex, _classification)
    assert (seen, escaped) == stock[:2], (event_name, ex)
    torch.testing.assert_close(params, stock[2])


def test_classifier_recorder_and_metrics_match_fastai():
    "The same fit, fastai's Learner and classification_learner: the recorder's losses, values and metric names agree."
    logs = {}
    for name, make in CLS_MAKERS.items():
        dls, model = _classification()
        learn = make(dls, model, [])
        with learn.no_logging(), learn.no_bar(): learn.fit(3)
        logs[name] = learn
    stock, ours = logs['stock'], logs['classification']
    eq(list(ours.recorder.metric_names), list(stock.recorder.metric_names))
    close(np.array(ours.recorder.values), np.array(stock.recorder.values))
    close([float(v) for v in ours.recorder.losses], [float(v) for v in stock.recorder.losses])
    p1, t1 = stock.get_preds()
    p2, t2 = ours.get_preds()
    close(p1, p2); eq(t1, t2)
    eq(ours.predict([.3, -.1])[0], stock.predict([.3, -.1])[0])


# ---------------------------------------------------------------------------------------------------------------------
# fastfit's own learner, under the same contract
# ---------------------------------------------------------------------------------------------------------------------
def test_fastfit_learners_are_fastai_learners(way):
    learn = make_synth_learner(way)
    assert isinstance(learn, Learner)
    if way != 'stock':
        assert isinstance(learn, RegLearner)
        assert isinstance(learn.recorder, Recorder) and isinstance(learn.train_eval, TrainEvalCallback)
        assert (getattr(learn, 'param_history', None) is not None) == (way != 'lean')
        assert all(isinstance(c, ParamHistory) for c in learn.cbs[len(learn.cbs) - (way != 'lean'):])


def _full_batch(problem):
    "`problem` with its loaders made full batch (one batch a phase): the lean loop runs those phases inline."
    def make():
        dls, model = problem()
        full = type(dls).from_arrays(torch.cat([dls.train.x, dls.valid.x]), torch.cat([dls.train.y, dls.valid.y]),
                                     valid_pct=len(dls.valid.x) / (len(dls.train.x) + len(dls.valid.x)), bs=None)
        assert full.train.full_batch and full.valid.full_batch and len(full.train) == len(full.valid) == 1
        return full, model
    return make


@pytest.mark.parametrize('ex', list(CANCELS.values()), ids=list(CANCELS))
@pytest.mark.parametrize('event_name', EVENTS)
def test_cancel_exception_traces_match_fastai_full_batch(event_name, ex):
    "Full batch (the phases and the batch run inline): the same events, escapes and parameters as fastai's Learner."
    for makers, problem, name in [(MAKERS, _regression, 'lean'), (CLS_MAKERS, _classification, 'classification')]:
        problem = _full_batch(problem)
        stock = _cancel_trace(makers['stock'], event_name, ex, problem)
        seen, escaped, params = _cancel_trace(makers[name], event_name, ex, problem)
        assert (seen, escaped) == stock[:2], (name, event_name, ex)
        torch.testing.assert_close(params, stock[2])

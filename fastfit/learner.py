"`regression_learner`: a fastai `Learner` with MSE and plain SGD; losses; the least-squares optimum."
from __future__ import annotations

import math
import time
from contextlib import contextmanager

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
    _inner_loop,
    event,
)
from fastai.callback.schedule import LRFinder
from fastai.learner import CastToTensor, Learner, Recorder, _maybe_item
from fastai.optimizer import SGD, Optimizer, l2_reg, sgd_step, weight_decay
from fastcore.basics import getcallable, noop, patch
from fastcore.meta import delegates
from fastprogress.fastprogress import format_time

from .data import RegDataLoaders, TensorDL, check_positive
from .history import ParamHistory
from .models import LinearModel, RegModel
from .progress import FitProgress

__all__ = ['RegLearner', 'regression_learner', 'huber']


def huber(delta:float=1.):
    "Huber loss with threshold `delta` (quadratic below it, linear above)."
    delta = check_positive('delta', delta)
    def huber(pred, targ): return F.huber_loss(pred, targ, delta=delta)
    huber.__name__ = f'huber(delta={delta:g})'
    return huber


_cancels = (CancelBatchException, CancelBackwardException, CancelEpochException, CancelFitException,
            CancelStepException, CancelTrainException, CancelValidException)
_inner = frozenset(_inner_loop)


class RegLearner(Learner):
    "A fastai `Learner` with cached event dispatch, a lean batch loop, and a stop (with advice) when the loss diverges."
    records_loss_value = True  # `loss_value`: the training loss as a float, set every training step
    _check_div, _step_count, loss_value, _plain_sgd, _plain_batches = True, 0, None, False, False

    def __init__(self, *args, **kwargs):
        self._handlers = {}  # event name -> ((callback, bound handler or None, inner-loop event), ...) in order
        self.diverged = None  # the step at which the training loss became NaN/inf, if it did
        super().__init__(*args, **kwargs)

    # -- dispatch: fastai's `Callback.__call__` semantics, but the handlers of each event are looked up once --------
    def add_cb(self, cb):
        self._handlers = {}
        return super().add_cb(cb)

    def remove_cb(self, cb):
        self._handlers = {}
        return super().remove_cb(cb)

    def _event_handlers(self, event_name):
        if not hasattr(event, event_name): raise Exception(f'missing {event_name}')
        hs, inner = [], event_name in _inner
        for cb in self.cbs.sorted('order'):
            # A callback with its own `__call__` (e.g. `VerboseCallback`) sees every event, as in fastai.
            if type(cb).__call__ is not Callback.__call__: hs.append((cb, None, inner))
            else:
                f = getcallable(cb, event_name)
                if f is not noop: hs.append((cb, f, inner))
        self._handlers[event_name] = hs = tuple(hs)
        return hs

    def __call__(self, event_name):
        if isinstance(event_name, str): self._call_one(event_name)
        else:
            for e in event_name: self._call_one(e)

    def _call_one(self, event_name):
        # after_fit also resets every callback's `run`: fastai's own loop does that (once per fit, so no cost).
        if event_name == 'after_fit': return super()._call_one(event_name)
        if event_name == 'before_fit': self._handlers = {}  # catches edits of `learn.cbs` that bypass add_cb
        hs = self._handlers.get(event_name)
        if hs is None: hs = self._event_handlers(event_name)
        for cb, f, inner in hs:
            if f is None: cb(event_name); continue
            if not cb.run or (inner and not (cb.run_train if self.training else cb.run_valid)): continue
            try: f()
            except _cancels: raise
            except Exception as e:
                msg = e.args[0] if e.args else ''
                raise _modify(e, f'Exception occured in `{type(cb).__name__}` when calling event `{event_name}`:\n\t{msg}')

    def __getstate__(self):
        state = super().__getstate__()
        state.pop('_handlers', None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._handlers = {}

    # -- the loop --------------------------------------------------------------------------------------------------
    def fit(self, n_epoch, lr=None, wd=None, cbs=None, reset_opt=False, start_epoch=0):
        if isinstance(lr, (int, float)): lr = check_positive('lr', lr)  # fastai would happily climb the loss
        self.diverged = None
        super().fit(n_epoch, lr=lr, wd=wd, cbs=cbs, reset_opt=reset_opt, start_epoch=start_epoch)
        if self.diverged is not None:
            lr = self.opt.hypers[-1]['lr']
            print(f"fastfit: the training loss diverged (NaN/inf) at step {self.diverged}, so the fit stopped there: "
                  f"try a smaller lr, e.g. lr={lr / 10:.3g} (a tenth of the {lr:.3g} used), or learn.lr_find()")

    def _do_fit(self):
        # Divergence is checked on training batches, except in lr_find, which explores lrs until the loss blows up.
        self._check_div = not any(isinstance(cb, LRFinder) for cb in self.cbs)
        self._step_count = 0
        o = self.opt
        # fastai's SGD without momentum is `p -= lr*grad` (its weight decay a no-op at wd=0): one foreach op per group
        # does it, instead of a Python loop of dict merges per parameter. Any other optimizer runs as it is.
        self._plain_sgd = (type(o) is Optimizer and list(o.cbs) in ([weight_decay, sgd_step], [l2_reg, sgd_step]))
        # `set_hyper` (schedulers) updates these dicts in place, so the groups can be listed once per fit.
        self._groups = [(list(pg), h) for pg, h in zip(o.param_lists, o.hypers)]
        super()._do_fit()

    def _step(self):
        if not self._plain_sgd: return self.opt.step()
        for _, h in self._groups:
            if h['wd'] != 0: return self.opt.step()
        with torch.no_grad():
            for pg, h in self._groups:
                ps = [p for p in pg if p.grad is not None]
                if ps: torch._foreach_add_(ps, [p.grad for p in ps], alpha=-h['lr'])

    def _do_grad_opt(self):
        self._with_events(self._backward, 'backward', CancelBackwardException)
        self._with_events(self._step, 'step', CancelStepException)
        if not self._plain_sgd: return self.opt.zero_grad()
        grads = [p.grad for pg, _ in self._groups for p in pg if p.grad is not None]
        if grads:
            for g in grads: g.detach_()
            torch._foreach_zero_(grads)

    @property
    def smooth_loss(self):
        "The smoothed training loss, a tensor as in fastai (`RegRecorder` keeps it as a float until asked)."
        v = self.__dict__.get('_smooth_loss')
        return torch.tensor(v) if isinstance(v, float) else v

    @smooth_loss.setter
    def smooth_loss(self, v): self._smooth_loss = v

    def all_batches(self):
        # fastfit's loaders yield (x, y) already where the model is: then skip fastai's generic `to_device`/`_split`.
        dl = self.dl
        self._plain_batches = (type(dl) is TensorDL and type(self.dls) is RegDataLoaders
                               and dl.device == self._model_device())
        super().all_batches()

    def one_batch(self, i, b):
        self.iter = i
        if self._plain_batches: self.xb, self.yb = (b[0],), (b[1],)
        else: self._split(self._set_device(b))
        self._with_events(self._do_one_batch, 'batch', CancelBatchException)

    def _model_device(self):
        p = next(self.model.parameters(), None)
        return None if p is None else p.device

    def _do_one_batch(self):
        self.pred = self.model(*self.xb)
        self('after_pred')
        if len(self.yb):
            self.loss_grad = self.loss_func(self.pred, *self.yb)
            self.loss = self.loss_grad.clone()
            if self.training and self._check_div:
                # One `.item()` per step serves both the divergence check and the history's loss record.
                self.loss_value = v = self.loss.item()
                if not math.isfinite(v):
                    self.diverged = self._step_count
                    raise CancelFitException()
        self('after_loss')
        if not self.training or not len(self.yb): return
        self._do_grad_opt()
        self._step_count += 1

    def _do_epoch_validate(self, ds_idx=1, dl=None):
        if dl is None and len(self.dls[ds_idx]) == 0: return
        super()._do_epoch_validate(ds_idx, dl)

    @contextmanager
    def no_bar(self):
        "Context manager that hides the progress bar (the thinned table of epochs still goes to the logger)."
        pr = getattr(self, 'progress', None)
        if not isinstance(pr, FitProgress):
            with Learner.no_bar(self): yield self
            return
        old, pr.show_bar = pr.show_bar, False
        try: yield self
        finally: pr.show_bar = old


class RegCastToTensor(CastToTensor):
    "fastai's `CastToTensor`, skipping batches that are plain tensors already (fastfit's always are)."
    @property
    def name(self): return 'cast_to_tensor'

    def before_batch(self):
        l = self.learn
        for t in l.xb + l.yb:
            if type(t) is not torch.Tensor: return super().before_batch()


class RegTrainEval(TrainEvalCallback):
    "fastai's `TrainEvalCallback`, reading the learner's attributes directly (no `GetAttr` look-ups per step)."
    __setattr__ = object.__setattr__
    @property
    def name(self): return 'train_eval'

    def after_batch(self):
        l = self.learn
        l.pct_train += 1. / (l.n_iter * l.n_epoch)
        l.train_iter += 1

    def before_train(self):
        l = self.learn
        l.pct_train = l.epoch / l.n_epoch
        l.model.train()
        l.training = True


class RegRecorder(Recorder):
    "fastai's `Recorder` with the smoothed loss kept as Python floats: the same `losses`, `lrs`, `values`, `iters`, log."
    __setattr__ = object.__setattr__
    @property
    def name(self): return 'recorder'

    def before_fit(self):
        super().before_fit()
        self._count, self._val, self._smooth = 0, 0., float('nan')

    def after_batch(self):
        l = self.learn
        if not l.training: return super().after_batch()
        if not len(l.yb): return
        if self.train_metrics:
            for met in self.metrics: met.accumulate(l)
        # RegLearner's `loss_value` is this step's loss already as a float (its divergence check).
        v = l.loss_value if l._check_div else float(l.loss.detach().mean())
        self._count += 1
        self._val = self.beta * self._val + (1 - self.beta) * v  # fastai: torch.lerp(loss, val, beta)
        self._smooth = self._val / (1 - self.beta ** self._count)
        self.lrs.append(l.opt.hypers[-1]['lr'])
        self.losses.append(self._smooth)
        l.smooth_loss = self._smooth

    @property
    def beta(self): return self.smooth_loss.beta

    def before_epoch(self):
        self.cancel_train = self.cancel_valid = False
        if self.add_time: self.start_epoch = time.time()
        self.log = [self.learn.epoch]

    def before_train(self):
        if self.train_metrics:
            for met in self.metrics: met.reset()

    def after_train(self):
        if self.cancel_train: return
        self.log.append(self._smooth)
        if self.train_metrics: self.log += [_maybe_item(m) for m in self.metrics]

    def after_validate(self):
        if not self.cancel_valid: self.log += [_maybe_item(m) for m in self._valid_mets]

    def after_epoch(self):
        self.learn.final_record = rec = self.log[1:]
        self.values.append(rec)
        if self.add_time: self.log.append(format_time(time.time() - self.start_epoch))
        self.learn.logger(self.log)
        self.iters.append(self._count)


def _modify(e, msg):
    e.args = [msg]
    return e


def _check_model_and_loss(dls, model, loss_func):
    "Run the model and loss on two training rows, so mismatched shapes fail here with a clear message."
    x, y = dls.train.x[:2], dls.train.y[:2]
    if not isinstance(model, torch.nn.Module): raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    model.to(x.device)
    if not list(model.parameters()): raise ValueError(f"model {model!r} has no parameters to fit")
    if isinstance(model, RegModel) and model.n_features is not None: model._check_features(dls.train.x, model.n_features)
    # As in training (grad enabled): a model may compute differently under no_grad (validation).
    try: pred = model(x)
    except RuntimeError as e:
        raise ValueError(f"model {model!r} cannot take the data's x of shape {tuple(dls.train.x.shape)} "
                         f"({dls.n_in} feature(s)): {e} (on its first {len(x)} rows); "
                         f"make the model's inputs match the data's features") from e
    if not isinstance(pred, torch.Tensor) or pred.shape != y.shape:
        shape = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"model {model!r} returns predictions of shape {shape} for x of shape {tuple(x.shape)}, "
                         f"but y has shape {tuple(y.shape)}: return one prediction per row, shape (n, 1)")
    try: loss = loss_func(pred, y)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} failed on predictions and targets of "
                         f"shape {tuple(y.shape)}: {e}; it must take (pred, targ) and return a scalar tensor") from e
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and not torch.isfinite(loss.detach()):
        raise ValueError(f"the loss at the initial parameters is already {loss.item()} (|y| up to {float(y.abs().max()):.3g} "
                         f"on the first rows): rescale x and y (e.g. standardise them) so float32 can hold the errors")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} must return a scalar tensor, "
                         f"got {shape}: reduce it, e.g. with .mean()")


@delegates(Learner.__init__)
def regression_learner(
    dls:RegDataLoaders, # the data, e.g. `synth_linear().dataloaders()` or `RegDataLoaders.from_arrays(x, y)`
    model=None, # default: `LinearModel(n_in=dls.n_in)`
    loss_func=None, # any (pred, targ) -> scalar tensor; default: MSE (`F.mse_loss`)
    opt_func=SGD, # fastai optimizer; default plain SGD (no momentum, no weight decay)
    lr:float=.1, # learning rate
    history:bool=True, # attach a `ParamHistory` callback (`learn.param_history`)
    cbs=None, # more callbacks
    metrics=None, # fastai metrics
    **kwargs
) -> RegLearner:
    "A fastai `Learner` for regression: MSE, plain SGD and the parameter history by default."
    if not isinstance(dls, RegDataLoaders):
        raise TypeError(f"dls must be RegDataLoaders (from `SynthData.dataloaders()` or `RegDataLoaders.from_arrays`), "
                        f"got {type(dls).__name__}")
    lr = check_positive('lr', lr)
    if model is None: model = LinearModel(n_in=dls.n_in)
    if loss_func is None: loss_func = F.mse_loss  # shapes were checked equal: no broadcasting surprise
    if not callable(opt_func): raise TypeError(f"opt_func must be a fastai optimizer function such as SGD or Adam, got {opt_func!r}")
    if not callable(loss_func): raise TypeError(f"loss_func must be callable (pred, targ) -> scalar, got {loss_func!r}")
    _check_model_and_loss(dls, model, loss_func)
    cbs = list(cbs) if isinstance(cbs, (list, tuple)) else [] if cbs is None else [cbs]
    if history and not any(isinstance(c, ParamHistory) for c in cbs): cbs.append(ParamHistory())
    learn = RegLearner(dls, model, loss_func=loss_func, opt_func=opt_func, lr=lr, cbs=cbs, metrics=metrics, **kwargs)
    if not dls.has_valid: learn.recorder.valid_metrics = False
    _lean_default_cbs(learn)
    return learn


def _lean_default_cbs(learn):
    "Swap fastai's default callbacks for their lean fastfit subclasses (same names, same records)."
    tev, rec, pr, cast = (getattr(learn, k, None) for k in ('train_eval', 'recorder', 'progress', 'cast_to_tensor'))
    if type(cast) is CastToTensor: learn.remove_cb(cast).add_cb(RegCastToTensor())
    if type(tev) is TrainEvalCallback: learn.remove_cb(tev).add_cb(RegTrainEval())
    if type(rec) is Recorder:
        # Full batch: every step's loss is exact, so the train_loss column shows it rather than fastai's running mean.
        beta = 0. if getattr(learn.dls.train, 'full_batch', False) else rec.smooth_loss.beta
        new = RegRecorder(add_time=rec.add_time, train_metrics=rec.train_metrics, valid_metrics=rec.valid_metrics, beta=beta)
        learn.remove_cb(rec).add_cb(new)
    # fastai's ProgressCallback prints one table row per epoch: ours prints at most ~20 and one bar.
    if type(pr).__name__ == 'ProgressCallback': learn.remove_cb(pr).add_cb(FitProgress())


@patch
def train_loss(self:Learner, params:dict|None=None) -> float:
    "The loss on the whole training set at `params` (name -> tensor, e.g. `learn.ols()`; default: the model as it is)."
    dl = self.dls.train
    with torch.no_grad():
        if params is None: return float(self.loss_func(self.model(dl.x), dl.y))
        params = {k: torch.as_tensor(v).to(dl.x.device) for k, v in params.items()}
        return float(self.loss_func(torch.func.functional_call(self.model, params, (dl.x,)), dl.y))


@patch
def ols(self:Learner) -> dict:
    "The least-squares optimum on the training data for models linear in their parameters, by parameter name."
    model = self.model
    X = model.design(self.dls.train.x) if isinstance(model, RegModel) else None
    if X is None:
        raise TypeError(f"ols() needs a model linear in its parameters (LinearModel, PolyModel), got {model!r}")
    theta = torch.linalg.lstsq(X.double().cpu(), self.dls.train.y.double().cpu()).solution.flatten().float()
    out, i = {}, 0
    for k, p in model.named_parameters():
        n = p.numel()
        out[k] = theta[i:i + n].reshape(p.shape)
        i += n
    return out


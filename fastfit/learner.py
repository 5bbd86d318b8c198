"`regression_learner`: a fastai `Learner` with MSE and plain SGD; losses; the least-squares optimum."
from __future__ import annotations

import math

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from fastai.callback.core import (Callback, CancelBackwardException, CancelBatchException, CancelEpochException,
                                  CancelFitException, CancelStepException, CancelTrainException, CancelValidException,
                                  _inner_loop, event)
from fastai.callback.schedule import LRFinder
from fastai.learner import Learner
from fastai.optimizer import SGD
from fastcore.basics import getcallable, noop, patch
from fastcore.meta import delegates

from .data import RegDataLoaders, check_positive
from .history import ParamHistory
from .models import LinearModel, RegModel
from .progress import FitProgress

__all__ = ['RegLearner', 'regression_learner', 'mse', 'huber']


def mse(pred, targ):
    "Mean squared error (`F.mse_loss`; shapes are checked once, by `regression_learner`)."
    return F.mse_loss(pred, targ)


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
    _check_div, _step_count, loss_value = True, 0, None

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
        super()._do_fit()

    def one_batch(self, i, b):
        self.iter = i
        dl = self.dl
        # fastfit's loaders already hold their tensors where the model is: skip fastai's generic `to_device`.
        if not (getattr(dl, 'device', None) is not None and len(b) == 2 and b[0].device == dl.device
                and dl.device == self._model_device()): b = self._set_device(b)
        if len(b) == 2 and not hasattr(self.dls, 'n_inp'): self.xb, self.yb = (b[0],), (b[1],)
        else: self._split(b)
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


def _modify(e, msg):
    e.args = [msg]
    return e


def _check_model_and_loss(dls, model, loss_func):
    "Run the model and loss on two training rows, so mismatched shapes fail here with a clear message."
    x, y = dls.train.x[:2], dls.train.y[:2]
    try: model.to(x.device)
    except AttributeError: raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}") from None
    if not list(model.parameters()): raise ValueError(f"model {model!r} has no parameters to fit")
    with torch.no_grad():
        try: pred = model(x)
        except RuntimeError as e:
            raise ValueError(f"model {model!r} failed on a batch of x with shape {tuple(x.shape)} "
                             f"(the data has {x.shape[1]} feature(s)): {e}") from e
        if not isinstance(pred, torch.Tensor) or pred.shape != y.shape:
            shape = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise ValueError(f"model {model!r} returns predictions of shape {shape} for x of shape {tuple(x.shape)}, "
                             f"but y has shape {tuple(y.shape)}: return one prediction per row, shape (n, 1)")
        loss = loss_func(pred, y)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_func must return a scalar tensor, got {shape}: reduce it, e.g. with .mean()")


@delegates(Learner.__init__)
def regression_learner(
    dls:RegDataLoaders, # the data, e.g. `synth_linear().dataloaders()` or `RegDataLoaders.from_arrays(x, y)`
    model=None, # default: `LinearModel(n_in=dls.n_in)`
    loss_func=None, # any (pred, targ) -> scalar tensor; default: MSE
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
    if loss_func is None: loss_func = mse
    if not callable(loss_func): raise TypeError(f"loss_func must be callable (pred, targ) -> scalar, got {loss_func!r}")
    _check_model_and_loss(dls, model, loss_func)
    cbs = list(cbs) if isinstance(cbs, (list, tuple)) else [] if cbs is None else [cbs]
    if history: cbs.append(ParamHistory())
    learn = RegLearner(dls, model, loss_func=loss_func, opt_func=opt_func, lr=lr, cbs=cbs, metrics=metrics, **kwargs)
    if not dls.has_valid: learn.recorder.valid_metrics = False
    # fastai's ProgressCallback prints one table row per epoch: ours prints at most ~20 and one bar.
    if type(getattr(learn, 'progress', None)).__name__ == 'ProgressCallback':
        learn.remove_cb(learn.progress)
        learn.add_cb(FitProgress())
    return learn


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


def _finite(v): return v is not None and math.isfinite(v)

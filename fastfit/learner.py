"`regression_learner`: a fastai `Learner` with MSE and plain SGD; losses; the least-squares optimum."
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from fastai.learner import Learner
from fastai.optimizer import SGD
from fastcore.basics import patch
from fastcore.meta import delegates

from .data import RegDataLoaders, check_positive
from .history import ParamHistory
from .models import LinearModel, RegModel

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


class RegLearner(Learner):
    "A fastai `Learner` that skips the validation phase when there is no validation set."
    def _do_epoch_validate(self, ds_idx=1, dl=None):
        if dl is None and len(self.dls[ds_idx]) == 0: return
        super()._do_epoch_validate(ds_idx, dl)


def _check_model_and_loss(dls, model, loss_func):
    "Run the model and loss on two training rows, so mismatched shapes fail here with a clear message."
    x, y = dls.train.x[:2], dls.train.y[:2]
    if not isinstance(model, torch.nn.Module): raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    model.to(x.device)
    if not list(model.parameters()): raise ValueError(f"model {model!r} has no parameters to fit")
    if isinstance(model, RegModel) and model.n_features is not None: model._check_features(dls.train.x, model.n_features)
    with torch.no_grad():
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
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} must return a scalar tensor, "
                         f"got {shape}: reduce it, e.g. with .mean()")


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

"""`FitLearner`, fastfit's fastai `Learner` (its classes: `RegLearner` here, `ClsLearner` in `classify`);
`regression_learner` (MSE and plain SGD); losses; `learn.optimum()`, the loss's minimiser (solved in `optimum`), and `learn.ols()`."""
from __future__ import annotations

import os
import pickle
import tempfile
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path

import fastai.callback.hook  # noqa: F401 (Learner.summary)
import numpy as np
import torch
import torch.nn.functional as F
from fastai.learner import Learner
from fastai.optimizer import SGD
from fastai.torch_core import rank_distrib
from fastcore.basics import PrettyString, patch
from fastcore.foundation import L
from fastcore.meta import delegates

from .data import ClsDataLoaders, RegDataLoaders, TensorDL, check_positive, mean_over_rows
from .fastai_private import LeanLoop, use_lean_callbacks
from .history import ParamHistory
from .models import LinearModel, RegModel, model_name, private_model
from .optimum import MAX_SECONDS, optimum_of
from .progress import FitProgress

__all__ = ['FitLearner', 'RegLearner', 'regression_learner', 'huber']


def huber(delta:float=1.):
    "Huber loss with threshold `delta` (quadratic below it, linear above)."
    delta = check_positive('delta', delta)
    def huber(pred, targ): return F.huber_loss(pred, targ, delta=delta)
    huber.__name__ = f'huber(delta={delta:g})'
    return huber


def check_lr(name, lr):
    "`lr` as fastai takes it (a number, a slice, or one per parameter group), every value a finite number > 0."
    if lr is None: return None
    if isinstance(lr, slice):
        if lr.step is not None or lr.stop is None:
            raise ValueError(f"{name} as a slice must be slice(stop) or slice(start, stop), got {lr!r}")
        return slice(None if lr.start is None else check_positive(f'{name}.start', lr.start), check_positive(f'{name}.stop', lr.stop))
    if isinstance(lr, torch.Tensor) and lr.ndim == 0: lr = lr.item()
    if isinstance(lr, (list, tuple, np.ndarray, torch.Tensor)):
        vals = np.asarray(lr.detach().cpu() if isinstance(lr, torch.Tensor) else lr, dtype=object).ravel().tolist()
        if not vals: raise ValueError(f"{name} must hold one lr per parameter group, got an empty {type(lr).__name__}")
        vals = [check_positive(f'{name}[{i}]', v) for i, v in enumerate(vals)]
        return np.array(vals) if isinstance(lr, (np.ndarray, torch.Tensor)) else vals
    return check_positive(name, lr)


class FitLearner(LeanLoop, Learner):
    """A fastai `Learner` with a lean loop (`fastfit.fastai_private`), checked arguments, and a stop (with advice) on
    divergence: the base of `RegLearner` (regression) and `ClsLearner` (classification)."""
    fit_error = None  # the exception that cut the last fit short (Ctrl-C, an error in a callback), if one did

    def fit(self, n_epoch, lr=None, wd=None, cbs=None, reset_opt=False, start_epoch=0):
        n_epoch = check_positive('n_epoch', n_epoch, int)  # fastai returns silently on fit(-3)
        check_has_data(self, 'fit')
        self._check_new_data()
        lr = check_lr('lr', lr)  # fastai would happily climb the loss with a negative lr, or train nothing with 0
        if lr is None: check_lr('learn.lr', self.lr)
        start_epoch = check_positive('start_epoch', start_epoch, int, allow_zero=True)
        self.diverged = self.fit_error = None
        try: super().fit(n_epoch, lr=lr, wd=wd, cbs=cbs, reset_opt=reset_opt, start_epoch=start_epoch)
        except BaseException as e:
            self.fit_error = e
            raise
        if self.diverged is not None and self.report_divergence:
            lr = self.opt.hypers[-1]['lr']
            print(f"fastfit: the training loss diverged (NaN/inf) at step {self.diverged}, so the fit stopped there: "
                  f"try a smaller lr, e.g. lr={lr / 10:.3g} (a tenth of the {lr:.3g} used), or learn.lr_find()")

    data_check = None  # (dls, model, loss_func) -> None or an error: how the learner's function checked its data
    report_divergence = True  # say when a fit diverged (comparisons say it once for all their runs)

    def _check_new_data(self):
        "Data given after creation (`learn.dls = ...`) is checked as the learner's own was: shapes, a classifier's classes."
        if self.data_check is None or self.dls is self.__dict__.get('_dls_checked'): return
        # fastfit's loaders (raw torch ones, as fastai's tests swap in, are the user's to shape)
        if isinstance(self.dls, RegDataLoaders): self.data_check(self.dls, self.model, self.loss_func)
        self._dls_checked = self.dls

    # `learn.model = m` after the optimizer was made: fastai's optimizer keeps stepping the old model's parameters and
    # the new model trains not at all, without a word. Here the next fit makes an optimizer for it, and a warning says so.
    @property
    def model(self):
        d = self.__dict__
        return d['_model'] if '_model' in d else d.get('model')  # (a learner exported before this was a property)

    @model.setter
    def model(self, m):
        opt = self.__dict__.get('opt')
        held = getattr(opt, 'param_lists', None)
        if held is not None and isinstance(m, torch.nn.Module) and \
                {id(p) for ps in held for p in ps} != {id(p) for p in m.parameters()}:
            warnings.warn("learn.model was replaced after the learner made its optimizer, which holds the old model's "
                          "parameters (fastai would go on stepping those, training the new model not at all): the next "
                          "fit makes a new optimizer for the new model (its state, e.g. momentum, starts afresh)", stacklevel=2)
            self.opt = None
        self.__dict__.pop('model', None)
        self.__dict__['_model'] = m

    def add_cb(self, cb):
        """fastai's `add_cb`; a callback whose name is taken by another attached one (a second ParamHistory in
        `fit(cbs=...)`) runs beside it, and the name (`learn.param_history`) stays the first's."""
        if isinstance(cb, type): cb = cb()
        held = self.__dict__.get(getattr(cb, 'name', None) or '')
        super().add_cb(cb)
        if held is not None and held is not cb and held in self.cbs: setattr(self, cb.name, held)
        return self

    def remove_cb(self, cb):
        "fastai's `remove_cb`; the name stays with the callback that holds it (see `add_cb`)."
        held = None if isinstance(cb, type) else self.__dict__.get(getattr(cb, 'name', None) or '')
        super().remove_cb(cb)
        if held is not None and held is not cb and held in self.cbs: setattr(self, cb.name, held)
        return self

    def export(self, fname='export.pkl', pickle_module=pickle, pickle_protocol=2):
        """fastai's `export` (the model, its history and settings, not the data), written atomically: a failed export
        leaves no half-written file, and a file already there as it was."""
        if rank_distrib(): return  # fastai's: only the main process of a distributed run writes
        path = Path(self.path) / fname
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
        os.close(fd)
        try:
            mode = path.stat().st_mode & 0o7777 if path.exists() else None
            super().export(Path(tmp).resolve(), pickle_module=pickle_module, pickle_protocol=pickle_protocol)
            if mode is None:  # a new file: the permissions a new file gets (mkstemp's are the owner's only)
                umask = os.umask(0o022); os.umask(umask); mode = 0o666 & ~umask
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @delegates(Learner.fit_one_cycle)
    def fit_one_cycle(self, n_epoch, lr_max=None, **kwargs):
        "fastai's `fit_one_cycle`, with `n_epoch` and `lr_max` checked first."
        return super().fit_one_cycle(check_positive('n_epoch', n_epoch, int), lr_max=check_lr('lr_max', lr_max), **kwargs)

    @delegates(Learner.fit_flat_cos)
    def fit_flat_cos(self, n_epoch, lr=None, **kwargs):
        "fastai's `fit_flat_cos`, with `n_epoch` and `lr` checked first."
        return super().fit_flat_cos(check_positive('n_epoch', n_epoch, int), lr=check_lr('lr', lr), **kwargs)

    @delegates(Learner.fit_sgdr)
    def fit_sgdr(self, n_cycles, cycle_len, lr_max=None, **kwargs):
        "fastai's `fit_sgdr`, with its counts and `lr_max` checked first."
        return super().fit_sgdr(check_positive('n_cycles', n_cycles, int), check_positive('cycle_len', cycle_len, int),
                                lr_max=check_lr('lr_max', lr_max), **kwargs)

    @delegates(Learner.fine_tune)
    def fine_tune(self, epochs, base_lr=2e-3, **kwargs):
        "fastai's `fine_tune`, with `epochs` and `base_lr` checked first."
        return super().fine_tune(check_positive('epochs', epochs, int), base_lr=check_positive('base_lr', base_lr), **kwargs)

    @delegates(Learner.lr_find)
    def lr_find(self, start_lr=1e-7, end_lr=10, num_it=100, **kwargs):
        "fastai's `lr_find`, with the lr range and `num_it` checked first."
        start_lr, end_lr = check_lr('start_lr', start_lr), check_lr('end_lr', end_lr)
        return super().lr_find(start_lr=start_lr, end_lr=end_lr, num_it=check_positive('num_it', num_it, int), **kwargs)

    @delegates(Learner.get_preds)
    def get_preds(self, ds_idx=1, dl=None, **kwargs):
        "fastai's `get_preds`; a shuffled or drop_last fastfit loader is read whole and in order, as fastai does with its own."
        if isinstance(dl, TensorDL) and (dl.shuffle or dl.drop_last): dl = dl.new(shuffle=False, drop_last=False)
        return super().get_preds(ds_idx=ds_idx, dl=dl, **kwargs)

    def summary(self):
        "fastai's summary (input shape, parameters, optimizer, loss, callbacks), counting the parameters fastfit's models name."
        text = str(super().summary())
        named = list(self.model.named_parameters())
        total = sum(p.numel() for _, p in named)
        if f"Total params: {total:,}\n" in text or 'Optimizer used:' not in text: return PrettyString(text)
        # fastai counts only the parameters of layers with a `weight` (nn.Linear, ...); fastfit's models name theirs.
        head, tail = text.split('Optimizer used:', 1)
        trainable, n = sum(p.numel() for _, p in named if p.requires_grad), 76
        rows = [head.splitlines()[0], '=' * n, f"{'Parameter':<20} {'Shape':<20} {'Param #':<10} {'Trainable':<10}", '=' * n]
        rows += [f"{k:<20} {str(tuple(p.shape)):<20} {p.numel():<10} {str(p.requires_grad):<10}" for k, p in named]
        rows += ['_' * n, '', f"Total params: {total:,}", f"Total trainable params: {trainable:,}",
                 f"Total non-trainable params: {total - trainable:,}", '', '']
        return PrettyString('\n'.join(rows) + 'Optimizer used:' + tail)

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


def has_data(learn) -> bool:
    "Whether `learn` holds training samples (a learner from `load_learner` holds none: export keeps the model, not the data)."
    n = getattr(getattr(learn.dls, 'train', None), 'n', None)
    return n is None or n > 0


def check_has_data(learn, what:str):
    "A clear error when `learn` holds no training data for `what` (e.g. 'fit'), saying how to give it some."
    if not has_data(learn):
        raise ValueError(f"{what} needs training data, and this learner holds none: learn.export() keeps the model and its "
                         f"history, not the data, so a learner from load_learner has empty loaders. Give it data first, "
                         f"learn.dls = {type(learn.dls).__name__}.from_arrays(x, y) (data of the kind it was made with)")


def _first_pred(dls, model) -> tuple:
    "Run the model on two training rows (as in training: grad enabled), so mismatched inputs fail here; (x, y, pred)."
    x, y = dls.train.x[:2], dls.train.y[:2]
    if not isinstance(model, torch.nn.Module): raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    model.to(x.device)
    if not list(model.parameters()): raise ValueError(f"model {model_name(model)} has no parameters to fit")
    if isinstance(model, RegModel) and model.n_features is not None: model._check_features(dls.train.x, model.n_features)
    try: pred = model(x)
    except RuntimeError as e:
        raise ValueError(f"model {model_name(model)} cannot take the data's x of shape {tuple(dls.train.x.shape)} "
                         f"({dls.n_in} feature(s)): {e} (on its first {len(x)} rows); "
                         f"make the model's inputs match the data's features") from e
    return x, y, pred


def _check_loss(model, loss_func, pred, y):
    "The loss of the first predictions must be a finite scalar with a gradient, or a clear error."
    if not pred.requires_grad:
        raise ValueError(f"model {model_name(model)} returns predictions with no gradient: they do not depend on its parameters "
                         f"(all requires_grad=False, or computed under torch.no_grad()/with .detach()), so SGD cannot fit it")
    try: loss = loss_func(pred, y)
    except (RuntimeError, TypeError, ValueError, IndexError) as e:
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} failed on predictions of shape "
                         f"{tuple(pred.shape)} and targets of shape {tuple(y.shape)}: {e}; it must take (pred, targ) and "
                         f"return a scalar tensor") from e
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and not torch.isfinite(loss.detach()):
        raise ValueError(f"the loss at the initial parameters is already {loss.item()} (|y| up to {float(y.abs().max()):.3g} "
                         f"on the first rows): rescale x and y (e.g. standardise them) so float32 can hold the errors")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} must return a scalar tensor, "
                         f"got {shape}: reduce it, e.g. with .mean()")
    if not loss.requires_grad:
        raise ValueError(f"loss_func {getattr(loss_func, '__name__', loss_func)!r} returned {loss.item():.4g} with no gradient: "
                         f"it does not depend on the model's parameters. Compute it from pred with torch operations, e.g. "
                         f"((pred - targ) ** 2).mean(); .item(), .detach(), torch.tensor(...) or torch.no_grad() cut it off")


def _check_model_and_loss(dls, model, loss_func):
    "Run the model and loss on two training rows, so mismatched shapes fail here with a clear message."
    x, y, pred = _first_pred(dls, model)
    if not isinstance(pred, torch.Tensor) or pred.shape != y.shape:
        shape = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"model {model_name(model)} returns predictions of shape {shape} for x of shape {tuple(x.shape)}, "
                         f"but y has shape {tuple(y.shape)}: return one prediction per row, shape (n, 1)")
    _check_loss(model, loss_func, pred, y)


class RegLearner(FitLearner):
    "A `FitLearner` of continuous targets: what `regression_learner` returns."


def _check_reg_data(dls, model, loss_func):
    "Regression data for `model` and `loss_func`: what `regression_learner` checks (a learner given new data checks it too)."
    if isinstance(dls, ClsDataLoaders):
        raise TypeError(f"dls holds class labels ({dls.n_classes} classes): this learner fits a continuous target; use "
                        f"classification_learner(dls) for them")
    _check_model_and_loss(dls, model, loss_func)


def _learner(cls, dls, model, loss_func, opt_func, lr, history, cbs, metrics, data_check=_check_reg_data, **kwargs) -> FitLearner:
    "A `cls` (a `FitLearner`) with the history (when asked) and fastfit's lean default callbacks."
    cbs = L(cbs)  # one callback, a list, or a fastcore `L` (as fastai code passes them)
    if history and not any(isinstance(c, ParamHistory) or (isinstance(c, type) and issubclass(c, ParamHistory)) for c in cbs):
        cbs.append(ParamHistory())
    learn = cls(dls, model, loss_func=loss_func, opt_func=opt_func, lr=lr, cbs=cbs, metrics=metrics, **kwargs)
    if not dls.has_valid and hasattr(learn, 'recorder'): learn.recorder.valid_metrics = False
    # fastai's ProgressCallback prints one table row per epoch: ours prints at most ~20 and one bar.
    use_lean_callbacks(learn, full_batch=getattr(dls.train, 'full_batch', False), progress=FitProgress())
    learn.data_check, learn._dls_checked = data_check, dls
    return learn


def _check_callables(opt_func, loss_func):
    if not callable(opt_func): raise TypeError(f"opt_func must be a fastai optimizer function such as SGD or Adam, got {opt_func!r}")
    if not callable(loss_func): raise TypeError(f"loss_func must be callable (pred, targ) -> scalar, got {loss_func!r}")


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
    if isinstance(dls, ClsDataLoaders):
        raise TypeError(f"dls holds class labels ({dls.n_classes} classes): use classification_learner(dls) for them, or "
                        f"RegDataLoaders.from_arrays(x, y) for a continuous target")
    lr = check_positive('lr', lr)
    if model is None: model = LinearModel(n_in=dls.n_in)
    if loss_func is None: loss_func = F.mse_loss  # shapes were checked equal: no broadcasting surprise
    _check_callables(opt_func, loss_func)
    _check_model_and_loss(dls, model, loss_func)
    return _learner(RegLearner, dls, model, loss_func, opt_func, lr, history, cbs, metrics, **kwargs)


@patch
def train_loss(self:Learner, params:dict|None=None) -> float:
    """The loss on the whole training set at `params` (name -> tensor, e.g. `learn.ols()`; default: the model as it is),
    in batches of `EVAL_ROWS` rows averaged by size as fastai's validation does (memory stays bounded on big data)."""
    dl = self.dls.train
    if params is None: model = self.model
    else:  # functional_call swaps the parameters of the module it runs: a private copy's, never the learner's own
        params, copy = {k: torch.as_tensor(v).to(dl.x.device) for k, v in params.items()}, private_model(self.model, dl.x.device)
        def model(x): return torch.func.functional_call(copy, params, (x,))
    with torch.no_grad(): return float(mean_over_rows(lambda x, y: self.loss_func(model(x), y), dl.x, dl.y))


@patch
def ols(self:Learner) -> dict:
    "The least-squares optimum on the training data for models linear in their parameters, by parameter name."
    model = self.model
    X = model.design(self.dls.train.x) if isinstance(model, RegModel) else None
    if X is None:
        raise TypeError(f"ols() needs a model linear in its parameters (LinearModel, PolyModel), got {model_name(model)}")
    return optimum_of(model, F.mse_loss, self.dls.train.x, self.dls.train.y)


@patch
def optimum(self:Learner,
    max_seconds:float|None=MAX_SECONDS, # give up (OptimumTooCostly, saying why) past this; None: wait for it
) -> dict:
    """The minimiser of the learner's loss on the training data, by parameter name: least squares (`ols()`) for MSE;
    for cross-entropy (logistic, softmax regression) solved by Newton's method in float64. `TypeError` for a model/loss
    with no known optimum (`FuncModel`, an MLP, a custom loss), `ValueError` when there is no finite one (separable classes)."""
    check_has_data(self, 'optimum()')
    # One solve serves every panel of a picture; kept beside the learner, not in it: `export` must not save the data.
    if max_seconds is not None: max_seconds = check_positive('max_seconds', max_seconds)
    return optimum_of(self.model, self.loss_func, self.dls.train.x, self.dls.train.y, cache=_OPTIMA.setdefault(self, {}),
                      max_seconds=max_seconds)


_OPTIMA = weakref.WeakKeyDictionary()  # learner -> its last optimum solved, with the data it was solved on

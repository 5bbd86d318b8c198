"""Classification: `classification_learner` (logistic or softmax regression, cross-entropy, plain SGD: a `ClsLearner`, the
same lean `FitLearner` as regression), its losses (`BCEWithLogits`, `CrossEntropy`) and one-logit metrics (`binary_accuracy`)."""
from __future__ import annotations

import copy
import weakref

import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.metrics import AccumMetric, ActivationType, accuracy, error_rate
from fastai.optimizer import SGD
from fastai.torch_core import flatten_check
from fastcore.foundation import L
from fastcore.meta import delegates
from torch._C import _has_torch_function_variadic

from .data import ClsDataLoaders, RegDataLoaders, check_positive
from .learner import FitLearner, _check_callables, _check_loss, _first_pred, _learner
from .models import LogisticModel, RegModel, SoftmaxModel, model_name
from .optimum import loss_kind, separates

__all__ = ['ClsLearner', 'classification_learner', 'BCEWithLogits', 'CrossEntropy', 'TorchClassLoss', 'binary_accuracy',
           'binary_error_rate', 'SeparationNote', 'is_classifier', 'probabilities']


# id(a BCEWithLogits) -> (a weak reference to it, {id(targ): (targ, its version, dtype, targ as dtype)}): the labels as
# floats, made once (two entries a loss: the training and the validation labels). Outside the loss, which compares and
# pickles as its settings alone; a plain dict (a WeakKeyDictionary makes a weak reference on every look-up), whose
# entry goes when the loss does.
_CASTS = {}
_REDUCTIONS = {'none': 0, 'mean': 1, 'sum': 2}  # torch's reduction enum (`torch.nn._reduction.get_enum`)


class BCEWithLogits:
    "Binary cross-entropy of one logit per sample (pred (n, 1)) against labels 0/1 (targ (n, 1)): fastai's `BCEWithLogitsLossFlat`, lean."
    optimum_kind = 'bce'  # `learn.optimum()` knows its minimiser
    y_int = True  # the targets are class labels: fastai's MixUp mixes the two labels' losses, not the labels
    def __init__(self, reduction:str='mean'): self.reduction = reduction  # fastai's `loss_not_reduced` sets it to 'none'
    def __call__(self, pred, targ):
        t, r = self._as(targ, pred.dtype), self.reduction
        e = _REDUCTIONS.get(r)
        # What F.binary_cross_entropy_with_logits runs once its checks pass (no torch-function override or mode, one
        # shape, a known reduction), called directly: its Python wrapper is ~3% of a small model's epoch.
        if e is None or _has_torch_function_variadic(pred, t) or pred.shape != t.shape:
            loss = F.binary_cross_entropy_with_logits(pred, t, reduction=r)
        else: loss = torch.binary_cross_entropy_with_logits(pred, t, None, None, e)
        return loss.view(-1) if r == 'none' else loss
    def _as(self, targ, dtype):
        "`targ.to(dtype)`, kept for the next call on the same labels (full batch: every step's, every validation's)."
        if targ.dtype == dtype: return targ
        k = id(self)
        held = _CASTS.get(k)
        if held is None or held[0]() is not self:
            try: held = _CASTS[k] = (weakref.ref(self, lambda _, k=k: _CASTS.pop(k, None)), {})
            except TypeError: return targ.to(dtype)  # a subclass with no weak references (__slots__)
        cs = held[1]
        c = cs.get(id(targ))
        if c is not None and c[0] is targ and c[1] == targ._version and c[2] == dtype: return c[3]
        t = targ.to(dtype)
        if len(cs) >= 2: del cs[next(iter(cs))]
        cs[id(targ)] = (targ, targ._version, dtype, t)
        return t
    def activation(self, x):
        "The probability of class 1 from the logit: what `get_preds` returns."
        return torch.sigmoid(x)
    def decodes(self, x):
        "The class from that probability (`get_preds(with_decoded=True)`)."
        return (x > .5).long()
    def __repr__(self): return 'BCEWithLogits()'


class CrossEntropy:
    "Softmax cross-entropy of one logit per class (pred (n, k)) against labels 0..k-1 (targ (n, 1)): fastai's `CrossEntropyLossFlat`, lean."
    optimum_kind, y_int = 'ce', True
    def __init__(self, reduction:str='mean'): self.reduction = reduction
    def __call__(self, pred, targ): return F.cross_entropy(pred, targ.reshape(-1).long(), reduction=self.reduction)
    def activation(self, x):
        "Each class's probability from the logits: what `get_preds` returns."
        return torch.softmax(x, -1)
    def decodes(self, x):
        "The likeliest class (`get_preds(with_decoded=True)`)."
        return x.argmax(-1)
    def __repr__(self): return 'CrossEntropy()'


class TorchClassLoss:
    """torch's own `F.cross_entropy` / `nn.CrossEntropyLoss(...)` (`kind` 'ce') or `F.binary_cross_entropy_with_logits` /
    `nn.BCEWithLogitsLoss(...)` ('bce') given fastfit's class labels (n, 1) int64: the targets as each wants them
    ((n,) class indices; float 0/1 shaped as the logit), its options (weights, label smoothing) kept."""
    def __init__(self, f, kind:str): self.f, self.kind = f, kind
    def __call__(self, pred, targ):
        if self.kind == 'ce': return self.f(pred, targ.reshape(-1).long())
        out = self.f(pred, targ.to(pred.dtype).reshape(pred.shape))
        return out.view(-1) if out.ndim else out  # reduction='none' (fastai's NoneReduce): one loss per sample
    @property
    def optimum_kind(self): return loss_kind(self.f)  # None with weights: the optimum knows the plain loss only
    @property
    def reduction(self): return getattr(self.f, 'reduction', 'mean')
    @reduction.setter
    def reduction(self, v):
        if hasattr(self.f, 'reduction'): self.f.reduction = v
    y_int = True  # fastai's MixUp mixes the losses of the two labels, not the labels
    def activation(self, x): return torch.softmax(x, -1) if self.kind == 'ce' else torch.sigmoid(x)
    def decodes(self, x): return x.argmax(-1) if self.kind == 'ce' else (x > .5).long()
    @property
    def __name__(self): return getattr(self.f, '__name__', type(self.f).__name__)
    def __repr__(self): return repr(self.f) if isinstance(self.f, torch.nn.Module) else self.__name__


def _torch_class_loss(loss_func, n_out:int, k:int):
    "torch's own cross-entropy losses wrapped for fastfit's labels (`TorchClassLoss`), or a clear error for the wrong one."
    if loss_func is F.cross_entropy or isinstance(loss_func, torch.nn.CrossEntropyLoss): kind = 'ce'
    elif loss_func is F.binary_cross_entropy_with_logits or isinstance(loss_func, torch.nn.BCEWithLogitsLoss): kind = 'bce'
    else: return loss_func
    name = getattr(loss_func, '__name__', type(loss_func).__name__)
    if kind == 'ce' and n_out == 1:
        raise ValueError(f"loss_func {name} takes one logit per class, shape (n, {k}), but the model returns one logit for "
                         f"two classes, (n, 1) (its cross-entropy is always 0): use BCEWithLogits() (or "
                         f"F.binary_cross_entropy_with_logits) with it, or a model with {k} outputs, e.g. SoftmaxModel(n_in, {k})")
    if kind == 'bce' and n_out != 1:
        raise ValueError(f"loss_func {name} takes one logit per sample, shape (n, 1), for two classes, but the model returns "
                         f"{n_out} per sample: use CrossEntropy() (or F.cross_entropy) with it")
    return TorchClassLoss(loss_func, kind)


def _binary_hits(inp, targ, thresh:float=.5, sigmoid:bool=True):
    "Whether each thresholded prediction is its label: the booleans whose mean is `binary_accuracy`."
    # Plain torch: fastai's `flatten_check` makes both a TensorBase, whose every later op (here, and the metric's running
    # sums in the Recorder) costs ~10x a plain tensor's. The same check (as many elements) and the same value.
    if inp.shape != targ.shape:  # (the same shape: the same elements compared, no need to flatten)
        if inp.numel() != targ.numel(): flatten_check(inp, targ)  # fastai's error
        inp, targ = inp.reshape(-1), targ.reshape(-1)
    if sigmoid: inp = inp.sigmoid()
    return (inp > thresh) == _as_bool(targ)


def binary_accuracy(inp, targ, thresh:float=.5, sigmoid:bool=True):
    "Accuracy of one logit per sample against labels 0/1: fastai's `accuracy_multi` (a threshold where `accuracy` argmaxes)."
    return _binary_hits(inp, targ, thresh, sigmoid).mean(dtype=torch.float32)  # (`.float().mean()` in one op)


binary_accuracy.hits = _binary_hits  # what the Recorder counts, rather than averaging (`fastai_private.RegAvgMetric`)


# id(labels) -> (a weak reference to them, their version, them as booleans): made once for the labels a full-batch fit
# compares every epoch (the training and the validation labels); each op saved is ~3% of a small model's epoch.
_BOOLS = {}


def _as_bool(targ):
    "`targ.bool()`, kept for the next call on the same, unchanged labels."
    try: version = targ._version
    except RuntimeError: return targ.bool()  # an inference-mode tensor keeps no version
    c = _BOOLS.get(id(targ))
    if c is not None and c[0]() is targ and c[1] == version: return c[2]
    b = targ.bool()
    if len(_BOOLS) >= 2: del _BOOLS[next(iter(_BOOLS))]
    _BOOLS[id(targ)] = (weakref.ref(targ), version, b)
    return b


def binary_error_rate(inp, targ, thresh:float=.5, sigmoid:bool=True):
    "1 - `binary_accuracy`."
    return 1 - binary_accuracy(inp, targ, thresh, sigmoid)


# fastai's `accuracy` and `error_rate` argmax over the outputs: on one logit they would always say class 0.
_ONE_LOGIT = {accuracy: binary_accuracy, error_rate: binary_error_rate}


def _one_logit_metric(m):
    """A fastai metric made for one logit per class, as one for a single logit: `accuracy`/`error_rate` their binary
    forms; an `AccumMetric` (F1Score, Precision, RocAucBinary, ...) that argmaxes or softmaxes over the outputs (on one
    logit: always class 0, or p = 1) thresholds sigmoid(logit) at .5, or takes the sigmoid as the probability."""
    if not isinstance(m, AccumMetric): return _ONE_LOGIT.get(m, m)
    if m.activation in (ActivationType.Softmax, ActivationType.BinarySoftmax):
        m = copy.copy(m); m.activation = ActivationType.Sigmoid
    elif m.dim_argmax is not None and m.activation == ActivationType.No:
        m = copy.copy(m); m.dim_argmax, m.activation, m.thresh = None, ActivationType.Sigmoid, .5
    return m


def _classifier_metrics(metrics, n_out):
    if metrics is None or n_out != 1: return metrics
    return [_one_logit_metric(m) for m in L(metrics)]


def _check_outputs(model, pred, k, n_in):
    "A classifier returns (n, 1) logits for two classes or (n, k) for k: else an error naming both numbers."
    n_out = pred.shape[1] if isinstance(pred, torch.Tensor) and pred.ndim == 2 else None
    if n_out == k or (n_out == 1 and k == 2): return n_out
    if hasattr(model, 'hidden'): want = f"MLPModel(n_in={n_in}, hidden={model.hidden}, n_out={k})"  # a net: its own class
    else: want = f"SoftmaxModel(n_in={n_in}, n_classes={k})" + (f" or LogisticModel(n_in={n_in})" if k == 2 else '')
    got = f"{n_out} output(s) per sample" if n_out is not None else \
          f"predictions of shape {tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__}"
    raise ValueError(f"model {model_name(model)} returns {got} but the data has {k} classes: a classifier returns one logit per class "
                     f"({k})" + (", or one logit for two classes" if k == 2 else '') + f", shape (n, {k}); e.g. {want}")


class SeparationNote(Callback):
    "After a fit, if the model classifies every training sample correctly, say (once) that the weights grow without bound."
    order, run_valid = 70, False
    __setattr__ = object.__setattr__  # plain sets: fastai's `Callback.__setattr__` looks the name up on the learner, every epoch
    def __init__(self): self.said, self.trained = False, False

    # fastai runs before_fit/after_fit around get_preds and predict too: only a fit that trained is judged
    def before_fit(self): self.trained = False
    def before_train(self): self.trained = True

    def after_fit(self):
        l = self.learn
        if not self.trained or self.said or getattr(l, 'fit_error', None) is not None or \
                getattr(l, 'diverged', None) is not None or not len(l.dls.train.x): return
        # Known for cross-entropy on models linear in their parameters: separating weights, scaled up, lower the loss.
        m = l.model
        linear = isinstance(m, SoftmaxModel) or (isinstance(m, RegModel) and m.design(l.dls.train.x[:1]) is not None)
        if not linear or loss_kind(l.loss_func) not in ('bce', 'ce'): return
        with torch.no_grad(): z = m(l.dls.train.x)
        if not separates(z, l.dls.train.y): return
        self.said = True
        print("fastfit: the model now classifies every training sample correctly: the classes are linearly separable, so "
              "the cross-entropy keeps falling as the weights grow, and they grow without bound (there is no finite "
              "optimum: learn.optimum() says so). The boundary settles; the weights and the loss's approach to 0 do not.")


class ClsLearner(FitLearner):
    "A `FitLearner` of class labels: what `classification_learner` returns."


@delegates(Learner.__init__)
def classification_learner(
    dls:ClsDataLoaders, # the data, e.g. `synth_blobs().dataloaders()` or `ClsDataLoaders.from_arrays(x, labels)`
    model=None, # default: `LogisticModel(n_in)` (one logit) for 2 classes, `SoftmaxModel(n_in, n_classes)` for more
    loss_func=None, # any (pred, targ) -> scalar tensor; default: `BCEWithLogits()` for one logit, `CrossEntropy()` for more
    opt_func=SGD, # fastai optimizer; default plain SGD (no momentum, no weight decay)
    lr:float=.1, # learning rate
    history:bool=True, # attach a `ParamHistory` callback (`learn.param_history`)
    cbs=None, # more callbacks
    metrics=accuracy, # fastai metrics; `accuracy`/`error_rate` on one logit become `binary_accuracy`/`binary_error_rate`
    **kwargs
) -> ClsLearner:
    "A fastai `Learner` for classification: logistic/softmax regression, cross-entropy, plain SGD and the history by default."
    if not isinstance(dls, ClsDataLoaders):
        got = ('RegDataLoaders, whose targets are continuous: for class labels make ClsDataLoaders.from_arrays(x, labels)'
               if isinstance(dls, RegDataLoaders) else type(dls).__name__)
        raise TypeError(f"dls must be ClsDataLoaders (from `synth_blobs().dataloaders()` or `ClsDataLoaders.from_arrays`), "
                        f"got {got}")
    lr = check_positive('lr', lr)
    k = dls.n_classes
    if model is None: model = LogisticModel(n_in=dls.n_in) if k == 2 else SoftmaxModel(n_in=dls.n_in, n_classes=k)
    x, y, pred = _first_pred(dls, model)
    n_out = _check_outputs(model, pred, k, dls.n_in)
    if loss_func is None: loss_func = BCEWithLogits() if n_out == 1 else CrossEntropy()
    loss_func = _torch_class_loss(loss_func, n_out, k)  # torch's own losses take the labels as (n,) or float
    _check_callables(opt_func, loss_func)
    _check_loss(model, loss_func, pred, y)
    cbs = L(cbs)
    if not any(isinstance(c, SeparationNote) for c in cbs): cbs.append(SeparationNote())
    return _learner(ClsLearner, dls, model, loss_func, opt_func, lr, history, cbs, _classifier_metrics(metrics, n_out),
                    data_check=_check_cls_data, **kwargs)


def _check_cls_data(dls, model, loss_func):
    "Class labels for `model` and `loss_func`: what `classification_learner` checks (new data given to a learner too)."
    if not isinstance(dls, ClsDataLoaders):
        raise TypeError(f"dls must be ClsDataLoaders for this classifier, got {type(dls).__name__}: e.g. "
                        f"ClsDataLoaders.from_arrays(x, labels)")
    x, y, pred = _first_pred(dls, model)
    _check_outputs(model, pred, dls.n_classes, dls.n_in)
    _check_loss(model, loss_func, pred, y)


def is_classifier(learn) -> bool:
    "Whether `learn` fits class labels (its data are `ClsDataLoaders`)."
    return isinstance(getattr(learn, 'dls', None), ClsDataLoaders)


def probabilities(logits:torch.Tensor, loss_func=None) -> torch.Tensor:
    """Each class's probability, (n, k), from a classifier's outputs (n, 1) or (n, k): the loss's `activation` when it has
    one (fastai's convention), else sigmoid of one logit (the classes 0 and 1) or softmax of k."""
    act = getattr(loss_func, 'activation', None)
    p = act(logits) if callable(act) else torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, -1)
    return torch.cat([1 - p, p], -1) if p.shape[-1] == 1 else p

"""fastai's private names, in one room: every override of a fastai internal, and every private name fastfit reads.

fastfit's learner is fast because it replaces fastai's per-event dispatch, its batch loop and three of its default
callbacks with lean versions. They keep what fastai's own tests check (event order, cancel exceptions, the recorder's
contents), but they override or read names fastai does not promise to keep. All of them live here, each with a comment
saying which fastai behaviour it keeps and what it gains, so a new fastai release is checked in one place:
`tests/test_fastai_private.py` fails with a clear message when a name in `RELIES_ON` is gone or changed its signature.
Distributed training is the one exception: fastai.distributed imports accelerate, so the trainer that subclasses fastai's
lives in `fastfit.distributed` (imported by `distrib_ctx` only); its overrides are listed here, and what fastai assumes
CUDA for is replaced here (the last section).
"""
from __future__ import annotations

import copy
import importlib.util
import math
import struct
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from functools import lru_cache, partial

import numpy as np
import torch
import torch.distributed as dist
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
from fastai.learner import AvgLoss, AvgMetric, CastToTensor, Learner, Metric, Recorder, _maybe_item
from fastai.metrics import accuracy, error_rate
from fastai.optimizer import Optimizer, l2_reg, sgd_step, weight_decay
from fastai.torch_core import flatten_check, num_distrib, rank_distrib
from fastcore.basics import GetAttr, getcallable, noop
from fastcore.foundation import L
from fastprogress.fastprogress import format_time
from torch._C import _are_functorch_transforms_active, _get_tracing_state, _set_grad_enabled
from torch.autograd.graph import _engine_run_backward
from torch.nn import Module
from torch.nn.modules import module as _nn_module

from .data import RegDataLoaders, TensorDL

__all__ = ['CHECKED', 'RELIES_ON', 'LeanLoop', 'RegCastToTensor', 'RegTrainEval', 'RegRecorder', 'RegAvgMetric', 'RegAvgLoss',
           'TensorList', 'use_lean_callbacks', 'fresh_copy', 'opt_like',
           'backend_for', 'setup_distrib', 'collective_device', 'BroadcastOnBackend', 'accelerator_kwargs']

# The releases these overrides were read against and tested with (the oldest declared in pyproject.toml, and the newest).
CHECKED = {'fastai': ('2.8.9', '2.8.12'), 'fastcore': ('2.2.30', '2.2.41')}

# (module, dotted name, parameters or None): what this module overrides or reads. For the methods it overrides, the
# parameter names are those of fastai's own method, so a change of signature is caught too.
RELIES_ON = [
    ('fastai.learner', 'Learner._call_one', ['self', 'event_name']),
    ('fastai.learner', 'Learner._do_fit', ['self']),
    ('fastai.learner', 'Learner._do_epoch', ['self']),
    ('fastai.learner', 'Learner._do_epoch_train', ['self']),  # run inline by `_do_epoch`
    ('fastai.learner', 'Learner._do_grad_opt', ['self']),
    ('fastai.learner', 'Learner._backward', ['self']),
    ('fastai.learner', 'Learner._step', ['self']),
    ('fastai.learner', 'Learner._do_one_batch', ['self']),
    ('fastai.learner', 'Learner._do_epoch_validate', ['self', 'ds_idx', 'dl']),
    ('fastai.learner', 'Learner._split', ['self', 'b']),
    ('fastai.learner', 'Learner._set_device', ['self', 'b']),
    ('fastai.learner', 'Learner._with_events', ['self', 'f', 'event_type', 'ex', 'final']),
    ('fastai.learner', 'Learner._end_cleanup', ['self']),
    ('fastai.learner', 'Learner.one_batch', ['self', 'i', 'b']),
    ('fastai.learner', 'Learner.all_batches', ['self']),
    ('fastai.learner', '_maybe_item', None),
    ('fastai.learner', 'Recorder._valid_mets', None),
    ('fastai.learner', 'mk_metric', ['m']),  # what `learn.metrics = ...` makes of a function: RegAvgMetric does that
    ('fastai.learner', 'AvgMetric.accumulate', ['self', 'learn']),
    ('fastai.learner', 'AvgLoss.accumulate', ['self', 'learn']),
    ('fastai.metrics', 'accuracy', ['inp', 'targ', 'axis']),  # computed in plain torch by RegAvgMetric (same value)
    ('fastai.metrics', 'error_rate', ['inp', 'targ', 'axis']),
    ('fastai.learner', 'Recorder.smooth_loss', None),  # set in __init__: read through an instance (see the test)
    ('fastai.callback.core', '_inner_loop', None),
    ('torch._C', '_set_grad_enabled', None),  # what torch.no_grad() calls, without the context manager's cost
    ('torch._C', '_are_functorch_transforms_active', None),  # what `Tensor.backward` checks first
    ('torch.autograd.graph', '_engine_run_backward', ['t_outputs', 'args', 'kwargs']),  # what `Tensor.backward` ends in
    # what nn.Module's call checks before it calls `forward` alone (`_calls_forward`)
    ('torch.nn.modules.module', 'Module._call_impl', ['self', 'args', 'kwargs']),
    ('torch.nn.modules.module', 'Module._wrapped_call_impl', ['self', 'args', 'kwargs']),
    ('torch.nn.modules.module', '_global_forward_hooks', None),
    ('torch.nn.modules.module', '_global_forward_pre_hooks', None),
    ('torch.nn.modules.module', '_global_backward_hooks', None),
    ('torch.nn.modules.module', '_global_backward_pre_hooks', None),
    ('torch._C', '_get_tracing_state', None),
    # `classify.BCEWithLogits`: what F.binary_cross_entropy_with_logits checks, and the op it then calls
    ('torch._C', '_has_torch_function_variadic', None),
    ('torch', 'binary_cross_entropy_with_logits', None),
    # Distributed training (the section at the end; `fastfit.distributed` holds the trainer that subclasses fastai's).
    # fastai.distributed needs accelerate to import: these are checked where the `distributed` extra is installed.
    ('fastai.distributed', 'Learner.distrib_ctx', None),  # its signature also lists accelerate's Accelerator arguments
    ('fastai.distributed', 'setup_distrib', ['gpu']),
    ('fastai.distributed', 'DistributedDL._broadcast', ['self', 't', 'rank']),
    ('fastai.distributed', 'DistributedTrainer.__init__', None),  # (sync_bn, **Accelerator's arguments)
    ('fastai.distributed', 'DistributedTrainer.before_fit', ['self']),  # sets `old_dls`, which our after_fit reads
    ('fastai.distributed', 'DistributedTrainer.after_fit', ['self']),
    ('fastai.distributed', 'DistributedTrainer._wrap_dl', ['self', 'dl']),
]

_fastai_epoch_train = Learner._do_epoch_train  # (as fastai defines it: a patched one is run as it is)
_cancels = (CancelBatchException, CancelBackwardException, CancelEpochException, CancelFitException,
            CancelStepException, CancelTrainException, CancelValidException)
# fastai.callback.core._inner_loop: the events that honour a callback's `run_train`/`run_valid`.
_inner = frozenset(_inner_loop)
# The events `_with_events` runs around a piece of work, by its type: (before, after, after_cancel).
_event_names = {t: (f'before_{t}', f'after_{t}', f'after_cancel_{t}') for t in ('epoch', 'train', 'validate', 'batch', 'backward', 'step')}
# The events between a step's loss and its zero_grad, and those after its forward: most fits handle none of them.
_grad_events = ('before_backward', 'after_backward', 'before_step', 'after_step')
_pred_events = ('after_pred', 'after_loss')
_CAST_FREE = ('before_batch', 'plain tensors')  # the table of before_batch's handlers for a batch of plain tensors


def _forwards_to(cb, learn) -> bool:
    "Whether a missing attribute of `cb` is looked up in `learn` alone (fastai's `Callback`: GetAttr to 'learn')."
    t = type(cb)
    return t.__getattr__ is GetAttr.__getattr__ and t._default == 'learn' and getattr(t, '_xtra', None) is None \
        and cb.__dict__.get('learn') is learn


def _modify(e, msg):
    e.args = [msg]
    return e


_module_call, _module_call_impl = Module.__call__, Module._call_impl


def _calls_forward(m) -> bool:
    "Whether `m(*args)` would call `m.forward(*args)` and nothing else: nn.Module's own call, no hook, no compile, no trace."
    # nn.Module's `__call__` makes that check itself, behind two Python calls (~0.5 us, twice an epoch: 1% of a small
    # model's); this is its check (torch 2.13's `_wrapped_call_impl` and `_call_impl`), made in ~0.2 us.
    t = type(m)
    return (t.__call__ is _module_call and t._call_impl is _module_call_impl and m._compiled_call_impl is None
            and not (m._backward_hooks or m._backward_pre_hooks or m._forward_hooks or m._forward_pre_hooks
                     or _nn_module._global_backward_pre_hooks or _nn_module._global_backward_hooks
                     or _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks)
            and not _get_tracing_state())


class LeanLoop:
    "Overrides of `Learner` internals, mixed in before `Learner`: fastai's semantics, a fraction of its per-step cost."
    records_loss_value = True  # `loss_value`: the training loss as a float, set every training step (ParamHistory reads it)
    _check_div, _step_count, loss_value, _plain_sgd, _plain_batches, _device_of = True, 0, None, False, False, (None, None)
    _gathers = _lean_metrics = False  # RegAvgMetric's fast path: fastfit's batches, one process
    _inline_phases = False  # `_do_epoch` runs the phases itself (set per fit)
    _loss_v = None  # the float of `learn.loss` when it is the training step's own (None: set otherwise, a tensor)

    def __init__(self, *args, **kwargs):
        self._handlers = {}  # event name -> ((callback, bound handler or None, inner-loop event), ...) in order
        self.diverged = None  # the step at which the training loss became NaN/inf, if it did
        super().__init__(*args, **kwargs)

    # -- dispatch -----------------------------------------------------------------------------------------------------
    # Keeps: fastai's `Learner._call_one` + `Callback.__call__` semantics (order, run/run_train/run_valid, the
    # 'Exception occured in `X` when calling event `e`' message, cancel exceptions passed through, `run` reset at
    # after_fit). Gains: each event's handlers are looked up once, not with getattr + GetAttr on every call of every
    # callback (about 10 events a step). The cache is dropped whenever the callbacks can have changed.
    @property
    def cbs(self): return self._cbs

    @cbs.setter
    def cbs(self, v): self._cbs, self._handlers = v, {}  # `learn.cbs = learn.cbs[1:]`, as fastai's tests do

    def add_cb(self, cb):
        self._handlers = {}
        return super().add_cb(cb)

    def remove_cb(self, cb):
        self._handlers = {}
        return super().remove_cb(cb)

    # Keeps: fastai's `metrics` setter (`mk_metric`: a class is instantiated, a `Metric` kept, a function averaged over
    # batches). Gains: functions are averaged by `RegAvgMetric`, an `AvgMetric` without fastai's generic per-batch work.
    @property
    def metrics(self): return self._metrics

    @metrics.setter
    def metrics(self, v): self._metrics = L(v).map(_mk_metric)

    def _event_handlers(self, event_name, table=None):
        if not hasattr(event, event_name): raise Exception(f'missing {event_name}')
        hs, inner = [], event_name in _inner
        learn_has = hasattr(self, event_name)
        cbs = self._handlers.get(None)  # the callbacks in order, sorted once for all events (dropped with the tables)
        if cbs is None: self._handlers[None] = cbs = list(self.cbs.sorted('order'))
        for cb in cbs:
            # A callback with its own `__call__` (e.g. `VerboseCallback`) sees every event, as in fastai.
            if type(cb).__call__ is not Callback.__call__: hs.append((cb, None, inner))
            # One without the handler (in its class or itself) would look it up in `learn` (fastai's GetAttr), which has
            # none: skipped without GetAttr's look-up (~15 us a callback and event, once a fit).
            elif not learn_has and _forwards_to(cb, self) and not (event_name in cb.__dict__ or hasattr(type(cb), event_name)): continue
            else:
                f = getcallable(cb, event_name)
                if f is not noop: hs.append((cb, f, inner))
        # Batches of plain tensors: CastToTensor has nothing to cast, as long as it runs first (nothing made them otherwise).
        if table == _CAST_FREE and hs and type(hs[0][0]) is RegCastToTensor: hs = hs[1:]
        self._handlers[table or event_name] = hs = tuple(hs)
        return hs

    def __call__(self, event_name):
        if isinstance(event_name, str): self._call_one(event_name)
        else:
            for e in event_name: self._call_one(e)

    def _call_one(self, event_name):
        # after_fit also resets every callback's `run`: fastai's own dispatch does that (once per fit, so no cost).
        if event_name == 'after_fit': return super()._call_one(event_name)
        if event_name == 'before_fit': self._handlers = {}  # catches edits of `learn.cbs` that bypass add_cb
        self._fire(event_name)

    def _quiet(self, names:tuple) -> bool:
        "Whether no callback handles any of the events `names`: known once per table of handlers (dropped with it)."
        hs = self._handlers
        q = hs.get(names)
        if q is None: hs[names] = q = not any(hs[e] if e in hs else self._event_handlers(e) for e in names)
        return q

    def _fire(self, event_name, table=None):
        """Run the handlers of `event_name` (neither before_fit nor after_fit), or of its `table` (`_CAST_FREE`): an event
        nobody handles costs a dict look-up."""
        hs = self._handlers.get(table or event_name)
        if hs is None: hs = self._event_handlers(event_name, table)
        for cb, f, inner in hs:  # (in this one call: ~18 events an epoch, 10 of them handled)
            if f is None: cb(event_name); continue
            if not cb.run or (inner and not (cb.run_train if self.training else cb.run_valid)): continue
            try: f()
            except _cancels: raise
            except Exception as e:
                msg = e.args[0] if e.args else ''
                raise _modify(e, f'Exception occured in `{type(cb).__name__}` when calling event `{event_name}`:\n\t{msg}')

    # Keeps: fastai's `_with_events` (before, the work, after_cancel on its exception, after, final). Gains: the event
    # names are made once, not by three f-strings a call, and go straight to the handlers (7 calls a training step).
    def _with_events(self, f, event_type, ex, final=noop):
        names = _event_names.get(event_type)
        if names is None: return super()._with_events(f, event_type, ex, final)  # 'fit': before/after_fit's own rules
        before, after, cancel = names
        try: self._fire(before); f()
        except ex: self._fire(cancel)
        self._fire(after)
        if final is not noop: final()

    def __getstate__(self):
        state = super().__getstate__()
        state.pop('_handlers', None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._handlers = {}

    # -- the fit ------------------------------------------------------------------------------------------------------
    # Keeps: fastai's `_do_fit` (the epoch loop). Gains: the optimizer is inspected once per fit (plain SGD runs as one
    # foreach op, below), and a fit cut short by anything but a cancel exception leaves a learner that fits again.
    # On Ctrl-C ("interrupt kernel") every callback's after_fit runs, as on leaving fastai's own `with learn:`
    # (`__exit__`): the progress callback gives the logger back, lr_find restores the weights, the history records its
    # last step. On an error only the callbacks marked `after_fit_on_error` (fastfit's own) tidy up, so the others see
    # what fastai gives them: nothing.
    def _do_fit(self):
        # Divergence is checked on training batches, except in lr_find, which explores lrs until the loss blows up.
        self._check_div = not any(isinstance(cb, LRFinder) for cb in self.cbs)
        self._step_count, self._device_of = 0, (None, None)
        self._gathers = num_distrib() > 1  # fastai's `to_detach` gathers metrics across processes: RegAvgMetric lets it
        o = self.opt
        # fastai's SGD without momentum is `p -= lr*grad` (its weight decay a no-op at wd=0): one foreach op per group
        # does it, instead of a Python loop of dict merges per parameter. Any other optimizer runs as it is.
        self._plain_sgd = (type(o) is Optimizer and list(o.cbs) in ([weight_decay, sgd_step], [l2_reg, sgd_step]))
        # `set_hyper` (schedulers) updates these dicts in place, so the groups can be listed once per fit.
        self._groups = [(list(pg), h) for pg, h in zip(o.param_lists, o.hypers)]
        self._hypers = [h for _, h in self._groups]
        t = type(self)  # the phases run inline (`_do_epoch`) unless a subclass or a patch changed one of them
        self._inline_phases = (t._do_epoch_train is _fastai_epoch_train and t._do_epoch_validate is LeanLoop._do_epoch_validate
                               and t.all_batches is LeanLoop.all_batches)
        try:
            if t._with_events is LeanLoop._with_events: self._epochs()
            else: super()._do_fit()
        except _cancels: raise  # fastai's control flow, even when a callback raises one where nothing catches it
        except BaseException as e:
            self._after_broken_fit(e)
            raise

    def _epochs(self):
        "fastai's `_do_fit` loop, each epoch's events fired here as `_with_events` fires them (a call fewer an epoch)."
        fire = self._fire
        for epoch in range(self.n_epoch):
            self.epoch = epoch
            try: fire('before_epoch'); self._do_epoch()
            except CancelEpochException: fire('after_cancel_epoch')
            fire('after_epoch')

    def _after_broken_fit(self, e):
        "Run the after_fit of the callbacks that must tidy up after a fit `e` cut short; their failures become notes on `e`."
        self.fit_error = e  # callbacks can tell a fit cut short from one that ended
        if self.opt is not None: self.opt.zero_grad()  # a step cut short must not leak its gradients into the next fit
        everyone = isinstance(e, KeyboardInterrupt)
        for cb in self.cbs.sorted('order'):
            if not (everyone or getattr(cb, 'after_fit_on_error', False)): continue
            try: cb('after_fit')
            except Exception as err:  # noqa: PERF203 (a second Ctrl-C is not caught: the user insists)
                e.add_note(f"(fastfit ran {type(cb).__name__}.after_fit after the fit stopped; it failed too: {err!r})")
        self._end_cleanup()

    # -- the step -----------------------------------------------------------------------------------------------------
    # Keeps: fastai's `_do_grad_opt` (backward and step with their events, then zero_grad). Gains: plain SGD steps and
    # zeroes all gradients with one foreach op each; the events are fired here, as `_with_events` would, or not at all
    # when no callback handles any of the four (their after_cancel events still run on a cancel).
    def _do_grad_opt(self):
        fire = self._fire
        quiet = self._handlers.get(_grad_events)  # (`_quiet`, its call made once a fit; ~0.1 us a call skipped, 4 a step)
        if quiet is None: quiet = self._quiet(_grad_events)
        try:
            if not quiet: fire('before_backward')
            self._backward()
        except CancelBackwardException: fire('after_cancel_backward')
        if not quiet: fire('after_backward')
        try:
            if not quiet: fire('before_step')
            self._step()
        except CancelStepException: fire('after_cancel_step')
        if not quiet: fire('after_step')
        self._zero_grad()

    def _zero_grad(self):
        if not self._plain_sgd: return self.opt.zero_grad()
        grads = [p.grad for pg, _ in self._groups for p in pg if p.grad is not None]
        if grads:
            for g in grads:
                if g.requires_grad: g.detach_()  # fastai detaches every grad; only one made with create_graph needs it
            torch._foreach_zero_(grads)

    # Keeps: fastai's `_backward` (`loss_grad.backward()`). Gains: a loss with no gradient (a constant, or a value made
    # with .item()/.detach()) is named for what it is, instead of torch's "element 0 of tensors does not require grad" 20
    # frames down; and a plain one-number loss goes straight to the call `Tensor.backward` ends in, with the gradient of
    # ones it makes: the generic Python on the way (torch-function overrides, argument and shape checks; ~5% of a small
    # model's epoch) is for arguments a fit never passes.
    def _backward(self):
        lg = self.loss_grad
        if not lg.requires_grad:
            name = getattr(self.loss_func, '__name__', type(self.loss_func).__name__)
            raise ValueError(f"the loss ({name}) returned {lg.detach().flatten()[:1].tolist()} with no gradient: it does not "
                             f"depend on the model's parameters. Compute it from the predictions with torch operations "
                             f"(e.g. ((pred - targ) ** 2).mean()); .item(), .detach(), torch.tensor(...) or torch.no_grad() "
                             f"cut it off, and so does a model whose parameters all have requires_grad=False")
        if type(lg) is not torch.Tensor or lg.ndim or _are_functorch_transforms_active(): return lg.backward()
        _engine_run_backward((lg,), (torch.ones_like(lg),), False, False, (), allow_unreachable=True, accumulate_grad=True)

    # Keeps: fastai's `_step`. Gains: plain SGD as one foreach op per parameter group; and every lr that reaches the
    # optimizer, whatever set it (a schedule, `lr_max`, a slice), is checked: a negative lr climbs the loss silently.
    def _step(self):
        o, wd = self.opt, False
        for h in (self._hypers if self._plain_sgd else o.hypers):  # plain SGD: fastai's hyper dicts, listed once per fit
            lr = h['lr']
            if not lr >= 0:  # 0 is allowed here: cosine schedules touch it at their ends
                raise ValueError(f"lr must be > 0, but the optimizer was about to step with lr={lr!r} (step "
                                 f"{self._step_count}, set by a schedule or an lr argument): use a positive lr")
            if h.get('wd', 0) != 0: wd = True
        if wd or not self._plain_sgd: return o.step()
        # torch.no_grad() without its context manager, which costs as much as the update itself on a small model.
        prev = torch.is_grad_enabled()
        _set_grad_enabled(False)
        try:
            for pg, h in self._groups:
                ps = [p for p in pg if p.grad is not None]
                if ps: torch._foreach_add_(ps, [p.grad for p in ps], alpha=-h['lr'])
        finally: _set_grad_enabled(prev)

    # -- the batch loop -----------------------------------------------------------------------------------------------
    # Keeps: fastai's `_do_epoch` and `_do_epoch_train` (`learn.dl`, the train events around `all_batches`, then the
    # validation). Gains: the training phase runs here, as `_with_events` would run it, two calls fewer an epoch.
    def _do_epoch(self):
        if not self._inline_phases: return super()._do_epoch()
        fire = self._fire
        self.dl = self.dls.train
        try: fire('before_train'); self.all_batches()
        except CancelTrainException: fire('after_cancel_train')
        fire('after_train')
        self._do_epoch_validate()

    # Keeps: fastai's `all_batches`/`one_batch` (n_iter, iter, xb/yb split, the batch events). Gains: fastfit's loaders
    # yield (x, y) already where the model is, so fastai's generic `to_device` and `_split` are skipped for them, and
    # CastToTensor's look at each batch where they hold plain tensors (~0.3 us a batch).
    def all_batches(self):
        dl = self.dl
        plain = self._plain_batches = (type(dl) is TensorDL and isinstance(self.dls, RegDataLoaders)
                                       and self._model_on(dl.device))
        self._lean_metrics = plain and not self._gathers
        if plain and dl.full_batch:  # the one batch TensorDL yields (the whole set), without a generator per epoch
            self.n_iter = n = len(dl)
            if n: self.one_batch(0, dl._tensors)
            return
        super().all_batches()

    def one_batch(self, i, b):
        self.iter = i
        table = None
        if self._plain_batches:
            self.xb, self.yb = b[:1], b[1:]
            if type(b[0]) is torch.Tensor and type(b[-1]) is torch.Tensor: table = _CAST_FREE  # (x,) or (x, y)
        else: self._split(self._set_device(b))
        try: self._fire('before_batch', table); self._do_one_batch()
        except CancelBatchException: self._fire('after_cancel_batch')
        self._fire('after_batch')

    def _model_on(self, device) -> bool:
        "Whether the model's (first) parameter is on `device` (a torch.device), without making a device object for the CPU."
        # The first parameter is found once per fit (a generator over the modules: as long as the step's Python work);
        # its device follows the model when it moves. `p.device` makes an object (~2.5 us, twice an epoch): `is_cpu` none.
        m, p = self._device_of
        d = self.__dict__
        if m is not d.get('_model', d.get('model')):  # `self.model` (FitLearner's property) without the call
            m = self.model
            p = next(m.parameters(), None)
            self._device_of = m, p
        if p is None: return False
        return p.is_cpu if device.type == 'cpu' else p.device == device

    # Keeps: fastai's `_do_one_batch`. Gains: one `.item()` per training step serves both a divergence check (a NaN/inf
    # training loss stops the fit at once, see `FitLearner.fit`) and the history's loss record; the model's `forward`
    # is called directly when nn.Module's call would do just that (`_calls_forward`), and after_pred/after_loss are
    # skipped when nobody handles them.
    def _do_one_batch(self):
        m = self._device_of[0]  # the model `all_batches` checked; `self.model` when it was not (or is no more) it
        d = self.__dict__
        if m is None or m is not d.get('_model', d.get('model')): m = self.model
        self.pred = m.forward(*self.xb) if _calls_forward(m) else m(*self.xb)
        quiet = self._handlers.get(_pred_events)
        if quiet is None: quiet = self._quiet(_pred_events)
        if not quiet: self._fire('after_pred')
        if len(self.yb):
            self.loss_grad = lg = self.loss_func(self.pred, *self.yb)
            if self.training and self._check_div:
                # `learn.loss` is this value, made a tensor when something reads it (see `loss` below)
                self.loss_value = self._loss_v = v = lg.item()
                self._loss, self._loss_of = None, lg
                if not math.isfinite(v):
                    self.diverged = self._step_count
                    raise CancelFitException()
            elif not self.training and lg.is_cpu and lg.numel() == 1:  # (`is_cpu`: `.device` makes an object)
                # validation on the CPU: the float now (the averages add floats), the tensor only if something reads it
                self._loss_v, self._loss, self._loss_of = lg.item(), None, lg
            else: self.loss = lg.clone()
        if not quiet: self._fire('after_loss')
        if not self.training or not len(self.yb): return
        self._do_grad_opt()
        self._step_count += 1

    # Keeps: fastai's `_do_epoch_validate` (`learn.dl`, the validate events around the batches, without gradients).
    # Gains: no validation phase (and no valid_loss) when there is no validation set, instead of a phase over an empty
    # loader that logs None; gradients off without torch.no_grad()'s context manager (as long as a small model's forward).
    def _do_epoch_validate(self, ds_idx=1, dl=None):
        if dl is None:
            dl = self.dls[ds_idx]
            if len(dl) == 0: return
        self.dl = dl
        prev = torch.is_grad_enabled()
        _set_grad_enabled(False)
        fire = self._fire
        try:  # `_with_events(self.all_batches, 'validate', CancelValidException)`, inline
            try: fire('before_validate'); self.all_batches()
            except CancelValidException: fire('after_cancel_validate')
            fire('after_validate')
        finally: _set_grad_enabled(prev)

    # Keeps: `learn.loss`, the step's loss as a tensor taken before after_loss (a callback may scale `loss_grad` in place,
    # as GradientAccumulation does). Gains: in training it is made from the float the divergence check reads, when
    # something reads it, instead of a clone every step; unlike fastai's clone it carries no graph (nothing needs one).
    @property
    def loss(self):
        "The loss of the last batch, a tensor as in fastai."
        t = self.__dict__.get('_loss')
        if t is None and self._loss_v is not None:
            lg = self._loss_of
            self._loss = t = torch.tensor(self._loss_v, dtype=lg.dtype, device=lg.device)
        return t

    @loss.setter
    def loss(self, v): self._loss, self._loss_v = v, None

    # Keeps: `learn.smooth_loss`, a tensor as in fastai. Gains: `RegRecorder` keeps it as a float until asked.
    @property
    def smooth_loss(self):
        "The smoothed training loss, a tensor as in fastai."
        v = self.__dict__.get('_smooth_loss')
        return torch.scalar_tensor(v) if isinstance(v, float) else v

    @smooth_loss.setter
    def smooth_loss(self, v): self._smooth_loss = v

    # Keeps: fastai's `distrib_ctx` (accelerate required; `in_notebook` sets up the process group; nothing changes on one
    # process). Gains: fastfit's trainer (`fastfit.distributed.RegDistributedTrainer`: CPU/gloo as well as GPUs, fastfit's
    # loaders sharded, the loss averaged over ranks, history and progress on rank 0) in place of fastai's `to_distributed`,
    # whose ProgressCallback removal and re-adding would leave fastai's per-epoch table on ranks > 0 after the context.
    @contextmanager
    def distrib_ctx(self, sync_bn=True, in_notebook=False, **kwargs):
        "fastai's context manager to fit on several processes (`torchrun`, `accelerate launch`), on CPUs (gloo) or GPUs (NCCL)."
        if importlib.util.find_spec('accelerate') is None:  # fastai.distributed imports it
            raise ImportError("learn.distrib_ctx() needs accelerate: pip install 'fastfit-gd[distributed]'")
        from .distributed import RegDistributedTrainer  # imports fastai.distributed, hence accelerate: only when used
        cleanup, trainer = False, None
        try:
            if in_notebook:
                if not dist.is_initialized():
                    setup_distrib(rank_distrib())
                    cleanup = dist.is_initialized()
                if not rank_distrib(): print("Training Learner...")
            if num_distrib():
                trainer = RegDistributedTrainer(sync_bn, **kwargs)
                self.add_cb(trainer)
            yield self
        finally:
            if trainer is not None: self.remove_cb(trainer)
            if cleanup and dist.is_initialized(): dist.destroy_process_group()


# -- metrics: fastai's averages, without its generic per-batch work on fastfit's batches ---------------------------------
def _accuracy_hits(inp, targ, axis=-1):
    "Whether each prediction's argmax is its label: the booleans whose mean is fastai's `accuracy`."
    pred = inp.argmax(dim=axis)
    if pred.numel() != targ.numel(): flatten_check(pred, targ)  # fastai's error (its `accuracy` checks the argmax)
    return pred.reshape(-1) == targ.reshape(-1)


def _plain_accuracy(inp, targ, axis=-1):
    "fastai's `accuracy` in plain torch: `flatten_check` makes a TensorBase, each of whose later ops costs ~10x."
    return _accuracy_hits(inp, targ, axis).float().mean()


# A metric function's `hits` (`_plain_accuracy`'s, `binary_accuracy`'s): the booleans whose float32 mean the metric is.
# `RegAvgMetric` counts them instead, which gives the same number in a fraction of the time (see there).
_plain_accuracy.hits = _accuracy_hits


def _plain_error_rate(inp, targ, axis=-1):
    "fastai's `error_rate` in plain torch."
    return 1 - _plain_accuracy(inp, targ, axis)


_PLAIN_METRICS = {accuracy: _plain_accuracy, error_rate: _plain_error_rate}


def _mk_metric(m):
    "fastai's `mk_metric`, making a `RegAvgMetric` of a function."
    if isinstance(m, type): m = m()
    return m if isinstance(m, Metric) else RegAvgMetric(m)


_F32 = struct.Struct('f')


def _as_float32(v:float) -> float:
    "`float(np.float32(v))` (the float32 nearest `v`, as a float), in a fifth of its time."
    try: return _F32.unpack(_F32.pack(v))[0]
    except OverflowError: return float(np.float32(v))  # beyond float32's range: inf, as numpy makes it


# fastprogress's `format_time` of whole seconds (it takes `int(t)` first), each made once: ~4 us an epoch otherwise.
_format_time = lru_cache(maxsize=256)(format_time)


class _FloatSums:
    """fastai's running `total` and `count`, with `value` a tensor as fastai's. On the CPU each batch's value is added
    as a Python float (one `.item()`), where fastai multiplies and adds 0-d tensors (each op costs as much as a small
    model's forward): `value` makes the tensor (of the batch values' dtype) only when read."""
    _dtype = None  # the dtype of the values summed as floats (None: fastai's tensor sums)

    def reset(self):
        super().reset()
        self._dtype = None

    @property
    def value(self):
        if self._dtype is None or not self.count or type(self.total) is not float: return super().value
        return torch.tensor(self.total / self.count, dtype=self._dtype)

    def item(self):
        "`_maybe_item(self)`, what the recorder logs: the value as a float (on the float path without making the tensor)."
        if self._dtype is None or not self.count or type(self.total) is not float: return _maybe_item(self)
        v = self.total / self.count
        if self._dtype == torch.float32: return _as_float32(v)  # what `.item()` of the float32 value gives
        return v if self._dtype == torch.float64 else self.value.item()

    def _floats(self, dtype) -> bool:
        "Whether this batch's value (of `dtype`) adds as a float: the sums so far are floats, or there are none yet."
        if self._dtype is None and self.count: return False
        self._dtype = dtype
        return True

    def _add_value(self, v, bs:int):
        "Add the batch's value `v` (a tensor, or what `to_detach` made of another value) for `bs` rows."
        if isinstance(v, torch.Tensor) and v.is_cpu and v.numel() == 1 and v.dtype.is_floating_point \
                and (self._dtype is not None or not self.count):  # `_floats`, inline (once a validation)
            self._dtype = v.dtype
            return _add(self, v.item() * bs, bs)
        if self._dtype is not None: self.total, self._dtype = torch.tensor(self.total, dtype=self._dtype), None
        _add(self, v.detach().cpu() * bs if isinstance(v, torch.Tensor) else v * bs, bs)


class RegAvgMetric(_FloatSums, AvgMetric):
    """fastai's `AvgMetric` of `func` (the same name, `func`, running sums and value). On fastfit's own batches (plain
    tensors, one process) the batch size is read off the target and the value detached directly, where fastai searches
    the batch and maps `to_detach` over it; fastai's `accuracy` and `error_rate` run in plain torch, and an accuracy with
    `hits` is counted rather than averaged (the same values)."""
    def accumulate(self, learn):
        if not getattr(learn, '_lean_metrics', False): return super().accumulate(learn)
        y, p = learn.yb[0], learn.pred
        f = _PLAIN_METRICS.get(self.func, self.func)
        hits = getattr(f, 'hits', None)
        if hits is not None and p.is_cpu and self._floats(torch.float32):
            h = hits(p, y)
            n = h.numel()
            # The mean of n booleans in float32 is their count (exact below 2**24) over n, rounded once to float32; the
            # count over n as a double rounded to float32 is that same number (a double carries 53 >= 2*24 + 2 bits, so
            # the quotient's two roundings give the one), and counting costs a fraction of the mean (~1 us, not ~4).
            if 0 < n < 1 << 24: return _add(self, _as_float32(h.count_nonzero().item() / n) * y.shape[0], y.shape[0])
        v = f(p, y)
        self._add_value(v if isinstance(v, torch.Tensor) else learn.to_detach(v), y.shape[0])


class RegAvgLoss(_FloatSums, AvgLoss):
    "fastai's `AvgLoss` (the validation loss), lean on fastfit's batches as `RegAvgMetric`."
    def accumulate(self, learn):
        if not getattr(learn, '_lean_metrics', False): return super().accumulate(learn)
        bs, d = learn.yb[0].shape[0], learn.__dict__
        # the batch's loss as a float already (LeanLoop._do_one_batch)
        if d.get('_loss') is None and learn._loss_v is not None and self._floats(learn._loss_of.dtype):
            return _add(self, learn._loss_v * bs, bs)
        v = learn.loss
        if v.ndim: v = v.mean()  # (the mean of one number is itself)
        self._add_value(v, bs)


def _logged(m):
    "What the recorder logs of metric `m`: fastai's `_maybe_item`, without making a tensor of a float sum."
    return m.item() if isinstance(m, _FloatSums) else _maybe_item(m)


def _add(m, v, bs:int):
    "fastai's `total += v; count += bs`: the first batch's `v` becomes the total (what `0. + v` makes, one op fewer)."
    t = m.total
    m.total = v if m.count == 0 and type(t) is float and t == 0. else t + v
    m.count += bs


# -- lean replacements of fastai's default callbacks: they take the defaults' places in `learn.cbs` --------------------
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
    _model, _mods = None, ()
    @property
    def name(self): return 'train_eval'

    def after_batch(self):
        l = self.learn
        l.pct_train += 1. / (l.n_iter * l.n_epoch)
        l.train_iter += 1

    def before_fit(self):
        super().before_fit()
        # `model.train()` walks every module through nn.Module's __setattr__: as long as the rest of a small model's
        # step. A model whose modules all train already, none with a `train` of its own, is left as fastai would leave it.
        m = self.learn.model
        mods = list(m.modules())
        self._model, self._mods = (m, mods) if all(type(x).train is Module.train for x in mods) else (None, ())

    def before_train(self):
        l = self.learn
        l.pct_train = l.epoch / l.n_epoch
        l.training = True
        self._set_mode(l.model, True)

    def before_validate(self):
        self._set_mode(self.learn.model, False)
        self.learn.training = False

    def _set_mode(self, m, mode:bool):
        "`m.train(mode)`: on a model whose modules all train as nn.Module does, the flag set on each directly."
        if m is not self._model: return m.train(mode)
        # nn.Module.train sets `training` through nn.Module.__setattr__ on every module (each as long as a step's tensor op)
        for x in self._mods: object.__setattr__(x, 'training', mode)


class TensorList(list):
    "A list of Python floats that reads as 0-d tensors (`x[i]`, slices, iteration), as fastai's `recorder.losses` does."
    # A tensor made per step and kept for the whole fit costs a 10k-point full-batch step ~10-15% (allocations that
    # stay alive between the step's large temporaries); floats kept, tensors made when read, cost nothing there.
    def __getitem__(self, i):
        v = list.__getitem__(self, i)
        return [torch.tensor(x) for x in v] if isinstance(i, slice) else torch.tensor(v)
    def __iter__(self): return (torch.tensor(x) for x in list.__iter__(self))
    def __reversed__(self): return (torch.tensor(x) for x in list.__reversed__(self))
    def copy(self): return list(self)


class RegRecorder(Recorder):
    "fastai's `Recorder` with the smoothing done on Python floats: the same `losses` (tensors), `lrs`, `values`, `iters`, log."
    __setattr__ = object.__setattr__
    _vm = None  # this validation's `_valid_mets`, listed once (fastai builds the list three times a validation)
    _smooth_in_dict = False  # the learner's `smooth_loss` is LeanLoop's, set by writing what its setter writes

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss = RegAvgLoss()

    @property
    def name(self): return 'recorder'

    def before_fit(self):
        super().before_fit()
        self.losses, self._vm = TensorList(), None
        self._smooth_in_dict = getattr(type(self.learn), 'smooth_loss', None) is LeanLoop.smooth_loss
        self._count, self._val, self._smooth, self._beta, self._opt = 0, 0., float('nan'), self.beta, None
        # Without train metrics, before_train has nothing to do: hidden from the dispatch, which looks it up once a fit.
        if self.train_metrics: self.__dict__.pop('before_train', None)
        else: self.before_train = noop

    def after_batch(self):
        l = self.learn
        if not len(l.yb): return
        if not l.training:
            for met in (self._valid_mets if self._vm is None else self._vm): met.accumulate(l)
            return
        if self.train_metrics:
            for met in self.metrics: met.accumulate(l)
        # FitLearner's `learn.loss` is this step's loss already as a float (its divergence check). fastai records
        # `learn.loss` whatever it holds (a batch cancelled before its loss leaves the last one): so do we.
        v = l.__dict__.get('_loss_v')
        if v is None: v = float(l.loss.detach().mean())
        self._count += 1
        b = self._beta
        self._val = b * self._val + (1 - b) * v  # fastai: torch.lerp(loss, val, beta)
        self._smooth = s = self._val / (1 - b ** self._count)
        o = l.opt
        if o is not self._opt: self._opt, self._lr_of = o, o.hypers[-1]  # fastai's schedules update this dict in place
        self.lrs.append(self._lr_of['lr'])
        self.losses.append(s)  # read back as a tensor, as fastai records (with beta=0, full batch: this step's loss)
        if self._smooth_in_dict: l.__dict__['_smooth_loss'] = s  # what LeanLoop's `smooth_loss` setter does
        else: l.smooth_loss = s

    @property
    def beta(self): return self.smooth_loss.beta

    def plot_loss(self, skip_start=5, with_valid=True, log=False, show_epochs=False, ax=None):
        "fastai's `plot_loss`; a fit without a validation set (valid_pct=0) plots the training loss alone."
        return super().plot_loss(skip_start, with_valid and 'valid_loss' in self.metric_names, log, show_epochs, ax)

    def before_epoch(self):
        self.cancel_train = self.cancel_valid = False
        if self.add_time: self.start_epoch = time.time()
        self.log = [self.learn.epoch]

    def before_train(self):
        for met in self.learn.metrics: met.reset()

    def before_validate(self):
        # fastai's `_valid_mets` (none after a cancelled validation; the loss and the metrics with `valid_metrics`)
        ms = self.learn.metrics
        ms = ms.items if type(ms) is L else ms  # (the list an `L` holds: iterating the `L` itself costs ~3 us)
        self._vm = vm = [] if getattr(self, 'cancel_valid', False) or not self.valid_metrics else [self.loss, *ms]
        for met in vm: met.reset()

    def after_train(self):
        if self.cancel_train: return
        self.log.append(self._smooth)
        if self.train_metrics: self.log += [_logged(m) for m in self.metrics]

    def after_validate(self):
        if self.cancel_valid: return
        log = self.log
        for m in (self._valid_mets if self._vm is None else self._vm): log.append(_logged(m))

    def after_epoch(self):
        self.learn.final_record = rec = self.log[1:]
        self.values.append(rec)
        if self.add_time: self.log.append(_format_time(int(time.time() - self.start_epoch)))
        self.learn.logger(self.log)
        self.iters.append(self._count)


def _swap_cb(learn, old, new):
    "Put `new` where `old` stands in `learn.cbs` (fastai code indexes `learn.cbs`), under the same attribute name."
    i = next(j for j, c in enumerate(learn.cbs) if c is old)
    old.learn = None
    if hasattr(learn, old.name): delattr(learn, old.name)
    new.learn = learn
    learn.cbs[i] = new
    setattr(learn, new.name, new)
    learn._handlers = {}


def use_lean_callbacks(learn:Learner, full_batch:bool=False, progress=None):
    "Swap fastai's default callbacks in `learn` for their lean subclasses (same names, same places, same records)."
    tev, rec, pr, cast = (getattr(learn, k, None) for k in ('train_eval', 'recorder', 'progress', 'cast_to_tensor'))
    if type(cast) is CastToTensor: _swap_cb(learn, cast, RegCastToTensor())
    if type(tev) is TrainEvalCallback: _swap_cb(learn, tev, RegTrainEval())
    if type(rec) is Recorder:
        # Full batch: every step's loss is exact, so the train_loss column shows it rather than fastai's running mean.
        beta = 0. if full_batch else rec.smooth_loss.beta
        new = RegRecorder(add_time=rec.add_time, train_metrics=rec.train_metrics, valid_metrics=rec.valid_metrics, beta=beta)
        _swap_cb(learn, rec, new)
    if progress is not None and type(pr).__name__ == 'ProgressCallback': _swap_cb(learn, pr, progress)
    return learn


# -- copies of a fresh learner: many runs of one problem without building each from scratch --------------------------
# Keeps: what `Learner.__init__` makes (the attributes, the callbacks by name and in order, each with its own state).
# Gains: a comparison's runs (an lr sweep of 200) share data, loss and model shape: building each with fastai's
# `__init__` (store_attr, add_cbs, callback names by regular expression, fastfit's callbacks swapped in) costs ~1.3 ms,
# a copy of a learner made once ~0.05 ms. Only a learner that never fitted is copied: its callbacks hold their first
# state, so new containers for that state make them as new.
def _fresh(v, memo:dict):
    "`v` as a new learner holds it: the learner and its callbacks through `memo`, containers and metrics copied, the rest shared."
    m = memo.get(id(v))
    if m is not None: return m
    if isinstance(v, L): return L([_fresh(x, memo) for x in v])
    if isinstance(v, (list, set, dict)): return v.copy()  # a fresh callback's lists and dicts are empty or hold plain values
    if isinstance(v, Metric): memo[id(v)] = v = _shallow(v)  # AvgLoss, AvgSmoothLoss, a metric: running sums of their own
    return v


def _shallow(o):
    "`copy.copy(o)` of a plain object (its `__dict__`), without `__reduce_ex__`."
    c = object.__new__(type(o))
    c.__dict__.update(o.__dict__)
    return c


def fresh_copy(learn:Learner, **attrs) -> Learner | None:
    """A copy of `learn` (a learner that never fitted) as its class would build it with `attrs` (e.g. dls, model, lr,
    opt_func) in place of its own, with callbacks and metrics of its own; None when `learn` cannot be copied so (then
    build the learner)."""
    if learn.__dict__.get('opt') is not None or any(type(cb).__call__ is not Callback.__call__ for cb in learn.cbs): return None
    new = object.__new__(type(learn))
    memo = {id(learn): new}
    for cb in learn.cbs: memo[id(cb)] = _shallow(cb)
    for cb in learn.cbs:
        c = memo[id(cb)]
        d = c.__dict__
        for k, v in d.items(): d[k] = _fresh(v, memo)
    d = {k: _fresh(v, memo) for k, v in learn.__dict__.items()}
    d.update(_handlers={}, lock=threading.Lock(), diverged=None)
    if 'model' in attrs: attrs['_model'] = attrs.pop('model')
    if 'dls' in attrs and '_dls_checked' in d: d['_dls_checked'] = attrs['dls']
    new.__dict__.update(d)
    new.__dict__.update(attrs)
    return new


def opt_like(learn:Learner, template:Learner) -> bool:
    """Give `learn` (a copy of `template`'s problem: its class, opt_func, splitter and model shape) the optimizer its
    `create_opt()` and `opt.set_hypers(lr=learn.lr)` would make, as a copy of `template.opt` (made so, never stepped):
    fastai's `create_opt` costs ~0.45 ms (its hypers set through `L`), the copy ~0.03 ms. False, with nothing done,
    when it cannot be copied (then create it)."""
    o0, f = template.opt, learn.opt_func
    if type(o0) is not Optimizer or f is not template.opt_func or isinstance(f, partial) or type(learn.lr) not in (float, int):
        return False
    if any(getattr(learn, k) is not getattr(template, k) for k in ('splitter', 'wd', 'wd_bn_bias', 'train_bn')): return False
    if o0.state and any(isinstance(x, torch.Tensor) for st in o0.state.values() for x in st.values()): return False  # stepped
    ps0, ps = list(template.model.parameters()), list(learn.model.parameters())
    if len(ps0) != len(ps) or any(p.shape != q.shape for p, q in zip(ps0, ps)): return False
    by = {id(p): q for p, q in zip(ps0, ps)}
    if any(id(p) not in by for pg in o0.param_lists for p in pg): return False
    o = copy.copy(o0)
    o.cbs, o.param_lists = L(o0.cbs), L(L(by[id(p)] for p in pg) for pg in o0.param_lists)
    o.hypers = L(dict(h, lr=learn.lr) for h in o0.hypers)  # fastai's set_hyper of one number: every group's
    o.state = defaultdict(dict, {(by.get(id(k), k) if isinstance(k, torch.Tensor) else k): dict(v) for k, v in o0.state.items()})
    learn.opt = o
    return True


# -- distributed training: what fastai.distributed assumes CUDA for ----------------------------------------------------
# fastai.distributed imports accelerate when it is imported, so neither it nor `fastfit.distributed` (the trainer and the
# sharded loader, built on it) is imported before `distrib_ctx` is used. These pieces need neither.
def backend_for(cuda:bool) -> str:
    "The process group's backend: NCCL between GPUs, gloo between CPU processes."
    return 'nccl' if cuda else 'gloo'


# Keeps: fastai's `setup_distrib` (what `distrib_ctx(in_notebook=True)` calls): this process's GPU, the process group
# from the environment. Gains: on a machine without CUDA, gloo and no `torch.cuda.set_device` (fastai's sets up NCCL and
# a GPU whatever the machine has, so it fails on CPU).
def setup_distrib(gpu=None, cuda:bool|None=None):
    "Set up this process for distributed training (GPU `gpu` with CUDA); returns `gpu`."
    if gpu is None: return gpu
    gpu = int(gpu)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda: torch.cuda.set_device(gpu)
    if num_distrib() > 0 and not dist.is_initialized(): dist.init_process_group(backend=backend_for(cuda), init_method='env://')
    return gpu


def collective_device() -> torch.device:
    "Where a collective's tensor must live: this rank's GPU under NCCL (it takes CUDA tensors only), else the CPU."
    if dist.is_initialized() and dist.get_backend() == 'nccl': return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


class BroadcastOnBackend:
    "Mixed in before fastai's `DistributedDL` (`fastfit.distributed.RegDistributedDL`)."
    # Keeps: fastai's `DistributedDL._broadcast` (rank `rank`'s list of indices, on every rank). Gains: it runs under gloo
    # on CPU too; fastai's moves the tensor with `.cuda()`, which fails on a machine without CUDA.
    def _broadcast(self, t, rank):
        t = torch.tensor(t, dtype=torch.long, device=collective_device())
        dist.broadcast(t, rank)
        return t.cpu().tolist()


def accelerator_kwargs(kwargs:dict, cuda:bool|None=None) -> dict:
    "The arguments of fastai's `DistributedTrainer` (accelerate's `Accelerator`), with `cpu=True` on a machine without CUDA."
    # accelerate counts a torchrun launch as distributed only on an accelerator (CUDA...) unless told `cpu=True`: without
    # it, each CPU process would train alone on its shard.
    cuda = torch.cuda.is_available() if cuda is None else cuda
    return kwargs if cuda or 'cpu' in kwargs else {**kwargs, 'cpu': True}

"""`ParamHistory`: the parameters and loss after every optimizer step, in preallocated, bounded buffers; with `grads=True`
also each step's gradient, the parameters before it, the optimizer's state and hyper-parameters (the 'step' panel)."""
from __future__ import annotations

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.schedule import LRFinder
from torch.nn.parallel import DataParallel, DistributedDataParallel

from .data import mean_over_rows
from .models import flat_names

__all__ = ['ParamHistory']

_STATE = (('grad_avg', 'average_grad'), ('sqr_avg', 'average_sqr_grad'))  # fastai's running averages, and who keeps them
_HYPERS = ('lr', 'mom', 'sqr_mom', 'eps', 'wd')


def opt_cb_names(opt) -> tuple:
    "The names of a fastai optimizer's step functions, e.g. ('weight_decay', 'average_grad', 'momentum_step')."
    return tuple(getattr(getattr(f, 'func', f), '__name__', type(f).__name__) for f in getattr(opt, 'cbs', ()))


class ParamHistory(Callback):
    "Records the parameters after each optimizer step (record 0: the initial state) and the training loss at them."
    order, run_valid = 55, False
    # Plain attribute sets: fastai's `Callback.__setattr__` looks each name up on the learner, every step.
    __setattr__ = object.__setattr__
    # A model too big for `min_records` records of all its parameters within `max_bytes` records a subset of them by
    # default (`params=` chooses it); others keep all, as many records as fit (a 10k-parameter MLP: ~800, 100 MB).
    min_records = 10
    numpy_views = True  # on the CPU, write records through numpy views (False: torch's copies, the path of CUDA tensors)
    after_fit_on_error = True  # FitLearner runs our after_fit when an error cuts a fit short: we must tidy up

    def __init__(self,
        max_records:int=2000, # at most this many records; when full, every other one is dropped (first and last kept)
        params:list|None=None, # names of the parameters to record (default: all, or a subset for models too big for `max_bytes`)
        grads:bool=True, # also record each step's gradient, the parameters before it, the optimizer's state and hypers
        max_bytes:int=100_000_000, # the buffers stay under this many bytes: a model with big records keeps fewer of them
    ):
        try: max_records = int(max_records)
        except (TypeError, ValueError): raise TypeError(f"max_records must be an int >= 3, got {max_records!r}") from None
        if max_records < 3: raise ValueError(f"max_records must be >= 3 (first, last and one between), got {max_records!r}")
        if params is not None:
            params = [params] if isinstance(params, str) else list(params)
            if not params or not all(isinstance(k, str) for k in params):
                raise TypeError(f"params must be a non-empty list of parameter names, got {params!r}")
        try: max_bytes = int(max_bytes)
        except (TypeError, ValueError): raise TypeError(f"max_bytes must be an int, got {max_bytes!r}") from None
        if max_bytes <= 0: raise ValueError(f"max_bytes must be > 0, got {max_bytes!r}: e.g. 100_000_000 (100 MB)")
        self.max_records, self.names, self.grads_on, self.max_bytes = max_records, params, bool(grads), max_bytes
        self.reset()

    @property
    def name(self):
        "fastai's name for the callback (`learn.param_history`), without its regular expressions for this class."
        return 'param_history' if type(self) is ParamHistory else super().name

    def reset(self):
        "Forget every record; the next fit starts again at step 0."
        self.n, self.step, self.stride, self.layout = 0, 0, 1, None
        self._flat = self._flat_np = self._loss = self._steps = None
        self._slot, self._tail = 0, False
        self._g, self._g_np, self._hyp, self.opt_cbs = {}, {}, {}, ()
        self._configs = []  # each fit's (optimizer step functions, parameter group of each column): records name theirs

    # -- recording ---------------------------------------------------------------------------------------------
    def _tracked(self):
        model = self.learn.model
        # Under `distrib_ctx` (rank 0) the model is wrapped in DistributedDataParallel: its parameters, named as on one process.
        if isinstance(model, (DataParallel, DistributedDataParallel)): model = model.module
        named = list(model.named_parameters())
        if self.names is None:
            per_value = 4 * (1 + (len(self._step_keys()) if self.grads_on else 0))  # bytes a record takes per parameter
            big = self.max_bytes // (per_value * self.min_records)
            if sum(p.numel() for _, p in named) <= big: return named
            # Too many to keep `min_records` records of all within `max_bytes`: the first tensors, up to `big` scalars.
            out, size = [], 0
            for k, p in named:
                if out and size + p.numel() > big: break
                out.append((k, p)); size += p.numel()
            total = sum(p.numel() for _, p in named)
            print(f"ParamHistory: the model has {total:,} parameters; recording only {[k for k, _ in out]} "
                  f"({size:,} values). Choose others with ParamHistory(params=[...]) from {[k for k, _ in named]}")
            return out
        missing = [k for k in self.names if k not in dict(named)]
        if missing: raise ValueError(f"ParamHistory(params={self.names}): {missing} not among the model's parameters "
                                     f"{[k for k, _ in named]}")
        return [(k, p) for k, p in named if k in self.names]

    # Recording is armed by the first training phase of a fit (`run_train`, which fastai's dispatch honours for the
    # per-step events at no cost): validate/get_preds/predict and events called outside a fit leave the history alone.
    run_train = False

    def before_fit(self): self.run_train = False

    def before_train(self):
        if self.run_train: return
        # lr_find's mock training restores the weights afterwards: it is not part of the history.
        if any(isinstance(cb, LRFinder) for cb in self.learn.cbs): return
        self._setup()
        self.run_train = True

    def _setup(self):
        tracked = self._tracked()
        self._ps = [p for _, p in tracked]
        layout = [(k, tuple(p.shape), p.device) for k, p in tracked]
        if layout == self.layout and self.n and len(self._flat) < self.rows: self._grow()  # unpickled: room again
        if layout != self.layout or self.n == 0:
            self.reset()
            self.layout = layout
            size, dev = sum(p.numel() for p in self._ps), self._ps[0].device
            keys = self._step_keys() if self.grads_on else []
            rows = self.rows = self._rows(size * (1 + len(keys)))
            self._flat = torch.empty(rows, size, device=dev)
            self._loss = np.full(rows, np.nan, dtype=np.float32)
            self._steps = np.zeros(rows, dtype=np.int64)
            self._g = {k: torch.full((rows, size), np.nan, device=dev) for k in keys}
        # On the CPU, numpy views of the parameters make a record one memcpy per tensor (a torch.cat costs ~10x).
        # fastai's optimizers update parameters in place, so the views stay valid for the whole fit.
        cpu = self.numpy_views and all(p.device.type == 'cpu' and p.dtype == torch.float32 for p in self._ps)
        self._flat_np = self._flat.numpy() if cpu else None
        if cpu:
            bounds = np.cumsum([0] + [p.numel() for p in self._ps])
            self._src = [(int(i), int(j), p.detach().numpy().reshape(-1)) for i, j, p in zip(bounds, bounds[1:], self._ps)]
        if self.grads_on: self._setup_grads(cpu)
        # FitLearner computes the loss as a float once per step (its divergence check); else we take `.item()`.
        self._loss_value = getattr(type(self.learn), 'records_loss_value', False)
        if self.n == 0:
            self._write(0)
            self._commit()

    def _setup_like(self, h0) -> bool:
        """`before_train`'s setup of this fresh history, from `h0`'s just made for a learner of the same problem (its
        model's shapes, an optimizer of the same kind and parameter groups): its own buffers and views, without working
        out the layout and the optimizer's configuration again (`fastfit.batched` sets up 200 runs' at once: ~0.4 ms each
        by `_setup`). False, with nothing done, when it cannot be (then `before_train`)."""
        opt, opt0 = self.learn.opt, h0.learn.opt
        ps = list(self.learn.model.parameters())
        if self.n or h0.n != 1 or self.names is not None or h0.names is not None or self.grads_on != h0.grads_on \
                or (self.max_records, self.max_bytes) != (h0.max_records, h0.max_bytes) or len(ps) != len(h0._ps) \
                or any(p.shape != q.shape or p.device != q.device for p, q in zip(ps, h0._ps)) \
                or [len(pg) for pg in getattr(opt, 'param_lists', ())] != [len(pg) for pg in getattr(opt0, 'param_lists', ())]:
            return False
        hypers = list(getattr(opt, 'hypers', None) or [{}])
        if self.grads_on and (opt_cb_names(opt) != h0.opt_cbs or [h.keys() for h in hypers] != [h.keys() for h in h0._hyp_hypers]):
            return False
        self.reset()
        self._ps, self.layout, self.rows, self._loss_value = ps, h0.layout, h0.rows, h0._loss_value
        self._flat, self._loss, self._steps = torch.empty_like(h0._flat), np.full_like(h0._loss, np.nan), np.zeros_like(h0._steps)
        self._g = {k: torch.full_like(b, float('nan')) for k, b in h0._g.items()}
        cpu = h0._flat_np is not None
        self._flat_np = self._flat.numpy() if cpu else None
        if cpu: self._src = [(i, j, p.detach().numpy().reshape(-1)) for (i, j, _), p in zip(h0._src, ps)]
        if self.grads_on:
            self.opt_cbs, self._hyp_hypers = h0.opt_cbs, hypers
            self._hyp = {k: np.full_like(a, np.nan) for k, a in h0._hyp.items()}
            self._hyp_pairs = [(self._hyp[k], g, hypers[g], k) for _, g, _, k in h0._hyp_pairs]
            self._configs, self._config, self._state_keys = list(h0._configs), h0._config, h0._state_keys
            self._bind_step_buffers(opt, cpu)
            for k, v in self._state_start.items(): self._g[k][0] = v
        self._write(0)
        self._commit()
        self.run_train = True
        return True

    # -- recording a step (grads=True) ---------------------------------------------------------------------------------
    def _step_keys(self) -> list:
        "The buffers of a step: its gradient, the parameters before it, and the optimizer's running averages after and before."
        names = opt_cb_names(self.learn.opt)
        state = [k for k, f in _STATE if f in names]
        return ['grad', 'before'] + state + [f'{k}_before' for k in state]

    def _setup_grads(self, cpu):
        opt = self.learn.opt
        self.opt_cbs = opt_cb_names(opt)
        for k in self._step_keys():  # a later fit with another optimizer: the buffers this one needs
            if k not in self._g: self._g[k] = torch.full_like(self._flat, float('nan'))
        # fastai updates each group's dict in place (schedules): look them up once. A hyper is recorded per parameter group
        # (lr=slice(...) with a splitter gives each its own), (rows, groups) each; a column reads its own group's.
        hypers = list(getattr(opt, 'hypers', None) or [{}])
        n = len(hypers)
        for k in [*_HYPERS, 'loss_before', 'opt_step', 'config']:
            if k in _HYPERS and k not in hypers[0]: continue
            shape = (self.rows, n) if k in _HYPERS else self.rows
            if k not in self._hyp: self._hyp[k] = np.full(shape, np.nan)
            elif k in _HYPERS and self._hyp[k].shape[1] < n:  # a later fit with more groups
                self._hyp[k] = np.pad(self._hyp[k], ((0, 0), (0, n - self._hyp[k].shape[1])), constant_values=np.nan)
        self._hyp_pairs = [(self._hyp[k], g, h, k) for k in _HYPERS if k in hypers[0] for g, h in enumerate(hypers)]
        self._hyp_hypers = hypers
        # This fit's optimizer and parameter groups, by number: each record of a step says which it was made by.
        group = {id(p): g for g, ps in enumerate(getattr(opt, 'param_lists', None) or [list(self._ps)]) for p in ps}
        cols = np.concatenate([np.full(p.numel(), group.get(id(p), -1)) for p in self._ps])  # -1: not in the optimizer
        config = (self.opt_cbs, cols)
        same = [i for i, (c, g) in enumerate(self._configs) if c == config[0] and np.array_equal(g, cols)]
        if not same: self._configs.append(config)
        self._config = same[0] if same else len(self._configs) - 1
        self._state_keys = [k for k, _ in _STATE if k in self._g]
        self._bind_step_buffers(opt, cpu)
        if self.n == 0:  # the initial record: no step yet; the running averages as the optimizer holds them (none: 0)
            for k, v in self._state_start.items(): self._g[k][0] = v

    def _bind_step_buffers(self, opt, cpu):
        "What a step's record writes through: the buffers' views, the optimizer's state, and that state before this fit."
        self._opt_state = getattr(opt, 'state', {})
        # On the CPU numpy views: a record is one memcpy per tensor. Else torch copies (one cat per buffer when it can).
        self._G = {k: b.numpy() for k, b in self._g.items()} if cpu else self._g
        self._F = self._flat_np if cpu else self._flat
        self._pairs = [(self._G[k], self._G[k + '_before']) for k in self._state_keys]
        self._gexp, self._grads_gone = None, False
        # The state before this fit's first step is the optimizer's now: a new one's is empty (0), whatever came before.
        self._state_start = {k: self._opt_state_flat(k) for k in self._state_keys}

    def _opt_state_flat(self, k) -> torch.Tensor:
        "The optimizer's running average `k` of every tracked parameter as one flat vector (0 where it holds none yet)."
        out = torch.zeros(self._flat.shape[1], dtype=self._g[k].dtype, device=self._g[k].device)
        for (i, j), p in zip(self._bounds(), self._ps):
            t = self._opt_state.get(p, {}).get(k)
            if t is not None: out[i:j] = t.detach().reshape(-1).to(out.dtype)
        return out

    def _bounds(self) -> list:
        b = np.cumsum([0] + [p.numel() for p in self._ps])
        return [(int(i), int(j)) for i, j in zip(b, b[1:])]

    def _grad_sources(self):
        "What each step copies: per gradient and state tensor (buffer, i, j, its flat view); and what to check it by."
        self._gsrc, self._gexp, cpu = [], [], self._G is not self._g
        for (i, j), p in zip(self._bounds(), self._ps):
            st = self._opt_state.get(p, {}) if self._state_keys else {}
            for k, t in [(None, p.grad)] + [(k, st.get(k)) for k in self._state_keys]:
                self._gexp.append((p, k, t))
                if t is None: continue
                v = t.detach().reshape(-1)
                self._gsrc.append((self._G['grad' if k is None else k], i, j, v.numpy() if cpu and v.dtype == torch.float32 else v))
        self._gfull = all(t is not None for _, _, t in self._gexp)
        # Off the CPU: one torch.cat per buffer (one kernel), when every tensor of it is there and float32.
        self._gcat = None if cpu or not self._gfull or any(v.dtype != torch.float32 for *_, v in self._gsrc) else \
            [(self._G[k], [v for d, _, _, v in self._gsrc if d is self._G[k]]) for k in ('grad', *self._state_keys)]

    def _write_grads(self, slot):
        "Before the parameters of this step are written at `slot`: its gradient, the state before and after, its hypers."
        G, prev, st = self._G, self._slot, self._opt_state
        # The latest record (`prev`, maybe the tail about to be overwritten) holds the parameters and state before this step.
        G['before'][slot] = self._F[prev]
        for cur, before in self._pairs: before[slot] = cur[prev]
        exp = self._gexp
        if exp is None:  # this fit's first step: the state before it is the optimizer's at the fit's start
            self._grad_sources()
            for k, v in self._state_start.items(): self._g[k + '_before'][slot] = v
        else:
            for p, k, t in exp:  # torch or the optimizer may have made a tensor anew (set_to_none): views anew
                if (p.grad if k is None else st[p].get(k)) is not t:
                    self._grad_sources()
                    break
        if self._grads_gone or not self._gfull:  # what is not known: NaN (a stopped fit's zeroed grads, a grad of None)
            for k in ('grad', *self._state_keys): G[k][slot] = float('nan')
        if self._grads_gone: pass
        elif self._gcat is not None:
            for dst, vs in self._gcat: torch.cat(vs, out=dst[slot])
        elif G is not self._g:
            for dst, i, j, v in self._gsrc: dst[slot, i:j] = v
        else:
            for dst, i, j, v in self._gsrc: dst[slot, i:j].copy_(v)
        for a, g, h, k in self._hyp_pairs: a[slot, g] = h[k]
        self._hyp['config'][slot] = self._config
        self._hyp['loss_before'][slot] = self._loss[prev]
        if self._state_keys:
            s = st[self._ps[0]].get('step')
            if s is not None: self._hyp['opt_step'][slot] = s

    def _write(self, slot):
        if self._flat_np is not None:
            row = self._flat_np[slot]
            for i, j, v in self._src: row[i:j] = v
        else:
            with torch.no_grad(): torch.cat([p.detach().reshape(-1) for p in self._ps], out=self._flat[slot])
        self._steps[slot], self._slot = self.step, slot

    def _commit(self):
        self.n += 1
        self._tail = False
        if self.n == self.rows: self._thin()

    def _rows(self, row_floats:int) -> int:
        "How many records fit `max_bytes` with rows of `row_floats` float32 values (at most `max_records`, at least 3)."
        return max(3, min(self.max_records, self.max_bytes // (4 * row_floats + 64)))

    def _thin(self):
        "Full: keep every other record and record half as often; the last one stays, as the current tail."
        n, keep = self.n, np.arange(0, self.n, 2)
        last_odd = (n - 1) % 2 == 1
        if last_odd: keep = np.append(keep, n - 1)
        k = len(keep)
        idx = torch.as_tensor(keep, device=self._flat.device)
        self._flat[:k] = self._flat[idx].clone()
        self._loss[:k], self._steps[:k] = self._loss[keep], self._steps[keep]
        for b in self._g.values(): b[:k] = b[idx].clone()
        for a in self._hyp.values(): a[:k] = a[keep]
        self.stride *= 2
        # The last record's step is not a multiple of the new stride: it is the tail, overwritten by the next step.
        self.n, self._tail, self._slot = (k - 1, True, k - 1) if last_odd else (k, False, k - 1)

    def after_loss(self):
        l = self.learn
        v = l.__dict__.get('_loss_v') if self._loss_value else None  # RegLearner's loss of this step, already a float
        self._loss[self._slot] = l.loss.item() if v is None else v

    def after_step(self):
        self.step += 1
        if self.grads_on: self._write_grads(self.n)
        self._write(self.n)
        if self.step % self.stride == 0: self._commit()
        else: self._tail = True

    def after_fit(self):
        if not self.run_train: return
        self.run_train = False
        if getattr(self.learn, 'diverged', None) is not None:
            # The latest record's parameters gave a NaN/inf loss: keep only the finite records before it.
            if self._tail: self._tail = False
            else: self.n -= 1
            self._slot = max(self.n - 1, 0)
            self.step = int(self._steps[self._slot]) if self.n else 0
            # ...and so does the model: a refit with a smaller lr starts from the last finite state, as the advice says.
            if self.n:
                with torch.no_grad():
                    for p, v in zip(self._ps, self._unflat(self._flat[self._slot])): p.copy_(v)
            return
        # A fit cut short (Ctrl-C) between the optimizer's step and after_step: the model moved, the history did not.
        with torch.no_grad(): now = torch.cat([p.detach().reshape(-1) for p in self._ps]).to(self._flat.dtype)
        if not torch.equal(now, self._flat[self._slot]):
            self._grads_gone = True  # zeroed when the fit stopped: this step's gradient is not known
            try: self.after_step()
            finally: self._grads_gone = False
        # The last state's loss has no forward pass yet: one on the whole training set (in batches: memory stays bounded).
        dl, learn = self.learn.dls.train, self.learn
        x, y = getattr(dl, 'x', None), getattr(dl, 'y', None)
        if x is not None and y is not None:
            with torch.no_grad(): self._loss[self._slot] = float(mean_over_rows(lambda x, y: learn.loss_func(learn.model(x), y), x, y))

    def _take(self, flat, loss, steps, n:int, step:int, stride:int, tail:bool, g:dict|None=None, loss_before=None):
        """Records made elsewhere, as this fit's own (`fastfit.batched` fits several runs at once and hands each its
        columns): `flat` (m, P) parameters, `loss` (m,), `steps` (m,), with `grads` the buffers `g` (name -> (m, P)) and
        `loss_before` (m,); `n`, `step`, `stride`, `tail` as `after_step` leaves them. Called after `before_train`."""
        m = n + bool(tail)
        self._flat[:m] = flat
        self._loss[:m], self._steps[:m] = loss, steps
        for k, b in (g or {}).items(): self._g[k][:m] = b
        if self.grads_on and m > 1:  # record 0 (the start) has no step: its step data stay NaN
            for a, grp, h, k in self._hyp_pairs: a[1:m, grp] = h[k]
            self._hyp['config'][1:m] = self._config
            self._hyp['loss_before'][1:m] = loss_before[1:m]
            if self._state_keys and self._opt_state.get(self._ps[0], {}).get('step') is not None:
                self._hyp['opt_step'][1:m] = steps[1:m]  # a fresh optimizer's step count is the step's own
        self.n, self.step, self.stride, self._tail = n, step, stride, bool(tail)
        self._slot = n if tail else n - 1

    def _unflat(self, row):
        "A flat record row as one tensor per tracked parameter."
        out, i = [], 0
        for p in self._ps:
            out.append(row[i:i + p.numel()].view_as(p)); i += p.numel()
        return out

    # -- pickling (learn.export) ----------------------------------------------------------------------------------
    # Views of the live model and optimizer, and the buffers again under other names: each fit's setup makes them anew.
    _TRANSIENT = ('_ps', '_src', '_flat_np', '_G', '_F', '_pairs', '_gsrc', '_gexp', '_gcat', '_hyp_pairs', '_hyp_hypers',
                  '_opt_state', '_state_start')

    def __getstate__(self) -> dict:
        "What pickling keeps (`learn.export`): the records made, not the empty rows ahead of them nor views of the model."
        d = {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}
        if self._flat is not None:
            m = len(self)
            d.update(_flat=self._flat[:m].clone(), _loss=self._loss[:m].copy(), _steps=self._steps[:m].copy(),
                     _g={k: b[:m].clone() for k, b in self._g.items()}, _hyp={k: a[:m].copy() for k, a in self._hyp.items()})
        return d

    def __setstate__(self, d:dict):
        self.__dict__.update(d)
        for k in self._TRANSIENT: self.__dict__.setdefault(k, None)

    def _grow(self):
        "Give an unpickled history's buffers their `rows` again (NaN/0 past the records), so a later fit records on."
        extra = self.rows - len(self._flat)
        def pad(t, fill):
            if isinstance(t, torch.Tensor): return torch.cat([t, t.new_full((extra, *t.shape[1:]), fill)])
            return np.concatenate([t, np.full((extra, *t.shape[1:]), fill, dtype=t.dtype)])
        self._flat, self._loss, self._steps = pad(self._flat, 0.), pad(self._loss, np.nan), pad(self._steps, 0)
        self._g = {k: pad(b, float('nan')) for k, b in self._g.items()}
        self._hyp = {k: pad(a, np.nan) for k, a in self._hyp.items()}

    # -- reading ------------------------------------------------------------------------------------------------
    def _view(self):
        n = self.n + (1 if self._tail else 0)
        return slice(0, n)

    def __len__(self): return self._view().stop

    @property
    def flat(self) -> torch.Tensor:
        "(T, P) every recorded scalar parameter, columns named by `flat_names`, on the CPU."
        if self._flat is None: return torch.empty(0, 0)
        return self._flat[self._view()].cpu()

    @property
    def flat_names(self) -> list: return flat_names((k, s) for k, s, _ in self.layout or [])

    @property
    def steps(self) -> np.ndarray:
        "(T,) step index of each record; record 0 is the initial state."
        return self._steps[self._view()].copy() if self._steps is not None else np.zeros(0, dtype=np.int64)

    @property
    def losses(self) -> torch.Tensor:
        "(T,) training loss at each record's parameters (full batch: exact; minibatch: the next batch's, the last: all data)."
        return torch.from_numpy(self._loss[self._view()].copy()) if self._loss is not None else torch.empty(0)

    @property
    def params(self) -> dict:
        "{name: (T, *shape)} the parameters after each recorded step."
        return self._by_name(self.flat)

    def _by_name(self, flat) -> dict:
        out, i = {}, 0
        for k, s, _ in self.layout or []:
            n = int(np.prod(s))
            out[k] = flat[:, i:i + n].reshape(len(flat), *s)
            i += n
        return out

    @property
    def has_grads(self) -> bool:
        "Whether the history holds each step's gradient (recorded with `ParamHistory(grads=True)`)."
        return bool(self._g)

    @property
    def grads(self) -> dict:
        "{name: (T, *shape)} the gradient each recorded step used (NaN for record 0, the start); needs `grads=True`."
        if not self._g: raise ValueError("this history holds no gradients: record them with ParamHistory(grads=True), e.g. "
                                         "regression_learner(dls, cbs=ParamHistory(grads=True))")
        return self._by_name(self._g['grad'][self._view()].cpu())

    @property
    def step_data(self) -> dict:
        """What each recorded step did, as flat (T, P) tensors (columns as `flat_names`) and (T,) arrays: 'grad', 'before'
        (the parameters before the step), fastai's running averages 'grad_avg'/'sqr_avg' after it and '..._before',
        the optimizer's hypers ('lr', 'mom', 'sqr_mom', 'eps', 'wd', where it has them), 'loss_before' (the loss the
        step's forward pass computed) and 'opt_step' (Adam's step count); record 0 (the start) is NaN. Needs `grads=True`."""
        if not self._g: self.grads  # the error saying how to record them
        v = self._view()
        out = {k: b[v].cpu() for k, b in self._g.items()}
        out.update({k: a[v].copy() for k, a in self._hyp.items() if k != 'config'})
        one = all(not (g < 0).any() for _, g in self._configs) and all(out[k].shape[1] == 1 for k in _HYPERS if k in out)
        groups = None if one else self._groups()
        for k in _HYPERS:
            if k not in out: continue
            a = out[k]
            if one: out[k] = a[:, 0]  # one parameter group holding every parameter: (T,)
            else:  # each column its own group's value, (T, P) (NaN for a parameter the optimizer does not hold)
                a = np.concatenate([a, np.full((len(a), 1), np.nan)], 1)
                out[k] = np.take_along_axis(a, np.where(groups < 0, a.shape[1] - 1, groups), 1)
        return out

    def _groups(self) -> np.ndarray:
        "(T, P) the optimizer's parameter group of each record's columns (-1: not in the optimizer; record 0: group 0)."
        cfg, P = self._hyp.get('config'), len(self.flat_names)
        if cfg is None or not self._configs: return np.zeros((len(self), P), dtype=np.int64)
        table = np.stack([g for _, g in self._configs])
        return table[np.nan_to_num(cfg[self._view()], nan=0).astype(np.int64)]

    def opt_cbs_at(self, i:int) -> tuple:
        "The step functions of the optimizer that made record `i`'s step (see `opt_cb_names`; record 0: the first fit's)."
        cfg = self._hyp.get('config')
        if cfg is None or not self._configs: return self.opt_cbs
        c = cfg[self._view()][i]
        return self._configs[0 if np.isnan(c) else int(c)][0]

    def record(self, i) -> dict:
        "{name: tensor} of record `i` (negative counts from the end), for `torch.func.functional_call`."
        return {k: v[i] for k, v in self.params.items()}

    def __repr__(self): return f"ParamHistory({len(self)} records, steps 0..{self.step}, every {self.stride})"

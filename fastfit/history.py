"`ParamHistory`: the parameters and loss after every optimizer step, in preallocated, bounded buffers."
from __future__ import annotations

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.schedule import LRFinder

from .data import mean_over_rows
from .models import flat_names

__all__ = ['ParamHistory']


class ParamHistory(Callback):
    "Records the parameters after each optimizer step (record 0: the initial state) and the training loss at them."
    order, run_valid = 55, False
    # Plain attribute sets: fastai's `Callback.__setattr__` looks each name up on the learner, every step.
    __setattr__ = object.__setattr__
    # The records' memory: a model of P scalars keeps at most max_bytes/(4P) records (a 10k-parameter model: 2000, 80 MB),
    # and one too big for `min_records` of them records a subset of its parameters by default (`params=` chooses it).
    max_bytes, min_records = 100_000_000, 100
    after_fit_on_error = True  # RegLearner runs our after_fit when an error cuts a fit short: we must tidy up

    def __init__(self,
        max_records:int=2000, # at most this many (fewer if over `max_bytes`); when full, every other one is dropped (first, last kept)
        params:list|None=None, # names of the parameters to record (default: all, or a subset for models too big for `max_bytes`)
    ):
        try: max_records = int(max_records)
        except (TypeError, ValueError): raise TypeError(f"max_records must be an int >= 3, got {max_records!r}") from None
        if max_records < 3: raise ValueError(f"max_records must be >= 3 (first, last and one between), got {max_records!r}")
        if params is not None:
            params = [params] if isinstance(params, str) else list(params)
            if not params or not all(isinstance(k, str) for k in params):
                raise TypeError(f"params must be a non-empty list of parameter names, got {params!r}")
        self.max_records, self.names = max_records, params
        self.reset()

    def reset(self):
        "Forget every record; the next fit starts again at step 0."
        self.n, self.step, self.stride, self.layout = 0, 0, 1, None
        self._flat = self._flat_np = self._loss = self._steps = None
        self._slot, self._tail = 0, False

    # -- recording ---------------------------------------------------------------------------------------------
    def _tracked(self):
        named = list(self.learn.model.named_parameters())
        if self.names is None:
            big = self.max_bytes // (4 * self.min_records)
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
        if layout != self.layout or self.n == 0:
            self.reset()
            self.layout = layout
            size, dev = sum(p.numel() for p in self._ps), self._ps[0].device
            self._cap = max(3, min(self.max_records, self.max_bytes // (4 * size)))  # records that fit in max_bytes
            self._flat = torch.empty(self._cap, size, device=dev)
            self._loss = np.full(self._cap, np.nan, dtype=np.float32)
            self._steps = np.zeros(self._cap, dtype=np.int64)
        # On the CPU, numpy views of the parameters make a record one memcpy per tensor (a torch.cat costs ~10x).
        # fastai's optimizers update parameters in place, so the views stay valid for the whole fit.
        cpu = all(p.device.type == 'cpu' and p.dtype == torch.float32 for p in self._ps)
        self._flat_np = self._flat.numpy() if cpu else None
        if cpu:
            bounds = np.cumsum([0] + [p.numel() for p in self._ps])
            self._src = [(int(i), int(j), p.detach().numpy().reshape(-1)) for i, j, p in zip(bounds, bounds[1:], self._ps)]
        # RegLearner computes the loss as a float once per step (its divergence check); else we take `.item()`.
        self._loss_value = getattr(type(self.learn), 'records_loss_value', False)
        if self.n == 0:
            self._write(0)
            self._commit()

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
        if self.n == self._cap: self._thin()

    def _thin(self):
        "Full: keep every other record and record half as often; the last one stays, as the current tail."
        n, keep = self.n, np.arange(0, self.n, 2)
        last_odd = (n - 1) % 2 == 1
        if last_odd: keep = np.append(keep, n - 1)
        k = len(keep)
        idx = torch.as_tensor(keep, device=self._flat.device)
        self._flat[:k] = self._flat[idx].clone()
        self._loss[:k], self._steps[:k] = self._loss[keep], self._steps[keep]
        self.stride *= 2
        # The last record's step is not a multiple of the new stride: it is the tail, overwritten by the next step.
        self.n, self._tail, self._slot = (k - 1, True, k - 1) if last_odd else (k, False, k - 1)

    def after_loss(self):
        self._loss[self._slot] = self.learn.loss_value if self._loss_value else self.learn.loss.item()

    def after_step(self):
        self.step += 1
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
        if not torch.equal(now, self._flat[self._slot]): self.after_step()
        # The last state's loss has no forward pass yet: one on the whole training set (in batches: memory stays bounded).
        dl, learn = self.learn.dls.train, self.learn
        x, y = getattr(dl, 'x', None), getattr(dl, 'y', None)
        if x is not None and y is not None:
            with torch.no_grad(): self._loss[self._slot] = float(mean_over_rows(lambda x, y: learn.loss_func(learn.model(x), y), x, y))

    def _unflat(self, row):
        "A flat record row as one tensor per tracked parameter."
        out, i = [], 0
        for p in self._ps:
            out.append(row[i:i + p.numel()].view_as(p)); i += p.numel()
        return out

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
        flat, out, i = self.flat, {}, 0
        for k, s, _ in self.layout or []:
            n = int(np.prod(s))
            out[k] = flat[:, i:i + n].reshape(len(flat), *s)
            i += n
        return out

    def record(self, i) -> dict:
        "{name: tensor} of record `i` (negative counts from the end), for `torch.func.functional_call`."
        return {k: v[i] for k, v in self.params.items()}

    def __repr__(self): return f"ParamHistory({len(self)} records, steps 0..{self.step}, every {self.stride})"

"`ParamHistory`: the parameters and loss after every optimizer step, in preallocated, bounded buffers."
from __future__ import annotations

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.schedule import LRFinder

from .models import flat_names

__all__ = ['ParamHistory']


class ParamHistory(Callback):
    "Records the parameters after each optimizer step (record 0: the initial state) and the training loss at them."
    order, run_valid = 55, False

    def __init__(self,
        max_records:int=2000, # at most this many records; when full, every other one is dropped (first and last kept)
        params:list|None=None, # names of the parameters to record (default: all)
    ):
        if int(max_records) < 3: raise ValueError(f"max_records must be >= 3, got {max_records!r}")
        self.max_records, self.names = int(max_records), params
        self.reset()

    def reset(self):
        "Forget every record; the next fit starts again at step 0."
        self.n, self.step, self.stride, self.layout = 0, 0, 1, None
        self._flat = self._loss = self._steps = None
        self._slot, self._tail = 0, False

    # -- recording ---------------------------------------------------------------------------------------------
    def _tracked(self):
        named = list(self.learn.model.named_parameters())
        if self.names is None: return named
        missing = [k for k in self.names if k not in dict(named)]
        if missing: raise ValueError(f"ParamHistory(params={self.names}): {missing} not among the model's parameters "
                                     f"{[k for k, _ in named]}")
        return [(k, p) for k, p in named if k in self.names]

    def before_fit(self):
        # lr_find's mock training restores the weights afterwards: it is not part of the history.
        if any(isinstance(cb, LRFinder) for cb in self.learn.cbs): self.run = False; return
        tracked = self._tracked()
        self._ps = [p for _, p in tracked]
        layout = [(k, tuple(p.shape), p.device) for k, p in tracked]
        if layout != self.layout or self.n == 0:
            self.reset()
            self.layout = layout
            size, dev = sum(p.numel() for p in self._ps), self._ps[0].device
            self._flat = torch.empty(self.max_records, size, device=dev)
            self._loss = torch.full((self.max_records,), float('nan'), device=dev)
            self._steps = np.zeros(self.max_records, dtype=np.int64)
            self._write(0)
            self._commit()

    def _write(self, slot):
        with torch.no_grad(): torch.cat([p.detach().reshape(-1) for p in self._ps], out=self._flat[slot])
        self._steps[slot], self._slot = self.step, slot

    def _commit(self):
        self.n += 1
        self._tail = False
        if self.n == self.max_records:  # full: keep every other record, record half as often
            keep = slice(0, self.n, 2)
            k = len(range(self.n)[keep])
            self._flat[:k] = self._flat[keep].clone()
            self._loss[:k] = self._loss[keep].clone()
            self._steps[:k] = self._steps[keep]
            self.n, self.stride = k, self.stride * 2

    def after_loss(self):
        if self.training: self._loss[self._slot] = self.learn.loss.detach()

    def after_step(self):
        self.step += 1
        self._write(self.n)
        if self.step % self.stride == 0: self._commit()
        else: self._tail = True

    def after_fit(self):
        if self._flat is None: return
        # The last state's loss has no forward pass yet: one on the whole training set.
        dl = self.learn.dls.train
        x, y = getattr(dl, 'x', None), getattr(dl, 'y', None)
        if x is not None:
            with torch.no_grad(): self._loss[self._slot] = self.learn.loss_func(self.learn.model(x), y).detach()

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
        "(T,) training loss at the parameters of each record (full batch: exact; minibatch: the next batch's)."
        return self._loss[self._view()].cpu() if self._loss is not None else torch.empty(0)

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

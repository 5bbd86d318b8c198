"""fastai's distributed route for fastfit's learners: `with learn.distrib_ctx(): learn.fit(n)` under `torchrun` or
`accelerate launch`, with the history recorded on rank 0 and pictures drawn there. Imported only by `distrib_ctx`:
fastai.distributed needs accelerate (the `distributed` extra). The overrides of fastai's code it relies on are listed in
`fastai_private.RELIES_ON`; the CUDA-only pieces of fastai it replaces are in `fastai_private` (`setup_distrib`,
`BroadcastOnBackend`)."""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from fastai.distributed import DistributedDL, DistributedTrainer
from fastai.torch_core import num_distrib, rank_distrib, to_detach
from torch.nn.parallel import DistributedDataParallel

from .data import TensorDL
from .fastai_private import BroadcastOnBackend, accelerator_kwargs, collective_device
from .history import ParamHistory
from .progress import FitProgress

__all__ = ['ShardedTensorDL', 'MeanOverRanks', 'RegDistributedDL', 'RegDistributedTrainer']


class ShardedTensorDL:
    """This rank's share of a `TensorDL`, split as fastai's `DistributedDL` splits a DataLoader: each epoch's order
    (rank 0's, broadcast) padded by repeating its start to a multiple of `world_size`, then cut in `world_size`
    contiguous shards; rank r batches shard r by the loader's `bs` (full batch: the shard is one batch). Every rank has
    the same number of batches of the same sizes, so the ranks' gradients average to the global batch's."""
    n_inp = 1

    def __init__(self,
        dl:TensorDL, # the whole loader, as on one process
        rank:int, # this process's rank
        world_size:int, # the number of processes
        device=None, # where this rank's batches live (its model's device); default: the loader's
    ):
        if not 0 <= rank < world_size: raise ValueError(f"rank must be in [0, {world_size}), got {rank!r}")
        self.dl, self.rank, self.world_size = dl, rank, world_size
        self.device = torch.device(device) if device is not None else dl.device
        self.n = dl.n  # samples of the whole loader (the padding is not counted)
        self.shard = math.ceil(self.n / world_size)  # samples per rank, padding included
        self.full_batch, self.bs, self.drop_last, self.shuffle = dl.full_batch, dl.bs, dl.drop_last, dl.shuffle
        self._k = 0  # the batch being read: `to_detach` drops its padding rows after gathering

    def __len__(self):
        if self.full_batch: return 1 if self.shard else 0
        return self.shard // self.bs if self.drop_last else math.ceil(self.shard / self.bs)

    def order(self) -> torch.Tensor:
        "The epoch's sample order, the same on every rank (rank 0's); every rank draws it, so their generators keep step."
        if not (self.shuffle and not self.full_batch): return torch.arange(self.n)
        idx = torch.randperm(self.n, generator=self.dl._gen)
        if self.world_size > 1 and dist.is_initialized():
            t = idx.to(collective_device())  # NCCL broadcasts only CUDA tensors
            dist.broadcast(t, 0)
            idx = t.cpu()
        return idx

    def indices(self) -> torch.Tensor:
        "The indices of this rank's shard for one epoch (padded by repeating the order's start)."
        idx, total = self.order(), self.shard * self.world_size
        if total > self.n: idx = idx.repeat(math.ceil(total / self.n))[:total]
        return idx[self.rank * self.shard:(self.rank + 1) * self.shard]

    def __iter__(self):
        idx = self.indices().to(self.dl.x.device)
        ts = tuple(t[idx].to(self.device) for t in self.dl._tensors)
        for k in range(len(self)):
            self._k = k
            if self.full_batch: yield ts
            else: yield tuple(t[k * self.bs:(k + 1) * self.bs] for t in ts)

    def to_detach(self, b, cpu=True, gather=True):
        """fastai's `to_detach`: a scalar is averaged over the ranks; a batch of rows is gathered from every rank (rank 0's
        rows first) without the padding rows, as fastai's `DistributedDL` gives `get_preds`."""
        b = to_detach(b, cpu, gather)
        if not gather or self.world_size == 1: return b
        def _unpad(t):
            if not isinstance(t, torch.Tensor) or t.ndim == 0 or len(t) % self.world_size: return t
            per = len(t) // self.world_size
            start = 0 if self.full_batch else self._k * self.bs
            keep = [r * self.shard + start + j < self.n for r in range(self.world_size) for j in range(per)]
            return t[torch.tensor(keep)] if not all(keep) else t
        return [_unpad(t) for t in b] if isinstance(b, (list, tuple)) else _unpad(b)

    def __getattr__(self, k):
        if k.startswith('__') or k == 'dl': raise AttributeError(k)
        return getattr(self.dl, k)  # x, y, dataset, new, ... as the whole loader has them

    def __repr__(self): return f"ShardedTensorDL(rank {self.rank} of {self.world_size}, {self.shard} of {self.n} samples, bs={self.bs})"


class MeanOverRanks:
    """A loss whose value is the mean of every rank's loss (an all-reduce each call, which every rank makes: they run
    the same batches) and whose gradient is this rank's own, which `DistributedDataParallel` averages over the ranks.
    So the recorded loss, the divergence check and fastai's recorder see the global batch's loss, on every rank alike."""
    def __init__(self, loss_func, world_size:int):
        self.loss_func, self.world_size = loss_func, world_size

    def __call__(self, pred, *yb):
        loss = self.loss_func(pred, *yb)
        mean = loss.detach().clone()
        dist.all_reduce(mean, op=dist.ReduceOp.SUM)
        mean /= self.world_size
        # `loss - loss.detach()` is 0 with this rank's gradient: the value is exactly the mean (NaN/inf carry through).
        return mean + (loss - loss.detach())

    def __getattr__(self, k):
        if (k.startswith('__') and k not in ('__name__', '__qualname__')) or k == 'loss_func': raise AttributeError(k)
        return getattr(self.loss_func, k)  # activation, decodes, __name__: fastai and fastfit read them off the loss


class RegDistributedDL(BroadcastOnBackend, DistributedDL):
    "fastai's `DistributedDL` (for loaders other than fastfit's `TensorDL`), broadcasting on the backend's device."


class RegDistributedTrainer(DistributedTrainer):
    """fastai's `DistributedTrainer` for fastfit's learners: `DistributedDataParallel` on CPU (gloo) or GPUs (NCCL);
    fastfit's loaders sharded by `ShardedTensorDL`; the loss the mean over ranks (`MeanOverRanks`); the history and the
    progress output on rank 0 only. After the fit (or a fit cut short) the learner is as after a one-process fit."""
    after_fit_on_error = True  # RegLearner runs our after_fit when an error cuts a fit short: unwrap the model

    def __init__(self, sync_bn=True, **kwargs): super().__init__(sync_bn, **accelerator_kwargs(kwargs))

    def _wrap_dl(self, dl):
        if isinstance(dl, (ShardedTensorDL, DistributedDL)): return dl
        device = next(self.learn.model.parameters()).device  # this rank's (the model is wrapped only during a fit)
        if isinstance(dl, TensorDL): return ShardedTensorDL(dl, rank_distrib(), num_distrib(), device=device)
        return RegDistributedDL(dl, device=device)

    _saved = None  # (logger, loss_func) as before the fit, while one runs

    def before_fit(self):
        learn = self.learn
        self._saved = learn.logger, learn.loss_func
        super().before_fit()  # wraps the model and the loaders; on ranks > 0 the logger becomes noop
        learn.loss_func = MeanOverRanks(learn.loss_func, num_distrib())
        # Ranks > 0 record nothing and print nothing: muted for this fit (fastai's dispatch sets `run` back after it).
        if rank_distrib():
            for cb in learn.cbs:
                if isinstance(cb, (ParamHistory, FitProgress)): cb.run = False

    def after_fit(self):
        if self._saved is None: return  # before_fit never ran (or failed before it changed anything)
        learn = self.learn
        # fastai's after_fit, as far as before_fit got: the model unwrapped, the loaders given back
        if isinstance(learn.model, DistributedDataParallel): learn.model = learn.model.module
        old = self.__dict__.pop('old_dls', None)  # not `hasattr`: a callback's attributes fall through to the learner
        if old is not None: learn.dls.loaders = old
        # ...and what fastai leaves changed: a rank > 0 learner logs again, as it did before the fit
        (learn.logger, learn.loss_func), self._saved = self._saved, None

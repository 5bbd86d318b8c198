"""The states a picture draws, one per frame: `Records`, made from a recorded `ParamHistory` (thinned evenly to the
frames asked, first and last kept) or from the model as it is. Panels draw them; nothing is re-trained."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .history import ParamHistory
from .learner import has_data

__all__ = ['frame_idxs', 'Records']


def frame_idxs(n_records:int, frames:int) -> np.ndarray:
    "`frames` record indices spread evenly over `n_records` (fewer if there are fewer records), first and last kept."
    if n_records <= 0: return np.zeros(0, dtype=np.int64)
    k = max(1, min(int(frames), n_records))
    if k == 1: return np.array([n_records - 1])
    return np.floor(np.linspace(0, n_records - 1, k) + .5).astype(np.int64)


def _history(learn) -> ParamHistory | None:
    h = getattr(learn, 'param_history', None)
    return h if isinstance(h, ParamHistory) and len(h) else None


def require_history(learn, what) -> ParamHistory:
    "The learner's recorded history, or a clear error saying how to get one."
    h = getattr(learn, 'param_history', None)
    if not isinstance(h, ParamHistory):
        raise ValueError(f"{what} needs the parameter history: create the learner with regression_learner(..., history=True)")
    if h.step == 0 and getattr(learn, 'diverged', None) is not None:  # a fit that stopped before its first update
        raise ValueError(f"{what} has no step to draw: the training loss diverged (NaN/inf) at the first step, so the fit "
                         f"stopped before any update: try a smaller lr, or a model that starts from smaller parameters")
    if h.step == 0:
        raise ValueError(f"{what} needs a fit first: the history holds no step yet (call learn.fit(n) before)")
    return h


def _finite_records(h:ParamHistory) -> np.ndarray:
    "Indices of the records whose loss and parameters are finite (a diverged run ends in inf/NaN)."
    # numpy's (CPU float tensors' own memory): torch's ops cost ~3x as much a call on a history's few records, and a
    # sweep asks 200 histories several times an export
    ok = np.isfinite(h.losses.numpy()) & np.isfinite(h.flat.numpy()).all(1)
    return np.nonzero(ok)[0]


class _Params(Sequence):
    """The parameters (name -> tensor) of records `idx` of a history's `params`, each made when first asked for: a sweep
    of 200 runs draws its map from the losses alone, and would otherwise make 20,000 of them for 100 frames."""
    def __init__(self, params:dict, idx):
        self.ps, self.idx, self.made = params, idx, {}

    def __len__(self): return len(self.idx)

    def __getitem__(self, k):
        if isinstance(k, slice): return [self[i] for i in range(*k.indices(len(self)))]
        k = range(len(self))[k]  # negative indices count from the end; out of range: IndexError
        if (p := self.made.get(k)) is None: p = self.made[k] = {n: v[self.idx[k]] for n, v in self.ps.items()}
        return p

    def stacked(self) -> dict:
        "{name: (len, *shape)}: every record's parameters at once."
        return {n: v[self.idx] for n, v in self.ps.items()}


class Records:
    """The states drawn, one per frame: `params[k]` (name -> tensor), `steps[k]` and `losses[k]` (the training loss
    there); `clock[k]` is the step frame `k` stands for (several runs share a clock); `stop` is (step, reason) for a run
    stopped early; `idx[k]` is the history's record frame `k` shows (None for the model as it is). Made from a history
    (`from_history`, `aligned`) or the model as it is (`current`)."""
    def __init__(self, params:list, steps, losses, clock=None, stop=None, idx=None):
        self.params, self.steps, self.losses = params, np.asarray(steps), np.asarray(losses)
        self.clock = self.steps if clock is None else np.asarray(clock)
        self.stop = stop  # (step, reason) when the run was stopped early, e.g. its loss became inf/NaN
        self.idx = None if idx is None else np.asarray(idx)
        self.clock_label = 'step {}'  # how captions name a time on the clock (several runs: e.g. '{:,} samples seen')
    def __len__(self): return len(self.params)

    def stopped(self, k:int) -> bool:
        "Whether frame `k` is past the end of a run that was stopped early."
        return self.stop is not None and self.clock[k] is not None and self.clock[k] >= self.stop[0]

    def stopped_frames(self) -> np.ndarray:
        "`stopped(k)` of every frame `k`, at once where the clock is numbers."
        if self.stop is None: return np.zeros(len(self), dtype=bool)
        if self.clock.dtype == object: return np.array([self.stopped(k) for k in range(len(self))], dtype=bool)
        return self.clock >= self.stop[0]

    @classmethod
    def from_history(cls, h:ParamHistory, frames:int):
        "At most `frames` finite records of history `h`, spread evenly (first and last kept)."
        keep = _finite_records(h)
        if not len(keep): keep = np.arange(len(h))
        idx = keep[frame_idxs(len(keep), frames)]
        ps, steps, losses = h.params, h.steps, h.losses.numpy()
        return cls(_Params(ps, idx), steps[idx], losses[idx], idx=idx)

    @classmethod
    def aligned(cls, hists:list, frames:int, stops=None, per_step=None) -> list:
        """One `Records` per history on a shared clock: frame k is the same step in each (a stopped run stays at its end);
        with `per_step` (one number per history, e.g. samples per step) the clock counts steps times that."""
        keeps = [_finite_records(h) for h in hists]
        keeps = [k if len(k) else np.arange(len(h)) for k, h in zip(keeps, hists)]
        steps = [h.steps[k] * (1 if per_step is None else per_step[i]) for i, (h, k) in enumerate(zip(hists, keeps))]
        longest = int(np.argmax([st[-1] for st in steps]))
        clock = steps[longest][frame_idxs(len(steps[longest]), frames)]
        out = []
        for h, keep, st, stop in zip(hists, keeps, steps, stops or [None] * len(hists)):
            idx = keep[np.clip(np.searchsorted(st, clock, 'right') - 1, 0, None)]
            ps, losses = h.params, h.losses.numpy()
            out.append(cls(_Params(ps, idx), h.steps[idx], losses[idx], clock, stop, idx))
        return out

    @classmethod
    def current(cls, learn):
        "The model as it is now (step: the history's last, if any)."
        loss = learn.train_loss() if has_data(learn) else float('nan')  # from load_learner: the panels say what is missing
        h = getattr(learn, 'param_history', None)
        step = h.step if isinstance(h, ParamHistory) else None
        # copies (on the CPU, `.cpu()` is the very tensor: a later fit would move the picture with it)
        return cls([{k: p.detach().to('cpu', copy=True) for k, p in learn.model.named_parameters()}], [step], [loss])

"Data: synthetic generators (`synth_*`), tensor-slicing `RegDataLoaders` and, for class labels, `ClsDataLoaders`."
from __future__ import annotations

import math

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.transforms import CategoryMap
from fastai.torch_core import default_device
from fastcore.basics import store_attr
from torch.utils.data import TensorDataset

__all__ = ['SynthData', 'synth_linear', 'synth_multilinear', 'synth_poly', 'synth_rollercoaster', 'synth_func',
           'synth_moons', 'synth_blobs', 'TensorDL', 'RegDataLoaders', 'ClsDataLoaders']


def check_positive(name, value, kind=float, allow_zero=False):
    "Return `value` as `kind`, raising a `ValueError` naming `name` when it is not > 0 (>= 0 with `allow_zero`)."
    what = f"{'an integer' if kind is int else 'a finite number'} {'>= 0' if allow_zero else '> 0'}"
    # float('0.1') and int('3') would pass, and True is 1: a string or a bool for a number is a mistake worth naming.
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}"
                        + (": write it without quotes" if isinstance(value, str) and _is_number(value) else ""))
    try: f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}") from None
    if not math.isfinite(f): raise ValueError(f"{name} must be {what}, got {value!r}")
    try: v = kind(value)
    except (TypeError, ValueError): v = kind(f)  # e.g. int('2.5'): judged below as the number it spells
    # int(2.5) would silently drop the half: a non-integral count is a mistake worth naming.
    if kind is int and math.isfinite(f) and f != v: raise ValueError(f"{name} must be {what}, got {value!r}: use {round(f)}")
    ok = v >= 0 if allow_zero else v > 0
    if not ok or not math.isfinite(f): raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def _is_number(s) -> bool:
    try: float(s); return True
    except ValueError: return False


F32_MAX = float(torch.finfo(torch.float32).max)


def as_tensor2d(a, name='x') -> torch.Tensor:
    "`a` (numpy array, tensor or list) as a finite float32 tensor of shape (n, n_features); 1-d becomes one column."
    if isinstance(a, torch.Tensor): t = a.detach()
    else:
        try: arr = np.asarray(a)
        except (TypeError, ValueError) as e: raise TypeError(f"{name} must be numeric (array, tensor or list): {e}") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must be numeric (array, tensor or list of numbers), got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex(): raise TypeError(f"{name} must be real numbers, got dtype {t.dtype}")
    if t.dtype == torch.float64:
        # Finite in its own dtype but beyond float32 (e.g. 1e300): name that, rather than the inf it becomes.
        big = t.detach().double().abs()
        big = big[torch.isfinite(big)]
        if big.numel() and float(big.max()) > F32_MAX:
            raise ValueError(f"{name} holds values too large for float32 (largest |value| {float(big.max()):.3g}, float32 "
                             f"stops at {F32_MAX:.3g}): rescale {name} before fitting, e.g. divide it by {float(big.max()):.0e} "
                             f"or standardise it ((v - mean) / std)")
    t = t.float()
    if t.ndim == 0: raise ValueError(f"{name} must hold one row per sample, got a single number {t.item()!r}")
    if t.ndim == 1: t = t[:, None]
    if t.ndim != 2: raise ValueError(f"{name} must be 1-d (n,) or 2-d (n, n_features), got shape {tuple(t.shape)}")
    if len(t) == 0: raise ValueError(f"{name} is empty: it needs at least one sample")
    bad = ~torch.isfinite(t)
    if bad.any():
        rows = bad.any(1).nonzero().flatten()
        raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf value(s) (first in row {int(rows[0])}): "
                         f"drop or impute those rows before fitting")
    return t.contiguous()


class TensorDL:
    "Batches of `(x, y)` sliced from whole tensors on `device`: no per-item collate, no worker processes."
    n_inp = 1  # one input tensor, then the target (fastai's `DataLoader.n_inp`)

    def __init__(self,
        x:torch.Tensor, # inputs, (n, n_features)
        y:torch.Tensor|None, # targets, (n, 1); None: inputs only (a test set, `RegDataLoaders.test_dl`)
        bs:int|None=None, # batch size; None: the whole set as one batch
        shuffle:bool=False, # reshuffle every epoch
        drop_last:bool=False, # drop the last incomplete batch
        seed:int=42, # seed of the shuffling generator
        device=None, # where the batches live
    ):
        store_attr('x,y,shuffle,drop_last,seed')
        self.bs = len(x) if bs is None else bs
        self.full_batch = bs is None or self.bs >= len(x)
        self._gen = torch.Generator().manual_seed(42 if seed is None else seed)
        self.to(device if device is not None else x.device)

    @property
    def dataset(self) -> TensorDataset:
        "The samples as a torch `TensorDataset` (`.tensors` is `(x, y)`), as fastai's `dls.train_ds` gives."
        return TensorDataset(*self._tensors)
    @property
    def _tensors(self): return (self.x,) if self.y is None else (self.x, self.y)
    @property
    def items(self):
        "fastai's items to show (images, texts): none here, so fastai's `plot_top_losses` is refused with the reason."
        raise AttributeError("fastfit's loaders hold tensors (x, y), not items to show one by one (images, texts), so "
                             "plot_top_losses has nothing to draw: interp.top_losses(k) gives the rows, and "
                             "learn.show_results() or learn.show_fit() the picture")
    @property
    def n(self): return self.x.shape[0]  # not len(x): torch's __len__ is Python, and this runs 3 times an epoch
    def __len__(self):
        n = self.x.shape[0]  # (`self.n` without its call)
        if self.full_batch: return 1 if n else 0
        return n // self.bs if self.drop_last else math.ceil(n / self.bs)

    def __iter__(self):
        ts = (self.x,) if self.y is None else (self.x, self.y)
        if self.full_batch:
            if self.n: yield ts
            return
        if self.shuffle:
            # One gather per epoch, then views: cheaper than gathering every batch.
            idx = torch.randperm(self.n, generator=self._gen).to(self.device)
            ts = tuple(t[idx] for t in ts)
        for i in range(len(self)):
            s = slice(i * self.bs, (i + 1) * self.bs)
            yield tuple(t[s] for t in ts)

    def to(self, device):
        "Move the tensors to `device` (in place) and return self."
        self.device = torch.device(device)
        self.x = self.x.to(self.device)
        if self.y is not None: self.y = self.y.to(self.device)
        return self

    def new(self, dataset=None, **kwargs):
        "A copy with some attributes changed (fastai's `DataLoader.new` protocol: `shuffle`, `drop_last`, `bs`)."
        args = dict(bs=None if self.full_batch else self.bs, shuffle=self.shuffle, drop_last=self.drop_last,
                    seed=self.seed, device=self.device)
        args.update({k: v for k, v in kwargs.items() if k in args})
        x, y = (self.x, self.y) if dataset is None else _xy(dataset)
        out = type(self)(x, y, **args)
        if 'vocab' in self.__dict__: out.vocab = self.vocab  # a classifier's class names (fastai's interpretation reads them)
        return out

    def new_empty(self):
        "The same loader with no samples (what `learn.export` keeps of the data)."
        return self.new((self.x[:0], None if self.y is None else self.y[:0]), bs=None, shuffle=False, drop_last=False)

    def one_batch(self):
        "The first batch of a fresh epoch (a copy's shuffle: peeking leaves the next fit's batches as they were)."
        if len(self) == 0:
            raise ValueError(f"this DataLoader holds no batch: n={self.n} samples with bs={self.bs} and drop_last={self.drop_last}")
        return next(iter(self.new()))

    def decode_batch(self, b, max_n:int=9, full:bool=True) -> list:
        "The samples of batch `b` as tuples (fastai's `decode_batch`: nothing to decode for plain tensors)."
        n = min(len(b[0]), max_n)
        return [tuple(t[i] for t in b) for i in range(n)]

    def __repr__(self): return f"{type(self).__name__}(n={self.n}, bs={self.bs}, shuffle={self.shuffle}, device={self.device})"


def _xy(d) -> tuple:
    "(x, y) of a `TensorDataset` or a pair of tensors; y is None for inputs alone."
    ts = d.tensors if isinstance(d, TensorDataset) else tuple(d)
    return ts[0], (ts[1] if len(ts) > 1 else None)


EVAL_ROWS = 1 << 16  # rows per forward pass when a loss is evaluated over a whole data set: memory stays bounded


def mean_over_rows(f, x, y, bs:int=EVAL_ROWS):
    """`f(x, y)` over row batches of at most `bs`, averaged weighted by batch size (as fastai averages the validation
    loss): exactly `f(x, y)` up to `bs` rows, and equal to it for any loss that is a mean over rows."""
    n = len(x)
    if n <= bs: return f(x, y)
    return sum(f(x[i:i + bs], y[i:i + bs]) * (min(n, i + bs) - i) for i in range(0, n, bs)) / n


def _device(device) -> torch.device:
    "`device` as a torch device that exists here (None: fastai's default device, CPU unless CUDA is in use)."
    if device is None: return default_device()
    try: d = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu' or 'cuda' (or a torch.device), got {device!r}") from None
    if d.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available on this machine: use device=None or 'cpu'")
    return d


def _split_idx(n, valid_pct, seed):
    "Shuffled train/valid indices, the first `1-valid_pct` for training (as seed 003 does)."
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_valid = int(round(n * valid_pct))
    return idx[:n - n_valid], idx[n - n_valid:]


def _standardise_truth(truth, mean, std, const):
    """`truth` (parameters of the model on raw x) as the parameters of the same function of standardised x (None when
    its form is unknown): linear ('w', 'b') or a polynomial of one feature ('c2', 'c1', 'c0')."""
    if not truth: return truth
    mu, sd = mean.double().flatten(), std.double().flatten()
    if 'w' in truth:
        w = torch.as_tensor(truth['w']).double().flatten()
        if len(w) != len(mu): return None
        ws, shift = w * sd, float(w @ mu)
        out = {'w': ws.float().reshape(torch.as_tensor(truth['w']).shape)}
        if 'b' in truth: out['b'] = torch.tensor(float(truth['b']) + shift)
        elif shift != 0:  # the bias is a weight on a column of ones (seed 002): it takes the shift
            ones = [j for j, v in const.items() if v != 0]
            if not ones: return None
            ws[ones[0]] += shift / const[ones[0]]
            out['w'] = ws.float().reshape(out['w'].shape)
        return out
    cs = sorted((k for k in truth if k[0] == 'c' and k[1:].isdigit()), key=lambda k: -int(k[1:]))
    if not cs or len(cs) != len(truth) or len(mu) != 1: return None
    deg = int(cs[0][1:])
    if sorted(int(k[1:]) for k in cs) != list(range(deg + 1)): return None
    p = np.polynomial.Polynomial([float(truth[f'c{j}']) for j in range(deg + 1)])
    q = p(np.polynomial.Polynomial([float(mu[0]), float(sd[0])])).coef  # p(mu + sd*u), lowest power first
    q = np.pad(q, (0, deg + 1 - len(q)))
    return {f'c{j}': torch.tensor(float(q[j])) for j in range(deg, -1, -1)}


def _check_bs(bs, n_train:int):
    """`bs` as an int (None: full batch), or the error saying what would work. A `bs` of at least the `n_train` training
    samples is full batch too: one batch of all of them (fastai would drop it as incomplete and train on nothing)."""
    if bs is None: return None
    bs = check_positive('bs', bs, int)
    return None if bs >= n_train else bs


class RegDataLoaders(DataLoaders):
    "fastai `DataLoaders` of a regression set, train and valid as `TensorDL`s."
    truth = None # the true parameters (in model names) and function, when the data is synthetic
    norm = None # (mean, std) of each training feature, (1, n_features), when the loaders standardise x
    raw_truth = None # with `norm`: the true parameters of the model on raw x (`truth` is for standardised x)

    def normalize(self, x) -> torch.Tensor:
        "Raw inputs `x` as the model sees them: standardised with the training mean and std when `norm` is set."
        if self.norm is None: return x
        m, s = self.norm
        return (x - m.to(x.device)) / s.to(x.device)

    def denormalize(self, x) -> torch.Tensor:
        "Inputs the model sees back in the data's own units (plots draw those)."
        if self.norm is None: return x
        m, s = self.norm
        return x * s.to(x.device) + m.to(x.device)

    @property
    def units_note(self) -> str:
        "'' or a note for plots whose axes are model parameters: those of the model on standardised x."
        return '' if self.norm is None else ' (model on standardised x)'

    @property
    def n_in(self): return self.train.x.shape[1]
    @property
    def has_valid(self): return len(self.loaders) > 1 and self.valid.n > 0

    def test_dl(self,
        test_items, # new inputs: array, tensor or list, (n,) or (n, n_features); with_labels: a pair (x, y)
        rm_type_tfms=None, # unused (fastai's signature): plain tensors have no type transforms
        with_labels:bool=False, # `test_items` is (x, y), so `get_preds` returns targets too
        bs:int|None=None, # batch size; None: all in one batch
        **kwargs, # fastai passes loader options (e.g. num_workers=0): tensor slicing needs none
    ) -> TensorDL:
        "A loader of new inputs for `learn.get_preds(dl=...)` and `learn.predict`, on the data's device."
        x, y = test_items if with_labels else (test_items, None)
        if isinstance(x, (int, float)) or (isinstance(x, (np.ndarray, torch.Tensor)) and np.ndim(x) == 0): x = [x]
        try: a = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        except (TypeError, ValueError): a = None
        # Rows given with extra unit axes, e.g. predict(tensor([[0.1]])) -> [tensor([[0.1]])]: the last axis is features.
        if a is not None and a.ndim > 2 and a.shape[-1] == self.n_in: x = a.reshape(-1, self.n_in)
        x = as_tensor2d(x, 'test_items')
        if x.shape[1] != self.n_in:
            raise ValueError(f"test_items have {x.shape[1]} feature(s) (shape {tuple(x.shape)}) but the model was fitted on "
                             f"{self.n_in}: pass one row per sample, shape (n, {self.n_in})")
        if y is not None:
            y = as_tensor2d(y, 'y')
            if len(y) != len(x): raise ValueError(f"test_items: x and y lengths differ: {len(x)} and {len(y)}")
        if bs is not None: bs = check_positive('bs', bs, int)
        return TensorDL(self.normalize(x), y, bs=bs, device=self.device)

    def new_empty(self):
        "These loaders with no samples, for `learn.export` (the model, not the data, is exported)."
        res = type(self)(*[dl.new_empty() for dl in self.loaders], path=self.path, device=self.device)
        res.truth, res.norm, res.raw_truth = self.truth, self.norm, self.raw_truth
        return _carry_names(self, res)

    @classmethod
    def from_arrays(cls,
        x, # inputs: array, tensor or list, (n,) or (n, n_features)
        y, # targets: (n,) or (n, 1)
        valid_pct:float=.2, # share of samples held out for validation; 0: no validation
        bs:int|None=64, # batch size (fastai's default); None, or at least the training samples: full batch (one step per epoch)
        seed:int=42, # seed of the split and of the shuffling
        valid:tuple|None=None, # an explicit (x_valid, y_valid); then valid_pct is ignored
        device=None, # None: fastai's `default_device()` (CPU unless CUDA is in use)
        truth=None, # the true parameters, if known
        normalize:bool=False, # standardise each feature with the training set's mean and std (plots stay in raw units)
    ):
        """`RegDataLoaders` from arrays, split by `valid_pct` (seeded) or given `valid`; with `normalize`, x standardised
        (the model and its history then hold the parameters of the model on standardised x)."""
        x, y = as_tensor2d(x, 'x'), as_tensor2d(y, 'y')
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same number of samples, got x: {len(x)} and y: {len(y)}")
        if y.shape[1] != 1: raise ValueError(f"y must have one target per sample, got shape {tuple(y.shape)}")
        if valid is not None:
            if not (isinstance(valid, (tuple, list)) and len(valid) == 2):
                raise TypeError(f"valid must be a pair (x_valid, y_valid), got {type(valid).__name__}")
            xv, yv = as_tensor2d(valid[0], 'x_valid'), as_tensor2d(valid[1], 'y_valid')
            if len(xv) != len(yv): raise ValueError(f"x_valid and y_valid lengths differ: {len(xv)} and {len(yv)}")
            if xv.shape[1] != x.shape[1]:
                raise ValueError(f"x_valid has {xv.shape[1]} features but x has {x.shape[1]}")
            xt, yt = x, y
        else:
            try: valid_pct = float(valid_pct)
            except (TypeError, ValueError): raise TypeError(f"valid_pct must be a number in [0, 1), got {valid_pct!r}") from None
            if not 0 <= valid_pct < 1: raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct!r}; use 0 for no validation set")
            ti, vi = _split_idx(len(x), valid_pct, seed)
            if len(ti) == 0: raise ValueError(f"valid_pct={valid_pct} leaves no training sample out of {len(x)}")
            xt, yt, xv, yv = x[ti], y[ti], x[vi], y[vi]
        bs = _check_bs(bs, len(xt))
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be True or False, got {normalize!r} of type {type(normalize).__name__}")
        norm, raw_truth = None, None
        if normalize:
            # fastai's `Normalize`: the training set's mean and (unbiased) std; a constant column (a column of ones,
            # the bias as a weight) is left as it is.
            mean = xt.mean(0, keepdim=True)
            std = xt.std(0, keepdim=True) if len(xt) > 1 else torch.zeros_like(mean)
            const = ~(std > 0)
            mean, std = torch.where(const, 0., mean), torch.where(const, 1., std)
            norm, raw_truth = (mean, std), truth
            truth = _standardise_truth(truth, mean, std, {int(j): float(xt[0, j]) for j in const[0].nonzero().flatten()})
            xt, xv = (xt - mean) / std, (xv - mean) / std
        device = _device(device)
        train = TensorDL(xt, yt, bs=bs, shuffle=bs is not None, drop_last=bs is not None, seed=seed, device=device)
        valid = TensorDL(xv, yv, bs=bs, seed=seed, device=device)
        dls = cls(train, valid, device=device)
        dls.truth, dls.norm, dls.raw_truth = truth, norm, raw_truth
        return dls


def _some(vals, k=5) -> str:
    "The first `k` of `vals`, as a list for a message ('...' when there are more)."
    vals = list(vals)
    return ', '.join(map(repr, vals[:k])) + (', ...' if len(vals) > k else '')


def as_labels(y, name='y') -> torch.Tensor:
    "`y` (array, tensor or list) as int64 class labels of shape (n, 1), or an error naming the values that are not labels."
    if isinstance(y, torch.Tensor): t = y.detach().cpu()
    else:
        arr = np.asarray(y, dtype=object if isinstance(y, (list, tuple)) else None)
        if arr.dtype.kind in 'OUSV':
            flat = arr.ravel()
            odd = [v for v in flat if isinstance(v, (str, bytes)) or not isinstance(v, (int, float, np.number, bool, np.bool_))]
            if odd:
                raise TypeError(f"{name} must hold integer class labels 0..k-1, got {type(odd[0]).__name__} values "
                                f"such as {_some(dict.fromkeys(odd))}: number the classes first, e.g. "
                                f"classes, {name} = np.unique({name}, return_inverse=True)")
            arr = arr.astype(np.float64)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex(): raise TypeError(f"{name} must hold integer class labels 0..k-1, got complex numbers")
    if t.ndim == 2 and t.shape[1] > 1:
        raise ValueError(f"{name} must hold one class label per sample, shape (n,) or (n, 1), got shape {tuple(t.shape)}: "
                         f"for one-hot rows use {name}.argmax(1)")
    if t.ndim == 0 or t.ndim > 2: raise ValueError(f"{name} must be 1-d (n,) labels, got shape {tuple(t.shape)}")
    t = t.reshape(-1, 1)
    if len(t) == 0: raise ValueError(f"{name} is empty: it needs at least one sample")
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bad.any(): raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf label(s) (first in row {int(bad.nonzero()[0, 0])})")
        frac = t != t.round()
        if frac.any():
            rows = frac.nonzero()[:, 0]
            raise ValueError(f"{name} must hold integer class labels 0..k-1, got {int(frac.sum())} value(s) that are not "
                             f"whole numbers: {_some(dict.fromkeys(t[rows, 0].tolist()))} (first in row {int(rows[0])}); "
                             f"for a continuous target use RegDataLoaders and regression_learner")
    t = t.long()
    neg = t < 0
    if neg.any():
        rows = neg.nonzero()[:, 0]
        raise ValueError(f"{name} must hold class labels 0..k-1, got negative label(s) "
                         f"{_some(dict.fromkeys(t[rows, 0].tolist()))} (first in row {int(rows[0])}): e.g. for labels "
                         f"-1/1 use ({name} > 0), or renumber with np.unique({name}, return_inverse=True)")
    return t


def count_classes(*ys, name='y') -> int:
    "The number of classes k of labels `ys` (together), checked to be 0..k-1, each present, at least two."
    y = torch.cat([t.flatten() for t in ys])
    present = torch.unique(y)
    if len(present) < 2:
        raise ValueError(f"{name} holds one class only (label {int(present[0])} for all {len(y)} samples): a classifier "
                         f"needs samples of at least two classes")
    k = int(present.max()) + 1
    if len(present) < k:
        missing, want = [], 0  # the first few absent labels, found between the present ones (never range(k): IDs like 10**8)
        for v in present.tolist():
            while want < v and len(missing) < 4: missing.append(want); want += 1
            want = v + 1
        fix = f"subtract {int(present.min())} ({name} - {int(present.min())})" if int(present.min()) > 0 and \
              len(present) == k - int(present.min()) else f"renumber them with np.unique({name}, return_inverse=True)"
        raise ValueError(f"{name} must number the classes 0..k-1 with a sample of each, got labels {present.tolist()[:10]} "
                         f"(no sample of class {_some(missing, 3)}): {fix}")
    return k


class ClsDataLoaders(RegDataLoaders):
    "fastai `DataLoaders` of a classification set: integer labels 0..k-1 as targets, shape (n, 1), int64."
    n_classes = None # the number of classes k

    @property
    def c(self): return self.n_classes  # fastai's name for it (`dls.c`)

    @classmethod
    def from_arrays(cls,
        x, # inputs: array, tensor or list, (n,) or (n, n_features)
        y, # class labels 0..k-1: (n,) or (n, 1), ints (or whole floats, or bools)
        valid_pct:float=.2, # share of samples held out for validation; 0: no validation
        bs:int|None=64, # batch size (fastai's default); None, or at least the training samples: full batch (one step per epoch)
        seed:int=42, # seed of the split and of the shuffling
        valid:tuple|None=None, # an explicit (x_valid, y_valid); then valid_pct is ignored
        device=None, # None: fastai's `default_device()` (CPU unless CUDA is in use)
        truth=None, # the true parameters, if known
        normalize:bool=False, # standardise each feature with the training set's mean and std (plots stay in raw units)
    ):
        "`ClsDataLoaders` from arrays, split by `valid_pct` (seeded) or given `valid`; labels checked to be 0..k-1."
        y = as_labels(y, 'y')
        ys = [y]
        if isinstance(valid, (tuple, list)) and len(valid) == 2:
            valid = (valid[0], as_labels(valid[1], 'y_valid'))
            ys.append(valid[1])
        k = count_classes(*ys)
        # One mechanism: the regression loaders (checks, split, TensorDL), then the labels as int64 again.
        dls = super().from_arrays(x, y, valid_pct=valid_pct, bs=bs, seed=seed, valid=valid, device=device, truth=truth,
                                  normalize=normalize)
        vocab = CategoryMap(list(range(k)))  # fastai's `dls.vocab` (a CategoryMap, as its ClassificationInterpretation reads)
        for dl in dls.loaders: dl.y, dl.vocab = dl.y.long(), vocab
        dls.n_classes = k
        return dls

    def test_dl(self, test_items, rm_type_tfms=None, with_labels:bool=False, bs:int|None=None, **kwargs) -> TensorDL:
        "A loader of new inputs (with labels: a pair (x, y)) for `learn.get_preds(dl=...)` and `learn.predict`."
        dl = super().test_dl(test_items, rm_type_tfms, with_labels=with_labels, bs=bs, **kwargs)
        if dl.y is not None: dl.y = as_labels(dl.y, 'y').to(dl.device)
        return dl

    def new_empty(self):
        res = super().new_empty()
        res.n_classes = self.n_classes
        return res


def check_dls(dls, name:str='dls'):
    "An error naming `name` unless `dls` is fastfit's loaders (`RegDataLoaders`, `ClsDataLoaders`) or a `SynthData`."
    if not isinstance(dls, (RegDataLoaders, SynthData)):
        raise TypeError(f"{name} must be DataLoaders from fastfit (e.g. `synth_linear().dataloaders()`, "
                        f"`RegDataLoaders.from_arrays(x, y)`, `ClsDataLoaders.from_arrays(x, labels)`) or a SynthData "
                        f"(e.g. `synth_linear()`), got {type(dls).__name__}")


def rebatch(dls:RegDataLoaders, bs:int|None, normalize:bool|None=None, valid_pct:float=0.) -> RegDataLoaders:
    """`dls`'s data in new loaders with batch size `bs` (the bs error of `from_arrays` when it does not fit); with
    `normalize` True/False, standardised or not (from the raw data); a `SynthData` gives its own `dataloaders`."""
    if isinstance(dls, SynthData):
        return dls.dataloaders(bs=bs, valid_pct=valid_pct, normalize=bool(normalize))
    check_dls(dls)
    if normalize is None: normalize = dls.norm is not None
    raw = dls.denormalize
    xt, yt = raw(dls.train.x).cpu(), dls.train.y.cpu()
    valid = (raw(dls.valid.x).cpu(), dls.valid.y.cpu()) if dls.has_valid else None
    truth = dls.raw_truth if dls.norm is not None else dls.truth
    seed = 42 if dls.train.seed is None else dls.train.seed
    return _carry_names(dls, type(dls).from_arrays(xt, yt, valid=valid, valid_pct=0, bs=bs, seed=seed, device=dls.device,
                                                   truth=truth, normalize=normalize))


def _carry_names(old, new):
    "`new` loaders with the names of `old`'s classes and features and its images' shape (real data: `realdata`), if any."
    for k in ('vocab', 'img_shape', 'feature_names'):
        if getattr(old, k, None) is not None: setattr(new, k, getattr(old, k))
    return new


class SynthData:
    "Synthetic data with its true parameters (regression targets, or class labels for `synth_blobs`)."
    dls_attrs = ()  # the names of attributes its `dataloaders()` carry too (a `RealData`'s classes, features, image shape)
    def __init__(self,
        x:torch.Tensor, # (n, n_features) float32
        y:torch.Tensor, # (n, 1) float32 targets, or int64 class labels
        params:dict, # the true parameters, as the generator names them
        truth:dict, # the same in the names of the matching fastfit model ('w', 'b', 'c2', ...)
        name:str='', # what made it
    ): store_attr()

    def __repr__(self):
        ps = ', '.join(f"{k}={v}" for k, v in self.params.items())
        return f"SynthData({self.name}: n={len(self.x)}, n_features={self.x.shape[1]}, {ps})"
    def __len__(self): return len(self.x)

    def dataloaders(self,
        bs:int|None=64, # batch size (fastai's default); None, or at least the training samples: full batch
        valid_pct:float=.2, # share held out for validation (0: none)
        seed:int=42, # seed of the split and the shuffling
        device=None, # None: fastai's default device
        normalize:bool=False, # standardise each feature with the training set's mean and std (plots stay in raw units)
    ) -> RegDataLoaders:
        "`RegDataLoaders` of this data (`ClsDataLoaders` for class labels), carrying the truth for plots (and `dls_attrs`)."
        cls = RegDataLoaders if self.y.is_floating_point() else ClsDataLoaders
        dls = cls.from_arrays(self.x, self.y, valid_pct=valid_pct, bs=bs, seed=seed, device=device, truth=self.truth,
                              normalize=normalize)
        for k in self.dls_attrs: setattr(dls, k, getattr(self, k))
        return dls


def _gen(seed): return torch.Generator().manual_seed(int(seed))

def _noise(g, n, noise, dist):
    if dist == 'normal': return noise * torch.randn(n, 1, generator=g)
    if dist == 'uniform': return noise * torch.rand(n, 1, generator=g)
    raise ValueError(f"dist must be 'normal' (noise*N(0,1)) or 'uniform' (noise*U(0,1), as seed 002), got {dist!r}")


def synth_linear(
    n:int=100, # number of samples
    a:float=3., # true slope
    b:float=2., # true intercept
    noise:float=1., # noise scale
    x_range:tuple=(-1, 1), # x is uniform on this interval
    dist:str='normal', # noise distribution: 'normal' (noise*N(0,1)) or 'uniform' (noise*U(0,1))
    seed:int=42, # seed of x and the noise
    add_ones:bool=False, # add a column of ones to x (the bias as a weight, as seed 002)
) -> SynthData:
    "y = a*x + b + noise, x uniform on `x_range`."
    n = check_positive('n', n, int)
    noise = check_positive('noise', noise, allow_zero=True)
    try: lo, hi = map(float, x_range)
    except (TypeError, ValueError): raise TypeError(f"x_range must be a pair of numbers (low, high), got {x_range!r}") from None
    if not lo < hi: raise ValueError(f"x_range must be (low, high) with finite low < high, got {x_range!r}")
    g = _gen(seed)
    x = torch.rand(n, 1, generator=g) * (hi - lo) + lo
    y = a * x + b + _noise(g, n, noise, dist)
    params = dict(a=float(a), b=float(b))
    if add_ones:
        return SynthData(torch.cat([x, torch.ones_like(x)], 1), y, params,
                         dict(w=torch.tensor([a, b], dtype=torch.float32)), 'synth_linear(add_ones=True)')
    return SynthData(x, y, params, dict(w=torch.tensor([float(a)]), b=torch.tensor(float(b))), 'synth_linear')


def synth_multilinear(
    n:int=1000, # number of samples
    w:tuple=(2., -3.4), # true weights, one per feature
    b:float=4.2, # true bias
    noise:float=.01, # noise scale (normal)
    seed:int=42, # seed
) -> SynthData:
    "y = x@w + b + noise, x ~ N(0, 1) (d2l's linear-regression data)."
    n = check_positive('n', n, int)
    noise = check_positive('noise', noise, allow_zero=True)
    params = dict(w=tuple(float(v) for v in np.ravel(w)), b=float(b))
    if not params['w']: raise ValueError(f"w must hold one weight per feature, got {w!r}; e.g. w=(2., -3.4)")
    w = torch.tensor(params['w'])
    g = _gen(seed)
    x = torch.randn(n, len(w), generator=g)
    y = x @ w[:, None] + b + noise * torch.randn(n, 1, generator=g)
    return SynthData(x, y, params, dict(w=w, b=torch.tensor(float(b))), 'synth_multilinear')


def _poly_names(degree): return [f'c{k}' for k in range(degree, -1, -1)]

def synth_poly(
    coeffs:tuple=(.75, -14.25, 68.6875), # coefficients, highest power first
    x=None, # sample points (default: arange(20.))
    noise:float=3., # noise scale (normal)
    seed:int=42, # seed
) -> SynthData:
    "y = poly(coeffs)(x) + noise*N(0,1)."
    noise = check_positive('noise', noise, allow_zero=True)
    try: coeffs = [float(c) for c in coeffs]
    except (TypeError, ValueError): raise TypeError(f"coeffs must be numbers, highest power first, got {coeffs!r}") from None
    if not all(map(math.isfinite, coeffs)): raise ValueError(f"coeffs must be finite, got {coeffs!r}")
    if not coeffs: raise ValueError("coeffs must hold at least one coefficient (highest power first)")
    x = as_tensor2d(torch.arange(20.) if x is None else x, 'x')
    if x.shape[1] != 1: raise ValueError(f"x must be one feature, shape (n,) or (n, 1), got {tuple(x.shape)}")
    g = _gen(seed)
    y = torch.zeros_like(x)
    for c in coeffs: y = y * x + c
    y = y + noise * torch.randn(len(x), 1, generator=g)
    names = _poly_names(len(coeffs) - 1)
    return SynthData(x, y, dict(zip(names, coeffs)), {k: torch.tensor(c) for k, c in zip(names, coeffs)}, 'synth_poly')


def synth_rollercoaster(seed:int=42) -> SynthData:
    "fastbook chapter 4's rollercoaster: time = arange(20), speed = randn(20)*3 + 0.75*(time-9.5)**2 + 1."
    time = torch.arange(0, 20).float()
    speed = torch.randn(20, generator=_gen(seed)) * 3 + 0.75 * (time - 9.5) ** 2 + 1
    # 0.75*(t-9.5)**2 + 1 expanded, highest power first.
    coeffs = dict(c2=.75, c1=-14.25, c0=68.6875)
    return SynthData(time[:, None], speed[:, None], coeffs, {k: torch.tensor(v) for k, v in coeffs.items()},
                     'synth_rollercoaster')


def _x_range(x_range) -> tuple:
    try: lo, hi = map(float, x_range)
    except (TypeError, ValueError): raise TypeError(f"x_range must be a pair of numbers (low, high), got {x_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"x_range must be (low, high) with finite low < high, got {x_range!r}")
    return lo, hi


def _apply_func(f, x) -> torch.Tensor:
    "f(x) for x (n,) as a float32 tensor (n,), or an error naming f and what it returned."
    name = getattr(f, '__name__', repr(f))
    try: y = f(x)
    except Exception as e:
        raise ValueError(f"f={name} failed on a float32 tensor of shape {tuple(x.shape)}: {e}; f must take a tensor of x "
                         f"values and return one y per x, e.g. torch.sin or lambda x: x**2") from e
    try: y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y.detach()).float()
    except (TypeError, ValueError): raise TypeError(f"f={name} must return numbers (a tensor or array), got {type(y).__name__}") from None
    if y.numel() != len(x):
        raise ValueError(f"f={name} returned shape {tuple(y.shape)} for {len(x)} x values: it must return one y per x")
    return y.reshape(-1)


def synth_func(
    f, # the true function, applied to a tensor of x values: torch.sin, lambda x: x**2, ...
    n:int=200, # number of samples
    x_range:tuple=(-3, 3), # x is uniform on this interval
    noise:float=.1, # noise scale (normal)
    seed:int=42, # seed of x and the noise
) -> SynthData:
    "y = f(x) + noise*N(0,1), x uniform on `x_range`; the plots draw f itself as the true curve."
    if not callable(f): raise TypeError(f"f must be a function of a tensor of x values, e.g. torch.sin, got {f!r}")
    n = check_positive('n', n, int)
    noise = check_positive('noise', noise, allow_zero=True)
    lo, hi = _x_range(x_range)
    g = _gen(seed)
    x = torch.rand(n, generator=g) * (hi - lo) + lo
    y = _apply_func(f, x) + noise * torch.randn(n, generator=g)
    if not torch.isfinite(y).all():
        raise ValueError(f"f={getattr(f, '__name__', f)!r} gives NaN/inf on x_range={x_range}: choose a range where it is finite")
    # The true curve as points (not `f`, which may be a lambda): the data's truth must survive pickling (learn.export).
    # A little past x_range too (where f is finite), so the plots' padded x axis shows it to the edges.
    pad = .05 * (hi - lo)
    xs = torch.linspace(lo - pad, hi + pad, 551)
    with np.errstate(all='ignore'): ys = _apply_func(f, xs)
    ok = torch.isfinite(ys)
    name = getattr(f, '__name__', 'f')
    return SynthData(x[:, None], y[:, None], dict(f=name), dict(curve=(xs[ok], ys[ok])), f'synth_func({name})')


def synth_moons(
    n:int=200, # number of samples (half in each moon)
    noise:float=.1, # noise scale (normal, added to both coordinates)
    seed:int=42, # seed of the noise and of the shuffle
) -> SynthData:
    "Two interleaving half circles in 2-D (scikit-learn's `make_moons`): x (n, 2), y (n, 1) the class, 0 or 1 (int64)."
    n = check_positive('n', n, int)
    if n < 2: raise ValueError(f"n must be >= 2 (at least one point per moon), got {n}")
    noise = check_positive('noise', noise, allow_zero=True)
    n_out, g = n // 2, _gen(seed)
    n_in = n - n_out
    t_out, t_in = torch.linspace(0, math.pi, n_out), torch.linspace(0, math.pi, n_in)
    x = torch.cat([torch.stack([t_out.cos(), t_out.sin()], 1), torch.stack([1 - t_in.cos(), .5 - t_in.sin()], 1)])
    y = torch.cat([torch.zeros(n_out, dtype=torch.long), torch.ones(n_in, dtype=torch.long)])[:, None]  # class labels
    idx = torch.randperm(n, generator=g)
    x, y = x[idx], y[idx]
    x = x + noise * torch.randn(n, 2, generator=g)
    return SynthData(x, y, dict(noise=float(noise)), {}, 'synth_moons')


def _blob_centers(centers, n_features) -> torch.Tensor:
    "The (k, n_features) centres: k points on a circle of radius 2 (first two features), or the points given."
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, bool):
        k = int(centers)
        if not 2 <= k <= 5: raise ValueError(f"centers must be 2 to 5 classes (or a list of points), got {centers!r}")
        n_features = check_positive('n_features', n_features, int)
        c = torch.zeros(k, n_features, dtype=torch.float64)
        if n_features == 1: c[:, 0] = torch.linspace(-2, 2, k)
        else:
            a = math.pi / 4 + 2 * math.pi * torch.arange(k, dtype=torch.float64) / k  # two: upper right vs lower left
            c[:, 0], c[:, 1] = 2 * a.cos(), 2 * a.sin()
        return c.float()
    try: c = torch.as_tensor(np.asarray(centers, dtype=np.float32))
    except (TypeError, ValueError):
        raise TypeError(f"centers must be a number of classes (2-5) or a list of points, got {centers!r}") from None
    if c.ndim == 1: c = c[:, None]
    if c.ndim != 2 or not 2 <= len(c) <= 5:
        raise ValueError(f"centers as points must be 2 to 5 points of equal length, shape (k, n_features), "
                         f"got shape {tuple(c.shape)}")
    if not torch.isfinite(c).all(): raise ValueError(f"centers must be finite, got {centers!r}")
    if n_features != 2 and c.shape[1] != n_features:  # 2 is the default: points of another length set their own
        raise ValueError(f"centers are points with {c.shape[1]} coordinate(s) but n_features={n_features}: "
                         f"give points of {n_features} coordinates, or leave n_features out")
    return c


def synth_blobs(
    n:int=200, # number of samples, split evenly between the classes
    centers=2, # number of classes (2-5, centres on a circle of radius 2), or their centres as a list of points
    n_features:int=2, # number of features (with `centers` a number)
    spread:float=1., # standard deviation of each blob, in every feature
    seed:int=42, # seed of the points and their order
) -> SynthData:
    "Gaussian blobs, one per class: x ~ N(center of class y, spread**2), y integer labels 0..k-1 (shuffled)."
    n = check_positive('n', n, int)
    spread = check_positive('spread', spread)
    c = _blob_centers(centers, n_features)
    k, d = c.shape
    if n < 2 * k: raise ValueError(f"n={n} is too few for {k} classes: give at least {2 * k} (two samples per class)")
    g = _gen(seed)
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    x = c[y] + spread * torch.randn(n, d, generator=g)
    # With equal spherical blobs and classes, the best classifier there is (Bayes) is linear: its logits are
    # x @ mu_k / s**2 - |mu_k|**2 / (2 s**2), i.e. for two classes w = (mu_1 - mu_0) / s**2, b = (|mu_0|**2 - |mu_1|**2) / (2 s**2).
    s2 = spread ** 2
    if k == 2: truth = dict(w=(c[1] - c[0]) / s2, b=((c[0] ** 2).sum() - (c[1] ** 2).sum()) / (2 * s2))
    else: truth = dict(w=c / s2, b=-(c ** 2).sum(1) / (2 * s2))
    params = dict(centers=[[round(v, 4) for v in row] for row in c.tolist()], spread=spread)
    return SynthData(x, y[:, None], params, truth, 'synth_blobs')

"""Training speed: fastfit's one-liner vs a hand-written torch loop vs fastai's default path (run by `make bench`).

One thread (torch.set_num_threads(1)), median of 5 repeats, µs per optimizer step. Not a pass/fail test.
Bars and table output are off in every timed fit (`no_bar`, `no_logging`): printing is not training.
Times are this process's CPU time (`time.process_time`): on a machine other jobs share, wall time counts the time they
take too; `--wall` times by the wall clock instead.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

import psutil
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
from fastai.basics import SGD, Callback, CancelFitException, DataLoaders, Learner, MSELossFlat  # noqa: E402

from fastfit.all import (  # noqa: E402
    FuncModel,
    LinearModel,
    LogisticModel,
    MLPModel,
    ParamHistory,
    RegDataLoaders,
    SoftmaxModel,
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
)

REPEATS, LR = 5, .1
clock = time.perf_counter if '--wall' in sys.argv else time.process_time
CLOCK = 'wall time' if '--wall' in sys.argv else 'CPU time'


def median_time(f, repeats=REPEATS):
    ts = []
    for _ in range(repeats):
        t = clock(); f(); ts.append(clock() - t)
    return statistics.median(ts)


def compare(*fs, repeats=REPEATS):
    "Median time of each of `fs`, run round-robin so that load from other processes hits them all alike."
    ts = [[] for _ in fs]
    for _ in range(repeats):
        for f, t in zip(fs, ts):
            t0 = clock(); f(); t.append(clock() - t0)
    return [statistics.median(t) for t in ts]


# -- the three ways ---------------------------------------------------------------------------------------------
def hand_loop(x, y, bs, epochs, model=None, loss_func=F.mse_loss, valid=None, metric=None):
    """What the seeds do by hand, with the same model, loss and SGD (and a strict baseline: one gather per epoch); with
    `valid` (x, y), fastbook's `validate_epoch`: the validation loss and `metric` after each epoch, read as numbers."""
    model = model or LinearModel()
    ps = list(model.parameters())
    n, g = len(x), torch.Generator().manual_seed(0)
    def run():
        for _ in range(epochs):
            if bs is None: batches = [(x, y)]
            else:
                idx = torch.randperm(n, generator=g)
                xs, ys = x[idx], y[idx]
                batches = ((xs[i:i + bs], ys[i:i + bs]) for i in range(0, n - bs + 1, bs))
            for xb, yb in batches:
                loss = loss_func(model(xb), yb)
                loss.backward()
                with torch.no_grad():
                    for p in ps:
                        p -= LR * p.grad
                        p.grad.zero_()
            if valid is not None:
                with torch.no_grad():
                    pv = model(valid[0])
                    loss_func(pv, valid[1]).item(), metric(pv, valid[1]).item()
    return run


def fastfit(s, bs, epochs, history=True, grads=None, opt_func=None, model=None, learner=regression_learner, valid_pct=0):
    "A fit of `epochs` with the default history, none (`history=False`), or a `ParamHistory(grads=grads)`; `model()` or the default."
    dls = s.dataloaders(bs=bs, valid_pct=valid_pct)
    kw = {} if opt_func is None else dict(opt_func=opt_func)
    def run():
        if model is not None: kw['model'] = model()
        if grads is None: learn = learner(dls, lr=LR, history=history, **kw)
        else: learn = learner(dls, lr=LR, history=False, cbs=ParamHistory(grads=grads), **kw)
        with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return run


class StopAfter(Callback):
    "Stop fastai's fit after `n` training batches (to time a few steps of a slow path)."
    def __init__(self, n): self.n = n
    def before_fit(self): self.count = 0
    def after_batch(self):
        if self.training:
            self.count += 1
            if self.count >= self.n: raise CancelFitException()


def fastai_default(s, bs, n_items, n_batches, num_workers=None):
    "fastai's default path: a list of (x, y) tuples, `DataLoaders.from_dsets`, `Learner`, `MSELossFlat`, SGD."
    items = [(s.x[i], s.y[i]) for i in range(n_items)]
    kw = {} if num_workers is None else dict(num_workers=num_workers)
    dls = DataLoaders.from_dsets(items, [], bs=bs, **kw)
    def run():
        learn = Learner(dls, LinearModel(), loss_func=MSELossFlat(), opt_func=SGD, lr=LR, cbs=StopAfter(n_batches))
        with learn.no_bar(), learn.no_logging(): learn.fit(1)
    return run


# -- the table ----------------------------------------------------------------------------------------------------
def row(name, steps, hand_s, ff_s, ffoff_s, fa_s, fa_note):
    us = lambda t: t / steps * 1e6  # noqa: E731
    fa = f"{fa_s * 1e6:9.0f} ({fa_note})" if fa_s else '-'
    ratio_fa = f"{fa_s * 1e6 / us(ff_s):7.0f}x" if fa_s else '-'
    print(f"{name:<28} {us(hand_s):8.1f} {us(ff_s):8.1f} {us(ffoff_s):8.1f} {ff_s / hand_s:7.2f}x {ffoff_s / hand_s:7.2f}x "
          f"{ff_s / ffoff_s - 1:+8.1%}   {ratio_fa:>8}  {fa}")


def bench_speed():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {CLOCK}, median of {REPEATS}, µs per step "
          f"(targets: fastfit <= 1.5x hand, history off <= 1.25x)")
    print(f"{'case':<28} {'hand':>8} {'fastfit':>8} {'hist off':>8} {'ff/hand':>8} {'off/hand':>8} {'hist cost':>8} "
          f"{'fastai/ff':>9}  fastai default µs/step")
    s = synth_linear(n=10_000, seed=0)
    x, y = s.x, s.y

    # (a) 10k points, full batch, 2000 steps; fastai: per-item collate of 10k items, ~50 ms a step: 3 steps timed
    steps = 2000
    h, f, o = compare(hand_loop(x, y, None, steps), fastfit(s, None, steps), fastfit(s, None, steps, history=False))
    fa0 = median_time(fastai_default(s, 10_000, 10_000, 3, num_workers=0), 3) / 3
    fad = median_time(fastai_default(s, 10_000, 10_000, 3), 3) / 3
    row('(a) 10k full batch, 2000 st', steps, h, f, o, fa0, 'num_workers=0, 3 steps timed')
    print(f"{'':<28} fastai with its default num_workers={fp_workers()}: {fad * 1e6:.0f} µs/step "
          f"({fad * 1e6 / (f / steps * 1e6):.0f}x fastfit)")

    # (b) 10k points, bs 64, 10 epochs (156 steps each); fastai: one epoch timed
    steps = 10 * (10_000 // 64)
    h, f, o = compare(hand_loop(x, y, 64, 10), fastfit(s, 64, 10), fastfit(s, 64, 10, history=False))
    fa0 = median_time(fastai_default(s, 64, 10_000, 156, num_workers=0), 3) / 156
    row('(b) 10k bs 64, 10 epochs', steps, h, f, o, fa0, 'num_workers=0, 1 epoch timed')

    # (c) 1M points, bs 4096, 1 epoch (244 steps); fastai: 5 batches timed, from a 5-batch list
    big = synth_linear(n=1_000_000, seed=0)
    steps = 1_000_000 // 4096
    h, f, o = compare(hand_loop(big.x, big.y, 4096, 1), fastfit(big, 4096, 1), fastfit(big, 4096, 1, history=False))
    fa0 = median_time(fastai_default(big, 4096, 5 * 4096, 5, num_workers=0), 3) / 5
    row('(c) 1M bs 4096, 1 epoch', steps, h, f, o, fa0, 'num_workers=0, 5 steps timed')

    # (d), (e) classification, the same loop: logistic regression (BCE of one logit) full batch, softmax (3 classes) bs 64.
    # The hand loops are what a tutorial writes: the labels cast for BCE each step, flattened for cross-entropy.
    blobs = synth_blobs(n=10_000, seed=0)
    bce = lambda p, t: F.binary_cross_entropy_with_logits(p, t.float())  # noqa: E731
    steps = 2000
    h, f, o = compare(hand_loop(blobs.x, blobs.y, None, steps, LogisticModel(2), bce),
                      fastfit(blobs, None, steps, learner=classification_learner),
                      fastfit(blobs, None, steps, history=False, learner=classification_learner))
    row('(d) 10k logistic, full batch', steps, h, f, o, None, '')
    blobs3 = synth_blobs(n=10_000, centers=3, seed=0)
    ce = lambda p, t: F.cross_entropy(p, t.view(-1))  # noqa: E731
    steps = 10 * (10_000 // 64)
    h, f, o = compare(hand_loop(blobs3.x, blobs3.y, 64, 10, SoftmaxModel(2, 3), ce),
                      fastfit(blobs3, 64, 10, learner=classification_learner),
                      fastfit(blobs3, 64, 10, history=False, learner=classification_learner))
    row('(e) 10k softmax(3), bs 64', steps, h, f, o, None, '')


    # (d) an MLP, 1-32-1 ReLU, on 1k points (a sine), full batch, 2000 steps; the hand loop is plain torch (nn.Sequential)
    sine = synth_func(torch.sin, n=1000, seed=0)
    mlp = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))
    steps = 2000
    h, f, o = compare(hand_loop(sine.x, sine.y, None, steps, mlp), fastfit(sine, None, steps, model=lambda: MLPModel(hidden=(32,))),
                      fastfit(sine, None, steps, history=False, model=lambda: MLPModel(hidden=(32,))))
    row('(f) MLP 1-32-1 1k, 2000 st', steps, h, f, o, None, '')

    # (g) logistic regression on 1k points, full batch, with a validation set (20%) and the accuracy metric: each epoch
    # a step, then the validation loss and accuracy (fastai's table; the hand loop reads both as numbers, as fastbook's).
    # Target (issue 25): fastfit <= 2x this hand loop.
    small = synth_blobs(n=1000, seed=0)
    d = small.dataloaders(bs=None, valid_pct=.2)
    yv = d.valid.y
    acc = lambda p, t: ((p.sigmoid() > .5) == t.bool()).float().mean()  # noqa: E731 (fastbook's batch_accuracy)
    steps = 1000
    h, f, o = compare(hand_loop(d.train.x, d.train.y, None, steps, LogisticModel(2), bce, valid=(d.valid.x, yv), metric=acc),
                      fastfit(small, None, steps, learner=classification_learner, valid_pct=.2),
                      fastfit(small, None, steps, history=False, learner=classification_learner, valid_pct=.2))
    row('(g) 1k logistic, valid + acc', steps, h, f, o, None, '')


def bench_grads():
    "What recording each step's gradients (`ParamHistory(grads=True)`, for the 'step' panel) costs over the history alone."
    from fastai.optimizer import Adam
    print(f"\nhistory with gradients (the 'step' panel, on by default) vs without, median of {2 * REPEATS - 1}, µs per step")
    print(f"{'case':<34} {'no hist':>8} {'history':>8} {'+grads':>8} {'grads cost':>10}")
    s = synth_linear(n=10_000, seed=0)
    big = synth_linear(n=1_000_000, seed=0)
    for name, data, bs, epochs, steps, opt in [('(a) 10k full batch, 2000 st', s, None, 2000, 2000, None),
                                               ('(b) 10k bs 64, 10 epochs', s, 64, 10, 10 * (10_000 // 64), None),
                                               ('(c) 1M bs 4096, 1 epoch', big, 4096, 1, 1_000_000 // 4096, None),
                                               ('(b) with Adam (grad_avg, sqr_avg)', s, 64, 10, 10 * (10_000 // 64), Adam)]:
        o, h, g = compare(fastfit(data, bs, epochs, False, opt_func=opt), fastfit(data, bs, epochs, grads=False, opt_func=opt),
                          fastfit(data, bs, epochs, grads=True, opt_func=opt), repeats=2 * REPEATS - 1)
        print(f"{name:<34} {o / steps * 1e6:8.1f} {h / steps * 1e6:8.1f} {g / steps * 1e6:8.1f} {g / h - 1:+10.1%}")


def history_bytes(h) -> int:
    "The bytes a `ParamHistory`'s buffers hold."
    ts = [h._flat, *h._g.values()]
    return sum(t.element_size() * t.nelement() for t in ts) + h._loss.nbytes + h._steps.nbytes + sum(a.nbytes for a in h._hyp.values())


def memory_grads():
    "History bytes with and without gradients: a 2-parameter model, and a 10k-parameter one, over 10k steps."
    x = torch.linspace(-1, 1, 64)[:, None]
    dls = RegDataLoaders.from_arrays(x, 2 * x, valid_pct=0, bs=None)
    def big(x, p): return x[:, 0] * p['a'] + p['v'].mean()
    for label, model in [('LinearModel (2 parameters)', lambda: LinearModel()),
                         ('10k parameters', lambda: FuncModel(big, init={'a': 1., 'v': torch.zeros(9_999)}))]:
        out = []
        for grads in (False, True):
            learn = regression_learner(dls, model(), lr=LR, history=False, cbs=ParamHistory(grads=grads, params=None))
            with learn.no_bar(), learn.no_logging(): learn.fit(10_000)
            h = learn.param_history
            out.append(f"grads={grads}: {len(h)} records of {h.rows} rows, {history_bytes(h) / 2**20:.2f} MB")
        print(f"10k steps, {label}: " + '; '.join(out))


def fp_workers():
    from fastai.torch_core import defaults
    return defaults.cpus


def memory_run():
    "A 10^6-step fit of a 2-parameter model (bs 10 on 10k points, 1000 epochs): history size and peak memory."
    s = synth_linear(n=10_000, seed=0)
    dls = s.dataloaders(bs=10, valid_pct=0)
    learn = regression_learner(dls, lr=.01)
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1000)
    dt = time.perf_counter() - t
    h = learn.param_history
    hist_bytes = history_bytes(h)
    rss1, peak = proc.memory_info().rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"10^6-step fit ({h.step:,} steps, {dt:.0f} s, {dt / h.step * 1e6:.0f} µs/step): history keeps {len(h)} records "
          f"(every {h.stride}th step), {hist_bytes / 2**20:.3f} MB; the process grew {(rss1 - rss0) / 2**20:.1f} MB over "
          f"the fit (mostly the Recorder's per-step losses/lrs lists), peak RSS {peak / 2**20:.0f} MB")


def mlp_memory_run():
    "A 10k-parameter MLP fitted 10k steps: the history's size (bounded by ParamHistory.max_bytes)."
    s = synth_func(torch.sin, n=200, seed=0)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=MLPModel(hidden=(100, 98)), lr=.01)
    n_params = sum(p.numel() for p in learn.model.parameters())
    rss0 = psutil.Process().memory_info().rss
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(10_000)
    dt = time.perf_counter() - t
    h = learn.param_history
    hist_bytes = history_bytes(h)
    print(f"{learn.model} ({n_params:,} parameters), {h.step:,} steps ({dt:.0f} s): history keeps {len(h)} records of "
          f"all {len(h.flat_names):,} parameters and their gradients (every {h.stride}th step), {hist_bytes / 1e6:.1f} MB "
          f"(limit ParamHistory.max_bytes = {h.max_bytes / 1e6:.0f} MB); the process grew "
          f"{(psutil.Process().memory_info().rss - rss0) / 1e6:.0f} MB")


if __name__ == '__main__':
    if '--memory' in sys.argv: memory_run(); memory_grads(); mlp_memory_run(); sys.exit()
    if '--grads' in sys.argv: bench_grads(); sys.exit()
    bench_speed()
    bench_grads()
    # in a fresh process, so the peak RSS is this run's
    subprocess.run([sys.executable, __file__, '--memory'], check=True, env=dict(os.environ))

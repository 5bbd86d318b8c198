"""Many runs at the cost of one: a 200-lr `lr_sweep` (every run fitted together, `fastfit.batched`) against one fit of
the same steps (`*_learner(dls)` + `fit`), and against the 200 fits one after another (the sweep before batching),
in one run. One torch thread, CPU time (the machine may be shared), median of `repeats`. Target: the sweep <= 5x one fit.
Run: `python bench/sweep.py [repeats]` (in `make bench`)."""
import contextlib
import io
import statistics
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
import fastfit.compare as compare  # noqa: E402
from fastfit.all import (  # noqa: E402
    MLPModel,
    classification_learner,
    lr_sweep,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
)

clock = time.process_time
LRS = np.logspace(-3, .5, 200)


def timed(f) -> float:
    t = clock()
    with contextlib.redirect_stdout(io.StringIO()): f()
    return clock() - t


def case(name, dls, epochs, make=regression_learner, model=None, repeats=3, alone=True):
    "One fit, the batched 200-lr sweep, and (once) the 200 fits one by one; a table row."
    def one():
        learn = make(dls, model=None if model is None else model())
        with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    def sweep(): lr_sweep(dls, lrs=LRS, epochs=epochs, model=None if model is None else model())
    t1, ts = [], []
    for _ in range(repeats):
        t1.append(timed(one)); ts.append(timed(sweep))
    t1, ts = statistics.median(t1), statistics.median(ts)
    seq = '-'
    if alone:  # the sweep as it was: every run fitted on its own (once: it is slow)
        orig = compare.fit_together, compare._fit_stacked
        compare.fit_together, compare._fit_stacked = (lambda learners, epochs: False), (lambda *args: None)
        try: seq = f"{timed(sweep):8.2f}"
        finally: compare.fit_together, compare._fit_stacked = orig
    steps = epochs * len(dls.train)
    print(f"| {name} | {steps:,} | {t1:.3f} | {ts:.3f} | {ts / t1:.1f}x | {seq} |", flush=True)


def main(repeats=3):
    print(f"torch {torch.__version__}, 1 thread, CPU time, median of {repeats}; lr_sweep(dls, lrs=np.logspace(-3, .5, 200))\n")
    print("| data, model | steps | one fit s | 200-lr sweep s | sweep / one fit | 200 fits one by one s |")
    print("|---|---:|---:|---:|---:|---:|")
    s = synth_linear(n=100, seed=0)
    for epochs in (50, 500, 2000):
        case(f"100 points, line, full batch, {epochs} epochs", s.dataloaders(bs=None, valid_pct=0), epochs, repeats=repeats,
             alone=epochs == 500)
    case("100 points, line, bs 64 (lr_sweep's default loaders), 250 epochs", s.dataloaders(valid_pct=0), 250, repeats=repeats,
         alone=False)
    big = synth_linear(n=10_000, seed=0)
    case("10k points, line, full batch, 500 epochs", big.dataloaders(bs=None, valid_pct=0), 500, repeats=repeats, alone=False)
    blobs = synth_blobs(n=200, seed=0)
    case("200 points, logistic (gradient in closed form), full batch, 500 epochs", blobs.dataloaders(bs=None, valid_pct=0), 500,
         make=classification_learner, repeats=repeats, alone=False)
    sine = synth_func(torch.sin, n=200, seed=0)
    case("200 points, MLP 1-16-1 (ReLU: gradient by hand), full batch, 500 epochs", sine.dataloaders(bs=None, valid_pct=0), 500,
         model=lambda: MLPModel(hidden=(16,)), repeats=repeats, alone=False)


if __name__ == '__main__': main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

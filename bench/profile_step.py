"""Where a training step's time goes: fastfit's fit taken apart, beside the hand loop (run by `make bench`).

One thread, µs per optimizer step: fits timed in CPU time of this process (the machine may be shared: wall time is
noisier), the pieces inside them with `perf_counter` (medians of several fits). Each
piece of `RegLearner`'s step is wrapped in a timer: the model's forward, the loss (with fastfit's clone and `.item()`),
backward, the optimizer's step, zero_grad, every callback's handlers (by callback), the dispatch of the events around
them, and the rest of the loop (epochs, batches). The timers cost a little themselves: 'total (timed)' is the sum with
them, 'total (plain)' the same fit without them. Not a pass/fail test.
"""
import collections
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
from fastfit import fastai_private  # noqa: E402
from fastfit.all import LogisticModel, MLPModel, classification_learner, regression_learner, synth_blobs, synth_func, synth_linear  # noqa: E402

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from train import hand_loop  # noqa: E402

clock = time.thread_time  # CPU time, which another process's load disturbs less than wall time (torch: one thread)
REPEATS = 5


class Timers:
    "Accumulated CPU seconds and calls per piece of a step."
    def __init__(self): self.t, self.n = collections.Counter(), collections.Counter()

    def wrap(self, key, f):
        t, n = self.t, self.n
        def timed(*args, **kwargs):
            t0 = clock()
            try: return f(*args, **kwargs)
            finally:
                t[key] += clock() - t0
                n[key] += 1
        return timed


def calibrate(n=20000):
    "(inside, whole): what a timer adds to the time it measures, and to the time around it, per call."
    timers = Timers()
    f = timers.wrap('x', lambda: None)
    t0 = clock()
    for _ in range(n): f()
    whole = (clock() - t0) / n
    t0 = clock()
    for _ in range(n): (lambda: None)()
    return timers.t['x'] / n, whole - (clock() - t0) / n


def instrumented_fit(make_learner, epochs, timers):
    "Fit a fresh learner with every piece of its step timed into `timers`."
    learn = make_learner()
    learn.model.forward = timers.wrap('forward', learn.model.forward)
    learn.loss_func = timers.wrap('loss', learn.loss_func)
    for name in ('_backward', '_step', '_zero_grad'):
        setattr(learn, name, timers.wrap(name.strip('_'), getattr(learn, name)))
    # every event's dispatch and handlers (before_fit/after_fit aside: once a fit)
    learn._fire = timers.wrap('events', type(learn)._fire.__get__(learn))
    # handlers by callback class: replace each bound handler in the dispatch cache with a timed one
    orig_handlers = fastai_private.LeanLoop._event_handlers.__get__(learn)
    def handlers(event_name):
        hs = orig_handlers(event_name)
        hs = tuple((cb, None if f is None else timers.wrap('cb ' + type(cb).__name__, f), inner) for cb, f, inner in hs)
        learn._handlers[event_name] = hs
        return hs
    learn._event_handlers = handlers
    t0 = clock()
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    total = clock() - t0
    steps = learn._step_count
    return learn, total, steps


def plain_fit(make_learner, epochs):
    learn = make_learner()
    t0 = clock()
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return clock() - t0, learn._step_count


def breakdown(name, make_learner, epochs, hand):
    "Print the pieces of a step, medians over REPEATS fits, in µs per step."
    pieces, totals, plains, hands = collections.defaultdict(list), [], [], []
    inside, whole = calibrate()
    for _ in range(REPEATS):
        t0 = clock(); hand(); hands.append(clock() - t0)
        p, steps = plain_fit(make_learner, epochs); plains.append(p / steps)
        timers = Timers()
        learn, total, steps = instrumented_fit(make_learner, epochs, timers)
        totals.append(total / steps)
        # each piece less what its timer adds inside it; events hold the handlers they run, timers and all
        T = {k: v - timers.n[k] * inside for k, v in timers.t.items()}
        for k, v in T.items(): pieces[k].append(v / steps)
        cbs = [k for k in T if k.startswith('cb ')]
        n_cb = sum(timers.n[k] for k in cbs)
        pieces['dispatch'].append((T['events'] - sum(T[k] for k in cbs) - n_cb * whole) / steps)
        inner = sum(T[k] for k in ('forward', 'loss', 'backward', 'step', 'zero_grad', 'events'))
        pieces['loop rest'].append((total - inner - sum(timers.n.values()) * whole + n_cb * whole) / steps)
    us = lambda v: statistics.median(v) * 1e6  # noqa: E731
    hand_us = us(hands) / steps
    print(f"\n{name}: {steps} steps; hand loop {hand_us:.1f} µs/step, fastfit {us(plains):.1f} ({us(plains) / hand_us:.2f}x), "
          f"timed {us(totals):.1f}")
    cbs = sorted(k for k in pieces if k.startswith('cb '))
    order = ['forward', 'loss', 'backward', 'step', 'zero_grad', 'dispatch', *cbs, 'loop rest']
    for k in order: print(f"  {k:<28} {us(pieces[k]):8.1f} µs/step")


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, CPU time, median of {REPEATS}, µs per step")
    s = synth_linear(n=10_000, seed=0)
    for hist in (True, False):
        tag = 'history on' if hist else 'history off'
        dls = s.dataloaders(bs=None, valid_pct=0)
        breakdown(f"(a) 10k full batch, {tag}", lambda: regression_learner(dls, lr=.1, history=hist), 2000,
                  hand_loop(s.x, s.y, None, 2000))
        dls64 = s.dataloaders(bs=64, valid_pct=0)
        breakdown(f"(b) 10k bs 64, {tag}", lambda: regression_learner(dls64, lr=.1, history=hist), 10,
                  hand_loop(s.x, s.y, 64, 10))
    blobs = synth_blobs(n=10_000, seed=0)
    dlb = blobs.dataloaders(bs=None, valid_pct=0)
    bce = lambda p, t: F.binary_cross_entropy_with_logits(p, t.float())  # noqa: E731
    breakdown("(d) 10k logistic, full batch, history on", lambda: classification_learner(dlb, lr=.1), 2000,
              hand_loop(blobs.x, blobs.y, None, 2000, LogisticModel(2), bce))
    sine = synth_func(torch.sin, n=1000, seed=0)
    dls = sine.dataloaders(bs=None, valid_pct=0)
    breakdown("(f) MLP 1-32-1 1k, history on", lambda: regression_learner(dls, MLPModel(hidden=(32,)), lr=.1), 2000,
              hand_loop(sine.x, sine.y, None, 2000, MLPModel(hidden=(32,))))


if __name__ == '__main__':
    main()

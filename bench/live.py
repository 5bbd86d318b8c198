"""LiveView's cost: a 1,000-step fit with and without the picture updated live (run by `make bench`).

One thread, median of 3 repeats in this run. The display is IPython's, replaced by one that keeps nothing (what a
notebook does with the bytes is the front end's time, not the fit's): each update draws the picture (the panels renewed,
the moving artists blitted) and encodes it as PNG. The defaults (at most 10 updates a second, drawing at most 20% of the
time) are what a reader gets; the first update also draws the still part; an update per step gives the cost of one.
Not a pass/fail test.
"""
import statistics
import time

import IPython.display
import torch

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
from fastfit.all import LiveView, regression_learner, synth_linear  # noqa: E402

STEPS, REPEATS = 1000, 3


class _Handle:
    def update(self, data, raw=False): pass


IPython.display.display = lambda *a, **k: _Handle()  # a notebook's display, that keeps nothing


def fit(live=None, steps=STEPS) -> tuple:
    "(seconds for the fit, updates, seconds drawing, seconds of the first picture)"
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=None))
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(steps, cbs=live)
    return time.perf_counter() - t, getattr(live, 'updates', 0), getattr(live, 'draw_time', 0.), getattr(live, 'first_time', 0.)


def main():
    print(f"a {STEPS:,}-step full-batch fit of synth_linear(n=100), median of {REPEATS}:")
    base = statistics.median(fit()[0] for _ in range(REPEATS))
    print(f"  without LiveView: {base * 1e3:7.0f} ms")
    for panels in (('fit', 'loss'), ('fit', 'surface', 'loss')):
        runs = [fit(LiveView(panels=panels, show=True)) for _ in range(REPEATS)]
        t, n, d, f = (statistics.median(r[i] for r in runs) for i in range(4))
        print(f"  with LiveView{panels}: {t * 1e3:7.0f} ms ({t / base:4.2f}x), {n:.0f} updates "
              f"(the first, with the still part: {f * 1e3:.0f} ms)")
    print("an update per step (max_fps=1e9, share=1), 50 steps, median of 3:")
    for panels in (('fit', 'loss'), ('fit', 'surface', 'loss')):
        runs = [fit(LiveView(panels=panels, show=True, max_fps=1e9, share=1.), 50) for _ in range(REPEATS)]
        per = statistics.median((d - f) / (n - 1) for _, n, d, f in runs)
        print(f"  LiveView{panels}: {per * 1e3:5.1f} ms per update after the first")


if __name__ == '__main__': main()

"""Big data: the pictures of a fit on 10^6 points against the same calls on 10^4 points, in one run (`make bench`).

Each size runs in a fresh process (so its peak RSS is its own): `synth_linear(n)`, 80% training data, full batch,
a 20-step fit; then the GIF of it (`save_animation`, the default 'fit' panel, and 'fit'+'surface'+'loss'),
`show_fit` and `plot_loss_surface` each drawn to a PNG (what a notebook shows), median of repeats. The fit's own time
is the baseline the pictures are measured against. Targets at 10^6 points (issue 12): GIF <= 3 s, `show_fit` <= 1 s,
loss surface <= 3 s, peak RSS <= 1 GB. Run: `python bench/scale.py [repeats]`; `--case N` runs one size.
"""
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import torch  # noqa: E402

torch.set_num_threads(1)  # as bench/train.py: on a shared machine, 2 threads of OpenMP wait on each other
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
import matplotlib.pyplot as plt  # noqa: E402

from fastfit.all import regression_learner, synth_linear  # noqa: E402

SIZES, STEPS = (10_000, 1_000_000), 20


def timed(fn, reps):
    ts = []
    for _ in range(reps):
        gc.collect()
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        plt.close('all')
    return statistics.median(ts)


def case(n, reps):
    "Seconds of each call and the peak RSS (MB) for `n` points, in this (fresh) process."
    dls = synth_linear(n=n, seed=0).dataloaders(bs=None)
    def fit():
        learn = regression_learner(dls, lr=.5)
        with learn.no_bar(), learn.no_logging(): learn.fit(STEPS)
        return learn
    out = dict(fit=timed(fit, reps))
    learn = fit()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        def png(f):
            def run():
                f()
                plt.gcf().savefig(d / 'p.png')
            return run
        out['gif'] = timed(lambda: learn.save_animation(d / 'fit.gif'), reps)
        out['gif3'] = timed(lambda: learn.save_animation(d / 'fit3.gif', panels=('fit', 'surface', 'loss')), reps)
        out['show_fit'] = timed(png(learn.show_fit), reps)
        out['surface'] = timed(png(learn.plot_loss_surface), reps)
    out['rss'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(reps=3):
    res = {}
    for n in SIZES:
        p = subprocess.run([sys.executable, __file__, '--case', str(n), str(reps)], capture_output=True, text=True,
                           env=dict(os.environ), check=True)
        res[n] = json.loads(p.stdout.strip().splitlines()[-1])
    small, big = res[SIZES[0]], res[SIZES[-1]]
    print(f"synth_linear(n), 80% training data, full batch, {STEPS}-step fit; median of {reps}; seconds (x the fit's time)")
    print("| points | fit s | GIF 'fit' s | GIF fit+surface+loss s | show_fit s | plot_loss_surface s | peak RSS MB |")
    print('|---:|---:|---:|---:|---:|---:|---:|')
    for n, r in res.items():
        x = lambda k: f"{r[k]:.2f} ({r[k] / r['fit']:.1f}x)"  # noqa: E731
        print(f"| {n:,} | {r['fit']:.2f} | {x('gif')} | {x('gif3')} | {x('show_fit')} | {x('surface')} | {r['rss']:.0f} |")
    print(f"\n{SIZES[-1]:,} vs {SIZES[0]:,} points ({SIZES[-1] // SIZES[0]}x the data): "
          + ', '.join(f"{k} {big[k] / small[k]:.1f}x" for k in ('fit', 'gif', 'gif3', 'show_fit', 'surface', 'rss')))
    print(f"targets at {SIZES[-1]:,} points: GIF {big['gif']:.2f} s (<= 3), show_fit {big['show_fit']:.2f} s (<= 1), "
          f"loss surface {big['surface']:.2f} s (<= 3), peak RSS {big['rss']:.0f} MB (<= 1024)")


if __name__ == '__main__':
    if '--case' in sys.argv:
        i = sys.argv.index('--case')
        n, reps = int(sys.argv[i + 1]), int(sys.argv[i + 2]) if len(sys.argv) > i + 2 else 3
        print(json.dumps(case(n, reps)))
    else: main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

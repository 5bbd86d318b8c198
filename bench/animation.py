"""Animation export: fastfit's blitted writers vs matplotlib's own path on the same `learn.animate()`, in one run.

100 frames, one panel and two panels. GIF: `save_animation('.gif')` vs `FuncAnimation.save(PillowWriter)`;
HTML: `save_animation('.html')` vs `to_jshtml()`. Times are medians of interleaved repeats (the machine is shared);
'differing' is the worst frame's share of pixels more than 40/255 off matplotlib's own full redraw of that frame.
Run: `python bench/animation.py [repeats]` (in `make bench`)."""
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import fastprogress.fastprogress as fp  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402

fp.NO_BAR = True
from fastfit.all import regression_learner, synth_linear  # noqa: E402
from fastfit.panels import PANELS  # noqa: E402
from fastfit.render import frames_differ, mpl_frames  # noqa: E402
from fastfit.writers import exported_frames  # noqa: E402

FRAMES, FPS, DPI = 100, 20, 80




def worst(frames, ref):
    if len(frames) != len(ref): return float('nan')
    return max(frames_differ(f, r) for f, r in zip(frames, ref))


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(learn, panels, reps, d):
    anim = lambda: learn.animate(frames=FRAMES, fps=FPS, panels=panels, dpi=DPI)
    runs = dict(ff_gif=lambda: learn.save_animation(d / 'ff.gif', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_gif=lambda: anim().save(d / 'mpl.gif', writer=PillowWriter(fps=FPS)),
                ff_html=lambda: learn.save_animation(d / 'ff.html', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_html=lambda: (d / 'mpl.html').write_text(anim().to_jshtml()))
    times = {k: [] for k in runs}
    for _ in range(reps):  # interleaved, so that load from other processes hits both sides alike
        for k, f in runs.items(): times[k].append(timed(f))
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = [f[..., :3] for f in mpl_frames(anim())]
    size = lambda n: os.path.getsize(d / n)
    return dict(
        gif=(med['mpl_gif'], med['ff_gif'], size('mpl.gif'), size('ff.gif'), worst(exported_frames(d / 'mpl.gif', FPS), ref),
             worst(exported_frames(d / 'ff.gif', FPS), ref)),
        html=(med['mpl_html'], med['ff_html'], size('mpl.html'), size('ff.html'), float('nan'),
              worst(exported_frames(d / 'ff.html'), ref)))


def main(reps=5):
    s = synth_linear(n=100, seed=42)
    learn = regression_learner(s.dataloaders(bs=None))
    with learn.no_bar(), learn.no_logging(): learn.fit(100)
    others = [p for p in PANELS if p != 'fit']
    two = ('fit', others[0]) if others else ('fit', 'fit')
    print(f"{FRAMES} frames, {DPI} dpi, median of {reps} interleaved repeats"
          + ('' if others else "; no second panel type yet: 'two panels' is ('fit', 'fit')"))
    print('| panels | format | matplotlib s | fastfit s | speed-up | matplotlib bytes | fastfit bytes '
          '| differing px, matplotlib file | differing px, fastfit file |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for panels in (('fit',), two):
            res = bench(learn, panels, reps, Path(d))
            for fmt, (tm, tf, sm, sf, dm, df) in res.items():
                print(f"| {'+'.join(panels)} | {fmt} | {tm:.2f} | {tf:.2f} | {tm / tf:.1f}x | {sm:,} | {sf:,} "
                      f"| {'-' if dm != dm else f'{dm:.3%}'} | {df:.3%} |", flush=True)


if __name__ == '__main__': main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

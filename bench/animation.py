"""Animation export: fastfit's renderer, GIF encoder, player and inline display vs matplotlib's own path, in one run.

The same `animate()` figure (100 frames, the default dpi 100) for every built-in panel set: `fit`, `fit`+`surface`+`loss`,
`fit`+`step`, a classifier's `boundary`+`surface`+`loss`, an MLP's `units`+`landscape`, three optimizers on
`fit`+`surface`+`loss` (compare_optimizers), a 200-lr sweep's stability map (`sweep`), and small multiples (a 4-lr
sweep's `fit` grid, compare_scaling's `surface`+`loss`: `small_multiples()`). Target: >= 40x for GIF and HTML.
- GIF: `learn.save_animation('.gif')` vs `FuncAnimation.save(PillowWriter)`;
- HTML: `learn.save_animation('.html')` vs `to_jshtml()` (every frame: `mpl_jshtml`) written to a file;
- inline display: `FitAnimation.outputs()` (what Jupyter shows: the GIF and the player's script) vs `to_jshtml()`
  (matplotlib's inline HTML); bytes are what the notebook stores.
Times are CPU time of this process (`time.process_time`; both sides are single-threaded), medians of interleaved
repeats: on a shared machine wall time counts the other jobs too (`--wall` times by the wall clock).
'differing' is the worst frame's share of pixels more
than 40/255 off matplotlib's own full redraw of that frame. Also: render-only and encode-only time per frame, the share
of render time spent drawing moving text, fastfit's hand-written GIF container vs Pillow's `save_all` writer on the same
frames, and 100 vs 1,000 frames (linear growth). Run: `python bench/animation.py [repeats]` (in `make bench`);
`--ratios`: only the GIF and HTML speed-ups (no stages, pixel check, inline row or 1,000 frames: a quicker comparison);
`--only=fit,fit+step`: only those panel sets (named as in the table)."""
import contextlib
import functools
import gc
import io
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
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402
from PIL import Image  # noqa: E402

fp.NO_BAR = True
from fastfit.all import (  # noqa: E402
    SGD,
    Adam,
    MLPModel,
    PolyModel,
    classification_learner,
    compare_optimizers,
    compare_scaling,
    lr_sweep,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
    synth_rollercoaster,
)
from fastfit.gif import GifStream, Palette, artist_colours  # noqa: E402
from fastfit.plots import learner_frames  # noqa: E402
from fastfit.render import Renderer, frames_differ, mpl_frames  # noqa: E402
from fastfit.writers import exported_frames  # noqa: E402

FRAMES, FPS, DPI = 100, 20, 100
clock = time.perf_counter if '--wall' in sys.argv else time.process_time


def timed(fn):
    gc.collect()  # the previous run's garbage (a whole matplotlib animation) is not collected on the next one's time
    t = clock()
    fn()
    return clock() - t


def med(xs): return statistics.median(xs)


def worst(frames, ref):
    if len(frames) != len(ref): return float('nan')
    return max(frames_differ(f, r) for f, r in zip(frames, ref))


def pillow_gif(frames, pal, fps) -> bytes:
    "Pillow's own multi-frame writer on the same palette indices: `save_all`, one palette, changed boxes, transparency."
    def images():
        prev = idx = None
        for f in frames:
            px = np.ascontiguousarray(f).view(np.uint32)[..., 0] & 0xFFFFFF
            if prev is None: idx = pal.lookup(px)
            else:
                ch = px != prev
                idx = idx.copy()
                idx[ch] = pal.lookup(px[ch])
            prev = px
            yield pal.image(idx)
    ims = images()
    buf, d = io.BytesIO(), [round((k + 1) * 100 / fps) - round(k * 100 / fps) for k in range(len(frames))]
    next(ims).save(buf, format='GIF', save_all=True, append_images=ims, duration=[10 * x for x in d], loop=0,
                   optimize=True, transparency=255, palette=pal.bytes(), disposal=1)
    return buf.getvalue()


def frames_of(subject, panels):
    "The `Frames` that `subject` (a learner, or a comparison's runs) animates."
    if hasattr(subject, 'learners'): return subject.frames(FRAMES, panels, DPI)
    return learner_frames(subject, FRAMES, panels, DPI, 'bench')


def stages(learn, panels, reps):
    "Render-only and encode-only seconds per frame, the text share of rendering, and the GIF container comparison."
    rend, enc, text, hand, pil, sizes = [], [], [], [], [], None
    for _ in range(reps):
        fr = frames_of(learn, panels)
        with Renderer(fr) as r:
            t = clock()
            frames = [r.frame(k).copy() for k in range(len(fr))]
            rend.append((clock() - t) / len(fr))
            text.append(r.t_text / r.t_draw)
        def encode():
            st = GifStream(Palette([frames[k] for k in (0, 33, 66, 99)], artist_colours(fr.artists)), FPS)
            for f in frames: st.add(f)
            return st.getvalue()
        enc.append(timed(encode) / len(fr))
        pal = Palette([frames[k] for k in (0, 33, 66, 99)], artist_colours(fr.artists))
        t = clock(); a = encode(); hand.append(clock() - t)
        t = clock(); b = pillow_gif(frames, pal, FPS); pil.append(clock() - t)
        sizes = len(a), len(b)
    return med(rend), med(enc), med(text), med(hand), med(pil), sizes


def bench(learn, panels, reps, d, ratios=False):
    anim = lambda: learn.animate(frames=FRAMES, fps=FPS, panels=panels, dpi=DPI)
    runs = dict(ff_gif=lambda: learn.save_animation(d / 'ff.gif', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_gif=lambda: anim().save(d / 'mpl.gif', writer=PillowWriter(fps=FPS)),
                ff_html=lambda: learn.save_animation(d / 'ff.html', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_html=lambda: (d / 'mpl.html').write_text(mpl_jshtml(anim())),
                ff_inline=lambda: anim().outputs())
    if ratios: del runs['ff_inline']
    times = {k: [] for k in runs}
    for _ in range(reps):  # interleaved, so that load from other processes hits both sides alike
        for k, f in runs.items(): times[k].append(timed(f))
    m = {k: med(v) for k, v in times.items()}
    size = lambda n: os.path.getsize(d / n)
    if ratios: return dict(gif=(m['mpl_gif'], m['ff_gif'], size('mpl.gif'), size('ff.gif'), float('nan'), float('nan')),
                           html=(m['mpl_html'], m['ff_html'], size('mpl.html'), size('ff.html'), float('nan'), float('nan')))
    ref = [f[..., :3] for f in mpl_frames(anim())]
    # matplotlib's inline HTML is `to_jshtml()`, the same work as its .html: one timing serves both rows
    return dict(gif=(m['mpl_gif'], m['ff_gif'], size('mpl.gif'), size('ff.gif'),
                     worst(exported_frames(d / 'mpl.gif', FPS), ref), worst(exported_frames(d / 'ff.gif', FPS), ref)),
                html=(m['mpl_html'], m['ff_html'], size('mpl.html'), size('ff.html'), float('nan'),
                      worst(exported_frames(d / 'ff.html'), ref)),
                inline=(m['mpl_html'], m['ff_inline'], size('mpl.html'), sum(len(v) for o in anim().outputs() for v in o.values()),
                        float('nan'), float('nan')))


def mpl_jshtml(anim) -> str:
    """matplotlib's `to_jshtml()` with every frame in it: past `animation.embed_limit` (20 MB of base64 by default; the
    3-run figure's PNGs reach it near their last frame) matplotlib stops saving frames and drops them with a warning, which
    would time less work than fastfit's page of all frames."""
    with matplotlib.rc_context({'animation.embed_limit': 2 ** 12}): return anim.to_jshtml()


def pct(v): return '-' if v != v else f'{v:.3%}'


def quiet_fit(learn, epochs):
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn


def cases() -> list:
    "(what, panels) for every built-in panel set, each on the fit it is made for."
    s = synth_linear(n=100, seed=42)
    learn = quiet_fit(regression_learner(s.dataloaders(bs=None)), 100)  # the default figure: 100 steps, 100 frames
    # a classifier: the boundary panel's background and borders move every frame (logistic regression, 100 steps)
    cls = quiet_fit(classification_learner(synth_blobs(spread=1.2).dataloaders(bs=None), lr=1.), 100)
    sine = synth_func(torch.sin, n=200, seed=0)
    mlp = quiet_fit(regression_learner(sine.dataloaders(bs=None), MLPModel(hidden=(8,)), lr=.1), 100)
    dls = s.dataloaders(bs=None, valid_pct=0)
    with contextlib.redirect_stdout(io.StringIO()):  # the sweep's line about its diverged runs
        opts = compare_optimizers(dls, {'SGD': SGD, 'momentum': functools.partial(SGD, mom=.9), 'Adam': Adam}, epochs=100)
        sweep = lr_sweep(dls, lrs=np.logspace(-3, .5, 200), epochs=100)
    return [(learn, ('fit',)), (learn, ('fit', 'surface', 'loss')), (learn, ('fit', 'step')),
            (cls, ('boundary', 'surface', 'loss')), (mlp, ('units', 'landscape')), (opts, ('fit', 'surface', 'loss')),
            (sweep, ('sweep',))]


def small_multiples() -> list:
    """(what, panels) for the comparisons drawn as small multiples: a 4-lr sweep's grid of 'fit' panels (nbs/12) and
    compare_scaling's two surfaces beside their shared loss (nbs/13): a figure of several panels set up at once."""
    s = synth_linear(n=100, seed=42)
    with contextlib.redirect_stdout(io.StringIO()):  # the sweep's line about its diverged run
        sweep = lr_sweep(s.dataloaders(bs=None), (.01, .1, .9, 1.5), epochs=100)
    scaling = compare_scaling(synth_rollercoaster(seed=0), PolyModel(2, init=dict(c2=-2., c1=0., c0=0.)), epochs=100)
    return [(sweep, ('fit',)), (scaling, ('surface', 'loss'))]


def name(subject, panels) -> str:
    "The table's name of a case: its panels, and what runs it draws when it draws several."
    runs = len(getattr(subject, 'learners', ()))
    return (f"{runs} runs: " if runs else '') + '+'.join(panels)


def main(reps=5, ratios=False):
    s = synth_linear(n=100, seed=42)
    long = None if ratios else quiet_fit(regression_learner(s.dataloaders(bs=None)), 1000)  # 1,001 records: the 1,000-frame row
    todo = cases() + small_multiples()
    if only := next((a.split('=', 1)[1] for a in sys.argv[1:] if a.startswith('--only=')), None):  # e.g. fit,fit+step
        todo = [c for c in todo if name(*c) in only.split(',')]
    print(f"{FRAMES} frames, {DPI} dpi, {'wall' if clock is time.perf_counter else 'CPU'} time, "
          f"median of {reps} interleaved repeats\n")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if not ratios: stage_table(todo, reps)
        print('\n| panels | output | matplotlib s | fastfit s | speed-up | matplotlib bytes | fastfit bytes '
              '| differing px, matplotlib file | differing px, fastfit file |')
        print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
        with tempfile.TemporaryDirectory() as d:
            for lrn, panels in todo:
                res = bench(lrn, panels, reps, Path(d), ratios)
                for fmt, (tm, tf, sm, sf, dm, df) in res.items():
                    sizes = ('-', '-') if sm is None else (f'{sm:,}', f'{sf:,}')
                    print(f"| {name(lrn, panels)} | {fmt} | {tm:.2f} | {tf:.3f} | {tm / tf:.1f}x | {sizes[0]} | {sizes[1]} "
                          f"| {pct(dm)} | {pct(df)} |", flush=True)
                gif, page = os.path.getsize(Path(d) / 'ff.gif'), os.path.getsize(Path(d) / 'ff.html')
                print(f"| {name(lrn, panels)} | html / gif size | | | | | {page / gif:.2f}x | | |", flush=True)
            if ratios: return
            t100 = med([timed(lambda: long.save_animation(Path(d) / 'a.gif', frames=100, fps=FPS, dpi=DPI))
                        for _ in range(reps)])
            t1000 = med([timed(lambda: long.save_animation(Path(d) / 'b.gif', frames=1000, fps=FPS, dpi=DPI))
                         for _ in range(max(1, reps // 2))])
            with Image.open(Path(d) / 'b.gif') as im: n = im.n_frames
        print(f"\nfit GIF of a 1,000-step fit: 100 frames {t100:.2f} s, 1,000 frames ({n} in the file) {t1000:.2f} s: "
              f"{t1000 / t100:.1f}x the time for 10x the frames")


def stage_table(todo, reps):
    "The stages table: render and encode per frame, text share, fastfit's GIF container vs Pillow's."
    print('| panels | render ms/frame | encode ms/frame | text share of render | GIF container: fastfit s | '
          'Pillow save_all s | fastfit bytes | Pillow bytes |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for lrn, panels in todo:
        r, e, t, h, p, (sh, sp) = stages(lrn, panels, reps)
        print(f"| {name(lrn, panels)} | {1e3 * r:.2f} | {1e3 * e:.2f} | {t:.0%} | {h:.3f} | {p:.3f} ({p / h:.1f}x) "
              f"| {sh:,} | {sp:,} |", flush=True)


if __name__ == '__main__': main(int(next((a for a in sys.argv[1:] if a.isdigit()), 5)), '--ratios' in sys.argv)

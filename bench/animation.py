"""Animation export: fastfit's renderer, GIF encoder, player and inline display vs matplotlib's own path, in one run.

The same `learn.animate()` figure (100 frames, dpi 80), for the `fit` panel, `fit`+`surface`+`loss`, `fit`+`step`, and
for a classifier's `boundary`+`surface`+`loss`:
- GIF: `learn.save_animation('.gif')` vs `FuncAnimation.save(PillowWriter)`;
- HTML: `learn.save_animation('.html')` vs `to_jshtml()` written to a file;
- inline display: `FitAnimation.outputs()` (what Jupyter shows: the GIF and the player's script) vs `to_jshtml()`
  (matplotlib's inline HTML); bytes are what the notebook stores.
Times are medians of interleaved repeats (the machine is shared). 'differing' is the worst frame's share of pixels more
than 40/255 off matplotlib's own full redraw of that frame. Also: render-only and encode-only time per frame, the share
of render time spent drawing moving text, fastfit's hand-written GIF container vs Pillow's `save_all` writer on the same
frames, and 100 vs 1,000 frames (linear growth). Run: `python bench/animation.py [repeats]` (in `make bench`)."""
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
from matplotlib.animation import PillowWriter  # noqa: E402
from PIL import Image  # noqa: E402

fp.NO_BAR = True
from fastfit.all import classification_learner, regression_learner, synth_blobs, synth_linear  # noqa: E402
from fastfit.gif import GifStream, Palette, artist_colours  # noqa: E402
from fastfit.plots import learner_frames  # noqa: E402
from fastfit.render import Renderer, frames_differ, mpl_frames  # noqa: E402
from fastfit.writers import exported_frames  # noqa: E402

FRAMES, FPS, DPI = 100, 20, 80
PANELS = (('fit',), ('fit', 'surface', 'loss'), ('fit', 'step'))  # 'step': the text panel of issue 17


def timed(fn):
    gc.collect()  # the previous run's garbage (a whole matplotlib animation) is not collected on the next one's time
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


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


def stages(learn, panels, reps):
    "Render-only and encode-only seconds per frame, the text share of rendering, and the GIF container comparison."
    rend, enc, text, hand, pil, sizes = [], [], [], [], [], None
    for _ in range(reps):
        fr = learner_frames(learn, FRAMES, panels, DPI, 'bench')
        with Renderer(fr) as r:
            t = time.perf_counter()
            frames = [r.frame(k).copy() for k in range(len(fr))]
            rend.append((time.perf_counter() - t) / len(fr))
            text.append(r.t_text / r.t_draw)
        def encode():
            st = GifStream(Palette([frames[k] for k in (0, 33, 66, 99)], artist_colours(fr.artists)), FPS)
            for f in frames: st.add(f)
            return st.getvalue()
        enc.append(timed(encode) / len(fr))
        pal = Palette([frames[k] for k in (0, 33, 66, 99)], artist_colours(fr.artists))
        t = time.perf_counter(); a = encode(); hand.append(time.perf_counter() - t)
        t = time.perf_counter(); b = pillow_gif(frames, pal, FPS); pil.append(time.perf_counter() - t)
        sizes = len(a), len(b)
    return med(rend), med(enc), med(text), med(hand), med(pil), sizes


def bench(learn, panels, reps, d):
    anim = lambda: learn.animate(frames=FRAMES, fps=FPS, panels=panels, dpi=DPI)
    runs = dict(ff_gif=lambda: learn.save_animation(d / 'ff.gif', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_gif=lambda: anim().save(d / 'mpl.gif', writer=PillowWriter(fps=FPS)),
                ff_html=lambda: learn.save_animation(d / 'ff.html', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                mpl_html=lambda: (d / 'mpl.html').write_text(anim().to_jshtml()),
                ff_inline=lambda: anim().outputs())
    times = {k: [] for k in runs}
    for _ in range(reps):  # interleaved, so that load from other processes hits both sides alike
        for k, f in runs.items(): times[k].append(timed(f))
    m = {k: med(v) for k, v in times.items()}
    ref = [f[..., :3] for f in mpl_frames(anim())]
    size = lambda n: os.path.getsize(d / n)
    # matplotlib's inline HTML is `to_jshtml()`, the same work as its .html: one timing serves both rows
    return dict(gif=(m['mpl_gif'], m['ff_gif'], size('mpl.gif'), size('ff.gif'),
                     worst(exported_frames(d / 'mpl.gif', FPS), ref), worst(exported_frames(d / 'ff.gif', FPS), ref)),
                html=(m['mpl_html'], m['ff_html'], size('mpl.html'), size('ff.html'), float('nan'),
                      worst(exported_frames(d / 'ff.html'), ref)),
                inline=(m['mpl_html'], m['ff_inline'], size('mpl.html'), sum(len(v) for o in anim().outputs() for v in o.values()),
                        float('nan'), float('nan')))


def pct(v): return '-' if v != v else f'{v:.3%}'


def main(reps=5):
    s = synth_linear(n=100, seed=42)
    learn, long = regression_learner(s.dataloaders(bs=None)), regression_learner(s.dataloaders(bs=None))
    with learn.no_bar(), learn.no_logging(): learn.fit(100)  # the default figure: 100 steps, 100 frames
    with long.no_bar(), long.no_logging(): long.fit(1000)  # 1,001 records: enough for the 1,000-frame row
    # a classifier: the boundary panel's background and borders move every frame (logistic regression, 100 steps)
    cls = classification_learner(synth_blobs(spread=1.2).dataloaders(bs=None), lr=1.)
    with cls.no_bar(), cls.no_logging(): cls.fit(100)
    cases = [(learn, p) for p in PANELS] + [(cls, ('boundary', 'surface', 'loss'))]
    print(f"{FRAMES} frames, {DPI} dpi, median of {reps} interleaved repeats\n")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        print('| panels | render ms/frame | encode ms/frame | text share of render | GIF container: fastfit s | '
              'Pillow save_all s | fastfit bytes | Pillow bytes |')
        print('|---|---:|---:|---:|---:|---:|---:|---:|')
        for lrn, panels in cases:
            r, e, t, h, p, (sh, sp) = stages(lrn, panels, reps)
            print(f"| {'+'.join(panels)} | {1e3 * r:.2f} | {1e3 * e:.2f} | {t:.0%} | {h:.3f} | {p:.3f} ({p / h:.1f}x) "
                  f"| {sh:,} | {sp:,} |", flush=True)
        print('\n| panels | output | matplotlib s | fastfit s | speed-up | matplotlib bytes | fastfit bytes '
              '| differing px, matplotlib file | differing px, fastfit file |')
        print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
        with tempfile.TemporaryDirectory() as d:
            for lrn, panels in cases:
                res = bench(lrn, panels, reps, Path(d))
                for fmt, (tm, tf, sm, sf, dm, df) in res.items():
                    sizes = ('-', '-') if sm is None else (f'{sm:,}', f'{sf:,}')
                    print(f"| {'+'.join(panels)} | {fmt} | {tm:.2f} | {tf:.3f} | {tm / tf:.1f}x | {sizes[0]} | {sizes[1]} "
                          f"| {pct(dm)} | {pct(df)} |", flush=True)
                gif, page = os.path.getsize(Path(d) / 'ff.gif'), os.path.getsize(Path(d) / 'ff.html')
                print(f"| {'+'.join(panels)} | html / gif size | | | | | {page / gif:.2f}x | | |", flush=True)
            t100 = med([timed(lambda: long.save_animation(Path(d) / 'a.gif', frames=100, fps=FPS, dpi=DPI))
                        for _ in range(reps)])
            t1000 = med([timed(lambda: long.save_animation(Path(d) / 'b.gif', frames=1000, fps=FPS, dpi=DPI))
                         for _ in range(max(1, reps // 2))])
            with Image.open(Path(d) / 'b.gif') as im: n = im.n_frames
        print(f"\nfit GIF of a 1,000-step fit: 100 frames {t100:.2f} s, 1,000 frames ({n} in the file) {t1000:.2f} s: "
              f"{t1000 / t100:.1f}x the time for 10x the frames")


if __name__ == '__main__': main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

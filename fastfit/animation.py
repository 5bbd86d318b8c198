"Animations from the recorded history: `learn.animate` (a FuncAnimation), `learn.save_animation`, `AnimateFit`."
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import struct
import tempfile
import warnings
from operator import attrgetter
from pathlib import Path

import matplotlib as mpl
import numpy as np
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastcore.basics import patch
from matplotlib.animation import AbstractMovieWriter, FuncAnimation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba_array
from matplotlib.image import AxesImage
from PIL import Image

from .plots import Frames, Records, require_history

# What `from fastfit.all import *` brings; the renderer, writers and test helpers are imported from here by name.
__all__ = ['FitAnimation', 'AnimateFit', 'animation_of', 'exported_frames']


class FitAnimation(FuncAnimation):
    "A matplotlib `FuncAnimation` that shows itself inline in Jupyter as fastfit's offline player (the .html export)."
    frames_obj = None  # the `Frames` it animates, set by `animation_of`

    def _repr_html_(self):
        # The exporters' renderer is 10-20x faster than `to_jshtml`'s full redraws, and its page needs no network
        # (matplotlib's template fetches Font Awesome). An iframe keeps each player's script and ids to itself.
        fr = self.frames_obj
        if fr is None: return self.to_jshtml()
        page = player_page(fr, 1000 / self._interval)
        w, h = (fr.fig.get_size_inches() * fr.fig.dpi).round().astype(int)
        return (f'<iframe srcdoc="{html.escape(page, quote=True)}" width="{w + 40}" height="{h + 110}" '
                f'style="border:0" title="fastfit animation"></iframe>')


def _frames(learn, frames, panels, dpi, what) -> Frames:
    frames = int(frames)
    if frames < 1: raise ValueError(f"frames must be >= 1, got {frames}")
    h = require_history(learn, what)
    return Frames(learn, Records.from_history(h, frames), panels=panels, dpi=dpi)


@patch
def animate(self:Learner,
    frames:int=100, # at most this many frames, spread evenly over the history (first and last kept)
    fps:int=20, # frames per second
    panels=('fit',), # panels side by side
    dpi:int=100, # resolution
) -> FitAnimation:
    "A matplotlib `FuncAnimation` of the recorded fit (shown inline as jshtml in Jupyter); nothing is re-trained."
    return animation_of(_frames(self, frames, panels, dpi, 'animate'), fps)


def animation_of(fr:Frames, fps:int=20) -> FitAnimation:
    "A matplotlib `FuncAnimation` of `fr`: its figure, with `fr.draw` as the frame function."
    _check_fps(fps, '')
    FigureCanvasAgg(fr.fig)
    anim = FitAnimation(fr.fig, fr.draw, frames=len(fr), interval=1000 / fps, blit=False, repeat=True)
    anim.fps, anim.frames_obj = fps, fr
    return anim


# -- rendering ----------------------------------------------------------------------------------------------------
# A full `canvas.draw()` per frame (what `Animation.save` and `to_jshtml` do, twice per frame) re-renders every tick
# label and legend text. Here the static part is drawn once; per frame the background is restored and only the moving
# artists are drawn. Static artists that matplotlib draws *above* a moving one (e.g. a legend with the same zorder
# as the fitted line) are pre-rendered once on a transparent layer and composited on top, so the draw order, and
# hence the picture, is the one of a full draw.

def _draw_order(container) -> list:
    "The children of an Axes or Figure in the order its `draw` paints them (patch excluded)."
    kids = [a for a in container.get_children() if a is not container.patch]
    if isinstance(container, Axes):
        if not (container.axison and container._frameon): kids = [a for a in kids if a not in container.spines.values()]
        if not container.axison: kids = [a for a in kids if a not in container._axis_map.values()]
    return sorted(kids, key=attrgetter('zorder'))


def _overlaps(a, b, renderer) -> bool:
    try: ba, bb = a.get_window_extent(renderer), b.get_window_extent(renderer)
    except Exception: return True
    return ba.overlaps(bb)


def _plain(ax) -> bool:
    "Whether `ax` paints its children in zorder order (not so: 3D axes sort by depth; rasterized zorders)."
    return type(ax).draw is Axes.draw and ax.get_rasterization_zorder() is None


def _plan(fr:Frames, renderer, whole=()) -> tuple:
    """The per-frame draw sequence after the background: moving artists (or whole axes to redraw), and lists of static
    artists painted above them (to composite as layers), in matplotlib's draw order; and whether that order is sure
    to be matplotlib's. Axes in `whole` (their limits change), and axes that do not paint in zorder order (3D),
    are redrawn whole each frame."""
    moving = list(fr.artists)
    ids = {id(a) for a in moving}
    fig, seq, placed = fr.fig, [], set()
    top = _draw_order(fig)
    def above(cont):  # later figure-level artists (another panel, a suptitle) that overlap panel `cont`
        return [a for a in top[top.index(cont) + 1:] if id(a) not in ids and a.get_visible() and _overlaps(a, cont, renderer)]
    for cont in [c for c in top if isinstance(c, Axes)] + [fig]:
        kids = top if cont is fig else _draw_order(cont)
        own = [a for a in kids if id(a) in ids]
        if cont is not fig:
            inside = [a for a in moving if a.axes is cont]
            if inside and (cont in whole or not _plain(cont) or len(own) < len(inside)
                           or any(isinstance(a, AxesImage) for a in inside)):
                seq.append(cont)  # redrawn whole, its moving artists included
                placed |= {id(a) for a in inside}
                if run := above(cont): seq.append(run)
                continue
        if not own: continue
        run = []
        for a in kids[kids.index(own[0]):]:
            if id(a) in ids:
                if run: seq.append(run); run = []
                seq.append(a); placed.add(id(a))
            elif a.get_visible(): run.append(a)
        if cont is not fig: run += above(cont)
        if run: seq.append(run)
    # Moving artists nested deeper at figure level (inside a figure legend, say) are drawn last.
    seq += [a for a in moving if id(a) not in placed]
    return seq, len(placed) == len(moving)


class _Layer:
    "Static artists pre-rendered on a transparent canvas, cropped to what they cover, ready to composite."
    def __init__(self, canvas, artists):
        r = canvas.get_renderer()
        r.clear()
        for a in artists: a.draw(r)
        rgba = np.asarray(canvas.buffer_rgba())
        ys, xs = np.nonzero(rgba[..., 3])
        self.box = None
        if len(ys):
            self.box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            px = rgba[self.box].astype(np.float32)
            self.alpha = px[..., 3:] / 255
            self.premult = px[..., :3] * self.alpha
            self.keep = 1 - self.alpha

    def composite(self, buf):
        if self.box is None: return
        dst = buf[self.box][..., :3]
        dst[...] = (dst * self.keep + self.premult + .5).astype(np.uint8)


def frames_differ(a, b, tol:int=40) -> float:
    "Share of pixels of images `a` and `b` (H, W, >=3) that differ by more than `tol` (of 255) in any channel."
    a, b = np.asarray(a)[..., :3].astype(np.int16), np.asarray(b)[..., :3].astype(np.int16)
    if a.shape != b.shape: return 1.
    return float((np.abs(a - b) > tol).any(-1).mean())


def _limits(ax):
    lims = [ax.get_xlim(), ax.get_ylim()] + ([ax.get_zlim()] if hasattr(ax, 'get_zlim') else [])
    return tuple(map(tuple, lims))


def _moving_limits(fr) -> set:
    "The axes whose limits change over the frames (autoscaling to a moving artist, say)."
    first, out = [_limits(ax) for ax in fr.fig.axes], set()
    for k in range(1, len(fr)):
        fr.draw(k)
        out |= {ax for ax, lim in zip(fr.fig.axes, first) if _limits(ax) != lim}
    return out


def _full_frames(fr, canvas) -> list:
    out = []
    for k in range(len(fr)):
        fr.draw(k)
        canvas.draw()
        out.append(np.asarray(canvas.buffer_rgba()).copy())
    return out


def render_frames(fr:Frames, check:bool|None=None) -> list:
    """Every frame of `fr` as an (H, W, 4) uint8 RGBA array: the static part drawn once, then only the moving artists
    drawn. Axes whose limits change over the frames, and 3D axes, are redrawn whole each frame. If the last frame
    differs from matplotlib's full draw of it (checked when `check`; None: when the draw order is not sure), it warns
    and draws every frame in full instead: slower, never a wrong picture."""
    canvas = fr.fig.canvas if isinstance(fr.fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fr.fig)
    fr.draw(0)
    whole = _moving_limits(fr)
    fr.draw(0)
    seq, sure = _plan(fr, canvas.get_renderer(), whole)
    if check is None: check = not sure
    # what the background leaves out: moving artists, axes redrawn whole, static artists painted above them
    hidden = [a for x in seq for a in (x if isinstance(x, list) else [x])]
    was = [a.get_animated() for a in hidden]
    out, why = [], None
    for a in hidden: a.set_animated(True)
    try:
        canvas.draw()
        background = canvas.copy_from_bbox(fr.fig.bbox)
        steps = [_Layer(canvas, x) if isinstance(x, list) else x for x in seq]
        for k in range(len(fr)):
            fr.draw(k)
            canvas.restore_region(background)
            for s in steps:
                if isinstance(s, _Layer): s.composite(np.asarray(canvas.buffer_rgba()))
                else: fr.fig.draw_artist(s)
            out.append(np.asarray(canvas.buffer_rgba()).copy())
    finally:
        for a, w in zip(hidden, was): a.set_animated(w)
    if why is None and check:  # the last frame against matplotlib's full draw of it
        canvas.draw()
        if frames_differ(out[-1], np.asarray(canvas.buffer_rgba())) > 1e-3:
            why = "the blitted last frame differs from matplotlib's full draw of it"
    if why is None: return out
    warnings.warn(f"{why}: drawing every frame in full (slower)")
    return _full_frames(fr, canvas)


class _Grabber(AbstractMovieWriter):
    "A movie writer that keeps the RGBA frames matplotlib hands it (each one `savefig`, as PillowWriter does)."
    def setup(self, fig, outfile, dpi=None):
        super().setup(fig, outfile, dpi)
        self.frames = []
    def grab_frame(self, **savefig_kwargs):
        buf = io.BytesIO()
        self.fig.savefig(buf, format='png', dpi=self.dpi, **savefig_kwargs)
        self.frames.append(np.asarray(Image.open(buf).convert('RGBA')))
    def finish(self): pass


def mpl_frames(anim:FuncAnimation) -> list:
    "matplotlib's own frames of `anim` as RGBA arrays: `Animation.save`'s full redraw of each one (a reference)."
    grab = _Grabber(fps=1000 / anim._interval)
    anim.save('unused', writer=grab)
    return grab.frames


def exported_frames(fname, fps:float|None=None) -> list:
    "The RGB frames of an exported .gif or .html; a GIF frame is repeated `duration*fps` times (Pillow merges repeats)."
    path = Path(fname)
    if path.suffix.lower() == '.html':
        m = re.search(r'const frames = (\[.*?\]);', path.read_text(encoding='utf-8'), re.S)
        return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert('RGB')) for b in json.loads(m.group(1))]
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, 'n_frames', 1)):
            im.seek(i)
            n = 1 if fps is None else round(im.info['duration'] * fps / 1000)
            out += [np.asarray(im.convert('RGB'))] * n
    return out


# -- colours --------------------------------------------------------------------------------------------------------
def _packed(rgba) -> np.ndarray:
    "RGBA uint8 (H, W, 4) -> (H, W) uint32 0xBBGGRR."
    return np.ascontiguousarray(rgba).view(np.uint32)[..., 0] & 0xFFFFFF


def _artist_colours(artists) -> list:
    "The solid colours of moving artists (a line's colour must stay exact in a 256-colour GIF)."
    out = []
    for a in artists:
        for get in ('get_color', 'get_facecolor', 'get_edgecolor'):
            try: cs = to_rgba_array(getattr(a, get)())
            except Exception: continue
            out += [tuple(int(round(v * 255)) for v in c[:3]) for c in cs if c[3] == 1]
    return out


class Palette:
    """At most 255 colours shared by every frame (index 255 is kept for GIF transparency): the most common colours of
    the sampled frames and of the moving artists exactly, the rest by median cut. `index(rgba)` maps a frame."""
    def __init__(self, samples:list, exact:list=()):
        px = _packed(np.concatenate(samples))
        u, c = np.unique(px, return_counts=True)
        exact = [r | g << 8 | b << 16 for r, g, b in exact]
        if len(u) + len(exact) <= 255: cols = list(dict.fromkeys(exact + u.tolist()))
        else:
            top = u[np.argsort(-c, kind='stable')[:128]].tolist()
            cols = list(dict.fromkeys(exact + top))[:160]
            rgb = np.stack([u & 255, u >> 8 & 255, u >> 16 & 255], -1).astype(np.uint8)
            w = np.minimum(c, 64)  # weight of a colour in the median cut, capped so white does not take every slot
            im = Image.fromarray(np.repeat(rgb, w, 0)[None])
            mc = np.array(im.quantize(255 - len(cols), method=Image.Quantize.MEDIANCUT).getpalette()[:3 * (255 - len(cols))])
            mc = mc.reshape(-1, 3)
            cols = list(dict.fromkeys(cols + (mc[:, 0] | mc[:, 1] << 8 | mc[:, 2] << 16).tolist()))[:255]
        self.packed = np.array(cols, dtype=np.uint32)
        self.rgb = np.stack([self.packed & 255, self.packed >> 8 & 255, self.packed >> 16 & 255], -1).astype(np.uint8)
        self._lut = np.full(1 << 24, 0xFFFF, dtype=np.uint16)
        self._lut[self.packed] = np.arange(len(cols))

    def __len__(self): return len(self.packed)

    def _nearest(self, px):
        "Index of the nearest palette colour (RGB distance) for each packed colour in `px`."
        rgb = np.stack([px & 255, px >> 8 & 255, px >> 16 & 255], -1).astype(np.float32)
        p = self.rgb.astype(np.float32)
        return ((p * p).sum(1) - 2 * rgb @ p.T).argmin(1)  # |x-p|^2 without the |x|^2 common to a row

    def lookup(self, px) -> np.ndarray:
        "uint8 palette indices of packed colours `px` (any shape): the nearest colour, no dithering."
        idx = self._lut[px]
        miss = idx == 0xFFFF
        if miss.any():
            m = px[miss]
            new = np.unique(m)
            self._lut[new] = self._nearest(new)
            idx[miss] = self._lut[m]
        return idx.astype(np.uint8)

    def index(self, rgba) -> np.ndarray:
        "(H, W) uint8 palette indices of an RGBA frame."
        return self.lookup(_packed(rgba))

    def bytes(self, n=256, fill=(1, 2, 3)) -> bytes:
        "The palette as n RGB triples; unused entries get a colour not in it (GIF's transparent index stays distinct)."
        while (fill[0] | fill[1] << 8 | fill[2] << 16) in set(self.packed.tolist()): fill = (fill[0] + 1, *fill[1:])
        return self.rgb.tobytes() + bytes(fill) * (n - len(self))

    def image(self, idx) -> Image.Image:
        im = Image.fromarray(idx, 'P')
        im.putpalette(self.bytes())
        return im


def _indexed(fr:Frames, check=None):
    "Every frame as palette indices, and the shared `Palette` (built from four frames spread over the animation)."
    frames = render_frames(fr, check=check)
    n = len(frames)
    sample = [frames[i] for i in sorted({0, n // 3, 2 * n // 3, n - 1})]
    pal = Palette(sample, exact=_artist_colours(fr.artists))
    idxs, prev = [], None
    for f in frames:  # only the pixels that changed since the previous frame are looked up
        px = _packed(f)
        if prev is None: idx = pal.lookup(px)
        else:
            changed = px != prev
            idx = idxs[-1].copy()
            idx[changed] = pal.lookup(px[changed])
        idxs.append(idx)
        prev = px
    return idxs, pal, frames


# -- files ----------------------------------------------------------------------------------------------------------
def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def write_atomic(path, write):
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it to `path`: never a half-written file,
    no temporary file left on failure, and the permissions a new file gets (an existing file keeps its own)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=f'.tmp{path.suffix}', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _lzw_data(im:Image.Image) -> tuple:
    "The interlace flag and LZW image data (code size, sub-blocks, terminator) of palette image `im`, by Pillow."
    buf = io.BytesIO()
    im.save(buf, format='GIF', optimize=False, interlace=False)
    b = buf.getvalue()
    i = 13 + (3 << ((b[10] & 7) + 1) if b[10] & 0x80 else 0)
    while b[i] == 0x21:  # extensions: label, then sub-blocks until a zero length
        i += 2
        while b[i]: i += b[i] + 1
        i += 1
    if b[i] != 0x2C: raise RuntimeError('no image descriptor in the GIF Pillow wrote')
    flags = b[i + 9]
    i += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return flags & 0x40, b[i:-1]  # up to the trailer


def _delays(n, fps) -> list:
    "Per-frame delays in GIF's centiseconds, rounded so that the total time stays exact."
    t = np.round(np.arange(n + 1) * 100 / fps).astype(int)
    return np.diff(t).tolist()


def write_gif(fp, idxs:list, pal:Palette, fps:float):
    """Write palette-index frames as a looping GIF: one global palette; each frame stores only the box that changed,
    unchanged pixels in it transparent; identical frames are merged and their durations added (as Pillow does)."""
    h, w = idxs[0].shape
    T = 255
    out = [b'GIF89a', struct.pack('<HHBBB', w, h, 0xF7, 0, 0), pal.bytes(),
           b'!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00']  # loop forever
    delays, prev, chunks = _delays(len(idxs), fps), None, []
    for idx, d in zip(idxs, delays):
        if prev is None: box, sub, trans = (0, 0, w, h), idx, False
        else:
            diff = idx != prev
            rows, cols = np.nonzero(diff.any(1))[0], np.nonzero(diff.any(0))[0]
            if not len(rows): chunks[-1][0] += d; continue
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            sub = idx[y0:y1, x0:x1].copy()
            sub[~diff[y0:y1, x0:x1]] = T
            box, trans = (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), True
        chunks.append([d, box, trans, _lzw_data(pal.image(np.ascontiguousarray(sub)))])
        prev = idx
    for d, (x, y, bw, bh), trans, (interlace, data) in chunks:
        out += [b'!\xf9\x04', struct.pack('<BHBB', 0x04 | trans, d, T, 0),
                b',', struct.pack('<HHHHB', x, y, bw, bh, interlace), data]
    out.append(b';')
    fp.write(b''.join(out))


def _check_fps(fps, suffix):
    if not fps > 0: raise ValueError(f"fps must be > 0, got {fps!r}")
    if suffix == '.gif' and fps > 50:
        raise ValueError(f"fps={fps!r} is too fast for a GIF (frame delays are whole hundredths of a second, and viewers "
                         f"slow down delays under 0.02 s): use fps <= 50, or save .mp4/.html")


def _write_gif(fr, path, fps):
    idxs, pal, _ = _indexed(fr)
    def write(tmp):
        with open(tmp, 'wb') as f: write_gif(f, idxs, pal, fps)
    return write_atomic(path, write)


def _write_png(fr, path, fps):
    "The last frame, drawn in full by matplotlib."
    canvas = FigureCanvasAgg(fr.fig)
    fr.draw(len(fr) - 1)
    canvas.draw()
    im = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return write_atomic(path, lambda tmp: im.save(tmp, format='PNG'))


_FFMPEG_MISSING = ("saving {name!r} as .mp4 needs the optional extra fastfit[mp4] (imageio-ffmpeg, whose wheel ships "
                   "ffmpeg): pip install 'fastfit[mp4]'; or save .gif or .html, which need nothing more")


def _imageio_ffmpeg(name):
    try:
        import imageio_ffmpeg
    except ImportError as e: raise ImportError(_FFMPEG_MISSING.format(name=str(name))) from e
    return imageio_ffmpeg


def _write_mp4(fr, path, fps):
    iio = _imageio_ffmpeg(path)
    frames = render_frames(fr)
    h, w = frames[0].shape[:2]
    ph, pw = h + h % 2, w + w % 2  # H.264 in yuv420p needs even sizes: pad by repeating the last row/column
    def rgb(f): return np.ascontiguousarray(np.pad(f[..., :3], ((0, ph - h), (0, pw - w), (0, 0)), mode='edge'))
    def write(tmp):
        wr = iio.write_frames(tmp, (pw, ph), fps=fps, codec='libx264', pix_fmt_in='rgb24', pix_fmt_out='yuv420p',
                              quality=8, macro_block_size=1, ffmpeg_log_level='error', output_params=['-f', 'mp4'])
        wr.send(None)
        try:
            for f in frames: wr.send(rgb(f))
        finally: wr.close()
    return write_atomic(path, write)


# -- HTML player ----------------------------------------------------------------------------------------------------
_PLAYER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<style>
body{{font-family:system-ui,sans-serif;margin:1em}} .ff-player{{display:inline-block}}
.ff-player img{{max-width:100%;display:block}}
.ff-controls{{display:flex;gap:.3em;align-items:center;margin-top:.4em}}
.ff-controls button{{min-width:2.4em;height:2em;display:flex;align-items:center;justify-content:center}}
.ff-controls input[type=range]{{flex:1;min-width:8em}}
.ff-note{{color:#555;font-size:.85em}}
</style></head><body>
<div class="ff-player">
<img id="ff-img" alt="{title}" src="data:image/png;base64,{first}">
<div class="ff-controls">
<button id="ff-first" title="first frame" aria-label="first frame">{i_first}</button>
<button id="ff-prev" title="previous frame" aria-label="previous frame">{i_prev}</button>
<button id="ff-play" title="play / pause (space)" aria-label="play / pause">{i_play}</button>
<button id="ff-next" title="next frame" aria-label="next frame">{i_next}</button>
<button id="ff-last" title="last frame" aria-label="last frame">{i_last}</button>
<input id="ff-slider" type="range" min="0" max="{last}" value="0" aria-label="frame">
<span id="ff-label">1/{n}</span>
<label title="start again at the end"><input id="ff-loop" type="checkbox" checked> loop</label>
</div>{note}</div>
<script>
(function(){{
const frames = {frames};
const img = document.getElementById('ff-img'), slider = document.getElementById('ff-slider'),
      label = document.getElementById('ff-label'), loop = document.getElementById('ff-loop');
let i = 0, timer = null;
function show(k){{ i = (k + frames.length) % frames.length; img.src = 'data:image/png;base64,' + frames[i];
  slider.value = i; label.textContent = (i + 1) + '/' + frames.length; }}
function pause(){{ if (timer) {{ clearInterval(timer); timer = null; }} }}
function tick(){{ if (i == frames.length - 1 && !loop.checked) pause(); else show(i + 1); }}
function play(){{ if (!timer) {{ if (i == frames.length - 1 && !loop.checked) show(0);
  timer = setInterval(tick, {interval}); }} }}
document.getElementById('ff-play').onclick = () => timer ? pause() : play();
document.getElementById('ff-first').onclick = () => {{ pause(); show(0); }};
document.getElementById('ff-last').onclick = () => {{ pause(); show(frames.length - 1); }};
document.getElementById('ff-prev').onclick = () => {{ pause(); show(i - 1); }};
document.getElementById('ff-next').onclick = () => {{ pause(); show(i + 1); }};
slider.oninput = () => {{ pause(); show(+slider.value); }};
document.addEventListener('keydown', e => {{
  if (e.key == ' ') {{ e.preventDefault(); timer ? pause() : play(); }}
  else if (e.key == 'ArrowRight') {{ pause(); show(i + 1); }} else if (e.key == 'ArrowLeft') {{ pause(); show(i - 1); }} }});
show(0);
}})();
</script></body></html>
"""


# Inline SVG icons: no icon font to fetch (matplotlib's jshtml loads Font Awesome from a CDN), none to lack.
_ICONS = dict(first='M3 3h2v10H3zM13 3v10L6 8z', prev='M11 3v10L4 8z',
              play='M2 3v10l6-5zM10 3h2v10h-2zM13 3h2v10h-2z',
              next='M5 3v10l7-5z', last='M3 3v10l7-5zM11 3h2v10h-2z')
_ICONS = {f"i_{k}": f'<svg viewBox="0 0 16 16" width="16" height="16" fill="currentColor" aria-hidden="true">'
                   f'<path d="{d}"/></svg>'
          for k, d in _ICONS.items()}


def _png_b64(im, level=3) -> str:
    buf = io.BytesIO()
    im.save(buf, format='PNG', compress_level=level)
    return base64.b64encode(buf.getvalue()).decode('ascii')


def html_page(b64:list, fps, title='fastfit animation', note='') -> str:
    "A self-contained page (it makes no network request) playing base64 PNG frames with play/pause/step/slider."
    # Frames are JSON strings of base64: no characters that could close the script element.
    frames = '[' + ','.join(f'"{b}"' for b in b64) + ']'
    note = f'\n<p class="ff-note">{note}</p>' if note else ''
    return _PLAYER.format(title=title, frames=frames, first=b64[0], n=len(b64), last=len(b64) - 1,
                          interval=round(1000 / fps), note=note, **_ICONS)


def _thin(sizes, limit) -> np.ndarray:
    "Indices of every s-th frame (the last kept), with the smallest s whose frames total at most `limit` bytes."
    n = len(sizes)
    for s in range(1, n + 1):
        keep = np.unique(np.r_[np.arange(0, n, s), n - 1])
        if sizes[keep].sum() <= limit or len(keep) <= 2: return keep
    return np.array([0, n - 1])


def player_page(fr:Frames, fps, name='animation') -> str:
    "The self-contained player page of `fr`, thinned (with a warning) to stay under `animation.embed_limit`."
    idxs, pal, _ = _indexed(fr)
    b64 = [_png_b64(pal.image(i)) for i in idxs]
    limit_mb = mpl.rcParams['animation.embed_limit']
    room = limit_mb * 2 ** 20 - len(html_page(b64[:1], fps, note=' ' * 300)) - len(b64[0])
    keep = _thin(np.array([len(b) + 3 for b in b64]), room)
    note = ''
    if len(keep) < len(b64):
        note = (f"Showing {len(keep)} of {len(b64)} frames (one in {keep[1] - keep[0]}) to stay under matplotlib's "
                f"animation.embed_limit of {limit_mb:g} MB; raise it to keep every frame.")
        warnings.warn(f"{name}: {note}")
    return html_page([b64[i] for i in keep], fps * len(keep) / len(b64), note=note)


def _write_html(fr, path, fps):
    page = player_page(fr, fps, Path(path).name)
    return write_atomic(path, lambda tmp: Path(tmp).write_text(page, encoding='utf-8'))


WRITERS = {'.gif': _write_gif, '.html': _write_html, '.mp4': _write_mp4, '.png': _write_png}

def _writer(fname):
    "The writer for `fname`'s suffix, or an error listing the known ones (.mp4: an error naming the missing extra)."
    suffix = Path(fname).suffix.lower()
    if suffix not in WRITERS:
        raise ValueError(f"unknown file suffix {suffix!r} in {str(fname)!r}: use one of {', '.join(WRITERS)}")
    if suffix == '.mp4': _imageio_ffmpeg(fname)
    return WRITERS[suffix]


@patch
def save_animation(self:Learner,
    fname, # output file: .gif, .html (self-contained player), .mp4 (needs fastfit[mp4]) or .png (the last frame)
    frames:int=100, # at most this many frames, spread evenly over the history
    fps:int=20, # frames per second
    panels=('fit',), # panels side by side
    dpi:int=80, # resolution (80: 512x384 per panel)
) -> Path:
    "Write the animation of the recorded fit to `fname` (atomically) and return its path."
    write = check_export(fname, fps)  # a bad suffix or fps fails before any drawing
    return write(_frames(self, frames, panels, dpi, 'save_animation'), Path(fname), fps)


def check_export(fname, fps):
    "The writer for `fname` at `fps`, or a clear error (unknown suffix, missing mp4 extra, bad fps)."
    writer = _writer(fname)
    _check_fps(fps, Path(fname).suffix.lower())
    return writer


def export(fr:Frames, fname, fps:int=20) -> Path:
    "Write the frames of `fr` to `fname` (.gif, .html, .mp4 or .png, atomically) and return its path."
    return check_export(fname, fps)(fr, Path(fname), fps)


class AnimateFit(Callback):
    "Save the animation of the fit to `fname` when the fit ends."
    order = 60
    def __init__(self, fname, frames:int=100, fps:int=20, panels=('fit',), dpi:int=80):
        self.fname, self.n_frames, self.fps, self.panels, self.dpi = fname, frames, fps, panels, dpi
        check_export(fname, fps)

    def after_fit(self):
        if getattr(self.learn, 'fit_error', None) is not None: return  # a fit cut short (Ctrl-C, an error): no file
        # `saved`, not `path`: a callback attribute named like a Learner's one makes fastai warn about shadowing
        self.saved = self.learn.save_animation(self.fname, frames=self.n_frames, fps=self.fps, panels=self.panels, dpi=self.dpi)

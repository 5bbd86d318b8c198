"Animations from the recorded history: `learn.animate` (a FuncAnimation), `learn.save_animation`, `AnimateFit`."
from __future__ import annotations

import base64
import io
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib as mpl
import numpy as np
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastcore.basics import patch
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from .plots import Frames, Records, require_history

__all__ = ['FitAnimation', 'render_frames', 'write_atomic', 'WRITERS', 'AnimateFit']


class FitAnimation(FuncAnimation):
    "A matplotlib `FuncAnimation` that shows itself inline in Jupyter as an interactive (jshtml) player."
    def _repr_html_(self): return self.to_jshtml()


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
    fr = _frames(self, frames, panels, dpi, 'animate')
    FigureCanvasAgg(fr.fig)
    anim = FitAnimation(fr.fig, fr.draw, frames=len(fr), interval=1000 / fps, blit=False, repeat=True)
    anim.fps = fps
    return anim


def render_frames(fr:Frames):
    "Yield each frame as an (H, W, 3) uint8 array: the static part drawn once, then only the moving artists blitted."
    canvas = FigureCanvasAgg(fr.fig)
    for a in fr.artists: a.set_animated(True)
    try:
        canvas.draw()
        background = canvas.copy_from_bbox(fr.fig.bbox)
        for k in range(len(fr)):
            canvas.restore_region(background)
            for a in fr.draw(k): fr.fig.draw_artist(a)
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        for a in fr.artists: a.set_animated(False)


def write_atomic(path, write):
    "Call `write(tmp_path)` on a temporary file beside `path`, then rename it to `path`: never a half-written file."
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _palette(images):
    "One 256-colour palette for every frame, from a mosaic of the given frames."
    return Image.fromarray(np.concatenate(images)).quantize(256, method=Image.Quantize.MEDIANCUT)


def _quantized(fr):
    "Every frame as a palette image sharing one palette (first and last frame build it)."
    frames = render_frames(fr)
    first = next(frames)
    rest = list(frames)
    pal = _palette([first] + rest[-1:])
    return [Image.fromarray(f).quantize(palette=pal, dither=Image.Dither.NONE) for f in [first] + rest]


def _write_gif(fr, path, fps):
    ims = _quantized(fr)
    def write(tmp):
        ims[0].save(tmp, format='GIF', save_all=True, append_images=ims[1:], duration=round(1000 / fps), loop=0)
    return write_atomic(path, write)


def _write_png(fr, path, fps):
    *_, last = render_frames(fr)
    return write_atomic(path, lambda tmp: Image.fromarray(last).save(tmp, format='PNG'))


_PLAYER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1em}} .ff-player img{{max-width:100%;display:block}}
.ff-controls{{display:flex;gap:.3em;align-items:center;margin-top:.4em}}
.ff-controls button{{font-size:1.1em;min-width:2.2em}} .ff-controls input[type=range]{{flex:1}}
</style></head><body>
<div class="ff-player">
<img id="ff-img" alt="{title}" src="">
<div class="ff-controls">
<button id="ff-first" title="first frame">&#x23EE;</button><button id="ff-prev" title="previous frame">&#x25C0;</button>
<button id="ff-play" title="play / pause">&#x23EF;</button><button id="ff-next" title="next frame">&#x25B6;</button>
<button id="ff-last" title="last frame">&#x23ED;</button>
<input id="ff-slider" type="range" min="0" max="{last}" value="0" aria-label="frame">
<span id="ff-label">1/{n}</span>
</div></div>
<script>
(function(){{
const frames = {frames};
const img = document.getElementById('ff-img'), slider = document.getElementById('ff-slider'),
      label = document.getElementById('ff-label');
let i = 0, timer = null;
function show(k){{ i = (k + frames.length) % frames.length; img.src = 'data:image/png;base64,' + frames[i];
  slider.value = i; label.textContent = (i + 1) + '/' + frames.length; }}
function pause(){{ if (timer) {{ clearInterval(timer); timer = null; }} }}
function play(){{ if (!timer) timer = setInterval(() => show(i + 1), {interval}); }}
document.getElementById('ff-play').onclick = () => timer ? pause() : play();
document.getElementById('ff-first').onclick = () => {{ pause(); show(0); }};
document.getElementById('ff-last').onclick = () => {{ pause(); show(frames.length - 1); }};
document.getElementById('ff-prev').onclick = () => {{ pause(); show(i - 1); }};
document.getElementById('ff-next').onclick = () => {{ pause(); show(i + 1); }};
slider.oninput = () => {{ pause(); show(+slider.value); }};
show(0);
}})();
</script></body></html>
"""


def _png_b64(im) -> str:
    buf = io.BytesIO()
    im.save(buf, format='PNG')
    return base64.b64encode(buf.getvalue()).decode('ascii')


def html_page(ims, fps, title='fastfit animation') -> str:
    "A self-contained page (no network request) playing `ims` with play/pause/step/slider controls."
    # Frames are JSON strings of base64: no characters that could close the script element.
    frames = '[' + ','.join(f'"{_png_b64(im)}"' for im in ims) + ']'
    return _PLAYER.format(title=title, frames=frames, n=len(ims), last=len(ims) - 1, interval=round(1000 / fps))


def _write_html(fr, path, fps):
    ims = _quantized(fr)
    limit = mpl.rcParams['animation.embed_limit'] * 2 ** 20
    page = html_page(ims, fps)
    while len(page) > limit and len(ims) > 2:
        keep = np.unique(np.r_[np.arange(0, len(ims), 2), len(ims) - 1])
        ims = [ims[i] for i in keep]
        page = html_page(ims, fps)
        warnings.warn(f"{Path(path).name}: thinned to {len(ims)} frames to stay under matplotlib's "
                      f"animation.embed_limit ({mpl.rcParams['animation.embed_limit']:g} MB); raise it to keep more")
    return write_atomic(path, lambda tmp: Path(tmp).write_text(page, encoding='utf-8'))


WRITERS = {'.gif': _write_gif, '.html': _write_html, '.png': _write_png}

def _writer(fname):
    "The writer for `fname`'s suffix, or an error listing the known ones."
    suffix = Path(fname).suffix.lower()
    if suffix not in WRITERS:
        raise ValueError(f"unknown file suffix {suffix!r} in {str(fname)!r}: use one of {', '.join(WRITERS)}")
    return WRITERS[suffix]


@patch
def save_animation(self:Learner,
    fname, # output file: .gif, .html (self-contained player) or .png (the last frame)
    frames:int=100, # at most this many frames, spread evenly over the history
    fps:int=20, # frames per second
    panels=('fit',), # panels side by side
    dpi:int=80, # resolution (80: 512x384 per panel)
) -> Path:
    "Write the animation of the recorded fit to `fname` (atomically) and return its path."
    path, writer = Path(fname), _writer(fname)
    if fps <= 0: raise ValueError(f"fps must be > 0, got {fps!r}")
    fr = _frames(self, frames, panels, dpi, 'save_animation')
    return writer(fr, path, fps)


class AnimateFit(Callback):
    "Save the animation of the fit to `fname` when the fit ends."
    order = 60
    def __init__(self, fname, frames:int=100, fps:int=20, panels=('fit',), dpi:int=80):
        self.fname, self.n_frames, self.fps, self.panels, self.dpi = fname, frames, fps, panels, dpi
        _writer(fname)

    def after_fit(self):
        self.saved = self.learn.save_animation(self.fname, frames=self.n_frames, fps=self.fps, panels=self.panels, dpi=self.dpi)

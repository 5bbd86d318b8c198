"""The picture while it happens: `LivePicture` redraws a figure of panels for a state given now (not a recorded frame),
and `LiveView` shows one in a notebook output, updated in place while `fit` runs. The panels and the renderer are
the animations' own: the still part is drawn once, per update only the moving artists."""
from __future__ import annotations

import base64
import io
import time

import numpy as np
from fastai.callback.core import Callback
from PIL import Image

from .panels import Frames, LossPanel
from .panels.frames import panel_makers
from .records import Records, _finite_records
from .render import Renderer

__all__ = ['LiveView', 'LivePicture', 'in_notebook']


def in_notebook() -> bool:
    "Whether code runs in a Jupyter kernel, where a display shows in a notebook (not a script, a terminal or IPython's shell)."
    try:
        from IPython import get_ipython
    except ImportError: return False
    ip = get_ipython()
    return ip is not None and getattr(ip, 'kernel', None) is not None


def png_of(rgba:np.ndarray) -> bytes:
    "An RGBA frame as PNG bytes (RGB, fast compression: a live update is replaced a moment later)."
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(buf, format='PNG', compress_level=1)
    return buf.getvalue()


class LivePicture:
    """A figure of `panels` for `learn` that redraws itself for new `Records` (a state given now, e.g. the latest record
    of a running fit, or parameters set by hand): the still part is drawn once, at the first state; each `draw(recs)`
    renews what the panels draw from (`panel.renew(recs)` where a panel has it, else the panel made again for `recs`
    keeping the artists its `setup` made) and blits only the moving artists."""
    def __init__(self, learn, recs:Records, panels=('fit',), dpi:float=100, prepare=None, **frames_kwargs):
        self.learn = learn
        self.fr = Frames(learn, recs, panels=panels, dpi=dpi, **frames_kwargs)
        # what each panel's `setup` made (its artists, the axes it drew on), kept when the panel is made again
        self._kept = [None if callable(getattr(p, 'renew', None)) else set(p.__dict__) - set(self._made(p, recs).__dict__)
                      for p in self.fr.panels]
        if prepare is not None: prepare(self.fr)  # e.g. axis limits for what is still to come, before the still part is drawn
        self.renderer = Renderer(self.fr)
        self.updates = 0

    @staticmethod
    def _made(p, recs):
        "A new panel of `p`'s kind for `recs` (its learners and labels), not set up."
        q = object.__new__(type(p))
        type(p).__init__(q, p.learns if p.multi else p.learn, recs, labels=p.labels)
        return q

    def renew(self, recs:Records):
        "Point every panel at `recs` (one frame: the state to draw now)."
        fr = self.fr
        for i, p in enumerate(fr.panels):
            if callable(getattr(p, 'renew', None)): p.renew(recs); continue
            q = self._made(p, recs)
            for k in self._kept[i]: q.__dict__[k] = p.__dict__[k]
            fr.panels[i] = q
        fr.recs, fr.recss = recs, [recs]

    def draw(self, recs:Records|None=None) -> np.ndarray:
        "The figure for `recs` (default: the state it holds) as an (H, W, 4) RGBA view, valid until the next call."
        if recs is not None: self.renew(recs)
        self.updates += 1
        return self.renderer.frame(len(self.fr) - 1)

    def png(self, recs:Records|None=None) -> bytes:
        "The figure for `recs` as PNG bytes."
        return png_of(self.draw(recs))

    def close(self): self.renderer.close()


def _bundle(png:bytes, what:str) -> dict:
    return {'image/png': base64.b64encode(png).decode(), 'text/plain': what}


class LiveView(Callback):
    """Shows the fit while it runs: one notebook output, replaced in place (never cleared first) by the picture of the
    latest step, drawn by the panels and renderer of `animate`. Updates are throttled by time (at most `max_fps` a
    second, and drawing takes at most `share` of the fit's time), and the last step is always drawn, also when an
    error or an interrupt cuts the fit short. Outside a notebook (a script, a terminal) it draws nothing and costs
    nothing. `learn.fit(200, cbs=LiveView(panels=('fit', 'loss')))`."""
    order = 65  # after ParamHistory (55) has recorded the step, and after the progress bar (60)
    after_fit_on_error = True  # RegLearner runs our after_fit when an error cuts a fit short: the last frame is drawn then
    __setattr__ = object.__setattr__  # plain sets: fastai's `Callback.__setattr__` looks each name up on the learner

    def __init__(self,
        panels=('fit', 'loss'), # names from `PANELS` ('fit', 'surface', 'loss', ...) or `Panel` subclasses
        max_fps:float=10, # at most this many updates a second
        share:float=.2, # and at most this share of the fit's time spent drawing (a fast fit is not slowed)
        dpi:float=100, # resolution
        replay:bool=False, # at the end, replace the last frame by the player over the whole run (`learn.animate()`)
        frames:int=100, # frames of that replay
        show:bool|None=None, # draw (True), or not (False); None: only in a notebook
    ):
        if not (isinstance(max_fps, (int, float)) and max_fps > 0):
            raise ValueError(f"max_fps must be a number > 0 (updates a second), got {max_fps!r}: e.g. max_fps=10")
        if not (isinstance(share, (int, float)) and 0 < share <= 1):
            raise ValueError(f"share must be a number in (0, 1] (the share of the fit's time spent drawing), got {share!r}: e.g. share=.2")
        self.panels, self.max_fps, self.share, self.dpi, self.replay, self.frames, self.show = \
            panels, float(max_fps), float(share), dpi, replay, frames, show
        self.pic = self.handle = None
        self.updates, self.shown_step, self.draw_time, self.first_time = 0, None, 0., 0.

    def before_fit(self):
        self.active = in_notebook() if self.show is None else bool(self.show)
        self.run_train = self.active  # fastai's dispatch skips our per-step event at no cost when off
        if not self.active: return
        panel_makers(self.panels, [self.learn])  # an unknown or unfitting panel fails before any step
        h = getattr(self.learn, 'param_history', None)
        done = getattr(h, 'step', 0) or 0
        self.planned = done + self.learn.n_epoch * len(self.learn.dls.train)  # the loss axis spans the whole fit
        self.pic, self.handle, self.updates, self.draw_time = None, None, 0, 0.
        self.next_t = 0.  # the first step's update shows the start (record 0, whose loss that step computed)
        self.t0 = time.perf_counter()

    def after_step(self):
        # at most max_fps a second, and the drawing so far (the still part included) at most `share` of the time so far
        now = time.perf_counter()
        if now >= self.next_t and (self.updates == 0 or self.draw_time <= self.share * (now - self.t0)): self._update()

    def after_fit(self):
        if not getattr(self, 'active', False): return
        self.active = self.run_train = False
        try:
            if self._records() is not None: self._update()  # the last step, whatever ended the fit
        finally:
            if self.replay and getattr(self.learn, 'fit_error', None) is None and self.handle is not None: self._replay()
            if self.pic is not None: self.pic.close()
            self.pic = None

    def _records(self) -> Records|None:
        "The state to draw: the history's latest record with a loss (None before one), or the model as it is without history."
        h = getattr(self.learn, 'param_history', None)
        if h is None: return Records.current(self.learn)
        return Records.from_history(h, 1) if len(_finite_records(h)) else None

    def _update(self):
        t0 = time.perf_counter()
        recs = self._records()
        if recs is None: return
        if self.pic is None:
            self.pic = LivePicture(self.learn, recs, self.panels, self.dpi, prepare=self._span_loss_axes)
            png = self.pic.png()
        else: png = self.pic.png(recs)
        step = recs.steps[0]
        self.shown_step = None if step is None else int(step)
        what = f"<LiveView: step {self.shown_step} of {self.planned}>"
        if self.handle is None:
            from IPython.display import display
            self.handle = display(_bundle(png, what), raw=True, display_id=True)
        else: self.handle.update(_bundle(png, what), raw=True)
        self.updates += 1
        t1 = time.perf_counter()
        self.draw_time += t1 - t0
        if self.updates == 1: self.first_time = t1 - t0  # the first picture draws the still part too
        self.next_t = t1 + 1 / self.max_fps

    def _span_loss_axes(self, fr):
        "Loss panels span the whole planned fit (their curve grows into the axes), not the steps taken so far."
        spanned = [p.ax for p in fr.panels if isinstance(p, LossPanel) and getattr(p, 'ax', None) is not None and p.xsteps is None]
        for ax in spanned: ax.set_xlim(0, max(self.planned, 1))
        if spanned: fr.fig.tight_layout()  # laid out for the tick labels it will show

    def _replay(self):
        "The player over the whole run in place of the last frame (the GIF in this output, its script below)."
        from IPython.display import display
        anim = self.learn.animate(frames=self.frames, panels=self.panels, dpi=self.dpi)
        outs = anim.outputs()
        self.handle.update(outs[0], raw=True)
        for o in outs[1:]: display(o, raw=True)

    def __repr__(self): return f"LiveView(panels={self.panels!r}, max_fps={self.max_fps:g})"

"""Frames to pixels. The still part of a figure is drawn once; per frame the background is restored and only the moving
artists are drawn (blitted), their text pasted from cached glyphs (`glyphs`), their lines and scatters by matplotlib's own
Agg calls replayed with new data (`lines`). Pixels are matplotlib's own (a full redraw's)."""
from __future__ import annotations

import io
import math
import time
import warnings
from contextlib import contextmanager
from enum import Enum
from operator import attrgetter

import numpy as np
from matplotlib.animation import AbstractMovieWriter, FuncAnimation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection, LineCollection, PathCollection, QuadMesh
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.offsetbox import OffsetBox
from matplotlib.patches import BoxStyle, Patch
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Affine2DBase
from PIL import Image

from .glyphs import GlyphText
from .lines import LinePainter, affine_of
from .panels.layout import ticks_placed_once

__all__ = ['Renderer', 'render_frames', 'frames_differ', 'mpl_frames']

# The memory budget of a frame: the renderer holds a few copies of it (canvas, background, the GIF's previous frame
# and indices), so 2**24 pixels (16.8 M; 64 MiB as RGBA) keep an export under ~1 GB whatever the number of frames.
MAX_PIXELS = 1 << 24
MIN_DPI = 10  # FreeType refuses fonts under ~1 pixel (dpi 3 at 10 pt); under 10 dpi nothing is readable anyway


def check_dpi(dpi, size) -> float:
    "`dpi` if frames of a figure of `size` inches fit the memory budget, else an error giving the dpi that would."
    w, h = size
    top = math.floor(math.sqrt(MAX_PIXELS / (w * h)))
    if not MIN_DPI <= dpi <= top:
        px = f"{round(w * dpi)}x{round(h * dpi)}-pixel frames" if dpi > 0 else "no pixels"
        mib = 4 * w * h * dpi * dpi / 2 ** 20
        why = (f"{px} ({mib:,.0f} MiB each as RGBA), more than the {MAX_PIXELS / 1e6:.1f} million pixels "
               f"({4 * MAX_PIXELS >> 20} MiB) a frame may have to keep memory bounded") if dpi > top else \
              f"{px}: text and lines need at least {MIN_DPI} dpi"
        raise ValueError(f"dpi={dpi:g} makes {why}: use {MIN_DPI} <= dpi <= {top} for this figure "
                         f"({w:g}x{h:g} inches), e.g. dpi=80 ({round(w * 80)}x{round(h * 80)} pixels)")
    return dpi

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


def _extents(renderer):
    """Whether two artists overlap on the canvas (True if either cannot say where it is), each measured once: a figure's
    legend is laid out anew each time it is measured (~0.5 ms), and it is compared with every panel."""
    kept = {}
    def extent(a):
        if id(a) not in kept:
            try: kept[id(a)] = a.get_window_extent(renderer)
            except Exception: kept[id(a)] = None
        return kept[id(a)]
    def overlaps(a, b) -> bool:
        ba, bb = extent(a), extent(b)
        return ba is None or bb is None or ba.overlaps(bb)
    return overlaps


def _plain(ax) -> bool:
    "Whether `ax` paints its children in zorder order (not so: 3D axes sort by depth; rasterized zorders)."
    return type(ax).draw is Axes.draw and ax.get_rasterization_zorder() is None


def _plan(fig, moving, renderer, whole=()) -> tuple:
    """The per-frame draw sequence after the background: moving artists (or whole axes to redraw), and lists of static
    artists painted above them (to composite as layers), in matplotlib's draw order; and whether that order is sure
    to be matplotlib's. Axes in `whole` (their limits change), and axes that do not paint in zorder order (3D),
    are redrawn whole each frame."""
    ids = {id(a) for a in moving}
    seq, placed = [], set()
    top, overlaps = _draw_order(fig), _extents(renderer)
    def above(cont):  # later figure-level artists (another panel, a suptitle) that overlap panel `cont`
        return [a for a in top[top.index(cont) + 1:] if id(a) not in ids and a.get_visible() and overlaps(a, cont)]
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


@contextmanager
def _ticks_once_a_draw(fig):
    """Meanwhile each 2D axes of `fig`, and each of their axis drawn alone (in a layer above a moving artist), places
    its ticks once a draw (`ticks_placed_once`): a 2D axes sets its limits and aspect first, then nothing moves while it
    draws (its title, tick labels and axis labels each placed the ticks)."""
    def once(draw, axes):
        def drawn(renderer):
            with ticks_placed_once(axes): return draw(renderer)
        return drawn
    axs = [a for a in fig.axes if type(a).draw is Axes.draw]
    parts = [(a, list(a._axis_map.values())) for a in axs] + [(x, [x]) for a in axs for x in a._axis_map.values()]
    parts = [(a, axes) for a, axes in parts if 'draw' not in vars(a)]
    for a, axes in parts: a.draw = once(a.draw, axes)
    try: yield
    finally:
        for a, _ in parts: del a.draw


# matplotlib's private names `_legends_laid_out_once` relies on (tests/test_render.py checks them); without one, a
# legend is laid out as matplotlib does
LEGENDS_RELY_ON = ['Legend._legend_box', 'OffsetBox._get_bbox_and_child_offsets']


def _boxes(box) -> list:
    "`box` (an `OffsetBox`) and every offset box inside it."
    return [box] + [b for c in box.get_children() if isinstance(c, OffsetBox) for b in _boxes(c)]


@contextmanager
def _legends_laid_out_once(fig):
    """Meanwhile each box of the legends of `fig` and its axes lays out its children once per renderer: drawing a legend
    lays out its box to place it, then again to draw it, and each box inside anew for every box around it (~1 ms a
    legend), the same each time while nothing in it changes."""
    def once(lay_out):
        kept = {}
        def laid_out(renderer):
            if id(renderer) not in kept: kept[id(renderer)] = lay_out(renderer)
            return kept[id(renderer)]
        return laid_out
    own = OffsetBox.__dict__.get('_get_bbox_and_child_offsets')
    tops = [getattr(leg, '_legend_box', None) for leg in [*fig.legends, *(a.get_legend() for a in fig.axes)]]
    boxes = [b for top in tops if isinstance(top, OffsetBox) for b in _boxes(top)  # (a box that lays out children)
             if own is not None and type(b)._get_bbox_and_child_offsets is not own
             and '_get_bbox_and_child_offsets' not in vars(b)]
    for b in boxes: b._get_bbox_and_child_offsets = once(b._get_bbox_and_child_offsets)
    try: yield
    finally:
        for b in boxes: del b._get_bbox_and_child_offsets


class _Layer:
    "Static artists pre-rendered on a transparent canvas, kept as the pixels they cover, ready to composite."
    def __init__(self, canvas, artists, background):
        self.artists = artists
        r = canvas.get_renderer()
        r.clear()
        for a in artists: a.draw(r)
        rgba = np.asarray(canvas.buffer_rgba())
        # one scan of the frame, a pixel as one number (alpha its top byte, as `gif._packed` reads them; ~10x faster
        # than the alpha bytes' strided view): rows and columns come from the indices
        painted = np.flatnonzero(rgba.reshape(-1).view(np.uint32) > 0xFFFFFF)
        ys, xs = np.divmod(painted, rgba.shape[1])
        self.box = np.s_[ys[0]:ys[-1] + 1, xs.min():xs.max() + 1] if len(ys) else None
        self.area = None if self.box is None else (int(ys[0]), int(ys[-1]) + 1, int(xs.min()), int(xs.max()) + 1)
        if self.box is None: return
        px = rgba[self.box]
        # A legend fills its box: composite the box. Markers and text far apart do not: composite their pixels only.
        self.at = None if len(ys) > px.shape[0] * px.shape[1] // 2 else painted
        if self.at is not None:  # its opaque pixels replace what is under them ("over" with a = 255 gives the source)
            flat = rgba.reshape(-1, 4)
            opaque = flat[self.at, 3] == 255
            self.solid, self.at = self.at[opaque], self.at[~opaque]
            self.solid_rgb = np.ascontiguousarray(flat[self.solid]).view(np.uint32)[:, 0] & 0xFFFFFF
        px = (px if self.at is None else rgba.reshape(-1, 4)[self.at]).astype(np.uint16)
        # "over" in integers: (dst * (255 - a) + src * a) / 255, at most 255 * 255, so uint16 holds it
        self.keep, self.premult = 255 - px[..., 3:], px[..., :3] * px[..., 3:] + 127
        # most frames leave what is under the layer as the background has it: then paste the result, made once
        if self.at is None:
            self.under = background[self.box].copy()
            self.over = self.under.copy()
            self._blend(self.over)
        else:
            under = background.reshape(-1, 4)[self.at]
            self.under = under.view(np.uint32)[:, 0].copy()
            self._blend(under)
            self.over = under.view(np.uint32)[:, 0].copy()
        # the layers after it overlap it (a twin axes' spines on its host's): they find it under them, not the background
        self.composite(background)

    def _blend(self, dst):
        dst[..., :3] = (dst[..., :3] * self.keep + self.premult) // 255

    def composite(self, buf):
        if self.box is None: return
        if self.at is None:
            dst = buf[self.box]
            if np.array_equal(dst, self.under): dst[...] = self.over
            else: self._blend(dst)
        else:
            px = buf.reshape(-1).view(np.uint32)  # a view of the whole (contiguous) frame, a pixel as one number
            now = px.take(self.at)  # (`take` gathers faster than indexing)
            moved = np.flatnonzero(now != self.under)
            if 2 * len(moved) < len(now):  # a moving artist drew under a few of its pixels, if any: blend those
                px[self.at] = self.over
                if len(moved):
                    px[self.at.take(moved)] = self._blended(now.take(moved), moved)
            else: px[self.at] = self._blended(now, slice(None))  # over a moving mesh, say
            px[self.solid] = self.solid_rgb | px.take(self.solid) & 0xFF000000

    def _blended(self, px, i):
        "Pixels `px` (one number each) under the layer's pixels `i`, the layer composited over them."
        ch = px.view(np.uint8).reshape(-1, 4)
        ch[:, :3] = (ch[:, :3] * self.keep[i] + self.premult[i]) // 255
        return px


class _Mesh:
    """A moving QuadMesh of opaque cells drawn without antialiasing (a classifier's probability background): every pixel
    it paints shows one cell's colour, so a frame is a lookup, cell colour per pixel, instead of rasterising thousands of
    quads. Which cell each pixel shows is found once, by Agg itself: the mesh drawn with each cell in a colour of its own."""
    def __init__(self, canvas, mesh):
        self.mesh = mesh
        fc = mesh.get_facecolor()
        n = self.n = (mesh._coordinates.shape[0] - 1) * (mesh._coordinates.shape[1] - 1)
        ids = np.arange(1, n + 1)
        code = np.stack([ids & 255, ids >> 8 & 255, ids >> 16 & 255, np.full(n, 255)], 1) / 255
        r = canvas.get_renderer()
        r.clear()
        try:
            mesh.set_facecolor(code)
            mesh.draw(r)
        finally: mesh.set_facecolor(fc)
        px = np.asarray(canvas.buffer_rgba()).view(np.uint32).reshape(-1)
        self.at = np.flatnonzero(px >> 24)  # the pixels it paints (the cleared canvas is transparent)
        self.cell = (px[self.at] & 0xFFFFFF).astype(np.int64) - 1
        rows, cols = np.divmod(self.at, int(canvas.get_renderer().width))
        self.area = (int(rows[0]), int(rows[-1]) + 1, int(cols.min()), int(cols.max()) + 1) if len(self.at) else (0, 0, 0, 0)
        r0, r1, c0, c1 = self.area
        # a mesh filling its axes paints a whole box: written row by row, not pixel by pixel (~2x faster)
        self.block = self.cell.reshape(r1 - r0, c1 - c0) if len(self.at) == (r1 - r0) * (c1 - c0) else None
        self.above, self.memo = None, None  # a layer composited right after it (`paint_with`), and the last result
        if self.block is not None:  # the pixels of each cell, cell after cell (in the box, row by row)
            self.order = np.argsort(self.cell, kind='stable')
            self.count = np.bincount(self.cell, minlength=n)
            self.first = np.cumsum(self.count) - self.count

    @staticmethod
    def fits(a) -> bool:
        "Whether `a` is such a mesh: non-antialiased flat quads, no edges or hatch, colours set directly (no colormap)."
        return (type(a) is QuadMesh and not a._antialiased and a.get_array() is None and a.get_hatch() is None
                and a.get_clip_path() is None and not a.get_path_effects()
                and not a._shading == 'gouraud' and a.get_alpha() is None
                and (len(a.get_edgecolor()) == 0 or not np.asarray(a.get_edgecolor())[:, 3].any()))

    def paint(self, buf, fig) -> bool:
        "Paint the mesh's current colours into `buf` (the canvas), as Agg would (rgba8 rounds half up), and say so; else draw it."
        fc = self.mesh.get_facecolor()
        if len(fc) not in (1, self.n) or not (fc[:, 3] == 1).all() or not self.mesh.get_visible():
            fig.draw_artist(self.mesh)  # translucent or partial: matplotlib draws it
            return False
        c32 = np.ascontiguousarray((fc * 255 + .5).astype(np.uint8)).view(np.uint32).reshape(-1)
        if self.block is not None:
            r0, r1, c0, c1 = self.area
            buf.view(np.uint32)[r0:r1, c0:c1, 0] = c32.take(self.block) if len(c32) > 1 else c32[0]  # take: ~1.5x indexing
        else: buf.view(np.uint32).reshape(-1)[self.at] = c32.take(self.cell) if len(c32) > 1 else c32[0]
        return True

    def paint_with(self, buf, layer) -> bool:
        """`paint` then `layer.composite` (a `_Layer` of pixels, not a box, drawn right after the mesh, first of the moving
        artists), pixel for pixel, recomputing only the pixels of cells whose colour changed since the last call: on the
        still background the pixels of both depend on the cells' colours alone. False, having painted nothing, where
        `paint` would not paint (a translucent or partial mesh)."""
        fc = self.mesh.get_facecolor()
        if self.block is None or len(fc) != self.n or not (fc[:, 3] == 1).all() or not self.mesh.get_visible():
            self.memo = None
            return False
        c32 = np.ascontiguousarray((fc * 255 + .5).astype(np.uint8)).view(np.uint32).reshape(-1)
        px = buf.view(np.uint32)[..., 0]
        if self.memo is None or self.memo[0] is not layer: self._remember(layer, px.shape[1])
        box, was, kept = self.memo[1:]
        cells = None if was is None else np.flatnonzero(c32 != was)
        if cells is None or len(cells) > self.n // 8:  # many cells changed (another part of the animation): all of it
            self.paint(buf, None)
            layer.composite(buf)
            kept[...] = px[box]
        elif len(cells):
            count = self.count[cells]
            at = self.order[np.arange(count.sum()) + np.repeat(self.first[cells] - np.cumsum(count) + count, count)]
            new = np.repeat(c32[cells], count)  # the colour each pixel of a changed cell takes
            j = self.blended[at]
            if (hit := j >= 0).any():  # `_Layer.composite`'s "over", on these pixels
                ch, j = new.view(np.uint8).reshape(-1, 4), j[hit]
                ch[hit, :3] = (ch[hit, :3] * layer.keep[j] + layer.premult[j]) // 255
            j = self.solid[at]
            if (hit := j >= 0).any(): new[hit] = layer.solid_rgb[j[hit]] | new[hit] & 0xFF000000
            kept.reshape(-1)[self.where[at]] = new
            px[box] = kept
        else: px[box] = kept
        self.memo = (layer, box, c32, kept)
        return True

    def _remember(self, layer, W):
        "Where each pixel of the mesh's box is in `layer` (its index in the layer's blended or opaque pixels, or -1)."
        box = _union([self.area, layer.area])
        r0, r1, c0, c1 = self.area
        bw = box[3] - box[2]
        self.where = (((np.arange(r0, r1) - box[0]) * bw)[:, None] + np.arange(c0 - box[2], c1 - box[2])).reshape(-1)  # in the box kept
        for name, idx in (('blended', layer.at), ('solid', layer.solid)):  # a map of the box (a search per pixel: ~5x slower)
            y, x = np.divmod(idx, W)
            of = np.full((box[1] - box[0]) * bw, -1)
            of[(y - box[0]) * bw + x - box[2]] = np.arange(len(idx))
            setattr(self, name, of[self.where])
        self.memo = (layer, np.s_[box[0]:box[1], box[2]:box[3]], None, np.empty((box[1] - box[0], box[3] - box[2]), np.uint32))


def _draw_text_once_laid_out(fig, text:Text, boxes=None, drawn=None, glyphs=None):
    """Draw `text` as `fig.draw_artist` does, laying it out once: a text with a box asks matplotlib's `Text._get_layout`
    twice per draw (for the text, then for its box), and nothing between the two calls changes what it returns. A plain
    text is drawn by `glyphs` (a `GlyphText.draw_plain`: laid out and pasted at once; given only where it is on the
    canvas's renderer, which the caller has at hand), others laid out by it where it can. Its box is drawn by `boxes`
    (a `_Boxes`), if given. `drawn` (a list), if given, gets None if the text may paint beyond what its lines and its
    box report (an arrow, path effects, TeX)."""
    if drawn is not None and (text.get_path_effects() or text.get_usetex()
                              or isinstance(text, Annotation) and text.arrow_patch is not None):
        drawn.append(None)
    patch = text.get_bbox_patch() if boxes is not None else None
    if glyphs is not None and \
            glyphs.draw_plain(text, None if patch is None else lambda renderer: boxes.draw(patch, renderer)): return
    layout = text._get_layout
    memo = []
    def once(renderer):
        if not memo or memo[0] is not renderer:
            own = glyphs.layout(text) if glyphs is not None and renderer is glyphs.r else None
            memo[:] = [renderer, layout(renderer) if own is None else own]
        return memo[1]
    text._get_layout = once
    if patch is not None: patch.draw = lambda renderer: boxes.draw(patch, renderer)
    try: fig.draw_artist(text)
    finally:
        del text._get_layout
        if patch is not None: del patch.draw


# what a patch's state holds that its pixels do not depend on (bookkeeping, picking, layout, names)
_NOT_DRAWN = {'_stale', 'stale_callback', '_axes', '_parent_figure', 'figure', '_callbacks', '_remove_method', '_label',
              '_picker', '_mouseover', '_url', '_gid', '_in_layout', '_in_autoscale', '_sticky_edges', '_animated',
              '_transformSet', 'draw'}
_PLAIN = (type(None), bool, int, float, str, tuple, Enum)
_PLAIN_TYPES = set(_PLAIN[:-1])  # most of a patch's state: one set lookup, not a walk through `_PLAIN`
_MISSING, _SEEN = object(), object()
_BOX_STYLES = set(BoxStyle.get_styles().values())  # matplotlib's own (their parameters are their whole state)


def _drawn_state(patch) -> tuple | None:
    """Everything in `patch`'s state that its pixels may depend on, as a hashable key (transforms by their matrix, the
    box style by its parameters, the clip box by its bounds), or None if it holds anything else (a clip path, a filter,
    path effects, a non-affine transform: then it is not cached)."""
    out = []
    for k, v in patch.__dict__.items():
        if k in _NOT_DRAWN: continue
        if type(v) in _PLAIN_TYPES or isinstance(v, _PLAIN): out.append((k, v))
        elif isinstance(v, Affine2DBase): out.append((k, v.get_matrix().tobytes()))
        elif type(v) in _BOX_STYLES: out.append((k, type(v), tuple(sorted(vars(v).items()))))
        elif k == 'clipbox': out.append((k, tuple(v.bounds) if patch.get_clip_on() else None))
        elif k == '_path_effects' and not v: out.append((k, ()))
        else: return None
    try:
        hash(out := tuple(out))
    except TypeError: return None
    return out


class _Boxes:
    """A text's box (a translucent rounded patch: a caption's) at blit speed. Agg paints a path pixel by pixel from
    the path, the colours and the pixel under it alone, so a box drawn where it was drawn before, in the same state,
    over the same pixels, gives the same pixels: those are pasted. Otherwise matplotlib draws it (the first time; when
    a moving artist passes under it), and the drawing of a box seen before is kept, with the pixels it was drawn over,
    checked to change nothing outside the box's extent."""
    def __init__(self):
        # (canvas size, dpi, patch state) -> (box rows and columns, pixels under, pixels drawn), _SEEN (once), or None
        self.kept = {}
        self.areas = {}  # (canvas size, dpi, patch state) -> `_patch_area` (its path's extent is slow to measure)
        self.drawn = None  # while a list: the area each draw may change (see `GlyphText.drawn`), appended

    def draw(self, patch, renderer):
        state = _drawn_state(patch)
        if state is None:  # a clip path, path effects...: matplotlib draws it, painting where it may
            if self.drawn is not None: self.drawn.append(None)
            return type(patch).draw(patch, renderer)
        key = (renderer.width, renderer.height, renderer.dpi, state)
        px = np.asarray(renderer._renderer)
        kept = self.kept.get(key, _MISSING)
        if type(kept) is tuple:
            box, under, over = kept
            if np.array_equal(px[box], under):
                px[box] = over
                if self.drawn is not None: self.drawn.append(_area(*box))
                return
        if self.drawn is not None: self.drawn.append(self._measured(key, patch, renderer, px.shape)[0])
        if kept is not _SEEN:  # known box over other pixels, not to be kept, or new: kept if it comes again
            if kept is _MISSING:
                if len(self.kept) > 64: self.kept.clear()
                self.kept[key] = _SEEN  # (a box that moves every frame, a mark following a point, is never copied)
            return type(patch).draw(patch, renderer)
        # what it may paint (frames rely on it: `Renderer.area`) is all that is copied and checked, not the whole canvas
        area, box = self._measured(key, patch, renderer, px.shape)
        r0, r1, c0, c1 = area
        before = px[r0:r1, c0:c1].copy()
        type(patch).draw(patch, renderer)
        self.kept[key] = self._keep(area, box, before, px)

    def _measured(self, key, patch, renderer, shape) -> tuple:
        "`_patch_area` of `patch` in its state `key`, measured once."
        if (got := self.areas.get(key)) is None:
            if len(self.areas) > 64: self.areas.clear()
            got = self.areas[key] = _patch_area(patch, renderer, shape)
        return got

    @staticmethod
    def _keep(area, box, before, px):
        """(box, pixels under, pixels drawn) of a first drawing, `before` it the pixels of `area` (`_patch_area`), or None
        if it changed pixels of the area outside the box."""
        (r0, r1, c0, c1), (y0, y1, x0, x1) = area, box
        if y0 >= y1 or x0 >= x1 or not (r0 <= y0 and y1 <= r1 and c0 <= x0 and x1 <= c1): return None
        moved = before.view(np.uint32) != px[r0:r1, c0:c1].view(np.uint32)
        moved[y0 - r0:y1 - r0, x0 - c0:x1 - c0] = False
        if moved.any(): return None
        return np.s_[y0:y1, x0:x1], before[y0 - r0:y1 - r0, x0 - c0:x1 - c0].copy(), px[y0:y1, x0:x1].copy()


def _area(rows:slice, cols:slice) -> tuple:
    return rows.start, rows.stop, cols.start, cols.stop


def _patch_area(patch, renderer, shape) -> tuple:
    """(first row, end row, first column, end column) of the pixels a box patch may paint: its path's extent, widened by
    two line widths (a miter joint reaches that far at Agg's miter limit of 4) and two pixels (antialiasing); and of
    the box that keeps its drawing (`_Boxes`): the extent widened by one line width and two pixels. (Measuring the
    extent costs ~0.2 ms: once for both.)"""
    e = patch.get_window_extent(renderer)
    lw, (H, W) = patch.get_linewidth() * renderer.dpi / 72, shape[:2]
    def widened(pad): return (max(0, math.floor(H - e.y1) - pad), min(H, math.ceil(H - e.y0) + pad),
                              max(0, math.floor(e.x0) - pad), min(W, math.ceil(e.x1) + pad))
    return widened(math.ceil(2 * lw) + 2), widened(math.ceil(lw) + 2)


def _line_area(line, shape, affines=None) -> tuple | None:
    """The pixels a line not clipped to its axes (a point marked at the edge of them) may paint: its points' extent,
    widened by the marker's radius, four widths of its edge and of the line (mitered joints) and three pixels; None
    where its points are not finite or it has path effects. `affines`, if given: a dict keeping what a frame's
    transforms and clip boxes give while they stay (each affine transform's matrix, each box's area), by id."""
    if line.get_path_effects(): return None
    tr = line.get_transform()
    if affines is not None and (affine := affine_of(tr, affines)) is not None: tr = affine
    xy = tr.transform(np.asarray(line.get_xydata(), dtype=float))
    if not len(xy) or not np.isfinite(xy).all(): return None
    marker = line.get_marker() not in (None, 'None', 'none', '', ' ')
    pt = (line.get_markersize() / 2 + 4 * line.get_markeredgewidth() if marker else 0) + 4 * line.get_linewidth()
    pad = pt * line.figure.dpi / 72 + 3
    (x0, y0), (x1, y1) = xy.min(0) - pad, xy.max(0) + pad
    H, W = shape[:2]
    return (max(0, math.floor(H - y1)), min(H, math.ceil(H - y0)), max(0, math.floor(x0)), min(W, math.ceil(x1)))


def _clip_area(a, shape, affines=None) -> tuple | None:
    """(first row, end row, first column, end column) of the pixels that a line, a collection or a patch `a` can paint:
    its clip box as Agg rounds it (to whole pixels), a pixel wider; None for anything else, or not clipped to a box.
    `affines`: see `_line_area`."""
    if not isinstance(a, (Line2D, Collection, Patch)): return None
    if not a.get_clip_on() or (cb := a.get_clip_box()) is None:
        return _line_area(a, shape, affines) if type(a) is Line2D else None
    if affines is not None and (got := affines.get(id(cb))) is not None: return got[1]  # an axes' lines share its box
    (x0, y0), (x1, y1) = cb.get_points().tolist()  # (as numbers: ~2x faster than `extents`' numpy scalars)
    H, W = shape[:2]
    area = (max(0, math.floor(H - y1) - 1), min(H, math.ceil(H - y0) + 1), max(0, math.floor(x0) - 1),
            min(W, math.ceil(x1) + 1)) if math.isfinite(x0 + y0 + x1 + y1) else None
    if affines is not None: affines[id(cb)] = (cb, area)
    return area


def _union(areas) -> tuple | None:
    "The smallest box holding every area of `areas` (None if one is None: unknown; an empty box if there are none)."
    if any(a is None for a in areas): return None
    if not areas: return (0, 0, 0, 0)
    r0, r1, c0, c1 = zip(*areas)
    return min(r0), max(r1), min(c0), max(c1)


def _covering(areas) -> list:
    """Boxes covering every area of `areas`, largest first: each area inside a box is dropped, and one overlapping a box
    merged into it where the box holding both is no larger than the two. (Once a frame where marks move: ~12 us.)"""
    out = []
    for a in sorted(set(areas), key=lambda a: (a[0] - a[1]) * (a[3] - a[2])):
        r0, r1, c0, c1 = a
        for i, (s0, s1, d0, d1) in enumerate(out):
            if s0 <= r0 and r1 <= s1 and d0 <= c0 and c1 <= d1: break
            u0, u1, v0, v1 = min(r0, s0), max(r1, s1), min(c0, d0), max(c1, d1)
            if (u1 - u0) * (v1 - v0) <= (r1 - r0) * (c1 - c0) + (s1 - s0) * (d1 - d0):
                out[i] = (u0, u1, v0, v1)
                break
        else: out.append(a)
    return out


def frames_differ(a, b, tol:int=40) -> float:
    "Share of pixels of images `a` and `b` (H, W, >=3) that differ by more than `tol` (of 255) in any channel."
    a, b = np.asarray(a)[..., :3].astype(np.int16), np.asarray(b)[..., :3].astype(np.int16)
    if a.shape != b.shape: return 1.
    return float((np.abs(a - b) > tol).any(-1).mean())


def _limits(ax) -> tuple:
    "The view limits of `ax`, to compare: x0, y0, x1, y1 (`viewLim`, autoscaled if due, asked once), then z's of 3D axes."
    return (*ax.viewLim.get_points().tolist(), *(ax.get_zlim() if hasattr(ax, 'get_zlim') else ()))


class Renderer:
    """The frames of `fr` (a `Frames`, or anything with `fig`, `artists`, `len` and `draw(k)`) as pixels, one at a time:
    `frame(k)` is an (H, W, 4) uint8 RGBA view of the canvas, valid until the next call. The still part is drawn
    once; per frame only the moving artists are drawn, their text from cached glyphs. An axes whose limits change
    (autoscaling to a moving artist, say), and 3D axes, are redrawn whole each frame from then on. If the draw order
    is not sure to be matplotlib's (`check` None), or when `check`, the last frame is compared with matplotlib's full
    draw of it first; if they differ it warns and draws every frame in full: slower, never a wrong picture.
    Use it as a context manager (it sets the moving artists animated while it works).
    After `frame(k)`, `area` is (background, first row, end row, first column, end column): outside that box the frame
    is the still frame numbered `background` (the background with the static layers over it: a layer composited over
    the background's pixels gives the same pixels each frame), so a frame differs from another of the same background
    only inside their two boxes; or None where that is not known (frames drawn in full, an axes redrawn whole, a
    legend moving)."""
    def __init__(self, fr, check:bool|None=None):
        self.fr, self.fig = fr, fr.fig
        self.canvas = self.fig.canvas if isinstance(self.fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(self.fig)
        self.text = GlyphText(self.canvas.get_renderer())
        self.boxes = _Boxes()
        self.lines = LinePainter()
        self.full, self.whole, self.hidden, self.steps = False, set(), [], []
        self.area, self.backgrounds = None, 0
        # True while nothing but `frame` draws on the canvas (an export's loop): a frame then restores the background
        # only inside the boxes the frame before it changed (`dirty`: (background, boxes), None when not known)
        self.alone, self.dirty = False, None
        self._covered = None, None  # the last frame's areas and `_covering` them (frames mostly draw the same boxes)
        self.t_text = self.t_draw = 0.  # seconds drawing moving text / whole frames (the benchmark's text share)
        fr.draw(0)
        self.limits = {ax: _limits(ax) for ax in self.fig.axes}
        sure = self._setup()
        if check or (check is None and not sure): self._check()

    def __enter__(self): return self
    def __exit__(self, *exc): self.close()

    def close(self):
        "Give the figure back as it was (moving artists not animated, matplotlib's own text drawing)."
        self._show_hidden()
        self.text.uninstall()

    def _show_hidden(self):
        for a, w in self.hidden: a.set_animated(w)
        self.hidden = []

    def _setup(self) -> bool:
        "Draw the background (everything but what moves) and the layers; whether the draw order is sure."
        self._show_hidden()
        moving = list(self.fr.artists)
        seq, sure = _plan(self.fig, moving, self.canvas.get_renderer(), self.whole)
        # what the background leaves out: moving artists, axes redrawn whole, static artists painted above them
        hidden = [a for x in seq for a in (x if isinstance(x, list) else [x])]
        self.hidden = [(a, a.get_animated()) for a in hidden]
        for a in hidden: a.set_animated(True)
        self.text.install()
        self.dirty = None
        with _ticks_once_a_draw(self.fig), _legends_laid_out_once(self.fig):
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            self.backgrounds += 1
            bg = np.asarray(self.canvas.buffer_rgba()).copy() if any(isinstance(x, list) for x in seq) else None
            self.steps = [_Layer(self.canvas, x, bg) if isinstance(x, list) else x for x in seq]
        self.meshes = {id(x): _Mesh(self.canvas, x) for x in seq if _Mesh.fits(x)}  # painted by lookup, not drawn
        if len(self.steps) > 1 and (m := self.meshes.get(id(self.steps[0]))) is not None \
                and isinstance(self.steps[1], _Layer) and getattr(self.steps[1], 'at', None) is not None:
            m.above = self.steps[1]  # points and axes above the mesh: both painted at once, where cells changed
        return sure

    def _check(self):
        "Compare the blitted last frame with matplotlib's full draw of it; draw in full from now on if they differ."
        k = len(self.fr) - 1
        blitted = self.frame(k).copy()
        hidden = self.hidden
        self._show_hidden()  # matplotlib's own full draw: every artist, its own text drawing
        self.text.uninstall()
        self.fr.draw(k)
        self.dirty = None
        self.canvas.draw()
        if frames_differ(blitted, np.asarray(self.canvas.buffer_rgba())) > 1e-3:
            warnings.warn("the blitted last frame differs from matplotlib's full draw of it: drawing every frame in full (slower)")
            self.full = True
            return
        self.hidden = hidden  # the saved background and layers stay valid: blit from here on
        for a, _ in hidden: a.set_animated(True)
        self.text.install()

    def still(self) -> tuple:
        """(below, above): the still part as (H, W, 4) RGBA images, for a page that draws the moving artists itself
        (`save_fit_by_hand`): the background, and the static artists painted above moving ones (a legend) on transparent."""
        below = np.asarray(self.background).copy()
        self.dirty = None
        r = self.canvas.get_renderer()
        r.clear()
        for s in self.steps:
            if isinstance(s, _Layer):
                for a in s.artists: a.draw(r)
        above = np.asarray(self.canvas.buffer_rgba()).copy()
        self.canvas.restore_region(self.background)
        return below, above

    def frame(self, k:int) -> np.ndarray:
        "Frame `k` as an (H, W, 4) RGBA view of the canvas (copy it to keep it past the next call)."
        t0 = time.perf_counter()
        fr, canvas = self.fr, self.canvas
        fr.draw(k)
        self.area, dirty, self.dirty = None, self.dirty, None
        if self.full:
            canvas.draw()
            self.t_draw += time.perf_counter() - t0
            return np.asarray(canvas.buffer_rgba())
        moved = {ax for ax, lim in self.limits.items() if ax not in self.whole and _limits(ax) != lim}
        if moved:  # from this frame on, these axes are redrawn whole (earlier frames had the background's limits)
            self.whole |= moved
            self._setup()
            fr.draw(k)
        buf = np.asarray(canvas.buffer_rgba())
        if self.alone and dirty is not None and dirty[0] == self.backgrounds:  # the rest is the background already
            bg = np.asarray(self.background)
            for r0, r1, c0, c1 in dirty[1]: buf[r0:r1, c0:c1] = bg[r0:r1, c0:c1]
        else: canvas.restore_region(self.background)
        drawn = self.text.drawn = self.boxes.drawn = []  # the box each step may paint (None: not known)
        layered = []  # the boxes of the layers, which change the background but not the still frame where nothing moved
        renderer, affines = canvas.get_renderer(), {}  # the axes' transforms as they are this frame
        done = None  # a layer painted with the mesh under it
        try:
            for s in self.steps:
                if s is done: continue
                if isinstance(s, _Layer):
                    s.composite(buf)
                    if s.area is not None: layered.append(s.area)
                elif (m := self.meshes.get(id(s))) is not None:
                    if m.above is not None and m.paint_with(buf, m.above):
                        drawn.append(m.area)
                        layered.append(m.above.area)
                        done = m.above
                    else: drawn.append(m.area if m.paint(buf, self.fig) else _clip_area(s, buf.shape))
                elif isinstance(s, Line2D):  # with no points (a mark not shown this frame) there is nothing to paint
                    if np.size(s.get_xdata(orig=True)) and np.size(s.get_ydata(orig=True)):
                        self.lines.draw(s, renderer, affines)
                        drawn.append(_clip_area(s, buf.shape, affines))
                elif type(s) in (PathCollection, LineCollection):  # scatters, line collections: replayed as lines are
                    self.lines.draw(s, renderer, affines)
                    drawn.append(_clip_area(s, buf.shape, affines))
                elif type(s) is Text and not s.get_visible():
                    s._renderer = renderer  # all `Text.draw` does for a hidden text (a mark's note while the mark is inside)
                elif isinstance(s, Text):
                    t = time.perf_counter()
                    glyphs = self.text if renderer is self.text.r else None
                    _draw_text_once_laid_out(self.fig, s, self.boxes, drawn, glyphs)
                    self.t_text += time.perf_counter() - t
                else:
                    s.draw(renderer)  # as `fig.draw_artist(s)` does, the canvas's renderer asked for once a frame
                    if isinstance(s, Axes):  # redrawn whole: it may have moved (an aspect applied)
                        drawn.append(None)
                        affines.clear()
                    else: drawn.append(_clip_area(s, buf.shape, affines))
        finally: self.text.drawn = self.boxes.drawn = None
        if (box := _union(drawn)) is not None:
            self.area = (self.backgrounds, *box)
            # two panels side by side change two boxes: restoring their union would copy the gap between them too
            if self._covered[0] != (both := drawn + layered): self._covered = both, _covering(both)
            self.dirty = self.backgrounds, self._covered[1]
        self.t_draw += time.perf_counter() - t0
        return buf


def render_frames(fr, check:bool|None=None) -> list:
    "Every frame of `fr` as an (H, W, 4) uint8 RGBA array (see `Renderer`; this keeps them all in memory)."
    with Renderer(fr, check) as r: return [r.frame(k).copy() for k in range(len(fr))]


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

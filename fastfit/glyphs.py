"""Text at blit speed: Agg's text drawing from cached glyph bitmaps and cached pair advances, pixel for pixel.

matplotlib (3.11) draws each line of text by shaping it with HarfBuzz (`FT2Font._layout`), measuring it again with
FreeType (`set_text`, for the layout of lines and the box around them), and rasterising every glyph with FreeType, then
pasting each glyph with Agg's `draw_text_image` -- in every frame anew, though a caption changes only a few digits.
Measured on the `fit` caption (2 lines, ~36 glyphs, 100 frames, dpi 80): 4.4 ms of a 5.6 ms frame was text; shaping
and measuring cost ~20 us a glyph, rasterising ~40 us, pasting ~10 us. Whole text runs cannot be cached (the string
changes every frame), nor can changed characters alone be re-rendered (the fitted line moves under the caption's
translucent box). So here a glyph is rasterised once per subpixel phase (its bitmap only shifts by whole pixels
otherwise) and pasted as Agg's `draw_text_image` pastes it; a line is laid out from the advances of each pair of
adjacent units (characters, or ligatures such as DejaVu Sans's "fi" and "ffi": `_Face`), each probed once by
matplotlib's own shaping and measuring. Only text that such pairs lay out exactly takes this path: one font (no
fallback), no substitution but ligatures, Latin and common symbols (one script, so no script-run breaks), no math, no
rotation, no font features. Anything else, and matplotlib versions without these internals, is drawn by matplotlib
itself. A self-check at first use compares both ways on probe text, pixel for pixel.
A line's glyphs are combined into one coverage image and blended once (where two glyphs ink one pixel, that pixel is
blended glyph by glyph, in order, as matplotlib does). The blend is a table of Agg's own (`_Blend`): matplotlib 3.11's
`draw_text_image` samples the coverage through an image filter and divides per channel, ~30 ns a pixel of the text's
box; the table is read once per colour from Agg itself and used only where it is exact (opaque pixels, inside the clip box).
Now (bench/animation.py) the caption costs ~0.8 ms a frame, its box included
(~0.35 ms since the box is pasted where it was drawn before over the same pixels: `render._Boxes`), where a blitted line
costs ~0.25 ms; whole-run caching was rejected (every frame's string is new) and so was rendering
only the changed characters (the line moves under the translucent box, so every pixel of it can change).
"""
from __future__ import annotations

import math
import sys
import unicodedata
from bisect import bisect_left
from itertools import accumulate, count
from operator import add, ge, itemgetter

import matplotlib as mpl
import matplotlib.colors as mcolors
import numpy as np
from matplotlib import cbook
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager, get_font
from matplotlib.text import Text
from matplotlib.transforms import Affine2D, Bbox

try:
    from matplotlib.ft2font import FT2Font, RenderMode
    _INTERNALS = all(hasattr(FT2Font, a) for a in ('_layout', '_render_glyph', '_set_transform')) and \
        hasattr(RendererAgg, '_draw_text_glyphs_and_boxes')
except ImportError: _INTERNALS = False

__all__ = ['GlyphText']

_MISSING = object()
_IDENTITY = np.array([[0x10000, 0], [0, 0x10000]])
_FACES = {}  # (font properties, dpi, hinting settings) -> _Face; kept across renders (a re-export reuses its glyphs)
_HEIGHTS = {}  # (font properties, dpi) -> ascent, descent, line gap
_ACTIVE = None  # None: not checked yet; then whether the self-check passed
_NUMBERS = {float, int}  # a text's position of these types is drawn where it is (`Axis.convert_units` returns it)


def _simple(c) -> bool:
    "A character that pair layout handles: Latin or a common symbol, not a control, format or combining mark."
    o = ord(c)
    if not (0x20 <= o < 0x7f or 0xa0 <= o < 0x250 or 0x2000 <= o < 0x2300): return False
    return unicodedata.category(c) not in ('Cc', 'Cf', 'Mn', 'Mc', 'Me', 'Zl', 'Zp')


class _Face:
    """One font at one size and dpi: glyph indices, advances, ink heights and glyph bitmaps, filled in as text needs them.
    A line is laid out unit by unit: a unit is a character, or a ligature (DejaVu Sans's "fi", "ff", "ffi", ...: several
    characters that shaping makes one glyph), taken as long as shaping the longer string still gives one glyph, as
    HarfBuzz's ligature lookups take the longest match from the left; each unit and each pair of adjacent units is
    probed once by matplotlib's own shaping and measuring, so a unit boundary HarfBuzz would not make fails its pair."""
    def __init__(self, font, size, dpi, flags):
        self.font, self.size, self.dpi, self.flags = font, size, dpi, flags
        self.chars = {}  # char -> (glyph index, FreeType advance (1/64 px), ink ymin, ymax (1/64 px)), or None
        self.units = {}  # string -> its info, as chars' (a ligature), if shaping makes it one glyph; else None
        # string -> if shaping makes it two glyphs: their indices, HarfBuzz x of the second (px) and its FreeType pen
        # (1/64 px); else None
        self.pairs = {}
        # two characters that are two units (no ligature) laid out as a pair -> HarfBuzz x of the second, its FreeType pen
        # advance, the second's info (as chars')
        self.steps = {}
        self.bitmaps_ = {}  # (mode, y phase) -> {glyph * 64 + x phase: `_bitmap`}
        self.places = {}  # (mode, pen y, canvas size) -> {pen x * 2**16 + glyph: `_at`} (pen in 1/64 px)
        self.lines = {}  # line -> `line(s)`: a frame's text is measured (layout) and then drawn, each asking for its line
        self.heights = None  # `GlyphText.height_metrics` of its font, once asked

    def _char(self, c):
        self.chars[c] = info = self._shape(c)[0] if _simple(c) else None
        return info

    def _shape(self, s) -> tuple:
        "(`units[s]`, `pairs[s]`): string `s` (of simple characters) shaped and measured by matplotlib's own calls, once."
        f = self.font
        f.set_size(self.size, self.dpi)
        items = f._layout(s, flags=self.flags)
        unit = pair = None
        if items and items[0].x == 0 and all(it.ft_object is f and it.y == 0 for it in items):
            if len(items) == 1 and items[0].char == s:
                f.set_text(s, 0.0, flags=self.flags)
                (w, h), d = f.get_width_height(), f.get_descent()
                unit = (items[0].glyph_index, int(w), -int(d), int(h) - int(d))
            elif len(items) == 2:
                pair = (items[0].glyph_index, items[1].glyph_index, items[1].x,
                        int(f.set_text(s, 0.0, flags=self.flags)[1][0]))
        self.units[s], self.pairs[s] = unit, pair
        return unit, pair

    def line(self, s) -> tuple | None:
        "(glyph indices, x of each (px), FreeType width, ink ymin, ymax (1/64 px)) of line `s`, or None if not simple."
        ln = self.lines.get(s, _MISSING)
        if ln is _MISSING:
            if len(self.lines) > 256: self.lines.clear()
            ln = self.lines[s] = self._line(s)
        return ln

    def _line(self, s) -> tuple | None:
        # most lines are single characters that make no ligature with the next one: laid out pair by pair, each pair
        # one lookup (`steps`), where `_units_line` takes a unit at a time, each probed for a ligature
        if len(s) < 2 or None in (st := [*map(self.steps.get, map(add, s, s[1:]))]): return self._units_line(s)
        dx, dpen, infos = zip(*st)
        glyphs, advances, lo, hi = zip(self.chars[s[0]], *infos)
        return list(glyphs), list(accumulate(dx, initial=0.)), sum(dpen) + advances[-1], min(lo), max(hi)

    def _units_line(self, s) -> tuple | None:
        chars, units, pairs = self.chars, self.units, self.pairs
        prev, unit, glyphs, xs, x, pen, lo, hi = None, None, [], [], 0., 0, 0, 0
        i, n = 0, len(s)
        while i < n:
            info = chars.get(s[i], _MISSING)
            if info is _MISSING: info = self._char(s[i])
            if info is None: return None
            j = i + 1
            while j < n:  # a ligature: the longer string is still one glyph
                if chars.get(s[j], _MISSING) is _MISSING: self._char(s[j])
                if chars[s[j]] is None: break
                lig = units.get(s[i:j + 1], _MISSING)
                if lig is _MISSING: lig = self._shape(s[i:j + 1])[0]
                if lig is None: break
                info, j = lig, j + 1
            if prev is not None:
                p = pairs.get(unit + s[i:j], _MISSING)
                if p is _MISSING: p = self._shape(unit + s[i:j])[1]
                if p is None or p[0] != prev[0] or p[1] != info[0]: return None
                x += p[2]; pen += p[3]
                if len(unit) == 1 and j == i + 1: self.steps[unit + s[i]] = p[2], p[3], info  # (unit + s[i]: no ligature)
            if prev is None or info[2] < lo: lo = info[2]
            if prev is None or info[3] > hi: hi = info[3]
            glyphs.append(info[0]); xs.append(x)
            prev, unit, i = info, s[i:j], j
        return glyphs, xs, pen + prev[1], lo, hi

    def _bitmap(self, glyph, mode, tx, ty) -> tuple:
        """The coverage bitmap of `glyph` with its pen at (tx, ty) (1/64 px): the bitmap, its left and top in whole pixels
        relative to the pen's whole pixel, the first and last column of its ink (relative to its left), and its inked
        pixels (rows, columns from its top left, coverages)."""
        f = self.font
        f.set_size(self.size, self.dpi)
        f._set_transform(_IDENTITY, [tx, ty])
        bm = f._render_glyph(glyph, self.flags, mode)
        buf = np.array(bm.buffer, dtype=np.uint8)
        if mode != RenderMode.NORMAL: buf *= 0xff
        ink = np.flatnonzero(buf.any(0))
        ys, xs = np.nonzero(buf)
        return (buf, bm.left - (tx >> 6), bm.top - (ty >> 6), int(ink[0]) if len(ink) else 0,
                int(ink[-1]) if len(ink) else -1, ys.astype(np.intp), xs.astype(np.intp), buf[ys, xs])

    def bitmap(self, glyph, mode, tx, ty) -> tuple:
        "`_bitmap` of `glyph` with its pen at `tx` and `ty` (1/64 px), cached per subpixel phase."
        if len(self.bitmaps_) > 20000: self.bitmaps_.clear()
        sub = self.bitmaps_.setdefault((mode is RenderMode.NORMAL, ty & 63), {})
        if (b := sub.get(k := glyph * 64 + (tx & 63))) is None: b = sub[k] = self._bitmap(glyph, mode, tx, ty)
        return b

    def placed(self, ln, x, mode, ty, H, W, pens=None) -> list:
        """`_at` of each glyph of line `ln` (`line`) with its start at x (px) and its pen at `ty` (1/64 px) in an H x W
        canvas, those that ink nothing (spaces) left out. Kept per place: lines that differ by a few digits put most
        glyphs where they were before, and then a glyph costs one dict lookup. `pens`, if given: a dict keeping the
        rounded pens of each (start, glyph offsets) met (a monospace text's lines of one length share their offsets)."""
        if (at := self.places.get(where := (mode is RenderMode.NORMAL, ty, H, W))) is None:
            if len(self.places) > 256: self.places.clear()
            at = self.places[where] = {}
        # each glyph's pen x (1/64 px) and index (16-bit), rounded as matplotlib rounds it (halves to even); in Python,
        # not numpy: a line is too short for numpy's calls to pay
        x = float(x)
        pens = {} if pens is None else pens
        if (pen := pens.get(pk := (x, tuple(ln[1])))) is None:
            if len(pens) > 1024: pens.clear()
            pen = pens[pk] = [round((x + a) * 0x40) * 0x10000 for a in ln[1]]
        keys = [*map(add, pen, ln[0])]
        out = [*map(at.get, keys)]
        if None in out:
            if len(at) > 4096: at.clear()
            for i, p in enumerate(out):
                if p is None:
                    tx, g = divmod(keys[i], 0x10000)
                    out[i] = at[keys[i]] = _at(self.bitmap(g, mode, tx, ty), tx >> 6, ty >> 6, H, W)
        return [*filter(None, out)]  # (an empty place is a glyph that inks nothing)


def _meet(a, b) -> bool:
    "Whether placed lines `a` and `b` (`GlyphText._place`) might ink one pixel: the ink boxes of two of their glyphs meet."
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a[1], b[1]
    if ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0: return False
    near = [g for g in a[0] if g[6] > by0 and g[2] < by1 and g[4] >= bx0 and g[3] < bx1]  # a's glyphs in b's box
    return any(g[3] <= h[4] and h[3] <= g[4] and g[2] < h[6] and h[2] < g[6]
               for h in b[0] if h[6] > ay0 and h[2] < ay1 for g in near)


def _rounds(lines, meet:bool) -> tuple:
    """(pixels, coverages, cuts) of placed lines `lines` (`GlyphText._place`) pasted one after the other, in rounds that
    each ink a pixel at most once (`_Blend.blend`): the k-th rounds of all lines together, or, where two lines might
    ink one pixel (`meet`), every round of a line before those of the next. Joined from the glyphs' own bytes at once (a
    text's lines are new in most frames, and `np.concatenate` costs ~0.15 us a piece: ~40 us for the step panel's ~130
    glyphs, where joining bytes costs ~3 us)."""
    if not any(p[4] for p in lines) and (not meet or len(lines) == 1):
        return _joined([a for p in lines for a in p[2]], [a for p in lines for a in p[3]]) + ((),)
    glyphs, base = [], 0
    for p in lines:
        rounds = p[4] or (0,) * len(p[0])
        glyphs += zip([base + r for r in rounds], p[2], p[3])
        if meet: base += max(rounds) + 1
    glyphs.sort(key=itemgetter(0))  # (stable: line and glyph order within a round)
    rounds, lin, v = zip(*glyphs)
    ends = [*accumulate(map(len, v))]  # (a coverage is a byte)
    # where each round after the first starts (rounds are numbered without gaps: none is empty)
    return _joined(lin, v) + (tuple(ends[bisect_left(rounds, k) - 1] for k in range(1, rounds[-1] + 1)),)


def _joined(lin, v) -> tuple:
    "Glyphs' pixel indices `lin` and coverages `v` (`_at`'s bytes) joined, as arrays (read-only: `_Blend.blend` reads them)."
    return np.frombuffer(b''.join(lin), np.intp), np.frombuffer(b''.join(v), np.uint8)


def _at(g, t, base, H, W) -> tuple:
    """Bitmap `g` (`_Face._bitmap`) pasted with its pen's whole pixel at column `t`, baseline `base` (from the bottom) of
    an H x W canvas: the bitmap, its left, top, first and end column of ink, right, bottom, its pixels' indices (intp)
    and coverages (uint8), as bytes (`_joined`); () if it inks nothing."""
    if g[4] < g[3]: return ()
    lf, rw = g[1] + t, H - (g[2] + base)
    h, w = g[0].shape
    return g, lf, rw, lf + g[3], lf + g[4], lf + w, rw + h, (g[5] * W + g[6] + (rw * W + lf)).tobytes(), g[7].tobytes()


class GlyphText:
    """Installs cached-glyph text drawing and measuring on an Agg renderer (`install`/`uninstall`): exactly the pixels
    and metrics of matplotlib's own, for the text it handles (see the module's docstring); the rest goes to matplotlib."""
    def __init__(self, renderer:RendererAgg):
        self.r = renderer
        # (face, line, x, y, antialiased, canvas size) -> `_place`: a line drawn again where it was (in this render only:
        # a benchmark repeating an export must not find last time's lines)
        self.placed = {}
        self.pens = {}  # `_Face.placed`'s, for this render only (as `placed`)
        # while a list: the box of pixels each draw may change, (first row, end row, first column, end column) from the
        # top left, appended; None for a draw of unknown extent (matplotlib's own): `Renderer.area` is made of them
        self.drawn = None
        self.active = False  # whether installed: this renderer measures and draws text here

    def install(self):
        if not _check(): return
        self._install()

    def _install(self):
        r = self.r
        r.draw_text, r.get_text_width_height_descent, r._get_font_height_metrics = \
            self.draw_text, self.metrics, self.height_metrics
        self.active = True

    def uninstall(self):
        self.active = False
        for k in ('draw_text', 'get_text_width_height_descent', '_get_font_height_metrics'): self.r.__dict__.pop(k, None)

    def _face(self, prop) -> _Face:
        # keyed by the settings the hinting flag and the font's scaling are read from (the flag itself is made only
        # on a miss: matplotlib builds its mapping on every call), read with `_get` (past checks that concern 'backend')
        rc = mpl.rcParams._get
        key = (hash(prop), self.r.dpi, rc('text.hinting'), rc('text.hinting_factor'), rc('text.kerning_factor'))
        face = _FACES.get(key)
        if face is None:
            if len(_FACES) > 64: _FACES.clear()
            face = _FACES[key] = _Face(get_font(fontManager._find_fonts_by_props(prop)), prop.get_size_in_points(),
                                       self.r.dpi, get_hinting_flag())
        return face

    def height_metrics(self, prop) -> tuple:
        """The font's ascent, descent and line gap in pixels, as `Text._get_layout` reads them from its tables (it asks
        a renderer for them when it can: here they are read once per font, not per text per frame)."""
        key = (hash(prop), self.r.dpi)
        if (m := _HEIGHTS.get(key)) is None:
            font = get_font(fontManager._find_fonts_by_props(prop))
            m = (None, None, None)
            for table_name, gap, ascent, descent in (('OS/2', 'sTypoLineGap', 'sTypoAscender', 'sTypoDescender'),
                                                     ('hhea', 'lineGap', 'ascent', 'descent')):
                table = font.get_sfnt_table(table_name)
                if table is None: continue
                scale = 1 / font.get_sfnt_table('head')['unitsPerEm'] * prop.get_size_in_points() * self.r.dpi / 72
                m = (table[ascent] * scale, -table[descent] * scale, table[gap] * scale)
                break
            _HEIGHTS[key] = m
        return m

    def metrics(self, s, prop, ismath):
        "`RendererAgg.get_text_width_height_descent`, from cached advances and ink heights."
        if ismath is False and s: return self._metrics(self._face(prop), s, prop)
        return RendererAgg.get_text_width_height_descent(self.r, s, prop, ismath)

    def _metrics(self, face, s, prop):
        "`metrics` of line `s` (not empty, not math) in `face`, the font of `prop`."
        if (ln := face.line(s)) is not None:
            _, _, w, lo, hi = ln
            return w / 64.0, (hi - lo) / 64.0, -lo / 64.0
        return RendererAgg.get_text_width_height_descent(self.r, s, prop, False)

    def layout(self, text) -> tuple | None:
        """`text._get_layout(renderer)` (matplotlib 3.11's arithmetic, step for step) from the cached metrics, for a text
        this renderer measures (installed) that is neither rotated, wrapped, TeX nor math; else None. Its own layout
        costs a frame's text more than its metrics: a font properties' copy and hash, per line, on the way to the cache."""
        if (got := self._layout(text)) is None: return None
        bounds, lines, descent = got[0]
        return Bbox.from_bounds(*bounds), lines, descent

    def _layout(self, text) -> tuple | None:
        """(`layout` of `text`, its box as bounds (a `Bbox` costs a frame's text more than its drawing needs it), the
        `_Face` of its font), or None: the font's hash and settings read once a text, not a line."""
        if (not self.active or text.get_usetex() or text.get_wrap() or text.get_rotation() != 0
                or text.get_rotation_mode() not in ('default', 'anchor')): return None
        prop, parse = text._fontproperties, text.get_parse_math()
        lines = text.get_text().split('\n')
        clean = [ln if not parse else None if cbook.is_math_text(ln) else ln.replace(r'\$', '$') for ln in lines]
        if None in clean: return None
        face = self._face(prop)
        if (heights := face.heights) is None: heights = face.heights = self.height_metrics(prop)
        min_ascent, min_descent, line_gap = heights
        if min_ascent is None or min_descent is None: return None
        if len(lines) == 1: line_gap = 0
        normal, spacing = text._linespacing == 'normal', text._linespacing
        thisy, wads, ys = 0.0, [], []
        for ln in clean:
            w, h, d = self._metrics(face, ln, prop) if ln else (0, 0, 0)
            a = h - d
            if normal:
                a = max(a, min_ascent) + line_gap / 2
                d = max(d, min_descent) + line_gap / 2
            else:
                line_height = spacing * (min_ascent + min_descent)
                leading = line_height - (a + d)
                a += leading / 2
                d += leading / 2
            baseline = a - thisy
            thisy -= a
            wads.append((w, a, d))
            ys.append(thisy)
            thisy -= d
        descent = d
        ws = [w for w, a, d in wads]
        width = max(ws)
        xmin, xmax, ymax, ymin = 0, width, 0, ys[-1] - descent
        malign = text._get_multialignment()
        xs = [0.0 if malign == 'left' else 0.0 + width / 2 - w / 2 if malign == 'center' else 0.0 + width - w for w in ws]
        size_horiz = (xmax - xmin, ymax - ymin)
        # unrotated, the box's corners are its own: (xmin, ymin), (xmin, ymax), (xmax, ymax), (xmax, ymin)
        bx0, bx1, by0, by1 = min(xmin, xmax), max(xmin, xmax), min(ymin, ymax), max(ymin, ymax)
        width_rot, height_rot = bx1 - bx0, by1 - by0
        halign, valign = text._horizontalalignment, text._verticalalignment
        if text.get_rotation_mode() != 'anchor':
            offsetx = bx0 if halign == 'left' else bx1 if halign == 'right' else (bx0 + bx1) / 2
            offsety = (by0 if valign == 'bottom' else by1 if valign == 'top' else (by0 + by1) / 2 if valign == 'center'
                       else by0 + descent if valign == 'baseline' else by0 + height_rot - baseline / 2)
        else:
            offsetx = xmin if halign == 'left' else xmax if halign == 'right' else (xmin + xmax) / 2
            offsety = (ymin if valign == 'bottom' else ymax if valign == 'top' else (ymin + ymax) / 2 if valign == 'center'
                       else ymax - baseline if valign == 'baseline' else ymax - baseline / 2)
        xys = [(x - offsetx, y - offsety) for x, y in zip(xs, ys)]
        return ((bx0 - offsetx, by0 - offsety, width_rot, height_rot), list(zip(lines, wads, xys)),
                ((xmin - offsetx, ymin - offsety), size_horiz)), face

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        "`RendererAgg.draw_text`, pasting cached glyph bitmaps as Agg's own `draw_text_image` does."
        special = mtext is not None and (getattr(mtext, 'get_fontfeatures', lambda: None)() is not None
                                         or getattr(mtext, 'get_language', lambda: None)() is not None)
        face = None if ismath or angle != 0 or special or not s else self._face(prop)
        placed = None if face is None else self._placed(face, s, x, y, gc.get_antialiased())
        if placed is None: return self._matplotlib(gc, x, y, s, prop, angle, ismath, mtext)
        if placed: self._paste(gc, [placed])  # (a line of spaces pastes nothing)

    def _placed(self, face, s, x, y, antialiased) -> tuple | None:
        "`_place` of line `s` with its baseline's start at (x, y), kept for this render; None if `s` is not simple."
        H, W = int(self.r.height), int(self.r.width)
        key = (face, s, x, y, bool(antialiased), H, W, self.r.height)
        if (placed := self.placed.get(key)) is None:
            if (ln := face.line(s)) is None: return None
            if len(self.placed) > 256: self.placed.clear()
            placed = self.placed[key] = self._place(face, ln, x, y, RenderMode.NORMAL if antialiased else RenderMode.MONO,
                                                    H, W)
        return placed

    def _paste(self, gc, lines):
        """Paste placed lines `lines` (`_place`, not empty) in colour `gc`, one after the other: blended at once where
        the blend table is exact, else glyph by glyph through Agg's `draw_text_image`, as matplotlib pastes them."""
        H, W = int(self.r.height), int(self.r.width)
        if len(lines) == 1: box, meet = lines[0][1], False
        else:
            box = tuple(f(p[1][i] for p in lines) for i, f in enumerate((min, min, max, max)))
            meet = any(_meet(a, b) for i, b in enumerate(lines) for a in lines[:i])
        lin, v, cuts = _rounds(lines, meet)
        if self.drawn is not None: self.drawn.append((box[1], box[3], box[0], box[2]))
        table = self._table(gc, box, H, W)
        if table is not None and \
                table.blend(np.asarray(self.r._renderer).reshape(-1).view(np.uint32), lin, v, cuts): return
        paste = self.r._renderer.draw_text_image
        for p in lines:
            for g, x0, y0, *_ in p[0]: paste(g[0], x0, y0 + g[0].shape[0], 0, gc)  # as matplotlib: glyph by glyph

    def draw_plain(self, text, patch_draw=None) -> bool:
        """Draw `text` as its `Text.draw` would (with this renderer installed), its lines laid out by `layout` and pasted
        at once (`_paste`), its box (if any) drawn by `patch_draw(patch)` if given; False, having drawn nothing, unless
        it is a plain `Text` (see `layout`; no path effects, filter or rasterizing) of lines the cached glyphs draw."""
        r = self.r
        if (type(text) is not Text or not self.active or text.get_path_effects() or text.get_rasterized()
                or text.get_agg_filter() is not None or r._rasterizing or not r.flipy()): return False
        if not text.get_visible() or text.get_text() == '':
            text._renderer = r
            return True
        if (got := self._layout(text)) is None: return False
        layout, face = got
        lines = layout[1]
        if len(lines) == 1 and (getattr(text, 'get_fontfeatures', lambda: None)() is not None
                                or getattr(text, 'get_language', lambda: None)() is not None): return False
        x, y = text._x, text._y
        if type(x) in _NUMBERS and type(y) in _NUMBERS: x, y = float(x), float(y)  # (not masked; units leave them be)
        else:
            if np.ma.is_masked(x): x = np.nan
            if np.ma.is_masked(y): y = np.nan
            x, y = float(text.convert_xunits(x)), float(text.convert_yunits(y))
        posx, posy = text.get_transform().transform((x, y))
        if not (math.isfinite(posx) and math.isfinite(posy)): return False  # matplotlib skips it, or warns
        aa, canvash = text._antialiased, r.get_canvas_width_height()[1]
        parse, placed = text.get_parse_math(), []
        for line, _, (lx, ly) in lines:
            s = line.replace(r'\$', '$') if parse else line
            if not s: continue  # matplotlib pastes nothing for an empty line
            if (p := self._placed(face, s, lx + posx, canvash - (ly + posy), aa)) is None: return False
            if p: placed.append(p)
        text._renderer = r
        if patch := text._bbox_patch:  # `Text.update_bbox_position_size` of an unrotated text, from what is known here
            _, _, ((x_box, y_box), (w_box, h_box)) = layout
            patch.set_bounds(0., 0., w_box, h_box)
            patch.set_transform(Affine2D().translate(posx + x_box, posy + y_box))
            patch.set_mutation_scale(r.points_to_pixels(text.get_size()))
            (patch.draw if patch_draw is None else patch_draw)(r)
        gc = r.new_gc()
        gc.set_foreground(mcolors.to_rgba(text.get_color()), isRGBA=True)
        gc.set_alpha(text.get_alpha())
        gc.set_url(text._url)
        gc.set_antialiased(aa)
        gc.set_snap(text.get_snap())
        text._set_gc_clip(gc)
        if placed: self._paste(gc, placed)
        gc.restore()
        text.stale = False
        return True

    def _matplotlib(self, *args):
        if self.drawn is not None: self.drawn.append(None)
        return RendererAgg.draw_text(self.r, *args)

    def _place(self, face, ln, x, y, mode, H, W) -> tuple:
        """Line `ln` (`_Face.line`) with its baseline's start at (x, y): its inked glyphs placed (`_at`, in canvas pixels
        from the top left), the box they cover, each glyph's inked pixels (indices in the canvas) and their coverages,
        and each glyph's round (`_rounds`), or () if all go in one. A glyph whose ink starts left of where an earlier
        one's ends might ink a pixel of it: it goes one round after the latest such glyph (most lines have one round).
        Empty for a line of spaces."""
        ty = round(0x40 * (self.r.height - y))  # as matplotlib: its glyphs sit on one baseline
        if not (at := face.placed(ln, x, mode, ty, H, W, self.pens)): return ()
        _, left, row, start, end, right, bottom, lin, v = zip(*at)
        box = (min(left), min(row), max(right), max(bottom))
        if not any(map(ge, accumulate(end, max), start[1:])): return at, box, lin, v, ()
        rounds = [0] * len(at)
        for j in [j for j, e, s in zip(count(1), accumulate(end, max), start[1:]) if e >= s]:
            rounds[j] = 1 + max(rounds[i] for i in range(j) if end[i] >= start[j])
        return at, box, lin, v, rounds

    def _table(self, gc, box, H, W):
        """The `_Blend` of `gc`'s colour where blending through it gives Agg's pixels in `box` (x0, y0, x1, y1 from the
        top left): inside the canvas and inside its clip box by a pixel (Agg clips to the box rounded to pixels)."""
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > W or y1 > H: return None
        if (clip := gc.get_clip_rectangle()) is not None:
            (cx0, cy0), (cx1, cy1) = clip.get_points()
            if not (cx0 + 1 <= x0 and x1 <= cx1 - 1 and cy0 + 1 <= H - y1 and H - y0 <= cy1 - 1): return None
        key = (tuple(gc.get_rgb()), gc.get_alpha(), gc.get_forced_alpha(), gc.get_antialiased())
        table = _BLENDS.get(key, _MISSING)
        if table is _MISSING:
            if len(_BLENDS) > 64: _BLENDS.clear()
            table = _BLENDS[key] = _Blend.of(gc)
        return table


_BLENDS = {}  # (colour, alpha, forced alpha, antialiased) -> _Blend, or None where Agg's blend is not a per-channel table


class _Blend:
    """Agg's blend of a text colour into opaque pixels, per channel, as a table of (coverage, channel value) -> value,
    read from Agg itself: `draw_text_image` of every coverage 0..255 onto every grey 0..255. Blending coverage through
    it gives Agg's pixels at a fraction of its cost (Agg samples the coverage through a spline36 image filter per
    pixel, an identity at whole-pixel offsets, then blends unpremultiplied with a division per channel)."""
    def __init__(self, rgb):
        # per channel, coverage v and value d at v * 256 + d: the blended value, in its place in a little-endian
        # RGBA uint32 (alpha stays 255: opaque pixels stay opaque)
        self.r, self.g, self.b = (rgb[c].astype(np.uint32) << 8 * c for c in range(3))
        self.b |= np.uint32(0xFF000000)
        self.onto = {}  # opaque pixel value -> its 256 blends, by coverage (text over one colour: a paper, a box)

    def _onto(self, d:int) -> np.ndarray:
        "The pixel `d` (opaque) becomes with coverage 0..255 blended into it: the tables' rows for its three channels."
        if (out := self.onto.get(d)) is None:
            if len(self.onto) > 64: self.onto.clear()
            v = np.arange(256, dtype=np.uint32) << 8
            out = self.onto[d] = self.r[v | d & 255] | self.g[v | d >> 8 & 255] | self.b[v | d >> 16 & 255]
        return out

    @classmethod
    def of(cls, gc):
        if sys.byteorder != 'little': return None
        r = RendererAgg(256, 256, 72)
        g = r.new_gc()
        g.copy_properties(gc)
        g.set_clip_rectangle(None); g.set_clip_path(None)
        buf = np.asarray(r._renderer)
        grey = np.arange(256, dtype=np.uint8)
        buf[..., :3], buf[..., 3] = grey[:, None, None], 255  # row d: grey d; column v: coverage v
        r._renderer.draw_text_image(np.repeat(grey[None], 256, 0), 0, 256, 0, g)
        if not (buf[..., 3] == 255).all() or not (buf[:, 0, :3] == grey[:, None]).all(): return None
        return cls(np.ascontiguousarray(buf[..., :3].transpose(2, 1, 0)).reshape(3, -1))

    def blend(self, px, lin, v, cuts=()) -> bool:
        """Blend coverages `v` (uint8) into pixels `lin` (indices) of `px`, a canvas's RGBA pixels as uint32, as
        `draw_text_image` would: in rounds, `lin` cut at `cuts` (offsets), blended one after the other (a pixel repeats
        only in different rounds: `GlyphText._place`). False, having drawn nothing, if a pixel is not opaque (the table
        holds Agg's blend into opaque pixels only)."""
        old = px[lin]
        one = len(old) and (old == old[0]).all()  # one colour under: a paper, a box (most text)
        if old[0] < 0xFF000000 if one else (old < 0xFF000000).any(): return False
        rounds = [slice(a, b) for a, b in zip((0, *cuts), (*cuts, len(lin)))] if cuts else [None]
        for k, m in enumerate(rounds):
            at, d, c = (lin, old, v) if m is None else (lin[m], old[m] if k == 0 else px[lin[m]], v[m])
            # (`take`: half the cost of indexing a table by a uint8 array)
            if one and k == 0 or k and (d == d[0]).all(): px[at] = self._onto(int(d[0])).take(c)  # a row of the tables
            else:
                vv = c.astype(np.uint32) << 8
                px[at] = self.r.take(vv | d & 255) | self.g.take(vv | d >> 8 & 255) | self.b.take(vv | d >> 16 & 255)
        return True


def _probe(fast:bool) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3.2, 1.2), dpi=100)
    fig.text(.02, .95, 'step 12  loss 0.9871\nw=2.953  b=-1.08e-05', va='top', family='monospace', fontsize=10,
             bbox=dict(boxstyle='round', fc='white', alpha=.85))
    fig.text(.02, .25, 'AVATAR office 7.5%, Tj\nfit off the chart: fluff', fontsize=10)
    canvas = FigureCanvasAgg(fig)
    if fast: GlyphText(canvas.get_renderer())._install()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _same_layouts() -> bool:
    "Whether `GlyphText.layout` lays probe texts out as this matplotlib's `Text._get_layout` does."
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3.2, 1.2), dpi=100)
    r = FigureCanvasAgg(fig).get_renderer()
    g = GlyphText(r)
    g._install()
    for kw in (dict(va='top', family='monospace', fontsize=10), dict(ha='center', va='baseline', multialignment='right'),
               dict(ha='right', va='center_baseline', linespacing=1.5, rotation_mode='anchor')):
        t = fig.text(.1, .5, 'step 12  loss 0.9871\n\nw=2.953  b=-1.08e-05 Tj', **kw)
        mine, theirs = g.layout(t), t._get_layout(r)
        if mine is None or mine[0].bounds != theirs[0].bounds or mine[1:] != theirs[1:]: return False
    return True


def _check() -> bool:
    "Whether the cached path draws and lays out exactly what matplotlib does (checked once a process, on probe text)."
    global _ACTIVE
    if _ACTIVE is None:
        try: _ACTIVE = _INTERNALS and np.array_equal(_probe(True), _probe(False)) and _same_layouts()
        except Exception: _ACTIVE = False
    return _ACTIVE

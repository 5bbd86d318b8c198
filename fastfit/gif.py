"""Frames to GIF (or APNG) bytes: one palette shared by every frame (the moving artists' colours exact), each frame
stored as the box that changed since the previous one. Used by the .gif writer, the notebook display (a GIF) and the
.html page (an APNG of the same frames, boxes and delays), whose player steps through the same image."""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np
from matplotlib.colors import to_rgba_array
from PIL import Image

from .render import Renderer

__all__ = ['Palette', 'GifStream', 'ApngStream', 'apng_frames', 'gif_of', 'check_gif_fps']

TRANSPARENT = 255  # the palette index a frame's unchanged pixels get
MIN_DELAY, MAX_DELAY = 2, 65535  # GIF delays are whole hundredths of a second in 16 bits; viewers slow delays under 2
HOLD_LAST = 150  # hundredths of a second the last frame stays up longer before the animation starts again: the end is read


def _packed(rgba) -> np.ndarray:
    "RGBA uint8 (H, W, 4) -> (H, W) uint32 0xBBGGRR."
    return np.ascontiguousarray(rgba).view(np.uint32)[..., 0] & 0xFFFFFF


def artist_colours(artists, most:int=8) -> list:
    "The solid colours of moving artists (a line's colour must stay exact in a 256-colour GIF)."
    out = []
    for a in artists:
        for get in ('get_color', 'get_facecolor', 'get_edgecolor'):
            try: cs = to_rgba_array(getattr(a, get)())
            except Exception: continue
            # A shaded surface (a mesh of thousands of colours) needs no exact colour: it would crowd the lines' out.
            if len(cs) > most and len(np.unique(cs, axis=0)) > most: continue
            out += [tuple(int(round(v * 255)) for v in c[:3]) for c in cs if c[3] == 1]
    return out


def _colour_counts(frames:list) -> tuple:
    "(distinct packed colours, their pixel counts) over `frames` (flat): the first counted, the others by what they change."
    first = frames[0]
    parts = [np.unique(first, return_counts=True)]
    for f in frames[1:]:  # each frame = the first, less the pixels it changes, plus what they become
        d = np.flatnonzero(f != first)  # (gathering by index costs less than masking twice)
        (a, ca), (b, cb) = np.unique(f.take(d), return_counts=True), np.unique(first.take(d), return_counts=True)
        parts += [(a, ca), (b, -cb), parts[0]]
    u, inv = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    c = np.bincount(inv.ravel(), weights=np.concatenate([p[1] for p in parts])).astype(np.int64)
    return u[c > 0], c[c > 0]


class Palette:
    """At most 255 colours shared by every frame (index 255 is kept for transparency, GIF's and APNG's): the most common colours of
    the sampled frames and of the moving artists exactly, the rest by median cut. `index(rgba)` maps a frame."""
    BLOCK = 256  # colours matched to the palette at once (`_nearest`)

    def __init__(self, samples:list, exact:list=()):
        u, c = _colour_counts([_packed(f).ravel() for f in samples])
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
        # packed colour -> 255 - its palette entry (the nearest, for colours not in it; at most 255 entries, so 1..255),
        # 0 while not seen yet: a lookup is one gather and one bit flip. np.zeros maps zeroed pages lazily: only the
        # pages of colours met are ever touched (filling 2**24 entries takes ~50 ms).
        self._lut = np.zeros(1 << 24, dtype=np.uint8)
        self._lut[self.packed] = 255 - np.arange(len(cols))
        # |x-p|^2 - |x|^2 = |p|^2 - 2 x.p = (x, 1).(-2p, |p|^2): whole numbers under 2**24 (channels <= 255) at every
        # step of the sum, so float32 holds them exactly, in any order BLAS adds them
        rgb = self.rgb.astype(np.int64)
        self._p4 = np.vstack([-2 * rgb.T, (rgb ** 2).sum(1)]).astype(np.float32)

    def __len__(self): return len(self.packed)

    def _nearest(self, px):
        "Index of the nearest palette colour (RGB distance; the first of equals) for each packed colour in `px`."
        x = np.ascontiguousarray(px, np.uint32).view(np.uint8).reshape(-1, 4).astype(np.float32)  # R, G, B, 0 (packed)
        x[:, 3] = 1
        out = np.empty(len(px), np.intp)
        # in blocks small enough that BLAS keeps the product on one thread: on a busy machine a threaded product of
        # a first frame's ~1,000 colours cost ~8 ms of CPU, against ~0.2 ms in blocks
        for i in range(0, len(px), self.BLOCK): out[i:i + self.BLOCK] = (x[i:i + self.BLOCK] @ self._p4).argmin(1)
        return out

    def lookup(self, px) -> np.ndarray:
        "uint8 palette indices of packed colours `px` (any shape): the nearest colour, no dithering."
        idx = self._lut.take(px)
        if (miss := np.flatnonzero(idx == 0)).size:
            new = px.reshape(-1)[miss]
            # a frame's new colours are mostly distinct (anti-aliased edges), but a first frame's repeat
            u, inv = np.unique(new, return_inverse=True) if len(new) > 1024 else (new, None)
            near = 255 - self._nearest(u).astype(np.uint8)
            self._lut[u] = near
            idx.reshape(-1)[miss] = near if inv is None else near[inv.reshape(-1)]
        return np.invert(idx, out=idx)

    def index(self, rgba) -> np.ndarray:
        "(H, W) uint8 palette indices of an RGBA frame."
        return self.lookup(_packed(rgba))

    def bytes(self, n=256, fill=(1, 2, 3)) -> bytes:
        "The palette as n RGB triples; unused entries get a colour not in it (the transparent index stays distinct)."
        used = set(self.packed.tolist())
        while (fill[0] | fill[1] << 8 | fill[2] << 16) in used: fill = (fill[0] + 1, *fill[1:])
        return self.rgb.tobytes() + bytes(fill) * (n - len(self))

    def image(self, idx) -> Image.Image:
        "Palette indices `idx` as a Pillow 'P' image with this palette."
        if not hasattr(self, '_bytes'): self._bytes = self.bytes()
        im = Image.fromarray(idx, 'P')
        im.putpalette(self._bytes)
        return im


def check_gif_fps(fps):
    """An error unless a GIF can show `fps` frames per second (delays are whole hundredths of a second, 16 bits): the one
    fps rule of every writer and display (the notebook embeds a GIF, the .html page an APNG with the same delays; .mp4
    keeps to it too)."""
    if fps > 100 / MIN_DELAY:
        raise ValueError(f"fps={fps:g} is too fast for a GIF, which every animation shows as (.gif and the notebook "
                         f"display embed one, the .html page the same frames at the same delays): its frame delays are "
                         f"whole hundredths of a second and browsers play delays under 0.02 s at 0.1 s; use fps <= 50")
    if fps < 100 / MAX_DELAY:
        raise ValueError(f"fps={fps:g} is too slow for a GIF (a frame shows at most {MAX_DELAY / 100:g} s): "
                         f"use fps >= {math.ceil(1e4 * 100 / MAX_DELAY) / 1e4:g}")


def _candidates(a, b, lo=0, hi=None) -> np.ndarray:
    """Ascending indices in lo:hi (by default all) of flat uint32 frames `a` and `b` holding every index where they
    differ, and maybe some where they do not: pixels are compared two at a time (as uint64), which halves the pass over
    the frame, and both pixels of a pair that differs are returned (finding which one differs costs more than what the
    caller does with the other: it looks up both, and a pixel that did not change keeps its palette index)."""
    hi = len(a) if hi is None else hi
    lo -= lo % 2  # pairs at even indices: aligned as the frame is
    end = hi - (hi - lo) % 2
    pairs = np.flatnonzero(a[lo:end].view(np.uint64) != b[lo:end].view(np.uint64)) * 2 + lo
    both = np.stack([pairs, pairs + 1], 1).reshape(-1)
    return np.append(both, end) if end < hi and a[end] != b[end] else both


def _rows(a, b) -> tuple | None:
    """The rows (first, end) holding the areas `a` and `b` of two frames (`Renderer.area`: where each differs from its
    still frame), where the two frames may differ; None if either is unknown or their backgrounds are not the same."""
    if a is None or b is None or a[0] != b[0]: return None
    return min(a[1], b[1]), max(a[2], b[2])


def _lzw(idx, box=None) -> bytes:
    """GIF image data of palette indices `idx` (H, W uint8), or of its part `box` (x0, y0, x1, y1; read in place, and
    `idx` must hold a row below it: Pillow maps whole rows): code size 8, Pillow's LZW sub-blocks, terminator."""
    (h, w), buf, stride = idx.shape, np.ascontiguousarray(idx), 0
    if box is not None:
        x0, y0, x1, y1 = box
        buf, stride, w, h = buf.reshape(-1)[y0 * w + x0:], w, x1 - x0, y1 - y0
    return b'\x08' + Image.frombuffer('L', (w, h), buf, 'raw', 'L', stride, 1).tobytes('gif', 'L') + b'\x00'


# The GIF container is written here by hand; the LZW coding is Pillow's (`_lzw`). Pillow's own multi-frame writer can
# express the same file (`save_all=True`, `palette=` ours, `optimize=True`, `transparency=255`: the same changed boxes
# and transparent unchanged pixels, byte for byte the same output), but it is slower: it copies, remaps and diffs every
# whole frame in Python-driven steps, where this looks only at the pixels that changed. Measured by bench/animation.py
# (100 frames, dpi 80, the same palette indices, median of 5): `fit` 0.124 s here vs 0.683 s (5.5x), `fit`+`surface`
# +`loss` 0.227 s vs 0.703 s (3.1x), identical bytes. Both at least 2x: the hand-written container stays.
class GifStream:
    """RGBA frames in, one at a time (`add`), a looping GIF out (`getvalue`), holding one frame and the compressed
    ones: one global palette; each frame stores only the box that changed, unchanged pixels in it transparent;
    identical frames are merged and their durations added (as Pillow does); the last stays up `HOLD_LAST` longer.
    `counts[i]`: how many frames the i-th GIF frame stands for."""
    def __init__(self, pal:Palette, fps:float):
        self.pal, self.fps = pal, fps
        self.prev = self.idx = self.area = self.boxes = None
        self.n, self.chunks, self.counts, self.size = 0, [], [], None

    def _delay(self, k) -> int: return round((k + 1) * 100 / self.fps) - round(k * 100 / self.fps)

    def add(self, rgba, area=None):
        """Append a frame (H, W, 4 uint8); `area`, if known, is the `Renderer.area` it was drawn with: the frame is compared
        with the previous one only inside their areas."""
        raw = np.ascontiguousarray(rgba).view(np.uint32)[..., 0]  # a pixel as one number: RGBA, alpha in the top byte
        d = self._delay(self.n)
        self.n += 1
        rows, self.area = _rows(self.area, area), area
        if self.prev is None:
            self.size = raw.shape[::-1]
            self.prev = raw.copy()  # the last frame added, kept up to date where frames change
            self.idx = self.pal.lookup(raw & 0xFFFFFF)
            # a frame's changed box is written in place here, read from it and made transparent again: no new box to fill
            self.boxes = np.full((raw.shape[0] + 1, raw.shape[1]), TRANSPARENT, np.uint8)
            return self._chunk(d, self.idx, False)
        flat, prev = raw.reshape(-1), self.prev.reshape(-1)
        # a few thousand pixels of a frame's hundreds of thousands
        W = raw.shape[1]
        changed = _candidates(flat, prev) if rows is None else _candidates(flat, prev, rows[0] * W, rows[1] * W)
        if len(changed):
            now = flat.take(changed)  # (`take`: faster than indexing)
            prev[changed] = now
            new = self.pal.lookup(now & 0xFFFFFF)  # only the pixels that (may have) changed are looked up
            flat = self.idx.reshape(-1)  # a view: updating it updates the current frame's indices
            # a pixel that did not change keeps its index, and changed colours (or alpha alone) can map to the same one
            if len(moved := np.flatnonzero(new != flat.take(changed))):
                changed, new = changed.take(moved), new.take(moved)
                flat[changed] = new
                xs = changed - changed // W * W  # (`//` by a number is fast, `%` is not)
                box = (int(xs.min()), int(changed[0] // W), int(xs.max()) + 1, int(changed[-1] // W) + 1)  # (ascending: rows at its ends)
                boxes = self.boxes.reshape(-1)
                boxes[changed] = new
                self._chunk(d, self.boxes, True, box)
                boxes[changed] = TRANSPARENT
                return
        self.chunks[-1][0] += d  # nothing changed: the previous frame stays up longer
        self.counts[-1] += 1

    def _chunk(self, d, idx, trans, box=None):
        "Append a frame of palette indices `idx` (or of its part `box`, as `code`'s) shown `d` hundredths of a second."
        x0, y0, x1, y1 = (0, 0, *idx.shape[::-1]) if box is None else box
        self.chunks.append([d, (x0, y0), (x1 - x0, y1 - y0), trans, self.code(idx, box)])
        self.counts.append(1)

    code = staticmethod(_lzw)  # a box's image data

    def getvalue(self) -> bytes:
        "The GIF file's bytes."
        w, h = self.size
        out = [b'GIF89a', struct.pack('<HHBBB', w, h, 0xF7, 0, 0), self.pal.bytes(),
               b'!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00']  # loop forever
        for i, (d, (x, y), (bw, bh), trans, data) in enumerate(self.chunks):
            if i == len(self.chunks) - 1: d += HOLD_LAST  # a pause on the end before looping back to the start
            out += [b'!\xf9\x04', struct.pack('<BHBB', 0x04 | trans, min(d, MAX_DELAY), TRANSPARENT, 0),
                    b',', struct.pack('<HHHHB', x, y, bw, bh, 0), data]
        out.append(b';')
        return b''.join(out)


def _deflated(idx, box=None, level=1, strategy=zlib.Z_RLE) -> bytes:
    """PNG image data (zlib) of palette indices `idx` (H, W uint8), or of its part `box` (x0, y0, x1, y1): each row after
    its filter byte 0 (none), coded by zlib's run-length strategy (by default). A changed box is mostly runs of the
    transparent index; this codes it ~2x faster than Pillow's GIF LZW, ~5-20% larger (bench/animation.py's panel sets)."""
    x0, y0, x1, y1 = (0, 0, *idx.shape[::-1]) if box is None else box
    rows = np.empty((y1 - y0, x1 - x0 + 1), np.uint8)
    rows[:, 0] = 0
    rows[:, 1:] = idx[y0:y1, x0:x1]
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return z.compress(rows) + z.flush()


def _png_chunk(kind:bytes, data:bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(data, zlib.crc32(kind)))


class ApngStream(GifStream):
    """The same frames as `GifStream` (palette, changed boxes with the unchanged pixels transparent, merged repeats,
    delays in hundredths of a second, the last held `HOLD_LAST` longer, looping), written as an animated PNG: what the
    .html page embeds, as its zlib coding is faster than GIF's LZW. Browsers play it as an image where scripts do not run."""
    code = staticmethod(_deflated)

    def getvalue(self) -> bytes:
        "The APNG file's bytes: a palette image (index 255 transparent) whose frames are drawn over the last."
        w, h = self.size
        alpha = bytes([255] * TRANSPARENT + [0])
        out = [b'\x89PNG\r\n\x1a\n', _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 3, 0, 0, 0)),
               _png_chunk(b'PLTE', self.pal.bytes()), _png_chunk(b'tRNS', alpha),
               _png_chunk(b'acTL', struct.pack('>II', len(self.chunks), 0))]  # 0: loop forever
        seq = 0  # fcTL and fdAT chunks are numbered in one sequence
        for i, (d, (x, y), (bw, bh), trans, data) in enumerate(self.chunks):
            if i == len(self.chunks) - 1: d += HOLD_LAST
            # dispose none; blend 'over' for a changed box (its transparent pixels keep the frame below), 'source' first
            out.append(_png_chunk(b'fcTL', struct.pack('>IIIIIHHBB', seq, bw, bh, x, y, min(d, MAX_DELAY), 100, 0, trans)))
            out.append(_png_chunk(b'IDAT', data) if i == 0 else _png_chunk(b'fdAT', struct.pack('>I', seq + 1) + data))
            seq += 1 if i == 0 else 2
        out.append(_png_chunk(b'IEND', b''))
        return b''.join(out)


def apng_frames(data:bytes) -> list:
    """(RGB frame, delay in ms) of each frame of an APNG that `ApngStream` wrote (what a .html page embeds), each box
    drawn over the frame before as a browser does. Read here, as the player reads it: Pillow 9 (the oldest Pillow
    fastfit supports) shows the transparent pixels of a box blended 'over' in their palette colour."""
    pos, out, parts, fc, pal, trans, idx = 8, [], [], None, None, -1, None
    def flush():
        if fc is None: return
        _, w, h, x, y, num, den, _, over = fc
        rows = np.frombuffer(zlib.decompress(b''.join(parts)), np.uint8).reshape(h, w + 1)
        if rows[:, 0].any(): raise ValueError("not an APNG fastfit wrote: its rows are filtered")
        box, new = idx[y:y + h, x:x + w], rows[:, 1:]
        if over: np.copyto(box, new, where=new != trans)
        else: box[...] = new
        out.append((pal[idx], 1000 * num / (den or 100)))
    while pos + 8 <= len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body, pos = data[pos + 8:pos + 8 + n], pos + 12 + n
        if kind == b'IHDR': idx = np.zeros(struct.unpack('>II', body[:8])[::-1], np.uint8)
        elif kind == b'PLTE': pal = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b'tRNS': trans = body.find(b'\0')
        elif kind == b'fcTL':
            flush()
            fc, parts = struct.unpack('>IIIIIHHBB', body), []
        elif kind in (b'IDAT', b'fdAT'): parts.append(body if kind == b'IDAT' else body[4:])
    flush()
    return out


def gif_of(fr, fps:float, keep=None, check=None, each=None, stream=GifStream) -> tuple:
    """(GIF bytes, frame counts) of the frames of `fr` (a `Frames`; only the frame indices `keep`, if given), rendered
    and encoded one at a time (`stream=ApngStream`: APNG bytes of the same frames). The palette comes from four frames
    spread over the animation. `each(k)`, if given, is called once per kept frame `k` right after it is drawn (its
    artists set to frame `k`), in no particular order."""
    keep = list(range(len(fr))) if keep is None else list(keep)
    with Renderer(fr, check) as r:
        r.alone = True  # nothing else draws on its canvas until the last frame is encoded
        n = len(keep)
        picks = sorted({keep[0], keep[n // 3], keep[2 * n // 3], keep[-1]})
        samples = {}
        for k in picks:
            samples[k] = r.frame(k).copy(), r.area
            if each is not None: each(k)
        stream = stream(Palette([f for f, _ in samples.values()], exact=artist_colours(fr.artists)), fps)
        for k in keep:
            if k in samples: stream.add(*samples[k])
            else:
                stream.add(r.frame(k), r.area)
                if each is not None: each(k)
    return stream.getvalue(), stream.counts

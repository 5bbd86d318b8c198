"""The GIF encoder (fastfit/gif.py): every colour of a frame to its nearest palette entry."""
import numpy as np
import pytest

from fastfit.gif import Palette


def _nearest_by_hand(pal, px) -> np.ndarray:
    "Index of the nearest palette colour of each packed colour `px`: whole-number distances, the first of equals."
    rgb = np.stack([px & 255, px >> 8 & 255, px >> 16 & 255], -1).astype(np.int64)
    return ((rgb[:, None] - pal.rgb[None].astype(np.int64)) ** 2).sum(-1).argmin(1)


@pytest.mark.parametrize('n', [5, 300, 3000])  # new colours: one block, several blocks, many repeats (found once)
def test_colours_get_their_nearest_palette_entry_each_time_they_come(n):
    """Colours not in the palette get the nearest entry (the first of two as near), the same when they come again
    (from the table), in any shape of array, however many come at once."""
    rng = np.random.default_rng(n)
    frame = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)  # 1,600 colours: a median cut fills the palette
    frame[..., 3] = 255
    pal = Palette([frame])
    assert len(pal) == 255
    px = rng.integers(0, 1 << 24, n, dtype=np.uint32)
    px = np.concatenate([px, px[: n // 2], pal.packed[:7]])  # colours met twice in one frame, colours of the palette
    want = _nearest_by_hand(pal, px)
    assert np.array_equal(pal.lookup(px.copy()), want)
    assert np.array_equal(pal.lookup(px[::-1].copy()), want[::-1])  # now from the table
    assert np.array_equal(pal.lookup(px[: len(px) // 2 * 2].reshape(2, -1)), want[: len(px) // 2 * 2].reshape(2, -1))


def test_a_colour_halfway_between_two_entries_gets_the_first():
    frame = np.zeros((2, 2, 4), np.uint8)
    frame[..., 3] = 255
    for exact, first in (([(0, 0, 0), (2, 0, 0)], 0), ([(2, 0, 0), (0, 0, 0)], 2)):
        pal = Palette([frame], exact=exact)
        got = pal.lookup(np.array([1, 0x010000], np.uint32))  # (1, 0, 0) halfway; (0, 0, 1) nearest black
        assert pal.rgb[got[0], 0] == first and tuple(pal.rgb[got[1]]) == (0, 0, 0)


def test_colour_counts_are_those_of_every_frame_together():
    """Each sampled frame counted by what it changes from the first: the same colours and counts as counting them all,
    with frames equal to the first, wholly different, and colours of the first that no other frame has."""
    from fastfit.gif import _colour_counts
    rng = np.random.default_rng(0)
    first = rng.integers(0, 6, 500, dtype=np.uint32)
    some = first.copy()
    some[rng.integers(0, 500, 40)] = rng.integers(4, 9, 40, dtype=np.uint32)
    frames = [first, first.copy(), some, rng.integers(7, 12, 500, dtype=np.uint32)]
    for n in range(1, len(frames) + 1):
        u, c = _colour_counts(frames[:n])
        want = np.unique(np.concatenate(frames[:n]), return_counts=True)
        assert np.array_equal(u, want[0]) and np.array_equal(c, want[1])


@pytest.mark.parametrize('n,lo,hi', [(40, 0, 40), (41, 0, 41), (41, 3, 41), (41, 3, 40), (40, 1, 39), (41, 40, 41)])
def test_candidates_hold_every_pixel_that_changed(n, lo, hi):
    "Pixels compared two at a time, in even and odd lengths and bounds: every one that differs in lo:hi is a candidate."
    from fastfit.gif import _candidates
    rng = np.random.default_rng(n + lo + hi)
    for _ in range(20):
        a = rng.integers(0, 3, n, dtype=np.uint32)  # many equal pixels, some pairs differing in one pixel only
        b = a.copy()
        b[rng.integers(0, n, 5)] += 1
        got = _candidates(b, a, lo, hi)
        assert np.all(np.diff(got) > 0) and (len(got) == 0 or got[0] >= 0 and got[-1] < n)
        assert set((np.flatnonzero(a[lo:hi] != b[lo:hi]) + lo).tolist()) <= set(got.tolist())


@pytest.mark.parametrize('shape', [(6, 8), (7, 9)])  # even and odd frames (pixels compared two at a time)
@pytest.mark.parametrize('kind', ['GifStream', 'ApngStream'])
def test_each_gif_frame_shows_its_frames_palette_colours(shape, kind):
    """Decoded, every frame of a GifStream (or of the page's ApngStream) is its frame with each pixel in its palette
    colour, shown for its delay: changed boxes over the previous frames, unchanged pixels transparent, repeated frames
    merged; also where a colour changes but not its entry."""
    from PIL import Image

    from fastfit import gif
    from fastfit.gif import HOLD_LAST
    rng = np.random.default_rng(shape[1])
    frames = [rng.integers(0, 256, (*shape, 4), dtype=np.uint8)]
    frames[0][..., 3] = 255
    for k in range(12):
        f = frames[-1].copy()
        if k % 4 == 1: f[rng.integers(0, shape[0]), rng.integers(0, shape[1]), 0] ^= 1  # same entry, most likely
        elif k % 4 != 3:  # (3: the same frame again)
            at = rng.integers(0, shape[0], 3), rng.integers(0, shape[1], 3)
            f[at] = rng.integers(0, 256, (3, 4))
            f[at + (3,)] = 255
        frames.append(f)
    pal = Palette(frames[:1])
    st = getattr(gif, kind)(pal, 10)
    for f in frames: st.add(f)
    import io
    if kind == 'GifStream':
        with Image.open(io.BytesIO(st.getvalue())) as im:
            got = []
            for i in range(im.n_frames):
                im.seek(i)
                got.append((np.asarray(im.convert('RGB')), im.info['duration']))
    else: got = gif.apng_frames(st.getvalue())  # Pillow 9 blends the boxes' transparent pixels wrongly (test_browser: Chromium reads it)
    shown = np.cumsum([0, *st.counts[:-1]])
    assert len(got) == len(st.counts) < len(frames)
    for i, k in enumerate(shown):
        want = pal.rgb[pal.index(frames[k])]
        assert np.array_equal(got[i][0], want), (i, k)
        assert got[i][1] == 100 * st.counts[i] + 10 * HOLD_LAST * (i == len(shown) - 1), (i, k)


def _png_chunks(png:bytes) -> list:
    "(type, data) of every chunk of PNG bytes, read by hand: the signature, each chunk's length and CRC checked."
    import struct
    import zlib
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    q, out = 8, []
    while q < len(png):
        (n,), kind = struct.unpack('>I', png[q:q + 4]), png[q + 4:q + 8]
        assert q + 12 + n <= len(png), kind
        data = png[q + 8:q + 8 + n]
        assert struct.unpack('>I', png[q + 8 + n:q + 12 + n])[0] == zlib.crc32(kind + data), kind
        out.append((kind.decode('ascii'), data))
        q += 12 + n
    return out


@pytest.mark.parametrize('n', [1, 2, 13])  # a still (one frame), and frames with repeats merged
def test_apng_chunks_follow_the_apng_spec(n):
    """The page's APNG, walked chunk by chunk (wiki.mozilla.org/APNG_Specification): IHDR (8-bit palette), PLTE of 256,
    tRNS with only index 255 transparent, acTL (a frame per count, looping), then fcTL + IDAT (the default image is the
    first frame: the whole canvas, blend source) and fcTL + fdAT (boxes inside the canvas, blend over, dispose none),
    sequence numbers 0, 1, 2... in order, delays GifStream's in hundredths, IEND last; the GIF holds the same boxes."""
    import struct
    import zlib

    from fastfit.gif import HOLD_LAST, ApngStream, GifStream
    rng = np.random.default_rng(n)
    frames = [np.full((9, 11, 4), 255, np.uint8)]
    for k in range(1, n):
        f = frames[-1].copy()
        if k % 3: f[rng.integers(0, 9), rng.integers(0, 11), :3] = rng.integers(0, 256, 3)  # a one-pixel box
        frames.append(f)
    pal = Palette(frames)
    apng, gif = ApngStream(pal, 7), GifStream(pal, 7)
    for f in frames: apng.add(f); gif.add(f)
    chunks = _png_chunks(apng.getvalue())
    kinds = [k for k, _ in chunks]
    m = len(apng.counts)
    assert kinds == ['IHDR', 'PLTE', 'tRNS', 'acTL', 'fcTL', 'IDAT'] + ['fcTL', 'fdAT'] * (m - 1) + ['IEND']
    assert chunks[-1][1] == b''
    assert struct.unpack('>IIBBBBB', chunks[0][1]) == (11, 9, 8, 3, 0, 0, 0)
    assert len(chunks[1][1]) == 3 * 256 and chunks[2][1] == bytes([255] * 255 + [0])
    assert struct.unpack('>II', chunks[3][1]) == (m, 0) and m == len(gif.counts)
    seqs, boxes = [], []
    for kind, data in chunks[4:-1]:
        if kind != 'IDAT': seqs.append(struct.unpack('>I', data[:4])[0])  # (IDAT has no sequence number)
        if kind == 'fcTL':
            _, w, h, x, y, num, den, dispose, blend = struct.unpack('>IIIIIHHBB', data)
            assert w > 0 and h > 0 and x + w <= 11 and y + h <= 9 and den == 100 and dispose == 0
            assert blend == (len(boxes) > 0)  # source for the first frame, over (transparent index keeps) after
            boxes.append(((x, y), (w, h), num))
        elif kind == 'IDAT': assert len(zlib.decompress(data)) == 9 * (11 + 1)
    assert seqs == list(range(2 * m - 1)) and boxes[0][:2] == ((0, 0), (11, 9))
    assert boxes == [(xy, wh, min(d + HOLD_LAST * (i == m - 1), 65535)) for i, (d, xy, wh, *_) in enumerate(gif.chunks)]

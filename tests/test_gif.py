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

"The renderer's shortcuts draw matplotlib's own pixels: a moving probability mesh painted by lookup."
import matplotlib

matplotlib.use('Agg')
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from fastfit.render import LEGENDS_RELY_ON, Renderer, _Mesh  # noqa: E402


class _MeshFrames:
    "A figure whose moving artist is a pcolormesh recoloured every frame (as the boundary panel's background), points above."
    def __init__(self, alpha=1., n=30, frames=6):
        rng = np.random.default_rng(0)
        self.fig = Figure(figsize=(4, 3), dpi=100)
        ax = self.fig.add_subplot()
        self.mesh = ax.pcolormesh(np.linspace(-1.3, 2.1, n + 1), np.linspace(0, 1, n + 1) ** 1.5, np.zeros((n, n)), zorder=.5)
        self.mesh.set_array(None)
        ax.scatter(rng.random(40) * 3 - 1, rng.random(40), zorder=3)  # static, above the mesh
        self.colours = rng.random((frames, n * n, 4))
        self.colours[..., 3] = alpha
        self.artists, self.n = [self.mesh], frames

    def __len__(self): return self.n

    def draw(self, k):
        self.mesh.set_facecolor(self.colours[k])
        return self.artists


@pytest.mark.parametrize('alpha', [1., .6])
def test_a_moving_mesh_is_painted_with_matplotlibs_pixels(alpha):
    "Opaque cells are painted from a map of which cell each pixel shows; translucent ones drawn by matplotlib: both exact."
    fr = _MeshFrames(alpha)
    ax = fr.fig.axes[0]
    ax.set_axis_off()  # nothing static above the mesh: the whole frame is the mesh's own pixels
    ax.collections[1].remove()
    with Renderer(fr) as r:
        assert r.meshes  # the lookup is in use (it falls back per frame when translucent)
        blitted = [r.frame(k).copy() for k in range(len(fr))]
    for k in range(len(fr)):
        fr.draw(k)
        fr.fig.canvas.draw()
        assert np.array_equal(blitted[k], np.asarray(fr.fig.canvas.buffer_rgba())), k


def test_a_mesh_not_filling_a_box_is_painted_pixel_by_pixel():
    """A sheared mesh paints no rectangle: its pixels are painted one by one (a mesh filling its axes is painted row by
    row); both are matplotlib's pixels."""
    fr = _MeshFrames(frames=3)
    ax = fr.fig.axes[0]
    ax.set_axis_off()
    ax.collections[1].remove()
    X, Y = np.meshgrid(np.linspace(0, 1, 31), np.linspace(0, 1, 31))
    fr.mesh.set_array(None)
    fr.mesh.remove()
    fr.mesh = ax.pcolormesh(X + .4 * Y, Y, np.zeros((30, 30)), zorder=.5)
    fr.mesh.set_array(None)
    fr.artists = [fr.mesh]
    with Renderer(fr) as r:
        assert [m.block is None for m in r.meshes.values()] == [True]
        blitted = [r.frame(k).copy() for k in range(len(fr))]
    for k in range(len(fr)):
        fr.draw(k)
        fr.fig.canvas.draw()
        assert np.array_equal(blitted[k], np.asarray(fr.fig.canvas.buffer_rgba())), k
    fr = _MeshFrames(frames=2)
    with Renderer(fr) as r: assert [m.block is not None for m in r.meshes.values()] == [True]


def test_a_mesh_under_static_artists_looks_as_when_matplotlib_draws_it(monkeypatch):
    """With points and spines above it (composited from a layer, as before the lookup), the frames are the ones the
    renderer makes when matplotlib draws the mesh."""
    fr = _MeshFrames()
    with Renderer(fr) as r:
        assert r.meshes
        painted = [r.frame(k).copy() for k in range(len(fr))]
    monkeypatch.setattr(_Mesh, 'fits', staticmethod(lambda a: False))
    with Renderer(fr) as r:
        assert not r.meshes
        drawn = [r.frame(k).copy() for k in range(len(fr))]
    for k in range(len(fr)): assert np.array_equal(painted[k], drawn[k]), k


def test_a_mesh_and_the_points_above_it_are_repainted_where_cells_changed(monkeypatch):
    """Frames that recolour a few cells repaint only those cells' pixels, the points and spines above them blended in
    again (a frame far from the last, many cells changed, is painted whole): every frame is the one made by painting
    the whole mesh and compositing the layer over it."""
    fr = _MeshFrames(frames=8)
    rng = np.random.default_rng(2)
    for k in range(1, 6):  # frames 1-5 change a few cells each; 6 and 7 all of them
        fr.colours[k] = fr.colours[k - 1]
        fr.colours[k, rng.integers(0, 900, 40)] = rng.random((40, 4))
        fr.colours[k, :, 3] = 1
    with Renderer(fr) as r:
        [m] = r.meshes.values()
        assert m.above is r.steps[1]  # the layer of points composited right after the mesh
        order = [0, 1, 2, 3, 4, 5, 6, 7, 5, 4]
        blitted = [r.frame(k).copy() for k in order]
        assert m.memo is not None
    monkeypatch.setattr(_Mesh, 'paint_with', lambda *a: False)
    with Renderer(fr) as r:
        for f, k in zip(blitted, order): assert np.array_equal(f, r.frame(k)), k


def test_an_antialiased_mesh_is_drawn_by_matplotlib():
    "Antialiased cells blend at their seams: no lookup then."
    fr = _MeshFrames()
    fr.mesh._antialiased = True
    with Renderer(fr) as r: assert not r.meshes


class _TwinFrames:
    """A line moving under its axes' spines and translucent legend, and a line on a twin axes under the twin's spines,
    which lie on the first axes' (a layer over a layer, as the loss panel's accuracy): the lines cross none, a few or
    most of the static pixels above them."""
    def __init__(self):
        self.fig = Figure(figsize=(4, 3), dpi=100)
        ax = self.fig.add_subplot()
        ax.set_xlim(0, 1); ax.set_ylim(0, 1)
        self.line, = ax.plot([0, 1], [.5, .5], lw=2, zorder=2, label='loss')
        ax.legend(loc='center', framealpha=.7)
        tw = ax.twinx()
        tw.set_ylim(0, 1)
        self.twin, = tw.plot([0, 1], [.5, .5], lw=2, zorder=2, c='C1')
        self.rows = [(.3, .3, 2), (.5, .02, 2), (.5, 0, 2), (.5, .5, 80), (.99, .97, 3), (.3, .3, 2)]
        self.artists, self.n = [self.line, self.twin], len(self.rows)

    def __len__(self): return self.n

    def draw(self, k):
        y, y2, lw = self.rows[k]
        self.line.set_ydata([y, y]); self.line.set_linewidth(lw)
        self.twin.set_ydata([y2, 1 - y2])
        return self.artists


def test_layers_pasted_where_nothing_moved_under_them_are_the_layers_blended_over_every_pixel(monkeypatch):
    """Static artists above moving ones are composited from layers: pasted where nothing moved under them (the twin's
    spines over the first axes' spines included), blended where a line did (a few pixels or most): every frame is the
    one made by blending each layer over every pixel it covers."""
    from fastfit.render import _Layer
    def blend_all(self, buf):
        if self.box is None: return
        if self.at is None: return self._blend(buf[self.box])
        flat, px = buf.reshape(-1, 4), buf.reshape(-1).view(np.uint32)
        flat[self.at, :3] = (flat[self.at, :3] * self.keep + self.premult) // 255
        px[self.solid] = self.solid_rgb | px[self.solid] & 0xFF000000
    out = []
    for patch in (False, True):
        if patch: monkeypatch.setattr(_Layer, 'composite', blend_all)
        fr = _TwinFrames()
        with Renderer(fr) as r:
            r.alone = True
            layers = [s for s in r.steps if isinstance(s, _Layer) and s.at is not None]
            assert len(layers) == 2 and np.intersect1d(layers[0].solid, layers[1].at).size  # the twin's spines on the others
            out.append([r.frame(k).copy() for _ in range(2) for k in range(len(fr))])
    for k, (a, b) in enumerate(zip(*out)): assert np.array_equal(a, b), k


@pytest.mark.parametrize('size', [(6, 4), (7, 5)])  # an even and an odd number of pixels (pairs compared, or one by one)
def test_gif_stream_decodes_to_each_frames_palette_colours(size):
    "Frames changing a few pixels each (or only their alpha) decode to the palette colour of every pixel of every frame."
    import io

    from PIL import Image

    from fastfit.gif import GifStream, Palette
    rng = np.random.default_rng(1)
    cols = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    w, h = size
    frames = [np.concatenate([cols[rng.integers(0, 6, (h, w))], np.full((h, w, 1), 255, np.uint8)], -1)]
    for k in range(7):
        f = frames[-1].copy()
        if k == 3: f[1, 2, 3] = 200  # alpha alone: nothing to store
        elif k != 5:  # frame 5 repeats frame 4
            for _ in range(k % 3 + 1): f[rng.integers(h), rng.integers(w), :3] = cols[rng.integers(6)]
        frames.append(f)
    pal = Palette(frames[:1], exact=[tuple(c) for c in cols.tolist()])
    st = GifStream(pal, 10)
    for f in frames: st.add(f)
    got = []
    with Image.open(io.BytesIO(st.getvalue())) as im:
        for i in range(im.n_frames):
            im.seek(i)
            got += [np.asarray(im.convert('RGB'))] * st.counts[i]
    assert len(got) == len(frames) and len(st.counts) < len(frames)  # the repeats were merged
    for g, f in zip(got, frames): assert np.array_equal(g, f[..., :3])


def test_gif_stream_stores_each_change_as_its_box_at_the_frame_edges():
    "Changes in the corners and along the last row and column are stored as their bounding box, decoded pixel for pixel."
    import io

    from PIL import Image

    from fastfit.gif import GifStream, Palette
    h, w = 5, 7
    frames = [np.full((h, w, 4), 255, np.uint8)]
    for pts in ([(h - 1, w - 1)], [(0, 0)], [(h - 1, 2), (3, w - 1)], [(0, w - 1), (h - 1, 0)], [(2, 3)]):
        f = frames[-1].copy()
        for y, x in pts: f[y, x, :3] = 255 - f[y, x, :3]
        frames.append(f)
    st = GifStream(Palette(frames[:2]), 10)
    for f in frames: st.add(f)
    assert [tuple(c[1:3]) for c in st.chunks[1:]] == [((6, 4), (1, 1)), ((0, 0), (1, 1)), ((2, 3), (5, 2)), ((0, 0), (7, 5)),
                                               ((3, 2), (1, 1))]
    with Image.open(io.BytesIO(st.getvalue())) as im:
        for i, f in enumerate(frames):
            im.seek(i)
            assert np.array_equal(np.asarray(im.convert('RGB')), f[..., :3])

class _CaptionFrames:
    "A line moving under a caption in a translucent rounded box (the fit panel's), the caption's width changing."
    def __init__(self, frames=8):
        self.fig = Figure(figsize=(4, 3), dpi=100)
        ax = self.fig.add_subplot()
        ax.set_xlim(0, 1); ax.set_ylim(0, 1)
        ax.grid(alpha=.25)
        self.line, = ax.plot([0, 1], [0, 0], lw=2.5, zorder=5)
        self.text = ax.text(.02, .97, '', transform=ax.transAxes, va='top', family='monospace', zorder=6,
                            bbox=dict(boxstyle='round', fc='white', ec='0.7', alpha=.85))
        self.heights = np.r_[np.full(frames // 2, .3), np.linspace(.85, .97, frames - frames // 2)]  # then under the box
        self.artists, self.n = [self.line, self.text], frames

    def __len__(self): return self.n

    def draw(self, k):
        self.line.set_ydata([self.heights[k]] * 2)
        self.text.set_text(f"step {k * 7}  loss {1 / (k + 1):.{k % 3 + 2}f}\nw={k / 3:.3f}")
        return self.artists



class _LegendFrames(_CaptionFrames):
    "The caption's figure with a legend above the line (a layer), reaching out of the axes, where nothing moves."
    def __init__(self, frames=8):
        super().__init__(frames)
        self.fig.axes[0].legend(['moving'], loc='upper left', bbox_to_anchor=(.55, 1.12))

def test_a_caption_box_is_pasted_with_matplotlibs_pixels():
    """A caption's box drawn before in the same place over the same pixels is pasted; over a moving line matplotlib
    draws it: every frame is matplotlib's full draw of it."""
    fr = _CaptionFrames()
    with Renderer(fr) as r:
        blitted = [r.frame(k).copy() for _ in range(3) for k in range(len(fr))]  # kept the 2nd time, pasted the 3rd
        assert any(isinstance(v, tuple) for v in r.boxes.kept.values())
    for k in range(3 * len(fr)):
        fr.draw(k % len(fr))
        fr.fig.canvas.draw()
        assert np.array_equal(blitted[k], np.asarray(fr.fig.canvas.buffer_rgba())), k


def test_a_caption_box_with_a_clip_path_is_drawn_by_matplotlib():
    "State the cache cannot key on (a clip path) leaves the box to matplotlib."
    fr = _CaptionFrames(4)
    ax = fr.fig.axes[0]
    fr.text.set_clip_path(Circle((.3, .7), .6, transform=ax.transAxes))
    assert fr.text.get_bbox_patch().get_clip_path() is not None
    with Renderer(fr) as r:
        for k in range(len(fr)): r.frame(k)
        assert not any(isinstance(v, tuple) for v in r.boxes.kept.values())


def test_a_caption_boxs_area_is_measured_once_per_state(monkeypatch):
    """A box drawn by matplotlib each frame (a line moving under it) reports the area it may paint, measured once for
    each state of the box (its width changes with the caption): the same area as measured anew each frame."""
    import fastfit.render as render
    measured, measure = [], render._patch_area
    monkeypatch.setattr(render, '_patch_area', lambda *a: measured.append(measure(*a)) or measured[-1])
    fr = _CaptionFrames()
    with Renderer(fr) as r:
        areas = [r.frame(k) is not None and r.area for _ in range(2) for k in range(len(fr))]
        assert 0 < len(measured) == len(r.boxes.areas) < len(fr)  # the caption takes fewer widths than there are frames
    monkeypatch.setattr(render._Boxes, 'areas', property(lambda self: {}, lambda self, v: None), raising=False)  # measured each time
    with Renderer(fr) as r: assert areas == [r.frame(k) is not None and r.area for _ in range(2) for k in range(len(fr))]


class _EdgeMarkFrames(_CaptionFrames):
    "The caption's figure, with a point marked at the edge of the axes (not clipped to them) moving along it."
    def __init__(self, frames=8):
        super().__init__(frames)
        ax = self.fig.axes[0]
        self.mark, = ax.plot([0], [1], 'v', ms=9, clip_on=False, zorder=7)
        self.artists.append(self.mark)

    def draw(self, k):
        self.mark.set_data([k / (self.n - 1)], [1])
        return super().draw(k)


class _NoteFrames(_EdgeMarkFrames):
    "The edge mark's figure with its note: shown (in a box) in odd frames, hidden in even ones (the mark inside the axes)."
    def __init__(self, frames=8):
        super().__init__(frames)
        self.note = self.fig.axes[0].text(.95, .9, '', transform=self.fig.axes[0].transAxes, ha='right', fontsize=9,
                                          visible=False, bbox=dict(boxstyle='round', fc='white', alpha=.85))
        self.artists.append(self.note)

    def draw(self, k):
        self.note.set_visible(k % 2 == 1)
        self.note.set_text(f"left by the top:\nx={k / 7:.3g}")
        return super().draw(k)


@pytest.mark.parametrize('make', [_CaptionFrames, _LegendFrames, _EdgeMarkFrames, _NoteFrames, lambda: _MeshFrames(frames=4)])
def test_a_frame_differs_from_its_still_frame_only_inside_its_area(make):
    """`Renderer.area` holds every pixel a frame changes on the still frame (the background with the static layers over
    it): a line clipped to its axes, a caption and its box, a mark at the edge of the axes, a recoloured mesh (and the
    layer above it where they overlap); and a GIF made with the areas (frames compared only within them) has the same
    bytes as one comparing whole frames."""
    from fastfit.gif import GifStream, Palette
    from fastfit.render import _Layer
    fr = make()
    with Renderer(fr) as r:
        still = np.asarray(r.background).copy()
        for s in r.steps:
            if isinstance(s, _Layer): s.composite(still)
        frames, areas = [], []
        for _ in range(2):  # the caption's box is drawn by matplotlib, then kept, then pasted
            for k in range(len(fr)):
                frames.append(r.frame(k).copy())
                areas.append(r.area)
    assert all(a is not None for a in areas)
    for f, (_, r0, r1, c0, c1) in zip(frames, areas):
        outside = (f != still).any(-1)
        outside[r0:r1, c0:c1] = False
        assert not outside.any()
        assert (f[r0:r1, c0:c1] != still[r0:r1, c0:c1]).any()  # and it is not empty: something moves
    pal = Palette(frames[:1])
    gifs = [GifStream(pal, 10), GifStream(pal, 10)]
    for f, a in zip(frames, areas):
        gifs[0].add(f, a)
        gifs[1].add(f)
    assert gifs[0].getvalue() == gifs[1].getvalue()


@pytest.mark.parametrize('make', [_CaptionFrames, _LegendFrames, _EdgeMarkFrames, _NoteFrames, lambda: _MeshFrames(frames=4)])
def test_frames_restoring_only_the_last_frames_area_are_the_same(make):
    """A renderer left alone between frames (an export's loop) restores the background only where the frame before
    changed it: every frame the same as restoring it whole, also after the canvas is drawn on otherwise (`still`)."""
    out = []
    for alone in (False, True):
        fr = make()
        with Renderer(fr) as r:
            r.alone = alone
            frames = [r.frame(k).copy() for k in [*range(len(fr)), 0, len(fr) - 1]]
            r.still()
            frames += [r.frame(k).copy() for k in reversed(range(len(fr)))]
        out.append(frames)
    assert all(np.array_equal(a, b) for a, b in zip(*out))


def test_an_unknown_area_is_none():
    "A text with path effects may paint beyond its lines and box: its frame's area is not known."
    from matplotlib import patheffects
    fr = _CaptionFrames(2)
    fr.text.set_path_effects([patheffects.withStroke(linewidth=3, foreground='w')])
    with Renderer(fr) as r:
        r.frame(1)
        assert r.area is None


def test_a_hidden_moving_text_is_not_drawn(monkeypatch):
    """A moving text hidden in a frame (a mark's note while the mark is inside the axes) paints nothing: it is not
    drawn at all then, drawn when shown, and every frame is matplotlib's full draw of it."""
    import fastfit.render as render
    drawn, draw = [], render._draw_text_once_laid_out
    monkeypatch.setattr(render, '_draw_text_once_laid_out',
                        lambda fig, text, *a: (drawn.append(text.get_visible()) if text is fr.note else None, draw(fig, text, *a)))
    fr = _NoteFrames()
    with Renderer(fr) as r:
        r.alone = True
        blitted = [r.frame(k).copy() for _ in range(2) for k in range(len(fr))]
    assert drawn == [True] * len(fr)  # the odd frames, twice; never while hidden
    for k in range(2 * len(fr)):
        fr.draw(k % len(fr))
        fr.fig.canvas.draw()
        assert np.array_equal(blitted[k], np.asarray(fr.fig.canvas.buffer_rgba())), k


class _TitledGrid:
    """Small multiples with titles above ticks on both sides (the title is placed by measuring the x axis), a moving line
    each: above the axes (`zorder` 5), or under them (1: the axes are drawn on a layer above it)."""
    def __init__(self, zorder):
        self.fig = Figure(figsize=(6, 4), dpi=100)
        self.artists = []
        for i, ax in enumerate(self.fig.subplots(2, 2).flat):
            ax.plot([0, 1, 2.5], [i, 3, 1e3 * i]); ax.set_title(f"run {i}"); ax.set_xlabel('x'); ax.set_ylabel('y')
            ax.xaxis.set_ticks_position('both')
            self.artists.append(ax.plot([0, 2], [0, 3], zorder=zorder)[0])
        self.fig.tight_layout()

    def __len__(self): return 3

    def draw(self, k):
        for ln in self.artists: ln.set_ydata([k, 3 - k])
        return self.artists


@pytest.mark.parametrize('zorder', [5, 1])
def test_the_still_part_places_each_axis_ticks_once_a_draw_and_draws_the_same(monkeypatch, zorder):
    """The background and the layers are drawn with each axis placing its ticks once a draw (of its axes, or of itself on
    a layer): the same frames as placing them each time asked."""
    import contextlib

    from matplotlib.axis import Axis

    import fastfit.render as render
    placed, update = [], Axis._update_ticks
    monkeypatch.setattr(Axis, '_update_ticks', lambda self: placed.append(self) or update(self))
    frames, counts = [], []
    for once in (True, False):
        if not once: monkeypatch.setattr(render, 'ticks_placed_once', lambda axes: contextlib.nullcontext())
        fr = _TitledGrid(zorder)
        placed.clear()
        with Renderer(fr, check=False) as r:
            counts.append(len(placed))
            assert len(set(map(id, placed))) == 8
            assert all('draw' not in vars(a) and '_update_ticks' not in vars(x) for a in fr.fig.axes for x in a._axis_map.values())
            frames.append(r.frame(2).copy())
    assert counts[0] == (8 if zorder == 5 else 12) < counts[1]  # under the axes: a title placed the x ticks, then its layer
    assert np.array_equal(*frames)


def test_the_boxes_restored_cover_every_area_drawn():
    "The boxes a frame restores (`_covering` the areas its steps drew) hold every area, in no more pixels than the areas."
    from fastfit.render import _covering
    rng = np.random.default_rng(0)
    for _ in range(200):
        r0, c0 = rng.integers(0, 50, (2, rng.integers(1, 8)))
        areas = [(int(r), int(r + h), int(c), int(c + w)) for r, c, h, w in zip(r0, c0, *rng.integers(0, 30, (2, len(r0))))]
        areas += areas[:2]  # the same area drawn twice (three lines clipped to one axes)
        boxes = _covering(areas)
        for a in areas: assert any(b[0] <= a[0] and a[1] <= b[1] and b[2] <= a[2] and a[3] <= b[3] for b in boxes), a
        size = lambda a: (a[1] - a[0]) * (a[3] - a[2])
        assert sum(map(size, boxes)) <= sum(map(size, set(areas)))


class _LegendFrames:
    """A moving line under an axes legend of two columns with a title (boxes inside boxes) and a figure legend."""
    def __init__(self):
        self.fig = Figure(figsize=(4, 3), dpi=100)
        ax = self.fig.add_subplot()
        for i in range(5): ax.plot([0, 1], [i, i + 1], label=f"line {i}")
        self.line, = ax.plot([0, 1], [0, 4], lw=3, label='moving')
        ax.legend(ncols=2, title='lines', loc='center', framealpha=.6)
        self.fig.legend(handles=ax.lines[:2], loc='lower left')
        self.artists = [self.line]

    def __len__(self): return 3

    def draw(self, k):
        self.line.set_ydata([k, 4 - k])
        return self.artists


def test_legends_laid_out_once_a_draw_draw_the_same(monkeypatch):
    """The still part is drawn with each legend's boxes laid out once (not again for each box around them): the same
    frames as laying them out each time asked, in fewer layouts, and the boxes are matplotlib's own again after."""
    import contextlib

    from matplotlib.offsetbox import PackerBase

    import fastfit.render as render
    laid, lay_out = [], PackerBase._get_bbox_and_child_offsets
    for cls in PackerBase.__subclasses__():
        monkeypatch.setattr(cls, '_get_bbox_and_child_offsets',
                            lambda self, r, f=cls._get_bbox_and_child_offsets: laid.append(self) or f(self, r))
    frames, counts = [], []
    for once in (True, False):
        if not once: monkeypatch.setattr(render, '_legends_laid_out_once', lambda fig: contextlib.nullcontext())
        fr = _LegendFrames()
        laid.clear()
        with Renderer(fr, check=False) as r:
            counts.append(len(laid))
            assert not any('_get_bbox_and_child_offsets' in vars(b) for leg in (fr.fig.axes[0].get_legend(), *fr.fig.legends)
                           for b in render._boxes(leg._legend_box))
            frames.append([r.frame(k).copy() for k in range(len(fr))])
    assert lay_out is PackerBase._get_bbox_and_child_offsets
    assert 0 < counts[0] < counts[1]
    assert all(np.array_equal(a, b) for a, b in zip(*frames))


@pytest.mark.parametrize('name', LEGENDS_RELY_ON)
def test_every_private_name_legend_layout_relies_on_exists(name):
    "Each is there in matplotlib 3.11; without one, `_legends_laid_out_once` leaves every layout to matplotlib."
    from matplotlib.offsetbox import OffsetBox, VPacker
    cls, attr = name.split('.')
    if cls == 'Legend': assert attr in vars(Figure().add_subplot().legend(handles=[Circle((0, 0))], labels=['a']))
    else: assert attr in vars(OffsetBox) and vars(VPacker).get(attr) not in (None, vars(OffsetBox)[attr])

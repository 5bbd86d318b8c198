"Custom panels: a `Panel` subclass with setup/update animates and exports like the built-in panels, blitted."
import numpy as np
import pytest
import torch
from PIL import Image

from fastfit.all import COLORS, NEEDS, PANELS, LinearModel, Panel, exported_frames, regression_learner, synth_linear
from fastfit.plots import learner_frames
from fastfit.render import Renderer, frames_differ, mpl_frames


class Residuals(Panel):
    "Each training point's residual as a vertical segment, and the loss as text."
    def setup(self, ax):
        x, y = self.x[:, 0].numpy(), self.y[:, 0].numpy()
        ax.scatter(x, y, s=12, c=COLORS['data'])
        self.gaps = ax.vlines(x, y, y, colors=COLORS['fit'])
        self.text = ax.text(.02, .95, '', transform=ax.transAxes, va='top')
        ax.set_ylim(y.min() - 1, y.max() + 1)
        return [self.gaps, self.text]

    def update(self, k):
        x, y = self.x[:, 0].numpy(), self.y[:, 0].numpy()
        self.gaps.set_segments(np.stack([np.stack([x, y], 1), np.stack([x, self.predict(self.x, k)], 1)], 1))
        self.text.set_text(f"step {self.step(k)}  loss {self.loss(k):.4f}")


def test_custom_panel_exports_blitted_with_matplotlibs_pixels(fitted, tmp_path):
    gif = fitted.save_animation(tmp_path / 'r.gif', frames=8, fps=10, panels=('fit', Residuals), dpi=50)
    ref = mpl_frames(fitted.animate(frames=8, fps=10, panels=('fit', Residuals), dpi=50))
    got = exported_frames(gif, 10)
    assert len(got) == 8 and max(frames_differ(a, b) for a, b in zip(got, ref)) <= 1e-3
    assert frames_differ(got[0], got[-1]) > .001  # the residuals shrink: the frames differ
    fr = learner_frames(fitted, 8, ('fit', Residuals), 50, 'test')
    with Renderer(fr) as r:
        for k in range(len(fr)): r.frame(k)
        res = fr.panels[1]
        # drawn alone over the still background each frame, like the fit panel's line: not its whole axes redrawn
        assert res.gaps in r.steps and res.text in r.steps and not r.whole and not r.full


def test_panel_tells_frame_k(fitted):
    fr = learner_frames(fitted, 5, (Residuals,), 40, 'test')
    p, h = fr.panels[0], fitted.param_history
    k = 3
    i = int(np.searchsorted(h.steps, p.step(k)))
    assert p.loss(k) == pytest.approx(float(h.losses[i]))
    w, b = float(p.params(k)['w']), float(p.params(k)['b'])
    np.testing.assert_allclose(p.predict(torch.tensor([[0.], [2.]]), k), [b, 2 * w + b], rtol=1e-5)
    fr.draw(k)
    assert p.text.get_text() == f"step {p.step(k)}  loss {p.loss(k):.4f}"


def test_registered_name_and_needs(fitted, tmp_path):
    PANELS['residuals'] = Residuals
    try:
        page = fitted.save_animation(tmp_path / 'r.html', frames=4, panels=('residuals',), dpi=40)
        assert len(exported_frames(page)) == 4
    finally: del PANELS['residuals']
    class Needy(Residuals): needs = ('two params',)
    one = regression_learner(synth_linear(n=20, seed=1).dataloaders(bs=None), model=LinearModel(1, bias=False))
    with one.no_bar(), one.no_logging(): one.fit(2)
    with pytest.raises(ValueError, match=r"the 'Needy' panel needs " + NEEDS['two params'][1].split(' (')[0]):
        one.save_animation(tmp_path / 'n.gif', panels=(Needy,))
    assert list(tmp_path.iterdir()) == [tmp_path / 'r.html']  # refused before anything was drawn or written


def test_incomplete_panel_says_what_is_missing(fitted, tmp_path):
    class Empty(Panel): pass
    with pytest.raises(NotImplementedError, match=r'Empty.setup\(ax\) must draw the still part and return the moving'):
        fitted.save_animation(tmp_path / 'e.gif', panels=(Empty,))
    class NoUpdate(Panel):
        def setup(self, ax): return [ax.plot([0, 1], [0, 1])[0]]
    with pytest.raises(NotImplementedError, match=r'NoUpdate.update\(k\) must set the moving artists to frame k'):
        fitted.save_animation(tmp_path / 'e.gif', panels=(NoUpdate,))
    assert not (tmp_path / 'e.gif').exists()


def test_panel_gif_keeps_its_colour_exact(fitted, tmp_path):
    gif = fitted.save_animation(tmp_path / 'r.gif', frames=3, panels=(Residuals,), dpi=60)
    with Image.open(gif) as im:
        pal = im.getpalette()
        assert (0xD5, 0x5E, 0x00) in {tuple(pal[i:i + 3]) for i in range(0, len(pal), 3)}  # the segments' colour


def _small_multiples():
    "A 3-lr sweep's grid of 'fit' panels (one legend below the figure) and its Frames' picture of the last frame."
    import io
    from contextlib import redirect_stdout

    from fastfit.all import lr_sweep
    with redirect_stdout(io.StringIO()):
        return lr_sweep(synth_linear(seed=0).dataloaders(bs=None, valid_pct=0), lrs=(.01, .1, 1.5), epochs=10)


def _picture(fr) -> np.ndarray:
    fr.draw(len(fr) - 1)
    fr.fig.canvas.draw()
    return np.asarray(fr.fig.canvas.buffer_rgba()).copy()


def test_frames_measure_with_the_renderer_that_draws():
    "A new Frames figure has its Agg canvas from the start: layout and drawing share one renderer."
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fr = _small_multiples().frames(4)
    assert isinstance(fr.fig.canvas, FigureCanvasAgg)
    assert fr.fig._get_renderer() is fr.fig.canvas.get_renderer()
    assert fr.fig._repr_png_()[:8] == b'\x89PNG\r\n\x1a\n'  # still shows itself in a notebook


def test_tight_layout_measuring_each_axes_once_lays_out_as_matplotlib():
    "`_tight_layout` with a rect gives the subplot positions matplotlib's own two-pass `tight_layout` gives."
    from fastfit.panels.frames import _tight_layout
    figs = []
    for _ in range(2):
        fig = _small_multiples().frames(4).fig
        fig.subplots_adjust(left=.2, right=.7, bottom=.3)  # undo the layout: both start from the same positions
        figs.append(fig)
    figs[0].tight_layout(rect=(0, .1, 1, 1))
    _tight_layout(figs[1], rect=(0, .1, 1, 1))
    for a, b in zip(figs[0].axes, figs[1].axes):
        assert np.array_equal(a.get_position().get_points(), b.get_position().get_points())
        assert 'get_tightbbox' not in vars(b)  # the axes are given back as they were
        assert not any('_update_ticks' in vars(x) for x in b._axis_map.values())


def test_merged_legends_are_not_placed_yet_draw_the_same(monkeypatch):
    "Small multiples' legends, merged below the figure, draw the same picture whether or not each was placed first."
    import fastfit.panels.frames as frames
    sweep = _small_multiples()
    fr = sweep.frames(4)
    assert all(a.get_legend() is None for a in fr.axs) and len(fr.fig.legends) == 1
    fast = _picture(fr)
    monkeypatch.setattr(frames, 'merge_legend', lambda ax: None)  # every panel's legend placed, then merged
    assert np.array_equal(_picture(sweep.frames(4)), fast)


@pytest.mark.parametrize('make', ['linear', 'poly', 'mlp'])
def test_outputs_each_are_functional_calls_and_leave_the_model_as_it_was(make):
    "A model's output at each record, its parameters swapped in once a record: functional_call's numbers; given back."
    from torch.func import functional_call

    from fastfit.models import MLPModel, PolyModel
    from fastfit.panels.base import _outputs_each
    model = {'linear': lambda: LinearModel(3), 'poly': lambda: PolyModel(3), 'mlp': lambda: MLPModel(hidden=(8, 4))}[make]()
    g = torch.Generator().manual_seed(0)
    names = dict(model.named_parameters())
    params = [{k: torch.randn(v.shape, generator=g) for k, v in names.items()} for _ in range(5)]
    x = torch.randn(50, 3 if make == 'linear' else 1, generator=g)
    before = {k: v for k, v in model.named_parameters()}
    with torch.no_grad():
        fast, slow = _outputs_each(model, params, x), [functional_call(model, p, (x,)) for p in params]
        part = _outputs_each(model, [dict(list(p.items())[:1]) for p in params], x)  # not every name: functional_call's
    assert all(torch.equal(a, b) for a, b in zip(fast, slow)) and len(fast) == 5
    assert all(torch.equal(a, functional_call(model, dict(list(p.items())[:1]), (x,))) for a, p in zip(part, params))
    assert dict(model.named_parameters()) == before and all(isinstance(v, torch.nn.Parameter) for v in before.values())


def test_fit_panel_finds_a_curve_off_the_chart_as_each_frame_alone_would():
    """`FitPanel._gone` (every frame's at once, kept while the limits stay) says of each frame what the frame's own
    curve says: finite and wholly above or below the y limits; renewed when the limits change."""
    from types import SimpleNamespace
    rng = np.random.default_rng(0)
    p = rng.normal(size=(40, 7)) * 3
    p[3, 2], p[5, 1], p[7, :], p[9, 4] = np.nan, np.inf, 5., -np.inf
    p[11, :], p[12, :], p[13, :] = -9., [9., 9., 9., np.nan, 9., 9., 9.], [9., 9., np.inf, 9., 9., 9., 9.]
    panel = SimpleNamespace(predss=[p, p[::-1].copy()])
    for lo, hi in ((-2., 2.), (-2., 2.), (-8., 4.), (0., 0.)):
        got = PANELS['fit']._gone(panel, lo, hi)
        for q, g in zip(panel.predss, got):
            assert g.tolist() == [bool(np.isfinite(y).all() and ((y > hi).all() or (y < lo).all())) for y in q], (lo, hi)
    assert any(got[0])

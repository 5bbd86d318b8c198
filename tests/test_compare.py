"Comparisons fit their runs together: identical runs are identical, a sweep of many lrs is a stability map."
import copy

import matplotlib

matplotlib.use('Agg')
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from fastai.optimizer import SGD, Adam  # noqa: E402

import fastfit.compare as compare  # noqa: E402
from fastfit.all import FuncModel, compare_optimizers, lr_sweep, regression_learner, synth_linear  # noqa: E402
from fastfit.panels.sweep import FATES, StabilityPanel  # noqa: E402


def _paths(cmp) -> dict:
    return {k: lrn.param_history.flat.clone() for k, lrn in cmp.learners.items()}


@pytest.mark.parametrize('together', [True, False])
def test_identical_runs_are_identical(monkeypatch, together):
    "Two runs of one optimizer on minibatches take one path, and the same call draws the same picture, batched or not."
    if not together:
        monkeypatch.setattr(compare, 'fit_together', lambda learners, epochs: False)
        monkeypatch.setattr(compare, '_fit_stacked', lambda *args: None)
    dls_bs16 = synth_linear(seed=0).dataloaders(bs=16, valid_pct=0)
    first = _paths(compare_optimizers(dls_bs16, {'a': SGD, 'b': SGD}, epochs=5))
    assert torch.equal(first['a'], first['b'])
    again = _paths(compare_optimizers(dls_bs16, {'a': SGD, 'b': SGD}, epochs=5))
    assert torch.equal(first['a'], again['a'])
    # ...and each run sees the batches a fit of its own on fresh loaders would (to float round-off when batched)
    fresh = copy.copy(dls_bs16)
    fresh.loaders = [dl.new() for dl in dls_bs16.loaders]
    learn = regression_learner(fresh, lr=.1)
    with learn.no_bar(), learn.no_logging(): learn.fit(5)
    np.testing.assert_allclose(first['a'].numpy(), learn.param_history.flat.numpy(), rtol=1e-5, atol=1e-6)


def test_a_model_that_cannot_be_batched_is_fitted_run_by_run(capsys):
    "A FuncModel whose function vmap cannot run (a Python branch on a value) falls back to fits of their own, alike."
    def f(x, p):
        if float(p['a'].detach()) > 100: return x[:, 0] * 0  # data-dependent control flow: no batching
        return x[:, 0] * p['a'] + p['b']
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    cmp = compare_optimizers(dls, {'SGD': SGD, 'Adam': Adam}, model=FuncModel(f, {'a': 0., 'b': 0.}), epochs=20)
    assert all(lrn.param_history.step == 20 for lrn in cmp.learners.values())


def test_a_sweep_reports_its_diverged_runs_in_one_line(capsys):
    "40 lrs, a dozen diverging: one summary line, not one message per run."
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    sweep = lr_sweep(dls, lrs=np.logspace(-2, .7, 40), epochs=100)
    out = capsys.readouterr().out.strip().splitlines()
    diverged = [lr for lr, stop in sweep.stops.items()]
    assert len(diverged) >= 5
    assert len(out) == 1 and f"{len(diverged)} of 40 runs diverged" in out[0], out
    assert 'diverged' in repr(sweep) and len(repr(sweep).splitlines()) < 20  # a summary, not 40 rows


def test_a_sweep_of_many_lrs_draws_a_stability_map(tmp_path):
    "200 lrs: the map of loss against lr, every run coloured by its fate, 1/λ and 2/λ where the Hessian puts them."
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    sweep = lr_sweep(dls, lrs=np.logspace(-3, .5, 200), epochs=40)
    assert sweep.panels == ('sweep',) and not sweep.split
    fr = sweep.frames(12)
    (p,) = fr.panels
    assert isinstance(p, StabilityPanel)
    assert sum(len(d.get_offsets()) for d in p.dots.values()) == 200
    # each frame's losses and stopped runs (taken a run at a time) are each record's own, in lr order
    recss = [fr.recss[i] for i in p.order]
    assert any(r.stop for r in recss)
    for k in range(len(fr)):
        assert p.L[k].tolist() == [float(r.losses[k]) for r in recss]
        assert p.gone[k].tolist() == [r.stopped(k) for r in recss]
    counts = sweep.counts()
    assert set(counts) <= set(FATES) and sum(counts.values()) == 200
    assert counts.get('diverged', 0) > 0 and counts.get('converging', 0) > 0
    # the thresholds: the top eigenvalue of the MSE Hessian of a line is that of 2 X'X / n
    x = dls.train.x.double()
    X = torch.cat([x, torch.ones_like(x)], 1)
    lam = float(torch.linalg.eigvalsh(2 * X.T @ X / len(X))[-1])
    xs = sorted(line.get_xdata()[0] for line in p.ax.lines if line.get_linestyle() in ('--', '-.'))
    np.testing.assert_allclose(xs, [1 / lam, 2 / lam], rtol=1e-6)
    # plain GD: every lr beyond 2/λ diverges, every lr below 1/λ does not oscillate
    for lr, f in sweep.fates.items():
        if lr > 2.05 / lam: assert f == 'diverged', (lr, f)
        if lr < .95 / lam: assert f in ('converging', 'slow'), (lr, f)
    fr.draw(len(fr) - 1)
    ys = np.concatenate([d.get_offsets()[:, 1] for d in p.dots.values()])
    assert np.isfinite(ys).all()
    out = sweep.save_animation(tmp_path / 'sweep.gif', frames=6)
    assert out.stat().st_size > 1000


def test_the_map_of_the_last_step_is_scaled_by_the_start():
    """A still of the end (`show()`: one frame, the last) scales the map as the animation does: up to ~1000x the starting
    loss, diverged runs on the top edge and counted in the caption (their 1e30 losses once squashed the rest to a line)."""
    import matplotlib.pyplot as plt
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    sweep = lr_sweep(dls, lrs=np.logspace(-3, .5, 30), epochs=50)
    l0 = float(next(iter(sweep.learners.values())).param_history.losses[0])
    tops = []
    for frames in (1, 10):
        fr = sweep.frames(frames)
        fr.draw(len(fr) - 1)
        (p,) = fr.panels
        tops.append(p.ax.get_ylim()[1])
        off = int(p.gone[-1].sum())
        assert off and f"{off} of them NaN/inf" in p.caption.get_text()
        plt.close(fr.fig)
    assert tops[0] == pytest.approx(tops[1]) and tops[0] <= 2.001e3 * l0, (tops, l0)  # 1000x, and the margins above it


def test_a_sweep_of_few_lrs_stays_small_multiples():
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    sweep = lr_sweep(dls, lrs=(.01, .1, .5), epochs=10)
    assert sweep.panels == ('fit',) and sweep.split
    fr = sweep.frames(3, panels=('sweep',))  # the map on request: one axes for all
    assert len(fr.axs) == 1


def test_the_fates_of_a_sweep_are_each_runs_own():
    "A sweep judges its runs' fates array by array: the same as `fate` of each run alone, with all four fates met."
    from fastfit.panels.sweep import _FATE_CACHE, fate, optimum_loss
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    sweep = lr_sweep(dls, lrs=np.logspace(-3, .7, 60), epochs=100)
    learns = list(sweep.learners.values())
    opt = optimum_loss(learns[0])
    for lrn in learns: _FATE_CACHE.pop(lrn, None)
    alone = [fate(lrn, sweep.stops.get(lr), opt) for lr, lrn in sweep.learners.items()]
    assert alone == list(sweep.fates.values())
    assert set(alone) == set(FATES)


def _diverging_sweep(n=30, epochs=20):
    return lr_sweep(synth_linear(seed=0).dataloaders(bs=None, valid_pct=0), lrs=np.logspace(-3, .5, n), epochs=epochs)


def test_a_sweeps_records_make_each_frames_parameters_when_asked():
    "The records of a sweep's runs hold each frame's parameters (the history's record there), made when a panel asks."
    sweep = _diverging_sweep()
    fr = sweep.frames(8)
    for lrn, r in zip(sweep.learners.values(), fr.recss):
        h = lrn.param_history
        assert len(r.params) == len(r) == 8
        for k in (0, 3, -1):
            want = h.record(int(r.idx[k]))
            assert r.params[k].keys() == want.keys() and all(torch.equal(r.params[k][n], want[n]) for n in want)
        assert r.params[2] is r.params[2]  # made once
        assert [p['w'] for p in r.params[1:4]] == [r.params[i]['w'] for i in (1, 2, 3)]
        assert len(list(r.params)) == 8
        with pytest.raises(IndexError): r.params[8]


def test_the_maps_caption_is_drawn_from_the_glyph_cache():
    """The caption counts the runs past the map in words the glyph cache lays out (no ligature: "off" joined "ff"
    into one glyph, left to matplotlib): every frame's changed box is known."""
    from fastfit.render import Renderer
    sweep = _diverging_sweep()
    fr = sweep.frames(6)
    with Renderer(fr) as r:
        for k in range(len(fr)):
            r.frame(k)
            assert r.area is not None, (k, fr.panels[0].caption.get_text())
    assert 'past the map (top edge)' in fr.panels[0].caption.get_text()


def test_the_maps_markers_keep_their_extents():
    "A marker's extents, kept per transform, are matplotlib's own for each transform; the blitted map is matplotlib's."
    from matplotlib.path import Path
    from matplotlib.transforms import Affine2D

    from fastfit.render import Renderer
    sweep = _diverging_sweep()
    fr = sweep.frames(4)
    for dots in fr.panels[0].dots.values():
        (m,) = dots.get_paths()
        plain = Path(m.vertices, m.codes)
        for t in (Affine2D().scale(3), Affine2D().scale(5).translate(2, 1), Affine2D().scale(3)):
            np.testing.assert_array_equal(m.get_extents(t).get_points(), plain.get_extents(t).get_points())
        assert m.get_extents().bounds == plain.get_extents().bounds
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a blitted frame unlike matplotlib's full draw warns
        with Renderer(fr, check=True) as r: r.frame(0)
    assert not r.full


def test_figures_drawn_in_one_thread_share_their_parsed_tick_labels(tmp_path, monkeypatch):
    "A second export parses no log-scale tick label again and gives the same bytes; another thread parses its own."
    import threading

    from matplotlib import _mathtext
    sweep = _diverging_sweep()
    first = sweep.save_animation(tmp_path / 'a.gif', frames=3).read_bytes()
    parse, seen = _mathtext.Parser.parse, []
    monkeypatch.setattr(_mathtext.Parser, 'parse', lambda self, s, *a, **kw: seen.append(s) or parse(self, s, *a, **kw))
    assert sweep.save_animation(tmp_path / 'b.gif', frames=3).read_bytes() == first
    assert seen == []
    done = []
    t = threading.Thread(target=lambda: done.append(sweep.save_animation(tmp_path / 'c.gif', frames=3).read_bytes()))
    t.start(); t.join()
    assert done == [first] and seen  # its own parser: its fonts are its thread's


def test_the_maps_fates_are_each_runs_own():
    "The map judges its runs together (array by array): the fates `fate` gives each run alone, and the sweep's own."
    from fastfit.panels.sweep import _FATE_CACHE, fate
    sweep = _diverging_sweep(40, 60)
    learns = list(sweep.learners.values())
    for lrn in learns: _FATE_CACHE.pop(lrn, None)
    (p,) = sweep.frames(3).panels
    for lrn in learns: _FATE_CACHE.pop(lrn, None)
    assert p.fates == [fate(lrn, sweep.stops.get(lr), p.opt) for lr, lrn in sweep.learners.items()]
    assert p.fates == list(sweep.fates.values()) and len(set(p.fates)) >= 3


def test_flip_shares_count_sign_changes_between_real_steps():
    "The fates' oscillation measure, on narrow and wide step arrays (two ways of computing it), equals a plain count."
    from fastfit.panels.sweep import _flip_shares
    def plain(col):
        real = [s for s in col if abs(s) > 1e-3 * np.abs(col).max()]
        if len(real) <= 3: return 0.
        return sum(np.sign(a) != np.sign(b) for a, b in zip(real, real[1:])) / (len(real) - 1)
    rng = np.random.default_rng(0)
    for T, P in [(1, 3), (4, 5), (60, 40), (30, 300)]:
        d = rng.standard_normal((T, P)) * (rng.random((T, P)) < .7)
        d[:, 0] = 0  # a parameter that never moved
        d[T // 2:, 1] *= 1e-6  # one whose later steps are too small to count
        assert np.allclose(_flip_shares(d), [plain(d[:, j]) for j in range(P)]), (T, P)

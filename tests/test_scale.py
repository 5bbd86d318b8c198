"Big data (issue 12): pictures draw a stated, seeded sample, the loss surface and losses are summed in bounded batches."
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastfit.all import LossSurface, lr_sweep, regression_learner, synth_linear
from fastfit.data import EVAL_ROWS, mean_over_rows
from fastfit.panels import MAX_POINTS, Frames, sample_rows, sample_sets
from fastfit.records import Records


def quiet_fit(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


@pytest.fixture(scope='module')
def big():
    "30,000 points: 24,000 to train, 6,000 to validate (more than MAX_POINTS in all), fitted 10 full-batch steps."
    return quiet_fit(regression_learner(synth_linear(n=30_000, seed=1).dataloaders(bs=None), lr=.5), 10)


def scatters(ax) -> dict:
    "legend label -> (n, 2) points of each scatter on `ax`."
    return {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections if c.get_label() and len(c.get_offsets())}


def show_fit(learn):
    _, ax = plt.subplots()
    learn.show_fit(ax=ax)
    return ax


def test_big_data_is_drawn_as_a_stated_seeded_sample(big):
    pts = scatters(show_fit(big))
    # the same share of each set, MAX_POINTS in all, and the legend says how many of how many
    assert set(pts) == {'train data (8,000 of 24,000 shown)', 'valid data (2,000 of 6,000 shown)'}
    train, valid = pts['train data (8,000 of 24,000 shown)'], pts['valid data (2,000 of 6,000 shown)']
    assert len(train) + len(valid) == MAX_POINTS
    # drawn points are data points, distinct ones, and the same on every call (seeded)
    x, y = big.dls.train.x[:, 0].numpy(), big.dls.train.y[:, 0].numpy()
    rows = {(a, b) for a, b in zip(x.tolist(), y.tolist())}
    assert all((a, b) in rows for a, b in train.tolist()) and len({tuple(r) for r in train.tolist()}) == len(train)
    np.testing.assert_array_equal(scatters(show_fit(big))['train data (8,000 of 24,000 shown)'], train)


def test_small_data_is_drawn_whole_as_before(fitted):
    ax = show_fit(fitted)
    pts = scatters(ax)
    assert set(pts) == {'train data', 'valid data'}  # no note
    dl, vl = fitted.dls.train, fitted.dls.valid
    np.testing.assert_array_equal(pts['train data'], torch.cat([dl.x, dl.y], 1).numpy())  # every point, in order
    np.testing.assert_array_equal(pts['valid data'], torch.cat([vl.x, vl.y], 1).numpy())
    lo, hi = ax.get_ylim()
    assert lo <= float(torch.cat([dl.y, vl.y]).min()) and hi >= float(torch.cat([dl.y, vl.y]).max())


def test_sample_rule():
    assert sample_rows(MAX_POINTS) is None and sample_rows(5, max_n=None) is None  # all kept: nothing to index
    idx = sample_rows(50_000)
    assert len(idx) == MAX_POINTS and len(set(idx.tolist())) == MAX_POINTS and int(idx.max()) < 50_000
    assert torch.equal(idx, sample_rows(50_000)) and not torch.equal(idx, sample_rows(50_000, seed=1))
    a, b = torch.arange(800_000), torch.arange(200_000)
    assert [(note, len(t)) for note, t in sample_sets((a,), (b,))] == [('8,000 of 800,000 shown', 8_000),
                                                                       ('2,000 of 200,000 shown', 2_000)]
    assert [(note, len(t)) for note, t in sample_sets((a[:80],), (b[:20],))] == [('', 80), ('', 20)]
    assert [(note, len(t)) for note, t in sample_sets((a[:10],), (b[:0],), max_n=5, what='points')] == [('5 of 10 points', 5), ('', 0)]
    note, x, y = sample_sets((a, -a))[0]
    assert torch.equal(x, a[sample_rows(800_000)]) and torch.equal(y, -x)  # the same rows of each tensor of a set


def test_animation_and_small_multiples_of_big_data_stay_bounded(big):
    fr = Frames(big, Records.from_history(big.param_history, 5), panels=('fit', 'surface'))
    assert sum(len(v) for v in scatters(fr.axs[0]).values()) == MAX_POINTS
    assert 'on 10,000 of 24,000 points' in fr.fig.axes[-1].get_ylabel()  # the surface's colour bar says what it sums
    assert len(fr.panels[1].surf.x) == MAX_POINTS
    sweep = lr_sweep(big.dls, (.1, .5), epochs=2)
    fr = sweep.frames(frames=3)
    for ax in fr.axs: assert sorted(len(v) for v in scatters(ax).values()) == [2_000, 8_000]


def test_surface_equals_a_full_evaluation(fitted):
    "Small data: every point in the sum, any chunking of the grid and batching of the rows gives the same numbers."
    surf = LossSurface(fitted)
    assert surf.note == '' and len(surf.x) == len(fitted.dls.train.x)
    P1, P2, Z = surf.grid((0., 4.), (-1., 3.), n=9)
    thetas = torch.tensor(np.stack([P1.ravel(), P2.ravel()], 1), dtype=torch.float32)
    full = [fitted.train_loss(dict(w=t[:1], b=t[1])) for t in thetas]
    np.testing.assert_allclose(Z.ravel(), full, rtol=1e-6)
    np.testing.assert_allclose(surf.losses(thetas, budget=7, rows=13).numpy(), full, rtol=1e-5)


def test_surface_of_big_data_sums_a_stated_sample_or_all(big):
    sample, everything = LossSurface(big), LossSurface(big, max_n=None)
    assert sample.note == '10,000 of 24,000 points' and everything.note == ''
    thetas = torch.tensor([[3., 2.], [1., 0.], [4., -1.]])
    full = [big.train_loss(dict(w=t[:1], b=t[1])) for t in thetas]
    np.testing.assert_allclose(everything.losses(thetas, rows=5_000).numpy(), full, rtol=1e-5)
    np.testing.assert_allclose(sample.losses(thetas).numpy(), full, rtol=.05)  # a sample of 10,000: close to it
    fig, ax = plt.subplots()
    big.plot_loss_surface(n=5, ax=ax)
    assert any('on 10,000 of 24,000 points' in a.get_ylabel() for a in fig.axes)
    fig, ax = plt.subplots()
    big.plot_loss_surface(n=5, ax=ax, max_n=None)
    assert not any(' of ' in a.get_ylabel() for a in fig.axes)


@pytest.mark.parametrize('max_n, err, msg', [(0, ValueError, 'max_n must be an integer > 0, got 0'),
                                             (2.5, ValueError, 'max_n must be an integer > 0, got 2.5'),
                                             ('all', TypeError, "max_n must be an integer > 0, got 'all'")])
def test_surface_max_n_errors(fitted, max_n, err, msg):
    with pytest.raises(err, match=msg): fitted.plot_loss_surface(n=5, ax=plt.subplots()[1], max_n=max_n)


def test_whole_data_losses_are_batched_and_exact():
    x, y = torch.randn(1000, 3), torch.randn(1000, 1)
    for f in (lambda p, t: F.mse_loss(p[:, :1], t), lambda p, t: F.l1_loss(p.sum(1, keepdim=True), t),
              lambda p, t: F.huber_loss(p.mean(1, keepdim=True), t)):
        assert float(mean_over_rows(f, x, y, bs=7)) == pytest.approx(float(f(x, y)), rel=1e-5)  # 143 batches, weighted
        assert torch.equal(mean_over_rows(f, x, y, bs=1000), f(x, y))  # up to bs rows: one pass, the very same number
    # more rows than one forward pass takes: train_loss, the history's last loss and show_fit's caption agree with one pass
    learn = quiet_fit(regression_learner(synth_linear(n=EVAL_ROWS + 5_000, seed=2).dataloaders(bs=None, valid_pct=0)), 2)
    with torch.no_grad(): direct = float(F.mse_loss(learn.model(learn.dls.train.x), learn.dls.train.y))
    assert learn.train_loss() == pytest.approx(direct, rel=1e-5)
    assert float(learn.param_history.losses[-1]) == pytest.approx(direct, rel=1e-5)
    assert f"loss {direct:.4g}" in show_fit(learn).texts[0].get_text()


def test_data_show_of_big_data_is_a_stated_sample():
    s = synth_linear(n=30_000, seed=1)
    s.show()
    (ax,) = plt.gcf().axes
    assert ax.get_title() == '10,000 of 30,000 points shown' and len(ax.collections[0].get_offsets()) == MAX_POINTS
    plt.close('all')
    s.dataloaders().show()
    assert [(a.get_title(), len(a.collections[0].get_offsets())) for a in plt.gcf().axes] == \
        [('train (8,000 of 24,000 shown)', 8_000), ('valid (2,000 of 6,000 shown)', 2_000)]
    plt.close('all')
    small = synth_linear(n=100, seed=1)
    small.show()
    (ax,) = plt.gcf().axes
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), torch.cat([small.x, small.y], 1).numpy())
    assert ax.get_title() == ''
    plt.close('all')
    small.dataloaders().show()
    assert [a.get_title() for a in plt.gcf().axes] == ['train (80)', 'valid (20)']

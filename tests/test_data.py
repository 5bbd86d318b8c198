"Generators and RegDataLoaders: shapes, truth, seeds, splits, batches."
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from fastai.data.core import DataLoaders

from fastfit.all import RegDataLoaders, SynthData, synth_linear, synth_multilinear, synth_poly, synth_rollercoaster


def test_synth_linear_shapes_params_and_noise_free_line():
    s = synth_linear(n=50, a=3., b=2., noise=0., x_range=(0, 2), seed=1)
    assert isinstance(s, SynthData) and s.x.shape == (50, 1) and s.y.shape == (50, 1)
    assert s.x.dtype == s.y.dtype == torch.float32
    assert s.params == {'a': 3.0, 'b': 2.0}
    assert s.x.min() >= 0 and s.x.max() <= 2
    torch.testing.assert_close(s.y, 3 * s.x + 2)


def test_synth_linear_noise_dists():
    n = synth_linear(n=4000, noise=.5, seed=0)
    u = synth_linear(n=4000, noise=.5, dist='uniform', seed=0)
    rn, ru = n.y - (3 * n.x + 2), u.y - (3 * u.x + 2)
    assert abs(float(rn.std()) - .5) < .03 and abs(float(rn.mean())) < .03
    assert float(ru.min()) >= 0 and float(ru.max()) <= .5 and abs(float(ru.mean()) - .25) < .02


def test_synth_linear_add_ones_is_seed_002_layout():
    s = synth_linear(n=10, add_ones=True)
    assert s.x.shape == (10, 2) and bool((s.x[:, 1] == 1).all())
    torch.testing.assert_close(s.truth['w'], torch.tensor([3., 2.]))


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = synth_linear(seed=3), synth_linear(seed=3), synth_linear(seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_synth_multilinear_is_d2l():
    s = synth_multilinear(n=1000, seed=0)
    assert s.x.shape == (1000, 2) and s.params == {'w': (2.0, -3.4), 'b': 4.2}
    res = s.y - (s.x @ torch.tensor([[2.], [-3.4]]) + 4.2)
    assert float(res.abs().max()) < .05


def test_synth_poly_highest_power_first():
    s = synth_poly(coeffs=(1., 0., -2.), x=[0., 1., 2., 3.], noise=0.)
    assert s.params == {'c2': 1.0, 'c1': 0.0, 'c0': -2.0}
    torch.testing.assert_close(s.y.flatten(), torch.tensor([-2., -1., 2., 7.]))


def test_synth_rollercoaster_is_fastbooks_formula():
    s = synth_rollercoaster(seed=0)
    torch.manual_seed(0)
    time = torch.arange(0, 20).float()
    speed = torch.randn(20) * 3 + 0.75 * (time - 9.5) ** 2 + 1
    torch.testing.assert_close(s.x.flatten(), time)
    torch.testing.assert_close(s.y.flatten(), speed)
    # the expanded truth is the same curve
    c = s.params
    torch.testing.assert_close(c['c2'] * time ** 2 + c['c1'] * time + c['c0'], 0.75 * (time - 9.5) ** 2 + 1)


def test_from_arrays_is_a_fastai_dataloaders_of_tensor_slices():
    x, y = np.linspace(0, 1, 100), np.arange(100.)
    dls = RegDataLoaders.from_arrays(x, y, valid_pct=.2, bs=16, seed=0)
    assert isinstance(dls, DataLoaders)
    assert dls.train.n == 80 and dls.valid.n == 20 and dls.n_in == 1
    assert len(dls.train) == 5 and len(dls.valid) == 2  # train drops the last partial batch, valid keeps it
    xb, yb = dls.one_batch()
    assert xb.shape == (16, 1) and yb.shape == (16, 1)
    # the split is a partition of the data, and x/y rows stay paired
    allx = torch.cat([dls.train.x, dls.valid.x]).flatten().sort().values
    torch.testing.assert_close(allx, torch.linspace(0, 1, 100).float())
    torch.testing.assert_close(dls.train.y.flatten(), (dls.train.x.flatten() * 99).round())


def test_epoch_shuffles_and_covers_the_training_set():
    dls = RegDataLoaders.from_arrays(torch.arange(64.), torch.arange(64.), valid_pct=0, bs=16, seed=0)
    e1 = torch.cat([xb for xb, _ in dls.train]).flatten()
    e2 = torch.cat([xb for xb, _ in dls.train]).flatten()
    assert sorted(e1.tolist()) == list(range(64)) and not torch.equal(e1, e2)


def test_full_batch_and_lists():
    dls = RegDataLoaders.from_arrays([1, 2, 3, 4], [2, 4, 6, 8], valid_pct=0, bs=None)
    assert len(dls.train) == 1 and len(dls.valid) == 0 and not dls.has_valid
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 1) and xb.dtype == torch.float32


def test_explicit_valid_and_device():
    dls = RegDataLoaders.from_arrays(np.ones((10, 3)), np.ones(10), valid=(np.zeros((4, 3)), np.zeros(4)), device='cpu')
    assert dls.train.n == 10 and dls.valid.n == 4 and dls.n_in == 3
    assert dls.device == torch.device('cpu') and dls.train.x.device.type == 'cpu'


def test_dataloader_new_protocol():
    dls = RegDataLoaders.from_arrays(torch.arange(40.), torch.arange(40.), valid_pct=0, bs=8)
    dl = dls.train.new(shuffle=False, drop_last=False)
    assert torch.equal(torch.cat([b[0] for b in dl]), dls.train.x) and len(dl) == 5


def test_synth_dataloaders_carry_truth():
    dls = synth_linear().dataloaders(bs=None)
    assert set(dls.truth) == {'w', 'b'}


def test_show_functions_draw(tmp_path):
    s = synth_multilinear(n=50)
    assert s.show() is None and len(plt.gcf().axes) == 2  # drawn with pyplot; nothing returned to print
    dls = synth_linear().dataloaders()
    _, axs = plt.subplots(1, 2)
    assert dls.show(axs=axs) is None and plt.gcf() is axs[0].figure
    assert axs[0].get_title().startswith('train') and axs[1].get_title().startswith('valid')
    assert dls.show_batch() is None and len(plt.gcf().axes) == 1
    with pytest.raises(ValueError, match='axs holds 1 Axes but there are train and valid to draw: give 2'): dls.show(axs=axs[:1])


@pytest.mark.parametrize('bad', [dict(n=0), dict(n=-5), dict(noise=-1.), dict(dist='cauchy'), dict(x_range=(1, 1))])
def test_generator_rejects_bad_arguments(bad):
    with pytest.raises((ValueError, TypeError)) as e:
        synth_linear(**bad)
    assert list(bad)[0] in str(e.value)


@pytest.mark.parametrize('device', ['gpu', 'cuda:0'] if not torch.cuda.is_available() else ['gpu'])
def test_unusable_device_is_a_clear_error(device):
    with pytest.raises(ValueError, match='device'):
        RegDataLoaders.from_arrays([1., 2, 3], [1., 2, 3], valid_pct=0, device=device)


def test_default_device_follows_fastai(monkeypatch):
    import fastfit.data as data
    monkeypatch.setattr(data, 'default_device', lambda: torch.device('meta'))  # what fastai picks is what we use
    assert data._device(None) == torch.device('meta')
    assert data._device('cpu') == torch.device('cpu')


@pytest.mark.parametrize('which', ['x', 'y', 'x_valid'])
def test_values_too_large_for_float32_are_named_not_called_nan(which):
    "Finite float64 values beyond float32 (1e300) are 'too large for float32', with a rescale hint, not 'NaN/inf'."
    x, y = np.linspace(0, 1, 10), np.linspace(0, 1, 10)
    arrs = dict(x=x, y=y, x_valid=np.array([0., .5, 1.]))
    arrs[which] = arrs[which] * 1e300
    with pytest.raises(ValueError, match=rf"{which} holds values too large for float32 \(largest \|value\| 1e\+300, float32 "
                                         rf"stops at 3.4e\+38\): rescale {which} before fitting, e.g. divide it by 1e\+300"):
        RegDataLoaders.from_arrays(arrs['x'], arrs['y'], valid=(arrs['x_valid'], y[:3]) if which == 'x_valid' else None)
    with pytest.raises(ValueError, match=r'x holds 1 NaN/inf value\(s\)'):  # a real inf is still called one
        RegDataLoaders.from_arrays(np.array([1., np.inf, 2.]), [1., 2., 3.])


def test_test_dl_new_inputs():
    dls = synth_linear(n=50).dataloaders(bs=None)
    dl = dls.test_dl(np.linspace(-1, 1, 7), bs=3)
    assert len(dl) == 3 and [b[0].shape for b in dl] == [(3, 1), (3, 1), (1, 1)] and all(len(b) == 1 for b in dl)
    assert dls.test_dl(2.).x.tolist() == [[2.]]
    with pytest.raises(ValueError, match=r"test_items have 2 feature\(s\) \(shape \(3, 2\)\) but the model was fitted on 1"):
        dls.test_dl(np.ones((3, 2)))
    with pytest.raises(ValueError, match='test_items: x and y lengths differ: 3 and 2'):
        dls.test_dl((np.ones(3), np.ones(2)), with_labels=True)
    empty = dls.new_empty()
    assert type(empty) is type(dls) and empty.n_in == 1 and len(empty.train.x) == 0 and empty.truth == dls.truth
    assert dls.train_ds.tensors[0] is dls.train.x and len(dls.valid_ds) == 10

"""Metrics: fastfit's learners compute fastai's `accuracy`, `error_rate` and the validation loss in plain torch, with
fastai's names and values: every epoch's record equals stock fastai's (its `Learner`, `Recorder`, `AvgMetric`)."""
import numpy as np
import pytest
import torch
from fastai.learner import AvgMetric, Learner, Metric
from fastai.metrics import Precision, accuracy, accuracy_multi, error_rate
from fastai.optimizer import SGD

from fastfit.all import (
    BCEWithLogits,
    CrossEntropy,
    LogisticModel,
    SoftmaxModel,
    binary_accuracy,
    binary_error_rate,
    classification_learner,
    synth_blobs,
)


def quiet_fit(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


def test_binary_accuracy_is_fastais_accuracy_multi_as_a_plain_tensor():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 1, generator=g) * 3
    z[:5] = 0.  # sigmoid(0) = .5 is not above the threshold
    t = torch.randint(0, 2, (200, 1), generator=g)
    for args in [(), (.7,), (.3, True), (.2, False)]:
        assert float(binary_accuracy(z, t, *args)) == float(accuracy_multi(z, t, *args))
        assert float(binary_error_rate(z, t, *args)) == float(1 - accuracy_multi(z, t, *args))
    got = binary_accuracy(z, t)
    # fastai's flatten_check returns a TensorBase, each of whose ops (and the Recorder's sums of it) costs ~10x
    assert type(got) is torch.Tensor and got.shape == ()


def test_binary_accuracy_refuses_what_fastai_refuses():
    with pytest.raises(AssertionError):
        accuracy_multi(torch.zeros(4, 1), torch.zeros(3, 1))
    with pytest.raises(AssertionError):
        binary_accuracy(torch.zeros(4, 1), torch.zeros(3, 1))
    assert float(binary_accuracy(torch.ones(4), torch.ones(4, 1))) == 1.  # as many elements: fastai flattens both


def test_accuracies_counted_are_their_float32_means():
    """The Recorder counts an accuracy's hits (`hits`) instead of averaging them: the same float32 for every count of
    every batch size tried, on a fastfit fit and directly (the count over n as a double, then rounded to float32)."""
    from fastfit.fastai_private import _as_float32, _plain_accuracy
    for n in range(1, 400):
        means = (torch.arange(n + 1, dtype=torch.float32) / n).tolist()  # float32's division, as `mean` ends
        assert means == [_as_float32(c / n) for c in range(n + 1)], n
    g = torch.Generator().manual_seed(0)
    for n in [1, 2, 3, 7, 199, 1000, 4097, 65_537, 1 << 23]:
        for c in {0, 1, n // 3, n - 1, n}:
            h = torch.zeros(n, dtype=torch.bool)
            h[torch.randperm(n, generator=g)[:c]] = True
            assert h.mean(dtype=torch.float32).item() == h.float().mean().item() == _as_float32(h.count_nonzero().item() / n)
    z, t = torch.randn(50, 1, generator=g), torch.randint(0, 2, (50, 1), generator=g)
    assert binary_accuracy(z, t) == binary_accuracy.hits(z, t).mean(dtype=torch.float32)
    z3, t3 = torch.randn(50, 3, generator=g), torch.randint(0, 3, (50, 1), generator=g)
    assert _plain_accuracy(z3, t3) == _plain_accuracy.hits(z3, t3).float().mean() == accuracy(z3, t3)
    with pytest.raises(AssertionError): _plain_accuracy.hits(z3, t3[:40])  # fastai's error
    # a fit's records, counted (full batch, 2 classes; batches of 16, 3 classes) and averaged (the hits hidden)
    for centers, bs in [(2, None), (3, 16)]:
        s = synth_blobs(n=173, centers=centers, seed=5)
        fit = lambda: quiet_fit(classification_learner(s.dataloaders(bs=bs), lr=.5, history=False), 15)  # noqa: E731
        counted = fit()
        f = binary_accuracy if centers == 2 else _plain_accuracy
        hits = f.hits
        try:
            del f.hits
            averaged = fit()
        finally: f.hits = hits
        assert counted.recorder.values == averaged.recorder.values
        assert counted.metrics[0].total == averaged.metrics[0].total and counted.metrics[0].count == averaged.metrics[0].count


def test_metrics_are_fastais_metrics():
    dls = synth_blobs(n=60, centers=3).dataloaders(bs=None)
    learn = classification_learner(dls, metrics=[accuracy, error_rate, Precision(average='macro')])
    acc, err, prec = learn.metrics
    assert isinstance(acc, AvgMetric) and acc.func is accuracy
    assert [m.name for m in learn.metrics] == ['accuracy', 'error_rate', 'precision_score']
    assert err.func is error_rate and isinstance(prec, Metric) and not isinstance(prec, AvgMetric)
    learn.metrics = error_rate  # set after creation, as in fastai: a function becomes an average, a Metric class an instance
    assert [m.name for m in learn.metrics] == ['error_rate'] and learn.metrics[0].func is error_rate
    class Count(Metric):
        def reset(self): self.n = 0
        def accumulate(self, learn): self.n += len(learn.yb[0])
        @property
        def value(self): return self.n
    learn.metrics = [Count]
    assert type(learn.metrics[0]) is Count and learn.metrics[0].name == 'count'
    quiet_fit(learn, 2)
    assert learn.recorder.values[-1][-1] == 12  # the validation rows (20% of 60)


def stock(dls, model, loss_func, metrics, lr):
    "fastai's own Learner: its Recorder, AvgLoss and AvgMetric (fastai's flatten_check and to_detach), its loop."
    return Learner(dls, model, loss_func=loss_func, opt_func=SGD, lr=lr, metrics=metrics)


@pytest.mark.parametrize('centers, bs', [(2, None), (2, 16), (3, None), (3, 16)])
def test_every_epoch_records_what_stock_fastai_records(centers, bs):
    "The validation loss and each metric after every epoch, full batch and in batches (an uneven last one), 2 and 3 classes."
    s = synth_blobs(n=170, centers=centers, seed=3)
    two = centers == 2
    mk = (lambda: LogisticModel(2)) if two else (lambda: SoftmaxModel(2, 3))
    ours = quiet_fit(classification_learner(s.dataloaders(bs=bs), model=mk(), lr=.5, metrics=[accuracy, error_rate]), 12)
    fastais = ([accuracy_multi, lambda p, t: 1 - accuracy_multi(p, t)] if two else [accuracy, error_rate])
    theirs = quiet_fit(stock(s.dataloaders(bs=bs), mk(), BCEWithLogits() if two else CrossEntropy(), fastais, .5), 12)
    assert [m.name for m in ours.metrics] == (['binary_accuracy', 'binary_error_rate'] if two else ['accuracy', 'error_rate'])
    a, b = np.array(ours.recorder.values), np.array(theirs.recorder.values)
    assert a.shape == b.shape == (12, 4)
    np.testing.assert_allclose(a[:, 1:], b[:, 1:], rtol=1e-6, atol=1e-7)  # valid_loss, accuracy, error_rate
    assert 0 < a[-1, 2] <= 1 and np.allclose(a[:, 2] + a[:, 3], 1)
    for p, q in zip(ours.model.parameters(), theirs.model.parameters()): torch.testing.assert_close(p, q)
    # the metrics' own state, as fastai leaves it after the last validation (a tensor total over the samples)
    m, n = ours.metrics[0], theirs.metrics[0]
    assert m.count == n.count == len(s.dataloaders(bs=bs).valid.x) and type(m.value) is torch.Tensor
    torch.testing.assert_close(m.value, torch.as_tensor(n.value))
    assert ours.recorder.loss.count == theirs.recorder.loss.count
    torch.testing.assert_close(ours.recorder.loss.value, torch.as_tensor(theirs.recorder.loss.value))


def test_validate_outside_a_fit_and_a_custom_metric():
    s = synth_blobs(n=120, seed=1)
    def share_positive(pred, targ): return (pred > 0).float().mean()
    ours = classification_learner(s.dataloaders(bs=None), metrics=[accuracy, share_positive])
    theirs = stock(s.dataloaders(bs=None), LogisticModel(2), BCEWithLogits(), [accuracy_multi, share_positive], .1)
    np.testing.assert_allclose(ours.validate(), theirs.validate(), rtol=1e-6)
    quiet_fit(ours, 3); quiet_fit(theirs, 3)
    np.testing.assert_allclose(ours.validate(), theirs.validate(), rtol=1e-6)


def test_bce_keeps_the_labels_as_floats_yet_sees_every_change():
    "BCEWithLogits casts the int labels once for the next calls (full batch: the same tensors every epoch)."
    import pickle

    import torch.nn.functional as F
    f, g = BCEWithLogits(), torch.Generator().manual_seed(0)
    p, t, v = torch.randn(30, 1, generator=g), torch.randint(0, 2, (30, 1), generator=g), torch.randint(0, 2, (9, 1), generator=g)
    for _ in range(3):  # training and validation labels in turn
        assert float(f(p, t)) == float(F.binary_cross_entropy_with_logits(p, t.float()))
        assert float(f(p[:9], v)) == float(F.binary_cross_entropy_with_logits(p[:9], v.float()))
    t[:5] = 1 - t[:5]  # labels changed in place: the new ones count
    assert float(f(p, t)) == float(F.binary_cross_entropy_with_logits(p, t.float()))
    assert float(f(p.double(), t)) == float(F.binary_cross_entropy_with_logits(p.double(), t.double()))
    assert pickle.loads(pickle.dumps(f)).__dict__ == {'reduction': 'mean'}  # learn.export keeps no copies of the data


def test_bce_goes_through_torchs_function_where_its_checks_matter():
    """BCEWithLogits calls torch's op directly only where F's checks pass: a torch-function mode sees F's call, a shape
    mismatch gets F's error, and its kept labels go with the loss."""
    import gc

    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    from fastfit import classify
    class Seen(TorchFunctionMode):
        def __init__(self): super().__init__(); self.funcs = []
        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.funcs.append(func)
            return func(*args, **(kwargs or {}))
    f, p, t = BCEWithLogits(), torch.randn(6, 1), torch.tensor([[0], [1], [1], [0], [1], [0]])
    plain = f(p, t)
    assert float(plain) == float(F.binary_cross_entropy_with_logits(p, t.float()))
    with Seen() as mode: assert float(f(p, t)) == float(plain)
    assert F.binary_cross_entropy_with_logits in mode.funcs
    with pytest.raises(ValueError, match='must be the same as input size'): f(p, t.view(1, 6))
    assert f(p, t).shape == () and BCEWithLogits('none')(p, t).shape == (6,) and float(BCEWithLogits('sum')(p, t)) == \
        float(F.binary_cross_entropy_with_logits(p, t.float(), reduction='sum'))
    key = id(f)
    assert key in classify._CASTS
    del f; gc.collect()
    assert key not in classify._CASTS

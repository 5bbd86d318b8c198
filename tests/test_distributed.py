"""`learn.distrib_ctx()`: 2 processes on CPU (torchrun, gloo) give rank 0 the history and pictures of a one-process fit over
the same global batches; ranks > 0 write nothing. The NCCL/GPU choices are checked here without a GPU."""
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from fastai.learner import load_learner

import fastfit.all  # noqa: F401 (learn.save_animation)
from fastfit import fastai_private
from fastfit.data import RegDataLoaders, TensorDL, synth_linear
from fastfit.learner import regression_learner
from fastfit.writers import exported_frames

pytest.importorskip('accelerate', reason="fastfit-gd[distributed] (accelerate) is not installed")
from fastfit.distributed import MeanOverRanks, ShardedTensorDL  # noqa: E402 (imports accelerate)

ROOT = Path(__file__).parents[1]
SCRIPT = Path(__file__).with_name('distributed_fit.py')
TIMEOUT = 300  # seconds: a hang (a collective one rank never joins) fails the test instead of stalling CI
_spec = importlib.util.spec_from_file_location('distributed_fit', SCRIPT)
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


@pytest.fixture(scope='module')
def launched(tmp_path_factory):
    "Run tests/distributed_fit.py on 2 CPU processes (torchrun picks a free port); (its output folder, rank logs, seconds)."
    out, logs = tmp_path_factory.mktemp('out'), tmp_path_factory.mktemp('logs')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), 'OMP_NUM_THREADS': '1',
           'CUDA_VISIBLE_DEVICES': '', 'MPLBACKEND': 'Agg'}
    env.pop('RANK', None); env.pop('WORLD_SIZE', None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2',
           '--log-dir', str(logs), '--redirects', '3', str(SCRIPT), str(out)]
    t = time.perf_counter()
    # A session of its own, so a timeout kills torchrun and both workers together.
    p = subprocess.Popen(cmd, env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try: text, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        text, _ = p.communicate()
        pytest.fail(f"2-process fit did not finish in {TIMEOUT} s (a hang?):\n{text[-3000:]}")
    secs = time.perf_counter() - t
    def log(rank, stream): return ''.join(f.read_text() for f in logs.rglob(f'{rank}/{stream}.log'))
    if p.returncode:
        pytest.fail(f"torchrun exited with {p.returncode}:\n{text[-3000:]}\n" +
                    ''.join(f"rank {r}:\n{log(r, 'stderr')[-2000:]}\n" for r in range(2)))
    print(f"2-process run: {secs:.1f} s")
    return out, log, secs


def _close(a, b, what, atol=1e-6):  # reached: parameters within 6e-8, losses and gradients within 1e-6 (values up to ~6)
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=1e-5, equal_nan=True), (what, float((a - b).abs().nan_to_num().max()))


def _same_records(got, learn, what, epochs=slice(None)):
    "The history and recorder rank 0 saved (`got`) are `learn`'s (the recorder's rows `epochs` of both)."
    h = learn.param_history
    assert got['names'] == list(h.params), what  # 'w', 'b': no `module.` prefix
    assert got['steps'].tolist() == h.steps.tolist(), what
    for k, v in h.params.items(): _close(got['params'][k], v, f'{what}: {k}')
    _close(got['losses'], h.losses, f'{what}: losses')
    for k, v in h.grads.items(): _close(got['grads'][k], v, f'{what}: grad of {k}')
    a, b = (np.array(v[epochs], dtype=float) for v in (got['values'], learn.recorder.values))
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-5), (what, a, b)


@pytest.mark.filterwarnings('ignore:load_learner')
def test_rank0_records_a_full_batch_fit_as_one_process(launched, tmp_path):
    out, log, _ = launched
    got = torch.load(out / 'rank0' / 'records.pt', weights_only=False)
    train, valid, test = script.data()
    one = script.full_learner(train, valid)
    with one.no_bar(), one.no_logging(): one.fit(script.FULL['epochs'])
    _same_records(got['full'], one, 'full batch')
    assert got['full']['model'] == 'LinearModel' and got['loss_func'] == 'mse_loss'  # unwrapped after the fit
    # get_preds in the context gathers both ranks' predictions, the padding row dropped: all 15 test rows, in order
    pred = one.get_preds(dl=one.dls.test_dl(test, with_labels=True))[0]
    _close(got['preds'], pred, 'get_preds'); _close(got['targs'], test[1], 'targets')
    # rank 0's GIF is the one-process GIF, frame for frame
    one.save_animation(tmp_path / 'one.gif', frames=6)
    a, b = exported_frames(out / 'rank0' / 'fit.gif'), exported_frames(tmp_path / 'one.gif')
    assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    # rank 0's export is a one-process learner with the history
    learn = load_learner(out / 'rank0' / 'learn.pkl')
    assert learn.param_history.steps.tolist() == one.param_history.steps.tolist()
    assert type(learn.model).__name__ == 'LinearModel' and learn.loss_func.__name__ == 'mse_loss'


def test_rank0_records_shuffled_minibatches_as_one_process_over_the_global_batches(launched):
    "Each rank sees its contiguous shard of each epoch's order (rank 0's); a step's global batch is both ranks' batch k."
    out, _, _ = launched
    got = torch.load(out / 'rank0' / 'records.pt', weights_only=False)['mini']
    train = script.mini_learner(script.data()[0]).dls.train  # the 2 ranks' loader, as on one process
    x, y = train.x, train.y
    m, bs, gen = len(x) // 2, script.MINI['bs'], torch.Generator().manual_seed(script.MINI['seed'])
    rows = []
    for _ in range(script.MINI['epochs']):
        perm = torch.randperm(len(x), generator=gen)  # TensorDL's order for the epoch (rank 0 draws it, broadcasts it)
        for k in range(m // bs): rows += [perm[k * bs:(k + 1) * bs], perm[m + k * bs:m + (k + 1) * bs]]
    rows = torch.cat(rows)
    # One process, one epoch over the global batches in the order the 2 ranks took them
    dls = RegDataLoaders(TensorDL(x[rows], y[rows], bs=2 * bs), TensorDL(x[:0], y[:0]))
    one = regression_learner(dls, lr=script.MINI['lr'])
    with one.no_bar(), one.no_logging(): one.fit(1)
    assert len(got['steps']) == 1 + script.MINI['epochs'] * (m // bs)
    _same_records(got, one, 'minibatches', epochs=slice(-1, None))  # the smoothed loss at the end (2 epochs there, 1 here)


def test_ranks_above_0_write_and_print_nothing(launched):
    out, log, _ = launched
    assert sorted(p.name for p in (out / 'rank0').iterdir()) == ['fit.gif', 'learn.pkl', 'records.pt']
    assert list((out / 'rank1').iterdir()) == []  # save_animation, export, AnimateFit...: nothing
    assert log(1, 'stdout') == ''  # no progress table or bar
    assert 'train_loss' in log(0, 'stdout')


# -- without a process group: the choices made per device and per rank -------------------------------------------------
def test_backend_and_accelerator_arguments_follow_the_device():
    assert fastai_private.backend_for(cuda=True) == 'nccl' and fastai_private.backend_for(cuda=False) == 'gloo'
    assert fastai_private.accelerator_kwargs({}, cuda=False) == {'cpu': True}  # else accelerate sees no distributed run
    assert fastai_private.accelerator_kwargs({}, cuda=True) == {}
    assert fastai_private.accelerator_kwargs({'cpu': False}, cuda=False) == {'cpu': False}


@pytest.mark.parametrize('cuda, backend', [(False, 'gloo'), (True, 'nccl')])
def test_setup_distrib_picks_the_backend_and_gpu_by_device(monkeypatch, cuda, backend):
    calls = []
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(dist, 'init_process_group', lambda **kw: calls.append(('init', kw['backend'])))
    monkeypatch.setattr(torch.cuda, 'set_device', lambda d: calls.append(('gpu', d)))
    assert fastai_private.setup_distrib(1, cuda=cuda) == 1
    assert calls == ([('gpu', 1)] if cuda else []) + [('init', backend)]


@pytest.mark.parametrize('backend, device', [('gloo', 'cpu'), ('nccl', 'cuda:1')])
def test_collectives_run_where_the_backend_wants_them(monkeypatch, backend, device):
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_backend', lambda *a: backend)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 1)  # the GPU this rank's process set (LOCAL_RANK)
    assert fastai_private.collective_device() == torch.device(device)


def test_shards_cover_the_data_with_equal_batches_per_rank():
    x = torch.arange(7.)[:, None]
    dl = TensorDL(x, x * 2, bs=2)
    shards = [ShardedTensorDL(dl, r, 2, device='cpu') for r in range(2)]
    got = [[b[0].flatten().tolist() for b in s] for s in shards]
    assert got == [[[0., 1.], [2., 3.]], [[4., 5.], [6., 0.]]]  # rank 1's shard padded with the order's start, as fastai
    assert len(shards[0]) == len(shards[1]) == 2
    full = [next(iter(ShardedTensorDL(TensorDL(x, x, bs=None), r, 2)))[0].flatten().tolist() for r in range(2)]
    assert full == [[0., 1., 2., 3.], [4., 5., 6., 0.]]  # full batch: each rank's shard is its one batch
    with pytest.raises(ValueError, match='rank'): ShardedTensorDL(dl, 2, 2)


def test_mean_over_ranks_keeps_the_loss_name_and_gradient(monkeypatch):
    monkeypatch.setattr(dist, 'all_reduce', lambda t, op: t.add_(2.))  # the sum, as if the other rank's loss were 2
    loss = MeanOverRanks(torch.nn.functional.mse_loss, 2)
    w = torch.tensor(1., requires_grad=True)
    v = loss(w * torch.ones(3), torch.zeros(3))
    assert v.item() == (1. + 2.) / 2  # this rank's loss is 1: the mean of 1 and 2, exactly
    v.backward()
    assert w.grad.item() == pytest.approx(2.)  # this rank's own: d/dw mean((w - 0)^2) = 2w
    assert loss.__name__ == 'mse_loss'


def test_distrib_ctx_on_one_process_changes_nothing(monkeypatch):
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    learn = regression_learner(synth_linear(n=20).dataloaders(bs=None, valid_pct=0), lr=.1)
    cbs = list(learn.cbs)
    with learn.no_bar(), learn.no_logging(), learn.distrib_ctx(): learn.fit(3)
    assert list(learn.cbs) == cbs and learn.param_history.steps.tolist() == [0, 1, 2, 3]


def test_fastai_loaders_broadcast_their_order_without_cuda(tmp_path):
    "fastai's `DistributedDL` (for loaders other than fastfit's) broadcasts each epoch's order with `.cuda()`; ours on the CPU."
    from fastai.data.load import DataLoader
    from fastai.distributed import DistributedDL

    from fastfit.distributed import RegDistributedDL
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        dl = DataLoader(list(range(10)), bs=4, shuffle=True)
        if not torch.cuda.is_available():
            with pytest.raises((AssertionError, RuntimeError)): DistributedDL(dl, rank=0, world_size=1).get_idxs()
        batches = [b.tolist() for b in RegDistributedDL(dl, rank=0, world_size=1)]
        assert sorted(sum(batches, [])) == list(range(10)) and [len(b) for b in batches] == [4, 4, 2]
    finally: dist.destroy_process_group()

"""The loss landscape's grid: batched (`LossPlane.grid`: MLPModel's own `forward_many`, batched matmuls with the
activation in place, chunked) vs a Python loop of forward passes, on the same plane, same values (run by `make bench`).
Also the generic batched path any model takes (`vmap` over `functional_call`), for comparison.

A 100x100 grid after a 300-step fit (its path gives the plane), for the issue's case, a ~100-parameter MLP on 1,000 points
(MLPModel(hidden=(32,)): 97 parameters; and hidden=(8, 8): 97 in two layers), and the notebook's (16 units, 200 points).
Two loops: one `functional_call` per grid point (the batched code's own step, unbatched), and the parameters copied
into the model for each point (`vector_to_parameters`, as loss-landscape-anim does). One thread, round-robin, median of
3 repeats. Not a pass/fail test.
"""
import statistics
import time

import torch
from torch.func import functional_call

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402

fp.NO_BAR = True
from fastfit.all import LossPlane, MLPModel, regression_learner, synth_func  # noqa: E402
from fastfit.records import _finite_records  # noqa: E402

N, REPEATS = 100, 3


def setup(n, hidden):
    s = synth_func(torch.sin, n=n, seed=0)
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=MLPModel(hidden=hidden), lr=.05)
    with learn.no_bar(), learn.no_logging(): learn.fit(300)
    h = learn.param_history
    plane = LossPlane(learn, [h.flat[_finite_records(h)]])
    xy = plane.coords(h.flat)
    pad = .2 * (xy.max(0) - xy.min(0))
    lims = [(float(lo), float(hi)) for lo, hi in zip(xy.min(0) - pad, xy.max(0) + pad)]
    return learn, plane, lims


def thetas(plane, lims):
    "The grid's parameter vectors, row by row as `LossPlane.grid` orders them."
    a, b = torch.linspace(*lims[0], N, dtype=torch.float64), torch.linspace(*lims[1], N, dtype=torch.float64)
    B, A = torch.meshgrid(b, a, indexing='ij')
    return plane.base + torch.stack([A.ravel(), B.ravel()], 1).float() @ plane.D.float()


def loop_functional_call(learn, plane, lims):
    x, y, model, loss_func = learn.dls.train.x, learn.dls.train.y, plane.model, learn.loss_func
    ts = thetas(plane, lims)
    with torch.no_grad(): return torch.stack([loss_func(functional_call(model, plane._unflat(t), (x,)), y) for t in ts])


def loop_in_place(learn, plane, lims):
    x, y, model, loss_func = learn.dls.train.x, learn.dls.train.y, plane.model, learn.loss_func
    ps, out = list(model.parameters()), []
    saved = torch.nn.utils.parameters_to_vector(ps).detach().clone()
    with torch.no_grad():
        for t in thetas(plane, lims):
            torch.nn.utils.vector_to_parameters(t, ps)
            out.append(loss_func(model(x), y))
        torch.nn.utils.vector_to_parameters(saved, ps)
    return torch.stack(out)


def batched(plane, lims):
    return torch.from_numpy(plane.grid(*lims, n=N)[2]).float().ravel()


def batched_vmap(plane, lims):
    "The generic path, for any model: vmap over functional_call (MLPModel's own `forward_many` hidden)."
    plane.model.forward_many = None
    try: return batched(plane, lims)
    finally: del plane.model.forward_many


def run(n, hidden):
    learn, plane, lims = setup(n, hidden)
    n_params = sum(p.numel() for p in learn.model.parameters())
    fs = dict(fc=lambda: loop_functional_call(learn, plane, lims), inplace=lambda: loop_in_place(learn, plane, lims),
              vmap=lambda: batched_vmap(plane, lims), many=lambda: batched(plane, lims))
    ts, vals = {k: [] for k in fs}, {}
    for _ in range(REPEATS):
        for k, f in fs.items():
            t = time.perf_counter(); vals[k] = f(); ts[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in ts.items()}
    diff = max(float((vals[k] - vals[b]).abs().max() / vals[k].abs().max()) for k in ('fc', 'inplace') for b in ('vmap', 'many'))
    print(f"{str(hidden):<8} {n_params:>6} {n:>7,} {med['fc']:9.2f} {med['inplace']:9.2f} {med['vmap']:9.2f} {med['many']:9.2f} "
          f"{med['fc'] / med['many']:8.1f}x {med['inplace'] / med['many']:8.1f}x {med['vmap'] / med['many']:8.1f}x {diff:10.1e}")


if __name__ == '__main__':
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, median of {REPEATS}: {N}x{N} grid, seconds")
    print(f"{'hidden':<8} {'params':>6} {'points':>7} {'loop fc':>9} {'loop copy':>9} {'vmap':>9} {'batched':>9} "
          f"{'vs fc':>9} {'vs copy':>9} {'vs vmap':>9} {'max diff':>10}")
    for n, hidden in ((1000, (32,)), (1000, (8, 8)), (200, (16,))): run(n, hidden)
    print("(max diff: the largest difference from a loop's loss, relative to the largest loss)")

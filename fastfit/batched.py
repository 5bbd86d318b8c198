"""`fit_together`: several runs of one model shape on one data set (an lr sweep, a comparison of optimizers) fitted as
one batch. Every run's parameters are stacked along a new first axis, so one forward and one backward serve them all;
each run keeps its own optimizer (plain SGD: one update for all, each with its own lr). A model linear in its parameters
with MSE or binary cross-entropy takes every run's loss and gradient in closed form (`Quadratic`, `Logistic`), without
autograd, and fastfit's MLP takes them by hand-written backpropagation (`MLPGrad`). Every learner is left as its own
`fit` would leave it, to float round-off: its parameters, its `param_history` (the same records, thinned alike), and
`diverged` with the history cut at its last finite step. `fit_stacked` fits runs that differ only in their lr (an lr
sweep) without building a learner each: `StackedRuns` makes a run's learner, as `fit_together` would leave it, when asked."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from fastai.optimizer import Optimizer, l2_reg, sgd_step, weight_decay
from torch.func import functional_call, vmap

from .classify import BCEWithLogits, CrossEntropy, SeparationNote
from .data import TensorDL, mean_over_rows
from .fastai_private import RegCastToTensor, RegRecorder, RegTrainEval, opt_like
from .history import ParamHistory
from .learner import FitLearner
from .models import LinearModel, MLPModel, PolyModel, RegModel, SoftmaxModel
from .progress import FitProgress

__all__ = ['fit_together', 'fit_stacked', 'StackedRuns', 'MAX_BYTES']

# The records of the runs fitted at once stay under this many bytes: more runs are fitted in several batches.
MAX_BYTES = 500_000_000
_LEAN = (RegTrainEval, RegRecorder, RegCastToTensor, FitProgress, ParamHistory, SeparationNote)


# -- the outputs and losses of G parameter sets at once ---------------------------------------------------------------
def forward_many(model, x:torch.Tensor, ps:dict) -> torch.Tensor:
    "The outputs of `model` for `x` at G parameter sets `ps` (name -> (G, *shape)): (G, n, n_out)."
    t = type(model)
    if t is MLPModel: return model.forward_many(x, ps)
    if t in (LinearModel, SoftmaxModel) or (isinstance(model, LinearModel) and t.forward is LinearModel.forward):
        model._check_features(x, model.n_in)
        # One matrix product (n, n_in) @ (n_in, G * n_out) for every run, not G batched ones over a broadcast x.
        w = ps['w']
        G, k = len(w), 1 if isinstance(model, LinearModel) else w.shape[1]
        y = (x @ w.reshape(G * k, -1).T).view(len(x), G, k).transpose(0, 1)  # (G, n, n_out)
        return y + (ps['b'][:, None, None] if isinstance(model, LinearModel) else ps['b'][:, None, :]) if model.bias else y
    if t is PolyModel:
        model._check_features(x, 1)
        y = torch.zeros(len(next(iter(ps.values()))), *x.shape, dtype=x.dtype, device=x.device)
        for k in model.pnames: y = y * x + ps[k][:, None, None]  # Horner, as PolyModel.forward
        return y
    return vmap(lambda p: functional_call(model, p, (x,)))(ps)


def losses_many(loss_func, pred:torch.Tensor, y:torch.Tensor) -> torch.Tensor:
    "The loss of each of G predictions `pred` (G, n, n_out) against the targets `y` (n, ...): (G,)."
    if loss_func is F.mse_loss: return ((pred - y) ** 2).mean(tuple(range(1, pred.ndim)))
    if type(loss_func) is BCEWithLogits and loss_func.reduction == 'mean':
        t = y.to(pred.dtype).expand_as(pred)
        return F.binary_cross_entropy_with_logits(pred, t, reduction='none').mean(tuple(range(1, pred.ndim)))
    if type(loss_func) is CrossEntropy and loss_func.reduction == 'mean':
        G, n, k = pred.shape
        t = y.reshape(-1).long().repeat(G)
        return F.cross_entropy(pred.reshape(G * n, k), t, reduction='none').view(G, n).mean(1)
    return vmap(loss_func, in_dims=(0, None))(pred, y)


class Quadratic:
    """Every run's MSE and gradient for a model linear in its parameters (pred = X θ, X = `model.design(x)`), from the
    batch's X'X, X'y and y'y in float64: the cost of a step no longer grows with the samples times the runs."""
    float32 = False  # its float64 losses are checked near float32's limit, where a float32 fit of its own overflows
    flat = True  # it takes the parameters flat, (G, P), and gives the gradient so

    def __init__(self, model):
        self.model, self._of = model, None

    @staticmethod
    def fits(model, loss_func, x) -> bool:
        "Whether `model` with `loss_func` is such a problem (MSE, a design matrix with one column per scalar parameter)."
        if loss_func is not F.mse_loss or not isinstance(model, RegModel): return False
        X = model.design(x[:2])
        return X is not None and X.shape[1] == sum(p.numel() for p in model.parameters())

    def _stats(self, x, y) -> tuple:
        if self._of is None or self._of[0] is not x or self._of[1] is not y:  # full batch: the same tensors every step
            X, y64 = self.model.design(x.double()), y.double().reshape(len(y), -1)
            n = len(X)
            self._of = (x, y, X.T @ X / n, (X.T @ y64).reshape(-1) / n, float((y64 * y64).sum() / n))
        return self._of[2:]

    def __call__(self, x, y, theta:torch.Tensor) -> tuple:
        "(loss (G,), gradient (G, P)) at the flat parameters `theta` (G, P) on the batch (x, y), float64."
        A, c, d = self._stats(x, y)
        th = theta.double()
        At = th @ A
        return (At * th).sum(1) - 2 * th @ c + d, 2 * (At - c)


class Logistic:
    """Every run's binary cross-entropy and gradient for a logit linear in the parameters (z = X θ, X = `model.design(x)`,
    the loss `BCEWithLogits`): the gradient X'(σ(z) - y)/n in closed form, in float32 as autograd computes it, without a
    graph per step (the forward, loss and backward of 200 runs through autograd cost 3x more)."""
    float32 = True  # its losses are a float32 fit's own (no float64 to check near float32's limit)
    flat = True  # it takes the parameters flat, (G, P), and gives the gradient so

    def __init__(self, model):
        self.model, self._of = model, None

    @staticmethod
    def fits(model, loss_func, x) -> bool:
        "Whether `model` with `loss_func` is such a problem (mean BCE of one logit, a design matrix column per scalar parameter)."
        if type(loss_func) is not BCEWithLogits or loss_func.reduction != 'mean' or not isinstance(model, RegModel): return False
        X = model.design(x[:2])
        return X is not None and X.shape[1] == sum(p.numel() for p in model.parameters()) and X.dtype == x.dtype

    def __call__(self, x, y, theta:torch.Tensor) -> tuple:
        "(loss (G,), gradient (G, P)) at the flat parameters `theta` (G, P) on the batch (x, y)."
        if self._of is None or self._of[0] is not x or self._of[1] is not y:  # full batch: the same tensors every step
            self._of = (x, y, self.model.design(x), y.reshape(len(y), 1).to(x.dtype))
        X, t = self._of[2:]
        z = X @ theta.T  # (n, G): every run's logits
        loss = F.binary_cross_entropy_with_logits(z, t.expand_as(z), reduction='none').mean(0)
        return loss, (torch.sigmoid(z) - t).T @ X / len(X)


def _relu_backward(d, h): return torch.ops.aten.threshold_backward.grad_input(d, h, 0, grad_input=d)  # 0 where it was 0


# An activation -> (its in-place method, its gradient from dloss/dactivation and its output): the kernels autograd runs.
_ACT_GRADS = {F.relu: ('relu_', _relu_backward), torch.tanh: ('tanh_', torch.ops.aten.tanh_backward),
              torch.sigmoid: ('sigmoid_', torch.ops.aten.sigmoid_backward)}


class MLPGrad:
    """Every run's MSE and gradient for fastfit's `MLPModel` (ReLU, tanh or sigmoid; any depth), backpropagated by hand
    with batched matrix products in float32, as autograd computes them: no graph per step, the one-column products (the
    output layer, its gradient) laid out as row-times-matrix, the activations and their gradients in place. 200 runs of
    a 1-16-1 ReLU MLP on 200 points: ~3-4x faster a step than autograd through `forward_many`."""
    float32, flat = True, False  # its losses are a float32 fit's own; it takes and gives the parameters by name

    def __init__(self, model):
        self.model, self.n, self._of = model, len(model.layers), None
        self.act, self.act_grad = _ACT_GRADS[model.act]

    @staticmethod
    def fits(model, loss_func, x) -> bool:
        "Whether `model` with `loss_func` is such a problem (an MLPModel with a built-in activation, float32, MSE)."
        return loss_func is F.mse_loss and type(model) is MLPModel and model.act in _ACT_GRADS and x.dtype == torch.float32 \
            and all(p.dtype == torch.float32 for p in model.parameters())

    def _design(self, x) -> torch.Tensor:
        "(n, n_in + 1): x and a column of ones, the first layer's weights and bias at once (full batch: made once)."
        if self._of is None or self._of[0] is not x: self._of = (x, torch.cat([x, torch.ones_like(x[:, :1])], 1))
        return self._of[1]

    def __call__(self, x, y, ps:dict) -> tuple:
        "(loss (G,), gradients name -> (G, *shape)) at the parameters `ps` (name -> (G, *shape)) on the batch (x, y)."
        nl, n = self.n, len(x)
        w1, b1 = ps['l1.w'], ps['l1.b']
        G, a, c = w1.shape
        h = torch.addcmul(b1[:, None, :], x[None], w1) if a == 1 else torch.baddbmm(b1[:, None, :], x.expand(G, n, a), w1)
        hs = [x]
        for i in range(2, nl + 1):
            hs.append(getattr(h, self.act)())  # (G, n, units): the activations, kept for the backward pass
            w, b = ps[f'l{i}.w'], ps[f'l{i}.b']
            if w.shape[2] == 1: h = torch.bmm(w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2).add_(b[:, None, :])
            else: h = torch.baddbmm(b[:, None, :], h, w)
        r = h.sub_(y)  # (G, n, n_out): the residuals
        loss = (r * r).mean((1, 2))
        d = r.mul_(2 / r[0].numel())  # dloss/dout
        X = self._design(x)
        if nl == 2 and d.shape[2] == 1 and self.act == 'relu_': return loss, self._one_hidden(X, d, hs[1], ps)
        grads = {}
        for i in range(nl, 1, -1):
            w, hp = ps[f'l{i}.w'], hs[i - 1]
            grads[f'l{i}.b'] = d.sum(1)
            if w.shape[2] == 1:
                grads[f'l{i}.w'] = torch.bmm(d.transpose(1, 2), hp).transpose(1, 2)
                d = torch.mul(d, w.transpose(1, 2))
            else:
                grads[f'l{i}.w'] = torch.bmm(hp.transpose(1, 2), d)
                d = torch.bmm(d, w.transpose(1, 2))
            d = self.act_grad(d, hp)
        g1 = torch.bmm(X.T.expand(G, a + 1, n), d)
        grads['l1.w'], grads['l1.b'] = g1[:, :a], g1[:, a]
        return loss, grads

    @staticmethod
    def _one_hidden(X, d, h, ps) -> dict:
        """The gradients of one hidden layer and one output from dloss/dout `d` (G, n, 1) and the activations `h` (G, n, H,
        overwritten): with the mask E = (h > 0) and S = (X d)'E (G, n_in + 1, H), the first layer's gradient is S times
        the output weights, and the output weights' is S times the first layer's (h = E (X W1)): two passes over h, not five."""
        w1, b1, w2 = ps['l1.w'], ps['l1.b'], ps['l2.w']
        a = w1.shape[1]
        S = torch.bmm((X * d).transpose(1, 2), h.gt_(0))  # (G, a + 1, H); where a ReLU's output is > 0: its mask, as autograd's
        gw2 = (S[:, :a] * w1).sum(1).add_(S[:, a] * b1)[..., None]
        g1 = S.mul_(w2.transpose(1, 2))
        return {'l1.w': g1[:, :a], 'l1.b': g1[:, a], 'l2.w': gw2, 'l2.b': d.sum(1)}


# -- what can be fitted together ----------------------------------------------------------------------------------------
def _same_loss(a, b) -> bool:
    if a is b: return True
    return type(a) is type(b) and hasattr(a, '__dict__') and vars(a) == vars(b)


def _plain_sgd(opt) -> bool:
    "fastai's SGD without momentum or weight decay: `p -= lr * grad`, which one update does for every run."
    return (type(opt) is Optimizer and list(opt.cbs) in ([weight_decay, sgd_step], [l2_reg, sgd_step])
            and all(h.get('wd', 0) == 0 for h in opt.hypers))


def _history(learn):
    hs = [cb for cb in learn.cbs if isinstance(cb, ParamHistory)]
    return hs[0] if len(hs) == 1 else None


def _config(h) -> tuple: return (type(h), h.max_records, h.names, h.grads_on, h.max_bytes)


def batchable(learners:list) -> bool:
    "Whether `learners` (fresh, unfitted) can be fitted together: one model shape and loss, one data set and batch order."
    if len(learners) < 2: return False
    l0 = learners[0]
    dl0, m0 = l0.dls.train, l0.model
    shapes = [(k, p.shape, p.dtype, p.device) for k, p in m0.named_parameters()]
    h0 = _history(l0)
    if h0 is None or not shapes: return False
    for lrn in learners:
        dl, h = lrn.dls.train, _history(lrn)
        if not isinstance(lrn, FitLearner) or type(lrn.model) is not type(m0) or h is None or _config(h) != _config(h0): return False
        if [(k, p.shape, p.dtype, p.device) for k, p in lrn.model.named_parameters()] != shapes: return False
        if any(not p.requires_grad for p in lrn.model.parameters()) or list(lrn.model.buffers()): return False
        if not _same_loss(lrn.loss_func, l0.loss_func) or not all(isinstance(cb, _LEAN) for cb in lrn.cbs): return False
        if type(dl) is not TensorDL or dl.x is not dl0.x or dl.y is not dl0.y or dl.device != shapes[0][3]: return False
        if (dl.bs, dl.full_batch, dl.shuffle, dl.drop_last, dl.seed) != (dl0.bs, dl0.full_batch, dl0.shuffle, dl0.drop_last, dl0.seed):
            return False
        if not torch.equal(dl._gen.get_state(), dl0._gen.get_state()): return False
    # The batched forward and loss must take this model and loss: tried on two rows (a model vmap cannot run is fitted alone).
    try:
        with torch.no_grad():
            ps = {k: torch.stack([dict(lrn.model.named_parameters())[k].detach() for lrn in learners[:2]]) for k, *_ in shapes}
            out = losses_many(l0.loss_func, forward_many(m0, dl0.x[:2], ps), dl0.y[:2])
        return tuple(out.shape) == (2,)
    except Exception:  # noqa: BLE001 (whatever a user's model or loss raises under vmap: fit the runs one by one)
        return False


# -- the fit --------------------------------------------------------------------------------------------------------------
def fit_together(learners:list, epochs:int) -> bool:
    """Fit `learners` (fresh ones of one model shape and loss on one data set, with histories: as the comparisons make
    them) for `epochs` together, leaving each as its own quiet `fit(epochs)` would; False, with nothing done, when they
    cannot be (then fit them one by one)."""
    if not batchable(learners): return False
    h0 = _history(learners[0])
    per_run = sum(p.numel() for p in learners[0].model.parameters()) * 4 * (5 if h0.grads_on else 1) * h0.max_records
    size = max(1, int(MAX_BYTES // max(per_run, 1)))
    for i in range(0, len(learners), size): _Together(learners[i:i + size]).fit(epochs)
    return True


def _create_opt(lrn):
    "The learner's optimizer as fit makes it: with the learner's lr (and wd, if it has one)."
    lrn.create_opt()
    lrn.opt.set_hypers(lr=lrn.lr)
    if lrn.wd is not None: lrn.opt.set_hypers(wd=lrn.wd)


def _give_records(h, rec:dict):
    "Hand history `h` the records `rec` (`_Together._records`), of the step-data buffers it keeps."
    h._take(**{**rec, 'g': {k: b for k, b in rec['g'].items() if k in h._g}})


class _Together:
    "G runs fitted at once: stacked parameters, one batched record of them all (thinned as `ParamHistory` thins)."
    def __init__(self, learners:list):
        self.learns, G = learners, len(learners)
        self.G, self.names = G, [k for k, _ in learners[0].model.named_parameters()]
        for i, lrn in enumerate(learners):
            lrn.diverged = lrn.fit_error = None
            if not (i and opt_like(lrn, learners[0])): _create_opt(lrn)  # else the first's copied, for this run's lr
        # Each run's parameters become views of one stacked tensor per name: the runs' optimizers update them in place.
        self.W = {k: torch.stack([dict(lrn.model.named_parameters())[k].detach() for lrn in learners]).requires_grad_()
                  for k in self.names}
        self.params = [list(lrn.model.parameters()) for lrn in learners]
        for g, ps in enumerate(self.params):
            for k, p in zip(self.names, ps): p.data = self.W[k].data[g]
        self.plain = all(_plain_sgd(lrn.opt) for lrn in learners)
        self.hists = [_history(lrn) for lrn in learners]
        for i, h in enumerate(self.hists):
            h.before_fit()
            # its buffers, layout and optimizer's hypers, as a fit's first training phase makes them (as the first's made them)
            if not (i and h._setup_like(self.hists[0])): h.before_train()
        self.active = np.ones(G, dtype=bool)
        l0 = learners[0]
        self.dl, self.model, self.loss_func, self.h0 = l0.dls.train, l0.model, l0.loss_func, self.hists[0]

    def _lrs(self) -> list: return [lrn.opt.hypers[-1]['lr'] for lrn in self.learns]

    # -- the records of every run: rows of (G, P), thinned as ParamHistory thins its own ------------------------------------
    def _setup_records(self, steps:int):
        h, G, W = self.h0, self.G, self.W
        P, dev = sum(w[0].numel() for w in W.values()), next(iter(W.values())).device
        self.rows = h.rows
        # a fit of fewer steps than the history's rows never thins: the rows it fills, not 2000 x G x P floats per buffer
        rows = min(h.rows, steps + 1)
        self.F = torch.empty(rows, G, P, device=dev)
        self.L, self.S = np.full((rows, G), np.nan, dtype=np.float32), np.zeros(rows, dtype=np.int64)
        # The optimizers' running averages (momentum's grad_avg, Adam's sqr_avg...): each run records its own optimizer's.
        self.state_keys = list(dict.fromkeys(k for h in self.hists for k in h._state_keys)) if h.grads_on else []
        keys = (['grad', 'before'] + self.state_keys + [f'{k}_before' for k in self.state_keys]) if h.grads_on else []
        self.Gb = {k: torch.full((rows, G, P), float('nan'), device=dev) for k in keys}
        for k in self.state_keys: self.Gb[k][0] = 0.  # a fresh optimizer's running averages
        self.LB = np.full((rows, G), np.nan)
        self.n, self.step, self.stride, self.tail, self.slot = 0, 0, 1, False, 0
        self._write()
        self._commit()

    def _flat(self, ts) -> torch.Tensor: return torch.cat([t.reshape(self.G, -1) for t in ts], 1)

    def _write(self):
        with torch.no_grad(): self.F[self.n] = self._flat(self.W.values())
        self.S[self.n], self.slot = self.step, self.n

    def _write_grads(self):
        n, prev, Gb = self.n, self.slot, self.Gb
        Gb['before'][n] = self.F[prev]
        Gb['grad'][n] = self._flat([w.grad for w in self.W.values()])
        for k in self.state_keys:
            Gb[k + '_before'][n] = Gb[k][prev]
            for g, (lrn, h) in enumerate(zip(self.learns, self.hists)):
                if not self.active[g] or k not in h._g: continue
                st = lrn.opt.state
                Gb[k][n, g] = torch.cat([st[p][k].detach().reshape(-1) for p in self.params[g]])
        self.LB[n] = self.L[prev]

    def _commit(self):
        self.n += 1
        self.tail = False
        if self.n == self.rows: self._thin()

    def _thin(self):
        "ParamHistory._thin, on every run at once."
        n, keep = self.n, np.arange(0, self.n, 2)
        last_odd = (n - 1) % 2 == 1
        if last_odd: keep = np.append(keep, n - 1)
        k, idx = len(keep), torch.as_tensor(keep, device=self.F.device)
        self.F[:k] = self.F[idx].clone()
        for b in self.Gb.values(): b[:k] = b[idx].clone()
        self.L[:k], self.S[:k], self.LB[:k] = self.L[keep], self.S[keep], self.LB[keep]
        self.stride *= 2
        self.n, self.tail, self.slot = (k - 1, True, k - 1) if last_odd else (k, False, k - 1)

    def _records(self, g) -> dict:
        "Run `g`'s records as they stand (views of the batch's buffers), as `ParamHistory._take` takes them."
        m = self.n + self.tail
        return dict(flat=self.F[:m, g], loss=self.L[:m, g], steps=self.S[:m], n=self.n, step=self.step, stride=self.stride,
                    tail=self.tail, g={k: b[:m, g] for k, b in self.Gb.items()}, loss_before=self.LB[:m, g])

    def _hand_over(self, g):
        "Give run `g`'s learner its records as they stand, and its own parameters again (no longer views of the batch)."
        ps = self.params[g]
        _give_records(self.hists[g], self._records(g))
        with torch.no_grad():
            for p in ps:
                p.data = p.data.clone()
                if p.grad is not None: p.grad = p.grad.detach().clone()
        self.active[g] = False

    # -- one step of every run --------------------------------------------------------------------------------------------
    def fit(self, epochs:int):
        self._setup_records(epochs * len(self.dl))
        W, dl, model, loss_func = self.W, self.dl, self.model, self.loss_func
        lrs = torch.tensor(self._lrs(), dtype=torch.float32, device=self.F.device)
        lr_of = [lrs.view(-1, *[1] * (w.ndim - 1)) for w in W.values()]  # each run's lr, shaped as each parameter
        # a closed form of every run's loss and gradient, where the problem has one: no graph through autograd per step
        quad = next((c(model) for c in (Quadratic, Logistic, MLPGrad) if c.fits(model, loss_func, dl.x)), None)
        for _ in range(epochs):
            for xb, yb in dl:
                if quad is None: L = losses_many(loss_func, forward_many(model, xb, W), yb)
                else: L, grad = quad(xb, yb, self._params(quad))
                v = L.detach().cpu().numpy()
                if quad is not None and not quad.float32: v = self._float32_losses(v, model, loss_func, xb, yb)
                for g in np.nonzero(self.active & ~np.isfinite(v))[0]: self._diverged(g)
                if not self.active.any(): return self._end(dl, quad)
                self.L[self.slot] = v
                if quad is None: L.sum().backward()
                else: self._set_grads(grad)
                if self.plain:
                    with torch.no_grad():
                        for w, lr in zip(W.values(), lr_of): w.addcmul_(lr, w.grad, value=-1)  # w -= lr * grad, one op
                else: self._opt_steps()
                self.step += 1
                if self.Gb: self._write_grads()
                self._write()
                if self.step % self.stride == 0: self._commit()
                else: self.tail = True
                if quad is None:
                    for w in W.values(): w.grad.zero_()
        self._end(dl, quad)

    def _float32_losses(self, v, model, loss_func, xb, yb):
        "The float64 losses as float32; those near float32's limit computed as a run of its own does, to find where it overflows."
        near = np.nonzero(self.active & ~(np.abs(v) < 1e30))[0]  # a fit of its own stops where float32 overflows
        with np.errstate(over='ignore'): v = v.astype(np.float32)
        if len(near):
            with torch.no_grad():
                ps = {k: w.detach()[near] for k, w in self.W.items()}
                v[near] = losses_many(loss_func, forward_many(model, xb, ps), yb).cpu().numpy()
        return v

    def _params(self, quad):
        "The stacked parameters as `quad` takes them: flat (G, P), or by name."
        ps = {k: w.detach() for k, w in self.W.items()}
        return self._flat(ps.values()) if quad.flat else ps

    def _set_grads(self, grad):
        "Each stacked parameter's gradient from the flat (G, P) one (or one by name), in the parameters' own dtype."
        if isinstance(grad, dict):
            for k, w in self.W.items(): w.grad = grad[k]
            return
        i = 0
        for w in self.W.values():
            m = w[0].numel()
            w.grad = grad[:, i:i + m].reshape(w.shape).to(w.dtype)
            i += m

    def _opt_steps(self):
        "Each run's own fastai optimizer steps its own parameters (views of the batch), gradients included."
        for g, (lrn, ps) in enumerate(zip(self.learns, self.params)):
            if not self.active[g]: continue
            for k, p in zip(self.names, ps):
                gr = self.W[k].grad[g]
                if p.grad is None or p.grad.data_ptr() != gr.data_ptr(): p.grad = gr
            lrn.opt.step()

    def _diverged(self, g):
        "Run `g`'s loss is NaN/inf at this step: its fit would stop here, its history cut at its last finite record."
        self._hand_over(g)
        lrn, h = self.learns[g], self.hists[g]
        lrn.diverged = self.step
        h.run_train = True
        h.after_fit()  # drops the record whose loss is not finite and puts the model back at the last finite one

    def _end(self, dl, quad=None):
        "The last record's loss on all the training data (as ParamHistory.after_fit computes it), then the hand-over."
        act = np.nonzero(self.active)[0]
        if len(act):
            with torch.no_grad():
                ps = {k: w.detach()[act] for k, w in self.W.items()}
                if quad is not None:
                    L = quad(dl.x, dl.y, torch.cat([p.reshape(len(act), -1) for p in ps.values()], 1) if quad.flat else ps)[0]
                else:
                    f = lambda x, y: losses_many(self.loss_func, forward_many(self.model, x, ps), y)  # noqa: E731
                    L = mean_over_rows(f, dl.x, dl.y)
                self.L[self.slot, act] = L.cpu().numpy()
        self._finish(dl, act)

    def _finish(self, dl, act):
        "Hand every run still going its records and parameters."
        for g in act: self._hand_over(g)
        # Each learner's loader shuffles on from where a fit of its own would leave it.
        for lrn in self.learns[1:]: lrn.dls.train._gen.set_state(dl._gen.get_state())
        for lrn in self.learns: lrn.opt.zero_grad()


# -- runs that differ only in their lr: fitted without a learner each, learners made when asked for -------------------
class _Stacked(_Together):
    """G runs of plain SGD from one start, differing only in their lr, fitted at once with no learner, optimizer or
    history of their own: their records stay in the batch's stacked buffers (`StackedRuns` hands a run's learner its
    own when asked). A sweep of 200 lrs thus builds one learner, not 200 (~1 ms each with their history)."""
    def __init__(self, tmpl, lrs:list):
        self.learns, self.hists, self.G = [], [], len(lrs)
        self.names, self.plain, self._lr_values = [k for k, _ in tmpl.model.named_parameters()], True, list(lrs)
        self.W = {k: p.detach().expand(self.G, *p.shape).clone().requires_grad_() for k, p in tmpl.model.named_parameters()}
        self.active = np.ones(self.G, dtype=bool)
        self.dl, self.model, self.loss_func, self.h0 = tmpl.dls.train, tmpl.model, tmpl.loss_func, _history(tmpl)
        self.stopped = {}  # run -> (its records, its parameters) at the step it diverged (later thinning must not touch them)

    def _lrs(self) -> list: return self._lr_values

    def _diverged(self, g):
        rec = self._records(g)
        rec = dict(rec, flat=rec['flat'].clone(), loss=rec['loss'].copy(), steps=rec['steps'].copy(),
                   g={k: b.clone() for k, b in rec['g'].items()}, loss_before=rec['loss_before'].copy())
        self.stopped[g] = rec, [w.detach()[g].clone() for w in self.W.values()]  # (records, parameters) as they stood
        self.active[g] = False

    def _finish(self, dl, act):
        self.gen_state = dl._gen.get_state()  # where each run's loader shuffles on from

    def diverged(self, g) -> int|None:
        "The step at which run `g`'s loss became NaN/inf (None: it did not)."
        st = self.stopped.get(g)
        return None if st is None else st[0]['step']

    def give(self, g:int, lrn, tmpl):
        """Make `lrn` (a fresh learner of run `g`: a copy of `tmpl`'s problem with the run's lr) what its own quiet fit
        would have left, as `fit_together` leaves its learners: optimizer, history, parameters, divergence, loader."""
        lrn.diverged = lrn.fit_error = None
        if not opt_like(lrn, tmpl): _create_opt(lrn)
        h = _history(lrn)
        h.before_fit()
        if not h._setup_like(self.h0): h.before_train()
        st = self.stopped.get(g)
        rec, values = st or (self._records(g), [w.detach()[g] for w in self.W.values()])
        _give_records(h, rec)
        with torch.no_grad():
            for p, v in zip(lrn.model.parameters(), values): p.copy_(v)
        if st is not None:  # as `_Together._diverged`: the history cut at its last finite record, the model put back there
            lrn.diverged = rec['step']
            h.run_train = True
            h.after_fit()
        lrn.dls.train._gen.set_state(self.gen_state)
        lrn.opt.zero_grad()
        return lrn

    def records(self) -> tuple:
        "(runs, losses (R, T), flat (R, T, P)): the records of the runs that did not diverge, as each one's history holds them."
        idx = np.nonzero(self.active)[0]
        m = self.n + self.tail
        return idx, self.L[:m, idx].T, self.F[:m, torch.as_tensor(idx)].transpose(0, 1)


def fit_stacked(tmpl, lrs:list, epochs:int) -> _Stacked | None:
    """Fit runs of `tmpl`'s problem (a fresh learner of plain SGD, never to be handed out) at each of `lrs`, from its
    parameters, together without a learner each; None, with nothing fitted, when they cannot be (then build learners)."""
    if len(lrs) < 2 or not batchable([tmpl, tmpl]): return None
    h0 = _history(tmpl)
    per_run = sum(p.numel() for p in tmpl.model.parameters()) * 4 * (5 if h0.grads_on else 1) * h0.max_records
    if len(lrs) * per_run > MAX_BYTES: return None
    _create_opt(tmpl)  # as fit does; each run's is a copy of it (`opt_like`), with its own lr
    if not _plain_sgd(tmpl.opt): return None
    h0.before_fit()
    h0.before_train()  # the layout, buffers and optimizer's hypers every run's history is set up like
    b = _Stacked(tmpl, lrs)
    b.fit(epochs)
    return b


class StackedRuns(Mapping):
    "label -> learner of runs fitted at once (`fit_stacked`): each learner is made, with its records, when first asked for."
    def __init__(self,
        labels:list, # one per run, in the order of the lrs
        make, # label -> a fresh learner of that run (a copy of the template's problem with its lr)
        batch:_Stacked, # the fitted batch
        tmpl, # the learner the batch was set up from
    ):
        self.labels, self.make, self.batch, self.tmpl = list(labels), make, batch, tmpl
        self._index, self._made = {k: i for i, k in enumerate(self.labels)}, {}

    def __getitem__(self, k):
        lrn = self._made.get(k)
        if lrn is None: lrn = self._made[k] = self.batch.give(self._index[k], self.make(k), self.tmpl)
        return lrn

    def __iter__(self): return iter(self.labels)
    def __len__(self): return len(self.labels)
    def __repr__(self): return f"StackedRuns({len(self)} runs, {len(self._made)} learners made)"

    def diverged(self, k) -> int|None:
        "The step at which run `k`'s loss became NaN/inf (None: it did not), without making its learner."
        return self.batch.diverged(self._index[k])

    def records(self) -> tuple:
        "(labels, losses (R, T), flat (R, T, P)) of the runs that did not diverge, as their histories hold them."
        idx, L, F = self.batch.records()
        return [self.labels[i] for i in idx], L, F

"""The loss's minimiser for a model family: least squares in closed form; logistic and softmax regression (cross-entropy)
by Newton's method in float64. `Learner.optimum` (in `learner`) calls `optimum_of`."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from .models import RegModel, SoftmaxModel, model_name

__all__ = ['loss_kind', 'optimum_label', 'optimum_of', 'separates', 'OptimumTooCostly']

NEWTON_TOL = 1e-12  # gradient (of the mean loss) at which Newton's method stops: parameters to ~1e-10 and better
NEWTON_ITERS = 200
DIRECT_MAX = 1500  # parameters up to which a Newton step solves with the Hessian itself (18 MB); above, conjugate gradients
DIRECT_WORK = 2e8  # ...while parameters^2 x samples (a Hessian's cost) stays below this; above, conjugate gradients
CG_ITERS = 250  # conjugate-gradient iterations of one Newton step at most
MAX_VALUES = 1 << 25  # samples x classes held in float64 at most (256 MB a copy): more is refused at once, saying so
MAX_SECONDS = 10.  # optimum()'s default time budget: past it, it stops and says why (OptimumTooCostly)


def loss_kind(loss_func) -> str | None:
    "'mse', 'bce' (binary cross-entropy of logits) or 'ce' (softmax cross-entropy) when `loss_func` is one of them, else None."
    kind = getattr(loss_func, 'optimum_kind', None)  # fastfit's own losses say what they are
    if kind is not None: return kind
    f = getattr(loss_func, 'func', loss_func)  # fastai's `BaseLoss` (MSELossFlat, ...) wraps a torch loss module
    if f is F.mse_loss or type(f) is nn.MSELoss: return 'mse'
    if f is F.binary_cross_entropy_with_logits: return 'bce'
    if type(f) is nn.BCEWithLogitsLoss and f.weight is None and f.pos_weight is None: return 'bce'
    if f is F.cross_entropy: return 'ce'
    if type(f) is nn.CrossEntropyLoss and f.weight is None and f.label_smoothing == 0: return 'ce'
    return None


def optimum_label(loss_func) -> str:
    "What to call the optimum in a legend: 'least squares' for MSE, else 'minimum of the loss'."
    return 'least squares' if loss_kind(loss_func) == 'mse' else 'minimum of the loss'


def _loss_name(loss_func) -> str:
    return getattr(loss_func, '__name__', None) or type(loss_func).__name__


def _unflat(model, theta) -> dict:
    "Name -> tensor of `model`'s parameters from the flat vector `theta`, in the model's dtype."
    out, i = {}, 0
    for k, p in model.named_parameters():
        out[k] = theta[i:i + p.numel()].reshape(p.shape).to(p.dtype)
        i += p.numel()
    return out


def separates(logits:torch.Tensor, y:torch.Tensor) -> bool:
    "Whether `logits` (n, 1) or (n, k) put every sample strictly on its label's side (the training set is separated)."
    y = y.reshape(-1).to(logits.device)
    if logits.shape[1] == 1: return bool(((logits[:, 0] > 0) == (y == 1)).all() and (logits[:, 0] != 0).all())
    own = logits.gather(1, y[:, None].long())[:, 0]
    others = logits.scatter(1, y[:, None].long(), float('-inf')).max(1).values
    return bool((own > others).all())


def _no_finite(model, why) -> ValueError:
    return ValueError(f"there is no finite optimum for {model_name(model)}: {why}, so the loss keeps falling as the weights grow "
                      f"without bound (gradient descent still runs, its boundary settles while the weights grow); "
                      f"a finite optimum needs classes that overlap (optimum() minimises the loss alone: weight decay, "
                      f"wd=..., changes the fit, not this)")


class OptimumTooCostly(ValueError):
    "`optimum()` stopped: the solve would take more than its time (`max_seconds`) or memory budget. The message says which."


def _too_costly(model, what, sizes, fix) -> OptimumTooCostly:
    return OptimumTooCostly(f"optimum() gave up on {model_name(model)} ({sizes}): {what}; {fix}")


def _cg(hv, g, tol, maxiter, check):
    "Conjugate gradients for H s = -g with Hessian-vector products `hv` (H positive semi-definite), to |residual| <= tol."
    s, r = torch.zeros_like(g), -g
    d, rr = r.clone(), float(r @ r)
    for _ in range(maxiter):
        Hd = hv(d)
        dHd = float(d @ Hd)
        if dHd <= 0: break  # flat along d: no curvature left to use
        a = rr / dHd
        s, r = s + a * d, r - a * Hd
        rr, rr_old = float(r @ r), rr
        if rr ** .5 <= tol: break
        d = r + (rr / rr_old) * d
        check()
    return s if bool(s.any()) else -g


class _Multinomial:
    """The mean softmax cross-entropy of logits [0, X @ Theta.T] (class 0's logit held at 0; Theta (k-1, m) flat, row by
    row) against labels y (n,): for k = 2 logistic regression itself; for more, softmax regression with its free shift
    of every class's weights fixed (class 0's are 0), so the Hessian is regular wherever the features are independent."""
    def __init__(self, X, y, k):
        self.X, self.y, self.k, self.kk = X, y, k, k - 1
        self.Y = torch.zeros(len(X), k, dtype=X.dtype).scatter_(1, y[:, None], 1.)[:, 1:]

    def _full(self, theta):
        Z = self.X @ theta.reshape(self.kk, -1).T
        return Z, torch.cat([torch.zeros_like(Z[:, :1]), Z], 1)

    def logits(self, theta) -> torch.Tensor:
        "The logits as a model returns them: (n, 1) for two classes (class 1's), (n, k) for more."
        Z, full = self._full(theta)
        return Z if self.k == 2 else full

    def f(self, theta) -> tuple:
        "(f, P): the mean loss and the probabilities (n, k-1) of classes 1..k-1."
        Z, full = self._full(theta)
        lse = torch.logsumexp(full, 1)
        return float((lse - full.gather(1, self.y[:, None])[:, 0]).mean()), torch.exp(Z - lse[:, None])

    def grad(self, P) -> torch.Tensor: return ((P - self.Y).T @ self.X).reshape(-1) / len(self.X)

    def hv(self, P, v) -> torch.Tensor:
        "The Hessian times `v`, without the Hessian: O(n k m)."
        U = self.X @ v.reshape(self.kk, -1).T
        W = P * U - P * (P * U).sum(1, keepdim=True)
        return (W.T @ self.X).reshape(-1) / len(self.X)

    def hessian(self, P) -> torch.Tensor:
        """The Hessian ((k-1) m, (k-1) m): block a, b is X.T diag(p_a (δ_ab - p_b)) X, i.e. the blocks X.T diag(p_a) X on
        the diagonal less Q.T Q with Q = [p_a x] (n, (k-1) m), summed over chunks of rows (memory stays bounded)."""
        X, kk, (n, m) = self.X, self.kk, self.X.shape
        H = torch.zeros(kk * m, kk * m, dtype=X.dtype)
        c = max(1, (1 << 22) // (kk * m))
        for i in range(0, n, c):
            Pc, Xc = P[i:i + c], X[i:i + c]
            Q = (Pc[:, :, None] * Xc[:, None, :]).reshape(len(Xc), -1)
            H -= Q.T @ Q
            for a in range(kk): H[a * m:(a + 1) * m, a * m:(a + 1) * m] += Q[:, a * m:(a + 1) * m].T @ Xc
        return H / n


def _newton(obj, p, check):
    """Minimise `obj` (a `_Multinomial`) by damped Newton steps from 0 (backtracking on Armijo's condition): the step from
    the Hessian itself up to `DIRECT_MAX` parameters, else by conjugate gradients on Hessian-vector products. Returns
    (theta, 'converged' | 'separates' | 'stuck'): an iterate that puts every sample on its label's side proves the loss
    has no finite minimiser (scaling it up lowers the loss), so the solve stops there."""
    theta = torch.zeros(p, dtype=torch.float64)
    f, P = obj.f(theta)
    direct = p <= DIRECT_MAX and p * p * len(obj.X) <= DIRECT_WORK  # the Hessian itself costs p^2 n a step
    for _ in range(NEWTON_ITERS):
        g = obj.grad(P)
        gmax = float(g.abs().max())
        if gmax <= NEWTON_TOL: return theta, 'converged'
        if bool(theta.any()) and separates(obj.logits(theta), obj.y): return theta, 'separates'
        check()
        if direct:
            H = obj.hessian(P)
            # A feature that is constant 0 (a blank pixel) or depends on others leaves H flat along it, where g is 0 too:
            # a ridge far below every curvature that matters solves it as the pseudo-inverse would, at Cholesky's cost.
            L, info = torch.linalg.cholesky_ex(H + 1e-12 * float(H.diagonal().max()) * torch.eye(p, dtype=H.dtype))
            if int(info) == 0: step = torch.cholesky_solve(-g[:, None], L)[:, 0]
            else: step = -torch.linalg.pinv(H, hermitian=True, rtol=1e-13) @ g
        else:
            gn = float(g.norm())
            step = _cg(lambda v: obj.hv(P, v), g, min(.5, gn ** .5) * gn, min(p, CG_ITERS), check)  # noqa: B023
        slope, t = float(g @ step), 1.
        if slope >= 0: break  # no descent direction left: flat to float64 precision
        # f's rounding noise (a few ulps) is no reason to refuse a step: near the optimum slope * t is below it
        while (fP := obj.f(theta + t * step))[0] > f + 1e-4 * t * slope + 8e-16 * abs(f):
            t /= 2
            if t < 1e-12: return theta, 'converged' if gmax <= 1e-9 else 'stuck'
        theta = theta + t * step
        f, P = fP
    return theta, 'converged' if float(obj.grad(P).abs().max()) <= 1e-9 else 'stuck'


def _solve(model, kind, x, y, max_seconds=None):
    "The flat float64 minimiser for `kind` ('mse', 'bce', 'ce'), or the error to raise; for softmax, (k, m) row by row."
    X = model.design(x) if isinstance(model, RegModel) else None
    if kind == 'mse' and X is not None: return torch.linalg.lstsq(X, y.double()).solution.flatten()
    yl = y.reshape(-1).long()
    if kind == 'bce' and X is not None:
        bad = (yl != 0) & (yl != 1)
        if bad.any(): return ValueError(f"binary cross-entropy takes labels 0 and 1, but y holds {int(yl[bad][0])}: use "
                                        f"classification_learner on ClsDataLoaders, or labels (y == positive_class)")
        k = 2
    elif kind == 'ce' and isinstance(model, SoftmaxModel):
        k = model.n_out
        if int(yl.max()) >= k or int(yl.min()) < 0:
            return ValueError(f"labels go from {int(yl.min())} to {int(yl.max())} but {model_name(model)} has {k} classes (0..{k - 1})")
        X = torch.cat([x, torch.ones_like(x[:, :1])], 1) if model.bias else x
        absent = sorted(set(range(k)) - set(yl.unique().tolist()))
        if absent: return _no_finite(model, f"no training sample has class {absent[0]}, whose logit can fall forever")
    else: return None
    n, m = X.shape
    sizes = f"{n:,} samples, {k} classes, {m} weights each"
    if n * k > MAX_VALUES:
        return _too_costly(model, f"its probabilities alone take {n * k * 8 / 1e9:.1f} GB (samples x classes > {MAX_VALUES:,})",
                           sizes, "solve it on a sample of the rows, e.g. ClsDataLoaders.from_arrays(x[:10000], y[:10000])")
    start = time.monotonic()
    def check():
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            raise _too_costly(model, f"Newton's method had not converged after {max_seconds:g} s", sizes,
                              "call learn.optimum(max_seconds=None) to wait for it, or fit fewer features or classes")
    obj = _Multinomial(X, yl, k)
    with torch.no_grad():
        try: theta, how = _newton(obj, (k - 1) * m, check)
        except OptimumTooCostly as e: return e
    if how == 'separates' or separates(obj.logits(theta), yl):
        return _no_finite(model, "its decision boundary separates the training classes perfectly")
    if how != 'converged':
        return _no_finite(model, "Newton's method found none (the classes are separable up to points on the boundary)")
    if kind == 'bce': return theta
    # every class's weights shifted by one vector is the same model: the minimiser whose weights sum to zero over the
    # classes (scikit-learn's); `optimum_of` moves it to the one nearest the model's parameters.
    T = torch.cat([torch.zeros(1, m, dtype=theta.dtype), theta.reshape(k - 1, m)])
    return (T - T.mean(0, keepdim=True)).reshape(-1)


def optimum_of(model, loss_func, x:torch.Tensor, y:torch.Tensor, cache:dict|None=None, max_seconds:float|None=MAX_SECONDS) -> dict:
    """The minimiser of `loss_func` over `model`'s parameters on (x, y), by name (tensors in the parameters' dtype):
    least squares (closed form) for MSE and models linear in their parameters; binary cross-entropy of logits for
    such models (logistic regression) and softmax cross-entropy for `SoftmaxModel`, by Newton's method in float64.
    Raises `TypeError` for other model/loss pairs, `ValueError` when there is no finite optimum (separable classes),
    `OptimumTooCostly` (a `ValueError`) past `max_seconds` (None: no limit) or the memory budget (`MAX_VALUES`).
    `cache` (a dict) keeps the solution for the same model family and data (unchanged tensors)."""
    kind = loss_kind(loss_func)
    # the same tensors (held, so their ids stay theirs), unchanged since (their version), the same model family
    key = (kind, type(model), tuple((k, tuple(p.shape)) for k, p in model.named_parameters()), x._version, y._version)
    # One entry, read and written whole: pictures drawn in two threads never see one solve's key with another's theta.
    last = cache.get('last') if cache is not None else None
    budget = float('inf') if max_seconds is None else float(max_seconds)
    # a solve that ran out of time is tried again only with more time than it had
    if last is not None and last[0] == key and last[1] is x and last[2] is y and \
            not (isinstance(last[3], OptimumTooCostly) and budget > last[4]): theta = last[3]
    else:
        theta = _solve(model, kind, x.detach().cpu().double(), y.detach().cpu(), max_seconds)
        if cache is not None: cache['last'] = (key, x, y, theta, budget)
    if theta is None:
        raise TypeError(f"optimum() knows no optimum for {model_name(model)} with loss {_loss_name(loss_func)}: it knows least squares "
                        f"(MSE) for models linear in their parameters (LinearModel, PolyModel), and cross-entropy for "
                        f"logistic regression (LogisticModel, or a linear model with binary cross-entropy of logits) and "
                        f"softmax regression (SoftmaxModel)")
    if isinstance(theta, Exception): raise type(theta)(*theta.args)  # a fresh one: a cached traceback would keep growing
    if kind == 'ce':
        # Every theta + (the same vector for each class) is a minimiser: the one nearest the model's own parameters is
        # where gradient descent converges (its steps never change the parameters' mean over the classes).
        T = theta.reshape(model.n_out, -1)
        cur = [model.w.detach().cpu().double()] + ([model.b.detach().cpu().double()[:, None]] if model.bias else [])
        T = T + torch.cat(cur, 1).mean(0, keepdim=True)
        theta = torch.cat([T[:, :model.n_in].reshape(-1)] + ([T[:, -1]] if model.bias else []))
    return _unflat(model, theta)

"""The loss's minimiser for a model family: least squares in closed form; logistic and softmax regression (cross-entropy)
by Newton's method in float64. `Learner.optimum` (in `learner`) calls `optimum_of`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import RegModel, SoftmaxModel, model_name

__all__ = ['loss_kind', 'optimum_label', 'optimum_of', 'separates']

NEWTON_TOL = 1e-12  # gradient (of the mean loss) at which Newton's method stops: parameters to ~1e-10 and better
NEWTON_ITERS = 200


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
                      f"a finite optimum needs classes that overlap, or a penalty such as weight decay (wd=...)")


def _newton(fgh, theta):
    """Minimise a convex function by damped Newton steps (backtracking on Armijo's condition); `fgh(theta, hess)` gives
    (f, grad, Hessian), the last two None unless `hess`. Returns (theta, converged: the gradient is ~0)."""
    f, g, H = fgh(theta, True)
    for _ in range(NEWTON_ITERS):
        if g.abs().max() <= NEWTON_TOL: break
        # The pseudo-inverse: softmax regression's Hessian is singular along one direction per feature (adding the
        # same vector to every class's weights changes no probability); steps never move along it.
        step = -torch.linalg.pinv(H, hermitian=True, rtol=1e-13) @ g
        slope, t = float(g @ step), 1.
        if slope >= 0: break  # no descent direction left: flat to float64 precision
        # f's rounding noise (a few ulps) is no reason to refuse a step: near the optimum slope * t is below it
        while fgh(theta + t * step, False)[0] > f + 1e-4 * t * slope + 8e-16 * abs(f):
            t /= 2
            if t < 1e-12: return theta, bool(g.abs().max() <= 1e-9)
        theta = theta + t * step
        f, g, H = fgh(theta, True)
    return theta, bool(g.abs().max() <= 1e-9)


def _logistic(X, y):
    "f, grad, Hessian of the mean binary cross-entropy of logits X @ theta against labels y (n,), as a function of theta."
    y = y.double()
    n = len(X)
    def fgh(theta, hess):
        z = X @ theta
        f = float(F.binary_cross_entropy_with_logits(z, y))
        if not hess: return f, None, None
        p = torch.sigmoid(z)
        return f, X.T @ (p - y) / n, (X.T * (p * (1 - p))) @ X / n
    return fgh


def _softmax(X, y, k):
    "f, grad, Hessian of the mean softmax cross-entropy of logits X @ Theta.T (Theta (k, m) flat, row by row)."
    n, m = X.shape
    Y = F.one_hot(y, k).double()
    def fgh(theta, hess):
        Z = X @ theta.reshape(k, m).T
        f = float(F.cross_entropy(Z, y))
        if not hess: return f, None, None
        P = torch.softmax(Z, 1)
        g = ((P - Y).T @ X / n).reshape(-1)
        A = torch.diag_embed(P) - P[:, :, None] * P[:, None, :]  # (n, k, k): d p / d z per sample
        H = torch.einsum('nkl,ni,nj->kilj', A, X, X).reshape(k * m, k * m) / n
        return f, g, H
    return fgh


def _solve(model, kind, x, y):
    "The flat float64 minimiser for `kind` ('mse', 'bce', 'ce'), or the error to raise; for softmax, (k, m) row by row."
    X = model.design(x) if isinstance(model, RegModel) else None
    if kind == 'mse' and X is not None: return torch.linalg.lstsq(X, y.double()).solution.flatten()
    yl = y.reshape(-1).long()
    if kind == 'bce' and X is not None: fgh, logits = _logistic(X, yl), lambda t: (X @ t)[:, None]
    elif kind == 'ce' and isinstance(model, SoftmaxModel):
        k = model.n_out
        if int(yl.max()) >= k: return ValueError(f"labels go up to {int(yl.max())} but {model_name(model)} has {k} classes")
        X = torch.cat([x, torch.ones_like(x[:, :1])], 1) if model.bias else x
        fgh, logits = _softmax(X, yl, k), lambda t: X @ t.reshape(k, -1).T
    else: return None
    with torch.no_grad():
        # From zero: deterministic, and for softmax the minimiser whose weights sum to zero over the classes
        # (scikit-learn's); `optimum_of` moves it to the one nearest the model's parameters.
        theta, ok = _newton(fgh, torch.zeros(X.shape[1] * (k if kind == 'ce' else 1), dtype=torch.float64))
        if separates(logits(theta), yl): return _no_finite(model, "its decision boundary separates the training classes perfectly")
    if not ok: return _no_finite(model, "Newton's method found none (the classes are separable up to points on the boundary)")
    return theta


def optimum_of(model, loss_func, x:torch.Tensor, y:torch.Tensor, cache:dict|None=None) -> dict:
    """The minimiser of `loss_func` over `model`'s parameters on (x, y), by name (tensors in the parameters' dtype):
    least squares (closed form) for MSE and models linear in their parameters; binary cross-entropy of logits for
    such models (logistic regression) and softmax cross-entropy for `SoftmaxModel`, by Newton's method in float64.
    Raises `TypeError` for other model/loss pairs, `ValueError` when there is no finite optimum (separable classes).
    `cache` (a dict) keeps the solution for the same model family and data (unchanged tensors)."""
    kind = loss_kind(loss_func)
    # the same tensors (held, so their ids stay theirs), unchanged since (their version), the same model family
    key = (kind, type(model), tuple((k, tuple(p.shape)) for k, p in model.named_parameters()), x._version, y._version)
    # One entry, read and written whole: pictures drawn in two threads never see one solve's key with another's theta.
    last = cache.get('last') if cache is not None else None
    if last is not None and last[0] == key and last[1] is x and last[2] is y: theta = last[3]
    else:
        theta = _solve(model, kind, x.detach().cpu().double(), y.detach().cpu())
        if cache is not None: cache['last'] = (key, x, y, theta)
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

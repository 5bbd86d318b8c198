"Models with named parameters: `LinearModel`, `PolyModel`, `FuncModel`, `MLPModel`; classifiers `LogisticModel`, `SoftmaxModel`."
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['RegModel', 'model_name', 'LinearModel', 'PolyModel', 'FuncModel', 'LogisticModel', 'SoftmaxModel', 'MLPModel', 'flat_names',
           'copy_model']


def flat_names(named_shapes) -> list:
    "One label per scalar: 'b' for a scalar, 'w' for a 1-element vector, 'w[0]', 'w[1]' otherwise."
    out = []
    for name, shape in named_shapes:
        n = int(np.prod(shape))
        out += [name] if n == 1 else [f"{name}[{i}]" for i in range(n)]
    return out


def private_model(model:nn.Module, device='cpu') -> nn.Module:
    """A copy of `model` on `device` (the CPU by default) with its own parameters and buffers (no gradients), for drawing.
    `functional_call` and `vmap` swap a module's parameters in place while they run: on the learner's own model, two
    pictures drawn at once (threads) would leave `learn.model` at a record. Pictures call this copy, never the learner's."""
    # The tensors copied straight to `device` (a CUDA model is not first copied on its own), the rest as deepcopy does.
    memo = {}
    with torch.no_grad():
        for t in model.parameters(): memo[id(t)] = nn.Parameter(t.detach().to(device, copy=True), requires_grad=False)
        for t in model.buffers(): memo[id(t)] = t.detach().to(device, copy=True)
    return copy.deepcopy(model, memo)


_PLAIN = (int, float, str, bool, type(None), type(len), type(flat_names))  # values a deepcopy shares (numbers, functions)


def copy_model(model:nn.Module) -> nn.Module:
    """`copy.deepcopy(model)`; for fastfit's own models (modules, parameters, plain values and containers of them) ~10x
    faster: an lr sweep copies one per run. Any other module is deep-copied."""
    try: return _copy(model, {})
    except _NotPlain: return copy.deepcopy(model)


class _NotPlain(Exception): pass


def _copy(v, memo:dict):
    "`v` as `copy.deepcopy` copies it, for the values a plain module holds (`_NotPlain` for any other)."
    i = id(v)
    if i in memo: return memo[i]
    t = type(v)
    if t in _PLAIN: return v
    if t is nn.Parameter or (t is torch.Tensor and v.is_leaf): out = v.__deepcopy__(memo)  # torch's own
    elif isinstance(v, nn.Module) and t.__module__ == __name__:  # fastfit's own modules (a user's subclass: deepcopy)
        out = memo[i] = object.__new__(t)
        out.__dict__.update({k: _copy(x, memo) for k, x in v.__dict__.items()})
    elif t in (dict, OrderedDict): out = t((k, _copy(x, memo)) for k, x in v.items()) if v else t()  # (a module's hooks: empty)
    elif t in (list, tuple, set): out = t(_copy(x, memo) for x in v) if v else t()
    else: raise _NotPlain
    memo[i] = out
    return out


def _as_init_tensor(v, name):
    label = name if name == 'init' else f"init[{name!r}]"
    try: t = torch.as_tensor(np.asarray(v, dtype=np.float32) if not isinstance(v, torch.Tensor) else v.detach()).float()
    except (TypeError, ValueError):
        raise TypeError(f"{label} must be numeric (a number, list, array or tensor), got {v!r}") from None
    if not torch.isfinite(t).all(): raise ValueError(f"{label} holds NaN/inf: {v!r}; start from finite values")
    return t


def model_name(model) -> str:
    "A model as messages name it: its shape for fastfit's models ('LinearModel(n_in=2, bias=True)'), else its repr."
    return model.spec() if isinstance(model, RegModel) else repr(model)


REPR_VALUES = 12  # a model's repr shows its parameters' values up to this many, else its shape and size


def _values(p) -> str:
    "A parameter's values, 5 significant digits: a number for one value, else nested lists as its shape."
    def fmt(v): return f"[{', '.join(map(fmt, v))}]" if isinstance(v, list) else f"{v:.5g}"
    v = p.detach().cpu().double()
    return fmt(v.reshape(-1)[0].item() if v.numel() == 1 else v.tolist())


class RegModel(nn.Module):
    "Base of fastfit's models: parameters declared by name and shape, filled from `init` (dict, flat tensor or None)."
    def __init__(self,
        shapes:dict, # parameter name -> shape, in order
        init=None, # dict of some or all names; a flat tensor of all values in order; None: seeded randn
        seed:int=42, # seed of the random init of any parameter `init` leaves out
    ):
        super().__init__()
        self.pnames = list(shapes)
        values = self._init_values(shapes, init, seed)
        for name, shape in shapes.items():
            # A dotted name ('l1.w') lives in a submodule, so `named_parameters()` gives it back as it was declared.
            mod, _, leaf = name.rpartition('.')
            if mod and not hasattr(self, mod): self.add_module(mod, nn.Module())
            (getattr(self, mod) if mod else self).register_parameter(leaf, nn.Parameter(values[name].reshape(shape).clone()))

    @staticmethod
    def _random_init(shapes, g) -> dict:
        "The random values of the parameters `init` leaves out (standard normal; a subclass may scale them)."
        return {k: torch.randn(s, generator=g) for k, s in shapes.items()}

    def _init_values(self, shapes, init, seed):
        rand = self._random_init(shapes, torch.Generator().manual_seed(int(seed)))
        if init is None: return rand
        sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
        known = ', '.join(f"{k} {tuple(s)}" for k, s in shapes.items())
        if isinstance(init, dict):
            unknown = [k for k in init if k not in shapes]
            if unknown: raise ValueError(f"init names {unknown} are not parameters of this model; its parameters are: {known}")
            vals = dict(rand)
            for k, v in init.items():
                t = _as_init_tensor(v, k)
                if t.numel() != sizes[k]:
                    raise ValueError(f"init[{k!r}] has shape {tuple(t.shape)} but parameter {k} has shape {tuple(shapes[k])}: "
                                     f"give {sizes[k]} value(s) for it")
                vals[k] = t.reshape(shapes[k])
            return vals
        t = _as_init_tensor(init, 'init').flatten()
        if t.numel() != sum(sizes.values()):
            raise ValueError(f"init has {t.numel()} values but the model has {sum(sizes.values())} "
                             f"({known}); pass a flat tensor of all of them in that order, or a dict by name")
        return dict(zip(shapes, t.split(list(sizes.values()))))

    def spec(self) -> str:
        "The call that builds a model of this shape, e.g. 'LinearModel(n_in=2, bias=True)' (errors about shapes name it)."
        return f"{type(self).__name__}()"

    def __repr__(self):
        "The model with its parameters' current values, `LinearModel(w=2.7983, b=1.9999)`; a big one: its shape and size."
        named = list(self.named_parameters())
        n = sum(p.numel() for _, p in named)
        if n > REPR_VALUES: return f"{self.spec()}: {n:,} parameters"
        return f"{type(self).__name__}({', '.join(f'{k}={_values(p)}' for k, p in named)})"

    def param_names(self) -> list:
        "One label per scalar parameter, in order (e.g. ['w', 'b'] or ['w[0]', 'w[1]'])."
        return flat_names((k, p.shape) for k, p in self.named_parameters())

    def design(self, x) -> torch.Tensor | None:
        "The features X with pred = X @ (all parameters, flat) for models linear in their parameters, else None."
        return None

    n_features = None # the number of input features the model takes (None: any)

    def _check_features(self, x, n_in):
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(f"{self.spec()} takes x of shape (n, {n_in}) but x has shape {tuple(x.shape)}: the model's inputs "
                             f"must match the data's features; {self._features_fix(x.shape[-1])}")

    def _features_fix(self, n): return f"give x {self.n_features} feature column(s)"


def _check_count(name, v, least=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
        raise ValueError(f"{name} must be {'a positive int' if least == 1 else f'an int >= {least}'}, got {v!r}")
    return int(v)


class LinearModel(RegModel):
    "pred = x @ w + b, with parameters `w` (n_in,) and `b` ()."
    def __init__(self,
        n_in:int=1, # number of input features
        bias:bool=True, # add the scalar `b`
        init=None, # dict {'w': ..., 'b': ...}, a flat tensor (w then b), or None: seeded randn
        seed:int=42, # seed of the random init
    ):
        self.n_in, self.bias = _check_count('n_in', n_in), bias
        super().__init__(dict(w=(self.n_in,), **(dict(b=()) if bias else {})), init, seed)

    @property
    def n_features(self): return self.n_in
    def _features_fix(self, n): return f"use LinearModel(n_in={n}), or give x {self.n_in} feature column(s)"

    def forward(self, x):
        n = self.n_in
        if x.ndim != 2 or x.shape[1] != n: self._check_features(x, n)  # (the check's call only when it fails: 2 an epoch)
        y = x @ self.w[:, None]
        return y + self.b if self.bias else y

    def design(self, x):
        return torch.cat([x, torch.ones_like(x[:, :1])], 1) if self.bias else x

    def spec(self): return f"LinearModel(n_in={self.n_in}, bias={self.bias})"


class PolyModel(RegModel):
    "pred = c_d*x**d + ... + c1*x + c0, one scalar parameter per coefficient, highest power first."
    def __init__(self,
        degree:int=2, # degree of the polynomial
        init=None, # dict {'c2': ..., 'c1': ..., 'c0': ...}, a flat tensor (highest power first), or None
        seed:int=42, # seed of the random init
    ):
        if not isinstance(degree, (int, np.integer)) or degree < 0: raise ValueError(f"degree must be an int >= 0, got {degree!r}")
        self.degree = int(degree)
        super().__init__({f'c{k}': () for k in range(self.degree, -1, -1)}, init, seed)

    n_features = 1
    def _features_fix(self, n): return f"PolyModel fits one feature: give x one column, or use LinearModel(n_in={n})"

    def forward(self, x):
        self._check_features(x, 1)
        y = torch.zeros_like(x)
        for k in self.pnames: y = y * x + getattr(self, k)  # Horner, highest power first
        return y

    def design(self, x): return torch.cat([x ** k for k in range(self.degree, -1, -1)], 1)
    def spec(self): return f"PolyModel(degree={self.degree})"


class FuncModel(RegModel):
    "fastbook style: pred = f(x, params), with `params` one tensor (init a tensor) or a dict of named tensors."
    def __init__(self,
        f, # f(x, params) -> predictions of shape (n, 1) or (n,)
        init, # a tensor (one parameter `params`, as fastbook) or a dict name -> initial value
        seed:int=42, # unused unless init leaves parameters out
    ):
        if not callable(f): raise TypeError(f"f must be a function f(x, params) -> predictions, got {type(f).__name__}")
        self.f, self.named = f, isinstance(init, dict)
        if self.named: shapes = {k: tuple(_as_init_tensor(v, k).shape) for k, v in init.items()}
        elif init is None: raise ValueError("FuncModel needs init: a tensor of the starting parameters, or a dict of them")
        else:
            init = _as_init_tensor(init, 'init')
            shapes = dict(params=tuple(init.shape))
        super().__init__(shapes, init, seed)

    def forward(self, x):
        params = {k: getattr(self, k) for k in self.pnames} if self.named else self.params
        y = self.f(x, params)
        return y[:, None] if y.ndim == 1 and len(y) == len(x) else y

    def spec(self): return f"FuncModel({getattr(self.f, '__name__', 'f')})"

    def __repr__(self):
        "`FuncModel(f, params=[...])`: the function's name and the current values (a big model: their number)."
        r = super().__repr__()
        return r.replace('FuncModel(', f"FuncModel({getattr(self.f, '__name__', 'f')}, ", 1) if r.startswith('FuncModel(') else r


class LogisticModel(LinearModel):
    "Logistic regression: one logit per sample, x @ w + b (p = sigmoid(logit) is the probability of class 1)."
    n_out = 1
    def __init__(self,
        n_in:int=2, # number of input features
        bias:bool=True, # add the scalar `b`
        init=None, # dict {'w': ..., 'b': ...}, a flat tensor (w then b), or None: seeded randn
        seed:int=42, # seed of the random init
    ): super().__init__(n_in, bias, init, seed)

    def _features_fix(self, n): return f"use LogisticModel(n_in={n}), or give x {self.n_in} feature column(s)"
    def spec(self): return f"LogisticModel(n_in={self.n_in}{'' if self.bias else ', bias=False'})"


class SoftmaxModel(RegModel):
    """Softmax regression: one logit per class, x @ w.T + b, with `w` (n_classes, n_in) (as `nn.Linear`'s weight: row k
    is class k's weights, so flat 'w[0]', 'w[1]' are class 0's first two) and `b` (n_classes,)."""
    def __init__(self,
        n_in:int=2, # number of input features
        n_classes:int=3, # number of classes: one logit each
        bias:bool=True, # add one bias per class
        init=None, # dict {'w': ..., 'b': ...}, a flat tensor (w row by row, then b), or None: seeded randn
        seed:int=42, # seed of the random init
    ):
        self.n_in, self.n_out, self.bias = _check_count('n_in', n_in), _check_count('n_classes', n_classes, 2), bias
        super().__init__(dict(w=(self.n_out, self.n_in), **(dict(b=(self.n_out,)) if bias else {})), init, seed)

    @property
    def n_features(self): return self.n_in
    def _features_fix(self, n): return f"use SoftmaxModel(n_in={n}, n_classes={self.n_out}), or give x {self.n_in} feature column(s)"

    def forward(self, x):
        self._check_features(x, self.n_in)
        y = x @ self.w.T
        return y + self.b if self.bias else y

    def spec(self): return f"SoftmaxModel(n_in={self.n_in}, n_classes={self.n_out}{'' if self.bias else ', bias=False'})"


_ACTS = {'relu': F.relu, 'tanh': torch.tanh, 'sigmoid': torch.sigmoid, 'gelu': F.gelu, 'leaky_relu': F.leaky_relu}


class MLPModel(RegModel):
    """A multi-layer perceptron: `act(x @ l1.w + l1.b)`, ... then `@ lL.w + lL.b` with no activation; parameters named
    'l1.w' (n_in, hidden[0]), 'l1.b' (hidden[0],), ..., one layer `li` per hidden size and one for the output."""
    def __init__(self,
        n_in:int=1, # number of input features
        hidden=(8,), # units of each hidden layer, e.g. (8,) or (16, 16); an int for one layer
        n_out:int=1, # outputs (1 for regression or a binary classifier's logit; k for k classes)
        act='relu', # the hidden layers' activation: 'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu', or a function
        init=None, # dict by name ('l1.w', ...), a flat tensor of all values in order, or None: seeded, as nn.Linear's
        seed:int=42, # seed of the random init
    ):
        self.n_in, self.n_out = _check_count('n_in', n_in), _check_count('n_out', n_out)
        hs = (hidden,) if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool) else hidden
        try: hs = tuple(hs)
        except TypeError: raise TypeError(f"hidden must be a tuple of unit counts, e.g. (8,) or (16, 16), got {hidden!r}") from None
        if not hs: raise ValueError("hidden=() leaves no hidden layer: give at least one, e.g. hidden=(8,) "
                                    "(for a straight line, use LinearModel)")
        self.hidden = tuple(_check_count(f'hidden[{i}]', h) for i, h in enumerate(hs))
        if isinstance(act, str):
            if act not in _ACTS: raise ValueError(f"act must be one of {tuple(_ACTS)} or a function, got {act!r}")
            act_name, act_fn = act, _ACTS[act]
        # a torch module (nn.Tanh()) too: set after nn.Module's own __init__, which a module attribute needs
        elif callable(act):
            act_name, act_fn = getattr(act, '__name__', repr(act)), act
            if isinstance(act, nn.Module): act_name = type(act).__name__.lower().replace('leakyrelu', 'leaky_relu')  # 'tanh'
        else: raise TypeError(f"act must be one of {tuple(_ACTS)} or a function, got {act!r}")
        sizes = (self.n_in, *self.hidden, self.n_out)
        shapes = {}
        for i, (a, b) in enumerate(zip(sizes, sizes[1:]), 1): shapes.update({f'l{i}.w': (a, b), f'l{i}.b': (b,)})
        super().__init__(shapes, init, seed)
        self.act_name, self.act = act_name, act_fn
        self.layers = [getattr(self, f'l{i}') for i in range(1, len(sizes))]  # a plain list: the l1, l2, ... modules

    def _random_init(self, shapes, g):
        "As torch's `nn.Linear`: weights and biases uniform on +-1/sqrt(fan_in)."
        out = {}
        for k, s in shapes.items():
            fan_in = shapes[k[:-1] + 'w'][0]
            out[k] = (torch.rand(s, generator=g) * 2 - 1) / fan_in ** .5
        return out

    @property
    def n_features(self): return self.n_in
    def _features_fix(self, n): return f"use MLPModel(n_in={n}, ...), or give x {self.n_in} feature column(s)"

    def forward(self, x):
        self._check_features(x, self.n_in)
        *hidden, out = self.layers
        for layer in hidden: x = self.act(x @ layer.w + layer.b)
        return x @ out.w + out.b

    def forward_many(self, x, params:dict) -> torch.Tensor:
        """The outputs for `x` (n, n_in) at G parameter sets at once, `params` name -> (G, *shape): (G, n, n_out). The
        loss landscape's grid and the runs fitted together (`fastfit.batched`) use it instead of `vmap`: the first layer
        one matrix product for every set, a one-unit layer a weighted sum, the activation in place without gradients."""
        n, last = len(x), len(self.layers)
        inplace = not torch.is_grad_enabled()  # (autograd keeps its own copies where it must)
        h = x
        for i in range(1, last + 1):
            w, b = params[f'l{i}.w'], params[f'l{i}.b']  # (G, a, c), (G, c)
            G, a, c = w.shape
            if i == 1: h = (x @ w.transpose(0, 1).reshape(a, G * c)).view(n, G, c).transpose(0, 1)  # (n, a) @ (a, G*c)
            elif c == 1: h = (h * w[:, None, :, 0]).sum(-1, keepdim=True)  # G matrix-vector products as one sum
            else: h = torch.matmul(h, w)
            h = h.add_(b[:, None, :]) if inplace else h + b[:, None, :]
            if i < last: h = (torch.relu_(h) if inplace else torch.relu(h)) if self.act is F.relu else self.act(h)
        return h

    def units(self, x, params:dict|None=None) -> torch.Tensor:
        "(n, units): each last hidden unit's part of the output (its activation times its output weight) at `params`."
        p = dict(self.named_parameters()) if params is None else params
        *hidden, out = range(1, len(self.layers) + 1)
        for i in hidden: x = self.act(x @ p[f'l{i}.w'] + p[f'l{i}.b'])
        return x * p[f'l{out}.w'][:, 0]

    def spec(self):
        act = '' if self.act_name == 'relu' else f", act={self.act_name!r}"
        return f"MLPModel(n_in={self.n_in}, hidden={self.hidden}, n_out={self.n_out}{act})"

    def __repr__(self): return f"{self.spec()}: {sum(p.numel() for p in self.parameters()):,} parameters"  # its values mean little

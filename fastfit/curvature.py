"""`learn.curvature()`: the eigenvalues of the training loss's Hessian, its condition number and the largest stable lr of
plain gradient descent (what `compare_scaling` titles its fits with and the lr sweep's stability map marks)."""
from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch
from fastai.learner import Learner
from fastcore.basics import patch
from torch.func import functional_call

__all__ = ['Curvature']


class Curvature(NamedTuple):
    "The eigenvalues of the loss's Hessian (ascending), its condition number and the largest stable lr of plain GD."
    eigenvalues:np.ndarray
    condition:float # largest / smallest eigenvalue (inf when the smallest is <= 0: a flat or saddle direction)
    max_lr:float # 2 / largest eigenvalue: above it, plain gradient descent diverges along the steepest direction

    def __repr__(self):
        return f"Curvature(condition number {self.condition:.3g}, largest stable lr 2/λmax = {self.max_lr:.3g}, " \
               f"eigenvalues {np.array2string(self.eigenvalues, precision=3)})"


@patch
def curvature(self:Learner,
    params:dict|None=None, # where (name -> tensor; default: the model's current parameters)
    max_params:int=2000, # refuse larger models (the Hessian has max_params**2 entries)
) -> Curvature:
    """The Hessian of the training loss (all the training data) at `params`, in float64: its eigenvalues, condition
    number and the largest stable lr of plain gradient descent, 2/λmax (exact for MSE of models linear in their parameters)."""
    model = copy.deepcopy(self.model).cpu().double()
    named = [(k, p.detach()) for k, p in model.named_parameters()]
    if params is not None: named = [(k, torch.as_tensor(params[k]).detach().double().reshape(p.shape)) for k, p in named]
    n = sum(p.numel() for _, p in named)
    if n > max_params:
        raise ValueError(f"curvature() builds the {n}x{n} Hessian of this model's {n:,} parameters: more than "
                         f"max_params={max_params}; pass a larger max_params if you mean it")
    dl = self.dls.train
    x, y, shapes = dl.x.cpu().double(), dl.y.cpu().double(), [(k, p.shape, p.numel()) for k, p in named]
    def loss(theta):
        ps, i = {}, 0
        for k, shape, m in shapes: ps[k] = theta[i:i + m].reshape(shape); i += m
        return self.loss_func(functional_call(model, ps, (x,)), y)
    # torch.autograd's Hessian (a double backward per row): torch.func's first call imports for seconds what this needs not.
    H = torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for _, p in named]))
    eig = torch.linalg.eigvalsh((H + H.T) / 2).numpy()
    top, low = float(eig[-1]), float(eig[0])
    return Curvature(eig, top / low if low > 0 else math.inf, 2 / top if top > 0 else math.inf)

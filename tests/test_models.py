"Models: named parameters, init from dict/tensor/seed, forward, design matrix."
import pytest
import torch

from fastfit.all import FuncModel, LinearModel, PolyModel


def test_linear_model_names_shapes_forward():
    m = LinearModel(n_in=2, init={'w': [1., 2.], 'b': .5})
    assert [k for k, _ in m.named_parameters()] == ['w', 'b']
    assert m.w.shape == (2,) and m.b.shape == ()
    x = torch.tensor([[1., 1.], [2., 0.]])
    torch.testing.assert_close(m(x), torch.tensor([[3.5], [2.5]]))
    assert m.param_names() == ['w[0]', 'w[1]', 'b']


def test_linear_model_flat_tensor_init_and_no_bias():
    m = LinearModel(n_in=1, init=torch.tensor([2., -1.]))
    assert m.w.tolist() == [2.] and m.b.item() == -1.
    m = LinearModel(n_in=2, bias=False, init=[.5, .75])
    assert not hasattr(m, 'b') and m.param_names() == ['w[0]', 'w[1]']


def test_seeded_random_init():
    a, b, c = LinearModel(3), LinearModel(3), LinearModel(3, seed=1)
    assert torch.equal(a.w, b.w) and not torch.equal(a.w, c.w)


def test_init_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\['a'\].*parameters are: w \(1,\), b \(\)"):
        LinearModel(init={'a': 1.})
    with pytest.raises(ValueError, match=r"init\['w'\] has shape \(3,\) but parameter w has shape \(2,\)"):
        LinearModel(2, init={'w': [1., 2., 3.]})
    with pytest.raises(ValueError, match="init has 5 values but the model has 3"):
        LinearModel(2, init=torch.zeros(5))


def test_feature_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"takes x of shape \(n, 2\) but x has shape \(100, 1\)"):
        LinearModel(2)(torch.zeros(100, 1))


def test_poly_model_highest_power_first_and_design():
    m = PolyModel(2, init={'c2': 1., 'c1': -2., 'c0': 3.})
    assert [k for k, _ in m.named_parameters()] == ['c2', 'c1', 'c0']
    x = torch.tensor([[0.], [1.], [2.]])
    torch.testing.assert_close(m(x), x ** 2 - 2 * x + 3)
    X = m.design(x)
    torch.testing.assert_close(X @ torch.tensor([[1.], [-2.], [3.]]), m(x).detach())


def test_func_model_fastbook_style():
    def f(t, params):
        a, b, c = params
        return a * (t ** 2) + (b * t) + c
    m = FuncModel(f, torch.tensor([1., 0., 2.]))
    assert [k for k, _ in m.named_parameters()] == ['params'] and m.param_names() == ['params[0]', 'params[1]', 'params[2]']
    t = torch.arange(3.)[:, None]
    torch.testing.assert_close(m(t), t ** 2 + 2)
    m2 = FuncModel(lambda x, p: p['a'] * x.flatten(), {'a': 2.})  # 1-d outputs become (n, 1)
    assert m2(t).shape == (3, 1)
    assert m.design(t) is None


def test_copy_model_is_a_deep_copy():
    "copy_model (an lr sweep's one copy per run): what deepcopy makes, its own parameters; a user's subclass is deep-copied."
    import copy

    from fastfit.all import LogisticModel, MLPModel, SoftmaxModel
    from fastfit.models import copy_model
    class Mine(LinearModel): pass
    x = torch.randn(5, 2)
    for m in [LinearModel(2), LogisticModel(2), SoftmaxModel(2, 3), PolyModel(2), MLPModel(n_in=2, hidden=(8, 4)), Mine(2)]:
        c, d = copy_model(m), copy.deepcopy(m)
        assert type(c) is type(m) and vars(c).keys() == vars(d).keys() and repr(c) == repr(m)
        for (k, p), (k0, p0) in zip(c.named_parameters(), m.named_parameters()):
            assert k == k0 and p is not p0 and type(p) is type(p0) and torch.equal(p, p0) and p.requires_grad
        x_in = x[:, :1] if isinstance(m, PolyModel) else x
        torch.testing.assert_close(c(x_in), m(x_in), rtol=0, atol=0)
        with torch.no_grad(): next(c.parameters()).add_(1.)
        assert not torch.equal(next(c.parameters()), next(m.parameters()))
    mlp = copy_model(MLPModel(hidden=(3,)))
    assert mlp.layers[0] is mlp.l1  # shared references stay shared, as deepcopy keeps them

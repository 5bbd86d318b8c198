"Edge cases a review found: each was a wrong number, a silent surprise or a crash before it was fixed."
import numpy as np
import pytest
import torch

from fastfit.all import ParamHistory, RegDataLoaders, regression_learner, synth_linear, synth_multilinear, synth_poly


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def test_diverged_fit_leaves_the_model_at_the_last_finite_record_and_a_refit_recovers(capsys):
    learn = quiet(regression_learner(synth_linear().dataloaders(bs=None), lr=50), 100)
    h = learn.param_history
    assert learn.diverged is not None and 'diverged' in capsys.readouterr().out
    torch.testing.assert_close(learn.model.w.detach(), h.record(-1)['w'])
    n = len(h)
    quiet(learn, 3, lr=1e-3)  # the advice: a smaller lr, from where the history ends
    assert learn.diverged is None and len(h) == n + 3 and bool(torch.isfinite(h.losses).all())


def test_peeking_at_a_batch_does_not_change_the_next_fit():
    def history(peek):
        dls = synth_linear(n=200).dataloaders(bs=16)
        if peek: dls.one_batch(); dls.show_batch()
        return quiet(regression_learner(dls), 2).param_history.flat
    torch.testing.assert_close(history(False), history(True))


def test_a_param_history_given_in_cbs_is_the_only_one():
    learn = regression_learner(synth_linear().dataloaders(bs=None), cbs=ParamHistory(params=['w']))
    hs = [c for c in learn.cbs if isinstance(c, ParamHistory)]
    assert len(hs) == 1 and learn.param_history is hs[0]
    quiet(learn, 2)
    assert list(learn.param_history.params) == ['w']


def test_fit_rejects_a_non_positive_lr():
    learn = regression_learner(synth_linear().dataloaders(bs=None))
    for lr in (0, -1.):
        with pytest.raises(ValueError, match='lr must be a finite number > 0'): learn.fit(1, lr=lr)


def test_animate_rejects_fps_zero(fitted):
    with pytest.raises(ValueError, match='fps must be > 0, got 0'): fitted.animate(fps=0)


def test_loss_already_infinite_at_the_start_blames_the_scale_not_the_lr():
    x = torch.linspace(0, 1, 50)
    with pytest.raises(ValueError, match='already inf.*standardise'):
        regression_learner(RegDataLoaders.from_arrays(x, x * 1e25, valid_pct=0))


def test_generators_reject_shapes_they_cannot_use():
    with pytest.raises(ValueError, match=r'x must be one feature.*\(5, 2\)'): synth_poly(x=np.ones((5, 2)))
    with pytest.raises(ValueError, match='w must hold one weight per feature'): synth_multilinear(w=())


def test_more_messages_name_argument_and_value():
    with pytest.raises(ValueError, match=r'n must be an integer > 0, got inf'): synth_linear(n=float('inf'))
    with pytest.raises(ValueError, match=r"n must be an integer > 0, got 2.5: use 2"): synth_linear(n=2.5)
    with pytest.raises(TypeError, match=r"n must be an integer > 0, got '3' of type str: write it without quotes"):
        synth_linear(n='3')
    with pytest.raises(TypeError, match='opt_func must be a fastai optimizer function.*got 3'):
        regression_learner(synth_linear().dataloaders(), opt_func=3)

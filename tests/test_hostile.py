"Hostile use at the edges of the new features (issue 21): one test per category, each a wrong or unclear result before."
import threading

import torch

from fastfit.all import (
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_linear,
)


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def _state(learn) -> dict: return {k: v.clone() for k, v in learn.model.state_dict().items()}


def test_rendering_never_changes_the_learner(tmp_path):
    "Two exports of one learner at once (threads) give the bytes of one alone; the learner's weights and loss stay put."
    reg = quiet(regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None)), 12)
    cls = quiet(classification_learner(synth_blobs(n=60, seed=0).dataloaders(bs=None)), 8)
    for learn, panels in ((reg, ('fit', 'surface', 'loss')), (cls, ('boundary', 'loss'))):
        before, loss = _state(learn), learn.train_loss()
        learn.save_animation(tmp_path / 'alone.gif', frames=6, panels=panels, dpi=50)
        alone = (tmp_path / 'alone.gif').read_bytes()
        errors = []
        def export(i, learn=learn, panels=panels):
            try: learn.save_animation(tmp_path / f'{i}.gif', frames=6, panels=panels, dpi=50)
            except Exception as e: errors.append(e)
        threads = [threading.Thread(target=export, args=(i,)) for i in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert not errors
        assert all((tmp_path / f'{i}.gif').read_bytes() == alone for i in range(3))
        after = _state(learn)
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert learn.train_loss() == loss
        # train_loss at other parameters, the current state's Records: neither moves the model nor follows it later
        learn.train_loss({k: torch.zeros_like(v) for k, v in before.items()})
        assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    from fastfit.models import private_model
    m = reg.model
    copy = private_model(m)
    assert all(a.data_ptr() != b.data_ptr() and not b.requires_grad for a, b in zip(m.parameters(), copy.parameters()))
    from fastfit.records import Records
    recs = Records.current(reg)
    w = recs.params[0]['w'].clone()
    quiet(reg, 3)
    assert torch.equal(recs.params[0]['w'], w)

"""Run by tests/test_distributed.py on each of 2 processes (`torchrun`, gloo on CPU): fits under `learn.distrib_ctx()`,
then writes, draws and exports as a user's script would (on every rank, unguarded), and saves what rank 0 recorded.
Each rank works in its own folder `OUT/rank{r}`, so what a rank > 0 writes shows there."""
import os
import sys
from pathlib import Path

import torch

import fastfit.all  # noqa: F401 (learn.save_animation)
from fastfit.data import RegDataLoaders, synth_linear
from fastfit.learner import regression_learner


def data():
    "(train x, y: 48 rows, an even split over 2 ranks), (valid: 16), (test: 15, an odd number: padding to drop)."
    s = synth_linear(n=79, seed=0)
    return (s.x[:48], s.y[:48]), (s.x[48:64], s.y[48:64]), (s.x[64:], s.y[64:])


FULL = dict(lr=.1, epochs=12)  # full batch, with a validation set
MINI = dict(lr=.05, epochs=2, bs=8, seed=3)  # batches of 8 per process, shuffled (the default), drop_last


def full_learner(train, valid):
    return regression_learner(RegDataLoaders.from_arrays(*train, valid=valid, bs=None), lr=FULL['lr'])


def mini_learner(train):
    return regression_learner(RegDataLoaders.from_arrays(*train, valid_pct=0, bs=MINI['bs'], seed=MINI['seed']), lr=MINI['lr'])


def records(learn) -> dict:
    h = learn.param_history
    return dict(steps=torch.as_tensor(h.steps), params=h.params, losses=h.losses, grads=h.grads,
                values=learn.recorder.values, names=list(h.params), model=type(learn.model).__name__)


def main(out):
    rank = int(os.environ['RANK'])
    here = Path(out) / f'rank{rank}'
    here.mkdir()
    os.chdir(here)
    train, valid, test = data()
    learn = full_learner(train, valid)
    with learn.distrib_ctx():
        learn.fit(FULL['epochs'])
        # The history is on rank 0 (ranks > 0 record none): what the test compares with a one-process fit.
        res = dict(full=records(learn), loss_func=learn.loss_func.__name__) if rank == 0 else {}
        # Every rank calls get_preds (it gathers their predictions); fastai's get_preds resets the recorder: read it first.
        res['preds'], res['targs'] = learn.get_preds(dl=learn.dls.test_dl(test, with_labels=True))
    learn.save_animation('fit.gif', frames=6)
    learn.export('learn.pkl')

    mini = mini_learner(train)
    with mini.distrib_ctx(): mini.fit(MINI['epochs'])
    if rank == 0: torch.save({**res, 'mini': records(mini)}, 'records.pt')
    # Every rank done, then the process group closed, as torch asks. On this machine under load a rank could still
    # abort once `main` had returned, in the interpreter's own exit ("terminate called without an active exception"
    # from a C++ thread's destructor, no Python frame left), and torchrun then reported the whole run failed after its
    # work was written. The script leaves with `os._exit`, skipping that teardown; the cause is not known.
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)

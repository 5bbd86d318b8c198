import os

os.environ.setdefault('MPLBACKEND', 'Agg')
import fastprogress.fastprogress as fp  # noqa: E402
import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use('Agg')
fp.NO_BAR = True  # no \r progress bars in test logs


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close('all')


@pytest.fixture
def fitted():
    "A linear fit of synth_linear, 100 full-batch steps, quietly."
    from fastfit.all import regression_learner, synth_linear
    s = synth_linear(n=100, seed=42)
    learn = regression_learner(s.dataloaders(bs=None))
    with learn.no_bar(), learn.no_logging(): learn.fit(100)
    return learn

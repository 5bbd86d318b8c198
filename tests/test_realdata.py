"""Real data, offline: digits (fastbook's 3 vs 7), iris and diabetes from scikit-learn's package files; what happens
without scikit-learn and without a network; the misclassified gallery of image data."""
import subprocess
import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from fastfit.all import (
    ClsDataLoaders,
    LogisticModel,
    RealData,
    RegDataLoaders,
    SoftmaxModel,
    classification_learner,
    diabetes,
    digits,
    iris,
    regression_learner,
)
from fastfit.gallery import WRONG

sklearn_datasets = pytest.importorskip('sklearn.datasets')


def quiet_fit(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


@pytest.fixture(scope='module')
def three_seven():
    "fastbook's 3 vs 7 on the 8x8 digits: logistic regression from zero weights, 100 full-batch steps."
    dls = digits().dataloaders(bs=None)
    model = LogisticModel(64, init=dict(w=torch.zeros(64), b=0.))
    return quiet_fit(classification_learner(dls, model=model, lr=1.), 100)


# -- the loaders ---------------------------------------------------------------------------------------------------------
def test_digits_are_scikit_learns_threes_and_sevens_scaled_to_one():
    s = digits()
    ref = sklearn_datasets.load_digits()
    keep = np.isin(ref.target, (3, 7))
    assert isinstance(s, RealData) and s.x.shape == (362, 64) and s.x.dtype == torch.float32
    np.testing.assert_array_equal(s.x.numpy(), (ref.data[keep] / 16).astype(np.float32))
    assert s.y.shape == (362, 1) and s.y.dtype == torch.int64
    np.testing.assert_array_equal(s.y[:, 0].numpy(), (ref.target[keep] == 7).astype(int))  # class i is pair[i]
    assert s.vocab == ['3', '7'] and s.img_shape == (8, 8) and torch.bincount(s.y[:, 0]).tolist() == [183, 179]
    assert float(s.x.min()) == 0 and float(s.x.max()) == 1
    assert 'UCI' in s.source and 'CC BY 4.0' in s.source and 'BSD-3-Clause' in s.source
    assert 'BSD-3-Clause' in digits.__doc__ and 'CC BY 4.0' in digits.__doc__


def test_digits_pair_order_and_all_ten():
    s = digits((7, 3))
    assert s.vocab == ['7', '3'] and torch.bincount(s.y[:, 0]).tolist() == [179, 183]
    a = digits(None)
    assert a.x.shape == (1797, 64) and a.vocab == [str(d) for d in range(10)]
    np.testing.assert_array_equal(a.y[:, 0].numpy(), sklearn_datasets.load_digits().target)
    assert digits((0, 1, 8)).vocab == ['0', '1', '8']


@pytest.mark.parametrize('pair, err', [((3, 3), ValueError), ((3,), ValueError), ((3, 12), ValueError), ((3.5, 7), ValueError),
                                       (('3', '7'), ValueError), (3, TypeError), (('a', 'b'), TypeError)])
def test_digits_bad_pair_names_it(pair, err):
    with pytest.raises(err, match=r"pair must be .*\(3, 7\)"): digits(pair)


def test_iris_features_by_name_or_index():
    s = iris()
    assert s.x.shape == (150, 4) and s.vocab == ['setosa', 'versicolor', 'virginica']
    assert torch.bincount(s.y[:, 0]).tolist() == [50, 50, 50] and 'Fisher' in s.source
    two = iris(('petal length', 'petal width'))
    assert two.feature_names == ['petal length (cm)', 'petal width (cm)']
    np.testing.assert_array_equal(two.x.numpy(), s.x[:, 2:].numpy())
    assert iris((3, 0)).feature_names == ['petal width (cm)', 'sepal length (cm)']
    with pytest.raises(ValueError, match=r"features must be .*petal width"): iris(('petal',))  # two names start so
    with pytest.raises(ValueError, match=r"features must be .*got 'leaf'"): iris(('leaf',))
    with pytest.raises(ValueError, match=r"features must be .*got 7"): iris((7,))


def test_diabetes_in_its_own_units():
    s = diabetes()
    assert s.x.shape == (442, 10) and s.y.dtype == torch.float32 and s.vocab is None
    assert s.feature_names == ['age', 'sex', 'bmi', 'bp', 's1', 's2', 's3', 's4', 's5', 's6']
    assert 19 <= float(s.x[:, 0].min()) and float(s.x[:, 0].max()) <= 79  # years, not scikit-learn's scaled default
    assert float(s.y.min()) == 25 and float(s.y.max()) == 346
    scaled = sklearn_datasets.load_diabetes().data  # the same columns, centred and scaled
    for j in range(10): assert np.corrcoef(s.x[:, j].numpy(), scaled[:, j])[0, 1] == pytest.approx(1, abs=1e-5)
    assert 'Least Angle Regression' in s.source


def test_dataloaders_carry_names_and_image_shape():
    dls = digits().dataloaders()
    assert isinstance(dls, ClsDataLoaders) and dls.n_classes == 2 and dls.train.bs == 64  # fastai's default
    assert dls.vocab == ['3', '7'] and dls.img_shape == (8, 8) and len(dls.feature_names) == 64
    assert len(dls.train.x) + len(dls.valid.x) == 362 and dls.valid.n == 72
    full = iris().dataloaders(bs=None)
    assert full.train.full_batch and full.vocab[2] == 'virginica' and full.img_shape is None
    reg = diabetes().dataloaders(bs=None, normalize=True)
    assert type(reg) is RegDataLoaders and reg.feature_names[2] == 'bmi'
    assert reg.train.x.mean(0).abs().max() < 1e-5 and (reg.train.x.std(0) - 1).abs().max() < 1e-5


def test_names_survive_new_batch_sizes_and_export():
    from fastfit.data import rebatch
    dls = digits().dataloaders(bs=None)
    for d in (rebatch(dls, 16), dls.new_empty()): assert d.img_shape == (8, 8) and d.vocab == ['3', '7']


def test_fastbook_three_vs_seven_held_out_accuracy(three_seven):
    _, acc = three_seven.validate()
    assert acc >= .97  # fastbook's linear model on MNIST 3s and 7s gets about 97%; these 8x8 digits as well


def test_diabetes_fits_with_normalize():
    dls = diabetes().dataloaders(bs=None, normalize=True)
    learn = quiet_fit(regression_learner(dls, lr=.1), 300)
    opt = learn.train_loss(learn.ols())
    assert learn.train_loss() < 1.02 * opt  # close to least squares: the features no longer differ by 100x in scale


# -- without scikit-learn, without a network -------------------------------------------------------------------------------
def run_py(code):
    r = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_without_scikit_learn_the_loaders_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'sklearn', None)  # `import sklearn` now raises ImportError, as if not installed
    for load in (digits, iris, diabetes):
        with pytest.raises(ImportError, match=r"pip install 'fastfit-gd\[data\]'"): load()


def test_fastfit_imports_and_fits_without_scikit_learns_data_sets():
    "fastai imports scikit-learn itself (it requires it), so here only its `datasets` module is hidden, before any import."
    out = run_py("""
        import sys
        sys.modules['sklearn.datasets'] = None  # hidden: importing it fails, as where it is not installed
        from fastfit.all import digits, synth_blobs, classification_learner
        learn = classification_learner(synth_blobs().dataloaders(bs=None))
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        try: digits()
        except ImportError as e: print('ERR', e)
        """)
    assert "ERR fastfit's real data sets" in out and "pip install 'fastfit-gd[data]'" in out


def test_no_network_anywhere(monkeypatch, tmp_path):
    "Loaders, a fit, the weights animation and the gallery with every socket refused: nothing is downloaded."
    import socket
    def refuse(*a, **k): raise OSError('network access attempted')
    for name in ('connect', 'connect_ex', 'sendto'): monkeypatch.setattr(socket.socket, name, refuse)
    for name in ('create_connection', 'getaddrinfo', 'gethostbyname'): monkeypatch.setattr(socket, name, refuse)
    monkeypatch.delitem(sys.modules, 'sklearn.datasets', raising=False)  # imported again, here, with no network
    for load in (digits, iris, diabetes): load()
    s = digits()
    learn = quiet_fit(classification_learner(s.dataloaders(bs=None), lr=1.), 3)
    assert learn.save_animation(tmp_path / 'w.gif', frames=3, panels=('weights',)).stat().st_size > 0
    learn.show_results(); s.show()
    with pytest.raises(OSError, match='network access attempted'): socket.create_connection(('example.com', 80))


# -- pictures of the data and the gallery ----------------------------------------------------------------------------------
def images_of(fig): return [im for ax in fig.axes for im in ax.get_images()]


def test_show_draws_images_tables_and_targets():
    digits().show(per_class=5)
    ims = images_of(plt.gcf())
    assert len(ims) == 10 and all(im.get_array().shape == (8, 8) for im in ims)
    assert [ax.get_title() for ax in plt.gcf().axes if ax.get_visible()][::5] == ['3', '7']
    plt.close('all')
    iris(('petal length', 'petal width')).show()
    ax = plt.gcf().axes[0]
    assert ax.get_xlabel() == 'petal length (cm)' and [t.get_text() for t in ax.get_legend().get_texts()] == \
        ['setosa', 'versicolor', 'virginica']
    plt.close('all')
    diabetes().show()
    axs = [ax for ax in plt.gcf().axes if ax.get_visible()]
    assert len(axs) == 10 and axs[2].get_xlabel() == 'bmi' and axs[5].get_ylabel() == 'progression'


def test_dls_show_and_show_batch_of_images():
    dls = digits().dataloaders(bs=16)
    dls.show()
    assert len(images_of(plt.gcf())) == 16  # 8 of each class
    plt.close('all')
    dls.show_batch()
    assert 0 < len(images_of(plt.gcf())) <= 16


def titles(fig): return [ax.title for ax in fig.axes if ax.get_visible() and ax.get_images()]


def test_show_misclassified_wrong_first_most_confident_first(three_seven):
    learn = three_seven
    dl = learn.dls.valid
    with torch.no_grad(): p = torch.sigmoid(learn.model(dl.x))[:, 0]
    y = dl.y[:, 0]
    wrong = ((p > .5).long() != y)
    learn.show_misclassified(max_n=12, ncols=6)
    ts = titles(plt.gcf())
    assert len(ts) == 12
    n_wrong = int(wrong.sum())
    assert all(t.get_color() == WRONG and t.get_fontweight() == 'bold' for t in ts[:n_wrong])
    assert all(t.get_color() != WRONG for t in ts[n_wrong:])
    # within the right ones: the least sure of the true class first
    sure = torch.where(y == 1, p, 1 - p)[~wrong].sort().values[:12 - n_wrong]
    shown = [float(t.get_text().split('(')[1].rstrip(')')) for t in ts[n_wrong:]]
    np.testing.assert_allclose(shown, sure.numpy(), atol=.006)
    assert f"{n_wrong} of 72 misclassified" in plt.gcf()._suptitle.get_text()


def test_show_misclassified_ten_digits_and_a_made_up_error():
    s = digits(None)
    dls = s.dataloaders(bs=None)
    # weights that say '0' for everything: every image not a 0 is wrong, and shown first
    model = SoftmaxModel(64, 10, init=dict(w=torch.zeros(10, 64), b=torch.eye(10)[0] * 5))
    learn = classification_learner(dls, model=model)
    learn.show_misclassified(max_n=8)
    ts = titles(plt.gcf())
    assert len(ts) == 8 and all(t.get_text().split('\n')[1].startswith('pred 0') for t in ts)
    assert all(t.get_color() == WRONG for t in ts)
    n_wrong = int((dls.valid.y != 0).sum())
    assert f"{n_wrong} of {dls.valid.n} misclassified" in plt.gcf()._suptitle.get_text()


def test_show_results_of_image_data_is_the_gallery(three_seven):
    three_seven.show_results()
    fig = plt.gcf()
    assert len(images_of(fig)) == 24 and 'misclassified' in fig._suptitle.get_text()


def test_gallery_errors_name_the_fix(three_seven):
    learn = classification_learner(iris(('petal length', 'petal width')).dataloaders(bs=None))
    with pytest.raises(ValueError, match=r"dls.img_shape"): learn.show_misclassified()
    with pytest.raises(ValueError, match=r"max_n must be an integer > 0, got 0"): three_seven.show_misclassified(max_n=0)
    with pytest.raises(ValueError, match=r"ds_idx must be 0 .* got 2"): three_seven.show_misclassified(ds_idx=2)

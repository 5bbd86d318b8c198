"""Real data, offline: small classic data sets that scikit-learn ships inside its package (the `data` extra) —
`digits` (8x8 handwritten digits: fastbook's 3 vs 7, or all ten), `iris`, `diabetes`. Each returns a `RealData`, what
the `synth_*` generators return (`x`, `y`, `.dataloaders()`, `.show()`), with the names of its features and classes.
Nothing is downloaded: scikit-learn reads them from files installed with it."""
from __future__ import annotations

import numpy as np
import torch

from .data import SynthData

__all__ = ['RealData', 'digits', 'iris', 'diabetes']

INSTALL = "pip install 'fastfit-gd[data]' (or pip install scikit-learn)"


def _sklearn_datasets():
    "scikit-learn's `datasets` module, or an error saying what to install."
    try:
        from sklearn import datasets
    except ImportError as e:
        raise ImportError(f"fastfit's real data sets are the ones scikit-learn ships inside its package (no download): "
                          f"install it with {INSTALL}") from e
    return datasets


class RealData(SynthData):
    """A real data set: `x` (n, n_features) float32, `y` int64 class labels (n, 1) or float32 targets (n, 1), the names
    of its features (`feature_names`), classes (`vocab`: class i is `vocab[i]`) and target, its pixels' shape for images
    (`img_shape`), where it comes from and under which licence (`source`). No true parameters: `params`, `truth` empty."""
    dls_attrs = ('vocab', 'img_shape', 'feature_names')  # its loaders carry the names and the image shape
    def __init__(self,
        x:torch.Tensor, # (n, n_features) float32
        y:torch.Tensor, # (n, 1) int64 class labels 0..k-1, or float32 targets
        name:str, # what it is, e.g. 'digits 3 vs 7'
        feature_names:list, # one name per feature
        vocab:list|None=None, # class i's name (classification), e.g. ['3', '7']
        img_shape:tuple|None=None, # (height, width) when each row is an image's pixels, row by row
        target_name:str='y', # what `y` measures (regression)
        source:str='', # where the data comes from, and its licence
    ):
        super().__init__(x, y, {}, {}, name)
        self.feature_names, self.vocab, self.img_shape = list(feature_names), vocab, img_shape
        self.target_name, self.source = target_name, source

    def __repr__(self):
        what = f"{len(self.vocab)} classes {self.vocab}" if self.vocab is not None else f"target {self.target_name!r}"
        shape = f"{self.img_shape[0]}x{self.img_shape[1]} images" if self.img_shape else f"n_features={self.x.shape[1]}"
        return f"RealData({self.name}: n={len(self.x)}, {shape}, {what})"


DIGITS_SOURCE = ("E. Alpaydin and C. Kaynak (1998), 'Optical Recognition of Handwritten Digits', UCI Machine Learning "
                 "Repository, doi:10.24432/C50P49 (CC BY 4.0): the 1,797 digits of its test set, 8x8 counts 0..16, as "
                 "scikit-learn ships them (sklearn.datasets.load_digits, BSD-3-Clause)")


def _digit_list(pair) -> list:
    "`pair` (None: all ten) as a list of distinct digits, or an error saying what would work."
    if pair is None: return list(range(10))
    try: ds = [int(d) for d in pair]
    except (TypeError, ValueError):
        raise TypeError(f"pair must be digits to tell apart, e.g. (3, 7), or None for all ten, got {pair!r}") from None
    if any(not isinstance(d, (int, np.integer)) or isinstance(d, bool) for d in pair) or len(ds) < 2 or \
            len(set(ds)) != len(ds) or not all(0 <= d <= 9 for d in ds):
        raise ValueError(f"pair must be two or more different digits 0-9, e.g. (3, 7), or None for all ten, got {pair!r}")
    return ds


def digits(
    pair=(3, 7), # the digits to tell apart (class i is pair[i]); None: all ten (class i is digit i)
) -> RealData:
    """Handwritten digits as 8x8 images, pixels scaled to [0, 1] (x: (n, 64), row by row), labels 0..k-1 numbering the
    digits of `pair` in order: fastbook chapter 4's '3 vs 7' (183 threes, 179 sevens) without downloading MNIST.
    Source: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI Machine Learning
    Repository (CC BY 4.0), its test set of 1,797 digits as scikit-learn ships it (`sklearn.datasets.load_digits`,
    BSD-3-Clause). Needs scikit-learn: `pip install 'fastfit-gd[data]'`."""
    ds = _digit_list(pair)
    d = _sklearn_datasets().load_digits()
    target = np.asarray(d.target)
    keep = np.isin(target, ds)
    x = torch.from_numpy(np.asarray(d.data, dtype=np.float32)[keep] / 16.)  # counts 0..16 -> ink 0..1, as fastbook's /255
    lut = np.zeros(10, dtype=np.int64)
    lut[ds] = np.arange(len(ds))  # class i is the i-th digit of `pair` (all ten: the digit itself)
    y = torch.from_numpy(lut[target[keep]])[:, None]
    name = 'digits 0-9' if pair is None else f"digits {' vs '.join(map(str, ds))}"
    return RealData(x, y, name, [f'pixel[{r},{c}]' for r in range(8) for c in range(8)], vocab=[str(v) for v in ds],
                    img_shape=(8, 8), source=DIGITS_SOURCE)


IRIS_SOURCE = ("R. A. Fisher (1936), 'The use of multiple measurements in taxonomic problems', Annals of Eugenics 7(2); "
               "UCI Machine Learning Repository 'Iris', doi:10.24432/C56C76 (CC BY 4.0), as scikit-learn ships it "
               "(sklearn.datasets.load_iris, BSD-3-Clause)")


def _feature_idx(features, names) -> list:
    "Column indices of `features` (indices, or names / the start of names, e.g. 'petal length'), or an error listing them."
    if features is None: return list(range(len(names)))
    if isinstance(features, (str, int, np.integer)): features = [features]
    out = []
    for f in features:
        if isinstance(f, (int, np.integer)) and not isinstance(f, bool) and 0 <= f < len(names): out.append(int(f)); continue
        hits = [i for i, n in enumerate(names) if isinstance(f, str) and n.startswith(f)]
        if len(hits) != 1:
            raise ValueError(f"features must be indices 0..{len(names) - 1} or names from {names}, got {f!r} "
                             f"in features={features!r}")
        out.append(hits[0])
    if not out or len(set(out)) != len(out):
        raise ValueError(f"features must name one or more different columns of {names}, got {features!r}")
    return out


def iris(
    features=None, # the columns to keep: indices or names (the start will do, e.g. ('petal length', 'petal width')); None: all 4
) -> RealData:
    """Fisher's iris flowers: 150 samples of 3 species (setosa, versicolor, virginica, 50 each), 4 measurements in cm
    (sepal length, sepal width, petal length, petal width); two of them, e.g. `features=('petal length', 'petal width')`,
    make a picture the 'boundary' panel draws. Source: R. A. Fisher (1936), Annals of Eugenics 7(2); UCI Machine
    Learning Repository 'Iris' (CC BY 4.0), as scikit-learn ships it (`sklearn.datasets.load_iris`, BSD-3-Clause).
    Needs scikit-learn: `pip install 'fastfit-gd[data]'`."""
    d = _sklearn_datasets().load_iris()
    names = [str(n) for n in d.feature_names]
    cols = _feature_idx(features, names)
    x = torch.from_numpy(np.asarray(d.data, dtype=np.float32)[:, cols])
    y = torch.from_numpy(np.asarray(d.target)).long()[:, None]
    return RealData(x, y, 'iris', [names[i] for i in cols], vocab=[str(v) for v in d.target_names], source=IRIS_SOURCE)


DIABETES_SOURCE = ("B. Efron, T. Hastie, I. Johnstone and R. Tibshirani (2004), 'Least Angle Regression', Annals of "
                   "Statistics 32(2), its diabetes data, as scikit-learn ships it (sklearn.datasets.load_diabetes, "
                   "BSD-3-Clause; unscaled)")


def diabetes() -> RealData:
    """442 diabetes patients: 10 baseline measurements in their own units (age, sex, body mass index, average blood
    pressure, six blood serum measurements s1-s6) and the target, a measure of disease progression one year later
    (25 to 346). The features differ in scale by a factor of 100: fit them with `dataloaders(normalize=True)`.
    Source: B. Efron, T. Hastie, I. Johnstone and R. Tibshirani (2004), "Least Angle Regression", Annals of Statistics
    32(2), as scikit-learn ships it (`sklearn.datasets.load_diabetes(scaled=False)`, BSD-3-Clause).
    Needs scikit-learn: `pip install 'fastfit-gd[data]'`."""
    d = _sklearn_datasets().load_diabetes(scaled=False)
    x = torch.from_numpy(np.asarray(d.data, dtype=np.float32))
    y = torch.from_numpy(np.asarray(d.target, dtype=np.float32))[:, None]
    return RealData(x, y, 'diabetes', [str(n) for n in d.feature_names], target_name='progression',
                    source=DIABETES_SOURCE)

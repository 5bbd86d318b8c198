"fastfit: see gradient descent. Data, a fastai Learner in one line, and the fit as an animation."
__version__ = "0.1.0"

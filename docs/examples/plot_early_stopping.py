"""
=====================================
Early stopping against overfitting
=====================================

With nearly as many features as training samples and noisy targets, the
least-squares fit reproduces the noise of the training data. Stochastic
gradient descent approaches that fit gradually, so stopping it at the right
epoch gives a better model. :class:`~gdreg.SGDLinearRegressor` with
``early_stopping=True`` holds out part of the training data, records the
:math:`R^2` score on it after every epoch in ``validation_scores_``, and
stops when that score no longer improves.
"""

# %%
# Data that invites overfitting
# -----------------------------
# 100 training samples, 50 features of which 10 matter, plenty of noise,
# and features in mixed units.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_regression
from sklearn.model_selection import train_test_split

from gdreg import GDLinearRegressor, SGDLinearRegressor

X, y = make_regression(
    n_samples=1200, n_features=50, n_informative=10, noise=60.0, random_state=0
)
X = X * np.logspace(-2, 2, X.shape[1])
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=100, random_state=0
)
params = dict(learning_rate="constant", eta0=0.01, batch_size=8, random_state=0)

# %%
# Training longer and longer
# --------------------------
# ``partial_fit`` runs one epoch per call, so the scores can be recorded
# after each epoch. The training score keeps rising; the test score peaks
# after a few dozen epochs and then declines towards that of the exact
# least-squares solution.
long_run = SGDLinearRegressor(**params)
train_scores, test_scores = [], []
for epoch in range(200):
    long_run.partial_fit(X_train, y_train)
    train_scores.append(long_run.score(X_train, y_train))
    test_scores.append(long_run.score(X_test, y_test))
least_squares = GDLinearRegressor().fit(X_train, y_train)

# %%
# Stopping early
# --------------
# With ``early_stopping=True`` a fifth of the training rows is held out
# here (``validation_fraction=0.2``). The fit stops after
# ``n_iter_no_change`` epochs whose validation score does not beat the best
# one by more than ``tol``.
stopped = SGDLinearRegressor(
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=10,
    max_iter=200,
    **params,
).fit(X_train, y_train)
print(f"early stopping ended the fit after {stopped.n_iter_} epochs")
print(f"best validation R^2: {stopped.best_validation_score_:.3f}")
print(f"test R^2 with early stopping:      {stopped.score(X_test, y_test):.3f}")
print(f"test R^2 after 200 epochs:          {test_scores[-1]:.3f}")
print(f"test R^2 of least squares:          {least_squares.score(X_test, y_test):.3f}")

# %%
# The curves
# ----------
# The validation score follows the test score, though it is noisier: it
# rests on only 20 samples. The dotted line marks where early stopping
# ended the fit.
fig, ax = plt.subplots(figsize=(7, 4.5))
epochs = np.arange(1, 201)
ax.plot(epochs, train_scores, label="training $R^2$ (200 epochs)")
ax.plot(epochs, test_scores, label="test $R^2$ (200 epochs)")
ax.plot(
    np.arange(1, stopped.n_iter_ + 1),
    stopped.validation_scores_,
    marker=".",
    label="validation_scores_ (early stopping)",
)
ax.axhline(
    least_squares.score(X_test, y_test),
    color="grey",
    ls="--",
    label="test $R^2$ of least squares",
)
ax.axvline(stopped.n_iter_, color="k", ls=":")
ax.set_xscale("log")
ax.set_ylim(0, 1)
ax.set_xlabel("epoch")
ax.set_ylabel("$R^2$")
ax.legend(loc="lower right", fontsize="small")
ax.set_title("Scores over the epochs of SGDLinearRegressor")
fig.tight_layout()
plt.show()

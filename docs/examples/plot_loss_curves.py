"""
========================================================
Loss curves of full-batch, stochastic and mini-batch GD
========================================================

Three ways to descend the same objective, on features whose units differ
by six orders of magnitude: full-batch gradient descent
(:class:`~gdreg.GDLinearRegressor`), per-sample stochastic gradient descent
(:class:`~gdreg.SGDLinearRegressor` with ``batch_size=1``) and mini-batch
descent (``batch_size=32``). Each estimator records its objective in
``loss_curve_``, one value per iteration (full batch) or per epoch
(stochastic), and both cost one or two passes over the data per entry.
"""

# %%
# A badly scaled data set
# -----------------------
# Ten features, rescaled so that their standard deviations run from 0.001
# to 1000, and shifted so that their means are far from zero. Plain
# gradient descent on these raw columns would need a step small enough for
# the largest feature and would then barely move the smallest ones; gdreg
# scales them internally, so no preprocessing is needed.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_regression

from gdreg import GDLinearRegressor, SGDLinearRegressor

X, y = make_regression(n_samples=5000, n_features=10, noise=20.0, random_state=0)
units = np.logspace(-3, 3, X.shape[1])
X = X * units + 50 * units
print("feature standard deviations:", np.array2string(X.std(axis=0), precision=3))

# %%
# Fit the three variants
# ----------------------
# The minimum of the objective, found by conjugate gradients, is the
# reference against which the curves are measured.
exact = GDLinearRegressor(tol=1e-10).fit(X, y)
minimum = exact.loss_curve_[-1]

models = {
    "full batch, plain steps": GDLinearRegressor(acceleration="none"),
    "full batch, conjugate gradients": GDLinearRegressor(),
    "stochastic, batch_size=1": SGDLinearRegressor(batch_size=1, random_state=0),
    "mini-batch, batch_size=32": SGDLinearRegressor(batch_size=32, random_state=0),
}
for name, model in models.items():
    model.fit(X, y)
    print(f"{name:33s} {model.n_iter_:4d} iterations, R^2 = {model.score(X, y):.4f}")

# %%
# Compare the curves
# ------------------
# The vertical axis is the relative excess of the objective over its
# minimum. Both full-batch methods reach the minimum in a handful of steps:
# after gdreg's internal scaling every feature has the same curvature, and
# these features are uncorrelated, so even plain steps of the automatic
# length make fast progress despite the raw units. The stochastic methods get
# most of the way in their first epoch, because they update the
# coefficients after every sample or mini-batch, and then level off at the
# noise floor of their step; their ``loss_curve_`` is the objective of the
# coefficients at the end of each epoch, and the 'auto' schedule halves the
# step whenever that objective rises, until the remaining noise is below
# ``tol``.
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, model in models.items():
    gap = (np.asarray(model.loss_curve_) - minimum) / minimum
    epochs = np.arange(1, len(gap) + 1)
    ax.plot(epochs, np.maximum(gap, 1e-12), marker=".", label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("iteration (full batch) or epoch (stochastic)")
ax.set_ylabel("(loss - minimum) / minimum")
ax.set_title("Descent on features in mixed units")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# All four end with the same coefficients to within the accuracy their
# stopping rules ask for, in the units of ``X``:
for name, model in models.items():
    error = np.max(np.abs(model.coef_ - exact.coef_) / np.abs(exact.coef_))
    print(f"{name:33s} largest relative coefficient error {error:.1e}")

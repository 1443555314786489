"""
=============================================
The learning rate of full-batch descent
=============================================

How the step size changes plain gradient descent with
:class:`~gdreg.GDLinearRegressor` on the diabetes data in its raw units: a
step that is too small crawls, a step near the largest stable value makes
steady progress, and a step that is too large is refused with an error that
names the largest stable step. ``learning_rate='auto'`` chooses the steps
itself, and the default solver, conjugate gradients, needs far fewer of
them.
"""

# %%
# Data and reference
# ------------------
# Several of the ten features are strongly correlated, which makes the
# objective a narrow valley: a hard case for plain gradient steps.
import textwrap
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning

from gdreg import GDLinearRegressor

X, y = load_diabetes(return_X_y=True, scaled=False)
minimum = GDLinearRegressor(tol=1e-12).fit(X, y).loss_curve_[-1]

# %%
# A step that is too large
# ------------------------
# A float ``learning_rate`` is a fixed step in gdreg's internal scaled
# coordinates. When it makes the objective rise, the fit stops and raises
# ``ValueError``; the message gives the largest stable step for this data.
try:
    GDLinearRegressor(learning_rate=1.0, acceleration="none").fit(X, y)
except ValueError as error:
    print(textwrap.fill(str(error), width=79))

# %%
# Steps that work
# ---------------
# Each fit is limited to 300 iterations. The runs with a fixed step, and
# plain descent with automatic steps, do not reach ``tol`` in that budget
# and would warn with a ``ConvergenceWarning``; it is silenced here because
# the curves show what happened.
runs = {
    "learning_rate=0.01 (too small)": dict(learning_rate=0.01, acceleration="none"),
    "learning_rate=0.45 (near the limit)": dict(
        learning_rate=0.45, acceleration="none"
    ),
    "learning_rate='auto', plain steps": dict(acceleration="none"),
    "learning_rate='auto', conjugate gradients (default)": dict(),
}
curves = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for name, params in runs.items():
        model = GDLinearRegressor(max_iter=300, **params).fit(X, y)
        curves[name] = np.asarray(model.loss_curve_)
        print(f"{name:52s} {model.n_iter_:4d} iterations")

# %%
# The curves
# ----------
# The small step makes almost no progress along the flat directions of the
# valley. The step near the limit does better, and the backtracking
# steps of ``'auto'`` come within a small factor of it without being told
# the limit.
# Conjugate gradients reaches the minimum in about ten iterations, one per
# feature.
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, curve in curves.items():
    gap = np.maximum((curve - minimum) / minimum, 1e-12)
    ax.plot(np.arange(1, len(gap) + 1), gap, label=name)
ax.set_yscale("log")
ax.set_xlabel("iteration")
ax.set_ylabel("(loss - minimum) / minimum")
ax.set_title("Plain gradient descent on the diabetes data")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

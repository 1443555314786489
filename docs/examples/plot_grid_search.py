"""
=================================================
Grid search over the learning rate and penalty
=================================================

:class:`~gdreg.SGDLinearRegressor` is an ordinary scikit-learn estimator,
so :class:`~sklearn.model_selection.GridSearchCV` can tune it. Here the
search covers the constant step ``eta0`` and the strength ``alpha`` of an
L2 penalty on the diabetes data, and the mean cross-validated :math:`R^2`
is drawn as a map.
"""

# %%
# The search
# ----------
# ``learning_rate='constant'`` makes ``eta0`` the step of every update, in
# gdreg's internal scaled coordinates. No scaler is needed in front of the
# estimator, even though the features are in their raw units.
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from gdreg import SGDLinearRegressor

X, y = load_diabetes(return_X_y=True, scaled=False)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

etas = [1e-4, 1e-3, 1e-2, 1e-1]
alphas = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
search = GridSearchCV(
    SGDLinearRegressor(
        penalty="l2", learning_rate="constant", max_iter=200, random_state=0
    ),
    {"eta0": etas, "alpha": alphas},
    cv=4,
)
# The smallest steps cannot finish in 200 epochs; each such fit warns with a
# ConvergenceWarning. The map below shows their scores, so the warnings are
# silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best mean CV R^2: {search.best_score_:.3f}")
print(f"test R^2 of the refitted best model: {search.score(X_test, y_test):.3f}")

# %%
# The map of scores
# -----------------
# The smallest step is too slow to finish within ``max_iter`` epochs, so
# its fits stop early and score worse. A strong penalty shrinks the
# coefficients of these raw features too much, whatever the step. In
# between lies a broad plateau of good settings.
scores = search.cv_results_["mean_test_score"].reshape(len(alphas), len(etas))

fig, ax = plt.subplots(figsize=(6, 4.5))
image = ax.imshow(scores, origin="lower", cmap="viridis", vmin=0, vmax=scores.max())
ax.set_xticks(range(len(etas)), [f"{v:g}" for v in etas])
ax.set_yticks(range(len(alphas)), [f"{v:g}" for v in alphas])
ax.set_xlabel("eta0")
ax.set_ylabel("alpha")
for i in range(len(alphas)):
    for j in range(len(etas)):
        ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center", color="w")
fig.colorbar(image, label="mean CV $R^2$")
ax.set_title("SGDLinearRegressor, constant step, L2 penalty")
fig.tight_layout()
plt.show()

"""
=================================
Streaming data with partial_fit
=================================

When samples arrive in pieces, :meth:`SGDLinearRegressor.partial_fit
<gdreg.SGDLinearRegressor.partial_fit>` updates the model with each piece
and never revisits old data. This example feeds a stream of 40 pieces of
200 samples each, in mixed units, and tracks the score on a held-out set
after every piece. For comparison, :class:`~gdreg.GDLinearRegressor` is
refitted from scratch on all the data seen so far, which a real stream
could not afford.
"""

# %%
# A stream of pieces
# ------------------
# One synthetic problem is cut into pieces. Its features have standard
# deviations from 0.01 to 100 and means far from zero; ``partial_fit``
# keeps running means and variances of the features and scales them with
# those, so no scaler has to be fitted in advance.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_regression

from gdreg import GDLinearRegressor, SGDLinearRegressor

X, y = make_regression(
    n_samples=10_000, n_features=20, n_informative=15, noise=15.0, random_state=0
)
units = np.logspace(-2, 2, X.shape[1])
X = X * units + 10 * units
X_stream, y_stream = X[:8000], y[:8000]
X_test, y_test = X[8000:], y[8000:]
pieces = np.array_split(np.arange(len(y_stream)), 40)

# %%
# Learning piece by piece
# -----------------------
# Each ``partial_fit`` call makes one pass over its piece. The ``'auto'``
# step is the largest one that cannot diverge, and the global update count
# ``t_`` carries over between calls.
streams = {
    "partial_fit, batch_size=1": SGDLinearRegressor(batch_size=1, random_state=0),
    "partial_fit, batch_size=32": SGDLinearRegressor(batch_size=32, random_state=0),
}
scores = {name: [] for name in streams}
scores["GDLinearRegressor refitted on all data seen"] = []
seen = []
for rows in pieces:
    seen.append(rows)
    for name, model in streams.items():
        model.partial_fit(X_stream[rows], y_stream[rows])
        scores[name].append(model.score(X_test, y_test))
    everything = np.concatenate(seen)
    full = GDLinearRegressor().fit(X_stream[everything], y_stream[everything])
    scores["GDLinearRegressor refitted on all data seen"].append(
        full.score(X_test, y_test)
    )

for name, model in streams.items():
    print(f"{name}: {model.t_} updates, final test R^2 {scores[name][-1]:.4f}")
print(f"full refit on all 8000 samples: test R^2 {full.score(X_test, y_test):.4f}")

# %%
# The scores
# ----------
# After the first pieces the streamed models are close to the full refit,
# and they keep improving as more samples arrive, each at a cost of one
# pass over the new piece only.
n_seen = np.cumsum([len(rows) for rows in pieces])
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, values in scores.items():
    ax.plot(n_seen, values, marker=".", label=name)
ax.set_xlabel("samples seen")
ax.set_ylabel("test $R^2$")
ax.set_title("Learning from a stream")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

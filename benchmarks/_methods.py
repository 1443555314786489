"""The estimators compared by the benchmarks, with gdreg imported lazily."""

import sys
import traceback
from dataclasses import dataclass
from functools import partial

from _data import REPO_ROOT
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REFERENCE = "LinearRegression"


@dataclass
class Method:
    """A named estimator factory."""

    name: str
    make: object
    package: str
    description: str


def import_gdreg():
    """Import gdreg, preferring the working tree of this repository.

    Returns ``(module or None, message)``.
    """
    if (REPO_ROOT / "gdreg" / "__init__.py").is_file():
        root = str(REPO_ROOT)
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        import gdreg
    except Exception:
        last = traceback.format_exc().strip().splitlines()[-1]
        return None, f"gdreg could not be imported ({last})"
    if getattr(gdreg, "__file__", None) is None:
        return None, "gdreg could not be imported (no gdreg/__init__.py yet)"
    return gdreg, f"gdreg {getattr(gdreg, '__version__', '?')} from {gdreg.__file__}"


def _seeded(estimator, seed):
    """Set every ``random_state`` parameter of ``estimator`` to ``seed``."""
    keys = [key for key in estimator.get_params() if key.endswith("random_state")]
    if keys and seed is not None:
        estimator.set_params(**{key: seed for key in keys})
    return estimator


def _build(factory, seed=None, **params):
    return _seeded(factory(**params), seed)


def _scaled_sgd(seed=None):
    return _seeded(make_pipeline(StandardScaler(), SGDRegressor()), seed)


def available_methods():
    """Return ``(methods, notes)``; missing gdreg classes are left out and noted."""
    methods = [
        Method(
            REFERENCE,
            partial(_build, LinearRegression),
            "sklearn",
            "LinearRegression()",
        ),
        Method(
            "SGDRegressor(raw)",
            partial(_build, SGDRegressor),
            "sklearn",
            "SGDRegressor() on raw features",
        ),
        Method(
            "Scaler+SGDRegressor",
            _scaled_sgd,
            "sklearn",
            "make_pipeline(StandardScaler(), SGDRegressor())",
        ),
    ]
    notes = []
    gdreg, message = import_gdreg()
    notes.append(message)
    wanted = [
        ("GDLinearRegressor", "GDLinearRegressor", {}),
        ("SGDLinearRegressor", "SGDLinearRegressor", {}),
        ("SGDLinearRegressor(b=1)", "SGDLinearRegressor", {"batch_size": 1}),
        ("SGDLinearRegressor(b=64)", "SGDLinearRegressor", {"batch_size": 64}),
    ]
    for name, class_name, params in wanted:
        cls = getattr(gdreg, class_name, None) if gdreg is not None else None
        if cls is None:
            notes.append(f"left out {name}: gdreg.{class_name} is not available")
            continue
        args = ", ".join(f"{key}={value!r}" for key, value in params.items())
        methods.append(
            Method(
                name, partial(_build, cls, **params), "gdreg", f"{class_name}({args})"
            )
        )
    return methods, notes


def final_step(estimator):
    """The last step of a pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator

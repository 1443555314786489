"""The outside objects the documentation links to, for offline intersphinx.

``conf.py`` turns each entry into a small objects.inv so that references such
as :class:`sklearn.pipeline.Pipeline` resolve to the projects' public pages
without a download. Add an object here when a page starts to link to it.
Each entry is (name, domain:role, URI, display name); in a URI, ``$`` stands
for the name, and a display name of ``-`` means the name itself.
"""

_SKLEARN_PAGE = "modules/generated/$.html#$"
_NUMPY_PAGE = "reference/generated/$.html#$"
_SCIPY_PAGE = "reference/generated/$.html#$"

INVENTORIES = {
    "sklearn": {
        "project": "scikit-learn",
        "url": "https://scikit-learn.org/stable/",
        "objects": [
            (name, f"py:{role}", _SKLEARN_PAGE, "-")
            for name, role in [
                ("sklearn.base.BaseEstimator", "class"),
                ("sklearn.base.RegressorMixin", "class"),
                ("sklearn.datasets.load_diabetes", "function"),
                ("sklearn.datasets.make_regression", "function"),
                ("sklearn.exceptions.ConvergenceWarning", "class"),
                ("sklearn.linear_model.ElasticNet", "class"),
                ("sklearn.linear_model.Lasso", "class"),
                ("sklearn.linear_model.LinearRegression", "class"),
                ("sklearn.linear_model.Ridge", "class"),
                ("sklearn.linear_model.SGDRegressor", "class"),
                ("sklearn.metrics.r2_score", "function"),
                ("sklearn.model_selection.GridSearchCV", "class"),
                ("sklearn.model_selection.cross_val_score", "function"),
                ("sklearn.model_selection.train_test_split", "function"),
                ("sklearn.pipeline.Pipeline", "class"),
                ("sklearn.pipeline.make_pipeline", "function"),
                ("sklearn.preprocessing.StandardScaler", "class"),
                ("sklearn.compose.ColumnTransformer", "class"),
                ("sklearn.preprocessing.OneHotEncoder", "class"),
                ("sklearn.model_selection.cross_validate", "function"),
                ("sklearn.config_context", "function"),
                ("sklearn.callback.ProgressBar", "class"),
                ("sklearn.callback.ScoringMonitor", "class"),
            ]
        ]
        + [
            # Cross-references inside the docstrings of the methods that the
            # estimators inherit from scikit-learn (score, set_*_request).
            (
                "metadata_routing",
                "std:label",
                "metadata_routing.html",
                "Metadata Routing",
            ),
            (
                "r2_score",
                "std:label",
                "modules/model_evaluation.html#r2-score",
                "R² score, the coefficient of determination",
            ),
            ("meta-estimator", "std:term", "glossary.html#term-meta-estimator", "-"),
        ],
    },
    "numpy": {
        "project": "NumPy",
        "url": "https://numpy.org/doc/stable/",
        "objects": [
            ("numpy.ndarray", "py:class", _NUMPY_PAGE, "-"),
            ("numpy.float32", "py:attribute", "reference/arrays.scalars.html#$", "-"),
            ("numpy.float64", "py:attribute", "reference/arrays.scalars.html#$", "-"),
        ],
    },
    "scipy": {
        "project": "SciPy",
        "url": "https://docs.scipy.org/doc/scipy/",
        "objects": [
            ("scipy.sparse.csr_matrix", "py:class", _SCIPY_PAGE, "-"),
            ("scipy.sparse.csc_matrix", "py:class", _SCIPY_PAGE, "-"),
        ],
    },
}

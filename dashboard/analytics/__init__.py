"""Statistics layer: pure functions over pandas/numpy that return tidy DataFrames or small
dataclasses. Nothing here plots, queries DuckDB or imports Dash.

- ``survival``: Kaplan-Meier (Greenwood, log-log/log/plain CIs), median and its Brookmeyer-Crowley
  CI, survival at fixed times, numbers at risk, reverse-KM follow-up, log-rank, Cox (Efron).
- ``proportions``: exact (Clopper-Pearson) CIs for ORR, DCR and downstaging rates.
- ``competing``: Aalen-Johansen cumulative incidence with exact ties and R's IJ standard error.
- ``baseline``: Table 1 and follow-up status.

Every estimator is tested against R (survival 3.5-3, cmprsk 2.2-11, binom.test): see
tests/reference/README.md. Scalar results use None where R reports NA; arrays use NaN.
"""

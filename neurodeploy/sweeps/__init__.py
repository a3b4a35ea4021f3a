"""Stage 9, sweeps: a grid of deployment choices (cut, mode, profiles, schedule, early exit), each
evaluated and priced by the single-run code paths, in a resumable table with its Pareto front.

Enters: a TOML configuration. Leaves: the table (JSONL, CSV, JSON) and its HTML page. Entry:
:func:`~neurodeploy.sweeps.run.sweep`.

- :mod:`neurodeploy.sweeps.config`: the TOML configuration and the grid it spans;
- :mod:`neurodeploy.sweeps.tasks`: one configuration on a worker (evaluate + price);
- :mod:`neurodeploy.sweeps.results`: the incremental table (JSONL + CSV) a resumed sweep reads;
- the front: :mod:`neurodeploy.analysis.pareto`;
- :mod:`neurodeploy.sweeps.run`: the driver.
"""

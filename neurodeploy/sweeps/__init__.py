"""Design-space sweeps: a grid of deployment choices (cut, mode, profiles, schedule, early exit), each
evaluated and priced by the single-run code paths, in a resumable table with its Pareto front.

- :mod:`neurodeploy.sweeps.config`: the TOML configuration and the grid it spans;
- :mod:`neurodeploy.sweeps.tasks`: one configuration on a worker (evaluate + price);
- :mod:`neurodeploy.sweeps.results`: the incremental table (JSONL + CSV) a resumed sweep reads;
- :mod:`neurodeploy.sweeps.pareto`: the front;
- :mod:`neurodeploy.sweeps.run`: the driver.
"""

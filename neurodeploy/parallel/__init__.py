"""Stage 1, parallel: independent tasks (sweep configurations, evaluation chunks) inline, on a local process
pool, or on a Ray cluster.

Enters: a task function and its arguments. Leaves: their results, in order. Entry:
:func:`~neurodeploy.parallel.executor.map_tasks`; bundles are shipped to workers once
(:mod:`neurodeploy.parallel.shipping`)."""

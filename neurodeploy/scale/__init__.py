"""Scale-out: independent tasks (sweep configurations, evaluation chunks) inline, on a local process
pool, or on a Ray cluster (:mod:`neurodeploy.scale.executor`), with bundles shipped once (:mod:`neurodeploy.scale.shipping`)."""

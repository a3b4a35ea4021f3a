"""Stage 7, analysis: what a run means against a reference.

Enters: bundles, runs, PyTorch models, labelled data. Leaves: agreement with PyTorch
(:func:`~neurodeploy.analysis.agreement.compare_with_torch`), layer-by-layer parity
(:func:`~neurodeploy.analysis.parity.compare_layers`), dataset accuracy
(:func:`~neurodeploy.analysis.evaluate.evaluate`, the entry function), Pareto fronts
(:func:`~neurodeploy.analysis.pareto.pareto_front`).
"""

"""Lava processes neurodeploy adds for behaviours Lava's own LIF cannot express.

Lava's compiler finds a process's models by importing every ``.py`` file in the process's folder, so
these live alone here (nothing else of neurodeploy is imported by that search).
"""

"""Lava processes used only by tests.

Each lives alone in this folder on purpose: Lava's compiler finds process models by importing every
``.py`` file beside the process's module, so a process defined among the test modules would make
Lava import (and hang on) the whole test suite.
"""

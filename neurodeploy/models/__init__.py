"""Stage 1, models: what users build and train, and the bundled zoo.

Enters: nothing from the other stages (PyTorch only). Leaves: ``nn.Module`` building blocks the compiler
partitions and exports: neurons (:mod:`~neurodeploy.models.neurons`), spiking front-ends
(:mod:`~neurodeploy.models.frontend`), spike-to-continuous adapters (:mod:`~neurodeploy.models.adapters`),
dense blocks and streaming back-ends (:mod:`~neurodeploy.models.dense_blocks`,
:mod:`~neurodeploy.models.backends`), hybrids (:mod:`~neurodeploy.models.hybrid`,
:mod:`~neurodeploy.models.feedback`), the framework-neutral time loop (:mod:`~neurodeploy.models.time_stepping`)
and the zoo (:func:`neurodeploy.models.zoo.get`, the entry function).
"""

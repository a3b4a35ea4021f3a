"""Stage 5, compiler: a user's model to a deployment bundle (the folder is ``compiler/`` because
``neurodeploy.compile`` is the public function).

Enters: an ``nn.Module`` with example inputs, a zoo name or ``module:function`` factory, or a ``.nir`` /
``.net`` file or ``nir.NIRGraph``. Leaves: a bundle on disk. Entry:
:func:`~neurodeploy.compiler.any_model.compile_model`; the flow is a list of named passes
(:mod:`~neurodeploy.compiler.pipeline`)::

    split -> to_nir -> lower -> torch_reference -> export_dense -> quantize_and_map -> write

- :mod:`~neurodeploy.compiler.resolve`: which model a name means (one resolver);
- :mod:`~neurodeploy.compiler.split`, :mod:`~neurodeploy.compiler.partition`,
  :mod:`~neurodeploy.compiler.capture`: where the model is cut;
- :mod:`~neurodeploy.compiler.torch_reference`: the PyTorch model's own outputs (the one reference);
- :mod:`~neurodeploy.compiler.calibration`: the fixed-point pass, calibrated on user inputs;
- :mod:`~neurodeploy.compiler.factories`: ``module:function`` factories and weight files.
"""

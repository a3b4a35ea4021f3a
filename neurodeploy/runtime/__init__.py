"""Stage 4, runtime: running a bundle; the spiking part on Lava or the emulator, the dense part on ONNX Runtime.

Enters: a bundle (data, never the user's model class), inputs, mode, back-end and schedule. Leaves: a
:class:`~neurodeploy.runtime.cosim.CosimResult`: spikes of every population, outputs, wall times, the
measured timeline. Entry: :func:`~neurodeploy.runtime.cosim.run_cosim`, which reads as its steps::

    check the request -> shape the inputs -> set up -> stream, or run sample by sample -> early exits

- the runner protocol (:class:`~neurodeploy.runtime.runners.SpikingRunner`,
  :func:`~neurodeploy.runtime.runners.open_runner`): Lava (:mod:`~neurodeploy.runtime.lava_runner`,
  :mod:`~neurodeploy.runtime.lava_stream`, :mod:`~neurodeploy.runtime.lava_net`) or the bit-exact
  emulator (:mod:`~neurodeploy.runtime.emulator`, its compiled LIF loop :mod:`~neurodeploy.runtime.lif_kernel`);
- the co-simulation: :mod:`~neurodeploy.runtime.inputs`, :mod:`~neurodeploy.runtime.bundle_plan`,
  :mod:`~neurodeploy.runtime.cosim_setup`, :mod:`~neurodeploy.runtime.dense_step`,
  :mod:`~neurodeploy.runtime.feedback`, :mod:`~neurodeploy.runtime.streaming`,
  :mod:`~neurodeploy.runtime.sample_by_sample`, :mod:`~neurodeploy.runtime.checkpoint`,
  :mod:`~neurodeploy.runtime.early_exit`.

Agreement with PyTorch and every count and price are computed after the run, by the stages above.
"""

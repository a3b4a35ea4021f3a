"""neurodeploy: deploy hybrid spiking + dense PyTorch models onto Loihi 2 (NIR -> Lava) and a GPU (ONNX).

Flow (as in hls4ml): config -> compile (partition, export, verify) -> co-simulate -> report.
"""
__version__ = "0.1.0"

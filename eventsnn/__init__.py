"""eventsnn: convert trained CNNs into spiking networks and run them event-driven on the CPU.

Pipeline: IR (``ir``) -> fold batch-norm and normalize (``convert``, ``model.convert``) ->
populations and CSR connectivity (``snn.build``) -> simulate (``engine.simulate``, or the dense
oracle ``reference.simulate_reference``) -> efficiency report (``report``).
"""

from .engine import simulate
from .ir import QCFS, AvgPool2d, BatchNorm, ClipReLU, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, Softmax
from .model import ConvertedModel, convert, load, save
from .reference import simulate_reference
from .snn import SimulationConfig, SimulationResult, SpikingNetwork

__version__ = "0.1.0"
__all__ = ["AvgPool2d", "BatchNorm", "ClipReLU", "ConvertedModel", "Conv2d", "Flatten", "Linear", "MaxPool2d",
           "Network", "QCFS", "ReLU", "SimulationConfig", "SimulationResult", "Softmax", "SpikingNetwork", "convert", "load",
           "save", "simulate", "simulate_reference"]

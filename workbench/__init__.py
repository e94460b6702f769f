"""SNN Latency Workbench core: spiking cells, simulation to trajectories, conversion, training,
embedded event datasets and the model zoo. Headless: no UI imports here."""

from workbench.errors import WorkbenchError

__all__ = ["WorkbenchError"]
__version__ = "0.1.0"

"""SNN Latency Workbench core: spiking cells, simulation to trajectories, conversion, training,
embedded event datasets and the model zoo. Headless: no UI imports here (``open`` imports the
UI package only when called, as ``workbench serve`` does)."""

from workbench.errors import WorkbenchError

__all__ = ["WorkbenchError", "open"]
__version__ = "0.1.0"


def open(model, data=None, T: int | None = None):
    """The 'Your model' dashboard page of a model source, for a notebook: ``model`` a SOURCE
    string or a ``SpikingNetwork`` / ``nn.Sequential`` ANN / ``nir.NIRGraph`` / loaded
    ``ModelSource``, ``data`` its data (see :func:`workbench.sources.load_source`)."""
    from widgets.pages.source import open_source

    return open_source(model, data, T)

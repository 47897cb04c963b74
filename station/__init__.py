"""The balance station core: forces, centre of pressure, filters, metrics, recordings, protocols."""

__version__ = "0.1.0"

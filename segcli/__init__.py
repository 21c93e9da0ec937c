"""segcli: marketing segmentation and lead scoring compiled to one Polars plan."""

__version__ = "0.1.0"

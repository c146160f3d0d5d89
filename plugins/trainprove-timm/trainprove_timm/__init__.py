"""timm-based shadow training and local suspect querying for trainprove."""

__version__ = "0.1.0"

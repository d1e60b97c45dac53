"""skillmix: measure and teach skill composition in language models."""

__version__ = "0.1.0"

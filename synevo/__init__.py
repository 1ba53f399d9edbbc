"""synevo: one genome-to-connectome model, optimized by gradient descent or by evolution."""

__version__ = "0.1.0"

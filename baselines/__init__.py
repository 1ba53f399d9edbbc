"""Comparison models from the genomic-bottleneck literature (see issue 4)."""

"""Why a model answers what it does: maps, their trust checks, under-the-hood tensors, robustness."""

"""A model file's test-set results kept on disk: scores and trust reports read in milliseconds, not recomputed."""

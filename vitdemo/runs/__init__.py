"""Training runs: the SQLite store, the queue, the worker process and the shipped baselines.

Import the module you need (`vitdemo.runs.store`, `.queue`, `.worker`, `.baselines`); this package file imports
nothing, so `import vitdemo.runs.store` stays free of torch.
"""

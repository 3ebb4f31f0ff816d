"""Training runs: the SQLite store and its schema, the people who own runs, the queue, the worker process and the
shipped baselines.

Import the module you need (`vitdemo.runs.store`, `.schema`, `.people`, `.queue`, `.worker`, `.baselines`); this
package file imports nothing, so `import vitdemo.runs.store` stays free of torch.
"""

"""Training runs: the SQLite store and its schema, the people who own runs, the queue, and what executes runs.

- `store`, `schema`, `dbfile`, `points`, `people`: the registry (runs, epochs, loss points, watched answers);
- `queue`, `limits`, `admission`: submit, claim, cancel, the class limits, cost and time before a run starts;
- `executor`: the seam between the queue and what executes runs (devices, start, events, cancel, liveness);
- `local`: the local executor (a worker process per device, a child process per run);
- `worker`: the worker loop (claims, records events, keeps heartbeats, sweeps orphans and leftover files);
- `events`, `record`: what a training tells its recorder, and the one writer that records it;
- `execute`, `execute_families`: one run in the process that trains it (torch);
- `files`: the names of a run's files; `baselines`: the shipped checkpoints as runs.

Import the module you need; this package file imports nothing, so `import vitdemo.runs.store` stays free of torch.
"""

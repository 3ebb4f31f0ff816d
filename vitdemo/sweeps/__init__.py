"""Sweeps: "try many settings". A study of Optuna's (TPE or a grid, the median pruner) whose trials are ordinary
runs of the queue, and whose record is the run registry itself (vitdemo.sweeps.record).

- space.py: what a sweep varies (`Param`, `SweepSpec`) and a trial's config (`apply`); no optuna
- record.py: the sweep's and its trials' rows in the registry; no optuna
- study.py: the Optuna study rebuilt from the runs: propose, prune, importance
- drive.py: one step at a time: prune, queue trials while there is room (sequential on a laptop, parallel on Ray)
- report.py: what a person reads: trials, best so far, what mattered, the best settings

Optuna comes with Ray as one extra step (requirements-ray.txt); without it a page says what to install.
"""

"""`make bench`: the hot path of a client1 batch against its baselines (not product code).

- ``__main__``: the run, part by part (``python -m benchmarks --help``);
- ``steps``: each measured step, run in a process of its own;
- ``data``: the generated files, the next day's delivery, the starting warehouse;
- ``scheduler``: the whole batch on a real scheduler (``scripts/airflow_stack.py``);
- ``parse``: the DAG factory's parse time against Airflow's floor;
- ``report``: the printed table and ``bench-results.json``;
- ``common``: paths, the step runner, the benchmark's databases.

The figures and how to reproduce them: ``docs/benchmarks.md``.
"""

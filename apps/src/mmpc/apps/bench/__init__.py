"""The end-to-end bench: the MMPCBench study as a graph of resumable stages of one run folder.

Module map (each imports only the ones listed before it):

* :mod:`.config`: the :class:`~.config.BenchConfig` dataclasses (the YAML schema).
* :mod:`.stages`: what a stage is (:class:`~.stages.Stage`, its context and result).
* :mod:`.manifest`: fingerprints, outputs hashes and the manifest of a finished stage.
* :mod:`.itemlog`: item-keyed append files, how a stage resumes inside itself.
* :mod:`.runner`: the stage runner (skip, resume in the partial folder, finish atomically).
* :mod:`.kinds`: one module per stage kind (catalog, complete, grpo, cqbench, features, recbench).
* :mod:`.graph`: the stages and their inputs built from a configuration.
* :mod:`.executors`: who runs the graph (local, Ray, network namespace, progress).
* :mod:`.run`: ``run_bench``, configuration → graph → executor → report.
* :mod:`.plan`: ``mmpc bench --dry-run``'s counts and accelerator-hours estimate.
"""

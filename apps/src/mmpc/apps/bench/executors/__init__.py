"""Who runs the bench's stages (see :func:`~mmpc.apps.bench.executors.factory.make_executor`).

Every executor takes the stage graph of :func:`mmpc.apps.bench.graph.build_stages` as it is and
runs each stage through :class:`~mmpc.apps.bench.runner.StageRunner`, so skipping, resuming and the
manifests are the same and every executor writes the same run folder.

* :mod:`.base`: the :class:`~.base.Executor` protocol, stage kinds, task log paths.
* :mod:`.local`: ``local`` (the default), the stages one after another in this process.
* :mod:`.ray`: ``ray``, each stage a Ray task once its inputs have finished (the driver side:
  Ray start-up, the scheduler); :mod:`.ray_worker` is what runs inside a Ray worker.
* :mod:`.netns`: a local Ray only starts in a private network namespace; ``mmpc bench`` re-runs
  itself in one when it can.
* :mod:`.progress`: the Ray executor's live line per stage kind.
"""

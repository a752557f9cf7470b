"""One module per stage kind (the first segment of a stage's name): what the stage does.

:mod:`.catalog`, :mod:`.complete`, :mod:`.grpo`, :mod:`.cqbench`, :mod:`.features` and
:mod:`.recbench` each turn their part of the configuration into stage functions
(``fn(ctx) -> counts``, and ``parts(ctx, shards)`` where a stage can be split). They read their
inputs and write their outputs only through the :class:`~mmpc.apps.bench.stages.StageContext`;
:mod:`mmpc.apps.bench.graph` names the stages and wires their inputs.
"""

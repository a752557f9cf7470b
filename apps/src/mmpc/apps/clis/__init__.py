"""The LightningCLI classes of ``mmpc recsys``, ``mmpc complete`` and ``mmpc grpo``.

They live apart from the ``*_cli`` entry modules so that ``mmpc <command> --help`` does not import
torch; each entry module imports its class only to run it.
"""

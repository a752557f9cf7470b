"""``python -m mmpc.apps.cli``: the ``mmpc`` console script."""

from mmpc.apps.cli import main

raise SystemExit(main())

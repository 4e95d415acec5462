"""``python -m archcompile``: the same as the ``archc`` command (used by torchrun)."""

from archcompile.cli import run

run()

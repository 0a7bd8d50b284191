"""`m2v-edge` with the `package` and `models` commands, run as `python cli_with_models.py ARGS`.

`m2v_edge.commands.models.register` is added to the command line here only if `m2v_edge.commands` does not
register it yet; once it does, this is exactly `m2v-edge ARGS`.
"""

from __future__ import annotations

import sys

from m2v_edge import cli
from m2v_edge.commands import models

if models.register not in cli.COMMAND_GROUPS:
    cli.COMMAND_GROUPS = (*cli.COMMAND_GROUPS, models.register)

if __name__ == "__main__":
    sys.exit(cli.main())

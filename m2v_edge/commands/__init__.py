"""Command groups of the `m2v-edge` command line; each module registers its sub-commands."""

from __future__ import annotations

from m2v_edge.commands import embed, profile, sync

COMMAND_GROUPS = (embed.register, profile.register, sync.register)

"""Command groups of the `m2v-edge` command line; each module registers its sub-commands."""

from __future__ import annotations

from m2v_edge.commands import embed, fleet, models, profile, search, serve, sync

COMMAND_GROUPS = (
    embed.register, models.register, profile.register, sync.register, search.register, fleet.register, serve.register
)

"""`flownet provider` commands."""

from __future__ import annotations

import click


@click.group("provider")
def group() -> None:
    """provider commands."""


COMMANDS = [group]

"""`flownet devnet` commands."""

from __future__ import annotations

import click


@click.group("devnet")
def group() -> None:
    """devnet commands."""


COMMANDS = [group]

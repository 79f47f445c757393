"""`flownet wallet` commands."""

from __future__ import annotations

import click


@click.group("wallet")
def group() -> None:
    """wallet commands."""


COMMANDS = [group]

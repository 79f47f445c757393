"""`flownet blob` commands."""

from __future__ import annotations

import click


@click.group("blob")
def group() -> None:
    """blob commands."""


COMMANDS = [group]

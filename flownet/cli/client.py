"""`flownet client` commands."""

from __future__ import annotations

import click


@click.group("client")
def group() -> None:
    """client commands."""


COMMANDS = [group]

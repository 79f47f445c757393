"""Agents: thin loops that wire network and chain events to the pure logic of flownet.core."""

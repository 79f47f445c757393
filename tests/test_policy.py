"""No open relay: the destination policy refuses every non-public address unless allowed."""

from __future__ import annotations

import pytest

from flownet.errors import ConfigError
from flownet.tunnel.policy import DestinationPolicy, DestinationRefused

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fc00::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:0a00:0001::1",  # 6to4 wrapping 10.0.0.1
    "ff02::1",
]
ALLOWED = ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_destinations_are_refused(address: str) -> None:
    with pytest.raises(DestinationRefused) as excinfo:
        DestinationPolicy().check(address)
    assert "is not a public address" in str(excinfo.value) and excinfo.value.exit_code == 10


@pytest.mark.parametrize("address", ALLOWED)
def test_public_destinations_are_allowed(address: str) -> None:
    assert str(DestinationPolicy().check(address)) == address


def test_operator_can_allow_a_network() -> None:
    policy = DestinationPolicy.parse(["127.0.0.1/32", "fd00::/8"])
    assert str(policy.check("127.0.0.1")) == "127.0.0.1"
    assert str(policy.check("fd12::5")) == "fd12::5"
    with pytest.raises(DestinationRefused):
        policy.check("127.0.0.2")


def test_every_resolved_address_is_checked() -> None:
    policy = DestinationPolicy()
    assert str(policy.pick(["1.1.1.1", "8.8.8.8"])) == "1.1.1.1"
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.7"):
        policy.pick(["1.1.1.1", "10.0.0.7"])  # a rebinding answer mixing in a private address
    with pytest.raises(DestinationRefused, match="resolved to no address"):
        policy.pick([])


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"invalid allowed destination network .10\.0\.0\.1/8."):
        DestinationPolicy.parse(["10.0.0.1/8"])
    with pytest.raises(DestinationRefused, match=r"'example\.org' is not an IP address"):
        DestinationPolicy().check("example.org")

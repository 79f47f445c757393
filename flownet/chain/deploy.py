"""Deploy the FlowNet contract set to any web3 provider and record it in a deployment manifest.

Staking references BandwidthMarket, CertificateRegistry and SlashingManager immutably, and each of them
references Staking: Staking is deployed first (nonce n) with the addresses the market (n + 1), the
registry (n + 2) and the slashing manager (n + 3) *will* have (CREATE addresses at the deployer's next
nonces), and their constructors check that Staking names them. The SlashingManager in turn names the
TrustRegistry deployed right after it (n + 4), whose constructor checks that it is named. The
manifest records the chain id, every address, the deployment block and the hash of each artifact,
so agents can refuse a manifest that does not match the chain or their own artifacts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract

from flownet.chain.artifacts import load_artifact
from flownet.chain.tx import BaseSender, Sent
from flownet.errors import ConfigError, DeploymentError

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
TOKEN_UNIT = 10**18
UINT96_MAX = 2**96 - 1


@dataclass(frozen=True)
class DeployConfig:
    """Constructor parameters of the whole set; defaults suit a devnet."""

    supply: int = 1_000_000_000 * TOKEN_UNIT
    thaw_period: int = 7 * 24 * 3600
    provider_min_stake: int = 1_000 * TOKEN_UNIT
    verifier_min_stake: int = 500 * TOKEN_UNIT
    grace_period: int = 24 * 3600
    max_duration: int = 30 * 24 * 3600
    lock_bps: int = 5_000
    # SlashingManager
    challenge_window: int = 24 * 3600  # at most thaw_period
    epoch_seconds: int = 30  # the heartbeat epoch
    statute_epochs: int = 2_880  # one day of 30 s epochs
    slash_period: int = 24 * 3600
    cap_per_period: int = 10_000 * TOKEN_UNIT
    slash_bps: int = 1_000
    reward_bps: int = 5_000
    quorum: int = 2
    # TrustRegistry
    trust_min_interval: int = 3600
    #: The authorities of the Network, App, OS and Package domains; None: the deployer for all four.
    trust_authorities: tuple[str, str, str, str] | None = None

    @classmethod
    def devnet(cls, **overrides: Any) -> DeployConfig:
        """Short windows for a local devnet or a test: disputes, thawing, the slash cap period and the
        trust rate limit run in a minute or less; anything in `overrides` wins."""
        short: dict[str, Any] = {
            "thaw_period": 120,
            "challenge_window": 60,
            "slash_period": 600,
            "trust_min_interval": 5,
        }
        return cls(**{**short, **overrides})

    def slashing_config(self) -> tuple[int, ...]:
        """ISlashingManager.Config, in field order."""
        return (
            self.challenge_window,
            self.epoch_seconds,
            self.statute_epochs,
            self.slash_period,
            self.cap_per_period,
            self.slash_bps,
            self.reward_bps,
            self.quorum,
        )

    def validate(self) -> None:
        if not 0 < self.supply <= UINT96_MAX:
            raise ConfigError(f"supply must be in 1..{UINT96_MAX} (not {self.supply})")
        if self.thaw_period <= 0:
            raise ConfigError(f"thaw_period must be positive seconds (not {self.thaw_period})")
        if self.grace_period <= 0:
            raise ConfigError(f"grace_period must be positive seconds (not {self.grace_period})")
        if self.max_duration <= 0:
            raise ConfigError(f"max_duration must be positive seconds (not {self.max_duration})")
        if not 1 <= self.lock_bps <= 10_000:
            raise ConfigError(f"lock_bps must be in 1..10000 (not {self.lock_bps})")
        for name in ("provider_min_stake", "verifier_min_stake"):
            value = getattr(self, name)
            if not 0 < value <= UINT96_MAX:
                raise ConfigError(f"{name} must be in 1..{UINT96_MAX} (not {value})")
        if not 0 < self.challenge_window <= self.thaw_period:
            raise ConfigError(
                f"challenge_window must be in 1..thaw_period ({self.thaw_period}) seconds (not {self.challenge_window})"
            )
        for name in ("epoch_seconds", "statute_epochs", "slash_period", "trust_min_interval"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{name} must be positive (not {value})")
        if self.trust_min_interval > 30 * 24 * 3600:
            raise ConfigError(f"trust_min_interval must be at most 30 days (not {self.trust_min_interval} s)")
        if not 0 < self.cap_per_period <= UINT96_MAX:
            raise ConfigError(f"cap_per_period must be in 1..{UINT96_MAX} (not {self.cap_per_period})")
        for name, low, high in (("slash_bps", 1, 10_000), ("reward_bps", 0, 5_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be in {low}..{high} (not {value})")
        if not 1 <= self.quorum <= 16:
            raise ConfigError(f"quorum must be in 1..16 (not {self.quorum})")
        if self.trust_authorities is not None:
            if len(self.trust_authorities) != 4:
                raise ConfigError(f"trust_authorities must name 4 addresses (not {len(self.trust_authorities)})")
            for authority in self.trust_authorities:
                if not Web3.is_address(authority) or int(authority, 16) == 0:
                    raise ConfigError(f"trust authority must be a non-zero address (not {authority!r})")


@dataclass(frozen=True)
class Deployment:
    """What a deployment manifest holds."""

    chain_id: int
    addresses: dict[str, str]
    deployment_block: int
    deployer: str
    artifact_hashes: dict[str, str]
    config: dict[str, Any]
    transactions: dict[str, str] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def contract(self, w3: Web3, name: str) -> Contract:
        """A web3 contract object for `name` at its deployed address."""
        if name not in self.addresses:
            raise DeploymentError(f"deployment has no contract {name!r} (has {sorted(self.addresses)})")
        address = Web3.to_checksum_address(self.addresses[name])
        return w3.eth.contract(address=address, abi=load_artifact(name).abi)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        """Write the manifest atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DeploymentError(f"no deployment manifest at {path} (deploy first)") from None
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"deployment manifest {path} is not valid JSON: {exc}") from None
        if data.get("version") != MANIFEST_VERSION:
            raise DeploymentError(f"manifest {path} has version {data.get('version')!r}, expected {MANIFEST_VERSION}")
        return cls(**data)

    def verify(self, w3: Web3) -> None:
        """Check that the chain and the local artifacts match this manifest, and that the deployed
        contracts name each other as the manifest says."""
        chain_id = w3.eth.chain_id
        if chain_id != self.chain_id:
            raise DeploymentError(f"manifest is for chain {self.chain_id} but the node is on chain {chain_id}")
        for name, address in self.addresses.items():
            artifact = load_artifact(name)
            if artifact.file_hash != self.artifact_hashes.get(name):
                raise DeploymentError(f"{name}: local artifact {artifact.file_hash} differs from the deployed one")
            if not artifact.matches_runtime_code(bytes(w3.eth.get_code(Web3.to_checksum_address(address)))):
                raise DeploymentError(f"{name}: code at {address} is not the artifact's deployed bytecode")
        self._verify_references(w3)

    def _verify_references(self, w3: Web3) -> None:
        """Each contract's immutable reference to another one points at the manifest's address."""
        references = [  # (contract, its view, the contract that view must name)
            ("Staking", "token", "FlowToken"),
            ("Staking", "market", "BandwidthMarket"),
            ("Staking", "certificateRegistry", "CertificateRegistry"),
            ("BandwidthMarket", "token", "FlowToken"),
            ("BandwidthMarket", "staking", "Staking"),
            ("CertificateRegistry", "staking", "Staking"),
            ("Staking", "slasher", "SlashingManager"),
            ("SlashingManager", "staking", "Staking"),
            ("SlashingManager", "market", "BandwidthMarket"),
            ("SlashingManager", "token", "FlowToken"),
            ("SlashingManager", "trustRegistry", "TrustRegistry"),
            ("TrustRegistry", "slashingManager", "SlashingManager"),
        ]
        for name, view, target in references:
            if name not in self.addresses or target not in self.addresses:
                continue
            named = getattr(self.contract(w3, name).functions, view)().call()
            if Web3.to_checksum_address(named) != Web3.to_checksum_address(self.addresses[target]):
                raise DeploymentError(
                    f"{name}.{view}() is {named}, not the manifest's {target} at {self.addresses[target]}"
                )


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` at `nonce` deploys to."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def deploy(
    w3: Web3,
    sender: BaseSender,
    config: DeployConfig | None = None,
    on_step: Callable[[Sent], None] | None = None,
) -> Deployment:
    """Deploy FlowToken, Staking, BandwidthMarket, CertificateRegistry, SlashingManager and
    TrustRegistry from `sender`, in that order.

    The deployer holds the whole token supply. The registry names Staking as the only contract that may
    revoke every certificate of an account (on a slash or a full unbond); the SlashingManager is
    Staking's only slasher and the TrustRegistry's only caller of onSlash. The trust authorities
    default to the deployer.
    """
    config = config or DeployConfig()
    config.validate()
    authorities = [Web3.to_checksum_address(a) for a in (config.trust_authorities or (sender.address,) * 4)]
    factories = {
        n: w3.eth.contract(abi=load_artifact(n).abi, bytecode=load_artifact(n).bytecode)
        for n in ("FlowToken", "Staking", "BandwidthMarket", "CertificateRegistry", "SlashingManager", "TrustRegistry")
    }
    addresses: dict[str, str] = {}
    txs: dict[str, str] = {}
    first_block: int | None = None

    def step(name: str, *args: Any) -> None:
        nonlocal first_block
        address, sent = sender.deploy(factories[name], *args, action=f"deploy {name}")
        addresses[name] = address
        txs[name] = sent.tx_hash
        first_block = sent.block_number if first_block is None else first_block
        if on_step:
            on_step(sent)

    step("FlowToken", sender.address, config.supply)
    # Staking is the deployer's next transaction, then the market, the registry, the slashing manager
    # and the trust registry.
    staking_nonce = w3.eth.get_transaction_count(sender.address, "pending")
    predicted = {
        name: create_address(sender.address, staking_nonce + k)
        for k, name in enumerate(("BandwidthMarket", "CertificateRegistry", "SlashingManager", "TrustRegistry"), 1)
    }
    step(
        "Staking",
        addresses["FlowToken"],
        predicted["SlashingManager"],
        predicted["BandwidthMarket"],
        predicted["CertificateRegistry"],
        config.thaw_period,
        config.provider_min_stake,
        config.verifier_min_stake,
    )
    step(
        "BandwidthMarket",
        addresses["FlowToken"],
        addresses["Staking"],
        config.grace_period,
        config.max_duration,
        config.lock_bps,
    )
    step("CertificateRegistry", addresses["Staking"])
    step("SlashingManager", addresses["Staking"], predicted["TrustRegistry"], config.slashing_config())
    step("TrustRegistry", addresses["SlashingManager"], authorities, config.trust_min_interval)
    # Unreachable in practice: each constructor reverts when the contract before it does not name it.
    for name, address in predicted.items():
        if addresses[name] != address:
            raise DeploymentError(
                f"{name} deployed at {addresses[name]}, not at the predicted {address} "
                "(another transaction from the deployer interleaved; deploy from a dedicated account)"
            )
    assert first_block is not None
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        addresses=addresses,
        deployment_block=first_block,
        deployer=sender.address,
        artifact_hashes={n: load_artifact(n).file_hash for n in addresses},
        config={**asdict(config), "trust_authorities": authorities},
        transactions=txs,
    )
    log.info("deployed FlowNet on chain %d at block %d: %s", deployment.chain_id, first_block, addresses)
    return deployment

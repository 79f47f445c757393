// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "./MarketFixture.sol";
import {ISlashingManager} from "../../interfaces/ISlashingManager.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IBandwidthMarket} from "../../interfaces/IBandwidthMarket.sol";

/// @notice MarketFixture plus what the SlashingManager and TrustRegistry tests share: more verifier
/// keys, and signers for heartbeats, attestations and service proofs whose digests are computed here
/// independently of the contract (the tests compare them with its views).
abstract contract SlashingFixture is MarketFixture {
    uint256 internal constant VERIFIER2_KEY = 0xC0FFEE02;
    uint256 internal constant VERIFIER3_KEY = 0xC0FFEE03;
    uint256 internal constant PROVIDER_STAKE = 10_000e18;
    bytes32 internal constant ENDPOINT_A = keccak256("203.0.113.7:8443");
    bytes32 internal constant ENDPOINT_B = keccak256("198.51.100.9:8443");
    /// @dev secp256k1 group order.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    address internal verifier2;
    address internal verifier3;

    function setUp() public virtual override {
        super.setUp();
        verifier2 = vm.addr(VERIFIER2_KEY);
        verifier3 = vm.addr(VERIFIER3_KEY);
        vm.label(verifier2, "verifier2");
        vm.label(verifier3, "verifier3");
        address[2] memory more = [verifier2, verifier3];
        for (uint256 i; i < more.length; ++i) {
            token.transfer(more[i], FUNDS);
            vm.prank(more[i]);
            token.approve(address(staking), type(uint256).max);
            vm.prank(more[i]);
            token.approve(address(market), type(uint256).max);
        }
    }

    // ------------------------------------------------------------ actors

    function stakeVerifier(address who, uint256 amount) internal {
        vm.prank(who);
        staking.stake(IStaking.Role.Verifier, amount);
    }

    /// @notice The fixture's three verifiers stake the minimum.
    function stakeVerifiers() internal {
        stakeVerifier(verifier, VERIFIER_MIN);
        stakeVerifier(verifier2, VERIFIER_MIN);
        stakeVerifier(verifier3, VERIFIER_MIN);
    }

    function stakeOf(address who) internal view returns (uint256) {
        IStaking.StakeInfo memory s = staking.stakeOf(who);
        return uint256(s.active) + s.thawing;
    }

    function epochNow() internal view returns (uint64) {
        return uint64(block.timestamp / EPOCH_SECONDS);
    }

    // ------------------------------------------------------------ EIP-712, computed independently

    function domainSeparator(string memory name, address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256("1"),
                block.chainid,
                verifyingContract
            )
        );
    }

    function heartbeat(address who, uint64 epoch, bytes32 endpoint, uint32 load, uint64 timestamp)
        internal
        pure
        returns (ISlashingManager.Heartbeat memory)
    {
        return ISlashingManager.Heartbeat({
            provider: who, epoch: epoch, endpointHash: endpoint, load: load, timestamp: timestamp
        });
    }

    function heartbeatDigestOf(ISlashingManager.Heartbeat memory h, address verifyingContract)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Heartbeat(address provider,uint64 epoch,bytes32 endpointHash,uint32 load,uint64 timestamp)"),
                h.provider,
                h.epoch,
                h.endpointHash,
                h.load,
                h.timestamp
            )
        );
        return
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("FlowNet Heartbeat", verifyingContract), structHash));
    }

    function signHeartbeat(uint256 key, ISlashingManager.Heartbeat memory h) internal view returns (bytes memory) {
        return signDigest(key, heartbeatDigestOf(h, address(staking)));
    }

    function attestationDigestOf(address who, uint64 epoch, uint8 kind, string memory cid)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)"),
                who,
                epoch,
                kind,
                keccak256(bytes(cid))
            )
        );
        return keccak256(
            abi.encodePacked("\x19\x01", domainSeparator("FlowNet SlashingManager", address(slashing)), structHash)
        );
    }

    function signAttestation(uint256 key, address who, uint64 epoch, uint8 kind, string memory cid)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, attestationDigestOf(who, epoch, kind, cid));
    }

    /// @notice Signatures of `keys` over one attestation.
    function attestations(uint256[] memory keys, address who, uint64 epoch, uint8 kind, string memory cid)
        internal
        view
        returns (bytes[] memory sigs)
    {
        sigs = new bytes[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            sigs[i] = signAttestation(keys[i], who, epoch, kind, cid);
        }
    }

    function keys2() internal pure returns (uint256[] memory keys) {
        keys = new uint256[](2);
        keys[0] = VERIFIER_KEY;
        keys[1] = VERIFIER2_KEY;
    }

    function serviceProofDigestOf(bytes32 orderId, uint64 epoch, uint256 bytesServed) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("ServiceProof(bytes32 orderId,uint64 epoch,uint256 bytesServed)"), orderId, epoch, bytesServed
            )
        );
        return keccak256(
            abi.encodePacked("\x19\x01", domainSeparator("FlowNet SlashingManager", address(slashing)), structHash)
        );
    }

    function signServiceProof(uint256 key, bytes32 orderId, uint64 epoch, uint256 bytesServed)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, serviceProofDigestOf(orderId, epoch, bytesServed));
    }

    // ------------------------------------------------------------ flows

    /// @notice Two heartbeats of `provider` for `epoch` naming different endpoints, signed.
    function equivocation(uint64 epoch)
        internal
        view
        returns (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        )
    {
        uint64 t = epoch * EPOCH_SECONDS;
        a = heartbeat(provider, epoch, ENDPOINT_A, 1_200, t + 3);
        b = heartbeat(provider, epoch, ENDPOINT_B, 1_250, t + 9);
        sigA = signHeartbeat(PROVIDER_KEY, a);
        sigB = signHeartbeat(PROVIDER_KEY, b);
    }

    function slashEquivocationAs(address reporter, uint64 epoch, string memory cid) internal returns (uint256) {
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = equivocation(epoch);
        vm.prank(reporter);
        return slashing.slashEquivocation(a, sigA, b, sigB, cid);
    }

    /// @notice Verifier `who` (key `key`) buys service from `provider` and signs a ServiceProof for
    /// `epoch`: the vouching that strikes it from any dispute of that epoch it accuses in.
    function vouch(address who, uint256 key, uint64 epoch, uint256 bytesServed)
        internal
        returns (bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig)
    {
        (orderId, order) = openOrderAs(who, provider, 100e18, 1 days, PRICE);
        sig = signServiceProof(key, orderId, epoch, bytesServed);
    }

    /// @notice Verifiers 1 and 2 accuse `provider` for `epoch`; `stranger` opens the dispute.
    function openDisputeOf(uint64 epoch, uint8 kind, string memory cid) internal returns (uint256 id) {
        bytes[] memory sigs = attestations(keys2(), provider, epoch, kind, cid);
        vm.prank(stranger);
        id = slashing.openDispute(provider, epoch, kind, cid, sigs);
    }
}

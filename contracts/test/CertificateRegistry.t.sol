// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./utils/BaseTest.sol";
import {RegistryNamingStub} from "./utils/RegistryNamingStub.sol";
import {CertificateRegistry} from "../CertificateRegistry.sol";
import {ICertificateRegistry} from "../interfaces/ICertificateRegistry.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @notice Unit and fuzz tests of every external function and every revert path of CertificateRegistry.
contract CertificateRegistryTest is BaseTest {
    string internal constant CID = "bafkreicertificatepem";
    uint64 internal constant T0 = 1_700_000_000;
    uint64 internal constant YEAR = 365 days;

    /// @dev A stub that names the registry (set in setUp); the tests prank as it.
    address internal stakingAddr;
    address internal node = address(0xA11CE);
    address internal other = address(0xB0B);

    bytes32 internal constant CERT = keccak256("cert-1");
    bytes32 internal constant KEY = keccak256("key-1");

    CertificateRegistry internal registry;

    function setUp() public {
        vm.warp(T0);
        stakingAddr = address(new RegistryNamingStub(_nextCreate(1)));
        registry = new CertificateRegistry(stakingAddr);
        assertEq(RegistryNamingStub(stakingAddr).certificateRegistry(), address(registry), "stub names the registry");
        vm.label(address(registry), "CertificateRegistry");
        vm.label(stakingAddr, "staking");
        vm.label(node, "node");
        vm.label(other, "other");
    }

    // ================================================================ helpers

    function _register(address who, bytes32 certHash) internal {
        vm.prank(who);
        registry.register(certHash, KEY, CID, T0 + YEAR);
    }

    function _revoke(address who, bytes32 certHash, ICertificateRegistry.RevocationReason reason, uint64 at) internal {
        vm.prank(who);
        registry.revoke(certHash, uint8(reason), at);
    }

    function _revokeAll(address owner, ICertificateRegistry.RevocationReason reason) internal returns (uint256 n) {
        vm.prank(stakingAddr);
        n = registry.revokeAllOf(owner, uint8(reason));
    }

    /// @dev The address of this contract's CREATE `k` deployments after the next one.
    function _nextCreate(uint256 k) internal view returns (address) {
        return vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + k);
    }

    function _cert(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("cert", i));
    }

    function _fill(address who, uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            _register(who, _cert(i));
        }
    }

    function _assertRevoked(
        bytes32 certHash,
        ICertificateRegistry.RevocationReason reason,
        uint256 revokedAt,
        uint256 compromisedAt
    ) internal view {
        ICertificateRegistry.Certificate memory c = registry.status(certHash, node);
        assertTrue(c.revoked, "revoked");
        assertEq(c.revokedAt, revokedAt, "revokedAt");
        assertEq(c.compromisedAt, compromisedAt, "compromisedAt");
        assertEq(uint256(c.reason), uint256(reason), "reason");
    }

    // ================================================================ constructor

    function test_constructor_setsStaking() public view {
        assertEq(registry.staking(), stakingAddr, "staking");
        assertEq(registry.MAX_ACTIVE(), 8, "MAX_ACTIVE");
        assertEq(registry.MAX_CID_LENGTH(), 128, "MAX_CID_LENGTH");
    }

    function test_constructor_revertsOnZeroStaking() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidConfig.selector, "staking"));
        new CertificateRegistry(address(0));
    }

    function test_constructor_revertsWhenStakingNamesAnotherRegistry() public {
        address wrong = address(new RegistryNamingStub(address(0xBAD)));
        vm.expectRevert(
            abi.encodeWithSelector(
                ICertificateRegistry.CertificateInvalidConfig.selector, "staking.certificateRegistry"
            )
        );
        new CertificateRegistry(wrong);
    }

    function test_constructor_revertsWhenStakingHasNoCode() public {
        // An address without code returns nothing, which cannot be decoded as an address.
        vm.expectRevert();
        new CertificateRegistry(address(0x57A4));
    }

    // ================================================================ register

    function test_register_storesCertificate() public {
        vm.warp(T0 + 5);
        _register(node, CERT);
        ICertificateRegistry.Certificate memory c = registry.status(CERT, node);
        assertEq(c.owner, node, "owner");
        assertEq(c.keyHash, KEY, "keyHash");
        assertEq(c.notAfter, T0 + YEAR, "notAfter");
        assertEq(c.registeredAt, T0 + 5, "registeredAt");
        assertFalse(c.revoked, "revoked");
        assertEq(c.revokedAt, 0, "revokedAt");
        assertEq(c.compromisedAt, 0, "compromisedAt");
        assertEq(uint256(c.reason), 0, "reason");
        assertTrue(registry.isValid(CERT, node), "valid");
        assertEq(registry.activeCount(node), 1, "activeCount");
        bytes32[] memory active = registry.activeCertificates(node);
        assertEq(active.length, 1, "active length");
        assertEq(active[0], CERT, "active[0]");
    }

    function test_register_emitsEvent() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit ICertificateRegistry.CertificateRegistered(CERT, node, KEY, CID, T0 + YEAR);
        _register(node, CERT);
    }

    function test_register_ownerMayHoldSeveralAndReuseKey() public {
        _fill(node, 3);
        assertEq(registry.activeCount(node), 3, "activeCount");
        for (uint256 i; i < 3; ++i) {
            assertTrue(registry.isValid(_cert(i), node), "valid");
            assertEq(registry.status(_cert(i), node).keyHash, KEY, "same key");
        }
    }

    function test_register_acceptsMaxLengthCidAndNextSecond() public {
        bytes memory cid = new bytes(128);
        for (uint256 i; i < cid.length; ++i) {
            cid[i] = "a";
        }
        vm.prank(node);
        registry.register(CERT, KEY, string(cid), T0 + 1);
        assertTrue(registry.isValid(CERT, node), "valid");
        vm.warp(T0 + 1);
        assertFalse(registry.isValid(CERT, node), "expired at notAfter");
    }

    function test_register_revertsOnZeroCertHash() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateZeroHash.selector, bytes32(0), KEY));
        vm.prank(node);
        registry.register(bytes32(0), KEY, CID, T0 + YEAR);
    }

    function test_register_revertsOnZeroKeyHash() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateZeroHash.selector, CERT, bytes32(0)));
        vm.prank(node);
        registry.register(CERT, bytes32(0), CID, T0 + YEAR);
    }

    function test_register_revertsOnEmptyCid() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidPemCid.selector, 0, 128));
        vm.prank(node);
        registry.register(CERT, KEY, "", T0 + YEAR);
    }

    function test_register_revertsOnTooLongCid() public {
        string memory cid = string(new bytes(129));
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidPemCid.selector, 129, 128));
        vm.prank(node);
        registry.register(CERT, KEY, cid, T0 + YEAR);
    }

    function test_register_revertsOnNotAfterNow() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidNotAfter.selector, T0, T0));
        vm.prank(node);
        registry.register(CERT, KEY, CID, T0);
    }

    function test_register_revertsOnNotAfterPast() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidNotAfter.selector, 0, T0));
        vm.prank(node);
        registry.register(CERT, KEY, CID, 0);
    }

    function test_register_revertsWhenAlreadyRegisteredBySelf() public {
        _register(node, CERT);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRegistered.selector, CERT, node));
        _register(node, CERT);
    }

    /// @notice Issue 11, finding 4: another wallet registering the same hash writes its own record; the
    /// node's record is untouched and stays the only one that counts for the node.
    function test_register_sameHashByOtherIsItsOwnRecord() public {
        _register(node, CERT);
        vm.warp(T0 + 10);
        vm.prank(other);
        registry.register(CERT, keccak256("other key"), "bafkreiothers", T0 + 2 * YEAR);
        ICertificateRegistry.Certificate memory mine = registry.status(CERT, node);
        assertEq(mine.owner, node, "node's owner");
        assertEq(mine.keyHash, KEY, "node's key");
        assertEq(mine.notAfter, T0 + YEAR, "node's notAfter");
        assertEq(mine.registeredAt, T0, "node's registeredAt");
        assertTrue(registry.isValid(CERT, node), "node still valid");
        assertEq(registry.status(CERT, other).owner, other, "other's copy is under other");
        assertEq(registry.activeCount(node), 1, "node holds one");
        assertEq(registry.activeCount(other), 1, "other holds its copy");
    }

    /// @notice Issue 11, finding 4: the front-running attack. A front-runner copies the node's register
    /// call, lands first, then revokes its copy; the node's own registration still succeeds and its
    /// certificate is valid, whatever the order. On the old registry (one global record per hash) the
    /// node's register reverted and the hash could never become valid for it.
    function test_register_frontRunAndRevokedCopyCannotSquat() public {
        vm.prank(other);
        registry.register(CERT, KEY, CID, T0 + YEAR); // the copied call, mined first
        _revoke(other, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0);
        assertFalse(registry.isValid(CERT, other), "the copy is revoked");

        vm.expectEmit(true, true, false, true, address(registry));
        emit ICertificateRegistry.CertificateRegistered(CERT, node, KEY, CID, T0 + YEAR);
        _register(node, CERT); // the node's own call
        assertTrue(registry.isValid(CERT, node), "the node's certificate is valid");
        assertEq(registry.activeCount(node), 1, "the node holds it");
        // The squatter's revoke reaches only its own record (revoked already), never the node's.
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRevoked.selector, CERT, uint64(T0))
        );
        _revoke(other, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0);
        assertTrue(registry.isValid(CERT, node), "still valid");
        ICertificateRegistry.Certificate memory c = registry.status(CERT, node);
        assertFalse(c.revoked, "the copy's revocation is not the node's");
        assertEq(c.owner, node, "registered to the node");
    }

    function test_register_revertsWhenRevokedByOwner() public {
        _register(node, CERT);
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRegistered.selector, CERT, node));
        _register(node, CERT);
        // Another wallet's registration of the hash is its own record: it does not revive the node's.
        _register(other, CERT);
        assertFalse(registry.isValid(CERT, node), "still invalid");
        assertTrue(registry.status(CERT, node).revoked, "still revoked");
    }

    function test_register_revertsWhenRevokedByStaking() public {
        _register(node, CERT);
        _revokeAll(node, ICertificateRegistry.RevocationReason.Slashed);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRegistered.selector, CERT, node));
        _register(node, CERT);
    }

    function test_register_revertsAboveMaxActive() public {
        _fill(node, 8);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateTooManyActive.selector, node, 8));
        _register(node, CERT);
        // Another owner is unaffected.
        _register(other, CERT);
    }

    function test_register_slotFreedByRevoke() public {
        _fill(node, 8);
        _revoke(node, _cert(3), ICertificateRegistry.RevocationReason.Superseded, 0);
        _register(node, CERT);
        assertEq(registry.activeCount(node), 8, "activeCount");
    }

    function test_register_expiredCertificatesCountUntilRevoked() public {
        _fill(node, 8);
        vm.warp(T0 + YEAR + 1);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateTooManyActive.selector, node, 8));
        vm.prank(node);
        registry.register(CERT, KEY, CID, T0 + 2 * YEAR);
        // Revoking an expired certificate is allowed and frees its slot.
        _revoke(node, _cert(0), ICertificateRegistry.RevocationReason.CessationOfOperation, 0);
        vm.prank(node);
        registry.register(CERT, KEY, CID, T0 + 2 * YEAR);
        assertTrue(registry.isValid(CERT, node), "valid");
    }

    // ================================================================ revoke

    function test_revoke_marksRevokedAndEmits() public {
        _register(node, CERT);
        vm.warp(T0 + 100);
        vm.expectEmit(true, true, false, true, address(registry));
        emit ICertificateRegistry.CertificateRevoked(
            CERT, node, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 100, T0 + 50
        );
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 50);
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 100, T0 + 50);
        assertFalse(registry.isValid(CERT, node), "invalid");
        assertEq(registry.activeCount(node), 0, "activeCount");
        ICertificateRegistry.Certificate memory c = registry.status(CERT, node);
        assertEq(c.owner, node, "owner kept");
        assertEq(c.keyHash, KEY, "keyHash kept");
        assertEq(c.registeredAt, T0, "registeredAt kept");
    }

    function test_revoke_everyOwnerReason() public {
        for (uint8 r; r <= uint8(ICertificateRegistry.RevocationReason.CessationOfOperation); ++r) {
            _register(node, _cert(r));
            vm.prank(node);
            registry.revoke(_cert(r), r, 0);
            _assertRevoked(_cert(r), ICertificateRegistry.RevocationReason(r), T0, 0);
        }
    }

    function test_revoke_compromisedAtNowAndBeforeRegistration() public {
        vm.warp(T0 + 1000);
        vm.prank(node);
        registry.register(CERT, KEY, CID, T0 + YEAR);
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 1);
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 1000, T0 + 1);
        vm.prank(node);
        registry.register(_cert(1), KEY, CID, T0 + YEAR);
        _revoke(node, _cert(1), ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 1000);
        _assertRevoked(_cert(1), ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 1000, T0 + 1000);
    }

    function test_revoke_keepsOtherActiveCertificates() public {
        _fill(node, 4);
        _revoke(node, _cert(1), ICertificateRegistry.RevocationReason.Superseded, 0);
        bytes32[] memory active = registry.activeCertificates(node);
        assertEq(active.length, 3, "length");
        // Swap-and-pop: the last one took the freed position.
        assertEq(active[0], _cert(0), "active[0]");
        assertEq(active[1], _cert(3), "active[1]");
        assertEq(active[2], _cert(2), "active[2]");
        // Revoke the moved one and the last one; positions stay consistent.
        _revoke(node, _cert(3), ICertificateRegistry.RevocationReason.Superseded, 0);
        _revoke(node, _cert(2), ICertificateRegistry.RevocationReason.Superseded, 0);
        active = registry.activeCertificates(node);
        assertEq(active.length, 1, "length after");
        assertEq(active[0], _cert(0), "survivor");
        assertTrue(registry.isValid(_cert(0), node), "survivor valid");
    }

    function test_revoke_revertsOnReservedReason() public {
        _register(node, CERT);
        for (uint8 r = uint8(ICertificateRegistry.RevocationReason.Slashed); r <= 6; ++r) {
            vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidReason.selector, r));
            vm.prank(node);
            registry.revoke(CERT, r, 0);
        }
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidReason.selector, uint8(255)));
        vm.prank(node);
        registry.revoke(CERT, 255, 0);
        assertTrue(registry.isValid(CERT, node), "still valid");
    }

    function test_revoke_revertsOnFutureCompromisedAt() public {
        _register(node, CERT);
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidCompromisedAt.selector, T0 + 1, T0)
        );
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 1);
    }

    function test_revoke_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateNotRegistered.selector, CERT, node));
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.Unspecified, 0);
    }

    function test_revoke_revertsWhenNotOwner() public {
        _register(node, CERT);
        // A caller can only name its own records: the node's certificate is not among other's.
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateNotRegistered.selector, CERT, other));
        _revoke(other, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, 0);
        // Not even Staking may revoke one certificate through revoke().
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateNotRegistered.selector, CERT, stakingAddr)
        );
        _revoke(stakingAddr, CERT, ICertificateRegistry.RevocationReason.Unspecified, 0);
        assertTrue(registry.isValid(CERT, node), "untouched");
        assertFalse(registry.status(CERT, node).revoked, "not revoked");
    }

    function test_revoke_revertsWhenAlreadyRevoked() public {
        _register(node, CERT);
        vm.warp(T0 + 7);
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.Superseded, 0);
        vm.warp(T0 + 9);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRevoked.selector, CERT, T0 + 7));
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.KeyCompromise, T0 + 8);
        // The first revocation's record is unchanged.
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason.Superseded, T0 + 7, 0);
    }

    // ================================================================ revokeAllOf

    function test_revokeAllOf_revokesEveryActiveCertificate() public {
        _fill(node, 8);
        _register(other, CERT);
        _revoke(node, _cert(2), ICertificateRegistry.RevocationReason.Superseded, 0);
        vm.warp(T0 + 60);
        vm.recordLogs();
        uint256 n = _revokeAll(node, ICertificateRegistry.RevocationReason.Slashed);
        assertEq(n, 7, "revoked count");
        assertEq(vm.getRecordedLogs().length, 7, "one event each");
        assertEq(registry.activeCount(node), 0, "none active");
        for (uint256 i; i < 8; ++i) {
            assertFalse(registry.isValid(_cert(i), node), "invalid");
            if (i == 2) {
                _assertRevoked(_cert(i), ICertificateRegistry.RevocationReason.Superseded, T0, 0);
            } else {
                _assertRevoked(_cert(i), ICertificateRegistry.RevocationReason.Slashed, T0 + 60, 0);
            }
        }
        assertTrue(registry.isValid(CERT, other), "other owner untouched");
        // The owner may register new certificates afterwards (fresh hashes only).
        _register(node, keccak256("fresh"));
        assertEq(registry.activeCount(node), 1, "fresh");
    }

    function test_revokeAllOf_emitsEvent() public {
        _register(node, CERT);
        vm.warp(T0 + 3);
        vm.expectEmit(true, true, false, true, address(registry));
        emit ICertificateRegistry.CertificateRevoked(
            CERT, node, ICertificateRegistry.RevocationReason.Unbonded, T0 + 3, 0
        );
        _revokeAll(node, ICertificateRegistry.RevocationReason.Unbonded);
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason.Unbonded, T0 + 3, 0);
    }

    function test_revokeAllOf_noCertificatesIsNoOp() public {
        vm.recordLogs();
        assertEq(_revokeAll(node, ICertificateRegistry.RevocationReason.Slashed), 0, "nothing");
        assertEq(vm.getRecordedLogs().length, 0, "no events");
        _register(node, CERT);
        _revokeAll(node, ICertificateRegistry.RevocationReason.Slashed);
        assertEq(_revokeAll(node, ICertificateRegistry.RevocationReason.Unbonded), 0, "second call");
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason.Slashed, T0, 0);
    }

    function test_revokeAllOf_revertsWhenNotStaking() public {
        _register(node, CERT);
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateUnauthorized.selector, node, stakingAddr)
        );
        vm.prank(node);
        registry.revokeAllOf(node, uint8(ICertificateRegistry.RevocationReason.Unbonded));
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateUnauthorized.selector, other, stakingAddr)
        );
        vm.prank(other);
        registry.revokeAllOf(node, uint8(ICertificateRegistry.RevocationReason.Slashed));
        assertTrue(registry.isValid(CERT, node), "still valid");
    }

    function test_revokeAllOf_revertsOnOwnerReasons() public {
        _register(node, CERT);
        for (uint8 r; r <= uint8(ICertificateRegistry.RevocationReason.CessationOfOperation); ++r) {
            vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidReason.selector, r));
            vm.prank(stakingAddr);
            registry.revokeAllOf(node, r);
        }
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidReason.selector, uint8(6)));
        vm.prank(stakingAddr);
        registry.revokeAllOf(node, 6);
        assertTrue(registry.isValid(CERT, node), "still valid");
    }

    function test_revokeAllOf_gasBoundedAtMaxActive() public {
        _fill(node, 8);
        vm.prank(stakingAddr);
        uint256 before = gasleft();
        registry.revokeAllOf(node, uint8(ICertificateRegistry.RevocationReason.Slashed));
        uint256 used = before - gasleft();
        assertLt(used, 300_000, "revokeAllOf of MAX_ACTIVE certificates");
    }

    // ================================================================ stake (issue 11, finding 5)

    function test_isValid_onlyWhileAProvidersOrVerifiersStakeIsBonded() public {
        _register(node, CERT);
        RegistryNamingStub stub = RegistryNamingStub(stakingAddr);
        assertTrue(registry.stakeCounts(node), "never staked: a client");
        assertTrue(registry.isValid(CERT, node), "a client's certificate counts without stake");

        IStaking.Role[2] memory roles = [IStaking.Role.Provider, IStaking.Role.Verifier];
        for (uint256 i; i < roles.length; ++i) {
            stub.setStake(node, roles[i], 1, 0);
            assertTrue(registry.isValid(CERT, node), "active stake");
            stub.setStake(node, roles[i], 0, 1);
            assertTrue(registry.isValid(CERT, node), "thawing stake is still bonded");
            stub.setStake(node, roles[i], 0, 0);
            assertFalse(registry.stakeCounts(node), "nothing bonded");
            assertFalse(registry.isValid(CERT, node), "nothing bonded: the certificate does not count");
            // The record itself is untouched: valid again once stake is bonded again.
            assertFalse(registry.status(CERT, node).revoked, "not revoked");
            stub.setStake(node, roles[i], 5, 0);
            assertTrue(registry.isValid(CERT, node), "bonded again");
        }
    }

    function test_register_allowedWithoutStakeButNotValid() public {
        RegistryNamingStub(stakingAddr).setStake(node, IStaking.Role.Provider, 0, 0);
        _register(node, CERT);
        assertEq(registry.activeCount(node), 1, "registered");
        assertFalse(registry.isValid(CERT, node), "an unbonded provider's certificate does not count");
    }

    // ================================================================ storage (issue 11, finding 10)

    /// @notice A revocation rewrites slots registration made non-zero; it never makes a zero slot
    /// non-zero (the old record spread the revocation over a slot of its own: +17,100 gas each).
    function test_revoke_writesNoNewSlot() public {
        _fill(node, 3);
        _assertNoNewSlot(abi.encodeCall(registry.revoke, (_cert(0), uint8(2), uint64(T0))), node);
        _assertNoNewSlot(abi.encodeCall(registry.revoke, (_cert(2), uint8(1), uint64(0))), node);
        _assertNoNewSlot(abi.encodeCall(registry.revokeAllOf, (node, uint8(4))), stakingAddr);
        assertEq(registry.activeCount(node), 0, "all revoked");
    }

    /// @dev Calls the registry with `data` as `caller` and checks that every slot it wrote held a
    /// non-zero value before the call.
    function _assertNoNewSlot(bytes memory data, address caller) internal {
        uint256 before = vm.snapshotState();
        vm.record();
        vm.prank(caller);
        (bool ok,) = address(registry).call(data);
        assertTrue(ok, "call succeeded");
        (, bytes32[] memory writes) = vm.accesses(address(registry));
        assertGt(writes.length, 0, "wrote something");
        uint256 afterCall = vm.snapshotState();
        vm.revertToState(before);
        for (uint256 i; i < writes.length; ++i) {
            assertTrue(vm.load(address(registry), writes[i]) != bytes32(0), "a revocation wrote a new slot");
        }
        vm.revertToState(afterCall);
    }

    // ================================================================ views

    function test_status_unregisteredIsZero() public view {
        ICertificateRegistry.Certificate memory c = registry.status(CERT, node);
        assertEq(c.owner, address(0), "owner");
        assertEq(c.keyHash, bytes32(0), "keyHash");
        assertEq(c.notAfter, 0, "notAfter");
        assertEq(c.registeredAt, 0, "registeredAt");
        assertFalse(c.revoked, "revoked");
    }

    function test_isValid_cases() public {
        assertFalse(registry.isValid(CERT, node), "unregistered");
        assertFalse(registry.isValid(CERT, address(0)), "unregistered, zero owner");
        _register(node, CERT);
        assertTrue(registry.isValid(CERT, node), "valid");
        assertFalse(registry.isValid(CERT, other), "wrong owner");
        assertFalse(registry.isValid(CERT, address(0)), "zero owner");
        vm.warp(T0 + YEAR - 1);
        assertTrue(registry.isValid(CERT, node), "last second");
        vm.warp(T0 + YEAR);
        assertFalse(registry.isValid(CERT, node), "expired");
        vm.warp(T0);
        _revoke(node, CERT, ICertificateRegistry.RevocationReason.Unspecified, 0);
        assertFalse(registry.isValid(CERT, node), "revoked");
    }

    function test_activeCertificates_emptyForUnknownOwner() public view {
        assertEq(registry.activeCertificates(other).length, 0, "empty");
        assertEq(registry.activeCount(other), 0, "zero");
    }

    // ================================================================ fuzz

    function testFuzz_register_validUntilNotAfter(bytes32 certHash, bytes32 keyHash, uint256 lifetime, uint256 later)
        public
    {
        vm.assume(certHash != bytes32(0) && keyHash != bytes32(0));
        lifetime = bound(lifetime, 1, type(uint64).max - T0);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 notAfter = uint64(T0 + lifetime);
        vm.prank(node);
        registry.register(certHash, keyHash, CID, notAfter);
        later = bound(later, T0, uint256(notAfter) + 10);
        vm.warp(later);
        assertEq(registry.isValid(certHash, node), later < notAfter, "valid iff now < notAfter");
        assertFalse(registry.isValid(certHash, other), "never for another owner");
    }

    function testFuzz_register_rejectsPastNotAfter(uint256 notAfter) public {
        notAfter = bound(notAfter, 0, T0);
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidNotAfter.selector, uint64(notAfter), T0)
        );
        vm.prank(node);
        registry.register(CERT, KEY, CID, uint64(notAfter));
    }

    function testFuzz_register_cidLength(uint256 length) public {
        length = bound(length, 0, 300);
        string memory cid = string(new bytes(length));
        if (length == 0 || length > 128) {
            vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidPemCid.selector, length, 128));
        }
        vm.prank(node);
        registry.register(CERT, KEY, cid, T0 + 1);
    }

    function testFuzz_revoke_neverValidAgain(uint8 reason, uint256 compromisedAt, uint256 elapsed) public {
        reason = uint8(bound(reason, 0, uint8(ICertificateRegistry.RevocationReason.CessationOfOperation)));
        _register(node, CERT);
        elapsed = bound(elapsed, 0, YEAR - 1);
        vm.warp(T0 + elapsed);
        compromisedAt = bound(compromisedAt, 0, T0 + elapsed);
        vm.prank(node);
        // forge-lint: disable-next-line(unsafe-typecast)
        registry.revoke(CERT, reason, uint64(compromisedAt));
        _assertRevoked(CERT, ICertificateRegistry.RevocationReason(reason), T0 + elapsed, compromisedAt);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRegistered.selector, CERT, node));
        _register(node, CERT);
        vm.warp(T0);
        assertFalse(registry.isValid(CERT, node), "never valid again");
    }

    function testFuzz_revoke_reasonOutOfRange(uint8 reason) public {
        reason = uint8(bound(reason, uint8(ICertificateRegistry.RevocationReason.Slashed), type(uint8).max));
        _register(node, CERT);
        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateInvalidReason.selector, reason));
        vm.prank(node);
        registry.revoke(CERT, reason, 0);
    }

    function testFuzz_revoke_futureCompromisedAt(uint256 compromisedAt) public {
        compromisedAt = bound(compromisedAt, T0 + 1, type(uint64).max);
        _register(node, CERT);
        vm.expectRevert(
            abi.encodeWithSelector(
                ICertificateRegistry.CertificateInvalidCompromisedAt.selector, uint64(compromisedAt), T0
            )
        );
        vm.prank(node);
        // forge-lint: disable-next-line(unsafe-typecast)
        registry.revoke(CERT, 1, uint64(compromisedAt));
    }

    function testFuzz_revokeAllOf_onlyStaking(address caller) public {
        vm.assume(caller != stakingAddr);
        _register(node, CERT);
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateUnauthorized.selector, caller, stakingAddr)
        );
        vm.prank(caller);
        registry.revokeAllOf(node, uint8(ICertificateRegistry.RevocationReason.Slashed));
    }

    function testFuzz_revokeAllOf_countAndOrder(uint256 count, uint256 revokedFirst, bool unbonded) public {
        count = bound(count, 0, 8);
        _fill(node, count);
        uint256 expected = count;
        if (count > 0) {
            revokedFirst = bound(revokedFirst, 0, count - 1);
            _revoke(node, _cert(revokedFirst), ICertificateRegistry.RevocationReason.Superseded, 0);
            expected = count - 1;
        }
        ICertificateRegistry.RevocationReason reason =
            unbonded ? ICertificateRegistry.RevocationReason.Unbonded : ICertificateRegistry.RevocationReason.Slashed;
        vm.warp(T0 + 1);
        assertEq(_revokeAll(node, reason), expected, "revoked count");
        assertEq(registry.activeCount(node), 0, "none active");
        for (uint256 i; i < count; ++i) {
            assertFalse(registry.isValid(_cert(i), node), "invalid");
            if (i == revokedFirst) {
                _assertRevoked(_cert(i), ICertificateRegistry.RevocationReason.Superseded, T0, 0);
            } else {
                _assertRevoked(_cert(i), reason, T0 + 1, 0);
            }
        }
    }
}

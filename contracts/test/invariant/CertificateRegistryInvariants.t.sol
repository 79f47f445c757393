// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "../utils/BaseTest.sol";
import {RegistryNamingStub} from "../utils/RegistryNamingStub.sol";
import {CertificateRegistry} from "../../CertificateRegistry.sol";
import {ICertificateRegistry} from "../../interfaces/ICertificateRegistry.sol";
import {CertificateRegistryHandler} from "./CertificateRegistryHandler.sol";
import {Log} from "./Log.sol";

/// @notice Invariants of CertificateRegistry under random register / revoke / revokeAllOf / setStake /
/// warp sequences by four owners and Staking (see README.md in this folder). Only the handler is fuzzed.
/// The handler never reverts by design, so a handler revert means a handler bug: fail on it.
/// forge-config: default.invariant.fail-on-revert = true
/// forge-config: ci.invariant.fail-on-revert = true
contract CertificateRegistryInvariantsTest is BaseTest {
    uint256 internal constant SEQUENCE = 600;
    /// @dev Stands in for Staking: a stub that names the registry, pranked as by the handler.
    address internal stakingStub;

    CertificateRegistry internal registry;
    CertificateRegistryHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        stakingStub =
            address(new RegistryNamingStub(vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1)));
        registry = new CertificateRegistry(stakingStub);
        handler = new CertificateRegistryHandler(registry, stakingStub);
        vm.label(address(registry), "CertificateRegistry");
        vm.label(address(handler), "CertificateRegistryHandler");
        vm.label(stakingStub, "staking");

        bytes4[] memory selectors = new bytes4[](5);
        selectors[0] = CertificateRegistryHandler.register.selector;
        selectors[1] = CertificateRegistryHandler.revoke.selector;
        selectors[2] = CertificateRegistryHandler.revokeAllOf.selector;
        selectors[3] = CertificateRegistryHandler.warp.selector;
        selectors[4] = CertificateRegistryHandler.setStake.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        excludeSender(address(handler));
        excludeSender(address(registry));
    }

    /// @notice A revoked certificate is never valid again, and its status stays revoked with the
    /// owner, revokedAt, reason and compromisedAt of its one revocation.
    function invariant_revokedNeverValidAgain() public view {
        bytes32[] memory revoked = handler.revokedRecords();
        for (uint256 i; i < revoked.length; ++i) {
            CertificateRegistryHandler.GhostCert memory g = handler.ghostByKey(revoked[i]);
            ICertificateRegistry.Certificate memory c = registry.status(g.certHash, g.owner);
            assertTrue(c.revoked, "Invariant violation: a revoked certificate is no longer revoked");
            assertEq(c.owner, g.owner, "Invariant violation: a revoked certificate changed owner");
            assertEq(c.revokedAt, g.revokedAt, "Invariant violation: revokedAt changed after revocation");
            assertEq(uint256(c.reason), g.reason, "Invariant violation: revocation reason changed");
            assertEq(c.compromisedAt, g.compromisedAt, "Invariant violation: compromisedAt changed");
            assertFalse(registry.isValid(g.certHash, g.owner), "Invariant violation: a revoked certificate is valid");
        }
    }

    /// @notice For every owner and every hash anyone registered: the record under that owner equals
    /// the model (all zero when that owner never registered the hash), whatever other owners did with
    /// the same hash; isValid(h, o) implies o registered h, has not revoked it, notAfter > now and o's
    /// stake counts; and it is true for exactly the certificates the model says are live.
    function invariant_isValidImpliesRegisteredUnrevokedUnexpired() public view {
        bytes32[] memory hashes = handler.hashes();
        address[] memory owners = handler.owners();
        for (uint256 i; i < hashes.length; ++i) {
            for (uint256 j; j < owners.length; ++j) {
                ICertificateRegistry.Certificate memory c = registry.status(hashes[i], owners[j]);
                CertificateRegistryHandler.GhostCert memory g = handler.ghostOf(owners[j], hashes[i]);
                assertEq(c.owner, g.owner, "Invariant violation: a record is not under the wallet that registered it");
                assertEq(c.notAfter, g.notAfter, "Invariant violation: notAfter differs from the model");
                assertEq(c.revoked, g.revoked, "Invariant violation: revoked flag differs from the model");
                bool counts = handler.ghostStakeCounts(owners[j]);
                assertEq(registry.stakeCounts(owners[j]), counts, "Invariant violation: stakeCounts differs");
                bool valid = registry.isValid(hashes[i], owners[j]);
                if (valid) {
                    assertTrue(
                        c.owner == owners[j] && !c.revoked && c.notAfter > block.timestamp && counts,
                        "Invariant violation: isValid without registered && !revoked && notAfter > now && stake"
                    );
                }
                bool live = g.owner == owners[j] && !g.revoked && g.notAfter > block.timestamp && counts;
                assertEq(valid, live, "Invariant violation: isValid differs from the model");
            }
        }
    }

    /// @notice Every owner holds at most MAX_ACTIVE unrevoked certificates; the count equals the model's,
    /// and the active list holds exactly distinct, unrevoked certificates of that owner.
    function invariant_activeCountBoundedAndMatchesGhost() public view {
        address[] memory owners = handler.owners();
        uint256 max = registry.MAX_ACTIVE();
        for (uint256 i; i < owners.length; ++i) {
            uint256 count = registry.activeCount(owners[i]);
            assertLe(count, max, "Invariant violation: active certificates above MAX_ACTIVE");
            assertEq(count, handler.ghostActive(owners[i]), "Invariant violation: active count differs from the model");
            bytes32[] memory active = registry.activeCertificates(owners[i]);
            assertEq(active.length, count, "Invariant violation: active list length != activeCount");
            for (uint256 j; j < active.length; ++j) {
                ICertificateRegistry.Certificate memory c = registry.status(active[j], owners[i]);
                assertEq(c.owner, owners[i], "Invariant violation: active list holds a hash the owner never registered");
                assertFalse(c.revoked, "Invariant violation: active list holds a revoked certificate");
                for (uint256 k = j + 1; k < active.length; ++k) {
                    assertTrue(active[j] != active[k], "Invariant violation: active list holds a duplicate");
                }
            }
        }
    }

    /// @notice Only the Staking address ever produced the Slashed or Unbonded reasons, and Staking
    /// never produced any other reason.
    function invariant_reservedReasonsOnlyFromStaking() public view {
        bytes32[] memory revoked = handler.revokedRecords();
        for (uint256 i; i < revoked.length; ++i) {
            CertificateRegistryHandler.GhostCert memory g = handler.ghostByKey(revoked[i]);
            ICertificateRegistry.RevocationReason reason = registry.status(g.certHash, g.owner).reason;
            bool reserved = reason == ICertificateRegistry.RevocationReason.Slashed
                || reason == ICertificateRegistry.RevocationReason.Unbonded;
            assertEq(
                reserved,
                g.revokedBy == stakingStub,
                "Invariant violation: Slashed/Unbonded not produced by Staking alone"
            );
        }
    }

    /// @notice Every call the model deemed invalid was refused and every valid one accepted.
    function invariant_handlerSawNoViolation() public view {
        if (handler.violationCount() != 0) {
            fail(string.concat("Invariant violation: ", handler.firstViolation()));
        }
        assertEq(handler.invalidAccepted(), 0, "Invariant violation: an invalid call was accepted");
        assertEq(handler.unexpectedReverts(), 0, "Invariant violation: a valid call was refused");
    }

    /// @notice Not a property: logs the last run's per-action counters (-vv).
    function invariant_callSummary() public view {
        _logSummary();
    }

    /// @notice A fixed pseudo-random sequence reaches every action, refuses every probe kind, and
    /// keeps all invariants.
    function test_handlerSequenceReachesEveryAction() public {
        for (uint256 i; i < SEQUENCE; ++i) {
            uint256 r = uint256(keccak256(abi.encode(i)));
            uint256 kind = r % 17;
            if (kind < 7) handler.register(r >> 8, r >> 16, r >> 24, r >> 32);
            else if (kind < 12) handler.revoke(r >> 8, r >> 16, r >> 24, r >> 32);
            else if (kind < 14) handler.revokeAllOf(r >> 8, r >> 16, r >> 24);
            else if (kind < 16) handler.warp(r >> 8);
            else handler.setStake(r >> 8, r >> 16);
        }
        string[5] memory names = ["register", "revoke", "revokeAllOf", "warp", "setStake"];
        for (uint256 i; i < names.length; ++i) {
            assertGt(handler.counter(names[i]).ok, 0, string.concat(names[i], " never succeeded"));
        }
        for (uint256 i; i < 3; ++i) {
            assertGt(handler.counter(names[i]).rejected, 0, string.concat(names[i], " never refused"));
        }
        assertGt(handler.revokedRecords().length, 0, "nothing revoked");
        assertGt(handler.registersAtCap(), 0, "no owner ever reached MAX_ACTIVE");
        assertGt(handler.copiesRegistered(), 0, "no owner ever registered a hash another owner holds");
        _logSummary();
        invariant_revokedNeverValidAgain();
        invariant_isValidImpliesRegisteredUnrevokedUnexpired();
        invariant_activeCountBoundedAndMatchesGhost();
        invariant_reservedReasonsOnlyFromStaking();
        invariant_handlerSawNoViolation();
    }

    function _logSummary() internal view {
        string[] memory names = handler.actionNames();
        Log.log("action: calls, ok, rejected");
        for (uint256 i; i < names.length; ++i) {
            CertificateRegistryHandler.Counter memory c = handler.counter(names[i]);
            Log.log(string.concat(names[i], " calls"), c.calls);
            Log.log(string.concat(names[i], " ok"), c.ok);
            Log.log(string.concat(names[i], " rejected"), c.rejected);
        }
        Log.log("certificates registered", handler.records().length);
        Log.log("certificates revoked", handler.revokedRecords().length);
        Log.log("copies of another owner's hash", handler.copiesRegistered());
        Log.log("registrations at MAX_ACTIVE", handler.registersAtCap());
    }
}

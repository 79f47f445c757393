// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "./utils/MarketFixture.sol";
import {Vm} from "./utils/Vm.sol";
import {Staking} from "../Staking.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {ICertificateRegistry} from "../interfaces/ICertificateRegistry.sol";

/// @notice The Staking -> CertificateRegistry hook: a slash revokes all of the slashed account's
/// certificates (reason Slashed), a withdrawal that leaves nothing bonded revokes them (reason
/// Unbonded), and nothing else does. Runs against the full set as deploy.py deploys it.
contract StakingCertificateHookTest is MarketFixture {
    string internal constant PEM = "bafkreicertificatepem";
    bytes32 internal constant KEY = keccak256("key");
    uint64 internal constant YEAR = 365 days;

    uint64 internal t0;

    function setUp() public override {
        super.setUp();
        t0 = uint64(block.timestamp);
    }

    // ================================================================ helpers

    function _cert(address owner, uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("cert", owner, i));
    }

    /// @dev `owner` registers certificates 0..n-1.
    function _registerCerts(address owner, uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            vm.prank(owner);
            registry.register(_cert(owner, i), KEY, PEM, uint64(block.timestamp) + YEAR);
        }
    }

    function _stake(address who, IStaking.Role role, uint256 amount) internal {
        vm.prank(who);
        staking.stake(role, amount);
    }

    function _unstake(address who, uint256 amount) internal {
        vm.prank(who);
        staking.requestUnstake(amount);
    }

    function _withdraw(address who) internal returns (uint256 amount) {
        vm.prank(who);
        amount = staking.withdraw();
    }

    function _slash(address who, uint256 amount) internal returns (uint256 slashed) {
        vm.prank(slasher);
        slashed = staking.slash(who, amount);
    }

    /// @dev Expects one CertificateRevoked per certificate 0..n-1 of `owner`, in revokeAllOf's
    /// order (it pops the active list from the end), for `reason` at the current time.
    function _expectRevokedAll(address owner, uint256 n, ICertificateRegistry.RevocationReason reason) internal {
        for (uint256 i = n; i > 0; --i) {
            vm.expectEmit(true, true, false, true, address(registry));
            emit ICertificateRegistry.CertificateRevoked(_cert(owner, i - 1), owner, reason, uint64(block.timestamp), 0);
        }
    }

    /// @dev Certificates 0..n-1 of `owner` are revoked for `reason` at `at`, invalid, and none is active.
    function _assertAllRevoked(address owner, uint256 n, ICertificateRegistry.RevocationReason reason, uint256 at)
        internal
        view
    {
        assertEq(registry.activeCount(owner), 0, "no active certificate left");
        assertEq(registry.activeCertificates(owner).length, 0, "active list empty");
        for (uint256 i; i < n; ++i) {
            ICertificateRegistry.Certificate memory c = registry.status(_cert(owner, i), owner);
            assertEq(c.owner, owner, "owner kept");
            assertTrue(c.revoked, "revoked");
            assertEq(c.revokedAt, at, "revokedAt");
            assertEq(c.compromisedAt, 0, "no compromise time");
            assertEq(uint256(c.reason), uint256(reason), "reason");
            assertFalse(registry.isValid(_cert(owner, i), owner), "no longer valid");
        }
    }

    /// @dev Certificates 0..n-1 of `owner` are all still registered, unrevoked and valid.
    function _assertAllValid(address owner, uint256 n) internal view {
        assertEq(registry.activeCount(owner), n, "active count unchanged");
        for (uint256 i; i < n; ++i) {
            assertTrue(registry.isValid(_cert(owner, i), owner), "still valid");
            assertFalse(registry.status(_cert(owner, i), owner).revoked, "not revoked");
        }
    }

    /// @dev How many of `logs` the registry emitted.
    function _registryLogs(Vm.Log[] memory logs) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(registry)) ++n;
        }
    }

    // ================================================================ wiring

    function test_wiring_stakingAndRegistryNameEachOther() public view {
        assertEq(staking.certificateRegistry(), address(registry), "staking names the registry");
        assertEq(registry.staking(), address(staking), "registry names staking");
        assertTrue(staking.certificateRegistry() != staking.market(), "registry and market differ");
    }

    // ================================================================ slash

    function test_slash_revokesEveryCertificateOfTheAccount() public {
        stakeProvider(3_000e18);
        _registerCerts(provider, 3);
        _registerCerts(stranger, 2);
        vm.warp(t0 + 1 hours);

        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(provider, slasher, 100e18, 0, 2_900e18, 0);
        _expectRevokedAll(provider, 3, ICertificateRegistry.RevocationReason.Slashed);
        assertEq(_slash(provider, 100e18), 100e18, "partial slash");

        _assertAllRevoked(provider, 3, ICertificateRegistry.RevocationReason.Slashed, t0 + 1 hours);
        _assertAllValid(stranger, 2);
        assertEq(token.balanceOf(slasher), 100e18, "slasher paid");
    }

    function test_slash_ofThawingOnlyStillRevokes() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _unstake(verifier, VERIFIER_MIN);
        _registerCerts(verifier, 1);
        _expectRevokedAll(verifier, 1, ICertificateRegistry.RevocationReason.Slashed);
        assertEq(_slash(verifier, 1), 1, "one unit from thawing");
        _assertAllRevoked(verifier, 1, ICertificateRegistry.RevocationReason.Slashed, t0);
    }

    function test_slash_withoutCertificatesSucceeds() public {
        stakeProvider(2_000e18);
        vm.recordLogs();
        assertEq(_slash(provider, 2_000e18), 2_000e18, "slashed");
        assertEq(_registryLogs(vm.getRecordedLogs()), 0, "nothing to revoke, no registry event");
        assertEq(registry.activeCount(provider), 0, "still none");
    }

    function test_slash_nothingTakenRevokesNothing() public {
        // An address without stake may hold certificates; a slash that takes nothing leaves them.
        _registerCerts(stranger, 2);
        vm.recordLogs();
        assertEq(_slash(stranger, 1_000e18), 0, "nothing to take");
        assertEq(vm.getRecordedLogs().length, 0, "no event at all");
        _assertAllValid(stranger, 2);
    }

    function test_slash_afterWhichNewCertificatesCanBeRegistered() public {
        stakeProvider(3_000e18);
        _registerCerts(provider, 2);
        _slash(provider, 500e18);
        // Fresh hashes are accepted again (the provider is still bonded) and survive until the next slash.
        vm.prank(provider);
        registry.register(keccak256("fresh"), KEY, PEM, t0 + YEAR);
        assertTrue(registry.isValid(keccak256("fresh"), provider), "fresh certificate valid");
        assertEq(registry.activeCount(provider), 1, "one active");
        _slash(provider, 500e18);
        assertFalse(registry.isValid(keccak256("fresh"), provider), "revoked by the second slash");
        assertEq(
            uint256(registry.status(keccak256("fresh"), provider).reason),
            uint256(ICertificateRegistry.RevocationReason.Slashed),
            "reason"
        );
    }

    function test_slash_revokesMaxActiveCertificates() public {
        stakeProvider(2_000e18);
        uint256 max = registry.MAX_ACTIVE();
        _registerCerts(provider, max);
        vm.prank(slasher);
        uint256 gasBefore = gasleft();
        staking.slash(provider, 1);
        uint256 used = gasBefore - gasleft();
        _assertAllRevoked(provider, max, ICertificateRegistry.RevocationReason.Slashed, t0);
        // The hook's cost is bounded by MAX_ACTIVE, so it can never make a slash run out of gas.
        assertLt(used, 400_000, "slash revoking MAX_ACTIVE certificates");
    }

    // ================================================================ withdraw

    function test_withdraw_fullUnbondRevokesWithUnbonded() public {
        stakeProvider(2_000e18);
        _registerCerts(provider, 2);
        _registerCerts(stranger, 1);
        _unstake(provider, 2_000e18);
        vm.warp(t0 + THAW_PERIOD);

        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Withdrawn(provider, 2_000e18);
        _expectRevokedAll(provider, 2, ICertificateRegistry.RevocationReason.Unbonded);
        assertEq(_withdraw(provider), 2_000e18, "everything withdrawn");

        _assertAllRevoked(provider, 2, ICertificateRegistry.RevocationReason.Unbonded, t0 + THAW_PERIOD);
        _assertAllValid(stranger, 1);
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        assertEq(uint256(s.active) + s.thawing, 0, "nothing bonded");
    }

    function test_withdraw_fullUnbondOfVerifierRevokes() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _registerCerts(verifier, 1);
        _unstake(verifier, VERIFIER_MIN);
        vm.warp(t0 + THAW_PERIOD);
        _withdraw(verifier);
        _assertAllRevoked(verifier, 1, ICertificateRegistry.RevocationReason.Unbonded, t0 + THAW_PERIOD);
    }

    function test_withdraw_partialDoesNotRevoke() public {
        stakeProvider(3_000e18);
        _registerCerts(provider, 3);
        _unstake(provider, 1_000e18);
        vm.warp(t0 + THAW_PERIOD);

        vm.recordLogs();
        assertEq(_withdraw(provider), 1_000e18, "partial withdraw");
        assertEq(_registryLogs(vm.getRecordedLogs()), 0, "registry untouched");
        _assertAllValid(provider, 3);
        assertEq(staking.stakeOf(provider).active, 2_000e18, "still bonded");
    }

    function test_withdraw_requestingEverythingButNotYetWithdrawnKeepsCertificates() public {
        stakeProvider(2_000e18);
        _registerCerts(provider, 1);
        _unstake(provider, 2_000e18);
        // Thawing stake is still slashable, so the node is still bonded until the withdrawal.
        vm.warp(t0 + THAW_PERIOD - 1);
        _assertAllValid(provider, 1);
    }

    function test_withdraw_afterSlashOfAllActiveRevokesLaterCertificatesAsUnbonded() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _unstake(provider, 1_000e18); // active 2,000, thawing 1,000
        _registerCerts(provider, 1);
        _slash(provider, 2_000e18); // active 0, thawing 1,000: revoked as Slashed
        _assertAllRevoked(provider, 1, ICertificateRegistry.RevocationReason.Slashed, t0);

        bytes32 later = keccak256("later");
        vm.prank(provider);
        registry.register(later, KEY, PEM, t0 + YEAR);
        vm.warp(t0 + THAW_PERIOD);
        _withdraw(provider);
        ICertificateRegistry.Certificate memory c = registry.status(later, provider);
        assertTrue(c.revoked, "later certificate revoked");
        assertEq(uint256(c.reason), uint256(ICertificateRegistry.RevocationReason.Unbonded), "as Unbonded");
        assertEq(c.revokedAt, t0 + THAW_PERIOD, "at the withdrawal");
        // The earlier revocation is untouched.
        assertEq(
            uint256(registry.status(_cert(provider, 0), provider).reason),
            uint256(ICertificateRegistry.RevocationReason.Slashed),
            "first reason kept"
        );
        assertEq(registry.status(_cert(provider, 0), provider).revokedAt, t0, "first revokedAt kept");
    }

    // ================================================================ validity follows stake (issue 11, finding 5)

    /// @notice A fully unbonded provider registers a new certificate with the same key at once: on the
    /// old registry it was valid again; now it counts only once the provider bonds stake again.
    function test_fullUnbond_laterCertificateCountsOnlyOnceBondedAgain() public {
        stakeProvider(2_000e18);
        _registerCerts(provider, 1);
        _unstake(provider, 2_000e18);
        vm.warp(t0 + THAW_PERIOD);
        _withdraw(provider);
        _assertAllRevoked(provider, 1, ICertificateRegistry.RevocationReason.Unbonded, t0 + THAW_PERIOD);

        bytes32 again = keccak256("registered after the unbond");
        vm.prank(provider);
        registry.register(again, KEY, PEM, t0 + YEAR);
        assertFalse(registry.isValid(again, provider), "an unbonded provider's new certificate does not count");

        // Bonding again makes it count (it is slashable again), and the next full unbond revokes it.
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        assertTrue(registry.isValid(again, provider), "counts once bonded again");
        assertFalse(registry.isValid(_cert(provider, 0), provider), "the revoked one never comes back");
        _unstake(provider, PROVIDER_MIN);
        assertTrue(registry.isValid(again, provider), "thawing stake still counts");
        vm.warp(t0 + 2 * THAW_PERIOD);
        _withdraw(provider);
        assertEq(registry.activeCount(provider), 0, "revoked by the next full unbond");
        assertFalse(registry.stakeCounts(provider), "nothing bonded");
    }

    /// @notice A provider slashed of everything it had registers a new certificate: it does not count.
    function test_slashOfEverything_laterCertificateDoesNotCount() public {
        stakeProvider(2_000e18);
        _registerCerts(provider, 1);
        _slash(provider, 2_000e18);
        _assertAllRevoked(provider, 1, ICertificateRegistry.RevocationReason.Slashed, t0);

        bytes32 again = keccak256("registered after the slash");
        vm.prank(provider);
        registry.register(again, KEY, PEM, t0 + YEAR);
        assertFalse(registry.isValid(again, provider), "a fully slashed provider's new certificate does not count");
    }

    /// @notice The same for a verifier, also when a forfeited dispute bond (penalize, which revokes
    /// nothing) takes the last of its stake: its certificates stop counting with its stake.
    function test_verifier_certificatesCountOnlyWhileBonded() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _registerCerts(verifier, 1);
        assertTrue(registry.isValid(_cert(verifier, 0), verifier), "bonded verifier");
        vm.prank(slasher);
        staking.penalize(verifier, VERIFIER_MIN);
        assertEq(registry.activeCount(verifier), 1, "penalize revokes nothing");
        assertFalse(registry.isValid(_cert(verifier, 0), verifier), "but nothing bonded: it does not count");

        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        assertTrue(registry.isValid(_cert(verifier, 0), verifier), "bonded again");
        _unstake(verifier, VERIFIER_MIN);
        vm.warp(t0 + THAW_PERIOD);
        _withdraw(verifier);
        bytes32 again = keccak256("verifier, after the unbond");
        vm.prank(verifier);
        registry.register(again, KEY, PEM, t0 + YEAR);
        assertFalse(registry.isValid(again, verifier), "an unbonded verifier's new certificate does not count");
    }

    /// @notice Clients stake nothing and keep their certificates.
    function test_client_certificatesCountWithoutStake() public {
        _registerCerts(client, 2);
        assertTrue(registry.stakeCounts(client), "a client");
        _assertAllValid(client, 2);
        assertEq(uint256(staking.stakeOf(client).role), uint256(IStaking.Role.None), "never staked");
    }

    /// @notice Whatever happens to the stake, isValid is true exactly when the record is live and the
    /// account never staked or has stake bonded.
    function testFuzz_isValid_iffRecordLiveAndStakeBonded(uint256 amount, uint256 slashAmount, bool unbond) public {
        amount = bound(amount, PROVIDER_MIN, 100_000e18);
        slashAmount = bound(slashAmount, 0, amount);
        stakeProvider(amount);
        if (unbond) _unstake(provider, amount);
        if (slashAmount != 0) _slash(provider, slashAmount);
        vm.warp(t0 + THAW_PERIOD);
        if (staking.stakeOf(provider).thawing != 0) _withdraw(provider);
        bytes32 later = keccak256("later");
        vm.prank(provider);
        registry.register(later, KEY, PEM, t0 + THAW_PERIOD + YEAR);
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        bool bonded = uint256(s.active) + s.thawing != 0;
        assertEq(bonded, !unbond && slashAmount < amount, "bonded iff neither unbonded nor slashed of everything");
        assertEq(registry.isValid(later, provider), bonded, "valid iff bonded");
    }

    // ================================================================ revocation is final

    function test_hookRevoked_cannotBeRegisteredOrRevokedAgain() public {
        stakeProvider(2_000e18);
        _registerCerts(provider, 1);
        bytes32 h = _cert(provider, 0);
        _slash(provider, 1);

        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRegistered.selector, h, provider));
        vm.prank(provider);
        registry.register(h, KEY, PEM, t0 + YEAR);

        // Another wallet registering the hash writes its own record; the provider's stays revoked.
        vm.prank(stranger);
        registry.register(h, KEY, PEM, t0 + YEAR);
        assertFalse(registry.isValid(h, provider), "the provider's certificate stays revoked");

        vm.expectRevert(abi.encodeWithSelector(ICertificateRegistry.CertificateAlreadyRevoked.selector, h, t0));
        vm.prank(provider);
        registry.revoke(h, uint8(ICertificateRegistry.RevocationReason.Superseded), 0);

        // A second hook call (another slash, then a full unbond) neither un-revokes nor re-stamps it.
        vm.warp(t0 + 1 days);
        _slash(provider, 1);
        _unstake(provider, staking.stakeOf(provider).active);
        vm.warp(t0 + 1 days + THAW_PERIOD);
        _withdraw(provider);
        _assertAllRevoked(provider, 1, ICertificateRegistry.RevocationReason.Slashed, t0);
    }

    // ================================================================ only Staking may revoke all

    function test_RevertWhen_revokeAllOf_notStaking() public {
        _registerCerts(provider, 1);
        address[5] memory callers = [provider, slasher, address(market), address(this), stranger];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    ICertificateRegistry.CertificateUnauthorized.selector, callers[i], address(staking)
                )
            );
            vm.prank(callers[i]);
            registry.revokeAllOf(provider, uint8(ICertificateRegistry.RevocationReason.Slashed));
        }
        _assertAllValid(provider, 1);
    }

    function testFuzz_revokeAllOf_onlyStaking(address caller) public {
        vm.assume(caller != address(staking));
        _registerCerts(provider, 1);
        vm.expectRevert(
            abi.encodeWithSelector(ICertificateRegistry.CertificateUnauthorized.selector, caller, address(staking))
        );
        vm.prank(caller);
        registry.revokeAllOf(provider, uint8(ICertificateRegistry.RevocationReason.Unbonded));
    }

    // ================================================================ fuzz

    /// @notice Whatever is staked, unstaked and slashed: the certificates survive exactly when the
    /// account was never slashed (for a non-zero amount) and still has something bonded.
    function testFuzz_hook_revokesIffSlashedOrFullyUnbonded(
        uint256 stakeAmount,
        uint256 unstakeAmount,
        uint256 slashAmount,
        bool doSlash
    ) public {
        stakeAmount = bound(stakeAmount, PROVIDER_MIN, 100_000e18);
        unstakeAmount = bound(unstakeAmount, 1, stakeAmount);
        // A partial unstake must leave at least the minimum.
        if (stakeAmount - unstakeAmount != 0 && stakeAmount - unstakeAmount < PROVIDER_MIN) {
            unstakeAmount = stakeAmount;
        }
        slashAmount = bound(slashAmount, 1, 2 * stakeAmount);
        stakeProvider(stakeAmount);
        _registerCerts(provider, 2);
        _unstake(provider, unstakeAmount);
        if (doSlash) _slash(provider, slashAmount);
        vm.warp(t0 + THAW_PERIOD);
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        if (s.thawing != 0) _withdraw(provider);

        bool fullyUnbonded = staking.stakeOf(provider).active == 0;
        if (doSlash) {
            _assertAllRevoked(provider, 2, ICertificateRegistry.RevocationReason.Slashed, t0);
        } else if (fullyUnbonded) {
            _assertAllRevoked(provider, 2, ICertificateRegistry.RevocationReason.Unbonded, t0 + THAW_PERIOD);
        } else {
            _assertAllValid(provider, 2);
        }
    }

    // ================================================================ registry missing

    function test_hook_skippedWhenNoRegistryIsDeployed() public {
        // A Staking whose registry address holds no code (the registry was never deployed there):
        // no certificate can exist, and slash and withdraw must keep working.
        Staking lone = new Staking(
            address(token), slasher, address(0x3001), address(0x3002), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN
        );
        token.approve(address(lone), type(uint256).max);
        lone.stake(IStaking.Role.Verifier, 2 * VERIFIER_MIN);
        vm.prank(slasher);
        assertEq(lone.slash(address(this), 1e18), 1e18, "slash works");
        lone.requestUnstake(2 * VERIFIER_MIN - 1e18);
        vm.warp(t0 + THAW_PERIOD);
        assertEq(lone.withdraw(), 2 * VERIFIER_MIN - 1e18, "full withdrawal works");
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SlashingFixture} from "./utils/SlashingFixture.sol";
import {ISlashingManager} from "../interfaces/ISlashingManager.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";

/// @notice The attacks of issue 10 ("Disputes that cannot be gamed"), one test each. Every one of them
/// worked against the SlashingManager before the issue; each test plays the attack against the current
/// contracts and asserts that the attacker fails or loses.
/// Fixture figures: provider stake 10,000 FLOW, slashBps 10 %, rewardBps 50 %, cap 5,000 FLOW per day,
/// quorum 2, challenge window 1 day, verifier minimum 500 FLOW.
contract SlashingAttacksTest is SlashingFixture {
    string internal constant CID = "bafkreievidence";
    uint256 internal constant SYBIL_KEY = 0x5B11;
    bytes32 internal constant CERT_KEY = keccak256("tls key");

    address internal sybil;
    uint64 internal epoch;

    function setUp() public override {
        super.setUp();
        sybil = vm.addr(SYBIL_KEY);
        vm.label(sybil, "sybil");
        token.transfer(sybil, FUNDS);
        vm.prank(sybil);
        token.approve(address(market), type(uint256).max);
        stakeProvider(PROVIDER_STAKE);
        epoch = epochNow();
    }

    // ------------------------------------------------------------ 1. sybil-client rebuttal

    /// @notice Old attack: the accused provider opens an order from a wallet it controls, has that
    /// "client" sign a ServiceProof for the disputed epoch and rebuts, burning the honest accusers'
    /// stake. Now only an accuser's own proof rebuts: the sybil's is refused, the dispute executes and
    /// the accusers lose nothing.
    function test_attack_sybilClientRebuttal() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, 0, CID);
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrderAs(sybil, provider, 100e18, 1 days, PRICE);
        bytes memory sig = signServiceProof(SYBIL_KEY, orderId, epoch, 50 * GIB);

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingProofNotFromAccuser.selector, id, sybil));
        vm.prank(provider);
        slashing.rebut(id, order, 50 * GIB, sig);

        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        assertEq(slashing.executeDispute(id), 500e18, "the dispute slashes its due");
        assertEq(stakeOf(provider), PROVIDER_STAKE - 500e18, "provider slashed");
        assertEq(stakeOf(verifier), VERIFIER_MIN, "accuser 1 loses nothing");
        assertEq(stakeOf(verifier2), VERIFIER_MIN, "accuser 2 loses nothing");
        assertEq(staking.heldOf(verifier), 0, "bond 1 released");
        assertEq(staking.heldOf(verifier2), 0, "bond 2 released");
    }

    // ------------------------------------------------------------ 2. blocking disputes for gas

    /// @dev Heartbeats of `who` (key `key`) for `epoch` naming two endpoints, with the evidence `cid`.
    function _equivocationOf(uint256 key, address who, uint64 e, string memory cid) internal {
        uint64 t = e * EPOCH_SECONDS;
        ISlashingManager.Heartbeat memory a = heartbeat(who, e, ENDPOINT_A, 1, t);
        ISlashingManager.Heartbeat memory b = heartbeat(who, e, ENDPOINT_B, 1, t + 1);
        vm.prank(stranger);
        slashing.slashEquivocation(a, signHeartbeat(key, a), b, signHeartbeat(key, b), cid);
    }

    /// @notice Old attack: an attacker "equivocates" with a key that has nothing at stake (or a
    /// provider with nothing left, or a verifier), which cost only gas and consumed the evidence CID
    /// the verifiers were about to use, so their dispute could not open. Now such a signer is refused
    /// with SlashingNothingToSlash and nothing is consumed: the same CID opens the real dispute and
    /// still slashes a real equivocation.
    function test_attack_blockDisputesWithWorthlessEquivocations() public {
        stakeVerifiers();
        uint256 drainedKey = 0xD2A1;
        address drained = vm.addr(drainedKey);
        token.transfer(drained, PROVIDER_MIN);
        vm.startPrank(drained);
        token.approve(address(staking), type(uint256).max);
        staking.stake(IStaking.Role.Provider, PROVIDER_MIN);
        staking.requestUnstake(PROVIDER_MIN);
        vm.stopPrank();
        vm.warp(block.timestamp + THAW_PERIOD);
        vm.prank(drained);
        staking.withdraw();
        epoch = epochNow();
        uint256 supply = token.totalSupply();

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, stranger, epoch));
        _equivocationOf(STRANGER_KEY, stranger, epoch, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, drained, epoch));
        _equivocationOf(drainedKey, drained, epoch, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, verifier3, epoch));
        _equivocationOf(VERIFIER3_KEY, verifier3, epoch, CID);
        assertFalse(slashing.isEpochSlashed(stranger, epoch), "unstaked key: nothing consumed");
        assertFalse(slashing.isEpochSlashed(drained, epoch), "drained provider: nothing consumed");
        assertFalse(slashing.isEpochSlashed(verifier3, epoch), "verifier: nothing consumed");
        assertEq(token.totalSupply(), supply, "nothing burned");

        uint256 id = openDisputeOf(epoch, 0, CID);
        assertEq(slashing.disputeOf(id).evidenceCid, CID, "the same CID opens the real dispute");
        assertEq(slashEquivocationAs(stranger, epoch - 1, CID), 1_000e18, "and slashes a real equivocation");
    }

    // ------------------------------------------------------------ 3. halving one's own slash

    /// @notice Old attack: during the challenge window the accused provider equivocates on purpose and
    /// reports itself from a sybil account: the equivocation superseded the dispute and half of the
    /// slash came back to the provider as the reporter's reward. Now the reward of a disputed epoch goes
    /// to the dispute's accusers; the sybil gets nothing and the provider loses more than the dispute
    /// would have taken.
    function test_attack_halvingOwnSlashBySelfReport() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 due = slashing.disputeOf(id).due;
        uint256 sybilBefore = token.balanceOf(sybil);
        uint256 providerBefore = token.balanceOf(provider);
        uint256 v1 = token.balanceOf(verifier);
        uint256 v2 = token.balanceOf(verifier2);

        vm.warp(block.timestamp + CHALLENGE_WINDOW / 2);
        uint256 slashed = slashEquivocationAs(sybil, epoch, "bafkreiselfreport");

        assertEq(token.balanceOf(sybil), sybilBefore, "the sybil reporter receives nothing");
        assertEq(token.balanceOf(provider), providerBefore, "nor does the provider");
        assertEq(token.balanceOf(verifier), v1 + 250e18, "accuser 1 gets half the reward");
        assertEq(token.balanceOf(verifier2), v2 + 250e18, "accuser 2 gets the other half");
        assertEq(slashed, 1_000e18, "slashBps of the whole stake");
        assertGe(PROVIDER_STAKE - stakeOf(provider), due, "the provider loses at least the dispute's due");
        assertEq(
            uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Superseded), "superseded"
        );
    }

    // ------------------------------------------------------------ 4. withdrawing during the window

    /// @notice Old attack: a provider that had requested to unstake before the dispute opened withdrew
    /// once the thaw ended inside the challenge window, leaving nothing to slash at execution. Now the
    /// dispute's `due` is held: the withdrawal leaves it behind, a second one is refused, and execution
    /// takes the full due computed at opening.
    function test_attack_withdrawDuringChallengeWindow() public {
        stakeVerifier(verifier, 5_000e18);
        stakeVerifier(verifier2, 5_000e18);
        vm.prank(provider);
        staking.requestUnstake(PROVIDER_STAKE);
        uint64 thawEnd = staking.stakeOf(provider).thawEnd;
        vm.warp(thawEnd - CHALLENGE_WINDOW / 2); // the thaw ends inside the window
        epoch = epochNow();
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 due = slashing.disputeOf(id).due;
        assertEq(due, 1_000e18, "10% of the thawing stake");

        vm.warp(thawEnd);
        vm.prank(provider);
        assertEq(staking.withdraw(), PROVIDER_STAKE - due, "only the unheld part leaves");
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingWithdrawalHeld.selector, provider, due, due, 0)
        );
        vm.prank(provider);
        staking.withdraw();

        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        assertEq(slashing.executeDispute(id), due, "execution takes the full due");
        assertEq(stakeOf(provider), 0, "nothing escaped");
    }

    // ------------------------------------------------------------ 5. idle provider, two verifiers

    /// @notice Old attack: two verifiers at the minimum stake accuse an idle honest provider (no
    /// client could rebut for it) and shared half of the slash. Now execution pays no reward: they gain
    /// nothing, however many disputes they run.
    function test_attack_idleProviderTwoVerifiersGainNothing() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        stakeVerifier(verifier2, VERIFIER_MIN);
        uint256 coalitionBefore = token.balanceOf(verifier) + token.balanceOf(verifier2);
        uint256 id = openDisputeOf(epoch, 0, CID);
        assertEq(staking.heldOf(verifier), 500e18, "bond 1 held");
        assertEq(staking.heldOf(verifier2), 500e18, "bond 2 held");
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        vm.prank(verifier);
        slashing.executeDispute(id);
        assertEq(
            token.balanceOf(verifier) + token.balanceOf(verifier2), coalitionBefore, "the coalition gains nothing"
        );
        assertEq(stakeOf(verifier) + stakeOf(verifier2), 2 * VERIFIER_MIN, "and keeps its stake");
    }

    /// @notice Min-stake verifiers bond their whole stake in one dispute: no second one until it ends.
    /// Richer verifiers are limited to MAX_OPEN_PER_VERIFIER open disputes.
    function test_attack_idleProviderTwoVerifiersBoundedOpenDisputes() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        stakeVerifier(verifier2, VERIFIER_MIN);
        openDisputeOf(epoch, 0, CID);
        bytes[] memory sigs = attestations(keys2(), provider, epoch - 1, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingVerifierStakeHeld.selector, verifier, VERIFIER_MIN)
        );
        slashing.openDispute(provider, epoch - 1, 0, CID, sigs);

        stakeVerifier(verifier, 100_000e18);
        stakeVerifier(verifier2, 100_000e18);
        uint256 max = slashing.MAX_OPEN_PER_VERIFIER();
        for (uint64 i = 1; i < max; ++i) {
            openDisputeOf(epoch - i, 0, CID);
        }
        assertEq(slashing.openDisputesOf(verifier), max, "at the limit");
        sigs = attestations(keys2(), provider, epoch - uint64(max), 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingTooManyOpenDisputes.selector, verifier, max)
        );
        slashing.openDispute(provider, epoch - uint64(max), 0, CID, sigs);
    }

    /// @notice The verifiers probed the provider and vouched for its service (signed service proofs for
    /// the epoch) and then accused it anyway: the provider strikes both, and each loses at least what
    /// it asked the provider to lose.
    function test_attack_idleProviderTwoVerifiersStruckByOwnProofs() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        stakeVerifier(verifier2, VERIFIER_MIN);
        (, IBandwidthMarket.Order memory o1, bytes memory s1) = vouch(verifier, VERIFIER_KEY, epoch, GIB);
        (, IBandwidthMarket.Order memory o2, bytes memory s2) = vouch(verifier2, VERIFIER2_KEY, epoch, GIB);
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 due = slashing.disputeOf(id).due;

        vm.startPrank(provider);
        slashing.rebut(id, o1, GIB, s1); // rebutted already: 1 < quorum remains
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingDisputeNotOpen.selector, id, ISlashingManager.DisputeStatus.Rebutted
            )
        );
        slashing.rebut(id, o2, GIB, s2);
        vm.stopPrank();
        assertGe(VERIFIER_MIN - stakeOf(verifier), due, "the vouching accuser loses at least due");
        assertEq(stakeOf(provider), PROVIDER_STAKE, "the provider loses nothing");
        assertEq(staking.heldOf(verifier2), 0, "the other bond is released once rebutted");
    }

    // ------------------------------------------------------------ 8. griefing a rebuttal

    /// @notice Old attack: 16 accusers each holding 8 registered certificates made the rebuttal revoke
    /// 128 certificates in one transaction (its gas grew with the accusers' certificates, up to
    /// unaffordable). Now each rebut call strikes one accuser, penalizes without revoking anything, and
    /// costs bounded gas.
    /// Measured with gasleft() around each call, 16 accusers with 8 certificates each, struck in
    /// signature order: without --isolate 49,995-56,385 gas for each of the 14 strikes that leave the
    /// dispute open and 69,601 for the 15th, which rebuts it (releasing the provider's hold and the last
    /// bond); with --isolate (each call a whole transaction: 21,000 base, calldata, cold storage)
    /// 96,330-126,619 and 156,313. The ~2k growth per strike is the accuser lookup reading the earlier
    /// (struck) entries, at most MAX_ATTESTATIONS = 16 of them. Bound asserted in both modes: 200,000
    /// per call, whatever the accusers' certificates.
    function test_attack_griefRebuttalWithCertificates() public {
        uint256 n = slashing.MAX_ATTESTATIONS();
        uint256 max = registry.MAX_ACTIVE();
        uint256[] memory keys = new uint256[](n);
        address[] memory accusers = new address[](n);
        IBandwidthMarket.Order[] memory orders = new IBandwidthMarket.Order[](n);
        bytes[] memory proofs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            keys[i] = 0xACC000 + i;
            accusers[i] = vm.addr(keys[i]);
            _fundVerifier(accusers[i]);
            for (uint256 c; c < max; ++c) {
                vm.prank(accusers[i]);
                registry.register(keccak256(abi.encode(accusers[i], c)), CERT_KEY, "bafkreipem", uint64(block.timestamp) + 365 days);
            }
            (, orders[i], proofs[i]) = vouch(accusers[i], keys[i], epoch, GIB);
        }
        uint256 id = slashing.openDispute(provider, epoch, 0, CID, attestations(keys, provider, epoch, 0, CID));

        uint256 quorum = QUORUM;
        for (uint256 i; i + quorum <= n; ++i) {
            uint256 before = gasleft();
            slashing.rebut(id, orders[i], GIB, proofs[i]);
            uint256 used = before - gasleft();
            assertLt(used, 200_000, "one strike costs bounded gas");
            assertEq(registry.activeCount(accusers[i]), max, "the struck accuser's certificates are not revoked");
        }
        assertEq(
            uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Rebutted), "rebutted"
        );
    }

    function _fundVerifier(address who) internal {
        token.transfer(who, 10_000e18);
        vm.startPrank(who);
        token.approve(address(staking), type(uint256).max);
        token.approve(address(market), type(uint256).max);
        staking.stake(IStaking.Role.Verifier, VERIFIER_MIN);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ fuzz

    /// @notice Whatever the stakes, a struck accuser loses at least the `due` the dispute would have
    /// taken from the provider (exactly due: the bond is held, so it is always there to take).
    function testFuzz_attack_struckAccuserLosesAtLeastDue(
        uint256 providerExtra,
        uint256 stake1,
        uint256 stake2,
        uint256 unbond
    ) public {
        providerExtra = bound(providerExtra, 0, 200_000e18);
        stake1 = bound(stake1, VERIFIER_MIN, 50_000e18);
        stake2 = bound(stake2, VERIFIER_MIN, 50_000e18);
        if (providerExtra != 0) {
            vm.prank(provider);
            staking.stake(IStaking.Role.Provider, providerExtra);
        }
        stakeVerifier(verifier, stake1);
        stakeVerifier(verifier2, stake2);
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier, VERIFIER_KEY, epoch, GIB);
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 due = slashing.disputeOf(id).due;
        uint256 want = (PROVIDER_STAKE + providerExtra) * SLASH_BPS / 10_000;
        if (want > CAP_PER_PERIOD) want = CAP_PER_PERIOD;
        if (want > stake1) want = stake1;
        if (want > stake2) want = stake2;
        assertEq(due, want, "due = min(slashBps of stake, cap, each bond)");
        // The accuser may even start to leave during the window: its bond stays.
        unbond = bound(unbond, 0, stake1 - VERIFIER_MIN);
        if (unbond != 0) {
            vm.prank(verifier);
            staking.requestUnstake(unbond);
        }
        uint256 before = stakeOf(verifier);
        slashing.rebut(id, order, GIB, sig);
        assertGe(before - stakeOf(verifier), due, "struck accuser loses at least due");
        assertEq(before - stakeOf(verifier), due, "exactly its bond");
    }

    /// @notice A coalition of 2 or 3 verifiers never increases its token balance (nor its stake) with a
    /// quorum dispute, whether it is executed or (if one of them vouched) rebutted.
    function testFuzz_attack_coalitionNeverGainsFromQuorumDispute(
        uint256 n,
        uint256 stake,
        uint256 providerExtra,
        bool vouched
    ) public {
        n = bound(n, 2, 3);
        stake = bound(stake, VERIFIER_MIN, 20_000e18);
        providerExtra = bound(providerExtra, 0, 100_000e18);
        if (providerExtra != 0) {
            vm.prank(provider);
            staking.stake(IStaking.Role.Provider, providerExtra);
        }
        uint256[] memory keys = new uint256[](n);
        address[] memory members = new address[](n);
        (keys[0], keys[1]) = (VERIFIER_KEY, VERIFIER2_KEY);
        (members[0], members[1]) = (verifier, verifier2);
        if (n == 3) (keys[2], members[2]) = (VERIFIER3_KEY, verifier3);
        for (uint256 i; i < n; ++i) {
            stakeVerifier(members[i], stake);
        }
        IBandwidthMarket.Order memory order;
        bytes memory sig;
        if (vouched) (, order, sig) = vouch(verifier, VERIFIER_KEY, epoch, GIB);
        uint256 balances = _sumBalances(members);
        uint256 stakes = _sumStakes(members);

        uint256 id = slashing.openDispute(provider, epoch, 0, CID, attestations(keys, provider, epoch, 0, CID));
        if (vouched) slashing.rebut(id, order, GIB, sig);
        if (slashing.disputeOf(id).status == ISlashingManager.DisputeStatus.Open) {
            vm.warp(block.timestamp + CHALLENGE_WINDOW);
            vm.prank(members[0]);
            slashing.executeDispute(id);
        }
        assertLe(_sumBalances(members), balances, "the coalition's token balance never increases");
        assertLe(_sumStakes(members), stakes, "nor its stake");
    }

    function _sumBalances(address[] memory list) internal view returns (uint256 sum) {
        for (uint256 i; i < list.length; ++i) {
            sum += token.balanceOf(list[i]);
        }
    }

    function _sumStakes(address[] memory list) internal view returns (uint256 sum) {
        for (uint256 i; i < list.length; ++i) {
            sum += stakeOf(list[i]);
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {SlashingHandler} from "./SlashingHandler.sol";
import {ISlashingManager} from "../../interfaces/ISlashingManager.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {Log} from "./Log.sol";

/// @notice Invariants of SlashingManager + TrustRegistry (with Staking, the market and the token)
/// under random sequences of handler actions (see README.md in this folder).
/// forge-config: default.invariant.fail-on-revert = true
/// forge-config: ci.invariant.fail-on-revert = true
contract SlashingInvariantsTest is MarketFixture {
    uint256 internal constant HANDLER_SEQUENCE = 800;

    SlashingHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new SlashingHandler(token, staking, market, slashing, trust, authorities());
        vm.label(address(handler), "SlashingHandler");
        address[] memory funded = handler.funded();
        for (uint256 i; i < funded.length; ++i) {
            token.transfer(funded[i], 1_000_000e18);
        }
        handler.bootstrap();

        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = SlashingHandler.equivocate.selector;
        selectors[1] = SlashingHandler.openDispute.selector;
        selectors[2] = SlashingHandler.rebut.selector;
        selectors[3] = SlashingHandler.execute.selector;
        selectors[4] = SlashingHandler.setScore.selector;
        selectors[5] = SlashingHandler.verifierStake.selector;
        selectors[6] = SlashingHandler.probeOnSlash.selector;
        selectors[7] = SlashingHandler.warp.selector;
        selectors[8] = SlashingHandler.unstake.selector;
        selectors[9] = SlashingHandler.withdraw.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        excludeSender(address(handler));
        excludeSender(address(staking));
        excludeSender(address(market));
        excludeSender(address(token));
        excludeSender(address(slashing));
        excludeSender(address(trust));
    }

    /// @notice No provider ever loses more than capPerPeriod in one period, and the contract's
    /// per-period totals equal the model's.
    function invariant_capPerPeriodNeverExceeded() public view {
        assertEq(handler.capViolations(), 0, "Invariant violation: more than the cap slashed in a period");
        uint256 cap = slashing.config().capPerPeriod;
        uint256 n = handler.periodCount();
        for (uint256 i; i < n; ++i) {
            (address p, uint256 periodIndex) = handler.periodAt(i);
            uint256 total = slashing.slashedInPeriod(p, periodIndex);
            assertLe(total, cap, "Invariant violation: slashedInPeriod above the cap");
            assertEq(
                total,
                handler.ghostPeriodSlashed(p, periodIndex),
                "Invariant violation: slashedInPeriod differs from the model"
            );
        }
    }

    /// @notice A strike takes exactly the dispute's `due` from the struck accuser and nothing from
    /// anyone else (the provider and every other verifier keep every token), and burns what it takes.
    function invariant_strikeTakesDueFromStruckAccuserOnly() public view {
        assertEq(
            handler.strikeViolations(), 0, "Invariant violation: a strike touched someone else or took other than due"
        );
    }

    /// @notice Each set of attestation signatures opened at most one dispute and is marked used; no
    /// (provider, epoch) was slashed twice by any route.
    function invariant_attestationSingleUse() public view {
        assertEq(handler.digestReuseAccepted(), 0, "Invariant violation: an attestation opened two disputes");
        assertEq(handler.doubleSlashes(), 0, "Invariant violation: a (provider, epoch) slashed twice");
        uint256 n = handler.attestationCount();
        for (uint256 i; i < n; ++i) {
            bytes32 digest = handler.attestationDigestAt(i);
            assertTrue(slashing.isAttestationUsed(digest), "Invariant violation: accepted attestation not marked used");
            assertEq(handler.acceptedDigestUses(digest), 1, "Invariant violation: attestation accepted more than once");
        }
    }

    /// @notice (a) Holds never break the accounting: Staking's token balance equals the sum of
    /// active + thawing over every staker, whatever is held.
    function invariant_stakingBalanceEqualsActivePlusThawing() public view {
        address[] memory stakers = handler.stakers();
        uint256 sum;
        for (uint256 i; i < stakers.length; ++i) {
            IStaking.StakeInfo memory s = staking.stakeOf(stakers[i]);
            sum += uint256(s.active) + s.thawing;
        }
        assertEq(token.balanceOf(address(staking)), sum, "Invariant violation: Staking balance != sum of active + thawing");
    }

    /// @notice (b) For every open dispute the provider's held stake covers its due and so does every
    /// accuser not struck; no hold outlives its dispute: for every staker, heldOf equals the sum of the
    /// dues of the open disputes it is the provider or an unstruck accuser of. The contract's dispute
    /// record equals the model's.
    function invariant_holdsMatchOpenDisputes() public view {
        address[] memory stakers = handler.stakers();
        uint256[] memory sums = new uint256[](stakers.length);
        uint256 n = handler.disputeCount();
        for (uint256 i; i < n; ++i) {
            SlashingHandler.GhostDispute memory g = handler.disputeAt(i);
            ISlashingManager.Dispute memory d = slashing.disputeOf(g.id);
            assertEq(d.remaining, g.remaining, "Invariant violation: remaining accusers differ from the model");
            assertEq(d.struck, g.struck, "Invariant violation: struck accusers differ from the model");
            assertEq(d.due, g.due, "Invariant violation: due differs from the model");
            assertEq(d.status == ISlashingManager.DisputeStatus.Open, g.open, "Invariant violation: open status differs");
            if (!g.open) continue;
            assertGe(staking.heldOf(g.provider), g.due, "Invariant violation: open dispute's provider hold below due");
            sums[_indexOf(stakers, g.provider)] += g.due;
            for (uint256 j; j < g.accusers.length; ++j) {
                if (g.struck & (1 << j) != 0) continue;
                assertGe(staking.heldOf(g.accusers[j]), g.due, "Invariant violation: unstruck accuser's bond below due");
                sums[_indexOf(stakers, g.accusers[j])] += g.due;
            }
        }
        for (uint256 i; i < stakers.length; ++i) {
            assertEq(staking.heldOf(stakers[i]), sums[i], "Invariant violation: a hold outlived its dispute");
            assertEq(handler.ghostHeld(stakers[i]), sums[i], "Invariant violation: held differs from the model");
        }
        assertEq(handler.heldStakeWithdrawn(), 0, "Invariant violation: a withdrawal took held stake");
    }

    /// @notice (c) No accuser's (no verifier's) token balance ever increases from executeDispute.
    function invariant_executeNeverPaysAccusers() public view {
        assertEq(handler.accuserGainOnExecute(), 0, "Invariant violation: an accuser gained from executeDispute");
    }

    /// @notice (d) An equivocation reward for an epoch under dispute goes to the dispute's remaining
    /// accusers, never to the caller; a signer with nothing to slash is refused.
    function invariant_supersedingRewardNeverToCaller() public view {
        assertEq(
            handler.reporterPaidUnderDispute(), 0, "Invariant violation: the reporter was paid for a disputed epoch"
        );
        assertEq(handler.nothingToSlashAccepted(), 0, "Invariant violation: a signer with nothing to slash was slashed");
    }

    /// @notice (e) Every verifier accuses in at most MAX_OPEN_PER_VERIFIER open disputes, and
    /// openDisputesOf equals the number of open disputes where it is an unstruck accuser.
    function invariant_openDisputesPerVerifier() public view {
        address[] memory stakers = handler.stakers();
        uint256 max = slashing.MAX_OPEN_PER_VERIFIER();
        uint256 n = handler.disputeCount();
        for (uint256 v; v < stakers.length; ++v) {
            uint256 count;
            for (uint256 i; i < n; ++i) {
                SlashingHandler.GhostDispute memory g = handler.disputeAt(i);
                if (!g.open) continue;
                for (uint256 j; j < g.accusers.length; ++j) {
                    if (g.accusers[j] == stakers[v] && g.struck & (1 << j) == 0) count++;
                }
            }
            uint256 open = slashing.openDisputesOf(stakers[v]);
            assertLe(open, max, "Invariant violation: a verifier accuses in more than MAX_OPEN_PER_VERIFIER disputes");
            assertEq(open, count, "Invariant violation: openDisputesOf != open disputes it accuses in");
        }
    }

    /// @notice No slash or dispute was accepted for an epoch in the future or more than statuteEpochs old.
    function invariant_statuteOfLimitations() public view {
        assertEq(handler.statuteViolations(), 0, "Invariant violation: evidence outside the statute accepted");
    }

    /// @notice Every score is in [0, 1000] and equals the model, which changes only on accepted calls
    /// of the domain's allowed scorer and on slashes (halving the Network score).
    function invariant_scoresInRangeAndOnlyAuthorizedChanges() public view {
        assertEq(handler.unauthorizedAccepted(), 0, "Invariant violation: an unauthorized score change was accepted");
        address[] memory accounts = handler.scoredAccounts();
        for (uint256 i; i < accounts.length; ++i) {
            for (uint8 d; d < 4; ++d) {
                uint16 score = trust.scoreOf(accounts[i], d);
                assertLe(score, 1000, "Invariant violation: score above 1000");
                assertEq(score, handler.ghostScore(accounts[i], d), "Invariant violation: score differs from the model");
            }
        }
    }

    /// @notice The SlashingManager keeps no token: every slashed token was paid as a reward or burned,
    /// and the supply shrank by exactly the burns.
    function invariant_slashedTokensPaidOrBurned() public view {
        assertEq(token.balanceOf(address(slashing)), 0, "Invariant violation: the slashing manager holds tokens");
        assertEq(
            token.totalSupply() + handler.totalBurned(),
            handler.initialSupply(),
            "Invariant violation: supply + burned != initial supply"
        );
    }

    /// @notice Everything else the handler checked: valid calls accepted, invalid ones refused,
    /// amounts as specified.
    function invariant_handlerSawNoViolation() public view {
        if (handler.violations() != 0) fail(string.concat("Invariant violation: ", handler.firstViolation()));
    }

    function invariant_callSummary() public view {
        string[10] memory names = [
            "equivocate",
            "openDispute",
            "rebut",
            "execute",
            "setScore",
            "verifierStake",
            "probeOnSlash",
            "warp",
            "unstake",
            "withdraw"
        ];
        for (uint256 i; i < names.length; ++i) {
            Log.log(string.concat(names[i], " calls"), handler.calls(names[i]));
            Log.log(string.concat(names[i], " ok"), handler.ok(names[i]));
        }
        Log.log("supersede ok", handler.ok("supersede"));
    }

    /// @notice A fixed pseudo-random sequence reaches every action and keeps every invariant.
    function test_handlerSequenceReachesEveryAction() public {
        uint256 seed = 0x5eed;
        for (uint256 i; i < HANDLER_SEQUENCE; ++i) {
            seed = uint256(keccak256(abi.encode(seed, i)));
            uint256 action = seed % 10;
            uint256 a = seed >> 16;
            uint256 b = seed >> 80;
            if (action == 0) handler.equivocate(a, b, a >> 3, b >> 5);
            else if (action == 1) handler.openDispute(a, b, a >> 5, b >> 7, uint8(a >> 9));
            else if (action == 2) handler.rebut(a, b, a >> 7);
            else if (action == 3) handler.execute(a, b % 2 == 0);
            else if (action == 4) handler.setScore(a, uint8(b), uint16(a >> 11), b >> 13);
            else if (action == 5) handler.verifierStake(a, b, a % 3 == 0);
            else if (action == 6) handler.probeOnSlash(a, address(uint160(b)));
            else if (action == 7) handler.warp(b);
            else if (action == 8) handler.unstake(a, b);
            else handler.withdraw(a, b % 2 == 0);
        }
        string[8] memory musts =
            ["equivocate", "openDispute", "rebut", "execute", "setScore", "verifierStake", "unstake", "withdraw"];
        for (uint256 i; i < musts.length; ++i) {
            assertGt(handler.ok(musts[i]), 0, string.concat("sequence never succeeded at ", musts[i]));
        }
        assertGt(handler.periodCount(), 0, "some provider was slashed");
        assertGt(handler.ok("supersede"), 0, "some equivocation superseded an open dispute");
        invariant_capPerPeriodNeverExceeded();
        invariant_strikeTakesDueFromStruckAccuserOnly();
        invariant_attestationSingleUse();
        invariant_stakingBalanceEqualsActivePlusThawing();
        invariant_holdsMatchOpenDisputes();
        invariant_executeNeverPaysAccusers();
        invariant_supersedingRewardNeverToCaller();
        invariant_openDisputesPerVerifier();
        invariant_statuteOfLimitations();
        invariant_scoresInRangeAndOnlyAuthorizedChanges();
        invariant_slashedTokensPaidOrBurned();
        invariant_handlerSawNoViolation();
    }

    function _indexOf(address[] memory list, address a) internal pure returns (uint256) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == a) return i;
        }
        revert("not a staker");
    }
}

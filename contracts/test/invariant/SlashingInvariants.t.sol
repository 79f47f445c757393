// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {SlashingHandler} from "./SlashingHandler.sol";
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

        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = SlashingHandler.equivocate.selector;
        selectors[1] = SlashingHandler.openDispute.selector;
        selectors[2] = SlashingHandler.rebut.selector;
        selectors[3] = SlashingHandler.execute.selector;
        selectors[4] = SlashingHandler.setScore.selector;
        selectors[5] = SlashingHandler.verifierStake.selector;
        selectors[6] = SlashingHandler.probeOnSlash.selector;
        selectors[7] = SlashingHandler.warp.selector;
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

    /// @notice A rebuttal takes exactly accuserPenaltyBps of each accuser's stake and nothing from
    /// anyone else (the provider and uninvolved verifiers keep every token), and burns what it takes.
    function invariant_rebuttalPenalizesOnlyAccusers() public view {
        assertEq(handler.rebutViolations(), 0, "Invariant violation: a rebuttal touched a non-accuser or mis-burned");
    }

    /// @notice Every evidence CID served at most one accepted slash or dispute, is marked used, and
    /// no (provider, epoch) was slashed twice.
    function invariant_evidenceSingleUse() public view {
        assertEq(handler.reuseAccepted(), 0, "Invariant violation: evidence used twice");
        assertEq(handler.doubleSlashes(), 0, "Invariant violation: a (provider, epoch) slashed twice");
        uint256 n = handler.usedCidCount();
        for (uint256 i; i < n; ++i) {
            bytes32 h = keccak256(bytes(handler.usedCidAt(i)));
            assertTrue(slashing.isEvidenceUsed(h), "Invariant violation: accepted evidence not marked used");
            assertEq(handler.acceptedUses(h), 1, "Invariant violation: evidence accepted more than once");
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
        string[8] memory names =
            ["equivocate", "openDispute", "rebut", "execute", "setScore", "verifierStake", "probeOnSlash", "warp"];
        for (uint256 i; i < names.length; ++i) {
            Log.log(string.concat(names[i], " calls"), handler.calls(names[i]));
            Log.log(string.concat(names[i], " ok"), handler.ok(names[i]));
        }
    }

    /// @notice A fixed pseudo-random sequence reaches every action and keeps every invariant.
    function test_handlerSequenceReachesEveryAction() public {
        uint256 seed = 0x5eed;
        for (uint256 i; i < HANDLER_SEQUENCE; ++i) {
            seed = uint256(keccak256(abi.encode(seed, i)));
            uint256 action = seed % 8;
            uint256 a = seed >> 16;
            uint256 b = seed >> 80;
            if (action == 0) handler.equivocate(a, b, a >> 3, address(uint160(b)));
            else if (action == 1) handler.openDispute(a, b, a >> 5, b >> 7, uint8(a >> 9));
            else if (action == 2) handler.rebut(a, b, a % 3 == 0);
            else if (action == 3) handler.execute(a, b % 2 == 0);
            else if (action == 4) handler.setScore(a, uint8(b), uint16(a >> 11), b >> 13);
            else if (action == 5) handler.verifierStake(a, b, a % 3 == 0);
            else if (action == 6) handler.probeOnSlash(a, address(uint160(b)));
            else handler.warp(b);
        }
        string[6] memory musts = ["equivocate", "openDispute", "rebut", "execute", "setScore", "verifierStake"];
        for (uint256 i; i < musts.length; ++i) {
            assertGt(handler.ok(musts[i]), 0, string.concat("sequence never succeeded at ", musts[i]));
        }
        assertGt(handler.periodCount(), 0, "some provider was slashed");
        invariant_capPerPeriodNeverExceeded();
        invariant_rebuttalPenalizesOnlyAccusers();
        invariant_evidenceSingleUse();
        invariant_statuteOfLimitations();
        invariant_scoresInRangeAndOnlyAuthorizedChanges();
        invariant_slashedTokensPaidOrBurned();
        invariant_handlerSawNoViolation();
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {BandwidthMarket} from "../../BandwidthMarket.sol";
import {IBandwidthMarket} from "../../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {ICertificateRegistry} from "../../interfaces/ICertificateRegistry.sol";
import {FlowNetHandler} from "./FlowNetHandler.sol";
import {Log} from "./Log.sol";

/// @notice System invariants of Staking + BandwidthMarket + FlowToken under a random sequence of
/// handler actions (see README.md in this folder). Only the handler is fuzzed; it keeps the ghost
/// model these functions compare with the contracts after every call.
/// The handler never reverts by design (it records what it sees instead), so a handler revert here
/// means a handler bug that could have discarded a recorded violation: fail on it.
/// forge-config: default.invariant.fail-on-revert = true
/// forge-config: ci.invariant.fail-on-revert = true
contract FlowNetInvariantsTest is MarketFixture {
    uint256 internal constant ACTOR_FUNDS = 1_000_000e18;
    uint256 internal constant HANDLER_SEQUENCE = 2_000;

    FlowNetHandler internal handler;
    BandwidthMarket internal otherMarket;

    function setUp() public override {
        super.setUp();
        // A second, independent deployment whose domain only differs by verifyingContract.
        otherMarket = deploySet().market;
        vm.label(address(otherMarket), "OtherBandwidthMarket");

        handler = new FlowNetHandler(token, staking, market, otherMarket, slasher);
        vm.label(address(handler), "FlowNetHandler");
        address[] memory actors = handler.actors();
        for (uint256 i; i < actors.length; ++i) {
            token.transfer(actors[i], ACTOR_FUNDS);
        }
        handler.bootstrap();

        bytes4[] memory selectors = new bytes4[](16);
        selectors[0] = FlowNetHandler.stake.selector;
        selectors[1] = FlowNetHandler.requestUnstake.selector;
        selectors[2] = FlowNetHandler.withdraw.selector;
        selectors[3] = FlowNetHandler.setOffer.selector;
        selectors[4] = FlowNetHandler.openOrder.selector;
        selectors[5] = FlowNetHandler.redeem.selector;
        selectors[6] = FlowNetHandler.redeemMany.selector;
        selectors[7] = FlowNetHandler.close.selector;
        selectors[8] = FlowNetHandler.reclaim.selector;
        selectors[9] = FlowNetHandler.slash.selector;
        selectors[10] = FlowNetHandler.warp.selector;
        selectors[11] = FlowNetHandler.probeForeignSignature.selector;
        selectors[12] = FlowNetHandler.probeInvalidCall.selector;
        selectors[13] = FlowNetHandler.registerCertificate.selector;
        selectors[14] = FlowNetHandler.cancel.selector;
        selectors[15] = FlowNetHandler.refuse.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        // The handler pranks as its actors; keep the system's own addresses out of the sender pool.
        excludeSender(address(handler));
        excludeSender(address(staking));
        excludeSender(address(market));
        excludeSender(address(token));
        excludeSender(address(registry));
    }

    // ------------------------------------------------------------------ token conservation

    /// @notice Staking holds exactly the active + thawing stake of all accounts, which matches the
    /// handler's model account by account.
    function invariant_stakingBalanceEqualsActivePlusThawing() public view {
        address[] memory accounts = _accounts();
        uint256 active;
        uint256 thawing;
        for (uint256 i; i < accounts.length; ++i) {
            IStaking.StakeInfo memory s = staking.stakeOf(accounts[i]);
            FlowNetHandler.GhostStake memory g = handler.ghostStakeOf(accounts[i]);
            active += s.active;
            thawing += s.thawing;
            assertEq(s.active, g.active, "Invariant violation: active stake differs from the model");
            assertEq(s.thawing, g.thawing, "Invariant violation: thawing stake differs from the model");
            assertEq(s.thawEnd, g.thawEnd, "Invariant violation: thawEnd differs from the model");
            assertEq(s.pricePerGiB, g.price, "Invariant violation: offer price differs from the model");
            assertEq(uint256(s.role), uint256(g.role), "Invariant violation: role differs from the model");
        }
        uint256 held = token.balanceOf(address(staking));
        assertEq(held, active + thawing, "Invariant violation: staking balance != sum of active + thawing stake");
        assertEq(
            held,
            handler.ghostSumActive() + handler.ghostSumThawing(),
            "Invariant violation: staking balance != ghost active + thawing"
        );
    }

    /// @notice The market holds exactly the unpaid part of every open order.
    function invariant_marketBalanceEqualsOpenEscrow() public view {
        uint256 n = handler.orderCount();
        uint256 escrow;
        for (uint256 i; i < n; ++i) {
            FlowNetHandler.GhostOrder memory o = handler.orderAt(i);
            if (!o.closed) escrow += o.order.deposit - o.paid;
        }
        uint256 held = token.balanceOf(address(market));
        assertEq(held, escrow, "Invariant violation: market balance != sum over open orders of (deposit - paid)");
        assertEq(held, handler.ghostEscrow(), "Invariant violation: market balance != ghost escrow");
        assertEq(
            handler.ghostDeposited(),
            handler.ghostPaidOut() + handler.ghostRefunded() + escrow,
            "Invariant violation: deposits != payouts + refunds + escrow"
        );
    }

    /// @notice No token is created or lost: the known holders own the whole supply, every actor holds
    /// what the model says (so payouts only ever reach the order's provider or client, never the
    /// sender), and the slasher holds exactly what was slashed.
    function invariant_supplyConservedAcrossSystem() public view {
        address[] memory accounts = _accounts();
        uint256 sum;
        for (uint256 i; i < accounts.length; ++i) {
            sum += token.balanceOf(accounts[i]);
        }
        address[] memory actors = handler.actors();
        for (uint256 i; i < actors.length; ++i) {
            assertEq(
                token.balanceOf(actors[i]),
                handler.ghostBalance(actors[i]),
                "Invariant violation: an actor's balance differs from the model (payout routed wrongly)"
            );
        }
        sum += token.balanceOf(address(this));
        sum += token.balanceOf(slasher);
        sum += token.balanceOf(address(staking));
        sum += token.balanceOf(address(market));
        sum += token.balanceOf(address(handler));
        sum += token.balanceOf(address(otherMarket));
        assertEq(token.totalSupply(), SUPPLY, "Invariant violation: total supply changed");
        assertEq(sum, token.totalSupply(), "Invariant violation: total supply != sum of balances of known holders");
        assertEq(
            token.balanceOf(slasher),
            handler.ghostTotalSlashed(),
            "Invariant violation: slasher balance != total slashed"
        );
    }

    // ------------------------------------------------------------------ staking safety

    /// @notice No withdrawal ever succeeds before the caller's thawEnd.
    function invariant_noWithdrawalBeforeThawEnd() public view {
        assertEq(handler.earlyWithdrawals(), 0, "Invariant violation: a withdrawal succeeded before thawEnd");
    }

    /// @notice Each provider's locked stake is exactly the sum of ceil(deposit * lockBps / 10_000) over
    /// its open orders (slashing never reduces locked); nobody else has locked stake.
    function invariant_lockedStakeMatchesOpenOrders() public view {
        uint256 bps = market.lockBps();
        address[] memory ps = handler.providers();
        uint256[] memory expected = new uint256[](ps.length);
        uint256 n = handler.orderCount();
        for (uint256 i; i < n; ++i) {
            FlowNetHandler.GhostOrder memory o = handler.orderAt(i);
            uint256 lock = (uint256(o.order.deposit) * bps + 9_999) / 10_000;
            assertEq(o.lock, lock, "Invariant violation: order lock != ceil(deposit * lockBps / 10000)");
            if (o.closed) continue;
            for (uint256 j; j < ps.length; ++j) {
                if (ps[j] == o.order.provider) expected[j] += lock;
            }
        }
        for (uint256 j; j < ps.length; ++j) {
            assertEq(
                staking.stakeOf(ps[j]).locked,
                expected[j],
                "Invariant violation: provider locked stake != sum of its open orders' locks"
            );
            assertEq(
                handler.ghostStakeOf(ps[j]).locked,
                expected[j],
                "Invariant violation: ghost locked != open orders' locks"
            );
        }
        address[] memory accounts = _accounts();
        uint256 totalLocked;
        for (uint256 i; i < accounts.length; ++i) {
            totalLocked += staking.stakeOf(accounts[i]).locked;
        }
        uint256 sumExpected;
        for (uint256 j; j < ps.length; ++j) {
            sumExpected += expected[j];
        }
        assertEq(totalLocked, sumExpected, "Invariant violation: stake locked for an account that is not a provider");
    }

    // ------------------------------------------------------------------ order accounting

    /// @notice paid <= deposit always; closed orders split their deposit exactly into paid + refunded;
    /// open orders have refunded nothing; on-chain paid and status equal the model's; nonces are 1..n.
    function invariant_orderAccounting() public view {
        uint256 n = handler.orderCount();
        assertEq(market.nextNonce(), n + 1, "Invariant violation: nextNonce != orders opened + 1");
        for (uint256 i; i < n; ++i) {
            FlowNetHandler.GhostOrder memory o = handler.orderAt(i);
            IBandwidthMarket.OrderState memory st = market.orderState(o.id);
            assertEq(o.order.nonce, i + 1, "Invariant violation: order nonces are not sequential");
            assertEq(market.orderIdOf(o.order), o.id, "Invariant violation: order id != hash of its terms");
            assertLe(st.paid, o.order.deposit, "Invariant violation: an order paid out more than its deposit");
            assertEq(st.paid, o.paid, "Invariant violation: orderState(id).paid != ghost paid");
            if (o.closed) {
                assertEq(
                    uint256(st.status),
                    uint256(IBandwidthMarket.Status.Closed),
                    "Invariant violation: closed order not Closed"
                );
                assertEq(
                    o.paid + o.refunded,
                    o.order.deposit,
                    "Invariant violation: closed order's paid + refunded != deposit"
                );
                if (o.cancelled) {
                    assertEq(o.paid, 0, "Invariant violation: an order with a payment was cancelled");
                    assertEq(
                        o.refunded, o.order.deposit, "Invariant violation: a cancel refunded less than the deposit"
                    );
                }
            } else {
                assertEq(
                    uint256(st.status),
                    uint256(IBandwidthMarket.Status.Open),
                    "Invariant violation: open order not Open"
                );
                assertEq(o.refunded, 0, "Invariant violation: an open order refunded something");
            }
            assertLe(
                o.refunded,
                o.order.deposit - o.paid,
                "Invariant violation: an order refunded more than its unpaid remainder"
            );
        }
    }

    /// @notice Every provider's refusal of every client equals the model (set by refuse and by a
    /// cancel that refuses, never by anything else), and no order was opened by a refused client
    /// (the handler records that as a violation).
    function invariant_refusalsMatchModel() public view {
        address[] memory ps = handler.providers();
        address[] memory actors = handler.actors();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < actors.length; ++j) {
                assertEq(
                    market.refusedUntil(ps[i], actors[j]),
                    handler.ghostRefusedUntil(ps[i], actors[j]),
                    "Invariant violation: a refusal differs from the model"
                );
            }
        }
    }

    // ------------------------------------------------------------------ signatures and refusals

    /// @notice A receipt (or close signature) signed for another order, another chain id or another
    /// contract never verifies.
    function invariant_receiptBoundToOrderChainAndContract() public view {
        assertEq(
            handler.foreignAccepted(),
            0,
            "Invariant violation: a receipt verified for another order, chain id or contract"
        );
    }

    /// @notice Staking's certificate hook: a certificate is revoked exactly when, after it was
    /// registered, its owner was slashed for a non-zero amount or withdrew its last stake, with the
    /// reason (Slashed or Unbonded) of the first of those; nothing else revokes. A certificate is
    /// valid exactly when it is unrevoked and its owner never staked or has stake bonded (active or
    /// thawing). Each actor's count of unrevoked certificates matches the model.
    function invariant_certificatesRevokedOnSlashOrFullUnbond() public view {
        bytes32[] memory certs = handler.certificates();
        for (uint256 i; i < certs.length; ++i) {
            address owner = handler.certOwner(certs[i]);
            ICertificateRegistry.Certificate memory c = registry.status(certs[i], owner);
            uint256 expected = handler.ghostCertRevokedAs(certs[i]);
            assertEq(
                c.revoked, expected != 0, "Invariant violation: certificate revocation differs from the hook model"
            );
            if (expected != 0) {
                assertEq(uint256(c.reason) + 1, expected, "Invariant violation: hook revocation reason differs");
            }
            IStaking.StakeInfo memory s = staking.stakeOf(owner);
            bool stakeCounts = s.role == IStaking.Role.None || uint256(s.active) + s.thawing != 0;
            assertEq(
                registry.isValid(certs[i], owner),
                expected == 0 && stakeCounts,
                "Invariant violation: a certificate counts without its owner's stake, or not despite it"
            );
        }
        address[] memory actors = handler.actors();
        for (uint256 i; i < actors.length; ++i) {
            assertEq(
                registry.activeCount(actors[i]),
                handler.ghostLiveCerts(actors[i]),
                "Invariant violation: active certificate count differs from the hook model"
            );
        }
    }

    /// @notice Calls the spec forbids are refused (stale/overpriced/over-deposit receipts, wrong
    /// signer, close by non-client, early reclaim, slash by non-slasher, over-unstake), valid calls
    /// are accepted, and the handler saw nothing else amiss.
    function invariant_handlerSawNoViolation() public view {
        uint256 count = handler.violationCount();
        if (count != 0) {
            fail(string.concat("Invariant violation: ", handler.violation(0), " (", vm.toString(count), " total)"));
        }
        assertEq(handler.invalidAccepted(), 0, "Invariant violation: a forbidden call was accepted");
        assertEq(handler.unexpectedReverts(), 0, "Invariant violation: a valid call was refused");
    }

    // ------------------------------------------------------------------ reviewer aid

    /// @notice Not a property: prints the last run's per-action calls / ok / rejected / skipped (-vv).
    function invariant_callSummary() public view {
        _logSummary();
    }

    /// @notice Not a campaign: a fixed pseudo-random sequence of handler actions, long enough to show
    /// that every action is usually a valid call that the contracts accept (the campaign's handler
    /// calls never revert, so forge's own revert counts cannot show this). Deterministic, so its
    /// "every action succeeded at least once" assertions cannot be flaky. Run with -vv for the table.
    function test_handlerSequenceReachesEveryAction() public {
        for (uint256 i; i < HANDLER_SEQUENCE; ++i) {
            uint256 r = uint256(keccak256(abi.encode("flownet-handler", i)));
            _dispatch(r % 16, r);
        }
        _logSummary();
        string[] memory names = handler.actionNames();
        for (uint256 i; i < 11; ++i) {
            assertGt(handler.counter(names[i]).ok, 0, string.concat("handler action never succeeded: ", names[i]));
        }
        // Probes count a refusal (the required outcome) as "rejected" and an acceptance as "ok".
        for (uint256 i = 11; i < 13; ++i) {
            assertGt(handler.counter(names[i]).rejected, 0, string.concat("probe never sent: ", names[i]));
        }
        assertGt(handler.foreignAttempts(), 0, "no foreign-signature probe was sent");
        assertGt(handler.earlyWithdrawAttempts(), 0, "no early withdrawal was attempted");
        assertGt(handler.counter("registerCertificate").ok, 0, "no certificate was registered");
        assertGt(handler.counter("cancel").ok, 0, "no order was cancelled");
        assertGt(handler.counter("cancel").rejected, 0, "no forbidden cancel was refused");
        assertGt(handler.counter("refuse").ok, 0, "no client was refused");
        assertGt(handler.refusedOpenAttempts(), 0, "no refused client tried to open an order");
        assertGt(handler.refusedVerifierOpens(), 0, "no refused verifier tried to open an order");
        assertGt(handler.counter("verifierOpen").ok, 0, "no refused verifier opened an order");
        _assertSomeCancelledAndRefused();
        _assertHookRevokedSome();
        invariant_stakingBalanceEqualsActivePlusThawing();
        invariant_marketBalanceEqualsOpenEscrow();
        invariant_supplyConservedAcrossSystem();
        invariant_noWithdrawalBeforeThawEnd();
        invariant_lockedStakeMatchesOpenOrders();
        invariant_orderAccounting();
        invariant_receiptBoundToOrderChainAndContract();
        invariant_handlerSawNoViolation();
        invariant_certificatesRevokedOnSlashOrFullUnbond();
        invariant_refusalsMatchModel();
    }

    /// @dev The fixed sequence cancelled some orders and left some provider refusing some client.
    function _assertSomeCancelledAndRefused() internal view {
        uint256 cancelled;
        uint256 n = handler.orderCount();
        for (uint256 i; i < n; ++i) {
            if (handler.orderAt(i).cancelled) cancelled++;
        }
        assertGt(cancelled, 0, "no order was cancelled");
        address[] memory ps = handler.providers();
        address[] memory actors = handler.actors();
        bool refusing;
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < actors.length; ++j) {
                refusing = refusing || market.refusedUntil(ps[i], actors[j]) != 0;
            }
        }
        assertTrue(refusing, "no refusal was ever recorded");
    }

    /// @dev The fixed sequence reached both hook paths: some certificate revoked as Slashed, some as Unbonded.
    function _assertHookRevokedSome() internal view {
        bytes32[] memory certs = handler.certificates();
        bool slashed;
        bool unbonded;
        for (uint256 i; i < certs.length; ++i) {
            ICertificateRegistry.RevocationReason reason = registry.status(certs[i], handler.certOwner(certs[i])).reason;
            slashed = slashed || reason == ICertificateRegistry.RevocationReason.Slashed;
            unbonded = unbonded || reason == ICertificateRegistry.RevocationReason.Unbonded;
        }
        assertTrue(slashed, "no certificate was revoked by a slash");
        assertTrue(unbonded, "no certificate was revoked by a full unbond");
    }

    // ------------------------------------------------------------------ helpers

    function _dispatch(uint256 which, uint256 r) internal {
        uint256 a = uint256(keccak256(abi.encode(r, 1)));
        uint256 b = uint256(keccak256(abi.encode(r, 2)));
        uint256 c = uint256(keccak256(abi.encode(r, 3)));
        uint256 d = uint256(keccak256(abi.encode(r, 4)));
        if (which == 0) handler.stake(a, b);
        else if (which == 1) handler.requestUnstake(a, b);
        else if (which == 2) handler.withdraw(a, b);
        else if (which == 3) handler.setOffer(a, b);
        else if (which == 4) handler.openOrder(a, b, c, d, r);
        else if (which == 5) handler.redeem(a, b, c, d);
        else if (which == 6) handler.redeemMany(a, b, c);
        else if (which == 7) handler.close(a, b);
        else if (which == 8) handler.reclaim(a, b, c);
        else if (which == 9) handler.slash(a, b);
        else if (which == 10) handler.warp(a);
        else if (which == 11) handler.probeForeignSignature(a, b, c, d, r);
        else if (which == 12) handler.probeInvalidCall(a, b, c, d);
        else if (which == 13) handler.registerCertificate(a);
        else if (which == 14) handler.cancel(a, b, c);
        else handler.refuse(a, b, c);
    }

    function _logSummary() internal view {
        string[] memory names = handler.actionNames();
        Log.log("---- FlowNet handler call summary (calls, ok, rejected, skipped) ----");
        Log.log(
            "(probes: rejected = correctly refused, ok = wrongly accepted; bootstrap/autoOpen are not fuzzed calls)"
        );
        for (uint256 i; i < names.length; ++i) {
            FlowNetHandler.Counter memory c = handler.counter(names[i]);
            Log.log(
                string.concat(
                    names[i],
                    ": ",
                    vm.toString(c.calls),
                    ", ",
                    vm.toString(c.ok),
                    ", ",
                    vm.toString(c.rejected),
                    ", ",
                    vm.toString(c.skipped)
                )
            );
        }
        Log.log("orders opened", handler.orderCount());
        Log.log("orders open", handler.openOrderCount());
        Log.log("early withdraw attempts", handler.earlyWithdrawAttempts());
        Log.log("foreign-signature probes", handler.foreignAttempts());
        Log.log("other must-fail probes", handler.invalidAttempts());
        Log.log("opens by refused clients", handler.refusedOpenAttempts());
        Log.log("opens by refused verifiers that could accuse", handler.refusedVerifierOpens());
        Log.log("total slashed", handler.ghostTotalSlashed());
        Log.log("time elapsed (s)", handler.ghostTime() - 1_700_000_000);
    }

    /// @dev Every account that can hold stake or tokens apart from the system contracts.
    function _accounts() internal view returns (address[] memory all) {
        address[] memory actors = handler.actors();
        all = new address[](actors.length + 4);
        for (uint256 i; i < actors.length; ++i) {
            all[i] = actors[i];
        }
        all[actors.length] = provider;
        all[actors.length + 1] = client;
        all[actors.length + 2] = verifier;
        all[actors.length + 3] = stranger;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "./utils/MarketFixture.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @notice Issue 11, finding 6: a client could lock all of a provider's unlocked stake for
/// `maxDuration + grace` (31 days here) at no cost, then reclaim its whole deposit, and the provider
/// had no way to release it. Each test plays the attack against the current contracts and asserts
/// that the provider gets its stake back, the client its deposit, and nobody anything else.
/// @dev `cancel` and its errors are named by signature (not through the interface) so that this file
/// also compiles against a market without them: there these tests fail on their assertions, which is
/// how they show the attack on the code before the fix. BandwidthMarket.t.sol tests the same calls
/// through the interface.
contract MarketGriefingTest is MarketFixture {
    uint256 internal constant STAKE = 10_000e18;
    /// @dev The deposit whose lock (LOCK_BPS of it) is the provider's whole stake.
    uint256 internal constant ALL_OF_IT = STAKE * 10_000 / LOCK_BPS;
    uint256 internal constant GRIEFER_KEY = 0x6E1EF;
    uint256 internal constant PUPPET_KEY = 0x9099E7;
    bytes4 internal constant CLIENT_REFUSED = bytes4(keccak256("MarketClientRefused(address,address,uint256)"));
    bytes4 internal constant ORDER_ACCEPTED = bytes4(keccak256("MarketOrderAccepted(bytes32,uint256)"));

    address internal griefer;
    address internal puppet; // another address of the griefer's

    function setUp() public override {
        super.setUp();
        griefer = vm.addr(GRIEFER_KEY);
        puppet = vm.addr(PUPPET_KEY);
        vm.label(griefer, "griefer");
        vm.label(puppet, "puppet");
        token.transfer(griefer, FUNDS);
        vm.prank(griefer);
        token.approve(address(market), type(uint256).max);
        stakeProvider(STAKE);
    }

    // ------------------------------------------------------------ helpers

    /// @dev The griefer opens the longest order whose lock takes all of the provider's unlocked stake.
    function _lockEverything() internal returns (bytes32 id, IBandwidthMarket.Order memory o) {
        (id, o) = openOrderAs(griefer, provider, ALL_OF_IT, MAX_DURATION, PRICE);
        assertEq(staking.unlockedStake(provider), 0, "the griefer's order locked all of the provider's stake");
    }

    function _cancel(address caller, bytes32 id, IBandwidthMarket.Order memory o, uint64 refuseUntil)
        internal
        returns (bool ok, bytes memory returned)
    {
        vm.prank(caller);
        (ok, returned) = address(market)
            .call(
                abi.encodeWithSignature(
                    "cancel(bytes32,(uint64,address,address,uint96,uint96,uint64),uint64)", id, o, refuseUntil
                )
            );
    }

    function _openAs(address who, uint256 deposit) internal returns (bool ok, bytes memory returned) {
        vm.prank(who);
        (ok, returned) =
            address(market).call(abi.encodeCall(IBandwidthMarket.openOrder, (provider, deposit, 1 days, PRICE)));
    }

    /// @dev The stake is usable again: another client can open an order and the provider can unstake.
    function _assertStakeUsable(string memory what) internal {
        assertEq(staking.stakeOf(provider).locked, 0, string.concat(what, ": nothing locked"));
        assertEq(staking.unlockedStake(provider), STAKE, string.concat(what, ": the whole stake is unlocked"));
        openOrderAs(client, provider, 100e18, 1 days, PRICE);
        vm.prank(provider);
        staking.requestUnstake(1_000e18);
        assertEq(staking.stakeOf(provider).thawing, 1_000e18, string.concat(what, ": the provider can unstake"));
    }

    // ------------------------------------------------------------ 1. the lock itself

    /// @notice The attack as reported: the griefer locks everything, nobody else can buy and the
    /// provider cannot unstake. Now the provider cancels the order it never accepted: its stake is
    /// unlocked at once, exactly, and the griefer gets its deposit back, no more and no less.
    function test_attack_clientLocksAllStake_providerCancelsAndGetsItBack() public {
        uint256 grieferBefore = token.balanceOf(griefer);
        uint256 providerBefore = token.balanceOf(provider);
        (bytes32 id, IBandwidthMarket.Order memory o) = _lockEverything();

        (bool opened,) = _openAs(client, 100e18);
        assertFalse(opened, "while locked, no other client can buy");
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 1_000e18, 0)
        );
        vm.prank(provider);
        staking.requestUnstake(1_000e18);

        (bool ok,) = _cancel(provider, id, o, 0);
        assertTrue(ok, "the provider could not cancel an order it never accepted (its stake stays locked 31 days)");

        assertEq(uint256(market.orderState(id).status), uint256(IBandwidthMarket.Status.Closed), "order closed");
        assertEq(token.balanceOf(griefer), grieferBefore, "the client got its whole deposit back");
        assertEq(token.balanceOf(provider), providerBefore, "the provider kept nothing of it");
        assertEq(token.balanceOf(address(market)), 0, "nothing left in escrow");
        _assertStakeUsable("after the cancel");
    }

    /// @notice Nobody but the provider can cancel: not the client (it could use cancel to get out of
    /// an order it did use), not anyone else.
    function test_attack_onlyTheProviderCancels() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _lockEverything();
        (bool byClient,) = _cancel(griefer, id, o, 0);
        (bool byStranger,) = _cancel(stranger, id, o, 0);
        assertFalse(byClient, "the client cancelled");
        assertFalse(byStranger, "a stranger cancelled");
        (bool byProvider,) = _cancel(provider, id, o, 0);
        assertTrue(byProvider, "the provider could not cancel");
    }

    // ------------------------------------------------------------ 2. pinning the lock with 1 wei

    /// @notice The obvious bypass of a "cancel only while unpaid" rule: the griefer signs a 1-wei
    /// receipt for its own order and has another of its addresses redeem it, so that the order is
    /// "paid" and no longer cancellable. Only the provider may redeem an order's first receipt, so the
    /// redemption is refused and the provider still cancels.
    function test_attack_selfRedeemedReceiptCannotPinTheLock() public {
        uint256 grieferBefore = token.balanceOf(griefer);
        (bytes32 id, IBandwidthMarket.Order memory o) = _lockEverything();
        uint256 bytes_ = bytesFor(1, PRICE);
        IBandwidthMarket.Redemption memory r = IBandwidthMarket.Redemption({
            orderId: id,
            order: o,
            cumulativeBytes: bytes_,
            cumulativeAmount: 1,
            signature: signReceipt(GRIEFER_KEY, id, bytes_, 1)
        });

        vm.prank(puppet);
        (bool pinned,) = address(market).call(abi.encodeCall(IBandwidthMarket.redeem, (r)));
        assertFalse(pinned, "the griefer's own 1-wei redemption made the order uncancellable");
        vm.prank(griefer);
        (pinned,) = address(market).call(abi.encodeCall(IBandwidthMarket.redeem, (r)));
        assertFalse(pinned, "the griefer redeemed its own first receipt");
        assertEq(market.orderState(id).paid, 0, "nothing paid");

        (bool ok,) = _cancel(provider, id, o, 0);
        assertTrue(ok, "the provider could not cancel");
        assertEq(token.balanceOf(griefer), grieferBefore, "the client got its whole deposit back");
        _assertStakeUsable("after the cancel");
    }

    // ------------------------------------------------------------ 3. locking again at once

    /// @notice After a cancel, the griefer opens the same order again. The provider refuses it in the
    /// cancel: the griefer cannot lock the stake again until the refusal ends, while honest clients
    /// can buy; it would need another funded address for every new lock.
    function test_attack_refusedClientCannotLockAgainAtOnce() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _lockEverything();
        uint64 until = uint64(block.timestamp + 1 days);
        (bool ok,) = _cancel(provider, id, o, until);
        assertTrue(ok, "the provider could not cancel and refuse");

        (bool again, bytes memory why) = _openAs(griefer, ALL_OF_IT);
        assertFalse(again, "the refused client locked the stake again");
        assertEq(
            keccak256(why),
            keccak256(abi.encodeWithSelector(CLIENT_REFUSED, provider, griefer, until)),
            "refused as a refused client"
        );
        (bool honest,) = _openAs(client, 100e18);
        assertTrue(honest, "an honest client could not buy");

        vm.warp(until);
        (again,) = _openAs(griefer, 100e18);
        assertTrue(again, "the refusal did not end at refusedUntil");
    }

    // ------------------------------------------------------------ 4. the provider side

    /// @notice The other direction: a provider that served and redeemed must not be able to cancel
    /// (a cancel refunds the whole deposit, it would also undo what it owes). Once it accepted the
    /// order, only the old ways end it, and the client's refund is deposit - paid as before.
    function test_attack_providerCannotCancelAnAcceptedOrder() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, 100e18, 1 days, PRICE);
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        vm.prank(provider);
        market.redeem(r);

        (bool ok, bytes memory why) = _cancel(provider, id, o, 0);
        assertFalse(ok, "the provider cancelled an order it had accepted");
        assertEq(
            keccak256(why),
            keccak256(abi.encodeWithSelector(ORDER_ACCEPTED, id, 10e18)),
            "refused as accepted"
        );
        vm.warp(o.expiry + GRACE);
        uint256 clientBefore = token.balanceOf(client);
        assertEq(market.reclaim(id, o), 90e18, "the client reclaims deposit - paid");
        assertEq(token.balanceOf(client), clientBefore + 90e18, "refunded");
    }
}

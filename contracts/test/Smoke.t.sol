// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "./utils/MarketFixture.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";

contract SmokeTest is MarketFixture {
    function test_round() public {
        stakeProvider(10_000e18);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        vm.snapshotGasLastCall("openOrder");
        market.redeem(receipt(id, order, 10e18));
        vm.snapshotGasLastCall("redeem first");
        market.redeem(receipt(id, order, 20e18));
        vm.snapshotGasLastCall("redeem later");
        assertEq(token.balanceOf(address(market)), 80e18, "escrow");
    }
}

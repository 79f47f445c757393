// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title Pricing math of the bandwidth market
/// @notice Pure functions shared by the market and its tests (and mirrored in flownet/core/pricing.py).
library Pricing {
    /// @notice Bytes in one GiB, the unit prices are quoted in.
    uint256 internal constant GIB = 1 << 30;

    uint256 private constant BPS = 10_000;

    /// @notice The most a client can owe for `bytes_` at `pricePerGiB`: bytes × price / GiB, rounded
    /// up so a receipt for a partial GiB can carry a whole token unit.
    function costOf(uint256 bytes_, uint256 pricePerGiB) internal pure returns (uint256) {
        return Math.mulDiv(bytes_, pricePerGiB, GIB, Math.Rounding.Ceil);
    }

    /// @notice Provider stake locked for an order of `deposit` at `lockBps` basis points, rounded up so
    /// a small order still locks something.
    function lockFor(uint256 deposit, uint256 lockBps) internal pure returns (uint256) {
        return Math.mulDiv(deposit, lockBps, BPS, Math.Rounding.Ceil);
    }
}

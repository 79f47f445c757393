// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketFixture} from "./utils/MarketFixture.sol";
import {Pricing} from "../libraries/Pricing.sol";

/// @notice Exposes the internal Pricing library as external calls.
contract PricingHarness {
    function gib() external pure returns (uint256) {
        return Pricing.GIB;
    }

    function costOf(uint256 bytes_, uint256 pricePerGiB) external pure returns (uint256) {
        return Pricing.costOf(bytes_, pricePerGiB);
    }

    function lockFor(uint256 deposit, uint256 lockBps) external pure returns (uint256) {
        return Pricing.lockFor(deposit, lockBps);
    }
}

/// @notice Unit and fuzz tests of Pricing.costOf and Pricing.lockFor.
contract PricingTest is MarketFixture {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX = type(uint256).max;

    PricingHarness internal pricing;

    function setUp() public override {
        super.setUp();
        pricing = new PricingHarness();
    }

    function _panic(uint256 code) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("Panic(uint256)", code);
    }

    /// @dev Full-width product [hi lo] = a * b (Remco Bloemen's trick), independent of OpenZeppelin.
    function _mul512(uint256 a, uint256 b) internal pure returns (uint256 hi, uint256 lo) {
        unchecked {
            lo = a * b;
            uint256 mm = mulmod(a, b, MAX);
            hi = mm - lo - (mm < lo ? 1 : 0);
        }
    }

    // ================================================================ GIB

    function test_GIB_is2pow30() public view {
        assertEq(pricing.gib(), 1 << 30, "GIB");
        assertEq(pricing.gib(), 1_073_741_824, "GIB in bytes");
    }

    // ================================================================ costOf: exact values

    function test_costOf_wholeGiBs() public view {
        assertEq(pricing.costOf(GIB, PRICE), PRICE, "1 GiB");
        assertEq(pricing.costOf(10 * GIB, 3), 30, "10 GiB at 3");
        assertEq(pricing.costOf(GIB, 1), 1, "1 GiB at 1");
    }

    function test_costOf_exactFractionsAreNotRoundedUp() public view {
        assertEq(pricing.costOf(GIB / 2, 2), 1, "half GiB at 2");
        assertEq(pricing.costOf(GIB / 4, 4e18), 1e18, "quarter GiB");
        assertEq(pricing.costOf(1, GIB), 1, "one byte at GIB per GiB");
        assertEq(pricing.costOf(1500 * 1024 * 1024, PRICE), 2_929_687_500_000_000_000, "1500 MiB");
    }

    function test_costOf_roundsUpPartialUnits() public view {
        assertEq(pricing.costOf(1, 1), 1, "one byte at the smallest price");
        assertEq(pricing.costOf(GIB - 1, 1), 1, "just under 1 GiB at 1");
        assertEq(pricing.costOf(GIB + 1, 1), 2, "just over 1 GiB at 1");
        assertEq(pricing.costOf(GIB / 2, 3), 2, "1.5 -> 2");
        assertEq(pricing.costOf(1, PRICE), 1_862_645_150, "one byte at 2 FLOW/GiB: 1862645149.23 -> ...150");
        assertEq(pricing.costOf(GIB + 1, PRICE), 2_000_000_001_862_645_150, "1 GiB + 1 byte");
        assertEq(pricing.costOf(1e9, PRICE), 1_862_645_149_230_957_032, "1 GB at 2 FLOW/GiB");
    }

    function test_costOf_zero() public view {
        assertEq(pricing.costOf(0, PRICE), 0, "no bytes");
        assertEq(pricing.costOf(100 * GIB, 0), 0, "free");
        assertEq(pricing.costOf(0, 0), 0, "both zero");
    }

    function test_costOf_productAbove256Bits() public view {
        // bytes × price overflows 256 bits but the quotient fits: the 512-bit path is exact.
        assertEq(pricing.costOf(MAX, GIB), MAX, "max bytes at 1 unit per byte");
        assertEq(pricing.costOf(MAX, 2), (MAX >> 29) + 1, "ceil(max * 2 / GiB)");
        assertEq(pricing.costOf(1 << 255, GIB), 1 << 255, "2^255 bytes at GiB per GiB");
        assertEq(pricing.costOf(1 << 255, 3), 3 << 225, "3 * 2^255 / 2^30, exact");
    }

    function test_RevertWhen_costOf_quotientOverflows() public {
        vm.expectRevert(_panic(0x11));
        pricing.costOf(MAX, GIB + 1);
        vm.expectRevert(_panic(0x11));
        pricing.costOf(MAX, MAX);
        vm.expectRevert(_panic(0x11));
        pricing.costOf(1 << 255, 1 << 31); // exactly 2^256
    }

    function test_RevertWhen_costOf_roundingUpOverflows() public {
        // floor(x * (GIB + 1) / GIB) is exactly 2^256 - 1 with a remainder of 65535, so only the
        // rounding up overflows.
        uint256 x = 115792089129476408855402053502670635024498591828009428020665949399232794394623;
        (uint256 hi, uint256 lo) = _mul512(x, GIB + 1);
        assertEq((hi << 226) | (lo >> 30), MAX, "floor is max");
        assertEq(lo & (GIB - 1), 65_535, "remainder");
        vm.expectRevert(_panic(0x11));
        pricing.costOf(x, GIB + 1);
    }

    // ================================================================ costOf: fuzz

    function testFuzz_costOf_matchesReference(uint256 bytes_, uint256 price) public view {
        bytes_ = bound(bytes_, 0, type(uint128).max);
        price = bound(price, 0, type(uint128).max);
        uint256 expected = (bytes_ * price + GIB - 1) / GIB;
        assertEq(pricing.costOf(bytes_, price), expected, "ceil(bytes * price / GiB)");
    }

    function testFuzz_costOf_fullRangeAgainst512BitReference(
        uint256 bytes_,
        uint256 price,
        uint8 bytesShift,
        uint8 priceShift
    ) public view {
        // Spread both operands over every magnitude so the fitting, boundary and overflowing
        // cases are all hit.
        bytes_ >>= bytesShift;
        price >>= priceShift;
        (uint256 hi, uint256 lo) = _mul512(bytes_, price);
        // The quotient by 2^30 fits in 256 bits iff the high word is below 2^30.
        bool fits = hi >> 30 == 0;
        uint256 floor = fits ? (hi << 226) | (lo >> 30) : 0;
        bool roundUp = lo & (GIB - 1) != 0;
        bool overflows = !fits || (floor == MAX && roundUp);
        try pricing.costOf(bytes_, price) returns (uint256 cost) {
            assertFalse(overflows, "returned although the result does not fit");
            assertEq(cost, floor + (roundUp ? 1 : 0), "cost");
        } catch {
            assertTrue(overflows, "reverted although the result fits");
        }
    }

    function testFuzz_costOf_roundsUpByLessThanOneUnit(uint256 bytes_, uint256 price) public view {
        bytes_ = bound(bytes_, 1, type(uint128).max);
        price = bound(price, 1, type(uint96).max);
        uint256 cost = pricing.costOf(bytes_, price);
        assertGe(cost * GIB, bytes_ * price, "covers the exact price");
        assertLt((cost - 1) * GIB, bytes_ * price, "less than one unit above it");
        assertGe(cost, 1, "any traffic at a non-zero price costs something");
    }

    function testFuzz_costOf_wholeGiBsAreExact(uint256 gibs, uint256 price) public view {
        gibs = bound(gibs, 0, type(uint64).max);
        price = bound(price, 0, type(uint96).max);
        assertEq(pricing.costOf(gibs * GIB, price), gibs * price, "k GiB cost k * price");
    }

    function testFuzz_costOf_monotonic(uint256 a, uint256 b, uint256 price) public view {
        a = bound(a, 0, type(uint128).max);
        b = bound(b, a, type(uint128).max);
        price = bound(price, 0, type(uint96).max);
        assertLe(pricing.costOf(a, price), pricing.costOf(b, price), "more bytes never cost less");
    }

    // ================================================================ lockFor: exact values

    function test_lockFor_exactValues() public view {
        assertEq(pricing.lockFor(100e18, 5_000), 50e18, "half");
        assertEq(pricing.lockFor(100e18, 2_500), 25e18, "quarter");
        assertEq(pricing.lockFor(100e18, 1), 0.01e18, "one bp");
        assertEq(pricing.lockFor(10_000, 1), 1, "exactly one unit");
        assertEq(pricing.lockFor(12_345e18, BPS), 12_345e18, "100%");
    }

    function test_lockFor_roundsUp() public view {
        assertEq(pricing.lockFor(1, 5_000), 1, "0.5 -> 1");
        assertEq(pricing.lockFor(3, 5_000), 2, "1.5 -> 2");
        assertEq(pricing.lockFor(1, 1), 1, "0.0001 -> 1");
        assertEq(pricing.lockFor(9_999, 1), 1, "0.9999 -> 1");
        assertEq(pricing.lockFor(10_001, 1), 2, "1.0001 -> 2");
        assertEq(pricing.lockFor(31e18 + 1, 5_000), 15.5e18 + 1, "odd deposit");
    }

    function test_lockFor_zero() public view {
        assertEq(pricing.lockFor(0, 5_000), 0, "no deposit");
        assertEq(pricing.lockFor(100e18, 0), 0, "no lock");
    }

    function test_lockFor_largeValues() public view {
        assertEq(pricing.lockFor(type(uint96).max, BPS), type(uint96).max, "uint96 max at 100%");
        assertEq(pricing.lockFor(MAX, BPS), MAX, "512-bit path, exact");
        assertEq(pricing.lockFor(MAX, 5_000), MAX / 2 + 1, "ceil(max / 2)");
    }

    function test_RevertWhen_lockFor_overflows() public {
        vm.expectRevert(_panic(0x11));
        pricing.lockFor(MAX, BPS + 1);
    }

    function test_lockFor_matchesMarketLock() public {
        stakeProvider(10_000e18);
        openOrder(123_456_789, 1 days);
        assertEq(staking.stakeOf(provider).locked, pricing.lockFor(123_456_789, LOCK_BPS), "market locks lockFor");
        assertEq(pricing.lockFor(123_456_789, LOCK_BPS), 61_728_395, "ceil(123456789 / 2)");
    }

    // ================================================================ lockFor: fuzz

    function testFuzz_lockFor_matchesReference(uint256 deposit, uint256 lockBps) public view {
        deposit = bound(deposit, 0, type(uint128).max);
        lockBps = bound(lockBps, 0, type(uint128).max);
        uint256 expected = (deposit * lockBps + BPS - 1) / BPS;
        assertEq(pricing.lockFor(deposit, lockBps), expected, "ceil(deposit * bps / 10000)");
    }

    function testFuzz_lockFor_positiveAndAtMostDeposit(uint256 deposit, uint256 lockBps) public view {
        deposit = bound(deposit, 1, type(uint96).max);
        lockBps = bound(lockBps, 1, BPS);
        uint256 lock = pricing.lockFor(deposit, lockBps);
        assertGe(lock, 1, "a non-empty order always locks something");
        assertLe(lock, deposit, "never more than the deposit");
        assertGe(lock * BPS, deposit * lockBps, "covers the exact share");
        assertLt((lock - 1) * BPS, deposit * lockBps, "less than one unit above it");
    }

    function testFuzz_lockFor_monotonic(uint256 a, uint256 b, uint256 lockBps) public view {
        a = bound(a, 0, type(uint128).max);
        b = bound(b, a, type(uint128).max);
        lockBps = bound(lockBps, 0, BPS);
        assertLe(pricing.lockFor(a, lockBps), pricing.lockFor(b, lockBps), "bigger deposits never lock less");
    }
}

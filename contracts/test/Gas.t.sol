// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SlashingFixture} from "./utils/SlashingFixture.sol";
import {ISlashingManager} from "../interfaces/ISlashingManager.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @notice Tells whether each top-level call of a test runs as its own transaction (forge's --isolate):
/// transient storage written by one call is gone in the next one only then.
contract IsolationProbe {
    uint256 private transient _mark;

    function mark() external {
        _mark = 1;
    }

    function marked() external view returns (bool) {
        return _mark != 0;
    }
}

/// @notice Gas of every user-facing operation, one test per operation, recorded with snapshotGasLastCall
/// into snapshots/GasTest.json.
/// @dev Measure with `npx forge test --isolate --match-path contracts/test/Gas.t.sol`: in isolate mode
/// each call is its own transaction, so the figures include the 21,000 base cost and calldata and
/// every first storage and account access is cold, as on chain. Without --isolate the tests still run
/// and check behaviour, but record nothing, so an ordinary `forge test` never overwrites the isolated
/// figures with warm, intrinsic-free ones.
contract GasTest is SlashingFixture {
    uint256 internal constant STAKE = 10_000e18;
    uint256 internal constant DEPOSIT = 100e18;
    uint256 internal constant DURATION = 1 days;

    /// @dev Budgets (gas per transaction) the measured figures must stay within.
    uint256 internal constant OPEN_ORDER_BUDGET = 110_000;
    uint256 internal constant REDEEM_BUDGET = 60_000;
    uint256 internal constant REDEEM_MANY_PER_RECEIPT_BUDGET = 40_000;
    /// @dev Issue 11, finding 10: a first stake was 86,877 and a withdrawal 51,257.
    uint256 internal constant STAKE_BUDGET = 70_000;
    uint256 internal constant WITHDRAW_BUDGET = 45_000;

    bool internal isolated;

    function setUp() public override {
        super.setUp();
        IsolationProbe probe = new IsolationProbe();
        probe.mark();
        isolated = !probe.marked();

        // Background state of a live deployment: Staking already holds someone's stake.
        vm.prank(verifier);
        staking.stake(IStaking.Role.Verifier, VERIFIER_MIN);
    }

    /// @dev Records the gas of the last call under `name`, only when calls are isolated transactions.
    function _snapshotGasLastCall(string memory name) internal returns (uint256 gasUsed) {
        if (isolated) gasUsed = vm.snapshotGasLastCall(name);
    }

    function _redeemAs(address sender, IBandwidthMarket.Redemption memory r) internal returns (uint256 payout) {
        vm.prank(sender);
        payout = market.redeem(r);
    }

    // ------------------------------------------------------------ baseline

    /// @notice The floor of any token payment: a FLOW transfer between two funded accounts.
    function test_transfer_gasBaseline() public {
        vm.prank(client);
        token.transfer(provider, 1e18);
        _snapshotGasLastCall("FLOW transfer (baseline)");
        assertEq(token.balanceOf(provider), FUNDS + 1e18, "transferred");
    }

    // ------------------------------------------------------------ staking

    function test_stake_gas() public {
        uint256 balanceBefore = token.balanceOf(address(staking));
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, STAKE);
        uint256 gasUsed = _snapshotGasLastCall("stake");

        IStaking.StakeInfo memory info = staking.stakeOf(provider);
        assertEq(info.active, STAKE, "active stake");
        assertEq(uint256(info.role), uint256(IStaking.Role.Provider), "role");
        assertEq(token.balanceOf(address(staking)), balanceBefore + STAKE, "tokens bonded");
        assertLe(gasUsed, STAKE_BUDGET, "stake gas");
    }

    function test_requestUnstake_gas() public {
        stakeProvider(STAKE);
        vm.prank(provider);
        staking.requestUnstake(1_000e18);
        _snapshotGasLastCall("requestUnstake");

        IStaking.StakeInfo memory info = staking.stakeOf(provider);
        assertEq(info.active, STAKE - 1_000e18, "active");
        assertEq(info.thawing, 1_000e18, "thawing");
        assertEq(info.thawEnd, block.timestamp + THAW_PERIOD, "thawEnd");
    }

    function test_withdraw_gas() public {
        stakeProvider(STAKE);
        vm.prank(provider);
        staking.requestUnstake(1_000e18);
        vm.warp(block.timestamp + THAW_PERIOD);
        uint256 balanceBefore = token.balanceOf(provider);

        vm.prank(provider);
        staking.withdraw();
        uint256 gasUsed = _snapshotGasLastCall("withdraw");

        assertEq(token.balanceOf(provider), balanceBefore + 1_000e18, "withdrawn");
        assertEq(staking.stakeOf(provider).thawing, 0, "nothing thawing");
        assertLe(gasUsed, WITHDRAW_BUDGET, "withdraw gas");
    }

    /// @notice A full unbond: the withdrawal leaves nothing bonded, so Staking calls the registry's
    /// revokeAllOf (here with no certificate to revoke: the hook's fixed cost).
    function test_withdraw_gasFullUnbond() public {
        _fullUnbondGas(0, "withdraw (full unbond)");
    }

    /// @notice A full unbond that revokes one certificate.
    function test_withdraw_gasFullUnbondOneCertificate() public {
        _fullUnbondGas(1, "withdraw (full unbond, 1 certificate)");
    }

    function _fullUnbondGas(uint256 certs, string memory name) internal {
        stakeProvider(STAKE);
        _registerCerts(provider, certs);
        vm.prank(provider);
        staking.requestUnstake(STAKE);
        vm.warp(block.timestamp + THAW_PERIOD);

        vm.prank(provider);
        staking.withdraw();
        _snapshotGasLastCall(name);

        assertEq(staking.stakeOf(provider).active, 0, "nothing bonded");
        assertEq(registry.activeCount(provider), 0, "certificates revoked");
    }

    /// @notice A slash (of active stake only) of a provider without certificates: the hook's fixed cost.
    function test_slash_gas() public {
        _slashGas(0, "slash");
    }

    /// @notice A slash that revokes one certificate.
    function test_slash_gasOneCertificate() public {
        _slashGas(1, "slash (1 certificate)");
    }

    /// @notice A slash that revokes MAX_ACTIVE (8) certificates: the most the hook can ever cost.
    function test_slash_gasMaxCertificates() public {
        _slashGas(registry.MAX_ACTIVE(), "slash (8 certificates)");
    }

    function _slashGas(uint256 certs, string memory name) internal {
        stakeProvider(STAKE);
        _registerCerts(provider, certs);

        vm.prank(slasher);
        staking.slash(provider, 100e18);
        _snapshotGasLastCall(name);

        assertEq(staking.stakeOf(provider).active, STAKE - 100e18, "slashed");
        assertEq(token.balanceOf(slasher), 100e18, "slasher paid");
        assertEq(registry.activeCount(provider), 0, "certificates revoked");
    }

    /// @notice A provider registers its first certificate (its active list and record written from zero).
    function test_register_gas() public {
        stakeProvider(STAKE);
        _registerCerts(provider, 1);
        _snapshotGasLastCall("register (certificate)");

        assertEq(registry.activeCount(provider), 1, "registered");
    }

    /// @notice The owner revokes its only certificate.
    function test_revoke_gas() public {
        stakeProvider(STAKE);
        _registerCerts(provider, 1);
        bytes32 certHash = registry.activeCertificates(provider)[0];

        vm.prank(provider);
        registry.revoke(certHash, 2, 0);
        _snapshotGasLastCall("revoke (certificate)");

        assertEq(registry.activeCount(provider), 0, "revoked");
    }

    function _registerCerts(address owner, uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            vm.prank(owner);
            registry.register(keccak256(abi.encode(owner, i)), keccak256("key"), "bafkreicertpem", 2_000_000_000);
        }
    }

    // ------------------------------------------------------------ market

    function test_openOrder_gas() public {
        stakeProvider(STAKE);
        openOrder(DEPOSIT, DURATION); // an earlier order: the market already escrows tokens
        uint64 nonce = market.nextNonce();

        vm.prank(client);
        bytes32 id = market.openOrder(provider, DEPOSIT, DURATION, PRICE);
        uint256 gasUsed = _snapshotGasLastCall("openOrder");

        assertEq(nonce, 2, "second order");
        assertEq(uint256(market.orderState(id).status), uint256(IBandwidthMarket.Status.Open), "open");
        assertEq(token.balanceOf(address(market)), 2 * DEPOSIT, "escrow");
        assertEq(staking.stakeOf(provider).locked, DEPOSIT, "two half-deposit locks");
        assertLe(gasUsed, OPEN_ORDER_BUDGET, "openOrder gas");
    }

    /// @notice The market's very first order also turns its own token balance from zero to nonzero.
    function test_openOrder_gasFirstOnMarket() public {
        stakeProvider(STAKE);
        vm.prank(client);
        bytes32 id = market.openOrder(provider, DEPOSIT, DURATION, PRICE);
        _snapshotGasLastCall("openOrder (market's first order)");

        assertEq(uint256(market.orderState(id).status), uint256(IBandwidthMarket.Status.Open), "open");
        assertEq(token.balanceOf(address(market)), DEPOSIT, "escrow");
    }

    function test_openOrderWithPermit_gas() public {
        stakeProvider(STAKE);
        openOrder(DEPOSIT, DURATION);
        vm.prank(client);
        token.approve(address(market), 0);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                client,
                address(market),
                DEPOSIT,
                token.nonces(client),
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(CLIENT_KEY, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));

        vm.prank(client);
        bytes32 id = market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE, deadline, v, r, s);
        _snapshotGasLastCall("openOrderWithPermit");

        assertEq(uint256(market.orderState(id).status), uint256(IBandwidthMarket.Status.Open), "open");
        assertEq(token.nonces(client), 1, "permit used");
        assertEq(token.balanceOf(address(market)), 2 * DEPOSIT, "escrow");
    }

    function test_redeem_gasFirst() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        IBandwidthMarket.Redemption memory r = receipt(id, order, 10e18);
        uint256 balanceBefore = token.balanceOf(provider);
        assertGt(balanceBefore, 0, "provider already holds tokens");

        vm.prank(provider);
        market.redeem(r);
        uint256 gasUsed = _snapshotGasLastCall("redeem (first)");

        assertEq(token.balanceOf(provider), balanceBefore + 10e18, "paid");
        assertEq(market.orderState(id).paid, 10e18, "booked");
        assertLe(gasUsed, REDEEM_BUDGET, "redeem (first) gas");
    }

    function test_redeem_gasFirstProviderBalanceZero() public {
        stakeProvider(FUNDS); // the provider bonds everything it has
        assertEq(token.balanceOf(provider), 0, "provider holds no tokens");
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        IBandwidthMarket.Redemption memory r = receipt(id, order, 10e18);

        vm.prank(provider);
        market.redeem(r);
        _snapshotGasLastCall("redeem (first, provider balance zero)");

        assertEq(token.balanceOf(provider), 10e18, "paid");
        assertEq(market.orderState(id).paid, 10e18, "booked");
    }

    function test_redeem_gasLater() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        _redeemAs(provider, receipt(id, order, 10e18));
        IBandwidthMarket.Redemption memory r = receipt(id, order, 20e18);
        uint256 balanceBefore = token.balanceOf(provider);

        vm.prank(provider);
        market.redeem(r);
        uint256 gasUsed = _snapshotGasLastCall("redeem (later)");

        assertEq(token.balanceOf(provider), balanceBefore + 10e18, "paid the difference");
        assertEq(market.orderState(id).paid, 20e18, "booked");
        assertLe(gasUsed, REDEEM_BUDGET, "redeem (later) gas");
    }

    function test_redeemMany_gasTenOrdersOfOneProvider() public {
        stakeProvider(STAKE);
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](10);
        bytes32[] memory ids = new bytes32[](10);
        for (uint256 i; i < 10; ++i) {
            IBandwidthMarket.Order memory order;
            (ids[i], order) = openOrder(DEPOSIT, DURATION);
            rs[i] = receipt(ids[i], order, (i + 1) * 1e18);
        }
        uint256 balanceBefore = token.balanceOf(provider);

        vm.prank(provider);
        market.redeemMany(rs);
        uint256 total = _snapshotGasLastCall("redeemMany x10 (total)");
        if (isolated) vm.snapshotValue("redeemMany per receipt (amortized over 10)", total / 10);

        assertEq(token.balanceOf(provider), balanceBefore + 55e18, "sum of the ten payouts");
        for (uint256 i; i < 10; ++i) {
            assertEq(market.orderState(ids[i]).paid, (i + 1) * 1e18, "booked");
        }
        assertLe(total / 10, REDEEM_MANY_PER_RECEIPT_BUDGET, "redeemMany gas per receipt");
    }

    function test_close_gas() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        _redeemAs(provider, receipt(id, order, 10e18));
        bytes memory sig = signClose(PROVIDER_KEY, id, 30e18);
        uint256 providerBefore = token.balanceOf(provider);
        uint256 clientBefore = token.balanceOf(client);

        vm.prank(client);
        market.close(id, order, 30e18, sig);
        _snapshotGasLastCall("close");

        assertEq(token.balanceOf(provider), providerBefore + 20e18, "provider paid final - paid");
        assertEq(token.balanceOf(client), clientBefore + 70e18, "client refunded deposit - final");
        assertEq(staking.stakeOf(provider).locked, 0, "stake released");
    }

    /// @notice A provider cancels an order it never accepted: whole deposit back, lock released.
    function test_cancel_gas() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        uint256 clientBefore = token.balanceOf(client);

        vm.prank(provider);
        market.cancel(id, order, 0);
        _snapshotGasLastCall("cancel");

        assertEq(token.balanceOf(client), clientBefore + DEPOSIT, "whole deposit refunded");
        assertEq(staking.stakeOf(provider).locked, 0, "stake released");
    }

    /// @notice The same cancel, refusing the client for a day in the same transaction (one new slot).
    function test_cancel_gasAndRefuse() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);

        vm.prank(provider);
        market.cancel(id, order, uint64(block.timestamp + 1 days));
        _snapshotGasLastCall("cancel (and refuse the client)");

        assertEq(market.refusedUntil(provider, client), block.timestamp + 1 days, "client refused");
        assertEq(staking.stakeOf(provider).locked, 0, "stake released");
    }

    function test_refuse_gas() public {
        vm.prank(provider);
        market.refuse(client, uint64(block.timestamp + 1 days));
        _snapshotGasLastCall("refuse");

        assertEq(market.refusedUntil(provider, client), block.timestamp + 1 days, "client refused");
    }

    function test_reclaim_gas() public {
        stakeProvider(STAKE);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(DEPOSIT, DURATION);
        _redeemAs(provider, receipt(id, order, 10e18));
        vm.warp(order.expiry + GRACE);
        uint256 clientBefore = token.balanceOf(client);

        vm.prank(client);
        market.reclaim(id, order);
        _snapshotGasLastCall("reclaim");

        assertEq(token.balanceOf(client), clientBefore + 90e18, "refund");
        assertEq(staking.stakeOf(provider).locked, 0, "stake released");
        assertEq(uint256(market.orderState(id).status), uint256(IBandwidthMarket.Status.Closed), "closed");
    }

    // ------------------------------------------------------------ slashing and trust

    function test_slashEquivocation_gas() public {
        stakeProvider(STAKE);
        uint64 e = epochNow();
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = equivocation(e);
        uint256 supply = token.totalSupply();

        vm.prank(stranger);
        slashing.slashEquivocation(a, sigA, b, sigB, "bafkreigasequivocation");
        _snapshotGasLastCall("slashEquivocation");

        assertEq(stakeOf(provider), STAKE - 1_000e18, "slashed");
        assertEq(token.totalSupply(), supply - 500e18, "burned");
        assertEq(trust.scoreOf(provider, 0), 250, "scored down");
    }

    /// @dev The fixture's verifier already stakes in setUp; a second one joins for the quorum of 2.
    function _openDisputeGas() internal returns (uint256 id, uint64 e) {
        stakeProvider(STAKE);
        stakeVerifier(verifier2, VERIFIER_MIN);
        e = epochNow();
        bytes[] memory sigs = attestations(keys2(), provider, e, 0, "bafkreigasdispute");

        vm.prank(stranger);
        id = slashing.openDispute(provider, e, 0, "bafkreigasdispute", sigs);
        _snapshotGasLastCall("openDispute (2 signatures)");
    }

    function test_openDispute_gas() public {
        (uint256 id,) = _openDisputeGas();
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Open), "open");
    }

    /// @dev The final strike: one of two accusers (quorum 2) is struck, so the dispute is rebutted
    /// and every other hold is released.
    function test_rebut_gas() public {
        stakeProvider(STAKE);
        stakeVerifier(verifier2, VERIFIER_MIN);
        uint64 e = epochNow();
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier, VERIFIER_KEY, e, GIB);
        uint256 id = openDisputeOf(e, 0, "bafkreigasdispute");

        vm.prank(provider);
        slashing.rebut(id, order, GIB, sig);
        _snapshotGasLastCall("rebut");

        assertEq(stakeOf(verifier), VERIFIER_MIN - 500e18, "accuser loses its bond");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Rebutted), "rebutted");
    }

    /// @dev One strike of three accusers (quorum 2): the dispute stays open.
    function test_rebut_gasStrikeOnly() public {
        stakeProvider(STAKE);
        stakeVerifier(verifier2, VERIFIER_MIN);
        stakeVerifier(verifier3, VERIFIER_MIN);
        uint64 e = epochNow();
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier3, VERIFIER3_KEY, e, GIB);
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (VERIFIER_KEY, VERIFIER2_KEY, VERIFIER3_KEY);
        uint256 id = slashing.openDispute(provider, e, 0, "bafkreigasdispute", attestations(keys, provider, e, 0, "bafkreigasdispute"));

        vm.prank(provider);
        slashing.rebut(id, order, GIB, sig);
        _snapshotGasLastCall("rebut (strike, dispute stays open)");

        assertEq(stakeOf(verifier3), 0, "accuser loses its bond");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Open), "open");
    }

    function test_executeDispute_gas() public {
        (uint256 id,) = _openDisputeGas();
        vm.warp(block.timestamp + CHALLENGE_WINDOW);

        vm.prank(stranger);
        slashing.executeDispute(id);
        _snapshotGasLastCall("executeDispute");

        assertEq(stakeOf(provider), STAKE - 500e18, "slashed due");
    }

    function test_slashEquivocation_gasSupersedingDispute() public {
        (, uint64 e) = _openDisputeGas();
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = equivocation(e);

        vm.prank(stranger);
        slashing.slashEquivocation(a, sigA, b, sigB, "bafkreigasequivocation");
        _snapshotGasLastCall("slashEquivocation (supersedes an open dispute)");

        assertEq(stakeOf(provider), STAKE - 1_000e18, "slashed");
        assertEq(token.balanceOf(verifier2), FUNDS - VERIFIER_MIN + 250e18, "accuser's share");
    }

    function test_setScore_gas() public {
        vm.prank(APP_AUTHORITY);
        trust.setScorer(1, stranger, true);

        vm.prank(stranger);
        trust.setScore(provider, 1, 800, "bafkreigasreason");
        _snapshotGasLastCall("setScore");

        assertEq(trust.scoreOf(provider, 1), 800, "scored");
    }
}

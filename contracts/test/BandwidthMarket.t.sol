// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {FlowToken} from "../FlowToken.sol";
import {Staking} from "../Staking.sol";
import {BandwidthMarket} from "../BandwidthMarket.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @notice Unit and fuzz tests of BandwidthMarket against the specification in IBandwidthMarket.
contract BandwidthMarketTest is MarketFixture {
    uint256 internal constant PROVIDER2_KEY = 0xBEEF;
    uint256 internal constant STAKE = 100_000e18;
    uint256 internal constant PRICE2 = 3e18;
    uint256 internal constant DEPOSIT = 100e18;
    uint256 internal constant DURATION = 1 days;

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    address internal provider2;

    function setUp() public override {
        super.setUp();
        provider2 = vm.addr(PROVIDER2_KEY);
        vm.label(provider2, "provider2");
        // A second provider with its own funds, stake and (different) price.
        token.transfer(provider2, FUNDS);
        vm.startPrank(provider2);
        token.approve(address(staking), type(uint256).max);
        staking.stake(IStaking.Role.Provider, STAKE);
        staking.setOffer(PRICE2, "bafkreiprovider2metadata");
        vm.stopPrank();

        stakeProvider(STAKE);
    }

    // =============================================================== helpers

    function _open() internal returns (bytes32 id, IBandwidthMarket.Order memory o) {
        return openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
    }

    /// @dev A redemption of `amount` for `bytes_`, signed with `key` against `m`'s domain.
    function _redemptionOn(
        BandwidthMarket m,
        uint256 key,
        bytes32 id,
        IBandwidthMarket.Order memory o,
        uint256 bytes_,
        uint256 amount
    ) internal view returns (IBandwidthMarket.Redemption memory) {
        return IBandwidthMarket.Redemption({
            orderId: id,
            order: o,
            cumulativeBytes: bytes_,
            cumulativeAmount: amount,
            signature: signDigest(key, m.receiptDigest(id, bytes_, amount))
        });
    }

    function _redemption(uint256 key, bytes32 id, IBandwidthMarket.Order memory o, uint256 bytes_, uint256 amount)
        internal
        view
        returns (IBandwidthMarket.Redemption memory)
    {
        return _redemptionOn(market, key, id, o, bytes_, amount);
    }

    /// @dev Redeems `r` as its order's provider: only the provider may redeem an order's first receipt
    /// (test_redeem_laterReceiptByAnyone and the RevertWhen tests cover other senders).
    function _redeem(IBandwidthMarket.Redemption memory r) internal returns (uint256) {
        vm.prank(r.order.provider);
        return market.redeem(r);
    }

    /// @dev redeemMany as the provider of the batch's first receipt.
    function _redeemMany(IBandwidthMarket.Redemption[] memory rs) internal returns (uint256) {
        if (rs.length != 0) vm.prank(rs[0].order.provider);
        return market.redeemMany(rs);
    }

    function _assertState(bytes32 id, uint256 paid, IBandwidthMarket.Status status, string memory what) internal view {
        IBandwidthMarket.OrderState memory st = market.orderState(id);
        assertEq(st.paid, paid, string.concat(what, ": paid"));
        assertEq(uint256(st.status), uint256(status), string.concat(what, ": status"));
    }

    function _locked(address prov) internal view returns (uint256) {
        return staking.stakeOf(prov).locked;
    }

    function _lockFor(uint256 deposit, uint256 bps) internal pure returns (uint256) {
        return (deposit * bps + 9_999) / 10_000;
    }

    function _domainSeparator(address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH,
                keccak256("FlowNet BandwidthMarket"),
                keccak256("1"),
                block.chainid,
                verifyingContract
            )
        );
    }

    function _permitSig(uint256 key, address owner, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, owner, address(market), value, token.nonces(owner), deadline));
        (v, r, s) = vm.sign(key, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    /// @dev A full set like deploySet but with a chosen lockBps, its actors funded and the provider staked.
    function _deployFundedSet(uint16 bps, uint256 providerStake)
        internal
        returns (FlowToken t, Staking s, BandwidthMarket m)
    {
        t = new FlowToken(holder, SUPPLY);
        address predicted = predictNext(1);
        s = new Staking(address(t), slasher, predicted, predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        m = new BandwidthMarket(address(t), address(s), GRACE, MAX_DURATION, bps);
        _fundAndStake(t, s, m, providerStake);
    }

    function _fundAndStake(FlowToken t, Staking s, BandwidthMarket m, uint256 providerStake) internal {
        t.transfer(provider, FUNDS);
        t.transfer(client, FUNDS);
        vm.startPrank(provider);
        t.approve(address(s), type(uint256).max);
        s.stake(IStaking.Role.Provider, providerStake);
        s.setOffer(PRICE, "bafkreiprovidermetadata");
        vm.stopPrank();
        vm.prank(client);
        t.approve(address(m), type(uint256).max);
    }

    // =============================================================== constructor and configuration

    function test_constructor_storesConfiguration() public {
        FlowToken t = new FlowToken(holder, SUPPLY);
        address predicted = predictNext(1);
        Staking s = new Staking(address(t), slasher, predicted, predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        BandwidthMarket m = new BandwidthMarket(address(t), address(s), 2 hours, 7 days, 1_234);
        assertEq(address(m), predicted, "deployed at the address staking names");
        assertEq(m.token(), address(t), "token");
        assertEq(m.staking(), address(s), "staking");
        assertEq(m.gracePeriod(), 2 hours, "gracePeriod");
        assertEq(m.maxDuration(), 7 days, "maxDuration");
        assertEq(m.lockBps(), 1_234, "lockBps");
        assertEq(m.nextNonce(), 1, "nextNonce starts at 1");
    }

    function test_constructor_acceptsLockBpsOfOneHundredPercent() public {
        FlowToken t = new FlowToken(holder, SUPPLY);
        address predicted = predictNext(1);
        Staking s = new Staking(address(t), slasher, predicted, predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        BandwidthMarket m = new BandwidthMarket(address(t), address(s), GRACE, MAX_DURATION, 10_000);
        assertEq(m.lockBps(), 10_000, "lockBps");
    }

    function _expectConfigRevert(
        string memory name,
        bool tokenZero,
        bool stakingZero,
        uint64 grace,
        uint64 maxDur,
        uint16 bps
    ) internal {
        FlowToken t = new FlowToken(holder, SUPPLY);
        address predicted = predictNext(1);
        Staking s = new Staking(address(t), slasher, predicted, predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        address tok = tokenZero ? address(0) : address(t);
        address stk = stakingZero ? address(0) : address(s);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidConfig.selector, name));
        new BandwidthMarket(tok, stk, grace, maxDur, bps);
    }

    function test_RevertWhen_constructorTokenIsZero() public {
        _expectConfigRevert("token", true, false, GRACE, MAX_DURATION, LOCK_BPS);
    }

    function test_RevertWhen_constructorStakingIsZero() public {
        _expectConfigRevert("staking", false, true, GRACE, MAX_DURATION, LOCK_BPS);
    }

    function test_RevertWhen_constructorGracePeriodIsZero() public {
        _expectConfigRevert("gracePeriod", false, false, 0, MAX_DURATION, LOCK_BPS);
    }

    function test_RevertWhen_constructorMaxDurationIsZero() public {
        _expectConfigRevert("maxDuration", false, false, GRACE, 0, LOCK_BPS);
    }

    function test_RevertWhen_constructorGracePeriodAboveMax() public {
        assertEq(market.MAX_PERIOD(), 365 days, "MAX_PERIOD");
        _expectConfigRevert("gracePeriod", false, false, 365 days + 1, MAX_DURATION, LOCK_BPS);
    }

    function test_RevertWhen_constructorMaxDurationAboveMax() public {
        _expectConfigRevert("maxDuration", false, false, GRACE, 365 days + 1, LOCK_BPS);
    }

    function test_RevertWhen_constructorLockBpsIsZero() public {
        _expectConfigRevert("lockBps", false, false, GRACE, MAX_DURATION, 0);
    }

    function test_RevertWhen_constructorLockBpsAboveOneHundredPercent() public {
        _expectConfigRevert("lockBps", false, false, GRACE, MAX_DURATION, 10_001);
    }

    function test_RevertWhen_constructorStakingNamesAnotherMarket() public {
        FlowToken t = new FlowToken(holder, SUPPLY);
        // Staking names some other address as its market, not the one about to be deployed.
        Staking s =
            new Staking(address(t), slasher, address(0xBAD), address(0xBAD2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidConfig.selector, "staking.market"));
        new BandwidthMarket(address(t), address(s), GRACE, MAX_DURATION, LOCK_BPS);
    }

    function test_RevertWhen_constructorStakingUsesAnotherToken() public {
        FlowToken t = new FlowToken(holder, SUPPLY);
        FlowToken other = new FlowToken(holder, SUPPLY);
        address predicted = predictNext(1);
        // Staking accepts the market's address but stakes a different token.
        Staking s =
            new Staking(address(other), slasher, predicted, predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidConfig.selector, "staking.token"));
        new BandwidthMarket(address(t), address(s), GRACE, MAX_DURATION, LOCK_BPS);
    }

    // =============================================================== simple views

    function test_token_returnsPaymentToken() public view {
        assertEq(market.token(), address(token), "token");
        assertEq(staking.token(), market.token(), "staking stakes the payment token");
    }

    function test_staking_returnsStakingContract() public view {
        assertEq(market.staking(), address(staking), "staking");
        assertEq(staking.market(), address(market), "staking names this market");
    }

    function test_lockBps_returnsConfiguredValue() public view {
        assertEq(market.lockBps(), LOCK_BPS, "lockBps");
    }

    function test_gracePeriod_returnsConfiguredValue() public view {
        assertEq(market.gracePeriod(), GRACE, "gracePeriod");
    }

    function test_maxDuration_returnsConfiguredValue() public view {
        assertEq(market.maxDuration(), MAX_DURATION, "maxDuration");
    }

    function test_nextNonce_startsAtOneAndIncrementsPerOrder() public {
        assertEq(market.nextNonce(), 1, "initial");
        (, IBandwidthMarket.Order memory o1) = _open();
        assertEq(o1.nonce, 1, "first order's nonce");
        assertEq(market.nextNonce(), 2, "after one order");
        (, IBandwidthMarket.Order memory o2) = openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2);
        assertEq(o2.nonce, 2, "second order's nonce");
        assertEq(market.nextNonce(), 3, "after two orders");
    }

    function test_nextNonce_unchangedByRevertedOpen() public {
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketPriceAboveMax.selector, provider, PRICE, 1));
        market.openOrder(provider, DEPOSIT, DURATION, 1);
        assertEq(market.nextNonce(), 1, "nonce not consumed");
    }

    function test_RECEIPT_TYPEHASH_matchesReceiptType() public view {
        assertEq(
            market.RECEIPT_TYPEHASH(),
            keccak256("Receipt(bytes32 orderId,uint256 cumulativeBytes,uint256 cumulativeAmount)"),
            "RECEIPT_TYPEHASH"
        );
    }

    function test_CLOSE_TYPEHASH_matchesCloseOrderType() public view {
        assertEq(
            market.CLOSE_TYPEHASH(), keccak256("CloseOrder(bytes32 orderId,uint256 finalAmount)"), "CLOSE_TYPEHASH"
        );
    }

    function test_orderIdOf_isKeccakOfAbiEncodedTerms() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        assertEq(market.orderIdOf(o), id, "orderIdOf the opened terms");
        assertEq(market.orderIdOf(o), keccak256(abi.encode(o)), "keccak256(abi.encode(order))");
        o.nonce += 1;
        assertTrue(market.orderIdOf(o) != id, "another nonce gives another id");
    }

    function test_orderState_unknownIdIsNone() public view {
        _assertState(keccak256("nothing"), 0, IBandwidthMarket.Status.None, "unknown");
    }

    function test_orderState_tracksOpenRedeemAndClose() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _assertState(id, 0, IBandwidthMarket.Status.Open, "opened");
        _redeem(receipt(id, o, 7e18));
        _assertState(id, 7e18, IBandwidthMarket.Status.Open, "redeemed");
        bytes memory sig = signClose(PROVIDER_KEY, id, 9e18);
        vm.prank(client);
        market.close(id, o, 9e18, sig);
        _assertState(id, 9e18, IBandwidthMarket.Status.Closed, "closed");
    }

    function test_receiptDigest_isEip712HashOfReceipt() public {
        bytes32 id = keccak256("some order");
        bytes32 structHash = keccak256(abi.encode(market.RECEIPT_TYPEHASH(), id, uint256(123), uint256(456)));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(address(market)), structHash));
        assertEq(market.receiptDigest(id, 123, 456), expected, "receipt digest");
        assertTrue(market.receiptDigest(id, 124, 456) != expected, "bytes are signed");
        assertTrue(market.receiptDigest(id, 123, 457) != expected, "amount is signed");
        // The digest follows the chain id (OZ's EIP712 rebuilds its cached separator).
        vm.chainId(block.chainid + 1);
        assertTrue(market.receiptDigest(id, 123, 456) != expected, "digest changes with the chain id");
        structHash = keccak256(abi.encode(market.RECEIPT_TYPEHASH(), id, uint256(123), uint256(456)));
        assertEq(
            market.receiptDigest(id, 123, 456),
            keccak256(abi.encodePacked("\x19\x01", _domainSeparator(address(market)), structHash)),
            "digest under the new chain id"
        );
    }

    function test_closeDigest_isEip712HashOfCloseOrder() public view {
        bytes32 id = keccak256("some order");
        bytes32 structHash = keccak256(abi.encode(market.CLOSE_TYPEHASH(), id, uint256(789)));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(address(market)), structHash));
        assertEq(market.closeDigest(id, 789), expected, "close digest");
        assertTrue(market.closeDigest(id, 790) != expected, "final amount is signed");
        assertTrue(market.closeDigest(id, 789) != market.receiptDigest(id, 789, 0), "close is not a receipt");
    }

    // =============================================================== openOrder

    function test_openOrder_escrowsDepositAndOpensOrder() public {
        uint256 clientBefore = token.balanceOf(client);
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        assertEq(token.balanceOf(client), clientBefore - DEPOSIT, "client paid the deposit");
        assertEq(token.balanceOf(address(market)), DEPOSIT, "market escrows the deposit");
        assertEq(o.expiry, block.timestamp + DURATION, "expiry");
        assertEq(o.pricePerGiB, PRICE, "price");
        _assertState(id, 0, IBandwidthMarket.Status.Open, "opened");
    }

    function test_openOrder_emitsStakeLockedOrderOpenedAndTransfer() public {
        uint256 lock = _lockFor(DEPOSIT, LOCK_BPS);
        IBandwidthMarket.Order memory o = IBandwidthMarket.Order({
            nonce: 1,
            client: client,
            provider: provider,
            deposit: uint96(DEPOSIT),
            pricePerGiB: uint96(PRICE),
            expiry: uint64(block.timestamp + DURATION)
        });
        bytes32 id = keccak256(abi.encode(o));
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeLocked(provider, lock, lock);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderOpened(id, client, provider, 1, DEPOSIT, PRICE, o.expiry, lock);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(client, address(market), DEPOSIT);
        vm.prank(client);
        bytes32 returned = market.openOrder(provider, DEPOSIT, DURATION, PRICE);
        assertEq(returned, id, "returned id");
    }

    function test_openOrder_priceIsProvidersCurrentOfferNotClientsMax() public {
        vm.prank(provider);
        staking.setOffer(1.5e18, "bafkreinewoffer");
        // The client would pay up to 5 per GiB; the order takes the offer of 1.5.
        (bytes32 id, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, DEPOSIT, DURATION, 5e18);
        assertEq(o.pricePerGiB, 1.5e18, "order price is the current offer");
        // One GiB costs 1.5 under this order, not 2 (the old offer) and not 5 (the client's max).
        IBandwidthMarket.Redemption memory over = _redemption(CLIENT_KEY, id, o, GIB, 1.5e18 + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketAmountAbovePrice.selector, id, 1.5e18 + 1, 1.5e18)
        );
        _redeem(over);
        assertEq(_redeem(_redemption(CLIENT_KEY, id, o, GIB, 1.5e18)), 1.5e18, "pays 1.5 per GiB");
    }

    function test_openOrder_acceptsPriceEqualToMax() public {
        (, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        assertEq(o.pricePerGiB, PRICE, "price == max is accepted");
    }

    function test_RevertWhen_openOrderProviderRaisedPriceAboveClientMax() public {
        (bytes32 oldId, IBandwidthMarket.Order memory oldOrder) = _open();
        uint256 lockedBefore = _locked(provider);
        vm.prank(provider);
        staking.setOffer(PRICE + 1, "bafkreiraised");

        uint256 balanceBefore = token.balanceOf(client);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketPriceAboveMax.selector, provider, PRICE + 1, PRICE)
        );
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);

        assertEq(token.balanceOf(client), balanceBefore, "no deposit taken");
        assertEq(_locked(provider), lockedBefore, "no stake locked");
        assertEq(market.nextNonce(), 2, "no nonce consumed");
        // The raise does not touch the order already open: it still pays at PRICE.
        assertEq(_redeem(receipt(oldId, oldOrder, PRICE)), PRICE, "old order keeps its price");
    }

    function test_openOrder_locksCeilOfDepositTimesLockBps() public {
        // 3 * 5000 / 10000 = 1.5, rounded up to 2; 1 wei locks 1.
        openOrderAs(client, provider, 3, DURATION, PRICE);
        assertEq(_locked(provider), 2, "ceil(3 * 0.5)");
        openOrderAs(client, provider, 1, DURATION, PRICE);
        assertEq(_locked(provider), 3, "+ ceil(1 * 0.5)");
        openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        assertEq(_locked(provider), 3 + DEPOSIT / 2, "+ half the deposit");
        assertEq(staking.unlockedStake(provider), STAKE - 3 - DEPOSIT / 2, "unlocked stake");
    }

    function test_openOrder_acceptsMaxDuration() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, DEPOSIT, MAX_DURATION, PRICE);
        assertEq(o.expiry, block.timestamp + MAX_DURATION, "expiry");
        _assertState(id, 0, IBandwidthMarket.Status.Open, "opened");
    }

    function test_RevertWhen_openOrderDepositIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDeposit.selector, 0));
        vm.prank(client);
        market.openOrder(provider, 0, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderDepositExceedsUint96() public {
        uint256 deposit = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDeposit.selector, deposit));
        vm.prank(client);
        market.openOrder(provider, deposit, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderDurationIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDuration.selector, 0, MAX_DURATION));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, 0, PRICE);
    }

    function test_RevertWhen_openOrderDurationAboveMax() public {
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDuration.selector, MAX_DURATION + 1, MAX_DURATION)
        );
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, MAX_DURATION + 1, PRICE);
    }

    function test_RevertWhen_openOrderProviderIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidProvider.selector, address(0)));
        vm.prank(client);
        market.openOrder(address(0), DEPOSIT, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderProviderIsCaller() public {
        // A staked provider with an offer still cannot buy from itself.
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidProvider.selector, provider));
        vm.prank(provider);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderProviderNotStaked() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, stranger));
        vm.prank(client);
        market.openOrder(stranger, DEPOSIT, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderProviderIsVerifier() public {
        vm.prank(verifier);
        staking.stake(IStaking.Role.Verifier, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, verifier));
        vm.prank(client);
        market.openOrder(verifier, DEPOSIT, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderProviderWithdrewOffer() public {
        vm.prank(provider);
        staking.setOffer(0, "bafkreinooffer");
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, type(uint256).max);
    }

    function test_RevertWhen_openOrderLockExceedsUnlockedStake() public {
        // 2 * STAKE + 2 wei locks STAKE + 1, one more than the provider has.
        uint256 deposit = 2 * STAKE + 2;
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, STAKE + 1, STAKE)
        );
        vm.prank(client);
        market.openOrder(provider, deposit, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderLockExceedsStakeLeftByOpenOrders() public {
        openOrderAs(client, provider, STAKE, DURATION, PRICE); // locks STAKE / 2
        uint256 available = STAKE - STAKE / 2;
        // Exactly the remaining stake still fits ...
        openOrderAs(client, provider, 2 * available, DURATION, PRICE);
        assertEq(staking.unlockedStake(provider), 0, "all stake locked");
        // ... one more wei does not.
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 1, 0));
        vm.prank(client);
        market.openOrder(provider, 1, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderWithoutAllowance() public {
        vm.prank(client);
        token.approve(address(market), DEPOSIT - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), DEPOSIT - 1, DEPOSIT
            )
        );
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
    }

    // =============================================================== openOrderWithPermit

    function test_openOrderWithPermit_opensWithValidPermit() public {
        vm.prank(client);
        token.approve(address(market), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(CLIENT_KEY, client, DEPOSIT, deadline);
        uint256 balanceBefore = token.balanceOf(client);

        vm.prank(client);
        bytes32 id = market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE, deadline, v, r, s);

        IBandwidthMarket.Order memory o = IBandwidthMarket.Order({
            nonce: 1,
            client: client,
            provider: provider,
            deposit: uint96(DEPOSIT),
            pricePerGiB: uint96(PRICE),
            expiry: uint64(block.timestamp + DURATION)
        });
        assertEq(id, keccak256(abi.encode(o)), "order id");
        assertEq(token.nonces(client), 1, "permit was used");
        assertEq(token.allowance(client, address(market)), 0, "permitted allowance spent");
        assertEq(token.balanceOf(client), balanceBefore - DEPOSIT, "deposit pulled");
        assertEq(token.balanceOf(address(market)), DEPOSIT, "deposit escrowed");
        assertEq(_locked(provider), _lockFor(DEPOSIT, LOCK_BPS), "stake locked");
        _assertState(id, 0, IBandwidthMarket.Status.Open, "opened");
    }

    function test_openOrderWithPermit_succeedsWhenPermitWasFrontRun() public {
        vm.prank(client);
        token.approve(address(market), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(CLIENT_KEY, client, DEPOSIT, deadline);

        // Someone copies the permit from the mempool and submits it first.
        vm.prank(stranger);
        token.permit(client, address(market), DEPOSIT, deadline, v, r, s);
        assertEq(token.allowance(client, address(market)), DEPOSIT, "allowance in place");

        vm.prank(client);
        bytes32 id = market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE, deadline, v, r, s);
        _assertState(id, 0, IBandwidthMarket.Status.Open, "opened despite the used permit");
        assertEq(token.balanceOf(address(market)), DEPOSIT, "deposit escrowed");
        assertEq(token.allowance(client, address(market)), 0, "allowance spent");
        assertEq(token.nonces(client), 1, "permit used once");
    }

    function test_RevertWhen_openOrderWithPermitFailsAndNoAllowance() public {
        vm.prank(client);
        token.approve(address(market), 0);
        uint256 deadline = block.timestamp + 1 hours;
        // Signed by the wrong key: the permit fails, is ignored, and the pull then fails.
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(STRANGER_KEY, client, DEPOSIT, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(market), 0, DEPOSIT)
        );
        vm.prank(client);
        market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE, deadline, v, r, s);
    }

    function test_RevertWhen_openOrderWithPermitPriceAboveMax() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(CLIENT_KEY, client, DEPOSIT, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketPriceAboveMax.selector, provider, PRICE, PRICE - 1)
        );
        vm.prank(client);
        market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE - 1, deadline, v, r, s);
    }

    // =============================================================== redeem

    function test_redeem_paysProviderAndRecordsPaid() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        uint256 providerBefore = token.balanceOf(provider);

        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(id, provider, r.cumulativeBytes, 10e18, 10e18);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider, 10e18);
        vm.prank(provider);
        uint256 payout = market.redeem(r);

        assertEq(payout, 10e18, "payout");
        assertEq(token.balanceOf(provider), providerBefore + 10e18, "provider paid");
        assertEq(token.balanceOf(address(market)), DEPOSIT - 10e18, "escrow left");
        _assertState(id, 10e18, IBandwidthMarket.Status.Open, "after redeem");
    }

    function test_redeem_laterReceiptPaysOnlyTheDifference() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 10e18));
        uint256 providerBefore = token.balanceOf(provider);
        IBandwidthMarket.Redemption memory r = receipt(id, o, 25e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(id, provider, r.cumulativeBytes, 25e18, 15e18);
        assertEq(_redeem(r), 15e18, "payout is the difference");
        assertEq(token.balanceOf(provider), providerBefore + 15e18, "provider paid the difference");
        _assertState(id, 25e18, IBandwidthMarket.Status.Open, "cumulative paid");
    }

    function test_redeem_byStrangerPaysProviderNotSender() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 1e18)); // the provider accepts the order; later receipts anyone may submit
        IBandwidthMarket.Redemption memory r = receipt(id, o, 11e18);
        uint256 strangerBefore = token.balanceOf(stranger);
        uint256 providerBefore = token.balanceOf(provider);
        vm.prank(stranger);
        market.redeem(r);
        assertEq(token.balanceOf(stranger), strangerBefore, "stranger's balance unchanged");
        assertEq(token.balanceOf(provider), providerBefore + 10e18, "provider paid");
    }

    function test_redeem_laterReceiptByAnyone() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 1e18));
        IBandwidthMarket.Redemption memory r = receipt(id, o, 3e18);
        vm.prank(client); // even the client may submit a later receipt: it pays the provider
        assertEq(market.redeem(r), 2e18, "client-submitted later receipt");
        IBandwidthMarket.Redemption memory r2 = receipt(id, o, 6e18);
        vm.prank(stranger);
        assertEq(market.redeem(r2), 3e18, "stranger-submitted later receipt");
        _assertState(id, 6e18, IBandwidthMarket.Status.Open, "paid");
    }

    function test_RevertWhen_redeemFirstReceiptNotByProvider() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        address[3] memory others = [client, stranger, provider2];
        for (uint256 i; i < others.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotAccepted.selector, id, others[i], provider)
            );
            vm.prank(others[i]);
            market.redeem(r);
        }
        _assertState(id, 0, IBandwidthMarket.Status.Open, "nothing paid");
        // A 1-unit receipt of the client's own (the cheapest way to make an order "paid") is refused too.
        IBandwidthMarket.Redemption memory pin = receipt(id, o, 1);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotAccepted.selector, id, stranger, provider));
        vm.prank(stranger);
        market.redeem(pin);
        assertEq(_redeem(r), 10e18, "the provider redeems it");
    }

    function test_RevertWhen_redeemManyFirstReceiptNotByItsProvider() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = _open();
        (bytes32 idB, IBandwidthMarket.Order memory oB) = openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2);
        _redeem(receipt(idA, oA, 1e18)); // A is accepted, B is not
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](2);
        rs[0] = receipt(idA, oA, 2e18);
        rs[1] = receipt(idB, oB, 3e18);
        // provider may send A's later receipt but not B's first one (provider2's acceptance).
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotAccepted.selector, idB, provider, provider2));
        vm.prank(provider);
        market.redeemMany(rs);
        _assertState(idA, 1e18, IBandwidthMarket.Status.Open, "A rolled back");
        _assertState(idB, 0, IBandwidthMarket.Status.Open, "B untouched");
    }

    function test_redeem_wholeDeposit() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        assertEq(_redeem(receipt(id, o, DEPOSIT)), DEPOSIT, "whole deposit");
        assertEq(token.balanceOf(address(market)), 0, "escrow empty");
        _assertState(id, DEPOSIT, IBandwidthMarket.Status.Open, "still open until closed");
    }

    function test_redeem_worksAfterExpiryUntilReclaimed() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.warp(o.expiry + GRACE - 1);
        assertEq(_redeem(receipt(id, o, 10e18)), 10e18, "during grace");
        vm.warp(o.expiry + GRACE + 1 days);
        assertEq(_redeem(receipt(id, o, 20e18)), 10e18, "after grace, before any reclaim");
    }

    function test_redeem_acceptsAmountAtRoundedUpPrice() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        // One byte at 2e18 per GiB costs 2e18 / 2^30 = 1862645149.2..., rounded up to 1862645150.
        uint256 maxAmount = (PRICE + GIB - 1) / GIB;
        assertEq(_redeem(_redemption(CLIENT_KEY, id, o, 1, maxAmount)), maxAmount, "ceil accepted");
    }

    function test_RevertWhen_redeemUnknownOrder() public {
        IBandwidthMarket.Order memory o = IBandwidthMarket.Order({
            nonce: 42,
            client: client,
            provider: provider,
            deposit: uint96(DEPOSIT),
            pricePerGiB: uint96(PRICE),
            expiry: uint64(block.timestamp + DURATION)
        });
        bytes32 id = keccak256(abi.encode(o));
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        _redeem(r);
    }

    function test_RevertWhen_redeemClosedOrder() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        bytes memory sig = signClose(PROVIDER_KEY, id, 5e18);
        vm.prank(client);
        market.close(id, o, 5e18, sig);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        _redeem(r);
    }

    function test_RevertWhen_redeemTermsDoNotMatchOrderId() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        // The provider claims a higher price than the order was opened at.
        r.order.pricePerGiB = uint96(PRICE * 2);
        bytes32 termsId = keccak256(abi.encode(r.order));
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketTermsMismatch.selector, id, termsId));
        _redeem(r);
    }

    function test_RevertWhen_redeemSignedByNonClient() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        uint256 bytes_ = bytesFor(10e18, PRICE);
        IBandwidthMarket.Redemption memory byProvider = _redemption(PROVIDER_KEY, id, o, bytes_, 10e18);
        IBandwidthMarket.Redemption memory byStranger = _redemption(STRANGER_KEY, id, o, bytes_, 10e18);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(byProvider);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(byStranger);
    }

    function test_RevertWhen_redeemReceiptFieldsTampered() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        r.cumulativeAmount = 11e18; // client signed 10
        r.cumulativeBytes = bytesFor(11e18, PRICE);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(r);

        r = receipt(id, o, 10e18);
        r.cumulativeBytes += 1; // more bytes than the client signed for
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(r);

        r = receipt(id, o, 10e18);
        r.signature = "";
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(r);
    }

    function test_RevertWhen_redeemReceiptOfOrderAForOrderB() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = _open();
        (bytes32 idB, IBandwidthMarket.Order memory oB) = _open(); // same client, provider and terms but the nonce
        IBandwidthMarket.Redemption memory forA = receipt(idA, oA, 10e18);

        // A's signature presented as B's receipt.
        IBandwidthMarket.Redemption memory asB = receipt(idA, oA, 10e18);
        asB.orderId = idB;
        asB.order = oB;
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, idB));
        _redeem(asB);

        // A's receipt with B's terms.
        IBandwidthMarket.Redemption memory mixed = receipt(idA, oA, 10e18);
        mixed.order = oB;
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketTermsMismatch.selector, idA, idB));
        _redeem(mixed);

        _assertState(idA, 0, IBandwidthMarket.Status.Open, "A untouched");
        _assertState(idB, 0, IBandwidthMarket.Status.Open, "B untouched");
        // The receipt is good for A itself.
        assertEq(_redeem(forA), 10e18, "valid for A");
    }

    function test_RevertWhen_redeemReceiptSignedForAnotherMarket() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();

        // A second deployment where the same client opens an order with identical terms.
        Set memory set2 = deploySet();
        (FlowToken t2, Staking s2, BandwidthMarket m2) = (set2.token, set2.staking, set2.market);
        _fundAndStake(t2, s2, m2, STAKE);
        vm.prank(client);
        bytes32 id2 = m2.openOrder(provider, DEPOSIT, DURATION, PRICE);
        assertEq(id2, id, "same terms and nonce give the same id on both markets");

        IBandwidthMarket.Redemption memory forMarket = _redemption(CLIENT_KEY, id, o, GIB, PRICE);
        IBandwidthMarket.Redemption memory forM2 = _redemptionOn(m2, CLIENT_KEY, id, o, GIB, PRICE);
        assertTrue(keccak256(forMarket.signature) != keccak256(forM2.signature), "domains differ");

        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        m2.redeem(forMarket);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(forM2);

        vm.prank(provider);
        assertEq(m2.redeem(forM2), PRICE, "valid on its own market");
        assertEq(_redeem(forMarket), PRICE, "valid on its own market");
    }

    function test_RevertWhen_redeemReceiptSignedOnAnotherChain() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        bytes32 digestBefore = market.receiptDigest(id, r.cumulativeBytes, 10e18);

        vm.chainId(block.chainid + 1);
        assertTrue(market.receiptDigest(id, r.cumulativeBytes, 10e18) != digestBefore, "domain changed");
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidReceiptSignature.selector, id));
        _redeem(r);

        // Signed under the current chain id it verifies.
        assertEq(_redeem(receipt(id, o, 10e18)), 10e18, "re-signed receipt");
    }

    function test_RevertWhen_redeemReplaysReceipt() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        _redeem(r);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, id, 10e18, 10e18));
        _redeem(r);
    }

    function test_RevertWhen_redeemLowerReceiptAfterHigher() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory low = receipt(id, o, 10e18);
        _redeem(receipt(id, o, 20e18));
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, id, 10e18, 20e18));
        _redeem(low);
    }

    function test_RevertWhen_redeemZeroAmount() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = _redemption(CLIENT_KEY, id, o, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, id, 0, 0));
        _redeem(r);
    }

    function test_RevertWhen_redeemAmountExceedsDeposit() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, DEPOSIT + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketAmountExceedsDeposit.selector, id, DEPOSIT + 1, DEPOSIT)
        );
        _redeem(r);
    }

    function test_RevertWhen_redeemAmountAbovePrice() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        // One GiB costs PRICE; the client (mistakenly) signed PRICE + 1 for it.
        IBandwidthMarket.Redemption memory r = _redemption(CLIENT_KEY, id, o, GIB, PRICE + 1);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketAmountAbovePrice.selector, id, PRICE + 1, PRICE));
        _redeem(r);
    }

    // =============================================================== redeemMany

    function test_redeemMany_paysEachProviderItsOwnShare() public {
        // Orders of two providers (and two clients): consecutive receipts of one provider share a
        // transfer, a change of provider pays out what is pending, and every provider gets its own share.
        (bytes32 idA, IBandwidthMarket.Order memory oA) = openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        (bytes32 idB, IBandwidthMarket.Order memory oB) = openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2);
        (bytes32 idC, IBandwidthMarket.Order memory oC) = openOrderAs(stranger, provider, 50e18, DURATION, PRICE);
        (bytes32 idD, IBandwidthMarket.Order memory oD) = openOrderAs(client, provider2, 40e18, DURATION, PRICE2);
        assertEq(oB.pricePerGiB, PRICE2, "provider2's own price");
        // Each provider accepts its orders (1 unit each): a batch from anyone else may then carry them.
        _redeem(receipt(idA, oA, 1));
        _redeem(_redemption(STRANGER_KEY, idC, oC, bytesFor(1, PRICE), 1));
        _redeem(receipt(idB, oB, 1));
        _redeem(receipt(idD, oD, 1));

        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](5);
        rs[0] = receipt(idA, oA, 10e18);
        rs[1] = _redemption(STRANGER_KEY, idC, oC, bytesFor(5e18, PRICE), 5e18);
        rs[2] = receipt(idB, oB, 30e18);
        rs[3] = receipt(idD, oD, 40e18);
        rs[4] = receipt(idA, oA, 12e18); // a later receipt of A, after provider2's

        uint256 p1Before = token.balanceOf(provider);
        uint256 p2Before = token.balanceOf(provider2);
        uint256 verifierBefore = token.balanceOf(verifier);
        uint256 escrowBefore = token.balanceOf(address(market));

        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(idA, provider, rs[0].cumulativeBytes, 10e18, 10e18 - 1);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(idC, provider, rs[1].cumulativeBytes, 5e18, 5e18 - 1);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(idB, provider2, rs[2].cumulativeBytes, 30e18, 30e18 - 1);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider, 15e18 - 2);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(idD, provider2, rs[3].cumulativeBytes, 40e18, 40e18 - 1);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(idA, provider, rs[4].cumulativeBytes, 12e18, 2e18);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider2, 70e18 - 2);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider, 2e18);
        vm.prank(verifier);
        uint256 total = market.redeemMany(rs);

        assertEq(total, 87e18 - 4, "total payout");
        assertEq(token.balanceOf(provider), p1Before + 10e18 + 5e18 + 2e18 - 2, "provider: A and C");
        assertEq(token.balanceOf(provider2), p2Before + 30e18 + 40e18 - 2, "provider2: B and D");
        assertEq(token.balanceOf(verifier), verifierBefore, "submitter's balance unchanged");
        assertEq(token.balanceOf(address(market)), escrowBefore - (87e18 - 4), "escrow decreased by the total");
        _assertState(idA, 12e18, IBandwidthMarket.Status.Open, "A");
        _assertState(idB, 30e18, IBandwidthMarket.Status.Open, "B");
        _assertState(idC, 5e18, IBandwidthMarket.Status.Open, "C");
        _assertState(idD, 40e18, IBandwidthMarket.Status.Open, "D");
    }

    function test_redeemMany_alternatingProvidersPayEachReceiptToItsProvider() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        (bytes32 idB, IBandwidthMarket.Order memory oB) = openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2);
        (bytes32 idC, IBandwidthMarket.Order memory oC) = openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        _redeem(receipt(idB, oB, 1)); // provider2 accepted B; provider's A and C come first in provider's batch
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](3);
        rs[0] = receipt(idA, oA, 1e18);
        rs[1] = receipt(idB, oB, 20e18);
        rs[2] = receipt(idC, oC, 300);
        uint256 p1Before = token.balanceOf(provider);
        uint256 p2Before = token.balanceOf(provider2);
        assertEq(_redeemMany(rs), 21e18 + 300 - 1, "total");
        assertEq(token.balanceOf(provider), p1Before + 1e18 + 300, "provider: A and C");
        assertEq(token.balanceOf(provider2), p2Before + 20e18 - 1, "provider2: B");
    }

    function test_redeemMany_twoIncreasingReceiptsOfOneOrder() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](2);
        rs[0] = receipt(id, o, 10e18);
        rs[1] = receipt(id, o, 25e18);
        uint256 providerBefore = token.balanceOf(provider);

        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(id, provider, rs[0].cumulativeBytes, 10e18, 10e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.Redeemed(id, provider, rs[1].cumulativeBytes, 25e18, 15e18);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider, 25e18);
        assertEq(_redeemMany(rs), 25e18, "total");

        assertEq(token.balanceOf(provider), providerBefore + 25e18, "paid the highest receipt once");
        _assertState(id, 25e18, IBandwidthMarket.Status.Open, "paid");
    }

    function test_redeemMany_singleReceiptEqualsRedeem() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](1);
        rs[0] = receipt(id, o, 10e18);
        uint256 providerBefore = token.balanceOf(provider);
        assertEq(_redeemMany(rs), 10e18, "total");
        assertEq(token.balanceOf(provider), providerBefore + 10e18, "paid");
    }

    function test_RevertWhen_redeemManyEmptyBatch() public {
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](0);
        vm.expectRevert(IBandwidthMarket.MarketEmptyBatch.selector);
        _redeemMany(rs);
    }

    function test_RevertWhen_redeemManyContainsBadReceipt_nothingPaid() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = _open();
        (bytes32 idB, IBandwidthMarket.Order memory oB) = openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2);
        _redeem(receipt(idB, oB, 1)); // provider2 accepted B, so provider's batch may carry it
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](3);
        rs[0] = receipt(idA, oA, 25e18);
        rs[1] = receipt(idB, oB, 5e18);
        rs[2] = receipt(idA, oA, 10e18); // lower than the first: not newer
        uint256 p1Before = token.balanceOf(provider);
        uint256 p2Before = token.balanceOf(provider2);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, idA, 10e18, 25e18));
        _redeemMany(rs);
        assertEq(token.balanceOf(provider), p1Before, "provider unpaid");
        assertEq(token.balanceOf(provider2), p2Before, "provider2 unpaid");
        _assertState(idA, 0, IBandwidthMarket.Status.Open, "A rolled back");
        _assertState(idB, 1, IBandwidthMarket.Status.Open, "B rolled back");
    }

    function test_RevertWhen_redeemManySameReceiptTwice() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](2);
        rs[0] = receipt(id, o, 10e18);
        rs[1] = rs[0];
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, id, 10e18, 10e18));
        _redeemMany(rs);
    }

    // =============================================================== close

    function test_close_paysProviderRestAndRefundsClient() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 10e18));
        uint256 lock = _lockFor(DEPOSIT, LOCK_BPS);
        uint256 providerBefore = token.balanceOf(provider);
        uint256 clientBefore = token.balanceOf(client);
        bytes memory sig = signClose(PROVIDER_KEY, id, 30e18);

        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderClosed(id, client, provider, 20e18, 70e18, 30e18, true);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeUnlocked(provider, lock, 0);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), provider, 20e18);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), client, 70e18);
        vm.prank(client);
        market.close(id, o, 30e18, sig);

        assertEq(token.balanceOf(provider), providerBefore + 20e18, "provider: finalAmount - paid");
        assertEq(token.balanceOf(client), clientBefore + 70e18, "client: deposit - finalAmount");
        assertEq(token.balanceOf(address(market)), 0, "nothing left in escrow");
        assertEq(_locked(provider), 0, "stake released");
        _assertState(id, 30e18, IBandwidthMarket.Status.Closed, "closed");
    }

    function test_close_atPaidAmountOnlyRefunds() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 10e18));
        uint256 providerBefore = token.balanceOf(provider);
        uint256 clientBefore = token.balanceOf(client);
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderClosed(id, client, provider, 0, 90e18, 10e18, true);
        vm.prank(client);
        market.close(id, o, 10e18, sig);
        assertEq(token.balanceOf(provider), providerBefore, "no payout");
        assertEq(token.balanceOf(client), clientBefore + 90e18, "refund");
    }

    function test_close_atDepositOnlyPays() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        uint256 providerBefore = token.balanceOf(provider);
        uint256 clientBefore = token.balanceOf(client);
        bytes memory sig = signClose(PROVIDER_KEY, id, DEPOSIT);
        vm.prank(client);
        market.close(id, o, DEPOSIT, sig);
        assertEq(token.balanceOf(provider), providerBefore + DEPOSIT, "whole deposit paid");
        assertEq(token.balanceOf(client), clientBefore, "no refund");
        _assertState(id, DEPOSIT, IBandwidthMarket.Status.Closed, "closed");
    }

    function test_close_releasesExactlyThisOrdersLock() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = openOrderAs(client, provider, 1001, DURATION, PRICE);
        openOrderAs(client, provider, 4003, DURATION, PRICE);
        uint256 lockA = _lockFor(1001, LOCK_BPS);
        uint256 lockB = _lockFor(4003, LOCK_BPS);
        assertEq(lockA, 501, "ceil(1001 / 2)");
        assertEq(_locked(provider), lockA + lockB, "both locked");
        bytes memory sig = signClose(PROVIDER_KEY, idA, 0);
        vm.prank(client);
        market.close(idA, oA, 0, sig);
        assertEq(_locked(provider), lockB, "only A's lock released");
        assertEq(staking.unlockedStake(provider), STAKE - lockB, "unlocked stake");
    }

    function test_RevertWhen_closeByNonClient() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketNotClient.selector, id, provider, client));
        vm.prank(provider);
        market.close(id, o, 10e18, sig);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketNotClient.selector, id, stranger, client));
        vm.prank(stranger);
        market.close(id, o, 10e18, sig);
        _assertState(id, 0, IBandwidthMarket.Status.Open, "still open");
    }

    function test_RevertWhen_closeFinalBelowPaid() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 10e18));
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18 - 1);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketFinalBelowPaid.selector, id, 10e18 - 1, 10e18));
        vm.prank(client);
        market.close(id, o, 10e18 - 1, sig);
    }

    function test_RevertWhen_closeFinalExceedsDeposit() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, DEPOSIT + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketAmountExceedsDeposit.selector, id, DEPOSIT + 1, DEPOSIT)
        );
        vm.prank(client);
        market.close(id, o, DEPOSIT + 1, sig);
    }

    function test_RevertWhen_closeSignatureNotByProvider() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory byClient = signClose(CLIENT_KEY, id, 10e18);
        bytes memory byStranger = signClose(STRANGER_KEY, id, 10e18);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, byClient);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, byStranger);
    }

    function test_RevertWhen_closeSignatureForOtherAmountOrOrder() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        (bytes32 other,) = _open();
        bytes memory forOtherAmount = signClose(PROVIDER_KEY, id, 5e18);
        bytes memory forOtherOrder = signClose(PROVIDER_KEY, other, 10e18);
        bytes memory receiptSig = signReceipt(PROVIDER_KEY, id, 10e18, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, forOtherAmount);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, forOtherOrder);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, receiptSig);
    }

    function test_RevertWhen_closeSignedOnAnotherChain() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidCloseSignature.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, sig);
    }

    function test_RevertWhen_closeAlreadyClosed() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18);
        vm.prank(client);
        market.close(id, o, 10e18, sig);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        vm.prank(client);
        market.close(id, o, 10e18, sig);
    }

    function test_RevertWhen_closeUnknownOrder() public {
        (, IBandwidthMarket.Order memory o) = _open();
        o.nonce = 99;
        bytes32 id = keccak256(abi.encode(o));
        bytes memory sig = signClose(PROVIDER_KEY, id, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        vm.prank(client);
        market.close(id, o, 0, sig);
    }

    function test_RevertWhen_closeTermsDoNotMatchOrderId() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, 10e18);
        o.deposit = uint96(DEPOSIT * 2); // a bigger deposit would mean a bigger refund
        bytes32 termsId = keccak256(abi.encode(o));
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketTermsMismatch.selector, id, termsId));
        vm.prank(client);
        market.close(id, o, 10e18, sig);
    }

    // =============================================================== reclaim

    function test_reclaim_byStrangerAtExpiryPlusGraceRefundsClient() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 10e18));
        uint256 lock = _lockFor(DEPOSIT, LOCK_BPS);
        uint256 clientBefore = token.balanceOf(client);
        uint256 providerBefore = token.balanceOf(provider);
        uint256 strangerBefore = token.balanceOf(stranger);

        vm.warp(o.expiry + GRACE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderClosed(id, client, provider, 0, 90e18, 10e18, false);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeUnlocked(provider, lock, 0);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), client, 90e18);
        vm.prank(stranger);
        uint256 refund = market.reclaim(id, o);

        assertEq(refund, 90e18, "refund = deposit - paid");
        assertEq(token.balanceOf(client), clientBefore + 90e18, "client refunded");
        assertEq(token.balanceOf(provider), providerBefore, "provider unchanged");
        assertEq(token.balanceOf(stranger), strangerBefore, "stranger's balance unchanged");
        assertEq(token.balanceOf(address(market)), 0, "escrow empty");
        assertEq(_locked(provider), 0, "stake released");
        _assertState(id, 10e18, IBandwidthMarket.Status.Closed, "closed");
    }

    function test_RevertWhen_reclaimOneSecondBeforeExpiryPlusGrace() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        uint256 reclaimableAt = uint256(o.expiry) + GRACE;
        vm.warp(reclaimableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketNotReclaimable.selector, id, reclaimableAt, reclaimableAt - 1)
        );
        vm.prank(client);
        market.reclaim(id, o);
        _assertState(id, 0, IBandwidthMarket.Status.Open, "still open");
    }

    function test_RevertWhen_reclaimAtExpiry() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.warp(o.expiry);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBandwidthMarket.MarketNotReclaimable.selector, id, uint256(o.expiry) + GRACE, o.expiry
            )
        );
        market.reclaim(id, o);
    }

    function test_reclaim_fullyPaidOrderRefundsNothing() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, DEPOSIT));
        uint256 clientBefore = token.balanceOf(client);
        vm.warp(o.expiry + GRACE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderClosed(id, client, provider, 0, 0, DEPOSIT, false);
        assertEq(market.reclaim(id, o), 0, "nothing to refund");
        assertEq(token.balanceOf(client), clientBefore, "client unchanged");
        assertEq(_locked(provider), 0, "stake released");
    }

    function test_reclaim_releasesExactlyThisOrdersLock() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = openOrderAs(client, provider, 777, DURATION, PRICE);
        openOrderAs(client, provider, 12345, MAX_DURATION, PRICE);
        uint256 lockB = _lockFor(12345, LOCK_BPS);
        vm.warp(oA.expiry + GRACE);
        market.reclaim(idA, oA);
        assertEq(_locked(provider), lockB, "only A's lock released");
    }

    function test_RevertWhen_reclaimAlreadyClosed() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.warp(o.expiry + GRACE);
        market.reclaim(id, o);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        market.reclaim(id, o);
    }

    function test_RevertWhen_reclaimUnknownOrder() public {
        (, IBandwidthMarket.Order memory o) = _open();
        o.client = stranger;
        bytes32 id = keccak256(abi.encode(o));
        vm.warp(o.expiry + GRACE);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        market.reclaim(id, o);
    }

    function test_RevertWhen_reclaimTermsDoNotMatchOrderId() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        // Claiming an earlier expiry to reclaim early does not work: the terms no longer hash to the id.
        o.expiry -= 1 hours;
        bytes32 termsId = keccak256(abi.encode(o));
        vm.warp(o.expiry + GRACE);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketTermsMismatch.selector, id, termsId));
        market.reclaim(id, o);
    }

    // =============================================================== cancel

    function test_cancel_refundsWholeDepositUnlocksStakeAndCloses() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        uint256 lock = _lockFor(DEPOSIT, LOCK_BPS);
        uint256 clientBefore = token.balanceOf(client);
        uint256 providerBefore = token.balanceOf(provider);

        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderCancelled(id, client, provider, DEPOSIT);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeUnlocked(provider, lock, 0);
        vm.expectEmit(true, true, true, true, address(token));
        emit IERC20.Transfer(address(market), client, DEPOSIT);
        vm.prank(provider);
        uint256 refund = market.cancel(id, o, 0);

        assertEq(refund, DEPOSIT, "refund is the whole deposit");
        assertEq(token.balanceOf(client), clientBefore + DEPOSIT, "client refunded in full");
        assertEq(token.balanceOf(provider), providerBefore, "provider keeps nothing");
        assertEq(token.balanceOf(address(market)), 0, "escrow empty");
        assertEq(_locked(provider), 0, "stake unlocked");
        assertEq(staking.unlockedStake(provider), STAKE, "all of it");
        assertEq(market.refusedUntil(provider, client), 0, "no refusal unless asked");
        _assertState(id, 0, IBandwidthMarket.Status.Closed, "cancelled");
    }

    function test_cancel_withRefuseUntilRefusesTheClient() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        uint64 until = uint64(block.timestamp + 3 days);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.OrderCancelled(id, client, provider, DEPOSIT);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.ClientRefused(provider, client, until);
        vm.prank(provider);
        market.cancel(id, o, until);
        assertEq(market.refusedUntil(provider, client), until, "refused");
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketClientRefused.selector, provider, client, until));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
    }

    function test_cancel_afterExpiryBeforeReclaim() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.warp(o.expiry + GRACE + 5 days);
        uint256 clientBefore = token.balanceOf(client);
        vm.prank(provider);
        assertEq(market.cancel(id, o, 0), DEPOSIT, "whole deposit");
        assertEq(token.balanceOf(client), clientBefore + DEPOSIT, "refunded");
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        market.reclaim(id, o);
    }

    function test_cancel_releasesExactlyThisOrdersLock() public {
        (bytes32 idA, IBandwidthMarket.Order memory oA) = openOrderAs(client, provider, 777, DURATION, PRICE);
        (bytes32 idB,) = openOrderAs(stranger, provider, 12345, MAX_DURATION, PRICE);
        vm.prank(provider);
        market.cancel(idA, oA, 0);
        assertEq(_locked(provider), _lockFor(12345, LOCK_BPS), "only A's lock released");
        _assertState(idB, 0, IBandwidthMarket.Status.Open, "B still open");
    }

    function test_RevertWhen_cancelByAnyoneButTheProvider() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        address[3] memory others = [client, stranger, provider2];
        for (uint256 i; i < others.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IBandwidthMarket.MarketNotProvider.selector, id, others[i], provider)
            );
            vm.prank(others[i]);
            market.cancel(id, o, 0);
        }
        _assertState(id, 0, IBandwidthMarket.Status.Open, "still open");
    }

    function test_RevertWhen_cancelAfterARedemption() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        _redeem(receipt(id, o, 1));
        uint256 clientBefore = token.balanceOf(client);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderAccepted.selector, id, 1));
        vm.prank(provider);
        market.cancel(id, o, 0);
        assertEq(token.balanceOf(client), clientBefore, "no refund");
        assertEq(_locked(provider), _lockFor(DEPOSIT, LOCK_BPS), "still locked");
        _assertState(id, 1, IBandwidthMarket.Status.Open, "still open");
    }

    /// @notice The provider's own race: a cancel and a redemption of the same order are both the
    /// provider's; whichever is mined first wins and the other is refused, nobody else can interfere.
    function test_RevertWhen_redeemAfterCancel() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        IBandwidthMarket.Redemption memory r = receipt(id, o, 10e18);
        vm.prank(provider);
        market.cancel(id, o, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        _redeem(r);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        vm.prank(stranger);
        market.redeem(r);
    }

    function test_RevertWhen_cancelTwiceOrAfterClose() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.prank(provider);
        market.cancel(id, o, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        vm.prank(provider);
        market.cancel(id, o, 0);

        // A co-signed close at 0 (nothing paid) ends an order too; a cancel after it is refused.
        (bytes32 id2, IBandwidthMarket.Order memory o2) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id2, 0);
        vm.prank(client);
        market.close(id2, o2, 0, sig);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id2));
        vm.prank(provider);
        market.cancel(id2, o2, 0);
    }

    function test_RevertWhen_closeOrReclaimAfterCancel() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        bytes memory sig = signClose(PROVIDER_KEY, id, 0);
        vm.prank(provider);
        market.cancel(id, o, 0);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        vm.prank(client);
        market.close(id, o, 0, sig);
        vm.warp(o.expiry + GRACE);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketOrderNotOpen.selector, id));
        market.reclaim(id, o);
    }

    function test_RevertWhen_cancelTermsDoNotMatchOrderId() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        // Claiming a larger deposit (to refund more, or unlock more) changes the id.
        o.deposit += 1;
        bytes32 termsId = keccak256(abi.encode(o));
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketTermsMismatch.selector, id, termsId));
        vm.prank(provider);
        market.cancel(id, o, 0);
    }

    function testFuzz_cancel_refundsDepositAndUnlocksExactly(uint256 d1, uint256 d2, uint256 elapsed) public {
        d1 = bound(d1, 1, STAKE);
        d2 = bound(d2, 1, STAKE);
        (bytes32 id1, IBandwidthMarket.Order memory o1) = openOrderAs(client, provider, d1, DURATION, PRICE);
        openOrderAs(stranger, provider, d2, MAX_DURATION, PRICE);
        uint256 lockedBefore = _locked(provider);
        assertEq(lockedBefore, _lockFor(d1, LOCK_BPS) + _lockFor(d2, LOCK_BPS), "both locked");
        vm.warp(block.timestamp + bound(elapsed, 0, MAX_DURATION + GRACE + 1 days));
        uint256 clientBefore = token.balanceOf(client);
        vm.prank(provider);
        assertEq(market.cancel(id1, o1, 0), d1, "refund = deposit");
        assertEq(token.balanceOf(client), clientBefore + d1, "client refunded");
        assertEq(_locked(provider), _lockFor(d2, LOCK_BPS), "exactly order 1's lock released");
        assertEq(token.balanceOf(address(market)), d2, "escrow = the other order's deposit");
    }

    // =============================================================== refuse

    function test_refuse_refusesOpenOrderAndPermitUntilTheTime() public {
        uint64 until = uint64(block.timestamp + 1 hours);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.ClientRefused(provider, client, until);
        vm.prank(provider);
        market.refuse(client, until);
        assertEq(market.refusedUntil(provider, client), until, "recorded");

        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketClientRefused.selector, provider, client, until));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(CLIENT_KEY, client, DEPOSIT, deadline);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketClientRefused.selector, provider, client, until));
        vm.prank(client);
        market.openOrderWithPermit(provider, DEPOSIT, DURATION, PRICE, deadline, v, r, s);

        vm.warp(until - 1);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketClientRefused.selector, provider, client, until));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
        vm.warp(until);
        (bytes32 id,) = openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
        _assertState(id, 0, IBandwidthMarket.Status.Open, "accepted again at refusedUntil");
    }

    function test_refuse_isPerProviderAndPerClient() public {
        vm.prank(provider);
        market.refuse(client, type(uint64).max);
        openOrderAs(client, provider2, DEPOSIT, DURATION, PRICE2); // another provider takes the client
        openOrderAs(stranger, provider, DEPOSIT, DURATION, PRICE); // another client buys from provider
        assertEq(market.refusedUntil(provider2, client), 0, "provider2 refuses nobody");
        assertEq(market.refusedUntil(provider, stranger), 0, "stranger is not refused");
    }

    function test_refuse_liftedWithZero() public {
        vm.startPrank(provider);
        market.refuse(client, type(uint64).max);
        vm.expectEmit(true, true, true, true, address(market));
        emit IBandwidthMarket.ClientRefused(provider, client, 0);
        market.refuse(client, 0);
        vm.stopPrank();
        assertEq(market.refusedUntil(provider, client), 0, "lifted");
        openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
    }

    function test_refuse_leavesOpenOrdersAlone() public {
        (bytes32 id, IBandwidthMarket.Order memory o) = _open();
        vm.prank(provider);
        market.refuse(client, type(uint64).max);
        assertEq(_redeem(receipt(id, o, 10e18)), 10e18, "an open order still pays");
        bytes memory sig = signClose(PROVIDER_KEY, id, 20e18);
        vm.prank(client);
        market.close(id, o, 20e18, sig);
        _assertState(id, 20e18, IBandwidthMarket.Status.Closed, "closed as usual");
    }

    /// @notice Verifiers probe providers as paying clients: a provider cannot refuse one that could
    /// accuse it (it would hide from audits). Refusing it is recorded but ignored until the verifier
    /// can no longer accuse (here: it starts to unbond, so it has stake thawing).
    function test_refuse_doesNotStopAVerifierThatCanAccuse() public {
        vm.prank(verifier);
        staking.stake(IStaking.Role.Verifier, VERIFIER_MIN + 1e18);
        vm.prank(provider);
        market.refuse(verifier, type(uint64).max);
        assertEq(market.refusedUntil(provider, verifier), type(uint64).max, "recorded");
        (bytes32 id,) = openOrderAs(verifier, provider, DEPOSIT, DURATION, PRICE);
        _assertState(id, 0, IBandwidthMarket.Status.Open, "the verifier's probe order opens");

        vm.prank(verifier);
        staking.requestUnstake(1e18); // thawing: it could no longer accuse, and the refusal applies
        vm.expectRevert(
            abi.encodeWithSelector(
                IBandwidthMarket.MarketClientRefused.selector, provider, verifier, uint256(type(uint64).max)
            )
        );
        vm.prank(verifier);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
    }

    function test_RevertWhen_openOrderByRefusedVerifierBelowMinimum() public {
        vm.prank(verifier);
        staking.stake(IStaking.Role.Verifier, VERIFIER_MIN);
        vm.prank(slasher);
        staking.slash(verifier, 1); // below the minimum: it cannot accuse
        vm.prank(provider);
        market.refuse(verifier, type(uint64).max);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBandwidthMarket.MarketClientRefused.selector, provider, verifier, uint256(type(uint64).max)
            )
        );
        vm.prank(verifier);
        market.openOrder(provider, DEPOSIT, DURATION, PRICE);
    }

    /// @notice Anyone may keep a refusal list, but only its own: a stranger's "refusal" of the client
    /// does not stop the client from buying from the provider.
    function test_refuse_onlyForTheCallersOwnOrders() public {
        vm.prank(stranger);
        market.refuse(client, type(uint64).max);
        assertEq(market.refusedUntil(stranger, client), type(uint64).max, "the stranger's own list");
        assertEq(market.refusedUntil(provider, client), 0, "not the provider's");
        openOrderAs(client, provider, DEPOSIT, DURATION, PRICE);
    }

    // =============================================================== fuzz

    struct Flow {
        uint256 d1;
        uint256 d2;
        uint256 paid1;
        uint256 paid2;
        uint256 final1;
        uint256 clientStart;
        uint256 providerStart;
    }

    /// @dev Two orders, receipts, then one cooperative close and one reclaim: the total paid never
    /// exceeds a deposit, refunds are deposit - paid and the market always holds exactly the unpaid escrow.
    function testFuzz_settlement_conservesTokens(
        uint256 d1,
        uint256 d2,
        uint256 a1,
        uint256 a2,
        uint256 b1,
        uint256 final1
    ) public {
        Flow memory f;
        f.d1 = bound(d1, 1, STAKE);
        f.d2 = bound(d2, 1, STAKE);
        f.clientStart = token.balanceOf(client);
        f.providerStart = token.balanceOf(provider);
        (bytes32 id1, IBandwidthMarket.Order memory o1) = openOrderAs(client, provider, f.d1, DURATION, PRICE);
        (bytes32 id2, IBandwidthMarket.Order memory o2) = openOrderAs(client, provider, f.d2, 2 * DURATION, PRICE);
        assertEq(token.balanceOf(address(market)), f.d1 + f.d2, "escrow after open");

        a1 = bound(a1, 1, f.d1);
        f.paid1 = bound(a2, a1, f.d1); // == a1 is a replay
        f.paid2 = bound(b1, 1, f.d2);
        _redeem(receipt(id1, o1, a1));
        if (f.paid1 > a1) {
            assertEq(_redeem(receipt(id1, o1, f.paid1)), f.paid1 - a1, "later payout");
        } else {
            IBandwidthMarket.Redemption memory replay = receipt(id1, o1, f.paid1);
            vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketReceiptNotNewer.selector, id1, a1, a1));
            _redeem(replay);
        }
        assertEq(_redeem(receipt(id2, o2, f.paid2)), f.paid2, "payout 2");
        assertEq(market.orderState(id1).paid, f.paid1, "paid 1");
        assertLe(market.orderState(id1).paid, f.d1, "paid <= deposit 1");
        assertEq(token.balanceOf(address(market)), (f.d1 - f.paid1) + (f.d2 - f.paid2), "escrow = unpaid");

        // Cooperative close of order 1 at some final amount in [paid, deposit].
        f.final1 = bound(final1, f.paid1, f.d1);
        bytes memory sig = signClose(PROVIDER_KEY, id1, f.final1);
        vm.prank(client);
        market.close(id1, o1, f.final1, sig);
        assertEq(token.balanceOf(address(market)), f.d2 - f.paid2, "escrow = unpaid of order 2");

        // Reclaim of order 2 by anyone.
        vm.warp(o2.expiry + GRACE);
        vm.prank(stranger);
        assertEq(market.reclaim(id2, o2), f.d2 - f.paid2, "refund = deposit - paid");
        assertEq(token.balanceOf(address(market)), 0, "escrow empty");
        assertEq(token.balanceOf(provider), f.providerStart + f.final1 + f.paid2, "provider got what was paid");
        assertEq(token.balanceOf(client), f.clientStart - f.final1 - f.paid2, "client got the rest");
        assertEq(_locked(provider), 0, "all stake released");
    }

    /// @dev Any time before expiry + grace is refused (and so is the last second before it, whatever
    /// the duration); from then on anyone reclaims the unpaid rest for the client.
    function testFuzz_reclaim_onlyFromExpiryPlusGrace(uint256 duration, uint256 elapsed, uint256 paid) public {
        duration = bound(duration, 1, MAX_DURATION);
        elapsed = bound(elapsed, 0, MAX_DURATION + GRACE + 30 days);
        (bytes32 id, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, DEPOSIT, duration, PRICE);
        assertEq(o.expiry, block.timestamp + duration, "expiry");
        paid = bound(paid, 0, DEPOSIT);
        if (paid != 0) _redeem(receipt(id, o, paid));

        uint256 reclaimableAt = uint256(o.expiry) + GRACE;
        uint256 at = block.timestamp + elapsed;
        if (at < reclaimableAt) {
            vm.warp(at);
            vm.expectRevert(
                abi.encodeWithSelector(IBandwidthMarket.MarketNotReclaimable.selector, id, reclaimableAt, at)
            );
            vm.prank(stranger);
            market.reclaim(id, o);
            at = reclaimableAt;
        }
        vm.warp(reclaimableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketNotReclaimable.selector, id, reclaimableAt, reclaimableAt - 1)
        );
        vm.prank(stranger);
        market.reclaim(id, o);
        _assertState(id, paid, IBandwidthMarket.Status.Open, "still open");

        vm.warp(at);
        uint256 clientBefore = token.balanceOf(client);
        uint256 strangerBefore = token.balanceOf(stranger);
        vm.prank(stranger);
        assertEq(market.reclaim(id, o), DEPOSIT - paid, "refund");
        assertEq(token.balanceOf(client), clientBefore + DEPOSIT - paid, "client refunded");
        assertEq(token.balanceOf(stranger), strangerBefore, "caller gets nothing");
        _assertState(id, paid, IBandwidthMarket.Status.Closed, "closed");
    }

    function testFuzz_redeem_amountBoundedByCeilOfBytesTimesPrice(uint256 price, uint256 bytes_) public {
        price = bound(price, 1, 1e24);
        vm.prank(provider);
        staking.setOffer(price, "bafkreifuzzedprice");
        uint256 deposit = 2 * STAKE; // locks exactly the whole stake
        (bytes32 id, IBandwidthMarket.Order memory o) =
            openOrderAs(client, provider, deposit, DURATION, type(uint256).max);
        assertEq(o.pricePerGiB, price, "order price");

        // Keep the priced amount + 1 within the deposit so only the price check can refuse it.
        bytes_ = bound(bytes_, 1, ((deposit - 1) * GIB) / price);
        uint256 maxAmount = (bytes_ * price + GIB - 1) / GIB;
        assertGe(maxAmount, 1, "a byte costs at least one unit");

        IBandwidthMarket.Redemption memory over = _redemption(CLIENT_KEY, id, o, bytes_, maxAmount + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBandwidthMarket.MarketAmountAbovePrice.selector, id, maxAmount + 1, maxAmount)
        );
        _redeem(over);

        assertEq(_redeem(_redemption(CLIENT_KEY, id, o, bytes_, maxAmount)), maxAmount, "ceil accepted");
        _assertState(id, maxAmount, IBandwidthMarket.Status.Open, "paid");
    }

    function testFuzz_close_splitsDepositBetweenProviderAndClient(uint256 deposit, uint256 paid, uint256 finalAmount)
        public
    {
        deposit = bound(deposit, 1, 2 * STAKE);
        (bytes32 id, IBandwidthMarket.Order memory o) = openOrderAs(client, provider, deposit, DURATION, PRICE);
        paid = bound(paid, 0, deposit);
        if (paid != 0) _redeem(receipt(id, o, paid));
        finalAmount = bound(finalAmount, paid, deposit);
        uint256 providerBefore = token.balanceOf(provider);
        uint256 clientBefore = token.balanceOf(client);
        bytes memory sig = signClose(PROVIDER_KEY, id, finalAmount);
        vm.prank(client);
        market.close(id, o, finalAmount, sig);
        assertEq(token.balanceOf(provider), providerBefore + finalAmount - paid, "provider: final - paid");
        assertEq(token.balanceOf(client), clientBefore + deposit - finalAmount, "client: deposit - final");
        assertEq(token.balanceOf(address(market)), 0, "escrow empty");
        assertEq(_locked(provider), 0, "lock released");
        _assertState(id, finalAmount, IBandwidthMarket.Status.Closed, "closed");
    }

    function testFuzz_openOrder_locksCeilOfDepositTimesLockBps(uint256 deposit, uint256 bps) public {
        bps = bound(bps, 1, 10_000);
        deposit = bound(deposit, 1, FUNDS);
        (, Staking s, BandwidthMarket m) = _deployFundedSet(uint16(bps), FUNDS);
        uint256 lock = _lockFor(deposit, bps);

        vm.expectEmit(true, true, true, true, address(s));
        emit IStaking.StakeLocked(provider, lock, lock);
        vm.prank(client);
        bytes32 id = m.openOrder(provider, deposit, DURATION, PRICE);
        assertEq(s.stakeOf(provider).locked, lock, "locked = ceil(deposit * bps / 10000)");
        assertGe(lock * 10_000, deposit * bps, "rounded up");
        assertLt(lock * 10_000, deposit * bps + 10_000, "by less than one unit");

        IBandwidthMarket.Order memory o = IBandwidthMarket.Order({
            nonce: 1,
            client: client,
            provider: provider,
            deposit: uint96(deposit),
            pricePerGiB: uint96(PRICE),
            expiry: uint64(block.timestamp + DURATION)
        });
        vm.warp(o.expiry + GRACE);
        m.reclaim(id, o);
        assertEq(s.stakeOf(provider).locked, 0, "reclaim releases exactly the lock");
    }

    function testFuzz_RevertWhen_openOrderInvalidDepositOrDuration(uint256 deposit, uint256 duration) public {
        deposit = bound(deposit, uint256(type(uint96).max) + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDeposit.selector, deposit));
        vm.prank(client);
        market.openOrder(provider, deposit, DURATION, PRICE);

        duration = bound(duration, uint256(MAX_DURATION) + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(IBandwidthMarket.MarketInvalidDuration.selector, duration, MAX_DURATION));
        vm.prank(client);
        market.openOrder(provider, DEPOSIT, duration, PRICE);
    }
}

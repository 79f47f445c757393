// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {BigSupplyToken} from "./utils/BigSupplyToken.sol";
import {Vm} from "./utils/Vm.sol";
import {Staking} from "../Staking.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";

/// @notice Unit and fuzz tests of every external function and every revert path of Staking.
contract StakingTest is MarketFixture {
    string internal constant CID = "bafkreiprovidermetadata";
    uint64 internal t0;
    address internal constant NO_REGISTRY = address(0x1004);

    function setUp() public override {
        super.setUp();
        t0 = uint64(block.timestamp);
    }

    // ================================================================ helpers

    function _stake(address who, IStaking.Role role, uint256 amount) internal {
        vm.prank(who);
        staking.stake(role, amount);
    }

    function _unstake(address who, uint256 amount) internal {
        vm.prank(who);
        staking.requestUnstake(amount);
    }

    function _offer(address who, uint256 price) internal {
        vm.prank(who);
        staking.setOffer(price, CID);
    }

    function _lock(address who, uint256 amount) internal returns (uint256 price) {
        vm.prank(address(market));
        price = staking.lockForOrder(who, amount);
    }

    function _unlock(address who, uint256 amount) internal {
        vm.prank(address(market));
        staking.unlock(who, amount);
    }

    function _slash(address who, uint256 amount) internal returns (uint256 slashed) {
        vm.prank(slasher);
        slashed = staking.slash(who, amount);
    }

    function _info(address who) internal view returns (IStaking.StakeInfo memory) {
        return staking.stakeOf(who);
    }

    function _role(address who) internal view returns (uint256) {
        return uint256(staking.stakeOf(who).role);
    }

    function _assertStake(
        address who,
        uint256 active,
        uint256 locked,
        uint256 thawing,
        uint256 thawEnd,
        string memory label
    ) internal view {
        IStaking.StakeInfo memory s = staking.stakeOf(who);
        assertEq(s.active, active, string.concat(label, ": active"));
        assertEq(s.locked, locked, string.concat(label, ": locked"));
        assertEq(s.thawing, thawing, string.concat(label, ": thawing"));
        assertEq(s.thawEnd, thawEnd, string.concat(label, ": thawEnd"));
    }

    /// @dev Staking holds exactly the sum of everyone's active and thawing stake.
    function _assertBacked() internal view {
        address[5] memory accounts = [provider, client, verifier, stranger, slasher];
        uint256 sum;
        for (uint256 i; i < accounts.length; ++i) {
            IStaking.StakeInfo memory s = staking.stakeOf(accounts[i]);
            sum += uint256(s.active) + uint256(s.thawing);
        }
        assertEq(token.balanceOf(address(staking)), sum, "staking balance == sum of active + thawing");
    }

    /// @dev A standalone Staking whose certificate registry is a fixed address without code.
    function _deploy(address token_, address slasher_, address market_, uint64 thaw, uint96 pMin, uint96 vMin)
        internal
        returns (Staking)
    {
        return new Staking(token_, slasher_, market_, NO_REGISTRY, thaw, pMin, vMin);
    }

    function _cid(uint256 length) internal pure returns (string memory) {
        bytes memory b = new bytes(length);
        for (uint256 i; i < length; ++i) {
            b[i] = "a";
        }
        return string(b);
    }

    // ================================================================ constructor and views

    function test_constructor_storesConfig() public {
        address tok = address(0x1001);
        address sl = address(0x1002);
        address mk = address(0x1003);
        Staking s = _deploy(tok, sl, mk, 3 days, 7e18, 3e18);
        assertEq(s.token(), tok, "token");
        assertEq(s.slasher(), sl, "slasher");
        assertEq(s.market(), mk, "market");
        assertEq(s.certificateRegistry(), NO_REGISTRY, "certificateRegistry");
        assertEq(s.thawPeriod(), 3 days, "thawPeriod");
        assertEq(s.providerMinStake(), 7e18, "providerMinStake");
        assertEq(s.verifierMinStake(), 3e18, "verifierMinStake");
    }

    function test_RevertWhen_constructor_tokenZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "token"));
        _deploy(address(0), slasher, address(market), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_slasherZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "slasher"));
        _deploy(address(token), address(0), address(market), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_marketZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "market"));
        _deploy(address(token), slasher, address(0), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_certificateRegistryZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "certificateRegistry"));
        new Staking(address(token), slasher, address(market), address(0), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_certificateRegistryIsMarket() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "certificateRegistry"));
        new Staking(address(token), slasher, address(market), address(market), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_thawPeriodZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "thawPeriod"));
        _deploy(address(token), slasher, address(market), 0, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_thawPeriodAboveMax() public {
        uint64 maxPeriod = staking.MAX_THAW_PERIOD();
        assertEq(maxPeriod, 365 days, "MAX_THAW_PERIOD");
        _deploy(address(token), slasher, address(market), maxPeriod, PROVIDER_MIN, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "thawPeriod"));
        _deploy(address(token), slasher, address(market), maxPeriod + 1, PROVIDER_MIN, VERIFIER_MIN);
    }

    function test_RevertWhen_requestUnstake_thawingExceedsUint96() public {
        // Only reachable with a token whose supply exceeds uint96 (FlowToken's cannot).
        uint256 max96 = type(uint96).max;
        BigSupplyToken big = new BigSupplyToken(address(this), 2 * max96);
        Staking s = _deploy(address(big), slasher, address(market), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN);
        big.approve(address(s), type(uint256).max);
        s.stake(IStaking.Role.Verifier, max96);
        s.requestUnstake(max96);
        s.stake(IStaking.Role.Verifier, max96);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingAmountTooLarge.selector, 2 * max96));
        s.requestUnstake(max96);
    }

    function test_RevertWhen_constructor_providerMinStakeZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "providerMinStake"));
        _deploy(address(token), slasher, address(market), THAW_PERIOD, 0, VERIFIER_MIN);
    }

    function test_RevertWhen_constructor_verifierMinStakeZero() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidConfig.selector, "verifierMinStake"));
        _deploy(address(token), slasher, address(market), THAW_PERIOD, PROVIDER_MIN, 0);
    }

    function test_token_isFlowToken() public view {
        assertEq(staking.token(), address(token), "token");
    }

    function test_slasher_isFixtureSlasher() public view {
        assertEq(staking.slasher(), slasher, "slasher");
    }

    function test_market_isDeployedMarket() public view {
        assertEq(staking.market(), address(market), "market");
        assertEq(market.staking(), address(staking), "market points back");
    }

    function test_certificateRegistry_isDeployedRegistry() public view {
        assertEq(staking.certificateRegistry(), address(registry), "certificateRegistry");
        assertEq(registry.staking(), address(staking), "registry points back");
    }

    function test_thawPeriod_isConfigured() public view {
        assertEq(staking.thawPeriod(), THAW_PERIOD, "thawPeriod");
    }

    function test_providerMinStake_isConfigured() public view {
        assertEq(staking.providerMinStake(), PROVIDER_MIN, "providerMinStake");
    }

    function test_verifierMinStake_isConfigured() public view {
        assertEq(staking.verifierMinStake(), VERIFIER_MIN, "verifierMinStake");
        assertTrue(staking.verifierMinStake() != staking.providerMinStake(), "minimums differ per role");
    }

    function test_MAX_CID_LENGTH_is128() public view {
        assertEq(staking.MAX_CID_LENGTH(), 128, "MAX_CID_LENGTH");
    }

    function test_stakeOf_emptyForUnknownAccount() public view {
        IStaking.StakeInfo memory s = staking.stakeOf(stranger);
        assertEq(s.active, 0, "active");
        assertEq(s.locked, 0, "locked");
        assertEq(s.thawEnd, 0, "thawEnd");
        assertEq(s.thawing, 0, "thawing");
        assertEq(s.pricePerGiB, 0, "price");
        assertEq(uint256(s.role), uint256(IStaking.Role.None), "role");
    }

    function test_stakeOf_reflectsEveryField() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _offer(provider, PRICE);
        _unstake(provider, 500e18);
        _lock(provider, 700e18);
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        assertEq(s.active, 2_500e18, "active");
        assertEq(s.locked, 700e18, "locked");
        assertEq(s.thawEnd, t0 + THAW_PERIOD, "thawEnd");
        assertEq(s.thawing, 500e18, "thawing");
        assertEq(s.pricePerGiB, PRICE, "price");
        assertEq(uint256(s.role), uint256(IStaking.Role.Provider), "role");
    }

    function test_metadataCid_emptyByDefault() public view {
        assertEq(staking.metadataCid(provider), "", "no cid");
    }

    function test_metadataCid_returnsLastPublished() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.startPrank(provider);
        staking.setOffer(PRICE, "first");
        staking.setOffer(PRICE, "second");
        vm.stopPrank();
        assertEq(staking.metadataCid(provider), "second", "last cid");
        assertEq(staking.metadataCid(stranger), "", "others unaffected");
    }

    function test_unlockedStake_isActiveMinusLocked() public {
        assertEq(staking.unlockedStake(provider), 0, "nothing staked");
        stakeProvider(2_000e18);
        assertEq(staking.unlockedStake(provider), 2_000e18, "all unlocked");
        _lock(provider, 1_200e18);
        assertEq(staking.unlockedStake(provider), 800e18, "active - locked");
        _unstake(provider, 300e18);
        assertEq(staking.unlockedStake(provider), 500e18, "thawing is not unlocked stake");
    }

    function test_unlockedStake_zeroWhenSlashBelowLocked() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_500e18);
        _slash(provider, 1_000e18);
        assertEq(_info(provider).active, 1_000e18, "active after slash");
        assertEq(_info(provider).locked, 1_500e18, "slash leaves locked as is");
        assertEq(staking.unlockedStake(provider), 0, "active < locked -> 0");
    }

    // ================================================================ stake

    function test_stake_firstStakeSetsRoleAndPullsTokens() public {
        uint256 before = token.balanceOf(provider);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Staked(provider, IStaking.Role.Provider, PROVIDER_MIN, PROVIDER_MIN);
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);

        assertEq(_role(provider), uint256(IStaking.Role.Provider), "role");
        _assertStake(provider, PROVIDER_MIN, 0, 0, 0, "after stake");
        assertEq(token.balanceOf(provider), before - PROVIDER_MIN, "provider paid");
        assertEq(token.balanceOf(address(staking)), PROVIDER_MIN, "staking holds");
    }

    function test_stake_verifierAtItsOwnMinimum() public {
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Staked(verifier, IStaking.Role.Verifier, VERIFIER_MIN, VERIFIER_MIN);
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        assertEq(_role(verifier), uint256(IStaking.Role.Verifier), "role");
        assertEq(_info(verifier).active, VERIFIER_MIN, "active");
    }

    function test_stake_topUpAddsToActiveAndEmitsTotal() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Staked(provider, IStaking.Role.Provider, 1, PROVIDER_MIN + 1);
        _stake(provider, IStaking.Role.Provider, 1);
        assertEq(_info(provider).active, PROVIDER_MIN + 1, "topped up");
        assertEq(token.balanceOf(address(staking)), PROVIDER_MIN + 1, "balance");
    }

    function test_stake_minimumsDifferPerRole() public {
        // The verifier minimum is enough for a verifier, not for a provider.
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, stranger, VERIFIER_MIN, PROVIDER_MIN)
        );
        _stake(stranger, IStaking.Role.Provider, VERIFIER_MIN);
        _stake(stranger, IStaking.Role.Verifier, VERIFIER_MIN);
        assertEq(_role(stranger), uint256(IStaking.Role.Verifier), "verifier at its minimum");
    }

    function test_RevertWhen_stake_zeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingZeroAmount.selector));
        _stake(provider, IStaking.Role.Provider, 0);
    }

    function test_RevertWhen_stake_roleNone() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, provider, IStaking.Role.None, IStaking.Role.Provider
            )
        );
        _stake(provider, IStaking.Role.None, PROVIDER_MIN);
    }

    function test_RevertWhen_stake_roleNoneOnExistingStake() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, verifier, IStaking.Role.None, IStaking.Role.Verifier
            )
        );
        _stake(verifier, IStaking.Role.None, 1);
    }

    function test_RevertWhen_stake_providerAsVerifier() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, provider, IStaking.Role.Verifier, IStaking.Role.Provider
            )
        );
        _stake(provider, IStaking.Role.Verifier, PROVIDER_MIN);
    }

    function test_RevertWhen_stake_verifierAsProvider() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, verifier, IStaking.Role.Provider, IStaking.Role.Verifier
            )
        );
        _stake(verifier, IStaking.Role.Provider, PROVIDER_MIN);
    }

    function test_RevertWhen_stake_roleChangeAfterFullExit() public {
        // Roles are fixed for life: withdrawing everything does not free the role.
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _unstake(verifier, VERIFIER_MIN);
        vm.warp(t0 + THAW_PERIOD);
        vm.prank(verifier);
        staking.withdraw();
        _assertStake(verifier, 0, 0, 0, 0, "fully exited");
        assertEq(_role(verifier), uint256(IStaking.Role.Verifier), "role kept");

        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, verifier, IStaking.Role.Provider, IStaking.Role.Verifier
            )
        );
        _stake(verifier, IStaking.Role.Provider, PROVIDER_MIN);

        // Coming back in the same role works, at the role's minimum.
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        assertEq(_info(verifier).active, VERIFIER_MIN, "re-staked");
    }

    function test_RevertWhen_stake_firstProviderStakeBelowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, provider, PROVIDER_MIN - 1, PROVIDER_MIN)
        );
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN - 1);
    }

    function test_RevertWhen_stake_firstVerifierStakeBelowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, verifier, VERIFIER_MIN - 1, VERIFIER_MIN)
        );
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN - 1);
    }

    function test_RevertWhen_stake_topUpStillBelowMinimumAfterSlash() public {
        // The minimum applies to the resulting stake of every stake call, not only the first one.
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        _slash(provider, 600e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, provider, 400e18 + 1, PROVIDER_MIN)
        );
        _stake(provider, IStaking.Role.Provider, 1);
        _stake(provider, IStaking.Role.Provider, 600e18);
        assertEq(_info(provider).active, PROVIDER_MIN, "back at the minimum");
    }

    function test_RevertWhen_stake_amountTooLarge() public {
        uint256 tooMuch = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingAmountTooLarge.selector, tooMuch));
        _stake(provider, IStaking.Role.Provider, tooMuch);
    }

    function test_RevertWhen_stake_topUpOverflowsUint96() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        uint256 amount = uint256(type(uint96).max) - PROVIDER_MIN + 1;
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingAmountTooLarge.selector, uint256(type(uint96).max) + 1));
        _stake(provider, IStaking.Role.Provider, amount);
    }

    function test_RevertWhen_stake_insufficientBalance() public {
        address poor = address(0xBEEF);
        token.transfer(poor, PROVIDER_MIN - 1);
        vm.prank(poor);
        token.approve(address(staking), type(uint256).max);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, PROVIDER_MIN - 1, PROVIDER_MIN)
        );
        _stake(poor, IStaking.Role.Provider, PROVIDER_MIN);
        assertEq(_role(poor), uint256(IStaking.Role.None), "no role on failed stake");
    }

    function test_RevertWhen_stake_insufficientAllowance() public {
        vm.prank(provider);
        token.approve(address(staking), PROVIDER_MIN - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), PROVIDER_MIN - 1, PROVIDER_MIN
            )
        );
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
    }

    // ================================================================ requestUnstake

    function test_requestUnstake_movesActiveToThawing() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.UnstakeRequested(provider, 1_000e18, 2_000e18, 1_000e18, t0 + THAW_PERIOD);
        _unstake(provider, 1_000e18);
        _assertStake(provider, 2_000e18, 0, 1_000e18, t0 + THAW_PERIOD, "after request");
        assertEq(token.balanceOf(address(staking)), 3_000e18, "tokens stay until withdraw");
    }

    function test_requestUnstake_everythingLeavesZeroActive() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        _unstake(provider, PROVIDER_MIN);
        _assertStake(provider, 0, 0, PROVIDER_MIN, t0 + THAW_PERIOD, "full unstake allowed");
    }

    function test_requestUnstake_downToExactMinimum() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN + 10);
        _unstake(verifier, 10);
        _assertStake(verifier, VERIFIER_MIN, 0, 10, t0 + THAW_PERIOD, "rests at minimum");
    }

    function test_requestUnstake_secondRequestRestartsOwnThawForWholeTotal() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _unstake(provider, 500e18);
        vm.warp(t0 + 3 days);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.UnstakeRequested(provider, 250e18, 2_250e18, 750e18, t0 + 3 days + THAW_PERIOD);
        _unstake(provider, 250e18);
        _assertStake(provider, 2_250e18, 0, 750e18, t0 + 3 days + THAW_PERIOD, "restarted");

        // The first tranche is not withdrawable at its original end any more.
        vm.warp(t0 + THAW_PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingStillThawing.selector, provider, t0 + 3 days + THAW_PERIOD, t0 + THAW_PERIOD
            )
        );
        vm.prank(provider);
        staking.withdraw();
    }

    function test_RevertWhen_requestUnstake_zeroAmount() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingZeroAmount.selector));
        _unstake(provider, 0);
    }

    function test_RevertWhen_requestUnstake_noStake() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, stranger, 1, 0));
        _unstake(stranger, 1);
    }

    function test_RevertWhen_requestUnstake_moreThanActive() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingInsufficientUnlockedStake.selector, provider, PROVIDER_MIN + 1, PROVIDER_MIN
            )
        );
        _unstake(provider, PROVIDER_MIN + 1);
    }

    function test_RevertWhen_requestUnstake_thawingIsNotActive() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 2_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 1, 0));
        _unstake(provider, 1);
    }

    function test_RevertWhen_requestUnstake_lockedStake() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_500e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 500e18 + 1, 500e18)
        );
        _unstake(provider, 500e18 + 1);
        // Exactly the unlocked part can go (what stays is still above the minimum).
        _unstake(provider, 500e18);
        _assertStake(provider, 1_500e18, 1_500e18, 500e18, t0 + THAW_PERIOD, "unlocked part thawing");
    }

    function test_RevertWhen_requestUnstake_lockedByOpenOrder() public {
        stakeProvider(PROVIDER_MIN);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        uint256 lockAmount = 50e18; // LOCK_BPS = 50% of the deposit
        assertEq(_info(provider).locked, lockAmount, "order locked half its deposit");

        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingInsufficientUnlockedStake.selector, provider, PROVIDER_MIN, PROVIDER_MIN - lockAmount
            )
        );
        _unstake(provider, PROVIDER_MIN);

        // Once the order ends the lock is released and the provider can leave.
        vm.warp(order.expiry + GRACE);
        market.reclaim(id, order);
        assertEq(_info(provider).locked, 0, "released");
        _unstake(provider, PROVIDER_MIN);
        _assertStake(provider, 0, 0, PROVIDER_MIN, uint256(order.expiry) + GRACE + THAW_PERIOD, "left");
    }

    function test_RevertWhen_requestUnstake_remainderBelowProviderMinimum() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN + 100);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, provider, PROVIDER_MIN - 1, PROVIDER_MIN)
        );
        _unstake(provider, 101);
    }

    function test_RevertWhen_requestUnstake_remainderBelowVerifierMinimum() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, verifier, 1, VERIFIER_MIN));
        _unstake(verifier, VERIFIER_MIN - 1);
    }

    // ================================================================ withdraw

    function test_withdraw_exactlyAtThawEnd() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 600e18);
        uint256 before = token.balanceOf(provider);

        vm.warp(t0 + THAW_PERIOD);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Withdrawn(provider, 600e18);
        vm.prank(provider);
        uint256 amount = staking.withdraw();

        assertEq(amount, 600e18, "returned amount");
        assertEq(token.balanceOf(provider), before + 600e18, "paid out");
        assertEq(token.balanceOf(address(staking)), 1_400e18, "rest stays");
        _assertStake(provider, 1_400e18, 0, 0, 0, "after withdraw");
    }

    function test_withdraw_longAfterThawEnd() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _unstake(verifier, VERIFIER_MIN);
        vm.warp(t0 + 365 days);
        vm.prank(verifier);
        assertEq(staking.withdraw(), VERIFIER_MIN, "withdrawn");
        assertEq(token.balanceOf(verifier), FUNDS, "all back");
    }

    function test_RevertWhen_withdraw_oneSecondBeforeThawEnd() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 600e18);
        vm.warp(t0 + THAW_PERIOD - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingStillThawing.selector, provider, t0 + THAW_PERIOD, t0 + THAW_PERIOD - 1
            )
        );
        vm.prank(provider);
        staking.withdraw();
    }

    function test_RevertWhen_withdraw_immediatelyAfterRequest() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 600e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingStillThawing.selector, provider, t0 + THAW_PERIOD, t0));
        vm.prank(provider);
        staking.withdraw();
    }

    function test_RevertWhen_withdraw_nothingThawing() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingNothingToWithdraw.selector, provider));
        vm.prank(provider);
        staking.withdraw();
    }

    function test_RevertWhen_withdraw_neverStaked() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingNothingToWithdraw.selector, stranger));
        vm.prank(stranger);
        staking.withdraw();
    }

    function test_RevertWhen_withdraw_twice() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 600e18);
        vm.warp(t0 + THAW_PERIOD);
        vm.prank(provider);
        staking.withdraw();
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingNothingToWithdraw.selector, provider));
        vm.prank(provider);
        staking.withdraw();
    }

    // ================================================================ thaw clock: nobody else moves it

    function _victimThawing() internal returns (uint64 thawEnd) {
        stakeProvider(3_000e18);
        _unstake(provider, 1_000e18);
        thawEnd = t0 + THAW_PERIOD;
        vm.warp(t0 + 3 days);
    }

    function _assertVictimWithdrawsAt(uint64 thawEnd, uint256 expected) internal {
        vm.warp(thawEnd - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingStillThawing.selector, provider, thawEnd, uint256(thawEnd) - 1)
        );
        vm.prank(provider);
        staking.withdraw();
        vm.warp(thawEnd);
        vm.prank(provider);
        assertEq(staking.withdraw(), expected, "victim withdraws at its original thawEnd");
    }

    function test_thaw_strangerStakeDoesNotChangeThawEnd() public {
        uint64 thawEnd = _victimThawing();
        _stake(stranger, IStaking.Role.Provider, 5_000e18);
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        assertEq(_info(provider).thawEnd, thawEnd, "thawEnd unchanged");
        _assertVictimWithdrawsAt(thawEnd, 1_000e18);
    }

    function test_thaw_otherAccountsUnstakeDoesNotChangeThawEnd() public {
        uint64 thawEnd = _victimThawing();
        _stake(stranger, IStaking.Role.Provider, 5_000e18);
        _unstake(stranger, 1_000e18);
        _stake(verifier, IStaking.Role.Verifier, 2 * VERIFIER_MIN);
        _unstake(verifier, VERIFIER_MIN);
        assertEq(_info(stranger).thawEnd, t0 + 3 days + THAW_PERIOD, "stranger's own thaw");
        assertEq(_info(provider).thawEnd, thawEnd, "victim's thawEnd unchanged");
        assertEq(_info(provider).thawing, 1_000e18, "victim's thawing unchanged");
        _assertVictimWithdrawsAt(thawEnd, 1_000e18);
    }

    function test_thaw_strangerCannotUnstakeForVictim() public {
        uint64 thawEnd = _victimThawing();
        // requestUnstake only ever touches msg.sender's record.
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, stranger, 1, 0));
        _unstake(stranger, 1);
        assertEq(_info(provider).thawEnd, thawEnd, "thawEnd unchanged");
    }

    function test_thaw_partialSlashDoesNotChangeThawEnd() public {
        uint64 thawEnd = _victimThawing();
        // All active (2,000) plus part of thawing (400).
        assertEq(_slash(provider, 2_400e18), 2_400e18, "slashed");
        _assertStake(provider, 0, 0, 600e18, thawEnd, "thawEnd unchanged by slash");
        _assertVictimWithdrawsAt(thawEnd, 600e18);
    }

    function test_thaw_marketLockAndUnlockDoNotChangeThawEnd() public {
        uint64 thawEnd = _victimThawing();
        _lock(provider, 1_000e18);
        assertEq(_info(provider).thawEnd, thawEnd, "after lock");
        _unlock(provider, 400e18);
        assertEq(_info(provider).thawEnd, thawEnd, "after unlock");
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        assertEq(_info(provider).thawEnd, thawEnd, "after openOrder");
        vm.warp(order.expiry + GRACE);
        market.reclaim(id, order);
        assertEq(_info(provider).thawEnd, thawEnd, "after reclaim");
        _assertVictimWithdrawsAt(thawEnd, 1_000e18);
    }

    function test_thaw_ownTopUpAndOfferDoNotChangeThawEnd() public {
        uint64 thawEnd = _victimThawing();
        _stake(provider, IStaking.Role.Provider, 1);
        _offer(provider, 3 * PRICE);
        assertEq(_info(provider).thawEnd, thawEnd, "thawEnd unchanged");
        _assertVictimWithdrawsAt(thawEnd, 1_000e18);
    }

    // ================================================================ setOffer

    function test_setOffer_publishesPriceAndCid() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.OfferPublished(provider, PRICE, CID);
        _offer(provider, PRICE);
        assertEq(_info(provider).pricePerGiB, PRICE, "price");
        assertEq(staking.metadataCid(provider), CID, "cid");
    }

    function test_setOffer_zeroPriceWithdrawsOffer() public {
        stakeProvider(PROVIDER_MIN);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.OfferPublished(provider, 0, "bafkreinew");
        vm.prank(provider);
        staking.setOffer(0, "bafkreinew");
        assertEq(_info(provider).pricePerGiB, 0, "no offer");
        assertEq(staking.metadataCid(provider), "bafkreinew", "cid still updated");
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        _lock(provider, 1);
    }

    function test_setOffer_maxPriceAndMaxCidLength() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        string memory cid = _cid(128);
        vm.prank(provider);
        staking.setOffer(type(uint96).max, cid);
        assertEq(_info(provider).pricePerGiB, type(uint96).max, "max price");
        assertEq(staking.metadataCid(provider), cid, "128-byte cid");
    }

    function test_setOffer_doesNotTouchStake() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 500e18);
        _offer(provider, PRICE);
        _assertStake(provider, 1_500e18, 0, 500e18, t0 + THAW_PERIOD, "stake unchanged");
    }

    function test_RevertWhen_setOffer_notStaked() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, stranger, IStaking.Role.None, IStaking.Role.Provider
            )
        );
        _offer(stranger, PRICE);
    }

    function test_RevertWhen_setOffer_verifier() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakingWrongRole.selector, verifier, IStaking.Role.Verifier, IStaking.Role.Provider
            )
        );
        _offer(verifier, PRICE);
    }

    function test_RevertWhen_setOffer_priceTooLarge() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        uint256 price = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingAmountTooLarge.selector, price));
        _offer(provider, price);
    }

    function test_RevertWhen_setOffer_emptyCid() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidMetadataCid.selector, 0, 128));
        vm.prank(provider);
        staking.setOffer(PRICE, "");
    }

    function test_RevertWhen_setOffer_cidTooLong() public {
        _stake(provider, IStaking.Role.Provider, PROVIDER_MIN);
        string memory cid = _cid(129);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingInvalidMetadataCid.selector, 129, 128));
        vm.prank(provider);
        staking.setOffer(PRICE, cid);
    }

    // ================================================================ slash

    function _activeAndThawing() internal {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _unstake(provider, 1_000e18); // active 2,000, thawing 1,000
    }

    function test_slash_takesActiveFirst() public {
        _activeAndThawing();
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(provider, slasher, 500e18, 0, 1_500e18, 1_000e18);
        assertEq(_slash(provider, 500e18), 500e18, "returned");
        _assertStake(provider, 1_500e18, 0, 1_000e18, t0 + THAW_PERIOD, "only active touched");
        assertEq(token.balanceOf(slasher), 500e18, "slasher paid");
        assertEq(token.balanceOf(address(staking)), 2_500e18, "staking balance");
    }

    function test_slash_thenThawing() public {
        _activeAndThawing();
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(provider, slasher, 2_000e18, 500e18, 0, 500e18);
        assertEq(_slash(provider, 2_500e18), 2_500e18, "returned");
        _assertStake(provider, 0, 0, 500e18, t0 + THAW_PERIOD, "thawEnd kept while something thaws");
        assertEq(token.balanceOf(slasher), 2_500e18, "slasher paid");
    }

    function test_slash_capsAtTotalAndClearsThawEnd() public {
        _activeAndThawing();
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(provider, slasher, 2_000e18, 1_000e18, 0, 0);
        assertEq(_slash(provider, 1_000_000e18), 3_000e18, "capped at active + thawing");
        _assertStake(provider, 0, 0, 0, 0, "emptied");
        assertEq(token.balanceOf(slasher), 3_000e18, "slasher got everything");
        assertEq(token.balanceOf(address(staking)), 0, "staking empty");
        assertEq(_role(provider), uint256(IStaking.Role.Provider), "role kept");

        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingNothingToWithdraw.selector, provider));
        vm.prank(provider);
        staking.withdraw();
    }

    function test_slash_exactTotalClearsThawEnd() public {
        _activeAndThawing();
        assertEq(_slash(provider, 3_000e18), 3_000e18, "exact total");
        _assertStake(provider, 0, 0, 0, 0, "thawEnd cleared");
    }

    function test_slash_onlyThawing() public {
        _stake(verifier, IStaking.Role.Verifier, VERIFIER_MIN);
        _unstake(verifier, VERIFIER_MIN);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(verifier, slasher, 0, 100e18, 0, VERIFIER_MIN - 100e18);
        assertEq(_slash(verifier, 100e18), 100e18, "from thawing");
        _assertStake(verifier, 0, 0, VERIFIER_MIN - 100e18, t0 + THAW_PERIOD, "thawing reduced");
    }

    function test_slash_activeOnlyKeepsZeroThawEnd() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        assertEq(_slash(provider, 2_500e18), 2_000e18, "capped");
        _assertStake(provider, 0, 0, 0, 0, "emptied");
    }

    function test_slash_nothingToTakeReturnsZeroWithoutEvent() public {
        vm.recordLogs();
        assertEq(_slash(stranger, 1_000e18), 0, "nothing slashed");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 0, "no event, no transfer");
        assertEq(token.balanceOf(slasher), 0, "slasher got nothing");
    }

    function test_slash_leavesLockedAsIs() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_500e18);
        _slash(provider, 1_800e18);
        _assertStake(provider, 200e18, 1_500e18, 0, 0, "locked untouched");
        // The market can still release the whole lock when the order ends.
        _unlock(provider, 1_500e18);
        assertEq(staking.unlockedStake(provider), 200e18, "unlocked again");
    }

    function test_slash_belowMinimumMakesProviderUnavailable() public {
        stakeProvider(PROVIDER_MIN);
        _slash(provider, 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        _lock(provider, 1);
        // A top-up back to the minimum restores it.
        _stake(provider, IStaking.Role.Provider, 1);
        assertEq(_lock(provider, 1), PRICE, "available again");
    }

    function test_RevertWhen_slash_callerNotSlasher() public {
        _activeAndThawing();
        address[4] memory callers = [stranger, provider, address(market), address(this)];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, callers[i], slasher));
            vm.prank(callers[i]);
            staking.slash(provider, 1);
        }
        _assertStake(provider, 2_000e18, 0, 1_000e18, t0 + THAW_PERIOD, "untouched");
    }

    function test_RevertWhen_slash_zeroAmount() public {
        _activeAndThawing();
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingZeroAmount.selector));
        _slash(provider, 0);
    }

    function test_RevertWhen_slash_zeroAmountByNonSlasherIsUnauthorized() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, stranger, slasher));
        vm.prank(stranger);
        staking.slash(provider, 0);
    }

    // ================================================================ lockForOrder

    function test_lockForOrder_locksAndReturnsPrice() public {
        stakeProvider(2_000e18);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.StakeLocked(provider, 700e18, 700e18);
        assertEq(_lock(provider, 700e18), PRICE, "price returned");
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.StakeLocked(provider, 300e18, 1_000e18);
        _lock(provider, 300e18);
        _assertStake(provider, 2_000e18, 1_000e18, 0, 0, "locked accumulates");
    }

    function test_lockForOrder_exactlyAllUnlocked() public {
        stakeProvider(2_000e18);
        _lock(provider, 2_000e18);
        assertEq(staking.unlockedStake(provider), 0, "fully locked");
    }

    function test_lockForOrder_returnsCurrentPrice() public {
        stakeProvider(2_000e18);
        _offer(provider, 5);
        assertEq(_lock(provider, 1), 5, "updated price");
    }

    function test_lockForOrder_viaOpenOrder() public {
        stakeProvider(2_000e18);
        openOrder(100e18, 1 days);
        openOrder(31e18, 1 days);
        assertEq(_info(provider).locked, 50e18 + 15.5e18, "half of each deposit");
    }

    function test_RevertWhen_lockForOrder_callerNotMarket() public {
        stakeProvider(2_000e18);
        address[3] memory callers = [stranger, provider, slasher];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, callers[i], address(market)));
            vm.prank(callers[i]);
            staking.lockForOrder(provider, 1);
        }
        assertEq(_info(provider).locked, 0, "nothing locked");
    }

    function test_RevertWhen_lockForOrder_notStaked() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, stranger));
        _lock(stranger, 1);
    }

    function test_RevertWhen_lockForOrder_verifier() public {
        _stake(verifier, IStaking.Role.Verifier, 10_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, verifier));
        _lock(verifier, 1);
    }

    function test_RevertWhen_lockForOrder_noOffer() public {
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        _lock(provider, 1);
    }

    function test_RevertWhen_lockForOrder_providerExited() public {
        stakeProvider(PROVIDER_MIN);
        _unstake(provider, PROVIDER_MIN);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        _lock(provider, 1);
    }

    function test_RevertWhen_lockForOrder_belowMinimumAfterSlash() public {
        stakeProvider(2_000e18);
        _slash(provider, 1_000e18 + 1);
        assertEq(staking.unlockedStake(provider), PROVIDER_MIN - 1, "some stake is unlocked");
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingProviderUnavailable.selector, provider));
        _lock(provider, 1);
    }

    function test_RevertWhen_lockForOrder_moreThanUnlocked() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_500e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 500e18 + 1, 500e18)
        );
        _lock(provider, 500e18 + 1);
    }

    function test_RevertWhen_lockForOrder_thawingIsNotLockable() public {
        stakeProvider(3_000e18);
        _unstake(provider, 1_000e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingInsufficientUnlockedStake.selector, provider, 2_000e18 + 1, 2_000e18)
        );
        _lock(provider, 2_000e18 + 1);
    }

    // ================================================================ unlock

    function test_unlock_releasesLockedStake() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_000e18);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.StakeUnlocked(provider, 400e18, 600e18);
        _unlock(provider, 400e18);
        assertEq(_info(provider).locked, 600e18, "locked");
        assertEq(staking.unlockedStake(provider), 1_400e18, "unlocked");
        _unlock(provider, 600e18);
        assertEq(_info(provider).locked, 0, "all released");
    }

    function test_unlock_zeroIsANoOp() public {
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.StakeUnlocked(stranger, 0, 0);
        _unlock(stranger, 0);
        assertEq(_info(stranger).locked, 0, "nothing locked");
    }

    function test_unlock_viaOrderClose() public {
        stakeProvider(2_000e18);
        (bytes32 id, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        assertEq(_info(provider).locked, 50e18, "locked by order");
        bytes memory sig = signClose(PROVIDER_KEY, id, 0);
        vm.prank(client);
        market.close(id, order, 0, sig);
        assertEq(_info(provider).locked, 0, "released by close");
    }

    function test_RevertWhen_unlock_callerNotMarket() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_000e18);
        address[3] memory callers = [stranger, provider, slasher];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, callers[i], address(market)));
            vm.prank(callers[i]);
            staking.unlock(provider, 1);
        }
        assertEq(_info(provider).locked, 1_000e18, "still locked");
    }

    function test_RevertWhen_unlock_exceedsLocked() public {
        stakeProvider(2_000e18);
        _lock(provider, 1_000e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingUnlockExceedsLocked.selector, provider, 1_000e18 + 1, 1_000e18)
        );
        _unlock(provider, 1_000e18 + 1);
    }

    // ================================================================ hold, release, penalize

    function _hold(address who, uint256 amount) internal {
        vm.prank(slasher);
        staking.hold(who, amount);
    }

    function _release(address who, uint256 amount) internal {
        vm.prank(slasher);
        staking.release(who, amount);
    }

    function _penalize(address who, uint256 amount) internal returns (uint256 penalized) {
        vm.prank(slasher);
        penalized = staking.penalize(who, amount);
    }

    function _registerCert(address who, bytes32 h) internal {
        vm.prank(who);
        registry.register(h, keccak256("key"), "bafkreipem", t0 + 365 days);
    }

    function test_hold_accumulatesAndEmits() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeHeld(provider, 1_000e18, 1_000e18);
        _hold(provider, 1_000e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeHeld(provider, 500e18, 1_500e18);
        _hold(provider, 500e18);
        assertEq(staking.heldOf(provider), 1_500e18, "held total");
        _assertStake(provider, 3_000e18, 0, 0, 0, "a hold moves no stake");
        assertEq(token.balanceOf(address(staking)), 3_000e18, "no token moves");
    }

    function test_hold_coversThawingStake() public {
        _activeAndThawing(); // active 2,000, thawing 1,000
        _hold(provider, 3_000e18);
        assertEq(staking.heldOf(provider), 3_000e18, "active + thawing can be held");
    }

    function test_RevertWhen_hold_exceedsUnheldStake() public {
        _activeAndThawing();
        _hold(provider, 2_000e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingHoldExceedsStake.selector, provider, 1_000e18 + 1, 1_000e18)
        );
        _hold(provider, 1_000e18 + 1);
    }

    function test_RevertWhen_hold_afterSlashLeftLessThanHeld() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 3_000e18);
        _slash(provider, 500e18);
        assertEq(staking.heldOf(provider), 3_000e18, "a slash does not shrink holds");
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingHoldExceedsStake.selector, provider, 1, 0));
        _hold(provider, 1);
    }

    function test_RevertWhen_hold_unstakedAccount() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingHoldExceedsStake.selector, stranger, 1, 0));
        _hold(stranger, 1);
    }

    function test_RevertWhen_hold_notSlasher() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, provider, slasher));
        vm.prank(provider);
        staking.hold(provider, 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, address(market), slasher));
        vm.prank(address(market));
        staking.hold(provider, 1);
    }

    function test_RevertWhen_hold_zero() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        vm.expectRevert(IStaking.StakingZeroAmount.selector);
        _hold(provider, 0);
    }

    function test_release_lowersHeldAndEmits() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 1_000e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeReleased(provider, 400e18, 600e18);
        _release(provider, 400e18);
        assertEq(staking.heldOf(provider), 600e18, "held");
        _release(provider, 600e18);
        assertEq(staking.heldOf(provider), 0, "all released");
    }

    function test_release_worksAfterStakeIsGone() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 1_000e18);
        _slash(provider, 3_000e18);
        _release(provider, 1_000e18);
        assertEq(staking.heldOf(provider), 0, "a hold can always end");
    }

    function test_RevertWhen_release_exceedsHeld() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 600e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingReleaseExceedsHeld.selector, provider, 600e18 + 1, 600e18)
        );
        _release(provider, 600e18 + 1);
    }

    function test_RevertWhen_release_notSlasherOrZero() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 600e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, provider, slasher));
        vm.prank(provider);
        staking.release(provider, 600e18);
        vm.expectRevert(IStaking.StakingZeroAmount.selector);
        _release(provider, 0);
    }

    function test_penalize_takesLikeSlashButKeepsCertificates() public {
        _stake(verifier, IStaking.Role.Verifier, 2_000e18);
        _unstake(verifier, 1_000e18); // active 1,000, thawing 1,000
        _registerCert(verifier, keccak256("verifier cert"));
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(verifier, slasher, 1_000e18, 200e18, 0, 800e18);
        assertEq(_penalize(verifier, 1_200e18), 1_200e18, "returned");
        _assertStake(verifier, 0, 0, 800e18, t0 + THAW_PERIOD, "active first, then thawing");
        assertEq(token.balanceOf(slasher), 1_200e18, "tokens to the slasher");
        assertEq(registry.activeCount(verifier), 1, "certificate not revoked");
        assertTrue(registry.isValid(keccak256("verifier cert"), verifier), "still valid");
        _assertBacked();
    }

    function test_penalize_leavesHoldsAlone() public {
        _stake(verifier, IStaking.Role.Verifier, 2_000e18);
        _hold(verifier, 1_000e18);
        _penalize(verifier, 500e18);
        assertEq(staking.heldOf(verifier), 1_000e18, "the slasher releases holds itself");
    }

    function test_penalize_nothingToTakeReturnsZero() public {
        vm.recordLogs();
        assertEq(_penalize(stranger, 1e18), 0, "nothing taken");
        assertEq(vm.getRecordedLogs().length, 0, "no event");
    }

    function test_RevertWhen_penalize_notSlasherOrZero() public {
        _stake(verifier, IStaking.Role.Verifier, 2_000e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingUnauthorized.selector, stranger, slasher));
        vm.prank(stranger);
        staking.penalize(verifier, 1);
        vm.expectRevert(IStaking.StakingZeroAmount.selector);
        _penalize(verifier, 0);
    }

    function test_heldOf_zeroByDefault() public view {
        assertEq(staking.heldOf(provider), 0, "nothing held");
    }

    // ================================================================ withdraw with holds

    function test_withdraw_leavesHeldPartThawing() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _registerCert(provider, keccak256("provider cert"));
        _hold(provider, 1_000e18);
        _unstake(provider, 3_000e18);
        vm.warp(t0 + THAW_PERIOD);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Withdrawn(provider, 2_000e18);
        vm.prank(provider);
        assertEq(staking.withdraw(), 2_000e18, "all but the hold");
        _assertStake(provider, 0, 0, 1_000e18, t0 + THAW_PERIOD, "held part stays thawing, thawEnd kept");
        assertEq(registry.activeCount(provider), 1, "still bonded: certificates kept");
        _assertBacked();

        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingWithdrawalHeld.selector, provider, 1_000e18, 1_000e18, 0)
        );
        vm.prank(provider);
        staking.withdraw();

        _release(provider, 1_000e18);
        vm.prank(provider);
        assertEq(staking.withdraw(), 1_000e18, "withdrawable at once when released");
        _assertStake(provider, 0, 0, 0, 0, "fully unbonded");
        assertEq(registry.activeCount(provider), 0, "full unbond revokes");
    }

    function test_withdraw_activeStakeCoversHold() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 1_000e18);
        _unstake(provider, 2_000e18); // active 1,000 covers the hold
        vm.warp(t0 + THAW_PERIOD);
        vm.prank(provider);
        assertEq(staking.withdraw(), 2_000e18, "everything thawed");
        _assertStake(provider, 1_000e18, 0, 0, 0, "thawEnd cleared");
    }

    function test_withdraw_partOfHoldCoveredByActive() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 2_500e18);
        _unstake(provider, 1_500e18); // active 1,500: keep 1,000 of the 1,500 thawing
        vm.warp(t0 + THAW_PERIOD);
        vm.prank(provider);
        assertEq(staking.withdraw(), 500e18, "thawing minus (held - active)");
        _assertStake(provider, 1_500e18, 0, 1_000e18, t0 + THAW_PERIOD, "kept");
    }

    function test_RevertWhen_withdraw_allThawedStakeHeld() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 3_000e18);
        _unstake(provider, 3_000e18);
        vm.warp(t0 + THAW_PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingWithdrawalHeld.selector, provider, 3_000e18, 3_000e18, 0)
        );
        vm.prank(provider);
        staking.withdraw();
    }

    function test_RevertWhen_withdraw_heldStillThawing() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 3_000e18);
        _unstake(provider, 3_000e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakingStillThawing.selector, provider, t0 + THAW_PERIOD, t0)
        );
        vm.prank(provider);
        staking.withdraw();
    }

    function testFuzz_withdraw_neverTakesHeldStake(uint256 amount, uint256 held, uint256 thaw) public {
        amount = bound(amount, PROVIDER_MIN, 1_000_000e18 - 1);
        held = bound(held, 0, amount);
        thaw = bound(thaw, 1, amount);
        if (amount - thaw != 0 && amount - thaw < PROVIDER_MIN) thaw = amount;
        _stake(provider, IStaking.Role.Provider, amount);
        if (held != 0) _hold(provider, held);
        _unstake(provider, thaw);
        vm.warp(t0 + THAW_PERIOD);
        uint256 active = amount - thaw;
        uint256 keep = held > active ? held - active : 0;
        vm.prank(provider);
        if (keep >= thaw) {
            vm.expectRevert(
                abi.encodeWithSelector(IStaking.StakingWithdrawalHeld.selector, provider, thaw, held, active)
            );
            staking.withdraw();
        } else {
            assertEq(staking.withdraw(), thaw - keep, "thawed minus what the holds need");
        }
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        assertGe(uint256(s.active) + s.thawing, held, "held stake stays");
        _assertBacked();
    }

    // ================================================================ storage footprint (issue 11, finding 10)

    /// @notice A first stake makes one slot non-zero (the old layout kept the role in a second slot:
    /// 20,000 gas more per staker).
    function test_stake_firstStakeWritesOneNewSlot() public {
        uint256 before = vm.snapshotState();
        vm.record();
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        (, bytes32[] memory writes) = vm.accesses(address(staking));
        bytes32[] memory slots = _distinct(writes);
        uint256 afterStake = vm.snapshotState();
        vm.revertToState(before);
        uint256 fresh;
        for (uint256 i; i < slots.length; ++i) {
            if (vm.load(address(staking), slots[i]) == bytes32(0)) ++fresh;
        }
        vm.revertToState(afterStake);
        assertEq(fresh, 1, "a first stake writes one new slot");
        assertEq(_role(provider), uint256(IStaking.Role.Provider), "role");
        assertEq(_info(provider).active, 3_000e18, "active");
    }

    /// @notice A withdrawal of an account that nothing was ever held from reads and writes one slot of
    /// Staking (the old layout read three: the stake's two slots and the held amount).
    function test_withdraw_touchesOneSlotWhenNothingIsHeld() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _unstake(provider, 1_000e18);
        vm.warp(t0 + THAW_PERIOD);
        assertEq(_touchedByWithdraw(provider), 1, "one slot");
        _assertStake(provider, 2_000e18, 0, 0, 0, "withdrawn");
    }

    /// @notice After a hold the withdrawal reads the held amount again (and keeps what it needs), until
    /// one finds everything released; from then on it touches one slot again.
    function test_withdraw_readsHoldsOnlyAfterAHold() public {
        _stake(provider, IStaking.Role.Provider, 3_000e18);
        _hold(provider, 1_000e18);
        _unstake(provider, 3_000e18);
        vm.warp(t0 + THAW_PERIOD);
        vm.prank(provider);
        assertEq(staking.withdraw(), 2_000e18, "the hold stays");
        _release(provider, 1_000e18);
        _stake(provider, IStaking.Role.Provider, 2_000e18);
        _unstake(provider, 500e18);
        vm.warp(t0 + 2 * THAW_PERIOD);
        // Everything released: this withdrawal reads the held amount (0), takes all and forgets the hold.
        assertEq(_touchedByWithdraw(provider), 2, "the stake slot and the held amount");
        _assertStake(provider, 1_500e18, 0, 0, 0, "all thawed stake withdrawn");
        _unstake(provider, 500e18);
        vm.warp(t0 + 3 * THAW_PERIOD);
        assertEq(_touchedByWithdraw(provider), 1, "one slot again");
    }

    /// @dev How many distinct slots of Staking `who`'s withdrawal reads or writes.
    function _touchedByWithdraw(address who) internal returns (uint256) {
        vm.record();
        vm.prank(who);
        staking.withdraw();
        (bytes32[] memory reads, bytes32[] memory writes) = vm.accesses(address(staking));
        bytes32[] memory all = new bytes32[](reads.length + writes.length);
        for (uint256 i; i < reads.length; ++i) {
            all[i] = reads[i];
        }
        for (uint256 i; i < writes.length; ++i) {
            all[reads.length + i] = writes[i];
        }
        return _distinct(all).length;
    }

    function _distinct(bytes32[] memory slots) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](slots.length);
        uint256 n;
        for (uint256 i; i < slots.length; ++i) {
            bool seen;
            for (uint256 j; j < n && !seen; ++j) {
                seen = out[j] == slots[i];
            }
            if (!seen) out[n++] = slots[i];
        }
        assembly ("memory-safe") {
            mstore(out, n)
        }
    }

    // ================================================================ fuzz

    function testFuzz_stake_conservesTokens(uint256 first, uint256 second) public {
        first = bound(first, PROVIDER_MIN, FUNDS / 2);
        second = bound(second, 1, FUNDS / 2);
        uint256 total = token.balanceOf(provider) + token.balanceOf(address(staking));

        _stake(provider, IStaking.Role.Provider, first);
        _stake(provider, IStaking.Role.Provider, second);

        assertEq(_info(provider).active, first + second, "active");
        assertEq(token.balanceOf(provider), FUNDS - first - second, "provider balance");
        assertEq(token.balanceOf(provider) + token.balanceOf(address(staking)), total, "conserved");
        _assertBacked();
    }

    function testFuzz_stake_belowMinimumReverts(uint256 amount, bool asVerifier) public {
        IStaking.Role role = asVerifier ? IStaking.Role.Verifier : IStaking.Role.Provider;
        uint256 minimum = asVerifier ? VERIFIER_MIN : PROVIDER_MIN;
        amount = bound(amount, 1, minimum - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, stranger, amount, minimum));
        _stake(stranger, role, amount);
    }

    function testFuzz_requestUnstake_minimumRule(uint256 stakeAmount, uint256 unstakeAmount) public {
        stakeAmount = bound(stakeAmount, VERIFIER_MIN, FUNDS);
        unstakeAmount = bound(unstakeAmount, 1, stakeAmount);
        _stake(verifier, IStaking.Role.Verifier, stakeAmount);
        uint256 rest = stakeAmount - unstakeAmount;
        if (rest != 0 && rest < VERIFIER_MIN) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StakingBelowMinimum.selector, verifier, rest, VERIFIER_MIN));
            _unstake(verifier, unstakeAmount);
            _assertStake(verifier, stakeAmount, 0, 0, 0, "unchanged");
        } else {
            _unstake(verifier, unstakeAmount);
            _assertStake(verifier, rest, 0, unstakeAmount, t0 + THAW_PERIOD, "thawing");
        }
        _assertBacked();
    }

    function testFuzz_stakeUnstakeWithdraw_conservesTokens(
        uint256 stakeAmount,
        uint256 unstakeAmount,
        bool all,
        uint256 wait
    ) public {
        stakeAmount = bound(stakeAmount, PROVIDER_MIN, FUNDS);
        // Either everything, or an amount that leaves at least the minimum.
        unstakeAmount =
            all || stakeAmount == PROVIDER_MIN ? stakeAmount : bound(unstakeAmount, 1, stakeAmount - PROVIDER_MIN);
        wait = bound(wait, THAW_PERIOD, 10 * uint256(THAW_PERIOD));
        uint256 total = token.balanceOf(provider) + token.balanceOf(address(staking));

        _stake(provider, IStaking.Role.Provider, stakeAmount);
        _unstake(provider, unstakeAmount);
        assertEq(token.balanceOf(provider) + token.balanceOf(address(staking)), total, "conserved while thawing");
        _assertBacked();

        vm.warp(t0 + wait);
        vm.prank(provider);
        assertEq(staking.withdraw(), unstakeAmount, "withdrawn");

        assertEq(token.balanceOf(provider), FUNDS - stakeAmount + unstakeAmount, "provider balance");
        assertEq(token.balanceOf(address(staking)), stakeAmount - unstakeAmount, "staking balance");
        assertEq(token.balanceOf(provider) + token.balanceOf(address(staking)), total, "conserved");
        _assertStake(provider, stakeAmount - unstakeAmount, 0, 0, 0, "after withdraw");
        _assertBacked();
    }

    function testFuzz_withdraw_succeedsIffThawOver(uint256 requestDelay, uint256 elapsed) public {
        requestDelay = bound(requestDelay, 0, 365 days);
        elapsed = bound(elapsed, 0, 2 * uint256(THAW_PERIOD));
        _stake(verifier, IStaking.Role.Verifier, 2 * VERIFIER_MIN);
        vm.warp(t0 + requestDelay);
        _unstake(verifier, VERIFIER_MIN);
        uint256 thawEnd = t0 + requestDelay + THAW_PERIOD;
        assertEq(_info(verifier).thawEnd, thawEnd, "thawEnd");

        uint256 now_ = t0 + requestDelay + elapsed;
        vm.warp(now_);
        if (now_ < thawEnd) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StakingStillThawing.selector, verifier, thawEnd, now_));
            vm.prank(verifier);
            staking.withdraw();
            assertEq(_info(verifier).thawing, VERIFIER_MIN, "still thawing");
        } else {
            vm.prank(verifier);
            assertEq(staking.withdraw(), VERIFIER_MIN, "withdrawn");
            _assertStake(verifier, VERIFIER_MIN, 0, 0, 0, "cleared");
        }
    }

    function testFuzz_thaw_thirdPartiesCannotMoveThawEnd(uint256 delay, uint256 amount, uint256 slashAmount) public {
        delay = bound(delay, 0, uint256(THAW_PERIOD) - 1);
        amount = bound(amount, PROVIDER_MIN, FUNDS / 2);
        stakeProvider(3_000e18);
        _unstake(provider, 1_000e18);
        uint256 thawEnd = t0 + THAW_PERIOD;

        vm.warp(t0 + delay);
        _stake(stranger, IStaking.Role.Provider, amount);
        _unstake(stranger, amount);
        _stake(verifier, IStaking.Role.Verifier, amount);
        _unstake(verifier, amount - VERIFIER_MIN);
        _lock(provider, 500e18);
        _unlock(provider, 500e18);
        // A slash that leaves something thawing keeps the clock.
        slashAmount = bound(slashAmount, 1, 3_000e18 - 1);
        _slash(provider, slashAmount);

        assertEq(_info(provider).thawEnd, thawEnd, "thawEnd unchanged");
        vm.warp(thawEnd);
        vm.prank(provider);
        uint256 expected = slashAmount > 2_000e18 ? 3_000e18 - slashAmount : 1_000e18;
        assertEq(staking.withdraw(), expected, "withdrawn at original thawEnd");
    }

    function testFuzz_slash_activeFirstThenThawingCapped(
        uint256 stakeAmount,
        uint256 unstakeAmount,
        uint256 slashAmount
    ) public {
        stakeAmount = bound(stakeAmount, PROVIDER_MIN, FUNDS);
        unstakeAmount = bound(unstakeAmount, 0, stakeAmount - PROVIDER_MIN);
        slashAmount = bound(slashAmount, 1, 2 * FUNDS);
        _stake(provider, IStaking.Role.Provider, stakeAmount);
        if (unstakeAmount != 0) _unstake(provider, unstakeAmount);
        uint256 active = stakeAmount - unstakeAmount;
        uint256 thawing = unstakeAmount;
        uint256 thawEndBefore = _info(provider).thawEnd;

        uint256 fromActive = slashAmount < active ? slashAmount : active;
        uint256 rest = slashAmount - fromActive;
        uint256 fromThawing = rest < thawing ? rest : thawing;

        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.Slashed(provider, slasher, fromActive, fromThawing, active - fromActive, thawing - fromThawing);
        uint256 slashed = _slash(provider, slashAmount);

        assertEq(slashed, fromActive + fromThawing, "returned");
        assertLe(slashed, slashAmount, "never more than asked");
        assertLe(slashed, stakeAmount, "never more than the total");
        assertEq(token.balanceOf(slasher), slashed, "slasher paid");
        uint256 expectedThawEnd = thawing - fromThawing == 0 ? 0 : thawEndBefore;
        _assertStake(provider, active - fromActive, 0, thawing - fromThawing, expectedThawEnd, "after slash");
        _assertBacked();
    }

    function testFuzz_lockUnlock(uint256 stakeAmount, uint256 lockAmount, uint256 unlockAmount) public {
        stakeAmount = bound(stakeAmount, PROVIDER_MIN, FUNDS);
        lockAmount = bound(lockAmount, 0, stakeAmount + 1);
        stakeProvider(stakeAmount);

        if (lockAmount > stakeAmount) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IStaking.StakingInsufficientUnlockedStake.selector, provider, lockAmount, stakeAmount
                )
            );
            _lock(provider, lockAmount);
            return;
        }
        _lock(provider, lockAmount);
        assertEq(staking.unlockedStake(provider), stakeAmount - lockAmount, "unlocked after lock");

        unlockAmount = bound(unlockAmount, 0, lockAmount + 1);
        if (unlockAmount > lockAmount) {
            vm.expectRevert(
                abi.encodeWithSelector(IStaking.StakingUnlockExceedsLocked.selector, provider, unlockAmount, lockAmount)
            );
            _unlock(provider, unlockAmount);
            return;
        }
        _unlock(provider, unlockAmount);
        assertEq(_info(provider).locked, lockAmount - unlockAmount, "locked after unlock");
        assertEq(staking.unlockedStake(provider), stakeAmount - lockAmount + unlockAmount, "unlocked after unlock");
        _assertBacked();
    }
}

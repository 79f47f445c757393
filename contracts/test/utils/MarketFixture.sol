// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {FlowToken} from "../../FlowToken.sol";
import {Staking} from "../../Staking.sol";
import {BandwidthMarket} from "../../BandwidthMarket.sol";
import {CertificateRegistry} from "../../CertificateRegistry.sol";
import {SlashingManager} from "../../SlashingManager.sol";
import {TrustRegistry} from "../../TrustRegistry.sol";
import {ISlashingManager} from "../../interfaces/ISlashingManager.sol";
import {IBandwidthMarket} from "../../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";

/// @notice Shared deployment for every FlowNet contract test: the whole set deployed the way
/// flownet/chain/deploy.py deploys it (Staking names the precomputed addresses of the market, the
/// certificate registry and the SlashingManager, deployed right after it in that order; the
/// SlashingManager names the TrustRegistry deployed right after it), funded actors with known keys,
/// and helpers to sign receipts and closes. `slasher` is the SlashingManager's address: tests of
/// Staking alone prank as it.
abstract contract MarketFixture is BaseTest {
    uint256 internal constant SUPPLY = 1_000_000_000e18;
    uint64 internal constant THAW_PERIOD = 7 days;
    uint96 internal constant PROVIDER_MIN = 1_000e18;
    uint96 internal constant VERIFIER_MIN = 500e18;
    uint64 internal constant GRACE = 1 days;
    uint64 internal constant MAX_DURATION = 30 days;
    uint16 internal constant LOCK_BPS = 5_000;
    uint256 internal constant GIB = 1 << 30;
    uint256 internal constant PRICE = 2e18; // 2 FLOW per GiB
    uint256 internal constant FUNDS = 1_000_000e18;
    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint64 internal constant EPOCH_SECONDS = 30;
    uint64 internal constant STATUTE_EPOCHS = 2880;
    uint64 internal constant PERIOD = 1 days;
    uint96 internal constant CAP_PER_PERIOD = 5_000e18;
    uint16 internal constant SLASH_BPS = 1_000;
    uint16 internal constant REWARD_BPS = 5_000;
    uint8 internal constant QUORUM = 2;
    uint64 internal constant MIN_INTERVAL = 1 hours;
    address internal constant NETWORK_AUTHORITY = address(0xA0);
    address internal constant APP_AUTHORITY = address(0xA1);
    address internal constant OS_AUTHORITY = address(0xA2);
    address internal constant PACKAGE_AUTHORITY = address(0xA3);

    /// @notice One deployed set.
    struct Set {
        FlowToken token;
        Staking staking;
        BandwidthMarket market;
        CertificateRegistry registry;
        SlashingManager slashing;
        TrustRegistry trust;
    }

    uint256 internal constant PROVIDER_KEY = 0xA11CE;
    uint256 internal constant CLIENT_KEY = 0xB0B;
    uint256 internal constant VERIFIER_KEY = 0xC0FFEE;
    uint256 internal constant STRANGER_KEY = 0xD00D;

    FlowToken internal token;
    Staking internal staking;
    BandwidthMarket internal market;
    CertificateRegistry internal registry;
    SlashingManager internal slashing;
    TrustRegistry internal trust;

    address internal holder = address(this);
    address internal slasher;
    address internal provider;
    address internal client;
    address internal verifier;
    address internal stranger;

    function setUp() public virtual {
        provider = vm.addr(PROVIDER_KEY);
        client = vm.addr(CLIENT_KEY);
        verifier = vm.addr(VERIFIER_KEY);
        stranger = vm.addr(STRANGER_KEY);
        vm.label(provider, "provider");
        vm.label(client, "client");
        vm.label(verifier, "verifier");
        vm.label(stranger, "stranger");
        vm.warp(1_700_000_000);

        Set memory set = deploySet();
        (token, staking, market, registry, slashing, trust) =
        (set.token, set.staking, set.market, set.registry, set.slashing, set.trust);
        slasher = address(slashing);
        vm.label(slasher, "SlashingManager");
        vm.label(address(trust), "TrustRegistry");
        vm.label(address(token), "FlowToken");
        vm.label(address(staking), "Staking");
        vm.label(address(market), "BandwidthMarket");
        vm.label(address(registry), "CertificateRegistry");

        address[4] memory actors = [provider, client, verifier, stranger];
        for (uint256 i; i < actors.length; ++i) {
            token.transfer(actors[i], FUNDS);
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
            vm.prank(actors[i]);
            token.approve(address(market), type(uint256).max);
        }
    }

    /// @notice The fixture's SlashingManager parameters.
    function slashingConfig() internal pure returns (ISlashingManager.Config memory) {
        return ISlashingManager.Config({
            challengeWindow: CHALLENGE_WINDOW,
            epochSeconds: EPOCH_SECONDS,
            statuteEpochs: STATUTE_EPOCHS,
            period: PERIOD,
            capPerPeriod: CAP_PER_PERIOD,
            slashBps: SLASH_BPS,
            rewardBps: REWARD_BPS,
            quorum: QUORUM
        });
    }

    /// @notice The four domain authorities, indexed by ITrustRegistry.Domain.
    function authorities() internal pure returns (address[4] memory) {
        return [NETWORK_AUTHORITY, APP_AUTHORITY, OS_AUTHORITY, PACKAGE_AUTHORITY];
    }

    /// @notice Deploys token, staking, market, certificate registry, slashing manager and trust
    /// registry in that order; staking is told the addresses of the market, the certificate registry
    /// and the slashing manager in advance, and the slashing manager that of the trust registry.
    function deploySet() internal returns (Set memory set) {
        set.token = new FlowToken(holder, SUPPLY);
        set.staking = new Staking(
            address(set.token), predictNext(3), predictNext(1), predictNext(2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN
        );
        set.market = new BandwidthMarket(address(set.token), address(set.staking), GRACE, MAX_DURATION, LOCK_BPS);
        set.registry = new CertificateRegistry(address(set.staking));
        set.slashing = new SlashingManager(address(set.staking), predictNext(1), slashingConfig());
        set.trust = new TrustRegistry(address(set.slashing), authorities(), MIN_INTERVAL);
        assertEq(address(set.market), set.staking.market(), "market at the address staking names");
        assertEq(address(set.registry), set.staking.certificateRegistry(), "registry at the address staking names");
        assertEq(address(set.slashing), set.staking.slasher(), "slashing manager at the address staking names");
        assertEq(address(set.trust), set.slashing.trustRegistry(), "trust registry at the address slashing names");
    }

    /// @notice The address of this contract's `k`-th CREATE after the next one (k = 0: the next one).
    function predictNext(uint256 k) internal view returns (address) {
        return vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + k);
    }

    /// @notice `provider` stakes `amount` and offers PRICE per GiB.
    function stakeProvider(uint256 amount) internal {
        vm.startPrank(provider);
        staking.stake(IStaking.Role.Provider, amount);
        staking.setOffer(PRICE, "bafkreiprovidermetadata");
        vm.stopPrank();
    }

    /// @notice `client` opens an order with `provider` at PRICE and returns its id and terms.
    function openOrder(uint256 deposit, uint256 duration)
        internal
        returns (bytes32 orderId, IBandwidthMarket.Order memory order)
    {
        return openOrderAs(client, provider, deposit, duration, PRICE);
    }

    /// @notice `who` opens an order with `prov` at `prov`'s current offer; checks that the returned id
    /// is the hash of the expected terms.
    function openOrderAs(address who, address prov, uint256 deposit, uint256 duration, uint256 maxPrice)
        internal
        returns (bytes32 orderId, IBandwidthMarket.Order memory order)
    {
        uint64 nonce = market.nextNonce();
        uint256 price = staking.stakeOf(prov).pricePerGiB;
        vm.prank(who);
        orderId = market.openOrder(prov, deposit, duration, maxPrice);
        order = IBandwidthMarket.Order({
            nonce: nonce,
            client: who,
            provider: prov,
            deposit: uint96(deposit),
            pricePerGiB: uint96(price),
            expiry: uint64(block.timestamp + duration)
        });
        assertEq(orderId, keccak256(abi.encode(order)), "order id is the hash of the terms");
    }

    function signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice A receipt for `orderId` signed with `key` against `market`'s domain.
    function signReceipt(uint256 key, bytes32 orderId, uint256 cumulativeBytes, uint256 cumulativeAmount)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, market.receiptDigest(orderId, cumulativeBytes, cumulativeAmount));
    }

    function signClose(uint256 key, bytes32 orderId, uint256 finalAmount) internal view returns (bytes memory) {
        return signDigest(key, market.closeDigest(orderId, finalAmount));
    }

    /// @notice A redemption of `amount` (for exactly the bytes that amount buys) signed by the client.
    function receipt(bytes32 orderId, IBandwidthMarket.Order memory order, uint256 amount)
        internal
        view
        returns (IBandwidthMarket.Redemption memory r)
    {
        uint256 bytes_ = bytesFor(amount, order.pricePerGiB);
        r = IBandwidthMarket.Redemption({
            orderId: orderId,
            order: order,
            cumulativeBytes: bytes_,
            cumulativeAmount: amount,
            signature: signReceipt(CLIENT_KEY, orderId, bytes_, amount)
        });
    }

    /// @notice The fewest bytes whose cost at `price` covers `amount` (ceil(amount * GiB / price)).
    function bytesFor(uint256 amount, uint256 price) internal pure returns (uint256) {
        return (amount * GIB + price - 1) / price;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "../utils/BaseTest.sol";
import {FlowToken} from "../../FlowToken.sol";
import {Staking} from "../../Staking.sol";
import {BandwidthMarket} from "../../BandwidthMarket.sol";
import {IBandwidthMarket} from "../../interfaces/IBandwidthMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {CertificateRegistry} from "../../CertificateRegistry.sol";
import {ICertificateRegistry} from "../../interfaces/ICertificateRegistry.sol";

/// @notice The only contract the invariant campaign calls. Every action bounds its inputs so that
/// it is (almost always) a valid call, pranks as the right actor, and books what the call did in
/// ghost state: a model of every stake record, every order and every wallet that the invariants
/// compare with the contracts. Actions never revert on their own: anything the handler sees that
/// breaks the spec is recorded (counters and `violations`) and asserted by an invariant, because
/// with fail_on_revert = false a reverting handler call would be silently discarded.
///
/// A few actions are probes: they send calls that MUST be refused (receipts signed for another
/// order, another chain id or another contract; stale or overpriced receipts; closes by a stranger;
/// early reclaims; slashes by a non-slasher) and count every one that is accepted.
contract FlowNetHandler is BaseTest {
    // ------------------------------------------------------------------ types

    struct GhostStake {
        uint256 active;
        uint256 thawing;
        uint256 thawEnd;
        uint256 locked;
        uint256 price;
        IStaking.Role role;
    }

    struct GhostOrder {
        bytes32 id;
        IBandwidthMarket.Order order;
        uint256 lock;
        uint256 paid;
        uint256 refunded;
        uint256 cumulativeBytes;
        bool closed;
        bool cancelled;
    }

    struct OpenPlan {
        address client;
        address provider;
        uint256 deposit;
        uint256 duration;
        uint256 maxPrice;
        bool withPermit;
        bool expectOk;
    }

    struct Counter {
        uint256 calls;
        uint256 ok;
        uint256 rejected;
        uint256 skipped;
    }

    // ------------------------------------------------------------------ constants

    uint256 internal constant GIB = 1 << 30;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant KEY_BASE = 0x1000;
    uint256 internal constant N_PROVIDERS = 3;
    uint256 internal constant N_VERIFIERS = 2;
    uint256 internal constant N_CLIENTS = 3;
    uint256 internal constant MAX_STAKE = 50_000e18;
    uint256 internal constant MAX_DEPOSIT = 20_000e18;
    uint256 internal constant MAX_PRICE = 10e18;
    uint256 internal constant MAX_WARP = 3 days;
    uint256 internal constant MAX_REFUSAL = 3 days;

    // Recomputed here from the spec strings, not read from the market, so a wrong type hash is caught.
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant RECEIPT_TYPEHASH =
        keccak256("Receipt(bytes32 orderId,uint256 cumulativeBytes,uint256 cumulativeAmount)");
    bytes32 internal constant CLOSE_TYPEHASH = keccak256("CloseOrder(bytes32 orderId,uint256 finalAmount)");

    // ------------------------------------------------------------------ system under test

    FlowToken public immutable token;
    Staking public immutable staking;
    BandwidthMarket public immutable market;
    /// @notice A second, independent deployment: its EIP-712 domain differs only by verifyingContract.
    BandwidthMarket public immutable otherMarket;
    /// @notice The registry Staking names (its slash and full-unbond hook revokes certificates there).
    CertificateRegistry public immutable registry;
    address public immutable slasher;
    address private immutable _deployer;

    uint256 internal immutable _chainId;
    uint256 internal immutable _thawPeriod;
    uint256 internal immutable _providerMin;
    uint256 internal immutable _verifierMin;
    uint256 internal immutable _lockBps;
    uint256 internal immutable _grace;
    uint256 internal immutable _maxDuration;

    // ------------------------------------------------------------------ actors

    address[] internal _providers;
    address[] internal _verifiers;
    address[] internal _clients;
    address[] internal _stakers; // providers then verifiers
    address[] internal _actors; // everyone above
    mapping(address => uint256) internal _keyOf;

    // ------------------------------------------------------------------ ghost state

    uint256 public ghostTime;
    mapping(address => GhostStake) internal _gs;
    mapping(address => uint256) public ghostBalance;

    GhostOrder[] internal _orders;
    uint256[] internal _open; // indices into _orders of open orders
    mapping(uint256 => uint256) internal _openPos; // index + 1 in _open, 0 when not open

    uint256 public ghostSumActive;
    uint256 public ghostSumThawing;
    uint256 public ghostEscrow;
    uint256 public ghostTotalSlashed;
    uint256 public ghostDeposited;
    uint256 public ghostPaidOut;
    uint256 public ghostRefunded;
    /// @notice The model's refusals: until when each provider refuses each client.
    mapping(address provider => mapping(address client => uint256)) public ghostRefusedUntil;

    /// @notice Every certificate registered through the handler, in order.
    bytes32[] internal _certs;
    mapping(address => bytes32[]) internal _certsOf;
    /// @notice The actor that registered each certificate (records are kept per owner).
    mapping(bytes32 => address) public certOwner;
    /// @notice The model's revocation reason of a certificate: 0 while live, else RevocationReason + 1.
    mapping(bytes32 => uint256) public ghostCertRevokedAs;
    /// @notice The model's count of unrevoked certificates per actor.
    mapping(address => uint256) public ghostLiveCerts;

    /// @notice withdraw() calls made while the caller's stake was still thawing.
    uint256 public earlyWithdrawAttempts;
    /// @notice ...of which succeeded. Must stay 0.
    uint256 public earlyWithdrawals;
    /// @notice Receipts / close signatures made for another order, chain id or contract that were submitted...
    uint256 public foreignAttempts;
    /// @notice ...and accepted. Must stay 0.
    uint256 public foreignAccepted;
    /// @notice Other calls that must be refused (stale or overpriced receipts, wrong signer, wrong caller,
    /// early reclaim, wrong role, ...) that were submitted...
    uint256 public invalidAttempts;
    /// @notice ...and accepted. Must stay 0.
    uint256 public invalidAccepted;
    /// @notice openOrder calls by a client its provider refuses (each must be refused).
    uint256 public refusedOpenAttempts;
    /// @notice openOrder calls by a refused verifier that could accuse the provider (each must succeed
    /// when nothing else stops it).
    uint256 public refusedVerifierOpens;
    /// @notice Calls the model says are valid that the contracts refused (a liveness check). Must stay 0.
    uint256 public unexpectedReverts;
    /// @notice A readable line per problem seen by the handler, asserted empty by an invariant.
    string[] internal _violations;

    string[] internal _actionNames;
    mapping(string => Counter) internal _counters;

    modifier action(string memory name) {
        // Re-apply the model's clock, so the campaign's time is the handler's whether or not the
        // executor keeps warps between calls.
        vm.warp(ghostTime);
        _counters[name].calls++;
        _;
    }

    constructor(
        FlowToken token_,
        Staking staking_,
        BandwidthMarket market_,
        BandwidthMarket otherMarket_,
        address slasher_
    ) {
        token = token_;
        staking = staking_;
        market = market_;
        otherMarket = otherMarket_;
        registry = CertificateRegistry(staking_.certificateRegistry());
        slasher = slasher_;
        _deployer = msg.sender;
        _chainId = block.chainid;
        _thawPeriod = staking_.thawPeriod();
        _providerMin = staking_.providerMinStake();
        _verifierMin = staking_.verifierMinStake();
        _lockBps = market_.lockBps();
        _grace = market_.gracePeriod();
        _maxDuration = market_.maxDuration();
        ghostTime = block.timestamp;

        uint256 n = N_PROVIDERS + N_VERIFIERS + N_CLIENTS;
        for (uint256 i; i < n; ++i) {
            uint256 key = KEY_BASE + i;
            address a = vm.addr(key);
            _keyOf[a] = key;
            _actors.push(a);
            if (i < N_PROVIDERS) {
                _providers.push(a);
                _stakers.push(a);
                vm.label(a, string.concat("provider", vm.toString(i)));
            } else if (i < N_PROVIDERS + N_VERIFIERS) {
                _verifiers.push(a);
                _stakers.push(a);
                vm.label(a, string.concat("verifier", vm.toString(i - N_PROVIDERS)));
            } else {
                _clients.push(a);
                vm.label(a, string.concat("client", vm.toString(i - N_PROVIDERS - N_VERIFIERS)));
            }
            vm.prank(a);
            token.approve(address(staking_), type(uint256).max);
            vm.prank(a);
            token.approve(address(market_), type(uint256).max);
        }

        string[21] memory names = [
            "stake",
            "requestUnstake",
            "withdraw",
            "setOffer",
            "openOrder",
            "redeem",
            "redeemMany",
            "close",
            "reclaim",
            "slash",
            "warp",
            "probeForeignSignature",
            "probeInvalidCall",
            "bootstrapStake",
            "bootstrapOffer",
            "bootstrapOpen",
            "autoOpen",
            "registerCertificate",
            "cancel",
            "refuse",
            "verifierOpen"
        ];
        for (uint256 i; i < names.length; ++i) {
            _actionNames.push(names[i]);
        }
    }

    /// @notice Called once by the test after funding the actors: books their balances and gives the
    /// campaign a running start (every provider staked with an offer, every verifier staked).
    function bootstrap() external {
        require(msg.sender == _deployer, "handler: only the test");
        for (uint256 i; i < _actors.length; ++i) {
            ghostBalance[_actors[i]] = token.balanceOf(_actors[i]);
        }
        ghostBalance[slasher] = token.balanceOf(slasher);
        for (uint256 i; i < _providers.length; ++i) {
            _doStake(_providers[i], IStaking.Role.Provider, 20_000e18, "bootstrapStake");
            _doSetOffer(_providers[i], (i + 1) * 1e18, "bootstrapOffer");
        }
        for (uint256 i; i < _verifiers.length; ++i) {
            _doStake(_verifiers[i], IStaking.Role.Verifier, _verifierMin, "bootstrapStake");
        }
        // One open order per client, so market actions have targets from the first call of a run.
        for (uint256 i; i < _clients.length; ++i) {
            address p = _providers[i % _providers.length];
            OpenPlan memory plan = OpenPlan({
                client: _clients[i],
                provider: p,
                deposit: (i + 1) * 1_000e18,
                duration: 7 days,
                maxPrice: _gs[p].price,
                withPermit: false,
                expectOk: true
            });
            _executeOpen(plan, _gs[p].price, "bootstrapOpen");
        }
    }

    // ================================================================== staking actions

    /// @notice A provider or verifier bonds more (at least up to its role's minimum).
    function stake(uint256 actorSeed, uint256 amountSeed) external action("stake") {
        address a = _stakers[actorSeed % _stakers.length];
        IStaking.Role role = _roleFor(a);
        uint256 amount = bound(amountSeed, 1, MAX_STAKE);
        uint256 active = _gs[a].active;
        uint256 minimum = _minimumOf(role);
        if (active + amount < minimum) amount = minimum - active;
        if (amount > token.balanceOf(a)) return _skip("stake");
        _doStake(a, role, amount, "stake");
    }

    /// @notice A staker starts thawing part (or all) of its unlocked stake.
    function requestUnstake(uint256 actorSeed, uint256 amountSeed) external action("requestUnstake") {
        address a = _stakers[actorSeed % _stakers.length];
        GhostStake storage g = _gs[a];
        uint256 unlocked = g.active > g.locked ? g.active - g.locked : 0;
        if (unlocked == 0) return _skip("requestUnstake");
        uint256 amount = bound(amountSeed, 1, unlocked);
        uint256 minimum = _minimumOf(g.role);
        uint256 rest = g.active - amount;
        if (rest != 0 && rest < minimum) {
            // Leave entirely when nothing is locked (half the time), else keep exactly the minimum.
            if (unlocked == g.active && (amountSeed & 1 == 0 || g.active <= minimum)) {
                amount = g.active;
            } else if (g.active > minimum && g.active - minimum <= unlocked) {
                amount = g.active - minimum;
            } else {
                return _skip("requestUnstake");
            }
        }
        vm.prank(a);
        try staking.requestUnstake(amount) {
            _ok("requestUnstake");
            g.active -= amount;
            g.thawing += amount;
            g.thawEnd = ghostTime + _thawPeriod;
            ghostSumActive -= amount;
            ghostSumThawing += amount;
        } catch {
            _unexpected("requestUnstake");
        }
    }

    /// @notice withdraw() at any time. Half the time the handler first waits for the thaw to end;
    /// otherwise it may call early, which must fail.
    function withdraw(uint256 actorSeed, uint256 waitSeed) external action("withdraw") {
        address a = _stakers[actorSeed % _stakers.length];
        GhostStake storage g = _gs[a];
        if (waitSeed % 2 == 0 && g.thawing != 0 && ghostTime < g.thawEnd) {
            _warpTo(g.thawEnd + bound(waitSeed >> 8, 0, 1 hours));
        }
        bool early = ghostTime < g.thawEnd;
        if (early && g.thawing != 0) earlyWithdrawAttempts++;
        bool expectOk = g.thawing != 0 && !early;
        vm.prank(a);
        try staking.withdraw() returns (uint256 amount) {
            _ok("withdraw");
            if (early) {
                earlyWithdrawals++;
                _violation("withdraw succeeded before thawEnd");
            }
            if (!expectOk || amount != g.thawing) _violation("withdraw paid something other than the thawed stake");
            ghostBalance[a] += amount;
            ghostSumThawing = _sat(ghostSumThawing, amount);
            g.thawing = _sat(g.thawing, amount);
            g.thawEnd = 0;
            if (g.active == 0) _ghostRevokeAll(a, ICertificateRegistry.RevocationReason.Unbonded);
        } catch {
            if (expectOk) _unexpected("withdraw");
            else _rejected("withdraw");
        }
    }

    /// @notice A provider publishes a new price (sometimes 0: no offer).
    function setOffer(uint256 providerSeed, uint256 priceSeed) external action("setOffer") {
        address p = _providers[providerSeed % _providers.length];
        uint256 price = priceSeed % 8 == 0 ? 0 : bound(priceSeed, 1, MAX_PRICE);
        _doSetOffer(p, price, "setOffer");
    }

    /// @notice The slasher takes part (rarely all) of some account's stake.
    function slash(uint256 actorSeed, uint256 amountSeed) external action("slash") {
        address a = _actors[actorSeed % _actors.length]; // clients have nothing: slash returns 0
        GhostStake storage g = _gs[a];
        uint256 total = g.active + g.thawing;
        uint256 amount =
            amountSeed % 8 == 0 ? bound(amountSeed, 1, total + 1000e18) : bound(amountSeed, 1, total / 4 + 1);
        uint256 fromActive = amount < g.active ? amount : g.active;
        uint256 rest = amount - fromActive;
        uint256 fromThawing = rest < g.thawing ? rest : g.thawing;
        vm.prank(slasher);
        try staking.slash(a, amount) returns (uint256 slashed) {
            _ok("slash");
            if (slashed != fromActive + fromThawing) _violation("slash took something other than active-then-thawing");
            g.active -= fromActive;
            g.thawing -= fromThawing;
            if (g.thawing == 0) g.thawEnd = 0;
            ghostSumActive -= fromActive;
            ghostSumThawing -= fromThawing;
            ghostTotalSlashed += slashed;
            ghostBalance[slasher] += slashed;
            if (slashed != 0) _ghostRevokeAll(a, ICertificateRegistry.RevocationReason.Slashed);
        } catch {
            _unexpected("slash");
        }
    }

    /// @notice Any actor (staked or not) registers a fresh certificate while under MAX_ACTIVE; its
    /// notAfter is far beyond any campaign, so only revocation can end it.
    function registerCertificate(uint256 actorSeed) external action("registerCertificate") {
        address a = _actors[actorSeed % _actors.length];
        if (ghostLiveCerts[a] >= registry.MAX_ACTIVE()) return _skip("registerCertificate");
        bytes32 h = keccak256(abi.encode("flownet-handler-cert", _certs.length));
        vm.prank(a);
        try registry.register(h, keccak256(abi.encode(a)), "bafkreihandlerpem", uint64(ghostTime + 3650 days)) {
            _ok("registerCertificate");
            _certs.push(h);
            _certsOf[a].push(h);
            certOwner[h] = a;
            ghostLiveCerts[a]++;
        } catch {
            _unexpected("registerCertificate");
        }
    }

    // ================================================================== market actions

    /// @notice A client opens an order with a provider, usually with maxPrice >= the offer; one time
    /// in ten with maxPrice just below it (must be refused). A third of orders go through
    /// openOrderWithPermit with a bogus permit (ignored: the allowance is already there).
    function openOrder(
        uint256 clientSeed,
        uint256 providerSeed,
        uint256 depositSeed,
        uint256 durationSeed,
        uint256 maxPriceSeed
    ) external action("openOrder") {
        OpenPlan memory plan;
        plan.client = _buyer(clientSeed);
        plan.provider = _providers[providerSeed % _providers.length];
        GhostStake storage g = _gs[plan.provider];

        uint256 deposit = depositSeed % 4 == 0 ? bound(depositSeed, 1, 1000) : bound(depositSeed, 1e18, MAX_DEPOSIT);
        uint256 unlocked = g.active > g.locked ? g.active - g.locked : 0;
        if (_lockFor(deposit) > unlocked) deposit = unlocked * BPS / _lockBps;
        if (deposit > token.balanceOf(plan.client)) deposit = token.balanceOf(plan.client);
        if (deposit == 0) return _skip("openOrder");
        plan.deposit = deposit;
        plan.duration = bound(durationSeed, 1, _maxDuration);
        plan.withPermit = durationSeed % 3 == 0;

        bool priceProbe = maxPriceSeed % 10 == 0 && g.price != 0;
        plan.maxPrice = priceProbe ? g.price - 1 : g.price + bound(maxPriceSeed, 0, 1e18);
        plan.expectOk = !priceProbe && g.role == IStaking.Role.Provider && g.price != 0 && g.active >= _providerMin
            && _lockFor(deposit) <= unlocked && (!_refused(plan.provider, plan.client) || _canAccuse(plan.client));
        if (_refused(plan.provider, plan.client)) {
            if (_canAccuse(plan.client)) refusedVerifierOpens++;
            else refusedOpenAttempts++;
        }
        _executeOpen(plan, g.price, "openOrder");
    }

    /// @notice Anyone submits a client-signed cumulative receipt for an open order; the amount is
    /// above what was paid, at most the deposit, and at most what the receipt's bytes buy. An order's
    /// first receipt only its provider may redeem: from anyone else it must be refused.
    function redeem(uint256 orderSeed, uint256 amountSeed, uint256 extraBytesSeed, uint256 senderSeed)
        external
        action("redeem")
    {
        (bool has, uint256 k) = _pickOpen(orderSeed);
        if (!has) return _skip("redeem");
        GhostOrder storage o = _orders[k];
        if (o.paid >= o.order.deposit) return _skip("redeem");
        uint256 amount = bound(amountSeed, o.paid + 1, o.order.deposit);
        uint256 bytes_ = _bytesFor(amount, o.order.pricePerGiB);
        if (extraBytesSeed % 2 == 0) bytes_ += bound(extraBytesSeed, 0, GIB);
        IBandwidthMarket.Redemption memory r = _redemption(o, o.id, bytes_, amount, _keyOf[o.order.client]);

        // Half the time the provider itself sends it, so first receipts are usually accepted.
        address sender = senderSeed % 2 == 0 ? o.order.provider : _actors[(senderSeed >> 1) % _actors.length];
        bool expectOk = o.paid != 0 || sender == o.order.provider;
        if (!expectOk) invalidAttempts++;
        vm.prank(sender);
        try market.redeem(r) returns (uint256 payout) {
            _ok("redeem");
            if (!expectOk) {
                invalidAccepted++;
                _violation("an order's first receipt was redeemed by someone other than its provider");
            }
            _bookRedeem(k, bytes_, amount, payout);
        } catch {
            if (expectOk) _unexpected("redeem");
            else _rejected("redeem");
        }
    }

    /// @notice One to four receipts in one batch: different orders, or increasing receipts of one order.
    /// The batch must be refused when it carries an order's first receipt and its sender is not that
    /// order's provider.
    function redeemMany(uint256 seed, uint256 sizeSeed, uint256 senderSeed) external action("redeemMany") {
        uint256 n = bound(sizeSeed, 1, 4);
        IBandwidthMarket.Redemption[] memory rs = new IBandwidthMarket.Redemption[](n);
        uint256[] memory ks = new uint256[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 count;
        for (uint256 i; i < n; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            (bool has, uint256 k) = _pickOpen(s);
            if (!has) break;
            GhostOrder storage o = _orders[k];
            uint256 paid = o.paid;
            for (uint256 j; j < count; ++j) {
                if (ks[j] == k) paid = amounts[j]; // later entries of the same order build on earlier ones
            }
            if (paid >= o.order.deposit) continue;
            uint256 amount = bound(s >> 16, paid + 1, o.order.deposit);
            uint256 bytes_ = _bytesFor(amount, o.order.pricePerGiB);
            rs[count] = _redemption(o, o.id, bytes_, amount, _keyOf[o.order.client]);
            ks[count] = k;
            amounts[count] = amount;
            count++;
        }
        if (count == 0) return _skip("redeemMany");
        assembly ("memory-safe") {
            mstore(rs, count)
        }

        // Half the time the provider of the first receipt sends the batch.
        address sender =
            senderSeed % 2 == 0 ? rs[0].order.provider : _actors[(senderSeed >> 1) % _actors.length];
        bool expectOk = true;
        for (uint256 i; i < count; ++i) {
            // A first receipt: nothing paid before the batch and no earlier entry of the same order.
            bool first = _orders[ks[i]].paid == 0;
            for (uint256 j; j < i; ++j) {
                if (ks[j] == ks[i]) first = false;
            }
            if (first && sender != rs[i].order.provider) expectOk = false;
        }
        if (!expectOk) invalidAttempts++;
        vm.prank(sender);
        try market.redeemMany(rs) returns (uint256 total) {
            _ok("redeemMany");
            if (!expectOk) {
                invalidAccepted++;
                _violation("a batch redeemed an order's first receipt not sent by its provider");
            }
            uint256 expected;
            for (uint256 i; i < count; ++i) {
                uint256 payout = amounts[i] - _orders[ks[i]].paid;
                expected += payout;
                _bookRedeem(ks[i], rs[i].cumulativeBytes, amounts[i], payout);
            }
            if (total != expected) _violation("redeemMany returned a total other than the sum of payouts");
        } catch {
            if (expectOk) _unexpected("redeemMany");
            else _rejected("redeemMany");
        }
    }

    /// @notice A provider cancels one of its orders: usually one it never accepted (nothing paid),
    /// which must succeed, refund the whole deposit and unlock exactly the order's lock; one time in
    /// four any open order, which must be refused when something was paid. Half the time it also
    /// refuses the client for up to MAX_REFUSAL. One time in eight someone else (the client, another
    /// provider, anyone) tries, which must be refused.
    function cancel(uint256 orderSeed, uint256 callerSeed, uint256 refuseSeed) external action("cancel") {
        (bool has, uint256 k) = orderSeed % 4 == 0 ? _pickOpen(orderSeed) : _pickUnpaid(orderSeed);
        if (!has) return _skip("cancel");
        GhostOrder storage o = _orders[k];
        address caller = o.order.provider;
        if (callerSeed % 8 == 0) {
            caller = _actors[(callerSeed >> 3) % _actors.length];
            if (caller == o.order.provider) caller = o.order.client;
        }
        uint64 refuseUntil = refuseSeed % 2 == 0 ? uint64(ghostTime + bound(refuseSeed >> 1, 1, MAX_REFUSAL)) : 0;
        bool expectOk = caller == o.order.provider && o.paid == 0;
        if (!expectOk) invalidAttempts++;
        uint256 clientBefore = token.balanceOf(o.order.client);
        uint256 lockedBefore = staking.stakeOf(o.order.provider).locked;
        vm.prank(caller);
        try market.cancel(o.id, o.order, refuseUntil) returns (uint256 refund) {
            _ok("cancel");
            if (!expectOk) {
                invalidAccepted++;
                _violation("cancel accepted from someone other than the provider or for a paid order");
            }
            if (refund != o.order.deposit) _violation("cancel refunded something other than the whole deposit");
            if (token.balanceOf(o.order.client) != clientBefore + refund) {
                _violation("cancel's refund did not reach the client");
            }
            if (lockedBefore - staking.stakeOf(o.order.provider).locked != o.lock) {
                _violation("cancel unlocked something other than the order's lock");
            }
            if (refuseUntil != 0) ghostRefusedUntil[o.order.provider][o.order.client] = refuseUntil;
            o.cancelled = true;
            _bookClosed(k, 0, refund);
        } catch {
            if (expectOk) _unexpected("cancel");
            else _rejected("cancel");
        }
    }

    /// @notice A provider refuses a client (one time in four a verifier, which stays free to buy while
    /// it could accuse the provider) until some time, or (one time in three) lifts a refusal.
    function refuse(uint256 providerSeed, uint256 clientSeed, uint256 untilSeed) external action("refuse") {
        address p = _providers[providerSeed % _providers.length];
        address c = _buyer(clientSeed);
        uint64 until = untilSeed % 3 == 0 ? 0 : uint64(ghostTime + bound(untilSeed, 1, MAX_REFUSAL));
        vm.prank(p);
        try market.refuse(c, until) {
            _ok("refuse");
            ghostRefusedUntil[p][c] = until;
        } catch {
            _unexpected("refuse");
            return;
        }
        // A refused verifier that could accuse the provider still buys a (probe) order at once.
        GhostStake storage g = _gs[p];
        uint256 deposit = bound(untilSeed >> 64, 1e18, 100e18);
        uint256 unlocked = g.active > g.locked ? g.active - g.locked : 0;
        if (
            !_refused(p, c) || !_canAccuse(c) || g.price == 0 || g.active < _providerMin
                || _lockFor(deposit) > unlocked || token.balanceOf(c) < deposit
        ) return;
        refusedVerifierOpens++;
        OpenPlan memory plan = OpenPlan({
            client: c,
            provider: p,
            deposit: deposit,
            duration: bound(untilSeed >> 128, 1 hours, _maxDuration),
            maxPrice: g.price,
            withPermit: false,
            expectOk: true
        });
        _executeOpen(plan, g.price, "verifierOpen");
    }

    /// @notice The client closes an open order with the provider's CloseOrder signature.
    function close(uint256 orderSeed, uint256 finalSeed) external action("close") {
        (bool has, uint256 k) = _pickOpen(orderSeed);
        if (!has) return _skip("close");
        GhostOrder storage o = _orders[k];
        uint256 finalAmount = bound(finalSeed, o.paid, o.order.deposit);
        bytes memory sig = _sign(_keyOf[o.order.provider], market.closeDigest(o.id, finalAmount));
        vm.prank(o.order.client);
        try market.close(o.id, o.order, finalAmount, sig) {
            _ok("close");
            _bookClosed(k, finalAmount - o.paid, o.order.deposit - finalAmount);
        } catch {
            _unexpected("close");
        }
    }

    /// @notice Anyone reclaims an order's unpaid remainder for its client. Usually the handler first
    /// warps past expiry + grace; one time in four it tries early (must be refused).
    function reclaim(uint256 orderSeed, uint256 senderSeed, uint256 waitSeed) external action("reclaim") {
        (bool has, uint256 k) = _pickOpen(orderSeed);
        if (!has) return _skip("reclaim");
        GhostOrder storage o = _orders[k];
        uint256 reclaimableAt = uint256(o.order.expiry) + _grace;
        if (ghostTime < reclaimableAt && waitSeed % 4 != 0) _warpTo(reclaimableAt + bound(waitSeed >> 8, 0, 1 days));
        bool early = ghostTime < reclaimableAt;
        if (early) invalidAttempts++;
        vm.prank(_actors[senderSeed % _actors.length]);
        try market.reclaim(o.id, o.order) returns (uint256 refund) {
            _ok("reclaim");
            if (early) {
                invalidAccepted++;
                _violation("reclaim succeeded before expiry + grace");
            }
            if (refund != o.order.deposit - o.paid) _violation("reclaim refunded something other than deposit - paid");
            _bookClosed(k, 0, refund);
        } catch {
            if (early) _rejected("reclaim");
            else _unexpected("reclaim");
        }
    }

    /// @notice Time passes.
    function warp(uint256 secondsSeed) external action("warp") {
        _warpTo(ghostTime + bound(secondsSeed, 1, MAX_WARP));
        _ok("warp");
    }

    // ================================================================== probes (must be refused)

    /// @notice Submits an otherwise valid receipt or close whose signature was made for another
    /// order, for another contract (a second market deployment, or any address), or under another
    /// chain id, or submits a correctly signed one while the chain id differs. Every acceptance is
    /// counted in foreignAccepted.
    function probeForeignSignature(
        uint256 mode,
        uint256 orderSeed,
        uint256 otherSeed,
        uint256 amountSeed,
        uint256 chainSeed
    ) external action("probeForeignSignature") {
        (bool has, uint256 k) = _pickOpen(orderSeed);
        if (!has) return _skip("probeForeignSignature");
        mode %= 10;
        uint256 otherChain = bound(chainSeed, 1, type(uint64).max);
        if (otherChain == _chainId) otherChain++;
        if (mode < 6) _probeForeignReceipt(k, mode, otherSeed, amountSeed, otherChain);
        else _probeForeignClose(k, mode, otherSeed, amountSeed, otherChain);
    }

    /// @notice Submits a call that the spec says must fail for a reason other than a foreign
    /// signature. Every acceptance is counted in invalidAccepted.
    function probeInvalidCall(uint256 mode, uint256 orderSeed, uint256 actorSeed, uint256 amountSeed)
        external
        action("probeInvalidCall")
    {
        mode %= 10;
        if (mode == 6 || mode == 7) return _probeInvalidStaking(mode, actorSeed, amountSeed);
        (bool has, uint256 k) = _pickOpen(orderSeed);
        if (!has) return _skip("probeInvalidCall");
        GhostOrder storage o = _orders[k];
        IBandwidthMarket.Order memory terms = o.order;
        bool sent;
        bool accepted;
        if (mode == 0 && o.paid < terms.deposit) {
            // Receipt signed by someone other than the client (the provider, or another client).
            uint256 amount = bound(amountSeed, o.paid + 1, terms.deposit);
            address signer = actorSeed % 2 == 0 ? terms.provider : _clients[actorSeed % _clients.length];
            if (signer == terms.client) signer = terms.provider;
            IBandwidthMarket.Redemption memory r =
                _redemption(o, o.id, _bytesFor(amount, terms.pricePerGiB), amount, _keyOf[signer]);
            (sent, accepted) = (true, _tryRedeem(r));
        } else if (mode == 1) {
            // Stale receipt: not above what was already paid.
            uint256 amount = bound(amountSeed, 0, o.paid);
            IBandwidthMarket.Redemption memory r =
                _redemption(o, o.id, _bytesFor(amount, terms.pricePerGiB), amount, _keyOf[terms.client]);
            (sent, accepted) = (true, _tryRedeem(r));
        } else if (mode == 2 && o.paid < terms.deposit) {
            // Amount above what the receipt's bytes buy at the order's price.
            uint256 amount = bound(amountSeed, o.paid + 1, terms.deposit);
            uint256 bytes_ = (amount - 1) * GIB / terms.pricePerGiB; // costs at most amount - 1
            IBandwidthMarket.Redemption memory r = _redemption(o, o.id, bytes_, amount, _keyOf[terms.client]);
            (sent, accepted) = (true, _tryRedeem(r));
        } else if (mode == 3) {
            // Amount above the deposit, with bytes that would pay for it.
            uint256 amount = bound(amountSeed, uint256(terms.deposit) + 1, uint256(terms.deposit) * 2 + 1);
            IBandwidthMarket.Redemption memory r =
                _redemption(o, o.id, _bytesFor(amount, terms.pricePerGiB), amount, _keyOf[terms.client]);
            (sent, accepted) = (true, _tryRedeem(r));
        } else if (mode == 4) {
            // A valid provider close signature submitted by someone other than the client.
            uint256 finalAmount = bound(amountSeed, o.paid, terms.deposit);
            bytes memory sig = _sign(_keyOf[terms.provider], market.closeDigest(o.id, finalAmount));
            address caller = _actors[actorSeed % _actors.length];
            if (caller == terms.client) caller = terms.provider;
            vm.prank(caller);
            try market.close(o.id, terms, finalAmount, sig) {
                accepted = true;
            } catch {}
            sent = true;
        } else if (mode == 5) {
            // Reclaim before expiry + grace.
            if (ghostTime < uint256(terms.expiry) + _grace) {
                vm.prank(_actors[actorSeed % _actors.length]);
                try market.reclaim(o.id, terms) {
                    accepted = true;
                } catch {}
                sent = true;
            }
        } else if (mode == 8) {
            // A cancel the spec forbids: of an order its provider accepted (something was paid), or by
            // someone other than the provider.
            address caller = o.paid != 0 ? terms.provider : _actors[actorSeed % _actors.length];
            if (caller == terms.provider && o.paid == 0) caller = terms.client;
            vm.prank(caller);
            try market.cancel(o.id, terms, 0) {
                accepted = true;
                _bookClosed(k, 0, terms.deposit); // keep the other ghosts in step
            } catch {}
            sent = true;
        } else if (mode == 9 && o.paid == 0) {
            // The first receipt of an order sent by anyone but its provider (the 1-wei "pin" among them).
            uint256 amount = actorSeed % 2 == 0 ? 1 : bound(amountSeed, 1, terms.deposit);
            address caller = _actors[actorSeed % _actors.length];
            if (caller == terms.provider) caller = terms.client;
            IBandwidthMarket.Redemption memory r =
                _redemption(o, o.id, _bytesFor(amount, terms.pricePerGiB), amount, _keyOf[terms.client]);
            vm.prank(caller);
            try market.redeem(r) returns (uint256 payout) {
                accepted = true;
                _bookRedeem(k, r.cumulativeBytes, amount, payout);
            } catch {}
            sent = true;
        }
        _bookProbe(sent, accepted, false, "probeInvalidCall");
    }

    // ================================================================== views for the invariants

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function providers() external view returns (address[] memory) {
        return _providers;
    }

    function orderCount() external view returns (uint256) {
        return _orders.length;
    }

    function orderAt(uint256 i) external view returns (GhostOrder memory) {
        return _orders[i];
    }

    function openOrderCount() external view returns (uint256) {
        return _open.length;
    }

    /// @notice Every certificate registered through the handler.
    function certificates() external view returns (bytes32[] memory) {
        return _certs;
    }

    function ghostStakeOf(address a) external view returns (GhostStake memory) {
        return _gs[a];
    }

    function violationCount() external view returns (uint256) {
        return _violations.length;
    }

    function violation(uint256 i) external view returns (string memory) {
        return _violations[i];
    }

    function actionNames() external view returns (string[] memory) {
        return _actionNames;
    }

    function counter(string calldata name) external view returns (Counter memory) {
        return _counters[name];
    }

    // ================================================================== internals: actions

    function _doStake(address a, IStaking.Role role, uint256 amount, string memory name) internal {
        GhostStake storage g = _gs[a];
        vm.prank(a);
        try staking.stake(role, amount) {
            _ok(name);
            g.active += amount;
            if (g.role == IStaking.Role.None) g.role = role;
            ghostSumActive += amount;
            ghostBalance[a] -= amount;
        } catch {
            _unexpected(name);
        }
    }

    function _doSetOffer(address p, uint256 price, string memory name) internal {
        vm.prank(p);
        try staking.setOffer(price, string.concat("bafkrei", vm.toString(price % 1_000_000))) {
            _ok(name);
            _gs[p].price = price;
        } catch {
            _unexpected(name);
        }
    }

    function _executeOpen(OpenPlan memory plan, uint256 price, string memory name) internal {
        IBandwidthMarket.Order memory o = IBandwidthMarket.Order({
            nonce: market.nextNonce(),
            client: plan.client,
            provider: plan.provider,
            deposit: uint96(plan.deposit),
            pricePerGiB: uint96(price),
            expiry: uint64(ghostTime + plan.duration)
        });
        (bool ok, bytes32 id) = _callOpen(plan);
        if (!ok) {
            if (plan.expectOk) _unexpected(name);
            else _rejected(name);
            return;
        }
        _ok(name);
        if (!plan.expectOk) _violation("openOrder accepted an order the provider cannot take or above maxPrice");
        if (id != keccak256(abi.encode(o))) _violation("order id is not keccak256(abi.encode(order))");

        uint256 k = _orders.length;
        GhostOrder storage go = _orders.push();
        go.id = id;
        go.order = o;
        go.lock = _lockFor(plan.deposit);
        _open.push(k);
        _openPos[k] = _open.length;
        _gs[plan.provider].locked += go.lock;
        ghostBalance[plan.client] -= plan.deposit;
        ghostEscrow += plan.deposit;
        ghostDeposited += plan.deposit;
    }

    function _callOpen(OpenPlan memory plan) internal returns (bool ok, bytes32 id) {
        vm.prank(plan.client);
        if (plan.withPermit) {
            try market.openOrderWithPermit(
                plan.provider, plan.deposit, plan.duration, plan.maxPrice, ghostTime, 27, bytes32(0), bytes32(0)
            ) returns (
                bytes32 id_
            ) {
                return (true, id_);
            } catch {
                return (false, bytes32(0));
            }
        }
        try market.openOrder(plan.provider, plan.deposit, plan.duration, plan.maxPrice) returns (bytes32 id_) {
            return (true, id_);
        } catch {
            return (false, bytes32(0));
        }
    }

    function _bookRedeem(uint256 k, uint256 bytes_, uint256 amount, uint256 payout) internal {
        GhostOrder storage o = _orders[k];
        if (payout != amount - o.paid) _violation("redeem paid something other than amount - paid");
        ghostBalance[o.order.provider] += payout;
        ghostEscrow = _sat(ghostEscrow, payout);
        ghostPaidOut += payout;
        o.paid = amount;
        o.cumulativeBytes = bytes_;
    }

    /// @dev Books the end of order k: the provider got `payout` more, the client got `refund` back,
    /// and the provider's stake unlocks.
    function _bookClosed(uint256 k, uint256 payout, uint256 refund) internal {
        GhostOrder storage o = _orders[k];
        o.paid += payout;
        o.refunded = refund;
        o.closed = true;
        ghostBalance[o.order.provider] += payout;
        ghostBalance[o.order.client] += refund;
        ghostPaidOut += payout;
        ghostRefunded += refund;
        ghostEscrow = _sat(ghostEscrow, payout + refund);
        GhostStake storage g = _gs[o.order.provider];
        g.locked = _sat(g.locked, o.lock);
        uint256 pos = _openPos[k] - 1;
        uint256 last = _open[_open.length - 1];
        _open[pos] = last;
        _openPos[last] = pos + 1;
        _open.pop();
        _openPos[k] = 0;
    }

    // ================================================================== internals: probes

    function _probeForeignReceipt(uint256 k, uint256 mode, uint256 otherSeed, uint256 amountSeed, uint256 otherChain)
        internal
    {
        GhostOrder storage o = _orders[k];
        if (o.paid >= o.order.deposit) return _skip("probeForeignSignature");
        uint256 amount = bound(amountSeed, o.paid + 1, o.order.deposit);
        uint256 bytes_ = _bytesFor(amount, o.order.pricePerGiB);
        uint256 key = _keyOf[o.order.client];
        IBandwidthMarket.Redemption memory r = _redemption(o, o.id, bytes_, amount, key);

        // The handler's own EIP-712 digest must match the market's, or the cross-domain probes below
        // would prove nothing.
        if (
            _receiptDigest(_domain(_chainId, address(market)), o.id, bytes_, amount)
                != market.receiptDigest(o.id, bytes_, amount)
        ) {
            _violation("receiptDigest differs from the EIP-712 Receipt digest");
        }

        bool sameTarget = true; // the call targets order k with its own terms
        if (mode == 0 || mode == 1) {
            (bool hasOther, uint256 j) = _pickOther(otherSeed, k);
            if (!hasOther) return _skip("probeForeignSignature");
            bytes32 otherId = _orders[j].id;
            // Signed by the right client, over the other order's id.
            r.signature = _sign(key, market.receiptDigest(otherId, bytes_, amount));
            if (mode == 1) {
                // The other order's id with this order's terms (the terms do not hash to it).
                r.orderId = otherId;
                sameTarget = false;
            }
        } else if (mode == 2) {
            r.signature = _sign(key, otherMarket.receiptDigest(o.id, bytes_, amount));
        } else if (mode == 3) {
            address elsewhere = address(uint160(uint256(keccak256(abi.encode(otherSeed)))));
            if (otherSeed % 2 == 0) elsewhere = address(staking);
            r.signature = _sign(key, _receiptDigest(_domain(_chainId, elsewhere), o.id, bytes_, amount));
        } else if (mode == 4) {
            vm.chainId(otherChain);
            bytes32 digest = market.receiptDigest(o.id, bytes_, amount);
            vm.chainId(_chainId);
            if (digest != _receiptDigest(_domain(otherChain, address(market)), o.id, bytes_, amount)) {
                _violation("receiptDigest does not follow block.chainid");
            }
            r.signature = _sign(key, digest);
        }
        // mode 5: the correctly signed receipt, submitted while the chain id differs.
        if (mode == 5) vm.chainId(otherChain);
        vm.prank(o.order.provider);
        bool accepted;
        try market.redeem(r) returns (uint256 payout) {
            accepted = true;
            if (sameTarget) _bookRedeem(k, bytes_, amount, payout); // keep the other ghosts in step
        } catch {}
        if (mode == 5) vm.chainId(_chainId);
        _bookProbe(true, accepted, true, "probeForeignSignature");
    }

    function _probeForeignClose(uint256 k, uint256 mode, uint256 otherSeed, uint256 amountSeed, uint256 otherChain)
        internal
    {
        GhostOrder storage o = _orders[k];
        IBandwidthMarket.Order memory terms = o.order;
        uint256 finalAmount = bound(amountSeed, o.paid, terms.deposit);
        uint256 key = _keyOf[terms.provider];
        bytes32 digest;
        if (mode == 6) {
            (bool hasOther, uint256 j) = _pickOther(otherSeed, k);
            if (!hasOther) return _skip("probeForeignSignature");
            digest = market.closeDigest(_orders[j].id, finalAmount); // the right provider, another order
        } else if (mode == 7) {
            digest = otherMarket.closeDigest(o.id, finalAmount);
        } else if (mode == 8) {
            vm.chainId(otherChain);
            digest = market.closeDigest(o.id, finalAmount);
            vm.chainId(_chainId);
        } else {
            digest = market.closeDigest(o.id, finalAmount); // valid, but submitted on another chain
        }
        if (mode == 7 || mode == 8) {
            bytes32 own = keccak256(
                abi.encodePacked(
                    "\x19\x01",
                    _domain(_chainId, address(market)),
                    keccak256(abi.encode(CLOSE_TYPEHASH, o.id, finalAmount))
                )
            );
            if (own != market.closeDigest(o.id, finalAmount)) {
                _violation("closeDigest differs from the EIP-712 digest");
            }
        }
        bytes memory sig = _sign(key, digest);
        if (mode == 9) vm.chainId(otherChain);
        vm.prank(terms.client);
        bool accepted;
        try market.close(o.id, terms, finalAmount, sig) {
            accepted = true;
        } catch {}
        if (mode == 9) vm.chainId(_chainId);
        if (accepted) _bookClosed(k, finalAmount - o.paid, terms.deposit - finalAmount);
        _bookProbe(true, accepted, true, "probeForeignSignature");
    }

    function _probeInvalidStaking(uint256 mode, uint256 actorSeed, uint256 amountSeed) internal {
        address a = _stakers[actorSeed % _stakers.length];
        bool accepted;
        if (mode == 6) {
            // Slash by anyone but the slasher.
            address caller = _actors[(actorSeed >> 8) % _actors.length];
            vm.prank(caller);
            try staking.slash(a, bound(amountSeed, 1, 1000e18)) {
                accepted = true;
            } catch {}
        } else {
            // Unstake more than is unlocked.
            GhostStake storage g = _gs[a];
            uint256 unlocked = g.active > g.locked ? g.active - g.locked : 0;
            vm.prank(a);
            try staking.requestUnstake(bound(amountSeed, unlocked + 1, unlocked + MAX_STAKE)) {
                accepted = true;
            } catch {}
        }
        _bookProbe(true, accepted, false, "probeInvalidCall");
    }

    function _tryRedeem(IBandwidthMarket.Redemption memory r) internal returns (bool accepted) {
        vm.prank(r.order.provider);
        try market.redeem(r) {
            accepted = true;
        } catch {}
    }

    function _bookProbe(bool sent, bool accepted, bool foreign, string memory name) internal {
        if (!sent) return _skip(name);
        if (foreign) foreignAttempts++;
        else invalidAttempts++;
        if (!accepted) {
            _counters[name].rejected++;
            return;
        }
        _counters[name].ok++;
        if (foreign) {
            foreignAccepted++;
            _violation("a receipt or close signed for another order, chain id or contract was accepted");
        } else {
            invalidAccepted++;
            _violation("a call the spec forbids was accepted");
        }
    }

    // ================================================================== internals: helpers

    function _redemption(GhostOrder storage o, bytes32 signedId, uint256 bytes_, uint256 amount, uint256 key)
        internal
        view
        returns (IBandwidthMarket.Redemption memory r)
    {
        r.orderId = o.id;
        r.order = o.order;
        r.cumulativeBytes = bytes_;
        r.cumulativeAmount = amount;
        r.signature = _sign(key, market.receiptDigest(signedId, bytes_, amount));
    }

    /// @dev An open order picked by `seed`. When none is open, first opens a valid one (if some
    /// provider can take it), so market actions keep working on deep state instead of skipping.
    function _pickOpen(uint256 seed) internal returns (bool, uint256) {
        if (_open.length == 0) _autoOpen(seed);
        if (_open.length == 0) return (false, 0);
        return (true, _open[seed % _open.length]);
    }

    function _autoOpen(uint256 seed) internal {
        uint256 deposit = bound(seed >> 32, 1e18, 5_000e18);
        for (uint256 i; i < _providers.length; ++i) {
            address p = _providers[(seed % _providers.length + i) % _providers.length];
            GhostStake storage g = _gs[p];
            uint256 unlocked = g.active > g.locked ? g.active - g.locked : 0;
            if (g.price == 0 || g.active < _providerMin || _lockFor(deposit) > unlocked) continue;
            address c = _clients[(seed >> 8) % _clients.length];
            if (token.balanceOf(c) < deposit || _refused(p, c)) continue;
            OpenPlan memory plan = OpenPlan({
                client: c,
                provider: p,
                deposit: deposit,
                duration: bound(seed >> 64, 1 hours, _maxDuration),
                maxPrice: g.price,
                withPermit: false,
                expectOk: true
            });
            _executeOpen(plan, g.price, "autoOpen");
            return;
        }
    }

    /// @dev An open order nothing was paid for yet (the provider has not accepted it), searched from
    /// `seed`; when there is none, first opens a valid one.
    function _pickUnpaid(uint256 seed) internal returns (bool, uint256) {
        uint256 n = _open.length;
        uint256 start = n == 0 ? 0 : seed % n; // seed + i could overflow
        for (uint256 i; i < n; ++i) {
            uint256 k = _open[(start + i) % n];
            if (_orders[k].paid == 0) return (true, k);
        }
        uint256 before = _orders.length;
        _autoOpen(seed);
        if (_orders.length == before) return (false, 0);
        return (true, before);
    }

    function _refused(address p, address c) internal view returns (bool) {
        return ghostTime < ghostRefusedUntil[p][c];
    }

    /// @dev The model of "a verifier that could accuse": role Verifier, the minimum, nothing thawing.
    function _canAccuse(address a) internal view returns (bool) {
        GhostStake storage g = _gs[a];
        return g.role == IStaking.Role.Verifier && g.active >= _verifierMin && g.thawing == 0;
    }

    /// @dev Who buys: a client, or one time in four a verifier (verifiers probe providers as clients).
    function _buyer(uint256 seed) internal view returns (address) {
        if (seed % 4 == 3) return _verifiers[(seed >> 2) % _verifiers.length];
        return _clients[seed % _clients.length];
    }

    /// @dev Any order (open or closed) other than k.
    function _pickOther(uint256 seed, uint256 k) internal view returns (bool, uint256) {
        uint256 n = _orders.length;
        if (n < 2) return (false, 0);
        uint256 j = seed % n;
        if (j == k) j = (j + 1) % n;
        return (true, j);
    }

    function _warpTo(uint256 t) internal {
        if (t <= ghostTime) return;
        ghostTime = t;
        vm.warp(t);
    }

    function _roleFor(address a) internal view returns (IStaking.Role) {
        for (uint256 i; i < _providers.length; ++i) {
            if (_providers[i] == a) return IStaking.Role.Provider;
        }
        return IStaking.Role.Verifier;
    }

    function _minimumOf(IStaking.Role role) internal view returns (uint256) {
        if (role == IStaking.Role.Provider) return _providerMin;
        if (role == IStaking.Role.Verifier) return _verifierMin;
        return 0;
    }

    /// @dev ceil(deposit * lockBps / 10_000), written out rather than taken from Pricing.
    function _lockFor(uint256 deposit) internal view returns (uint256) {
        return (deposit * _lockBps + BPS - 1) / BPS;
    }

    /// @dev The fewest bytes whose cost at `price` covers `amount`: ceil(amount * GiB / price).
    function _bytesFor(uint256 amount, uint256 price) internal pure returns (uint256) {
        return (amount * GIB + price - 1) / price;
    }

    function _domain(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("FlowNet BandwidthMarket"), keccak256("1"), chainId, verifyingContract
            )
        );
    }

    function _receiptDigest(bytes32 domain, bytes32 orderId, uint256 bytes_, uint256 amount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked("\x19\x01", domain, keccak256(abi.encode(RECEIPT_TYPEHASH, orderId, bytes_, amount)))
        );
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _sat(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a - b : 0;
    }

    /// @dev The model of Staking's hook: every live certificate of `a` is revoked for `reason`.
    function _ghostRevokeAll(address a, ICertificateRegistry.RevocationReason reason) internal {
        bytes32[] storage certs = _certsOf[a];
        for (uint256 i; i < certs.length; ++i) {
            if (ghostCertRevokedAs[certs[i]] == 0) ghostCertRevokedAs[certs[i]] = uint256(reason) + 1;
        }
        ghostLiveCerts[a] = 0;
    }

    function _ok(string memory name) internal {
        _counters[name].ok++;
    }

    function _rejected(string memory name) internal {
        _counters[name].rejected++;
    }

    function _skip(string memory name) internal {
        _counters[name].skipped++;
    }

    function _unexpected(string memory name) internal {
        _counters[name].rejected++;
        unexpectedReverts++;
        _violation(string.concat("a call the model deems valid reverted: ", name));
    }

    function _violation(string memory what) internal {
        // Keep the list short: the first few are what a reviewer needs.
        if (_violations.length < 16) _violations.push(what);
    }
}

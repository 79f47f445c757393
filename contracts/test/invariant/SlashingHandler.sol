// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "../utils/BaseTest.sol";
import {FlowToken} from "../../FlowToken.sol";
import {Staking} from "../../Staking.sol";
import {BandwidthMarket} from "../../BandwidthMarket.sol";
import {SlashingManager} from "../../SlashingManager.sol";
import {TrustRegistry} from "../../TrustRegistry.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IBandwidthMarket} from "../../interfaces/IBandwidthMarket.sol";
import {ISlashingManager} from "../../interfaces/ISlashingManager.sol";

/// @notice The only contract the slashing invariant campaign calls (see README.md). Every action
/// predicts from its ghost model whether the call must succeed, sends it inside try/catch, and
/// records any disagreement as a violation; nothing reverts on its own.
contract SlashingHandler is BaseTest {
    struct GhostDispute {
        uint256 id;
        address provider;
        uint64 epoch;
        uint64 challengeEnds;
        address[] accusers;
        bool open;
    }

    struct GhostScore {
        uint16 value;
        bool set;
    }

    uint256 internal constant PROVIDERS = 3;
    uint256 internal constant VERIFIERS = 4;
    uint256 internal constant SUBJECTS = 3;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant FUNDS = 1_000_000e18;
    uint256 internal constant PROVIDER_STAKE = 20_000e18;
    bytes32 internal constant ENDPOINT_A = keccak256("a.example:443");
    bytes32 internal constant ENDPOINT_B = keccak256("b.example:443");

    FlowToken public immutable token;
    Staking public immutable staking;
    BandwidthMarket public immutable market;
    SlashingManager public immutable slashing;
    TrustRegistry public immutable trust;
    address[4] internal _authorities;
    ISlashingManager.Config internal _cfg;

    uint256[PROVIDERS] internal _providerKeys;
    uint256[VERIFIERS] internal _verifierKeys;
    uint256 internal _clientKey;
    address[PROVIDERS] public providers;
    address[VERIFIERS] public verifiers;
    address public client;
    address[SUBJECTS] public subjects;
    address[4] public scorers; // one allowed scorer per domain
    address public outsider; // never allowed anywhere

    uint256 public ghostTime;
    uint256 internal _cidNonce;
    string[] internal _usedCids;
    mapping(bytes32 => uint256) public acceptedUses;
    mapping(address => mapping(uint64 => bool)) public ghostSlashed;
    mapping(address => mapping(uint64 => uint256)) internal _ghostOpen; // dispute index + 1
    mapping(address => mapping(uint256 => uint256)) public ghostPeriodSlashed;
    address[] internal _periodProviders;
    uint256[] internal _periodIndexes;
    GhostDispute[] internal _disputes;
    mapping(address => IBandwidthMarket.Order) internal _orders;
    mapping(address => mapping(uint8 => GhostScore)) internal _scores;
    mapping(address => mapping(address => mapping(uint8 => uint256))) internal _lastChange;

    uint256 public violations;
    string public firstViolation;
    uint256 public capViolations;
    uint256 public rebutViolations;
    uint256 public reuseAccepted;
    uint256 public doubleSlashes;
    uint256 public statuteViolations;
    uint256 public unauthorizedAccepted;
    uint256 public totalBurned;
    uint256 public initialSupply;

    mapping(string => uint256) public calls;
    mapping(string => uint256) public ok;

    constructor(
        FlowToken token_,
        Staking staking_,
        BandwidthMarket market_,
        SlashingManager slashing_,
        TrustRegistry trust_,
        address[4] memory authorities_
    ) {
        token = token_;
        staking = staking_;
        market = market_;
        slashing = slashing_;
        trust = trust_;
        _authorities = authorities_;
        _cfg = slashing_.config();
        for (uint256 i; i < PROVIDERS; ++i) {
            _providerKeys[i] = 0x3000 + i;
            providers[i] = vm.addr(_providerKeys[i]);
        }
        for (uint256 i; i < VERIFIERS; ++i) {
            _verifierKeys[i] = 0x3100 + i;
            verifiers[i] = vm.addr(_verifierKeys[i]);
        }
        _clientKey = 0x3200;
        client = vm.addr(_clientKey);
        for (uint256 i; i < SUBJECTS; ++i) {
            subjects[i] = address(uint160(0x3300 + i));
        }
        for (uint8 d; d < 4; ++d) {
            scorers[d] = address(uint160(0x3400 + d));
        }
        outsider = address(0x3500);
    }

    /// @notice Every account that receives FUNDS from the test.
    function funded() external view returns (address[] memory list) {
        list = new address[](PROVIDERS + VERIFIERS + 1);
        for (uint256 i; i < PROVIDERS; ++i) {
            list[i] = providers[i];
        }
        for (uint256 i; i < VERIFIERS; ++i) {
            list[PROVIDERS + i] = verifiers[i];
        }
        list[PROVIDERS + VERIFIERS] = client;
    }

    /// @notice Providers and verifiers stake, providers offer, scorers are allowed, the client opens an
    /// order with each provider.
    function bootstrap() external {
        ghostTime = block.timestamp;
        initialSupply = token.totalSupply();
        for (uint256 i; i < PROVIDERS; ++i) {
            vm.startPrank(providers[i]);
            token.approve(address(staking), type(uint256).max);
            staking.stake(IStaking.Role.Provider, PROVIDER_STAKE);
            staking.setOffer(1e18, "bafkreiprovider");
            vm.stopPrank();
        }
        uint256 minimum = staking.verifierMinStake();
        for (uint256 i; i < VERIFIERS; ++i) {
            vm.startPrank(verifiers[i]);
            token.approve(address(staking), type(uint256).max);
            staking.stake(IStaking.Role.Verifier, minimum * (i + 1));
            vm.stopPrank();
        }
        vm.prank(client);
        token.approve(address(market), type(uint256).max);
        for (uint8 d; d < 4; ++d) {
            vm.prank(_authorities[d]);
            trust.setScorer(d, scorers[d], true);
        }
        for (uint256 i; i < PROVIDERS; ++i) {
            _openOrder(providers[i]);
        }
    }

    // ------------------------------------------------------------------ actions

    /// @notice Anyone reports two heartbeats of one provider and epoch naming different endpoints.
    function equivocate(uint256 providerSeed, uint256 back, uint256 cidSeed, address reporter) external {
        _sync();
        calls["equivocate"]++;
        uint256 p = providerSeed % PROVIDERS;
        address who = providers[p];
        uint64 epoch = _pickEpoch(back);
        string memory cid = _pickCid(cidSeed);
        if (reporter == address(0) || reporter == address(slashing) || reporter == address(staking)) {
            reporter = outsider;
        }

        bool valid = _epochAcceptable(who, epoch) && acceptedUses[keccak256(bytes(cid))] == 0 && _capRoom(who) != 0;
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = _equivocation(p, epoch);
        uint256 stakeBefore = _stakeOf(who);
        uint256 supplyBefore = token.totalSupply();
        vm.prank(reporter);
        try slashing.slashEquivocation(a, sigA, b, sigB, cid) returns (uint256 slashed) {
            ok["equivocate"]++;
            if (!valid) _violation("equivocation accepted against the model (statute, reuse, double slash or cap)");
            _accepted(who, epoch, cid, slashed, stakeBefore);
            _afterEquivocation(who, epoch, slashed, supplyBefore);
        } catch {
            if (valid) _violation("valid equivocation refused");
        }
    }

    function _equivocation(uint256 p, uint64 epoch)
        internal
        view
        returns (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        )
    {
        address who = providers[p];
        uint64 t = epoch * _cfg.epochSeconds;
        a = ISlashingManager.Heartbeat(who, epoch, ENDPOINT_A, 100, t);
        b = ISlashingManager.Heartbeat(who, epoch, ENDPOINT_B, 200, t + 1);
        sigA = _sign(_providerKeys[p], slashing.heartbeatDigest(a));
        sigB = _sign(_providerKeys[p], slashing.heartbeatDigest(b));
    }

    function _afterEquivocation(address who, uint64 epoch, uint256 slashed, uint256 supplyBefore) internal {
        uint256 reward = slashed * _cfg.rewardBps / BPS;
        totalBurned += slashed - reward;
        if (supplyBefore - token.totalSupply() != slashed - reward) _violation("equivocation burn wrong");
        uint256 idx = _ghostOpen[who][epoch];
        if (idx != 0) {
            _disputes[idx - 1].open = false;
            _ghostOpen[who][epoch] = 0;
        }
    }

    /// @notice Two or three verifiers accuse a provider; the dispute is opened by the handler.
    function openDispute(uint256 providerSeed, uint256 back, uint256 cidSeed, uint256 verifierSeed, uint8 kind)
        external
    {
        _sync();
        calls["openDispute"]++;
        address who = providers[providerSeed % PROVIDERS];
        uint64 epoch = _pickEpoch(back);
        string memory cid = _pickCid(cidSeed);
        kind = uint8(bound(kind, 0, 3));
        (bytes[] memory sigs, address[] memory accusers, bool staked) = _attest(who, epoch, kind, cid, verifierSeed);
        bool valid = staked && _epochAcceptable(who, epoch) && _ghostOpen[who][epoch] == 0
            && acceptedUses[keccak256(bytes(cid))] == 0;
        try slashing.openDispute(who, epoch, kind, cid, sigs) returns (uint256 id) {
            ok["openDispute"]++;
            if (!valid) _violation("dispute opened against the model");
            bytes32 h = keccak256(bytes(cid));
            if (acceptedUses[h] != 0) reuseAccepted++;
            acceptedUses[h]++;
            _usedCids.push(cid);
            _checkStatute(epoch);
            GhostDispute storage d = _disputes.push();
            d.id = id;
            d.provider = who;
            d.epoch = epoch;
            d.challengeEnds = uint64(ghostTime + _cfg.challengeWindow);
            d.open = true;
            d.accusers = accusers;
            _ghostOpen[who][epoch] = _disputes.length;
        } catch {
            if (valid) _violation("valid dispute refused");
        }
    }

    function _attest(address who, uint64 epoch, uint8 kind, string memory cid, uint256 verifierSeed)
        internal
        view
        returns (bytes[] memory sigs, address[] memory accusers, bool staked)
    {
        uint256 n = 2 + verifierSeed % 2;
        uint256 first = (verifierSeed >> 8) % VERIFIERS;
        sigs = new bytes[](n);
        accusers = new address[](n);
        staked = true;
        bytes32 digest = slashing.attestationDigest(who, epoch, kind, cid);
        for (uint256 i; i < n; ++i) {
            uint256 k = (first + i) % VERIFIERS;
            sigs[i] = _sign(_verifierKeys[k], digest);
            accusers[i] = verifiers[k];
            IStaking.StakeInfo memory st = staking.stakeOf(accusers[i]);
            if (st.active < staking.verifierMinStake() || st.thawing != 0) staked = false;
        }
    }

    /// @notice Someone rebuts an open dispute with a client-signed service proof; one time in four the
    /// proof is for an order of another provider, which must be refused.
    function rebut(uint256 disputeSeed, uint256 bytesServed, bool foreign) external {
        _sync();
        calls["rebut"]++;
        (bool found, uint256 di) = _pickOpen(disputeSeed);
        if (!found) return;
        GhostDispute storage d = _disputes[di];
        bytesServed = bound(bytesServed, 1, 1e15);
        (bool usable, IBandwidthMarket.Order memory order, bytes memory sig) =
            _proof(d, foreign && disputeSeed % 4 == 0, bytesServed);
        if (!usable) return; // the provider could take no new order
        bool valid = order.provider == d.provider && ghostTime < d.challengeEnds;
        uint256[] memory before = _stakes();
        uint256 supplyBefore = token.totalSupply();
        try slashing.rebut(d.id, order, bytesServed, sig) {
            ok["rebut"]++;
            if (!valid) _violation("rebuttal accepted against the model (foreign order or window over)");
            d.open = false;
            _ghostOpen[d.provider][d.epoch] = 0;
            _checkRebuttal(d, before, supplyBefore);
        } catch {
            if (valid) _violation("valid rebuttal refused");
        }
    }

    /// @dev A client-signed proof for the dispute's epoch, with an order of its provider or (foreign)
    /// of another one; opens a fresh order when the last one expired before the epoch.
    function _proof(GhostDispute storage d, bool foreign, uint256 bytesServed)
        internal
        returns (bool usable, IBandwidthMarket.Order memory order, bytes memory sig)
    {
        uint64 epochStart = d.epoch * _cfg.epochSeconds;
        address orderProvider = d.provider;
        if (foreign) {
            for (uint256 i; i < PROVIDERS; ++i) {
                if (providers[i] != d.provider) orderProvider = providers[i];
            }
        }
        if (_orders[orderProvider].expiry <= epochStart) _openOrder(orderProvider);
        order = _orders[orderProvider];
        if (order.expiry <= epochStart) return (false, order, sig);
        usable = true;
        sig = _sign(_clientKey, slashing.serviceProofDigest(keccak256(abi.encode(order)), d.epoch, bytesServed));
    }

    function _stakes() internal view returns (uint256[] memory before) {
        address[] memory everyone = _everyone();
        before = new uint256[](everyone.length);
        for (uint256 i; i < everyone.length; ++i) {
            before[i] = _stakeOf(everyone[i]);
        }
    }

    function _checkRebuttal(GhostDispute storage d, uint256[] memory before, uint256 supplyBefore) internal {
        address[] memory everyone = _everyone();
        uint256 burned;
        for (uint256 i; i < everyone.length; ++i) {
            uint256 expected = before[i];
            if (_isAccuser(d, everyone[i])) {
                uint256 penalty = before[i] * _cfg.accuserPenaltyBps / BPS;
                expected -= penalty;
                burned += penalty;
            }
            if (_stakeOf(everyone[i]) != expected) rebutViolations++;
        }
        totalBurned += burned;
        if (supplyBefore - token.totalSupply() != burned) rebutViolations++;
    }

    /// @notice Anyone executes an open dispute; half the time the handler first moves to its end.
    function execute(uint256 disputeSeed, bool toEnd) external {
        _sync();
        calls["execute"]++;
        (bool found, uint256 di) = _pickOpen(disputeSeed);
        if (!found) return;
        GhostDispute storage d = _disputes[di];
        if (toEnd && ghostTime < d.challengeEnds) {
            ghostTime = d.challengeEnds;
            vm.warp(ghostTime);
        }
        bool valid = ghostTime >= d.challengeEnds && _capRoom(d.provider) != 0;
        uint256 stakeBefore = _stakeOf(d.provider);
        uint256 supplyBefore = token.totalSupply();
        try slashing.executeDispute(d.id) returns (uint256 slashed) {
            ok["execute"]++;
            if (!valid) _violation("execution accepted against the model (window or cap)");
            d.open = false;
            _ghostOpen[d.provider][d.epoch] = 0;
            if (ghostSlashed[d.provider][d.epoch]) doubleSlashes++;
            ghostSlashed[d.provider][d.epoch] = true;
            _bookSlash(d.provider, slashed, stakeBefore);
            uint256 each = slashed * _cfg.rewardBps / BPS / d.accusers.length;
            totalBurned += slashed - each * d.accusers.length;
            if (supplyBefore - token.totalSupply() != slashed - each * d.accusers.length) {
                _violation("execution burn wrong");
            }
        } catch {
            if (valid) _violation("valid execution refused");
        }
    }

    /// @notice A scorer (usually the domain's own, sometimes another domain's or an outsider) sets a score.
    function setScore(uint256 subjectSeed, uint8 domain, uint16 score, uint256 who) external {
        _sync();
        calls["setScore"]++;
        address subject = subjects[subjectSeed % SUBJECTS];
        domain = uint8(domain % 4);
        score = uint16(bound(score, 0, 1100));
        address caller = scorers[domain];
        if (who % 4 == 0) caller = who % 8 == 0 ? outsider : scorers[(domain + 1) % 4];
        bool authorized = caller == scorers[domain];
        uint256 last = _lastChange[caller][subject][domain];
        bool rateOk = last == 0 || ghostTime >= last + trust.minInterval();
        bool valid = authorized && score <= 1000 && rateOk;
        vm.prank(caller);
        try trust.setScore(subject, domain, score, "bafkreireason") {
            ok["setScore"]++;
            if (!authorized) unauthorizedAccepted++;
            if (!valid) _violation("score change accepted against the model");
            _scores[subject][domain] = GhostScore(score, true);
            _lastChange[caller][subject][domain] = ghostTime;
        } catch {
            if (valid) _violation("valid score change refused");
        }
    }

    /// @notice A verifier tops up, or starts to unbond part of, its stake.
    function verifierStake(uint256 seed, uint256 amount, bool unbond) external {
        _sync();
        calls["verifierStake"]++;
        address v = verifiers[seed % VERIFIERS];
        IStaking.StakeInfo memory s = staking.stakeOf(v);
        uint256 minimum = staking.verifierMinStake();
        vm.startPrank(v);
        if (unbond && s.active > minimum && s.active > s.locked) {
            staking.requestUnstake(bound(amount, 1, s.active - minimum));
        } else {
            uint256 topUp = bound(amount, 1, 2_000e18);
            if (s.active + topUp < minimum) topUp = minimum - s.active;
            staking.stake(IStaking.Role.Verifier, topUp);
        }
        vm.stopPrank();
        ok["verifierStake"]++;
    }

    /// @notice Someone other than the SlashingManager calls onSlash: must be refused.
    function probeOnSlash(uint256 subjectSeed, address caller) external {
        _sync();
        calls["probeOnSlash"]++;
        if (caller == address(slashing)) caller = outsider;
        vm.prank(caller);
        try trust.onSlash(subjects[subjectSeed % SUBJECTS], 1, "bafkreiprobe") {
            unauthorizedAccepted++;
            _violation("onSlash accepted from someone other than the SlashingManager");
        } catch {}
    }

    /// @notice Time moves forward 1 s .. 6 h.
    function warp(uint256 secs) external {
        _sync();
        calls["warp"]++;
        ghostTime += bound(secs, 1, 6 hours);
        vm.warp(ghostTime);
        ok["warp"]++;
    }

    // ------------------------------------------------------------------ views for the invariants

    function periodCount() external view returns (uint256) {
        return _periodProviders.length;
    }

    function periodAt(uint256 i) external view returns (address, uint256) {
        return (_periodProviders[i], _periodIndexes[i]);
    }

    function usedCidCount() external view returns (uint256) {
        return _usedCids.length;
    }

    function usedCidAt(uint256 i) external view returns (string memory) {
        return _usedCids[i];
    }

    function ghostScore(address subject, uint8 domain) external view returns (uint16) {
        GhostScore memory g = _scores[subject][domain];
        return g.set ? g.value : 500;
    }

    function scoredAccounts() external view returns (address[] memory list) {
        list = new address[](PROVIDERS + SUBJECTS);
        for (uint256 i; i < PROVIDERS; ++i) {
            list[i] = providers[i];
        }
        for (uint256 i; i < SUBJECTS; ++i) {
            list[PROVIDERS + i] = subjects[i];
        }
    }

    function disputeCount() external view returns (uint256) {
        return _disputes.length;
    }

    // ------------------------------------------------------------------ internals

    function _sync() internal {
        vm.warp(ghostTime);
    }

    function _current() internal view returns (uint64) {
        return uint64(ghostTime / _cfg.epochSeconds);
    }

    /// @dev Mostly epochs inside the statute; one time in eight just outside it or in the future.
    function _pickEpoch(uint256 back) internal view returns (uint64) {
        uint64 current = _current();
        if (back % 16 == 0) return current + 1;
        if (back % 16 == 1) return current - _cfg.statuteEpochs - 1 - uint64(back % 5);
        if (back % 16 == 2) return current - _cfg.statuteEpochs;
        return current - uint64(bound(back >> 8, 0, 40));
    }

    /// @dev A fresh CID, or one time in six one already used (which must be refused).
    function _pickCid(uint256 seed) internal returns (string memory cid) {
        if (seed % 6 == 0 && _usedCids.length != 0) return _usedCids[(seed >> 8) % _usedCids.length];
        cid = string.concat("bafkreievidence", vm.toString(++_cidNonce));
    }

    function _epochAcceptable(address who, uint64 epoch) internal view returns (bool) {
        uint64 current = _current();
        return epoch <= current && current - epoch <= _cfg.statuteEpochs && !ghostSlashed[who][epoch];
    }

    function _checkStatute(uint64 epoch) internal {
        uint64 current = _current();
        if (epoch > current || current - epoch > _cfg.statuteEpochs) statuteViolations++;
    }

    function _capRoom(address who) internal view returns (uint256) {
        uint256 already = ghostPeriodSlashed[who][ghostTime / _cfg.period];
        return already >= _cfg.capPerPeriod ? 0 : _cfg.capPerPeriod - already;
    }

    function _accepted(address who, uint64 epoch, string memory cid, uint256 slashed, uint256 stakeBefore) internal {
        bytes32 h = keccak256(bytes(cid));
        if (acceptedUses[h] != 0) reuseAccepted++;
        acceptedUses[h]++;
        _usedCids.push(cid);
        _checkStatute(epoch);
        if (ghostSlashed[who][epoch]) doubleSlashes++;
        ghostSlashed[who][epoch] = true;
        _bookSlash(who, slashed, stakeBefore);
    }

    /// @dev Books a provider slash: the period total, the cap, the amount rule and the score halving.
    function _bookSlash(address who, uint256 slashed, uint256 stakeBefore) internal {
        uint256 periodIndex = ghostTime / _cfg.period;
        uint256 room = _capRoom(who);
        uint256 want = stakeBefore * _cfg.slashBps / BPS;
        if (slashed != (want < room ? want : room)) _violation("slashed amount != min(slashBps of stake, cap room)");
        if (ghostPeriodSlashed[who][periodIndex] == 0 && slashed != 0) {
            _periodProviders.push(who);
            _periodIndexes.push(periodIndex);
        }
        ghostPeriodSlashed[who][periodIndex] += slashed;
        if (ghostPeriodSlashed[who][periodIndex] > _cfg.capPerPeriod) capViolations++;
        GhostScore storage g = _scores[who][0];
        uint16 old = g.set ? g.value : 500;
        _scores[who][0] = GhostScore(old / 2, true);
    }

    function _pickOpen(uint256 seed) internal view returns (bool found, uint256 index) {
        uint256 n = _disputes.length;
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (_disputes[i].open) return (true, i);
        }
    }

    function _isAccuser(GhostDispute storage d, address who) internal view returns (bool) {
        for (uint256 i; i < d.accusers.length; ++i) {
            if (d.accusers[i] == who) return true;
        }
        return false;
    }

    /// @dev Opens a small order of the client with `who` (topping its stake up to the minimum first).
    function _openOrder(address who) internal {
        uint256 minimum = staking.providerMinStake();
        IStaking.StakeInfo memory s = staking.stakeOf(who);
        if (s.active < minimum + 1e18) {
            vm.prank(who);
            staking.stake(IStaking.Role.Provider, minimum + 1e18 - s.active);
        }
        uint64 nonce = market.nextNonce();
        uint64 duration = market.maxDuration();
        vm.prank(client);
        try market.openOrder(who, 1e18, duration, type(uint256).max) {
            _orders[who] = IBandwidthMarket.Order({
                nonce: nonce,
                client: client,
                provider: who,
                deposit: 1e18,
                pricePerGiB: staking.stakeOf(who).pricePerGiB,
                expiry: uint64(ghostTime + duration)
            });
        } catch {}
    }

    function _everyone() internal view returns (address[] memory list) {
        list = new address[](PROVIDERS + VERIFIERS);
        for (uint256 i; i < PROVIDERS; ++i) {
            list[i] = providers[i];
        }
        for (uint256 i; i < VERIFIERS; ++i) {
            list[PROVIDERS + i] = verifiers[i];
        }
    }

    function _stakeOf(address who) internal view returns (uint256) {
        IStaking.StakeInfo memory s = staking.stakeOf(who);
        return uint256(s.active) + s.thawing;
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _violation(string memory what) internal {
        if (violations == 0) firstViolation = what;
        violations++;
    }
}

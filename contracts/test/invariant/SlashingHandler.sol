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
/// predicts from its ghost model whether the call must succeed and what it moves, sends it inside
/// try/catch, and records any disagreement as a violation; nothing reverts on its own.
contract SlashingHandler is BaseTest {
    struct GhostDispute {
        uint256 id;
        address provider;
        uint64 epoch;
        uint64 challengeEnds;
        uint256 due;
        uint256 remaining;
        uint256 struck;
        address[] accusers;
        bool open;
    }

    struct GhostScore {
        uint16 value;
        bool set;
    }

    /// @dev An accepted attestation, replayed to check that it never opens a second dispute.
    struct Attestation {
        address provider;
        uint64 epoch;
        uint8 kind;
        string cid;
        uint256 verifierSeed;
    }

    uint256 internal constant PROVIDERS = 3;
    uint256 internal constant VERIFIERS = 4;
    uint256 internal constant SUBJECTS = 3;
    uint256 internal constant BPS = 10_000;
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
    uint256 internal _maxOpen;

    uint256[PROVIDERS] internal _providerKeys;
    uint256[VERIFIERS] internal _verifierKeys;
    uint256 internal _clientKey;
    uint256 internal _outsiderKey;
    address[PROVIDERS] public providers;
    address[VERIFIERS] public verifiers;
    address public client;
    address[SUBJECTS] public subjects;
    address[4] public scorers; // one allowed scorer per domain
    address public outsider; // never allowed anywhere, stakes nothing; the sybil reporter

    uint256 public ghostTime;
    uint256 internal _cidNonce;
    string[] internal _cids;
    Attestation[] internal _attestations;
    mapping(bytes32 digest => uint256) public acceptedDigestUses;
    mapping(address => mapping(uint64 => uint256)) public ghostSlashCount;
    mapping(address => mapping(uint64 => uint256)) internal _ghostOpen; // dispute index + 1
    mapping(address => mapping(uint256 => uint256)) public ghostPeriodSlashed;
    mapping(address => uint256) public ghostHeld;
    address[] internal _periodProviders;
    uint256[] internal _periodIndexes;
    GhostDispute[] internal _disputes;
    mapping(address client => mapping(address provider => IBandwidthMarket.Order)) internal _orders;
    mapping(address => mapping(uint8 => GhostScore)) internal _scores;
    mapping(address => mapping(address => mapping(uint8 => uint256))) internal _lastChange;

    uint256 public violations;
    string public firstViolation;
    uint256 public capViolations;
    uint256 public strikeViolations;
    uint256 public digestReuseAccepted;
    uint256 public doubleSlashes;
    uint256 public statuteViolations;
    uint256 public unauthorizedAccepted;
    uint256 public accuserGainOnExecute;
    uint256 public reporterPaidUnderDispute;
    uint256 public heldStakeWithdrawn;
    uint256 public nothingToSlashAccepted;
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
        _maxOpen = slashing_.MAX_OPEN_PER_VERIFIER();
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
        _outsiderKey = 0x3500;
        outsider = vm.addr(_outsiderKey);
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

    /// @notice Providers and verifiers stake, providers offer, scorers are allowed, the client and
    /// every verifier open an order with each provider.
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
            token.approve(address(market), type(uint256).max);
            staking.stake(IStaking.Role.Verifier, minimum * 2 * (i + 1));
            vm.stopPrank();
        }
        vm.prank(client);
        token.approve(address(market), type(uint256).max);
        for (uint8 d; d < 4; ++d) {
            vm.prank(_authorities[d]);
            trust.setScorer(d, scorers[d], true);
        }
        for (uint256 i; i < PROVIDERS; ++i) {
            _openOrder(client, providers[i]);
            for (uint256 j; j < VERIFIERS; ++j) {
                _openOrder(verifiers[j], providers[i]);
            }
        }
    }

    // ------------------------------------------------------------------ equivocation

    /// @dev One equivocation report and what the model expects of it.
    struct Report {
        address who;
        uint64 epoch;
        string cid;
        address reporter;
        uint256 expected;
        bool valid;
        uint256 disputeIndex; // ghost index + 1 of the dispute it supersedes, 0 if none
        uint256 supplyBefore;
        uint256[] balances; // reporter, then every verifier
    }

    /// @notice Someone reports two heartbeats of one signer and epoch naming different endpoints.
    /// Usually the signer is a provider (one time in three the accused of an open dispute, for its
    /// epoch); one time in eight it is a verifier or the unstaked outsider, which must be refused. The
    /// reporter is anyone, often the accused provider or the outsider.
    function equivocate(uint256 providerSeed, uint256 back, uint256 cidSeed, uint256 reporterSeed) external {
        _sync();
        calls["equivocate"]++;
        Report memory r;
        r.epoch = _pickEpoch(back);
        r.cid = _pickCid(cidSeed);
        r.reporter = _pickReporter(reporterSeed);
        if (providerSeed % 8 == 7) return _equivocateNobody(providerSeed, r.epoch, r.cid, r.reporter);
        uint256 p = providerSeed % PROVIDERS;
        // One time in three, the (provider, epoch) of an open dispute: the accused pre-empting it.
        (bool found, uint256 di) = _pickOpen(providerSeed >> 8);
        if (found && (providerSeed >> 4) % 3 == 0) {
            p = _providerIndex(_disputes[di].provider);
            r.epoch = _disputes[di].epoch;
        }
        r.who = providers[p];
        uint256 room = _capRoom(r.who);
        uint256 want = _stakeOf(r.who) * _cfg.slashBps / BPS;
        r.expected = want < room ? want : room;
        r.valid = _epochAcceptable(r.who, r.epoch) && room != 0 && r.expected != 0;
        r.disputeIndex = _ghostOpen[r.who][r.epoch];
        r.balances = _balances(r.reporter);
        r.supplyBefore = token.totalSupply();
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = _equivocation(r.who, _providerKeys[p], r.epoch);
        vm.prank(r.reporter);
        try slashing.slashEquivocation(a, sigA, b, sigB, r.cid) returns (uint256 slashed) {
            ok["equivocate"]++;
            _bookEquivocation(r, slashed);
        } catch {
            if (r.valid) _violation("valid equivocation refused");
        }
    }

    function _bookEquivocation(Report memory r, uint256 slashed) internal {
        if (!r.valid) _violation("equivocation accepted against the model (statute, double slash, cap or no stake)");
        if (slashed != r.expected) _violation("equivocation slashed != min(slashBps of stake, cap room)");
        _checkStatute(r.epoch);
        _bookSlash(r.who, r.epoch, slashed);
        uint256 reward = slashed * _cfg.rewardBps / BPS;
        if (r.disputeIndex != 0) reward = _supersede(r.disputeIndex - 1, reward, r.reporter, r.balances);
        else if (token.balanceOf(r.reporter) != r.balances[0] + reward) _violation("reporter reward wrong");
        totalBurned += slashed - reward;
        if (r.supplyBefore - token.totalSupply() != slashed - reward) _violation("equivocation burn wrong");
    }

    /// @dev Heartbeats signed by a verifier or the unstaked outsider: refused, nothing consumed.
    function _equivocateNobody(uint256 seed, uint64 epoch, string memory cid, address reporter) internal {
        bool isVerifier = (seed >> 3) % 2 == 0;
        uint256 v = (seed >> 4) % VERIFIERS;
        address who = isVerifier ? verifiers[v] : outsider;
        uint256 key = isVerifier ? _verifierKeys[v] : _outsiderKey;
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = _equivocation(who, key, epoch);
        vm.prank(reporter);
        try slashing.slashEquivocation(a, sigA, b, sigB, cid) {
            nothingToSlashAccepted++;
            _violation("equivocation of a signer with nothing to slash accepted");
        } catch {}
        if (slashing.isEpochSlashed(who, epoch)) _violation("refused equivocation consumed the epoch");
    }

    /// @dev The dispute at `di` was superseded: its holds end and the reward went to its remaining
    /// accusers (equal shares), never to the reporter as such. Returns what was paid in total.
    function _supersede(uint256 di, uint256 reward, address reporter, uint256[] memory balances)
        internal
        returns (uint256 paid)
    {
        ok["supersede"]++;
        GhostDispute storage d = _disputes[di];
        uint256 rewardEach = reward / d.remaining;
        paid = rewardEach * d.remaining;
        bool reporterIsAccuser;
        for (uint256 i; i < d.accusers.length; ++i) {
            if (_isStruck(d, i)) continue;
            if (d.accusers[i] == reporter) reporterIsAccuser = true;
            if (token.balanceOf(d.accusers[i]) != balances[1 + _verifierIndex(d.accusers[i])] + rewardEach) {
                _violation("superseded accuser not paid its equal share");
            }
        }
        if (!reporterIsAccuser && token.balanceOf(reporter) > balances[0]) reporterPaidUnderDispute++;
        _closeGhost(d);
    }

    // ------------------------------------------------------------------ disputes

    /// @notice Two or three verifiers accuse a provider; one time in six an attestation that already
    /// opened a dispute is replayed, which must be refused.
    function openDispute(uint256 providerSeed, uint256 back, uint256 cidSeed, uint256 verifierSeed, uint8 kind)
        external
    {
        _sync();
        calls["openDispute"]++;
        Attestation memory att;
        if (cidSeed % 6 == 0 && _attestations.length != 0) {
            att = _attestations[(cidSeed >> 8) % _attestations.length];
        } else {
            att = Attestation(
                providers[providerSeed % PROVIDERS], _pickEpoch(back), uint8(bound(kind, 0, 3)), _pickCid(cidSeed), verifierSeed
            );
        }
        (bytes[] memory sigs, address[] memory accusers, bytes32 digest) = _attest(att);
        (bool valid, uint256 due) = _predictOpen(att, accusers, digest);
        try slashing.openDispute(att.provider, att.epoch, att.kind, att.cid, sigs) returns (uint256 id) {
            ok["openDispute"]++;
            if (!valid) _violation("dispute opened against the model");
            if (acceptedDigestUses[digest]++ != 0) digestReuseAccepted++;
            _attestations.push(att);
            _checkStatute(att.epoch);
            if (slashing.disputeOf(id).due != due) _violation("dispute due != min(slashBps of unheld, cap, bonds)");
            _recordGhost(id, att, accusers, due);
        } catch {
            if (valid) _violation("valid dispute refused");
        }
    }

    function _recordGhost(uint256 id, Attestation memory att, address[] memory accusers, uint256 due) internal {
        GhostDispute storage d = _disputes.push();
        d.id = id;
        d.provider = att.provider;
        d.epoch = att.epoch;
        d.challengeEnds = uint64(ghostTime + _cfg.challengeWindow);
        d.due = due;
        d.remaining = accusers.length;
        d.accusers = accusers;
        d.open = true;
        _ghostOpen[att.provider][att.epoch] = _disputes.length;
        ghostHeld[att.provider] += due;
        for (uint256 i; i < accusers.length; ++i) {
            ghostHeld[accusers[i]] += due;
        }
    }

    /// @dev Whether the dispute must open, and its due.
    function _predictOpen(Attestation memory att, address[] memory accusers, bytes32 digest)
        internal
        view
        returns (bool valid, uint256 due)
    {
        valid = _epochAcceptable(att.provider, att.epoch) && _ghostOpen[att.provider][att.epoch] == 0
            && acceptedDigestUses[digest] == 0;
        uint256 minimum = staking.verifierMinStake();
        uint256 smallestFree = type(uint256).max;
        for (uint256 i; i < accusers.length; ++i) {
            IStaking.StakeInfo memory st = staking.stakeOf(accusers[i]);
            uint256 held = ghostHeld[accusers[i]];
            if (st.active < minimum || st.thawing != 0 || _openCountOf(accusers[i]) >= _maxOpen || held >= st.active) {
                return (false, 0);
            }
            if (st.active - held < smallestFree) smallestFree = st.active - held;
        }
        uint256 stake = _stakeOf(att.provider);
        uint256 heldP = ghostHeld[att.provider];
        due = stake > heldP ? (stake - heldP) * _cfg.slashBps / BPS : 0;
        uint256 room = _capRoom(att.provider);
        if (due > room) due = room;
        if (due > smallestFree) due = smallestFree;
        if (due == 0) valid = false;
    }

    function _attest(Attestation memory att)
        internal
        view
        returns (bytes[] memory sigs, address[] memory accusers, bytes32 digest)
    {
        uint256 n = 2 + att.verifierSeed % 2;
        uint256 first = (att.verifierSeed >> 8) % VERIFIERS;
        sigs = new bytes[](n);
        accusers = new address[](n);
        digest = slashing.attestationDigest(att.provider, att.epoch, att.kind, att.cid);
        for (uint256 i; i < n; ++i) {
            uint256 k = (first + i) % VERIFIERS;
            sigs[i] = _sign(_verifierKeys[k], digest);
            accusers[i] = verifiers[k];
        }
    }

    /// @notice Someone presents a service proof against an open dispute. Mode 0-3: an accuser not yet
    /// struck vouched for the epoch (must strike it); 4: the plain client's proof (must be refused);
    /// 5: a struck accuser's proof again (must be refused); 6: an accuser's order with another provider
    /// (must be refused).
    function rebut(uint256 disputeSeed, uint256 bytesServed, uint256 mode) external {
        _sync();
        calls["rebut"]++;
        (bool found, uint256 di) = _pickOpen(disputeSeed);
        if (!found) return;
        GhostDispute storage d = _disputes[di];
        bytesServed = bound(bytesServed, 1, 1e15);
        mode = mode % 7;
        if (mode == 5 && d.struck == 0) mode = 0; // nobody struck yet: an accuser's first proof
        (bool usable, uint256 index, IBandwidthMarket.Order memory order, bytes memory sig) =
            _serviceProof(d, mode, disputeSeed >> 8, bytesServed);
        if (!usable) return; // the provider could take no new order
        bool valid = mode < 4 && ghostTime < d.challengeEnds;
        uint256[] memory before = _stakes();
        uint256 supplyBefore = token.totalSupply();
        try slashing.rebut(d.id, order, bytesServed, sig) {
            ok["rebut"]++;
            if (!valid) _violation("rebuttal accepted against the model (not an accuser's proof, or window over)");
            _checkStrike(d, index, before, supplyBefore);
        } catch {
            if (valid) _violation("valid rebuttal refused");
        }
    }

    /// @dev The service proof of `mode` for dispute `d` and the index of the accuser it strikes
    /// (type(uint256).max when it must be refused).
    function _serviceProof(GhostDispute storage d, uint256 mode, uint256 seed, uint256 bytesServed)
        internal
        returns (bool usable, uint256 index, IBandwidthMarket.Order memory order, bytes memory sig)
    {
        address signer;
        uint256 key;
        (signer, key, index) = _rebutter(d, mode, seed);
        address orderProvider = mode == 6 ? providers[(_providerIndex(d.provider) + 1) % PROVIDERS] : d.provider;
        (usable, order) = _orderFor(signer, orderProvider, d.epoch);
        if (usable) {
            sig = _sign(key, slashing.serviceProofDigest(keccak256(abi.encode(order)), d.epoch, bytesServed));
        }
    }

    /// @dev Who signs the proof for `mode`, and (for a striking proof) the accuser's index.
    function _rebutter(GhostDispute storage d, uint256 mode, uint256 seed)
        internal
        view
        returns (address signer, uint256 key, uint256 index)
    {
        if (mode == 4) return (client, _clientKey, type(uint256).max);
        uint256 n = d.accusers.length;
        bool wantStruck = mode == 5 && d.struck != 0;
        for (uint256 k; k < n; ++k) {
            index = (seed + k) % n;
            if (_isStruck(d, index) == wantStruck) break;
        }
        signer = d.accusers[index];
        key = _verifierKeys[_verifierIndex(signer)];
        if (mode >= 4 || _isStruck(d, index)) index = type(uint256).max;
    }

    /// @dev Books a strike of accuser `index`: it loses exactly `due` (a struck colluder loses at least
    /// what the provider would have lost), nobody else loses anything, and the dispute is rebutted once
    /// fewer than quorum accusers remain.
    function _checkStrike(GhostDispute storage d, uint256 index, uint256[] memory before, uint256 supplyBefore)
        internal
    {
        if (index == type(uint256).max) return;
        address struck = d.accusers[index];
        d.struck |= 1 << index;
        d.remaining -= 1;
        ghostHeld[struck] -= d.due;
        address[] memory everyone = _everyone();
        for (uint256 i; i < everyone.length; ++i) {
            uint256 expected = before[i];
            if (everyone[i] == struck) expected -= d.due;
            if (_stakeOf(everyone[i]) != expected) strikeViolations++;
        }
        totalBurned += d.due;
        if (supplyBefore - token.totalSupply() != d.due) strikeViolations++;
        if (d.remaining < _cfg.quorum) _closeGhost(d);
    }

    /// @notice Anyone (often an accuser) executes an open dispute; half the time the handler first
    /// moves to its end.
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
        uint256 room = _capRoom(d.provider);
        bool valid = ghostTime >= d.challengeEnds && room != 0;
        uint256 expected = d.due < room ? d.due : room;
        uint256 stake = _stakeOf(d.provider);
        if (expected > stake) expected = stake;
        address executor = d.accusers[disputeSeed % d.accusers.length];
        uint256[] memory balances = _balances(executor);
        uint256 supplyBefore = token.totalSupply();
        vm.prank(executor);
        try slashing.executeDispute(d.id) returns (uint256 slashed) {
            ok["execute"]++;
            if (!valid) _violation("execution accepted against the model (window or cap)");
            if (slashed != expected) _violation("execution slashed != min(due, cap room, stake)");
            _closeGhost(d);
            _bookSlash(d.provider, d.epoch, slashed);
            totalBurned += slashed;
            if (supplyBefore - token.totalSupply() != slashed) _violation("execution did not burn all it took");
            for (uint256 i; i < VERIFIERS; ++i) {
                if (token.balanceOf(verifiers[i]) > balances[1 + i]) accuserGainOnExecute++;
            }
        } catch {
            if (valid) _violation("valid execution refused");
        }
    }

    // ------------------------------------------------------------------ stakers

    /// @notice A verifier tops up, or starts to unbond part of, its stake.
    function verifierStake(uint256 seed, uint256 amount, bool unbond) external {
        _sync();
        calls["verifierStake"]++;
        address v = verifiers[seed % VERIFIERS];
        IStaking.StakeInfo memory s = staking.stakeOf(v);
        uint256 minimum = staking.verifierMinStake();
        vm.startPrank(v);
        // Unbonding takes a verifier out of new disputes until it withdraws: rarely.
        if (unbond && (seed >> 8) % 16 == 0 && s.active > minimum) {
            staking.requestUnstake(bound(amount, 1, s.active - minimum));
        } else {
            uint256 topUp = bound(amount, 1, 2_000e18);
            if (s.active + topUp < minimum) topUp = minimum - s.active;
            staking.stake(IStaking.Role.Verifier, topUp);
        }
        vm.stopPrank();
        ok["verifierStake"]++;
    }

    /// @notice A provider thaws part, or (one time in sixteen) all, of its unlocked stake, held or not:
    /// holds do not stop an unstake request, only the withdrawal. A provider below the minimum bonds
    /// back up to its bootstrap stake instead.
    function unstake(uint256 seed, uint256 amount) external {
        _sync();
        calls["unstake"]++;
        address a = providers[seed % PROVIDERS]; // verifiers unbond through verifierStake
        IStaking.StakeInfo memory s = staking.stakeOf(a);
        if (s.active < staking.providerMinStake()) {
            vm.prank(a);
            staking.stake(IStaking.Role.Provider, PROVIDER_STAKE - s.active);
            ok["unstake"]++;
            return;
        }
        uint256 unlocked = s.active > s.locked ? s.active - s.locked : 0;
        if (unlocked == 0) return;
        uint256 minimum = s.role == IStaking.Role.Provider ? staking.providerMinStake() : staking.verifierMinStake();
        amount = (seed >> 8) % 16 == 0 ? unlocked : bound(amount, 1, unlocked);
        uint256 rest = s.active - amount;
        if (rest != 0 && rest < minimum) {
            // Keep exactly the minimum, or leave fully; skip when neither is unlocked.
            if (s.active > minimum && s.active - minimum <= unlocked) amount = s.active - minimum;
            else if (unlocked == s.active) amount = unlocked;
            else return;
        }
        vm.prank(a);
        try staking.requestUnstake(amount) {
            ok["unstake"]++;
        } catch {
            _violation("valid unstake request refused (holds must not stop it)");
        }
    }

    /// @notice A provider or verifier withdraws; half the time the handler first waits for the thaw to
    /// end. Only thawed stake that the holds do not need may leave.
    function withdraw(uint256 seed, bool wait) external {
        _sync();
        calls["withdraw"]++;
        address a = _staker(seed, 2);
        IStaking.StakeInfo memory s = staking.stakeOf(a);
        if (wait && s.thawing != 0 && ghostTime < s.thawEnd) {
            ghostTime = s.thawEnd;
            vm.warp(ghostTime);
        }
        uint256 held = ghostHeld[a];
        uint256 keep = held > s.active ? held - s.active : 0;
        bool valid = s.thawing != 0 && ghostTime >= s.thawEnd && keep < s.thawing;
        vm.prank(a);
        try staking.withdraw() returns (uint256 amount) {
            ok["withdraw"]++;
            if (!valid) _violation("withdrawal accepted against the model (thawing, held)");
            if (amount != s.thawing - keep) _violation("withdrawal != thawed stake not needed by holds");
            IStaking.StakeInfo memory after_ = staking.stakeOf(a);
            if (uint256(after_.active) + after_.thawing < held) heldStakeWithdrawn++;
        } catch {
            if (valid) _violation("valid withdrawal refused");
        }
    }

    // ------------------------------------------------------------------ trust registry and time

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

    function attestationCount() external view returns (uint256) {
        return _attestations.length;
    }

    function attestationDigestAt(uint256 i) external view returns (bytes32) {
        Attestation storage a = _attestations[i];
        return slashing.attestationDigest(a.provider, a.epoch, a.kind, a.cid);
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

    /// @notice Providers then verifiers (every account that can stake).
    function stakers() external view returns (address[] memory) {
        return _everyone();
    }

    function disputeCount() external view returns (uint256) {
        return _disputes.length;
    }

    function disputeAt(uint256 i) external view returns (GhostDispute memory) {
        return _disputes[i];
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

    /// @dev A fresh CID, or one time in six one already used (CIDs are only pointers: reuse is fine).
    function _pickCid(uint256 seed) internal returns (string memory cid) {
        if (seed % 6 == 1 && _cids.length != 0) return _cids[(seed >> 8) % _cids.length];
        cid = string.concat("bafkreievidence", vm.toString(++_cidNonce));
        _cids.push(cid);
    }

    /// @dev The outsider (a sybil), the client, a provider (often the accused itself) or a verifier.
    function _pickReporter(uint256 seed) internal view returns (address) {
        uint256 k = seed % 4;
        if (k == 0) return outsider;
        if (k == 1) return client;
        if (k == 2) return providers[(seed >> 8) % PROVIDERS];
        return verifiers[(seed >> 8) % VERIFIERS];
    }

    /// @dev A provider one time in `oneIn`, else a verifier.
    function _staker(uint256 seed, uint256 oneIn) internal view returns (address) {
        if (seed % oneIn != 0) return providers[(seed >> 4) % PROVIDERS];
        return verifiers[(seed >> 4) % VERIFIERS];
    }

    function _epochAcceptable(address who, uint64 epoch) internal view returns (bool) {
        uint64 current = _current();
        return epoch <= current && current - epoch <= _cfg.statuteEpochs && ghostSlashCount[who][epoch] == 0;
    }

    function _checkStatute(uint64 epoch) internal {
        uint64 current = _current();
        if (epoch > current || current - epoch > _cfg.statuteEpochs) statuteViolations++;
    }

    function _capRoom(address who) internal view returns (uint256) {
        uint256 already = ghostPeriodSlashed[who][ghostTime / _cfg.period];
        return already >= _cfg.capPerPeriod ? 0 : _cfg.capPerPeriod - already;
    }

    /// @dev Books a provider slash: the epoch, the period total, the cap and the score halving.
    function _bookSlash(address who, uint64 epoch, uint256 slashed) internal {
        if (ghostSlashCount[who][epoch]++ != 0) doubleSlashes++;
        uint256 periodIndex = ghostTime / _cfg.period;
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

    /// @dev Ends a ghost dispute's holds: the provider's and each accuser not struck.
    function _closeGhost(GhostDispute storage d) internal {
        d.open = false;
        _ghostOpen[d.provider][d.epoch] = 0;
        ghostHeld[d.provider] -= d.due;
        for (uint256 i; i < d.accusers.length; ++i) {
            if (!_isStruck(d, i)) ghostHeld[d.accusers[i]] -= d.due;
        }
    }

    function _openCountOf(address v) internal view returns (uint256 n) {
        for (uint256 i; i < _disputes.length; ++i) {
            GhostDispute storage d = _disputes[i];
            if (!d.open) continue;
            for (uint256 j; j < d.accusers.length; ++j) {
                if (d.accusers[j] == v && !_isStruck(d, j)) n++;
            }
        }
    }

    function _isStruck(GhostDispute storage d, uint256 i) internal view returns (bool) {
        return d.struck & (1 << i) != 0;
    }

    function _pickOpen(uint256 seed) internal view returns (bool found, uint256 index) {
        uint256 n = _disputes.length;
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (_disputes[i].open) return (true, i);
        }
    }

    function _verifierIndex(address v) internal view returns (uint256) {
        for (uint256 i; i < VERIFIERS; ++i) {
            if (verifiers[i] == v) return i;
        }
        revert("not a verifier");
    }

    function _providerIndex(address p) internal view returns (uint256) {
        for (uint256 i; i < PROVIDERS; ++i) {
            if (providers[i] == p) return i;
        }
        revert("not a provider");
    }

    /// @dev `buyer`'s order with `prov` whose expiry is after `epoch` starts, opened if need be.
    function _orderFor(address buyer, address prov, uint64 epoch)
        internal
        returns (bool usable, IBandwidthMarket.Order memory order)
    {
        uint64 epochStart = epoch * _cfg.epochSeconds;
        if (_orders[buyer][prov].expiry <= epochStart) _openOrder(buyer, prov);
        order = _orders[buyer][prov];
        usable = order.expiry > epochStart;
    }

    /// @dev Opens a small order of `buyer` with `prov` (topping the provider's stake up to the minimum
    /// first, so that it can take orders).
    function _openOrder(address buyer, address prov) internal {
        uint256 minimum = staking.providerMinStake();
        IStaking.StakeInfo memory s = staking.stakeOf(prov);
        if (s.active < minimum + 1e18) {
            vm.prank(prov);
            staking.stake(IStaking.Role.Provider, minimum + 1e18 - s.active);
        }
        uint64 nonce = market.nextNonce();
        uint64 duration = market.maxDuration();
        vm.prank(buyer);
        try market.openOrder(prov, 1e18, duration, type(uint256).max) {
            _orders[buyer][prov] = IBandwidthMarket.Order({
                nonce: nonce,
                client: buyer,
                provider: prov,
                deposit: 1e18,
                pricePerGiB: staking.stakeOf(prov).pricePerGiB,
                expiry: uint64(ghostTime + duration)
            });
        } catch {}
    }

    function _equivocation(address who, uint256 key, uint64 epoch)
        internal
        view
        returns (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        )
    {
        uint64 t = epoch * _cfg.epochSeconds;
        a = ISlashingManager.Heartbeat(who, epoch, ENDPOINT_A, 100, t);
        b = ISlashingManager.Heartbeat(who, epoch, ENDPOINT_B, 200, t + 1);
        sigA = _sign(key, slashing.heartbeatDigest(a));
        sigB = _sign(key, slashing.heartbeatDigest(b));
    }

    /// @dev Token balances of `first`, then of every verifier.
    function _balances(address first) internal view returns (uint256[] memory list) {
        list = new uint256[](1 + VERIFIERS);
        list[0] = token.balanceOf(first);
        for (uint256 i; i < VERIFIERS; ++i) {
            list[1 + i] = token.balanceOf(verifiers[i]);
        }
    }

    function _stakes() internal view returns (uint256[] memory before) {
        address[] memory everyone = _everyone();
        before = new uint256[](everyone.length);
        for (uint256 i; i < everyone.length; ++i) {
            before[i] = _stakeOf(everyone[i]);
        }
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

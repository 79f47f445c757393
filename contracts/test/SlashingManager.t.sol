// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SlashingFixture} from "./utils/SlashingFixture.sol";
import {SlashingManager} from "../SlashingManager.sol";
import {Staking} from "../Staking.sol";
import {ISlashingManager} from "../interfaces/ISlashingManager.sol";
import {ITrustRegistry} from "../interfaces/ITrustRegistry.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IBandwidthMarket} from "../interfaces/IBandwidthMarket.sol";

contract SlashingManagerTest is SlashingFixture {
    string internal constant CID = "bafkreievidence";
    uint8 internal constant UNREACHABLE = 0;

    uint64 internal epoch;

    function setUp() public override {
        super.setUp();
        stakeProvider(PROVIDER_STAKE);
        epoch = epochNow();
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_setsEverything() public view {
        ISlashingManager.Config memory c = slashing.config();
        assertEq(c.challengeWindow, CHALLENGE_WINDOW, "challengeWindow");
        assertEq(c.epochSeconds, EPOCH_SECONDS, "epochSeconds");
        assertEq(c.statuteEpochs, STATUTE_EPOCHS, "statuteEpochs");
        assertEq(c.period, PERIOD, "period");
        assertEq(c.capPerPeriod, CAP_PER_PERIOD, "capPerPeriod");
        assertEq(c.slashBps, SLASH_BPS, "slashBps");
        assertEq(c.rewardBps, REWARD_BPS, "rewardBps");
        assertEq(c.quorum, QUORUM, "quorum");
        assertEq(slashing.staking(), address(staking), "staking");
        assertEq(slashing.market(), address(market), "market");
        assertEq(slashing.token(), address(token), "token");
        assertEq(slashing.trustRegistry(), address(trust), "trust");
        assertEq(slashing.nextDisputeId(), 1, "first dispute id");
        assertEq(slashing.currentEpoch(), block.timestamp / EPOCH_SECONDS, "epoch");
        assertEq(staking.slasher(), address(slashing), "staking names it");
    }

    /// @dev A Staking whose slasher is the next contract deployed after it.
    function _stakingNamingNext() internal returns (Staking s) {
        s = new Staking(
            address(token), predictNext(1), address(0xBEEF), address(0xBEE2), THAW_PERIOD, PROVIDER_MIN, VERIFIER_MIN
        );
    }

    function _expectConfigRevert(ISlashingManager.Config memory c, bytes memory err) internal {
        Staking s = _stakingNamingNext();
        vm.expectRevert(err);
        new SlashingManager(address(s), address(0x7777), c);
    }

    function _bad(string memory name, uint256 value) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingManager.SlashingInvalidConfig.selector, name, value);
    }

    function test_RevertWhen_constructor_stakingZero() public {
        vm.expectRevert(_bad("staking", 0));
        new SlashingManager(address(0), address(0x7777), slashingConfig());
    }

    function test_RevertWhen_constructor_trustRegistryZeroOrStaking() public {
        Staking s = _stakingNamingNext();
        vm.expectRevert(_bad("trustRegistry", 0));
        new SlashingManager(address(s), address(0), slashingConfig());
        vm.expectRevert(_bad("trustRegistry", uint160(address(s))));
        new SlashingManager(address(s), address(s), slashingConfig());
    }

    function test_RevertWhen_constructor_stakingNamesAnotherSlasher() public {
        vm.expectRevert(_bad("staking.slasher", uint160(address(slashing))));
        new SlashingManager(address(staking), address(0x7777), slashingConfig());
    }

    function test_RevertWhen_constructor_challengeWindowZero() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.challengeWindow = 0;
        _expectConfigRevert(c, _bad("challengeWindow", 0));
    }

    function test_RevertWhen_constructor_challengeWindowAboveThaw() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.challengeWindow = THAW_PERIOD + 1;
        _expectConfigRevert(
            c,
            abi.encodeWithSelector(
                ISlashingManager.SlashingChallengeWindowTooLong.selector, THAW_PERIOD + 1, THAW_PERIOD
            )
        );
    }

    function test_constructor_acceptsChallengeWindowEqualToThaw() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.challengeWindow = THAW_PERIOD;
        Staking s = _stakingNamingNext();
        SlashingManager m = new SlashingManager(address(s), address(0x7777), c);
        assertEq(m.config().challengeWindow, THAW_PERIOD, "window == thaw accepted");
        assertEq(m.market(), address(0xBEEF), "market read from staking");
    }

    function test_RevertWhen_constructor_zeroDurationsOrCap() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.epochSeconds = 0;
        _expectConfigRevert(c, _bad("epochSeconds", 0));
        c = slashingConfig();
        c.statuteEpochs = 0;
        _expectConfigRevert(c, _bad("statuteEpochs", 0));
        c = slashingConfig();
        c.period = 0;
        _expectConfigRevert(c, _bad("period", 0));
        c = slashingConfig();
        c.capPerPeriod = 0;
        _expectConfigRevert(c, _bad("capPerPeriod", 0));
    }

    function test_RevertWhen_constructor_bpsOutOfRange() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.slashBps = 0;
        _expectConfigRevert(c, _bad("slashBps", 0));
        c.slashBps = 10_001;
        _expectConfigRevert(c, _bad("slashBps", 10_001));
        c = slashingConfig();
        c.rewardBps = 5_001;
        _expectConfigRevert(c, _bad("rewardBps", 5_001));
    }

    function test_RevertWhen_constructor_quorumOutOfRange() public {
        ISlashingManager.Config memory c = slashingConfig();
        c.quorum = 0;
        _expectConfigRevert(c, _bad("quorum", 0));
        c.quorum = 17;
        _expectConfigRevert(c, _bad("quorum", 17));
    }

    // ------------------------------------------------------------ digests

    function test_digests_matchIndependentEip712() public view {
        ISlashingManager.Heartbeat memory h = heartbeat(provider, 7, ENDPOINT_A, 42, 215);
        assertEq(slashing.heartbeatDigest(h), heartbeatDigestOf(h, address(staking)), "heartbeat digest");
        assertEq(
            slashing.attestationDigest(provider, 7, 3, CID), attestationDigestOf(provider, 7, 3, CID), "attestation"
        );
        assertEq(
            slashing.serviceProofDigest(bytes32(uint256(5)), 7, 99),
            serviceProofDigestOf(bytes32(uint256(5)), 7, 99),
            "proof"
        );
    }

    // ------------------------------------------------------------ equivocation

    function test_slashEquivocation_slashesRewardsAndBurns() public {
        uint256 supply = token.totalSupply();
        uint256 reporterBefore = token.balanceOf(stranger);
        uint256 expected = PROVIDER_STAKE * SLASH_BPS / 10_000; // 1,000 FLOW
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.EquivocationSlashed(
            provider, epoch, stranger, ENDPOINT_A, ENDPOINT_B, CID, expected, expected / 2, expected / 2
        );
        uint256 slashed = slashEquivocationAs(stranger, epoch, CID);

        assertEq(slashed, expected, "slashed");
        assertEq(stakeOf(provider), PROVIDER_STAKE - expected, "stake taken");
        assertEq(token.balanceOf(stranger), reporterBefore + expected / 2, "reporter reward");
        assertEq(token.totalSupply(), supply - expected / 2, "rest burned");
        assertEq(token.balanceOf(address(slashing)), 0, "manager keeps nothing");
        assertTrue(slashing.isEpochSlashed(provider, epoch), "epoch marked");
        assertEq(slashing.slashedInPeriod(provider, block.timestamp / PERIOD), expected, "period total");
        assertEq(trust.scoreOf(provider, 0), 250, "network score halved from neutral");
        assertEq(trust.scoreOf(provider, 1), 500, "other domains untouched");
    }

    function test_slashEquivocation_takesFromThawingToo() public {
        vm.prank(provider);
        staking.requestUnstake(4_000e18);
        uint256 slashed = slashEquivocationAs(stranger, epoch, CID);
        assertEq(slashed, 1_000e18, "10% of active + thawing");
        IStaking.StakeInfo memory s = staking.stakeOf(provider);
        assertEq(s.active, 5_000e18, "active first");
        assertEq(s.thawing, 4_000e18, "thawing untouched while active suffices");
    }

    function test_slashEquivocation_timestampsAndLoadsAloneAreNotEquivocation() public {
        uint64 t = epoch * EPOCH_SECONDS;
        ISlashingManager.Heartbeat memory a = heartbeat(provider, epoch, ENDPOINT_A, 100, t + 1);
        ISlashingManager.Heartbeat memory b = heartbeat(provider, epoch, ENDPOINT_A, 9_000, t + 25);
        bytes memory sigA = signHeartbeat(PROVIDER_KEY, a);
        bytes memory sigB = signHeartbeat(PROVIDER_KEY, b);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingNotEquivocation.selector, provider, epoch, ENDPOINT_A)
        );
        slashing.slashEquivocation(a, sigA, b, sigB, CID);
    }

    function test_RevertWhen_slashEquivocation_differentProviderOrEpoch() public {
        (
            ISlashingManager.Heartbeat memory a,
            bytes memory sigA,
            ISlashingManager.Heartbeat memory b,
            bytes memory sigB
        ) = equivocation(epoch);
        b.provider = client;
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingHeartbeatMismatch.selector, provider, epoch, client, epoch)
        );
        slashing.slashEquivocation(a, sigA, b, sigB, CID);
        b.provider = provider;
        b.epoch = epoch - 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingHeartbeatMismatch.selector, provider, epoch, provider, epoch - 1
            )
        );
        slashing.slashEquivocation(a, sigA, b, sigB, CID);
    }

    function test_RevertWhen_slashEquivocation_epochInFuture() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEpochInFuture.selector, epoch + 1, epoch));
        slashEquivocationAs(stranger, epoch + 1, CID);
    }

    function test_slashEquivocation_statuteBoundary() public {
        uint64 oldest = epoch - STATUTE_EPOCHS;
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingEpochExpired.selector, oldest - 1, epoch, STATUTE_EPOCHS)
        );
        slashEquivocationAs(stranger, oldest - 1, CID);
        assertGt(slashEquivocationAs(stranger, oldest, CID), 0, "oldest epoch inside the statute");
    }

    function test_RevertWhen_slashEquivocation_epochAlreadySlashed() public {
        slashEquivocationAs(stranger, epoch, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEpochAlreadySlashed.selector, provider, epoch));
        slashEquivocationAs(client, epoch, "bafkreiotherevidence");
    }

    /// @dev A CID only points at the evidence: what is single-use is the slash of an epoch.
    function test_slashEquivocation_sameCidForAnotherEpoch() public {
        assertEq(slashEquivocationAs(stranger, epoch, CID), 1_000e18, "first epoch");
        assertEq(slashEquivocationAs(stranger, epoch - 1, CID), 900e18, "same CID, another epoch: 10% of 9,000");
        assertTrue(slashing.isEpochSlashed(provider, epoch - 1), "second epoch marked");
    }

    function test_RevertWhen_slashEquivocation_evidenceCidLength() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidEvidenceCid.selector, 0, 128));
        slashEquivocationAs(stranger, epoch, "");
        bytes memory long = new bytes(129);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidEvidenceCid.selector, 129, 128));
        slashEquivocationAs(stranger, epoch, string(long));
    }

    function test_RevertWhen_slashEquivocation_signedByAnother() public {
        (ISlashingManager.Heartbeat memory a,, ISlashingManager.Heartbeat memory b, bytes memory sigB) =
            equivocation(epoch);
        bytes memory forged = signHeartbeat(CLIENT_KEY, a);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, client, provider));
        slashing.slashEquivocation(a, forged, b, sigB, CID);
    }

    function test_RevertWhen_slashEquivocation_signedForAnotherDomain() public {
        (ISlashingManager.Heartbeat memory a, bytes memory sigA, ISlashingManager.Heartbeat memory b,) =
            equivocation(epoch);
        // Signed with the market as verifyingContract instead of Staking.
        bytes memory wrongDomain = signDigest(PROVIDER_KEY, heartbeatDigestOf(b, address(market)));
        address recovered = _recoverOf(heartbeatDigestOf(b, address(staking)), wrongDomain);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, recovered, provider));
        slashing.slashEquivocation(a, sigA, b, wrongDomain, CID);
    }

    function test_RevertWhen_signature_malformed() public {
        (ISlashingManager.Heartbeat memory a, bytes memory sigA, ISlashingManager.Heartbeat memory b,) =
            equivocation(epoch);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidSignatureLength.selector, 64));
        slashing.slashEquivocation(a, sigA, b, new bytes(64), CID);

        (bytes32 r, bytes32 s, uint8 v) = _split(sigA);
        bytes32 highS = bytes32(N - uint256(s));
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidSignatureS.selector, highS));
        slashing.slashEquivocation(a, abi.encodePacked(r, highS, v == 27 ? uint8(28) : uint8(27)), b, sigA, CID);

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidSignatureV.selector, v - 27));
        slashing.slashEquivocation(a, abi.encodePacked(r, s, v - 27), b, sigA, CID);

        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingInvalidSignature.selector, slashing.heartbeatDigest(a))
        );
        slashing.slashEquivocation(a, abi.encodePacked(bytes32(0), bytes32(uint256(1)), uint8(27)), b, sigA, CID);
    }

    /// @dev Heartbeats of `who` (key `key`) naming two endpoints, submitted by the test.
    function _equivocateAs(uint256 key, address who) internal {
        uint64 t = epoch * EPOCH_SECONDS;
        ISlashingManager.Heartbeat memory a = heartbeat(who, epoch, ENDPOINT_A, 1, t);
        ISlashingManager.Heartbeat memory b = heartbeat(who, epoch, ENDPOINT_B, 1, t);
        slashing.slashEquivocation(a, signHeartbeat(key, a), b, signHeartbeat(key, b), CID);
    }

    function test_RevertWhen_slashEquivocation_signerNotStaked() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, stranger, epoch));
        _equivocateAs(STRANGER_KEY, stranger);
        assertFalse(slashing.isEpochSlashed(stranger, epoch), "nothing consumed");
        assertEq(trust.scoreOf(stranger, 0), 500, "not scored");
    }

    function test_RevertWhen_slashEquivocation_signerIsVerifier() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, verifier, epoch));
        _equivocateAs(VERIFIER_KEY, verifier);
        assertEq(stakeOf(verifier), VERIFIER_MIN, "verifier stake untouched");
    }

    function test_RevertWhen_slashEquivocation_providerWithNothingStaked() public {
        vm.prank(provider);
        staking.requestUnstake(PROVIDER_STAKE);
        vm.warp(block.timestamp + THAW_PERIOD);
        vm.prank(provider);
        staking.withdraw();
        epoch = epochNow();
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, provider, epoch));
        slashEquivocationAs(stranger, epoch, CID);
        assertFalse(slashing.isEpochSlashed(provider, epoch), "epoch not consumed");
        assertEq(trust.scoreOf(provider, 0), 500, "not scored");
    }

    function test_slashEquivocation_capPerPeriod() public {
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, 90_000e18); // 100,000 staked: 10% = 10,000 > cap 5,000
        assertEq(slashEquivocationAs(stranger, epoch, CID), CAP_PER_PERIOD, "capped");
        uint256 periodIndex = block.timestamp / PERIOD;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingCapReached.selector, provider, periodIndex, CAP_PER_PERIOD, CAP_PER_PERIOD
            )
        );
        slashEquivocationAs(stranger, epoch - 1, "bafkreisecond");
        // The refused evidence is still unused and lands in the next period (inside the statute).
        vm.warp((periodIndex + 1) * PERIOD);
        assertFalse(slashing.isEpochSlashed(provider, epoch - 1), "refused epoch not consumed");
        assertEq(slashEquivocationAs(stranger, epoch - 1, "bafkreisecond"), CAP_PER_PERIOD, "next period");
    }

    function test_slashEquivocation_partialRoomLeftInCap() public {
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, 30_000e18); // 40,000: 10% = 4,000
        assertEq(slashEquivocationAs(stranger, epoch, CID), 4_000e18, "first");
        assertEq(slashEquivocationAs(stranger, epoch - 1, "bafkreisecond"), 1_000e18, "what the cap leaves");
        assertEq(slashing.slashedInPeriod(provider, block.timestamp / PERIOD), CAP_PER_PERIOD, "at the cap");
    }

    /// @dev The accusers share the equivocation reward; the reporter gets nothing; every hold ends.
    function test_slashEquivocation_supersedesOpenDispute() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, "bafkreidispute");
        uint256 v1 = token.balanceOf(verifier);
        uint256 v2 = token.balanceOf(verifier2);
        uint256 reporter = token.balanceOf(stranger);
        uint256 supply = token.totalSupply();
        address[] memory rewarded = new address[](2);
        (rewarded[0], rewarded[1]) = (verifier, verifier2);
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeSuperseded(id, provider, epoch, rewarded, 250e18);
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.EquivocationSlashed(
            provider, epoch, stranger, ENDPOINT_A, ENDPOINT_B, CID, 1_000e18, 500e18, 500e18
        );
        assertEq(slashEquivocationAs(stranger, epoch, CID), 1_000e18, "slashBps of the whole stake");
        assertEq(token.balanceOf(stranger), reporter, "reporter gets nothing");
        assertEq(token.balanceOf(verifier), v1 + 250e18, "accuser 1 share");
        assertEq(token.balanceOf(verifier2), v2 + 250e18, "accuser 2 share");
        assertEq(token.totalSupply(), supply - 500e18, "rest burned");
        assertEq(staking.heldOf(provider), 0, "provider hold released");
        assertEq(staking.heldOf(verifier), 0, "bond 1 released");
        assertEq(staking.heldOf(verifier2), 0, "bond 2 released");
        assertEq(slashing.openDisputesOf(verifier), 0, "open count 1");
        assertEq(slashing.openDisputesOf(verifier2), 0, "open count 2");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Superseded), "closed");
        assertEq(slashing.openDisputeOf(provider, epoch), 0, "no open dispute");
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingDisputeNotOpen.selector, id, ISlashingManager.DisputeStatus.Superseded
            )
        );
        slashing.executeDispute(id);
    }

    // ------------------------------------------------------------ openDispute

    function test_openDispute_opensWithDistinctStakedVerifiers() public {
        stakeVerifiers();
        address[] memory accusers = new address[](2);
        accusers[0] = verifier;
        accusers[1] = verifier2;
        uint64 ends = uint64(block.timestamp) + CHALLENGE_WINDOW;
        // due = min(10% of 10,000, cap 5,000, each accuser's 500 unheld) = 500.
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeOpened(1, provider, epoch, 2, CID, accusers, stranger, ends, 500e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeHeld(provider, 500e18, 500e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeHeld(verifier, 500e18, 500e18);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeHeld(verifier2, 500e18, 500e18);
        uint256 id = openDisputeOf(epoch, 2, CID);

        assertEq(id, 1, "first id");
        assertEq(slashing.nextDisputeId(), 2, "next id");
        assertEq(slashing.openDisputeOf(provider, epoch), 1, "open for the epoch");
        ISlashingManager.Dispute memory d = slashing.disputeOf(id);
        assertEq(d.provider, provider, "provider");
        assertEq(d.epoch, epoch, "epoch");
        assertEq(d.challengeEnds, ends, "ends");
        assertEq(d.kind, 2, "kind");
        assertEq(uint256(d.status), uint256(ISlashingManager.DisputeStatus.Open), "status");
        assertEq(d.verifiers.length, 2, "verifiers");
        assertEq(d.verifiers[1], verifier2, "second verifier");
        assertEq(d.evidenceCid, CID, "cid");
        assertEq(d.remaining, 2, "remaining");
        assertEq(d.struck, 0, "none struck");
        assertEq(d.due, 500e18, "due");
        assertTrue(slashing.isAttestationUsed(attestationDigestOf(provider, epoch, 2, CID)), "attestation used");
        assertEq(stakeOf(provider), PROVIDER_STAKE, "nothing slashed yet");
        assertEq(staking.heldOf(provider), 500e18, "provider hold");
        assertEq(staking.heldOf(verifier), 500e18, "bond 1");
        assertEq(staking.heldOf(verifier2), 500e18, "bond 2");
        assertEq(staking.heldOf(verifier3), 0, "bystander");
        assertEq(slashing.openDisputesOf(verifier), 1, "open count 1");
        assertEq(slashing.openDisputesOf(verifier2), 1, "open count 2");
    }

    /// @dev The provider's due is slashBps of its unheld stake: a second dispute sees the first's hold.
    function test_openDispute_dueFromUnheldStakeAndPoorestAccuser() public {
        stakeVerifier(verifier, 5_000e18);
        stakeVerifier(verifier2, 5_000e18);
        stakeVerifier(verifier3, 700e18);
        uint256 first = openDisputeOf(epoch, UNREACHABLE, CID);
        assertEq(slashing.disputeOf(first).due, 1_000e18, "10% of 10,000");
        uint256 second = openDisputeOf(epoch - 1, UNREACHABLE, CID); // the same CID, another epoch
        assertEq(slashing.disputeOf(second).due, 900e18, "10% of the 9,000 not held");
        assertEq(staking.heldOf(provider), 1_900e18, "both holds");
        assertEq(staking.heldOf(verifier), 1_900e18, "both bonds");
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (VERIFIER_KEY, VERIFIER3_KEY);
        uint256 third = slashing.openDispute(
            provider, epoch - 2, 0, CID, attestations(keys, provider, epoch - 2, 0, CID)
        );
        assertEq(slashing.disputeOf(third).due, 700e18, "verifier 3 can bond only 700");
        assertEq(staking.heldOf(verifier3), 700e18, "poorest accuser fully bonded");
    }

    function test_RevertWhen_openDispute_providerHasNothingStaked() public {
        stakeVerifiers();
        vm.prank(provider);
        staking.requestUnstake(PROVIDER_STAKE);
        vm.warp(block.timestamp + THAW_PERIOD);
        vm.prank(provider);
        staking.withdraw();
        epoch = epochNow();
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNothingToSlash.selector, provider, epoch));
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_verifierStakeAllHeld() public {
        stakeVerifiers();
        openDisputeOf(epoch, 0, CID); // holds all 500 of verifiers 1 and 2
        bytes[] memory sigs = attestations(keys2(), provider, epoch - 1, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingVerifierStakeHeld.selector, verifier, 500e18)
        );
        slashing.openDispute(provider, epoch - 1, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_verifierInTooManyDisputes() public {
        stakeVerifier(verifier, 50_000e18);
        stakeVerifier(verifier2, 50_000e18);
        for (uint64 i; i < 4; ++i) {
            openDisputeOf(epoch - i, 0, CID);
        }
        assertEq(slashing.openDisputesOf(verifier), 4, "at the limit");
        bytes[] memory sigs = attestations(keys2(), provider, epoch - 4, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingTooManyOpenDisputes.selector, verifier, 4));
        slashing.openDispute(provider, epoch - 4, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_invalidKind() public {
        stakeVerifiers();
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 4, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingInvalidKind.selector, 4, 3));
        slashing.openDispute(provider, epoch, 4, CID, sigs);
    }

    function test_RevertWhen_openDispute_notProvider() public {
        stakeVerifiers();
        bytes[] memory sigs = attestations(keys2(), verifier3, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingNotProvider.selector, verifier3, 2));
        slashing.openDispute(verifier3, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_tooFewOrTooMany() public {
        stakeVerifiers();
        uint256[] memory one = new uint256[](1);
        one[0] = VERIFIER_KEY;
        bytes[] memory sigs = attestations(one, provider, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingTooFewAttestations.selector, 1, 2));
        slashing.openDispute(provider, epoch, 0, CID, sigs);
        bytes[] memory many = new bytes[](17);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingTooManyAttestations.selector, 17, 16));
        slashing.openDispute(provider, epoch, 0, CID, many);
    }

    function test_RevertWhen_openDispute_duplicateVerifier() public {
        stakeVerifiers();
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (VERIFIER_KEY, VERIFIER2_KEY, VERIFIER_KEY);
        bytes[] memory sigs = attestations(keys, provider, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingDuplicateVerifier.selector, verifier));
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_signerNotStakedVerifier() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        // verifier2 never staked.
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingNotStakedVerifier.selector, verifier2, 0, 0, VERIFIER_MIN, 0
            )
        );
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_verifierUnbonding() public {
        stakeVerifier(verifier, VERIFIER_MIN);
        stakeVerifier(verifier2, VERIFIER_MIN + 100e18);
        vm.prank(verifier2);
        staking.requestUnstake(100e18);
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingNotStakedVerifier.selector, verifier2, 2, VERIFIER_MIN, VERIFIER_MIN, 100e18
            )
        );
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_verifierBelowMinimumAfterSlash() public {
        stakeVerifiers();
        vm.prank(address(slashing));
        staking.slash(verifier2, 1);
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingNotStakedVerifier.selector, verifier2, 2, VERIFIER_MIN - 1, VERIFIER_MIN, 0
            )
        );
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_providerSigns() public {
        stakeVerifiers();
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (VERIFIER_KEY, PROVIDER_KEY);
        bytes[] memory sigs = attestations(keys, provider, epoch, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingNotStakedVerifier.selector, provider, 1, PROVIDER_STAKE, VERIFIER_MIN, 0
            )
        );
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_alreadyOpenForEpoch() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, 0, CID);
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 1, "bafkreiother");
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingDisputeAlreadyOpen.selector, provider, epoch, id)
        );
        slashing.openDispute(provider, epoch, 1, "bafkreiother", sigs);
    }

    /// @dev Each set of signatures opens one dispute, ever, even once the first is closed.
    function test_RevertWhen_openDispute_attestationUsed() public {
        stakeVerifier(verifier, 5_000e18);
        stakeVerifier(verifier2, 5_000e18);
        bytes[] memory sigs = attestations(keys2(), provider, epoch, 0, CID);
        uint256 id = slashing.openDispute(provider, epoch, 0, CID, sigs);
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier, VERIFIER_KEY, epoch, GIB);
        slashing.rebut(id, order, GIB, sig);
        assertEq(slashing.openDisputeOf(provider, epoch), 0, "rebutted: the epoch is free");
        bytes32 digest = attestationDigestOf(provider, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingAttestationUsed.selector, digest));
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_expiredOrAlreadySlashed() public {
        stakeVerifiers();
        uint64 old = epoch - STATUTE_EPOCHS - 1;
        bytes[] memory sigs = attestations(keys2(), provider, old, 0, CID);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingEpochExpired.selector, old, epoch, STATUTE_EPOCHS)
        );
        slashing.openDispute(provider, old, 0, CID, sigs);

        slashEquivocationAs(stranger, epoch, "bafkreiequivocation");
        sigs = attestations(keys2(), provider, epoch, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEpochAlreadySlashed.selector, provider, epoch));
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    function test_RevertWhen_openDispute_signatureForAnotherEpoch() public {
        stakeVerifiers();
        bytes[] memory sigs = attestations(keys2(), provider, epoch - 1, 0, CID);
        address recovered = _recoverOf(attestationDigestOf(provider, epoch, 0, CID), sigs[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingNotStakedVerifier.selector, recovered, 0, 0, VERIFIER_MIN, 0
            )
        );
        slashing.openDispute(provider, epoch, 0, CID, sigs);
    }

    // ------------------------------------------------------------ rebut

    /// @dev Three min-stake verifiers; verifiers 1 and 2 accuse; verifier 1 had bought service from
    /// the provider in the epoch and signed a proof of it.
    function _proofFor(uint64 e)
        internal
        returns (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig)
    {
        stakeVerifiers();
        (orderId, order, sig) = vouch(verifier, VERIFIER_KEY, e, 5 * GIB);
        id = openDisputeOf(e, UNREACHABLE, CID);
    }

    function test_rebut_strikesAccuserAndBurnsItsBond() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        uint256 supply = token.totalSupply();
        uint256 providerStake = stakeOf(provider);
        uint256 due = 500e18;
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeReleased(verifier, due, 0);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(verifier, address(slashing), due, 0, 0, 0);
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.AccuserStruck(id, verifier, orderId, 5 * GIB, due, 1);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeReleased(provider, due, 0);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.StakeReleased(verifier2, due, 0);
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeRebutted(id, provider, 1);
        vm.prank(provider);
        slashing.rebut(id, order, 5 * GIB, sig);

        assertEq(stakeOf(verifier), VERIFIER_MIN - due, "struck accuser loses its bond");
        assertEq(stakeOf(verifier2), VERIFIER_MIN, "accuser 2 not struck keeps everything");
        assertEq(stakeOf(verifier3), VERIFIER_MIN, "bystander verifier untouched");
        assertEq(stakeOf(provider), providerStake, "provider untouched");
        assertEq(token.totalSupply(), supply - due, "bond burned");
        assertEq(staking.heldOf(provider), 0, "provider hold released");
        assertEq(staking.heldOf(verifier), 0, "struck bond released then taken");
        assertEq(staking.heldOf(verifier2), 0, "remaining bond released");
        assertEq(slashing.openDisputesOf(verifier), 0, "open count 1");
        assertEq(slashing.openDisputesOf(verifier2), 0, "open count 2");
        ISlashingManager.Dispute memory d = slashing.disputeOf(id);
        assertEq(uint256(d.status), uint256(ISlashingManager.DisputeStatus.Rebutted), "status");
        assertEq(d.remaining, 1, "one accuser left");
        assertEq(d.struck, 1, "bit 0 struck");
        assertEq(slashing.openDisputeOf(provider, epoch), 0, "epoch free again");
        assertFalse(slashing.isEpochSlashed(provider, epoch), "not slashed");
        assertEq(trust.scoreOf(provider, 0), 500, "score untouched");

        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingDisputeNotOpen.selector, id, ISlashingManager.DisputeStatus.Rebutted
            )
        );
        slashing.executeDispute(id);
    }

    /// @dev With three accusers and quorum 2 one strike leaves the dispute open; the struck accuser's
    /// proof cannot strike it twice; the dispute still executes with the two that stood.
    function test_rebut_strikeAboveQuorumKeepsDisputeOpen() public {
        stakeVerifiers();
        (bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig) =
            vouch(verifier3, VERIFIER3_KEY, epoch, GIB);
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (VERIFIER_KEY, VERIFIER2_KEY, VERIFIER3_KEY);
        uint256 id = slashing.openDispute(provider, epoch, 0, CID, attestations(keys, provider, epoch, 0, CID));
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.AccuserStruck(id, verifier3, orderId, GIB, 500e18, 2);
        slashing.rebut(id, order, GIB, sig);
        ISlashingManager.Dispute memory d = slashing.disputeOf(id);
        assertEq(uint256(d.status), uint256(ISlashingManager.DisputeStatus.Open), "still open");
        assertEq(d.remaining, 2, "two left");
        assertEq(d.struck, 4, "bit 2 struck");
        assertEq(staking.heldOf(provider), 500e18, "provider still held");
        assertEq(staking.heldOf(verifier), 500e18, "bond 1 still held");
        assertEq(staking.heldOf(verifier3), 0, "struck bond gone");
        assertEq(slashing.openDisputesOf(verifier3), 0, "struck accuser's count drops");

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingProofNotFromAccuser.selector, id, verifier3));
        slashing.rebut(id, order, GIB, sig);

        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        assertEq(slashing.executeDispute(id), 500e18, "executes for due");
        assertEq(staking.heldOf(verifier), 0, "bond 1 released");
        assertEq(staking.heldOf(verifier2), 0, "bond 2 released");
    }

    function test_RevertWhen_rebut_proofNotFromAccuser() public {
        (uint256 id,,,) = _proofFor(epoch);
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        bytes memory sig = signServiceProof(CLIENT_KEY, orderId, epoch, 5 * GIB);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingProofNotFromAccuser.selector, id, client));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_proofOfBystanderVerifier() public {
        (uint256 id,,,) = _proofFor(epoch);
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier3, VERIFIER3_KEY, epoch, GIB);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingProofNotFromAccuser.selector, id, verifier3));
        slashing.rebut(id, order, GIB, sig);
    }

    function test_rebut_reachesAccuserThatStartedUnbonding() public {
        stakeVerifier(verifier, 1_000e18);
        stakeVerifier(verifier2, VERIFIER_MIN);
        (, IBandwidthMarket.Order memory order, bytes memory sig) = vouch(verifier, VERIFIER_KEY, epoch, 5 * GIB);
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.prank(verifier);
        staking.requestUnstake(1_000e18);
        vm.warp(block.timestamp + CHALLENGE_WINDOW - 1);
        slashing.rebut(id, order, 5 * GIB, sig);
        assertEq(staking.stakeOf(verifier).thawing, 500e18, "the bond (due 500) taken from thawing stake");
    }

    function test_rebut_withClosedOrder() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        bytes memory closeSig = signClose(PROVIDER_KEY, orderId, 0);
        vm.prank(verifier);
        market.close(orderId, order, 0, closeSig);
        slashing.rebut(id, order, 5 * GIB, sig);
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Rebutted), "rebutted");
    }

    function test_rebut_thenNewDisputeForEpochNeedsNewSignatures() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        slashing.rebut(id, order, 5 * GIB, sig);
        stakeVerifier(verifier, VERIFIER_MIN); // back to the minimum after losing its bond
        bytes[] memory used = attestations(keys2(), provider, epoch, UNREACHABLE, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingAttestationUsed.selector, attestationDigestOf(provider, epoch, UNREACHABLE, CID)
            )
        );
        slashing.openDispute(provider, epoch, UNREACHABLE, CID, used);
        assertEq(openDisputeOf(epoch, 3, "bafkreinewevidence"), 2, "second dispute for the epoch");
    }

    function test_RevertWhen_rebut_windowOver() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        uint64 ends = slashing.disputeOf(id).challengeEnds;
        vm.warp(ends);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingChallengeWindowOver.selector, id, ends, ends));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_unknownDispute() public {
        IBandwidthMarket.Order memory order;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingDisputeNotOpen.selector, 9, ISlashingManager.DisputeStatus.None
            )
        );
        slashing.rebut(9, order, 1, "");
    }

    function test_RevertWhen_rebut_orderOfAnotherProvider() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        order.provider = stranger;
        bytes32 otherId = keccak256(abi.encode(order));
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingOrderNotForProvider.selector, otherId, stranger, provider)
        );
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_unknownOrder() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        order.deposit += 1; // terms the market never opened
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingUnknownOrder.selector, keccak256(abi.encode(order)))
        );
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_zeroBytes() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order,) = _proofFor(epoch);
        bytes memory sig = signServiceProof(VERIFIER_KEY, orderId, epoch, 0);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingZeroBytesServed.selector, orderId));
        slashing.rebut(id, order, 0, sig);
    }

    function test_RevertWhen_rebut_epochAfterOrderExpiry() public {
        stakeVerifiers();
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrderAs(verifier, provider, 100e18, 60, PRICE);
        // The first epoch that starts at or after the expiry.
        vm.warp((uint256(order.expiry) + EPOCH_SECONDS - 1) / EPOCH_SECONDS * EPOCH_SECONDS);
        uint64 e = epochNow();
        uint256 id = openDisputeOf(e, UNREACHABLE, CID);
        bytes memory sig = signServiceProof(VERIFIER_KEY, orderId, e, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingEpochAfterExpiry.selector, orderId, e, uint256(e) * EPOCH_SECONDS, order.expiry
            )
        );
        slashing.rebut(id, order, 1, sig);
    }

    function test_RevertWhen_rebut_notSignedByClient() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order,) = _proofFor(epoch);
        bytes memory sig = signServiceProof(PROVIDER_KEY, orderId, epoch, 5 * GIB);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, provider, verifier));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_proofForAnotherEpoch() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order,) = _proofFor(epoch);
        bytes memory sig = signServiceProof(VERIFIER_KEY, orderId, epoch - 1, 5 * GIB);
        address recovered = _recoverOf(serviceProofDigestOf(orderId, epoch, 5 * GIB), sig);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, recovered, verifier));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    // ------------------------------------------------------------ executeDispute

    function test_executeDispute_slashesDueAndBurnsAllOfIt() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        uint256 v1 = token.balanceOf(verifier);
        uint256 v2 = token.balanceOf(verifier2);
        uint256 due = 500e18; // min(10% of 10,000, cap, the accusers' 500)
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeExecuted(id, provider, client, due, 0, 0, due);
        vm.prank(client);
        assertEq(slashing.executeDispute(id), due, "slashed");

        assertEq(stakeOf(provider), PROVIDER_STAKE - due, "provider slashed by due");
        assertEq(token.balanceOf(verifier), v1, "accuser 1 paid nothing");
        assertEq(token.balanceOf(verifier2), v2, "accuser 2 paid nothing");
        assertEq(stakeOf(verifier), VERIFIER_MIN, "bond 1 kept");
        assertEq(stakeOf(verifier2), VERIFIER_MIN, "bond 2 kept");
        assertEq(token.totalSupply(), supply - due, "everything burned");
        assertEq(staking.heldOf(provider), 0, "provider hold released");
        assertEq(staking.heldOf(verifier), 0, "bond 1 released");
        assertEq(staking.heldOf(verifier2), 0, "bond 2 released");
        assertEq(slashing.openDisputesOf(verifier), 0, "open count 1");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Executed), "status");
        assertTrue(slashing.isEpochSlashed(provider, epoch), "epoch marked");
        assertEq(slashing.openDisputeOf(provider, epoch), 0, "no open dispute");
        assertEq(trust.scoreOf(provider, 0), 250, "score halved");

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEpochAlreadySlashed.selector, provider, epoch));
        slashEquivocationAs(stranger, epoch, "bafkreilater");
    }

    function test_executeDispute_threeVerifiersGainNothing() public {
        stakeVerifiers();
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (VERIFIER_KEY, VERIFIER2_KEY, VERIFIER3_KEY);
        uint256 id = slashing.openDispute(provider, epoch, 1, CID, attestations(keys, provider, epoch, 1, CID));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        vm.prank(verifier3);
        uint256 slashed = slashing.executeDispute(id);
        assertEq(slashed, 500e18, "due");
        assertEq(token.balanceOf(verifier3), FUNDS - VERIFIER_MIN, "executing accuser paid nothing");
        assertEq(token.totalSupply(), supply - slashed, "all burned");
    }

    function test_RevertWhen_executeDispute_windowOpen() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        uint64 ends = slashing.disputeOf(id).challengeEnds;
        vm.warp(ends - 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.SlashingChallengeWindowOpen.selector, id, ends, ends - 1)
        );
        slashing.executeDispute(id);
    }

    function test_RevertWhen_executeDispute_twice() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        slashing.executeDispute(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingDisputeNotOpen.selector, id, ISlashingManager.DisputeStatus.Executed
            )
        );
        slashing.executeDispute(id);
    }

    function test_RevertWhen_executeDispute_capReached() public {
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, 90_000e18);
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch - 1, UNREACHABLE, CID);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 periodIndex = block.timestamp / PERIOD;
        slashEquivocationAs(stranger, epoch, "bafkreiequivocation");
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.SlashingCapReached.selector, provider, periodIndex, CAP_PER_PERIOD, CAP_PER_PERIOD
            )
        );
        slashing.executeDispute(id);
    }

    /// @dev The provider unbonds everything during the window: its held `due` stays thawing and
    /// execution takes it.
    function test_executeDispute_takesHeldStakeAfterUnbond() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.prank(provider);
        staking.requestUnstake(PROVIDER_STAKE);
        vm.warp(block.timestamp + THAW_PERIOD);
        vm.prank(provider);
        assertEq(staking.withdraw(), PROVIDER_STAKE - 500e18, "all but the hold");
        assertEq(slashing.executeDispute(id), 500e18, "the held due");
        assertEq(stakeOf(provider), 0, "nothing left");
        assertEq(staking.heldOf(provider), 0, "hold released");
        assertEq(trust.scoreOf(provider, 0), 250, "scored down");
        assertTrue(slashing.isEpochSlashed(provider, epoch), "marked");
    }

    /// @dev An equivocation of another epoch can leave less stake than is held; execution takes
    /// what there is, at most due.
    function test_executeDispute_afterOtherSlashTakesAtMostDue() public {
        stakeVerifier(verifier, 5_000e18);
        stakeVerifier(verifier2, 5_000e18);
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID); // due 1,000
        slashEquivocationAs(stranger, epoch - 1, "bafkreiother"); // 1,000 of 10,000
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        assertEq(slashing.executeDispute(id), 1_000e18, "due, not 10% of what is left");
        assertEq(stakeOf(provider), 8_000e18, "both slashes");
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_slashEquivocation_amounts(uint256 extra, uint256 thawing) public {
        extra = bound(extra, 0, 200_000e18);
        if (extra != 0) {
            vm.prank(provider);
            staking.stake(IStaking.Role.Provider, extra);
        }
        uint256 total = PROVIDER_STAKE + extra;
        thawing = bound(thawing, 0, total - PROVIDER_MIN);
        if (thawing != 0) {
            vm.prank(provider);
            staking.requestUnstake(thawing);
        }
        uint256 supply = token.totalSupply();
        uint256 reporterBefore = token.balanceOf(stranger);
        uint256 want = total * SLASH_BPS / 10_000;
        uint256 expected = want < CAP_PER_PERIOD ? want : CAP_PER_PERIOD;
        uint256 slashed = slashEquivocationAs(stranger, epoch, CID);
        assertEq(slashed, expected, "min(slashBps of stake, cap)");
        assertEq(stakeOf(provider), total - slashed, "taken from active + thawing");
        uint256 reward = slashed * REWARD_BPS / 10_000;
        assertEq(token.balanceOf(stranger), reporterBefore + reward, "reward");
        assertEq(token.totalSupply(), supply - (slashed - reward), "burn");
        assertLe(slashing.slashedInPeriod(provider, block.timestamp / PERIOD), CAP_PER_PERIOD, "cap");
    }

    function testFuzz_slashEquivocation_statute(uint256 back) public {
        back = bound(back, 0, STATUTE_EPOCHS * 2);
        uint64 e = epoch - uint64(back);
        if (back > STATUTE_EPOCHS) {
            vm.expectRevert(
                abi.encodeWithSelector(ISlashingManager.SlashingEpochExpired.selector, e, epoch, STATUTE_EPOCHS)
            );
            slashEquivocationAs(stranger, e, CID);
        } else {
            assertEq(slashEquivocationAs(stranger, e, CID), 1_000e18, "inside the statute");
        }
    }

    function testFuzz_executeDispute_burnsDueAndPaysNoReward(uint256 n, uint256 extra, uint256 vStake) public {
        n = bound(n, 2, 3);
        extra = bound(extra, 0, 30_000e18);
        vStake = bound(vStake, VERIFIER_MIN, 10_000e18);
        if (extra != 0) {
            vm.prank(provider);
            staking.stake(IStaking.Role.Provider, extra);
        }
        stakeVerifier(verifier, vStake);
        stakeVerifier(verifier2, vStake);
        stakeVerifier(verifier3, vStake);
        uint256[] memory keys = new uint256[](n);
        keys[0] = VERIFIER_KEY;
        keys[1] = VERIFIER2_KEY;
        if (n == 3) keys[2] = VERIFIER3_KEY;
        uint256 id = slashing.openDispute(provider, epoch, 0, CID, attestations(keys, provider, epoch, 0, CID));
        uint256 want = (PROVIDER_STAKE + extra) * SLASH_BPS / 10_000;
        if (want > CAP_PER_PERIOD) want = CAP_PER_PERIOD;
        if (want > vStake) want = vStake;
        assertEq(slashing.disputeOf(id).due, want, "due = min(slashBps of stake, cap, bond)");
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        uint256 before = token.balanceOf(verifier);
        vm.prank(verifier);
        uint256 slashed = slashing.executeDispute(id);
        assertEq(slashed, want, "slashed due");
        assertEq(token.balanceOf(verifier), before, "no reward");
        assertEq(supply - token.totalSupply(), slashed, "all burned");
        assertEq(stakeOf(verifier), vStake, "bond back");
    }

    function testFuzz_rebut_strikeBurnsExactlyDue(uint256 extra1, uint256 extra2) public {
        extra1 = bound(extra1, 0, 100_000e18);
        extra2 = bound(extra2, 0, 100_000e18);
        stakeVerifier(verifier, VERIFIER_MIN + extra1);
        stakeVerifier(verifier2, VERIFIER_MIN + extra2);
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrderAs(verifier2, provider, 100e18, 1 days, PRICE);
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 due = slashing.disputeOf(id).due;
        uint256 supply = token.totalSupply();
        slashing.rebut(id, order, 1, signServiceProof(VERIFIER2_KEY, orderId, epoch, 1));
        assertEq(stakeOf(verifier), VERIFIER_MIN + extra1, "verifier 1 not struck");
        assertEq(stakeOf(verifier2), VERIFIER_MIN + extra2 - due, "verifier 2 loses due");
        assertEq(supply - token.totalSupply(), due, "burned");
        assertEq(stakeOf(provider), PROVIDER_STAKE, "provider untouched");
    }

    // ------------------------------------------------------------ helpers

    function _split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly ("memory-safe") {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
    }

    function _recoverOf(bytes32 digest, bytes memory sig) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return ecrecover(digest, v, r, s);
    }
}

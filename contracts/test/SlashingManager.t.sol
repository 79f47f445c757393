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
        assertTrue(slashing.isEvidenceUsed(keccak256(bytes(CID))), "evidence used");
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

    function test_RevertWhen_slashEquivocation_evidenceReused() public {
        slashEquivocationAs(stranger, epoch, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEvidenceUsed.selector, keccak256(bytes(CID))));
        slashEquivocationAs(stranger, epoch - 1, CID);
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

    function test_slashEquivocation_unstakedSignerIsScoredDown() public {
        uint64 t = epoch * EPOCH_SECONDS;
        ISlashingManager.Heartbeat memory a = heartbeat(stranger, epoch, ENDPOINT_A, 1, t);
        ISlashingManager.Heartbeat memory b = heartbeat(stranger, epoch, ENDPOINT_B, 1, t);
        uint256 supply = token.totalSupply();
        uint256 slashed =
            slashing.slashEquivocation(a, signHeartbeat(STRANGER_KEY, a), b, signHeartbeat(STRANGER_KEY, b), CID);
        assertEq(slashed, 0, "nothing to take");
        assertEq(token.totalSupply(), supply, "nothing burned");
        assertTrue(slashing.isEpochSlashed(stranger, epoch), "marked");
        assertEq(trust.scoreOf(stranger, 0), 250, "scored down");
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
        assertFalse(slashing.isEvidenceUsed(keccak256("bafkreisecond")), "refused evidence not consumed");
        assertEq(slashEquivocationAs(stranger, epoch - 1, "bafkreisecond"), CAP_PER_PERIOD, "next period");
    }

    function test_slashEquivocation_partialRoomLeftInCap() public {
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, 30_000e18); // 40,000: 10% = 4,000
        assertEq(slashEquivocationAs(stranger, epoch, CID), 4_000e18, "first");
        assertEq(slashEquivocationAs(stranger, epoch - 1, "bafkreisecond"), 1_000e18, "what the cap leaves");
        assertEq(slashing.slashedInPeriod(provider, block.timestamp / PERIOD), CAP_PER_PERIOD, "at the cap");
    }

    function test_slashEquivocation_supersedesOpenDispute() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, "bafkreidispute");
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeSuperseded(id, provider, epoch);
        slashEquivocationAs(stranger, epoch, CID);
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
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeOpened(1, provider, epoch, 2, CID, accusers, stranger, ends);
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
        assertTrue(slashing.isEvidenceUsed(keccak256(bytes(CID))), "evidence used");
        assertEq(stakeOf(provider), PROVIDER_STAKE, "nothing slashed yet");
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

    function test_RevertWhen_openDispute_evidenceReused() public {
        stakeVerifiers();
        openDisputeOf(epoch, 0, CID);
        bytes[] memory sigs = attestations(keys2(), provider, epoch - 1, 0, CID);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEvidenceUsed.selector, keccak256(bytes(CID))));
        slashing.openDispute(provider, epoch - 1, 0, CID, sigs);
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

    function _proofFor(uint64 e)
        internal
        returns (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig)
    {
        stakeVerifiers();
        (orderId, order) = openOrder(100e18, 1 days);
        id = openDisputeOf(e, UNREACHABLE, CID);
        sig = signServiceProof(CLIENT_KEY, orderId, e, 5 * GIB);
    }

    function test_rebut_burnsAccusersPenaltyOnly() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        uint256 supply = token.totalSupply();
        uint256 providerStake = stakeOf(provider);
        uint256 penalty = VERIFIER_MIN * 10_000 / 10_000;
        address[] memory accusers = new address[](2);
        (accusers[0], accusers[1]) = (verifier, verifier2);
        uint256[] memory penalties = new uint256[](2);
        (penalties[0], penalties[1]) = (penalty, penalty);
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeRebutted(id, provider, orderId, 5 * GIB, accusers, penalties, 2 * penalty);
        vm.prank(provider);
        slashing.rebut(id, order, 5 * GIB, sig);

        assertEq(stakeOf(verifier), VERIFIER_MIN - penalty, "accuser 1 penalized");
        assertEq(stakeOf(verifier2), VERIFIER_MIN - penalty, "accuser 2 penalized");
        assertEq(stakeOf(verifier3), VERIFIER_MIN, "bystander verifier untouched");
        assertEq(stakeOf(provider), providerStake, "provider untouched");
        assertEq(token.totalSupply(), supply - 2 * penalty, "penalties burned");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Rebutted), "status");
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

    function test_rebut_reachesAccuserThatStartedUnbonding() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        vm.prank(verifier);
        staking.requestUnstake(VERIFIER_MIN);
        vm.warp(block.timestamp + CHALLENGE_WINDOW - 1);
        slashing.rebut(id, order, 5 * GIB, sig);
        assertEq(staking.stakeOf(verifier).thawing, VERIFIER_MIN * 9_500 / 10_000, "thawing stake penalized");
    }

    function test_rebut_withClosedOrder() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        bytes memory closeSig = signClose(PROVIDER_KEY, orderId, 0);
        vm.prank(client);
        market.close(orderId, order, 0, closeSig);
        slashing.rebut(id, order, 5 * GIB, sig);
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Rebutted), "rebutted");
    }

    function test_rebut_thenNewDisputeForEpochNeedsNewEvidence() public {
        (uint256 id,, IBandwidthMarket.Order memory order, bytes memory sig) = _proofFor(epoch);
        slashing.rebut(id, order, 5 * GIB, sig);
        stakeVerifier(verifier, 100e18); // top up after the penalty
        stakeVerifier(verifier2, 100e18);
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
        bytes memory sig = signServiceProof(CLIENT_KEY, orderId, epoch, 0);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingZeroBytesServed.selector, orderId));
        slashing.rebut(id, order, 0, sig);
    }

    function test_RevertWhen_rebut_epochAfterOrderExpiry() public {
        stakeVerifiers();
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrder(100e18, 60);
        // The first epoch that starts at or after the expiry.
        vm.warp((uint256(order.expiry) + EPOCH_SECONDS - 1) / EPOCH_SECONDS * EPOCH_SECONDS);
        uint64 e = epochNow();
        uint256 id = openDisputeOf(e, UNREACHABLE, CID);
        bytes memory sig = signServiceProof(CLIENT_KEY, orderId, e, 1);
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
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, provider, client));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    function test_RevertWhen_rebut_proofForAnotherEpoch() public {
        (uint256 id, bytes32 orderId, IBandwidthMarket.Order memory order,) = _proofFor(epoch);
        bytes memory sig = signServiceProof(CLIENT_KEY, orderId, epoch - 1, 5 * GIB);
        address recovered = _recoverOf(serviceProofDigestOf(orderId, epoch, 5 * GIB), sig);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingWrongSigner.selector, recovered, client));
        slashing.rebut(id, order, 5 * GIB, sig);
    }

    // ------------------------------------------------------------ executeDispute

    function test_executeDispute_slashesAndRewardsAccusers() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        uint256 v1 = token.balanceOf(verifier);
        uint256 v2 = token.balanceOf(verifier2);
        uint256 slashed = 1_000e18;
        vm.expectEmit(true, true, true, true, address(slashing));
        emit ISlashingManager.DisputeExecuted(id, provider, client, slashed, 500e18, 250e18, 500e18);
        vm.prank(client);
        assertEq(slashing.executeDispute(id), slashed, "slashed");

        assertEq(stakeOf(provider), PROVIDER_STAKE - slashed, "provider slashed");
        assertEq(token.balanceOf(verifier), v1 + 250e18, "verifier 1 reward");
        assertEq(token.balanceOf(verifier2), v2 + 250e18, "verifier 2 reward");
        assertEq(token.totalSupply(), supply - 500e18, "rest burned");
        assertEq(uint256(slashing.disputeOf(id).status), uint256(ISlashingManager.DisputeStatus.Executed), "status");
        assertTrue(slashing.isEpochSlashed(provider, epoch), "epoch marked");
        assertEq(slashing.openDisputeOf(provider, epoch), 0, "no open dispute");
        assertEq(trust.scoreOf(provider, 0), 250, "score halved");

        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.SlashingEpochAlreadySlashed.selector, provider, epoch));
        slashEquivocationAs(stranger, epoch, "bafkreilater");
    }

    function test_executeDispute_threeVerifiersSplitRoundsDown() public {
        stakeVerifiers();
        vm.prank(provider);
        staking.stake(IStaking.Role.Provider, 1); // 10,000e18 + 1: slash 1,000e18 (rounded down)
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (VERIFIER_KEY, VERIFIER2_KEY, VERIFIER3_KEY);
        uint256 id = slashing.openDispute(provider, epoch, 1, CID, attestations(keys, provider, epoch, 1, CID));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        uint256 slashed = slashing.executeDispute(id);
        uint256 each = slashed * REWARD_BPS / 10_000 / 3;
        assertEq(token.balanceOf(verifier3), FUNDS - VERIFIER_MIN + each, "third share");
        assertEq(token.totalSupply(), supply - (slashed - 3 * each), "remainder burned");
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

    function test_executeDispute_providerWithNothingLeft() public {
        stakeVerifiers();
        uint256 id = openDisputeOf(epoch, UNREACHABLE, CID);
        vm.prank(provider);
        staking.requestUnstake(PROVIDER_STAKE);
        vm.warp(block.timestamp + THAW_PERIOD);
        vm.prank(provider);
        staking.withdraw();
        assertEq(slashing.executeDispute(id), 0, "nothing to take");
        assertEq(trust.scoreOf(provider, 0), 250, "still scored down");
        assertTrue(slashing.isEpochSlashed(provider, epoch), "marked");
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

    function testFuzz_executeDispute_rewardSplit(uint256 n, uint256 extra) public {
        n = bound(n, 2, 3);
        extra = bound(extra, 0, 30_000e18);
        if (extra != 0) {
            vm.prank(provider);
            staking.stake(IStaking.Role.Provider, extra);
        }
        stakeVerifiers();
        uint256[] memory keys = new uint256[](n);
        keys[0] = VERIFIER_KEY;
        keys[1] = VERIFIER2_KEY;
        if (n == 3) keys[2] = VERIFIER3_KEY;
        uint256 id = slashing.openDispute(provider, epoch, 0, CID, attestations(keys, provider, epoch, 0, CID));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 supply = token.totalSupply();
        uint256 before = token.balanceOf(verifier);
        uint256 slashed = slashing.executeDispute(id);
        uint256 each = slashed * REWARD_BPS / 10_000 / n;
        assertEq(token.balanceOf(verifier) - before, each, "equal share");
        assertEq(supply - token.totalSupply(), slashed - each * n, "burned the rest");
        assertLe(each * n, slashed * REWARD_BPS / 10_000, "reward capped by rewardBps");
    }

    function testFuzz_rebut_penaltyProportionalToStake(uint256 extra1, uint256 extra2) public {
        extra1 = bound(extra1, 0, 100_000e18);
        extra2 = bound(extra2, 0, 100_000e18);
        stakeVerifier(verifier, VERIFIER_MIN + extra1);
        stakeVerifier(verifier2, VERIFIER_MIN + extra2);
        (bytes32 orderId, IBandwidthMarket.Order memory order) = openOrder(100e18, 1 days);
        uint256 id = openDisputeOf(epoch, 0, CID);
        uint256 supply = token.totalSupply();
        slashing.rebut(id, order, 1, signServiceProof(CLIENT_KEY, orderId, epoch, 1));
        uint256 p1 = (VERIFIER_MIN + extra1) * 10_000 / 10_000;
        uint256 p2 = (VERIFIER_MIN + extra2) * 10_000 / 10_000;
        assertEq(stakeOf(verifier), VERIFIER_MIN + extra1 - p1, "verifier 1");
        assertEq(stakeOf(verifier2), VERIFIER_MIN + extra2 - p2, "verifier 2");
        assertEq(supply - token.totalSupply(), p1 + p2, "burned");
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

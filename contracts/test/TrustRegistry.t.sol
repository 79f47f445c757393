// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SlashingFixture} from "./utils/SlashingFixture.sol";
import {TrustRegistry} from "../TrustRegistry.sol";
import {ITrustRegistry} from "../interfaces/ITrustRegistry.sol";

/// @notice Stands in for the SlashingManager in constructor tests: it only names a trust registry.
contract TrustNamingStub {
    address public immutable trustRegistry;

    constructor(address trustRegistry_) {
        trustRegistry = trustRegistry_;
    }
}

contract TrustRegistryTest is SlashingFixture {
    string internal constant REASON = "bafkreireason";
    uint8 internal constant NETWORK = 0;
    uint8 internal constant APP = 1;
    uint8 internal constant OS = 2;
    uint8 internal constant PACKAGE = 3;

    address internal scorer = address(0x5C0);
    address internal subject = address(0x5B);

    function setUp() public override {
        super.setUp();
        vm.prank(APP_AUTHORITY);
        trust.setScorer(APP, scorer, true);
    }

    function _score(address who, uint8 domain, uint16 score) internal {
        vm.prank(who);
        trust.setScore(subject, domain, score, REASON);
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_setsEverything() public view {
        address[4] memory a = authorities();
        for (uint8 d; d < 4; ++d) {
            assertEq(trust.authority(d), a[d], "authority");
            assertEq(trust.pendingAuthority(d), address(0), "no pending");
        }
        assertEq(trust.slashingManager(), address(slashing), "slashing manager");
        assertEq(trust.minInterval(), MIN_INTERVAL, "min interval");
        assertEq(trust.MAX_SCORE(), 1000, "max");
        assertEq(trust.NEUTRAL_SCORE(), 500, "neutral");
    }

    function test_constructor_emitsAuthorities() public {
        TrustNamingStub stub = new TrustNamingStub(predictNext(1));
        vm.expectEmit(true, true, true, true);
        emit ITrustRegistry.AuthorityTransferred(2, address(0), OS_AUTHORITY);
        new TrustRegistry(address(stub), authorities(), 1);
    }

    function test_RevertWhen_constructor_badArguments() public {
        TrustNamingStub stub = new TrustNamingStub(predictNext(1));
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidConfig.selector, "slashingManager", 0));
        new TrustRegistry(address(0), authorities(), 1);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidConfig.selector, "minInterval", 0));
        new TrustRegistry(address(stub), authorities(), 0);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidConfig.selector, "minInterval", 30 days + 1));
        new TrustRegistry(address(stub), authorities(), 30 days + 1);
        address[4] memory a = authorities();
        a[3] = address(0);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidConfig.selector, "authority", 3));
        new TrustRegistry(address(stub), a, 1);
    }

    function test_RevertWhen_constructor_slashingManagerNamesAnother() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ITrustRegistry.TrustInvalidConfig.selector, "slashingManager.trustRegistry", uint160(address(trust))
            )
        );
        new TrustRegistry(address(slashing), authorities(), MIN_INTERVAL);
    }

    // ------------------------------------------------------------ setScore

    function test_setScore_setsAndEmits() public {
        assertEq(trust.scoreOf(subject, APP), 500, "neutral before");
        assertFalse(trust.isScored(subject, APP), "unset");
        vm.expectEmit(true, true, true, true, address(trust));
        emit ITrustRegistry.ScoreChanged(subject, APP, scorer, 500, 730, REASON);
        _score(scorer, APP, 730);
        assertEq(trust.scoreOf(subject, APP), 730, "set");
        assertTrue(trust.isScored(subject, APP), "scored");
        assertEq(trust.lastChangedAt(scorer, subject, APP), block.timestamp, "last change");
        assertEq(trust.scoreOf(subject, NETWORK), 500, "other domain untouched");
    }

    function test_setScore_zeroIsAScore() public {
        _score(scorer, APP, 0);
        assertEq(trust.scoreOf(subject, APP), 0, "zero");
        assertTrue(trust.isScored(subject, APP), "set");
    }

    function test_setScore_rateLimitPerScorerSubjectDomain() public {
        _score(scorer, APP, 600);
        uint256 next = block.timestamp + MIN_INTERVAL;
        vm.warp(next - 1);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustRateLimited.selector, scorer, subject, APP, next));
        _score(scorer, APP, 610);
        // Another subject, or another scorer, is not limited.
        vm.prank(scorer);
        trust.setScore(address(0x5B2), APP, 10, REASON);
        vm.prank(APP_AUTHORITY);
        trust.setScorer(APP, address(0x5C1), true);
        _score(address(0x5C1), APP, 620);
        vm.warp(next);
        _score(scorer, APP, 630);
        assertEq(trust.scoreOf(subject, APP), 630, "allowed at the interval");
    }

    function test_RevertWhen_setScore_invalidInput() public {
        vm.startPrank(scorer);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 4));
        trust.setScore(subject, 4, 1, REASON);
        vm.expectRevert(ITrustRegistry.TrustZeroSubject.selector);
        trust.setScore(address(0), APP, 1, REASON);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustScoreTooHigh.selector, 1001, 1000));
        trust.setScore(subject, APP, 1001, REASON);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidReasonCid.selector, 0, 128));
        trust.setScore(subject, APP, 1, "");
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidReasonCid.selector, 129, 128));
        trust.setScore(subject, APP, 1, string(new bytes(129)));
        vm.stopPrank();
    }

    function test_RevertWhen_setScore_notScorerOfTheDomain() public {
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustNotScorer.selector, NETWORK, scorer));
        _score(scorer, NETWORK, 1);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustNotScorer.selector, APP, APP_AUTHORITY));
        _score(APP_AUTHORITY, APP, 1);
    }

    // ------------------------------------------------------------ onSlash

    function test_onSlash_halvesNetworkScore() public {
        vm.startPrank(address(slashing));
        vm.expectEmit(true, true, true, true, address(trust));
        emit ITrustRegistry.ScoreChanged(subject, NETWORK, address(slashing), 500, 250, "bafkreiev1");
        trust.onSlash(subject, 1e18, "bafkreiev1");
        trust.onSlash(subject, 0, "bafkreiev2"); // no rate limit
        vm.stopPrank();
        assertEq(trust.scoreOf(subject, NETWORK), 125, "halved twice");
        assertEq(trust.scoreOf(subject, APP), 500, "only the network domain");
    }

    function test_onSlash_fromSetScoreRoundsDown() public {
        vm.prank(NETWORK_AUTHORITY);
        trust.setScorer(NETWORK, scorer, true);
        _score(scorer, NETWORK, 7);
        vm.prank(address(slashing));
        trust.onSlash(subject, 1, REASON);
        assertEq(trust.scoreOf(subject, NETWORK), 3, "7 / 2");
    }

    function test_RevertWhen_onSlash_notSlashingManager() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ITrustRegistry.TrustNotSlashingManager.selector, NETWORK_AUTHORITY, address(slashing)
            )
        );
        vm.prank(NETWORK_AUTHORITY);
        trust.onSlash(subject, 1, REASON);
    }

    // ------------------------------------------------------------ authorities

    function test_setScorer_allowsAndDenies() public {
        vm.expectEmit(true, true, true, true, address(trust));
        emit ITrustRegistry.ScorerSet(APP, scorer, false);
        vm.prank(APP_AUTHORITY);
        trust.setScorer(APP, scorer, false);
        assertFalse(trust.isScorer(APP, scorer), "denied");
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustNotScorer.selector, APP, scorer));
        _score(scorer, APP, 1);
    }

    function test_RevertWhen_setScorer_notThisDomainsAuthority() public {
        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotAuthority.selector, OS, APP_AUTHORITY, OS_AUTHORITY)
        );
        vm.prank(APP_AUTHORITY);
        trust.setScorer(OS, scorer, true);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustZeroScorer.selector));
        vm.prank(OS_AUTHORITY);
        trust.setScorer(OS, address(0), true);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 9));
        vm.prank(OS_AUTHORITY);
        trust.setScorer(9, scorer, true);
    }

    function test_transferAuthority_twoSteps() public {
        address next = address(0xAA);
        vm.expectEmit(true, true, true, true, address(trust));
        emit ITrustRegistry.AuthorityTransferStarted(PACKAGE, PACKAGE_AUTHORITY, next);
        vm.prank(PACKAGE_AUTHORITY);
        trust.transferAuthority(PACKAGE, next);
        assertEq(trust.pendingAuthority(PACKAGE), next, "pending");
        assertEq(trust.authority(PACKAGE), PACKAGE_AUTHORITY, "not yet");

        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotPendingAuthority.selector, PACKAGE, stranger, next)
        );
        vm.prank(stranger);
        trust.acceptAuthority(PACKAGE);

        vm.expectEmit(true, true, true, true, address(trust));
        emit ITrustRegistry.AuthorityTransferred(PACKAGE, PACKAGE_AUTHORITY, next);
        vm.prank(next);
        trust.acceptAuthority(PACKAGE);
        assertEq(trust.authority(PACKAGE), next, "taken over");
        assertEq(trust.pendingAuthority(PACKAGE), address(0), "offer consumed");

        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotAuthority.selector, PACKAGE, PACKAGE_AUTHORITY, next)
        );
        vm.prank(PACKAGE_AUTHORITY);
        trust.setScorer(PACKAGE, scorer, true);
        vm.prank(next);
        trust.setScorer(PACKAGE, scorer, true);
        assertTrue(trust.isScorer(PACKAGE, scorer), "new authority acts");
    }

    function test_transferAuthority_cancelWithZero() public {
        vm.startPrank(OS_AUTHORITY);
        trust.transferAuthority(OS, address(0xAA));
        trust.transferAuthority(OS, address(0));
        vm.stopPrank();
        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotPendingAuthority.selector, OS, address(0xAA), address(0))
        );
        vm.prank(address(0xAA));
        trust.acceptAuthority(OS);
    }

    function test_RevertWhen_acceptAuthority_nothingPendingOrBadDomain() public {
        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotPendingAuthority.selector, APP, address(0), address(0))
        );
        vm.prank(address(0));
        trust.acceptAuthority(APP);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 4));
        trust.acceptAuthority(4);
    }

    function test_RevertWhen_transferAuthority_notAuthority() public {
        vm.expectRevert(
            abi.encodeWithSelector(ITrustRegistry.TrustNotAuthority.selector, NETWORK, stranger, NETWORK_AUTHORITY)
        );
        vm.prank(stranger);
        trust.transferAuthority(NETWORK, stranger);
    }

    function test_RevertWhen_views_invalidDomain() public {
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 4));
        trust.scoreOf(subject, 4);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 255));
        trust.isScored(subject, 255);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 4));
        trust.authority(4);
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustInvalidDomain.selector, 4));
        trust.pendingAuthority(4);
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_setScore_range(uint16 score, uint8 domain) public {
        domain = uint8(bound(domain, 0, 3));
        address a = authorities()[domain];
        vm.prank(a);
        trust.setScorer(domain, scorer, true);
        if (score > 1000) {
            vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustScoreTooHigh.selector, score, 1000));
            _score(scorer, domain, score);
        } else {
            _score(scorer, domain, score);
            assertEq(trust.scoreOf(subject, domain), score, "stored");
        }
    }

    function testFuzz_onSlash_halves(uint16 score, uint8 slashes) public {
        score = uint16(bound(score, 0, 1000));
        slashes = uint8(bound(slashes, 1, 12));
        vm.prank(NETWORK_AUTHORITY);
        trust.setScorer(NETWORK, scorer, true);
        _score(scorer, NETWORK, score);
        uint256 expected = score;
        for (uint256 i; i < slashes; ++i) {
            vm.prank(address(slashing));
            trust.onSlash(subject, i, REASON);
            expected /= 2;
        }
        assertEq(trust.scoreOf(subject, NETWORK), expected, "halved each time");
    }

    function testFuzz_setScore_onlyAllowedScorers(address caller, uint8 domain) public {
        domain = uint8(bound(domain, 0, 3));
        vm.assume(!trust.isScorer(domain, caller));
        vm.expectRevert(abi.encodeWithSelector(ITrustRegistry.TrustNotScorer.selector, domain, caller));
        vm.prank(caller);
        trust.setScore(subject, domain, 1, REASON);
    }
}

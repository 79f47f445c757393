"""The full node's HTTP API over a database filled through the indexer's own Ledger (no chain).

Chain events are built from the contract ABIs and applied with `Ledger.apply`, so stakers, orders,
receipts, the journal and balances are what the indexer would write; metadata and heartbeats are
added the way the API server adds them. Requests go through the ASGI app in-process.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaindata import CHAIN_ID, CONTRACTS, Events, block_hash
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, endpoint_hash, sign_heartbeat
from flownet.core.metadata import ProviderMetadata
from flownet.errors import ConfigError
from indexer import api as api_module
from indexer.api import create_app
from indexer.apistore import ApiStore
from indexer.asgiclient import InProcessClient
from indexer.projections import ZERO_ADDRESS
from indexer.provider_meta import refresh
from indexer.store import Block, Ledger

UNIT = 10**18
NOW = 1_700_000_015
REGIONS = ["eu-west"] * 4 + ["us-east"] * 4 + ["ap-south"] * 3 + [None]
LIVE = {0: NOW - 10, 1: NOW - 40, 4: NOW - 5, 8: NOW - 80, 5: NOW - 200}  # provider index -> last heartbeat


def key(n: int) -> LocalAccount:
    return Account.from_key(keccak(text=f"api test key {n}"))


PROVIDERS = [key(i) for i in range(12)]
VERIFIER, CLIENT = key(100), key(101)


def price_of(i: int) -> int:
    """0.5 FLOW steps; providers 2 and 3 share a price; provider 11 makes no offer."""
    return 0 if i == 11 else (min(i, 2) + max(i - 3, 0) + 1) * UNIT // 2


def stake_of(i: int) -> int:
    return (1000 + 100 * ((i * 7) % 12)) * UNIT


ORDER_ID = keccak(text="order 1")
CLOSED_ID = keccak(text="order 2")


def metadata_doc(i: int, signer: LocalAccount | None = None) -> bytes:
    who = PROVIDERS[i]
    meta = ProviderMetadata(who.address, f"p{i}.example.net:7443", REGIONS[i] or "global", 100 + i, price_of(i), NOW)
    signature = (signer or who).sign_message(encode_defunct(primitive=meta.signing_payload())).signature
    return meta.document(bytes(signature))


def cid_of(i: int) -> str:
    return f"bafytestcid{i}"


DOMAIN = HeartbeatDomain(CHAIN_ID, CONTRACTS["Staking"])


def fill(db: Path) -> None:
    ev = Events()
    for p in PROVIDERS:
        ev.add(1, "FlowToken", "Transfer", **{"from": ZERO_ADDRESS, "to": p.address, "value": 20_000 * UNIT})
    ev.add(1, "FlowToken", "Transfer", **{"from": ZERO_ADDRESS, "to": CLIENT.address, "value": 5_000 * UNIT})
    for i, p in enumerate(PROVIDERS):
        ev.add(2, "Staking", "Staked", account=p.address, role=1, amount=stake_of(i), active=stake_of(i))
        if price_of(i):
            ev.add(2, "Staking", "OfferPublished", provider=p.address, pricePerGiB=price_of(i), metadataCid=cid_of(i))
    ev.add(2, "Staking", "Staked", account=VERIFIER.address, role=2, amount=500 * UNIT, active=500 * UNIT)
    p0 = PROVIDERS[0].address
    common = {"client": CLIENT.address, "provider": p0, "pricePerGiB": price_of(0), "expiry": NOW + 86_400}
    ev.add(
        3,
        "BandwidthMarket",
        "OrderOpened",
        orderId=ORDER_ID,
        nonce=1,
        deposit=100 * UNIT,
        lockedStake=50 * UNIT,
        **common,
    )
    ev.add(
        3,
        "BandwidthMarket",
        "OrderOpened",
        orderId=CLOSED_ID,
        nonce=2,
        deposit=10 * UNIT,
        lockedStake=5 * UNIT,
        **common,
    )
    ev.add(
        4,
        "BandwidthMarket",
        "Redeemed",
        orderId=ORDER_ID,
        provider=p0,
        cumulativeBytes=2**30,
        cumulativeAmount=UNIT // 2,
        payout=UNIT // 2,
    )
    ev.add(
        5,
        "BandwidthMarket",
        "OrderClosed",
        orderId=CLOSED_ID,
        client=CLIENT.address,
        provider=p0,
        payout=3 * UNIT,
        refund=7 * UNIT,
        totalPaid=3 * UNIT,
        cooperative=True,
    )
    ledger = Ledger(db, CONTRACTS, CHAIN_ID)
    blocks = [Block(n, block_hash(n), block_hash(n - 1)) for n in range(1, 6)]
    ledger.apply(blocks, ev.logs, finalized=2, cursor=blocks[-1])
    ledger.conn.execute("INSERT OR REPLACE INTO meta VALUES ('head', '12')")
    ledger.close()

    store = ApiStore(db)
    docs = {cid_of(i): metadata_doc(i) for i in range(10)}
    docs[cid_of(10)] = metadata_doc(10, signer=key(999))  # signed by someone else: refused
    assert refresh(store, docs.__getitem__, NOW).fetched == 10
    for i, ts in LIVE.items():
        hb = Heartbeat.create(PROVIDERS[i].address, f"p{i}.example.net:7443", 100 * i, ts)
        assert store.record_heartbeat(sign_heartbeat(PROVIDERS[i], DOMAIN, hb), ts + 0.25)
    store.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "node.db"
    fill(path)
    return path


@pytest.fixture
def client(db: Path) -> Iterator[InProcessClient]:
    app = create_app(db, CHAIN_ID, CONTRACTS["Staking"], clock=lambda: NOW)
    with InProcessClient(app) as c:
        yield c
    app.state.reader.close()
    app.state.store.close()


def providers(client: InProcessClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/providers{query}")
    assert response.status_code == 200, response.text
    page = response.json()
    api_module.ProviderPage.model_validate(page)
    return page


def addresses(page: dict[str, Any]) -> list[str]:
    return [p["address"] for p in page["items"]]


def bad_request(client: InProcessClient, url: str, *needles: str) -> str:
    response = client.get(url)
    assert response.status_code == 400, (url, response.text)
    body = response.json()
    assert body["error"] == "bad_request" and set(body) == {"error", "message"}
    for needle in needles:
        assert needle in body["message"], (url, body["message"])
    return str(body["message"])


# ----------------------------------------------------------------------------------------- providers


def test_providers_default_listing(client: InProcessClient) -> None:
    page = providers(client)
    assert page["total"] == 12 and page["limit"] == 50 and page["offset"] == 0
    items = {p["address"]: p for p in page["items"]}
    assert VERIFIER.address not in items
    p0 = items[PROVIDERS[0].address]
    assert p0["price"] == str(UNIT // 2) and p0["price_flow"] == "0.5 FLOW"
    assert p0["stake_active"] == str(stake_of(0)) and p0["stake_active_flow"] == "1,000 FLOW"
    assert p0["stake_locked"] == "0" and p0["slashed"] == "0" and p0["trust"] == {"score": 500}
    assert p0["metadata"]["region"] == "eu-west" and p0["metadata"]["endpoint"] == "p0.example.net:7443"
    assert p0["metadata"]["current"] is True and p0["metadata"]["capacity_mbps"] == 100
    assert p0["live"] is True
    assert p0["last_heartbeat"]["timestamp"] == NOW - 10 and p0["last_heartbeat"]["endpoint_matches_metadata"] is True
    p10 = items[PROVIDERS[10].address]
    assert p10["metadata"]["error"].startswith("document names") and p10["metadata"]["region"] is None
    assert items[PROVIDERS[11].address]["metadata"] is None and items[PROVIDERS[11].address]["price"] == "0"
    assert items[PROVIDERS[5].address]["live"] is False  # last heartbeat 200 s ago
    # price ascending, ties by address: the no-offer provider (price 0) first
    prices = [int(p["price"]) for p in page["items"]]
    assert prices == sorted(prices) and prices[0] == 0


def test_provider_filters(client: InProcessClient) -> None:
    eu = providers(client, "?region=eu-west")
    assert eu["total"] == 4 and set(addresses(eu)) == {p.address for p in PROVIDERS[:4]}
    assert providers(client, "?region=mars")["total"] == 0
    budget = price_of(3)
    cheap = providers(client, f"?max_price={budget}")
    expected = {p.address for i, p in enumerate(PROVIDERS) if 0 < price_of(i) <= budget}
    assert set(addresses(cheap)) == expected and cheap["total"] == 4
    assert providers(client, "?max_price=0")["total"] == 0
    assert providers(client, f"?max_price={10**40}")["total"] == 11  # wider than any amount: all offers
    live = providers(client, "?live=true")
    assert set(addresses(live)) == {PROVIDERS[i].address for i in (0, 1, 4, 8)}  # 5 was seen 200 s ago
    assert providers(client, "?live=false")["total"] == 8
    assert providers(client, "?min_trust=500")["total"] == 12  # nobody scored: every provider is neutral 500
    assert providers(client, "?min_trust=-1")["total"] == 12
    assert providers(client, "?min_trust=500.5")["total"] == 0
    both = providers(client, f"?region=eu-west&live=true&max_price={price_of(1)}")
    assert addresses(both) == [PROVIDERS[0].address, PROVIDERS[1].address]


def test_provider_sorting(client: InProcessClient) -> None:
    by_stake = providers(client, "?sort=stake&order=desc")["items"]
    stakes = [int(p["stake_active"]) for p in by_stake]
    assert stakes == sorted(stakes, reverse=True)
    # equal stakes are ordered by address in the same direction
    for a, b in itertools.pairwise(by_stake):
        if a["stake_active"] == b["stake_active"]:
            assert a["address"] > b["address"]
    by_price = providers(client, "?sort=price&order=desc")["items"]
    assert [int(p["price"]) for p in by_price] == sorted((price_of(i) for i in range(12)), reverse=True)
    tie = [p["address"] for p in by_price if int(p["price"]) == price_of(2)]
    assert tie == sorted([PROVIDERS[2].address, PROVIDERS[3].address], reverse=True)
    seen = addresses(providers(client, "?sort=last_seen&order=desc"))
    assert seen[:5] == [PROVIDERS[i].address for i in (4, 0, 1, 8, 5)]
    seen_asc = addresses(providers(client, "?sort=last_seen&order=asc"))
    assert seen_asc[:5] == [PROVIDERS[i].address for i in (5, 8, 1, 0, 4)]  # never seen: last either way
    assert set(seen[5:]) == set(seen_asc[5:]) == {PROVIDERS[i].address for i in (2, 3, 6, 7, 9, 10, 11)}


def test_provider_pagination(client: InProcessClient) -> None:
    everything = addresses(providers(client, "?sort=stake"))
    pages = [providers(client, f"?sort=stake&limit=5&offset={offset}") for offset in (0, 5, 10)]
    assert [len(p["items"]) for p in pages] == [5, 5, 2]
    assert all(p["total"] == 12 and p["limit"] == 5 for p in pages)
    assert [a for p in pages for a in addresses(p)] == everything
    beyond = providers(client, "?offset=100")
    assert beyond["items"] == [] and beyond["total"] == 12


def test_bad_provider_queries_name_the_value(client: InProcessClient) -> None:
    bad_request(client, "/providers?limit=abc", "limit='abc'")
    bad_request(client, "/providers?limit=0", "limit='0'", "greater than or equal to 1")
    bad_request(client, "/providers?limit=501", "limit='501'", "less than or equal to 500")
    bad_request(client, "/providers?offset=-1", "offset='-1'")
    bad_request(client, "/providers?sort=cheapest", "sort='cheapest'", "'price', 'stake' or 'last_seen'")
    bad_request(client, "/providers?order=up", "order='up'")
    bad_request(client, "/providers?live=maybe", "live='maybe'")
    bad_request(client, "/providers?min_trust=high", "min_trust='high'")
    bad_request(client, "/providers?min_trust=nan", "min_trust='nan'")
    for value in ("1.5", "-1", "2FLOW", "0x10", "1" * 79):
        bad_request(client, f"/providers?max_price={value}", f"max_price='{value}'", "token units")
    bad_request(client, "/providers?regoin=eu-west", "unknown query parameter 'regoin'", "region")
    bad_request(client, "/status?verbose=1", "unknown query parameter 'verbose'", "takes none")


def test_provider_detail(client: InProcessClient) -> None:
    p0 = PROVIDERS[0].address
    response = client.get(f"/providers/{p0.lower()}")
    assert response.status_code == 200
    body = response.json()
    api_module.ProviderDetail.model_validate(body)
    assert body["address"] == p0
    assert [h["timestamp"] for h in body["recent_heartbeats"]] == [NOW - 10]
    assert body["recent_heartbeats"][0]["endpoint_hash"] == "0x" + endpoint_hash("p0.example.net:7443").hex()
    assert body["equivocating_epochs"] == []

    verifier = client.get(f"/providers/{VERIFIER.address}")
    assert verifier.status_code == 404 and "a verifier, not a provider" in verifier.json()["message"]
    stranger = key(555).address
    missing = client.get(f"/providers/{stranger}")
    assert missing.status_code == 404 and missing.json() == {
        "error": "not_found",
        "message": f"{stranger} is not a provider known to this node",
    }
    bad = client.get("/providers/0xnothex")
    assert bad.status_code == 400 and "invalid provider address '0xnothex'" in bad.json()["message"]


# ----------------------------------------------------------------------------------------- orders, ledger, events


def test_order(client: InProcessClient) -> None:
    response = client.get("/orders/0x" + ORDER_ID.hex().upper())
    assert response.status_code == 200, response.text
    order = response.json()
    api_module.OrderOut.model_validate(order)
    assert order["order_id"] == "0x" + ORDER_ID.hex()
    assert order["status"] == "open" and order["cooperative"] is None
    assert order["deposit"] == str(100 * UNIT) and order["deposit_flow"] == "100 FLOW"
    assert order["paid"] == str(UNIT // 2) and order["paid_bytes"] == str(2**30)
    assert order["escrow"] == str(100 * UNIT - UNIT // 2)
    assert order["receipts"] == [
        {
            "block_number": 4,
            "log_index": 0,
            "cumulative_bytes": str(2**30),
            "cumulative_amount": str(UNIT // 2),
            "payout": str(UNIT // 2),
        }
    ]
    closed = client.get("/orders/0x" + CLOSED_ID.hex()).json()
    assert closed["status"] == "closed" and closed["cooperative"] is True and closed["escrow"] == "0"
    assert closed["refunded"] == str(7 * UNIT) and closed["closed_block"] == 5
    missing = client.get("/orders/0x" + "00" * 32)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad_request(client, "/orders/42", "invalid order_id '42'")


def test_ledger_accounts(client: InProcessClient) -> None:
    wallets = client.get("/ledger/accounts?prefix=wallet:").json()
    api_module.AccountPage.model_validate(wallets)
    assert wallets["total"] == 14  # 12 providers, the client and the verifier (staked unminted tokens)
    assert all(a["account"].startswith("wallet:") for a in wallets["items"])
    # every account over all pages sums to zero (double entry)
    total, offset, balance_sum = None, 0, 0
    while total is None or offset < total:
        page = client.get(f"/ledger/accounts?limit=7&offset={offset}").json()
        total = page["total"]
        balance_sum += sum(int(a["balance"]) for a in page["items"])
        offset += 7
    assert balance_sum == 0
    external = client.get("/ledger/accounts/external").json()
    assert int(external["balance"]) == -(12 * 20_000 + 5_000) * UNIT and external["balance_flow"].startswith("-")
    assert client.get("/ledger/accounts?prefix=nothing:").json() == {"total": 0, "limit": 50, "offset": 0, "items": []}


def test_ledger_account_detail(client: InProcessClient) -> None:
    p0 = PROVIDERS[0].address
    response = client.get(f"/ledger/accounts/wallet:{p0.lower()}")  # address case is normalized
    assert response.status_code == 200, response.text
    body = response.json()
    api_module.AccountDetail.model_validate(body)
    assert body["account"] == f"wallet:{p0}"
    # minted 20,000; staked; paid 0.5 by a receipt and 3 by the cooperative close
    assert int(body["balance"]) == 20_000 * UNIT - stake_of(0) + UNIT // 2 + 3 * UNIT
    assert body["total"] == 4 and sum(int(e["delta"]) for e in body["entries"]) == int(body["balance"])
    assert [e["block_number"] for e in body["entries"]] == [5, 4, 2, 1]  # newest first
    assert body["entries"][-1]["kind"] == "transfer" and body["entries"][-1]["debit"] == "external"
    page = client.get(f"/ledger/accounts/wallet:{p0}?limit=2&offset=2").json()
    assert [e["block_number"] for e in page["entries"]] == [2, 1] and page["total"] == 4
    escrow = client.get("/ledger/accounts/escrow:0x" + ORDER_ID.hex().upper()).json()
    assert escrow["account"] == "escrow:0x" + ORDER_ID.hex() and int(escrow["balance"]) == 100 * UNIT - UNIT // 2
    missing = client.get("/ledger/accounts/wallet:" + key(555).address)
    assert missing.status_code == 404 and "wallet:<address>" in missing.json()["message"]
    bad_request(client, f"/ledger/accounts/wallet:{p0}?limit=-3", "limit='-3'")


def test_events(client: InProcessClient) -> None:
    body = client.get("/events").json()
    api_module.EventPage.model_validate(body)
    items = body["items"]
    assert body["next"] is None
    assert [(e["block_number"], e["log_index"]) for e in items] == sorted(
        (e["block_number"], e["log_index"]) for e in items
    )
    first = items[0]
    assert (first["contract"], first["event"]) == ("FlowToken", "Transfer")
    assert first["args"] == {"from": ZERO_ADDRESS, "to": PROVIDERS[0].address, "value": str(20_000 * UNIT)}
    closed = next(e for e in items if e["event"] == "OrderClosed")
    assert closed["args"]["cooperative"] is True and closed["args"]["orderId"] == "0x" + CLOSED_ID.hex()
    assert {e["event"] for e in items} == {
        "Transfer",
        "Staked",
        "OfferPublished",
        "OrderOpened",
        "Redeemed",
        "OrderClosed",
    }
    # paging with the returned cursor visits every log once
    seen, params = [], "limit=4"
    while True:
        page = client.get(f"/events?{params}").json()
        seen += [(e["block_number"], e["log_index"]) for e in page["items"]]
        if page["next"] is None:
            break
        params = f"limit=4&from_block={page['next']['from_block']}&from_log_index={page['next']['from_log_index']}"
    assert seen == [(e["block_number"], e["log_index"]) for e in items]
    later = client.get("/events?from_block=3").json()["items"]
    assert later[0]["block_number"] == 3 and all(e["block_number"] >= 3 for e in later)
    bad_request(client, "/events?from_block=x", "from_block='x'")
    bad_request(client, "/events?limit=1001", "limit='1001'")


def test_status(client: InProcessClient) -> None:
    status = client.get("/status").json()
    api_module.StatusOut.model_validate(status)
    assert status["chain_id"] == CHAIN_ID and status["contracts"] == CONTRACTS
    assert (status["indexed_block"], status["head"], status["lag"]) == (5, 12, 7)
    assert status["indexed_hash"] == block_hash(5) and status["rollback_floor"] == 2
    assert status["now"] == NOW and status["current_epoch"] == NOW // 30 and status["epoch_seconds"] == 30


# ----------------------------------------------------------------------------------------- heartbeats, metrics, docs


def test_post_heartbeats(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    fill(db)
    now = NOW + 3600
    app = create_app(db, CHAIN_ID, CONTRACTS["Staking"], clock=lambda: now, max_per_epoch=2)
    p2 = PROVIDERS[2]

    def body(
        who: LocalAccount = p2, ts: int = now, load: int = 0, endpoint: str = "p2.example.net:7443"
    ) -> dict[str, Any]:
        return sign_heartbeat(who, DOMAIN, Heartbeat.create(who.address, endpoint, load, ts)).to_json()

    with InProcessClient(app) as c:
        first = c.post("/heartbeats", json=body())
        assert first.status_code == 201, first.text
        assert first.json() == {
            "accepted": True,
            "duplicate": False,
            "provider": p2.address,
            "epoch": now // 30,
            "live_until": now + 90,
        }
        again = c.post("/heartbeats", json=body())
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert c.get(f"/providers/{p2.address}").json()["live"] is True

        def refused(payload: Any, status: int, error: str, needle: str) -> None:
            response = c.post("/heartbeats", json=payload)
            assert response.status_code == status, response.text
            assert response.json()["error"] == error and needle in response.json()["message"], response.text

        refused(body(ts=now - 61), 400, "stale", "61 s behind")
        wrong_epoch = {**body(), "epoch": now // 30 - 1}
        refused(wrong_epoch, 400, "wrong_epoch", f"epoch {now // 30 - 1} does not match")
        forged = {**body(), "load": 7}  # changed after signing
        refused(forged, 401, "bad_signature", f"not by provider {p2.address}")
        stranger = key(555)
        refused(body(stranger), 403, "not_staked", stranger.address)
        refused(body(VERIFIER), 403, "not_staked", VERIFIER.address)
        refused({**body(), "load": 20_000}, 400, "invalid", "load 20000")
        refused({"provider": p2.address}, 400, "invalid", "lacks epoch")
        response = c.post("/heartbeats", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"] == "invalid"
        # a second, different statement in the epoch is kept; a third is too many (max_per_epoch=2)
        assert c.post("/heartbeats", json=body(endpoint="moved.example.net:7443")).status_code == 201
        refused(body(load=5), 429, "too_many", "2 different heartbeats")
        detail = c.get(f"/providers/{p2.address}").json()
        assert detail["equivocating_epochs"] == [now // 30]
        assert len(detail["recent_heartbeats"]) == 2

        metrics = c.get("/metrics").text
    assert "flownet_heartbeats_accepted_total 2\n" in metrics
    assert "flownet_heartbeats_duplicate_total 1\n" in metrics
    for reason, n in {
        "stale": 1,
        "wrong_epoch": 1,
        "bad_signature": 1,
        "not_staked": 2,
        "invalid": 3,
        "too_many": 1,
    }.items():
        assert f'flownet_heartbeats_rejected_total{{reason="{reason}"}} {n}\n' in metrics, reason
    assert 'flownet_http_requests_total{method="POST",route="/heartbeats",status="201"} 2\n' in metrics


SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? [0-9.e+-]+$'
)


def test_metrics_format(client: InProcessClient) -> None:
    for url in ("/providers", "/providers?limit=x", "/status", "/nope"):
        client.get(url)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert text.endswith("\n")
    families: dict[str, str] = {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter", "histogram") and name not in families
            families[name] = kind
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    assert values["flownet_indexed_block"] == 5
    assert values["flownet_chain_head"] == 12
    assert values["flownet_index_lag_blocks"] == 7
    assert values["flownet_providers"] == 12 and values["flownet_verifiers"] == 1
    assert values["flownet_providers_live"] == 4
    assert values['flownet_orders{status="open"}'] == 1 and values['flownet_orders{status="closed"}'] == 1
    assert values["flownet_events"] == 13 + 12 + 11 + 1 + 2 + 1 + 1
    assert values["flownet_heartbeats_stored"] == len(LIVE)
    assert values['flownet_http_requests_total{method="GET",route="/providers",status="200"}'] == 1
    assert values['flownet_http_requests_total{method="GET",route="/providers",status="400"}'] == 1
    assert values['flownet_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    route = 'route="/providers"'
    assert values[f"flownet_http_request_duration_seconds_count{{{route}}}"] == 2
    assert values[f'flownet_http_request_duration_seconds_bucket{{{route},le="+Inf"}}'] == 2
    buckets = [v for k, v in values.items() if k.startswith(f"flownet_http_request_duration_seconds_bucket{{{route}")]
    assert buckets == sorted(buckets)  # cumulative
    assert families["flownet_http_request_duration_seconds"] == "histogram"


def test_openapi_lists_every_route(client: InProcessClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "FlowNet full node"
    app_routes = {
        (route.path, method)
        for route in client.app.routes  # type: ignore[attr-defined]
        if getattr(route, "include_in_schema", False)
        for method in route.methods  # type: ignore[attr-defined]
    }
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert documented == app_routes
    assert {path for path, _ in documented} == {
        "/providers",
        "/providers/{address}",
        "/providers/{address}/equivocations",
        "/orders/{order_id}",
        "/ledger/accounts",
        "/ledger/accounts/{account}",
        "/events",
        "/status",
        "/heartbeats",
        "/metrics",
        "/disputes",
        "/disputes/{dispute_id}",
        "/attestations",
    }
    params = {p["name"]: p for p in doc["paths"]["/providers"]["get"]["parameters"]}
    assert set(params) == {"region", "max_price", "min_trust", "live", "sort", "order", "limit", "offset"}
    assert "token units" in params["max_price"]["description"] and "500" in params["min_trust"]["description"]
    body = doc["paths"]["/heartbeats"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"provider", "epoch", "endpointHash", "load", "timestamp", "signature"}
    assert {"201", "200", "400", "401", "403", "429"} <= set(doc["paths"]["/heartbeats"]["post"]["responses"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (path, method)


def test_unknown_routes_and_methods(client: InProcessClient) -> None:
    missing = client.get("/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no route GET /nothing/here (see /openapi.json)"}
    wrong = client.post("/status")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_app_refuses_another_deployment(db: Path) -> None:
    with pytest.raises(ConfigError, match="indexes chain 31337"):
        create_app(db, 1, CONTRACTS["Staking"])
    with pytest.raises(ConfigError, match="with Staking"):
        create_app(db, CHAIN_ID, CONTRACTS["FlowToken"])


def test_metadata_refresh(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    fill(db)  # fetched 0..9 fine, 10 refused (wrong signer), 11 has no CID
    store = ApiStore(db)
    try:
        rows = {r["address"]: dict(r) for r in store.conn.execute("SELECT * FROM provider_meta")}
        assert len(rows) == 11 and PROVIDERS[11].address not in rows
        assert rows[PROVIDERS[3].address]["endpoint_hash"] == "0x" + endpoint_hash("p3.example.net:7443").hex()
        assert rows[PROVIDERS[10].address]["error"] and rows[PROVIDERS[10].address]["endpoint"] is None
        calls: list[str] = []

        def get(cid: str) -> bytes:
            calls.append(cid)
            if cid == cid_of(10):
                return metadata_doc(10)  # now properly signed
            raise KeyError(cid)

        # nothing to do until the failed fetch is old enough to retry
        assert refresh(store, get, NOW + 10).fetched == 0 and calls == []
        assert refresh(store, get, NOW + 301).fetched == 1 and calls == [cid_of(10)]
        # a new CID on chain is fetched again; a missing blob is recorded as an error
        store.conn.execute("UPDATE stakers SET metadata_cid = 'bafynew' WHERE address = ?", (PROVIDERS[1].address,))
        result = refresh(store, get, NOW + 302)
        assert (result.fetched, result.failed) == (0, 1)
        row = store.conn.execute("SELECT * FROM provider_meta WHERE address = ?", (PROVIDERS[1].address,)).fetchone()
        assert row["cid"] == "bafynew" and "cannot fetch bafynew" in row["error"]
    finally:
        store.close()

"""The full node's API keeps its own contract (issue 11, finding 2).

In process, each of these failed on the previous main: integers past SQLite's 2^63 - 1 raised
OverflowError (500 in text/plain), ``/disputes/³`` raised and an Arabic-Indic one read dispute 1, 405 answers
had no ``Allow``, an unexpected failure answered text/plain, and the document declared a 422 that was
never sent and no pattern or bound for addresses, ids and amounts.

Then schemathesis runs every check (``--checks all``, deterministic, a bounded number of examples per
operation) against a real ``flownet fullnode run`` indexing a devnet that holds stakes, offers with their
metadata, orders with a receipt and a close, an unstake, disputes (rebutted, executed, open), an
equivocation slash, heartbeats with an equivocation and an attestation, and must find nothing; the node
then answers the issue's hostile values each with a 4xx JSON error and still serves /status.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import tomli_w
from conftest import PRICE, new_account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address
from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from flownet.blobs.store import LocalStore
from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.slashing import Slashing
from flownet.chain.tx import Sender
from flownet.config import load_settings
from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, sign_heartbeat
from flownet.core.metadata import ProviderMetadata
from flownet.devnet import Anvil, free_port
from indexer import queries
from indexer.api import create_app
from indexer.asgiclient import InProcessClient
from indexer.store import Block, Ledger

E18 = 10**18
SQL_INT_MAX = 2**63 - 1  # SQLite's widest integer
ADDRESS_PATTERN = "^0x[0-9a-fA-F]{40}$"
BYTES32_PATTERN = "^0x[0-9a-fA-F]{64}$"
UNITS_PATTERN = "^[0-9]{1,78}$"
NOW = 1_700_000_015
P = "0x" + "ab" * 20
ZERO = "0x" + "00" * 20
LOOKUPS = {
    "/providers/{address}",
    "/providers/{address}/equivocations",
    "/orders/{order_id}",
    "/ledger/accounts/{account}",
    "/disputes/{dispute_id}",
}
EXAMPLES = 100  # per operation and phase: about 2,700 requests in 20-30 s
TOO_BIG = str(2**63)

# (request, needle in the 400 message): values that crashed, or were misread by, the previous main
HOSTILE = [
    (f"/events?from_block={TOO_BIG}", f"from_block='{TOO_BIG}'"),
    (f"/events?from_block={2**64}", f"from_block='{2**64}'"),
    ("/events?from_block=-1", "from_block='-1'"),
    (f"/events?from_log_index={TOO_BIG}", f"from_log_index='{TOO_BIG}'"),
    (f"/attestations?epoch={TOO_BIG}", f"epoch='{TOO_BIG}'"),
    (f"/attestations?epoch={2**64}", f"epoch='{2**64}'"),
    ("/disputes/%C2%B3", "dispute_id '³'"),
    ("/disputes/%D9%A1", "dispute_id '\u0661'"),  # ARABIC-INDIC DIGIT ONE: was read as dispute 1
    ("/disputes/%EF%BC%91", "dispute_id '\uff11'"),  # FULLWIDTH DIGIT ONE
    (f"/disputes/{TOO_BIG}", f"dispute_id '{TOO_BIG}'"),
    ("/events?from_block=%D9%A1", "from_block='\u0661'"),
    ("/events?from_block=%2B1", "from_block='+1'"),
    ("/events?from_block=1.0", "from_block='1.0'"),
    ("/providers?limit=%D9%A5", "limit='\u0665'"),
    ("/providers?live=1", "live='1'"),
    ("/providers?max_price=5%0A", "max_price='5\\n'"),
    ("/orders/0x" + "ab" * 32 + "%0A", "order_id '0x" + "ab" * 32 + "\\n'"),
    ("/providers/0X" + "ab" * 20, "provider address '0X"),
    ("/ledger/accounts/" + "x" * 201, "account="),
]


def fill(db: Path) -> None:
    logs = [
        make_log("FlowToken", "Transfer", 1, 0, **{"from": ZERO, "to": P, "value": 5_000 * E18}),
        make_log("Staking", "Staked", 1, 1, account=P, role=1, amount=1_000 * E18, active=1_000 * E18),
        make_log("SlashingManager", "DisputeOpened", 2, 0, disputeId=1, provider=P, epoch=NOW // 30 - 5, kind=0,
                 evidenceCid="bafkreiprobe", verifiers=[ZERO, ZERO], opener=ZERO, challengeEnds=NOW + 100,
                 due=100 * E18),
    ]  # fmt: skip
    ledger = Ledger(db, CONTRACTS, CHAIN_ID)
    blocks = [Block(n, f"0x{n:064x}", f"0x{n - 1:064x}") for n in (1, 2)]
    ledger.apply(blocks, logs, finalized=2, cursor=blocks[-1])
    ledger.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    fill(tmp_path / "node.db")
    app = create_app(tmp_path / "node.db", CHAIN_ID, CONTRACTS["Staking"], clock=lambda: NOW)
    yield app
    app.state.reader.close()
    app.state.store.close()


@pytest.fixture
def client(app: Any) -> Iterator[InProcessClient]:
    with InProcessClient(app) as c:
        yield c


def is_json_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    return dict(body)


# ----------------------------------------------------------------------------------------- in process


@pytest.mark.parametrize(("url", "needle"), HOSTILE)
def test_hostile_values_are_refused_with_json_naming_them(client: InProcessClient, url: str, needle: str) -> None:
    body = is_json_error(client.get(url), 400, "bad_request")
    assert needle in body["message"], body
    assert client.get("/status").status_code == 200


def test_dispute_ids_are_ascii_digits(client: InProcessClient) -> None:
    assert client.get("/disputes/1").json()["id"] == 1
    assert client.get("/disputes/0001").json()["id"] == 1
    for text in ("\u0661", "\u00b9", "\uff11", "1 ", "+1", "1.0", "0x1"):
        is_json_error(client.get(f"/disputes/{text}"), 400, "bad_request")
    is_json_error(client.get(f"/disputes/{SQL_INT_MAX}"), 404, "not_found")


def test_addresses_in_any_case_and_only_0x(client: InProcessClient) -> None:
    mixed = "0x" + "aB" * 20  # not its EIP-55 checksum: still the same address
    assert client.get(f"/providers/{mixed}").json()["address"] == to_checksum_address(P)
    assert client.get(f"/disputes?provider={mixed}").json()["total"] == 1
    for text in ("ab" * 20, "0X" + "ab" * 20, "0x" + "ab" * 19, "0x" + "ab" * 20 + "\n"):
        is_json_error(client.get("/disputes", params={"provider": text}), 400, "bad_request")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/status", "GET"),
        ("DELETE", "/attestations", "GET, POST"),
        ("GET", "/heartbeats", "POST"),
        ("TRACE", "/disputes/1", "GET"),
        ("OPTIONS", "/providers", "GET"),
        ("PUT", "/providers/" + P + "/equivocations", "GET"),
    ],
)
def test_405_names_the_methods_the_path_takes(client: InProcessClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    body = is_json_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow and allow in body["message"]


def test_every_error_is_json(app: Any, client: InProcessClient, monkeypatch: pytest.MonkeyPatch) -> None:
    is_json_error(client.get("/nothing/here"), 404, "not_found")
    is_json_error(client.get("/disputes/7"), 404, "not_found")
    is_json_error(client.get("/status?verbose=1"), 400, "bad_request")
    is_json_error(client.get("/metrics?x=1"), 400, "bad_request")
    is_json_error(client.post("/heartbeats", content=b"{"), 400, "invalid")

    def broken(*args: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "events", broken)

    async def requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as plain:
            return [await plain.get("/events"), await plain.get("/status")]

    failed, status = anyio.run(requests)
    body = is_json_error(failed, 500, "internal")
    assert "disk on fire" not in body["message"] and status.status_code == 200


def _schema(param: dict[str, Any]) -> dict[str, Any]:
    schema = param["schema"]
    return next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)


def test_the_document_says_exactly_what_the_server_takes(client: InProcessClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
            assert ("404" in responses) == (path in LOOKUPS), (method, path)
            for param in op.get("parameters", []):
                params[(path, param["name"])] = _schema(param)
    for (path, name), schema in params.items():
        if schema.get("type") == "integer":
            assert schema["minimum"] >= 0 and schema["maximum"] <= SQL_INT_MAX, (path, name, schema)
    assert params[("/providers/{address}", "address")]["pattern"] == ADDRESS_PATTERN
    assert params[("/providers/{address}/equivocations", "address")]["pattern"] == ADDRESS_PATTERN
    assert params[("/disputes", "provider")]["pattern"] == ADDRESS_PATTERN
    assert params[("/attestations", "provider")]["pattern"] == ADDRESS_PATTERN
    assert params[("/orders/{order_id}", "order_id")]["pattern"] == BYTES32_PATTERN
    assert params[("/providers", "max_price")]["pattern"] == UNITS_PATTERN
    dispute_id = params[("/disputes/{dispute_id}", "dispute_id")]
    assert (dispute_id["type"], dispute_id["minimum"], dispute_id["maximum"]) == ("integer", 1, SQL_INT_MAX)
    for name in ("from_block", "from_log_index"):
        assert params[("/events", name)]["maximum"] == SQL_INT_MAX
    assert params[("/attestations", "epoch")]["maximum"] == SQL_INT_MAX

    def body(path: str) -> dict[str, Any]:
        return dict(doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])

    heartbeat = body("/heartbeats")["properties"]
    assert heartbeat["provider"]["pattern"] == ADDRESS_PATTERN and heartbeat["endpointHash"]["pattern"] == (
        BYTES32_PATTERN
    )
    assert (heartbeat["load"]["minimum"], heartbeat["load"]["maximum"]) == (0, 10_000)
    assert heartbeat["epoch"]["exclusiveMaximum"] == heartbeat["timestamp"]["exclusiveMaximum"] == 2**64
    attestation = body("/attestations")
    assert attestation["additionalProperties"] is False
    assert attestation["properties"]["verifier"]["pattern"] == ADDRESS_PATTERN
    assert attestation["properties"]["evidence_cid"]["maxLength"] == 128


# ----------------------------------------------------------------------------------------- on a devnet


@dataclass
class FullNode:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    known: dict[str, list[Any]]  # parameter -> values that name real data, for schemathesis' dictionaries


def _advance(w3: Any, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def _populate(anvil: Anvil, home: Path) -> tuple[Any, dict[str, Any]]:
    """Deploy FlowNet on the devnet and give every route something to answer; returns the deployment and
    the people and ids the test uses."""
    w3 = http_web3(anvil.url)
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet())
    owner = FlowNet(w3, deployment, deployer)
    people = [FlowNet(w3, deployment, new_account(w3)) for _ in range(7)]
    for person in people:
        owner.transfer(person.address, 20_000 * TOKEN_UNIT)
        person.approve(person.market.address)
        person.approve(person.staking.address)
    faulty, honest, client, v1, v2, v3, reporter = people
    blobs = LocalStore(load_settings(home).blobs_dir)
    for i, (provider, region) in enumerate(((faulty, "eu-west"), (honest, "us-east"))):
        provider.stake(Role.PROVIDER, 10_000 * TOKEN_UNIT)
        meta = ProviderMetadata(provider.address, f"p{i}.example.net:7443", region, 100, PRICE, int(time.time()))
        signature = provider.account.sign_message(encode_defunct(primitive=meta.signing_payload())).signature
        provider.set_offer(PRICE, blobs.put(meta.document(bytes(signature))))
    for verifier in (v1, v2, v3):
        verifier.stake(Role.VERIFIER, 1_000 * TOKEN_UNIT)
    order, _ = client.open_order(faulty.address, 100 * TOKEN_UNIT, 24 * 3600, PRICE)
    faulty.redeem(client.sign_receipt(order, 2**30))
    closed, _ = client.open_order(honest.address, 10 * TOKEN_UNIT, 24 * 3600, PRICE)
    client.close(closed, 3 * TOKEN_UNIT, honest.sign_close(closed, 3 * TOKEN_UNIT))
    honest.request_unstake(100 * TOKEN_UNIT)

    s = Slashing(w3, deployment, reporter.account)

    def attest(epoch: int, kind: int, cid: str, *accusers: FlowNet) -> list[bytes]:
        return [s.sign_attestation(v.account, faulty.address, epoch, kind, cid) for v in accusers]

    probe, _ = v1.open_order(faulty.address, 100 * TOKEN_UNIT, 24 * 3600, PRICE)
    epoch = s.current_epoch()
    rebutted, _ = s.open_dispute(faulty.address, epoch, 1, "bafkreia", attest(epoch, 1, "bafkreia", v1, v2))
    s.rebut(rebutted, probe, 1, s.sign_service_proof(v1.account, probe.order_id, epoch, 1))
    executed, _ = s.open_dispute(faulty.address, epoch, 0, "bafkreib", attest(epoch, 0, "bafkreib", v2, v3))
    _advance(w3, 61)
    s.execute(executed)
    domain = HeartbeatDomain(deployment.chain_id, deployment.addresses["Staking"])
    now = int(w3.eth.get_block("latest")["timestamp"])
    a, b = (
        sign_heartbeat(faulty.account, domain, Heartbeat.create(faulty.address, endpoint, 1, now))
        for endpoint in ("tls://a:1", "tls://b:1")
    )
    s.slash_equivocation(a, b, "bafkreic")
    later = s.current_epoch() - 1
    pending, _ = s.open_dispute(faulty.address, later, 2, "bafkreid", attest(later, 2, "bafkreid", v2, v3))
    ids = {
        "order_ids": ["0x" + o.order_id.hex() for o in (order, closed, probe)],
        "dispute_ids": [rebutted, executed, pending],
    }
    return deployment, {"faulty": faulty, "honest": honest, "client": client, "verifiers": [v1, v2, v3], **ids}


def _wait_until(what: str, check: Any, node: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
            if found:
                return found
        except httpx.HTTPError:
            pass
        assert node.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fullnode(anvil: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullNode]:
    """`flownet fullnode run` (indexer and API in one process) on a populated devnet, with signed heartbeats
    (one equivocation) and an attestation posted to it."""
    root = tmp_path_factory.mktemp("contract")
    home = root / "home"
    home.mkdir()
    deployment, made = _populate(anvil, home)
    manifest = home / "deployment.json"
    deployment.save(manifest)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FLOWNET_RPC_URL": anvil.url, "FLOWNET_MANIFEST": str(manifest)}
    log = root / "fullnode.log"
    command = [sys.executable, "-m", "flownet.cli", "--home", str(home), "fullnode", "run",
               "--db", str(root / "fullnode.db"), "--port", str(port), "--poll", "0.2",
               "--metadata-interval", "0.5"]  # fmt: skip
    with log.open("wb") as out:
        node = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        head = http_web3(anvil.url).eth.block_number
        faulty, honest, client = made["faulty"], made["honest"], made["client"]
        _wait_until(
            "the node indexes the devnet",
            lambda: (httpx.get(f"{url}/status", timeout=5).json().get("indexed_block") or 0) >= head,
            node,
            log,
        )
        for provider in (faulty, honest):
            _wait_until(
                f"the node fetches the metadata of {provider.address}",
                lambda p=provider: httpx.get(f"{url}/providers/{p.address}", timeout=5).json().get("metadata"),
                node,
                log,
            )
        domain = HeartbeatDomain(deployment.chain_id, deployment.addresses["Staking"])
        wall = int(time.time())
        for who, endpoint in ((faulty, "p0.example.net:7443"), (honest, "p1.example.net:7443"), (honest, "h:1")):
            hb = sign_heartbeat(who.account, domain, Heartbeat.create(who.address, endpoint, 2500, wall))
            answer = httpx.post(f"{url}/heartbeats", json=hb.to_json(), timeout=5)
            assert answer.status_code in (200, 201, 429), answer.text
        status = httpx.get(f"{url}/status", timeout=5).json()
        epoch = status["current_epoch"]
        s = Slashing(http_web3(anvil.url), deployment)
        v2 = made["verifiers"][1]
        signature = s.sign_attestation(v2.account, honest.address, epoch, 1, "bafkreislow")
        body = {"provider": honest.address, "epoch": epoch, "kind": 1, "evidence_cid": "bafkreislow",
                "verifier": v2.address, "signature": "0x" + signature.hex()}  # fmt: skip
        answer = httpx.post(f"{url}/attestations", json=body, timeout=5)
        assert answer.status_code == 201, answer.text
        equivocations = httpx.get(f"{url}/providers/{honest.address}/equivocations", timeout=5).json()
        assert equivocations["total"] == 1, equivocations
        assert [d["status"] for d in httpx.get(f"{url}/disputes", timeout=5).json()["items"]] == [
            "open",
            "executed",
            "rebutted",
        ]
        providers = [faulty.address, honest.address]
        known = {
            "path.address": [*providers, faulty.address.lower(), made["verifiers"][0].address],
            "query.provider": providers,
            "path.order_id": made["order_ids"],
            "path.dispute_id": made["dispute_ids"],
            "path.account": [
                f"wallet:{client.address}",
                f"stake:active:{faulty.address}",
                f"stake:thawing:{honest.address}",
                f"escrow:{made['order_ids'][0]}",
                "external",
                "burned",
            ],
            "query.prefix": ["wallet:", "escrow:", "stake:"],
            "query.region": ["eu-west", "us-east"],
            "query.epoch": [epoch],
            "query.evidence_cid": ["bafkreislow"],
            "query.max_price": [str(PRICE), str(2 * PRICE)],
        }
        yield FullNode(url, node, log, known)
    finally:
        node.terminate()
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(5)


def _config(node: FullNode, path: Path) -> Path:
    """tests/schemathesis.toml plus dictionaries of values naming real data, so lookups find some."""
    config = tomllib.loads((Path(__file__).parent / "schemathesis.toml").read_text())
    config["dictionaries"] = {}
    config["parameters"] = {}
    for n, (key, values) in enumerate(sorted(node.known.items())):
        config["dictionaries"][f"known{n}"] = {"values": values}
        config["parameters"][key] = {"dictionary": f"known{n}", "probability": 0.5}
    path.write_text(tomli_w.dumps(config))
    return path


def test_schemathesis_finds_nothing(fullnode: FullNode, tmp_path: Path) -> None:
    """Every check on every operation: no 5xx, no undeclared status, content type, header or body, schema-valid
    requests accepted, schema-invalid ones refused, 405 with Allow for undeclared methods."""
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary, "schemathesis is in the dev extras: run make setup"
    report = tmp_path / "report.json"
    command = [binary, "--config-file", str(_config(fullnode, tmp_path / "schemathesis.toml")), "run",
               f"{fullnode.url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
               "--generation-deterministic", "--workers", "1", "--request-timeout", "10", "--no-color",
               "--report", "json", "--report-json-path", str(report)]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert report.exists(), result.stdout[-5000:] + result.stderr[-3000:]
    found = json.loads(report.read_text())
    summary = {
        "operations": found["operations"],
        "test_cases": found["test_cases"],
        "seconds": round(found["running_time"], 1),
    }
    print(f"schemathesis: {json.dumps(summary)}")
    assert result.returncode == 0 and found["exit_code"] == 0, result.stdout[-8000:]
    assert found["failures"] == [] and found["errors"] == [], result.stdout[-8000:]
    documented = sum(len(ops) for ops in httpx.get(f"{fullnode.url}/openapi.json").json()["paths"].values())
    assert found["operations"]["tested"] == found["operations"]["total"] == documented == 14, found["operations"]
    assert {phase: v["status"] for phase, v in found["phases"].items() if phase != "examples"} == {
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }
    assert found["warnings"]["missing_test_data"] == [], found["warnings"]  # every lookup reached real data
    for operation, rates in found["valid_rates"].items():
        if operation.startswith("GET"):
            assert sum(r["accepted"] for r in rates.values()) > 0, (operation, rates)
    assert httpx.get(f"{fullnode.url}/status").status_code == 200 and fullnode.process.poll() is None


def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is on a fresh connection; the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_full_node_survives_hostile_values(fullnode: FullNode) -> None:
    url = fullnode.url
    with httpx.Client(base_url=url, timeout=10) as client:
        for request, needle in HOSTILE:
            body = is_json_error(client.get(request), 400, "bad_request")
            assert needle in body["message"], (request, body)
        for path in ("/heartbeats", "/attestations"):
            is_json_error(client.post(path, content=b"[" * 70_000), 413, "too_large")
            is_json_error(client.post(path, content=b"[" * 60_000), 400, "too_deep")
        response = client.request("TRACE", "/status")
        assert is_json_error(response, 405, "method_not_allowed") and response.headers["allow"] == "GET"
        is_json_error(client.get("/no/such/route"), 404, "not_found")
    # a 20 MB body is refused by its declared length, before it is sent
    status, headers, body = _raw(
        url, b"POST /heartbeats HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
        b"Content-Length: 20000000\r\n\r\n[[[["
    )  # fmt: skip
    assert status == 413 and headers["content-type"] == "application/json", (status, headers, body)
    assert json.loads(body)["error"] == "too_large"
    assert httpx.get(f"{url}/status", timeout=5).status_code == 200
    assert fullnode.process.poll() is None, fullnode.log.read_text()

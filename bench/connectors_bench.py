"""Connector benchmark: every tool destination against its own sandbox over real HTTP on 127.0.0.1.

For each connector (hubspot, salesforce, mailchimp, klaviyo, meta, google_ads, webhook) the sandbox
starts in a process of its own (the tool is another machine: it must not share the client's
interpreter lock) on an ephemeral loopback port and the destination is built through its module's Config /
from_config (base URL pointed at the sandbox, credentials through an env mapping, as
destinations.yml does). N records (a unique valid email and names each) go in batches of the
destination's capabilities.max_batch_size, with capabilities.max_concurrency batches in flight;
RETRYABLE records (and the records of a batch that raised) are sent again on later "runs", like
the engine, until all are OK or ROUNDS is reached. CRM tools UPSERT, membership tools ADD_MEMBER
to the sandbox's list or audience, the webhook UPSERTs.

Scenarios, per connector:
- unthrottled: the sandbox without limits, the destination's own rate limit lifted where its
  Config allows -> records per second;
- throttled: the sandbox enforcing the tool's own documented limit, which is what the
  destination's Config defaults to, and the destination at its Config defaults ->
  achieved share of that limit, records lost (sent, not in the sandbox state at the end; must
  be 0) and records duplicated. Per tool:
  - rate-limited tools (hubspot, salesforce, klaviyo, meta): sandbox throttle_rps = the Config's
    default requests_per_second; share = requests the sandbox accepted / elapsed / that rate;
  - webhook: no documented limit (Config default: none); sandbox and client both at 5 req/s;
  - mailchimp: its limit is 10 simultaneous connections, not a rate: the sandbox's
    max_connections = the Config's default max_concurrency (10); share = throttled records/s /
    unthrottled records/s at the same concurrency (the unthrottled sandbox has no cap);
  - google_ads: jobs of 100,000 users (create, 10 addOperations, run, status polls), the next job
    filled while one runs: sandbox throttle_rps = the Config's default requests_per_second; share
    = all accepted requests (the polls spend the same quota) / elapsed / rate, like the others; the
    share of non-polling requests (create/addOperations/run) is reported beside it.
Writes bench/results/connectors.json. Not in CI.

    .venv/bin/python bench/connectors_bench.py [--records 20000] [--only hubspot,meta]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import multiprocessing
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus  # noqa: E402
from destinations.sandbox.serve import SANDBOXES  # noqa: E402
from destinations.sandbox.server import SandboxServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "connectors.json"
ROUNDS = 10
WHERE = Path("bench/connectors_bench.py")  # named in configuration errors
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


def _sha(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _dupes(values) -> int:
    """How many values repeat an earlier one."""
    return sum(c - 1 for c in Counter(values).values() if c > 1)


@dataclass(frozen=True)
class Connector:
    name: str
    operation: Operation
    target: str
    sandbox: Callable[..., SandboxServer]  # credential values (serve.py's env order), **knobs
    config: Callable[[str], dict[str, Any]]  # sandbox url -> destination settings
    unlimited: dict[str, Any]  # settings that lift the client-side rate limit
    fields: Callable[[int, str], dict[str, Any]]  # (i, email) -> Record.fields
    stored: Callable[[SandboxServer], tuple[set[str], int]]  # -> (emails or hashes present, duplicates)
    by_hash: bool = False  # `stored` gives SHA-256 of emails (ad tools keep only hashes)
    records: int | None = None  # N for this tool whatever --records says (see CONNECTORS)
    limited: dict[str, Any] = field(default_factory=dict)  # throttled-run settings beyond the defaults
    by_connections: bool = False  # the documented limit is concurrent connections, not a rate
    polling: str | None = None  # path suffix of status polls, left out of the share


def _names(i: int) -> tuple[str, str]:
    return FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]


def _plain(i: int, email: str) -> dict[str, Any]:
    first, last = _names(i)
    return {"email": email, "first_name": first, "last_name": last}


# ---- per-tool: sandbox as serve.py builds it (same list ids), plus the bench's knobs

def _hubspot_sb(token, **kw):
    from destinations.sandbox.hubspot import HubSpotSandbox
    return HubSpotSandbox(token=token, lists=["1001"], **kw)


def _hubspot_stored(sb) -> tuple[set[str], int]:
    with sb.lock:
        emails = [c["properties"].get("email") for c in sb.contacts.values()]
    return set(emails), _dupes(emails)


def _salesforce_sb(token, **kw):
    from destinations.sandbox.salesforce import SalesforceSandbox
    return SalesforceSandbox(token=token, campaigns=["701000000000001AAA"], **kw)


def _salesforce_stored(sb) -> tuple[set[str], int]:
    with sb.lock:
        emails = [r.get("Email") for r in sb.records.values()]
    return set(emails), _dupes(emails)


def _mailchimp_sb(api_key, **kw):
    from destinations.sandbox.mailchimp import MailchimpSandbox
    return MailchimpSandbox(api_key=api_key, lists={"list0001": ["seg1"]}, **kw)


def _mailchimp_stored(sb) -> tuple[set[str], int]:
    with sb.lock:  # members are keyed by subscriber hash: a repeat cannot be stored twice
        aud = sb.lists["list0001"]
        emails = [aud.members[h]["email_address"] for h in aud.segments["seg1"] if h in aud.members]
    return set(emails), _dupes(emails)


def _klaviyo_sb(api_key, **kw):
    from destinations.sandbox.klaviyo import KlaviyoSandbox
    return KlaviyoSandbox(api_key, lists=("Y6nRLr",), **kw)


def _klaviyo_stored(sb) -> tuple[set[str], int]:
    with sb.lock:
        profile_emails = [p.get("email") for p in sb.profiles.values()]
        members = [sb.profiles[i].get("email") for i in sb.lists.get("Y6nRLr", ()) if i in sb.profiles]
    return set(members), _dupes(profile_emails)


def _meta_sb(token, **kw):
    from destinations.sandbox.meta import MetaSandbox
    return MetaSandbox(token=token, audiences=["23850000000000001"], **kw)


def _meta_stored(sb) -> tuple[set[str], int]:
    hashes = [m.get("EMAIL") for m in sb.members("23850000000000001")]
    return set(hashes), _dupes(hashes)


def _google_sb(access_token, developer_token, **kw):
    from destinations.sandbox.google_ads import GoogleAdsSandbox
    return GoogleAdsSandbox(access_token=access_token, developer_token=developer_token,
                            user_lists=["5550001"], **kw)


def _google_stored(sb) -> tuple[set[str], int]:
    return sb.hashed_emails("5550001"), 0  # a set of identifiers: a repeat cannot be stored twice


def _webhook_sb(secret, **kw):
    from destinations.sandbox.webhook_receiver import WebhookReceiver
    return WebhookReceiver(secret, max_batch_size=500, **kw)


def _webhook_stored(sb) -> tuple[set[str], int]:
    stored = sb.state.records.get("contacts", {})  # keyed by record key
    emails = [r["fields"].get("email") for r in stored.values()]
    return set(emails), _dupes(emails)


CONNECTORS: dict[str, Connector] = {c.name: c for c in (
    Connector("hubspot", Operation.UPSERT, "contacts", _hubspot_sb,
              lambda url: {"base_url": url},
              {"requests_per_second": 100, "burst": 200},
              lambda i, e: {"email": e, "firstname": _names(i)[0], "lastname": _names(i)[1]},
              _hubspot_stored),
    Connector("salesforce", Operation.UPSERT, "Contact", _salesforce_sb,
              lambda url: {"instance_url": url, "object": "Contact", "external_id_field": "Outflow_Id__c"},
              {"requests_per_second": 100, "burst": 200},
              lambda i, e: {"Email": e, "FirstName": _names(i)[0], "LastName": _names(i)[1]},
              _salesforce_stored),
    Connector("mailchimp", Operation.ADD_MEMBER, "seg1", _mailchimp_sb,
              lambda url: {"base_url": f"{url}/3.0", "list_id": "list0001"},
              {"requests_per_second": None},
              _plain, _mailchimp_stored, by_connections=True),
    Connector("klaviyo", Operation.ADD_MEMBER, "Y6nRLr", _klaviyo_sb,
              lambda url: {"base_url": url},
              {"requests_per_second": None},
              _plain, _klaviyo_stored, records=5_000),  # 2.5 req/s: a larger N only takes longer
    Connector("meta", Operation.ADD_MEMBER, "23850000000000001", _meta_sb,
              lambda url: {"base_url": url},
              {"requests_per_second": 50, "burst": 50},
              _plain, _meta_stored, by_hash=True, records=300_000),  # 30 requests of 10,000 rows at 1/s
    Connector("google_ads", Operation.ADD_MEMBER, "5550001", _google_sb,
              lambda url: {"customer_id": "1234567890", "base_url": url},
              {"requests_per_second": None},
              _plain, _google_stored, by_hash=True, polling="/googleAds:search",
              records=500_000),  # 5 jobs of 100,000 users, 12 non-polling requests each, at 2/s
    Connector("webhook", Operation.UPSERT, "contacts", _webhook_sb,
              lambda url: {"url": url},
              {"requests_per_second": None},
              _plain, _webhook_stored, limited={"requests_per_second": 5.0}),  # no documented limit
)}


_CREDENTIAL_KEYS = {  # Config keys naming the credentials, in serve.py's env order
    "hubspot": ("token_env",), "salesforce": ("access_token_env",), "mailchimp": ("api_key_env",),
    "klaviyo": ("api_key_env",), "meta": ("access_token_env",),
    "google_ads": ("access_token_env", "developer_token_env"), "webhook": ("secret_env",),
}


def _env_keys(kind: str) -> dict[str, str]:
    """Config key -> env var, for the credentials serve.py's sandbox checks."""
    return dict(zip(_CREDENTIAL_KEYS[kind], SANDBOXES[kind].env, strict=True))


NO_CAP = 1_000_000  # max_connections of the "without limits" sandbox


def sandbox_limits(c: Connector, *, throttled: bool) -> dict[str, Any]:
    """Sandbox knobs: none (no cap) or the tool's documented limit, read from its Config defaults."""
    if not throttled:
        return {"max_connections": NO_CAP} if c.by_connections else {}
    defaults = importlib.import_module(f"destinations.{c.name}").Config.model_fields
    if c.by_connections:
        return {"max_connections": defaults["max_concurrency"].default}
    rps = c.limited.get("requests_per_second", defaults["requests_per_second"].default)
    if rps is None:
        raise SystemExit(f"{WHERE}: {c.name} documents no rate; give it one in `limited`")
    return {"throttle_rps": float(rps)}


def _count_by_kind(sandbox: SandboxServer, polling: str) -> Counter:
    """Accepted requests, split into status polls and the rest (the sandbox counts them together)."""
    counts: Counter[str] = Counter()
    dispatch = sandbox.dispatch

    def counted(request):
        response = dispatch(request)
        if response is not None and response.status != 429:  # 429: the sandbox's throttle refused it
            with sandbox.lock:
                counts["polling" if request.path.endswith(polling) else "job"] += 1
        return response

    sandbox.dispatch = counted  # the handler looks it up on the instance
    return counts


def build(c: Connector, url: str, env: dict[str, str], unlimited: bool):
    module = importlib.import_module(f"destinations.{c.name}")
    settings = {"type": c.name, **c.config(url), **_env_keys(c.name), **(c.unlimited if unlimited else c.limited)}
    cfg = module.Config.model_validate(settings)
    return module.from_config(f"{c.name}_bench", cfg, where=WHERE, env=env)


def _serve(c: Connector, credentials: list[str], limits: dict[str, Any], conn) -> None:
    """The sandbox in a process of its own, as the real tool is another machine: it does not share
    the client's interpreter lock. Sends its url, waits for "stop", sends back what it holds."""
    sandbox = c.sandbox(*credentials, port=0, **limits)
    kinds = _count_by_kind(sandbox, c.polling) if c.polling else None
    with sandbox:
        conn.send(sandbox.url)
        conn.recv()
        present, duplicated = c.stored(sandbox)
        with sandbox.lock:
            conn.send({"present": present, "duplicated": duplicated, "seen": sandbox.requests_seen,
                       "refused": dict(sandbox.refused), "kinds": dict(kinds) if kinds is not None else None})


def run(c: Connector, n: int, *, throttled: bool) -> dict[str, Any]:
    env = {var: f"bench-{var.lower()}-0123456789" for var in SANDBOXES[c.name].env}
    emails = {f"p{i:08d}": f"bench.user{i}@example.com" for i in range(n)}
    recs = [Record(k, c.fields(i, e)) for i, (k, e) in enumerate(emails.items())]
    limits = sandbox_limits(c, throttled=throttled)
    here, there = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(c, [env[v] for v in SANDBOXES[c.name].env], limits, there), daemon=True)
    server.start()
    try:
        url = here.recv()
        dest = build(c, url, env, unlimited=not throttled)
        size, workers = dest.capabilities.max_batch_size, dest.capabilities.max_concurrency
        pending = {r.key: r for r in recs}
        rounds = errors = 0
        t0 = time.perf_counter()
        while pending and rounds < ROUNDS:
            rounds += 1
            todo = list(pending.values())
            batches = [Batch("bench", c.target, c.operation, tuple(todo[i:i + size]))
                       for i in range(0, len(todo), size)]

            def send(b: Batch) -> list:
                try:
                    return dest.write(b)
                except DestinationError:
                    return [None]

            with ThreadPoolExecutor(workers) as pool:
                for results in pool.map(send, batches):
                    for r in results:
                        if r is None:
                            errors += 1
                        elif r.status is ResultStatus.OK:
                            pending.pop(r.key, None)
        elapsed = time.perf_counter() - t0
        dest.close()
        here.send("stop")
        held = here.recv()
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
    present, duplicated, seen, refused, kinds = (held["present"], held["duplicated"], held["seen"], held["refused"],
                                                 held["kinds"])
    want = {_sha(e) if c.by_hash else e for e in emails.values()}
    out: dict[str, Any] = {
        "records": n, "batch_size": size, "concurrency": workers,
        "client_rps": dest.capabilities.max_requests_per_second,
        "seconds": round(elapsed, 3), "records_per_second": round(n / elapsed),
        "rounds": rounds, "batches_raised": errors,
        "requests_accepted": seen - sum(refused.values()), "requests_refused": refused,
        "records_lost": len(want - present), "records_duplicated": duplicated,
        "unacknowledged": len(pending),
    }
    if "max_connections" in limits:
        out["sandbox_max_connections"] = limits["max_connections"]
    if "throttle_rps" in limits:
        rps = limits["throttle_rps"]
        achieved = out["requests_accepted"] / elapsed
        out.update(allowed_requests_per_second=rps, achieved_requests_per_second=round(achieved, 2),
                   achieved_share=round(achieved / rps, 3),
                   # The sandbox's bucket starts full (one second's worth): a short run can exceed 1.0.
                   sandbox_initial_burst_requests=max(1, int(rps)))
        if kinds is not None:
            out.update(requests_accepted_job=kinds.get("job", 0), requests_accepted_polling=kinds.get("polling", 0),
                       achieved_share_non_polling=round(kinds.get("job", 0) / elapsed / rps, 3))
    return out


def connections_share(r: dict[str, Any]) -> None:
    """Mailchimp: its limit is connections, so the share is of the unthrottled throughput."""
    u, t = r["unthrottled"], r["throttled"]
    t.update(share_counts="throttled records/s / unthrottled records/s, both at concurrency "
             f"{t['concurrency']}", achieved_requests_per_second=round(t["requests_accepted"] / t["seconds"], 2),
             achieved_share=round(t["records_per_second"] / u["records_per_second"], 3))


def table(report: dict[str, Any]) -> str:
    head = (f"{'connector':<11} {'op':<10} {'N':>6} {'batch':>6} {'conc':>4} | {'rec/s':>8} | "
            f"{'limit':>9} {'client rps':>10} {'req ok':>6} {'req/s':>6} {'rec/s':>8} {'share':>6} {'lost':>5} "
            f"{'dup':>4} {'rounds':>6} {'secs':>6}")
    lines = [head, "-" * len(head)]
    for name, r in report["connectors"].items():
        u, t = r["unthrottled"], r["throttled"]
        crps = "none" if t["client_rps"] is None else f"{t['client_rps']:g}"
        limit = (f"{t['sandbox_max_connections']} conn" if "sandbox_max_connections" in t
                 else f"{t['allowed_requests_per_second']:g} req/s")
        lines.append(
            f"{name:<11} {r['operation']:<10} {u['records']:>6} {u['batch_size']:>6} {u['concurrency']:>4} | "
            f"{u['records_per_second']:>8} | {limit:>9} {crps:>10} {t['requests_accepted']:>6} "
            f"{t['achieved_requests_per_second']:>6} {t['records_per_second']:>8} {t['achieved_share']:>6.0%} "
            f"{t['records_lost']:>5} {t['records_duplicated']:>4} {t['rounds']:>6} {t['seconds']:>6}")
    for name, r in report["connectors"].items():
        t = r["throttled"]
        if "requests_accepted_polling" in t:
            lines.append(f"{name}: {t['requests_accepted_job']} create/addOperations/run and "
                         f"{t['requests_accepted_polling']} status polls accepted; the non-polling requests alone "
                         f"are {t['achieved_share_non_polling']:.0%} of {t['allowed_requests_per_second']:g} req/s.")
        elif "sandbox_max_connections" in t:
            lines.append(f"{name}: documented limit is {t['sandbox_max_connections']} simultaneous connections, "
                         f"not a rate; share = throttled rec/s / unthrottled rec/s, both at concurrency "
                         f"{t['concurrency']}. Refused: {t['requests_refused'] or 'none'}.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--only", help="comma-separated connectors (default: all)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    names = args.only.split(",") if args.only else list(CONNECTORS)
    unknown = [n for n in names if n not in CONNECTORS]
    if unknown:
        raise SystemExit(f"--only: unknown connector(s) {', '.join(unknown)}; choose from {', '.join(CONNECTORS)}")
    report: dict[str, Any] = {"throttle": "each tool's documented limit (its Config defaults)", "rounds_max": ROUNDS,
                              "python": platform.python_version(), "connectors": {}}
    for name in names:
        c = CONNECTORS[name]
        n = c.records or args.records
        report["connectors"][name] = r = {
            "operation": c.operation.value, "target": c.target,
            "unthrottled": run(c, n, throttled=False),
            "throttled": run(c, n, throttled=True),
        }
        if c.by_connections:
            connections_share(r)
        print(f"{name}: done", file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("throttled runs: sandbox at the tool's documented limit (`limit`), destination at its Config defaults "
          "(webhook: client at 5 req/s); share = accepted requests / elapsed / limit, except where noted below")
    print(table(report))


if __name__ == "__main__":
    main()

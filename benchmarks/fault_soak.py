"""Fault-injection soak: mixed clients through uvicorn against FakeQelos with ~5 % of upstream calls faulted.

    .venv/bin/python benchmarks/fault_soak.py [--requests 10000] [--seed 1]

FakeQelos (fake_server.py) and three apps (apps.py, each `python -W error -m uvicorn`, QelosConfig(timeout=0.5))
run on 127.0.0.1: `fault_open` (require_auth=False), `fault_gated` (require_auth=True) and `fault_apikey`
(api_token=...). Each has GET /optional (OptionalQelosContext), GET /required (require_user) and GET /sdk
(require_user, then sdk.workspaces.get_list() and sdk.entities("notes").get_list()).

Fifty simulated clients, each an httpx.AsyncClient with its own cookie jar kept across its requests, send one
request at a time to a random route: anonymous, a valid Bearer token, a token-mode browser (q_access_token +
q_refresh_token cookies), an invalid credential (a forged Bearer token, or forged q_* cookies), a Qelos session
browser (qlt_0 cookie) and API-key traffic. The run is a warm-up and then phases; before each phase the fake's
clock moves past the access-token lifetime (5 h), so every token-mode browser must refresh and every session
cookie is due for rotation, and Bearer clients fetch a new token. Meanwhile a controller keeps the faults
taken by upstream calls at ~5 % of those calls: 500/502/503, a malformed JSON body, an answer later than the
timeout, or a dropped connection, on /api/me, /api/workspaces, /api/token/refresh and the entity endpoint,
each for 1-4 calls; and hostile answers on the three endpoints the middleware reads itself: a 1 MiB streamed
body over the apps' max_upstream_body (64 KiB here), JSON nested past the parser's recursion limit,
non-ASCII tokens in a payload, and unwritable Set-Cookie headers (qlt_0=中文, Max-Age=²) on real answers.
Then the faults are cleared, the clock moves once more, and every client makes one last request, which must
be authenticated for every client holding a real credential.

Checks (exit status 0 only if all pass): no 500 (any is printed with its body and the app's stderr tail);
every (app, client kind, route) answer in the designed set of docs/faults.md; no transport error between the
clients and the apps; no refresh token held by a browser spent and no session cookie rotated away (asked of
the fake before and after the last pass); every credential-holding client authenticated in the last pass;
app RSS growth from the warm-up to the end below 5 MB; nothing but the documented warning lines on the apps'
stderr under -W error. Bounded: about 4 minutes whatever happens, then the remaining checks fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import httpx
from _harness import LOOPBACK, FakeAdmin, Server, app_server, fake_server, running, table

TIMEOUT = 0.5  # QelosConfig(timeout=...) of the apps, seconds
FAULT_RATE = 0.05
PHASES = 5
WARMUP = 2_000
ADVANCE = 300 * 60 + 60  # past FakeQelos's access-token lifetime and its 30-minute cookie rotation age
RSS_GROWTH_LIMIT_MB = 5.0
TRAFFIC_SECONDS = 200.0  # from the start of the script; the last pass and the checks come after
HARD_LIMIT_SECONDS = 250  # SIGALRM: whatever happens, stop and clean up
SESSION_COOKIE = "qlt_0"

APPS = {"open": "fault_open", "gated": "fault_gated", "apikey": "fault_apikey"}
ROUTES = ("/optional", "/required", "/sdk")
VALID_KINDS = frozenset({"bearer", "token-cookies", "session", "api-key"})
# (app, kind, clients)
MIX: Tuple[Tuple[str, str, int], ...] = (
    ("open", "anonymous", 4),
    ("open", "bearer", 6),
    ("open", "token-cookies", 10),
    ("open", "invalid", 4),
    ("open", "session", 8),
    ("gated", "anonymous", 2),
    ("gated", "bearer", 2),
    ("gated", "token-cookies", 4),
    ("gated", "invalid", 2),
    ("gated", "session", 3),
    ("apikey", "api-key", 5),
)
FAULT_ENDPOINTS: Tuple[Tuple[str, int], ...] = (
    ("GET /api/me", 35),
    ("GET /api/workspaces", 25),
    ("POST /api/token/refresh", 20),
    ("GET /api/blueprints/*/entities", 20),
)
# A late answer is a 504 after 2 x timeout: the fake does not act on the call (no refresh token spent, no
# cookie rotated) after the middleware gave up on it. See the note on committing latency in docs/soak.md.
FAULT_KINDS: Dict[str, Dict[str, str]] = {
    "500": {"status": "500", "message": "injected fault"},
    "502": {"status": "502", "message": "injected fault"},
    "503": {"status": "503", "message": "injected fault"},
    "malformed": {"malformed": "1"},
    "timeout": {"latency": str(2 * TIMEOUT), "status": "504", "message": "injected fault (late)"},
    "drop": {"drop": "1"},
    # Hostile answers (fake_server.HOSTILE): a 1 MiB streamed body over the apps' 64 KiB max_upstream_body,
    # JSON nested past the parser's recursion limit, non-ASCII tokens in a refresh payload, and Set-Cookie
    # headers no browser could be given (qlt_0=中文, Max-Age=²) on a real answer.
    "oversize": {"hostile": "oversize"},
    "nested": {"hostile": "nested"},
    "bad-token": {"hostile": "bad-token"},
    "bad-cookie": {"hostile": "bad-cookie"},
}
# The request SDK's answers are the app's to read (qelos-sdk parses them): hostile bodies go to the
# endpoints the middleware reads itself.
MIDDLEWARE_READS = ("GET /api/me", "GET /api/workspaces", "POST /api/token/refresh")
MAX_UPSTREAM_BODY = 64 * 1024
# --late-commits: the late answer is the real one, so the fake acts on a call the middleware gave up on.
LATE_COMMIT = {"latency": str(2 * TIMEOUT)}
# What the /sdk route reports when the handler's own SDK call met an injected fault.
SDK_FAULTS = re.compile(
    r"^(ReadTimeout|WriteTimeout|ConnectTimeout|PoolTimeout|RemoteProtocolError|ReadError|ConnectError"
    r"|JSONDecodeError|RecursionError|QelosAPIError: injected fault)"
)
# The middleware's documented WARNING lines (docs/faults.md); anything else on stderr is a finding.
DESIGNED_LOG = re.compile(
    r"^(could not resolve the Qelos user: |the Qelos user resolved but the workspace list did not )"
)
FORGED_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAifQ.Zm9yZ2VkLXNpZ25hdHVyZQ"
)


class HardTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that no `except Exception` swallows it."""


@dataclass
class SimClient:
    name: str
    app: str
    kind: str
    username: str
    http: httpx.AsyncClient
    headers: Dict[str, str] = field(default_factory=dict)

    @property
    def scenario(self) -> str:
        return f"{self.app}/{self.kind}"


@dataclass
class Tally:
    outcomes: Counter[Tuple[str, str]] = field(default_factory=Counter)
    undesigned: Counter[Tuple[str, str, str]] = field(default_factory=Counter)
    examples: List[str] = field(default_factory=list)
    server_errors: List[str] = field(default_factory=list)
    transport_errors: List[str] = field(default_factory=list)
    requests: int = 0
    refresh_cookies: int = 0
    session_rotations: int = 0


def _body_code(body: Dict[str, Any]) -> Tuple[str, str, Optional[str]]:
    """(code, form, sdk_error): `{"code": ...}` is the middleware's form, `{"detail": {...}}` FastAPI's."""
    # The middleware's own bodies: {"code"} (401) and {"code", "message"} (503).
    if isinstance(body.get("code"), str) and set(body) in ({"code"}, {"code", "message"}):
        return body["code"], "middleware", None
    detail = body.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        sdk_error = detail.get("sdk_error")
        return detail["code"], "detail", sdk_error if isinstance(sdk_error, str) else None
    return "?", "other", None


def classify(app: str, kind: str, route: str, response: httpx.Response) -> Tuple[str, bool]:
    """A label for the answer, and whether it is one that docs/faults.md designs for this client and route."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    valid = kind in VALID_KINDS
    gated = app == "gated"
    if not isinstance(body, dict):
        return f"{status} (not a JSON object)", False
    if status == 200:
        if body.get("user"):
            return "200 user", valid
        if route == "/optional" and body.get("error") == "QELOS_UNAVAILABLE":
            return "200 anonymous, error=QELOS_UNAVAILABLE", kind != "anonymous" and not gated
        if route == "/optional" and body.get("error") is None:
            return "200 anonymous", not valid and not gated
        return f"200 {body!r}"[:80], False
    if status not in (401, 503):
        return f"{status}", False
    code, form, sdk_error = _body_code(body)
    expected = "UNAUTHORIZED" if status == 401 else "QELOS_UNAVAILABLE"
    if status == 401:
        header_ok = response.headers.get("www-authenticate", "").lower().startswith("bearer")
    else:
        header_ok = response.headers.get("retry-after") == "5"
    ok = code == expected and header_ok
    ok = ok and (not valid if status == 401 else kind != "anonymous")
    if sdk_error is not None:
        label = f"{status} {code} (sdk: {sdk_error.split(':', 1)[0]})"
        ok = ok and route == "/sdk" and valid and bool(SDK_FAULTS.match(sdk_error))
    else:
        label = f"{status} {code} ({form})"
        # require_auth=True denies before any route; require_user denies on the others; /optional never denies.
        ok = ok and (form == "middleware" if gated else form == "detail" and route != "/optional")
    return label, ok


def set_cookie(client: SimClient, name: str, value: str) -> None:
    client.http.cookies.set(name, value, domain=LOOPBACK, path="/")


def jar_values(client: SimClient, name: str) -> List[str]:
    return [cookie.value or "" for cookie in client.http.cookies.jar if cookie.name == name]


async def one_request(client: SimClient, route: str, tally: Tally, app_stderr: Dict[str, Server]) -> Optional[str]:
    tally.requests += 1
    try:
        response = await client.http.get(route, headers=client.headers)
    except httpx.HTTPError as exc:
        tally.transport_errors.append(f"{client.name} GET {route}: {type(exc).__name__}: {exc}")
        return None
    for header in response.headers.get_list("set-cookie"):
        tally.refresh_cookies += header.startswith("q_refresh_token=")
        tally.session_rotations += header.startswith(f"{SESSION_COOKIE}=")
    label, ok = classify(client.app, client.kind, route, response)
    tally.outcomes[(client.scenario, label)] += 1
    if response.status_code >= 500 and response.status_code != 503:
        stderr_tail = "\n".join(app_stderr[client.app].stderr().splitlines()[-30:])
        tally.server_errors.append(
            f"{client.name} GET {route} -> {response.status_code}: {response.text[:500]}\n"
            f"--- stderr tail of the {client.app} app ---\n{stderr_tail}"
        )
    if not ok:
        tally.undesigned[(client.scenario, route, label)] += 1
        if len(tally.examples) < 20:
            tally.examples.append(f"{client.name} GET {route} -> {response.status_code} {response.text[:300]}")
    return label


async def run_client(
    client: SimClient, rng: random.Random, count: int, deadline: float, tally: Tally, apps: Dict[str, Server]
) -> None:
    for _ in range(count):
        if time.monotonic() >= deadline:
            return
        await one_request(client, rng.choice(ROUTES), tally, apps)


async def fault_controller(fake_url: str, rng: random.Random, stop: asyncio.Event, late_commits: bool) -> None:
    """Keep faults taken (+ still pending) at FAULT_RATE of all upstream calls, 1-4 calls per fault."""
    endpoints = [endpoint for endpoint, _ in FAULT_ENDPOINTS]
    weights = [weight for _, weight in FAULT_ENDPOINTS]
    async with httpx.AsyncClient(base_url=fake_url, trust_env=False, timeout=10.0) as admin:
        while not stop.is_set():
            state = (await admin.get("/__faults")).raise_for_status().json()
            if state["taken"] + state["pending"] < FAULT_RATE * state["upstream"]:
                kind = rng.choice(sorted(FAULT_KINDS))
                endpoint = rng.choices(endpoints, weights)[0]
                if "hostile" in FAULT_KINDS[kind] and endpoint not in MIDDLEWARE_READS:
                    endpoint = rng.choice(MIDDLEWARE_READS)
                params = {
                    "endpoint": endpoint,
                    "kind": kind,
                    "times": str(rng.randint(1, 4)),
                    **(LATE_COMMIT if late_commits and kind == "timeout" else FAULT_KINDS[kind]),
                }
                (await admin.post("/__inject", params=params)).raise_for_status()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def build_clients(admin: FakeAdmin, apps: Dict[str, Server]) -> List[SimClient]:
    clients: List[SimClient] = []
    for app, kind, count in MIX:
        for index in range(count):
            username = ("alice", "bob")[index % 2]
            # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them: otherwise a
            # client idle ~5 s at a phase boundary can race the server's close (RemoteProtocolError).
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=2.0)
            http = httpx.AsyncClient(base_url=apps[app].url, limits=limits, timeout=30.0, trust_env=False)
            client = SimClient(f"{app}/{kind}#{index}", app, kind, username, http)
            if kind == "bearer":
                client.headers = {"authorization": f"Bearer {admin.mint(username)['access_token']}"}
            elif kind == "token-cookies":
                tokens = admin.mint(username)
                set_cookie(client, "q_access_token", tokens["access_token"])
                set_cookie(client, "q_refresh_token", tokens["refresh_token"])
            elif kind == "session":
                cookie = admin.session_cookie(username)
                set_cookie(client, cookie["name"], cookie["value"])
            elif kind == "invalid" and index % 2:
                set_cookie(client, "q_access_token", FORGED_JWT)
                set_cookie(client, "q_refresh_token", FORGED_JWT)
            elif kind == "invalid":
                client.headers = {"authorization": f"Bearer {FORGED_JWT}"}
            clients.append(client)
    return clients


def advance_clock(admin: FakeAdmin, clients: Sequence[SimClient]) -> None:
    """Expire every access token and make every session cookie due for rotation; Bearer clients sign in anew."""
    admin.advance(ADVANCE)
    for client in clients:
        if client.kind == "bearer":
            client.headers = {"authorization": f"Bearer {admin.mint(client.username)['access_token']}"}


async def run_phase(
    clients: Sequence[SimClient],
    requests: int,
    deadline: float,
    tally: Tally,
    apps: Dict[str, Server],
    fake_url: str,
    rng: random.Random,
    late_commits: bool,
) -> None:
    # Every client gets its share, so fast clients (anonymous: no upstream call) do not crowd out the others.
    shares = [requests // len(clients) + (index < requests % len(clients)) for index in range(len(clients))]
    stop = asyncio.Event()
    controller = asyncio.create_task(fault_controller(fake_url, random.Random(rng.random()), stop, late_commits))
    rngs = [random.Random(rng.random()) for _ in clients]
    try:
        await asyncio.gather(
            *(run_client(c, r, n, deadline, tally, apps) for c, r, n in zip(clients, rngs, shares, strict=True))
        )
    finally:
        stop.set()
        await controller


def credential_state(admin: FakeAdmin, clients: Sequence[SimClient]) -> Dict[str, Tuple[str, bool, str]]:
    """For each browser: (its refresh token or session cookie, live at the fake?, problem or "")."""
    states: Dict[str, Tuple[str, bool, str]] = {}
    for client in clients:
        if client.kind not in ("token-cookies", "session"):
            continue
        name, kind = ("q_refresh_token", "refresh") if client.kind == "token-cookies" else (SESSION_COOKIE, "cookie")
        values = jar_values(client, name)
        if len(values) != 1:
            states[client.name] = ("", False, f"{len(values)} {name} cookies in the jar")
            continue
        state = admin.live(kind, values[0])
        problem = "" if state["live"] else ("spent/rotated away" if state["valid"] else "invalid or expired")
        states[client.name] = (values[0], state["live"], problem)
    return states


async def last_pass(clients: Sequence[SimClient], tally: Tally, apps: Dict[str, Server]) -> List[str]:
    """One fault-free request per client: authenticated for every credential holder, 401 for the others."""
    failures: List[str] = []

    async def check(client: SimClient) -> None:
        label = await one_request(client, "/required", tally, apps)
        wanted = "200 user" if client.kind in VALID_KINDS else "401 UNAUTHORIZED"
        if label is None or not label.startswith(wanted):
            failures.append(f"{client.name}: {label}")

    await asyncio.gather(*(check(c) for c in clients))
    return failures


@contextlib.contextmanager
def hard_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Optional[FrameType]) -> None:
        raise HardTimeout(f"stopped after {seconds}s")

    def terminate(signum: int, frame: Optional[FrameType]) -> None:
        raise SystemExit(128 + signum)

    previous_alarm = signal.signal(signal.SIGALRM, expire)
    previous_term = signal.signal(signal.SIGTERM, terminate)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)


@dataclass
class Report:
    tally: Tally = field(default_factory=Tally)
    main_requests: int = 0
    rss: Dict[str, List[Tuple[str, float, int]]] = field(default_factory=dict)
    faults: Dict[str, Any] = field(default_factory=dict)
    before: Dict[str, Tuple[str, bool, str]] = field(default_factory=dict)
    after: Dict[str, Tuple[str, bool, str]] = field(default_factory=dict)
    last_failures: List[str] = field(default_factory=list)
    stderr: Dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0
    finished: bool = False
    late_commits: bool = False


async def soak(total: int, seed: int, started: float, report: Report) -> None:
    rng = random.Random(seed)
    fake = fake_server()
    with running(fake):
        admin = FakeAdmin(fake.url)
        try:
            env = {
                "QELOS_API_TOKEN": admin.api_token("alice"),
                "QELOS_TIMEOUT": str(TIMEOUT),
                "QELOS_MAX_UPSTREAM_BODY": str(MAX_UPSTREAM_BODY),
            }
            apps = {
                name: app_server(target, fake.url, python_flags=["-W", "error"], env=env)
                for name, target in APPS.items()
            }
            with running(*apps.values()):
                clients = build_clients(admin, apps)
                try:
                    await drive(total, rng, started, report, admin, apps, clients, fake.url)
                finally:
                    for client in clients:
                        await client.http.aclose()
                    for name, server in apps.items():
                        server.stop()
                        report.stderr[name] = server.stderr()
        finally:
            admin.close()


async def drive(
    total: int,
    rng: random.Random,
    started: float,
    report: Report,
    admin: FakeAdmin,
    apps: Dict[str, Server],
    clients: List[SimClient],
    fake_url: str,
) -> None:
    tally = report.tally
    deadline = started + TRAFFIC_SECONDS
    late = report.late_commits

    def sample(label: str) -> None:
        for name, server in apps.items():
            report.rss.setdefault(name, []).append((label, rss_mb(server.pid), fds(server.pid)))

    # Warm-up, with faults and one clock jump, so that every code path has run before the RSS baseline.
    await run_phase(clients, WARMUP // 2, deadline, tally, apps, fake_url, rng, late)
    advance_clock(admin, clients)
    await run_phase(clients, WARMUP - WARMUP // 2, deadline, tally, apps, fake_url, rng, late)
    sample("warm-up")
    print(f"warm-up: {tally.requests} requests, {time.monotonic() - started:.0f}s", flush=True)
    done_before = tally.requests
    for phase in range(PHASES):
        advance_clock(admin, clients)
        share = total // PHASES + (total % PHASES if phase == PHASES - 1 else 0)
        await run_phase(clients, share, deadline, tally, apps, fake_url, rng, late)
        sample(f"phase {phase + 1}")
        faults = admin.faults()
        print(
            f"phase {phase + 1}/{PHASES}: {tally.requests - done_before} requests, "
            f"{faults['taken']}/{faults['upstream']} upstream calls faulted, "
            f"{time.monotonic() - started:.0f}s",
            flush=True,
        )
    report.main_requests = tally.requests - done_before
    report.faults = admin.faults()
    admin.clear_faults()
    report.before = credential_state(admin, clients)
    advance_clock(admin, clients)
    report.last_failures = await last_pass(clients, tally, apps)
    report.after = credential_state(admin, clients)
    sample("end")
    report.finished = True


def stderr_findings(stderr: str) -> Tuple[int, List[str]]:
    designed, other = 0, []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        if DESIGNED_LOG.match(line):
            designed += 1
        else:
            other.append(line)
    return designed, other


def print_report(report: Report, total: int, seed: int) -> bool:
    tally = report.tally
    print()
    print(
        f"{tally.requests:,} requests ({report.main_requests:,} measured after a {WARMUP:,}-request warm-up, "
        f"plus a last fault-free pass), seed {seed}, {sum(n for *_, n in MIX)} clients, {report.elapsed:.0f}s"
        + (", --late-commits" if report.late_commits else "")
    )
    print()
    rows = [[scenario, label, count] for (scenario, label), count in sorted(tally.outcomes.items())]
    print(table(["scenario (app/client)", "answer", "count"], rows))
    faults = report.faults
    if faults:
        print()
        by_kind = sorted(faults["by_kind"].items())
        print(table(["fault injected (endpoint | kind)", "calls taken"], [[k, v] for k, v in by_kind if v]))
        share = faults["taken"] / faults["upstream"] if faults["upstream"] else 0.0
        print(f"faulted upstream calls: {faults['taken']} of {faults['upstream']} ({share:.1%})")
    print(
        f"q_refresh_token cookies set (refreshes reaching a browser): {tally.refresh_cookies}; "
        f"{SESSION_COOKIE} rotations relayed: {tally.session_rotations}"
    )
    print()
    rss_rows = []
    for name, samples in report.rss.items():
        for label, rss, fd_count in samples:
            rss_rows.append([name, label, f"{rss:.1f}", fd_count])
    print(table(["app", "after", "RSS MB", "fds"], rss_rows))
    if tally.undesigned:
        print()
        print("answers outside the designed set:")
        rows = [[s, r, label, n] for (s, r, label), n in sorted(tally.undesigned.items())]
        print(table(["scenario", "route", "answer", "count"], rows))
        for example in tally.examples:
            print("  " + example)
    for error in tally.server_errors[:5]:
        print()
        print("500-class answer:", error)
    for error in tally.transport_errors[:10]:
        print("transport error:", error)

    growth = {
        name: samples[-1][1] - samples[0][1] for name, samples in report.rss.items() if report.finished and samples
    }
    designed_log = 0
    other_log: List[str] = []
    for name, stderr in report.stderr.items():
        count, lines = stderr_findings(stderr)
        designed_log += count
        other_log.extend(f"[{name}] {line}" for line in lines)
    lost_before = [f"{n}: {p}" for n, (_, live, p) in report.before.items() if not live]
    lost_after = [f"{n}: {p}" for n, (_, live, p) in report.after.items() if not live]
    unchanged = [n for n, (value, _, _) in report.after.items() if n in report.before and value == report.before[n][0]]
    five_hundreds = sum(
        n for (_, label), n in tally.outcomes.items() if label[:1] == "5" and not label.startswith("503")
    )
    browsers = len(report.before)
    checks = [
        ("measured requests", f"{report.main_requests:,}", f">= {total:,}", report.main_requests >= total),
        ("500 answers (any 5xx but a designed 503)", str(five_hundreds), "0", five_hundreds == 0),
        ("answers outside the designed set", str(sum(tally.undesigned.values())), "0", not tally.undesigned),
        ("transport errors client -> app", str(len(tally.transport_errors)), "0", not tally.transport_errors),
        (
            "share of upstream calls faulted",
            f"{faults.get('taken', 0) / max(1, faults.get('upstream', 0)):.1%}" if faults else "-",
            "3-7 %",
            bool(faults) and 0.03 <= faults["taken"] / max(1, faults["upstream"]) <= 0.07,
        ),
        (
            "browsers holding a spent refresh token / rotated-away cookie",
            f"{len(lost_before)} of {browsers}" if report.finished else "-",
            "0",
            report.finished and not lost_before and browsers > 0,
        ),
        (
            "last pass: credential holders authenticated, others 401",
            f"{len(report.last_failures)} failed" if report.finished else "-",
            "0 failed",
            report.finished and not report.last_failures,
        ),
        (
            "browsers rotated in the last pass, still live",
            f"{browsers - len(lost_after) - len(unchanged)} of {browsers}" if report.finished else "-",
            f"{browsers}",
            report.finished and not lost_after and not unchanged,
        ),
    ]
    for name, value in sorted(growth.items()):
        checks.append(
            (
                f"RSS growth warm-up -> end, {name} app",
                f"{value:+.2f} MB",
                f"< {RSS_GROWTH_LIMIT_MB:g} MB",
                value < RSS_GROWTH_LIMIT_MB,
            )
        )
    if not growth:
        checks.append(("RSS growth warm-up -> end", "-", f"< {RSS_GROWTH_LIMIT_MB:g} MB", False))
    checks.append(("other lines on app stderr (-W error)", str(len(other_log)), "0", not other_log))
    rows = [[name, value, target, "PASS" if ok else "FAIL"] for name, value, target, ok in checks]
    print()
    print(table(["check", "measured", "target", ""], rows))
    print(f"(documented WARNING lines on the apps' stderr: {designed_log})")
    for line in [*lost_before, *(f"after last pass: {x}" for x in lost_after), *report.last_failures][:20]:
        print("  " + line)
    for line in other_log[:40]:
        print("  stderr: " + line)
    passed = all(ok for *_, ok in checks)
    print()
    print("VERDICT:", "PASS" if passed else "FAIL")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--late-commits",
        action="store_true",
        help="late answers are real answers (the fake spends refresh tokens and rotates cookies after the "
        "middleware timed out): shows the lost rotations no client of Qelos can prevent; expected to FAIL",
    )
    args = parser.parse_args()
    total = max(PHASES, args.requests)
    started = time.monotonic()
    report = Report(late_commits=args.late_commits)
    try:
        with hard_limit(HARD_LIMIT_SECONDS):
            asyncio.run(soak(total, args.seed, started, report))
    except HardTimeout as exc:
        print(f"\n{exc}: the report below is partial", flush=True)
    report.elapsed = time.monotonic() - started
    sys.exit(0 if print_report(report, total, args.seed) else 1)


if __name__ == "__main__":
    main()

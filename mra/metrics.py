"""The server's counters, and the Prometheus text format they are scraped in (sans-I/O).

Where the numbers come from, so that they cannot disagree with the log:

* connections, logins, LMTP deliveries and session ends are counted from the log events that
  report them (`on_event`, subscribed to mailstore/log.py), as Dovecot's statistics are filters
  over its events: `connect`, `connect-refused`..., `login`, `login-failed`,
  `lmtp-delivery`, `lmtp-rcpt-refused`, `session-end`;
* command counts and latencies by the IMAP and POP3 dispatchers (`command`), one call a
  command, from when the command is dispatched to when its answer is complete;
* what is a state rather than an event (connections open, IDLE sessions, the thread pools'
  queues) by the network layer when it is scraped (`Registry.collectors`, set by
  mra/admin/service.py's `collectors`).

Each worker process keeps its own registry. A scrape reaches one worker (they share the port);
that worker asks the others over their control sockets (mra/net/control.py) for their
`snapshot()`s and `merge`s them with its own, so every scrape shows the whole server:
`mra_worker_processes` sums to the workers that answered, `mra_worker_processes_unanswered`
counts those that did not in time. Label values are ours (listener, protocol and command names
from the server's own tables, results from a fixed set), never a client's words: a client
cannot grow the number of series, and a family holds at most `[admin] metrics_max_series`
series anyway (`configure`).

Exposition follows the Prometheus text format 0.0.4: `# HELP`, `# TYPE`, then one sample a line,
histograms as cumulative `_bucket{le=...}` lines with `_sum` and `_count`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mailstore import __version__
from mra.session import Call, Delay, Output, Stream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Series per family ([admin] metrics_max_series, set by `configure` when the server starts):
# a bug naming series after input must not eat the memory.
_bounds = {"max_series": 2000}


def configure(max_series: int) -> None:
    _bounds["max_series"] = max_series


Labels = tuple[tuple[str, str], ...]
Snapshot = list[dict[str, Any]]


class Family:
    """One metric: its name, type, help and its series by label values."""

    def __init__(self, name: str, kind: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.kind = kind  # "counter", "gauge" or "histogram"
        self.help = help_text
        self.labels = labels
        self.values: dict[tuple[str, ...], Any] = {}

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...] | None:
        if values in self.values or len(self.values) < _bounds["max_series"]:
            return values
        return None

    def inc(self, *values: str, amount: float = 1.0) -> None:
        key = self._key(values)
        if key is not None:
            self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, *values: str, value: float) -> None:
        key = self._key(values)
        if key is not None:
            self.values[key] = float(value)

    def observe(self, *values: str, value: float) -> None:
        key = self._key(values)
        if key is None:
            return
        hist = self.values.get(key)
        if hist is None:
            hist = self.values[key] = [[0] * len(BUCKETS), 0.0, 0]
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                hist[0][i] += 1
                break
        hist[1] += value
        hist[2] += 1

    def snapshot(self) -> dict[str, Any]:
        samples = []
        for key, value in self.values.items():
            labels = dict(zip(self.labels, key, strict=True))
            if self.kind == "histogram":
                samples.append(
                    [labels, {"buckets": list(value[0]), "sum": value[1], "count": value[2]}]
                )
            else:
                samples.append([labels, value])
        return {"name": self.name, "type": self.kind, "help": self.help, "samples": samples}


class Registry:
    """The families of one process, and the functions that set its gauges when scraped."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self.collectors: list[Callable[[Registry], None]] = []

    def family(self, name: str, kind: str, help_text: str, *labels: str) -> Family:
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = Family(name, kind, help_text, labels)
        return fam

    def snapshot(self) -> Snapshot:
        for collect in self.collectors:
            try:
                collect(self)
            except Exception:
                pass  # a gauge that cannot be read this time is left as it was
        return [fam.snapshot() for fam in self.families.values()]


# -- the server's metrics ---------------------------------------------------------------------

REGISTRY = Registry()
_r = REGISTRY
CONNECTIONS = _r.family(
    "mra_connections_total",
    "counter",
    "Connections by listener: opened, and of those refused by a limit or an access rule.",
    "listener",
    "result",
)
OPEN = _r.family("mra_connections_open", "gauge", "Connections open now.", "listener")
LOGINS = _r.family(
    "mra_logins_total", "counter", "Logins by protocol and result.", "protocol", "result"
)
SESSIONS = _r.family(
    "mra_sessions_ended_total",
    "counter",
    "Sessions that ended, by protocol and why (logout, idle, kicked, shutdown...).",
    "protocol",
    "reason",
)
TRAFFIC = _r.family(
    "mra_session_bytes_total",
    "counter",
    "Octets of ended sessions, by protocol and direction (in: from clients).",
    "protocol",
    "direction",
)
COMMANDS = _r.family(
    "mra_commands_total", "counter", "Commands run, by name.", "protocol", "command"
)
LATENCY = _r.family(
    "mra_command_duration_seconds",
    "histogram",
    "Time from a command's dispatch to the end of its answer.",
    "protocol",
    "command",
)
DELIVERIES = _r.family(
    "mra_deliveries_total",
    "counter",
    "LMTP deliveries by recipient and result: delivered, deferred (4xx), rejected (5xx).",
    "result",
)
IDLE = _r.family("mra_idle_sessions", "gauge", "IMAP sessions in IDLE now.")
FALLBACKS = _r.family(
    "mra_inotify_fallbacks_total",
    "counter",
    "Times a folder was listed in full because inotify could not tell what changed.",
    "reason",
)
QUEUE = _r.family(
    "mra_threadpool_queue_depth", "gauge", "Work waiting for a thread, by pool.", "pool"
)
BUSY = _r.family("mra_threadpool_busy_threads", "gauge", "Threads working, by pool.", "pool")
INFO = _r.family("mra_info", "gauge", "1, with the version as a label.", "version")
INFO.set(__version__, value=1)
WORKERS = _r.family("mra_worker_processes", "gauge", "Worker processes answering this scrape.")
UNANSWERED = _r.family(
    "mra_worker_processes_unanswered",
    "gauge",
    "Worker processes that did not answer this scrape in time.",
)


def command(protocol: str, name: str, seconds: float) -> None:
    """A command finished (the dispatchers call this)."""
    COMMANDS.inc(protocol, name)
    LATENCY.observe(protocol, name, value=seconds)


_REFUSALS = {
    "connect-limit-total": "refused-total-limit",
    "connect-limit": "refused-address-limit",
    "connect-refused": "refused-access",
    "connect-discarded": "discarded-access",
    "access-check-failed": "failed-access-check",
}


def on_event(level: str, event: str, fields: Mapping[str, object]) -> None:
    """Count what a log event reports (subscribed to the log by the server)."""
    if event == "connect":
        CONNECTIONS.inc(str(fields.get("listener", "?")), "opened")
    elif event in _REFUSALS:
        CONNECTIONS.inc(str(fields.get("listener", "?")), _REFUSALS[event])
    elif event == "login":
        LOGINS.inc(str(fields.get("proto", "?")), "ok")
    elif event == "login-failed":
        LOGINS.inc(str(fields.get("proto", "?")), "failed")
    elif event == "lmtp-delivery":
        status = str(fields.get("status", ""))
        result = (
            "delivered"
            if status == "delivered"
            else "deferred"
            if status[:1] == "4"
            else "rejected"
        )
        DELIVERIES.inc(result)
    elif event == "lmtp-rcpt-refused":
        DELIVERIES.inc("refused-recipient")
    elif event == "session-end":
        proto = str(fields.get("proto", "?"))
        SESSIONS.inc(proto, str(fields.get("reason", "?")))
        for direction, key in (("in", "in"), ("out", "out")):
            value = fields.get(key)
            if isinstance(value, int):
                TRAFFIC.inc(proto, direction, amount=value)
    elif event == "inotify-watch-failed":
        FALLBACKS.inc("watch-failed")


# -- merging and exposition ------------------------------------------------------------------


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The families of several processes as one: counters, gauges and histograms summed by
    label values (a gauge of "open connections" sums to the server's)."""
    merged: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[Labels, Any]] = {}
    for snapshot in snapshots:
        for fam in snapshot:
            name = fam["name"]
            if name not in merged:
                merged[name] = {k: fam[k] for k in ("name", "type", "help")}
                series[name] = {}
            into = series[name]
            for labels, value in fam["samples"]:
                key: Labels = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
                if fam["type"] == "histogram":
                    old = into.get(key)
                    if old is None:
                        into[key] = {
                            "buckets": list(value["buckets"]),
                            "sum": value["sum"],
                            "count": value["count"],
                        }
                    else:
                        old["buckets"] = [
                            a + b for a, b in zip(old["buckets"], value["buckets"], strict=True)
                        ]
                        old["sum"] += value["sum"]
                        old["count"] += value["count"]
                elif name == "mra_info":
                    into[key] = 1.0
                else:
                    into[key] = into.get(key, 0.0) + value
    out: Snapshot = []
    for name, fam in merged.items():
        fam["samples"] = [[dict(key), value] for key, value in series[name].items()]
        out.append(fam)
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Mapping[str, str], extra: tuple[str, str] | None = None) -> str:
    items = sorted(labels.items())
    if extra is not None:
        items.append(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in items) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(snapshot: Snapshot) -> str:
    """The Prometheus text format of a (merged) snapshot."""
    lines: list[str] = []
    for fam in sorted(snapshot, key=lambda f: f["name"]):
        name, kind = fam["name"], fam["type"]
        lines.append(f"# HELP {name} {fam['help']}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in sorted(fam["samples"], key=lambda s: sorted(s[0].items())):
            if kind != "histogram":
                lines.append(f"{name}{_label_text(labels)} {_number(value)}")
                continue
            running = 0
            for bound, count in zip(BUCKETS, value["buckets"], strict=True):
                running += count
                lines.append(
                    f"{name}_bucket{_label_text(labels, ('le', _number(bound)))} {running}"
                )
            lines.append(f"{name}_bucket{_label_text(labels, ('le', '+Inf'))} {value['count']}")
            lines.append(f"{name}_sum{_label_text(labels)} {_number(value['sum'])}")
            lines.append(f"{name}_count{_label_text(labels)} {value['count']}")
    return "\n".join(lines) + "\n"


def timed(outputs: list[Output], protocol: str, name: str, started: float) -> list[Output]:
    """A command's outputs, with its end timed: now if none blocks, else when the last one's
    `then` gives outputs that do not (a thread's work, a stream's last chunk, a delay)."""
    last = outputs[-1] if outputs else None
    if isinstance(last, Call):
        then_call = last.then
        outputs = [
            *outputs[:-1],
            Call(last.fn, lambda r: timed(then_call(r), protocol, name, started), last.pool),
        ]
    elif isinstance(last, Stream):
        then_stream = last.then
        outputs = [
            *outputs[:-1],
            Stream(
                last.chunks, lambda: timed(then_stream(), protocol, name, started), last.threaded
            ),
        ]
    elif isinstance(last, Delay):
        then_delay = last.then
        outputs = [
            *outputs[:-1],
            Delay(last.seconds, lambda: timed(then_delay(), protocol, name, started)),
        ]
    else:
        command(protocol, name, time.monotonic() - started)
    return outputs

"""How the worker that took an admin request merges the other workers' answers with its own
(mra/admin/service.py `merge_results`), and how an answer names the workers that did not."""

from __future__ import annotations

import pytest

from mra import metrics
from mra.admin.protocol import AdminError, decode_full_answer, encode_answer
from mra.admin.service import merge_results


def snapshot(logins: float, fetch_latency: float) -> metrics.Snapshot:
    reg = metrics.Registry()
    reg.family("mra_logins_total", "counter", "Logins.", "protocol", "result").inc(
        "imap", "ok", amount=logins
    )
    reg.family("mra_worker_processes", "gauge", "Workers.").set(value=1)
    hist = reg.family("mra_command_duration_seconds", "histogram", "Latency.", "command")
    hist.observe("FETCH", value=fetch_latency)
    return reg.snapshot()


def test_who_kick_reload_and_stats_merge() -> None:
    a = [{"user": "alice", "pid": 10, "worker": 0}]
    b = [{"user": "bob", "pid": 11, "worker": 1}, {"user": "carol", "pid": 11, "worker": 1}]
    assert merge_results("who", [a, b]) == a + b
    assert merge_results("kick", [{"kicked": 0}, {"kicked": 2}]) == {"kicked": 2}
    assert merge_results("reload", [{"reloaded": True}] * 3) == {"reloaded": True, "workers": 3}
    merged = merge_results("stats", [snapshot(3, 0.002), snapshot(4, 7.0)])
    text = metrics.render(merged)  # type: ignore[arg-type]
    assert 'mra_logins_total{protocol="imap",result="ok"} 7\n' in text
    assert "mra_worker_processes 2\n" in text
    assert 'mra_command_duration_seconds_bucket{command="FETCH",le="0.0025"} 1\n' in text
    assert 'mra_command_duration_seconds_bucket{command="FETCH",le="+Inf"} 2\n' in text
    assert 'mra_command_duration_seconds_count{command="FETCH"} 2\n' in text


def test_attack_a_worker_answer_of_the_wrong_shape_is_refused() -> None:
    """A sibling's answer is data read from a socket: one of the wrong shape is not merged
    (the worker is reported as unanswered), never a crash in the merge."""
    with pytest.raises(AdminError):
        merge_results("who", [[], {"kicked": 1}])
    with pytest.raises(AdminError):
        merge_results("kick", [{"kicked": 1}, ["x"]])
    with pytest.raises(AdminError):
        merge_results("stats", [[], "text"])
    with pytest.raises(AdminError):
        merge_results("kick", [{"kicked": 1}, {"kicked": "many"}])
    with pytest.raises(AdminError):
        merge_results("stats", [[{"name": "x"}], []])  # a family without its samples


def test_an_answer_names_the_workers_that_did_not_answer() -> None:
    line = encode_answer([], unanswered=[{"worker": 1, "error": "no answer within 5 seconds"}])
    assert decode_full_answer(line) == ([], [{"worker": 1, "error": "no answer within 5 seconds"}])
    assert decode_full_answer(encode_answer({"kicked": 1})) == ({"kicked": 1}, [])
    with pytest.raises(AdminError):
        decode_full_answer(b'{"ok": true, "result": [], "unanswered": "x"}\n')

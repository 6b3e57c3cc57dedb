"""mda writes through the one logging path: `[log]` decides where its lines go."""

from __future__ import annotations

import json

from tests.mda.conftest import MSG, MdaEnv


def test_delivery_line_goes_to_the_configured_log(env: MdaEnv) -> None:
    log_path = env.base / "mail.log"
    env.write_config(f'[log]\ntarget = "file"\npath = "{log_path}"\nformat = "json"\n')
    proc = env.run("-f", "sender@remote.test", "-d", "bob@example.test", stdin=MSG)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert records[-1]["event"] == "mda-delivery" and records[-1]["program"] == "mda"
    assert records[-1]["recipients"] == "bob@example.test" and records[-1]["status"] == 0
    assert records[-1]["sender"] == "sender@remote.test"
    assert len(env.messages("bob@example.test")) == 1


def test_unwritable_log_file_does_not_defer_the_mail(env: MdaEnv) -> None:
    env.write_config(f'[log]\ntarget = "file"\npath = "{env.base}/no/such/dir/mail.log"\n')
    proc = env.run("-d", "bob@example.test", stdin=MSG)
    assert proc.returncode == 0, proc.stderr
    assert len(env.messages("bob@example.test")) == 1

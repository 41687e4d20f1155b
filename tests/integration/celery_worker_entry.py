"""Test-only entry point: ``ktrack worker`` whose apply stage is a stand-in (no kernel needed).

Run as ``python celery_worker_entry.py [ktrack args] worker ...``. It replaces the apply stage in
``tracker.pipeline.stages.STAGE_FUNCS`` before the worker forks its pool, so every pool process
runs the stand-in. The stand-in sleeps ``KTRACK_TEST_STAGE_SECONDS`` and appends one line per
*completed* stage execution to ``KTRACK_TEST_EXEC_LOG`` (key, pid), which the tests count.
Production code has no hook for this: the tests patch the table here, in the worker process.
"""

from __future__ import annotations

import os
import sys
import time

from tracker import cli
from tracker.pipeline import stages
from tracker.pipeline.stages import JobState
from tracker.vocab import Outcome, Stage, Status


def fake_apply(state: JobState) -> Outcome:
    time.sleep(float(os.environ.get("KTRACK_TEST_STAGE_SECONDS", "0.2")))
    log = state.log(Stage.APPLY)
    log.write_text(f"stand-in apply of {state.spec.key}\n", encoding="utf-8")
    record = os.environ.get("KTRACK_TEST_EXEC_LOG")
    if record:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{state.spec.key} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    return Outcome(Status.PASS, "stand-in apply", detail={"patches": []}, log=log)


if __name__ == "__main__":
    stages.STAGE_FUNCS[Stage.APPLY] = fake_apply
    sys.exit(cli.main(sys.argv[1:]))

"""Test-only entry point: ``ktrack worker`` whose stages are stand-ins (no kernel needed).

Run as ``python celery_worker_entry.py [ktrack args] worker ...``. It replaces every stage in
``tracker.pipeline.stages.STAGE_FUNCS`` before the worker forks its pool, so every pool process
runs the stand-ins. A stand-in sleeps ``KTRACK_TEST_STAGE_SECONDS`` and appends one line per
*completed* execution of the apply stage to ``KTRACK_TEST_EXEC_LOG`` (key, pid, stage; later
stages add a line with their stage name), which the tests count. Production code has no hook for
this: the tests patch the table here, in the worker process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from tracker import cli
from tracker.pipeline import stages
from tracker.pipeline.stages import JobState
from tracker.vocab import Outcome, Stage, Status


def stand_in(stage: Stage) -> Callable[[JobState], Outcome]:
    def run(state: JobState) -> Outcome:
        time.sleep(float(os.environ.get("KTRACK_TEST_STAGE_SECONDS", "0.2")))
        log = state.log(stage)
        log.write_text(f"stand-in {stage.value} of {state.spec.key}\n", encoding="utf-8")
        record = os.environ.get("KTRACK_TEST_EXEC_LOG")
        if record:
            name = "" if stage is Stage.APPLY else f".{stage.value}"
            fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{state.spec.key}{name} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
        return Outcome(Status.PASS, f"stand-in {stage.value}", detail={"patches": []}, log=log)

    return run


if __name__ == "__main__":
    for each in Stage:
        stages.STAGE_FUNCS[each] = stand_in(each)
    sys.exit(cli.main(sys.argv[1:]))

"""``ktrack run``: plan the matrix, run every job not already done, record the results."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from typing import Any

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--patchset",
        action="append",
        default=[],
        metavar="NAME[@VER]",
        help="patch set to run (repeatable; default: every tracked one)",
    )
    p.add_argument(
        "--kernels",
        metavar="SPEC",
        help="releases to cover, e.g. '>=6.1', '6.1.*,6.12.*' or '>=6.1,latest'; 'latest' alone: "
        "the newest of each series among each set's [track] kernels (default: those releases)",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="ARCH:CONFIG",
        help="target to cover (repeatable; default: each set's [track] targets)",
    )
    p.add_argument(
        "--stages",
        default="apply,configure,build,boot,test",
        metavar="LIST",
        help="stages to run, comma-separated; earlier stages are implied (default: all)",
    )
    p.add_argument(
        "--executor",
        choices=("inline", "local", "celery"),
        default="local",
        help="where jobs run (default: local process pool)",
    )
    p.add_argument(
        "-j", "--jobs", type=int, default=None, metavar="N", help="parallel jobs (local executor)"
    )
    p.add_argument(
        "--fail-on-new", action="store_true", help="exit 1 when the run opens a new regression"
    )
    p.add_argument(
        "--rerun",
        metavar="STATUSES",
        default="",
        help="judge finished jobs with these statuses again, e.g. 'fail,error' or 'all' (a new "
        "attempt; the old one stays in the history). By default a finished job is reused unless "
        "it ended in error or the toolchain that judged it changed",
    )
    p.add_argument(
        "--no-bisect",
        action="store_true",
        help="do not bisect newly broken pairs (by default the culprit commit is searched "
        "when the store has the history between the last good and the first bad release)",
    )
    p.add_argument(
        "--trigger", default="manual", help="what started the run (manual, schedule, ci)"
    )
    p.add_argument(
        "--job",
        action="append",
        default=[],
        metavar="KEY",
        help="run only the planned job with this key (repeatable; from "
        "`ktrack plan --format github-matrix`)",
    )
    p.add_argument(
        "--export",
        metavar="FILE",
        help="also write the run's results as JSON (ktrack.results/1) for `ktrack import`",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tracker.pipeline import executors, record
    from tracker.pipeline.plan import plan
    from tracker.safetext import printable
    from tracker.vocab import Stage

    signal.signal(signal.SIGTERM, executors.interrupt_once)
    signal.signal(signal.SIGINT, executors.interrupt_once)
    settings = ctx.settings
    db = ctx.db
    stages = Stage.parse_list(args.stages)
    rerun = parse_rerun(args.rerun)
    with db.session() as s:
        jobs = plan(
            settings,
            s,
            patchsets=args.patchset,
            kernels=args.kernels,
            stages=stages,
            targets=args.target,
        )
    if args.job:
        from tracker.pipeline.exchange import pick_jobs

        jobs = pick_jobs(jobs, args.job)
    argv = (
        ["ktrack", *sys.argv[1:]]
        if sys.argv and sys.argv[0].endswith("ktrack")
        else ["ktrack", "run"]
    )
    with db.session() as s:
        run = record.start_run(s, {"argv": argv, "jobs": len(jobs)}, trigger=args.trigger)
        run_id = run.id
    ctx.info(f"run {run_id}: {len(jobs)} job(s); reproduce with: {shlex.join(argv)}")
    executors.clean_stale_work(settings)
    results: list[executors.JobDone] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", markup=False),  # names: never markup
        console=ctx.err,
        transient=False,
        disable=ctx.args.quiet,
    )
    status = "done"
    try:
        with progress:
            task = progress.add_task(f"run {run_id}", total=len(jobs), last="")

            def on_done(done: executors.JobDone) -> None:
                results.append(done)
                where = f"{done.stage}:{done.status}" if done.stage else done.status
                if done.cause and done.cause != "verdict":
                    where += f" ({done.cause})"
                tag = " (reused)" if done.reused else ""
                last = printable(f"{done.label}: {where}{tag}")
                progress.update(task, advance=1, last=last)
                if not done.reused:
                    line = printable(f"  {done.label}: {where} {done.summary}"[:300])
                    progress.console.print(line, markup=False)

            if args.executor == "inline":
                executors.run_inline(settings, db, jobs, run_id, on_done, rerun=rerun)
            elif args.executor == "local":
                workers = args.jobs or executors.default_workers(settings)
                executors.run_local(settings, db, jobs, run_id, on_done, workers, rerun=rerun)
            else:
                from tracker.pipeline.celery_app import run_celery

                run_celery(settings, db, jobs, run_id, on_done, ctx, rerun=rerun)
    except KeyboardInterrupt:
        status = "interrupted"
        ctx.err.print(
            f"ktrack: run {run_id} interrupted after {len(results)} of {len(jobs)} job(s); "
            f"finished results are kept. Resume with: {shlex.join(argv)}",
            markup=False,
        )
        return 130
    finally:
        with db.session() as s:
            record.finish_run(s, s.get_one(record.Run, run_id), status)
    if args.export:
        from pathlib import Path

        from tracker.pipeline import exchange

        with db.session() as s:
            document = exchange.export_jobs(
                s, [j.key for j in jobs], artifacts_root=settings.artifacts
            )
        exchange.write_file(Path(args.export), document)
        ctx.info(f"exported {len(document['jobs'])} job result(s) to {args.export}")
    new = _regressions(ctx, run_id)
    if new and not args.no_bisect:
        from tracker.bisect.service import bisect_new_regressions

        for found in bisect_new_regressions(settings, db, new):
            ctx.console.print(found.line(), markup=False)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
    reused = sum(1 for r in results if r.reused)
    ctx.console.print(
        f"run {run_id}: {len(results)} job(s): {summary or 'none'}; {reused} reused", markup=False
    )
    ctx.console.print("see the matrix with: ktrack matrix", markup=False)
    return exit_code(ctx, results, new_breakage=bool(args.fail_on_new and new))


def parse_rerun(text: str) -> frozenset[Any]:
    """``--rerun``: a comma-separated list of statuses, or ``all``."""
    from tracker.errors import UserError
    from tracker.vocab import Status

    names = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in names:
        return frozenset(Status)
    try:
        return frozenset(Status(n) for n in names)
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise UserError(
            f"--rerun: unknown status in {text!r} (known: {known}, or all)",
            hint="e.g. --rerun fail,error",
        ) from None


def exit_code(ctx: Context, results: list[Any], *, new_breakage: bool) -> int:
    """The exit code of a run, read from each job's cause (never its summary's wording).

    Every finding is printed; the code names the most actionable one, in this order:
    1 a new breakage the caller asked to fail on (``--fail-on-new``): a verdict is never masked
    by an unrelated error elsewhere; 2 a job whose input is invalid (``bad-input``: a broken
    patch set or settings), named; 3 an infrastructure error (no verdict; the next run retries
    it); else 0. An ``upstream`` job (the release fails without the patch set too) is reported
    as having no verdict and does not change the code.
    """
    from tracker.safetext import printable
    from tracker.vocab import Cause, Status

    def of(cause: Cause) -> list[Any]:  # a status's cause; unrecorded: the one it implies
        out = []
        for r in results:
            implied = Cause.default_for(Status(r.status))
            if (r.cause or (implied.value if implied else None)) == cause.value:
                out.append(r)
        return out

    upstream, bad, infra = of(Cause.UPSTREAM), of(Cause.BAD_INPUT), of(Cause.INFRASTRUCTURE)
    if upstream:
        ctx.err.print(
            f"ktrack: {len(upstream)} job(s) have no verdict: the release fails there without the "
            "patch set too (a compiler, config or QEMU the release does not work with)",
            markup=False,
        )
    for r in bad:
        line = printable(f"ktrack: bad input: {r.label}: {r.summary}")
        ctx.err.print(line[:400], markup=False)
    if infra:
        ctx.err.print(
            f"ktrack: {len(infra)} job(s) ended in an infrastructure error "
            "(no verdict; they are retried by the next run)",
            markup=False,
        )
    if new_breakage:
        return 1
    if bad:
        return 2
    return 3 if infra else 0


def _regressions(ctx: Context, run_id: int) -> list[Any]:
    from tracker.results.regressions import update_regressions

    with ctx.db.session() as s:
        delta = update_regressions(s, run_id)
        new = list(delta.new)
    for reg in new:
        ctx.console.print(f"new regression: {reg}", markup=False)
    return new

"""Fixtures of the Celery tests: a private PostgreSQL database, a private redis-server, ktrack
workers as real processes (each with its own data dir, as on separate hosts, sharing one
artifacts dir), a TCP proxy that can cut the database away, and helpers that read the results.

Imported explicitly by tests/integration/test_celery*.py and bench/bench_celery.py.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracker import proc

ROOT = Path(__file__).resolve().parents[2]
ENTRY = Path(__file__).resolve().parent / "celery_worker_entry.py"
PG_BASE = os.environ.get("KTRACK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CELERY_DB = os.environ.get("KTRACK_TEST_CELERY_DB", "ktrack_celery_test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fresh_database(name: str = CELERY_DB) -> str:
    """A PostgreSQL database of our own with an empty public schema; returns its URL."""
    from sqlalchemy import create_engine, text

    base, _ = PG_BASE.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")  # always there
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{base}/{name}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


class RedisServer:
    """A redis-server of our own on a loopback port, without persistence (a restart loses all)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [proc.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = proc.spawn(argv, cwd=self.workdir, stdin=None, stdout=log, stderr=log)
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None:
            proc.kill(self.process)
            self.process = None

    def restart(self, down: float = 2.0) -> None:
        self.kill()
        time.sleep(down)
        self.start()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` drops every connection and refuses new ones
    until ``restore()`` (the database "briefly unreachable")."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.cuts = 0
        self._generation = 0  # bumped by cut(): a connection accepted before it must not survive

    def start(self) -> None:
        self._listen()

    def _listen(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(64)
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst, self._generation), daemon=True).start()

    def _accept(self, lst: socket.socket, generation: int) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if generation != self._generation:  # cut() ran while this one was connecting
                    client.close()
                    upstream.close()
                    return
                self._socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.cuts += 1
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            self._generation += 1
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self.cut()


@dataclass
class Cluster:
    """Everything a Celery test talks to."""

    tmp: Path
    db_url: str
    redis: RedisServer
    artifacts: Path
    exec_log: Path
    workers: list[Any] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def config_file(self, name: str, db_url: str | None = None) -> Path:
        path = self.tmp / f"{name}.toml"
        path.write_text(
            f'[database]\nurl = "{db_url or self.db_url}"\n'
            f'[celery]\nbroker = "{self.redis.url}"\n'
            f'[store]\nartifacts = "{self.artifacts}"\n',
            encoding="utf-8",
        )
        return path

    def settings(self, db_url: str | None = None) -> Any:
        from tracker import config

        path = self.config_file("coordinator", db_url)
        return config.load(path, home=str(self.tmp / "coordinator"))

    def start_worker(
        self,
        *,
        concurrency: int = 1,
        lease: float = 3.0,
        stage_seconds: float = 0.2,
        db_url: str | None = None,
        entry: Path | None = None,
        extra_env: dict[str, str] | None = None,
        queues: str = "ktrack.apply,ktrack.heavy",
        host: int | None = None,
    ) -> Any:
        n = len(self.workers)
        log = self.tmp / f"worker{n}.log"
        argv = [
            sys.executable,
            str(entry or ENTRY),
            "--config",
            str(self.config_file(f"w{n}", db_url)),
        ]
        home = self.tmp / f"host{n if host is None else host}"
        argv += ["--home", str(home), "worker", "-c", str(concurrency)]
        argv += ["--lease", str(lease), "--name", f"w{n}@test", "--loglevel", "INFO", "-Q", queues]
        env = {
            "KTRACK_TEST_EXEC_LOG": str(self.exec_log),
            "KTRACK_TEST_STAGE_SECONDS": str(stage_seconds),
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        with log.open("ab") as fh:
            worker = proc.spawn(argv, cwd=ROOT, env=env, stdin=None, stdout=fh, stderr=fh)
        self.workers.append(worker)
        self.logs.append(log)
        return worker

    def kill9(self, worker: Any) -> None:
        """``kill -9`` of a whole worker: its main process and its pool children."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_all(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                try:
                    os.killpg(w.pid, signal.SIGTERM)
                    w.wait(timeout=15)
                except (ProcessLookupError, Exception):
                    self.kill9(w)

    def executions(self) -> Counter[str]:
        if not self.exec_log.exists():
            return Counter()
        return Counter(line.split()[0] for line in self.exec_log.read_text().splitlines() if line)

    def executing_pids(self) -> set[int]:
        if not self.exec_log.exists():
            return set()
        return {int(line.split()[1]) for line in self.exec_log.read_text().splitlines() if line}

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def make_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Body of the ``cluster`` fixture each test module declares."""
    try:
        url = fresh_database()
    except Exception as exc:  # the service is part of the test setup (scripts/services starts it)
        pytest.fail(f"PostgreSQL on {PG_BASE} is needed: {exc}")
    from tracker.results.db import Database

    Database(url).dispose()  # migrate once, before any worker starts
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    c = Cluster(tmp_path, url, redis, tmp_path / "shared-artifacts", tmp_path / "executions.log")
    try:
        yield c
    finally:
        c.stop_all()
        redis.kill()


# --- generated releases and patch sets -------------------------------------------------------

FILES = ["kernel/fork.c", "fs/proc/base.c", "mm/mmap.c", "net/core/dev.c"]
FUNCS = ["copy_process", "proc_pid_status", "do_mmap", "netif_rx"]
RELEASES = ["6.1"] + [f"6.1.{k}" for k in range(1, 10)]
SETS = 4


def _source(n: int, func: str) -> list[str]:
    body = [f"/* {FILES[n]} line {i} */\n" for i in range(1, 80)]
    return body + [f"int {func}(void)\n", "{\n", "\treturn 0;\n", "}\n"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_feed(root: Path) -> Path:
    """Ten tagged releases: each adds a header line to one file (offsets), and from 6.1.7 on
    ``do_mmap`` is renamed (a conflict for the patch sets that touch it)."""
    repo = root / "linux"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "master")
    files = {FILES[n]: _source(n, FUNCS[n]) for n in range(len(FILES))}
    for k, release in enumerate(RELEASES):
        if k:
            files[FILES[k % 4]] = [f"/* added in {release} */\n", *files[FILES[k % 4]]]
        if release == "6.1.7":
            files["mm/mmap.c"] = [
                line.replace("do_mmap", "do_mmap_region") for line in files["mm/mmap.c"]
            ]
        for rel, lines in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text("".join(lines))
        (repo / "Makefile").write_text(f"# Linux {release}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"Linux {release}")
        _git(repo, "tag", f"v{release}")
    return repo


def make_patchsets(ws: Path, sets: int = SETS) -> None:
    """``sets`` quilt patch sets of two patches each, tracking every release."""
    for i in range(sets):
        folder = ws / "patches" / f"set{i}" / "1.0"
        folder.mkdir(parents=True)
        names = []
        for j, n in enumerate((i % 4, (i + 1) % 4)):
            before = _source(n, FUNCS[n])
            after = [*before[:-2], f"\tset{i}_hook{j}();\n", *before[-2:]]
            diff = difflib.unified_diff(before, after, f"a/{FILES[n]}", f"b/{FILES[n]}")
            name = f"000{j + 1}-set{i}-{n}.patch"
            (folder / name).write_text(f"Subject: [PATCH] set{i} hook {j}\n\n---\n" + "".join(diff))
            names.append(name)
        (folder / "series").write_text("\n".join(names) + "\n")
        (ws / "patches" / f"set{i}" / "patchset.toml").write_text(
            f'name = "set{i}"\nsummary = "generated"\n\n[[versions]]\nversion = "1.0"\n'
            'base = "6.1"\nformat = "quilt"\nsource = "1.0"\nstrip = 1\nfuzz = 0\n\n'
            '[track]\nkernels = ">=6.1"\ntargets = ["x86_64:tinyconfig"]\n'
        )


# --- a catalog and jobs without kernels --------------------------------------------------------


def seed_jobs(db_url: str, count: int, *, stages: tuple[str, ...] = ("apply",)) -> list[Any]:
    """``count`` apply jobs over synthetic releases (catalog rows added here)."""
    from tracker.pipeline.plan import JobSpec
    from tracker.results.db import Database
    from tracker.results.models import KernelRelease
    from tracker.versions import KernelVersion

    releases = [f"6.1.{i}" for i in range(1, 11)]
    db = Database(db_url)
    with db.session() as s:
        for r in releases:
            v = KernelVersion.parse(r)
            s.add(
                KernelRelease(version=str(v), series=v.series, moniker=v.moniker.value, feed="test")
            )
    db.dispose()
    jobs = []
    for i in range(count):
        jobs.append(
            JobSpec(
                patchset=f"set{i // len(releases)}",
                version="1.0",
                content_hash=f"{i // len(releases):064x}",
                manifest="/nonexistent/patchset.toml",
                release=releases[i % len(releases)],
                target="x86_64:tinyconfig",
                stages=stages,
            )
        )
    return jobs


class Ctx:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)


@dataclass
class Coordinator:
    """``run_celery`` in a thread, as ``ktrack run --executor celery`` drives it."""

    run_id: int
    done: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None
    ctx: Ctx = field(default_factory=Ctx)

    def wait(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), (
            f"the run did not finish in {timeout} s: {len(self.done)} done; {self.ctx.messages}"
        )
        if self.error is not None:
            raise self.error


def start_run(c: Cluster, jobs: list[Any], db_url: str | None = None, **kwargs: Any) -> Coordinator:
    from tracker.pipeline import record
    from tracker.pipeline.celery_app import run_celery
    from tracker.results.db import Database

    settings = c.settings(db_url)
    db = Database(settings.db_url)
    with db.session() as s:
        run_id = record.start_run(s, {"argv": ["test"], "jobs": len(jobs)}).id
    co = Coordinator(run_id)

    def body() -> None:
        try:
            run_celery(settings, db, jobs, run_id, co.done.append, co.ctx, **kwargs)
        except BaseException as exc:
            co.error = exc
        finally:
            db.dispose()

    co.thread = threading.Thread(target=body, daemon=True)
    co.thread.start()
    return co


def wait_until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def check_exactly_once(
    db_url: str, jobs: list[Any], done: list[Any], *, all_released: bool = True
) -> dict[str, Any]:
    """Every planned job reported once, finished, with one result row per stage; returns the job
    rows by key for further checks."""
    from sqlalchemy import func, select

    from tracker.pipeline.stages import closed_stages
    from tracker.results.db import Database
    from tracker.results.models import Job, JobClaim, StageResult

    keys = [j.key for j in jobs]
    reported = Counter(d.key for d in done)
    assert set(reported) == set(keys), f"missing: {set(keys) - set(reported)}"
    assert max(reported.values()) == 1, (
        f"reported twice: {[k for k, n in reported.items() if n > 1]}"
    )
    db = Database(db_url)
    try:
        with db.session() as s:
            rows = {j.key: j for j in s.scalars(select(Job).where(Job.key.in_(keys)))}
            assert len(rows) == len(keys)
            per_job = dict(
                s.execute(
                    select(StageResult.job_id, func.count()).group_by(StageResult.job_id)
                ).all()
            )
            for key, job in rows.items():
                assert job.finished, f"{key} not finished: {job.summary}"
                assert job.status == "pass", f"{key}: {job.status} {job.summary}"
                assert per_job.get(job.id) == len(closed_stages(tuple(job.stages.split(",")))), key
            claims = {c.key: c for c in s.scalars(select(JobClaim).where(JobClaim.key.in_(keys)))}
            assert not all_released or all(c.state == "released" for c in claims.values()), [
                (c.key, c.state, c.note) for c in claims.values() if c.state != "released"
            ]
            return {"jobs": rows, "claims": claims}
    finally:
        db.dispose()

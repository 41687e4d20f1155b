"""Property-based fuzzing of every parser that reads untrusted input: whatever the input, the
result is a value or a KtrackError (UserError for input files; InfraError for what a remote feed
served), never another exception. Counts of cases per parser are the ``max_examples`` below."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker.errors import KtrackError, UserError

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_DIFF = (
    b"diff --git a/kernel/fork.c b/kernel/fork.c\n"
    b"index 1111111..2222222 100644\n"
    b"--- a/kernel/fork.c\n+++ b/kernel/fork.c\n"
    b"@@ -1,3 +1,4 @@\n a\n b\n+c\n d\n"
    b"diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n"
)

diff_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"--- a/x.c",
                b"+++ b/x.c",
                b"@@ -1,2 +1,3 @@",
                b"@@ -0,0 +1 @@",
                b" ctx",
                b"+add",
                b"-del",
                b"\\ No newline at end of file",
                b"diff --git a/x b/x",
                b"rename from a",
                b"rename to ../b",
                b"new file mode 100755",
                b"deleted file mode 100644",
                b"GIT binary patch",
                b"literal 5",
                b"--- /dev/null",
                b"+++ /etc/passwd",
                b"@@ -99999999999,1 +1 @@",
                b"Binary files a and b differ",
                b"similarity index 90%",
                b"copy from x",
                b"copy to y",
                b"old mode 100644",
                b"new mode 100755",
            ]
        ),
        st.binary(max_size=30),
    ),
    max_size=40,
)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), diff_lines.map(lambda ls: b"\n".join(ls) + b"\n")))
@example(VALID_DIFF)
@example(b"@@ -1 +1 @@\n-a\n+b\n")
def test_diff_parser(data: bytes) -> None:
    from tracker.patchsets.diff import parse_patch

    try:
        patch = parse_patch(data, name="fuzz.patch", strip=1)
    except UserError:
        return
    for f in patch.files:  # every path that survives parsing stays inside the tree
        for path in (
            getattr(f, "old_path", None),
            getattr(f, "new_path", None),
            getattr(f, "path", None),
        ):
            if isinstance(path, str):
                assert not path.startswith("/") and ".." not in path.split("/")


@FUZZ
@given(st.binary(max_size=1000))
@example(b"# comment\n\n0001-a.patch -p0\n0002-b.patch\n")
@example(b"../../etc/passwd\n")
def test_series_file_parser(data: bytes) -> None:
    from tracker.patchsets.formats import parse_series_file

    try:
        entries = parse_series_file(data, "series", 1)
    except UserError:
        return
    for name, strip in entries:
        assert isinstance(name, str) and strip >= 0


toml_values = st.recursive(
    st.one_of(st.text(max_size=20), st.integers(-5, 5), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=500),
        st.dictionaries(
            st.sampled_from(["name", "summary", "homepage", "versions", "track", "extra"]),
            toml_values,
            max_size=5,
        ).map(lambda d: "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in d.items())),
        st.lists(
            st.dictionaries(
                st.sampled_from(
                    ["version", "base", "format", "source", "strip", "fuzz", "kconfig", "tests"]
                ),
                toml_values,
                max_size=8,
            ),
            max_size=3,
        ).map(
            lambda vs: (
                'name = "x"\n'
                + "".join(
                    "[[versions]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in t.items())
                    for t in vs
                )
            )
        ),
    )
)
def test_manifest_loader(text: str) -> None:
    from tracker.patchsets.manifest import load_manifest

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set" / "patchset.toml"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            manifest = load_manifest(path)
        except UserError as exc:
            assert "patchset.toml" in str(exc)  # the error names the file
            return
        assert manifest.name


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
release_entry = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(
            st.sampled_from(["6.1", "6.12-rc3", "next-20240521", "2.6.32.71", "../x", ""]),
            json_values,
        ),
        "moniker": st.one_of(
            st.sampled_from(["mainline", "stable", "longterm", "linux-next"]), json_values
        ),
        "iseol": json_values,
        "source": st.one_of(
            st.sampled_from(
                [
                    "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.tar.xz",
                    "file:///etc/passwd",
                    "javascript:alert(1)",
                ]
            ),
            json_values,
        ),
        "pgp": json_values,
        "released": st.one_of(
            st.fixed_dictionaries({"timestamp": json_values, "isodate": json_values}), json_values
        ),
    },
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(release_entry, max_size=5).map(lambda rs: json.dumps({"releases": rs}).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
    )
)
def test_releases_json_parser(data: bytes) -> None:
    from tracker.releases.kernelorg import parse_releases_json

    try:
        releases = parse_releases_json(
            data,
            url="https://k.invalid/releases.json",
            root="https://k.invalid",
            feed="fuzz",
            warn=lambda _msg: None,
        )
    except KtrackError:
        return
    assert isinstance(releases, list)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=800),
        st.lists(
            st.tuples(
                st.text("0123456789abcdefABCDEF", min_size=60, max_size=66), st.text(max_size=30)
            ),
            max_size=8,
        ).map(
            lambda rows: (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
                + "\n".join(f"{d}  {n}" for d, n in rows)
                + "\n-----BEGIN PGP SIGNATURE-----\nxx\n"
            )
        ),
    )
)
def test_sha256sums_parser(text: str) -> None:
    from tracker.releases.sha256sums import parse

    try:
        sums = parse(text)
    except KtrackError:
        return
    for name, digest in sums.items():
        assert isinstance(name, str) and len(digest) == 64


@FUZZ
@given(st.text(max_size=800))
@example('<a href="linux-6.1.tar.xz">linux-6.1.tar.xz</a> 11-Dec-2022 18:00')
@example('<a href="../">../</a><a href="/etc/">x</a>')
def test_cdn_index_parser(body: str) -> None:
    from tracker.releases.cdn import parse_index

    try:
        entries = parse_index(body)
    except KtrackError:
        return
    assert isinstance(entries, list)


FUZZ_TOKEN = "5f0c2a7e9b1d4c3e8a6f2b0d9c7e1a43"
console_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "KTRACK-BOOT-OK",
                "KTRACK-TEST a pass",
                f"KTRACK:{FUZZ_TOKEN} BOOT-OK",
                f"KTRACK:{FUZZ_TOKEN} TEST a pass",
                f"KTRACK:{FUZZ_TOKEN} TEST a pass",
                f"KTRACK:{FUZZ_TOKEN} TEST b fail boom",
                f"KTRACK:{FUZZ_TOKEN} TEST c weird",
                f"KTRACK:{FUZZ_TOKEN} TESTS-DONE rc=0",
                f"KTRACK:{FUZZ_TOKEN} TESTS-DONE rc=99999999999999999999",
                "UBSAN: shift-out-of-bounds in a.c:1:2",
                "INFO: task swapper/0:1 blocked for more than 120 seconds.",
                "Kernel panic - not syncing: VFS: Unable to mount root fs",
                "BUG: kernel NULL pointer dereference",
                "Oops: 0000 [#1] SMP",
                "WARNING: CPU: 0 PID: 1 at kernel/fork.c:10 copy_process+0x1/0x2",
                "RIP: 0010:copy_process+0x12/0x40",
                "[    0.000000] Linux version 6.1.0",
                "\x1b[31mred\x1b[0m",
                "\r",
            ]
        ),
        st.text(max_size=80),
    ),
    max_size=60,
)


@FUZZ
@given(console_lines.map("\n".join))
def test_console_log_parser(text: str) -> None:
    from tracker.boot.console import parse

    try:
        report = parse(text, token=FUZZ_TOKEN)
    except KtrackError:
        return
    assert report is not None


@FUZZ
@given(st.text(max_size=1500))
@example("init/main.c:12:5: error: expected ';' before '}' token\n")
@example("ld: vmlinux.o: undefined reference to `foo'\n")
def test_build_log_parser(text: str) -> None:
    from tracker.build import logparse

    try:
        result = logparse.parse(text)
    except KtrackError:
        return
    assert result is not None


@FUZZ
@given(st.text(max_size=1000))
@example('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n')
def test_kconfig_parser(text: str) -> None:
    from tracker.build.kconfig import parse_config

    try:
        values = parse_config(text)
    except KtrackError:
        return
    assert all(isinstance(k, str) for k in values)

"""PGP checks with a keyring made by the test: kernel.org's .sign covers the uncompressed tar,
sha256sums.asc is clear-signed. A bad signature is an infrastructure error (exit 3).
Needs gpg and gpgv (Debian: gnupg, gpgv)."""

from __future__ import annotations

import json
import lzma
import subprocess
from pathlib import Path

import pytest
from conftest_releases import build_site, serve, sha256, sums_asc

from tracker.cli import main


def _gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        input=input,
        capture_output=True,
        check=True,
    ).stdout


@pytest.fixture
def signer(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(home, "--quick-gen-key", "Kernel Test <kernel@test.invalid>", "ed25519", "sign", "never")
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(_gpg(home, "--export"))
    return home, keyring


def _sign_site(site: Path, home: Path) -> None:
    for folder in (site / "pub/linux/kernel").iterdir():
        for tb in folder.glob("*.tar.xz"):
            tar = tb.with_suffix("")  # linux-X.tar
            sig = _gpg(home, "--detach-sign", "--armor", input=lzma.decompress(tb.read_bytes()))
            tar.with_suffix(".tar.sign").write_bytes(sig)
        sums = sums_asc({p.name: sha256(p) for p in folder.glob("*.tar.xz")})
        body = sums.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]
        (folder / "sha256sums.asc").write_bytes(_gpg(home, "--clearsign", input=body.encode()))


def _run(tmp_path: Path, url: str, keyring: Path, *args: str) -> tuple[int, str]:
    cfg = tmp_path / "ktrack.toml"
    cfg.write_text(f'[feeds.kernelorg]\nkind = "kernelorg"\nurl = "{url}"\nkeyring = "{keyring}"\n')
    rc = main(["--config", str(cfg), "--home", str(tmp_path / "home"), *args])
    return rc, ""


def test_signed_site_verifies_and_tampering_is_exit_3(
    signer: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, keyring = signer
    site = build_site(tmp_path / "site", ["6.1", "6.1.1"])
    _sign_site(site, home)
    with serve(site) as (url, _):
        assert _run(tmp_path, url, keyring, "releases", "sync")[0] == 0
        assert _run(tmp_path, url, keyring, "fetch", "6.1")[0] == 0
        capsys.readouterr()
        # a signature over other bytes: the tarball's checksum is fine, its signature is not
        other = _gpg(home, "--detach-sign", "--armor", input=b"something else")
        (site / "pub/linux/kernel/v6.x/linux-6.1.1.tar.sign").write_bytes(other)
        rc, _ = _run(tmp_path, url, keyring, "fetch", "6.1.1")
        err = capsys.readouterr().err
        assert rc == 3 and "bad or unverifiable PGP signature on linux-6.1.1.tar.xz" in err
        assert not list((tmp_path / "home").rglob("linux-6.1.1.tar.xz"))
        rc, _ = _run(tmp_path, url, keyring, "releases", "list", "--json")
        rows = {r["version"]: r for r in json.loads(capsys.readouterr().out)["releases"]}
        assert rows["6.1"]["in_store"] and not rows["6.1.1"]["in_store"]
        # an altered sha256sums.asc fails the sync itself
        sums = site / "pub/linux/kernel/v6.x/sha256sums.asc"
        sums.write_text(sums.read_text().replace("linux-6.1.tar.xz", "linux-6.1.tar.gz"))
        rc, _ = _run(tmp_path, url, keyring, "releases", "sync")
        assert rc == 3 and "sha256sums.asc" in capsys.readouterr().err

"""A fake kernel tree for the configure and build unit tests (imported explicitly).

Its Makefile answers the goals ktrack runs (``tinyconfig``, ``defconfig``, ``olddefconfig``,
``bzImage``) with tiny Python scripts: ``olddefconfig`` keeps the last assignment of each symbol
declared in ``Kconfig`` whose single ``depends on`` symbol is set, like the real one does for
simple cases, then prints ``CONFIG_STDERR`` (if present) and exits with ``CONFIG_RC``; ``bzImage`` prints the contents of ``BUILD_STDERR`` (if present) to stderr and
exits with the number in ``BUILD_RC`` (default 0), writing the image only on success. Every
make invocation's arguments are appended to ``O/make-calls``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MAKEFILE = """\
O ?= .
PY := {python}
record = @mkdir -p $(O) && echo "$(MAKECMDGOALS) ARCH=$(ARCH) CC=$(CC) LOCALVERSION=$(LOCALVERSION)" >> $(O)/make-calls
tinyconfig defconfig:
\t$(record)
\t@cp $(CURDIR)/base.config $(O)/.config
olddefconfig:
\t$(record)
\t@$(PY) $(CURDIR)/olddef.py $(O)/.config $(CURDIR)/Kconfig
bzImage Image:
\t$(record)
\t@$(PY) $(CURDIR)/fakebuild.py $(CURDIR) $(O) $@
"""

OLDDEF = r"""
import os, re, sys
config, kconfig = sys.argv[1], sys.argv[2]
decl = {}
cur = None
for line in open(kconfig):
    m = re.match(r"config (\w+)", line)
    if m:
        cur = m[1]; decl[cur] = None
    m = re.match(r"\s+depends on (\w+)", line)
    if m and cur:
        decl[cur] = m[1]
vals = {}
for line in open(config):
    line = line.strip()
    m = re.match(r"CONFIG_(\w+)=(.*)", line) or re.match(r"# CONFIG_(\w+) is not set", line)
    if m:
        vals[m[1]] = m[2] if m.lastindex == 2 else "n"
out = {}
for sym, val in vals.items():
    if sym in decl and (decl[sym] is None or vals.get(decl[sym], "n") != "n"):
        out[sym] = val
with open(config, "w") as fh:
    for sym in decl:
        v = out.get(sym, "n")
        fh.write(f"# CONFIG_{sym} is not set\n" if v == "n" else f"CONFIG_{sym}={v}\n")
src = os.path.dirname(kconfig)
if os.path.exists(os.path.join(src, "CONFIG_STDERR")):
    sys.stderr.write(open(os.path.join(src, "CONFIG_STDERR")).read())
if os.path.exists(os.path.join(src, "CONFIG_RC")):
    sys.exit(int(open(os.path.join(src, "CONFIG_RC")).read()))
"""

FAKEBUILD = r"""
import os, sys
src, out, goal = sys.argv[1:4]
err = os.path.join(src, "BUILD_STDERR")
if os.path.exists(err):
    sys.stderr.write(open(err).read().replace("@SRC@", src))
rc = int(open(os.path.join(src, "BUILD_RC")).read()) if os.path.exists(os.path.join(src, "BUILD_RC")) else 0
if rc == 0:
    path = os.path.join(out, "arch/x86/boot/bzImage" if goal == "bzImage" else "arch/arm64/boot/Image")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(b"fake kernel image")
sys.exit(rc)
"""

KCONFIG = """\
config 64BIT
\tbool "64-bit kernel"

config PRINTK
\tbool "printk"
"""


def fake_kernel(root: Path, *, symbols: str = "", base: str = "CONFIG_64BIT=y\n") -> Path:
    """A fake kernel tree at ``root`` whose Kconfig declares the x86_64 boot options plus
    ``symbols`` (Kconfig text); ``base`` is what tinyconfig/defconfig write."""
    from tracker.build.kconfig import BOOT_OPTIONS

    root.mkdir(parents=True, exist_ok=True)
    # the real interpreter, not the venv link: the sandbox hides /tmp, where a checkout may live
    (root / "Makefile").write_text(MAKEFILE.format(python=os.path.realpath(sys.executable)))
    (root / "olddef.py").write_text(OLDDEF)
    (root / "fakebuild.py").write_text(FAKEBUILD)
    kconfig = "".join(f'config {s}\n\tbool "{s}"\n\n' for s in BOOT_OPTIONS["x86_64"])
    (root / "Kconfig").write_text(kconfig + symbols)
    (root / "base.config").write_text(base)
    return root

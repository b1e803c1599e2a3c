"""Build a git ref of this repository for the A/B bench: its tree exported into
bench/.against/<sha>/src (`git archive`: a plain tree, nothing registered in the repository's
git metadata that other worktrees share), a venv of its own in bench/.against/<sha>/venv, and
the ref installed there with `pip install -e` from the ref's own pyproject.toml / setup.py (its
C extensions built from its own sources). A second run finds the directory and reuses it.

Dependencies: the ref's venv sees this venv's site-packages (a .pth path line, not processed
for the .pth files inside, so this tree's own editable `engine` stays invisible there) and the
ref is installed with --no-deps --no-build-isolation: the same numba, numpy, picows as the
working tree, offline, in seconds. A ref whose dependencies differ from those installed here is
measured with the versions installed here (the A/B is about the engine's code).

    ref = build("c28ed38")      # Ref(sha, src, python, mm); raises BuildError with the log
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import io
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".against"
BUILD_TIMEOUT_S = 600


class BuildError(RuntimeError):
    """The ref could not be resolved, exported or installed (the message says where the log is)."""


@dataclass(frozen=True)
class Ref:
    name: str          # as asked: "c28ed38", "HEAD~3", a branch
    sha: str
    src: Path
    python: Path
    mm: Path
    subject: str       # the commit's first line


def _git(*args: str, repo: Path = ROOT) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if r.returncode:
        raise BuildError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def resolve(ref: str, repo: Path = ROOT) -> tuple[str, str]:
    """(full sha, subject) of `ref` in `repo`."""
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}", repo=repo)
    return sha, _git("log", "-1", "--format=%s", sha, repo=repo)


def build(ref: str, repo: Path = ROOT, cache: Path = CACHE, log=print) -> Ref:
    """The ref's tree and venv, built once per sha under `cache`."""
    sha, subject = resolve(ref, repo)
    home = cache / sha
    src, venv = home / "src", home / "venv"
    python, mm = venv / "bin" / "python", venv / "bin" / "mm"
    done = home / ".built"
    if done.exists() and mm.exists():
        return Ref(ref, sha, src, python, mm, subject)
    log(f"against: building {ref} ({sha[:10]}) in {home} (once; reused by later runs)")
    if home.exists():
        shutil.rmtree(home)
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha],
                             capture_output=True)
    if archive.returncode:
        raise BuildError(f"git archive {sha}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(src)
    _run([sys.executable, "-m", "venv", str(venv)], home / "build.log")
    purelib = Path(sysconfig.get_paths()["purelib"])
    ref_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                    "get_paths()['purelib'])"], capture_output=True, text=True,
                                   check=True).stdout.strip())
    (ref_site / "zz_working_tree_deps.pth").write_text(f"{purelib}\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
          str(src)], home / "build.log", cwd=src)
    if not mm.exists():
        raise BuildError(f"{ref}: no mm entry point after the install; see {home / 'build.log'}")
    if _share_numba_cache(ROOT / "engine", src / "engine"):
        log(f"against: {ref}'s engine/ is this tree's, byte for byte: numba's cache copied")
    done.write_text(f"{sha}\n{subject}\n")
    return Ref(ref, sha, src, python, mm, subject)


def _share_numba_cache(ours: Path, theirs: Path) -> bool:
    """Copy our numba cache files into `theirs` when every .py file of the two packages is
    the same (then every compiled function, its callees and the constants it froze are too),
    with our sources' mtimes (numba keys its index by the source's mtime and size). Anything
    less than identical compiles afresh: numba does not notice a changed callee elsewhere."""
    mine = {p.relative_to(ours): p for p in ours.rglob("*.py")}
    other = {p.relative_to(theirs): p for p in theirs.rglob("*.py")}
    if set(mine) != set(other) or any(mine[k].read_bytes() != other[k].read_bytes()
                                      for k in mine):
        return False
    for rel, p in mine.items():
        st = p.stat()
        os.utime(other[rel], ns=(st.st_atime_ns, st.st_mtime_ns))
    for f in list(ours.rglob("__pycache__/*.nbi")) + list(ours.rglob("__pycache__/*.nbc")):
        dest = theirs / f.relative_to(ours)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    return True


def _run(cmd: list[str], log_path: Path, cwd: Path | None = None) -> None:
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                           timeout=BUILD_TIMEOUT_S)
    if r.returncode:
        raise BuildError(f"{' '.join(cmd[:4])} ... failed (status {r.returncode}); see {log_path}")

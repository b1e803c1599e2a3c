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
KEEP = 6                       # builds kept in the cache (the least recently used go)


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
        done.touch()                   # recently used
        return Ref(ref, sha, src, python, mm, subject)
    _prune(cache, KEEP - 1)
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
    shared = _share_numba_cache(ROOT / "engine", src / "engine")
    if shared:
        log(f"against: numba's cache of {shared} module(s) copied (they and what they import "
            f"are this tree's, byte for byte)")
    done.write_text(f"{sha}\n{subject}\n")
    return Ref(ref, sha, src, python, mm, subject)


def _prune(cache: Path, keep: int) -> None:
    """Remove all but the `keep` most recently used builds (each is a source tree and a venv)."""
    builds = sorted((d for d in cache.glob("*") if (d / ".built").exists()),
                    key=lambda d: (d / ".built").stat().st_mtime, reverse=True)
    for d in builds[keep:]:
        shutil.rmtree(d, ignore_errors=True)


def _share_numba_cache(ours: Path, theirs: Path) -> int:
    """Copy our numba cache files into `theirs` when every module that uses numba and every
    engine module those import, directly or not (callees, the constants compiled code froze),
    are the same there byte for byte; with our sources' mtimes (numba keys its index by the
    source's mtime and size). Returns how many modules' caches were copied; 0 means the ref
    compiles afresh (numba itself would not notice a changed callee in another module). A ref
    that changed only pure-Python parts (the sender, the feed's Python) shares the quoter's."""
    copied = 0
    # compiled code reaches other compiled code through imports the text does not show (the
    # strategies are dispatched by name): every module that uses numba counts for every other
    jitted = set()
    for f in ours.rglob("*.py"):
        if b"numba" in f.read_bytes():
            jitted |= _imports(ours, f)
    if not all(_same(f, theirs / f.relative_to(ours)) for f in jitted):
        return 0
    for nbi_dir in ours.rglob("__pycache__"):
        for module in {f.name.split(".")[0] for f in nbi_dir.glob("*.nbi")}:
            src = nbi_dir.parent / f"{module}.py"
            if not src.exists():
                continue
            closure = _imports(ours, src) | jitted
            for f in closure:
                st = f.stat()
                os.utime(theirs / f.relative_to(ours), ns=(st.st_atime_ns, st.st_mtime_ns))
            dest = theirs / nbi_dir.relative_to(ours)
            dest.mkdir(parents=True, exist_ok=True)
            for f in list(nbi_dir.glob(f"{module}.*.nbi")) + list(nbi_dir.glob(f"{module}.*.nbc")):
                shutil.copy2(f, dest / f.name)
            copied += 1
    return copied


def _same(a: Path, b: Path) -> bool:
    return b.exists() and a.read_bytes() == b.read_bytes()


def _imports(pkg: Path, first: Path) -> set[Path]:
    """`first` and every file of package `pkg` it imports, transitively (static: every import
    statement anywhere in the file), with the packages' __init__.py files on the way."""
    import ast

    root = pkg.parent
    seen: set[Path] = set()
    todo = [first]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        rel = f.relative_to(root).with_suffix("")
        parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        here = parts if rel.name == "__init__" else parts[:-1]
        for i in range(1, len(here) + 1):               # the packages it lives in
            todo.append(root.joinpath(*here[:i], "__init__.py"))
        for node in ast.walk(ast.parse(f.read_bytes())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                mod = base + (node.module.split(".") if node.module else [])
                names = [".".join(mod)] + [".".join(mod + [a.name]) for a in node.names]
            for name in names:
                if name.split(".")[0] != pkg.name:
                    continue
                p = root.joinpath(*name.split("."))
                for cand in (p.with_suffix(".py"), p / "__init__.py"):
                    if cand.exists():
                        todo.append(cand)
                for i in range(1, len(name.split("."))):
                    init = root.joinpath(*name.split(".")[:i], "__init__.py")
                    if init.exists():
                        todo.append(init)
    return {f for f in seen if f.exists()}


def _run(cmd: list[str], log_path: Path, cwd: Path | None = None) -> None:
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                           timeout=BUILD_TIMEOUT_S)
    if r.returncode:
        raise BuildError(f"{' '.join(cmd[:4])} ... failed (status {r.returncode}); see {log_path}")

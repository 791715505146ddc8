"""The app under test: ``python app.py`` as a child process on 127.0.0.1, always stopped at the end.

The child gets its own TMPDIR and GRADIO_TEMP_DIR inside a fresh work directory, so the temp
files it leaves can be counted (and are removed with the directory), and its RSS and open file
descriptors are read from /proc.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from ocr.settings import ROOT

log = logging.getLogger("benchmarks.loadtest")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ProcSample:
    """One look at the server process, after ``requests`` requests."""

    requests: int
    seconds: float
    rss_mb: float
    fds: int
    temp_files: int      # regular files under the server's TMPDIR
    gradio_files: int    # regular files under its GRADIO_TEMP_DIR (uploads and output pictures)
    gradio_dirs: int
    model_hooks: int | None = None
    in_flight: int | None = None
    fd_kinds: dict[str, int] | None = None  # what the open fds are: socket, pipe, anon_inode, file ...
    gradio_stale: int | None = None  # Gradio cache files older than the sweep allows (not there at start)


def count_tree(root: Path | None) -> tuple[int, int]:
    """(files, directories) below ``root``; a file deleted while walking is simply not counted."""
    if root is None or not root.exists():
        return 0, 0
    files = dirs = 0
    for _, dirnames, filenames in os.walk(root):
        files += len(filenames)
        dirs += len(dirnames)
    return files, dirs


def stale_files(root: Path | None, older_than: float, ignore: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    """Files below ``root`` whose inode changed more than ``older_than`` s ago (``ignore``: paths to skip)."""
    if root is None or not root.exists():
        return 0
    now, count = time.time(), 0
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                count += path not in ignore and now - os.lstat(path).st_ctime > older_than
            except FileNotFoundError:
                pass
    return count


def list_files(root: Path | None) -> set[str]:
    if root is None or not root.exists():
        return set()
    return {os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid: int) -> dict[str, int]:
    """Open fds by kind (``socket``, ``pipe``, ``anon_inode:[eventfd]``, ``/dev``, or a file's folder)."""
    kinds: dict[str, int] = {}
    folder = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(folder):
        try:
            target = os.readlink(folder / fd)
        except OSError:
            continue
        if target.startswith(("socket:", "pipe:")):
            kind = target.split(":")[0]
        elif target.startswith("anon_inode:"):
            kind = target
        elif target.startswith("/dev/"):
            kind = "/dev"
        else:
            kind = str(Path(target).parent)
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def sample_process(pid: int, requests: int, started: float, temp_dir: Path | None,
                   gradio_dir: Path | None) -> ProcSample:
    temp_files, _ = count_tree(temp_dir)
    gradio_files, gradio_dirs = count_tree(gradio_dir)
    return ProcSample(requests, time.perf_counter() - started, rss_mb(pid), open_fds(pid), temp_files,
                      gradio_files, gradio_dirs, fd_kinds=fd_kinds(pid))


class AppServer:
    """``with AppServer(threads=2) as server: ... server.url``: app.py on a free loopback port.

    ``env`` adds or overrides environment variables of the child (e.g. ``OCR_API_QUEUE``).
    Examples are not pre-read at start (``OCR_WARM_EXAMPLES=0``) so the run starts on an idle server.
    """

    def __init__(self, *, threads: int = 2, env: dict[str, str] | None = None, startup_timeout: float = 240.0,
                 keep_dir: bool = False, stale_after: float | None = None) -> None:
        self.threads = threads
        self.stale_after = stale_after  # a Gradio cache file older than this should have been swept
        self._initial_files: set[str] | None = None
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.proc: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def temp_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "tmp"

    @property
    def gradio_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "gradio"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.log"

    def start(self) -> "AppServer":
        self.workdir = Path(tempfile.mkdtemp(prefix="ocr-loadtest-"))
        self.temp_dir.mkdir()
        self.gradio_dir.mkdir()
        self.port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "OCR_THREADS": str(self.threads),
               "OMP_NUM_THREADS": str(self.threads), "TMPDIR": str(self.temp_dir),
               "GRADIO_TEMP_DIR": str(self.gradio_dir), "OCR_WARM_EXAMPLES": "0",
               "GRADIO_ANALYTICS_ENABLED": "False", **self.extra_env}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("app pid %d serving on %s (work dir %s)", self.pid, self.url, self.workdir)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the app did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def sample(self, requests: int, started: float) -> ProcSample:
        sample = sample_process(self.pid, requests, started, self.temp_dir, self.gradio_dir)
        if self._initial_files is None:  # the examples Gradio copied at start stay by design
            self._initial_files = list_files(self.gradio_dir)
        if self.stale_after is not None:
            sample.gradio_stale = stale_files(self.gradio_dir, self.stale_after, self._initial_files)
        return sample

    def stop(self) -> None:
        """SIGTERM to the child's process group, SIGKILL after 15 s; then remove the work directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                log.warning("the app ignored SIGTERM; killing it")
                _signal_group(proc, signal.SIGKILL)
                proc.wait(15)
        if self.workdir is not None and not self.keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # its own session: the group is the app and nothing else
    except ProcessLookupError:
        pass


def health(client: httpx.Client, url: str, timeout: float = 10.0) -> dict:
    r = client.get(url + "/api/v1/health", timeout=timeout)
    r.raise_for_status()
    return r.json()


def wait_idle(client: httpx.Client, url: str, timeout: float = 300.0, poll: float = 0.5) -> bool:
    """Wait until the API has no request in flight (abandoned calls included); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not health(client, url).get("in_flight"):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    return False


__all__ = ["AppServer", "ProcSample", "free_port", "health", "sample_process", "wait_idle"]

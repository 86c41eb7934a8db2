"""Files are safe: outputs that are devices or FIFOs are written in place (never replaced),
an output that names an input is refused, inputs that are not regular files are refused at
once, and a write that fails (full disk, file too large) is one message and exit 2 after
the outcome, with no partial file left. Through real subprocesses (``python -m tracer``).
"""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from conftest import tracer_cli

TINY = """\
name: tiny
primitives:
  L: lock
actors:
  - name: a
    kind: thread
    steps:
      - acquire: L
      - release: L
  - name: b
    kind: thread
    steps:
      - acquire: L
      - release: L
"""

DEADLOCK = """\
name: dl
primitives: {A: lock, B: lock, go: {type: barrier, parties: 2}}
actors:
  - {name: t1, kind: thread, steps: [{acquire: A}, {wait: go}, {acquire: B}]}
  - {name: t2, kind: thread, steps: [{acquire: B}, {wait: go}, {acquire: A}]}
"""


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-1500:]


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2 with one error line on stderr (after `run`'s status line, if it ran)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    no_traceback(proc)
    lines = proc.stderr.splitlines()
    if lines and lines[0].startswith("running "):
        lines = lines[1:]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tracer: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], proc.stderr


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture
def trace(tiny: Path) -> Path:
    proc = tracer_cli("run", "-q", tiny.name, "-o", "t.json", cwd=tiny.parent)
    assert proc.returncode == 0, proc.stderr
    return tiny.parent / "t.json"


def leftovers(folder: Path) -> list[str]:
    """Temporary or empty files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith(".tmp") or (p.is_file() and p.stat().st_size == 0))


# ---------------------------------------------------------------------------------------------
# outputs that are not regular files


def test_output_through_a_link_to_dev_null_leaves_the_device(tiny: Path) -> None:
    link = tiny.parent / "null.json"
    link.symlink_to("/dev/null")
    proc = tracer_cli("run", tiny.name, "-o", link.name, cwd=tiny.parent)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is still a device"
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert "tiny: ok" in proc.stdout
    # no graphs "beside" a device: nothing new in the folder, nothing in /dev
    assert sorted(p.name for p in tiny.parent.iterdir()) == ["null.json", "tiny.yaml"]
    assert not list(Path("/dev").glob("null.*"))


def test_output_symlink_to_a_file_stays_a_link(tiny: Path) -> None:
    real = tiny.parent / "real.json"
    real.write_text("old", encoding="utf-8")
    link = tiny.parent / "link.json"
    link.symlink_to(real.name)
    proc = tracer_cli("run", "-q", tiny.name, "-o", link.name, cwd=tiny.parent)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert orjson.loads(real.read_bytes())["scenario"]["name"] == "tiny"


def test_output_fifo_is_written_in_place(tiny: Path) -> None:
    fifo = tiny.parent / "pipe.json"
    os.mkfifo(fifo)
    # a reader holds the FIFO open (as `tracer run -o pipe.json & jq . pipe.json` would);
    # the trace fits in the pipe's buffer, so no thread is needed to drain it
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(fifo, os.O_WRONLY)  # so that the reader sees EOF only when we say so
    try:
        proc = tracer_cli("run", "-q", tiny.name, "-o", fifo.name, cwd=tiny.parent)
        os.close(keep)
        keep = -1
        chunks = []
        while chunk := os.read(reader, 1 << 16):
            chunks.append(chunk)
    finally:
        if keep >= 0:
            os.close(keep)
        os.close(reader)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "still a FIFO, not replaced by a file"
    trace = orjson.loads(b"".join(chunks))
    assert trace["scenario"]["name"] == "tiny"
    assert trace["outcome"]["status"] == "ok"


def test_output_fifo_nobody_reads_is_refused_without_hanging(tiny: Path) -> None:
    fifo = tiny.parent / "pipe.json"
    os.mkfifo(fifo)
    proc = tracer_cli("run", tiny.name, "-o", fifo.name, cwd=tiny.parent, timeout=30)
    refused(proc, "cannot write the trace to pipe.json: no program is reading this FIFO")
    assert "tiny: ok" in proc.stdout, "the outcome is printed first"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_chrome_export_to_a_link_to_dev_null(trace: Path) -> None:
    link = trace.parent / "null.json"
    link.symlink_to("/dev/null")
    proc = tracer_cli("export", trace.name, "--chrome", link.name, cwd=trace.parent)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink()


@pytest.mark.parametrize(("args", "start"), [
    (("report", "t.json", "-o", "/dev/stdout"), "<!DOCTYPE html>"),
    (("export", "t.json", "--chrome", "/dev/stdout"), '{"traceEvents":'),
])
def test_output_to_dev_stdout_on_a_pipe(trace: Path, args: tuple[str, ...],
                                        start: str) -> None:
    """/dev/stdout on a pipe is a link to no file name (pipe:[N]): written in place, as on a
    terminal, so `tracer report T -o /dev/stdout | …` works."""
    proc = tracer_cli(*args, cwd=trace.parent)  # stdout: a pipe
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(start), proc.stdout[:200]


def test_replay_to_a_link_to_dev_null_draws_no_graph_in_dev(trace: Path) -> None:
    link = trace.parent / "null.json"
    link.symlink_to("/dev/null")
    proc = tracer_cli("replay", trace.name, "-o", link.name, "--until", "3", cwd=trace.parent)
    assert proc.returncode == 0, proc.stderr
    assert "identical" in proc.stdout
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and link.is_symlink()
    assert not list(Path("/dev").glob("null.*"))


# ---------------------------------------------------------------------------------------------
# an output that is an input


def test_run_output_equal_to_the_scenario_is_refused(tiny: Path) -> None:
    before = tiny.read_bytes()
    (tiny.parent / "sub").mkdir()
    (tiny.parent / "alias.yaml").symlink_to(tiny.name)
    for out in ("tiny.yaml", "./sub/../tiny.yaml", "alias.yaml", str(tiny)):
        proc = tracer_cli("run", "tiny.yaml", "-o", out, cwd=tiny.parent)
        refused(proc, f"{out} is the scenario (tiny.yaml)", "give another output path")
        assert proc.stdout == "", "refused before running"
    assert tiny.read_bytes() == before


def test_replay_and_export_output_equal_to_the_trace_are_refused(trace: Path) -> None:
    before = trace.read_bytes()
    proc = tracer_cli("replay", trace.name, "-o", trace.name, cwd=trace.parent)
    refused(proc, "t.json is the trace to replay (t.json)")
    proc = tracer_cli("export", trace.name, "--chrome", f"./{trace.name}", cwd=trace.parent)
    refused(proc, "./t.json is the trace to export (t.json)")
    assert trace.read_bytes() == before


@pytest.mark.parametrize("graph", [".wait-for.dot", ".lock-order.svg"])
def test_run_graphs_never_overwrite_the_scenario(tmp_path: Path, graph: str) -> None:
    """The graphs are drawn beside the trace as STEM.wait-for.dot/.svg and
    STEM.lock-order.dot/.svg: a scenario of that name is refused before anything runs."""
    scenario = tmp_path / f"x{graph}"
    scenario.write_text(DEADLOCK, encoding="utf-8")
    proc = tracer_cli("run", scenario.name, "-o", "x.json", cwd=tmp_path)
    refused(proc, f"x{graph} is the scenario: the graphs of x.json",
            "would overwrite it; give another output path (-o) or rename the scenario")
    assert proc.stdout == "", "refused before running"
    assert scenario.read_text(encoding="utf-8") == DEADLOCK
    assert sorted(p.name for p in tmp_path.iterdir()) == [scenario.name]


def test_replay_until_graphs_never_overwrite_the_trace(tmp_path: Path) -> None:
    (tmp_path / "dl.yaml").write_text(DEADLOCK, encoding="utf-8")
    proc = tracer_cli("run", "-q", "dl.yaml", "-o", "r.wait-for.svg", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    before = (tmp_path / "r.wait-for.svg").read_bytes()
    proc = tracer_cli("replay", "r.wait-for.svg", "--until", "3", "-o", "r.json", cwd=tmp_path)
    refused(proc, "r.wait-for.svg is the trace to replay: the graphs of r.json")
    assert proc.stdout == ""
    assert (tmp_path / "r.wait-for.svg").read_bytes() == before
    assert not (tmp_path / "r.json").exists()
    # without --until, replay draws no graph: the same names are fine
    proc = tracer_cli("replay", "r.wait-for.svg", "-o", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the replayed deadlock
    assert (tmp_path / "r.wait-for.svg").read_bytes() == before


# ---------------------------------------------------------------------------------------------
# inputs that are not regular files: refused at once, never opened and waited on

NOT_FILES: list[tuple[str, Callable[[Path], str], str]] = [
    ("fifo", lambda d: (os.mkfifo(d / "f.in"), "f.in")[1], "is a FIFO (named pipe)"),
    ("device", lambda d: "/dev/zero", "is a character device"),
]


@pytest.mark.parametrize(("kind", "make", "what"), NOT_FILES, ids=[k for k, _, _ in NOT_FILES])
@pytest.mark.parametrize("command", [["validate"], ["run"], ["explore", "--runs", "1"],
                                     ["show"], ["analyze"], ["replay"],
                                     ["export", "--chrome", "c.json"]],
                         ids=lambda c: c[0])
def test_input_not_a_regular_file_is_refused_at_once(
        tmp_path: Path, kind: str, make: Callable[[Path], str], what: str,
        command: list[str]) -> None:
    path = make(tmp_path)
    cmd, *opts = command
    proc = tracer_cli(cmd, path, *opts, cwd=tmp_path, timeout=20)
    noun = "scenario" if cmd in ("validate", "run", "explore") else "trace"
    refused(proc, f"{path}: {what}, not a {noun} file")
    assert not (tmp_path / "c.json").exists()
    assert not (tmp_path / "traces").exists()


@pytest.mark.parametrize("command", ["validate", "run", "show", "analyze", "replay"])
def test_input_folder_is_refused(tmp_path: Path, command: str) -> None:
    (tmp_path / "d.json").mkdir()
    proc = tracer_cli(command, "d.json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    no_traceback(proc)
    assert "d.json" in proc.stderr and "director" in proc.stderr + "directory"


# ---------------------------------------------------------------------------------------------
# a write that fails: one message, exit 2, the outcome printed, no partial file


def test_full_device_output(tiny: Path) -> None:
    link = tiny.parent / "full.json"
    link.symlink_to("/dev/full")  # a real device: every write fails with ENOSPC
    proc = tracer_cli("run", tiny.name, "-o", link.name, cwd=tiny.parent)
    refused(proc, "cannot write the trace to full.json: no space left on device")
    assert "tiny: ok after" in proc.stdout, "the outcome is printed all the same"
    assert "trace: full.json" not in proc.stdout
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def set_limit() -> None:  # in the child: writes past ``limit`` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def _limited(cwd: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUTF8": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30, check=False,
                          preexec_fn=_fsize_limit(limit))


def test_trace_too_large_for_the_disk_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "dl.yaml").write_text(DEADLOCK, encoding="utf-8")
    (tmp_path / "out.json").write_text("the previous trace", encoding="utf-8")
    proc = _limited(tmp_path, 1000, "run", "dl.yaml", "-o", "out.json")
    refused(proc, "cannot write the trace to out.json: file too large",
            "no partial file was left")
    assert "dl: deadlock after" in proc.stdout, "the outcome is printed all the same"
    assert "t1 holds A (dl.yaml:4) and waits for B (dl.yaml:4)" in proc.stdout
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == "the previous trace"
    assert leftovers(tmp_path) == []


def test_graphs_too_large_for_the_disk_leave_no_file(tmp_path: Path) -> None:
    (tmp_path / "dl.yaml").write_text(DEADLOCK, encoding="utf-8")
    proc = tracer_cli("run", "-q", "dl.yaml", "-o", "t.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    size = (tmp_path / "t.json").stat().st_size
    for name in os.listdir(tmp_path):
        if ".wait-for." in name:
            os.unlink(tmp_path / name)
    out = tmp_path / "g"
    out.mkdir()
    # the limit lets nothing bigger than the smallest possible file through
    proc = _limited(tmp_path, 100, "analyze", "t.json", "--graphs", "g")
    refused(proc, "cannot write the graphs to g: file too large")
    assert "deadlock" in proc.stdout, "the findings are printed all the same"
    assert list(out.iterdir()) == [], "no partial .dot or .svg"
    assert (tmp_path / "t.json").stat().st_size == size


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explore_prints_its_outcome_when_a_trace_cannot_be_written(
        tmp_path: Path, fmt: str) -> None:
    (tmp_path / "dl.yaml").write_text(DEADLOCK, encoding="utf-8")
    proc = _limited(tmp_path, 1000, "explore", "dl.yaml", "--runs", "3", "--traces", "D",
                    "--format", fmt)
    refused(proc, "cannot write the trace to D/dl.explore-0.json: file too large",
            "no partial file was left")
    if fmt == "json":
        doc = orjson.loads(proc.stdout)
        assert [f["kind"] for f in doc["findings"]] == ["deadlock"]
        assert doc["findings"][0]["trace"] is None, "no trace to replay"
        assert doc["runs"] == 3
    else:
        assert "1 distinct problem(s):" in proc.stdout
        assert "- deadlock (first in schedule 0)" in proc.stdout
        assert "its trace could not be written" in proc.stdout
        assert "replay it" not in proc.stdout
    assert list((tmp_path / "D").iterdir()) == [], "no partial trace"


def test_chrome_export_too_large_leaves_no_file(trace: Path) -> None:
    proc = _limited(trace.parent, 2000, "export", trace.name, "--chrome", "c.json")
    refused(proc, "cannot write the chrome trace to c.json: file too large")
    assert not (trace.parent / "c.json").exists()
    assert leftovers(trace.parent) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem (tmpfs), nearly full: as root only."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        with (disk / "filler").open("wb") as f:  # leave less than a trace's worth
            try:
                f.write(b"\0" * (64 * 1024))
            except OSError:
                pass
        os.truncate(disk / "filler", 62 * 1024)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_full_disk(tmp_path: Path, small_disk: Path) -> None:
    (tmp_path / "dl.yaml").write_text(DEADLOCK, encoding="utf-8")
    proc = tracer_cli("run", "dl.yaml", "-o", str(small_disk / "x.json"), cwd=tmp_path)
    refused(proc, "x.json: no space left on device")
    assert "dl: deadlock after" in proc.stdout
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_new_files_get_the_usual_permissions(tiny: Path) -> None:
    proc = tracer_cli("run", "-q", tiny.name, "-o", "t.json", cwd=tiny.parent)
    assert proc.returncode == 0, proc.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tiny.parent / "t.json").stat().st_mode) == 0o666 & ~umask

"""Terminal conventions: results on stdout, status on stderr; color by --color and NO_COLOR
(no-color.org); every suggested command is one shell command that pastes back into a shell.

Colors are read where a user sees them: through a real pseudo-terminal for ``--color auto``
(a pipe is never colored)."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCENARIOS, tracer_cli

ESC = "\x1b["
DEADLOCK = str(SCENARIOS / "deadlock.yaml")
ODD_DIR = "it's a \"dir\" $HOME `x`"  # a quote, double quotes, a $ and backquotes


def _run_on_tty(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``tracer ARGS`` with stdout on a pseudo-terminal: (exit code, what the terminal
    got, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tracer", *args], stdout=slave,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal's other end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, b"".join(chunks).decode(), err.decode()


def _env(**kw: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONUTF8"] = "1"
    for k, v in kw.items():
        if v is not None:
            env[k] = v
    return env


def test_run_puts_status_on_stderr_and_the_outcome_on_stdout(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    proc = tracer_cli("run", DEADLOCK, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "running deadlock: 2 actors, timeout 10 s\n"
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("deadlock: deadlock after ")
    assert f"trace: {out}" in lines
    assert lines[-1].startswith("expect: [deadlock]")
    assert "running" not in proc.stdout
    assert ESC not in proc.stdout + proc.stderr  # a pipe is never colored


def test_explore_analyze_replay_results_on_stdout_nothing_on_stderr(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    ex = tracer_cli("explore", DEADLOCK, "--runs", "10", "--traces", str(traces),
                    cwd=tmp_path)
    assert ex.returncode == 1, ex.stderr
    assert ex.stderr == ""  # no progress bar on a pipe
    assert ex.stdout.startswith("deadlock: 10 schedules (random, seed 0)")
    exj = tracer_cli("explore", DEADLOCK, "--runs", "10", "--format", "json", "--traces",
                     str(traces), cwd=tmp_path)
    assert exj.stderr == ""
    trace = json.loads(exj.stdout)["findings"][0]["trace"]
    an = tracer_cli("analyze", trace, "--no-graphs", cwd=tmp_path)
    assert an.returncode == 1
    assert an.stderr == ""
    assert an.stdout.splitlines()[0].startswith(f"{trace}: 1 finding")
    anj = tracer_cli("analyze", trace, "--no-graphs", "--format", "json", cwd=tmp_path)
    assert anj.stderr == ""
    assert json.loads(anj.stdout)["findings"]
    rp = tracer_cli("replay", trace, "-o", str(tmp_path / "r.json"), cwd=tmp_path)
    assert rp.stderr == ""
    assert rp.stdout.splitlines()[0] == f"replay trace: {tmp_path / 'r.json'}"
    assert "identical" in rp.stdout.splitlines()[-1]
    ex_bad = tracer_cli("analyze", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert ex_bad.returncode == 2
    assert ex_bad.stdout == ""
    assert ex_bad.stderr.startswith("tracer: error: ")


@pytest.mark.parametrize(("args", "no_color", "colored"), [
    (["--color", "auto"], None, True),  # a terminal, NO_COLOR unset
    ([], "", True),  # NO_COLOR set but empty counts as unset
    ([], "1", False),  # NO_COLOR set and non-empty
    (["--color", "never"], None, False),
    (["--color", "always"], "1", True),  # always beats NO_COLOR
])
def test_color_on_a_terminal(tmp_path: Path, args: list[str], no_color: str | None,
                             colored: bool) -> None:
    code, tty, err = _run_on_tty(*args, "run", DEADLOCK, "-o", str(tmp_path / "d.json"),
                                 env=_env(NO_COLOR=no_color))
    assert code == 1, (tty, err)
    assert "deadlock: deadlock after" in re.sub(r"\x1b\[[0-9;]*m", "", tty)
    assert (ESC in tty) is colored, tty
    if colored:
        assert f"{ESC}31mdeadlock{ESC}0m after" in tty  # the problem in red
        assert f"{ESC}32mthe run and its analysis agree{ESC}0m" in tty  # agreement in green
    assert ESC not in err  # stderr is a pipe here


def test_color_always_colors_a_pipe_and_never_colors_nothing(tmp_path: Path) -> None:
    trace = tmp_path / "d.json"
    always = tracer_cli("--color", "always", "run", DEADLOCK, "-o", str(trace), cwd=tmp_path)
    assert f"{ESC}31mdeadlock{ESC}0m after" in always.stdout
    clean = tracer_cli("--color", "always", "analyze", str(trace), "--no-graphs",
                       "--format", "json", cwd=tmp_path)
    assert json.loads(clean.stdout)  # JSON is never colored
    bad = tracer_cli("--color", "always", "analyze", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert bad.stderr.startswith(f"{ESC}31m{ESC}1mtracer: error:{ESC}0m ")
    never = tracer_cli("--color", "never", "analyze", str(trace), "--no-graphs",
                       cwd=tmp_path)
    assert "DEADLOCK" in never.stdout
    assert ESC not in never.stdout + never.stderr
    wrong = tracer_cli("--color", "sometimes", "run", DEADLOCK, cwd=tmp_path)
    assert wrong.returncode == 2
    assert "'sometimes' is not one of 'auto', 'always', 'never'" in wrong.stderr


def test_a_fault_outside_the_scenario_is_an_error_line_like_any_other(tmp_path: Path) -> None:
    """A fault of the run's setup (RunFault: here a bad TRACER_START_METHOD) is told with the
    same `tracer: error:` prefix, red under --color always, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "tracer", "--color", "always", "run",
                           str(SCENARIOS / "process_function.yaml"), "-o", "t.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False, env=_env(TRACER_START_METHOD="bogus"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"{ESC}31m{ESC}1mtracer: error:{ESC}0m the start method "
                                  "of process actors is 'bogus'"), proc.stderr


def _paste(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a suggested command as a user pasting it would: in bash, ``tracer`` being this
    Python's tracer."""
    script = 'tracer() { "$TRACER_PY" -m tracer "$@"; }\n' + command
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**os.environ, "TRACER_PY": sys.executable, "PYTHONUTF8": "1"})


def test_suggested_commands_paste_back_into_a_shell(tmp_path: Path) -> None:
    traces = tmp_path / ODD_DIR
    ex = tracer_cli("explore", DEADLOCK, "--runs", "10", "--traces", str(traces),
                    cwd=tmp_path)
    replays = [line.split("replay it: ", 1)[1] for line in ex.stdout.splitlines()
               if line.startswith("  replay it: ")]
    assert replays
    for cmd in replays:
        words = shlex.split(cmd)  # one command, its path one word
        assert words[:2] == ["tracer", "replay"]
        assert len(words) == 3
        assert Path(words[2]).parent == traces
        done = _paste(cmd, tmp_path)
        assert done.returncode in (0, 1), done.stderr
        assert "identical" in done.stdout, done.stdout + done.stderr
    an = tracer_cli("analyze", shlex.split(replays[-1])[2], "--no-graphs", cwd=tmp_path)
    show = [line.split("see them with: ", 1)[1] for line in an.stdout.splitlines()
            if "see them with: " in line]
    assert show
    done = _paste(show[0], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "acquire" in done.stdout


def test_run_suggests_analyze_for_the_findings_it_leaves_out(tmp_path: Path) -> None:
    names = [f"v{i}" for i in range(10)]  # ten unordered adds: ten races, eight shown
    steps = "".join(f"      - add: {{var: {v}, value: 1}}\n" for v in names)
    scenario = tmp_path / "many.yaml"
    scenario.write_text("name: many\nshared: {" + ", ".join(f"{v}: 0" for v in names) + "}\n"
                        "actors:\n" + "".join(f"  - name: {a}\n    kind: thread\n    steps:\n"
                                               + steps for a in ("a", "b")), encoding="utf-8")
    (tmp_path / ODD_DIR).mkdir()
    trace = tmp_path / ODD_DIR / "a b.json"
    run = tracer_cli("run", str(scenario), "-o", str(trace), cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    [more] = [line for line in run.stdout.splitlines() if line.startswith("  ... and 2 more: ")]
    cmd = more.split(": ", 1)[1]
    assert shlex.split(cmd) == ["tracer", "analyze", str(trace)]
    done = _paste(cmd, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"{trace}: 10 findings (10 race)")

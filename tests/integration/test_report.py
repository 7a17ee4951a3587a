"""`clustertools report` on the real sandbox: a 90-subject run with failures, its page written by the
CLI, then opened in headless Chromium: a screenshot that is not blank, a DOM with one timeline bar per
task, and no console message (the page has no script, and its CSP would log any fetch it tried)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import err, out
from tests.integration.png_pixels import png_colours
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

SUBJECTS = [f"s-{n:03d}" for n in range(1, 91)]  # 90: each task's upload costs ~1 s of CPU here
# 0-2 s of work each; multiples of 17 exit 4, other multiples of 41 exit 2.
COMMAND = (
    "n=$((10#${SUBJECT#s-})); sleep $((n % 3)); "
    'if [ $((n % 17)) -eq 0 ]; then echo "no brain mask" >&2; exit 4; fi; '
    'if [ $((n % 41)) -eq 0 ]; then exit 2; fi; echo ok > "$OUTPUT_DIR/ok.txt"'
)
EXIT_4 = [s for s in SUBJECTS if int(s[2:]) % 17 == 0]
EXIT_2 = [s for s in SUBJECTS if int(s[2:]) % 41 == 0 and int(s[2:]) % 17]
GREEN, RED = (46, 125, 50), (198, 40, 40)  # succeeded, failed: the page's CSS
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def finished_run(sandbox, tmp_path_factory):
    project = make_project(sandbox, tmp_path_factory.mktemp("report"), "report")
    run_id = submit(sandbox, project, str(write_subjects(project, SUBJECTS)), "--command", COMMAND)["run"]
    final = wait_for_run(sandbox, project, run_id, timeout=600)
    assert final["counts"]["FAILED"] == len(EXIT_4) + len(EXIT_2), final["counts"]
    return project, run_id


def test_report_writes_the_page_and_prints_text_and_json(sandbox, finished_run, tmp_path):
    project, run_id = finished_run
    page = tmp_path / "page.html"
    result = sandbox.cli("report", run_id, "-o", str(page), cwd=project)
    assert result.returncode == 0, err(result)
    hosts = len({s["node"] for s in json.loads(out(sandbox.cli("status", run_id, "--json", cwd=project)))["subjects"]})
    assert hosts in (1, 2)  # the shared sandbox's two static nodes
    assert f"wrote {page}" in out(result) and f"90 subjects, 90 tasks on {hosts} node(s)" in out(result)
    html = page.read_text()
    # the init project has a parallelcluster: section: each subject is priced as it would cost there
    assert html.count('<rect class="task ') == 90 and '<p id="cost">$' in html and "over 90 subject(s)" in html

    dashed = sandbox.cli("report", run_id, "-o", "-", cwd=project)  # the page on stdout, no file
    assert dashed.returncode == 0 and out(dashed).startswith("<!DOCTYPE html>") and not (project / "-").exists()
    default = sandbox.cli("report", run_id, cwd=project)  # report-RUN.html here; again replaces it
    assert default.returncode == 0 and (project / f"report-{run_id}.html").is_file(), err(default)
    assert sandbox.cli("report", run_id, cwd=project).returncode == 0

    data = json.loads(out(sandbox.cli("report", run_id, "--json", cwd=project)))
    assert (data["subjects"], data["tasks"], data["counts"]["SUCCEEDED"]) == (90, 90, 90 - len(EXIT_4) - len(EXIT_2))
    assert {f["exit_code"]: sorted(f["subjects"]) for f in data["failures"]} == {4: EXIT_4, 2: EXIT_2}
    assert data["runtime"]["count"] == 90 and data["cost"]["priced"] == 90 and len(data["nodes"]) == hosts

    text = sandbox.cli("report", run_id, "--text", cwd=project)
    assert text.returncode == 0, err(text)
    for part in (
        "subjects 90 in 1 attempt(s)",
        "timeline: tasks running per node",
        "failures by exit code:",
        f"  2     {len(EXIT_2)}    0        {', '.join(EXIT_2)}",
        "over 90 subject(s) + ",
        "per subject mean $",
    ):
        assert part in out(text)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (dev/setup --test installs Debian's chromium)")
def test_the_page_renders_in_headless_chromium_with_its_timeline(sandbox, finished_run, tmp_path):
    project, run_id = finished_run
    page = tmp_path / "report.html"
    result = sandbox.cli("report", run_id, "-o", str(page), cwd=project)
    assert result.returncode == 0, err(result)

    screenshot = tmp_path / "report.png"
    shot = chromium(tmp_path, f"--screenshot={screenshot}", page.as_uri())
    print(f"screenshot of the report: {screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert_no_console_message(shot.stderr)
    width, height, colours = png_colours(screenshot.read_bytes())
    assert (width, height) == (1400, 1000)
    assert len(colours) > 50 and colours.most_common(1)[0][1] < width * height * 0.97, "a blank screenshot"
    assert colours[GREEN] > 2000 and colours[RED] > 200, (colours[GREEN], colours[RED])  # bars of both states

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert_no_console_message(dom.stderr)
    timeline = dom.stdout.split('<svg id="timeline"', 1)[1].split("</svg>", 1)[0]
    assert timeline.count('<rect class="task ') == 90
    assert timeline.count('<rect class="task failed') == len(EXIT_4) + len(EXIT_2)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_no_console_message(stderr: str) -> None:
    """The page runs no script: any console line (an exception, a CSP refusal of a fetch) is a bug."""
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, "\n".join(console)

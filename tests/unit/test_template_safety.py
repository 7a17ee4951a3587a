"""Rendered scripts (issue 11 item 1): every value is validated at the edge AND rendered safely.

The PWNED run name of the red-team pass, and what the render layer does when a value that skipped
validation (a record built without it) carries a line break into a comment or an #SBATCH line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.runs.run_record import new_run_id
from cluster_tools.render import run_scripts
from tests.unit.run_fixtures import make_run

PWNED = "x\ntouch /tmp/PWNED\n#"
RENDERERS = [
    run_scripts.render_array_script,
    run_scripts.render_wrapper,
    run_scripts.render_submit_script,
    run_scripts.render_status_script,
]


def _unvalidated(**changes):
    """A run record built around its validators: what a bug or a tampered record could hand the renderer."""
    run = make_run()
    job = run.job.model_construct(**{**run.job.__dict__, **changes.pop("job", {})})
    return run.model_construct(**{**run.__dict__, "job": job, **changes})


def test_the_pwned_run_name_is_refused_at_the_edge():
    with pytest.raises(ClusterToolsError, match="not a run name"):
        new_run_id(PWNED, "abc123")


@pytest.mark.parametrize("render", RENDERERS, ids=lambda f: f.__name__)
def test_a_run_id_with_a_newline_never_reaches_a_script(render):
    """Failed on 5147a17: the run id landed unquoted in comments and #SBATCH --job-name."""
    with pytest.raises(ClusterToolsError):
        render(_unvalidated(run_id=PWNED))


@pytest.mark.parametrize(
    "field, value",
    [
        ("mem", "1G\n#SBATCH --uid=0"),
        ("time", "10 --wrap=id"),
        ("partition", "p\ntouch /tmp/PWNED"),
        ("cpus", "1 --output=/etc/x"),
        ("mem", "$(id)"),
        ("partition", "`id`"),
    ],
)
def test_sbatch_directives_take_one_plain_word(field, value):
    with pytest.raises(ClusterToolsError):
        run_scripts.render_array_script(_unvalidated(job={field: value}))


@pytest.mark.parametrize("run_id", ["a b", "a'b", "a$(id)", "a;b"])
def test_a_run_id_that_is_not_one_word_never_reaches_a_directive(run_id):
    with pytest.raises(ClusterToolsError):
        run_scripts.render_array_script(_unvalidated(run_id=run_id))


def test_a_multi_line_command_still_renders_through_shquote_and_runs_as_written(tmp_path: Path):
    command = "echo one\necho 'two' \"$SUBJECT\"\n# a comment\necho $((1 + 2))"
    text = run_scripts.render_wrapper(make_run(command=command))
    assignment = text[text.index("\nCT_COMMAND=") : text.index("\nCT_CONTAINER=")]
    script = tmp_path / "s.sh"
    script.write_text(assignment + '\nprintf %s "$CT_COMMAND"\n')
    assert subprocess.run(["bash", str(script)], capture_output=True, text=True).stdout == command


def test_the_environment_refuses_control_characters_outside_shquote():
    from cluster_tools.render.templates import UnsafeTemplateValue, environment

    env = environment()
    template = env.from_string("# comment {{ value }}\nX={{ value | shquote }}\n")
    assert template.render(value="plain") == "# comment plain\nX=plain\n"
    for bad in ("a\nb", "a\rb", "a\x00b", "a\x1bb", "a\u2028b"):
        with pytest.raises(UnsafeTemplateValue):
            template.render(value=bad)
    assert env.from_string("X={{ v | shquote }}").render(v="a\nb") == "X='a\nb'"


def test_shquote_refuses_nul_and_word_refuses_anything_but_one_word():
    from cluster_tools.render.templates import UnsafeTemplateValue, shquote, word

    with pytest.raises(UnsafeTemplateValue):
        shquote("a\x00b")
    assert word("4G") == "4G" and word("ct-run_1.2") == "ct-run_1.2"
    for bad in ("", "a b", "a\n", "'a'", "$x", "a;b", "a#b", "a`b`"):
        with pytest.raises(UnsafeTemplateValue):
            word(bad)


def test_html_reports_are_guarded_by_autoescape_not_by_the_line_check():
    from cluster_tools.render.templates import environment

    env = environment().overlay(autoescape=True)
    assert env.from_string("<p>{{ v }}</p>").render(v="a\n<b>") == "<p>a\n&lt;b&gt;</p>"

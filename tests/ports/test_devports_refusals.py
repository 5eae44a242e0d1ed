""".devports.yml refusals, whole: each says the line, the project and field, and what is wrong,
and every problem of the file is said at once (no second import to find the next one).

`devports.parse` needs no database: these tests read files, nothing is stored.
"""

from __future__ import annotations

import pytest

from ports.registry import devports
from ports.registry.devports import ProjectSpec

ONE = "projects:\n  web:\n    preferred_port: 5000\n"


def _refusal(text: str) -> str:
    with pytest.raises(devports.RegistryError) as raised:
        devports.parse(text)
    return str(raised.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "- web\n",
            "line 1: expected a top-level 'projects:' mapping of names to "
            "{preferred_port, fallback_ports, service_type}",
        ),
        ("projects:\n  web: 5000\n", "line 2: web: expected a mapping with preferred_port"),
        ("projects:\n  web:\n    notes: hi\n", "line 2: web.preferred_port: is required"),
        (
            ONE + "    colour: red\n",
            "line 4: web.colour: unknown field (known: preferred_port, fallback_ports, "
            "service_type, working_directory, notes)",
        ),
        (ONE + "    fallback_ports: 5001\n", "line 4: web.fallback_ports: must be a list of ports"),
        (
            ONE + "    fallback_ports: [0]\n",
            "line 4: web.fallback_ports: must be a port number from 1 to 65535, not 0",
        ),
        (
            ONE + "    fallback_ports: [5001, 5000]\n",
            "line 4: web.fallback_ports: port 5000 is listed twice",
        ),
        (
            ONE + f"    fallback_ports: [{', '.join(str(6000 + n) for n in range(51))}]\n",
            "line 4: web.fallback_ports: at most 50 fallback ports",
        ),
        (
            ONE + f"    service_type: {'x' * 51}\n",
            "line 4: web.service_type: at most 50 characters",
        ),
        (
            ONE + f"    working_directory: /{'x' * 500}\n",
            "line 4: web.working_directory: at most 500 characters",
        ),
        (ONE + f"    notes: {'x' * 5001}\n", "line 4: web.notes: at most 5000 characters"),
    ],
)
def test_a_refusal_says_where_and_what(text, said):
    assert _refusal(text) == said


@pytest.mark.parametrize(
    "extra",
    [
        f"    fallback_ports: [{', '.join(str(6000 + n) for n in range(50))}]\n",
        f"    service_type: {'x' * 50}\n",
        f"    working_directory: /{'x' * 499}\n",
        f"    notes: {'x' * 5000}\n",
    ],
)
def test_each_limit_itself_is_allowed(extra):
    (spec,) = devports.parse(ONE + extra)
    assert spec.name == "web" and spec.preferred_port == 5000


def test_every_problem_of_every_project_is_said_at_once():
    text = (
        "projects:\n"
        "  first: 5000\n"
        "  second:\n    notes: no port\n"
        "  third:\n    preferred_port: 0\n    colour: red\n"
    )
    assert _refusal(text) == (
        "line 2: first: expected a mapping with preferred_port; "
        "line 3: second.preferred_port: is required; "
        "line 7: third.colour: unknown field (known: preferred_port, fallback_ports, "
        "service_type, working_directory, notes); "
        "line 6: third.preferred_port: must be a port number from 1 to 65535, not 0"
    )


def test_more_projects_than_the_limit_are_refused_and_the_limit_is_not():
    many = "".join(f"  p{n}: {{preferred_port: {1024 + n}}}\n" for n in range(1000))
    assert len(devports.parse("projects:\n" + many)) == 1000
    assert _refusal("projects:\n" + many + "  one-more: {preferred_port: 9999}\n") == (
        "at most 1000 projects"
    )


def test_a_field_that_is_not_text_is_refused_from_a_form_or_the_api():
    # The file reader turns numbers into text; a form or an API body hands over what it got.
    problems = devports.validate_spec(
        ProjectSpec(name="web", preferred_port=5000, service_type=["flask"]),
        {"service_type": 3},
    )
    assert [str(problem) for problem in problems] == ["line 3: web.service_type: must be text"]

"""The Projects pages: every form error at once on its field, an empty import refused on the page,
the API and the command alike, and a viewer offered nothing it cannot do."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from ports.models import Project

pytestmark = pytest.mark.django_db

YAML = "application/yaml"
EMPTY_FILES = ["", "\n# only a comment\n"]
NO_PROJECTS = ["projects:\n", "projects: {}\n"]


@pytest.fixture
def kept(db):
    return Project.objects.create(name="keep", preferred_port=5000, fallback_ports=[5001])


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


def _assert_kept() -> None:
    assert list(Project.objects.values_list("name", flat=True)) == ["keep"]


def _field_error(body: str, field: str) -> str:
    start = body.index(f'id="id_{field}_error">') + len(f'id="id_{field}_error">')
    return body[start : body.index("</p>", start)]


# --- every error at once, next to its field ---------------------------------------------------


def test_it_shows_every_project_error_at_once_on_its_field(operator_client, kept):
    response = operator_client.post(
        "/projects/new/",
        {"name": "Bad Name!", "preferred_port": "", "fallback_ports": "abc, 99999"},
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert _field_error(body, "name").startswith("Use lower-case letters, digits, - and _")
    assert _field_error(body, "preferred_port") == (
        "Give the port the project starts on: a whole number from 1 to 65535."
    )
    assert _field_error(body, "fallback_ports") == (
        "abc, 99999 are not ports: each is a whole number from 1 to 65535."
    )
    # The summary names each field by its label, not by its name.
    assert "Not saved: 3 things to change." in body
    for label, field in (("Name", "name"), ("Preferred port", "preferred_port")):
        assert f'<a href="#id_{field}">{label}</a>: ' in body
    assert "preferred_port:" not in body and "near:" not in body
    _assert_kept()


def test_it_says_a_taken_name_beside_the_other_errors(operator_client, kept):
    response = operator_client.post(
        "/projects/new/", {"name": "keep", "preferred_port": "6000", "fallback_ports": "6000"}
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert _field_error(body, "name") == "A project with this name exists."
    assert _field_error(body, "fallback_ports") == "Port 6000 is listed twice."
    _assert_kept()


def test_an_empty_post_gets_its_errors(operator_client):
    response = operator_client.post("/projects/new/", {})
    assert response.status_code == 422
    assert "Give the project a name." in response.content.decode()


def test_it_keeps_its_own_name_when_editing(operator_client, kept):
    response = operator_client.post(
        "/projects/keep/edit/", {"name": "keep", "preferred_port": "5100"}
    )
    assert response.status_code == 302
    assert Project.objects.get(name="keep").preferred_port == 5100


# --- an import of nothing is refused ------------------------------------------------------------


@pytest.mark.parametrize("text", EMPTY_FILES)
def test_the_page_refuses_an_empty_file(operator_client, kept, text):
    upload = SimpleUploadedFile(".devports.yml", text.encode())
    response = operator_client.post("/projects/import/", {"file": upload, "replace": "on"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "Not imported: the file is empty: there is nothing to import" in body
    assert "Imported:" not in body
    _assert_kept()


@pytest.mark.parametrize("text", NO_PROJECTS)
def test_the_page_refuses_a_file_without_projects(operator_client, kept, text):
    response = operator_client.post("/projects/import/", {"text": text, "replace": "on"})
    assert response.status_code == 422
    assert "lists no projects under &#x27;projects:&#x27;" in response.content.decode()
    _assert_kept()


def test_the_page_asks_for_a_file_or_text(operator_client, kept):
    response = operator_client.post("/projects/import/", {})
    assert response.status_code == 422
    body = response.content.decode()
    assert _field_error(body, "file") == "Choose a .devports.yml file, or paste its text below."
    assert '<a href="#id_file">.devports.yml</a>: ' in body
    _assert_kept()


def test_the_page_imports_pasted_text(operator_client, kept):
    response = operator_client.post(
        "/projects/import/",
        {"text": "projects:\n  web: {preferred_port: 3000}\n  keep: {preferred_port: 5000}\n"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Imported: 1 new project, 1 updated." in response.content.decode()
    assert Project.objects.filter(name="web").exists()


def test_the_page_lists_every_problem_of_a_file(operator_client, kept):
    text = "projects:\n  Bad: {preferred_port: 0}\n  api: {fallback_ports: [1]}\n"
    response = operator_client.post("/projects/import/", {"text": text})
    body = response.content.decode()
    assert response.status_code == 422
    assert "Not imported: 3 problems in the file." in body
    assert "line 2: Bad.name: use lower-case letters" in body
    assert "line 2: Bad.preferred_port: must be a port number" in body
    assert "api.preferred_port: is required" in body
    _assert_kept()


@pytest.mark.parametrize("text", EMPTY_FILES + NO_PROJECTS)
def test_the_api_refuses_an_import_of_nothing(client, operator_user, bearer, kept, text):
    response = client.post(
        "/api/v1/projects/import?replace=true",
        text,
        content_type=YAML,
        headers=bearer(operator_user),
        # The test client leaves out the type of an empty body; curl and browsers send it.
        CONTENT_TYPE=YAML,
    )
    assert response.status_code == 422
    assert "nothing to import" in response.json()["detail"]
    _assert_kept()


def test_the_api_refuses_an_empty_file_field(client, operator_user, bearer, kept):
    upload = SimpleUploadedFile(".devports.yml", b"")
    response = client.post(
        "/api/v1/projects/import?replace=true", {"file": upload}, headers=bearer(operator_user)
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "the file is empty: there is nothing to import"
    _assert_kept()


def test_the_command_refuses_an_import_of_nothing(admin_user, kept, tmp_path):
    path = tmp_path / ".devports.yml"
    path.write_text("projects: {}\n")
    with pytest.raises(CommandError) as refused:
        call_command("devports", "import", str(path), "--replace")
    assert "nothing to import" in str(refused.value)
    _assert_kept()


# --- what a viewer is offered -----------------------------------------------------------------


def test_a_viewer_gets_no_button_to_change_the_registry(client, viewer_user, kept):
    client.force_login(viewer_user)
    listing = client.get("/projects/").content.decode()
    assert "New project</a>" not in listing and 'action="/projects/import/"' not in listing
    assert "need the operator role; you are signed in as a viewer" in listing
    detail = client.get("/projects/keep/").content.decode()
    assert "Edit</a>" not in detail and "Remove</button>" not in detail
    assert "need the operator role" in detail
    page = client.get("/projects/import/").content.decode()
    assert "<form" not in page.split("<main", 1)[1].split("</main>", 1)[0]
    assert "Importing needs the operator role" in page


def test_the_import_page_offers_a_file_and_a_text_field(operator_client):
    response = operator_client.get("/projects/import/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'type="file" name="file"' in body and 'name="text"' in body

"""Synthetic tests and project variables in Postgres: CRUD, project scoping, secrets encrypted and masked."""

from __future__ import annotations

import base64
import uuid

import pytest

from shared.api.requests import (
    ProjectVariableCreate,
    ProjectVariableUpdate,
    SyntheticTestCreate,
    SyntheticTestUpdate,
)
from shared.errors import ApiError
from shared.synthetic import store
from tests.factories import default_project

SCRIPT = "async def run(page, context, variables):\n    await page.goto(variables['BASE_URL'])\n"
SECRET = "correct-horse-battery-staple"


@pytest.fixture
def projects(clean):
    default = default_project(clean)
    other = clean.sql("insert into projects (name) values ('other') returning id")[0][0]
    return default, other


def test_a_test_is_created_read_listed_updated_and_deleted_within_its_project(aio, clean, projects):
    project, other = projects
    encoded = base64.b64encode(SCRIPT.encode()).decode()
    created = aio.run(store.create_test(project, SyntheticTestCreate(title="Login", scriptBase64=encoded)))
    assert created.script == SCRIPT and created.project_id == project

    assert aio.run(store.get_test(project, created.id)) == created
    assert [t.id for t in aio.run(store.list_tests(project))] == [created.id]
    assert aio.run(store.list_tests(other)) == []
    with pytest.raises(ApiError) as hidden:
        aio.run(store.get_test(other, created.id))
    assert hidden.value.status == 404

    renamed = aio.run(store.update_test(project, created.id, SyntheticTestUpdate(title="Sign in")))
    assert (renamed.title, renamed.script) == ("Sign in", SCRIPT) and renamed.updated_at >= created.updated_at
    new_script = SCRIPT.replace("BASE_URL", "HOME_URL")
    rewritten = aio.run(store.update_test(project, created.id, SyntheticTestUpdate(script=new_script)))
    assert (rewritten.title, rewritten.script) == ("Sign in", new_script)
    with pytest.raises(ApiError):
        aio.run(store.update_test(other, created.id, SyntheticTestUpdate(title="stolen")))

    aio.run(store.delete_test(project, created.id))
    with pytest.raises(ApiError) as gone:
        aio.run(store.delete_test(project, created.id))
    assert gone.value.status == 404
    actions = [row[0] for row in clean.sql("select action from audit_log order by id")]
    assert actions == [
        "synthetic_test.create",
        "synthetic_test.update",
        "synthetic_test.update",
        "synthetic_test.delete",
    ]


def test_a_test_that_a_monitor_runs_cannot_be_deleted(aio, clean, projects):
    project, _ = projects
    test = aio.run(store.create_test(project, SyntheticTestCreate(title="Login", script=SCRIPT)))
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, config, frequency_minutes)
           values (%s, 'm', 'synthetic_test', %s, jsonb_build_object('testId', %s::text), 5) returning id""",
        (project, str(test.id), str(test.id)),
    )[0][0]
    with pytest.raises(ApiError) as refused:
        aio.run(store.delete_test(project, test.id))
    assert refused.value.status == 409 and str(monitor_id) in refused.value.message


def test_secret_variables_are_encrypted_at_rest_masked_when_read_and_plain_for_the_run(aio, clean, projects):
    project, other = projects
    aio.run(
        store.create_variable(project, ProjectVariableCreate(name="PASSWORD", value=SECRET, is_secret=True))
    )
    aio.run(
        store.create_variable(project, ProjectVariableCreate(name="BASE_URL", value="http://127.0.0.1:9/"))
    )

    stored = dict(clean.sql("select name, value from project_variables"))
    assert stored["BASE_URL"] == "http://127.0.0.1:9/"
    assert stored["PASSWORD"].startswith("enc:v2:") and SECRET not in stored["PASSWORD"]
    listed = {v.name: v.value for v in aio.run(store.list_variables(project))}
    assert listed == {"BASE_URL": "http://127.0.0.1:9/", "PASSWORD": "co****le"}
    assert aio.run(store.list_variables(other)) == []
    audit = str(clean.sql("select changes from audit_log"))
    assert SECRET not in audit

    test = aio.run(store.create_test(project, SyntheticTestCreate(title="t", script=SCRIPT)))
    assert aio.run(store.load_runnable_test(test.id, other)) is None, "another project's job cannot load it"
    runnable = aio.run(store.load_runnable_test(test.id, project))
    assert runnable.variables == {"BASE_URL": "http://127.0.0.1:9/", "PASSWORD": SECRET}
    assert runnable.secrets == (SECRET,)


def test_a_variable_can_become_secret_and_back_without_retyping_it(aio, clean, projects):
    project, _ = projects
    aio.run(store.create_variable(project, ProjectVariableCreate(name="TOKEN", value=SECRET)))
    secret = aio.run(store.update_variable(project, "TOKEN", ProjectVariableUpdate(is_secret=True)))
    assert (secret.is_secret, secret.value) == (True, "co****le")
    assert clean.sql("select value from project_variables")[0][0].startswith("enc:v2:")
    plain = aio.run(store.update_variable(project, "TOKEN", ProjectVariableUpdate(is_secret=False)))
    assert (plain.is_secret, plain.value) == (False, SECRET)
    changed = aio.run(store.update_variable(project, "TOKEN", ProjectVariableUpdate(value="other")))
    assert changed.value == "other"


def test_variable_names_are_unique_per_project_and_missing_ones_are_404(aio, clean, projects):
    project, other = projects
    aio.run(store.create_variable(project, ProjectVariableCreate(name="A", value="1")))
    aio.run(store.create_variable(other, ProjectVariableCreate(name="A", value="2")))
    with pytest.raises(ApiError) as duplicate:
        aio.run(store.create_variable(project, ProjectVariableCreate(name="A", value="3")))
    assert (duplicate.value.status, duplicate.value.field) == (409, "name")
    assert aio.run(store.get_variable(project, "A")).value == "1"
    aio.run(store.delete_variable(project, "A"))
    for call in (
        store.get_variable(project, "A"),
        store.delete_variable(project, "A"),
        store.update_variable(project, "A", ProjectVariableUpdate(value="x")),
    ):
        with pytest.raises(ApiError) as missing:
            aio.run(call)
        assert missing.value.status == 404
    assert aio.run(store.get_variable(other, "A")).value == "2"


def test_a_missing_test_loads_as_none(aio, clean, projects):
    assert aio.run(store.load_runnable_test(uuid.uuid4(), None)) is None

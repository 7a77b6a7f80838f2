"""Synthetic tests and project variables in Postgres: create, get, list, update, delete; secrets encrypted at rest.
Used by the API's synthetic endpoints and the synthetic check.

Every function is scoped to one project and records an audit entry in the same transaction as its change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg.errors import UniqueViolation

from shared import audit, db
from shared.api.requests import (
    ProjectVariableCreate,
    ProjectVariableUpdate,
    SyntheticTestCreate,
    SyntheticTestUpdate,
)
from shared.api.schemas import ProjectVariableOut, SyntheticTestOut
from shared.errors import ApiError
from shared.security import Binding, key_ring, mask

_TEST_COLUMNS = "id, project_id, title, script, created_at, updated_at"
_VARIABLE_COLUMNS = "name, value, is_secret, created_at, updated_at"


def _test_not_found() -> ApiError:
    return ApiError(404, "not_found", "synthetic test not found")


def _variable_not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"project variable '{name}' not found")


# --- synthetic tests --------------------------------------------------------------------------


async def create_test(
    project_id: uuid.UUID, body: SyntheticTestCreate, api_key_id: uuid.UUID | None = None
) -> SyntheticTestOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"insert into synthetic_tests (project_id, title, script) values (%s, %s, %s) returning {_TEST_COLUMNS}",
                (project_id, body.title, body.script),
            )
        ).fetchone()
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "synthetic_test.create",
            "synthetic_test",
            row["id"],
            {"title": body.title},
        )
    return SyntheticTestOut(**row)


async def get_test(project_id: uuid.UUID, test_id: uuid.UUID) -> SyntheticTestOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"select {_TEST_COLUMNS} from synthetic_tests where id = %s and project_id = %s",
                (test_id, project_id),
            )
        ).fetchone()
    if row is None:
        raise _test_not_found()
    return SyntheticTestOut(**row)


async def list_tests(project_id: uuid.UUID) -> list[SyntheticTestOut]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                f"select {_TEST_COLUMNS} from synthetic_tests where project_id = %s order by created_at, id",
                (project_id,),
            )
        ).fetchall()
    return [SyntheticTestOut(**row) for row in rows]


async def update_test(
    project_id: uuid.UUID, test_id: uuid.UUID, body: SyntheticTestUpdate, api_key_id: uuid.UUID | None = None
) -> SyntheticTestOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"""update synthetic_tests set title = coalesce(%s, title), script = coalesce(%s, script), updated_at = now()
                    where id = %s and project_id = %s returning {_TEST_COLUMNS}""",
                (body.title, body.script, test_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise _test_not_found()
        changed = {"title": body.title} if body.title is not None else {}
        if body.script is not None:
            changed["script"] = "(changed)"
        await audit.record(
            conn, project_id, api_key_id, "synthetic_test.update", "synthetic_test", test_id, changed
        )
    return SyntheticTestOut(**row)


async def delete_test(project_id: uuid.UUID, test_id: uuid.UUID, api_key_id: uuid.UUID | None = None) -> None:
    """Refuses while a monitor still runs the test, so no monitor is left pointing at nothing."""
    async with db.transaction() as conn:
        users = await (
            await conn.execute(
                """select id from monitors where project_id = %s and type = 'synthetic_test'
                   and config->>'testId' = %s order by created_at""",
                (project_id, str(test_id)),
            )
        ).fetchall()
        if users:
            raise ApiError(
                409,
                "in_use",
                f"synthetic test is used by {len(users)} monitor(s): {', '.join(str(r['id']) for r in users)}",
            )
        row = await (
            await conn.execute(
                "delete from synthetic_tests where id = %s and project_id = %s returning title",
                (test_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise _test_not_found()
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "synthetic_test.delete",
            "synthetic_test",
            test_id,
            {"title": row["title"]},
        )


# --- project variables ------------------------------------------------------------------------


def variable_binding(project_id: uuid.UUID, name: str) -> Binding:
    """A secret variable's ciphertext opens only as that variable of that project."""
    return Binding(project_id, f"project_variables.{name}")


def _variable_out(row: dict, project_id: uuid.UUID) -> ProjectVariableOut:
    value = row["value"]
    if row["is_secret"]:
        try:
            value = mask(key_ring().decrypt(value, variable_binding(project_id, row["name"])))
        except Exception:  # a key that no longer decrypts must still not leak anything
            value = mask("unreadable")
    return ProjectVariableOut(**{**row, "value": value})


def _stored_value(value: str, is_secret: bool, project_id: uuid.UUID, name: str) -> str:
    return key_ring().encrypt(value, variable_binding(project_id, name)) if is_secret else value


async def create_variable(
    project_id: uuid.UUID, body: ProjectVariableCreate, api_key_id: uuid.UUID | None = None
) -> ProjectVariableOut:
    try:
        async with db.transaction() as conn:
            row = await (
                await conn.execute(
                    f"""insert into project_variables (project_id, name, value, is_secret) values (%s, %s, %s, %s)
                        returning {_VARIABLE_COLUMNS}""",
                    (
                        project_id,
                        body.name,
                        _stored_value(body.value, body.is_secret, project_id, body.name),
                        body.is_secret,
                    ),
                )
            ).fetchone()
            await audit.record(
                conn,
                project_id,
                api_key_id,
                "project_variable.create",
                "project_variable",
                body.name,
                {"isSecret": body.is_secret},
            )
    except UniqueViolation:
        raise ApiError(
            409, "conflict", f"name: a variable named '{body.name}' already exists", "name"
        ) from None
    return _variable_out(row, project_id)


async def get_variable(project_id: uuid.UUID, name: str) -> ProjectVariableOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"select {_VARIABLE_COLUMNS} from project_variables where project_id = %s and name = %s",
                (project_id, name),
            )
        ).fetchone()
    if row is None:
        raise _variable_not_found(name)
    return _variable_out(row, project_id)


async def list_variables(project_id: uuid.UUID) -> list[ProjectVariableOut]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                f"select {_VARIABLE_COLUMNS} from project_variables where project_id = %s order by name",
                (project_id,),
            )
        ).fetchall()
    return [_variable_out(row, project_id) for row in rows]


async def update_variable(
    project_id: uuid.UUID, name: str, body: ProjectVariableUpdate, api_key_id: uuid.UUID | None = None
) -> ProjectVariableOut:
    """Changing only isSecret re-stores the current value encrypted (or decrypted) to match."""
    async with db.transaction() as conn:
        current = await (
            await conn.execute(
                "select value, is_secret from project_variables where project_id = %s and name = %s for update",
                (project_id, name),
            )
        ).fetchone()
        if current is None:
            raise _variable_not_found(name)
        is_secret = current["is_secret"] if body.is_secret is None else body.is_secret
        plaintext = body.value
        if plaintext is None:
            plaintext = current["value"]
            if current["is_secret"]:
                plaintext = key_ring().decrypt(plaintext, variable_binding(project_id, name))
        row = await (
            await conn.execute(
                f"""update project_variables set value = %s, is_secret = %s, updated_at = now()
                    where project_id = %s and name = %s returning {_VARIABLE_COLUMNS}""",
                (_stored_value(plaintext, is_secret, project_id, name), is_secret, project_id, name),
            )
        ).fetchone()
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "project_variable.update",
            "project_variable",
            name,
            {"isSecret": is_secret, "value": "(changed)" if body.value is not None else "(unchanged)"},
        )
    return _variable_out(row, project_id)


async def delete_variable(project_id: uuid.UUID, name: str, api_key_id: uuid.UUID | None = None) -> None:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "delete from project_variables where project_id = %s and name = %s returning name",
                (project_id, name),
            )
        ).fetchone()
        if row is None:
            raise _variable_not_found(name)
        await audit.record(
            conn, project_id, api_key_id, "project_variable.delete", "project_variable", name, {}
        )


# --- what a check run needs -------------------------------------------------------------------


@dataclass(frozen=True)
class RunnableTest:
    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    script: str
    variables: dict[str, str]  # plaintext, secrets included: only ever handed to the sandbox
    secrets: tuple[str, ...]  # the secret values, to mask in every output


async def load_runnable_test(
    test_id: uuid.UUID, project_id: uuid.UUID | None, monitor_id: uuid.UUID | None = None
) -> RunnableTest | None:
    """The test with its project's variables decrypted; None if it is gone, or not the job's project's, or not
    in the monitor's project. project_id is None only for a job queued by an older schedule."""
    async with db.transaction() as conn:
        test = await (
            await conn.execute(
                """select t.id, t.project_id, t.title, t.script from synthetic_tests t
                   where t.id = %s and t.project_id = coalesce(%s, t.project_id) and not exists (
                       select 1 from monitors m where m.id = %s and m.project_id <> t.project_id)""",
                (test_id, project_id, monitor_id),
            )
        ).fetchone()
        if test is None:
            return None
        rows = await (
            await conn.execute(
                "select name, value, is_secret from project_variables where project_id = %s",
                (test["project_id"],),
            )
        ).fetchall()
    variables: dict[str, str] = {}
    secrets: list[str] = []
    for row in rows:
        value = row["value"]
        if row["is_secret"]:
            value = key_ring().decrypt(value, variable_binding(test["project_id"], row["name"]))
        variables[row["name"]] = value
        if row["is_secret"] and value:
            secrets.append(value)
    return RunnableTest(
        id=test["id"],
        project_id=test["project_id"],
        title=test["title"],
        script=test["script"],
        variables=variables,
        secrets=tuple(secrets),
    )

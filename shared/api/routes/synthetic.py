"""The api function's synthetic endpoints (tag "synthetic"): Playwright scripts and project variables."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import (
    ProjectVariableCreate,
    ProjectVariableUpdate,
    SyntheticTestCreate,
    SyntheticTestUpdate,
)
from shared.api.schemas import ProjectVariableOut, SyntheticTestOut

synthetic_store = LazyModule("shared.synthetic.store")


@endpoint(
    "GET",
    "/synthetic-tests",
    summary="List synthetic test scripts",
    tag="synthetic",
    response=list[SyntheticTestOut],
)
async def list_synthetic_tests(ctx: Context):
    return await synthetic_store.list_tests(ctx.project_id)


@endpoint(
    "POST",
    "/synthetic-tests",
    summary="Create a Playwright script (plain or scriptBase64)",
    tag="synthetic",
    body=SyntheticTestCreate,
    response=SyntheticTestOut,
    status=201,
)
async def create_synthetic_test(ctx: Context):
    return await synthetic_store.create_test(ctx.project_id, ctx.body, ctx.api_key_id)


@endpoint(
    "GET",
    "/synthetic-tests/{test_id}",
    summary="A synthetic test script",
    tag="synthetic",
    response=SyntheticTestOut,
)
async def get_synthetic_test(ctx: Context, test_id: str):
    return await synthetic_store.get_test(ctx.project_id, as_uuid(test_id, "synthetic test"))


@endpoint(
    "PATCH",
    "/synthetic-tests/{test_id}",
    summary="Change a script's title or code",
    tag="synthetic",
    body=SyntheticTestUpdate,
    response=SyntheticTestOut,
)
async def update_synthetic_test(ctx: Context, test_id: str):
    return await synthetic_store.update_test(
        ctx.project_id, as_uuid(test_id, "synthetic test"), ctx.body, ctx.api_key_id
    )


@endpoint(
    "DELETE",
    "/synthetic-tests/{test_id}",
    summary="Delete a script no monitor uses",
    tag="synthetic",
    status=204,
    conflict="Monitors still use the test; the message names them",
)
async def delete_synthetic_test(ctx: Context, test_id: str):
    await synthetic_store.delete_test(ctx.project_id, as_uuid(test_id, "synthetic test"), ctx.api_key_id)


@endpoint(
    "GET",
    "/variables",
    summary="List project variables (secrets masked)",
    tag="synthetic",
    response=list[ProjectVariableOut],
)
async def list_variables(ctx: Context):
    return await synthetic_store.list_variables(ctx.project_id)


@endpoint(
    "POST",
    "/variables",
    summary="Create a project variable, plain or secret",
    tag="synthetic",
    body=ProjectVariableCreate,
    response=ProjectVariableOut,
    status=201,
    conflict="A variable of that name exists in this project",
)
async def create_variable(ctx: Context):
    return await synthetic_store.create_variable(ctx.project_id, ctx.body, ctx.api_key_id)


@endpoint(
    "GET",
    "/variables/{name}",
    summary="A project variable (secret masked)",
    tag="synthetic",
    response=ProjectVariableOut,
)
async def get_variable(ctx: Context, name: str):
    return await synthetic_store.get_variable(ctx.project_id, name)


@endpoint(
    "PATCH",
    "/variables/{name}",
    summary="Change a variable's value or secrecy",
    tag="synthetic",
    body=ProjectVariableUpdate,
    response=ProjectVariableOut,
)
async def update_variable(ctx: Context, name: str):
    return await synthetic_store.update_variable(ctx.project_id, name, ctx.body, ctx.api_key_id)


@endpoint("DELETE", "/variables/{name}", summary="Delete a project variable", tag="synthetic", status=204)
async def delete_variable(ctx: Context, name: str):
    await synthetic_store.delete_variable(ctx.project_id, name, ctx.api_key_id)

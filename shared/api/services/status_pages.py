"""Status pages as the API stores them (the "status-pages" endpoints in shared/api/routes/status_pages.py): a page
and its groups of monitors, always in one project. The public status function reads the same tables."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from shared import audit, db
from shared.api.requests import PageQuery, StatusPageCreate, StatusPagePatch
from shared.api.schemas import Pagination, StatusPageGroupOut, StatusPageOut, StatusPagePage
from shared.errors import ApiError
from shared.handlers import parse

_COLUMNS = """id, project_id, slug, title, description, custom_domain, show_response_times, show_uptime, published,
    created_at, updated_at"""

# Which unique constraint of migration 0012 a duplicate broke, and the field that names it.
_TAKEN = {
    "status_pages_slug_key": (
        "slug",
        "a status page with slug '{slug}' exists already (slugs are unique across projects)",
    ),
    "status_pages_custom_domain_key": (
        "customDomain",
        "another status page uses the domain '{custom_domain}'",
    ),
}


def page_not_found() -> ApiError:
    return ApiError(404, "not_found", "status page not found")


async def _require_monitors(conn: AsyncConnection, project_id: uuid.UUID, spec: StatusPageCreate) -> None:
    """Every monitor of every group is the project's: another's is refused naming its place in the body."""
    wanted = [m for group in spec.groups for m in group.monitor_ids]
    if not wanted:
        return
    rows = await (
        await conn.execute(
            "select id from monitors where project_id = %s and id = any(%s)", (project_id, wanted)
        )
    ).fetchall()
    found = {row["id"] for row in rows}
    for g, group in enumerate(spec.groups):
        for i, monitor_id in enumerate(group.monitor_ids):
            if monitor_id not in found:
                field = f"groups.{g}.monitorIds.{i}"
                raise ApiError(400, "validation_error", f"{field}: no monitor {monitor_id}", field)


async def _write_groups(conn: AsyncConnection, page_id: uuid.UUID, spec: StatusPageCreate) -> None:
    await conn.execute("delete from status_page_monitors where status_page_id = %s", (page_id,))
    rows = [
        (monitor_id, g, group.name, i)
        for g, group in enumerate(spec.groups)
        for i, monitor_id in enumerate(group.monitor_ids)
    ]
    if rows:
        await conn.execute(
            """insert into status_page_monitors (status_page_id, monitor_id, group_position, group_name, position)
               select %s, * from unnest(%s::uuid[], %s::int[], %s::text[], %s::int[])""",
            (page_id, *map(list, zip(*rows, strict=True))),
        )


async def _groups_of(
    conn: AsyncConnection, page_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[StatusPageGroupOut]]:
    rows = await (
        await conn.execute(
            """select status_page_id, group_position, group_name, array_agg(monitor_id order by position) as ids
               from status_page_monitors where status_page_id = any(%s)
               group by status_page_id, group_position, group_name
               order by status_page_id, group_position""",
            (page_ids,),
        )
    ).fetchall()
    groups: dict[uuid.UUID, list[StatusPageGroupOut]] = {page_id: [] for page_id in page_ids}
    for row in rows:
        groups[row["status_page_id"]].append(
            StatusPageGroupOut(name=row["group_name"], monitor_ids=row["ids"])
        )
    return groups


async def _page_out(conn: AsyncConnection, row: dict) -> StatusPageOut:
    return StatusPageOut(**row, groups=(await _groups_of(conn, [row["id"]]))[row["id"]])


def _spec_of(page: StatusPageOut) -> dict:
    """A stored page as the body that would create it (a PATCH applies over it)."""
    return page.model_dump(
        mode="json", by_alias=True, exclude={"id", "project_id", "created_at", "updated_at"}
    )


def _conflict(error: UniqueViolation, spec: StatusPageCreate) -> ApiError:
    field, message = _TAKEN.get(error.diag.constraint_name or "", ("slug", "the page conflicts with another"))
    return ApiError(409, "conflict", f"{field}: {message.format(**spec.model_dump())}", field)


async def create_page(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, spec: StatusPageCreate
) -> StatusPageOut:
    try:
        async with db.transaction() as conn:
            await _require_monitors(conn, project_id, spec)
            row = await (
                await conn.execute(
                    f"""insert into status_pages (project_id, slug, title, description, custom_domain,
                                                  show_response_times, show_uptime, published)
                        values (%s, %s, %s, %s, %s, %s, %s, %s) returning {_COLUMNS}""",
                    (
                        project_id,
                        spec.slug,
                        spec.title,
                        spec.description,
                        spec.custom_domain,
                        spec.show_response_times,
                        spec.show_uptime,
                        spec.published,
                    ),
                )
            ).fetchone()
            await _write_groups(conn, row["id"], spec)
            await audit.record(
                conn,
                project_id,
                api_key_id,
                "status_page.create",
                "status_page",
                row["id"],
                spec.model_dump(mode="json", by_alias=True),
            )
            return await _page_out(conn, row)
    except UniqueViolation as error:
        raise _conflict(error, spec) from None


async def replace_page(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, page_id: uuid.UUID, spec: StatusPageCreate
) -> StatusPageOut:
    try:
        async with db.transaction() as conn:
            before = await _fetch(conn, project_id, page_id, lock=True)
            await _require_monitors(conn, project_id, spec)
            row = await (
                await conn.execute(
                    f"""update status_pages set slug = %s, title = %s, description = %s, custom_domain = %s,
                            show_response_times = %s, show_uptime = %s, published = %s, updated_at = now()
                        where id = %s returning {_COLUMNS}""",
                    (
                        spec.slug,
                        spec.title,
                        spec.description,
                        spec.custom_domain,
                        spec.show_response_times,
                        spec.show_uptime,
                        spec.published,
                        page_id,
                    ),
                )
            ).fetchone()
            await _write_groups(conn, page_id, spec)
            after = spec.model_dump(mode="json", by_alias=True)
            changed = {key: value for key, value in after.items() if _spec_of(before).get(key) != value}
            await audit.record(
                conn, project_id, api_key_id, "status_page.update", "status_page", page_id, changed
            )
            return await _page_out(conn, row)
    except UniqueViolation as error:
        raise _conflict(error, spec) from None


async def patch_page(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, page_id: uuid.UUID, patch: StatusPagePatch
) -> StatusPageOut:
    current = await get_page(project_id, page_id)
    given = patch.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return await replace_page(
        project_id, api_key_id, page_id, parse(StatusPageCreate, {**_spec_of(current), **given})
    )


async def _fetch(
    conn: AsyncConnection, project_id: uuid.UUID, page_id: uuid.UUID, lock: bool = False
) -> StatusPageOut:
    row = await (
        await conn.execute(
            f"select {_COLUMNS} from status_pages where id = %s and project_id = %s {'for update' if lock else ''}",
            (page_id, project_id),
        )
    ).fetchone()
    if row is None:
        raise page_not_found()
    return await _page_out(conn, row)


async def get_page(project_id: uuid.UUID, page_id: uuid.UUID) -> StatusPageOut:
    async with db.transaction() as conn:
        return await _fetch(conn, project_id, page_id)


async def list_pages(project_id: uuid.UUID, query: PageQuery) -> StatusPagePage:
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute(
                    "select count(*) as n from status_pages where project_id = %s", (project_id,)
                )
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                f"""select {_COLUMNS} from status_pages where project_id = %s
                    order by created_at desc, id limit %s offset %s""",
                (project_id, query.limit, (query.page - 1) * query.limit),
            )
        ).fetchall()
        groups = await _groups_of(conn, [row["id"] for row in rows])  # one query for the whole page of pages
    return StatusPagePage(
        data=[StatusPageOut(**row, groups=groups[row["id"]]) for row in rows],
        pagination=Pagination.of(query.page, query.limit, total),
    )


async def delete_page(project_id: uuid.UUID, api_key_id: uuid.UUID | None, page_id: uuid.UUID) -> None:
    """Its groups, incidents and their timelines go with it."""
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "delete from status_pages where id = %s and project_id = %s returning slug",
                (page_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise page_not_found()
        await audit.record(
            conn, project_id, api_key_id, "status_page.delete", "status_page", page_id, {"slug": row["slug"]}
        )

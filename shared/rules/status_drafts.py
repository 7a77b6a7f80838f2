"""Automatic draft incidents, decided as one pure function: which status pages get a draft opened or extended
when their monitors go down, and which drafts note a recovery. Used by aggregate (shared/pipeline/status_drafts.py
writes the plans in the transaction that records the status changes).

A page has at most one open draft (migration 0012's incidents_one_open_draft): a second outage while one is open
adds its monitor and a timeline entry to it. A recovery never resolves a draft, which stays for an operator to
publish or delete; it only appends "recovered" to the draft that names the monitor."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shared.rules.markdown import escape_markdown

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("none", "minor", "major", "critical")  # in order of severity
DRAFT_STATUS = "investigating"
MAX_TITLE_LENGTH = 200  # as the API accepts a title (StatusIncidentCreate)


@dataclass(frozen=True)
class MonitorChange:
    """A status change aggregate recorded in this batch, into or out of down, in the order it was applied."""

    monitor_id: uuid.UUID
    monitor_name: str
    run_id: uuid.UUID
    from_status: str
    to_status: str
    failing_locations: tuple[str, ...] = ()  # the run's locations whose result failed (down, timeout, error)


@dataclass(frozen=True)
class OpenDraft:
    incident_id: uuid.UUID
    monitor_ids: frozenset[uuid.UUID]
    impact: str


@dataclass(frozen=True)
class PageFacts:
    """A status page holding a changed monitor, as read after this batch advanced its monitors."""

    page_id: uuid.UUID
    project_id: uuid.UUID
    monitor_ids: frozenset[uuid.UUID]
    down_monitor_ids: frozenset[uuid.UUID]  # the page's monitors whose status is down now
    draft: OpenDraft | None = None


@dataclass(frozen=True)
class DraftPlan:
    """What to write for one page. incident_id None: open a draft (or, if a concurrent batch opened one
    meanwhile, extend that: the writer upserts on the open-draft index)."""

    page_id: uuid.UUID
    project_id: uuid.UUID
    incident_id: uuid.UUID | None
    title: str
    impact: str
    opened_by_run_id: uuid.UUID | None
    add_monitor_ids: tuple[uuid.UUID, ...]
    notes: tuple[str, ...]  # timeline entries (Markdown), oldest first
    impact_raised: bool = False

    @property
    def writes_draft(self) -> bool:
        """Whether the draft row itself is written (opened, or its impact raised or its monitors grown); a
        plan that only notes recoveries appends to the timeline and leaves the row alone."""
        return self.incident_id is None or bool(self.add_monitor_ids) or self.impact_raised


def impact_for(down: int, total: int) -> str:
    """By how many of the page's monitors are down: all of them critical, half or more major, fewer minor."""
    if down <= 0 or total <= 0:
        return "none"
    if down >= total:
        return "critical"
    if down * 2 >= total:
        return "major"
    return "minor"


def worse_impact(a: str, b: str) -> str:
    return max(a, b, key=IMPACTS.index)


def _where(change: MonitorChange) -> str:
    return f" (failing in {', '.join(change.failing_locations)})" if change.failing_locations else ""


def _title(names: Sequence[str]) -> str:
    if len(names) == 1:
        title = f"{names[0]} is down"
    elif len(names) == 2:
        title = f"{names[0]} and {names[1]} are down"
    else:
        title = f"{names[0]} and {len(names) - 1} other monitors are down"
    return title if len(title) <= MAX_TITLE_LENGTH else title[: MAX_TITLE_LENGTH - 1] + "…"


@dataclass
class _Draft:
    """A page's draft as this batch's changes move it."""

    existing: OpenDraft | None
    monitor_ids: set[uuid.UUID]
    added: list[uuid.UUID] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the monitors that went down in this batch, for a title
    notes: list[str] = field(default_factory=list)
    opened_by_run_id: uuid.UUID | None = None
    went_down: bool = False

    @property
    def is_open(self) -> bool:
        return self.existing is not None or self.went_down

    def went_down_now(self, change: MonitorChange) -> None:
        name = f"**{escape_markdown(change.monitor_name)}**"
        if not self.is_open:
            self.notes.append(f"{name} is down{_where(change)}.")
            self.opened_by_run_id = change.run_id
        elif change.monitor_id in self.monitor_ids:
            self.notes.append(f"{name} is down again{_where(change)}.")
        else:
            self.notes.append(f"{name} is down too{_where(change)}.")
        if change.monitor_id not in self.monitor_ids:
            self.monitor_ids.add(change.monitor_id)
            self.added.append(change.monitor_id)
        if change.monitor_name not in self.names:
            self.names.append(change.monitor_name)
        self.went_down = True

    def recovered(self, change: MonitorChange) -> None:
        if self.is_open and change.monitor_id in self.monitor_ids:
            self.notes.append(f"**{escape_markdown(change.monitor_name)}** recovered.")


def plan_drafts(changes: Iterable[MonitorChange], pages: Mapping[uuid.UUID, PageFacts]) -> list[DraftPlan]:
    """One plan per page that has something to write, in page id order (the order the writer locks them in)."""
    changes = list(changes)
    plans = []
    for page_id in sorted(pages, key=str):
        page = pages[page_id]
        draft = _Draft(page.draft, set(page.draft.monitor_ids) if page.draft else set())
        for change in changes:
            if change.monitor_id not in page.monitor_ids:
                continue
            if change.to_status == "down":
                draft.went_down_now(change)
            elif change.from_status == "down":
                draft.recovered(change)
        if not draft.notes:
            continue
        plans.append(_plan(page, draft))
    return plans


def _plan(page: PageFacts, draft: _Draft) -> DraftPlan:
    current = page.draft.impact if page.draft else "none"
    impact = current
    if draft.went_down:
        # at least minor: a monitor went down in this batch, even if it recovered before the batch ended
        down_now = impact_for(max(len(page.down_monitor_ids), 1), len(page.monitor_ids))
        impact = worse_impact(current, down_now)
    return DraftPlan(
        page_id=page.page_id,
        project_id=page.project_id,
        incident_id=page.draft.incident_id if page.draft else None,
        # an extension keeps its draft's title: this one is written only if that draft was closed meanwhile;
        # a plan of recoveries alone writes no row, so needs none
        title=_title(draft.names) if draft.names else "",
        impact=impact,
        opened_by_run_id=draft.opened_by_run_id if page.draft is None else None,
        add_monitor_ids=tuple(draft.added),
        notes=tuple(draft.notes),
        impact_raised=impact != current,
    )

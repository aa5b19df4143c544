"""Database-level guarantees of the engine tables: weekend runs, append-only audit, tags."""

from __future__ import annotations

import datetime

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from execution.audit import event_record
from execution.models import ExecutionEvent, OrderIntent, SpecialSession
from tests.execution.engine_factories import IntentFactory, RunFactory, VersionFactory

pytestmark = pytest.mark.django_db


def _insert_run(
    version, *, day: datetime.date, special_session_id: int | None, test: bool = False
) -> None:
    """A raw INSERT, bypassing the ORM and the planner."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO execution_scheduledrun (session_date, boundary, fire_at, "
            "strategy_version_id, owner_id, source, source_ref, multiplier, allocations, "
            "special_session_id, is_test, state, note, mtm, peak_mtm, exit_reason, created_at) "
            "VALUES (%s, 'entry', %s, %s, %s, 'allocation', '', 1, '[]', %s, %s, 'planned', '', "
            "0, 0, '', %s)",
            [
                day,
                timezone.now(),
                version.pk,
                version.strategy.owner_id,
                special_session_id,
                test,
                timezone.now(),
            ],
        )


def _budget_sunday_id() -> int:
    # Seeded by the market reference (a Budget-day session on Sunday 1-Feb-2026).
    return SpecialSession.objects.get(exchange="NSE", date=datetime.date(2026, 2, 1)).pk


@pytest.mark.parametrize(
    ("day", "special", "allowed"),
    [
        (datetime.date(2026, 11, 21), False, False),  # Saturday
        (datetime.date(2026, 11, 22), False, False),  # Sunday
        (datetime.date(2026, 2, 1), True, True),  # Budget Sunday, a declared special session
        (datetime.date(2026, 11, 20), False, True),  # Friday
        (datetime.date(2026, 11, 23), False, True),  # Monday
    ],
)
def test_database_refuses_weekend_runs_unless_special_session(day, special, allowed):
    version = VersionFactory()
    session_id = _budget_sunday_id() if special else None
    if allowed:
        _insert_run(version, day=day, special_session_id=session_id)
        return
    with pytest.raises(IntegrityError), transaction.atomic():
        _insert_run(version, day=day, special_session_id=session_id)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SET CONSTRAINTS is PostgreSQL's")
def test_a_weekend_run_needs_a_reference_to_a_session_not_a_flag():
    """No column a writer can simply set true: the run must point at an existing
    SpecialSession row (the foreign key refuses a made-up id)."""
    version = VersionFactory()
    columns = {
        c.name
        for c in connection.introspection.get_table_description(
            connection.cursor(), "execution_scheduledrun"
        )
    }
    assert "is_special_session" not in columns
    missing = SpecialSession.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:  # Django's foreign keys are checked at commit
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _insert_run(version, day=datetime.date(2026, 11, 22), special_session_id=missing)


def test_orm_save_of_a_weekend_run_is_refused_too():
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(session_date=datetime.date(2026, 11, 21))


def test_paper_test_runs_may_be_dated_on_a_weekend():
    _insert_run(
        VersionFactory(), day=datetime.date(2026, 11, 21), special_session_id=None, test=True
    )


def test_runs_are_unique_per_version_boundary_and_day():
    run = RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(strategy_version=run.strategy_version, session_date=run.session_date)


def test_execution_events_refuse_update_and_delete_in_the_orm():
    event = event_record(kind="test", message="hello")
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        ExecutionEvent.objects.filter(pk=event.pk).update(message="changed")
    with pytest.raises(PermissionError):
        ExecutionEvent.objects.filter(pk=event.pk).delete()
    assert ExecutionEvent.objects.get(pk=event.pk).message == "hello"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE execution_executionevent SET message = 'changed' WHERE id = %s",
        "DELETE FROM execution_executionevent WHERE id = %s",
    ],
)
def test_execution_events_refuse_update_and_delete_at_the_database(statement):
    event = event_record(kind="test", message="hello")
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    assert ExecutionEvent.objects.get(pk=event.pk).message == "hello"


@pytest.mark.parametrize("tag", ["has space", "x" * 21, "dash-ed", ""])
def test_client_tags_must_be_alphanumeric_and_at_most_20(tag):
    # Too long is refused by the column (DataError) on PostgreSQL, by the CHECK on SQLite.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        IntentFactory(tag=tag)


def test_client_tags_are_unique():
    intent = IntentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        IntentFactory(tag=intent.tag, run=intent.run)
    assert OrderIntent.objects.count() == 1


def test_a_weekend_run_must_reference_the_special_session_of_its_own_date():
    """A Saturday run pointing at the Budget Sunday of another date is refused (trigger)."""
    version = VersionFactory()
    with pytest.raises(IntegrityError, match="own date"), transaction.atomic():
        _insert_run(
            version, day=datetime.date(2026, 11, 21), special_session_id=_budget_sunday_id()
        )
    _insert_run(version, day=datetime.date(2026, 2, 1), special_session_id=_budget_sunday_id())
    with (
        pytest.raises(IntegrityError, match="own date"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE execution_scheduledrun SET session_date = %s WHERE special_session_id = %s",
            [datetime.date(2026, 2, 8), _budget_sunday_id()],
        )


def test_a_special_session_with_runs_cannot_move_to_another_date():
    _insert_run(
        VersionFactory(), day=datetime.date(2026, 2, 1), special_session_id=_budget_sunday_id()
    )
    with pytest.raises(IntegrityError, match="cannot move"), transaction.atomic():
        SpecialSession.objects.filter(pk=_budget_sunday_id()).update(date=datetime.date(2026, 2, 8))
    # Without runs it may be corrected (the calendar is data, edited in admin).
    other = SpecialSession.objects.exclude(pk=_budget_sunday_id()).first()
    SpecialSession.objects.filter(pk=other.pk).update(reason="corrected")

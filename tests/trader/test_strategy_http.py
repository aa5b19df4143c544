"""The strategy wizard and pages, through HTTP like a trader."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from brokers.models import AccountStatus
from execution.markettime import IST
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import (
    BrokerAllocationFactory,
    LegFactory,
    StrategyFactory,
    StrategyVersionFactory,
)
from trader.models import RiskLimit, Strategy, StrategyStatus, StrategyVersion

pytestmark = pytest.mark.django_db


def url(step):
    return reverse("strategies:wizard", kwargs={"step": step})


def leg_post(legs, *, prefix="legs"):
    data = {f"{prefix}-TOTAL_FORMS": str(len(legs)), f"{prefix}-INITIAL_FORMS": "0"}
    for i, leg in enumerate(legs):
        row = {
            "side": "SELL",
            "option_type": "CE",
            "lots": "1",
            "expiry_choice": "current_week",
            "strike_mode": "atm",
            "strike_offset": "0",
            "stop_loss_unit": "points",
            "target_unit": "points",
        } | leg
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def nifty_id():
    from execution.models import Underlying

    return Underlying.objects.get(symbol="NIFTY").pk


def walk_to(client, step, *, template="short_strangle", legs=None, schedule=None):
    """Post valid answers for every step before `step`."""
    client.get(reverse("strategies:new"))
    answers = {
        "template": {"template": template},
        "basics": {"name": "My strangle", "underlying": nifty_id(), "kind": "intraday"},
        "legs": leg_post(
            legs
            or [
                {"side": "SELL", "option_type": "CE", "strike_offset": "4"},
                {"side": "SELL", "option_type": "PE", "strike_offset": "-4"},
            ]
        )
        | {"action": "next"},
        "schedule": schedule
        or {"entry_time": "09:20:00", "exit_time": "15:15:30", "trading_days": ["0", "2", "4"]},
        "risk": {"leg_failure_policy": "unwind", "stop_loss_mtm": "3000"},
    }
    for name in ["template", "basics", "legs", "schedule", "risk"]:
        if name == step:
            return
        response = client.post(url(name), answers[name])
        assert response.status_code == 302, (name, response.content.decode()[:3000])


def allocation_post(rows):
    data = {"allocations-TOTAL_FORMS": str(len(rows)), "allocations-INITIAL_FORMS": "0"}
    for i, row in enumerate(rows):
        full = {"sizing": "multiplier", "multiplier": "1", "priority": str(i + 1), "include": "on"}
        full |= row
        data.update({f"allocations-{i}-{k}": v for k, v in full.items() if v is not None})
    return data


def test_whole_wizard_creates_a_draft_with_version_legs_and_allocation(
    owner, owner_client, calendar_loaded_today
):
    account = BrokerAccountFactory(owner=owner)
    walk_to(owner_client, "allocation")
    response = owner_client.post(
        url("allocation"), allocation_post([{"broker_account": str(account.pk), "multiplier": "2"}])
    )
    assert response.status_code == 302
    review = owner_client.get(url("review"))
    body = review.content.decode()
    assert review.status_code == 200
    # Resolved strikes, payoff and quantities are shown before anything is saved.
    assert "Max loss" in body and "Unlimited" in body  # a naked short strangle
    assert "Breakevens" in body and "<svg" in body
    assert account.label in body and "2 \u00d7 65 = 130" in body
    assert not Strategy.objects.exists()
    saved = owner_client.post(url("review"))
    strategy = Strategy.objects.get()
    assert saved.status_code == 302 and saved["Location"] == reverse(
        "strategies:detail", kwargs={"pk": strategy.pk}
    )
    version = strategy.current_version
    assert strategy.status == StrategyStatus.DRAFT and strategy.template == "short_strangle"
    assert version.number == 1 and version.exit_time == datetime.time(15, 15, 30)
    assert version.weekdays == [0, 2, 4] and version.stop_loss_mtm == D(3000)
    assert [(leg.side, leg.strike_offset) for leg in version.legs.all()] == [
        ("SELL", 4),
        ("SELL", -4),
    ]
    allocation = strategy.allocations.get()
    assert allocation.broker_account == account and allocation.multiplier == D(2)
    assert strategy.events.filter(action="created").exists()


def test_risk_step_offers_hedge_confirmation_saves_it_and_refuses_nonsense(owner, owner_client):
    walk_to(owner_client, "risk")
    page = owner_client.get(url("risk")).content.decode()
    assert 'name="hedge_confirmation"' in page and "Wait until the broker accepts" in page
    bad = owner_client.post(
        url("risk"), {"leg_failure_policy": "unwind", "hedge_confirmation": "x"}
    )
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    chosen = {"leg_failure_policy": "halt", "hedge_confirmation": "none"}
    assert owner_client.post(url("risk"), chosen).status_code == 302
    account = BrokerAccountFactory(owner=owner)
    owner_client.post(url("allocation"), allocation_post([{"broker_account": str(account.pk)}]))
    assert owner_client.post(url("review")).status_code == 302
    strategy = Strategy.objects.get()
    assert (strategy.leg_failure_policy, strategy.hedge_confirmation) == ("halt", "none")
    detail = owner_client.get(reverse("strategies:detail", kwargs={"pk": strategy.pk}))
    assert "right behind the hedges, without waiting" in detail.content.decode()


def test_risk_step_without_hedge_confirmation_keeps_the_safe_choice(owner, owner_client):
    walk_to(owner_client, "allocation")  # its risk answers leave hedge_confirmation out
    account = BrokerAccountFactory(owner=owner)
    owner_client.post(url("allocation"), allocation_post([{"broker_account": str(account.pk)}]))
    owner_client.post(url("review"))
    assert Strategy.objects.get().hedge_confirmation == "ack"


def test_wizard_steps_render_as_htmx_fragments(owner_client):
    owner_client.get(reverse("strategies:new"))
    response = owner_client.post(
        url("template"), {"template": "iron_condor"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="wizard"') and "<html" not in body
    assert response["HX-Push-Url"] == url("basics")


def test_template_prefills_the_legs(owner_client):
    walk_to(owner_client, "legs", template="iron_condor")
    body = owner_client.get(url("legs")).content.decode()
    assert body.count('name="legs-') > 0
    assert 'name="legs-TOTAL_FORMS" value="4"' in body


def test_skipping_ahead_sends_back_to_the_first_unanswered_step(owner_client):
    owner_client.get(reverse("strategies:new"))
    response = owner_client.get(url("review"))
    assert response.status_code == 302 and response["Location"] == url("template")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            {"entry_time": "09:10:00", "exit_time": "15:00:00"},
            "Entry must be inside the market session",
        ),
        (
            {"entry_time": "09:20:00", "exit_time": "15:40:01"},
            "Exit must be inside the market session on 07 Dec 2026, 09:15-15:40 IST",
        ),
        ({"entry_time": "10:00:00", "exit_time": "10:00:00"}, "Exit must be after entry"),
        ({"entry_time": "11:00:00", "exit_time": "10:00:00"}, "Exit must be after entry"),
    ],
)
@time_machine.travel(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=IST), tick=True)
def test_bad_times_are_refused_with_a_message(owner_client, schedule, message):
    walk_to(owner_client, "schedule")
    response = owner_client.post(url("schedule"), schedule | {"trading_days": ["0"]})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert owner_client.session["strategy_wizard"]["schedule"] is None


@pytest.mark.parametrize(
    ("today", "accepted"),
    [
        # F&O closed at 15:30 until Friday 31-Jul-2026 and closes at 15:40 from 3-Aug-2026.
        (datetime.datetime(2026, 7, 31, 10, 0, tzinfo=IST), False),
        (datetime.datetime(2026, 12, 7, 10, 0, tzinfo=IST), True),
    ],
)
def test_an_exit_at_1535_follows_the_close_in_force_that_day(owner_client, today, accepted):
    with time_machine.travel(today, tick=True):
        walk_to(owner_client, "schedule")
        response = owner_client.post(
            url("schedule"),
            {"entry_time": "09:20:00", "exit_time": "15:35:00", "trading_days": ["0"]},
        )
        saved = owner_client.session["strategy_wizard"]["schedule"]
    if accepted:
        assert response.status_code == 302 and saved["exit_time"] == "15:35:00"
    else:
        assert response.status_code == 200
        assert (
            "Exit must be inside the market session on 31 Jul 2026, 09:15-15:30 IST"
            in response.content.decode()
        )
        assert saved is None


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([], "Add at least one leg."),
        ([{}] * 9, "at most 8 legs"),
        ([{"lots": "0"}], "Lots must be at least 1."),
        ([{"lots": "-2"}], "Lots must be at least 1."),
        ([{"lots": "51"}], "above your limit of 50 lots per order"),
        (
            [{"strike_mode": "exact", "strike_offset": "", "strike_price": "24025"}],
            "is not on the NIFTY strike grid",
        ),
        ([{"strike_mode": "delta", "strike_offset": "", "target_delta": "1.5"}], "between 0 and 1"),
    ],
)
def test_bad_legs_are_refused_with_a_message(owner_client, legs, message):
    walk_to(owner_client, "legs", template="custom")
    response = owner_client.post(url("legs"), leg_post(legs) | {"action": "next"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not owner_client.session["strategy_wizard"]["legs"]


def test_lots_above_the_users_own_limit_are_refused(owner, owner_client):
    RiskLimit.objects.create(
        user=owner,
        max_lots_per_order=2,
        max_lots_per_strategy=3,
        max_open_strategies=1,
        max_daily_loss=D(1000),
    )
    walk_to(owner_client, "legs", template="custom")
    response = owner_client.post(url("legs"), leg_post([{"lots": "3"}]) | {"action": "next"})
    assert "above your limit of 2 lots per order" in response.content.decode()
    response = owner_client.post(
        url("legs"), leg_post([{"lots": "2"}, {"lots": "2"}]) | {"action": "next"}
    )
    assert "above your limit of 3 lots per strategy" in response.content.decode()


def test_calendar_spread_with_one_expiry_is_refused(owner_client):
    walk_to(owner_client, "legs", template="calendar_spread")
    response = owner_client.post(
        url("legs"),
        leg_post([{"side": "SELL"}, {"side": "BUY"}]) | {"action": "next"},
    )
    assert "needs legs on different expiries" in response.content.decode()


def test_add_leg_keeps_typed_values_and_saves_nothing(owner_client):
    walk_to(owner_client, "legs", template="custom")
    response = owner_client.post(url("legs"), leg_post([{"lots": "3"}]) | {"action": "add"})
    body = response.content.decode()
    assert 'name="legs-TOTAL_FORMS" value="2"' in body and 'value="3"' in body
    assert not owner_client.session["strategy_wizard"]["legs"]


@pytest.mark.parametrize(
    ("make_account", "row", "message"),
    [
        ("stranger", {}, "Choose one of your own broker accounts."),
        ("disabled", {}, "is disabled"),
        ("own", {"multiplier": "0"}, "The multiplier must be above 0."),
        ("own", {"multiplier": "-1"}, "The multiplier must be above 0."),
        ("own", {"multiplier": "0.5"}, "would trade less than one lot"),
        ("own", {"sizing": "fixed", "multiplier": "", "fixed_lots": "0"}, "at least 1"),
    ],
)
def test_bad_allocations_are_refused_with_a_message(
    owner, stranger, owner_client, make_account, row, message
):
    if make_account == "stranger":
        account = BrokerAccountFactory(owner=stranger)
    elif make_account == "disabled":
        account = BrokerAccountFactory(owner=owner, status=AccountStatus.DISABLED)
    else:
        account = BrokerAccountFactory(owner=owner)
    walk_to(owner_client, "allocation")
    response = owner_client.post(
        url("allocation"), allocation_post([{"broker_account": str(account.pk)} | row])
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert owner_client.session["strategy_wizard"]["allocations"] is None
    assert not Strategy.objects.exists()


def test_review_refuses_to_save_when_a_limit_changed_meanwhile(owner, owner_client):
    walk_to(owner_client, "allocation")
    owner_client.post(url("allocation"), allocation_post([]))
    RiskLimit.objects.create(
        user=owner,
        max_lots_per_order=1,
        max_lots_per_strategy=1,
        max_open_strategies=1,
        max_daily_loss=D(1000),
    )
    response = owner_client.post(url("review"))
    assert response.status_code == 200
    assert "above your limit of 1 lots per strategy" in response.content.decode()
    assert not Strategy.objects.exists() and not StrategyVersion.objects.exists()


def make_strategy(owner, *, legs=2, status=StrategyStatus.DRAFT, account=None):
    strategy = StrategyFactory(owner=owner, status=status)
    version = StrategyVersionFactory(strategy=strategy, number=1)
    for position in range(1, legs + 1):
        LegFactory(version=version, position=position, strike_offset=position)
    BrokerAllocationFactory(
        strategy=strategy, broker_account=account or BrokerAccountFactory(owner=owner)
    )
    return strategy


def test_activate_pause_archive_duplicate_through_post(owner, owner_client):
    strategy = make_strategy(owner)
    detail = reverse("strategies:detail", kwargs={"pk": strategy.pk})
    assert (
        owner_client.get(reverse("strategies:activate", kwargs={"pk": strategy.pk})).status_code
        == 405
    )
    owner_client.post(reverse("strategies:activate", kwargs={"pk": strategy.pk}))
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.ACTIVE
    body = owner_client.get(detail).content.decode()
    assert "Next run" in body
    owner_client.post(reverse("strategies:pause", kwargs={"pk": strategy.pk}))
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.PAUSED
    response = owner_client.post(reverse("strategies:duplicate", kwargs={"pk": strategy.pk}))
    copy = Strategy.objects.exclude(pk=strategy.pk).get()
    assert response["Location"] == reverse("strategies:detail", kwargs={"pk": copy.pk})
    assert copy.status == StrategyStatus.DRAFT and copy.current_version.legs.count() == 2
    owner_client.post(reverse("strategies:archive", kwargs={"pk": strategy.pk}))
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.ARCHIVED
    # Archived strategies cannot be re-activated.
    response = owner_client.post(
        reverse("strategies:activate", kwargs={"pk": strategy.pk}), follow=True
    )
    assert "Cannot activate a strategy that is archived" in response.content.decode()


def test_activation_without_an_account_is_refused(owner, owner_client):
    strategy = StrategyFactory(owner=owner)
    StrategyVersionFactory(strategy=strategy)
    response = owner_client.post(
        reverse("strategies:activate", kwargs={"pk": strategy.pk}), follow=True
    )
    assert "Allocate at least one enabled broker account" in response.content.decode()
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.DRAFT


def test_editing_an_active_strategy_adds_a_version_from_the_next_session(owner, owner_client):
    strategy = make_strategy(owner, status=StrategyStatus.ACTIVE)
    owner_client.get(reverse("strategies:edit", kwargs={"pk": strategy.pk}))
    response = owner_client.post(
        url("legs"), leg_post([{"lots": "3", "strike_offset": "2"}]) | {"action": "next"}
    )
    assert response.status_code == 302
    for step in ["schedule", "risk", "allocation"]:
        page = owner_client.get(url(step))
        assert page.status_code == 200
    owner_client.post(url("review"))
    strategy.refresh_from_db()
    versions = list(strategy.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert strategy.current_version == versions[1]
    assert versions[1].effective_from > datetime.date.today()
    # Version 1 is untouched: runs that used it still point at what they executed.
    assert versions[0].legs.count() == 2 and versions[1].legs.get().lots == 3


def all_urls(pk):
    names = ["detail", "edit", "activate", "pause", "archive", "duplicate"]
    return [reverse(f"strategies:{name}", kwargs={"pk": pk}) for name in names]


def test_a_second_user_gets_404_everywhere_and_changes_nothing(owner, stranger_client):
    strategy = make_strategy(owner, status=StrategyStatus.ACTIVE)
    for address in all_urls(strategy.pk):
        assert stranger_client.get(address).status_code in (404, 405)
        assert stranger_client.post(address).status_code == 404, address
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.ACTIVE
    assert Strategy.objects.count() == 1
    assert strategy.name not in stranger_client.get(reverse("strategies:list")).content.decode()
    # Smuggling the strategy into the wizard's draft does not reach it either.
    session = stranger_client.session
    session["strategy_wizard"] = {"strategy_id": strategy.pk, "template": "custom"}
    session.save()
    assert stranger_client.get(url("basics")).status_code == 404


def _count(client, address):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(address)
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_does_not_grow_with_strategies_or_legs(owner, owner_client):
    make_strategy(owner, legs=1)
    few = _count(owner_client, reverse("strategies:list"))
    for _ in range(6):
        make_strategy(owner, legs=4, status=StrategyStatus.ACTIVE)
    many = _count(owner_client, reverse("strategies:list"))
    assert many == few


def test_detail_query_count_does_not_grow_with_legs_versions_or_runs(owner, owner_client):
    from execution.models import ScheduledRun

    strategy = make_strategy(owner, legs=1)
    address = reverse("strategies:detail", kwargs={"pk": strategy.pk})
    few = _count(owner_client, address)
    for number in range(2, 6):
        version = StrategyVersionFactory(strategy=strategy, number=number)
        for position in range(1, 9):
            LegFactory(version=version, position=position)
    for day in range(5):
        session_date = datetime.date(2026, 11, 16) + datetime.timedelta(days=day)
        for boundary in ("entry", "exit"):
            ScheduledRun.objects.create(
                session_date=session_date,
                boundary=boundary,
                fire_at=datetime.datetime.combine(
                    session_date, datetime.time(9, 20), tzinfo=datetime.UTC
                ),
                strategy_version=strategy.current_version,
                owner=owner,
                source="allocation",
                state="done",
            )
    body = owner_client.get(address).content.decode()
    assert "Past runs" in body and body.count("<td>Mon 16 Nov 2026</td>") == 2
    assert _count(owner_client, address) == few


def test_templates_page_lists_eight_templates_with_explanations(owner_client):
    body = owner_client.get(reverse("strategies:templates")).content.decode()
    for name in [
        "Short straddle",
        "Short strangle",
        "Iron condor",
        "Iron butterfly",
        "Bull call spread",
        "Bear put spread",
        "Long straddle",
        "Calendar spread",
    ]:
        assert name in body


def test_risk_limits_cannot_exceed_the_ceiling(owner, owner_client):
    address = reverse("strategies:risk-limits")
    response = owner_client.post(
        address,
        {
            "max_lots_per_order": "500",
            "max_lots_per_strategy": "100",
            "max_open_strategies": "3",
            "max_daily_loss": "10000",
        },
    )
    assert "The platform allows at most 50" in response.content.decode()
    assert not RiskLimit.objects.filter(user=owner).exists()
    response = owner_client.post(
        address,
        {
            "max_lots_per_order": "5",
            "max_lots_per_strategy": "10",
            "max_open_strategies": "3",
            "max_daily_loss": "10000",
        },
    )
    assert response.status_code == 302
    assert RiskLimit.objects.get(user=owner).max_lots_per_order == 5


def banknifty_id():
    from execution.models import Underlying

    return Underlying.objects.get(symbol="BANKNIFTY").pk


@time_machine.travel(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=IST), tick=True)
def test_banknifty_offers_monthly_expiries_only_from_template_to_activation(owner, owner_client):
    owner_client.get(reverse("strategies:new"))
    owner_client.post(url("template"), {"template": "short_strangle"})
    owner_client.post(
        url("basics"), {"name": "BN strangle", "underlying": banknifty_id(), "kind": "intraday"}
    )
    page = owner_client.get(url("legs")).content.decode()
    # The template's "current week" became "current month"; weeklies are not offered.
    assert 'value="current_month" selected' in page
    assert 'value="current_week"' not in page and 'value="next_week"' not in page
    before = owner_client.session["strategy_wizard"]["legs"]
    weekly = leg_post([{"side": "SELL", "option_type": "CE", "strike_offset": "4"}])
    refused = owner_client.post(url("legs"), weekly | {"action": "next"})
    assert refused.status_code == 200
    assert "BANKNIFTY has no weekly expiry, so no current week contract." in (
        refused.content.decode()
    )
    assert owner_client.session["strategy_wizard"]["legs"] == before  # nothing saved
    monthly = leg_post(
        [
            {
                "side": "SELL",
                "option_type": "CE",
                "strike_offset": "4",
                "expiry_choice": "current_month",
            },
            {
                "side": "SELL",
                "option_type": "PE",
                "strike_offset": "-4",
                "expiry_choice": "current_month",
            },
        ]
    )
    assert owner_client.post(url("legs"), monthly | {"action": "next"}).status_code == 302
    owner_client.post(
        url("schedule"),
        {"entry_time": "09:20:00", "exit_time": "15:15:00", "trading_days": ["0", "1"]},
    )
    owner_client.post(url("risk"), {"leg_failure_policy": "unwind"})
    account = BrokerAccountFactory(owner=owner)
    owner_client.post(url("allocation"), allocation_post([{"broker_account": str(account.pk)}]))
    review = owner_client.get(url("review")).content.decode()
    assert "No account allocated" not in review and account.label in review
    assert "29 Dec 2026" in review  # BANKNIFTY's December monthly
    assert owner_client.post(url("review")).status_code == 302
    strategy = Strategy.objects.get()
    assert {leg.expiry_choice for leg in strategy.current_version.legs.all()} == {"current_month"}


@time_machine.travel(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=IST), tick=True)
def test_activation_refuses_a_weekly_leg_on_banknifty_saying_why(owner, owner_client):
    from execution.models import Underlying

    strategy = StrategyFactory(owner=owner, underlying=Underlying.objects.get(symbol="BANKNIFTY"))
    version = StrategyVersionFactory(strategy=strategy)
    LegFactory(version=version, position=1, expiry_choice="current_week")
    strategy.current_version = version
    strategy.save(update_fields=["current_version"])
    BrokerAllocationFactory(strategy=strategy, broker_account=BrokerAccountFactory(owner=owner))
    response = owner_client.post(
        reverse("strategies:activate", kwargs={"pk": strategy.pk}), follow=True
    )
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.DRAFT
    assert "Leg 1 cannot be traded: BANKNIFTY has no weekly expiry" in response.content.decode()


@time_machine.travel(datetime.datetime(2027, 1, 20, 10, 0, tzinfo=IST), tick=True)
def test_review_lists_the_ticked_account_even_when_strikes_cannot_resolve(owner, owner_client):
    # January 2027: its holiday list is not loaded, so no expiry can be named yet.
    owner_client.force_login(owner)  # a session opened at the real date would have expired
    account = BrokerAccountFactory(owner=owner)
    walk_to(owner_client, "allocation")
    posted = owner_client.post(
        url("allocation"), allocation_post([{"broker_account": str(account.pk)}])
    )
    assert posted.status_code == 302, posted.content.decode()[:3000]
    review = owner_client.get(url("review")).content.decode()
    assert "Strikes cannot be resolved right now: NSE holiday calendar for 2027 not loaded" in (
        review
    )
    assert "No account allocated" not in review
    assert account.label in review and "quantities show once the strikes resolve" in review


def test_legs_step_shows_premiums_payoff_today_and_greeks_as_legs_change(
    owner_client, calendar_loaded_today
):
    walk_to(owner_client, "legs")
    page = owner_client.get(url("legs")).content.decode()
    assert "data-legs-preview" in page and 'class="curve today"' in page
    assert "data-greek-delta" in page and "Margin (estimate)" in page
    assert 'class="label strike"' in page  # strikes are labelled under the price axis
    changed = owner_client.post(
        url("legs"),
        leg_post(
            [
                {"side": "SELL", "option_type": "CE", "strike_offset": "2"},
                {"side": "BUY", "option_type": "CE", "strike_offset": "6"},
            ]
        )
        | {"action": "preview"},
    )
    body = changed.content.decode()
    assert changed.status_code == 200 and "Next: times and days" in body  # stays on the step
    assert "data-preview-max-loss" in body and "Unlimited" not in body.split("Max loss")[1][:80]
    assert "The loss is unlimited" not in body


def test_legs_step_warns_of_far_out_of_the_money_legs_and_large_losses(
    owner_client, calendar_loaded_today
):
    walk_to(owner_client, "legs")
    page = owner_client.post(
        url("legs"),
        leg_post([{"side": "SELL", "option_type": "PE", "strike_offset": "-500"}])
        | {"action": "preview"},
    ).content.decode()
    assert "far out of the money" in page or "Strikes cannot be resolved" in page
    naked = owner_client.post(
        url("legs"),
        leg_post([{"side": "SELL", "option_type": "CE", "strike_offset": "0"}])
        | {"action": "preview"},
    ).content.decode()
    assert "The loss is unlimited" in naked and "of margin (estimate)" in naked


def test_add_a_leg_stops_at_the_leg_limit(owner_client):
    from trader.models.strategies import MAX_LEGS

    walk_to(owner_client, "legs")
    legs = [{"strike_offset": str(i)} for i in range(MAX_LEGS)]
    page = owner_client.post(url("legs"), leg_post(legs) | {"action": "add"}).content.decode()
    assert f"at most {MAX_LEGS} legs" in page
    assert page.count('name="legs-TOTAL_FORMS" value="') == 1
    assert f'name="legs-TOTAL_FORMS" value="{MAX_LEGS}"' in page
    assert "disabled" in page.split('value="add"')[1][:80]

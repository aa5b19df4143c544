"""Fill a scratch database for the desk's load test, and print what wrk needs.

    DATABASE_URL=postgres://…/scratch python manage.py migrate
    DATABASE_URL=postgres://…/scratch python manage.py seed_desk_load --users 50 --runs 500 \\
        --orders 10000 --out desk-load.json

Creates `users` traders, each with one paper account, `runs` runs spread over them (today's
session date, so the dashboard has work), `orders` filled orders spread over the runs (each
with its fill), four positions per run (two still open and marked), and a logged-in session
per trader. Writes a JSON file with each trader's session cookie and run ids, and the database
queries each desk fragment makes for one trader (which must not depend on `orders`).
Refuses a database that already has runs: it is for scratch databases only (`--queries-only`
reads the figures again from one that was seeded).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

FRAGMENTS = {
    "dashboard": "trader:dashboard-live",
    "run": "execution:run-live",
    "positions": "execution:positions-live",
    "runs": "execution:runs-live",
}


class Command(BaseCommand):
    help = "Fill a scratch database with traders, runs, orders and fills for the desk load test."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--runs", type=int, default=500)
        parser.add_argument("--orders", type=int, default=10_000)
        parser.add_argument("--out", default="desk-load.json")
        parser.add_argument(
            "--queries-only",
            action="store_true",
            help="Seed nothing: print the queries per fragment of the first seeded trader.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from execution.models import ScheduledRun

        if options["queries_only"]:
            from trader.models import User

            user = User.objects.filter(email="load0@example.com").first()
            run = ScheduledRun.objects.filter(owner=user).order_by("pk").first()
            if user is None or run is None:
                raise CommandError("Nothing seeded here yet.")
            self.stdout.write(json.dumps({"queries": self._queries(user, run.pk)}))
            return
        if ScheduledRun.objects.exists():
            raise CommandError("This database already has runs: use a scratch database.")
        users, runs = self._seed(options["users"], options["runs"], options["orders"])
        sessions = [self._session(user) for user in users]
        queries = self._queries(users[0], runs[users[0].pk][0])
        data: dict[str, Any] = {
            "host": "127.0.0.1",
            "traders": [
                {"cookie": cookie, "runs": runs[user.pk]}
                for user, cookie in zip(users, sessions, strict=True)
            ],
            "queries_per_fragment": queries,
        }
        with open(options["out"], "w", encoding="utf-8") as out:
            json.dump(data, out)
        # The same traders as a Lua table for wrk (tests/load/desk_polling.lua).
        with open(options["out"].removesuffix(".json") + ".lua", "w", encoding="utf-8") as out:
            rows = [f'{{cookie="{t["cookie"]}", run={t["runs"][0]}}},' for t in data["traders"]]
            out.write("return {\n" + "\n".join(rows) + "\n}\n")
        self.stdout.write(json.dumps({"out": options["out"], "queries": queries}))

    def _seed(self, n_users: int, n_runs: int, n_orders: int) -> tuple[list[Any], dict]:
        from brokers.models import AccountStatus, Broker, BrokerAccount
        from execution.models import Fill, OrderIntent, Position, ScheduledRun, Underlying
        from execution.planning.plan import today_ist
        from trader.models import Leg, Strategy, StrategyVersion, User

        rng = random.Random(7)
        now = timezone.now()
        today = today_ist()
        nifty = Underlying.objects.get(symbol="NIFTY")
        users, accounts, versions = [], {}, {}
        with transaction.atomic():
            for index in range(n_users):
                user = User.objects.create_user(f"load{index}@example.com", "load-pass-123456")
                users.append(user)
                accounts[user.pk] = BrokerAccount.objects.create(
                    owner=user,
                    broker=Broker.PAPER,
                    label=f"Paper {index}",
                    status=AccountStatus.EXPIRED,
                )
                strategy = Strategy.objects.create(
                    owner=user, name=f"Load {index}", underlying=nifty
                )
                version = StrategyVersion.objects.create(
                    strategy=strategy,
                    number=1,
                    entry_time="09:20",
                    exit_time="15:10",
                    effective_from=today,
                )
                Leg.objects.create(
                    version=version,
                    position=1,
                    side="SELL",
                    option_type="CE",
                    lots=1,
                    strike_offset=2,
                )
                versions[user.pk] = version
            runs: dict[int, list[int]] = {u.pk: [] for u in users}
            run_rows = []
            for index in range(n_runs):
                user = users[index % n_users]
                run_rows.append(
                    ScheduledRun(
                        session_date=today,
                        boundary="entry",
                        fire_at=now - timedelta(minutes=index % 300),
                        strategy_version=versions[user.pk],
                        owner=user,
                        source="paper_test",
                        source_ref=str(index),
                        is_test=True,
                        state="dispatched",
                    )
                )
            ScheduledRun.objects.bulk_create(run_rows)
            intents = []
            for index in range(n_orders):
                run = run_rows[index % n_runs]
                intents.append(
                    OrderIntent(
                        run=run,
                        account=accounts[run.owner_id],
                        side="BUY" if index % 2 else "SELL",
                        exchange="NFO",
                        tradingsymbol=f"NIFTY26DEC{24000 + 50 * (index % 8)}CE",
                        quantity=65,
                        lot_size=65,
                        tag=f"L{index:011d}",
                        state="filled",
                        intended_at=run.fire_at,
                        sent_at=run.fire_at + timedelta(milliseconds=5),
                        acked_at=run.fire_at + timedelta(milliseconds=40),
                        filled_quantity=65,
                        average_price=Decimal(rng.randint(2000, 9000)) / 100,
                    )
                )
            OrderIntent.objects.bulk_create(intents, batch_size=2000)
            Fill.objects.bulk_create(
                [
                    Fill(
                        intent=intent,
                        cumulative_quantity=65,
                        quantity=65,
                        price=intent.average_price or Decimal(0),
                        filled_at=intent.acked_at or now,
                    )
                    for intent in intents
                ],
                batch_size=2000,
            )
            positions = []
            for run in run_rows:
                runs[run.owner_id].append(run.pk)
                for leg in range(4):
                    still_open = leg < 2
                    positions.append(
                        Position(
                            run=run,
                            account=accounts[run.owner_id],
                            owner_id=run.owner_id,
                            exchange="NFO",
                            tradingsymbol=f"NIFTY26DEC{24000 + 100 * leg}CE",
                            lot_size=65,
                            net_quantity=-65 if still_open else 0,
                            buy_quantity=0 if still_open else 65,
                            sell_quantity=65,
                            buy_value=Decimal(0) if still_open else Decimal("2600"),
                            sell_value=Decimal("3250"),
                            last_price=Decimal("45.5"),
                        )
                    )
            Position.objects.bulk_create(positions, batch_size=2000)
        return users, runs

    def _session(self, user: Any) -> str:
        engine = import_module(settings.SESSION_ENGINE)
        session = engine.SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"

    def _queries(self, user: Any, run_id: int) -> dict[str, int]:
        client = Client()
        client.force_login(user)
        counts = {}
        for name, url_name in FRAGMENTS.items():
            url = reverse(url_name, args=[run_id]) if name == "run" else reverse(url_name)
            client.get(url, HTTP_HOST="127.0.0.1")  # warm: the funds cache, the session
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url, HTTP_HOST="127.0.0.1")
            if response.status_code != 200:
                raise CommandError(f"{url} answered {response.status_code}")
            counts[name] = len(captured.captured_queries)
        return counts

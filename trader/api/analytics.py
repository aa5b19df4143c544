"""/api/v1/analytics/: the analytics pages' summaries (execution timing, broker comparison, cost
and performance per strategy) from the same selectors, for the same period and the same
live / paper / test filter, with a subscribed black box named by its listing only (through
marketplace.disclosure, as on the pages)."""

from __future__ import annotations

import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from execution.analytics import reports as analytics
from execution.analytics.forms import MAX_DAYS, period_from_query
from execution.planning import plan as planning
from marketplace.disclosure import strategy_rows_disclosed, timing_disclosed
from trader.api.views import DENIED, FIELD_ERRORS, ApiView, _example, _me


def _money(**kwargs: Any) -> drf_serializers.DecimalField:
    return drf_serializers.DecimalField(max_digits=16, decimal_places=2, **kwargs)


class StatsSerializer(drf_serializers.Serializer):
    count = drf_serializers.IntegerField()
    p50 = drf_serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    p90 = drf_serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    p99 = drf_serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    max = drf_serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)


class TimingGroupSerializer(drf_serializers.Serializer):
    label = drf_serializers.CharField()  # type: ignore[assignment]
    send = StatsSerializer(help_text="Milliseconds from the intended instant T to the send.")
    ack = StatsSerializer(help_text="Milliseconds from T to the broker's acknowledgement.")
    early = drf_serializers.IntegerField(help_text="Orders sent before T.")


class OrderTimingSerializer(drf_serializers.Serializer):
    run_id = drf_serializers.IntegerField()
    day = drf_serializers.DateField()
    strategy = drf_serializers.CharField()
    account = drf_serializers.CharField()
    side = drf_serializers.CharField()
    tradingsymbol = drf_serializers.CharField(help_text="A black box's: its listing's title.")
    intended_at = drf_serializers.DateTimeField(allow_null=True)
    sent_at = drf_serializers.DateTimeField(allow_null=True)
    send_ms = drf_serializers.DecimalField(max_digits=12, decimal_places=3)
    ack_ms = drf_serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)


class PeriodSerializer(drf_serializers.Serializer):
    start = drf_serializers.DateField()
    end = drf_serializers.DateField()
    kinds = drf_serializers.ListField(child=drf_serializers.CharField())


class TimingSerializer(drf_serializers.Serializer):
    period = PeriodSerializer()
    overall = TimingGroupSerializer()
    by_day = TimingGroupSerializer(many=True)
    by_account = TimingGroupSerializer(many=True)
    by_strategy = TimingGroupSerializer(many=True)
    early_orders = OrderTimingSerializer(many=True)
    slowest = OrderTimingSerializer(many=True)


class BrokerRowSerializer(drf_serializers.Serializer):
    account_id = drf_serializers.IntegerField()
    account = drf_serializers.CharField()
    mode = drf_serializers.CharField(help_text="live or paper: never mixed.")
    orders = drf_serializers.IntegerField()
    acknowledged = drf_serializers.IntegerField()
    ack_latency = StatsSerializer(help_text="Milliseconds from the send to the broker's answer.")
    rejected = drf_serializers.IntegerField()
    rejection_percent = drf_serializers.DecimalField(
        max_digits=6, decimal_places=1, allow_null=True
    )
    reasons = drf_serializers.ListField(
        child=drf_serializers.ListField(), help_text="[reason, count], most frequent first."
    )
    unknown = drf_serializers.IntegerField(help_text="Orders whose outcome was unknown.")
    resolutions = drf_serializers.ListField(
        child=drf_serializers.ListField(), help_text="[how it was resolved, count]."
    )
    unresolved = drf_serializers.IntegerField()
    filled = drf_serializers.IntegerField()
    slippage_orders = drf_serializers.IntegerField()
    slippage_rupees = _money()
    slippage_percent = drf_serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)


class BrokersSerializer(drf_serializers.Serializer):
    period = PeriodSerializer()
    rows = BrokerRowSerializer(many=True)


class ChargesSerializer(drf_serializers.Serializer):
    orders = drf_serializers.IntegerField()
    buy_value = _money()
    sell_value = _money()
    brokerage = _money()
    stt = _money()
    exchange_txn = _money()
    ipft = _money()
    sebi_fee = _money()
    stamp = _money()
    gst = _money()
    total = _money()
    brokerage_simulated = drf_serializers.BooleanField(help_text="Paper brokerage.")


class CostRowSerializer(drf_serializers.Serializer):
    strategy_id = drf_serializers.IntegerField()
    strategy = drf_serializers.CharField(help_text="A black box's: its listing's title.")
    mode = drf_serializers.CharField()
    month = drf_serializers.DateField(help_text="First day of the month.")
    charges = ChargesSerializer()
    gross_pnl = _money()
    net_pnl = _money()
    percent_of_gross = drf_serializers.DecimalField(
        max_digits=10, decimal_places=1, allow_null=True
    )
    orders_without_rate = drf_serializers.IntegerField(
        help_text="Orders on a day with no charge rate loaded: not counted above."
    )


class CostsSerializer(drf_serializers.Serializer):
    period = PeriodSerializer()
    rows = CostRowSerializer(many=True)


class EquityPointSerializer(drf_serializers.Serializer):
    day = drf_serializers.DateField()
    pnl = _money()
    cumulative = _money()
    drawdown = _money()


class PerformanceRowSerializer(drf_serializers.Serializer):
    strategy_id = drf_serializers.IntegerField()
    strategy = drf_serializers.CharField(help_text="A black box's: its listing's title.")
    mode = drf_serializers.CharField()
    runs = drf_serializers.IntegerField(help_text="Runs that traded.")
    realised_pnl = _money(source="curve.total")
    max_drawdown = _money(source="curve.max_drawdown")
    win_rate_percent = drf_serializers.DecimalField(
        source="curve.win_rate_percent", max_digits=5, decimal_places=1
    )
    charges = _money()
    net_pnl = _money()
    orders_without_rate = drf_serializers.IntegerField()
    brokerage_simulated = drf_serializers.BooleanField()
    daily = EquityPointSerializer(many=True, source="curve.points")


class PerformanceSerializer(drf_serializers.Serializer):
    period = PeriodSerializer()
    rows = PerformanceRowSerializer(many=True)


PERIOD_PARAMETERS = [
    OpenApiParameter(
        "start",
        datetime.date,
        description="First IST session date (with `end`); default: 29 days before today.",
    ),
    OpenApiParameter("end", datetime.date, description="Last IST session date; default today."),
    OpenApiParameter(
        "kinds",
        str,
        many=True,
        enum=list(analytics.RUN_KINDS),
        explode=True,
        description="Which runs count, repeated: live, paper, test (paper tests). Default live "
        "and paper.",
    ),
]
PERIOD_TEXT = (
    f" For IST session dates `start`..`end` (both included, at most {MAX_DAYS} days; default "
    "the last 30 days) and the runs of `kinds` (default live and paper), as the page's filter; "
    "a bad period is 400 with the field's error."
)
PERIOD_EXAMPLE = {"start": "2026-11-05", "end": "2026-12-04", "kinds": ["live", "paper"]}
STATS_EXAMPLE = {"count": 40, "p50": "4.512", "p90": "7.880", "p99": "11.020", "max": "11.020"}


def _period(request: Request) -> dict[str, Any]:
    """The page's period form, but a bad value is refused (the page falls back to defaults)."""
    form, start, end, kinds = period_from_query(request.query_params, today=planning.today_ist())
    if form.errors:
        raise ValidationError(
            {
                field: [e["message"] for e in errs]
                for field, errs in form.errors.get_json_data().items()
            }
        )
    return {"start": start, "end": end, "kinds": kinds}


class TimingView(ApiView):
    @extend_schema(
        tags=["analytics"],
        summary="Execution timing",
        description=(
            "How late each order left after its intended instant T and how late the broker "
            "acknowledged it (milliseconds, p50/p90/p99/max), overall and per day, account and "
            "strategy, with the early and the slowest orders. A black box's orders carry its "
            "listing's title and no clock times." + PERIOD_TEXT
        ),
        parameters=PERIOD_PARAMETERS,
        responses={200: TimingSerializer, **FIELD_ERRORS, **DENIED},
        examples=_example(
            "timing",
            {
                "period": PERIOD_EXAMPLE,
                "overall": {
                    "label": "All orders",
                    "send": STATS_EXAMPLE,
                    "ack": STATS_EXAMPLE,
                    "early": 0,
                },
                "by_day": [],
                "by_account": [],
                "by_strategy": [],
                "early_orders": [],
                "slowest": [],
            },
        ),
    )
    def get(self, request: Request) -> Response:
        period = _period(request)
        report = timing_disclosed(
            user=_me(request), report=analytics.timing_for_user(user=_me(request), **period)
        )
        return Response(TimingSerializer({"period": period, **report.__dict__}).data)


class BrokersView(ApiView):
    @extend_schema(
        tags=["analytics"],
        summary="Broker comparison",
        description=(
            "Per broker account: acknowledgement latency, rejections with their most frequent "
            "reasons, unknown outcomes and how each was resolved, fills and slippage against "
            "the quote the engine resolved before T." + PERIOD_TEXT
        ),
        parameters=PERIOD_PARAMETERS,
        responses={200: BrokersSerializer, **FIELD_ERRORS, **DENIED},
        examples=_example(
            "brokers",
            {
                "period": PERIOD_EXAMPLE,
                "rows": [
                    {
                        "account_id": 3,
                        "account": "Kite main",
                        "mode": "live",
                        "orders": 40,
                        "acknowledged": 39,
                        "ack_latency": STATS_EXAMPLE,
                        "rejected": 1,
                        "rejection_percent": "2.5",
                        "reasons": [["Insufficient margin", 1]],
                        "unknown": 0,
                        "resolutions": [],
                        "unresolved": 0,
                        "filled": 39,
                        "slippage_orders": 39,
                        "slippage_rupees": "412.50",
                        "slippage_percent": "0.12",
                    }
                ],
            },
        ),
    )
    def get(self, request: Request) -> Response:
        period = _period(request)
        rows = analytics.broker_comparison_for_user(user=_me(request), **period)
        return Response(BrokersSerializer({"period": period, "rows": rows}).data)


CHARGES_EXAMPLE = {
    "orders": 8,
    "buy_value": "24000.00",
    "sell_value": "31000.00",
    "brokerage": "160.00",
    "stt": "31.00",
    "exchange_txn": "19.58",
    "ipft": "0.28",
    "sebi_fee": "0.06",
    "stamp": "0.72",
    "gst": "32.33",
    "total": "243.97",
    "brokerage_simulated": False,
}


class CostsView(ApiView):
    @extend_schema(
        tags=["analytics"],
        summary="Cost per strategy",
        description=(
            "Brokerage, taxes and fees of the filled orders per strategy, live or paper, and "
            "month, beside the gross P&L of the positions closed that month; charges from the "
            "dated rate rows in force each day." + PERIOD_TEXT
        ),
        parameters=PERIOD_PARAMETERS,
        responses={200: CostsSerializer, **FIELD_ERRORS, **DENIED},
        examples=_example(
            "costs",
            {
                "period": PERIOD_EXAMPLE,
                "rows": [
                    {
                        "strategy_id": 7,
                        "strategy": "NIFTY short strangle",
                        "mode": "live",
                        "month": "2026-11-01",
                        "charges": CHARGES_EXAMPLE,
                        "gross_pnl": "7000.00",
                        "net_pnl": "6756.03",
                        "percent_of_gross": "3.5",
                        "orders_without_rate": 0,
                    }
                ],
            },
        ),
    )
    def get(self, request: Request) -> Response:
        period = _period(request)
        rows = strategy_rows_disclosed(
            user=_me(request), rows=analytics.costs_for_user(user=_me(request), **period)
        )
        return Response(CostsSerializer({"period": period, "rows": rows}).data)


class PerformanceView(ApiView):
    @extend_schema(
        tags=["analytics"],
        summary="Performance per strategy",
        description=(
            "Realised P&L per strategy, live and paper apart: daily and cumulative, maximum "
            "drawdown, win rate over traded days, runs that traded, and the period's charges."
            + PERIOD_TEXT
        ),
        parameters=PERIOD_PARAMETERS,
        responses={200: PerformanceSerializer, **FIELD_ERRORS, **DENIED},
        examples=_example(
            "performance",
            {
                "period": PERIOD_EXAMPLE,
                "rows": [
                    {
                        "strategy_id": 7,
                        "strategy": "NIFTY short strangle",
                        "mode": "live",
                        "runs": 2,
                        "realised_pnl": "7000.00",
                        "max_drawdown": "1500.00",
                        "win_rate_percent": "50.0",
                        "charges": "243.97",
                        "net_pnl": "6756.03",
                        "orders_without_rate": 0,
                        "brokerage_simulated": False,
                        "daily": [
                            {
                                "day": "2026-12-03",
                                "pnl": "-1500.00",
                                "cumulative": "-1500.00",
                                "drawdown": "1500.00",
                            },
                            {
                                "day": "2026-12-04",
                                "pnl": "8500.00",
                                "cumulative": "7000.00",
                                "drawdown": "0.00",
                            },
                        ],
                    }
                ],
            },
        ),
    )
    def get(self, request: Request) -> Response:
        period = _period(request)
        rows = strategy_rows_disclosed(
            user=_me(request), rows=analytics.performance_for_user(user=_me(request), **period)
        )
        return Response(PerformanceSerializer({"period": period, "rows": rows}).data)

"""What the API answers: read-only shapes of the pages' data. Runs, orders and positions are
the rows of marketplace.disclosure (a black box stays black here exactly as on the pages)."""

from __future__ import annotations

from rest_framework import serializers

from trader.api.models import Scope


class ProfileSerializer(serializers.Serializer):
    email = serializers.EmailField(allow_blank=True)
    full_name = serializers.CharField(allow_blank=True)
    state = serializers.CharField(allow_blank=True)
    city = serializers.CharField(allow_blank=True)
    # PAN and mobile are never sent through the API.


class BrokerAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    broker = serializers.CharField()
    # The metaclass moves declared fields off the class; the stubs see Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    last_error = serializers.CharField(allow_blank=True)
    token_expires_at = serializers.DateTimeField(allow_null=True)
    last_checked_at = serializers.DateTimeField(allow_null=True)


class AllocationSerializer(serializers.Serializer):
    broker_account_id = serializers.IntegerField()
    broker_account = serializers.CharField(source="broker_account.label")
    priority = serializers.IntegerField()
    enabled = serializers.BooleanField()
    sizing = serializers.CharField()
    fixed_lots = serializers.IntegerField(allow_null=True)
    multiplier = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)


class LegSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    side = serializers.CharField()
    option_type = serializers.CharField()
    lots = serializers.IntegerField()
    expiry_choice = serializers.CharField()
    strike_mode = serializers.CharField()
    strike_offset = serializers.IntegerField(allow_null=True)
    strike_price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    target_premium = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    target_delta = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)
    stop_loss = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    stop_loss_unit = serializers.CharField()
    target = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    target_unit = serializers.CharField()


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    effective_from = serializers.DateField()
    entry_time = serializers.TimeField()
    exit_time = serializers.TimeField()
    trading_days = serializers.ListField(
        child=serializers.IntegerField(), source="weekdays", help_text="0 = Monday … 6 = Sunday."
    )
    stop_loss_mtm = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    target_mtm = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    trailing_stop_mtm = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    created_at = serializers.DateTimeField()


class VersionWithLegsSerializer(VersionSerializer):
    legs = LegSerializer(many=True, source="legs.all")


class StrategySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    underlying = serializers.CharField(source="underlying.symbol")
    kind = serializers.CharField()
    status = serializers.CharField()
    current_version = serializers.IntegerField(source="current_version.number", allow_null=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    allocations = AllocationSerializer(many=True, source="allocations.all")
    updated_at = serializers.DateTimeField()


class StrategyDetailSerializer(StrategySerializer):
    leg_failure_policy = serializers.CharField()
    hedge_confirmation = serializers.CharField()
    versions = VersionWithLegsSerializer(many=True, source="versions.all")


class RunSerializer(serializers.Serializer):
    """marketplace.disclosure.RunRow: `fire_at` is null and `title` the listing's when the
    strategy is a black box to the caller."""

    id = serializers.IntegerField(source="pk")
    hidden = serializers.BooleanField()
    title = serializers.CharField()
    session_date = serializers.DateField()
    fire_at = serializers.DateTimeField(allow_null=True)
    boundary = serializers.CharField()
    is_test = serializers.BooleanField()
    source = serializers.CharField()  # type: ignore[assignment]
    state = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    exit_reason = serializers.CharField(allow_blank=True)
    mtm = serializers.DecimalField(max_digits=14, decimal_places=2)


class OrderSerializer(serializers.Serializer):
    account = serializers.CharField()
    leg = serializers.CharField()
    side = serializers.CharField()
    contract = serializers.CharField()
    quantity = serializers.IntegerField(allow_null=True)
    tag = serializers.CharField(allow_blank=True)
    intended_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    lag_ms = serializers.FloatField(allow_null=True)
    ack_ms = serializers.FloatField(allow_null=True)
    acked = serializers.BooleanField()
    state = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    filled = serializers.CharField()
    average_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)


class PositionSerializer(serializers.Serializer):
    run_id = serializers.IntegerField(source="run_pk")
    title = serializers.CharField()
    account = serializers.CharField()
    contract = serializers.CharField()
    net_quantity = serializers.IntegerField(allow_null=True)
    last_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    pnl = serializers.DecimalField(max_digits=14, decimal_places=2)
    hidden = serializers.BooleanField()


class RunDetailSerializer(serializers.Serializer):
    run = RunSerializer()
    orders = OrderSerializer(many=True)
    positions = PositionSerializer(many=True)


class ConsolidatedSerializer(serializers.Serializer):
    contract = serializers.CharField()
    net_quantity = serializers.IntegerField(allow_null=True)
    pnl = serializers.DecimalField(max_digits=14, decimal_places=2)
    accounts = serializers.ListField(child=serializers.CharField())


class PositionsSerializer(serializers.Serializer):
    positions = PositionSerializer(many=True)
    consolidated = ConsolidatedSerializer(many=True)


class KillSwitchStateSerializer(serializers.Serializer):
    user = serializers.BooleanField(help_text="Your own switch is engaged.")
    # "global" is a keyword: the field is named in to_representation's output.
    platform = serializers.BooleanField(help_text="The platform-wide switch is engaged.")


class StrictCharField(serializers.CharField):
    """Text only: a number or a boolean where text is due is an error, not converted."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class KillSwitchEngageSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class PlanSerializer(serializers.Serializer):
    kind = serializers.CharField()
    monthly_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    profit_share_percent = serializers.DecimalField(max_digits=5, decimal_places=2)


class ListingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.CharField(allow_blank=True)
    underlying = serializers.CharField(source="underlying.symbol")
    risk_level = serializers.CharField()
    capital_required = serializers.DecimalField(max_digits=14, decimal_places=2)
    visibility = serializers.CharField()
    verified_return_percent = serializers.DecimalField(
        max_digits=10, decimal_places=2, allow_null=True
    )
    max_drawdown_percent = serializers.DecimalField(
        max_digits=10, decimal_places=2, allow_null=True
    )
    subscriber_count = serializers.IntegerField()
    average_rating = serializers.FloatField(allow_null=True)
    rating_count = serializers.IntegerField()
    plans = PlanSerializer(many=True, source="plans.all")
    published_at = serializers.DateTimeField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


SCOPES = [choice for choice, _ in Scope.choices]

"""What an analytics page covers: IST session dates, from and to, both included, and which
runs it counts (live, paper, paper tests), the same filter on every page."""

from __future__ import annotations

import datetime

from django import forms
from django.http import QueryDict

from execution.analytics.reports import DEFAULT_KINDS, RUN_KINDS

DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    kinds = forms.MultipleChoiceField(
        label="Include",
        choices=list(RUN_KINDS.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one of live, paper or paper tests."},
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if isinstance(start, datetime.date) and isinstance(end, datetime.date):
            if start > end:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days >= MAX_DAYS:
                # One year is the longest view: a page reads every order of the period.
                self.add_error("start", f"Choose at most {MAX_DAYS} days.")
        return data


def period_from_query(
    query: QueryDict, *, today: datetime.date
) -> tuple[PeriodForm, datetime.date, datetime.date, list[str]]:
    """The form bound to the query (or to the last 30 days of live and paper runs), the period
    and the kinds of run to show. A bad choice keeps its errors on the form and the page shows
    the defaults meanwhile."""
    default_start = today - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if "start" not in query and "end" not in query:
        # The default period, but the kinds asked for (a program may give only those).
        kinds = query.getlist("kinds") if "kinds" in query else list(DEFAULT_KINDS)
        data = {"start": default_start, "end": today, "kinds": kinds}
    else:
        kinds = query.getlist("kinds") if "kinds" in query else list(DEFAULT_KINDS)
        data = {"start": query.get("start", ""), "end": query.get("end", ""), "kinds": kinds}
        if query.get("submitted"):  # the form itself: no box ticked means none chosen
            data["kinds"] = query.getlist("kinds")
    form = PeriodForm(data=data)
    if form.is_valid():
        cleaned = form.cleaned_data
        return form, cleaned["start"], cleaned["end"], list(cleaned["kinds"])
    return form, default_start, today, list(DEFAULT_KINDS)

"""The period an analytics page covers: IST session dates, from and to, both included."""

from __future__ import annotations

import datetime

from django import forms

DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

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
    query: dict[str, str], *, today: datetime.date
) -> tuple[PeriodForm, datetime.date, datetime.date]:
    """The form bound to the query (or to the last 30 days) and the period to show. A bad
    period keeps its field errors on the form and the page shows the last 30 days meanwhile."""
    default_start = today - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if "start" not in query and "end" not in query:
        form = PeriodForm(data={"start": default_start, "end": today})
    else:
        form = PeriodForm(data={"start": query.get("start", ""), "end": query.get("end", "")})
    if form.is_valid():
        return form, form.cleaned_data["start"], form.cleaned_data["end"]
    return form, default_start, today

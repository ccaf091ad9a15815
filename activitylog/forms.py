from datetime import date

from django import forms
from django.http import QueryDict

from activitylog.models import EventType
from activitylog.selectors import BadCursor, EventFilters, Keyset
from clients.models import Client

# Far enough for any real log, and clear of datetime's limits once a time zone is applied.
_EARLIEST = date(1970, 1, 1)
_LATEST = date(9998, 12, 31)


class ActivityFilterForm(forms.Form):
    """The Activity Log tab's GET parameters. Anything invalid is a 400, never a 500."""

    type = forms.ChoiceField(
        label="Event", required=False, choices=[("", "All events"), *EventType.choices]
    )
    user = forms.TypedChoiceField(label="Portal user", required=False, coerce=int, empty_value=None)
    date_from = forms.DateField(
        label="From", required=False,
        widget=forms.DateInput(attrs={"type": "date", "min": f"{_EARLIEST:%Y-%m-%d}", "max": f"{_LATEST:%Y-%m-%d}"}),
    )
    date_to = forms.DateField(
        label="To", required=False,
        widget=forms.DateInput(attrs={"type": "date", "min": f"{_EARLIEST:%Y-%m-%d}", "max": f"{_LATEST:%Y-%m-%d}"}),
    )
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args, client: Client, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "All users")] + [
            (str(u.pk), u.email) for u in client.portal_users.order_by("email")
        ]
        self._link_dates()

    def _link_dates(self) -> None:
        """From cannot pass To in the date pickers (static/js/app.js keeps this up as they change)."""
        for name, other, bound in (("date_from", "date_to", "max"), ("date_to", "date_from", "min")):
            field = self.fields[name]
            value = str(self.data.get(other, ""))
            try:
                day = date.fromisoformat(value)
            except ValueError:
                continue
            if _EARLIEST <= day <= _LATEST:
                field.widget.attrs[bound] = day.isoformat()

    def clean_cursor(self) -> Keyset | None:
        token = self.cleaned_data["cursor"]
        if not token:
            return None
        try:
            return Keyset.decode(token)
        except BadCursor as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        for name in ("date_from", "date_to"):
            day = cleaned.get(name)
            if day and not (_EARLIEST <= day <= _LATEST):
                self.add_error(name, f"Pick a date between {_EARLIEST:%Y} and {_LATEST:%Y}.")
                return cleaned
        if start and end and start > end:
            raise forms.ValidationError("“From” must be on or before “To”.")
        return cleaned

    def filters(self) -> EventFilters:
        data = self.cleaned_data
        return EventFilters(
            event_type=data["type"], user_id=data["user"],
            date_from=data["date_from"], date_to=data["date_to"],
        )

    def filter_query(self) -> str:
        """The active filters as a query string, for "Load older" and export links."""
        query = QueryDict(mutable=True)
        for name in ("type", "user", "date_from", "date_to"):
            value = self.data.get(name)
            if value:
                query[name] = value
        return query.urlencode()

from datetime import date, datetime, time, timedelta, tzinfo

from django import forms
from django.http import QueryDict
from django.utils import timezone

from activitylog.models import EventType
from activitylog.selectors import BadCursor, EventFilters, Keyset
from agencyhandy.lib.client_ip import canonical_ip
from clients.models import Client

# The quick ranges: how far back from now each reaches ("today" starts at midnight, in the
# zone the viewer reads times in).
RANGES = {"today": None, "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# The filters a viewer sets, in the order the chips show them ("cursor" is a position, not a filter).
FILTER_NAMES = ("q", "range", "type", "user", "date_from", "date_to")

# Far enough for any real log, and clear of datetime's limits once a time zone is applied.
_EARLIEST = date(1970, 1, 1)
_LATEST = date(9998, 12, 31)


class ActivityFilterForm(forms.Form):
    """The Activity Log tab's GET parameters. Anything invalid is a 400, never a 500."""

    q = forms.CharField(label="Email or IP address", required=False, max_length=254, strip=True)
    range = forms.ChoiceField(
        label="When", required=False,
        choices=[("", "Any time"), ("today", "Today"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"),
                 ("30d", "Last 30 days")],
    )
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
        self.client = client
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

    def filters(self, tz: tzinfo | None = None, now: datetime | None = None) -> EventFilters:
        """The filters in force; a quick range and "today" are reckoned from `now`, in `tz` (default: the active zone)."""
        data = self.cleaned_data
        tz = tz or timezone.get_current_timezone()
        ip, user_ids = self._search(data["q"])
        return EventFilters(
            event_type=data["type"], user_id=data["user"],
            date_from=data["date_from"], date_to=data["date_to"],
            since=self._since(data["range"], tz, now or timezone.now()), ip=ip, user_ids=user_ids,
        )

    @staticmethod
    def _since(name: str, tz: tzinfo, now: datetime) -> datetime | None:
        if not name:
            return None
        if name == "today":
            return datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz)
        return now - RANGES[name]

    def _search(self, text: str) -> tuple[str, frozenset[int] | None]:
        """
        An IP address is looked up as one; anything else matches the client's portal users
        whose email contains it (a handful of rows, not a scan of the log).
        """
        if not text:
            return "", None
        try:
            return canonical_ip(text), None
        except ValueError:
            pass
        users = self.client.portal_users.filter(email__icontains=text).values_list("pk", flat=True)
        return "", frozenset(users)

    def active(self) -> list[tuple[str, str, str]]:
        """(name, label, shown value) of each filter in force, for the removable chips."""
        chips = []
        for name in FILTER_NAMES:
            value = self.cleaned_data.get(name)
            if not value:
                continue
            field = self[name]
            choices = dict(getattr(field.field, "choices", ()))
            shown = choices.get(self.data.get(name), value)
            chips.append((name, field.label, str(shown)))
        return chips

    def filter_query(self, without: str = "") -> str:
        """The active filters (but `without`) as a query string, for "Load older", export links and chips."""
        query = QueryDict(mutable=True)
        for name in FILTER_NAMES:
            value = self.data.get(name)
            if value and name != without:
                query[name] = value
        return query.urlencode()

from dataclasses import dataclass

from django import forms

from clients.clock import ZoneChoice, is_known_zone
from clients.models import ClientStatus

# The Last seen filter: no portal login in that many days (never included), or never.
LAST_SEEN_CHOICES = [
    ("", "Any time"),
    ("7", "Not seen in 7 days"),
    ("30", "Not seen in 30 days"),
    ("90", "Not seen in 90 days"),
    ("never", "Never logged in"),
]


@dataclass(frozen=True)
class Sort:
    key: str  # a field of Client, or an annotation of the engagement columns
    descending: bool
    label: str
    engagement: bool = False  # sorts by a fact of the activity log


# The value of `sort` in the URL for each order. A column header's first click goes the
# way a manager reads it first: names A to Z, the newest login, the most logins.
SORTS = {
    "name": Sort("name", False, "Name, A to Z"),
    "-name": Sort("name", True, "Name, Z to A"),
    "-last_login": Sort("last_login", True, "Last login, newest first", engagement=True),
    "last_login": Sort("last_login", False, "Last login, oldest first", engagement=True),
    "-logins_30d": Sort("logins_30d", True, "Logins in 30 days, most first", engagement=True),
    "logins_30d": Sort("logins_30d", False, "Logins in 30 days, fewest first", engagement=True),
}
FIRST_CLICK = {"name": "name", "last_login": "-last_login", "logins_30d": "-logins_30d"}
_NOT_FOR_ROLE = "Your role does not see portal activity, so the list cannot be filtered or sorted by it."


class ClientSearchForm(forms.Form):
    """
    The Clients page's GET parameters. With `engagement=False` (a role that may not read
    the log) the Last seen filter and the sorts by portal activity are refused.
    """

    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "All current"), *ClientStatus.choices, ("archived", "Archived")],
    )
    seen = forms.ChoiceField(label="Last seen", required=False, choices=LAST_SEEN_CHOICES)
    # A checkbox that sends "1"; any other value is refused rather than read as ticked.
    premium = forms.ChoiceField(label="Premium only", required=False, choices=[("", "All"), ("1", "Premium only")])
    sort = forms.ChoiceField(label="Sort by", required=False, choices=[(k, s.label) for k, s in SORTS.items()])
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def __init__(self, *args, engagement: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.engagement = engagement
        if not engagement:
            # Offered choices only; clean_sort says why the others are refused.
            self.fields["sort"].widget.choices = [(k, s.label) for k, s in SORTS.items() if not s.engagement]

    def clean_seen(self) -> str:
        seen = self.cleaned_data["seen"]
        if seen and not self.engagement:
            raise forms.ValidationError(_NOT_FOR_ROLE)
        return seen

    def clean_sort(self) -> str:
        sort = self.cleaned_data["sort"] or "name"
        if SORTS[sort].engagement and not self.engagement:
            raise forms.ValidationError(_NOT_FOR_ROLE)
        return sort

    @property
    def not_seen_days(self) -> int | None:
        """The Last seen filter's days (None for "never logged in"); only when `seen` is set."""
        seen = self.cleaned_data["seen"]
        return None if seen == "never" else int(seen)

    @property
    def ordering(self) -> Sort:
        return SORTS[self.cleaned_data["sort"]]

    def narrowed_by(self) -> list[tuple[str, str]]:
        """What narrows the list, each with how to widen it: for the empty list's message."""
        data, narrowing = self.cleaned_data, []
        if data["q"].strip():
            narrowing.append((f"matching “{data['q'].strip()}”", "clear the search"))
        if data["status"]:
            label = dict(self.fields["status"].choices)[data["status"]]
            narrowing.append((f"with the status {label}", "choose All current in Status"))
        if data["seen"]:
            narrowing.append((dict(LAST_SEEN_CHOICES)[data["seen"]].lower(), "choose Any time in Last seen"))
        if data["premium"]:
            narrowing.append(("premium only", "untick Premium only"))
        return narrowing


class ZoneForm(forms.Form):
    """The zone switch: read times in the agency's zone, the browser's, or UTC (clients/clock.py)."""

    zone = forms.ChoiceField(choices=[("agency", "Agency"), ("browser", "Browser"), ("utc", "UTC")])
    # The browser's IANA zone, which static/js/app.js fills in from Intl.
    browser_zone = forms.CharField(required=False, max_length=64)
    next = forms.CharField(required=False, max_length=2000)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("zone") == "browser" and not is_known_zone(cleaned.get("browser_zone", "")):
            raise forms.ValidationError("Your browser did not say which time zone it is in.")
        return cleaned

    def choice(self, *, agency_zone: str) -> ZoneChoice:
        data = self.cleaned_data
        name = {"agency": agency_zone, "utc": "UTC", "browser": data["browser_zone"]}[data["zone"]]
        return ZoneChoice(data["zone"], name)

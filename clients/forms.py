from django import forms

from clients.clock import ZoneChoice, is_known_zone
from clients.models import ClientStatus


class ClientSearchForm(forms.Form):
    """The Clients page's GET parameters."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "All current"), *ClientStatus.choices, ("archived", "Archived")],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)


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

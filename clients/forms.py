from django import forms

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

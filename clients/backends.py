from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Django's model backend, by email, refusing portal users of blocked clients."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        if user.client_id is not None and not user.client.can_sign_in:
            return False
        return True

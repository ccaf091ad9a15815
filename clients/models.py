import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils import timezone


def _validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone.")


class Agency(models.Model):
    """The tenant: a marketing or service agency and everything it runs."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[_validate_time_zone],
        help_text="IANA name, e.g. Europe/Berlin. Staff see times in this zone.",
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email: str):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """
    Everyone who signs in, by email.

    A user is one of three kinds: agency staff (has a StaffMembership), a client's
    portal user (has `client`), or a platform superuser (Django admin only).
    `is_staff` keeps Django's meaning: may use Django admin.
    """

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    client = models.ForeignKey(
        "clients.Client", null=True, blank=True, on_delete=models.PROTECT,
        related_name="portal_users",
        help_text="Set for portal users: the client this login belongs to.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        # Atomic, so that what save signals record (the end of a portal user's other
        # sessions when the password changes) stands or falls with the change itself.
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self.email = self.email.lower()
        if self.client_id and self.pk and StaffMembership.objects.filter(user=self).exists():
            raise ValidationError("A portal user cannot also be agency staff.")


class Role(models.TextChoices):
    SUPER_ADMIN = "super_admin", "Super Admin"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    EMPLOYEE = "employee", "Employee"


class StaffMembership(models.Model):
    """A staff user's role in their agency."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="staff_membership")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        ordering = ["agency", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.agency})"

    def clean(self) -> None:
        if self.user_id and self.user.client_id:
            raise ValidationError("A portal user cannot also be agency staff.")


class ClientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    INVITED = "invited", "Invited"


class ClientQuerySet(models.QuerySet):
    def delete(self):
        # One by one, so a client with history stops the whole batch with a clear message.
        with transaction.atomic(using=self.db):
            deleted = 0
            for client in self:
                deleted += client.delete()[0]
        return deleted, {}


class Client(models.Model):
    """A customer of an agency. Its portal users sign in to the client portal."""

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="clients")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    company_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=ClientStatus.choices, default=ClientStatus.ACTIVE)
    is_archived = models.BooleanField("archived", default=False)
    is_premium = models.BooleanField("premium", default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ClientQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The Clients page: one agency's clients by name.
            models.Index(fields=["agency", "name"], name="client_agency_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def can_sign_in(self) -> bool:
        return not self.is_archived and self.status != ClientStatus.INACTIVE

    def protected_history(self) -> list[models.QuerySet]:
        """
        The rows that keep this client from being deleted (its activity log's events): one
        query per model that refers to clients with on_delete=PROTECT, each cut to one row.

        Asked before a delete, because Django's own check would load every protected row
        (millions for a busy client) only to list them.
        """
        history = []
        for relation in self._meta.related_objects:
            if relation.on_delete is models.PROTECT:
                rows = relation.related_model._base_manager.filter(**{relation.field.name: self})[:1]
                if rows.exists():
                    history.append(rows)
        return history

    def delete(self, *args, **kwargs):
        # Say so plainly, instead of a cascade that would lose history or a bare error.
        if history := self.protected_history():
            raise ProtectedError(
                f"Client {self.name!r} has activity history and cannot be deleted. "
                "Archive it instead; its log is kept for audit.",
                {row for rows in history for row in rows},
            )
        return super().delete(*args, **kwargs)

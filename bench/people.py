"""
The dataset's people, each kind with one INSERT ... SELECT: agencies, clients, portal
users, one manager per agency and a platform superuser, plus the work clients that #4,
#5 and #6 record on (bench-work.test).
"""

from datetime import datetime

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone

from bench.dataset import NAME_WORDS, PASSWORD, ROOT_EMAIL, TIME_ZONES, writer_emails
from bench.scale import Scale


def create_people(scale: Scale) -> None:
    """Agencies, clients, portal users and staff of `scale`, all signing in with PASSWORD."""
    password = make_password(PASSWORD)
    now = timezone.now()
    with connection.cursor() as cursor:
        agencies = _create_agencies(cursor, scale)
        _create_clients(cursor, scale, agencies, now)
        _create_portal_users(cursor, password, now)
        _create_staff(cursor, password, now)


def _create_agencies(cursor, scale: Scale) -> list[int]:
    cursor.execute(
        """INSERT INTO clients_agency (name, slug, time_zone)
           SELECT format('Bench Agency %%s', g), format('bench-%%s', lpad(g::text, 3, '0')),
                  (%(zones)s::text[])[1 + g %% cardinality(%(zones)s::text[])]
           FROM generate_series(0, %(n)s - 1) g ORDER BY g""",
        {"zones": TIME_ZONES, "n": scale.agencies},
    )
    cursor.execute("SELECT array_agg(id ORDER BY slug) FROM clients_agency WHERE slug LIKE 'bench-%'")
    return cursor.fetchone()[0]


def _create_clients(cursor, scale: Scale, agencies: list[int], now: datetime) -> None:
    cursor.execute(
        """INSERT INTO clients_client (agency_id, name, email, company_name, status, is_archived,
                                       is_premium, created_at)
           SELECT (%(agencies)s::bigint[])[1 + g %% %(a)s],
                  format('%%s %%s %%s', (%(w1)s::text[])[1 + g %% cardinality(%(w1)s::text[])],
                         (%(w2)s::text[])[1 + (g / 7) %% cardinality(%(w2)s::text[])], g),
                  format('client-%%s@bench-clients.test', lpad(g::text, 5, '0')),
                  format('Bench Company %%s', g), 'active', false, g %% 10 = 0, %(now)s
           FROM generate_series(0, %(n)s - 1) g ORDER BY g""",
        {"agencies": agencies, "a": len(agencies), "w1": NAME_WORDS[0], "w2": NAME_WORDS[1],
         "n": scale.clients, "now": now},
    )
    # The work clients take the bench's own writes (#4, #5, #6, #8). They sit in the last
    # agency, not the whale's, whose Clients page #11 measures: their fresh logins would
    # otherwise sort first there and grow with every run.
    work = [*(e.split("@")[0] for e in writer_emails()), "login", "live"]
    cursor.execute(
        """INSERT INTO clients_client (agency_id, name, email, company_name, status, is_archived,
                                       is_premium, created_at)
           SELECT %(agency)s, format('Bench %%s', w), format('%%s@bench-work.test', w), 'Bench work client',
                  'active', false, false, %(now)s
           FROM unnest(%(work)s::text[]) WITH ORDINALITY AS t(w, k) ORDER BY k""",
        {"agency": agencies[-1], "work": work, "now": now},
    )


def _create_portal_users(cursor, password: str, now: datetime) -> None:
    # One to three per client; each work client's user has the client's email.
    cursor.execute(
        """INSERT INTO clients_user (password, is_superuser, email, full_name, is_active, is_staff,
                                     date_joined, client_id)
           SELECT %(pw)s, false, replace(c.email, 'client-', format('user%%s-', u)),
                  format('Portal User %%s', u), true, false, %(now)s, c.id
           FROM clients_client c
           CROSS JOIN LATERAL generate_series(1, 1 + c.id::int %% 3) u
           WHERE c.email LIKE '%%@bench-clients.test'
           UNION ALL
           SELECT %(pw)s, false, c.email, c.name, true, false, %(now)s, c.id
           FROM clients_client c WHERE c.email LIKE '%%@bench-work.test'""",
        {"pw": password, "now": now},
    )


def _create_staff(cursor, password: str, now: datetime) -> None:
    cursor.execute(
        """INSERT INTO clients_user (password, is_superuser, email, full_name, is_active, is_staff, date_joined)
           SELECT %(pw)s, false, format('manager-%%s@bench-staff.test', substr(slug, 7)), 'Bench Manager',
                  true, false, %(now)s
           FROM clients_agency WHERE slug LIKE 'bench-%%'
           UNION ALL
           SELECT %(pw)s, true, %(root)s, 'Bench Root', true, true, %(now)s""",
        {"pw": password, "now": now, "root": ROOT_EMAIL},
    )
    cursor.execute(
        """INSERT INTO clients_staffmembership (role, agency_id, user_id)
           SELECT 'manager', a.id, u.id FROM clients_agency a
           JOIN clients_user u ON u.email = format('manager-%%s@bench-staff.test', substr(a.slug, 7))
           WHERE a.slug LIKE 'bench-%%'""",
        [],  # with parameters, so that %% means % as in the statements above
    )

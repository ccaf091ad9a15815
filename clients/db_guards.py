"""
Database triggers that keep agency staff and client portal users apart.

An account is staff (it has a StaffMembership) or a portal user (it has a client), never
both. The forms check it too, but only the database can check it for every writer: the
shell, a command, `QuerySet.update()`, a stray SQL statement. Migration 0002 installs them.

On PostgreSQL the membership check locks the user row, so a membership being added and
a client being set on the same user at the same moment cannot both succeed.
"""

MESSAGE = "an account cannot be both agency staff and a client portal user"

SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS clients_membership_not_portal_insert
        BEFORE INSERT ON clients_staffmembership
        WHEN EXISTS (SELECT 1 FROM clients_user WHERE id = NEW.user_id AND client_id IS NOT NULL)
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS clients_membership_not_portal_update
        BEFORE UPDATE OF user_id ON clients_staffmembership
        WHEN EXISTS (SELECT 1 FROM clients_user WHERE id = NEW.user_id AND client_id IS NOT NULL)
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS clients_user_portal_not_staff
        BEFORE UPDATE OF client_id ON clients_user
        WHEN NEW.client_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM clients_staffmembership WHERE user_id = NEW.id)
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS clients_membership_not_portal_insert",
    "DROP TRIGGER IF EXISTS clients_membership_not_portal_update",
    "DROP TRIGGER IF EXISTS clients_user_portal_not_staff",
]

POSTGRES_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION clients_membership_not_portal() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM clients_user WHERE id = NEW.user_id FOR UPDATE;
            IF EXISTS (SELECT 1 FROM clients_user WHERE id = NEW.user_id AND client_id IS NOT NULL) THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""",
    f"""CREATE OR REPLACE FUNCTION clients_user_portal_not_staff() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.client_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM clients_staffmembership WHERE user_id = NEW.id) THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""",
    """CREATE TRIGGER clients_membership_not_portal
        BEFORE INSERT OR UPDATE OF user_id ON clients_staffmembership
        FOR EACH ROW EXECUTE FUNCTION clients_membership_not_portal()""",
    """CREATE TRIGGER clients_user_portal_not_staff
        BEFORE UPDATE OF client_id ON clients_user
        FOR EACH ROW EXECUTE FUNCTION clients_user_portal_not_staff()""",
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS clients_membership_not_portal ON clients_staffmembership",
    "DROP TRIGGER IF EXISTS clients_user_portal_not_staff ON clients_user",
]


def install_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_INSTALL, "postgresql": POSTGRES_INSTALL}[vendor]


def remove_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_REMOVE, "postgresql": POSTGRES_REMOVE}[vendor]

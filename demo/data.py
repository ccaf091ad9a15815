"""The demo's agencies, staff, clients and portal users (seed_demo), and the browsers they use."""

from clients.models import ClientStatus, Role

DEFAULT_PASSWORD = "demo-password"
HISTORY_DAYS = 120

AGENCIES = [
    ("acme", "Acme", "America/New_York"),
    ("globex", "Globex", "Europe/Berlin"),
]
STAFF = [
    ("superadmin@acme.test", "Sam Super", "acme", Role.SUPER_ADMIN),
    ("admin@acme.test", "Ada Admin", "acme", Role.ADMIN),
    ("manager@acme.test", "Max Manager", "acme", Role.MANAGER),
    ("employee@acme.test", "Emma Employee", "acme", Role.EMPLOYEE),
    ("manager@globex.test", "Greta Manager", "globex", Role.MANAGER),
]
# (agency, name, company, email, status, archived, premium, portal users, sessions a week)
CLIENTS = [
    ("acme", "Northwind Traders", "Northwind Traders LLC", "hello@northwind.test", ClientStatus.ACTIVE, False, True,
     ["client@acme.test", "buyer@northwind.test", "finance@northwind.test"], 5),
    ("acme", "Blue Harbor Dental", "Blue Harbor Dental PC", "office@blueharbor.test", ClientStatus.ACTIVE, False, True,
     ["office@blueharbor.test", "dr.lee@blueharbor.test"], 3),
    ("acme", "Pixel & Pine Studio", "Pixel and Pine Ltd", "studio@pixelpine.test", ClientStatus.ACTIVE, False, False,
     ["studio@pixelpine.test"], 1.5),
    ("acme", "Summit Legal", "Summit Legal Partners", "admin@summitlegal.test", ClientStatus.ACTIVE, False, False,
     ["admin@summitlegal.test", "paralegal@summitlegal.test"], 0.5),
    ("acme", "Greenleaf Organics", "Greenleaf Organics Co", "team@greenleaf.test", ClientStatus.INACTIVE, False, False,
     ["team@greenleaf.test"], 1),
    ("acme", "Old Mill Bakery", "Old Mill Bakery", "orders@oldmill.test", ClientStatus.ACTIVE, True, False,
     ["orders@oldmill.test"], 1),
    ("acme", "Brightside Realty", "Brightside Realty Group", "info@brightside.test", ClientStatus.INVITED, False, False,
     ["info@brightside.test"], 0),
    ("globex", "Initech", "Initech Inc", "it@initech.test", ClientStatus.ACTIVE, False, True,
     ["client@globex.test", "peter@initech.test"], 3),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
]


"""
The demo: `manage.py seed_demo` fills the database with two agencies, their staff,
clients and months of portal history; `manage.py simulate_portal_activity` signs demo
portal users in and out of a running server. Neither is needed to run the product; the
ops commands are the activity log's own (activitylog/management/commands/).
"""

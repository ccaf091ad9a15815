# One clock (clients/clock.py) in Django's own displays too, such as admin's read-only
# dates: to the second, with the zone, never an ambiguous "Nov. 1, 2026, 1:30 a.m.".
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"

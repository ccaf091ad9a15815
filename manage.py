#!/usr/bin/env python
"""Django's command-line utility for the agency CRM."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agencyhandy.settings")
    if os.environ["DJANGO_SETTINGS_MODULE"] == "agencyhandy.settings":
        # The demo's .env (`make run` writes it): fills only what the environment leaves
        # unset. Read here and nowhere else: daphne, the test settings and the benchmark
        # settings never see it.
        from dotenv import load_dotenv

        load_dotenv(Path(__file__).resolve().parent / ".env", override=False)
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A missing or wrong setting is an operator's mistake: say what, without a traceback.
        sys.exit(f"Configuration error: {exc}")
    except ModuleNotFoundError as exc:
        # --settings (or DJANGO_SETTINGS_MODULE) naming a module that is not there.
        module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
        if not exc.name or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        print(f"CommandError: There is no settings module {module!r}.", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

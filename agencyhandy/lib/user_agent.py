"""Turn a User-Agent header into the browser and OS names staff read in the log."""

from functools import lru_cache

from ua_parser import parse

MAX_USER_AGENT_LENGTH = 512


@lru_cache(maxsize=2048)
def browser_and_os(user_agent: str) -> tuple[str, str]:
    """Return ("Chrome 131", "Windows 10")-style names; empty strings when unknown."""
    if not user_agent:
        return "", ""
    result = parse(user_agent)
    browser = os_name = ""
    if result.user_agent and result.user_agent.family != "Other":
        ua = result.user_agent
        browser = f"{ua.family} {ua.major}" if ua.major else ua.family
    if result.os and result.os.family != "Other":
        o = result.os
        version = ".".join(v for v in (o.major, o.minor) if v)
        os_name = f"{o.family} {version}" if version else o.family
    return browser[:64], os_name[:64]

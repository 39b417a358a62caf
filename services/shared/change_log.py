"""What the catalog's change log (``GET /v1/changes``) and its readers agree on besides the
body: the headers repeating the page's position, so that a reader can ask for the next page
before it has parsed this one (a page of 1,000 suppliers is about a megabyte of JSON)."""

NEXT_AFTER_HEADER = "X-Next-After"
"""The page's ``next_after``: pass it as ``after`` to read on."""
CURRENT_VERSION_HEADER = "X-Current-Version"
"""The page's ``current_version``: the catalog's version when the page was read."""

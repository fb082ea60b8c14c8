"""The grid event register: events located at their time, routed by rules kept as data,
counted for planners.

- **Located at their time**: an event's grid, unit and town are those of the dataset
  version that was current when it happened (``current_history``), so an event of last
  spring stays in the grid it happened in after this autumn's boundary revision. An
  event older than the first version is located in the first version (the boundaries
  geoservice knew first) and the load says how many were.
- **Routing** (``geoservice/data/event_routing.json``): each category goes to the
  event's town, to a district department with a deadline, or to a lead department with
  helpers. An open event past its category's deadline is overdue.
- **Stats** by town, unit, grid, category or month: events, closed, open, closure rate,
  median handling hours (of closed events), overdue.
- **Bounds** (API and ETL alike): ids are strings of 1 to ``MAX_ID_CHARS`` characters of
  ``A-Z a-z 0-9 _ . : -``; a description is text of at most ``MAX_DESCRIPTION_CHARS``
  characters; category and status are those of the routing rules; times (and closing
  times) lie from ``SPAN_BEFORE_FIRST`` (ten years) before the first dataset version
  became current to ``AHEAD`` (one day) from now. The table itself refuses times outside
  [1900, 2200) (migration 0008), so no stored row can break a read. An id already
  recorded (``POST /v1/events``), also by a request racing this one, is a ``Conflict``.

``rules`` (routing and statuses), ``parse`` (rows to checked ``Events``), ``register``
(locate at their time, store), ``stats`` (counts, overdue, events per grid).
"""

from geoservice.events.parse import (
    MAX_DESCRIPTION_CHARS,
    MAX_EVENTS_PER_REQUEST,
    MAX_ID_CHARS,
    SPAN_BEFORE_FIRST,
    Events,
    parse_events,
    read_events_csv,
)
from geoservice.events.register import answer_rows, load_events_file, locate_events, store_events
from geoservice.events.rules import category_names, handler, routing
from geoservice.events.stats import StatsBy, event_stats, events_per_grid, overdue_events

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_ID_CHARS",
    "SPAN_BEFORE_FIRST",
    "Events",
    "StatsBy",
    "answer_rows",
    "category_names",
    "event_stats",
    "events_per_grid",
    "handler",
    "load_events_file",
    "locate_events",
    "overdue_events",
    "parse_events",
    "read_events_csv",
    "routing",
    "store_events",
]

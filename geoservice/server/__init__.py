"""The world's side of geoservice: the app factory (``app``), the outermost ASGI layer
(``edge``), request parsing (``params``, ``bodies``), the contract's models (``models``,
``documents``), the error statuses (``statuses``, ``problems``), the per-process service
(``service``), the worker pool (``workers``) and the work it runs (``tasks``), and the routes
(``routes/``). Nothing outside this package and ``geoservice.cli`` imports FastAPI."""

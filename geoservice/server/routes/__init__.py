"""The HTTP routes (FastAPI routers), one module per group of ``/v1``, ``/ogc``,
``/tiles`` and the pages."""

"""The dashboard: server-rendered pages (Jinja2) and a little JavaScript over the public API.

``static/vendor/`` holds third-party assets copied unmodified from the npm registry, each with
its licence (uPlot, swagger-ui-dist, redoc): nothing is fetched from the internet at run time.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"

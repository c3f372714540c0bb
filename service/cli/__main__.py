"""``python -m service.cli``: the ``vaelab`` command (how ``vaelab serve`` starts its worker)."""

import sys

from service.cli import main

sys.exit(main())

"""``python -m gateway.daemon``: run the gateway daemon (see :mod:`gateway.daemon.loop`)."""

import sys

from gateway.daemon.loop import main

sys.exit(main())

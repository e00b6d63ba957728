"""``python -m napari_lfdeblur.cli``: the ``lfdeblur`` command."""

import sys

from . import main

sys.exit(main())

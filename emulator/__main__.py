"""``python -m emulator``: serve the local Twilio, or ``python -m emulator call`` to phone it."""

import sys

from .cli import main

sys.exit(main())

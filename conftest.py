"""Applied before anything else is imported: nameko needs eventlet's monkey-patch, first."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 - must precede every other import

import os  # noqa: E402

os.environ.setdefault("PYTHONWARNINGS", "ignore")  # silence eventlet's deprecation banner in children

"""The browser tests' folder on the import path (``browser.py``), beside tests/ (``stack.py``)."""
import os
import sys

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

"""Root pytest configuration: skip collecting optional-extra modules whose dependency is absent."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["qtheory/torch_ste.py"]

"""Where the project's own cfn-lint rules live.

``RULES_DIR`` is absolute on purpose: cfn-lint treats an ``--append-rules`` /
``get_rules`` entry that is not an existing directory as a *module name* and
tries to import it, so a relative ``"generator/rules"`` silently depends on
the current working directory and fails elsewhere with "Tried to append
rules but got an error: No module named 'generator/rules'".

The directory is deliberately not a package: cfn-lint executes every
``[A-Za-z1-9]*.py`` file in it as a top-level module, so rule files import
only cfnlint and the standard library (shared code is in ``_common.py``).
"""

from pathlib import Path

RULES_DIR = str(Path(__file__).resolve().parent / "rules")

"""Where the project's own cfn-lint rules live (also usable as `cfn-lint --append-rules`)."""
from pathlib import Path

RULES_DIR = Path(__file__).with_name("rules")

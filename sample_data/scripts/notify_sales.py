"""Demo hand-off command: reads the new MQLs (JSON Lines on stdin) and appends one line per
run to exports/sales-inbox.txt. A real one would post to the CRM or page the owners."""

import json
import os
import sys
from pathlib import Path

contacts = [json.loads(line) for line in sys.stdin if line.strip()]
owners = sorted({c.get("owner") or "unassigned" for c in contacts})
line = (
    f"{os.environ['SEGCLI_AS_OF']} run {os.environ['SEGCLI_RUN_ID']}: {len(contacts)} contacts "
    f"{os.environ['SEGCLI_CHANGE']} {os.environ['SEGCLI_SEGMENT']}; owners: {', '.join(owners)}\n"
)
Path("exports").mkdir(exist_ok=True)
with open("exports/sales-inbox.txt", "a", encoding="utf-8") as fh:
    fh.write(line)

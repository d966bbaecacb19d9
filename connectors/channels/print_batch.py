"""Print / postal: actions appended to a daily CSV batch file the print provider collects;
`letter` is the JSON of the fields the action's `print.toml` template rendered."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import orjson

from connectors.templates import Library
from engine.model.actions import Action

COLUMNS = ("action_id", "contact_id", "action", "decided_at", "expires_at", "street", "city",
           "postal_code", "country", "payload", "letter")


class PrintBatch:
    name = "print"
    provider = "print-file"
    resend_safe = False  # a second row would be a second letter

    def __init__(self, directory: Path, templates: Library) -> None:
        self.directory, self.templates = directory, templates
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, action: Action) -> Path:
        day = datetime.fromisoformat(action.decided_at.replace("Z", "+00:00")).date()
        return self.directory / f"print-{day.isoformat()}.csv"

    async def send(self, action: Action) -> None:
        letter = orjson.dumps(self.templates.content(action)).decode()
        address = action.payload.get("address")
        address = address if isinstance(address, dict) else {}
        row = [action.action_id, action.contact_id, action.action, action.decided_at,
               action.expires_at, *(str(address.get(k, "")) for k in COLUMNS[5:9]),
               str({k: v for k, v in action.payload.items() if k != "address"}), letter]
        path = self.path_for(action)
        out = io.StringIO()
        writer = csv.writer(out)
        if not path.exists():
            writer.writerow(COLUMNS)
        writer.writerow(row)
        with path.open("a", newline="") as f:  # one write per row: no torn lines
            f.write(out.getvalue())

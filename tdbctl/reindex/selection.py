"""Which indexes a selection names: --table, --index, --schema (or all of them), on either dialect."""

from __future__ import annotations

from tdbctl.errors import UsageError
from tdbctl.reindex import Selection


def scope(indexes: list[dict], selection: Selection, schemas) -> tuple[list[dict], list[dict]]:
    """(indexes to rebuild, leftovers to drop) for the selection; unknown names are usage errors."""
    tables = {resolve(name, {(i["schema"], i["table"]) for i in indexes}, "table") for name in selection.tables}
    named = {resolve(name, {(i["schema"], i["index"]) for i in indexes}, "index") for name in selection.indexes}
    for schema in selection.schemas:
        if schema not in schemas:
            raise UsageError(f"--schema {schema!r}: no such schema in the database ({', '.join(schemas)})")
    if not selection.scoped:
        chosen = indexes
    else:
        chosen = [i for i in indexes if (i["schema"], i["table"]) in tables or (i["schema"], i["index"]) in named
                  or i["schema"] in selection.schemas]
    rebuild = [i for i in chosen if not i["leftover"]]
    leftovers = [i for i in chosen if i["leftover"]]
    # --index X also clears X's own leftovers (X_ccnew, X_ccold1, ...), which sit on its table.
    for schema, index in named:
        leftovers += [i for i in indexes if i["leftover"] and i["schema"] == schema
                      and i["index"].startswith(index + "_cc") and i not in leftovers]
    return rebuild, leftovers


def resolve(name: str, known: set[tuple[str, str]], kind: str) -> tuple[str, str]:
    if "." in name:
        schema, bare = name.split(".", 1)
        if (schema, bare) in known:
            return schema, bare
        raise UsageError(f"--{kind} {name!r}: no such {kind} in the database")
    matches = sorted(k for k in known if k[1] == name)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"--{kind} {name!r}: no such {kind} in the database")
    raise UsageError(f"--{kind} {name!r} is ambiguous: say {' or '.join('.'.join(m) for m in matches)}")

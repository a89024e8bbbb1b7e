"""Read the seed files of a domain and check every entry against its table, before any database work.

Errors name the file and the entry (``seeds/dispatch/training_scenarios.yaml: training_scenarios[2]
"Car Accident - Minor Injuries": column 'difficulty_level': ...``) in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tdbctl.errors import UsageError
from tdbctl.seed.spec import DOMAIN_KINDS, Entry, Kind
from tdbctl.seed.values import ValueProblem, check_value

SEED_SUFFIXES = (".yaml", ".yml", ".json")


class SeedFileError(UsageError):
    """A seed file that cannot be loaded as written: nothing of its domain was changed."""


@dataclass
class SeedFile:
    path: Path
    name: str
    """As shown in messages: relative to the seeds directory's parent (``seeds/dispatch/x.yaml``)."""
    entries: list[Entry]


def domain_files(root: Path, domain: str) -> list[Path]:
    folder = root / domain
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SEED_SUFFIXES)


def load_domain(root: Path, domain: str) -> list[SeedFile]:
    return [load_file(path, root, domain) for path in domain_files(root, domain)]


def load_file(path: Path, root: Path, domain: str) -> SeedFile:
    name = _display(path, root)
    document = _parse(path, name)
    if document is None:
        return SeedFile(path, name, [])
    kinds = {k.name: k for k in DOMAIN_KINDS[domain]}
    if not isinstance(document, dict):
        raise SeedFileError(f"{name}: the top level must be a mapping of {_choices(kinds)} to lists of entries")
    entries = []
    for kind_name, items in document.items():
        kind = kinds.get(kind_name)
        if kind is None:
            raise SeedFileError(f"{name}: unknown kind {kind_name!r} for domain {domain} (expected {_choices(kinds)})")
        entries.extend(_entries(kind, items, name, kind_name, scopes=[]))
    return SeedFile(path, name, entries)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _choices(kinds) -> str:
    return ", ".join(repr(k) for k in kinds) or "nothing (this domain has no reference data)"


def _parse(path: Path, name: str):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SeedFileError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedFileError(f"{name}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise SeedFileError(f"{name}: not valid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{where}{problem}" + (f" ({context})" if context else "")


_LOADER = None


def _loader():
    """A safe loader that refuses duplicate keys, which PyYAML would otherwise silently merge."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
            pass

        def construct_mapping(loader, node, deep=False):
            loader.flatten_mapping(node)
            seen = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return yaml.SafeLoader.construct_mapping(loader, node, deep)

        UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
        _LOADER = UniqueKeyLoader
    return _LOADER


def _entries(kind: Kind, items, file: str, where: str, scopes: list[dict]) -> list[Entry]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise SeedFileError(f"{file}: {where}: expected a list of entries, got {_type_name(items)}")
    entries = []
    seen: dict[tuple, str] = {}
    for index, item in enumerate(items):
        entry = _entry(kind, item, file, f"{where}[{index}]", scopes)
        ref_columns = {r.column for r in kind.refs}
        natural = json.dumps([*(entry.refs.get(r.field) for r in kind.refs),
                              *(entry.values.get(k) for k in kind.key if k not in ref_columns)], default=str)
        if natural in seen:
            raise SeedFileError(f"{file}: {entry.where}: same {'/'.join(kind.key)} as {seen[natural]}")
        seen[natural] = entry.where
        entries.append(entry)
    return entries


def _entry(kind: Kind, item, file: str, where: str, scopes: list[dict]) -> Entry:
    if not isinstance(item, dict):
        raise SeedFileError(f"{file}: {where}: expected a mapping of columns, got {_type_name(item)}")
    label = item.get(kind.label_field)
    if isinstance(label, (str, int)):
        where = f"{where} {json.dumps(label) if isinstance(label, str) else f'({kind.label_field} {label})'}"
    table = kind.table_object
    children = {c.name: c for c in kind.children}
    refs = {r.field: r for r in kind.refs}
    managed = kind.managed_columns
    values, ref_values, nested = {}, {}, {}
    for field_name, value in item.items():
        if field_name in children:
            nested[field_name] = value
        elif field_name in refs:
            ref_values[field_name] = _check_ref(refs[field_name], value, file, where, scopes)
        elif field_name in managed:
            raise SeedFileError(f"{file}: {where}: column {field_name!r} is set by tdbctl seed, not by the file")
        elif field_name in table.c:
            try:
                values[field_name] = check_value(table.c[field_name], value)
            except ValueProblem as problem:
                raise SeedFileError(f"{file}: {where}: column {field_name!r}: {problem}") from None
        else:
            allowed = sorted(set(table.c.keys()) - managed) + sorted(children) + sorted(refs)
            raise SeedFileError(
                f"{file}: {where}: unknown column {field_name!r} for {kind.table} (known: {', '.join(allowed)})"
            )
    missing = [r.field for r in kind.refs if r.field not in ref_values]
    missing += [c.name for c in table.c if _required(c, managed) and c.name not in values]
    if missing:
        raise SeedFileError(f"{file}: {where}: missing required {'column' if len(missing) == 1 else 'columns'} "
                            f"{', '.join(repr(m) for m in missing)}")
    entry = Entry(kind, file, where, values, ref_values)
    # Children see this entry's own child lists (a scene's persona link names a persona of the
    # enclosing scenario), nearest scope first.
    scope = {name: (child_kind, nested.get(name)) for name, child_kind in children.items()}
    for name, child_kind in children.items():
        entry.children.extend(_entries(child_kind, nested.get(name), file, f"{where} > {name}", [scope, *scopes]))
    return entry


def _required(column, managed: set[str]) -> bool:
    return (
        not column.nullable
        and column.server_default is None
        and column.default is None
        and column.name not in managed
    )


def _check_ref(ref, value, file: str, where: str, scopes: list[dict]):
    for scope in scopes:
        # A link kind (one with refs) may share the name of what it links to; it is never a target.
        if ref.kind in scope and not scope[ref.kind][0].refs:
            target, items = scope[ref.kind]
            names = [i.get(target.key[0]) for i in items or [] if isinstance(i, dict)]
            if value not in names:
                raise SeedFileError(
                    f"{file}: {where}: {ref.field} {value!r} is not one of this entry's {ref.kind} "
                    f"({', '.join(map(repr, names)) or 'none'})"
                )
            return value
    raise SeedFileError(f"{file}: {where}: {ref.field} {value!r}: no {ref.kind} to refer to")  # pragma: no cover


def _type_name(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )

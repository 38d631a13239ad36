"""The rule compiler: checks a rule tree (shape, fields, operators, values, the rows it names,
segment cycles) and compiles it to one SQL condition over `c` (crm_customer) and `m`
(segments_customermetrics), with its values as positional parameters.

Checking reads the database (tags, tag groups, groups and segments the rule names, a query per
kind and one per level of segment references) but writes nothing. `rule_compile` and the SQL
builders check first and raise InvalidRule, so that a stored rule whose tag was deleted since
fails loudly instead of matching nobody. Nothing is filtered in Python: the whole rule is one
statement."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import Group, Tag, TagGroup
from segments.models import Segment, SegmentKind
from segments.predictive import fields as predicted_fields  # noqa: F401 - registers them
from segments.rules import builtin  # noqa: F401 - registers the built-in fields
from segments.rules.errors import InvalidRule, RuleError, RuleProblem
from segments.rules.fields import CompileContext, Leaf, field_named
from segments.rules.sql import Sql, join, negate
from segments.rules.values import (
    ALL_OPS,
    GroupRef,
    Reference,
    SegmentRef,
    TagGroupRef,
    TagRef,
)

FROM_CLAUSE = "crm_customer c LEFT JOIN segments_customermetrics m ON m.customer_id = c.id"
# Limits of the EXPANDED rule: the rule with every dynamic segment it names replaced by that
# segment's own rule, as it is compiled. Depth counts the levels of `all`, `any` and `not`, and
# a segment reference one level above the rule it stands for, so that a chain of segments each
# naming the previous one cannot get around it. The limits keep compilation, PostgreSQL's
# parser and the preview's one-column-per-condition statement (PostgreSQL allows 1664
# columns) far from their own limits.
MAX_DEPTH = 20
MAX_CONDITIONS = 200
# PostgreSQL hashes `c.id IN (subquery)` under OR and NOT only when it expects the subquery's
# ids to fit in work_mem x hash_mem_multiplier; otherwise it rescans the subquery once per
# customer, which at a million customers does not finish (measured: with the default 4MB a set
# of 500,000 ids is not hashed). Statements built here run after this one, in the same
# transaction: 128MB lets the planner hash sets of up to some ten million customers, and the
# memory used is only what the sets need (some 50 bytes per id).
RULE_SESSION_SQL = "SELECT set_config('work_mem', '128MB', true)"

_LOGIC_KEYS = ("all", "any", "not")
_LEAF_KEYS = frozenset({"field", "op", "value", "params"})


@dataclass(frozen=True)
class CompiledRule:
    """`condition` is SQL over the aliases of FROM_CLAUSE, true or false (never NULL) for every
    customer; `params` are its positional `%s` values, in order."""

    condition: str
    params: list[Any]


# --- The checked tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class AllOf:
    path: str
    children: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    path: str
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    path: str
    child: "Node"


Node = AllOf | AnyOf | Not | Leaf


def _leaves(node: Node) -> Iterator[Leaf]:
    if isinstance(node, Leaf):
        yield node
    elif isinstance(node, Not):
        yield from _leaves(node.child)
    else:
        for child in node.children:
            yield from _leaves(child)


class _Parser:
    """Checks a rule's shape, fields, operators, values and params, without the database. A
    wrong leaf is reported with its first problem and the walk goes on, so that one answer
    lists every wrong leaf."""

    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []

    def node(self, raw: object, path: str, depth: int = 1) -> Node | None:
        if depth > MAX_DEPTH:
            message = _("the rule is nested deeper than %(depth)s levels") % {"depth": MAX_DEPTH}
            self.problems.append(RuleProblem(path, message))
            return None
        if not isinstance(raw, dict):
            self.problems.append(RuleProblem(path, _("expected an object")))
            return None
        logic_keys = [key for key in _LOGIC_KEYS if key in raw]
        if not logic_keys:
            return self.leaf(raw, path)
        if len(logic_keys) > 1:
            self.problems.append(RuleProblem(path, _("expected only one of all, any and not")))
            return None
        key = logic_keys[0]
        extra_keys = [other for other in raw if other != key]
        if extra_keys:
            self.problems.append(RuleProblem(f"{path}.{extra_keys[0]}", _("unknown key")))
            return None
        if key == "not":
            child = self.node(raw["not"], f"{path}.not", depth + 1)
            return None if child is None else Not(path, child)
        items = raw[key]
        if not isinstance(items, list) or not items:
            self.problems.append(RuleProblem(f"{path}.{key}", _("expected a non-empty list")))
            return None
        if len(items) > MAX_CONDITIONS:
            message = _("expected at most %(maximum)s conditions") % {"maximum": MAX_CONDITIONS}
            self.problems.append(RuleProblem(f"{path}.{key}", message))
            return None
        children = [
            self.node(item, f"{path}.{key}[{index}]", depth + 1) for index, item in enumerate(items)
        ]
        checked = tuple(child for child in children if child is not None)
        if len(checked) != len(children):
            return None
        return AllOf(path, checked) if key == "all" else AnyOf(path, checked)

    def leaf(self, raw: dict[str, Any], path: str) -> Leaf | None:
        try:
            return _parse_leaf(raw, path)
        except RuleError as error:
            self.problems.append(error.problem)
            return None


def _parse_leaf(raw: dict[str, Any], path: str) -> Leaf:
    for key in raw:
        if key not in _LEAF_KEYS:
            raise RuleError(f"{path}.{key}", _("unknown key"))
    for key in ("field", "op", "value"):
        if key not in raw:
            raise RuleError(f"{path}.{key}", _("this key is required"))
    name, op = raw["field"], raw["op"]
    if not isinstance(name, str):
        raise RuleError(f"{path}.field", _("expected a string"))
    field = field_named(name)
    if field is None:
        raise RuleError(f"{path}.field", _("unknown field %(field)s") % {"field": name})
    if not isinstance(op, str):
        raise RuleError(f"{path}.op", _("expected a string"))
    if op not in ALL_OPS:
        raise RuleError(f"{path}.op", _("unknown operator %(op)s") % {"op": op})
    if op not in field.ops:
        raise RuleError(
            f"{path}.op",
            _("operator %(op)s does not apply to field %(field)s; it takes %(ops)s")
            % {"op": op, "field": name, "ops": ", ".join(sorted(field.ops))},
        )
    if field.params_parser is None:
        if "params" in raw:
            raise RuleError(f"{path}.params", _("this field takes no params"))
        params: Mapping[str, Any] = {}
    else:
        params = field.params_parser(raw.get("params"), f"{path}.params")
    value = field.value_type.parse(op, raw["value"], f"{path}.value")
    return Leaf(path=path, field=field, op=op, value=value, params=params)


# --- Checking against the database --------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Whose rule a tree is: the rule being checked (segment_id None), or the stored rule of a
    segment it reaches through the reference at `via` in the checked rule. Problems in a
    segment's rule are reported at `via`, naming the segment."""

    segment_id: int | None = None
    via: str = ""

    def problem(self, path: str, message: str) -> RuleProblem:
        if self.segment_id is None:
            return RuleProblem(path, message)
        return RuleProblem(
            self.via,
            _("segment %(segment)s has an invalid rule at %(path)s: %(message)s")
            % {"segment": self.segment_id, "path": path, "message": message},
        )


@dataclass(frozen=True)
class _ReachedSegment:
    kind: str
    name: str
    rule: Node | None  # None for a static segment
    origin: _Origin  # the origin of the segment's own rule


@dataclass(frozen=True)
class _Analysis:
    rule: Node
    segments: Mapping[int, _ReachedSegment]
    tag_ids: Mapping[TagRef, int]
    tag_group_ids: Mapping[TagGroupRef, int]


def _segment_refs(node: Node | None) -> list[SegmentRef]:
    if node is None:
        return []
    return [
        ref for leaf in _leaves(node) for ref in leaf.references() if isinstance(ref, SegmentRef)
    ]


def _reach_segments(
    rule: Node,
    *,
    segment_id: int | None,
    problems: list[RuleProblem],
    replaced: Mapping[int, object] | None = None,
) -> dict[int, _ReachedSegment]:
    """Every segment the rule reaches, directly or through segments' rules, level by level (a
    query per level). The segment being edited (`segment_id`) is never loaded: reaching it is a
    cycle, which `_cycle_problems` reports. `replaced` gives rules to use instead of stored
    ones. Each level of references adds at least one level of depth, so the walk stops, with a
    problem, at MAX_DEPTH levels: whatever lies further is too deep to use."""
    reached: dict[int, _ReachedSegment] = {}
    frontier = [(ref, _Origin()) for ref in _segment_refs(rule)]
    for _level in range(MAX_DEPTH):
        if not frontier:
            break
        wanted = {ref.segment_id for ref, _origin in frontier} - reached.keys() - {segment_id}
        rows = Segment.objects.filter(pk__in=wanted).values_list("pk", "kind", "name", "rule")
        found = {pk: (kind, name, stored_rule) for pk, kind, name, stored_rule in rows}
        next_frontier: list[tuple[SegmentRef, _Origin]] = []
        for ref, origin in frontier:
            target = ref.segment_id
            if target in reached or target == segment_id:
                continue
            if target not in found:
                message = _("unknown segment %(segment)s") % {"segment": target}
                problems.append(origin.problem(ref.path, message))
                continue
            kind, name, stored_rule = found[target]
            if replaced is not None and target in replaced:
                stored_rule = replaced[target]
            # Problems inside this segment's rule are shown at the checked rule's reference.
            own_origin = _Origin(segment_id=target, via=origin.via or ref.path)
            tree = None
            if kind == SegmentKind.DYNAMIC:
                parser = _Parser()
                tree = parser.node(stored_rule, "$")
                problems.extend(own_origin.problem(p.path, p.message) for p in parser.problems)
                next_frontier.extend((sub, own_origin) for sub in _segment_refs(tree))
            reached[target] = _ReachedSegment(kind=kind, name=name, rule=tree, origin=own_origin)
        frontier = next_frontier
    else:
        beyond = [(ref, origin) for ref, origin in frontier if ref.segment_id not in reached]
        if beyond:
            ref, origin = beyond[0]
            message = _(
                "the segments this rule refers to name other segments more than %(depth)s "
                "levels deep"
            ) % {"depth": MAX_DEPTH}
            problems.append(RuleProblem(origin.via or ref.path, message))
    return reached


@dataclass(frozen=True)
class _Size:
    """Of a tree with the dynamic segments it names expanded: its depth, its conditions, and
    the deepest chain of segments it goes through, starting at the reference at `path`."""

    depth: int
    conditions: int
    chain: tuple[int, ...] = ()
    path: str = ""


def _tree_size(node: Node, sizes: Mapping[int, _Size]) -> _Size:
    """`sizes` holds the expanded size of every dynamic segment the tree names."""
    if isinstance(node, Leaf):
        named = [
            ref.segment_id
            for ref in node.references()
            if isinstance(ref, SegmentRef) and ref.segment_id in sizes
        ]
        if not named:
            return _Size(depth=1, conditions=1)
        deepest = max(named, key=lambda pk: sizes[pk].depth)
        return _Size(
            depth=1 + sizes[deepest].depth,
            conditions=1 + sum(sizes[pk].conditions for pk in named),
            chain=(deepest, *sizes[deepest].chain),
            path=node.path,
        )
    children = [node.child] if isinstance(node, Not) else list(node.children)
    measured = [_tree_size(child, sizes) for child in children]
    deepest_child = max(measured, key=lambda size: size.depth)
    return _Size(
        depth=1 + deepest_child.depth,
        conditions=sum(size.conditions for size in measured),
        chain=deepest_child.chain,
        path=deepest_child.path,
    )


def _expanded_size(rule: Node, segments: Mapping[int, _ReachedSegment]) -> _Size:
    """The size of `rule` expanded. Segments are measured before the segments naming them
    (their references form no cycle: checked before), without recursion across segments."""
    rules = {pk: segment.rule for pk, segment in segments.items() if segment.rule is not None}
    waiting = {
        pk: {ref.segment_id for ref in _segment_refs(tree)} & rules.keys()
        for pk, tree in rules.items()
    }
    sizes: dict[int, _Size] = {}
    while waiting:
        ready = [pk for pk, needs in waiting.items() if needs <= sizes.keys()]
        if not ready:
            raise ValueError("segment references form a cycle")
        for pk in ready:
            sizes[pk] = _tree_size(rules[pk], sizes)
            del waiting[pk]
    return _tree_size(rule, sizes)


def _size_problems(
    rule: Node, segments: Mapping[int, _ReachedSegment], *, whose: str | None = None
) -> list[RuleProblem]:
    """The rule is too deep or has too many conditions once expanded. `whose`: the name of the
    segment whose rule this is, when it is not the rule being checked."""
    size = _expanded_size(rule, segments)
    problems = []
    if size.depth > MAX_DEPTH:
        chain = " → ".join(f"「{segments[pk].name}」" for pk in size.chain)
        values = {"depth": size.depth, "maximum": MAX_DEPTH, "chain": chain, "segment": whose}
        if whose is not None:
            message = _(
                "segment 「%(segment)s」 refers to this segment and would be nested "
                "%(depth)s levels deep (at most %(maximum)s)"
            )
            problems.append(RuleProblem("$", message % values))
        else:
            # The parser keeps a rule's own nodes within MAX_DEPTH: the excess comes of segments.
            message = _(
                "with the segments it refers to (%(chain)s), the rule is nested %(depth)s "
                "levels deep (at most %(maximum)s)"
            )
            problems.append(RuleProblem(size.path, message % values))
    if size.conditions > MAX_CONDITIONS:
        values = {"count": size.conditions, "maximum": MAX_CONDITIONS, "segment": whose}
        if whose is not None:
            message = _(
                "segment 「%(segment)s」 refers to this segment and would have %(count)s "
                "conditions (at most %(maximum)s)"
            )
        else:
            message = _(
                "the rule has %(count)s conditions, counting those of the segments it refers "
                "to (at most %(maximum)s)"
            )
        problems.append(RuleProblem("$", message % values))
    return problems


def _cycle_problems(
    rule: Node, segments: Mapping[int, _ReachedSegment], *, segment_id: int | None
) -> list[RuleProblem]:
    """A reference that leads back to the segment being edited, or into a loop of segments."""
    edges = {
        pk: [ref.segment_id for ref in _segment_refs(segment.rule)]
        for pk, segment in segments.items()
    }
    problems = []
    for ref in _segment_refs(rule):
        loop = _loop_from(ref.segment_id, edges, edited=segment_id)
        if loop is not None:
            chain = " → ".join(str(pk) for pk in loop)
            message = _("segment references form a cycle: %(chain)s") % {"chain": chain}
            problems.append(RuleProblem(ref.path, message))
    return problems


def _loop_from(
    start: int, edges: Mapping[int, list[int]], *, edited: int | None
) -> list[int] | None:
    """The chain of segment ids from `start` that returns to `edited` (starting the chain with
    it) or to a segment already on the chain (from its first visit), if there is one."""
    on_chain: list[int] = []
    finished: set[int] = set()

    def visit(pk: int) -> list[int] | None:
        if pk == edited:
            return [pk, *on_chain, pk]
        if pk in on_chain:
            return [*on_chain[on_chain.index(pk) :], pk]
        if pk in finished:
            return None
        on_chain.append(pk)
        for target in edges.get(pk, []):
            loop = visit(target)
            if loop is not None:
                return loop
        on_chain.pop()
        finished.add(pk)
        return None

    return visit(start)


def _resolve(
    trees: list[tuple[Node, _Origin]], problems: list[RuleProblem]
) -> tuple[dict[TagRef, int], dict[TagGroupRef, int]]:
    """Looks up every tag, tag group and group the trees name: a query per kind."""
    refs: list[tuple[Reference, _Origin]] = [
        (ref, origin)
        for tree, origin in trees
        for leaf in _leaves(tree)
        for ref in leaf.references()
    ]
    tag_refs = {ref for ref, _origin in refs if isinstance(ref, TagRef)}
    tag_ids = _tag_ids(tag_refs)
    group_refs = {ref for ref, _origin in refs if isinstance(ref, TagGroupRef)}
    tag_group_ids = _tag_group_ids(group_refs)
    group_ids = {ref.group_id for ref, _origin in refs if isinstance(ref, GroupRef)}
    known_groups = set(Group.objects.filter(pk__in=group_ids).values_list("pk", flat=True))
    for ref, origin in refs:
        if isinstance(ref, TagRef) and ref not in tag_ids:
            problems.append(origin.problem(ref.path, _("unknown tag %(tag)s") % {"tag": ref}))
        elif isinstance(ref, TagGroupRef) and ref not in tag_group_ids:
            message = _("unknown tag group %(group)s") % {"group": ref}
            problems.append(origin.problem(ref.path, message))
        elif isinstance(ref, GroupRef) and ref.group_id not in known_groups:
            message = _("unknown group %(group)s") % {"group": ref.group_id}
            problems.append(origin.problem(ref.path, message))
    return tag_ids, tag_group_ids


def _tag_ids(refs: set[TagRef]) -> dict[TagRef, int]:
    if not refs:
        return {}
    ids = {ref.tag_id for ref in refs if ref.tag_id is not None}
    wanted = Q(pk__in=ids)
    for ref in refs:
        if ref.tag_id is None:
            wanted |= Q(group__name=ref.group, name=ref.name)
    rows = list(Tag.objects.filter(wanted).values_list("pk", "group__name", "name"))
    by_id = {pk for pk, _group, _name in rows}
    by_name = {(group, name): pk for pk, group, name in rows}
    resolved = {}
    for ref in refs:
        if ref.tag_id is not None and ref.tag_id in by_id:
            resolved[ref] = ref.tag_id
        elif ref.tag_id is None and (ref.group, ref.name) in by_name:
            resolved[ref] = by_name[(ref.group, ref.name)]
    return resolved


def _tag_group_ids(refs: set[TagGroupRef]) -> dict[TagGroupRef, int]:
    if not refs:
        return {}
    ids = {ref.group_id for ref in refs if ref.group_id is not None}
    names = {ref.name for ref in refs if ref.group_id is None}
    rows = list(
        TagGroup.objects.filter(Q(pk__in=ids) | Q(name__in=names)).values_list("pk", "name")
    )
    by_id = {pk for pk, _name in rows}
    by_name = {name: pk for pk, name in rows}
    resolved = {}
    for ref in refs:
        if ref.group_id is not None and ref.group_id in by_id:
            resolved[ref] = ref.group_id
        elif ref.group_id is None and ref.name in by_name:
            resolved[ref] = by_name[ref.name]
    return resolved


def _analyse(rule: object, *, segment_id: int | None) -> _Analysis:
    parser = _Parser()
    tree = parser.node(rule, "$")
    if tree is None:
        raise InvalidRule(parser.problems)
    problems: list[RuleProblem] = []
    segments = _reach_segments(tree, segment_id=segment_id, problems=problems)
    problems.extend(_cycle_problems(tree, segments, segment_id=segment_id))
    if not problems:
        problems.extend(_size_problems(tree, segments))
    trees = [(tree, _Origin())] + [
        (segment.rule, segment.origin) for segment in segments.values() if segment.rule is not None
    ]
    tag_ids, tag_group_ids = _resolve(trees, problems)
    if problems:
        raise InvalidRule(problems)
    return _Analysis(tree, segments, tag_ids, tag_group_ids)


# --- Compilation ---------------------------------------------------------------------------


class _Compilation:
    def __init__(self, analysis: _Analysis, *, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be an aware datetime")
        self.analysis = analysis
        self.context = CompileContext(
            as_of=as_of,
            tag_ids=analysis.tag_ids,
            tag_group_ids=analysis.tag_group_ids,
            segment_kinds={pk: segment.kind for pk, segment in analysis.segments.items()},
            segment_condition=self.segment_condition,
        )

    def segment_condition(self, segment_id: int) -> Sql:
        rule = self.analysis.segments[segment_id].rule
        if rule is None:
            raise ValueError(f"segment {segment_id} has no rule to compile")
        return self.condition(rule)

    def condition(self, node: Node) -> Sql:
        if isinstance(node, Leaf):
            return "(" + node.field.compiler(node, self.context) + ")"
        if isinstance(node, Not):
            # Every condition is true or false, never NULL, so NOT is exactly "does not match".
            return negate(self.condition(node.child))
        separator = " AND " if isinstance(node, AllOf) else " OR "
        return "(" + join(separator, [self.condition(child) for child in node.children]) + ")"


def rule_check(rule: object, *, segment_id: int | None = None) -> None:
    """Raises InvalidRule listing the rule's problems. Give `segment_id` when the rule is to
    become that segment's: a rule reaching the segment again, through other segments' rules
    or directly, is a cycle, and the segments whose rules reach it must stay within the limits
    with the new rule in their expansion."""
    _analyse(rule, segment_id=segment_id)
    if segment_id is not None:
        problems = _dependent_problems(segment_id, rule)
        if problems:
            raise InvalidRule(problems)


def _dependent_problems(segment_id: int, rule: object) -> list[RuleProblem]:
    """The limits the segments reaching `segment_id` would exceed were its rule `rule`."""
    problems: list[RuleProblem] = []
    for dependent in segments_reaching(segment_id):
        tree = _Parser().node(dependent.rule, "$")
        if tree is None:
            continue  # a stored rule broken otherwise: its own refresh reports it
        reach_problems: list[RuleProblem] = []
        segments = _reach_segments(
            tree,
            segment_id=dependent.pk,
            problems=reach_problems,
            replaced={segment_id: rule},
        )
        if reach_problems:
            message = _(
                "segment 「%(segment)s」 refers to this segment and would be nested more than "
                "%(maximum)s levels deep"
            ) % {"segment": dependent.name, "maximum": MAX_DEPTH}
            problems.append(RuleProblem("$", message))
        elif not _cycle_problems(tree, segments, segment_id=dependent.pk):
            problems.extend(_size_problems(tree, segments, whose=dependent.name))
    return problems


def segments_naming(segment_id: int) -> list[Segment]:
    """Dynamic segments whose own rule names `segment_id` (segments are few: read in Python)."""
    return [
        segment
        for segment in Segment.objects.filter(kind=SegmentKind.DYNAMIC).exclude(pk=segment_id)
        if segment_id in rule_referenced_segments(segment.rule)
    ]


def segments_reaching(segment_id: int) -> list[Segment]:
    """Dynamic segments whose rules reach `segment_id`, directly or through other segments,
    in id order."""
    found: dict[int, Segment] = {}
    frontier = [segment_id]
    while frontier:
        reached = [s for s in segments_naming(frontier.pop()) if s.pk not in found]
        found.update((s.pk, s) for s in reached)
        frontier.extend(s.pk for s in reached)
    found.pop(segment_id, None)
    return [found[pk] for pk in sorted(found)]


def rule_compile(rule: object, *, as_of: datetime) -> CompiledRule:
    """Checks the rule (raising InvalidRule) and compiles it to one condition over FROM_CLAUSE.
    Relative dates count back from `as_of` (an aware datetime); calendar days are taken in
    settings.TIME_ZONE."""
    analysis = _analyse(rule, segment_id=None)
    condition = _Compilation(analysis, as_of=as_of).condition(analysis.rule)
    return CompiledRule(condition=condition.text, params=list(condition.params))


def rule_members_sql(rule: object, *, as_of: datetime) -> tuple[str, list[Any]]:
    """`SELECT c.id AS customer_id FROM ... WHERE <rule>`: the customers the rule matches."""
    compiled = rule_compile(rule, as_of=as_of)
    # The condition holds placeholders, never values.
    sql = f"SELECT c.id AS customer_id FROM {FROM_CLAUSE} WHERE {compiled.condition}"  # noqa: S608
    return sql, compiled.params


def rule_preview_sql(
    rule: object, *, as_of: datetime, sample_size: int = 0
) -> tuple[str, list[Any]]:
    """One query, one scan of the customers, answering one row: the number of customers the
    rule matches, then, for a top-level `all` or `any`, the number each of its conditions
    matches on its own (a leaf or `not` at the top has just the first count), then, with a
    `sample_size`, the ids of that many matching customers, newest first."""
    analysis = _analyse(rule, segment_id=None)
    compilation = _Compilation(analysis, as_of=as_of)
    tree = analysis.rule
    parts = list(tree.children) if isinstance(tree, AllOf | AnyOf) else [tree]
    flags = [f"t.p{index}" for index in range(len(parts))]
    whole = (" OR " if isinstance(tree, AnyOf) else " AND ").join(flags)
    counted = [whole, *flags] if isinstance(tree, AllOf | AnyOf) else [whole]
    counts = ", ".join(f"count(*) FILTER (WHERE {condition})" for condition in counted)
    if sample_size:
        counts += (
            f", (array_agg(t.id ORDER BY t.id DESC) FILTER (WHERE {whole}))[1:{int(sample_size)}]"
        )
    columns = join(
        ", ", [compilation.condition(part) + f" AS p{index}" for index, part in enumerate(parts)]
    )
    # OFFSET 0 keeps the planner from pulling the inner query up, which would copy each
    # condition (and its subplans) into both the whole rule's count and its own.
    counting = Sql(f"SELECT {counts} FROM (SELECT c.id, ")  # noqa: S608 - names of this module only
    sql = counting + columns + f" FROM {FROM_CLAUSE} OFFSET 0) AS t"
    return sql.text, list(sql.params)


def rule_referenced_segments(rule: object) -> set[int]:
    """The ids of the segments the rule names itself (not those their rules name in turn).
    Raises InvalidRule if the rule is malformed; the database is not read."""
    parser = _Parser()
    tree = parser.node(rule, "$")
    if tree is None:
        raise InvalidRule(parser.problems)
    return {ref.segment_id for ref in _segment_refs(tree)}

"""Location constraints and connection-resource misuse, read from a CIB (pure: XML text in, data out).

* :func:`location_constraints` parses every ``rsc_location``: plain ``node``/``score`` ones, the
  ``cli-prefer-*`` / ``cli-ban-*`` ones ``crm_resource --move/--ban`` leaves behind, ``rsc-pattern`` and
  resource-set ones, and rule-based ones, whose rules are rendered readably (pcs-like syntax:
  ``#uname eq remote1 and date lt 2030-01-01``).
* :func:`connection_misuse` finds remote connection resources used in groups, order or colocation
  constraints (SUSE: "never involve a remote node connection resource in a resource group, colocation
  constraint, or order constraint"; crmsh refuses it).
* :class:`CibIndex` answers "does this node / resource exist", "is this a connection resource" and "which ids are
  taken", which the constraint commands need before they change anything.
* :func:`location_xml` / :func:`location_id` build a new constraint with xml.etree (names are hostile, so they are
  escaped by the serializer, never spliced into text) and a deterministic, readable, unique id like pcs's
  ``location-RSC-NODE-SCORE``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from remotectl.jsonable import json_field
from remotectl.pacemaker import xmlsafe
from remotectl.pacemaker.inventory import inventory_from_cib
from remotectl.pacemaker.values import check_name, normalize_score, score_value
from remotectl.reports import RemotectlError

CLI_PREFER_PREFIX = "cli-prefer-"
CLI_BAN_PREFIX = "cli-ban-"
CONSTRAINT_TAGS = ("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket")
RESOURCE_TAGS = ("primitive", "group", "clone", "master", "bundle")

Element = ElementTree.Element


# --- rule rendering --------------------------------------------------------------------------------------------------


def _quote(value: Optional[str]) -> str:
    if value is None:
        return "?"
    if value == "" or re.search(r"[\s\"'()]", value):
        return json.dumps(value)
    return value


def _render_expression(expr: Element) -> str:
    attribute = _quote(expr.get("attribute"))
    operation = expr.get("operation") or "?"
    if operation in ("defined", "not_defined"):
        return f"{operation} {attribute}"
    parts = [attribute, operation]
    value_type = expr.get("type")
    if value_type and value_type != "string":
        parts.append(value_type)
    value = _quote(expr.get("value"))
    source = expr.get("value-source")
    if source and source != "literal":
        value = f"{source}:{value}"
    parts.append(value)
    return " ".join(parts)


def _spec_text(spec: Element) -> str:
    items = [f"{name}={_quote(value)}" for name, value in spec.attrib.items() if name not in ("id", "id-ref")]
    return " ".join(items) or "(empty)"


def _render_date(expr: Element) -> str:
    operation = expr.get("operation") or "in_range"
    start, end = expr.get("start"), expr.get("end")
    if operation == "date_spec":
        spec = expr.find("date_spec")
        return "date-spec " + (_spec_text(spec) if spec is not None else "(empty)")
    if operation == "gt":
        return f"date gt {_quote(start)}"
    if operation == "lt":
        return f"date lt {_quote(end)}"
    if operation == "in_range":
        text = "date in_range"
        if start:
            text += f" {_quote(start)}"
        duration = expr.find("duration")
        if end:
            text += f" to {_quote(end)}"
        elif duration is not None:
            text += f" to duration {_spec_text(duration)}"
        return text
    return f"date {operation}"


def render_rule(rule: Element, ids: Optional[Dict[str, Element]] = None, _depth: int = 0) -> str:
    """A rule as one readable line: ``#uname eq remote1 and (date-spec hours=9-16 or defined pingd)``."""
    ref = rule.get("id-ref")
    if ref is not None:
        target = (ids or {}).get(ref)
        if target is None or target is rule or _depth > 20:
            return f"rule {_quote(ref)}"
        return render_rule(target, ids, _depth + 1)
    parts = []
    for child in rule:
        if child.tag == "expression":
            parts.append(_render_expression(child))
        elif child.tag == "date_expression":
            parts.append(_render_date(child))
        elif child.tag == "rule":
            inner = render_rule(child, ids, _depth + 1)
            parts.append(f"({inner})" if len(child) > 1 or child.get("id-ref") else inner)
        elif child.tag == "rsc_expression":
            parts.append("resource " + ":".join(_quote(child.get(a)) for a in ("class", "provider", "type")
                                                 if child.get(a)))
        elif child.tag == "op_expression":
            parts.append(f"op {_quote(child.get('name'))}" + (f" interval={child.get('interval')}"
                                                              if child.get("interval") else ""))
        elif isinstance(child.tag, str):
            parts.append(f"<{child.tag}>")
    if not parts:
        return "(empty rule)"
    operator = rule.get("boolean-op") or "and"
    text = f" {operator} ".join(parts)
    role = rule.get("role")
    return f"role={role}: {text}" if role else text


def _uname_values(rule: Element, ids: Dict[str, Element], _depth: int = 0) -> List[str]:
    """Node names a rule pins with ``#uname eq NAME`` (anywhere in it); used for --node filtering."""
    if rule.get("id-ref") is not None:
        target = ids.get(rule.get("id-ref") or "")
        return [] if target is None or target is rule or _depth > 20 else _uname_values(target, ids, _depth + 1)
    names = []
    for child in rule:
        if child.tag == "expression" and child.get("attribute") == "#uname" and child.get("operation") == "eq":
            if child.get("value") is not None:
                names.append(child.get("value"))
        elif child.tag == "rule":
            names.extend(_uname_values(child, ids, _depth + 1))
    return names


def _rule_node(rule: Element, ids: Dict[str, Element]) -> Optional[str]:
    """The one node an "and" rule is about (``#uname eq X and date lt ...``, as crm_resource --move --lifetime
    writes it), else None."""
    if rule.get("id-ref") is not None:
        rule = ids.get(rule.get("id-ref") or "", rule)
    if (rule.get("boolean-op") or "and") != "and":
        return None
    names = [
        child.get("value")
        for child in rule
        if child.tag == "expression" and child.get("attribute") == "#uname" and child.get("operation") == "eq"
    ]
    return names[0] if len(names) == 1 else None


# --- location constraints --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationConstraint:
    id: str
    resource: Optional[str]
    node: Optional[str]
    score: Optional[str]
    rule: Optional[str]
    kind: str  # prefer | avoid | neutral | rule | cli-prefer | cli-ban
    role: Optional[str] = None
    resource_pattern: Optional[str] = None
    resource_set: Tuple[str, ...] = json_field(default=(), convert=lambda refs: list(refs) or None)
    score_attribute: Optional[str] = None
    resource_discovery: Optional[str] = None
    rule_nodes: Tuple[str, ...] = json_field(omit=True, default=(), compare=False)  # for --node filtering

    def mentions_node(self, name: str) -> bool:
        return self.node == name or name in self.rule_nodes

    def mentions_resource(self, name: str) -> bool:
        if self.resource == name or name in self.resource_set:
            return True
        if self.resource_pattern is not None:
            try:
                return re.search(self.resource_pattern, name) is not None
            except re.error:
                return False
        return False

    def describe(self) -> str:
        """One line for humans: ``location-dummy1-remote2-200: dummy1 prefers remote2 (score 200)``."""
        what = self.resource or (f"/{self.resource_pattern}/" if self.resource_pattern else None)
        what = what or ("set(" + " ".join(self.resource_set) + ")" if self.resource_set else "?")
        role = f" [{self.role}]" if self.role else ""
        if self.rule:
            score = f" (score {self.score})" if self.score is not None else ""
            return f"{self.id}: {what}{role} where {self.rule}{score}"
        verb = {"avoid": "avoids", "cli-ban": "is banned from"}.get(self.kind, "prefers")
        return f"{self.id}: {what}{role} {verb} {self.node} (score {self.score})"


def _kind(constraint_id: str, score: Optional[str], has_rule: bool) -> str:
    if constraint_id.startswith(CLI_PREFER_PREFIX):
        return "cli-prefer"
    if constraint_id.startswith(CLI_BAN_PREFIX):
        return "cli-ban"
    if has_rule:
        return "rule"
    value = score_value(score)
    if value is None:
        return "rule" if score is None else "neutral"
    return "prefer" if value > 0 else "avoid" if value < 0 else "neutral"


def _index_ids(root: Element) -> Dict[str, Element]:
    ids: Dict[str, Element] = {}
    for element in root.iter():
        element_id = element.get("id")
        if element_id is not None and element_id not in ids:
            ids[element_id] = element
    return ids


def parse_cib(cib: Union[str, bytes, Element], what: str = "CIB") -> Element:
    if isinstance(cib, Element):
        return cib
    return xmlsafe.parse(cib, what)


def _constraints_section(root: Element) -> Optional[Element]:
    if root.tag == "constraints":
        return root
    return root.find("./configuration/constraints")


def _parse_location(element: Element, ids: Dict[str, Element]) -> LocationConstraint:
    constraint_id = element.get("id") or "?"
    rules = [child for child in element if child.tag == "rule"]
    resource_set = tuple(
        ref.get("id") or "?" for rset in element.findall("resource_set") for ref in rset.findall("resource_ref")
    )
    node = element.get("node")
    score = normalize_score(element.get("score"))
    score_attribute = None
    rule_text = None
    rule_nodes: List[str] = []
    if rules:
        resolved = [ids.get(r.get("id-ref") or "", r) if r.get("id-ref") else r for r in rules]
        scores = [normalize_score(r.get("score")) for r in resolved]
        attributes = [r.get("score-attribute") for r in resolved]
        if len(rules) == 1:
            rule_text = render_rule(rules[0], ids)
            score = scores[0] if scores[0] is not None else score
            score_attribute = attributes[0]
            node = node or _rule_node(rules[0], ids)
        else:
            pieces = []
            for rule, rule_score, attribute in zip(rules, scores, attributes):
                suffix = f"score {rule_score}" if rule_score is not None else f"score-attribute {attribute}"
                pieces.append(f"({render_rule(rule, ids)}) [{suffix}]")
            rule_text = " ; ".join(pieces)
            distinct = set(scores)
            score = scores[0] if len(distinct) == 1 else None
            attrs = set(attributes)
            score_attribute = attributes[0] if len(attrs) == 1 else None
        for rule in rules:
            rule_nodes.extend(_uname_values(rule, ids))
    return LocationConstraint(
        id=constraint_id,
        resource=element.get("rsc"),
        node=node,
        score=score,
        rule=rule_text,
        kind=_kind(constraint_id, score, bool(rules)),
        role=element.get("role"),
        resource_pattern=element.get("rsc-pattern"),
        resource_set=resource_set,
        score_attribute=score_attribute,
        resource_discovery=element.get("resource-discovery"),
        rule_nodes=tuple(rule_nodes),
    )


def location_constraints(cib: Union[str, bytes, Element]) -> List[LocationConstraint]:
    """Every rsc_location in the CIB's constraints section, in document order."""
    root = parse_cib(cib)
    return _locations(root, _index_ids(root))


def _locations(root: Element, ids: Dict[str, Element]) -> List[LocationConstraint]:
    section = _constraints_section(root)
    if section is None:
        return []
    return [_parse_location(element, ids) for element in section.findall("rsc_location")]


def filter_constraints(
    constraints: Iterable[LocationConstraint], *, node: Optional[str] = None, resource: Optional[str] = None
) -> List[LocationConstraint]:
    selected = []
    for constraint in constraints:
        if node is not None and not constraint.mentions_node(node):
            continue
        if resource is not None and not constraint.mentions_resource(resource):
            continue
        selected.append(constraint)
    return selected


# --- what exists -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionResource:
    """The resource through which the cluster reaches a remote, guest or bundle node."""

    id: str  # the connection resource's id (for guests and bundles the implicit one: the node name)
    node: str  # the node it connects
    kind: str  # remote | guest | bundle
    container: Optional[str] = None  # guests: the resource with remote-node; bundles: the bundle


def resource_elements(root: Element) -> Iterator[Element]:
    """The primitives, groups, clones (and legacy masters) and bundles with an id under configuration/resources,
    in document order."""
    resources = root.find("./configuration/resources")
    if resources is None:
        return
    for element in resources.iter():
        if element.tag in RESOURCE_TAGS and element.get("id"):
            yield element


class CibIndex:
    """What a CIB says exists: nodes, resources, connection resources and every id in use. The nodes and the
    connection resources come from :mod:`remotectl.pacemaker.inventory`, so they are the nodes ``remotectl nodes``
    lists."""

    def __init__(self, cib: Union[str, bytes, Element]) -> None:
        self.root = parse_cib(cib)
        self.ids: Dict[str, Element] = _index_ids(self.root)
        self.inventory = inventory_from_cib(self.root)
        self.resources: Dict[str, str] = {}  # id -> tag (primitive, group, clone, master, bundle, implicit)
        self.connections: Dict[str, ConnectionResource] = {}  # connection resource id -> connection
        self.containers: Dict[str, ConnectionResource] = {}  # guest container id -> connection
        for element in resource_elements(self.root):
            self.resources[element.get("id")] = element.tag
        for found in self.inventory.connections():
            connection = ConnectionResource(found.id, found.node, found.kind, found.container)
            self.connections.setdefault(found.id, connection)
            if found.kind == "guest" and found.container is not None:
                self.containers.setdefault(found.container, connection)
            if found.kind != "remote":
                self.resources.setdefault(found.id, "implicit")
        for node in self.inventory.nodes:
            if node.type == "bundle" and node.container is not None:
                self.resources.setdefault(node.container, "implicit")

    @property
    def node_names(self) -> Set[str]:
        return set(self.inventory.names())

    def node_type(self, name: str) -> Optional[str]:
        """``cluster``, ``remote``, ``guest`` or ``bundle``; None for a name the configuration has no node for."""
        return self.inventory.node_type(name)

    def has_resource(self, name: str) -> bool:
        return name in self.resources

    def constraint(self, constraint_id: str) -> Optional[Element]:
        """The constraint element (a direct child of <constraints>) with this id, or None."""
        section = _constraints_section(self.root)
        if section is None:
            return None
        for element in section:
            if element.get("id") == constraint_id:
                return element
        return None

    def locations(self) -> List[LocationConstraint]:
        return _locations(self.root, self.ids)


# --- connection resources misused in groups, order or colocation ----------------------------------------------------


@dataclass(frozen=True)
class Misuse:
    resource: str  # the connection resource
    node: str  # the node it connects
    where: str  # group | order | colocation
    element_id: str  # the group's or the constraint's id
    message: str


def _set_refs(element: Element) -> List[str]:
    return [ref.get("id") or "" for rset in element.findall("resource_set") for ref in rset.findall("resource_ref")]


def connection_misuse(cib: Union[str, bytes, Element, CibIndex]) -> List[Misuse]:
    """Remote connection resources in groups, order or colocation constraints: Pacemaker does not support that
    (connection resources may only be placed with location constraints)."""
    index = cib if isinstance(cib, CibIndex) else CibIndex(cib)
    found: List[Misuse] = []
    resources = index.root.find("./configuration/resources")
    if resources is not None:
        for group in resources.iter("group"):
            for primitive in group.findall("primitive"):
                rid = primitive.get("id") or ""
                connection = index.connections.get(rid)
                if connection is not None and connection.kind == "remote":
                    found.append(
                        Misuse(
                            rid,
                            connection.node,
                            "group",
                            group.get("id") or "?",
                            f"connection resource {rid} of remote node {connection.node} is in group "
                            f"{group.get('id')}; connection resources must not be grouped (use location "
                            f"constraints only)",
                        )
                    )
    section = _constraints_section(index.root)
    if section is not None:
        for element in section:
            if element.tag == "rsc_order":
                where, attributes = "order", ("first", "then")
            elif element.tag == "rsc_colocation":
                where, attributes = "colocation", ("rsc", "with-rsc")
            else:
                continue
            referenced = [element.get(a) for a in attributes if element.get(a)] + _set_refs(element)
            seen = set()
            for rid in referenced:
                if rid in seen:
                    continue
                seen.add(rid)
                connection = index.connections.get(rid)
                if connection is None:
                    continue
                kind = {"remote": "remote node", "guest": "guest node", "bundle": "bundle node"}[connection.kind]
                found.append(
                    Misuse(
                        rid,
                        connection.node,
                        where,
                        element.get("id") or "?",
                        f"{where} constraint {element.get('id')} uses {rid}, the connection resource of {kind} "
                        f"{connection.node}; connection resources must not be in order or colocation "
                        f"constraints (use location constraints only)",
                    )
                )
    return found


# --- building a new location constraint ------------------------------------------------------------------------------


def sanitize_id(text: str) -> str:
    """Make text a valid XML ID (NCName, ASCII subset): other characters become "_", and it starts with a letter
    or "_"."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    if not cleaned or not re.match(r"[A-Za-z_]", cleaned):
        cleaned = "_" + cleaned
    return cleaned


def location_id(resource: str, node: str, score: str, taken: Iterable[str]) -> str:
    """``location-RSC-NODE-SCORE`` like pcs, made a valid XML id and unique (``-1``, ``-2`` ... appended)."""
    base = sanitize_id(f"location-{resource}-{node}-{score}")
    used = set(taken)
    if base not in used:
        return base
    counter = 1
    while f"{base}-{counter}" in used:
        counter += 1
    return f"{base}-{counter}"


def location_xml(constraint_id: str, resource: str, node: str, score: str) -> str:
    """``<rsc_location id=... rsc=... node=... score=.../>``, serialized by xml.etree (attributes escaped)."""
    for kind, value in (("constraint id", constraint_id), ("resource", resource), ("node", node)):
        check_name(kind, value)
    element = ElementTree.Element(
        "rsc_location", {"id": constraint_id, "rsc": resource, "node": node, "score": score}
    )
    return ElementTree.tostring(element, encoding="unicode")


def delete_xml(tag: str, constraint_id: str) -> str:
    """``<TAG id="..."/>`` for ``cibadmin --delete``: matches exactly that element."""
    if tag not in CONSTRAINT_TAGS:
        raise RemotectlError(f"{tag} is not a constraint element")
    check_name("constraint id", constraint_id)
    return ElementTree.tostring(ElementTree.Element(tag, {"id": constraint_id}), encoding="unicode")


def same_placement(constraints: Sequence[LocationConstraint], resource: str, node: str) -> List[LocationConstraint]:
    """Plain (rule-less, role-less) location constraints of resource on node."""
    return [
        c
        for c in constraints
        if c.resource == resource and c.node == node and c.rule is None and c.role is None and not c.resource_set
    ]

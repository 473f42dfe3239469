"""constraint list / prefer / avoid / remove: location constraints through cibadmin, live or on a CIB file.

New constraints are built with xml.etree (names escaped by the serializer) and created with
``cibadmin --create --scope constraints --xml-text XML``; removal is ``cibadmin --delete --xml-text '<TAG id=.../>'``.
Both are checked afterwards by reading the CIB again, because ``cibadmin --delete`` of an id that does not exist
succeeds silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from remotectl.jsonable import json_field, jsonable
from remotectl.pacemaker import constraints as model
from remotectl.pacemaker import tools, values
from remotectl.reports import ExitCode, RefusedError, RemotectlError, Report, Reporter


@dataclass
class ConstraintList:
    constraints: List[model.LocationConstraint]
    reports: List[Report] = field(default_factory=list)


@dataclass
class ConstraintChange:
    id: str
    action: str  # created | removed | unchanged
    before: Optional[dict]
    after: Optional[dict]
    ok: bool = True
    error: Optional[str] = None
    description: str = json_field(omit=True, default="")  # the human line; JSON has before/after


@dataclass
class ConstraintChangeResult:
    changes: List[ConstraintChange]
    reports: List[Report] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if all(c.ok for c in self.changes) else ExitCode.FAILURE


def _read_index(cluster) -> model.CibIndex:
    return model.CibIndex(model.parse_cib(cluster.cib_xml(), f"CIB from {cluster.name}"))


def _misuse_reports(index: model.CibIndex, reporter: Reporter) -> None:
    for misuse in model.connection_misuse(index):
        reporter.warning(misuse.message, node=misuse.node, code=f"connection-in-{misuse.where}")


def _dangling_reports(index: model.CibIndex, constraints: List[model.LocationConstraint], reporter: Reporter) -> None:
    nodes = index.node_names
    for constraint in constraints:
        if constraint.resource and not index.has_resource(constraint.resource):
            reporter.warning(
                f"location constraint {constraint.id} refers to resource {constraint.resource}, which does not exist",
                code="dangling-resource",
            )
        if constraint.node and constraint.rule is None and constraint.node not in nodes:
            reporter.warning(
                f"location constraint {constraint.id} refers to node {constraint.node}, which the cluster does "
                f"not know",
                node=constraint.node,
                code="dangling-node",
            )


def list_constraints(cluster, *, node: Optional[str] = None, resource: Optional[str] = None) -> ConstraintList:
    """Location constraints (all, or those about node / resource), with warnings about connection resources
    misused in groups, order or colocation constraints and about constraints that refer to nothing."""
    index = _read_index(cluster)
    everything = index.locations()
    selected = model.filter_constraints(everything, node=node, resource=resource)
    reporter = Reporter()
    _misuse_reports(index, reporter)
    _dangling_reports(index, selected, reporter)
    return ConstraintList(selected, reporter.reports)


def _check_placement(index: model.CibIndex, resource: str, node: str, avoid: bool, force: bool,
                     reporter: Reporter) -> None:
    problems = []
    if not index.has_resource(resource):
        problems.append(f"resource {resource} does not exist in the CIB")
    node_type = index.node_type(node)
    if node_type is None:
        problems.append(f"node {node} is not known to the cluster")
    connection = index.connections.get(resource)
    container = index.containers.get(resource)
    if connection is not None and connection.kind in ("guest", "bundle") and connection.id == resource:
        holder = connection.container
        problems.append(
            f"{resource} is the implicit connection resource of {connection.kind} node {connection.node}; "
            f"constrain {'its container ' + holder if connection.kind == 'guest' else 'the bundle ' + str(holder)} "
            f"instead"
        )
    elif connection is not None and not avoid and node_type in ("remote", "guest", "bundle"):
        problems.append(
            f"{resource} is the connection resource of remote node {connection.node}; connection resources run on "
            f"cluster nodes only, so it can never run on {node_type} node {node}"
        )
    elif container is not None and not avoid and node_type in ("remote", "guest", "bundle"):
        problems.append(
            f"{resource} is the container of guest node {container.node}; Pacemaker does not run guest nodes "
            f"inside Pacemaker Remote nodes, so it can never run on {node_type} node {node}"
        )
    if problems:
        message = "; ".join(problems)
        if not force:
            raise RefusedError(f"{message} (use --force to create the constraint anyway)")
        reporter.warning(f"{message}; creating the constraint anyway (--force)", code="placement-forced")
    if connection is not None and connection.kind == "remote" and node_type == "cluster":
        reporter.info(
            f"{resource} is the connection resource of remote node {connection.node}: this constraint chooses "
            f"which cluster node hosts the connection, not where {connection.node}'s resources run",
            node=connection.node,
            code="constrains-connection-host",
        )


def add_location(cluster, resource: str, node: str, score: Optional[str] = None, *, avoid: bool = False,
                 force: bool = False) -> ConstraintChangeResult:
    """``prefer`` (score > 0) or ``avoid`` (score negated) resource on node; default score INFINITY."""
    values.check_name("resource", resource)
    values.check_name("node", node)
    given = values.parse_user_score(score) if score is not None else "INFINITY"
    value = values.score_value(given)
    if avoid:
        if value is not None and value < 0:
            raise RemotectlError("avoid takes a positive --score (it is negated); or use prefer with a negative one")
        final = values.negate_score(given) if value else "0"
    else:
        final = given
    reporter = Reporter()
    index = _read_index(cluster)
    _check_placement(index, resource, node, avoid, force, reporter)
    existing = model.same_placement(index.locations(), resource, node)
    for constraint in existing:
        if constraint.score == final:
            return ConstraintChangeResult(
                [
                    ConstraintChange(
                        constraint.id,
                        "unchanged",
                        jsonable(constraint),
                        jsonable(constraint),
                        description=constraint.describe(),
                    )
                ],
                reporter.reports,
            )
    for constraint in existing:
        reporter.warning(
            f"location constraint {constraint.id} also places {resource} on {node} (score {constraint.score}); "
            f"Pacemaker adds the scores up",
            node=node,
            code="scores-add-up",
        )
    constraint_id = model.location_id(resource, node, final, index.ids)
    xml_text = model.location_xml(constraint_id, resource, node, final)
    cluster.check_tool(tools.cib_create("constraints", xml_text))
    after_index = _read_index(cluster)
    created = [c for c in after_index.locations() if c.id == constraint_id]
    if not created:
        change = ConstraintChange(constraint_id, "created", None, None, ok=False,
                                  error="cibadmin succeeded but the constraint is not in the CIB afterwards")
    else:
        change = ConstraintChange(constraint_id, "created", None, jsonable(created[0]),
                                  description=created[0].describe())
    return ConstraintChangeResult([change], reporter.reports)


def _describe_element(element) -> dict:
    data = {"type": element.tag}
    data.update({key: value for key, value in element.attrib.items()})
    return data


def remove_constraint(cluster, constraint_id: str) -> ConstraintChangeResult:
    """Remove one constraint (any type: location, order, colocation, ticket) by its id."""
    values.check_name("constraint id", constraint_id)
    index = _read_index(cluster)
    element = index.constraint(constraint_id)
    if element is None:
        other = index.ids.get(constraint_id)
        if other is not None:
            raise RemotectlError(f"{constraint_id} is a <{other.tag}>, not a constraint; nothing removed")
        raise RemotectlError(f"no constraint with id {constraint_id}")
    if element.tag == "rsc_location":
        location = [c for c in index.locations() if c.id == constraint_id][0]
        before = jsonable(location)
        description = location.describe()
    else:
        before = _describe_element(element)
        description = f"{constraint_id}: {element.tag}"
    cluster.check_tool(tools.cib_delete(model.delete_xml(element.tag, constraint_id)))
    after_index = _read_index(cluster)
    if after_index.constraint(constraint_id) is not None:
        change = ConstraintChange(constraint_id, "removed", before, before, ok=False,
                                  error="cibadmin succeeded but the constraint is still in the CIB",
                                  description=description)
    else:
        change = ConstraintChange(constraint_id, "removed", before, None, description=description)
    return ConstraintChangeResult([change], [])

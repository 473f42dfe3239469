"""Small offline CIBs for the tests that run the CLI on a CIB file (--cib, CIB_file=): cluster node node1 (id 1),
online and a member, running the connections of the remote nodes the test describes."""

CONFIGURATION = """\
<cib have-quorum="1" dc-uuid="1" crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="10" num_updates="0"
     admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="{stonith_enabled}"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="node1"/>
    </nodes>
    <resources>
{resources}
    </resources>
    <constraints/>
  </configuration>
  {status}
</cib>
"""


def started(rsc, cls, provider, agent):
    """The lrm_resource of a resource whose last operation was a successful start."""
    provider_attr = f' provider="{provider}"' if provider else ""
    key = "1:0:0:00000000-0000-0000-0000-000000000000"
    return (
        f'<lrm_resource id="{rsc}" class="{cls}"{provider_attr} type="{agent}"><lrm_rsc_op id="{rsc}_last_0" '
        f'operation_key="{rsc}_start_0" operation="start" transition-key="{key}" transition-magic="0:0;{key}" '
        f'call-id="1" rc-code="0" op-status="0" interval="0" last-rc-change="1700000000"/></lrm_resource>'
    )


def cib(resources, node1_runs, remote_node_states, *, stonith_enabled):
    """resources: the <resources> children; node1_runs: (rsc, class, provider, agent) of what node1 has started;
    remote_node_states: the node_state elements of the remote and guest nodes."""
    status = (
        '<status><node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">'
        f'<lrm id="1"><lrm_resources>{"".join(started(*run) for run in node1_runs)}</lrm_resources></lrm>'
        f'</node_state>{remote_node_states}</status>'
    )
    return CONFIGURATION.format(stonith_enabled="true" if stonith_enabled else "false", resources=resources,
                                status=status)

"""The network lab: Azure egress paths reproduced with network namespaces, veth and nftables.

``lab.py`` turns a declarative topology (source VMs and their egress path) into namespaces
and SNAT rules, ``services.py`` runs real sshd, rsyslog and nginx in the destination
namespace, ``conftest.py`` hands both to tests with guaranteed teardown.  See DESIGN.md,
"The network lab".
"""

"""Network faults for a cluster on one Linux machine: every node in its own network namespace.

`netns` builds the namespaces, a bridge and the veth pairs, and cuts, heals
and flaps links with nftables rules inside those namespaces. `proxy` delays
a TCP stream in user space, for kernels without netem. `scenarios` runs a
cluster on that network and breaks it in named ways. Everything here needs
root; `netns.unavailable()` says why it cannot run otherwise.
"""

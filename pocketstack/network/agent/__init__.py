"""The host network data plane (Neutron's Linux bridge, DHCP, L3 and metadata agents): `agent.NetworkAgent`.

One agent per host (its name is the compute host name ports are bound to). It talks to the network service
only over RPC (`pocketstack.network.rpcapi.PluginAPI`; notifications on topic `network_agent`), so it runs in
the all-in-one's network service or alone (`service_app.create_agent`, `pocketstack serve network-agent`).

What a guest gets, on a network with a DHCP-enabled IPv4 subnet:
- its tap (`tap` + port id[:11], made by compute) on the network's bridge (`brq` + network id[:11], or the
  mapped bridge of a flat network), its port ACTIVE and compute told `network-vif-plugged` once it is;
- DHCP from dnsmasq in `qdhcp-<network id>`: its fixed address, the MTU (26), router (3), DNS (6: the subnet's
  servers, else the DHCP port's address) and, forced even when not asked for, classless static routes (121):
  169.254.169.254/32 via the DHCP port's address and 0.0.0.0/0 via the gateway (busybox udhcpc: `-O
  staticroutes`, apply `$staticroutes`, which makes `$router` moot as RFC 3442 says);
- http://169.254.169.254/ answered by the metadata proxy from the compute metadata API;
- security groups on its tap (nftables), anti-spoofing unless port security is off;
- through a router: SNAT to the router's external address, and DNAT from a floating IP.
"""

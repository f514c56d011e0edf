"""The expectation lines of tests/policy_expectations.py, per service: from Nova's `os_compute_api:*` defaults,
Neutron's, Cinder's, Glance's and Keystone's policy-in-code (their secure-RBAC defaults: project reader reads,
project member changes, project manager where upstream names it, admin everything)."""

COMPUTE = """
GET    /                                                         public
# Nova's api-paste serves the version documents without authentication
GET    /v2.1                                                     public
GET    /v2.1/                                                    public
GET    /v2                                                       public
GET    /v2/                                                      public
POST   /v2.1/servers                                             create
GET    /v2.1/servers                                             any
GET    /v2.1/servers                                             admin   query=all_tenants=1
GET    /v2.1/servers/detail                                      any
GET    /v2.1/servers/detail                                      admin   query=all_tenants=1
GET    /v2.1/servers/{server_id}                                 read
PUT    /v2.1/servers/{server_id}                                 write   body=server_update
DELETE /v2.1/servers/{server_id}                                 write
POST   /v2.1/servers/{server_id}/action                          write   body=stop
POST   /v2.1/servers/{server_id}/action                          write   body=console
POST   /v2.1/servers/{server_id}/action                          admin   body=reset_state
POST   /v2.1/servers/{server_id}/action                          write   body=lock
POST   /v2.1/servers/{server_id}/action                          write   body=pause
POST   /v2.1/servers/{server_id}/action                          write   body=create_image
POST   /v2.1/servers/{server_id}/action                          write   body=rescue
POST   /v2.1/servers/{server_id}/action                          admin   body=shelve_offload
POST   /v2.1/servers/{server_id}/action                          write   body=add_secgroup
POST   /v2.1/servers/{server_id}/action                          write   body=resize
POST   /v2.1/servers/{server_id}/action                          admin   body=migrate
POST   /v2.1/servers/{server_id}/action                          admin   body=inject_network_info
GET    /v2.1/servers/{server_id}/migrations                      admin   mv=2.23
GET    /v2.1/servers/{server_id}/migrations/{migration_id}       admin   mv=2.23
GET    /v2.1/servers/{server_id}/os-interface                    read
POST   /v2.1/servers/{server_id}/remote-consoles                 write   body=console_serial mv=2.6
GET    /v2.1/os-console-auth-tokens/{console_token}              admin   mv=2.31
POST   /v2.1/servers/{server_id}/os-interface                    write   body=interface
GET    /v2.1/servers/{server_id}/os-interface/{port_id}          read
DELETE /v2.1/servers/{server_id}/os-interface/{port_id}          write
POST   /v2.1/os-server-external-events                           admin   body=events
GET    /v2.1/limits                                              any
GET    /v2.1/limits                                              admin   query=tenant_id={project_id}
GET    /v2.1/os-quota-sets/{project_id}/defaults                 any
GET    /v2.1/os-quota-sets/{project_id}/detail                   read
GET    /v2.1/os-quota-sets/{project_id}                          read
PUT    /v2.1/os-quota-sets/{project_id}                          admin   body=quota
DELETE /v2.1/os-quota-sets/{project_id}                          admin
GET    /v2.1/servers/{server_id}/os-instance-actions             read
GET    /v2.1/servers/{server_id}/os-instance-actions/{request_id} read
GET    /v2.1/servers/{server_id}/metadata                        read
POST   /v2.1/servers/{server_id}/metadata                        write   body=metadata
PUT    /v2.1/servers/{server_id}/metadata                        write   body=metadata
GET    /v2.1/servers/{server_id}/metadata/{key}                  read
PUT    /v2.1/servers/{server_id}/metadata/{key}                  write   body=meta_item
DELETE /v2.1/servers/{server_id}/metadata/{key}                  write
GET    /v2.1/servers/{server_id}/tags                            read mv=2.26
PUT    /v2.1/servers/{server_id}/tags                            write   body=tags mv=2.26
DELETE /v2.1/servers/{server_id}/tags                            write mv=2.26
GET    /v2.1/servers/{server_id}/tags/{tag}                      read mv=2.26
PUT    /v2.1/servers/{server_id}/tags/{tag}                      write mv=2.26
DELETE /v2.1/servers/{server_id}/tags/{tag}                      write mv=2.26
GET    /v2.1/servers/{server_id}/os-volume_attachments           read
POST   /v2.1/servers/{server_id}/os-volume_attachments           write   body=attach
GET    /v2.1/servers/{server_id}/os-volume_attachments/{volume_id} read
PUT    /v2.1/servers/{server_id}/os-volume_attachments/{volume_id} admin  body=swap
DELETE /v2.1/servers/{server_id}/os-volume_attachments/{volume_id} write
GET    /v2.1/flavors                                             any
POST   /v2.1/flavors                                             admin   body=flavor
GET    /v2.1/flavors/detail                                      any
GET    /v2.1/flavors/{flavor_id}                                 any
PUT    /v2.1/flavors/{flavor_id}                                 admin   body=flavor_update
DELETE /v2.1/flavors/{flavor_id}                                 admin
GET    /v2.1/flavors/{flavor_id}/os-extra_specs                  any
POST   /v2.1/flavors/{flavor_id}/os-extra_specs                  admin   body=extra_specs
GET    /v2.1/flavors/{flavor_id}/os-extra_specs/{key}            any     key=flavor_key
PUT    /v2.1/flavors/{flavor_id}/os-extra_specs/{key}            admin   key=flavor_key body=extra_spec
DELETE /v2.1/flavors/{flavor_id}/os-extra_specs/{key}            admin   key=flavor_key
GET    /v2.1/flavors/{flavor_id}/os-flavor-access                admin
POST   /v2.1/flavors/{flavor_id}/action                          admin   body=flavor_access
POST   /v2.1/os-keypairs                                         any
GET    /v2.1/os-keypairs                                         any
GET    /v2.1/os-keypairs                                         self    query=user_id={member_user} mv=2.10
GET    /v2.1/os-keypairs/{name}                                  self    name=keypair
DELETE /v2.1/os-keypairs/{name}                                  self    name=keypair
GET    /v2.1/os-availability-zone                                any
GET    /v2.1/os-availability-zone/detail                         admin
GET    /v2.1/os-hypervisors                                      admin
GET    /v2.1/os-hypervisors/detail                               admin
GET    /v2.1/os-hypervisors/statistics                           admin
GET    /v2.1/os-hypervisors/{pattern}/search                     admin
GET    /v2.1/os-hypervisors/{pattern}/servers                    admin
GET    /v2.1/os-hypervisors/{hypervisor_id}/uptime               admin
GET    /v2.1/os-hypervisors/{hypervisor_id}                      admin
GET    /v2.1/os-services                                         admin
PUT    /v2.1/os-services/{service_id}                            admin   body=service_update mv=2.53
DELETE /v2.1/os-services/{service_id}                            admin mv=2.53
POST   /v2.1/os-server-groups                                    create  body=server_group
GET    /v2.1/os-server-groups                                    any
GET    /v2.1/os-server-groups                                    any     query=all_projects=true
GET    /v2.1/os-server-groups/{group_id}                         read
DELETE /v2.1/os-server-groups/{group_id}                         write
GET    /v2.1/servers/{server_id}/ips                             read
GET    /v2.1/servers/{server_id}/ips/{network}                   read
GET    /v2.1/servers/{server_id}/os-server-password              read
DELETE /v2.1/servers/{server_id}/os-server-password              write
GET    /v2.1/servers/{server_id}/os-security-groups              read
GET    /v2.1/servers/{server_id}/diagnostics                     admin
GET    /v2.1/extensions                                          any
GET    /v2.1/extensions/{alias}                                  any
GET    /v2.1/images                                              any
GET    /v2.1/images/detail                                       any
GET    /v2.1/images/{image_id}                                   read
DELETE /v2.1/images/{image_id}                                   write
GET    /v2.1/images/{image_id}/metadata                          read
POST   /v2.1/images/{image_id}/metadata                          write   body=metadata
PUT    /v2.1/images/{image_id}/metadata                          write   body=metadata
GET    /v2.1/images/{image_id}/metadata/{key}                    read    key=image_key
PUT    /v2.1/images/{image_id}/metadata/{key}                    write   key=image_key body=image_meta_item
DELETE /v2.1/images/{image_id}/metadata/{key}                    write   key=image_key
GET    /v2.1/os-security-groups                                  any
POST   /v2.1/os-security-groups                                  create  body=secgroup
GET    /v2.1/os-security-groups/{group_id}                       read    group_id=secgroup
PUT    /v2.1/os-security-groups/{group_id}                       write   group_id=secgroup body=secgroup
DELETE /v2.1/os-security-groups/{group_id}                       write   group_id=secgroup
POST   /v2.1/os-security-group-rules                             write   body=secgroup_rule
DELETE /v2.1/os-security-group-rules/{rule_id}                   write
GET    /v2.1/os-floating-ip-pools                                any
GET    /v2.1/os-floating-ips                                     any
POST   /v2.1/os-floating-ips                                     create  body=floating_ip
GET    /v2.1/os-floating-ips/{floating_ip_id}                    read
DELETE /v2.1/os-floating-ips/{floating_ip_id}                    write
GET    /v2.1/os-networks                                         any
GET    /v2.1/os-networks/{network_id}                            read
GET    /v2.1/os-tenant-networks                                  any
GET    /v2.1/os-tenant-networks/{network_id}                     read
GET    /v2.1/os-volumes                                          any
POST   /v2.1/os-volumes                                          create  body=volume
GET    /v2.1/os-volumes/detail                                   any
GET    /v2.1/os-volumes/{volume_id}                              read
DELETE /v2.1/os-volumes/{volume_id}                              write
GET    /v2.1/os-snapshots                                        any
POST   /v2.1/os-snapshots                                        write   body=snapshot
GET    /v2.1/os-snapshots/detail                                 any
GET    /v2.1/os-snapshots/{snapshot_id}                          read
DELETE /v2.1/os-snapshots/{snapshot_id}                          write
GET    /v2.1/os-aggregates                                       admin
POST   /v2.1/os-aggregates                                       admin   body=aggregate
GET    /v2.1/os-aggregates/{aggregate_id}                        admin
PUT    /v2.1/os-aggregates/{aggregate_id}                        admin   body=aggregate
DELETE /v2.1/os-aggregates/{aggregate_id}                        admin
POST   /v2.1/os-aggregates/{aggregate_id}/action                 admin   body=aggregate_meta
GET    /v2.1/os-hosts                                            admin
GET    /v2.1/os-hosts/{host_name}                                admin
PUT    /v2.1/os-hosts/{host_name}                                admin   body=host_update
GET    /v2.1/os-hosts/{host_name}/startup                        admin
GET    /v2.1/os-hosts/{host_name}/shutdown                       admin
GET    /v2.1/os-hosts/{host_name}/reboot                         admin
GET    /v2.1/os-quota-class-sets/{class_name}                    admin
PUT    /v2.1/os-quota-class-sets/{class_name}                    admin   body=quota_class
GET    /v2.1/os-simple-tenant-usage                              admin
GET    /v2.1/os-simple-tenant-usage/                             admin
GET    /v2.1/os-simple-tenant-usage/{tenant_id}                  read    tenant_id=project_id
GET    /v2.1/os-instance_usage_audit_log                         admin
GET    /v2.1/os-instance_usage_audit_log/{before_timestamp}      admin
GET    /v2.1/os-migrations                                       manager
"""

NETWORK = """
GET    /                                                         public
GET    /v2.0                                                     doc
GET    /v2.0/                                                    doc
GET    /v2.0/extensions                                          any
GET    /v2.0/extensions/{alias}                                  any
GET    /v2.0/service-providers                                   any
GET    /v2.0/networks                                            any
GET    /v2.0/networks                                            any     query=project_id={project_id}
POST   /v2.0/networks                                            create  body=network
POST   /v2.0/networks                                            admin   body=shared_network
GET    /v2.0/networks/{resource_id}                              read    resource_id=network
PUT    /v2.0/networks/{resource_id}                              write   resource_id=network body=network
DELETE /v2.0/networks/{resource_id}                              write   resource_id=network
GET    /v2.0/subnets                                             any
POST   /v2.0/subnets                                             write   body=subnet
GET    /v2.0/subnets/{resource_id}                               read    resource_id=subnet
PUT    /v2.0/subnets/{resource_id}                               write   resource_id=subnet body=subnet_update
DELETE /v2.0/subnets/{resource_id}                               write   resource_id=subnet
GET    /v2.0/subnetpools                                         any
POST   /v2.0/subnetpools                                         create  body=subnetpool
GET    /v2.0/subnetpools/{resource_id}                           read    resource_id=subnetpool
PUT    /v2.0/subnetpools/{resource_id}                           write   resource_id=subnetpool body=subnetpool_update
DELETE /v2.0/subnetpools/{resource_id}                           write   resource_id=subnetpool
GET    /v2.0/ports                                               any
GET    /v2.0/ports                                               any     query=project_id={project_id}
POST   /v2.0/ports                                               write   body=port
GET    /v2.0/ports/{resource_id}                                 read    resource_id=port
PUT    /v2.0/ports/{resource_id}                                 write   resource_id=port body=port_update
PUT    /v2.0/ports/{resource_id}                                 manager resource_id=port body=port_mac
DELETE /v2.0/ports/{resource_id}                                 write   resource_id=port
GET    /v2.0/security-groups                                     any
POST   /v2.0/security-groups                                     create  body=secgroup
GET    /v2.0/security-groups/{resource_id}                       read    resource_id=secgroup
PUT    /v2.0/security-groups/{resource_id}                       write   resource_id=secgroup body=secgroup_update
DELETE /v2.0/security-groups/{resource_id}                       write   resource_id=secgroup
GET    /v2.0/security-group-rules                                any
POST   /v2.0/security-group-rules                                write   body=secgroup_rule
GET    /v2.0/security-group-rules/{resource_id}                  read    resource_id=secgroup_rule
DELETE /v2.0/security-group-rules/{resource_id}                  write   resource_id=secgroup_rule
GET    /v2.0/routers                                             any
POST   /v2.0/routers                                             create  body=router
GET    /v2.0/routers/{resource_id}                               read    resource_id=router
PUT    /v2.0/routers/{resource_id}                               write   resource_id=router body=router
DELETE /v2.0/routers/{resource_id}                               write   resource_id=router
GET    /v2.0/floatingips                                         any
POST   /v2.0/floatingips                                         create  body=floatingip
POST   /v2.0/floatingips                                         manager body=floatingip_address
GET    /v2.0/floatingips/{resource_id}                           read    resource_id=floatingip
PUT    /v2.0/floatingips/{resource_id}                           write   resource_id=floatingip body=floatingip_update
DELETE /v2.0/floatingips/{resource_id}                           write   resource_id=floatingip
PUT    /v2.0/routers/{router_id}/add_router_interface            write   router_id=router body=router_interface
PUT    /v2.0/routers/{router_id}/remove_router_interface         write   router_id=router body=router_interface
GET    /v2.0/quotas                                              manager
GET    /v2.0/quotas/{project_id}                                 read
PUT    /v2.0/quotas/{project_id}                                 admin   body=quota
DELETE /v2.0/quotas/{project_id}                                 admin
GET    /v2.0/quotas/{project_id}/default                         read
GET    /v2.0/quotas/{project_id}/details                         read
# Neutron leaves out of a list what policy hides (agents, IP availability): [] for non-admins
GET    /v2.0/network-ip-availabilities                           any
GET    /v2.0/network-ip-availabilities/{network_id}              admin   network_id=network
GET    /v2.0/{collection}/{resource_id}/tags                     read    resource_id=network keep=collection
PUT    /v2.0/{collection}/{resource_id}/tags                     write   resource_id=network keep=collection body=tags
DELETE /v2.0/{collection}/{resource_id}/tags                     write   resource_id=network keep=collection
GET    /v2.0/{collection}/{resource_id}/tags/{tag}               read    resource_id=network keep=collection
PUT    /v2.0/{collection}/{resource_id}/tags/{tag}               write   resource_id=network keep=collection
DELETE /v2.0/{collection}/{resource_id}/tags/{tag}               write   resource_id=network keep=collection
GET    /v2.0/agents                                              any
GET    /v2.0/agents/{agent_id}                                   admin   agent_id=agent
PUT    /v2.0/agents/{agent_id}                                   admin   agent_id=agent body=agent
DELETE /v2.0/agents/{agent_id}                                   admin   agent_id=agent
"""

VOLUME = """
GET    /                                                         public
GET    /v3                                                       doc
GET    /v3/                                                      doc
POST   /v3/{project_id}/volumes                                  create  body=volume
GET    /v3/{project_id}/volumes                                  any
GET    /v3/{project_id}/volumes/                                 any
PUT    /v3/{project_id}/volumes/                                 any
DELETE /v3/{project_id}/volumes/                                 any
GET    /v3/{project_id}/volumes/detail                           any
GET    /v3/{project_id}/volumes/detail                           any     query=all_tenants=1
GET    /v3/{project_id}/volumes/summary                          any mv=3.12
GET    /v3/{project_id}/volumes/{volume_id}                      read
PUT    /v3/{project_id}/volumes/{volume_id}                      write   body=volume_update
DELETE /v3/{project_id}/volumes/{volume_id}                      write
GET    /v3/{project_id}/volumes/{volume_id}/metadata             read
POST   /v3/{project_id}/volumes/{volume_id}/metadata             write   body=metadata
PUT    /v3/{project_id}/volumes/{volume_id}/metadata             write   body=metadata
GET    /v3/{project_id}/volumes/{volume_id}/metadata/{key}       read
PUT    /v3/{project_id}/volumes/{volume_id}/metadata/{key}       write   body=meta_item
DELETE /v3/{project_id}/volumes/{volume_id}/metadata/{key}       write
POST   /v3/{project_id}/volumes/{volume_id}/action               write   body=extend
POST   /v3/{project_id}/volumes/{volume_id}/action               write   body=set_bootable
POST   /v3/{project_id}/volumes/{volume_id}/action               write   body=readonly
POST   /v3/{project_id}/volumes/{volume_id}/action               admin   body=force_detach
POST   /v3/{project_id}/volumes/{volume_id}/action               admin   body=reset_status
POST   /v3/{project_id}/volumes/{volume_id}/action               admin   body=force_delete
POST   /v3/{project_id}/snapshots                                write   body=snapshot
GET    /v3/{project_id}/snapshots                                any
GET    /v3/{project_id}/snapshots                                any     query=all_tenants=1
GET    /v3/{project_id}/snapshots/detail                         any
GET    /v3/{project_id}/snapshots/{snapshot_id}                  read
PUT    /v3/{project_id}/snapshots/{snapshot_id}                  write   body=snapshot_update
DELETE /v3/{project_id}/snapshots/{snapshot_id}                  write
POST   /v3/{project_id}/snapshots/{snapshot_id}/action           admin   body=reset_status
GET    /v3/{project_id}/snapshots/{snapshot_id}/metadata         read
POST   /v3/{project_id}/snapshots/{snapshot_id}/metadata         write   body=metadata
PUT    /v3/{project_id}/snapshots/{snapshot_id}/metadata         write   body=metadata
GET    /v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}   read
PUT    /v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}   write   body=meta_item
DELETE /v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}   write
GET    /v3/{project_id}/types                                    any
POST   /v3/{project_id}/types                                    admin   body=type
GET    /v3/{project_id}/types/{type_id}                          any
PUT    /v3/{project_id}/types/{type_id}                          admin   body=type_update
DELETE /v3/{project_id}/types/{type_id}                          admin
GET    /v3/{project_id}/types/{type_id}/extra_specs              any
POST   /v3/{project_id}/types/{type_id}/extra_specs              admin   body=extra_specs
GET    /v3/{project_id}/types/{type_id}/extra_specs/{key}        any     key=spec_key
PUT    /v3/{project_id}/types/{type_id}/extra_specs/{key}        admin   key=spec_key body=extra_spec
DELETE /v3/{project_id}/types/{type_id}/extra_specs/{key}        admin   key=spec_key
GET    /v3/{project_id}/types/{type_id}/os-volume-type-access    admin
POST   /v3/{project_id}/types/{type_id}/action                   admin   body=type_access
GET    /v3/{project_id}/types/{type_id}/encryption               admin
POST   /v3/{project_id}/types/{type_id}/encryption               admin   body=encryption
GET    /v3/{project_id}/types/{type_id}/encryption/{key}         admin   key=encryption_key
PUT    /v3/{project_id}/types/{type_id}/encryption/{key}         admin   key=encryption_key body=encryption
DELETE /v3/{project_id}/types/{type_id}/encryption/{key}         admin   key=encryption_key
GET    /v3/{project_id}/qos-specs                                admin
POST   /v3/{project_id}/qos-specs                                admin   body=qos
GET    /v3/{project_id}/qos-specs/{qos_id}                       admin
PUT    /v3/{project_id}/qos-specs/{qos_id}                       admin   body=qos_update
DELETE /v3/{project_id}/qos-specs/{qos_id}                       admin
PUT    /v3/{project_id}/qos-specs/{qos_id}/delete_keys           admin   body=qos_keys
GET    /v3/{project_id}/qos-specs/{qos_id}/associations          admin
GET    /v3/{project_id}/qos-specs/{qos_id}/associate             admin
GET    /v3/{project_id}/qos-specs/{qos_id}/disassociate          admin
GET    /v3/{project_id}/qos-specs/{qos_id}/disassociate_all      admin
POST   /v3/{project_id}/attachments                              write   body=attachment mv=3.27
GET    /v3/{project_id}/attachments                              any mv=3.27
GET    /v3/{project_id}/attachments/detail                       any mv=3.27
GET    /v3/{project_id}/attachments/{attachment_id}              read mv=3.27
PUT    /v3/{project_id}/attachments/{attachment_id}              write   body=attachment_update mv=3.27
DELETE /v3/{project_id}/attachments/{attachment_id}              write mv=3.27
POST   /v3/{project_id}/attachments/{attachment_id}/action       write   body=attachment_complete mv=3.44
POST   /v3/{project_id}/os-volume-transfer                       write   body=transfer
GET    /v3/{project_id}/os-volume-transfer                       any
POST   /v3/{project_id}/volume-transfers                         write   body=transfer mv=3.55
GET    /v3/{project_id}/volume-transfers                         any mv=3.55
GET    /v3/{project_id}/os-volume-transfer/detail                any
GET    /v3/{project_id}/volume-transfers/detail                  any mv=3.55
GET    /v3/{project_id}/os-volume-transfer/{transfer_id}         read
DELETE /v3/{project_id}/os-volume-transfer/{transfer_id}         write
GET    /v3/{project_id}/volume-transfers/{transfer_id}           read mv=3.55
DELETE /v3/{project_id}/volume-transfers/{transfer_id}           write mv=3.55
POST   /v3/{project_id}/os-volume-transfer/{transfer_id}/accept  create  body=accept
POST   /v3/{project_id}/volume-transfers/{transfer_id}/accept    create  body=accept mv=3.55
PUT    /v3/{project_id}/default-types/{target}                   admin   target=project_a body=default_type mv=3.62
GET    /v3/{project_id}/default-types/{target}                   admin   target=project_a mv=3.62
DELETE /v3/{project_id}/default-types/{target}                   admin   target=project_a mv=3.62
GET    /v3/{project_id}/default-types                            admin mv=3.62
GET    /v3/{project_id}/os-quota-sets/{target}/defaults          read    target=project_a
GET    /v3/{project_id}/os-quota-sets/{target}                   read    target=project_a
PUT    /v3/{project_id}/os-quota-sets/{target}                   admin   target=project_a body=quota
DELETE /v3/{project_id}/os-quota-sets/{target}                   admin   target=project_a
GET    /v3/{project_id}/os-quota-class-sets/{class_name}         admin
PUT    /v3/{project_id}/os-quota-class-sets/{class_name}         admin   body=quota_class
GET    /v3/{project_id}/limits                                   any
GET    /v3/{project_id}/messages                                 any mv=3.3
GET    /v3/{project_id}/messages/{message_id}                    read mv=3.3
DELETE /v3/{project_id}/messages/{message_id}                    write mv=3.3
GET    /v3/{project_id}/os-services                              admin
PUT    /v3/{project_id}/os-services/{action}                     admin   body=service_disable
GET    /v3/{project_id}/scheduler-stats/get_pools                admin
GET    /v3/{project_id}/capabilities/{host}                      admin
GET    /v3/{project_id}/os-availability-zone                     any
GET    /v3/{project_id}/os-hosts                                 admin
GET    /v3/{project_id}/os-hosts/{host}                          admin
GET    /v3/{project_id}/extensions                               any
"""

IMAGE = """
GET    /                                                         public
GET    /versions                                                 public
GET    /v2                                                       doc
GET    /v2/                                                      doc
GET    /v2/info/import                                           any
GET    /v2/info/stores                                           any
GET    /v2/info/usage                                            any
GET    /v2/schemas/metadefs/{name}                               any     name=metadef_schema
GET    /v2/schemas/{name}                                        any     name=schema
POST   /v2/images                                                create  body=image
GET    /v2/images                                                any
GET    /v2/images                                                any     query=visibility=all
GET    /v2/images                                                any     query=owner={project_a}
GET    /v2/images/{image_id}                                     read
PATCH  /v2/images/{image_id}                                     write   body=image_patch
PATCH  /v2/images/{image_id}                                     admin   body=publicize
DELETE /v2/images/{image_id}                                     write
PUT    /v2/images/{image_id}/tags/{tag}                          write
DELETE /v2/images/{image_id}/tags/{tag}                          write
POST   /v2/images/{image_id}/actions/{action}                    write
PUT    /v2/images/{image_id}/file                                write   body=data
GET    /v2/images/{image_id}/file                                write
PUT    /v2/images/{image_id}/stage                               write   body=data
POST   /v2/images/{image_id}/import                              write   body=import
GET    /v2/images/{image_id}/tasks                               read
POST   /v2/images/{image_id}/members                             write   body=member image_id=shared_image
GET    /v2/images/{image_id}/members                             any image_id=shared_image
GET    /v2/images/{image_id}/members/{member_id}                 any image_id=shared_image
PUT    /v2/images/{image_id}/members/{member_id}                 grantee body=member_status image_id=shared_image
DELETE /v2/images/{image_id}/members/{member_id}                 write image_id=shared_image
POST   /v2/tasks                                                 admin   body=task
GET    /v2/tasks                                                 admin
GET    /v2/tasks/{task_id}                                       admin
GET    /v2/metadefs/resource_types                               any
POST   /v2/metadefs/namespaces                                   admin   body=namespace
GET    /v2/metadefs/namespaces                                   any
GET    /v2/metadefs/namespaces/{namespace}                       any
PUT    /v2/metadefs/namespaces/{namespace}                       admin   body=namespace
DELETE /v2/metadefs/namespaces/{namespace}                       admin
GET    /v2/metadefs/namespaces/{namespace}/resource_types        any
POST   /v2/metadefs/namespaces/{namespace}/resource_types        admin   body=resource_type
DELETE /v2/metadefs/namespaces/{namespace}/resource_types/{resource_type} admin
GET    /v2/metadefs/namespaces/{namespace}/objects               any
POST   /v2/metadefs/namespaces/{namespace}/objects               admin   body=md_object
DELETE /v2/metadefs/namespaces/{namespace}/objects               admin
GET    /v2/metadefs/namespaces/{namespace}/objects/{object_name} any
PUT    /v2/metadefs/namespaces/{namespace}/objects/{object_name} admin   body=md_object
DELETE /v2/metadefs/namespaces/{namespace}/objects/{object_name} admin
GET    /v2/metadefs/namespaces/{namespace}/properties            any
POST   /v2/metadefs/namespaces/{namespace}/properties            admin   body=md_property
DELETE /v2/metadefs/namespaces/{namespace}/properties            admin
GET    /v2/metadefs/namespaces/{namespace}/properties/{property_name} any
PUT    /v2/metadefs/namespaces/{namespace}/properties/{property_name} admin body=md_property
DELETE /v2/metadefs/namespaces/{namespace}/properties/{property_name} admin
GET    /v2/metadefs/namespaces/{namespace}/tags                  any
POST   /v2/metadefs/namespaces/{namespace}/tags                  admin   body=md_tags
DELETE /v2/metadefs/namespaces/{namespace}/tags                  admin
POST   /v2/metadefs/namespaces/{namespace}/tags/{tag_name}       admin
GET    /v2/metadefs/namespaces/{namespace}/tags/{tag_name}       any
PUT    /v2/metadefs/namespaces/{namespace}/tags/{tag_name}       admin   body=md_tag
DELETE /v2/metadefs/namespaces/{namespace}/tags/{tag_name}       admin
"""

EPG = "group_id=endpoint_group"
INH = "/v3/OS-INHERIT/{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles"
KINDS = "keep=target_kind,actor_kind"
IDENTITY = f"""
GET    /                                                         public
GET    /v3                                                       public
GET    /v3/                                                      public
POST   /v3/auth/tokens                                           public
GET    /v3/auth/tokens                                           self
HEAD   /v3/auth/tokens                                           self
DELETE /v3/auth/tokens                                           self
GET    /v3/auth/catalog                                          scoped
GET    /v3/auth/projects                                         any
GET    /v3/auth/domains                                          any
GET    /v3/auth/system                                           any
POST   /v3/domains                                               admin   body=domain
GET    /v3/domains                                               admin
GET    /v3/domains/config/default                                admin
GET    /v3/domains/config/{{group}}/default                      admin
GET    /v3/domains/config/{{group}}/{{option}}/default           admin
PUT    /v3/domains/{{domain_id}}/config                          admin   body=domain_config
GET    /v3/domains/{{domain_id}}/config                          admin
PATCH  /v3/domains/{{domain_id}}/config                          admin   body=domain_config
DELETE /v3/domains/{{domain_id}}/config                          admin
GET    /v3/domains/{{domain_id}}/config/{{group}}                admin
PATCH  /v3/domains/{{domain_id}}/config/{{group}}                admin   body=domain_config
DELETE /v3/domains/{{domain_id}}/config/{{group}}                admin
GET    /v3/domains/{{domain_id}}/config/{{group}}/{{option}}     admin
PATCH  /v3/domains/{{domain_id}}/config/{{group}}/{{option}}     admin   body=domain_option
DELETE /v3/domains/{{domain_id}}/config/{{group}}/{{option}}     admin
GET    /v3/domains/{{domain_id}}                                 admin
PATCH  /v3/domains/{{domain_id}}                                 admin   body=domain_update
DELETE /v3/domains/{{domain_id}}                                 admin
POST   /v3/projects                                              admin   body=project
GET    /v3/projects                                              admin
GET    /v3/projects/{{project_id}}                               read
PATCH  /v3/projects/{{project_id}}                               admin   body=project_update
DELETE /v3/projects/{{project_id}}                               admin
GET    /v3/projects/{{project_id}}/tags                          read
PUT    /v3/projects/{{project_id}}/tags                          admin   body=tags
DELETE /v3/projects/{{project_id}}/tags                          admin
GET    /v3/projects/{{project_id}}/tags/{{tag}}                  read
HEAD   /v3/projects/{{project_id}}/tags/{{tag}}                  read
PUT    /v3/projects/{{project_id}}/tags/{{tag}}                  admin
DELETE /v3/projects/{{project_id}}/tags/{{tag}}                  admin
POST   /v3/users                                                 admin   body=user
GET    /v3/users                                                 admin
GET    /v3/users/{{user_id}}                                     self
PATCH  /v3/users/{{user_id}}                                     admin   body=user_update
DELETE /v3/users/{{user_id}}                                     admin
POST   /v3/users/{{user_id}}/password                            self    keep=user_id body=password
GET    /v3/users/{{user_id}}/projects                            self
GET    /v3/users/{{user_id}}/groups                              self
POST   /v3/users/{{user_id}}/credentials/OS-EC2                  self    keep=user_id body=ec2
GET    /v3/users/{{user_id}}/credentials/OS-EC2                  self
GET    /v3/users/{{user_id}}/credentials/OS-EC2/{{access}}       self
DELETE /v3/users/{{user_id}}/credentials/OS-EC2/{{access}}       self    keep=user_id
POST   /v3/credentials                                           self    body=credential
GET    /v3/credentials                                           any
GET    /v3/credentials                                           any     query=user_id={{user_id}}
GET    /v3/credentials/{{credential_id}}                         self
PATCH  /v3/credentials/{{credential_id}}                         self    body=credential_update
DELETE /v3/credentials/{{credential_id}}                         self
POST   /v3/OS-TRUST/trusts                                       selfonly body=trust
GET    /v3/OS-TRUST/trusts                                       admin
GET    /v3/OS-TRUST/trusts                                       self    query=trustor_user_id={{user_id}}
GET    /v3/OS-TRUST/trusts/{{trust_id}}                          self
DELETE /v3/OS-TRUST/trusts/{{trust_id}}                          self
GET    /v3/OS-TRUST/trusts/{{trust_id}}/roles                    self
GET    /v3/OS-TRUST/trusts/{{trust_id}}/roles/{{role_id}}        self    role_id=member_role
HEAD   /v3/OS-TRUST/trusts/{{trust_id}}/roles/{{role_id}}        self    role_id=member_role
POST   /v3/groups                                                admin   body=group
GET    /v3/groups                                                admin
GET    /v3/groups/{{group_id}}                                   admin
PATCH  /v3/groups/{{group_id}}                                   admin   body=group_update
DELETE /v3/groups/{{group_id}}                                   admin
GET    /v3/groups/{{group_id}}/users                             admin
PUT    /v3/groups/{{group_id}}/users/{{user_id}}                 admin
HEAD   /v3/groups/{{group_id}}/users/{{user_id}}                 admin
DELETE /v3/groups/{{group_id}}/users/{{user_id}}                 admin
POST   /v3/roles                                                 admin   body=role
GET    /v3/roles                                                 admin
GET    /v3/roles/{{role_id}}                                     admin
PATCH  /v3/roles/{{role_id}}                                     admin   body=role_update
DELETE /v3/roles/{{role_id}}                                     admin
GET    /v3/roles/{{prior_id}}/implies                            admin
PUT    /v3/roles/{{prior_id}}/implies/{{implied_id}}             admin
GET    /v3/roles/{{prior_id}}/implies/{{implied_id}}             admin
HEAD   /v3/roles/{{prior_id}}/implies/{{implied_id}}             admin
DELETE /v3/roles/{{prior_id}}/implies/{{implied_id}}             admin
GET    /v3/role_inferences                                       admin
PUT    /v3/system/{{actor_kind}}/{{actor_id}}/roles/{{role_id}}  admin   keep=actor_kind
GET    /v3/system/{{actor_kind}}/{{actor_id}}/roles/{{role_id}}  admin
HEAD   /v3/system/{{actor_kind}}/{{actor_id}}/roles/{{role_id}}  admin
DELETE /v3/system/{{actor_kind}}/{{actor_id}}/roles/{{role_id}}  admin   keep=actor_kind
GET    /v3/system/{{actor_kind}}/{{actor_id}}/roles              admin
PUT    /v3/{{target_kind}}/{{target_id}}/{{actor_kind}}/{{actor_id}}/roles/{{role_id}} admin keep=target_kind,actor_kind
HEAD   /v3/{{target_kind}}/{{target_id}}/{{actor_kind}}/{{actor_id}}/roles/{{role_id}} admin
DELETE /v3/{{target_kind}}/{{target_id}}/{{actor_kind}}/{{actor_id}}/roles/{{role_id}} admin keep=target_kind,actor_kind
PUT    {INH}/{{role_id}}/inherited_to_projects admin {KINDS}
HEAD   {INH}/{{role_id}}/inherited_to_projects admin
DELETE {INH}/{{role_id}}/inherited_to_projects admin {KINDS}
GET    {INH}/inherited_to_projects admin
GET    /v3/{{target_kind}}/{{target_id}}/{{actor_kind}}/{{actor_id}}/roles admin
GET    /v3/role_assignments                                      admin
POST   /v3/regions                                               admin   body=region
GET    /v3/regions                                               any
GET    /v3/regions/{{region_id}}                                 any
PUT    /v3/regions/{{region_id}}                                 admin   body=region
PATCH  /v3/regions/{{region_id}}                                 admin   body=region_update
DELETE /v3/regions/{{region_id}}                                 admin
POST   /v3/services                                              admin   body=service
GET    /v3/services                                              admin
GET    /v3/services/{{service_id}}                               admin
PATCH  /v3/services/{{service_id}}                               admin   body=service_update
DELETE /v3/services/{{service_id}}                               admin
POST   /v3/endpoints                                             admin   body=endpoint
GET    /v3/endpoints                                             admin
GET    /v3/endpoints/{{endpoint_id}}                             admin
PATCH  /v3/endpoints/{{endpoint_id}}                             admin   body=endpoint_update
DELETE /v3/endpoints/{{endpoint_id}}                             admin
POST   /v3/users/{{user_id}}/application_credentials             selfonly keep=user_id body=app_cred
GET    /v3/users/{{user_id}}/application_credentials             self
GET    /v3/users/{{user_id}}/application_credentials/{{cred_id}} self
DELETE /v3/users/{{user_id}}/application_credentials/{{cred_id}} self    keep=user_id
GET    /v3/users/{{user_id}}/access_rules                        selfsys
GET    /v3/users/{{user_id}}/access_rules/{{rule_id}}            selfsys
DELETE /v3/users/{{user_id}}/access_rules/{{rule_id}}            selfsys keep=user_id
POST   /v3/policies                                              admin   body=policy
GET    /v3/policies                                              admin
GET    /v3/policies/{{policy_id}}                                admin
PATCH  /v3/policies/{{policy_id}}                                admin   body=policy
DELETE /v3/policies/{{policy_id}}                                admin
POST   /v3/OS-OAUTH1/consumers                                   admin   body=consumer
GET    /v3/OS-OAUTH1/consumers                                   admin
GET    /v3/OS-OAUTH1/consumers/{{consumer_id}}                   admin
PATCH  /v3/OS-OAUTH1/consumers/{{consumer_id}}                   admin   body=consumer_update
DELETE /v3/OS-OAUTH1/consumers/{{consumer_id}}                   admin
POST   /v3/OS-EP-FILTER/endpoint_groups                          admin   body=endpoint_group
GET    /v3/OS-EP-FILTER/endpoint_groups                          admin
GET    /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}             admin   {EPG}
HEAD   /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}             admin   {EPG}
PATCH  /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}             admin   {EPG} body=endpoint_group
DELETE /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}             admin   {EPG}
GET    /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/endpoints   admin   {EPG}
GET    /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/projects    admin   {EPG}
PUT    /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/projects/{{project_id}} admin {EPG}
GET    /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/projects/{{project_id}} admin {EPG}
HEAD   /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/projects/{{project_id}} admin {EPG}
DELETE /v3/OS-EP-FILTER/endpoint_groups/{{group_id}}/projects/{{project_id}} admin {EPG}
GET    /v3/OS-EP-FILTER/projects/{{project_id}}/endpoints        admin
PUT    /v3/OS-EP-FILTER/projects/{{project_id}}/endpoints/{{endpoint_id}} admin
HEAD   /v3/OS-EP-FILTER/projects/{{project_id}}/endpoints/{{endpoint_id}} admin
DELETE /v3/OS-EP-FILTER/projects/{{project_id}}/endpoints/{{endpoint_id}} admin
GET    /v3/OS-EP-FILTER/projects/{{project_id}}/endpoint_groups  admin
GET    /v3/OS-EP-FILTER/endpoints/{{endpoint_id}}/projects       admin
"""

TABLES = {"compute": COMPUTE, "network": NETWORK, "volume": VOLUME, "image": IMAGE, "identity": IDENTITY}

"""`[distributed]`: the engines `up --distributed` deploys on and how many copies of each process it runs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DistributedSettings(BaseModel):
    """`pocketstack up --distributed`: the engines it deploys on and how many copies of each process it runs."""

    database_server_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"  # creates a database per service
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"  # its own vhost is created (rabbitmqctl) on this broker
    cache_url: str | None = "redis://127.0.0.1:6379/0"  # the shared token cache; None: one cache per process
    name: str | None = None  # prefix of the vhost and database names; default: derived from the data dir
    conductors: int = Field(1, ge=1, description="conductor processes")
    schedulers: int = Field(1, ge=1, description="scheduler processes")
    hosts_per_process: int = Field(1, ge=1, description="fake compute hosts per `serve compute` process")
    # compute hosts in network namespaces (qemu driver): each runs its compute agent and its network agent inside
    # a namespace of its own, with its own address on the management bridge, as separate machines would
    namespace_hosts: int = Field(0, ge=0, description="compute hosts, each in a network namespace of its own; 0: "
                                 "the compute agents run on this machine")
    management_cidr: str = Field("10.250.0.0/24", description="the management network of the namespaced hosts: "
                                 "this machine (the controller) is its first address, host i its (10+i)th")
    management_bridge: str = Field("br-mgmt", max_length=11, description="the management network's bridge here")
    restart_delay: float = Field(1.0, ge=0, description="seconds before a process that died is started again")
    db_pool_size: int = Field(4, ge=1, description="connections each `serve` process keeps per database")
    db_max_overflow: int = Field(6, ge=0, description="connections it may open beyond them under load")

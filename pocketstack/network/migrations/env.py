from pocketstack.common.db import run_alembic_env
from pocketstack.network.models import Base

run_alembic_env(Base.metadata)

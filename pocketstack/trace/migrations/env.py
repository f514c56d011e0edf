from pocketstack.common.db import run_alembic_env
from pocketstack.trace.models import Base

run_alembic_env(Base.metadata)

from pocketstack.common.db import run_alembic_env
from pocketstack.volume.models import Base

run_alembic_env(Base.metadata)

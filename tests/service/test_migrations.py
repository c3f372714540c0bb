"""The Alembic migrations produce exactly the tables the models describe (both backends)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.db import migrate
from service.db.models import Base


def test_migrated_schema_matches_the_models(backend) -> None:  # noqa: ANN001
    engine = create_engine(backend.db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            tables = set(inspect(conn).get_table_names())
        assert {"jobs", "job_tags", "metrics", "artifacts", "alembic_version"} <= tables
        pk = inspect(engine).get_pk_constraint("metrics")["constrained_columns"]
        assert pk == ["job_id", "key", "step"]
    finally:
        engine.dispose()
    assert migrate.current_revision(backend.db_url) == migrate.head_revision(backend.db_url)

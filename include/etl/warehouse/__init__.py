"""The PostgreSQL warehouse: migrations, SQL steps, quality checks and the ``tools`` logs."""

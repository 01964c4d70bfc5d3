"""The operator console in Airflow's UI: the FastAPI app of ``include/etl/console`` served
by the api-server under ``/console``, and an entry in the UI's navigation that shows it."""

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from include.etl.console.app import app


class EtlConsolePlugin(AirflowPlugin):
    name = "etl_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": "/console", "name": "ETL operator console"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "ETL console",
            "href": "/console/",
            "destination": "nav",
            "category": "browse",
            "url_route": "etl-console",
        }
    ]

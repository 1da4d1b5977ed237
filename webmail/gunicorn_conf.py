"""gunicorn's settings for Facteur's web process, in one place.

docker-compose.yml, the Dockerfile and the production smoke test all run
``gunicorn -c python:webmail.gunicorn_conf webmail.wsgi``. Threaded workers: a
page mostly waits on the IMAP server, so threads serve other people meanwhile.
"""

import os
from typing import Any

from prometheus_client import multiprocess

bind = os.environ.get("FACTEUR_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("FACTEUR_WEB_WORKERS", "2"))
threads = int(os.environ.get("FACTEUR_WEB_THREADS", "8"))
# A worker whose request runs longer than this is killed and replaced, so that one
# stuck request cannot hold a process forever; on a stop or a reload, requests
# under way get graceful_timeout seconds to finish.
timeout = int(os.environ.get("FACTEUR_WEB_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("FACTEUR_WEB_GRACEFUL_TIMEOUT", "30"))
# Connections the proxy keeps open between two requests.
keepalive = 5

accesslog = "-"
# The path without its query string, and no Referer: a search's words are in the
# query string, and they are the person's business.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'


def child_exit(server: Any, worker: Any) -> None:
    """A web process that exits takes its live gauges (IMAP connections) with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


# With FACTEUR_LOG_FORMAT=json, gunicorn's own lines are JSON like the app's.
if os.environ.get("FACTEUR_LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "ops.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }

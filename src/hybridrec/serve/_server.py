"""Running the app under uvicorn (``hybridrec serve``): logging, workers, the admin token."""

import copy
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config

from hybridrec import artifacts
from hybridrec._errors import HybridrecError
from hybridrec.serve._app import CONFIG_ENV, create_app


def run_server(
    models_root: str | Path,
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    admin_token_env: str | None = None,
    watch_interval: float | None = None,
    timeout: float = 10.0,
    max_n: int = 1000,
    max_pairs: int = 10_000,
    access_log: bool = True,
    quiet: bool = False,
    echo: Callable[[str], Any] | None = None,
) -> None:
    """Serve model ``name`` of ``models_root`` until SIGTERM or Ctrl-C (then the requests in
    flight finish). ``admin_token_env`` names the environment variable holding the admin token
    (it is never put in argv or the workers' configuration); ``quiet`` logs warnings only;
    ``echo`` receives the one-line start-up summary. The address is checked before anything
    is loaded, and the model (one worker) or its metadata (several) before serving starts."""
    from hybridrec.models import model_dir

    token = None
    if admin_token_env is not None:
        token = os.environ.get(admin_token_env)
        if not token:
            raise HybridrecError(
                f"environment variable {admin_token_env} is not set or empty: "
                "it must hold the admin token"
            )
    path = model_dir(models_root, name)
    options: dict[str, Any] = {
        "name": name,
        "max_n": max_n,
        "max_pairs": max_pairs,
        "timeout": timeout,
        "watch_interval": watch_interval,
    }
    run_options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": _log_config(quiet, access_log),
        "log_level": "warning" if quiet else "info",
        "access_log": False,  # ours is the JSON one
        "server_header": False,
        "timeout_graceful_shutdown": int(timeout) + 5,
    }
    _check_listen(host, port)
    if workers == 1:
        app = create_app(path, admin_token=token, **options)
        if echo is not None and not quiet:
            served = app.state.holder.current
            echo(f"serving {served.kind} model {name!r}, version {served.version}")
        uvicorn.run(app, **run_options)
        return
    meta = artifacts.read_meta(path)  # fail here, not in every worker
    if echo is not None and not quiet:
        echo(f"serving {meta.get('kind')} model {name!r} with {workers} workers")
    # Workers are new processes: they rebuild the app from this configuration (and read the
    # token from the same environment variable, so it never appears in argv or the config).
    os.environ[CONFIG_ENV] = json.dumps(
        {**options, "model_path": str(path), "admin_token_env": admin_token_env}
    )
    uvicorn.run("hybridrec.serve:app_from_env", factory=True, workers=workers, **run_options)


def _log_config(quiet: bool, access_log: bool) -> dict[str, Any]:
    """uvicorn's logging configuration plus ours; uvicorn applies it in every worker."""
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["formatters"]["json_line"] = {"format": "%(message)s"}
    log_config["handlers"]["json_line"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_line",
        "stream": "ext://sys.stdout",
    }
    log_config["loggers"]["hybridrec.serve"] = {
        "handlers": ["default"],
        "level": "WARNING" if quiet else "INFO",
        "propagate": False,
    }
    log_config["loggers"]["hybridrec.serve.access"] = {
        "handlers": ["json_line"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    return log_config


def _check_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once before starting the server, so a port in use or an unknown host
    is one line naming them (uvicorn would log several and exit with code 3)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:  # socket.gaierror is an OSError too
        raise HybridrecError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

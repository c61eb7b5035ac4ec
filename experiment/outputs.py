"""Where a run writes, checked before anything is written: the database URL, the MLflow
tracking URI and the results folder (``base_dir``).

The store speaks SQLite and PostgreSQL only (experiment/store/sql.py prepares its statements
for these two dialects); MLflow is mirrored into a SQLite file, a PostgreSQL database or a
tracking server (``http(s)://``); MLflow 3 refuses a plain file store. SQLAlchemy is imported
only when a URL is checked.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from settings.errors import ConfigError, ConfigIssue
from settings.experiment_files import ExperimentSettings

DB_DIALECTS = ("sqlite", "postgresql")
DB_EXAMPLES = "sqlite:///path/to/file.db or postgresql://user@host/name"
PIP_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'"}  # driver -> what pip installs
MLFLOW_EXAMPLES = "sqlite:///path/to/mlflow.db, postgresql://user@host/name or http(s)://host:port"


def db_url_problem(url: str, writes: bool = False) -> str | None:
    """Why the store cannot use ``url`` (None when it can): unparsable, another dialect, a driver
    that is not installed, or (``writes``) a SQLite file that cannot be created or written."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"is not a database URL, got {url!r}; allowed: {DB_EXAMPLES}"
    backend = parsed.get_backend_name()
    if backend not in DB_DIALECTS:
        return f"is a {backend} database, which the store does not support, got {url!r}; allowed: {DB_EXAMPLES}"
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return f"names a driver SQLAlchemy does not know, got {url!r}; allowed: {DB_EXAMPLES}"
    try:
        dialect.import_dbapi()
    except ImportError:
        package = PIP_PACKAGES.get(dialect.driver, dialect.driver)
        return (f"needs the Python driver {dialect.driver}, which is not installed, got {url!r}; install it "
                f"(pip install {package}) or use sqlite:///path/to/file.db")
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return sqlite_file_problem(Path(parsed.database), url, writes)
    return None


def sqlite_file_problem(path: Path, url: str, writes: bool) -> str | None:
    """A SQLite file must not be a folder; one that is written must be creatable and writable."""
    if path.is_dir():
        return f"names a folder, not a database file, got {url!r}; name a file, such as sqlite:///{path / 'x.db'}"
    if not writes:
        return None
    if path.exists():
        if os.access(path, os.W_OK):
            return None
        return f"names a file that is not writable, got {url!r}; allowed: a file this user may write"
    problem = folder_problem(path.parent)
    if problem is None:
        return None
    return f"cannot be created: {problem}, got {url!r}; allowed: a file in a writable folder"


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be created (with its parents) or written to (None when it can)."""
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable"
    return None


def mlflow_uri_problem(uri: str) -> str | None:
    """Why the MLflow mirror cannot use ``uri`` (None when it can)."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        return None if urlsplit(uri).netloc else f"names no host, got {uri!r}; allowed: {MLFLOW_EXAMPLES}"
    if scheme.split("+", 1)[0] in DB_DIALECTS:
        problem = db_url_problem(uri, writes=True)
        return None if problem is None else problem.replace(DB_EXAMPLES, MLFLOW_EXAMPLES)
    shown = f"a {scheme}:// URI" if scheme else "a plain path"
    return f"is {shown}, which the MLflow mirror does not support, got {uri!r}; allowed: {MLFLOW_EXAMPLES}"


def check_db_url(url: str | None, where: str = "--db", path: str = "", writes: bool = False) -> None:
    """Raise ConfigError unless the store can open ``url`` (None: nothing to check)."""
    if url is not None and (problem := db_url_problem(url, writes)):
        raise ConfigError(ConfigIssue(path, problem, where))


def check_outputs(settings: ExperimentSettings, db_url: str | None = None, mlflow: bool | None = None) -> None:
    """Every problem with where a run of ``settings`` would write, at once: ``base_dir``, the
    database (``db_url``, a --db value, else experiment.yaml's), the MLflow URI when the mirror
    is on (``mlflow``: None follows experiment.yaml)."""
    issues = []
    if problem := folder_problem(Path(settings.base_dir)):
        issues.append(ConfigIssue("base_dir", f"cannot hold the results: {problem}, got {settings.base_dir!r}; "
                                              "allowed: a folder this user may write", "experiment.yaml"))
    url = db_url or settings.db_url
    if problem := db_url_problem(url, writes=True):
        where, path = ("--db", "") if db_url else ("experiment.yaml", "db" if settings.db else "base_dir")
        if settings.db or db_url or not issues:
            issues.append(ConfigIssue(path, problem, where))
    if settings.mlflow.enabled if mlflow is None else mlflow:
        uri = settings.mlflow_uri
        problem = mlflow_uri_problem(uri)
        if problem is None and _same_sqlite_file(uri, url):
            problem = (f"is the experiment database, got {uri!r}; give MLflow a file of its own, such as "
                       f"sqlite:///{Path(settings.base_dir) / 'mlflow.db'}")
        if problem and (settings.mlflow.tracking_uri or not issues):
            issues.append(ConfigIssue("mlflow.tracking_uri" if settings.mlflow.tracking_uri else "base_dir", problem,
                                      "experiment.yaml"))
    if issues:
        raise ConfigError(issues)


def _same_sqlite_file(a: str, b: str) -> bool:
    files = []
    for url in (a, b):
        if not url.startswith("sqlite:///"):
            return False
        files.append(os.path.abspath(url[len("sqlite:///"):].split("?", 1)[0]))
    return files[0] == files[1]

"""A JDBC-style source and sink on real SQLite files, with Confluent's config names and defaults.

``connection.url`` is ``jdbc:sqlite:<path>`` (as with Confluent's SQLite dialect). The sink
writes struct values to ``table.name.format`` (``${topic}``) with ``insert.mode``
insert / upsert (``INSERT OR REPLACE``) / update, keys from ``pk.mode`` none / kafka /
record_key / record_value, ``auto.create``, ``delete.enabled`` (a null value deletes the row),
in one transaction per ``put``. The source reads tables in ``mode`` bulk / incrementing /
timestamp / timestamp+incrementing, at most ``batch.max.rows`` per poll, every
``poll.interval.ms``, into ``topic.prefix`` + table.

Simplification: timestamp columns hold epoch milliseconds (INTEGER), and the upper bound
"now - ``timestamp.delay.interval.ms``" uses the worker's simulated clock only when the delay
is above 0.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sim.connect.api import SinkConnector, SinkTask, SourceConnector, SourceTask, Task
from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least, one_of
from sim.connect.data import Schema, struct_schema
from sim.connect.errors import ConnectError, RetriableError
from sim.connect.records import SinkRecord, SourceRecord
from sim.errors import ConfigError

SQLITE_TYPES = {"int8": "INTEGER", "int16": "INTEGER", "int32": "INTEGER", "int64": "INTEGER",
                "float32": "REAL", "float64": "REAL", "boolean": "INTEGER", "string": "TEXT",
                "bytes": "BLOB"}
KAFKA_PK = ("__connect_topic", "__connect_partition", "__connect_offset")


def sqlite_path(url: str) -> str:
    """The file of ``jdbc:sqlite:<path>``."""
    if not url.startswith("jdbc:sqlite:"):
        raise ConfigError(f"Invalid value {url} for configuration connection.url: the lab "
                          "speaks SQLite only, e.g. jdbc:sqlite:/tmp/lab.db")
    return url.removeprefix("jdbc:sqlite:")


def quote(name: str) -> str:
    """An identifier quoted as ``SqliteDatabaseDialect`` does (backticks)."""
    return "`" + name.replace("`", "``") + "`"


# -- the sink -------------------------------------------------------------------------------


def sink_config_def() -> ConfigDef:
    return (ConfigDef()
            .define("connection.url", "STRING", NO_DEFAULT, "HIGH", "JDBC connection URL.",
                    group="Connection")
            .define("insert.mode", "STRING", "insert", "HIGH", "The insertion mode to use.",
                    validator=one_of("insert", "upsert", "update"), group="Writes")
            .define("batch.size", "INT", 3000, "MEDIUM", "Specifies how many records to "
                    "attempt to batch together for insertion into the destination table.",
                    validator=at_least(0), group="Writes")
            .define("delete.enabled", "BOOLEAN", False, "MEDIUM", "Whether to treat null "
                    "record values as deletes. Requires pk.mode to be record_key.",
                    group="Writes")
            .define("table.name.format", "STRING", "${topic}", "MEDIUM", "A format string for "
                    "the destination table name.", group="Data Mapping")
            .define("pk.mode", "STRING", "none", "HIGH", "The primary key mode.",
                    validator=one_of("none", "kafka", "record_key", "record_value"),
                    group="Data Mapping")
            .define("pk.fields", "LIST", "", "MEDIUM", "List of comma-separated primary key "
                    "field names.", group="Data Mapping")
            .define("fields.whitelist", "LIST", "", "MEDIUM", "List of comma-separated record "
                    "value field names. If empty, all fields from the record value are used.",
                    group="Data Mapping")
            .define("auto.create", "BOOLEAN", False, "MEDIUM", "Whether to automatically "
                    "create the destination table based on record schema.", group="DDL Support")
            .define("auto.evolve", "BOOLEAN", False, "MEDIUM", "Whether to automatically add "
                    "columns in the table schema when found to be missing.", group="DDL Support")
            .define("max.retries", "INT", 10, "MEDIUM", "The maximum number of times to retry "
                    "on errors before failing the task.", validator=at_least(0), group="Retries")
            .define("retry.backoff.ms", "INT", 3000, "MEDIUM", "The time in milliseconds to "
                    "wait following an error before a retry attempt is made.",
                    validator=at_least(0), group="Retries"))


class JdbcSinkConnector(SinkConnector):
    """Writes records to SQLite tables."""

    class_name = "io.confluent.connect.jdbc.JdbcSinkConnector"

    def config_def(self) -> ConfigDef:
        return sink_config_def()

    def start(self, props: dict[str, str]) -> None:
        self.props = dict(props)
        _sink_config(props)

    def validate(self, props: dict[str, str]) -> dict[str, Any]:
        """The config def's checks plus the key rules of ``JdbcSinkConfig``."""
        values = super().validate(props)
        mode, delete = values["pk.mode"].value, values["delete.enabled"].value
        if delete and mode != "record_key":
            values["delete.enabled"].errors.append(
                "Primary key mode must be 'record_key' when delete support is enabled")
        if values["insert.mode"].value in ("upsert", "update") and mode == "none":
            values["pk.mode"].errors.append(
                f"Primary key mode must be set for insert.mode={values['insert.mode'].value}: "
                "pk.mode=none gives no key columns")
        return values

    def task_class(self) -> type[Task]:
        return JdbcSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.props) for _ in range(max_tasks)]


def _sink_config(props: dict[str, Any]) -> dict[str, Any]:
    config = sink_config_def().parse(props)
    sqlite_path(config["connection.url"])
    if config["delete.enabled"] and config["pk.mode"] != "record_key":
        raise ConfigError("Primary key mode must be 'record_key' when delete support is enabled")
    if config["insert.mode"] in ("upsert", "update") and config["pk.mode"] == "none":
        raise ConfigError(f"Primary key mode must be set for insert.mode="
                          f"{config['insert.mode']}: pk.mode=none gives no key columns")
    return config


class JdbcSinkTask(SinkTask):
    """Buffers records per table and writes them in one transaction per ``put``."""

    def start(self, props: dict[str, str]) -> None:
        self.config = _sink_config(props)
        self.connection_name = props.get("name", "")
        # the REST thread starts tasks and the simulation runs them, never at once (the lock);
        # timeout=0: a locked database is an error at once (retried on the simulated clock),
        # not a wall-clock wait
        self.db = sqlite3.connect(sqlite_path(self.config["connection.url"]),
                                  check_same_thread=False, timeout=0)
        self.remaining_retries = self.config["max.retries"]

    def stop(self) -> None:
        self.db.close()

    def put(self, records: list[SinkRecord]) -> None:
        if not records:
            return
        try:
            with self.db:  # one transaction: commit on success, roll back on error
                batch = self.config["batch.size"] or len(records)
                for start in range(0, len(records), batch):
                    for record in records[start:start + batch]:
                        self._write(record)
        except sqlite3.Error as exc:
            if self.remaining_retries <= 0:
                raise ConnectError(f"Exception chain: {exc}") from exc
            self.remaining_retries -= 1
            if self.context is not None:
                self.context.timeout(self.config["retry.backoff.ms"])
            raise RetriableError(f"{exc}") from exc
        self.remaining_retries = self.config["max.retries"]

    def _write(self, record: SinkRecord) -> None:
        table = self.config["table.name.format"].replace("${topic}", record.topic)
        pk_columns, pk_values = self._key(record)
        if record.value is None:
            if not self.config["delete.enabled"]:
                raise ConnectError(self._needs_struct(record))
            self.db.execute(f"DELETE FROM {quote(table)} WHERE "
                            + " AND ".join(f"{quote(c)} = ?" for c in pk_columns), pk_values)
            return
        schema = record.value_schema
        if schema is None or schema.type != "struct" or not isinstance(record.value, dict):
            raise ConnectError(self._needs_struct(record))
        allowed = self.config["fields.whitelist"]
        fields = [f for f in schema.fields if (not allowed or f.name in allowed)
                  and f.name not in pk_columns]
        columns = [*pk_columns, *(f.name for f in fields)]
        values = [*pk_values, *(_sql_value(record.value.get(f.name)) for f in fields)]
        self._ensure_table(table, record, pk_columns, fields)
        marks = ",".join("?" * len(columns))
        names = ",".join(quote(c) for c in columns)
        mode = self.config["insert.mode"]
        if mode == "insert":
            self.db.execute(f"INSERT INTO {quote(table)}({names}) VALUES({marks})", values)
        elif mode == "upsert":
            self.db.execute(f"INSERT OR REPLACE INTO {quote(table)}({names}) VALUES({marks})",
                            values)
        else:
            sets = ",".join(f"{quote(f.name)} = ?" for f in fields)
            where = " AND ".join(f"{quote(c)} = ?" for c in pk_columns)
            self.db.execute(f"UPDATE {quote(table)} SET {sets} WHERE {where}",
                            values[len(pk_columns):] + values[:len(pk_columns)])

    def _needs_struct(self, record: SinkRecord) -> str:
        kind = "null" if record.value is None else (
            "Struct" if record.value_schema is not None else type(record.value).__name__)
        return (f"Sink connector '{self.connection_name}' is configured with "
                f"'delete.enabled={str(self.config['delete.enabled']).lower()}' and "
                f"'pk.mode={self.config['pk.mode']}' and therefore requires records with a "
                "non-null Struct value and non-null Struct schema, but found record at "
                f"(topic='{record.topic}',partition={record.kafka_partition},"
                f"offset={record.kafka_offset},timestamp={record.timestamp}) with a {kind} "
                f"value and {'null' if record.value_schema is None else 'a'} value schema.")

    def _key(self, record: SinkRecord) -> tuple[list[str], list[Any]]:
        """The primary-key columns and values (``FieldsMetadata.extract``)."""
        mode, fields = self.config["pk.mode"], self.config["pk.fields"]
        if mode == "none":
            return [], []
        if mode == "kafka":
            names = fields or list(KAFKA_PK)
            if len(names) != 3:
                raise ConnectError("PK mode for table is kafka with configured PK fields "
                                   f"{names}, but there must be exactly 3 fields")
            return names, [record.topic, record.kafka_partition, record.kafka_offset]
        if mode == "record_key":
            schema, value = record.key_schema, record.key
            if value is None:
                raise ConnectError("PK mode for table is RECORD_KEY, but record key is null")
            if not isinstance(value, dict):
                if len(fields) != 1:
                    raise ConnectError("Need exactly one PK column defined since the key schema "
                                       f"for records is a primitive type, defined columns are: "
                                       f"{fields}")
                return [fields[0]], [_sql_value(value)]
        else:
            schema, value = record.value_schema, record.value
            if not isinstance(value, dict):
                raise ConnectError(self._needs_struct(record))
        names = fields or ([f.name for f in schema.fields] if schema is not None
                           else sorted(value))
        missing = [n for n in names if n not in value]
        if missing:
            raise ConnectError(f"PK mode for table is {mode.upper()} with configured PK fields "
                               f"{names}, but record is missing fields {missing}")
        return list(names), [_sql_value(value[n]) for n in names]

    def _ensure_table(self, table: str, record: SinkRecord, pk: list[str],
                      fields: list[Any]) -> None:
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (table,)).fetchone()
        if exists:
            return
        if not self.config["auto.create"]:
            raise ConnectError(f"Table \"{table}\" is missing and auto-creation is disabled")
        columns = []
        for name in pk:
            source = record.key_schema if self.config["pk.mode"] == "record_key" else (
                record.value_schema)
            field = source.field(name) if source is not None and source.fields else None
            kind = field.schema.type if field else (
                source.type if source is not None and source.type in SQLITE_TYPES else "string")
            if self.config["pk.mode"] == "kafka":
                kind = "string" if name == pk[0] else "int64"
            columns.append(f"{quote(name)} {SQLITE_TYPES.get(kind, 'TEXT')} NOT NULL")
        for f in fields:
            null = "NULL" if f.schema.optional else "NOT NULL"
            columns.append(f"{quote(f.name)} {SQLITE_TYPES.get(f.schema.type, 'NUMERIC')} {null}")
        if pk:
            columns.append(f"PRIMARY KEY({','.join(quote(c) for c in pk)})")
        self.db.execute(f"CREATE TABLE {quote(table)} (\n" + ",\n".join(columns) + ")")


def _sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


# -- the source -----------------------------------------------------------------------------

MODES = ("bulk", "incrementing", "timestamp", "timestamp+incrementing")


def source_config_def() -> ConfigDef:
    return (ConfigDef()
            .define("connection.url", "STRING", NO_DEFAULT, "HIGH", "JDBC connection URL.",
                    group="Database")
            .define("table.whitelist", "LIST", "", "MEDIUM", "List of tables to include in "
                    "copying. If empty, every table.", group="Database")
            .define("mode", "STRING", "", "HIGH", "The mode for updating a table each time it "
                    "is polled.", validator=one_of("", *MODES), group="Mode")
            .define("incrementing.column.name", "STRING", "", "MEDIUM", "The name of the "
                    "strictly incrementing column to use to detect new rows.", group="Mode")
            .define("timestamp.column.name", "LIST", "", "MEDIUM", "Comma separated list of one "
                    "or more timestamp columns to detect new or modified rows using the "
                    "COALESCE SQL function.", group="Mode")
            .define("timestamp.delay.interval.ms", "LONG", 0, "HIGH", "How long to wait after a "
                    "row with certain timestamp appears before we include it in the result.",
                    validator=at_least(0), group="Mode")
            .define("poll.interval.ms", "INT", 5000, "HIGH", "Frequency in ms to poll for new "
                    "data in each table.", validator=at_least(1), group="Connector")
            .define("batch.max.rows", "INT", 100, "LOW", "Maximum number of rows to include in "
                    "a single batch when polling for new data.", validator=at_least(1),
                    group="Connector")
            .define("topic.prefix", "STRING", NO_DEFAULT, "HIGH", "Prefix to prepend to table "
                    "names to generate the name of the Kafka topic to publish data to.",
                    group="Connector"))


def _source_config(props: dict[str, Any]) -> dict[str, Any]:
    config = source_config_def().parse(props)
    sqlite_path(config["connection.url"])
    mode = config["mode"]
    if not mode:
        raise ConfigError("Invalid value  for configuration mode: choose one of "
                          + ", ".join(MODES))
    if "incrementing" in mode and not config["incrementing.column.name"]:
        raise ConfigError(f"Mode {mode} needs incrementing.column.name.")
    if "timestamp" in mode and not config["timestamp.column.name"]:
        raise ConfigError(f"Mode {mode} needs timestamp.column.name.")
    return config


class JdbcSourceConnector(SourceConnector):
    """Copies SQLite tables into topics, one table per task at most."""

    class_name = "io.confluent.connect.jdbc.JdbcSourceConnector"

    def config_def(self) -> ConfigDef:
        return source_config_def()

    def start(self, props: dict[str, str]) -> None:
        self.props = dict(props)
        self.config = _source_config(props)

    def tables(self) -> list[str]:
        with sqlite3.connect(sqlite_path(self.config["connection.url"])) as db:
            names = [row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name")]
        wanted = self.config["table.whitelist"]
        return [n for n in names if n in wanted] if wanted else names

    def task_class(self) -> type[Task]:
        return JdbcSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        """Tables over ``min(max_tasks, tables)`` tasks (``ConnectorUtils.groupPartitions``)."""
        tables = self.tables()
        if not tables:
            return []
        groups = min(max_tasks, len(tables))
        per, extra = divmod(len(tables), groups)
        out, start = [], 0
        for g in range(groups):
            size = per + (1 if g < extra else 0)
            out.append({**self.props, "tables": ",".join(tables[start:start + size])})
            start += size
        return out


class JdbcSourceTask(SourceTask):
    """Polls its tables in turn, each at most every ``poll.interval.ms``."""

    def start(self, props: dict[str, str]) -> None:
        self.config = _source_config(props)
        self.tables = [t for t in props.get("tables", "").split(",") if t]
        self.db = sqlite3.connect(sqlite_path(self.config["connection.url"]),
                                  check_same_thread=False)
        self.next_poll = dict.fromkeys(self.tables, 0.0)
        self.offsets: dict[str, dict[str, Any]] = {}
        self.bulk_rows: dict[str, list[Any]] = {}
        for table in self.tables:
            stored = self.context.offset({"table": table}) if self.context else None
            self.offsets[table] = dict(stored or {})

    def stop(self) -> None:
        self.db.close()

    def poll(self) -> list[SourceRecord] | None:
        now = self.context.time_ms() if self.context else 0.0
        due = [t for t in self.tables if self.next_poll[t] <= now]
        if not due:
            self.idle_ms = max(1.0, min(self.next_poll.values(), default=now + 1000) - now)
            return None
        table = min(due, key=lambda t: (self.next_poll[t], self.tables.index(t)))
        records, more = self._query(table, now)
        self.next_poll[table] = now if more else now + self.config["poll.interval.ms"]
        self.idle_ms = max(1.0, min(self.next_poll.values()) - now)
        return records or None

    def _schema(self, table: str) -> tuple[Schema, list[str]]:
        info = self.db.execute(f"PRAGMA table_info({quote(table)})").fetchall()
        kinds = {"INTEGER": "int64", "INT": "int64", "REAL": "float64", "TEXT": "string",
                 "BLOB": "bytes"}
        fields = [(row[1], Schema(kinds.get(str(row[2]).upper(), "string"), not row[3]))
                  for row in info]
        return struct_schema(table, fields), [row[1] for row in info]

    def _query(self, table: str, now: float) -> tuple[list[SourceRecord], bool]:
        mode, limit = self.config["mode"], self.config["batch.max.rows"]
        inc = self.config["incrementing.column.name"]
        ts_cols = self.config["timestamp.column.name"]
        ts = (f"COALESCE({','.join(quote(c) for c in ts_cols)})" if len(ts_cols) > 1
              else quote(ts_cols[0])) if ts_cols else ""
        offset = self.offsets[table]
        schema, columns = self._schema(table)
        where, args, order = [], [], ""
        if mode == "bulk":
            if table not in self.bulk_rows:
                self.bulk_rows[table] = self.db.execute(f"SELECT * FROM {quote(table)}").fetchall()
            rows = self.bulk_rows[table][:limit]
            self.bulk_rows[table] = self.bulk_rows[table][limit:]
            more = bool(self.bulk_rows[table])
            if not more:
                del self.bulk_rows[table]
            return [self._record(table, schema, columns, row, None) for row in rows], more
        delay = self.config["timestamp.delay.interval.ms"]
        if "timestamp" in mode and delay > 0:
            where.append(f"{ts} < ?")
            args.append(now - delay)
        if mode == "incrementing":
            where.append(f"{quote(inc)} > ?")
            args.append(offset.get("incrementing", -1))
            order = quote(inc)
        elif mode == "timestamp":
            where.append(f"{ts} > ?")
            args.append(offset.get("timestamp", -1))
            order = ts
        else:
            last_ts, last_inc = offset.get("timestamp", -1), offset.get("incrementing", -1)
            where.append(f"(({ts} = ? AND {quote(inc)} > ?) OR {ts} > ?)")
            args += [last_ts, last_inc, last_ts]
            order = f"{ts}, {quote(inc)}"
        sql = (f"SELECT * FROM {quote(table)} WHERE {' AND '.join(where)} ORDER BY {order} "
               f"LIMIT {limit}")
        rows = self.db.execute(sql, args).fetchall()
        records = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            if "incrementing" in mode:
                offset["incrementing"] = values[inc]
            if "timestamp" in mode:
                offset["timestamp"] = next((values[c] for c in ts_cols if values[c] is not None),
                                           None)
                offset["timestamp_nanos"] = 0
            records.append(self._record(table, schema, columns, row, dict(offset)))
        return records, len(rows) == limit

    def _record(self, table: str, schema: Schema, columns: list[str], row: Any,
                offset: dict[str, Any] | None) -> SourceRecord:
        return SourceRecord(self.config["topic.prefix"] + table, None, None, None, schema,
                            dict(zip(columns, row, strict=True)), None, (), {"table": table},
                            offset)

//! Configuration: one clap struct read from flags and `FLOWMATE_*` variables, validated into
//! typed backend choices at start.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::model::ProcessIdentity;
use std::net::SocketAddr;
use std::path::PathBuf;

/// FlowMate: an integration platform. Flows (graphs of component nodes) are started and
/// stopped through an event bus and run on webhooks or cron.
///
/// With no configuration at all, `flowmate` serves on 127.0.0.1:3000 with a SQLite file
/// `flowmate.db` in the working directory, the in-process event bus and the engine in the same
/// process, and creates a first admin (its generated password is printed once).
#[derive(Debug, Parser)]
#[command(name = "flowmate", version, about, long_about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the engine (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Run as a sandbox process: answer user-program jobs on standard input and output (the
    /// service starts these itself; see docs/security.md).
    #[command(hide = true)]
    Sandbox,
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who can log in. The password is read from FLOWMATE_NEW_USER_PASSWORD or,
    /// when unset, from the first line of standard input.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Comma-separated permissions (e.g. `flows.read,flows.write`; `all` for an admin).
        #[arg(long, value_delimiter = ',', default_value = "all")]
        permissions: Vec<String>,
        /// Tenant id the user belongs to (none by default).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Which process role to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// API and engine in one process.
    All,
    /// HTTP API, outbox relay and flows-side consumers only.
    Api,
    /// Engine only (orchestrator, executions, scheduler).
    Worker,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings (every flag also reads its `FLOWMATE_*` variable).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "FLOWMATE_LISTEN", default_value = "127.0.0.1:3000", global = true)]
    pub listen: SocketAddr,
    /// Storage: `sqlite://PATH` (default `sqlite://flowmate.db`) or `postgres://...`.
    #[arg(long, env = "FLOWMATE_DATABASE_URL", default_value = "sqlite://flowmate.db", global = true)]
    pub database_url: String,
    /// Kafka bootstrap servers (`host:port,...`); unset: the in-process event bus.
    #[arg(long, env = "FLOWMATE_KAFKA_BROKERS", global = true)]
    pub kafka_brokers: Option<String>,
    /// Process role: all, api or worker.
    #[arg(long, env = "FLOWMATE_ROLE", value_enum, default_value = "all", global = true)]
    pub role: Role,
    /// Username of the first admin, created at start when no user exists.
    #[arg(long, env = "FLOWMATE_ADMIN_USERNAME", default_value = "admin", global = true)]
    pub admin_username: String,
    /// Password of the first admin; unset: a generated one is printed once to the log.
    #[arg(long, env = "FLOWMATE_ADMIN_PASSWORD", hide_env_values = true, global = true)]
    pub admin_password: Option<String>,
    /// Let components call loopback, private and link-local addresses.
    #[arg(long, env = "FLOWMATE_ALLOW_PRIVATE_NETWORKS", default_value_t = false, global = true)]
    pub allow_private_networks: bool,
    /// Log filter (tracing env-filter syntax, e.g. `info,flow_engine=debug`).
    #[arg(long, env = "FLOWMATE_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format: text or json.
    #[arg(long, env = "FLOWMATE_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Bearer-token lifetime after its last use, in seconds.
    #[arg(long, env = "FLOWMATE_TOKEN_TTL_SECS", default_value_t = 10_800, global = true)]
    pub token_ttl_secs: u64,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "FLOWMATE_BODY_LIMIT_BYTES", default_value_t = 10 * 1024 * 1024, global = true)]
    pub body_limit_bytes: usize,
    /// Deepest nesting (objects and arrays) of a webhook body (JSON, XML as converted, form)
    /// and of a flow or template document; deeper is answered 400. At most 100, so that every
    /// accepted body is stored and read back inside its wrappers.
    #[arg(long, env = "FLOWMATE_MAX_BODY_DEPTH", default_value_t = flow_domain::limits::DEFAULT_MAX_DEPTH, global = true)]
    pub max_body_depth: usize,
    /// Most nodes in a flow (and in a template's graph); more is answered 400.
    #[arg(long, env = "FLOWMATE_MAX_NODES", default_value_t = flow_domain::limits::DEFAULT_MAX_NODES, global = true)]
    pub max_nodes: usize,
    /// Seconds a flow may stay `starting`/`stopping` before the watchdog re-publishes its event.
    #[arg(long, env = "FLOWMATE_WATCHDOG_DEADLINE_SECS", default_value_t = 60, global = true)]
    pub watchdog_deadline_secs: u64,
    /// Re-publications by the watchdog before a stuck flow is set `inactive` with the reason.
    #[arg(long, env = "FLOWMATE_WATCHDOG_MAX_ATTEMPTS", default_value_t = 3, global = true)]
    pub watchdog_max_attempts: u32,
    /// SQLite durability: `full` (fsync at every commit) or `normal` (WAL; survives process
    /// crashes, may lose the last commits on power loss).
    #[arg(long, env = "FLOWMATE_SQLITE_SYNCHRONOUS", value_enum, default_value = "full", global = true)]
    pub sqlite_synchronous: SqliteSync,
    /// Argon2id memory cost in KiB for password hashes (OWASP minimum: 19456).
    #[arg(long, env = "FLOWMATE_ARGON2_MEMORY_KIB", default_value_t = 19_456, global = true)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations for password hashes.
    #[arg(long, env = "FLOWMATE_ARGON2_ITERATIONS", default_value_t = 2, global = true)]
    pub argon2_iterations: u32,
    /// Seconds in-flight requests get to finish after SIGTERM / Ctrl-C.
    #[arg(long, env = "FLOWMATE_SHUTDOWN_GRACE_SECS", default_value_t = 20, global = true)]
    pub shutdown_grace_secs: u64,
    /// Executions run at the same time by this process, over all flows.
    #[arg(long, env = "FLOWMATE_MAX_CONCURRENT_EXECUTIONS", default_value_t = 64, global = true)]
    pub max_concurrent_executions: usize,
    /// Executions of one flow run at the same time by this process (half the global limit by
    /// default: one busy flow cannot take every slot, yet is not held to a few at a time).
    #[arg(long, env = "FLOWMATE_MAX_CONCURRENT_PER_FLOW", default_value_t = 32, global = true)]
    pub max_concurrent_per_flow: usize,
    /// Seconds a worker's lease on a running execution lasts without renewal; a worker that
    /// dies is detected this long after its last renewal.
    #[arg(long, env = "FLOWMATE_EXECUTION_LEASE_SECS", default_value_t = 30, global = true)]
    pub execution_lease_secs: u64,
    /// How long ended executions (with their steps) are kept after they finished: a whole
    /// number with a unit, `s`, `m`, `h` or `d` (e.g. `7d`, `12h`); `0` or `off` keeps them
    /// forever. The worker roles delete older ones every minute, oldest first.
    #[arg(long, env = "FLOWMATE_EXECUTION_RETENTION", default_value = crate::retention::Retention::DEFAULT, global = true)]
    pub execution_retention: crate::retention::Retention,
    /// Runs of one execution (each counted before it begins) before it is failed because the
    /// process running it died each time (killed, crashed, out of memory): an execution that
    /// kills its process is run at most this many times, never in a loop. At least 1.
    #[arg(long, env = "FLOWMATE_EXECUTION_MAX_ATTEMPTS", default_value = "3", global = true)]
    pub execution_max_attempts: AttemptLimit,
    /// This process's name in execution leases and outbox claims: the same across restarts of
    /// this process, different from every other process running at the same time. At start a
    /// process takes over at once what its earlier run left (running executions, outbox
    /// claims). Default: the host name and the listen address (a random name, so no takeover
    /// at start, when listening on port 0).
    #[arg(long, env = "FLOWMATE_WORKER_ID", global = true)]
    pub worker_id: Option<String>,
    /// Longest wall-clock time, in milliseconds, a step's user program (jq, Rhai) may ask for
    /// with `limits.timeMs` (the default is 1,000 ms); past it the program is stopped and its
    /// step fails.
    #[arg(long, env = "FLOWMATE_MAX_STEP_TIME_MS", default_value_t = 30_000, global = true)]
    pub max_step_time_ms: u64,
    /// Sandbox processes that run user programs which may run away (unbounded jq programs,
    /// every Rhai script), one job each at a time (default: two per core).
    #[arg(long, env = "FLOWMATE_SANDBOX_PROCESSES", global = true)]
    pub sandbox_processes: Option<usize>,
    /// Memory one sandbox process may allocate, in MiB (past it, its job fails).
    #[arg(long, env = "FLOWMATE_SANDBOX_MEMORY_MIB", default_value_t = 512, global = true)]
    pub sandbox_memory_mib: u64,
    /// The program started as a sandbox process, with the argument `sandbox` (default: this
    /// executable; for embedders and tests that run the service from another binary).
    #[arg(long, env = "FLOWMATE_SANDBOX_PROGRAM", global = true)]
    pub sandbox_program: Option<PathBuf>,
    /// Seconds a `?sync=true` webhook call waits for its execution before answering 504.
    #[arg(long, env = "FLOWMATE_WEBHOOK_SYNC_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub webhook_sync_timeout_secs: u64,
    /// Milliseconds a flow read by the webhook and execution paths is kept in memory (`0`: not
    /// cached). Changes made through this process are seen at once; with several `api`
    /// processes, a change made through another one is seen after at most this long.
    #[arg(long, env = "FLOWMATE_FLOW_CACHE_TTL_MS", default_value_t = 1000, global = true)]
    pub flow_cache_ttl_ms: u64,
    /// Most executions waiting to run before calls that would queue one more (asynchronous
    /// webhook calls) are answered 503 with Retry-After (`0`: no limit).
    #[arg(long, env = "FLOWMATE_MAX_QUEUED_EXECUTIONS", default_value_t = 10_000, global = true)]
    pub max_queued_executions: u64,
    /// Milliseconds a bearer-token lookup (token and user) is kept in memory (`0`: not cached).
    /// A logout or a user change through this process is seen at once; with several `api`
    /// processes, a token revoked through another one still works there for at most this long.
    #[arg(long, env = "FLOWMATE_TOKEN_CACHE_TTL_MS", default_value_t = 1000, global = true)]
    pub token_cache_ttl_ms: u64,
    /// Milliseconds between two looks of the cron scheduler at the scheduled flows.
    #[arg(long, env = "FLOWMATE_SCHEDULER_TICK_MS", default_value_t = 1000, global = true)]
    pub scheduler_tick_ms: u64,
    /// PostgreSQL: most connections in the pool.
    #[arg(long, env = "FLOWMATE_DATABASE_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    pub database_max_connections: u32,
    /// PostgreSQL: milliseconds to wait for a connection before answering 503.
    #[arg(long, env = "FLOWMATE_DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 3000, global = true)]
    pub database_acquire_timeout_ms: u64,
    /// PostgreSQL: apply pending migrations at start (`false`: run `flowmate migrate` instead).
    #[arg(long, env = "FLOWMATE_DATABASE_MIGRATE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub database_migrate: bool,
    /// Kafka: prefix of the topic names (one topic per event name, `<prefix>.<event>`).
    #[arg(long, env = "FLOWMATE_KAFKA_TOPIC_PREFIX", default_value = "flowmate", global = true)]
    pub kafka_topic_prefix: String,
    /// Kafka: partitions of topics created at start (existing topics are left as they are).
    #[arg(long, env = "FLOWMATE_KAFKA_PARTITIONS", default_value_t = 6, global = true)]
    pub kafka_partitions: i32,
    /// Kafka: replication factor of topics created at start (3 on a production cluster).
    #[arg(long, env = "FLOWMATE_KAFKA_REPLICATION", default_value_t = 1, global = true)]
    pub kafka_replication: i32,
    /// Kafka: milliseconds a publish may take before it fails and the outbox retries it (also
    /// the socket timeout).
    #[arg(long, env = "FLOWMATE_KAFKA_TIMEOUT_MS", default_value_t = 10_000, global = true)]
    pub kafka_timeout_ms: u64,
    /// Kafka: most milliseconds a consumer's fetch waits for new events (latency of a hop
    /// against idle fetch requests).
    #[arg(long, env = "FLOWMATE_KAFKA_FETCH_WAIT_MS", default_value_t = 10, global = true)]
    pub kafka_fetch_wait_ms: u64,
    /// Kafka: seconds a consumer group member may go without an assignment, or with events
    /// waiting and none arriving, before `/healthcheck` warns, a WARN line names the group, and
    /// the member is replaced by a new one (again after 2, 4, 8 times as long while it lasts).
    #[arg(long, env = "FLOWMATE_KAFKA_STALL_AFTER_SECS", default_value_t = 30, global = true)]
    pub kafka_stall_after_secs: u64,
    /// Kafka: further librdkafka properties for every client, `key=value`, comma-separated in
    /// the variable (e.g. `security.protocol=SASL_SSL,sasl.mechanism=PLAIN`); applied last.
    #[arg(long = "kafka-property", env = "FLOWMATE_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property, global = true)]
    pub kafka_properties: Vec<(String, String)>,
}

/// The host's name: the kernel's (Linux), else `HOSTNAME`, else `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// One `key=value` librdkafka property.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("`{text}` is not key=value")),
    }
}

/// SQLite `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// fsync at every commit.
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// Where data is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A SQLite file (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
}

/// Which event bus connects API and engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// Tokio channels inside this process.
    InProcess,
    /// An Apache Kafka cluster.
    Kafka(String),
}

impl Config {
    /// The storage backend named by `database_url`.
    ///
    /// # Errors
    /// An unsupported URL scheme.
    pub fn storage(&self) -> anyhow::Result<Storage> {
        let url = self.database_url.trim();
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                bail!("FLOWMATE_DATABASE_URL: sqlite:// needs a file path");
            }
            return Ok(Storage::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Storage::Postgres(url.to_string()));
        }
        bail!("FLOWMATE_DATABASE_URL must start with sqlite:// or postgres:// (got {url:?})")
    }

    /// The event bus named by `kafka_brokers`.
    pub fn bus(&self) -> Bus {
        match self.kafka_brokers.as_deref().map(str::trim) {
            Some(brokers) if !brokers.is_empty() => Bus::Kafka(brokers.to_string()),
            _ => Bus::InProcess,
        }
    }

    /// This process's identity in leases and outbox claims (see [`Config::worker_id`]).
    pub fn process_identity(&self) -> ProcessIdentity {
        if let Some(name) = self.worker_id.as_deref().map(str::trim).filter(|name| !name.is_empty()) {
            return ProcessIdentity::new(name);
        }
        if self.listen.port() == 0 {
            return ProcessIdentity::unique();
        }
        ProcessIdentity::new(&format!("{}/{}", host_name(), self.listen))
    }

    /// Checks the combination of settings this build supports.
    ///
    /// # Errors
    /// What is wrong, in words an operator can act on.
    pub fn validate(&self) -> anyhow::Result<(Storage, Bus)> {
        let storage = self.storage().context("invalid storage configuration")?;
        let bus = self.bus();
        if self.role != Role::All && bus == Bus::InProcess {
            bail!(
                "FLOWMATE_ROLE={:?} needs a shared event bus (FLOWMATE_KAFKA_BROKERS); the in-process bus only works with role all",
                self.role
            );
        }
        if self.token_ttl_secs == 0 || self.body_limit_bytes == 0 || self.watchdog_deadline_secs == 0 {
            bail!(
                "FLOWMATE_TOKEN_TTL_SECS, FLOWMATE_BODY_LIMIT_BYTES and FLOWMATE_WATCHDOG_DEADLINE_SECS must be positive"
            );
        }
        let ceiling = flow_domain::limits::MAX_DEPTH_CEILING;
        if !(1..=ceiling).contains(&self.max_body_depth) || self.max_nodes == 0 {
            bail!("FLOWMATE_MAX_BODY_DEPTH must be 1 to {ceiling} and FLOWMATE_MAX_NODES positive");
        }
        Ok((storage, bus))
    }

    /// The input limits handed to the use cases and the HTTP adapter.
    pub fn limits(&self) -> flow_domain::limits::Limits {
        flow_domain::limits::Limits { max_depth: self.max_body_depth, max_nodes: self.max_nodes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["flowmate"];
        all.extend_from_slice(args);
        Cli::parse_from(all).config
    }

    #[test]
    fn embedded_default_needs_no_configuration() {
        let c = config(&[]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.validate().ok(), Some((Storage::Sqlite("flowmate.db".into()), Bus::InProcess)));
    }

    #[test]
    fn kafka_client_settings_are_read_from_flags() {
        let c = config(&[
            "--kafka-replication",
            "3",
            "--kafka-fetch-wait-ms",
            "50",
            "--kafka-property",
            "security.protocol=SASL_SSL,sasl.mechanism = PLAIN",
        ]);
        assert_eq!((c.kafka_replication, c.kafka_fetch_wait_ms, c.kafka_timeout_ms), (3, 50, 10_000));
        assert_eq!(
            c.kafka_properties,
            vec![
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanism".to_string(), "PLAIN".to_string())
            ]
        );
        let bad = Cli::try_parse_from(["flowmate", "--kafka-property", "no-equals-sign"]);
        assert!(bad.is_err());
    }

    #[test]
    fn input_limits_have_defaults_and_bounds() {
        let limits = config(&[]).limits();
        assert_eq!((limits.max_depth, limits.max_nodes), (64, 1_000));
        let set = config(&["--max-body-depth", "100", "--max-nodes", "5"]);
        assert_eq!((set.limits().max_depth, set.limits().max_nodes), (100, 5));
        assert!(set.validate().is_ok());
        assert!(config(&["--max-body-depth", "101"]).validate().is_err());
        assert!(config(&["--max-body-depth", "0"]).validate().is_err());
        assert!(config(&["--max-nodes", "0"]).validate().is_err());
    }

    #[test]
    fn attempts_and_the_process_name_are_read_from_flags() {
        let c = config(&[]);
        assert_eq!(c.execution_max_attempts, AttemptLimit::DEFAULT);
        assert!(c.process_identity().name_prefix().ends_with("/127.0.0.1:3000#"));
        let c = config(&["--execution-max-attempts", "5", "--worker-id", "worker-a"]);
        assert_eq!(c.execution_max_attempts.get(), 5);
        assert_eq!(c.process_identity().name_prefix(), "worker-a#");
        assert!(config(&["--listen", "127.0.0.1:0"]).process_identity().name_prefix().starts_with("worker-"));
        assert!(Cli::try_parse_from(["flowmate", "--execution-max-attempts", "0"]).is_err());
    }

    #[test]
    fn rejects_unknown_storage_and_lonely_roles() {
        assert!(config(&["--database-url", "mysql://x"]).validate().is_err());
        assert!(config(&["--role", "worker"]).validate().is_err());
    }

    #[test]
    fn production_backends_and_roles_are_accepted() {
        let c = config(&[
            "--database-url",
            "postgres://db/flowmate",
            "--kafka-brokers",
            "k1:9092",
            "--role",
            "worker",
        ]);
        assert_eq!(
            c.validate().ok(),
            Some((Storage::Postgres("postgres://db/flowmate".into()), Bus::Kafka("k1:9092".into())))
        );
    }
}

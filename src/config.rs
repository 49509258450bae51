//! Configuration: one layered, validated structure.
//!
//! The defaults live in `default_config.toml`, embedded in the binary and commented: it is the
//! reference. A file and environment variables override it (see the header of that file).
//! [`Config::load`] merges the layers and [`Config::validate`] reports every problem at once,
//! so a bad deployment fails at start-up with a list, not at the first request.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod alerts;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

pub use alerts::{AlertsConfig, EscalateAfter, Severity, SeverityConfig};

/// The configuration reference, embedded.
pub const DEFAULT_CONFIG: &str = include_str!("default_config.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: String,
    /// Bind `listen` with SO_REUSEPORT, sharing the address with other geoward processes on
    /// this machine (several nodes on one machine).
    #[serde(default)]
    pub listen_reuse_port: bool,
    #[serde(default)]
    pub bootstrap_admin: String,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub supervision: SupervisionConfig,
    pub zones: ZonesConfig,
    pub ingest: IngestConfig,
    pub history: HistoryConfig,
    pub alerts: AlertsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisConfig {
    pub url: String,
    pub key_prefix: String,
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    pub login_max_failures: u32,
    pub login_max_failures_per_address: u32,
    #[serde(with = "humantime_serde")]
    pub login_failure_window: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SupervisionConfig {
    pub max_order_days: u32,
    pub default_lost_contact_after_s: u32,
    pub min_lost_contact_after_s: u32,
    pub max_lost_contact_after_s: u32,
    pub max_leave_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ZonesConfig {
    pub max_vertices: usize,
    pub max_extent_m: f64,
    pub max_radius_m: f64,
    pub max_buffer_m: f64,
    pub default_confirm_fixes: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    pub max_connections: usize,
    pub max_frame_bytes: usize,
    pub max_batch: usize,
    pub max_in_flight: usize,
    pub queue_capacity: usize,
    pub batch_max_reports: usize,
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    pub writers: usize,
    pub default_acc_m: f32,
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    #[serde(with = "humantime_serde")]
    pub max_fix_age: Duration,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub flood_frames_per_s: u32,
    pub flood_burst: u32,
    pub garbage_limit: u32,
    #[serde(with = "humantime_serde")]
    pub device_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HistoryConfig {
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Merges the embedded defaults, an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(Env::prefixed("GEOWARD_").split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults alone (tests start from these).
    pub fn defaults() -> Config {
        Figment::from(Toml::string(DEFAULT_CONFIG))
            .extract()
            .expect("the embedded default configuration is valid")
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::Invalid(vec![format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )])
        })
    }

    /// The bootstrap admin as (username, password), when configured.
    pub fn bootstrap_admin(&self) -> Option<(&str, &str)> {
        self.bootstrap_admin
            .split_once(':')
            .filter(|(user, pass)| !user.is_empty() && !pass.is_empty())
    }

    /// Checks every value; returns all problems together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, message: String| {
            if !ok {
                problems.push(message);
            }
        };
        check(
            self.listen.parse::<SocketAddr>().is_ok(),
            format!(
                "listen (GEOWARD_LISTEN): {:?} is not an address like 127.0.0.1:8080",
                self.listen
            ),
        );
        check(
            self.bootstrap_admin.is_empty() || self.bootstrap_admin().is_some(),
            "bootstrap_admin (GEOWARD_BOOTSTRAP_ADMIN): expected user:password".into(),
        );
        if let Some((_, password)) = self.bootstrap_admin() {
            check(
                password.len() >= crate::domain::officer::MIN_PASSWORD_LEN,
                format!(
                    "bootstrap_admin: the password must have at least {} characters",
                    crate::domain::officer::MIN_PASSWORD_LEN
                ),
            );
        }
        check(
            self.database.url.starts_with("postgres://")
                || self.database.url.starts_with("postgresql://"),
            "database.url (DATABASE_URL): expected postgres://user@host:port/database".into(),
        );
        check(
            self.database.max_connections >= 2,
            "database.max_connections: at least 2".into(),
        );
        check(
            !self.database.acquire_timeout.is_zero(),
            "database.acquire_timeout: must be positive".into(),
        );
        check(
            ["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| self.redis.url.starts_with(scheme)),
            "redis.url (REDIS_URL): expected redis://host:port".into(),
        );
        check(
            !self.redis.key_prefix.is_empty() && !self.redis.key_prefix.contains(['{', '}', ' ']),
            "redis.key_prefix: must be non-empty, without braces or spaces".into(),
        );
        check(
            !self.redis.call_timeout.is_zero(),
            "redis.call_timeout: must be positive".into(),
        );
        check(
            self.http.max_body_bytes >= 1024,
            "http.max_body_bytes: at least 1024".into(),
        );
        check(
            !self.http.request_timeout.is_zero(),
            "http.request_timeout: must be positive".into(),
        );
        check(
            self.http.max_concurrent_requests > 0,
            "http.max_concurrent_requests: must be positive".into(),
        );
        check(
            self.auth.session_ttl >= Duration::from_secs(60),
            "auth.session_ttl: at least 1 minute".into(),
        );
        check(
            self.auth.login_max_failures > 0 && self.auth.login_max_failures_per_address > 0,
            "auth.login_max_failures*: must be positive".into(),
        );
        check(
            self.auth.login_failure_window >= Duration::from_secs(1),
            "auth.login_failure_window: at least 1s".into(),
        );
        let s = &self.supervision;
        check(
            (1..=366).contains(&s.max_order_days),
            "supervision.max_order_days: between 1 and 366".into(),
        );
        check(
            s.min_lost_contact_after_s > 0
                && s.min_lost_contact_after_s <= s.default_lost_contact_after_s
                && s.default_lost_contact_after_s <= s.max_lost_contact_after_s,
            "supervision: need 0 < min_lost_contact_after_s <= default_lost_contact_after_s \
             <= max_lost_contact_after_s"
                .into(),
        );
        check(
            (1..=366).contains(&s.max_leave_days),
            "supervision.max_leave_days: between 1 and 366".into(),
        );
        let z = &self.zones;
        check(z.max_vertices >= 4, "zones.max_vertices: at least 4".into());
        check(
            z.max_extent_m.is_finite() && z.max_extent_m > 0.0,
            "zones.max_extent_m: must be positive".into(),
        );
        check(
            z.max_radius_m.is_finite() && z.max_radius_m > 0.0,
            "zones.max_radius_m: must be positive".into(),
        );
        check(
            z.max_buffer_m.is_finite() && z.max_buffer_m >= 0.0,
            "zones.max_buffer_m: must not be negative".into(),
        );
        check(
            (1..=100).contains(&z.default_confirm_fixes),
            "zones.default_confirm_fixes: between 1 and 100".into(),
        );
        let i = &self.ingest;
        check(
            i.max_connections > 0,
            "ingest.max_connections: must be positive".into(),
        );
        check(
            (1024..=16 * 1024 * 1024).contains(&i.max_frame_bytes),
            "ingest.max_frame_bytes: between 1 KiB and 16 MiB".into(),
        );
        check(
            (1..=100_000).contains(&i.max_batch),
            "ingest.max_batch: between 1 and 100000".into(),
        );
        check(
            i.max_in_flight >= i.max_batch,
            "ingest.max_in_flight: at least ingest.max_batch (a whole batch must fit)".into(),
        );
        check(
            i.queue_capacity >= i.max_in_flight,
            "ingest.queue_capacity: at least ingest.max_in_flight".into(),
        );
        check(
            i.batch_max_reports > 0 && !i.batch_max_wait.is_zero(),
            "ingest.batch_max_reports and batch_max_wait: must be positive".into(),
        );
        check(
            (1..=64).contains(&i.writers),
            "ingest.writers: between 1 and 64".into(),
        );
        check(
            i.default_acc_m.is_finite() && i.default_acc_m > 0.0,
            "ingest.default_acc_m: must be positive".into(),
        );
        check(
            !i.ping_interval.is_zero() && i.idle_timeout > i.ping_interval,
            "ingest.idle_timeout: must be longer than ingest.ping_interval".into(),
        );
        check(
            i.flood_frames_per_s > 0 && i.flood_burst > 0 && i.garbage_limit > 0,
            "ingest.flood_frames_per_s, flood_burst and garbage_limit: must be positive".into(),
        );
        check(
            !i.device_refresh.is_zero() && !i.drain_timeout.is_zero(),
            "ingest.device_refresh and drain_timeout: must be positive".into(),
        );
        check(
            self.history.retention > i.max_fix_age,
            "history.retention: must be longer than ingest.max_fix_age".into(),
        );
        check(
            self.history.maintenance_interval >= Duration::from_secs(60),
            "history.maintenance_interval: at least 1 minute".into(),
        );
        check(
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            format!("log.level: {:?} is not a tracing filter", self.log.level),
        );
        problems.extend(self.alerts.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_are_valid() {
        Config::defaults().validate().expect("defaults validate");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = Config::defaults();
        config.listen = "nowhere".into();
        config.database.url = "mysql://x".into();
        config.supervision.max_order_days = 0;
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("expected invalid");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("GEOWARD_LISTEN"));
    }

    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    #[test]
    fn a_file_and_then_the_environment_override_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "geoward.toml",
                "listen = \"0.0.0.0:9000\"\n[auth]\nsession_ttl = \"8h\"\n",
            )?;
            jail.set_env("GEOWARD_LISTEN", "127.0.0.1:9100");
            jail.set_env("DATABASE_URL", "postgres://gw@db.internal:5433/geoward");
            jail.set_env("REDIS_URL", "redis://cache.internal:6380");
            jail.set_env("GEOWARD_SUPERVISION__MAX_ORDER_DAYS", "60");
            jail.set_env("GEOWARD_TEST_DATABASE_URL", "postgres://ignored");
            let config =
                Config::load(Some(Path::new("geoward.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:9100");
            assert_eq!(config.auth.session_ttl, Duration::from_secs(8 * 3600));
            assert_eq!(
                config.database.url,
                "postgres://gw@db.internal:5433/geoward"
            );
            assert_eq!(config.redis.url, "redis://cache.internal:6380");
            assert_eq!(config.supervision.max_order_days, 60);
            Ok(())
        });
    }

    #[allow(clippy::result_large_err)]
    #[test]
    fn a_bad_environment_value_is_reported_with_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GEOWARD_AUTH__SESSION_TTL", "forever");
            let err = Config::load(None).expect_err("invalid duration");
            assert!(
                err.to_string().to_lowercase().contains("session_ttl"),
                "{err}"
            );
            Ok(())
        });
    }

    #[allow(clippy::result_large_err)]
    #[test]
    fn listen_reuse_port_is_off_by_default_and_set_by_file_or_environment() {
        assert!(!Config::defaults().listen_reuse_port);
        figment::Jail::expect_with(|jail| {
            jail.create_file("geoward.toml", "listen_reuse_port = true\n")?;
            let config =
                Config::load(Some(Path::new("geoward.toml"))).map_err(|e| e.to_string())?;
            assert!(config.listen_reuse_port);
            jail.set_env("GEOWARD_LISTEN_REUSE_PORT", "false");
            let config =
                Config::load(Some(Path::new("geoward.toml"))).map_err(|e| e.to_string())?;
            assert!(
                !config.listen_reuse_port,
                "the environment overrides the file"
            );
            jail.set_env("GEOWARD_LISTEN_REUSE_PORT", "true");
            assert!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .listen_reuse_port
            );
            jail.set_env("GEOWARD_LISTEN_REUSE_PORT", "sometimes");
            let err = Config::load(None).expect_err("not a boolean");
            assert!(
                err.to_string().to_lowercase().contains("listen_reuse_port"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_bootstrap_admin_is_split_at_the_first_colon() {
        let mut config = Config::defaults();
        config.bootstrap_admin = "chief:pass:word-long".into();
        assert_eq!(config.bootstrap_admin(), Some(("chief", "pass:word-long")));
        config.bootstrap_admin = "chief".into();
        assert!(config.validate().is_err());
    }
}

//! Private PostgreSQL and Redis servers for fault tests: each test starts its own on a spare
//! 127.0.0.1 port in a throwaway folder, so it may stop, kill and restart them without
//! disturbing the shared stores or other tests running in parallel.
//!
//! Both servers run as child processes of the test (no daemonising), so `Drop` can always
//! stop them, also when a test panics; the throwaway folder is removed after the process has
//! exited. PostgreSQL refuses to run as root: then its programs run as the `postgres` user
//! (through `setpriv`, which execs, so the child is the postmaster itself; `runuser` otherwise).
//!
//! The async methods never block the runtime for long (they poll the child), so devices
//! streaming on the same runtime keep running while a store restarts.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const PG_MISSING: &str =
    "PostgreSQL server binaries not found: install the Debian package postgresql (scripts/test does this)";
const REDIS_MISSING: &str =
    "redis-server not found on PATH: install the Debian package redis-server (scripts/test does this)";

/// How long a store may take to accept connections after its process started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping store may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when another process took the one picked.
const PORT_ATTEMPTS: usize = 5;

// ---------------------------------------------------------------------------------------------
// Process helpers, shared with `server_process`.
// ---------------------------------------------------------------------------------------------

/// A port that was free a moment ago (bound on port 0 and released). Another process may take
/// it before we bind it: callers retry on "address in use".
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Whether this process runs with effective uid 0 (read from /proc, no libc needed).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A fresh folder `<tmp>/<prefix>-<random>` with mode 0700.
pub fn temp_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let random = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", &random[..12]));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", dir.display()))?;
    Ok(dir)
}

/// The last `n` lines of a log file (empty when it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Opens `path` for appending, as the stdout and stderr of a child.
pub fn log_stdio(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log {}", path.display()))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// Sends `signal` (a name like "INT", "TERM", "KILL") to `pid`; false when it failed (e.g. the
/// process is gone).
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Waits (polling, without blocking the runtime) until `child` exits or `timeout` passes.
pub async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The blocking twin of [`wait_exit`], for `Drop`.
pub fn wait_exit_blocking(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub async fn port_open(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await,
        Ok(Ok(_))
    )
}

fn looks_like_port_taken(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("could not bind")
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// A private PostgreSQL cluster (superuser `postgres`, trust auth, TCP on 127.0.0.1 only,
/// durability off) in a throwaway folder. Stopped and removed on drop.
pub struct PrivatePostgres {
    bindir: PathBuf,
    /// The throwaway folder: `data/` and `postgres.log`.
    base: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    as_postgres: bool,
    child: Option<Child>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding initdb and postgres.
fn postgres_bindir() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).context(PG_MISSING)
}

impl PrivatePostgres {
    /// Initialises a cluster and starts it on a free port; ready to accept connections.
    pub async fn start() -> anyhow::Result<PrivatePostgres> {
        let bindir = postgres_bindir()?;
        let as_postgres = running_as_root();
        let base = temp_dir("geoward-pg")?;
        let mut pg = PrivatePostgres {
            data: base.join("data"),
            log: base.join("postgres.log"),
            base,
            bindir,
            port: 0,
            as_postgres,
            child: None,
        };
        // From here on, Drop removes the folder if anything fails.
        pg.initdb().await?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            pg.port = free_port()?;
            match pg.launch().await {
                Ok(()) => return Ok(pg),
                Err(err) if looks_like_port_taken(&pg.log_tail(20)) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// A connection URL for `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server log (all starts appended).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Creates a database and returns its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .context("connecting to the private PostgreSQL")?;
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("create database {name}"))?;
        let _ = conn.close().await;
        Ok(self.url(name))
    }

    /// Fast shutdown (clients disconnected, clean checkpoint); waits until it has exited.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shut_down("INT").await
    }

    /// Immediate shutdown, like a crash: no checkpoint, recovery at the next start.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.shut_down("QUIT").await
    }

    /// Starts the stopped server again on the same port and data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!(
                "the private PostgreSQL on port {} is still running",
                self.port
            );
        }
        self.launch().await
    }

    /// Runs a program as the cluster's owner, from `/` (postgres may not enter our folder).
    fn command(&self, program: &Path) -> Command {
        let mut command = if self.as_postgres {
            if Path::new("/usr/bin/setpriv").exists() {
                let mut c = Command::new("/usr/bin/setpriv");
                c.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ]);
                c
            } else {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]);
                c
            }
        } else {
            Command::new(program.as_os_str())
        };
        if self.as_postgres {
            command.arg(program);
        }
        command.current_dir("/");
        command
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.base)
                .status()
                .context("running chown")?;
            if !status.success() {
                bail!(
                    "chown postgres:postgres {} failed: does the postgres user exist \
                     (it comes with the Debian package postgresql)?",
                    self.base.display()
                );
            }
        }
        let mut command = self.command(&self.bindir.join("initdb"));
        command
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .stdin(Stdio::null());
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed for {} ({}):\n{}{}",
                self.data.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Starts the postmaster on `self.port` and waits until it accepts connections.
    async fn launch(&mut self) -> anyhow::Result<()> {
        let (stdout, stderr) = log_stdio(&self.log)?;
        let mut command = self.command(&self.bindir.join("postgres"));
        command
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
                "-c",
                "shared_buffers=32MB",
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command.spawn().context("starting postgres")?;
        self.child = Some(child);
        if let Err(err) = self.wait_ready().await {
            self.force_stop().await;
            return Err(err);
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let url = self.url("postgres");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "the private PostgreSQL on port {} exited at start ({status}); log {}:\n{}",
                    self.port,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            let last_error: String = match tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::PgConnection::connect(&url),
            )
            .await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Ok(Err(err)) => err.to_string(),
                Err(_) => "connect timed out".into(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "the private PostgreSQL on port {} did not accept connections within {:?} \
                     (last error: {last_error}); log {}:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The postmaster's pid: from its pid file (the child may be `runuser`), else the child's.
    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .next()
                    .and_then(|line| line.trim().parse().ok())
            })
            .or_else(|| self.child.as_ref().map(Child::id))
    }

    async fn shut_down(&mut self, signal: &str) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        if let Some(pid) = self.postmaster_pid() {
            send_signal(pid, signal);
        }
        if wait_exit(&mut child, STOP_TIMEOUT).await.is_none() {
            self.child = Some(child);
            self.force_stop().await;
            bail!(
                "the private PostgreSQL on port {} did not stop within {STOP_TIMEOUT:?} after \
                 SIG{signal}; killed it. Log:\n{}",
                self.port,
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// SIGKILL to the postmaster and the child, then reap.
    async fn force_stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = self.postmaster_pid() {
                send_signal(pid, "KILL");
            }
            let _ = child.kill();
            let _ = wait_exit(&mut child, Duration::from_secs(5)).await;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                // Immediate shutdown: the postmaster takes its backends down with it.
                let pid = self.postmaster_pid();
                if let Some(pid) = pid {
                    send_signal(pid, "QUIT");
                }
                if wait_exit_blocking(&mut child, Duration::from_secs(10)).is_none() {
                    if let Some(pid) = pid {
                        send_signal(pid, "KILL");
                    }
                    let _ = child.kill();
                    let _ = wait_exit_blocking(&mut child, Duration::from_secs(5));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// A private Redis (no persistence) in a throwaway folder. Killed and removed on drop.
pub struct PrivateRedis {
    base: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts redis-server on a free port; ready to answer PING.
    pub async fn start() -> anyhow::Result<PrivateRedis> {
        let base = temp_dir("geoward-redis")?;
        let mut redis = PrivateRedis {
            log: base.join("redis.log"),
            base,
            port: 0,
            child: None,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            redis.port = free_port()?;
            match redis.launch().await {
                Ok(()) => return Ok(redis),
                Err(err) if looks_like_port_taken(&redis.log_tail(20)) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Shuts down without saving (SIGTERM) and waits until the process exited and the port
    /// is closed.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shut_down("TERM").await
    }

    /// SIGKILL: gone at once, like a crash.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.shut_down("KILL").await
    }

    /// Starts the stopped server again on the same port (empty: nothing is persisted).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("the private Redis on port {} is still running", self.port);
        }
        self.launch().await
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let (stdout, stderr) = log_stdio(&self.log)?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(&self.base)
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(REDIS_MISSING),
            Err(err) => return Err(err).context("starting redis-server"),
        };
        self.child = Some(child);
        if let Err(err) = self.wait_ready().await {
            let _ = self.shut_down("KILL").await;
            return Err(err);
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = redis::Client::open(self.url())?;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "the private Redis on port {} exited at start ({status}); log:\n{}",
                    self.port,
                    self.log_tail(30)
                );
            }
            let ping = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            let last_error: String = match tokio::time::timeout(Duration::from_secs(2), ping).await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "PING timed out".into(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "the private Redis on port {} did not answer PING within {READY_TIMEOUT:?} \
                     (last error: {last_error}); log:\n{}",
                    self.port,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn shut_down(&mut self, signal: &str) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Ok(None) = child.try_wait() {
            send_signal(child.id(), signal);
            if wait_exit(&mut child, STOP_TIMEOUT).await.is_none() {
                let _ = child.kill();
                let _ = wait_exit(&mut child, Duration::from_secs(5)).await;
                bail!(
                    "the private Redis on port {} did not stop within {STOP_TIMEOUT:?} after \
                     SIG{signal}; killed it",
                    self.port
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while port_open(self.port).await {
            if Instant::now() >= deadline {
                bail!(
                    "port {} still accepts connections after Redis exited",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_exit_blocking(&mut child, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

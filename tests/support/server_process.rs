//! The real `geoward serve` binary as a child process, for tests that kill it (SIGKILL,
//! SIGTERM) and restart it on the same port while devices stream.
//!
//! The child inherits the test's environment minus everything that configures geoward
//! (`GEOWARD_*`, `DATABASE_URL`, `REDIS_URL`, `RUST_LOG`), then gets the env given to
//! [`ServerProcess::spawn`] and `GEOWARD_LISTEN=127.0.0.1:<port>` (a given `GEOWARD_LISTEN` is
//! ignored). Its stdout and stderr go to one log file in a throwaway folder; restarts append.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::private_stores::{
    free_port, log_stdio, log_tail, send_signal, temp_dir, wait_exit, wait_exit_blocking,
};

/// How long geoward may take to answer `GET /healthz` after its process started.
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
const PORT_ATTEMPTS: usize = 5;

/// The geoward binary Cargo built for this test crate.
pub fn geoward_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_geoward"))
}

pub struct ServerProcess {
    binary: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
}

impl ServerProcess {
    /// Runs `geoward serve` with `env` on a free port and waits until it is healthy.
    pub async fn spawn(env: &[(String, String)]) -> anyhow::Result<ServerProcess> {
        ServerProcess::spawn_binary(geoward_binary(), env).await
    }

    /// As [`ServerProcess::spawn`], with another binary.
    pub async fn spawn_binary(
        binary: PathBuf,
        env: &[(String, String)],
    ) -> anyhow::Result<ServerProcess> {
        if !binary.is_file() {
            bail!(
                "the geoward binary {} does not exist: run `cargo build` first",
                binary.display()
            );
        }
        let dir = temp_dir("geoward-server")?;
        let mut server = ServerProcess {
            binary,
            env: env.to_vec(),
            port: 0,
            log: dir.join("geoward.log"),
            dir,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(err) if server.log_tail(20).contains("cannot bind") => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>`
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the log (all runs, appended).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the process with SIGKILL and reaps it: no drain, no goodbye to clients.
    pub async fn sigkill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if wait_exit(&mut child, Duration::from_secs(10))
                .await
                .is_none()
            {
                bail!("geoward (pid {}) survived SIGKILL for 10 s", child.id());
            }
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the drain to finish; returns the exit
    /// status. On timeout the process is killed and an error returned.
    pub async fn sigterm(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("geoward is not running")?;
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        send_signal(child.id(), "TERM");
        match wait_exit(&mut child, timeout).await {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = wait_exit(&mut child, Duration::from_secs(10)).await;
                bail!(
                    "geoward did not exit within {timeout:?} of SIGTERM; killed it. Log:\n{}",
                    self.log_tail(30)
                )
            }
        }
    }

    /// Starts the stopped process again, same port and env; waits until healthy. Fails when it
    /// still runs (stop it with `sigkill` or `sigterm` first). The port may linger for a
    /// moment after a kill, so binding is retried for a few seconds.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("geoward (pid {:?}) is still running", self.pid());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline && self.log_tail(5).contains("cannot bind") => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Whether `GET /healthz` answers 200 now.
    pub async fn healthy(&self) -> bool {
        match self
            .http
            .get(format!("{}/healthz", self.base_url()))
            .send()
            .await
        {
            Ok(response) => response.status().as_u16() == 200,
            Err(_) => false,
        }
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        use std::io::Write;
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = writeln!(
                log,
                "----- test harness: starting geoward on port {} -----",
                self.port
            );
        }
        let (stdout, stderr) = log_stdio(&self.log)?;
        let mut command = Command::new(&self.binary);
        command.arg("serve");
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if key.starts_with("GEOWARD_")
                || matches!(key, "DATABASE_URL" | "REDIS_URL" | "RUST_LOG")
            {
                command.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
            .env("GEOWARD_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                bail!(
                    "geoward exited at start ({status}); log {}:\n{}",
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            if self.healthy().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.sigkill().await;
                bail!(
                    "geoward on port {} did not answer GET /healthz with 200 within \
                     {HEALTHY_TIMEOUT:?}; log {}:\n{}",
                    self.port,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "geoward log tail (port {}, {}):\n{}",
                self.port,
                self.log.display(),
                self.log_tail(40)
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_exit_blocking(&mut child, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

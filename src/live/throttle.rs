//! Login throttling, shared by every node through Redis.
//!
//! Failed logins are counted per username and per client address in fixed windows
//! (`auth.login_failure_window`). Once either count reaches its limit, further attempts are
//! refused before the password is even checked, until the window ends. A success clears the
//! username's count. Usernames are lower-cased so case does not buy extra attempts.

use std::time::Duration;

use super::{Live, LiveResult};

/// The verdict for a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; retry after this long.
    Throttled(Duration),
}

pub struct LoginThrottle {
    pub max_per_user: u32,
    pub max_per_address: u32,
    pub window: Duration,
}

impl LoginThrottle {
    fn user_key(live: &Live, username: &str) -> String {
        live.key(&format!("login:user:{}", username.to_lowercase()))
    }

    fn addr_key(live: &Live, address: &str) -> String {
        live.key(&format!("login:addr:{address}"))
    }

    /// Whether an attempt may go ahead.
    pub async fn check(&self, live: &Live, username: &str, address: &str) -> LiveResult<Verdict> {
        let user_key = Self::user_key(live, username);
        let addr_key = Self::addr_key(live, address);
        let mut pipe = redis::pipe();
        pipe.get(&user_key)
            .pttl(&user_key)
            .get(&addr_key)
            .pttl(&addr_key);
        let (user_count, user_ttl, addr_count, addr_ttl): (Option<u32>, i64, Option<u32>, i64) =
            live.query_pipe(&pipe).await?;
        let retry = |ttl: i64| Duration::from_millis(ttl.max(1000) as u64);
        if user_count.unwrap_or(0) >= self.max_per_user {
            return Ok(Verdict::Throttled(retry(user_ttl)));
        }
        if addr_count.unwrap_or(0) >= self.max_per_address {
            return Ok(Verdict::Throttled(retry(addr_ttl)));
        }
        Ok(Verdict::Allowed)
    }

    /// Counts a failed attempt against the username and the address.
    pub async fn record_failure(
        &self,
        live: &Live,
        username: &str,
        address: &str,
    ) -> LiveResult<()> {
        let window_ms = self.window.as_millis() as u64;
        let mut pipe = redis::pipe();
        for key in [
            Self::user_key(live, username),
            Self::addr_key(live, address),
        ] {
            // The window starts at the first failure: NX keeps later failures from extending it.
            pipe.incr(&key, 1)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(window_ms)
                .arg("NX")
                .ignore();
        }
        live.query_pipe::<()>(&pipe).await
    }

    /// Clears the username's failures after a successful login.
    pub async fn record_success(&self, live: &Live, username: &str) -> LiveResult<()> {
        live.query::<()>(redis::cmd("DEL").arg(Self::user_key(live, username)))
            .await
    }
}

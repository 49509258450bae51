//! Officers' roles and credentials rules.
//!
//! Roles: `officer` sees their own caseload; `supervisor` sees every supervisee of the agency;
//! `admin` manages accounts and devices and sees no location data unless also a supervisor.
//! An account holds one or more roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shortest password accepted for an officer account.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (argon2 handles more, but nobody types more).
pub const MAX_PASSWORD_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Officer,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Officer, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "officer" => Ok(Role::Officer),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected officer, supervisor or admin"
            )),
        }
    }
}

/// The set of roles an account holds (never empty once parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    pub fn of(roles: &[Role]) -> Roles {
        Roles(roles.iter().fold(0, |bits, r| bits | Roles::bit(*r)))
    }

    fn bit(role: Role) -> u8 {
        1 << (role as u8)
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & Roles::bit(role) != 0
    }

    pub fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The most privileged role for location data, shown as the account's `role`.
    pub fn primary(self) -> Role {
        [Role::Supervisor, Role::Officer, Role::Admin]
            .into_iter()
            .find(|r| self.contains(*r))
            .unwrap_or(Role::Officer)
    }

    /// May see location data (zones, tracks, positions, alerts) at all.
    pub fn sees_location_data(self) -> bool {
        self.contains(Role::Officer) || self.contains(Role::Supervisor)
    }

    pub fn to_strings(self) -> Vec<String> {
        self.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// Parses stored role names; unknown names are ignored (never widen access).
    pub fn from_strings<S: AsRef<str>>(names: &[S]) -> Roles {
        let roles: Vec<Role> = names
            .iter()
            .filter_map(|n| n.as_ref().parse().ok())
            .collect();
        Roles::of(&roles)
    }
}

/// Checks a username: 3–64 characters of letters, digits and `. _ - @`.
pub fn parse_username(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if !(3..=64).contains(&name.chars().count()) {
        return Err("username must have 3 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("username may contain only letters, digits and . _ - @".into());
    }
    Ok(name.to_owned())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must have at most {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_alone_sees_no_location_data() {
        assert!(!Roles::of(&[Role::Admin]).sees_location_data());
        assert!(Roles::of(&[Role::Admin, Role::Supervisor]).sees_location_data());
    }

    #[test]
    fn unknown_stored_role_names_grant_nothing() {
        let roles = Roles::from_strings(&["root", "officer"]);
        assert_eq!(roles, Roles::of(&[Role::Officer]));
    }

    #[test]
    fn the_primary_role_prefers_supervisor() {
        assert_eq!(
            Roles::of(&[Role::Admin, Role::Supervisor]).primary(),
            Role::Supervisor
        );
        assert_eq!(Roles::of(&[Role::Admin]).primary(), Role::Admin);
    }

    #[test]
    fn usernames_are_checked() {
        assert!(parse_username("li.wei@zk").is_ok());
        assert!(parse_username("a b").is_err());
        assert!(parse_username("ab").is_err());
    }
}
